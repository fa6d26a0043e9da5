//! The federal login (FAS): off to the federal authentication service and back (SPEC §6). The
//! decisions are `fas::callback`'s.

use super::login::logged_in;
use super::pages;
use super::{AppState, Ctx, WebError};
use crate::fas::callback::{CallbackParams, Returned};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

pub async fn start(State(st): State<AppState>, mut ctx: Ctx) -> Result<Response, WebError> {
    let fas = st.fas.clone().ok_or(WebError::NotFound)?;
    let mut session = ctx.session_or_new().await?;
    let (url, pending) = match fas.start(ctx.now).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "FAS unavailable");
            let tr = &ctx.tr;
            let code = "unavailable";
            return Err(WebError::page(
                StatusCode::BAD_GATEWAY,
                tr,
                "fas-failed-title",
                "fas-unavailable",
                code,
            ));
        }
    };
    session.data.fas = Some(pending);
    ctx.save(&mut session).await?;
    Ok(Redirect::to(&url).into_response())
}

pub async fn callback(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Query(q): Query<CallbackParams>,
) -> Result<Response, WebError> {
    let fas = st.fas.clone().ok_or(WebError::NotFound)?;
    let tr = ctx.tr.clone();
    let page = |status, title, text, code| WebError::page(status, &tr, title, text, code);
    let Some(mut session) = ctx.session.take() else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "session-expired-title",
            "session-expired",
            "session",
        ));
    };
    // The answer belongs to the login this browser started, once.
    let pending = session.data.fas.take();
    ctx.save(&mut session).await?;
    match fas.callback(pending, q, &ctx.address, ctx.now).await? {
        Returned::LoggedIn(login) => logged_in(&st, &ctx, session, login).await,
        Returned::UpstreamError { cancelled } => Ok(pages::message(
            StatusCode::OK,
            &tr,
            "fas-failed-title",
            tr.t("fas-error"),
            Some(if cancelled { "cancelled" } else { "upstream_error" }),
            Some(pages::Link { href: "/login".into(), label: tr.t("back-to-chooser") }),
        )),
        Returned::UnknownLevel => Ok(pages::message(
            StatusCode::BAD_REQUEST,
            &tr,
            "fas-failed-title",
            tr.t("fas-unknown-level"),
            Some("unknown_level"),
            Some(pages::Link { href: "/login".into(), label: tr.t("back-to-chooser") }),
        )),
        Returned::Refused(code) => {
            Err(page(StatusCode::BAD_REQUEST, "fas-failed-title", "fas-refused", code))
        }
    }
}
