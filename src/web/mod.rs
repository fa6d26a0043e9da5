//! HTTP: routes, request context (session cookie, language, client address), security headers.
//! Handlers stay thin: they parse, call the protocol modules, and render.

mod account;
mod activate;
mod apps;
mod eid;
mod eidas;
pub mod error;
mod eudiw;
pub mod extract;
mod fas;
mod login;
mod office;
mod oidc;
pub mod pages;
pub mod ratelimit;

use crate::clock::Clock;
use crate::config::Config;
use crate::i18n::{self};
use crate::keys::KeyService;
use crate::oidc::Provider;
use crate::session::Browsers;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

pub use error::WebError;
pub use extract::{CrossSite, CsrfForm, Ctx};

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub cfg: Arc<Config>,
    /// `/metrics` and the demo mailbox: use cases of their own modules.
    pub exposition: crate::metrics::Exposition,
    pub mailbox: crate::outbox::Mailbox,
    pub clock: Clock,
    pub provider: Arc<Provider>,
    pub browsers: Browsers,
    pub keys: KeyService,
    pub eidas: Option<Arc<crate::eidas::Eidas>>,
    pub eudiw: Option<Arc<crate::eudiw::Eudiw>>,
    pub linking: crate::linking::Linking,
    pub fas: Option<Arc<crate::fas::callback::FederalLogin>>,
    pub eid: Option<Arc<crate::eid::EidState>>,
    pub eid_logins: crate::eid::login::EidLogins,
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

    /// The client's address: the peer, or the last `X-Forwarded-For` hop behind a trusted load
    /// balancer (`[server] trust_forwarded_for`). The session throttle and the rate limiter
    /// both key on it.
    /// [`AppState::client_address`] of a request: its connection's peer (axum's `ConnectInfo`;
    /// unspecified when the server was started without it) and its headers.
    pub fn request_address(
        &self,
        extensions: &axum::http::Extensions,
        headers: &HeaderMap,
    ) -> String {
        let peer = extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        self.client_address(headers, peer)
    }

    fn client_address(&self, headers: &HeaderMap, peer: SocketAddr) -> String {
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
}

pub fn router(state: AppState) -> Router {
    let max_body = state.cfg.server.max_body_bytes;
    let hsts = state.cfg.secure_cookies();
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(oidc::discovery))
        .route("/jwks", get(oidc::jwks))
        .route("/authorize", get(oidc::authorize_get).post(oidc::authorize_post))
        .route("/token", post(oidc::token))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .route("/revoke", post(oidc::revoke))
        .route("/introspect", post(oidc::introspect))
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
        .route("/login/eudiw", get(eudiw::start))
        .route("/eudiw/request/{id}", get(eudiw::request_object))
        .route("/eudiw/response", post(eudiw::response))
        .route("/eudiw/poll/{id}", get(eudiw::poll))
        .route("/eudiw/continue", get(eudiw::continue_login))
        .route("/static/eudiw.js", get(eudiw::script))
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
        .route("/account/sign-out-everywhere", post(account::sign_out_everywhere))
        .route("/account/apps", get(apps::show))
        .route("/account/apps/{client_id}/revoke", post(apps::revoke))
        .route("/lang/{code}", get(set_language))
        .route("/static/style.css", get(stylesheet))
        .route("/demo/mailbox", get(mailbox))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(|| async { Redirect::to("/account") }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(axum::middleware::from_fn_with_state(state.clone(), extract::cookie_layer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::limit))
        .with_state(state);
    with_security_headers(app, hsts)
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
    let app = Router::new()
        .route("/eid/start", get(eid::listener_start))
        .route("/static/style.css", get(stylesheet))
        .layer(axum::middleware::from_fn_with_state(state.clone(), extract::cookie_layer))
        .with_state(state);
    with_security_headers(app, true)
}

/// The mTLS listener's routes (RFC 8705): the endpoints a client may authenticate at with its
/// TLS certificate (`mtls_endpoint_aliases` in discovery).
pub fn mtls_router(state: AppState) -> Router {
    let app = Router::new()
        .route("/token", post(oidc::token))
        .route("/introspect", post(oidc::introspect))
        .route("/revoke", post(oidc::revoke))
        .route("/userinfo", get(oidc::userinfo).post(oidc::userinfo))
        .with_state(state);
    with_security_headers(app, true)
}

/// The headers every response carries unless its handler set its own (tower-http).
fn with_security_headers(r: Router, hsts: bool) -> Router {
    use tower_http::set_header::SetResponseHeaderLayer as H;
    let v = HeaderValue::from_static;
    let r = r
        .layer(H::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            v("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
               connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ))
        .layer(H::if_not_present(header::X_CONTENT_TYPE_OPTIONS, v("nosniff")))
        .layer(H::if_not_present(header::X_FRAME_OPTIONS, v("DENY")))
        .layer(H::if_not_present(header::REFERRER_POLICY, v("no-referrer")))
        .layer(H::if_not_present(header::CACHE_CONTROL, v("no-store")));
    if hsts {
        r.layer(H::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            v("max-age=31536000; includeSubDomains"),
        ))
    } else {
        r
    }
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
    mut ctx: Ctx,
    Path(code): Path<String>,
    Query(q): Query<Back>,
) -> Result<Response, WebError> {
    let Some(lang) = i18n::Lang::parse(&code) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    ctx.pick_language(lang).await?;
    // Only local paths: never an open redirect.
    let back = q.back.filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'));
    Ok(Redirect::to(back.as_deref().unwrap_or("/login")).into_response())
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
    match st.exposition.text().await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
            .into_response(),
        Err(e) => WebError::internal(e).into_response(),
    }
}

async fn readyz(State(st): State<AppState>) -> Response {
    let (db, keys) = st.provider.readiness().await;
    let body = serde_json::json!({ "database": db, "keys": keys });
    let status = if db && keys { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

/// The demo mailbox: what the outbox holds, when no SMS gateway or SMTP server is configured.
async fn mailbox(State(st): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    if !st.cfg.demo_mailbox() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let messages = st.mailbox.messages().await?;
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
