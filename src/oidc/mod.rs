//! The OpenID Connect provider the portal and apps trust (SPEC §5): discovery, JWKS, the
//! authorization code flow with PKCE, tokens, userinfo, revocation, logout and PAR.
//!
//! Protocol only: no HTML. The web layer (`crate::web`) turns its decisions into responses.

pub mod access_token;
pub mod authorize;
pub mod backchannel;
pub mod claims;
pub mod client_auth;
pub mod client_credentials;
pub mod dpop;
mod error;
pub mod exchange;
pub mod grants;
pub mod introspect;
pub mod logout;
pub mod resume;
pub mod signing;
pub mod token;

pub use authorize::AuthorizeError;
pub use error::OidcError;
pub use resume::Resume;

use crate::assurance::{AssuranceLevel, Method};
use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::policy::{Candidate, PolicyEngine};
use crate::store::Store;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthUrl, AuthenticationContextClass, IssuerUrl, JsonWebKeySetUrl,
    LanguageTag, ProviderMetadata, ResponseTypes, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};
use signing::{KeyRing, SigningAlg};
use std::sync::Arc;

/// Discovery fields that openidconnect's core metadata does not model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExtraMetadata {
    pub end_session_endpoint: String,
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub pushed_authorization_request_endpoint: String,
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// OIDC Back-Channel Logout 1.0 (SPEC §11).
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    /// RFC 9449.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// RFC 7662 (SPEC §10).
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// RFC 8705 §5: the endpoints on the mTLS listener, when eHealth certificates are trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_endpoint_aliases: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A person as one request sees them.
#[derive(Debug, Clone)]
pub struct PersonFacts {
    pub subject: crate::policy::Subject,
    /// Active professions for the token; `None` when unknown (registry not asked or down).
    pub professions: Option<Vec<claims::ProfessionClaim>>,
}

/// Scopes the broker knows; others are ignored (OIDC Core §3.1.2.1).
pub const SCOPES: [&str; 4] = ["openid", "profile", "insz", "professions"];

pub struct Provider {
    pub store: Store,
    pub keys: KeyRing,
    pub master: MasterKey,
    pub clock: Clock,
    pub issuer: String,
    pub cfg: crate::config::OidcConfig,
    /// The login methods this deployment offers, with the level each gives.
    pub candidates: Vec<Candidate>,
    pub policies: Arc<PolicyEngine>,
    pub audit: crate::audit::Audit,
    /// CoBRHA (professions); `None` when not configured.
    pub registry: Option<Arc<dyn crate::cobrha::Registry>>,
    /// eHealth certificate trust (software clients); `None` when not configured.
    pub ehealth: Option<Arc<crate::ehealth::Ehealth>>,
    /// The mTLS listener's public URL (no trailing slash), when it runs.
    pub mtls_issuer: Option<String>,
    discovery_json: bytes::Bytes,
    http: reqwest::Client,
    jwks_cache: client_auth::RemoteJwksCache,
    client_cache: client_auth::ClientCache,
}

impl Provider {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &Config,
        store: Store,
        keys: KeyRing,
        master: MasterKey,
        clock: Clock,
        candidates: Vec<Candidate>,
        policies: Arc<PolicyEngine>,
        registry: Option<Arc<dyn crate::cobrha::Registry>>,
        audit: crate::audit::Audit,
        ehealth: Option<Arc<crate::ehealth::Ehealth>>,
    ) -> Result<Arc<Self>, crate::http_client::HttpClientError> {
        let issuer = cfg.issuer();
        let mtls_issuer = ehealth
            .is_some()
            .then(|| cfg.mtls.public_url.as_str().trim_end_matches('/').to_string());
        let discovery_json = serde_json::to_vec(&metadata(&issuer, mtls_issuer.as_deref()))
            .unwrap_or_default()
            .into();
        let http = crate::http_client::build("client JWKS", std::time::Duration::from_secs(5))?;
        Ok(Arc::new(Self {
            store,
            keys,
            master,
            clock,
            issuer,
            cfg: cfg.oidc.clone(),
            candidates,
            policies,
            audit,
            registry,
            ehealth,
            mtls_issuer,
            discovery_json,
            http,
            jwks_cache: Default::default(),
            client_cache: Default::default(),
        }))
    }

    pub fn discovery_json(&self) -> bytes::Bytes {
        self.discovery_json.clone()
    }

    pub fn jwks_json(&self) -> bytes::Bytes {
        self.keys.current().jwks_json.clone()
    }

    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// What policies and tokens need to know about a person for one request: their INSZ and,
    /// when the policy or the scope needs them, their active CoBRHA professions (`None` when the
    /// registry could not be asked: policies needing it fail closed, tokens omit the claim).
    pub async fn person_facts(
        &self,
        person: &crate::store::Person,
        req: &authorize::AuthRequest,
        now: i64,
    ) -> PersonFacts {
        let wanted = self.policies.needs_registry(&req.policy)
            || req.scope.iter().any(|s| s == "professions");
        let professions = match (&self.registry, wanted) {
            (Some(r), true) => {
                let today = crate::clock::to_utc(now).date_naive();
                match r.professions(&person.insz).await {
                    Ok(list) => Some(
                        list.into_iter()
                            .filter(|p| p.active_on(today))
                            .map(|p| claims::ProfessionClaim {
                                profession: p.profession,
                                nihii: p.nihii.as_str().to_string(),
                            })
                            .collect::<Vec<_>>(),
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "CoBRHA lookup failed");
                        None
                    }
                }
            }
            _ => None,
        };
        PersonFacts {
            subject: crate::policy::Subject {
                insz: Some(person.insz.as_str().to_string()),
                professions: professions
                    .as_ref()
                    .map(|v| v.iter().map(|p| p.profession.clone()).collect()),
            },
            professions,
        }
    }

    /// Whether the broker can serve: the database answers and an RS256 signing key is loaded.
    pub async fn readiness(&self) -> (bool, bool) {
        let db = self.store.ping().await.is_ok();
        let keys = self.keys.current().active(SigningAlg::Rs256).is_some();
        (db, keys)
    }

    /// Whether a method is offered at all (whatever the policy).
    pub fn offers(&self, method: Method) -> bool {
        self.candidates.iter().any(|c| c.method == method)
    }

    /// How long a retired signing key stays in the JWKS: its ID tokens must still verify.
    pub fn key_retention_s(&self) -> i64 {
        self.cfg.id_token_ttl_s + 300
    }
}

fn metadata(issuer: &str, mtls: Option<&str>) -> Metadata {
    let url = |p: &str| format!("{issuer}{p}");
    let parse =
        |p: &str| url::Url::parse(&url(p)).unwrap_or_else(|_| unreachable!("issuer is a URL"));
    Metadata::new(
        IssuerUrl::new(issuer.to_string()).unwrap_or_else(|_| unreachable!("issuer is a URL")),
        AuthUrl::from_url(parse("/authorize")),
        JsonWebKeySetUrl::from_url(parse("/jwks")),
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        SigningAlg::ALL.iter().map(|a| a.jws()).collect(),
        ExtraMetadata {
            end_session_endpoint: url("/logout"),
            revocation_endpoint: url("/revoke"),
            revocation_endpoint_auth_methods_supported: vec![
                "client_secret_basic".into(),
                "client_secret_post".into(),
                "private_key_jwt".into(),
                "tls_client_auth".into(),
            ],
            pushed_authorization_request_endpoint: url("/par"),
            code_challenge_methods_supported: vec!["S256".into()],
            authorization_response_iss_parameter_supported: true,
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            dpop_signing_alg_values_supported: dpop::ALGS.iter().map(|a| a.to_string()).collect(),
            introspection_endpoint: url("/introspect"),
            introspection_endpoint_auth_methods_supported: vec![
                "client_secret_basic".into(),
                "client_secret_post".into(),
                "private_key_jwt".into(),
                "tls_client_auth".into(),
            ],
            mtls_endpoint_aliases: mtls.map(|m| {
                serde_json::json!({
                    "token_endpoint": format!("{m}/token"),
                    "introspection_endpoint": format!("{m}/introspect"),
                    "revocation_endpoint": format!("{m}/revoke"),
                })
            }),
            tls_client_certificate_bound_access_tokens: mtls.map(|_| true),
        },
    )
    .set_token_endpoint(Some(TokenUrl::from_url(parse("/token"))))
    .set_userinfo_endpoint(Some(UserInfoUrl::from_url(parse("/userinfo"))))
    .set_scopes_supported(Some(SCOPES.iter().map(|s| Scope::new(s.to_string())).collect()))
    .set_response_modes_supported(Some(vec![CoreResponseMode::Query]))
    .set_grant_types_supported(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
        CoreGrantType::ClientCredentials,
        CoreGrantType::Extension(exchange::GRANT_TYPE.into()),
    ]))
    .set_token_endpoint_auth_methods_supported(Some(vec![
        CoreClientAuthMethod::ClientSecretBasic,
        CoreClientAuthMethod::ClientSecretPost,
        CoreClientAuthMethod::PrivateKeyJwt,
        CoreClientAuthMethod::Extension("tls_client_auth".into()),
        CoreClientAuthMethod::None,
    ]))
    .set_token_endpoint_auth_signing_alg_values_supported(Some(
        client_auth::ASSERTION_ALGS.iter().map(|(_, a)| a.clone()).collect(),
    ))
    .set_acr_values_supported(Some(
        AssuranceLevel::ALL
            .iter()
            .map(|l| AuthenticationContextClass::new(l.uri().to_string()))
            .collect(),
    ))
    .set_claims_supported(Some(
        [
            "sub",
            "sid",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "insz",
            "given_name",
            "family_name",
            "birthdate",
            "professions",
            "eidas_person_identifier",
            "client_id",
            "scope",
            "cbe",
            "nihii",
            "nihii_type",
            "cnf",
            "act",
            "eudiw_issuing_country",
        ]
        .iter()
        .map(|c| CoreClaimName::new(c.to_string()))
        .collect(),
    ))
    .set_claims_parameter_supported(Some(true))
    .set_request_parameter_supported(Some(false))
    .set_request_uri_parameter_supported(Some(false))
    .set_ui_locales_supported(Some(
        crate::i18n::Lang::ALL.iter().map(|l| LanguageTag::new(l.to_string())).collect(),
    ))
}
