//! Relying parties (OIDC clients) and the provider's signing keys.

use super::{col, json_col, to_json, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Connection;

/// How a client authenticates at the token endpoint (`none`: a public client, PKCE alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    /// RFC 8705: the registered certificate on the mTLS listener.
    TlsClientAuth,
    None,
}

impl ClientAuthMethod {
    pub const ALL: [ClientAuthMethod; 5] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::TlsClientAuth,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// Whether the client holds a secret of ours.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

impl std::fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    pub id: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub auth_method: ClientAuthMethod,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub id_token_alg: String,
    pub policy: String,
    pub created_at: i64,
    /// Grants, certificate, resources, introspection and exchange (SPEC §10), when registered.
    pub api: Option<super::ClientApi>,
    /// `client add --dpop` (SPEC §11): read with the client so that the token endpoint's
    /// check costs no statement of its own (clients are cached, `oidc::client_auth`).
    pub dpop_required: bool,
}

impl ClientRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            id: col(r, "id")?,
            secret_hash: col(r, "secret_hash")?,
            redirect_uris: json_col(r, "redirect_uris")?,
            post_logout_redirect_uris: json_col(r, "post_logout_redirect_uris")?,
            auth_method: {
                let m: String = col(r, "auth_method")?;
                ClientAuthMethod::parse(&m)
                    .ok_or_else(|| StoreError::Corrupt(format!("client auth method {m}")))?
            },
            jwks: col(r, "jwks")?,
            jwks_uri: col(r, "jwks_uri")?,
            id_token_alg: col(r, "id_token_alg")?,
            policy: col(r, "policy")?,
            created_at: col(r, "created_at")?,
            api: None,
            dpop_required: col::<i64>(r, "dpop_required")? != 0,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub private_enc: Vec<u8>,
    pub public_jwk: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// `client_apps.dpop_required` (migration 0007) beside the client's own columns.
const DPOP_REQUIRED: &str = "COALESCE((SELECT a.dpop_required FROM client_apps a \
     WHERE a.client_id = clients.id), 0) AS dpop_required";
const CLIENT_COLS: &str =
    "id, secret_hash, redirect_uris, post_logout_redirect_uris, auth_method, \
                           jwks, jwks_uri, id_token_alg, policy, created_at";

impl Store {
    pub async fn insert_client(&self, c: &ClientRow) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await?;
        let sql = format!(
            "INSERT INTO clients ({CLIENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(&sql)
            .bind(&c.id)
            .bind(&c.secret_hash)
            .bind(to_json(&c.redirect_uris))
            .bind(to_json(&c.post_logout_redirect_uris))
            .bind(c.auth_method.as_str())
            .bind(&c.jwks)
            .bind(&c.jwks_uri)
            .bind(&c.id_token_alg)
            .bind(&c.policy)
            .bind(c.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::conflict_or(e, "a client with this id"))?;
        if let Some(api) = &c.api {
            super::client_api::insert_client_api(&mut tx, &c.id, api).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn client(&self, id: &str) -> Result<Option<ClientRow>> {
        let sql = format!("SELECT {CLIENT_COLS}, {DPOP_REQUIRED} FROM clients WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *self.read.get().await?).await?;
        let Some(mut client) = row.as_ref().map(ClientRow::from_row).transpose()? else {
            return Ok(None);
        };
        client.api = self.client_api(id).await?;
        Ok(Some(client))
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>> {
        let sql = format!("SELECT {CLIENT_COLS}, {DPOP_REQUIRED} FROM clients ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&mut *self.pool.get().await?).await?;
        let mut clients = rows.iter().map(ClientRow::from_row).collect::<Result<Vec<_>>>()?;
        for c in &mut clients {
            c.api = self.client_api(&c.id).await?;
        }
        Ok(clients)
    }

    /// Removes a client and revokes every grant it holds.
    pub async fn remove_client(&self, id: &str, now: i64) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM client_api WHERE client_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE grants SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    pub async fn insert_signing_key(&self, k: &SigningKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_enc, public_jwk, created_at, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_enc)
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .bind(k.retired_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    /// Keys still published: active ones and those retired after `retired_after`.
    pub async fn signing_keys(&self, retired_after: i64) -> Result<Vec<SigningKeyRow>> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_enc, public_jwk, created_at, retired_at FROM signing_keys \
             WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC, kid",
        )
        .bind(retired_after)
        .fetch_all(&mut *self.pool.get().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SigningKeyRow {
                    kid: col(r, "kid")?,
                    alg: col(r, "alg")?,
                    private_enc: col(r, "private_enc")?,
                    public_jwk: col(r, "public_jwk")?,
                    created_at: col(r, "created_at")?,
                    retired_at: col(r, "retired_at")?,
                })
            })
            .collect()
    }

    /// Retires the active keys of `alg` except `keep`.
    pub async fn retire_signing_keys(&self, alg: &str, keep: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE signing_keys SET retired_at = $1 WHERE alg = $2 AND kid <> $3 AND retired_at IS NULL",
        )
        .bind(now)
        .bind(alg)
        .bind(keep)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected())
    }
}
