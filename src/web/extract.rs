//! What every browser request carries, extracted once (kanidm's `https/extractors` are the model):
//! - [`Ctx`]: the clock read of this request, the session (if any), the language and the client
//!   address;
//! - [`CsrfForm`]: a state-changing form, checked against the session's CSRF token before the
//!   handler runs;
//! - the session cookie, written in one place ([`cookie_layer`]) whatever the handler did to the
//!   session (created, renewed, ended).

use super::{AppState, WebError};
use crate::i18n::{self, Lang, Tr};
use crate::session::{Session, SessionData};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The cookie that remembers a language picked on a page.
pub const LANG_COOKIE: &str = "cozo_lang";

/// A cookie change a handler asked for; [`cookie_layer`] turns it into `Set-Cookie`.
#[derive(Debug, Clone, PartialEq)]
enum CookieChange {
    Session(String),
    EndSession,
    Lang(Lang),
}

/// Shared between the request's extractors and [`cookie_layer`].
#[derive(Clone, Default)]
struct CookieSlot(Arc<Mutex<Vec<CookieChange>>>);

impl CookieSlot {
    fn push(&self, c: CookieChange) {
        if let Ok(mut v) = self.0.lock() {
            v.retain(|x| std::mem::discriminant(x) != std::mem::discriminant(&c));
            v.push(c);
        }
    }

    fn take(&self) -> Vec<CookieChange> {
        self.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

/// Writes the cookies the handler's session changes need: the one place that knows the cookies'
/// names and attributes.
pub async fn cookie_layer(
    axum::extract::State(st): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let slot = CookieSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut resp = next.run(req).await;
    for change in slot.take() {
        let cookie = match change {
            CookieChange::Session(id) => session_cookie(&st, id, false),
            CookieChange::EndSession => session_cookie(&st, String::new(), true),
            CookieChange::Lang(lang) => {
                let mut c = Cookie::new(LANG_COOKIE, lang.as_str());
                c.set_path("/");
                c.set_http_only(true);
                c.set_same_site(SameSite::Lax);
                c.set_secure(st.cfg.secure_cookies());
                c.set_max_age(time::Duration::days(365));
                c
            }
        };
        if let Ok(v) = HeaderValue::from_str(&cookie.encoded().to_string()) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn session_cookie(st: &AppState, value: String, clear: bool) -> Cookie<'static> {
    let mut c = Cookie::new(st.session_cookie_name(), value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(SameSite::Lax);
    c.set_secure(st.cfg.secure_cookies());
    if clear {
        c.set_max_age(time::Duration::ZERO);
    }
    c
}

/// One browser request: when it happened (the one clock read), who (session), in which language,
/// from where.
pub struct Ctx {
    /// Unix seconds of this request; every decision of the request uses it.
    pub now: i64,
    pub session: Option<Session>,
    pub tr: Tr,
    pub address: String,
    cookies: CookieSlot,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, WebError> {
        let now = st.clock.now();
        let jar = CookieJar::from_headers(&parts.headers);
        let session = match jar.get(st.session_cookie_name()) {
            Some(c) => st.sessions.load(c.value(), now).await?,
            None => None,
        };
        let lang = request_language(&parts.headers, session.as_ref())
            .unwrap_or(st.cfg.ui.default_language);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let address = st.client_address(&parts.headers, peer);
        let cookies = parts.extensions.get::<CookieSlot>().cloned().unwrap_or_default();
        Ok(Ctx { now, session, tr: Tr::new(lang), address, cookies })
    }
}

/// The language of a request: the one kept in its session, else the one picked on a page (the
/// cookie), else the browser's (`Accept-Language`).
pub fn request_language(headers: &HeaderMap, session: Option<&Session>) -> Option<Lang> {
    session
        .and_then(|s| s.data.lang)
        .or_else(|| {
            CookieJar::from_headers(headers).get(LANG_COOKIE).and_then(|c| Lang::parse(c.value()))
        })
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(i18n::from_accept_language)
        })
}

impl Ctx {
    /// The session, or a new one (forms need one for their CSRF token); a new one gets its
    /// cookie.
    pub async fn session_or_new(&mut self, st: &AppState) -> Result<Session, WebError> {
        match self.session.take() {
            Some(s) => Ok(s),
            None => {
                let s = st.sessions.create(SessionData::default(), self.now).await?;
                self.cookies.push(CookieChange::Session(s.id.clone()));
                Ok(s)
            }
        }
    }

    /// The session, which a page that follows a form must have.
    pub fn take_session(&mut self) -> Result<Session, WebError> {
        self.session.take().ok_or_else(|| session_expired(&self.tr))
    }

    /// Saves the session's data (and extends its life).
    pub async fn save(&self, st: &AppState, s: &mut Session) -> Result<(), WebError> {
        Ok(st.sessions.save(s, self.now).await?)
    }

    /// A fresh session id after a login (no session fixation); the cookie follows.
    pub async fn renew(&self, st: &AppState, s: &mut Session) -> Result<(), WebError> {
        st.sessions.renew_id(s).await?;
        self.cookies.push(CookieChange::Session(s.id.clone()));
        Ok(())
    }

    /// Ends the browser session; the cookie is cleared.
    pub async fn end_session(&mut self, st: &AppState) -> Result<(), WebError> {
        if let Some(s) = self.session.take() {
            st.sessions.destroy(&s).await?;
        }
        self.cookies.push(CookieChange::EndSession);
        Ok(())
    }

    /// A form posted without a live session or with a wrong CSRF token changes nothing. (Forms
    /// not yet on [`CsrfForm`].)
    pub fn require_csrf(&self, token: Option<&str>) -> Result<(), WebError> {
        match &self.session {
            Some(s) if s.csrf_ok(token) => Ok(()),
            _ => Err(session_expired(&self.tr)),
        }
    }

    /// Remembers a language picked on a page (cookie, and the session if there is one).
    pub async fn pick_language(&mut self, st: &AppState, lang: Lang) -> Result<(), WebError> {
        if let Some(mut s) = self.session.take() {
            s.data.lang = Some(lang);
            self.save(st, &mut s).await?;
            self.session = Some(s);
        }
        self.tr = Tr::new(lang);
        self.cookies.push(CookieChange::Lang(lang));
        Ok(())
    }
}

/// The page a form gets when its session is gone or its CSRF token is wrong: nothing changed,
/// start again.
pub fn session_expired(tr: &Tr) -> WebError {
    WebError::page(StatusCode::FORBIDDEN, tr, "session-expired-title", "csrf-failed", "csrf")
}

#[derive(serde::Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// A state-changing form: the request's context, its session, and the form, after the CSRF
/// token matched the session's (in constant time). Without a session or with a wrong token the
/// handler never runs and nothing changes.
pub struct CsrfForm<T> {
    pub ctx: Ctx,
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let mut ctx = Ctx::from_request_parts(&mut parts, st).await?;
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), st)
            .await
            .map_err(|_| bad_form(&ctx.tr))?;
        let token: CsrfField =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| bad_form(&ctx.tr))?;
        let session = match ctx.session.take() {
            Some(s) if s.csrf_ok(token.csrf.as_deref()) => s,
            _ => return Err(session_expired(&ctx.tr)),
        };
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| bad_form(&ctx.tr))?;
        Ok(CsrfForm { ctx, session, form })
    }
}

fn bad_form(tr: &Tr) -> WebError {
    WebError::page(StatusCode::BAD_REQUEST, tr, "error-title", "form-invalid", "invalid_form")
}
