//! Complete eIDAS logins per second (issue #7): authorize → `/login/eidas?country=NL` → the
//! signed AuthnRequest to the mock node's SSO service (the node checks its signature) → the
//! node's signed and encrypted response → `/saml/eidas/acs` (signature, decryption, checks,
//! replay cache) → the linked Bis number (linking lookup) → the code → `/token`.
//!
//! `cargo bench --bench eidas -- [--db sqlite|postgres] [--duration 10] [--concurrency 16]
//! [--kind ecdh|pss] [--access-token-alg RS256|ES256]` (release build). The broker runs in this process; the mock node (idp-mocks)
//! and the load generator run in a child process (this binary again, `--load`), so this
//! process's CPU (`/proc/self/stat`) is the broker's alone: the figure printed is broker CPU per
//! complete login of an already linked citizen, with the process's context switches per login
//! (each statement handed to a SQLite connection thread costs about two). `--kind ecdh`: the node signs with ECDSA and
//! agrees keys with ECDH-ES; `pss`: RSASSA-PSS and RSA-OAEP-3072. Without `--run` (or
//! `COZO_BENCH_EIDAS=1`) it does nothing, so that `cargo test --all-targets` may build it.

// A benchmark: it stops on the first broken answer and times with the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

mod common;

use common::{context_switches, cpu_seconds, rss_mib, switches_since};
use cozo_broker::clock::Clock;
use cozo_broker::config::Config;
use idp_mocks::eidas::{self as node, EidasNodeConfig, MockEidasNode, Outcome};
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

struct Env {
    base: String,
    node: MockEidasNode,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    /// The app's back end calling `/token`: its connections are kept, as an app server's HTTP
    /// client does (`COZO_BENCH_TOKEN_CONN=new`: a new connection per login, as this bench did
    /// until the late night of 2026-12-07, for comparison).
    app: reqwest::Client,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn location(r: &reqwest::Response) -> Res<String> {
    r.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| format!("no redirect ({})", r.status()))
}

fn query(u: &str, name: &str) -> Res<String> {
    url::Url::parse(u)
        .map_err(|e| e.to_string())?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no {name} in {u}"))
}

/// The `ID` of a deflated, base64 AuthnRequest (HTTP-Redirect binding).
fn request_id(saml_request: &str) -> Res<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(saml_request)
        .map_err(|e| e.to_string())?;
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .read_to_string(&mut xml)
        .map_err(|e| e.to_string())?;
    let start = xml.find(" ID=\"").ok_or("no ID")? + 5;
    let end = xml[start..].find('"').ok_or("no ID end")? + start;
    Ok(xml[start..end].to_string())
}

/// One complete login; returns the token response's status.
async fn login(env: &Env, citizen: &node::Citizen, link_bis: Option<&str>) -> Res<()> {
    let b = http();
    let verifier = cozo_broker::crypto::random_token(32);
    let challenge = cozo_broker::crypto::b64url(&cozo_broker::crypto::sha256(verifier.as_bytes()));
    let mut authorize = url::Url::parse(&format!("{}/authorize", env.base)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &env.client_id)
        .append_pair("redirect_uri", &env.redirect_uri)
        .append_pair("scope", "openid insz")
        .append_pair("state", "s")
        .append_pair("nonce", "n")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let r = b.get(authorize.as_str()).send().await.map_err(|e| e.to_string())?;
    let _ = location(&r)?;
    let r = b
        .get(format!("{}/login/eidas?country=NL", env.base))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let to_node = location(&r)?;
    let id = request_id(&query(&to_node, "SAMLRequest")?)?;
    let relay = query(&to_node, "RelayState")?;
    let r = http().get(&to_node).send().await.map_err(|e| e.to_string())?;
    if !(r.status().is_success() || r.status().is_redirection()) {
        return Err(format!("node refused the request: {}", r.status()));
    }
    let response =
        env.node.respond(&id, citizen, Outcome::Success).await.map_err(|e| e.to_string())?;
    let r = b
        .post(format!("{}/saml/eidas/acs", env.base))
        .form(&[("SAMLResponse", response.as_str()), ("RelayState", relay.as_str())])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let mut next = location(&r)?;
    for _ in 0..5 {
        if next.starts_with(&env.redirect_uri) {
            break;
        }
        let url = if next.starts_with('/') { format!("{}{next}", env.base) } else { next.clone() };
        if url.ends_with("/link") {
            let bis = link_bis.ok_or("linking asked in the timed phase")?;
            let page = b.get(&url).send().await.map_err(|e| e.to_string())?;
            let html = page.text().await.map_err(|e| e.to_string())?;
            let csrf = html
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .ok_or("no csrf")?
                .to_string();
            let r = b
                .post(&url)
                .form(&[("csrf", csrf.as_str()), ("bis", bis)])
                .send()
                .await
                .map_err(|e| e.to_string())?;
            next = location(&r)?;
            continue;
        }
        let r = b.get(&url).send().await.map_err(|e| e.to_string())?;
        next = location(&r)?;
    }
    let code = query(&next, "code")?;
    let r = env
        .app
        .post(format!("{}/token", env.base))
        .basic_auth(&env.client_id, Some(&env.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", env.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != 200 {
        return Err(format!("token: {}", r.status()));
    }
    Ok(())
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

async fn fresh_pg(base: &str) -> String {
    use sqlx::Connection;
    let name = format!("cozo_bench_{}", cozo_broker::crypto::random_id().to_lowercase());
    let name: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    let mut conn = sqlx::PgConnection::connect(base).await.expect("PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create db");
    let mut u = url::Url::parse(base).unwrap();
    u.set_path(&format!("/{name}"));
    u.to_string()
}

/// The child: the mock node, the Bis register and the load generator. Talks to the parent in
/// lines: prints `node <metadata url> <bis url>`, reads `client <id> <secret>`, links once, prints
/// `start` after the warm-up and `done <ok> <failed> <seconds>` at the end.
async fn load(args: &[String]) {
    let base = arg(args, "--base").expect("--base");
    let duration: f64 = arg(args, "--duration").and_then(|v| v.parse().ok()).unwrap_or(10.0);
    let concurrency: usize = arg(args, "--concurrency").and_then(|v| v.parse().ok()).unwrap_or(16);
    let (signing, key_transport) = match arg(args, "--kind").as_deref() {
        Some("pss") => (node::NodeSigning::RsaPss, node::KeyTransport::RsaOaep),
        _ => (node::NodeSigning::Ecdsa, node::KeyTransport::EcdhEs),
    };
    let (_, node) = node::start(EidasNodeConfig {
        sp_metadata_url: Some(format!("{base}/saml/eidas/metadata")),
        signing,
        key_transport,
        ..Default::default()
    })
    .await
    .expect("mock node");
    let (bis_url, _bis) = idp_mocks::bis_register::start().await;
    println!("node {} {bis_url}", node.metadata_url());
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).expect("client line");
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [_, client_id, client_secret] = parts.as_slice() else { panic!("bad line {line:?}") };
    let env = Arc::new(Env {
        base,
        node,
        client_id: client_id.to_string(),
        client_secret: client_secret.to_string(),
        redirect_uri: "http://127.0.0.1:9/cb".into(),
        app: if std::env::var("COZO_BENCH_TOKEN_CONN").is_ok_and(|v| v == "new") {
            reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("http client")
        } else {
            reqwest::Client::new()
        },
    });
    let citizen = node::citizen("nl-substantial").expect("citizen");
    // First login: linking to the Bis number (not timed); from then on DigiD alone suffices.
    login(&env, citizen, Some(idp_mocks::bis_register::DUTCH_PATIENT)).await.expect("first login");

    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let warmup = Duration::from_secs(2);
    let start = Instant::now();
    let end = start + warmup + Duration::from_secs_f64(duration);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (env, ok, failed) = (env.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let t = Instant::now();
                let r = login(&env, citizen, None).await;
                if t >= start + warmup && Instant::now() <= end {
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("login failed: {e}");
                            }
                            0
                        }
                    };
                }
            }
        }));
    }
    tokio::time::sleep(warmup).await;
    println!("start");
    let t0 = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let wall = t0.elapsed().as_secs_f64().min(duration).max(0.001);
    println!("done {} {} {wall}", ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--load") {
        return load(&args).await;
    }
    if !args.iter().any(|a| a == "--run") && std::env::var("COZO_BENCH_EIDAS").is_err() {
        eprintln!("eidas bench: pass --run (cargo bench --bench eidas -- --run) to measure");
        return;
    }
    // `COZO_BENCH_LOG=sqlx::query=debug`: the broker's statements (to count them per login).
    if let Ok(filter) = std::env::var("COZO_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let db = arg(&args, "--db").unwrap_or_else(|| "sqlite".into());
    let kind = arg(&args, "--kind").unwrap_or_else(|| "ecdh".into());
    let duration = arg(&args, "--duration").unwrap_or_else(|| "10".into());
    let concurrency = arg(&args, "--concurrency").unwrap_or_else(|| "16".into());
    let dir = tempfile::tempdir().expect("tempdir");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--load", "--base", &base, "--kind", &kind, "--duration", &duration])
        .args(["--concurrency", &concurrency])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("load process");
    let mut from_child = std::io::BufReader::new(child.stdout.take().expect("child stdout"));
    let mut to_child = child.stdin.take().expect("child stdin");
    let mut read_line = move || {
        let mut l = String::new();
        from_child.read_line(&mut l).expect("child line");
        l.split_whitespace().map(str::to_string).collect::<Vec<String>>()
    };
    let node_line = tokio::task::block_in_place(&mut read_line);
    let (metadata_url, bis_url) = (node_line[1].clone(), node_line[2].clone());

    let mut cfg = Config::default();
    cfg.server.listen = listener.local_addr().unwrap();
    cfg.server.public_url = url::Url::parse(&base).unwrap();
    cfg.database.url = match db.as_str() {
        "postgres" => {
            fresh_pg(
                &std::env::var("TEST_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            )
            .await
        }
        _ => format!("sqlite://{}/bench.db", dir.path().display()),
    };
    cfg.database.max_connections = 16;
    // `--access-token-alg ES256`: the RFC 9068 access token signed with ECDSA instead of RSA
    // (`[oidc] access_token_alg`), to show the second RSA signature's share of a login.
    if let Some(alg) = arg(&args, "--access-token-alg") {
        cfg.oidc.access_token_alg =
            serde_json::from_value(serde_json::Value::String(alg)).expect("RS256, ES256 or EdDSA");
    }
    // One generator address: the per-address rate limit would measure itself (as in run.sh).
    cfg.server.rate_limit_per_s = 0;
    cfg.secrets.master_key_file = dir.path().join("master.key");
    cfg.policy.dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies").into();
    cfg.eidas.node_metadata = Some(metadata_url);
    cfg.bis_register.url = Some(url::Url::parse(&bis_url).unwrap());
    let rss_before = rss_mib();
    let handle = cozo_broker::serve_on(cfg, Clock::default(), listener).await.expect("broker");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_mib();
    let spec = cozo_broker::admin::ClientSpec::new("bench", "http://127.0.0.1:9/cb", "portal");
    let secret = cozo_broker::admin::add_client(&handle.store, &handle.policies, &spec, 0)
        .await
        .expect("client")
        .expect("a confidential client");
    writeln!(to_child, "client bench {secret}").expect("to child");
    to_child.flush().expect("to child");

    let started = tokio::task::spawn_blocking(move || {
        let s = read_line();
        (s, read_line)
    })
    .await
    .unwrap();
    assert_eq!(started.0.first().map(String::as_str), Some("start"), "{:?}", started.0);
    let cpu0 = cpu_seconds();
    let switches0 = context_switches();
    let read_line = started.1;
    let done = tokio::task::spawn_blocking(read_line).await.unwrap();
    let cpu = cpu_seconds() - cpu0;
    let switches = switches_since(&switches0);
    let _ = child.wait();
    let n: u64 = done.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    let failed: u64 = done.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
    let wall: f64 = done.get(3).and_then(|v| v.parse().ok()).unwrap_or(1.0);
    let node_kind = if kind == "pss" { "RSASSA-PSS + RSA-OAEP-3072" } else { "ECDSA + ECDH-ES" };
    println!(
        "eidas logins/s ({db}, {concurrency} concurrent, node {node_kind}; node and generator in another process): {:.0}  [{} ok, {} failed in {:.1} s; broker CPU {:.2} ms per login ({:.2} cores), {:.0} context switches per login; RSS {:.0} MiB, before start {:.0} MiB]",
        n as f64 / wall,
        n,
        failed,
        wall,
        cpu * 1000.0 / (n.max(1) as f64),
        cpu / wall,
        switches as f64 / (n.max(1) as f64),
        rss_mib(),
        rss_before,
    );
    println!("RSS idle after start (broker alone): {rss_idle:.0} MiB");

    // Live sessions live in the database, not in the process: create many and look at RSS.
    let sessions: usize = arg(&args, "--sessions").and_then(|v| v.parse().ok()).unwrap_or(0);
    if sessions > 0 {
        let made = Arc::new(AtomicU64::new(0));
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (made, url) = (made.clone(), format!("{base}/login/key"));
            tasks.push(tokio::spawn(async move {
                let c = reqwest::Client::new();
                while made.fetch_add(1, Ordering::Relaxed) < sessions as u64 {
                    // No cookie: every request opens a new session (its CSRF token needs one).
                    let _ = c.get(&url).send().await.map(|r| r.status());
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let live = handle.store.count_sessions(handle.clock.now()).await.unwrap_or(-1);
        println!(
            "RSS with {live} live sessions: {:.0} MiB (created in {:.1} s)",
            rss_mib(),
            t.elapsed().as_secs_f64()
        );
    }
    handle.shutdown().await;
}
