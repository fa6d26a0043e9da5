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

/// A refused card: the problem the person is told about, and what the logs need to find the
/// cause (the verifier's error, the certificate's issuer and serial number). Never the INSZ: the
/// subject is not copied here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRefusal {
    pub problem: CardProblem,
    /// The verifier's (or the certificate parser's) own words.
    pub error: String,
    /// The presented certificate's issuer name (a CA's name), when it could be read.
    pub issuer: Option<String>,
    /// The presented certificate's serial number in hex, when it could be read.
    pub serial: Option<String>,
}

impl CardRefusal {
    fn new(problem: CardProblem, error: impl Into<String>, leaf: Option<&[u8]>) -> Self {
        let (issuer, serial) = leaf.map(issuer_and_serial).unwrap_or_default();
        Self { problem, error: error.into(), issuer, serial }
    }
}

/// Issuer name and hex serial number of a certificate, for the logs.
fn issuer_and_serial(der: &[u8]) -> (Option<String>, Option<String>) {
    use x509_parser::prelude::*;
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => (Some(cert.issuer().to_string()), Some(cert.raw_serial_as_string())),
        Err(_) => (None, None),
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

/// Every CRL in every file: a file may hold several (the real eID publishes one per CA, and an
/// operator concatenates them), PEM blocks one after the other or DER CRLs one after the other.
fn read_crls(paths: &[PathBuf]) -> Result<Vec<CertificateRevocationListDer<'static>>, EidError> {
    let mut out = Vec::new();
    for p in paths {
        let bad = |e: String| EidError::Config("crl", format!("{}: {e}", p.display()));
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

    /// Checks a presented chain at `now` (unix seconds): trust, validity, revocation, key usage,
    /// and reads the card.
    pub fn verify_card(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
        now: i64,
    ) -> Result<Card, CardRefusal> {
        let Some((ee, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return Err(CardRefusal::new(
                CardProblem::NoCertificate,
                "no client certificate",
                None,
            ));
        };
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or_default(),
        ));
        if let Err(e) = self.verifier.verify_client_cert(ee, intermediates, at) {
            use rustls::CertificateError as C;
            let problem = match &e {
                rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                    CardProblem::Expired
                }
                rustls::Error::InvalidCertificate(C::Revoked) => CardProblem::Revoked,
                rustls::Error::InvalidCertificate(C::UnknownIssuer) => CardProblem::UnknownIssuer,
                _ => CardProblem::Invalid,
            };
            return Err(CardRefusal::new(problem, e.to_string(), Some(ee.as_ref())));
        }
        read_card(ee.as_ref())
            .map_err(|(problem, error)| CardRefusal::new(problem, error, Some(ee.as_ref())))
    }
}

/// Subject and key usage of a verified authentication certificate.
fn read_card(der: &[u8]) -> Result<Card, (CardProblem, String)> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| (CardProblem::Invalid, e.to_string()))?;
    let ku = cert.key_usage().ok().flatten().map(|e| *e.value);
    // The authentication certificate signs (digitalSignature); the signature certificate is for
    // non-repudiation and must not open a session.
    match ku {
        Some(ku) if ku.digital_signature() && !ku.non_repudiation() => {}
        _ => {
            return Err((
                CardProblem::SignatureCertificate,
                "keyUsage is not digitalSignature alone: not an authentication certificate".into(),
            ))
        }
    }
    let attr = |oid: &x509_parser::der_parser::oid::Oid| {
        cert.subject()
            .iter_attributes()
            .find(|a| a.attr_type() == oid)
            .and_then(|a| a.as_str().ok())
            .map(str::to_string)
    };
    let serial = attr(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
        .ok_or((CardProblem::BadSerialNumber, "the subject has no serialNumber".to_string()))?;
    // The error names the rule that failed, never the number.
    let insz = Insz::parse(&serial).map_err(|e| {
        (CardProblem::BadSerialNumber, format!("the subject serialNumber is not an INSZ: {e}"))
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PathList;
    use idp_mocks::eid_ca::TestPki;
    use std::sync::OnceLock;

    /// One test PKI for the module (generating RSA keys is slow), written to a directory.
    fn pki() -> &'static (TestPki, tempfile::TempDir) {
        static PKI: OnceLock<(TestPki, tempfile::TempDir)> = OnceLock::new();
        PKI.get_or_init(|| {
            let pki = TestPki::generate().unwrap();
            let dir = tempfile::tempdir().unwrap();
            pki.write_to(dir.path()).unwrap();
            (pki, dir)
        })
    }

    fn tls(crl: PathList) -> EidTls {
        let (_, dir) = pki();
        let cfg = crate::config::EidConfig {
            ca_bundle: Some(dir.path().join("ca-bundle.pem")),
            crl,
            ..Default::default()
        };
        EidTls::build(&cfg).unwrap()
    }

    fn chain(key: &str) -> Vec<CertificateDer<'static>> {
        let card = pki().0.card(key).unwrap();
        CertificateDer::pem_slice_iter(card.chain_pem.as_bytes()).map(|c| c.unwrap()).collect()
    }

    fn now() -> i64 {
        crate::clock::Clock::default().now()
    }

    #[test]
    fn both_generations_verify_with_one_bundle_and_one_crl_file() {
        let dir = pki().1.path();
        for file in ["crl.pem", "crl.der"] {
            let tls = tls(PathList::One(dir.join(file)));
            for key in ["anna-rsa", "pieter-ec", "noor-ec"] {
                let card = tls
                    .verify_card(Some(&chain(key)), now())
                    .unwrap_or_else(|e| panic!("{file}: {key} refused: {e:?}"));
                assert_eq!(card.insz, pki().0.card(key).unwrap().insz);
            }
            let revoked = tls.verify_card(Some(&chain("revoked")), now()).unwrap_err();
            assert_eq!(revoked.problem, CardProblem::Revoked, "{file}: {revoked:?}");
        }
    }

    #[test]
    fn every_crl_of_a_file_is_read() {
        let dir = pki().1.path();
        assert_eq!(read_crls(&[dir.join("crl.pem")]).unwrap().len(), 4);
        let der = read_crls(&[dir.join("crl.der")]).unwrap();
        assert_eq!(der.len(), 4);
        let pem = read_crls(&[dir.join("crl.pem")]).unwrap();
        assert_eq!(der, pem, "the DER file holds the same CRLs");
        let junk = dir.join("junk.der");
        std::fs::write(&junk, [0x30, 0x82, 0xff, 0xff, 0x00]).unwrap();
        assert!(read_crls(&[junk]).is_err(), "a truncated DER CRL is refused");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").unwrap();
        assert!(read_crls(&[empty]).is_err(), "a file without a CRL is refused");
    }

    #[test]
    fn a_refusal_names_the_error_issuer_and_serial_but_not_the_insz() {
        let tls = tls(PathList::One(pki().1.path().join("crl.pem")));
        for key in ["revoked", "bad-insz", "expired", "foreign"] {
            let r = tls.verify_card(Some(&chain(key)), now()).unwrap_err();
            assert!(!r.error.is_empty(), "{key}");
            let issuer = r.issuer.as_deref().unwrap_or_default();
            assert!(issuer.contains("CN=Citizen CA"), "{key}: {issuer}");
            let serial = r.serial.as_deref().unwrap_or_default();
            assert!(serial.len() >= 32, "{key}: {serial}");
            let insz = &pki().0.card(key).unwrap().insz;
            assert!(!format!("{r:?}").contains(insz.as_str()), "{key}: {r:?}");
        }
        let none = tls.verify_card(None, now()).unwrap_err();
        assert_eq!(none.problem, CardProblem::NoCertificate);
    }

    #[test]
    fn the_verifier_uses_the_given_time() {
        let tls = tls(PathList::One(pki().1.path().join("crl.pem")));
        let later = now() + 11 * 365 * 86_400;
        let r = tls.verify_card(Some(&chain("anna-rsa")), later).unwrap_err();
        assert_eq!(r.problem, CardProblem::Expired, "{r:?}");
    }
}
