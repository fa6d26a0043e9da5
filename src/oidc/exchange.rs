//! Token exchange (RFC 8693, SPEC §10) for clients registered with `--token-exchange`: one of
//! our live access tokens becomes a token for another audience, for the exchanging client, with
//! the same subject and level and never a wider scope, naming the exchanging client in `act`.
//! No refresh token.

use super::access_token::AccessClaims;
use super::token::{TokenForm, TokenResponse};
use super::{OidcError, Provider};
use crate::crypto;
use crate::store::{ClientRow, GrantRow, NewTokens};
use serde_json::{json, Value};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

impl Provider {
    pub(super) async fn exchange(
        &self,
        client: &ClientRow,
        form: &TokenForm,
        bound: Option<&str>,
        now: i64,
    ) -> Result<TokenResponse, OidcError> {
        let subject_token = form
            .subject_token
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("subject_token is missing".into()))?;
        if form.subject_token_type.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(OidcError::InvalidRequest(format!(
                "subject_token_type must be {ACCESS_TOKEN_TYPE}"
            )));
        }
        if form.requested_token_type.as_deref().is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(OidcError::InvalidRequest(format!(
                "requested_token_type can only be {ACCESS_TOKEN_TYPE}"
            )));
        }
        let invalid = || OidcError::InvalidGrant("the subject_token is not active".into());
        let (hash, subject) = self.access_token_key(subject_token).map_err(|_| invalid())?;
        let row = self.store.access_token(&hash, now).await?.ok_or_else(invalid)?;
        let held: Vec<&str> = subject
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split_ascii_whitespace()
            .collect();
        let scope: Vec<&str> = match form.scope.as_deref() {
            None => held.clone(),
            Some(asked) => asked.split_ascii_whitespace().collect(),
        };
        if let Some(s) = scope.iter().find(|s| !held.contains(s)) {
            return Err(OidcError::InvalidScope(format!(
                "the scope {s} is wider than the subject token's"
            )));
        }
        let mut targets = form.resources.clone();
        targets.extend(form.audience.iter().cloned());
        let aud = self.audience(client, &targets)?;
        let actor_sub = match self.check_client_certificate(client, now) {
            Ok(c) if client.api.as_ref().is_some_and(|a| a.certificate.is_some()) => {
                self.holder_subject(&c.holder)
            }
            _ => client.id.clone(),
        };
        let mut act = json!({ "sub": actor_sub, "client_id": client.id });
        if let Some(prior) = subject.get("act") {
            act["act"] = prior.clone();
        }
        let jti = crypto::random_token(32);
        let mut claims: AccessClaims = subject.clone();
        claims.remove("cnf");
        claims.insert("aud".into(), aud);
        claims.insert("client_id".into(), client.id.clone().into());
        claims.insert("scope".into(), scope.join(" ").into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.cfg.access_token_ttl_s).into());
        claims.insert("jti".into(), jti.clone().into());
        claims.insert("act".into(), act);
        if let Some(t) = bound {
            claims.insert("cnf".into(), json!({ "x5t#S256": t }));
        }
        let access_token = self.sign_access_token(&claims)?;
        let grant = GrantRow {
            id: crypto::random_id(),
            client_id: client.id.clone(),
            person_id: row.grant.person_id.clone(),
            details: row.grant.details.clone(),
            created_at: now,
            expires_at: now + self.cfg.access_token_ttl_s,
            revoked_at: None,
        };
        let tokens = NewTokens {
            id: crypto::random_id(),
            access_hash: crypto::token_hash(&jti),
            refresh_hash: None,
            access_expires_at: now + self.cfg.access_token_ttl_s,
            created_at: now,
        };
        self.store.insert_grant_with_tokens(&grant, &tokens).await?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.cfg.access_token_ttl_s,
            refresh_token: None,
            id_token: None,
            scope: scope.join(" "),
            issued_token_type: Some(ACCESS_TOKEN_TYPE),
        })
    }
}
