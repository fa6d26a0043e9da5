//! `/account/apps` (SPEC §11): the apps holding the person's tokens, and revoking one. The
//! rules are `oidc::grants`'s.

use super::pages::{self, render, AppHistoryView, AppView, Chrome};
use super::{AppState, CsrfForm, Ctx, WebError};
use crate::oidc::grants::AppRevoked;
use crate::session::Session;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

pub async fn show(State(st): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    match &ctx.session {
        Some(s) if s.data.login.is_some() => render_apps(&st, &ctx, s, StatusCode::OK).await,
        _ => Ok(Redirect::to("/login").into_response()),
    }
}

async fn render_apps(
    st: &AppState,
    ctx: &Ctx,
    session: &Session,
    status: StatusCode,
) -> Result<Response, WebError> {
    let Some(login) = &session.data.login else {
        return Ok(Redirect::to("/login").into_response());
    };
    let view = st.provider.apps_view(login, ctx.now).await?;
    let tr = &ctx.tr;
    let never = tr.t("apps-never");
    let page = pages::AccountApps {
        c: Chrome::new(tr.clone(), "/account/apps"),
        csrf: session.csrf.clone(),
        apps: view
            .live
            .into_iter()
            .map(|a| AppView {
                name: a.name.unwrap_or_else(|| a.client_id.clone()),
                since: tr.datetime(a.since),
                last_token: a
                    .last_token_at
                    .map(|t| tr.datetime(t))
                    .unwrap_or_else(|| never.clone()),
                level: a.level.map(|l| tr.t(&format!("level-{}", l.short()))).unwrap_or_default(),
                revoke: format!("/account/apps/{}/revoke", encode(&a.client_id)),
                client_id: a.client_id,
            })
            .collect(),
        history: view
            .history
            .into_iter()
            .map(|h| AppHistoryView {
                name: h.name.unwrap_or_else(|| h.client_id.clone()),
                issued: h.issued.into_iter().map(|t| tr.datetime(t)).collect(),
                client_id: h.client_id,
            })
            .collect(),
    };
    Ok(render(status, &page))
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(serde::Deserialize)]
pub struct NoFields {}

/// Revokes one app's grants for the person; the other apps keep theirs.
pub async fn revoke(
    State(st): State<AppState>,
    Path(client_id): Path<String>,
    CsrfForm { ctx, session, .. }: CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let Some(login) = &session.data.login else {
        return Ok(Redirect::to("/login").into_response());
    };
    match st.provider.revoke_app(login, &client_id, ctx.now).await? {
        AppRevoked::Revoked => Ok(Redirect::to("/account/apps").into_response()),
        AppRevoked::NotFound => render_apps(&st, &ctx, &session, StatusCode::NOT_FOUND).await,
    }
}
