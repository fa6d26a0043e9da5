//! JOSE for the mocks (aws-lc-rs): ES256 JWS, P-256 JWKs, and the wallet's JWE `ECDH-ES` +
//! `A128GCM` (RFC 7518 §4.6, Concat KDF). The broker has its own implementation; the mocks do
//! not borrow it, so a bug in one is caught by the other.

use aws_lc_rs::{aead, agreement, rand::SystemRandom, signature};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn unb64(s: &str) -> anyhow::Result<Vec<u8>> {
    Ok(URL_SAFE_NO_PAD.decode(s)?)
}

pub fn sha256_b64(data: &[u8]) -> String {
    b64(&Sha256::digest(data))
}

/// A P-256 signing key (PKCS#8 from rcgen) with its public point.
pub struct EcKey {
    pub pkcs8: Vec<u8>,
    pub point: Vec<u8>,
}

impl EcKey {
    pub fn generate() -> anyhow::Result<Self> {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        Ok(Self { pkcs8: kp.serialize_der(), point: kp.public_key_raw().to_vec() })
    }

    pub fn rcgen(&self) -> anyhow::Result<rcgen::KeyPair> {
        Ok(rcgen::KeyPair::try_from(self.pkcs8.as_slice())?)
    }

    pub fn jwk(&self) -> Value {
        jwk(&self.point)
    }

    /// An ES256 signature (r‖s) over `data`.
    pub fn sign_raw(&self, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        let key = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.pkcs8,
        )
        .map_err(|e| anyhow::anyhow!("key: {e}"))?;
        let sig =
            key.sign(&SystemRandom::new(), data).map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(sig.as_ref().to_vec())
    }

    /// `header` gets `alg: ES256`.
    pub fn sign(&self, mut header: Value, payload: &Value) -> anyhow::Result<String> {
        let key = signature::EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &self.pkcs8,
        )
        .map_err(|e| anyhow::anyhow!("key: {e}"))?;
        header["alg"] = json!("ES256");
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(payload.to_string().as_bytes())
        );
        let sig = key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(format!("{input}.{}", b64(sig.as_ref())))
    }
}

pub fn jwk(point: &[u8]) -> Value {
    json!({ "kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]) })
}

pub fn point_of(jwk: &Value) -> anyhow::Result<Vec<u8>> {
    let c = |k: &str| -> anyhow::Result<Vec<u8>> {
        unb64(jwk.get(k).and_then(Value::as_str).ok_or_else(|| anyhow::anyhow!("jwk {k}"))?)
    };
    let mut p = vec![4u8];
    p.extend(c("x")?);
    p.extend(c("y")?);
    Ok(p)
}

/// Header and payload of a compact JWS, and whether `point` signed it (ES256).
pub fn open_jws(jws: &str, point: Option<&[u8]>) -> anyhow::Result<(Value, Value)> {
    let mut it = jws.split('.');
    let (h, p, s) = (
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
    );
    let header: Value = serde_json::from_slice(&unb64(h)?)?;
    let payload: Value = serde_json::from_slice(&unb64(p)?)?;
    if let Some(point) = point {
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(format!("{h}.{p}").as_bytes(), &unb64(s)?)
            .map_err(|_| anyhow::anyhow!("bad signature"))?;
    }
    Ok((header, payload))
}

/// The leaf certificate's key and SAN names of a JWS `x5c` header.
pub fn x5c_leaf(header: &Value) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let der =
        STANDARD.decode(header["x5c"][0].as_str().ok_or_else(|| anyhow::anyhow!("no x5c"))?)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) if ip.len() == 4 => {
                    names.push(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]))
                }
                _ => {}
            }
        }
    }
    Ok((cert.public_key().subject_public_key.data.to_vec(), names))
}

fn concat_kdf(z: &[u8], enc: &str, key_len: usize) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(z);
    h.update((enc.len() as u32).to_be_bytes());
    h.update(enc.as_bytes());
    h.update(0u32.to_be_bytes());
    h.update(0u32.to_be_bytes());
    h.update(((key_len * 8) as u32).to_be_bytes());
    h.finalize()[..key_len].to_vec()
}

/// Encrypts `plaintext` to the verifier's P-256 JWK: compact JWE, `ECDH-ES` + `A128GCM`.
pub fn encrypt_to(to: &Value, plaintext: &[u8]) -> anyhow::Result<String> {
    let peer = point_of(to)?;
    let eph = agreement::PrivateKey::generate(&agreement::ECDH_P256)
        .map_err(|_| anyhow::anyhow!("keygen"))?;
    let eph_pub = eph.compute_public_key().map_err(|_| anyhow::anyhow!("pub"))?;
    let enc = "A128GCM";
    let mut header = json!({ "alg": "ECDH-ES", "enc": enc, "epk": jwk(eph_pub.as_ref()) });
    if let Some(kid) = to.get("kid") {
        header["kid"] = kid.clone();
    }
    let cek = agreement::agree(
        &eph,
        agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &peer),
        anyhow::anyhow!("agreement"),
        |z| Ok(concat_kdf(z, enc, 16)),
    )?;
    let h = b64(header.to_string().as_bytes());
    let mut iv = [0u8; 12];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| anyhow::anyhow!("rand"))?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| anyhow::anyhow!("cek"))?,
    );
    let mut data = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(iv),
            aead::Aad::from(h.as_bytes()),
            &mut data,
        )
        .map_err(|_| anyhow::anyhow!("seal"))?;
    Ok(format!("{h}..{}.{}.{}", b64(&iv), b64(&data), b64(tag.as_ref())))
}
