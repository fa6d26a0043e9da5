//! The node's signed IdP metadata, and reading the SP's metadata.

use anyhow::{bail, Context as _};
use chrono::{DateTime, Duration, Utc};
use openssl::x509::X509;

use super::crypto::{
    new_id, parse_cert, sign_document, signature_template, SigningKey, DSIG_NS, SHA256_DIGEST,
};
use super::request::{BINDING_POST, BINDING_REDIRECT, SAML_NS};
use super::response::{ATTR_PREFIX, NAME_FORMAT_URI, PERSISTENT, TRANSIENT, UNSPECIFIED};
use super::xml::{escape, instant};

pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub const MDATTR_NS: &str = "urn:oasis:names:tc:SAML:metadata:attribute";
pub const ALG_NS: &str = "urn:oasis:names:tc:SAML:metadata:algsupport";
pub const PROTOCOL_VERSION_ATTR: &str = "http://eidas.europa.eu/entity-attributes/protocol-version";
pub const APPLICATION_ID_ATTR: &str =
    "http://eidas.europa.eu/entity-attributes/application-identifier";
/// How long the metadata is valid (CEF default: one day).
pub const METADATA_VALIDITY_SECS: i64 = 86_400;

/// The node's metadata, signed (enveloped, the key's method, SHA-256 digest, exclusive c14n).
pub fn signed_node_metadata(
    entity_id: &str,
    sso_url: &str,
    key: &SigningKey,
    other_key: Option<&SigningKey>,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let key_descriptor = |k: &SigningKey| {
        format!(
            "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo xmlns:ds=\"{DSIG_NS}\"><ds:X509Data>\
             <ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
             </md:KeyDescriptor>",
            k.cert_b64
        )
    };
    let key_descriptors: String =
        std::iter::once(key).chain(other_key).map(key_descriptor).collect();
    let id = new_id();
    let valid_until = instant(now + Duration::seconds(METADATA_VALIDITY_SECS));
    let attribute = |name: &str, value: &str| {
        format!(
            "<saml2:Attribute Name=\"{name}\" NameFormat=\"{NAME_FORMAT_URI}\">\
             <saml2:AttributeValue>{value}</saml2:AttributeValue></saml2:Attribute>"
        )
    };
    let supported = [
        ("PersonIdentifier", "PersonIdentifier"),
        ("CurrentFamilyName", "FamilyName"),
        ("CurrentGivenName", "FirstName"),
        ("DateOfBirth", "DateOfBirth"),
    ]
    .iter()
    .map(|(n, f)| {
        format!(
            "<saml2:Attribute FriendlyName=\"{f}\" Name=\"{ATTR_PREFIX}{n}\" \
             NameFormat=\"{NAME_FORMAT_URI}\"/>"
        )
    })
    .collect::<String>();
    let xml = format!(
        "<md:EntityDescriptor xmlns:md=\"{MD_NS}\" xmlns:saml2=\"{SAML_NS}\" ID=\"{id}\" \
         entityID=\"{entity}\" validUntil=\"{valid_until}\">{sig}\
         <md:Extensions><mdattr:EntityAttributes xmlns:mdattr=\"{MDATTR_NS}\">{pv}{app}\
         </mdattr:EntityAttributes>\
         <alg:DigestMethod xmlns:alg=\"{ALG_NS}\" Algorithm=\"{SHA256_DIGEST}\"/>\
         <alg:SigningMethod xmlns:alg=\"{ALG_NS}\" Algorithm=\"{method}\"/>\
         </md:Extensions>\
         <md:IDPSSODescriptor WantAuthnRequestsSigned=\"true\" \
         protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
         {key_descriptors}\
         <md:NameIDFormat>{PERSISTENT}</md:NameIDFormat>\
         <md:NameIDFormat>{TRANSIENT}</md:NameIDFormat>\
         <md:NameIDFormat>{UNSPECIFIED}</md:NameIDFormat>\
         <md:SingleSignOnService Binding=\"{BINDING_POST}\" Location=\"{sso}\"/>\
         <md:SingleSignOnService Binding=\"{BINDING_REDIRECT}\" Location=\"{sso}\"/>\
         {supported}</md:IDPSSODescriptor>\
         <md:Organization><md:OrganizationName xml:lang=\"en\">Mock eIDAS node</md:OrganizationName>\
         <md:OrganizationDisplayName xml:lang=\"en\">Mock eIDAS node (test only)\
         </md:OrganizationDisplayName><md:OrganizationURL xml:lang=\"en\">{base}</md:OrganizationURL>\
         </md:Organization></md:EntityDescriptor>",
        sig = signature_template(&id, key, None),
        method = key.kind.method_uri(),
        entity = escape(entity_id),
        pv = attribute(PROTOCOL_VERSION_ATTR, "1.2"),
        app = attribute(APPLICATION_ID_ATTR, "idp-mocks:mock-eidas-node:0.1"),
        sso = escape(sso_url),
        base = escape(sso_url.trim_end_matches("/sso")),
    );
    sign_document(&xml, key)
}

/// What the node needs from the SP's metadata.
#[derive(Clone, Debug, Default)]
pub struct SpMetadata {
    pub entity_id: String,
    /// `KeyDescriptor use="signing"` (or without `use`).
    pub signing_certs: Vec<X509>,
    /// `KeyDescriptor use="encryption"` (or without `use`).
    pub encryption_certs: Vec<X509>,
    /// HTTP-POST `AssertionConsumerService` locations, the default (`isDefault="true"`, else
    /// lowest index, else first) first.
    pub acs_urls: Vec<String>,
}

/// Reads an SP's metadata (`EntityDescriptor`, or the first one with an `SPSSODescriptor` in an
/// `EntitiesDescriptor`). The metadata's own signature is not checked.
pub fn parse_sp_metadata(xml: &str) -> anyhow::Result<SpMetadata> {
    if xml.contains("<!DOCTYPE") {
        bail!("document type declarations are not allowed");
    }
    let doc = roxmltree::Document::parse(xml).context("SP metadata is not well-formed XML")?;
    let sp = doc
        .descendants()
        .find(|n| n.has_tag_name((MD_NS, "SPSSODescriptor")))
        .context("SP metadata has no SPSSODescriptor")?;
    let entity = sp
        .parent_element()
        .filter(|p| p.has_tag_name((MD_NS, "EntityDescriptor")))
        .context("SPSSODescriptor outside an EntityDescriptor")?;
    let mut md = SpMetadata {
        entity_id: entity.attribute("entityID").unwrap_or_default().to_string(),
        ..SpMetadata::default()
    };
    for kd in sp.children().filter(|n| n.has_tag_name((MD_NS, "KeyDescriptor"))) {
        let certs: Vec<X509> = kd
            .descendants()
            .filter(|n| n.has_tag_name((DSIG_NS, "X509Certificate")))
            .filter_map(|n| n.text())
            .filter_map(|t| parse_cert(t).ok())
            .collect();
        match kd.attribute("use") {
            Some("signing") => md.signing_certs.extend(certs),
            Some("encryption") => md.encryption_certs.extend(certs),
            _ => {
                md.signing_certs.extend(certs.iter().cloned());
                md.encryption_certs.extend(certs);
            }
        }
    }
    let mut acs: Vec<(bool, u32, usize, String)> = sp
        .children()
        .filter(|n| n.has_tag_name((MD_NS, "AssertionConsumerService")))
        .filter(|n| n.attribute("Binding") == Some(BINDING_POST))
        .enumerate()
        .filter_map(|(i, n)| {
            Some((
                n.attribute("isDefault") != Some("true"),
                n.attribute("index").and_then(|x| x.parse().ok()).unwrap_or(u32::MAX),
                i,
                n.attribute("Location")?.to_string(),
            ))
        })
        .collect();
    acs.sort();
    md.acs_urls = acs.into_iter().map(|a| a.3).collect();
    Ok(md)
}
