//! Setting up keys (SPEC §7): at activation, after the office's paper code, or from `/account`
//! after a fresh strong login. First the username and password (activation only), then one or
//! more keys, then finish. Between pages the [`Enrolment`] lives in the browser session: each
//! use case here changes it and says what the page shows next; the caller keeps it in the
//! session. `web::activate` renders.
//!
//! A key is never usable before the person proved they hold it: a TOTP key is pending until its
//! first code, an SMS key until the code sent to its number, a token card until its codes were
//! shown, a security key until its registration answer checked out.

use super::token::Card;
use super::totp::NewTotp;
use super::{sms, token, totp, webauthn, KeyError, KeyService};
use crate::assurance::Method;
use crate::audit::{Event, Kind, Outcome};
use crate::i18n::Lang;
use crate::office::Offices;
use crate::session::Enrolment;
use crate::store::{Account, StoreError};

/// An enrolment must be finished within an hour of its start.
pub const ENROL_TTL_S: i64 = 3600;

/// Where the enrolment of a browser stands.
#[derive(Debug, Clone)]
pub enum EnrolmentStage {
    /// None, or one older than [`ENROL_TTL_S`].
    None,
    /// The username and password are chosen next.
    ChoosingAccount,
    /// Keys are set up for this account.
    Keys(Account),
    /// The enrolment names an account that is not (any more) the person's.
    AccountGone,
}

/// Why the username and password were not set (the account page again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRefusal {
    /// The password and its confirmation differ.
    PasswordMismatch,
    /// A rule of the field (`username` or `password`) is broken: the rule's message key.
    Rule { field: &'static str, rule: &'static str },
    /// Another person has this username.
    UsernameTaken,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AccountChosen {
    /// Set (a new account, or new username and password for the person's): the keys next.
    Chosen,
    /// Not set; the page shows `username` again.
    Refused { refusal: AccountRefusal, username: String },
}

/// What the page of keys shows.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysView {
    /// The kinds that can be set up here, strongest first.
    pub offered: Vec<Method>,
    /// The kinds the account can log in with now.
    pub active: Vec<Method>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeyChosen {
    /// An authenticator-app key to scan; active after its first code.
    Totp(NewTotp),
    /// The mobile number to confirm (the office's, when the enrolment comes from one).
    Sms { phone: String },
    /// A card is made: its codes are shown on the next page (once).
    TokenCard,
    /// A security key's registration: the challenge for `navigator.credentials.create`.
    SecurityKey { challenge: String },
    /// Nothing offered here was chosen.
    NotOffered,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CardShown {
    /// The codes of the new card, made now and shown this once.
    Shown(Card),
    /// No card waits to be shown (shown already, or none chosen).
    NonePending,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TotpConfirmed {
    Added,
    /// No TOTP key waits for its first code.
    NonePending,
    /// Wrong code: the same key again (it stays pending).
    Wrong(NewTotp),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SmsStep {
    /// The code sent was right: the number is a key.
    Added,
    /// The code sent was wrong; it is used up, a new one must be sent to `phone`.
    Wrong { phone: String },
    /// A code was sent to `phone` (`masked` for the page).
    Sent { phone: String, masked: String },
    /// Not a mobile number in international form.
    InvalidNumber { phone: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityKeyAdded {
    Added,
    /// No challenge was open, or the answer did not check out.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentFinished {
    /// Not without a key: the person would have no way to log in.
    NeedOneKey,
    /// The office's registration is used up: the digital key is active.
    Activated,
    /// Keys were added from `/account`.
    KeysAdded,
}

impl KeyService {
    /// Where the enrolment kept in a session stands at `now`.
    pub async fn enrolment_stage(
        &self,
        enrolment: Option<&Enrolment>,
        now: i64,
    ) -> Result<EnrolmentStage, KeyError> {
        let Some(enrolment) = enrolment.filter(|e| now - e.at <= ENROL_TTL_S) else {
            return Ok(EnrolmentStage::None);
        };
        let Some(account_id) = &enrolment.account_id else {
            return Ok(EnrolmentStage::ChoosingAccount);
        };
        Ok(match self.store.account(account_id).await? {
            Some(a) if a.person_id == enrolment.person_id => EnrolmentStage::Keys(a),
            _ => EnrolmentStage::AccountGone,
        })
    }

    /// The username the account page starts with: the person's current one when they have an
    /// account (a new activation after a lost device), else none.
    pub async fn current_username(&self, enrolment: &Enrolment) -> Result<String, KeyError> {
        let account = self.store.account_by_person(&enrolment.person_id).await?;
        Ok(account.map(|a| a.username).unwrap_or_default())
    }

    /// Sets the username and password: a new account, or new ones for the person's account (a
    /// new activation after a lost device).
    pub async fn choose_account(
        &self,
        enrolment: &mut Enrolment,
        username: &str,
        password: &str,
        password_confirm: &str,
        now: i64,
    ) -> Result<AccountChosen, KeyError> {
        let set = if password == password_confirm {
            self.set_credentials(enrolment, username, password, now).await?
        } else {
            Err(AccountRefusal::PasswordMismatch)
        };
        match set {
            Ok(account_id) => {
                self.audit_key_change(Outcome::AccountSet, enrolment, None, now).await;
                enrolment.account_id = Some(account_id);
                Ok(AccountChosen::Chosen)
            }
            Err(refusal) => {
                let username = match username {
                    "" => self.current_username(enrolment).await?,
                    typed => typed.to_string(),
                };
                Ok(AccountChosen::Refused { refusal, username })
            }
        }
    }

    /// The account's id once the username and password are stored, or why they are not.
    async fn set_credentials(
        &self,
        enrolment: &Enrolment,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<Result<String, AccountRefusal>, KeyError> {
        let (store, cfg, person_id) = (&self.store, &self.cfg, &enrolment.person_id);
        let set = match store.account_by_person(person_id).await? {
            Some(account) => super::reset_account(store, cfg, &account, username, password).await,
            None => super::create_account(store, cfg, person_id, username, password, now).await,
        };
        match set {
            Ok(account) => Ok(Ok(account.id)),
            Err(KeyError::Invalid(rule)) => {
                let field = if rule.starts_with("username") { "username" } else { "password" };
                Ok(Err(AccountRefusal::Rule { field, rule }))
            }
            Err(KeyError::Store(StoreError::Conflict(_))) => Ok(Err(AccountRefusal::UsernameTaken)),
            Err(e) => Err(e),
        }
    }

    /// The kinds of key that can be set up here, strongest first: security keys only where
    /// WebAuthn works (a domain name).
    fn offered(&self) -> Vec<Method> {
        Method::KEY_FACTORS
            .into_iter()
            .filter(|m| *m != Method::Webauthn || self.passkeys.is_some())
            .collect()
    }

    pub async fn enrolment_keys(&self, account: &Account) -> Result<KeysView, KeyError> {
        Ok(KeysView { offered: self.offered(), active: self.active_methods(&account.id).await? })
    }

    /// Starts setting up the kind of key `kind` names.
    pub async fn choose_key(
        &self,
        enrolment: &mut Enrolment,
        account: &Account,
        kind: Option<&str>,
        now: i64,
    ) -> Result<KeyChosen, KeyError> {
        let kind = kind.and_then(Method::parse).filter(|m| self.offered().contains(m));
        Ok(match kind {
            Some(Method::Totp) => {
                let new = totp::start(&self.store, &self.master, account, now).await?;
                enrolment.totp_key = Some(new.key_id.clone());
                KeyChosen::Totp(new)
            }
            Some(Method::Sms) => {
                let phone = match &enrolment.registration_id {
                    Some(id) => self.store.registration(id).await?.map(|r| r.mobile),
                    None => None,
                };
                KeyChosen::Sms { phone: phone.unwrap_or_default() }
            }
            Some(Method::Token) => {
                token::start_card(&self.store, account, now).await?;
                KeyChosen::TokenCard
            }
            Some(Method::Webauthn) => {
                let Some(pk) = &self.passkeys else { return Ok(KeyChosen::NotOffered) };
                let (challenge, state) = pk
                    .start_registration(&self.store, account)
                    .await
                    .map_err(KeyError::Webauthn)?;
                enrolment.webauthn = Some(state);
                let challenge = serde_json::to_string(&challenge).unwrap_or_default();
                KeyChosen::SecurityKey { challenge }
            }
            _ => KeyChosen::NotOffered,
        })
    }

    /// Makes and shows the codes of the card chosen before (see [`token::start_card`]): once.
    pub async fn show_token_card(
        &self,
        enrolment: &mut Enrolment,
        account: &Account,
        now: i64,
    ) -> Result<CardShown, KeyError> {
        let Some(key_id) = token::pending_card(&self.store, &account.id).await? else {
            return Ok(CardShown::NonePending);
        };
        let Some(card) = token::issue_card(&self.store, &self.master, &account.id, &key_id).await?
        else {
            return Ok(CardShown::NonePending);
        };
        self.added(enrolment, Method::Token, now).await;
        Ok(CardShown::Shown(card))
    }

    /// The first code of the TOTP key shown: right, and the key is active.
    pub async fn confirm_totp(
        &self,
        enrolment: &mut Enrolment,
        account: &Account,
        code: &str,
        now: i64,
    ) -> Result<TotpConfirmed, KeyError> {
        let Some(key_id) = enrolment.totp_key.clone() else {
            return Ok(TotpConfirmed::NonePending);
        };
        if !totp::confirm(&self.store, &self.master, &account.id, &key_id, code, now).await? {
            return Ok(match totp::shown(&self.store, &self.master, account, &key_id).await? {
                Some(shown) => TotpConfirmed::Wrong(shown),
                None => TotpConfirmed::NonePending,
            });
        }
        enrolment.totp_key = None;
        self.added(enrolment, Method::Totp, now).await;
        Ok(TotpConfirmed::Added)
    }

    /// An SMS key: first the number (a code is sent to it, in `lang`), then that code. One
    /// code, one try.
    pub async fn sms_step(
        &self,
        enrolment: &mut Enrolment,
        account: &Account,
        code: &str,
        phone: &str,
        lang: Lang,
        now: i64,
    ) -> Result<SmsStep, KeyError> {
        let code = code.trim();
        if let (Some(challenge), false) = (enrolment.sms_challenge.clone(), code.is_empty()) {
            enrolment.sms_challenge = None;
            if sms::confirm(&self.store, &account.id, &challenge, code, now).await? {
                enrolment.sms_phone = None;
                self.added(enrolment, Method::Sms, now).await;
                return Ok(SmsStep::Added);
            }
            let phone = enrolment.sms_phone.clone().unwrap_or_default();
            return Ok(SmsStep::Wrong { phone });
        }
        let phone = phone.to_string();
        let Some(challenge) = sms::start_enrolment(&self.store, account, &phone, lang, now).await?
        else {
            return Ok(SmsStep::InvalidNumber { phone });
        };
        enrolment.sms_challenge = Some(challenge);
        enrolment.sms_phone = Some(phone.clone());
        Ok(SmsStep::Sent { masked: sms::mask_phone(&phone), phone })
    }

    /// The security key's answer to the registration `challenge` (taken out of the enrolment and
    /// kept by the caller before this call: it is used once, whatever the answer).
    pub async fn finish_security_key(
        &self,
        enrolment: &mut Enrolment,
        account: &Account,
        challenge: Option<serde_json::Value>,
        answer: &str,
        now: i64,
    ) -> Result<SecurityKeyAdded, KeyError> {
        let (Some(pk), Some(state)) = (&self.passkeys, challenge) else {
            return Ok(SecurityKeyAdded::Refused);
        };
        match pk.finish_registration(&self.store, account, &state, answer, now).await {
            Ok(_) => {
                self.added(enrolment, Method::Webauthn, now).await;
                Ok(SecurityKeyAdded::Added)
            }
            Err(webauthn::WebauthnError::Store(e)) => Err(e.into()),
            Err(e) => {
                tracing::info!(error = %e, "security key registration refused");
                Ok(SecurityKeyAdded::Refused)
            }
        }
    }

    /// Finishes: at least one active key, and the office's registration (if any) is used up.
    /// The caller ends the enrolment unless [`EnrolmentFinished::NeedOneKey`].
    pub async fn finish_enrolment(
        &self,
        offices: &Offices,
        enrolment: &Enrolment,
        account: &Account,
        now: i64,
    ) -> Result<EnrolmentFinished, KeyError> {
        if self.active_methods(&account.id).await?.is_empty() {
            return Ok(EnrolmentFinished::NeedOneKey);
        }
        let Some(registration_id) = &enrolment.registration_id else {
            return Ok(EnrolmentFinished::KeysAdded);
        };
        offices.finish(registration_id, &enrolment.person_id, now).await?;
        Ok(EnrolmentFinished::Activated)
    }

    /// A key of `kind` became active in this enrolment.
    async fn added(&self, enrolment: &mut Enrolment, kind: Method, now: i64) {
        self.audit_key_change(Outcome::Added, enrolment, Some(kind), now).await;
        enrolment.added.push(kind);
    }

    async fn audit_key_change(
        &self,
        outcome: Outcome,
        enrolment: &Enrolment,
        kind: Option<Method>,
        now: i64,
    ) {
        let mut e = Event::new(Kind::KeyChange, outcome).person(&enrolment.person_id);
        if let Some(m) = kind {
            e = e.factor(m);
        }
        self.audit.record(e, now).await;
    }
}
