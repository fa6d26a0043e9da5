//! The login pages: the chooser and the digital-key login (SPEC §6).

use super::pages::{render, Chooser, Chrome, FormError, KeyCode, KeyLogin, KeyOption, MethodLink};
use super::{AppState, Ctx, WebError};
use crate::assurance::Method;
use crate::i18n::Tr;
use crate::keys::{CodeCheck, PasswordCheck, KEY_STEP_TTL_S};
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

pub async fn chooser(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let pending = match ctx.session.as_ref().and_then(|s| s.data.pending.clone()) {
        Some(id) => {
            st.provider.load_pending(&id).await.map_err(|e| WebError::Internal(format!("{e:?}")))?
        }
        None => None,
    };
    let tr = &ctx.tr;
    let min = pending.as_ref().map(|p| p.min_level);
    let mut methods = Vec::new();
    // The digital key reaches `substantial` with the app code (or a security key).
    let key_level = Method::Totp.own_level().unwrap_or(crate::assurance::AssuranceLevel::Low);
    if st.provider.methods.contains(&Method::Totp) && min.is_none_or(|m| key_level >= m) {
        methods.push(MethodLink {
            id: "key",
            href: "/login/key".into(),
            title: tr.t("method-key"),
            help: tr.t("method-key-help"),
        });
    }
    let page = Chooser {
        c: Chrome::new(tr.clone(), "/login"),
        client: pending.as_ref().map(|p| p.client_id.clone()),
        level: min
            .filter(|l| *l > crate::assurance::AssuranceLevel::Low)
            .map(|l| level_name(tr, l)),
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

/// A form posted without a live session or with a wrong CSRF token changes nothing.
fn require_csrf(ctx: &Ctx, token: Option<&str>) -> Result<(), WebError> {
    match &ctx.session {
        Some(s) if s.csrf_ok(token) => Ok(()),
        _ => Err(WebError::page(
            StatusCode::FORBIDDEN,
            &ctx.tr,
            "session-expired-title",
            "csrf-failed",
            "csrf",
        )),
    }
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
    require_csrf(&ctx, form.csrf.as_deref())?;
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

/// The second-step form for the account that passed its password.
async fn code_page(
    st: &AppState,
    ctx: &Ctx,
    session: &Session,
    error: Option<FormError>,
    status: StatusCode,
    chosen: Option<Method>,
) -> Result<Response, WebError> {
    let Some(step) = &session.data.key_step else {
        return Ok(Redirect::to("/login/key").into_response());
    };
    let methods = st.keys.active_methods(&step.account_id).await?;
    let tr = &ctx.tr;
    let options = methods
        .iter()
        .enumerate()
        .map(|(i, m)| KeyOption {
            value: m.as_str(),
            label: tr.t(&format!("key-{}", m.as_str())),
            help: if *m == Method::Totp { tr.t("key-totp-help") } else { String::new() },
            checked: chosen.map_or(i == 0, |c| c == *m),
        })
        .collect();
    let page = KeyCode {
        c: Chrome::new(tr.clone(), "/login/key/code"),
        csrf: session.csrf.clone(),
        options,
        error,
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
    require_csrf(&ctx, form.csrf.as_deref())?;
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
    let outcome = st.keys.check_code(&step, method, &code, &ctx.address).await?;
    let (status, error) = match outcome {
        CodeCheck::Ok(login) => return complete_login(&st, &ctx, session, login).await,
        CodeCheck::Wrong => (StatusCode::UNAUTHORIZED, FormError::new(&tr, "wrong-code")),
        CodeCheck::Replayed => (StatusCode::UNAUTHORIZED, FormError::new(&tr, "replayed-code")),
        CodeCheck::NoSuchKey => (StatusCode::BAD_REQUEST, FormError::new(&tr, "no-such-key")),
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
    let pending_id = session.data.pending.take();
    let pending = match &pending_id {
        Some(id) => {
            st.provider.load_pending(id).await.map_err(|e| WebError::Internal(format!("{e:?}")))?
        }
        None => None,
    };
    st.provider
        .audit(AuditEvent {
            kind: "login".into(),
            outcome: "ok".into(),
            person_id: Some(login.person_id.clone()),
            client_id: pending.as_ref().map(|p| p.client_id.clone()),
            method: Some(login.method.to_string()),
            acr: Some(login.acr.uri().into()),
            address: Some(ctx.address.clone()),
            ..Default::default()
        })
        .await;
    let target = match (pending, st.store.person(&login.person_id).await?) {
        (Some(req), Some(person)) if st.provider.satisfies(&req, Some(&login)) => {
            if let Some(id) = &pending_id {
                st.store.take_pending(id).await?;
            }
            st.provider
                .issue_code(&req, &login, &person)
                .await
                .map_err(|e| WebError::Internal(format!("{e:?}")))?
        }
        (Some(_), _) => {
            // Still not enough for this app (e.g. it needs a higher level): keep the request and
            // offer the methods that would satisfy it.
            session.data.pending = pending_id;
            "/login".to_string()
        }
        _ => "/account".to_string(),
    };
    st.sessions.save(&mut session).await?;
    let mut resp = Redirect::to(&target).into_response();
    resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(&session));
    Ok(resp)
}
