//! Belgian eID card login over real TLS with client certificates from the test eID CA: both
//! trusted generations (RSA under Root CA4, EC P-384 under Root CA6) in one CA bundle with the
//! CRLs of all four CAs in one file, TLS 1.2 and 1.3, every kind of refused card (SPEC §6), and
//! the log line of a refusal.

use crate::both_backends;
use crate::common::*;
use idp_mocks::eid_ca::TestPki;
use reqwest::tls::Version;

both_backends!(
    valid_cards_log_in_and_bad_cards_get_a_clear_page,
    a_refused_card_is_logged_with_its_issuer_and_serial_but_not_the_insz,
);

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
        ("noor-ec", Version::TLS_1_3),
        ("noor-ec", Version::TLS_1_2),
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

/// The broker as operators run it (`cozo-broker serve`, JSON logs on standard error): a refused
/// card leaves a warning with the verifier's error, the issuer and the serial, and no INSZ.
async fn a_refused_card_is_logged_with_its_issuer_and_serial_but_not_the_insz(backend: Backend) {
    use std::io::Read as _;
    let pki = TestPki::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    pki.write_to(dir.path()).unwrap();
    let db = database_url(backend, dir.path()).await;
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (port, eid_port) = (free(), free());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cozo-broker"))
        .arg("serve")
        .env("COZO_DATABASE__URL", &db)
        .env("COZO_SECRETS__MASTER_KEY_FILE", dir.path().join("master.key"))
        .env("COZO_POLICY__DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))
        .env("COZO_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("COZO_SERVER__PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("COZO_EID__LISTEN", format!("127.0.0.1:{eid_port}"))
        .env("COZO_EID__PUBLIC_URL", format!("https://127.0.0.1:{eid_port}"))
        .env("COZO_EID__CA_BUNDLE", dir.path().join("ca-bundle.pem"))
        .env("COZO_EID__CRL", dir.path().join("crl.pem"))
        .env("COZO_LOG", "info")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..300 {
        if http.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let refused = |key: &str| {
        let c = pki.card(key).unwrap();
        reader(Some((c.chain_pem.clone(), c.auth_key_pem.clone())), Version::TLS_1_3)
    };
    let mut statuses = Vec::new();
    if ready {
        for key in ["revoked", "bad-insz"] {
            let url = format!("https://127.0.0.1:{eid_port}/eid/start?r=none");
            statuses.push(refused(key).get(&url).send().await.map(|r| r.status().as_u16()));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(ready, "the broker did not start: {logs}");
    assert!(statuses.iter().all(|s| matches!(s, Ok(403))), "{statuses:?}");
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "eID login refused")
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    for (line, (key, reason)) in
        lines.iter().zip([("revoked", "revoked"), ("bad-insz", "bad_serial_number")])
    {
        let card = pki.card(key).unwrap();
        let cert = openssl::x509::X509::from_pem(card.auth_cert_pem.as_bytes()).unwrap();
        let serial = hex::encode(cert.serial_number().to_bn().unwrap().to_vec());
        let f = &line["fields"];
        assert_eq!(line["level"], "WARN", "{line}");
        assert_eq!(f["reason"], reason, "{line}");
        assert!(!f["error"].as_str().unwrap_or_default().is_empty(), "{line}");
        assert_eq!(f["issuer"], "C=BE, CN=Citizen CA, serialNumber=202101", "{line}");
        assert_eq!(f["serial"].as_str().unwrap_or_default().replace(':', ""), serial, "{line}");
        assert!(!logs.contains(&card.insz), "the INSZ of {key} is in the logs");
    }
}
