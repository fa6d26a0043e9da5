//! The federal login as use cases (SPEC §6): [`FederalLogin::start`] sends the browser to FAS
//! with state, nonce and PKCE kept in the session; [`FederalLogin::callback`] checks that the
//! answer belongs to the login this browser started, verifies the ID token and finds (or
//! creates) the person by INSZ.

use super::{Fas, FasError, FasPending};
use crate::assurance::Method;
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::identity::Insz;
use crate::session::Login;
use crate::store::Store;
use std::sync::Arc;

/// How long the person has at FAS.
pub const FAS_TTL_S: i64 = 900;

/// What the callback does.
#[derive(Debug, Clone, PartialEq)]
pub enum Returned {
    LoggedIn(Login),
    /// FAS answered with an error (`cancelled` when the person cancelled there).
    UpstreamError {
        cancelled: bool,
    },
    /// The ID token's level (`acr`) is not in `[fas.levels]`: trying the same means again gives
    /// the same level, so the person chooses another.
    UnknownLevel,
    /// The answer cannot be placed: no login under way, wrong state, too late, no code, an ID
    /// token that fails a check or whose level is not configured, no valid INSZ. The code says
    /// which (for the page and the logs).
    Refused(&'static str),
}

/// The parameters FAS sends back to the callback.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

pub struct FederalLogin {
    pub fas: Arc<Fas>,
    store: Store,
    audit: Audit,
}

impl FederalLogin {
    pub fn new(fas: Arc<Fas>, store: Store, audit: Audit) -> Self {
        Self { fas, store, audit }
    }

    /// The URL of FAS's authorization endpoint, and what the session keeps for the callback.
    pub async fn start(&self, now: i64) -> Result<(String, FasPending), FasError> {
        self.fas.start(now).await
    }

    /// `pending` is taken out of the session by the caller (an answer is used once).
    pub async fn callback(
        &self,
        pending: Option<FasPending>,
        q: CallbackParams,
        address: &str,
        now: i64,
    ) -> Result<Returned, FasError> {
        let Some(pending) = pending else { return Ok(Returned::Refused("unsolicited")) };
        let state_ok = q
            .state
            .as_deref()
            .is_some_and(|s| crate::crypto::ct_eq(s.as_bytes(), pending.state.as_bytes()));
        if !state_ok || now - pending.at > FAS_TTL_S {
            return Ok(Returned::Refused("state"));
        }
        if let Some(error) = q.error {
            tracing::info!(error = %error, "FAS returned an error");
            return Ok(Returned::UpstreamError { cancelled: error == "access_denied" });
        }
        let Some(code) = q.code else { return Ok(Returned::Refused("no_code")) };
        let fed = match self.fas.finish(&pending, &code).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "FAS login refused");
                let unknown_level = matches!(e, FasError::UnknownLevel(_));
                let reason = if unknown_level { "unknown_level" } else { "invalid_id_token" };
                let e = Event::new(Kind::Login, Outcome::Failed)
                    .factor(Method::Fas)
                    .address(address)
                    .detail(serde_json::json!({ "reason": reason }));
                self.audit.record(e, now).await;
                return Ok(if unknown_level {
                    Returned::UnknownLevel
                } else {
                    Returned::Refused("invalid")
                });
            }
        };
        let Ok(insz) = Insz::parse(&fed.insz) else { return Ok(Returned::Refused("invalid_insz")) };
        // Same person, many doors: the INSZ decides; an unknown INSZ becomes a person.
        let person = self
            .store
            .person_or_create(&insz, &fed.given_name, &fed.family_name, None, now)
            .await?;
        if self.store.person_by_identity("fas", &fed.subject).await?.is_none() {
            // A concurrent first login may have linked it: either way it is linked.
            let _ = self.store.link_identity("fas", &fed.subject, &person.id, now).await;
        }
        Ok(Returned::LoggedIn(Login {
            person_id: person.id,
            auth_time: now,
            acr: fed.level,
            amr: fed.amr,
            method: fed.method,
            eidas_person_identifier: None,
            eudiw_issuing_country: None,
        }))
    }
}
