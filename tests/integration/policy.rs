//! Assurance policies (SPEC §3, §4, §8): SMS and token keys, step-up to the app code, acr_values,
//! CoBRHA professions and a registry that is down.

use crate::both_backends;
use crate::common::*;
use cozo_broker::admin;

both_backends!(
    sms_and_token_logins_give_low_and_are_single_use,
    ehealth_refuses_sms_and_steps_up_to_the_app_code,
    acr_values_ask_for_more_never_less,
    professions_come_from_cobrha_and_only_active_ones,
    registry_down_fails_closed_for_professionals_and_open_for_the_portal,
);

const PHONE: &str = "+32470123456";

/// A person with TOTP, SMS and token keys; returns the token card.
async fn person_with_all_keys(
    s: &TestServer,
    insz: &str,
    username: &str,
) -> (TestPerson, Vec<String>) {
    let p = s.add_person(insz, username).await;
    s.add_sms_key(&p, PHONE).await;
    let card = s.add_token_key(&p).await;
    (p, card.into_values().collect())
}

fn radios(page: &Page) -> Vec<String> {
    let sel = scraper::Selector::parse("input[name=method]").unwrap();
    page.html().select(&sel).filter_map(|e| e.value().attr("value").map(str::to_string)).collect()
}

/// Asks for an SMS code on the code page and logs in with it; returns the answer.
async fn sms_login(s: &TestServer, b: &Browser, code_page: &Page) -> Page {
    let sent =
        b.submit(&s.base, code_page, "/login/key/code", &[("method", "sms"), ("code", "")]).await;
    let code = last_sms_code(s, PHONE).await;
    b.submit(&s.base, &sent, "/login/key/code", &[("method", "sms"), ("code", &code)]).await
}

async fn sms_and_token_logins_give_low_and_are_single_use(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("portal", "portal").await;
    let (p, card) = person_with_all_keys(&s, "85073003328", "anna").await;

    // SMS: ask for a code, read it from the outbox, log in.
    let b = Browser::new();
    let pk = pkce();
    let page = to_code_page(&s, &b, &authorize_url(&s, &c, &pk, &[]), &p).await;
    assert_eq!(radios(&page), vec!["totp", "sms", "token"]);
    let sent =
        b.submit(&s.base, &page, "/login/key/code", &[("method", "sms"), ("code", "")]).await;
    assert_eq!(sent.status, 200);
    assert!(sent.body.contains("+324"), "masked phone shown");
    assert!(!sent.body.contains(PHONE), "the full number is not shown");
    let code = last_sms_code(&s, PHONE).await;
    let wrong =
        b.submit(&s.base, &sent, "/login/key/code", &[("method", "sms"), ("code", "000000")]).await;
    assert_eq!(wrong.status, 401);
    let done =
        b.submit(&s.base, &wrong, "/login/key/code", &[("method", "sms"), ("code", &code)]).await;
    let loc = done.location().expect("back to the app");
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/low");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "sms"]));

    // Token card: the page names a position; the code of that position logs in, once.
    let b = Browser::new();
    let pk = pkce();
    let page = to_code_page(&s, &b, &authorize_url(&s, &c, &pk, &[]), &p).await;
    let asked =
        b.submit(&s.base, &page, "/login/key/code", &[("method", "token"), ("code", "")]).await;
    let sel = scraper::Selector::parse("[data-token-position]").unwrap();
    let pos: usize = asked
        .html()
        .select(&sel)
        .next()
        .and_then(|e| e.value().attr("data-token-position").map(|v| v.parse().unwrap()))
        .expect("position asked");
    assert!((1..=24).contains(&pos));
    let other = card[pos % 24].clone();
    let wrong = b
        .submit(&s.base, &asked, "/login/key/code", &[("method", "token"), ("code", &other)])
        .await;
    assert_eq!(wrong.status, 401, "another position's code is wrong");
    let done = b
        .submit(
            &s.base,
            &wrong,
            "/login/key/code",
            &[("method", "token"), ("code", &card[pos - 1])],
        )
        .await;
    let loc = done.location().expect("back to the app");
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    assert_eq!(
        jwt_claims(t["id_token"].as_str().unwrap())["amr"],
        serde_json::json!(["pwd", "token"])
    );
    // That position is never asked again.
    let keys = admin::list_keys(&s.handle.store, "85073003328").await.unwrap().1;
    let token_key = keys.iter().find(|k| k.kind == cozo_broker::assurance::Method::Token).unwrap();
    let unused = s.handle.store.unused_positions(&token_key.id).await.unwrap();
    assert_eq!(unused.len(), 23);
    assert!(!unused.contains(&(pos as i64)));
    // A code posted without asking for one first changes nothing.
    let b = Browser::new();
    let page = to_code_page(&s, &b, &authorize_url(&s, &c, &pkce(), &[]), &p).await;
    let early =
        b.submit(&s.base, &page, "/login/key/code", &[("method", "sms"), ("code", "123456")]).await;
    assert_eq!(early.status, 400);
    assert_eq!(early.data_error().as_deref(), Some("no-challenge"));
}

async fn ehealth_refuses_sms_and_steps_up_to_the_app_code(backend: Backend) {
    let s = TestServer::start(backend).await;
    let portal = s.add_client("portal", "portal").await;
    let ehealth = s.add_client("ehealth-app", "ehealth").await;
    let (p, _) = person_with_all_keys(&s, "85073003328", "anna").await;
    let b = Browser::new();
    // An SMS login for the portal.
    let page = to_code_page(&s, &b, &authorize_url(&s, &portal, &pkce(), &[]), &p).await;
    let done = sms_login(&s, &b, &page).await;
    assert!(done.location().unwrap().starts_with(&portal.redirect_uri));
    let sms_time = s.now();
    s.handle.clock.advance(40);

    // The eHealth app: the SMS session is not reused; the chooser says why.
    let pk = pkce();
    let first = b.get(&authorize_url(&s, &ehealth, &pk, &[])).await;
    assert_eq!(first.location().as_deref(), Some("/login"), "not answered from the SMS session");
    let chooser = b.get(&s.url("/login")).await;
    let sel = scraper::Selector::parse("[data-step-up]").unwrap();
    let notice: String =
        chooser.html().select(&sel).next().expect("step-up notice").text().collect();
    assert!(notice.contains("SMS"), "{notice}");
    // The code page offers only the app code.
    let page = password_step(&s, &b, &p).await;
    assert_eq!(radios(&page), vec!["totp"]);
    let refused =
        b.submit(&s.base, &page, "/login/key/code", &[("method", "sms"), ("code", "")]).await;
    assert_ne!(refused.status, 200, "an SMS code cannot even be asked for here");
    let done = submit_totp(&s.base, &b, &page, &s.code(&p)).await;
    let loc = done.location().expect("back to the eHealth app");
    assert!(loc.starts_with(&ehealth.redirect_uri), "{loc}");
    let t: serde_json::Value =
        exchange(&s, &ehealth, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/substantial");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "totp"]));
    assert!(
        claims["auth_time"].as_i64().unwrap() > sms_time,
        "the stronger login has its own auth_time"
    );
    // The stronger session now answers the portal too, without a new login.
    let again = b.get(&authorize_url(&s, &portal, &pkce(), &[])).await;
    assert!(again.location().unwrap().starts_with(&portal.redirect_uri));
}

async fn acr_values_ask_for_more_never_less(backend: Backend) {
    let s = TestServer::start(backend).await;
    let portal = s.add_client("portal", "portal").await;
    let ehealth = s.add_client("ehealth-app", "ehealth").await;
    let (p, _) = person_with_all_keys(&s, "85073003328", "anna").await;
    let b = Browser::new();
    let page = to_code_page(&s, &b, &authorize_url(&s, &portal, &pkce(), &[]), &p).await;
    sms_login(&s, &b, &page).await;
    // Asking eHealth for less (low) changes nothing: still a step-up.
    let low = b
        .get(&authorize_url(
            &s,
            &ehealth,
            &pkce(),
            &[("acr_values", "http://eidas.europa.eu/LoA/low")],
        ))
        .await;
    assert_eq!(low.location().as_deref(), Some("/login"));
    // Asking the portal for more (substantial) is honoured: the SMS session is not enough.
    let more = b
        .get(&authorize_url(
            &s,
            &portal,
            &pkce(),
            &[("acr_values", "http://eidas.europa.eu/LoA/substantial")],
        ))
        .await;
    assert_eq!(more.location().as_deref(), Some("/login"));
    // Without acr_values the portal is answered from the SMS session.
    let plain = b.get(&authorize_url(&s, &portal, &pkce(), &[])).await;
    assert!(plain.location().unwrap().starts_with(&portal.redirect_uri));
    // An essential acr claim for high: nothing offered reaches it.
    let claims =
        r#"{"id_token":{"acr":{"essential":true,"values":["http://eidas.europa.eu/LoA/high"]}}}"#;
    let high = b.get(&authorize_url(&s, &portal, &pkce(), &[("claims", claims)])).await;
    assert_eq!(query(&high.location().unwrap())["error"], "unmet_authentication_requirements");
}

async fn start_with_cobrha(backend: Backend) -> (TestServer, idp_mocks::cobrha::MockCobrha) {
    let (url, mock) = idp_mocks::cobrha::start().await;
    let s = TestServer::start_with(backend, |cfg| {
        cfg.cobrha.url = Some(url::Url::parse(&url).unwrap());
        cfg.cobrha.timeout_ms = 500;
    })
    .await;
    (s, mock)
}

async fn professional_login(s: &TestServer, c: &TestClient, p: &TestPerson) -> Page {
    let b = Browser::new();
    let pk = pkce();
    let url = authorize_url(s, c, &pk, &[("scope", "openid profile insz professions")]);
    let page = to_code_page(s, &b, &url, p).await;
    submit_totp(&s.base, &b, &page, &s.code(p)).await
}

async fn professions_come_from_cobrha_and_only_active_ones(backend: Backend) {
    use idp_mocks::cobrha;
    let (s, mock) = start_with_cobrha(backend).await;
    let c = s.add_client("pro-app", "ehealth-professional").await;
    let gp = s.add_person(cobrha::GP, "gp-janssens").await;
    let pk = pkce();
    let b = Browser::new();
    let url = authorize_url(&s, &c, &pk, &[("scope", "openid insz professions")]);
    let loc = key_login(&s, &b, &url, &gp).await;
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(
        claims["professions"],
        serde_json::json!([{"profession": "PHYSICIAN", "nihii": cobrha::GP_NIHII}])
    );
    let ui: serde_json::Value = reqwest::Client::new()
        .get(s.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["professions"], claims["professions"]);

    // Inactive professions are dropped.
    let former = s.add_person(cobrha::FORMER_NURSE_PHYSIOTHERAPIST, "former").await;
    let pk = pkce();
    let url = authorize_url(&s, &c, &pk, &[("scope", "openid professions")]);
    let loc = key_login(&s, &Browser::new(), &url, &former).await;
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let profs = jwt_claims(t["id_token"].as_str().unwrap())["professions"].clone();
    assert_eq!(profs.as_array().unwrap().len(), 1);
    assert_eq!(profs[0]["profession"], "PHYSIOTHERAPIST");

    // A foreign care provider with a Bis number.
    let foreign = s.add_person(cobrha::FOREIGN_GP, "foreign-gp").await;
    let pk = pkce();
    let loc = key_login(
        &s,
        &Browser::new(),
        &authorize_url(&s, &c, &pk, &[("scope", "openid professions")]),
        &foreign,
    )
    .await;
    let t: serde_json::Value =
        exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    assert_eq!(
        jwt_claims(t["id_token"].as_str().unwrap())["professions"][0]["nihii"],
        cobrha::FOREIGN_GP_NIHII
    );

    // Someone with only an inactive profession: the professional app refuses.
    let retired = s.add_person(cobrha::RETIRED_PHYSICIAN, "retired").await;
    let done = professional_login(&s, &c, &retired).await;
    let q = query(&done.location().expect("back to the app with an error"));
    assert_eq!(q["error"], "unmet_authentication_requirements");

    // The registry answer is cached: one more login of the GP does not ask again.
    let before = mock.lookups();
    s.next_step();
    let done = professional_login(&s, &c, &gp).await;
    assert!(done.location().unwrap().contains("code="));
    assert_eq!(mock.lookups(), before, "cached");
}

async fn registry_down_fails_closed_for_professionals_and_open_for_the_portal(backend: Backend) {
    use idp_mocks::cobrha;
    let (s, mock) = start_with_cobrha(backend).await;
    let pro = s.add_client("pro-app", "ehealth-professional").await;
    let portal = s.add_client("portal", "portal").await;
    let gp = s.add_person(cobrha::GP, "gp-janssens").await;
    mock.set_failing(true);
    let done = professional_login(&s, &pro, &gp).await;
    assert_eq!(done.status, 503, "{}", done.body);
    assert_eq!(done.data_error().as_deref(), Some("temporarily_unavailable"));
    let sel = scraper::Selector::parse("a.button").unwrap();
    let back = done.html().select(&sel).next().unwrap().value().attr("href").unwrap().to_string();
    let q = query(&back);
    assert_eq!(q["error"], "temporarily_unavailable");
    assert_eq!(q["state"], "st-123");
    // The portal (no profession needed) continues, without the professions claim.
    s.next_step();
    let pk = pkce();
    let url = authorize_url(&s, &portal, &pk, &[("scope", "openid insz professions")]);
    let loc = key_login(&s, &Browser::new(), &url, &gp).await;
    let t: serde_json::Value =
        exchange(&s, &portal, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert!(claims.get("professions").is_none(), "absent, not []: {claims}");
    // A slow registry (past the timeout) fails closed the same way.
    mock.set_failing(false);
    mock.set_delay(std::time::Duration::from_millis(1500));
    s.next_step();
    let slow =
        professional_login(&s, &pro, &s.add_person(cobrha::PHYSICIAN_DENTIST, "doc2").await).await;
    assert_eq!(slow.status, 503);
}

#[tokio::test]
async fn a_broken_policy_file_stops_start_up_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    for f in ["schema.cedarschema", "portal.cedar"] {
        std::fs::copy(format!("{src}/{f}"), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("ehealth.cedar"),
        "// broken\npermit (principal, action, resource)\nwhen { context.login.lvel >= 2 };\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cozo-broker"))
        .args(["serve"])
        .env("COZO_POLICY__DIR", dir.path())
        .env("COZO_DATABASE__URL", format!("sqlite://{}/db.sqlite", dir.path().display()))
        .env("COZO_SECRETS__MASTER_KEY_FILE", dir.path().join("master.key"))
        .env("COZO_SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ehealth.cedar:3"), "{err}");
}

async fn policy_check_cli(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.add_client("ehealth-app", "ehealth").await;
    s.add_person("85073003328", "anna").await;
    let run = |method: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cozo-broker"))
            .args([
                "policy",
                "check",
                "--client",
                "ehealth-app",
                "--insz",
                "85073003328",
                "--method",
                method,
                "--json",
            ])
            .env("COZO_DATABASE__URL", &s.handle.cfg.database.url)
            .env("COZO_POLICY__DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let sms = run("sms");
    assert_eq!(sms["decision"], "step_up");
    assert_eq!(sms["policy"], "ehealth");
    assert_eq!(
        sms["methods"],
        serde_json::json!(["eid", "totp", "webauthn", "eidas", "eudiw", "itsme"]),
        "{sms}"
    );
    // Of those, this configuration (defaults: no eID, FAS or eIDAS) offers the digital keys.
    assert_eq!(sms["offered"], serde_json::json!(["totp", "webauthn"]), "{sms}");
    assert!(sms["reason"].as_str().unwrap().contains("SMS"));
    assert_eq!(run("totp")["decision"], "allow");
}

both_backends!(policy_check_cli);
