//! Mock of the Belgian federal authentication service (FAS/CSAM) as a real OpenID Connect
//! provider, so that the broker's relying-party code path is the production one.
//!
//! # Endpoints (relative to the issuer, like the real FAS under `https://<host>/fas/oauth2`)
//!
//! * `GET /.well-known/openid-configuration`: discovery. The issuer is the configured base URL
//!   without trailing slash (`http://127.0.0.1:PORT` from [`start`]); when the base URL has a
//!   path (e.g. `http://localhost:8094/fas/oauth2`) every route is served under that path.
//! * `GET /connect/jwk_uri`: JWKS with one RSA-2048 key (`"alg": "RS256"`, `kid` derived from the
//!   key). The key is generated at start-up.
//! * `GET /authorize`: code flow only. Requires `response_type=code`, the configured `client_id`,
//!   an exactly registered `redirect_uri` (otherwise an HTTP 400 page and no redirect), a `scope`
//!   with `openid`, `state`, `nonce` and PKCE (`code_challenge`, `code_challenge_method=S256`);
//!   other faults are redirected as `error=invalid_request` (`unsupported_response_type`,
//!   `invalid_scope`). Shows the page "Federal authentication service (mock)": test persons and
//!   the means as radio inputs, "Log in" and "Cancel" buttons (`POST /authorize/login`, fields
//!   `request`, `person`, `means`, `action=login|cancel`); no JavaScript. Log in → `302
//!   redirect_uri?code=…&state=…&iss=…`; Cancel → `302 redirect_uri?error=access_denied&…`.
//!   Codes live 60 s and are single use.
//! * `GET /authorize/test?<the same authorization parameters>&person=<key or INSZ>&means=<eid|
//!   itsme|totp|sms|token>[&tamper=<wrong_nonce|unknown_key|wrong_audience|expired|wrong_issuer|
//!   no_nrn>][&acr=<any level URI>][&cancel=true]`: the same checks and the same 302 without the
//!   page (see [`test_login_url`]); `acr=` puts that value in the ID token instead of the means'
//!   level (e.g. `urn:be:fedict:iam:fas:Level200`, which a relying party may not know).
//! * `POST /access_token`: `grant_type=authorization_code`, `code`, `redirect_uri`,
//!   `code_verifier`; client authentication `client_secret_basic` (credentials form-urlencoded as
//!   RFC 6749 §2.3.1 says; raw ones are accepted too) or `client_secret_post`. Answers
//!   `{access_token, token_type: "Bearer", expires_in, scope, id_token}`. A code presented a
//!   second time is refused (`invalid_grant`) and the access token it gave is revoked.
//! * `GET|POST /userinfo` (Bearer access token): JSON `{sub, egovNRN, givenName, surname,
//!   given_name, family_name}`.
//! * `POST /introspect` (client authentication, `token`): RFC 7662 answer.
//! * `GET /connect/endSession[?post_logout_redirect_uri=…&state=…]`: redirects back when the URI
//!   has the origin of a registered redirect URI, else shows a "signed out" page.
//!
//! # ID token
//!
//! RS256; `iss`, `aud` = client ID, `sub` (stable per person, opaque: derived from the INSZ),
//! `exp` (10 min), `iat`, `auth_time`, `nonce`, `at_hash`, `acr`, `amr`, `egovNRN` (the INSZ),
//! `givenName`, `surname`, `given_name`, `family_name`.
//!
//! # Means
//!
//! | means (`means=`) | what | `acr` | `amr` |
//! |---|---|---|---|
//! | `eid` | Belgian eID card and reader | `urn:be:fedict:iam:fas:Level500` | `["eid"]` |
//! | `itsme` | itsme app | `urn:be:fedict:iam:fas:Level450` | `["bmid"]` |
//! | `totp` | security code from a mobile app | `urn:be:fedict:iam:fas:Level400` | `["totp"]` |
//! | `sms` | security code by SMS | `urn:be:fedict:iam:fas:Level400` | `["sms"]` |
//! | `token` | security code from the token (code card) | `urn:be:fedict:iam:fas:Level300` | `["token"]` |
//!
//! FAS gives the app code and SMS the same level: only the `amr` tells them apart (the broker
//! maps it through `[fas.means]`; `bmid` is FAS's name for itsme).
//!
//! # Test persons
//!
//! | key | INSZ | name | note |
//! |---|---|---|---|
//! | `pieter` | `75031212346` | Pieter Janssens, born 1975-03-12 | GP in the CoBRHA mock ([`crate::cobrha::GP`]) |
//! | `anna` | `85073003328` | Anna Peeters, born 1985-07-30 | the broker demo's digital-key patient |
//! | `koen` | `68092504715` | Koen Peeters, born 1968-09-25 | physician and dentist in the CoBRHA mock |
//! | `lucas` | `01041821502` | Lucas Wouters, born 2001-04-18 | born after 2000 (check digits over `2` + nine digits); a patient, unknown to CoBRHA as professional |
//!
//! # Hostile tests
//!
//! [`MockFas::set_tamper`] makes every token response misbehave (see [`Tamper`]) until it is set
//! back to `None`; the test API's `tamper=` does it for one code. [`MockFas::set_error`] makes
//! every authorization request (page and test API) answer with an error redirect until cleared.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use axum::body::Bytes;
use axum::extract::{Form, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, AuthenticationContextClass,
    AuthenticationMethodReference, EndUserFamilyName, EndUserGivenName, IdToken, IdTokenClaims,
    IssuerUrl, JsonWebKeyId, Nonce, PrivateSigningKey, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

/// FAS level of the eID card.
pub const LEVEL_500: &str = "urn:be:fedict:iam:fas:Level500";
/// FAS level of itsme.
pub const LEVEL_450: &str = "urn:be:fedict:iam:fas:Level450";
/// FAS level of a security code from a mobile app or by SMS.
pub const LEVEL_400: &str = "urn:be:fedict:iam:fas:Level400";
/// FAS level of a security code from the token (code card).
pub const LEVEL_300: &str = "urn:be:fedict:iam:fas:Level300";

/// How long an authorization code is valid.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// `expires_in` of an access token, in seconds.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 3600;
/// Lifetime of an ID token, in seconds.
pub const ID_TOKEN_TTL_SECS: i64 = 600;
/// The issuer put in ID tokens under [`Tamper::WrongIssuer`] (the real integration FAS).
pub const WRONG_ISSUER: &str = "https://idp.iamfas.int.belgium.be/fas/oauth2";
/// The audience put in ID tokens under [`Tamper::WrongAudience`].
pub const WRONG_AUDIENCE: &str = "another-relying-party";

/// How long a login shown on the page may stay pending.
const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// How long a used code is remembered (to refuse and revoke on reuse).
const USED_CODE_MEMORY: Duration = Duration::from_secs(600);
/// How many accepted authorization requests are kept for inspection.
const MAX_RECORDED: usize = 200;

// ---------------------------------------------------------------------------------------------
// Means

/// An authentication means offered by FAS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Means {
    /// Belgian eID card (`Level500`, amr `eid`).
    Eid,
    /// itsme (`Level450`, amr `bmid`).
    Itsme,
    /// Security code from a mobile app, TOTP (`Level400`, amr `totp`).
    Totp,
    /// Security code by SMS (`Level400`, amr `sms`).
    Sms,
    /// Security code from the token / code card (`Level300`, amr `token`).
    Token,
}

impl Means {
    pub const ALL: [Means; 5] = [Means::Eid, Means::Itsme, Means::Totp, Means::Sms, Means::Token];

    /// The value in the page's `means` radio input and the test API's `means=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Means::Eid => "eid",
            Means::Itsme => "itsme",
            Means::Totp => "totp",
            Means::Sms => "sms",
            Means::Token => "token",
        }
    }

    /// The value in the ID token's `amr` (FAS names: `bmid` for itsme).
    pub fn amr(self) -> &'static str {
        match self {
            Means::Eid => "eid",
            Means::Itsme => "bmid",
            Means::Totp => "totp",
            Means::Sms => "sms",
            Means::Token => "token",
        }
    }

    /// The ID token's `acr`.
    pub fn acr(self) -> &'static str {
        match self {
            Means::Eid => LEVEL_500,
            Means::Itsme => LEVEL_450,
            Means::Totp | Means::Sms => LEVEL_400,
            Means::Token => LEVEL_300,
        }
    }

    /// What the page shows.
    pub fn label(self) -> &'static str {
        match self {
            Means::Eid => "Belgian eID (card reader)",
            Means::Itsme => "itsme",
            Means::Totp => "Security code from a mobile app",
            Means::Sms => "Security code by SMS",
            Means::Token => "Security code from the token (code card)",
        }
    }

    /// Parses [`Means::as_str`] values (and `bmid` for itsme).
    pub fn parse(s: &str) -> Option<Means> {
        match s.trim().to_ascii_lowercase().as_str() {
            "eid" => Some(Means::Eid),
            "itsme" | "bmid" => Some(Means::Itsme),
            "totp" => Some(Means::Totp),
            "sms" => Some(Means::Sms),
            "token" => Some(Means::Token),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Test persons

/// A test person FAS can log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FasPerson {
    /// Short key for the test API's `person=` and the page's radio input.
    pub key: &'static str,
    /// National number (`egovNRN`), 11 digits with valid check digits.
    pub insz: &'static str,
    /// `givenName` / `given_name`.
    pub given_name: &'static str,
    /// `surname` / `family_name`.
    pub surname: &'static str,
    /// `YYYY-MM-DD` (not a claim; for documentation and tests).
    pub birth_date: &'static str,
    pub note: &'static str,
}

impl FasPerson {
    /// The ID token's `sub`: stable and opaque (derived from the INSZ, the same after restarts).
    pub fn sub(&self) -> String {
        let digest = Sha256::digest(format!("mock-fas-subject:{}", self.insz).as_bytes());
        hex_lower(&digest[..16])
    }
}

/// Dr. Pieter Janssens, GP (the CoBRHA mock's [`crate::cobrha::GP`]).
pub const PIETER_JANSSENS: FasPerson = FasPerson {
    key: "pieter",
    insz: "75031212346",
    given_name: "Pieter",
    surname: "Janssens",
    birth_date: "1975-03-12",
    note: "general practitioner (CoBRHA: active PHYSICIAN)",
};

/// Anna Peeters, the broker demo's digital-key patient.
pub const ANNA_PEETERS: FasPerson = FasPerson {
    key: "anna",
    insz: "85073003328",
    given_name: "Anna",
    surname: "Peeters",
    birth_date: "1985-07-30",
    note: "patient (the demo's digital-key person)",
};

/// Dr. Koen Peeters, physician and dentist (the CoBRHA mock's `PHYSICIAN_DENTIST`).
pub const KOEN_PEETERS: FasPerson = FasPerson {
    key: "koen",
    insz: "68092504715",
    given_name: "Koen",
    surname: "Peeters",
    birth_date: "1968-09-25",
    note: "maxillofacial surgeon (CoBRHA: PHYSICIAN and DENTIST)",
};

/// Lucas Wouters, born 2001 (check digits over `2` + the nine digits); a patient.
pub const LUCAS_WOUTERS: FasPerson = FasPerson {
    key: "lucas",
    insz: "01041821502",
    given_name: "Lucas",
    surname: "Wouters",
    birth_date: "2001-04-18",
    note: "patient born after 2000 (no profession in CoBRHA)",
};

/// Every test person, in page order.
pub const TEST_PERSONS: [FasPerson; 4] =
    [PIETER_JANSSENS, ANNA_PEETERS, KOEN_PEETERS, LUCAS_WOUTERS];

/// Every test person, in page order.
pub fn test_persons() -> Vec<FasPerson> {
    TEST_PERSONS.to_vec()
}

/// A test person by key (`pieter`) or INSZ (`75031212346`).
pub fn person(key_or_insz: &str) -> Option<FasPerson> {
    let k = key_or_insz.trim();
    TEST_PERSONS.iter().copied().find(|p| p.key.eq_ignore_ascii_case(k) || p.insz == k)
}

// ---------------------------------------------------------------------------------------------
// Tamper

/// How a token response misbehaves (each makes a correct relying party refuse the login).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tamper {
    /// The ID token's `nonce` is a different random value.
    WrongNonce,
    /// The ID token is signed by a key not in the JWKS (with the genuine key's `kid`).
    UnknownKey,
    /// `aud` is [`WRONG_AUDIENCE`].
    WrongAudience,
    /// `exp` lies 5 minutes in the past (`iat` 15 minutes).
    Expired,
    /// `iss` is [`WRONG_ISSUER`].
    WrongIssuer,
    /// No `egovNRN` claim (in the ID token and the userinfo answer).
    NoNrn,
}

impl Tamper {
    pub const ALL: [Tamper; 6] = [
        Tamper::WrongNonce,
        Tamper::UnknownKey,
        Tamper::WrongAudience,
        Tamper::Expired,
        Tamper::WrongIssuer,
        Tamper::NoNrn,
    ];

    /// The test API's `tamper=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Tamper::WrongNonce => "wrong_nonce",
            Tamper::UnknownKey => "unknown_key",
            Tamper::WrongAudience => "wrong_audience",
            Tamper::Expired => "expired",
            Tamper::WrongIssuer => "wrong_issuer",
            Tamper::NoNrn => "no_nrn",
        }
    }

    pub fn parse(s: &str) -> Option<Tamper> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Tamper::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and handle

/// Configuration of a [`MockFas`].
#[derive(Clone, Debug, Default)]
pub struct FasConfig {
    /// Public base URL = issuer (a trailing slash is dropped), e.g. `http://localhost:8094`.
    /// Empty: [`start`] fills it in from the bound address.
    pub base_url: String,
    /// The one registered client.
    pub client_id: String,
    pub client_secret: String,
    /// Registered redirect URIs (exact match); more with [`MockFas::add_redirect_uri`].
    pub redirect_uris: Vec<String>,
}

/// An authorization request the mock accepted (for tests to inspect what the RP sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub nonce: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub acr_values: Option<String>,
    pub prompt: Option<String>,
    pub ui_locales: Option<String>,
}

/// Handle to a mock FAS (cheap to clone; all clones share state).
#[derive(Clone)]
pub struct MockFas {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    /// Path part of the issuer (`""` or e.g. `/fas/oauth2`): every route lives under it.
    prefix: String,
    client_id: String,
    client_secret: String,
    key: CoreRsaPrivateSigningKey,
    rogue_key: CoreRsaPrivateSigningKey,
    jwks: serde_json::Value,
    state: Mutex<FasState>,
}

#[derive(Default)]
struct FasState {
    redirect_uris: Vec<String>,
    tamper: Option<Tamper>,
    error: Option<String>,
    pending: HashMap<String, (AuthorizationRequest, Instant)>,
    codes: HashMap<String, CodeGrant>,
    /// Code → when it was used and the access token it gave.
    used_codes: HashMap<String, (Instant, Option<String>)>,
    tokens: HashMap<String, TokenGrant>,
    requests: Vec<AuthorizationRequest>,
}

struct CodeGrant {
    request: AuthorizationRequest,
    person: FasPerson,
    means: Means,
    /// The ID token's `acr` when not the means' own (test API `acr=`).
    acr: Option<String>,
    auth_time: i64,
    created: Instant,
    tamper: Option<Tamper>,
}

struct TokenGrant {
    person: FasPerson,
    scope: String,
    no_nrn: bool,
    issued_at: i64,
    expires_at: i64,
}

impl MockFas {
    /// A provider with a fresh RSA-2048 signing key. `cfg.base_url` must be set.
    pub fn new(cfg: FasConfig) -> anyhow::Result<MockFas> {
        let issuer = cfg.base_url.trim().trim_end_matches('/').to_string();
        if issuer.is_empty() {
            bail!("FasConfig::base_url is empty");
        }
        let url =
            url::Url::parse(&issuer).with_context(|| format!("FasConfig::base_url {issuer:?}"))?;
        if url.query().is_some() || url.fragment().is_some() {
            bail!("FasConfig::base_url {issuer:?} must have no query or fragment");
        }
        let prefix = url.path().trim_end_matches('/').to_string();
        let (key, kid) = generate_key(None)?;
        let (rogue_key, _) = generate_key(Some(&kid))?;
        let mut jwk = serde_json::to_value(key.as_verification_key()).context("JWK")?;
        if let Some(obj) = jwk.as_object_mut() {
            obj.retain(|_, v| !v.is_null());
            obj.insert("alg".into(), json!("RS256"));
        }
        Ok(MockFas {
            inner: Arc::new(Inner {
                issuer,
                prefix,
                client_id: cfg.client_id,
                client_secret: cfg.client_secret,
                key,
                rogue_key,
                jwks: json!({ "keys": [jwk] }),
                state: Mutex::new(FasState {
                    redirect_uris: cfg.redirect_uris,
                    ..FasState::default()
                }),
            }),
        })
    }

    /// The routes (see the module documentation), under the issuer's path.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/", get(index))
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/connect/jwk_uri", get(jwks))
            .route("/authorize", get(authorize_page))
            .route("/authorize/login", post(authorize_submit))
            .route("/authorize/test", get(authorize_test))
            .route("/access_token", post(access_token))
            .route("/userinfo", get(userinfo).post(userinfo))
            .route("/introspect", post(introspect))
            .route("/connect/endSession", get(end_session))
            .route("/fas.css", get(css))
            .with_state(self.clone());
        if self.inner.prefix.is_empty() {
            routes
        } else {
            Router::new().nest(&self.inner.prefix, routes)
        }
    }

    /// The issuer (the base URL without trailing slash).
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.inner.issuer)
    }

    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The JWKS document served at `/connect/jwk_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        self.inner.jwks.clone()
    }

    /// Registers one more redirect URI (exact match), e.g. the broker's once it is started.
    pub fn add_redirect_uri(&self, uri: &str) {
        let mut st = self.state();
        if !st.redirect_uris.iter().any(|u| u == uri) {
            st.redirect_uris.push(uri.to_string());
        }
    }

    pub fn redirect_uris(&self) -> Vec<String> {
        self.state().redirect_uris.clone()
    }

    /// Makes every token response misbehave until set back to `None`.
    pub fn set_tamper(&self, tamper: Option<Tamper>) {
        self.state().tamper = tamper;
    }

    /// Makes every authorization request (page and test API) answer `redirect_uri?error=<error>
    /// &state=…` (after the client ID and redirect URI checks) until set back to `None`.
    pub fn set_error(&self, error: Option<String>) {
        self.state().error = error;
    }

    /// The authorization requests accepted so far (oldest first; the last 200).
    pub fn authorization_requests(&self) -> Vec<AuthorizationRequest> {
        self.state().requests.clone()
    }

    pub fn last_authorization_request(&self) -> Option<AuthorizationRequest> {
        self.state().requests.last().cloned()
    }

    fn state(&self) -> MutexGuard<'_, FasState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, p: &str) -> String {
        format!("{}{p}", self.inner.prefix)
    }

    fn endpoint(&self, p: &str) -> String {
        format!("{}{p}", self.inner.issuer)
    }

    /// Checks an authorization request. `Err(Fault::Page)`: no redirect possible.
    fn check_authorization(
        &self,
        pairs: &[(String, String)],
    ) -> Result<AuthorizationRequest, Fault> {
        let page = |msg: &str| Fault::Page(msg.to_string());
        let one = |name: &str| single(pairs, name).map_err(|e| page(&e));
        let client_id = one("client_id")?.ok_or_else(|| page("client_id is missing"))?;
        if client_id != self.inner.client_id {
            return Err(page("unknown client_id"));
        }
        let redirect_uri = one("redirect_uri")?.ok_or_else(|| page("redirect_uri is missing"))?;
        if !self.state().redirect_uris.contains(&redirect_uri) {
            return Err(page("redirect_uri is not registered for this client"));
        }
        let state = single(pairs, "state").ok().flatten();
        let redirect = |error: &str, description: String| Fault::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error: error.to_string(),
            description: Some(description),
        };
        if let Some(error) = self.state().error.clone() {
            return Err(Fault::Redirect {
                redirect_uri: redirect_uri.clone(),
                state: state.clone(),
                error,
                description: Some("the federal authentication service failed (mock)".into()),
            });
        }
        let get = |name: &str| single(pairs, name).map_err(|e| redirect("invalid_request", e));
        match get("response_type")?.as_deref() {
            Some("code") => {}
            Some(other) => {
                return Err(redirect(
                    "unsupported_response_type",
                    format!("response_type {other:?}: only the code flow"),
                ))
            }
            None => return Err(redirect("invalid_request", "response_type is missing".into())),
        }
        let scope = get("scope")?.unwrap_or_default();
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(redirect("invalid_scope", "scope must contain openid".into()));
        }
        let state = get("state")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| redirect("invalid_request", "state is required".into()))?;
        let nonce = get("nonce")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| redirect("invalid_request", "nonce is required".into()))?;
        let code_challenge = get("code_challenge")?
            .ok_or_else(|| redirect("invalid_request", "PKCE code_challenge is required".into()))?;
        let method = get("code_challenge_method")?.unwrap_or_else(|| "plain".into());
        if method != "S256" {
            return Err(redirect(
                "invalid_request",
                format!("code_challenge_method {method:?}: only S256"),
            ));
        }
        if code_challenge.len() != 43 || !code_challenge.bytes().all(is_base64url) {
            return Err(redirect("invalid_request", "malformed code_challenge".into()));
        }
        Ok(AuthorizationRequest {
            client_id,
            redirect_uri: redirect_uri.clone(),
            scope,
            state,
            nonce,
            code_challenge,
            code_challenge_method: method,
            acr_values: get("acr_values")?,
            prompt: get("prompt")?,
            ui_locales: get("ui_locales")?,
        })
    }

    fn record(&self, req: &AuthorizationRequest) {
        let mut st = self.state();
        st.requests.push(req.clone());
        if st.requests.len() > MAX_RECORDED {
            let excess = st.requests.len() - MAX_RECORDED;
            st.requests.drain(..excess);
        }
    }

    /// A fresh code for a login of `person` with `means` (and `acr` instead of the means'
    /// level, if given); the success redirect.
    fn login_redirect(
        &self,
        request: AuthorizationRequest,
        person: FasPerson,
        means: Means,
        acr: Option<String>,
        tamper: Option<Tamper>,
    ) -> Response {
        let code = random_token();
        let redirect_uri = request.redirect_uri.clone();
        let state = request.state.clone();
        {
            let mut st = self.state();
            st.codes.retain(|_, c| c.created.elapsed() <= CODE_TTL);
            st.codes.insert(
                code.clone(),
                CodeGrant {
                    request,
                    person,
                    means,
                    acr,
                    auth_time: Utc::now().timestamp(),
                    created: Instant::now(),
                    tamper,
                },
            );
        }
        tracing::info!(person = person.key, means = means.as_str(), "mock FAS: login");
        redirect_with(
            &redirect_uri,
            &[("code", &code), ("state", &state), ("iss", &self.inner.issuer)],
        )
    }

    fn error_redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        error: &str,
        description: Option<&str>,
    ) -> Response {
        let mut params = vec![("error", error)];
        if let Some(d) = description {
            params.push(("error_description", d));
        }
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.push(("iss", &self.inner.issuer));
        redirect_with(redirect_uri, &params)
    }

    fn fault_response(&self, fault: Fault) -> Response {
        match fault {
            Fault::Page(msg) => html(
                StatusCode::BAD_REQUEST,
                self.page_shell(&format!(
                    "<h2>This login request cannot be handled</h2><p class=\"error\">{}</p>",
                    esc(&msg)
                )),
            ),
            Fault::Redirect { redirect_uri, state, error, description } => {
                self.error_redirect(&redirect_uri, state.as_deref(), &error, description.as_deref())
            }
        }
    }

    /// Checks the client authentication of a token/introspection request.
    fn authenticate_client(
        &self,
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<(), Box<Response>> {
        let post_id =
            single(pairs, "client_id").map_err(|e| Box::new(oauth_error("invalid_request", &e)))?;
        let post_secret = single(pairs, "client_secret")
            .map_err(|e| Box::new(oauth_error("invalid_request", &e)))?;
        let basic = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
        let unauthorized = |basic_used: bool| {
            let mut resp = oauth_error("invalid_client", "client authentication failed");
            *resp.status_mut() = StatusCode::UNAUTHORIZED;
            if basic_used {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"mock-fas\""),
                );
            }
            Box::new(resp)
        };
        match (basic, post_secret) {
            (Some(_), Some(_)) => Err(Box::new(oauth_error(
                "invalid_request",
                "use one client authentication method, not two",
            ))),
            (Some(b64), None) => {
                let raw = STANDARD
                    .decode(b64.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| unauthorized(true))?;
                let (id, secret) = raw.split_once(':').ok_or_else(|| unauthorized(true))?;
                let matches = |given: &str, expected: &str| {
                    given == expected || form_decode(given).as_deref() == Some(expected)
                };
                if !matches(id, &self.inner.client_id)
                    || !matches(secret, &self.inner.client_secret)
                {
                    return Err(unauthorized(true));
                }
                if post_id.is_some_and(|p| p != self.inner.client_id) {
                    return Err(Box::new(oauth_error(
                        "invalid_request",
                        "client_id differs from the credentials",
                    )));
                }
                Ok(())
            }
            (None, Some(secret)) => {
                if post_id.as_deref() != Some(self.inner.client_id.as_str())
                    || secret != self.inner.client_secret
                {
                    return Err(unauthorized(false));
                }
                Ok(())
            }
            (None, None) => Err(unauthorized(false)),
        }
    }

    /// Builds and signs the ID token.
    fn id_token(
        &self,
        grant: &CodeGrant,
        access_token: &str,
        tamper: Option<Tamper>,
    ) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let (iat, exp) = if tamper == Some(Tamper::Expired) {
            (now - 900, now - 300)
        } else {
            (now, now + ID_TOKEN_TTL_SECS)
        };
        let issuer = if tamper == Some(Tamper::WrongIssuer) {
            WRONG_ISSUER.to_string()
        } else {
            self.inner.issuer.clone()
        };
        let audience = if tamper == Some(Tamper::WrongAudience) {
            WRONG_AUDIENCE.to_string()
        } else {
            grant.request.client_id.clone()
        };
        let nonce = if tamper == Some(Tamper::WrongNonce) {
            random_token()
        } else {
            grant.request.nonce.clone()
        };
        let person = grant.person;
        let standard = StandardClaims::new(SubjectIdentifier::new(person.sub()))
            .set_given_name(Some(EndUserGivenName::new(person.given_name.into()).into()))
            .set_family_name(Some(EndUserFamilyName::new(person.surname.into()).into()));
        let extra = FasIdClaims {
            egov_nrn: (tamper != Some(Tamper::NoNrn)).then(|| person.insz.to_string()),
            given_name: person.given_name.to_string(),
            surname: person.surname.to_string(),
        };
        let claims = IdTokenClaims::<FasIdClaims, CoreGenderClaim>::new(
            IssuerUrl::new(issuer).context("issuer URL")?,
            vec![Audience::new(audience)],
            timestamp(exp)?,
            timestamp(iat)?,
            standard,
            extra,
        )
        .set_auth_time(Some(timestamp(grant.auth_time)?))
        .set_nonce(Some(Nonce::new(nonce)))
        .set_auth_context_ref(Some(AuthenticationContextClass::new(
            grant.acr.clone().unwrap_or_else(|| grant.means.acr().into()),
        )))
        .set_auth_method_refs(Some(vec![AuthenticationMethodReference::new(
            grant.means.amr().into(),
        )]));
        let key = if tamper == Some(Tamper::UnknownKey) {
            &self.inner.rogue_key
        } else {
            &self.inner.key
        };
        let token = IdToken::<
            FasIdClaims,
            CoreGenderClaim,
            CoreJweContentEncryptionAlgorithm,
            CoreJwsSigningAlgorithm,
        >::new(
            claims,
            key,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            Some(&AccessToken::new(access_token.to_string())),
            None,
        )
        .map_err(|e| anyhow!("signing the ID token: {e}"))?;
        Ok(token.to_string())
    }

    fn page_shell(&self, body: &str) -> String {
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Federal authentication service (mock)</title>\
             <link rel=\"stylesheet\" href=\"{css}\"></head>\n<body><header>\
             <h1>Federal authentication service (mock)</h1>\
             <p class=\"sub\">A stand-in for FAS/CSAM: test persons only, nothing here is real.</p>\
             </header>\n<main>{body}</main></body></html>\n",
            css = esc(&self.path("/fas.css")),
        )
    }

    fn login_page(
        &self,
        request_id: &str,
        req: &AuthorizationRequest,
        error: Option<&str>,
    ) -> String {
        let mut body = format!(
            "<p>The application <strong>{}</strong> asks you to log in.</p>",
            esc(&req.client_id)
        );
        if let Some(e) = error {
            body.push_str(&format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)));
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"request\" value=\"{}\">",
            esc(&self.path("/authorize/login")),
            esc(request_id)
        ));
        body.push_str("<fieldset><legend>Test person</legend>");
        for (i, p) in TEST_PERSONS.iter().enumerate() {
            body.push_str(&format!(
                "<label><input type=\"radio\" name=\"person\" value=\"{key}\"{checked}> \
                 {given} {surname} <span class=\"insz\">{insz}</span> \
                 <span class=\"note\">{note}</span></label>",
                key = esc(p.key),
                checked = if i == 0 { " checked" } else { "" },
                given = esc(p.given_name),
                surname = esc(p.surname),
                insz = esc(p.insz),
                note = esc(p.note),
            ));
        }
        body.push_str("</fieldset><fieldset><legend>Means of authentication</legend>");
        for (i, m) in Means::ALL.iter().enumerate() {
            body.push_str(&format!(
                "<label><input type=\"radio\" name=\"means\" value=\"{value}\"{checked}> {label} \
                 <span class=\"level\">{level}</span></label>",
                value = m.as_str(),
                checked = if i == 0 { " checked" } else { "" },
                label = esc(m.label()),
                level = esc(m.acr().rsplit(':').next().unwrap_or_default()),
            ));
        }
        body.push_str(
            "</fieldset><div class=\"actions\">\
             <button type=\"submit\" name=\"action\" value=\"login\">Log in</button> \
             <button type=\"submit\" name=\"action\" value=\"cancel\" class=\"secondary\">Cancel</button>\
             </div></form>",
        );
        self.page_shell(&body)
    }
}

/// Additional (FAS-specific) ID token claims.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct FasIdClaims {
    #[serde(rename = "egovNRN", skip_serializing_if = "Option::is_none")]
    egov_nrn: Option<String>,
    #[serde(rename = "givenName")]
    given_name: String,
    surname: String,
}
impl AdditionalClaims for FasIdClaims {}

enum Fault {
    /// Client or redirect URI not acceptable: an HTTP 400 page.
    Page(String),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: String,
        description: Option<String>,
    },
}

/// Turns an authorization URL to this mock (`…/authorize?…`, e.g. the broker's redirect) into the
/// test API URL that logs `person` (key or INSZ) in with `means` without the page.
pub fn test_login_url(
    authorization_url: &str,
    person: &str,
    means: Means,
) -> anyhow::Result<String> {
    let mut url = url::Url::parse(authorization_url).context("authorization URL")?;
    let path = url.path().trim_end_matches('/').to_string();
    if !path.ends_with("/authorize") {
        bail!("not an authorization URL: {authorization_url}");
    }
    url.set_path(&format!("{path}/test"));
    url.query_pairs_mut().append_pair("person", person).append_pair("means", means.as_str());
    Ok(url.to_string())
}

/// Starts a mock FAS on `127.0.0.1:0` (issuer from the bound port unless `cfg.base_url` is set)
/// and returns its issuer and handle. The server runs until the runtime stops.
pub async fn start(mut cfg: FasConfig) -> anyhow::Result<(String, MockFas)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    if cfg.base_url.trim().is_empty() {
        cfg.base_url = format!("http://{}", listener.local_addr()?);
    }
    let fas = MockFas::new(cfg)?;
    let router = fas.router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("mock FAS stopped: {e}");
        }
    });
    Ok((fas.issuer().to_string(), fas))
}

/// Serves `fas` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    fas: MockFas,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, fas.router()).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn index(State(fas): State<MockFas>) -> Response {
    let mut body = format!(
        "<p>Issuer <code>{issuer}</code>, discovery <a href=\"{disc}\">{disc}</a>.</p><ul>",
        issuer = esc(fas.issuer()),
        disc = esc(&fas.discovery_url())
    );
    for p in TEST_PERSONS {
        body.push_str(&format!(
            "<li>{} {} <span class=\"insz\">{}</span></li>",
            esc(p.given_name),
            esc(p.surname),
            esc(p.insz)
        ));
    }
    body.push_str("</ul>");
    html(StatusCode::OK, fas.page_shell(&body))
}

async fn discovery(State(fas): State<MockFas>) -> Response {
    let doc = json!({
        "issuer": fas.issuer(),
        "authorization_endpoint": fas.endpoint("/authorize"),
        "token_endpoint": fas.endpoint("/access_token"),
        "userinfo_endpoint": fas.endpoint("/userinfo"),
        "introspection_endpoint": fas.endpoint("/introspect"),
        "end_session_endpoint": fas.endpoint("/connect/endSession"),
        "jwks_uri": fas.endpoint("/connect/jwk_uri"),
        "scopes_supported": ["openid", "profile", "egovnrn", "certificateInfo", "citizen"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": [LEVEL_500, LEVEL_450, LEVEL_400, LEVEL_300],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr",
            "egovNRN", "givenName", "surname", "given_name", "family_name"
        ],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    json_response(StatusCode::OK, &doc)
}

async fn jwks(State(fas): State<MockFas>) -> Response {
    json_response(StatusCode::OK, &fas.inner.jwks)
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600")),
        ],
        CSS,
    )
        .into_response()
}

async fn authorize_page(State(fas): State<MockFas>, RawQuery(query): RawQuery) -> Response {
    let pairs = parse_pairs(query.as_deref());
    let req = match fas.check_authorization(&pairs) {
        Ok(r) => r,
        Err(f) => return fas.fault_response(f),
    };
    fas.record(&req);
    let id = random_token();
    let page = fas.login_page(&id, &req, None);
    {
        let mut st = fas.state();
        st.pending.retain(|_, (_, at)| at.elapsed() <= PENDING_TTL);
        st.pending.insert(id, (req, Instant::now()));
    }
    html(StatusCode::OK, page)
}

async fn authorize_submit(
    State(fas): State<MockFas>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let field = |name: &str| single(&pairs, name).ok().flatten().unwrap_or_default();
    let id = field("request");
    let pending = fas.state().pending.remove(&id).filter(|(_, at)| at.elapsed() <= PENDING_TTL);
    let Some((req, _)) = pending else {
        return fas
            .fault_response(Fault::Page("this login request is unknown or has expired".into()));
    };
    if field("action") == "cancel" {
        return fas.error_redirect(
            &req.redirect_uri,
            Some(&req.state),
            "access_denied",
            Some("the user cancelled the login"),
        );
    }
    match (person(&field("person")), Means::parse(&field("means"))) {
        (Some(p), Some(m)) => fas.login_redirect(req, p, m, None, None),
        _ => {
            let page = fas.login_page(&id, &req, Some("Choose a test person and a means."));
            fas.state().pending.insert(id, (req, Instant::now()));
            html(StatusCode::BAD_REQUEST, page)
        }
    }
}

async fn authorize_test(State(fas): State<MockFas>, RawQuery(query): RawQuery) -> Response {
    let pairs = parse_pairs(query.as_deref());
    let req = match fas.check_authorization(&pairs) {
        Ok(r) => r,
        Err(f) => return fas.fault_response(f),
    };
    fas.record(&req);
    let field = |name: &str| single(&pairs, name).ok().flatten();
    if field("cancel").is_some_and(|v| v == "true" || v == "1") {
        return fas.error_redirect(
            &req.redirect_uri,
            Some(&req.state),
            "access_denied",
            Some("the user cancelled the login"),
        );
    }
    let Some(p) = field("person").as_deref().and_then(person) else {
        return (StatusCode::BAD_REQUEST, "person: unknown test person (key or INSZ)")
            .into_response();
    };
    let Some(m) = field("means").as_deref().and_then(Means::parse) else {
        return (StatusCode::BAD_REQUEST, "means: eid, itsme, totp, sms or token").into_response();
    };
    let tamper = match field("tamper") {
        None => None,
        Some(t) => match Tamper::parse(&t) {
            Some(t) => Some(t),
            None => return (StatusCode::BAD_REQUEST, "tamper: unknown value").into_response(),
        },
    };
    let acr = match field("acr") {
        None => None,
        Some(a) if !a.trim().is_empty() && a.len() <= 256 => Some(a),
        Some(_) => return (StatusCode::BAD_REQUEST, "acr: 1 to 256 characters").into_response(),
    };
    fas.login_redirect(req, p, m, acr, tamper)
}

async fn access_token(
    State(fas): State<MockFas>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(resp) = fas.authenticate_client(&headers, &pairs) {
        return *resp;
    }
    let field = |name: &str| single(&pairs, name);
    let (grant_type, code, redirect_uri, verifier) =
        match (field("grant_type"), field("code"), field("redirect_uri"), field("code_verifier")) {
            (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
            _ => return oauth_error("invalid_request", "a parameter occurs more than once"),
        };
    match grant_type.as_deref() {
        Some("authorization_code") => {}
        Some(_) => return oauth_error("unsupported_grant_type", "only authorization_code"),
        None => return oauth_error("invalid_request", "grant_type is missing"),
    }
    let Some(code) = code else {
        return oauth_error("invalid_request", "code is missing");
    };
    let grant = {
        let mut st = fas.state();
        st.used_codes.retain(|_, (at, _)| at.elapsed() <= USED_CODE_MEMORY);
        match st.codes.remove(&code) {
            Some(g) => {
                // Any presentation uses the code up.
                st.used_codes.insert(code.clone(), (Instant::now(), None));
                g
            }
            None => {
                if let Some((_, token)) = st.used_codes.get_mut(&code) {
                    if let Some(t) = token.take() {
                        st.tokens.remove(&t);
                    }
                    return oauth_error("invalid_grant", "the code was already used");
                }
                return oauth_error("invalid_grant", "unknown or expired code");
            }
        }
    };
    if grant.created.elapsed() > CODE_TTL {
        return oauth_error("invalid_grant", "the code expired");
    }
    if grant.request.client_id != fas.inner.client_id {
        return oauth_error("invalid_grant", "the code was issued to another client");
    }
    if redirect_uri.as_deref() != Some(grant.request.redirect_uri.as_str()) {
        return oauth_error("invalid_grant", "redirect_uri differs from the authorization request");
    }
    let Some(verifier) = verifier else {
        return oauth_error("invalid_request", "code_verifier is missing");
    };
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !well_formed || computed != grant.request.code_challenge {
        return oauth_error("invalid_grant", "PKCE verification failed");
    }
    let tamper = grant.tamper.or(fas.state().tamper);
    let access = random_token();
    let id_token = match fas.id_token(&grant, &access, tamper) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("mock FAS: {e:#}");
            return oauth_error("server_error", "cannot sign the ID token");
        }
    };
    let now = Utc::now().timestamp();
    {
        let mut st = fas.state();
        st.tokens.retain(|_, t| t.expires_at > now);
        st.tokens.insert(
            access.clone(),
            TokenGrant {
                person: grant.person,
                scope: grant.request.scope.clone(),
                no_nrn: tamper == Some(Tamper::NoNrn),
                issued_at: now,
                expires_at: now + ACCESS_TOKEN_TTL_SECS,
            },
        );
        if let Some(entry) = st.used_codes.get_mut(&code) {
            entry.1 = Some(access.clone());
        }
    }
    let mut resp = json_response(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL_SECS,
            "scope": grant.request.scope,
            "id_token": id_token,
        }),
    );
    resp.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

async fn userinfo(State(fas): State<MockFas>, headers: HeaderMap, body: Bytes) -> Response {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string());
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let from_body = is_form
        .then(|| url::form_urlencoded::parse(&body).into_owned().collect::<Vec<_>>())
        .and_then(|p| single(&p, "access_token").ok().flatten());
    let invalid = |error: &'static str| {
        let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({ "error": error }));
        let value = if error == "invalid_request" {
            "Bearer realm=\"mock-fas\"".to_string()
        } else {
            format!("Bearer realm=\"mock-fas\", error=\"{error}\"")
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    };
    let Some(token) = from_header.or(from_body) else {
        return invalid("invalid_request");
    };
    let now = Utc::now().timestamp();
    let (person, no_nrn) = {
        let st = fas.state();
        match st.tokens.get(&token).filter(|t| t.expires_at > now) {
            Some(t) => (t.person, t.no_nrn),
            None => return invalid("invalid_token"),
        }
    };
    let mut claims = json!({
        "sub": person.sub(),
        "givenName": person.given_name,
        "surname": person.surname,
        "given_name": person.given_name,
        "family_name": person.surname,
    });
    if !no_nrn {
        claims["egovNRN"] = json!(person.insz);
    }
    json_response(StatusCode::OK, &claims)
}

async fn introspect(
    State(fas): State<MockFas>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(resp) = fas.authenticate_client(&headers, &pairs) {
        return *resp;
    }
    let Ok(Some(token)) = single(&pairs, "token") else {
        return oauth_error("invalid_request", "token is missing");
    };
    let now = Utc::now().timestamp();
    let st = fas.state();
    let answer = match st.tokens.get(&token).filter(|t| t.expires_at > now) {
        Some(t) => json!({
            "active": true,
            "scope": t.scope,
            "client_id": fas.inner.client_id,
            "token_type": "Bearer",
            "exp": t.expires_at,
            "iat": t.issued_at,
            "sub": t.person.sub(),
            "iss": fas.inner.issuer,
        }),
        None => json!({ "active": false }),
    };
    json_response(StatusCode::OK, &answer)
}

async fn end_session(State(fas): State<MockFas>, RawQuery(query): RawQuery) -> Response {
    let pairs = parse_pairs(query.as_deref());
    let target = single(&pairs, "post_logout_redirect_uri").ok().flatten();
    let state = single(&pairs, "state").ok().flatten();
    if let Some(target) = target {
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        let allowed = origin(&target).is_some_and(|o| {
            fas.state().redirect_uris.iter().any(|r| origin(r).as_ref() == Some(&o))
        });
        if allowed {
            let params: Vec<(&str, &str)> =
                state.as_deref().map(|s| vec![("state", s)]).unwrap_or_default();
            return redirect_with(&target, &params);
        }
    }
    html(
        StatusCode::OK,
        fas.page_shell("<h2>You are signed out</h2><p>You can close this window.</p>"),
    )
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn generate_key(kid: Option<&str>) -> anyhow::Result<(CoreRsaPrivateSigningKey, String)> {
    let rsa = openssl::rsa::Rsa::generate(2048).context("RSA key generation")?;
    let pem = String::from_utf8(rsa.private_key_to_pem().context("PEM")?).context("PEM")?;
    let kid = match kid {
        Some(k) => k.to_string(),
        None => {
            let digest = Sha256::digest(rsa.n().to_vec());
            URL_SAFE_NO_PAD.encode(&digest[..12])
        }
    };
    let key = CoreRsaPrivateSigningKey::from_pem(&pem, Some(JsonWebKeyId::new(kid.clone())))
        .map_err(|e| anyhow!("RSA key: {e}"))?;
    Ok((key, kid))
}

fn timestamp(secs: i64) -> anyhow::Result<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| anyhow!("timestamp {secs} out of range"))
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// The value of `name` among form/query pairs; an error if it occurs twice.
fn single(pairs: &[(String, String)], name: &str) -> Result<Option<String>, String> {
    let mut it = pairs.iter().filter(|(k, _)| k == name);
    let first = it.next().map(|(_, v)| v.clone());
    if it.next().is_some() {
        return Err(format!("parameter {name} occurs more than once"));
    }
    Ok(first)
}

/// Decodes an `application/x-www-form-urlencoded` value (`+` is a space).
fn form_decode(s: &str) -> Option<String> {
    if s.contains('=') || s.contains('&') {
        return None;
    }
    url::form_urlencoded::parse(s.as_bytes()).next().map(|(k, _)| k.into_owned())
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn redirect_with(target: &str, params: &[(&str, &str)]) -> Response {
    let location = match url::Url::parse(target) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => return (StatusCode::BAD_REQUEST, "bad redirect URI").into_response(),
    };
    let mut resp = StatusCode::FOUND.into_response();
    match HeaderValue::from_str(&location) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => return (StatusCode::BAD_REQUEST, "bad redirect URI").into_response(),
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut resp = (status, Json(value.clone())).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({ "error": error, "error_description": description }),
    )
}

const CSS: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1d2731}\
header{background:#1f3d7a;color:#fff;padding:1rem 2rem}\
header h1{margin:0;font-size:1.4rem}\
header .sub{margin:.3rem 0 0;opacity:.85;font-size:.9rem}\
main{max-width:44rem;margin:1.5rem auto;background:#fff;padding:1.5rem 2rem;border-radius:6px}\
fieldset{border:1px solid #cfd6de;border-radius:4px;margin:0 0 1rem;padding:.6rem 1rem}\
label{display:block;padding:.3rem 0}\
.insz,.level{font-family:monospace;color:#50606f;margin-left:.4rem}\
.note{color:#50606f;font-size:.85rem;margin-left:.4rem}\
.error{color:#a4161a;font-weight:600}\
.actions button{font-size:1rem;padding:.5rem 1.2rem;border-radius:4px;border:1px solid #1f3d7a;\
background:#1f3d7a;color:#fff;cursor:pointer}\
.actions button.secondary{background:#fff;color:#1f3d7a}\n";
