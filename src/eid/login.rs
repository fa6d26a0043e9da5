//! An eID card login in three steps, each a use case (SPEC §6): the broker binds a request to the
//! browser session ([`EidLogins::begin`]); the eID listener verifies the card and answers the
//! request with a one-time ticket ([`EidLogins::answer`]); back on the broker, the ticket opens
//! the login for that same session, once ([`EidLogins::finish`]).

use super::EidError;
use super::{Card, CardProblem, EidTls};
use crate::assurance::{AssuranceLevel, Method};
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::crypto;
use crate::identity::Insz;
use crate::session::Login;
use crate::store::{Store, StoreError};

/// How long the browser has at the listener.
pub const EID_TTL_S: i64 = 600;

/// What the listener does with a card.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    /// Back to the broker with this ticket for request `id`.
    Ticket {
        id: String,
        ticket: String,
    },
    /// The card cannot log in (no certificate, expired, revoked, unknown CA, …).
    Refused(CardProblem),
    /// No request named, or it expired or was answered before.
    NoRequest,
    Expired,
}

#[derive(Clone)]
pub struct EidLogins {
    store: Store,
    audit: Audit,
}

impl EidLogins {
    pub fn new(store: Store, audit: Audit) -> Self {
        Self { store, audit }
    }

    /// A request bound to this browser session; returns its id (for the listener's URL).
    pub async fn begin(&self, session_id: &str, now: i64) -> Result<String, EidError> {
        let id = crypto::random_token(24);
        self.store
            .insert_eid_request(&id, &crypto::token_hash(session_id), now, now + EID_TTL_S)
            .await?;
        Ok(id)
    }

    /// On the listener: verifies the card chain the TLS handshake presented and answers the
    /// request `id` with a ticket. Every refusal is audited with its reason.
    pub async fn answer(
        &self,
        tls: &EidTls,
        chain: &[rustls::pki_types::CertificateDer<'static>],
        id: Option<String>,
        address: &str,
        now: i64,
    ) -> Result<Answered, EidError> {
        let card = match tls.verify_card(Some(chain).filter(|c| !c.is_empty()), now) {
            Ok(c) => c,
            Err(refusal) => {
                // What an operator needs to find the cause; the subject (and so the INSZ) stays
                // out.
                tracing::warn!(
                    reason = refusal.problem.code(),
                    error = %refusal.error,
                    issuer = refusal.issuer.as_deref().unwrap_or("-"),
                    serial = refusal.serial.as_deref().unwrap_or("-"),
                    "eID login refused"
                );
                let problem = refusal.problem;
                let e = Event::new(Kind::Login, Outcome::Failed)
                    .factor(Method::Eid)
                    .address(address)
                    .detail(serde_json::json!({ "reason": problem.code() }));
                self.audit.record(e, now).await;
                return Ok(Answered::Refused(problem));
            }
        };
        let Some(id) = id else { return Ok(Answered::NoRequest) };
        let ticket = crypto::random_token(32);
        let result = serde_json::to_string(&card).unwrap_or_default();
        if !self.store.answer_eid_request(&id, &crypto::token_hash(&ticket), &result, now).await? {
            return Ok(Answered::Expired);
        }
        Ok(Answered::Ticket { id, ticket })
    }

    /// Back on the broker: the ticket opens the login for the session that started it, once.
    /// A person the broker does not know yet is created from the card.
    pub async fn finish(
        &self,
        session_id: &str,
        id: &str,
        ticket: &str,
        now: i64,
    ) -> Result<Option<Login>, EidError> {
        let answer = self
            .store
            .take_eid_answer(id, &crypto::token_hash(session_id), &crypto::token_hash(ticket), now)
            .await?;
        let Some(card) = answer.and_then(|a| serde_json::from_str::<Card>(&a).ok()) else {
            return Ok(None);
        };
        let insz = Insz::parse(&card.insz)
            .map_err(|_| StoreError::Corrupt("the card's INSZ in an eID answer".into()))?;
        let person = self
            .store
            .person_or_create(&insz, &card.given_name, &card.family_name, None, now)
            .await?;
        if self.store.person_by_identity("eid", insz.as_str()).await?.is_none() {
            // A concurrent first login may have linked it: either way it is linked.
            let _ = self.store.link_identity("eid", insz.as_str(), &person.id, now).await;
        }
        Ok(Some(Login {
            person_id: person.id,
            auth_time: now,
            acr: AssuranceLevel::High,
            amr: vec!["eid".into()],
            method: Method::Eid,
            eidas_person_identifier: None,
            eudiw_issuing_country: None,
        }))
    }
}
