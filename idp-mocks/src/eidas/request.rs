//! AuthnRequests: decoding the two bindings and reading the (verified) XML.

use std::io::Read as _;

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::citizens::Loa;

pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const EIDAS_NS: &str = "http://eidas.europa.eu/saml-extensions";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// Largest accepted (inflated) AuthnRequest.
const MAX_REQUEST_BYTES: u64 = 256 * 1024;

/// How an AuthnRequest reached the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `GET /sso` with a deflated `SAMLRequest` and `SigAlg`/`Signature` query parameters.
    Redirect,
    /// `POST /sso` with a base64 `SAMLRequest` carrying an enveloped XML signature.
    Post,
    /// Given to [`MockEidasNode::respond`](super::MockEidasNode::respond) as XML: not verified.
    Direct,
}

/// One `eidas:RequestedAttribute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedAttribute {
    pub name: String,
    pub name_format: Option<String>,
    pub friendly_name: Option<String>,
    pub is_required: bool,
}

/// An AuthnRequest the node accepted (signature verified, except for [`Binding::Direct`]).
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// The request's `ID` (the response's `InResponseTo`).
    pub id: String,
    pub binding: Binding,
    /// `saml2:Issuer`: the SP entity ID (the assertion's `Audience`).
    pub issuer: String,
    pub issue_instant: String,
    pub destination: Option<String>,
    /// `AssertionConsumerServiceURL` as in the request.
    pub acs_url_in_request: Option<String>,
    /// Where the response goes: the request's ACS URL, else the SP metadata's HTTP-POST ACS.
    pub acs_url: String,
    pub protocol_binding: Option<String>,
    pub provider_name: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    /// `NameIDPolicy/@Format`.
    pub name_id_format: Option<String>,
    /// `RequestedAuthnContext/@Comparison` (`exact` when absent).
    pub comparison: String,
    /// `RequestedAuthnContext/AuthnContextClassRef` values, as sent.
    pub authn_context_class_refs: Vec<String>,
    /// `eidas:SPType` (`public`/`private`), if in the request.
    pub sp_type: Option<String>,
    pub requested_attributes: Vec<RequestedAttribute>,
    pub relay_state: Option<String>,
    /// The `country` parameter sent beside `SAMLRequest`.
    pub country: Option<String>,
    /// Signature algorithm URI (`SigAlg` or `ds:SignatureMethod`); empty for [`Binding::Direct`].
    pub signature_algorithm: String,
    /// The request XML: for signed bindings only what the signature covers (exclusive c14n).
    pub xml: String,
}

impl ReceivedRequest {
    /// The eIDAS levels named in `RequestedAuthnContext`.
    pub fn requested_levels(&self) -> Vec<Loa> {
        self.authn_context_class_refs.iter().filter_map(|u| Loa::from_uri(u)).collect()
    }

    /// The lowest level the request accepts (for `minimum`/`exact`: the lowest one named).
    pub fn minimum_level(&self) -> Option<Loa> {
        let levels = self.requested_levels();
        let lowest = levels.iter().copied().min()?;
        match self.comparison.as_str() {
            "better" => Loa::ALL.into_iter().find(|l| *l > lowest),
            _ => Some(lowest),
        }
    }

    /// Whether an authentication at `level` satisfies the requested authentication context.
    pub fn accepts_level(&self, level: Loa) -> bool {
        let levels = self.requested_levels();
        if levels.is_empty() {
            return true;
        }
        let lowest = levels.iter().copied().min().unwrap_or(Loa::Low);
        let highest = levels.iter().copied().max().unwrap_or(Loa::High);
        match self.comparison.as_str() {
            "minimum" => level >= lowest,
            "better" => level > lowest,
            "maximum" => level <= highest,
            _ => levels.contains(&level),
        }
    }
}

/// Inflates a HTTP-Redirect `SAMLRequest` (base64 of raw DEFLATE).
pub fn inflate_redirect(saml_request: &str) -> anyhow::Result<String> {
    let raw = decode_b64(saml_request).context("SAMLRequest is not base64")?;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut out)
        .context("SAMLRequest is not DEFLATE-compressed")?;
    if out.len() as u64 > MAX_REQUEST_BYTES {
        bail!("SAMLRequest is too large");
    }
    String::from_utf8(out).context("SAMLRequest is not UTF-8")
}

/// Decodes a HTTP-POST `SAMLRequest` (base64, line breaks allowed).
pub fn decode_post(saml_request: &str) -> anyhow::Result<String> {
    let raw = decode_b64(saml_request).context("SAMLRequest is not base64")?;
    if raw.len() as u64 > MAX_REQUEST_BYTES {
        bail!("SAMLRequest is too large");
    }
    String::from_utf8(raw).context("SAMLRequest is not UTF-8")
}

/// Standard base64, ignoring whitespace; a space stands for a `+` that was not URL-encoded.
pub fn decode_b64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let cleaned: String = s
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('+'),
            '\r' | '\n' | '\t' => None,
            c => Some(c),
        })
        .collect();
    STANDARD.decode(cleaned)
}

/// Reads an AuthnRequest. `xml` must be what was verified (or a trusted test document).
pub fn parse_authn_request(xml: &str) -> anyhow::Result<ParsedRequest> {
    if xml.contains("<!DOCTYPE") {
        bail!("document type declarations are not allowed");
    }
    let doc = roxmltree::Document::parse(xml).context("the request is not well-formed XML")?;
    let root = doc.root_element();
    if !root.has_tag_name((SAMLP_NS, "AuthnRequest")) {
        bail!("the message is not a samlp:AuthnRequest");
    }
    let attr = |n: &str| root.attribute(n).map(str::to_string);
    let id = attr("ID").filter(|s| !s.is_empty()).context("the request has no ID")?;
    if root.attribute("Version") != Some("2.0") {
        bail!("the request's Version is not 2.0");
    }
    let issue_instant = attr("IssueInstant").context("the request has no IssueInstant")?;
    let child = |ns: &str, name: &str| root.children().find(|n| n.has_tag_name((ns, name)));
    let issuer = child(SAML_NS, "Issuer")
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .context("the request has no Issuer")?;
    if let Some(f) = child(SAML_NS, "Issuer").and_then(|n| n.attribute("Format")) {
        if f != "urn:oasis:names:tc:SAML:2.0:nameid-format:entity" {
            bail!("the request's Issuer Format is {f:?}, not …:nameid-format:entity");
        }
    }
    let mut sp_type = None;
    let mut requested_attributes = Vec::new();
    if let Some(ext) = child(SAMLP_NS, "Extensions") {
        for n in ext.descendants().filter(|n| n.is_element()) {
            if n.has_tag_name((EIDAS_NS, "SPType")) {
                sp_type = n.text().map(|t| t.trim().to_string());
            } else if n.has_tag_name((EIDAS_NS, "RequestedAttribute")) {
                requested_attributes.push(RequestedAttribute {
                    name: n.attribute("Name").unwrap_or_default().to_string(),
                    name_format: n.attribute("NameFormat").map(str::to_string),
                    friendly_name: n.attribute("FriendlyName").map(str::to_string),
                    is_required: matches!(n.attribute("isRequired"), Some("true") | Some("1")),
                });
            }
        }
    }
    let name_id_format =
        child(SAMLP_NS, "NameIDPolicy").and_then(|n| n.attribute("Format")).map(str::to_string);
    let (comparison, refs) = match child(SAMLP_NS, "RequestedAuthnContext") {
        Some(rac) => (
            rac.attribute("Comparison").unwrap_or("exact").to_string(),
            rac.children()
                .filter(|n| n.has_tag_name((SAML_NS, "AuthnContextClassRef")))
                .filter_map(|n| n.text())
                .map(|t| t.trim().to_string())
                .collect(),
        ),
        None => ("exact".to_string(), Vec::new()),
    };
    let flag = |n: &str| matches!(root.attribute(n), Some("true") | Some("1"));
    Ok(ParsedRequest {
        id,
        issuer,
        issue_instant,
        destination: attr("Destination"),
        acs_url: attr("AssertionConsumerServiceURL"),
        protocol_binding: attr("ProtocolBinding"),
        provider_name: attr("ProviderName"),
        force_authn: flag("ForceAuthn"),
        is_passive: flag("IsPassive"),
        name_id_format,
        comparison,
        authn_context_class_refs: refs,
        sp_type,
        requested_attributes,
    })
}

/// The fields of an AuthnRequest, before the node decides where the response goes.
#[derive(Clone, Debug)]
pub struct ParsedRequest {
    pub id: String,
    pub issuer: String,
    pub issue_instant: String,
    pub destination: Option<String>,
    pub acs_url: Option<String>,
    pub protocol_binding: Option<String>,
    pub provider_name: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    pub name_id_format: Option<String>,
    pub comparison: String,
    pub authn_context_class_refs: Vec<String>,
    pub sp_type: Option<String>,
    pub requested_attributes: Vec<RequestedAttribute>,
}

/// From a raw query string, the signed octets of the HTTP-Redirect binding
/// (`SAMLRequest=…[&RelayState=…]&SigAlg=…`, each value exactly as received).
pub fn redirect_signed_octets(raw_query: &str) -> anyhow::Result<String> {
    let mut parts: [Option<&str>; 3] = [None, None, None];
    for piece in raw_query.split('&') {
        let name = piece.split('=').next().unwrap_or_default();
        let idx = match name {
            "SAMLRequest" => 0,
            "RelayState" => 1,
            "SigAlg" => 2,
            _ => continue,
        };
        if parts[idx].replace(piece).is_some() {
            bail!("the query repeats {name}");
        }
    }
    let [Some(req), relay, Some(alg)] = parts else {
        bail!("the query has no SAMLRequest or SigAlg");
    };
    Ok(match relay {
        Some(r) => format!("{req}&{r}&{alg}"),
        None => format!("{req}&{alg}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_octets_keep_the_received_encoding_and_order() {
        let q = "country=NL&SAMLRequest=a%2Bb&RelayState=r%20s&SigAlg=x%3Ay&Signature=zz";
        assert_eq!(
            redirect_signed_octets(q).unwrap(),
            "SAMLRequest=a%2Bb&RelayState=r%20s&SigAlg=x%3Ay"
        );
        assert_eq!(
            redirect_signed_octets("SigAlg=x&SAMLRequest=a").unwrap(),
            "SAMLRequest=a&SigAlg=x"
        );
        assert!(redirect_signed_octets("SAMLRequest=a").is_err());
        assert!(redirect_signed_octets("SAMLRequest=a&SAMLRequest=b&SigAlg=x").is_err());
    }

    fn req(comparison: &str, levels: &[Loa]) -> ReceivedRequest {
        ReceivedRequest {
            id: "_1".into(),
            binding: Binding::Direct,
            issuer: "sp".into(),
            issue_instant: String::new(),
            destination: None,
            acs_url_in_request: None,
            acs_url: "acs".into(),
            protocol_binding: None,
            provider_name: None,
            force_authn: false,
            is_passive: false,
            name_id_format: None,
            comparison: comparison.into(),
            authn_context_class_refs: levels.iter().map(|l| l.uri().to_string()).collect(),
            sp_type: None,
            requested_attributes: Vec::new(),
            relay_state: None,
            country: None,
            signature_algorithm: String::new(),
            xml: String::new(),
        }
    }

    #[test]
    fn level_comparisons() {
        let min = req("minimum", &[Loa::Substantial]);
        assert!(!min.accepts_level(Loa::Low));
        assert!(min.accepts_level(Loa::Substantial) && min.accepts_level(Loa::High));
        let exact = req("exact", &[Loa::Substantial, Loa::High]);
        assert!(!exact.accepts_level(Loa::Low) && exact.accepts_level(Loa::High));
        assert_eq!(exact.minimum_level(), Some(Loa::Substantial));
        let better = req("better", &[Loa::Low]);
        assert!(!better.accepts_level(Loa::Low) && better.accepts_level(Loa::Substantial));
        assert_eq!(better.minimum_level(), Some(Loa::Substantial));
        let max = req("maximum", &[Loa::Substantial]);
        assert!(max.accepts_level(Loa::Low) && !max.accepts_level(Loa::High));
    }
}
