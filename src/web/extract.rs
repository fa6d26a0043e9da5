//! What every browser request carries, extracted once (kanidm's `https/extractors` are the model):
//! - [`Ctx`]: the clock read of this request, the session (if any), the language and the client
//!   address;
//! - [`CsrfForm`]: a state-changing form, checked against the session's CSRF token before the
//!   handler runs;
//! - who a page is for ([`Admit`]): the office's [`Operator`], the person setting up keys
//!   ([`Enrolling`], [`ChoosingAccount`]); [`AdmittedForm`] is their forms, CSRF-checked first;
//! - the session cookie, written in one place ([`cookie_layer`]) whatever the handler did to the
//!   session (created, renewed, ended).

use super::{AppState, WebError};
use crate::i18n::{self, Lang, Tr};
use crate::keys::enrol::EnrolmentStage;
use crate::keys::Account;
use crate::office::OperatorCheck;
use crate::session::{Browser, Enrolment, Session, SessionCookie};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::de::DeserializeOwned;
use std::future::Future;
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
    browser: Browser,
    cookies: CookieSlot,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, WebError> {
        let now = st.clock.now();
        let jar = CookieJar::from_headers(&parts.headers);
        let cookie = jar.get(st.session_cookie_name()).map(|c| c.value());
        let (browser, session) = st.browsers.open(cookie, now).await?;
        let lang = request_language(&parts.headers, session.as_ref())
            .unwrap_or(st.cfg.ui.default_language);
        let address = st.request_address(&parts.extensions, &parts.headers);
        let cookies = parts.extensions.get::<CookieSlot>().cloned().unwrap_or_default();
        Ok(Ctx { now, session, tr: Tr::new(lang), address, browser, cookies })
    }
}

/// A request that arrives cross-site, where a browser does not send its `SameSite=Lax` session
/// cookie (a SAML node's POST to the ACS; a wallet's requests): the request's clock read,
/// language and client address, and no session. A cookie that does arrive (a client that sends
/// cookies everywhere) is not looked up: such a handler must not depend on it, and it saves a
/// database read per login (BENCHMARKS.md, #17).
pub struct CrossSite {
    pub now: i64,
    pub tr: Tr,
    pub address: String,
}

impl FromRequestParts<AppState> for CrossSite {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, WebError> {
        let now = st.clock.now();
        let lang = request_language(&parts.headers, None).unwrap_or(st.cfg.ui.default_language);
        let address = st.request_address(&parts.extensions, &parts.headers);
        Ok(CrossSite { now, tr: Tr::new(lang), address })
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
    pub async fn session_or_new(&mut self) -> Result<Session, WebError> {
        let (s, cookie) = self.browser.or_new(self.session.take()).await?;
        if let Some(c) = cookie {
            self.set_session_cookie(c);
        }
        Ok(s)
    }

    /// The session, or a new one that is stored when the handler saves it (which it must).
    pub fn session_or_unsaved(&mut self) -> Session {
        let (s, cookie) = self.browser.or_unsaved(self.session.take());
        if let Some(c) = cookie {
            self.set_session_cookie(c);
        }
        s
    }

    /// The session, which a page that follows a form must have.
    pub fn take_session(&mut self) -> Result<Session, WebError> {
        self.session.take().ok_or_else(|| session_expired(&self.tr))
    }

    /// Saves the session's data (and extends its life).
    pub async fn save(&self, s: &mut Session) -> Result<(), WebError> {
        Ok(self.browser.save(s).await?)
    }

    /// A fresh session id after a login (no session fixation), the data saved with it; the
    /// cookie follows.
    pub async fn renew(&self, s: &mut Session) -> Result<(), WebError> {
        let c = self.browser.renew(s).await?;
        self.set_session_cookie(c);
        Ok(())
    }

    /// Ends the browser session; the cookie is cleared.
    pub async fn end_session(&mut self) -> Result<(), WebError> {
        let c = self.browser.end(self.session.take()).await?;
        self.set_session_cookie(c);
        Ok(())
    }

    /// Remembers a language picked on a page (cookie, and the session if there is one).
    pub async fn pick_language(&mut self, lang: Lang) -> Result<(), WebError> {
        if let Some(mut s) = self.session.take() {
            self.browser.keep_language(&mut s, lang).await?;
            self.session = Some(s);
        }
        self.tr = Tr::new(lang);
        self.cookies.push(CookieChange::Lang(lang));
        Ok(())
    }

    fn set_session_cookie(&self, c: SessionCookie) {
        self.cookies.push(match c {
            SessionCookie::Set(id) => CookieChange::Session(id),
            SessionCookie::Clear => CookieChange::EndSession,
        });
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

/// Who a page or a form is for, decided from the request's context and session before the
/// handler runs; the rejection is the page (or the redirect) that says why not. `path` is the
/// request's.
pub trait Admit: Sized {
    fn admit(
        st: &AppState,
        ctx: Ctx,
        session: Option<Session>,
        path: &str,
    ) -> impl Future<Output = Result<Self, Response>> + Send;
}

/// Pages (`FromRequestParts`) for each [`Admit`]: the request's [`Ctx`], then the admission.
macro_rules! admitted_page {
    ($($who:ty),+) => {$(
        impl FromRequestParts<AppState> for $who {
            type Rejection = Response;

            async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
                let mut ctx =
                    Ctx::from_request_parts(parts, st).await.map_err(IntoResponse::into_response)?;
                let session = ctx.session.take();
                <$who>::admit(st, ctx, session, parts.uri.path()).await
            }
        }
    )+};
}

admitted_page!(Operator, Enrolling, ChoosingAccount);

/// A state-changing form from someone `W` admits: first [`CsrfForm`]'s check (a forged post
/// changes nothing, not even the session), then `W`'s.
pub struct AdmittedForm<W, T> {
    pub who: W,
    pub form: T,
}

impl<W: Admit + Send, T: DeserializeOwned + Send> FromRequest<AppState> for AdmittedForm<W, T> {
    type Rejection = Response;

    async fn from_request(req: Request, st: &AppState) -> Result<Self, Response> {
        let path = req.uri().path().to_string();
        let CsrfForm { ctx, session, form } =
            CsrfForm::from_request(req, st).await.map_err(IntoResponse::into_response)?;
        let who = W::admit(st, ctx, Some(session), &path).await?;
        Ok(AdmittedForm { who, form })
    }
}

/// The operator of a registration office behind this browser (SPEC §7): logged in, at
/// substantial or higher, and an operator. Otherwise: to the login (coming back here after it),
/// or the page that says the login is too weak or not an operator's (kanidm's
/// `https/extractors` are the model).
pub struct Operator {
    pub ctx: Ctx,
    pub session: Session,
    pub operator: crate::office::Operator,
}

impl Admit for Operator {
    async fn admit(
        st: &AppState,
        mut ctx: Ctx,
        session: Option<Session>,
        path: &str,
    ) -> Result<Self, Response> {
        let login = session.as_ref().and_then(|s| s.data.login.as_ref());
        let check =
            st.offices.operator(login).await.map_err(|e| WebError::from(e).into_response())?;
        match (check, session) {
            (OperatorCheck::Operator(operator), Some(session)) => {
                Ok(Operator { ctx, session, operator })
            }
            (OperatorCheck::LevelTooLow, _) => Err(super::office::level_too_low(&ctx.tr)),
            (OperatorCheck::NotOperator, _) => Err(super::office::not_operator(&ctx.tr)),
            (_, session) => {
                ctx.session = session;
                Err(log_in_first(&mut ctx, super::office::return_to(path))
                    .await
                    .unwrap_or_else(IntoResponse::into_response))
            }
        }
    }
}

/// To the login, coming back to `return_to` after it (a login waiting for an app is dropped).
async fn log_in_first(ctx: &mut Ctx, return_to: &str) -> Result<Response, WebError> {
    let mut s = ctx.session_or_new().await?;
    s.data.return_to = Some(return_to.to_string());
    s.data.pending = None;
    ctx.save(&mut s).await?;
    Ok(Redirect::to("/login").into_response())
}

/// A person setting up keys (SPEC §7): a live enrolment in the session, and the account
/// (username and password chosen) the keys are for. Without an enrolment: the page that says
/// so; before the account: to the account page.
pub struct Enrolling {
    pub ctx: Ctx,
    pub session: Session,
    /// The session's enrolment, as the use cases change it ([`Enrolling::keep`] saves it).
    pub enrolment: Enrolment,
    pub account: Account,
}

impl Admit for Enrolling {
    async fn admit(
        st: &AppState,
        ctx: Ctx,
        session: Option<Session>,
        _path: &str,
    ) -> Result<Self, Response> {
        match enrolment_stage(st, &ctx, session).await? {
            (EnrolmentStage::Keys(account), Some((session, enrolment))) => {
                Ok(Enrolling { ctx, session, enrolment, account })
            }
            (EnrolmentStage::ChoosingAccount, _) => Err(super::activate::to_account_page()),
            _ => Err(super::activate::no_enrolment(&ctx.tr)),
        }
    }
}

/// A person at the first step of an activation: a live enrolment whose username and password
/// are not chosen yet. Without an enrolment: the page that says so; after the account: to the
/// keys.
pub struct ChoosingAccount {
    pub ctx: Ctx,
    pub session: Session,
    pub enrolment: Enrolment,
}

impl Admit for ChoosingAccount {
    async fn admit(
        st: &AppState,
        ctx: Ctx,
        session: Option<Session>,
        _path: &str,
    ) -> Result<Self, Response> {
        match enrolment_stage(st, &ctx, session).await? {
            (EnrolmentStage::ChoosingAccount, Some((session, enrolment))) => {
                Ok(ChoosingAccount { ctx, session, enrolment })
            }
            (EnrolmentStage::Keys(_) | EnrolmentStage::AccountGone, _) => {
                Err(super::activate::to_keys_page())
            }
            _ => Err(super::activate::no_enrolment(&ctx.tr)),
        }
    }
}

/// The stage of the session's enrolment, with the session and the enrolment when there is one.
async fn enrolment_stage(
    st: &AppState,
    ctx: &Ctx,
    session: Option<Session>,
) -> Result<(EnrolmentStage, Option<(Session, Enrolment)>), Response> {
    let enrolment = session.as_ref().and_then(|s| s.data.enrol.clone());
    let stage = st
        .keys
        .enrolment_stage(enrolment.as_ref(), ctx.now)
        .await
        .map_err(|e| WebError::from(e).into_response())?;
    Ok((stage, session.zip(enrolment)))
}

/// Saves `enrolment` in the session when a use case changed it.
async fn keep_enrolment(
    ctx: &Ctx,
    session: &mut Session,
    enrolment: &Enrolment,
) -> Result<(), WebError> {
    if session.data.enrol.as_ref() != Some(enrolment) {
        session.data.enrol = Some(enrolment.clone());
        ctx.save(session).await?;
    }
    Ok(())
}

impl Enrolling {
    /// Keeps the enrolment's changes in the session (saved only when something changed).
    pub async fn keep(&mut self) -> Result<(), WebError> {
        keep_enrolment(&self.ctx, &mut self.session, &self.enrolment).await
    }

    /// Takes the open security-key challenge out of the enrolment and saves that before the
    /// answer is checked: a challenge is used once, whatever the answer.
    pub async fn take_security_key_challenge(
        &mut self,
    ) -> Result<Option<serde_json::Value>, WebError> {
        let challenge = self.enrolment.webauthn.take();
        self.keep().await?;
        Ok(challenge)
    }

    /// Ends the enrolment (finished): the session forgets it.
    pub async fn end(&mut self) -> Result<(), WebError> {
        self.session.data.enrol = None;
        self.ctx.save(&mut self.session).await
    }
}

impl ChoosingAccount {
    /// Keeps the enrolment's changes in the session (saved only when something changed).
    pub async fn keep(&mut self) -> Result<(), WebError> {
        keep_enrolment(&self.ctx, &mut self.session, &self.enrolment).await
    }
}
