//! Token introspection (RFC 7662, SPEC §10) for resource servers: clients registered with
//! `--introspect`, authenticated as at `/token`. An active token is one of our access tokens
//! whose row is live (not expired, not revoked, its grant not revoked) and, for a client with an
//! eHealth certificate, whose client's certificate is still valid and not revoked; the answer
//! then holds every claim of the token.

use super::token::TokenForm;
use super::{OidcError, Provider};
use serde_json::{json, Value};

impl Provider {
    pub async fn introspect(
        &self,
        authorization: Option<&str>,
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
        let mut out = claims;
        out.insert("active".into(), true.into());
        out.insert("token_type".into(), "Bearer".into());
        Ok(Value::Object(out))
    }
}
