//! The mock FAS against the `openidconnect` crate as relying party (as the broker uses it):
//! discovery, code flow + PKCE + nonce, ID token verification, acr/amr per means, hostile
//! token responses.

use std::collections::HashMap;

use idp_mocks::fas::{
    self, FasConfig, Means, MockFas, Tamper, ANNA_PEETERS, KOEN_PEETERS, LUCAS_WOUTERS,
    PIETER_JANSSENS, TEST_PERSONS,
};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AccessToken, AdditionalClaims, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IdTokenClaims, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, TokenResponse as _, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

const CLIENT_ID: &str = "cozo-broker";
/// Characters that `client_secret_basic` must form-urlencode.
const CLIENT_SECRET: &str = "demo fas+secret/=&:x";
const REDIRECT_URI: &str = "http://127.0.0.1:9/oidc/fas/callback";

/// What a relying party like the broker requires of a FAS ID token: the national number.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct FasClaims {
    #[serde(rename = "egovNRN")]
    egov_nrn: String,
    #[serde(rename = "givenName")]
    given_name: String,
    surname: String,
}
impl AdditionalClaims for FasClaims {}

type FasIdToken =
    IdToken<FasClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Env {
    fas: MockFas,
    issuer: String,
    http: reqwest::Client,
    metadata: CoreProviderMetadata,
}

struct Login {
    url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

async fn setup() -> Env {
    let (issuer, fas) = fas::start(FasConfig {
        base_url: String::new(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![REDIRECT_URI.into()],
    })
    .await
    .unwrap();
    env_for(issuer, fas).await
}

async fn env_for(issuer: String, fas: MockFas) -> Env {
    // As the openidconnect crate advises against SSRF: never follow redirects.
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    Env { fas, issuer, http, metadata }
}

impl Env {
    fn client(&self) -> Rp {
        CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(CLIENT_ID.into()),
            Some(ClientSecret::new(CLIENT_SECRET.into())),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap())
    }

    /// The authorization request the broker would send.
    fn begin(&self) -> Login {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = self
            .client()
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("egovnrn".into()))
            .set_pkce_challenge(challenge)
            .url();
        Login { url: url.to_string(), state, nonce, verifier }
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// Logs `person` in with `means` through the test API; returns the code.
    async fn code(&self, login: &Login, person: &str, means: Means, extra: &str) -> String {
        let url = fas::test_login_url(&login.url, person, means).unwrap() + extra;
        let q = redirect_query(self.get(&url).await);
        assert_eq!(q.get("state"), Some(login.state.secret()), "{q:?}");
        assert_eq!(q.get("iss"), Some(&self.issuer));
        q.get("code").cloned().unwrap_or_else(|| panic!("no code: {q:?}"))
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Result<CoreTokenResponse, String> {
        self.client()
            .exchange_code(AuthorizationCode::new(code.into()))
            .unwrap()
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.into()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => r.error().to_string(),
                other => format!("{other:?}"),
            })
    }

    /// Verifies the ID token as the broker does (signature by the discovered JWKS, issuer,
    /// audience, expiry, nonce), then requires the FAS claims.
    fn verify(
        &self,
        token: &CoreTokenResponse,
        nonce: &Nonce,
    ) -> Result<IdTokenClaims<FasClaims, CoreGenderClaim>, String> {
        let client = self.client();
        let id_token = token.id_token().ok_or("no ID token")?;
        id_token.claims(&client.id_token_verifier(), nonce).map_err(|e| e.to_string())?;
        let fas_token: FasIdToken =
            id_token.to_string().parse().map_err(|e| format!("FAS claims: {e}"))?;
        let claims = fas_token
            .claims(&client.id_token_verifier(), nonce)
            .map_err(|e| e.to_string())?
            .clone();
        Ok(claims)
    }

    /// A full login; the verified claims and the token response.
    async fn login(
        &self,
        person: &str,
        means: Means,
        extra: &str,
    ) -> (Result<IdTokenClaims<FasClaims, CoreGenderClaim>, String>, CoreTokenResponse) {
        let login = self.begin();
        let code = self.code(&login, person, means, extra).await;
        let token = self.exchange(&code, login.verifier.secret()).await.unwrap();
        (self.verify(&token, &login.nonce), token)
    }
}

fn redirect_query(resp: reqwest::Response) -> HashMap<String, String> {
    assert_eq!(resp.status(), reqwest::StatusCode::FOUND, "expected a redirect");
    let location = resp.headers()[reqwest::header::LOCATION].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    url::Url::parse(&location).unwrap().query_pairs().into_owned().collect()
}

fn insz_is_valid(n: &str) -> bool {
    if n.len() != 11 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let base: u64 = n[..9].parse().unwrap();
    let check: u64 = n[9..].parse().unwrap();
    97 - base % 97 == check || 97 - (2_000_000_000 + base) % 97 == check
}

#[tokio::test]
async fn discovery_matches_the_real_fas_layout() {
    let env = setup().await;
    let m = &env.metadata;
    assert_eq!(m.issuer().as_str(), env.issuer);
    assert!(!env.issuer.ends_with('/'));
    let at = |p: &str| format!("{}{p}", env.issuer);
    assert_eq!(m.authorization_endpoint().as_str(), at("/authorize"));
    assert_eq!(m.token_endpoint().unwrap().as_str(), at("/access_token"));
    assert_eq!(m.userinfo_endpoint().unwrap().as_str(), at("/userinfo"));
    assert_eq!(m.jwks_uri().as_str(), at("/connect/jwk_uri"));
    assert_eq!(m.jwks().keys().len(), 1);

    let raw: serde_json::Value = env.get(&env.fas.discovery_url()).await.json().await.unwrap();
    assert_eq!(raw["end_session_endpoint"], at("/connect/endSession"));
    assert_eq!(raw["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(raw["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(raw["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    let auth = raw["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(auth.contains(&"client_secret_basic".into()));
    assert!(auth.contains(&"client_secret_post".into()));

    let jwks: serde_json::Value = env.get(&at("/connect/jwk_uri")).await.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(key.get("d").is_none(), "no private key material");
    assert_eq!(jwks, env.fas.jwks());
}

#[tokio::test]
async fn test_persons_have_valid_national_numbers() {
    assert!(TEST_PERSONS.len() >= 3);
    for p in TEST_PERSONS {
        assert!(insz_is_valid(p.insz), "{}", p.insz);
        assert_eq!(fas::person(p.key), Some(p));
        assert_eq!(fas::person(p.insz), Some(p));
    }
    assert_eq!(PIETER_JANSSENS.insz, "75031212346");
    assert_eq!(PIETER_JANSSENS.insz, idp_mocks::cobrha::GP);
    assert_eq!((ANNA_PEETERS.given_name, ANNA_PEETERS.surname), ("Anna", "Peeters"));
    assert_eq!(ANNA_PEETERS.insz, "85073003328");
    // born 2001: only the check over 2 + nine digits holds
    let base: u64 = LUCAS_WOUTERS.insz[..9].parse().unwrap();
    assert_ne!(97 - base % 97, LUCAS_WOUTERS.insz[9..].parse::<u64>().unwrap());
    assert_eq!(fas::test_persons().len(), TEST_PERSONS.len());
}

#[tokio::test]
async fn code_flow_per_means_gives_its_level_and_amr() {
    let env = setup().await;
    let expected = [
        (Means::Eid, "urn:be:fedict:iam:fas:Level500", "eid"),
        (Means::Itsme, "urn:be:fedict:iam:fas:Level450", "bmid"),
        (Means::Totp, "urn:be:fedict:iam:fas:Level400", "totp"),
        (Means::Sms, "urn:be:fedict:iam:fas:Level400", "sms"),
        (Means::Token, "urn:be:fedict:iam:fas:Level300", "token"),
    ];
    for (i, (means, acr, amr)) in expected.into_iter().enumerate() {
        let person = TEST_PERSONS[i % TEST_PERSONS.len()];
        let (claims, token) = env.login(person.key, means, "").await;
        let claims = claims.unwrap_or_else(|e| panic!("{means:?}: {e}"));
        assert_eq!(claims.auth_context_ref().unwrap().as_str(), acr);
        let amrs: Vec<String> =
            claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
        assert_eq!(amrs, vec![amr.to_string()]);
        assert_eq!(means.acr(), acr);
        assert_eq!(means.amr(), amr);
        assert_eq!(claims.subject().as_str(), person.sub());
        assert_eq!(claims.additional_claims().egov_nrn, person.insz);
        assert_eq!(claims.additional_claims().given_name, person.given_name);
        assert_eq!(claims.additional_claims().surname, person.surname);
        assert_eq!(claims.given_name().unwrap().get(None).unwrap().as_str(), person.given_name);
        assert_eq!(claims.family_name().unwrap().get(None).unwrap().as_str(), person.surname);
        assert!(claims.auth_time().is_some());
        assert!(claims.access_token_hash().is_some());
        assert_eq!(token.token_type().as_ref(), "bearer");
        assert!(token.expires_in().is_some());

        // userinfo with the access token, through the relying party
        let info: UserInfoClaims<FasClaims, CoreGenderClaim> = env
            .client()
            .user_info(token.access_token().clone(), Some(claims.subject().clone()))
            .unwrap()
            .request_async(&env.http)
            .await
            .unwrap();
        assert_eq!(info.additional_claims().egov_nrn, person.insz);
        assert_eq!(info.family_name().unwrap().get(None).unwrap().as_str(), person.surname);
    }
    // SMS and app code share the FAS level: only amr tells them apart
    assert_eq!(Means::Sms.acr(), Means::Totp.acr());
    assert_ne!(Means::Sms.amr(), Means::Totp.amr());
    let last = env.fas.last_authorization_request().unwrap();
    assert_eq!(last.code_challenge_method, "S256");
    assert!(last.scope.split(' ').any(|s| s == "egovnrn"));
    assert_eq!(env.fas.authorization_requests().len(), 5);
}

#[tokio::test]
async fn subject_is_stable_per_person_and_opaque() {
    let env = setup().await;
    let (a, _) = env.login("anna", Means::Totp, "").await;
    let (b, _) = env.login(ANNA_PEETERS.insz, Means::Eid, "").await;
    let (c, _) = env.login(KOEN_PEETERS.key, Means::Eid, "").await;
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a.subject(), b.subject());
    assert_ne!(a.subject(), c.subject());
    assert!(!a.subject().as_str().contains(ANNA_PEETERS.insz));
    // stable across restarts (derived, not random)
    let other = setup().await;
    let (d, _) = other.login("anna", Means::Itsme, "").await;
    assert_eq!(d.unwrap().subject(), a.subject());
}

#[tokio::test]
async fn html_page_login_and_cancel() {
    let env = setup().await;
    let login = env.begin();
    let resp = env.get(&login.url).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(!csp.contains("unsafe-inline"));
    let page = resp.text().await.unwrap();
    assert!(page.contains("Federal authentication service (mock)"));
    assert!(!page.to_ascii_lowercase().contains("<script"));
    for m in Means::ALL {
        assert!(page.contains(&format!("name=\"means\" value=\"{}\"", m.as_str())), "{m:?}");
    }
    for p in TEST_PERSONS {
        assert!(page.contains(&format!("name=\"person\" value=\"{}\"", p.key)));
        assert!(page.contains(p.insz));
    }
    assert!(page.contains("value=\"cancel\""));
    let request = hidden(&page, "request");

    let form = [("request", request.as_str()), ("person", "pieter"), ("means", "itsme")];
    let resp = env
        .http
        .post(format!("{}/authorize/login", env.issuer))
        .form(&[form[0], form[1], form[2], ("action", "login")])
        .send()
        .await
        .unwrap();
    let q = redirect_query(resp);
    assert_eq!(q.get("state"), Some(login.state.secret()));
    let token = env.exchange(&q["code"], login.verifier.secret()).await.unwrap();
    let claims = env.verify(&token, &login.nonce).unwrap();
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), "urn:be:fedict:iam:fas:Level450");
    assert_eq!(claims.additional_claims().egov_nrn, PIETER_JANSSENS.insz);

    // the page request is used up
    let again = env
        .http
        .post(format!("{}/authorize/login", env.issuer))
        .form(&[form[0], form[1], form[2], ("action", "login")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::BAD_REQUEST);

    // Cancel
    let login = env.begin();
    let page = env.get(&login.url).await.text().await.unwrap();
    let request = hidden(&page, "request");
    let resp = env
        .http
        .post(format!("{}/authorize/login", env.issuer))
        .form(&[
            ("request", request.as_str()),
            ("person", "anna"),
            ("means", "eid"),
            ("action", "cancel"),
        ])
        .send()
        .await
        .unwrap();
    let q = redirect_query(resp);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(q.get("state"), Some(login.state.secret()));
    assert!(!q.contains_key("code"));

    // test API cancel
    let login = env.begin();
    let url = fas::test_login_url(&login.url, "anna", Means::Eid).unwrap() + "&cancel=true";
    let q = redirect_query(env.get(&url).await);
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn every_tamper_makes_verification_fail() {
    let env = setup().await;
    for tamper in Tamper::ALL {
        let reason = match tamper {
            Tamper::WrongNonce => "nonce",
            Tamper::UnknownKey => "Signature verification failed",
            Tamper::WrongAudience => "audience",
            Tamper::Expired => "expired",
            Tamper::WrongIssuer => "issuer",
            Tamper::NoNrn => "egovNRN",
        };
        env.fas.set_tamper(Some(tamper));
        let (claims, _) = env.login("anna", Means::Totp, "").await;
        let err = claims.expect_err(&format!("{tamper:?} must be refused"));
        assert!(err.contains(reason), "{tamper:?}: {err}");
        // a second login fails as well (the setting stays until cleared)
        let (claims, _) = env.login("pieter", Means::Eid, "").await;
        assert!(claims.is_err(), "{tamper:?} second login");
        env.fas.set_tamper(None);
        let (claims, _) = env.login("anna", Means::Totp, "").await;
        claims.unwrap_or_else(|e| panic!("after clearing {tamper:?}: {e}"));

        // per code through the test API
        let (claims, _) =
            env.login("anna", Means::Totp, &format!("&tamper={}", tamper.as_str())).await;
        assert!(claims.is_err(), "{tamper:?} per code");
        let (claims, _) = env.login("anna", Means::Totp, "").await;
        assert!(claims.is_ok(), "per-code {tamper:?} must not stick");
    }
}

#[tokio::test]
async fn no_nrn_also_leaves_userinfo_without_the_number() {
    let env = setup().await;
    let (claims, token) = env.login("koen", Means::Eid, "&tamper=no_nrn").await;
    assert!(claims.unwrap_err().contains("FAS claims"));
    let info: serde_json::Value = env
        .http
        .get(format!("{}/userinfo", env.issuer))
        .bearer_auth(token.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info.get("egovNRN").is_none());
    assert_eq!(info["surname"], "Peeters");
}

#[tokio::test]
async fn pkce_mismatch_is_refused() {
    let env = setup().await;
    let login = env.begin();
    let code = env.code(&login, "anna", Means::Eid, "").await;
    let wrong = PkceCodeChallenge::new_random_sha256().1;
    assert_eq!(env.exchange(&code, wrong.secret()).await.unwrap_err(), "invalid_grant");
    // the code is used up by the failed attempt
    assert_eq!(env.exchange(&code, login.verifier.secret()).await.unwrap_err(), "invalid_grant");
    // no verifier at all
    let login = env.begin();
    let code = env.code(&login, "anna", Means::Eid, "").await;
    let resp = env
        .http
        .post(format!("{}/access_token", env.issuer))
        .basic_auth(CLIENT_ID, Some(url_encode(CLIENT_SECRET)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST);
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn code_reuse_is_refused_and_revokes_the_access_token() {
    let env = setup().await;
    let login = env.begin();
    let code = env.code(&login, "lucas", Means::Sms, "").await;
    let token = env.exchange(&code, login.verifier.secret()).await.unwrap();
    env.verify(&token, &login.nonce).unwrap();
    let userinfo = |t: AccessToken| {
        let env = &env;
        async move {
            env.http
                .get(format!("{}/userinfo", env.issuer))
                .bearer_auth(t.secret())
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(userinfo(token.access_token().clone()).await, reqwest::StatusCode::OK);
    assert_eq!(env.exchange(&code, login.verifier.secret()).await.unwrap_err(), "invalid_grant");
    assert_eq!(userinfo(token.access_token().clone()).await, reqwest::StatusCode::UNAUTHORIZED);
    // unknown code
    assert_eq!(env.exchange("nope", login.verifier.secret()).await.unwrap_err(), "invalid_grant");
}

#[tokio::test]
async fn authorization_request_checks() {
    let env = setup().await;
    let login = env.begin();
    let with = |name: &str, value: Option<&str>| {
        let mut url = url::Url::parse(&login.url).unwrap();
        let pairs: Vec<(String, String)> =
            url.query_pairs().into_owned().filter(|(k, _)| k != name).collect();
        {
            let mut q = url.query_pairs_mut();
            q.clear();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
            if let Some(v) = value {
                q.append_pair(name, v);
            }
        }
        url.to_string()
    };
    // no redirect to an unregistered URI or for an unknown client
    for url in [
        with("redirect_uri", Some("http://127.0.0.1:9/oidc/fas/callback/")),
        with("redirect_uri", Some("http://evil.example/cb")),
        with("redirect_uri", None),
        with("client_id", Some("someone-else")),
        with("client_id", None),
    ] {
        let resp = env.get(&url).await;
        assert_eq!(resp.status(), reqwest::StatusCode::BAD_REQUEST, "{url}");
        assert!(resp.headers().get("location").is_none());
    }
    let error_of = |url: String| {
        let env = &env;
        async move { redirect_query(env.get(&url).await).get("error").cloned() }
    };
    let invalid = Some("invalid_request".to_string());
    assert_eq!(error_of(with("code_challenge", None)).await, invalid);
    assert_eq!(error_of(with("code_challenge_method", Some("plain"))).await, invalid);
    assert_eq!(error_of(with("code_challenge_method", None)).await, invalid);
    assert_eq!(error_of(with("nonce", None)).await, invalid);
    assert_eq!(error_of(with("state", None)).await, invalid);
    assert_eq!(
        error_of(with("scope", Some("profile egovnrn"))).await,
        Some("invalid_scope".into())
    );
    assert_eq!(
        error_of(with("response_type", Some("id_token"))).await,
        Some("unsupported_response_type".into())
    );
    // the test API checks the same
    let test = fas::test_login_url(&with("nonce", None), "anna", Means::Eid).unwrap();
    assert_eq!(error_of(test).await, invalid);
    let bad_person = fas::test_login_url(&login.url, "nobody", Means::Eid).unwrap();
    assert_eq!(env.get(&bad_person).await.status(), reqwest::StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn set_error_answers_with_an_error_redirect() {
    let env = setup().await;
    env.fas.set_error(Some("server_error".into()));
    for page in [false, true] {
        let login = env.begin();
        let url = if page {
            login.url.clone()
        } else {
            fas::test_login_url(&login.url, "anna", Means::Eid).unwrap()
        };
        let q = redirect_query(env.get(&url).await);
        assert_eq!(q.get("error").map(String::as_str), Some("server_error"));
        assert_eq!(q.get("state"), Some(login.state.secret()));
        assert!(!q.contains_key("code"));
    }
    env.fas.set_error(None);
    let (claims, _) = env.login("anna", Means::Eid, "").await;
    claims.unwrap();
}

#[tokio::test]
async fn client_authentication() {
    let env = setup().await;
    // client_secret_post
    let login = env.begin();
    let code = env.code(&login, "anna", Means::Itsme, "").await;
    let token = env
        .client()
        .set_auth_type(AuthType::RequestBody)
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier.secret().clone()))
        .request_async(&env.http)
        .await
        .unwrap();
    env.verify(&token, &login.nonce).unwrap();

    // wrong secret (basic), no authentication at all
    for basic in [true, false] {
        let login = env.begin();
        let code = env.code(&login, "anna", Means::Itsme, "").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", login.verifier.secret().as_str()),
        ];
        let mut req = env.http.post(format!("{}/access_token", env.issuer)).form(&form);
        if basic {
            req = req.basic_auth(CLIENT_ID, Some("wrong"));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }

    // a redirect_uri other than the authorization request's
    let login = env.begin();
    let code = env.code(&login, "anna", Means::Itsme, "").await;
    env.fas.add_redirect_uri("http://127.0.0.1:9/other");
    let err = env
        .client()
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:9/other".into()).unwrap())
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier.secret().clone()))
        .request_async(&env.http)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestTokenError::ServerResponse(ref r) if r.error().to_string() == "invalid_grant")
    );
}

#[tokio::test]
async fn redirect_uri_added_after_start() {
    let (issuer, fas) = fas::start(FasConfig {
        base_url: String::new(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![],
    })
    .await
    .unwrap();
    let env = env_for(issuer, fas).await;
    let login = env.begin();
    assert_eq!(env.get(&login.url).await.status(), reqwest::StatusCode::BAD_REQUEST);
    env.fas.add_redirect_uri(REDIRECT_URI);
    assert_eq!(env.fas.redirect_uris(), vec![REDIRECT_URI.to_string()]);
    let (claims, _) = env.login("pieter", Means::Eid, "").await;
    claims.unwrap();
}

#[tokio::test]
async fn issuer_with_a_path_like_the_real_fas() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/fas/oauth2", listener.local_addr().unwrap());
    let fas = MockFas::new(FasConfig {
        base_url: format!("{base}/"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![REDIRECT_URI.into()],
    })
    .unwrap();
    assert_eq!(fas.issuer(), base);
    tokio::spawn(fas::serve(listener, fas.clone(), std::future::pending()));
    let env = env_for(base.clone(), fas).await;
    assert_eq!(env.metadata.token_endpoint().unwrap().as_str(), format!("{base}/access_token"));
    let page = env.get(&env.begin().url).await.text().await.unwrap();
    assert!(page.contains("action=\"/fas/oauth2/authorize/login\""));
    let (claims, _) = env.login("anna", Means::Token, "").await;
    assert_eq!(
        claims.unwrap().auth_context_ref().unwrap().as_str(),
        "urn:be:fedict:iam:fas:Level300"
    );
}

#[tokio::test]
async fn end_session_returns_to_a_registered_origin_only() {
    let env = setup().await;
    let ok = env
        .get(&format!(
            "{}/connect/endSession?post_logout_redirect_uri={}&state=xyz",
            env.issuer,
            url_encode("http://127.0.0.1:9/logged-out")
        ))
        .await;
    assert_eq!(ok.status(), reqwest::StatusCode::FOUND);
    assert_eq!(ok.headers()["location"], "http://127.0.0.1:9/logged-out?state=xyz");
    let elsewhere = env
        .get(&format!(
            "{}/connect/endSession?post_logout_redirect_uri={}",
            env.issuer,
            url_encode("http://evil.example/")
        ))
        .await;
    assert_eq!(elsewhere.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn test_api_acr_puts_a_chosen_level_in_one_id_token() {
    let env = setup().await;
    let level200 = "urn:be:fedict:iam:fas:Level200";
    let (claims, _) = env.login("anna", Means::Totp, &format!("&acr={level200}")).await;
    let claims = claims.unwrap();
    assert_eq!(claims.auth_context_ref().unwrap().as_str(), level200);
    let amrs: Vec<String> =
        claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
    assert_eq!(amrs, ["totp"], "the means stays");
    // Only that code: the next login has the means' level again.
    let (claims, _) = env.login("anna", Means::Totp, "").await;
    assert_eq!(claims.unwrap().auth_context_ref().unwrap().as_str(), Means::Totp.acr());
}
