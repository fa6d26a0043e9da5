//! What a client may do besides the browser code flow (SPEC §10): the `client_credentials`
//! grant with a registered eHealth certificate, scopes and resources (RFC 8707), introspection
//! and token exchange.

use super::{col, json_col, to_json, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Connection;

/// A client's API settings (`client_api` row). Browser clients without any have none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientApi {
    /// `authorization_code` and/or `client_credentials`.
    pub grant_types: Vec<String>,
    /// The registered certificate (PEM, holder's first, then its chain as given).
    pub certificate: Option<String>,
    /// Its `x5t#S256`.
    pub certificate_sha256: Option<String>,
    /// What `client_credentials` may grant.
    pub scopes: Vec<String>,
    /// Resource URIs the client may ask tokens for (`aud`); the first is the default.
    pub resources: Vec<String>,
    /// A resource server: may call `/introspect`.
    pub introspect: bool,
    /// May exchange tokens (RFC 8693).
    pub token_exchange: bool,
}

impl ClientApi {
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }

    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            grant_types: json_col(r, "grant_types")?,
            certificate: col(r, "certificate")?,
            certificate_sha256: col(r, "certificate_sha256")?,
            scopes: json_col(r, "scopes")?,
            resources: json_col(r, "resources")?,
            introspect: col::<i64>(r, "introspect")? != 0,
            token_exchange: col::<i64>(r, "token_exchange")? != 0,
        })
    }
}

const API_COLS: &str = "grant_types, certificate, certificate_sha256, scopes, resources, \
                        introspect, token_exchange";

impl Store {
    pub async fn client_api(&self, client_id: &str) -> Result<Option<ClientApi>> {
        let sql = format!("SELECT {API_COLS} FROM client_api WHERE client_id = $1");
        let row =
            sqlx::query(&sql).bind(client_id).fetch_optional(&mut *self.read.get().await?).await?;
        row.as_ref().map(ClientApi::from_row).transpose()
    }
}

/// Inserts `api` for `client_id` in the transaction that inserts the client.
pub(super) async fn insert_client_api(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client_id: &str,
    api: &ClientApi,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO client_api (client_id, {API_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    sqlx::query(&sql)
        .bind(client_id)
        .bind(to_json(&api.grant_types))
        .bind(&api.certificate)
        .bind(&api.certificate_sha256)
        .bind(to_json(&api.scopes))
        .bind(to_json(&api.resources))
        .bind(i64::from(api.introspect))
        .bind(i64::from(api.token_exchange))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// A grant with its one access token, in one transaction (`client_credentials`, token
    /// exchange: nothing is redeemed first).
    pub async fn insert_grant_with_tokens(
        &self,
        g: &super::GrantRow,
        t: &super::NewTokens,
    ) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await?;
        sqlx::query(
            "INSERT INTO grants (id, client_id, person_id, details, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.person_id)
        .bind(&g.details)
        .bind(g.created_at)
        .bind(g.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO tokens (id, grant_id, access_hash, refresh_hash, access_expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.id)
        .bind(&g.id)
        .bind(&t.access_hash)
        .bind(&t.refresh_hash)
        .bind(t.access_expires_at)
        .bind(t.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl super::ClientRow {
    /// Whether the client was registered for `grant` (a `grant_type` value). Clients without
    /// API settings are browser clients: the code flow and its refresh tokens.
    pub fn allows_grant(&self, grant: &str) -> bool {
        let browser = self.api.as_ref().is_none_or(|a| a.allows_grant("authorization_code"));
        match grant {
            "authorization_code" | "refresh_token" => browser,
            "client_credentials" => self.api.as_ref().is_some_and(|a| a.allows_grant(grant)),
            "urn:ietf:params:oauth:grant-type:token-exchange" => {
                self.api.as_ref().is_some_and(|a| a.token_exchange)
            }
            _ => false,
        }
    }
}
