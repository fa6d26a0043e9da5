//! A test wallet: holds PIDs of the demo citizens, fetches a verifier's signed request object
//! (checking its signature and that the `x509_san_dns` client id is the certificate's name),
//! presents the PID with a key-binding JWT, and answers `direct_post.jwt` encrypted to the
//! request's key. [`Tweaks`] make it misbehave for the hostile tests. [`serve`] is the
//! same-device web page; `mock-eudi-wallet answer` answers a QR code's URI (cross-device).

use super::jose::{self, b64, sha256_b64, EcKey};
use super::provider::{IssueOptions, PidHolder, PidProvider};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Ways to misbehave, each one check of the verifier's.
#[derive(Debug, Clone, Default)]
pub struct Tweaks {
    pub nonce: Option<String>,
    pub aud: Option<String>,
    pub state: Option<String>,
    pub no_key_binding: bool,
    pub key_binding_by_other_key: bool,
    /// Adds a disclosure whose digest is not in `_sd`.
    pub extra_disclosure: bool,
    /// Changes the value inside the family-name disclosure.
    pub tamper_disclosure: bool,
    /// Claim names not disclosed.
    pub withhold: Vec<&'static str>,
    /// Posts `vp_token` and `state` in the clear.
    pub unencrypted: bool,
    /// Encrypts to this key instead of the request's (another request's).
    pub encrypt_to: Option<Value>,
    /// Says no (`error=access_denied`).
    pub decline: bool,
    /// Answers with the mdoc PID (`pid_mdoc`) instead of the SD-JWT VC.
    pub mso_mdoc: bool,
}

/// What the wallet read from the request object.
#[derive(Debug, Clone)]
pub struct Request {
    pub client_id: String,
    pub response_uri: String,
    pub nonce: String,
    pub state: String,
    pub enc_jwk: Value,
    pub claims: Value,
}

/// The verifier's answer to the POST.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// One citizen's wallet: the holder key and the issued PID.
pub struct TestWallet {
    pub holder: EcKey,
    pub credential: String,
    /// The same PID as mdoc (IssuerSigned), bound to the same holder key.
    pub mdoc: ciborium::Value,
    http: reqwest::Client,
}

/// The query of an `openid4vp://` URI (or of any URL carrying the same parameters).
pub fn uri_params(uri: &str) -> anyhow::Result<HashMap<String, String>> {
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
    Ok(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect())
}

impl TestWallet {
    pub fn new(
        provider: &PidProvider,
        who: &PidHolder,
        now: i64,
        opts: &IssueOptions,
    ) -> anyhow::Result<Self> {
        let holder = EcKey::generate()?;
        let credential = provider.issue(who, &holder.jwk(), now, opts)?;
        let mdoc = provider.issue_mdoc(who, &holder.point, now, opts)?;
        Ok(Self { holder, credential, mdoc, http: reqwest::Client::new() })
    }

    /// Fetches and checks the request object named by `wallet_uri`.
    pub async fn fetch_request(&self, wallet_uri: &str) -> anyhow::Result<Request> {
        let q = uri_params(wallet_uri)?;
        let client_id = q.get("client_id").ok_or_else(|| anyhow::anyhow!("no client_id"))?;
        let request_uri = q.get("request_uri").ok_or_else(|| anyhow::anyhow!("no request_uri"))?;
        let resp = self.http.get(request_uri).send().await?;
        anyhow::ensure!(resp.status().is_success(), "request object: {}", resp.status());
        let jwt = resp.text().await?;
        let (header, _) = jose::open_jws(&jwt, None)?;
        anyhow::ensure!(header["typ"] == "oauth-authz-req+jwt", "typ {}", header["typ"]);
        let (key, names) = jose::x5c_leaf(&header)?;
        let (_, claims) = jose::open_jws(&jwt, Some(&key))?;
        let dns = client_id
            .strip_prefix("x509_san_dns:")
            .ok_or_else(|| anyhow::anyhow!("client id prefix"))?;
        anyhow::ensure!(names.iter().any(|n| n == dns), "client id {dns} not in the SAN {names:?}");
        anyhow::ensure!(claims["client_id"] == client_id.as_str(), "client_id differs");
        anyhow::ensure!(claims["response_mode"] == "direct_post.jwt", "response_mode");
        let s = |k: &str| claims[k].as_str().map(str::to_string).unwrap_or_default();
        Ok(Request {
            client_id: client_id.clone(),
            response_uri: s("response_uri"),
            nonce: s("nonce"),
            state: s("state"),
            enc_jwk: claims["client_metadata"]["jwks"]["keys"][0].clone(),
            claims,
        })
    }

    /// The presentation (`vp_token` entry) for `req`.
    pub fn presentation(&self, req: &Request, t: &Tweaks, now: i64) -> anyhow::Result<String> {
        let mut parts = self.credential.trim_end_matches('~').split('~');
        let jwt = parts.next().unwrap_or_default().to_string();
        let mut disclosures = Vec::new();
        for d in parts {
            let v: Value = serde_json::from_slice(&jose::unb64(d)?)?;
            let name = v[1].as_str().unwrap_or_default();
            if t.withhold.contains(&name) {
                continue;
            }
            if t.tamper_disclosure && name == "family_name" {
                disclosures.push(b64(json!([v[0], name, "Jansen"]).to_string().as_bytes()));
            } else {
                disclosures.push(d.to_string());
            }
        }
        if t.extra_disclosure {
            let salt = b64(&rand::random::<[u8; 16]>());
            disclosures
                .push(b64(json!([salt, "family_name_birth", "Jansen"]).to_string().as_bytes()));
        }
        let body = format!("{jwt}~{}~", disclosures.join("~"));
        if t.no_key_binding {
            return Ok(body);
        }
        let kb_claims = json!({
            "iat": now,
            "aud": t.aud.clone().unwrap_or_else(|| req.client_id.clone()),
            "nonce": t.nonce.clone().unwrap_or_else(|| req.nonce.clone()),
            "sd_hash": sha256_b64(body.as_bytes()),
        });
        let other;
        let key = if t.key_binding_by_other_key {
            other = EcKey::generate()?;
            &other
        } else {
            &self.holder
        };
        let kb = key.sign(json!({ "typ": "kb+jwt" }), &kb_claims)?;
        Ok(format!("{body}{kb}"))
    }

    /// The mdoc presentation (base64url DeviceResponse) for `req`: the tweaks that have an mdoc
    /// meaning apply (withheld items, a tampered family name, another nonce or client id, the
    /// device signature by another key).
    pub fn mdoc_presentation(&self, req: &Request, t: &Tweaks) -> anyhow::Result<String> {
        use super::mdoc;
        let transcript = mdoc::session_transcript(
            t.aud.as_deref().unwrap_or(&req.client_id),
            t.nonce.as_deref().unwrap_or(&req.nonce),
            Some(&mdoc::jwk_thumbprint(&req.enc_jwk)),
            &req.response_uri,
        )?;
        let other;
        let key = if t.key_binding_by_other_key {
            other = EcKey::generate()?;
            &other
        } else {
            &self.holder
        };
        let response = mdoc::device_response(
            &self.mdoc,
            key,
            transcript,
            |name| !t.withhold.contains(&name),
            |name, _| {
                (t.tamper_disclosure && name == "family_name")
                    .then(|| ciborium::Value::Text("Jansen".into()))
            },
        )?;
        Ok(b64(&mdoc::encode(&response)?))
    }

    /// Posts the answer to `req` (the form `direct_post.jwt` asks for, unless tweaked).
    pub async fn respond(&self, req: &Request, t: &Tweaks, now: i64) -> anyhow::Result<Answer> {
        let state = t.state.clone().unwrap_or_else(|| req.state.clone());
        let payload = if t.decline {
            json!({ "error": "access_denied", "state": state })
        } else {
            let vp_token = if t.mso_mdoc {
                json!({ "pid_mdoc": [self.mdoc_presentation(req, t)?] })
            } else {
                json!({ "pid": [self.presentation(req, t, now)?] })
            };
            json!({ "vp_token": vp_token, "state": state })
        };
        let form: Vec<(String, String)> = if t.unencrypted {
            vec![("vp_token".into(), payload["vp_token"].to_string()), ("state".into(), state)]
        } else {
            let jwk = t.encrypt_to.as_ref().unwrap_or(&req.enc_jwk);
            vec![("response".into(), jose::encrypt_to(jwk, payload.to_string().as_bytes())?)]
        };
        let resp = self.http.post(&req.response_uri).form(&form).send().await?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// Fetches the request and answers it.
    pub async fn answer(&self, wallet_uri: &str, t: &Tweaks, now: i64) -> anyhow::Result<Answer> {
        let req = self.fetch_request(wallet_uri).await?;
        self.respond(&req, t, now).await
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn page(title: &str, body: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    ))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The test wallet on `listener`: `GET /?client_id=…&request_uri=…` (what `openid4vp://`
/// carries) asks whose PID to share; `POST /share` shares it and sends the browser on as the
/// verifier says; `POST /answer` (JSON `{"holder","uri"}`, `"format": "mso_mdoc"` for the mdoc) is what `mock-eudi-wallet answer`
/// calls for a QR code's URI.
pub async fn serve(
    listener: tokio::net::TcpListener,
    provider: Arc<PidProvider>,
) -> anyhow::Result<()> {
    use axum::extract::{Form, Json, Query, State};
    use axum::response::{IntoResponse, Redirect, Response};
    let mut wallets = HashMap::new();
    for h in super::provider::holders() {
        wallets.insert(
            h.key,
            Arc::new(TestWallet::new(&provider, &h, now(), &IssueOptions::default())?),
        );
    }
    let wallets = Arc::new(wallets);
    async fn choose(Query(q): Query<HashMap<String, String>>) -> Response {
        let (Some(cid), Some(ruri)) = (q.get("client_id"), q.get("request_uri")) else {
            return page(
                "Test EU wallet",
                "<p>Open this wallet from a verifier's \"EU Digital Identity Wallet\" link.</p>",
            )
            .into_response();
        };
        let mut body = format!("<p>The verifier <strong>{}</strong> asks for your PID (names, birth date, nationalities, issuing country).</p><form method=\"post\" action=\"/share\"><input type=\"hidden\" name=\"client_id\" value=\"{}\"><input type=\"hidden\" name=\"request_uri\" value=\"{}\"><fieldset><legend>Whose wallet is this?</legend>", esc(cid), esc(cid), esc(ruri));
        for (i, h) in super::provider::holders().iter().enumerate() {
            body.push_str(&format!(
                "<p><label><input type=\"radio\" name=\"holder\" value=\"{}\"{}> {} {} ({}, born {})</label></p>",
                h.key,
                if i == 0 { " checked" } else { "" },
                h.given_name,
                h.family_name,
                h.issuing_country,
                h.birth_date
            ));
        }
        body.push_str("</fieldset><fieldset><legend>Which credential?</legend><p><label><input type=\"radio\" name=\"format\" value=\"dc+sd-jwt\" checked> PID as SD-JWT VC</label></p><p><label><input type=\"radio\" name=\"format\" value=\"mso_mdoc\"> PID as mdoc (ISO 18013-5)</label></p></fieldset><p><button name=\"decision\" value=\"share\">Share</button> <button name=\"decision\" value=\"decline\">Decline</button></p></form>");
        page("Test EU wallet", &body).into_response()
    }
    type Wallets = Arc<HashMap<&'static str, Arc<TestWallet>>>;
    async fn share(State(w): State<Wallets>, Form(f): Form<HashMap<String, String>>) -> Response {
        let holder = f.get("holder").map(String::as_str).unwrap_or_default();
        let Some(wallet) = w.get(holder) else {
            return (axum::http::StatusCode::BAD_REQUEST, "unknown holder").into_response();
        };
        let uri = format!(
            "openid4vp://?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair(
                    "client_id",
                    f.get("client_id").map(String::as_str).unwrap_or_default()
                )
                .append_pair(
                    "request_uri",
                    f.get("request_uri").map(String::as_str).unwrap_or_default()
                )
                .finish()
        );
        let t = Tweaks {
            decline: f.get("decision").is_some_and(|d| d == "decline"),
            mso_mdoc: f.get("format").is_some_and(|d| d == "mso_mdoc"),
            ..Default::default()
        };
        match wallet.answer(&uri, &t, now()).await {
            Ok(a) => match a.body["redirect_uri"].as_str() {
                Some(next) => Redirect::to(next).into_response(),
                None => page(
                    "Test EU wallet",
                    &format!("<p>The verifier refused: {}</p>", esc(&a.body.to_string())),
                )
                .into_response(),
            },
            Err(e) => {
                page("Test EU wallet", &format!("<p>{}</p>", esc(&e.to_string()))).into_response()
            }
        }
    }
    async fn answer(State(w): State<Wallets>, Json(j): Json<Value>) -> Response {
        let holder = j["holder"].as_str().unwrap_or_default();
        let Some(wallet) = w.get(holder) else {
            return (axum::http::StatusCode::BAD_REQUEST, "unknown holder").into_response();
        };
        let t = Tweaks { mso_mdoc: j["format"] == "mso_mdoc", ..Default::default() };
        match wallet.answer(j["uri"].as_str().unwrap_or_default(), &t, now()).await {
            Ok(a) => Json(json!({ "status": a.status, "verifier": a.body })).into_response(),
            Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    let app = axum::Router::new()
        .route("/", axum::routing::get(choose))
        .route("/share", axum::routing::post(share))
        .route("/answer", axum::routing::post(answer))
        .with_state(wallets);
    axum::serve(listener, app).await?;
    Ok(())
}
