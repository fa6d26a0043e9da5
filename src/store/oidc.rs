//! Pending authorization requests, authorization codes, grants (token families) and tokens.

use super::{binds, col, Backend, Result, Store};

#[derive(Debug, Clone)]
pub struct PendingRow {
    pub id: String,
    pub client_id: String,
    pub params: String,
    pub pushed: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub person_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub details: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The login's method and level (`amr` value, level URI), for the exchange's audit row.
    pub method: Option<String>,
    pub acr: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub person_id: String,
    pub details: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// The tokens a grant step issues (their grant is the code's or the refresh token's).
#[derive(Debug, Clone)]
pub struct NewTokens {
    pub id: String,
    pub access_hash: String,
    pub refresh_hash: Option<String>,
    pub access_expires_at: i64,
    pub created_at: i64,
}

/// A refresh token with its grant, as read before rotation.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub token_id: String,
    pub rotated_at: Option<i64>,
    pub token_revoked_at: Option<i64>,
    pub grant: GrantRow,
}

/// What a code or refresh token that was just redeemed belongs to.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub grant_id: String,
    pub person_id: String,
    pub details: String,
}

/// What a code must match to be redeemed: everything the exchange checks. The challenge is
/// compared in SQL: it is public (it travelled through the browser), and the verifier that
/// hashes to it is the secret.
#[derive(Debug, Clone, Copy)]
pub struct CodeRedemption<'a> {
    pub code_hash: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    /// `BASE64URL(SHA-256(code_verifier))`.
    pub code_challenge: &'a str,
    pub grant_expires_at: i64,
    /// The audit row of the exchange, written by the redemption itself: its id, kind, outcome
    /// and detail; person, client, method and level come from the code.
    pub audit: &'a super::AuditRow,
}

/// What an access token opens (for userinfo).
#[derive(Debug, Clone)]
pub struct AccessRow {
    pub grant: GrantRow,
    pub access_expires_at: i64,
}

const GRANT_COLS: &str =
    "g.id, g.client_id, g.person_id, g.details, g.created_at, g.expires_at, g.revoked_at";

fn grant_from_row(r: &sqlx::any::AnyRow) -> Result<GrantRow> {
    Ok(GrantRow {
        id: col(r, "id")?,
        client_id: col(r, "client_id")?,
        person_id: col(r, "person_id")?,
        details: col(r, "details")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        revoked_at: col(r, "revoked_at")?,
    })
}

impl Store {
    pub async fn insert_pending(&self, p: &PendingRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO pending_auth (id, client_id, params, pushed, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.id)
        .bind(&p.client_id)
        .bind(&p.params)
        .bind(i64::from(p.pushed))
        .bind(p.created_at)
        .bind(p.expires_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    pub async fn pending(&self, id: &str, now: i64) -> Result<Option<PendingRow>> {
        let row = sqlx::query(
            "SELECT id, client_id, params, pushed, created_at, expires_at FROM pending_auth \
             WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        row.map(|r| {
            Ok(PendingRow {
                id: col(&r, "id")?,
                client_id: col(&r, "client_id")?,
                params: col(&r, "params")?,
                pushed: col::<i64>(&r, "pushed")? != 0,
                created_at: col(&r, "created_at")?,
                expires_at: col(&r, "expires_at")?,
            })
        })
        .transpose()
    }

    /// Deletes a pending request; true if this call removed it (one-time use of PAR URIs).
    pub async fn take_pending(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM pending_auth WHERE id = $1")
            .bind(id)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// What answering an authorization request writes, in one transaction and one round trip:
    /// its pending row is deleted (`pending_id`), the broker session `sid` its grant belongs to
    /// is remembered, the audit row of the login it answers (`audit`) is stored, and so is the
    /// code. On their own these statements were a commit each on SQLite's writer per login
    /// (BENCHMARKS.md, #17).
    pub async fn issue_code(
        &self,
        pending_id: Option<&str>,
        sid: Option<&str>,
        c: &CodeRow,
        audit: Option<&super::AuditRow>,
    ) -> Result<()> {
        const CODE: &str = "INSERT INTO auth_codes (code_hash, grant_id, client_id, person_id, \
            redirect_uri, code_challenge, details, created_at, expires_at, method, acr) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $12, $13)";
        const GRANT_SESSION: &str = "INSERT INTO grant_sessions (grant_id, sid, person_id, \
            client_id, created_at) SELECT $2, $11, $4, $3, $8 WHERE $11 IS NOT NULL";
        const PENDING: &str = "DELETE FROM pending_auth WHERE id = $10";
        // The login's audit row, when the code answers a login just made.
        const AUDIT: &str = "INSERT INTO audit (id, at, kind, outcome, person_id, client_id, \
            method, acr, address, detail) \
            SELECT $14, $15, $16, $17, $18, $19, $20, $21, $22, $23 WHERE $14 IS NOT NULL";
        let sql = if self.backend == Backend::Postgres {
            format!("WITH d AS ({PENDING}), s AS ({GRANT_SESSION}), a AS ({AUDIT}) {CODE}")
        } else {
            format!("BEGIN IMMEDIATE; {PENDING}; {GRANT_SESSION}; {AUDIT}; {CODE}; COMMIT")
        };
        let a = audit.cloned().unwrap_or_default();
        let audit_id = audit.map(|a| a.id.clone());
        let c = c.clone();
        let (pending_id, sid) = (pending_id.map(str::to_string), sid.map(str::to_string));
        let bind = binds(move |q| {
            q.bind(c.code_hash)
                .bind(c.grant_id)
                .bind(c.client_id)
                .bind(c.person_id)
                .bind(c.redirect_uri)
                .bind(c.code_challenge)
                .bind(c.details)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(pending_id)
                .bind(sid)
                .bind(c.method)
                .bind(c.acr)
                .bind(audit_id)
                .bind(a.at)
                .bind(a.kind)
                .bind(a.outcome)
                .bind(a.person_id)
                .bind(a.client_id)
                .bind(a.method)
                .bind(a.acr)
                .bind(a.address)
                .bind(a.detail)
        });
        self.write_batch(sql, bind).await?;
        Ok(())
    }

    pub async fn code(&self, code_hash: &str) -> Result<Option<CodeRow>> {
        let row = sqlx::query(
            "SELECT code_hash, grant_id, client_id, person_id, redirect_uri, code_challenge, details, \
             created_at, expires_at, used_at, method, acr FROM auth_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&mut *self.read.get().await?)
        .await?;
        row.map(|r| {
            Ok(CodeRow {
                code_hash: col(&r, "code_hash")?,
                grant_id: col(&r, "grant_id")?,
                client_id: col(&r, "client_id")?,
                person_id: col(&r, "person_id")?,
                redirect_uri: col(&r, "redirect_uri")?,
                code_challenge: col(&r, "code_challenge")?,
                details: col(&r, "details")?,
                created_at: col(&r, "created_at")?,
                expires_at: col(&r, "expires_at")?,
                used_at: col(&r, "used_at")?,
                method: col(&r, "method")?,
                acr: col(&r, "acr")?,
            })
        })
        .transpose()
    }

    /// Redeems a code that matches `r` in every respect (client, redirect URI, PKCE challenge,
    /// not used, not expired), starts its grant and stores `tokens`, atomically. `None` (and
    /// nothing written) when the code does not match or was redeemed before: the single-use
    /// guarantee is the conditional update, so two concurrent exchanges cannot both succeed. The
    /// caller then reads the code to say why.
    ///
    /// One statement on PostgreSQL (a data-modifying `WITH`); on SQLite (its single writer
    /// connection; no `UPDATE` inside `WITH`) one transaction of three statements, sent as one
    /// command.
    pub async fn redeem_code(
        &self,
        r: &CodeRedemption<'_>,
        now: i64,
        tokens: &NewTokens,
    ) -> Result<Option<Redeemed>> {
        const MATCHES: &str = "WHERE code_hash = $2 AND used_at IS NULL AND client_id = $3 \
            AND expires_at > $1 AND redirect_uri = $4 AND code_challenge = $5";
        // The exchange's audit row, from the redeemed code (one write less per exchange).
        const AUDIT: &str = "INSERT INTO audit (id, at, kind, outcome, person_id, client_id, \
            method, acr, address, detail) \
            SELECT $12, $1, $13, $14, person_id, client_id, method, acr, NULL, $15";
        // PostgreSQL: data-modifying `WITH`s. SQLite: the three statements and their BEGIN and
        // COMMIT as one command to the writer ([`Store::write_batch`]); each insert takes its
        // row from the code only if the statement before it changed one (`changes()`), so an
        // unmatched code writes nothing and returns no row.
        let sql = if self.backend == Backend::Postgres {
            format!(
                "WITH used AS (UPDATE auth_codes SET used_at = $1 {MATCHES} \
                   RETURNING grant_id, client_id, person_id, details, method, acr), \
                 g AS (INSERT INTO grants (id, client_id, person_id, details, created_at, expires_at) \
                   SELECT grant_id, client_id, person_id, details, $1, $6 FROM used RETURNING id), \
                 a AS ({AUDIT} FROM used), \
                 t AS (INSERT INTO tokens (id, grant_id, access_hash, refresh_hash, \
                   access_expires_at, created_at) SELECT $7, id, $8, $9, $10, $11 FROM g) \
                 SELECT grant_id, person_id, details FROM used"
            )
        } else {
            format!(
                "BEGIN IMMEDIATE; \
                 UPDATE auth_codes SET used_at = $1 {MATCHES}; \
                 INSERT INTO grants (id, client_id, person_id, details, created_at, expires_at) \
                   SELECT grant_id, client_id, person_id, details, $1, $6 FROM auth_codes \
                   WHERE code_hash = $2 AND changes() = 1; \
                 {AUDIT} FROM auth_codes WHERE code_hash = $2 AND changes() = 1; \
                 INSERT INTO tokens (id, grant_id, access_hash, refresh_hash, access_expires_at, \
                   created_at) \
                   SELECT $7, grant_id, $8, $9, $10, $11 FROM auth_codes \
                   WHERE code_hash = $2 AND changes() = 1 \
                   RETURNING grant_id, \
                     (SELECT person_id FROM grants g WHERE g.id = tokens.grant_id) AS person_id, \
                     (SELECT details FROM grants g WHERE g.id = tokens.grant_id) AS details; \
                 COMMIT"
            )
        };
        let (code_hash, client_id, redirect_uri, code_challenge, grant_expires_at) = (
            r.code_hash.to_string(),
            r.client_id.to_string(),
            r.redirect_uri.to_string(),
            r.code_challenge.to_string(),
            r.grant_expires_at,
        );
        let tokens = tokens.clone();
        let audit = r.audit.clone();
        let bind = binds(move |q| {
            q.bind(now)
                .bind(code_hash)
                .bind(client_id)
                .bind(redirect_uri)
                .bind(code_challenge)
                .bind(grant_expires_at)
                .bind(tokens.id)
                .bind(tokens.access_hash)
                .bind(tokens.refresh_hash)
                .bind(tokens.access_expires_at)
                .bind(tokens.created_at)
                .bind(audit.id)
                .bind(audit.kind)
                .bind(audit.outcome)
                .bind(audit.detail)
        });
        let rows = self.write_batch(sql, bind).await?;
        rows.first().map(redeemed_from_row).transpose()
    }

    pub async fn refresh_token(&self, refresh_hash: &str) -> Result<Option<RefreshRow>> {
        let sql = format!(
            "SELECT t.id AS token_id, t.rotated_at, t.revoked_at AS token_revoked_at, {GRANT_COLS} \
             FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.refresh_hash = $1"
        );
        let row = sqlx::query(&sql)
            .bind(refresh_hash)
            .fetch_optional(&mut *self.read.get().await?)
            .await?;
        row.map(|r| {
            Ok(RefreshRow {
                token_id: col(&r, "token_id")?,
                rotated_at: col(&r, "rotated_at")?,
                token_revoked_at: col(&r, "token_revoked_at")?,
                grant: grant_from_row(&r)?,
            })
        })
        .transpose()
    }

    /// Rotates a live refresh token of `client_id` (not rotated, not revoked, its grant neither
    /// revoked nor expired): marks it used and stores its successor `next`, atomically. `None`
    /// (and nothing written) otherwise — rotated or revoked meanwhile included; the caller then
    /// reads the token to say why.
    ///
    /// One statement on both backends, so one round trip: on PostgreSQL a data-modifying
    /// `WITH`; on SQLite an `INSERT … SELECT` of the successor from the live predecessor, whose
    /// trigger (migration 0009) marks the predecessor rotated within the same statement.
    pub async fn rotate_refresh(
        &self,
        refresh_hash: &str,
        client_id: &str,
        now: i64,
        next: &NewTokens,
    ) -> Result<Option<Redeemed>> {
        // The grant is checked by a correlated EXISTS on its key, not `grant_id IN (SELECT id
        // FROM grants WHERE client_id = …)`: SQLite evaluates such an IN list by scanning every
        // grant (no index on client_id), so each refresh cost grew with the number of grants
        // (BENCHMARKS.md, #18). Both planners now find the token by its unique hash and the
        // grant by its primary key.
        const LIVE: &str = "WHERE refresh_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL \
            AND EXISTS (SELECT 1 FROM grants g WHERE g.id = tokens.grant_id AND g.client_id = $3 \
            AND g.revoked_at IS NULL AND g.expires_at > $1)";
        let sql = if self.backend == Backend::Postgres {
            format!(
                "WITH used AS (UPDATE tokens SET rotated_at = $1 {LIVE} RETURNING id, grant_id), \
                 t AS (INSERT INTO tokens (id, grant_id, access_hash, refresh_hash, \
                   access_expires_at, created_at, rotated_from) \
                   SELECT $4, grant_id, $5, $6, $7, $8, id FROM used) \
                 SELECT g.id AS grant_id, g.person_id, g.details FROM grants g \
                   JOIN used ON g.id = used.grant_id"
            )
        } else {
            // The trigger sets the predecessor's rotated_at to the successor's created_at.
            format!(
                "INSERT INTO tokens (id, grant_id, access_hash, refresh_hash, access_expires_at, \
                   created_at, rotated_from) \
                 SELECT $4, grant_id, $5, $6, $7, $8, id FROM tokens {LIVE} \
                 RETURNING grant_id, \
                   (SELECT person_id FROM grants g WHERE g.id = tokens.grant_id) AS person_id, \
                   (SELECT details FROM grants g WHERE g.id = tokens.grant_id) AS details"
            )
        };
        let row = sqlx::query(&sql)
            .bind(now)
            .bind(refresh_hash)
            .bind(client_id)
            .bind(&next.id)
            .bind(&next.access_hash)
            .bind(&next.refresh_hash)
            .bind(next.access_expires_at)
            .bind(next.created_at)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?;
        row.as_ref().map(redeemed_from_row).transpose()
    }

    /// Revokes a whole token family.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool> {
        let r =
            sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(grant_id)
                .execute(&mut *self.pool.get().await?)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes one access token (RFC 7009 for an access token).
    pub async fn revoke_access_token(
        &self,
        access_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE access_hash = $2 AND revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM grants g WHERE g.id = tokens.grant_id AND g.client_id = $3)",
        )
        .bind(now)
        .bind(access_hash)
        .bind(client_id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    /// The grant an access token belongs to, if the token is live.
    pub async fn access_token(&self, access_hash: &str, now: i64) -> Result<Option<AccessRow>> {
        let sql = format!(
            "SELECT t.access_expires_at, {GRANT_COLS} FROM tokens t JOIN grants g ON g.id = t.grant_id \
             WHERE t.access_hash = $1 AND t.access_expires_at > $2 AND t.revoked_at IS NULL \
             AND g.revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(access_hash)
            .bind(now)
            .fetch_optional(&mut *self.read.get().await?)
            .await?;
        row.map(|r| {
            Ok(AccessRow {
                access_expires_at: col(&r, "access_expires_at")?,
                grant: grant_from_row(&r)?,
            })
        })
        .transpose()
    }

    pub async fn grant(&self, id: &str) -> Result<Option<GrantRow>> {
        let sql = format!("SELECT {GRANT_COLS} FROM grants g WHERE g.id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *self.read.get().await?).await?;
        row.as_ref().map(grant_from_row).transpose()
    }
}

fn redeemed_from_row(r: &sqlx::any::AnyRow) -> Result<Redeemed> {
    Ok(Redeemed {
        grant_id: col(r, "grant_id")?,
        person_id: col(r, "person_id")?,
        details: col(r, "details")?,
    })
}
