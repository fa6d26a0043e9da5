//! EU Digital Identity Wallet login (SPEC §12) with the mock PID provider and test wallet:
//! first-login linking of a Dutch PID, a Belgian PID with its INSZ, and the hostile cases, each
//! refused with nothing stored; the same with the PID as mdoc (ISO 18013-5).

use crate::both_backends;
use crate::common::*;
use idp_mocks::bis_register;
use idp_mocks::eudiw::provider::{self, IssueOptions, PidHolder, PidProvider};
use idp_mocks::eudiw::wallet::{TestWallet, Tweaks};
use std::sync::Arc;

both_backends!(
    dutch_pid_links_a_bis_number_then_logs_in_directly,
    belgian_pid_with_insz_logs_in_and_opens_ehealth,
    hostile_presentations_are_refused_and_store_nothing,
    unbound_answers_are_refused_and_store_nothing,
    the_answer_belongs_to_the_browser_that_asked,
    test_wallet_page_same_device_and_answer_command_cross_device,
    mdoc_pids_link_a_bis_number_or_log_in_with_the_insz,
    hostile_mdoc_presentations_are_refused_and_store_nothing,
);

struct Wallets {
    s: TestServer,
    provider: Arc<PidProvider>,
    _anchors: tempfile::TempDir,
}

async fn start(backend: Backend) -> Wallets {
    let provider = provider::start("Mock PID Provider").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("pid-anchors.pem");
    std::fs::write(&anchors, provider.trust_anchor_pem()).unwrap();
    let (bis_url, _) = bis_register::start().await;
    let s = TestServer::start_with(backend, |cfg| {
        cfg.eudiw.enabled = true;
        cfg.eudiw.trust_anchors = Some(anchors);
        cfg.bis_register.url = Some(url::Url::parse(&bis_url).unwrap());
    })
    .await;
    Wallets { s, provider, _anchors: dir }
}

fn wallet(p: &PidProvider, who: &PidHolder, now: i64) -> TestWallet {
    TestWallet::new(p, who, now, &IssueOptions::default()).unwrap()
}

/// From an authorization request to the wallet page: (the `openid4vp://` URI, the continue
/// path, the poll path).
async fn to_wallet_page(w: &Wallets, b: &Browser, authorize: &str) -> (String, String, String) {
    let chooser = b.follow(&w.s.base, b.get(authorize).await).await;
    assert!(chooser.body.contains("/login/eudiw"), "chooser offers the wallet: {}", chooser.body);
    let page = b.get(&w.s.url("/login/eudiw")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let doc = page.html();
    let attr = |sel: &str, a: &str| {
        let s = scraper::Selector::parse(sel).unwrap();
        doc.select(&s).next().and_then(|e| e.value().attr(a)).unwrap().to_string()
    };
    let uri = attr("[data-wallet-uri]", "data-wallet-uri");
    assert!(uri.starts_with("openid4vp://?client_id=x509_san_dns%3A127.0.0.1"), "{uri}");
    assert!(attr("img.qr", "src").starts_with("data:image/svg+xml;base64,"), "a QR code");
    (uri, attr("[data-next]", "data-next"), attr("[data-poll]", "data-poll"))
}

/// Rows that a refused presentation must not add: persons, identity links, accepted
/// presentations, Bis requests.
async fn footprint(s: &TestServer) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.handle.cfg.database.url).await.unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT COUNT(*) FROM persons",
        "SELECT COUNT(*) FROM identities",
        "SELECT COUNT(*) FROM seen_once WHERE key LIKE 'eudiw-vp:%'",
        "SELECT COUNT(*) FROM bis_requests",
    ] {
        out.push(sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap());
    }
    pool.close().await;
    out
}

async fn dutch_pid_links_a_bis_number_then_logs_in_directly(backend: Backend) {
    let w = start(backend).await;
    let c = w.s.add_client("portal", "portal").await;
    let sanne = wallet(&w.provider, &provider::NL_SANNE, w.s.now());
    let b = Browser::new();
    let pk = pkce();
    let (uri, next, poll) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pk, &[])).await;
    let polled: serde_json::Value =
        b.http.get(w.s.url(&poll)).send().await.unwrap().json().await.unwrap();
    assert_eq!(polled["status"], "waiting");
    let req = sanne.fetch_request(&uri).await.unwrap();
    assert_eq!(req.claims["response_type"], "vp_token");
    assert_eq!(
        req.claims["dcql_query"]["credentials"][0]["meta"]["vct_values"][0],
        "urn:eudi:pid:1"
    );
    // The request object is served once.
    let again = reqwest::get(uri_param(&uri, "request_uri")).await.unwrap();
    assert_eq!(again.status(), 404);
    let answer = sanne.respond(&req, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let redirect = answer.body["redirect_uri"].as_str().unwrap().to_string();
    assert!(redirect.ends_with(&next), "{redirect} vs {next}");
    let polled: serde_json::Value =
        b.http.get(w.s.url(&poll)).send().await.unwrap().json().await.unwrap();
    assert_eq!(polled["status"], "answered");
    let link = b.follow(&w.s.base, b.get(&redirect).await).await;
    assert!(link.url.ends_with("/link"), "{} {}", link.url, link.body);
    assert!(link.body.contains("de Vries"));
    let done = b.submit(&w.s.base, &link, "/link", &[("bis", bis_register::DUTCH_PATIENT)]).await;
    let loc = done.location().unwrap_or_else(|| panic!("{} {}", done.status, done.body));
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
    let t: serde_json::Value =
        exchange(&w.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/high");
    assert_eq!(claims["amr"], serde_json::json!(["eudiw"]));
    assert_eq!(claims["eudiw_issuing_country"], "NL");
    assert_eq!(claims["insz"], bis_register::DUTCH_PATIENT);
    assert!(claims.get("eidas_person_identifier").is_none());
    // The next login with the wallet needs no linking.
    let b2 = Browser::new();
    let pk2 = pkce();
    let (uri2, _, _) = to_wallet_page(&w, &b2, &authorize_url(&w.s, &c, &pk2, &[])).await;
    let a2 = sanne.answer(&uri2, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!(a2.status, 200, "{}", a2.body);
    let back = b2.follow(&w.s.base, b2.get(a2.body["redirect_uri"].as_str().unwrap()).await).await;
    let loc2 = back.location().unwrap_or_else(|| panic!("{} {}", back.status, back.body));
    assert!(loc2.starts_with(&c.redirect_uri), "{loc2}");
    // The status list was fetched once and then taken from the cache (its ttl is 300 s).
    assert_eq!(w.provider.status_fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
}

fn uri_param(uri: &str, name: &str) -> String {
    idp_mocks::eudiw::wallet::uri_params(uri).unwrap()[name].clone()
}

async fn belgian_pid_with_insz_logs_in_and_opens_ehealth(backend: Backend) {
    let w = start(backend).await;
    let c = w.s.add_client("ehealth-app", "ehealth").await;
    let anna = wallet(&w.provider, &provider::BE_ANNA, w.s.now());
    let b = Browser::new();
    let pk = pkce();
    let (uri, _, _) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pk, &[])).await;
    let a = anna.answer(&uri, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let back = b.follow(&w.s.base, b.get(a.body["redirect_uri"].as_str().unwrap()).await).await;
    let loc = back.location().unwrap_or_else(|| panic!("{} {}", back.status, back.body));
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
    let t: serde_json::Value =
        exchange(&w.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["insz"], "85073003328");
    assert_eq!(claims["eudiw_issuing_country"], "BE");
    assert_eq!(claims["amr"], serde_json::json!(["eudiw"]));
}

async fn hostile_presentations_are_refused_and_store_nothing(backend: Backend) {
    let w = start(backend).await;
    let c = w.s.add_client("portal", "portal").await;
    let now = w.s.now();
    let stranger = provider::start("Other PID Provider").await.unwrap();
    let look_alike = provider::start("Mock PID Provider").await.unwrap();
    let sanne = wallet(&w.provider, &provider::NL_SANNE, now);
    let expired = TestWallet::new(
        &w.provider,
        &provider::NL_SANNE,
        now - 400 * 86_400,
        &IssueOptions { exp_in: Some(365 * 86_400), ..Default::default() },
    )
    .unwrap();
    let cases: Vec<(&str, &TestWallet, Tweaks, &str)> = vec![
        (
            "wrong nonce",
            &sanne,
            Tweaks { nonce: Some("n".into()), ..Default::default() },
            "wrong_nonce",
        ),
        (
            "wrong audience",
            &sanne,
            Tweaks { aud: Some("x509_san_dns:evil.example".into()), ..Default::default() },
            "wrong_audience",
        ),
        (
            "no key binding",
            &sanne,
            Tweaks { no_key_binding: true, ..Default::default() },
            "no_key_binding",
        ),
        (
            "key binding by another key",
            &sanne,
            Tweaks { key_binding_by_other_key: true, ..Default::default() },
            "key_binding",
        ),
        (
            "disclosure not in _sd",
            &sanne,
            Tweaks { extra_disclosure: true, ..Default::default() },
            "undisclosed_digest",
        ),
        (
            "tampered disclosure",
            &sanne,
            Tweaks { tamper_disclosure: true, ..Default::default() },
            "undisclosed_digest",
        ),
        (
            "birth date withheld",
            &sanne,
            Tweaks { withhold: vec!["birth_date"], ..Default::default() },
            "claim_missing",
        ),
        ("expired PID", &expired, Tweaks::default(), "expired"),
    ];
    let untrusted = wallet(&stranger, &provider::NL_SANNE, now);
    let lookalike = wallet(&look_alike, &provider::NL_SANNE, now);
    let revoked = wallet(&w.provider, &provider::NL_REVOKED, now);
    let more: Vec<(&str, &TestWallet, Tweaks, &str)> = vec![
        ("untrusted issuer", &untrusted, Tweaks::default(), "untrusted_issuer"),
        ("look-alike issuer", &lookalike, Tweaks::default(), "untrusted_issuer"),
        ("revoked PID", &revoked, Tweaks::default(), "revoked"),
    ];
    let before = footprint(&w.s).await;
    for (name, wallet, tweaks, code) in cases.into_iter().chain(more) {
        let b = Browser::new();
        let (uri, next, _) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pkce(), &[])).await;
        let a = wallet.answer(&uri, &tweaks, w.s.now()).await.unwrap();
        assert_eq!(a.status, 400, "{name} accepted: {}", a.body);
        assert_eq!(a.body["error_description"], code, "{name}: {}", a.body);
        let page = b.get(&w.s.url(&next)).await;
        assert_eq!(page.status, 400, "{name}: {}", page.body);
        assert_eq!(page.data_error().as_deref(), Some(code), "{name}");
        assert_eq!(footprint(&w.s).await, before, "{name} stored something");
    }
}

async fn unbound_answers_are_refused_and_store_nothing(backend: Backend) {
    let w = start(backend).await;
    let c = w.s.add_client("portal", "portal").await;
    let sanne = wallet(&w.provider, &provider::NL_SANNE, w.s.now());
    let before = footprint(&w.s).await;
    // Unencrypted where direct_post.jwt was asked.
    let b = Browser::new();
    let (uri, next, _) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pkce(), &[])).await;
    let req = sanne.fetch_request(&uri).await.unwrap();
    let plain = Tweaks { unencrypted: true, ..Default::default() };
    let a = sanne.respond(&req, &plain, w.s.now()).await.unwrap();
    assert_eq!((a.status, a.body["error_description"].as_str()), (400, Some("unencrypted")));
    // Another request's state, encrypted to this request's key.
    let other = Browser::new();
    let (uri2, _, _) = to_wallet_page(&w, &other, &authorize_url(&w.s, &c, &pkce(), &[])).await;
    let req2 = sanne.fetch_request(&uri2).await.unwrap();
    let crossed = Tweaks { state: Some(req2.state.clone()), ..Default::default() };
    let a = sanne.respond(&req, &crossed, w.s.now()).await.unwrap();
    assert_eq!((a.status, a.body["error_description"].as_str()), (400, Some("wrong_state")));
    // Nothing was kept with the request: the browser still waits.
    let waiting = b.get(&w.s.url(&next)).await;
    assert_eq!(waiting.data_error().as_deref(), Some("waiting"), "{}", waiting.body);
    assert_eq!(footprint(&w.s).await, before);
    // The genuine answer is accepted once; the same answer again is a replay, and the same
    // presentation in another request fails that request's nonce.
    let a = sanne.respond(&req, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let a = sanne.respond(&req, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!((a.status, a.body["error_description"].as_str()), (400, Some("replayed")));
    let a = sanne
        .respond(&req2, &Tweaks { nonce: Some(req.nonce.clone()), ..Default::default() }, w.s.now())
        .await
        .unwrap();
    assert_eq!((a.status, a.body["error_description"].as_str()), (400, Some("wrong_nonce")));
    // A key no request of ours has, and an answer after the request's ten minutes.
    let b3 = Browser::new();
    let (uri3, _, _) = to_wallet_page(&w, &b3, &authorize_url(&w.s, &c, &pkce(), &[])).await;
    let req3 = sanne.fetch_request(&uri3).await.unwrap();
    let mut stranger = req3.enc_jwk.clone();
    stranger["kid"] = serde_json::json!("no-such-key");
    let t = Tweaks { encrypt_to: Some(stranger), ..Default::default() };
    let a = sanne.respond(&req3, &t, w.s.now()).await.unwrap();
    assert_eq!((a.status, a.body["error_description"].as_str()), (400, Some("unsolicited")));
    w.s.handle.clock.advance(cozo_broker::eudiw::REQUEST_TTL_S + 1);
    let a = sanne.respond(&req3, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!((a.status, a.body["error_description"].as_str()), (400, Some("expired")));
}

async fn the_answer_belongs_to_the_browser_that_asked(backend: Backend) {
    let w = start(backend).await;
    let c = w.s.add_client("portal", "portal").await;
    let anna = wallet(&w.provider, &provider::BE_ANNA, w.s.now());
    let victim = Browser::new();
    let (uri, next, poll) =
        to_wallet_page(&w, &victim, &authorize_url(&w.s, &c, &pkce(), &[])).await;
    let a = anna.answer(&uri, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    // Another browser learns nothing and cannot continue.
    let attacker = Browser::new();
    attacker.get(&w.s.url("/login/key")).await;
    let polled: serde_json::Value =
        attacker.http.get(w.s.url(&poll)).send().await.unwrap().json().await.unwrap();
    assert_eq!(polled["status"], "unknown");
    let page = attacker.get(&w.s.url(&next)).await;
    assert_eq!(page.data_error().as_deref(), Some("other-session"));
    // The browser that asked continues, once.
    let done = victim.follow(&w.s.base, victim.get(&w.s.url(&next)).await).await;
    assert!(done.location().is_some_and(|l| l.starts_with(&c.redirect_uri)), "{}", done.body);
    let again = victim.get(&w.s.url(&next)).await;
    assert_eq!(again.data_error().as_deref(), Some("other-session"));
}

/// The demo's path: "Open my wallet" goes to the test wallet's page (`[eudiw] wallet_url`),
/// sharing there sends the browser back to the broker; the QR code's URI is answered through the
/// wallet's `/answer` (what `mock-eudi-wallet answer` calls) while the page polls.
async fn test_wallet_page_same_device_and_answer_command_cross_device(backend: Backend) {
    let provider = provider::start("Mock PID Provider").await.unwrap();
    let wallet_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wallet_url = format!("http://127.0.0.1:{}/", wallet_listener.local_addr().unwrap().port());
    tokio::spawn(idp_mocks::eudiw::wallet::serve(wallet_listener, provider.clone()));
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("pid-anchors.pem");
    std::fs::write(&anchors, provider.trust_anchor_pem()).unwrap();
    let (bis_url, _) = bis_register::start().await;
    let s = TestServer::start_with(backend, |cfg| {
        cfg.eudiw.enabled = true;
        cfg.eudiw.trust_anchors = Some(anchors);
        cfg.eudiw.wallet_url = Some(url::Url::parse(&wallet_url).unwrap());
        cfg.bis_register.url = Some(url::Url::parse(&bis_url).unwrap());
    })
    .await;
    let w = Wallets { s, provider, _anchors: dir };
    let c = w.s.add_client("portal", "portal").await;
    // Same device.
    let b = Browser::new();
    let chooser = b.follow(&w.s.base, b.get(&authorize_url(&w.s, &c, &pkce(), &[])).await).await;
    assert!(chooser.body.contains("/login/eudiw"));
    let page = b.get(&w.s.url("/login/eudiw")).await;
    let link = {
        let doc = page.html();
        let sel = scraper::Selector::parse("a[data-wallet-uri]").unwrap();
        doc.select(&sel).next().unwrap().value().attr("href").unwrap().to_string()
    };
    assert!(link.starts_with(&wallet_url), "{link}");
    let at_wallet = b.get(&link).await;
    assert_eq!(at_wallet.status, 200, "{}", at_wallet.body);
    let shared = b
        .submit(wallet_url.trim_end_matches('/'), &at_wallet, "/share", &[("holder", "be-anna")])
        .await;
    assert_eq!(shared.status, 303, "{}", shared.body);
    let back = b.follow(&w.s.base, b.get(&shared.location().unwrap()).await).await;
    assert!(back.location().is_some_and(|l| l.starts_with(&c.redirect_uri)), "{}", back.body);
    // Cross device: the QR code's URI answered by the wallet's command endpoint.
    let b = Browser::new();
    let (uri, next, poll) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pkce(), &[])).await;
    let answered: serde_json::Value = reqwest::Client::new()
        .post(format!("{wallet_url}answer"))
        .json(&serde_json::json!({ "holder": "nl-sanne", "uri": uri }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answered["status"], 200, "{answered}");
    let polled: serde_json::Value =
        b.http.get(w.s.url(&poll)).send().await.unwrap().json().await.unwrap();
    assert_eq!(polled["status"], "answered");
    let link = b.follow(&w.s.base, b.get(&w.s.url(&next)).await).await;
    assert!(link.url.ends_with("/link"), "{} {}", link.url, link.body);
    // Same device, the mdoc chosen on the wallet's page.
    let b = Browser::new();
    b.get(&authorize_url(&w.s, &c, &pkce(), &[])).await;
    let page = b.get(&w.s.url("/login/eudiw")).await;
    let link = {
        let doc = page.html();
        let sel = scraper::Selector::parse("a[data-wallet-uri]").unwrap();
        doc.select(&sel).next().unwrap().value().attr("href").unwrap().to_string()
    };
    let at_wallet = b.get(&link).await;
    assert!(at_wallet.body.contains("mso_mdoc"), "{}", at_wallet.body);
    let fields = [("holder", "be-anna"), ("format", "mso_mdoc")];
    let shared = b.submit(wallet_url.trim_end_matches('/'), &at_wallet, "/share", &fields).await;
    assert_eq!(shared.status, 303, "{}", shared.body);
    let back = b.follow(&w.s.base, b.get(&shared.location().unwrap()).await).await;
    assert!(back.location().is_some_and(|l| l.starts_with(&c.redirect_uri)), "{}", back.body);
    // Cross device, `mock-eudi-wallet answer --format mso_mdoc`.
    let b = Browser::new();
    let (uri, next, _) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pkce(), &[])).await;
    let answered: serde_json::Value = reqwest::Client::new()
        .post(format!("{wallet_url}answer"))
        .json(&serde_json::json!({ "holder": "be-anna", "uri": uri, "format": "mso_mdoc" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answered["status"], 200, "{answered}");
    let back = b.follow(&w.s.base, b.get(&w.s.url(&next)).await).await;
    assert!(back.location().is_some_and(|l| l.starts_with(&c.redirect_uri)), "{}", back.body);
}

fn mdoc() -> Tweaks {
    Tweaks { mso_mdoc: true, ..Default::default() }
}

/// The alternative credential set: a Dutch mdoc PID goes through first-login linking, then logs
/// in directly; a Belgian one logs in with its INSZ.
async fn mdoc_pids_link_a_bis_number_or_log_in_with_the_insz(backend: Backend) {
    let w = start(backend).await;
    let c = w.s.add_client("portal", "portal").await;
    let sanne = wallet(&w.provider, &provider::NL_SANNE, w.s.now());
    let b = Browser::new();
    let pk = pkce();
    let (uri, next, _) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pk, &[])).await;
    let req = sanne.fetch_request(&uri).await.unwrap();
    let dcql = &req.claims["dcql_query"];
    assert_eq!(dcql["credentials"][1]["format"], "mso_mdoc");
    assert_eq!(dcql["credentials"][1]["meta"]["doctype_value"], "eu.europa.ec.eudi.pid.1");
    assert_eq!(dcql["credential_sets"][0]["options"], serde_json::json!([["pid"], ["pid_mdoc"]]));
    let a = sanne.respond(&req, &mdoc(), w.s.now()).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let redirect = a.body["redirect_uri"].as_str().unwrap().to_string();
    assert!(redirect.ends_with(&next), "{redirect} vs {next}");
    let link = b.follow(&w.s.base, b.get(&redirect).await).await;
    assert!(link.url.ends_with("/link"), "{} {}", link.url, link.body);
    assert!(link.body.contains("de Vries"));
    let done = b.submit(&w.s.base, &link, "/link", &[("bis", bis_register::DUTCH_PATIENT)]).await;
    let loc = done.location().unwrap_or_else(|| panic!("{} {}", done.status, done.body));
    let t: serde_json::Value =
        exchange(&w.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["insz"], bis_register::DUTCH_PATIENT);
    assert_eq!(claims["eudiw_issuing_country"], "NL");
    // The same person's SD-JWT VC and mdoc have the same link key: no second linking.
    let b2 = Browser::new();
    let (uri2, _, _) = to_wallet_page(&w, &b2, &authorize_url(&w.s, &c, &pkce(), &[])).await;
    let a2 = sanne.answer(&uri2, &Tweaks::default(), w.s.now()).await.unwrap();
    assert_eq!(a2.status, 200, "{}", a2.body);
    let back = b2.follow(&w.s.base, b2.get(a2.body["redirect_uri"].as_str().unwrap()).await).await;
    let loc2 = back.location().unwrap_or_else(|| panic!("{} {}", back.status, back.body));
    assert!(loc2.starts_with(&c.redirect_uri), "{loc2}");
    // A Belgian mdoc PID carries the INSZ.
    let anna = wallet(&w.provider, &provider::BE_ANNA, w.s.now());
    let b3 = Browser::new();
    let pk3 = pkce();
    let (uri3, _, _) = to_wallet_page(&w, &b3, &authorize_url(&w.s, &c, &pk3, &[])).await;
    let a3 = anna.answer(&uri3, &mdoc(), w.s.now()).await.unwrap();
    assert_eq!(a3.status, 200, "{}", a3.body);
    let back = b3.follow(&w.s.base, b3.get(a3.body["redirect_uri"].as_str().unwrap()).await).await;
    let loc3 = back.location().unwrap_or_else(|| panic!("{} {}", back.status, back.body));
    let t: serde_json::Value =
        exchange(&w.s, &c, &query(&loc3)["code"], &pk3.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["insz"], "85073003328");
    assert_eq!(claims["amr"], serde_json::json!(["eudiw"]));
}

async fn hostile_mdoc_presentations_are_refused_and_store_nothing(backend: Backend) {
    let w = start(backend).await;
    let c = w.s.add_client("portal", "portal").await;
    let now = w.s.now();
    let stranger = provider::start("Other PID Provider").await.unwrap();
    let look_alike = provider::start("Mock PID Provider").await.unwrap();
    let sanne = wallet(&w.provider, &provider::NL_SANNE, now);
    let expired = TestWallet::new(
        &w.provider,
        &provider::NL_SANNE,
        now - 400 * 86_400,
        &IssueOptions { exp_in: Some(365 * 86_400), ..Default::default() },
    )
    .unwrap();
    let untrusted = wallet(&stranger, &provider::NL_SANNE, now);
    let lookalike = wallet(&look_alike, &provider::NL_SANNE, now);
    let revoked = wallet(&w.provider, &provider::NL_REVOKED, now);
    let no_status = TestWallet::new(
        &w.provider,
        &provider::NL_SANNE,
        now,
        &IssueOptions { no_status: true, ..Default::default() },
    )
    .unwrap();
    let m = |t: Tweaks| Tweaks { mso_mdoc: true, ..t };
    let cases: Vec<(&str, &TestWallet, Tweaks, &str)> = vec![
        (
            "tampered item (digest mismatch)",
            &sanne,
            m(Tweaks { tamper_disclosure: true, ..Default::default() }),
            "undisclosed_digest",
        ),
        (
            "device signature over another nonce",
            &sanne,
            m(Tweaks { nonce: Some("another-nonce".into()), ..Default::default() }),
            "key_binding",
        ),
        (
            "device signature for another verifier",
            &sanne,
            m(Tweaks { aud: Some("x509_san_dns:evil.example".into()), ..Default::default() }),
            "key_binding",
        ),
        (
            "device signature by another key",
            &sanne,
            m(Tweaks { key_binding_by_other_key: true, ..Default::default() }),
            "key_binding",
        ),
        (
            "birth date withheld",
            &sanne,
            m(Tweaks { withhold: vec!["birth_date"], ..Default::default() }),
            "claim_missing",
        ),
        ("untrusted issuer", &untrusted, mdoc(), "untrusted_issuer"),
        ("look-alike issuer", &lookalike, mdoc(), "untrusted_issuer"),
        ("expired MSO", &expired, mdoc(), "expired"),
        ("revoked PID", &revoked, mdoc(), "revoked"),
        ("MSO without a status list", &no_status, mdoc(), "status_unknown"),
        ("SD-JWT VC without a status list", &no_status, Tweaks::default(), "status_unknown"),
    ];
    let before = footprint(&w.s).await;
    for (name, wallet, tweaks, code) in cases {
        let b = Browser::new();
        let (uri, next, _) = to_wallet_page(&w, &b, &authorize_url(&w.s, &c, &pkce(), &[])).await;
        let a = wallet.answer(&uri, &tweaks, w.s.now()).await.unwrap();
        assert_eq!(a.status, 400, "{name} accepted: {}", a.body);
        assert_eq!(a.body["error_description"], code, "{name}: {}", a.body);
        let page = b.get(&w.s.url(&next)).await;
        assert_eq!(page.status, 400, "{name}: {}", page.body);
        assert_eq!(page.data_error().as_deref(), Some(code), "{name}");
        assert_eq!(footprint(&w.s).await, before, "{name} stored something");
    }
}
