//! eID card login pages: the broker sends the browser to the eID listener, which checks the card
//! certificate and sends it back with a one-time ticket for the same browser session. The steps
//! are `eid::login`'s use cases.

use super::login::logged_in;
use super::pages::{self, Link};
use super::{AppState, Ctx, WebError};
use crate::eid::login::Answered;
use crate::eid::server::PeerChain;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;

/// `/login/eid` on the broker: a request bound to this session, then off to the listener.
pub async fn start(State(st): State<AppState>, mut ctx: Ctx) -> Result<Response, WebError> {
    if st.eid.is_none() {
        return Err(WebError::NotFound);
    }
    let mut session = ctx.session_or_new().await?;
    let id = st.eid_logins.begin(&session.id, ctx.now).await?;
    ctx.save(&mut session).await?;
    let base = st.cfg.eid.public_url.as_str().trim_end_matches('/');
    Ok(Redirect::to(&format!("{base}/eid/start?r={id}")).into_response())
}

#[derive(serde::Deserialize)]
pub struct StartQuery {
    r: Option<String>,
}

/// On the eID listener: verify the card and hand a ticket back to the broker.
pub async fn listener_start(
    State(st): State<AppState>,
    ctx: Ctx,
    Extension(chain): Extension<PeerChain>,
    Query(q): Query<StartQuery>,
) -> Result<Response, WebError> {
    let eid = st.eid.as_ref().ok_or(WebError::NotFound)?;
    let tr = &ctx.tr;
    let issuer = st.cfg.issuer();
    let expired = |code| {
        WebError::page(StatusCode::BAD_REQUEST, tr, "eid-problem-title", "session-expired", code)
    };
    match st.eid_logins.answer(&eid.current(), &chain.0, q.r, &ctx.address, ctx.now).await? {
        Answered::Ticket { id, ticket } => {
            Ok(Redirect::to(&format!("{issuer}/login/eid/return?r={id}&t={ticket}"))
                .into_response())
        }
        Answered::Refused(problem) => Ok(pages::message(
            StatusCode::FORBIDDEN,
            tr,
            "eid-problem-title",
            tr.t(&format!("eid-{}", problem.code().replace('_', "-"))),
            Some(problem.code()),
            Some(Link { href: format!("{issuer}/login"), label: tr.t("back-to-chooser") }),
        )),
        Answered::NoRequest => Err(expired("no_request")),
        Answered::Expired => Err(expired("expired")),
    }
}

#[derive(serde::Deserialize)]
pub struct ReturnQuery {
    r: Option<String>,
    t: Option<String>,
}

/// Back on the broker: the ticket opens the login for the session that started it, once.
pub async fn finish(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Query(q): Query<ReturnQuery>,
) -> Result<Response, WebError> {
    let expired = |tr, code| {
        WebError::page(
            StatusCode::BAD_REQUEST,
            tr,
            "session-expired-title",
            "session-expired",
            code,
        )
    };
    let (Some(session), Some(id), Some(ticket)) = (ctx.session.take(), q.r, q.t) else {
        return Err(expired(&ctx.tr, "session"));
    };
    match st.eid_logins.finish(&session.id, &id, &ticket, ctx.now).await? {
        Some(login) => logged_in(&st, &ctx, session, login).await,
        None => Err(expired(&ctx.tr, "ticket")),
    }
}
