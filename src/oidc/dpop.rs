//! DPoP (RFC 9449, SPEC §11): proofs of possession at `/token` and `/userinfo` (and, through
//! [`check_proof`], any other endpoint that takes tokens), and the bindings of tokens to a
//! proof's key (its RFC 7638 thumbprint, `jkt`).
//!
//! A proof is a JWT signed by the client's key, carried in its header (`jwk`): `typ:
//! dpop+jwt`, `htm`/`htu` naming this request, `iat` within 60 s, a `jti` never seen before on
//! any replica (kept in `seen_once` until the window closes), and at resource endpoints `ath`,
//! the hash of the access token it comes with.

use crate::crypto;
use crate::store::{Store, StoreError};
use serde::Deserialize;

/// The algorithms a proof may use (advertised as `dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 3] = ["ES256", "PS256", "EdDSA"];

/// How far a proof's `iat` may be from the server's clock, either way.
pub const WINDOW_S: i64 = 60;

/// The RFC 7638 thumbprint of a proof's public key: what a bound token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jkt(pub String);

/// Why a proof is refused (RFC 9449 `invalid_dpop_proof`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DpopError {
    #[error("the DPoP proof is not a JWT")]
    Malformed,
    #[error("the DPoP proof's typ must be dpop+jwt")]
    WrongType,
    #[error("the DPoP proof's algorithm must be one of ES256, PS256, EdDSA")]
    UnsupportedAlg,
    #[error("the DPoP proof must carry a public jwk in its header")]
    BadKey,
    #[error("the DPoP proof's signature does not verify with its jwk")]
    BadSignature,
    #[error("the DPoP proof's htm is not this request's method")]
    WrongMethod,
    #[error("the DPoP proof's htu is not this request's URL")]
    WrongUrl,
    #[error("the DPoP proof's iat is more than 60 s away")]
    Stale,
    #[error("the DPoP proof was used before")]
    Replayed,
    #[error("the DPoP proof's ath is missing")]
    MissingAth,
    #[error("the DPoP proof's ath is not the hash of the access token")]
    WrongAth,
    #[error("the DPoP proof is by another key than the token's")]
    WrongKey,
    #[error("this client must send a DPoP proof")]
    Required,
    #[error("storage: {0}")]
    Store(String),
}

impl From<StoreError> for DpopError {
    fn from(e: StoreError) -> Self {
        DpopError::Store(e.to_string())
    }
}

impl From<DpopError> for super::OidcError {
    fn from(e: DpopError) -> Self {
        match e {
            DpopError::Store(s) => super::OidcError::Server(s.into()),
            e => super::OidcError::Custom("invalid_dpop_proof", e.to_string()),
        }
    }
}

/// How an access token came to a resource endpoint (RFC 6750 / RFC 9449 `Authorization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    Bearer(&'a str),
    Dpop(&'a str),
}

impl<'a> Presented<'a> {
    /// Parses an `Authorization` header value (the scheme is case-insensitive).
    pub fn parse(authorization: &'a str) -> Option<Self> {
        let (scheme, token) = authorization.split_once(' ')?;
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Self::Bearer(token))
        } else if scheme.eq_ignore_ascii_case("dpop") {
            Some(Self::Dpop(token))
        } else {
            None
        }
    }
}

impl super::Provider {
    /// Binds a public client's grant (its refresh tokens) to `jkt`, before the response leaves.
    /// Access tokens need no row: their binding is the signed `cnf.jkt` claim (RFC 9068).
    pub(crate) async fn bind_dpop(
        &self,
        jkt: &Jkt,
        grant: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let ttl = self.cfg.refresh_token_ttl_s;
        self.store.bind_dpop(&format!("grant:{grant}"), &jkt.0, now + ttl).await
    }

    /// A bound refresh token is refreshed only with a proof by its key.
    pub(crate) async fn check_refresh_binding(
        &self,
        refresh_hash: &str,
        jkt: Option<&Jkt>,
    ) -> Result<(), super::OidcError> {
        let Some(row) = self.store.refresh_token(refresh_hash).await? else { return Ok(()) };
        let Some(bound) = self.store.dpop_binding(&format!("grant:{}", row.grant.id)).await? else {
            return Ok(());
        };
        match jkt {
            Some(j) if crypto::ct_eq(j.0.as_bytes(), bound.as_bytes()) => Ok(()),
            Some(_) => Err(DpopError::WrongKey.into()),
            None => Err(super::OidcError::InvalidGrant(
                "the refresh token is bound to a DPoP key: send a DPoP proof".into(),
            )),
        }
    }

    /// `/userinfo` with the token as presented: a DPoP-bound token (`cnf.jkt`) only as `DPoP`
    /// with a proof by its key (`ath` included), never as `Bearer`; a certificate-bound one
    /// (`cnf.x5t#S256`) only with that TLS client certificate.
    pub async fn userinfo_presented(
        &self,
        presented: Presented<'_>,
        proof: Option<&str>,
        method: &str,
        chain: Option<&crate::eid::server::PeerChain>,
        now: i64,
    ) -> Result<serde_json::Value, super::OidcError> {
        let token = match presented {
            Presented::Bearer(t) | Presented::Dpop(t) => t,
        };
        let (_, claims) = self.access_token_key(token)?;
        let url = self.endpoint("/userinfo");
        self.check_dpop_presentation(&claims, presented, proof, method, &url, now).await?;
        self.userinfo_over(token, chain, now).await
    }

    /// RFC 9449 §7 at a resource endpoint: the access token's `cnf.jkt` against the way it
    /// was presented and the proof that came with it.
    pub async fn check_dpop_presentation(
        &self,
        claims: &super::access_token::AccessClaims,
        presented: Presented<'_>,
        proof: Option<&str>,
        method: &str,
        url: &str,
        now: i64,
    ) -> Result<(), super::OidcError> {
        use super::OidcError::InvalidToken;
        let bound = claims.get("cnf").and_then(|c| c.get("jkt")).and_then(|v| v.as_str());
        match (bound, presented) {
            (Some(jkt), Presented::Dpop(token)) => {
                let proof = proof.ok_or_else(|| InvalidToken("a DPoP proof is required".into()))?;
                let got = check_proof(&self.store, proof, method, url, Some(token), now)
                    .await
                    .map_err(|e| match e {
                        DpopError::Store(s) => super::OidcError::Server(s.into()),
                        e => InvalidToken(e.to_string()),
                    })?;
                if !crypto::ct_eq(got.0.as_bytes(), jkt.as_bytes()) {
                    return Err(InvalidToken(DpopError::WrongKey.to_string()));
                }
                Ok(())
            }
            (Some(_), Presented::Bearer(_)) => Err(InvalidToken(
                "this access token is DPoP-bound: send it as Authorization: DPoP with a proof"
                    .into(),
            )),
            (None, Presented::Dpop(_)) => {
                Err(InvalidToken("this access token is not DPoP-bound".into()))
            }
            (None, Presented::Bearer(_)) => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    ath: Option<String>,
}

/// What a proof proves, before its `jti` is spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    pub jkt: Jkt,
    pub jti: String,
}

/// The URL a proof's `htu` must name: scheme, host, port and path, without query or fragment
/// (RFC 9449 §4.3), compared after URL normalisation.
fn htu_of(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    u.set_query(None);
    u.set_fragment(None);
    Some(u.to_string())
}

/// The RFC 7638 thumbprint of a public JWK (the required members in lexicographic order).
pub fn thumbprint(jwk: &serde_json::Value) -> Option<Jkt> {
    let s = |k: &str| jwk.get(k).and_then(serde_json::Value::as_str);
    let canonical = match s("kty")? {
        "EC" => {
            format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, s("crv")?, s("x")?, s("y")?)
        }
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv")?, s("x")?),
        _ => return None,
    };
    Some(Jkt(crypto::b64url(&crypto::sha256(canonical.as_bytes()))))
}

/// Verifies a proof for `method` on `url` at `now` (signature, `typ`, algorithm, `htm`, `htu`,
/// `iat`, and `ath` when `access_token` is given); the `jti` is not spent here.
pub fn verify_proof(
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    now: i64,
) -> Result<VerifiedProof, DpopError> {
    use jsonwebtoken::Algorithm;
    let mut parts = proof.split('.');
    let header_b64 = parts.next().ok_or(DpopError::Malformed)?;
    let header_bytes = crypto::b64url_decode(header_b64).ok_or(DpopError::Malformed)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header_bytes).map_err(|_| DpopError::Malformed)?;
    if header.get("typ").and_then(serde_json::Value::as_str) != Some("dpop+jwt") {
        return Err(DpopError::WrongType);
    }
    let alg = match header.get("alg").and_then(serde_json::Value::as_str) {
        Some("ES256") => Algorithm::ES256,
        Some("PS256") => Algorithm::PS256,
        Some("EdDSA") => Algorithm::EdDSA,
        _ => return Err(DpopError::UnsupportedAlg),
    };
    let jwk_value = header.get("jwk").ok_or(DpopError::BadKey)?;
    // A private key in the header would be a leak, and never what the client proves.
    if ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|k| jwk_value.get(k).is_some()) {
        return Err(DpopError::BadKey);
    }
    let jkt = thumbprint(jwk_value).ok_or(DpopError::BadKey)?;
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(jwk_value.clone()).map_err(|_| DpopError::BadKey)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::BadKey)?;
    let mut v = jsonwebtoken::Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &v)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => DpopError::BadSignature,
            _ => DpopError::Malformed,
        })?
        .claims;
    if claims.htm != method {
        return Err(DpopError::WrongMethod);
    }
    if htu_of(&claims.htu).is_none() || htu_of(&claims.htu) != htu_of(url) {
        return Err(DpopError::WrongUrl);
    }
    if (claims.iat - now).abs() > WINDOW_S {
        return Err(DpopError::Stale);
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(DpopError::Malformed);
    }
    if let Some(token) = access_token {
        let want = crypto::b64url(&crypto::sha256(token.as_bytes()));
        let ath = claims.ath.as_deref().ok_or(DpopError::MissingAth)?;
        if !crypto::ct_eq(ath.as_bytes(), want.as_bytes()) {
            return Err(DpopError::WrongAth);
        }
    }
    Ok(VerifiedProof { jkt, jti: claims.jti })
}

/// [`verify_proof`], then the `jti` spent on every replica (a proof is used once): the one
/// check every endpoint that takes DPoP calls.
pub async fn check_proof(
    store: &Store,
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    now: i64,
) -> Result<Jkt, DpopError> {
    let p = verify_proof(proof, method, url, access_token, now)?;
    // Keyed by key and jti: two clients cannot spend each other's jti.
    let key = format!("dpop:{}:{}", p.jkt.0, crypto::token_hash(&p.jti));
    if !store.see_once(&key, now + 2 * WINDOW_S).await? {
        return Err(DpopError::Replayed);
    }
    Ok(p.jkt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(thumbprint(&jwk).unwrap().0, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn htu_ignores_query_and_fragment_only() {
        assert_eq!(htu_of("https://a.example/token?x=1#f"), htu_of("https://a.example/token"));
        assert_eq!(htu_of("HTTPS://A.example:443/token"), htu_of("https://a.example/token"));
        assert_ne!(htu_of("https://a.example/userinfo"), htu_of("https://a.example/token"));
    }
}
