//! Wallet login pages and endpoints (SPEC §12): the waiting page with the `openid4vp://` link
//! and its QR code, the request object, the wallet's response, the poll, and the return to the
//! browser session. The decisions are `eudiw::login`'s; these handlers render them.

use super::login::logged_in;
use super::pages::{self, render, Chrome, Link};
use super::{AppState, CrossSite, Ctx, WebError};
use crate::assurance::Method;
use crate::eudiw::login::{Accepted, Finished, Poll, WalletPost};
use crate::eudiw::sdjwt::Refusal;
use crate::eudiw::Eudiw;
use crate::i18n::Tr;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde_json::json;
use std::sync::Arc;

fn verifier(st: &AppState) -> Result<Arc<Eudiw>, WebError> {
    st.eudiw.clone().ok_or(WebError::NotFound)
}

/// `/login/eudiw`: a new request for this browser, shown as a link (same device) and a QR
/// code (another device); the page polls until the wallet has answered.
pub async fn start(State(st): State<AppState>, mut ctx: Ctx) -> Result<Response, WebError> {
    let eudiw = verifier(&st)?;
    let tr = ctx.tr.clone();
    let mut session = ctx.session_or_new().await?;
    let Some(min_level) =
        st.provider.lowest_level_for(&session.data, Method::Eudiw, ctx.now).await?
    else {
        let code = "not-allowed";
        return Err(WebError::page(
            StatusCode::FORBIDDEN,
            &tr,
            "error-title",
            "policy-not-allowed",
            code,
        ));
    };
    let started = eudiw.start(&session.id, min_level, ctx.now).await?;
    ctx.save(&mut session).await?;
    let page = pages::WalletWait {
        c: Chrome::new(tr, "/login/eudiw"),
        qr: super::activate::qr_data_uri(&started.wallet_uri),
        wallet_uri: started.wallet_uri,
        same_device_uri: started.same_device_uri,
        poll: format!("/eudiw/poll/{}", started.id),
        next: format!("/eudiw/continue?r={}", started.id),
    };
    Ok(render(StatusCode::OK, &page))
}

/// The signed request object, once (OpenID4VP `request_uri`).
pub async fn request_object(
    State(st): State<AppState>,
    ctx: CrossSite,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    match verifier(&st)?.request_object(&id, ctx.now).await? {
        Some(jwt) => {
            Ok(([(header::CONTENT_TYPE, "application/oauth-authz-req+jwt")], jwt).into_response())
        }
        None => {
            Ok((StatusCode::NOT_FOUND, "no such request, or already fetched\n").into_response())
        }
    }
}

fn wallet_error(code: &str, status: StatusCode) -> Response {
    (status, Json(json!({ "error": "invalid_request", "error_description": code }))).into_response()
}

/// The wallet's `direct_post.jwt`. Answers the wallet in JSON: where the browser goes next
/// (same device), or why the response is refused.
pub async fn response(
    State(st): State<AppState>,
    ctx: CrossSite,
    Form(post): Form<WalletPost>,
) -> Result<Response, WebError> {
    Ok(match verifier(&st)?.accept(post, &ctx.address, ctx.now).await? {
        Accepted::Continue { redirect_uri } | Accepted::Declined { redirect_uri } => {
            Json(json!({ "redirect_uri": redirect_uri })).into_response()
        }
        Accepted::Refused { reason, redirect_uri } => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "invalid_request",
                "error_description": reason.code(),
                "redirect_uri": redirect_uri,
            })),
        )
            .into_response(),
        Accepted::Unbound(u) => wallet_error(u.code(), StatusCode::BAD_REQUEST),
    })
}

/// The waiting page asks whether the wallet has answered.
pub async fn poll(
    State(st): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let eudiw = verifier(&st)?;
    let status = match &ctx.session {
        Some(s) => eudiw.poll(&s.id, &id).await?,
        None => Poll::Unknown,
    };
    let text = match status {
        Poll::Waiting => "waiting",
        Poll::Answered => "answered",
        Poll::Unknown => "unknown",
    };
    Ok(Json(json!({ "status": text })).into_response())
}

/// The text key of each refusal: what went wrong and what to do next.
fn refusal_text(r: Refusal) -> &'static str {
    match r {
        Refusal::UntrustedIssuer | Refusal::NotPid => "eudiw-refused-issuer",
        Refusal::Expired => "eudiw-refused-expired",
        Refusal::Revoked => "eudiw-refused-revoked",
        Refusal::StatusUnknown => "eudiw-refused-status",
        Refusal::ClaimMissing => "eudiw-refused-claims",
        Refusal::Replayed => "eudiw-refused-replayed",
        Refusal::Malformed
        | Refusal::UndisclosedDigest
        | Refusal::NoKeyBinding
        | Refusal::KeyBinding
        | Refusal::WrongNonce
        | Refusal::WrongAudience => "eudiw-refused-wallet",
    }
}

fn refused(tr: &Tr, r: Refusal) -> WebError {
    WebError::page(StatusCode::BAD_REQUEST, tr, "eudiw-refused-title", refusal_text(r), r.code())
}

#[derive(serde::Deserialize)]
pub struct ContinueQuery {
    r: Option<String>,
}

pub async fn continue_login(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Query(q): Query<ContinueQuery>,
) -> Result<Response, WebError> {
    let eudiw = verifier(&st)?;
    let tr = ctx.tr.clone();
    let mut session = ctx.session.take().ok_or_else(|| {
        WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "session-expired-title",
            "session-expired",
            "session",
        )
    })?;
    let back = || Some(Link { href: "/login".into(), label: tr.t("back-to-chooser") });
    match eudiw.finish(&session.id, q.r.as_deref(), ctx.now).await? {
        Finished::LoggedIn(login) => logged_in(&st, &ctx, session, login).await,
        Finished::NeedsLink(link) => {
            session.data.eidas_link = Some(link);
            ctx.save(&mut session).await?;
            Ok(Redirect::to("/link").into_response())
        }
        Finished::Cancelled => Ok(pages::message(
            StatusCode::OK,
            &tr,
            "eudiw-cancelled-title",
            tr.t("eudiw-cancelled"),
            Some("cancelled"),
            back(),
        )),
        Finished::Waiting => Ok(pages::message(
            StatusCode::OK,
            &tr,
            "eudiw-waiting-title",
            tr.t("eudiw-waiting"),
            Some("waiting"),
            q.r.as_ref().map(|r| Link {
                href: format!("/eudiw/continue?r={r}"),
                label: tr.t("eudiw-check-again"),
            }),
        )),
        Finished::Refused(r) => Err(refused(&tr, r)),
        Finished::OtherSession => Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "eudiw-refused-title",
            "eudiw-other-session",
            "other-session",
        )),
    }
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../static/eudiw.js"),
    )
}
