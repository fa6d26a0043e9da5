//! Digital keys: username + password, then a second factor (SPEC §6). This module decides;
//! `web::login` renders.
//!
//! Throttling is per account (the username as typed, whether or not it exists, so unknown
//! usernames behave exactly like wrong passwords) and per client address, in the database so
//! every replica counts the same failures.

pub mod password;
pub mod totp;

use crate::assurance::{AssuranceLevel, Method};
use crate::clock::Clock;
use crate::config::LoginConfig;
use crate::crypto::{self, MasterKey};
use crate::session::{KeyStep, Login};
use crate::store::{Account, AuditEvent, KeyRow, Store, StoreError};
use std::time::Duration;

/// How long the second step may follow the password.
pub const KEY_STEP_TTL_S: i64 = 300;
const MAX_USERNAME: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("{0}")]
    Invalid(&'static str),
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
}

pub struct KeyService {
    store: Store,
    master: MasterKey,
    clock: Clock,
    cfg: LoginConfig,
    /// Verified against when the username is unknown, so both cost the same time.
    dummy_hash: String,
}

pub fn normalize_username(u: &str) -> String {
    u.trim().to_lowercase()
}

impl KeyService {
    pub fn new(
        store: Store,
        master: MasterKey,
        clock: Clock,
        cfg: LoginConfig,
    ) -> Result<Self, KeyError> {
        let dummy_hash =
            password::hash(cost(&cfg), &crypto::random_token(16)).map_err(KeyError::Hash)?;
        Ok(Self { store, master, clock, cfg, dummy_hash })
    }

    fn account_key(username: &str) -> String {
        format!("acct:{}", crypto::token_hash(username))
    }

    fn address_key(address: &str) -> String {
        format!("addr:{address}")
    }

    async fn lock_of(
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
    async fn fail(
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
    ) -> Result<PasswordCheck, KeyError> {
        let now = self.clock.now();
        let username = normalize_username(username);
        if let Some(until) = self.lock_of(&username, address, now).await? {
            return Ok(PasswordCheck::Locked { until });
        }
        self.slow_down(address, now).await?;
        let account = if username.is_empty() || username.len() > MAX_USERNAME {
            None
        } else {
            self.store.account_by_username(&username).await?
        };
        let hash = account.as_ref().map_or(self.dummy_hash.clone(), |a| a.password_hash.clone());
        let right =
            password::verify_blocking(hash, password.to_string()).await && account.is_some();
        let Some(account) = account.filter(|_| right) else {
            let locked = self.fail(&username, address, now).await?;
            self.audit_failure(None, "password", locked).await;
            return Ok(match locked {
                Some(until) => PasswordCheck::Locked { until },
                None => PasswordCheck::Wrong,
            });
        };
        let methods = self.active_methods(&account.id).await?;
        Ok(PasswordCheck::Ok {
            step: KeyStep {
                account_id: account.id.clone(),
                person_id: account.person_id.clone(),
                username,
                at: now,
            },
            methods,
        })
    }

    /// Second-factor kinds the account can use now, in display order.
    pub async fn active_methods(&self, account_id: &str) -> Result<Vec<Method>, StoreError> {
        let keys = self.store.keys_of_account(account_id).await?;
        Ok(Method::KEY_FACTORS
            .into_iter()
            .filter(|m| keys.iter().any(|k| k.status == "active" && k.kind == m.as_str()))
            .collect())
    }

    pub async fn check_code(
        &self,
        step: &KeyStep,
        method: Method,
        code: &str,
        address: &str,
    ) -> Result<CodeCheck, KeyError> {
        let now = self.clock.now();
        if let Some(until) = self.lock_of(&step.username, address, now).await? {
            return Ok(CodeCheck::Locked { until });
        }
        if method != Method::Totp {
            return Ok(CodeCheck::NoSuchKey);
        }
        let keys: Vec<KeyRow> = self
            .store
            .keys_of_account(&step.account_id)
            .await?
            .into_iter()
            .filter(|k| k.kind == "totp" && k.status == "active")
            .collect();
        if keys.is_empty() {
            return Ok(CodeCheck::NoSuchKey);
        }
        let mut replayed = false;
        for key in &keys {
            let Some(enc) = &key.secret_enc else { continue };
            let secret = self.master.decrypt(&totp_purpose(&key.id), enc)?;
            if let Some(s) = totp::matching_step(&secret, code, now) {
                if self.store.advance_totp_step(&key.id, s).await? {
                    self.store.clear_failures(&Self::account_key(&step.username)).await?;
                    return Ok(CodeCheck::Ok(Login {
                        person_id: step.person_id.clone(),
                        auth_time: now,
                        acr: AssuranceLevel::Substantial,
                        amr: vec!["pwd".into(), "totp".into()],
                        method: Method::Totp,
                        eidas_person_identifier: None,
                    }));
                }
                replayed = true;
            }
        }
        let locked = self.fail(&step.username, address, now).await?;
        self.audit_failure(Some(&step.person_id), "totp", locked).await;
        Ok(match (locked, replayed) {
            (Some(until), _) => CodeCheck::Locked { until },
            (None, true) => CodeCheck::Replayed,
            (None, false) => CodeCheck::Wrong,
        })
    }

    async fn audit_failure(&self, person_id: Option<&str>, method: &str, locked: Option<i64>) {
        let e = AuditEvent {
            id: crypto::random_id(),
            at: self.clock.now(),
            kind: if locked.is_some() { "lockout".into() } else { "login".into() },
            outcome: "failed".into(),
            person_id: person_id.map(str::to_string),
            method: Some(method.into()),
            detail: "{}".into(),
            ..Default::default()
        };
        if let Err(err) = self.store.insert_audit(&e).await {
            tracing::error!(error = %err, "audit event could not be stored");
        }
    }

    pub fn cost(&self) -> password::Cost {
        cost(&self.cfg)
    }
}

pub fn cost(cfg: &LoginConfig) -> password::Cost {
    password::Cost { m_kib: cfg.argon2_m_kib, t: cfg.argon2_t, p: cfg.argon2_p }
}

fn totp_purpose(key_id: &str) -> String {
    format!("totp:{key_id}")
}

/// Creates the digital-key account of a person (username + password).
pub async fn create_account(
    store: &Store,
    cfg: &LoginConfig,
    person_id: &str,
    username: &str,
    password: &str,
    now: i64,
) -> Result<Account, KeyError> {
    let username = normalize_username(username);
    if username.len() < 3
        || username.len() > MAX_USERNAME
        || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(KeyError::Invalid("username-rules"));
    }
    password::check_new(password, &username).map_err(KeyError::Invalid)?;
    let hash =
        password::hash_blocking(cost(cfg), password.to_string()).await.map_err(KeyError::Hash)?;
    let account = Account {
        id: crypto::random_id(),
        person_id: person_id.to_string(),
        username,
        password_hash: hash,
    };
    store.insert_account(&account, now).await?;
    Ok(account)
}

/// A new TOTP key, active at once (CLI enrolment; the office journey confirms first).
pub struct NewTotp {
    pub key_id: String,
    pub secret_base32: String,
    pub otpauth_uri: String,
}

pub async fn add_totp(
    store: &Store,
    master: &MasterKey,
    account: &Account,
    status: &str,
    now: i64,
) -> Result<NewTotp, KeyError> {
    let secret = totp::generate_secret();
    let key_id = crypto::random_id();
    store
        .insert_key(&KeyRow {
            id: key_id.clone(),
            account_id: account.id.clone(),
            kind: "totp".into(),
            status: status.into(),
            secret_enc: Some(master.encrypt(&totp_purpose(&key_id), &secret)?),
            phone: None,
            data: None,
            last_step: 0,
            created_at: now,
        })
        .await?;
    Ok(NewTotp {
        key_id,
        secret_base32: totp::secret_base32(&secret),
        otpauth_uri: totp::otpauth_uri(&secret, &account.username),
    })
}
