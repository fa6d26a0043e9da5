//! Token endpoint (authorization_code with PKCE, refresh_token with rotation and reuse
//! detection), userinfo, revocation (RFC 7009) and the logout hint check.

use super::authorize::is_pkce_value;
use super::claims::GrantDetails;
use super::client_auth::ClientCredentials;
use super::dpop;
use super::signing::SigningAlg;
use super::{OidcError, Provider};
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::crypto;
use crate::store::{ClientRow, CodeRedemption, NewTokens};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
    // revocation
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    // token exchange (RFC 8693)
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub audience: Option<String>,
    /// `resource` parameters (RFC 8707, repeatable: read from the body by the handler).
    #[serde(skip)]
    pub resources: Vec<String>,
    /// The TLS client certificate chain when the request came over the mTLS listener.
    #[serde(skip)]
    pub tls_chain: Option<crate::eid::server::PeerChain>,
}

impl TokenForm {
    pub fn credentials(&self, authorization: Option<&str>) -> ClientCredentials {
        ClientCredentials {
            basic: authorization.and_then(ClientCredentials::parse_basic),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_assertion_type: self.client_assertion_type.clone(),
            client_assertion: self.client_assertion.clone(),
            tls_chain: self.tls_chain.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
    /// RFC 8693 §2.2.1, token exchange only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// The request's `code_verifier` if it has the form RFC 7636 §4.1 gives it.
fn well_formed_verifier(form: &TokenForm) -> Option<&str> {
    form.code_verifier.as_deref().filter(|v| (43..=128).contains(&v.len()) && is_pkce_value(v))
}

impl Provider {
    pub async fn token(
        &self,
        authorization: Option<&str>,
        form: &TokenForm,
        now: i64,
    ) -> Result<TokenResponse, OidcError> {
        self.token_with_dpop(authorization, None, form, now).await
    }

    /// The token endpoint with the request's `DPoP` header, if any (RFC 9449): a valid proof
    /// binds the tokens issued to its key.
    pub async fn token_with_dpop(
        &self,
        authorization: Option<&str>,
        dpop: Option<&str>,
        form: &TokenForm,
        now: i64,
    ) -> Result<TokenResponse, OidcError> {
        let jkt = match dpop {
            Some(proof) => {
                let url = self.endpoint("/token");
                Some(dpop::check_proof(&self.store, proof, "POST", &url, None, now).await?)
            }
            None => None,
        };
        let client = self.authenticate_client(&form.credentials(authorization), now).await?;
        if jkt.is_none() && client.dpop_required {
            return Err(dpop::DpopError::Required.into());
        }
        let bound = self.mtls_binding(&client, form.tls_chain.as_ref());
        let grant = form
            .grant_type
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("grant_type is missing".into()))?;
        if !matches!(grant, "authorization_code" | "refresh_token" | "client_credentials")
            && grant != super::exchange::GRANT_TYPE
        {
            return Err(OidcError::UnsupportedGrantType);
        }
        if !client.allows_grant(grant) {
            return Err(OidcError::UnauthorizedClient(format!(
                "this client is not registered for the {grant} grant"
            )));
        }
        let binding = Binding { x5t: bound.as_deref(), jkt: jkt.as_ref() };
        match grant {
            "authorization_code" => self.exchange_code(&client, form, binding, now).await,
            "refresh_token" => self.refresh(&client, form, binding, now).await,
            // Software and exchanged tokens are bound by mTLS only (SPEC §10); a DPoP proof
            // there is checked but binds nothing, and `token_type` says `Bearer`.
            "client_credentials" => {
                self.client_credentials(&client, form, bound.as_deref(), now).await
            }
            _ => self.exchange(&client, form, bound.as_deref(), now).await,
        }
    }

    /// Exchanges a code: one conditional statement redeems it when everything matches (client,
    /// redirect URI, PKCE, unused, unexpired) and issues the grant's first tokens; only when it
    /// does not is the code read, to say why (and a reused code revokes what it issued).
    async fn exchange_code(
        &self,
        client: &ClientRow,
        form: &TokenForm,
        binding: Binding<'_>,
        now: i64,
    ) -> Result<TokenResponse, OidcError> {
        let Binding { x5t: bound, jkt } = binding;
        let code = form
            .code
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("code is missing".into()))?;
        let aud = self.audience(client, &form.resources)?;
        let hash = crypto::token_hash(code);
        // A public client gets a refresh token only bound to a DPoP key (SPEC §11).
        let public = client.auth_method == crate::store::ClientAuthMethod::None;
        let (tokens, access, refresh) = self.new_tokens(client, !public || jkt.is_some(), now);
        let redeemed = match (form.redirect_uri.as_deref(), well_formed_verifier(form)) {
            (Some(redirect_uri), Some(verifier)) => {
                let challenge = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
                // Person, client, method and level of the row come from the code.
                let audit = Audit::row(&Event::new(Kind::TokenIssued, Outcome::Ok), now);
                let redemption = CodeRedemption {
                    code_hash: &hash,
                    client_id: &client.id,
                    redirect_uri,
                    code_challenge: &challenge,
                    grant_expires_at: now + self.cfg.refresh_token_ttl_s,
                    audit: &audit,
                };
                self.store.redeem_code(&redemption, now, &tokens).await?
            }
            _ => None,
        };
        let Some(redeemed) = redeemed else {
            return Err(self.why_code_is_refused(&hash, client, form, now).await);
        };
        let details: GrantDetails = serde_json::from_str(&redeemed.details)
            .map_err(|e| OidcError::Server(format!("code details: {e}").into()))?;
        if let (Some(jkt), true) = (jkt, public) {
            self.bind_dpop(jkt, &redeemed.grant_id, now).await?;
        }
        // Stored with the redemption; the metrics still see it.
        self.audit.observe(
            &Event::new(Kind::TokenIssued, Outcome::Ok)
                .person(&redeemed.person_id)
                .client(&client.id)
                .factor(details.login.method)
                .level(details.login.acr),
        );
        let access = self.person_access_token(
            client,
            &redeemed.person_id,
            &details,
            PersonToken { jti: &access, aud, bound, jkt, now },
        )?;
        let id_token = self.id_token(
            now,
            client,
            &redeemed.person_id,
            &details,
            details.nonce.as_deref(),
            &access,
        )?;
        Ok(TokenResponse {
            access_token: access,
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in: self.cfg.access_token_ttl_s,
            refresh_token: refresh,
            id_token: Some(id_token),
            scope: details.scope.join(" "),
            issued_token_type: None,
        })
    }

    /// Why a code could not be redeemed, checked in this order: unknown, another client's,
    /// used before (then the tokens it issued are revoked), expired, redirect URI, PKCE. A code
    /// that passes every check here was redeemed by a concurrent request in between, which is
    /// a reuse too.
    async fn why_code_is_refused(
        &self,
        hash: &str,
        client: &ClientRow,
        form: &TokenForm,
        now: i64,
    ) -> OidcError {
        let row = match self.store.code(hash).await {
            Ok(Some(row)) => row,
            Ok(None) => return OidcError::InvalidGrant("the code is not valid".into()),
            Err(e) => return e.into(),
        };
        if row.client_id != client.id {
            return OidcError::InvalidGrant("the code was issued to another client".into());
        }
        if row.used_at.is_some() {
            self.revoke_after_reuse(&row.grant_id, &client.id, Kind::CodeReuse, now).await;
            return OidcError::InvalidGrant(
                "the code was already used; the tokens issued with it are revoked".into(),
            );
        }
        if row.expires_at <= now {
            return OidcError::InvalidGrant("the code has expired".into());
        }
        if form.redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
            return OidcError::InvalidGrant("redirect_uri does not match the request".into());
        }
        let Some(verifier) = form.code_verifier.as_deref() else {
            return OidcError::InvalidGrant("code_verifier is missing (PKCE)".into());
        };
        if well_formed_verifier(form).is_none() {
            return OidcError::InvalidGrant("code_verifier is malformed".into());
        }
        let computed = crypto::b64url(&crypto::sha256(verifier.as_bytes()));
        if !crypto::ct_eq(computed.as_bytes(), row.code_challenge.as_bytes()) {
            return OidcError::InvalidGrant("code_verifier does not match the challenge".into());
        }
        OidcError::InvalidGrant("the code was already used".into())
    }

    /// Rotates a refresh token: one conditional statement marks it used and issues its
    /// successor when it is live and the client's; only when it is not is it read, to say why
    /// (and a reused one revokes its family). A `scope` parameter is checked first, so that a
    /// refresh asking for more changes nothing.
    async fn refresh(
        &self,
        client: &ClientRow,
        form: &TokenForm,
        binding: Binding<'_>,
        now: i64,
    ) -> Result<TokenResponse, OidcError> {
        let Binding { x5t: bound, jkt } = binding;
        let presented = form
            .refresh_token
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("refresh_token is missing".into()))?;
        let aud = self.audience(client, &form.resources)?;
        let hash = crypto::token_hash(presented);
        // Only public clients' refresh tokens are bound (to the key of the code exchange).
        let public = client.auth_method == crate::store::ClientAuthMethod::None;
        if public {
            self.check_refresh_binding(&hash, jkt).await?;
        }
        if let Some(scope) = &form.scope {
            // A refresh may keep or narrow the scope, never widen it; tokens keep the grant's.
            let details = self.live_refresh_token(&hash, client, now).await?;
            if scope.split_ascii_whitespace().any(|s| !details.has_scope(s)) {
                return Err(OidcError::InvalidScope("a refresh cannot add scopes".into()));
            }
        }
        let (tokens, access, refresh) = self.new_tokens(client, !public || jkt.is_some(), now);
        let Some(rotated) = self.store.rotate_refresh(&hash, &client.id, now, &tokens).await?
        else {
            // Rotated by a concurrent request in between if the read finds it live: a reuse.
            self.live_refresh_token(&hash, client, now).await?;
            return Err(OidcError::InvalidGrant("the refresh token was already used".into()));
        };
        let details: GrantDetails = serde_json::from_str(&rotated.details)
            .map_err(|e| OidcError::Server(format!("grant details: {e}").into()))?;
        // Same auth_time, acr and amr as the login: a refresh never raises the level.
        let access = self.person_access_token(
            client,
            &rotated.person_id,
            &details,
            PersonToken { jti: &access, aud, bound, jkt, now },
        )?;
        let id_token = self.id_token(now, client, &rotated.person_id, &details, None, &access)?;
        Ok(TokenResponse {
            access_token: access,
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" },
            expires_in: self.cfg.access_token_ttl_s,
            refresh_token: refresh,
            id_token: Some(id_token),
            scope: details.scope.join(" "),
            issued_token_type: None,
        })
    }

    /// Reads a refresh token and checks, in this order, that it is known, the client's, not
    /// revoked, not used before (a reuse revokes its whole family) and not expired; returns its
    /// grant's details.
    async fn live_refresh_token(
        &self,
        hash: &str,
        client: &ClientRow,
        now: i64,
    ) -> Result<GrantDetails, OidcError> {
        let row = self
            .store
            .refresh_token(hash)
            .await?
            .ok_or_else(|| OidcError::InvalidGrant("the refresh token is not valid".into()))?;
        let grant = &row.grant;
        if grant.client_id != client.id {
            return Err(OidcError::InvalidGrant(
                "the refresh token belongs to another client".into(),
            ));
        }
        if grant.revoked_at.is_some() || row.token_revoked_at.is_some() {
            return Err(OidcError::InvalidGrant("the refresh token was revoked".into()));
        }
        if row.rotated_at.is_some() {
            self.revoke_after_reuse(&grant.id, &client.id, Kind::RefreshReuse, now).await;
            return Err(OidcError::InvalidGrant(
                "the refresh token was already used; its whole family is revoked".into(),
            ));
        }
        if grant.expires_at <= now {
            return Err(OidcError::InvalidGrant("the refresh token has expired".into()));
        }
        serde_json::from_str(&grant.details)
            .map_err(|e| OidcError::Server(format!("grant details: {e}").into()))
    }

    /// The JWT access token of a person's grant (RFC 9068): `jti` is the random value whose
    /// hash the grant's token row keeps.
    pub(super) fn person_access_token(
        &self,
        client: &ClientRow,
        person_id: &str,
        details: &GrantDetails,
        t: PersonToken<'_>,
    ) -> Result<String, OidcError> {
        use serde_json::json;
        let mut c = super::access_token::AccessClaims::new();
        c.insert("iss".into(), self.issuer.clone().into());
        c.insert("sub".into(), person_id.into());
        c.insert("aud".into(), t.aud);
        c.insert("client_id".into(), client.id.clone().into());
        c.insert("iat".into(), t.now.into());
        c.insert("exp".into(), (t.now + self.cfg.access_token_ttl_s).into());
        c.insert("jti".into(), t.jti.into());
        c.insert("scope".into(), details.scope.join(" ").into());
        c.insert("acr".into(), details.login.acr.uri().into());
        c.insert("amr".into(), json!(details.login.amr));
        c.insert("auth_time".into(), details.login.auth_time.into());
        if details.has_scope("insz") {
            c.insert("insz".into(), details.person.insz.clone().into());
        }
        if let (true, Some(p)) = (details.has_scope("professions"), &details.professions) {
            c.insert("professions".into(), serde_json::to_value(p).unwrap_or_default());
        }
        match (t.bound, t.jkt) {
            (Some(x5t), Some(jkt)) => {
                c.insert("cnf".into(), json!({ "x5t#S256": x5t, "jkt": jkt.0 }));
            }
            (Some(x5t), None) => {
                c.insert("cnf".into(), json!({ "x5t#S256": x5t }));
            }
            (None, Some(jkt)) => {
                c.insert("cnf".into(), json!({ "jkt": jkt.0 }));
            }
            (None, None) => {}
        }
        self.sign_access_token(&c)
    }

    /// The `x5t#S256` a token is bound to (RFC 8705): the TLS client certificate of a request
    /// over the mTLS listener, when it is the client's registered certificate.
    fn mtls_binding(
        &self,
        client: &ClientRow,
        chain: Option<&crate::eid::server::PeerChain>,
    ) -> Option<String> {
        let leaf = chain?.0.first()?;
        let registered = client.api.as_ref()?.certificate_sha256.as_deref()?;
        let presented = crate::ehealth::thumbprint(leaf);
        crypto::ct_eq(presented.as_bytes(), registered.as_bytes()).then_some(presented)
    }

    /// Fresh access (and, `with_refresh`, refresh) token.
    fn new_tokens(
        &self,
        _client: &ClientRow,
        with_refresh: bool,
        now: i64,
    ) -> (NewTokens, String, Option<String>) {
        let access = crypto::random_token(32);
        let refresh = with_refresh.then(|| crypto::random_token(32));
        let t = NewTokens {
            id: crypto::random_id(),
            access_hash: crypto::token_hash(&access),
            refresh_hash: refresh.as_deref().map(crypto::token_hash),
            access_expires_at: now + self.cfg.access_token_ttl_s,
            created_at: now,
        };
        (t, access, refresh)
    }

    async fn revoke_after_reuse(&self, grant_id: &str, client_id: &str, kind: Kind, now: i64) {
        let revoked = self.store.revoke_grant(grant_id, now).await.unwrap_or(false);
        tracing::warn!(client = client_id, %kind, revoked, "credential reuse: token family revoked");
        self.audit
            .record(
                Event::new(kind, Outcome::Revoked)
                    .client(client_id)
                    .detail(serde_json::json!({ "grant": grant_id })),
                now,
            )
            .await;
    }

    /// The claims an access token opens (`/userinfo`).
    pub async fn userinfo(
        &self,
        access_token: &str,
        now: i64,
    ) -> Result<serde_json::Value, OidcError> {
        self.userinfo_over(access_token, None, now).await
    }

    /// `/userinfo` with the TLS client certificate of the request, if any: a token bound to a
    /// certificate (`cnf`, RFC 8705 §3) opens nothing without that certificate.
    pub async fn userinfo_over(
        &self,
        access_token: &str,
        chain: Option<&crate::eid::server::PeerChain>,
        now: i64,
    ) -> Result<serde_json::Value, OidcError> {
        let (hash, claims) = self.access_token_key(access_token)?;
        if let Some(bound) = claims.get("cnf").and_then(|c| c.get("x5t#S256")) {
            let presented = chain.and_then(|c| c.0.first()).map(|c| crate::ehealth::thumbprint(c));
            if presented.as_deref() != bound.as_str() {
                return Err(OidcError::InvalidToken(
                    "the access token is bound to a certificate this request did not present"
                        .into(),
                ));
            }
        }
        let row = self
            .store
            .access_token(&hash, now)
            .await?
            .ok_or_else(|| OidcError::InvalidToken("the access token is not valid".into()))?;
        if row.grant.details.starts_with("{\"software\"") {
            return Err(OidcError::InvalidToken(
                "the access token was issued to software, not for a person".into(),
            ));
        }
        let details: GrantDetails = serde_json::from_str(&row.grant.details)
            .map_err(|e| OidcError::Server(format!("grant details: {e}").into()))?;
        Ok(self.userinfo_claims(&row.grant.person_id, &details))
    }

    /// RFC 7009: revoking a refresh token revokes its family; an access token, itself. Unknown
    /// or foreign tokens are answered the same way (200) and change nothing.
    pub async fn revoke(
        &self,
        authorization: Option<&str>,
        form: &TokenForm,
        now: i64,
    ) -> Result<(), OidcError> {
        let client = self.authenticate_client(&form.credentials(authorization), now).await?;
        let token = form
            .token
            .as_deref()
            .ok_or_else(|| OidcError::InvalidRequest("token is missing".into()))?;
        let hash = crypto::token_hash(token);
        if form.token_type_hint.as_deref() != Some("access_token") {
            if let Some(row) = self.store.refresh_token(&hash).await? {
                if row.grant.client_id == client.id {
                    self.store.revoke_grant(&row.grant.id, now).await?;
                }
                return Ok(());
            }
        }
        // An access token is a JWT: its row is kept under the hash of its `jti`.
        if let Ok((hash, _)) = self.access_token_key(token) {
            self.store.revoke_access_token(&hash, &client.id, now).await?;
        }
        Ok(())
    }

    /// Checks an `id_token_hint` at logout: our signature (expired tokens are fine); returns the
    /// client it was issued to.
    pub fn check_id_token_hint(&self, hint: &str) -> Option<String> {
        self.verify_issued_id_token(hint).ok()?.audience.into_iter().next()
    }

    /// Verifies that `jwt` is an ID token this provider signed: a key of our JWKS, with that
    /// key's own algorithm (never the one the header names alone), and our `iss`. Expiry does not
    /// matter: a hint is often an old token (OIDC Core §3.1.2.1).
    pub fn verify_issued_id_token(&self, jwt: &str) -> Result<IssuedIdToken, IdTokenHintError> {
        use jsonwebtoken::Algorithm;
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| IdTokenHintError::Malformed)?;
        let keys = self.keys.current();
        let key = keys
            .published()
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
            .cloned()
            .ok_or(IdTokenHintError::UnknownKey)?;
        let alg = match key.alg {
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::EdDsa => Algorithm::EdDSA,
        };
        if header.alg != alg {
            return Err(IdTokenHintError::WrongAlgorithm);
        }
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::to_value(key.jwk())
            .and_then(serde_json::from_value)
            .map_err(|_| IdTokenHintError::UnknownKey)?;
        let dk =
            jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| IdTokenHintError::UnknownKey)?;
        let mut v = jsonwebtoken::Validation::new(alg);
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_issuer(&[self.issuer.as_str()]);
        v.set_required_spec_claims(&["iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<HintClaims>(jwt, &dk, &v)
            .map_err(|e| IdTokenHintError::Invalid(e.to_string()))?;
        let audience = match data.claims.aud {
            serde_json::Value::String(s) => vec![s],
            serde_json::Value::Array(a) => {
                a.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
            }
            _ => Vec::new(),
        };
        Ok(IssuedIdToken { subject: data.claims.sub, audience })
    }
}

/// What a person's access token is issued with besides the grant.
pub(super) struct PersonToken<'a> {
    pub jti: &'a str,
    pub aud: serde_json::Value,
    pub bound: Option<&'a str>,
    /// RFC 9449 `cnf.jkt`: the DPoP key the token is bound to.
    pub jkt: Option<&'a dpop::Jkt>,
    pub now: i64,
}

/// What the tokens of a person's grant are bound to: the mTLS client certificate (RFC 8705)
/// and/or the DPoP proof's key (RFC 9449).
#[derive(Clone, Copy)]
struct Binding<'a> {
    x5t: Option<&'a str>,
    jkt: Option<&'a dpop::Jkt>,
}

#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: serde_json::Value,
}

/// Whom an ID token we issued is about, and for which clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedIdToken {
    pub subject: String,
    pub audience: Vec<String>,
}

/// Why an `id_token_hint` is not one of our ID tokens.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdTokenHintError {
    #[error("not a JWT")]
    Malformed,
    #[error("not signed with a key of this provider")]
    UnknownKey,
    #[error("the header's algorithm is not the key's")]
    WrongAlgorithm,
    #[error("{0}")]
    Invalid(String),
}
