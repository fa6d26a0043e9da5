//! The second step of a digital-key login (SPEC §6): the person picks one of their keys the
//! client accepts and proves it (a TOTP code at once; an SMS code or a card position after a
//! first post without a code; a security key's answer after its challenge). One use case,
//! [`KeyService::second_step`]; `web::login` renders the [`SecondStep`] it returns.

use super::{ChallengeStart, CodeCheck, KeyError, KeyService, KEY_STEP_TTL_S};
use crate::assurance::Method;
use crate::policy::Allowed;
use crate::session::{KeyStep, Login, Session};

/// Why the code page is shown again.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// No such key on the account (or no method picked).
    NoSuchKey,
    /// The key exists but the client does not accept it (e.g. SMS for eHealth); nothing was
    /// sent or checked. The reasons are message keys.
    NotAccepted {
        reasons: Vec<String>,
    },
    /// Every position of the token card was used.
    CardUsedUp,
    Wrong,
    /// A right TOTP code whose time step was already used.
    Replayed,
    /// A code posted without (or after) its SMS or card challenge.
    NoChallenge,
    Locked {
        until: i64,
    },
}

/// What the person is told to do on the code page.
#[derive(Debug, Clone, PartialEq)]
pub enum StepNotice {
    SmsSent {
        masked_phone: String,
    },
    CardPosition {
        position: i64,
    },
    /// The security key's challenge (JSON for `navigator.credentials.get`).
    SecurityKey {
        challenge: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum SecondStep {
    LoggedIn(Login),
    /// The five minutes after the password are over: start again with the password.
    Expired,
    /// The code page again, with the key `chosen`, and a notice or an error.
    Again {
        chosen: Option<Method>,
        notice: Option<StepNotice>,
        error: Option<StepError>,
    },
}

/// The account's keys a client accepts: the active ones among `allowed`, and why others are not
/// offered (message keys).
#[derive(Debug, Clone, PartialEq)]
pub struct Usable {
    pub methods: Vec<Method>,
    pub reasons: Vec<String>,
}

impl KeyService {
    /// Whether the password step of this session is still open at `now`.
    pub fn step_is_live(step: Option<&KeyStep>, now: i64) -> bool {
        step.is_some_and(|s| now - s.at <= KEY_STEP_TTL_S)
    }

    /// The account's active keys that `allowed` (what the client's policy accepts) lets through,
    /// with the reasons when some are held back.
    pub async fn usable(&self, account_id: &str, allowed: &Allowed) -> Result<Usable, KeyError> {
        let mut methods = self.active_methods(account_id).await?;
        let before = methods.len();
        methods.retain(|m| allowed.methods.contains(m));
        let mut reasons = allowed.reasons.clone();
        if reasons.is_empty() && methods.len() < before {
            reasons.push(allowed.held_back_reason.to_string());
        }
        Ok(Usable { methods, reasons })
    }

    /// One post of the code form, with the keys the client accepts ([`KeyService::usable`]). The
    /// session keeps the open challenge; an answer to a security key's challenge
    /// is taken out of the session (and saved) before it is checked, so it is checked once.
    #[allow(clippy::too_many_arguments)]
    pub async fn second_step(
        &self,
        session: &mut Session,
        usable: &Usable,
        method: Option<&str>,
        code: &str,
        address: &str,
        now: i64,
    ) -> Result<SecondStep, KeyError> {
        if !Self::step_is_live(session.data.key_step.as_ref(), now) {
            session.data.key_step = None;
            self.sessions.save(session, now).await?;
            return Ok(SecondStep::Expired);
        }
        let Some(step) = session.data.key_step.clone() else { return Ok(SecondStep::Expired) };
        let again = |chosen, notice, error| SecondStep::Again { chosen, notice, error };
        let Some(method) =
            method.and_then(Method::parse).filter(|m| Method::KEY_FACTORS.contains(m))
        else {
            return Ok(again(None, None, Some(StepError::NoSuchKey)));
        };
        if !usable.methods.contains(&method) {
            let reasons = usable.reasons.clone();
            return Ok(again(None, None, Some(StepError::NotAccepted { reasons })));
        }
        let code = code.trim();
        let chosen = Some(method);
        if code.is_empty() && matches!(method, Method::Sms | Method::Token) {
            let notice = match self.start_challenge(&step, method, now).await? {
                ChallengeStart::SmsSent { id, phone } => {
                    set_challenge(session, id);
                    StepNotice::SmsSent { masked_phone: phone }
                }
                ChallengeStart::TokenPosition { id, position } => {
                    set_challenge(session, id);
                    StepNotice::CardPosition { position }
                }
                ChallengeStart::NoSuchKey => {
                    return Ok(again(chosen, None, Some(StepError::NoSuchKey)))
                }
                ChallengeStart::CardUsedUp => {
                    return Ok(again(chosen, None, Some(StepError::CardUsedUp)))
                }
            };
            self.sessions.save(session, now).await?;
            return Ok(again(chosen, Some(notice), None));
        }
        if method == Method::Webauthn && code.is_empty() {
            let started = match &self.passkeys {
                Some(pk) => pk.start_authentication(&self.store, &step.account_id).await.ok(),
                None => None,
            };
            let Some((challenge, state)) = started else {
                return Ok(again(chosen, None, Some(StepError::NoSuchKey)));
            };
            if let Some(s) = session.data.key_step.as_mut() {
                s.webauthn = Some(state);
            }
            self.sessions.save(session, now).await?;
            let challenge = serde_json::to_string(&challenge).unwrap_or_default();
            return Ok(again(chosen, Some(StepNotice::SecurityKey { challenge }), None));
        }
        let outcome = if method == Method::Webauthn {
            let state = session.data.key_step.as_mut().and_then(|s| s.webauthn.take());
            self.sessions.save(session, now).await?;
            self.check_webauthn(&step, state.as_ref(), code, address, now).await?
        } else {
            self.check_code(&step, method, code, address, now).await?
        };
        let error = match outcome {
            CodeCheck::Ok(login) => return Ok(SecondStep::LoggedIn(login)),
            CodeCheck::Wrong => StepError::Wrong,
            CodeCheck::Replayed => StepError::Replayed,
            CodeCheck::NoSuchKey => StepError::NoSuchKey,
            CodeCheck::NoChallenge => StepError::NoChallenge,
            CodeCheck::Locked { until } => StepError::Locked { until },
        };
        Ok(again(chosen, None, Some(error)))
    }
}

fn set_challenge(session: &mut Session, id: String) {
    if let Some(step) = session.data.key_step.as_mut() {
        step.challenge = Some(id);
    }
}
