//! A test Belgian eID PKI with the two trusted generations the real eID has side by side, shaped
//! like the real certificates (`shared/notes/domain.md` §4), so that the broker's eID listener
//! (SPEC §6) can be tested with real TLS client certificates. Keys are fresh on every
//! [`TestPki::generate`]; names, national numbers, key types, extensions and validity windows are
//! fixed. The names are those of the real CAs; the keys are not: nothing here is trusted outside
//! tests and the demo.
//!
//! # Chains
//!
//! | generation | root | Citizen CA | cards |
//! |---|---|---|---|
//! | 1 (applet 1.7) | `C=BE, CN=Belgium Root CA4`, RSA-2048, sha256WithRSAEncryption | `C=BE, CN=Citizen CA, serialNumber=201508`, RSA-2048, sha256WithRSAEncryption | RSA-2048 |
//! | 2 (applet 1.8) | `C=BE, CN=Belgium Root CA6`, EC P-384, ecdsa-with-SHA384 | `C=BE, CN=Citizen CA, serialNumber=202101`, EC P-384, ecdsa-with-SHA384 | EC (P-384) |
//!
//! Both Citizen CAs have the same common name: only the `serialNumber` in the name, the key
//! identifiers and the signatures tell them (and their CRLs) apart.
//!
//! * Roots: self-signed, basicConstraints CA (critical), keyUsage keyCertSign + cRLSign
//!   (critical), certificatePolicies (CA4: `2.16.56.12.1.1`; CA6: anyPolicy, as on the real CA6).
//! * Citizen CAs: basicConstraints CA pathlen 0, keyCertSign + cRLSign, certificatePolicies (CA4:
//!   `2.16.56.12.1.1.2`; CA6: anyPolicy), authorityKeyIdentifier, AIA (caIssuers: the root's
//!   certificate, OCSP) and a CRL distribution point for the root's CRL.
//! * Per card, both valid about 10 years, each with authorityKeyIdentifier, AIA (caIssuers: the
//!   Citizen CA's certificate, OCSP) and a CRL distribution point for its Citizen CA's CRL:
//!   * authentication: `C=BE, CN=<first given name> <family> (Authentication), SN=<family>,
//!     GN=<given names>, serialNumber=<INSZ>`; keyUsage digitalSignature only (critical),
//!     extKeyUsage clientAuth, certificatePolicies [`AUTH_POLICY_OID`];
//!   * signature: the same subject with `(Signature)`; keyUsage nonRepudiation only (critical),
//!     certificatePolicies [`SIGN_POLICY_OID`], QCStatements QcCompliance + QcSSCD.
//!
//!   The leaf policy OIDs are those of Root CA4 for both generations (the CA6 leaf OIDs are not
//!   documented in the notes). The AIA and CRL URLs have the real services' shape
//!   (`*.eid.belgium.be` for generation 1, `*.eidpki.belgium.be` for generation 2), but nothing
//!   there knows these certificates: a verifier takes the CRLs from [`TestPki::crl_pem`].
//!
//! # Cards ([`TestPki::card`])
//!
//! | key | holder | INSZ | keys | generation | what it tests |
//! |---|---|---|---|---|---|
//! | `anna-rsa` | Anna Peeters | `85073003328` | RSA-2048 (applet 1.7) | 1 | valid card; the demo patient |
//! | `pieter-ec` | Pieter Janssens | `75031212346` | EC P-384 (applet 1.8) | 2 | valid card; the demo GP |
//! | `noor-ec` | Noor Vermeulen, born 2003-05-14 | `03051406233` | EC P-384 (applet 1.8) | 2 | valid card; check digits over `2` + nine digits (born from 2000) |
//! | `revoked` | Marie Claire Dubois | `90120512451` | EC P-256 | 2 | both certificates in the Citizen CA 202101 CRL |
//! | `expired` | Jan Claes | `60041505705` | RSA-2048 | 1 | notAfter 30 days ago |
//! | `bad-insz` | Lotte Wouters | `85073003329` | EC P-384 | 2 | serialNumber fails the INSZ check digits |
//! | `foreign` | Sofie Maes | `92021424619` | RSA-2048 | — | issued by another root + intermediate |
//!
//! The `foreign` card's issuer is `C=BE, CN=Citizen CA, serialNumber=209901` under
//! `C=BE, CN=Belgium Root CA (FOREIGN TEST)`: the same common name as the trusted intermediates,
//! so a check that looks at the issuer's CN alone is fooled; only a signature check tells them
//! apart.
//!
//! # CRLs
//!
//! One CRL per CA, thisUpdate now, nextUpdate in 7 days, each with authorityKeyIdentifier and a
//! CRL number. Only the Citizen CA 202101 CRL lists certificates (the `revoked` card's two).
//! [`TestPki::crl_pem`] holds all four in this order: Citizen CA 201508, Root CA4, Citizen CA
//! 202101, Root CA6 (as an operator would concatenate the downloaded files, generation by
//! generation). `openssl verify -crl_check_all -CAfile ca-bundle.pem -CRLfile crl.pem` accepts
//! the valid cards.
//!
//! # Files ([`TestPki::write_to`], binary `eid-test-ca <dir>`)
//!
//! `ca-bundle.pem` (both roots and both Citizen CAs), `crl.pem` (the four CRLs), `crl.der` (the
//! same four DER CRLs one after the other), `foreign-ca.pem`, `README.txt`, and per card
//! `<key>-auth.pem`, `<key>-auth.key` (PKCS#8), `<key>-auth-chain.pem` (auth cert + its
//! intermediate), `<key>-auth.p12` (password [`P12_PASSWORD`]), `<key>-sign.pem`,
//! `<key>-sign.key`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Context as _, Result};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::X509;
use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    CrlDistributionPoint, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Common name of the first-generation (RSA) root.
pub const ROOT_CA4_CN: &str = "Belgium Root CA4";
/// Common name of the second-generation (EC P-384) root.
pub const ROOT_CA6_CN: &str = "Belgium Root CA6";
/// Common name of both intermediates that issue the cards.
pub const CITIZEN_CA_CN: &str = "Citizen CA";
/// `serialNumber` in the subject of the first-generation Citizen CA (under Root CA4).
pub const CITIZEN_CA4_SERIAL: &str = "201508";
/// `serialNumber` in the subject of the second-generation Citizen CA (under Root CA6).
pub const CITIZEN_CA6_SERIAL: &str = "202101";
/// Certificate policy of a citizen authentication certificate (under Root CA4).
pub const AUTH_POLICY_OID: &str = "2.16.56.12.1.1.2.2";
/// Certificate policy of a citizen (non-repudiation) signature certificate (under Root CA4).
pub const SIGN_POLICY_OID: &str = "2.16.56.12.1.1.2.1";
/// Password of every `<key>-auth.p12`.
pub const P12_PASSWORD: &str = "test";

const FOREIGN_ROOT_CN: &str = "Belgium Root CA (FOREIGN TEST)";
const FOREIGN_CA_SERIAL: &str = "209901";
/// Policy qualifier (CPS URI) of the real eID certificates.
const CPS_URI: &str = "http://repository.eid.belgium.be";
/// Policies of the Root CA4 certificates: the root `2.16.56.12.1.1`, its citizen branch `.2`.
const CA4_ROOT_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1];
const CA4_CITIZEN_CA_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1, 2];
/// anyPolicy, as the real Root CA6 certificates carry.
const ANY_POLICY: &[u64] = &[2, 5, 29, 32, 0];
const AUTH_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1, 2, 2];
const SIGN_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1, 2, 1];

const OID_SURNAME: &[u64] = &[2, 5, 4, 4];
const OID_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
const OID_GIVEN_NAME: &[u64] = &[2, 5, 4, 42];
const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
const OID_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_AD_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
const OID_AD_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
const OID_QC_STATEMENTS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 3];
const OID_CPS_QUALIFIER: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 2, 1];
const OID_QC_COMPLIANCE: &[u64] = &[0, 4, 0, 1862, 1, 1];
const OID_QC_SSCD: &[u64] = &[0, 4, 0, 1862, 1, 4];

/// The whole test PKI, as PEM/DER text.
#[derive(Clone)]
pub struct TestPki {
    /// The trusted generations: Root CA4 → Citizen CA 201508, then Root CA6 → Citizen CA 202101.
    pub generations: Vec<Generation>,
    /// Both roots and both Citizen CAs (CA4, 201508, CA6, 202101): what the eID listener trusts.
    pub ca_bundle_pem: String,
    /// The CRLs of all four CAs in one PEM text (order in the module documentation).
    pub crl_pem: String,
    /// The same four CRLs in DER, one after the other.
    pub crl_der: Vec<u8>,
    /// The test cards (see the module documentation).
    pub cards: Vec<Card>,
    /// Root + intermediate of the foreign PKI (not in the bundle) that issued the `foreign` card.
    pub foreign_ca_pem: String,
}

/// One trusted generation: a root and the Citizen CA it certified, with their CRLs.
#[derive(Clone)]
pub struct Generation {
    /// [`ROOT_CA4_CN`] or [`ROOT_CA6_CN`].
    pub root_cn: &'static str,
    /// [`CITIZEN_CA4_SERIAL`] or [`CITIZEN_CA6_SERIAL`].
    pub citizen_ca_serial: &'static str,
    /// EC P-384 keys (generation 2) rather than RSA (generation 1).
    pub ec: bool,
    pub root_pem: String,
    pub citizen_ca_pem: String,
    /// Signed by the root; lists nothing.
    pub root_crl_der: Vec<u8>,
    /// Signed by the Citizen CA.
    pub citizen_ca_crl_der: Vec<u8>,
}

/// One test eID card: its authentication and signature certificates with their private keys.
#[derive(Clone)]
pub struct Card {
    /// `anna-rsa`, `pieter-ec`, `noor-ec`, `revoked`, `expired`, `bad-insz` or `foreign`.
    pub key: &'static str,
    /// The subject's `serialNumber` (national number; not a valid INSZ for `bad-insz`).
    pub insz: String,
    /// Given names as in `GN` (space separated); the first one is in `CN`.
    pub given_name: String,
    /// Family name as in `SN`.
    pub family_name: String,
    pub auth_cert_pem: String,
    /// PKCS#8 PEM.
    pub auth_key_pem: String,
    pub sign_cert_pem: String,
    /// PKCS#8 PEM.
    pub sign_key_pem: String,
    /// Authentication certificate followed by its issuing intermediate.
    pub chain_pem: String,
    /// EC keys (applet 1.8) rather than RSA (applet 1.7).
    pub ec: bool,
    /// The issuing Citizen CA's `serialNumber` (`201508`, `202101`; `209901` for `foreign`).
    pub citizen_ca_serial: &'static str,
}

#[derive(Clone, Copy)]
pub(crate) enum KeyKind {
    Rsa2048,
    P256,
    P384,
}

impl KeyKind {
    fn label(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "RSA-2048 (applet 1.7)",
            KeyKind::P256 => "EC P-256",
            KeyKind::P384 => "EC P-384 (applet 1.8)",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Status {
    Valid,
    Revoked,
    Expired,
}

/// Which CA issues a card.
#[derive(Clone, Copy, PartialEq)]
enum Issuer {
    /// Citizen CA 201508 under Root CA4.
    Ca4,
    /// Citizen CA 202101 under Root CA6.
    Ca6,
    /// The foreign Citizen CA 209901, outside the bundle.
    Foreign,
}

struct CardSpec {
    key: &'static str,
    given: &'static str,
    family: &'static str,
    insz: &'static str,
    kind: KeyKind,
    issuer: Issuer,
    status: Status,
    note: &'static str,
}

const CARDS: &[CardSpec] = &[
    CardSpec {
        key: "anna-rsa",
        given: "Anna",
        family: "Peeters",
        insz: "85073003328",
        kind: KeyKind::Rsa2048,
        issuer: Issuer::Ca4,
        status: Status::Valid,
        note: "valid (demo patient)",
    },
    CardSpec {
        key: "pieter-ec",
        given: "Pieter",
        family: "Janssens",
        insz: "75031212346",
        kind: KeyKind::P384,
        issuer: Issuer::Ca6,
        status: Status::Valid,
        note: "valid (demo GP)",
    },
    CardSpec {
        key: "noor-ec",
        given: "Noor",
        family: "Vermeulen",
        insz: "03051406233",
        kind: KeyKind::P384,
        issuer: Issuer::Ca6,
        status: Status::Valid,
        note: "valid; born 2003 (INSZ check digits of the 2000s)",
    },
    CardSpec {
        key: "revoked",
        given: "Marie Claire",
        family: "Dubois",
        insz: "90120512451",
        kind: KeyKind::P256,
        issuer: Issuer::Ca6,
        status: Status::Revoked,
        note: "revoked: both certificates are in the Citizen CA 202101 CRL",
    },
    CardSpec {
        key: "expired",
        given: "Jan",
        family: "Claes",
        insz: "60041505705",
        kind: KeyKind::Rsa2048,
        issuer: Issuer::Ca4,
        status: Status::Expired,
        note: "expired 30 days ago",
    },
    CardSpec {
        key: "bad-insz",
        given: "Lotte",
        family: "Wouters",
        insz: "85073003329",
        kind: KeyKind::P384,
        issuer: Issuer::Ca6,
        status: Status::Valid,
        note: "chains and is not revoked, but serialNumber is not a valid INSZ",
    },
    CardSpec {
        key: "foreign",
        given: "Sofie",
        family: "Maes",
        insz: "92021424619",
        kind: KeyKind::Rsa2048,
        issuer: Issuer::Foreign,
        status: Status::Valid,
        note: "issued by a CA outside ca-bundle.pem (see foreign-ca.pem)",
    },
];

pub(crate) const DAY: Duration = Duration::DAY;
pub(crate) const YEAR: Duration = Duration::days(365);

/// Where a CA's certificates point for its own certificate, OCSP and CRL.
struct Urls {
    ca_issuers: &'static str,
    ocsp: &'static str,
    crl: &'static str,
}

const ROOT_CA4_URLS: Urls = Urls {
    ca_issuers: "http://certs.eid.belgium.be/belgiumrs4.crt",
    ocsp: "http://ocsp.eid.belgium.be/2",
    crl: "http://crl.eid.belgium.be/belgium4.crl",
};
const CITIZEN_CA4_URLS: Urls = Urls {
    ca_issuers: "http://certs.eid.belgium.be/citizen201508.crt",
    ocsp: "http://ocsp.eid.belgium.be/2",
    crl: "http://crl.eid.belgium.be/eidc201508.crl",
};
const ROOT_CA6_URLS: Urls = Urls {
    ca_issuers: "http://crt.eidpki.belgium.be/eid/brca6.crt",
    ocsp: "http://ocsp.eidpki.belgium.be/eid/brca6",
    crl: "http://crl.eidpki.belgium.be/eid/brca6.crl",
};
const CITIZEN_CA6_URLS: Urls = Urls {
    ca_issuers: "http://crt.eidpki.belgium.be/eid/citizen202101.crt",
    ocsp: "http://ocsp.eidpki.belgium.be/eid/citizen202101",
    crl: "http://crl.eidpki.belgium.be/eid/citizen202101.crl",
};
const FOREIGN_URLS: Urls = Urls {
    ca_issuers: "http://crt.foreign.invalid/citizen209901.crt",
    ocsp: "http://ocsp.foreign.invalid/",
    crl: "http://crl.foreign.invalid/citizen209901.crl",
};

pub(crate) type Ca = CertifiedIssuer<'static, KeyPair>;

impl TestPki {
    /// Generates the PKI with the current time.
    pub fn generate() -> Result<Self> {
        Self::generate_at(SystemTime::now())
    }

    /// Generates the PKI as if `now` were the current time (validity windows and the CRLs'
    /// thisUpdate are relative to it).
    pub fn generate_at(now: SystemTime) -> Result<Self> {
        let now = OffsetDateTime::from(now).replace_nanosecond(0).context("time")?;

        let root4 = new_root(ROOT_CA4_CN, KeyKind::Rsa2048, CA4_ROOT_POLICY, now)?;
        let citizen4 = new_citizen_ca(
            &root4,
            KeyKind::Rsa2048,
            CITIZEN_CA4_SERIAL,
            CA4_CITIZEN_CA_POLICY,
            &ROOT_CA4_URLS,
            now,
        )?;
        let root6 = new_root(ROOT_CA6_CN, KeyKind::P384, ANY_POLICY, now)?;
        let citizen6 = new_citizen_ca(
            &root6,
            KeyKind::P384,
            CITIZEN_CA6_SERIAL,
            ANY_POLICY,
            &ROOT_CA6_URLS,
            now,
        )?;
        let foreign_root = new_root(FOREIGN_ROOT_CN, KeyKind::P384, ANY_POLICY, now)?;
        let foreign_ca = new_citizen_ca(
            &foreign_root,
            KeyKind::P384,
            FOREIGN_CA_SERIAL,
            ANY_POLICY,
            &FOREIGN_URLS,
            now,
        )?;

        let mut cards = Vec::new();
        let mut revoked: Vec<(Issuer, RevokedCertParams)> = Vec::new();
        for spec in CARDS {
            let (issuer, urls, serial) = match spec.issuer {
                Issuer::Ca4 => (&citizen4, &CITIZEN_CA4_URLS, CITIZEN_CA4_SERIAL),
                Issuer::Ca6 => (&citizen6, &CITIZEN_CA6_URLS, CITIZEN_CA6_SERIAL),
                Issuer::Foreign => (&foreign_ca, &FOREIGN_URLS, FOREIGN_CA_SERIAL),
            };
            let (not_before, not_after) = match spec.status {
                Status::Expired => (now - 10 * YEAR - 30 * DAY, now - 30 * DAY),
                _ => (now - DAY, now + 10 * YEAR),
            };
            let window = (not_before, not_after);
            let auth = issue_leaf(spec, Usage::Auth, window, issuer, urls)?;
            let sign = issue_leaf(spec, Usage::Sign, window, issuer, urls)?;
            if spec.status == Status::Revoked {
                for cert_serial in [&auth.serial, &sign.serial] {
                    revoked.push((
                        spec.issuer,
                        RevokedCertParams {
                            serial_number: cert_serial.clone(),
                            revocation_time: now - DAY,
                            reason_code: Some(RevocationReason::KeyCompromise),
                            invalidity_date: None,
                        },
                    ));
                }
            }
            cards.push(Card {
                key: spec.key,
                insz: spec.insz.to_string(),
                given_name: spec.given.to_string(),
                family_name: spec.family.to_string(),
                chain_pem: format!("{}{}", auth.cert_pem, issuer.pem()),
                auth_cert_pem: auth.cert_pem,
                auth_key_pem: auth.key_pem,
                sign_cert_pem: sign.cert_pem,
                sign_key_pem: sign.key_pem,
                ec: !matches!(spec.kind, KeyKind::Rsa2048),
                citizen_ca_serial: serial,
            });
        }

        let revoked_by = |issuer: Issuer| -> Vec<RevokedCertParams> {
            revoked.iter().filter(|(i, _)| *i == issuer).map(|(_, r)| r.clone()).collect()
        };
        let crls = [
            crl(&citizen4, now, revoked_by(Issuer::Ca4))?,
            crl(&root4, now, Vec::new())?,
            crl(&citizen6, now, revoked_by(Issuer::Ca6))?,
            crl(&root6, now, Vec::new())?,
        ];
        let mut crl_pem = String::new();
        let mut crl_der = Vec::new();
        for c in &crls {
            crl_pem.push_str(&c.pem().context("CRL PEM")?);
            crl_der.extend_from_slice(c.der());
        }
        let [citizen4_crl, root4_crl, citizen6_crl, root6_crl] = crls;
        let generations = vec![
            Generation {
                root_cn: ROOT_CA4_CN,
                citizen_ca_serial: CITIZEN_CA4_SERIAL,
                ec: false,
                root_pem: root4.pem(),
                citizen_ca_pem: citizen4.pem(),
                root_crl_der: root4_crl.der().to_vec(),
                citizen_ca_crl_der: citizen4_crl.der().to_vec(),
            },
            Generation {
                root_cn: ROOT_CA6_CN,
                citizen_ca_serial: CITIZEN_CA6_SERIAL,
                ec: true,
                root_pem: root6.pem(),
                citizen_ca_pem: citizen6.pem(),
                root_crl_der: root6_crl.der().to_vec(),
                citizen_ca_crl_der: citizen6_crl.der().to_vec(),
            },
        ];
        let ca_bundle_pem =
            generations.iter().map(|g| format!("{}{}", g.root_pem, g.citizen_ca_pem)).collect();

        Ok(TestPki {
            generations,
            ca_bundle_pem,
            crl_pem,
            crl_der,
            cards,
            foreign_ca_pem: format!("{}{}", foreign_root.pem(), foreign_ca.pem()),
        })
    }

    /// The card with this [`Card::key`].
    pub fn card(&self, key: &str) -> Option<&Card> {
        self.cards.iter().find(|c| c.key == key)
    }

    /// Writes every file (see the module documentation) into `dir`, creating it if needed.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        self.write_files(dir).map(|_| ())
    }

    /// [`TestPki::write_to`], returning the paths written in order.
    pub fn write_files(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut written = Vec::new();
        let mut put = |name: String, bytes: &[u8], secret: bool| -> Result<()> {
            let path = dir.join(name);
            write_file(&path, bytes, secret)?;
            written.push(path);
            Ok(())
        };
        put("ca-bundle.pem".into(), self.ca_bundle_pem.as_bytes(), false)?;
        put("crl.pem".into(), self.crl_pem.as_bytes(), false)?;
        put("crl.der".into(), &self.crl_der, false)?;
        put("foreign-ca.pem".into(), self.foreign_ca_pem.as_bytes(), false)?;
        for card in &self.cards {
            let k = card.key;
            put(format!("{k}-auth.pem"), card.auth_cert_pem.as_bytes(), false)?;
            put(format!("{k}-auth.key"), card.auth_key_pem.as_bytes(), true)?;
            put(format!("{k}-auth-chain.pem"), card.chain_pem.as_bytes(), false)?;
            put(format!("{k}-auth.p12"), &card.pkcs12()?, true)?;
            put(format!("{k}-sign.pem"), card.sign_cert_pem.as_bytes(), false)?;
            put(format!("{k}-sign.key"), card.sign_key_pem.as_bytes(), true)?;
        }
        put("README.txt".into(), self.readme().as_bytes(), false)?;
        Ok(written)
    }

    fn readme(&self) -> String {
        let mut cards = String::new();
        for (spec, card) in CARDS.iter().zip(&self.cards) {
            cards.push_str(&format!(
                "  {:<10} {} {}, INSZ {}, {}, Citizen CA {}: {}\n",
                card.key,
                card.given_name,
                card.family_name,
                card.insz,
                spec.kind.label(),
                card.citizen_ca_serial,
                spec.note
            ));
        }
        format!(
            "Test Belgian eID PKI (generated by idp-mocks eid-test-ca). NOT the real eID PKI:\n\
             the names are the real CAs', the keys are fresh test keys.\n\
             \n\
             Trust: ca-bundle.pem = two generations, as the real eID has:\n  \
             \"{ROOT_CA4_CN}\" (RSA) -> \"{CITIZEN_CA_CN}\" serialNumber {CITIZEN_CA4_SERIAL} (RSA)\n  \
             \"{ROOT_CA6_CN}\" (EC P-384) -> \"{CITIZEN_CA_CN}\" serialNumber {CITIZEN_CA6_SERIAL} \
             (EC P-384, ecdsa-with-SHA384)\n\
             Revocation: crl.pem / crl.der hold the CRLs of all four CAs (Citizen CA {CITIZEN_CA4_SERIAL},\n\
             Root CA4, Citizen CA {CITIZEN_CA6_SERIAL}, Root CA6), valid 7 days from generation.\n\
             Check a card: openssl verify -crl_check_all -CAfile ca-bundle.pem -CRLfile crl.pem \
             noor-ec-auth.pem\n\
             foreign-ca.pem is a separate root + intermediate (NOT in the bundle) that issued the\n\
             \"foreign\" card; its intermediate has the same CN as the trusted ones.\n\
             \n\
             Cards (authentication cert: keyUsage digitalSignature, extKeyUsage clientAuth,\n\
             policy {AUTH_POLICY_OID}; signature cert: nonRepudiation, policy {SIGN_POLICY_OID};\n\
             both with AIA and a CRL distribution point):\n\
             {cards}\
             \n\
             Files per card <key>:\n  \
             <key>-auth.pem        authentication certificate\n  \
             <key>-auth.key        its private key (PKCS#8 PEM)\n  \
             <key>-auth-chain.pem  authentication certificate + issuing intermediate\n  \
             <key>-auth.p12        certificate + key + intermediate, password \"{P12_PASSWORD}\"\n  \
             <key>-sign.pem/.key   signature certificate and key (not used for login)\n\
             \n\
             Log in with curl: start a login at the broker (/login/eid) and take the URL it\n\
             redirects to on the eID listener, then present the card's authentication cert:\n\
             \n  \
             curl -k --cert anna-rsa-auth.pem --key anna-rsa-auth.key https://localhost:8443/...\n\
             \n\
             (-k because the listener's own server certificate is self-signed; use\n\
             --cert anna-rsa-auth-chain.pem to also send the intermediate.)\n\
             \n\
             In a browser: import <key>-auth.p12 (password \"{P12_PASSWORD}\") as a personal\n\
             certificate (Firefox: Settings > Privacy & Security > Certificates > View\n\
             Certificates > Your Certificates > Import; Chrome: Settings > Privacy and security >\n\
             Security > Manage certificates), then choose it when https://localhost:8443 asks.\n"
        )
    }
}

impl Card {
    /// PKCS#12 of the authentication certificate, its key and its issuing intermediate,
    /// password [`P12_PASSWORD`].
    pub fn pkcs12(&self) -> Result<Vec<u8>> {
        let mut certs = X509::stack_from_pem(self.chain_pem.as_bytes()).context("chain PEM")?;
        let key = PKey::private_key_from_pem(self.auth_key_pem.as_bytes()).context("auth key")?;
        let mut ca = Stack::new()?;
        for c in certs.drain(1..) {
            ca.push(c)?;
        }
        let leaf = certs.pop().ok_or_else(|| anyhow!("empty chain"))?;
        let name =
            format!("{} {} (Authentication)", first_given(&self.given_name), self.family_name);
        let p12 = Pkcs12::builder()
            .name(&name)
            .pkey(&key)
            .cert(&leaf)
            .ca(ca)
            .build2(P12_PASSWORD)
            .context("building PKCS#12")?;
        Ok(p12.to_der()?)
    }
}

pub(crate) fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    Ok(())
}

fn first_given(given: &str) -> &str {
    given.split_whitespace().next().unwrap_or(given)
}

/// A fresh key: OpenSSL makes it (rcgen's ring backend cannot generate RSA), rcgen signs with it
/// (RSA keys sign sha256WithRSAEncryption, P-384 keys ecdsa-with-SHA384).
pub(crate) fn new_key(kind: KeyKind) -> Result<(KeyPair, String)> {
    let ec = |curve: Nid| -> Result<PKey<Private>> {
        let group = EcGroup::from_curve_name(curve)?;
        Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
    };
    let pkey: PKey<Private> = match kind {
        KeyKind::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?)?,
        KeyKind::P256 => ec(Nid::X9_62_PRIME256V1)?,
        KeyKind::P384 => ec(Nid::SECP384R1)?,
    };
    let pem = String::from_utf8(pkey.private_key_to_pem_pkcs8()?)?;
    let key = KeyPair::from_pem(&pem).context("loading the generated key into rcgen")?;
    Ok((key, pem))
}

/// Positive 16-byte serial, like the real eID certificates' serials.
pub(crate) fn new_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = 0x10 | (bytes[0] & 0x3f);
    SerialNumber::from_slice(&bytes)
}

pub(crate) fn printable(s: &str) -> Result<DnValue> {
    Ok(DnValue::PrintableString(
        PrintableString::try_from(s).map_err(|e| anyhow!("{s:?} is not a PrintableString: {e}"))?,
    ))
}

pub(crate) fn ca_params(
    subject: DistinguishedName,
    window: (OffsetDateTime, OffsetDateTime),
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.not_before = window.0;
    params.not_after = window.1;
    params.serial_number = Some(new_serial());
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn new_root(cn: &str, kind: KeyKind, policy: &[u64], now: OffsetDateTime) -> Result<Ca> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("BE")?);
    dn.push(DnType::CommonName, cn);
    let mut params = ca_params(dn, (now - 12 * YEAR, now + 20 * YEAR));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.custom_extensions.push(policies_extension(policy));
    let (key, _) = new_key(kind)?;
    CertifiedIssuer::self_signed(params, key).with_context(|| format!("self-signing {cn}"))
}

/// A Citizen CA under `root`; `root_urls` are where its certificates point for the root.
fn new_citizen_ca(
    root: &Ca,
    kind: KeyKind,
    serial: &str,
    policy: &[u64],
    root_urls: &Urls,
    now: OffsetDateTime,
) -> Result<Ca> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("BE")?);
    dn.push(DnType::CommonName, CITIZEN_CA_CN);
    dn.push(DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()), printable(serial)?);
    let mut params = ca_params(dn, (now - 11 * YEAR, now + 12 * YEAR));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions.push(policies_extension(policy));
    params.custom_extensions.push(aia_extension(root_urls));
    params.crl_distribution_points =
        vec![CrlDistributionPoint { uris: vec![root_urls.crl.into()] }];
    let (key, _) = new_key(kind)?;
    CertifiedIssuer::signed_by(params, key, root)
        .with_context(|| format!("signing Citizen CA {serial}"))
}

/// A CRL of `issuer` listing `revoked`, valid 7 days from `now`.
pub(crate) fn crl(
    issuer: &Ca,
    now: OffsetDateTime,
    revoked: Vec<RevokedCertParams>,
) -> Result<rcgen::CertificateRevocationList> {
    CertificateRevocationListParams {
        this_update: now,
        next_update: now + 7 * DAY,
        crl_number: SerialNumber::from(now.unix_timestamp().unsigned_abs()),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .context("signing a CRL")
}

#[derive(Clone, Copy)]
enum Usage {
    Auth,
    Sign,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    serial: SerialNumber,
}

fn issue_leaf(
    spec: &CardSpec,
    usage: Usage,
    window: (OffsetDateTime, OffsetDateTime),
    issuer: &Ca,
    issuer_urls: &Urls,
) -> Result<Leaf> {
    let role = match usage {
        Usage::Auth => "Authentication",
        Usage::Sign => "Signature",
    };
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("BE")?);
    dn.push(DnType::CommonName, format!("{} {} ({role})", first_given(spec.given), spec.family));
    dn.push(DnType::CustomDnType(OID_SURNAME.to_vec()), spec.family);
    dn.push(DnType::CustomDnType(OID_GIVEN_NAME.to_vec()), spec.given);
    dn.push(DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()), printable(spec.insz)?);

    let serial = new_serial();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.not_before = window.0;
    params.not_after = window.1;
    params.serial_number = Some(serial.clone());
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points =
        vec![CrlDistributionPoint { uris: vec![issuer_urls.crl.into()] }];
    params.custom_extensions.push(aia_extension(issuer_urls));
    match usage {
        Usage::Auth => {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params.custom_extensions.push(policies_extension(AUTH_POLICY));
        }
        Usage::Sign => {
            params.key_usages = vec![KeyUsagePurpose::ContentCommitment];
            params.custom_extensions.push(policies_extension(SIGN_POLICY));
            params.custom_extensions.push(qc_statements_extension());
        }
    }
    let (key, key_pem) = new_key(spec.kind)?;
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("issuing the {role} certificate of {}", spec.key))?;
    Ok(Leaf { cert_pem: cert.pem(), key_pem, serial })
}

// --- minimal DER for the extensions rcgen has no type for ---

pub(crate) fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn der_seq(items: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &items.concat())
}

pub(crate) fn der_oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut chunk = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        body.extend_from_slice(&chunk);
    };
    push(arcs[0] * 40 + arcs[1]);
    for &arc in &arcs[2..] {
        push(arc);
    }
    der(0x06, &body)
}

/// certificatePolicies with one policy and the eID CPS URI qualifier (non-critical).
fn policies_extension(policy: &[u64]) -> CustomExtension {
    let qualifier = der_seq(&[der_oid(OID_CPS_QUALIFIER), der(0x16, CPS_URI.as_bytes())]);
    let info = der_seq(&[der_oid(policy), der_seq(&[qualifier])]);
    CustomExtension::from_oid_content(OID_CERTIFICATE_POLICIES, der_seq(&[info]))
}

/// authorityInfoAccess (non-critical): caIssuers and OCSP, each a URI (GeneralName `[6]`).
fn aia_extension(urls: &Urls) -> CustomExtension {
    let access = |method: &[u64], uri: &str| der_seq(&[der_oid(method), der(0x86, uri.as_bytes())]);
    let content =
        der_seq(&[access(OID_AD_CA_ISSUERS, urls.ca_issuers), access(OID_AD_OCSP, urls.ocsp)]);
    CustomExtension::from_oid_content(OID_AUTHORITY_INFO_ACCESS, content)
}

/// QCStatements: QcCompliance and QcSSCD, as on the qualified signature certificate.
fn qc_statements_extension() -> CustomExtension {
    let content =
        der_seq(&[der_seq(&[der_oid(OID_QC_COMPLIANCE)]), der_seq(&[der_oid(OID_QC_SSCD)])]);
    CustomExtension::from_oid_content(OID_QC_STATEMENTS, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding() {
        // 2.16.56.12.1.1.2.2 as openssl encodes it
        assert_eq!(
            der_oid(AUTH_POLICY),
            vec![0x06, 0x07, 0x60, 0x38, 0x0c, 0x01, 0x01, 0x02, 0x02]
        );
        // 0.4.0.1862.1.1: 1862 = 0x746 -> 0x8e 0x46
        assert_eq!(
            der_oid(OID_QC_COMPLIANCE),
            vec![0x06, 0x06, 0x04, 0x00, 0x8e, 0x46, 0x01, 0x01]
        );
    }

    #[test]
    fn long_der_length() {
        let v = der(0x04, &[0u8; 300]);
        assert_eq!(&v[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
