//! The mock eIDAS node against a test SP that does what a real SP must: signs its requests
//! (both bindings), decrypts the assertion itself (RSA-OAEP-SHA256 + AES-256-GCM with OpenSSL)
//! and verifies the Response and Assertion signatures with samael/xmlsec against the node's
//! metadata certificate.

use std::io::Write as _;
use std::str::FromStr as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use idp_mocks::eidas::{
    self, start, uris, Citizen, EidasNodeConfig, Loa, MockEidasNode, Outcome, Tamper,
    DE_SUBSTANTIAL, FR_SUBSTANTIAL, LU_HIGH, NL_HIGH, NL_LOW, NL_SUBSTANTIAL,
};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider as _, ReduceMode,
};
use samael::metadata::EntityDescriptor;
use samael::service_provider::ServiceProvider;

const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

// ---------------------------------------------------------------------------------------------
// A test SP

fn self_signed(key: &PKey<Private>, cn: &str) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand::random::<u32>() >> 1).unwrap().to_asn1_integer().unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    let nb = Asn1Time::days_from_now(0).unwrap();
    let na = Asn1Time::days_from_now(365).unwrap();
    b.set_not_before(&nb).unwrap();
    b.set_not_after(&na).unwrap();
    b.sign(key, MessageDigest::sha256()).unwrap();
    b.build()
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

fn pem(cert: &X509) -> String {
    String::from_utf8(cert.to_pem().unwrap()).unwrap()
}

fn b64_cert(cert: &X509) -> String {
    STANDARD.encode(cert.to_der().unwrap())
}

fn new_id() -> String {
    format!("_{:032x}", rand::random::<u128>())
}

fn now_instant() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

struct TestSp {
    entity_id: String,
    acs: String,
    sign_key: PKey<Private>,
    sign_cert: X509,
    enc_key: PKey<Private>,
    enc_cert: X509,
}

/// Options of one AuthnRequest.
struct Req<'a> {
    level: &'a str,
    comparison: &'a str,
    acs_in_request: bool,
    name_id_format: &'a str,
}

impl Default for Req<'_> {
    fn default() -> Self {
        Req {
            level: "http://eidas.europa.eu/LoA/substantial",
            comparison: "minimum",
            acs_in_request: true,
            name_id_format: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        }
    }
}

impl TestSp {
    fn new(entity_id: &str, acs: &str, rsa_signing: bool) -> TestSp {
        let sign_key = if rsa_signing { rsa_key(3072) } else { ec_key() };
        let sign_cert = self_signed(&sign_key, "test SP signing");
        let enc_key = rsa_key(3072);
        let enc_cert = self_signed(&enc_key, "test SP encryption");
        TestSp {
            entity_id: entity_id.into(),
            acs: acs.into(),
            sign_key,
            sign_cert,
            enc_key,
            enc_cert,
        }
    }

    fn config(&self) -> EidasNodeConfig {
        EidasNodeConfig {
            sp_signing_cert_pem: Some(pem(&self.sign_cert)),
            sp_encryption_cert_pem: Some(pem(&self.enc_cert)),
            ..EidasNodeConfig::default()
        }
    }

    fn metadata(&self) -> String {
        format!(
            r#"<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID="{e}">
  <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{s}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#,
            e = self.entity_id,
            s = b64_cert(&self.sign_cert),
            c = b64_cert(&self.enc_cert),
            acs = self.acs,
        )
    }

    /// An AuthnRequest; `sig` is inserted after the Issuer (a signature template or nothing).
    fn request_xml(&self, id: &str, node: &MockEidasNode, r: &Req<'_>, sig: &str) -> String {
        let acs = if r.acs_in_request {
            format!(
                " AssertionConsumerServiceURL=\"{}\" \
                 ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"",
                self.acs
            )
        } else {
            String::new()
        };
        let attrs: String =
            ["PersonIdentifier", "CurrentFamilyName", "CurrentGivenName", "DateOfBirth"]
                .iter()
                .map(|a| {
                    format!(
                        "<eidas:RequestedAttribute FriendlyName=\"{a}\" isRequired=\"true\" \
                     Name=\"http://eidas.europa.eu/attributes/naturalperson/{a}\" \
                     NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\"/>"
                    )
                })
                .collect();
        format!(
            "<saml2p:AuthnRequest xmlns:saml2p=\"{SAMLP}\" xmlns:saml2=\"{SAML}\" \
             xmlns:eidas=\"http://eidas.europa.eu/saml-extensions\" ID=\"{id}\" Version=\"2.0\" \
             IssueInstant=\"{now}\" Destination=\"{dest}\" ForceAuthn=\"true\" IsPassive=\"false\" \
             ProviderName=\"CoZo test SP\"{acs}>\
             <saml2:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\">{issuer}</saml2:Issuer>\
             {sig}<saml2p:Extensions><eidas:SPType>public</eidas:SPType>\
             <eidas:RequestedAttributes>{attrs}</eidas:RequestedAttributes></saml2p:Extensions>\
             <saml2p:NameIDPolicy AllowCreate=\"true\" Format=\"{nif}\"/>\
             <saml2p:RequestedAuthnContext Comparison=\"{cmp}\">\
             <saml2:AuthnContextClassRef>{level}</saml2:AuthnContextClassRef>\
             </saml2p:RequestedAuthnContext></saml2p:AuthnRequest>",
            now = now_instant(),
            dest = node.sso_url(),
            issuer = self.entity_id,
            nif = r.name_id_format,
            cmp = r.comparison,
            level = r.level,
        )
    }

    fn xml_sig_alg(&self) -> &'static str {
        if self.sign_key.rsa().is_ok() {
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        } else {
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        }
    }

    /// A signed AuthnRequest for the HTTP-POST binding (base64).
    fn post_request(&self, id: &str, node: &MockEidasNode, r: &Req<'_>) -> String {
        let template = format!(
            "<ds:Signature xmlns:ds=\"{DS}\"><ds:SignedInfo>\
             <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
             <ds:SignatureMethod Algorithm=\"{alg}\"/><ds:Reference URI=\"#{id}\"><ds:Transforms>\
             <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
             <ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
             <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
             <ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>\
             <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate>\
             </ds:X509Data></ds:KeyInfo></ds:Signature>",
            alg = self.xml_sig_alg(),
            cert = b64_cert(&self.sign_cert),
        );
        let xml = self.request_xml(id, node, r, &template);
        let signed = Crypto::sign_xml(&xml, &self.sign_key.private_key_to_der().unwrap()).unwrap();
        STANDARD.encode(signed)
    }

    /// The query string of a signed HTTP-Redirect AuthnRequest (plus `extra` unsigned pairs).
    fn redirect_query(
        &self,
        xml: &str,
        relay_state: Option<&str>,
        sig_alg: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(xml.as_bytes()).unwrap();
        let deflated = STANDARD.encode(enc.finish().unwrap());
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("SAMLRequest", &deflated);
        if let Some(r) = relay_state {
            q.append_pair("RelayState", r);
        }
        q.append_pair("SigAlg", sig_alg);
        let signed = q.finish();
        let md = if sig_alg.contains("sha512") {
            MessageDigest::sha512()
        } else {
            MessageDigest::sha256()
        };
        let mut signer = Signer::new(md, &self.sign_key).unwrap();
        if sig_alg.contains("rsa-MGF1") {
            signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
            signer.set_rsa_mgf1_md(md).unwrap();
        }
        signer.update(signed.as_bytes()).unwrap();
        let sig = STANDARD.encode(signer.sign_to_vec().unwrap());
        let mut tail = url::form_urlencoded::Serializer::new(String::new());
        tail.append_pair("Signature", &sig);
        for (k, v) in extra {
            tail.append_pair(k, v);
        }
        format!("{signed}&{}", tail.finish())
    }

    fn redirect_alg(&self) -> &'static str {
        self.xml_sig_alg()
    }

    /// samael as the SP: the node's metadata as IdP metadata, ECDSA-SHA256 only.
    fn samael_sp(&self, node_metadata: &str) -> ServiceProvider {
        ServiceProvider {
            entity_id: Some(self.entity_id.clone()),
            acs_url: Some(self.acs.clone()),
            idp_metadata: EntityDescriptor::from_str(node_metadata).unwrap(),
            allowed_signature_algorithms: Some(vec![AllowedSignatureAlgorithm::EcdsaSha256]),
            ..ServiceProvider::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading responses as an SP

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Verifies the enveloped signature of `xml` with the node certificate; returns what it covers.
fn verify_sig(xml: &str, cert_der: &[u8]) -> Result<String, String> {
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &[CertificateDer::from(cert_der.to_vec())],
        ReduceMode::PreDigest,
        Some(&[AllowedSignatureAlgorithm::EcdsaSha256]),
    )
    .map_err(|e| e.to_string())
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, ns: &str, name: &str) -> roxmltree::Node<'a, 'i> {
    n.children()
        .find(|c| c.has_tag_name((ns, name)))
        .unwrap_or_else(|| panic!("no {name} in {:?}", n.tag_name()))
}

fn find<'a, 'i>(n: roxmltree::Node<'a, 'i>, ns: &str, name: &str) -> roxmltree::Node<'a, 'i> {
    n.descendants()
        .find(|c| c.has_tag_name((ns, name)))
        .unwrap_or_else(|| panic!("no {name} below {:?}", n.tag_name()))
}

/// What the test learned about the encryption.
#[derive(Debug)]
struct Encryption {
    data_alg: String,
    key_alg: String,
    digest: Option<String>,
    mgf: Option<String>,
}

/// Decrypts the `EncryptedAssertion` of a response with the SP's key, like an SP would.
fn decrypt(response_xml: &str, key: &PKey<Private>) -> (String, Encryption) {
    let doc = roxmltree::Document::parse(response_xml).unwrap();
    let ea = find(doc.root_element(), SAML, "EncryptedAssertion");
    let ed = child(ea, XENC, "EncryptedData");
    assert_eq!(ed.attribute("Type"), Some("http://www.w3.org/2001/04/xmlenc#Element"));
    let data_alg = child(ed, XENC, "EncryptionMethod").attribute("Algorithm").unwrap().to_string();
    let ek = child(child(ed, DS, "KeyInfo"), XENC, "EncryptedKey");
    let em = child(ek, XENC, "EncryptionMethod");
    let key_alg = em.attribute("Algorithm").unwrap().to_string();
    let digest = em
        .children()
        .find(|c| c.has_tag_name((DS, "DigestMethod")))
        .and_then(|c| c.attribute("Algorithm"))
        .map(str::to_string);
    let mgf = em
        .children()
        .find(|c| c.has_tag_name((XENC11, "MGF")))
        .and_then(|c| c.attribute("Algorithm"))
        .map(str::to_string);
    let wrapped = STANDARD
        .decode(find(child(ek, XENC, "CipherData"), XENC, "CipherValue").text().unwrap().trim())
        .unwrap();
    let mut ctx = PkeyCtx::new(key).unwrap();
    ctx.decrypt_init().unwrap();
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
    if key_alg == uris::RSA_OAEP_11 {
        assert_eq!(mgf.as_deref(), Some(uris::MGF1_SHA256));
        assert_eq!(digest.as_deref(), Some(uris::SHA256_DIGEST));
        ctx.set_rsa_oaep_md(Md::sha256()).unwrap();
        ctx.set_rsa_mgf1_md(Md::sha256()).unwrap();
    } else {
        assert_eq!(key_alg, uris::RSA_OAEP_MGF1P);
    }
    let mut cek = Vec::new();
    ctx.decrypt_to_vec(&wrapped, &mut cek).unwrap();
    assert_eq!(cek.len(), 32, "AES-256 key");
    let value = STANDARD
        .decode(
            find(
                ed.children().find(|c| c.has_tag_name((XENC, "CipherData"))).unwrap(),
                XENC,
                "CipherValue",
            )
            .text()
            .unwrap()
            .trim(),
        )
        .unwrap();
    assert_eq!(data_alg, uris::AES256_GCM);
    let (iv, rest) = value.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let plain = openssl::symm::decrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        &cek,
        Some(iv),
        &[],
        ct,
        tag,
    )
    .unwrap();
    (String::from_utf8(plain).unwrap(), Encryption { data_alg, key_alg, digest, mgf })
}

async fn node_metadata(base: &str) -> String {
    let resp = http().get(format!("{base}/metadata")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().contains("samlmetadata+xml"));
    resp.text().await.unwrap()
}

/// The form fields of the auto-submitting response page.
fn response_form(page: &str, acs: &str) -> (String, Option<String>) {
    assert!(page.contains(&format!("action=\"{acs}\"")), "{page}");
    assert!(page.contains("data-autosubmit"));
    assert!(page.contains("<script src=\"/autosubmit.js\" defer></script>"));
    assert!(!page.contains("<script>"), "no inline script");
    assert!(page.contains("<button type=\"submit\">Continue</button>"));
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        page.find(&marker).map(|i| {
            let rest = &page[i + marker.len()..];
            html_unescape(&rest[..rest.find('"').unwrap()])
        })
    };
    (field("SAMLResponse").expect("SAMLResponse"), field("RelayState"))
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Checks a successful response in full; returns the decrypted assertion XML.
#[allow(clippy::too_many_arguments)]
fn check_success(
    sp: &TestSp,
    node: &MockEidasNode,
    node_md: &str,
    b64: &str,
    request_id: &str,
    citizen: &Citizen,
    level: Loa,
    name_id_format: &str,
) -> String {
    let xml = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
    let cert = node.signing_cert_der();

    // Response signature: covers the whole Response, by the metadata certificate.
    let covered = verify_sig(&xml, &cert).expect("Response signature");
    let cdoc = roxmltree::Document::parse(&covered).unwrap();
    assert!(cdoc.root_element().has_tag_name((SAMLP, "Response")));
    assert!(cdoc.descendants().any(|n| n.has_tag_name((SAML, "EncryptedAssertion"))));

    let doc = roxmltree::Document::parse(&xml).unwrap();
    let r = doc.root_element();
    assert!(r.has_tag_name((SAMLP, "Response")));
    assert_eq!(r.attribute("Version"), Some("2.0"));
    assert_eq!(r.attribute("Destination"), Some(sp.acs.as_str()));
    assert_eq!(r.attribute("InResponseTo"), Some(request_id));
    let rid = r.attribute("ID").unwrap();
    assert!(rid.starts_with('_') && rid.len() == 33);
    let issued =
        chrono::DateTime::parse_from_rfc3339(r.attribute("IssueInstant").unwrap()).unwrap();
    assert!((chrono::Utc::now() - issued.with_timezone(&chrono::Utc)).num_seconds().abs() < 30);
    let issuer = child(r, SAML, "Issuer");
    assert_eq!(issuer.text(), Some(node.entity_id()));
    assert_eq!(issuer.attribute("Format"), Some(uris::ENTITY_FORMAT));
    // Signature: right after the Issuer, ECDSA-SHA256, SHA-256 digest, exc-c14n.
    let sig = issuer.next_sibling_element().unwrap();
    assert!(sig.has_tag_name((DS, "Signature")));
    check_signature_shape(sig, rid);
    let status = child(r, SAMLP, "Status");
    assert_eq!(child(status, SAMLP, "StatusCode").attribute("Value"), Some(uris::STATUS_SUCCESS));
    assert!(r.children().all(|c| !c.has_tag_name((SAML, "Assertion"))), "no clear assertion");

    // Decrypt.
    let (assertion, enc) = decrypt(&xml, &sp.enc_key);
    assert_eq!(enc.data_alg, uris::AES256_GCM);
    let _ = (&enc.key_alg, &enc.digest, &enc.mgf);

    // Assertion signature, alone, by the metadata certificate; samael checks it too.
    let covered = verify_sig(&assertion, &cert).expect("Assertion signature");
    assert!(roxmltree::Document::parse(&covered)
        .unwrap()
        .root_element()
        .has_tag_name((SAML, "Assertion")));
    let samael_sp = sp.samael_sp(node_md);
    for mode in
        [ReduceMode::PreDigest, ReduceMode::ValidateAndMarkNoAncestors, ReduceMode::ValidateAndMark]
    {
        let a = samael_sp
            .parse_xml_response_with_mode(&assertion, Some(&[request_id]), mode)
            .unwrap_or_else(|e| panic!("samael {mode:?}: {e:?}"));
        assert_eq!(a.issuer.value.as_deref(), Some(node.entity_id()));
    }

    let adoc = roxmltree::Document::parse(&assertion).unwrap();
    let a = adoc.root_element();
    assert!(a.has_tag_name((SAML, "Assertion")));
    assert_eq!(a.attribute("Version"), Some("2.0"));
    let aid = a.attribute("ID").unwrap();
    assert_ne!(aid, rid);
    let aissuer = child(a, SAML, "Issuer");
    assert_eq!(aissuer.text(), Some(node.entity_id()));
    assert_eq!(aissuer.attribute("Format"), Some(uris::ENTITY_FORMAT));
    let asig = aissuer.next_sibling_element().unwrap();
    assert!(asig.has_tag_name((DS, "Signature")));
    check_signature_shape(asig, aid);

    let subject = child(a, SAML, "Subject");
    let name_id = child(subject, SAML, "NameID");
    assert_eq!(name_id.attribute("Format"), Some(name_id_format));
    assert!(!name_id.text().unwrap().is_empty());
    let sc = child(subject, SAML, "SubjectConfirmation");
    assert_eq!(sc.attribute("Method"), Some(uris::BEARER));
    let scd = child(sc, SAML, "SubjectConfirmationData");
    assert_eq!(scd.attribute("Recipient"), Some(sp.acs.as_str()));
    assert_eq!(scd.attribute("InResponseTo"), Some(request_id));
    let noa = chrono::DateTime::parse_from_rfc3339(scd.attribute("NotOnOrAfter").unwrap()).unwrap();
    let left = (noa.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!((250..=300).contains(&left), "NotOnOrAfter in {left} s");

    let cond = child(a, SAML, "Conditions");
    let nb = chrono::DateTime::parse_from_rfc3339(cond.attribute("NotBefore").unwrap()).unwrap();
    assert!(nb.with_timezone(&chrono::Utc) <= chrono::Utc::now());
    assert!(cond.attribute("NotOnOrAfter").is_some());
    let aud = find(child(cond, SAML, "AudienceRestriction"), SAML, "Audience");
    assert_eq!(aud.text(), Some(sp.entity_id.as_str()));

    let authn = child(a, SAML, "AuthnStatement");
    assert!(authn.attribute("AuthnInstant").is_some());
    assert_eq!(find(authn, SAML, "AuthnContextClassRef").text(), Some(level.uri()));

    let stmt = child(a, SAML, "AttributeStatement");
    let attr = |name: &str, friendly: &str| -> String {
        let full = format!("http://eidas.europa.eu/attributes/naturalperson/{name}");
        let at = stmt
            .children()
            .find(|c| c.attribute("Name") == Some(full.as_str()))
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(at.attribute("NameFormat"), Some(uris::NAME_FORMAT_URI));
        assert_eq!(at.attribute("FriendlyName"), Some(friendly));
        let v = child(at, SAML, "AttributeValue");
        let ty = v.attribute((XSI, "type")).unwrap();
        let (prefix, local) = ty.split_once(':').unwrap();
        assert_eq!(local, format!("{name}Type"));
        assert_eq!(v.lookup_namespace_uri(Some(prefix)), Some(uris::NATURAL_PERSON_NS));
        v.text().unwrap().to_string()
    };
    assert_eq!(attr("PersonIdentifier", "PersonIdentifier"), citizen.person_identifier);
    assert_eq!(attr("CurrentFamilyName", "FamilyName"), citizen.family_name);
    assert_eq!(attr("CurrentGivenName", "FirstName"), citizen.given_name);
    assert_eq!(attr("DateOfBirth", "DateOfBirth"), citizen.date_of_birth);
    assertion
}

fn check_signature_shape(sig: roxmltree::Node<'_, '_>, id: &str) {
    let si = child(sig, DS, "SignedInfo");
    assert_eq!(
        child(si, DS, "CanonicalizationMethod").attribute("Algorithm"),
        Some(uris::EXC_C14N)
    );
    assert_eq!(child(si, DS, "SignatureMethod").attribute("Algorithm"), Some(uris::ECDSA_SHA256));
    let refs: Vec<_> = si.children().filter(|c| c.has_tag_name((DS, "Reference"))).collect();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0].attribute("URI"), Some(format!("#{id}").as_str()));
    assert_eq!(
        child(refs[0], DS, "DigestMethod").attribute("Algorithm"),
        Some(uris::SHA256_DIGEST)
    );
    let transforms: Vec<_> = child(refs[0], DS, "Transforms")
        .children()
        .filter(|c| c.is_element())
        .map(|c| c.attribute("Algorithm").unwrap().to_string())
        .collect();
    assert_eq!(
        transforms,
        ["http://www.w3.org/2000/09/xmldsig#enveloped-signature", uris::EXC_C14N]
    );
    // ECDSA P-256 in XML Signature: raw r||s, 64 bytes.
    let sv = child(sig, DS, "SignatureValue").text().unwrap();
    let sv: String = sv.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(STANDARD.decode(sv).unwrap().len(), 64);
    assert!(find(sig, DS, "X509Certificate").text().is_some());
}

fn status_of(b64: &str) -> (String, Option<String>, bool) {
    let xml = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let sc = find(doc.root_element(), SAMLP, "StatusCode");
    let sub = sc
        .children()
        .find(|c| c.has_tag_name((SAMLP, "StatusCode")))
        .and_then(|c| c.attribute("Value"))
        .map(str::to_string);
    let has_assertion = doc.descendants().any(|n| {
        n.has_tag_name((SAML, "EncryptedAssertion")) || n.has_tag_name((SAML, "Assertion"))
    });
    (sc.attribute("Value").unwrap().to_string(), sub, has_assertion)
}

/// The path of a redirect's (absolute) Location.
fn location(resp: &reqwest::Response) -> String {
    let loc = resp.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with("http://127.0.0.1:"), "{loc}");
    url::Url::parse(loc).unwrap().path().to_string()
}

async fn start_node(sp: &TestSp) -> (String, MockEidasNode) {
    start(sp.config()).await.unwrap()
}

/// Sends a POST-binding request and returns the pending-login path it redirects to.
async fn send_post(base: &str, b64: &str, relay: &str, country: Option<&str>) -> reqwest::Response {
    let mut form = vec![("SAMLRequest", b64.to_string()), ("RelayState", relay.to_string())];
    if let Some(c) = country {
        form.push(("country", c.to_string()));
    }
    http().post(format!("{base}/sso")).form(&form).send().await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn metadata_is_signed_and_complete() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) = start_node(&sp).await;
    let md = node_metadata(&base).await;

    // Signature verifies against the node certificate and covers the EntityDescriptor.
    let covered = verify_sig(&md, &node.signing_cert_der()).expect("metadata signature");
    let cdoc = roxmltree::Document::parse(&covered).unwrap();
    assert!(cdoc.root_element().has_tag_name((MD, "EntityDescriptor")));
    // ... and not against another key.
    let other = self_signed(&ec_key(), "other");
    assert!(verify_sig(&md, &other.to_der().unwrap()).is_err());
    // Tampering breaks it.
    assert!(verify_sig(&md.replace("/sso\"", "/sso2\""), &node.signing_cert_der()).is_err());

    let doc = roxmltree::Document::parse(&md).unwrap();
    let ed = doc.root_element();
    assert_eq!(ed.attribute("entityID"), Some(format!("{base}/metadata").as_str()));
    assert_eq!(node.entity_id(), format!("{base}/metadata"));
    assert!(ed.attribute("validUntil").is_some());
    let sig = ed.first_element_child().unwrap();
    assert!(sig.has_tag_name((DS, "Signature")), "signature first");
    check_signature_shape(sig, ed.attribute("ID").unwrap());
    let idp = child(ed, MD, "IDPSSODescriptor");
    assert_eq!(idp.attribute("WantAuthnRequestsSigned"), Some("true"));
    let kd = child(idp, MD, "KeyDescriptor");
    assert_eq!(kd.attribute("use"), Some("signing"));
    let cert = find(kd, DS, "X509Certificate").text().unwrap();
    assert_eq!(STANDARD.decode(cert).unwrap(), node.signing_cert_der());
    let sso: Vec<_> = idp
        .children()
        .filter(|c| c.has_tag_name((MD, "SingleSignOnService")))
        .map(|c| (c.attribute("Binding").unwrap(), c.attribute("Location").unwrap()))
        .collect();
    let sso_url = format!("{base}/sso");
    assert!(sso.contains(&(uris::BINDING_POST, sso_url.as_str())));
    assert!(sso.contains(&(uris::BINDING_REDIRECT, sso_url.as_str())));

    // samael reads it as IdP metadata.
    let parsed = EntityDescriptor::from_str(&md).unwrap();
    assert_eq!(parsed.entity_id.as_deref(), Some(node.entity_id()));
    let idps = parsed.idp_sso_descriptors.unwrap();
    assert_eq!(idps[0].single_sign_on_services.len(), 2);
    assert_eq!(pem(&X509::from_der(&node.signing_cert_der()).unwrap()), node.signing_cert_pem());
}

#[tokio::test]
async fn redirect_binding_digid_page_flow() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) = start_node(&sp).await;
    let md = node_metadata(&base).await;
    let id = new_id();
    let xml = sp.request_xml(&id, &node, &Req::default(), "");
    let q = sp.redirect_query(&xml, Some("relay&state=1"), sp.redirect_alg(), &[("country", "NL")]);
    let resp = http().get(format!("{base}/sso?{q}")).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{:?}", node.rejected_requests());
    let loc = location(&resp);
    assert!(loc.starts_with("/login/") && loc.ends_with("/authenticate"), "{loc}");

    // What the node recorded.
    let rec = node.last_request().unwrap();
    assert_eq!(rec.id, id);
    assert_eq!(rec.binding, eidas::Binding::Redirect);
    assert_eq!(rec.issuer, sp.entity_id);
    assert_eq!(rec.acs_url, sp.acs);
    assert_eq!(rec.destination.as_deref(), Some(node.sso_url().as_str()));
    assert_eq!(rec.comparison, "minimum");
    assert_eq!(rec.requested_levels(), vec![Loa::Substantial]);
    assert_eq!(rec.minimum_level(), Some(Loa::Substantial));
    assert!(rec.force_authn);
    assert!(!rec.is_passive);
    assert_eq!(rec.sp_type.as_deref(), Some("public"));
    assert_eq!(rec.requested_attributes.len(), 4);
    assert!(rec.requested_attributes.iter().all(|a| a.is_required));
    assert_eq!(
        rec.requested_attributes[0].name,
        "http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier"
    );
    assert_eq!(rec.relay_state.as_deref(), Some("relay&state=1"));
    assert_eq!(rec.country.as_deref(), Some("NL"));
    assert_eq!(rec.signature_algorithm, uris::ECDSA_SHA256);
    assert_eq!(rec.provider_name.as_deref(), Some("CoZo test SP"));

    // DigiD page: no JavaScript needed, a Cancel button.
    let page = http().get(format!("{base}{loc}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("DigiD"));
    assert!(page.contains(&format!("action=\"{loc}\"")));
    assert!(page.contains("name=\"username\""));
    assert!(page.contains("/cancel\""));
    assert!(!page.contains("<script"));
    // The default choice satisfies the requested level (not DigiD Basis).
    assert!(page.contains("value=\"nl-substantial\" checked"));

    // An unknown username shows the page again.
    let again =
        http().post(format!("{base}{loc}")).form(&[("username", "nobody")]).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("data-error"));

    let resp = http()
        .post(format!("{base}{loc}"))
        .form(&[("username", NL_SUBSTANTIAL.username), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    let (b64, relay) = response_form(&page, &sp.acs);
    assert_eq!(relay.as_deref(), Some("relay&state=1"));
    check_success(&sp, &node, &md, &b64, &id, &NL_SUBSTANTIAL, Loa::Substantial, uris::PERSISTENT);

    // The login is used up.
    let gone = http().post(format!("{base}{loc}")).form(&[("citizen", "nl-high")]).send().await;
    assert_eq!(gone.unwrap().status(), 404);

    // The same request again is a replay.
    let replay = http().get(format!("{base}/sso?{q}")).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(node.rejected_requests().last().unwrap().contains("replay"));

    // autosubmit.js is served.
    let js = http().get(format!("{base}/autosubmit.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.text().await.unwrap().contains("submit()"));
}

#[tokio::test]
async fn post_binding_country_page_flow() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) = start_node(&sp).await;
    let md = node_metadata(&base).await;
    let id = new_id();
    let req = Req { name_id_format: uris::TRANSIENT, ..Req::default() };
    let b64 = sp.post_request(&id, &node, &req);
    let resp = send_post(&base, &b64, "rs-1", None).await;
    assert_eq!(resp.status(), 303, "{:?}", node.rejected_requests());
    let loc = location(&resp);
    assert!(loc.starts_with("/login/") && !loc.ends_with("/authenticate"));
    let rec = node.last_request().unwrap();
    assert_eq!(rec.binding, eidas::Binding::Post);
    assert_eq!(rec.signature_algorithm, uris::ECDSA_SHA256);
    assert!(rec.xml.contains(&id));
    assert!(!rec.xml.contains("SignatureValue"), "only the signed content is kept");

    let page = http().get(format!("{base}{loc}")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Choose your country"));
    for c in ["NL", "DE", "FR", "LU"] {
        assert!(page.contains(&format!("name=\"country\" value=\"{c}\"")));
    }
    let resp = http().post(format!("{base}{loc}")).form(&[("country", "DE")]).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let auth = location(&resp);
    let page = http().get(format!("{base}{auth}")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Germany"));
    assert!(page.contains("Erika"));
    let resp = http()
        .post(format!("{base}{auth}"))
        .form(&[("citizen", DE_SUBSTANTIAL.key)])
        .send()
        .await
        .unwrap();
    let (b64, relay) = response_form(&resp.text().await.unwrap(), &sp.acs);
    assert_eq!(relay.as_deref(), Some("rs-1"));
    check_success(&sp, &node, &md, &b64, &id, &DE_SUBSTANTIAL, Loa::Substantial, uris::TRANSIENT);
}

#[tokio::test]
async fn rsa_signed_requests_and_sp_metadata_url() {
    // An SP whose metadata the node fetches: signing (RSA) and encryption certificates, ACS.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sp_base = format!("http://{}", listener.local_addr().unwrap());
    let sp = std::sync::Arc::new(TestSp::new(
        &format!("{sp_base}/saml/eidas/metadata"),
        &format!("{sp_base}/saml/eidas/acs"),
        true,
    ));
    let md_xml = sp.metadata();
    let app = axum::Router::new().route(
        "/saml/eidas/metadata",
        axum::routing::get(move || {
            let m = md_xml.clone();
            async move { m }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (base, node) = start(EidasNodeConfig {
        sp_metadata_url: Some(format!("{sp_base}/saml/eidas/metadata")),
        ..EidasNodeConfig::default()
    })
    .await
    .unwrap();
    let md = node_metadata(&base).await;

    // rsa-sha256 and RSASSA-PSS on the redirect binding, no ACS URL in the request.
    for alg in [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
    ] {
        let id = new_id();
        let req = Req { acs_in_request: false, ..Req::default() };
        let xml = sp.request_xml(&id, &node, &req, "");
        let q = sp.redirect_query(&xml, None, alg, &[("country", "LU")]);
        let resp = http().get(format!("{base}/sso?{q}")).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{alg}: {:?}", node.rejected_requests());
        let rec = node.last_request().unwrap();
        assert_eq!(rec.acs_url, sp.acs, "ACS from the SP metadata");
        assert_eq!(rec.acs_url_in_request, None);
        assert_eq!(rec.signature_algorithm, alg);
        let b64 = node.respond(&id, &LU_HIGH, Outcome::Success).await.unwrap();
        check_success(&sp, &node, &md, &b64, &id, &LU_HIGH, Loa::High, uris::PERSISTENT);
    }

    // rsa-sha256 on the POST binding.
    let id = new_id();
    let b64 = sp.post_request(&id, &node, &Req::default());
    let resp = send_post(&base, &b64, "x", Some("NL")).await;
    assert_eq!(resp.status(), 303, "{:?}", node.rejected_requests());
    assert_eq!(node.last_request().unwrap().signature_algorithm, sp.xml_sig_alg());

    // Issuer other than the metadata's entityID: refused.
    let other = TestSp {
        entity_id: "https://other.test/metadata".into(),
        ..TestSp::new("x", &sp.acs, true)
    };
    let other = TestSp { sign_key: sp.sign_key.clone(), ..other };
    let id = new_id();
    let xml = other.request_xml(&id, &node, &Req::default(), "");
    let q = other.redirect_query(&xml, None, other.redirect_alg(), &[]);
    let resp = http().get(format!("{base}/sso?{q}")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(node.rejected_requests().last().unwrap().contains("entityID"));
}

#[tokio::test]
async fn bad_requests_are_refused() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) = start_node(&sp).await;
    let get = |q: String| {
        let base = base.clone();
        async move { http().get(format!("{base}/sso?{q}")).send().await.unwrap() }
    };
    let expect_400 = |resp: reqwest::Response, code: &'static str| async move {
        assert_eq!(resp.status(), 400);
        let body = resp.text().await.unwrap();
        assert!(body.contains(&format!("data-error=\"{code}\"")), "{code}: {body}");
        assert!(!body.contains("SAMLResponse"));
    };

    // Redirect without a signature.
    let xml = sp.request_xml(&new_id(), &node, &Req::default(), "");
    let q = sp.redirect_query(&xml, Some("r"), sp.redirect_alg(), &[]);
    let unsigned = q.split("&Signature=").next().unwrap().to_string();
    expect_400(get(unsigned).await, "unsigned_request").await;

    // Redirect signed by another key.
    let rogue = TestSp::new(&sp.entity_id, &sp.acs, false);
    let q = rogue.redirect_query(&xml, Some("r"), rogue.redirect_alg(), &[]);
    expect_400(get(q).await, "invalid_signature").await;

    // Redirect with the RelayState changed after signing.
    let q = sp.redirect_query(&xml, Some("r"), sp.redirect_alg(), &[]);
    expect_400(get(q.replace("RelayState=r", "RelayState=s")).await, "invalid_signature").await;

    // rsa-sha1 is not accepted.
    let q = sp.redirect_query(&xml, None, "http://www.w3.org/2000/09/xmldsig#rsa-sha1", &[]);
    expect_400(get(q).await, "invalid_signature").await;

    // POST: unsigned.
    let unsigned = STANDARD.encode(sp.request_xml(&new_id(), &node, &Req::default(), ""));
    expect_400(send_post(&base, &unsigned, "r", None).await, "unsigned_request").await;

    // POST: changed after signing (ACS URL swapped).
    let signed = String::from_utf8(
        STANDARD.decode(sp.post_request(&new_id(), &node, &Req::default())).unwrap(),
    )
    .unwrap();
    let evil = STANDARD.encode(signed.replace(&sp.acs, "https://attacker.invalid/acs"));
    expect_400(send_post(&base, &evil, "r", None).await, "invalid_signature").await;

    // POST: signed by another key.
    let b64 = rogue.post_request(&new_id(), &node, &Req::default());
    expect_400(send_post(&base, &b64, "r", None).await, "invalid_signature").await;

    // No eIDAS level of assurance.
    let req = Req { level: "urn:oasis:names:tc:SAML:2.0:ac:classes:Password", ..Req::default() };
    let b64 = sp.post_request(&new_id(), &node, &req);
    expect_400(send_post(&base, &b64, "r", None).await, "invalid_request").await;

    // Nothing was accepted.
    assert!(node.received_requests().is_empty());
    assert_eq!(node.rejected_requests().len(), 8);

    // A genuine one still works.
    let b64 = sp.post_request(&new_id(), &node, &Req::default());
    assert_eq!(send_post(&base, &b64, "r", None).await.status(), 303);
}

#[tokio::test]
async fn direct_api_levels_failures_and_diacritics() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) = start_node(&sp).await;
    let md = node_metadata(&base).await;

    // From XML, without any HTTP request: FR with diacritics.
    let id = new_id();
    let xml = sp.request_xml(&id, &node, &Req::default(), "");
    let b64 = node.respond(&xml, &FR_SUBSTANTIAL, Outcome::Success).await.unwrap();
    let assertion = check_success(
        &sp,
        &node,
        &md,
        &b64,
        &id,
        &FR_SUBSTANTIAL,
        Loa::Substantial,
        uris::PERSISTENT,
    );
    assert!(assertion.contains("Lefèvre-Château"));

    // A higher level than asked is fine; the assertion carries the citizen's level.
    let b64 = node.respond(&xml, &NL_HIGH, Outcome::Success).await.unwrap();
    check_success(&sp, &node, &md, &b64, &id, &NL_HIGH, Loa::High, uris::PERSISTENT);

    // A citizen below the requested level: NoAuthnContext, no assertion.
    let b64 = node.respond(&xml, &NL_LOW, Outcome::Success).await.unwrap();
    let (top, sub, has) = status_of(&b64);
    assert_eq!(top, uris::STATUS_RESPONDER);
    assert_eq!(sub.as_deref(), Some(uris::STATUS_NO_AUTHN_CONTEXT));
    assert!(!has);

    // Level override: a node answering below what was asked.
    let b64 = node.respond(&xml, &NL_SUBSTANTIAL, Outcome::Level(Loa::Low)).await.unwrap();
    check_success(&sp, &node, &md, &b64, &id, &NL_SUBSTANTIAL, Loa::Low, uris::PERSISTENT);

    // Failure and cancel: signed, right status, no assertion.
    for (outcome, top, sub) in [
        (Outcome::Failure, uris::STATUS_RESPONDER, uris::STATUS_AUTHN_FAILED),
        (Outcome::Cancelled, uris::STATUS_REQUESTER, uris::STATUS_REQUEST_DENIED),
    ] {
        let b64 = node.respond(&xml, &NL_SUBSTANTIAL, outcome).await.unwrap();
        let (t, s, has) = status_of(&b64);
        assert_eq!((t.as_str(), s.as_deref(), has), (top, Some(sub), false));
        let resp = String::from_utf8(STANDARD.decode(&b64).unwrap()).unwrap();
        verify_sig(&resp, &node.signing_cert_der()).expect("failure responses are signed");
        assert!(resp.contains(&format!("InResponseTo=\"{id}\"")));
    }

    // Level comparison "exact" with low+substantial+high listed … and "minimum" high.
    let req = Req { level: "http://eidas.europa.eu/LoA/high", ..Req::default() };
    let xml_high = sp.request_xml(&new_id(), &node, &req, "");
    let (_, sub, _) =
        status_of(&node.respond(&xml_high, &DE_SUBSTANTIAL, Outcome::Success).await.unwrap());
    assert_eq!(sub.as_deref(), Some(uris::STATUS_NO_AUTHN_CONTEXT));

    // Outcome strings (control endpoint syntax).
    for o in [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Cancelled,
        Outcome::Level(Loa::Low),
        Outcome::Tampered(Tamper::WrongKey),
    ] {
        assert_eq!(o.to_string().parse::<Outcome>().unwrap(), o);
    }
    assert!("bogus".parse::<Outcome>().is_err());
}

#[tokio::test]
async fn legacy_rsa_oaep_mgf1p() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) =
        start(EidasNodeConfig { rsa_oaep_legacy: true, ..sp.config() }).await.unwrap();
    let md = node_metadata(&base).await;
    let id = new_id();
    let xml = sp.request_xml(&id, &node, &Req::default(), "");
    let b64 = node.respond(&xml, &NL_SUBSTANTIAL, Outcome::Success).await.unwrap();
    let resp = String::from_utf8(STANDARD.decode(&b64).unwrap()).unwrap();
    let (_, enc) = decrypt(&resp, &sp.enc_key);
    assert_eq!(enc.key_alg, uris::RSA_OAEP_MGF1P);
    assert_eq!(enc.digest.as_deref(), Some(uris::SHA1_DIGEST));
    assert_eq!(enc.mgf, None);
    check_success(&sp, &node, &md, &b64, &id, &NL_SUBSTANTIAL, Loa::Substantial, uris::PERSISTENT);

    // The default is xmlenc11#rsa-oaep with SHA-256 and MGF1-SHA-256.
    let (_, node2) = start_node(&sp).await;
    let b64 = node2.respond(&xml, &NL_SUBSTANTIAL, Outcome::Success).await.unwrap();
    let resp = String::from_utf8(STANDARD.decode(&b64).unwrap()).unwrap();
    let (_, enc) = decrypt(&resp, &sp.enc_key);
    assert_eq!(enc.key_alg, uris::RSA_OAEP_11);
    assert_eq!(enc.digest.as_deref(), Some(uris::SHA256_DIGEST));
    assert_eq!(enc.mgf.as_deref(), Some(uris::MGF1_SHA256));
}

#[tokio::test]
async fn tampered_responses_fail_sp_checks() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) = start_node(&sp).await;
    let md = node_metadata(&base).await;
    let samael_sp = sp.samael_sp(&md);
    let cert = node.signing_cert_der();
    let id = new_id();
    let xml = sp.request_xml(&id, &node, &Req::default(), "");

    for t in Tamper::ALL {
        let b64 = node.respond(&xml, &NL_SUBSTANTIAL, Outcome::Tampered(t)).await.unwrap();
        let resp = String::from_utf8(STANDARD.decode(&b64).unwrap()).unwrap();
        let doc = roxmltree::Document::parse(&resp).unwrap();
        let r = doc.root_element();
        let response_sig = verify_sig(&resp, &cert);
        match t {
            Tamper::Unsigned => {
                assert!(r.children().all(|c| !c.has_tag_name((DS, "Signature"))));
                assert!(response_sig.is_err());
                continue;
            }
            Tamper::WrongKey => {
                assert!(response_sig.is_err());
                let rogue = X509::from_pem(node.rogue_cert_pem().as_bytes()).unwrap();
                verify_sig(&resp, &rogue.to_der().unwrap()).expect("signed by the rogue key");
                let (assertion, _) = decrypt(&resp, &sp.enc_key);
                assert!(verify_sig(&assertion, &cert).is_err());
                continue;
            }
            _ => {
                response_sig.unwrap_or_else(|e| panic!("{t:?}: Response signature: {e}"));
            }
        }
        let destination = r.attribute("Destination").unwrap();
        let in_response_to = r.attribute("InResponseTo").unwrap();
        assert_eq!(destination == sp.acs, t != Tamper::WrongDestination, "{t:?}");
        assert_eq!(in_response_to == id, t != Tamper::WrongInResponseTo, "{t:?}");
        let assertion = if t == Tamper::NotEncrypted {
            assert!(!resp.contains("EncryptedAssertion"));
            let a = find(r, SAML, "Assertion");
            resp[a.range()].to_string()
        } else {
            decrypt(&resp, &sp.enc_key).0
        };
        let checked = samael_sp.parse_xml_response_with_mode(
            &assertion,
            Some(&[id.as_str()]),
            ReduceMode::PreDigest,
        );
        match t {
            Tamper::UnsignedAssertion
            | Tamper::WrongAudience
            | Tamper::WrongRecipient
            | Tamper::WrongInResponseTo
            | Tamper::Expired
            | Tamper::NotYetValid => assert!(checked.is_err(), "{t:?} passed samael"),
            Tamper::NotEncrypted | Tamper::WrongDestination => {
                checked.unwrap_or_else(|e| panic!("{t:?}: {e:?}"));
            }
            Tamper::Unsigned | Tamper::WrongKey => unreachable!(),
        }
        if t == Tamper::NotEncrypted {
            // Still signed inside the signed Response.
            verify_sig(&assertion, &cert).unwrap();
        }
        if t == Tamper::WrongAudience {
            assert!(assertion.contains(eidas::WRONG_AUDIENCE));
        }
    }
}

#[tokio::test]
async fn cancel_control_endpoint_and_test_login() {
    let sp =
        TestSp::new("https://sp.test/saml/eidas/metadata", "https://sp.test/saml/eidas/acs", false);
    let (base, node) = start_node(&sp).await;
    let md = node_metadata(&base).await;

    // DigiD Cancel button → Requester/RequestDenied.
    let id = new_id();
    let b64 = sp.post_request(&id, &node, &Req::default());
    let loc = location(&send_post(&base, &b64, "c1", Some("nl")).await);
    let key = loc.trim_start_matches("/login/").trim_end_matches("/authenticate");
    let resp = http().post(format!("{base}/login/{key}/cancel")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (b64, relay) = response_form(&resp.text().await.unwrap(), &sp.acs);
    assert_eq!(relay.as_deref(), Some("c1"));
    let (top, sub, has) = status_of(&b64);
    assert_eq!(top, uris::STATUS_REQUESTER);
    assert_eq!(sub.as_deref(), Some(uris::STATUS_REQUEST_DENIED));
    assert!(!has);

    // Control endpoint: the next page-flow logins fail.
    let c = http()
        .post(format!("{base}/control/outcome"))
        .form(&[("outcome", "failure")])
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 204);
    let id = new_id();
    let b64 = sp.post_request(&id, &node, &Req::default());
    let loc = location(&send_post(&base, &b64, "c2", Some("FR")).await);
    let resp = http()
        .post(format!("{base}{loc}"))
        .form(&[("citizen", FR_SUBSTANTIAL.key)])
        .send()
        .await
        .unwrap();
    let (b64, _) = response_form(&resp.text().await.unwrap(), &sp.acs);
    assert_eq!(status_of(&b64).1.as_deref(), Some(uris::STATUS_AUTHN_FAILED));
    let bad = http()
        .post(format!("{base}/control/outcome"))
        .form(&[("outcome", "nonsense")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Per-request outcome beats the default; reset restores success.
    node.reset_outcomes();
    let id = new_id();
    node.set_outcome_for(&id, Outcome::Level(Loa::Low));
    let b64 = sp.post_request(&id, &node, &Req::default());
    assert_eq!(send_post(&base, &b64, "c3", None).await.status(), 303);
    // test-login: straight to the response page.
    let resp = http()
        .get(format!("{base}/sso/test-login?request_id={id}&citizen=nl-substantial"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (b64, relay) = response_form(&resp.text().await.unwrap(), &sp.acs);
    assert_eq!(relay.as_deref(), Some("c3"));
    check_success(&sp, &node, &md, &b64, &id, &NL_SUBSTANTIAL, Loa::Low, uris::PERSISTENT);
    // … with an explicit outcome.
    let resp = http()
        .get(format!(
            "{base}/sso/test-login?request_id={id}&citizen=nl-substantial&outcome=success"
        ))
        .send()
        .await
        .unwrap();
    let (b64, _) = response_form(&resp.text().await.unwrap(), &sp.acs);
    check_success(&sp, &node, &md, &b64, &id, &NL_SUBSTANTIAL, Loa::Substantial, uris::PERSISTENT);
    let resp = http()
        .get(format!("{base}/sso/test-login?request_id=_unknown&citizen=nl-substantial"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[test]
fn test_citizens_cover_the_cases() {
    let all = eidas::test_citizens();
    assert!(all.len() >= 6);
    let nl: Vec<_> = eidas::citizens_of("NL").collect();
    for l in [Loa::Low, Loa::Substantial, Loa::High] {
        assert!(nl.iter().any(|c| c.level == l), "NL at {l}");
    }
    for c in all {
        let prefix = format!("{}/BE/", c.country);
        assert!(c.person_identifier.starts_with(&prefix), "{}", c.key);
        assert_eq!(c.date_of_birth.len(), 10);
        assert_eq!(eidas::citizen(c.key), Some(c));
        assert_eq!(eidas::citizen(c.username), Some(c));
    }
    assert!(all.iter().any(|c| c.country == "FR" && !c.family_name.is_ascii()));
    assert!(all.iter().any(|c| c.country == "LU" && c.level == Loa::High));
    assert!(all.iter().any(|c| c.country == "DE" && c.level == Loa::Substantial));
}
