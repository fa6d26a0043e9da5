//! eIDAS login through the mock node (signed, encrypted SAML), first-login linking against the
//! mock Bis register, and the hostile cases (SPEC §6).

use crate::both_backends;
use crate::common::*;
use idp_mocks::bis_register;
use idp_mocks::eidas::{self as node, EidasNodeConfig, MockEidasNode, Outcome, Tamper};

both_backends!(
    first_login_links_the_bis_number_then_digid_alone_suffices,
    rsassa_pss_and_rsa_oaep_node_links_then_logs_in,
    hostile_responses_are_refused_and_change_nothing,
    replayed_and_foreign_session_responses_are_refused,
    cancel_failure_and_low_level_get_a_clear_page,
    linking_refuses_other_persons_and_locks_after_five_tries,
    no_bis_number_files_a_request,
    an_assertion_answers_one_request_once,
);

struct Eidas {
    s: TestServer,
    node: MockEidasNode,
}

async fn start(backend: Backend) -> Eidas {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let (_, node) = node::start(EidasNodeConfig {
        sp_metadata_url: Some(format!("{base}/saml/eidas/metadata")),
        countries: node_kinds(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (bis_url, _bis) = bis_register::start().await;
    let metadata = node.metadata_url();
    let s = TestServer::start_on(backend, listener, |cfg| {
        cfg.eidas.node_metadata = Some(metadata);
        cfg.bis_register.url = Some(url::Url::parse(&bis_url).unwrap());
    })
    .await;
    Eidas { s, node }
}

/// As `make demo`: NL's node signs with ECDSA and agrees keys with ECDH-ES, DE's signs with
/// RSASSA-PSS and transports keys with RSA-OAEP (others: ECDSA + RSA-OAEP).
fn node_kinds() -> Vec<node::CountryCrypto> {
    vec![
        node::CountryCrypto {
            country: "NL".into(),
            signing: node::NodeSigning::Ecdsa,
            key_transport: node::KeyTransport::EcdhEs,
        },
        node::CountryCrypto {
            country: "DE".into(),
            signing: node::NodeSigning::RsaPss,
            key_transport: node::KeyTransport::RsaOaep,
        },
    ]
}

/// From an authorization request to the node: returns (request id at the node, RelayState).
async fn to_node(e: &Eidas, b: &Browser, authorize: &str, country: &str) -> (String, String) {
    let chooser = b.follow(&e.s.base, b.get(authorize).await).await;
    assert!(chooser.body.contains("/login/eidas"), "chooser offers EU login");
    let countries = b.get(&e.s.url("/login/eidas")).await;
    assert!(countries.body.contains(&format!("country={country}")));
    let redirect = b.get(&e.s.url(&format!("/login/eidas?country={country}"))).await;
    assert_eq!(redirect.status, 303, "{}", redirect.body);
    let loc = redirect.location().unwrap();
    assert!(loc.starts_with(&e.node.sso_url()), "{loc}");
    let q = query(&loc);
    assert_eq!(q["country"], country);
    assert!(q.contains_key("Signature") && q.contains_key("SigAlg"));
    // The node checks the request's signature and remembers it.
    let at_node =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = at_node.get(&loc).send().await.unwrap();
    assert!(r.status().is_redirection() || r.status().is_success(), "node refused: {}", r.status());
    let req = e.node.last_request().expect("the node received the request");
    assert!(req.force_authn);
    assert_eq!(req.sp_type.as_deref(), Some("public"));
    let names: Vec<&str> = req.requested_attributes.iter().map(|a| a.name.as_str()).collect();
    assert!(names.iter().any(|n| n.ends_with("/PersonIdentifier")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("/DateOfBirth")), "{names:?}");
    (req.id, q["RelayState"].clone())
}

async fn post_acs(e: &Eidas, b: &Browser, response: &str, relay: &str) -> Page {
    b.post(
        &e.s.url("/saml/eidas/acs"),
        &[("SAMLResponse".into(), response.into()), ("RelayState".into(), relay.into())],
    )
    .await
}

async fn first_login_links_the_bis_number_then_digid_alone_suffices(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let citizen = node::citizen("nl-substantial").unwrap();
    let b = Browser::new();
    let pk = pkce();
    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pk, &[]), "NL").await;
    let resp = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
    let xml = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &resp).unwrap(),
    )
    .unwrap();
    assert!(xml.contains("ecdsa-sha256") && xml.contains("xmlenc11#ECDH-ES"), "{xml}");
    let acs = post_acs(&e, &b, &resp, &relay).await;
    assert_eq!(acs.status, 303, "{}", acs.body);
    let link = b.follow(&e.s.base, acs).await;
    assert!(link.url.ends_with("/link"), "{}", link.url);
    assert!(link.body.contains(citizen.family_name));
    let done = b.submit(&e.s.base, &link, "/link", &[("bis", bis_register::DUTCH_PATIENT)]).await;
    let loc = done.location().unwrap_or_else(|| panic!("{} {}", done.status, done.body));
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
    let t: serde_json::Value =
        exchange(&e.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/substantial");
    assert_eq!(claims["amr"], serde_json::json!(["eidas"]));
    assert_eq!(claims["insz"], bis_register::DUTCH_PATIENT);
    assert_eq!(claims["eidas_person_identifier"], citizen.person_identifier);

    // Next time: DigiD alone, no linking.
    let b = Browser::new();
    let pk = pkce();
    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pk, &[]), "NL").await;
    let resp = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
    let back = b.follow(&e.s.base, post_acs(&e, &b, &resp, &relay).await).await;
    let loc = back.location().expect("straight back to the app");
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
}

/// A citizen of an RSA-keyed node (RSASSA-PSS signatures, RSA-OAEP-3072 key transport): first
/// login links the Bis number, the next one goes straight back. (NL, above, is the ECDSA +
/// ECDH-ES kind.)
async fn rsassa_pss_and_rsa_oaep_node_links_then_logs_in(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let citizen = node::citizen("de-substantial").unwrap();
    let b = Browser::new();
    let pk = pkce();
    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pk, &[]), "DE").await;
    let resp = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
    let xml = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &resp).unwrap(),
    )
    .unwrap();
    assert!(xml.contains("sha256-rsa-MGF1") && xml.contains("xmlenc11#rsa-oaep"), "{xml}");
    let acs = post_acs(&e, &b, &resp, &relay).await;
    assert_eq!(acs.status, 303, "{}", acs.body);
    let link = b.follow(&e.s.base, acs).await;
    assert!(link.url.ends_with("/link"), "{}", link.url);
    let done = b.submit(&e.s.base, &link, "/link", &[("bis", bis_register::GERMAN)]).await;
    let loc = done.location().unwrap_or_else(|| panic!("{} {}", done.status, done.body));
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
    let t: serde_json::Value =
        exchange(&e.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    let claims = jwt_claims(t["id_token"].as_str().unwrap());
    assert_eq!(claims["insz"], bis_register::GERMAN);
    assert_eq!(claims["eidas_person_identifier"], citizen.person_identifier);

    let b = Browser::new();
    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pkce(), &[]), "DE").await;
    let resp = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
    let back = b.follow(&e.s.base, post_acs(&e, &b, &resp, &relay).await).await;
    let loc = back.location().expect("straight back to the app");
    assert!(loc.starts_with(&c.redirect_uri), "{loc}");
}

async fn hostile_responses_are_refused_and_change_nothing(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let citizen = node::citizen("nl-substantial").unwrap();
    for tamper in Tamper::ALL {
        let b = Browser::new();
        let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pkce(), &[]), "NL").await;
        let resp = e.node.respond(&id, citizen, Outcome::Tampered(tamper)).await.unwrap();
        let page = post_acs(&e, &b, &resp, &relay).await;
        assert_eq!(page.status, 400, "{tamper:?} accepted: {}", page.body);
        assert_eq!(page.data_error().as_deref(), Some("invalid"), "{tamper:?}");
        // The request is still open: the genuine answer is accepted afterwards.
        let good = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
        let ok = post_acs(&e, &b, &good, &relay).await;
        assert_eq!(ok.status, 303, "{tamper:?} changed something: {}", ok.body);
    }
    // Garbage, XXE and unsolicited answers.
    let b = Browser::new();
    let (_, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pkce(), &[]), "NL").await;
    let xxe = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>"#,
    );
    assert_eq!(post_acs(&e, &b, &xxe, &relay).await.status, 400);
    assert_eq!(post_acs(&e, &b, "not base64 at all!", &relay).await.status, 400);
    let unsolicited = post_acs(&e, &b, &xxe, "no-such-relay").await;
    assert_eq!(unsolicited.data_error().as_deref(), Some("unsolicited"));
}

async fn replayed_and_foreign_session_responses_are_refused(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let citizen = node::citizen("nl-substantial").unwrap();
    let victim = Browser::new();
    let (id, relay) = to_node(&e, &victim, &authorize_url(&e.s, &c, &pkce(), &[]), "NL").await;
    let resp = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
    // An attacker's browser posts the answer: it is checked, but only the session that sent the
    // request may continue with it.
    let attacker = Browser::new();
    attacker.get(&e.s.url("/login/key")).await; // has a session of its own
    let acs = post_acs(&e, &attacker, &resp, &relay).await;
    assert_eq!(acs.status, 303);
    let cont = attacker.get(&e.s.url(&acs.location().unwrap())).await;
    assert_eq!(cont.status, 400);
    assert_eq!(cont.data_error().as_deref(), Some("other-session"));
    // The same response again: a replay.
    let again = post_acs(&e, &victim, &resp, &relay).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.data_error().as_deref(), Some("replayed"));
}

async fn cancel_failure_and_low_level_get_a_clear_page(backend: Backend) {
    let e = start(backend).await;
    let ehealth = e.s.add_client("ehealth-app", "ehealth").await;
    let b = Browser::new();
    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &ehealth, &pkce(), &[]), "NL").await;
    assert_eq!(
        e.node.last_request().unwrap().minimum_level(),
        Some(node::Loa::Substantial),
        "eHealth's policy asks the node for substantial"
    );
    let citizen = node::citizen("nl-substantial").unwrap();
    let cancelled = e.node.respond(&id, citizen, Outcome::Cancelled).await.unwrap();
    let page = b.follow(&e.s.base, post_acs(&e, &b, &cancelled, &relay).await).await;
    assert_eq!(page.data_error().as_deref(), Some("cancelled"), "{}", page.body);

    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &ehealth, &pkce(), &[]), "NL").await;
    let failed = e.node.respond(&id, citizen, Outcome::Failure).await.unwrap();
    let page = b.follow(&e.s.base, post_acs(&e, &b, &failed, &relay).await).await;
    assert_eq!(page.data_error().as_deref(), Some("failed"));

    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &ehealth, &pkce(), &[]), "NL").await;
    let low = e.node.respond(&id, citizen, Outcome::Level(node::Loa::Low)).await.unwrap();
    let page = b.follow(&e.s.base, post_acs(&e, &b, &low, &relay).await).await;
    assert_eq!(page.data_error().as_deref(), Some("level_too_low"));
}

async fn linking_refuses_other_persons_and_locks_after_five_tries(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let citizen = node::citizen("nl-substantial").unwrap();
    let b = Browser::new();
    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pkce(), &[]), "NL").await;
    let resp = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
    let mut page = b.follow(&e.s.base, post_acs(&e, &b, &resp, &relay).await).await;
    // A valid but foreign Bis number (the German test person): neutral answer.
    page = b.submit(&e.s.base, &page, "/link", &[("bis", bis_register::GERMAN)]).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.data_error().as_deref(), Some("link-no-match"));
    // Not a valid number at all: the rule is named, and it is not counted.
    page = b.submit(&e.s.base, &page, "/link", &[("bis", "12345")]).await;
    assert_eq!(page.data_error().as_deref(), Some("insz-error-length"));
    for _ in 0..4 {
        page = b.submit(&e.s.base, &page, "/link", &[("bis", bis_register::FRENCH)]).await;
    }
    assert_eq!(page.status, 429);
    assert_eq!(page.data_error().as_deref(), Some("locked"));
    // Even the right number is refused now, and nothing was linked.
    page = b.submit(&e.s.base, &page, "/link", &[("bis", bis_register::DUTCH_PATIENT)]).await;
    assert_eq!(page.status, 429);
    assert!(e
        .s
        .handle
        .store
        .person_by_identity("eidas", citizen.person_identifier)
        .await
        .unwrap()
        .is_none());
}

async fn no_bis_number_files_a_request(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let citizen = node::citizen("nl-low").unwrap();
    let b = Browser::new();
    let (id, relay) = to_node(&e, &b, &authorize_url(&e.s, &c, &pkce(), &[]), "NL").await;
    let resp = e.node.respond(&id, citizen, Outcome::Success).await.unwrap();
    let page = b.follow(&e.s.base, post_acs(&e, &b, &resp, &relay).await).await;
    let done =
        b.submit(&e.s.base, &page, "/link/request-bis", &[("email", "jan@example.nl")]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("jan@example.nl"));
    assert_eq!(e.s.handle.store.count_bis_requests(citizen.person_identifier).await.unwrap(), 1);
    let mail = &e.s.handle.store.outbox(1).await.unwrap()[0];
    assert_eq!(mail.channel, "mail");
    assert_eq!(mail.recipient, "jan@example.nl");
}

#[tokio::test]
async fn sp_metadata_is_signed_and_names_both_certificates() {
    let e = start(Backend::Sqlite).await;
    let xml = reqwest::get(e.s.url("/saml/eidas/metadata")).await.unwrap().text().await.unwrap();
    assert!(xml.contains("SPSSODescriptor"));
    assert!(xml.contains("use=\"signing\"") && xml.contains("use=\"encryption\""));
    assert_eq!(xml.matches("use=\"encryption\"").count(), 2, "RSA and EC encryption keys");
    assert!(xml.contains("xmlenc11#ECDH-ES") && xml.contains("sha256-rsa-MGF1"));
    assert!(xml.contains("Signature"));
}

/// The ACS's one write (replay-cache row and answer): an assertion seen once is refused for any
/// other request, which stays unanswered; a request is answered once; an answer without an
/// assertion (a cancel) needs no cache row. Only concurrent posts reach the first case over
/// HTTP (a lone replay is refused when the request is read), so it is driven on the store.
async fn an_assertion_answers_one_request_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let store = &s.handle.store;
    let now = 1_900_000_000;
    for id in ["r1", "r2", "r3"] {
        let row = cozo_broker::store::SamlRequestRow {
            id: id.into(),
            relay: format!("relay-{id}"),
            session_ref: "session".into(),
            min_level: cozo_broker::assurance::AssuranceLevel::Substantial,
            country: "NL".into(),
            created_at: now,
            expires_at: now + 900,
            answered_at: None,
            result: None,
            consumed_at: None,
        };
        store.insert_saml_request(&row).await.unwrap();
    }
    let seen = Some(("saml-assertion:_a1", now + 600));
    assert!(store.answer_saml_request("r1", "{}", seen, now).await.unwrap());
    let other = Some(("saml-assertion:_a2", now + 600));
    assert!(!store.answer_saml_request("r1", "{}", other, now).await.unwrap(), "answered before");
    assert!(!store.answer_saml_request("r2", "{}", seen, now).await.unwrap(), "assertion seen");
    let r2 = store.saml_request_by_relay("relay-r2").await.unwrap().unwrap();
    assert_eq!((r2.answered_at, r2.result), (None, None), "the refused answer changed nothing");
    assert!(store.answer_saml_request("r3", "{}", None, now).await.unwrap(), "a cancel");
    let r1 = store.saml_request_by_relay("relay-r1").await.unwrap().unwrap();
    assert_eq!(r1.answered_at, Some(now));
}
