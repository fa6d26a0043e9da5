//! The steps of a wallet login, each a use case the web layer only renders:
//! [`Eudiw::start`] (a request bound to the browser session, and the `openid4vp://` URI),
//! [`Eudiw::request_object`] (the signed request, served once to the wallet),
//! [`Eudiw::accept`] (the wallet's `direct_post.jwt`), [`Eudiw::poll`] (the waiting page) and
//! [`Eudiw::finish`] (the browser at `/eudiw/continue`: only the session that started may use
//! the answer; a linked or Belgian PID logs in, another goes to first-login linking).

use super::mdoc;
use super::sdjwt::{self, Pid, Refusal};
use super::{jose, Answer, Eudiw, EudiwError, REQUEST_KEY_PURPOSE, REQUEST_TTL_S};
use crate::assurance::{AssuranceLevel, Method};
use crate::audit::{Event, Kind, Outcome};
use crate::crypto;
use crate::identity::Insz;
use crate::linking::{self, ForeignIdentity, LinkVia};
use crate::session::{EidasLink, LoggedIn, Login};
use crate::store::EudiwRequestRow;
use serde_json::{json, Value};

/// A request made: the wallet opens `wallet_uri` (a link on this device, a QR code on another).
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub id: String,
    /// `openid4vp://?client_id=…&request_uri=…` (the QR code).
    pub wallet_uri: String,
    /// The same parameters on `[eudiw] wallet_url` (the same-device link).
    pub same_device_uri: String,
}

/// Why the wallet's POST is refused before it could be tied to a request (nothing recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unbound {
    /// No request of ours has this key, or its request object was never fetched.
    Unsolicited,
    /// A plain `vp_token` where `direct_post.jwt` was asked.
    Unencrypted,
    /// The JWE does not decrypt, or its content is not a response.
    Malformed,
    /// The response names another request's `state`.
    WrongState,
    /// Answered before.
    Replayed,
    Expired,
}

impl Unbound {
    pub fn code(self) -> &'static str {
        match self {
            Self::Unsolicited => "unsolicited",
            Self::Unencrypted => "unencrypted",
            Self::Malformed => "malformed",
            Self::WrongState => "wrong_state",
            Self::Replayed => "replayed",
            Self::Expired => "expired",
        }
    }
}

/// What the wallet's POST came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Verified and kept; the browser (same-device) continues here.
    Continue {
        redirect_uri: String,
    },
    /// The wallet said no (`error`): kept so the browser can say so.
    Declined {
        redirect_uri: String,
    },
    /// The PID failed a check: the refusal is kept for the browser's page, nothing else.
    Refused {
        reason: Refusal,
        redirect_uri: String,
    },
    Unbound(Unbound),
}

/// What the waiting page learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    Waiting,
    Answered,
    /// Not this browser's request, or gone.
    Unknown,
}

/// What the continue step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// The PID's holder is known: logged in (with the person the step read).
    LoggedIn(LoggedIn),
    /// First login of this PID: link it to a Bis number (`/link`).
    NeedsLink(EidasLink),
    Cancelled,
    Refused(Refusal),
    /// Not answered yet: the browser should wait.
    Waiting,
    /// Another browser's request, or used before.
    OtherSession,
}

/// The form the wallet posts to `/eudiw/response`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct WalletPost {
    pub response: Option<String>,
    pub vp_token: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// The identity-link key of a PID (SPEC §12): issuing country and administrative number, else
/// a hash of names, birth date and country (no personal data in the key itself).
pub fn link_key(pid: &Pid) -> String {
    match &pid.personal_administrative_number {
        Some(n) => format!("{}/{}", pid.issuing_country, n),
        None => {
            let joined = [
                linking::fold_name(&pid.family_name),
                linking::fold_name(&pid.given_name),
                pid.birth_date.clone(),
                pid.issuing_country.clone(),
            ]
            .join("\u{1f}");
            format!(
                "{}/h:{}",
                pid.issuing_country,
                crypto::b64url(&crypto::sha256(joined.as_bytes()))
            )
        }
    }
}

/// The DCQL query (OpenID4VP 1.0 §6): the PID as SD-JWT VC (`pid`) or, as the alternative
/// credential set, as mdoc (`pid_mdoc`); each with or without the administrative number.
fn dcql_query() -> Value {
    let claim = |id: &str| json!({ "id": id, "path": [id] });
    let mdoc_claim = |id: &str| json!({ "id": id, "path": [mdoc::PID_NAMESPACE, id] });
    json!({
        "credentials": [{
            "id": "pid",
            "format": "dc+sd-jwt",
            "meta": { "vct_values": [sdjwt::PID_VCT] },
            "claims": [
                claim("family_name"),
                claim("given_name"),
                claim("birth_date"),
                claim("nationalities"),
                claim("issuing_country"),
                claim("personal_administrative_number"),
            ],
            "claim_sets": [
                ["family_name", "given_name", "birth_date", "nationalities", "issuing_country",
                 "personal_administrative_number"],
                ["family_name", "given_name", "birth_date", "nationalities", "issuing_country"],
            ],
        }, {
            "id": "pid_mdoc",
            "format": "mso_mdoc",
            "meta": { "doctype_value": mdoc::PID_DOCTYPE },
            "claims": [
                mdoc_claim("family_name"),
                mdoc_claim("given_name"),
                mdoc_claim("birth_date"),
                mdoc_claim("issuing_country"),
                mdoc_claim("nationality"),
                mdoc_claim("personal_administrative_number"),
            ],
            "claim_sets": [
                ["family_name", "given_name", "birth_date", "issuing_country", "nationality",
                 "personal_administrative_number"],
                ["family_name", "given_name", "birth_date", "issuing_country", "nationality"],
            ],
        }],
        "credential_sets": [{ "options": [["pid"], ["pid_mdoc"]] }],
    })
}

impl Eudiw {
    fn continue_uri(&self, id: &str) -> String {
        format!("{}/eudiw/continue?r={id}", self.base)
    }

    /// A new request for the browser session `session_id`, with its own encryption key.
    pub async fn start(
        &self,
        session_id: &str,
        min_level: AssuranceLevel,
        now: i64,
    ) -> Result<Started, EudiwError> {
        let (scalar, _) = jose::ephemeral_key()?;
        let id = crypto::random_token(24);
        self.store
            .insert_eudiw_request(&EudiwRequestRow {
                id: id.clone(),
                key_id: crypto::random_token(16),
                state: crypto::random_token(24),
                nonce: crypto::random_token(24),
                session_ref: crypto::token_hash(session_id),
                min_level,
                enc_key: self.master.encrypt(REQUEST_KEY_PURPOSE, &scalar)?,
                created_at: now,
                expires_at: now + REQUEST_TTL_S,
                fetched_at: None,
                answered_at: None,
                result: None,
                consumed_at: None,
            })
            .await?;
        let request_uri = format!("{}/eudiw/request/{id}", self.base);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("request_uri", &request_uri)
            .finish();
        let sep = if self.wallet_url.contains('?') { '&' } else { '?' };
        Ok(Started {
            id,
            wallet_uri: format!("openid4vp://?{query}"),
            same_device_uri: format!("{}{sep}{query}", self.wallet_url),
        })
    }

    /// The signed request object, the first time it is asked for; `None` afterwards (a second
    /// fetch could be someone else's wallet) and for unknown or expired requests.
    pub async fn request_object(&self, id: &str, now: i64) -> Result<Option<String>, EudiwError> {
        let Some(row) = self.store.eudiw_request(id).await? else { return Ok(None) };
        if !self.store.fetch_eudiw_request(id, now).await? {
            return Ok(None);
        }
        let scalar = self.master.decrypt(REQUEST_KEY_PURPOSE, &row.enc_key)?;
        let mut jwk = jose::p256_jwk(&jose::ephemeral_public(&scalar)?);
        jwk["kid"] = json!(row.key_id);
        jwk["use"] = json!("enc");
        jwk["alg"] = json!("ECDH-ES");
        use base64::Engine;
        let header = json!({
            "typ": "oauth-authz-req+jwt",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&self.cert_der)],
        });
        let payload = json!({
            "iss": self.client_id,
            "aud": "https://self-issued.me/v2",
            "client_id": self.client_id,
            "response_type": "vp_token",
            "response_mode": "direct_post.jwt",
            "response_uri": format!("{}/eudiw/response", self.base),
            "nonce": row.nonce,
            "state": row.state,
            "iat": now,
            "exp": row.expires_at,
            "dcql_query": dcql_query(),
            "client_metadata": {
                "jwks": { "keys": [jwk] },
                "encrypted_response_enc_values_supported": ["A128GCM", "A256GCM"],
                "vp_formats_supported": {
                    "dc+sd-jwt": { "sd-jwt_alg_values": ["ES256"], "kb-jwt_alg_values": ["ES256"] },
                },
            },
        });
        Ok(Some(jose::sign_es256(&self.signing_key, header, &payload)?))
    }

    /// The wallet's POST: decrypted with the request's key, tied to it by `state`, the PID
    /// verified; the outcome is kept with the request for the browser. A refused presentation
    /// stores nothing about the person; an accepted one is remembered (by hash) so that it is
    /// accepted once on every replica.
    pub async fn accept(
        &self,
        post: WalletPost,
        address: &str,
        now: i64,
    ) -> Result<Accepted, EudiwError> {
        let unbound = |u| Ok(Accepted::Unbound(u));
        let Some(jwe) = post.response else {
            return unbound(if post.vp_token.is_some() || post.state.is_some() {
                Unbound::Unencrypted
            } else {
                Unbound::Malformed
            });
        };
        let Ok(header) = jose::jwe_header(&jwe) else { return unbound(Unbound::Malformed) };
        let Some(kid) = header.get("kid").and_then(Value::as_str) else {
            return unbound(Unbound::Unsolicited);
        };
        let Some(row) = self.store.eudiw_request_by_key(kid).await? else {
            return unbound(Unbound::Unsolicited);
        };
        if row.fetched_at.is_none() {
            return unbound(Unbound::Unsolicited);
        }
        if row.answered_at.is_some() {
            return unbound(Unbound::Replayed);
        }
        if row.expires_at <= now {
            return unbound(Unbound::Expired);
        }
        let scalar = self.master.decrypt(REQUEST_KEY_PURPOSE, &row.enc_key)?;
        let Ok(plain) = jose::decrypt_ecdh_es(&jwe, &scalar) else {
            return unbound(Unbound::Malformed);
        };
        let Ok(body) = serde_json::from_slice::<Value>(&plain) else {
            return unbound(Unbound::Malformed);
        };
        let state = body.get("state").and_then(Value::as_str).unwrap_or_default();
        if !crypto::ct_eq(state.as_bytes(), row.state.as_bytes()) {
            return unbound(Unbound::WrongState);
        }
        let redirect_uri = self.continue_uri(&row.id);
        let answer = if body.get("error").is_some() {
            Answer::Cancelled
        } else {
            let thumbprint = jose::jwk_thumbprint(&jose::ephemeral_public(&scalar)?);
            match self.verify(&body, &row, &thumbprint, now).await? {
                Ok(pid) => Answer::Ok { pid, level: AssuranceLevel::High.min(self.max_level) },
                Err(reason) => {
                    tracing::info!(reason = reason.code(), "wallet presentation refused");
                    let detail = json!({ "reason": reason.code() });
                    let event = Event::new(Kind::Login, Outcome::Refused)
                        .factor(Method::Eudiw)
                        .address(address)
                        .detail(detail);
                    self.audit.record(event, now).await;
                    Answer::Refused { reason }
                }
            }
        };
        let json =
            serde_json::to_string(&answer).map_err(|e| EudiwError::Corrupt(e.to_string()))?;
        if !self.store.answer_eudiw_request(&row.id, &json, now).await? {
            return unbound(Unbound::Replayed);
        }
        Ok(match answer {
            Answer::Ok { .. } => Accepted::Continue { redirect_uri },
            Answer::Cancelled => Accepted::Declined { redirect_uri },
            Answer::Refused { reason } => Accepted::Refused { reason, redirect_uri },
        })
    }

    /// Every check of SPEC §12 on the decrypted response; the presentation's hash is stored
    /// only when all passed.
    async fn verify(
        &self,
        body: &Value,
        row: &EudiwRequestRow,
        enc_thumbprint: &[u8],
        now: i64,
    ) -> Result<Result<Pid, Refusal>, EudiwError> {
        let entry = |id: &str| match body.get("vp_token").and_then(|v| v.get(id)) {
            Some(Value::String(s)) => Some(s.as_str()),
            Some(Value::Array(a)) if a.len() == 1 => a[0].as_str(),
            _ => None,
        };
        let checked = match (entry("pid"), entry("pid_mdoc")) {
            (Some(token), None) => {
                let expect = sdjwt::Expect { client_id: &self.client_id, nonce: &row.nonce, now };
                sdjwt::verify(token, &self.anchors, &expect).map(|v| (token, v))
            }
            (None, Some(token)) => {
                let response_uri = format!("{}/eudiw/response", self.base);
                let expect = mdoc::Expect {
                    client_id: &self.client_id,
                    nonce: &row.nonce,
                    response_uri: &response_uri,
                    jwk_thumbprint: Some(enc_thumbprint),
                    now,
                };
                mdoc::verify(token, &self.anchors, &expect).map(|v| (token, v))
            }
            _ => Err(Refusal::ClaimMissing),
        };
        let (token, verified) = match checked {
            Ok(v) => v,
            Err(r) => return Ok(Err(r)),
        };
        // SPEC §12: an unknown status refuses, for an mdoc without a status list as for an
        // SD-JWT VC without one.
        let Some(at) = &verified.status else {
            return Ok(Err(Refusal::StatusUnknown));
        };
        if let Err(r) = self.status.check(at, &self.anchors, now).await {
            return Ok(Err(r));
        }
        // Accepted once on every replica: remembered until the credential itself expires.
        let key = format!("eudiw-vp:{}", crypto::b64url(&crypto::sha256(token.as_bytes())));
        let until = verified.exp.max(now) + sdjwt::KB_MAX_AGE_S;
        if !self.store.see_once(&key, until).await? {
            return Ok(Err(Refusal::Replayed));
        }
        Ok(Ok(verified.pid))
    }

    /// Whether the browser's request has its answer yet.
    pub async fn poll(&self, session_id: &str, id: &str) -> Result<Poll, EudiwError> {
        let Some(row) = self.own_request(session_id, id).await? else { return Ok(Poll::Unknown) };
        Ok(if row.answered_at.is_some() { Poll::Answered } else { Poll::Waiting })
    }

    async fn own_request(
        &self,
        session_id: &str,
        id: &str,
    ) -> Result<Option<EudiwRequestRow>, EudiwError> {
        let session_ref = crypto::token_hash(session_id);
        Ok(self
            .store
            .eudiw_request(id)
            .await?
            .filter(|r| crypto::ct_eq(r.session_ref.as_bytes(), session_ref.as_bytes())))
    }

    /// The browser at `/eudiw/continue`: the answer is used once, by the session that asked.
    pub async fn finish(
        &self,
        session_id: &str,
        id: Option<&str>,
        now: i64,
    ) -> Result<Finished, EudiwError> {
        let row = match id {
            Some(id) => self.own_request(session_id, id).await?,
            None => None,
        };
        let Some(row) = row else { return Ok(Finished::OtherSession) };
        if row.answered_at.is_none() {
            return Ok(if row.expires_at <= now {
                Finished::OtherSession
            } else {
                Finished::Waiting
            });
        }
        if !self.store.consume_eudiw_request(&row.id, now).await? {
            return Ok(Finished::OtherSession);
        }
        let answer: Answer = serde_json::from_str(row.result.as_deref().unwrap_or("null"))
            .map_err(|e| EudiwError::Corrupt(format!("stored answer: {e}")))?;
        let (pid, level) = match answer {
            Answer::Ok { pid, level } => (pid, level),
            Answer::Cancelled => return Ok(Finished::Cancelled),
            Answer::Refused { reason } => return Ok(Finished::Refused(reason)),
        };
        let country = pid.issuing_country.clone();
        let login = |person_id: String| Login {
            person_id,
            auth_time: now,
            acr: level,
            amr: vec![Method::Eudiw.as_str().into()],
            method: Method::Eudiw,
            eidas_person_identifier: None,
            eudiw_issuing_country: Some(country.clone()),
        };
        // A Belgian PID names its holder's INSZ: no link needed.
        let belgian = (pid.issuing_country == "BE")
            .then(|| {
                pid.personal_administrative_number.as_deref().and_then(|n| Insz::parse(n).ok())
            })
            .flatten();
        if let Some(insz) = belgian {
            let person = self
                .store
                .person_or_create(
                    &insz,
                    &pid.given_name,
                    &pid.family_name,
                    Some(&pid.birth_date),
                    now,
                )
                .await?;
            let login = login(person.id.clone());
            return Ok(Finished::LoggedIn(LoggedIn { login, person: Some(person) }));
        }
        let subject = link_key(&pid);
        if let Some(person) = self.store.person_by_identity(linking::EUDIW, &subject).await? {
            let login = login(person.id.clone());
            return Ok(Finished::LoggedIn(LoggedIn { login, person: Some(person) }));
        }
        Ok(Finished::NeedsLink(EidasLink {
            identity: ForeignIdentity {
                person_identifier: subject,
                family_name: pid.family_name,
                given_name: pid.given_name,
                birthdate: pid.birth_date,
            },
            level,
            at: now,
            via: LinkVia::Eudiw { issuing_country: pid.issuing_country },
        }))
    }
}
