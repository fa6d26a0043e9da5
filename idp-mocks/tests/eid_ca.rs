//! The test eID PKI (`idp_mocks::eid_ca`): two trusted generations (RSA Root CA4 → Citizen CA
//! 201508, EC P-384 Root CA6 → Citizen CA 202101), certificate shape checked with x509-parser,
//! chains and the four CRLs checked by signature, `openssl verify -crl_check_all` on the files as
//! written, and a rustls client-certificate verifier built from the bundle + CRLs accepting and
//! rejecting the right cards.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use idp_mocks::eid_ca::{
    Card, TestPki, AUTH_POLICY_OID, CITIZEN_CA4_SERIAL, CITIZEN_CA6_SERIAL, CITIZEN_CA_CN,
    ROOT_CA4_CN, ROOT_CA6_CN, SIGN_POLICY_OID,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, RootCertStore};
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use x509_parser::oid_registry::{
    Oid, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA,
    OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_PKIX_ACCESS_DESCRIPTOR_OCSP,
    OID_SIG_ECDSA_WITH_SHA384, OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME,
    OID_X509_EXT_CERTIFICATE_POLICIES, OID_X509_GIVEN_NAME, OID_X509_SERIALNUMBER,
    OID_X509_SURNAME,
};
use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

const ALL_CARDS: [&str; 7] =
    ["anna-rsa", "pieter-ec", "noor-ec", "revoked", "expired", "bad-insz", "foreign"];

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate().expect("generate the test PKI"))
}

fn card(key: &str) -> &'static Card {
    pki().card(key).unwrap_or_else(|| panic!("no card {key}"))
}

/// DER of every certificate in a PEM text.
fn ders(pem: &str) -> Vec<Vec<u8>> {
    let ders: Vec<Vec<u8>> =
        Pem::iter_from_buffer(pem.as_bytes()).map(|p| p.expect("PEM").contents).collect();
    assert!(!ders.is_empty(), "no PEM block in {pem}");
    ders
}

fn one_der(pem: &str) -> Vec<u8> {
    let mut all = ders(pem);
    assert_eq!(all.len(), 1, "expected one certificate");
    all.remove(0)
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = parse_x509_certificate(der).expect("X.509");
    assert!(rest.is_empty());
    cert
}

fn attrs(name: &X509Name<'_>, oid: &Oid<'_>) -> Vec<String> {
    name.iter_by_oid(oid).map(|a| a.as_str().expect("string attribute").to_string()).collect()
}

fn attr_tag(name: &X509Name<'_>, oid: &Oid<'_>) -> Tag {
    name.iter_by_oid(oid).next().expect("attribute").attr_value().tag()
}

fn policies(cert: &X509Certificate<'_>) -> Vec<String> {
    let ext = cert
        .get_extension_unique(&OID_X509_EXT_CERTIFICATE_POLICIES)
        .expect("policies parse")
        .expect("certificatePolicies present");
    assert!(!ext.critical);
    match ext.parsed_extension() {
        ParsedExtension::CertificatePolicies(p) => {
            p.iter().map(|i| i.policy_id.to_id_string()).collect()
        }
        other => panic!("certificatePolicies: {other:?}"),
    }
}

/// The key-usage bits that are set, by name.
fn key_usage(cert: &X509Certificate<'_>) -> Vec<&'static str> {
    let ku = cert.key_usage().expect("KU parse").expect("keyUsage present");
    assert!(ku.critical, "keyUsage is critical");
    let v = ku.value;
    [
        (v.digital_signature(), "digitalSignature"),
        (v.non_repudiation(), "nonRepudiation"),
        (v.key_encipherment(), "keyEncipherment"),
        (v.data_encipherment(), "dataEncipherment"),
        (v.key_agreement(), "keyAgreement"),
        (v.key_cert_sign(), "keyCertSign"),
        (v.crl_sign(), "cRLSign"),
        (v.encipher_only(), "encipherOnly"),
        (v.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// authorityInfoAccess: (access method, URI) in order.
fn aia(cert: &X509Certificate<'_>) -> Vec<(Oid<'static>, String)> {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| matches!(e.parsed_extension(), ParsedExtension::AuthorityInfoAccess(_)))
        .expect("authorityInfoAccess present");
    assert!(!ext.critical);
    let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() else { unreachable!() };
    aia.accessdescs
        .iter()
        .map(|d| match &d.access_location {
            GeneralName::URI(u) => (d.access_method.to_owned(), u.to_string()),
            other => panic!("access location {other:?}"),
        })
        .collect()
}

/// The URIs of the cRLDistributionPoints extension.
fn crl_distribution_points(cert: &X509Certificate<'_>) -> Vec<String> {
    let ext = cert
        .extensions()
        .iter()
        .find(|e| matches!(e.parsed_extension(), ParsedExtension::CRLDistributionPoints(_)))
        .expect("cRLDistributionPoints present");
    assert!(!ext.critical);
    let ParsedExtension::CRLDistributionPoints(dps) = ext.parsed_extension() else {
        unreachable!()
    };
    dps.points
        .iter()
        .flat_map(|p| match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => names
                .iter()
                .map(|n| match n {
                    GeneralName::URI(u) => u.to_string(),
                    other => panic!("distribution point {other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("distribution point {other:?}"),
        })
        .collect()
}

/// The Citizen CA certificate (DER) that issued a card.
fn issuer_of(c: &Card) -> Vec<u8> {
    pki()
        .generations
        .iter()
        .find(|g| g.citizen_ca_serial == c.citizen_ca_serial)
        .map(|g| one_der(&g.citizen_ca_pem))
        .unwrap_or_else(|| ders(&pki().foreign_ca_pem)[1].clone())
}

/// INSZ check digits (domain notes §5): 97 − (first 9 mod 97), or on 2 + first 9 for births
/// from 2000.
fn insz_valid(insz: &str) -> bool {
    if insz.len() != 11 || !insz.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let n: u64 = insz[..9].parse().unwrap();
    let cc: u64 = insz[9..].parse().unwrap();
    97 - n % 97 == cc || 97 - (2_000_000_000 + n) % 97 == cc
}

fn unix(t: &ASN1Time) -> i64 {
    t.timestamp()
}

fn now_unix() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn card_list() {
    let keys: Vec<&str> = pki().cards.iter().map(|c| c.key).collect();
    assert_eq!(keys, ALL_CARDS);
    assert!(pki().card("nobody").is_none());
    let anna = card("anna-rsa");
    assert_eq!(
        (anna.given_name.as_str(), anna.family_name.as_str(), anna.insz.as_str(), anna.ec),
        ("Anna", "Peeters", "85073003328", false)
    );
    let pieter = card("pieter-ec");
    assert_eq!(
        (pieter.given_name.as_str(), pieter.family_name.as_str(), pieter.insz.as_str(), pieter.ec),
        ("Pieter", "Janssens", "75031212346", true)
    );
    // Born 2003: only the check digits computed over 2 + the nine digits are right.
    let noor = card("noor-ec");
    assert_eq!((noor.insz.as_str(), noor.ec), ("03051406233", true));
    let n: u64 = noor.insz[..9].parse().unwrap();
    assert_ne!(97 - n % 97, 33, "the 1900s rule alone would refuse it");
    assert_eq!(card("bad-insz").insz, "85073003329");
    for c in &pki().cards {
        assert_eq!(insz_valid(&c.insz), c.key != "bad-insz", "{}: INSZ {}", c.key, c.insz);
        // RSA cards come from the first generation, EC cards from the second.
        let expected = match (c.key, c.ec) {
            ("foreign", _) => "209901",
            (_, false) => CITIZEN_CA4_SERIAL,
            (_, true) => CITIZEN_CA6_SERIAL,
        };
        assert_eq!(c.citizen_ca_serial, expected, "{}", c.key);
    }
    assert!(pki().cards.iter().any(|c| c.ec) && pki().cards.iter().any(|c| !c.ec));
}

#[test]
fn ca_certificates() {
    let g = &pki().generations;
    assert_eq!(g.len(), 2);
    let mut bundle = Vec::new();
    for (gen, root_cn, serial, ec) in [
        (&g[0], ROOT_CA4_CN, CITIZEN_CA4_SERIAL, false),
        (&g[1], ROOT_CA6_CN, CITIZEN_CA6_SERIAL, true),
    ] {
        assert_eq!((gen.root_cn, gen.citizen_ca_serial, gen.ec), (root_cn, serial, ec));
        let root_der = one_der(&gen.root_pem);
        let ca_der = one_der(&gen.citizen_ca_pem);
        let (root, ca) = (parse(&root_der), parse(&ca_der));

        assert_eq!(attrs(root.subject(), &OID_X509_COMMON_NAME), [root_cn]);
        assert_eq!(attrs(root.subject(), &OID_X509_COUNTRY_NAME), ["BE"]);
        assert_eq!(root.subject(), root.issuer());
        root.verify_signature(None).expect("root is self-signed");

        assert_eq!(attrs(ca.subject(), &OID_X509_COMMON_NAME), [CITIZEN_CA_CN]);
        assert_eq!(attrs(ca.subject(), &OID_X509_COUNTRY_NAME), ["BE"]);
        assert_eq!(attrs(ca.subject(), &OID_X509_SERIALNUMBER), [serial]);
        assert_eq!(ca.issuer(), root.subject());
        ca.verify_signature(Some(root.public_key())).expect("Citizen CA signed by its root");

        // Generation 1: RSA, sha256WithRSAEncryption; generation 2: P-384, ecdsa-with-SHA384.
        let (key_oid, sig_oid, bits) = if ec {
            (OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ECDSA_WITH_SHA384, 384)
        } else {
            (OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA, 2048)
        };
        for cert in [&root, &ca] {
            let bc = cert.basic_constraints().unwrap().expect("basicConstraints");
            assert!(bc.critical && bc.value.ca);
            assert_eq!(key_usage(cert), ["keyCertSign", "cRLSign"]);
            assert!(cert.validity().is_valid());
            assert_eq!(cert.public_key().algorithm.algorithm, key_oid, "{root_cn}");
            assert_eq!(cert.public_key().parsed().unwrap().key_size(), bits, "{root_cn}");
            assert_eq!(cert.signature_algorithm.algorithm, sig_oid, "{root_cn}");
        }
        let bc = ca.basic_constraints().unwrap().unwrap();
        assert_eq!(bc.value.path_len_constraint, Some(0));
        assert_eq!(aia(&ca).len(), 2, "{serial}: caIssuers and OCSP");
        assert_eq!(crl_distribution_points(&ca).len(), 1, "{serial}");
        bundle.extend([root_der, ca_der]);
    }
    // the two Citizen CAs share their CN; only serialNumber (and the keys) set them apart
    let (ca4, ca6) = (one_der(&g[0].citizen_ca_pem), one_der(&g[1].citizen_ca_pem));
    assert_ne!(parse(&ca4).subject(), parse(&ca6).subject());

    // the bundle is exactly root CA4, Citizen CA 201508, root CA6, Citizen CA 202101
    assert_eq!(ders(&pki().ca_bundle_pem), bundle);
    // and the foreign PKI is none of them
    let foreign = ders(&pki().foreign_ca_pem);
    assert_eq!(foreign.len(), 2);
    assert!(foreign.iter().all(|f| !bundle.contains(f)));
}

#[test]
fn card_subjects() {
    for key in ALL_CARDS {
        let c = card(key);
        for (pem, role) in [(&c.auth_cert_pem, "Authentication"), (&c.sign_cert_pem, "Signature")] {
            let der = one_der(pem);
            let cert = parse(&der);
            let s = cert.subject();
            let first_given = c.given_name.split(' ').next().unwrap();
            assert_eq!(
                attrs(s, &OID_X509_COMMON_NAME),
                [format!("{first_given} {} ({role})", c.family_name)],
                "{key}"
            );
            assert_eq!(attrs(s, &OID_X509_SURNAME), [c.family_name.as_str()], "{key}");
            assert_eq!(attrs(s, &OID_X509_GIVEN_NAME), [c.given_name.as_str()], "{key}");
            assert_eq!(attrs(s, &OID_X509_SERIALNUMBER), [c.insz.as_str()], "{key}");
            assert_eq!(attrs(s, &OID_X509_COUNTRY_NAME), ["BE"], "{key}");
            assert_eq!(attr_tag(s, &OID_X509_SERIALNUMBER), Tag::PrintableString);
            assert_eq!(attr_tag(s, &OID_X509_COUNTRY_NAME), Tag::PrintableString);
            // RDN order as on the card: C, CN, SN, GN, serialNumber
            let order: Vec<String> =
                s.iter_attributes().map(|a| a.attr_type().to_id_string()).collect();
            assert_eq!(order, ["2.5.4.6", "2.5.4.3", "2.5.4.4", "2.5.4.42", "2.5.4.5"]);
            assert!(cert.basic_constraints().unwrap().is_none_or(|bc| !bc.value.ca));
        }
    }
    assert_eq!(
        attrs(parse(&one_der(&card("revoked").auth_cert_pem)).subject(), &OID_X509_COMMON_NAME),
        ["Marie Dubois (Authentication)"]
    );
}

#[test]
fn authentication_certificates() {
    for key in ALL_CARDS {
        let der = one_der(&card(key).auth_cert_pem);
        let cert = parse(&der);
        assert_eq!(key_usage(&cert), ["digitalSignature"], "{key}");
        let eku = cert.extended_key_usage().unwrap().expect("extendedKeyUsage present");
        assert!(eku.value.client_auth, "{key}: clientAuth");
        assert!(!eku.value.server_auth && !eku.value.any, "{key}");
        assert_eq!(policies(&cert), [AUTH_POLICY_OID], "{key}");
        assert_eq!(AUTH_POLICY_OID, "2.16.56.12.1.1.2.2");
        // AIA (caIssuers + OCSP) and a CRL distribution point, as on the real cards
        let access = aia(&cert);
        let methods: Vec<_> = access.iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(
            methods,
            [OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_PKIX_ACCESS_DESCRIPTOR_OCSP],
            "{key}"
        );
        let dps = crl_distribution_points(&cert);
        assert_eq!(dps.len(), 1, "{key}");
        let host = match card(key).citizen_ca_serial {
            "201508" => "eid.belgium.be/",
            "202101" => "eidpki.belgium.be/",
            _ => "foreign.invalid/",
        };
        for uri in access.iter().map(|(_, u)| u).chain(&dps) {
            assert!(uri.starts_with("http://") && uri.contains(host), "{key}: {uri}");
        }
    }
}

#[test]
fn signature_certificates() {
    let qc = Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 3]).unwrap();
    for key in ALL_CARDS {
        let der = one_der(&card(key).sign_cert_pem);
        let cert = parse(&der);
        assert_eq!(key_usage(&cert), ["nonRepudiation"], "{key}");
        assert!(cert.extended_key_usage().unwrap().is_none(), "{key}: no EKU");
        assert_eq!(policies(&cert), [SIGN_POLICY_OID], "{key}");
        assert_eq!(SIGN_POLICY_OID, "2.16.56.12.1.1.2.1");
        assert!(cert.get_extension_unique(&qc).unwrap().is_some(), "{key}: QCStatements");
    }
}

#[test]
fn keys_match_certificates_and_types() {
    for key in ALL_CARDS {
        let c = card(key);
        for (cert_pem, key_pem) in
            [(&c.auth_cert_pem, &c.auth_key_pem), (&c.sign_cert_pem, &c.sign_key_pem)]
        {
            assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}: PKCS#8");
            let x509 = openssl::x509::X509::from_pem(cert_pem.as_bytes()).unwrap();
            let pkey = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
            assert!(x509.public_key().unwrap().public_eq(&pkey), "{key}: key matches cert");

            let der = one_der(cert_pem);
            let cert = parse(&der);
            let spki = cert.public_key();
            let bits = spki.parsed().unwrap().key_size();
            if c.ec {
                assert_eq!(spki.algorithm.algorithm, OID_KEY_TYPE_EC_PUBLIC_KEY, "{key}");
                assert!(bits == 384 || bits == 256, "{key}: {bits}");
            } else {
                assert_eq!(spki.algorithm.algorithm, OID_PKCS1_RSAENCRYPTION, "{key}");
                assert!(matches!(spki.parsed().unwrap(), PublicKey::RSA(_)));
                assert_eq!(bits, 2048, "{key}");
            }
        }
    }
    let der = one_der(&card("pieter-ec").auth_cert_pem);
    assert_eq!(parse(&der).public_key().parsed().unwrap().key_size(), 384, "pieter-ec: P-384");
}

#[test]
fn chains() {
    let foreign = ders(&pki().foreign_ca_pem);
    let (foreign_root, foreign_ca) = (parse(&foreign[0]), parse(&foreign[1]));
    let citizen_cas: Vec<Vec<u8>> =
        pki().generations.iter().map(|g| one_der(&g.citizen_ca_pem)).collect();

    for key in ALL_CARDS {
        let c = card(key);
        let chain = ders(&c.chain_pem);
        assert_eq!(chain.len(), 2, "{key}: auth cert + intermediate");
        assert_eq!(chain[0], one_der(&c.auth_cert_pem), "{key}");
        let issuer_der = issuer_of(c);
        let issuer = parse(&issuer_der);
        assert_eq!(chain[1], issuer_der, "{key}");
        for pem in [&c.auth_cert_pem, &c.sign_cert_pem] {
            let der = one_der(pem);
            let leaf = parse(&der);
            assert_eq!(leaf.issuer(), issuer.subject(), "{key}");
            leaf.verify_signature(Some(issuer.public_key())).expect("signed by its Citizen CA");
            // and by no other Citizen CA, though they all share the CN
            for other in citizen_cas.iter().chain([&foreign[1]]).filter(|d| **d != issuer_der) {
                assert!(leaf.verify_signature(Some(parse(other).public_key())).is_err(), "{key}");
            }
            // the issuer's key decides: RSA Citizen CA 201508, else P-384
            let sig = if c.citizen_ca_serial == CITIZEN_CA4_SERIAL {
                OID_PKCS1_SHA256WITHRSA
            } else {
                OID_SIG_ECDSA_WITH_SHA384
            };
            assert_eq!(leaf.signature_algorithm.algorithm, sig, "{key}");
        }
    }
    // the foreign intermediate mimics the real ones' CN but has its own root
    assert_eq!(attrs(foreign_ca.subject(), &OID_X509_COMMON_NAME), [CITIZEN_CA_CN]);
    foreign_ca.verify_signature(Some(foreign_root.public_key())).unwrap();
    for g in &pki().generations {
        assert_ne!(&foreign_ca.subject(), &parse(&one_der(&g.citizen_ca_pem)).subject());
        let root_der = one_der(&g.root_pem);
        assert!(foreign_ca.verify_signature(Some(parse(&root_der).public_key())).is_err());
    }
}

#[test]
fn validity() {
    let now = now_unix();
    for key in ALL_CARDS {
        let c = card(key);
        for pem in [&c.auth_cert_pem, &c.sign_cert_pem] {
            let der = one_der(pem);
            let cert = parse(&der);
            let v = cert.validity();
            let span = unix(&v.not_after) - unix(&v.not_before);
            assert!(span > 9 * 365 * 86_400 && span < 11 * 365 * 86_400, "{key}: ~10 years");
            if key == "expired" {
                assert!(!v.is_valid(), "{key}");
                assert!(unix(&v.not_after) < now, "{key}: notAfter in the past");
            } else {
                assert!(v.is_valid(), "{key}");
                assert!(unix(&v.not_before) <= now && now < unix(&v.not_after));
            }
        }
    }
}

/// The CRLs of `crl.pem`, in order, as DER.
fn crl_ders() -> Vec<Vec<u8>> {
    Pem::iter_from_buffer(pki().crl_pem.as_bytes())
        .map(|p| {
            let p = p.expect("PEM");
            assert_eq!(p.label, "X509 CRL");
            p.contents
        })
        .collect()
}

#[test]
fn crl() {
    let p = pki();
    let all = crl_ders();
    assert_eq!(all.concat(), p.crl_der, "crl_pem and crl_der hold the same CRLs");
    let (g4, g6) = (&p.generations[0], &p.generations[1]);
    // one per CA: Citizen CA 201508, Root CA4, Citizen CA 202101, Root CA6
    let signers = [&g4.citizen_ca_pem, &g4.root_pem, &g6.citizen_ca_pem, &g6.root_pem];
    assert_eq!(
        all,
        [&g4.citizen_ca_crl_der, &g4.root_crl_der, &g6.citizen_ca_crl_der, &g6.root_crl_der]
            .map(|d| d.clone())
    );
    let now = now_unix();
    let serial = |pem: &str| parse(&one_der(pem)).raw_serial().to_vec();
    for (der, signer_pem) in all.iter().zip(signers) {
        let (rest, crl) = parse_x509_crl(der).expect("CRL");
        assert!(rest.is_empty());
        let signer_der = one_der(signer_pem);
        let signer = parse(&signer_der);
        assert_eq!(crl.issuer(), signer.subject());
        crl.verify_signature(signer.public_key()).expect("CRL signed by its CA");
        // no other CA's key verifies it
        for other in signers.iter().filter(|o| **o != signer_pem) {
            assert!(crl.verify_signature(parse(&one_der(other)).public_key()).is_err());
        }
        let this = unix(&crl.last_update());
        let next = unix(&crl.next_update().expect("nextUpdate"));
        assert!((now - this).abs() < 600, "thisUpdate is now");
        assert_eq!(next - this, 7 * 86_400, "nextUpdate = thisUpdate + 7 days");

        let revoked: Vec<Vec<u8>> =
            crl.iter_revoked_certificates().map(|r| r.raw_serial().to_vec()).collect();
        let lists_revoked_card = signer_pem == &g6.citizen_ca_pem;
        for pem in [&card("revoked").auth_cert_pem, &card("revoked").sign_cert_pem] {
            assert_eq!(revoked.contains(&serial(pem)), lists_revoked_card);
        }
        for key in ALL_CARDS.iter().filter(|k| **k != "revoked") {
            assert!(!revoked.contains(&serial(&card(key).auth_cert_pem)), "{key} not listed");
        }
        if !lists_revoked_card {
            assert!(revoked.is_empty());
        }
    }
}

/// `openssl verify -crl_check_all` on the files as written: the chains, the CRLs of every CA and
/// the extensions are what a standard verifier accepts.
#[test]
fn openssl_verify_with_crl_check_all() {
    let dir = std::env::temp_dir().join(format!("eid-test-ca-openssl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    pki().write_to(&dir).unwrap();
    let verify = |key: &str| {
        let out = std::process::Command::new("openssl")
            .current_dir(&dir)
            .args(["verify", "-x509_strict", "-crl_check_all", "-CAfile", "ca-bundle.pem"])
            .args(["-CRLfile", "crl.pem", &format!("{key}-auth.pem")])
            .output()
            .expect("the openssl command");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for key in ["anna-rsa", "pieter-ec", "noor-ec", "bad-insz"] {
        let (ok, text) = verify(key);
        assert!(ok && text.contains(": OK"), "{key}: {text}");
    }
    for (key, why) in [
        ("revoked", "certificate revoked"),
        ("expired", "certificate has expired"),
        ("foreign", "unable to get local issuer certificate"),
    ] {
        let (ok, text) = verify(key);
        assert!(!ok && text.contains(why), "{key}: {text}");
    }
    // Without the root CRLs, -crl_check_all cannot check the Citizen CAs: all four are needed.
    let citizen_only: String = crl_ders()
        .iter()
        .zip([true, false, true, false])
        .filter(|(_, citizen)| *citizen)
        .map(|(der, _)| {
            let crl = openssl::x509::X509Crl::from_der(der).unwrap();
            String::from_utf8(crl.to_pem().unwrap()).unwrap()
        })
        .collect();
    std::fs::write(dir.join("crl.pem"), citizen_only).unwrap();
    let (ok, text) = verify("noor-ec");
    assert!(!ok && text.contains("unable to get certificate CRL"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- rustls client-certificate verifier, as the eID listener would build it ---

fn verifier(trust_pem: &str, with_crl: bool) -> Arc<dyn ClientCertVerifier> {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(trust_pem.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if with_crl {
        builder = builder
            .with_crls(crl_ders().into_iter().map(CertificateRevocationListDer::from))
            .only_check_end_entity_revocation();
    }
    builder.build().unwrap()
}

fn present(v: &dyn ClientCertVerifier, key: &str, now: UnixTime) -> Result<(), rustls::Error> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(card(key).chain_pem.as_bytes())
            .map(|c| c.unwrap())
            .collect();
    v.verify_client_cert(&chain[0], &chain[1..], now).map(|_| ())
}

#[test]
fn rustls_verifier_accepts_good_cards_and_rejects_bad_ones() {
    let v = verifier(&pki().ca_bundle_pem, true);
    let now = UnixTime::now();
    for key in ["anna-rsa", "pieter-ec", "noor-ec", "bad-insz"] {
        present(&*v, key, now).unwrap_or_else(|e| panic!("{key} rejected: {e}"));
    }
    // the leaf alone also chains: the Citizen CA is in the bundle
    let anna = CertificateDer::from_pem_slice(card("anna-rsa").auth_cert_pem.as_bytes()).unwrap();
    v.verify_client_cert(&anna, &[], now).expect("anna without intermediate");

    let err = |key| present(&*v, key, now).expect_err(key);
    assert!(
        matches!(err("revoked"), rustls::Error::InvalidCertificate(CertificateError::Revoked)),
        "revoked: {}",
        err("revoked")
    );
    assert!(
        matches!(
            err("expired"),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "expired: {}",
        err("expired")
    );
    assert!(
        matches!(
            err("foreign"),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "foreign: {}",
        err("foreign")
    );
}

#[test]
fn rustls_rejections_are_for_the_stated_reason() {
    // without the CRL the revoked card is fine: the CRL is what rejects it
    present(&*verifier(&pki().ca_bundle_pem, false), "revoked", UnixTime::now()).unwrap();
    // inside its validity window the expired card is fine
    let earlier = SystemTime::now() - Duration::from_secs(60 * 86_400);
    let earlier =
        UnixTime::since_unix_epoch(earlier.duration_since(SystemTime::UNIX_EPOCH).unwrap());
    present(&*verifier(&pki().ca_bundle_pem, true), "expired", earlier).unwrap();
    // trusting the foreign PKI, the foreign card chains: only the trust anchor rejects it
    present(&*verifier(&pki().foreign_ca_pem, false), "foreign", UnixTime::now()).unwrap();
}

#[test]
fn write_to_writes_every_file() {
    let dir = std::env::temp_dir().join(format!("eid-test-ca-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    pki().write_to(&dir).unwrap();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read("ca-bundle.pem"), pki().ca_bundle_pem.as_bytes());
    assert_eq!(read("crl.pem"), pki().crl_pem.as_bytes());
    assert_eq!(read("crl.der"), pki().crl_der);
    assert_eq!(read("foreign-ca.pem"), pki().foreign_ca_pem.as_bytes());
    let readme = String::from_utf8(read("README.txt")).unwrap();
    assert!(readme.contains(
        "curl -k --cert anna-rsa-auth.pem --key anna-rsa-auth.key https://localhost:8443/"
    ));
    for c in &pki().cards {
        let k = c.key;
        assert_eq!(read(&format!("{k}-auth.pem")), c.auth_cert_pem.as_bytes());
        assert_eq!(read(&format!("{k}-auth.key")), c.auth_key_pem.as_bytes());
        assert_eq!(read(&format!("{k}-auth-chain.pem")), c.chain_pem.as_bytes());
        assert_eq!(read(&format!("{k}-sign.pem")), c.sign_cert_pem.as_bytes());
        assert_eq!(read(&format!("{k}-sign.key")), c.sign_key_pem.as_bytes());
        let p12 = openssl::pkcs12::Pkcs12::from_der(&read(&format!("{k}-auth.p12"))).unwrap();
        let parsed = p12.parse2("test").expect("PKCS#12 opens with password test");
        let cert = parsed.cert.expect("certificate in the p12");
        assert_eq!(cert.to_der().unwrap(), one_der(&c.auth_cert_pem), "{k}");
        assert!(cert.public_key().unwrap().public_eq(&parsed.pkey.expect("key in the p12")));
        assert_eq!(parsed.ca.expect("intermediate in the p12").len(), 1, "{k}");
        assert!(p12.parse2("wrong").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(format!("{k}-auth.key"))).unwrap().permissions();
            assert_eq!(mode.mode() & 0o077, 0, "{k}-auth.key is private");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
