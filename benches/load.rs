//! Load generator for cozo-broker (`cargo bench --bench load -- ARGS`; `harness = false`).
//!
//! It measures an already running broker over loopback HTTP (see `benches/run.sh`, which starts
//! one on a fresh database, registers the client and creates the accounts):
//!
//! - `refresh`: refresh_token grants/s, C workers over N chains; a chain is in at most one request
//!   at a time and always sends its newest refresh token;
//! - `latency`: p50/p99 of /token (refresh) with 100 concurrent clients (closed loop);
//! - `code`: authorization_code exchanges/s; the codes come from untimed logins in batches, only
//!   the exchange bursts are timed;
//! - `login`: complete logins/s (authorize → /login → /login/key → password → /login/key/code →
//!   TOTP code → redirect with the code → /token);
//! - `jwks`, `discovery`: GETs/s;
//! - `argon2` (issue #18): the bound of complete logins, one argon2id hash at the configured
//!   cost timed in this process, times the cores; a later `login` phase says its share of it;
//! - `wrongpw` (issue #15, SPEC §6): the time of a wrong password for a known username against
//!   an unknown one, one request at a time, in pairs whose order alternates (not in the default
//!   phases: it records failures, so run.sh runs it last, on a broker whose per-address
//!   slow-down is off, else that slow-down would dominate the figures).
//! - `cc_pkjwt`, `cc_pkjwt_rsa` (issue #19, SPEC §10): `client_credentials` grants/s of a
//!   software client authenticated by `private_key_jwt` (ES256 with the test PKI's `gp-ec`
//!   certificate, RS256 with `gp-rsa`); every request signs a fresh assertion with a new `jti`
//!   (the generator's cost, reported apart);
//! - `cc_mtls`: the same grant with `tls_client_auth` on the mTLS listener (`--mtls-url`), one
//!   TLS client with the certificate, keep-alive connections (the handshakes fall in the warm-up);
//! - `introspect`: `/introspect` calls/s by a resource server (`--introspect-client`, secret),
//!   over access tokens obtained first (untimed) with `cc_pkjwt`'s client.
//!   The software phases need `--ehealth-dir` (the test PKI, written by
//!   `--write-ehealth-ca DIR`, which does only that and exits: idp-mocks' `EhealthPki`).
//!
//! Each timed phase counts the requests that start and end inside the last `--duration` seconds
//! after `--warmup`; the CPU of the server (`--server-pid`) and of this process is read from
//! /proc for the same window. One line per figure on stdout, progress on stderr.
//!
//! A TOTP time step is accepted once per key, so every account (username, password, base32
//! secret: one per line of `--accounts`, tab- or space-separated) is used at most once per 30 s
//! step; when all are used the logins wait for the next step (counted and reported).
//!
//! Without `--url` (or `COZO_BENCH_URL`) it measures nothing and exits 0, so that
//! `cargo test --all-targets` may run it.

// A load generator: it stops on the first broken answer and times with the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use cozo_broker::crypto;
use cozo_broker::keys::totp;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

// ------------------------------------------------------------------------------------ options

struct Opts {
    url: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    accounts: Option<PathBuf>,
    scope: String,
    concurrency: usize,
    chains: usize,
    latency_concurrency: usize,
    duration: f64,
    warmup: f64,
    codes: usize,
    code_batch: usize,
    phases: Vec<String>,
    server_pid: Option<u32>,
    fresh_accounts: bool,
    max_wall: f64,
    retries: usize,
    quiet_wait: f64,
    db_comm: Option<String>,
    wrong_pairs: usize,
    /// The test eHealth PKI (`ehealth-test-ca` files) for the software phases.
    ehealth_dir: Option<PathBuf>,
    pkjwt_client: String,
    pkjwt_rsa_client: String,
    mtls_url: Option<String>,
    mtls_client: String,
    introspect_client: String,
    introspect_secret: Option<String>,
    introspect_tokens: usize,
}

const USAGE: &str = "\
usage: cargo bench --bench load -- --url URL --client-id ID --client-secret SECRET --accounts FILE
  [--redirect-uri http://127.0.0.1:9/cb] [--scope 'openid insz'] [--concurrency 16] [--chains 64]
  [--latency-concurrency 100] [--duration 10] [--warmup 2] [--codes 1000] [--code-batch 100]
  [--phases refresh,latency,jwks,discovery,login,code] [--server-pid PID] [--fresh-accounts]
  [--max-wall 180] [--retries 2] [--quiet-wait 120] [--db-comm postgres] [--wrong-pairs 40]
  [--ehealth-dir DIR] [--pkjwt-client bench-pkjwt] [--pkjwt-rsa-client bench-pkjwt-rsa]
  [--mtls-url https://127.0.0.1:PORT] [--mtls-client bench-mtls] [--introspect-client bench-rs]
  [--introspect-secret SECRET] [--introspect-tokens 500]
  cargo bench --bench load -- --write-ehealth-ca DIR   (writes the test eHealth PKI, then exits)
Each option can also come from the environment: COZO_BENCH_URL, COZO_BENCH_CLIENT_ID,
COZO_BENCH_CLIENT_SECRET, COZO_BENCH_ACCOUNTS, COZO_BENCH_SERVER_PID, ... (upper case, _ for -).
--fresh-accounts: no account was used in the current TOTP step (else the first step is skipped).
Before each phase it waits (up to --quiet-wait s) until other processes use < 0.25 cores, and
measures a phase again (up to --retries times) when they used more inside its window.
--db-comm NAME: processes of that name (the database server) count as the broker's CPU.
Phases cc_pkjwt, cc_pkjwt_rsa, cc_mtls, introspect (issue #19): --ehealth-dir with gp-ec.* and
gp-rsa.* of the test PKI; the clients registered with those certificates (see benches/run.sh).";

impl Opts {
    fn parse() -> Res<Option<Self>> {
        let mut given: BTreeMap<String, String> = BTreeMap::new();
        let mut args = std::env::args().skip(1).peekable();
        while let Some(a) = args.next() {
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a}\n{USAGE}"));
            };
            match name {
                // cargo bench passes --bench; libtest-style flags are ignored.
                "bench" | "nocapture" | "quiet" | "show-output" => continue,
                "help" => {
                    println!("{USAGE}");
                    return Ok(None);
                }
                "fresh-accounts" => {
                    given.insert(name.into(), "1".into());
                    continue;
                }
                _ => {}
            }
            if let Some((k, v)) = name.split_once('=') {
                given.insert(k.into(), v.into());
            } else {
                let v = args.next().ok_or_else(|| format!("--{name} needs a value"))?;
                given.insert(name.into(), v);
            }
        }
        let get = |k: &str| -> Option<String> {
            given.get(k).cloned().or_else(|| {
                std::env::var(format!("COZO_BENCH_{}", k.to_uppercase().replace('-', "_"))).ok()
            })
        };
        let num = |k: &str, d: f64| -> Res<f64> {
            match get(k) {
                Some(v) => v.parse().map_err(|_| format!("--{k}: not a number: {v}")),
                None => Ok(d),
            }
        };
        if let Some(dir) = get("write-ehealth-ca") {
            let pki = idp_mocks::ehealth_ca::EhealthPki::generate().map_err(|e| e.to_string())?;
            let files = pki.write_files(std::path::Path::new(&dir)).map_err(|e| e.to_string())?;
            eprintln!("load: wrote the test eHealth PKI ({} files) to {dir}", files.len());
            return Ok(None);
        }
        let Some(url) = get("url") else {
            eprintln!(
                "load: no --url / COZO_BENCH_URL: nothing to measure (benches/run.sh starts a \
                 broker and runs this generator against it)"
            );
            return Ok(None);
        };
        let url = url.trim_end_matches('/').to_string();
        check_loopback(&url)?;
        let redirect_uri = get("redirect-uri").unwrap_or_else(|| "http://127.0.0.1:9/cb".into());
        Ok(Some(Self {
            url,
            client_id: get("client-id").unwrap_or_else(|| "bench".into()),
            client_secret: get("client-secret").ok_or("--client-secret is required")?,
            redirect_uri,
            accounts: get("accounts").map(PathBuf::from),
            scope: get("scope").unwrap_or_else(|| "openid insz".into()),
            concurrency: num("concurrency", 16.0)? as usize,
            chains: num("chains", 64.0)? as usize,
            latency_concurrency: num("latency-concurrency", 100.0)? as usize,
            duration: num("duration", 10.0)?,
            warmup: num("warmup", 2.0)?,
            codes: num("codes", 1000.0)? as usize,
            code_batch: num("code-batch", 100.0)? as usize,
            phases: get("phases")
                .unwrap_or_else(|| "refresh,latency,jwks,discovery,login,code".into())
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            server_pid: get("server-pid").and_then(|p| p.parse().ok()),
            fresh_accounts: get("fresh-accounts").is_some_and(|v| v != "0"),
            max_wall: num("max-wall", 180.0)?,
            retries: num("retries", 2.0)? as usize,
            quiet_wait: num("quiet-wait", 120.0)?,
            db_comm: get("db-comm"),
            wrong_pairs: num("wrong-pairs", 40.0)? as usize,
            ehealth_dir: get("ehealth-dir").map(PathBuf::from),
            pkjwt_client: get("pkjwt-client").unwrap_or_else(|| "bench-pkjwt".into()),
            pkjwt_rsa_client: get("pkjwt-rsa-client").unwrap_or_else(|| "bench-pkjwt-rsa".into()),
            mtls_url: match get("mtls-url") {
                Some(u) => {
                    check_loopback(&u)?;
                    Some(u.trim_end_matches('/').to_string())
                }
                None => None,
            },
            mtls_client: get("mtls-client").unwrap_or_else(|| "bench-mtls".into()),
            introspect_client: get("introspect-client").unwrap_or_else(|| "bench-rs".into()),
            introspect_secret: get("introspect-secret"),
            introspect_tokens: num("introspect-tokens", 500.0)? as usize,
        }))
    }
}

/// Only loopback targets: this tool is for local benches.
fn check_loopback(u: &str) -> Res<()> {
    let url = url::Url::parse(u).map_err(|e| format!("{u}: {e}"))?;
    if cozo_broker::config::is_loopback_host(&url) {
        Ok(())
    } else {
        Err(format!("refusing non-loopback target {u}"))
    }
}

// ------------------------------------------------------------------------------------ accounts

struct Account {
    username: String,
    password: String,
    secret: Vec<u8>,
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn step_now() -> i64 {
    unix_now().div_euclid(totp::STEP_S as i64)
}

/// Accounts, each used at most once per TOTP step (the broker accepts a step once per key).
struct AccountPool {
    accounts: Vec<Account>,
    state: Mutex<PoolState>,
}

struct PoolState {
    /// The last step each account used (or reserved).
    last_step: Vec<i64>,
    in_use: Vec<bool>,
    cursor: usize,
    waits: u64,
    waited: Duration,
}

impl AccountPool {
    fn load(path: &PathBuf, fresh: bool) -> Res<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut accounts = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = if line.contains('\t') {
                line.split('\t').collect()
            } else {
                line.split_whitespace().collect()
            };
            let [username, password, secret] = f[..] else {
                return Err(format!("{}:{}: want username password secret", path.display(), i + 1));
            };
            let secret = totp::decode_base32(secret)
                .ok_or_else(|| format!("{}:{}: secret is not base32", path.display(), i + 1))?;
            accounts.push(Account { username: username.into(), password: password.into(), secret });
        }
        if accounts.is_empty() {
            return Err(format!("{}: no accounts", path.display()));
        }
        // Unless told otherwise, assume another process may have used them in this step.
        let start = if fresh { i64::MIN } else { step_now() };
        let n = accounts.len();
        Ok(Self {
            accounts,
            state: Mutex::new(PoolState {
                last_step: vec![start; n],
                in_use: vec![false; n],
                cursor: 0,
                waits: 0,
                waited: Duration::ZERO,
            }),
        })
    }

    fn len(&self) -> usize {
        self.accounts.len()
    }

    /// How many accounts are free in the current step.
    fn free_now(&self) -> usize {
        let s = self.state.lock().unwrap();
        let step = step_now();
        (0..self.len()).filter(|&i| !s.in_use[i] && s.last_step[i] < step).count()
    }

    async fn acquire(&self) -> usize {
        loop {
            {
                let mut s = self.state.lock().unwrap();
                let step = step_now();
                let n = self.len();
                for k in 0..n {
                    let i = (s.cursor + k) % n;
                    if !s.in_use[i] && s.last_step[i] < step {
                        s.in_use[i] = true;
                        s.last_step[i] = step;
                        s.cursor = (i + 1) % n;
                        return i;
                    }
                }
                s.waits += 1;
            }
            let t = Instant::now();
            tokio::time::sleep(until_next_step()).await;
            self.state.lock().unwrap().waited += t.elapsed();
        }
    }

    /// The code for account `i` now; records its step.
    fn code(&self, i: usize) -> String {
        let now = unix_now();
        let mut s = self.state.lock().unwrap();
        s.last_step[i] = s.last_step[i].max(now.div_euclid(totp::STEP_S as i64));
        totp::code_at(&self.accounts[i].secret, now)
    }

    fn release(&self, i: usize) {
        self.state.lock().unwrap().in_use[i] = false;
    }

    fn waits(&self) -> (u64, Duration) {
        let s = self.state.lock().unwrap();
        (s.waits, s.waited)
    }
}

fn until_next_step() -> Duration {
    let ms = chrono::Utc::now().timestamp_millis();
    let step_ms = totp::STEP_S as i64 * 1000;
    Duration::from_millis((step_ms - ms.rem_euclid(step_ms)) as u64 + 50)
}

// ------------------------------------------------------------------------------------ HTTP

struct Bench {
    o: Opts,
    http: reqwest::Client,
    basic: String,
    pool: Option<AccountPool>,
    /// Hashes/s of the whole machine at the configured argon2 cost (phase `argon2`).
    argon2_bound: Mutex<Option<f64>>,
}

/// A browser's cookies for one login (the broker sets `cozo_session`, renewed at login).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn store(&mut self, h: &HeaderMap) {
        for v in h.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let pair = v.split(';').next().unwrap_or_default();
            let Some((k, val)) = pair.split_once('=') else { continue };
            let gone = v.to_ascii_lowercase().contains("max-age=0");
            if gone {
                self.0.remove(k.trim());
            } else {
                self.0.insert(k.trim().into(), val.trim().into());
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

struct Reply {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

fn hidden_csrf(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\"")?;
    let tag_end = at + html[at..].find('>')?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let len = tag[v..].find('"')?;
    Some(tag[v..v + len].to_string())
}

fn query_param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A code ready to be exchanged.
struct Code {
    code: String,
    verifier: String,
}

impl Bench {
    async fn browse(
        &self,
        jar: &mut Jar,
        method: reqwest::Method,
        path_or_url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> Res<Reply> {
        let url = if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.o.url)
        } else {
            path_or_url.to_string()
        };
        check_loopback(&url)?;
        let mut rb = self.http.request(method, &url).header("accept", "text/html");
        let c = jar.header();
        if !c.is_empty() {
            rb = rb.header(COOKIE, c);
        }
        if let Some(f) = form {
            rb = rb
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(f).map_err(|e| e.to_string())?);
        }
        let resp = rb.send().await.map_err(|e| format!("{url}: {e}"))?;
        jar.store(resp.headers());
        let status = resp.status();
        let location =
            resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.text().await.map_err(|e| e.to_string())?;
        Ok(Reply { status, location, body })
    }

    fn expect_redirect(r: &Reply, what: &str, to: &str) -> Res<String> {
        match &r.location {
            Some(l) if r.status.is_redirection() && l.starts_with(to) => Ok(l.clone()),
            _ => Err(format!(
                "{what}: HTTP {} location {:?}: {}",
                r.status,
                r.location,
                r.body.chars().take(160).collect::<String>().replace('\n', " ")
            )),
        }
    }

    /// One complete digital-key login as a browser does it, ending with a code.
    async fn login(&self) -> Res<Code> {
        let pool = self.pool.as_ref().ok_or("no --accounts file")?;
        let i = pool.acquire().await;
        let r = self.login_as(pool, i).await;
        pool.release(i);
        r
    }

    async fn login_as(&self, pool: &AccountPool, i: usize) -> Res<Code> {
        use reqwest::Method;
        let acct = &pool.accounts[i];
        let verifier = crypto::random_token(32);
        let challenge = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
        let state = crypto::random_token(12);
        let nonce = crypto::random_token(12);
        let mut authz = url::Url::parse(&format!("{}/authorize", self.o.url)).unwrap();
        authz
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.o.client_id)
            .append_pair("redirect_uri", &self.o.redirect_uri)
            .append_pair("scope", &self.o.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let mut jar = Jar::default();
        let r = self.browse(&mut jar, Method::GET, authz.as_str(), None).await?;
        let chooser = Self::expect_redirect(&r, "authorize", "/login")?;
        let r = self.browse(&mut jar, Method::GET, &chooser, None).await?;
        if r.status != StatusCode::OK || !r.body.contains("/login/key") {
            return Err(format!("chooser: HTTP {} without the digital key", r.status));
        }
        let r = self.browse(&mut jar, Method::GET, "/login/key", None).await?;
        let csrf = hidden_csrf(&r.body).ok_or(format!("/login/key: HTTP {} no csrf", r.status))?;
        let form = [
            ("csrf", csrf.as_str()),
            ("username", acct.username.as_str()),
            ("password", acct.password.as_str()),
        ];
        let r = self.browse(&mut jar, Method::POST, "/login/key", Some(&form)).await?;
        let next = Self::expect_redirect(&r, "password", "/login/key/code")?;
        let r = self.browse(&mut jar, Method::GET, &next, None).await?;
        let csrf = hidden_csrf(&r.body).ok_or(format!("code page: HTTP {} no csrf", r.status))?;
        let code = pool.code(i);
        let form = [("csrf", csrf.as_str()), ("method", "totp"), ("code", code.as_str())];
        let r = self.browse(&mut jar, Method::POST, "/login/key/code", Some(&form)).await?;
        let back = Self::expect_redirect(&r, "code", &self.o.redirect_uri)?;
        let back = url::Url::parse(&back).map_err(|e| e.to_string())?;
        if let Some(e) = query_param(&back, "error") {
            return Err(format!("authorization error {e}"));
        }
        if query_param(&back, "state").as_deref() != Some(state.as_str()) {
            return Err("state mismatch".into());
        }
        let code = query_param(&back, "code").ok_or("no code in the redirect")?;
        Ok(Code { code, verifier })
    }

    async fn token(&self, form: &[(&str, &str)]) -> Res<serde_json::Value> {
        let resp = self
            .http
            .post(format!("{}/token", self.o.url))
            .header(AUTHORIZATION, &self.basic)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(serde_urlencoded::to_string(form).map_err(|e| e.to_string())?)
            .send()
            .await
            .map_err(|e| format!("/token: {e}"))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Err(format!("/token: HTTP {status} {}", String::from_utf8_lossy(&body)));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        if v.get("access_token").and_then(|t| t.as_str()).is_none() {
            return Err("/token: no access_token".into());
        }
        Ok(v)
    }

    async fn exchange(&self, c: &Code) -> Res<serde_json::Value> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", &c.code),
            ("redirect_uri", &self.o.redirect_uri),
            ("code_verifier", &c.verifier),
        ])
        .await
    }

    async fn get_ok(&self, path: &str) -> Res<()> {
        let resp = self
            .http
            .get(format!("{}{path}", self.o.url))
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status();
        let _ = resp.bytes().await.map_err(|e| e.to_string())?;
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!("{path}: HTTP {status}"))
        }
    }
}

// ------------------------------------------------------------------------------------ measuring

const CLK_TCK: f64 = 100.0;

fn proc_ticks(pid: &str) -> Option<u64> {
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &st[st.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn machine_ticks() -> (u64, u64) {
    let st = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = st
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (f.iter().sum(), idle)
}

/// Processes named so (e.g. `postgres`) are the server's database: their CPU is the server's work.
static DB_COMM: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// utime + stime of every process whose name is `comm`, by pid.
fn comm_ticks(comm: &str) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(open), Some(close)) = (st.find('('), st.rfind(')')) else { continue };
        if &st[open + 1..close] == comm {
            if let Some(t) = proc_ticks(&pid.to_string()) {
                out.insert(pid, t);
            }
        }
    }
    out
}

/// CPU ticks of the server (and its database processes), this generator and the machine.
#[derive(Clone)]
struct CpuMark {
    at: Instant,
    server: Option<u64>,
    db: Option<BTreeMap<u32, u64>>,
    me: Option<u64>,
    machine: (u64, u64),
}

#[derive(Clone, Copy, Default)]
struct CpuUse {
    seconds: f64,
    server: Option<f64>,
    db: Option<f64>,
    me: f64,
    busy: f64,
}

fn add_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

impl CpuUse {
    fn add(&mut self, o: CpuUse) {
        self.seconds += o.seconds;
        self.server = add_opt(self.server, o.server);
        self.db = add_opt(self.db, o.db);
        self.me += o.me;
        self.busy += o.busy;
    }

    /// Cores used by processes other than the server, its database and this generator.
    fn others(&self) -> f64 {
        (self.busy - self.me - self.server.unwrap_or(0.0) - self.db.unwrap_or(0.0))
            / self.seconds.max(1e-9)
    }

    fn describe(&self) -> String {
        let w = self.seconds.max(1e-9);
        let server = self.server.map_or("?".into(), |s| format!("{:.2}", s / w));
        let db = match (self.db, DB_COMM.get()) {
            (Some(d), Some(name)) => format!(" + {name} {:.2}", d / w),
            _ => String::new(),
        };
        let others = self.others();
        format!(
            "cores: server {server}{db}, generator {:.2}, other processes {others:.2}, machine \
             busy {:.2} of {}",
            self.me / w,
            self.busy / w,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )
    }
}

fn cpu_mark(server_pid: Option<u32>) -> CpuMark {
    CpuMark {
        at: Instant::now(),
        server: server_pid.and_then(|p| proc_ticks(&p.to_string())),
        db: DB_COMM.get().map(|c| comm_ticks(c)),
        me: proc_ticks("self"),
        machine: machine_ticks(),
    }
}

fn cpu_since(a: CpuMark, server_pid: Option<u32>) -> CpuUse {
    let b = cpu_mark(server_pid);
    let ticks = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => Some(y.saturating_sub(x) as f64 / CLK_TCK),
        _ => None,
    };
    // Database processes started inside the window count from zero.
    let db = match (&a.db, &b.db) {
        (Some(x), Some(y)) => Some(
            y.iter().map(|(pid, t)| t.saturating_sub(*x.get(pid).unwrap_or(&0))).sum::<u64>()
                as f64
                / CLK_TCK,
        ),
        _ => None,
    };
    let (t0, i0) = a.machine;
    let (t1, i1) = b.machine;
    CpuUse {
        seconds: (b.at - a.at).as_secs_f64(),
        server: ticks(a.server, b.server),
        db,
        me: ticks(a.me, b.me).unwrap_or(0.0),
        busy: ((t1 - t0) - (i1 - i0)) as f64 / CLK_TCK,
    }
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    lat_ms: Vec<f64>,
    samples: BTreeMap<String, u64>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.errors += o.errors;
        self.lat_ms.extend(o.lat_ms);
        for (k, v) in o.samples {
            *self.samples.entry(k).or_default() += v;
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        let k: String = e.chars().take(140).collect();
        *self.samples.entry(k).or_default() += 1;
    }

    fn pct(&mut self, p: f64) -> f64 {
        if self.lat_ms.is_empty() {
            return f64::NAN;
        }
        self.lat_ms.sort_by(|a, b| a.total_cmp(b));
        let i = ((p / 100.0) * self.lat_ms.len() as f64).ceil() as usize;
        self.lat_ms[i.clamp(1, self.lat_ms.len()) - 1]
    }
}

struct Figure {
    tally: Tally,
    seconds: f64,
    cpu: CpuUse,
}

impl Figure {
    fn per_s(&self) -> f64 {
        self.tally.ok as f64 / self.seconds.max(1e-9)
    }

    fn line(&mut self) -> String {
        let (p50, p99) = (self.tally.pct(50.0), self.tally.pct(99.0));
        let max = self.tally.lat_ms.last().copied().unwrap_or(f64::NAN);
        format!(
            "{:.0}/s; p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; {} ok, {} errors in {:.1} s; {}",
            self.per_s(),
            self.tally.ok,
            self.tally.errors,
            self.seconds,
            self.cpu.describe()
        )
    }

    /// The broker's CPU (server, and its database with `--db-comm`) per successful request.
    fn cpu_per_op(&self) -> String {
        let n = self.tally.ok.max(1) as f64;
        let Some(server) = self.cpu.server else { return "broker CPU per request: ?".into() };
        match (self.cpu.db, DB_COMM.get()) {
            (Some(db), Some(name)) => format!(
                "broker CPU {:.2} ms per request (server {:.2} + {name} {:.2})",
                1e3 * (server + db) / n,
                1e3 * server / n,
                1e3 * db / n
            ),
            _ => format!("broker CPU {:.2} ms per request", 1e3 * server / n),
        }
    }

    fn errors_note(&self) -> Option<String> {
        (!self.tally.samples.is_empty()).then(|| format!("    errors: {:?}", self.tally.samples))
    }
}

type Op = Arc<dyn Fn() -> BoxFuture<'static, Res<bool>> + Send + Sync>;

/// Runs `op` on `conc` workers for warmup + duration; counts what starts and ends in the window.
/// An op returning Ok(false) stops its worker.
async fn timed(conc: usize, warmup: f64, duration: f64, server_pid: Option<u32>, op: Op) -> Figure {
    let t0 = Instant::now();
    let ws = t0 + Duration::from_secs_f64(warmup);
    let we = ws + Duration::from_secs_f64(duration);
    let mut workers = Vec::new();
    for _ in 0..conc {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut t = Tally::default();
            while Instant::now() < we {
                let s = Instant::now();
                let r = op().await;
                let e = Instant::now();
                let inside = s >= ws && e <= we;
                match r {
                    Ok(false) => break,
                    Ok(true) if inside => {
                        t.ok += 1;
                        t.lat_ms.push((e - s).as_secs_f64() * 1e3);
                    }
                    Ok(true) => {}
                    Err(err) if inside => t.error(err),
                    Err(_) => {}
                }
            }
            t
        }));
    }
    tokio::time::sleep_until(ws.into()).await;
    let mark = cpu_mark(server_pid);
    tokio::time::sleep_until(we.into()).await;
    let cpu = cpu_since(mark, server_pid);
    let mut tally = Tally::default();
    for w in workers {
        if let Ok(t) = w.await {
            tally.merge(t);
        }
    }
    Figure { tally, seconds: duration, cpu }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "MET"
    } else {
        "NOT MET"
    }
}

// ------------------------------------------------------------------------------------ phases

struct Chain {
    rt: String,
}

impl Bench {
    /// `n` logins (untimed) with `conc` in flight; the codes, and the errors.
    async fn logins(self: &Arc<Self>, n: usize, conc: usize) -> (Vec<Code>, Tally) {
        let results: Vec<Res<Code>> = futures::stream::iter(0..n)
            .map(|_| {
                let b = self.clone();
                async move { b.login().await }
            })
            .buffer_unordered(conc.max(1))
            .collect()
            .await;
        let mut t = Tally::default();
        let mut codes = Vec::new();
        for r in results {
            match r {
                Ok(c) => codes.push(c),
                Err(e) => t.error(e),
            }
        }
        (codes, t)
    }

    async fn make_chains(self: &Arc<Self>, n: usize) -> Res<Vec<Chain>> {
        let t = Instant::now();
        let (codes, errs) = self.logins(n, self.o.concurrency).await;
        let mut chains = Vec::new();
        for c in codes {
            let v = self.exchange(&c).await?;
            let rt = v.get("refresh_token").and_then(|r| r.as_str()).ok_or("no refresh_token")?;
            chains.push(Chain { rt: rt.into() });
        }
        eprintln!(
            "[load] setup: {} refresh chains from {} logins in {:.1} s ({} login errors {:?})",
            chains.len(),
            n,
            t.elapsed().as_secs_f64(),
            errs.errors,
            errs.samples
        );
        if chains.is_empty() {
            return Err("no refresh chain could be set up".into());
        }
        Ok(chains)
    }

    /// refresh_token grants with `conc` workers over `chains` (FIFO: every chain takes turns).
    /// Returns the figure, the chains lost (an error mid-rotation) and the surviving chains.
    async fn refresh_phase(
        self: &Arc<Self>,
        chains: Vec<Chain>,
        conc: usize,
    ) -> (Figure, usize, Vec<Chain>) {
        let n = chains.len();
        let idle = Arc::new(Mutex::new(chains.into_iter().collect::<VecDeque<_>>()));
        let lost = Arc::new(Mutex::new(0usize));
        let b = self.clone();
        let (idle2, lost2) = (idle.clone(), lost.clone());
        let op: Op = Arc::new(move || {
            let (b, idle, lost) = (b.clone(), idle2.clone(), lost2.clone());
            async move {
                let Some(mut chain) = idle.lock().unwrap().pop_front() else {
                    return Ok(false);
                };
                match b
                    .token(&[("grant_type", "refresh_token"), ("refresh_token", &chain.rt)])
                    .await
                {
                    Ok(v) => {
                        match v.get("refresh_token").and_then(|r| r.as_str()) {
                            Some(rt) if rt != chain.rt => chain.rt = rt.into(),
                            _ => {
                                *lost.lock().unwrap() += 1;
                                return Err("refresh response without a new refresh_token".into());
                            }
                        }
                        idle.lock().unwrap().push_back(chain);
                        Ok(true)
                    }
                    Err(e) => {
                        *lost.lock().unwrap() += 1;
                        Err(e)
                    }
                }
            }
            .boxed()
        });
        let fig = timed(conc.min(n), self.o.warmup, self.o.duration, self.o.server_pid, op).await;
        let lost = *lost.lock().unwrap();
        let alive = idle.lock().unwrap().drain(..).collect();
        (fig, lost, alive)
    }

    /// One wrong password for `username` as a browser sends it; the time of the POST alone.
    async fn wrong_password(&self, username: &str) -> Res<f64> {
        use reqwest::Method;
        let mut jar = Jar::default();
        let r = self.browse(&mut jar, Method::GET, "/login/key", None).await?;
        let csrf = hidden_csrf(&r.body).ok_or(format!("/login/key: HTTP {} no csrf", r.status))?;
        let form =
            [("csrf", csrf.as_str()), ("username", username), ("password", "not the password")];
        let s = Instant::now();
        let r = self.browse(&mut jar, Method::POST, "/login/key", Some(&form)).await?;
        let ms = s.elapsed().as_secs_f64() * 1e3;
        if r.status != StatusCode::UNAUTHORIZED {
            return Err(format!("wrong password for {username}: HTTP {} (want 401)", r.status));
        }
        Ok(ms)
    }

    /// `--wrong-pairs` pairs (a known account, each once, and an unknown username), known first
    /// in even pairs and unknown first in odd ones, so a drift over the run (or a slow-down that
    /// grows with each failure) weighs on both alike.
    async fn wrong_password_phase(&self) -> Res<(Tally, Tally, CpuUse)> {
        use rand::Rng;
        let pool = self.pool.as_ref().ok_or("no accounts")?;
        // A random start, so that a measurement taken again fails other accounts (5 failures
        // lock an account).
        let start = rand::thread_rng().gen_range(0..pool.len());
        let (mut known, mut unknown) = (Tally::default(), Tally::default());
        let mark = cpu_mark(self.o.server_pid);
        for i in 0..self.o.wrong_pairs {
            let acct = &pool.accounts[(start + i) % pool.len()].username;
            let nobody = format!("nobody-{}", crypto::random_token(6).to_lowercase());
            let order = if i % 2 == 0 { [true, false] } else { [false, true] };
            for is_known in order {
                let (t, user) = if is_known { (&mut known, acct) } else { (&mut unknown, &nobody) };
                match self.wrong_password(user).await {
                    Ok(ms) => {
                        t.ok += 1;
                        t.lat_ms.push(ms);
                    }
                    Err(e) => t.error(e),
                }
            }
        }
        Ok((known, unknown, cpu_since(mark, self.o.server_pid)))
    }

    /// Codes from untimed logins in batches; only the exchange bursts are timed.
    async fn code_phase(self: &Arc<Self>) -> (Figure, Tally, f64) {
        let o = &self.o;
        let mut all = Tally::default();
        let mut login_errs = Tally::default();
        let mut seconds = 0.0;
        let mut cpu = CpuUse::default();
        let mut login_s = 0.0;
        let t0 = Instant::now();
        while ((all.ok + all.errors) as usize) < o.codes && t0.elapsed().as_secs_f64() < o.max_wall
        {
            let want = o.code_batch.min(o.codes - (all.ok + all.errors) as usize);
            let tl = Instant::now();
            let (codes, errs) = self.logins(want, o.concurrency).await;
            login_s += tl.elapsed().as_secs_f64();
            login_errs.merge(errs);
            if codes.is_empty() {
                break;
            }
            let codes = Arc::new(Mutex::new(codes.into_iter().collect::<VecDeque<_>>()));
            let mark = cpu_mark(o.server_pid);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..o.concurrency {
                let (b, codes) = (self.clone(), codes.clone());
                tasks.push(tokio::spawn(async move {
                    let mut t = Tally::default();
                    loop {
                        let Some(c) = codes.lock().unwrap().pop_front() else { break };
                        let s = Instant::now();
                        match b.exchange(&c).await {
                            Ok(_) => {
                                t.ok += 1;
                                t.lat_ms.push(s.elapsed().as_secs_f64() * 1e3);
                            }
                            Err(e) => t.error(e),
                        }
                    }
                    t
                }));
            }
            for t in tasks {
                if let Ok(t) = t.await {
                    all.merge(t);
                }
            }
            seconds += start.elapsed().as_secs_f64();
            cpu.add(cpu_since(mark, o.server_pid));
        }
        (Figure { tally: all, seconds, cpu }, login_errs, login_s)
    }
}

// ------------------------------------------------------------------------------------ software (#19)

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

enum AssertionKey {
    Ec(aws_lc_rs::signature::EcdsaKeyPair),
    Rsa(aws_lc_rs::signature::RsaKeyPair),
}

/// A software client holding its eHealth certificate's key: signs `private_key_jwt` assertions
/// as a software package does (RFC 7523; header `x5t#S256` of the registered certificate).
struct Software {
    client_id: String,
    alg: &'static str,
    /// base64url of the JOSE header: the same for every assertion.
    header: String,
    key: AssertionKey,
    aud: String,
    rng: aws_lc_rs::rand::SystemRandom,
}

/// The DER of the first PEM block of `pem`.
fn pem_der(pem: &str, what: &str) -> Res<Vec<u8>> {
    let mut inside = false;
    let mut b64 = String::new();
    for l in pem.lines().map(str::trim) {
        if l.starts_with("-----BEGIN") {
            inside = true;
        } else if l.starts_with("-----END") {
            break;
        } else if inside {
            b64.push_str(l);
        }
    }
    STANDARD.decode(b64).map_err(|e| format!("{what}: {e}"))
}

impl Software {
    /// The client `client_id` with the test PKI's certificate `cert` (`<cert>.pem`, `.key`).
    fn load(dir: &std::path::Path, cert: &str, client_id: &str, aud: String) -> Res<Self> {
        use aws_lc_rs::signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let read = |f: String| {
            let p = dir.join(f);
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let cert_der = pem_der(&read(format!("{cert}.pem"))?, cert)?;
        let key_der = pem_der(&read(format!("{cert}.key"))?, cert)?;
        let (alg, key) = match EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key_der)
        {
            Ok(k) => ("ES256", AssertionKey::Ec(k)),
            Err(_) => (
                "RS256",
                AssertionKey::Rsa(
                    RsaKeyPair::from_pkcs8(&key_der).map_err(|e| format!("{cert}.key: {e}"))?,
                ),
            ),
        };
        let header = serde_json::json!({
            "alg": alg, "typ": "JWT", "x5t#S256": crypto::b64url(&crypto::sha256(&cert_der)),
        });
        Ok(Self {
            client_id: client_id.into(),
            alg,
            header: crypto::b64url(header.to_string().as_bytes()),
            key,
            aud,
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }

    /// A fresh assertion: a new `jti` (the broker accepts each once), `exp` in 2 minutes.
    fn assertion(&self) -> Res<String> {
        let now = unix_now();
        let claims = serde_json::json!({
            "iss": self.client_id, "sub": self.client_id, "aud": self.aud,
            "iat": now, "exp": now + 120, "jti": crypto::random_token(16),
        });
        let input = format!("{}.{}", self.header, crypto::b64url(claims.to_string().as_bytes()));
        let sig = match &self.key {
            AssertionKey::Ec(k) => k
                .sign(&self.rng, input.as_bytes())
                .map_err(|_| "ES256 signing failed".to_string())?
                .as_ref()
                .to_vec(),
            AssertionKey::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| "RS256 signing failed".to_string())?;
                sig
            }
        };
        Ok(format!("{input}.{}", crypto::b64url(&sig)))
    }
}

/// Time spent signing assertions in this generator (the client's cost of `private_key_jwt`).
#[derive(Default)]
struct SignClock {
    ns: std::sync::atomic::AtomicU64,
    n: std::sync::atomic::AtomicU64,
}

impl SignClock {
    fn add(&self, d: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.ns.fetch_add(d.as_nanos() as u64, Relaxed);
        self.n.fetch_add(1, Relaxed);
    }

    fn describe(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.n.load(Relaxed);
        let ms = self.ns.load(Relaxed) as f64 / 1e6 / n.max(1) as f64;
        format!("generator signing {ms:.3} ms per assertion (mean over {n}, incl. warm-up)")
    }
}

/// A form POST answered 200 with JSON.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
    form: &[(&str, &str)],
) -> Res<serde_json::Value> {
    let mut rb = http
        .post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(serde_urlencoded::to_string(form).map_err(|e| e.to_string())?);
    if let Some(a) = authorization {
        rb = rb.header(AUTHORIZATION, a);
    }
    let resp = rb.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if status != StatusCode::OK {
        return Err(format!("{url}: HTTP {status} {}", String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}

fn access_token_of(v: &serde_json::Value) -> Res<String> {
    v.get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| "/token: no access_token".to_string())
}

impl Bench {
    fn ehealth_dir(&self) -> Res<&PathBuf> {
        self.o.ehealth_dir.as_ref().ok_or_else(|| {
            "--ehealth-dir (the test eHealth PKI) is required for cc_pkjwt, cc_pkjwt_rsa, cc_mtls \
             and introspect"
                .to_string()
        })
    }

    fn software(&self, cert: &str, client_id: &str) -> Res<Software> {
        Software::load(self.ehealth_dir()?, cert, client_id, format!("{}/token", self.o.url))
    }

    /// `client_credentials` with a freshly signed `private_key_jwt` assertion; the access token.
    async fn cc_pkjwt(&self, sw: &Software, clock: Option<&SignClock>) -> Res<String> {
        let s = Instant::now();
        let assertion = sw.assertion()?;
        if let Some(c) = clock {
            c.add(s.elapsed());
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", sw.client_id.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        access_token_of(
            &post_json(&self.http, &format!("{}/token", self.o.url), None, &form).await?,
        )
    }

    /// One HTTPS client presenting the certificate `cert` (the listener's own certificate is
    /// generated by the broker: not checked, loopback only); connections are kept alive.
    fn mtls_http(&self, cert: &str) -> Res<reqwest::Client> {
        let dir = self.ehealth_dir()?;
        let read = |f: String| {
            let p = dir.join(f);
            std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
        };
        let pem = format!("{}\n{}", read(format!("{cert}.pem"))?, read(format!("{cert}.key"))?);
        reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true)
            .identity(reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?)
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())
    }

    /// The software phases (issue #19): the figure and its line.
    async fn software_phase(self: &Arc<Self>, phase: &str) -> Res<(Figure, String)> {
        let o = &self.o;
        let c = o.concurrency;
        match phase {
            "cc_pkjwt" | "cc_pkjwt_rsa" => {
                let (cert, id) = if phase == "cc_pkjwt" {
                    ("gp-ec", &o.pkjwt_client)
                } else {
                    ("gp-rsa", &o.pkjwt_rsa_client)
                };
                let sw = Arc::new(self.software(cert, id)?);
                let clock = Arc::new(SignClock::default());
                let (bb, sw2, clock2) = (self.clone(), sw.clone(), clock.clone());
                let op: Op = Arc::new(move || {
                    let (b, sw, clock) = (bb.clone(), sw2.clone(), clock2.clone());
                    async move { b.cc_pkjwt(&sw, Some(&*clock)).await.map(|_| true) }.boxed()
                });
                let mut fig = timed(c, o.warmup, o.duration, o.server_pid, op).await;
                let line = fig.line();
                let line = format!(
                    "client_credentials grants, private_key_jwt {} ({cert} certificate, client \
                     {id}, a fresh assertion and jti per request, its signing inside the \
                     latency): {line}; {}; {c} workers; {}",
                    sw.alg,
                    fig.cpu_per_op(),
                    clock.describe()
                );
                Ok((fig, line))
            }
            "cc_mtls" => {
                let url = o.mtls_url.as_ref().ok_or("--mtls-url is required for cc_mtls")?;
                let url = format!("{url}/token");
                let http = self.mtls_http("gp-ec")?;
                let id = o.mtls_client.clone();
                let op: Op = Arc::new(move || {
                    let (http, url, id) = (http.clone(), url.clone(), id.clone());
                    async move {
                        let form =
                            [("grant_type", "client_credentials"), ("client_id", id.as_str())];
                        let v = post_json(&http, &url, None, &form).await?;
                        access_token_of(&v).map(|_| true)
                    }
                    .boxed()
                });
                let mut fig = timed(c, o.warmup, o.duration, o.server_pid, op).await;
                let line = fig.line();
                let line = format!(
                    "client_credentials grants, tls_client_auth over mTLS (gp-ec certificate, \
                     client {}, one TLS client, keep-alive: the handshakes fall in the warm-up; \
                     tokens bound by cnf.x5t#S256): {line}; {}; {c} workers",
                    o.mtls_client,
                    fig.cpu_per_op()
                );
                Ok((fig, line))
            }
            "introspect" => {
                let secret = o
                    .introspect_secret
                    .as_ref()
                    .ok_or("--introspect-secret is required for introspect")?;
                let basic = format!(
                    "Basic {}",
                    STANDARD.encode(format!("{}:{secret}", o.introspect_client))
                );
                // The tokens first (untimed): software tokens of the ES256 private_key_jwt client.
                let sw = Arc::new(self.software("gp-ec", &o.pkjwt_client)?);
                let t = Instant::now();
                let got: Vec<Res<String>> = futures::stream::iter(0..o.introspect_tokens.max(1))
                    .map(|_| {
                        let (b, sw) = (self.clone(), sw.clone());
                        async move { b.cc_pkjwt(&sw, None).await }
                    })
                    .buffer_unordered(c.max(1))
                    .collect()
                    .await;
                let tokens: Vec<String> = got.into_iter().collect::<Res<_>>()?;
                eprintln!(
                    "[load] introspect: {} access tokens in {:.1} s",
                    tokens.len(),
                    t.elapsed().as_secs_f64()
                );
                let n = tokens.len();
                let tokens = Arc::new(tokens);
                let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let url = format!("{}/introspect", o.url);
                let bb = self.clone();
                let op: Op = Arc::new(move || {
                    let (b, tokens, next, url, basic) =
                        (bb.clone(), tokens.clone(), next.clone(), url.clone(), basic.clone());
                    async move {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let token = &tokens[i % tokens.len()];
                        let v =
                            post_json(&b.http, &url, Some(&basic), &[("token", token.as_str())])
                                .await?;
                        if v.get("active") != Some(&serde_json::Value::Bool(true)) {
                            return Err(format!("/introspect: not active: {v}"));
                        }
                        Ok(true)
                    }
                    .boxed()
                });
                let mut fig = timed(c, o.warmup, o.duration, o.server_pid, op).await;
                let line = fig.line();
                let line = format!(
                    "POST /introspect (resource server {}, client_secret_basic, {n} software \
                     tokens in turn, each answered active): {line}; {}; {c} workers",
                    o.introspect_client,
                    fig.cpu_per_op()
                );
                Ok((fig, line))
            }
            other => Err(format!("unknown phase {other}")),
        }
    }
}

// ------------------------------------------------------------------------------------ main

fn main() -> std::process::ExitCode {
    let o = match Opts::parse() {
        Ok(Some(o)) => o,
        Ok(None) => return std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    match rt.block_on(run(o)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(o: Opts) -> Res<()> {
    if let Some(c) = &o.db_comm {
        let _ = DB_COMM.set(c.clone());
    }
    let pool = match &o.accounts {
        Some(p) => Some(AccountPool::load(p, o.fresh_accounts)?),
        None => None,
    };
    let needs_logins = o
        .phases
        .iter()
        .any(|p| ["refresh", "latency", "code", "login", "wrongpw"].contains(&p.as_str()));
    if needs_logins && pool.is_none() {
        return Err(
            "--accounts FILE is required for refresh, latency, code, login and wrongpw".into()
        );
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let basic =
        format!("Basic {}", STANDARD.encode(format!("{}:{}", o.client_id, o.client_secret)));
    let b = Arc::new(Bench { o, http, basic, pool, argon2_bound: Mutex::new(None) });
    let o = &b.o;
    b.get_ok("/.well-known/openid-configuration").await?;
    let c = o.concurrency;
    eprintln!(
        "[load] {} accounts; C={c}, {} s + {} s warmup per phase; phases {}",
        b.pool.as_ref().map_or(0, AccountPool::len),
        o.duration,
        o.warmup,
        o.phases.join(",")
    );
    let mut chains: Vec<Chain> = Vec::new();
    for phase in &o.phases {
        // A shared machine: wait for a quiet moment, and measure again when other processes took
        // CPU inside the window (their share is printed with every figure).
        for attempt in 0..=o.retries {
            settle(o.server_pid, o.quiet_wait).await;
            let (fig, lines) = b.phase(phase, &mut chains).await?;
            let others = fig.cpu.others();
            if others <= DISTURBED || attempt == o.retries {
                for l in lines {
                    println!("{l}");
                }
                if others > DISTURBED {
                    println!(
                        "    DISTURBED: other processes used {others:.2} cores during the window \
                         ({} tries)",
                        attempt + 1
                    );
                }
                break;
            }
            eprintln!(
                "[load] {phase}: other processes used {others:.2} cores in the window: measuring \
                 again"
            );
        }
    }
    Ok(())
}

/// Above this many cores used by other processes, a window counts as disturbed.
const DISTURBED: f64 = 0.25;

/// Waits (at most `max_s`) until other processes use less than [`DISTURBED`] cores.
async fn settle(server_pid: Option<u32>, max_s: f64) {
    let t = Instant::now();
    let mut said = false;
    loop {
        let m = cpu_mark(server_pid);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let others = cpu_since(m, server_pid).others();
        if others < DISTURBED || t.elapsed().as_secs_f64() >= max_s {
            return;
        }
        if !said {
            eprintln!("[load] other processes use {others:.2} cores: waiting for a quiet moment");
            said = true;
        }
    }
}

impl Bench {
    /// One measurement of a phase: its figure (for the CPU check) and the lines to print.
    async fn phase(
        self: &Arc<Self>,
        phase: &str,
        chains: &mut Vec<Chain>,
    ) -> Res<(Figure, Vec<String>)> {
        let o = &self.o;
        let c = o.concurrency;
        let mut out = Vec::new();
        let fig = match phase {
            "refresh" | "latency" => {
                let want = if phase == "refresh" { o.chains } else { o.latency_concurrency };
                if chains.len() < want {
                    let more = self.make_chains(want - chains.len()).await?;
                    chains.extend(more);
                }
                let (conc, n) = if phase == "refresh" {
                    (c, o.chains.min(chains.len()))
                } else {
                    (o.latency_concurrency, chains.len())
                };
                // The chains not used in this phase stay aside, untouched.
                let rest = chains.split_off(n);
                let (mut fig, lost, alive) = self.refresh_phase(std::mem::take(chains), conc).await;
                // Lost chains (an error mid-rotation) are not reused.
                *chains = alive;
                chains.extend(rest);
                let line = fig.line();
                if phase == "refresh" {
                    out.push(format!(
                        "refresh_token grants: {line}; {conc} workers over {n} chains, {lost} chains \
                         lost; target >= 2000/s: {}",
                        verdict(fig.per_s() >= 2000.0 && fig.tally.errors == 0)
                    ));
                } else {
                    let p99 = fig.tally.pct(99.0);
                    out.push(format!(
                        "/token (refresh) latency with {conc} concurrent clients: {line}; {lost} \
                         chains lost; target p99 < 50 ms: {}",
                        verdict(p99 < 50.0 && fig.tally.errors == 0)
                    ));
                }
                fig
            }
            "code" => {
                let (mut fig, login_errs, login_s) = self.code_phase().await;
                let line = fig.line();
                out.push(format!(
                    "authorization_code exchanges (bursts of {} with {c} workers): {line}; codes \
                     from untimed logins in {login_s:.1} s ({} login errors); target >= 1000/s: {}",
                    o.code_batch,
                    login_errs.errors,
                    verdict(fig.per_s() >= 1000.0 && fig.tally.errors == 0)
                ));
                if !login_errs.samples.is_empty() {
                    out.push(format!("    login errors: {:?}", login_errs.samples));
                }
                fig
            }
            "login" => {
                let pool = self.pool.as_ref().ok_or("no accounts")?;
                // Start on a step with every account free (the window then sees at most one
                // step change, and the pool is full again after it).
                if pool.free_now() < pool.len() {
                    let w = until_next_step();
                    eprintln!(
                        "[load] login: waiting {:.1} s for a fresh TOTP step",
                        w.as_secs_f64()
                    );
                    tokio::time::sleep(w).await;
                }
                let before = pool.waits();
                let bb = self.clone();
                let op: Op = Arc::new(move || {
                    let b = bb.clone();
                    async move {
                        let code = b.login().await?;
                        b.exchange(&code).await?;
                        Ok(true)
                    }
                    .boxed()
                });
                let mut fig = timed(c, o.warmup, o.duration, o.server_pid, op).await;
                let after = pool.waits();
                let line = fig.line();
                let bound = *self.argon2_bound.lock().unwrap();
                let share = bound.map_or(String::new(), |b| {
                    format!(
                        "; {:.0}% of the argon2 bound ({b:.0}/s, target >= 70%: {})",
                        100.0 * fig.per_s() / b,
                        verdict(fig.per_s() >= 0.7 * b)
                    )
                });
                out.push(format!(
                    "complete logins (authorize..password..TOTP..token, 7 requests, {c} browsers): \
                     {line}; {} accounts, {} waits for a TOTP step ({:.1} s summed over the \
                     waiting logins); target >= 30/s: {}{share}",
                    pool.len(),
                    after.0 - before.0,
                    (after.1 - before.1).as_secs_f64(),
                    verdict(fig.per_s() >= 30.0 && fig.tally.errors == 0)
                ));
                fig
            }
            "argon2" => {
                // Issue #18: what complete password logins are compared with. Each login checks
                // one password (one argon2id hash at the configured cost, on the broker's pool of
                // one thread per core): the bound is the machine's hashes/s.
                let cost = cozo_broker::keys::cost(&cozo_broker::config::Config::default().login);
                let hashes: u32 = 48;
                let mark = cpu_mark(o.server_pid);
                let t = Instant::now();
                tokio::task::spawn_blocking(move || {
                    for i in 0..hashes {
                        cozo_broker::keys::password::hash(cost, &format!("bench-password-{i}"))?;
                    }
                    Ok::<_, String>(())
                })
                .await
                .map_err(|e| e.to_string())??;
                let seconds = t.elapsed().as_secs_f64();
                let cpu = cpu_since(mark, o.server_pid);
                let ms = 1000.0 * seconds / f64::from(hashes);
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                let bound = cores as f64 * 1000.0 / ms;
                *self.argon2_bound.lock().unwrap() = Some(bound);
                out.push(format!(
                    "argon2id bound: one hash at m={} KiB, t={}, p={} takes {ms:.1} ms of a core \
                     ({hashes} in a row): {:.0}/s per core, {bound:.0}/s on {cores} cores",
                    cost.m_kib,
                    cost.t,
                    cost.p,
                    1000.0 / ms
                ));
                let tally = Tally { ok: u64::from(hashes), ..Tally::default() };
                Figure { tally, seconds, cpu }
            }
            "jwks" | "discovery" => {
                let path =
                    if phase == "jwks" { "/jwks" } else { "/.well-known/openid-configuration" };
                let bb = self.clone();
                let op: Op = Arc::new(move || {
                    let b = bb.clone();
                    async move { b.get_ok(path).await.map(|_| true) }.boxed()
                });
                let mut fig = timed(c, o.warmup, o.duration, o.server_pid, op).await;
                let line = fig.line();
                out.push(format!(
                    "GET {path}: {line}; {c} workers; target >= 20000/s: {}",
                    verdict(fig.per_s() >= 20000.0 && fig.tally.errors == 0)
                ));
                fig
            }
            "wrongpw" => {
                let (mut known, mut unknown, cpu) = self.wrong_password_phase().await?;
                let (k50, u50) = (known.pct(50.0), unknown.pct(50.0));
                let mean = |t: &Tally| t.lat_ms.iter().sum::<f64>() / t.lat_ms.len().max(1) as f64;
                let gap = u50 - k50;
                out.push(format!(
                    "wrong password (POST /login/key, one at a time, {} pairs in alternating \
                     order): known username p50 {k50:.1} ms (mean {:.1}), unknown username p50 \
                     {u50:.1} ms (mean {:.1}); unknown - known {gap:+.1} ms; target: within 10% \
                     of each other: {}; {}",
                    o.wrong_pairs,
                    mean(&known),
                    mean(&unknown),
                    verdict(gap.abs() <= 0.1 * k50.max(u50) && known.errors + unknown.errors == 0),
                    cpu.describe()
                ));
                let seconds = cpu.seconds;
                known.merge(unknown);
                Figure { tally: known, seconds, cpu }
            }
            "cc_pkjwt" | "cc_pkjwt_rsa" | "cc_mtls" | "introspect" => {
                let (fig, line) = self.software_phase(phase).await?;
                out.push(line);
                fig
            }
            other => return Err(format!("unknown phase {other}")),
        };
        if let Some(e) = fig.errors_note() {
            out.push(e);
        }
        Ok((fig, out))
    }
}
