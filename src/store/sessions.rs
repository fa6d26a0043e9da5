//! Browser sessions, kept server-side so that every replica sees the same login.

use super::{col, Result, Store};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id_hash: String,
    pub csrf: String,
    pub data: String,
    pub person_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn insert_session(&self, s: &SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, csrf, data, person_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.csrf)
        .bind(&s.data)
        .bind(&s.person_id)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT id_hash, csrf, data, person_id, created_at, expires_at FROM sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                id_hash: col(&r, "id_hash")?,
                csrf: col(&r, "csrf")?,
                data: col(&r, "data")?,
                person_id: col(&r, "person_id")?,
                created_at: col(&r, "created_at")?,
                expires_at: col(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    pub async fn update_session(
        &self,
        id_hash: &str,
        data: &str,
        person_id: Option<&str>,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET data = $1, person_id = $2, expires_at = $3 WHERE id_hash = $4",
        )
        .bind(data)
        .bind(person_id)
        .bind(expires_at)
        .bind(id_hash)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    /// Moves a session to a new id (after login) and saves its data, in one statement.
    pub async fn rename_session(&self, old_hash: &str, renamed: &SessionRow) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE sessions SET id_hash = $1, csrf = $2, data = $3, person_id = $4, \
             expires_at = $5 WHERE id_hash = $6",
        )
        .bind(&renamed.id_hash)
        .bind(&renamed.csrf)
        .bind(&renamed.data)
        .bind(&renamed.person_id)
        .bind(renamed.expires_at)
        .bind(old_hash)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }

    pub async fn count_sessions(&self, now: i64) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE expires_at > $1")
            .bind(now)
            .fetch_one(&mut *self.pool.get().await?)
            .await?;
        col(&row, "n")
    }
}
