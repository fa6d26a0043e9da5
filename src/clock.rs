//! The one place that reads the wall clock. Everything else takes `now` as a parameter (read
//! once per request by the web layer), so tests can move time (code expiry, TOTP windows,
//! lockouts) without sleeping. `clippy.toml` forbids clock reads anywhere else.

#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_s: Arc<AtomicI64>,
}

impl Clock {
    /// Unix seconds.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset_s.load(Ordering::Relaxed)
    }

    /// The same instant as a date-time (SAML, X.509 and JWT libraries want one).
    pub fn now_utc(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.offset_s.load(Ordering::Relaxed))
    }

    /// Moves this clock (and every component sharing it) forward; for tests.
    pub fn advance(&self, seconds: i64) {
        self.offset_s.fetch_add(seconds, Ordering::Relaxed);
    }
}

/// Unix seconds as a date-time (an out-of-range value becomes the epoch).
pub fn to_utc(unix: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default()
}

/// Measures how long something took (latency metrics, benchmarks); not a time of day, so it is
/// not moved by [`Clock::advance`].
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }
}

/// The wall clock for command-line tools and start-up, which have no request.
pub fn system_now() -> i64 {
    chrono::Utc::now().timestamp()
}
