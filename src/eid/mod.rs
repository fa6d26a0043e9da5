//! Belgian eID card login (SPEC §6): a second TLS listener that asks for a client certificate.
//!
//! The TLS layer checks that the client holds the key of the certificate it sends (the handshake
//! signature) but accepts any certificate, so that a person whose card is expired, revoked or
//! from another CA gets a page saying what to check instead of a broken connection. The chain,
//! validity and revocation (CRL) are then checked by rustls' WebPKI verifier, and the broker
//! checks that it is the card's *authentication* certificate (digitalSignature, not the
//! non-repudiation signature certificate) and reads the INSZ from the subject `serialNumber`.

use crate::identity::Insz;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
pub mod login;
pub mod server;

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EidError {
    #[error("eid.{0}: {1}")]
    Config(&'static str, String),
    /// The store failed during a card login's steps.
    #[error("eID login: {0}")]
    Store(#[from] crate::store::StoreError),
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

/// The TLS side of the listener: server config plus the real chain verifier.
pub struct EidTls {
    pub server: Arc<rustls::ServerConfig>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl EidTls {
    pub fn build(cfg: &crate::config::EidConfig) -> Result<Self, EidError> {
        let bundle =
            cfg.ca_bundle.as_ref().ok_or(EidError::Config("ca_bundle", "not set".into()))?;
        let revocation = crate::trust::Revocation { end_entity_only: true, enforce_expiry: false };
        let verifier = crate::trust::client_verifier(bundle, &cfg.crl.paths(), revocation)
            .map_err(|e| EidError::Config(e.key, e.message))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (chain, key) = server_identity(cfg)?;
        // TLS 1.2 is offered because RSA cards can only sign PKCS#1 v1.5 (not allowed in TLS 1.3).
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| EidError::Config("listen", e.to_string()))?
            .with_client_cert_verifier(Arc::new(crate::trust::DeferredVerifier {
                inner: verifier.clone(),
            }))
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
    crate::trust::server_identity(cfg.cert.as_deref(), cfg.key.as_deref(), &cfg.public_url)
        .map_err(|e| EidError::Config(e.key, e.message))
}

/// The eID configuration in use, rebuilt when a CRL file changes (checked every 30 s, so a new
/// list takes effect within a minute).
pub struct EidState {
    cfg: crate::config::EidConfig,
    tls: crate::trust::Reloading<EidTls>,
}

impl EidState {
    pub fn new(cfg: &crate::config::EidConfig) -> Result<Option<Arc<Self>>, EidError> {
        if cfg.ca_bundle.is_none() {
            return Ok(None);
        }
        let tls = EidTls::build(cfg)?;
        Ok(Some(Arc::new(Self {
            tls: crate::trust::Reloading::new(cfg.crl.paths(), tls),
            cfg: cfg.clone(),
        })))
    }

    pub fn current(&self) -> Arc<EidTls> {
        self.tls.current()
    }

    /// Rebuilds the verifier when a CRL file changed; keeps the old one if the new one is broken.
    pub fn reload_if_changed(&self) {
        self.tls.reload_if_changed("eID", || EidTls::build(&self.cfg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PathList;
    use idp_mocks::eid_ca::TestPki;
    use rustls::pki_types::pem::PemObject;
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
        assert_eq!(crate::trust::read_crls(&[dir.join("crl.pem")]).unwrap().len(), 4);
        let der = crate::trust::read_crls(&[dir.join("crl.der")]).unwrap();
        assert_eq!(der.len(), 4);
        let pem = crate::trust::read_crls(&[dir.join("crl.pem")]).unwrap();
        assert_eq!(der, pem, "the DER file holds the same CRLs");
        let junk = dir.join("junk.der");
        std::fs::write(&junk, [0x30, 0x82, 0xff, 0xff, 0x00]).unwrap();
        assert!(crate::trust::read_crls(&[junk]).is_err(), "a truncated DER CRL is refused");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").unwrap();
        assert!(crate::trust::read_crls(&[empty]).is_err(), "a file without a CRL is refused");
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
