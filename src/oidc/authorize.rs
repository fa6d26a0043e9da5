//! The authorization endpoint's protocol logic: validating a request, deciding whether an
//! existing login may answer it, and issuing the code (SPEC §5, RFC 6749 §4.1, RFC 7636, RFC 9126,
//! RFC 9207).

use super::claims::{GrantDetails, PersonClaims};
use super::{OidcError, Provider};
use crate::assurance::AssuranceLevel;
use crate::crypto;
use crate::policy::{Candidate, Decision, LoginFacts, PolicyError, Subject};
use crate::session::Login;
use crate::store::{ClientRow, CodeRow, PendingRow, Person};
use serde::{Deserialize, Serialize};

pub const PAR_URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Query (or PAR form) parameters as they arrive; nothing is trusted yet.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub acr_values: Option<String>,
    pub ui_locales: Option<String>,
    pub claims: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    pub login_hint: Option<String>,
    /// An ID token we issued earlier, naming the person the client asks about.
    pub id_token_hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prompt {
    Default,
    /// `prompt=login`: the person must log in again, whatever the session holds.
    Login,
    /// `prompt=none`: answer from the session or fail with `login_required`.
    None,
}

/// A validated authorization request, kept while the person logs in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// The client's policy (`policies/<name>.cedar`).
    pub policy: String,
    /// The level `acr_values`/`claims` ask for, if any: a login must reach it on top of what the
    /// policy needs (a request can ask for more, never for less).
    pub asked_level: Option<AssuranceLevel>,
    /// The lowest level among the methods that would satisfy both (for upstream requests).
    pub min_level: AssuranceLevel,
    pub ui_locales: Vec<String>,
    pub login_hint: Option<String>,
    /// The `sub` of a verified `id_token_hint`: only a login of that person may answer
    /// (OIDC Core §3.1.2.1); the session of anyone else counts as no login.
    #[serde(default)]
    pub id_token_hint_sub: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: show a page, never redirect.
    #[error("untrusted client or redirect URI ({0})")]
    BadClient(&'static str),
    /// An error for the client, sent to its (verified) redirect URI.
    #[error("{error}: {description}")]
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
    #[error("authorization failed")]
    Server(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<PolicyError> for AuthorizeError {
    fn from(e: PolicyError) -> Self {
        AuthorizeError::Server(Box::new(e))
    }
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthorizeError::Server(Box::new(e))
    }
}

/// The policy's answer for one request and one (possible) login.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    Answer,
    StepUp {
        reasons: Vec<String>,
        methods: Vec<Candidate>,
    },
    /// `temporary`: only because a registry could not be asked.
    Deny {
        reasons: Vec<String>,
        temporary: bool,
    },
}

/// What the endpoint does with a valid request and the browser's current login.
#[derive(Debug)]
pub enum Next {
    /// The existing login satisfies the request: send the code.
    Answer,
    /// The person must log in (again, or more strongly).
    LogIn,
    /// `prompt=none` but a login is needed.
    LoginRequired,
}

const MAX_PARAM: usize = 2048;
/// An ID token is longer than the other parameters (signature, claims).
const MAX_ID_TOKEN_HINT: usize = 8192;

/// What a code answers: the pending request it ends (if stored) and the audit row of the login
/// just made (if any), both written with the code; the row is taken when it is.
pub struct Answering<'a> {
    pub pending_id: Option<&'a str>,
    pub login_audit: &'a mut Option<crate::store::AuditRow>,
}

impl Provider {
    /// Validates an authorization request. With `pushed_by`, the request came through PAR from
    /// that (authenticated) client.
    pub async fn validate_authorize(
        &self,
        params: &AuthorizeParams,
        pushed_by: Option<&ClientRow>,
        now: i64,
    ) -> Result<AuthRequest, AuthorizeError> {
        if pushed_by.is_none() {
            if let Some(uri) = &params.request_uri {
                return self.load_pushed(params, uri, now).await;
            }
        }
        let client_id =
            params.client_id.as_deref().ok_or(AuthorizeError::BadClient("client_id"))?;
        let client = match pushed_by {
            Some(c) if c.id == client_id => c.clone(),
            Some(_) => return Err(AuthorizeError::BadClient("client_id")),
            // The same short-lived cache as client authentication at /token (issue #17: one
            // query less per login; a removed client stops working within CLIENT_TTL_S).
            None => self
                .registered_client(client_id, now)
                .await
                .map_err(|e| AuthorizeError::Server(Box::new(e)))?
                .ok_or(AuthorizeError::BadClient("client_id"))?,
        };
        let redirect_uri =
            params.redirect_uri.as_deref().ok_or(AuthorizeError::BadClient("redirect_uri"))?;
        // Exact string match against the registered URIs (no prefix or pattern matching).
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(AuthorizeError::BadClient("redirect_uri"));
        }
        let fail = |error: &'static str, description: &str| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_string(),
            state: params.state.clone(),
            error,
            description: description.to_string(),
        };
        for v in
            [&params.state, &params.nonce, &params.login_hint, &params.claims].into_iter().flatten()
        {
            if v.len() > MAX_PARAM {
                return Err(fail("invalid_request", "a parameter is too long"));
            }
        }
        if params.id_token_hint.as_ref().is_some_and(|h| h.len() > MAX_ID_TOKEN_HINT) {
            return Err(fail("invalid_request", "id_token_hint is too long"));
        }
        if params.request.is_some() {
            return Err(fail(
                "request_not_supported",
                "request objects are not supported; use PAR",
            ));
        }
        if params.request_uri.is_some() {
            return Err(fail("invalid_request", "request_uri is only accepted at /authorize"));
        }
        if params.response_type.as_deref() != Some("code") {
            return Err(fail("unsupported_response_type", "only response_type=code is supported"));
        }
        if !matches!(params.response_mode.as_deref(), None | Some("query")) {
            return Err(fail("invalid_request", "only response_mode=query is supported"));
        }
        let requested: Vec<&str> =
            params.scope.as_deref().unwrap_or_default().split_ascii_whitespace().collect();
        if !requested.contains(&"openid") {
            return Err(fail("invalid_scope", "the scope must contain openid"));
        }
        let scope: Vec<String> =
            super::SCOPES.iter().filter(|s| requested.contains(s)).map(|s| s.to_string()).collect();
        let code_challenge =
            match (params.code_challenge.as_deref(), params.code_challenge_method.as_deref()) {
                (Some(c), Some("S256")) if is_pkce_value(c) && c.len() == 43 => c.to_string(),
                (Some(_), Some("S256")) => {
                    return Err(fail("invalid_request", "code_challenge is not a S256 challenge"))
                }
                _ => {
                    return Err(fail(
                        "invalid_request",
                        "PKCE with code_challenge_method=S256 is required",
                    ))
                }
            };
        let prompts: Vec<&str> =
            params.prompt.as_deref().unwrap_or_default().split_ascii_whitespace().collect();
        let prompt = if prompts.contains(&"none") {
            if prompts.len() > 1 {
                return Err(fail("invalid_request", "prompt=none cannot be combined"));
            }
            Prompt::None
        } else if prompts.contains(&"login") {
            Prompt::Login
        } else {
            // consent and select_account need no screen here: the broker has no consent step
            // (clients are registered by the operator) and one person per browser session.
            Prompt::Default
        };
        let max_age = match params.max_age.as_deref() {
            None | Some("") => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return Err(fail("invalid_request", "max_age must be a non-negative integer")),
            },
        };
        let id_token_hint_sub = match params.id_token_hint.as_deref() {
            None | Some("") => None,
            Some(hint) => {
                let token = self.verify_issued_id_token(hint).map_err(|e| {
                    tracing::info!(client = %client.id, error = %e, "id_token_hint refused");
                    fail("invalid_request", "id_token_hint is not an ID token issued here")
                })?;
                if !token.audience.contains(&client.id) {
                    tracing::info!(client = %client.id, "id_token_hint issued to another client");
                    return Err(fail(
                        "invalid_request",
                        "id_token_hint was issued to another client",
                    ));
                }
                Some(token.subject)
            }
        };
        let mut asked = requested_level(params.acr_values.as_deref());
        if let Some(claims) = &params.claims {
            match claims_level(claims) {
                Ok(Some(l)) => asked = Some(asked.map_or(l, |a| a.max(l))),
                Ok(None) => {}
                Err(()) => {
                    return Err(fail("invalid_request", "the claims parameter is not valid JSON"))
                }
            }
        }
        let offered = self.offered(asked);
        let decision = self
            .policies
            .decide(&client.policy, &client.id, &Subject::anyone(), None, &offered, now)
            .map_err(|e| AuthorizeError::Server(Box::new(e)))?;
        let Decision::StepUp { methods, .. } = decision else {
            return Err(fail(
                "unmet_authentication_requirements",
                "no login method offered here satisfies this client's policy and the requested level",
            ));
        };
        let min_level = methods.iter().map(|c| c.level).min().unwrap_or(AssuranceLevel::High);
        let ui_locales = params
            .ui_locales
            .as_deref()
            .unwrap_or_default()
            .split_ascii_whitespace()
            .take(8)
            .map(str::to_string)
            .collect();
        Ok(AuthRequest {
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.to_string(),
            scope,
            state: params.state.clone(),
            nonce: params.nonce.clone(),
            code_challenge,
            prompt,
            max_age,
            policy: client.policy.clone(),
            asked_level: asked,
            min_level,
            ui_locales,
            login_hint: params.login_hint.clone(),
            id_token_hint_sub,
            created_at: now,
        })
    }

    async fn load_pushed(
        &self,
        params: &AuthorizeParams,
        uri: &str,
        now: i64,
    ) -> Result<AuthRequest, AuthorizeError> {
        let client_id =
            params.client_id.as_deref().ok_or(AuthorizeError::BadClient("client_id"))?;
        let id =
            uri.strip_prefix(PAR_URN_PREFIX).ok_or(AuthorizeError::BadClient("request_uri"))?;
        let row = self
            .store
            .pending(id, now)
            .await?
            .filter(|p| p.pushed && p.client_id == client_id)
            .ok_or(AuthorizeError::BadClient("request_uri"))?;
        // A pushed request is used once (RFC 9126 §2.2).
        if !self.store.take_pending(&row.id).await? {
            return Err(AuthorizeError::BadClient("request_uri"));
        }
        let mut req: AuthRequest = serde_json::from_str(&row.params)
            .map_err(|e| AuthorizeError::Server(format!("pushed request: {e}").into()))?;
        req.created_at = now;
        Ok(req)
    }

    /// Stores a pushed authorization request; returns its `request_uri` and life in seconds.
    pub async fn push(
        &self,
        client: &ClientRow,
        params: &AuthorizeParams,
        now: i64,
    ) -> Result<(String, i64), OidcError> {
        let req =
            self.validate_authorize(params, Some(client), now).await.map_err(|e| match e {
                AuthorizeError::BadClient(what) => {
                    OidcError::InvalidRequest(format!("{what} is missing or not registered"))
                }
                AuthorizeError::Redirect { error, description, .. } => {
                    OidcError::Custom(error, description)
                }
                AuthorizeError::Server(s) => OidcError::Server(s),
            })?;
        let id = crypto::random_token(32);
        self.store
            .insert_pending(&PendingRow {
                id: id.clone(),
                client_id: client.id.clone(),
                params: serde_json::to_string(&req).unwrap_or_default(),
                pushed: true,
                created_at: now,
                expires_at: now + self.cfg.par_ttl_s,
            })
            .await?;
        Ok((format!("{PAR_URN_PREFIX}{id}"), self.cfg.par_ttl_s))
    }

    /// A pushed authorization request (RFC 9126): the client authenticates as at `/token`, and
    /// the request is validated and stored; returns its `request_uri` and life in seconds.
    pub async fn par(
        &self,
        creds: &super::client_auth::ClientCredentials,
        mut params: AuthorizeParams,
        now: i64,
    ) -> Result<(String, i64), OidcError> {
        let client = self.authenticate_client(creds, now).await?;
        params.client_id.get_or_insert(client.id.clone());
        self.push(&client, &params, now).await
    }

    /// Keeps a validated request while the person logs in; returns its id.
    pub async fn save_pending(
        &self,
        req: &AuthRequest,
        now: i64,
    ) -> Result<String, AuthorizeError> {
        let id = crypto::random_token(24);
        self.store
            .insert_pending(&PendingRow {
                id: id.clone(),
                client_id: req.client_id.clone(),
                params: serde_json::to_string(req).unwrap_or_default(),
                pushed: false,
                created_at: now,
                expires_at: now + self.cfg.pending_ttl_s,
            })
            .await?;
        Ok(id)
    }

    pub async fn load_pending(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<AuthRequest>, AuthorizeError> {
        let Some(row) = self.store.pending(id, now).await? else {
            return Ok(None);
        };
        if row.pushed {
            return Ok(None);
        }
        Ok(serde_json::from_str(&row.params).ok())
    }

    /// The offered methods at or above the level a request asked for.
    pub fn offered(&self, asked: Option<AssuranceLevel>) -> Vec<Candidate> {
        self.candidates.iter().filter(|c| asked.is_none_or(|a| c.level >= a)).copied().collect()
    }

    /// Whether `login` is fresh enough for `req` (`max_age`, `prompt=login`).
    fn fresh(&self, req: &AuthRequest, login: &Login, now: i64) -> bool {
        if let Some(max_age) = req.max_age {
            if now - login.auth_time > max_age {
                return false;
            }
        }
        // prompt=login: only a login made after the request arrived counts.
        !(req.prompt == Prompt::Login && login.auth_time < req.created_at)
    }

    /// Whether this person's login may answer `req`, per the client's policy: answer, ask for a
    /// stronger login (step-up, with the methods that would do), or refuse.
    pub fn access(
        &self,
        req: &AuthRequest,
        subject: &Subject,
        login: Option<&Login>,
        now: i64,
    ) -> Result<Access, PolicyError> {
        let offered = self.offered(req.asked_level);
        // A login of someone else than the person the client named answers nothing.
        let other_person = login.is_some_and(|l| {
            req.id_token_hint_sub.as_deref().is_some_and(|sub| sub != l.person_id)
        });
        let login = login.filter(|l| self.fresh(req, l, now) && !other_person);
        // Nor do that person's facts: the policy looks at whoever logs in next.
        let anyone = Subject::anyone();
        let subject = if other_person { &anyone } else { subject };
        let facts = login.map(|l| LoginFacts {
            method: l.method,
            level: l.acr,
            upstream: l.upstream(),
            auth_time: l.auth_time,
        });
        let decision = self.policies.decide(
            &req.policy,
            &req.client_id,
            subject,
            facts.as_ref(),
            &offered,
            now,
        )?;
        Ok(match decision {
            Decision::Allow
                if req.asked_level.is_none_or(|a| facts.is_some_and(|f| f.level >= a)) =>
            {
                Access::Answer
            }
            Decision::Allow => {
                Access::StepUp { reasons: vec!["acr-requested-higher".into()], methods: offered }
            }
            Decision::StepUp { mut reasons, methods } => {
                if other_person {
                    reasons.insert(0, "login-other-person".into());
                }
                Access::StepUp { reasons, methods }
            }
            Decision::Deny { reasons, temporary } => Access::Deny { reasons, temporary },
        })
    }

    /// What `/authorize` does with a request and the session's login, before any page.
    pub fn next_step(&self, req: &AuthRequest, access: &Access) -> Next {
        match access {
            // prompt=login: never answered from the session, whatever its age.
            Access::Answer if req.prompt != Prompt::Login => Next::Answer,
            _ if req.prompt == Prompt::None => Next::LoginRequired,
            _ => Next::LogIn,
        }
    }

    /// Issues a code for a satisfied request, which is done with (its pending row, if any, and
    /// the audit row of the login it answers go with the code's write); returns the URL to
    /// send the browser to.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_code(
        &self,
        req: &AuthRequest,
        answering: Answering<'_>,
        login: &Login,
        person: &Person,
        facts: &super::PersonFacts,
        sid: Option<String>,
        now: i64,
    ) -> Result<String, AuthorizeError> {
        let code = crypto::random_token(32);
        let grant_id = crypto::random_id();
        let grant_sid = sid.clone();
        let details = GrantDetails {
            sid,
            scope: req.scope.clone(),
            nonce: req.nonce.clone(),
            login: login.clone(),
            person: PersonClaims::of(person),
            professions: facts.professions.clone(),
        };
        let code_row = CodeRow {
            code_hash: crypto::token_hash(&code),
            grant_id,
            client_id: req.client_id.clone(),
            person_id: person.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            details: serde_json::to_string(&details).unwrap_or_default(),
            created_at: now,
            expires_at: now + self.cfg.code_ttl_s,
            used_at: None,
            method: Some(login.method.as_str().to_string()),
            acr: Some(login.acr.uri().to_string()),
        };
        let Answering { pending_id, login_audit } = answering;
        let audit = login_audit.take();
        self.store.issue_code(pending_id, grant_sid.as_deref(), &code_row, audit.as_ref()).await?;
        Ok(self.redirect(&req.redirect_uri, req.state.as_deref(), &[("code", &code)]))
    }

    /// `redirect_uri` with the response parameters, `state` and `iss` (RFC 9207).
    pub fn redirect(
        &self,
        redirect_uri: &str,
        state: Option<&str>,
        params: &[(&str, &str)],
    ) -> String {
        let Ok(mut url) = url::Url::parse(redirect_uri) else {
            return redirect_uri.to_string();
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
            if let Some(s) = state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", &self.issuer);
        }
        url.to_string()
    }

    pub fn error_redirect(&self, e: &AuthorizeError) -> Option<String> {
        match e {
            AuthorizeError::Redirect { redirect_uri, state, error, description } => {
                Some(self.redirect(
                    redirect_uri,
                    state.as_deref(),
                    &[("error", error), ("error_description", description)],
                ))
            }
            _ => None,
        }
    }
}

/// RFC 7636 §4.1 character set.
pub fn is_pkce_value(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The minimum level an `acr_values` list asks for: any listed level is acceptable, so the
/// weakest one listed. Unknown values are ignored.
fn requested_level(acr_values: Option<&str>) -> Option<AssuranceLevel> {
    acr_values?.split_ascii_whitespace().filter_map(AssuranceLevel::parse).min()
}

/// The level asked through `claims` (`id_token.acr` or `userinfo.acr`, `value` or `values`).
fn claims_level(claims: &str) -> Result<Option<AssuranceLevel>, ()> {
    let v: serde_json::Value = serde_json::from_str(claims).map_err(|_| ())?;
    let mut level = None;
    for part in ["id_token", "userinfo"] {
        let Some(acr) = v.get(part).and_then(|p| p.get("acr")) else {
            continue;
        };
        let mut vals: Vec<AssuranceLevel> = Vec::new();
        if let Some(s) = acr.get("value").and_then(|x| x.as_str()) {
            vals.extend(AssuranceLevel::parse(s));
        }
        if let Some(arr) = acr.get("values").and_then(|x| x.as_array()) {
            vals.extend(arr.iter().filter_map(|x| x.as_str()).filter_map(AssuranceLevel::parse));
        }
        if let Some(l) = vals.into_iter().min() {
            level = Some(level.map_or(l, |x: AssuranceLevel| x.max(l)));
        }
    }
    Ok(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_values_ask_for_the_weakest_listed_level() {
        assert_eq!(requested_level(None), None);
        assert_eq!(requested_level(Some("urn:unknown")), None);
        assert_eq!(
            requested_level(Some(
                "http://eidas.europa.eu/LoA/high http://eidas.europa.eu/LoA/substantial"
            )),
            Some(AssuranceLevel::Substantial)
        );
    }

    #[test]
    fn claims_parameter_acr() {
        let c = r#"{"id_token":{"acr":{"essential":true,"values":["http://eidas.europa.eu/LoA/high"]}}}"#;
        assert_eq!(claims_level(c), Ok(Some(AssuranceLevel::High)));
        assert_eq!(claims_level(r#"{"userinfo":{}}"#), Ok(None));
        assert!(claims_level("{not json").is_err());
    }
}
