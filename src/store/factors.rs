//! Token-card codes, one-time challenges and the message outbox.

use super::{col, Result, Store};
use sqlx::Connection;

/// A one-time code sent by SMS or a card position asked, open until used or expired.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Challenge {
    pub id: String,
    pub key_id: String,
    pub kind: String,
    pub position: Option<i64>,
    pub code_hash: Option<String>,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueMessage {
    pub id: String,
    pub channel: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: String,
    pub channel: String,
    pub recipient: String,
    pub subject: Option<String>,
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
    pub sent_at: Option<i64>,
}

impl Store {
    pub async fn insert_token_codes(&self, key_id: &str, codes: &[(i64, String)]) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await?;
        for (pos, hash) in codes {
            sqlx::query(
                "INSERT INTO token_codes (key_id, position, code_hash) VALUES ($1, $2, $3)",
            )
            .bind(key_id)
            .bind(*pos)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Activates a pending token card and stores its codes, in one transaction: false (nothing
    /// stored) when the card is not pending, so two requests cannot both issue codes for it.
    pub async fn issue_token_card(
        &self,
        key_id: &str,
        account_id: &str,
        codes: &[(i64, String)],
    ) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await?;
        let r = sqlx::query(
            "UPDATE keys SET status = 'active' \
             WHERE id = $1 AND account_id = $2 AND kind = 'token' AND status = 'pending'",
        )
        .bind(key_id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for (pos, hash) in codes {
            sqlx::query(
                "INSERT INTO token_codes (key_id, position, code_hash) VALUES ($1, $2, $3)",
            )
            .bind(key_id)
            .bind(*pos)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Positions of a card not used yet.
    pub async fn unused_positions(&self, key_id: &str) -> Result<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT position FROM token_codes WHERE key_id = $1 AND used_at IS NULL ORDER BY position",
        )
        .bind(key_id)
        .fetch_all(&mut *self.pool.get().await?)
        .await?;
        rows.iter().map(|r| col(r, "position")).collect()
    }

    pub async fn token_code_hash(
        &self,
        key_id: &str,
        position: i64,
    ) -> Result<Option<(String, Option<i64>)>> {
        let row = sqlx::query(
            "SELECT code_hash, used_at FROM token_codes WHERE key_id = $1 AND position = $2",
        )
        .bind(key_id)
        .bind(position)
        .fetch_optional(&mut *self.pool.get().await?)
        .await?;
        row.map(|r| Ok((col(&r, "code_hash")?, col(&r, "used_at")?))).transpose()
    }

    /// Uses a card position once: false if it was used before (atomic).
    pub async fn use_token_position(&self, key_id: &str, position: i64, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE token_codes SET used_at = $1 WHERE key_id = $2 AND position = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(key_id)
        .bind(position)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn insert_challenge(&self, c: &Challenge, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO challenges (id, key_id, kind, position, code_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.key_id)
        .bind(&c.kind)
        .bind(c.position)
        .bind(&c.code_hash)
        .bind(now)
        .bind(c.expires_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    pub async fn challenge(&self, id: &str) -> Result<Option<Challenge>> {
        Ok(sqlx::query_as(
            "SELECT id, key_id, kind, position, code_hash, expires_at, used_at FROM challenges \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self.pool.get().await?)
        .await?)
    }

    /// Uses a challenge once: false if it was used before (atomic).
    pub async fn use_challenge(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE challenges SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn enqueue(&self, m: &OutboxMessage) -> Result<()> {
        sqlx::query(
            "INSERT INTO outbox (id, channel, recipient, subject, body, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&m.id)
        .bind(&m.channel)
        .bind(&m.recipient)
        .bind(&m.subject)
        .bind(&m.body)
        .bind(m.created_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    /// How many messages wait for delivery (all replicas: the metrics' outbox backlog).
    pub async fn outbox_backlog(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&mut *self.pool.get().await?)
            .await?;
        col(&row, "n")
    }

    /// Unsent messages whose next attempt is due, oldest first.
    pub async fn due_messages(&self, now: i64, limit: i64) -> Result<Vec<DueMessage>> {
        Ok(sqlx::query_as(
            "SELECT id, channel, recipient, subject, body, attempts, next_attempt_at FROM outbox \
             WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.pool.get().await?)
        .await?)
    }

    /// Claims a message for one sender (compare-and-set on its next attempt time).
    pub async fn claim_message(&self, id: &str, seen_next: i64, lease_until: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 AND sent_at IS NULL",
        )
        .bind(lease_until)
        .bind(id)
        .bind(seen_next)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks a message delivered and forgets its text (it may hold a one-time code).
    pub async fn message_sent(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE outbox SET sent_at = $1, body = '' WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }

    pub async fn message_failed(&self, id: &str, next_attempt_at: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    /// The newest messages (the demo mailbox page, tests).
    pub async fn outbox(&self, limit: i64) -> Result<Vec<OutboxMessage>> {
        Ok(sqlx::query_as(
            "SELECT id, channel, recipient, subject, body, created_at, attempts, sent_at FROM outbox \
             ORDER BY created_at DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self.pool.get().await?)
        .await?)
    }
}
