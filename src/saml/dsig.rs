//! XML signatures: a strict profile check, verification with bergshamra, and signing.
//!
//! Verification accepts exactly the shape SAML (and the eIDAS profile) prescribes: one
//! enveloped `ds:Signature`, a child of the signed root element, with a single `Reference` to
//! the root's `ID`, the enveloped-signature and exclusive-c14n transforms only. Anything else
//! (several signatures, a signature elsewhere, a reference to another element, XPath/XSLT
//! transforms) is refused before any cryptography runs, which rules out the signature-wrapping
//! family of attacks by construction. The signature is then verified with the trusted keys only
//! (the certificate in `KeyInfo` is never used), and what is handed back is the canonical form
//! of what was digested (the root without its signature); only that is read afterwards.
//!
//! Algorithms (SPEC §6, the CEF node's whitelist): ECDSA and RSASSA-PSS (`sha*-rsa-MGF1`: MGF1
//! with the same hash, salt length = hash length) with SHA-256/384/512. RSA PKCS#1 v1.5, SHA-1
//! anywhere, and explicit PSS parameters that differ from the method are refused here.
//!
//! Why bergshamra: xmlsec 1.2.37 (this platform, through samael) has no RSASSA-PSS, and xmlsec
//! 1.3 is not packaged here. bergshamra 0.11 is a pure-Rust XML-DSig/c14n implementation that
//! passes xmlsec's own interop suite; with its `aws-lc` provider the signature values are
//! checked by aws-lc-rs (already our crypto library; PSS salt = digest length, MGF1 with the
//! signature hash). Checked in its source: `DsigContext::new` trusts manager keys only (never
//! `KeyInfo`), refuses duplicate IDs and references outside the signature's ancestry, and needs
//! every reference digest verified. It ignores `RSAPSSParams`, which the profile check below
//! therefore pins. Our own signatures (ECDSA P-256) are still made by xmlsec.

use bergshamra::c14n::C14nMode;
use bergshamra::xml::{uppsala, NodeSet};
use bergshamra::{DsigContext, KeysManager, VerifyResult};
use roxmltree::Node;

use super::xml::{all_text, children, escape, parse_no_dtd, parse_verified, single_child, DSIG_NS};
use super::SamlError;

pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
pub const ECDSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512";
pub const RSA_PSS_SHA256: &str = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1";
pub const RSA_PSS_SHA384: &str = "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1";
pub const RSA_PSS_SHA512: &str = "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
/// Namespace of `pss:RSAPSSParams` (RFC 6931 §2.3.10).
pub const PSS_NS: &str = "http://www.w3.org/2007/05/xmldsig-more#";
pub const MGF1: &str = "http://www.w3.org/2007/05/xmldsig-more#MGF1";

/// A signature method accepted on responses, assertions and the node's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    EcdsaSha256,
    EcdsaSha384,
    EcdsaSha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
}

impl SignatureAlgorithm {
    pub const ALL: [SignatureAlgorithm; 6] = [
        Self::EcdsaSha256,
        Self::EcdsaSha384,
        Self::EcdsaSha512,
        Self::RsaPssSha256,
        Self::RsaPssSha384,
        Self::RsaPssSha512,
    ];

    pub fn uri(self) -> &'static str {
        match self {
            Self::EcdsaSha256 => ECDSA_SHA256,
            Self::EcdsaSha384 => ECDSA_SHA384,
            Self::EcdsaSha512 => ECDSA_SHA512,
            Self::RsaPssSha256 => RSA_PSS_SHA256,
            Self::RsaPssSha384 => RSA_PSS_SHA384,
            Self::RsaPssSha512 => RSA_PSS_SHA512,
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.uri() == uri)
    }

    /// The digest URI of the method's hash (and of its MGF1, for PSS).
    pub fn hash_uri(self) -> &'static str {
        match self {
            Self::EcdsaSha256 | Self::RsaPssSha256 => SHA256,
            Self::EcdsaSha384 | Self::RsaPssSha384 => SHA384,
            Self::EcdsaSha512 | Self::RsaPssSha512 => SHA512,
        }
    }

    fn hash_len(self) -> usize {
        match self.hash_uri() {
            SHA256 => 32,
            SHA384 => 48,
            _ => 64,
        }
    }

    fn is_pss(self) -> bool {
        matches!(self, Self::RsaPssSha256 | Self::RsaPssSha384 | Self::RsaPssSha512)
    }
}

/// Reference digests accepted (any of them with any accepted method).
pub const DIGESTS: &[&str] = &[SHA256, SHA384, SHA512];

/// The keys a document may be signed with: the node's configured certificates, loaded once.
pub(crate) struct TrustedSigners {
    /// Secure defaults (`DsigContext::new`): manager keys only, strict reference positions.
    ctx: DsigContext,
}

impl TrustedSigners {
    /// Loads certificates (DER); one that cannot be parsed is refused here.
    pub(crate) fn from_der(certs: &[Vec<u8>]) -> Result<Self, String> {
        if certs.is_empty() {
            return Err("no trusted signing certificate".into());
        }
        let mut manager = KeysManager::new();
        for der in certs {
            let key = bergshamra::keys::loader::load_x509_cert_der(der)
                .map_err(|e| format!("unusable signing certificate: {e}"))?;
            manager.add_key(key);
        }
        Ok(TrustedSigners { ctx: DsigContext::new(manager) })
    }
}

/// What the profile check learnt about the one `ds:Signature` of the document's root.
pub(crate) struct SignatureInfo {
    /// `ds:X509Certificate` values in `KeyInfo` (base64), untrusted.
    pub key_info_certs: Vec<String>,
    /// The reference's `ec:InclusiveNamespaces PrefixList`, if any.
    pub inclusive_prefixes: Vec<String>,
    /// The reference has the exclusive-c14n transform (otherwise inclusive c14n 1.0 applies).
    pub exclusive: bool,
}

/// Checks that `xml` carries exactly one signature of the accepted shape over its root element
/// (see the module documentation). Errors are messages for `Invalid`. Comments are the
/// caller's business (refused in messages, tolerated in metadata).
pub(crate) fn check_profile(what: &str, xml: &str) -> Result<SignatureInfo, String> {
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
    let method_node =
        single_child(si, DSIG_NS, "SignatureMethod")?.ok_or("the signature has no method")?;
    let method = check_signature_method(algorithm(Some(method_node)))?;
    check_method_parameters(method_node, method)?;
    let refs: Vec<Node> = children(si, DSIG_NS, "Reference").collect();
    let [reference] = refs.as_slice() else {
        return Err("the signature must have exactly one Reference".into());
    };
    if reference.attribute("URI") != Some(format!("#{id}").as_str()) {
        return Err(format!("the signature does not reference the {what} element"));
    }
    let transform_nodes: Vec<Node> = match single_child(*reference, DSIG_NS, "Transforms")? {
        Some(t) => t.children().filter(|c| c.is_element()).collect(),
        None => Vec::new(),
    };
    let transforms: Vec<&str> = transform_nodes
        .iter()
        .map(|c| {
            if c.has_tag_name((DSIG_NS, "Transform")) {
                c.attribute("Algorithm").unwrap_or_default()
            } else {
                ""
            }
        })
        .collect();
    if transforms != [ENVELOPED, EXC_C14N] && transforms != [ENVELOPED] {
        return Err(format!(
            "signature transforms {transforms:?} are not accepted (enveloped-signature and \
             exclusive c14n only)"
        ));
    }
    let inclusive_prefixes = transform_nodes
        .get(1)
        .and_then(|t| t.children().find(|c| c.has_tag_name((EXC_C14N, "InclusiveNamespaces"))))
        .and_then(|n| n.attribute("PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let digest = algorithm(single_child(*reference, DSIG_NS, "DigestMethod")?);
    if !DIGESTS.contains(&digest) {
        let why = if digest.ends_with("sha1") { ": SHA-1 is not accepted" } else { "" };
        return Err(format!("digest algorithm {digest:?} is not accepted{why}"));
    }
    let key_info_certs = match single_child(sig, DSIG_NS, "KeyInfo")? {
        Some(ki) => ki
            .descendants()
            .filter(|n| n.has_tag_name((DSIG_NS, "X509Certificate")))
            .map(all_text)
            .collect(),
        None => Vec::new(),
    };
    Ok(SignatureInfo { key_info_certs, inclusive_prefixes, exclusive: transforms.len() == 2 })
}

/// The `Algorithm` of an optional element (empty when absent).
fn algorithm<'a>(n: Option<Node<'a, '_>>) -> &'a str {
    n.and_then(|n| n.attribute("Algorithm")).unwrap_or_default()
}

fn check_signature_method(method: &str) -> Result<SignatureAlgorithm, String> {
    if let Some(a) = SignatureAlgorithm::from_uri(method) {
        return Ok(a);
    }
    let why = if method.ends_with("sha1") || method.contains("sha1-") {
        "SHA-1 is not accepted"
    } else if method.contains("rsa-sha") {
        "RSA PKCS#1 v1.5 signatures are not accepted (eIDAS)"
    } else {
        "not on the accepted list (ECDSA or RSASSA-PSS with SHA-256/384/512)"
    };
    Err(format!("signature algorithm {method:?}: {why}"))
}

/// The children of `ds:SignatureMethod`: none for ECDSA; for RSASSA-PSS at most one
/// `pss:RSAPSSParams`, and every parameter it states must be what the method implies (the
/// verifier applies the method's own parameters, so a differing statement is a forgery hint
/// or an interoperability bug either way).
fn check_method_parameters(n: Node<'_, '_>, method: SignatureAlgorithm) -> Result<(), String> {
    let elements: Vec<Node> = n.children().filter(|c| c.is_element()).collect();
    let params = match elements.as_slice() {
        [] => return Ok(()),
        [p] if method.is_pss() && p.has_tag_name((PSS_NS, "RSAPSSParams")) => *p,
        _ => return Err(format!("unexpected parameters for signature method {:?}", method.uri())),
    };
    let differ = |what: &str, v: &str| {
        Err(format!("RSASSA-PSS parameter {what} {v:?} differs from the method {:?}", method.uri()))
    };
    for p in params.children().filter(|c| c.is_element()) {
        match (p.tag_name().namespace(), p.tag_name().name()) {
            (Some(DSIG_NS), "DigestMethod") => {
                if algorithm(Some(p)) != method.hash_uri() {
                    return differ("DigestMethod", algorithm(Some(p)));
                }
            }
            (Some(PSS_NS), "MaskGenerationFunction") => {
                if p.attribute("Algorithm").is_some_and(|a| a != MGF1) {
                    return differ("MaskGenerationFunction", algorithm(Some(p)));
                }
                let inner: Vec<Node> = p.children().filter(|c| c.is_element()).collect();
                match inner.as_slice() {
                    [] => {}
                    [d] if d.has_tag_name((DSIG_NS, "DigestMethod"))
                        && algorithm(Some(*d)) == method.hash_uri() => {}
                    [d] => return differ("MGF1 digest", algorithm(Some(*d))),
                    _ => return differ("MaskGenerationFunction", "(several children)"),
                }
            }
            (Some(PSS_NS), "SaltLength") => {
                let v = p.text().unwrap_or_default().trim();
                if v.parse::<usize>().ok() != Some(method.hash_len()) {
                    return differ("SaltLength", v);
                }
            }
            (Some(PSS_NS), "TrailerField") => {
                let v = p.text().unwrap_or_default().trim();
                if v != "1" {
                    return differ("TrailerField", v);
                }
            }
            (_, other) => return differ("element", other),
        }
    }
    Ok(())
}

/// Verifies the signature of `xml`'s root element with one of the `trusted` keys (the
/// `KeyInfo` is ignored) and returns the verified root element: its canonical form without
/// the signature, exactly what the reference digested. The profile check runs first.
pub(crate) fn verify_root(
    what: &str,
    xml: &str,
    trusted: &TrustedSigners,
) -> Result<String, String> {
    let info = check_profile(what, xml)?;
    verify_checked(what, xml, &info, trusted)
}

/// [`verify_root`] without the profile check (the caller did it and passes its result).
pub(crate) fn verify_checked(
    what: &str,
    xml: &str,
    info: &SignatureInfo,
    trusted: &TrustedSigners,
) -> Result<String, String> {
    let fail = |e: &dyn std::fmt::Display| {
        format!("the {what} signature does not verify with the trusted certificate ({e})")
    };
    let doc = uppsala::parse(xml).map_err(|e| fail(&e))?;
    let result =
        bergshamra::dsig::verify::verify_document_with_source(&trusted.ctx, &doc, Some(xml))
            .map_err(|e| fail(&e))?;
    let references = match result {
        VerifyResult::Valid { references, .. } => references,
        VerifyResult::Invalid { reason } => return Err(fail(&reason)),
    };
    // The one reference must have resolved to the document element (the profile check saw
    // the same document, but the verifier's own ID resolution is what counts).
    let root = doc.document_element().ok_or_else(|| fail(&"no document element"))?;
    let covers_root =
        matches!(references.as_slice(), [r] if r.resolved_node == Some(root) && r.digest_verified);
    if !covers_root {
        return Err(format!("the signature does not cover the {what} element"));
    }
    // What the reference digested: the root's subtree without comments and without the
    // signature (enveloped), canonicalized as the transform says.
    let mut nodes = NodeSet::tree_without_comments(root, &doc);
    let sig = doc
        .children(root)
        .into_iter()
        .find(|&c| {
            doc.element(c).is_some_and(|e| {
                e.name.local_name.as_ref() == "Signature"
                    && e.name.namespace_uri.as_deref() == Some(DSIG_NS)
            })
        })
        .ok_or_else(|| fail(&"no signature element"))?;
    remove_subtree(&doc, sig, &mut nodes);
    let mode = if info.exclusive { C14nMode::Exclusive } else { C14nMode::Inclusive };
    let bytes = bergshamra::c14n::canonicalize_doc(
        &doc,
        mode,
        Some(&nodes),
        info.inclusive_prefixes.as_slice(),
    )
    .map_err(|e| fail(&e))?;
    let verified = String::from_utf8(bytes).map_err(|e| fail(&e))?;
    // The verified form must be the root element we checked (same name and ID).
    let original = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let vdoc = parse_verified(&verified)?;
    let (o, v) = (original.root_element(), vdoc.root_element());
    let same = o.tag_name() == v.tag_name() && o.attribute("ID") == v.attribute("ID");
    if !same {
        return Err(format!("the signature does not cover the {what} element"));
    }
    Ok(verified)
}

fn remove_subtree(doc: &uppsala::Document<'_>, id: uppsala::NodeId, nodes: &mut NodeSet) {
    nodes.remove_id(id);
    for child in doc.children(id) {
        remove_subtree(doc, child, nodes);
    }
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
    use samael::crypto::{Crypto, CryptoProvider as _};
    let signed =
        Crypto::sign_xml(xml, key_der).map_err(|e| SamlError::Signing(format!("xmlsec: {e}")))?;
    Ok(super::xml::strip_xml_declaration(&signed).to_string())
}
