//! Writes what the mock eIDAS node signs and encrypts, for `tests/xmlsec-crosscheck` (libxmlsec1
//! 1.3 through the PyPI `xmlsec` wheel): the node's metadata signed with RSASSA-PSS and its
//! certificate, and an assertion encrypted with ECDH-ES to a fresh EC P-256 key (PEM) with its
//! certificate. Usage: `crosscheck_fixture <dir>`.

use anyhow::Context as _;
use idp_mocks::eidas::{self, EidasNodeConfig, KeyTransport, MockEidasNode, NodeSigning};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).context("usage: <dir>")?);
    std::fs::create_dir_all(&dir)?;
    let node = MockEidasNode::new(EidasNodeConfig {
        base_url: "http://node.test".into(),
        signing: NodeSigning::RsaPss,
        key_transport: KeyTransport::EcdhEs,
        ..Default::default()
    })?;
    std::fs::write(dir.join("metadata.xml"), node.metadata_xml().await?)?;
    std::fs::write(dir.join("node-signing-cert.pem"), node.signing_cert_pem())?;

    // The SP's EC encryption key and a self-signed certificate for it.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = openssl::x509::X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "crosscheck SP")?;
    let name = name.build();
    let mut b = openssl::x509::X509::builder()?;
    b.set_version(2)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    b.set_not_before(openssl::asn1::Asn1Time::days_from_now(0)?.as_ref())?;
    b.set_not_after(openssl::asn1::Asn1Time::days_from_now(1)?.as_ref())?;
    b.sign(&key, openssl::hash::MessageDigest::sha256())?;
    let cert = b.build();
    std::fs::write(dir.join("sp-ec-key.pem"), key.private_key_to_pem_pkcs8()?)?;
    std::fs::write(dir.join("sp-ec-cert.pem"), cert.to_pem()?)?;

    let assertion = "<saml2:Assertion xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
                     ID=\"_crosscheck\" Version=\"2.0\"><saml2:Issuer>http://node.test/metadata\
                     </saml2:Issuer></saml2:Assertion>";
    let data = eidas::encrypt_element(assertion, &cert, "https://sp.test/metadata", false)?;
    std::fs::write(dir.join("encrypted.xml"), data)?;
    std::fs::write(dir.join("assertion.xml"), assertion)?;
    Ok(())
}
