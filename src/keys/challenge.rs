//! The one-time challenges of a login's second step: an SMS code sent through the outbox, or a
//! position of the token card asked. Each is opened by a post without a code, kept in the
//! session (its id), and checked once: right or wrong, it is used.

use super::{sms, token, ChallengeStart, CodeCheck, KeyError, KeyService, SMS_TTL_S};
use crate::assurance::Method;
use crate::crypto;
use crate::session::KeyStep;
use crate::store::{Challenge, OutboxMessage};
use rand::seq::SliceRandom;

impl KeyService {
    /// Opens a challenge for SMS (sends a code through the outbox) or the token card (picks an
    /// unused position). The caller keeps its id in the session.
    pub async fn start_challenge(
        &self,
        step: &KeyStep,
        method: Method,
        now: i64,
    ) -> Result<ChallengeStart, KeyError> {
        let Some(key) = self
            .store
            .keys_of_account(&step.account_id)
            .await?
            .into_iter()
            .find(|k| k.is_active(method))
        else {
            return Ok(ChallengeStart::NoSuchKey);
        };
        let id = crypto::random_id();
        match method {
            Method::Sms => {
                let phone = key.phone.clone().unwrap_or_default();
                let code = sms::new_code();
                self.store
                    .insert_challenge(
                        &Challenge {
                            id: id.clone(),
                            key_id: key.id.clone(),
                            kind: sms::LOGIN_CHALLENGE.into(),
                            position: None,
                            code_hash: Some(sms::code_hash(&id, &code)),
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
                Ok(ChallengeStart::SmsSent { id, phone: sms::mask_phone(&phone) })
            }
            Method::Token => {
                let free = self.store.unused_positions(&key.id).await?;
                // Uniform over the unused positions (`choose`, not `random() % len`).
                let Some(&position) = free.choose(&mut rand::rngs::OsRng) else {
                    return Ok(ChallengeStart::CardUsedUp);
                };
                self.store
                    .insert_challenge(
                        &Challenge {
                            id: id.clone(),
                            key_id: key.id.clone(),
                            kind: token::LOGIN_CHALLENGE.into(),
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

    /// Checks the code of the challenge kept in `step`: the key must still be active, the
    /// challenge of that kind and not expired; a right code counts once.
    pub(super) async fn check_challenge(
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
        let key_ok = keys.iter().any(|k| k.id == ch.key_id && k.is_active(method));
        if !key_ok || ch.kind != method.as_str() || ch.expires_at <= now {
            return Ok(CodeCheck::NoChallenge);
        }
        let code = code.trim();
        let right = match (method, ch.position, &ch.code_hash) {
            (Method::Sms, _, Some(h)) => {
                crypto::ct_eq(sms::code_hash(&ch.id, code).as_bytes(), h.as_bytes())
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
                return Ok(CodeCheck::Ok(super::login::key_login(step, method, now)));
            }
        }
        let locked = self.fail(&step.username, address, now).await?;
        self.audit_failure(Some(&step.person_id), method.into(), locked, now).await;
        Ok(match (locked, right) {
            (Some(until), _) => CodeCheck::Locked { until },
            (None, true) => CodeCheck::Replayed,
            (None, false) => CodeCheck::Wrong,
        })
    }
}
