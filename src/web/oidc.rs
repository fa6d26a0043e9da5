//! Protocol endpoints: discovery, JWKS, authorize, token, userinfo, revoke, introspect, PAR,
//! logout. The token, revocation and introspection endpoints also answer on the mTLS listener.

use super::error::oidc_error_response;
use super::pages::{self, render, Chrome, LogoutConfirm};
use super::{AppState, Ctx, WebError};
use crate::i18n::{self, Tr};
use crate::oidc::authorize::{AuthorizeError, AuthorizeParams};
use crate::oidc::dpop::Presented;
use crate::oidc::token::TokenForm;
use crate::oidc::OidcError;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};

fn json_bytes(body: bytes::Bytes, cache: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, cache)], body)
        .into_response()
}

pub async fn discovery(State(st): State<AppState>) -> Response {
    json_bytes(st.provider.discovery_json(), "public, max-age=300")
}

pub async fn jwks(State(st): State<AppState>) -> Response {
    json_bytes(st.provider.jwks_json(), "public, max-age=60")
}

pub async fn authorize_get(
    State(st): State<AppState>,
    ctx: Ctx,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    // RFC 6749 §3.1: a parameter may not appear twice.
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    let duplicate = names.windows(2).any(|w| w[0] == w[1]);
    let params = if duplicate {
        None
    } else {
        serde_urlencoded::from_str::<AuthorizeParams>(
            &serde_urlencoded::to_string(&pairs).unwrap_or_default(),
        )
        .ok()
    };
    let Some(params) = params else {
        return Err(bad_client(&ctx.tr, "invalid_request"));
    };
    authorize(st, ctx, params).await
}

pub async fn authorize_post(
    State(st): State<AppState>,
    ctx: Ctx,
    Form(params): Form<AuthorizeParams>,
) -> Result<Response, WebError> {
    authorize(st, ctx, params).await
}

fn bad_client(tr: &Tr, code: &'static str) -> WebError {
    WebError::page(StatusCode::BAD_REQUEST, tr, "bad-client-title", "bad-client", code)
}

async fn authorize(
    st: AppState,
    mut ctx: Ctx,
    params: AuthorizeParams,
) -> Result<Response, WebError> {
    let req = match st.provider.validate_authorize(&params, None, ctx.now).await {
        Ok(r) => r,
        Err(AuthorizeError::BadClient(what)) => {
            tracing::info!(
                parameter = what,
                "authorization request refused: untrusted client or redirect"
            );
            return Err(bad_client(&ctx.tr, "invalid_client"));
        }
        Err(e @ AuthorizeError::Redirect { .. }) => {
            return Ok(
                Redirect::to(&st.provider.error_redirect(&e).unwrap_or_default()).into_response()
            )
        }
        Err(e) => return Err(e.into()),
    };
    let mut session = ctx.session_or_unsaved();
    if let Some(lang) = i18n::pick(req.ui_locales.iter().map(String::as_str)) {
        session.data.lang = Some(lang);
    }
    let tr = Tr::new(session.data.lang.unwrap_or(ctx.tr.lang));
    let resume = st.provider.authorize(&mut session.data, &req, ctx.now).await?;
    ctx.save(&mut session).await?;
    Ok(super::login::resume_response(&tr, resume))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A token-endpoint form body: the fields, the repeatable `resource`s (RFC 8707), and the TLS
/// client certificate when the request came over the mTLS listener.
fn token_form(
    body: &[u8],
    chain: Option<crate::eid::server::PeerChain>,
) -> Result<TokenForm, OidcError> {
    let mut form: TokenForm = serde_urlencoded::from_bytes(body)
        .map_err(|_| OidcError::InvalidRequest("the body must be a form".into()))?;
    form.resources = crate::oidc::access_token::resources(&String::from_utf8_lossy(body));
    form.tls_chain = chain;
    Ok(form)
}

pub async fn token(
    State(st): State<AppState>,
    chain: Option<axum::Extension<crate::eid::server::PeerChain>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let form = match token_form(&body, chain.map(|c| c.0)) {
        Ok(f) => f,
        Err(e) => {
            st.metrics.token_grant("other", "invalid_request");
            return oidc_error_response(&e);
        }
    };
    let grant_type = match form.grant_type.as_deref() {
        Some(g @ ("authorization_code" | "refresh_token" | "client_credentials")) => g,
        Some(crate::oidc::exchange::GRANT_TYPE) => "token_exchange",
        _ => "other",
    };
    let dpop = headers.get("dpop").and_then(|v| v.to_str().ok());
    let now = st.clock.now();
    match st.provider.token_with_dpop(authorization(&headers), dpop, &form, now).await {
        Ok(t) => {
            st.metrics.token_grant(grant_type, "ok");
            no_store(Json(t).into_response())
        }
        Err(e) => {
            st.metrics.token_grant(grant_type, e.code());
            oidc_error_response(&e)
        }
    }
}

pub async fn introspect(
    State(st): State<AppState>,
    chain: Option<axum::Extension<crate::eid::server::PeerChain>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let form = match token_form(&body, chain.map(|c| c.0)) {
        Ok(f) => f,
        Err(e) => return oidc_error_response(&e),
    };
    let dpop = headers.get("dpop").and_then(|v| v.to_str().ok());
    match st.provider.introspect(authorization(&headers), dpop, &form, st.clock.now()).await {
        Ok(v) => no_store(Json(v).into_response()),
        Err(e) => oidc_error_response(&e),
    }
}

pub async fn userinfo(
    State(st): State<AppState>,
    method: axum::http::Method,
    chain: Option<axum::Extension<crate::eid::server::PeerChain>>,
    headers: HeaderMap,
) -> Response {
    let Some(presented) = authorization(&headers).and_then(Presented::parse) else {
        return oidc_error_response(&OidcError::InvalidToken(
            "a bearer access token is required".into(),
        ));
    };
    let proof = headers.get("dpop").and_then(|v| v.to_str().ok());
    let chain = chain.map(|c| c.0);
    let now = st.clock.now();
    match st
        .provider
        .userinfo_presented(presented, proof, method.as_str(), chain.as_ref(), now)
        .await
    {
        Ok(claims) => no_store(Json(claims).into_response()),
        Err(e) => oidc_error_response(&e),
    }
}

pub async fn revoke(
    State(st): State<AppState>,
    chain: Option<axum::Extension<crate::eid::server::PeerChain>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let form = match token_form(&body, chain.map(|c| c.0)) {
        Ok(f) => f,
        Err(e) => return oidc_error_response(&e),
    };
    match st.provider.revoke(authorization(&headers), &form, st.clock.now()).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => oidc_error_response(&e),
    }
}

#[derive(serde::Deserialize)]
pub struct ParForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    client_secret: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

pub async fn par(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ParForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oidc_error_response(&OidcError::InvalidRequest("the body must be a form".into()));
    };
    let creds = TokenForm {
        client_id: form.params.client_id.clone(),
        client_secret: form.client_secret.clone(),
        client_assertion_type: form.client_assertion_type.clone(),
        client_assertion: form.client_assertion.clone(),
        ..Default::default()
    }
    .credentials(authorization(&headers));
    match st.provider.par(&creds, form.params, st.clock.now()).await {
        Ok((request_uri, expires_in)) => no_store(
            (
                StatusCode::CREATED,
                Json(serde_json::json!({ "request_uri": request_uri, "expires_in": expires_in })),
            )
                .into_response(),
        ),
        Err(e) => oidc_error_response(&e),
    }
}

#[derive(serde::Deserialize, Default)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
    csrf: Option<String>,
}

/// RP-initiated logout. With a valid `id_token_hint` the session ends at once; without one the
/// person confirms (so a link on another site cannot log them out).
pub async fn logout_get(
    State(st): State<AppState>,
    ctx: Ctx,
    Query(p): Query<LogoutParams>,
) -> Result<Response, WebError> {
    let hinted_client = p.id_token_hint.as_deref().and_then(|h| st.provider.check_id_token_hint(h));
    let target = logout_target(&st, &p, hinted_client.as_deref()).await?;
    match &ctx.session {
        Some(session) if hinted_client.is_none() => {
            let page = LogoutConfirm {
                c: Chrome::new(ctx.tr.clone(), "/login"),
                csrf: session.csrf.clone(),
                post_logout_redirect_uri: target.as_ref().and(p.post_logout_redirect_uri.clone()),
                client_id: p.client_id.clone(),
                state: p.state.clone(),
            };
            Ok(render(StatusCode::OK, &page))
        }
        _ => finish_logout(&st, ctx, target).await,
    }
}

pub async fn logout_post(
    State(st): State<AppState>,
    ctx: Ctx,
    Form(p): Form<LogoutParams>,
) -> Result<Response, WebError> {
    if ctx.session.as_ref().is_some_and(|s| !s.csrf_ok(p.csrf.as_deref())) {
        return Err(super::extract::session_expired(&ctx.tr));
    }
    let hinted_client = p.id_token_hint.as_deref().and_then(|h| st.provider.check_id_token_hint(h));
    let target = logout_target(&st, &p, hinted_client.as_deref()).await?;
    finish_logout(&st, ctx, target).await
}

/// Where to send the browser after logout: only a URI registered for the client.
async fn logout_target(
    st: &AppState,
    p: &LogoutParams,
    hinted_client: Option<&str>,
) -> Result<Option<String>, WebError> {
    let Some(uri) = &p.post_logout_redirect_uri else { return Ok(None) };
    Ok(st
        .provider
        .post_logout_target(uri, hinted_client, p.client_id.as_deref(), p.state.as_deref())
        .await?)
}

async fn finish_logout(
    st: &AppState,
    mut ctx: Ctx,
    target: Option<String>,
) -> Result<Response, WebError> {
    if let Some(s) = &ctx.session {
        st.provider.logged_out(&s.data, ctx.now).await?;
    }
    ctx.end_session().await?;
    Ok(match target {
        Some(t) => Redirect::to(&t).into_response(),
        None => pages::logged_out(&ctx.tr),
    })
}
