//! Belgian eID card login (SPEC §6): a second TLS listener that asks for a client certificate.
//!
//! The TLS layer checks that the client holds the key of the certificate it sends (the handshake
//! signature) but accepts any certificate, so that a person whose card is expired, revoked or
//! from another CA gets a page saying what to check instead of a broken connection. The chain,
//! validity and revocation (CRL) are then checked by rustls' WebPKI verifier, and the broker
//! checks that it is the card's *authentication* certificate (digitalSignature, not the
//! non-repudiation signature certificate) and reads the INSZ from the subject `serialNumber`.

use crate::identity::Insz;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::PathBuf;
pub mod login;
pub mod server;

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EidError {
    #[error("eid.{0}: {1}")]
    Config(&'static str, String),
}

/// Why a card certificate is refused; each has a page telling the person what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardProblem {
    NoCertificate,
    Expired,
    Revoked,
    UnknownIssuer,
    SignatureCertificate,
    BadSerialNumber,
    Invalid,
}

impl CardProblem {
    pub fn code(self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::UnknownIssuer => "unknown_issuer",
            Self::SignatureCertificate => "signature_certificate",
            Self::BadSerialNumber => "bad_serial_number",
            Self::Invalid => "invalid",
        }
    }
}

/// What a verified card says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Card {
    pub insz: String,
    pub given_name: String,
    pub family_name: String,
}

/// Lets every certificate through the handshake but keeps the handshake-signature checks (the
/// client proves it holds the card's key); the chain is checked afterwards by [`verify_card`].
#[derive(Debug)]
struct DeferredVerifier {
    inner: Arc<dyn ClientCertVerifier>,
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

/// The TLS side of the listener: server config plus the real chain verifier.
pub struct EidTls {
    pub server: Arc<rustls::ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
}

fn read_crls(paths: &[PathBuf]) -> Result<Vec<CertificateRevocationListDer<'static>>, EidError> {
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(p)
            .map_err(|e| EidError::Config("crl", format!("{}: {e}", p.display())))?;
        if bytes.starts_with(b"-----") {
            let crl = CertificateRevocationListDer::from_pem_slice(&bytes)
                .map_err(|e| EidError::Config("crl", format!("{}: {e}", p.display())))?;
            out.push(crl);
        } else {
            out.push(CertificateRevocationListDer::from(bytes));
        }
    }
    Ok(out)
}

impl EidTls {
    pub fn build(cfg: &crate::config::EidConfig) -> Result<Self, EidError> {
        let bundle =
            cfg.ca_bundle.as_ref().ok_or(EidError::Config("ca_bundle", "not set".into()))?;
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(bundle)
            .map_err(|e| EidError::Config("ca_bundle", e.to_string()))?
        {
            let c = c.map_err(|e| EidError::Config("ca_bundle", e.to_string()))?;
            roots.add(c).map_err(|e| EidError::Config("ca_bundle", e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(EidError::Config("ca_bundle", "no certificate in the bundle".into()));
        }
        let crls = read_crls(&cfg.crl.paths())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .with_crls(crls)
                .only_check_end_entity_revocation()
                .build()
                .map_err(|e| EidError::Config("ca_bundle", e.to_string()))?;
        let (chain, key) = server_identity(cfg)?;
        // TLS 1.2 is offered because RSA cards can only sign PKCS#1 v1.5 (not allowed in TLS 1.3).
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| EidError::Config("listen", e.to_string()))?
            .with_client_cert_verifier(Arc::new(DeferredVerifier { inner: verifier.clone() }))
            .with_single_cert(chain, key)
            .map_err(|e| EidError::Config("cert", e.to_string()))?;
        Ok(Self { server: Arc::new(server), verifier })
    }

    /// Checks a presented chain: trust, validity, revocation, key usage, and reads the card.
    pub fn verify_card(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
    ) -> Result<Card, CardProblem> {
        let Some((ee, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return Err(CardProblem::NoCertificate);
        };
        if let Err(e) = self.verifier.verify_client_cert(ee, intermediates, UnixTime::now()) {
            use rustls::CertificateError as C;
            return Err(match e {
                rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                    CardProblem::Expired
                }
                rustls::Error::InvalidCertificate(C::Revoked) => CardProblem::Revoked,
                rustls::Error::InvalidCertificate(C::UnknownIssuer) => CardProblem::UnknownIssuer,
                _ => CardProblem::Invalid,
            });
        }
        read_card(ee.as_ref())
    }
}

/// Subject and key usage of a verified authentication certificate.
fn read_card(der: &[u8]) -> Result<Card, CardProblem> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CardProblem::Invalid)?;
    let ku = cert.key_usage().ok().flatten().map(|e| *e.value);
    // The authentication certificate signs (digitalSignature); the signature certificate is for
    // non-repudiation and must not open a session.
    match ku {
        Some(ku) if ku.digital_signature() && !ku.non_repudiation() => {}
        _ => return Err(CardProblem::SignatureCertificate),
    }
    let attr = |oid: &x509_parser::der_parser::oid::Oid| {
        cert.subject()
            .iter_attributes()
            .find(|a| a.attr_type() == oid)
            .and_then(|a| a.as_str().ok())
            .map(str::to_string)
    };
    let serial = attr(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
        .ok_or(CardProblem::BadSerialNumber)?;
    let insz = Insz::parse(&serial).map_err(|_| CardProblem::BadSerialNumber)?;
    Ok(Card {
        insz: insz.as_str().to_string(),
        given_name: attr(&x509_parser::oid_registry::OID_X509_GIVEN_NAME).unwrap_or_default(),
        family_name: attr(&x509_parser::oid_registry::OID_X509_SURNAME).unwrap_or_default(),
    })
}

/// The listener's own certificate: from files, or generated (self-signed) on start.
fn server_identity(
    cfg: &crate::config::EidConfig,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), EidError> {
    if let (Some(c), Some(k)) = (&cfg.cert, &cfg.key) {
        let chain = CertificateDer::pem_file_iter(c)
            .map_err(|e| EidError::Config("cert", e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EidError::Config("cert", e.to_string()))?;
        let key =
            PrivateKeyDer::from_pem_file(k).map_err(|e| EidError::Config("key", e.to_string()))?;
        return Ok((chain, key));
    }
    let host = cfg.public_url.host_str().unwrap_or("localhost").to_string();
    let names = vec![host, "localhost".to_string(), "127.0.0.1".to_string()];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| EidError::Config("cert", e.to_string()))?;
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
        .map_err(|e| EidError::Config("key", e.to_string()))?;
    Ok((vec![ck.cert.der().clone()], key))
}

/// The eID configuration in use, rebuilt when a CRL file changes (checked every 30 s, so a new
/// list takes effect within a minute).
pub struct EidState {
    cfg: crate::config::EidConfig,
    current: std::sync::RwLock<Arc<EidTls>>,
    stamps: std::sync::Mutex<Vec<Option<std::time::SystemTime>>>,
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    paths.iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

impl EidState {
    pub fn new(cfg: &crate::config::EidConfig) -> Result<Option<Arc<Self>>, EidError> {
        if cfg.ca_bundle.is_none() {
            return Ok(None);
        }
        let tls = EidTls::build(cfg)?;
        Ok(Some(Arc::new(Self {
            stamps: std::sync::Mutex::new(stamps(&cfg.crl.paths())),
            cfg: cfg.clone(),
            current: std::sync::RwLock::new(Arc::new(tls)),
        })))
    }

    pub fn current(&self) -> Arc<EidTls> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the verifier when a CRL file changed; keeps the old one if the new one is broken.
    pub fn reload_if_changed(&self) {
        let now = stamps(&self.cfg.crl.paths());
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return;
        }
        match EidTls::build(&self.cfg) {
            Ok(tls) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tls);
                *seen = now;
                tracing::info!("eID revocation lists reloaded");
            }
            Err(e) => tracing::error!(error = %e, "eID revocation lists could not be reloaded"),
        }
    }
}
