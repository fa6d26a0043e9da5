//! First-login linking as use cases (SPEC §6): [`Linking::link`] checks a Bis number against the
//! Bis register and stores the link; [`Linking::request_bis`] files a Bis request for a person
//! who has none. Five failed tries lock linking for that identity for a day; an invalid number
//! names the rule it breaks and is not counted.

use super::{matches, BisRegister, LinkVia, LinkingError};
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::i18n::Tr;
use crate::identity::Insz;
use crate::session::{EidasLink, Login};
use crate::store::{OutboxMessage, Person, Store};
use std::sync::Arc;

/// Tries of the Bis field per foreign identity before linking locks.
pub const LINK_MAX_FAILURES: i64 = 5;
pub const LINK_WINDOW_S: i64 = 86_400;

#[derive(Debug, Clone, PartialEq)]
pub enum Linked {
    /// Linked now (or the person existed): logged in.
    Linked(Login),
    /// Not a valid INSZ/Bis number: the message key of the rule it breaks (not counted).
    InvalidNumber(&'static str),
    /// The register has no such number, or another person's: one neutral answer, counted;
    /// `locked_until` when this try locked linking.
    NoMatch { locked_until: Option<i64> },
    /// Too many failed tries.
    Locked { until: i64 },
    /// The Bis register could not be asked (nothing counted).
    Unavailable,
    /// The identity was linked meanwhile (another tab or replica).
    AlreadyLinked,
}

#[derive(Debug, Clone, PartialEq)]
pub enum BisRequested {
    Filed { email: String },
    InvalidEmail,
}

/// The login of a linked foreign identity.
pub fn login_of(person_id: &str, link: &EidasLink, now: i64) -> Login {
    let method = link.via.method();
    let (eidas_person_identifier, eudiw_issuing_country) = match &link.via {
        LinkVia::Eidas => (Some(link.identity.person_identifier.clone()), None),
        LinkVia::Eudiw { issuing_country } => (None, Some(issuing_country.clone())),
    };
    Login {
        person_id: person_id.to_string(),
        auth_time: now,
        acr: link.level,
        amr: vec![method.as_str().into()],
        method,
        eidas_person_identifier,
        eudiw_issuing_country,
    }
}

fn lock_key(via: &LinkVia, pid: &str) -> String {
    match via {
        LinkVia::Eidas => format!("link:{}", crate::crypto::token_hash(pid)),
        LinkVia::Eudiw { .. } => format!("link:eudiw:{}", crate::crypto::token_hash(pid)),
    }
}

pub struct Linking {
    store: Store,
    audit: Audit,
    register: Option<Arc<dyn BisRegister>>,
}

impl Linking {
    pub fn new(store: Store, audit: Audit, register: Option<Arc<dyn BisRegister>>) -> Self {
        Self { store, audit, register }
    }

    /// The link step must follow its login within the eIDAS request's life.
    pub fn live(link: Option<&EidasLink>, now: i64) -> Option<EidasLink> {
        link.filter(|l| now - l.at <= crate::eidas::REQUEST_TTL_S).cloned()
    }

    pub async fn link(
        &self,
        link: &EidasLink,
        bis: &str,
        address: &str,
        now: i64,
    ) -> Result<Linked, LinkingError> {
        let pid = &link.identity.person_identifier;
        if let Some(until) = self.store.locked_until(&lock_key(&link.via, pid), now).await? {
            return Ok(Linked::Locked { until });
        }
        let bis = match Insz::parse(bis) {
            Ok(b) => b,
            Err(e) => return Ok(Linked::InvalidNumber(e.message_key())),
        };
        let Some(register) = &self.register else { return Ok(Linked::Unavailable) };
        let entry = match register.lookup(&bis).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "Bis register lookup failed");
                return Ok(Linked::Unavailable);
            }
        };
        let event = |outcome| Event::new(Kind::Link, outcome).factor(link.via.method());
        let Some(entry) = entry.filter(|e| matches(e, &link.identity) && e.bis == bis.as_str())
        else {
            let c = self
                .store
                .record_failure(
                    &lock_key(&link.via, pid),
                    now,
                    LINK_WINDOW_S,
                    LINK_MAX_FAILURES,
                    LINK_WINDOW_S,
                )
                .await?;
            self.audit.record(event(Outcome::Failed).address(address), now).await;
            return Ok(Linked::NoMatch { locked_until: c.locked_until });
        };
        let person = match self.store.person_by_insz(&bis).await? {
            Some(p) => p,
            None => {
                let p = Person {
                    id: crate::crypto::random_token(16),
                    insz: bis.clone(),
                    given_name: entry.given_names.join(" "),
                    family_name: entry.family_name.clone(),
                    birthdate: Some(entry.birthdate.clone()),
                    created_at: now,
                };
                self.store.insert_person(&p).await?;
                p
            }
        };
        if let Err(e) = self.store.link_identity(link.via.provider(), pid, &person.id, now).await {
            // Linked meanwhile (another tab, another replica): one identifier, one INSZ.
            tracing::warn!(error = %e, "foreign identity already linked");
            let refused = event(Outcome::Refused)
                .person(&person.id)
                .detail(serde_json::json!({ "reason": "already_linked" }));
            self.audit.record(refused, now).await;
            return Ok(Linked::AlreadyLinked);
        }
        self.audit.record(event(Outcome::Ok).person(&person.id).address(address), now).await;
        Ok(Linked::Linked(login_of(&person.id, link, now)))
    }

    /// "I have no Bis number": the request is kept with the asserted identity and the person is
    /// mailed (in their language) that the federal services will contact them.
    pub async fn request_bis(
        &self,
        link: &EidasLink,
        email: &str,
        tr: &Tr,
        now: i64,
    ) -> Result<BisRequested, LinkingError> {
        let email = email.trim().to_string();
        if !plausible_email(&email) {
            return Ok(BisRequested::InvalidEmail);
        }
        let who = &link.identity;
        self.store
            .insert_bis_request(
                &crate::crypto::random_id(),
                &who.person_identifier,
                &who.family_name,
                &who.given_name,
                &who.birthdate,
                &email,
                now,
            )
            .await?;
        self.store
            .enqueue(&OutboxMessage {
                id: crate::crypto::random_id(),
                channel: "mail".into(),
                recipient: email.clone(),
                subject: Some(tr.t("bis-mail-subject")),
                body: tr.t("bis-mail-body"),
                created_at: now,
                attempts: 0,
                sent_at: None,
            })
            .await?;
        self.audit
            .record(Event::new(Kind::BisRequest, Outcome::Ok).factor(link.via.method()), now)
            .await;
        Ok(BisRequested::Filed { email })
    }
}

/// One `@`, a dot in the domain, no spaces or angle brackets, at most 254 characters.
fn plausible_email(email: &str) -> bool {
    email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
}
