//! `/account`: who is logged in, and their own login history (SPEC §9).

use super::pages::{self, render, Chrome, HistoryRow, Link};
use super::{AppState, WebError};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use std::net::SocketAddr;

pub async fn show(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let Some(session) = &ctx.session else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(login) = &session.data.login else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(person) = st.store.person(&login.person_id).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let tr = &ctx.tr;
    let events = st.store.audit_events(Some(&person.id), 0, 50).await?;
    let history = events
        .into_iter()
        .filter(|e| e.kind == "login")
        .map(|e| HistoryRow {
            when: tr.datetime(e.at),
            method: e.method.unwrap_or_default(),
            level: e
                .acr
                .as_deref()
                .and_then(crate::assurance::AssuranceLevel::parse)
                .map(|l| tr.t(&format!("level-{}", l.short())))
                .unwrap_or_else(|| e.outcome.clone()),
            app: e.client_id.unwrap_or_default(),
        })
        .collect();
    let page = pages::Account {
        c: Chrome::new(tr.clone(), "/account"),
        csrf: session.csrf.clone(),
        name: format!("{} {}", person.given_name, person.family_name),
        insz: person.insz.masked(),
        acr: login.acr.uri().to_string(),
        level: tr.t(&format!("level-{}", login.acr.short())),
        history,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(serde::Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

pub async fn logout(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let Some(session) = &ctx.session else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !session.csrf_ok(form.csrf.as_deref()) {
        return Err(WebError::page(
            StatusCode::FORBIDDEN,
            &ctx.tr,
            "error-title",
            "csrf-failed",
            "csrf",
        ));
    }
    st.sessions.destroy(session).await?;
    let mut resp = pages::message(
        StatusCode::OK,
        &ctx.tr,
        "logged-out-title",
        ctx.tr.t("logged-out"),
        None,
        Some(Link { href: "/login".into(), label: ctx.tr.t("back-to-start") }),
    );
    resp.headers_mut().append(header::SET_COOKIE, st.clear_session_cookie());
    Ok(resp)
}
