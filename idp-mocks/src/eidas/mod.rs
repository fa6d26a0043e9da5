//! Mock eIDAS node: a stand-in for a CEF eIDAS-Node 2.x proxy service with DigiD (and a few
//! other countries) behind it, speaking real SAML 2.0 with real crypto.
//!
//! * `GET /metadata`: signed IdP metadata (`md:EntityDescriptor`, enveloped ECDSA-SHA256 or
//!   RSASSA-PSS-SHA256 signature, SHA-256 digest, exclusive c14n) with the signing
//!   certificate(s) (one per signing kind in use) and
//!   `SingleSignOnService` at `/sso` for HTTP-POST and HTTP-Redirect.
//! * `GET /sso` (HTTP-Redirect: deflated `SAMLRequest`, `RelayState`, `SigAlg`, `Signature`) and
//!   `POST /sso` (HTTP-POST: base64 `SAMLRequest` with an enveloped XML signature, `RelayState`),
//!   both with an optional `country` parameter (CEF connector style). The request signature is
//!   checked against the SP's signing certificate (configured, or from the SP metadata); an
//!   unsigned or badly signed request gets an HTTP 400 error page and no response.
//! * Pages: `/login/{id}` (choose your country) → `/login/{id}/authenticate` (DigiD for NL, a
//!   test-citizen list elsewhere; Cancel → `/login/{id}/cancel`) → an auto-submitting form that
//!   POSTs `SAMLResponse` and `RelayState` to the ACS (`/autosubmit.js` submits it; a Continue
//!   button is the fallback).
//! * Test shortcuts: [`MockEidasNode::respond`], `GET /sso/test-login?request_id=…&citizen=…
//!   [&outcome=…]`, and the outcome setters ([`MockEidasNode::set_default_outcome`],
//!   [`MockEidasNode::set_outcome_for`], `POST /control/outcome` with form fields `outcome` and
//!   optional `request_id`).
//!
//! The response: `saml2p:Response` signed (ECDSA-SHA256, or RSASSA-PSS-SHA256 for countries so
//! configured, [`CountryCrypto`]) by the node key, holding an `saml2:EncryptedAssertion`: the
//! assertion, itself signed, encrypted with AES-256-GCM under a key transported with RSA-OAEP
//! (`xmlenc11#rsa-oaep`, SHA-256, MGF1-SHA-256; or legacy `xmlenc#rsa-oaep-mgf1p`) to the SP's
//! RSA certificate, or agreed with ECDH-ES (ConcatKDF SHA-256, `kw-aes256`) with its EC one.
//! See [`Outcome`] and [`Tamper`] for failures and hostile variants.

mod citizens;
mod crypto;
mod metadata;
mod pages;
mod request;
mod response;
mod xml;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use axum::extract::{Form, Path, Query, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use openssl::x509::X509;
use serde::Deserialize;

pub use citizens::{
    citizen, citizens_of, country_name, test_citizens, Citizen, Loa, COUNTRIES, DE_SUBSTANTIAL,
    FR_SUBSTANTIAL, LU_HIGH, NL_HIGH, NL_LOW, NL_SUBSTANTIAL, TEST_CITIZENS,
};
pub use crypto::{encrypt_element, NodeSigning};
pub use metadata::{parse_sp_metadata, SpMetadata};
pub use request::{Binding, ReceivedRequest, RequestedAttribute};
pub use response::{Outcome, Tamper, VALIDITY_SECS, WRONG_AUDIENCE, WRONG_URL};

/// Algorithm and namespace URIs the node uses (handy in tests).
pub mod uris {
    pub use super::crypto::{
        AES256_GCM, DSIG_NS, ECDSA_SHA256, EXC_C14N, MGF1_SHA256, REQUEST_SIGNATURE_ALGORITHMS,
        RSA_OAEP_11, RSA_OAEP_MGF1P, SHA1_DIGEST, SHA256_DIGEST, XENC11_NS, XENC_NS,
    };
    pub use super::metadata::MD_NS;
    pub use super::request::{BINDING_POST, BINDING_REDIRECT, EIDAS_NS, SAMLP_NS, SAML_NS};
    pub use super::response::{
        ATTR_PREFIX, BEARER, ENTITY_FORMAT, NAME_FORMAT_URI, NATURAL_PERSON_NS, PERSISTENT,
        STATUS_AUTHN_FAILED, STATUS_NO_AUTHN_CONTEXT, STATUS_REQUESTER, STATUS_REQUEST_DENIED,
        STATUS_RESPONDER, STATUS_SUCCESS, TRANSIENT, UNSPECIFIED,
    };
}

/// How long a page-flow login may stay pending.
const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// How far a request's `IssueInstant` may lie in the past / future.
const REQUEST_MAX_AGE_SECS: i64 = 600;
const REQUEST_MAX_SKEW_SECS: i64 = 180;
/// How many accepted / refused requests are kept for inspection (oldest dropped first).
const MAX_RECORDED: usize = 1000;

/// Configuration of a [`MockEidasNode`].
#[derive(Clone, Debug, Default)]
pub struct EidasNodeConfig {
    /// Public base URL without trailing slash, e.g. `http://localhost:8093`. [`start`] fills it
    /// in from the bound address when empty.
    pub base_url: String,
    /// The node's entity ID; default `{base_url}/metadata`.
    pub entity_id: Option<String>,
    /// The SP's metadata URL: fetched lazily (and again when a request signature does not
    /// verify); its `KeyDescriptor use="signing"`/`"encryption"` certificates and HTTP-POST ACS
    /// are used. When set, the request's Issuer must equal its `entityID` and a request ACS URL
    /// must be one of its ACS locations.
    pub sp_metadata_url: Option<String>,
    /// The SP's request-signing certificate (PEM), in addition to / instead of the metadata.
    pub sp_signing_cert_pem: Option<String>,
    /// The SP's encryption certificate (PEM, RSA); takes precedence over the metadata's.
    pub sp_encryption_cert_pem: Option<String>,
    /// Transport the content key with `xmlenc#rsa-oaep-mgf1p` (SHA-1) like older nodes, instead
    /// of `xmlenc11#rsa-oaep` with SHA-256 and MGF1-SHA-256.
    pub rsa_oaep_legacy: bool,
    /// How the node signs (responses, assertions, metadata): ECDSA or RSASSA-PSS.
    pub signing: crypto::NodeSigning,
    /// How the node transports the assertion's key: to the SP's RSA key (RSA-OAEP) or its EC
    /// key (ECDH-ES + ConcatKDF + AES key wrap). The SP's metadata offers both keys.
    pub key_transport: KeyTransport,
    /// Per-country exceptions to `signing`/`key_transport` (by the citizen's country), as
    /// member states' nodes differ: e.g. NL ECDSA + ECDH-ES, DE RSASSA-PSS + RSA-OAEP. The
    /// node's metadata lists a signing certificate for each signing kind in use.
    pub countries: Vec<CountryCrypto>,
}

/// One country's node crypto.
#[derive(Clone, Debug)]
pub struct CountryCrypto {
    pub country: String,
    pub signing: crypto::NodeSigning,
    pub key_transport: KeyTransport,
}

/// The node's choice among the SP's encryption keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyTransport {
    #[default]
    RsaOaep,
    EcdhEs,
}

/// Handle to a mock eIDAS node (cheap to clone; all clones share state).
#[derive(Clone)]
pub struct MockEidasNode {
    inner: Arc<Inner>,
}

struct Inner {
    base_url: String,
    entity_id: String,
    config: EidasNodeConfig,
    /// The signing key of `config.signing` (the metadata's signer).
    key: crypto::SigningKey,
    /// The signing key of the other kind, when a country uses it.
    other_key: Option<crypto::SigningKey>,
    rogue_key: crypto::SigningKey,
    http: reqwest::Client,
    state: Mutex<NodeState>,
}

#[derive(Default)]
struct NodeState {
    received: Vec<ReceivedRequest>,
    rejected: Vec<String>,
    seen_ids: HashSet<String>,
    pending: HashMap<String, Pending>,
    default_outcome: Outcome,
    outcome_for: HashMap<String, Outcome>,
    sp: Option<Arc<SpInfo>>,
    metadata: Option<(String, Instant)>,
}

struct Pending {
    request: ReceivedRequest,
    country: Option<String>,
    created: Instant,
}

/// What the node knows about the SP.
#[derive(Default)]
struct SpInfo {
    entity_id: Option<String>,
    signing: Vec<X509>,
    /// Every encryption certificate (configured first, then the metadata's).
    encryption: Vec<X509>,
    acs_urls: Vec<String>,
    /// From the metadata URL (so worth refetching on a signature failure).
    from_metadata: bool,
}

impl MockEidasNode {
    /// A node with fresh keys (ECDSA P-256, self-signed). `config.base_url` must be set.
    pub fn new(config: EidasNodeConfig) -> anyhow::Result<MockEidasNode> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        if base_url.is_empty() {
            bail!("EidasNodeConfig::base_url is empty");
        }
        let entity_id = config.entity_id.clone().unwrap_or_else(|| format!("{base_url}/metadata"));
        for (name, pem) in [
            ("sp_signing_cert_pem", &config.sp_signing_cert_pem),
            ("sp_encryption_cert_pem", &config.sp_encryption_cert_pem),
        ] {
            if let Some(pem) = pem {
                crypto::parse_cert(pem).with_context(|| format!("EidasNodeConfig::{name}"))?;
            }
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("HTTP client")?;
        Ok(MockEidasNode {
            inner: Arc::new(Inner {
                base_url,
                entity_id,
                key: crypto::SigningKey::generate_kind("Mock eIDAS node signing", config.signing)?,
                other_key: match config.countries.iter().find(|c| c.signing != config.signing) {
                    Some(c) => Some(crypto::SigningKey::generate_kind(
                        "Mock eIDAS node signing",
                        c.signing,
                    )?),
                    None => None,
                },
                rogue_key: crypto::SigningKey::generate_kind(
                    "Mock eIDAS node signing",
                    config.signing,
                )?,
                config,
                http,
                state: Mutex::new(NodeState::default()),
            }),
        })
    }

    /// The routes (see the module documentation).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/metadata", get(metadata_handler))
            .route("/sso", get(sso_redirect).post(sso_post))
            .route("/sso/test-login", get(test_login))
            .route("/login/{key}", get(country_get).post(country_post))
            .route("/login/{key}/authenticate", get(authenticate_get).post(authenticate_post))
            .route("/login/{key}/cancel", post(cancel_post))
            .route("/control/outcome", post(control_outcome))
            .route("/autosubmit.js", get(autosubmit_js))
            .route("/node.css", get(node_css))
            .with_state(self.clone())
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn entity_id(&self) -> &str {
        &self.inner.entity_id
    }

    /// `{base}/metadata`.
    pub fn metadata_url(&self) -> String {
        format!("{}/metadata", self.inner.base_url)
    }

    /// `{base}/sso` (both bindings).
    pub fn sso_url(&self) -> String {
        format!("{}/sso", self.inner.base_url)
    }

    /// The signing kind and key transport the node uses for `country`'s citizens.
    pub fn crypto_for(&self, country: &str) -> (crypto::NodeSigning, KeyTransport) {
        let cfg = &self.inner.config;
        match cfg.countries.iter().find(|c| c.country.eq_ignore_ascii_case(country)) {
            Some(c) => (c.signing, c.key_transport),
            None => (cfg.signing, cfg.key_transport),
        }
    }

    fn signing_key_for(&self, country: &str) -> &crypto::SigningKey {
        let kind = self.crypto_for(country).0;
        match &self.inner.other_key {
            Some(k) if k.kind == kind => k,
            _ => &self.inner.key,
        }
    }

    /// The node's signing certificate (PEM), the one in its metadata.
    pub fn signing_cert_pem(&self) -> String {
        self.inner.key.cert_pem()
    }

    /// The node's signing certificate (DER).
    pub fn signing_cert_der(&self) -> Vec<u8> {
        self.inner.key.cert.to_der().unwrap_or_default()
    }

    /// The certificate of the other key used by [`Tamper::WrongKey`] (PEM).
    pub fn rogue_cert_pem(&self) -> String {
        self.inner.rogue_key.cert_pem()
    }

    /// The signed metadata served at `/metadata` (re-signed every hour; valid for a day).
    pub async fn metadata_xml(&self) -> anyhow::Result<String> {
        if let Some((xml, at)) = &self.state().metadata {
            if at.elapsed() < Duration::from_secs(3600) {
                return Ok(xml.clone());
            }
        }
        let node = self.clone();
        let xml = tokio::task::spawn_blocking(move || {
            let i = &node.inner;
            metadata::signed_node_metadata(
                &i.entity_id,
                &format!("{}/sso", i.base_url),
                &i.key,
                i.other_key.as_ref(),
                chrono::Utc::now(),
            )
        })
        .await??;
        self.state().metadata = Some((xml.clone(), Instant::now()));
        Ok(xml)
    }

    /// Every accepted AuthnRequest, oldest first.
    pub fn received_requests(&self) -> Vec<ReceivedRequest> {
        self.state().received.clone()
    }

    /// The last accepted AuthnRequest.
    pub fn last_request(&self) -> Option<ReceivedRequest> {
        self.state().received.last().cloned()
    }

    /// Why requests were refused (one line each), oldest first.
    pub fn rejected_requests(&self) -> Vec<String> {
        self.state().rejected.clone()
    }

    /// The outcome of page-flow (and `test-login` without `outcome`) responses from now on,
    /// unless [`set_outcome_for`](Self::set_outcome_for) names the request.
    pub fn set_default_outcome(&self, outcome: Outcome) {
        self.state().default_outcome = outcome;
    }

    /// The outcome for the request with this `ID` (before or after it arrives).
    pub fn set_outcome_for(&self, request_id: &str, outcome: Outcome) {
        self.state().outcome_for.insert(request_id.to_string(), outcome);
    }

    /// Forgets per-request outcomes and sets the default back to [`Outcome::Success`].
    pub fn reset_outcomes(&self) {
        let mut st = self.state();
        st.default_outcome = Outcome::Success;
        st.outcome_for.clear();
    }

    /// Drops the cached SP metadata/certificates (the next use fetches the metadata again).
    pub fn forget_sp_metadata(&self) {
        self.state().sp = None;
    }

    /// Builds a response directly, skipping the pages: `request` is the `ID` of an AuthnRequest
    /// the node accepted on `/sso`, or an AuthnRequest XML document (taken as is: no signature,
    /// Destination, IssueInstant, level-present or replay check; ACS from the request, else the SP
    /// metadata). Returns the base64 `SAMLResponse` to POST to the ACS URL (see
    /// [`ReceivedRequest::acs_url`] and [`ReceivedRequest::relay_state`]).
    pub async fn respond(
        &self,
        request: &str,
        citizen: &Citizen,
        outcome: Outcome,
    ) -> anyhow::Result<String> {
        let req = self.request_for(request).await?;
        self.build_response_b64(&req, citizen, outcome).await
    }

    /// Like [`respond`](Self::respond), plus the request the response answers.
    pub async fn respond_with_request(
        &self,
        request: &str,
        citizen: &Citizen,
        outcome: Outcome,
    ) -> anyhow::Result<(String, ReceivedRequest)> {
        let req = self.request_for(request).await?;
        let b64 = self.build_response_b64(&req, citizen, outcome).await?;
        Ok((b64, req))
    }

    fn state(&self) -> MutexGuard<'_, NodeState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn request_for(&self, request: &str) -> anyhow::Result<ReceivedRequest> {
        if request.trim_start().starts_with('<') {
            let parsed = request::parse_authn_request(request)?;
            let sp = self.sp_info(false).await.ok();
            let acs_url = parsed
                .acs_url
                .clone()
                .or_else(|| sp.as_ref().and_then(|s| s.acs_urls.first().cloned()))
                .context("the request has no AssertionConsumerServiceURL and no SP metadata")?;
            let arrival = Arrival {
                binding: Binding::Direct,
                relay_state: None,
                country: None,
                signature_algorithm: String::new(),
                xml: request.to_string(),
            };
            Ok(received(parsed, acs_url, arrival))
        } else {
            self.state()
                .received
                .iter()
                .rev()
                .find(|r| r.id == request)
                .cloned()
                .with_context(|| format!("no AuthnRequest with ID {request:?} was received"))
        }
    }

    async fn build_response_b64(
        &self,
        req: &ReceivedRequest,
        citizen: &Citizen,
        outcome: Outcome,
    ) -> anyhow::Result<String> {
        let needs_encryption = !matches!(
            outcome,
            Outcome::Failure | Outcome::Cancelled | Outcome::Tampered(Tamper::NotEncrypted)
        );
        let enc = match self.sp_info(false).await {
            Ok(sp) => {
                let wanted = match self.crypto_for(citizen.country).1 {
                    KeyTransport::RsaOaep => openssl::pkey::Id::RSA,
                    KeyTransport::EcdhEs => openssl::pkey::Id::EC,
                };
                sp.encryption
                    .iter()
                    .find(|c| c.public_key().map(|k| k.id() == wanted).unwrap_or(false))
                    .cloned()
            }
            Err(e) if needs_encryption => return Err(e),
            Err(_) => None,
        };
        let node = self.clone();
        let req = req.clone();
        let citizen = *citizen;
        tokio::task::spawn_blocking(move || {
            let i = &node.inner;
            let xml = response::build_response(&response::ResponseInput {
                request: &req,
                citizen: &citizen,
                outcome,
                node_entity_id: &i.entity_id,
                node_key: node.signing_key_for(citizen.country),
                rogue_key: &i.rogue_key,
                sp_encryption_cert: enc.as_ref(),
                rsa_oaep_legacy: i.config.rsa_oaep_legacy,
                now: chrono::Utc::now(),
            })?;
            Ok(STANDARD.encode(xml))
        })
        .await?
    }

    /// The SP's certificates and ACS URLs (cached; `refresh` refetches the metadata).
    async fn sp_info(&self, refresh: bool) -> anyhow::Result<Arc<SpInfo>> {
        if !refresh {
            if let Some(sp) = self.state().sp.clone() {
                return Ok(sp);
            }
        }
        let cfg = &self.inner.config;
        let mut info = SpInfo::default();
        let mut cacheable = true;
        if let Some(url) = &cfg.sp_metadata_url {
            match self.fetch_sp_metadata(url).await {
                Ok(md) => {
                    info.entity_id = Some(md.entity_id);
                    info.signing = md.signing_certs;
                    info.encryption = md.encryption_certs;
                    info.acs_urls = md.acs_urls;
                    info.from_metadata = true;
                }
                Err(e) => {
                    if cfg.sp_signing_cert_pem.is_none() {
                        return Err(e);
                    }
                    tracing::warn!("mock eIDAS node: SP metadata: {e:#}");
                    cacheable = false;
                }
            }
        }
        if let Some(pem) = &cfg.sp_signing_cert_pem {
            info.signing.insert(0, crypto::parse_cert(pem)?);
        }
        if let Some(pem) = &cfg.sp_encryption_cert_pem {
            info.encryption.insert(0, crypto::parse_cert(pem)?);
        }
        if info.signing.is_empty() && info.encryption.is_empty() {
            bail!("no SP certificates configured (sp_metadata_url or sp_*_cert_pem)");
        }
        let info = Arc::new(info);
        if cacheable {
            self.state().sp = Some(info.clone());
        }
        Ok(info)
    }

    async fn fetch_sp_metadata(&self, url: &str) -> anyhow::Result<SpMetadata> {
        let resp = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("cannot fetch SP metadata {url}"))?;
        if !resp.status().is_success() {
            bail!("SP metadata {url}: HTTP {}", resp.status());
        }
        let body = resp.text().await.with_context(|| format!("SP metadata {url}"))?;
        parse_sp_metadata(&body).with_context(|| format!("SP metadata {url}"))
    }

    /// Verifies with the SP's signing certificates, refetching the metadata once on failure.
    async fn verify_with_sp<T, F>(&self, check: F) -> anyhow::Result<(T, Arc<SpInfo>)>
    where
        T: Send + 'static,
        F: Fn(Vec<X509>) -> anyhow::Result<T> + Send + Sync + Clone + 'static,
    {
        let sp = self.sp_info(false).await?;
        let c = check.clone();
        let certs = sp.signing.clone();
        match tokio::task::spawn_blocking(move || c(certs)).await? {
            Ok(v) => Ok((v, sp)),
            Err(e) if sp.from_metadata => {
                let sp = self.sp_info(true).await.map_err(|_| anyhow!("{e:#}"))?;
                let certs = sp.signing.clone();
                let v = tokio::task::spawn_blocking(move || check(certs)).await??;
                Ok((v, sp))
            }
            Err(e) => Err(e),
        }
    }

    fn reject(&self, code: &str, err: &anyhow::Error) -> Response {
        let msg = format!("{err:#}");
        tracing::info!("mock eIDAS node refused a request: {code}: {msg}");
        let mut st = self.state();
        if st.rejected.len() >= MAX_RECORDED {
            st.rejected.drain(..MAX_RECORDED / 10);
        }
        st.rejected.push(format!("{code}: {msg}"));
        drop(st);
        html(StatusCode::BAD_REQUEST, pages::error_page(code, &msg))
    }

    /// Checks a verified request against the node's rules, records it and starts the page flow.
    fn accept(
        &self,
        parsed: request::ParsedRequest,
        sp: &SpInfo,
        arrival: Arrival,
    ) -> anyhow::Result<String> {
        let sso = self.sso_url();
        if let Some(d) = &parsed.destination {
            if *d != sso {
                bail!("Destination {d:?} is not this node's SSO URL {sso:?}");
            }
        }
        let issued = chrono::DateTime::parse_from_rfc3339(&parsed.issue_instant)
            .with_context(|| format!("IssueInstant {:?} is not a dateTime", parsed.issue_instant))?
            .with_timezone(&chrono::Utc);
        let age = (chrono::Utc::now() - issued).num_seconds();
        if !(-REQUEST_MAX_SKEW_SECS..=REQUEST_MAX_AGE_SECS).contains(&age) {
            bail!("IssueInstant {} is out of range", parsed.issue_instant);
        }
        if !parsed.authn_context_class_refs.iter().any(|u| Loa::from_uri(u).is_some()) {
            bail!("RequestedAuthnContext names no eIDAS level of assurance");
        }
        if let Some(pb) = &parsed.protocol_binding {
            if pb != request::BINDING_POST {
                bail!("ProtocolBinding {pb:?}: responses are only sent with HTTP-POST");
            }
        }
        if let Some(entity) = &sp.entity_id {
            if *entity != parsed.issuer {
                bail!("Issuer {:?} is not the SP metadata's entityID {entity:?}", parsed.issuer);
            }
        }
        let acs_url = match &parsed.acs_url {
            Some(u) => {
                if !sp.acs_urls.is_empty() && !sp.acs_urls.contains(u) {
                    bail!("AssertionConsumerServiceURL {u:?} is not in the SP metadata");
                }
                u.clone()
            }
            None => sp
                .acs_urls
                .first()
                .cloned()
                .context("no AssertionConsumerServiceURL in the request or the SP metadata")?,
        };
        let rec = received(parsed, acs_url, arrival);
        let key = crypto::new_id()[1..].to_string();
        let mut st = self.state();
        if !st.seen_ids.insert(rec.id.clone()) {
            bail!("a request with ID {:?} was already received (replay)", rec.id);
        }
        st.pending.retain(|_, p| p.created.elapsed() < PENDING_TTL);
        let country = rec
            .country
            .as_deref()
            .and_then(|c| COUNTRIES.iter().find(|(code, _)| code.eq_ignore_ascii_case(c)))
            .map(|(code, _)| code.to_string());
        if st.received.len() >= MAX_RECORDED {
            st.received.drain(..MAX_RECORDED / 10);
        }
        st.received.push(rec.clone());
        st.pending.insert(key.clone(), Pending { request: rec, country, created: Instant::now() });
        Ok(key)
    }

    fn pending(&self, key: &str) -> Option<(ReceivedRequest, Option<String>)> {
        let st = self.state();
        let p = st.pending.get(key).filter(|p| p.created.elapsed() < PENDING_TTL)?;
        Some((p.request.clone(), p.country.clone()))
    }

    fn outcome_for(&self, request_id: &str) -> Outcome {
        let st = self.state();
        st.outcome_for.get(request_id).copied().unwrap_or(st.default_outcome)
    }

    /// The auto-submitting response page for `req`.
    async fn response_page(
        &self,
        req: &ReceivedRequest,
        citizen: &Citizen,
        outcome: Outcome,
    ) -> Response {
        match self.build_response_b64(req, citizen, outcome).await {
            Ok(b64) => html(
                StatusCode::OK,
                pages::post_page(&req.acs_url, &b64, req.relay_state.as_deref()),
            ),
            Err(e) => {
                tracing::error!("mock eIDAS node: cannot build a response: {e:#}");
                html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    pages::error_page("server_error", &format!("{e:#}")),
                )
            }
        }
    }
}

/// How a request arrived, besides its XML fields.
struct Arrival {
    binding: Binding,
    relay_state: Option<String>,
    country: Option<String>,
    signature_algorithm: String,
    /// The (verified) XML.
    xml: String,
}

fn received(p: request::ParsedRequest, acs_url: String, a: Arrival) -> ReceivedRequest {
    ReceivedRequest {
        id: p.id,
        binding: a.binding,
        issuer: p.issuer,
        issue_instant: p.issue_instant,
        destination: p.destination,
        acs_url_in_request: p.acs_url,
        acs_url,
        protocol_binding: p.protocol_binding,
        provider_name: p.provider_name,
        force_authn: p.force_authn,
        is_passive: p.is_passive,
        name_id_format: p.name_id_format,
        comparison: p.comparison,
        authn_context_class_refs: p.authn_context_class_refs,
        sp_type: p.sp_type,
        requested_attributes: p.requested_attributes,
        relay_state: a.relay_state,
        country: a.country,
        signature_algorithm: a.signature_algorithm,
        xml: a.xml,
    }
}

/// Starts a node on `127.0.0.1:0` (base URL from the bound port unless `config.base_url` is
/// set) and returns its base URL and handle. The server runs until the runtime stops.
pub async fn start(mut config: EidasNodeConfig) -> anyhow::Result<(String, MockEidasNode)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    if config.base_url.trim().is_empty() {
        config.base_url = format!("http://{}", listener.local_addr()?);
    }
    let node = MockEidasNode::new(config)?;
    let router = node.router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("mock eIDAS node stopped: {e}");
        }
    });
    Ok((node.base_url().to_string(), node))
}

/// Serves `node` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: MockEidasNode,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, node.router()).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HTTP handlers

fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

async fn index(State(node): State<MockEidasNode>) -> Response {
    html(StatusCode::OK, pages::index_page(node.entity_id(), &node.metadata_url()))
}

async fn metadata_handler(State(node): State<MockEidasNode>) -> Response {
    match node.metadata_xml().await {
        Ok(xml) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/samlmetadata+xml"))],
            xml,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response(),
    }
}

async fn autosubmit_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600")),
        ],
        pages::AUTOSUBMIT_JS,
    )
        .into_response()
}

async fn node_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600")),
        ],
        pages::CSS,
    )
        .into_response()
}

/// The first value of `name` among form/query pairs; an error if it occurs twice.
fn single(pairs: &[(String, String)], name: &str) -> anyhow::Result<Option<String>> {
    let mut it = pairs.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.clone());
    if it.next().is_some() {
        bail!("parameter {name} occurs more than once");
    }
    Ok(first)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// `GET /sso`: HTTP-Redirect binding.
async fn sso_redirect(State(node): State<MockEidasNode>, RawQuery(raw): RawQuery) -> Response {
    let raw = raw.unwrap_or_default();
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    let fields = (|| -> anyhow::Result<_> {
        let req = single(&pairs, "SAMLRequest")?.context("no SAMLRequest")?;
        Ok((
            req,
            single(&pairs, "RelayState")?,
            single(&pairs, "SigAlg")?,
            single(&pairs, "Signature")?,
            non_empty(single(&pairs, "country")?),
        ))
    })();
    let (saml_request, relay_state, sig_alg, signature, country) = match fields {
        Ok(f) => f,
        Err(e) => return node.reject("invalid_request", &e),
    };
    let (Some(sig_alg), Some(signature)) = (sig_alg, signature) else {
        return node.reject(
            "unsigned_request",
            &anyhow!("the request has no SigAlg/Signature (HTTP-Redirect binding)"),
        );
    };
    let xml = match request::inflate_redirect(&saml_request) {
        Ok(x) => x,
        Err(e) => return node.reject("invalid_request", &e),
    };
    let octets = match request::redirect_signed_octets(&raw) {
        Ok(o) => o,
        Err(e) => return node.reject("invalid_request", &e),
    };
    let sig = match request::decode_b64(&signature) {
        Ok(s) => s,
        Err(e) => return node.reject("invalid_signature", &anyhow!("Signature: {e}")),
    };
    let alg = sig_alg.clone();
    let verified = node
        .verify_with_sp(move |certs| crypto::verify_redirect(octets.as_bytes(), &alg, &sig, &certs))
        .await;
    let sp = match verified {
        Ok(((), sp)) => sp,
        Err(e) => return node.reject("invalid_signature", &e),
    };
    let parsed = match request::parse_authn_request(&xml) {
        Ok(p) => p,
        Err(e) => return node.reject("invalid_request", &e),
    };
    let arrival = Arrival {
        binding: Binding::Redirect,
        relay_state,
        country,
        signature_algorithm: sig_alg,
        xml,
    };
    match node.accept(parsed, &sp, arrival) {
        Ok(key) => continue_login(&node, &key),
        Err(e) => node.reject("invalid_request", &e),
    }
}

/// `POST /sso`: HTTP-POST binding.
async fn sso_post(
    State(node): State<MockEidasNode>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let fields = (|| -> anyhow::Result<_> {
        let req = single(&pairs, "SAMLRequest")?.context("no SAMLRequest")?;
        Ok((req, single(&pairs, "RelayState")?, non_empty(single(&pairs, "country")?)))
    })();
    let (saml_request, relay_state, country) = match fields {
        Ok(f) => f,
        Err(e) => return node.reject("invalid_request", &e),
    };
    let xml = match request::decode_post(&saml_request) {
        Ok(x) => x,
        Err(e) => return node.reject("invalid_request", &e),
    };
    let root_id = roxmltree::Document::parse(&xml)
        .ok()
        .and_then(|d| d.root_element().attribute("ID").map(str::to_string));
    let x = xml.clone();
    let verified = node.verify_with_sp(move |certs| crypto::verify_enveloped(&x, &certs)).await;
    let ((signed_xml, alg), sp) = match verified {
        Ok(v) => v,
        Err(e) => {
            let code = if xml.contains(crypto::DSIG_NS) {
                "invalid_signature"
            } else {
                "unsigned_request"
            };
            return node.reject(code, &e);
        }
    };
    let parsed = match request::parse_authn_request(&signed_xml) {
        Ok(p) => p,
        Err(e) => return node.reject("invalid_request", &e),
    };
    if root_id.as_deref() != Some(parsed.id.as_str()) {
        return node.reject(
            "invalid_signature",
            &anyhow!("the signature does not cover the request element"),
        );
    }
    let arrival = Arrival {
        binding: Binding::Post,
        relay_state,
        country,
        signature_algorithm: alg,
        xml: signed_xml,
    };
    match node.accept(parsed, &sp, arrival) {
        Ok(key) => continue_login(&node, &key),
        Err(e) => node.reject("invalid_request", &e),
    }
}

/// A 303 to a page of the node (absolute URL under the public base URL).
fn see_other(node: &MockEidasNode, path: &str) -> Response {
    Redirect::to(&format!("{}{path}", node.base_url())).into_response()
}

fn continue_login(node: &MockEidasNode, key: &str) -> Response {
    let has_country = node.pending(key).and_then(|(_, c)| c).is_some();
    if has_country {
        see_other(node, &format!("/login/{key}/authenticate"))
    } else {
        see_other(node, &format!("/login/{key}"))
    }
}

fn unknown_login() -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::error_page("unknown_login", "This login is unknown or has expired."),
    )
}

/// `GET /login/{key}`: choose your country.
async fn country_get(State(node): State<MockEidasNode>, Path(key): Path<String>) -> Response {
    match node.pending(&key) {
        Some((req, _)) => html(StatusCode::OK, pages::country_page(&key, &req, None)),
        None => unknown_login(),
    }
}

#[derive(Deserialize)]
struct CountryForm {
    #[serde(default)]
    country: String,
}

/// `POST /login/{key}`: the chosen country.
async fn country_post(
    State(node): State<MockEidasNode>,
    Path(key): Path<String>,
    Form(form): Form<CountryForm>,
) -> Response {
    let Some((req, _)) = node.pending(&key) else {
        return unknown_login();
    };
    let Some((code, _)) = COUNTRIES.iter().find(|(c, _)| c.eq_ignore_ascii_case(&form.country))
    else {
        return html(
            StatusCode::OK,
            pages::country_page(&key, &req, Some("Please choose a country.")),
        );
    };
    if let Some(p) = node.state().pending.get_mut(&key) {
        p.country = Some(code.to_string());
    }
    see_other(&node, &format!("/login/{key}/authenticate"))
}

fn authenticate_page(
    key: &str,
    req: &ReceivedRequest,
    country: &str,
    error: Option<&str>,
) -> String {
    if country == "NL" {
        pages::digid_page(key, req, error)
    } else {
        pages::citizens_page(key, country, req, error)
    }
}

/// `GET /login/{key}/authenticate`: DigiD (NL) or the country's test citizens.
async fn authenticate_get(State(node): State<MockEidasNode>, Path(key): Path<String>) -> Response {
    match node.pending(&key) {
        Some((req, Some(country))) => {
            html(StatusCode::OK, authenticate_page(&key, &req, &country, None))
        }
        Some((_, None)) => see_other(&node, &format!("/login/{key}")),
        None => unknown_login(),
    }
}

#[derive(Deserialize)]
struct AuthenticateForm {
    #[serde(default)]
    citizen: String,
    #[serde(default)]
    username: String,
}

/// `POST /login/{key}/authenticate`: log the chosen citizen in and answer the SP.
async fn authenticate_post(
    State(node): State<MockEidasNode>,
    Path(key): Path<String>,
    Form(form): Form<AuthenticateForm>,
) -> Response {
    let Some((req, Some(country))) = node.pending(&key) else {
        return unknown_login();
    };
    let chosen = if form.username.trim().is_empty() {
        citizens::citizen(&form.citizen)
    } else {
        citizens::citizen(&form.username)
    };
    let Some(citizen) = chosen.filter(|c| c.country == country) else {
        let msg = if country == "NL" {
            "Unknown DigiD username."
        } else {
            "Please choose a test citizen."
        };
        return html(StatusCode::OK, authenticate_page(&key, &req, &country, Some(msg)));
    };
    if node.state().pending.remove(&key).is_none() {
        return unknown_login();
    }
    let outcome = node.outcome_for(&req.id);
    node.response_page(&req, citizen, outcome).await
}

/// `POST /login/{key}/cancel`: the citizen cancelled (`Requester` + `RequestDenied`).
async fn cancel_post(State(node): State<MockEidasNode>, Path(key): Path<String>) -> Response {
    let Some(p) = node.state().pending.remove(&key) else {
        return unknown_login();
    };
    let citizen =
        citizens_of(p.country.as_deref().unwrap_or("NL")).next().copied().unwrap_or(NL_SUBSTANTIAL);
    node.response_page(&p.request, &citizen, Outcome::Cancelled).await
}

#[derive(Deserialize)]
struct TestLoginQuery {
    request_id: String,
    citizen: String,
    #[serde(default)]
    outcome: Option<String>,
}

/// `GET /sso/test-login?request_id=…&citizen=…[&outcome=…]`: the response page at once.
async fn test_login(
    State(node): State<MockEidasNode>,
    Query(q): Query<TestLoginQuery>,
) -> Response {
    let bad =
        |msg: String| html(StatusCode::BAD_REQUEST, pages::error_page("invalid_request", &msg));
    let Some(citizen) = citizens::citizen(&q.citizen) else {
        return bad(format!("unknown citizen {:?}", q.citizen));
    };
    let outcome = match q.outcome.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => match s.parse::<Outcome>() {
            Ok(o) => o,
            Err(e) => return bad(e),
        },
        None => node.outcome_for(&q.request_id),
    };
    let req = match node.request_for(&q.request_id).await {
        Ok(r) if !q.request_id.trim_start().starts_with('<') => r,
        Ok(_) => return bad("request_id must be an ID".into()),
        Err(e) => return bad(format!("{e:#}")),
    };
    node.state().pending.retain(|_, p| p.request.id != req.id);
    node.response_page(&req, citizen, outcome).await
}

#[derive(Deserialize)]
struct ControlForm {
    outcome: String,
    #[serde(default)]
    request_id: Option<String>,
}

/// `POST /control/outcome` (form `outcome=…[&request_id=…]`): sets the default or a request's
/// outcome. Answers 204, or 400 for an unknown outcome.
async fn control_outcome(
    State(node): State<MockEidasNode>,
    Form(form): Form<ControlForm>,
) -> Response {
    match form.outcome.parse::<Outcome>() {
        Ok(o) => {
            match form.request_id.filter(|s| !s.is_empty()) {
                Some(id) => node.set_outcome_for(&id, o),
                None => node.set_default_outcome(o),
            }
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}
