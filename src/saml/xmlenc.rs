//! Decryption of `saml:EncryptedAssertion` with OpenSSL.
//!
//! samael's decryption is not used: it lacks `xmlenc11#rsa-oaep` and AES-192/256-GCM, ignores
//! the OAEP digest, accepts RSA PKCS#1 v1.5 and AES-CBC, and can panic on bad plaintext
//! (see the shared notes). Accepted here, as eIDAS prescribes:
//! * key transport `xmlenc11#rsa-oaep` (OAEP digest SHA-256/384/512 from `ds:DigestMethod`,
//!   MGF1 from `xenc11:MGF`, SHA-1 when absent as the spec says) or the legacy
//!   `xmlenc#rsa-oaep-mgf1p` (MGF1-SHA-1; digest SHA-1 unless `ds:DigestMethod` says SHA-256);
//!   `xmlenc#rsa-1_5` is refused;
//! * key agreement `xmlenc11#ECDH-ES` to the SP's EC key (P-256 or P-384) with
//!   `xmlenc11#ConcatKDF` (SHA-256/384/512) and key wrap `kw-aes128`/`kw-aes256`, all with
//!   aws-lc-rs: it refuses an originator point that is not on our key's curve (so points of
//!   another curve, the identity and invalid-curve points; the NIST curves have no other
//!   small-order points), and the key wrap's integrity check catches a wrong KEK. The
//!   originator key must be a `dsig11:ECKeyValue` with a `NamedCurve` (explicit parameters
//!   refused); `RecipientKeyInfo` is never read;
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

pub const ECDH_ES: &str = "http://www.w3.org/2009/xmlenc11#ECDH-ES";
pub const CONCAT_KDF: &str = "http://www.w3.org/2009/xmlenc11#ConcatKDF";
pub const KW_AES128: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes128";
pub const KW_AES256: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes256";
pub const DSIG11_NS: &str = "http://www.w3.org/2009/xmldsig11#";
pub const P256_URN: &str = "urn:oid:1.2.840.10045.3.1.7";
pub const P384_URN: &str = "urn:oid:1.3.132.0.34";

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

/// The SP's two decryption keys.
pub(crate) struct DecryptionKeys {
    /// RSA-OAEP key transport.
    pub rsa: PKey<Private>,
    /// ECDH-ES key agreement (P-256 or P-384).
    pub ec: aws_lc_rs::agreement::PrivateKey,
    /// `dsig11:NamedCurve` URI of `ec`'s curve.
    pub ec_curve_urn: &'static str,
}

/// Decrypts the `xenc:EncryptedData` of a (verified) `saml:EncryptedAssertion` with the SP's
/// keys and returns the plaintext (the serialized Assertion, not yet trusted).
pub(crate) fn decrypt_assertion(ea: Node<'_, '_>, key: &DecryptionKeys) -> Result<Vec<u8>, String> {
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
fn unwrap_key(ek: Node<'_, '_>, keys: &DecryptionKeys) -> Result<Vec<u8>, String> {
    let em = required_child(ek, XENC_NS, "EncryptionMethod")?;
    let alg = em.attribute("Algorithm").unwrap_or_default();
    if let Some(kek_len) = match alg {
        KW_AES128 => Some(16),
        KW_AES256 => Some(32),
        _ => None,
    } {
        return unwrap_agreed(ek, keys, alg, kek_len);
    }
    let key = &keys.rsa;
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

/// ECDH-ES: agrees the key-encryption key with the originator's ephemeral key (from the
/// `AgreementMethod` in the `EncryptedKey`'s `KeyInfo`), derives it with ConcatKDF and unwraps
/// the content key with AES key wrap.
fn unwrap_agreed(
    ek: Node<'_, '_>,
    keys: &DecryptionKeys,
    wrap_alg: &str,
    kek_len: usize,
) -> Result<Vec<u8>, String> {
    use aws_lc_rs::{agreement, kdf, key_wrap};

    let ki = single_child(ek, DSIG_NS, "KeyInfo")?
        .ok_or(format!("key wrap {wrap_alg:?} without an ECDH-ES AgreementMethod"))?;
    let am: Vec<Node> = ki.children().filter(|c| c.is_element()).collect();
    let [am] = am.as_slice() else {
        return Err("the EncryptedKey's KeyInfo must hold exactly one AgreementMethod".into());
    };
    if !am.has_tag_name((XENC_NS, "AgreementMethod")) {
        return Err(format!("key wrap {wrap_alg:?} without an ECDH-ES AgreementMethod"));
    }
    let agreement_alg = am.attribute("Algorithm").unwrap_or_default();
    if agreement_alg != ECDH_ES {
        return Err(format!("key agreement {agreement_alg:?} is not accepted (ECDH-ES only)"));
    }

    // ConcatKDF and its parameters, as given in the message.
    let kdm = required_child(*am, XENC11_NS, "KeyDerivationMethod")?;
    let kdf_alg = kdm.attribute("Algorithm").unwrap_or_default();
    if kdf_alg != CONCAT_KDF {
        return Err(format!("key derivation {kdf_alg:?} is not accepted (ConcatKDF only)"));
    }
    let params = required_child(kdm, XENC11_NS, "ConcatKDFParams")?;
    let digest =
        required_child(params, DSIG_NS, "DigestMethod")?.attribute("Algorithm").unwrap_or_default();
    let kdf_id = match digest {
        SHA256 => kdf::SskdfDigestAlgorithmId::Sha256,
        SHA384 => kdf::SskdfDigestAlgorithmId::Sha384,
        SHA512 => kdf::SskdfDigestAlgorithmId::Sha512,
        SHA1 => return Err("ConcatKDF with SHA-1 is not accepted".into()),
        d => return Err(format!("ConcatKDF digest {d:?} is not accepted")),
    };
    let mut other_info = Vec::new();
    for name in ["AlgorithmID", "PartyUInfo", "PartyVInfo"] {
        let value = params.attribute(name).unwrap_or_default();
        other_info.extend(bit_string(value).map_err(|e| format!("ConcatKDF {name}: {e}"))?);
    }

    // The originator's public key: a named curve, ours, and a point on it.
    let oki = required_child(*am, XENC_NS, "OriginatorKeyInfo")?;
    let ecv = required_child(oki, DSIG_NS, "KeyValue")
        .and_then(|kv| required_child(kv, DSIG11_NS, "ECKeyValue"))
        .map_err(|_| "the originator key is not a dsig11:ECKeyValue".to_string())?;
    if single_child(ecv, DSIG11_NS, "ECParameters")?.is_some() {
        return Err("explicit curve parameters are not accepted (named curves only)".into());
    }
    let curve = required_child(ecv, DSIG11_NS, "NamedCurve")?.attribute("URI").unwrap_or_default();
    let curve = curve.strip_prefix("urn:oid:").map(|o| format!("urn:oid:{o}"));
    if curve.as_deref() != Some(keys.ec_curve_urn) {
        return Err(format!(
            "the originator key's curve {curve:?} is not the SP key's curve ({})",
            keys.ec_curve_urn
        ));
    }
    let point = decode_b64(&element_text(required_child(ecv, DSIG11_NS, "PublicKey")?)?)
        .map_err(|_| "the originator's PublicKey is not base64")?;
    let peer = agreement::UnparsedPublicKey::new(keys.ec.algorithm(), &point);

    let kek = agreement::agree(&keys.ec, peer, (), |z| {
        let alg = kdf::get_sskdf_digest_algorithm(kdf_id).ok_or(())?;
        let mut kek = vec![0u8; kek_len];
        kdf::sskdf_digest(alg, z, &other_info, &mut kek).map_err(|_| ())?;
        Ok(kek)
    })
    .map_err(|()| {
        "the originator's public key is not a valid point of the SP key's curve".to_string()
    })?;

    let wrapped = cipher_value(ek)?;
    let cipher = if kek_len == 16 { &key_wrap::AES_128 } else { &key_wrap::AES_256 };
    let kek = key_wrap::KeyEncryptionKey::new(cipher, &kek).map_err(|_| "bad KEK length")?;
    let mut out = vec![0u8; wrapped.len()];
    let cek = key_wrap::KeyWrap::unwrap(kek, &wrapped, &mut out)
        .map_err(|_| "the wrapped content key fails its integrity check (wrong key agreement)")?;
    Ok(cek.to_vec())
}

/// A ConcatKDF parameter (`xsd:hexBinary` of a bit string: a first octet with the number of
/// padding bits, which must be 0, then the bytes). Absent or empty is empty.
fn bit_string(hex: &str) -> Result<Vec<u8>, String> {
    if hex.is_empty() {
        return Ok(Vec::new());
    }
    let bytes = hex::decode(hex).map_err(|_| "not hexadecimal".to_string())?;
    match bytes.split_first() {
        Some((0, rest)) => Ok(rest.to_vec()),
        _ => Err("only whole-octet bit strings (first octet 00) are accepted".into()),
    }
}
