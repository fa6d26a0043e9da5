//! The three steps of an eIDAS login, each a use case the web layer only renders:
//! [`Eidas::request`] (the AuthnRequest bound to the browser session), [`Eidas::accept`] (the
//! node's answer at the ACS, which the browser's `SameSite=Lax` cookie does not reach) and
//! [`Eidas::finish`] (the browser back at `/saml/eidas/continue` with its cookie: only the session
//! that sent the request may use the answer).

use super::{Answer, Eidas, EidasError, REQUEST_TTL_S};
use crate::assurance::{AssuranceLevel, Method};
use crate::audit::{Event, Kind, Outcome};
use crate::crypto;
use crate::linking::{self, ForeignIdentity};
use crate::saml::{AuthnRequestSpec, ResponseError};
use crate::session::{EidasLink, LoggedIn};
use crate::store::SamlRequestRow;

/// How the AuthnRequest reaches the node.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// HTTP-Redirect binding: send the browser here.
    Redirect { url: String },
    /// HTTP-POST binding: an auto-submitting form.
    Post { action: String, saml_request: String, relay_state: String },
}

/// Why an answer at the ACS or at the continue step is refused (nothing is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No request of ours has this RelayState.
    Unsolicited,
    /// Answered or used before, or the assertion was seen before.
    Replayed,
    /// The request's 15 minutes are over.
    Expired,
    /// The response failed a check (signature, audience, time, …): logged, not shown.
    Invalid,
    /// The browser coming back is not the one that sent the request.
    OtherSession,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Unsolicited => "unsolicited",
            Refusal::Replayed => "replayed",
            Refusal::Expired => "expired",
            Refusal::Invalid => "invalid",
            Refusal::OtherSession => "other-session",
        }
    }
}

/// What the ACS does.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// The answer is kept with the request; the browser continues here.
    Continue {
        relay: String,
    },
    Refused(Refusal),
}

/// What the continue step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// A linked identity: logged in (its person read with the link).
    LoggedIn(LoggedIn),
    /// First login of this identity: link it to a Bis number (`/link`).
    NeedsLink(EidasLink),
    Cancelled,
    Failed,
    LevelTooLow,
    Refused(Refusal),
}

impl Eidas {
    /// A signed AuthnRequest for `country` at `min_level`, stored with a hash of the browser
    /// session's id (the answer is bound to that session).
    pub async fn request(
        &self,
        session_id: &str,
        country: &str,
        min_level: AssuranceLevel,
        now: i64,
    ) -> Result<Outgoing, EidasError> {
        let spec = AuthnRequestSpec {
            id: crate::saml::new_request_id(),
            min_level,
            force_authn: true,
            country: country.to_string(),
        };
        let relay = crypto::random_token(24);
        self.store
            .insert_saml_request(&SamlRequestRow {
                id: spec.id.clone(),
                relay: relay.clone(),
                session_ref: crypto::token_hash(session_id),
                min_level,
                country: country.to_string(),
                created_at: now,
                expires_at: now + REQUEST_TTL_S,
                answered_at: None,
                result: None,
                consumed_at: None,
            })
            .await?;
        // Signing an AuthnRequest (ECDSA P-256, deflate) takes tens of microseconds: done here,
        // as the token endpoint signs, rather than handed to a blocking thread and back (two
        // thread switches per login; BENCHMARKS.md, #17).
        let at = crate::clock::to_utc(now);
        if self.post_binding {
            let (action, saml_request) = self.sp.post_request_at(&spec, at)?;
            Ok(Outgoing::Post { action, saml_request, relay_state: relay })
        } else {
            Ok(Outgoing::Redirect { url: self.sp.redirect_request_at(&spec, &relay, at)? })
        }
    }

    /// The ACS: finds the request by RelayState, refuses a replay or a late answer, validates
    /// the response on a blocking thread, refuses an assertion seen before on any replica, and
    /// keeps the answer with the request for the browser's session.
    pub async fn accept(
        &self,
        saml_response: Option<String>,
        relay: Option<String>,
        address: &str,
        now: i64,
    ) -> Result<Accepted, EidasError> {
        let refused = |r| Ok(Accepted::Refused(r));
        let (Some(b64), Some(relay)) = (saml_response, relay) else {
            return refused(Refusal::Unsolicited);
        };
        let Some(request) = self.store.saml_request_by_relay(&relay).await? else {
            return refused(Refusal::Unsolicited);
        };
        if request.answered_at.is_some() {
            return refused(Refusal::Replayed);
        }
        if request.expires_at <= now {
            return refused(Refusal::Expired);
        }
        let min_level = request.min_level;
        let sp = self.sp.clone();
        let expected = vec![request.id.clone()];
        let at = crate::clock::to_utc(now);
        let result = tokio::task::spawn_blocking(move || {
            sp.validate_response_for_level(&b64, &expected, min_level, at)
        })
        .await?;
        // An assertion is accepted once, on every replica: its id goes to the replay cache
        // with the answer.
        let mut seen = None;
        let answer = match result {
            Ok(a) => {
                let ttl = a.not_on_or_after.timestamp().max(now) + 300;
                seen = Some((format!("saml-assertion:{}", a.assertion_id), ttl));
                // Never trust a node above what it is configured to vouch for.
                let level = a.level.min(self.max_level);
                let identity = ForeignIdentity {
                    person_identifier: a.person_identifier,
                    family_name: a.family_name,
                    given_name: a.given_name,
                    birthdate: a.date_of_birth,
                };
                Answer::Ok { identity, level }
            }
            Err(ResponseError::Cancelled) => Answer::Cancelled,
            Err(ResponseError::Failed(_)) => Answer::Failed,
            Err(ResponseError::LevelTooLow { .. }) => Answer::LevelTooLow,
            Err(e) => {
                tracing::warn!(error = %e, "eIDAS response refused");
                self.audit
                    .record(
                        Event::new(Kind::Login, Outcome::Failed)
                            .factor(Method::Eidas)
                            .address(address)
                            .detail(serde_json::json!({ "reason": "invalid_response" })),
                        now,
                    )
                    .await;
                return refused(Refusal::Invalid);
            }
        };
        let json =
            serde_json::to_string(&answer).map_err(|e| EidasError::Corrupt(e.to_string()))?;
        let seen = seen.as_ref().map(|(key, ttl)| (key.as_str(), *ttl));
        if !self.store.answer_saml_request(&request.id, &json, seen, now).await? {
            return refused(Refusal::Replayed);
        }
        Ok(Accepted::Continue { relay })
    }

    /// The browser is back with its cookie: only the session that sent the request may use the
    /// answer, once; a linked identity logs in, a new one goes to linking.
    pub async fn finish(
        &self,
        session_id: &str,
        relay: Option<&str>,
        now: i64,
    ) -> Result<Finished, EidasError> {
        let session_ref = crypto::token_hash(session_id);
        let taken = match relay {
            Some(r) => self.store.consume_saml_answer(r, &session_ref, now).await?,
            None => None,
        };
        let Some(result) = taken else {
            // Nothing taken: say why (another browser's request, or one used before).
            let request = match relay {
                Some(r) => self.store.saml_request_by_relay(r).await?,
                None => None,
            };
            let ours =
                request.filter(|r| crypto::ct_eq(r.session_ref.as_bytes(), session_ref.as_bytes()));
            return Ok(Finished::Refused(match ours {
                Some(_) => Refusal::Replayed,
                None => Refusal::OtherSession,
            }));
        };
        let answer: Answer = serde_json::from_str(&result)
            .map_err(|e| EidasError::Corrupt(format!("stored answer: {e}")))?;
        let link = match answer {
            Answer::Ok { identity, level } => {
                EidasLink { identity, level, at: now, via: linking::LinkVia::Eidas }
            }
            Answer::Cancelled => return Ok(Finished::Cancelled),
            Answer::Failed => return Ok(Finished::Failed),
            Answer::LevelTooLow => return Ok(Finished::LevelTooLow),
        };
        let pid = &link.identity.person_identifier;
        match self.store.person_by_identity(linking::EIDAS, pid).await? {
            Some(person) => {
                let login = linking::login_of(&person.id, &link, now);
                Ok(Finished::LoggedIn(LoggedIn { login, person: Some(person) }))
            }
            None => Ok(Finished::NeedsLink(link)),
        }
    }
}
