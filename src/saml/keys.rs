//! The SP's key material: generation (first start) and loading.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509NameBuilder, X509};
use serde::{Deserialize, Serialize};

use super::SamlError;

/// How long generated certificates are valid. SAML metadata certificates are trust anchors by
/// themselves (no chain, no expiry check by nodes), so a long life avoids needless rollovers.
const CERT_VALIDITY_DAYS: i64 = 3653;
/// Size of the generated RSA encryption key (eIDAS crypto requirements: at least 3072 bits).
const RSA_BITS: u32 = 3072;
/// Smallest RSA encryption key accepted from configuration.
const MIN_RSA_BITS: u32 = 2048;

/// The SP's key material (PEM strings): an ECDSA P-256 signing key with its self-signed
/// certificate (AuthnRequests, metadata), an RSA-3072 encryption key with its self-signed
/// certificate (nodes transporting the assertion key with RSA-OAEP) and an EC P-256 (or P-384)
/// one (nodes agreeing it with ECDH-ES).
#[derive(Clone, Serialize, Deserialize)]
pub struct SpKeys {
    /// PKCS#8 PEM.
    pub signing_key_pem: String,
    pub signing_cert_pem: String,
    /// PKCS#8 PEM.
    pub encryption_key_pem: String,
    pub encryption_cert_pem: String,
    /// PKCS#8 PEM; empty in keys stored before ECDH-ES existed (the caller fills it in).
    #[serde(default)]
    pub ec_encryption_key_pem: String,
    #[serde(default)]
    pub ec_encryption_cert_pem: String,
}

impl fmt::Debug for SpKeys {
    /// Certificates only: private keys never go to logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpKeys")
            .field("signing_cert_pem", &self.signing_cert_pem)
            .field("encryption_cert_pem", &self.encryption_cert_pem)
            .field("ec_encryption_cert_pem", &self.ec_encryption_cert_pem)
            .finish_non_exhaustive()
    }
}

impl SpKeys {
    /// Fresh keys and self-signed certificates (subject `CN=<common_name>`), valid for 10 years.
    /// Takes about a second (the RSA-3072 key).
    pub fn generate(common_name: &str, now: i64) -> Result<Self, SamlError> {
        let run = || -> Result<SpKeys, openssl::error::ErrorStack> {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            let signing = PKey::from_ec_key(EcKey::generate(&group)?)?;
            let encryption = PKey::from_rsa(Rsa::generate(RSA_BITS)?)?;
            let signing_cert = self_signed(&signing, common_name, false, now)?;
            let encryption_cert = self_signed(&encryption, common_name, true, now)?;
            let (ec_encryption_key_pem, ec_encryption_cert_pem) =
                generate_ec_encryption(common_name, now)?;
            Ok(SpKeys {
                signing_key_pem: pem_string(signing.private_key_to_pem_pkcs8()?),
                signing_cert_pem: pem_string(signing_cert.to_pem()?),
                encryption_key_pem: pem_string(encryption.private_key_to_pem_pkcs8()?),
                encryption_cert_pem: pem_string(encryption_cert.to_pem()?),
                ec_encryption_key_pem,
                ec_encryption_cert_pem,
            })
        };
        run().map_err(|e| SamlError::Key(format!("cannot generate keys: {e}")))
    }

    /// A fresh EC P-256 encryption key and certificate (PKCS#8 PEM, PEM), for ECDH-ES.
    pub fn generate_ec_encryption(
        common_name: &str,
        now: i64,
    ) -> Result<(String, String), SamlError> {
        generate_ec_encryption(common_name, now)
            .map_err(|e| SamlError::Key(format!("cannot generate keys: {e}")))
    }
}

fn generate_ec_encryption(
    common_name: &str,
    now: i64,
) -> Result<(String, String), openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let cert = self_signed(&key, common_name, true, now)?;
    Ok((pem_string(key.private_key_to_pem_pkcs8()?), pem_string(cert.to_pem()?)))
}

fn pem_string(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

fn self_signed(
    key: &PKey<Private>,
    common_name: &str,
    encryption: bool,
    now: i64,
) -> Result<X509, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(serial.to_asn1_integer()?.as_ref())?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(key)?;
    b.set_not_before(Asn1Time::from_unix(now - 3600)?.as_ref())?;
    b.set_not_after(Asn1Time::from_unix(now + CERT_VALIDITY_DAYS * 86_400)?.as_ref())?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    let usage = if encryption && key.id() == Id::EC {
        KeyUsage::new().critical().key_agreement().build()?
    } else if encryption {
        KeyUsage::new().critical().key_encipherment().build()?
    } else {
        KeyUsage::new().critical().digital_signature().build()?
    };
    b.append_extension(usage)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// [`SpKeys`] checked and parsed.
pub(crate) struct LoadedKeys {
    pub signing_key: PKey<Private>,
    /// The signing key as DER, what xmlsec loads.
    pub signing_key_der: Vec<u8>,
    /// Base64 DER, as in `ds:X509Certificate`.
    pub signing_cert_b64: String,
    /// RSA (OAEP) and EC (ECDH-ES) decryption keys.
    pub decryption: super::xmlenc::DecryptionKeys,
    pub encryption_cert_b64: String,
    pub ec_encryption_cert_b64: String,
}

impl LoadedKeys {
    pub(crate) fn load(keys: &SpKeys) -> Result<Self, SamlError> {
        let key = |what: &str, pem: &str| {
            PKey::private_key_from_pem(pem.as_bytes())
                .map_err(|e| SamlError::Key(format!("{what}: not a PEM private key: {e}")))
        };
        let cert = |what: &str, pem: &str| {
            X509::from_pem(pem.as_bytes())
                .map_err(|e| SamlError::Key(format!("{what}: not a PEM certificate: {e}")))
        };
        let signing_key = key("signing key", &keys.signing_key_pem)?;
        let signing_cert = cert("signing certificate", &keys.signing_cert_pem)?;
        let encryption_key = key("encryption key", &keys.encryption_key_pem)?;
        let encryption_cert = cert("encryption certificate", &keys.encryption_cert_pem)?;
        if signing_key.id() != Id::EC {
            return Err(SamlError::Key(
                "the signing key must be an EC key (ECDSA; eIDAS does not allow RSA PKCS#1 v1.5 \
                 and xmlsec 1.2 cannot make RSASSA-PSS signatures)"
                    .into(),
            ));
        }
        if encryption_key.id() != Id::RSA || encryption_key.bits() < MIN_RSA_BITS {
            return Err(SamlError::Key(format!(
                "the encryption key must be an RSA key of at least {MIN_RSA_BITS} bits"
            )));
        }
        let ec_key = key("EC encryption key", &keys.ec_encryption_key_pem)?;
        let ec_cert = cert("EC encryption certificate", &keys.ec_encryption_cert_pem)?;
        let (ec_alg, ec_curve_urn) = match ec_key.ec_key().ok().and_then(|k| k.group().curve_name())
        {
            Some(Nid::X9_62_PRIME256V1) => {
                (&aws_lc_rs::agreement::ECDH_P256, super::xmlenc::P256_URN)
            }
            Some(Nid::SECP384R1) => (&aws_lc_rs::agreement::ECDH_P384, super::xmlenc::P384_URN),
            _ => {
                return Err(SamlError::Key(
                    "the EC encryption key must be an EC key on P-256 or P-384".into(),
                ))
            }
        };
        for (what, k, c) in [
            ("signing", &signing_key, &signing_cert),
            ("encryption", &encryption_key, &encryption_cert),
            ("EC encryption", &ec_key, &ec_cert),
        ] {
            let matches = c.public_key().map(|p| p.public_eq(k)).unwrap_or(false);
            if !matches {
                return Err(SamlError::Key(format!(
                    "the {what} certificate does not belong to the {what} key"
                )));
            }
        }
        let der = |c: &X509| {
            c.to_der().map_err(|e| SamlError::Key(format!("certificate cannot be encoded: {e}")))
        };
        Ok(LoadedKeys {
            signing_key_der: signing_key
                .private_key_to_der()
                .map_err(|e| SamlError::Key(format!("signing key cannot be encoded: {e}")))?,
            signing_key,
            signing_cert_b64: STANDARD.encode(der(&signing_cert)?),
            decryption: super::xmlenc::DecryptionKeys {
                rsa: encryption_key,
                ec: aws_lc_rs::agreement::PrivateKey::from_private_key_der(
                    ec_alg,
                    &ec_key.private_key_to_der().map_err(|e| {
                        SamlError::Key(format!("EC encryption key cannot be encoded: {e}"))
                    })?,
                )
                .map_err(|e| SamlError::Key(format!("EC encryption key: {e}")))?,
                ec_curve_urn,
            },
            encryption_cert_b64: STANDARD.encode(der(&encryption_cert)?),
            ec_encryption_cert_b64: STANDARD.encode(der(&ec_cert)?),
        })
    }
}
