//! The provider's signing keys: generated on first start, kept encrypted in the database (so every
//! replica signs with the same keys), rotated with `cozo-broker keys rotate`.
//!
//! Signing goes through `aws-lc-rs` behind openidconnect's `PrivateSigningKey` trait instead of
//! the `rsa` crate that openidconnect would use (RUSTSEC-2023-0071, Marvin).

use crate::crypto::{self, MasterKey};
use crate::store::{SigningKeyRow, Store};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use openidconnect::core::{CoreJsonCurveType, CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{JsonWebKeyId, PrivateSigningKey, SigningError};
use std::sync::{Arc, RwLock};

/// Algorithms a client may ask for (`--id-token-alg`); RS256 is the mandatory default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SigningAlg {
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn jws(self) -> CoreJwsSigningAlgorithm {
        match self {
            Self::Rs256 => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            Self::Es256 => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            Self::EdDsa => CoreJwsSigningAlgorithm::EdDsa,
        }
    }
}

enum Material {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    material: Material,
    jwk: CoreJsonWebKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, {})", self.kid, self.alg.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored signing key {0} cannot be read: {1}")]
    Corrupt(String, String),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("no active signing key for {0}")]
    NoKey(&'static str),
}

impl SigningKey {
    /// Generates a key; returns it with its PKCS#8 encoding (to be stored encrypted).
    pub fn generate(alg: SigningAlg) -> Result<(Self, Vec<u8>), KeyError> {
        let pkcs8 = match alg {
            SigningAlg::Rs256 => {
                let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| KeyError::Generate)?;
                let der = kp.as_der().map_err(|_| KeyError::Generate)?;
                der.as_ref().to_vec()
            }
            SigningAlg::Es256 => {
                let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Generate)?;
                kp.to_pkcs8v1().map_err(|_| KeyError::Generate)?.as_ref().to_vec()
            }
            SigningAlg::EdDsa => {
                let kp = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
                kp.to_pkcs8().map_err(|_| KeyError::Generate)?.as_ref().to_vec()
            }
        };
        let kid = crypto::random_token(12);
        let key = Self::from_pkcs8(&kid, alg, &pkcs8)?;
        Ok((key, pkcs8))
    }

    pub fn from_pkcs8(kid: &str, alg: SigningAlg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let bad = |e: String| KeyError::Corrupt(kid.to_string(), e);
        let id = Some(JsonWebKeyId::new(kid.to_string()));
        let (material, jwk) = match alg {
            SigningAlg::Rs256 => {
                let kp =
                    aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(|e| bad(e.to_string()))?;
                let pk = kp.public_key();
                let jwk = CoreJsonWebKey::new_rsa(
                    pk.modulus().big_endian_without_leading_zero().to_vec(),
                    pk.exponent().big_endian_without_leading_zero().to_vec(),
                    id,
                );
                (Material::Rsa(kp), jwk)
            }
            SigningAlg::Es256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(|e| bad(e.to_string()))?;
                let point = kp.public_key().as_ref();
                if point.len() != 65 || point.first() != Some(&4) {
                    return Err(bad("unexpected EC point encoding".into()));
                }
                let jwk = CoreJsonWebKey::new_ec(
                    point[1..33].to_vec(),
                    point[33..65].to_vec(),
                    CoreJsonCurveType::P256,
                    id,
                );
                (Material::Ec(kp), jwk)
            }
            SigningAlg::EdDsa => {
                let kp = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| bad(e.to_string()))?;
                let jwk = CoreJsonWebKey::new_okp(
                    kp.public_key().as_ref().to_vec(),
                    CoreJsonCurveType::Ed25519,
                    id,
                );
                (Material::Ed(kp), jwk)
            }
        };
        let jwk = with_alg(jwk, alg).map_err(|e| bad(e.to_string()))?;
        Ok(Self { kid: kid.to_string(), alg, material, jwk })
    }

    pub fn jwk(&self) -> &CoreJsonWebKey {
        &self.jwk
    }
}

/// The JWK with `alg` and `use: sig`, so that a client holding keys of several algorithms
/// picks the right one (openidconnect's constructors leave both out and have no setter).
fn with_alg(jwk: CoreJsonWebKey, alg: SigningAlg) -> Result<CoreJsonWebKey, serde_json::Error> {
    let mut v = serde_json::to_value(jwk)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("alg".into(), alg.as_str().into());
        o.insert("use".into(), "sig".into());
    }
    serde_json::from_value(v)
}

impl PrivateSigningKey for SigningKey {
    type VerificationKey = CoreJsonWebKey;

    fn sign(
        &self,
        signature_alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        if *signature_alg != self.alg.jws() {
            return Err(SigningError::UnsupportedAlg(format!("{signature_alg:?}")));
        }
        match &self.material {
            Material::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| SigningError::CryptoError)?;
                Ok(sig)
            }
            Material::Ec(kp) => kp
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigningError::CryptoError),
            Material::Ed(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }

    fn as_verification_key(&self) -> CoreJsonWebKey {
        self.jwk.clone()
    }
}

/// The keys in use, and the JWKS document, cached in memory and reloaded from the database
/// periodically so that a rotation by another process (the CLI, another replica) is picked up.
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
}

pub struct KeySet {
    /// Newest active key per algorithm.
    active: Vec<Arc<SigningKey>>,
    /// Every published key (active and recently retired).
    published: Vec<Arc<SigningKey>>,
    pub jwks_json: bytes::Bytes,
}

impl KeySet {
    pub fn active(&self, alg: SigningAlg) -> Option<Arc<SigningKey>> {
        self.active.iter().find(|k| k.alg == alg).cloned()
    }

    pub fn published(&self) -> &[Arc<SigningKey>] {
        &self.published
    }
}

const PURPOSE: &str = "signing-key";

impl KeyRing {
    /// Loads the keys, generating any missing algorithm's key first.
    pub async fn load(
        store: &Store,
        master: &MasterKey,
        now: i64,
        retention_s: i64,
    ) -> Result<Self, KeyError> {
        ensure_keys(store, master, now).await?;
        let set = load_set(store, master, now, retention_s).await?;
        Ok(Self { current: RwLock::new(Arc::new(set)) })
    }

    pub async fn reload(
        &self,
        store: &Store,
        master: &MasterKey,
        now: i64,
        retention_s: i64,
    ) -> Result<(), KeyError> {
        let set = load_set(store, master, now, retention_s).await?;
        let mut guard = self.current.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(set);
        Ok(())
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Generates the missing keys. Replicas starting together on a fresh database take turns (a
/// database lock): without it each would insert its own key, and until the next reload each
/// replica's JWKS would lack the others' keys, so tokens signed elsewhere would not verify.
async fn ensure_keys(store: &Store, master: &MasterKey, now: i64) -> Result<(), KeyError> {
    let lock = store.exclusive("signing-keys").await?;
    let rows = store.signing_keys(now).await?;
    for alg in SigningAlg::ALL {
        if !rows.iter().any(|r| r.alg == alg.as_str() && r.retired_at.is_none()) {
            insert_new_key(store, master, alg, now).await?;
        }
    }
    lock.release().await?;
    Ok(())
}

async fn insert_new_key(
    store: &Store,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
) -> Result<String, KeyError> {
    let (key, pkcs8) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .map_err(|_| KeyError::Generate)??;
    let row = SigningKeyRow {
        kid: key.kid.clone(),
        alg: alg.as_str().to_string(),
        private_enc: master.encrypt(&format!("{PURPOSE}:{}", key.kid), &pkcs8)?,
        public_jwk: serde_json::to_string(key.jwk()).unwrap_or_default(),
        created_at: now,
        retired_at: None,
    };
    store.insert_signing_key(&row).await?;
    Ok(key.kid)
}

/// Generates a new key for every algorithm and retires the old ones (they stay published for
/// `retention` so tokens signed with them still verify). Returns the new key ids.
pub async fn rotate(store: &Store, master: &MasterKey, now: i64) -> Result<Vec<String>, KeyError> {
    let mut kids = Vec::new();
    for alg in SigningAlg::ALL {
        let kid = insert_new_key(store, master, alg, now).await?;
        store.retire_signing_keys(alg.as_str(), &kid, now).await?;
        kids.push(kid);
    }
    Ok(kids)
}

async fn load_set(
    store: &Store,
    master: &MasterKey,
    now: i64,
    retention_s: i64,
) -> Result<KeySet, KeyError> {
    let rows = store.signing_keys(now - retention_s).await?;
    let mut active = Vec::new();
    let mut published = Vec::new();
    for row in rows {
        let Some(alg) = SigningAlg::parse(&row.alg) else {
            continue;
        };
        let pkcs8 = master.decrypt(&format!("{PURPOSE}:{}", row.kid), &row.private_enc)?;
        let key = Arc::new(SigningKey::from_pkcs8(&row.kid, alg, &pkcs8)?);
        // Rows come newest first: the first active key of an algorithm is the one to sign with.
        if row.retired_at.is_none() && !active.iter().any(|k: &Arc<SigningKey>| k.alg == alg) {
            active.push(key.clone());
        }
        published.push(key);
    }
    if !active.iter().any(|k| k.alg == SigningAlg::Rs256) {
        return Err(KeyError::NoKey("RS256"));
    }
    let jwks = openidconnect::JsonWebKeySet::new(
        published.iter().map(|k| k.jwk().clone()).collect::<Vec<CoreJsonWebKey>>(),
    );
    let jwks_json = serde_json::to_vec(&jwks).unwrap_or_default().into();
    Ok(KeySet { active, published, jwks_json })
}
