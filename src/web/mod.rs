//! HTTP: routes, request context (session cookie, language, client address), security headers.
//! Handlers stay thin: they parse, call the protocol modules, and render.

mod account;
mod activate;
mod eid;
mod eidas;
pub mod error;
mod fas;
mod login;
mod office;
mod oidc;
pub mod pages;
pub mod ratelimit;

use crate::clock::Clock;
use crate::config::Config;
use crate::i18n::{self, Tr};
use crate::keys::KeyService;
use crate::oidc::Provider;
use crate::session::{Session, SessionData, Sessions};
use crate::store::Store;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

pub use error::WebError;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
    pub provider: Arc<Provider>,
    pub sessions: Sessions,
    pub keys: KeyService,
    pub eidas: Option<Arc<crate::eidas::Eidas>>,
    pub bis_register: Option<Arc<dyn crate::linking::BisRegister>>,
    pub fas: Option<Arc<crate::fas::Fas>>,
    pub eid: Option<Arc<crate::eid::EidState>>,
    pub offices: crate::office::Offices,
    /// Encrypts TOTP secrets at rest (keys enrolled at activation or from `/account`).
    pub master: crate::crypto::MasterKey,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub rate_limits: ratelimit::RateLimits,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

pub const LANG_COOKIE: &str = "cozo_lang";

/// The request id header: kept when the load balancer sent one, made (a UUID) otherwise.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl Inner {
    pub fn session_cookie_name(&self) -> &'static str {
        // `__Host-` binds the cookie to this host, https and path / (not possible on plain http).
        if self.cfg.secure_cookies() {
            "__Host-cozo_session"
        } else {
            "cozo_session"
        }
    }

    pub fn session_cookie(&self, s: &Session) -> HeaderValue {
        let secure = if self.cfg.secure_cookies() { "; Secure" } else { "" };
        let v = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.session_cookie_name(),
            s.id
        );
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    pub fn clear_session_cookie(&self) -> HeaderValue {
        let secure = if self.cfg.secure_cookies() { "; Secure" } else { "" };
        let v = format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            self.session_cookie_name()
        );
        HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// What a browser request carries: its session (if any), language and address.
pub struct Ctx {
    pub session: Option<Session>,
    pub tr: Tr,
    pub address: String,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

impl Ctx {
    /// A form posted without a live session or with a wrong CSRF token changes nothing.
    pub fn require_csrf(&self, token: Option<&str>) -> Result<(), WebError> {
        match &self.session {
            Some(s) if s.csrf_ok(token) => Ok(()),
            _ => Err(WebError::page(
                StatusCode::FORBIDDEN,
                &self.tr,
                "session-expired-title",
                "csrf-failed",
                "csrf",
            )),
        }
    }
}

impl AppState {
    pub async fn ctx(&self, headers: &HeaderMap, peer: SocketAddr) -> Result<Ctx, WebError> {
        let session = match cookie(headers, self.session_cookie_name()) {
            Some(id) => self.sessions.load(id).await?,
            None => None,
        };
        let lang = session
            .as_ref()
            .and_then(|s| s.data.lang.clone())
            .filter(|l| i18n::is_supported(l))
            .or_else(|| {
                cookie(headers, LANG_COOKIE).filter(|l| i18n::is_supported(l)).map(str::to_string)
            })
            .or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(i18n::from_accept_language)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| self.cfg.ui.default_language.clone());
        let address = self.client_address(headers, peer);
        Ok(Ctx { session, tr: Tr::new(&lang), address })
    }

    /// The client's address: the peer, or the last `X-Forwarded-For` hop behind a trusted load
    /// balancer (`[server] trust_forwarded_for`). The session throttle and the rate limiter
    /// both key on it.
    pub fn client_address(&self, headers: &HeaderMap, peer: SocketAddr) -> String {
        if self.cfg.server.trust_forwarded_for {
            headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                // The last hop is the one our own proxy added; earlier entries are the client's
                // word (a proxy that appends would otherwise let clients pick their address).
                .and_then(|v| v.rsplit(',').next())
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| peer.ip().to_string())
        } else {
            peer.ip().to_string()
        }
    }

    /// The session, or a new one (forms need one for their CSRF token).
    pub async fn session_or_new(&self, ctx: &mut Ctx) -> Result<(Session, bool), WebError> {
        match ctx.session.take() {
            Some(s) => Ok((s, false)),
            None => Ok((self.sessions.create(SessionData::default()).await?, true)),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let max_body = state.cfg.server.max_body_bytes;
    let hsts = state.cfg.secure_cookies();
    Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/jwks", get(oidc::jwks))
        .route("/authorize", get(oidc::authorize_get).post(oidc::authorize_post))
        .route("/token", post(oidc::token))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/revoke", post(oidc::revoke))
        .route("/par", post(oidc::par))
        .route("/logout", get(oidc::logout_get).post(oidc::logout_post))
        .route("/login", get(login::chooser))
        .route("/login/key", get(login::key_form).post(login::key_password))
        .route("/login/key/code", get(login::code_form).post(login::key_code))
        .route("/login/eidas", get(eidas::start))
        .route("/login/fas", get(fas::start))
        .route("/login/eid", get(eid::start))
        .route("/login/eid/return", get(eid::finish))
        .route("/oidc/fas/callback", get(fas::callback))
        .route("/saml/eidas/metadata", get(eidas::metadata))
        .route("/saml/eidas/acs", post(eidas::acs))
        .route("/saml/eidas/continue", get(eidas::continue_login))
        .route("/link", get(eidas::link_form).post(eidas::link_submit))
        .route("/link/request-bis", post(eidas::request_bis))
        .route("/static/autosubmit.js", get(autosubmit_js))
        .route("/static/webauthn.js", get(webauthn_js))
        .route("/office", get(office::list))
        .route("/office/login", get(office::login))
        .route("/office/register", get(office::register_form).post(office::register))
        .route("/office/registrations/{id}", get(office::show))
        .route("/office/registrations/{id}/reissue", post(office::reissue))
        .route("/activate/account", get(activate::account_form).post(activate::account))
        .route("/activate/keys", get(activate::keys).post(activate::choose_key))
        .route("/activate/keys/token", get(activate::token_card))
        .route("/activate/keys/totp", post(activate::confirm_totp))
        .route("/activate/keys/sms", post(activate::sms))
        .route("/activate/keys/webauthn", post(activate::webauthn))
        .route("/activate/finish", post(activate::finish))
        .route("/activate/{token}", get(activate::code_form).post(activate::code))
        .route("/account/keys/add", post(account::add_key))
        .route("/account/login", get(account::login_again))
        .route("/account/keys/{id}/remove", post(account::remove_key))
        .route("/account", get(account::show))
        .route("/account/logout", post(account::logout))
        .route("/lang/{code}", get(set_language))
        .route("/static/style.css", get(stylesheet))
        .route("/demo/mailbox", get(mailbox))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(|| async { Redirect::to("/account") }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::limit))
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req, next| security_headers(req, next, hsts)))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        // Every log line of a request carries its id (JSON logs: the span's `request_id`), and
        // the response returns it, so one login can be followed across replicas and the LB.
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %req.method(),
                        path = %req.uri().path()
                    )
                })
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                ),
        )
        .layer(tower_http::request_id::PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(tower_http::request_id::SetRequestIdLayer::new(
            REQUEST_ID,
            tower_http::request_id::MakeRequestUuid,
        ))
}

/// The eID listener's routes (its own TLS port).
pub fn eid_router(state: AppState) -> Router {
    Router::new()
        .route("/eid/start", get(eid::listener_start))
        .route("/static/style.css", get(stylesheet))
        .with_state(state)
        .layer(axum::middleware::from_fn(move |req, next| security_headers(req, next, true)))
}

async fn security_headers(req: Request, next: Next, hsts: bool) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, k: HeaderName, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    if hsts {
        set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains");
    }
    resp
}

async fn autosubmit_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/autosubmit.js"),
    )
}

async fn webauthn_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/webauthn.js"),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
}

#[derive(serde::Deserialize)]
struct Back {
    back: Option<String>,
}

/// Remembers the language a person picked (cookie and session) and returns to the page.
async fn set_language(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<Back>,
) -> Result<Response, WebError> {
    if !i18n::is_supported(&code) {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let ctx = st.ctx(&headers, peer).await?;
    if let Some(mut s) = ctx.session {
        s.data.lang = Some(code.clone());
        st.sessions.save(&mut s).await?;
    }
    // Only local paths: never an open redirect.
    let back = q.back.filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'));
    let mut resp = Redirect::to(back.as_deref().unwrap_or("/login")).into_response();
    let secure = if st.cfg.secure_cookies() { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={code}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Counts each request by route and status; a 429 from a handler (a lock running) is a
/// throttling event. Inside the rate limiter: its own refusals are counted there.
async fn count_requests(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status();
    st.metrics.http_request(&route, status.as_u16());
    if status == StatusCode::TOO_MANY_REQUESTS {
        st.metrics.throttle(crate::metrics::ThrottleEvent::RefusedWhileLocked);
    }
    resp
}

/// Prometheus metrics. With `[server] metrics_token` set, only for `Authorization: Bearer
/// <token>` (compared in constant time); unset, open: keep `/metrics` off the internet at the
/// load balancer then.
async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &st.cfg.server.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ok: bool = subtle::ConstantTimeEq::ct_eq(
            crate::crypto::sha256(given.as_bytes()).as_slice(),
            crate::crypto::sha256(token.as_bytes()).as_slice(),
        )
        .into();
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
                "a bearer token is required\n",
            )
                .into_response();
        }
    }
    match st.metrics.render(&st.store).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
            .into_response(),
        Err(e) => WebError::Internal(e.to_string()).into_response(),
    }
}

async fn readyz(State(st): State<AppState>) -> Response {
    let db = st.store.ping().await.is_ok();
    let keys = st.provider.keys.current().active(crate::oidc::signing::SigningAlg::Rs256).is_some();
    let body = serde_json::json!({ "database": db, "keys": keys });
    let status = if db && keys { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// The demo mailbox: what the outbox holds, when no SMS gateway or SMTP server is configured.
async fn mailbox(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if !st.cfg.demo_mailbox() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let ctx = st.ctx(&headers, peer).await?;
    let messages = st.store.outbox(100).await?;
    let page = pages::Mailbox {
        c: pages::Chrome::new(ctx.tr.clone(), "/demo/mailbox"),
        messages: messages
            .into_iter()
            .map(|m| pages::MailItem {
                when: ctx.tr.datetime(m.created_at),
                channel: m.channel,
                recipient: m.recipient,
                subject: m.subject.unwrap_or_default(),
                body: m.body,
            })
            .collect(),
    };
    Ok(pages::render(StatusCode::OK, &page))
}
