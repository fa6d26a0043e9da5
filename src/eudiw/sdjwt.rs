//! SD-JWT VC presentations of the PID (`dc+sd-jwt`, `vct` `urn:eudi:pid:1`): the issuer's
//! signature chained to the trust anchors, validity, every disclosure's digest in `_sd`, and
//! the key-binding JWT (SPEC §12). Parse, don't validate: what comes out is a [`Pid`].

use super::jose::{p256_point, Jws, TrustAnchors};
use crate::crypto::{b64url, b64url_decode, sha256};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub const PID_VCT: &str = "urn:eudi:pid:1";
/// How old a key-binding JWT may be (SPEC §12), and the clock skew allowed the other way.
pub const KB_MAX_AGE_S: i64 = 300;
pub const SKEW_S: i64 = 60;

/// Why a presentation is refused; each has its own page text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    #[error("malformed presentation")]
    Malformed,
    #[error("the issuer is not trusted")]
    UntrustedIssuer,
    #[error("the credential has expired or is not valid yet")]
    Expired,
    #[error("the credential is revoked or suspended")]
    Revoked,
    #[error("the credential's status is unknown")]
    StatusUnknown,
    #[error("a disclosure is not in _sd")]
    UndisclosedDigest,
    #[error("the key-binding JWT is missing")]
    NoKeyBinding,
    #[error("the key-binding JWT is wrong")]
    KeyBinding,
    #[error("the nonce is wrong")]
    WrongNonce,
    #[error("the audience is wrong")]
    WrongAudience,
    #[error("a required claim was withheld")]
    ClaimMissing,
    #[error("not a PID")]
    NotPid,
    #[error("the presentation was used before")]
    Replayed,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::StatusUnknown => "status_unknown",
            Self::UndisclosedDigest => "undisclosed_digest",
            Self::NoKeyBinding => "no_key_binding",
            Self::KeyBinding => "key_binding",
            Self::WrongNonce => "wrong_nonce",
            Self::WrongAudience => "wrong_audience",
            Self::ClaimMissing => "claim_missing",
            Self::NotPid => "not_pid",
            Self::Replayed => "replayed",
        }
    }
}

/// What the verified PID says about the person.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pid {
    pub family_name: String,
    pub given_name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub nationalities: Vec<String>,
    /// ISO 3166-1 alpha-2 of the member state that issued the PID.
    pub issuing_country: String,
    #[serde(default)]
    pub personal_administrative_number: Option<String>,
}

/// Where the credential's Token Status List entry is (`status.status_list`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRef {
    pub uri: String,
    pub idx: u64,
}

/// A presentation that passed every check but the status list (which needs the network).
#[derive(Debug, Clone)]
pub struct Verified {
    pub pid: Pid,
    /// Required in an SD-JWT VC PID; an mdoc's MSO may carry none.
    pub status: Option<StatusRef>,
    pub exp: i64,
}

/// What the presentation must be bound to.
pub struct Expect<'a> {
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// Verifies `presentation` (`<issuer JWT>~<disclosure>~…~<KB-JWT>`).
pub fn verify(
    presentation: &str,
    anchors: &TrustAnchors,
    expect: &Expect<'_>,
) -> Result<Verified, Refusal> {
    let (body, kb) = presentation.rsplit_once('~').ok_or(Refusal::Malformed)?;
    let mut parts = body.split('~');
    let issuer_jwt = parts.next().ok_or(Refusal::Malformed)?;
    let disclosures: Vec<&str> = parts.collect();
    let jws = Jws::parse(issuer_jwt).map_err(|_| Refusal::Malformed)?;
    if jws.typ() != Some("dc+sd-jwt") {
        return Err(Refusal::NotPid);
    }
    let x5c: Vec<String> = jws
        .header
        .get("x5c")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let key = anchors.leaf_key(&x5c, expect.now).map_err(|e| {
        tracing::info!(error = %e, "PID issuer refused");
        Refusal::UntrustedIssuer
    })?;
    jws.verify_es256(&key).map_err(|_| Refusal::UntrustedIssuer)?;
    let claims = &jws.payload;
    if s(claims, "vct") != Some(PID_VCT) {
        return Err(Refusal::NotPid);
    }
    if s(claims, "_sd_alg").is_some_and(|a| a != "sha-256") {
        return Err(Refusal::Malformed);
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(Refusal::Expired)?;
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(i64::MIN);
    if exp <= expect.now || nbf > expect.now + SKEW_S {
        return Err(Refusal::Expired);
    }
    // Key binding: the holder's key is in `cnf`; the KB-JWT covers everything before it.
    if kb.is_empty() {
        return Err(Refusal::NoKeyBinding);
    }
    let holder = claims
        .get("cnf")
        .and_then(|c| c.get("jwk"))
        .ok_or(Refusal::NoKeyBinding)
        .and_then(|j| p256_point(j).map_err(|_| Refusal::KeyBinding))?;
    let kb = Jws::parse(kb).map_err(|_| Refusal::KeyBinding)?;
    if kb.typ() != Some("kb+jwt") {
        return Err(Refusal::KeyBinding);
    }
    kb.verify_es256(&holder).map_err(|_| Refusal::KeyBinding)?;
    let kbc = &kb.payload;
    let sd_hash = b64url(&sha256(format!("{body}~").as_bytes()));
    if s(kbc, "sd_hash") != Some(sd_hash.as_str()) {
        return Err(Refusal::KeyBinding);
    }
    let iat = kbc.get("iat").and_then(Value::as_i64).ok_or(Refusal::KeyBinding)?;
    if iat < expect.now - KB_MAX_AGE_S || iat > expect.now + SKEW_S {
        return Err(Refusal::KeyBinding);
    }
    if !crate::crypto::ct_eq(s(kbc, "nonce").unwrap_or("").as_bytes(), expect.nonce.as_bytes()) {
        return Err(Refusal::WrongNonce);
    }
    if s(kbc, "aud") != Some(expect.client_id) {
        return Err(Refusal::WrongAudience);
    }
    let disclosed = disclose(claims, &disclosures)?;
    let status = disclosed
        .get("status")
        .and_then(|st| st.get("status_list"))
        .and_then(|l| {
            Some(StatusRef { uri: s(l, "uri")?.to_string(), idx: l.get("idx")?.as_u64()? })
        })
        .ok_or(Refusal::StatusUnknown)?;
    let text = |k: &str| s(&disclosed, k).filter(|v| !v.trim().is_empty()).map(str::to_string);
    let birth_date = text("birth_date")
        .filter(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok())
        .ok_or(Refusal::ClaimMissing)?;
    let nationalities: Vec<String> = disclosed
        .get("nationalities")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect())
        .filter(|n: &Vec<String>| !n.is_empty())
        .ok_or(Refusal::ClaimMissing)?;
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
    Ok(Verified { pid, status: Some(status), exp })
}

/// The claims with every disclosure put in its place. Each disclosure's digest must be in an
/// `_sd` array (or an array's `...` element) of the payload or of another disclosed value, and
/// be used once; anything else refuses the presentation.
fn disclose(claims: &Value, disclosures: &[&str]) -> Result<Value, Refusal> {
    let mut by_digest: HashMap<String, Value> = HashMap::new();
    for d in disclosures {
        let bytes = b64url_decode(d).ok_or(Refusal::Malformed)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| Refusal::Malformed)?;
        let ok = v.as_array().is_some_and(|a| {
            a.first().is_some_and(Value::is_string)
                && (a.len() == 2
                    || (a.len() == 3 && a[1].as_str().is_some_and(|n| n != "_sd" && n != "...")))
        });
        if !ok {
            return Err(Refusal::Malformed);
        }
        if by_digest.insert(b64url(&sha256(d.as_bytes())), v).is_some() {
            return Err(Refusal::Malformed);
        }
    }
    let out = place(claims, &mut by_digest, 0)?;
    if !by_digest.is_empty() {
        return Err(Refusal::UndisclosedDigest);
    }
    Ok(out)
}

fn place(v: &Value, pool: &mut HashMap<String, Value>, depth: usize) -> Result<Value, Refusal> {
    if depth > 16 {
        return Err(Refusal::Malformed);
    }
    Ok(match v {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, val) in o {
                if k == "_sd" || k == "_sd_alg" {
                    continue;
                }
                out.insert(k.clone(), place(val, pool, depth + 1)?);
            }
            for digest in o.get("_sd").and_then(Value::as_array).into_iter().flatten() {
                let Some(d) = digest.as_str().and_then(|d| pool.remove(d)) else { continue };
                let (Some(name), Some(val)) = (d.get(1).and_then(Value::as_str), d.get(2)) else {
                    return Err(Refusal::Malformed);
                };
                if out.contains_key(name) {
                    return Err(Refusal::Malformed);
                }
                out.insert(name.to_string(), place(val, pool, depth + 1)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => {
            let mut out = Vec::new();
            for el in a {
                match el.get("...").and_then(Value::as_str) {
                    Some(d) if el.as_object().is_some_and(|o| o.len() == 1) => {
                        if let Some(disc) = pool.remove(d) {
                            let (Some(val), None) = (disc.get(1), disc.get(2)) else {
                                return Err(Refusal::Malformed);
                            };
                            out.push(place(val, pool, depth + 1)?);
                        }
                    }
                    _ => out.push(place(el, pool, depth + 1)?),
                }
            }
            Value::Array(out)
        }
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn disclosure(v: Value) -> (String, String) {
        let d = b64url(v.to_string().as_bytes());
        let digest = b64url(&sha256(d.as_bytes()));
        (d, digest)
    }

    /// Object properties and array elements (`...`) are put in place; a disclosure whose digest
    /// is nowhere, or that would overwrite a claim, refuses the presentation.
    #[test]
    fn disclosures_go_where_their_digests_are_and_nowhere_else() {
        let (name, name_d) = disclosure(json!(["s1", "family_name", "de Vries"]));
        let (nl, nl_d) = disclosure(json!(["s2", "NL"]));
        let claims = json!({
            "_sd": [name_d, "decoy"],
            "nationalities": [{ "...": nl_d }, "BE"],
            "issuing_country": "NL",
        });
        let out = disclose(&claims, &[&name, &nl]).unwrap();
        assert_eq!(out["family_name"], "de Vries");
        assert_eq!(out["nationalities"], json!(["NL", "BE"]));
        assert!(out.get("_sd").is_none());
        // Withheld: the element's digest stays unresolved and is dropped.
        assert_eq!(disclose(&claims, &[&name]).unwrap()["nationalities"], json!(["BE"]));
        let (stray, _) = disclosure(json!(["s3", "age_over_18", true]));
        assert_eq!(disclose(&claims, &[&name, &stray]), Err(Refusal::UndisclosedDigest));
        let (over, over_d) = disclosure(json!(["s4", "issuing_country", "BE"]));
        let claims = json!({ "_sd": [over_d], "issuing_country": "NL" });
        assert_eq!(disclose(&claims, &[&over]), Err(Refusal::Malformed));
        assert_eq!(disclose(&claims, &[&over, &over]), Err(Refusal::Malformed));
    }
}
