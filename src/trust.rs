//! X.509 client-certificate trust shared by the eID listener (SPEC §6) and eHealth certificates
//! (SPEC §10): a CA bundle and CRL files turned into rustls-webpki's path validator, and the
//! watch that rebuilds it when a CRL file changes.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A trust setting that cannot be used: the config key at fault and why.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct TrustError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> TrustError {
    TrustError { key, message: message.into() }
}

/// How strict the verifier is about revocation.
#[derive(Debug, Clone, Copy)]
pub struct Revocation {
    /// Only the end-entity's status (its CA's CRL) rather than every certificate of the path.
    pub end_entity_only: bool,
    /// A CRL past its nextUpdate is no answer (the status is then unknown, and refused).
    pub enforce_expiry: bool,
}

/// The path validator for `bundle` (PEM, the trust anchors) and the CRLs in `crls`. A
/// certificate whose status no CRL gives is refused (webpki's `UnknownStatusPolicy::Deny`).
pub fn client_verifier(
    bundle: &Path,
    crls: &[PathBuf],
    revocation: Revocation,
) -> Result<Arc<dyn ClientCertVerifier>, TrustError> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(bundle).map_err(|e| bad("ca_bundle", e.to_string()))? {
        let c = c.map_err(|e| bad("ca_bundle", e.to_string()))?;
        roots.add(c).map_err(|e| bad("ca_bundle", e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("ca_bundle", "no certificate in the bundle"));
    }
    let crls = read_crls(crls)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).with_crls(crls);
    if revocation.end_entity_only {
        builder = builder.only_check_end_entity_revocation();
    }
    if revocation.enforce_expiry {
        builder = builder.enforce_revocation_expiration();
    }
    let verifier = builder.build().map_err(|e| bad("ca_bundle", e.to_string()))?;
    Ok(verifier)
}

/// Every CRL in every file: a file may hold several (the real eID publishes one per CA, and an
/// operator concatenates them), PEM blocks one after the other or DER CRLs one after the other.
pub fn read_crls(
    paths: &[PathBuf],
) -> Result<Vec<CertificateRevocationListDer<'static>>, TrustError> {
    let mut out = Vec::new();
    for p in paths {
        let bad = |e: String| bad("crl", format!("{}: {e}", p.display()));
        let bytes = std::fs::read(p).map_err(|e| bad(e.to_string()))?;
        let before = out.len();
        if bytes.trim_ascii_start().starts_with(b"-----") {
            for crl in CertificateRevocationListDer::pem_slice_iter(&bytes) {
                out.push(crl.map_err(|e| bad(e.to_string()))?);
            }
        } else {
            out.extend(split_der(&bytes).map_err(bad)?.into_iter().map(|d| d.to_vec().into()));
        }
        if out.len() == before {
            return Err(bad("no CRL in the file".into()));
        }
    }
    Ok(out)
}

/// Splits concatenated DER values (each a SEQUENCE) by their own lengths.
fn split_der(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = der_len(bytes).ok_or("not a DER CRL")?;
        let (one, rest) = bytes.split_at(len);
        out.push(one);
        bytes = rest;
    }
    Ok(out)
}

/// Total length (header included) of the DER SEQUENCE at the start of `b`.
fn der_len(b: &[u8]) -> Option<usize> {
    if *b.first()? != 0x30 {
        return None;
    }
    let first = *b.get(1)?;
    let (header, body) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b.get(2..2 + n)?.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x));
        (2 + n, len)
    };
    let total = header.checked_add(body)?;
    (total <= b.len()).then_some(total)
}

/// A value built from files (a verifier from a CA bundle and CRLs), rebuilt when one of the
/// watched files changes; checked by the caller every 30 s, so a new CRL takes effect within a
/// minute. A broken new file keeps the old value (and is logged).
pub struct Reloading<T> {
    paths: Vec<PathBuf>,
    current: std::sync::RwLock<Arc<T>>,
    stamps: std::sync::Mutex<Vec<Option<std::time::SystemTime>>>,
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    paths.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

impl<T> Reloading<T> {
    pub fn new(paths: Vec<PathBuf>, value: T) -> Self {
        Self {
            stamps: std::sync::Mutex::new(stamps(&paths)),
            paths,
            current: std::sync::RwLock::new(Arc::new(value)),
        }
    }

    pub fn current(&self) -> Arc<T> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds with `build` when a watched file changed; `what` names it in the logs.
    pub fn reload_if_changed<E: std::fmt::Display>(
        &self,
        what: &str,
        build: impl FnOnce() -> Result<T, E>,
    ) {
        let now = stamps(&self.paths);
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return;
        }
        match build() {
            Ok(v) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(v);
                *seen = now;
                tracing::info!("{what} revocation lists reloaded");
            }
            Err(e) => tracing::error!(error = %e, "{what} revocation lists could not be reloaded"),
        }
    }
}

/// Lets every certificate through the handshake but keeps the handshake-signature checks (the
/// client proves it holds the card's key); the chain is checked afterwards, where a refusal can be explained (eID card,
/// eHealth certificate).
#[derive(Debug)]
pub struct DeferredVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for DeferredVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS listener's own certificate: from files, or generated (self-signed) on start for the
/// host of `public_url` and localhost.
pub fn server_identity(
    cert: Option<&Path>,
    key: Option<&Path>,
    public_url: &url::Url,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TrustError> {
    if let (Some(c), Some(k)) = (cert, key) {
        let chain = CertificateDer::pem_file_iter(c)
            .map_err(|e| bad("cert", e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("cert", e.to_string()))?;
        let key = PrivateKeyDer::from_pem_file(k).map_err(|e| bad("key", e.to_string()))?;
        return Ok((chain, key));
    }
    let host = public_url.host_str().unwrap_or("localhost").to_string();
    let names = vec![host, "localhost".to_string(), "127.0.0.1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names).map_err(|e| bad("cert", e.to_string()))?;
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
        .map_err(|e| bad("key", e.to_string()))?;
    Ok((vec![ck.cert.der().clone()], key))
}
