//! Registration offices (SPEC §7): an operator checks a person's identity documents and issues
//! an activation code on paper plus an activation link by mail. This module decides and stores;
//! `web::office` and `web::activate` render. Where things are:
//! - [`form`]: the office form and its rules;
//! - [`desk`]: the operator's use cases (list, register, show, re-issue);
//! - [`activation`]: the person's side (the link, the paper code, the end of an activation).
//!
//! The code and the link are both needed, so a stolen mail alone or a lost paper alone opens
//! nothing. Both are random, stored only as hashes, compared in constant time, used once, and
//! expire after [`ACTIVATION_TTL_S`]. Every use case takes the time of its request (`now`).

pub mod activation;
pub mod desk;
pub mod form;

pub use activation::{LinkState, Opening};
pub use desk::{Registered, Reissued};
pub use form::{parse_email, DocumentType, FieldError, NewRegistration, RegistrationForm};

use crate::assurance::AssuranceLevel;
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::crypto;
use crate::session::Login;
/// The office's records, as its pages show them: the web names them through this module.
pub use crate::store::{Operator, Registration, RegistrationStatus};
use crate::store::{Store, StoreError};
use std::fmt;

/// Code and link are valid for 14 days (SPEC §7).
pub const ACTIVATION_TTL_S: i64 = 14 * 24 * 3600;
/// Wrong codes for one link before it locks until a re-issue.
pub const MAX_CODE_FAILURES: i64 = 5;
/// Finished and voided registrations are kept this long (for the office's list), then purged.
pub const KEEP_DONE_S: i64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A live registration exists for this person (SPEC §7: refused with a clear message).
    #[error("a live registration exists for this person")]
    Duplicate { existing: String },
    /// A registration this request just used is gone (purged meanwhile).
    #[error("the registration vanished")]
    Vanished,
}

/// No look-alikes (0/O, 1/I/L): people copy the code from paper.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// 12 characters of a 31-letter alphabet: 59 bits (SPEC §7 asks ≥ 50).
const CODE_LEN: usize = 12;

/// The activation code printed for the person: `XXXX-XXXX-XXXX`. Only valid codes can be built.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationCode(String);

impl ActivationCode {
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rngs::OsRng;
        Self(
            (0..CODE_LEN)
                .map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())]))
                .collect(),
        )
    }

    /// Accepts the code as people type it: any case, with or without dashes and spaces.
    pub fn parse(input: &str) -> Option<Self> {
        let s: String = input
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '.'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (s.len() == CODE_LEN && s.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(Self(s))
    }

    /// Grouped by four for reading aloud and typing.
    pub fn grouped(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Bound to its registration, so one hash cannot be replayed against another.
    fn hash(&self, registration_id: &str) -> String {
        crypto::token_hash(&format!("activation:{registration_id}:{}", self.0))
    }
}

impl fmt::Debug for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActivationCode(…)")
    }
}

/// The secret part of the activation link: 256 random bits.
pub struct LinkToken(String);

impl LinkToken {
    pub fn generate() -> Self {
        Self(crypto::random_token(32))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn hash_of(raw: &str) -> String {
        crypto::token_hash(&format!("activation-link:{raw}"))
    }
}

/// What the office hands over: the code (shown once) and when it expires.
#[derive(Debug)]
pub struct Issued {
    pub registration: Registration,
    /// `None` while a Bis number is awaited.
    pub code: Option<ActivationCode>,
    pub link: Option<String>,
}

/// Who is behind a browser at the office pages.
#[derive(Debug, Clone)]
pub enum OperatorCheck {
    /// An operator logged in strongly enough: their office's pages.
    Operator(Operator),
    /// Nobody logged in: log in first.
    NotLoggedIn,
    /// Logged in below substantial (SPEC §7): log in again with a stronger key.
    LevelTooLow,
    /// Logged in, but not an operator of any office.
    NotOperator,
}

#[derive(Clone)]
pub struct Offices {
    store: Store,
    public_url: url::Url,
    audit_log: Audit,
}

impl Offices {
    pub fn new(store: Store, public_url: url::Url, audit_log: Audit) -> Self {
        Self { store, public_url, audit_log }
    }

    pub fn link_url(&self, token: &LinkToken) -> String {
        let mut u = self.public_url.clone();
        u.set_path(&format!("/activate/{}", token.as_str()));
        u.to_string()
    }

    async fn audit(
        &self,
        kind: Kind,
        outcome: Outcome,
        person: Option<&str>,
        detail: serde_json::Value,
        now: i64,
    ) {
        let e = Event::new(kind, outcome).person_opt(person).detail(detail);
        self.audit_log.record(e, now).await;
    }

    /// Whether the browser's login (if any) is an operator's, at substantial or higher.
    pub async fn operator(&self, login: Option<&Login>) -> Result<OperatorCheck, OfficeError> {
        let Some(login) = login else { return Ok(OperatorCheck::NotLoggedIn) };
        if login.acr < AssuranceLevel::Substantial {
            return Ok(OperatorCheck::LevelTooLow);
        }
        Ok(match self.store.operator(&login.person_id).await? {
            Some(op) => OperatorCheck::Operator(op),
            None => OperatorCheck::NotOperator,
        })
    }

    /// Forgets what is not needed any more (the background purge, once per period).
    pub async fn purge(&self, now: i64) -> Result<u64, OfficeError> {
        Ok(self.store.purge_registrations(now, KEEP_DONE_S).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_code_has_enough_entropy_and_no_lookalikes() {
        let bits = (CODE_ALPHABET.len() as f64).log2() * CODE_LEN as f64;
        assert!(bits >= 50.0, "{bits} bits");
        for c in [b'0', b'O', b'1', b'I', b'L'] {
            assert!(!CODE_ALPHABET.contains(&c));
        }
        let code = ActivationCode::generate();
        let g = code.grouped();
        assert_eq!(g.len(), 14);
        assert_eq!(ActivationCode::parse(&g.to_lowercase()), Some(code.clone()));
        assert_eq!(ActivationCode::parse(&g.replace('-', " ")), Some(code));
        assert!(ActivationCode::parse("ABCD-EFGH-IJK0").is_none());
        assert!(ActivationCode::parse("ABCD").is_none());
    }
}
