//! A test eHealth PKI (SPEC §10): the certificates the eHealth Certificate Manager gives care
//! providers, organisations and institutions for their software, so that the broker's
//! `client_credentials` grant (`private_key_jwt` and `tls_client_auth`) can be tested and shown
//! with real X.509 certificates. Keys are fresh on every [`EhealthPki::generate`]; names and
//! numbers are fixed. Nothing here is trusted outside tests and the demo.
//!
//! # Chain
//!
//! `C=BE, O=Federal Government, OU=eHealth-platform Belgium, CN=eHealth Test Root CA` (EC P-256)
//! → `…, CN=eHealth Test Issuing CA` (EC P-256, pathlen 0) → the certificates below, each with
//! keyUsage digitalSignature + keyEncipherment, extKeyUsage clientAuth, an authorityKeyIdentifier
//! and a CRL distribution point, valid three years.
//!
//! # Certificates ([`EhealthPki::cert`])
//!
//! | key | subject CN | keys | what it tests |
//! |---|---|---|---|
//! | `gp-rsa` | `SSIN=75031212346` (Pieter Janssens, a GP in the CoBRHA mock) | RSA-2048 | person; the demo software package |
//! | `gp-ec` | `SSIN=75031212346` | EC P-256 | the same holder with a second certificate |
//! | `patient-ec` | `SSIN=85073003328` (Anna Peeters, no profession) | EC P-256 | person without a profession |
//! | `org-rsa` | `CBE=0809394427` | RSA-2048 | organisation |
//! | `org-ec` | `CBE=0403553751` | EC P-256 | organisation |
//! | `hospital-ec` | `NIHII-HOSPITAL=71012345` | EC P-256 | institution |
//! | `expired` | `SSIN=60041505705` | EC P-256 | notAfter 30 days ago |
//! | `revoked` | `SSIN=90120512451` | EC P-256 | in the issuing CA's CRL |
//! | `bad-subject` | `Pieter Janssens` | EC P-256 | chains, but the subject names no holder |
//! | `foreign` | `SSIN=75031212346` | EC P-256 | issued by a CA outside the bundle |
//! | `lookalike` | `SSIN=75031212346` | EC P-256 | issued by a CA with the trusted issuing CA's exact name but another key |
//!
//! # CRLs
//!
//! [`EhealthPki::crl_pem`]: the issuing CA's CRL (listing `revoked`) then the root's (empty),
//! thisUpdate now, nextUpdate in 7 days. [`EhealthPki::crl_pem_revoking`] signs a new list
//! revoking other certificates too (a CRL that changes while the broker runs).
//!
//! # Files ([`EhealthPki::write_files`], binary `ehealth-test-ca <dir>`)
//!
//! `ca-bundle.pem` (root and issuing CA), `crl.pem`, `foreign-ca.pem`, `lookalike-ca.pem`,
//! `README.txt`, and per certificate `<key>.pem`, `<key>.key` (PKCS#8) and `<key>-chain.pem`
//! (certificate + issuing CA).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CrlDistributionPoint, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, RevocationReason, RevokedCertParams,
    SerialNumber,
};
use time::OffsetDateTime;

use crate::eid_ca::{self, Ca, KeyKind, DAY, YEAR};

/// Common name of the test root.
pub const ROOT_CN: &str = "eHealth Test Root CA";
/// Common name of the CA that issues the certificates (the look-alike CA has it too).
pub const ISSUING_CA_CN: &str = "eHealth Test Issuing CA";
/// INSZ of the demo GP's certificates (`gp-rsa`, `gp-ec`).
pub const GP_INSZ: &str = "75031212346";
const CRL_URL: &str = "http://crl.ehealth.invalid/issuing.crl";
const ROOT_CRL_URL: &str = "http://crl.ehealth.invalid/root.crl";

#[derive(Clone, Copy, PartialEq)]
enum Status {
    Valid,
    Revoked,
    Expired,
}

#[derive(Clone, Copy, PartialEq)]
enum By {
    Trusted,
    Foreign,
    Lookalike,
}

struct Spec {
    key: &'static str,
    cn: &'static str,
    kind: KeyKind,
    status: Status,
    by: By,
    note: &'static str,
}

const SPECS: &[Spec] = &[
    Spec {
        key: "gp-rsa",
        cn: "SSIN=75031212346",
        kind: KeyKind::Rsa2048,
        status: Status::Valid,
        by: By::Trusted,
        note: "person: Pieter Janssens, GP (CoBRHA mock); the demo software package",
    },
    Spec {
        key: "gp-ec",
        cn: "SSIN=75031212346",
        kind: KeyKind::P256,
        status: Status::Valid,
        by: By::Trusted,
        note: "person: the same GP, a second certificate",
    },
    Spec {
        key: "patient-ec",
        cn: "SSIN=85073003328",
        kind: KeyKind::P256,
        status: Status::Valid,
        by: By::Trusted,
        note: "person: Anna Peeters, no CoBRHA profession",
    },
    Spec {
        key: "org-rsa",
        cn: "CBE=0809394427",
        kind: KeyKind::Rsa2048,
        status: Status::Valid,
        by: By::Trusted,
        note: "organisation",
    },
    Spec {
        key: "org-ec",
        cn: "CBE=0403553751",
        kind: KeyKind::P256,
        status: Status::Valid,
        by: By::Trusted,
        note: "organisation",
    },
    Spec {
        key: "hospital-ec",
        cn: "NIHII-HOSPITAL=71012345",
        kind: KeyKind::P256,
        status: Status::Valid,
        by: By::Trusted,
        note: "institution: a hospital",
    },
    Spec {
        key: "expired",
        cn: "SSIN=60041505705",
        kind: KeyKind::P256,
        status: Status::Expired,
        by: By::Trusted,
        note: "expired 30 days ago",
    },
    Spec {
        key: "revoked",
        cn: "SSIN=90120512451",
        kind: KeyKind::P256,
        status: Status::Revoked,
        by: By::Trusted,
        note: "revoked (in crl.pem)",
    },
    Spec {
        key: "bad-subject",
        cn: "Pieter Janssens",
        kind: KeyKind::P256,
        status: Status::Valid,
        by: By::Trusted,
        note: "chains, but the subject names no SSIN, CBE or NIHII holder",
    },
    Spec {
        key: "foreign",
        cn: "SSIN=75031212346",
        kind: KeyKind::P256,
        status: Status::Valid,
        by: By::Foreign,
        note: "issued by a CA outside ca-bundle.pem (foreign-ca.pem)",
    },
    Spec {
        key: "lookalike",
        cn: "SSIN=75031212346",
        kind: KeyKind::P256,
        status: Status::Valid,
        by: By::Lookalike,
        note: "issued by a CA with the trusted issuing CA's name but another key",
    },
];

/// One test eHealth certificate with its private key.
#[derive(Clone)]
pub struct EhealthCert {
    /// See the module documentation.
    pub key: &'static str,
    /// The subject's common name, e.g. `SSIN=75031212346`.
    pub cn: &'static str,
    pub cert_pem: String,
    /// PKCS#8 PEM.
    pub key_pem: String,
    /// Certificate followed by its issuing CA.
    pub chain_pem: String,
    /// EC P-256 rather than RSA-2048.
    pub ec: bool,
    serial: SerialNumber,
}

/// The whole test eHealth PKI.
#[derive(Clone)]
pub struct EhealthPki {
    /// Root and issuing CA: what the broker trusts (`[ehealth] ca_bundle`).
    pub ca_bundle_pem: String,
    /// The issuing CA's CRL (listing `revoked`) and the root's.
    pub crl_pem: String,
    pub certs: Vec<EhealthCert>,
    /// Root + issuing CA of another PKI (not trusted).
    pub foreign_ca_pem: String,
    /// The look-alike issuing CA (self-signed, same name as the trusted issuing CA).
    pub lookalike_ca_pem: String,
    root: Arc<Ca>,
    issuing: Arc<Ca>,
    now: OffsetDateTime,
}

fn name(cn: &str) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, eid_ca::printable("BE")?);
    dn.push(DnType::OrganizationName, "Federal Government");
    dn.push(DnType::OrganizationalUnitName, "eHealth-platform Belgium");
    dn.push(DnType::CommonName, cn);
    Ok(dn)
}

fn new_ca(cn: &str, parent: Option<&Ca>, now: OffsetDateTime) -> Result<Ca> {
    let mut params = eid_ca::ca_params(name(cn)?, (now - 5 * YEAR, now + 10 * YEAR));
    let (key, _) = eid_ca::new_key(KeyKind::P256)?;
    match parent {
        None => {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            CertifiedIssuer::self_signed(params, key).with_context(|| format!("self-signing {cn}"))
        }
        Some(parent) => {
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.use_authority_key_identifier_extension = true;
            params.crl_distribution_points =
                vec![CrlDistributionPoint { uris: vec![ROOT_CRL_URL.into()] }];
            CertifiedIssuer::signed_by(params, key, parent).with_context(|| format!("signing {cn}"))
        }
    }
}

fn issue(spec: &Spec, issuer: &Ca, now: OffsetDateTime) -> Result<EhealthCert> {
    let (not_before, not_after) = match spec.status {
        Status::Expired => (now - 3 * YEAR - 30 * DAY, now - 30 * DAY),
        _ => (now - DAY, now + 3 * YEAR),
    };
    let serial = eid_ca::new_serial();
    let mut params = CertificateParams::default();
    params.distinguished_name = name(spec.cn)?;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(serial.clone());
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![CRL_URL.into()] }];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let (key, key_pem) = eid_ca::new_key(spec.kind)?;
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("issuing the {} certificate", spec.key))?;
    let cert_pem = cert.pem();
    Ok(EhealthCert {
        key: spec.key,
        cn: spec.cn,
        chain_pem: format!("{cert_pem}{}", issuer.pem()),
        cert_pem,
        key_pem,
        ec: !matches!(spec.kind, KeyKind::Rsa2048),
        serial,
    })
}

impl EhealthPki {
    /// Generates the PKI with the current time.
    pub fn generate() -> Result<Self> {
        Self::generate_at(SystemTime::now())
    }

    /// Generates the PKI as if `now` were the current time.
    pub fn generate_at(now: SystemTime) -> Result<Self> {
        let now = OffsetDateTime::from(now).replace_nanosecond(0).context("time")?;
        let root = new_ca(ROOT_CN, None, now)?;
        let issuing = new_ca(ISSUING_CA_CN, Some(&root), now)?;
        let foreign_root = new_ca("eHealth Foreign Test Root CA", None, now)?;
        let foreign = new_ca("eHealth Foreign Test Issuing CA", Some(&foreign_root), now)?;
        let lookalike = new_ca(ISSUING_CA_CN, None, now)?;
        let mut certs = Vec::new();
        for spec in SPECS {
            let by = match spec.by {
                By::Trusted => &issuing,
                By::Foreign => &foreign,
                By::Lookalike => &lookalike,
            };
            certs.push(issue(spec, by, now)?);
        }
        let mut pki = Self {
            ca_bundle_pem: format!("{}{}", root.pem(), issuing.pem()),
            crl_pem: String::new(),
            certs,
            foreign_ca_pem: format!("{}{}", foreign_root.pem(), foreign.pem()),
            lookalike_ca_pem: lookalike.pem(),
            root: Arc::new(root),
            issuing: Arc::new(issuing),
            now,
        };
        pki.crl_pem = pki.crl_pem_revoking(&[])?;
        Ok(pki)
    }

    /// The certificate with this [`EhealthCert::key`].
    pub fn cert(&self, key: &str) -> Option<&EhealthCert> {
        self.certs.iter().find(|c| c.key == key)
    }

    /// The CRLs (issuing CA, then root) revoking `revoked` and these certificates as well.
    pub fn crl_pem_revoking(&self, more: &[&str]) -> Result<String> {
        let mut revoked = Vec::new();
        for (spec, cert) in SPECS.iter().zip(&self.certs) {
            if spec.by == By::Trusted
                && (spec.status == Status::Revoked || more.contains(&spec.key))
            {
                revoked.push(RevokedCertParams {
                    serial_number: cert.serial.clone(),
                    revocation_time: self.now - DAY,
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                });
            }
        }
        for key in more {
            self.cert(key).ok_or_else(|| anyhow!("no test certificate {key}"))?;
        }
        let issuing = eid_ca::crl(&self.issuing, self.now, revoked)?;
        let root = eid_ca::crl(&self.root, self.now, Vec::new())?;
        Ok(format!("{}{}", issuing.pem().context("CRL PEM")?, root.pem().context("CRL PEM")?))
    }

    /// Writes every file (see the module documentation) into `dir`; returns the paths.
    pub fn write_files(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut written = Vec::new();
        let mut put = |name: String, bytes: &[u8], secret: bool| -> Result<()> {
            let path = dir.join(name);
            eid_ca::write_file(&path, bytes, secret)?;
            written.push(path);
            Ok(())
        };
        put("ca-bundle.pem".into(), self.ca_bundle_pem.as_bytes(), false)?;
        put("crl.pem".into(), self.crl_pem.as_bytes(), false)?;
        put("foreign-ca.pem".into(), self.foreign_ca_pem.as_bytes(), false)?;
        put("lookalike-ca.pem".into(), self.lookalike_ca_pem.as_bytes(), false)?;
        for c in &self.certs {
            put(format!("{}.pem", c.key), c.cert_pem.as_bytes(), false)?;
            put(format!("{}.key", c.key), c.key_pem.as_bytes(), true)?;
            put(format!("{}-chain.pem", c.key), c.chain_pem.as_bytes(), false)?;
        }
        put("README.txt".into(), self.readme().as_bytes(), false)?;
        Ok(written)
    }

    fn readme(&self) -> String {
        let mut list = String::new();
        for (spec, c) in SPECS.iter().zip(&self.certs) {
            let kind = if c.ec { "EC P-256" } else { "RSA-2048" };
            list.push_str(&format!("  {:<12} CN={:<26} {kind:<9} {}\n", c.key, c.cn, spec.note));
        }
        format!(
            "Test eHealth PKI (generated by idp-mocks ehealth-test-ca). NOT the real eHealth PKI.\n\
             \n\
             Trust: ca-bundle.pem (\"{ROOT_CN}\" -> \"{ISSUING_CA_CN}\", EC P-256);\n\
             revocation: crl.pem (issuing CA, then root; valid 7 days from generation).\n\
             \n\
             Certificates (<key>.pem, <key>.key PKCS#8, <key>-chain.pem):\n{list}\n\
             Register a software client with one of them:\n  \
             cozo-broker client add --id my-software --grant client_credentials \\\n    \
             --certificate gp-rsa.pem --auth-method private_key_jwt --json\n"
        )
    }
}

impl EhealthCert {
    /// The certificate's DER.
    pub fn der(&self) -> Result<Vec<u8>> {
        let pem = self.cert_pem.trim();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        use base64::Engine as _;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    /// `x5t#S256`: the base64url SHA-256 of the DER (RFC 7515 §4.1.8, RFC 8705 §3.1).
    pub fn x5t_s256(&self) -> Result<String> {
        use base64::Engine as _;
        use sha2::Digest as _;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(self.der()?)))
    }

    /// A `private_key_jwt` client assertion (RFC 7523) signed with this certificate's key:
    /// `alg` `RS256`/`PS256` (RSA) or `ES256` (EC); the header names the certificate by
    /// `x5t#S256`, or carries it in `x5c` when `x5c` is set.
    pub fn client_assertion(
        &self,
        alg: &str,
        claims: &serde_json::Value,
        x5c: bool,
    ) -> Result<String> {
        use base64::Engine as _;
        let mut header = serde_json::json!({ "alg": alg, "typ": "JWT" });
        if x5c {
            header["x5c"] =
                serde_json::json!([base64::engine::general_purpose::STANDARD.encode(self.der()?)]);
        } else {
            header["x5t#S256"] = self.x5t_s256()?.into();
        }
        sign_jws(&self.key_pem, alg, &header, claims)
    }
}

/// A compact JWS over `claims` with `header`, signed by the PKCS#8 PEM key (OpenSSL).
pub fn sign_jws(
    key_pem: &str,
    alg: &str,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Result<String> {
    use base64::Engine as _;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::{RsaPssSaltlen, Signer};
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input =
        format!("{}.{}", b64(&serde_json::to_vec(header)?), b64(&serde_json::to_vec(claims)?));
    let key = PKey::private_key_from_pem(key_pem.as_bytes()).context("private key")?;
    let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
    if alg == "PS256" {
        signer.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
    }
    signer.update(input.as_bytes())?;
    let sig = signer.sign_to_vec()?;
    let sig = if alg == "ES256" {
        // DER ECDSA signature → the JOSE r || s form.
        let s = openssl::ecdsa::EcdsaSig::from_der(&sig)?;
        let mut raw = s.r().to_vec_padded(32)?;
        raw.extend(s.s().to_vec_padded(32)?);
        raw
    } else {
        sig
    };
    Ok(format!("{input}.{}", b64(&sig)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pki_has_every_certificate_and_a_crl_per_ca() {
        let pki = EhealthPki::generate().unwrap();
        for spec in SPECS {
            let c = pki.cert(spec.key).unwrap();
            assert!(c.cert_pem.contains("BEGIN CERTIFICATE"), "{}", spec.key);
            assert_eq!(c.x5t_s256().unwrap().len(), 43);
        }
        assert_eq!(pki.crl_pem.matches("BEGIN X509 CRL").count(), 2);
        assert_ne!(pki.crl_pem_revoking(&["gp-ec"]).unwrap(), pki.crl_pem);
        assert!(pki.crl_pem_revoking(&["nobody"]).is_err());
        let a = pki
            .cert("gp-ec")
            .unwrap()
            .client_assertion("ES256", &serde_json::json!({"iss": "x"}), true)
            .unwrap();
        assert_eq!(a.split('.').count(), 3);
    }
}
