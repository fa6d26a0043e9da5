//! `cozo-broker demo`: the broker on the embedded default (SQLite under `./data/`), the mocks of
//! the outside services (eIDAS node with DigiD, Bis register, CoBRHA) and a demo relying app,
//! with one demo identity per login method printed (SPEC §1).

use crate::admin::{self, ClientSpec};
use crate::config::Config;
use idp_mocks::demo_app::{DemoApp, DemoAppConfig};
use std::future::Future;
use tokio::net::TcpListener;

pub const DEMO_INSZ: &str = "85073003328";
pub const DEMO_USERNAME: &str = "anna.peeters";
pub const DEMO_PASSWORD: &str = "Tram7-Brugge-Zon";
pub const DEMO_PHONE: &str = "+32470123456";
pub const DOCTOR_USERNAME: &str = "pieter.janssens";
const DEMO_APP_URL: &str = "http://localhost:8090";
const NODE_URL: &str = "http://localhost:8093";
const FAS_URL: &str = "http://localhost:8094";
const FAS_SECRET: &str = "demo-fas-secret";
const EID_DIR: &str = "data/eid-test-ca";
const EHEALTH_DIR: &str = "data/ehealth-test-ca";
/// The demo API "my lab results" and its resource URI (`aud`).
const LAB_API_URL: &str = "http://localhost:8095";
/// The same API over mutual TLS, for certificate-bound tokens.
const LAB_API_MTLS_URL: &str = "https://localhost:8096";
const WALLET_URL: &str = "http://localhost:8098";
const PID_ANCHORS: &str = "data/eudiw/pid-provider-ca.pem";

async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

pub async fn run(
    mut cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };

    // The outside services, on fixed local ports so the printed URLs stay valid.
    let cobrha = idp_mocks::cobrha::MockCobrha::new();
    tokio::spawn(cobrha.serve_with_shutdown(bind("127.0.0.1:8091").await?, stopped()));
    let bis = idp_mocks::bis_register::MockBisRegister::new();
    tokio::spawn(bis.serve_with_shutdown(bind("127.0.0.1:8092").await?, stopped()));
    // One country of each kind of node: NL signs with ECDSA and agrees keys with ECDH-ES, DE
    // signs with RSASSA-PSS and transports keys with RSA-OAEP (the others: ECDSA + RSA-OAEP).
    use idp_mocks::eidas::{CountryCrypto, KeyTransport, NodeSigning};
    let node = idp_mocks::eidas::MockEidasNode::new(idp_mocks::eidas::EidasNodeConfig {
        base_url: NODE_URL.into(),
        sp_metadata_url: Some(format!("{}/saml/eidas/metadata", cfg.issuer())),
        countries: vec![
            CountryCrypto {
                country: "NL".into(),
                signing: NodeSigning::Ecdsa,
                key_transport: KeyTransport::EcdhEs,
            },
            CountryCrypto {
                country: "DE".into(),
                signing: NodeSigning::RsaPss,
                key_transport: KeyTransport::RsaOaep,
            },
        ],
        ..Default::default()
    })?;
    tokio::spawn(idp_mocks::eidas::serve(bind("127.0.0.1:8093").await?, node.clone(), stopped()));
    let fas = idp_mocks::fas::MockFas::new(idp_mocks::fas::FasConfig {
        base_url: FAS_URL.into(),
        client_id: cfg.fas.client_id.clone(),
        client_secret: FAS_SECRET.into(),
        redirect_uris: vec![format!("{}/oidc/fas/callback", cfg.issuer())],
    })?;
    tokio::spawn(idp_mocks::fas::serve(bind("127.0.0.1:8094").await?, fas, stopped()));
    if cfg.fas.issuer.is_none() {
        cfg.fas.issuer = Some(url::Url::parse(FAS_URL)?);
        cfg.fas.client_secret = FAS_SECRET.into();
    }
    // A test eID PKI (root, Citizen CA, cards, CRL) for the eID listener.
    if cfg.eid.ca_bundle.is_none() {
        let pki = idp_mocks::eid_ca::TestPki::generate()?;
        pki.write_to(std::path::Path::new(EID_DIR))?;
        cfg.eid.ca_bundle = Some(format!("{EID_DIR}/ca-bundle.pem").into());
        cfg.eid.crl = crate::config::PathList::One(format!("{EID_DIR}/crl.pem").into());
    }
    // A test eHealth PKI for software clients (client_credentials) and the mTLS listener.
    if cfg.ehealth.ca_bundle.is_none() {
        let pki = idp_mocks::ehealth_ca::EhealthPki::generate()?;
        pki.write_files(std::path::Path::new(EHEALTH_DIR))?;
        cfg.ehealth.ca_bundle = Some(format!("{EHEALTH_DIR}/ca-bundle.pem").into());
        cfg.ehealth.crl = crate::config::PathList::One(format!("{EHEALTH_DIR}/crl.pem").into());
    }
    cfg.cobrha.url.get_or_insert(url::Url::parse("http://127.0.0.1:8091")?);
    cfg.bis_register.url.get_or_insert(url::Url::parse("http://127.0.0.1:8092")?);
    cfg.eidas.node_metadata.get_or_insert(node.metadata_url());
    // The EU wallet: a PID provider (its status list on 8097) and the test wallet on 8098.
    let pid_provider =
        idp_mocks::eudiw::provider::start_on(bind("127.0.0.1:8097").await?, "Mock PID Provider")
            .await?;
    tokio::spawn({
        let (listener, provider) = (bind("127.0.0.1:8098").await?, pid_provider.clone());
        async move {
            if let Err(e) = idp_mocks::eudiw::wallet::serve(listener, provider).await {
                tracing::error!(error = %e, "test wallet stopped");
            }
        }
    });
    if !cfg.eudiw.enabled {
        std::fs::create_dir_all("data/eudiw")?;
        std::fs::write(PID_ANCHORS, pid_provider.trust_anchor_pem())?;
        cfg.eudiw.enabled = true;
        cfg.eudiw.trust_anchors = Some(PID_ANCHORS.into());
        cfg.eudiw.wallet_url.get_or_insert(url::Url::parse(WALLET_URL)?);
    }

    let store = crate::open_store(&cfg).await?;
    let master = crate::master_key(&cfg)?;
    let now = crate::clock::system_now();
    let policies = crate::policy::PolicyEngine::load(&cfg.policy.dir)?;

    // Demo clients are re-registered at every start: their secrets are only ever shown once.
    let app_url = url::Url::parse(DEMO_APP_URL)?;
    let mut apps = Vec::new();
    for (id, path, title, policy, scope, description) in [
        (
            "demo-portal",
            "portal",
            "CoZo portal (demo)",
            "portal",
            "openid profile insz",
            "Policy portal: any login of level low or more.",
        ),
        (
            "demo-ehealth",
            "ehealth",
            "eHealth app (demo)",
            "ehealth",
            "openid profile insz",
            "Policy ehealth: substantial or high, the app code (never SMS or the token card).",
        ),
        (
            "demo-professional",
            "professional",
            "Care provider app (demo)",
            "ehealth-professional",
            "openid profile insz professions",
            "Policy ehealth-professional: as eHealth, plus an active CoBRHA profession.",
        ),
    ] {
        store.remove_client(id, now).await?;
        let mut spec = ClientSpec::new(id, &format!("{DEMO_APP_URL}/{path}/callback"), policy);
        spec.post_logout_redirect_uris = vec![format!("{DEMO_APP_URL}/")];
        spec.name = Some(title.to_string());
        spec.backchannel_logout_uri = Some(format!("{DEMO_APP_URL}/{path}/backchannel-logout"));
        let secret = admin::add_client(&store, &policies, &spec, now).await?;
        apps.push(DemoApp {
            title: title.into(),
            path: path.into(),
            client_id: id.into(),
            client_secret: secret,
            scope: scope.split(' ').map(str::to_string).collect(),
            description: description.into(),
        });
    }

    // The demo software package: the GP's eHealth certificate, tokens for the lab API.
    store.remove_client("demo-software", now).await?;
    let ehealth = crate::ehealth::Ehealth::new(&cfg.ehealth)?;
    let mut software = ClientSpec::software(
        "demo-software",
        &std::fs::read_to_string(format!("{EHEALTH_DIR}/gp-rsa.pem"))?,
        "private_key_jwt",
        "ehealth-professional",
    );
    software.scopes = vec!["lab.read".into()];
    software.resources = vec![LAB_API_URL.into()];
    admin::add_client_trusting(&store, &policies, ehealth.as_deref(), &software, now).await?;

    // Demo people: a patient with every digital key, and a GP known to CoBRHA.
    fresh_person(&store, DEMO_INSZ, "Anna", "Peeters", "1985-07-30", now).await?;
    let totp = admin::add_totp_key(
        &store,
        &master,
        &cfg,
        DEMO_INSZ,
        DEMO_USERNAME,
        Some(DEMO_PASSWORD),
        now,
    )
    .await?;
    admin::add_sms_key(&store, &cfg, DEMO_INSZ, DEMO_USERNAME, None, DEMO_PHONE, now).await?;
    let card =
        admin::add_token_key(&store, &master, &cfg, DEMO_INSZ, DEMO_USERNAME, None, now).await?;
    fresh_person(&store, idp_mocks::cobrha::GP, "Pieter", "Janssens", "1975-03-12", now).await?;
    let doctor = admin::add_totp_key(
        &store,
        &master,
        &cfg,
        idp_mocks::cobrha::GP,
        DOCTOR_USERNAME,
        Some(DEMO_PASSWORD),
        now,
    )
    .await?;
    // A registration-office clerk (operator of "Brussels – Foreigners' desk") with an app key.
    fresh_person(&store, OPERATOR_INSZ, "Marie", "Dubois", "1990-01-01", now).await?;
    let clerk = admin::add_totp_key(
        &store,
        &master,
        &cfg,
        OPERATOR_INSZ,
        OPERATOR_USERNAME,
        Some(DEMO_PASSWORD),
        now,
    )
    .await?;
    admin::add_operator(&store, OPERATOR_INSZ, OPERATOR_OFFICE, now).await?;
    store.close().await;

    let issuer = url::Url::parse(&cfg.issuer())?;
    let broker = crate::serve(cfg.clone()).await?;
    let demo_cfg = DemoAppConfig { issuer, public_url: app_url, apps };
    let demo = tokio::spawn(idp_mocks::demo_app::serve(
        bind("127.0.0.1:8090").await?,
        demo_cfg,
        stopped(),
    ));

    let lab = tokio::spawn(idp_mocks::lab_api::serve(
        bind("127.0.0.1:8095").await?,
        idp_mocks::lab_api::LabApiConfig {
            issuer: broker.cfg.issuer(),
            audience: LAB_API_URL.into(),
        },
        stopped(),
    ));

    let lab_tls = tokio::spawn(idp_mocks::lab_api::serve_tls(
        bind("127.0.0.1:8096").await?,
        idp_mocks::lab_api::LabApiConfig {
            issuer: broker.cfg.issuer(),
            audience: LAB_API_URL.into(),
        },
        stopped(),
    ));

    let nl = idp_mocks::eidas::citizen("nl-substantial");
    let card_lines: Vec<String> = card
        .iter()
        .map(|(k, v)| format!("{k:>2}={v}"))
        .collect::<Vec<_>>()
        .chunks(6)
        .map(|c| c.join("  "))
        .collect();
    println!(
        "\n  cozo-broker demo is running (SQLite under ./data/)\n\n  \
         broker      {}\n  demo app    {DEMO_APP_URL}   <- open this and click \"Log in\"\n  \
         mailbox     {}/demo/mailbox   (SMS and e-mail the broker sent)\n  \
         single logout: log in to Portal, then to the eHealth app (no second login: one broker\n    \
         session); \"Log out\" in one of them, then reload the demo app: both sessions have ended\n    \
         (back-channel logout). Your apps: {}/account/apps\n  \
         eIDAS node  {NODE_URL}   Bis register http://127.0.0.1:8092   CoBRHA http://127.0.0.1:8091\n\n  \
         Digital key (patient Anna Peeters): username {DEMO_USERNAME}, password {DEMO_PASSWORD}\n    \
         app code (TOTP): secret {}  current code: cargo run -q -- totp-code {}\n    \
         otpauth URI: {}\n    \
         SMS: choose \"Code by text message\" and read the code at /demo/mailbox\n    \
         token card (new each run):\n      {}\n\n  \
         Care provider (CoBRHA GP, for the care provider app): username {DOCTOR_USERNAME}, password {DEMO_PASSWORD}\n    \
         app code: cargo run -q -- totp-code {}\n\n  \
         Registration office ({}/office): clerk username {OPERATOR_USERNAME}, password {DEMO_PASSWORD}\n    \
         app code: cargo run -q -- totp-code {}\n    \
         register e.g. Bis number {NEW_PERSON_BIS} (Sofia Rossi, 1985-07-30); the activation link is in the\n    \
         mailbox, the paper code on the result page; then log in to the demo app with the new key.\n\n  \
         Federal login (FAS mock, {FAS_URL}): choose \"Federal login\", then a person and a means\n    \
         (eID, itsme, app code, SMS, token): each gives its own level; SMS does not open the eHealth app.\n\n  \
         eID card ({}): the test CA is in {EID_DIR}/. Import {EID_DIR}/anna-rsa-auth.p12 (password \"test\")\n    \
         into the browser and choose \"Belgian eID card\"; or follow the /login/eid redirect with\n    \
         curl -k --cert {EID_DIR}/anna-rsa-auth-chain.pem --key {EID_DIR}/anna-rsa-auth.key <the https://localhost:8443/eid/start?r=... URL>\n    \
         Other cards there: pieter-ec, noor-ec, revoked, expired, foreign, bad-insz (each gets a page saying what to check).\n\n  \
         EU login (eIDAS): choose \"EU login\", then (NL) Nederland, then DigiD as {} ({} {});\n    \
         at the first login link the Bis number {}\n\n  \
         Software package (eHealth certificates in {EHEALTH_DIR}/, client demo-software, GP Pieter Janssens):\n    \
         cargo run -q -p idp-mocks --bin demo-software     (token with gp-rsa.pem, then GET {LAB_API_URL}/lab-results)\n    \
         cargo run -q -p idp-mocks --bin demo-software -- --mtls   (certificate-bound token, API at {LAB_API_MTLS_URL})\n    \
         mTLS token endpoint {}/token (tls_client_auth and certificate-bound tokens)\n\n  \
         EU Digital Identity Wallet (test wallet {WALLET_URL}, PID provider status list http://127.0.0.1:8097):\n    \
         same device: choose \"EU Digital Identity Wallet\", \"Open my wallet\", pick Sanne de Vries (NL), Share;\n    \
         at the first login link the Bis number {}; Anna Peeters' Belgian PID (with her INSZ) logs in directly.\n    \
         cross device: copy the openid4vp:// link under the QR code (or scan it) and run\n    \
         cargo run -q -p idp-mocks --bin mock-eudi-wallet -- answer --holder nl-sanne '<openid4vp://…>'\n    \
         (holders: nl-sanne, be-anna, de-erika, nl-revoked: the revoked one gets a page saying so).\n\n  \
         Ctrl-C stops everything.\n",
        broker.cfg.issuer(),
        broker.cfg.issuer(),
        broker.cfg.issuer(),
        totp.secret_base32,
        totp.secret_base32,
        totp.otpauth_uri,
        card_lines.join("\n      "),
        doctor.secret_base32,
        broker.cfg.issuer(),
        clerk.secret_base32,
        broker.cfg.eid.public_url,
        nl.map(|c| c.username).unwrap_or_default(),
        nl.map(|c| c.given_name).unwrap_or_default(),
        nl.map(|c| c.family_name).unwrap_or_default(),
        idp_mocks::bis_register::DUTCH_PATIENT,
        broker.cfg.mtls.public_url.as_str().trim_end_matches('/'),
        idp_mocks::bis_register::DUTCH_PATIENT,
    );

    shutdown.await;
    let _ = stop_tx.send(true);
    broker.shutdown().await;
    let _ = demo.await;
    let _ = lab.await;
    let _ = lab_tls.await;
    Ok(())
}

/// The demo registration-office clerk.
const OPERATOR_INSZ: &str = "90010112395";
const OPERATOR_USERNAME: &str = "marie.dubois";
const OPERATOR_OFFICE: &str = "Brussels – Foreigners' desk";
/// A Bis number (valid check digits) to register at the office in the demo.
const NEW_PERSON_BIS: &str = "85273004559";

/// The demo person, with their digital keys reset (secrets are shown once, so new ones each run).
async fn fresh_person(
    store: &crate::store::Store,
    insz: &str,
    given: &str,
    family: &str,
    birthdate: &str,
    now: i64,
) -> anyhow::Result<()> {
    let parsed = crate::identity::Insz::parse(insz)?;
    if store.person_by_insz(&parsed).await?.is_none() {
        admin::add_person(store, insz, given, family, Some(birthdate), now).await?;
    }
    admin::revoke_all_keys(store, insz, now).await?;
    Ok(())
}
