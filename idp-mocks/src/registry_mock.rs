//! The one implementation of the registry mocks ([`crate::cobrha`], [`crate::bis_register`]):
//! a [`RegistryMock`] holds the records of one [`Registry`] by INSZ, serves its lookup route with
//! the control API that makes it slow or failing and counts its lookups, and runs as a test
//! server, inside the demo or as a stand-alone binary. Each registry says only what differs: its
//! records, its route, and which records it answers.
//!
//! Lookup (`GET {Registry::ROUTE}` with an INSZ): waits the delay, then 503
//! `{"error": "unavailable"}` while failing, 400 `{"error": Registry::INVALID}` when the path is
//! not a valid INSZ (11 digits, right check digits), 200 with the record as JSON when the
//! registry holds one it answers ([`Registry::answers`]), else 404 `{"error": "not_found"}`.
//!
//! Control API (the same on every registry mock):
//!
//! * `POST /control` with JSON `{"delay_ms": N, "fail": bool}` (both optional; a missing field
//!   keeps its value; unknown fields are refused with 422) answers the new state
//!   `{"delay_ms": N, "fail": bool, "lookups": N}`;
//! * `GET /control` answers the same state;
//! * `GET /control/stats` answers `{"lookups": N}`.
//!
//! A lookup is every request to the registry's lookup route, whatever its answer (200, 400, 404
//! or 503). Each lookup first waits the delay, then answers 503 if the registry is failing.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// What one registry mock is: its records, its lookup route and which records it answers.
pub trait Registry: Send + Sync + 'static {
    /// One record, as the registry answers it on the wire.
    type Record: Clone + fmt::Debug + Serialize + Send + Sync + 'static;
    /// For logs and messages, e.g. `mock CoBRHA`.
    const NAME: &'static str;
    /// The `registry` field of log lines, e.g. `cobrha`.
    const LOG_NAME: &'static str;
    /// The lookup route; its one path parameter is the INSZ, e.g. `/professionals/{insz}`.
    const ROUTE: &'static str;
    /// The error code of a malformed INSZ, e.g. `invalid_insz`.
    const INVALID: &'static str;
    /// What the stand-alone binary lists at start, e.g. `test care providers`.
    const TEST_RECORDS: &'static str;

    /// The INSZ a record is kept under.
    fn insz(record: &Self::Record) -> &str;
    /// The records a new mock holds.
    fn test_records() -> Vec<Self::Record>;
    /// Whether a lookup of `insz` answers the record held for it (otherwise 404).
    fn answers(insz: &str, record: &Self::Record) -> bool;
    /// One line about a record, for the stand-alone binary's listing.
    fn summary(record: &Self::Record) -> String;
}

/// A registry mock: a cheap handle (`Clone`) on shared state, so tests keep it to steer the
/// server they started.
pub struct RegistryMock<R: Registry> {
    inner: Arc<Inner<R>>,
}

struct Inner<R: Registry> {
    control: Arc<Control>,
    records: RwLock<HashMap<String, R::Record>>,
}

impl<R: Registry> Clone for RegistryMock<R> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<R: Registry> fmt::Debug for RegistryMock<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryMock")
            .field("registry", &R::NAME)
            .field("control", &self.inner.control)
            .field("records", &self.inner.records)
            .finish()
    }
}

impl<R: Registry> Default for RegistryMock<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Registry> RegistryMock<R> {
    /// A mock holding the registry's [test records](Registry::test_records).
    pub fn new() -> Self {
        let inner = Inner { control: Arc::default(), records: RwLock::default() };
        let mock = RegistryMock { inner: Arc::new(inner) };
        for r in R::test_records() {
            mock.insert(r);
        }
        mock
    }

    /// Adds or replaces a record (keyed by its INSZ).
    pub fn insert(&self, record: R::Record) {
        let insz = R::insz(&record).to_string();
        self.inner.records.write().unwrap_or_else(|e| e.into_inner()).insert(insz, record);
    }

    /// Removes a record; lookups of that INSZ then answer 404.
    pub fn remove(&self, insz: &str) -> Option<R::Record> {
        self.inner.records.write().unwrap_or_else(|e| e.into_inner()).remove(insz)
    }

    /// What the mock holds for `insz` (no lookup counted).
    pub fn get(&self, insz: &str) -> Option<R::Record> {
        self.inner.records.read().unwrap_or_else(|e| e.into_inner()).get(insz).cloned()
    }

    /// Every lookup waits this long before answering (0 = none).
    pub fn set_delay(&self, delay: Duration) {
        self.inner.control.set_delay(delay);
    }

    /// While `true`, every lookup answers 503.
    pub fn set_failing(&self, failing: bool) {
        self.inner.control.set_failing(failing);
    }

    /// How many lookups the mock has received.
    pub fn lookups(&self) -> u64 {
        self.inner.control.lookups()
    }

    /// No delay, not failing, lookup counter back to 0 (the records stay).
    pub fn reset(&self) {
        self.inner.control.reset();
    }

    /// The mock's routes: the lookup route and the control API.
    pub fn router(&self) -> Router {
        Router::new()
            .route(R::ROUTE, get(lookup::<R>))
            .with_state(self.inner.clone())
            .merge(control_router(self.inner.control.clone()))
    }

    /// Serves on `listener` until the task is dropped or the server fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending()).await
    }

    /// Serves on `listener` until `shutdown` completes (then finishes the requests under way).
    pub async fn serve_with_shutdown(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "{} listening", R::NAME);
        }
        axum::serve(listener, self.router()).with_graceful_shutdown(shutdown).await
    }
}

/// For tests: starts a [`RegistryMock`] with the test records on 127.0.0.1 (free port) on a
/// background task; answers its base URL (`http://127.0.0.1:PORT`, no trailing slash) and the
/// handle.
pub async fn start<R: Registry>() -> (String, RegistryMock<R>) {
    let mock = RegistryMock::<R>::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{}: cannot bind 127.0.0.1:0: {e}", R::NAME));
    let addr =
        listener.local_addr().unwrap_or_else(|e| panic!("{}: no local address: {e}", R::NAME));
    let router = mock.router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "{} stopped", R::NAME);
        }
    });
    (format!("http://{addr}"), mock)
}

/// The stand-alone binary (`mock-cobrha`, `mock-bis-register`): logs filtered by `RUST_LOG`
/// (default `info`), listens on `MOCK_LISTEN` (default `default_listen`), lists its test records
/// and serves until Ctrl-C.
pub async fn run_standalone<R: Registry>(default_listen: &str) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let listen = std::env::var("MOCK_LISTEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default_listen.to_string());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (MOCK_LISTEN)"))?;
    let addr = listener.local_addr().context("no local address")?;
    eprintln!("{} on http://{addr} (GET {}); {}:", R::NAME, R::ROUTE, R::TEST_RECORDS);
    for r in R::test_records() {
        eprintln!("  {}", R::summary(&r));
    }
    RegistryMock::<R>::new()
        .serve_with_shutdown(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .with_context(|| format!("{} failed", R::NAME))
}

async fn lookup<R: Registry>(
    State(inner): State<Arc<Inner<R>>>,
    Path(insz): Path<String>,
) -> Response {
    if let Err(refused) = inner.control.gate(R::LOG_NAME).await {
        return refused;
    }
    if !insz_is_valid(&insz) {
        return error(StatusCode::BAD_REQUEST, R::INVALID);
    }
    let held = inner.records.read().unwrap_or_else(|e| e.into_inner()).get(&insz).cloned();
    match held.filter(|r| R::answers(&insz, r)) {
        Some(record) => {
            tracing::debug!(registry = R::LOG_NAME, "lookup: found");
            Json(record).into_response()
        }
        None => {
            tracing::debug!(registry = R::LOG_NAME, "lookup: not found");
            error(StatusCode::NOT_FOUND, "not_found")
        }
    }
}

/// Delay, failure switch and lookup counter of one registry mock.
#[derive(Debug, Default)]
struct Control {
    delay_ms: AtomicU64,
    failing: AtomicBool,
    lookups: AtomicU64,
}

impl Control {
    fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))
    }

    fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }

    /// No delay, not failing, lookup counter back to 0.
    fn reset(&self) {
        self.delay_ms.store(0, Ordering::SeqCst);
        self.failing.store(false, Ordering::SeqCst);
        self.lookups.store(0, Ordering::SeqCst);
    }

    /// Counts a lookup, waits the delay, and answers `Err(503)` if the registry is failing.
    async fn gate(&self, registry: &str) -> Result<(), Response> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.is_failing() {
            tracing::info!(registry, "lookup refused: the mock is set to fail");
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        }
        Ok(())
    }

    fn state(&self) -> ControlState {
        ControlState {
            delay_ms: self.delay_ms.load(Ordering::SeqCst),
            fail: self.is_failing(),
            lookups: self.lookups(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlRequest {
    #[serde(default)]
    delay_ms: Option<u64>,
    #[serde(default)]
    fail: Option<bool>,
}

#[derive(Debug, Serialize)]
struct ControlState {
    delay_ms: u64,
    fail: bool,
    lookups: u64,
}

#[derive(Debug, Serialize)]
struct Stats {
    lookups: u64,
}

/// The `/control` routes over `control`.
fn control_router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/control", get(get_control).post(post_control))
        .route("/control/stats", get(get_stats))
        .with_state(control)
}

async fn get_control(State(control): State<Arc<Control>>) -> Json<ControlState> {
    Json(control.state())
}

async fn post_control(
    State(control): State<Arc<Control>>,
    Json(req): Json<ControlRequest>,
) -> Json<ControlState> {
    if let Some(ms) = req.delay_ms {
        control.delay_ms.store(ms, Ordering::SeqCst);
    }
    if let Some(fail) = req.fail {
        control.set_failing(fail);
    }
    let state = control.state();
    tracing::info!(delay_ms = state.delay_ms, fail = state.fail, "control changed");
    Json(state)
}

async fn get_stats(State(control): State<Arc<Control>>) -> Json<Stats> {
    Json(Stats { lookups: control.lookups() })
}

/// A JSON error answer `{"error": code}`.
fn error(status: StatusCode, code: &'static str) -> Response {
    (status, Json(serde_json::json!({ "error": code }))).into_response()
}

/// Whether `s` is a valid INSZ (national register or Bis number): 11 digits `YYMMDDSSSCC`, a month
/// of 00–12 (+20 or +40 for Bis numbers), a day of 00–31, a serial of 001–998, and
/// `CC = 97 - (YYMMDDSSS mod 97)` (born before 2000) or `97 - ((2000000000 + YYMMDDSSS) mod 97)`
/// (born from 2000 on).
pub(crate) fn insz_is_valid(s: &str) -> bool {
    if s.len() != 11 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> u64 { s[r].parse().unwrap_or(u64::MAX) };
    let month = num(2..4);
    let month_ok = matches!(month, 0..=12 | 20..=32 | 40..=52);
    let serial = num(6..9);
    let first9 = num(0..9);
    let check = num(9..11);
    month_ok
        && num(4..6) <= 31
        && serial != 0
        && serial != 999
        && (check == 97 - first9 % 97 || check == 97 - (2_000_000_000 + first9) % 97)
}

/// Whether `s` is an INSZ that is a Bis number (month + 20 or month + 40).
pub(crate) fn insz_is_bis(s: &str) -> bool {
    insz_is_valid(s) && matches!(&s[2..3], "2" | "3" | "4" | "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insz_rules() {
        assert!(insz_is_valid("85073003328"));
        assert!(!insz_is_valid("85073003327"), "wrong check digits");
        assert!(!insz_is_valid("8507300332"), "too short");
        assert!(!insz_is_valid("85.07.30-033.28"), "separators are not part of the wire format");
        assert!(!insz_is_valid("85133003300"), "month 13");
        // Born from 2000 on: the check digits are over 2 followed by the nine digits.
        assert!(insz_is_valid("01041821502"));
        assert!(!insz_is_bis("85073003328"));
        assert!(insz_is_bis("80451402397"));
        assert!(insz_is_bis("01291708744"));
    }
}
