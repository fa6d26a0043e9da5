//! Replicas share everything (issue #7, SPEC §9): two brokers on one PostgreSQL database behind
//! a small round-robin HTTP proxy (the public URL both replicas are configured with), so that
//! consecutive steps of a login land on different replicas. Key, eIDAS and FAS logins complete
//! through it; a replica killed between two steps (its runtime dropped: no graceful shutdown)
//! loses nothing; replicas starting together agree on one set of signing keys; background jobs
//! (outbox delivery, purges) run once, not once per replica.
//!
//! PostgreSQL only: SQLite is the embedded single-process backend.

use crate::common::*;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode as HttpStatus;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use cozo_broker::admin::{self, ClientSpec};
use cozo_broker::config::Config;
use cozo_broker::crypto::MasterKey;
use cozo_broker::store::Store;
use idp_mocks::bis_register;
use idp_mocks::eidas::{self as node, EidasNodeConfig, MockEidasNode, Outcome};
use idp_mocks::fas::{self as mockfas, FasConfig, MockFas};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The load balancer: round robin per request, no affinity, no connection reuse (every request
// opens a new connection, so a killed replica answers "connection refused" and the next one is
// tried, as a load balancer with passive health checks does).

struct Proxy {
    base: String,
    inner: Arc<ProxyInner>,
}

struct ProxyInner {
    backends: Mutex<Vec<Option<SocketAddr>>>,
    next: AtomicUsize,
    /// (method and path, slot of the replica that answered), in order.
    served: Mutex<Vec<(String, usize)>>,
    http: reqwest::Client,
}

impl Proxy {
    async fn start(slots: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let inner = Arc::new(ProxyInner {
            backends: Mutex::new(vec![None; slots]),
            next: AtomicUsize::new(0),
            served: Mutex::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        });
        let app = axum::Router::new().fallback(forward).with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, inner }
    }

    fn set(&self, slot: usize, addr: Option<SocketAddr>) {
        self.inner.backends.lock().unwrap()[slot] = addr;
    }

    fn served(&self) -> Vec<(String, usize)> {
        self.inner.served.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

async fn forward(State(p): State<Arc<ProxyInner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or("/".into());
    let slots = p.backends.lock().unwrap().len();
    for _ in 0..slots {
        let slot = p.next.fetch_add(1, Ordering::SeqCst) % slots;
        let Some(addr) = p.backends.lock().unwrap()[slot] else { continue };
        let mut rb = p.http.request(parts.method.clone(), format!("http://{addr}{path}"));
        for (k, v) in &parts.headers {
            if !matches!(k.as_str(), "host" | "connection" | "content-length" | "transfer-encoding")
            {
                rb = rb.header(k, v);
            }
        }
        match rb.body(body.clone()).send().await {
            Ok(r) => {
                p.served.lock().unwrap().push((format!("{} {path}", parts.method), slot));
                let status = r.status();
                let mut headers = r.headers().clone();
                for h in ["connection", "content-length", "transfer-encoding"] {
                    headers.remove(h);
                }
                let bytes = r.bytes().await.unwrap_or_default();
                let mut resp = Response::new(axum::body::Body::from(bytes));
                *resp.status_mut() = status;
                *resp.headers_mut() = headers;
                return resp;
            }
            // A dead replica: try the next one.
            Err(e) if e.is_connect() => continue,
            Err(e) => return (HttpStatus::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    (HttpStatus::BAD_GATEWAY, "no replica").into_response()
}

// ---------------------------------------------------------------------------------------------
// Replicas: each a broker with its own tokio runtime on its own thread, configured like the
// others (same database, same master key; signing keys and SAML SP keys live encrypted in the
// database). Killing one drops its runtime without any graceful shutdown: every task, open
// connection and byte of its memory is gone at once, as with SIGKILL. (Not separate OS
// processes: the integration tests share one target directory with other checkouts, so the
// `cozo-broker` binary next to them is not reliably the one built from this tree.)

const MASTER_KEY: [u8; 32] = [7u8; 32];

struct Replica {
    addr: SocketAddr,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    /// Drops the replica's runtime at once (no graceful shutdown).
    fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(k) = self.kill.take() {
            let _ = k.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Cluster {
    proxy: Proxy,
    db: String,
    cfg: Config,
    replicas: Vec<Option<Replica>>,
}

impl Cluster {
    /// Two replicas started at the same time on a fresh database behind `proxy` (their public
    /// URL); `tweak` adds settings.
    async fn start(proxy: Proxy, tweak: impl FnOnce(&mut Config)) -> Self {
        let db = fresh_pg_database().await;
        let mut cfg = Config::default();
        cfg.server.public_url = url::Url::parse(&proxy.base).unwrap();
        cfg.database.url = db.clone();
        cfg.database.max_connections = 4;
        cfg.secrets.master_key = Some(base64::engine::general_purpose::STANDARD.encode(MASTER_KEY));
        cfg.ui.default_language = cozo_broker::i18n::Lang::En;
        cfg.policy.dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies").into();
        tweak(&mut cfg);
        let mut c = Cluster { proxy, db, cfg, replicas: vec![None, None] };
        let (a, b) = tokio::join!(c.spawn(), c.spawn());
        c.place(0, a);
        c.place(1, b);
        c
    }

    /// Starts a replica on a thread of its own and waits until it answers `/readyz`.
    async fn spawn(&self) -> Replica {
        let mut cfg = self.cfg.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
        let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let handle = rt.block_on(async {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                cfg.server.listen = listener.local_addr().unwrap();
                cozo_broker::serve_on(cfg, cozo_broker::clock::Clock::default(), listener)
                    .await
                    .expect("replica starts")
            });
            let _ = ready_tx.send(handle.addr);
            let _ = kill_rx.recv();
            // The kill: no graceful shutdown, every task dropped where it stands.
            rt.shutdown_background();
            std::mem::forget(handle);
        });
        let addr = ready_rx.await.expect("replica started");
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = http.get(format!("http://{addr}/readyz")).send().await {
                if r.status() == 200 {
                    return Replica { addr, kill: Some(kill_tx), thread: Some(thread) };
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("replica {addr} not ready after 60 s");
    }

    fn place(&mut self, slot: usize, r: Replica) {
        self.proxy.set(slot, Some(r.addr));
        self.replicas[slot] = Some(r);
    }

    /// Kills the replica in `slot`; the proxy is not told (it finds out by connection refused).
    fn kill(&mut self, slot: usize) {
        let replica = self.replicas[slot].take().expect("a replica in that slot");
        let addr = replica.addr;
        replica.kill();
        // `shutdown_background` leaves the runtime's threads to drop its tasks, the listener
        // among them, a moment later: until then the kernel still accepts connections nobody
        // answers (the proxy then got "error sending request", not "connection refused"). A
        // killed process's port refuses at once; wait until this one does too.
        for _ in 0..300 {
            let timeout = std::time::Duration::from_millis(50);
            if std::net::TcpStream::connect_timeout(&addr, timeout).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the killed replica's port {addr} still accepts connections");
    }

    /// A fresh replica in `slot` (after a kill), ready to serve.
    async fn replace(&mut self, slot: usize) {
        let r = self.spawn().await;
        self.place(slot, r);
    }

    fn replica(&self, slot: usize) -> &Replica {
        self.replicas[slot].as_ref().expect("replica running")
    }

    async fn store(&self) -> Store {
        Store::connect(&self.db, 2).await.unwrap()
    }

    /// `/metrics` of every running replica, concatenated.
    async fn metrics(&self) -> String {
        let mut out = String::new();
        for r in self.replicas.iter().flatten() {
            let url = format!("http://{}/metrics", r.addr);
            out.push_str(&reqwest::get(url).await.unwrap().text().await.unwrap());
        }
        out
    }
}

fn amr(claims: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).unwrap_or_default()
}

fn now() -> i64 {
    cozo_broker::clock::system_now()
}

async fn add_client(store: &Store, redirect_host: &str) -> TestClient {
    let policies = cozo_broker::policy::PolicyEngine::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies"
    )))
    .unwrap();
    let redirect_uri = format!("http://{redirect_host}/portal/cb");
    let spec = ClientSpec::new("portal", &redirect_uri, "portal");
    let secret = admin::add_client(store, &policies, &spec, now()).await.expect("client");
    TestClient { id: "portal".into(), secret, redirect_uri }
}

/// A person with a digital-key account and a TOTP key: (username, password, TOTP secret).
async fn add_person(store: &Store) -> (String, String, Vec<u8>) {
    admin::add_person(store, "85073003328", "Anna", "Peeters", Some("1985-07-30"), now())
        .await
        .unwrap();
    let master =
        MasterKey::from_base64(&base64::engine::general_purpose::STANDARD.encode(MASTER_KEY))
            .unwrap();
    let password = "correct horse battery staple";
    let t = admin::add_totp_key(
        store,
        &master,
        &Config::default(),
        "85073003328",
        "anna",
        Some(password),
        now(),
    )
    .await
    .unwrap();
    let secret = cozo_broker::keys::totp::decode_base32(&t.secret_base32).unwrap();
    ("anna".into(), password.into(), secret)
}

/// The code from the redirect to the client, exchanged, refreshed and used at userinfo, each
/// call through the proxy: returns the ID token's claims.
async fn finish_at_app(p: &Proxy, c: &TestClient, loc: &str, pk: &Pkce) -> serde_json::Value {
    assert!(loc.starts_with(&c.redirect_uri), "not back at the app: {loc}");
    let http = reqwest::Client::new();
    let t: serde_json::Value = http
        .post(p.url("/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query(loc)["code"].as_str()),
            ("redirect_uri", &c.redirect_uri),
            ("code_verifier", &pk.verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap_or_else(|| panic!("{t}")));
    let r: serde_json::Value = http
        .post(p.url("/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = r["access_token"].as_str().unwrap_or_else(|| panic!("refresh: {r}"));
    let info = http.get(p.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(info.status(), 200);
    let info: serde_json::Value = info.json().await.unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    claims
}

/// Asserts that the requests since `from` went to both replicas, alternately.
fn assert_alternated(p: &Proxy, from: usize, what: &str) {
    let served = &p.served()[from..];
    assert!(served.len() >= 4, "{what}: {served:?}");
    for w in served.windows(2) {
        assert_ne!(w[0].1, w[1].1, "{what}: two steps in a row on one replica: {served:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The three logins, step by step, with a hook between two chosen steps.

struct KeyPerson {
    username: String,
    password: String,
    secret: Vec<u8>,
}

/// A key login (password, then TOTP) through the proxy; `between` runs after the password was
/// accepted.
async fn key_login_via(
    cl: &mut Cluster,
    c: &TestClient,
    person: &KeyPerson,
    pk: &Pkce,
    between: impl AsyncFnOnce(&mut Cluster),
) -> String {
    let base = cl.proxy.base.clone();
    let who = (person.username.as_str(), person.password.as_str());
    let code = || cozo_broker::keys::totp::code_at(&person.secret, now());
    let between = async move || between(cl).await;
    let authorize = authorize_url_at(&base, c, pk, &[]);
    crate::common::key_login_via(&base, &Browser::new(), &authorize, &who, between, code).await
}

/// An eIDAS login with first-login linking; `between` runs after the AuthnRequest was made
/// (the pending request is in the database) and before the node's answer is posted.
async fn eidas_login_via(
    cl: &mut Cluster,
    node: &MockEidasNode,
    c: &TestClient,
    pk: &Pkce,
    link: bool,
    between: impl AsyncFnOnce(&mut Cluster),
) -> (String, String, String) {
    let base = cl.proxy.base.clone();
    let b = Browser::new();
    let chooser = b.follow(&base, b.get(&authorize_url_at(&base, c, pk, &[])).await).await;
    assert!(chooser.body.contains("/login/eidas"), "{}", chooser.body);
    let redirect = b.get(&format!("{base}/login/eidas?country=NL")).await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    let loc = redirect.location().unwrap();
    let relay = query(&loc)["RelayState"].clone();
    let at_node = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&loc)
        .send()
        .await
        .unwrap();
    assert!(at_node.status().is_redirection() || at_node.status().is_success());
    let id = node.last_request().expect("the node got the request").id;
    between(cl).await;
    let citizen = node::citizen("nl-substantial").unwrap();
    let resp = node.respond(&id, citizen, Outcome::Success).await.unwrap();
    let acs = b
        .post(
            &format!("{base}/saml/eidas/acs"),
            &[("SAMLResponse".into(), resp.clone()), ("RelayState".into(), relay.clone())],
        )
        .await;
    assert_eq!(acs.status, 303, "{}", acs.body);
    let mut page = b.follow(&base, acs).await;
    if link {
        assert!(page.url.ends_with("/link"), "{} {}", page.url, page.body);
        page = b.submit(&base, &page, "/link", &[("bis", bis_register::DUTCH_PATIENT)]).await;
    }
    let loc =
        page.location().unwrap_or_else(|| panic!("no redirect: {} {}", page.status, page.body));
    (loc, resp, relay)
}

/// A FAS login; `between` runs after the browser was sent to FAS (state, nonce and verifier
/// are in the session) and before it comes back.
async fn fas_login_via(
    cl: &mut Cluster,
    fas: &MockFas,
    c: &TestClient,
    pk: &Pkce,
    between: impl AsyncFnOnce(&mut Cluster),
) -> String {
    let base = cl.proxy.base.clone();
    let b = Browser::new();
    let chooser = b.follow(&base, b.get(&authorize_url_at(&base, c, pk, &[])).await).await;
    assert!(chooser.body.contains("/login/fas"), "{}", chooser.body);
    let to_fas = b.get(&format!("{base}/login/fas")).await;
    let loc = to_fas.location().unwrap_or_else(|| panic!("{} {}", to_fas.status, to_fas.body));
    assert!(loc.starts_with(fas.issuer()), "{loc}");
    let person = mockfas::test_persons()
        .into_iter()
        .find(|p| p.insz == "85073003328")
        .map(|p| p.key.to_string())
        .unwrap();
    let mut url = url::Url::parse(&loc).unwrap();
    url.set_path(&format!("{}/test", url.path()));
    url.query_pairs_mut().append_pair("person", &person).append_pair("means", "totp");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url.as_str())
        .send()
        .await
        .unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.starts_with(&format!("{base}/oidc/fas/callback")), "{callback}");
    between(cl).await;
    let done = b.follow(&base, b.get(&callback).await).await;
    done.location().unwrap_or_else(|| panic!("no redirect: {} {}", done.status, done.body))
}

struct World {
    cl: Cluster,
    node: MockEidasNode,
    fas: MockFas,
    client: TestClient,
    person: KeyPerson,
    _bis: bis_register::MockBisRegister,
}

/// The proxy, the mocks (eIDAS node, FAS, Bis register), two replicas, a client and a person
/// with a TOTP key.
async fn world() -> World {
    let proxy = Proxy::start(2).await;
    let base = proxy.base.clone();
    let (bis_url, bis) = bis_register::start().await;
    let (_, node) = node::start(EidasNodeConfig {
        sp_metadata_url: Some(format!("{base}/saml/eidas/metadata")),
        ..Default::default()
    })
    .await
    .unwrap();
    let (issuer, fas) = mockfas::start(FasConfig {
        base_url: String::new(),
        client_id: "cozo-broker".into(),
        client_secret: "fas-test-secret".into(),
        redirect_uris: vec![format!("{base}/oidc/fas/callback")],
    })
    .await
    .unwrap();
    let metadata = node.metadata_url();
    let cl = Cluster::start(proxy, |cfg| {
        cfg.eidas.node_metadata = Some(metadata);
        cfg.bis_register.url = Some(url::Url::parse(&bis_url).unwrap());
        cfg.fas.issuer = Some(url::Url::parse(&issuer).unwrap());
        cfg.fas.client_id = "cozo-broker".into();
        cfg.fas.client_secret = "fas-test-secret".into();
    })
    .await;
    let store = cl.store().await;
    let client = add_client(&store, "127.0.0.1:9").await;
    let (username, password, secret) = add_person(&store).await;
    store.close().await;
    World { cl, node, fas, client, person: KeyPerson { username, password, secret }, _bis: bis }
}

/// Whether a served request (`METHOD /path?query`) is `step` (`METHOD /path`).
fn is_step(served: &str, step: &str) -> bool {
    served == step || served.strip_prefix(step).is_some_and(|rest| rest.starts_with('?'))
}

/// Kills the replica that answered the last request to `step` (`METHOD /path`).
fn kill_server_of(cl: &mut Cluster, step: &str) -> usize {
    let served = cl.proxy.served();
    let slot = served
        .iter()
        .rev()
        .find(|(r, _)| is_step(r, step))
        .unwrap_or_else(|| panic!("no {step} in {served:?}"))
        .1;
    cl.kill(slot);
    slot
}

/// The requests after the last one to `step` all went to the other replica than
/// `dead`, and there were some.
fn assert_finished_elsewhere(cl: &Cluster, step: &str, dead: usize) {
    let served = cl.proxy.served();
    let at = served.iter().rposition(|(r, _)| is_step(r, step)).unwrap();
    assert_eq!(served[at].1, dead);
    assert!(served.len() > at + 1 && served[at + 1..].iter().all(|(_, s)| *s != dead));
}

async fn nothing(_: &mut Cluster) {}

// ---------------------------------------------------------------------------------------------

/// Every step of a key, an eIDAS and a FAS login on the other replica than the step before;
/// tokens, refresh and userinfo too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_eidas_and_fas_logins_alternate_between_replicas() {
    let mut w = world().await;
    let c = w.client.clone();

    let from = w.cl.proxy.served().len();
    let pk = pkce();
    let loc = key_login_via(&mut w.cl, &c, &w.person, &pk, nothing).await;
    let key = finish_at_app(&w.cl.proxy, &c, &loc, &pk).await;
    assert!(amr(&key).contains(&"totp".to_string()), "{key}");
    assert_alternated(&w.cl.proxy, from, "key login");

    let from = w.cl.proxy.served().len();
    let pk = pkce();
    let (loc, response, relay) = eidas_login_via(&mut w.cl, &w.node, &c, &pk, true, nothing).await;
    let eidas = finish_at_app(&w.cl.proxy, &c, &loc, &pk).await;
    assert_eq!(amr(&eidas), ["eidas"], "{eidas}");
    assert_eq!(eidas["insz"], bis_register::DUTCH_PATIENT);
    assert_alternated(&w.cl.proxy, from, "eIDAS login");
    // The same answer posted again, once to each replica: the assertion-ID replay cache is
    // shared.
    for _ in 0..2 {
        let again = Browser::new()
            .post(
                &w.cl.proxy.url("/saml/eidas/acs"),
                &[("SAMLResponse".into(), response.clone()), ("RelayState".into(), relay.clone())],
            )
            .await;
        assert_eq!(again.status, 400, "{}", again.body);
        assert_eq!(again.data_error().as_deref(), Some("replayed"));
    }

    let from = w.cl.proxy.served().len();
    let pk = pkce();
    let loc = fas_login_via(&mut w.cl, &w.fas, &c, &pk, nothing).await;
    let fas = finish_at_app(&w.cl.proxy, &c, &loc, &pk).await;
    assert_eq!(amr(&fas), ["fas", "totp"], "{fas}");
    assert_eq!(fas["sub"], key["sub"], "one person through two doors");
    assert_alternated(&w.cl.proxy, from, "FAS login");

    // Failure counters are shared: five wrong passwords, alternating between the replicas, lock
    // the account on both.
    let base = w.cl.proxy.base.clone();
    let b = Browser::new();
    b.follow(&base, b.get(&authorize_url_at(&base, &c, &pkce(), &[])).await).await;
    let mut page = b.get(&format!("{base}/login/key")).await;
    for i in 0..5 {
        page = b
            .submit(&base, &page, "/login/key", &[("username", "anna"), ("password", "wrong!")])
            .await;
        assert_eq!(page.status, if i < 4 { 401 } else { 429 }, "attempt {i}");
    }
    for _ in 0..2 {
        page = b
            .submit(
                &base,
                &page,
                "/login/key",
                &[("username", "anna"), ("password", &w.person.password)],
            )
            .await;
        assert_eq!(page.status, 429, "locked on every replica");
    }
}

/// Between two steps of each login, the replica that served the step before is killed
/// (SIGKILL); the login finishes on the other one, which never saw its start. A new replica then
/// takes the empty slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_between_two_steps_loses_nothing() {
    let mut w = world().await;
    let c = w.client.clone();

    let pk = pkce();
    let loc = key_login_via(&mut w.cl, &c, &w.person, &pk, async |cl: &mut Cluster| {
        kill_server_of(cl, "POST /login/key");
    })
    .await;
    let claims = finish_at_app(&w.cl.proxy, &c, &loc, &pk).await;
    assert!(amr(&claims).contains(&"totp".to_string()), "{claims}");
    let dead = (0..2).find(|s| w.cl.replicas[*s].is_none()).unwrap();
    assert_finished_elsewhere(&w.cl, "POST /login/key", dead);
    w.cl.replace(dead).await;

    let pk = pkce();
    let loc = eidas_login_via(&mut w.cl, &w.node, &c, &pk, true, async |cl: &mut Cluster| {
        kill_server_of(cl, "GET /login/eidas");
    })
    .await;
    let claims = finish_at_app(&w.cl.proxy, &c, &loc.0, &pk).await;
    assert_eq!(claims["insz"], bis_register::DUTCH_PATIENT);
    let dead = (0..2).find(|s| w.cl.replicas[*s].is_none()).unwrap();
    assert_finished_elsewhere(&w.cl, "GET /login/eidas", dead);
    w.cl.replace(dead).await;

    let pk = pkce();
    let loc = fas_login_via(&mut w.cl, &w.fas, &c, &pk, async |cl: &mut Cluster| {
        kill_server_of(cl, "GET /login/fas");
    })
    .await;
    let claims = finish_at_app(&w.cl.proxy, &c, &loc, &pk).await;
    assert_eq!(amr(&claims), ["fas", "totp"], "{claims}");
    let dead = (0..2).find(|s| w.cl.replicas[*s].is_none()).unwrap();
    assert_finished_elsewhere(&w.cl, "GET /login/fas", dead);
}

/// Replicas starting together on an empty database generate one set of signing keys, and both
/// publish all of it at once (a token signed by one verifies with the other's JWKS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_agree_on_signing_keys() {
    let cl = Cluster::start(Proxy::start(2).await, |_| {}).await;
    let http = reqwest::Client::new();
    let mut sets = Vec::new();
    for slot in 0..2 {
        let jwks: serde_json::Value = http
            .get(format!("http://{}/jwks", cl.replica(slot).addr))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: HashSet<String> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        sets.push(kids);
    }
    assert_eq!(sets[0], sets[1], "both replicas publish the same keys");
    assert_eq!(sets[0].len(), 3, "one key per algorithm (RS256, ES256, EdDSA): {:?}", sets[0]);
}

/// Two replicas deliver a backlog of SMS through a slow gateway: every message exactly once.
/// The purge runs on one replica per period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_jobs_run_once_not_once_per_replica() {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/sms",
            axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let received = received.clone();
                async move {
                    // Slow enough that both replicas' delivery rounds overlap.
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    received.lock().unwrap().push(v["text"].as_str().unwrap_or("").to_string());
                    HttpStatus::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = format!("http://127.0.0.1:{}/sms", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let start_period = now().div_euclid(PURGE_PERIOD_S);
    let cl = Cluster::start(Proxy::start(2).await, |cfg| {
        cfg.sms.gateway_url = Some(url::Url::parse(&gw).unwrap());
    })
    .await;

    let store = cl.store().await;
    const N: usize = 60;
    let t = now();
    for i in 0..N {
        store
            .enqueue(&cozo_broker::store::OutboxMessage {
                id: uuid::Uuid::new_v4().to_string(),
                channel: "sms".into(),
                recipient: "+32470123456".into(),
                subject: None,
                body: format!("message {i}"),
                created_at: t,
                attempts: 0,
                sent_at: None,
            })
            .await
            .unwrap();
    }
    for _ in 0..300 {
        if received.lock().unwrap().len() >= N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a duplicate to arrive, if any replica were to send one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let got = received.lock().unwrap().clone();
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), N, "every message delivered");
    assert_eq!(got.len(), N, "no message twice: {got:?}");

    // Both replicas ran their background loop at start (and every 10 s since): the purge ran
    // once per period, on one of them.
    let periods = now().div_euclid(PURGE_PERIOD_S) - start_period + 1;
    let metrics = cl.metrics().await;
    let purges: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("cozo_jobs_total{") && l.contains(r#"job="purge""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        purges >= 1.0 && purges <= periods as f64,
        "{purges} purges in {periods} period(s):\n{metrics}"
    );
}

/// `PURGE_PERIOD_S` in src/lib.rs.
const PURGE_PERIOD_S: i64 = 300;
