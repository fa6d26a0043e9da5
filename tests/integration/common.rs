//! Test harness: a real broker on a random port over a fresh database (SQLite file or a new
//! PostgreSQL database), and a browser-like client (cookie jar, forms, redirects by hand).

use base64::Engine;
use cozo_broker::admin::{self, ClientSpec};
use cozo_broker::clock::Clock;
use cozo_broker::config::Config;
use cozo_broker::Handle;
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Response, StatusCode};
use scraper::{Html, Selector};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one async test body on both backends, as two test functions.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}

#[allow(dead_code)]
pub struct TestServer {
    pub handle: Handle,
    pub base: String,
    pub backend: Backend,
    _dir: tempfile::TempDir,
}

pub fn pg_base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL database for one test; an unreachable server fails the test.
pub async fn fresh_pg_database() -> String {
    let base = pg_base_url();
    let mut conn = sqlx::postgres::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {base} is required for the tests: {e}"));
    let name = format!("cozo_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&base).expect("TEST_DATABASE_URL");
    url.set_path(&name);
    url.to_string()
}

pub async fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/broker.db", dir.display()),
        Backend::Postgres => fresh_pg_database().await,
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_on(backend, listener, tweak).await
    }

    /// Starts on a listener bound by the caller (who may need the URL before the broker runs).
    pub async fn start_on(
        backend: Backend,
        listener: tokio::net::TcpListener,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = listener.local_addr().expect("addr");
        let mut cfg = Config::default();
        cfg.server.listen = addr;
        cfg.server.public_url =
            url::Url::parse(&format!("http://127.0.0.1:{}", addr.port())).unwrap();
        cfg.database.url = database_url(backend, dir.path()).await;
        cfg.database.max_connections = 8;
        cfg.secrets.master_key = Some(base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
        cfg.ui.default_language = cozo_broker::i18n::Lang::En;
        cfg.policy.dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies").into();
        tweak(&mut cfg);
        let handle =
            cozo_broker::serve_on(cfg, Clock::default(), listener).await.expect("broker starts");
        let base = format!("http://127.0.0.1:{}", addr.port());
        Self { handle, base, backend, _dir: dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn now(&self) -> i64 {
        self.handle.clock.now()
    }

    pub async fn add_client(&self, id: &str, policy: &str) -> TestClient {
        let redirect_uri = format!("http://127.0.0.1:9/{id}/cb");
        let mut spec = ClientSpec::new(id, &redirect_uri, policy);
        spec.post_logout_redirect_uris = vec!["http://127.0.0.1:9/bye".into()];
        let secret =
            admin::add_client(&self.handle.store, &self.handle.policies, &spec, self.now())
                .await
                .expect("client");
        TestClient { id: id.into(), secret, redirect_uri }
    }

    pub async fn add_client_spec(&self, spec: &ClientSpec) -> TestClient {
        let secret = admin::add_client(&self.handle.store, &self.handle.policies, spec, self.now())
            .await
            .expect("client");
        TestClient { id: spec.id.clone(), secret, redirect_uri: spec.redirect_uris[0].clone() }
    }

    /// A person with a digital-key account and an active TOTP key.
    pub async fn add_person(&self, insz: &str, username: &str) -> TestPerson {
        let store = &self.handle.store;
        admin::add_person(store, insz, "Anna", "Peeters", Some("1985-07-30"), self.now())
            .await
            .expect("person");
        let password = "correct horse battery staple".to_string();
        let t = admin::add_totp_key(
            store,
            &self.handle.master,
            &self.handle.cfg,
            insz,
            username,
            Some(&password),
            self.now(),
        )
        .await
        .expect("totp key");
        TestPerson {
            insz: insz.into(),
            username: username.into(),
            password,
            secret: cozo_broker::keys::totp::decode_base32(&t.secret_base32).unwrap(),
        }
    }

    /// An SMS key on the person's account.
    pub async fn add_sms_key(&self, p: &TestPerson, phone: &str) {
        let (h, now) = (&self.handle, self.now());
        admin::add_sms_key(&h.store, &h.cfg, &p.insz, &p.username, None, phone, now)
            .await
            .expect("sms key");
    }

    /// A token card on the person's account: its codes by position.
    pub async fn add_token_key(&self, p: &TestPerson) -> std::collections::BTreeMap<i64, String> {
        let (h, now) = (&self.handle, self.now());
        admin::add_token_key(&h.store, &h.master, &h.cfg, &p.insz, &p.username, None, now)
            .await
            .expect("token key")
    }

    /// The TOTP code for the server's current time.
    pub fn code(&self, p: &TestPerson) -> String {
        cozo_broker::keys::totp::code_at(&p.secret, self.now())
    }

    /// Moves the server's clock to the next TOTP time step (each step is accepted once).
    pub fn next_step(&self) {
        self.handle.clock.advance(30);
    }
}

#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct TestPerson {
    pub insz: String,
    pub username: String,
    pub password: String,
    pub secret: Vec<u8>,
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = cozo_broker::crypto::random_token(32);
    let challenge = cozo_broker::crypto::b64url(&cozo_broker::crypto::sha256(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

/// A browser: keeps cookies, does not follow redirects by itself.
pub struct Browser {
    pub http: reqwest::Client,
}

pub struct Page {
    pub status: StatusCode,
    pub url: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// The form at `action`, with its hidden and prefilled fields.
    pub fn form(&self, action: &str) -> Vec<(String, String)> {
        let doc = self.html();
        let sel = Selector::parse(&format!("form[action=\"{action}\"]")).unwrap();
        let form =
            doc.select(&sel).next().unwrap_or_else(|| panic!("no form {action} in {}", self.body));
        let input = Selector::parse("input").unwrap();
        form.select(&input)
            .filter(|i| {
                let t = i.value().attr("type").unwrap_or("text");
                (t != "radio" && t != "checkbox") || i.value().attr("checked").is_some()
            })
            .filter_map(|i| {
                Some((
                    i.value().attr("name")?.to_string(),
                    i.value().attr("value").unwrap_or("").to_string(),
                ))
            })
            .collect()
    }

    pub fn data_error(&self) -> Option<String> {
        let doc = self.html();
        let sel = Selector::parse("[data-error]").unwrap();
        doc.select(&sel).next().and_then(|e| e.value().attr("data-error").map(str::to_string))
    }

    pub fn location(&self) -> Option<String> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { http }
    }

    async fn page(resp: Response) -> Page {
        let status = resp.status();
        let url = resp.url().to_string();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Page { status, url, headers, body }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::page(self.http.get(url).header("accept-language", "en").send().await.expect("GET"))
            .await
    }

    pub async fn post(&self, url: &str, form: &[(String, String)]) -> Page {
        Self::page(
            self.http
                .post(url)
                .header("accept-language", "en")
                .form(form)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// Follows redirects within the broker (`base`); stops at the first one elsewhere.
    pub async fn follow(&self, base: &str, mut page: Page) -> Page {
        for _ in 0..10 {
            let Some(loc) = page.location() else {
                return page;
            };
            let abs = if loc.starts_with('/') { format!("{base}{loc}") } else { loc };
            if !abs.starts_with(base) {
                return page;
            }
            page = self.get(&abs).await;
        }
        page
    }

    /// Submits the form at `action` on `page` with some fields set.
    pub async fn submit(
        &self,
        base: &str,
        page: &Page,
        action: &str,
        set: &[(&str, &str)],
    ) -> Page {
        let mut fields = page.form(action);
        for (k, v) in set {
            fields.retain(|(n, _)| n != k);
            fields.push((k.to_string(), v.to_string()));
        }
        self.post(&format!("{base}{action}"), &fields).await
    }
}

pub fn authorize_url(
    server: &TestServer,
    client: &TestClient,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> String {
    authorize_url_at(&server.base, client, pkce, extra)
}

/// An authorization request of `client` to the broker at `base` (a server, or a proxy in front
/// of several); `extra` parameters replace the defaults.
pub fn authorize_url_at(
    base: &str,
    client: &TestClient,
    pkce: &Pkce,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&format!("{base}/authorize")).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", "openid profile insz")
            .append_pair("state", "st-123")
            .append_pair("nonce", "n-456")
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
    }
    // Extra parameters replace the defaults (a parameter may appear only once).
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .collect();
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

/// Query parameters of a redirect to the client.
pub fn query(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Who logs in with a digital key: a [`TestPerson`], or `(username, password)` as typed.
pub trait Credentials {
    fn username(&self) -> &str;
    fn password(&self) -> &str;
}

impl Credentials for TestPerson {
    fn username(&self) -> &str {
        &self.username
    }
    fn password(&self) -> &str {
        &self.password
    }
}

impl Credentials for (&str, &str) {
    fn username(&self) -> &str {
        self.0
    }
    fn password(&self) -> &str {
        self.1
    }
}

/// Submits username and password on `/login/key` of the broker at `base` (a server, or a proxy
/// in front of several); returns the answer, not followed (a redirect to the code page when the
/// password is right).
pub async fn submit_password(base: &str, b: &Browser, who: &impl Credentials) -> Page {
    let form = b.follow(base, b.get(&format!("{base}/login/key")).await).await;
    let fields = [("username", who.username()), ("password", who.password())];
    b.submit(base, &form, "/login/key", &fields).await
}

/// The password step of a key login in `b`: the page it leads to (the code page when right).
pub async fn password_step(s: &TestServer, b: &Browser, who: &impl Credentials) -> Page {
    b.follow(&s.base, submit_password(&s.base, b, who).await).await
}

/// Up to the code page of a key login for the authorization request at `authorize`.
pub async fn to_code_page(
    s: &TestServer,
    b: &Browser,
    authorize: &str,
    who: &impl Credentials,
) -> Page {
    let chooser = b.follow(&s.base, b.get(authorize).await).await;
    assert!(chooser.url.ends_with("/login"), "{} {}", chooser.url, chooser.body);
    password_step(s, b, who).await
}

/// Submits an app code (TOTP) on the code page; returns the answer, not followed.
pub async fn submit_totp(base: &str, b: &Browser, code_page: &Page, code: &str) -> Page {
    b.submit(base, code_page, "/login/key/code", &[("method", "totp"), ("code", code)]).await
}

/// A key login (password, then the app code) at `base` from an authorization request; returns
/// the redirect to the client (with the code). `between` runs once the password is accepted,
/// before the code page is fetched; the app code is asked of `code` after it (it may move time).
pub async fn key_login_via(
    base: &str,
    b: &Browser,
    authorize: &str,
    who: &impl Credentials,
    between: impl AsyncFnOnce(),
    code: impl FnOnce() -> String,
) -> String {
    let chooser = b.follow(base, b.get(authorize).await).await;
    assert_eq!(chooser.status, StatusCode::OK, "chooser: {}", chooser.body);
    assert!(chooser.url.ends_with("/login"), "{} {}", chooser.url, chooser.body);
    let after_pw = submit_password(base, b, who).await;
    assert_eq!(after_pw.status, StatusCode::SEE_OTHER, "password step: {}", after_pw.body);
    between().await;
    let code_page = b.follow(base, after_pw).await;
    assert_eq!(code_page.status, StatusCode::OK, "code page: {}", code_page.body);
    let done = b.follow(base, submit_totp(base, b, &code_page, &code()).await).await;
    done.location()
        .unwrap_or_else(|| panic!("no redirect to the client: {} {}", done.status, done.body))
}

/// Logs in through the key pages from an authorization request; returns the redirect to the
/// client (with the code).
pub async fn key_login(
    server: &TestServer,
    b: &Browser,
    authorize: &str,
    p: &TestPerson,
) -> String {
    key_login_via(&server.base, b, authorize, p, async || {}, || server.code(p)).await
}

/// The code in the newest SMS to `to` (the outbox lists the newest first).
pub async fn last_sms_code(s: &TestServer, to: &str) -> String {
    let msgs = s.handle.store.outbox(100).await.unwrap();
    let m = msgs.iter().find(|m| m.channel == "sms" && m.recipient == to).expect("an SMS");
    let codes: Vec<&str> =
        m.body.split(|c: char| !c.is_ascii_digit()).filter(|w| w.len() == 6).collect();
    assert_eq!(codes.len(), 1, "exactly one 6-digit number in {}", m.body);
    codes[0].to_string()
}

/// The activation link in the newest mail to `email`, as a path on the broker.
pub async fn mailed_link(s: &TestServer, email: &str) -> String {
    let mails = s.handle.store.outbox(100).await.unwrap();
    let mail = mails
        .iter()
        .find(|m| m.channel == "mail" && m.recipient == email)
        .expect("an activation mail");
    let start = mail.body.find("/activate/").expect("a link in the mail");
    mail.body[start..].split_whitespace().next().unwrap().to_string()
}

/// A broker on `http://localhost:PORT` (a domain name: WebAuthn needs one) with a mock eIDAS
/// node and a mock Bis register (which serves on its own task).
pub struct WithEidas {
    pub s: TestServer,
    pub node: idp_mocks::eidas::MockEidasNode,
}

pub async fn start_with_eidas(backend: Backend) -> WithEidas {
    use idp_mocks::eidas::{self as node, EidasNodeConfig};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let (_, node) = node::start(EidasNodeConfig {
        sp_metadata_url: Some(format!("{public}/saml/eidas/metadata")),
        ..Default::default()
    })
    .await
    .unwrap();
    let (bis_url, _) = idp_mocks::bis_register::start().await;
    let metadata = node.metadata_url();
    let s = TestServer::start_on(backend, listener, |cfg| {
        cfg.server.public_url = url::Url::parse(&public).unwrap();
        cfg.eidas.node_metadata = Some(metadata);
        cfg.bis_register.url = Some(url::Url::parse(&bis_url).unwrap());
    })
    .await;
    WithEidas { s, node }
}

/// Exchanges a code at the token endpoint with client_secret_basic.
pub async fn exchange(
    server: &TestServer,
    client: &TestClient,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn refresh(server: &TestServer, client: &TestClient, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap()
}

/// The claims of a JWT, unverified (for assertions after the signature was checked elsewhere).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&cozo_broker::crypto::b64url_decode(payload).unwrap()).unwrap()
}

/// A full login ending in tokens: (token response JSON).
pub async fn login_and_exchange(
    server: &TestServer,
    client: &TestClient,
    p: &TestPerson,
) -> serde_json::Value {
    let b = Browser::new();
    let pk = pkce();
    let loc = key_login(server, &b, &authorize_url(server, client, &pk, &[]), p).await;
    let code = query(&loc)["code"].clone();
    let resp = exchange(server, client, &code, &pk.verifier).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}
