//! Audit events: who did what, when, with which method and level. Never secrets.

use super::{col, Result, Store};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AuditEvent {
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

/// Sees every audit event a [`Store`] records (the metrics count logins from the audit trail,
/// so that what is counted is what is recorded, whichever module records it).
#[derive(Clone)]
pub struct AuditHook(std::sync::Arc<dyn Fn(&AuditEvent) + Send + Sync>);

impl AuditHook {
    pub fn new(f: impl Fn(&AuditEvent) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }
}

impl std::fmt::Debug for AuditHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditHook")
    }
}

impl Store {
    /// This store, with `hook` called for every audit event it records (clones share it).
    pub fn with_audit_hook(mut self, hook: AuditHook) -> Self {
        self.audit_hook = Some(hook);
        self
    }

    pub async fn insert_audit(&self, e: &AuditEvent) -> Result<()> {
        if let Some(hook) = &self.audit_hook {
            (hook.0)(e);
        }
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events, newest first; for one person or all, since a time.
    pub async fn audit_events(
        &self,
        person_id: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        const COLS: &str =
            "id, at, kind, outcome, person_id, client_id, method, acr, address, detail";
        let rows = match person_id {
            Some(p) => {
                let sql = format!(
                    "SELECT {COLS} FROM audit WHERE person_id = $1 AND at >= $2 \
                     ORDER BY at DESC, id LIMIT $3"
                );
                sqlx::query(&sql).bind(p).bind(since).bind(limit).fetch_all(&self.pool).await?
            }
            None => {
                let sql = format!(
                    "SELECT {COLS} FROM audit WHERE at >= $1 ORDER BY at DESC, id LIMIT $2"
                );
                sqlx::query(&sql).bind(since).bind(limit).fetch_all(&self.pool).await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: col(r, "id")?,
                    at: col(r, "at")?,
                    kind: col(r, "kind")?,
                    outcome: col(r, "outcome")?,
                    person_id: col(r, "person_id")?,
                    client_id: col(r, "client_id")?,
                    method: col(r, "method")?,
                    acr: col(r, "acr")?,
                    address: col(r, "address")?,
                    detail: col(r, "detail")?,
                })
            })
            .collect()
    }
}
