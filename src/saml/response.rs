//! Validation of the node's `samlp:Response` (HTTP-POST binding at the ACS).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use roxmltree::Node;

use super::dsig;
use super::request::{ENTITY_FORMAT, NATURAL_PERSON_PREFIX};
use super::xml::{
    children, decode_b64, element_text, parse_instant, parse_untrusted, parse_verified,
    required_child, single_child, NATURAL_PERSON_NS, SAMLP_NS, SAML_NS,
};
use super::{xmlenc, ServiceProvider, CLOCK_SKEW_SECS, MAX_RESPONSE_BYTES};
use crate::assurance::AssuranceLevel;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
const STATUS_NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// How old a Response (its `IssueInstant`) may be. The node posts it through the browser at
/// once; the assertion's own validity window is checked separately.
const MAX_RESPONSE_AGE_SECS: i64 = 300;
/// Longest accepted attribute value / NameID (characters).
const MAX_VALUE_CHARS: usize = 512;

/// Why a response was not accepted.
#[derive(thiserror::Error, Debug)]
pub enum ResponseError {
    /// The citizen cancelled at the node (`Requester` + `RequestDenied`).
    #[error("the login was cancelled at the eIDAS node")]
    Cancelled,
    /// Any other non-success status (`Responder`/`AuthnFailed`, …): the codes and message.
    #[error("the eIDAS node reported a failure: {0}")]
    Failed(String),
    /// The level of assurance does not satisfy the request: from the node (`NoAuthnContext`,
    /// `asserted` is then `None`) or from the caller's own check of
    /// [`ValidatedAssertion::level`]. [`ServiceProvider::validate_response`] cannot know the
    /// requested level and reports `required: Low` for `NoAuthnContext`;
    /// [`ServiceProvider::validate_response_for_level`] fills it in.
    #[error("level of assurance {asserted:?} is below the required {required}")]
    LevelTooLow { asserted: Option<AssuranceLevel>, required: AssuranceLevel },
    /// Malformed, forged, badly signed or encrypted, not for us, out of time, unsolicited, …
    #[error("invalid SAML response: {0}")]
    Invalid(String),
}

/// What a valid response says about the citizen (eIDAS natural-person minimum data set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedAssertion {
    /// The assertion `ID`: the caller refuses it a second time (replay), keeping it at least
    /// until [`not_on_or_after`](Self::not_on_or_after) + [`CLOCK_SKEW_SECS`].
    pub assertion_id: String,
    /// The request this answers (one of the expected IDs).
    pub in_response_to: String,
    /// The node's entity ID.
    pub issuer: String,
    /// From `AuthnContextClassRef`. Not compared with the request: the caller does that.
    pub level: AssuranceLevel,
    /// `PersonIdentifier`, e.g. `NL/BE/123456789` (issuing country / destination / id).
    pub person_identifier: String,
    pub family_name: String,
    pub given_name: String,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// The `NameID` (persistent or transient, depending on the node).
    pub name_id: String,
    /// The earlier of `Conditions/@NotOnOrAfter` and the bearer confirmation's `NotOnOrAfter`.
    pub not_on_or_after: DateTime<Utc>,
}

fn invalid(m: impl Into<String>) -> ResponseError {
    ResponseError::Invalid(m.into())
}

impl ServiceProvider {
    pub(crate) fn validate(
        &self,
        saml_response_b64: &str,
        expected_request_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<ValidatedAssertion, ResponseError> {
        let skew = Duration::seconds(CLOCK_SKEW_SECS);

        // 1. Decode, with a size limit before and after.
        // Base64 is 4/3 of the size, plus line breaks.
        if saml_response_b64.len() > MAX_RESPONSE_BYTES / 3 * 4 * 21 / 20 {
            return Err(invalid("the response is too large"));
        }
        // A space is a `+` that lost its URL encoding on the way.
        let b64 = saml_response_b64.replace(' ', "+");
        let raw = decode_b64(&b64).map_err(|_| invalid("SAMLResponse is not base64"))?;
        if raw.len() > MAX_RESPONSE_BYTES {
            return Err(invalid("the response is too large"));
        }
        let xml = String::from_utf8(raw).map_err(|_| invalid("the response is not UTF-8"))?;
        let xml = xml.trim_start_matches('\u{feff}');

        // 2./3. No DTD, comments or PIs; well-formed; a samlp:Response. An assertion in clear
        //    is refused here already (only a refusal is based on unverified content), with a
        //    clearer message than the signature check would give.
        {
            let doc = parse_untrusted("response", xml).map_err(invalid)?;
            let root = doc.root_element();
            if !root.has_tag_name((SAMLP_NS, "Response")) {
                return Err(invalid("the message is not a samlp:Response"));
            }
            if children(root, SAML_NS, "Assertion").next().is_some() {
                return Err(invalid("the assertion is not encrypted"));
            }
        }

        // 4. The Response signature, by the node's certificate; from here on only the verified
        //    pre-digest is read.
        let verified = dsig::verify_root("Response", xml, &self.idp_signers).map_err(invalid)?;
        let doc = parse_verified(&verified).map_err(invalid)?;
        let response = doc.root_element();
        if !response.has_tag_name((SAMLP_NS, "Response")) {
            return Err(invalid("the signed element is not a samlp:Response"));
        }

        // 5. Envelope: version, issuer, destination, request, age. Checked before the status,
        //    so that a failure meant for another SP or request is not taken as ours.
        if response.attribute("Version") != Some("2.0") {
            return Err(invalid("the response's Version is not 2.0"));
        }
        self.check_issuer(response, "Response")?;
        if response.attribute("Destination") != Some(self.acs_url.as_str()) {
            return Err(invalid(format!(
                "Destination {:?} is not this SP's ACS URL",
                response.attribute("Destination").unwrap_or_default()
            )));
        }
        let in_response_to = response.attribute("InResponseTo").unwrap_or_default();
        if in_response_to.is_empty() {
            return Err(invalid("unsolicited response (no InResponseTo)"));
        }
        if !expected_request_ids.iter().any(|id| id == in_response_to) {
            return Err(invalid(format!(
                "InResponseTo {in_response_to:?} is not a request this login is waiting for"
            )));
        }
        let issued = parse_instant(
            "IssueInstant",
            response.attribute("IssueInstant").ok_or_else(|| invalid("no IssueInstant"))?,
        )
        .map_err(invalid)?;
        if issued > now + skew || issued + Duration::seconds(MAX_RESPONSE_AGE_SECS) + skew < now {
            return Err(invalid(format!("the response's IssueInstant {issued} is out of range")));
        }

        // 6. Status.
        check_status(response)?;

        // 7. Exactly one EncryptedAssertion, no assertion in clear.
        if children(response, SAML_NS, "Assertion").next().is_some() {
            return Err(invalid("the assertion is not encrypted"));
        }
        let encrypted: Vec<Node> = children(response, SAML_NS, "EncryptedAssertion").collect();
        let [encrypted] = encrypted.as_slice() else {
            return Err(invalid(format!(
                "{} EncryptedAssertions, expected exactly one",
                encrypted.len()
            )));
        };

        // 8. Decrypt, then verify the assertion's own signature; only the verified assertion
        //    is read.
        let plain =
            xmlenc::decrypt_assertion(*encrypted, &self.keys.decryption).map_err(invalid)?;
        let plain = String::from_utf8(plain).map_err(|_| invalid("the assertion is not UTF-8"))?;
        {
            let adoc = parse_untrusted("assertion", &plain).map_err(invalid)?;
            if !adoc.root_element().has_tag_name((SAML_NS, "Assertion")) {
                return Err(invalid("the encrypted element is not a saml:Assertion"));
            }
        }
        let verified =
            dsig::verify_root("Assertion", &plain, &self.idp_signers).map_err(invalid)?;
        let adoc = parse_verified(&verified).map_err(invalid)?;
        let assertion = adoc.root_element();
        if !assertion.has_tag_name((SAML_NS, "Assertion")) {
            return Err(invalid("the signed element is not a saml:Assertion"));
        }

        // 9. The assertion.
        self.check_assertion(assertion, in_response_to, now)
    }

    /// `saml:Issuer` present, equal to the node's entity ID, of entity format if given.
    fn check_issuer(&self, n: Node<'_, '_>, what: &str) -> Result<(), ResponseError> {
        let issuer = single_child(n, SAML_NS, "Issuer")
            .map_err(invalid)?
            .ok_or_else(|| invalid(format!("the {what} has no Issuer")))?;
        if let Some(f) = issuer.attribute("Format") {
            if f != ENTITY_FORMAT {
                return Err(invalid(format!("the {what} Issuer Format {f:?} is not entity")));
            }
        }
        let value = element_text(issuer).map_err(invalid)?;
        if value != self.idp.entity_id {
            return Err(invalid(format!("the {what} Issuer {value:?} is not the trusted node")));
        }
        Ok(())
    }

    fn check_assertion(
        &self,
        a: Node<'_, '_>,
        in_response_to: &str,
        now: DateTime<Utc>,
    ) -> Result<ValidatedAssertion, ResponseError> {
        let skew = Duration::seconds(CLOCK_SKEW_SECS);
        if a.attribute("Version") != Some("2.0") {
            return Err(invalid("the assertion's Version is not 2.0"));
        }
        let assertion_id = a
            .attribute("ID")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("the assertion has no ID"))?
            .to_string();
        self.check_issuer(a, "Assertion")?;
        let instant =
            |n: Node<'_, '_>, attr: &str| -> Result<Option<DateTime<Utc>>, ResponseError> {
                n.attribute(attr).map(|v| parse_instant(attr, v).map_err(invalid)).transpose()
            };
        let issued = instant(a, "IssueInstant")?.ok_or_else(|| invalid("no IssueInstant"))?;
        if issued > now + skew {
            return Err(invalid("the assertion is issued in the future"));
        }

        // Subject: NameID and a bearer confirmation for this SP, request and time.
        let subject = child(a, "Subject")?;
        if single_child(subject, SAML_NS, "EncryptedID").map_err(invalid)?.is_some() {
            return Err(invalid("encrypted NameIDs are not supported"));
        }
        let name_id = text_value("NameID", child(subject, "NameID")?)?;
        let mut confirmation_end = None;
        let mut refusals = Vec::new();
        for sc in children(subject, SAML_NS, "SubjectConfirmation") {
            if sc.attribute("Method") != Some(BEARER) {
                continue;
            }
            match self.bearer_confirmation(sc, in_response_to, now) {
                Ok(end) => {
                    confirmation_end = Some(end);
                    break;
                }
                Err(e) => refusals.push(e),
            }
        }
        let Some(confirmation_end) = confirmation_end else {
            return Err(invalid(if refusals.is_empty() {
                "no bearer SubjectConfirmation".to_string()
            } else {
                refusals.join("; ")
            }));
        };

        // Conditions: time window and audience.
        let conditions = child(a, "Conditions")?;
        if let Some(nb) = instant(conditions, "NotBefore")? {
            if now + skew < nb {
                return Err(invalid(format!("the assertion is not valid before {nb}")));
            }
        }
        let conditions_end = instant(conditions, "NotOnOrAfter")?
            .ok_or_else(|| invalid("Conditions has no NotOnOrAfter"))?;
        if now - skew >= conditions_end {
            return Err(invalid(format!("the assertion expired at {conditions_end}")));
        }
        let mut restrictions = 0;
        for c in conditions.children().filter(|c| c.is_element()) {
            let name = c.tag_name().name();
            match (c.tag_name().namespace(), name) {
                (Some(SAML_NS), "AudienceRestriction") => {
                    restrictions += 1;
                    let ours = children(c, SAML_NS, "Audience")
                        .any(|au| element_text(au).is_ok_and(|t| t == self.entity_id));
                    if !ours {
                        return Err(invalid("the assertion's Audience is not this SP"));
                    }
                }
                (Some(SAML_NS), "OneTimeUse" | "ProxyRestriction") => {}
                _ => return Err(invalid(format!("unknown condition {name}"))),
            }
        }
        if restrictions == 0 {
            return Err(invalid("the assertion has no AudienceRestriction"));
        }

        // Level of assurance.
        let statements: Vec<Node> = children(a, SAML_NS, "AuthnStatement").collect();
        let [statement] = statements.as_slice() else {
            return Err(invalid("expected exactly one AuthnStatement"));
        };
        let class_ref = child(child(*statement, "AuthnContext")?, "AuthnContextClassRef")?;
        let class_ref = element_text(class_ref).map_err(invalid)?;
        let level = AssuranceLevel::ALL
            .into_iter()
            .find(|l| l.uri() == class_ref)
            .ok_or_else(|| invalid(format!("unknown level of assurance {class_ref:?}")))?;

        // Attributes.
        let attrs = Attributes::read(a)?;
        let person_identifier = attrs.single("PersonIdentifier")?;
        if !is_person_identifier(&person_identifier) {
            return Err(invalid("PersonIdentifier is not of the form XX/YY/identifier"));
        }
        let date_of_birth = attrs.single("DateOfBirth")?;
        if date_of_birth.len() != 10
            || NaiveDate::parse_from_str(&date_of_birth, "%Y-%m-%d").is_err()
        {
            return Err(invalid("DateOfBirth is not a date (YYYY-MM-DD)"));
        }
        Ok(ValidatedAssertion {
            assertion_id,
            in_response_to: in_response_to.to_string(),
            issuer: self.idp.entity_id.clone(),
            level,
            person_identifier,
            family_name: attrs.name("CurrentFamilyName")?,
            given_name: attrs.name("CurrentGivenName")?,
            date_of_birth,
            name_id,
            not_on_or_after: conditions_end.min(confirmation_end),
        })
    }

    /// A bearer `SubjectConfirmation` for our ACS and this request, still valid: its end.
    fn bearer_confirmation(
        &self,
        sc: Node<'_, '_>,
        in_response_to: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, String> {
        let skew = Duration::seconds(CLOCK_SKEW_SECS);
        let data = single_child(sc, SAML_NS, "SubjectConfirmationData")?
            .ok_or("a bearer SubjectConfirmation without SubjectConfirmationData")?;
        if data.attribute("Recipient") != Some(self.acs_url.as_str()) {
            return Err("the bearer confirmation's Recipient is not this SP's ACS URL".into());
        }
        if data.attribute("InResponseTo") != Some(in_response_to) {
            return Err("the bearer confirmation's InResponseTo is not the request".into());
        }
        if let Some(nb) = data.attribute("NotBefore") {
            if now + skew < parse_instant("NotBefore", nb)? {
                return Err("the bearer confirmation is not yet valid".into());
            }
        }
        let end = parse_instant(
            "NotOnOrAfter",
            data.attribute("NotOnOrAfter").ok_or("the bearer confirmation has no NotOnOrAfter")?,
        )?;
        if now - skew >= end {
            return Err(format!("the bearer confirmation expired at {end}"));
        }
        Ok(end)
    }
}

/// Maps a non-success status to the caller's cases.
fn check_status(response: Node<'_, '_>) -> Result<(), ResponseError> {
    let status = required_child(response, SAMLP_NS, "Status").map_err(invalid)?;
    let top = required_child(status, SAMLP_NS, "StatusCode").map_err(invalid)?;
    let top_code = top.attribute("Value").unwrap_or_default();
    if top_code == STATUS_SUCCESS {
        return Ok(());
    }
    let sub_code = single_child(top, SAMLP_NS, "StatusCode")
        .map_err(invalid)?
        .and_then(|s| s.attribute("Value"))
        .unwrap_or_default();
    if top_code == STATUS_REQUESTER && sub_code == STATUS_REQUEST_DENIED {
        return Err(ResponseError::Cancelled);
    }
    if sub_code == STATUS_NO_AUTHN_CONTEXT {
        return Err(ResponseError::LevelTooLow { asserted: None, required: AssuranceLevel::Low });
    }
    let message = single_child(status, SAMLP_NS, "StatusMessage")
        .ok()
        .flatten()
        .and_then(|m| element_text(m).ok())
        .unwrap_or_default();
    let short = |c: &str| c.rsplit(':').next().unwrap_or_default().to_string();
    let mut text = short(top_code);
    if !sub_code.is_empty() {
        text = format!("{text}/{}", short(sub_code));
    }
    if !message.is_empty() {
        let message: String =
            message.chars().filter(|c| !c.is_control()).take(MAX_VALUE_CHARS).collect();
        text = format!("{text}: {message}");
    }
    Err(ResponseError::Failed(text))
}

/// The single required child `saml:<name>`.
fn child<'a, 'i>(parent: Node<'a, 'i>, name: &'static str) -> Result<Node<'a, 'i>, ResponseError> {
    required_child(parent, SAML_NS, name).map_err(invalid)
}

/// A single trimmed text value: not empty, no control characters, not too long.
fn text_value(what: &str, n: Node<'_, '_>) -> Result<String, ResponseError> {
    if n.attribute((XSI_NS, "nil")).is_some_and(|v| v == "true" || v == "1") {
        return Err(invalid(format!("{what} is nil")));
    }
    let v = element_text(n).map_err(|e| invalid(format!("{what}: {e}")))?;
    if v.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    if v.chars().count() > MAX_VALUE_CHARS || v.chars().any(char::is_control) {
        return Err(invalid(format!("{what} has an unacceptable value")));
    }
    Ok(v)
}

/// `XX/YY/<id>`: two ISO 3166-1 alpha-2 codes and a non-empty identifier.
fn is_person_identifier(v: &str) -> bool {
    let mut parts = v.splitn(3, '/');
    let cc = |p: Option<&str>| {
        p.is_some_and(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_uppercase()))
    };
    cc(parts.next()) && cc(parts.next()) && parts.next().is_some_and(|id| !id.trim().is_empty())
}

/// The natural-person attributes of an assertion, by name.
struct Attributes<'a, 'i> {
    by_name: Vec<(&'a str, Node<'a, 'i>)>,
}

impl<'a, 'i> Attributes<'a, 'i> {
    fn read(a: Node<'a, 'i>) -> Result<Self, ResponseError> {
        let mut by_name: Vec<(&'a str, Node<'a, 'i>)> = Vec::new();
        for statement in children(a, SAML_NS, "AttributeStatement") {
            for attr in children(statement, SAML_NS, "Attribute") {
                let Some(name) = attr.attribute("Name") else { continue };
                let Some(short) = name.strip_prefix(NATURAL_PERSON_PREFIX) else { continue };
                if by_name.iter().any(|(n, _)| *n == short) {
                    return Err(invalid(format!("attribute {short} occurs more than once")));
                }
                by_name.push((short, attr));
            }
        }
        Ok(Attributes { by_name })
    }

    fn values(&self, name: &str) -> Result<Vec<Node<'a, 'i>>, ResponseError> {
        let attr = self
            .by_name
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| invalid(format!("attribute {name} is missing")))?;
        Ok(children(attr, SAML_NS, "AttributeValue").collect())
    }

    /// An attribute with exactly one value.
    fn single(&self, name: &str) -> Result<String, ResponseError> {
        match self.values(name)?.as_slice() {
            [v] => text_value(name, *v),
            vs => Err(invalid(format!("attribute {name} has {} values, expected one", vs.len()))),
        }
    }

    /// A name: exactly one value in Latin script. eIDAS lets a name in another script come with
    /// a transliteration; the original carries `LatinScript="false"` and is skipped.
    fn name(&self, name: &str) -> Result<String, ResponseError> {
        let latin: Vec<Node> = self
            .values(name)?
            .into_iter()
            .filter(|v| {
                let flag = v
                    .attribute((NATURAL_PERSON_NS, "LatinScript"))
                    .or_else(|| v.attribute("LatinScript"));
                !matches!(flag.map(str::trim), Some("false" | "0"))
            })
            .collect();
        match latin.as_slice() {
            [v] => text_value(name, *v),
            vs => Err(invalid(format!(
                "attribute {name} has {} Latin-script values, expected one",
                vs.len()
            ))),
        }
    }
}
