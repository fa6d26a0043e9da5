//! Small, well-worn building blocks: random tokens, token hashes, constant-time comparison and
//! the master key that encrypts secrets at rest and keys the MACs of short codes.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::{hkdf, hmac};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::path::Path;

/// `bytes` random bytes from the OS, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// 128-bit random identifier for database rows that are not secrets.
pub fn random_id() -> String {
    random_token(16)
}

/// What the database keeps of a bearer secret (code, token, session id, client secret):
/// SHA-256, hex. The secrets themselves carry ≥ 128 bits of entropy, so a fast hash is enough
/// (passwords, which do not, use argon2id).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Constant-time equality of two byte strings (length may leak, content does not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("cannot read or create the master key file {0}: {1}")]
    KeyFile(String, std::io::Error),
    #[error("encrypted data is corrupt or was encrypted with another master key")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
}

/// AES-256-GCM key for secrets at rest (signing keys, TOTP secrets). Every ciphertext is bound
/// to a purpose string (the AAD), so a value cannot be moved to another column.
///
/// It also keys HMACs ([`MasterKey::mac`]) for codes too short to be stored as a plain hash: a
/// separate HMAC-SHA-256 key per purpose, derived with HKDF-SHA-256 (RFC 5869), so the AES key
/// itself is never used for anything but AES-GCM.
#[derive(Clone)]
pub struct MasterKey {
    key: std::sync::Arc<LessSafeKey>,
    macs: std::sync::Arc<hkdf::Prk>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::BadMasterKey);
        }
        let unbound =
            UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::BadMasterKey)?;
        let macs = hkdf::Salt::new(hkdf::HKDF_SHA256, MAC_SALT).extract(bytes);
        Ok(Self {
            key: std::sync::Arc::new(LessSafeKey::new(unbound)),
            macs: std::sync::Arc::new(macs),
        })
    }

    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(s.trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(s.trim()))
            .map_err(|_| CryptoError::BadMasterKey)?;
        Self::from_bytes(&bytes)
    }

    /// Reads the key file, or creates it (owner-only) with a fresh random key.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let err = |e| CryptoError::KeyFile(path.display().to_string(), e);
        match std::fs::read_to_string(path) {
            Ok(s) => Self::from_base64(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let text = STANDARD.encode(bytes);
                write_owner_only(path, text.as_bytes()).map_err(err)?;
                Self::from_bytes(&bytes)
            }
            Err(e) => Err(err(e)),
        }
    }

    /// HMAC-SHA-256 of `data` under the key derived for `purpose` (HKDF info
    /// `cozo-broker mac:<purpose>`): equal inputs give equal tags, and without the master key a
    /// stolen tag cannot be checked against guesses.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let info: [&[u8]; 2] = [MAC_INFO_PREFIX, purpose.as_bytes()];
        // Expanding 32 bytes cannot fail (the limit is 255 × 32).
        let key = match self.macs.expand(&info, hmac::HMAC_SHA256) {
            Ok(okm) => hmac::Key::from(okm),
            Err(_) => unreachable!("HKDF-SHA-256 expands to 32 bytes"),
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&key, data).as_ref());
        out
    }

    pub fn encrypt(&self, purpose: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut buf,
            )
            .map_err(|_| CryptoError::Encrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn decrypt(&self, purpose: &str, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if data.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = data.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

/// HKDF salt and info prefix of the MAC keys (fixed: changing them changes every stored MAC).
const MAC_SALT: &[u8] = b"cozo-broker master key: MAC keys";
const MAC_INFO_PREFIX: &[u8] = b"cozo-broker mac:";

#[cfg(unix)]
fn write_owner_only(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_is_bound_to_key_and_purpose() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let ct = k.encrypt("totp", b"secret").unwrap();
        assert_eq!(k.decrypt("totp", &ct).unwrap(), b"secret");
        assert!(k.decrypt("signing-key", &ct).is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.decrypt("totp", &ct).is_err());
        let mut tampered = ct.clone();
        tampered[NONCE_LEN] ^= 1;
        assert!(k.decrypt("totp", &tampered).is_err());
    }

    #[test]
    fn macs_are_bound_to_key_and_purpose() {
        let k = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let tag = k.mac("token-card-codes", b"ABC234");
        assert_eq!(tag, k.mac("token-card-codes", b"ABC234"));
        assert_ne!(tag, k.mac("token-card-codes", b"ABC235"));
        assert_ne!(tag, k.mac("other-purpose", b"ABC234"));
        assert_ne!(
            tag,
            MasterKey::from_bytes(&[8u8; 32]).unwrap().mac("token-card-codes", b"ABC234")
        );
        assert_ne!(tag, sha256(b"ABC234"), "not a plain hash");
    }

    #[test]
    fn key_file_is_created_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/master.key");
        let k1 = MasterKey::load_or_create(&p).unwrap();
        let ct = k1.encrypt("x", b"y").unwrap();
        let k2 = MasterKey::load_or_create(&p).unwrap();
        assert_eq!(k2.decrypt("x", &ct).unwrap(), b"y");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        assert_ne!(random_token(32), random_token(32));
        assert_eq!(random_token(32).len(), 43);
        assert_eq!(token_hash("a"), token_hash("a"));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
