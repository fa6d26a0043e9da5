//! The login pages: the chooser and the digital-key login (SPEC §6).

use super::pages::Notice;
use super::pages::{self, Link};
use super::pages::{render, Chooser, Chrome, FormError, KeyCode, KeyLogin, KeyOption, MethodLink};
use super::{AppState, Ctx, WebError};
use crate::assurance::{AssuranceLevel, Method};
use crate::i18n::Tr;
use crate::keys::{ChallengeStart, CodeCheck, PasswordCheck, KEY_STEP_TTL_S};
use crate::oidc::authorize::{Access, AuthRequest, Next};
use crate::policy::Subject;
use crate::session::{Login, Session};
use crate::store::AuditEvent;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use std::net::SocketAddr;

/// Adds the session cookie when the session was created by this request.
fn with_cookie(st: &AppState, mut resp: Response, s: &Session, is_new: bool) -> Response {
    if is_new {
        resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(s));
    }
    resp
}

fn level_name(tr: &Tr, l: crate::assurance::AssuranceLevel) -> String {
    tr.t(&format!("level-{}", l.short()))
}

/// The pending request of this session, if any, with its id.
async fn pending_of(
    st: &AppState,
    session: Option<&Session>,
) -> Result<Option<(String, AuthRequest)>, WebError> {
    let Some(id) = session.and_then(|s| s.data.pending.clone()) else { return Ok(None) };
    let req =
        st.provider.load_pending(&id).await.map_err(|e| WebError::Internal(format!("{e:?}")))?;
    Ok(req.map(|r| (id, r)))
}

/// What the policy says about the session's login for the pending request: the reasons a
/// step-up is needed, and the methods that would satisfy.
async fn step_up_state(
    st: &AppState,
    session: Option<&Session>,
    req: &AuthRequest,
) -> Result<(Vec<String>, Vec<Method>), WebError> {
    let login = session.and_then(|s| s.data.login.clone());
    let person = match &login {
        Some(l) => st.store.person(&l.person_id).await?,
        None => None,
    };
    let subject = match &person {
        Some(p) => st.provider.person_facts(p, req).await.subject,
        None => Subject::anyone(),
    };
    let access = st.provider.access(req, &subject, login.as_ref().filter(|_| person.is_some()))?;
    Ok(match access {
        Access::Answer => {
            (Vec::new(), st.provider.offered(req.asked_level).iter().map(|c| c.method).collect())
        }
        Access::StepUp { reasons, methods } => {
            (reasons, methods.iter().map(|c| c.method).collect())
        }
        Access::Deny { reasons } => (reasons, Vec::new()),
    })
}

pub async fn chooser(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let pending = pending_of(&st, ctx.session.as_ref()).await?;
    let tr = &ctx.tr;
    let (reasons, allowed) = match &pending {
        Some((_, req)) => step_up_state(&st, ctx.session.as_ref(), req).await?,
        None => (
            Vec::new(),
            st.provider
                .offered(level_without_request(ctx.session.as_ref()))
                .iter()
                .map(|c| c.method)
                .collect(),
        ),
    };
    let mut methods = Vec::new();
    if allowed.iter().any(|m| Method::KEY_FACTORS.contains(m)) {
        methods.push(MethodLink {
            id: "key",
            href: "/login/key".into(),
            title: tr.t("method-key"),
            help: tr.t("method-key-help"),
        });
    }
    if st.eid.is_some() && allowed.contains(&Method::Eid) {
        methods.insert(
            0,
            MethodLink {
                id: "eid",
                href: "/login/eid".into(),
                title: tr.t("method-eid"),
                help: tr.t("method-eid-help"),
            },
        );
    }
    let fas_means: Vec<Method> = st
        .fas
        .as_ref()
        .map(|f| f.offered().into_iter().map(|(m, _)| m).collect())
        .unwrap_or_default();
    if st.fas.is_some() && allowed.iter().any(|m| fas_means.contains(m)) {
        methods.push(MethodLink {
            id: "fas",
            href: "/login/fas".into(),
            title: tr.t("method-fas"),
            help: tr.t("method-fas-help"),
        });
    }
    if st.eidas.is_some() && allowed.contains(&Method::Eidas) {
        methods.push(MethodLink {
            id: "eidas",
            href: "/login/eidas".into(),
            title: tr.t("method-eidas"),
            help: tr.t("method-eidas-help"),
        });
    }
    let page = Chooser {
        c: Chrome::new(tr.clone(), "/login"),
        client: pending.as_ref().map(|(_, p)| p.client_id.clone()),
        level: pending
            .as_ref()
            .map(|(_, p)| p.min_level)
            .filter(|l| *l > crate::assurance::AssuranceLevel::Low)
            .map(|l| level_name(tr, l)),
        reasons: reasons.iter().map(|r| tr.t(r)).collect(),
        methods,
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn key_form(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let (session, is_new) = st.session_or_new(&mut ctx).await?;
    let page = KeyLogin {
        c: Chrome::new(ctx.tr.clone(), "/login/key"),
        csrf: session.csrf.clone(),
        username: String::new(),
        error: None,
    };
    Ok(with_cookie(&st, render(StatusCode::OK, &page), &session, is_new))
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    csrf: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

fn locked_text(tr: &Tr, until: i64) -> String {
    tr.t1("locked-until", "until", &tr.datetime(until))
}

pub async fn key_password(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    ctx.require_csrf(form.csrf.as_deref())?;
    let Some(mut session) = ctx.session.take() else {
        return Err(WebError::Internal("no session".into()));
    };
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let tr = ctx.tr.clone();
    let again = |status: StatusCode, error: FormError, username: String, csrf: String| {
        let page = KeyLogin {
            c: Chrome::new(tr.clone(), "/login/key"),
            csrf,
            username,
            error: Some(error),
        };
        render(status, &page)
    };
    match st.keys.check_password(&username, &password, &ctx.address).await? {
        PasswordCheck::Ok { step, methods: _ } => {
            session.data.key_step = Some(step);
            st.sessions.save(&mut session).await?;
            Ok(Redirect::to("/login/key/code").into_response())
        }
        PasswordCheck::Wrong => Ok(again(
            StatusCode::UNAUTHORIZED,
            FormError::new(&tr, "wrong-credentials"),
            username,
            session.csrf.clone(),
        )),
        PasswordCheck::Locked { until } => Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            FormError { code: "locked", text: locked_text(&tr, until) },
            username,
            session.csrf.clone(),
        )),
    }
}

/// A login for the broker's own pages (`/office`, adding a key at `/account`) needs at least
/// substantial (SPEC §7); the session remembers where the person was going.
pub fn level_without_request(session: Option<&Session>) -> Option<AssuranceLevel> {
    session.and_then(|s| s.data.return_to.as_ref()).map(|_| AssuranceLevel::Substantial)
}

/// The account's active keys that the pending request's policy accepts, and the reasons when
/// some are refused.
async fn usable_keys(
    st: &AppState,
    session: &Session,
    account_id: &str,
) -> Result<(Vec<Method>, Vec<String>), WebError> {
    let mut methods = st.keys.active_methods(account_id).await?;
    let mut reasons = Vec::new();
    if let Some((_, req)) = pending_of(st, Some(session)).await? {
        let (why, allowed) = step_up_state(st, Some(session), &req).await?;
        methods.retain(|m| allowed.contains(m));
        reasons = why;
        if reasons.is_empty() && methods.is_empty() {
            reasons.push("policy-no-sms-token".into());
        }
    } else if let Some(min) = level_without_request(Some(session)) {
        let before = methods.len();
        methods.retain(|m| m.own_level().is_some_and(|l| l >= min));
        if methods.len() < before {
            reasons.push("policy-level-substantial".into());
        }
    }
    Ok((methods, reasons))
}

fn set_challenge(session: &mut Session, id: String) {
    if let Some(step) = session.data.key_step.as_mut() {
        step.challenge = Some(id);
    }
}

/// The second-step form for the account that passed its password.
async fn code_page(
    st: &AppState,
    ctx: &Ctx,
    session: &Session,
    error: Option<FormError>,
    status: StatusCode,
    chosen: Option<Method>,
) -> Result<Response, WebError> {
    code_page_with(st, ctx, session, error, None, status, chosen).await
}

async fn code_page_with(
    st: &AppState,
    ctx: &Ctx,
    session: &Session,
    error: Option<FormError>,
    notice: Option<Notice>,
    status: StatusCode,
    chosen: Option<Method>,
) -> Result<Response, WebError> {
    let Some(step) = &session.data.key_step else {
        return Ok(Redirect::to("/login/key").into_response());
    };
    let (methods, reasons) = usable_keys(st, session, &step.account_id).await?;
    let tr = &ctx.tr;
    let mut error = error;
    if methods.is_empty() && error.is_none() {
        // The account's keys are not strong enough for this service: say which it needs.
        let text = reasons.iter().map(|r| tr.t(r)).collect::<Vec<_>>().join(" ");
        error = Some(FormError { code: "key-not-accepted", text });
    }
    let options = methods
        .iter()
        .enumerate()
        .map(|(i, m)| KeyOption {
            value: m.as_str(),
            label: tr.t(&format!("key-{}", m.as_str())),
            help: tr.t(&format!("key-{}-help", m.as_str())),
            checked: chosen.map_or(i == 0, |c| c == *m),
        })
        .collect();
    let page = KeyCode {
        c: Chrome::new(tr.clone(), "/login/key/code"),
        csrf: session.csrf.clone(),
        options,
        error,
        notice,
    };
    Ok(render(status, &page))
}

fn step_is_live(st: &AppState, session: &Session) -> bool {
    session.data.key_step.as_ref().is_some_and(|s| st.clock.now() - s.at <= KEY_STEP_TTL_S)
}

pub async fn code_form(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    match &ctx.session {
        Some(s) if step_is_live(&st, s) => {
            code_page(&st, &ctx, s, None, StatusCode::OK, None).await
        }
        _ => Ok(Redirect::to("/login/key").into_response()),
    }
}

#[derive(serde::Deserialize)]
pub struct CodeForm {
    csrf: Option<String>,
    method: Option<String>,
    code: Option<String>,
}

pub async fn key_code(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    ctx.require_csrf(form.csrf.as_deref())?;
    let Some(mut session) = ctx.session.take() else {
        return Err(WebError::Internal("no session".into()));
    };
    let tr = ctx.tr.clone();
    if !step_is_live(&st, &session) {
        session.data.key_step = None;
        st.sessions.save(&mut session).await?;
        let page = KeyLogin {
            c: Chrome::new(tr.clone(), "/login/key"),
            csrf: session.csrf.clone(),
            username: String::new(),
            error: Some(FormError::new(&tr, "step-expired")),
        };
        return Ok(render(StatusCode::UNAUTHORIZED, &page));
    }
    let Some(step) = session.data.key_step.clone() else {
        return Ok(Redirect::to("/login/key").into_response());
    };
    let method =
        form.method.as_deref().and_then(Method::parse).filter(|m| Method::KEY_FACTORS.contains(m));
    let code = form.code.unwrap_or_default();
    let Some(method) = method else {
        let e = FormError::new(&tr, "no-such-key");
        return code_page(&st, &ctx, &session, Some(e), StatusCode::BAD_REQUEST, None).await;
    };
    let (usable, reasons) = usable_keys(&st, &session, &step.account_id).await?;
    if !usable.contains(&method) {
        // Not offered for this service (e.g. SMS for eHealth): nothing is sent or checked.
        let text = reasons.iter().map(|r| tr.t(r)).collect::<Vec<_>>().join(" ");
        let e = FormError { code: "key-not-accepted", text };
        return code_page(&st, &ctx, &session, Some(e), StatusCode::FORBIDDEN, None).await;
    }
    if code.trim().is_empty() && matches!(method, Method::Sms | Method::Token) {
        // No code yet: send one by SMS, or ask for a card position.
        let notice = match st.keys.start_challenge(&step, method).await? {
            ChallengeStart::SmsSent { id, phone } => {
                set_challenge(&mut session, id);
                Notice { text: tr.t1("sms-sent", "phone", &phone), position: None, webauthn: None }
            }
            ChallengeStart::TokenPosition { id, position } => {
                set_challenge(&mut session, id);
                Notice {
                    text: tr.t1("token-position", "position", &position.to_string()),
                    position: Some(position),
                    webauthn: None,
                }
            }
            ChallengeStart::NoSuchKey => {
                let e = FormError::new(&tr, "no-such-key");
                return code_page(
                    &st,
                    &ctx,
                    &session,
                    Some(e),
                    StatusCode::BAD_REQUEST,
                    Some(method),
                )
                .await;
            }
            ChallengeStart::CardUsedUp => {
                let e = FormError::new(&tr, "card-used-up");
                return code_page(
                    &st,
                    &ctx,
                    &session,
                    Some(e),
                    StatusCode::BAD_REQUEST,
                    Some(method),
                )
                .await;
            }
        };
        st.sessions.save(&mut session).await?;
        return code_page_with(
            &st,
            &ctx,
            &session,
            None,
            Some(notice),
            StatusCode::OK,
            Some(method),
        )
        .await;
    }
    if method == Method::Webauthn && code.trim().is_empty() {
        // No answer yet: ask the security key (the challenge stays on the server).
        let started = match &st.keys.passkeys {
            Some(pk) => pk.start_authentication(&st.store, &step.account_id).await.ok(),
            None => None,
        };
        let Some((challenge, state)) = started else {
            let e = FormError::new(&tr, "no-such-key");
            return code_page(&st, &ctx, &session, Some(e), StatusCode::BAD_REQUEST, Some(method))
                .await;
        };
        if let Some(s) = session.data.key_step.as_mut() {
            s.webauthn = Some(state);
        }
        st.sessions.save(&mut session).await?;
        let notice = Notice {
            text: tr.t("webauthn-touch"),
            position: None,
            webauthn: serde_json::to_string(&challenge).ok(),
        };
        return code_page_with(
            &st,
            &ctx,
            &session,
            None,
            Some(notice),
            StatusCode::OK,
            Some(method),
        )
        .await;
    }
    let outcome = if method == Method::Webauthn {
        // The challenge is taken out of the session first: an answer is checked only once.
        let state = session.data.key_step.as_mut().and_then(|s| s.webauthn.take());
        st.sessions.save(&mut session).await?;
        st.keys.check_webauthn(&step, state.as_ref(), code.trim(), &ctx.address).await?
    } else {
        st.keys.check_code(&step, method, &code, &ctx.address).await?
    };
    let (status, error) = match outcome {
        CodeCheck::Ok(login) => return complete_login(&st, &ctx, session, login).await,
        CodeCheck::Wrong => (StatusCode::UNAUTHORIZED, FormError::new(&tr, "wrong-code")),
        CodeCheck::Replayed => (StatusCode::UNAUTHORIZED, FormError::new(&tr, "replayed-code")),
        CodeCheck::NoSuchKey => (StatusCode::BAD_REQUEST, FormError::new(&tr, "no-such-key")),
        CodeCheck::NoChallenge => (StatusCode::BAD_REQUEST, FormError::new(&tr, "no-challenge")),
        CodeCheck::Locked { until } => (
            StatusCode::TOO_MANY_REQUESTS,
            FormError { code: "locked", text: locked_text(&tr, until) },
        ),
    };
    code_page(&st, &ctx, &session, Some(error), status, Some(method)).await
}

/// A login succeeded: new session id, audit, and back to the app with a code (or to the
/// account page when no app is waiting).
pub async fn complete_login(
    st: &AppState,
    ctx: &Ctx,
    mut session: Session,
    login: Login,
) -> Result<Response, WebError> {
    session.data.key_step = None;
    session.data.login = Some(login.clone());
    st.sessions.renew_id(&mut session).await?;
    let pending = pending_of(st, Some(&session)).await?;
    st.provider
        .audit(AuditEvent {
            kind: "login".into(),
            outcome: "ok".into(),
            person_id: Some(login.person_id.clone()),
            client_id: pending.as_ref().map(|(_, p)| p.client_id.clone()),
            method: Some(login.method.to_string()),
            acr: Some(login.acr.uri().into()),
            address: Some(ctx.address.clone()),
            ..Default::default()
        })
        .await;
    let mut resp = match pending {
        Some((id, req)) => {
            continue_request(st, &ctx.tr, &mut session, Some(id), &req, true).await?
        }
        None => {
            let to = session.data.return_to.take().unwrap_or_else(|| "/account".into());
            Redirect::to(&to).into_response()
        }
    };
    st.sessions.save(&mut session).await?;
    resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(&session));
    Ok(resp)
}

/// Answers an authorization request from the session's login if the client's policy allows it;
/// otherwise keeps the request and sends the person to the chooser (step-up), or tells the client
/// it cannot be satisfied. `after_login`: the login was just made for this request.
pub async fn continue_request(
    st: &AppState,
    tr: &Tr,
    session: &mut Session,
    pending_id: Option<String>,
    req: &AuthRequest,
    after_login: bool,
) -> Result<Response, WebError> {
    let login = session.data.login.clone();
    let person = match &login {
        Some(l) => st.store.person(&l.person_id).await?,
        None => None,
    };
    let facts = match &person {
        Some(p) => Some(st.provider.person_facts(p, req).await),
        None => None,
    };
    let subject = facts.as_ref().map(|f| f.subject.clone()).unwrap_or_else(Subject::anyone);
    let login = login.filter(|_| person.is_some());
    let access = st.provider.access(req, &subject, login.as_ref())?;
    let next = if after_login {
        if access == Access::Answer {
            Next::Answer
        } else {
            Next::LogIn
        }
    } else {
        st.provider.next_step(req, &access)
    };
    match (next, access, login, person, facts) {
        (Next::Answer, _, Some(login), Some(person), Some(facts)) => {
            if let Some(id) = &pending_id {
                st.store.take_pending(id).await?;
            }
            session.data.pending = None;
            let url = st
                .provider
                .issue_code(req, &login, &person, &facts)
                .await
                .map_err(|e| WebError::Internal(format!("{e:?}")))?;
            Ok(Redirect::to(&url).into_response())
        }
        (Next::LoginRequired, ..) => Ok(Redirect::to(&st.provider.redirect(
            &req.redirect_uri,
            req.state.as_deref(),
            &[("error", "login_required"), ("error_description", "the person must log in")],
        ))
        .into_response()),
        (_, Access::Deny { reasons }, ..) => {
            if let Some(id) = &pending_id {
                st.store.take_pending(id).await?;
            }
            session.data.pending = None;
            if reasons.iter().any(|r| r == "policy-registry-unavailable") {
                // Fail closed, and say so; the link back tells the app to try later.
                let back = st.provider.redirect(
                    &req.redirect_uri,
                    req.state.as_deref(),
                    &[
                        ("error", "temporarily_unavailable"),
                        ("error_description", "the registry is unavailable"),
                    ],
                );
                return Ok(pages::message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    tr,
                    "registry-unavailable-title",
                    tr.t("policy-registry-unavailable"),
                    Some("temporarily_unavailable"),
                    Some(Link { href: back, label: tr.t("back-to-app") }),
                ));
            }
            Ok(Redirect::to(&st.provider.redirect(
                &req.redirect_uri,
                req.state.as_deref(),
                &[
                    ("error", "unmet_authentication_requirements"),
                    ("error_description", "this login does not satisfy the service's policy"),
                ],
            ))
            .into_response())
        }
        _ => {
            let id = match pending_id {
                Some(id) => id,
                None => st
                    .provider
                    .save_pending(req)
                    .await
                    .map_err(|e| WebError::Internal(format!("{e:?}")))?,
            };
            session.data.pending = Some(id);
            session.data.key_step = None;
            Ok(Redirect::to("/login").into_response())
        }
    }
}
