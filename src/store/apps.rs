//! Sessions across apps (SPEC §11): the name people see of an app and where it hears about
//! logouts, the broker session (`sid`) each grant was issued in, the grants a person's apps
//! hold, and the one transaction that ends grants and queues their back-channel logouts.

use super::{col, OutboxMessage, Result, Store};
use sqlx::Connection;

/// What a client adds to its registration for sessions across apps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientApp {
    pub client_id: String,
    /// Shown to people (`client add --name`).
    pub name: Option<String>,
    /// OIDC Back-Channel Logout 1.0 endpoint.
    pub backchannel_logout_uri: Option<String>,
    /// Token requests must carry a DPoP proof (`client add --dpop`).
    pub dpop_required: bool,
}

/// Which grants end.
#[derive(Debug, Clone, Copy)]
pub enum GrantScope<'a> {
    /// Those issued in one broker session (RP-initiated logout, signing out at `/account`).
    Session { sid: &'a str },
    /// Every grant and session of a person; `keep` spares the broker session (its `sid` and
    /// its row's id hash) that made the change.
    Person { person_id: &'a str, keep: Option<(&'a str, &'a str)> },
    /// One app's grants for one person (`/account/apps`).
    App { person_id: &'a str, client_id: &'a str },
}

/// A grant that was just ended, with where its app hears about it.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedGrant {
    pub grant_id: String,
    pub sid: String,
    pub person_id: String,
    pub client_id: String,
    pub backchannel_logout_uri: Option<String>,
}

/// A live grant as the person's apps page shows it.
#[derive(Debug, Clone)]
pub struct AppGrantRow {
    pub grant_id: String,
    pub client_id: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub details: String,
    pub last_token_at: Option<i64>,
}

/// One token issuance (a code exchange or a refresh) of a person's grant.
#[derive(Debug, Clone)]
pub struct IssuanceRow {
    pub client_id: String,
    pub created_at: i64,
}

impl Store {
    pub async fn insert_client_app(&self, a: &ClientApp) -> Result<()> {
        sqlx::query(
            "INSERT INTO client_apps (client_id, name, backchannel_logout_uri, dpop_required) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&a.client_id)
        .bind(&a.name)
        .bind(&a.backchannel_logout_uri)
        .bind(i64::from(a.dpop_required))
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    pub async fn delete_client_app(&self, client_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM client_apps WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }

    /// A client's app settings (all unset when it registered none).
    pub async fn client_app(&self, client_id: &str) -> Result<ClientApp> {
        let row = sqlx::query(
            "SELECT client_id, name, backchannel_logout_uri, dpop_required FROM client_apps \
             WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        match row {
            Some(r) => Ok(ClientApp {
                client_id: col(&r, "client_id")?,
                name: col(&r, "name")?,
                backchannel_logout_uri: col(&r, "backchannel_logout_uri")?,
                dpop_required: col::<i64>(&r, "dpop_required")? != 0,
            }),
            None => Ok(ClientApp { client_id: client_id.to_string(), ..Default::default() }),
        }
    }

    /// Ends the grants of `scope` in one transaction: each live one is revoked (its refresh
    /// and access tokens with it), `logout` gives the message to queue for each grant ended
    /// here whose app registered a back-channel URI (a grant a concurrent call ended is that
    /// call's to announce), and for a person every other broker session is deleted.
    pub async fn end_grants(
        &self,
        scope: GrantScope<'_>,
        now: i64,
        logout: &(dyn Fn(&EndedGrant) -> Option<OutboxMessage> + Sync),
    ) -> Result<Vec<EndedGrant>> {
        const SELECT: &str = "SELECT gs.grant_id, gs.sid, gs.person_id, gs.client_id, \
            ca.backchannel_logout_uri FROM grant_sessions gs JOIN grants g ON g.id = gs.grant_id \
            LEFT JOIN client_apps ca ON ca.client_id = gs.client_id WHERE g.revoked_at IS NULL";
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await?;
        let rows = match scope {
            GrantScope::Session { sid } => {
                sqlx::query(&format!("{SELECT} AND gs.sid = $1"))
                    .bind(sid)
                    .fetch_all(&mut *tx)
                    .await?
            }
            GrantScope::Person { person_id, keep } => {
                sqlx::query(&format!("{SELECT} AND gs.person_id = $1 AND gs.sid <> $2"))
                    .bind(person_id)
                    .bind(keep.map(|k| k.0).unwrap_or(""))
                    .fetch_all(&mut *tx)
                    .await?
            }
            GrantScope::App { person_id, client_id } => {
                sqlx::query(&format!("{SELECT} AND gs.person_id = $1 AND gs.client_id = $2"))
                    .bind(person_id)
                    .bind(client_id)
                    .fetch_all(&mut *tx)
                    .await?
            }
        };
        let mut ended = Vec::new();
        for r in &rows {
            let g = EndedGrant {
                grant_id: col(r, "grant_id")?,
                sid: col(r, "sid")?,
                person_id: col(r, "person_id")?,
                client_id: col(r, "client_id")?,
                backchannel_logout_uri: col(r, "backchannel_logout_uri")?,
            };
            let revoked = sqlx::query(
                "UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(&g.grant_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked == 1 {
                ended.push(g);
            }
        }
        // One logout token per app and broker session, however many grants it held there.
        let mut announced: Vec<(&str, &str)> = Vec::new();
        for g in &ended {
            if announced.contains(&(g.client_id.as_str(), g.sid.as_str())) {
                continue;
            }
            announced.push((g.client_id.as_str(), g.sid.as_str()));
            if let Some(m) = logout(g) {
                enqueue_in(&mut tx, &m).await?;
            }
        }
        // Codes issued in those sessions and not yet exchanged expire: a code redeemed after
        // the logout would start a grant of a session that has ended.
        const CODES: &str = "UPDATE auth_codes SET expires_at = $1 WHERE used_at IS NULL \
            AND expires_at > $1 AND grant_id IN (SELECT grant_id FROM grant_sessions gs WHERE";
        match scope {
            GrantScope::Session { sid } => {
                sqlx::query(&format!("{CODES} gs.sid = $2)"))
                    .bind(now)
                    .bind(sid)
                    .execute(&mut *tx)
                    .await?;
            }
            GrantScope::Person { person_id, keep } => {
                sqlx::query(&format!("{CODES} gs.person_id = $2 AND gs.sid <> $3)"))
                    .bind(now)
                    .bind(person_id)
                    .bind(keep.map(|k| k.0).unwrap_or(""))
                    .execute(&mut *tx)
                    .await?;
            }
            GrantScope::App { person_id, client_id } => {
                sqlx::query(&format!("{CODES} gs.person_id = $2 AND gs.client_id = $3)"))
                    .bind(now)
                    .bind(person_id)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // Grants issued before broker sessions were recorded have no `sid`: revoked all the same.
        const UNRECORDED: &str =
            "AND revoked_at IS NULL AND id NOT IN (SELECT grant_id FROM grant_sessions)";
        match scope {
            GrantScope::Session { .. } => {}
            GrantScope::Person { person_id, keep } => {
                let sql =
                    format!("UPDATE grants SET revoked_at = $1 WHERE person_id = $2 {UNRECORDED}");
                sqlx::query(&sql).bind(now).bind(person_id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM sessions WHERE person_id = $1 AND id_hash <> $2")
                    .bind(person_id)
                    .bind(keep.map(|k| k.1).unwrap_or(""))
                    .execute(&mut *tx)
                    .await?;
            }
            GrantScope::App { person_id, client_id } => {
                let sql = format!(
                    "UPDATE grants SET revoked_at = $1 WHERE person_id = $2 AND client_id = $3 {UNRECORDED}"
                );
                sqlx::query(&sql)
                    .bind(now)
                    .bind(person_id)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// The person's live grants (not revoked, not expired), oldest first, with each app's name
    /// and its grant's newest token.
    pub async fn live_grants_of_person(
        &self,
        person_id: &str,
        now: i64,
    ) -> Result<Vec<AppGrantRow>> {
        let rows = sqlx::query(
            "SELECT g.id, g.client_id, g.created_at, g.details, ca.name, \
             (SELECT MAX(t.created_at) FROM tokens t WHERE t.grant_id = g.id) AS last_token_at \
             FROM grants g LEFT JOIN client_apps ca ON ca.client_id = g.client_id \
             WHERE g.person_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2 \
             ORDER BY g.created_at, g.id",
        )
        .bind(person_id)
        .bind(now)
        .fetch_all(&mut *self.pool.get().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AppGrantRow {
                    grant_id: col(r, "id")?,
                    client_id: col(r, "client_id")?,
                    name: col(r, "name")?,
                    created_at: col(r, "created_at")?,
                    details: col(r, "details")?,
                    last_token_at: col(r, "last_token_at")?,
                })
            })
            .collect()
    }

    /// Every token issued for the person's grants since `since`, newest first (at most 1000).
    pub async fn issuances_of_person(
        &self,
        person_id: &str,
        since: i64,
    ) -> Result<Vec<IssuanceRow>> {
        let rows = sqlx::query(
            "SELECT g.client_id, t.created_at FROM tokens t JOIN grants g ON g.id = t.grant_id \
             WHERE g.person_id = $1 AND t.created_at >= $2 ORDER BY t.created_at DESC, t.id \
             LIMIT 1000",
        )
        .bind(person_id)
        .bind(since)
        .fetch_all(&mut *self.pool.get().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IssuanceRow {
                    client_id: col(r, "client_id")?,
                    created_at: col(r, "created_at")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Unsent messages of one channel whose next attempt is due, oldest first (the
    /// back-channel logouts go out even where mail and SMS wait in the demo mailbox).
    pub async fn due_messages_of(
        &self,
        channel: &str,
        now: i64,
        limit: i64,
    ) -> Result<Vec<super::DueMessage>> {
        Ok(sqlx::query_as(
            "SELECT id, channel, recipient, subject, body, attempts, next_attempt_at FROM outbox \
             WHERE channel = $1 AND sent_at IS NULL AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at, id LIMIT $3",
        )
        .bind(channel)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *self.pool.get().await?)
        .await?)
    }
}

impl Store {
    /// Binds a token (or a grant's refresh tokens) to a DPoP key.
    pub async fn bind_dpop(&self, key: &str, jkt: &str, expires_at: i64) -> Result<()> {
        sqlx::query("INSERT INTO dpop_bindings (key, jkt, expires_at) VALUES ($1, $2, $3)")
            .bind(key)
            .bind(jkt)
            .bind(expires_at)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }

    /// The DPoP key a token or grant is bound to, if any.
    pub async fn dpop_binding(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT jkt FROM dpop_bindings WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?;
        row.map(|r| col(&r, "jkt")).transpose()
    }
}

async fn enqueue_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, m: &OutboxMessage) -> Result<()> {
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}
