//! Failure counters and locks (login throttling) and one-time values (replay caches), shared by
//! every replica through the database.

use super::{col, Backend, Result, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures in the current window, after this one.
    pub failures: i64,
    /// Set when this failure locked the key.
    pub locked_until: Option<i64>,
}

impl Store {
    /// When the key is locked, until when.
    pub async fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>> {
        let row =
            sqlx::query("SELECT locked_until FROM throttle WHERE key = $1 AND locked_until > $2")
                .bind(key)
                .bind(now)
                .fetch_optional(&mut *self.pool.get().await?)
                .await?;
        row.map(|r| col(&r, "locked_until")).transpose()
    }

    /// Counts a failure in a sliding-from-first-failure window; the `max`-th failure in a window
    /// locks the key for `lock_s` and starts a new window. One atomic upsert per step.
    pub async fn record_failure(
        &self,
        key: &str,
        now: i64,
        window_s: i64,
        max: i64,
        lock_s: i64,
    ) -> Result<FailureCount> {
        let row = sqlx::query(
            "INSERT INTO throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.failures + 1 END, \
               window_start = CASE WHEN throttle.window_start <= $3 THEN $2 ELSE throttle.window_start END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - window_s)
        .fetch_one(&mut *self.pool.get().await?)
        .await?;
        let failures: i64 = col(&row, "failures")?;
        if failures >= max {
            let until = now + lock_s;
            sqlx::query(
                "UPDATE throttle SET locked_until = $1, failures = 0, window_start = $2 WHERE key = $3",
            )
            .bind(until)
            .bind(now)
            .bind(key)
            .execute(&mut *self.pool.get().await?)
            .await?;
            return Ok(FailureCount { failures, locked_until: Some(until) });
        }
        Ok(FailureCount { failures, locked_until: None })
    }

    /// Failures counted for `key` in the current window (0 if none).
    pub async fn failure_count(&self, key: &str, now: i64, window_s: i64) -> Result<i64> {
        let row = sqlx::query("SELECT failures FROM throttle WHERE key = $1 AND window_start > $2")
            .bind(key)
            .bind(now - window_s)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?;
        Ok(row.map(|r| col(&r, "failures")).transpose()?.unwrap_or(0))
    }

    /// Forgets the failures of a key (after a successful login); a running lock stays.
    pub async fn clear_failures(&self, key: &str) -> Result<()> {
        sqlx::query("UPDATE throttle SET failures = 0 WHERE key = $1")
            .bind(key)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }

    /// Records a one-time value; false if it was seen before (a replay).
    pub async fn see_once(&self, key: &str, expires_at: i64) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO seen_once (key, expires_at) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(expires_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Takes a lock that every replica sharing this database respects, for short start-up work
    /// that must not run twice at once (generating the first signing keys). On PostgreSQL it is
    /// a transaction-level advisory lock: released by [`Exclusive::release`], or by the rollback
    /// when the guard is dropped (an error, a crash), so it can never be left held. SQLite is
    /// the embedded single-process backend (replicas need PostgreSQL): no lock is needed, and
    /// holding its one pooled connection would block the guarded work itself.
    pub async fn exclusive(&self, name: &str) -> Result<Exclusive> {
        if self.backend == Backend::Sqlite {
            return Ok(Exclusive(None));
        }
        let digest = crate::crypto::sha256(format!("cozo-broker:{name}").as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        let mut tx = self.pool.pool().begin().await?;
        sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
            .bind(i64::from_be_bytes(id))
            .execute(&mut *tx)
            .await?;
        Ok(Exclusive(Some(tx)))
    }

    /// Claims periodic job `name` for the period of `period_s` seconds that `now` falls in:
    /// true for exactly one caller across all replicas (an insert into the one-time table), so
    /// a job every replica schedules runs once per period, not once per replica.
    pub async fn claim_period(&self, name: &str, now: i64, period_s: i64) -> Result<bool> {
        let period = now.div_euclid(period_s.max(1));
        let expires_at = (period + 1) * period_s.max(1) + 86400;
        self.see_once(&format!("job:{name}:{period}"), expires_at).await
    }
}

/// A lock from [`Store::exclusive`]; held until released or dropped.
pub struct Exclusive(Option<sqlx::Transaction<'static, sqlx::Any>>);

impl Exclusive {
    pub async fn release(self) -> Result<()> {
        if let Some(tx) = self.0 {
            tx.commit().await?;
        }
        Ok(())
    }
}
