//! The node's `samlp:Response`: outcomes, hostile variants, assertion, signatures, encryption.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use openssl::x509::X509;
use sha2::{Digest, Sha256};

use super::citizens::{Citizen, Loa};
use super::crypto::{encrypt_element, new_id, sign_document, signature_template, SigningKey};
use super::request::{ReceivedRequest, SAMLP_NS, SAML_NS};
use super::xml::{escape, instant};

pub const NATURAL_PERSON_NS: &str = "http://eidas.europa.eu/attributes/naturalperson";
pub const ATTR_PREFIX: &str = "http://eidas.europa.eu/attributes/naturalperson/";
pub const NAME_FORMAT_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const ENTITY_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
pub const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
pub const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
pub const UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
pub const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const STATUS_AUTHN_FAILED: &str = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed";
pub const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const STATUS_NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";
pub const CONSENT_OBTAINED: &str = "urn:oasis:names:tc:SAML:2.0:consent:obtained";

/// Where the `Wrong*` tampers point instead of the real values.
pub const WRONG_URL: &str = "https://attacker.invalid/saml/acs";
pub const WRONG_AUDIENCE: &str = "https://attacker.invalid/saml/metadata";

/// Lifetime of the assertion and of the bearer confirmation (CEF: 300 s).
pub const VALIDITY_SECS: i64 = 300;

/// How the node answers a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    /// What a real node does: the citizen's level, or `Responder`/`NoAuthnContext` when that
    /// level does not satisfy the request's `RequestedAuthnContext`.
    #[default]
    Success,
    /// `Responder` + `AuthnFailed`, no assertion.
    Failure,
    /// `Requester` + `RequestDenied`, no assertion (the citizen pressed Cancel).
    Cancelled,
    /// Success, but `AuthnContextClassRef` is this level whatever was requested (a node that
    /// answers with a lower level than asked for).
    Level(Loa),
    /// A success response spoiled in one way.
    Tampered(Tamper),
}

/// Ways to spoil an otherwise successful response (for hostile tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// No `ds:Signature` on the Response (the assertion is still signed and encrypted).
    Unsigned,
    /// The assertion has no signature (the Response is signed).
    UnsignedAssertion,
    /// Response and assertion signed by another key (its certificate is in `KeyInfo`).
    WrongKey,
    /// The signed assertion is sent in clear (`saml2:Assertion`, no `EncryptedAssertion`).
    NotEncrypted,
    /// Response `Destination` is not the ACS URL.
    WrongDestination,
    /// `Audience` is not the SP's entity ID.
    WrongAudience,
    /// `SubjectConfirmationData/@Recipient` is not the ACS URL.
    WrongRecipient,
    /// `InResponseTo` (Response and SubjectConfirmationData) is another ID.
    WrongInResponseTo,
    /// Assertion issued 15 minutes ago, `NotOnOrAfter` 10 minutes ago (Conditions and
    /// SubjectConfirmationData); the Response itself is fresh.
    Expired,
    /// `Conditions/@NotBefore` 10 minutes in the future.
    NotYetValid,
}

impl Tamper {
    pub const ALL: [Tamper; 10] = [
        Tamper::Unsigned,
        Tamper::UnsignedAssertion,
        Tamper::WrongKey,
        Tamper::NotEncrypted,
        Tamper::WrongDestination,
        Tamper::WrongAudience,
        Tamper::WrongRecipient,
        Tamper::WrongInResponseTo,
        Tamper::Expired,
        Tamper::NotYetValid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tamper::Unsigned => "unsigned",
            Tamper::UnsignedAssertion => "unsigned-assertion",
            Tamper::WrongKey => "wrong-key",
            Tamper::NotEncrypted => "not-encrypted",
            Tamper::WrongDestination => "wrong-destination",
            Tamper::WrongAudience => "wrong-audience",
            Tamper::WrongRecipient => "wrong-recipient",
            Tamper::WrongInResponseTo => "wrong-in-response-to",
            Tamper::Expired => "expired",
            Tamper::NotYetValid => "not-yet-valid",
        }
    }
}

impl fmt::Display for Outcome {
    /// `success`, `failure`, `cancelled`, `level:<low|substantial|high>` or a tamper name
    /// (`unsigned`, `wrong-key`, …) — the syntax of the control endpoint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Success => f.write_str("success"),
            Outcome::Failure => f.write_str("failure"),
            Outcome::Cancelled => f.write_str("cancelled"),
            Outcome::Level(l) => write!(f, "level:{l}"),
            Outcome::Tampered(t) => f.write_str(t.name()),
        }
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "" | "success" => return Ok(Outcome::Success),
            "failure" | "failed" => return Ok(Outcome::Failure),
            "cancelled" | "cancel" | "canceled" => return Ok(Outcome::Cancelled),
            _ => {}
        }
        if let Some(l) = s.strip_prefix("level:") {
            return Ok(Outcome::Level(l.parse()?));
        }
        let t = s.strip_prefix("tamper:").unwrap_or(s);
        Tamper::ALL
            .into_iter()
            .find(|x| x.name() == t)
            .map(Outcome::Tampered)
            .ok_or_else(|| format!("unknown outcome {s:?}"))
    }
}

/// What a response is built from.
pub struct ResponseInput<'a> {
    pub request: &'a ReceivedRequest,
    pub citizen: &'a Citizen,
    pub outcome: Outcome,
    pub node_entity_id: &'a str,
    pub node_key: &'a SigningKey,
    /// Signs for [`Tamper::WrongKey`].
    pub rogue_key: &'a SigningKey,
    /// Required unless the outcome is a failure or [`Tamper::NotEncrypted`].
    pub sp_encryption_cert: Option<&'a X509>,
    pub rsa_oaep_legacy: bool,
    pub now: DateTime<Utc>,
}

/// Builds the signed (and, on success, encrypted) `samlp:Response` XML.
pub fn build_response(inp: &ResponseInput<'_>) -> anyhow::Result<String> {
    let req = inp.request;
    let tamper = match inp.outcome {
        Outcome::Tampered(t) => Some(t),
        _ => None,
    };
    let is = |t: Tamper| tamper == Some(t);

    // Status and level.
    let (status, level) = match inp.outcome {
        Outcome::Failure => (
            Some((STATUS_RESPONDER, STATUS_AUTHN_FAILED, "Authentication failed".to_string())),
            None,
        ),
        Outcome::Cancelled => (
            Some((
                STATUS_REQUESTER,
                STATUS_REQUEST_DENIED,
                "The citizen cancelled the login".to_string(),
            )),
            None,
        ),
        Outcome::Level(l) => (None, Some(l)),
        Outcome::Success | Outcome::Tampered(_) => {
            if req.accepts_level(inp.citizen.level) {
                (None, Some(inp.citizen.level))
            } else {
                (
                    Some((
                        STATUS_RESPONDER,
                        STATUS_NO_AUTHN_CONTEXT,
                        format!(
                            "Level of assurance {} does not satisfy the request ({} {})",
                            inp.citizen.level,
                            req.comparison,
                            req.authn_context_class_refs.join(" ")
                        ),
                    )),
                    None,
                )
            }
        }
    };

    let now = inp.now;
    let acs = req.acs_url.as_str();
    let destination = if is(Tamper::WrongDestination) { WRONG_URL } else { acs };
    let in_response_to = if is(Tamper::WrongInResponseTo) { new_id() } else { req.id.clone() };
    let signer = if is(Tamper::WrongKey) { inp.rogue_key } else { inp.node_key };

    let response_id = new_id();
    let (status_xml, assertion_xml) = match (status, level) {
        (Some((top, sub, msg)), _) => (
            format!(
                "<saml2p:Status><saml2p:StatusCode Value=\"{top}\">\
                 <saml2p:StatusCode Value=\"{sub}\"/></saml2p:StatusCode>\
                 <saml2p:StatusMessage>{}</saml2p:StatusMessage></saml2p:Status>",
                escape(&msg)
            ),
            String::new(),
        ),
        (None, Some(level)) => {
            let assertion = signed_assertion(inp, level, &in_response_to, signer, tamper)?;
            let carried = if is(Tamper::NotEncrypted) {
                assertion
            } else {
                let cert = inp.sp_encryption_cert.ok_or_else(|| {
                    anyhow::anyhow!("no SP encryption certificate: cannot encrypt the assertion")
                })?;
                format!(
                    "<saml2:EncryptedAssertion>{}</saml2:EncryptedAssertion>",
                    encrypt_element(&assertion, cert, &req.issuer, inp.rsa_oaep_legacy)?
                )
            };
            (
                format!(
                    "<saml2p:Status><saml2p:StatusCode Value=\"{STATUS_SUCCESS}\"/>\
                     <saml2p:StatusMessage>{STATUS_SUCCESS}</saml2p:StatusMessage>\
                     </saml2p:Status>"
                ),
                carried,
            )
        }
        (None, None) => anyhow::bail!("no status and no level"),
    };

    let sig = if is(Tamper::Unsigned) {
        String::new()
    } else {
        signature_template(&response_id, signer, None)
    };
    let xml = format!(
        "<saml2p:Response xmlns:saml2p=\"{SAMLP_NS}\" xmlns:saml2=\"{SAML_NS}\" \
         Consent=\"{CONSENT_OBTAINED}\" Destination=\"{}\" ID=\"{response_id}\" \
         InResponseTo=\"{}\" IssueInstant=\"{}\" Version=\"2.0\">\
         <saml2:Issuer Format=\"{ENTITY_FORMAT}\">{}</saml2:Issuer>{sig}{status_xml}\
         {assertion_xml}</saml2p:Response>",
        escape(destination),
        escape(&in_response_to),
        instant(now),
        escape(inp.node_entity_id),
    );
    if is(Tamper::Unsigned) {
        Ok(xml)
    } else {
        sign_document(&xml, signer)
    }
}

/// The signed `saml2:Assertion` (no XML declaration), with the eIDAS natural-person minimum
/// data set.
fn signed_assertion(
    inp: &ResponseInput<'_>,
    level: Loa,
    in_response_to: &str,
    signer: &SigningKey,
    tamper: Option<Tamper>,
) -> anyhow::Result<String> {
    let req = inp.request;
    let c = inp.citizen;
    let is = |t: Tamper| tamper == Some(t);
    let now = inp.now;
    let (issued, not_before, not_on_or_after) = if is(Tamper::Expired) {
        (now - Duration::minutes(15), now - Duration::minutes(15), now - Duration::minutes(10))
    } else if is(Tamper::NotYetValid) {
        (now, now + Duration::minutes(10), now + Duration::minutes(15))
    } else {
        (now, now, now + Duration::seconds(VALIDITY_SECS))
    };
    let recipient = if is(Tamper::WrongRecipient) { WRONG_URL } else { req.acs_url.as_str() };
    let audience = if is(Tamper::WrongAudience) { WRONG_AUDIENCE } else { req.issuer.as_str() };

    let (name_id_format, name_id) = match req.name_id_format.as_deref() {
        Some(TRANSIENT) => (TRANSIENT, new_id()),
        _ => {
            // Stable per citizen and SP, not the PersonIdentifier itself.
            let h = Sha256::digest(format!("{}|{}", c.person_identifier, req.issuer));
            let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
            (PERSISTENT, hex)
        }
    };

    let assertion_id = new_id();
    let attr = |name: &str, friendly: &str, value: &str| {
        format!(
            "<saml2:Attribute FriendlyName=\"{friendly}\" Name=\"{ATTR_PREFIX}{name}\" \
             NameFormat=\"{NAME_FORMAT_URI}\"><saml2:AttributeValue \
             xsi:type=\"eidas-natural:{name}Type\">{}</saml2:AttributeValue></saml2:Attribute>",
            escape(value)
        )
    };
    let attributes = [
        attr("PersonIdentifier", "PersonIdentifier", c.person_identifier),
        attr("CurrentFamilyName", "FamilyName", c.family_name),
        attr("CurrentGivenName", "FirstName", c.given_name),
        attr("DateOfBirth", "DateOfBirth", c.date_of_birth),
    ]
    .concat();
    let sig = if is(Tamper::UnsignedAssertion) {
        String::new()
    } else {
        signature_template(&assertion_id, signer, Some("eidas-natural xsi"))
    };
    let xml = format!(
        "<saml2:Assertion xmlns:saml2=\"{SAML_NS}\" xmlns:eidas-natural=\"{NATURAL_PERSON_NS}\" \
         xmlns:xsi=\"{XSI_NS}\" ID=\"{assertion_id}\" IssueInstant=\"{issued}\" Version=\"2.0\">\
         <saml2:Issuer Format=\"{ENTITY_FORMAT}\">{issuer}</saml2:Issuer>{sig}\
         <saml2:Subject><saml2:NameID Format=\"{name_id_format}\" NameQualifier=\"{issuer}\" \
         SPNameQualifier=\"{sp}\">{name_id}</saml2:NameID>\
         <saml2:SubjectConfirmation Method=\"{BEARER}\"><saml2:SubjectConfirmationData \
         InResponseTo=\"{irt}\" NotOnOrAfter=\"{noa}\" Recipient=\"{recipient}\"/>\
         </saml2:SubjectConfirmation></saml2:Subject>\
         <saml2:Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{noa}\"><saml2:AudienceRestriction>\
         <saml2:Audience>{audience}</saml2:Audience></saml2:AudienceRestriction>\
         </saml2:Conditions>\
         <saml2:AuthnStatement AuthnInstant=\"{issued}\"><saml2:AuthnContext>\
         <saml2:AuthnContextClassRef>{level}</saml2:AuthnContextClassRef></saml2:AuthnContext>\
         </saml2:AuthnStatement><saml2:AttributeStatement>{attributes}</saml2:AttributeStatement>\
         </saml2:Assertion>",
        issued = instant(issued),
        issuer = escape(inp.node_entity_id),
        sp = escape(&req.issuer),
        name_id = escape(&name_id),
        irt = escape(in_response_to),
        noa = instant(not_on_or_after),
        nb = instant(not_before),
        recipient = escape(recipient),
        audience = escape(audience),
        level = level.uri(),
    );
    if is(Tamper::UnsignedAssertion) {
        Ok(xml)
    } else {
        sign_document(&xml, signer)
    }
}
