//! A mock PID provider: a CA (the broker's `[eudiw] trust_anchors`), an issuing certificate
//! under it, SD-JWT VC PIDs (`vct` `urn:eudi:pid:1`) for the demo citizens, and a Token Status
//! List with one revoked PID, served over HTTP.

use super::jose::{b64, sha256_b64, EcKey};
use anyhow::Context;
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyUsagePurpose};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// A citizen whose PID the provider issues.
#[derive(Debug, Clone, PartialEq)]
pub struct PidHolder {
    pub key: &'static str,
    pub family_name: &'static str,
    pub given_name: &'static str,
    pub birth_date: &'static str,
    pub nationalities: &'static [&'static str],
    pub issuing_country: &'static str,
    pub personal_administrative_number: Option<&'static str>,
    /// Index in the status list.
    pub status_idx: u64,
}

/// The index the status list marks revoked.
pub const REVOKED_IDX: u64 = 7;

/// Sanne de Vries (NL): the Bis register knows her as [`crate::bis_register::DUTCH_PATIENT`].
pub const NL_SANNE: PidHolder = PidHolder {
    key: "nl-sanne",
    family_name: "de Vries",
    given_name: "Sanne",
    birth_date: "1985-04-12",
    nationalities: &["NL"],
    issuing_country: "NL",
    personal_administrative_number: None,
    status_idx: 1,
};

/// Anna Peeters (BE): her PID carries her INSZ (the demo's key user).
pub const BE_ANNA: PidHolder = PidHolder {
    key: "be-anna",
    family_name: "Peeters",
    given_name: "Anna",
    birth_date: "1985-07-30",
    nationalities: &["BE"],
    issuing_country: "BE",
    personal_administrative_number: Some("85073003328"),
    status_idx: 2,
};

/// Erika Mustermann (DE), with a German administrative number.
pub const DE_ERIKA: PidHolder = PidHolder {
    key: "de-erika",
    family_name: "Mustermann",
    given_name: "Erika",
    birth_date: "1964-08-12",
    nationalities: &["DE"],
    issuing_country: "DE",
    personal_administrative_number: Some("T22000129"),
    status_idx: 3,
};

/// Pieter van den Berg (NL): his PID is revoked.
pub const NL_REVOKED: PidHolder = PidHolder {
    key: "nl-revoked",
    family_name: "van den Berg",
    given_name: "Pieter",
    birth_date: "1990-01-05",
    nationalities: &["NL"],
    issuing_country: "NL",
    personal_administrative_number: None,
    status_idx: REVOKED_IDX,
};

pub fn holders() -> Vec<PidHolder> {
    vec![NL_SANNE, BE_ANNA, DE_ERIKA, NL_REVOKED]
}

pub fn holder(key: &str) -> Option<PidHolder> {
    holders().into_iter().find(|h| h.key == key)
}

/// How to issue (tests make bad PIDs on purpose).
#[derive(Debug, Clone, Default)]
pub struct IssueOptions {
    /// Seconds from now to `exp` (default a year; negative: expired).
    pub exp_in: Option<i64>,
    /// Leave the `status` claim out.
    pub no_status: bool,
}

pub struct PidProvider {
    ca: CertifiedIssuer<'static, rcgen::KeyPair>,
    issuer_key: EcKey,
    issuer_cert_der: Vec<u8>,
    /// Where the status list is served (`status.status_list.uri`).
    pub status_uri: String,
    /// How often the status list was fetched (the verifier caches it for its `ttl`).
    pub status_fetches: std::sync::atomic::AtomicUsize,
}

fn window(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    (now - Duration::days(30), now + Duration::days(3 * 365))
}

impl PidProvider {
    /// A provider with its own CA. Two providers made with the same `name` have certificates
    /// with the same names and different keys: a look-alike.
    pub fn new(name: &str, status_uri: &str) -> anyhow::Result<Self> {
        let now = OffsetDateTime::now_utc();
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CountryName, "EU");
        ca_params.distinguished_name.push(DnType::CommonName, format!("{name} CA"));
        (ca_params.not_before, ca_params.not_after) = window(now);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_key = EcKey::generate()?.rcgen()?;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).context("PID CA")?;
        let issuer_key = EcKey::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CountryName, "EU");
        params.distinguished_name.push(DnType::CommonName, name);
        (params.not_before, params.not_after) = window(now);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&issuer_key.rcgen()?, &ca).context("PID issuer cert")?;
        Ok(Self {
            ca,
            issuer_key,
            issuer_cert_der: cert.der().to_vec(),
            status_uri: status_uri.to_string(),
            status_fetches: Default::default(),
        })
    }

    /// The CA certificate: what the broker trusts (`[eudiw] trust_anchors`).
    pub fn trust_anchor_pem(&self) -> String {
        self.ca.pem()
    }

    fn x5c(&self) -> Value {
        json!([base64::engine::general_purpose::STANDARD.encode(&self.issuer_cert_der)])
    }

    /// An SD-JWT VC PID for `who`, bound to `holder_jwk` (`cnf`), every claim selectively
    /// disclosable except `issuing_country`; ends with `~` (no key binding yet).
    pub fn issue(
        &self,
        who: &PidHolder,
        holder_jwk: &Value,
        now: i64,
        opts: &IssueOptions,
    ) -> anyhow::Result<String> {
        let mut disclosures = Vec::new();
        let mut sd = Vec::new();
        let mut disclose = |name: &str, value: Value| {
            let salt = b64(&rand::random::<[u8; 16]>());
            let d = b64(json!([salt, name, value]).to_string().as_bytes());
            sd.push(json!(sha256_b64(d.as_bytes())));
            disclosures.push(d);
        };
        disclose("family_name", json!(who.family_name));
        disclose("given_name", json!(who.given_name));
        disclose("birth_date", json!(who.birth_date));
        disclose("nationalities", json!(who.nationalities));
        if let Some(n) = who.personal_administrative_number {
            disclose("personal_administrative_number", json!(n));
        }
        // A decoy digest, as issuers add to hide how many claims there are.
        sd.push(json!(sha256_b64(&rand::random::<[u8; 16]>())));
        let mut claims = json!({
            "iss": "https://pid-provider.mock",
            "vct": "urn:eudi:pid:1",
            "iat": now,
            "exp": now + opts.exp_in.unwrap_or(365 * 86_400),
            "issuing_country": who.issuing_country,
            "_sd_alg": "sha-256",
            "_sd": sd,
            "cnf": { "jwk": holder_jwk },
        });
        if !opts.no_status {
            claims["status"] =
                json!({ "status_list": { "idx": who.status_idx, "uri": self.status_uri } });
        }
        let header = json!({ "typ": "dc+sd-jwt", "x5c": self.x5c() });
        let jwt = self.issuer_key.sign(header, &claims)?;
        Ok(format!("{jwt}~{}~", disclosures.join("~")))
    }

    /// The same PID as ISO 18013-5 mdoc (doctype and namespace `eu.europa.ec.eudi.pid.1`): the
    /// IssuerSigned structure, its MSO bound to `device_point` and signed with `x5chain`.
    pub fn issue_mdoc(
        &self,
        who: &PidHolder,
        device_point: &[u8],
        now: i64,
        opts: &IssueOptions,
    ) -> anyhow::Result<ciborium::Value> {
        use super::mdoc::{cose_key, encode, map, tag24, tdate, text, PID_DOCTYPE};
        use ciborium::Value as Cbor;
        use sha2::{Digest, Sha256};
        let mut elements = vec![
            ("family_name", text(who.family_name)),
            ("given_name", text(who.given_name)),
            ("birth_date", Cbor::Tag(1004, Box::new(text(who.birth_date)))),
            ("issuing_country", text(who.issuing_country)),
            ("nationality", Cbor::Array(who.nationalities.iter().map(|n| text(n)).collect())),
        ];
        if let Some(n) = who.personal_administrative_number {
            elements.push(("personal_administrative_number", text(n)));
        }
        let mut items = Vec::new();
        let mut digests = Vec::new();
        for (i, (name, value)) in elements.into_iter().enumerate() {
            let item = tag24(&map(vec![
                ("digestID", Cbor::Integer(i.into())),
                ("random", Cbor::Bytes(rand::random::<[u8; 16]>().to_vec())),
                ("elementIdentifier", text(name)),
                ("elementValue", value),
            ]))?;
            digests.push((
                Cbor::Integer(i.into()),
                Cbor::Bytes(Sha256::digest(encode(&item)?).to_vec()),
            ));
            items.push(item);
        }
        let until = now + opts.exp_in.unwrap_or(365 * 86_400);
        let mut mso = vec![
            ("version", text("1.0")),
            ("digestAlgorithm", text("SHA-256")),
            ("valueDigests", map(vec![(PID_DOCTYPE, Cbor::Map(digests))])),
            ("deviceKeyInfo", map(vec![("deviceKey", cose_key(device_point))])),
            ("docType", text(PID_DOCTYPE)),
            (
                "validityInfo",
                map(vec![
                    ("signed", tdate(now.min(until) - 60)),
                    ("validFrom", tdate(now.min(until) - 60)),
                    ("validUntil", tdate(until)),
                ]),
            ),
        ];
        if !opts.no_status {
            mso.push((
                "status",
                map(vec![(
                    "status_list",
                    map(vec![
                        ("idx", Cbor::Integer(who.status_idx.into())),
                        ("uri", text(&self.status_uri)),
                    ]),
                )]),
            ));
        }
        let payload = encode(&tag24(&map(mso))?)?;
        let x5chain = (Cbor::Integer(33.into()), Cbor::Bytes(self.issuer_cert_der.clone()));
        let issuer_auth = super::mdoc::sign1(&self.issuer_key, &payload, true, vec![x5chain])?;
        Ok(map(vec![
            ("nameSpaces", map(vec![(PID_DOCTYPE, Cbor::Array(items))])),
            ("issuerAuth", issuer_auth),
        ]))
    }

    /// The status list token: 1 bit per PID, [`REVOKED_IDX`] set.
    pub fn status_list_jwt(&self, now: i64) -> anyhow::Result<String> {
        let mut bytes = vec![0u8; 16];
        bytes[(REVOKED_IDX / 8) as usize] |= 1 << (REVOKED_IDX % 8);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&bytes)?;
        let lst = b64(&z.finish()?);
        let header = json!({ "typ": "statuslist+jwt", "x5c": self.x5c() });
        let claims = json!({
            "sub": self.status_uri,
            "iat": now,
            "exp": now + 86_400,
            "ttl": 300,
            "status_list": { "bits": 1, "lst": lst },
        });
        self.issuer_key.sign(header, &claims)
    }
}

/// A provider serving its status list on 127.0.0.1 (a free port), on a background task.
pub async fn start(name: &str) -> anyhow::Result<Arc<PidProvider>> {
    start_on(tokio::net::TcpListener::bind("127.0.0.1:0").await?, name).await
}

/// A provider serving its status list on `listener`, on a background task.
pub async fn start_on(
    listener: tokio::net::TcpListener,
    name: &str,
) -> anyhow::Result<Arc<PidProvider>> {
    let uri = format!("http://127.0.0.1:{}/status/pid", listener.local_addr()?.port());
    let provider = Arc::new(PidProvider::new(name, &uri)?);
    let p = provider.clone();
    let app = axum::Router::new().route(
        "/status/pid",
        axum::routing::get(move || {
            let p = p.clone();
            async move {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                p.status_fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match p.status_list_jwt(now) {
                    Ok(jwt) => {
                        ([(axum::http::header::CONTENT_TYPE, "application/statuslist+jwt")], jwt)
                            .into_response()
                    }
                    Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        .into_response(),
                }
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(provider)
}

use axum::response::IntoResponse;
