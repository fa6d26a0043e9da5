//! The password step and the code checks of a digital-key login (SPEC §6).
//!
//! Throttling is per account (the username as typed, whether or not it exists, so unknown
//! usernames behave exactly like wrong passwords) and per client address, in the database so
//! every replica counts the same failures.

use super::{password, webauthn, CodeCheck, KeyError, KeyService, PasswordCheck};
use crate::assurance::{AssuranceLevel, Method};
use crate::audit::{Event, Factor, Kind, Outcome};
use crate::crypto;
use crate::session::{KeyStep, Login};
use crate::store::{Account, StoreError};
use std::time::Duration;

/// Usernames longer than this are never looked up.
pub const MAX_USERNAME: usize = 64;

impl KeyService {
    pub(super) fn account_key(username: &str) -> String {
        format!("acct:{}", crypto::token_hash(username))
    }

    fn address_key(address: &str) -> String {
        format!("addr:{address}")
    }

    pub(super) async fn lock_of(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let a = self.store.locked_until(&Self::account_key(username), now).await?;
        let b = self.store.locked_until(&Self::address_key(address), now).await?;
        Ok(a.max(b))
    }

    /// Slows down an address with many recent failures, before any work is done.
    async fn slow_down(&self, address: &str, now: i64) -> Result<(), StoreError> {
        let n =
            self.store.failure_count(&Self::address_key(address), now, self.cfg.window_s).await?;
        let over = n - self.cfg.address_slowdown_after;
        if over > 0 {
            tokio::time::sleep(Duration::from_millis((over as u64 * 250).min(3000))).await;
        }
        Ok(())
    }

    /// Counts a failure for the account and the address; returns a lock if one started.
    pub(super) async fn fail(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let c = &self.cfg;
        let acct = self
            .store
            .record_failure(&Self::account_key(username), now, c.window_s, c.max_failures, c.lock_s)
            .await?;
        let addr = self
            .store
            .record_failure(
                &Self::address_key(address),
                now,
                c.window_s,
                c.address_max_failures,
                c.lock_s,
            )
            .await?;
        Ok(acct.locked_until.max(addr.locked_until))
    }

    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        address: &str,
        now: i64,
    ) -> Result<PasswordCheck, KeyError> {
        let username = super::normalize_username(username);
        if let Some(until) = self.lock_of(&username, address, now).await? {
            return Ok(PasswordCheck::Locked { until });
        }
        self.slow_down(address, now).await?;
        let account = if username.is_empty() || username.len() > MAX_USERNAME {
            None
        } else {
            self.store.account_by_username(&username).await?
        };
        let right = self.verify_password(account.as_ref(), password).await;
        let Some(account) = account.filter(|_| right) else {
            let locked = self.fail(&username, address, now).await?;
            self.audit_failure(None, Factor::Password, locked, now).await;
            return Ok(match locked {
                Some(until) => PasswordCheck::Locked { until },
                None => PasswordCheck::Wrong,
            });
        };
        self.upgrade_hash(&account, password).await;
        let methods = self.active_methods(&account.id).await?;
        Ok(PasswordCheck::Ok {
            step: KeyStep {
                account_id: account.id.clone(),
                person_id: account.person_id.clone(),
                username,
                at: now,
                challenge: None,
                webauthn: None,
            },
            methods,
        })
    }

    /// The one argon2 verification of a password step, whether the username exists or not: the
    /// account's hash, or else the dummy hash made with the same configured cost. Nothing before
    /// it depends on the account (the lock and slow-down look at the username as typed and the
    /// address), so both paths cost the same. False for an unknown username whatever was typed.
    async fn verify_password(&self, account: Option<&Account>, password: &str) -> bool {
        let stored = account.map_or(&self.dummy_hash, |a| &a.password_hash);
        let configured = password::uses_cost(stored, self.cost());
        let right = password::verify_blocking(stored.clone(), password.to_string()).await;
        if let Some(m) = &self.metrics {
            m.password_verification(configured);
        }
        right && account.is_some()
    }

    /// Re-hashes a right password whose hash has another cost than the configured one (made
    /// before a cost change), so that every account converges to the dummy hash's cost.
    async fn upgrade_hash(&self, account: &Account, password: &str) {
        if password::uses_cost(&account.password_hash, self.cost()) {
            return;
        }
        let hash = match password::hash_blocking(self.cost(), password.to_string()).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "password re-hash failed");
                return;
            }
        };
        let upgraded = Account { password_hash: hash, ..account.clone() };
        if let Err(e) = self.store.update_account(&upgraded).await {
            tracing::error!(error = %e, "re-hashed password could not be stored");
        }
    }

    /// Checks a code for the second step: a TOTP code at once, an SMS or card code against its
    /// open challenge ([`super::challenge`]).
    pub async fn check_code(
        &self,
        step: &KeyStep,
        method: Method,
        code: &str,
        address: &str,
        now: i64,
    ) -> Result<CodeCheck, KeyError> {
        if let Some(until) = self.lock_of(&step.username, address, now).await? {
            return Ok(CodeCheck::Locked { until });
        }
        if matches!(method, Method::Sms | Method::Token) {
            return self.check_challenge(step, method, code, address, now).await;
        }
        if method != Method::Totp {
            return Ok(CodeCheck::NoSuchKey);
        }
        let keys: Vec<_> = self
            .store
            .keys_of_account(&step.account_id)
            .await?
            .into_iter()
            .filter(|k| k.is_active(Method::Totp))
            .collect();
        if keys.is_empty() {
            return Ok(CodeCheck::NoSuchKey);
        }
        let mut replayed = false;
        for key in &keys {
            let Some(enc) = &key.secret_enc else { continue };
            let secret = self.master.decrypt(&super::totp::purpose(&key.id), enc)?;
            if let Some(s) = super::totp::matching_step(&secret, code, now) {
                if self.store.advance_totp_step(&key.id, s).await? {
                    self.store.clear_failures(&Self::account_key(&step.username)).await?;
                    return Ok(CodeCheck::Ok(key_login(step, Method::Totp, now)));
                }
                replayed = true;
            }
        }
        let locked = self.fail(&step.username, address, now).await?;
        self.audit_failure(Some(&step.person_id), Method::Totp.into(), locked, now).await;
        Ok(match (locked, replayed) {
            (Some(until), _) => CodeCheck::Locked { until },
            (None, true) => CodeCheck::Replayed,
            (None, false) => CodeCheck::Wrong,
        })
    }

    /// Checks a security key's answer against the challenge the session kept (taken out of the
    /// session by the caller before this call, so an answer is never checked twice).
    pub async fn check_webauthn(
        &self,
        step: &KeyStep,
        state: Option<&serde_json::Value>,
        answer: &str,
        address: &str,
        now: i64,
    ) -> Result<CodeCheck, KeyError> {
        if let Some(until) = self.lock_of(&step.username, address, now).await? {
            return Ok(CodeCheck::Locked { until });
        }
        let Some(pk) = &self.passkeys else { return Ok(CodeCheck::NoSuchKey) };
        let Some(state) = state else { return Ok(CodeCheck::NoChallenge) };
        match pk.finish_authentication(&self.store, &step.account_id, state, answer).await {
            Ok(()) => {
                self.store.clear_failures(&Self::account_key(&step.username)).await?;
                Ok(CodeCheck::Ok(key_login(step, Method::Webauthn, now)))
            }
            Err(webauthn::WebauthnError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::info!(error = %e, "security key answer refused");
                let locked = self.fail(&step.username, address, now).await?;
                self.audit_failure(Some(&step.person_id), Method::Webauthn.into(), locked, now)
                    .await;
                Ok(match locked {
                    Some(until) => CodeCheck::Locked { until },
                    None => CodeCheck::Wrong,
                })
            }
        }
    }

    pub(super) async fn audit_failure(
        &self,
        person_id: Option<&str>,
        factor: Factor,
        locked: Option<i64>,
        now: i64,
    ) {
        let kind = if locked.is_some() { Kind::Lockout } else { Kind::Login };
        let e = Event::new(kind, Outcome::Failed).person_opt(person_id).factor(factor);
        self.audit.record(e, now).await;
    }
}

/// The login a right second factor gives: the key's own level (SPEC §3), password plus key.
pub(super) fn key_login(step: &KeyStep, method: Method, now: i64) -> Login {
    Login {
        person_id: step.person_id.clone(),
        auth_time: now,
        acr: method.own_level().unwrap_or(AssuranceLevel::Low),
        amr: vec!["pwd".into(), method.as_str().into()],
        method,
        eidas_person_identifier: None,
        eudiw_issuing_country: None,
    }
}
