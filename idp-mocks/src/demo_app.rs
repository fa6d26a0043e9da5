//! Demo relying app: a small web app that logs people in through the broker with OpenID Connect
//! (authorization code flow with PKCE S256) and shows the ID token's claims and the userinfo
//! response.
//!
//! Several apps (each its own OpenID Connect client) live side by side in one server, under
//! `/{path}/…`:
//!
//! * `GET /` lists the apps with a "Log in" button each;
//! * `GET /{path}/login` redirects to the broker (optional `acr_values`, `prompt`, `ui_locales`,
//!   `max_age` and `login_hint` query parameters are passed through);
//! * `GET /{path}/callback` checks `state` (bound to the browser with a cookie) and `iss`
//!   (RFC 9207), exchanges the code, verifies the ID token and shows its claims;
//! * `POST /{path}/backchannel-logout` receives the broker's logout tokens (OpenID Connect
//!   Back-Channel Logout 1.0): verified with the broker's JWKS, they end this app's sessions of
//!   that broker session (`sid`), so logging out of one app ends the others;
//! * `GET /demo.css` is the style sheet (no inline script or style anywhere).
//!
//! This is a demo: pending logins and app sessions live in server memory.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError,
    Client, ClientId, ClientSecret, CsrfToken, DiscoveryError, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IdTokenClaims, IdTokenFields,
    IssuerUrl, LogoutProviderMetadata, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl,
    RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse,
    UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// One relying party (OpenID Connect client) of the demo app.
#[derive(Clone, Deserialize)]
pub struct DemoApp {
    /// Shown on the pages, e.g. "Portal".
    pub title: String,
    /// URL path segment of this app, e.g. "portal": the app lives under `/{path}/`.
    /// Letters, digits, `-` and `_` only.
    pub path: String,
    /// Client id registered at the broker.
    pub client_id: String,
    /// Client secret (`client_secret_basic`); `None` = public client, PKCE only.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Requested scopes, e.g. `["openid", "profile", "insz"]` (`openid` is always sent).
    #[serde(default = "default_scope")]
    pub scope: Vec<String>,
    /// Shown on the home page.
    #[serde(default)]
    pub description: String,
}

fn default_scope() -> Vec<String> {
    vec!["openid".to_string()]
}

impl fmt::Debug for DemoApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoApp")
            .field("title", &self.title)
            .field("path", &self.path)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("scope", &self.scope)
            .field("description", &self.description)
            .finish()
    }
}

/// Configuration of the demo app server.
#[derive(Clone, Debug)]
pub struct DemoAppConfig {
    /// The broker's issuer identifier, e.g. `http://localhost:8080`.
    pub issuer: url::Url,
    /// The public URL of this demo app, e.g. `http://localhost:8090`.
    pub public_url: url::Url,
    /// The relying parties served side by side.
    pub apps: Vec<DemoApp>,
}

impl DemoAppConfig {
    fn public_base(&self) -> &str {
        self.public_url.as_str().trim_end_matches('/')
    }

    /// The redirect URI of `app`: `{public_url}/{path}/callback`.
    pub fn redirect_uri(&self, app: &DemoApp) -> String {
        format!("{}/{}/callback", self.public_base(), app.path)
    }

    /// The post-logout redirect URI shared by all apps: `{public_url}/`.
    pub fn post_logout_redirect_uri(&self) -> String {
        format!("{}/", self.public_base())
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.issuer.scheme(), "http" | "https") {
            bail!("demo app: issuer {} is not an http(s) URL", self.issuer);
        }
        if !matches!(self.public_url.scheme(), "http" | "https") {
            bail!("demo app: public URL {} is not an http(s) URL", self.public_url);
        }
        let mut seen = std::collections::HashSet::new();
        for app in &self.apps {
            if app.path.is_empty()
                || !app.path.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                bail!(
                    "demo app {:?}: path {:?} must be non-empty and use only letters, digits, '-' and '_'",
                    app.title,
                    app.path
                );
            }
            if !seen.insert(app.path.as_str()) {
                bail!("demo app: path {:?} is used twice", app.path);
            }
            if app.client_id.is_empty() {
                bail!("demo app {:?}: client_id is empty", app.title);
            }
            RedirectUrl::new(self.redirect_uri(app))
                .with_context(|| format!("demo app {:?}: invalid redirect URI", app.title))?;
        }
        Ok(())
    }
}

/// Serves the demo app on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: DemoAppConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = router(cfg)?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "demo app listening");
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("demo app server failed")
}

// ---------------------------------------------------------------------------------------------
// openidconnect types

/// Every claim that is not a standard claim, so custom claims (`insz`, `professions`,
/// `eidas_person_identifier`, …) are kept.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExtraClaims {
    #[serde(flatten)]
    extra: HashMap<String, Value>,
}
impl AdditionalClaims for ExtraClaims {}

/// Discovery metadata beyond OpenID Connect Discovery 1.0 that the demo app uses
/// (besides `end_session_endpoint`, which [`LogoutProviderMetadata`] holds).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExtraProviderMetadata {
    /// RFC 9207.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for ExtraProviderMetadata {}

type DemoProviderMetadata = ProviderMetadata<
    LogoutProviderMetadata<ExtraProviderMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type DemoIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type DemoIdTokenClaims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;

type DemoTokenResponse = StandardTokenResponse<
    IdTokenFields<
        ExtraClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

type DemoClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    DemoTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

// ---------------------------------------------------------------------------------------------
// Server state

/// How long a login may take between `/login` and `/callback`.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long discovery metadata (and the JWKS) is cached.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// Upper bound on remembered pending logins / logouts (oldest are dropped first).
const STORE_CAPACITY: usize = 10_000;

/// A small map whose entries expire after a fixed time and can be taken once.
struct ExpiringStore<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V> ExpiringStore<K, V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: Mutex::new(HashMap::new()) }
    }

    fn insert(&self, key: K, value: V) {
        self.insert_at(key, value, Instant::now());
    }

    fn take(&self, key: &K) -> Option<V> {
        self.take_at(key, Instant::now())
    }

    fn insert_at(&self, key: K, value: V, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let ttl = self.ttl;
        entries.retain(|_, (created, _)| now.saturating_duration_since(*created) < ttl);
        while entries.len() >= self.capacity.max(1) {
            let oldest =
                entries.iter().min_by_key(|(_, (created, _))| *created).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    entries.remove(&k);
                }
                None => break,
            }
        }
        entries.insert(key, (now, value));
    }

    fn take_at(&self, key: &K, now: Instant) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (created, value) = entries.remove(key)?;
        (now.saturating_duration_since(created) < self.ttl).then_some(value)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

struct PendingLogin {
    app: usize,
    pkce_verifier: PkceCodeVerifier,
    nonce: Nonce,
}

struct Discovered {
    metadata: DemoProviderMetadata,
    fetched: Instant,
}

struct DemoState {
    cfg: DemoAppConfig,
    http: openidconnect::reqwest::Client,
    discovered: tokio::sync::Mutex<Option<Arc<Discovered>>>,
    pending: ExpiringStore<String, PendingLogin>,
    /// Logout `state` → app index, to greet the user back after RP-initiated logout.
    logouts: ExpiringStore<String, usize>,
    /// The apps' own sessions: cookie value → who is logged in to which app.
    sessions: Mutex<HashMap<String, AppSession>>,
    secure_cookies: bool,
}

/// A person logged in to one app (the app's own session, not the broker's).
#[derive(Clone, Debug)]
struct AppSession {
    app: usize,
    sub: String,
    /// The broker session (`sid` of the ID token).
    sid: Option<String>,
}

/// The cookie of an app's own session.
fn session_cookie_name(app: &DemoApp) -> String {
    format!("demo_session_{}", app.path)
}

type Shared = Arc<DemoState>;

fn router(cfg: DemoAppConfig) -> anyhow::Result<Router> {
    cfg.validate()?;
    let http = openidconnect::reqwest::ClientBuilder::new()
        // Following redirects opens the client up to SSRF vulnerabilities.
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .context("demo app: cannot build the HTTP client")?;
    let secure_cookies = cfg.public_url.scheme() == "https";
    let state = Arc::new(DemoState {
        cfg,
        http,
        discovered: tokio::sync::Mutex::new(None),
        pending: ExpiringStore::new(PENDING_TTL, STORE_CAPACITY),
        logouts: ExpiringStore::new(PENDING_TTL, STORE_CAPACITY),
        sessions: Mutex::new(HashMap::new()),
        secure_cookies,
    });
    Ok(Router::new()
        .route("/", get(home))
        .route("/demo.css", get(stylesheet))
        .route("/{app}/login", get(login))
        .route("/{app}/callback", get(callback))
        .route("/{app}/backchannel-logout", post(backchannel_logout))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; style-src 'self'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The callback URL carries the authorization code: never leak it in a Referer.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

impl DemoState {
    fn app_index(&self, path: &str) -> Option<usize> {
        self.cfg.apps.iter().position(|a| a.path == path)
    }

    /// Cached discovery metadata; discovers again when nothing is cached, when the cache is
    /// older than [`DISCOVERY_TTL`], or when `refresh` is set. A failed discovery is not cached,
    /// so the next request tries again (the broker may start after the demo app).
    async fn provider(&self, refresh: bool) -> Result<Arc<Discovered>, String> {
        let mut cached = self.discovered.lock().await;
        if !refresh {
            if let Some(d) = cached.as_ref() {
                if d.fetched.elapsed() < DISCOVERY_TTL {
                    return Ok(d.clone());
                }
            }
        }
        let metadata = self.discover().await?;
        let d = Arc::new(Discovered { metadata, fetched: Instant::now() });
        *cached = Some(d.clone());
        Ok(d)
    }

    async fn discover(&self) -> Result<DemoProviderMetadata, String> {
        let mut last_error = String::new();
        for candidate in issuer_candidates(&self.cfg.issuer) {
            let issuer = IssuerUrl::new(candidate.clone())
                .map_err(|e| format!("invalid issuer {candidate}: {e}"))?;
            match DemoProviderMetadata::discover_async(issuer, &self.http).await {
                Ok(metadata) => return Ok(metadata),
                // The issuer in the metadata differs (e.g. only by a trailing slash): try the
                // other spelling.
                Err(DiscoveryError::Validation(msg)) => last_error = msg,
                Err(e) => {
                    let msg = format!("discovery of {candidate} failed: {}", error_chain(&e));
                    tracing::warn!("{msg}");
                    return Err(msg);
                }
            }
        }
        let msg = format!("discovery of {} failed: {last_error}", self.cfg.issuer);
        tracing::warn!("{msg}");
        Err(msg)
    }

    fn client(&self, metadata: &DemoProviderMetadata, app: &DemoApp) -> Result<DemoClient, String> {
        let redirect = RedirectUrl::new(self.cfg.redirect_uri(app))
            .map_err(|e| format!("invalid redirect URI: {e}"))?;
        Ok(DemoClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(app.client_id.clone()),
            app.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    fn state_cookie(&self, app: &DemoApp, value: &str, max_age: u64) -> String {
        format!(
            "{}={}; Path=/{}/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            state_cookie_name(app),
            value,
            app.path,
            max_age,
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }
}

/// The issuer spellings to try for discovery. `url::Url` always adds a `/` path to a bare
/// origin, while issuers are usually written without it; try both in that case.
fn issuer_candidates(issuer: &url::Url) -> Vec<String> {
    let s = issuer.as_str();
    if issuer.path() == "/" && issuer.query().is_none() && issuer.fragment().is_none() {
        vec![s.trim_end_matches('/').to_string(), s.to_string()]
    } else {
        vec![s.to_string()]
    }
}

fn state_cookie_name(app: &DemoApp) -> String {
    format!("demo_state_{}", app.path)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        cur = cause.source();
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Pages

const CSS: &str = "\
:root { color-scheme: light; --accent: #0b5394; }
body { font-family: system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #f6f7f9; line-height: 1.5; }
header { background: var(--accent); color: #fff; padding: 0.5rem 1.5rem; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
section.app { background: #fff; border: 1px solid #d0d4da; border-radius: 6px; padding: 0.5rem 1.25rem 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
a.button, button { display: inline-block; background: var(--accent); color: #fff; border: 0; border-radius: 4px; padding: 0.5rem 1rem; font: inherit; text-decoration: none; cursor: pointer; margin: 0.25rem 0.5rem 0.25rem 0; }
a.button.secondary { background: #5f6b7a; }
a.button:focus, button:focus, a:focus, input:focus, select:focus, summary:focus { outline: 3px solid #f6b40e; outline-offset: 2px; }
label { display: inline-block; min-width: 8rem; font-weight: 600; }
input, select { font: inherit; padding: 0.25rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border: 1px solid #d0d4da; padding: 0.35rem 0.6rem; text-align: left; vertical-align: top; word-break: break-all; }
thead th { background: #e8ecf1; }
pre { background: #fff; border: 1px solid #d0d4da; padding: 0.75rem; overflow-x: auto; }
.error { color: #a50e0e; font-weight: 600; }
.notice { background: #e6f4ea; border: 1px solid #8bc79b; padding: 0.5rem 1rem; border-radius: 4px; }
";

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

/// Escapes text for HTML element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/demo.css\">\n</head>\n<body>\n\
         <header><p><a href=\"/\">CoZo demo relying party</a></p></header>\n\
         <main>\n{body}\n</main>\n</body>\n</html>\n",
        title = esc(title),
    ))
}

#[derive(Deserialize)]
struct HomeQuery {
    state: Option<String>,
}

async fn home(
    State(st): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HomeQuery>,
) -> Response {
    let mut body = String::from("<h1>Demo apps</h1>\n");
    if let Some(app) = q
        .state
        .filter(|s| !s.is_empty())
        .and_then(|s| st.logouts.take(&s))
        .and_then(|i| st.cfg.apps.get(i))
    {
        body.push_str(&format!(
            "<p class=\"notice\" id=\"logged-out\" role=\"status\" data-logged-out=\"{}\">You have been logged out of {}.</p>\n",
            esc(&app.path),
            esc(&app.title)
        ));
    }
    body.push_str(&format!(
        "<p>Each app below is a separate OpenID Connect client of the broker at <code>{}</code>.</p>\n",
        esc(st.cfg.issuer.as_str())
    ));
    if st.cfg.apps.is_empty() {
        body.push_str("<p>No apps are configured.</p>\n");
    }
    for app in &st.cfg.apps {
        let p = esc(&app.path);
        let kind = if app.client_secret.is_some() {
            "confidential (client_secret_basic and PKCE)"
        } else {
            "public (PKCE only)"
        };
        body.push_str(&format!(
            "<section class=\"app\" data-app=\"{p}\" aria-labelledby=\"app-{p}-title\">\n\
             <h2 id=\"app-{p}-title\">{title}</h2>\n\
             <p>{description}</p>\n\
             <dl>\n<dt>Client id</dt><dd><code>{client_id}</code></dd>\n\
             <dt>Client type</dt><dd>{kind}</dd>\n\
             <dt>Scopes</dt><dd><code>{scope}</code></dd>\n</dl>\n\
             {session}\
             <p><a class=\"button\" href=\"/{p}/login\">Log in</a></p>\n\
             <details>\n<summary>Log in with options</summary>\n\
             <form method=\"get\" action=\"/{p}/login\">\n\
             <p><label for=\"{p}-prompt\">prompt</label>\n\
             <select id=\"{p}-prompt\" name=\"prompt\">\
             <option value=\"\">(not set)</option>\
             <option value=\"login\">login</option>\
             <option value=\"none\">none</option>\
             <option value=\"consent\">consent</option>\
             <option value=\"select_account\">select_account</option>\
             </select></p>\n\
             <p><label for=\"{p}-acr\">acr_values</label>\n\
             <input id=\"{p}-acr\" name=\"acr_values\" type=\"text\" autocomplete=\"off\"></p>\n\
             <p><label for=\"{p}-locales\">ui_locales</label>\n\
             <input id=\"{p}-locales\" name=\"ui_locales\" type=\"text\" autocomplete=\"off\" placeholder=\"nl fr en\"></p>\n\
             <p><label for=\"{p}-max-age\">max_age</label>\n\
             <input id=\"{p}-max-age\" name=\"max_age\" type=\"number\" min=\"0\" inputmode=\"numeric\"></p>\n\
             <p><label for=\"{p}-login-hint\">login_hint</label>\n\
             <input id=\"{p}-login-hint\" name=\"login_hint\" type=\"text\" autocomplete=\"off\"></p>\n\
             <p><button type=\"submit\">Log in with these options</button></p>\n\
             </form>\n</details>\n</section>\n",
            title = esc(&app.title),
            description = esc(&app.description),
            client_id = esc(&app.client_id),
            scope = esc(&app.scope.join(" ")),
            session = session_status(&st, &headers, app),
        ));
    }
    layout("Demo apps", &body).into_response()
}

/// Whether this browser is logged in to `app`, or its session was ended by the broker.
fn session_status(st: &DemoState, headers: &HeaderMap, app: &DemoApp) -> String {
    let Some(id) = cookie_value(headers, &session_cookie_name(app)).filter(|v| !v.is_empty())
    else {
        return String::new();
    };
    let sessions = st.sessions.lock().unwrap_or_else(|e| e.into_inner());
    match sessions.get(&id) {
        Some(s) => format!(
            "<p class=\"notice\" data-session=\"{}\">Logged in as <code>{}</code> (broker session <code>{}</code>).</p>\n",
            esc(&app.path),
            esc(&s.sub),
            esc(s.sid.as_deref().unwrap_or("-"))
        ),
        None => format!(
            "<p class=\"notice\" data-session-ended=\"{}\">Not logged in: the session in this app has ended (logged out here or in another app).</p>\n",
            esc(&app.path)
        ),
    }
}

#[derive(Deserialize)]
struct BackchannelForm {
    logout_token: Option<String>,
}

/// OpenID Connect Back-Channel Logout 1.0 §2.8: verifies the logout token and ends this app's
/// sessions of its `sid` (or of its `sub` when it has no `sid`); 400 when the token is invalid.
async fn backchannel_logout(
    State(st): State<Shared>,
    Path(path): Path<String>,
    axum::extract::Form(f): axum::extract::Form<BackchannelForm>,
) -> Response {
    let Some(idx) = st.app_index(&path) else {
        return not_found().await;
    };
    let refuse = |why: String| {
        tracing::warn!(app = %path, "logout token refused: {why}");
        let body = serde_json::json!({ "error": "invalid_request", "error_description": why });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    };
    let Some(token) = f.logout_token.filter(|t| !t.is_empty()) else {
        return refuse("logout_token is missing".into());
    };
    let claims = match verify_logout_token(&st, &st.cfg.apps[idx], &token).await {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    let sid = claims.get("sid").and_then(Value::as_str);
    let sub = claims.get("sub").and_then(Value::as_str);
    let ended = {
        let mut sessions = st.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let before = sessions.len();
        sessions.retain(|_, s| {
            let of_token = match sid {
                Some(sid) => s.sid.as_deref() == Some(sid),
                None => sub == Some(s.sub.as_str()),
            };
            !(s.app == idx && of_token)
        });
        before - sessions.len()
    };
    tracing::info!(app = %path, ended, "back-channel logout");
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

/// A logout token's claims, once its signature (a key of the broker's JWKS), `typ`, `iss`,
/// `aud`, `iat`/`exp`, `events` and the absence of `nonce` are checked.
async fn verify_logout_token(
    st: &DemoState,
    app: &DemoApp,
    token: &str,
) -> Result<serde_json::Map<String, Value>, String> {
    use openidconnect::JsonWebKey as _;
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS".into());
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| "bad base64url".to_string());
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|e| e.to_string())?;
    if header.get("typ").and_then(Value::as_str) != Some("logout+jwt") {
        return Err("typ is not logout+jwt".into());
    }
    let alg: CoreJwsSigningAlgorithm =
        serde_json::from_value(header.get("alg").cloned().unwrap_or_default())
            .map_err(|_| "unknown alg".to_string())?;
    let kid = header.get("kid").and_then(Value::as_str).unwrap_or_default().to_string();
    let message = format!("{h}.{p}");
    let signature = decode(sig)?;
    let mut verified = false;
    for refresh in [false, true] {
        let provider = st.provider(refresh).await?;
        let keys = provider.metadata.jwks().keys();
        if let Some(key) = keys.iter().find(|k| k.key_id().map(|i| i.as_str()) == Some(&kid)) {
            verified = key.verify_signature(&alg, message.as_bytes(), &signature).is_ok();
            break;
        }
    }
    if !verified {
        return Err("the signature is not the broker's".into());
    }
    let claims = jwt_payload(token).ok_or("no claims")?;
    let provider = st.provider(false).await?;
    if claims.get("iss").and_then(Value::as_str) != Some(provider.metadata.issuer().as_str()) {
        return Err("iss is not the broker".into());
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == app.client_id,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&app.client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err("aud is not this app".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or("exp is missing")?;
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or("iat is missing")?;
    if exp + 30 < now || iat > now + 30 {
        return Err("the token is expired or from the future".into());
    }
    let event = "http://schemas.openid.net/event/backchannel-logout";
    if !claims.get("events").and_then(|e| e.get(event)).is_some_and(Value::is_object) {
        return Err("events has no back-channel logout event".into());
    }
    if claims.contains_key("nonce") {
        return Err("a logout token never has a nonce".into());
    }
    if !claims.contains_key("sid") && !claims.contains_key("sub") {
        return Err("neither sid nor sub".into());
    }
    Ok(claims)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        layout(
            "Not found",
            "<h1>Not found</h1>\n<p>There is no such page.</p>\n<p><a href=\"/\">Back to the demo apps</a></p>",
        ),
    )
        .into_response()
}

/// An error page: `<p data-error="CODE">description</p>`.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    code: String,
    description: String,
    /// The OAuth error code of a failed token request, if any.
    oauth_error: Option<String>,
    app: Option<usize>,
}

impl Failure {
    fn new(status: StatusCode, code: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            description: description.into(),
            oauth_error: None,
            app: None,
        }
    }

    fn for_app(mut self, app: usize) -> Self {
        self.app = Some(app);
        self
    }

    fn render(self, st: &DemoState) -> Response {
        let app = self.app.and_then(|i| st.cfg.apps.get(i));
        let heading = match app {
            Some(a) => format!("Login to {} failed", a.title),
            None => "Login failed".to_string(),
        };
        let oauth_attr = self
            .oauth_error
            .as_deref()
            .map(|e| format!(" data-oauth-error=\"{}\"", esc(e)))
            .unwrap_or_default();
        let mut body = format!(
            "<h1>{}</h1>\n<p>Error code: <code>{}</code></p>\n\
             <p class=\"error\" data-error=\"{}\"{}>{}</p>\n",
            esc(&heading),
            esc(&self.code),
            esc(&self.code),
            oauth_attr,
            esc(&self.description)
        );
        if let Some(a) = app {
            body.push_str(&format!(
                "<p><a class=\"button\" href=\"/{}/login\">Try again</a></p>\n",
                esc(&a.path)
            ));
        }
        body.push_str("<p><a href=\"/\">Back to the demo apps</a></p>\n");
        (self.status, layout(&heading, &body)).into_response()
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    acr_values: Option<String>,
    prompt: Option<String>,
    ui_locales: Option<String>,
    max_age: Option<String>,
    login_hint: Option<String>,
}

async fn login(
    State(st): State<Shared>,
    Path(path): Path<String>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let Some(idx) = st.app_index(&path) else {
        return not_found().await;
    };
    match start_login(&st, idx, q).await {
        Ok(r) => r,
        Err(f) => f.for_app(idx).render(&st),
    }
}

async fn start_login(st: &DemoState, idx: usize, q: LoginQuery) -> Result<Response, Failure> {
    let app = &st.cfg.apps[idx];
    let provider = st
        .provider(false)
        .await
        .map_err(|e| Failure::new(StatusCode::BAD_GATEWAY, "discovery_failed", e))?;
    let client = st
        .client(&provider.metadata, app)
        .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "configuration", e))?;
    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(pkce_challenge);
    // The client always sends `openid`; don't send it twice.
    for scope in app.scope.iter().filter(|s| !s.is_empty() && *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    // Passed through verbatim, so the broker's handling of odd values can be tried too.
    for (name, value) in [
        ("acr_values", q.acr_values),
        ("prompt", q.prompt),
        ("ui_locales", q.ui_locales),
        ("max_age", q.max_age),
        ("login_hint", q.login_hint),
    ] {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            request = request.add_extra_param(name, v);
        }
    }
    let (url, state, nonce) = request.url();
    st.pending.insert(state.secret().clone(), PendingLogin { app: idx, pkce_verifier, nonce });
    let cookie = st.state_cookie(app, state.secret(), PENDING_TTL.as_secs());
    Ok((StatusCode::FOUND, [(header::LOCATION, url.to_string()), (header::SET_COOKIE, cookie)])
        .into_response())
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(st): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(idx) = st.app_index(&path) else {
        return not_found().await;
    };
    let app = &st.cfg.apps[idx];
    let result = finish_login(&st, idx, &headers, q).await;
    let mut response = match result {
        Ok((page, session)) => {
            let mut r = page.into_response();
            if let Ok(v) = HeaderValue::from_str(&session) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(f) => f.for_app(idx).render(&st),
    };
    // The state cookie is single use.
    if let Ok(v) = HeaderValue::from_str(&st.state_cookie(app, "", 0)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn finish_login(
    st: &DemoState,
    idx: usize,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<(Html<String>, String), Failure> {
    let app = &st.cfg.apps[idx];
    let bad = |code: &str, d: String| Failure::new(StatusCode::BAD_REQUEST, code, d);

    // 1. state: present, bound to this browser, pending, and for this app.
    let state = q
        .state
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("state_mismatch", "The callback has no state parameter.".into()))?;
    match cookie_value(headers, &state_cookie_name(app)) {
        None => {
            return Err(bad(
                "state_mismatch",
                format!(
                    "This browser has no pending login for {} (the state cookie is missing).",
                    app.title
                ),
            ))
        }
        Some(c) if c != state => {
            return Err(bad(
                "state_mismatch",
                "The state parameter does not belong to this browser's login request.".into(),
            ))
        }
        Some(_) => {}
    }
    let pending = st.pending.take(&state).ok_or_else(|| {
        bad(
            "state_mismatch",
            "The login request is unknown, was already used, or has expired. Please log in again."
                .into(),
        )
    })?;
    if pending.app != idx {
        return Err(bad(
            "state_mismatch",
            "The state parameter belongs to a login request of another app.".into(),
        ));
    }

    // 2. iss (RFC 9207), also for error responses.
    let provider = st
        .provider(false)
        .await
        .map_err(|e| Failure::new(StatusCode::BAD_GATEWAY, "discovery_failed", e))?;
    let issuer = provider.metadata.issuer().as_str().to_string();
    match q.iss.as_deref() {
        Some(iss) if iss != issuer => {
            return Err(bad(
                "issuer_mismatch",
                format!("The iss parameter {iss:?} is not the issuer {issuer:?}."),
            ))
        }
        None if provider
            .metadata
            .additional_metadata()
            .additional_metadata
            .authorization_response_iss_parameter_supported
            == Some(true) =>
        {
            return Err(bad(
                "issuer_mismatch",
                "The provider announces authorization_response_iss_parameter_supported, but the callback has no iss parameter."
                    .into(),
            ))
        }
        _ => {}
    }

    // 3. Error response from the provider.
    if let Some(error) = q.error.filter(|e| !e.is_empty()) {
        let description = q
            .error_description
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| format!("The provider returned the error {error}."));
        return Err(bad(&error, description));
    }
    let code = q
        .code
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("missing_code", "The callback has neither code nor error.".into()))?;

    // 4. Token request.
    let client = st
        .client(&provider.metadata, app)
        .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "configuration", e))?;
    let token_request = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            Failure::new(
                StatusCode::BAD_GATEWAY,
                "token_exchange_failed",
                format!("The provider has no token endpoint: {e}"),
            )
        })?
        .set_pkce_verifier(pending.pkce_verifier);
    let token = token_request.request_async(&st.http).await.map_err(|e| {
        let mut f = Failure::new(StatusCode::BAD_GATEWAY, "token_exchange_failed", "");
        f.description = match &e {
            RequestTokenError::ServerResponse(r) => {
                f.oauth_error = Some(r.error().as_ref().to_string());
                match r.error_description() {
                    Some(d) => format!("Token request failed: {}: {d}", r.error().as_ref()),
                    None => format!("Token request failed: {}", r.error().as_ref()),
                }
            }
            RequestTokenError::Parse(err, body) => format!(
                "Token response could not be parsed: {err}; body: {}",
                String::from_utf8_lossy(body)
            ),
            other => format!("Token request failed: {}", error_chain(other)),
        };
        tracing::warn!(app = %app.path, "{}", f.description);
        f
    })?;
    let id_token = token.id_token().ok_or_else(|| {
        Failure::new(
            StatusCode::BAD_GATEWAY,
            "missing_id_token",
            "The token response has no id_token.",
        )
    })?;

    // 5. ID token verification (signature, iss, aud, azp, nonce, exp, iat), at_hash.
    let invalid = |d: String| Failure::new(StatusCode::BAD_GATEWAY, "id_token_invalid", d);
    let claims = match verify_id_token(&client, id_token, &pending.nonce) {
        Ok(c) => c,
        // Maybe the provider rotated its keys: fetch the JWKS again and retry once.
        Err(ClaimsVerificationError::SignatureVerification(_)) => {
            let fresh = st
                .provider(true)
                .await
                .map_err(|e| Failure::new(StatusCode::BAD_GATEWAY, "discovery_failed", e))?;
            let fresh_client = st
                .client(&fresh.metadata, app)
                .map_err(|e| Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "configuration", e))?;
            verify_id_token(&fresh_client, id_token, &pending.nonce).map_err(|e| {
                invalid(format!("ID token verification failed: {}", error_chain(&e)))
            })?
        }
        Err(e) => {
            return Err(invalid(format!("ID token verification failed: {}", error_chain(&e))))
        }
    };
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| invalid(format!("ID token has no usable alg: {e}")))?;
        let actual = access_token_hash(alg, token.access_token().secret())
            .ok_or_else(|| invalid(format!("Cannot compute at_hash for alg {alg:?}.")))?;
        if actual != expected.as_str() {
            return Err(invalid("The at_hash claim does not match the access token.".into()));
        }
    }

    // The verified token's payload, exactly as signed (custom claims included).
    let payload = jwt_payload(&id_token.to_string())
        .or_else(|| match serde_json::to_value(&claims) {
            Ok(Value::Object(m)) => Some(m),
            _ => None,
        })
        .unwrap_or_default();

    // 6. Userinfo.
    let userinfo: Result<Value, String> =
        match client.user_info(token.access_token().clone(), Some(claims.subject().clone())) {
            Err(e) => Err(format!("The provider has no userinfo endpoint: {e}")),
            Ok(req) => {
                let r: Result<UserInfoClaims<ExtraClaims, CoreGenderClaim>, _> =
                    req.request_async(&st.http).await;
                match r {
                    Ok(c) => serde_json::to_value(&c).map_err(|e| e.to_string()),
                    Err(e) => Err(error_chain(&e)),
                }
            }
        };

    // 7. RP-initiated logout link.
    let logout_url =
        provider.metadata.additional_metadata().end_session_endpoint.clone().and_then(|endpoint| {
            let post_logout = PostLogoutRedirectUrl::new(st.cfg.post_logout_redirect_uri()).ok()?;
            let logout_state = CsrfToken::new_random();
            st.logouts.insert(logout_state.secret().clone(), idx);
            Some(
                LogoutRequest::from(endpoint)
                    .set_id_token_hint(id_token)
                    .set_post_logout_redirect_uri(post_logout)
                    .set_client_id(ClientId::new(app.client_id.clone()))
                    .set_state(logout_state)
                    .http_get_url(),
            )
        });

    let cookie = start_session(st, idx, &payload);
    Ok((render_logged_in(app, &payload, &userinfo, logout_url.as_ref()), cookie))
}

/// Starts this app's own session for a verified login; answers its cookie.
fn start_session(st: &DemoState, idx: usize, payload: &serde_json::Map<String, Value>) -> String {
    let app = &st.cfg.apps[idx];
    let id = CsrfToken::new_random().secret().clone();
    let session = AppSession {
        app: idx,
        sub: payload.get("sub").and_then(Value::as_str).unwrap_or_default().to_string(),
        sid: payload.get("sid").and_then(Value::as_str).map(str::to_string),
    };
    st.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), session);
    format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        session_cookie_name(app),
        if st.secure_cookies { "; Secure" } else { "" }
    )
}

fn verify_id_token(
    client: &DemoClient,
    id_token: &DemoIdToken,
    nonce: &Nonce,
) -> Result<DemoIdTokenClaims, ClaimsVerificationError> {
    let verifier = client.id_token_verifier();
    id_token.claims(&verifier, nonce).cloned()
}

/// `at_hash` (OpenID Connect Core 3.1.3.6): the left half of the hash of the access token,
/// with the hash function of the ID token's `alg`, base64url encoded.
fn access_token_hash(alg: &CoreJwsSigningAlgorithm, access_token: &str) -> Option<String> {
    let name = serde_json::to_value(alg).ok()?;
    let name = name.as_str()?;
    let digest: Vec<u8> = if name == "EdDSA" || name.ends_with("512") {
        Sha512::digest(access_token.as_bytes()).to_vec()
    } else if name.ends_with("384") {
        Sha384::digest(access_token.as_bytes()).to_vec()
    } else if name.ends_with("256") {
        Sha256::digest(access_token.as_bytes()).to_vec()
    } else {
        return None;
    };
    Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

/// The decoded payload of a compact JWS.
fn jwt_payload(jwt: &str) -> Option<serde_json::Map<String, Value>> {
    let part = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A claim value for the table: strings as they are, anything else as compact JSON.
fn claim_display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_logged_in(
    app: &DemoApp,
    claims: &serde_json::Map<String, Value>,
    userinfo: &Result<Value, String>,
    logout_url: Option<&url::Url>,
) -> Html<String> {
    let title = format!("Logged in to {}", app.title);
    let mut body = format!("<h1>{}</h1>\n", esc(&title));
    if let Some(sub) = claims.get("sub") {
        body.push_str(&format!(
            "<p>Subject: <code id=\"subject\">{}</code></p>\n",
            esc(&claim_display(sub))
        ));
    }
    let p = esc(&app.path);
    body.push_str(&format!(
        "<p><a class=\"button\" href=\"/{p}/login?prompt=login\">Log in again with prompt=login</a>\n"
    ));
    match logout_url {
        Some(u) => body.push_str(&format!(
            "<a class=\"button secondary\" id=\"logout\" href=\"{}\">Log out</a></p>\n",
            esc(u.as_str())
        )),
        None => body.push_str(
            "</p>\n<p>The provider announces no end_session_endpoint, so logging out is not possible.</p>\n",
        ),
    }

    body.push_str(
        "<h2 id=\"claims-title\">ID token claims</h2>\n\
         <table aria-labelledby=\"claims-title\">\n\
         <thead><tr><th scope=\"col\">Claim</th><th scope=\"col\">Value</th></tr></thead>\n<tbody>\n",
    );
    for (name, value) in claims {
        let n = esc(name);
        body.push_str(&format!(
            "<tr data-claim=\"{n}\"><th>{n}</th><td>{}</td></tr>\n",
            esc(&claim_display(value))
        ));
    }
    body.push_str("</tbody>\n</table>\n");

    let claims_json = serde_json::to_string_pretty(claims).unwrap_or_default();
    body.push_str(&format!(
        "<h2 id=\"raw-claims-title\">ID token claims as JSON</h2>\n\
         <pre id=\"claims\" aria-labelledby=\"raw-claims-title\">{}</pre>\n",
        esc(&claims_json)
    ));

    body.push_str("<h2 id=\"userinfo-title\">Userinfo response</h2>\n");
    match userinfo {
        Ok(v) => body.push_str(&format!(
            "<pre id=\"userinfo\" aria-labelledby=\"userinfo-title\">{}</pre>\n",
            esc(&serde_json::to_string_pretty(v).unwrap_or_default())
        )),
        Err(e) => body.push_str(&format!(
            "<p class=\"error\" id=\"userinfo-error\">The userinfo request failed: {}</p>\n",
            esc(e)
        )),
    }
    body.push_str("<p><a href=\"/\">Back to the demo apps</a></p>\n");
    layout(&title, &body)
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Form;
    use axum::Json;
    use openidconnect::core::CoreHmacKey;
    use openidconnect::{AccessToken, Audience, StandardClaims, SubjectIdentifier};

    #[test]
    fn store_entries_expire_and_are_taken_once() {
        let store: ExpiringStore<String, u32> = ExpiringStore::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        store.insert_at("a".into(), 1, t0);
        store.insert_at("b".into(), 2, t0);
        assert_eq!(store.take_at(&"a".into(), t0 + Duration::from_secs(59)), Some(1));
        // Taken once.
        assert_eq!(store.take_at(&"a".into(), t0 + Duration::from_secs(59)), None);
        // Expired.
        assert_eq!(store.take_at(&"b".into(), t0 + Duration::from_secs(60)), None);
        assert_eq!(store.take_at(&"missing".into(), t0), None);
    }

    #[test]
    fn store_purges_expired_entries_and_respects_capacity() {
        let store: ExpiringStore<String, u32> = ExpiringStore::new(Duration::from_secs(60), 3);
        let t0 = Instant::now();
        store.insert_at("old".into(), 0, t0);
        // Inserting after the TTL purges the expired entry.
        store.insert_at("a".into(), 1, t0 + Duration::from_secs(61));
        assert_eq!(store.len(), 1);
        store.insert_at("b".into(), 2, t0 + Duration::from_secs(62));
        store.insert_at("c".into(), 3, t0 + Duration::from_secs(63));
        // Full: the oldest ("a") is dropped.
        store.insert_at("d".into(), 4, t0 + Duration::from_secs(64));
        assert_eq!(store.len(), 3);
        let t = t0 + Duration::from_secs(65);
        assert_eq!(store.take_at(&"a".into(), t), None);
        assert_eq!(store.take_at(&"b".into(), t), Some(2));
        assert_eq!(store.take_at(&"d".into(), t), Some(4));
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn issuer_candidates_cover_trailing_slash() {
        let u = url::Url::parse("http://localhost:8080").unwrap();
        assert_eq!(issuer_candidates(&u), vec!["http://localhost:8080", "http://localhost:8080/"]);
        let u = url::Url::parse("https://idp.example/realms/cozo").unwrap();
        assert_eq!(issuer_candidates(&u), vec!["https://idp.example/realms/cozo"]);
    }

    #[test]
    fn reads_cookies() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; demo_state_portal=xyz"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&h, "demo_state_portal").as_deref(), Some("xyz"));
        assert_eq!(cookie_value(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie_value(&h, "demo_state_ehealth"), None);
    }

    #[test]
    fn displays_claims() {
        assert_eq!(claim_display(&Value::String("85073003328".into())), "85073003328");
        assert_eq!(claim_display(&serde_json::json!(["doctor", "nurse"])), r#"["doctor","nurse"]"#);
        assert_eq!(claim_display(&serde_json::json!(12)), "12");
        assert_eq!(claim_display(&serde_json::json!({"a": true})), r#"{"a":true}"#);
    }

    #[test]
    fn computes_at_hash() {
        // Example from OpenID Connect Core, appendix A.3 / A.4 (RS256).
        let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        assert_eq!(
            access_token_hash(&alg, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        assert_eq!(
            access_token_hash(&CoreJwsSigningAlgorithm::EcdsaP384Sha384, "x").unwrap().len(),
            32
        );
        assert_eq!(access_token_hash(&CoreJwsSigningAlgorithm::EdDsa, "x").unwrap().len(), 43);
    }

    #[test]
    fn parses_app_json() {
        let apps: Vec<DemoApp> = serde_json::from_str(
            r#"[{"title":"Portal","path":"portal","client_id":"demo-portal","scope":["openid","profile"]},
                {"title":"eHealth","path":"ehealth","client_id":"demo-ehealth","client_secret":"s3cret","description":"x"}]"#,
        )
        .unwrap();
        assert_eq!(apps.len(), 2);
        assert!(apps[0].client_secret.is_none());
        assert_eq!(apps[1].scope, vec!["openid"]);
        assert!(!format!("{:?}", apps[1]).contains("s3cret"));
    }

    #[test]
    fn rejects_bad_config() {
        let app = |path: &str| DemoApp {
            title: "T".into(),
            path: path.into(),
            client_id: "c".into(),
            client_secret: None,
            scope: vec!["openid".into()],
            description: String::new(),
        };
        let cfg = |apps| DemoAppConfig {
            issuer: url::Url::parse("http://localhost:8080").unwrap(),
            public_url: url::Url::parse("http://localhost:8090").unwrap(),
            apps,
        };
        assert!(cfg(vec![app("portal"), app("ehealth")]).validate().is_ok());
        assert!(cfg(vec![app("portal"), app("portal")]).validate().is_err());
        assert!(cfg(vec![app("a/b")]).validate().is_err());
        assert!(cfg(vec![app("")]).validate().is_err());
        let c = cfg(vec![app("portal")]);
        assert_eq!(c.redirect_uri(&c.apps[0]), "http://localhost:8090/portal/callback");
        assert_eq!(c.post_logout_redirect_uri(), "http://localhost:8090/");
    }

    // -- End-to-end against a minimal fake provider ------------------------------------------

    const SECRET: &str = "a-long-enough-client-secret-for-hs256-signing";

    #[derive(Default)]
    struct FakeOp {
        issuer: String,
        /// (code_challenge, nonce) of the login the test is completing.
        expect: Option<(String, String)>,
    }
    type Op = Arc<Mutex<FakeOp>>;

    async fn op_discovery(State(op): State<Op>) -> Json<Value> {
        let iss = op.lock().unwrap().issuer.clone();
        Json(serde_json::json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "userinfo_endpoint": format!("{iss}/userinfo"),
            "jwks_uri": format!("{iss}/jwks"),
            "end_session_endpoint": format!("{iss}/logout"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["HS256"],
            "authorization_response_iss_parameter_supported": true,
        }))
    }

    async fn op_jwks() -> Json<Value> {
        Json(serde_json::json!({"keys": []}))
    }

    async fn op_token(
        State(op): State<Op>,
        headers: HeaderMap,
        Form(form): Form<HashMap<String, String>>,
    ) -> Response {
        let expected_auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("demo-portal:{SECRET}"))
        );
        let auth_ok = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
            == Some(expected_auth.as_str());
        let (issuer, expect) = {
            let op = op.lock().unwrap();
            (op.issuer.clone(), op.expect.clone())
        };
        let Some((challenge, nonce)) = expect else {
            return (StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": "invalid_grant"})))
                .into_response();
        };
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        let pkce_ok = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge;
        if !auth_ok || form.get("code").map(String::as_str) != Some("good-code") || !pkce_ok {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "invalid_grant", "error_description": "bad code, verifier or client"})),
            )
                .into_response();
        }
        let now = chrono::Utc::now();
        let mut extra = HashMap::new();
        extra.insert("insz".to_string(), serde_json::json!("85073003328"));
        extra.insert(
            "professions".to_string(),
            serde_json::json!([{"code": "doctor", "riziv": "12345678"}]),
        );
        let claims = DemoIdTokenClaims::new(
            IssuerUrl::new(issuer).unwrap(),
            vec![Audience::new("demo-portal".to_string())],
            now + chrono::Duration::minutes(5),
            now,
            StandardClaims::new(SubjectIdentifier::new("user-1".to_string())),
            ExtraClaims { extra },
        )
        .set_nonce(Some(Nonce::new(nonce)));
        let access_token = AccessToken::new("at-1".to_string());
        let id_token = DemoIdToken::new(
            claims,
            &CoreHmacKey::new(SECRET.as_bytes()),
            CoreJwsSigningAlgorithm::HmacSha256,
            Some(&access_token),
            None,
        )
        .unwrap();
        Json(serde_json::json!({
            "access_token": "at-1",
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token.to_string(),
        }))
        .into_response()
    }

    async fn op_userinfo(headers: HeaderMap) -> Response {
        if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some("Bearer at-1") {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Json(serde_json::json!({"sub": "user-1", "insz": "85073003328", "name": "Jan Peeters"}))
            .into_response()
    }

    fn query_param(url: &url::Url, name: &str) -> Option<String> {
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    #[tokio::test]
    async fn end_to_end_login_with_fake_provider() {
        // Fake provider.
        let op: Op = Arc::new(Mutex::new(FakeOp::default()));
        let op_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", op_listener.local_addr().unwrap());
        op.lock().unwrap().issuer = issuer.clone();
        let op_router = Router::new()
            .route("/.well-known/openid-configuration", get(op_discovery))
            .route("/jwks", get(op_jwks))
            .route("/token", axum::routing::post(op_token))
            .route("/userinfo", get(op_userinfo))
            .with_state(op.clone());
        tokio::spawn(async move { axum::serve(op_listener, op_router).await.unwrap() });

        // Demo app.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cfg = DemoAppConfig {
            issuer: url::Url::parse(&issuer).unwrap(),
            public_url: url::Url::parse(&base).unwrap(),
            apps: vec![
                DemoApp {
                    title: "Portal".into(),
                    path: "portal".into(),
                    client_id: "demo-portal".into(),
                    client_secret: Some(SECRET.into()),
                    scope: vec!["openid".into(), "profile".into(), "insz".into()],
                    description: "The CoZo portal".into(),
                },
                DemoApp {
                    title: "eHealth".into(),
                    path: "ehealth".into(),
                    client_id: "demo-ehealth".into(),
                    client_secret: None,
                    scope: vec!["openid".into()],
                    description: "An eHealth service".into(),
                },
            ],
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, cfg, async move {
            let _ = stop_rx.await;
        }));

        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

        // Home page.
        let r = http.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'; style-src 'self'"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("<html lang=\"en\">"));
        assert!(html.contains("href=\"/portal/login\""));
        assert!(html.contains("href=\"/ehealth/login\""));
        assert!(!html.contains("<script") && !html.contains("style="));

        let r = http.get(format!("{base}/demo.css")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));

        // Unknown app.
        let r = http.get(format!("{base}/nope/login")).send().await.unwrap();
        assert_eq!(r.status(), 404);

        // Starts a login; returns (state, cookie header value, authorization URL).
        let start = |query: &'static str| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let r = http.get(format!("{base}/portal/login{query}")).send().await.unwrap();
                assert_eq!(r.status(), 302);
                let location =
                    url::Url::parse(r.headers()[header::LOCATION].to_str().unwrap()).unwrap();
                let cookie = r.headers()[header::SET_COOKIE]
                    .to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_string();
                let state = query_param(&location, "state").unwrap();
                (state, cookie, location)
            }
        };

        // Login.
        let (state, cookie, location) =
            start("?prompt=login&acr_values=eid&max_age=0&ui_locales=").await;
        assert!(location.as_str().starts_with(&format!("{issuer}/authorize?")));
        assert_eq!(query_param(&location, "response_type").as_deref(), Some("code"));
        assert_eq!(query_param(&location, "client_id").as_deref(), Some("demo-portal"));
        assert_eq!(query_param(&location, "redirect_uri"), Some(format!("{base}/portal/callback")));
        assert_eq!(query_param(&location, "scope").as_deref(), Some("openid profile insz"));
        assert_eq!(query_param(&location, "code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(query_param(&location, "prompt").as_deref(), Some("login"));
        assert_eq!(query_param(&location, "acr_values").as_deref(), Some("eid"));
        assert_eq!(query_param(&location, "max_age").as_deref(), Some("0"));
        assert_eq!(query_param(&location, "ui_locales"), None);
        assert_eq!(cookie, format!("demo_state_portal={state}"));
        op.lock().unwrap().expect = Some((
            query_param(&location, "code_challenge").unwrap(),
            query_param(&location, "nonce").unwrap(),
        ));

        // Callback without the browser's cookie: refused, state not consumed.
        let callback = format!("{base}/portal/callback?code=good-code&state={state}&iss={issuer}");
        let r = http.get(&callback).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("data-error=\"state_mismatch\""));

        // Callback with the wrong iss.
        let r = http
            .get(format!(
                "{base}/portal/callback?code=good-code&state={state}&iss=http://evil.example"
            ))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("data-error=\"issuer_mismatch\""));

        // That consumed the state: log in again, this time successfully.
        let (state, cookie, location) = start("").await;
        op.lock().unwrap().expect = Some((
            query_param(&location, "code_challenge").unwrap(),
            query_param(&location, "nonce").unwrap(),
        ));
        let callback = format!("{base}/portal/callback?code=good-code&state={state}&iss={issuer}");
        let r = http.get(&callback).header(header::COOKIE, &cookie).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("<h1>Logged in to Portal</h1>"), "{html}");
        assert!(html.contains("<tr data-claim=\"insz\"><th>insz</th><td>85073003328</td></tr>"));
        assert!(html.contains(
            "<tr data-claim=\"professions\"><th>professions</th><td>[{&quot;code&quot;:&quot;doctor&quot;,&quot;riziv&quot;:&quot;12345678&quot;}]</td></tr>"
        ));
        assert!(html.contains("<tr data-claim=\"aud\"><th>aud</th>"));
        assert!(html.contains("<tr data-claim=\"at_hash\">"));
        assert!(html.contains("<pre id=\"claims\""));
        assert!(html.contains("<pre id=\"userinfo\""));
        assert!(html.contains("Jan Peeters"));
        assert!(html.contains("href=\"/portal/login?prompt=login\""));
        assert!(!html.contains("data-error"));

        // Logout link: end_session_endpoint with id_token_hint, post_logout_redirect_uri,
        // client_id and state.
        let href = html
            .split("id=\"logout\" href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let logout = url::Url::parse(&href).unwrap();
        assert!(logout.as_str().starts_with(&format!("{issuer}/logout?")));
        assert!(query_param(&logout, "id_token_hint").is_some());
        assert_eq!(query_param(&logout, "post_logout_redirect_uri"), Some(format!("{base}/")));
        assert_eq!(query_param(&logout, "client_id").as_deref(), Some("demo-portal"));
        let logout_state = query_param(&logout, "state").unwrap();
        let html = http
            .get(format!("{base}/?state={logout_state}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("You have been logged out of Portal."));

        // Replaying the callback fails.
        let r = http.get(&callback).header(header::COOKIE, &cookie).send().await.unwrap();
        assert!(r.text().await.unwrap().contains("data-error=\"state_mismatch\""));

        // Error response from the provider.
        let (state, cookie, _) = start("").await;
        let r = http
            .get(format!(
                "{base}/portal/callback?error=access_denied&error_description=User+cancelled&state={state}&iss={issuer}"
            ))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let html = r.text().await.unwrap();
        assert!(html.contains("data-error=\"access_denied\""));
        assert!(html.contains("User cancelled"));

        // Token exchange failure (bad code).
        let (state, cookie, location) = start("").await;
        op.lock().unwrap().expect = Some((
            query_param(&location, "code_challenge").unwrap(),
            query_param(&location, "nonce").unwrap(),
        ));
        let r = http
            .get(format!("{base}/portal/callback?code=bad-code&state={state}&iss={issuer}"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        let html = r.text().await.unwrap();
        assert!(html.contains("data-error=\"token_exchange_failed\""), "{html}");
        assert!(html.contains("data-oauth-error=\"invalid_grant\""));

        // Nonce mismatch: the provider puts another nonce in the ID token.
        let (state, cookie, location) = start("").await;
        op.lock().unwrap().expect =
            Some((query_param(&location, "code_challenge").unwrap(), "another-nonce".to_string()));
        let r = http
            .get(format!("{base}/portal/callback?code=good-code&state={state}&iss={issuer}"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert!(r.text().await.unwrap().contains("data-error=\"id_token_invalid\""));

        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn discovery_failure_is_retried() {
        // Reserve a port, then free it: nothing listens there yet.
        let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let op_addr = probe.local_addr().unwrap();
        drop(probe);
        let issuer = format!("http://{op_addr}");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let cfg = DemoAppConfig {
            issuer: url::Url::parse(&issuer).unwrap(),
            public_url: url::Url::parse(&base).unwrap(),
            apps: vec![DemoApp {
                title: "eHealth".into(),
                path: "ehealth".into(),
                client_id: "demo-ehealth".into(),
                client_secret: None,
                scope: vec!["openid".into()],
                description: String::new(),
            }],
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, cfg, async move {
            let _ = stop_rx.await;
        }));
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

        let r = http.get(format!("{base}/ehealth/login")).send().await.unwrap();
        assert_eq!(r.status(), 502);
        assert!(r.text().await.unwrap().contains("data-error=\"discovery_failed\""));

        // The provider comes up.
        let op: Op = Arc::new(Mutex::new(FakeOp { issuer: issuer.clone(), expect: None }));
        let op_listener = tokio::net::TcpListener::bind(op_addr).await.unwrap();
        let op_router = Router::new()
            .route("/.well-known/openid-configuration", get(op_discovery))
            .route("/jwks", get(op_jwks))
            .with_state(op);
        tokio::spawn(async move { axum::serve(op_listener, op_router).await.unwrap() });

        let r = http.get(format!("{base}/ehealth/login")).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let location = url::Url::parse(r.headers()[header::LOCATION].to_str().unwrap()).unwrap();
        assert_eq!(query_param(&location, "client_id").as_deref(), Some("demo-ehealth"));
        assert_eq!(query_param(&location, "code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(query_param(&location, "scope").as_deref(), Some("openid"));

        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
