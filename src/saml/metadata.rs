//! The node's (IdP) metadata, read into [`IdpTrust`], and the SP's own signed metadata.

use chrono::{DateTime, Duration, Utc};
use openssl::x509::X509;
use roxmltree::Node;

use super::dsig::{self, SignatureAlgorithm, DIGESTS};
use super::request::{BINDING_POST, BINDING_REDIRECT, PERSISTENT, TRANSIENT};
use super::xml::{
    all_text, children, escape, instant, parse_no_dtd, parse_verified, ALGSUPPORT_NS, DSIG_NS,
    EIDAS_NS, MD_NS, XENC11_NS,
};
use super::xmlenc::{AES256_GCM, ECDH_ES, KW_AES256, MGF1_SHA256, RSA_OAEP_11};
use super::{SamlError, ServiceProvider};

/// How long the SP metadata is valid (as CEF nodes do: one day).
const METADATA_VALIDITY_SECS: i64 = 86_400;

/// Trust in the node, from its SAML metadata (the configuration's file or URL).
///
/// Only the signing certificate(s) are trusted, and only for the node's entity ID: responses
/// must be signed by one of them. There is no PKI behind this (no chain or expiry checks): the
/// metadata is the trust anchor, so it must come from a trusted place.
#[derive(Clone, Debug)]
pub struct IdpTrust {
    /// The node's `entityID`: the `Issuer` of its responses and assertions.
    pub entity_id: String,
    /// `SingleSignOnService` location for the HTTP-Redirect binding.
    pub sso_redirect: Option<String>,
    /// `SingleSignOnService` location for the HTTP-POST binding.
    pub sso_post: Option<String>,
    /// `KeyDescriptor use="signing"` (or without `use`) certificates, DER.
    pub signing_certs_der: Vec<Vec<u8>>,
}

impl IdpTrust {
    /// Reads the node's metadata: an `md:EntityDescriptor` with an `md:IDPSSODescriptor`, or an
    /// `md:EntitiesDescriptor` holding exactly one such entity.
    ///
    /// Metadata without a signing certificate is refused (samael, for one, would then accept
    /// responses unverified). If the metadata is signed, the signature is verified against the
    /// certificate it names in its `KeyInfo` or a signing certificate of the node; a signed
    /// metadata whose signature does not verify is refused, and only what the signature covers
    /// is read. The eIDAS trust anchor that really signs node metadata is not modelled: that
    /// check proves integrity, not origin. `validUntil` is not enforced here.
    pub fn from_metadata(xml: &str) -> Result<Self, SamlError> {
        let meta = |m: String| SamlError::Metadata(m);
        let xml = xml.trim_start_matches('\u{feff}');
        // Comments are tolerated here (files get annotated); nothing is read from text that a
        // comment could split except certificates, whose text is taken whole.
        let doc = parse_no_dtd("metadata", xml).map_err(meta)?;
        let signed = doc.descendants().any(|n| n.has_tag_name((DSIG_NS, "Signature")));
        if !signed {
            return Self::from_document(doc.root_element());
        }
        let info = dsig::check_profile("metadata", xml).map_err(SamlError::MetadataSignature)?;
        // Candidates: the certificate(s) named in KeyInfo, then the node's own signing certs.
        let mut certs: Vec<Vec<u8>> = Vec::new();
        for b64 in &info.key_info_certs {
            certs.push(cert_der(b64).map_err(SamlError::MetadataSignature)?);
        }
        if let Ok(unverified) = Self::from_document(doc.root_element()) {
            certs.extend(unverified.signing_certs_der);
        }
        let signers =
            dsig::TrustedSigners::from_der(&certs).map_err(SamlError::MetadataSignature)?;
        let verified = dsig::verify_checked("metadata", xml, &info, &signers)
            .map_err(SamlError::MetadataSignature)?;
        let vdoc = parse_verified(&verified).map_err(SamlError::MetadataSignature)?;
        Self::from_document(vdoc.root_element())
    }

    fn from_document(root: Node<'_, '_>) -> Result<Self, SamlError> {
        let meta = |m: &str| SamlError::Metadata(m.to_string());
        let entity = if root.has_tag_name((MD_NS, "EntityDescriptor")) {
            root
        } else if root.has_tag_name((MD_NS, "EntitiesDescriptor")) {
            let idps: Vec<Node> = root
                .descendants()
                .filter(|n| n.has_tag_name((MD_NS, "EntityDescriptor")))
                .filter(|n| children(*n, MD_NS, "IDPSSODescriptor").next().is_some())
                .collect();
            match idps.as_slice() {
                [one] => *one,
                [] => return Err(meta("no EntityDescriptor with an IDPSSODescriptor")),
                _ => return Err(meta("more than one identity provider in the metadata")),
            }
        } else {
            return Err(meta("the document is not SAML metadata (md:EntityDescriptor)"));
        };
        let entity_id = entity
            .attribute("entityID")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| meta("EntityDescriptor has no entityID"))?
            .to_string();
        let idp = children(entity, MD_NS, "IDPSSODescriptor")
            .find(|n| {
                n.attribute("protocolSupportEnumeration")
                    .is_some_and(|p| p.split_whitespace().any(|p| p == super::xml::SAMLP_NS))
            })
            .ok_or_else(|| meta("no IDPSSODescriptor for SAML 2.0"))?;
        let mut signing_certs_der = Vec::new();
        for kd in children(idp, MD_NS, "KeyDescriptor") {
            if !matches!(kd.attribute("use"), None | Some("signing")) {
                continue;
            }
            for c in kd.descendants().filter(|n| n.has_tag_name((DSIG_NS, "X509Certificate"))) {
                let der = cert_der(&all_text(c)).map_err(SamlError::Metadata)?;
                if !signing_certs_der.contains(&der) {
                    signing_certs_der.push(der);
                }
            }
        }
        if signing_certs_der.is_empty() {
            return Err(SamlError::NoSigningCertificate);
        }
        let sso = |binding: &str| {
            children(idp, MD_NS, "SingleSignOnService")
                .find(|n| n.attribute("Binding") == Some(binding))
                .and_then(|n| n.attribute("Location"))
                .map(|l| l.trim().to_string())
        };
        Ok(IdpTrust {
            entity_id,
            sso_redirect: sso(BINDING_REDIRECT),
            sso_post: sso(BINDING_POST),
            signing_certs_der,
        })
    }
}

/// A certificate from base64 DER (as in `ds:X509Certificate`), checked to parse.
fn cert_der(b64: &str) -> Result<Vec<u8>, String> {
    let der = super::xml::decode_b64(b64).map_err(|_| "a certificate is not base64".to_string())?;
    X509::from_der(&der).map_err(|e| format!("invalid certificate: {e}"))?;
    Ok(der)
}

/// The SP's metadata, signed. See [`ServiceProvider::metadata_xml`].
pub(crate) fn sp_metadata(sp: &ServiceProvider, now: DateTime<Utc>) -> Result<String, SamlError> {
    let id = super::request::new_request_id();
    let valid_until = instant(now + Duration::seconds(METADATA_VALIDITY_SECS));
    let sp_type = if sp.sp_type_in_request {
        String::new()
    } else {
        format!("<eidas:SPType xmlns:eidas=\"{EIDAS_NS}\">public</eidas:SPType>")
    };
    let algs: String = DIGESTS
        .iter()
        .map(|d| format!("<alg:DigestMethod xmlns:alg=\"{ALGSUPPORT_NS}\" Algorithm=\"{d}\"/>"))
        .chain(SignatureAlgorithm::ALL.iter().map(|a| {
            format!("<alg:SigningMethod xmlns:alg=\"{ALGSUPPORT_NS}\" Algorithm=\"{}\"/>", a.uri())
        }))
        .collect();
    let key_info = |b64: &str| {
        format!(
            "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate>\
             </ds:X509Data></ds:KeyInfo>"
        )
    };
    let xml = format!(
        "<md:EntityDescriptor xmlns:md=\"{MD_NS}\" xmlns:ds=\"{DSIG_NS}\" ID=\"{id}\" \
         entityID=\"{entity}\" validUntil=\"{valid_until}\">{sig}\
         <md:Extensions>{sp_type}{algs}</md:Extensions>\
         <md:SPSSODescriptor AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\" \
         protocolSupportEnumeration=\"{samlp}\">\
         <md:KeyDescriptor use=\"signing\">{signing}</md:KeyDescriptor>\
         <md:KeyDescriptor use=\"encryption\">{encryption}\
         <md:EncryptionMethod Algorithm=\"{AES256_GCM}\"/>\
         <md:EncryptionMethod Algorithm=\"{RSA_OAEP_11}\">\
         <ds:DigestMethod Algorithm=\"{sha256}\"/>\
         <xenc11:MGF xmlns:xenc11=\"{XENC11_NS}\" Algorithm=\"{MGF1_SHA256}\"/>\
         </md:EncryptionMethod></md:KeyDescriptor>\
         <md:KeyDescriptor use=\"encryption\">{ec_encryption}\
         <md:EncryptionMethod Algorithm=\"{AES256_GCM}\"/>\
         <md:EncryptionMethod Algorithm=\"{ECDH_ES}\"/>\
         <md:EncryptionMethod Algorithm=\"{KW_AES256}\"/></md:KeyDescriptor>\
         <md:NameIDFormat>{PERSISTENT}</md:NameIDFormat>\
         <md:NameIDFormat>{TRANSIENT}</md:NameIDFormat>\
         <md:AssertionConsumerService Binding=\"{BINDING_POST}\" Location=\"{acs}\" index=\"0\" \
         isDefault=\"true\"/></md:SPSSODescriptor></md:EntityDescriptor>",
        entity = escape(&sp.entity_id),
        sig = dsig::signature_template(&id, &sp.keys.signing_cert_b64),
        samlp = super::xml::SAMLP_NS,
        signing = key_info(&sp.keys.signing_cert_b64),
        encryption = key_info(&sp.keys.encryption_cert_b64),
        ec_encryption = key_info(&sp.keys.ec_encryption_cert_b64),
        sha256 = dsig::SHA256,
        acs = escape(&sp.acs_url),
    );
    dsig::sign(&xml, &sp.keys.signing_key_der)
}
