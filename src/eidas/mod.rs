//! eIDAS login (SPEC §6): the broker as service provider of an eIDAS node, on top of the SAML
//! core in `crate::saml`. This module sets the SP up (keys, node metadata), sends AuthnRequests
//! bound to the browser session, and takes answers once. No HTML here.

use crate::assurance::AssuranceLevel;
use crate::config::Config;
use crate::crypto::{self, MasterKey};

pub mod login;
use crate::linking::ForeignIdentity;
use crate::saml::{IdpTrust, ServiceProvider, SpKeys};
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How long the person has at the node (country page, DigiD) before the request expires.
pub const REQUEST_TTL_S: i64 = 900;
const KEYS_SECRET: &str = "saml-sp-keys";
/// The EC encryption key of installations whose `KEYS_SECRET` predates ECDH-ES.
const EC_KEY_SECRET: &str = "saml-sp-ec-encryption-key";

#[derive(Debug, thiserror::Error)]
pub enum EidasError {
    #[error("eidas.node_metadata: {0}")]
    Metadata(String),
    #[error("eidas keys: {0}")]
    Keys(String),
    #[error(transparent)]
    Saml(#[from] crate::saml::SamlError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error("stored eIDAS data is corrupt: {0}")]
    Corrupt(String),
    #[error("SAML work did not finish")]
    Join(#[from] tokio::task::JoinError),
    #[error(transparent)]
    HttpClient(#[from] crate::http_client::HttpClientError),
}

pub struct Eidas {
    pub sp: Arc<ServiceProvider>,
    store: Store,
    audit: crate::audit::Audit,
    pub max_level: AssuranceLevel,
    pub countries: Vec<String>,
    pub post_binding: bool,
}

/// What the ACS concluded, kept with the request until the browser comes back with its cookie.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Answer {
    Ok { identity: ForeignIdentity, level: AssuranceLevel },
    Cancelled,
    Failed,
    LevelTooLow,
}

/// Loads the node's metadata from a file or URL.
async fn load_metadata(
    source: &str,
    upstream: &crate::metrics::Upstream,
) -> Result<String, EidasError> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let http =
            crate::http_client::build("eIDAS node metadata", std::time::Duration::from_secs(10))?;
        upstream
            .observe(async {
                http.get(source)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| EidasError::Metadata(format!("{source}: {e}")))?
                    .text()
                    .await
                    .map_err(|e| EidasError::Metadata(format!("{source}: {e}")))
            })
            .await
    } else {
        std::fs::read_to_string(source).map_err(|e| EidasError::Metadata(format!("{source}: {e}")))
    }
}

/// The SP keys: from the configured PEM files, or generated on first start and kept encrypted
/// in the database (so every replica signs and decrypts with the same keys).
async fn sp_keys(
    cfg: &Config,
    store: &Store,
    master: &MasterKey,
    now: i64,
) -> Result<SpKeys, EidasError> {
    let e = &cfg.eidas;
    let read = |p: &std::path::PathBuf| {
        std::fs::read_to_string(p)
            .map_err(|err| EidasError::Keys(format!("{}: {err}", p.display())))
    };
    let mut keys = if let (Some(sk), Some(sc), Some(ek), Some(ec)) =
        (&e.signing_key, &e.signing_cert, &e.encryption_key, &e.encryption_cert)
    {
        SpKeys {
            signing_key_pem: read(sk)?,
            signing_cert_pem: read(sc)?,
            encryption_key_pem: read(ek)?,
            encryption_cert_pem: read(ec)?,
            ec_encryption_key_pem: String::new(),
            ec_encryption_cert_pem: String::new(),
        }
    } else {
        let json = stored_secret(cfg, store, master, KEYS_SECRET, now, |cn, now| {
            serde_json::to_vec(&SpKeys::generate(cn, now)?)
                .map_err(|e| EidasError::Keys(e.to_string()))
        })
        .await?;
        serde_json::from_slice(&json).map_err(|e| EidasError::Keys(e.to_string()))?
    };
    if let (Some(k), Some(c)) = (&e.ec_encryption_key, &e.ec_encryption_cert) {
        keys.ec_encryption_key_pem = read(k)?;
        keys.ec_encryption_cert_pem = read(c)?;
    } else if keys.ec_encryption_key_pem.is_empty() {
        let json = stored_secret(cfg, store, master, EC_KEY_SECRET, now, |cn, now| {
            serde_json::to_vec(&SpKeys::generate_ec_encryption(cn, now)?)
                .map_err(|e| EidasError::Keys(e.to_string()))
        })
        .await?;
        (keys.ec_encryption_key_pem, keys.ec_encryption_cert_pem) =
            serde_json::from_slice(&json).map_err(|e| EidasError::Keys(e.to_string()))?;
    }
    Ok(keys)
}

/// The plaintext of the encrypted secret `name`, generated (on the blocking pool) and stored
/// the first time; the first replica to store it wins.
async fn stored_secret(
    cfg: &Config,
    store: &Store,
    master: &MasterKey,
    name: &str,
    now: i64,
    generate: fn(&str, i64) -> Result<Vec<u8>, EidasError>,
) -> Result<Vec<u8>, EidasError> {
    let stored = match store.secret(name).await? {
        Some(v) => v,
        None => {
            let cn = cfg.server.public_url.host_str().unwrap_or("cozo-broker").to_string();
            let json = tokio::task::spawn_blocking(move || generate(&cn, now))
                .await
                .map_err(|e| EidasError::Keys(e.to_string()))??;
            let enc = master.encrypt(name, &json)?;
            store.secret_or_insert(name, &enc, now).await?
        }
    };
    Ok(master.decrypt(name, &stored)?)
}

impl Eidas {
    /// Sets the SP up, or `None` when no node is configured.
    pub async fn setup(
        cfg: &Config,
        store: &Store,
        master: &MasterKey,
        audit: &crate::audit::Audit,
        now: i64,
        upstream: &crate::metrics::Upstream,
    ) -> Result<Option<Self>, EidasError> {
        let Some(source) = &cfg.eidas.node_metadata else { return Ok(None) };
        let xml = load_metadata(source, upstream).await?;
        // Metadata without a signing certificate is refused here: samael would otherwise parse
        // responses without verifying them.
        let idp = IdpTrust::from_metadata(&xml)?;
        let keys = sp_keys(cfg, store, master, now).await?;
        let base = cfg.issuer();
        // SPType travels in each AuthnRequest, as SPEC §6 asks (CEF nodes accept it in exactly
        // one place: the request or the metadata).
        let sp = ServiceProvider::new(
            &format!("{base}/saml/eidas/metadata"),
            &format!("{base}/saml/eidas/acs"),
            &keys,
            idp,
        )?
        .with_sp_type_in_request(true);
        Ok(Some(Self {
            sp: Arc::new(sp),
            store: store.clone(),
            audit: audit.clone(),
            max_level: cfg.eidas.max_level,
            countries: cfg.eidas.countries.clone(),
            post_binding: cfg.eidas.binding == crate::config::SamlBinding::Post,
        }))
    }
}
