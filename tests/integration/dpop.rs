//! DPoP (RFC 9449, SPEC §11) at `/token`, `/userinfo` and `/introspect`: bound tokens (`token_type: DPoP`),
//! bound refresh tokens for public clients, and the hostile cases — a replayed proof, a proof
//! for another method or URL, a bound token sent as a bearer token, a proof by another key.

use crate::both_backends;
use crate::common::*;
use cozo_broker::admin::ClientSpec;
use reqwest::StatusCode;

both_backends!(
    dpop_binds_the_tokens_of_a_public_client_to_its_key,
    dpop_proofs_are_refused_when_replayed_retargeted_or_stale,
    a_client_registered_with_dpop_must_send_proofs,
    introspection_tells_a_bound_token_and_checks_a_proof_sent_with_it,
);

/// A client's DPoP key: ES256 on P-256.
struct DpopKey {
    der: Vec<u8>,
    jwk: serde_json::Value,
}

impl DpopKey {
    fn new() -> Self {
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = kp.to_pkcs8v1().unwrap().as_ref().to_vec();
        let pt = kp.public_key().as_ref();
        let b = cozo_broker::crypto::b64url;
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b(&pt[1..33]), "y": b(&pt[33..65])});
        Self { der, jwk }
    }

    /// A proof for `htm` `htu` at `iat`, with `ath` for `access_token`.
    fn proof_at(&self, htm: &str, htu: &str, access_token: Option<&str>, iat: i64) -> String {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.typ = Some("dpop+jwt".into());
        h.jwk = Some(serde_json::from_value(self.jwk.clone()).unwrap());
        let mut claims = serde_json::json!({
            "jti": uuid::Uuid::new_v4().to_string(), "htm": htm, "htu": htu, "iat": iat,
        });
        if let Some(t) = access_token {
            let ath = cozo_broker::crypto::b64url(&cozo_broker::crypto::sha256(t.as_bytes()));
            claims["ath"] = ath.into();
        }
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&self.der))
            .unwrap()
    }
}

fn spa_spec(id: &str) -> ClientSpec {
    let mut spec = ClientSpec::new(id, &format!("http://127.0.0.1:9/{id}/cb"), "portal");
    spec.public = true;
    spec
}

/// A login of `p` for the public client `c`; the code exchange with `proof` (if any).
async fn public_exchange(
    s: &TestServer,
    c: &TestClient,
    p: &TestPerson,
    proof: impl FnOnce(i64) -> Option<String>,
) -> reqwest::Response {
    s.next_step();
    let pk = pkce();
    let loc = key_login(s, &Browser::new(), &authorize_url(s, c, &pk, &[]), p).await;
    let mut req = reqwest::Client::new().post(s.url("/token")).form(&[
        ("grant_type", "authorization_code"),
        ("code", query(&loc)["code"].as_str()),
        ("redirect_uri", c.redirect_uri.as_str()),
        ("code_verifier", pk.verifier.as_str()),
        ("client_id", c.id.as_str()),
    ]);
    if let Some(p) = proof(s.now()) {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn public_refresh(
    s: &TestServer,
    c: &TestClient,
    rt: &str,
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(s.url("/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", c.id.as_str()),
    ]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn userinfo(
    s: &TestServer,
    scheme: &str,
    at: &str,
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(s.url("/userinfo"))
        .header("Authorization", format!("{scheme} {at}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn dpop_binds_the_tokens_of_a_public_client_to_its_key(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client_spec(&spa_spec("spa")).await;
    let p = s.add_person("85073003328", "anna").await;
    let key = DpopKey::new();
    let token_url = s.url("/token");
    let userinfo_url = s.url("/userinfo");

    // Without a proof: a bearer token and no refresh token.
    let r = public_exchange(&s, &c, &p, |_| None).await;
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert!(t.get("refresh_token").is_none());

    // With one: bound, and a refresh token bound to the same key.
    let r =
        public_exchange(&s, &c, &p, |now| Some(key.proof_at("POST", &token_url, None, now))).await;
    assert_eq!(r.status(), 200);
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "DPoP");
    let at = t["access_token"].as_str().unwrap().to_string();
    let rt = t["refresh_token"].as_str().expect("a bound refresh token").to_string();

    // Userinfo: as DPoP with a proof by the key, yes; as a bearer token, never.
    let ok =
        userinfo(&s, "DPoP", &at, Some(key.proof_at("GET", &userinfo_url, Some(&at), s.now())))
            .await;
    assert_eq!(ok.status(), 200);
    let bearer = userinfo(&s, "Bearer", &at, None).await;
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    let bearer_with_proof =
        userinfo(&s, "Bearer", &at, Some(key.proof_at("GET", &userinfo_url, Some(&at), s.now())))
            .await;
    assert_eq!(bearer_with_proof.status(), StatusCode::UNAUTHORIZED);
    // Another key's proof, a proof without ath, no proof: refused.
    let other = DpopKey::new();
    let r =
        userinfo(&s, "DPoP", &at, Some(other.proof_at("GET", &userinfo_url, Some(&at), s.now())))
            .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r =
        userinfo(&s, "DPoP", &at, Some(key.proof_at("GET", &userinfo_url, None, s.now()))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = userinfo(&s, "DPoP", &at, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The refresh token: not without a proof, not with another key; with the key, rotated and
    // still bound.
    let r = public_refresh(&s, &c, &rt, None).await;
    assert_eq!(r.status(), 400);
    let r =
        public_refresh(&s, &c, &rt, Some(other.proof_at("POST", &token_url, None, s.now()))).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_dpop_proof");
    let r =
        public_refresh(&s, &c, &rt, Some(key.proof_at("POST", &token_url, None, s.now()))).await;
    assert_eq!(r.status(), 200);
    let t2: serde_json::Value = r.json().await.unwrap();
    assert_eq!(t2["token_type"], "DPoP");
    assert!(t2["refresh_token"].is_string());
    let at2 = t2["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&s, "Bearer", at2, None).await.status(), StatusCode::UNAUTHORIZED);

    let d: serde_json::Value = reqwest::get(s.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "PS256", "EdDSA"])
    );
}

async fn dpop_proofs_are_refused_when_replayed_retargeted_or_stale(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client_spec(&spa_spec("spa")).await;
    let p = s.add_person("85073003328", "anna").await;
    let key = DpopKey::new();
    let token_url = s.url("/token");
    let userinfo_url = s.url("/userinfo");
    let refused = |r: &serde_json::Value| r["error"] == "invalid_dpop_proof";

    // At the token endpoint: the wrong method, another URL, an old iat: refused, and the code
    // is not spent by any of them (the last exchange works).
    type Proof<'a> = Box<dyn Fn(i64) -> String + 'a>;
    let bad: Vec<Proof> = vec![
        Box::new(|now| key.proof_at("GET", &token_url, None, now)),
        Box::new(|now| key.proof_at("POST", &userinfo_url, None, now)),
        Box::new(|now| key.proof_at("POST", "https://evil.example/token", None, now)),
        Box::new(|now| key.proof_at("POST", &token_url, None, now - 120)),
        Box::new(|now| key.proof_at("POST", &token_url, None, now + 120)),
    ];
    for proof in bad {
        let r = public_exchange(&s, &c, &p, |now| Some(proof(now))).await;
        assert_eq!(r.status(), 400);
        assert!(refused(&r.json().await.unwrap()));
    }
    // A proof used once is refused the second time (on every replica: the jti is stored).
    let proof = key.proof_at("POST", &token_url, None, s.now() + 30);
    let once = proof.clone();
    let r = public_exchange(&s, &c, &p, |_| Some(once)).await;
    assert_eq!(r.status(), 200);
    let t: serde_json::Value = r.json().await.unwrap();
    let again = public_exchange(&s, &c, &p, |_| Some(proof)).await;
    assert_eq!(again.status(), 400);
    assert!(refused(&again.json().await.unwrap()));

    // At userinfo: a replayed proof, a proof for POST on a GET, for the token URL, or for
    // another access token.
    let at = t["access_token"].as_str().unwrap();
    let proof = key.proof_at("GET", &userinfo_url, Some(at), s.now());
    assert_eq!(userinfo(&s, "DPoP", at, Some(proof.clone())).await.status(), 200);
    assert_eq!(userinfo(&s, "DPoP", at, Some(proof)).await.status(), StatusCode::UNAUTHORIZED);
    for bad in [
        key.proof_at("POST", &userinfo_url, Some(at), s.now()),
        key.proof_at("GET", &token_url, Some(at), s.now()),
        key.proof_at("GET", &userinfo_url, Some("another-token"), s.now()),
    ] {
        assert_eq!(userinfo(&s, "DPoP", at, Some(bad)).await.status(), StatusCode::UNAUTHORIZED);
    }
    // A malformed proof, or one whose typ is not dpop+jwt.
    let r = public_exchange(&s, &c, &p, |_| Some("not-a-jwt".into())).await;
    assert_eq!(r.status(), 400);
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.jwk = Some(serde_json::from_value(key.jwk.clone()).unwrap());
    let untyped = |now: i64| {
        let claims = serde_json::json!({"jti": "x1", "htm": "POST", "htu": token_url, "iat": now});
        let k = jsonwebtoken::EncodingKey::from_ec_der(&key.der);
        jsonwebtoken::encode(&h, &claims, &k).unwrap()
    };
    let r = public_exchange(&s, &c, &p, |now| Some(untyped(now))).await;
    assert_eq!(r.status(), 400);
}

async fn a_client_registered_with_dpop_must_send_proofs(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mut spec = ClientSpec::new("bound-app", "http://127.0.0.1:9/bound-app/cb", "portal");
    spec.dpop = true;
    let c = s.add_client_spec(&spec).await;
    let p = s.add_person("85073003328", "anna").await;
    let key = DpopKey::new();
    let pk = pkce();
    let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &c, &pk, &[]), &p).await;
    let code = query(&loc)["code"].clone();
    let r = exchange(&s, &c, &code, &pk.verifier).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_dpop_proof");
    // The refused request did not spend the code.
    let r = reqwest::Client::new()
        .post(s.url("/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .header("DPoP", key.proof_at("POST", &s.url("/token"), None, s.now()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_verifier", pk.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "DPoP");
    // A confidential client's refresh token is not bound; its refresh needs a proof anyway
    // (the client requires DPoP) and binds the new access token.
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&s, &c, rt).await.status(), 400);
}

async fn introspect(
    s: &TestServer,
    rs: &TestClient,
    at: &str,
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(s.url("/introspect"))
        .basic_auth(&rs.id, rs.secret.as_deref())
        .form(&[("token", at)]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

/// RFC 9449 §6.2: a resource server learns from introspection that a token is bound and to
/// which key; a proof sent with the introspection must be by that key, for `/introspect`,
/// with `ath`, and is spent once.
async fn introspection_tells_a_bound_token_and_checks_a_proof_sent_with_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client_spec(&spa_spec("spa")).await;
    let mut rs_spec = ClientSpec::new("lab-api", "http://127.0.0.1:9/lab-api/cb", "portal");
    rs_spec.introspect = true;
    let rs = s.add_client_spec(&rs_spec).await;
    let p = s.add_person("85073003328", "anna").await;
    let key = DpopKey::new();
    let token_url = s.url("/token");
    let introspect_url = s.url("/introspect");

    let r =
        public_exchange(&s, &c, &p, |now| Some(key.proof_at("POST", &token_url, None, now))).await;
    let t: serde_json::Value = r.json().await.unwrap();
    let at = t["access_token"].as_str().unwrap().to_string();

    // Without a proof: active, DPoP, and the key's thumbprint for the resource server.
    let r = introspect(&s, &rs, &at, None).await;
    assert_eq!(r.status(), 200);
    let i: serde_json::Value = r.json().await.unwrap();
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "DPoP");
    let jkt = i["cnf"]["jkt"].as_str().expect("cnf.jkt").to_string();
    assert_eq!(jkt.len(), 43, "a base64url SHA-256 thumbprint");

    // A proof by the token's key for /introspect with ath: accepted once.
    let proof = key.proof_at("POST", &introspect_url, Some(&at), s.now());
    assert_eq!(introspect(&s, &rs, &at, Some(proof.clone())).await.status(), 200);
    let replayed = introspect(&s, &rs, &at, Some(proof)).await;
    assert_eq!(replayed.status(), 400, "a replayed proof is refused");
    // Another key, another URL, no ath: refused, and nothing is said about the token.
    let other = DpopKey::new();
    for bad in [
        other.proof_at("POST", &introspect_url, Some(&at), s.now()),
        key.proof_at("POST", &s.url("/userinfo"), Some(&at), s.now()),
        key.proof_at("POST", &introspect_url, None, s.now()),
    ] {
        let r = introspect(&s, &rs, &at, Some(bad)).await;
        assert_eq!(r.status(), 400);
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_dpop_proof");
        assert!(e.get("active").is_none());
    }
    // An unbound token is a bearer token there.
    let r = public_exchange(&s, &c, &p, |_| None).await;
    let t: serde_json::Value = r.json().await.unwrap();
    let bearer = t["access_token"].as_str().unwrap();
    let i: serde_json::Value = introspect(&s, &rs, bearer, None).await.json().await.unwrap();
    assert_eq!(i["token_type"], "Bearer");
    assert!(i.get("cnf").is_none());
}
