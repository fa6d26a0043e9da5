//! Digital keys: username + password, then a second factor (SPEC §6). This module decides;
//! `web::login` renders.
//!
//! Throttling is per account (the username as typed, whether or not it exists, so unknown
//! usernames behave exactly like wrong passwords) and per client address, in the database so
//! every replica counts the same failures.

pub mod manage;
pub mod password;
pub mod second_step;
pub mod token;
pub mod totp;
pub mod webauthn;

use crate::assurance::{AssuranceLevel, Method};
use crate::audit::{Audit, Event, Factor, Kind, Outcome};
use crate::clock::Clock;
use crate::config::LoginConfig;
use crate::crypto::{self, MasterKey};
use crate::metrics::Metrics;
use crate::session::{KeyStep, Login};
use crate::store::{Account, Challenge, KeyRow, OutboxMessage, Store, StoreError};
use rand::seq::SliceRandom;
use rand::Rng;
use std::sync::Arc;
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

/// Life of an SMS code or of an asked card position.
pub const SMS_TTL_S: i64 = 300;
/// Codes on a token card.
pub const CARD_POSITIONS: i64 = token::POSITIONS;

fn challenge_hash(id: &str, code: &str) -> String {
    crypto::token_hash(&format!("{id}:{}", code.trim()))
}

/// A six-digit SMS code, uniform over 000000–999999 (`gen_range`, not `random() % 10^6`).
fn new_sms_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// How recent a login must be to change the account's keys (add or remove one).
pub const REAUTH_S: i64 = 600;

/// Whether `login` may change the account's keys, adding or removing one (SPEC §7): it was at
/// substantial or higher and at most [`REAUTH_S`] ago. Removing needs the same as adding: a
/// stolen or forgotten session, or a login with a weaker key, must not be able to take away
/// the person's stronger key. The one rule for every key change.
pub fn recent_strong_login(login: &Login, now: i64) -> bool {
    login.acr >= AssuranceLevel::Substantial && now - login.auth_time <= REAUTH_S
}

/// `+32 4** ** ** 12`-style: enough for the person to recognise their number.
pub fn mask_phone(phone: &str) -> String {
    let n = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i >= 4 && i + 2 < n && c.is_ascii_digit() { '*' } else { c })
        .collect()
}

/// A mobile number in international form: `+` and 8 to 15 digits (spaces allowed).
pub fn parse_phone(s: &str) -> Option<String> {
    let compact: String = s.chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '/')).collect();
    let digits = compact.strip_prefix('+')?;
    ((8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(compact)
}

pub struct KeyService {
    store: Store,
    master: MasterKey,
    clock: Clock,
    cfg: LoginConfig,
    /// Verified against when the username is unknown, so both cost the same time: made with
    /// the configured cost, which every account's hash has or gets at its next right password
    /// (see [`KeyService::verify_password`]).
    dummy_hash: String,
    /// Security keys, when the public URL allows WebAuthn (a domain name).
    pub passkeys: Option<webauthn::Passkeys>,
    audit: Audit,
    /// Counts password verifications (`/metrics`), when the broker has metrics.
    metrics: Option<Arc<Metrics>>,
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
        audit: Audit,
    ) -> Result<Self, KeyError> {
        let dummy_hash =
            password::hash(cost(&cfg), &crypto::random_token(16)).map_err(KeyError::Hash)?;
        let passkeys = None;
        Ok(Self { store, master, clock, cfg, dummy_hash, passkeys, metrics: None, audit })
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
        let right = self.verify_password(account.as_ref(), password).await;
        let Some(account) = account.filter(|_| right) else {
            let locked = self.fail(&username, address, now).await?;
            self.audit_failure(None, Factor::Password, locked).await;
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
        if matches!(method, Method::Sms | Method::Token) {
            return self.check_challenge(step, method, code, address, now).await;
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
        self.audit_failure(Some(&step.person_id), Method::Totp.into(), locked).await;
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
    ) -> Result<CodeCheck, KeyError> {
        let now = self.clock.now();
        if let Some(until) = self.lock_of(&step.username, address, now).await? {
            return Ok(CodeCheck::Locked { until });
        }
        let Some(pk) = &self.passkeys else { return Ok(CodeCheck::NoSuchKey) };
        let Some(state) = state else { return Ok(CodeCheck::NoChallenge) };
        match pk.finish_authentication(&self.store, &step.account_id, state, answer).await {
            Ok(()) => {
                self.store.clear_failures(&Self::account_key(&step.username)).await?;
                Ok(CodeCheck::Ok(Login {
                    person_id: step.person_id.clone(),
                    auth_time: now,
                    acr: AssuranceLevel::Substantial,
                    amr: vec!["pwd".into(), "webauthn".into()],
                    method: Method::Webauthn,
                    eidas_person_identifier: None,
                }))
            }
            Err(webauthn::WebauthnError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::info!(error = %e, "security key answer refused");
                let locked = self.fail(&step.username, address, now).await?;
                self.audit_failure(Some(&step.person_id), Method::Webauthn.into(), locked).await;
                Ok(match locked {
                    Some(until) => CodeCheck::Locked { until },
                    None => CodeCheck::Wrong,
                })
            }
        }
    }

    /// Opens a challenge for SMS (sends a code through the outbox) or the token card (picks an
    /// unused position). The caller keeps its id in the session.
    pub async fn start_challenge(
        &self,
        step: &KeyStep,
        method: Method,
    ) -> Result<ChallengeStart, KeyError> {
        let now = self.clock.now();
        let Some(key) = self
            .store
            .keys_of_account(&step.account_id)
            .await?
            .into_iter()
            .find(|k| k.kind == method.as_str() && k.status == "active")
        else {
            return Ok(ChallengeStart::NoSuchKey);
        };
        let id = crypto::random_id();
        match method {
            Method::Sms => {
                let phone = key.phone.clone().unwrap_or_default();
                let code = new_sms_code();
                self.store
                    .insert_challenge(
                        &Challenge {
                            id: id.clone(),
                            key_id: key.id.clone(),
                            kind: "sms".into(),
                            position: None,
                            code_hash: Some(challenge_hash(&id, &code)),
                            expires_at: now + SMS_TTL_S,
                            used_at: None,
                        },
                        now,
                    )
                    .await?;
                // The code is the only six-digit number in the text.
                let body = format!(
                    "CoZo: your login code is {code}. Valid for five minutes. Never share it."
                );
                self.store
                    .enqueue(&OutboxMessage {
                        id: crypto::random_id(),
                        channel: "sms".into(),
                        recipient: phone.clone(),
                        subject: None,
                        body,
                        created_at: now,
                        attempts: 0,
                        sent_at: None,
                    })
                    .await?;
                Ok(ChallengeStart::SmsSent { id, phone: mask_phone(&phone) })
            }
            Method::Token => {
                let free = self.store.unused_positions(&key.id).await?;
                if free.is_empty() {
                    return Ok(ChallengeStart::CardUsedUp);
                }
                // Uniform over the unused positions (`choose`, not `random() % len`).
                let Some(&position) = free.choose(&mut rand::rngs::OsRng) else {
                    return Ok(ChallengeStart::CardUsedUp);
                };
                self.store
                    .insert_challenge(
                        &Challenge {
                            id: id.clone(),
                            key_id: key.id.clone(),
                            kind: "token".into(),
                            position: Some(position),
                            code_hash: None,
                            expires_at: now + SMS_TTL_S,
                            used_at: None,
                        },
                        now,
                    )
                    .await?;
                Ok(ChallengeStart::TokenPosition { id, position })
            }
            _ => Ok(ChallengeStart::NoSuchKey),
        }
    }

    async fn check_challenge(
        &self,
        step: &KeyStep,
        method: Method,
        code: &str,
        address: &str,
        now: i64,
    ) -> Result<CodeCheck, KeyError> {
        let Some(id) = &step.challenge else { return Ok(CodeCheck::NoChallenge) };
        let Some(ch) = self.store.challenge(id).await? else { return Ok(CodeCheck::NoChallenge) };
        let keys = self.store.keys_of_account(&step.account_id).await?;
        let key_ok = keys
            .iter()
            .any(|k| k.id == ch.key_id && k.status == "active" && k.kind == method.as_str());
        if !key_ok || ch.kind != method.as_str() || ch.expires_at <= now {
            return Ok(CodeCheck::NoChallenge);
        }
        let code = code.trim();
        let right = match (method, ch.position, &ch.code_hash) {
            (Method::Sms, _, Some(h)) => {
                crypto::ct_eq(challenge_hash(&ch.id, code).as_bytes(), h.as_bytes())
            }
            (Method::Token, Some(pos), _) => {
                match self.store.token_code_hash(&ch.key_id, pos).await? {
                    Some((h, _)) => token::matches(&self.master, &ch.key_id, pos, code, &h),
                    None => false,
                }
            }
            _ => false,
        };
        if right {
            let fresh = match (method, ch.position) {
                (Method::Token, Some(pos)) => {
                    self.store.use_challenge(&ch.id, now).await?
                        && self.store.use_token_position(&ch.key_id, pos, now).await?
                }
                _ => self.store.use_challenge(&ch.id, now).await?,
            };
            if fresh {
                self.store.clear_failures(&Self::account_key(&step.username)).await?;
                return Ok(CodeCheck::Ok(Login {
                    person_id: step.person_id.clone(),
                    auth_time: now,
                    acr: AssuranceLevel::Low,
                    amr: vec!["pwd".into(), method.as_str().into()],
                    method,
                    eidas_person_identifier: None,
                }));
            }
        }
        let locked = self.fail(&step.username, address, now).await?;
        self.audit_failure(Some(&step.person_id), method.into(), locked).await;
        Ok(match (locked, right) {
            (Some(until), _) => CodeCheck::Locked { until },
            (None, true) => CodeCheck::Replayed,
            (None, false) => CodeCheck::Wrong,
        })
    }

    /// Records an audit event about keys (enrolment steps recorded by `web::activate` until they
    /// move here).
    pub async fn record(&self, e: Event, now: i64) {
        self.audit.record(e, now).await;
    }

    async fn audit_failure(&self, person_id: Option<&str>, factor: Factor, locked: Option<i64>) {
        let kind = if locked.is_some() { Kind::Lockout } else { Kind::Login };
        let e = Event::new(kind, Outcome::Failed).person_opt(person_id).factor(factor);
        self.audit.record(e, self.clock.now()).await;
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

/// Usernames: 3 to 64 of `a-z 0-9 . _ - @`, case-insensitive (SPEC §7: "rules shown").
pub fn check_username(username: &str) -> Result<String, KeyError> {
    let username = normalize_username(username);
    if username.len() < 3
        || username.len() > MAX_USERNAME
        || !username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(KeyError::Invalid("username-rules"));
    }
    Ok(username)
}

/// A new username and password for an existing account (activation after a lost device).
pub async fn reset_account(
    store: &Store,
    cfg: &LoginConfig,
    account: &Account,
    username: &str,
    password: &str,
) -> Result<Account, KeyError> {
    let username = check_username(username)?;
    password::check_new(password, &username).map_err(KeyError::Invalid)?;
    let hash =
        password::hash_blocking(cost(cfg), password.to_string()).await.map_err(KeyError::Hash)?;
    let account = Account {
        id: account.id.clone(),
        person_id: account.person_id.clone(),
        username,
        password_hash: hash,
    };
    store.update_account(&account).await?;
    Ok(account)
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
    let username = check_username(username)?;
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

/// A new SMS key for a mobile number.
pub async fn add_sms(
    store: &Store,
    account: &Account,
    phone: &str,
    now: i64,
) -> Result<String, KeyError> {
    let phone = parse_phone(phone).ok_or(KeyError::Invalid("phone-rules"))?;
    let key_id = crypto::random_id();
    store
        .insert_key(&KeyRow {
            id: key_id.clone(),
            account_id: account.id.clone(),
            kind: "sms".into(),
            status: "active".into(),
            secret_enc: None,
            phone: Some(phone),
            data: None,
            last_step: 0,
            created_at: now,
        })
        .await?;
    Ok(key_id)
}

/// A new token card, active at once: 24 numbered codes, shown once, stored as HMACs (see
/// [`token`]). For the CLI; the activation pages use [`start_token_card`] and
/// [`issue_token_card`].
pub async fn add_token(
    store: &Store,
    master: &MasterKey,
    account: &Account,
    now: i64,
) -> Result<std::collections::BTreeMap<i64, String>, KeyError> {
    let key_id = start_token_card(store, account, now).await?;
    issue_token_card(store, master, &account.id, &key_id)
        .await?
        .ok_or(KeyError::Invalid("token-card-issued-twice"))
}

/// The first half of a new card on the activation pages: a pending token key without codes
/// (not usable yet). Its codes are made and shown by [`issue_token_card`] on the page the
/// browser is sent to next, so the page with the codes is not the answer to a form post (a
/// reload there would post again) and is shown once. A pending card of the account not shown
/// yet is reused, so posting twice makes one card.
pub async fn start_token_card(
    store: &Store,
    account: &Account,
    now: i64,
) -> Result<String, KeyError> {
    let pending = store
        .keys_of_account(&account.id)
        .await?
        .into_iter()
        .find(|k| k.kind == "token" && k.status == "pending");
    if let Some(key) = pending {
        return Ok(key.id);
    }
    let key_id = crypto::random_id();
    store
        .insert_key(&KeyRow {
            id: key_id.clone(),
            account_id: account.id.clone(),
            kind: "token".into(),
            status: "pending".into(),
            secret_enc: None,
            phone: None,
            data: None,
            last_step: 0,
            created_at: now,
        })
        .await?;
    Ok(key_id)
}

/// The pending token card of the account, if one waits to be shown.
pub async fn pending_token_card(
    store: &Store,
    account_id: &str,
) -> Result<Option<String>, KeyError> {
    Ok(store
        .keys_of_account(account_id)
        .await?
        .into_iter()
        .find(|k| k.kind == "token" && k.status == "pending")
        .map(|k| k.id))
}

/// Makes the codes of a pending card and activates it, atomically and once: `None` when the
/// card is not pending any more (already shown, e.g. by a reload or a second tab).
pub async fn issue_token_card(
    store: &Store,
    master: &MasterKey,
    account_id: &str,
    key_id: &str,
) -> Result<Option<std::collections::BTreeMap<i64, String>>, KeyError> {
    let card: std::collections::BTreeMap<i64, String> =
        (1..=token::POSITIONS).map(|pos| (pos, token::new_code())).collect();
    let stored: Vec<(i64, String)> = card
        .iter()
        .map(|(pos, code)| (*pos, token::stored_form(master, key_id, *pos, code)))
        .collect();
    Ok(store.issue_token_card(key_id, account_id, &stored).await?.then_some(card))
}

/// Confirms a pending TOTP key with its first code; the key becomes active and that code's time
/// step counts as used. False: wrong code (the key stays pending and unusable).
pub async fn confirm_totp(
    store: &Store,
    master: &MasterKey,
    account_id: &str,
    key_id: &str,
    code: &str,
    now: i64,
) -> Result<bool, KeyError> {
    let Some(key) = store
        .keys_of_account(account_id)
        .await?
        .into_iter()
        .find(|k| k.id == key_id && k.kind == "totp" && k.status == "pending")
    else {
        return Ok(false);
    };
    let Some(enc) = &key.secret_enc else { return Ok(false) };
    let secret = master.decrypt(&totp_purpose(&key.id), enc)?;
    let Some(step) = totp::matching_step(&secret, code, now) else { return Ok(false) };
    Ok(store.activate_key(&key.id, account_id).await?
        && store.advance_totp_step(&key.id, step).await?)
}

/// Starts confirming a mobile number: a pending SMS key and a code sent through the outbox.
/// Returns the key id and the challenge id (kept in the session).
pub async fn start_sms_enrolment(
    store: &Store,
    account: &Account,
    phone: &str,
    lang: crate::i18n::Lang,
    now: i64,
) -> Result<(String, String), KeyError> {
    let phone = parse_phone(phone).ok_or(KeyError::Invalid("phone-rules"))?;
    let key_id = crypto::random_id();
    store
        .insert_key(&KeyRow {
            id: key_id.clone(),
            account_id: account.id.clone(),
            kind: "sms".into(),
            status: "pending".into(),
            secret_enc: None,
            phone: Some(phone.clone()),
            data: None,
            last_step: 0,
            created_at: now,
        })
        .await?;
    let id = crypto::random_id();
    let code = new_sms_code();
    store
        .insert_challenge(
            &Challenge {
                id: id.clone(),
                key_id: key_id.clone(),
                kind: "sms-enrol".into(),
                position: None,
                code_hash: Some(challenge_hash(&id, &code)),
                expires_at: now + SMS_TTL_S,
                used_at: None,
            },
            now,
        )
        .await?;
    let body = crate::i18n::Tr::new(lang).t1("sms-enrol-text", "code", &code);
    store
        .enqueue(&OutboxMessage {
            id: crypto::random_id(),
            channel: "sms".into(),
            recipient: phone,
            subject: None,
            body,
            created_at: now,
            attempts: 0,
            sent_at: None,
        })
        .await?;
    Ok((key_id, id))
}

/// Confirms the number with the code sent; the challenge is used once, right or wrong.
pub async fn confirm_sms(
    store: &Store,
    account_id: &str,
    challenge_id: &str,
    code: &str,
    now: i64,
) -> Result<bool, KeyError> {
    let Some(ch) = store.challenge(challenge_id).await? else { return Ok(false) };
    if ch.kind != "sms-enrol" || ch.expires_at <= now || ch.used_at.is_some() {
        return Ok(false);
    }
    let right = ch
        .code_hash
        .as_ref()
        .is_some_and(|h| crypto::ct_eq(challenge_hash(&ch.id, code).as_bytes(), h.as_bytes()));
    if !right {
        return Ok(false);
    }
    Ok(store.use_challenge(&ch.id, now).await?
        && store.activate_key(&ch.key_id, account_id).await?)
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

    #[test]
    fn sms_codes_are_six_digits() {
        for _ in 0..100 {
            let c = new_sms_code();
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
    }
}
