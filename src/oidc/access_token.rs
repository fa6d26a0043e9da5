//! Access tokens as JWTs (RFC 9068, SPEC §10): signed with the provider's JWKS key of
//! `[oidc] access_token_alg` (RS256 unless configured), header
//! `typ: at+jwt`, so that APIs can validate them offline. Every token still has its row in
//! `tokens` (its `jti`, hashed, is the row's `access_hash`): revocation takes effect at once for
//! `/userinfo` and `/introspect`, which read that row.

use super::signing::SigningAlg;
use super::{OidcError, Provider};
use crate::crypto;
use crate::store::ClientRow;
use openidconnect::PrivateSigningKey as _;
use serde_json::{Map, Value};

/// The JWS `typ` of an RFC 9068 access token.
pub const TYP: &str = "at+jwt";

/// The claims of an access token we issued and verified.
pub type AccessClaims = Map<String, Value>;

impl Provider {
    /// Signs `claims` as an access token. `claims` must hold a fresh random `jti`.
    pub fn sign_access_token(&self, claims: &AccessClaims) -> Result<String, OidcError> {
        let alg = self.cfg.access_token_alg;
        let keys = self.keys.current();
        let key = keys
            .active(alg)
            .ok_or_else(|| OidcError::Server(format!("no {} key", alg.as_str()).into()))?;
        let header = serde_json::json!({ "alg": alg.as_str(), "typ": TYP, "kid": key.kid });
        let input = format!(
            "{}.{}",
            crypto::b64url(header.to_string().as_bytes()),
            crypto::b64url(Value::Object(claims.clone()).to_string().as_bytes())
        );
        let sig = key
            .sign(&alg.jws(), input.as_bytes())
            .map_err(|e| OidcError::Server(format!("access token signing: {e}").into()))?;
        Ok(format!("{input}.{}", crypto::b64url(&sig)))
    }

    /// Verifies that `jwt` is an access token this provider signed (a JWKS key, that key's
    /// algorithm, `typ: at+jwt`, our `iss`) and returns its claims. Expiry and revocation are
    /// the caller's to check, against the token's row.
    pub fn verify_access_token(&self, jwt: &str) -> Result<AccessClaims, OidcError> {
        let bad = || OidcError::InvalidToken("the access token is not valid".into());
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| bad())?;
        if header.typ.as_deref() != Some(TYP) {
            return Err(bad());
        }
        let keys = self.keys.current();
        let key = keys
            .published()
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
            .cloned()
            .ok_or_else(bad)?;
        let alg = match key.alg {
            SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        };
        if header.alg != alg {
            return Err(bad());
        }
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::to_value(key.jwk()).and_then(serde_json::from_value).map_err(|_| bad())?;
        let dk = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| bad())?;
        let mut v = jsonwebtoken::Validation::new(alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_issuer(&[self.issuer.as_str()]);
        v.set_required_spec_claims(&["iss", "sub", "exp", "jti"]);
        let data = jsonwebtoken::decode::<AccessClaims>(jwt, &dk, &v).map_err(|_| bad())?;
        Ok(data.claims)
    }

    /// The hash under which the row of a presented access token is stored: that of its `jti`,
    /// once the signature is verified.
    pub fn access_token_key(&self, presented: &str) -> Result<(String, AccessClaims), OidcError> {
        let claims = self.verify_access_token(presented)?;
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .ok_or_else(|| OidcError::InvalidToken("the access token is not valid".into()))?;
        Ok((crypto::token_hash(jti), claims))
    }

    /// The `aud` for a token of `client`: the `resource`s asked for (RFC 8707), each one the
    /// client registered; without any, its first registered resource, else the issuer.
    pub fn audience(&self, client: &ClientRow, asked: &[String]) -> Result<Value, OidcError> {
        let registered: &[String] =
            client.api.as_ref().map(|a| a.resources.as_slice()).unwrap_or(&[]);
        if asked.is_empty() {
            return Ok(registered.first().cloned().unwrap_or_else(|| self.issuer.clone()).into());
        }
        for r in asked {
            if !registered.iter().any(|x| x == r) {
                return Err(OidcError::Custom(
                    "invalid_target",
                    format!("the resource {r} is not registered for this client"),
                ));
            }
        }
        Ok(match asked {
            [one] => one.clone().into(),
            many => many.to_vec().into(),
        })
    }
}

/// The `resource` parameters of a form body (repeatable, so not in the serde form).
pub fn resources(body: &str) -> Vec<String> {
    url::form_urlencoded::parse(body.as_bytes())
        .filter(|(k, _)| k == "resource")
        .map(|(_, v)| v.into_owned())
        .collect()
}
