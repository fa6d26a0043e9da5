//! The federal login (FAS) through the mock federal OpenID provider: a login per means with its
//! acr/amr, the means deciding for policies, same person through many doors, and hostile answers.

use crate::both_backends;
use crate::common::*;
use idp_mocks::fas::{self as mockfas, FasConfig, MockFas, Tamper};

both_backends!(
    a_login_per_means_maps_level_and_amr,
    sms_through_fas_does_not_reach_ehealth,
    same_person_through_many_doors,
    hostile_federal_answers_are_refused,
    a_level_missing_from_the_configured_table_is_refused,
);

struct Fas {
    s: TestServer,
    mock: MockFas,
}

async fn start(backend: Backend) -> Fas {
    start_with(backend, |_| {}).await
}

async fn start_with(backend: Backend, tweak: impl FnOnce(&mut cozo_broker::config::Config)) -> Fas {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (issuer, mock) = mockfas::start(FasConfig {
        base_url: String::new(),
        client_id: "cozo-broker".into(),
        client_secret: "fas-test-secret".into(),
        redirect_uris: vec![format!("{base}/oidc/fas/callback")],
    })
    .await
    .unwrap();
    let s = TestServer::start_on(backend, listener, |cfg| {
        cfg.fas.issuer = Some(url::Url::parse(&issuer).unwrap());
        cfg.fas.client_id = "cozo-broker".into();
        cfg.fas.client_secret = "fas-test-secret".into();
        tweak(cfg);
    })
    .await;
    Fas { s, mock }
}

fn person_key(insz: &str) -> String {
    mockfas::test_persons()
        .into_iter()
        .find(|p| p.insz == insz)
        .map(|p| p.key.to_string())
        .expect("FAS test person")
}

/// Through the chooser to FAS, logged in there as `person` with `means`; returns the page the
/// broker answers the callback with.
async fn fas_login(f: &Fas, b: &Browser, authorize: &str, person: &str, means: &str) -> Page {
    fas_login_with(f, b, authorize, person, means, &[]).await
}

/// [`fas_login`] with more parameters for the mock's test API (e.g. `acr`).
async fn fas_login_with(
    f: &Fas,
    b: &Browser,
    authorize: &str,
    person: &str,
    means: &str,
    extra: &[(&str, &str)],
) -> Page {
    let chooser = b.follow(&f.s.base, b.get(authorize).await).await;
    assert!(
        chooser.body.contains("/login/fas"),
        "chooser offers the federal login: {}",
        chooser.body
    );
    let to_fas = b.get(&f.s.url("/login/fas")).await;
    let loc = to_fas.location().unwrap_or_else(|| panic!("{} {}", to_fas.status, to_fas.body));
    let mut url = url::Url::parse(&loc).unwrap();
    assert!(url.as_str().starts_with(f.mock.issuer()), "{url}");
    url.set_path(&format!("{}/test", url.path()));
    url.query_pairs_mut().append_pair("person", person).append_pair("means", means);
    url.query_pairs_mut().extend_pairs(extra);
    let back =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = back.get(url.as_str()).send().await.unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    assert!(callback.starts_with(&f.s.url("/oidc/fas/callback")), "{callback}");
    b.get(&callback).await
}

async fn a_login_per_means_maps_level_and_amr(backend: Backend) {
    let f = start(backend).await;
    let c = f.s.add_client("portal", "portal").await;
    let anna = person_key("85073003328");
    for (means, acr, amr) in [
        ("eid", "high", "eid"),
        ("itsme", "high", "itsme"),
        ("totp", "substantial", "totp"),
        ("sms", "low", "sms"),
        ("token", "low", "token"),
    ] {
        let b = Browser::new();
        let pk = pkce();
        let done = fas_login(&f, &b, &authorize_url(&f.s, &c, &pk, &[]), &anna, means).await;
        let loc =
            done.location().unwrap_or_else(|| panic!("{means}: {} {}", done.status, done.body));
        let t: serde_json::Value =
            exchange(&f.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
        let claims = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(claims["acr"], format!("http://eidas.europa.eu/LoA/{acr}"), "{means}");
        assert_eq!(claims["amr"], serde_json::json!(["fas", amr]), "{means}");
        assert_eq!(claims["insz"], "85073003328");
    }
}

async fn sms_through_fas_does_not_reach_ehealth(backend: Backend) {
    let f = start(backend).await;
    let c = f.s.add_client("ehealth-app", "ehealth").await;
    let anna = person_key("85073003328");
    let b = Browser::new();
    let done = fas_login(&f, &b, &authorize_url(&f.s, &c, &pkce(), &[]), &anna, "sms").await;
    assert_eq!(done.location().as_deref(), Some("/login"), "step-up, not a code");
    let chooser = b.get(&f.s.url("/login")).await;
    assert!(chooser.body.contains("data-step-up"));
    // With the app code through FAS, the same app is answered.
    let pk = pkce();
    let done =
        fas_login(&f, &Browser::new(), &authorize_url(&f.s, &c, &pk, &[]), &anna, "totp").await;
    assert!(done.location().unwrap().starts_with(&c.redirect_uri));
}

async fn same_person_through_many_doors(backend: Backend) {
    let f = start(backend).await;
    let c = f.s.add_client("portal", "portal").await;
    let p = f.s.add_person("85073003328", "anna").await;
    let by_key = login_and_exchange(&f.s, &c, &p).await;
    let pk = pkce();
    let done = fas_login(
        &f,
        &Browser::new(),
        &authorize_url(&f.s, &c, &pk, &[]),
        &person_key("85073003328"),
        "eid",
    )
    .await;
    let t: serde_json::Value =
        exchange(&f.s, &c, &query(&done.location().unwrap())["code"], &pk.verifier)
            .await
            .json()
            .await
            .unwrap();
    let a = jwt_claims(by_key["id_token"].as_str().unwrap());
    let b = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(a["sub"], b["sub"], "one person, one sub");
    let person =
        f.s.handle
            .store
            .person_by_insz(&cozo_broker::identity::Insz::parse("85073003328").unwrap())
            .await
            .unwrap()
            .unwrap();
    let history = f.s.handle.store.audit_events(Some(&person.id), 0, 50).await.unwrap();
    let methods: Vec<_> =
        history.iter().filter(|e| e.kind == "login").filter_map(|e| e.method.clone()).collect();
    assert!(
        methods.contains(&"totp".to_string()) && methods.contains(&"eid".to_string()),
        "{methods:?}"
    );
    // A person FAS knows but the broker did not is created at the first login.
    let gp = person_key(idp_mocks::cobrha::GP);
    let pk = pkce();
    let done =
        fas_login(&f, &Browser::new(), &authorize_url(&f.s, &c, &pk, &[]), &gp, "itsme").await;
    assert!(done.location().unwrap().starts_with(&c.redirect_uri));
}

async fn hostile_federal_answers_are_refused(backend: Backend) {
    let f = start(backend).await;
    let c = f.s.add_client("portal", "portal").await;
    let anna = person_key("85073003328");
    for tamper in [
        Tamper::WrongNonce,
        Tamper::UnknownKey,
        Tamper::WrongAudience,
        Tamper::Expired,
        Tamper::WrongIssuer,
    ] {
        f.mock.set_tamper(Some(tamper));
        let page =
            fas_login(&f, &Browser::new(), &authorize_url(&f.s, &c, &pkce(), &[]), &anna, "eid")
                .await;
        assert_eq!(page.status, 400, "{tamper:?} accepted");
        assert_eq!(page.data_error().as_deref(), Some("invalid"), "{tamper:?}");
    }
    f.mock.set_tamper(None);
    // An error from FAS: a clear page.
    f.mock.set_error(Some("server_error".into()));
    let b = Browser::new();
    let chooser = b.follow(&f.s.base, b.get(&authorize_url(&f.s, &c, &pkce(), &[])).await).await;
    assert!(chooser.url.ends_with("/login"));
    let loc = b.get(&f.s.url("/login/fas")).await.location().unwrap();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&loc)
        .send()
        .await
        .unwrap();
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    let page = b.get(&callback).await;
    assert_eq!(page.data_error().as_deref(), Some("upstream_error"), "{}", page.body);
    f.mock.set_error(None);
    // A callback whose state is not this browser's.
    let b = Browser::new();
    b.follow(&f.s.base, b.get(&authorize_url(&f.s, &c, &pkce(), &[])).await).await;
    b.get(&f.s.url("/login/fas")).await;
    let forged = b.get(&f.s.url("/oidc/fas/callback?code=abc&state=forged")).await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.data_error().as_deref(), Some("state"));
}

/// SPEC §6: an `acr` missing from `[fas.levels]` is refused. The table comes from a config file
/// as operators write it (Level350 to Level500 only); a FAS answer at Level200 gets the FAS error
/// page in the person's language, no login and no code; the configured levels still log in.
async fn a_level_missing_from_the_configured_table_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cozo-broker.toml");
    std::fs::write(
        &file,
        "[fas.levels]\n\
         \"urn:be:fedict:iam:fas:Level500\" = \"high\"\n\
         \"urn:be:fedict:iam:fas:Level450\" = \"high\"\n\
         \"urn:be:fedict:iam:fas:Level400\" = \"substantial\"\n\
         \"urn:be:fedict:iam:fas:Level350\" = \"low\"\n",
    )
    .unwrap();
    let loaded = cozo_broker::config::Config::load(Some(&file)).unwrap();
    let f = start_with(backend, |cfg| cfg.fas.levels = loaded.fas.levels).await;
    let c = f.s.add_client("portal", "portal").await;
    let anna = person_key("85073003328");
    let b = Browser::new();
    let page = fas_login_with(
        &f,
        &b,
        &authorize_url(&f.s, &c, &pkce(), &[]),
        &anna,
        "totp",
        &[("acr", "urn:be:fedict:iam:fas:Level200")],
    )
    .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.data_error().as_deref(), Some("unknown_level"), "{}", page.body);
    assert!(page.body.contains("does not accept"), "{}", page.body);
    assert!(page.body.contains("href=\"/login\""), "a way back to the chooser");
    // Nothing was logged in: the app asking silently gets login_required.
    let silent = b.get(&authorize_url(&f.s, &c, &pkce(), &[("prompt", "none")])).await;
    assert_eq!(query(&silent.location().unwrap())["error"], "login_required");
    assert!(
        f.s.handle
            .store
            .person_by_insz(&cozo_broker::identity::Insz::parse("85073003328").unwrap())
            .await
            .unwrap()
            .is_none(),
        "no person created"
    );
    let failed = f.s.handle.store.audit_events(None, 0, 50).await.unwrap();
    assert!(
        failed.iter().any(|e| e.kind == "login"
            && e.outcome == "failed"
            && e.detail.contains("unknown_level")),
        "{failed:?}"
    );
    // A configured level still logs in.
    let pk = pkce();
    let done =
        fas_login(&f, &Browser::new(), &authorize_url(&f.s, &c, &pk, &[]), &anna, "totp").await;
    let loc = done.location().unwrap_or_else(|| panic!("{} {}", done.status, done.body));
    let t: serde_json::Value =
        exchange(&f.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/substantial");
}
