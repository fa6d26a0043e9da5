//! Stand-alone mock eIDAS node (CEF eIDAS-Node 2.x style, DigiD behind it).
//!
//! Environment:
//! * `MOCK_LISTEN` (default `127.0.0.1:8093`): the address to listen on;
//! * `MOCK_PUBLIC_URL` (default `http://localhost:8093`): the node's public base URL (its entity
//!   ID is `{MOCK_PUBLIC_URL}/metadata` unless `MOCK_ENTITY_ID` is set);
//! * `SP_METADATA_URL` (default `http://localhost:8080/saml/eidas/metadata`): the broker's SAML
//!   SP metadata, fetched when the first request arrives (signing and encryption certificates,
//!   ACS); set it to an empty string to use only the certificate files below;
//! * `SP_SIGNING_CERT`, `SP_ENCRYPTION_CERT` (optional): PEM files with the SP's certificates;
//! * `MOCK_RSA_OAEP_LEGACY` (`1`/`true`): transport the key with `xmlenc#rsa-oaep-mgf1p`.
//! * `MOCK_SIGNING` (`ecdsa` or `rsa-pss`), `MOCK_KEY_TRANSPORT` (`rsa-oaep` or `ecdh-es`): the
//!   node's crypto; `MOCK_COUNTRIES` (default `NL=ecdsa+ecdh-es,DE=rsa-pss+rsa-oaep`): per-country
//!   exceptions.
//!
//! The node's signing key is generated at start-up: SPs must (re)load its metadata from
//! `{MOCK_PUBLIC_URL}/metadata`.

use anyhow::Context as _;
use idp_mocks::eidas::{
    serve, CountryCrypto, EidasNodeConfig, KeyTransport, MockEidasNode, NodeSigning,
};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

fn env_file(name: &str) -> anyhow::Result<Option<String>> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        Some(path) => Ok(Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("{name}: cannot read {path}"))?,
        )),
        None => Ok(None),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let listen = env_or("MOCK_LISTEN", "127.0.0.1:8093");
    let public_url = env_or("MOCK_PUBLIC_URL", "http://localhost:8093");
    url::Url::parse(&public_url).with_context(|| format!("MOCK_PUBLIC_URL {public_url:?}"))?;
    let sp_metadata_url = match std::env::var("SP_METADATA_URL") {
        Ok(v) if v.trim().is_empty() => None,
        Ok(v) => Some(v),
        Err(_) => Some("http://localhost:8080/saml/eidas/metadata".to_string()),
    };
    let legacy = matches!(
        env_or("MOCK_RSA_OAEP_LEGACY", "").to_ascii_lowercase().as_str(),
        "1" | "true" | "yes"
    );
    let config = EidasNodeConfig {
        base_url: public_url.trim_end_matches('/').to_string(),
        entity_id: std::env::var("MOCK_ENTITY_ID").ok().filter(|v| !v.trim().is_empty()),
        sp_metadata_url,
        sp_signing_cert_pem: env_file("SP_SIGNING_CERT")?,
        sp_encryption_cert_pem: env_file("SP_ENCRYPTION_CERT")?,
        rsa_oaep_legacy: legacy,
        signing: signing(&env_or("MOCK_SIGNING", "ecdsa"))?,
        key_transport: key_transport(&env_or("MOCK_KEY_TRANSPORT", "rsa-oaep"))?,
        countries: countries(&env_or("MOCK_COUNTRIES", "NL=ecdsa+ecdh-es,DE=rsa-pss+rsa-oaep"))?,
    };
    let sp = config.sp_metadata_url.clone().unwrap_or_else(|| "(certificate files)".into());
    let node = MockEidasNode::new(config)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "mock eIDAS node on {} (listening on {listen}), metadata {}, SP {sp}",
        node.base_url(),
        node.metadata_url()
    );
    serve(listener, node, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

fn signing(v: &str) -> anyhow::Result<NodeSigning> {
    match v.trim() {
        "ecdsa" => Ok(NodeSigning::Ecdsa),
        "rsa-pss" => Ok(NodeSigning::RsaPss),
        other => anyhow::bail!("signing {other:?}: ecdsa or rsa-pss"),
    }
}

fn key_transport(v: &str) -> anyhow::Result<KeyTransport> {
    match v.trim() {
        "rsa-oaep" => Ok(KeyTransport::RsaOaep),
        "ecdh-es" => Ok(KeyTransport::EcdhEs),
        other => anyhow::bail!("key transport {other:?}: rsa-oaep or ecdh-es"),
    }
}

/// `MOCK_COUNTRIES`: `CC=<signing>+<key transport>` separated by commas (empty: none).
fn countries(v: &str) -> anyhow::Result<Vec<CountryCrypto>> {
    v.split(',')
        .filter(|c| !c.trim().is_empty())
        .map(|c| {
            let (country, kinds) =
                c.split_once('=').context("MOCK_COUNTRIES: CC=signing+transport")?;
            let (s, t) = kinds.split_once('+').context("MOCK_COUNTRIES: CC=signing+transport")?;
            Ok(CountryCrypto {
                country: country.trim().to_ascii_uppercase(),
                signing: signing(s)?,
                key_transport: key_transport(t)?,
            })
        })
        .collect()
}
