//! The happy paths: a standard RP logs a person in with a digital key and gets verified tokens.

use crate::both_backends;
use crate::common::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

both_backends!(
    standard_rp_completes_discovery_login_and_verifies_the_id_token,
    refresh_rotates_and_keeps_the_login,
    userinfo_revoke_and_logout,
    existing_session_is_reused_unless_prompt_login_or_max_age,
    pushed_authorization_request,
    client_secret_post_and_public_clients,
    private_key_jwt_client,
    keys_rotate_and_jwks_keeps_the_previous_key,
    account_page_shows_login_history,
    es256_and_eddsa_id_tokens,
    id_token_hint_names_the_person_the_app_asks_about,
    id_token_hint_must_be_ours_and_for_this_client,
    every_jwk_names_its_alg,
);

async fn standard_rp_completes_discovery_login_and_verifies_the_id_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("portal-app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;

    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(s.base.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        meta,
        ClientId::new(c.id.clone()),
        c.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(c.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("insz".into()))
        .set_pkce_challenge(challenge)
        .url();

    let b = Browser::new();
    let loc = key_login(&s, &b, auth_url.as_str(), &p).await;
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
    let q = query(&loc);
    assert_eq!(q["state"], *csrf.secret());
    assert_eq!(q["iss"], s.base, "RFC 9207 iss");

    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id token");
    // Signature against /jwks, issuer, audience, expiry and nonce, by the standard library.
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("ID token verifies");
    assert_eq!(
        claims.auth_context_ref().unwrap().as_str(),
        "http://eidas.europa.eu/LoA/substantial"
    );
    let amr: Vec<String> =
        claims.auth_method_refs().unwrap().iter().map(|a| a.to_string()).collect();
    assert_eq!(amr, vec!["pwd", "totp"]);
    assert!(claims.auth_time().is_some());
    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw["insz"], "85073003328");
    assert_eq!(raw["given_name"], "Anna");
    assert_eq!(raw["family_name"], "Peeters");
    assert_eq!(raw["birthdate"], "1985-07-30");
    assert!(tokens.refresh_token().is_some(), "confidential clients get a refresh token");
    let header: serde_json::Value = serde_json::from_slice(
        &cozo_broker::crypto::b64url_decode(id_token.to_string().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
}

async fn refresh_rotates_and_keeps_the_login(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &c, &p).await;
    let first = jwt_claims(t["id_token"].as_str().unwrap());
    s.handle.clock.advance(60);
    let r = refresh(&s, &c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t2: serde_json::Value = r.json().await.unwrap();
    assert_ne!(t2["refresh_token"], t["refresh_token"], "rotated");
    assert_ne!(t2["access_token"], t["access_token"]);
    let second = jwt_claims(t2["id_token"].as_str().unwrap());
    assert_eq!(second["auth_time"], first["auth_time"], "original auth_time");
    assert_eq!(second["acr"], first["acr"]);
    assert_eq!(second["amr"], first["amr"]);
    assert!(second["iat"].as_i64() > first["iat"].as_i64());
    // The new refresh token works in turn.
    let r3 = refresh(&s, &c, t2["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r3.status(), 200);
}

async fn userinfo_revoke_and_logout(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &c, &p).await;
    let at = t["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let ui: serde_json::Value =
        http.get(s.url("/userinfo")).bearer_auth(at).send().await.unwrap().json().await.unwrap();
    assert_eq!(ui["insz"], "85073003328");
    assert_eq!(ui["sub"], jwt_claims(t["id_token"].as_str().unwrap())["sub"]);
    // Revoke the refresh token: the family (and its access tokens) stop working.
    let r = http
        .post(s.url("/revoke"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", t["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = refresh(&s, &c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 400);
    let ui = http.get(s.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    assert_eq!(ui.status(), 401);
    assert!(ui.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));

    // RP-initiated logout with id_token_hint ends the browser session and returns to the app.
    let b = Browser::new();
    s.next_step();
    let pk = pkce();
    let loc = key_login(&s, &b, &authorize_url(&s, &c, &pk, &[]), &p).await;
    let code = query(&loc)["code"].clone();
    let t: serde_json::Value = exchange(&s, &c, &code, &pk.verifier).await.json().await.unwrap();
    let logout = format!(
        "{}?id_token_hint={}&post_logout_redirect_uri={}&state=bye1",
        s.url("/logout"),
        t["id_token"].as_str().unwrap(),
        "http://127.0.0.1:9/bye"
    );
    let out = b.get(&logout).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location().unwrap(), "http://127.0.0.1:9/bye?state=bye1");
    // The session is gone: a new authorization request needs a login again.
    let again = b.get(&authorize_url(&s, &c, &pkce(), &[])).await;
    assert!(again.location().unwrap().ends_with("/login"));
    // An unregistered post-logout URI is never followed.
    let evil = b
        .get(&format!(
            "{}?id_token_hint={}&post_logout_redirect_uri=https://evil.example/",
            s.url("/logout"),
            t["id_token"].as_str().unwrap()
        ))
        .await;
    assert_eq!(evil.status, 200);
}

async fn existing_session_is_reused_unless_prompt_login_or_max_age(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    key_login(&s, &b, &authorize_url(&s, &c, &pkce(), &[]), &p).await;
    // Same browser, same app: straight back with a code (SSO).
    let again = b.get(&authorize_url(&s, &c, &pkce(), &[])).await;
    assert!(again.location().unwrap().starts_with(&c.redirect_uri), "{:?}", again.location());
    // prompt=login forces a new login.
    let forced = b.get(&authorize_url(&s, &c, &pkce(), &[("prompt", "login")])).await;
    assert!(forced.location().unwrap().ends_with("/login"));
    // max_age shorter than the login's age forces a new login.
    s.handle.clock.advance(120);
    let aged = b.get(&authorize_url(&s, &c, &pkce(), &[("max_age", "60")])).await;
    assert!(aged.location().unwrap().ends_with("/login"));
    // prompt=none without a fitting session: login_required at the client.
    let none = Browser::new().get(&authorize_url(&s, &c, &pkce(), &[("prompt", "none")])).await;
    let q = query(&none.location().unwrap());
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-123");
    // acr_values asking for high: no method here reaches it.
    let high = b
        .get(&authorize_url(&s, &c, &pkce(), &[("acr_values", "http://eidas.europa.eu/LoA/high")]))
        .await;
    assert_eq!(query(&high.location().unwrap())["error"], "unmet_authentication_requirements");
    // acr_values asking for substantial (more than the portal policy) is honoured, and the
    // session's substantial login answers it.
    let sub = b
        .get(&authorize_url(
            &s,
            &c,
            &pkce(),
            &[("acr_values", "http://eidas.europa.eu/LoA/substantial")],
        ))
        .await;
    assert!(sub.location().unwrap().starts_with(&c.redirect_uri), "{:?}", sub.location());
}

async fn pushed_authorization_request(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let pk = pkce();
    let http = reqwest::Client::new();
    let r = http
        .post(s.url("/par"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("scope", "openid insz"),
            ("state", "par-state"),
            ("code_challenge", pk.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap().to_string();
    let url = format!(
        "{}?client_id={}&request_uri={}",
        s.url("/authorize"),
        c.id,
        url::form_urlencoded::byte_serialize(request_uri.as_bytes()).collect::<String>()
    );
    let b = Browser::new();
    let loc = key_login(&s, &b, &url, &p).await;
    let q = query(&loc);
    assert_eq!(q["state"], "par-state");
    let t = exchange(&s, &c, &q["code"], &pk.verifier).await;
    assert_eq!(t.status(), 200);
    // A request_uri is used once.
    let reuse = Browser::new().get(&url).await;
    assert_eq!(reuse.status, 400);
    // PAR without client authentication is refused.
    let r = http.post(s.url("/par")).form(&[("client_id", c.id.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

async fn client_secret_post_and_public_clients(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let mut spec =
        cozo_broker::admin::ClientSpec::new("post-app", "http://127.0.0.1:9/post/cb", "portal");
    spec.auth_method = "client_secret_post".into();
    let c = s.add_client_spec(&spec).await;
    let b = Browser::new();
    let pk = pkce();
    let loc = key_login(&s, &b, &authorize_url(&s, &c, &pk, &[]), &p).await;
    let http = reqwest::Client::new();
    let form = |code: String, secret: Option<String>| {
        let mut f = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".into(), code),
            ("redirect_uri".into(), c.redirect_uri.clone()),
            ("code_verifier".into(), pk.verifier.clone()),
            ("client_id".into(), c.id.clone()),
        ];
        if let Some(s) = secret {
            f.push(("client_secret".into(), s));
        }
        f
    };
    let code = query(&loc)["code"].clone();
    // Basic auth is not this client's registered method.
    let wrong_method = exchange(&s, &c, &code, &pk.verifier).await;
    assert_eq!(wrong_method.status(), 401);
    let ok = http.post(s.url("/token")).form(&form(code, c.secret.clone())).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    // A public client: PKCE only, no refresh token.
    let mut spec =
        cozo_broker::admin::ClientSpec::new("spa", "http://127.0.0.1:9/spa/cb", "portal");
    spec.public = true;
    let pubc = s.add_client_spec(&spec).await;
    assert!(pubc.secret.is_none());
    s.next_step();
    let pk2 = pkce();
    let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &pubc, &pk2, &[]), &p).await;
    let t: serde_json::Value = http
        .post(s.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query(&loc)["code"].as_str()),
            ("redirect_uri", pubc.redirect_uri.as_str()),
            ("code_verifier", pk2.verifier.as_str()),
            ("client_id", "spa"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(t["id_token"].is_string(), "{t}");
    assert!(t.get("refresh_token").is_none());
}

/// An EC key pair for a client: (PKCS#8 DER, public JWK set JSON).
fn client_ec_key(kid: &str) -> (Vec<u8>, String) {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der = kp.to_pkcs8v1().unwrap().as_ref().to_vec();
    let pt = kp.public_key().as_ref();
    let b = cozo_broker::crypto::b64url;
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": b(&pt[1..33]), "y": b(&pt[33..65])}]});
    (der, jwks.to_string())
}

pub fn client_assertion(
    client_id: &str,
    aud: &str,
    der: &[u8],
    kid: &str,
    exp: i64,
    jti: &str,
) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some(kid.into());
    let claims =
        serde_json::json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": exp, "jti": jti});
    jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_ec_der(der)).unwrap()
}

async fn private_key_jwt_client(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let (der, jwks) = client_ec_key("k1");
    let mut spec =
        cozo_broker::admin::ClientSpec::new("jwt-app", "http://127.0.0.1:9/jwt/cb", "portal");
    spec.auth_method = "private_key_jwt".into();
    spec.jwks = Some(jwks);
    let c = s.add_client_spec(&spec).await;
    let http = reqwest::Client::new();
    let token_url = s.url("/token");
    let exp = s.now() + 120;
    let send = |code: String, assertion: String, verifier: String| {
        let http = http.clone();
        let token_url = token_url.clone();
        let redirect = c.redirect_uri.clone();
        async move {
            http.post(token_url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", redirect.as_str()),
                    ("code_verifier", verifier.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let pk = pkce();
    let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &c, &pk, &[]), &p).await;
    let code = query(&loc)["code"].clone();
    // Signed by another key: refused, and the code stays usable for its owner.
    let (other, _) = client_ec_key("k1");
    let bad = send(
        code.clone(),
        client_assertion("jwt-app", &token_url, &other, "k1", exp, "j0"),
        pk.verifier.clone(),
    )
    .await;
    assert_eq!(bad.status(), 401);
    // Wrong audience.
    let bad = send(
        code.clone(),
        client_assertion("jwt-app", "https://elsewhere/token", &der, "k1", exp, "j1"),
        pk.verifier.clone(),
    )
    .await;
    assert_eq!(bad.status(), 401);
    let assertion = client_assertion("jwt-app", &token_url, &der, "k1", exp, "j2");
    let ok = send(code, assertion.clone(), pk.verifier.clone()).await;
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    // The same assertion again (jti replay) is refused.
    s.next_step();
    let pk2 = pkce();
    let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &c, &pk2, &[]), &p).await;
    let replay = send(query(&loc)["code"].clone(), assertion, pk2.verifier.clone()).await;
    assert_eq!(replay.status(), 401);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

async fn keys_rotate_and_jwks_keeps_the_previous_key(backend: Backend) {
    let s = TestServer::start(backend).await;
    let jwks = |s: &TestServer| {
        let url = s.url("/jwks");
        async move {
            let v: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let before = jwks(&s).await;
    assert_eq!(before.len(), 3, "RS256, ES256 and EdDSA keys");
    let new = cozo_broker::oidc::signing::rotate(&s.handle.store, &s.handle.master, s.now())
        .await
        .unwrap();
    // The running server picks the rotation up within its reload period (10 s).
    let mut after = Vec::new();
    for _ in 0..30 {
        after = jwks(&s).await;
        if new.iter().all(|k| after.contains(k)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(new.iter().all(|k| after.contains(k)), "new keys published");
    assert!(before.iter().all(|k| after.contains(k)), "previous keys still published");
}

async fn account_page_shows_login_history(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    // Direct login (no app waiting) ends on the account page.
    let code_page = password_step(&s, &b, &p).await;
    let done = submit_totp(&s.base, &b, &code_page, &s.code(&p)).await;
    assert_eq!(done.location().unwrap(), "/account");
    let account = b.get(&s.url("/account")).await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("Anna Peeters"));
    assert!(account.body.contains("85.07.30-***.**"), "INSZ masked");
    assert_eq!(
        account.html().select(&scraper::Selector::parse("tr[data-login]").unwrap()).count(),
        1
    );
}

async fn es256_and_eddsa_id_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    for (i, alg) in ["ES256", "EdDSA"].iter().enumerate() {
        let mut spec = cozo_broker::admin::ClientSpec::new(
            &format!("app{i}"),
            &format!("http://127.0.0.1:9/{i}/cb"),
            "portal",
        );
        spec.id_token_alg = alg.to_string();
        let c = s.add_client_spec(&spec).await;
        s.next_step();
        let t = login_and_exchange(&s, &c, &p).await;
        let jwt = t["id_token"].as_str().unwrap();
        let header: serde_json::Value = serde_json::from_slice(
            &cozo_broker::crypto::b64url_decode(jwt.split('.').next().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], *alg);
        // Verify with the published key.
        let jwks: jsonwebtoken::jwk::JwkSet =
            reqwest::get(s.url("/jwks")).await.unwrap().json().await.unwrap();
        let jwk = jwks.find(header["kid"].as_str().unwrap()).expect("kid in JWKS");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::from_str_alg(alg));
        v.set_audience(&[c.id.as_str()]);
        jsonwebtoken::decode::<serde_json::Value>(
            jwt,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &v,
        )
        .expect("signature verifies");
    }
}

trait AlgExt {
    fn from_str_alg(s: &str) -> jsonwebtoken::Algorithm;
}
impl AlgExt for jsonwebtoken::Algorithm {
    fn from_str_alg(s: &str) -> jsonwebtoken::Algorithm {
        s.parse().unwrap()
    }
}

/// Every response carries a request id (made here, or the one the load balancer sent), and the
/// JSON logs carry it too, so one login can be followed across replicas.
#[tokio::test]
async fn responses_carry_a_request_id() {
    let s = TestServer::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    let r = http.get(s.url("/healthz")).send().await.unwrap();
    let id = r.headers().get("x-request-id").expect("a request id").to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let r2 = http.get(s.url("/healthz")).send().await.unwrap();
    assert_ne!(r2.headers().get("x-request-id").unwrap().to_str().unwrap(), id);
    let r = http.get(s.url("/healthz")).header("x-request-id", "lb-1234").send().await.unwrap();
    assert_eq!(r.headers().get("x-request-id").unwrap(), "lb-1234");
}

/// The header of a JWT.
fn jwt_header(jwt: &str) -> serde_json::Value {
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(&cozo_broker::crypto::b64url_decode(part).unwrap()).unwrap()
}

/// OIDC Core §3.1.2.1: an app that names person A with `id_token_hint` never receives a code for
/// person B whose session is open: `prompt=none` gets `login_required`, otherwise the person must
/// log in (again) as A. Also through PAR, and with an expired hint.
async fn id_token_hint_names_the_person_the_app_asks_about(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let anna = s.add_person("85073003328", "anna").await;
    let pieter = s.add_person("75031212346", "pieter").await;
    let anna_token = login_and_exchange(&s, &c, &anna).await;
    let anna_hint = anna_token["id_token"].as_str().unwrap().to_string();
    let anna_sub = jwt_claims(&anna_hint)["sub"].clone();
    // Pieter's session in this browser, and an ID token of his.
    let b = Browser::new();
    let pk = pkce();
    let loc = key_login(&s, &b, &authorize_url(&s, &c, &pk, &[]), &pieter).await;
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let pieter_hint = t["id_token"].as_str().unwrap().to_string();
    assert_ne!(jwt_claims(&pieter_hint)["sub"], anna_sub);

    // prompt=none asking about Anna: login_required, no code.
    let silent = b
        .get(&authorize_url(&s, &c, &pkce(), &[("prompt", "none"), ("id_token_hint", &anna_hint)]))
        .await;
    let q = query(&silent.location().unwrap());
    assert_eq!(q["error"], "login_required", "{q:?}");
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("code"));
    // The same through PAR.
    let pushed: serde_json::Value = reqwest::Client::new()
        .post(s.url("/par"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("scope", "openid"),
            ("state", "par-1"),
            ("code_challenge", pkce().challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("prompt", "none"),
            ("id_token_hint", anna_hint.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut par = url::Url::parse(&s.url("/authorize")).unwrap();
    par.query_pairs_mut()
        .append_pair("client_id", &c.id)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let q = query(&b.get(par.as_str()).await.location().unwrap());
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("login_required", "par-1"));
    assert!(!q.contains_key("code"));

    // prompt=none asking about Pieter, whose session it is: a code, even with an expired hint.
    s.handle.clock.advance(s.handle.cfg.oidc.id_token_ttl_s + 60);
    let pk = pkce();
    let same = b
        .get(&authorize_url(&s, &c, &pk, &[("prompt", "none"), ("id_token_hint", &pieter_hint)]))
        .await;
    let loc = same.location().unwrap();
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["sub"], jwt_claims(&pieter_hint)["sub"]);

    // Without prompt=none, asking about Anna: log in, with the reason on the chooser.
    let pk = pkce();
    let url = authorize_url(&s, &c, &pk, &[("id_token_hint", &anna_hint)]);
    let asked = b.get(&url).await;
    assert!(asked.location().unwrap().ends_with("/login"), "{:?}", asked.location());
    let chooser = b.get(&s.url("/login")).await;
    assert!(chooser.body.contains("another person"), "{}", chooser.body);
    // Anna logs in in this browser: the code is hers.
    s.next_step();
    let loc = key_login(&s, &b, &url, &anna).await;
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    assert_eq!(jwt_claims(t["id_token"].as_str().unwrap())["sub"], anna_sub);
}

/// A hint that we did not sign, that was altered, or that was issued to another client is
/// refused with `invalid_request` at the (verified) redirect URI, and nothing is answered.
async fn id_token_hint_must_be_ours_and_for_this_client(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let other = s.add_client("other-app", "portal").await;
    let anna = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &c, &anna).await;
    let hint = t["id_token"].as_str().unwrap().to_string();
    let parts: Vec<&str> = hint.split('.').collect();
    let b64 = |v: &serde_json::Value| cozo_broker::crypto::b64url(v.to_string().as_bytes());
    // The payload changed (another sub), the signature kept.
    let mut claims = jwt_claims(&hint);
    claims["sub"] = "someone-else".into();
    let altered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    // Unsigned (alg none), with our kid.
    let mut header = jwt_header(&hint);
    header["alg"] = "none".into();
    let unsigned = format!("{}.{}.", b64(&header), parts[1]);
    // Signed by a key of its own, naming our (RS256) kid: with RS256, and with ES256.
    let rogue = |alg: jsonwebtoken::Algorithm| {
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => {
                let pkey =
                    openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap());
                let pem = pkey.unwrap().private_key_to_pem_pkcs8().unwrap();
                jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap()
            }
            _ => {
                let group =
                    openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1);
                let ec = openssl::ec::EcKey::generate(&group.unwrap()).unwrap();
                let pem = openssl::pkey::PKey::from_ec_key(ec).unwrap().private_key_to_pem_pkcs8();
                jsonwebtoken::EncodingKey::from_ec_pem(&pem.unwrap()).unwrap()
            }
        };
        let mut h = jsonwebtoken::Header::new(alg);
        h.kid = jwt_header(&hint)["kid"].as_str().map(str::to_string);
        jsonwebtoken::encode(&h, &jwt_claims(&hint), &key).unwrap()
    };
    let b = Browser::new();
    s.next_step();
    key_login(&s, &b, &authorize_url(&s, &c, &pkce(), &[]), &anna).await;
    for (what, forged) in [
        ("altered", altered),
        ("unsigned", unsigned),
        ("rogue RS256", rogue(jsonwebtoken::Algorithm::RS256)),
        ("rogue ES256", rogue(jsonwebtoken::Algorithm::ES256)),
        ("junk", "x.y.z".into()),
    ] {
        for prompt in ["none", "login"] {
            let r = b
                .get(&authorize_url(
                    &s,
                    &c,
                    &pkce(),
                    &[("prompt", prompt), ("id_token_hint", &forged)],
                ))
                .await;
            let q = query(&r.location().unwrap_or_else(|| panic!("{what}: {}", r.body)));
            assert_eq!(q["error"], "invalid_request", "{what}: {q:?}");
            assert_eq!(q["state"], "st-123");
            assert!(!q.contains_key("code"), "{what}");
        }
    }
    // Our own, genuine token, but issued to another client.
    let r = b
        .get(&authorize_url(&s, &other, &pkce(), &[("prompt", "none"), ("id_token_hint", &hint)]))
        .await;
    let loc = r.location().unwrap();
    assert!(loc.starts_with(&other.redirect_uri), "{loc}");
    let q = query(&loc);
    assert_eq!(q["error"], "invalid_request", "{q:?}");
    assert!(q["error_description"].contains("another client"), "{q:?}");
    assert!(!q.contains_key("code"));
    // The genuine token at its own client still answers.
    let r = b
        .get(&authorize_url(&s, &c, &pkce(), &[("prompt", "none"), ("id_token_hint", &hint)]))
        .await;
    assert!(query(&r.location().unwrap()).contains_key("code"));
}

/// Every JWK names its algorithm (and use), so that a client holding keys of several algorithms
/// picks the right one; each ID token's header agrees with its key.
async fn every_jwk_names_its_alg(backend: Backend) {
    let s = TestServer::start(backend).await;
    let jwks: serde_json::Value = reqwest::get(s.url("/jwks")).await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    let mut algs: Vec<&str> = Vec::new();
    for k in keys {
        let alg = k["alg"].as_str().unwrap_or_else(|| panic!("no alg: {k}"));
        let expected = match (k["kty"].as_str(), k["crv"].as_str()) {
            (Some("RSA"), None) => "RS256",
            (Some("EC"), Some("P-256")) => "ES256",
            (Some("OKP"), Some("Ed25519")) => "EdDSA",
            other => panic!("unexpected key {other:?}"),
        };
        assert_eq!(alg, expected, "{k}");
        assert_eq!(k["use"], "sig", "{k}");
        algs.push(alg);
    }
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    let p = s.add_person("85073003328", "anna").await;
    for (i, alg) in ["RS256", "ES256", "EdDSA"].iter().enumerate() {
        let mut spec = cozo_broker::admin::ClientSpec::new(
            &format!("alg{i}"),
            &format!("http://127.0.0.1:9/alg{i}/cb"),
            "portal",
        );
        spec.id_token_alg = alg.to_string();
        let c = s.add_client_spec(&spec).await;
        s.next_step();
        let t = login_and_exchange(&s, &c, &p).await;
        let header = jwt_header(t["id_token"].as_str().unwrap());
        let key = keys.iter().find(|k| k["kid"] == header["kid"]).expect("kid in JWKS");
        assert_eq!(header["alg"], key["alg"]);
    }
}
