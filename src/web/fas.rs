//! The federal login (FAS): off to the federal authentication service and back (SPEC §6).

use super::login::complete_login;
use super::pages;
use super::{AppState, WebError};
use crate::fas::FasError;
use crate::identity::Insz;
use crate::session::Login;
use crate::store::AuditEvent;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::SocketAddr;

/// How long the person has at FAS.
const FAS_TTL_S: i64 = 900;

pub async fn start(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let Some(fas) = st.fas.clone() else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    let (mut session, is_new) = st.session_or_new(&mut ctx).await?;
    let (url, pending) = match fas.start(st.clock.now()).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "FAS unavailable");
            return Err(WebError::page(
                StatusCode::BAD_GATEWAY,
                &ctx.tr,
                "fas-failed-title",
                "fas-unavailable",
                "unavailable",
            ));
        }
    };
    session.data.fas = Some(pending);
    st.sessions.save(&mut session).await?;
    let mut resp = Redirect::to(&url).into_response();
    if is_new {
        resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(&session));
    }
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let Some(fas) = st.fas.clone() else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    let Some(mut session) = ctx.session.take() else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "session-expired-title",
            "session-expired",
            "session",
        ));
    };
    // The answer must belong to the login this browser started (state), once.
    let Some(pending) = session.data.fas.take() else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "fas-failed-title",
            "fas-refused",
            "unsolicited",
        ));
    };
    st.sessions.save(&mut session).await?;
    let now = st.clock.now();
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|s| crate::crypto::ct_eq(s.as_bytes(), pending.state.as_bytes()));
    if !state_ok || now - pending.at > FAS_TTL_S {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "fas-failed-title",
            "fas-refused",
            "state",
        ));
    }
    if let Some(error) = q.error {
        tracing::info!(error = %error, "FAS returned an error");
        let code = if error == "access_denied" { "cancelled" } else { "upstream_error" };
        return Ok(pages::message(
            StatusCode::OK,
            &tr,
            "fas-failed-title",
            tr.t("fas-error"),
            Some(code),
            Some(pages::Link { href: "/login".into(), label: tr.t("back-to-chooser") }),
        ));
    }
    let Some(code) = q.code else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "fas-failed-title",
            "fas-refused",
            "no_code",
        ));
    };
    let login = match fas.finish(&pending, &code).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "FAS login refused");
            let unknown_level = matches!(e, FasError::UnknownLevel(_));
            let reason = if unknown_level { "unknown_level" } else { "invalid_id_token" };
            st.provider
                .audit(AuditEvent {
                    kind: "login".into(),
                    outcome: "failed".into(),
                    method: Some("fas".into()),
                    address: Some(ctx.address.clone()),
                    detail: serde_json::json!({ "reason": reason }).to_string(),
                    ..Default::default()
                })
                .await;
            if unknown_level {
                // Retrying the same means gives the same level: the page says to choose another.
                return Ok(pages::message(
                    StatusCode::BAD_REQUEST,
                    &tr,
                    "fas-failed-title",
                    tr.t("fas-unknown-level"),
                    Some("unknown_level"),
                    Some(pages::Link { href: "/login".into(), label: tr.t("back-to-chooser") }),
                ));
            }
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                &tr,
                "fas-failed-title",
                "fas-refused",
                "invalid",
            ));
        }
    };
    let Ok(insz) = Insz::parse(&login.insz) else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "fas-failed-title",
            "fas-refused",
            "invalid_insz",
        ));
    };
    // Same person, many doors: the INSZ decides; an unknown INSZ becomes a person.
    let person =
        st.store.person_or_create(&insz, &login.given_name, &login.family_name, None, now).await?;
    if st.store.identity_person("fas", &login.subject).await?.is_none() {
        let _ = st.store.link_identity("fas", &login.subject, &person.id, now).await;
    }
    let login = Login {
        person_id: person.id.clone(),
        auth_time: now,
        acr: login.level,
        amr: login.amr,
        method: login.method,
        eidas_person_identifier: None,
    };
    complete_login(&st, &ctx, session, login).await
}
