//! `/account`: who is logged in, and their own login history (SPEC §9).

use super::pages::{self, render, Chrome, FormError, HistoryRow, KeyRowView, Link};
use super::{AppState, WebError};
use crate::i18n::Tr;
use crate::keys;
use crate::session::Enrolment;
use crate::store::AuditEvent;
use axum::extract::{ConnectInfo, Path, State};
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
    render_show(&st, ctx, None, StatusCode::OK).await
}

async fn render_show(
    st: &AppState,
    ctx: super::Ctx,
    error: Option<&'static str>,
    status: StatusCode,
) -> Result<Response, WebError> {
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
    let account = st.store.account_by_person(&person.id).await?;
    let keys = match &account {
        Some(a) => st.store.keys_of_account(&a.id).await?,
        None => Vec::new(),
    };
    let keys = keys
        .into_iter()
        .filter(|k| k.status == "active")
        .map(|k| KeyRowView {
            label: tr.t(&format!("key-{}", k.kind)),
            detail: k.phone.as_deref().map(crate::keys::mask_phone).unwrap_or_default(),
            added: tr.date(k.created_at),
            kind: k.kind,
            id: k.id,
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
        keys,
        has_account: account.is_some(),
        error: error.map(|k| FormError::new(tr, k)),
    };
    Ok(render(status, &page))
}

/// The answer to a key change without a fresh enough strong login ([`keys::recent_strong_login`]):
/// the person logs in again, then comes back to `/account`.
fn reauth_needed(tr: &Tr) -> Response {
    pages::message(
        StatusCode::FORBIDDEN,
        tr,
        "account-title",
        tr.t("account-reauth"),
        Some("reauth"),
        Some(Link { href: "/account/login".into(), label: tr.t("office-login-again") }),
    )
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    csrf: Option<String>,
}

/// Adding a key: only after a recent login at substantial or higher (SPEC §7).
pub async fn add_key(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let Some(mut session) = ctx.session.take() else {
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
    let Some(login) = session.data.login.clone() else {
        return Ok(Redirect::to("/login").into_response());
    };
    let now = st.clock.now();
    if !keys::recent_strong_login(&login, now) {
        return Ok(reauth_needed(&ctx.tr));
    }
    let account = st.store.account_by_person(&login.person_id).await?;
    session.data.enrol = Some(Enrolment {
        registration_id: None,
        person_id: login.person_id.clone(),
        account_id: account.map(|a| a.id),
        at: now,
        ..Default::default()
    });
    st.sessions.save(&mut session).await?;
    Ok(Redirect::to("/activate/keys").into_response())
}

/// Logs in again (stronger or fresher), then back to `/account`.
pub async fn login_again(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let (mut s, is_new) = st.session_or_new(&mut ctx).await?;
    s.data.login = None;
    s.data.pending = None;
    s.data.return_to = Some("/account".into());
    st.sessions.save(&mut s).await?;
    let mut resp = Redirect::to("/login").into_response();
    if is_new {
        resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(&s));
    }
    Ok(resp)
}

/// Removes one key, under the same rule as adding one ([`keys::recent_strong_login`]): a
/// stolen session, or one logged in with a weaker key, cannot take away the person's keys.
/// The last active key cannot be removed (the person would be locked out).
pub async fn remove_key(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
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
    let Some(login) = &session.data.login else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !keys::recent_strong_login(login, st.clock.now()) {
        return Ok(reauth_needed(&ctx.tr));
    }
    let Some(account) = st.store.account_by_person(&login.person_id).await? else {
        return Ok(Redirect::to("/account").into_response());
    };
    let kind = st
        .store
        .keys_of_account(&account.id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .map(|k| k.kind);
    let removed = match &kind {
        Some(_) => st.store.revoke_key_unless_last(&id, &account.id, st.clock.now()).await?,
        None => false,
    };
    if !removed {
        return render_show(&st, ctx, Some("account-last-key"), StatusCode::CONFLICT).await;
    }
    let e = AuditEvent {
        id: crate::crypto::random_id(),
        at: st.clock.now(),
        kind: "key-change".into(),
        outcome: "removed".into(),
        person_id: Some(login.person_id.clone()),
        method: kind,
        address: Some(ctx.address.clone()),
        detail: "{}".into(),
        ..Default::default()
    };
    if let Err(err) = st.store.insert_audit(&e).await {
        tracing::error!(error = %err, "audit event could not be stored");
    }
    Ok(Redirect::to("/account").into_response())
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
