//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): where the browser may go
//! afterwards, and the audit of the session's end.

use super::{OidcError, Provider};
use crate::audit::{Event, Kind, Outcome};
use crate::session::SessionData;

impl Provider {
    /// `post_logout_redirect_uri` if it is registered for the client named by the (verified)
    /// `id_token_hint` or by `client_id` (they must agree), with `state`; otherwise nowhere.
    pub async fn post_logout_target(
        &self,
        uri: &str,
        hinted_client: Option<&str>,
        client_id: Option<&str>,
        state: Option<&str>,
    ) -> Result<Option<String>, OidcError> {
        let Some(id) = hinted_client.or(client_id) else { return Ok(None) };
        if hinted_client.is_some() && client_id.is_some_and(|c| Some(c) != hinted_client) {
            return Ok(None);
        }
        let Some(client) = self.store.client(id).await? else { return Ok(None) };
        if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return Ok(None);
        }
        let Ok(mut url) = url::Url::parse(uri) else { return Ok(None) };
        if let Some(s) = state {
            url.query_pairs_mut().append_pair("state", s);
        }
        Ok(Some(url.to_string()))
    }

    /// The broker session of this browser ends (the caller destroys it): the grants issued
    /// in it are revoked and its apps told (back-channel logout), before the answer.
    pub async fn logged_out(&self, session: &SessionData, now: i64) -> Result<(), OidcError> {
        if let Some(b) = &session.sid {
            let scope = crate::store::GrantScope::Session { sid: &b.sid };
            super::backchannel::end(&self.store, scope, now).await?;
        }
        if let Some(login) = &session.login {
            self.audit
                .record(Event::new(Kind::Logout, Outcome::Ok).person(&login.person_id), now)
                .await;
        }
        Ok(())
    }
}
