//! Building hostile and unusual responses for the tests: re-signing with keys a test trusts
//! (or an attacker's), re-encrypting with chosen algorithms, cutting and pasting elements.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::symm::Cipher;
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{Crypto, CryptoProvider as _};

use crate::saml::uris;
use crate::saml::xml::{strip_xml_declaration, DSIG_NS, SAML_NS, XENC11_NS, XENC_NS};

/// A key with a self-signed certificate.
pub struct ForgeKey {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl ForgeKey {
    pub fn ec() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        Self::with(PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap())
    }

    pub fn rsa() -> Self {
        Self::with(PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap())
    }

    fn with(key: PKey<Private>) -> Self {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "forge").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_u32(rand::random::<u32>() >> 1).unwrap();
        b.set_serial_number(serial.to_asn1_integer().unwrap().as_ref()).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(Asn1Time::days_from_now(0).unwrap().as_ref()).unwrap();
        b.set_not_after(Asn1Time::days_from_now(30).unwrap().as_ref()).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        ForgeKey { key, cert: b.build() }
    }

    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.to_der().unwrap()
    }

    pub fn cert_b64(&self) -> String {
        STANDARD.encode(self.cert_der())
    }
}

/// Signature and digest algorithm of a forged signature.
#[derive(Clone, Copy)]
pub struct SigSpec {
    pub method: &'static str,
    pub digest: &'static str,
    /// Children of `ds:SignatureMethod` (e.g. `pss:RSAPSSParams`), as XML.
    pub params: &'static str,
}

pub const ECDSA_SHA256: SigSpec =
    SigSpec { method: uris::ECDSA_SHA256, digest: uris::SHA256, params: "" };
pub const ECDSA_SHA384: SigSpec =
    SigSpec { method: uris::ECDSA_SHA384, digest: uris::SHA384, params: "" };
pub const ECDSA_SHA512: SigSpec =
    SigSpec { method: uris::ECDSA_SHA512, digest: uris::SHA512, params: "" };
pub const ECDSA_SHA1_DIGEST: SigSpec =
    SigSpec { method: uris::ECDSA_SHA256, digest: uris::SHA1, params: "" };
pub const RSA_SHA256: SigSpec = SigSpec {
    method: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    digest: uris::SHA256,
    params: "",
};
pub const PSS_SHA256: SigSpec =
    SigSpec { method: uris::RSA_PSS_SHA256, digest: uris::SHA256, params: "" };
pub const PSS_SHA384: SigSpec =
    SigSpec { method: uris::RSA_PSS_SHA384, digest: uris::SHA384, params: "" };
pub const PSS_SHA512: SigSpec =
    SigSpec { method: uris::RSA_PSS_SHA512, digest: uris::SHA256, params: "" };

/// The byte range of the first element `ns:name` (document order).
pub fn range_of(xml: &str, ns: &str, name: &str) -> std::ops::Range<usize> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let n = doc.descendants().find(|n| n.has_tag_name((ns, name))).unwrap();
    n.range()
}

/// `xml` with the first element `ns:name` replaced by `new`.
pub fn replace_element(xml: &str, ns: &str, name: &str, new: &str) -> String {
    let r = range_of(xml, ns, name);
    format!("{}{new}{}", &xml[..r.start], &xml[r.end..])
}

/// The first element `ns:name` as text.
pub fn element(xml: &str, ns: &str, name: &str) -> String {
    xml[range_of(xml, ns, name)].to_string()
}

/// The root element's own `ds:Signature` removed.
pub fn strip_signature(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let Some(sig) = doc.root_element().children().find(|n| n.has_tag_name((DSIG_NS, "Signature")))
    else {
        return xml.to_string();
    };
    let r = sig.range();
    format!("{}{}", &xml[..r.start], &xml[r.end..])
}

/// Signs the root element (template after its Issuer, or first) with `key`; the certificate
/// goes into `KeyInfo`.
pub fn sign(xml: &str, key: &ForgeKey, spec: SigSpec) -> String {
    let xml = strip_xml_declaration(xml);
    let doc = roxmltree::Document::parse(xml).unwrap();
    let root = doc.root_element();
    let id = root.attribute("ID").unwrap();
    // After the Issuer if there is one (SAML messages), else first (metadata).
    let at = match root.children().find(|n| n.has_tag_name((SAML_NS, "Issuer"))) {
        Some(issuer) => issuer.range().end,
        None => root.first_child().map(|c| c.range().start).unwrap_or(root.range().end),
    };
    let template = format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{c14n}\"/>\
         <ds:SignatureMethod Algorithm=\"{method}\">{params}</ds:SignatureMethod>\
         <ds:Reference URI=\"#{id}\">\
         <ds:Transforms><ds:Transform Algorithm=\"{env}\"/><ds:Transform Algorithm=\"{c14n}\"/>\
         </ds:Transforms><ds:DigestMethod Algorithm=\"{digest}\"/><ds:DigestValue/>\
         </ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data>\
         <ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
         </ds:Signature>",
        c14n = uris::EXC_C14N,
        env = uris::ENVELOPED,
        method = spec.method,
        params = spec.params,
        digest = spec.digest,
        cert = key.cert_b64(),
    );
    let with_template = format!("{}{template}{}", &xml[..at], &xml[at..]);
    let signed = if spec.method.contains("rsa-MGF1") {
        // xmlsec 1.2 cannot make RSASSA-PSS signatures; bergshamra (aws-lc) can.
        let pem = key.key.private_key_to_pem_pkcs8().unwrap();
        let k = bergshamra::keys::loader::load_pem_auto(&pem, None).unwrap();
        let mut manager = bergshamra::KeysManager::new();
        manager.add_key(k);
        bergshamra::sign(&bergshamra::DsigContext::new_permissive(manager), &with_template).unwrap()
    } else {
        Crypto::sign_xml(&with_template, &key.key.private_key_to_der().unwrap()).unwrap()
    };
    strip_xml_declaration(&signed).to_string()
}

/// How to encrypt a forged assertion.
#[derive(Clone, Copy)]
pub struct EncSpec {
    pub data: &'static str,
    pub key: &'static str,
    pub digest: Option<&'static str>,
    pub mgf: Option<&'static str>,
    /// Flip a bit of the ciphertext after encryption.
    pub tamper: bool,
}

pub const AES256_GCM_OAEP11: EncSpec = EncSpec {
    data: uris::AES256_GCM,
    key: uris::RSA_OAEP_11,
    digest: Some(uris::SHA256),
    mgf: Some(uris::MGF1_SHA256),
    tamper: false,
};

/// An `xenc:EncryptedData` of `plain` for `cert` (the SP's encryption certificate).
pub fn encrypt(plain: &str, cert: &X509, spec: EncSpec) -> String {
    let (cipher, key_len) = match spec.data {
        uris::AES128_GCM => (Cipher::aes_128_gcm(), 16),
        uris::AES192_GCM => (Cipher::aes_192_gcm(), 24),
        uris::AES256_GCM => (Cipher::aes_256_gcm(), 32),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => (Cipher::aes_256_cbc(), 32),
        other => panic!("{other}"),
    };
    let mut cek = vec![0u8; key_len];
    openssl::rand::rand_bytes(&mut cek).unwrap();
    let mut value = Vec::new();
    if spec.data.ends_with("-gcm") {
        let mut iv = [0u8; 12];
        openssl::rand::rand_bytes(&mut iv).unwrap();
        let mut tag = [0u8; 16];
        let ct =
            openssl::symm::encrypt_aead(cipher, &cek, Some(&iv), &[], plain.as_bytes(), &mut tag)
                .unwrap();
        value.extend_from_slice(&iv);
        value.extend_from_slice(&ct);
        value.extend_from_slice(&tag);
    } else {
        let mut iv = [0u8; 16];
        openssl::rand::rand_bytes(&mut iv).unwrap();
        let ct = openssl::symm::encrypt(cipher, &cek, Some(&iv), plain.as_bytes()).unwrap();
        value.extend_from_slice(&iv);
        value.extend_from_slice(&ct);
    }
    if spec.tamper {
        let i = value.len() / 2;
        value[i] ^= 0x01;
    }
    let pk = cert.public_key().unwrap();
    let mut ctx = PkeyCtx::new(&pk).unwrap();
    ctx.encrypt_init().unwrap();
    if spec.key == uris::RSA_1_5 {
        ctx.set_rsa_padding(Padding::PKCS1).unwrap();
    } else {
        ctx.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        let md = |uri: Option<&str>| match uri {
            Some(u) if u.ends_with("sha256") => Md::sha256(),
            Some(u) if u.ends_with("sha512") => Md::sha512(),
            _ => Md::sha1(),
        };
        ctx.set_rsa_oaep_md(md(spec.digest)).unwrap();
        let mgf = if spec.key == uris::RSA_OAEP_MGF1P { None } else { spec.mgf };
        ctx.set_rsa_mgf1_md(md(mgf)).unwrap();
    }
    let mut wrapped = Vec::new();
    ctx.encrypt_to_vec(&cek, &mut wrapped).unwrap();
    let digest = spec
        .digest
        .map(|d| format!("<ds:DigestMethod xmlns:ds=\"{DSIG_NS}\" Algorithm=\"{d}\"/>"))
        .unwrap_or_default();
    let mgf = spec
        .mgf
        .map(|m| format!("<xenc11:MGF xmlns:xenc11=\"{XENC11_NS}\" Algorithm=\"{m}\"/>"))
        .unwrap_or_default();
    format!(
        "<xenc:EncryptedData xmlns:xenc=\"{XENC_NS}\" \
         Type=\"http://www.w3.org/2001/04/xmlenc#Element\">\
         <xenc:EncryptionMethod Algorithm=\"{data}\"/><ds:KeyInfo xmlns:ds=\"{DSIG_NS}\">\
         <xenc:EncryptedKey><xenc:EncryptionMethod Algorithm=\"{key}\">{digest}{mgf}\
         </xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue>\
         </xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData>\
         <xenc:CipherValue>{value}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>",
        data = spec.data,
        key = spec.key,
        wrapped = STANDARD.encode(wrapped),
        value = STANDARD.encode(value),
    )
}

/// The plaintext assertion of a genuine response, decrypted with the SP's keys.
pub fn decrypt(response: &str, sp_encryption_key: &crate::saml::xmlenc::DecryptionKeys) -> String {
    let doc = roxmltree::Document::parse(response).unwrap();
    let ea = doc.descendants().find(|n| n.has_tag_name((SAML_NS, "EncryptedAssertion"))).unwrap();
    let plain = crate::saml::xmlenc::decrypt_assertion(ea, sp_encryption_key).unwrap();
    String::from_utf8(plain).unwrap()
}

/// A response carrying `assertion` (signed as given) encrypted with `enc`, the Response
/// re-signed by `key` with `sig` (`None`: unsigned).
pub fn rebuild(
    response: &str,
    assertion: &str,
    sp_encryption_cert: &X509,
    enc: EncSpec,
    key: &ForgeKey,
    sig: Option<SigSpec>,
) -> String {
    let data = encrypt(assertion, sp_encryption_cert, enc);
    rebuild_with(response, &data, key, sig)
}

/// A response carrying the `xenc:EncryptedData` `data`, re-signed by `key` with `sig`.
pub fn rebuild_with(response: &str, data: &str, key: &ForgeKey, sig: Option<SigSpec>) -> String {
    let r = replace_element(&strip_signature(response), XENC_NS, "EncryptedData", data);
    match sig {
        Some(s) => sign(&r, key, s),
        None => r,
    }
}

/// An ECDH-ES `xenc:EncryptedData` of `plain` for the EC certificate `cert`, as the mock node
/// makes it (ephemeral key, ConcatKDF SHA-256, kw-aes256, AES-256-GCM).
pub fn encrypt_ecdh(plain: &str, cert: &X509) -> String {
    idp_mocks::eidas::encrypt_element(plain, cert, "https://broker.test", false).unwrap()
}

/// `xml` with the base64 text of the first `ns:name` element decoded, changed and re-encoded.
pub fn edit_b64(xml: &str, ns: &str, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let n = doc.descendants().find(|n| n.has_tag_name((ns, name))).unwrap();
    let text = n.first_child().unwrap();
    let mut bytes = STANDARD.decode(text.text().unwrap().trim()).unwrap();
    edit(&mut bytes);
    let r = text.range();
    format!("{}{}{}", &xml[..r.start], STANDARD.encode(bytes), &xml[r.end..])
}
