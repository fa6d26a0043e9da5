//! A test Belgian eID PKI: a root, a "Citizen CA", card certificates and a CRL, shaped like the
//! real ones (`shared/notes/domain.md` §4) so the broker's eID listener (SPEC §6) can be tested
//! with real TLS client certificates. Keys are fresh on every [`TestPki::generate`]; names,
//! national numbers, key types, extensions and validity windows are fixed.
//!
//! # Chain
//!
//! * `C=BE, CN=Belgium Root CA (TEST)`: self-signed, EC P-384, basicConstraints CA,
//!   keyCertSign + cRLSign.
//! * `C=BE, CN=Citizen CA (TEST), serialNumber=202601`: signed by the root, EC P-384
//!   (ecdsa-with-SHA384, like Citizen CA 202002 under Root CA6), basicConstraints CA pathlen 0,
//!   keyCertSign + cRLSign. It signs every card certificate and the CRL.
//! * per card, both valid about 10 years:
//!   * authentication: `C=BE, CN=<first given name> <family> (Authentication), SN=<family>,
//!     GN=<given names>, serialNumber=<INSZ>`; keyUsage digitalSignature only (critical),
//!     extKeyUsage clientAuth, certificatePolicies [`AUTH_POLICY_OID`];
//!   * signature: the same subject with `(Signature)`; keyUsage nonRepudiation only (critical),
//!     certificatePolicies [`SIGN_POLICY_OID`], QCStatements QcCompliance + QcSSCD.
//!
//! The certificates carry no CRL distribution point or AIA/OCSP URL (the real ones point at
//! `*.eidpki.belgium.be`, which knows nothing of these): a verifier gets the CRL from
//! [`TestPki::crl_der`] / `crl.pem`.
//!
//! # Cards ([`TestPki::card`])
//!
//! | key | holder | INSZ | keys | what it tests |
//! |---|---|---|---|---|
//! | `anna-rsa` | Anna Peeters | `85073003328` | RSA-2048 (applet 1.7) | valid card; the demo patient |
//! | `pieter-ec` | Pieter Janssens | `75031212346` | EC P-384 (applet 1.8) | valid card; the demo GP |
//! | `revoked` | Marie Claire Dubois | `90120512451` | EC P-256 | both certificates in the CRL |
//! | `expired` | Jan Claes | `60041505705` | RSA-2048 | notAfter 30 days ago |
//! | `bad-insz` | Lotte Wouters | `85073003329` | EC P-384 | serialNumber fails the INSZ check digits |
//! | `foreign` | Sofie Maes | `92021424619` | RSA-2048 | issued by another root + intermediate |
//!
//! The `foreign` card's issuer is `C=BE, CN=Citizen CA (TEST), serialNumber=209901` under
//! `C=BE, CN=Belgium Root CA (FOREIGN TEST)`: the same common name as the real intermediate, so a
//! check that looks at the issuer's CN alone is fooled; only a signature check tells them apart.
//!
//! # Files ([`TestPki::write_to`], binary `eid-test-ca <dir>`)
//!
//! `ca-bundle.pem` (root + Citizen CA), `crl.pem`, `crl.der`, `foreign-ca.pem`, `README.txt`,
//! and per card `<key>-auth.pem`, `<key>-auth.key` (PKCS#8), `<key>-auth-chain.pem` (auth cert +
//! its intermediate), `<key>-auth.p12` (password [`P12_PASSWORD`]), `<key>-sign.pem`,
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
    CustomExtension, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// Common name of the test root.
pub const ROOT_CN: &str = "Belgium Root CA (TEST)";
/// Common name of the test intermediate that issues the cards.
pub const CITIZEN_CA_CN: &str = "Citizen CA (TEST)";
/// `serialNumber` attribute in the Citizen CA's subject (real ones: e.g. `202002`).
pub const CITIZEN_CA_SERIAL: &str = "202601";
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
/// Policies of the CA certificates: Root CA4 `2.16.56.12.1.1`, its citizen branch `.2`.
const ROOT_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1];
const CITIZEN_CA_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1, 2];
const AUTH_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1, 2, 2];
const SIGN_POLICY: &[u64] = &[2, 16, 56, 12, 1, 1, 2, 1];

const OID_SURNAME: &[u64] = &[2, 5, 4, 4];
const OID_SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];
const OID_GIVEN_NAME: &[u64] = &[2, 5, 4, 42];
const OID_CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
const OID_QC_STATEMENTS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 3];
const OID_CPS_QUALIFIER: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 2, 1];
const OID_QC_COMPLIANCE: &[u64] = &[0, 4, 0, 1862, 1, 1];
const OID_QC_SSCD: &[u64] = &[0, 4, 0, 1862, 1, 4];

/// The whole test PKI, as PEM/DER text.
#[derive(Clone)]
pub struct TestPki {
    /// `Belgium Root CA (TEST)`.
    pub root_pem: String,
    /// `Citizen CA (TEST)`, serialNumber 202601.
    pub citizen_ca_pem: String,
    /// Root + Citizen CA: what the eID listener trusts.
    pub ca_bundle_pem: String,
    /// CRL of the Citizen CA (lists the `revoked` card), thisUpdate now, nextUpdate in 7 days.
    pub crl_pem: String,
    /// The same CRL in DER.
    pub crl_der: Vec<u8>,
    /// The test cards (see the module documentation).
    pub cards: Vec<Card>,
    /// Root + intermediate of the foreign PKI (not in the bundle) that issued the `foreign` card.
    pub foreign_ca_pem: String,
}

/// One test eID card: its authentication and signature certificates with their private keys.
#[derive(Clone)]
pub struct Card {
    /// `anna-rsa`, `pieter-ec`, `revoked`, `expired`, `bad-insz` or `foreign`.
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
}

#[derive(Clone, Copy)]
enum KeyKind {
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
    Foreign,
}

struct CardSpec {
    key: &'static str,
    given: &'static str,
    family: &'static str,
    insz: &'static str,
    kind: KeyKind,
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
        status: Status::Valid,
        note: "valid (demo patient)",
    },
    CardSpec {
        key: "pieter-ec",
        given: "Pieter",
        family: "Janssens",
        insz: "75031212346",
        kind: KeyKind::P384,
        status: Status::Valid,
        note: "valid (demo GP)",
    },
    CardSpec {
        key: "revoked",
        given: "Marie Claire",
        family: "Dubois",
        insz: "90120512451",
        kind: KeyKind::P256,
        status: Status::Revoked,
        note: "revoked: both certificates are in the CRL",
    },
    CardSpec {
        key: "expired",
        given: "Jan",
        family: "Claes",
        insz: "60041505705",
        kind: KeyKind::Rsa2048,
        status: Status::Expired,
        note: "expired 30 days ago",
    },
    CardSpec {
        key: "bad-insz",
        given: "Lotte",
        family: "Wouters",
        insz: "85073003329",
        kind: KeyKind::P384,
        status: Status::Valid,
        note: "chains and is not revoked, but serialNumber is not a valid INSZ",
    },
    CardSpec {
        key: "foreign",
        given: "Sofie",
        family: "Maes",
        insz: "92021424619",
        kind: KeyKind::Rsa2048,
        status: Status::Foreign,
        note: "issued by a CA outside ca-bundle.pem (see foreign-ca.pem)",
    },
];

const DAY: Duration = Duration::DAY;
const YEAR: Duration = Duration::days(365);

impl TestPki {
    /// Generates the PKI with the current time.
    pub fn generate() -> Result<Self> {
        Self::generate_at(SystemTime::now())
    }

    /// Generates the PKI as if `now` were the current time (validity windows and the CRL's
    /// thisUpdate are relative to it).
    pub fn generate_at(now: SystemTime) -> Result<Self> {
        let now = OffsetDateTime::from(now).replace_nanosecond(0).context("time")?;

        let root = new_root(ROOT_CN, now)?;
        let citizen = new_citizen_ca(&root, CITIZEN_CA_SERIAL, now)?;
        let foreign_root = new_root(FOREIGN_ROOT_CN, now)?;
        let foreign_ca = new_citizen_ca(&foreign_root, FOREIGN_CA_SERIAL, now)?;

        let mut cards = Vec::new();
        let mut revoked = Vec::new();
        for spec in CARDS {
            let issuer = if spec.status == Status::Foreign { &foreign_ca } else { &citizen };
            let (not_before, not_after) = match spec.status {
                Status::Expired => (now - 10 * YEAR - 30 * DAY, now - 30 * DAY),
                _ => (now - DAY, now + 10 * YEAR),
            };
            let window = (not_before, not_after);
            let auth = issue_leaf(spec, Usage::Auth, window, issuer)?;
            let sign = issue_leaf(spec, Usage::Sign, window, issuer)?;
            if spec.status == Status::Revoked {
                for serial in [&auth.serial, &sign.serial] {
                    revoked.push(RevokedCertParams {
                        serial_number: serial.clone(),
                        revocation_time: now - DAY,
                        reason_code: Some(RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    });
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
            });
        }

        let crl = CertificateRevocationListParams {
            this_update: now,
            next_update: now + 7 * DAY,
            crl_number: SerialNumber::from(now.unix_timestamp().unsigned_abs()),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&citizen)
        .context("signing the CRL")?;

        Ok(TestPki {
            ca_bundle_pem: format!("{}{}", root.pem(), citizen.pem()),
            root_pem: root.pem(),
            citizen_ca_pem: citizen.pem(),
            crl_pem: crl.pem().context("CRL PEM")?,
            crl_der: crl.der().to_vec(),
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
                "  {:<10} {} {}, INSZ {}, {}: {}\n",
                card.key,
                card.given_name,
                card.family_name,
                card.insz,
                spec.kind.label(),
                spec.note
            ));
        }
        format!(
            "Test Belgian eID PKI (generated by idp-mocks eid-test-ca). NOT the real eID PKI.\n\
             \n\
             Trust: ca-bundle.pem = \"{ROOT_CN}\" + \"{CITIZEN_CA_CN}\" (serialNumber \
             {CITIZEN_CA_SERIAL}).\n\
             Revocation: crl.pem / crl.der, signed by the Citizen CA, valid 7 days from generation.\n\
             foreign-ca.pem is a separate root + intermediate (NOT in the bundle) that issued the\n\
             \"foreign\" card; its intermediate has the same CN as the real one.\n\
             \n\
             Cards (authentication cert: keyUsage digitalSignature, extKeyUsage clientAuth,\n\
             policy {AUTH_POLICY_OID}; signature cert: nonRepudiation, policy {SIGN_POLICY_OID}):\n\
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

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
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

/// A fresh key: OpenSSL makes it (rcgen's ring backend cannot generate RSA), rcgen signs with it.
fn new_key(kind: KeyKind) -> Result<(KeyPair, String)> {
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
fn new_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = 0x10 | (bytes[0] & 0x3f);
    SerialNumber::from_slice(&bytes)
}

fn printable(s: &str) -> Result<DnValue> {
    Ok(DnValue::PrintableString(
        PrintableString::try_from(s).map_err(|e| anyhow!("{s:?} is not a PrintableString: {e}"))?,
    ))
}

fn ca_params(
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

fn new_root(cn: &str, now: OffsetDateTime) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("BE")?);
    dn.push(DnType::CommonName, cn);
    let mut params = ca_params(dn, (now - 12 * YEAR, now + 20 * YEAR));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.custom_extensions.push(policies_extension(ROOT_POLICY));
    let (key, _) = new_key(KeyKind::P384)?;
    CertifiedIssuer::self_signed(params, key).context("self-signing the root")
}

fn new_citizen_ca(
    root: &CertifiedIssuer<'static, KeyPair>,
    serial: &str,
    now: OffsetDateTime,
) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("BE")?);
    dn.push(DnType::CommonName, CITIZEN_CA_CN);
    dn.push(DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()), printable(serial)?);
    let mut params = ca_params(dn, (now - 11 * YEAR, now + 12 * YEAR));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions.push(policies_extension(CITIZEN_CA_POLICY));
    let (key, _) = new_key(KeyKind::P384)?;
    CertifiedIssuer::signed_by(params, key, root).context("signing the Citizen CA")
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
    issuer: &CertifiedIssuer<'static, KeyPair>,
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

// --- minimal DER for the two extensions rcgen has no type for ---

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
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

fn der_seq(items: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &items.concat())
}

fn der_oid(arcs: &[u64]) -> Vec<u8> {
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
