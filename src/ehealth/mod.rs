//! eHealth certificates (SPEC §10): the X.509 certificates the eHealth Certificate Manager gives
//! care providers, organisations and institutions for their software. A certificate is trusted
//! when rustls-webpki finds a path to `[ehealth] ca_bundle` at the request's time and the
//! issuing CA's current CRL says it is not revoked (no CRL: status unknown, refused); then its
//! subject names the holder, parsed into a [`CertificateHolder`]. Anything else is refused with
//! a [`CertificateProblem`] that says what is wrong.

use crate::identity::Insz;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EhealthError {
    #[error("ehealth.{0}: {1}")]
    Config(&'static str, String),
}

/// A Belgian enterprise number (KBO/BCE, "CBE"): 10 digits, starting with 0 or 1, the last two
/// `97 - (first eight mod 97)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cbe(String);

impl Cbe {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a CBE number has 10 digits");
        }
        if !s.starts_with('0') && !s.starts_with('1') {
            return Err("a CBE number starts with 0 or 1");
        }
        let (body, check) = s.split_at(8);
        let (Ok(body), Ok(check)) = (body.parse::<u64>(), check.parse::<u64>()) else {
            return Err("a CBE number has 10 digits");
        };
        if 97 - body % 97 != check {
            return Err("the CBE check digits do not match");
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who an eHealth certificate belongs to, read from its subject's common name:
/// `SSIN=<INSZ>`, `CBE=<10 digits>` or `NIHII-<TYPE>=<number>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateHolder {
    Person(Insz),
    Organisation(Cbe),
    /// An institution (hospital, pharmacy, laboratory …): its NIHII number and type.
    Institution {
        nihii: String,
        kind: String,
    },
}

impl CertificateHolder {
    pub fn parse_cn(cn: &str) -> Result<Self, String> {
        let Some((name, value)) = cn.split_once('=') else {
            return Err("the subject common name names no SSIN, CBE or NIHII holder".into());
        };
        match name {
            "SSIN" => Insz::parse(value)
                .map(Self::Person)
                .map_err(|e| format!("the subject SSIN is not an INSZ: {e}")),
            "CBE" => Cbe::parse(value)
                .map(Self::Organisation)
                .map_err(|e| format!("the subject CBE is not valid: {e}")),
            _ => {
                let kind = name
                    .strip_prefix("NIHII-")
                    .filter(|k| {
                        !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
                    })
                    .ok_or("the subject common name names no SSIN, CBE or NIHII holder")?;
                if !matches!(value.len(), 8 | 11) || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("the subject NIHII number must have 8 or 11 digits".into());
                }
                Ok(Self::Institution { nihii: value.to_string(), kind: kind.to_string() })
            }
        }
    }

    /// A stable key for the holder, the same across certificates (input of the `sub`).
    pub fn key(&self) -> String {
        match self {
            Self::Person(i) => format!("ssin:{}", i.as_str()),
            Self::Organisation(c) => format!("cbe:{}", c.as_str()),
            Self::Institution { nihii, kind } => format!("nihii-{kind}:{nihii}"),
        }
    }

    /// The claims that name the holder in tokens: `insz`, `cbe`, or `nihii` and `nihii_type`.
    pub fn claims(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        match self {
            Self::Person(i) => {
                m.insert("insz".into(), i.as_str().into());
            }
            Self::Organisation(c) => {
                m.insert("cbe".into(), c.as_str().into());
            }
            Self::Institution { nihii, kind } => {
                m.insert("nihii".into(), nihii.clone().into());
                m.insert("nihii_type".into(), kind.clone().into());
            }
        }
        m
    }
}

/// Why a certificate is refused; the text is safe to show the operator or the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    #[error("no certificate was presented")]
    NoCertificate,
    #[error("the certificate is not a readable X.509 certificate")]
    Unreadable,
    #[error("the certificate has expired or is not yet valid")]
    Expired,
    #[error("the certificate is revoked")]
    Revoked,
    #[error("the certificate was not issued by a trusted eHealth CA")]
    UnknownIssuer,
    #[error("the certificate's revocation status is unknown (no current CRL of its CA)")]
    UnknownStatus,
    #[error("the certificate is not valid: {0}")]
    Invalid(String),
    #[error("{0}")]
    Holder(String),
}

/// A certificate that chains to the eHealth CAs, is not revoked or expired, and names a holder.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    pub holder: CertificateHolder,
    /// RFC 8705 `x5t#S256`: base64url SHA-256 of the DER.
    pub x5t_s256: String,
}

/// `x5t#S256` of a DER certificate.
pub fn thumbprint(der: &[u8]) -> String {
    crate::crypto::b64url(&crate::crypto::sha256(der))
}

/// The certificates of a PEM text, in order (the first one is the holder's).
pub fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CertificateProblem> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| CertificateProblem::Unreadable)?;
    if certs.is_empty() {
        return Err(CertificateProblem::NoCertificate);
    }
    Ok(certs)
}

/// The path validator over the eHealth CAs and their CRLs.
pub struct EhealthTrust {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl EhealthTrust {
    pub fn build(cfg: &crate::config::EhealthConfig) -> Result<Self, EhealthError> {
        let bundle =
            cfg.ca_bundle.as_ref().ok_or(EhealthError::Config("ca_bundle", "not set".into()))?;
        // Every certificate of the path is checked against its CA's CRL, and a list past its
        // nextUpdate is no answer: a software client acts without a person present.
        let revocation = crate::trust::Revocation { end_entity_only: false, enforce_expiry: true };
        if cfg.crl.paths().is_empty() {
            // Without any list webpki would not check revocation at all.
            return Err(EhealthError::Config(
                "crl",
                "the CRLs of the eHealth CAs are required (every issuing CA needs one)".into(),
            ));
        }
        let verifier = crate::trust::client_verifier(bundle, &cfg.crl.paths(), revocation)
            .map_err(|e| EhealthError::Config(e.key, e.message))?;
        Ok(Self { verifier })
    }

    /// The path validator itself (the mTLS listener checks handshake signatures with it).
    pub fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.verifier.clone()
    }

    /// Checks `chain` (holder's certificate first) at `now`, unix seconds: path, validity (no
    /// leeway), revocation, then the holder.
    pub fn verify(
        &self,
        chain: &[CertificateDer<'_>],
        now: i64,
    ) -> Result<VerifiedCertificate, CertificateProblem> {
        let (ee, intermediates) = chain.split_first().ok_or(CertificateProblem::NoCertificate)?;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or_default(),
        ));
        if let Err(e) = self.verifier.verify_client_cert(ee, intermediates, at) {
            use rustls::CertificateError as C;
            return Err(match e {
                rustls::Error::InvalidCertificate(
                    C::Expired
                    | C::ExpiredContext { .. }
                    | C::NotValidYet
                    | C::NotValidYetContext { .. },
                ) => CertificateProblem::Expired,
                rustls::Error::InvalidCertificate(C::Revoked) => CertificateProblem::Revoked,
                rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
                    CertificateProblem::UnknownIssuer
                }
                rustls::Error::InvalidCertificate(
                    C::UnknownRevocationStatus
                    | C::ExpiredRevocationList
                    | C::ExpiredRevocationListContext { .. },
                ) => CertificateProblem::UnknownStatus,
                other => CertificateProblem::Invalid(other.to_string()),
            });
        }
        Ok(VerifiedCertificate { holder: holder_of(ee.as_ref())?, x5t_s256: thumbprint(ee) })
    }
}

/// The holder named by the subject's (single) common name.
fn holder_of(der: &[u8]) -> Result<CertificateHolder, CertificateProblem> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertificateProblem::Unreadable)?;
    let mut cns = cert.subject().iter_common_name();
    let cn = cns
        .next()
        .and_then(|a| a.as_str().ok())
        .ok_or_else(|| CertificateProblem::Holder("the subject has no common name".into()))?;
    if cns.next().is_some() {
        return Err(CertificateProblem::Holder("the subject has more than one common name".into()));
    }
    CertificateHolder::parse_cn(cn).map_err(CertificateProblem::Holder)
}

/// The public key of a certificate, as jsonwebtoken verifies with it: RSA or EC P-256.
pub fn verification_key(
    der: &[u8],
) -> Result<(jsonwebtoken::DecodingKey, KeyKind), CertificateProblem> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CertificateProblem::Unreadable)?;
    let spki = cert.public_key();
    let bits = spki.subject_public_key.data.as_ref();
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => {
            Ok((jsonwebtoken::DecodingKey::from_rsa_der(bits), KeyKind::Rsa))
        }
        Ok(x509_parser::public_key::PublicKey::EC(p)) if p.key_size() == 256 => {
            Ok((jsonwebtoken::DecodingKey::from_ec_der(bits), KeyKind::EcP256))
        }
        _ => Err(CertificateProblem::Invalid("the key is neither RSA nor EC P-256".into())),
    }
}

/// The kind of key a certificate holds, which decides the JWS algorithms it can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
}

impl KeyKind {
    pub fn allows(self, alg: jsonwebtoken::Algorithm) -> bool {
        use jsonwebtoken::Algorithm as A;
        matches!((self, alg), (Self::Rsa, A::RS256 | A::PS256) | (Self::EcP256, A::ES256))
    }
}

/// The eHealth trust in use, rebuilt when a CRL file changes (checked every 30 s, so a new list
/// takes effect within a minute).
pub struct Ehealth {
    cfg: crate::config::EhealthConfig,
    trust: crate::trust::Reloading<EhealthTrust>,
}

impl Ehealth {
    pub fn new(cfg: &crate::config::EhealthConfig) -> Result<Option<Arc<Self>>, EhealthError> {
        if cfg.ca_bundle.is_none() {
            return Ok(None);
        }
        let trust = EhealthTrust::build(cfg)?;
        Ok(Some(Arc::new(Self {
            trust: crate::trust::Reloading::new(cfg.crl.paths(), trust),
            cfg: cfg.clone(),
        })))
    }

    pub fn current(&self) -> Arc<EhealthTrust> {
        self.trust.current()
    }

    pub fn reload_if_changed(&self) {
        self.trust.reload_if_changed("eHealth", || EhealthTrust::build(&self.cfg));
    }

    /// Checks a stored (PEM) certificate chain at `now`.
    pub fn verify_pem(
        &self,
        pem: &str,
        now: i64,
    ) -> Result<VerifiedCertificate, CertificateProblem> {
        self.current().verify(&parse_pem(pem.as_bytes())?, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EhealthConfig, PathList};
    use idp_mocks::ehealth_ca::EhealthPki;
    use std::sync::OnceLock;

    fn pki() -> &'static (EhealthPki, tempfile::TempDir) {
        static PKI: OnceLock<(EhealthPki, tempfile::TempDir)> = OnceLock::new();
        PKI.get_or_init(|| {
            let pki = EhealthPki::generate().unwrap();
            let dir = tempfile::tempdir().unwrap();
            pki.write_files(dir.path()).unwrap();
            (pki, dir)
        })
    }

    fn trust() -> EhealthTrust {
        let dir = pki().1.path();
        EhealthTrust::build(&EhealthConfig {
            ca_bundle: Some(dir.join("ca-bundle.pem")),
            crl: PathList::One(dir.join("crl.pem")),
            ..Default::default()
        })
        .unwrap()
    }

    fn check(t: &EhealthTrust, key: &str) -> Result<VerifiedCertificate, CertificateProblem> {
        let c = pki().0.cert(key).unwrap();
        t.verify(&parse_pem(c.chain_pem.as_bytes()).unwrap(), crate::clock::Clock::default().now())
    }

    #[test]
    fn holders_are_read_from_the_subject() {
        let t = trust();
        let gp = check(&t, "gp-rsa").unwrap();
        assert_eq!(gp.holder, CertificateHolder::Person(Insz::parse("75031212346").unwrap()));
        assert_eq!(gp.x5t_s256, pki().0.cert("gp-rsa").unwrap().x5t_s256().unwrap());
        assert_eq!(check(&t, "gp-ec").unwrap().holder.key(), gp.holder.key());
        let org = check(&t, "org-ec").unwrap().holder;
        assert_eq!(org.claims()["cbe"], "0403553751");
        let h = check(&t, "hospital-ec").unwrap().holder;
        assert_eq!(
            h,
            CertificateHolder::Institution { nihii: "71012345".into(), kind: "HOSPITAL".into() }
        );
    }

    #[test]
    fn bad_certificates_are_refused_with_the_reason() {
        let t = trust();
        assert_eq!(check(&t, "expired").unwrap_err(), CertificateProblem::Expired);
        assert_eq!(check(&t, "revoked").unwrap_err(), CertificateProblem::Revoked);
        assert_eq!(check(&t, "foreign").unwrap_err(), CertificateProblem::UnknownIssuer);
        assert_eq!(check(&t, "lookalike").unwrap_err(), CertificateProblem::UnknownIssuer);
        assert!(matches!(check(&t, "bad-subject").unwrap_err(), CertificateProblem::Holder(_)));
        let later = crate::clock::Clock::default().now() + 8 * 86_400;
        let c = pki().0.cert("gp-ec").unwrap();
        let stale = t.verify(&parse_pem(c.chain_pem.as_bytes()).unwrap(), later).unwrap_err();
        assert_eq!(stale, CertificateProblem::UnknownStatus, "a CRL past nextUpdate");
    }

    #[test]
    fn without_its_ca_crl_the_status_is_unknown() {
        let dir = pki().1.path();
        let cfg = |crl| EhealthConfig {
            ca_bundle: Some(dir.join("ca-bundle.pem")),
            crl,
            ..Default::default()
        };
        assert!(EhealthTrust::build(&cfg(PathList::None)).is_err(), "a CRL is required");
        // Only the root's list: the issuing CA's certificates have no known status.
        let crls = std::fs::read_to_string(dir.join("crl.pem")).unwrap();
        let start = crls.rfind("-----BEGIN X509 CRL-----").unwrap();
        let root_only = dir.join("root-crl.pem");
        std::fs::write(&root_only, &crls[start..]).unwrap();
        let t = EhealthTrust::build(&cfg(PathList::One(root_only))).unwrap();
        assert_eq!(check(&t, "gp-ec").unwrap_err(), CertificateProblem::UnknownStatus);
    }

    #[test]
    fn cn_forms() {
        assert!(CertificateHolder::parse_cn("SSIN=75031212347").is_err());
        assert!(CertificateHolder::parse_cn("CBE=0403553752").is_err());
        assert!(CertificateHolder::parse_cn("CBE=0403553751").is_ok());
        assert!(CertificateHolder::parse_cn("NIHII-=71012345").is_err());
        assert!(CertificateHolder::parse_cn("NIHII-LABO=7101234").is_err());
        assert!(CertificateHolder::parse_cn("Pieter").is_err());
    }
}
