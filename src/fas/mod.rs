//! The federal authentication service (FAS/CSAM) as an upstream OpenID provider (SPEC §6): an
//! OIDC relying party with discovery, code + PKCE + nonce and ID-token validation by the
//! `openidconnect` crate. The FAS level and the means used map to `acr`/`amr` through tables in
//! config; policies see the means (an SMS login through FAS is an SMS login).

pub mod callback;

use crate::assurance::{AssuranceLevel, Method};
use crate::clock::Stopwatch;
use crate::config::FasConfig;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, Client, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::Instrument;

/// Every non-standard claim (the national number claim's name comes from config).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct FasClaims {
    #[serde(flatten)]
    pub extra: HashMap<String, serde_json::Value>,
}
impl AdditionalClaims for FasClaims {}

type FasTokenResponse = StandardTokenResponse<
    IdTokenFields<
        FasClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
type FasClient = Client<
    FasClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    FasTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

#[derive(Debug, thiserror::Error)]
pub enum FasError {
    #[error("the federal login service cannot be reached: {0}")]
    Unavailable(String),
    #[error("the federal login answer was refused: {0}")]
    Invalid(String),
    #[error("the federal login reported an error: {0}")]
    Upstream(String),
    /// The ID token's `acr` is not a key of `[fas.levels]`: the login cannot be placed, so it is
    /// refused (fail closed), never given some default level.
    #[error("the federal login level {0:?} is not in [fas.levels]")]
    UnknownLevel(String),
    /// The store failed while a verified login was being placed.
    #[error("federal login: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What the browser session keeps between `/login/fas` and the callback.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FasPending {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub at: i64,
}

/// A verified federal login.
#[derive(Debug, Clone)]
pub struct FasLogin {
    pub subject: String,
    pub insz: String,
    pub given_name: String,
    pub family_name: String,
    pub method: Method,
    pub level: AssuranceLevel,
    pub amr: Vec<String>,
}

/// The methods a FAS configuration maps to and the level each gets: the lower of the means' own
/// level and `[fas] max_level` (the FAS level itself is only known per login). One place for the
/// server's chooser and `policy check`.
pub fn means_levels(cfg: &FasConfig) -> Vec<(Method, AssuranceLevel)> {
    let max_level = cfg.max_level;
    let mut out: Vec<(Method, AssuranceLevel)> = Vec::new();
    for method in cfg.means.values().filter_map(|m| Method::parse(m)) {
        let level = method.own_level().unwrap_or(AssuranceLevel::Low).min(max_level);
        if !out.iter().any(|(m, _)| *m == method) {
            out.push((method, level));
        }
    }
    out
}

pub struct Fas {
    cfg: FasConfig,
    issuer: String,
    redirect_uri: String,
    http: reqwest::Client,
    metadata: Mutex<Option<(Stopwatch, CoreProviderMetadata)>>,
    max_level: AssuranceLevel,
    upstream: crate::metrics::Upstream,
}

const METADATA_TTL: Duration = Duration::from_secs(300);

impl Fas {
    /// The federal login, or `None` when `[fas] issuer` is not set.
    pub fn new(
        cfg: &FasConfig,
        broker_url: &str,
    ) -> Result<Option<Self>, crate::http_client::HttpClientError> {
        let Some(issuer) = &cfg.issuer else { return Ok(None) };
        let issuer = issuer.as_str().trim_end_matches('/').to_string();
        // The HTTP client never follows redirects (openidconnect's security warning: SSRF).
        let http = crate::http_client::build("FAS", Duration::from_secs(10))?;
        Ok(Some(Self {
            issuer,
            redirect_uri: format!("{broker_url}/oidc/fas/callback"),
            http,
            metadata: Mutex::new(None),
            max_level: cfg.max_level,
            cfg: cfg.clone(),
            upstream: Default::default(),
        }))
    }

    /// Times each exchange with FAS (discovery with its JWKS, token) in the metrics.
    pub fn with_upstream(mut self, upstream: crate::metrics::Upstream) -> Self {
        self.upstream = upstream;
        self
    }

    /// The methods FAS offers and the level each gets here (see [`means_levels`]).
    pub fn offered(&self) -> Vec<(Method, AssuranceLevel)> {
        means_levels(&self.cfg)
    }

    async fn client(&self, refresh: bool) -> Result<FasClient, FasError> {
        let mut cached = self.metadata.lock().await;
        let fresh = cached
            .as_ref()
            .filter(|(at, _)| !refresh && at.elapsed() < METADATA_TTL)
            .map(|(_, m)| m.clone());
        let metadata = match fresh {
            Some(m) => m,
            None => {
                let issuer = IssuerUrl::new(self.issuer.clone())
                    .map_err(|e| FasError::Unavailable(e.to_string()))?;
                let m = self
                    .upstream
                    .observe(CoreProviderMetadata::discover_async(issuer, &self.http))
                    .instrument(tracing::info_span!("fas_discovery"))
                    .await
                    .map_err(|e| FasError::Unavailable(e.to_string()))?;
                *cached = Some((Stopwatch::start(), m.clone()));
                m
            }
        };
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| FasError::Unavailable(e.to_string()))?;
        Ok(FasClient::from_provider_metadata(
            metadata,
            ClientId::new(self.cfg.client_id.clone()),
            Some(ClientSecret::new(self.cfg.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// The authorization URL for a new login, and what the session must keep.
    pub async fn start(&self, now: i64) -> Result<(String, FasPending), FasError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("egovnrn".into()))
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url.to_string(),
            FasPending {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                at: now,
            },
        ))
    }

    /// Exchanges the code and verifies the ID token (signature by the JWKS, issuer, audience,
    /// expiry, nonce); maps the level and the means.
    pub async fn finish(&self, pending: &FasPending, code: &str) -> Result<FasLogin, FasError> {
        let client = self.client(false).await?;
        let exchange = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| FasError::Unavailable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
        let token = self
            .upstream
            .observe(exchange.request_async(&self.http))
            .instrument(tracing::info_span!("fas_token"))
            .await
            .map_err(|e| FasError::Invalid(format!("token exchange: {e}")))?;
        let id_token = token.id_token().ok_or_else(|| FasError::Invalid("no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            Err(_) => {
                // Perhaps FAS rotated its keys: fetch the metadata and JWKS again, once.
                let fresh = self.client(true).await?;
                let verifier = fresh.id_token_verifier();
                let claims = id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| FasError::Invalid(format!("ID token: {e}")))?
                    .clone();
                claims
            }
        };
        let acr = claims.auth_context_ref().map(|a| a.to_string()).unwrap_or_default();
        let fas_level = self
            .cfg
            .levels
            .get(&acr)
            .and_then(|l| AssuranceLevel::parse(l))
            .ok_or(FasError::UnknownLevel(acr))?;
        let amr: Vec<String> = claims
            .auth_method_refs()
            .map(|v| v.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        let method = amr.iter().find_map(|a| self.cfg.means.get(a)).and_then(|m| Method::parse(m));
        let (method, level, amr) = match method {
            Some(m) => {
                let level =
                    fas_level.min(m.own_level().unwrap_or(AssuranceLevel::Low)).min(self.max_level);
                (m, level, vec!["fas".to_string(), m.as_str().to_string()])
            }
            // A means not in the table gets level low.
            None => (Method::Fas, AssuranceLevel::Low, vec!["fas".to_string()]),
        };
        let extra = &claims.additional_claims().extra;
        let text = |names: &[&str]| {
            names.iter().find_map(|n| extra.get(*n).and_then(|v| v.as_str()).map(str::to_string))
        };
        let insz = text(&[self.cfg.insz_claim.as_str()])
            .ok_or_else(|| FasError::Invalid(format!("no {} claim", self.cfg.insz_claim)))?;
        let given_name = claims
            .given_name()
            .and_then(|g| g.get(None))
            .map(|g| g.to_string())
            .or_else(|| text(&["givenName"]))
            .unwrap_or_default();
        let family_name = claims
            .family_name()
            .and_then(|g| g.get(None))
            .map(|g| g.to_string())
            .or_else(|| text(&["surname"]))
            .unwrap_or_default();
        Ok(FasLogin {
            subject: claims.subject().to_string(),
            insz,
            given_name,
            family_name,
            method,
            level,
            amr,
        })
    }
}
