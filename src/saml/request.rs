//! AuthnRequests for the HTTP-Redirect and HTTP-POST bindings.

use std::io::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::sign::Signer;

use super::dsig::{self, ECDSA_SHA256};
use super::xml::{escape, instant, EIDAS_NS, SAMLP_NS, SAML_NS};
use super::{SamlError, ServiceProvider};
use crate::assurance::AssuranceLevel;

pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const ENTITY_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
pub const ATTR_NAME_FORMAT_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
/// Prefix of the eIDAS natural-person attribute names.
pub const NATURAL_PERSON_PREFIX: &str = "http://eidas.europa.eu/attributes/naturalperson/";

/// The natural-person minimum data set: (attribute name, FriendlyName).
pub const REQUESTED_ATTRIBUTES: [(&str, &str); 4] = [
    ("PersonIdentifier", "PersonIdentifier"),
    ("CurrentFamilyName", "FamilyName"),
    ("CurrentGivenName", "FirstName"),
    ("DateOfBirth", "DateOfBirth"),
];

/// The SAML binding spec limits RelayState to 80 bytes.
const MAX_RELAY_STATE: usize = 80;

/// What to ask the node for.
#[derive(Clone, Debug)]
pub struct AuthnRequestSpec {
    /// The request `ID`: 128 random bits, from [`new_request_id`]. The caller keeps it to pass
    /// to [`ServiceProvider::validate_response`].
    pub id: String,
    /// Sent as `RequestedAuthnContext Comparison="minimum"`. The node may still answer with a
    /// lower level: the caller checks [`ValidatedAssertion::level`](super::ValidatedAssertion).
    pub min_level: AssuranceLevel,
    pub force_authn: bool,
    /// ISO 3166-1 alpha-2 code of the citizen's country (`EL` for Greece, as eIDAS does), sent
    /// beside `SAMLRequest` as `country`, as the CEF eIDAS-Node connector expects.
    pub country: String,
}

/// A fresh request ID: `_` and 32 hex digits (128 random bits; an XML NCName).
pub fn new_request_id() -> String {
    let mut b = [0u8; 16];
    if openssl::rand::rand_bytes(&mut b).is_err() {
        b = rand::random();
    }
    format!("_{}", hex::encode(b))
}

impl AuthnRequestSpec {
    fn check(&self) -> Result<(), SamlError> {
        let bad = |m: String| Err(SamlError::InvalidParameter(m));
        let id = self.id.as_str();
        let ncname = id.chars().next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ncname || !(16..=128).contains(&id.len()) {
            return bad(format!("request ID {id:?} is not a random XML ID (see new_request_id)"));
        }
        let c = self.country.as_str();
        if c.len() != 2 || !c.chars().all(|c| c.is_ascii_uppercase()) {
            return bad(format!("country {c:?} is not an ISO 3166-1 alpha-2 code"));
        }
        Ok(())
    }
}

impl ServiceProvider {
    /// The AuthnRequest XML for `destination`; `signature` (a template or nothing) goes after
    /// the Issuer, where the schema wants it.
    pub(crate) fn authn_request_xml(
        &self,
        req: &AuthnRequestSpec,
        destination: &str,
        signature: &str,
        now: DateTime<Utc>,
    ) -> String {
        let sp_type =
            if self.sp_type_in_request { "<eidas:SPType>public</eidas:SPType>" } else { "" };
        let attributes: String = REQUESTED_ATTRIBUTES
            .iter()
            .map(|(name, friendly)| {
                format!(
                    "<eidas:RequestedAttribute FriendlyName=\"{friendly}\" \
                     Name=\"{NATURAL_PERSON_PREFIX}{name}\" \
                     NameFormat=\"{ATTR_NAME_FORMAT_URI}\" isRequired=\"true\"/>"
                )
            })
            .collect();
        format!(
            "<saml2p:AuthnRequest xmlns:saml2p=\"{SAMLP_NS}\" xmlns:saml2=\"{SAML_NS}\" \
             xmlns:eidas=\"{EIDAS_NS}\" AssertionConsumerServiceURL=\"{acs}\" \
             Destination=\"{dest}\" ForceAuthn=\"{force}\" ID=\"{id}\" IsPassive=\"false\" \
             IssueInstant=\"{now}\" ProtocolBinding=\"{BINDING_POST}\" Version=\"2.0\">\
             <saml2:Issuer Format=\"{ENTITY_FORMAT}\">{issuer}</saml2:Issuer>{signature}\
             <saml2p:Extensions>{sp_type}<eidas:RequestedAttributes>{attributes}\
             </eidas:RequestedAttributes></saml2p:Extensions>\
             <saml2p:NameIDPolicy AllowCreate=\"true\" Format=\"{PERSISTENT}\"/>\
             <saml2p:RequestedAuthnContext Comparison=\"minimum\">\
             <saml2:AuthnContextClassRef>{level}</saml2:AuthnContextClassRef>\
             </saml2p:RequestedAuthnContext></saml2p:AuthnRequest>",
            acs = escape(&self.acs_url),
            dest = escape(destination),
            force = req.force_authn,
            id = escape(&req.id),
            now = instant(now),
            issuer = escape(&self.entity_id),
            level = req.min_level.uri(),
        )
    }

    /// A signed AuthnRequest for the HTTP-Redirect binding: the full URL of the node's
    /// Redirect SSO endpoint with `SAMLRequest` (raw DEFLATE, base64), `RelayState` (omitted
    /// when empty; at most 80 bytes), `SigAlg` (ecdsa-sha256) and `Signature` (DER ECDSA over
    /// the query string), then `country` (not signed, as the CEF connector does).
    pub fn redirect_request_at(
        &self,
        req: &AuthnRequestSpec,
        relay_state: &str,
        now: DateTime<Utc>,
    ) -> Result<String, SamlError> {
        req.check()?;
        if relay_state.len() > MAX_RELAY_STATE {
            return Err(SamlError::InvalidParameter(format!(
                "RelayState is longer than {MAX_RELAY_STATE} bytes"
            )));
        }
        let endpoint = self.idp.sso_redirect.as_deref().ok_or(SamlError::NoEndpoint("Redirect"))?;
        let xml = self.authn_request_xml(req, endpoint, "", now);
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(xml.as_bytes()).map_err(|e| SamlError::Signing(format!("deflate: {e}")))?;
        let deflated = enc.finish().map_err(|e| SamlError::Signing(format!("deflate: {e}")))?;
        // The signed octets are the query parameters exactly as sent (SAML bindings §3.4.4.1).
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("SAMLRequest", &STANDARD.encode(deflated));
        if !relay_state.is_empty() {
            q.append_pair("RelayState", relay_state);
        }
        q.append_pair("SigAlg", ECDSA_SHA256);
        let signed = q.finish();
        // DER-encoded ECDSA, what Java/OpenSAML nodes produce and verify on this binding.
        let signature = (|| {
            let mut signer = Signer::new(MessageDigest::sha256(), &self.keys.signing_key)?;
            signer.update(signed.as_bytes())?;
            signer.sign_to_vec()
        })()
        .map_err(|e| SamlError::Signing(format!("redirect signature: {e}")))?;
        let mut tail = url::form_urlencoded::Serializer::new(String::new());
        tail.append_pair("Signature", &STANDARD.encode(signature));
        tail.append_pair("country", &req.country);
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        Ok(format!("{endpoint}{sep}{signed}&{}", tail.finish()))
    }

    /// A signed AuthnRequest for the HTTP-POST binding: (the node's POST SSO URL, the base64
    /// `SAMLRequest` with an enveloped signature). The caller renders the auto-submitting form
    /// with `SAMLRequest`, `RelayState` and `country` (= `req.country`).
    pub fn post_request_at(
        &self,
        req: &AuthnRequestSpec,
        now: DateTime<Utc>,
    ) -> Result<(String, String), SamlError> {
        req.check()?;
        let endpoint = self.idp.sso_post.as_deref().ok_or(SamlError::NoEndpoint("POST"))?;
        let template = dsig::signature_template(&req.id, &self.keys.signing_cert_b64);
        let xml = self.authn_request_xml(req, endpoint, &template, now);
        let signed = dsig::sign(&xml, &self.keys.signing_key_der)?;
        Ok((endpoint.to_string(), STANDARD.encode(signed)))
    }
}
