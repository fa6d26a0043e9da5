//! A person's own key management at `/account` (SPEC §7, §9): what they see, and the rules for
//! changing keys — one re-authentication rule for adding and removing
//! ([`super::recent_strong_login`]), and never the last key.

use super::{KeyError, KeyService};
use crate::audit::{Event, Kind, Outcome};
use crate::session::{Enrolment, Login, Session};
use crate::store::{AuditRow, KeyRow, KeyStatus, Person};

/// What `/account` shows.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub person: Person,
    /// Whether the person has a digital-key account at all.
    pub has_account: bool,
    /// Active keys, oldest first.
    pub keys: Vec<KeyRow>,
    /// The person's recent logins, newest first.
    pub logins: Vec<AuditRow>,
}

/// The answer to a key change.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyChange {
    /// Removed.
    Removed,
    /// Adding may start: the enrolment to keep in the session.
    Adding(Box<Enrolment>),
    /// Log in again (substantial or higher) first.
    LogInAgain,
    /// The last active key stays: the person would be locked out.
    LastKey,
    /// Not a key of this person's (or no digital-key account).
    NotFound,
}

impl KeyService {
    pub async fn account_view(&self, login: &Login) -> Result<Option<AccountView>, KeyError> {
        let Some(person) = self.store.person(&login.person_id).await? else { return Ok(None) };
        let logins = self
            .store
            .audit_events(Some(&person.id), 0, 50)
            .await?
            .into_iter()
            .filter(|e| e.kind == Kind::Login.as_str())
            .collect();
        let account = self.store.account_by_person(&person.id).await?;
        let keys = match &account {
            Some(a) => self.store.keys_of_account(&a.id).await?,
            None => Vec::new(),
        };
        let keys = keys.into_iter().filter(|k| k.status == KeyStatus::Active).collect();
        Ok(Some(AccountView { person, has_account: account.is_some(), keys, logins }))
    }

    /// Adding a key: after a recent strong login, an enrolment for the person's account.
    pub async fn start_adding(&self, login: &Login, now: i64) -> Result<KeyChange, KeyError> {
        if !super::recent_strong_login(login, now) {
            return Ok(KeyChange::LogInAgain);
        }
        let account = self.store.account_by_person(&login.person_id).await?;
        Ok(KeyChange::Adding(Box::new(Enrolment {
            registration_id: None,
            person_id: login.person_id.clone(),
            account_id: account.map(|a| a.id),
            at: now,
            ..Default::default()
        })))
    }

    /// Removing a key: after a recent strong login, never the last active one (one atomic
    /// statement, so two removals at once cannot both succeed). The person's other broker
    /// sessions end (a lost device); `session`, which just logged in again, stays.
    pub async fn remove(
        &self,
        session: &Session,
        key_id: &str,
        address: &str,
        now: i64,
    ) -> Result<KeyChange, KeyError> {
        let Some(login) = &session.data.login else { return Ok(KeyChange::NotFound) };
        if !super::recent_strong_login(login, now) {
            return Ok(KeyChange::LogInAgain);
        }
        let Some(account) = self.store.account_by_person(&login.person_id).await? else {
            return Ok(KeyChange::NotFound);
        };
        let keys = self.store.keys_of_account(&account.id).await?;
        let Some(key) = keys.into_iter().find(|k| k.id == key_id) else {
            return Ok(KeyChange::NotFound);
        };
        if !self.store.revoke_key_unless_last(key_id, &account.id, now).await? {
            return Ok(KeyChange::LastKey);
        }
        crate::oidc::backchannel::end_other_sessions(&self.store, session, &login.person_id, now)
            .await?;
        let e = Event::new(Kind::KeyChange, Outcome::Removed)
            .person(&login.person_id)
            .address(address)
            .factor(key.kind);
        self.audit.record(e, now).await;
        Ok(KeyChange::Removed)
    }
}
