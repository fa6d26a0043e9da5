#![allow(clippy::disallowed_methods)] // tests read the wall clock
//! The SP against the mock eIDAS node (`idp_mocks::eidas`, in process): both request bindings,
//! both key transports, every failure and tamper the node offers, and hostile responses built
//! here (signature wrapping, comment injection, XXE, attacker certificates, algorithms).

mod forge;

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use idp_mocks::eidas::{
    self as mock, Citizen, EidasNodeConfig, Loa, MockEidasNode, Outcome, Tamper, FR_SUBSTANTIAL,
    NL_HIGH, NL_LOW, NL_SUBSTANTIAL,
};
use openssl::x509::X509;

use super::xml::{DSIG_NS, SAMLP_NS, SAML_NS, XENC_NS};
use super::*;
use forge::{EncSpec, ForgeKey, AES256_GCM_OAEP11, ECDSA_SHA256};

const ENTITY: &str = "https://broker.test/saml/eidas/metadata";
const ACS: &str = "https://broker.test/saml/eidas/acs";

/// One key set for all tests (RSA-3072 generation is slow).
fn keys() -> &'static SpKeys {
    static KEYS: OnceLock<SpKeys> = OnceLock::new();
    KEYS.get_or_init(|| SpKeys::generate("cozo-broker test SP", Utc::now().timestamp()).unwrap())
}

fn encryption_key() -> xmlenc::DecryptionKeys {
    keys::LoadedKeys::load(keys()).unwrap().decryption
}

fn ec_encryption_cert() -> X509 {
    X509::from_pem(keys().ec_encryption_cert_pem.as_bytes()).unwrap()
}

fn encryption_cert() -> X509 {
    X509::from_pem(keys().encryption_cert_pem.as_bytes()).unwrap()
}

fn level(l: Loa) -> AssuranceLevel {
    AssuranceLevel::parse(l.name()).unwrap()
}

fn node_config(legacy: bool) -> EidasNodeConfig {
    EidasNodeConfig {
        sp_signing_cert_pem: Some(keys().signing_cert_pem.clone()),
        sp_encryption_cert_pem: Some(keys().encryption_cert_pem.clone()),
        rsa_oaep_legacy: legacy,
        ..EidasNodeConfig::default()
    }
}

struct Env {
    node: MockEidasNode,
    sp: ServiceProvider,
}

async fn env(legacy: bool) -> Env {
    let (_, node) = mock::start(node_config(legacy)).await.unwrap();
    let idp = IdpTrust::from_metadata(&node.metadata_xml().await.unwrap()).unwrap();
    let sp = ServiceProvider::new(ENTITY, ACS, keys(), idp).unwrap();
    Env { node, sp }
}

fn spec(min_level: AssuranceLevel) -> AuthnRequestSpec {
    AuthnRequestSpec { id: new_request_id(), min_level, force_authn: true, country: "NL".into() }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn decode(b64: &str) -> String {
    String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
}

impl Env {
    /// Our signed AuthnRequest (POST binding) as XML, for `MockEidasNode::respond`.
    fn request_xml(&self, spec: &AuthnRequestSpec) -> String {
        decode(&self.sp.post_request_at(spec, Utc::now()).unwrap().1)
    }

    async fn respond(&self, spec: &AuthnRequestSpec, c: &Citizen, outcome: Outcome) -> String {
        self.node.respond(&self.request_xml(spec), c, outcome).await.unwrap()
    }

    fn validate(
        &self,
        b64: &str,
        spec: &AuthnRequestSpec,
    ) -> Result<ValidatedAssertion, ResponseError> {
        self.sp.validate_response(b64, std::slice::from_ref(&spec.id), Utc::now())
    }

    /// An SP that trusts `key` (instead of the node's certificate) for the node's entity ID.
    fn sp_trusting(&self, key: &ForgeKey) -> ServiceProvider {
        let idp = IdpTrust {
            entity_id: self.node.entity_id().to_string(),
            sso_redirect: None,
            sso_post: None,
            signing_certs_der: vec![key.cert_der()],
        };
        ServiceProvider::new(ENTITY, ACS, keys(), idp).unwrap()
    }
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, ResponseError>, needle: &str) {
    match r {
        Err(ResponseError::Invalid(m)) => assert!(m.contains(needle), "{needle:?} not in {m:?}"),
        other => panic!("expected Invalid({needle:?}), got {other:?}"),
    }
}

#[track_caller]
fn check_citizen(
    a: &ValidatedAssertion,
    c: &Citizen,
    spec: &AuthnRequestSpec,
    node: &MockEidasNode,
) {
    assert_eq!(a.person_identifier, c.person_identifier);
    assert_eq!(a.family_name, c.family_name);
    assert_eq!(a.given_name, c.given_name);
    assert_eq!(a.date_of_birth, c.date_of_birth);
    assert_eq!(a.level, level(c.level));
    assert_eq!(a.in_response_to, spec.id);
    assert_eq!(a.issuer, node.entity_id());
    assert!(!a.name_id.is_empty() && !a.assertion_id.is_empty());
    let left = (a.not_on_or_after - Utc::now()).num_seconds();
    assert!((250..=300).contains(&left), "not_on_or_after in {left} s");
}

// ---------------------------------------------------------------------------------------------
// The good paths

/// HTTP-Redirect request through the node's real `/sso` (it verifies our query signature), and
/// the default key transport (`xmlenc11#rsa-oaep`, SHA-256, MGF1-SHA-256) with AES-256-GCM.
#[tokio::test]
async fn redirect_binding_and_rsa_oaep_sha256() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let url = e.sp.redirect_request_at(&s, "relay-1", Utc::now()).unwrap();
    assert!(url.starts_with(&e.node.sso_url()));
    assert!(url.ends_with("&country=NL"));
    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{:?}", e.node.rejected_requests());
    assert!(resp.headers()["location"].to_str().unwrap().ends_with("/authenticate"));

    let got = e.node.last_request().unwrap();
    assert_eq!(got.id, s.id);
    assert_eq!(got.binding, mock::Binding::Redirect);
    assert_eq!(got.signature_algorithm, uris::ECDSA_SHA256);
    assert_eq!(got.relay_state.as_deref(), Some("relay-1"));
    assert_eq!(got.country.as_deref(), Some("NL"));
    assert_eq!(got.issuer, ENTITY);
    assert_eq!(got.acs_url, ACS);
    assert_eq!(got.destination.as_deref(), Some(e.node.sso_url().as_str()));
    assert!(got.force_authn && !got.is_passive);
    assert_eq!(got.comparison, "minimum");
    assert_eq!(got.authn_context_class_refs, [AssuranceLevel::Substantial.uri()]);
    assert_eq!(got.name_id_format.as_deref(), Some(uris::PERSISTENT));
    assert_eq!(got.sp_type, None, "SPType is in the metadata by default");
    let names: Vec<&str> = got.requested_attributes.iter().map(|a| a.name.as_str()).collect();
    for a in ["PersonIdentifier", "CurrentFamilyName", "CurrentGivenName", "DateOfBirth"] {
        assert!(names.contains(&format!("{}{a}", uris::NATURAL_PERSON_PREFIX).as_str()));
    }
    assert!(got.requested_attributes.iter().all(|a| a.is_required));

    let b64 = e.node.respond(&s.id, &NL_SUBSTANTIAL, Outcome::Success).await.unwrap();
    assert!(decode(&b64).contains(uris::RSA_OAEP_11));
    let a = e.validate(&b64, &s).unwrap();
    check_citizen(&a, &NL_SUBSTANTIAL, &s, &e.node);

    // Diacritics survive; several pending requests are fine.
    let s2 = spec(AssuranceLevel::Low);
    let b64 = e.respond(&s2, &FR_SUBSTANTIAL, Outcome::Success).await;
    let ids = vec![s.id.clone(), s2.id.clone()];
    let a = e.sp.validate_response(&b64, &ids, Utc::now()).unwrap();
    check_citizen(&a, &FR_SUBSTANTIAL, &s2, &e.node);
    assert!(!a.family_name.is_ascii());
}

/// HTTP-POST request through the node's real `/sso` (it verifies our enveloped signature), and
/// the legacy key transport `xmlenc#rsa-oaep-mgf1p` (SHA-1).
#[tokio::test]
async fn post_binding_and_legacy_rsa_oaep_mgf1p() {
    let e = env(true).await;
    let s =
        AuthnRequestSpec { force_authn: false, country: "FR".into(), ..spec(AssuranceLevel::High) };
    let (action, saml_request) = e.sp.post_request_at(&s, Utc::now()).unwrap();
    assert_eq!(action, e.node.sso_url());
    let form = [("SAMLRequest", saml_request.as_str()), ("RelayState", "r2"), ("country", "FR")];
    let resp = http().post(&action).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{:?}", e.node.rejected_requests());
    let got = e.node.last_request().unwrap();
    assert_eq!(got.binding, mock::Binding::Post);
    assert_eq!(got.signature_algorithm, uris::ECDSA_SHA256);
    assert_eq!(got.country.as_deref(), Some("FR"));
    assert!(!got.force_authn);
    assert_eq!(got.authn_context_class_refs, [AssuranceLevel::High.uri()]);

    let b64 = e.node.respond(&s.id, &NL_HIGH, Outcome::Success).await.unwrap();
    let xml = decode(&b64);
    assert!(xml.contains(uris::RSA_OAEP_MGF1P) && !xml.contains(uris::RSA_OAEP_11));
    let a = e.validate(&b64, &s).unwrap();
    check_citizen(&a, &NL_HIGH, &s, &e.node);
    assert_eq!(a.level, AssuranceLevel::High);
}

/// The node fetches our metadata (served here) to learn our certificates and ACS: a full round
/// trip driven by what `metadata_xml` publishes. Also: SPType in the request instead.
#[tokio::test]
async fn node_uses_our_metadata() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let md_url = format!("http://{}/metadata", listener.local_addr().unwrap());
    let (_, node) = mock::start(EidasNodeConfig {
        sp_metadata_url: Some(md_url),
        ..EidasNodeConfig::default()
    })
    .await
    .unwrap();
    let idp = IdpTrust::from_metadata(&node.metadata_xml().await.unwrap()).unwrap();
    let md_url = format!("http://{}/metadata", listener.local_addr().unwrap());
    let sp = std::sync::Arc::new(
        ServiceProvider::new(&md_url, ACS, keys(), idp).unwrap().with_sp_type_in_request(true),
    );
    let served = sp.clone();
    let app = axum::Router::new().route(
        "/metadata",
        axum::routing::get(move || {
            let sp = served.clone();
            async move { sp.metadata_xml(Utc::now()).unwrap() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let md = sp.metadata_xml(Utc::now()).unwrap();
    assert!(!md.contains("SPType"));
    let s = spec(AssuranceLevel::Substantial);
    let resp =
        http().get(sp.redirect_request_at(&s, "", Utc::now()).unwrap()).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{:?}", node.rejected_requests());
    let got = node.last_request().unwrap();
    assert_eq!(got.sp_type.as_deref(), Some("public"));
    assert_eq!(got.relay_state, None);
    let b64 = node.respond(&s.id, &NL_SUBSTANTIAL, Outcome::Success).await.unwrap();
    let a = sp.validate_response(&b64, std::slice::from_ref(&s.id), Utc::now()).unwrap();
    check_citizen(&a, &NL_SUBSTANTIAL, &s, &node);
}

// ---------------------------------------------------------------------------------------------
// Statuses and levels

#[tokio::test]
async fn cancel_failure_and_levels() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);

    let b64 = e.respond(&s, &NL_SUBSTANTIAL, Outcome::Cancelled).await;
    assert!(matches!(e.validate(&b64, &s), Err(ResponseError::Cancelled)));

    let b64 = e.respond(&s, &NL_SUBSTANTIAL, Outcome::Failure).await;
    match e.validate(&b64, &s) {
        Err(ResponseError::Failed(m)) => assert!(m.contains("Responder/AuthnFailed"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A failure for another request is not ours to report.
    let other = spec(AssuranceLevel::Substantial);
    assert_invalid(e.validate(&b64, &other), "InResponseTo");

    // The node answers below the request: the level is returned, the caller refuses it …
    let b64 = e.respond(&s, &NL_SUBSTANTIAL, Outcome::Level(Loa::Low)).await;
    assert_eq!(e.validate(&b64, &s).unwrap().level, AssuranceLevel::Low);
    match e.sp.validate_response_for_level(
        &b64,
        std::slice::from_ref(&s.id),
        s.min_level,
        Utc::now(),
    ) {
        Err(ResponseError::LevelTooLow { asserted, required }) => {
            assert_eq!(asserted, Some(AssuranceLevel::Low));
            assert_eq!(required, AssuranceLevel::Substantial);
        }
        other => panic!("{other:?}"),
    }

    // … or the node refuses: NoAuthnContext.
    let b64 = e.respond(&s, &NL_LOW, Outcome::Success).await;
    assert!(matches!(e.validate(&b64, &s), Err(ResponseError::LevelTooLow { asserted: None, .. })));
    assert!(matches!(
        e.sp.validate_response_for_level(
            &b64,
            std::slice::from_ref(&s.id),
            s.min_level,
            Utc::now()
        ),
        Err(ResponseError::LevelTooLow { asserted: None, required: AssuranceLevel::Substantial })
    ));

    // Higher than asked is fine.
    let b64 = e.respond(&s, &NL_HIGH, Outcome::Success).await;
    let a = e.sp.validate_response_for_level(
        &b64,
        std::slice::from_ref(&s.id),
        s.min_level,
        Utc::now(),
    );
    assert_eq!(a.unwrap().level, AssuranceLevel::High);
}

#[tokio::test]
async fn unsolicited_and_unknown_requests_are_invalid() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let b64 = e.respond(&s, &NL_SUBSTANTIAL, Outcome::Success).await;
    assert_invalid(e.sp.validate_response(&b64, &[], Utc::now()), "InResponseTo");
    let other = vec![new_request_id()];
    assert_invalid(e.sp.validate_response(&b64, &other, Utc::now()), "InResponseTo");
    // Too late (the assertion lives 5 minutes) and too early.
    let later = Utc::now() + chrono::Duration::minutes(7);
    assert_invalid(
        e.sp.validate_response(&b64, std::slice::from_ref(&s.id), later),
        "IssueInstant",
    );
    let earlier = Utc::now() - chrono::Duration::minutes(5);
    assert_invalid(
        e.sp.validate_response(&b64, std::slice::from_ref(&s.id), earlier),
        "IssueInstant",
    );
    e.validate(&b64, &s).unwrap();
}

/// Every hostile variant the node can produce is refused, for the right reason.
#[tokio::test]
async fn every_tamper_is_invalid() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let xml = e.request_xml(&s);
    for t in Tamper::ALL {
        let b64 = e.node.respond(&xml, &NL_SUBSTANTIAL, Outcome::Tampered(t)).await.unwrap();
        let needle = match t {
            Tamper::Unsigned => "Response is not signed",
            Tamper::UnsignedAssertion => "Assertion is not signed",
            Tamper::WrongKey => "does not verify",
            Tamper::NotEncrypted => "not encrypted",
            Tamper::WrongDestination => "Destination",
            Tamper::WrongAudience => "Audience",
            Tamper::WrongRecipient => "Recipient",
            Tamper::WrongInResponseTo => "InResponseTo",
            Tamper::Expired => "expired",
            Tamper::NotYetValid => "not valid before",
        };
        assert_invalid(e.validate(&b64, &s), needle);
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile responses built here

/// The genuine response (XML) and its plaintext assertion with the node's signature removed.
async fn genuine(e: &Env, s: &AuthnRequestSpec) -> (String, String) {
    let xml = decode(&e.respond(s, &NL_SUBSTANTIAL, Outcome::Success).await);
    let assertion = forge::strip_signature(&forge::decrypt(&xml, &encryption_key()));
    (xml, assertion)
}

/// The assertion with the PersonIdentifier value replaced (raw XML text).
fn with_person_identifier(assertion: &str, value_xml: &str) -> String {
    assertion.replace(NL_SUBSTANTIAL.person_identifier, value_xml)
}

fn b64(xml: &str) -> String {
    STANDARD.encode(xml)
}

#[tokio::test]
async fn signature_wrapping_is_refused() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, plain) = genuine(&e, &s).await;
    e.validate(&b64(&genuine), &s).unwrap();
    let attacker = ForgeKey::ec();
    let evil_plain = with_person_identifier(&plain, "NL/BE/evil");
    let evil_signed = forge::sign(&evil_plain, &attacker, ECDSA_SHA256);
    let evil_encrypted = format!(
        "<saml2:EncryptedAssertion>{}</saml2:EncryptedAssertion>",
        forge::encrypt(&evil_signed, &encryption_cert(), AES256_GCM_OAEP11)
    );
    let genuine_ea = forge::element(&genuine, SAML_NS, "EncryptedAssertion");
    let sig_end = forge::range_of(&genuine, DSIG_NS, "Signature").end;
    let close = genuine.rfind("</saml2p:Response>").unwrap();
    let without_ea = forge::replace_element(&genuine, SAML_NS, "EncryptedAssertion", "");

    // (a) the signed EncryptedAssertion moved into Extensions, an evil one in its place.
    let moved = |evil: &str| {
        let sig_end = forge::range_of(&without_ea, DSIG_NS, "Signature").end;
        let close = without_ea.rfind("</saml2p:Response>").unwrap();
        format!(
            "{}<saml2p:Extensions>{genuine_ea}</saml2p:Extensions>{}{evil}{}",
            &without_ea[..sig_end],
            &without_ea[sig_end..close],
            &without_ea[close..]
        )
    };
    let a1 = moved(&evil_plain);
    let a2 = moved(&evil_encrypted);
    // (b) the genuine response wrapped in an evil unsigned one …
    let evil_root = |inner: &str, sig: &str| {
        format!(
            "<saml2p:Response xmlns:saml2p=\"{SAMLP_NS}\" xmlns:saml2=\"{SAML_NS}\" \
             Destination=\"{ACS}\" ID=\"_evil\" InResponseTo=\"{id}\" IssueInstant=\"{now}\" \
             Version=\"2.0\"><saml2:Issuer>{issuer}</saml2:Issuer>{sig}<saml2p:Extensions>\
             {inner}</saml2p:Extensions><saml2p:Status><saml2p:StatusCode \
             Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></saml2p:Status>\
             {evil_encrypted}</saml2p:Response>",
            id = s.id,
            now = super::xml::instant(Utc::now()),
            issuer = e.node.entity_id(),
        )
    };
    let b1 = evil_root(&genuine, "");
    // … and with the genuine signature moved onto the evil root.
    let genuine_sig = forge::element(&genuine, DSIG_NS, "Signature");
    let b2 = evil_root(&forge::strip_signature(&genuine), &genuine_sig);
    // (c) a second, unsigned EncryptedAssertion.
    let c = format!("{}{evil_encrypted}{}", &genuine[..close], &genuine[close..]);
    // (d) the evil one first, the genuine one after it.
    let d = format!("{}{evil_encrypted}{}", &genuine[..sig_end], &genuine[sig_end..]);

    for (name, xml) in [("a1", a1), ("a2", a2), ("b1", b1), ("b2", b2), ("c", c), ("d", d)] {
        match e.validate(&b64(&xml), &s) {
            Err(ResponseError::Invalid(_)) => {}
            Ok(a) => {
                assert_ne!(a.person_identifier, "NL/BE/evil", "{name}: the evil assertion won");
                panic!("{name}: accepted a modified response");
            }
            Err(other) => panic!("{name}: {other:?}"),
        }
    }
}

/// A value split by a comment keeps its signature (c14n drops comments) but is refused; a value
/// split by CDATA is read whole.
#[tokio::test]
async fn comment_injection_is_refused() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, plain) = genuine(&e, &s).await;
    let trusted = ForgeKey::ec();
    let sp = e.sp_trusting(&trusted);
    let respond = |assertion: &str| {
        let signed = forge::sign(assertion, &trusted, ECDSA_SHA256);
        let r = forge::rebuild(
            &genuine,
            &signed,
            &encryption_cert(),
            AES256_GCM_OAEP11,
            &trusted,
            Some(ECDSA_SHA256),
        );
        sp.validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now())
    };
    // Re-signed but unchanged: accepted (the forge works).
    assert_eq!(respond(&plain).unwrap().person_identifier, NL_SUBSTANTIAL.person_identifier);

    let pid = NL_SUBSTANTIAL.person_identifier;
    let split = format!("{}<!---->{}", &pid[..10], &pid[10..]);
    assert_invalid(respond(&with_person_identifier(&plain, &split)), "comment");
    let name_id = forge::element(&plain, SAML_NS, "NameID");
    let value = {
        let doc = roxmltree::Document::parse(&plain).unwrap();
        let n = doc.descendants().find(|n| n.has_tag_name((SAML_NS, "NameID"))).unwrap();
        n.text().unwrap().to_string()
    };
    let injected = name_id.replace(&value, &format!("{}<!---->{}", &value[..4], &value[4..]));
    assert_invalid(respond(&plain.replace(&name_id, &injected)), "comment");

    let cdata = format!("{}<![CDATA[{}]]>", &pid[..10], &pid[10..]);
    assert_eq!(respond(&with_person_identifier(&plain, &cdata)).unwrap().person_identifier, pid);
}

#[tokio::test]
async fn xxe_and_dtds_are_refused() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, _) = genuine(&e, &s).await;
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        genuine.replacen("<saml2:Issuer", "<saml2:Issuer>&x;</saml2:Issuer><saml2:Issuer", 1)
    );
    assert_invalid(e.validate(&b64(&xxe), &s), "document type");
    let laughs = format!(
        "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>{genuine}"
    );
    assert_invalid(e.validate(&b64(&laughs), &s), "document type");
    assert_invalid(e.validate(&b64("<a"), &s), "well-formed");
    assert_invalid(e.validate("%%%", &s), "base64");
    let huge = STANDARD.encode(vec![b' '; MAX_RESPONSE_BYTES + 1]);
    assert_invalid(e.validate(&huge, &s), "too large");
    let utf16 = genuine.replacen(
        "<saml2p:Response",
        "<?xml version=\"1.0\" encoding=\"UTF-16\"?><saml2p:Response",
        1,
    );
    assert_invalid(e.validate(&b64(&utf16), &s), "UTF-8");
}

/// Only the configured certificate counts, whatever `KeyInfo` says.
#[tokio::test]
async fn attacker_certificate_in_key_info_is_refused() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, plain) = genuine(&e, &s).await;
    let attacker = ForgeKey::ec();
    // Whole response re-signed by the attacker (their certificate in KeyInfo).
    let evil = with_person_identifier(&plain, "NL/BE/evil");
    let assertion = forge::sign(&evil, &attacker, ECDSA_SHA256);
    let r = forge::rebuild(
        &genuine,
        &assertion,
        &encryption_cert(),
        AES256_GCM_OAEP11,
        &attacker,
        Some(ECDSA_SHA256),
    );
    assert_invalid(e.validate(&b64(&r), &s), "does not verify");
    // The Response by a trusted key, the assertion by the attacker.
    let trusted = ForgeKey::ec();
    let r = forge::rebuild(
        &genuine,
        &assertion,
        &encryption_cert(),
        AES256_GCM_OAEP11,
        &trusted,
        Some(ECDSA_SHA256),
    );
    let sp = e.sp_trusting(&trusted);
    assert_invalid(
        sp.validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now()),
        "Assertion signature does not verify",
    );
}

#[tokio::test]
async fn tampered_ciphertext_is_refused() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, plain) = genuine(&e, &s).await;
    // In a genuine response the Response signature breaks.
    let r = forge::range_of(&genuine, XENC_NS, "CipherValue");
    let cv = &genuine[r.clone()];
    let inner_start = cv.find('>').unwrap() + 1;
    let mut bytes = genuine.clone().into_bytes();
    let i = r.start + inner_start + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert_invalid(e.validate(&b64(&flipped), &s), "signature");
    // Re-signed after tampering (a trusted signer): GCM's tag catches it.
    let trusted = ForgeKey::ec();
    let sp = e.sp_trusting(&trusted);
    let assertion = forge::sign(&plain, &trusted, ECDSA_SHA256);
    let enc = EncSpec { tamper: true, ..AES256_GCM_OAEP11 };
    let r =
        forge::rebuild(&genuine, &assertion, &encryption_cert(), enc, &trusted, Some(ECDSA_SHA256));
    assert_invalid(
        sp.validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now()),
        "does not decrypt",
    );
}

/// Accepted and refused algorithms, on responses re-encrypted and re-signed by a trusted key.
#[tokio::test]
async fn algorithms() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, plain) = genuine(&e, &s).await;
    let ec = ForgeKey::ec();
    let rsa = ForgeKey::rsa();
    let check = |key: &ForgeKey, asig: forge::SigSpec, rsig: forge::SigSpec, enc: EncSpec| {
        let assertion = forge::sign(&plain, key, asig);
        let r = forge::rebuild(&genuine, &assertion, &encryption_cert(), enc, key, Some(rsig));
        e.sp_trusting(key).validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now())
    };
    let ok = |r: Result<ValidatedAssertion, ResponseError>| {
        assert_eq!(r.unwrap().person_identifier, NL_SUBSTANTIAL.person_identifier)
    };
    let oaep = AES256_GCM_OAEP11;
    ok(check(&ec, ECDSA_SHA256, ECDSA_SHA256, oaep));
    ok(check(&ec, forge::ECDSA_SHA512, forge::ECDSA_SHA512, oaep));
    ok(check(&ec, ECDSA_SHA256, ECDSA_SHA256, EncSpec { data: uris::AES128_GCM, ..oaep }));
    ok(check(&ec, ECDSA_SHA256, ECDSA_SHA256, EncSpec { data: uris::AES192_GCM, ..oaep }));
    // xmlenc11#rsa-oaep without MGF: MGF1-SHA-1 (the spec's default).
    ok(check(&ec, ECDSA_SHA256, ECDSA_SHA256, EncSpec { mgf: None, ..oaep }));
    // Legacy mgf1p with SHA-1 (DigestMethod given or not).
    let mgf1p = EncSpec { key: uris::RSA_OAEP_MGF1P, digest: Some(uris::SHA1), mgf: None, ..oaep };
    ok(check(&ec, ECDSA_SHA256, ECDSA_SHA256, mgf1p));
    ok(check(&ec, ECDSA_SHA256, ECDSA_SHA256, EncSpec { digest: None, ..mgf1p }));

    let cbc = EncSpec { data: "http://www.w3.org/2001/04/xmlenc#aes256-cbc", ..oaep };
    assert_invalid(check(&ec, ECDSA_SHA256, ECDSA_SHA256, cbc), "AES-CBC");
    let rsa15 = EncSpec { key: uris::RSA_1_5, digest: None, mgf: None, ..oaep };
    assert_invalid(check(&ec, ECDSA_SHA256, ECDSA_SHA256, rsa15), "rsa-1_5");
    let oaep_sha1 = EncSpec { digest: None, ..oaep };
    assert_invalid(check(&ec, ECDSA_SHA256, ECDSA_SHA256, oaep_sha1), "SHA-1");
    assert_invalid(check(&rsa, forge::RSA_SHA256, forge::RSA_SHA256, oaep), "PKCS#1");
    assert_invalid(check(&ec, forge::ECDSA_SHA1_DIGEST, ECDSA_SHA256, oaep), "SHA-1");
    assert_invalid(check(&ec, ECDSA_SHA256, forge::ECDSA_SHA1_DIGEST, oaep), "SHA-1");
    // RSASSA-PSS with SHA-256/384/512 (salt = hash length), on the assertion and the response.
    ok(check(&rsa, forge::PSS_SHA256, forge::PSS_SHA256, oaep));
    ok(check(&rsa, forge::PSS_SHA384, forge::PSS_SHA512, oaep));
    ok(check(&ec, forge::ECDSA_SHA384, forge::ECDSA_SHA384, oaep));
    // Explicit PSS parameters: accepted when they restate the method, refused otherwise.
    let params = |digest: &'static str, mgf: &'static str, salt: u32| -> &'static str {
        Box::leak(
            format!(
                "<pss:RSAPSSParams xmlns:pss=\"{pss}\"><ds:DigestMethod Algorithm=\"{digest}\"/>\
                 <pss:MaskGenerationFunction Algorithm=\"{mgf1}\"><ds:DigestMethod \
                 Algorithm=\"{mgf}\"/></pss:MaskGenerationFunction><pss:SaltLength>{salt}\
                 </pss:SaltLength><pss:TrailerField>1</pss:TrailerField></pss:RSAPSSParams>",
                pss = uris::PSS_NS,
                mgf1 = uris::MGF1,
            )
            .into_boxed_str(),
        )
    };
    let with = |params: &'static str| forge::SigSpec { params, ..forge::PSS_SHA256 };
    ok(check(&rsa, with(params(uris::SHA256, uris::SHA256, 32)), forge::PSS_SHA256, oaep));
    let differ = [
        params(uris::SHA256, uris::SHA256, 20),
        params(uris::SHA512, uris::SHA256, 32),
        params(uris::SHA256, uris::SHA1, 32),
    ];
    for p in differ {
        assert_invalid(check(&rsa, with(p), forge::PSS_SHA256, oaep), "differs from the method");
        assert_invalid(check(&rsa, forge::PSS_SHA256, with(p), oaep), "differs from the method");
    }
    // SHA-1 in the PSS method, and an RSA key for an ECDSA method (or the reverse).
    let sha1 = forge::sign(&plain, &rsa, forge::PSS_SHA256)
        .replace(uris::RSA_PSS_SHA256, "http://www.w3.org/2007/05/xmldsig-more#sha1-rsa-MGF1");
    let r =
        forge::rebuild(&genuine, &sha1, &encryption_cert(), oaep, &rsa, Some(forge::PSS_SHA256));
    let r =
        e.sp_trusting(&rsa).validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now());
    assert_invalid(r, "SHA-1");
    let assertion = forge::sign(&plain, &rsa, forge::PSS_SHA256);
    let r = forge::rebuild(
        &genuine,
        &assertion,
        &encryption_cert(),
        oaep,
        &rsa,
        Some(forge::PSS_SHA256),
    )
    .replace(uris::RSA_PSS_SHA256, uris::ECDSA_SHA256);
    let r =
        e.sp_trusting(&rsa).validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now());
    assert_invalid(r, "does not verify");
    // A PSS signature by a key the SP does not trust, its certificate in KeyInfo.
    let other = ForgeKey::rsa();
    let assertion = forge::sign(&plain, &other, forge::PSS_SHA256);
    let r = forge::rebuild(
        &genuine,
        &assertion,
        &encryption_cert(),
        oaep,
        &other,
        Some(forge::PSS_SHA256),
    );
    let r =
        e.sp_trusting(&rsa).validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now());
    assert_invalid(r, "does not verify");
    let assertion = forge::sign(&plain, &ec, ECDSA_SHA256);
    // A response that is not signed at all, even if its assertion is.
    let r = forge::rebuild(&genuine, &assertion, &encryption_cert(), oaep, &ec, None);
    let unsigned =
        e.sp_trusting(&ec).validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now());
    assert_invalid(unsigned, "not signed");
}

/// Attribute rules: exactly one value, full text, names in Latin script, formats.
#[tokio::test]
async fn attribute_rules() {
    let e = env(false).await;
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, plain) = genuine(&e, &s).await;
    let key = ForgeKey::ec();
    let sp = e.sp_trusting(&key);
    let check = |assertion: &str| {
        let signed = forge::sign(assertion, &key, ECDSA_SHA256);
        let r = forge::rebuild(
            &genuine,
            &signed,
            &encryption_cert(),
            AES256_GCM_OAEP11,
            &key,
            Some(ECDSA_SHA256),
        );
        sp.validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now())
    };
    let attr = |name: &str| {
        let doc = roxmltree::Document::parse(&plain).unwrap();
        let full = format!("{}{name}", uris::NATURAL_PERSON_PREFIX);
        let n = doc.descendants().find(|n| n.attribute("Name") == Some(full.as_str())).unwrap();
        plain[n.range()].to_string()
    };
    let value = |name: &str| {
        let a = attr(name);
        let start = a.find("<saml2:AttributeValue").unwrap();
        let end = a.rfind("</saml2:Attribute>").unwrap();
        a[start..end].to_string()
    };

    // Two PersonIdentifier values.
    let pid = attr("PersonIdentifier");
    let two = pid
        .replace("</saml2:Attribute>", &format!("{}</saml2:Attribute>", value("PersonIdentifier")));
    assert_invalid(check(&plain.replace(&pid, &two)), "2 values");
    // Missing DateOfBirth; malformed date; bad identifier; empty name.
    assert_invalid(check(&plain.replace(&attr("DateOfBirth"), "")), "DateOfBirth is missing");
    assert_invalid(
        check(&plain.replace(NL_SUBSTANTIAL.date_of_birth, "12/04/1985")),
        "DateOfBirth",
    );
    assert_invalid(check(&with_person_identifier(&plain, "0ad7c3f1")), "XX/YY");
    let family = value("CurrentFamilyName");
    let empty = family.replace(NL_SUBSTANTIAL.family_name, "  ");
    assert_invalid(check(&plain.replace(&family, &empty)), "empty");
    // A name in another script with its transliteration: the Latin one is taken.
    let greek = family.replace(NL_SUBSTANTIAL.family_name, "Παπαδόπουλος").replacen(
        "<saml2:AttributeValue",
        "<saml2:AttributeValue eidas-natural:LatinScript=\"false\"",
        1,
    );
    let both = plain.replace(&family, &format!("{greek}{family}"));
    assert_eq!(check(&both).unwrap().family_name, NL_SUBSTANTIAL.family_name);
    // Unknown level.
    let unknown = plain
        .replace(AssuranceLevel::Substantial.uri(), "http://eidas.europa.eu/LoA/NotNotified/low");
    assert_invalid(check(&unknown), "unknown level");
    // Whitespace around values is trimmed.
    let spaced =
        plain.replace(NL_SUBSTANTIAL.given_name, &format!("\n  {} ", NL_SUBSTANTIAL.given_name));
    assert_eq!(check(&spaced).unwrap().given_name, NL_SUBSTANTIAL.given_name);
    // Another Issuer on the assertion.
    let issuer = plain.replacen(e.node.entity_id(), "https://attacker.invalid/idp", 1);
    assert_invalid(check(&issuer), "Issuer");
    // No audience restriction at all.
    let ar = forge::element(&plain, SAML_NS, "AudienceRestriction");
    assert_invalid(check(&plain.replace(&ar, "")), "AudienceRestriction");
}

// ---------------------------------------------------------------------------------------------
// Metadata, keys, parameters

#[tokio::test]
async fn node_metadata() {
    let (_, node) = mock::start(node_config(false)).await.unwrap();
    let md = node.metadata_xml().await.unwrap();
    let idp = IdpTrust::from_metadata(&md).unwrap();
    assert_eq!(idp.entity_id, node.entity_id());
    assert_eq!(idp.sso_redirect.as_deref(), Some(node.sso_url().as_str()));
    assert_eq!(idp.sso_post.as_deref(), Some(node.sso_url().as_str()));
    assert_eq!(idp.signing_certs_der, vec![node.signing_cert_der()]);

    // Signed, but changed afterwards.
    let changed = md.replace(&node.sso_url(), "https://attacker.invalid/sso");
    assert!(matches!(IdpTrust::from_metadata(&changed), Err(SamlError::MetadataSignature(_))));
    // Without its signing certificate (and signature): refused.
    let unsigned = forge::strip_signature(&md);
    IdpTrust::from_metadata(&unsigned).unwrap();
    let kd = forge::element(&unsigned, super::xml::MD_NS, "KeyDescriptor");
    let no_cert = unsigned.replace(&kd, "");
    assert!(matches!(IdpTrust::from_metadata(&no_cert), Err(SamlError::NoSigningCertificate)));
    let enc_only = unsigned.replace(&kd, &kd.replace("use=\"signing\"", "use=\"encryption\""));
    assert!(matches!(IdpTrust::from_metadata(&enc_only), Err(SamlError::NoSigningCertificate)));
    // Re-signed by another key that KeyInfo names: accepted, the check proves integrity only
    // (the eIDAS trust anchor is not modelled) …
    let other = ForgeKey::ec();
    IdpTrust::from_metadata(&forge::sign(&unsigned, &other, ECDSA_SHA256)).unwrap();
    // RSASSA-PSS metadata signatures are verified; RSA PKCS#1 v1.5 ones are refused.
    let rsa = ForgeKey::rsa();
    IdpTrust::from_metadata(&forge::sign(&unsigned, &rsa, forge::PSS_SHA512)).unwrap();
    let pkcs1 = IdpTrust::from_metadata(&forge::sign(&unsigned, &rsa, forge::RSA_SHA256));
    assert!(matches!(pkcs1, Err(SamlError::MetadataSignature(m)) if m.contains("PKCS#1")));
    // … but not when KeyInfo names a certificate that did not sign it.
    let resigned = forge::sign(&unsigned, &other, ECDSA_SHA256);
    let lying = resigned.replace(&other.cert_b64(), &STANDARD.encode(node.signing_cert_der()));
    assert!(matches!(IdpTrust::from_metadata(&lying), Err(SamlError::MetadataSignature(_))));
    // KeyInfo naming another certificate while the node's key signed: the node's own signing
    // certificate verifies it.
    let wrong = md.replacen(
        &forge::element(&md, DSIG_NS, "X509Certificate"),
        &format!("<ds:X509Certificate>{}</ds:X509Certificate>", other.cert_b64()),
        1,
    );
    IdpTrust::from_metadata(&wrong).unwrap();
    // Comments (outside the signed element, and in an unsigned copy) are tolerated.
    IdpTrust::from_metadata(&format!("<!-- fetched by hand -->\n{md}")).unwrap();
    let commented =
        unsigned.replacen("<md:IDPSSODescriptor", "<!-- node --><md:IDPSSODescriptor", 1);
    assert_eq!(IdpTrust::from_metadata(&commented).unwrap().entity_id, node.entity_id());
    // DTD.
    let dtd = format!("<!DOCTYPE x [<!ENTITY e \"e\">]>{unsigned}");
    assert!(matches!(IdpTrust::from_metadata(&dtd), Err(SamlError::Metadata(_))));
    // An SP built on an empty trust refuses to start.
    let empty = IdpTrust { signing_certs_der: Vec::new(), ..idp };
    assert!(matches!(
        ServiceProvider::new(ENTITY, ACS, keys(), empty),
        Err(SamlError::NoSigningCertificate)
    ));
}

#[test]
fn keys_are_checked() {
    let k = keys();
    let idp = IdpTrust {
        entity_id: "https://node.test/metadata".into(),
        sso_redirect: Some("https://node.test/sso".into()),
        sso_post: None,
        signing_certs_der: vec![ForgeKey::ec().cert_der()],
    };
    let sp = ServiceProvider::new(ENTITY, ACS, k, idp.clone()).unwrap();
    assert_eq!(sp.entity_id(), ENTITY);
    assert_eq!(sp.idp().entity_id, "https://node.test/metadata");
    let json = serde_json::to_string(k).unwrap();
    let back: SpKeys = serde_json::from_str(&json).unwrap();
    ServiceProvider::new(ENTITY, ACS, &back, idp.clone()).unwrap();
    assert!(!format!("{k:?}").contains("PRIVATE"));

    let swapped = SpKeys {
        signing_key_pem: k.encryption_key_pem.clone(),
        signing_cert_pem: k.encryption_cert_pem.clone(),
        ..k.clone()
    };
    assert!(matches!(
        ServiceProvider::new(ENTITY, ACS, &swapped, idp.clone()),
        Err(SamlError::Key(_))
    ));
    let mismatched = SpKeys {
        signing_cert_pem: String::from_utf8(ForgeKey::ec().cert.to_pem().unwrap()).unwrap(),
        ..k.clone()
    };
    assert!(matches!(
        ServiceProvider::new(ENTITY, ACS, &mismatched, idp.clone()),
        Err(SamlError::Key(_))
    ));
    let garbage = SpKeys { encryption_key_pem: "nope".into(), ..k.clone() };
    assert!(matches!(
        ServiceProvider::new(ENTITY, ACS, &garbage, idp.clone()),
        Err(SamlError::Key(_))
    ));
    assert!(ServiceProvider::new(ENTITY, "not a url", k, idp.clone()).is_err());

    // Request parameters.
    let good = spec(AssuranceLevel::Low);
    assert!(matches!(sp.post_request_at(&good, Utc::now()), Err(SamlError::NoEndpoint("POST"))));
    sp.redirect_request_at(&good, "", Utc::now()).unwrap();
    let bad_country = AuthnRequestSpec { country: "nl".into(), ..good.clone() };
    assert!(matches!(
        sp.redirect_request_at(&bad_country, "", Utc::now()),
        Err(SamlError::InvalidParameter(_))
    ));
    let bad_id = AuthnRequestSpec { id: "1234".into(), ..good.clone() };
    assert!(matches!(
        sp.redirect_request_at(&bad_id, "", Utc::now()),
        Err(SamlError::InvalidParameter(_))
    ));
    assert!(sp.redirect_request_at(&good, &"x".repeat(81), Utc::now()).is_err());
    let id = new_request_id();
    assert!(id.starts_with('_') && id.len() == 33 && id != new_request_id());

    // Shared between threads as `Arc<ServiceProvider>`.
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ServiceProvider>();
    send_sync::<ResponseError>();
    send_sync::<SamlError>();
}

/// Our metadata: well-formed, schema order, signature verifies with our certificate, and (when
/// xmllint is installed) valid against the SAML metadata schema; our POST AuthnRequest is valid
/// against the protocol schema.
#[tokio::test]
async fn sp_metadata_and_requests_are_valid() {
    let e = env(false).await;
    let md = e.sp.metadata_xml(Utc::now()).unwrap();
    let doc = roxmltree::Document::parse(&md).unwrap();
    let root = doc.root_element();
    let md_ns = super::xml::MD_NS;
    assert!(root.has_tag_name((md_ns, "EntityDescriptor")));
    assert_eq!(root.attribute("entityID"), Some(ENTITY));
    let valid_until = super::xml::parse_instant("", root.attribute("validUntil").unwrap()).unwrap();
    assert!(((valid_until - Utc::now()).num_minutes() - 24 * 60).abs() <= 1);
    let order: Vec<&str> =
        root.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(order, ["Signature", "Extensions", "SPSSODescriptor"]);
    let spsso = root.children().find(|n| n.has_tag_name((md_ns, "SPSSODescriptor"))).unwrap();
    assert_eq!(spsso.attribute("AuthnRequestsSigned"), Some("true"));
    assert_eq!(spsso.attribute("WantAssertionsSigned"), Some("true"));
    let inner: Vec<String> = spsso
        .children()
        .filter(|n| n.is_element())
        .map(|n| {
            format!(
                "{}{}",
                n.tag_name().name(),
                n.attribute("use").map(|u| format!(":{u}")).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        inner,
        [
            "KeyDescriptor:signing",
            "KeyDescriptor:encryption",
            "KeyDescriptor:encryption",
            "NameIDFormat",
            "NameIDFormat",
            "AssertionConsumerService"
        ]
    );
    assert!(md.contains(&format!("Location=\"{ACS}\"")));
    assert!(md.contains(">public</eidas:SPType>"));
    for uri in [uris::AES256_GCM, uris::RSA_OAEP_11, uris::MGF1_SHA256] {
        assert!(md.contains(uri), "{uri}");
    }

    // The signature verifies with our signing certificate (and the profile we demand).
    let cert = X509::from_pem(keys().signing_cert_pem.as_bytes()).unwrap().to_der().unwrap();
    let certs = dsig::TrustedSigners::from_der(&[cert]).unwrap();
    let signed = dsig::verify_root("metadata", &md, &certs).unwrap();
    assert!(signed.contains("SPSSODescriptor"));
    assert!(dsig::verify_root("metadata", &md.replace(ACS, "https://x.test/acs"), &certs).is_err());
    // What the node reads from it.
    let parsed = mock::parse_sp_metadata(&md).unwrap();
    assert_eq!(parsed.entity_id, ENTITY);
    assert_eq!(parsed.acs_urls, [ACS]);
    assert_eq!(parsed.signing_certs.len(), 1);
    assert_eq!(parsed.encryption_certs.len(), 2, "the RSA and the EC key");

    let request = e.request_xml(&spec(AssuranceLevel::Substantial));
    xmllint_validate("metadata", &md);
    // The schema check is real: the same metadata with the ACS before the NameIDFormats fails.
    let acs = forge::element(&md, md_ns, "AssertionConsumerService");
    let misordered =
        md.replace(&acs, "").replacen("<md:NameIDFormat>", &format!("{acs}<md:NameIDFormat>"), 1);
    if let Some(verdict) = xmllint(&misordered) {
        assert!(verdict.unwrap_err().contains("AssertionConsumerService"));
    }
    xmllint_validate("AuthnRequest", &request);
    let sp_type = ServiceProvider::new(ENTITY, ACS, keys(), e.sp.idp().clone())
        .unwrap()
        .with_sp_type_in_request(true);
    xmllint_validate(
        "AuthnRequest with SPType",
        &e.request_xml_of(&sp_type, &spec(AssuranceLevel::High)),
    );
}

impl Env {
    fn request_xml_of(&self, sp: &ServiceProvider, spec: &AuthnRequestSpec) -> String {
        decode(&sp.post_request_at(spec, Utc::now()).unwrap().1)
    }
}

/// Validates `xml` against the SAML 2.0 metadata/protocol schemas with the eIDAS and
/// algorithm-support extensions (`src/saml/xsd/`), if xmllint is installed (Debian package
/// libxml2-utils); the schemas are local, nothing is fetched.
fn xmllint_validate(what: &str, xml: &str) {
    match xmllint(xml) {
        None => eprintln!("xmllint is not installed: schema validation of the {what} skipped"),
        Some(Ok(())) => {}
        Some(Err(e)) => panic!("{what} is not schema-valid:\n{e}\n{xml}"),
    }
}

/// `None` if xmllint is not installed, else its verdict.
fn xmllint(xml: &str) -> Option<Result<(), String>> {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/src/saml/xsd/saml-eidas.xsd");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, xml.as_bytes()).unwrap();
    let out = std::process::Command::new("xmllint")
        .args(["--nonet", "--noout", "--schema", schema])
        .arg(file.path())
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("xmllint: {e}"),
        Ok(out) if out.status.success() => Some(Ok(())),
        Ok(out) => Some(Err(String::from_utf8_lossy(&out.stderr).into_owned())),
    }
}

// ---------------------------------------------------------------------------------------------
// Node kinds: RSASSA-PSS signatures and ECDH-ES key agreement

/// One node, two kinds of country as CEF nodes differ: NL signs with ECDSA and agrees keys with
/// ECDH-ES (to our EC key), DE signs with RSASSA-PSS and transports keys with RSA-OAEP (to our
/// RSA key). The node learns both of our keys from the metadata we publish.
#[tokio::test]
async fn node_kinds_per_country() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let md_url = format!("http://{}/metadata", listener.local_addr().unwrap());
    let (_, node) = mock::start(EidasNodeConfig {
        sp_metadata_url: Some(md_url.clone()),
        countries: vec![
            mock::CountryCrypto {
                country: "NL".into(),
                signing: mock::NodeSigning::Ecdsa,
                key_transport: mock::KeyTransport::EcdhEs,
            },
            mock::CountryCrypto {
                country: "DE".into(),
                signing: mock::NodeSigning::RsaPss,
                key_transport: mock::KeyTransport::RsaOaep,
            },
        ],
        ..EidasNodeConfig::default()
    })
    .await
    .unwrap();
    let idp = IdpTrust::from_metadata(&node.metadata_xml().await.unwrap()).unwrap();
    assert_eq!(idp.signing_certs_der.len(), 2, "one signing certificate per kind");
    let sp = std::sync::Arc::new(ServiceProvider::new(&md_url, ACS, keys(), idp).unwrap());
    let served = sp.clone();
    let app = axum::Router::new().route(
        "/metadata",
        axum::routing::get(move || {
            let sp = served.clone();
            async move { sp.metadata_xml(Utc::now()).unwrap() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    for (citizen, signature, transport) in [
        (&NL_SUBSTANTIAL, uris::ECDSA_SHA256, uris::ECDH_ES),
        (&mock::DE_SUBSTANTIAL, uris::RSA_PSS_SHA256, uris::RSA_OAEP_11),
    ] {
        let s = AuthnRequestSpec { country: citizen.country.into(), ..spec(AssuranceLevel::Low) };
        let (action, saml_request) = sp.post_request_at(&s, Utc::now()).unwrap();
        let form = [("SAMLRequest", saml_request.as_str()), ("country", citizen.country)];
        let resp = http().post(&action).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{:?}", node.rejected_requests());
        let b64 = node.respond(&s.id, citizen, Outcome::Success).await.unwrap();
        let xml = decode(&b64);
        assert!(xml.contains(signature) && xml.contains(transport), "{}: {xml}", citizen.key);
        let a = sp.validate_response(&b64, std::slice::from_ref(&s.id), Utc::now()).unwrap();
        check_citizen(&a, citizen, &s, &node);
    }
}

/// ECDH-ES: the genuine path, then every hostile variant refused with a clear message.
#[tokio::test]
async fn ecdh_es_hostile() {
    let (_, node) = mock::start(EidasNodeConfig {
        sp_encryption_cert_pem: Some(keys().ec_encryption_cert_pem.clone()),
        key_transport: mock::KeyTransport::EcdhEs,
        ..node_config(false)
    })
    .await
    .unwrap();
    let idp = IdpTrust::from_metadata(&node.metadata_xml().await.unwrap()).unwrap();
    let e = Env { sp: ServiceProvider::new(ENTITY, ACS, keys(), idp).unwrap(), node };
    let s = spec(AssuranceLevel::Substantial);
    let (genuine, plain) = genuine(&e, &s).await;
    assert!(genuine.contains(uris::ECDH_ES) && genuine.contains(uris::KW_AES256));
    check_citizen(&e.validate(&b64(&genuine), &s).unwrap(), &NL_SUBSTANTIAL, &s, &e.node);

    let key = ForgeKey::ec();
    let sp = e.sp_trusting(&key);
    let assertion = forge::sign(&plain, &key, ECDSA_SHA256);
    let data = forge::encrypt_ecdh(&assertion, &ec_encryption_cert());
    let check = |data: &str| {
        let r = forge::rebuild_with(&genuine, data, &key, Some(ECDSA_SHA256));
        sp.validate_response(&b64(&r), std::slice::from_ref(&s.id), Utc::now())
    };
    assert_eq!(check(&data).unwrap().person_identifier, NL_SUBSTANTIAL.person_identifier);
    let pk =
        |d: &str, f: &dyn Fn(&mut Vec<u8>)| forge::edit_b64(d, uris::DSIG11_NS, "PublicKey", f);

    // A point not on the curve (invalid-curve attack): Y changed.
    let off_curve = pk(&data, &|p| *p.last_mut().unwrap() ^= 1);
    assert_invalid(check(&off_curve), "not a valid point");
    // A point of another curve (P-384) under our curve's name, and under its own name.
    let p384 = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
    let other = openssl::ec::EcKey::generate(&p384).unwrap();
    let mut ctx = openssl::bn::BigNumContext::new().unwrap();
    let other_point = other
        .public_key()
        .to_bytes(&p384, openssl::ec::PointConversionForm::UNCOMPRESSED, &mut ctx)
        .unwrap();
    let other_curve = pk(&data, &|p| *p = other_point.clone());
    assert_invalid(check(&other_curve), "not a valid point");
    let named_p384 = other_curve.replace(uris::P256_URN, uris::P384_URN);
    assert_invalid(check(&named_p384), "is not the SP key's curve");
    // The identity (point at infinity), and a point of order 2 would need y = 0: (x, 0).
    assert_invalid(check(&pk(&data, &|p| *p = vec![0])), "not a valid point");
    let order_two = pk(&data, &|p| p[33..].iter_mut().for_each(|b| *b = 0));
    assert_invalid(check(&order_two), "not a valid point");
    // Explicit curve parameters.
    let explicit = data.replace(
        "<dsig11:NamedCurve",
        &format!("<dsig11:ECParameters xmlns:dsig11=\"{}\"/><dsig11:NamedCurve", uris::DSIG11_NS),
    );
    assert_invalid(check(&explicit), "explicit curve parameters");
    // A wrapped key whose integrity check fails.
    let doc = roxmltree::Document::parse(&data).unwrap();
    let ek = doc.descendants().find(|n| n.has_tag_name((XENC_NS, "EncryptedKey"))).unwrap();
    let wrapped = ek.descendants().find(|n| n.has_tag_name((XENC_NS, "CipherValue"))).unwrap();
    let r = wrapped.first_child().unwrap().range();
    let mut bytes = STANDARD.decode(&data[r.clone()]).unwrap();
    bytes[3] ^= 0x80;
    let bad_wrap = format!("{}{}{}", &data[..r.start], STANDARD.encode(bytes), &data[r.end..]);
    assert_invalid(check(&bad_wrap), "integrity check");
    // ConcatKDF parameters changed (another key derived): the key wrap catches it too.
    let other_party = data.replacen("PartyUInfo=\"00", "PartyUInfo=\"0001", 1);
    assert_invalid(check(&other_party), "integrity check");
    // Unknown KDF, SHA-1 and unknown digests, key agreement other than ECDH-ES.
    let pbkdf2 = data.replace(uris::CONCAT_KDF, "http://www.w3.org/2009/xmlenc11#pbkdf2");
    assert_invalid(check(&pbkdf2), "ConcatKDF only");
    let kdf_digest = |d: &str| {
        data.replace(
            &format!("Algorithm=\"{}\"/></xenc11:ConcatKDFParams>", uris::SHA256),
            &format!("Algorithm=\"{d}\"/></xenc11:ConcatKDFParams>"),
        )
    };
    assert_invalid(check(&kdf_digest(uris::SHA1)), "SHA-1");
    assert_invalid(
        check(&kdf_digest("http://www.w3.org/2001/04/xmldsig-more#md5")),
        "is not accepted",
    );
    let dh = data.replace(uris::ECDH_ES, "http://www.w3.org/2009/xmlenc11#dh-es");
    assert_invalid(check(&dh), "ECDH-ES only");
    // A padded bit string in the KDF parameters.
    let padded = data.replacen("AlgorithmID=\"00", "AlgorithmID=\"03", 1);
    assert_invalid(check(&padded), "whole-octet");
}
