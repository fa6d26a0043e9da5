//! Client authentication at the token, revocation and PAR endpoints: `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` (RFC 7523), or none for public clients (PKCE only).
//! A client must use the method it was registered with.

use super::{OidcError, Provider};
use crate::crypto;
use crate::store::{ClientAuthMethod, ClientRow};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::CoreJwsSigningAlgorithm;
use serde::Deserialize;
use std::time::Duration;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Algorithms accepted for client assertions (no `none`, no HMAC).
pub const ASSERTION_ALGS: [(Algorithm, CoreJwsSigningAlgorithm); 4] = [
    (Algorithm::RS256, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
    (Algorithm::PS256, CoreJwsSigningAlgorithm::RsaSsaPssSha256),
    (Algorithm::ES256, CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    (Algorithm::EdDSA, CoreJwsSigningAlgorithm::EdDsa),
];

/// The credentials a request presented, wherever they came from.
#[derive(Debug, Default, Clone)]
pub struct ClientCredentials {
    /// From `Authorization: Basic`.
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    /// The TLS client certificate chain of a request over the mTLS listener (RFC 8705).
    pub tls_chain: Option<crate::eid::server::PeerChain>,
}

impl ClientCredentials {
    /// Parses an `Authorization: Basic` header (RFC 6749 §2.3.1: both parts form-urlencoded).
    pub fn parse_basic(header: &str) -> Option<(String, String)> {
        let b64 = header.strip_prefix("Basic ").or_else(|| header.strip_prefix("basic "))?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (id, secret) = raw.split_once(':')?;
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        Some((dec(id)?, dec(secret)?))
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    jti: Option<String>,
    exp: i64,
}

/// JWKS fetched from clients' `jwks_uri`, kept for five minutes of the broker's clock, for at
/// most [`JWKS_CACHE_MAX_ENTRIES`] URIs: clients change their `jwks_uri` and are removed, and
/// the old URIs must not pile up. (Replay protection of assertion `jti`s is not here but in the
/// database, `Store::see_once`, so that every replica sees every `jti`.)
pub struct RemoteJwksCache {
    /// URI → (fetched at, in unix seconds of [`crate::clock::Clock`]; the set).
    entries: moka::sync::Cache<String, (i64, JwkSet)>,
}

const JWKS_TTL_S: i64 = 300;

/// Far more URIs than a deployment has clients using `jwks_uri`.
pub const JWKS_CACHE_MAX_ENTRIES: u64 = 1_000;

impl Default for RemoteJwksCache {
    fn default() -> Self {
        Self::with_max_entries(JWKS_CACHE_MAX_ENTRIES)
    }
}

impl RemoteJwksCache {
    pub fn with_max_entries(max_entries: u64) -> Self {
        // Freshness is judged by the broker's clock in `fresh`; moka's own time-to-live (the
        // same five minutes) only frees the memory of entries nobody asks for any more.
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_entries)
            .time_to_live(Duration::from_secs(JWKS_TTL_S.unsigned_abs()))
            .build();
        Self { entries }
    }

    /// The set fetched from `uri` less than five minutes before `now`.
    fn fresh(&self, uri: &str, now: i64) -> Option<JwkSet> {
        self.entries.get(uri).filter(|(at, _)| now - at < JWKS_TTL_S).map(|(_, set)| set)
    }

    fn put(&self, uri: &str, now: i64, set: JwkSet) {
        self.entries.insert(uri.to_string(), (now, set));
    }

    /// How many URIs are cached, once pending evictions are done.
    pub fn cached_entries(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

/// Registered clients as the token, revocation and PAR endpoints read them, kept for
/// [`CLIENT_TTL_S`] of the broker's clock: every token request authenticates its client, and
/// the row changes only when an operator changes it.
///
/// How fast a change takes effect: a removed client, a new secret or keys, or another
/// registration is seen by these endpoints within [`CLIENT_TTL_S`] seconds (at most 2 s of
/// real time) on every replica. Removing a client also revokes its grants in the database,
/// which every refresh and `/userinfo` checks at once. Unknown ids are never cached, so a new
/// client works at once and made-up ids cannot fill the cache.
pub struct ClientCache {
    /// Client id → (read at, unix seconds of [`crate::clock::Clock`]; the row).
    entries: moka::sync::Cache<String, (i64, ClientRow)>,
}

/// A cached client row is used while `now - read_at < CLIENT_TTL_S`: in the second it was
/// read and the next one.
pub const CLIENT_TTL_S: i64 = 2;

/// Far more clients than a deployment has.
pub const CLIENT_CACHE_MAX_ENTRIES: u64 = 10_000;

impl Default for ClientCache {
    fn default() -> Self {
        // moka's own time-to-live only frees memory; freshness is judged in `fresh`.
        let entries = moka::sync::Cache::builder()
            .max_capacity(CLIENT_CACHE_MAX_ENTRIES)
            .time_to_live(Duration::from_secs(CLIENT_TTL_S.unsigned_abs()))
            .build();
        Self { entries }
    }
}

impl ClientCache {
    fn fresh(&self, id: &str, now: i64) -> Option<ClientRow> {
        self.entries
            .get(id)
            .filter(|(at, _)| (0..CLIENT_TTL_S).contains(&(now - at)))
            .map(|(_, c)| c)
    }

    fn put(&self, now: i64, client: ClientRow) {
        self.entries.insert(client.id.clone(), (now, client));
    }
}

impl Provider {
    /// The registered client `id`, from [`ClientCache`] when it was read less than
    /// [`CLIENT_TTL_S`] ago.
    pub(super) async fn registered_client(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<ClientRow>, OidcError> {
        if let Some(c) = self.client_cache.fresh(id, now) {
            return Ok(Some(c));
        }
        let client = self.store.client(id).await?;
        if let Some(c) = &client {
            self.client_cache.put(now, c.clone());
        }
        Ok(client)
    }

    pub async fn authenticate_client(
        &self,
        c: &ClientCredentials,
        now: i64,
    ) -> Result<ClientRow, OidcError> {
        let bad = || OidcError::InvalidClient("client authentication failed".into());
        let presented = [
            c.basic.is_some(),
            c.client_secret.is_some(),
            c.client_assertion.is_some() || c.client_assertion_type.is_some(),
        ];
        if presented.iter().filter(|p| **p).count() > 1 {
            return Err(OidcError::InvalidRequest("use one client authentication method".into()));
        }
        if let Some((id, secret)) = &c.basic {
            if c.client_id.as_deref().is_some_and(|b| b != id) {
                return Err(OidcError::InvalidRequest("client_id does not match".into()));
            }
            let client = self.registered_client(id, now).await?.ok_or_else(bad)?;
            return check_secret(&client, ClientAuthMethod::ClientSecretBasic, secret)
                .map(|_| client)
                .map_err(|_| bad());
        }
        if let Some(secret) = &c.client_secret {
            let id = c.client_id.as_deref().ok_or_else(bad)?;
            let client = self.registered_client(id, now).await?.ok_or_else(bad)?;
            return check_secret(&client, ClientAuthMethod::ClientSecretPost, secret)
                .map(|_| client)
                .map_err(|_| bad());
        }
        if let Some(assertion) = &c.client_assertion {
            if c.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
                return Err(OidcError::InvalidRequest("unsupported client_assertion_type".into()));
            }
            return self.check_assertion(c.client_id.as_deref(), assertion, now).await;
        }
        // No credentials: only a public client may do that, or one that authenticates with its
        // TLS client certificate (RFC 8705 §2.1: the registered certificate itself).
        let id = c.client_id.as_deref().ok_or_else(bad)?;
        let client = self.registered_client(id, now).await?.ok_or_else(bad)?;
        match client.auth_method {
            ClientAuthMethod::None => Ok(client),
            ClientAuthMethod::TlsClientAuth => {
                let leaf = c.tls_chain.as_ref().and_then(|ch| ch.0.first()).ok_or_else(|| {
                    OidcError::InvalidClient(
                        "tls_client_auth: present the registered certificate on the mTLS endpoint"
                            .into(),
                    )
                })?;
                let registered = client
                    .api
                    .as_ref()
                    .and_then(|a| a.certificate_sha256.as_deref())
                    .ok_or_else(bad)?;
                let presented = crate::ehealth::thumbprint(leaf);
                if !crypto::ct_eq(presented.as_bytes(), registered.as_bytes()) {
                    return Err(OidcError::InvalidClient(
                        "tls_client_auth: the TLS certificate is not the registered one".into(),
                    ));
                }
                self.check_client_certificate(&client, now)?;
                Ok(client)
            }
            _ => Err(bad()),
        }
    }

    async fn check_assertion(
        &self,
        client_id: Option<&str>,
        jwt: &str,
        now: i64,
    ) -> Result<ClientRow, OidcError> {
        let bad = |why: &str| OidcError::InvalidClient(format!("client assertion rejected: {why}"));
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| bad("malformed"))?;
        if !ASSERTION_ALGS.iter().any(|(a, _)| *a == header.alg) {
            return Err(bad("algorithm not allowed"));
        }
        // The issuer (= subject) names the client; read it before verifying only to find keys.
        let unverified_sub = unverified_claim(jwt, "sub").ok_or_else(|| bad("no sub"))?;
        if client_id.is_some_and(|id| id != unverified_sub) {
            return Err(bad("sub does not match client_id"));
        }
        let client = self
            .registered_client(&unverified_sub, now)
            .await?
            .ok_or_else(|| bad("unknown client"))?;
        if client.auth_method != ClientAuthMethod::PrivateKeyJwt {
            return Err(bad("client is not registered for private_key_jwt"));
        }
        if client.api.as_ref().is_some_and(|a| a.certificate.is_some()) {
            return self.check_certificate_assertion(client, &header, jwt, now).await;
        }
        let keys = self.client_keys(&client, false, now).await?;
        let pick = |set: &JwkSet| -> Option<DecodingKey> {
            let jwk = match &header.kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            }?;
            DecodingKey::from_jwk(jwk).ok()
        };
        let key = match pick(&keys) {
            Some(k) => k,
            None if client.jwks_uri.is_some() => {
                let fresh = self.client_keys(&client, true, now).await?;
                pick(&fresh).ok_or_else(|| bad("no matching key"))?
            }
            None => return Err(bad("no matching key")),
        };
        let mut v = Validation::new(header.alg);
        v.set_audience(&[self.endpoint("/token"), self.issuer.clone(), self.endpoint("/par")]);
        v.set_issuer(&[client.id.as_str()]);
        v.sub = Some(client.id.clone());
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        v.leeway = 30;
        let data = jsonwebtoken::decode::<AssertionClaims>(jwt, &key, &v)
            .map_err(|e| bad(&e.to_string()))?;
        if data.claims.exp > now + 600 {
            return Err(bad("exp too far in the future"));
        }
        let jti = data.claims.jti.ok_or_else(|| bad("no jti"))?;
        let key = format!("jti:{}:{}", client.id, crypto::token_hash(&jti));
        if !self.store.see_once(&key, data.claims.exp + 60).await? {
            return Err(bad("assertion replayed"));
        }
        Ok(client)
    }

    /// `private_key_jwt` signed with the key of the client's registered eHealth certificate
    /// (SPEC §10): the header names that certificate (`x5t#S256`, or `x5c` carrying it),
    /// RS256/PS256/ES256 as its key allows, `aud` the token endpoint or the issuer, `exp` within
    /// five minutes, `jti` once on every replica; then the certificate is checked again (a
    /// revoked or expired one authenticates nobody, also for clients registered before).
    async fn check_certificate_assertion(
        &self,
        client: ClientRow,
        header: &jsonwebtoken::Header,
        jwt: &str,
        now: i64,
    ) -> Result<ClientRow, OidcError> {
        use base64::Engine as _;
        let bad = |why: &str| OidcError::InvalidClient(format!("client assertion rejected: {why}"));
        let pem = client.api.as_ref().and_then(|a| a.certificate.as_deref()).unwrap_or_default();
        let chain = crate::ehealth::parse_pem(pem.as_bytes()).map_err(|e| {
            OidcError::Server(format!("stored certificate of {}: {e}", client.id).into())
        })?;
        let der = chain.first().map(|c| c.as_ref()).unwrap_or_default();
        let registered = crate::ehealth::thumbprint(der);
        let named_by_x5t =
            header.x5t_s256.as_deref().map(|t| crypto::ct_eq(t.as_bytes(), registered.as_bytes()));
        let named_by_x5c = header.x5c.as_ref().map(|x5c| {
            x5c.first()
                .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok())
                .is_some_and(|c| crypto::ct_eq(&c, der))
        });
        match (named_by_x5t, named_by_x5c) {
            (None, None) => {
                return Err(bad("the header must name the certificate (x5t#S256 or x5c)"))
            }
            (Some(false), _) | (_, Some(false)) => {
                return Err(bad("the header names another certificate than the registered one"))
            }
            _ => {}
        }
        let (key, kind) = crate::ehealth::verification_key(der).map_err(|e| {
            OidcError::Server(format!("stored certificate of {}: {e}", client.id).into())
        })?;
        if !kind.allows(header.alg) {
            return Err(bad("the algorithm does not fit the certificate's key"));
        }
        let mut v = Validation::new(header.alg);
        let mut audiences = vec![self.endpoint("/token"), self.issuer.clone()];
        if let Some(m) = &self.mtls_issuer {
            audiences.push(format!("{m}/token"));
        }
        v.set_audience(&audiences);
        v.set_issuer(&[client.id.as_str()]);
        v.sub = Some(client.id.clone());
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        // Expiry is judged by the broker's clock below (5 s leeway), not the library's.
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<AssertionClaims>(jwt, &key, &v)
            .map_err(|e| bad(&e.to_string()))?;
        const LEEWAY: i64 = 5;
        if data.claims.exp + LEEWAY <= now {
            return Err(bad("expired"));
        }
        if data.claims.exp > now + 300 + LEEWAY {
            return Err(bad("exp more than 5 minutes ahead"));
        }
        let jti = data.claims.jti.ok_or_else(|| bad("no jti"))?;
        let seen = format!("jti:{}:{}", client.id, crypto::token_hash(&jti));
        if !self.store.see_once(&seen, data.claims.exp + 60).await? {
            return Err(bad("assertion replayed"));
        }
        self.check_client_certificate(&client, now)?;
        Ok(client)
    }

    async fn client_keys(
        &self,
        client: &ClientRow,
        refresh: bool,
        now: i64,
    ) -> Result<JwkSet, OidcError> {
        if let Some(jwks) = &client.jwks {
            return serde_json::from_str(jwks).map_err(|e| {
                OidcError::Server(format!("stored JWKS of {}: {e}", client.id).into())
            });
        }
        let Some(uri) = &client.jwks_uri else {
            return Err(OidcError::InvalidClient("client has no keys".into()));
        };
        if !refresh {
            if let Some(set) = self.jwks_cache.fresh(uri, now) {
                return Ok(set);
            }
        }
        let set: JwkSet = self
            .http
            .get(uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| OidcError::InvalidClient(format!("client jwks_uri unreachable: {e}")))?
            .json()
            .await
            .map_err(|e| OidcError::InvalidClient(format!("client jwks_uri invalid: {e}")))?;
        self.jwks_cache.put(uri, now, set.clone());
        Ok(set)
    }
}

fn check_secret(client: &ClientRow, method: ClientAuthMethod, secret: &str) -> Result<(), ()> {
    if client.auth_method != method {
        return Err(());
    }
    let Some(stored) = &client.secret_hash else {
        return Err(());
    };
    if crypto::ct_eq(crypto::token_hash(secret).as_bytes(), stored.as_bytes()) {
        Ok(())
    } else {
        Err(())
    }
}

fn unverified_claim(jwt: &str, name: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = crypto::b64url_decode(payload)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%3Aapp:s%2Bcret")
        );
        assert_eq!(
            ClientCredentials::parse_basic(&h),
            Some(("my:app".to_string(), "s+cret".to_string()))
        );
        assert_eq!(ClientCredentials::parse_basic("Bearer x"), None);
        assert_eq!(ClientCredentials::parse_basic("Basic !!!"), None);
    }

    fn client(id: &str) -> ClientRow {
        ClientRow {
            id: id.into(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            auth_method: ClientAuthMethod::None,
            jwks: None,
            jwks_uri: None,
            id_token_alg: "RS256".into(),
            policy: "portal".into(),
            created_at: 0,
            api: None,
            dpop_required: false,
        }
    }

    #[test]
    fn a_cached_client_is_used_for_two_seconds_of_the_broker_clock_at_most() {
        let cache = ClientCache::default();
        cache.put(1_000, client("app"));
        assert!(cache.fresh("app", 1_000).is_some());
        assert!(cache.fresh("app", 1_000 + CLIENT_TTL_S - 1).is_some());
        assert!(cache.fresh("app", 1_000 + CLIENT_TTL_S).is_none());
        // A clock set back does not stretch the window.
        assert!(cache.fresh("app", 999).is_none());
        assert!(cache.fresh("other", 1_000).is_none());
    }

    #[test]
    fn remote_jwks_cache_stays_within_its_bound() {
        let cache = RemoteJwksCache::with_max_entries(8);
        for i in 0..200 {
            cache.put(&format!("https://client-{i}.example/jwks"), 1_000, JwkSet { keys: vec![] });
        }
        assert!(cache.cached_entries() <= 8, "{} entries", cache.cached_entries());
    }

    #[test]
    fn remote_jwks_are_fresh_for_five_minutes_of_the_broker_clock() {
        let cache = RemoteJwksCache::default();
        let uri = "https://client.example/jwks";
        cache.put(uri, 1_000, JwkSet { keys: vec![] });
        assert!(cache.fresh(uri, 1_000 + JWKS_TTL_S - 1).is_some());
        assert!(cache.fresh(uri, 1_000 + JWKS_TTL_S).is_none());
        assert!(cache.fresh("https://other.example/jwks", 1_000).is_none());
    }
}
