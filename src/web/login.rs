//! The login pages: the chooser and the digital-key login (SPEC §6), and how any finished login
//! is rendered ([`logged_in`], [`resume_response`]).

use super::pages::{self, Link, Notice};
use super::pages::{render, Chooser, Chrome, FormError, KeyCode, KeyLogin, KeyOption, MethodLink};
use super::{AppState, CsrfForm, Ctx, WebError};
use crate::assurance::Method;
use crate::i18n::Tr;
use crate::keys::second_step::{SecondStep, StepError, StepNotice, Usable};
use crate::keys::{KeyService, PasswordCheck};
use crate::oidc::Resume;
use crate::session::{LoggedIn, Session};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

pub async fn chooser(State(st): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let data = ctx.session.as_ref().map(|s| s.data.clone()).unwrap_or_default();
    let allowed = st.provider.allowed(&data, ctx.now).await?;
    let tr = &ctx.tr;
    let link = |id: &'static str, href: &str| MethodLink {
        id,
        href: href.into(),
        title: tr.t(&format!("method-{id}")),
        help: tr.t(&format!("method-{id}-help")),
    };
    let can = |m: Method| allowed.methods.contains(&m);
    let fas_means: Vec<Method> = st
        .fas
        .as_ref()
        .map(|f| f.fas.offered().into_iter().map(|(m, _)| m).collect())
        .unwrap_or_default();
    let mut methods = Vec::new();
    if st.eid.is_some() && can(Method::Eid) {
        methods.push(link("eid", "/login/eid"));
    }
    if Method::KEY_FACTORS.into_iter().any(can) {
        methods.push(link("key", "/login/key"));
    }
    if st.fas.is_some() && fas_means.into_iter().any(can) {
        methods.push(link("fas", "/login/fas"));
    }
    if st.eidas.is_some() && can(Method::Eidas) {
        methods.push(link("eidas", "/login/eidas"));
    }
    if st.eudiw.is_some() && can(Method::Eudiw) {
        methods.push(link("eudiw", "/login/eudiw"));
    }
    let page = Chooser {
        c: Chrome::new(tr.clone(), "/login"),
        client: allowed.client,
        level: allowed.level.map(|l| tr.t(&format!("level-{}", l.short()))),
        reasons: allowed.reasons.iter().map(|r| tr.t(r)).collect(),
        methods,
    };
    Ok(render(StatusCode::OK, &page))
}

fn password_page(tr: &Tr, csrf: &str, username: String, error: Option<FormError>) -> KeyLogin {
    KeyLogin { c: Chrome::new(tr.clone(), "/login/key"), csrf: csrf.into(), username, error }
}

pub async fn key_form(mut ctx: Ctx) -> Result<Response, WebError> {
    let session = ctx.session_or_new().await?;
    Ok(render(StatusCode::OK, &password_page(&ctx.tr, &session.csrf, String::new(), None)))
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    username: Option<String>,
    password: Option<String>,
}

fn locked_text(tr: &Tr, until: i64) -> String {
    tr.t1("locked-until", "until", &tr.datetime(until))
}

pub async fn key_password(
    State(st): State<AppState>,
    CsrfForm { ctx, mut session, form }: CsrfForm<PasswordForm>,
) -> Result<Response, WebError> {
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let tr = &ctx.tr;
    let checked = st.keys.check_password(&username, &password, &ctx.address, ctx.now).await?;
    let (status, error) = match checked {
        PasswordCheck::Ok { step, .. } => {
            session.data.key_step = Some(step);
            ctx.save(&mut session).await?;
            return Ok(Redirect::to("/login/key/code").into_response());
        }
        PasswordCheck::Wrong => (StatusCode::UNAUTHORIZED, FormError::new(tr, "wrong-credentials")),
        PasswordCheck::Locked { until } => (
            StatusCode::TOO_MANY_REQUESTS,
            FormError { code: "locked", text: locked_text(tr, until) },
        ),
    };
    Ok(render(status, &password_page(tr, &session.csrf, username, Some(error))))
}

/// The keys of the account that passed its password that this browser's request accepts.
async fn usable(st: &AppState, ctx: &Ctx, session: &Session) -> Result<Usable, WebError> {
    let account = session.data.key_step.as_ref().map(|s| s.account_id.clone()).unwrap_or_default();
    let allowed = st.provider.allowed(&session.data, ctx.now).await?;
    Ok(st.keys.usable(&account, &allowed).await?)
}

/// The second-step form: the usable keys, the one chosen, a notice or an error.
fn code_page(
    tr: &Tr,
    session: &Session,
    usable: &Usable,
    chosen: Option<Method>,
    notice: Option<Notice>,
    error: Option<(StatusCode, FormError)>,
) -> Response {
    let (status, mut error) = match error {
        Some((s, e)) => (s, Some(e)),
        None => (StatusCode::OK, None),
    };
    if usable.methods.is_empty() && error.is_none() {
        // The account's keys are not strong enough for this service: say which it needs.
        let text = usable.reasons.iter().map(|r| tr.t(r)).collect::<Vec<_>>().join(" ");
        error = Some(FormError { code: "key-not-accepted", text });
    }
    let options = usable
        .methods
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
    render(status, &page)
}

pub async fn code_form(State(st): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    match &ctx.session {
        Some(s) if KeyService::step_is_live(s.data.key_step.as_ref(), ctx.now) => {
            let usable = usable(&st, &ctx, s).await?;
            Ok(code_page(&ctx.tr, s, &usable, None, None, None))
        }
        _ => Ok(Redirect::to("/login/key").into_response()),
    }
}

#[derive(serde::Deserialize)]
pub struct CodeForm {
    method: Option<String>,
    code: Option<String>,
}

pub async fn key_code(
    State(st): State<AppState>,
    CsrfForm { ctx, mut session, form }: CsrfForm<CodeForm>,
) -> Result<Response, WebError> {
    let usable = usable(&st, &ctx, &session).await?;
    let code = form.code.unwrap_or_default();
    let step = st
        .keys
        .second_step(&mut session, &usable, form.method.as_deref(), &code, &ctx.address, ctx.now)
        .await?;
    let tr = &ctx.tr;
    match step {
        SecondStep::LoggedIn(login) => logged_in(&st, &ctx, session, login).await,
        SecondStep::Expired => {
            let e = FormError::new(tr, "step-expired");
            let page = password_page(tr, &session.csrf, String::new(), Some(e));
            Ok(render(StatusCode::UNAUTHORIZED, &page))
        }
        SecondStep::Again { chosen, notice, error } => {
            let notice = notice.map(|n| notice_of(tr, n));
            let error = error.map(|e| step_error(tr, e));
            Ok(code_page(tr, &session, &usable, chosen, notice, error))
        }
    }
}

fn notice_of(tr: &Tr, n: StepNotice) -> Notice {
    match n {
        StepNotice::SmsSent { masked_phone } => Notice {
            text: tr.t1("sms-sent", "phone", &masked_phone),
            position: None,
            webauthn: None,
        },
        StepNotice::CardPosition { position } => Notice {
            text: tr.t1("token-position", "position", &position.to_string()),
            position: Some(position),
            webauthn: None,
        },
        StepNotice::SecurityKey { challenge } => {
            Notice { text: tr.t("webauthn-touch"), position: None, webauthn: Some(challenge) }
        }
    }
}

fn step_error(tr: &Tr, e: StepError) -> (StatusCode, FormError) {
    match e {
        StepError::NoSuchKey => (StatusCode::BAD_REQUEST, FormError::new(tr, "no-such-key")),
        StepError::NotAccepted { reasons } => {
            let text = reasons.iter().map(|r| tr.t(r)).collect::<Vec<_>>().join(" ");
            (StatusCode::FORBIDDEN, FormError { code: "key-not-accepted", text })
        }
        StepError::CardUsedUp => (StatusCode::BAD_REQUEST, FormError::new(tr, "card-used-up")),
        StepError::Wrong => (StatusCode::UNAUTHORIZED, FormError::new(tr, "wrong-code")),
        StepError::Replayed => (StatusCode::UNAUTHORIZED, FormError::new(tr, "replayed-code")),
        StepError::NoChallenge => (StatusCode::BAD_REQUEST, FormError::new(tr, "no-challenge")),
        StepError::Locked { until } => (
            StatusCode::TOO_MANY_REQUESTS,
            FormError { code: "locked", text: locked_text(tr, until) },
        ),
    }
}

/// Any login succeeded: the session gets a fresh id, the login, and the browser goes where
/// [`crate::oidc::Provider::after_login`] says.
pub async fn logged_in(
    st: &AppState,
    ctx: &Ctx,
    mut session: Session,
    login: impl Into<LoggedIn>,
) -> Result<Response, WebError> {
    let resume =
        st.provider.after_login(&mut session.data, login.into(), &ctx.address, ctx.now).await?;
    ctx.renew(&mut session).await?;
    Ok(resume_response(&ctx.tr, resume))
}

/// Renders where the browser goes after a login or at `/authorize`.
pub fn resume_response(tr: &Tr, resume: Resume) -> Response {
    match resume {
        Resume::Code { url } | Resume::ErrorRedirect { url } => Redirect::to(&url).into_response(),
        Resume::Choose => Redirect::to("/login").into_response(),
        Resume::Return { to } => Redirect::to(&to).into_response(),
        Resume::Unavailable { back } => pages::message(
            StatusCode::SERVICE_UNAVAILABLE,
            tr,
            "registry-unavailable-title",
            tr.t("policy-registry-unavailable"),
            Some("temporarily_unavailable"),
            Some(Link { href: back, label: tr.t("back-to-app") }),
        ),
    }
}
