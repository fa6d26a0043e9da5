//! The audit table. Events are written by [`crate::audit::Audit`], the one writer.

use super::{Result, Store};

/// One stored event (the strings are those of [`crate::audit`]'s enums).
#[derive(Debug, Clone, Default, serde::Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub outcome: String,
    pub person_id: Option<String>,
    pub client_id: Option<String>,
    pub method: Option<String>,
    pub acr: Option<String>,
    pub address: Option<String>,
    pub detail: String,
}

const COLS: &str = "id, at, kind, outcome, person_id, client_id, method, acr, address, detail";

impl Store {
    pub async fn insert_audit(&self, e: &AuditRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (id, at, kind, outcome, person_id, client_id, method, acr, address, \
             detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&e.id)
        .bind(e.at)
        .bind(&e.kind)
        .bind(&e.outcome)
        .bind(&e.person_id)
        .bind(&e.client_id)
        .bind(&e.method)
        .bind(&e.acr)
        .bind(&e.address)
        .bind(&e.detail)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    /// Events, newest first; for one person or all, since a time.
    pub async fn audit_events(
        &self,
        person_id: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = match person_id {
            Some(p) => {
                let sql = format!(
                    "SELECT {COLS} FROM audit WHERE person_id = $1 AND at >= $2 \
                     ORDER BY at DESC, id LIMIT $3"
                );
                sqlx::query_as(&sql)
                    .bind(p)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(&mut *self.pool.get().await?)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {COLS} FROM audit WHERE at >= $1 ORDER BY at DESC, id LIMIT $2"
                );
                sqlx::query_as(&sql)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(&mut *self.pool.get().await?)
                    .await?
            }
        };
        Ok(rows)
    }
}
