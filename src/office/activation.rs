//! The person's side of a registration (SPEC §7): the mailed link, the paper code typed on its
//! page, and the end of the activation once a key is set up (`keys::enrol` in between).

use super::{ActivationCode, LinkToken, OfficeError, Offices, MAX_CODE_FAILURES};
use crate::audit::{Kind, Outcome};
use crate::crypto;
use crate::i18n::Lang;
use crate::session::Enrolment;
use crate::store::{Registration, RegistrationStatus, StoreError};

/// What an activation link's page shows.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkState {
    /// The code is asked; the link works until `expires_at`.
    Open {
        expires_at: i64,
    },
    Expired,
    /// Too many wrong codes: the office re-issues.
    Locked,
    /// Used already or voided by a re-issue.
    Unusable,
    /// Not a link of ours.
    Unknown,
}

/// The result of typing a code on the activation page.
#[derive(Debug)]
pub enum Opening {
    /// The registration opened: the enrolment to keep in the session (the username and
    /// password next), and the person's language as the office noted it.
    Opened {
        enrolment: Box<Enrolment>,
        lang: Lang,
    },
    /// No code typed: a link alone opens nothing (nothing counted). `expires_at` of the link,
    /// if it is ours.
    CodeRequired {
        expires_at: Option<i64>,
    },
    /// Wrong code, counted: `left` tries before the link locks.
    Wrong {
        left: i64,
        expires_at: i64,
    },
    Locked,
    Expired,
    /// Already used, voided by a re-issue, or not a link of ours (one answer for all three).
    Unusable,
}

impl Offices {
    /// The registration behind a link, if the link is ours (whatever its state).
    async fn by_link(&self, raw: &str) -> Result<Option<Registration>, OfficeError> {
        if raw.len() != 43 {
            return Ok(None);
        }
        Ok(self.store.registration_by_link(&LinkToken::hash_of(raw)).await?)
    }

    /// What the link's page shows at `now`.
    pub async fn link(&self, raw: &str, now: i64) -> Result<LinkState, OfficeError> {
        let Some(reg) = self.by_link(raw).await? else { return Ok(LinkState::Unknown) };
        Ok(match reg.status {
            RegistrationStatus::Issued if reg.expires_at > now => {
                LinkState::Open { expires_at: reg.expires_at }
            }
            RegistrationStatus::Issued => LinkState::Expired,
            RegistrationStatus::Locked => LinkState::Locked,
            _ => LinkState::Unusable,
        })
    }

    /// Checks the paper code for a link. Right: the registration opens (used once) and an
    /// enrolment starts. Wrong: counts, and the fifth wrong code locks the link until the office
    /// re-issues.
    pub async fn open(&self, raw_link: &str, code: &str, now: i64) -> Result<Opening, OfficeError> {
        if code.trim().is_empty() {
            let expires_at = self.by_link(raw_link).await?.map(|r| r.expires_at);
            return Ok(Opening::CodeRequired { expires_at });
        }
        let Some(reg) = self.by_link(raw_link).await? else { return Ok(Opening::Unusable) };
        match reg.status {
            RegistrationStatus::Issued if reg.expires_at > now => {}
            RegistrationStatus::Issued => return Ok(Opening::Expired),
            RegistrationStatus::Locked => return Ok(Opening::Locked),
            _ => return Ok(Opening::Unusable),
        }
        let right = match (ActivationCode::parse(code), &reg.code_hash) {
            (Some(c), Some(h)) => crypto::ct_eq(c.hash(&reg.id).as_bytes(), h.as_bytes()),
            _ => false,
        };
        let detail = serde_json::json!({ "registration": reg.id, "office": reg.office });
        if right {
            if !self.store.open_registration(&reg.id, now).await? {
                return Ok(Opening::Unusable);
            }
            self.audit(Kind::Activation, Outcome::CodeOk, reg.person_id.as_deref(), detail, now)
                .await;
            let reg = self.store.registration(&reg.id).await?.ok_or(OfficeError::Vanished)?;
            let person_id = reg.person_id.clone().ok_or_else(|| {
                StoreError::Corrupt(format!("registration {} issued without a person", reg.id))
            })?;
            let enrolment = Box::new(Enrolment {
                registration_id: Some(reg.id.clone()),
                person_id,
                account_id: None,
                at: now,
                ..Default::default()
            });
            return Ok(Opening::Opened { enrolment, lang: reg.lang });
        }
        let failures = self.store.registration_failure(&reg.id, MAX_CODE_FAILURES).await?;
        let locked = failures >= MAX_CODE_FAILURES;
        let kind = if locked { Kind::Lockout } else { Kind::Activation };
        self.audit(kind, Outcome::Failed, reg.person_id.as_deref(), detail, now).await;
        Ok(if locked {
            Opening::Locked
        } else {
            Opening::Wrong { left: MAX_CODE_FAILURES - failures, expires_at: reg.expires_at }
        })
    }

    /// The person finished: the registration is used up and its link forgotten.
    pub async fn finish(
        &self,
        registration_id: &str,
        person_id: &str,
        now: i64,
    ) -> Result<bool, OfficeError> {
        let ok = self.store.activate_registration(registration_id, person_id, now).await?;
        if ok {
            let detail = serde_json::json!({ "registration": registration_id });
            self.audit(Kind::Activation, Outcome::Ok, Some(person_id), detail, now).await;
        }
        Ok(ok)
    }
}
