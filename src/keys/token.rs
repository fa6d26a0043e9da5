//! The paper token card: 24 numbered codes of 6 characters, one asked at each login. A card
//! set up on the activation pages is made in two steps (see [`start_card`]) so its codes are
//! shown once.
//!
//! A code has log2(31^6) ≈ 30 bits, far too few for a plain hash: with a leaked `token_codes`
//! table every code falls to a brute force in seconds. So the table keeps an HMAC-SHA-256 under
//! a key derived from the master key (purpose [`MAC_PURPOSE`]), over the card's key id, the
//! position and the code: without the master key a stolen row cannot be checked against
//! guesses, and a row copied to another card or position does not match.
//!
//! Stored forms, told apart by the value itself (no schema change):
//! - `v2:<hex HMAC>` for every card issued since;
//! - a bare hex SHA-256 of the code for cards issued before (v1). A MAC cannot be computed
//!   from a hash, so those rows cannot be migrated: they keep working, compared in constant
//!   time as before, until each code is used or the card is replaced by a new one.

use super::KeyError;
use crate::assurance::Method;
use crate::crypto::{self, MasterKey};
use crate::store::{Account, KeyRow, KeyStatus, Store};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;

/// Characters of the codes: no look-alikes (0/O, 1/I/L).
pub const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const CODE_LEN: usize = 6;
/// Codes on a card.
pub const POSITIONS: i64 = 24;
/// The master-key purpose of the codes' HMAC key.
pub const MAC_PURPOSE: &str = "token-card-codes";
const V2: &str = "v2:";
/// The challenge kind of a card position asked at a login (the method's name).
pub const LOGIN_CHALLENGE: &str = "token";

/// A card's codes by position, as shown once to the person.
pub type Card = BTreeMap<i64, String>;

/// A new code: each character drawn uniformly from [`ALPHABET`] by the OS generator
/// (`choose` samples without the bias of `random() % len`).
pub fn new_code() -> String {
    (0..CODE_LEN)
        .map(|_| char::from(*ALPHABET.choose(&mut rand::rngs::OsRng).unwrap_or(&ALPHABET[0])))
        .collect()
}

/// How a code is typed back: case and surrounding spaces do not matter.
fn normalize(code: &str) -> String {
    code.trim().to_uppercase()
}

/// What the database keeps of the code at `position` of card `key_id`.
pub fn stored_form(master: &MasterKey, key_id: &str, position: i64, code: &str) -> String {
    let data = format!("{key_id}:{position}:{}", normalize(code));
    format!("{V2}{}", hex::encode(master.mac(MAC_PURPOSE, data.as_bytes())))
}

/// Whether `code` is the one stored as `stored` (either form), in constant time.
pub fn matches(master: &MasterKey, key_id: &str, position: i64, code: &str, stored: &str) -> bool {
    if stored.starts_with(V2) {
        let expected = stored_form(master, key_id, position, code);
        crypto::ct_eq(expected.as_bytes(), stored.as_bytes())
    } else {
        // A card issued before the HMAC form (v1): unsalted SHA-256 of the code.
        crypto::ct_eq(crypto::token_hash(&normalize(code)).as_bytes(), stored.as_bytes())
    }
}

/// A new token card, active at once: its codes, shown once (the CLI; the activation pages use
/// [`start_card`] and [`issue_card`]).
pub async fn add_token(
    store: &Store,
    master: &MasterKey,
    account: &Account,
    now: i64,
) -> Result<Card, KeyError> {
    let key_id = start_card(store, account, now).await?;
    issue_card(store, master, &account.id, &key_id)
        .await?
        .ok_or(KeyError::Invalid("token-card-issued-twice"))
}

/// The first half of a new card on the activation pages: a pending token key without codes
/// (not usable yet). Its codes are made and shown by [`issue_card`] on the page the browser is
/// sent to next, so the page with the codes is not the answer to a form post (a reload there
/// would post again) and is shown once. A pending card of the account not shown yet is reused,
/// so posting twice makes one card.
pub(super) async fn start_card(
    store: &Store,
    account: &Account,
    now: i64,
) -> Result<String, KeyError> {
    if let Some(key_id) = pending_card(store, &account.id).await? {
        return Ok(key_id);
    }
    let key_id = crypto::random_id();
    store
        .insert_key(&KeyRow {
            id: key_id.clone(),
            account_id: account.id.clone(),
            kind: Method::Token,
            status: KeyStatus::Pending,
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
pub(super) async fn pending_card(
    store: &Store,
    account_id: &str,
) -> Result<Option<String>, KeyError> {
    Ok(store
        .keys_of_account(account_id)
        .await?
        .into_iter()
        .find(|k| k.kind == Method::Token && k.status == KeyStatus::Pending)
        .map(|k| k.id))
}

/// Makes the codes of a pending card and activates it, atomically and once: `None` when the
/// card is not pending any more (already shown, e.g. by a reload or a second tab).
pub(super) async fn issue_card(
    store: &Store,
    master: &MasterKey,
    account_id: &str,
    key_id: &str,
) -> Result<Option<Card>, KeyError> {
    let card: Card = (1..=POSITIONS).map(|pos| (pos, new_code())).collect();
    let stored: Vec<(i64, String)> =
        card.iter().map(|(pos, code)| (*pos, stored_form(master, key_id, *pos, code))).collect();
    Ok(store.issue_token_card(key_id, account_id, &stored).await?.then_some(card))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes(&[5u8; 32]).unwrap()
    }

    #[test]
    fn codes_are_six_characters_of_the_alphabet_and_differ() {
        let codes: Vec<String> = (0..200).map(|_| new_code()).collect();
        for c in &codes {
            assert_eq!(c.len(), CODE_LEN);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
        }
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert!(distinct.len() > 190, "codes repeat: {}", distinct.len());
    }

    #[test]
    fn every_character_of_the_alphabet_is_drawn() {
        // 31 symbols, 6000 draws: each expected ~194 times; a missing symbol means a broken
        // sampler (e.g. an off-by-one range), not bad luck (P < 31 · e^-194).
        let mut seen = [0u32; 256];
        for _ in 0..1000 {
            for b in new_code().bytes() {
                seen[b as usize] += 1;
            }
        }
        for &b in ALPHABET {
            assert!(seen[b as usize] > 100, "{} drawn {} times", b as char, seen[b as usize]);
        }
    }

    #[test]
    fn the_stored_form_is_an_hmac_bound_to_card_position_and_master_key() {
        let m = master();
        let s = stored_form(&m, "card-1", 7, "abc234");
        assert!(s.starts_with("v2:") && s.len() == 3 + 64, "{s}");
        assert_ne!(s[3..], crypto::token_hash("ABC234"), "not the plain SHA-256 of v1");
        assert!(matches(&m, "card-1", 7, " abc234 ", &s));
        assert!(matches(&m, "card-1", 7, "ABC234", &s));
        assert!(!matches(&m, "card-1", 7, "ABC235", &s));
        assert!(!matches(&m, "card-1", 8, "ABC234", &s), "another position");
        assert!(!matches(&m, "card-2", 7, "ABC234", &s), "another card");
        let other = MasterKey::from_bytes(&[6u8; 32]).unwrap();
        assert!(!matches(&other, "card-1", 7, "ABC234", &s), "another master key");
    }

    #[test]
    fn cards_issued_before_keep_working() {
        let v1 = crypto::token_hash("ABC234");
        assert!(matches(&master(), "old-card", 3, "abc234", &v1));
        assert!(!matches(&master(), "old-card", 3, "ABC235", &v1));
    }
}
