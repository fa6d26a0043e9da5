//! The eIDAS ACS path (src/saml: `ServiceProvider::validate_response`): the input is the XML a
//! node would POST (base64-encoded here, as the ACS receives it). Whatever it is, validation
//! returns an error or an assertion, never a panic, a hang or a memory error (xmlsec and
//! libxml2 run under the sanitizer too). Nothing unsigned can validate: the node key below
//! signs nothing, so an `Ok` is a bug.
#![no_main]

use base64::Engine;
use cozo_broker::saml::{IdpTrust, ServiceProvider, SpKeys};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn sp() -> &'static ServiceProvider {
    static SP: OnceLock<ServiceProvider> = OnceLock::new();
    SP.get_or_init(|| {
        let keys = SpKeys::generate("sp.fuzz.test").expect("SP keys");
        // A node certificate whose key is thrown away: no input can carry a valid signature.
        let node = SpKeys::generate("node.fuzz.test").expect("node keys");
        let cert = openssl::x509::X509::from_pem(node.signing_cert_pem.as_bytes()).unwrap();
        let idp = IdpTrust {
            entity_id: "https://node.fuzz.test/metadata".into(),
            sso_redirect: Some("https://node.fuzz.test/sso".into()),
            sso_post: Some("https://node.fuzz.test/sso".into()),
            signing_certs_der: vec![cert.to_der().unwrap()],
        };
        ServiceProvider::new(
            "https://sp.fuzz.test/saml/eidas/metadata",
            "https://sp.fuzz.test/saml/eidas/acs",
            &keys,
            idp,
        )
        .expect("SP")
    })
}

fuzz_target!(|data: &[u8]| {
    let sp = sp();
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let result = sp.validate_response(&b64, &["_req-fuzz".to_string()], now);
    assert!(result.is_err(), "an unsigned input validated: {result:?}");
    // The raw form too (what a broken client may post: not base64 at all).
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(sp.validate_response(text, &["_req-fuzz".to_string()], now).is_err());
    }
});
