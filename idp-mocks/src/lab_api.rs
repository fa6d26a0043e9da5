//! "My lab results": a small API behind the broker for the demo (SPEC §10), the way a CoZo hub or
//! an eHealth API would consume the broker's access tokens. It validates the JWT offline with the
//! broker's JWKS (RS256, `typ: at+jwt`, `iss`, `exp`, and `aud` = this API), and accepts only
//! tokens restricted to it. A certificate-bound token (`cnf.x5t#S256`, RFC 8705) is accepted only
//! over mutual TLS ([`serve_tls`]) from the client holding that certificate: the plain-HTTP API
//! refuses them, and so does the TLS one when another (or no) certificate is presented.
//!
//! `GET /lab-results` with `Authorization: Bearer <token>` → 200 `{"holder": …, "results": […]}`,
//! or 401 `{"error": "invalid_token", "error_description": …}`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};

/// The API's configuration: whose tokens it trusts and its own resource URI (`aud`).
#[derive(Clone, Debug)]
pub struct LabApiConfig {
    /// The broker's issuer, e.g. `http://localhost:8080` (JWKS at `{issuer}/jwks`).
    pub issuer: String,
    /// This API's resource URI, registered at the broker with `--resource`.
    pub audience: String,
}

struct LabApi {
    cfg: LabApiConfig,
    http: reqwest::Client,
    jwks: tokio::sync::Mutex<Option<(std::time::Instant, Value)>>,
}

pub fn router(cfg: LabApiConfig) -> Result<Router> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()?;
    let state = Arc::new(LabApi { cfg, http, jwks: tokio::sync::Mutex::new(None) });
    Ok(Router::new().route("/lab-results", get(lab_results)).with_state(state))
}

/// The client certificate of a request over [`serve_tls`] (DER; empty: none presented).
#[derive(Clone, Debug, Default)]
struct PeerCert(Arc<Vec<u8>>);

/// Serves the API over TLS 1.2/1.3 on `listener`, asking for a client certificate (any: the
/// handshake proves the client holds its key; the token's `cnf` says which one it must be).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    cfg: LabApiConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use tower::ServiceExt as _;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der())
        .map_err(|e| anyhow!("{e}"))?;
    let tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(Arc::new(AnyClientCert(provider)))
        .with_single_cert(vec![ck.cert.der().clone()], key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let app = router(cfg)?;
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r { Ok((tcp, _)) => tcp, Err(_) => continue },
            _ = &mut shutdown => return Ok(()),
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let peer = PeerCert(Arc::new(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| c.to_vec())
                    .unwrap_or_default(),
            ));
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(peer.clone());
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let io = hyper_util::rt::TokioIo::new(tls);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
        });
    }
}

/// Accepts any client certificate but checks the handshake signature made with its key.
#[derive(Debug)]
struct AnyClientCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: LabApiConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(cfg)?).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

fn refused(why: &str) -> Response {
    let body = json!({ "error": "invalid_token", "error_description": why });
    let mut r = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str("Bearer error=\"invalid_token\"") {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

async fn lab_results(
    State(api): State<Arc<LabApi>>,
    peer: Option<axum::Extension<PeerCert>>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return refused("a bearer access token is required");
    };
    let peer = peer.map(|p| p.0 .0).filter(|c| !c.is_empty());
    let claims = match api.validate(token.trim(), peer.as_deref().map(Vec::as_slice)).await {
        Ok(c) => c,
        Err(e) => return refused(&e.to_string()),
    };
    let holder = ["insz", "cbe", "nihii"]
        .iter()
        .find_map(|k| claims.get(*k).map(|v| json!({ *k: v })))
        .unwrap_or_else(|| json!({ "sub": claims["sub"] }));
    Json(json!({
        "holder": holder,
        "client_id": claims["client_id"],
        "results": [
            { "date": "2026-11-03", "test": "HbA1c", "value": "6.1 %", "reference": "< 6.5 %" },
            { "date": "2026-11-03", "test": "LDL cholesterol", "value": "2.4 mmol/L", "reference": "< 3.0 mmol/L" },
        ],
    }))
    .into_response()
}

impl LabApi {
    /// The broker's JWKS, cached for five minutes (fetched again for an unknown `kid`).
    async fn jwks(&self, refresh: bool) -> Result<Value> {
        let mut cached = self.jwks.lock().await;
        if let (false, Some((at, set))) = (refresh, cached.as_ref()) {
            if at.elapsed() < Duration::from_secs(300) {
                return Ok(set.clone());
            }
        }
        let url = format!("{}/jwks", self.cfg.issuer.trim_end_matches('/'));
        let set: Value = self.http.get(&url).send().await?.error_for_status()?.json().await?;
        *cached = Some((std::time::Instant::now(), set.clone()));
        Ok(set)
    }

    /// Checks the token; `peer` is the TLS client certificate (DER) when there is one.
    async fn validate(
        &self,
        jwt: &str,
        peer: Option<&[u8]>,
    ) -> Result<serde_json::Map<String, Value>> {
        let parts: Vec<&str> = jwt.split('.').collect();
        let [h, p, s] = parts.as_slice() else {
            return Err(anyhow!("not a JWT"));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = serde_json::from_slice(&b64.decode(h)?)?;
        if header["typ"] != "at+jwt" || header["alg"] != "RS256" {
            return Err(anyhow!("not an RS256 access token (typ at+jwt)"));
        }
        let kid = header["kid"].as_str().ok_or_else(|| anyhow!("no kid"))?;
        let find = |set: &Value| {
            set["keys"].as_array().and_then(|ks| ks.iter().find(|k| k["kid"] == kid).cloned())
        };
        let jwk = match find(&self.jwks(false).await?) {
            Some(k) => k,
            None => find(&self.jwks(true).await?).ok_or_else(|| anyhow!("unknown signing key"))?,
        };
        verify_rs256(&jwk, format!("{h}.{p}").as_bytes(), &b64.decode(s)?)?;
        let claims: serde_json::Map<String, Value> = serde_json::from_slice(&b64.decode(p)?)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.cfg.issuer.trim_end_matches('/'))
        {
            return Err(anyhow!("issued by another server"));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        if claims.get("exp").and_then(Value::as_i64).is_none_or(|e| e <= now) {
            return Err(anyhow!("the token has expired"));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.cfg.audience,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&self.cfg.audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(anyhow!("the token is not for this API (aud)"));
        }
        if let Some(cnf) = claims.get("cnf") {
            use sha2::Digest as _;
            let bound = cnf["x5t#S256"].as_str().ok_or_else(|| anyhow!("unknown cnf"))?;
            let Some(der) = peer else {
                return Err(anyhow!(
                    "a certificate-bound token needs the holder's TLS client certificate (mTLS)"
                ));
            };
            if b64.encode(sha2::Sha256::digest(der)) != bound {
                return Err(anyhow!("the token is bound to another certificate"));
            }
        }
        Ok(claims)
    }
}

fn verify_rs256(jwk: &Value, input: &[u8], sig: &[u8]) -> Result<()> {
    use openssl::bn::BigNum;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let n = BigNum::from_slice(&b64.decode(jwk["n"].as_str().context("n")?)?)?;
    let e = BigNum::from_slice(&b64.decode(jwk["e"].as_str().context("e")?)?)?;
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::from_public_components(n, e)?)?;
    let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key)?;
    v.update(input)?;
    if v.verify(sig)? {
        Ok(())
    } else {
        Err(anyhow!("bad signature"))
    }
}
