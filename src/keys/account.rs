//! The account of a digital key: a username and a password (SPEC §7: rules shown), chosen at
//! activation — new, or new ones for the person's account after a lost device.

use super::login::MAX_USERNAME;
use super::{cost, password, KeyError};
use crate::config::LoginConfig;
use crate::crypto;
use crate::store::{Account, Store};

pub fn normalize_username(u: &str) -> String {
    u.trim().to_lowercase()
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

/// The username (normalised) and the argon2id hash of a password that pass the rules.
async fn checked(
    cfg: &LoginConfig,
    username: &str,
    password: &str,
) -> Result<(String, String), KeyError> {
    let username = check_username(username)?;
    password::check_new(password, &username).map_err(KeyError::Invalid)?;
    let hash =
        password::hash_blocking(cost(cfg), password.to_string()).await.map_err(KeyError::Hash)?;
    Ok((username, hash))
}

/// A new username and password for an existing account (activation after a lost device).
pub async fn reset_account(
    store: &Store,
    cfg: &LoginConfig,
    account: &Account,
    username: &str,
    password: &str,
) -> Result<Account, KeyError> {
    let (username, password_hash) = checked(cfg, username, password).await?;
    let account = Account { username, password_hash, ..account.clone() };
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
    let (username, password_hash) = checked(cfg, username, password).await?;
    let account = Account {
        id: crypto::random_id(),
        person_id: person_id.to_string(),
        username,
        password_hash,
    };
    store.insert_account(&account, now).await?;
    Ok(account)
}
