//! OpenID Connect Back-Channel Logout 1.0 (SPEC §11): when a broker session ends, the grants
//! issued in it are revoked and every app of it that registered a back-channel URI is told, by
//! a logout token POSTed through the outbox.
//!
//! The outbox row keeps the token's claims, not the token: it is signed at each delivery
//! attempt, so its `iat`/`exp` are fresh however long the app's endpoint was down, while its
//! `jti` stays the same (the app may recognise a repeat).

use super::signing::SigningAlg;
use super::{OidcError, Provider};
use crate::crypto;
use crate::session::{Login, Session};
use crate::store::{EndedGrant, GrantScope, OutboxMessage, Store, StoreError};
use openidconnect::PrivateSigningKey;
use serde::{Deserialize, Serialize};

/// The outbox channel of logout tokens.
pub const CHANNEL: &str = "backchannel_logout";

/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a signed logout token is valid (it is signed again at each attempt).
const LOGOUT_TOKEN_TTL_S: i64 = 120;

/// What the outbox keeps of a logout token until it is delivered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PendingLogout {
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub jti: String,
}

/// The outbox message that announces an ended grant's session to its app, if the app
/// registered where.
fn logout_message(g: &EndedGrant, now: i64) -> Option<OutboxMessage> {
    let uri = g.backchannel_logout_uri.clone()?;
    let pending = PendingLogout {
        aud: g.client_id.clone(),
        sub: g.person_id.clone(),
        sid: g.sid.clone(),
        jti: crypto::random_token(16),
    };
    Some(OutboxMessage {
        id: crypto::random_id(),
        channel: CHANNEL.into(),
        recipient: uri,
        subject: None,
        body: serde_json::to_string(&pending).ok()?,
        created_at: now,
        attempts: 0,
        sent_at: None,
    })
}

/// Ends grants (revoked, their apps' logouts queued, in one transaction).
pub async fn end(
    store: &Store,
    scope: GrantScope<'_>,
    now: i64,
) -> Result<Vec<EndedGrant>, StoreError> {
    let ended = store.end_grants(scope, now, &|g| logout_message(g, now)).await?;
    if !ended.is_empty() {
        tracing::info!(grants = ended.len(), "grants ended, back-channel logouts queued");
    }
    Ok(ended)
}

/// Every broker session of a person ends (keys revoked by the office or the command line, or
/// "sign out everywhere"): all grants revoked, all apps told, all browser sessions deleted.
pub async fn end_person(store: &Store, person_id: &str, now: i64) -> Result<(), StoreError> {
    end(store, GrantScope::Person { person_id, keep: None }, now).await.map(|_| ())
}

/// A key removed at `/account`: every other broker session of the person ends; the one that
/// removed it (it has just logged in again strongly) stays.
pub async fn end_other_sessions(
    store: &Store,
    current: &Session,
    person_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let id_hash = current.id_hash();
    let sid = current.data.sid.as_ref().map(|s| s.sid.as_str()).unwrap_or("");
    end(store, GrantScope::Person { person_id, keep: Some((sid, &id_hash)) }, now).await.map(|_| ())
}

#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: &'a str,
    events: serde_json::Value,
    sid: &'a str,
    sub: &'a str,
}

/// Signs a compact JWS with one of the provider's keys.
pub(crate) fn sign_jws(
    key: &super::signing::SigningKey,
    typ: &str,
    claims: &impl Serialize,
) -> Result<String, OidcError> {
    let header = serde_json::json!({ "alg": key.alg.as_str(), "kid": key.kid, "typ": typ });
    let encode = |v: &serde_json::Value| crypto::b64url(v.to_string().as_bytes());
    let claims = serde_json::to_value(claims).map_err(|e| OidcError::Server(Box::new(e)))?;
    let input = format!("{}.{}", encode(&header), encode(&claims));
    let sig = key
        .sign(&key.alg.jws(), input.as_bytes())
        .map_err(|e| OidcError::Server(format!("JWS signing: {e}").into()))?;
    Ok(format!("{input}.{}", crypto::b64url(&sig)))
}

impl Provider {
    /// The logout token for a queued logout, signed now (RS256, the algorithm every client
    /// verifies).
    pub fn logout_token(&self, pending: &PendingLogout, now: i64) -> Result<String, OidcError> {
        let keys = self.keys.current();
        let key = keys
            .active(SigningAlg::Rs256)
            .ok_or_else(|| OidcError::Server("no RS256 key".into()))?;
        let claims = LogoutClaims {
            iss: &self.issuer,
            aud: &pending.aud,
            iat: now,
            exp: now + LOGOUT_TOKEN_TTL_S,
            jti: &pending.jti,
            events: serde_json::json!({ EVENT: {} }),
            sid: &pending.sid,
            sub: &pending.sub,
        };
        sign_jws(&key, "logout+jwt", &claims)
    }

    /// "Sign out everywhere" at `/account`: every broker session of the person ends, this
    /// one included (the caller ends the browser's).
    pub async fn sign_out_everywhere(&self, login: &Login, now: i64) -> Result<(), OidcError> {
        end_person(&self.store, &login.person_id, now).await?;
        self.audit
            .record(
                crate::audit::Event::new(crate::audit::Kind::Logout, crate::audit::Outcome::Ok)
                    .person(&login.person_id)
                    .detail(serde_json::json!({ "everywhere": true })),
                now,
            )
            .await;
        Ok(())
    }
}

/// Signs queued logout tokens for the outbox.
impl crate::outbox::LogoutSigner for Provider {
    fn sign(&self, body: &str, now: i64) -> Result<String, String> {
        let pending: PendingLogout = serde_json::from_str(body).map_err(|e| e.to_string())?;
        self.logout_token(&pending, now).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_of_an_app_without_a_uri_queues_nothing() {
        let g = EndedGrant {
            grant_id: "g".into(),
            sid: "s".into(),
            person_id: "p".into(),
            client_id: "c".into(),
            backchannel_logout_uri: None,
        };
        assert!(logout_message(&g, 0).is_none());
        let g = EndedGrant { backchannel_logout_uri: Some("https://app/bc".into()), ..g };
        let m = logout_message(&g, 5).unwrap();
        assert_eq!(m.channel, CHANNEL);
        assert_eq!(m.recipient, "https://app/bc");
        let p: PendingLogout = serde_json::from_str(&m.body).unwrap();
        assert_eq!((p.aud.as_str(), p.sub.as_str(), p.sid.as_str()), ("c", "p", "s"));
    }
}
