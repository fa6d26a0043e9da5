//! Token introspection (RFC 7662, SPEC §10) for resource servers: clients registered with
//! `--introspect`, authenticated as at `/token`. An active token is one of our access tokens
//! whose row is live (not expired, not revoked, its grant not revoked) and, for a client with an
//! eHealth certificate, whose client's certificate is still valid and not revoked; the answer
//! then holds every claim of the token.
//!
//! DPoP (SPEC §11, RFC 9449 §6.2): a bound token is answered with `token_type: DPoP` and its
//! `cnf.jkt`, so that the resource server checks the proof it received. When the introspection
//! request itself carries a `DPoP` proof (for `POST /introspect`, with `ath` of the token), it
//! must be by the token's key, else the request is refused and nothing is answered.

use super::token::TokenForm;
use super::{OidcError, Provider};
use serde_json::{json, Value};

impl Provider {
    pub async fn introspect(
        &self,
        authorization: Option<&str>,
        dpop: Option<&str>,
        form: &TokenForm,
        now: i64,
    ) -> Result<Value, OidcError> {
        let client = self.authenticate_client(&form.credentials(authorization), now).await?;
        if !client.api.as_ref().is_some_and(|a| a.introspect) {
            return Err(OidcError::InvalidClient(
                "this client is not registered as a resource server (--introspect)".into(),
            ));
        }
        let token = form
            .token
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("token is missing".into()))?;
        let Ok((hash, claims)) = self.access_token_key(token) else {
            return Ok(json!({ "active": false }));
        };
        let Some(row) = self.store.access_token(&hash, now).await? else {
            return Ok(json!({ "active": false }));
        };
        // A revoked certificate ends its client's tokens at once.
        if let Some(holder) = self.registered_client(&row.grant.client_id, now).await? {
            let has_certificate = holder.api.as_ref().is_some_and(|a| a.certificate.is_some());
            if has_certificate && self.check_client_certificate(&holder, now).is_err() {
                return Ok(json!({ "active": false }));
            }
        }
        let jkt = claims.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str);
        if let Some(proof) = dpop {
            let url = self.endpoint("/introspect");
            let got = super::dpop::check_proof(&self.store, proof, "POST", &url, Some(token), now)
                .await?;
            if !jkt.is_some_and(|j| crate::crypto::ct_eq(j.as_bytes(), got.0.as_bytes())) {
                return Err(super::dpop::DpopError::WrongKey.into());
            }
        }
        let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
        let mut out = claims;
        out.insert("active".into(), true.into());
        out.insert("token_type".into(), token_type.into());
        Ok(Value::Object(out))
    }
}
