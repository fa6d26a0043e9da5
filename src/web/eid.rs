//! eID card login pages: the broker sends the browser to the eID listener, which checks the card
//! certificate and sends it back with a one-time ticket for the same browser session.

use super::login::complete_login;
use super::pages::{self, Link};
use super::{AppState, WebError};
use crate::assurance::{AssuranceLevel, Method};
use crate::eid::server::PeerChain;
use crate::eid::Card;
use crate::identity::Insz;
use crate::session::Login;
use crate::store::AuditEvent;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use std::net::SocketAddr;

const EID_TTL_S: i64 = 600;

/// `/login/eid` on the broker: a request bound to this session, then off to the listener.
pub async fn start(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    if st.eid.is_none() {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let (mut session, is_new) = st.session_or_new(&mut ctx).await?;
    let now = st.clock.now();
    let id = crate::crypto::random_token(24);
    st.store
        .insert_eid_request(&id, &crate::crypto::token_hash(&session.id), now, now + EID_TTL_S)
        .await?;
    st.sessions.save(&mut session).await?;
    let base = st.cfg.eid.public_url.as_str().trim_end_matches('/');
    let mut resp = Redirect::to(&format!("{base}/eid/start?r={id}")).into_response();
    if is_new {
        resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(&session));
    }
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct StartQuery {
    r: Option<String>,
}

/// On the eID listener: verify the card and hand a ticket back to the broker.
pub async fn listener_start(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(chain): Extension<PeerChain>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let Some(eid) = &st.eid else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    let presented = Some(chain.0.as_slice()).filter(|c| !c.is_empty());
    let card = match eid.current().verify_card(presented, st.clock.now()) {
        Ok(c) => c,
        Err(refusal) => {
            // What an operator needs to find the cause; the subject (and so the INSZ) stays out.
            tracing::warn!(
                reason = refusal.problem.code(),
                error = %refusal.error,
                issuer = refusal.issuer.as_deref().unwrap_or("-"),
                serial = refusal.serial.as_deref().unwrap_or("-"),
                "eID login refused"
            );
            let problem = refusal.problem;
            st.provider
                .audit(AuditEvent {
                    kind: "login".into(),
                    outcome: "failed".into(),
                    method: Some("eid".into()),
                    address: Some(ctx.address.clone()),
                    detail: serde_json::json!({ "reason": problem.code() }).to_string(),
                    ..Default::default()
                })
                .await;
            let back = format!("{}/login", st.cfg.issuer());
            return Ok(pages::message(
                StatusCode::FORBIDDEN,
                &tr,
                "eid-problem-title",
                tr.t(&format!("eid-{}", problem.code().replace('_', "-"))),
                Some(problem.code()),
                Some(Link { href: back, label: tr.t("back-to-chooser") }),
            ));
        }
    };
    let Some(id) = q.r else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "eid-problem-title",
            "session-expired",
            "no_request",
        ));
    };
    let ticket = crate::crypto::random_token(32);
    let result = serde_json::to_string(&card).map_err(|e| WebError::Internal(e.to_string()))?;
    let now = st.clock.now();
    if !st.store.answer_eid_request(&id, &crate::crypto::token_hash(&ticket), &result, now).await? {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "eid-problem-title",
            "session-expired",
            "expired",
        ));
    }
    Ok(Redirect::to(&format!("{}/login/eid/return?r={id}&t={ticket}", st.cfg.issuer()))
        .into_response())
}

#[derive(serde::Deserialize)]
pub struct ReturnQuery {
    r: Option<String>,
    t: Option<String>,
}

/// Back on the broker: the ticket opens the login for the session that started it, once.
pub async fn finish(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ReturnQuery>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let now = st.clock.now();
    let (Some(session), Some(id), Some(ticket)) = (ctx.session.take(), q.r, q.t) else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "session-expired-title",
            "session-expired",
            "session",
        ));
    };
    let answer = st
        .store
        .take_eid_answer(
            &id,
            &crate::crypto::token_hash(&session.id),
            &crate::crypto::token_hash(&ticket),
            now,
        )
        .await?;
    let Some(card) = answer.and_then(|a| serde_json::from_str::<Card>(&a).ok()) else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "session-expired-title",
            "session-expired",
            "ticket",
        ));
    };
    let insz = Insz::parse(&card.insz).map_err(|_| WebError::Internal("card INSZ".into()))?;
    let person =
        st.store.person_or_create(&insz, &card.given_name, &card.family_name, None, now).await?;
    if st.store.identity_person("eid", insz.as_str()).await?.is_none() {
        let _ = st.store.link_identity("eid", insz.as_str(), &person.id, now).await;
    }
    let login = Login {
        person_id: person.id,
        auth_time: now,
        acr: AssuranceLevel::High,
        amr: vec!["eid".into()],
        method: Method::Eid,
        eidas_person_identifier: None,
    };
    complete_login(&st, &ctx, session, login).await
}
