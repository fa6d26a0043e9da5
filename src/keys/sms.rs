//! SMS keys: a mobile number, confirmed once with a code sent to it, then a code by SMS at each
//! login ([`super::challenge`]). Codes are six digits, stored only as hashes bound to their
//! challenge, compared in constant time.

use super::{KeyError, SMS_TTL_S};
use crate::assurance::Method;
use crate::crypto;
use crate::i18n::Lang;
use crate::store::{Account, Challenge, KeyRow, KeyStatus, OutboxMessage, Store};
use rand::Rng;

/// The challenge kind of a login code (the method's name, as the login checks it).
pub const LOGIN_CHALLENGE: &str = "sms";
/// The challenge kind of the code that confirms a new number.
pub const ENROL_CHALLENGE: &str = "sms-enrol";

/// A six-digit SMS code, uniform over 000000–999999 (`gen_range`, not `random() % 10^6`).
pub(super) fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// What the challenge keeps of its code: bound to the challenge, so a hash is worth nothing
/// for another one.
pub(super) fn code_hash(challenge_id: &str, code: &str) -> String {
    crypto::token_hash(&format!("{challenge_id}:{}", code.trim()))
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

fn new_key(account: &Account, phone: String, status: KeyStatus, now: i64) -> KeyRow {
    KeyRow {
        id: crypto::random_id(),
        account_id: account.id.clone(),
        kind: Method::Sms,
        status,
        secret_enc: None,
        phone: Some(phone),
        data: None,
        last_step: 0,
        created_at: now,
    }
}

/// A new SMS key for a mobile number, active at once (the CLI; the activation pages confirm the
/// number first with [`start_enrolment`]).
pub async fn add_sms(
    store: &Store,
    account: &Account,
    phone: &str,
    now: i64,
) -> Result<String, KeyError> {
    let phone = parse_phone(phone).ok_or(KeyError::Invalid("phone-rules"))?;
    let key = new_key(account, phone, KeyStatus::Active, now);
    store.insert_key(&key).await?;
    Ok(key.id)
}

/// Starts confirming a mobile number: a pending SMS key and a code sent through the outbox, in
/// the person's language. `None`: not a mobile number in international form. Otherwise the id
/// of the challenge (kept in the session).
pub(super) async fn start_enrolment(
    store: &Store,
    account: &Account,
    phone: &str,
    lang: Lang,
    now: i64,
) -> Result<Option<String>, KeyError> {
    let Some(phone) = parse_phone(phone) else { return Ok(None) };
    let key = new_key(account, phone.clone(), KeyStatus::Pending, now);
    store.insert_key(&key).await?;
    let id = crypto::random_id();
    let code = new_code();
    store
        .insert_challenge(
            &Challenge {
                id: id.clone(),
                key_id: key.id,
                kind: ENROL_CHALLENGE.into(),
                position: None,
                code_hash: Some(code_hash(&id, &code)),
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
    Ok(Some(id))
}

/// Confirms the number with the code sent: the key becomes active. The challenge is used once,
/// right or wrong (a wrong code means a new one must be sent).
pub(super) async fn confirm(
    store: &Store,
    account_id: &str,
    challenge_id: &str,
    code: &str,
    now: i64,
) -> Result<bool, KeyError> {
    let right = match store.challenge(challenge_id).await? {
        Some(ch) if ch.kind == ENROL_CHALLENGE && ch.expires_at > now && ch.used_at.is_none() => {
            ch.code_hash
                .as_ref()
                .is_some_and(|h| crypto::ct_eq(code_hash(&ch.id, code).as_bytes(), h.as_bytes()))
                && store.use_challenge(&ch.id, now).await?
                && store.activate_key(&ch.key_id, account_id).await?
        }
        _ => false,
    };
    if !right {
        store.use_challenge(challenge_id, now).await?;
    }
    Ok(right)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_codes_are_six_digits() {
        for _ in 0..100 {
            let c = new_code();
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
    }

    #[test]
    fn numbers_are_international_and_shown_masked() {
        assert_eq!(parse_phone("+32 470 12 34 56").as_deref(), Some("+32470123456"));
        assert_eq!(parse_phone("0470 12 34 56"), None, "no country code");
        assert_eq!(parse_phone("+3247"), None, "too short");
        assert_eq!(mask_phone("+32470123456"), "+324******56");
    }
}
