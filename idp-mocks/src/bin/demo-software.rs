//! A demo "software package" (SPEC §10): gets an access token from the broker with an eHealth
//! certificate (`client_credentials`, `private_key_jwt` signed by the certificate's key) and
//! calls the demo API "my lab results" with it.
//!
//! Usage (the defaults are those of `make demo`):
//! `demo-software [--mtls] [--broker URL] [--client-id ID] [--cert PEM] [--key PEM] [--api URL] [--resource URI]`
//!
//! With `--mtls` the token comes from the broker's mTLS endpoint (`https://localhost:8444`)
//! with the certificate as TLS client certificate, so it is bound to it (`cnf.x5t#S256`), and
//! the API is called over mutual TLS (`https://localhost:8096`) with the same certificate.
//! The demo servers' own certificates are self-signed: this demo client does not check them.

use anyhow::{bail, Context as _};
use base64::Engine as _;
use sha2::Digest as _;

struct Args {
    broker: String,
    client_id: String,
    cert: String,
    key: String,
    api: String,
    resource: String,
    mtls: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        broker: "http://localhost:8080".into(),
        client_id: "demo-software".into(),
        cert: "data/ehealth-test-ca/gp-rsa.pem".into(),
        key: "data/ehealth-test-ca/gp-rsa.key".into(),
        api: "http://localhost:8095/lab-results".into(),
        resource: "http://localhost:8095".into(),
        mtls: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--mtls" {
            a.mtls = true;
            a.broker = "https://localhost:8444".into();
            a.api = "https://localhost:8096/lab-results".into();
            continue;
        }
        let slot = match flag.as_str() {
            "--broker" => &mut a.broker,
            "--client-id" => &mut a.client_id,
            "--cert" => &mut a.cert,
            "--key" => &mut a.key,
            "--api" => &mut a.api,
            "--resource" => &mut a.resource,
            "-h" | "--help" => {
                println!("usage: demo-software [--mtls] [--broker URL] [--client-id ID] [--cert PEM] [--key PEM] [--api URL] [--resource URI]");
                std::process::exit(0);
            }
            other => bail!("unknown option {other} (see --help)"),
        };
        *slot = it.next().with_context(|| format!("{flag} needs a value"))?;
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let cert_pem =
        std::fs::read_to_string(&a.cert).with_context(|| format!("reading {}", a.cert))?;
    let key_pem = std::fs::read_to_string(&a.key).with_context(|| format!("reading {}", a.key))?;
    let der = openssl::x509::X509::from_pem(cert_pem.as_bytes())?.to_der()?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let x5t = b64.encode(sha2::Sha256::digest(&der));
    let ec = openssl::pkey::PKey::private_key_from_pem(key_pem.as_bytes())?.ec_key().is_ok();
    let alg = if ec { "ES256" } else { "RS256" };
    let broker = a.broker.trim_end_matches('/');
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({
        "iss": a.client_id, "sub": a.client_id, "aud": format!("{broker}/token"),
        "iat": now, "exp": now + 120, "jti": format!("{:032x}", rand::random::<u128>()),
    });
    let header = serde_json::json!({ "alg": alg, "typ": "JWT", "x5t#S256": x5t });
    let assertion = idp_mocks::ehealth_ca::sign_jws(&key_pem, alg, &header, &claims)?;
    println!("1. POST {broker}/token (client_credentials, private_key_jwt {alg}, x5t#S256 {x5t})");
    let http = if a.mtls {
        reqwest::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true)
            .identity(reqwest::Identity::from_pem(format!("{cert_pem}\n{key_pem}").as_bytes())?)
            .build()?
    } else {
        reqwest::Client::new()
    };
    let r = http
        .post(format!("{broker}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
            ("resource", a.resource.as_str()),
        ])
        .send()
        .await?;
    let status = r.status();
    let token: serde_json::Value = r.json().await?;
    if !status.is_success() {
        bail!("the broker refused: {status} {token}");
    }
    let at = token["access_token"].as_str().context("no access_token")?;
    let payload = at.split('.').nth(1).context("not a JWT")?;
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(payload)?)?;
    println!("   access token claims: {}", serde_json::to_string_pretty(&claims)?);
    println!("2. GET {} with the token", a.api);
    let r = http.get(&a.api).bearer_auth(at).send().await?;
    let status = r.status();
    let body: serde_json::Value = r.json().await?;
    println!("   {status}: {}", serde_json::to_string_pretty(&body)?);
    if !status.is_success() {
        bail!("the API refused the token");
    }
    Ok(())
}
