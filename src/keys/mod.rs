//! Digital keys: username + password, then a second factor (SPEC §6), set up at activation or
//! from `/account` (SPEC §7). This module decides; `web::login`, `web::activate` and
//! `web::account` render. Where things are:
//! - [`login`]: the password step and the code checks of a login, with the throttling;
//! - [`challenge`]: the SMS code or card position a login asks for, opened and checked once;
//! - [`second_step`]: the second step of a login as one use case;
//! - [`account`]: usernames and passwords of new and re-activated accounts;
//! - [`enrol`]: setting up keys, step by step (the activation pages);
//! - [`manage`]: what `/account` shows, and removing a key;
//! - one file per kind of key: [`totp`], [`sms`], [`token`] (the paper card), [`webauthn`];
//!   and [`password`] (argon2id).

pub mod account;
pub mod challenge;
pub mod enrol;
pub mod login;
pub mod manage;
pub mod password;
pub mod second_step;
pub mod sms;
pub mod token;
pub mod totp;
pub mod webauthn;

pub use account::{check_username, create_account, normalize_username, reset_account};
pub use sms::{add_sms, mask_phone, parse_phone};
pub use token::add_token;
pub use totp::{add_totp, NewTotp};

use crate::assurance::{AssuranceLevel, Method};
use crate::audit::Audit;
use crate::config::LoginConfig;
use crate::crypto::{self, MasterKey};
use crate::metrics::Metrics;
use crate::session::{KeyStep, Login, Sessions};
/// A person's account of digital keys, as the activation pages show it.
pub use crate::store::Account;
use crate::store::{Store, StoreError};
use std::sync::Arc;

/// How long the second step may follow the password.
pub const KEY_STEP_TTL_S: i64 = 300;
/// Life of an SMS code or of an asked card position.
pub const SMS_TTL_S: i64 = 300;
/// Codes on a token card.
pub const CARD_POSITIONS: i64 = token::POSITIONS;
/// How recent a login must be to change the account's keys (add or remove one).
pub const REAUTH_S: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A rule the input breaks: the message key of the rule (the CLI's answer; the pages get
    /// decisions instead).
    #[error("{0}")]
    Invalid(&'static str),
    /// A security key's registration could not even start (webauthn-rs refused its options).
    #[error("a security key registration could not start")]
    Webauthn(#[source] webauthn::WebauthnError),
    #[error(transparent)]
    Office(#[from] crate::office::OfficeError),
}

#[derive(Debug)]
pub enum PasswordCheck {
    /// Password right; the person now proves the second factor with one of `methods`.
    Ok {
        step: KeyStep,
        methods: Vec<Method>,
    },
    /// Wrong username or password (one answer for both).
    Wrong,
    Locked {
        until: i64,
    },
}

#[derive(Debug)]
pub enum CodeCheck {
    Ok(Login),
    Wrong,
    /// The code was right but its time step was already used (a replay).
    Replayed,
    Locked {
        until: i64,
    },
    /// The account has no active key of that kind.
    NoSuchKey,
    /// An SMS or card code was posted without (or after) its challenge.
    NoChallenge,
}

#[derive(Debug)]
pub enum ChallengeStart {
    SmsSent {
        id: String,
        phone: String,
    },
    TokenPosition {
        id: String,
        position: i64,
    },
    NoSuchKey,
    /// Every position of the card was used: the office issues a new one.
    CardUsedUp,
}

/// Whether `login` may change the account's keys, adding or removing one (SPEC §7): it was at
/// substantial or higher and at most [`REAUTH_S`] ago. Removing needs the same as adding: a
/// stolen or forgotten session, or a login with a weaker key, must not be able to take away
/// the person's stronger key. The one rule for every key change.
pub fn recent_strong_login(login: &Login, now: i64) -> bool {
    login.acr >= AssuranceLevel::Substantial && now - login.auth_time <= REAUTH_S
}

/// The keys of the broker: logins with them, setting them up, managing them. Every use case
/// takes the time of its request (`now`); the service never reads a clock.
pub struct KeyService {
    store: Store,
    /// The browser sessions a key login's steps are kept in: the second step saves its
    /// challenge there itself, so that no handler passes a session store.
    sessions: Sessions,
    master: MasterKey,
    cfg: LoginConfig,
    /// Verified against when the username is unknown, so both cost the same time: made with
    /// the configured cost, which every account's hash has or gets at its next right password
    /// (see [`login`]).
    dummy_hash: String,
    /// Security keys, when the public URL allows WebAuthn (a domain name).
    pub passkeys: Option<webauthn::Passkeys>,
    audit: Audit,
    /// Counts password verifications (`/metrics`), when the broker has metrics.
    metrics: Option<Arc<Metrics>>,
}

impl KeyService {
    pub fn new(
        store: Store,
        sessions: Sessions,
        master: MasterKey,
        cfg: LoginConfig,
        audit: Audit,
    ) -> Result<Self, KeyError> {
        let dummy_hash =
            password::hash(cost(&cfg), &crypto::random_token(16)).map_err(KeyError::Hash)?;
        let passkeys = None;
        Ok(Self { store, sessions, master, cfg, dummy_hash, passkeys, metrics: None, audit })
    }

    /// Counts each password verification in `metrics` (tests prove with it that known and
    /// unknown usernames cost the same argon2 work).
    pub fn with_metrics(mut self, metrics: &Arc<Metrics>) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// Enables security keys for this public origin (see [`webauthn::Passkeys::new`]).
    pub fn with_passkeys(mut self, public_url: &url::Url) -> Self {
        self.passkeys = webauthn::Passkeys::new(public_url);
        if self.passkeys.is_none() {
            tracing::warn!(%public_url, "security keys (WebAuthn) need a domain name in [server] public_url; not offered");
        }
        self
    }

    /// Second-factor kinds the account can use now, in display order.
    pub async fn active_methods(&self, account_id: &str) -> Result<Vec<Method>, StoreError> {
        let keys = self.store.keys_of_account(account_id).await?;
        Ok(Method::KEY_FACTORS
            .into_iter()
            .filter(|m| keys.iter().any(|k| k.is_active(*m)))
            .collect())
    }

    pub fn cost(&self) -> password::Cost {
        cost(&self.cfg)
    }
}

pub fn cost(cfg: &LoginConfig) -> password::Cost {
    password::Cost { m_kib: cfg.argon2_m_kib, t: cfg.argon2_t, p: cfg.argon2_p }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(acr: AssuranceLevel, auth_time: i64) -> Login {
        Login {
            person_id: "p".into(),
            auth_time,
            acr,
            amr: vec!["pwd".into()],
            method: Method::Totp,
            eidas_person_identifier: None,
            eudiw_issuing_country: None,
        }
    }

    #[test]
    fn keys_change_only_after_a_recent_strong_login() {
        let now = 1_800_000_000;
        assert!(recent_strong_login(&login(AssuranceLevel::Substantial, now), now));
        assert!(recent_strong_login(&login(AssuranceLevel::High, now - REAUTH_S), now));
        assert!(!recent_strong_login(&login(AssuranceLevel::Substantial, now - REAUTH_S - 1), now));
        assert!(!recent_strong_login(&login(AssuranceLevel::Low, now), now), "card or SMS login");
    }
}
