//! Protocol endpoints: discovery, JWKS, authorize, token, userinfo, revoke, PAR, logout.

use super::error::oidc_error_response;
use super::pages::{self, render, Chrome, Link, LogoutConfirm};
use super::{AppState, WebError};
use crate::i18n;
use crate::oidc::authorize::{AuthorizeError, AuthorizeParams};
use crate::oidc::token::TokenForm;
use crate::oidc::OidcError;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use std::net::SocketAddr;

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
    st: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
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
        let ctx = st.0.ctx(&headers, peer.0).await?;
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &ctx.tr,
            "bad-client-title",
            "bad-client",
            "invalid_request",
        ));
    };
    authorize(st, peer, headers, params).await
}

pub async fn authorize_post(
    st: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(params): Form<AuthorizeParams>,
) -> Result<Response, WebError> {
    authorize(st, peer, headers, params).await
}

async fn authorize(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: AuthorizeParams,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let req = match st.provider.validate_authorize(&params, None).await {
        Ok(r) => r,
        Err(AuthorizeError::Server(e)) => return Err(WebError::Internal(e)),
        Err(AuthorizeError::BadClient(what)) => {
            tracing::info!(
                parameter = what,
                "authorization request refused: untrusted client or redirect"
            );
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                &ctx.tr,
                "bad-client-title",
                "bad-client",
                "invalid_client",
            ));
        }
        Err(e) => {
            return Ok(
                Redirect::to(&st.provider.error_redirect(&e).unwrap_or_default()).into_response()
            )
        }
    };
    let (mut session, is_new) = st.session_or_new(&mut ctx).await?;
    if let Some(lang) = i18n::pick(req.ui_locales.iter().map(String::as_str)) {
        session.data.lang = Some(lang.to_string());
    }
    let tr = crate::i18n::Tr::new(session.data.lang.as_deref().unwrap_or(ctx.tr.lang));
    let resp = super::login::continue_request(&st, &tr, &mut session, None, &req, false).await?;
    st.sessions.save(&mut session).await?;
    let mut resp = resp;
    if is_new {
        resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(&session));
    }
    Ok(resp)
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

pub async fn token(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        st.metrics.token_grant("other", "invalid_request");
        return oidc_error_response(&OidcError::InvalidRequest("the body must be a form".into()));
    };
    let grant_type = form.grant_type.as_deref().unwrap_or("other");
    match st.provider.token(authorization(&headers), &form).await {
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

pub async fn userinfo(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let token = authorization(&headers).and_then(|h| h.strip_prefix("Bearer ")).map(str::trim);
    let Some(token) = token else {
        return oidc_error_response(&OidcError::InvalidToken(
            "a bearer access token is required".into(),
        ));
    };
    match st.provider.userinfo(token).await {
        Ok(claims) => no_store(Json(claims).into_response()),
        Err(e) => oidc_error_response(&e),
    }
}

pub async fn revoke(
    State(st): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return oidc_error_response(&OidcError::InvalidRequest("the body must be a form".into()));
    };
    match st.provider.revoke(authorization(&headers), &form).await {
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
    let client = match st.provider.authenticate_client(&creds).await {
        Ok(c) => c,
        Err(e) => return oidc_error_response(&e),
    };
    let mut params = form.params;
    params.client_id.get_or_insert(client.id.clone());
    match st.provider.push(&client, &params).await {
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(p): Query<LogoutParams>,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let hinted_client = p.id_token_hint.as_deref().and_then(|h| st.provider.check_id_token_hint(h));
    let target = logout_target(&st, &p, hinted_client.as_deref()).await?;
    if hinted_client.is_some() || ctx.session.is_none() {
        return finish_logout(&st, ctx, target).await;
    }
    let Some(session) = &ctx.session else {
        return finish_logout(&st, ctx, target).await;
    };
    let page = LogoutConfirm {
        c: Chrome::new(ctx.tr.clone(), "/login"),
        csrf: session.csrf.clone(),
        post_logout_redirect_uri: target.as_ref().and(p.post_logout_redirect_uri.clone()),
        client_id: p.client_id.clone(),
        state: p.state.clone(),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn logout_post(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(p): Form<LogoutParams>,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    if let Some(s) = &ctx.session {
        if !s.csrf_ok(p.csrf.as_deref()) {
            return Err(WebError::page(
                StatusCode::FORBIDDEN,
                &ctx.tr,
                "error-title",
                "csrf-failed",
                "csrf",
            ));
        }
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
    let Some(uri) = &p.post_logout_redirect_uri else {
        return Ok(None);
    };
    let Some(client_id) = hinted_client.or(p.client_id.as_deref()) else {
        return Ok(None);
    };
    if hinted_client.is_some() && p.client_id.as_deref().is_some_and(|c| Some(c) != hinted_client) {
        return Ok(None);
    }
    let Some(client) = st.store.client(client_id).await? else {
        return Ok(None);
    };
    if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
        return Ok(None);
    }
    let mut url = url::Url::parse(uri).map_err(|e| WebError::Internal(e.to_string()))?;
    if let Some(s) = &p.state {
        url.query_pairs_mut().append_pair("state", s);
    }
    Ok(Some(url.to_string()))
}

async fn finish_logout(
    st: &AppState,
    ctx: super::Ctx,
    target: Option<String>,
) -> Result<Response, WebError> {
    if let Some(s) = &ctx.session {
        if let Some(login) = &s.data.login {
            st.provider
                .audit(crate::store::AuditEvent {
                    kind: "logout".into(),
                    outcome: "ok".into(),
                    person_id: Some(login.person_id.clone()),
                    ..Default::default()
                })
                .await;
        }
        st.sessions.destroy(s).await?;
    }
    let mut resp = match target {
        Some(t) => Redirect::to(&t).into_response(),
        None => pages::message(
            StatusCode::OK,
            &ctx.tr,
            "logged-out-title",
            ctx.tr.t("logged-out"),
            None,
            Some(Link { href: "/login".into(), label: ctx.tr.t("back-to-start") }),
        ),
    };
    resp.headers_mut().append(header::SET_COOKIE, st.clear_session_cookie());
    Ok(resp)
}
