//! XML signatures: a strict profile check, verification through samael/xmlsec, and signing.
//!
//! Verification accepts exactly the shape SAML (and the eIDAS profile) prescribes: one
//! enveloped `ds:Signature`, a child of the signed root element, with a single `Reference` to
//! the root's `ID`, the enveloped-signature and exclusive-c14n transforms only. Anything else
//! (several signatures, a signature elsewhere, a reference to another element, XPath/XSLT
//! transforms) is refused before xmlsec runs, which rules out the signature-wrapping family of
//! attacks by construction. xmlsec then verifies with the trusted key only (the certificate in
//! `KeyInfo` is ignored) and samael's `ReduceMode::PreDigest` hands back the canonical form of
//! what was digested; only that is read afterwards.

use roxmltree::Node;
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider as _, ReduceMode,
};

use super::xml::{all_text, children, escape, parse_no_dtd, parse_verified, single_child, DSIG_NS};
use super::SamlError;

pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Signature algorithms accepted on Responses and Assertions: ECDSA with SHA-256/384/512.
///
/// eIDAS also allows RSASSA-PSS (`http://www.w3.org/2007/05/xmldsig-more#sha*-rsa-MGF1`), but
/// xmlsec 1.2 (this platform) cannot verify it and samael's allowlist has no entry for it; such
/// responses are refused with a message saying so. RSA PKCS#1 v1.5 and SHA-1 are not on the
/// eIDAS list and are refused too.
pub const RESPONSE_ALGORITHMS: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// For metadata, whose signer (a trust anchor) may also use RSA PKCS#1 v1.5 with SHA-2.
pub const METADATA_ALGORITHMS: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
];

/// The `ds:Signature` children of the document's root, with what the profile check needs.
pub(crate) struct SignatureInfo {
    /// `ds:X509Certificate` values in `KeyInfo` (base64), untrusted.
    pub key_info_certs: Vec<String>,
}

/// Checks that `xml` carries exactly one signature of the accepted shape over its root element
/// (see the module documentation). Errors are messages for `Invalid`. Comments are the
/// caller's business (refused in messages, tolerated in metadata).
pub(crate) fn check_profile(
    what: &str,
    xml: &str,
    allowed: &[AllowedSignatureAlgorithm],
) -> Result<SignatureInfo, String> {
    let doc = parse_no_dtd(what, xml)?;
    let root = doc.root_element();
    let sigs: Vec<Node> =
        doc.descendants().filter(|n| n.has_tag_name((DSIG_NS, "Signature"))).collect();
    let sig = match sigs.as_slice() {
        [] => return Err(format!("the {what} is not signed")),
        [s] => *s,
        _ => return Err(format!("the {what} carries more than one signature")),
    };
    if sig.parent_element() != Some(root) {
        return Err(format!("the signature is not on the {what} element itself"));
    }
    let id = root.attribute("ID").filter(|s| !s.is_empty());
    let Some(id) = id else {
        return Err(format!("the signed {what} has no ID"));
    };
    let si = single_child(sig, DSIG_NS, "SignedInfo")?.ok_or("the signature has no SignedInfo")?;
    let c14n = algorithm(single_child(si, DSIG_NS, "CanonicalizationMethod")?);
    if c14n != EXC_C14N {
        return Err(format!("canonicalization {c14n:?} is not accepted (exclusive c14n only)"));
    }
    let method = algorithm(single_child(si, DSIG_NS, "SignatureMethod")?);
    check_signature_method(method, allowed)?;
    let refs: Vec<Node> = children(si, DSIG_NS, "Reference").collect();
    let [reference] = refs.as_slice() else {
        return Err("the signature must have exactly one Reference".into());
    };
    if reference.attribute("URI") != Some(format!("#{id}").as_str()) {
        return Err(format!("the signature does not reference the {what} element"));
    }
    let transforms: Vec<&str> = match single_child(*reference, DSIG_NS, "Transforms")? {
        Some(t) => t
            .children()
            .filter(|c| c.is_element())
            .map(|c| {
                if c.has_tag_name((DSIG_NS, "Transform")) {
                    c.attribute("Algorithm").unwrap_or_default()
                } else {
                    ""
                }
            })
            .collect(),
        None => Vec::new(),
    };
    if transforms != [ENVELOPED, EXC_C14N] && transforms != [ENVELOPED] {
        return Err(format!(
            "signature transforms {transforms:?} are not accepted (enveloped-signature and \
             exclusive c14n only)"
        ));
    }
    let digest = algorithm(single_child(*reference, DSIG_NS, "DigestMethod")?);
    let digests: Vec<&str> = allowed.iter().map(|a| a.digest_uri()).collect();
    if !digests.contains(&digest) {
        return Err(format!("digest algorithm {digest:?} is not accepted"));
    }
    let key_info_certs = match single_child(sig, DSIG_NS, "KeyInfo")? {
        Some(ki) => ki
            .descendants()
            .filter(|n| n.has_tag_name((DSIG_NS, "X509Certificate")))
            .map(all_text)
            .collect(),
        None => Vec::new(),
    };
    Ok(SignatureInfo { key_info_certs })
}

/// The `Algorithm` of an optional element (empty when absent).
fn algorithm<'a>(n: Option<Node<'a, '_>>) -> &'a str {
    n.and_then(|n| n.attribute("Algorithm")).unwrap_or_default()
}

fn check_signature_method(
    method: &str,
    allowed: &[AllowedSignatureAlgorithm],
) -> Result<(), String> {
    if allowed.iter().any(|a| a.signature_uri() == method) {
        return Ok(());
    }
    let why = if method.contains("rsa-MGF1") {
        "RSASSA-PSS cannot be verified on this platform (xmlsec 1.2)"
    } else if method.ends_with("sha1") {
        "SHA-1 is not accepted"
    } else if method.contains("rsa-sha") {
        "RSA PKCS#1 v1.5 signatures are not accepted (eIDAS)"
    } else {
        "not on the accepted list"
    };
    Err(format!("signature algorithm {method:?}: {why}"))
}

/// Verifies the signature of `xml`'s root element with one of `certs` (the trusted ones; the
/// `KeyInfo` is ignored) and returns the verified root element: xmlsec's pre-digest output
/// (exclusive canonical form, without the signature). The profile check runs first.
pub(crate) fn verify_root(
    what: &str,
    xml: &str,
    certs: &[CertificateDer],
    allowed: &[AllowedSignatureAlgorithm],
) -> Result<String, String> {
    check_profile(what, xml, allowed)?;
    verify_checked(what, xml, certs, allowed)
}

/// [`verify_root`] without the profile check (the caller did it).
pub(crate) fn verify_checked(
    what: &str,
    xml: &str,
    certs: &[CertificateDer],
    allowed: &[AllowedSignatureAlgorithm],
) -> Result<String, String> {
    if certs.is_empty() {
        return Err("no trusted signing certificate".into());
    }
    // One certificate per call: xmlsec fails hard (rather than trying the next certificate)
    // when a key does not fit the algorithm.
    let mut last_error = String::new();
    let verified = certs.iter().find_map(|cert| {
        match Crypto::reduce_xml_to_signed_with_allowed_algorithms(
            xml,
            std::slice::from_ref(cert),
            ReduceMode::PreDigest,
            Some(allowed),
        ) {
            Ok(v) => Some(v),
            Err(e) => {
                last_error = e.to_string();
                None
            }
        }
    });
    let Some(verified) = verified else {
        return Err(format!(
            "the {what} signature does not verify with the trusted certificate ({last_error})"
        ));
    };
    // The pre-digest must be the root element we checked (same name and ID).
    let original = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let vdoc = parse_verified(&verified)?;
    let (o, v) = (original.root_element(), vdoc.root_element());
    let same = o.tag_name() == v.tag_name() && o.attribute("ID") == v.attribute("ID");
    if !same {
        return Err(format!("the signature does not cover the {what} element"));
    }
    Ok(verified)
}

/// An enveloped-signature template over the element with `ID` `ref_id`: ECDSA-SHA256, SHA-256
/// digest, exclusive c14n, the signer's certificate in `KeyInfo`.
pub(crate) fn signature_template(ref_id: &str, cert_b64: &str) -> String {
    format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
         <ds:SignatureMethod Algorithm=\"{ECDSA_SHA256}\"/>\
         <ds:Reference URI=\"#{}\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{ENVELOPED}\"/><ds:Transform Algorithm=\"{EXC_C14N}\"/>\
         </ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue></ds:DigestValue>\
         </ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>\
         <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></ds:Signature>",
        escape(ref_id)
    )
}

/// Fills in the signature template in `xml` (a whole document we built) with the private key
/// (DER) and returns the signed document without XML declaration.
pub(crate) fn sign(xml: &str, key_der: &[u8]) -> Result<String, SamlError> {
    let signed =
        Crypto::sign_xml(xml, key_der).map_err(|e| SamlError::Signing(format!("xmlsec: {e}")))?;
    Ok(super::xml::strip_xml_declaration(&signed).to_string())
}
