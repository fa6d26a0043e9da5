//! ISO 18013-5 mdoc presentations of the PID (`mso_mdoc`, doctype `eu.europa.ec.eudi.pid.1`),
//! as OpenID4VP 1.0 Appendix B.2 carries them: a base64url CBOR `DeviceResponse`. Checked: the
//! IssuerAuth COSE_Sign1 (ES256) by an `x5chain` certificate chained to the trust anchors, the
//! MSO's docType and validity, the digest of every disclosed item, and the DeviceSignature by
//! the MSO's device key over the OpenID4VP session transcript (SPEC §12). COSE_Sign1 is small
//! enough to verify here on aws-lc-rs (README "Choices"); CBOR is `ciborium`.

use super::jose::TrustAnchors;
use super::sdjwt::{Pid, Refusal, StatusRef, Verified, SKEW_S};
use crate::crypto::{b64url_decode, sha256};
use aws_lc_rs::signature;
use ciborium::Value as Cbor;

pub const PID_DOCTYPE: &str = "eu.europa.ec.eudi.pid.1";
/// The PID's namespace has the doctype's name.
pub const PID_NAMESPACE: &str = PID_DOCTYPE;
/// COSE header labels (RFC 9052 / RFC 9360).
const COSE_ALG: i64 = 1;
const COSE_X5CHAIN: i64 = 33;
const ES256: i64 = -7;
/// CBOR tag of an embedded CBOR data item (`bstr .cbor`, RFC 8949 §3.4.5.1).
const TAG_ENCODED_CBOR: u64 = 24;

/// What the presentation must be bound to (OpenID4VP 1.0 Appendix B.2.6.1).
pub struct Expect<'a> {
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub response_uri: &'a str,
    /// RFC 7638 SHA-256 thumbprint of the JWK the response was encrypted to.
    pub jwk_thumbprint: Option<&'a [u8]>,
    pub now: i64,
}

pub fn decode(bytes: &[u8]) -> Result<Cbor, Refusal> {
    ciborium::from_reader(bytes).map_err(|_| Refusal::Malformed)
}

pub fn encode(v: &Cbor) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|_| Refusal::Malformed)?;
    Ok(out)
}

/// The encoding of `#6.24(bstr)` around `inner`, written out so that digests never depend on
/// how a library encodes tags (preferred serialization, RFC 8949 §4.1).
pub fn tagged24(inner: &[u8]) -> Vec<u8> {
    let mut out = vec![0xd8, 0x18];
    let n = inner.len() as u64;
    match n {
        0..=23 => out.push(0x40 | n as u8),
        24..=0xff => out.extend([0x58, n as u8]),
        0x100..=0xffff => {
            out.push(0x59);
            out.extend((n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0x5a);
            out.extend((n as u32).to_be_bytes());
        }
        _ => {
            out.push(0x5b);
            out.extend(n.to_be_bytes());
        }
    }
    out.extend(inner);
    out
}

fn field<'a>(map: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    map.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
}

fn label(map: &Cbor, key: i64) -> Option<&Cbor> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_integer().is_some_and(|i| i128::from(i) == i128::from(key)))
        .map(|(_, v)| v)
}

/// The bytes inside `#6.24(bstr)`.
fn embedded(v: &Cbor) -> Option<&[u8]> {
    match v {
        Cbor::Tag(TAG_ENCODED_CBOR, inner) => inner.as_bytes().map(Vec::as_slice),
        _ => None,
    }
}

fn int(v: &Cbor) -> Option<i128> {
    v.as_integer().map(i128::from)
}

/// `tdate` (`#6.0(tstr)`, RFC 3339) or `full-date` (`#6.1004(tstr)`), as text.
fn dated_text(v: &Cbor) -> Option<&str> {
    match v {
        Cbor::Tag(0 | 1004, inner) => inner.as_text(),
        Cbor::Text(t) => Some(t),
        _ => None,
    }
}

fn tdate(v: &Cbor) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(dated_text(v)?).ok().map(|d| d.timestamp())
}

/// The `SessionTranscript` of OpenID4VP 1.0 (final) Appendix B.2.6.1, for requests not made
/// over the Digital Credentials API:
/// `[null, null, ["OpenID4VPHandover", sha256(cbor([client_id, nonce, jwkThumbprint,
/// response_uri]))]]`, where `jwkThumbprint` is the RFC 7638 thumbprint of the verifier's
/// encryption key (`direct_post.jwt`), else null.
pub fn session_transcript(
    client_id: &str,
    nonce: &str,
    jwk_thumbprint: Option<&[u8]>,
    response_uri: &str,
) -> Result<Cbor, Refusal> {
    let info = Cbor::Array(vec![
        Cbor::Text(client_id.into()),
        Cbor::Text(nonce.into()),
        jwk_thumbprint.map_or(Cbor::Null, |t| Cbor::Bytes(t.to_vec())),
        Cbor::Text(response_uri.into()),
    ]);
    let hash = sha256(&encode(&info)?);
    Ok(Cbor::Array(vec![
        Cbor::Null,
        Cbor::Null,
        Cbor::Array(vec![Cbor::Text("OpenID4VPHandover".into()), Cbor::Bytes(hash.to_vec())]),
    ]))
}

/// RFC 9052 §4.4: `["Signature1", protected, external_aad (empty), payload]`.
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, Refusal> {
    encode(&Cbor::Array(vec![
        Cbor::Text("Signature1".into()),
        Cbor::Bytes(protected.to_vec()),
        Cbor::Bytes(Vec::new()),
        Cbor::Bytes(payload.to_vec()),
    ]))
}

/// A COSE_Sign1 (tagged 18 or not), parsed, not yet verified.
struct CoseSign1 {
    protected_bytes: Vec<u8>,
    protected: Cbor,
    unprotected: Cbor,
    payload: Option<Vec<u8>>,
    signature: Vec<u8>,
}

impl CoseSign1 {
    fn parse(v: &Cbor) -> Result<Self, Refusal> {
        let v = match v {
            Cbor::Tag(18, inner) => inner.as_ref(),
            other => other,
        };
        let Some([p, u, payload, sig]) = v.as_array().map(Vec::as_slice) else {
            return Err(Refusal::Malformed);
        };
        let protected_bytes = p.as_bytes().ok_or(Refusal::Malformed)?.clone();
        let protected = if protected_bytes.is_empty() {
            Cbor::Map(Vec::new())
        } else {
            decode(&protected_bytes)?
        };
        let payload = match payload {
            Cbor::Null => None,
            Cbor::Bytes(b) => Some(b.clone()),
            _ => return Err(Refusal::Malformed),
        };
        if !u.is_map() {
            return Err(Refusal::Malformed);
        }
        Ok(Self {
            protected_bytes,
            protected,
            unprotected: u.clone(),
            payload,
            signature: sig.as_bytes().ok_or(Refusal::Malformed)?.clone(),
        })
    }

    /// ES256 only (HAIP), and `alg` must be protected: never taken from the unprotected part.
    fn verify_es256(&self, payload: &[u8], point: &[u8]) -> Result<(), ()> {
        if label(&self.protected, COSE_ALG).and_then(int) != Some(i128::from(ES256)) {
            return Err(());
        }
        let input = sig_structure(&self.protected_bytes, payload).map_err(|_| ())?;
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(&input, &self.signature)
            .map_err(|_| ())
    }

    /// `x5chain` (label 33): one certificate or an array, leaf first, as base64 for
    /// [`TrustAnchors::leaf_key`].
    fn x5chain(&self) -> Vec<String> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let v = label(&self.protected, COSE_X5CHAIN).or(label(&self.unprotected, COSE_X5CHAIN));
        match v {
            Some(Cbor::Bytes(b)) => vec![b64.encode(b)],
            Some(Cbor::Array(a)) => {
                a.iter().filter_map(Cbor::as_bytes).map(|b| b64.encode(b)).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The uncompressed point of a COSE_Key EC2 P-256 (`{1: 2, -1: 1, -2: x, -3: y}`).
fn cose_key_point(k: &Cbor) -> Option<Vec<u8>> {
    if label(k, 1).and_then(int) != Some(2) || label(k, -1).and_then(int) != Some(1) {
        return None;
    }
    let coord = |l| label(k, l).and_then(Cbor::as_bytes).filter(|c| c.len() == 32);
    let mut point = vec![4u8];
    point.extend(coord(-2)?);
    point.extend(coord(-3)?);
    Some(point)
}

/// Verifies one `vp_token` entry (base64url `DeviceResponse` with one PID document).
pub fn verify(
    token: &str,
    anchors: &TrustAnchors,
    expect: &Expect<'_>,
) -> Result<Verified, Refusal> {
    let response = decode(&b64url_decode(token).ok_or(Refusal::Malformed)?)?;
    if field(&response, "status").and_then(int) != Some(0) {
        return Err(Refusal::Malformed);
    }
    let Some([doc]) = field(&response, "documents").and_then(Cbor::as_array).map(Vec::as_slice)
    else {
        return Err(Refusal::Malformed);
    };
    if field(doc, "docType").and_then(Cbor::as_text) != Some(PID_DOCTYPE) {
        return Err(Refusal::NotPid);
    }
    let issuer_signed = field(doc, "issuerSigned").ok_or(Refusal::Malformed)?;
    // IssuerAuth: the issuer's certificate chain, then its signature over the MSO.
    let issuer_auth =
        CoseSign1::parse(field(issuer_signed, "issuerAuth").ok_or(Refusal::Malformed)?)?;
    let key = anchors.leaf_key(&issuer_auth.x5chain(), expect.now).map_err(|e| {
        tracing::info!(error = %e, "mdoc issuer refused");
        Refusal::UntrustedIssuer
    })?;
    let mso_bytes = issuer_auth.payload.as_deref().ok_or(Refusal::Malformed)?;
    issuer_auth.verify_es256(mso_bytes, &key).map_err(|()| Refusal::UntrustedIssuer)?;
    let mso = decode(embedded(&decode(mso_bytes)?).ok_or(Refusal::Malformed)?)?;
    if field(&mso, "docType").and_then(Cbor::as_text) != Some(PID_DOCTYPE) {
        return Err(Refusal::NotPid);
    }
    if field(&mso, "digestAlgorithm").and_then(Cbor::as_text) != Some("SHA-256") {
        return Err(Refusal::Malformed);
    }
    let validity = field(&mso, "validityInfo").ok_or(Refusal::Expired)?;
    let from = field(validity, "validFrom").and_then(tdate).ok_or(Refusal::Expired)?;
    let until = field(validity, "validUntil").and_then(tdate).ok_or(Refusal::Expired)?;
    if until <= expect.now || from > expect.now + SKEW_S {
        return Err(Refusal::Expired);
    }
    // Device authentication: the MSO's device key signed this session (our nonce, client id
    // and response URI), so the document was not copied from another presentation.
    let device_key = field(&mso, "deviceKeyInfo")
        .and_then(|i| field(i, "deviceKey"))
        .and_then(cose_key_point)
        .ok_or(Refusal::KeyBinding)?;
    let device_signed = field(doc, "deviceSigned").ok_or(Refusal::NoKeyBinding)?;
    let device_ns = field(device_signed, "nameSpaces").ok_or(Refusal::NoKeyBinding)?;
    embedded(device_ns).ok_or(Refusal::Malformed)?;
    let device_sig = field(device_signed, "deviceAuth")
        .and_then(|a| field(a, "deviceSignature"))
        .ok_or(Refusal::NoKeyBinding)
        .and_then(CoseSign1::parse)?;
    if device_sig.payload.is_some() {
        return Err(Refusal::KeyBinding);
    }
    let transcript = session_transcript(
        expect.client_id,
        expect.nonce,
        expect.jwk_thumbprint,
        expect.response_uri,
    )?;
    let device_auth = encode(&Cbor::Array(vec![
        Cbor::Text("DeviceAuthentication".into()),
        transcript,
        Cbor::Text(PID_DOCTYPE.into()),
        device_ns.clone(),
    ]))?;
    device_sig
        .verify_es256(&tagged24(&device_auth), &device_key)
        .map_err(|()| Refusal::KeyBinding)?;
    // Every disclosed item must be one the issuer signed.
    let digests = field(&mso, "valueDigests").ok_or(Refusal::Malformed)?;
    let mut elements: Vec<(String, Cbor)> = Vec::new();
    let namespaces = field(issuer_signed, "nameSpaces").and_then(Cbor::as_map);
    for (ns, items) in namespaces.into_iter().flatten() {
        let ns = ns.as_text().ok_or(Refusal::Malformed)?;
        let signed = field(digests, ns).ok_or(Refusal::UndisclosedDigest)?;
        for item in items.as_array().ok_or(Refusal::Malformed)? {
            let inner = embedded(item).ok_or(Refusal::Malformed)?;
            let parsed = decode(inner)?;
            let id = field(&parsed, "digestID").and_then(int).ok_or(Refusal::Malformed)?;
            let expected = signed
                .as_map()
                .and_then(|m| m.iter().find(|(k, _)| int(k) == Some(id)))
                .and_then(|(_, d)| d.as_bytes())
                .ok_or(Refusal::UndisclosedDigest)?;
            if !crate::crypto::ct_eq(expected, &sha256(&tagged24(inner))) {
                return Err(Refusal::UndisclosedDigest);
            }
            let name = field(&parsed, "elementIdentifier")
                .and_then(Cbor::as_text)
                .ok_or(Refusal::Malformed)?;
            let value = field(&parsed, "elementValue").ok_or(Refusal::Malformed)?;
            if ns != PID_NAMESPACE {
                continue;
            }
            if elements.iter().any(|(n, _)| n == name) {
                return Err(Refusal::Malformed);
            }
            elements.push((name.to_string(), value.clone()));
        }
    }
    let get = |k: &str| elements.iter().find(|(n, _)| n == k).map(|(_, v)| v);
    let text = |k: &str| {
        get(k).and_then(Cbor::as_text).filter(|v| !v.trim().is_empty()).map(str::to_string)
    };
    let birth_date = get("birth_date")
        .and_then(dated_text)
        .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
        .map(str::to_string)
        .ok_or(Refusal::ClaimMissing)?;
    let nationalities: Vec<String> = match get("nationality") {
        Some(Cbor::Array(a)) => a.iter().filter_map(Cbor::as_text).map(str::to_string).collect(),
        Some(Cbor::Text(t)) => vec![t.clone()],
        _ => Vec::new(),
    };
    if nationalities.is_empty() {
        return Err(Refusal::ClaimMissing);
    }
    let issuing_country = text("issuing_country")
        .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        .ok_or(Refusal::ClaimMissing)?;
    let pid = Pid {
        family_name: text("family_name").ok_or(Refusal::ClaimMissing)?,
        given_name: text("given_name").ok_or(Refusal::ClaimMissing)?,
        birth_date,
        nationalities,
        issuing_country,
        personal_administrative_number: text("personal_administrative_number"),
    };
    // The Token Status List entry, when the MSO has one (`status.status_list`).
    let status = match field(&mso, "status").and_then(|s| field(s, "status_list")) {
        None => None,
        Some(l) => Some(StatusRef {
            uri: field(l, "uri").and_then(Cbor::as_text).ok_or(Refusal::StatusUnknown)?.into(),
            idx: field(l, "idx")
                .and_then(int)
                .and_then(|i| u64::try_from(i).ok())
                .ok_or(Refusal::StatusUnknown)?,
        }),
    };
    Ok(Verified { pid, status, exp: until })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged24_matches_ciborium_and_the_length_forms() {
        for n in [0usize, 23, 24, 255, 256, 70_000] {
            let inner = vec![7u8; n];
            let via = encode(&Cbor::Tag(24, Box::new(Cbor::Bytes(inner.clone())))).unwrap();
            assert_eq!(tagged24(&inner), via, "length {n}");
        }
    }

    /// OpenID4VP 1.0 Appendix B.2.6.1: the handover hashes the four values in this order.
    #[test]
    fn session_transcript_is_the_openid4vp_handover() {
        let t = session_transcript("x509_san_dns:rp", "n", Some(&[1, 2]), "https://rp/r").unwrap();
        let info = encode(&Cbor::Array(vec![
            Cbor::Text("x509_san_dns:rp".into()),
            Cbor::Text("n".into()),
            Cbor::Bytes(vec![1, 2]),
            Cbor::Text("https://rp/r".into()),
        ]))
        .unwrap();
        let handover = &t.as_array().unwrap()[2];
        assert_eq!(handover.as_array().unwrap()[0].as_text(), Some("OpenID4VPHandover"));
        assert_eq!(handover.as_array().unwrap()[1].as_bytes(), Some(&sha256(&info).to_vec()));
        assert!(t.as_array().unwrap()[0].is_null());
    }

    /// `alg` counts only when protected: the same signature with `alg` moved to the
    /// unprotected header is refused, as is a signature over other bytes.
    #[test]
    fn cose_sign1_needs_a_protected_es256_alg() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &kp.serialize_der())
            .unwrap();
        let point = key.public_key().as_ref().to_vec();
        let alg = || vec![(Cbor::Integer(1.into()), Cbor::Integer((-7).into()))];
        let sign = |protected: &[u8]| {
            let input = sig_structure(protected, b"mso").unwrap();
            key.sign(&SystemRandom::new(), &input).unwrap().as_ref().to_vec()
        };
        let protected = encode(&Cbor::Map(alg())).unwrap();
        let good = Cbor::Tag(
            18,
            Box::new(Cbor::Array(vec![
                Cbor::Bytes(protected.clone()),
                Cbor::Map(Vec::new()),
                Cbor::Bytes(b"mso".to_vec()),
                Cbor::Bytes(sign(&protected)),
            ])),
        );
        let parsed = CoseSign1::parse(&good).unwrap();
        assert_eq!(parsed.verify_es256(b"mso", &point), Ok(()));
        assert_eq!(parsed.verify_es256(b"other", &point), Err(()));
        let unprotected = Cbor::Array(vec![
            Cbor::Bytes(Vec::new()),
            Cbor::Map(alg()),
            Cbor::Bytes(b"mso".to_vec()),
            Cbor::Bytes(sign(&[])),
        ]);
        assert_eq!(CoseSign1::parse(&unprotected).unwrap().verify_es256(b"mso", &point), Err(()));
    }
}
