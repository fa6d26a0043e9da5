//! `/account`: who is logged in, their keys and their own login history (SPEC §9). The rules for
//! changing keys are `keys::manage`'s.

use super::pages::{self, render, Chrome, FormError, HistoryRow, KeyRowView, Link};
use super::{AppState, CsrfForm, Ctx, WebError};
use crate::keys::manage::KeyChange;
use crate::session::Session;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

pub async fn show(State(st): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    match &ctx.session {
        Some(s) => render_show(&st, &ctx, s, None, StatusCode::OK).await,
        None => Ok(to_login()),
    }
}

async fn render_show(
    st: &AppState,
    ctx: &Ctx,
    session: &Session,
    error: Option<&'static str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let Some(login) = &session.data.login else { return Ok(to_login()) };
    let Some(view) = st.keys.account_view(login).await? else { return Ok(to_login()) };
    let tr = &ctx.tr;
    let level_name = |l: crate::assurance::AssuranceLevel| tr.t(&format!("level-{}", l.short()));
    let history = view
        .logins
        .into_iter()
        .map(|e| HistoryRow {
            when: tr.datetime(e.at),
            method: e.method.unwrap_or_default(),
            level: e
                .acr
                .as_deref()
                .and_then(crate::assurance::AssuranceLevel::parse)
                .map(level_name)
                .unwrap_or_else(|| e.outcome.clone()),
            app: e.client_id.unwrap_or_default(),
        })
        .collect();
    let keys = view
        .keys
        .into_iter()
        .map(|k| KeyRowView {
            label: tr.t(&format!("key-{}", k.kind)),
            detail: k.phone.as_deref().map(crate::keys::mask_phone).unwrap_or_default(),
            added: tr.date(k.created_at),
            kind: k.kind.to_string(),
            id: k.id,
        })
        .collect();
    let page = pages::Account {
        c: Chrome::new(tr.clone(), "/account"),
        csrf: session.csrf.clone(),
        name: format!("{} {}", view.person.given_name, view.person.family_name),
        insz: view.person.insz.masked(),
        acr: login.acr.uri().to_string(),
        level: level_name(login.acr),
        history,
        keys,
        has_account: view.has_account,
        error: error.map(|k| FormError::new(tr, k)),
    };
    Ok(render(status, &page))
}

/// The page that asks for a fresh, strong login before keys change.
fn log_in_again(ctx: &Ctx) -> Response {
    let tr = &ctx.tr;
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
pub struct NoFields {}

/// Adding a key: only after a recent login at substantial or higher (SPEC §7).
pub async fn add_key(
    State(st): State<AppState>,
    CsrfForm { ctx, mut session, .. }: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let Some(login) = session.data.login.clone() else { return Ok(to_login()) };
    match st.keys.start_adding(&login, ctx.now).await? {
        KeyChange::Adding(enrolment) => {
            session.data.enrol = Some(*enrolment);
            ctx.save(&mut session).await?;
            Ok(Redirect::to("/activate/keys").into_response())
        }
        _ => Ok(log_in_again(&ctx)),
    }
}

/// Logs in again (stronger or fresher), then back to `/account`.
pub async fn login_again(mut ctx: Ctx) -> Result<Response, WebError> {
    let mut s = ctx.session_or_new().await?;
    s.data.login = None;
    s.data.pending = None;
    s.data.return_to = Some("/account".into());
    ctx.save(&mut s).await?;
    Ok(to_login())
}

/// Removes one key: the same recent strong login as adding one, and never the last key.
pub async fn remove_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { ctx, session, .. }: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    if session.data.login.is_none() {
        return Ok(to_login());
    }
    match st.keys.remove(&session, &id, &ctx.address, ctx.now).await? {
        KeyChange::Removed => Ok(Redirect::to("/account").into_response()),
        KeyChange::LogInAgain => Ok(log_in_again(&ctx)),
        KeyChange::LastKey | KeyChange::NotFound | KeyChange::Adding(_) => {
            render_show(&st, &ctx, &session, Some("account-last-key"), StatusCode::CONFLICT).await
        }
    }
}

pub async fn logout(
    State(st): State<AppState>,
    CsrfForm { mut ctx, session, .. }: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    st.provider.logged_out(&session.data, ctx.now).await?;
    ctx.session = Some(session);
    ctx.end_session().await?;
    Ok(pages::logged_out(&ctx.tr))
}

/// "Sign out everywhere": every broker session of the person ends (their apps are told), this
/// browser's included.
pub async fn sign_out_everywhere(
    State(st): State<AppState>,
    CsrfForm { mut ctx, session, .. }: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let Some(login) = &session.data.login else { return Ok(to_login()) };
    st.provider.sign_out_everywhere(login, ctx.now).await?;
    ctx.session = Some(session);
    ctx.end_session().await?;
    Ok(pages::logged_out(&ctx.tr))
}
