//! Security keys and passkeys (WebAuthn) as a second factor after the password, with webauthn-rs.
//!
//! The ceremony state (challenge) lives in the server-side session, never in the browser: a state
//! the browser could keep would allow replays (webauthn-rs docs). Credentials are stored in the
//! key's `data` column; their signature counter is updated after each login.

use crate::assurance::Method;
use crate::store::{Account, KeyRow, KeyStatus, Store, StoreError};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

#[derive(Debug, thiserror::Error)]
pub enum WebauthnError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the security key's answer was refused: {0}")]
    Refused(String),
    #[error("the answer could not be read")]
    Malformed,
    #[error("no security key is registered")]
    NoKey,
}

/// The relying party: our public origin. WebAuthn needs a domain name (not an IP address) and
/// https, except on `localhost`; without one, security keys are not offered.
pub struct Passkeys {
    wa: Webauthn,
}

impl Passkeys {
    pub fn new(public_url: &url::Url) -> Option<Self> {
        let rp_id = public_url.domain()?;
        let wa = WebauthnBuilder::new(rp_id, public_url).ok()?.rp_name("CoZo").build().ok()?;
        Some(Self { wa })
    }

    fn user_id(account: &Account) -> Uuid {
        // Stable per account, not the INSZ: the authenticator keeps it.
        let h = crate::crypto::sha256(format!("webauthn-user:{}", account.id).as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        Uuid::from_bytes(b)
    }

    fn passkeys_of(keys: &[KeyRow]) -> Vec<(String, Passkey)> {
        keys.iter()
            .filter(|k| k.is_active(Method::Webauthn))
            .filter_map(|k| {
                let pk: Passkey = serde_json::from_str(k.data.as_deref()?).ok()?;
                Some((k.id.clone(), pk))
            })
            .collect()
    }

    /// Starts registering a new key; the state goes into the session.
    pub async fn start_registration(
        &self,
        store: &Store,
        account: &Account,
    ) -> Result<(CreationChallengeResponse, serde_json::Value), WebauthnError> {
        let keys = store.keys_of_account(&account.id).await?;
        let exclude: Vec<_> =
            Self::passkeys_of(&keys).iter().map(|(_, pk)| pk.cred_id().clone()).collect();
        let (challenge, state) = self
            .wa
            .start_passkey_registration(
                Self::user_id(account),
                &account.username,
                &account.username,
                Some(exclude),
            )
            .map_err(|e| WebauthnError::Refused(e.to_string()))?;
        let state = serde_json::to_value(&state).map_err(|_| WebauthnError::Malformed)?;
        Ok((challenge, state))
    }

    /// Verifies the browser's answer and stores the key as active.
    pub async fn finish_registration(
        &self,
        store: &Store,
        account: &Account,
        state: &serde_json::Value,
        answer: &str,
        now: i64,
    ) -> Result<String, WebauthnError> {
        let state: PasskeyRegistration =
            serde_json::from_value(state.clone()).map_err(|_| WebauthnError::Malformed)?;
        let answer: RegisterPublicKeyCredential =
            serde_json::from_str(answer).map_err(|_| WebauthnError::Malformed)?;
        let pk = self
            .wa
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| WebauthnError::Refused(e.to_string()))?;
        let key_id = crate::crypto::random_id();
        store
            .insert_key(&KeyRow {
                id: key_id.clone(),
                account_id: account.id.clone(),
                kind: Method::Webauthn,
                status: KeyStatus::Active,
                secret_enc: None,
                phone: None,
                data: Some(serde_json::to_string(&pk).map_err(|_| WebauthnError::Malformed)?),
                last_step: 0,
                created_at: now,
            })
            .await?;
        Ok(key_id)
    }

    /// Starts a login with the account's keys; the state goes into the session.
    pub async fn start_authentication(
        &self,
        store: &Store,
        account_id: &str,
    ) -> Result<(RequestChallengeResponse, serde_json::Value), WebauthnError> {
        let keys = store.keys_of_account(account_id).await?;
        let pks: Vec<Passkey> = Self::passkeys_of(&keys).into_iter().map(|(_, pk)| pk).collect();
        if pks.is_empty() {
            return Err(WebauthnError::NoKey);
        }
        let (challenge, state) = self
            .wa
            .start_passkey_authentication(&pks)
            .map_err(|e| WebauthnError::Refused(e.to_string()))?;
        let state = serde_json::to_value(&state).map_err(|_| WebauthnError::Malformed)?;
        Ok((challenge, state))
    }

    /// Verifies a login answer against the state kept in the session (used once by the caller).
    pub async fn finish_authentication(
        &self,
        store: &Store,
        account_id: &str,
        state: &serde_json::Value,
        answer: &str,
    ) -> Result<(), WebauthnError> {
        let state: PasskeyAuthentication =
            serde_json::from_value(state.clone()).map_err(|_| WebauthnError::Malformed)?;
        let answer: PublicKeyCredential =
            serde_json::from_str(answer).map_err(|_| WebauthnError::Malformed)?;
        let result = self
            .wa
            .finish_passkey_authentication(&answer, &state)
            .map_err(|e| WebauthnError::Refused(e.to_string()))?;
        // The credential must still be an active key of this account (not revoked meanwhile).
        let keys = store.keys_of_account(account_id).await?;
        let mut found = false;
        for (key_id, mut pk) in Self::passkeys_of(&keys) {
            if pk.cred_id() == result.cred_id() {
                found = true;
                if pk.update_credential(&result) == Some(true) {
                    let data = serde_json::to_string(&pk).map_err(|_| WebauthnError::Malformed)?;
                    store.update_key_data(&key_id, &data).await?;
                }
            }
        }
        if found {
            Ok(())
        } else {
            Err(WebauthnError::NoKey)
        }
    }
}
