//! EU Digital Identity Wallet login (SPEC §12): the broker as OpenID4VP 1.0 verifier under the
//! HAIP profile. A signed request object (JAR, client id prefix `x509_san_dns`) asks with DCQL
//! for the PID as an SD-JWT VC or, as the alternative, an ISO 18013-5 mdoc ([`mdoc`]); the wallet answers `direct_post.jwt`, encrypted to a key made
//! for that one request; the PID is checked ([`sdjwt`], [`status`]) and then linked to an INSZ
//! through the same first-login flow as eIDAS (`crate::linking`). No HTML here.

pub mod jose;
pub mod login;
pub mod mdoc;
pub mod sdjwt;
pub mod status;

use crate::assurance::AssuranceLevel;
use crate::config::Config;
use crate::crypto::{self, MasterKey};
use crate::store::{Store, StoreError};
use jose::TrustAnchors;
use serde::{Deserialize, Serialize};

/// How long the person has to answer with the wallet.
pub const REQUEST_TTL_S: i64 = 600;
const KEYS_SECRET: &str = "eudiw-verifier-keys";
/// The master-key purpose of each request's ephemeral decryption key.
const REQUEST_KEY_PURPOSE: &str = "eudiw-request-key";

#[derive(Debug, thiserror::Error)]
pub enum EudiwError {
    #[error("eudiw.{0}: {1}")]
    Config(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Jose(#[from] jose::JoseError),
    #[error("stored wallet data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    HttpClient(#[from] crate::http_client::HttpClientError),
    #[error("key generation did not finish")]
    Join(#[from] tokio::task::JoinError),
}

/// The verifier's signing key and certificate (PEM).
#[derive(Serialize, Deserialize)]
struct VerifierPem {
    cert_pem: String,
    key_pem: String,
}

pub struct Eudiw {
    store: Store,
    audit: crate::audit::Audit,
    master: MasterKey,
    anchors: TrustAnchors,
    status: status::StatusLists,
    /// PKCS#8 of the request-object signing key (P-256).
    signing_key: Vec<u8>,
    /// The verifier's certificate, DER (the request object's `x5c`).
    cert_der: Vec<u8>,
    /// `x509_san_dns:<host>`: the wallet checks it against the certificate's SAN.
    pub client_id: String,
    base: String,
    /// The same-device link's base (`[eudiw] wallet_url`), else `openid4vp://`.
    wallet_url: String,
    pub max_level: AssuranceLevel,
}

/// What the wallet's answer came to, kept with the request until the browser comes back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Answer {
    Ok {
        pid: sdjwt::Pid,
        level: AssuranceLevel,
    },
    Refused {
        reason: sdjwt::Refusal,
    },
    /// The person declined in the wallet.
    Cancelled,
}

fn read(key: &'static str, p: &std::path::Path) -> Result<String, EudiwError> {
    std::fs::read_to_string(p).map_err(|e| EudiwError::Config(key, format!("{}: {e}", p.display())))
}

fn pem_der(key: &'static str, pem: &str, label: &str) -> Result<Vec<u8>, EudiwError> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label.ends_with(label))
        .map(|p| p.contents)
        .ok_or_else(|| EudiwError::Config(key, format!("no {label} in the PEM")))
}

/// The verifier's keys: from `[eudiw] cert`/`key`, or generated (self-signed for the public
/// URL's host) on first start and kept encrypted in the database for every replica.
async fn verifier_keys(
    cfg: &Config,
    store: &Store,
    master: &MasterKey,
    host: &str,
    now: i64,
) -> Result<VerifierPem, EudiwError> {
    if let (Some(c), Some(k)) = (&cfg.eudiw.cert, &cfg.eudiw.key) {
        return Ok(VerifierPem { cert_pem: read("cert", c)?, key_pem: read("key", k)? });
    }
    let stored = match store.secret(KEYS_SECRET).await? {
        Some(v) => v,
        None => {
            let host = host.to_string();
            let json = tokio::task::spawn_blocking(move || {
                let ck = rcgen::generate_simple_self_signed(vec![host])
                    .map_err(|e| EudiwError::Config("cert", e.to_string()))?;
                let pem = VerifierPem {
                    cert_pem: ck.cert.pem(),
                    key_pem: ck.signing_key.serialize_pem(),
                };
                serde_json::to_vec(&pem).map_err(|e| EudiwError::Corrupt(e.to_string()))
            })
            .await??;
            let enc = master.encrypt(KEYS_SECRET, &json)?;
            store.secret_or_insert(KEYS_SECRET, &enc, now).await?
        }
    };
    serde_json::from_slice(&master.decrypt(KEYS_SECRET, &stored)?)
        .map_err(|e| EudiwError::Corrupt(e.to_string()))
}

impl Eudiw {
    /// Sets the verifier up, or `None` when `[eudiw] enabled` is off.
    pub async fn setup(
        cfg: &Config,
        store: &Store,
        master: &MasterKey,
        audit: &crate::audit::Audit,
        now: i64,
        upstream: crate::metrics::Upstream,
    ) -> Result<Option<Self>, EudiwError> {
        if !cfg.eudiw.enabled {
            return Ok(None);
        }
        let anchors_path = cfg
            .eudiw
            .trust_anchors
            .as_ref()
            .ok_or_else(|| EudiwError::Config("trust_anchors", "not set".into()))?;
        let anchors = TrustAnchors::from_pem(read("trust_anchors", anchors_path)?.as_bytes())
            .map_err(|e| EudiwError::Config("trust_anchors", e.to_string()))?;
        let host = cfg.server.public_url.host_str().unwrap_or("localhost").to_string();
        let pem = verifier_keys(cfg, store, master, &host, now).await?;
        let cert_der = pem_der("cert", &pem.cert_pem, "CERTIFICATE")?;
        let signing_key = pem_der("key", &pem.key_pem, "PRIVATE KEY")?;
        // The key must sign ES256 (HAIP): refuse a wrong key at start-up, not at the first login.
        jose::sign_es256(&signing_key, serde_json::json!({}), &serde_json::json!({}))
            .map_err(|e| EudiwError::Config("key", e.to_string()))?;
        Ok(Some(Self {
            store: store.clone(),
            audit: audit.clone(),
            master: master.clone(),
            anchors,
            status: status::StatusLists::new(upstream)?,
            signing_key,
            cert_der,
            client_id: format!("x509_san_dns:{host}"),
            base: cfg.issuer(),
            wallet_url: cfg
                .eudiw
                .wallet_url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_else(|| "openid4vp://".into()),
            max_level: cfg.eudiw.max_level,
        }))
    }
}
