//! Decryption of `saml:EncryptedAssertion` with OpenSSL.
//!
//! samael's decryption is not used: it lacks `xmlenc11#rsa-oaep` and AES-192/256-GCM, ignores
//! the OAEP digest, accepts RSA PKCS#1 v1.5 and AES-CBC, and can panic on bad plaintext
//! (see the shared notes). Accepted here, as eIDAS prescribes:
//! * key transport `xmlenc11#rsa-oaep` (OAEP digest SHA-256/384/512 from `ds:DigestMethod`,
//!   MGF1 from `xenc11:MGF`, SHA-1 when absent as the spec says) or the legacy
//!   `xmlenc#rsa-oaep-mgf1p` (MGF1-SHA-1; digest SHA-1 unless `ds:DigestMethod` says SHA-256);
//!   `xmlenc#rsa-1_5` and key agreement are refused;
//! * content `xmlenc11#aes128-gcm`, `aes192-gcm`, `aes256-gcm` (12-byte IV first, 16-byte tag
//!   last); AES-CBC is refused.

use openssl::md::{Md, MdRef};
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::Cipher;
use roxmltree::Node;

use super::xml::{children, decode_b64, element_text, required_child, single_child};
use super::xml::{DSIG_NS, XENC11_NS, XENC_NS};

pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
pub const AES192_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes192-gcm";
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
pub const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";
pub const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
pub const MGF1_SHA384: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha384";
pub const MGF1_SHA512: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha512";
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
const ELEMENT_TYPE: &str = "http://www.w3.org/2001/04/xmlenc#Element";

/// At most this many `EncryptedKey`s are tried (one per recipient).
const MAX_ENCRYPTED_KEYS: usize = 4;
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;

/// Decrypts the `xenc:EncryptedData` of a (verified) `saml:EncryptedAssertion` with the SP's
/// RSA key and returns the plaintext (the serialized Assertion, not yet trusted).
pub(crate) fn decrypt_assertion(ea: Node<'_, '_>, key: &PKey<Private>) -> Result<Vec<u8>, String> {
    let ed = required_child(ea, XENC_NS, "EncryptedData")?;
    if let Some(t) = ed.attribute("Type") {
        if t != ELEMENT_TYPE {
            return Err(format!("EncryptedData Type {t:?} is not an element"));
        }
    }
    let alg =
        required_child(ed, XENC_NS, "EncryptionMethod")?.attribute("Algorithm").unwrap_or_default();
    let (cipher, key_len) = match alg {
        AES128_GCM => (Cipher::aes_128_gcm(), 16),
        AES192_GCM => (Cipher::aes_192_gcm(), 24),
        AES256_GCM => (Cipher::aes_256_gcm(), 32),
        a if a.ends_with("-cbc") => {
            return Err(format!(
                "content encryption {a:?}: AES-CBC is not accepted (AES-GCM only)"
            ));
        }
        a => return Err(format!("content encryption {a:?} is not accepted (AES-GCM only)")),
    };
    let value = cipher_value(ed)?;

    // The EncryptedKey: inside the EncryptedData's KeyInfo, or beside the EncryptedData.
    let mut keys: Vec<Node> = match single_child(ed, DSIG_NS, "KeyInfo")? {
        Some(ki) => children(ki, XENC_NS, "EncryptedKey").collect(),
        None => Vec::new(),
    };
    keys.extend(children(ea, XENC_NS, "EncryptedKey"));
    if keys.is_empty() {
        return Err("no EncryptedKey for the assertion".into());
    }
    if keys.len() > MAX_ENCRYPTED_KEYS {
        return Err("too many EncryptedKeys".into());
    }
    let mut last_error = String::new();
    let mut cek = None;
    for ek in keys {
        match unwrap_key(ek, key) {
            Ok(k) if k.len() == key_len => {
                cek = Some(k);
                break;
            }
            Ok(k) => last_error = format!("the content key has {} bytes, not {key_len}", k.len()),
            Err(e) => last_error = e,
        }
    }
    let cek = cek.ok_or(last_error)?;

    if value.len() < GCM_IV_LEN + GCM_TAG_LEN {
        return Err("the encrypted assertion is too short".into());
    }
    let (iv, rest) = value.split_at(GCM_IV_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - GCM_TAG_LEN);
    openssl::symm::decrypt_aead(cipher, &cek, Some(iv), &[], ciphertext, tag)
        .map_err(|_| "the encrypted assertion does not decrypt (wrong key or tampered)".into())
}

/// The inline `CipherData/CipherValue` of an `EncryptedData`/`EncryptedKey`, decoded.
fn cipher_value(n: Node<'_, '_>) -> Result<Vec<u8>, String> {
    let cd = required_child(n, XENC_NS, "CipherData")?;
    let cv = single_child(cd, XENC_NS, "CipherValue")?
        .ok_or("only inline CipherValue is supported (no CipherReference)")?;
    decode_b64(&element_text(cv)?).map_err(|_| "a CipherValue is not base64".to_string())
}

/// Unwraps the content-encryption key of one `xenc:EncryptedKey`.
fn unwrap_key(ek: Node<'_, '_>, key: &PKey<Private>) -> Result<Vec<u8>, String> {
    let em = required_child(ek, XENC_NS, "EncryptionMethod")?;
    let alg = em.attribute("Algorithm").unwrap_or_default();
    let digest = single_child(em, DSIG_NS, "DigestMethod")?.map(|d| d.attribute("Algorithm"));
    let digest = match digest {
        Some(Some(d)) => Some(d),
        Some(None) => return Err("DigestMethod without Algorithm".into()),
        None => None,
    };
    let mgf = match single_child(em, XENC11_NS, "MGF")? {
        Some(m) => Some(m.attribute("Algorithm").ok_or("MGF without Algorithm")?),
        None => None,
    };
    let (oaep_md, mgf_md): (&MdRef, &MdRef) = match alg {
        RSA_OAEP_11 => {
            let md = match digest {
                Some(SHA256) => Md::sha256(),
                Some(SHA384) => Md::sha384(),
                Some(SHA512) => Md::sha512(),
                Some(d) => return Err(format!("RSA-OAEP digest {d:?} is not accepted")),
                None => return Err("RSA-OAEP with SHA-1 digest is not accepted".into()),
            };
            let mgf = match mgf {
                None | Some(MGF1_SHA1) => Md::sha1(),
                Some(MGF1_SHA256) => Md::sha256(),
                Some(MGF1_SHA384) => Md::sha384(),
                Some(MGF1_SHA512) => Md::sha512(),
                Some(m) => return Err(format!("MGF {m:?} is not accepted")),
            };
            (md, mgf)
        }
        RSA_OAEP_MGF1P => {
            if mgf.is_some() {
                return Err("rsa-oaep-mgf1p does not take an MGF".into());
            }
            let md = match digest {
                None | Some(SHA1) => Md::sha1(),
                Some(SHA256) => Md::sha256(),
                Some(d) => return Err(format!("rsa-oaep-mgf1p digest {d:?} is not accepted")),
            };
            (md, Md::sha1())
        }
        RSA_1_5 => return Err("key transport RSA PKCS#1 v1.5 (rsa-1_5) is not accepted".into()),
        a => return Err(format!("key transport {a:?} is not accepted (RSA-OAEP only)")),
    };
    let label = match single_child(em, XENC_NS, "OAEPparams")? {
        Some(p) => decode_b64(&element_text(p)?).map_err(|_| "OAEPparams is not base64")?,
        None => Vec::new(),
    };
    let wrapped = cipher_value(ek)?;
    let run = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut ctx = PkeyCtx::new(key)?;
        ctx.decrypt_init()?;
        ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
        ctx.set_rsa_oaep_md(oaep_md)?;
        ctx.set_rsa_mgf1_md(mgf_md)?;
        if !label.is_empty() {
            ctx.set_rsa_oaep_label(&label)?;
        }
        let mut out = Vec::new();
        ctx.decrypt_to_vec(&wrapped, &mut out)?;
        Ok(out)
    };
    run().map_err(|_| "the content key does not decrypt with the SP's encryption key".into())
}
