//! Belgian eID card login over real TLS with client certificates from the test eID CA: RSA and
//! EC cards, TLS 1.2 and 1.3, and every kind of refused card (SPEC §6).

use crate::both_backends;
use crate::common::*;
use idp_mocks::eid_ca::TestPki;
use reqwest::tls::Version;

both_backends!(valid_cards_log_in_and_bad_cards_get_a_clear_page);

struct Eid {
    s: TestServer,
    pki: TestPki,
    _dir: tempfile::TempDir,
}

async fn start(backend: Backend) -> Eid {
    let pki = TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write_to(dir.path()).unwrap();
    // A free port for the eID listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bundle = dir.path().join("ca-bundle.pem");
    let crl = dir.path().join("crl.pem");
    let s = TestServer::start_with(backend, |cfg| {
        cfg.eid.ca_bundle = Some(bundle);
        cfg.eid.crl = cozo_broker::config::PathList::One(crl);
        cfg.eid.listen = format!("127.0.0.1:{port}").parse().unwrap();
        cfg.eid.public_url = url::Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    })
    .await;
    Eid { s, pki, _dir: dir }
}

/// A card reader: presents a certificate (or none) over TLS of the given version.
fn reader(cert_and_key: Option<(String, String)>, version: Version) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .min_tls_version(version)
        .max_tls_version(version);
    if let Some((cert, key)) = cert_and_key {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}\n{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// Chooser → listener with the card → back to the broker; returns the broker's last answer.
async fn card_login(
    e: &Eid,
    b: &Browser,
    authorize: &str,
    card: Option<(String, String)>,
    v: Version,
) -> Page {
    let chooser = b.follow(&e.s.base, b.get(authorize).await).await;
    assert!(chooser.body.contains("/login/eid"), "chooser offers the eID card");
    let to_listener = b.get(&e.s.url("/login/eid")).await;
    let loc = to_listener.location().unwrap();
    assert!(loc.starts_with("https://127.0.0.1:"), "{loc}");
    let r = reader(card, v).get(&loc).header("accept-language", "en").send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap();
    match headers.get("location").and_then(|l| l.to_str().ok()) {
        Some(back) if status.is_redirection() => b.get(back).await,
        _ => Page { status, url: loc, headers, body },
    }
}

async fn valid_cards_log_in_and_bad_cards_get_a_clear_page(backend: Backend) {
    let e = start(backend).await;
    let c = e.s.add_client("portal", "portal").await;
    let card = |key: &str, sign: bool| {
        let k = e.pki.card(key).unwrap_or_else(|| panic!("test card {key}"));
        if sign {
            Some((k.sign_cert_pem.clone(), k.sign_key_pem.clone()))
        } else {
            Some((k.chain_pem.clone(), k.auth_key_pem.clone()))
        }
    };
    for (key, version) in [
        ("anna-rsa", Version::TLS_1_2),
        ("pieter-ec", Version::TLS_1_2),
        ("pieter-ec", Version::TLS_1_3),
    ] {
        let b = Browser::new();
        let pk = pkce();
        let done =
            card_login(&e, &b, &authorize_url(&e.s, &c, &pk, &[]), card(key, false), version).await;
        let loc = done.location().unwrap_or_else(|| panic!("{key}: {} {}", done.status, done.body));
        let t: serde_json::Value =
            exchange(&e.s, &c, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
        let claims = jwt_claims(t["id_token"].as_str().unwrap());
        assert_eq!(claims["acr"], "http://eidas.europa.eu/LoA/high", "{key}");
        assert_eq!(claims["amr"], serde_json::json!(["eid"]));
        assert_eq!(claims["insz"], e.pki.card(key).unwrap().insz);
    }
    for (key, sign, code) in [
        ("revoked", false, "revoked"),
        ("expired", false, "expired"),
        ("foreign", false, "unknown_issuer"),
        ("anna-rsa", true, "signature_certificate"),
        ("bad-insz", false, "bad_serial_number"),
    ] {
        let page = card_login(
            &e,
            &Browser::new(),
            &authorize_url(&e.s, &c, &pkce(), &[]),
            card(key, sign),
            Version::TLS_1_2,
        )
        .await;
        assert_eq!(page.status, 403, "{key}: {}", page.body);
        assert_eq!(page.data_error().as_deref(), Some(code), "{key}");
    }
    let none = card_login(
        &e,
        &Browser::new(),
        &authorize_url(&e.s, &c, &pkce(), &[]),
        None,
        Version::TLS_1_3,
    )
    .await;
    assert_eq!(none.data_error().as_deref(), Some("no_certificate"));
    // A ticket is bound to the browser session that started the login.
    let b = Browser::new();
    b.follow(&e.s.base, b.get(&authorize_url(&e.s, &c, &pkce(), &[])).await).await;
    let loc = b.get(&e.s.url("/login/eid")).await.location().unwrap();
    let r = reader(card("anna-rsa", false), Version::TLS_1_2).get(&loc).send().await.unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_string();
    let thief = Browser::new();
    thief.get(&e.s.url("/login/key")).await;
    let stolen = thief.get(&back).await;
    assert_eq!(stolen.status, 400);
    let own = b.get(&back).await;
    assert!(own.location().unwrap().starts_with(&c.redirect_uri));
}
