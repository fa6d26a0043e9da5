//! What the registry mocks ([`crate::cobrha`], [`crate::bis_register`]) share: the control API
//! that makes a registry slow or failing and counts its lookups, the INSZ check, and serving.
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

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// Delay, failure switch and lookup counter of one registry mock.
#[derive(Debug, Default)]
pub(crate) struct Control {
    delay_ms: AtomicU64,
    failing: AtomicBool,
    lookups: AtomicU64,
}

impl Control {
    pub(crate) fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    pub(crate) fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))
    }

    pub(crate) fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    pub(crate) fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }

    /// No delay, not failing, lookup counter back to 0.
    pub(crate) fn reset(&self) {
        self.delay_ms.store(0, Ordering::SeqCst);
        self.failing.store(false, Ordering::SeqCst);
        self.lookups.store(0, Ordering::SeqCst);
    }

    /// Counts a lookup, waits the delay, and answers `Err(503)` if the registry is failing.
    pub(crate) async fn gate(&self, registry: &str) -> Result<(), Response> {
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
pub(crate) fn control_router(control: Arc<Control>) -> Router {
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
pub(crate) fn error(status: StatusCode, code: &'static str) -> Response {
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

/// Binds 127.0.0.1 on a free port, serves `router` on a background task and answers the base URL
/// (`http://127.0.0.1:PORT`, no trailing slash).
pub(crate) async fn spawn_on_free_port(router: Router, name: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot bind 127.0.0.1:0: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{name}: no local address: {e}"));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "{name} stopped");
        }
    });
    format!("http://{addr}")
}

/// Serves `router` on `listener` until `shutdown` completes.
pub(crate) async fn serve_until(
    router: Router,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    name: &'static str,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "{name} listening");
    }
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
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
