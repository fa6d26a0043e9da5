//! Software packages and APIs (SPEC §10): clients with eHealth certificates from the test eHealth
//! CA, the `client_credentials` grant with `private_key_jwt` and over real mutual TLS
//! (`tls_client_auth`, TLS 1.2 and 1.3), JWT access tokens (RFC 9068) for every grant,
//! introspection, token exchange, and the hostile cases of the issue.

use crate::both_backends;
use crate::common::*;
use cozo_broker::admin::{self, AdminError, ClientSpec};
use idp_mocks::ehealth_ca::EhealthPki;
use reqwest::tls::Version;
use serde_json::{json, Value};
use std::sync::OnceLock;

both_backends!(
    private_key_jwt_gets_a_token_describing_the_holder,
    bad_certificates_are_refused_at_registration_with_the_reason,
    hostile_assertions_are_refused,
    a_certificate_revoked_while_running_gets_no_token,
    policy_and_grant_refusals_say_why,
    scopes_resources_introspection_and_revocation,
    tls_client_auth_over_mtls_binds_the_token,
    browser_logins_get_jwt_access_tokens,
    es256_access_tokens_when_configured,
    token_exchange_never_widens_and_names_the_actor,
    discovery_advertises_the_mtls_aliases,
    the_demo_lab_api_takes_only_its_own_tokens_and_checks_the_binding,
    client_add_checks_the_certificate_on_the_command_line,
);

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// One test PKI for the process (RSA keys are slow to make); each test writes its own files.
fn pki() -> &'static EhealthPki {
    static PKI: OnceLock<EhealthPki> = OnceLock::new();
    PKI.get_or_init(|| EhealthPki::generate().unwrap())
}

struct Eh {
    s: TestServer,
    dir: tempfile::TempDir,
    mtls: String,
    _cobrha: idp_mocks::cobrha::MockCobrha,
}

async fn start(backend: Backend) -> Eh {
    let dir = tempfile::tempdir().unwrap();
    pki().write_files(dir.path()).unwrap();
    let (cobrha_url, cobrha) = idp_mocks::cobrha::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mtls = format!("https://127.0.0.1:{port}");
    let (bundle, crl) = (dir.path().join("ca-bundle.pem"), dir.path().join("crl.pem"));
    let m = mtls.clone();
    let s = TestServer::start_with(backend, |cfg| {
        cfg.ehealth.ca_bundle = Some(bundle);
        cfg.ehealth.crl = cozo_broker::config::PathList::One(crl);
        cfg.ehealth.reload_interval_s = 1;
        cfg.mtls.listen = format!("127.0.0.1:{port}").parse().unwrap();
        cfg.mtls.public_url = url::Url::parse(&m).unwrap();
        cfg.cobrha.url = Some(url::Url::parse(&cobrha_url).unwrap());
    })
    .await;
    Eh { s, dir, mtls, _cobrha: cobrha }
}

impl Eh {
    async fn add(&self, spec: &ClientSpec) -> Result<Option<String>, AdminError> {
        let trust =
            cozo_broker::ehealth::Ehealth::new(&self.s.handle.cfg.ehealth).unwrap().unwrap();
        let h = &self.s.handle;
        admin::add_client_trusting(&h.store, &h.policies, Some(&trust), spec, self.s.now()).await
    }

    /// A software client with the certificate `cert` (a key of the test PKI).
    async fn software(&self, id: &str, cert: &str, method: &str, policy: &str) {
        let spec = ClientSpec::software(id, &pki().cert(cert).unwrap().cert_pem, method, policy);
        self.add(&spec).await.unwrap();
    }

    fn assertion(&self, id: &str, cert: &str, alg: &str, aud: &str, x5c: bool) -> String {
        let now = self.s.now();
        let claims = json!({
            "iss": id, "sub": id, "aud": aud, "iat": now, "exp": now + 120,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        pki().cert(cert).unwrap().client_assertion(alg, &claims, x5c).unwrap()
    }

    async fn cc_with(&self, id: &str, assertion: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ];
        form.extend_from_slice(extra);
        let r = reqwest::Client::new().post(self.s.url("/token")).form(&form).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// `client_credentials` with a fresh RS256/ES256 assertion for the token endpoint.
    async fn cc(&self, id: &str, cert: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let alg = if pki().cert(cert).unwrap().ec { "ES256" } else { "RS256" };
        let a = self.assertion(id, cert, alg, &self.s.url("/token"), false);
        self.cc_with(id, &a, extra).await
    }

    async fn introspect(&self, id: &str, secret: Option<&str>, token: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(self.s.url("/introspect"))
            .basic_auth(id, secret)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

/// An HTTPS client for the mTLS listener presenting `cert` (or none) over one TLS version.
fn tls_client(cert: Option<&str>, version: Version) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .min_tls_version(version)
        .max_tls_version(version);
    if let Some(key) = cert {
        let c = pki().cert(key).unwrap();
        let pem = format!("{}\n{}", c.cert_pem, c.key_pem);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

fn header(jwt: &str) -> Value {
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&cozo_broker::crypto::b64url_decode(h).unwrap()).unwrap()
}

async fn private_key_jwt_gets_a_token_describing_the_holder(backend: Backend) {
    let e = start(backend).await;
    let issuer = e.s.base.clone();
    e.software("gp-rsa", "gp-rsa", "private_key_jwt", "portal").await;
    e.software("gp-ec", "gp-ec", "private_key_jwt", "ehealth-professional").await;
    e.software("org", "org-rsa", "private_key_jwt", "portal").await;
    e.software("hospital", "hospital-ec", "private_key_jwt", "ehealth").await;

    let mut subs = Vec::new();
    for (id, cert, alg, x5c, aud) in [
        ("gp-rsa", "gp-rsa", "RS256", false, e.s.url("/token")),
        ("gp-rsa", "gp-rsa", "PS256", true, issuer.clone()),
        ("gp-ec", "gp-ec", "ES256", true, e.s.url("/token")),
        ("gp-ec", "gp-ec", "ES256", false, issuer.clone()),
    ] {
        let a = e.assertion(id, cert, alg, &aud, x5c);
        let (status, body) = e.cc_with(id, &a, &[]).await;
        assert_eq!(status, 200, "{id} {alg} x5c={x5c}: {body}");
        assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
        let at = body["access_token"].as_str().unwrap();
        assert_eq!(header(at)["typ"], "at+jwt");
        let c = jwt_claims(at);
        assert_eq!(c["insz"], idp_mocks::ehealth_ca::GP_INSZ, "{c}");
        assert_eq!(
            c["professions"],
            json!([{"profession": "PHYSICIAN", "nihii": idp_mocks::cobrha::GP_NIHII}])
        );
        assert_eq!((c["client_id"].as_str(), c["scope"].as_str()), (Some(id), Some("api")));
        assert_eq!(c["acr"], "http://eidas.europa.eu/LoA/substantial");
        assert_eq!(c["amr"], json!(["swk"]));
        assert_eq!(c["aud"], json!(issuer));
        assert_eq!(c["iss"], json!(issuer));
        assert!(c.get("cnf").is_none(), "not bound without mTLS");
        assert!(!c["sub"].as_str().unwrap().contains(idp_mocks::ehealth_ca::GP_INSZ));
        subs.push(c["sub"].as_str().unwrap().to_string());
    }
    subs.dedup();
    assert_eq!(subs.len(), 1, "one sub per holder across clients and certificates: {subs:?}");

    let (status, body) = e.cc("org", "org-rsa", &[]).await;
    assert_eq!(status, 200, "{body}");
    let c = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["cbe"], "0809394427");
    assert!(c.get("insz").is_none() && c.get("professions").is_none(), "{c}");
    let (status, body) = e.cc("hospital", "hospital-ec", &[]).await;
    assert_eq!(status, 200, "{body}");
    let c = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["nihii"].as_str(), c["nihii_type"].as_str()),
        (Some("71012345"), Some("HOSPITAL"))
    );
}

async fn bad_certificates_are_refused_at_registration_with_the_reason(backend: Backend) {
    let e = start(backend).await;
    for (cert, why) in [
        ("expired", "expired"),
        ("revoked", "revoked"),
        ("foreign", "not issued by a trusted eHealth CA"),
        ("lookalike", "not issued by a trusted eHealth CA"),
        ("bad-subject", "no SSIN, CBE or NIHII"),
    ] {
        let spec = ClientSpec::software(
            cert,
            &pki().cert(cert).unwrap().cert_pem,
            "private_key_jwt",
            "portal",
        );
        let err = e.add(&spec).await.unwrap_err();
        assert_eq!(err.key(), Some("--certificate"), "{cert}");
        assert!(err.to_string().contains(why), "{cert}: {err}");
        assert!(e.s.handle.store.client(cert).await.unwrap().is_none(), "{cert}: nothing stored");
    }
    // A certificate client authenticates with its certificate only.
    let spec = ClientSpec::software(
        "x",
        &pki().cert("gp-ec").unwrap().cert_pem,
        "client_secret_basic",
        "portal",
    );
    assert_eq!(e.add(&spec).await.unwrap_err().key(), Some("--auth-method"));
    let mut spec = ClientSpec::software("x", "", "private_key_jwt", "portal");
    spec.certificate = None;
    assert_eq!(e.add(&spec).await.unwrap_err().key(), Some("--certificate"));
    // One certificate may serve several clients.
    e.software("one", "gp-ec", "private_key_jwt", "portal").await;
    e.software("two", "gp-ec", "tls_client_auth", "portal").await;
}

async fn hostile_assertions_are_refused(backend: Backend) {
    let e = start(backend).await;
    e.software("gp", "gp-rsa", "private_key_jwt", "portal").await;
    let token_url = e.s.url("/token");
    let refused = |(status, body): (u16, Value), what: &str| {
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    };
    // Replayed: the same assertion twice (the jti is stored in the database, every replica).
    let a = e.assertion("gp", "gp-rsa", "RS256", &token_url, false);
    assert_eq!(e.cc_with("gp", &a, &[]).await.0, 200);
    refused(e.cc_with("gp", &a, &[]).await, "replayed");
    // Re-audienced: for another server.
    let a = e.assertion("gp", "gp-rsa", "RS256", "https://other.example/token", false);
    refused(e.cc_with("gp", &a, &[]).await, "other audience");
    // The header names the registered certificate, but another key signed.
    let now = e.s.now();
    let claims = json!({"iss": "gp", "sub": "gp", "aud": token_url, "exp": now + 60, "jti": "k1"});
    let x5t = pki().cert("gp-rsa").unwrap().x5t_s256().unwrap();
    let forged = idp_mocks::ehealth_ca::sign_jws(
        &pki().cert("org-rsa").unwrap().key_pem,
        "RS256",
        &json!({"alg": "RS256", "x5t#S256": x5t}),
        &claims,
    )
    .unwrap();
    refused(e.cc_with("gp", &forged, &[]).await, "another key");
    // Another (valid, trusted) certificate named in the header.
    let a = e.assertion("gp", "org-rsa", "RS256", &token_url, true);
    refused(e.cc_with("gp", &a, &[]).await, "another certificate in x5c");
    // No certificate named at all.
    let bare = idp_mocks::ehealth_ca::sign_jws(
        &pki().cert("gp-rsa").unwrap().key_pem,
        "RS256",
        &json!({"alg": "RS256"}),
        &json!({"iss": "gp", "sub": "gp", "aud": token_url, "exp": now + 60, "jti": "k2"}),
    )
    .unwrap();
    refused(e.cc_with("gp", &bare, &[]).await, "no x5t#S256 or x5c");
    // exp too far ahead, and expired.
    for (exp, jti) in [(now + 3600, "k3"), (now - 60, "k4")] {
        let a = pki()
            .cert("gp-rsa")
            .unwrap()
            .client_assertion(
                "RS256",
                &json!({"iss": "gp", "sub": "gp", "aud": token_url, "exp": exp, "jti": jti}),
                false,
            )
            .unwrap();
        refused(e.cc_with("gp", &a, &[]).await, "exp");
    }
    // Another client's id with this client's assertion.
    e.software("org", "org-rsa", "private_key_jwt", "portal").await;
    let a = e.assertion("gp", "gp-rsa", "RS256", &token_url, false);
    refused(e.cc_with("org", &a, &[]).await, "client_id mismatch");
}

async fn a_certificate_revoked_while_running_gets_no_token(backend: Backend) {
    let e = start(backend).await;
    e.software("gp", "gp-ec", "private_key_jwt", "portal").await;
    let mut rs = ClientSpec::new("rs", "http://127.0.0.1:9/cb", "portal");
    rs.introspect = true;
    let rs_secret = e.add(&rs).await.unwrap();
    let (status, body) = e.cc("gp", "gp-ec", &[]).await;
    assert_eq!(status, 200, "{body}");
    let issued = body["access_token"].as_str().unwrap().to_string();
    assert_eq!(e.introspect("rs", rs_secret.as_deref(), &issued).await.1["active"], true);
    let crl = e.dir.path().join("crl.pem");
    std::fs::write(&crl, pki().crl_pem_revoking(&["gp-ec"]).unwrap()).unwrap();
    // Checked every second in this test (within a minute by default).
    let mut last = (0, Value::Null);
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        last = e.cc("gp", "gp-ec", &[]).await;
        if last.0 != 200 {
            break;
        }
    }
    assert_eq!(last.0, 401, "{}", last.1);
    assert!(last.1["error_description"].as_str().unwrap().contains("revoked"), "{}", last.1);
    // The token issued before the revocation is inactive at once.
    let (_, i) = e.introspect("rs", rs_secret.as_deref(), &issued).await;
    assert_eq!(i, json!({"active": false}));
}

async fn policy_and_grant_refusals_say_why(backend: Backend) {
    let e = start(backend).await;
    e.software("org", "org-ec", "private_key_jwt", "ehealth-professional").await;
    e.software("patient", "patient-ec", "private_key_jwt", "ehealth-professional").await;
    for (id, cert) in [("org", "org-ec"), ("patient", "patient-ec")] {
        let (status, body) = e.cc(id, cert, &[]).await;
        assert_eq!(status, 400, "{id}: {body}");
        assert_eq!(body["error"], "unauthorized_client");
        let why = body["error_description"].as_str().unwrap();
        assert!(why.contains("ehealth-professional") && why.contains("profession"), "{why}");
    }
    // A browser client asking client_credentials, a software client asking a code.
    let browser = e.s.add_client("web", "portal").await;
    let r = reqwest::Client::new()
        .post(e.s.url("/token"))
        .basic_auth(&browser.id, browser.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
    let (status, body) = e.cc("org", "org-ec", &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    let a = e.assertion("org", "org-ec", "ES256", &e.s.url("/token"), false);
    let r = reqwest::Client::new()
        .post(e.s.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", a.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client", "{body}");
}

async fn scopes_resources_introspection_and_revocation(backend: Backend) {
    let e = start(backend).await;
    let mut spec = ClientSpec::software(
        "lab",
        &pki().cert("hospital-ec").unwrap().cert_pem,
        "private_key_jwt",
        "portal",
    );
    spec.scopes = vec!["lab.read".into(), "lab.write".into()];
    spec.resources = vec!["https://lab.example/api".into(), "https://hub.example/fhir".into()];
    e.add(&spec).await.unwrap();
    let mut rs = ClientSpec::new("lab-api", "http://127.0.0.1:9/cb", "portal");
    rs.introspect = true;
    let rs_secret = e.add(&rs).await.unwrap();
    let other = e.s.add_client("not-rs", "portal").await;

    let (status, body) = e.cc("lab", "hospital-ec", &[("scope", "lab.read admin")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    let (status, body) = e.cc("lab", "hospital-ec", &[("resource", "https://evil.example/")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");

    let (status, body) = e.cc("lab", "hospital-ec", &[]).await;
    assert_eq!(status, 200, "{body}");
    let c = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["scope"].as_str(), c["aud"].as_str()),
        (Some("lab.read lab.write"), Some("https://lab.example/api"))
    );
    let (status, body) = e
        .cc(
            "lab",
            "hospital-ec",
            &[("scope", "lab.read"), ("resource", "https://hub.example/fhir")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap().to_string();
    let c = jwt_claims(&at);
    assert_eq!(
        (c["scope"].as_str(), c["aud"].as_str()),
        (Some("lab.read"), Some("https://hub.example/fhir"))
    );

    let (status, i) = e.introspect("lab-api", rs_secret.as_deref(), &at).await;
    assert_eq!(status, 200, "{i}");
    assert_eq!(i["active"], true);
    assert_eq!((i["nihii"].as_str(), i["client_id"].as_str()), (Some("71012345"), Some("lab")));
    // Not a resource server: 401.
    let (status, i) = e.introspect("not-rs", other.secret.as_deref(), &at).await;
    assert_eq!((status, i["error"].as_str()), (401, Some("invalid_client")), "{i}");
    assert!(i.get("active").is_none());
    // Garbage is inactive.
    let (_, i) = e.introspect("lab-api", rs_secret.as_deref(), "not-a-token").await;
    assert_eq!(i, json!({"active": false}));
    // Revoked by its client (private_key_jwt at /revoke): inactive at once.
    let a = e.assertion("lab", "hospital-ec", "ES256", &e.s.url("/token"), false);
    let r = reqwest::Client::new()
        .post(e.s.url("/revoke"))
        .form(&[
            ("token", at.as_str()),
            ("client_id", "lab"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", a.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, i) = e.introspect("lab-api", rs_secret.as_deref(), &at).await;
    assert_eq!(i, json!({"active": false}));
    // A software token opens no userinfo.
    let r = reqwest::Client::new().get(e.s.url("/userinfo")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

async fn tls_client_auth_over_mtls_binds_the_token(backend: Backend) {
    let e = start(backend).await;
    e.software("org-tls", "org-ec", "tls_client_auth", "portal").await;
    e.software("gp-jwt", "gp-rsa", "private_key_jwt", "portal").await;
    let token = format!("{}/token", e.mtls);
    let form = [("grant_type", "client_credentials"), ("client_id", "org-tls")];
    for v in [Version::TLS_1_2, Version::TLS_1_3] {
        let r = tls_client(Some("org-ec"), v).post(&token).form(&form).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{v:?}: {body}");
        let c = jwt_claims(body["access_token"].as_str().unwrap());
        let x5t = pki().cert("org-ec").unwrap().x5t_s256().unwrap();
        assert_eq!(c["cnf"], json!({"x5t#S256": x5t}), "{v:?}");
        assert_eq!(c["cbe"], "0403553751");
        // No certificate, and another trusted certificate: 401 invalid_client (no broken TLS).
        for cert in [None, Some("gp-ec")] {
            let r = tls_client(cert, v).post(&token).form(&form).send().await.unwrap();
            assert_eq!(r.status(), 401, "{v:?} {cert:?}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client");
        }
    }
    // tls_client_auth on the plain endpoint: no certificate there.
    let r = reqwest::Client::new().post(e.s.url("/token")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // private_key_jwt over mTLS with the registered certificate: bound as well.
    let a = e.assertion("gp-jwt", "gp-rsa", "RS256", &token, false);
    let r = tls_client(Some("gp-rsa"), Version::TLS_1_3)
        .post(&token)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", a.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let c = jwt_claims(body["access_token"].as_str().expect("token"));
    assert_eq!(c["cnf"]["x5t#S256"], json!(pki().cert("gp-rsa").unwrap().x5t_s256().unwrap()));
}

async fn browser_logins_get_jwt_access_tokens(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let p = e.s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&e.s, &c, &p).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(header(at)["typ"], "at+jwt");
    let claims = jwt_claims(at);
    let id = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["sub"], id["sub"]);
    assert_eq!(
        (claims["client_id"].as_str(), claims["aud"].as_str()),
        (Some("portal"), Some(e.s.base.as_str()))
    );
    assert_eq!(claims["acr"], id["acr"]);
    assert_eq!(claims["amr"], id["amr"]);
    assert!(claims["jti"].as_str().unwrap().len() >= 32);
    let userinfo = |tok: String| {
        let url = e.s.url("/userinfo");
        async move { reqwest::Client::new().get(url).bearer_auth(tok).send().await.unwrap() }
    };
    assert_eq!(userinfo(at.to_string()).await.status(), 200);
    // The jti alone is no token.
    assert_eq!(userinfo(claims["jti"].as_str().unwrap().to_string()).await.status(), 401);
    let r = reqwest::Client::new()
        .post(e.s.url("/revoke"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("token", at), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(userinfo(at.to_string()).await.status(), 401, "revoked at once");
}

/// `[oidc] access_token_alg = "ES256"`: access tokens signed with the JWKS's ES256 key, for
/// every grant; they verify with that key, work at `/userinfo`, and the same token relabelled
/// `RS256` (algorithm confusion) is refused.
async fn es256_access_tokens_when_configured(backend: Backend) {
    let s = TestServer::start_with(backend, |cfg| {
        cfg.oidc.access_token_alg = cozo_broker::oidc::signing::SigningAlg::Es256;
    })
    .await;
    let c = s.add_client("portal", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &c, &p).await;
    let jwks: Value = reqwest::get(s.url("/jwks")).await.unwrap().json().await.unwrap();
    let verify = |at: &str| {
        let h = header(at);
        assert_eq!((h["alg"].as_str(), h["typ"].as_str()), (Some("ES256"), Some("at+jwt")));
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == h["kid"])
            .expect("the kid is in the JWKS");
        assert_eq!(jwk["alg"], "ES256");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.validate_aud = false;
        jsonwebtoken::decode::<Value>(at, &key, &v).expect("verifies with the JWKS key");
    };
    let at = t["access_token"].as_str().unwrap();
    verify(at);
    let r = refresh(&s, &c, t["refresh_token"].as_str().unwrap()).await;
    let t2: Value = r.json().await.unwrap();
    let at2 = t2["access_token"].as_str().expect("refreshed");
    verify(at2);
    // The ID token stays RS256 (the client's choice, SPEC §5).
    assert_eq!(header(t2["id_token"].as_str().unwrap())["alg"], "RS256");
    let userinfo = |tok: String| {
        let url = s.url("/userinfo");
        async move { reqwest::Client::new().get(url).bearer_auth(tok).send().await.unwrap() }
    };
    assert_eq!(userinfo(at2.to_string()).await.status(), 200);
    // Relabelled RS256 with the same kid and signature: refused.
    let mut h = header(at2);
    h["alg"] = "RS256".into();
    let rest = at2.split_once('.').unwrap().1;
    let forged = format!("{}.{rest}", cozo_broker::crypto::b64url(h.to_string().as_bytes()));
    assert_eq!(userinfo(forged).await.status(), 401);
}

async fn token_exchange_never_widens_and_names_the_actor(backend: Backend) {
    let e = start(backend).await;
    let mut spec = ClientSpec::software(
        "gp",
        &pki().cert("gp-ec").unwrap().cert_pem,
        "private_key_jwt",
        "portal",
    );
    spec.scopes = vec!["lab.read".into(), "lab.write".into()];
    e.add(&spec).await.unwrap();
    let mut hub = ClientSpec::new("hub", "http://127.0.0.1:9/cb", "portal");
    hub.token_exchange = true;
    hub.resources = vec!["https://hub.example/fhir".into()];
    let hub_secret = e.add(&hub).await.unwrap();
    let plain = e.s.add_client("plain", "portal").await;
    let (_, body) = e.cc("gp", "gp-ec", &[("scope", "lab.read")]).await;
    let subject = body["access_token"].as_str().unwrap().to_string();
    let exchange = |id: &str, secret: Option<String>, scope: Option<&str>| {
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".to_string()),
            ("subject_token", subject.clone()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token".to_string()),
            ("resource", "https://hub.example/fhir".to_string()),
        ];
        if let Some(s) = scope {
            form.push(("scope", s.to_string()));
        }
        let req = reqwest::Client::new().post(e.s.url("/token")).basic_auth(id, secret).form(&form);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = exchange("hub", hub_secret.clone(), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert!(body.get("refresh_token").is_none());
    let (old, new) = (jwt_claims(&subject), jwt_claims(body["access_token"].as_str().unwrap()));
    assert_eq!((&new["sub"], &new["acr"], &new["amr"]), (&old["sub"], &old["acr"], &old["amr"]));
    assert_eq!(
        (new["aud"].as_str(), new["client_id"].as_str()),
        (Some("https://hub.example/fhir"), Some("hub"))
    );
    assert_eq!(new["act"], json!({"sub": "hub", "client_id": "hub"}));
    assert_eq!(new["scope"], "lab.read");
    let (status, body) = exchange("hub", hub_secret.clone(), Some("lab.read lab.write")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    let (status, body) = exchange("plain", plain.secret.clone(), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");
}

async fn discovery_advertises_the_mtls_aliases(backend: Backend) {
    let e = start(backend).await;
    let d: Value = reqwest::get(e.s.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(d["mtls_endpoint_aliases"]["token_endpoint"], format!("{}/token", e.mtls));
    assert_eq!(d["introspection_endpoint"], e.s.url("/introspect"));
    let grants = d["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&json!("client_credentials")));
    assert!(d["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("tls_client_auth")));
}

async fn the_demo_lab_api_takes_only_its_own_tokens_and_checks_the_binding(backend: Backend) {
    let e = start(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let cfg = idp_mocks::lab_api::LabApiConfig { issuer: e.s.base.clone(), audience: api.clone() };
    tokio::spawn(idp_mocks::lab_api::serve(listener, cfg, std::future::pending()));
    let mut spec = ClientSpec::software(
        "sw",
        &pki().cert("gp-rsa").unwrap().cert_pem,
        "private_key_jwt",
        "ehealth-professional",
    );
    spec.resources = vec![api.clone(), "https://elsewhere.example/api".into()];
    e.add(&spec).await.unwrap();
    let mut spec = ClientSpec::software(
        "sw-tls",
        &pki().cert("gp-ec").unwrap().cert_pem,
        "tls_client_auth",
        "portal",
    );
    spec.resources = vec![api.clone()];
    e.add(&spec).await.unwrap();
    let call = |token: String| {
        let url = format!("{api}/lab-results");
        async move {
            let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (_, body) = e.cc("sw", "gp-rsa", &[("resource", api.as_str())]).await;
    let (status, answer) = call(body["access_token"].as_str().unwrap().into()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["holder"]["insz"], idp_mocks::ehealth_ca::GP_INSZ);
    let (_, body) = e.cc("sw", "gp-rsa", &[("resource", "https://elsewhere.example/api")]).await;
    let (status, answer) = call(body["access_token"].as_str().unwrap().into()).await;
    assert_eq!(status, 401, "another audience: {answer}");
    // A bound token, stolen and presented without the certificate.
    let r = tls_client(Some("gp-ec"), Version::TLS_1_3)
        .post(format!("{}/token", e.mtls))
        .form(&[("grant_type", "client_credentials"), ("client_id", "sw-tls")])
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let bound = body["access_token"].as_str().expect("bound token").to_string();
    let (status, answer) = call(bound.clone()).await;
    assert_eq!(status, 401, "bound, over plain HTTP: {answer}");
    let (status, _) = call("x.y.z".into()).await;
    assert_eq!(status, 401);
    // The same API over mutual TLS: the bound token with its certificate, and with others.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_api =
        format!("https://127.0.0.1:{}/lab-results", listener.local_addr().unwrap().port());
    let cfg = idp_mocks::lab_api::LabApiConfig { issuer: e.s.base.clone(), audience: api.clone() };
    tokio::spawn(idp_mocks::lab_api::serve_tls(listener, cfg, std::future::pending()));
    for (cert, expected) in [(Some("gp-ec"), 200), (Some("gp-rsa"), 401), (None, 401)] {
        let r = tls_client(cert, Version::TLS_1_3)
            .get(&tls_api)
            .bearer_auth(&bound)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(status, expected, "{cert:?}: {answer}");
    }
}

async fn client_add_checks_the_certificate_on_the_command_line(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    pki().write_files(dir.path()).unwrap();
    let db = database_url(backend, dir.path()).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cozo-broker"))
            .args(args)
            .env("COZO_DATABASE__URL", &db)
            .env("COZO_SECRETS__MASTER_KEY_FILE", dir.path().join("master.key"))
            .env("COZO_POLICY__DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
            .env("COZO_EHEALTH__CA_BUNDLE", dir.path().join("ca-bundle.pem"))
            .env("COZO_EHEALTH__CRL", dir.path().join("crl.pem"))
            .output()
            .unwrap()
    };
    let cert = |k: &str| dir.path().join(format!("{k}.pem")).display().to_string();
    let add = |id: &str, c: &str, method: &str| {
        run(&[
            "client",
            "add",
            "--id",
            id,
            "--grant",
            "client_credentials",
            "--certificate",
            &cert(c),
            "--auth-method",
            method,
            "--scope",
            "lab.read",
            "--resource",
            "https://lab.example/api",
            "--json",
        ])
    };
    let out = add("sw", "org-ec", "tls_client_auth");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["client_id"], "sw");
    assert!(v["client_secret"].is_null());
    for (c, why) in [("revoked", "revoked"), ("expired", "expired"), ("foreign", "trusted")] {
        let out = add(c, c, "private_key_jwt");
        assert_eq!(out.status.code(), Some(2), "{c}");
        let e: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(e["key"], "--certificate", "{e}");
        assert!(e["error"].as_str().unwrap().contains(why), "{e}");
    }
    let out = run(&["client", "list", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clients"][0]["grant_types"], json!(["client_credentials"]));
    assert_eq!(v["clients"].as_array().unwrap().len(), 1, "refused clients are not stored");
}
