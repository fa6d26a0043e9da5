//! The security code from an authenticator app: RFC 6238 TOTP, SHA-1, 6 digits, 30 s, ±1 step.
//! The secret is stored encrypted under the master key; a key set up on the activation pages is
//! pending until its first code, so a QR code shown but never scanned logs nobody in.
//!
//! totp-rs computes the codes; the step matching and replay guard are ours, because its `check`
//! does not say which step matched (constantoine/totp-rs#75) and keeps no record of used codes.

use super::KeyError;
use crate::assurance::Method;
use crate::crypto::{self, MasterKey};
use crate::store::{Account, KeyRow, KeyStatus, Store};
use totp_rs::{Algorithm, Secret, TOTP};

pub const STEP_S: u64 = 30;
pub const DIGITS: usize = 6;
pub const ISSUER: &str = "CoZo";

fn totp(secret: &[u8], account: &str) -> Option<TOTP> {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP_S,
        secret.to_vec(),
        Some(ISSUER.into()),
        account.into(),
    )
    .into()
}

/// A new 160-bit secret (RFC 4226 recommends 160 bits).
pub fn generate_secret() -> Vec<u8> {
    match Secret::generate_secret().to_bytes() {
        Ok(b) => b,
        Err(_) => crypto::random_token(20).into_bytes(),
    }
}

pub fn secret_base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

pub fn otpauth_uri(secret: &[u8], account: &str) -> String {
    totp(secret, account).map(|t| t.get_url()).unwrap_or_default()
}

/// The code for a unix time; used by the CLI (`totp-code`) and tests.
pub fn code_at(secret: &[u8], unix: i64) -> String {
    totp(secret, "").map(|t| t.generate(unix.max(0) as u64)).unwrap_or_default()
}

pub fn decode_base32(s: &str) -> Option<Vec<u8>> {
    Secret::Encoded(s.trim().replace(' ', "").to_uppercase()).to_bytes().ok()
}

/// The time step a code matches within ±1 step of `now`, compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "")?;
    let step = now.div_euclid(STEP_S as i64);
    let mut found = None;
    for s in [step - 1, step, step + 1] {
        let candidate = t.generate((s.max(0) as u64) * STEP_S);
        // No early exit: every candidate is computed and compared.
        if crypto::ct_eq(candidate.as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// The master-key purpose of a key's secret (bound to the key: a secret copied to another row
/// does not decrypt).
pub(super) fn purpose(key_id: &str) -> String {
    format!("totp:{key_id}")
}

/// A new TOTP key: what the person scans or types into their app.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTotp {
    pub key_id: String,
    pub secret_base32: String,
    pub otpauth_uri: String,
}

async fn insert(
    store: &Store,
    master: &MasterKey,
    account: &Account,
    status: KeyStatus,
    now: i64,
) -> Result<NewTotp, KeyError> {
    let secret = generate_secret();
    let key_id = crypto::random_id();
    store
        .insert_key(&KeyRow {
            id: key_id.clone(),
            account_id: account.id.clone(),
            kind: Method::Totp,
            status,
            secret_enc: Some(master.encrypt(&purpose(&key_id), &secret)?),
            phone: None,
            data: None,
            last_step: 0,
            created_at: now,
        })
        .await?;
    Ok(NewTotp {
        key_id,
        secret_base32: secret_base32(&secret),
        otpauth_uri: otpauth_uri(&secret, &account.username),
    })
}

/// A new TOTP key, active at once (the CLI; the activation pages use [`start`] and
/// [`confirm`]).
pub async fn add_totp(
    store: &Store,
    master: &MasterKey,
    account: &Account,
    now: i64,
) -> Result<NewTotp, KeyError> {
    insert(store, master, account, KeyStatus::Active, now).await
}

/// A new pending TOTP key: shown now, active only after a first valid code ([`confirm`]).
pub(super) async fn start(
    store: &Store,
    master: &MasterKey,
    account: &Account,
    now: i64,
) -> Result<NewTotp, KeyError> {
    insert(store, master, account, KeyStatus::Pending, now).await
}

/// The key `key_id` of the account as it was shown, to show it again after a wrong first code;
/// `None` when the account has no such key (any more).
pub(super) async fn shown(
    store: &Store,
    master: &MasterKey,
    account: &Account,
    key_id: &str,
) -> Result<Option<NewTotp>, KeyError> {
    let key = store.keys_of_account(&account.id).await?.into_iter().find(|k| k.id == key_id);
    let Some(enc) = key.and_then(|k| k.secret_enc) else { return Ok(None) };
    let secret = master.decrypt(&purpose(key_id), &enc)?;
    Ok(Some(NewTotp {
        key_id: key_id.to_string(),
        secret_base32: secret_base32(&secret),
        otpauth_uri: otpauth_uri(&secret, &account.username),
    }))
}

/// Confirms a pending TOTP key with its first code; the key becomes active and that code's time
/// step counts as used. False: wrong code (the key stays pending and unusable).
pub(super) async fn confirm(
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
        .find(|k| k.id == key_id && k.kind == Method::Totp && k.status == KeyStatus::Pending)
    else {
        return Ok(false);
    };
    let Some(enc) = &key.secret_enc else { return Ok(false) };
    let secret = master.decrypt(&purpose(&key.id), enc)?;
    let Some(step) = matching_step(&secret, code, now) else { return Ok(false) };
    Ok(store.activate_key(&key.id, account_id).await?
        && store.advance_totp_step(&key.id, step).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", T = 59 → 94287082 (8 digits);
        // the 6-digit code is its last six digits.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1111111109), "081804");
    }

    #[test]
    fn accepts_one_step_of_drift_and_reports_the_step() {
        let secret = generate_secret();
        let now = 1_800_000_015;
        let step = now / 30;
        assert_eq!(matching_step(&secret, &code_at(&secret, now), now), Some(step));
        assert_eq!(matching_step(&secret, &code_at(&secret, now - 30), now), Some(step - 1));
        assert_eq!(matching_step(&secret, &code_at(&secret, now + 30), now), Some(step + 1));
        assert_eq!(matching_step(&secret, &code_at(&secret, now - 60), now), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn base32_roundtrip_and_uri() {
        let secret = generate_secret();
        assert_eq!(secret.len(), 20);
        let b32 = secret_base32(&secret);
        assert_eq!(decode_base32(&b32).unwrap(), secret);
        let uri = otpauth_uri(&secret, "anna");
        assert!(uri.starts_with("otpauth://totp/CoZo:anna?"), "{uri}");
        assert!(uri.contains(&format!("secret={b32}")));
    }
}
