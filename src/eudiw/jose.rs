//! The JOSE pieces OpenID4VP needs, on aws-lc-rs (README "Choices"): compact JWS with ES256,
//! P-256 JWKs, JWE `ECDH-ES` (direct key agreement, RFC 7518 §4.6 with its Concat KDF) with
//! `A128GCM`/`A256GCM` content encryption, and `x5c` chains checked against trust anchors.

use crate::crypto::{b64url, b64url_decode, sha256};
use aws_lc_rs::{aead, agreement, rand::SystemRandom, signature};
use serde_json::{json, Value};
use x509_parser::prelude::*;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    #[error("bad signature")]
    Signature,
    #[error("decryption failed")]
    Decrypt,
    #[error("certificate chain: {0}")]
    Chain(&'static str),
    #[error("key: {0}")]
    Key(String),
}

/// A compact JWS, parsed (not yet verified).
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Value,
    pub payload: Value,
    signing_input: String,
    signature: Vec<u8>,
}

fn json_part(part: &str, what: &'static str) -> Result<Value, JoseError> {
    let bytes = b64url_decode(part).ok_or(JoseError::Malformed(what))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| JoseError::Malformed(what))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(JoseError::Malformed(what))
    }
}

impl Jws {
    pub fn parse(compact: &str) -> Result<Self, JoseError> {
        let mut parts = compact.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed("JWS"));
        };
        Ok(Self {
            header: json_part(h, "JWS header")?,
            payload: json_part(p, "JWS payload")?,
            signing_input: format!("{h}.{p}"),
            signature: b64url_decode(s).ok_or(JoseError::Malformed("JWS signature"))?,
        })
    }

    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }

    /// Verifies an ES256 signature by the P-256 key `point` (uncompressed SEC1). Only ES256
    /// is accepted (HAIP): `alg` is never taken from the token to pick something weaker.
    pub fn verify_es256(&self, point: &[u8]) -> Result<(), JoseError> {
        if self.header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(JoseError::Unsupported("JWS alg"));
        }
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| JoseError::Signature)
    }
}

/// Signs `payload` with ES256 under `header` (to which `alg` is added).
pub fn sign_es256(pkcs8: &[u8], mut header: Value, payload: &Value) -> Result<String, JoseError> {
    let key =
        signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| JoseError::Key(e.to_string()))?;
    header["alg"] = json!("ES256");
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes())
    );
    let sig = key
        .sign(&SystemRandom::new(), input.as_bytes())
        .map_err(|_| JoseError::Key("signing failed".into()))?;
    Ok(format!("{input}.{}", b64url(sig.as_ref())))
}

/// The uncompressed SEC1 point of a P-256 public JWK.
pub fn p256_point(jwk: &Value) -> Result<Vec<u8>, JoseError> {
    if jwk.get("kty").and_then(Value::as_str) != Some("EC")
        || jwk.get("crv").and_then(Value::as_str) != Some("P-256")
    {
        return Err(JoseError::Unsupported("JWK (P-256 only)"));
    }
    let coord = |c: &str| {
        jwk.get(c)
            .and_then(Value::as_str)
            .and_then(b64url_decode)
            .filter(|v| v.len() == 32)
            .ok_or(JoseError::Malformed("JWK coordinate"))
    };
    let mut point = vec![4u8];
    point.extend(coord("x")?);
    point.extend(coord("y")?);
    Ok(point)
}

/// The public JWK of an uncompressed P-256 point.
pub fn p256_jwk(point: &[u8]) -> Value {
    let (x, y) = point.get(1..).unwrap_or_default().split_at(point.len().saturating_sub(1) / 2);
    json!({ "kty": "EC", "crv": "P-256", "x": b64url(x), "y": b64url(y) })
}

/// RFC 7638 SHA-256 thumbprint of the P-256 public JWK of `point` (the members `crv`, `kty`,
/// `x`, `y` in that order, no whitespace).
pub fn jwk_thumbprint(point: &[u8]) -> Vec<u8> {
    let jwk = p256_jwk(point);
    let m = |k: &str| jwk.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let canon = format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, m("x"), m("y"));
    sha256(canon.as_bytes()).to_vec()
}

/// An ephemeral ECDH P-256 key: the private scalar (to keep, encrypted) and its public point.
pub fn ephemeral_key() -> Result<(Vec<u8>, Vec<u8>), JoseError> {
    use aws_lc_rs::encoding::AsBigEndian;
    let key = agreement::PrivateKey::generate(&agreement::ECDH_P256)
        .map_err(|_| JoseError::Key("generation failed".into()))?;
    let public = key.compute_public_key().map_err(|_| JoseError::Key("public key".into()))?;
    let scalar: aws_lc_rs::encoding::EcPrivateKeyBin<'_> =
        key.as_be_bytes().map_err(|_| JoseError::Key("export".into()))?;
    Ok((scalar.as_ref().to_vec(), public.as_ref().to_vec()))
}

/// The public point of a stored ephemeral scalar.
pub fn ephemeral_public(scalar: &[u8]) -> Result<Vec<u8>, JoseError> {
    let key = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, scalar)
        .map_err(|e| JoseError::Key(e.to_string()))?;
    let public = key.compute_public_key().map_err(|_| JoseError::Key("public key".into()))?;
    Ok(public.as_ref().to_vec())
}

/// RFC 7518 §4.6.2: the Concat KDF (NIST SP 800-56A) with SHA-256, for direct key agreement
/// (`AlgorithmID` is the `enc` value).
pub fn concat_kdf(z: &[u8], enc: &str, apu: &[u8], apv: &[u8], key_len: usize) -> Vec<u8> {
    let mut other = Vec::new();
    for part in [enc.as_bytes(), apu, apv] {
        other.extend((part.len() as u32).to_be_bytes());
        other.extend(part);
    }
    other.extend(((key_len * 8) as u32).to_be_bytes());
    let mut out = Vec::new();
    let mut counter: u32 = 1;
    while out.len() < key_len {
        let mut round = counter.to_be_bytes().to_vec();
        round.extend(z);
        round.extend(&other);
        out.extend(sha256(&round));
        counter += 1;
    }
    out.truncate(key_len);
    out
}

/// The JWE header parameters that pick the key, read before decryption.
pub fn jwe_header(compact: &str) -> Result<Value, JoseError> {
    json_part(compact.split('.').next().unwrap_or_default(), "JWE header")
}

/// Decrypts a compact JWE `ECDH-ES` + `A128GCM`/`A256GCM` with the ephemeral scalar.
pub fn decrypt_ecdh_es(compact: &str, scalar: &[u8]) -> Result<Vec<u8>, JoseError> {
    let parts: Vec<&str> = compact.split('.').collect();
    let [h, ek, iv, ct, tag] = parts[..] else { return Err(JoseError::Malformed("JWE")) };
    let header = json_part(h, "JWE header")?;
    if header.get("alg").and_then(Value::as_str) != Some("ECDH-ES") || !ek.is_empty() {
        return Err(JoseError::Unsupported("JWE alg (ECDH-ES only)"));
    }
    let enc = header.get("enc").and_then(Value::as_str).unwrap_or_default();
    let (aead_alg, key_len) = match enc {
        "A128GCM" => (&aead::AES_128_GCM, 16),
        "A256GCM" => (&aead::AES_256_GCM, 32),
        _ => return Err(JoseError::Unsupported("JWE enc")),
    };
    let epk = p256_point(header.get("epk").ok_or(JoseError::Malformed("JWE epk"))?)?;
    let party = |name: &str| -> Result<Vec<u8>, JoseError> {
        match header.get(name).and_then(Value::as_str) {
            Some(v) => b64url_decode(v).ok_or(JoseError::Malformed("JWE apu/apv")),
            None => Ok(Vec::new()),
        }
    };
    let (apu, apv) = (party("apu")?, party("apv")?);
    let key = agreement::PrivateKey::from_private_key(&agreement::ECDH_P256, scalar)
        .map_err(|e| JoseError::Key(e.to_string()))?;
    // aws-lc checks that the peer's point is on the curve.
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &epk);
    let cek = agreement::agree(&key, peer, JoseError::Decrypt, |z| {
        Ok(concat_kdf(z, enc, &apu, &apv, key_len))
    })?;
    let iv = b64url_decode(iv).ok_or(JoseError::Malformed("JWE iv"))?;
    let nonce =
        aead::Nonce::try_assume_unique_for_key(&iv).map_err(|_| JoseError::Malformed("JWE iv"))?;
    let mut data = b64url_decode(ct).ok_or(JoseError::Malformed("JWE ciphertext"))?;
    data.extend(b64url_decode(tag).ok_or(JoseError::Malformed("JWE tag"))?);
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(aead_alg, &cek).map_err(|_| JoseError::Decrypt)?,
    );
    let plain = key
        .open_in_place(nonce, aead::Aad::from(h.as_bytes()), &mut data)
        .map_err(|_| JoseError::Decrypt)?;
    Ok(plain.to_vec())
}

/// Certificates the PID providers' signatures must chain to (`[eudiw] trust_anchors`).
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    ders: Vec<Vec<u8>>,
}

impl TrustAnchors {
    pub fn from_pem(pem: &[u8]) -> Result<Self, JoseError> {
        let mut ders = Vec::new();
        for p in x509_parser::pem::Pem::iter_from_buffer(pem) {
            let p = p.map_err(|e| JoseError::Key(format!("trust anchors: {e}")))?;
            X509Certificate::from_der(&p.contents)
                .map_err(|e| JoseError::Key(format!("trust anchors: {e}")))?;
            ders.push(p.contents);
        }
        if ders.is_empty() {
            return Err(JoseError::Key("trust anchors: no certificate".into()));
        }
        Ok(Self { ders })
    }

    pub fn len(&self) -> usize {
        self.ders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ders.is_empty()
    }

    /// The P-256 point of the leaf of `x5c` (base64 DER, leaf first) when every certificate is
    /// valid at `now` and signed by the next, and the last is an anchor or signed by one. A
    /// certificate that only copies an anchor's name fails on the signature.
    pub fn leaf_key(&self, x5c: &[String], now: i64) -> Result<Vec<u8>, JoseError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let ders = x5c
            .iter()
            .map(|c| b64.decode(c).map_err(|_| JoseError::Malformed("x5c")))
            .collect::<Result<Vec<_>, _>>()?;
        let certs = ders
            .iter()
            .map(|d| {
                X509Certificate::from_der(d)
                    .map(|(_, c)| c)
                    .map_err(|_| JoseError::Malformed("x5c"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(leaf) = certs.first() else { return Err(JoseError::Malformed("x5c")) };
        let at = ASN1Time::from_timestamp(now).map_err(|_| JoseError::Chain("time"))?;
        for c in &certs {
            if !c.validity().is_valid_at(at) {
                return Err(JoseError::Chain("a certificate is not valid now"));
            }
        }
        for pair in certs.windows(2) {
            let [child, parent] = pair else { continue };
            if child.issuer() != parent.subject() {
                return Err(JoseError::Chain("x5c is not a chain"));
            }
            verify_cert(child, parent)?;
        }
        let (Some(last), Some(last_der)) = (certs.last(), ders.last()) else {
            return Err(JoseError::Malformed("x5c"));
        };
        let anchored = self.ders.iter().any(|a| {
            if a == last_der {
                return true;
            }
            let Ok((_, anchor)) = X509Certificate::from_der(a) else { return false };
            anchor.validity().is_valid_at(at)
                && last.issuer() == anchor.subject()
                && verify_cert(last, &anchor).is_ok()
        });
        if !anchored {
            return Err(JoseError::Chain("not issued under a trust anchor"));
        }
        let spki = leaf.public_key();
        if spki.algorithm.algorithm != x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
            || spki.subject_public_key.data.len() != 65
        {
            return Err(JoseError::Unsupported("issuer key (P-256 only)"));
        }
        Ok(spki.subject_public_key.data.to_vec())
    }
}

/// `child`'s signature by `parent`'s key (ECDSA with SHA-256 or SHA-384).
fn verify_cert(child: &X509Certificate<'_>, parent: &X509Certificate<'_>) -> Result<(), JoseError> {
    use x509_parser::oid_registry::{OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384};
    let oid = &child.signature_algorithm.algorithm;
    let alg: &'static dyn signature::VerificationAlgorithm = if *oid == OID_SIG_ECDSA_WITH_SHA256 {
        &signature::ECDSA_P256_SHA256_ASN1
    } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
        &signature::ECDSA_P384_SHA384_ASN1
    } else {
        return Err(JoseError::Unsupported("certificate signature algorithm"));
    };
    let key = &parent.public_key().subject_public_key.data;
    signature::UnparsedPublicKey::new(alg, key)
        .verify(child.tbs_certificate.as_ref(), &child.signature_value.data)
        .map_err(|_| JoseError::Chain("a certificate's signature is wrong"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix C: the Concat KDF example (ECDH-ES, A128GCM, "Alice"/"Bob").
    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        let z = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
            110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        let cek = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 16);
        assert_eq!(b64url(&cek), "VqqN6vgjbSBcIijNcacQGg");
    }

    #[test]
    fn es256_round_trip_and_tamper() {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let jws = sign_es256(&kp.serialize_der(), json!({"typ": "x"}), &json!({"a": 1})).unwrap();
        let parsed = Jws::parse(&jws).unwrap();
        parsed.verify_es256(kp.public_key_raw()).unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        assert_eq!(parsed.verify_es256(other.public_key_raw()), Err(JoseError::Signature));
    }
}
