//! "My lab results": a small API behind the broker for the demo (SPEC §10), the way a CoZo hub or
//! an eHealth API would consume the broker's access tokens. It validates the JWT offline with the
//! broker's JWKS (RS256, `typ: at+jwt`, `iss`, `exp`, and `aud` = this API), and accepts only
//! tokens restricted to it. A certificate-bound token (`cnf.x5t#S256`) needs the holder's TLS
//! certificate, which this plain-HTTP API cannot see: it refuses them, so a stolen bound token
//! is useless here.
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

async fn lab_results(State(api): State<Arc<LabApi>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return refused("a bearer access token is required");
    };
    let claims = match api.validate(token.trim()).await {
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

    async fn validate(&self, jwt: &str) -> Result<serde_json::Map<String, Value>> {
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
        if claims.contains_key("cnf") {
            return Err(anyhow!(
                "a certificate-bound token needs the holder's TLS certificate, which this API does not see"
            ));
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
