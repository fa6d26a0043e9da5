//! Keys, XML signatures, request-signature checks and XML encryption.
//!
//! The node signs with ECDSA (xmlsec through samael) or RSASSA-PSS (bergshamra: xmlsec 1.2 has
//! no PSS), and encrypts the assertion's key with RSA-OAEP or ECDH-ES (OpenSSL), as CEF nodes
//! do. `tests/xmlsec-crosscheck` checks both with libxmlsec1 1.3, which the project did not
//! write.
//!
//! Everything here is synchronous and CPU-bound: callers run it on the blocking pool.

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Verifier};
use openssl::symm::Cipher;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider as _, ReduceMode,
};

use super::xml::escape;

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const RSA_PSS_SHA256: &str = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1";
pub const ECDH_ES: &str = "http://www.w3.org/2009/xmlenc11#ECDH-ES";
pub const CONCAT_KDF: &str = "http://www.w3.org/2009/xmlenc11#ConcatKDF";
pub const KW_AES256: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes256";
pub const DSIG11_NS: &str = "http://www.w3.org/2009/xmldsig11#";
/// `dsig11:NamedCurve` URIs (RFC 6931 style `urn:oid:`) of P-256 and P-384.
pub const P256_OID_URN: &str = "urn:oid:1.2.840.10045.3.1.7";
pub const P384_OID_URN: &str = "urn:oid:1.3.132.0.34";
pub const SHA256_DIGEST: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
pub const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
pub const SHA1_DIGEST: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
pub const XENC_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";

/// Signature algorithms accepted on AuthnRequests (XML and query-string signatures).
///
/// ECDSA and RSA PKCS#1 v1.5 with SHA-256/384/512; RSASSA-PSS (`sha*-rsa-MGF1`) only on the
/// HTTP-Redirect binding (xmlsec 1.2.37 cannot verify it in XML). SHA-1 is refused.
pub const REQUEST_SIGNATURE_ALGORITHMS: &[&str] = &[
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
    "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
    "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
];

const XML_ALLOWED: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
];

/// How a node signs: the CEF node's two families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NodeSigning {
    /// ECDSA P-256 with SHA-256.
    #[default]
    Ecdsa,
    /// RSASSA-PSS (RSA-3072, SHA-256, MGF1-SHA-256, salt 32).
    RsaPss,
}

impl NodeSigning {
    pub fn method_uri(self) -> &'static str {
        match self {
            NodeSigning::Ecdsa => ECDSA_SHA256,
            NodeSigning::RsaPss => RSA_PSS_SHA256,
        }
    }
}

/// A signing key (ECDSA P-256 or RSA-3072 for RSASSA-PSS) with its self-signed certificate.
pub struct SigningKey {
    pub kind: NodeSigning,
    pub cert: X509,
    /// The private key as DER (what xmlsec loads).
    pub key_der: Vec<u8>,
    /// The private key as PKCS#8 PEM (what bergshamra loads).
    key_pem: Vec<u8>,
    /// Base64 of the certificate's DER, as in `<ds:X509Certificate>`.
    pub cert_b64: String,
}

impl SigningKey {
    /// A fresh key of `kind` and a self-signed certificate for `common_name`, valid for 3 years.
    pub fn generate_kind(common_name: &str, kind: NodeSigning) -> anyhow::Result<SigningKey> {
        let key = match kind {
            NodeSigning::Ecdsa => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
                PKey::from_ec_key(EcKey::generate(&group)?)?
            }
            NodeSigning::RsaPss => PKey::from_rsa(Rsa::generate(3072)?)?,
        };
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COUNTRYNAME, "NL")?;
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "idp-mocks")?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        let name = name.build();
        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let serial = serial.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        let now = chrono::Utc::now().timestamp();
        let not_before = Asn1Time::from_unix(now - 86_400)?;
        let not_after = Asn1Time::from_unix(now + 3 * 365 * 86_400)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.sign(&key, MessageDigest::sha256())?;
        let cert = b.build();
        let key_der = key.private_key_to_der()?;
        let key_pem = key.private_key_to_pem_pkcs8()?;
        let cert_b64 = STANDARD.encode(cert.to_der()?);
        Ok(SigningKey { kind, cert, key_der, key_pem, cert_b64 })
    }

    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap_or_default()).unwrap_or_default()
    }
}

/// An enveloped-signature template (the key's method, SHA-256 digest, exclusive c14n) over the
/// element whose `ID` is `ref_id`, with the signer's certificate in `KeyInfo`. `prefix_list`
/// becomes an `ec:InclusiveNamespaces PrefixList` (for prefixes used only inside attribute
/// values, such as `xsi:type` QNames).
pub fn signature_template(ref_id: &str, key: &SigningKey, prefix_list: Option<&str>) -> String {
    let cert_b64 = &key.cert_b64;
    let method = key.kind.method_uri();
    let c14n = match prefix_list {
        Some(p) => format!(
            "<ds:Transform Algorithm=\"{EXC_C14N}\"><ec:InclusiveNamespaces \
             xmlns:ec=\"{EXC_C14N}\" PrefixList=\"{}\"/></ds:Transform>",
            escape(p)
        ),
        None => format!("<ds:Transform Algorithm=\"{EXC_C14N}\"/>"),
    };
    format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
         <ds:SignatureMethod Algorithm=\"{method}\"/>\
         <ds:Reference URI=\"#{}\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{ENVELOPED}\"/>{c14n}</ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{SHA256_DIGEST}\"/><ds:DigestValue></ds:DigestValue>\
         </ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>\
         <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></ds:Signature>",
        escape(ref_id)
    )
}

/// Signs the first `ds:Signature` template in `xml` (a whole document) with `key` and returns the
/// signed document without its XML declaration.
pub fn sign_document(xml: &str, key: &SigningKey) -> anyhow::Result<String> {
    if xml.contains("<!DOCTYPE") {
        bail!("refusing to sign a document with a DTD");
    }
    let signed = match key.kind {
        NodeSigning::Ecdsa => {
            Crypto::sign_xml(xml, &key.key_der).map_err(|e| anyhow!("xmlsec: {e}"))?
        }
        NodeSigning::RsaPss => sign_with_bergshamra(xml, &key.key_pem)?,
    };
    Ok(strip_xml_declaration(&signed).to_string())
}

/// Fills in the first signature template of `xml` with bergshamra (any method it knows, here
/// RSASSA-PSS; aws-lc makes the signature, salt = hash length).
pub fn sign_with_bergshamra(xml: &str, key_pem: &[u8]) -> anyhow::Result<String> {
    let key = bergshamra::keys::loader::load_pem_auto(key_pem, None)
        .map_err(|e| anyhow!("bergshamra key: {e}"))?;
    let mut manager = bergshamra::KeysManager::new();
    manager.add_key(key);
    let ctx = bergshamra::DsigContext::new_permissive(manager);
    bergshamra::sign(&ctx, xml).map_err(|e| anyhow!("bergshamra: {e}"))
}

/// The document without a leading `<?xml …?>` declaration and surrounding whitespace.
pub fn strip_xml_declaration(xml: &str) -> &str {
    let t = xml.trim();
    if t.starts_with("<?xml") {
        if let Some(end) = t.find("?>") {
            return t[end + 2..].trim();
        }
    }
    t
}

/// Verifies the enveloped XML signature of a POST-binding message against any of `certs` and
/// returns only what the signature covers (xmlsec's pre-digest output of the single reference),
/// and the signature algorithm URI.
pub fn verify_enveloped(xml: &str, certs: &[X509]) -> anyhow::Result<(String, String)> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        bail!("document type declarations are not allowed");
    }
    if certs.is_empty() {
        bail!("no SP signing certificate known");
    }
    let algorithm = {
        let doc = roxmltree::Document::parse(xml).context("the request is not well-formed XML")?;
        let sigs: Vec<_> =
            doc.descendants().filter(|n| n.has_tag_name((DSIG_NS, "Signature"))).collect();
        match sigs.as_slice() {
            [] => bail!("the request is not signed"),
            [sig] => {
                if sig.parent_element() != Some(doc.root_element()) {
                    bail!("the signature is not a child of the request element");
                }
                sig.descendants()
                    .find(|n| n.has_tag_name((DSIG_NS, "SignatureMethod")))
                    .and_then(|n| n.attribute("Algorithm"))
                    .unwrap_or_default()
                    .to_string()
            }
            _ => bail!("the request carries more than one signature"),
        }
    };
    if !XML_ALLOWED.iter().any(|a| a.signature_uri() == algorithm) {
        bail!("signature algorithm {algorithm:?} is not accepted");
    }
    let ders: Vec<CertificateDer> =
        certs.iter().filter_map(|c| c.to_der().ok()).map(CertificateDer::from).collect();
    let signed = Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &ders,
        ReduceMode::PreDigest,
        Some(XML_ALLOWED),
    )
    .map_err(|e| anyhow!("the request signature does not verify: {e}"))?;
    Ok((signed, algorithm))
}

/// Verifies an HTTP-Redirect binding signature: `signature` (raw bytes) by `sig_alg` over
/// `signed_octets` (`SAMLRequest=…&RelayState=…&SigAlg=…` exactly as received), against any of
/// `certs`. ECDSA signatures may be DER or raw `r||s`.
pub fn verify_redirect(
    signed_octets: &[u8],
    sig_alg: &str,
    signature: &[u8],
    certs: &[X509],
) -> anyhow::Result<()> {
    if certs.is_empty() {
        bail!("no SP signing certificate known");
    }
    let (md, kind) = match sig_alg {
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => (MessageDigest::sha256(), 'e'),
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384" => (MessageDigest::sha384(), 'e'),
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512" => (MessageDigest::sha512(), 'e'),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => (MessageDigest::sha256(), 'r'),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => (MessageDigest::sha384(), 'r'),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => (MessageDigest::sha512(), 'r'),
        "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1" => (MessageDigest::sha256(), 'p'),
        "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1" => (MessageDigest::sha384(), 'p'),
        "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1" => (MessageDigest::sha512(), 'p'),
        other => bail!("signature algorithm {other:?} is not accepted"),
    };
    for cert in certs {
        let Ok(pk) = cert.public_key() else { continue };
        let ok = match (kind, pk.id()) {
            ('e', Id::EC) => verify_ecdsa(md, &pk, signed_octets, signature),
            ('r', Id::RSA) => verify_rsa(md, &pk, signed_octets, signature, false),
            ('p', Id::RSA) => verify_rsa(md, &pk, signed_octets, signature, true),
            _ => false,
        };
        if ok {
            return Ok(());
        }
    }
    bail!("the request signature does not verify")
}

fn verify_rsa(md: MessageDigest, pk: &PKey<Public>, data: &[u8], sig: &[u8], pss: bool) -> bool {
    let run = || -> Result<bool, openssl::error::ErrorStack> {
        let mut v = Verifier::new(md, pk)?;
        if pss {
            v.set_rsa_padding(Padding::PKCS1_PSS)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            v.set_rsa_mgf1_md(md)?;
        }
        v.update(data)?;
        v.verify(sig)
    };
    run().unwrap_or(false)
}

fn verify_ecdsa(md: MessageDigest, pk: &PKey<Public>, data: &[u8], sig: &[u8]) -> bool {
    let der_ok = (|| -> Result<bool, openssl::error::ErrorStack> {
        let mut v = Verifier::new(md, pk)?;
        v.update(data)?;
        v.verify(sig)
    })()
    .unwrap_or(false);
    if der_ok {
        return true;
    }
    // Raw r||s (the XML Signature encoding), as some SPs use on the redirect binding too.
    let (r, s) = sig.split_at(sig.len() / 2);
    if r.len() != s.len() || r.is_empty() {
        return false;
    }
    (|| -> Result<bool, openssl::error::ErrorStack> {
        let der =
            EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?
                .to_der()?;
        let mut v = Verifier::new(md, pk)?;
        v.update(data)?;
        v.verify(&der)
    })()
    .unwrap_or(false)
}

/// Encrypts an element (serialized XML) for `recipient_cert`: `xenc:EncryptedData`
/// (AES-256-GCM, 12-byte IV first, 16-byte tag last) whose `ds:KeyInfo` holds an
/// `xenc:EncryptedKey`. For an RSA certificate the key is transported with RSA-OAEP
/// (`xmlenc11#rsa-oaep` with SHA-256 and MGF1-SHA-256, or `xmlenc#rsa-oaep-mgf1p` with SHA-1
/// when `legacy`); for an EC certificate (P-256/P-384) it is wrapped (`kw-aes256`) with a key
/// agreed by ECDH-ES with an ephemeral key and ConcatKDF (SHA-256), as CEF nodes do.
pub fn encrypt_element(
    plaintext: &str,
    recipient_cert: &X509,
    recipient_entity_id: &str,
    legacy: bool,
) -> anyhow::Result<String> {
    let pk = recipient_cert.public_key()?;
    let mut cek = [0u8; 32];
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut cek)?;
    openssl::rand::rand_bytes(&mut iv)?;
    let mut tag = [0u8; 16];
    let ct = openssl::symm::encrypt_aead(
        Cipher::aes_256_gcm(),
        &cek,
        Some(&iv),
        &[],
        plaintext.as_bytes(),
        &mut tag,
    )?;
    let mut value = Vec::with_capacity(iv.len() + ct.len() + tag.len());
    value.extend_from_slice(&iv);
    value.extend_from_slice(&ct);
    value.extend_from_slice(&tag);

    let cert_b64 = STANDARD.encode(recipient_cert.to_der()?);
    let (method, key_info, wrapped) = match pk.id() {
        Id::RSA => {
            let mut ctx = PkeyCtx::new(&pk)?;
            ctx.encrypt_init()?;
            ctx.set_rsa_padding(Padding::PKCS1_OAEP)?;
            if !legacy {
                ctx.set_rsa_oaep_md(Md::sha256())?;
                ctx.set_rsa_mgf1_md(Md::sha256())?;
            }
            let mut wrapped = Vec::new();
            ctx.encrypt_to_vec(&cek, &mut wrapped)?;
            let method = if legacy {
                format!(
                    "<xenc:EncryptionMethod Algorithm=\"{RSA_OAEP_MGF1P}\">\
                     <ds:DigestMethod Algorithm=\"{SHA1_DIGEST}\"/></xenc:EncryptionMethod>"
                )
            } else {
                format!(
                    "<xenc:EncryptionMethod Algorithm=\"{RSA_OAEP_11}\">\
                     <ds:DigestMethod Algorithm=\"{SHA256_DIGEST}\"/>\
                     <xenc11:MGF xmlns:xenc11=\"{XENC11_NS}\" Algorithm=\"{MGF1_SHA256}\"/>\
                     </xenc:EncryptionMethod>"
                )
            };
            let key_info = format!(
                "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>\
                 </ds:X509Data></ds:KeyInfo>"
            );
            (method, key_info, wrapped)
        }
        Id::EC => {
            let agreement = EcdhEs::new(&pk, recipient_entity_id)?;
            let wrapped = openssl_key_wrap(&agreement.kek, &cek)?;
            let method = format!("<xenc:EncryptionMethod Algorithm=\"{KW_AES256}\"/>");
            let key_info = format!(
                "<ds:KeyInfo>{}</ds:KeyInfo>",
                agreement.agreement_method(&format!(
                    "<ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>\
                     </ds:X509Data>"
                ))
            );
            (method, key_info, wrapped)
        }
        _ => bail!("the SP encryption certificate is neither an RSA nor an EC key"),
    };
    Ok(format!(
        "<xenc:EncryptedData xmlns:xenc=\"{XENC_NS}\" Id=\"{}\" Type=\"{XENC_ELEMENT}\">\
         <xenc:EncryptionMethod Algorithm=\"{AES256_GCM}\"/>\
         <ds:KeyInfo xmlns:ds=\"{DSIG_NS}\">\
         <xenc:EncryptedKey Id=\"{}\" Recipient=\"{}\">{method}{key_info}\
         <xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData>\
         </xenc:EncryptedKey></ds:KeyInfo>\
         <xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData>\
         </xenc:EncryptedData>",
        new_id(),
        new_id(),
        escape(recipient_entity_id),
        STANDARD.encode(wrapped),
        STANDARD.encode(value),
    ))
}

/// One ECDH-ES agreement: the ephemeral (originator) public key and the derived key-encryption
/// key, with the ConcatKDF parameters used.
pub struct EcdhEs {
    /// `dsig11:NamedCurve` URI of the recipient's curve.
    pub curve_urn: &'static str,
    /// Uncompressed ephemeral public point (`04 || X || Y`).
    pub originator_point: Vec<u8>,
    /// ConcatKDF `AlgorithmID`, `PartyUInfo`, `PartyVInfo` as they go into the XML (hex of the
    /// bit strings: a leading `00` pad-bit count, then the bytes).
    pub algorithm_id: Vec<u8>,
    pub party_u: Vec<u8>,
    pub party_v: Vec<u8>,
    /// The AES-256 key-encryption key.
    pub kek: [u8; 32],
}

impl EcdhEs {
    /// Agrees a key with the recipient's EC public key through a fresh ephemeral key.
    pub fn new(recipient: &PKey<Public>, party_v: &str) -> anyhow::Result<EcdhEs> {
        let ec = recipient.ec_key()?;
        let group = ec.group();
        let curve_urn = match group.curve_name() {
            Some(Nid::X9_62_PRIME256V1) => P256_OID_URN,
            Some(Nid::SECP384R1) => P384_OID_URN,
            other => bail!("ECDH-ES: curve {other:?} is not P-256 or P-384"),
        };
        let ephemeral = PKey::from_ec_key(EcKey::generate(group)?)?;
        let mut ctx = openssl::bn::BigNumContext::new()?;
        let originator_point = ephemeral.ec_key()?.public_key().to_bytes(
            group,
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut ctx,
        )?;
        let mut deriver = openssl::derive::Deriver::new(&ephemeral)?;
        deriver.set_peer(recipient)?;
        let z = deriver.derive_to_vec()?;
        let bitstring = |b: &[u8]| {
            let mut v = vec![0u8];
            v.extend_from_slice(b);
            v
        };
        let algorithm_id = bitstring(KW_AES256.as_bytes());
        let party_u = bitstring(b"mock-eidas-node");
        let party_v = bitstring(party_v.as_bytes());
        // ConcatKDF (NIST SP 800-56A 5.8.1), SHA-256, one block: H(counter=1 || Z || OtherInfo),
        // OtherInfo = AlgorithmID || PartyUInfo || PartyVInfo without their pad-bit octets.
        let mut h = openssl::sha::Sha256::new();
        h.update(&1u32.to_be_bytes());
        h.update(&z);
        for part in [&algorithm_id, &party_u, &party_v] {
            h.update(&part[1..]);
        }
        let kek = h.finish();
        Ok(EcdhEs { curve_urn, originator_point, algorithm_id, party_u, party_v, kek })
    }

    /// The `xenc:AgreementMethod` element; `recipient_key_info` goes into `RecipientKeyInfo`.
    pub fn agreement_method(&self, recipient_key_info: &str) -> String {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02X}")).collect::<String>();
        format!(
            "<xenc:AgreementMethod Algorithm=\"{ECDH_ES}\">\
             <xenc11:KeyDerivationMethod xmlns:xenc11=\"{XENC11_NS}\" Algorithm=\"{CONCAT_KDF}\">\
             <xenc11:ConcatKDFParams AlgorithmID=\"{}\" PartyUInfo=\"{}\" PartyVInfo=\"{}\">\
             <ds:DigestMethod Algorithm=\"{SHA256_DIGEST}\"/></xenc11:ConcatKDFParams>\
             </xenc11:KeyDerivationMethod>\
             <xenc:OriginatorKeyInfo><ds:KeyValue><dsig11:ECKeyValue xmlns:dsig11=\"{DSIG11_NS}\">\
             <dsig11:NamedCurve URI=\"{}\"/><dsig11:PublicKey>{}</dsig11:PublicKey>\
             </dsig11:ECKeyValue></ds:KeyValue></xenc:OriginatorKeyInfo>\
             <xenc:RecipientKeyInfo>{recipient_key_info}</xenc:RecipientKeyInfo>\
             </xenc:AgreementMethod>",
            hex(&self.algorithm_id),
            hex(&self.party_u),
            hex(&self.party_v),
            self.curve_urn,
            STANDARD.encode(&self.originator_point),
        )
    }
}

/// AES key wrap (RFC 3394, default IV) of `key` under `kek`.
pub fn openssl_key_wrap(kek: &[u8], key: &[u8]) -> anyhow::Result<Vec<u8>> {
    let aes = openssl::aes::AesKey::new_encrypt(kek).map_err(|_| anyhow!("bad KEK length"))?;
    let mut out = vec![0u8; key.len() + 8];
    openssl::aes::wrap_key(&aes, None, &mut out, key).map_err(|_| anyhow!("key wrap failed"))?;
    Ok(out)
}

/// A fresh SAML/XML ID: `_` and 32 hex digits (128 random bits).
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).unwrap_or_else(|_| b = rand::random());
    let mut s = String::with_capacity(33);
    s.push('_');
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Parses a certificate given as PEM, or as bare base64 DER (as in `ds:X509Certificate`).
pub fn parse_cert(text: &str) -> anyhow::Result<X509> {
    let t = text.trim();
    if t.contains("-----BEGIN") {
        return X509::from_pem(t.as_bytes()).context("invalid PEM certificate");
    }
    let b64: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).context("certificate is not base64")?;
    X509::from_der(&der).context("invalid DER certificate")
}
