//! Shared secrets, pending SAML requests, identity links and Bis requests.

use super::{binds, col, Backend, Result, Store, StoreError};

#[derive(Debug, Clone)]
pub struct SamlRequestRow {
    pub id: String,
    pub relay: String,
    pub session_ref: String,
    pub min_level: crate::assurance::AssuranceLevel,
    pub country: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub answered_at: Option<i64>,
    pub result: Option<String>,
    pub consumed_at: Option<i64>,
}

impl Store {
    /// Stores a secret unless one exists under that name; returns the stored one (so that
    /// replicas starting together agree on a single value).
    pub async fn secret_or_insert(
        &self,
        name: &str,
        value_enc: &[u8],
        now: i64,
    ) -> Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO secrets (name, value_enc, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value_enc)
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await?;
        let row = sqlx::query("SELECT value_enc FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *self.pool.get().await?)
            .await?;
        col(&row, "value_enc")
    }

    pub async fn secret(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value_enc FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?;
        row.map(|r| col(&r, "value_enc")).transpose()
    }

    pub async fn insert_saml_request(&self, r: &SamlRequestRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO saml_requests (id, relay, session_ref, min_level, country, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&r.id)
        .bind(&r.relay)
        .bind(&r.session_ref)
        .bind(r.min_level.short())
        .bind(&r.country)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    pub async fn saml_request_by_relay(&self, relay: &str) -> Result<Option<SamlRequestRow>> {
        let row = sqlx::query(
            "SELECT id, relay, session_ref, min_level, country, created_at, expires_at, answered_at, \
             result, consumed_at FROM saml_requests WHERE relay = $1",
        )
        .bind(relay)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        row.map(|r| {
            Ok(SamlRequestRow {
                id: col(&r, "id")?,
                relay: col(&r, "relay")?,
                session_ref: col(&r, "session_ref")?,
                min_level: {
                    let l: String = col(&r, "min_level")?;
                    crate::assurance::AssuranceLevel::parse(&l)
                        .ok_or_else(|| StoreError::Corrupt(format!("SAML request level {l}")))?
                },
                country: col(&r, "country")?,
                created_at: col(&r, "created_at")?,
                expires_at: col(&r, "expires_at")?,
                answered_at: col(&r, "answered_at")?,
                result: col(&r, "result")?,
                consumed_at: col(&r, "consumed_at")?,
            })
        })
        .transpose()
    }

    /// Records the answer to a request, once, and the answer's assertion as seen (`seen`: the
    /// replay-cache key and its expiry; `None` for an answer without an assertion), in one
    /// write: false if the request was answered before or the assertion was seen before, on
    /// any replica (a replay). The replay-cache row stays even when the request was answered.
    pub async fn answer_saml_request(
        &self,
        id: &str,
        result: &str,
        seen: Option<(&str, i64)>,
        now: i64,
    ) -> Result<bool> {
        const SEEN: &str = "INSERT INTO seen_once (key, expires_at) SELECT $4, $5 \
            WHERE $4 IS NOT NULL ON CONFLICT (key) DO NOTHING";
        const ANSWER: &str = "UPDATE saml_requests SET answered_at = $1, result = $2 \
            WHERE id = $3 AND answered_at IS NULL";
        let sql = if self.backend == Backend::Postgres {
            format!(
                "WITH s AS ({SEEN} RETURNING 1) {ANSWER} \
                 AND (EXISTS (SELECT 1 FROM s) OR $4 IS NULL) RETURNING 1 AS answered"
            )
        } else {
            // `changes()` is the seen-once insert's: 1 if the assertion is new.
            format!(
                "BEGIN IMMEDIATE; {SEEN}; \
                 {ANSWER} AND (changes() = 1 OR $4 IS NULL) RETURNING 1 AS answered; COMMIT"
            )
        };
        let (id, result) = (id.to_string(), result.to_string());
        let (key, expires_at) = match seen {
            Some((k, e)) => (Some(k.to_string()), e),
            None => (None, 0),
        };
        let bind = binds(move |q| q.bind(now).bind(result).bind(id).bind(key).bind(expires_at));
        Ok(!self.write_batch(sql, bind).await?.is_empty())
    }

    /// Takes the answer for the login, once, and only for the browser session that sent the
    /// request (`session_ref`, the hash of its id): one statement, the answer's `result`, or
    /// `None` when there is nothing to take — the caller then reads the request to say why.
    pub async fn consume_saml_answer(
        &self,
        relay: &str,
        session_ref: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "UPDATE saml_requests SET consumed_at = $1 WHERE relay = $2 AND session_ref = $3 \
             AND consumed_at IS NULL AND answered_at IS NOT NULL RETURNING result",
        )
        .bind(now)
        .bind(relay)
        .bind(session_ref)
        .fetch_optional(&mut *self.pool.get().await?)
        .await?;
        row.map(|r| col(&r, "result")).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_bis_request(
        &self,
        id: &str,
        person_identifier: &str,
        family_name: &str,
        given_name: &str,
        birthdate: &str,
        email: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO bis_requests (id, person_identifier, family_name, given_name, birthdate, email, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(person_identifier)
        .bind(family_name)
        .bind(given_name)
        .bind(birthdate)
        .bind(email)
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(|e| StoreError::conflict_or(e, "a Bis request"))?;
        Ok(())
    }

    pub async fn count_bis_requests(&self, person_identifier: &str) -> Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM bis_requests WHERE person_identifier = $1")
                .bind(person_identifier)
                .fetch_one(&mut *self.pool.get().await?)
                .await?;
        col(&row, "n")
    }
}

impl Store {
    pub async fn insert_eid_request(
        &self,
        id: &str,
        session_ref: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query("INSERT INTO eid_requests (id, session_ref, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(session_ref)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }

    /// Records the verified card for a live, unanswered request: false otherwise.
    pub async fn answer_eid_request(
        &self,
        id: &str,
        ticket_hash: &str,
        result: &str,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE eid_requests SET ticket_hash = $1, result = $2 WHERE id = $3 AND ticket_hash IS NULL \
             AND expires_at > $4",
        )
        .bind(ticket_hash)
        .bind(result)
        .bind(id)
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Takes the answer once, for the session that started the request and holds the ticket.
    pub async fn take_eid_answer(
        &self,
        id: &str,
        session_ref: &str,
        ticket_hash: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "UPDATE eid_requests SET used_at = $1 WHERE id = $2 AND session_ref = $3 AND ticket_hash = $4 \
             AND used_at IS NULL AND expires_at > $1 RETURNING result",
        )
        .bind(now)
        .bind(id)
        .bind(session_ref)
        .bind(ticket_hash)
        .fetch_optional(&mut *self.pool.get().await?)
        .await?;
        row.map(|r| col(&r, "result")).transpose().map(Option::flatten)
    }
}
