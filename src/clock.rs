//! The one place that reads the wall clock. Everything else takes `now` as a parameter, so tests
//! can move time (code expiry, TOTP windows, lockouts) without sleeping.

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

    /// Moves this clock (and every component sharing it) forward; for tests.
    pub fn advance(&self, seconds: i64) {
        self.offset_s.fetch_add(seconds, Ordering::Relaxed);
    }
}
