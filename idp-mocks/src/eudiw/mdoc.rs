//! ISO 18013-5 mdoc for the mocks: the provider's IssuerSigned PID (MSO signed in a COSE_Sign1
//! with `x5chain`) and the wallet's DeviceResponse with a DeviceSignature over the OpenID4VP 1.0
//! session transcript (Appendix B.2.6.1, `OpenID4VPHandover`). Written apart from the broker's
//! verifier, so a bug in one is caught by the other.

use super::jose::EcKey;
use ciborium::Value as Cbor;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const PID_DOCTYPE: &str = "eu.europa.ec.eudi.pid.1";

pub fn encode(v: &Cbor) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out)?;
    Ok(out)
}

pub fn decode(b: &[u8]) -> anyhow::Result<Cbor> {
    Ok(ciborium::from_reader(b)?)
}

/// `#6.24(bstr .cbor v)`.
pub fn tag24(v: &Cbor) -> anyhow::Result<Cbor> {
    Ok(Cbor::Tag(24, Box::new(Cbor::Bytes(encode(v)?))))
}

pub fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_string())
}

pub fn map(entries: Vec<(&str, Cbor)>) -> Cbor {
    Cbor::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
}

pub fn field<'a>(m: &'a Cbor, k: &str) -> Option<&'a Cbor> {
    m.as_map()?.iter().find(|(key, _)| key.as_text() == Some(k)).map(|(_, v)| v)
}

/// A COSE_Sign1 by `key` (ES256, `alg` protected), over `payload` (detached when `attached` is
/// false), with `unprotected` headers.
pub fn sign1(
    key: &EcKey,
    payload: &[u8],
    attached: bool,
    unprotected: Vec<(Cbor, Cbor)>,
) -> anyhow::Result<Cbor> {
    let protected =
        encode(&Cbor::Map(vec![(Cbor::Integer(1.into()), Cbor::Integer((-7).into()))]))?;
    let to_sign = encode(&Cbor::Array(vec![
        text("Signature1"),
        Cbor::Bytes(protected.clone()),
        Cbor::Bytes(Vec::new()),
        Cbor::Bytes(payload.to_vec()),
    ]))?;
    let sig = key.sign_raw(&to_sign)?;
    Ok(Cbor::Array(vec![
        Cbor::Bytes(protected),
        Cbor::Map(unprotected),
        if attached { Cbor::Bytes(payload.to_vec()) } else { Cbor::Null },
        Cbor::Bytes(sig),
    ]))
}

/// The device key as COSE_Key (EC2, P-256).
pub fn cose_key(point: &[u8]) -> Cbor {
    let i = |n: i64| Cbor::Integer(n.into());
    Cbor::Map(vec![
        (i(1), i(2)),
        (i(-1), i(1)),
        (i(-2), Cbor::Bytes(point[1..33].to_vec())),
        (i(-3), Cbor::Bytes(point[33..65].to_vec())),
    ])
}

pub fn tdate(unix: i64) -> Cbor {
    let t = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default();
    Cbor::Tag(0, Box::new(text(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string())))
}

/// RFC 7638 SHA-256 thumbprint of a P-256 JWK.
pub fn jwk_thumbprint(jwk: &Value) -> Vec<u8> {
    let m = |k: &str| jwk[k].as_str().unwrap_or_default().to_string();
    let canon = format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, m("x"), m("y"));
    Sha256::digest(canon.as_bytes()).to_vec()
}

/// OpenID4VP 1.0 Appendix B.2.6.1: `[null, null, ["OpenID4VPHandover", sha256(cbor([client_id,
/// nonce, jwk_thumbprint, response_uri]))]]`.
pub fn session_transcript(
    client_id: &str,
    nonce: &str,
    thumbprint: Option<&[u8]>,
    response_uri: &str,
) -> anyhow::Result<Cbor> {
    let info = encode(&Cbor::Array(vec![
        text(client_id),
        text(nonce),
        thumbprint.map_or(Cbor::Null, |t| Cbor::Bytes(t.to_vec())),
        text(response_uri),
    ]))?;
    Ok(Cbor::Array(vec![
        Cbor::Null,
        Cbor::Null,
        Cbor::Array(vec![text("OpenID4VPHandover"), Cbor::Bytes(Sha256::digest(&info).to_vec())]),
    ]))
}

/// The DeviceResponse presenting `issuer_signed` with the disclosed items only, signed by the
/// device key over `transcript`.
pub fn device_response(
    issuer_signed: &Cbor,
    device: &EcKey,
    transcript: Cbor,
    keep: impl Fn(&str) -> bool,
    rewrite: impl Fn(&str, &Cbor) -> Option<Cbor>,
) -> anyhow::Result<Cbor> {
    let mut namespaces = Vec::new();
    for (ns, items) in
        field(issuer_signed, "nameSpaces").and_then(Cbor::as_map).into_iter().flatten()
    {
        let mut kept = Vec::new();
        for item in items.as_array().into_iter().flatten() {
            let Cbor::Tag(24, inner) = item else { continue };
            let parsed = decode(inner.as_bytes().map(Vec::as_slice).unwrap_or_default())?;
            let name = field(&parsed, "elementIdentifier").and_then(Cbor::as_text).unwrap_or("");
            if !keep(name) {
                continue;
            }
            match field(&parsed, "elementValue").and_then(|v| rewrite(name, v)) {
                Some(new) => {
                    let mut m = parsed.as_map().cloned().unwrap_or_default();
                    for (k, v) in m.iter_mut() {
                        if k.as_text() == Some("elementValue") {
                            *v = new.clone();
                        }
                    }
                    kept.push(tag24(&Cbor::Map(m))?);
                }
                None => kept.push(item.clone()),
            }
        }
        namespaces.push((ns.clone(), Cbor::Array(kept)));
    }
    let device_ns = tag24(&Cbor::Map(Vec::new()))?;
    let auth = encode(&tag24(&Cbor::Array(vec![
        text("DeviceAuthentication"),
        transcript,
        text(PID_DOCTYPE),
        device_ns.clone(),
    ]))?)?;
    let device_sig = sign1(device, &auth, false, Vec::new())?;
    let issuer_auth = field(issuer_signed, "issuerAuth").cloned().unwrap_or(Cbor::Null);
    Ok(map(vec![
        ("version", text("1.0")),
        (
            "documents",
            Cbor::Array(vec![map(vec![
                ("docType", text(PID_DOCTYPE)),
                (
                    "issuerSigned",
                    map(vec![("nameSpaces", Cbor::Map(namespaces)), ("issuerAuth", issuer_auth)]),
                ),
                (
                    "deviceSigned",
                    map(vec![
                        ("nameSpaces", device_ns),
                        ("deviceAuth", map(vec![("deviceSignature", device_sig)])),
                    ]),
                ),
            ])]),
        ),
        ("status", Cbor::Integer(0.into())),
    ]))
}
