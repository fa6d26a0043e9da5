//! XML helpers: escaping, instants, and the reading of untrusted documents with roxmltree.

use chrono::{DateTime, Utc};
use roxmltree::{Document, Node, NodeType};

pub(crate) const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub(crate) const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
pub(crate) const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
pub(crate) const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
pub(crate) const EIDAS_NS: &str = "http://eidas.europa.eu/saml-extensions";
pub(crate) const NATURAL_PERSON_NS: &str = "http://eidas.europa.eu/attributes/naturalperson";
pub(crate) const ALGSUPPORT_NS: &str = "urn:oasis:names:tc:SAML:metadata:algsupport";

/// Escapes text for element content and double-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An `xsd:dateTime` in UTC with milliseconds, as SAML wants it (`2026-11-24T10:00:00.123Z`).
pub(crate) fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reads a SAML `xsd:dateTime`. SAML requires an explicit time zone (normally `Z`), so a local
/// time without offset is refused rather than guessed.
pub(crate) fn parse_instant(what: &str, s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{what} {s:?} is not a dateTime with a time zone"))
}

/// The document without a leading `<?xml …?>` declaration (xmlsec's output has one).
pub(crate) fn strip_xml_declaration(xml: &str) -> &str {
    let t = xml.trim();
    if t.starts_with("<?xml") {
        if let Some(end) = t.find("?>") {
            return t[end + 2..].trim();
        }
    }
    t
}

/// Parses a document that came from outside, refusing document type declarations (XXE,
/// entity expansion; SAML never needs a DTD) and an encoding declaration other than UTF-8
/// (libxml2 would honour it and roxmltree would not: a parser differential). Both are refused
/// before any parser sees the text.
pub(crate) fn parse_no_dtd<'x>(what: &str, xml: &'x str) -> Result<Document<'x>, String> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err(format!("{what}: document type declarations are not allowed"));
    }
    let decl = xml.trim_start();
    if decl.starts_with("<?xml") {
        let end = decl.find("?>").unwrap_or(decl.len());
        let head = decl[..end].to_ascii_lowercase();
        if let Some(i) = head.find("encoding") {
            let rest = &head[i + "encoding".len()..];
            let enc = rest
                .trim_start()
                .trim_start_matches('=')
                .trim_start()
                .trim_start_matches(['"', '\''])
                .split(['"', '\''])
                .next()
                .unwrap_or_default();
            if enc != "utf-8" {
                return Err(format!("{what}: only UTF-8 is accepted, not {enc:?}"));
            }
        }
    }
    Document::parse(xml).map_err(|e| format!("{what} is not well-formed XML: {e}"))
}

/// [`parse_no_dtd`], and no comments or processing instructions anywhere: SAML messages never
/// need them, and comments are the basis of comment-injection attacks on values
/// (`NL/BE/123<!---->456`, which canonicalization, and so the signature, ignores).
pub(crate) fn parse_untrusted<'x>(what: &str, xml: &'x str) -> Result<Document<'x>, String> {
    let doc = parse_no_dtd(what, xml)?;
    for n in doc.descendants() {
        match n.node_type() {
            NodeType::Comment => return Err(format!("{what}: XML comments are not allowed")),
            NodeType::PI => {
                return Err(format!("{what}: processing instructions are not allowed"));
            }
            _ => {}
        }
    }
    Ok(doc)
}

/// All text below `n` (comments skipped), for values such as base64 certificates.
pub(crate) fn all_text(n: Node<'_, '_>) -> String {
    n.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect()
}

/// Parses XML that xmlsec produced from verified input (the pre-digest of a signature).
pub(crate) fn parse_verified(xml: &str) -> Result<Document<'_>, String> {
    Document::parse(xml).map_err(|e| format!("the signed XML cannot be read: {e}"))
}

/// The child elements `ns:name` of `n`.
pub(crate) fn children<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    n.children().filter(move |c| c.has_tag_name((ns, name)))
}

/// The child element `ns:name` of `n`, if there is exactly one; an error if there are several.
pub(crate) fn single_child<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> Result<Option<Node<'a, 'i>>, String> {
    let mut it = children(n, ns, name);
    let first = it.next();
    if it.next().is_some() {
        return Err(format!("more than one {name} in {}", n.tag_name().name()));
    }
    Ok(first)
}

/// Like [`single_child`], but the child is required.
pub(crate) fn required_child<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> Result<Node<'a, 'i>, String> {
    single_child(n, ns, name)?.ok_or_else(|| format!("no {name} in {}", n.tag_name().name()))
}

/// The whole text of an element that holds text only, trimmed.
///
/// All text nodes are concatenated (never just the first, so a value split by a comment or
/// CDATA section is not truncated); child elements are refused.
pub(crate) fn element_text(n: Node<'_, '_>) -> Result<String, String> {
    let mut s = String::new();
    for c in n.children() {
        match c.node_type() {
            NodeType::Text => s.push_str(c.text().unwrap_or_default()),
            NodeType::Element => {
                return Err(format!("{} must contain text only", n.tag_name().name()));
            }
            NodeType::Comment | NodeType::PI => {
                return Err(format!("{} contains a comment", n.tag_name().name()));
            }
            NodeType::Root => {}
        }
    }
    Ok(s.trim().to_string())
}

/// A base64 value from XML (whitespace and line breaks allowed).
pub(crate) fn decode_b64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    let cleaned: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(cleaned)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn untrusted_documents() {
        assert!(parse_untrusted("x", "<a>1</a>").is_ok());
        assert!(parse_untrusted("x", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>").is_ok());
        let e = parse_untrusted("x", "<?xml version='1.0' encoding='UTF-7'?><a/>").unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
        let e = parse_untrusted("x", "<!DOCTYPE a [<!ENTITY b \"c\">]><a>&b;</a>").unwrap_err();
        assert!(e.contains("document type"), "{e}");
        assert!(parse_untrusted("x", "<a>1<!---->2</a>").unwrap_err().contains("comment"));
        assert!(parse_untrusted("x", "<a><?pi x?></a>").is_err());
        assert!(parse_untrusted("x", "<a>").is_err());
    }

    #[test]
    fn element_text_takes_everything() {
        let doc = Document::parse("<a> x<![CDATA[y]]>z </a>").unwrap();
        assert_eq!(element_text(doc.root_element()).unwrap(), "xyz");
        let doc = Document::parse("<a>x<b/>y</a>").unwrap();
        assert!(element_text(doc.root_element()).is_err());
        let doc = Document::parse("<a>x<!---->y</a>").unwrap();
        assert!(element_text(doc.root_element()).is_err());
    }

    #[test]
    fn instants() {
        let t = parse_instant("t", "2026-11-24T10:00:00.123Z").unwrap();
        assert_eq!(instant(t), "2026-11-24T10:00:00.123Z");
        assert!(parse_instant("t", "2026-11-24T10:00:00").is_err());
    }
}
