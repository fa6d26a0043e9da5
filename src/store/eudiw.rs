//! OpenID4VP presentation requests of the wallet login (SPEC §12).

use super::{col, Result, Store, StoreError};
use crate::assurance::AssuranceLevel;

#[derive(Debug, Clone)]
pub struct EudiwRequestRow {
    pub id: String,
    pub key_id: String,
    pub state: String,
    pub nonce: String,
    pub session_ref: String,
    pub min_level: AssuranceLevel,
    pub enc_key: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
    pub fetched_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub result: Option<String>,
    pub consumed_at: Option<i64>,
}

const COLUMNS: &str = "id, key_id, state, nonce, session_ref, min_level, enc_key, created_at, \
                       expires_at, fetched_at, answered_at, result, consumed_at";

fn row_of(r: &sqlx::any::AnyRow) -> Result<EudiwRequestRow> {
    let level: String = col(r, "min_level")?;
    Ok(EudiwRequestRow {
        id: col(r, "id")?,
        key_id: col(r, "key_id")?,
        state: col(r, "state")?,
        nonce: col(r, "nonce")?,
        session_ref: col(r, "session_ref")?,
        min_level: AssuranceLevel::parse(&level)
            .ok_or_else(|| StoreError::Corrupt(format!("wallet request level {level}")))?,
        enc_key: col(r, "enc_key")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        fetched_at: col(r, "fetched_at")?,
        answered_at: col(r, "answered_at")?,
        result: col(r, "result")?,
        consumed_at: col(r, "consumed_at")?,
    })
}

impl Store {
    pub async fn insert_eudiw_request(&self, r: &EudiwRequestRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO eudiw_requests (id, key_id, state, nonce, session_ref, min_level, enc_key, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&r.id)
        .bind(&r.key_id)
        .bind(&r.state)
        .bind(&r.nonce)
        .bind(&r.session_ref)
        .bind(r.min_level.short())
        .bind(&r.enc_key)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    pub async fn eudiw_request(&self, id: &str) -> Result<Option<EudiwRequestRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM eudiw_requests WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?;
        row.as_ref().map(row_of).transpose()
    }

    pub async fn eudiw_request_by_key(&self, key_id: &str) -> Result<Option<EudiwRequestRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM eudiw_requests WHERE key_id = $1"))
            .bind(key_id)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?;
        row.as_ref().map(row_of).transpose()
    }

    /// Marks the request object served: true the first time only (it is served once).
    pub async fn fetch_eudiw_request(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE eudiw_requests SET fetched_at = $1 WHERE id = $2 AND fetched_at IS NULL \
             AND expires_at > $1",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the wallet's answer, once: false if it was answered before.
    pub async fn answer_eudiw_request(&self, id: &str, result: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE eudiw_requests SET answered_at = $1, result = $2 WHERE id = $3 \
             AND answered_at IS NULL",
        )
        .bind(now)
        .bind(result)
        .bind(id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Takes the answer for the login, once.
    pub async fn consume_eudiw_request(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE eudiw_requests SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL \
             AND answered_at IS NOT NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
