//! `/activate/…`: a person activates their digital key with the paper code and the mailed link
//! (SPEC §7), then chooses a username and password and sets up one or more keys. The same key
//! pages serve `/account` when a logged-in person adds a key. The rules are
//! `office::activation`'s (the link and the code) and `keys::enrol`'s (the rest); the handlers
//! render their decisions.

use super::extract::{AdmittedForm, ChoosingAccount, Enrolling};
use super::pages::{self, render, Chrome, FieldErr, FormError, KeyOption, Link};
use super::{AppState, CsrfForm, Ctx, WebError};
use crate::i18n::Tr;
use crate::keys::enrol::{AccountChosen, AccountRefusal, CardShown, EnrolmentFinished};
use crate::keys::enrol::{KeyChosen, SecurityKeyAdded, SmsStep, TotpConfirmed};
use crate::keys::NewTotp;
use crate::office::{LinkState, Opening};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;

const ACCOUNT_PAGE: &str = "/activate/account";
const KEYS_PAGE: &str = "/activate/keys";
/// Where a new token card is shown.
const TOKEN_CARD_PAGE: &str = "/activate/keys/token";

pub(super) fn to_account_page() -> Response {
    Redirect::to(ACCOUNT_PAGE).into_response()
}

pub(super) fn to_keys_page() -> Response {
    Redirect::to(KEYS_PAGE).into_response()
}

fn link_problem(tr: &Tr, status: StatusCode, text_key: &str, code: &'static str) -> Response {
    pages::message(
        status,
        tr,
        "activate-title",
        tr.t(text_key),
        Some(code),
        Some(Link { href: "/".into(), label: tr.t("back-to-start") }),
    )
}

/// The page for a browser with no enrolment (or one over an hour old).
pub(super) fn no_enrolment(tr: &Tr) -> Response {
    link_problem(tr, StatusCode::FORBIDDEN, "activate-no-enrolment", "no-enrolment")
}

fn code_page(
    tr: &Tr,
    csrf: &str,
    token: String,
    expires_at: Option<i64>,
    error: Option<FormError>,
    status: StatusCode,
) -> Response {
    let page = pages::ActivateCode {
        c: Chrome::new(tr.clone(), &format!("/activate/{token}")),
        csrf: csrf.to_string(),
        token,
        expires: expires_at.map(|at| tr.date(at)).unwrap_or_default(),
        error,
    };
    render(status, &page)
}

pub async fn code_form(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let tr = ctx.tr.clone();
    let expires_at = match st.offices.link(&token, ctx.now).await? {
        LinkState::Open { expires_at } => expires_at,
        LinkState::Expired => {
            return Ok(link_problem(&tr, StatusCode::GONE, "activate-link-expired", "expired"))
        }
        LinkState::Locked => {
            return Ok(link_problem(&tr, StatusCode::FORBIDDEN, "activate-link-locked", "locked"))
        }
        LinkState::Unusable => {
            return Ok(link_problem(&tr, StatusCode::GONE, "activate-link-unusable", "unusable"))
        }
        LinkState::Unknown => {
            let status = StatusCode::NOT_FOUND;
            return Ok(link_problem(&tr, status, "activate-link-unusable", "unusable"));
        }
    };
    let session = ctx.session_or_new().await?;
    Ok(code_page(&tr, &session.csrf, token, Some(expires_at), None, StatusCode::OK))
}

#[derive(serde::Deserialize)]
pub struct CodePost {
    code: Option<String>,
}

/// The paper code for the link: right, and the enrolment starts in a fresh session.
pub async fn code(
    State(st): State<AppState>,
    Path(token): Path<String>,
    CsrfForm { ctx, mut session, form }: CsrfForm<CodePost>,
) -> Result<Response, WebError> {
    let tr = &ctx.tr;
    let code = form.code.unwrap_or_default();
    match st.offices.open(&token, &code, ctx.now).await? {
        Opening::Opened { enrolment, lang } => {
            session.data.enrol = Some(*enrolment);
            session.data.lang.get_or_insert(lang);
            ctx.renew(&mut session).await?;
            Ok(to_account_page())
        }
        Opening::CodeRequired { expires_at } => {
            let e = FormError::new(tr, "activate-code-required");
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(code_page(tr, &session.csrf, token, expires_at, Some(e), status))
        }
        Opening::Wrong { left, expires_at } => {
            let text = tr.t1("activate-code-wrong", "left", &left.to_string());
            let e = FormError { code: "wrong-code", text };
            let status = StatusCode::UNAUTHORIZED;
            Ok(code_page(tr, &session.csrf, token, Some(expires_at), Some(e), status))
        }
        Opening::Locked => {
            Ok(link_problem(tr, StatusCode::FORBIDDEN, "activate-link-locked", "locked"))
        }
        Opening::Expired => {
            Ok(link_problem(tr, StatusCode::GONE, "activate-link-expired", "expired"))
        }
        Opening::Unusable => {
            Ok(link_problem(tr, StatusCode::GONE, "activate-link-unusable", "unusable"))
        }
    }
}

fn account_page(
    tr: &Tr,
    csrf: &str,
    username: String,
    error: Option<FieldErr>,
    status: StatusCode,
) -> Response {
    let page = pages::ActivateAccount {
        c: Chrome::new(tr.clone(), ACCOUNT_PAGE),
        csrf: csrf.to_string(),
        username,
        error,
    };
    render(status, &page)
}

pub async fn account_form(
    State(st): State<AppState>,
    e: ChoosingAccount,
) -> Result<Response, WebError> {
    let username = st.keys.current_username(&e.enrolment).await?;
    Ok(account_page(&e.ctx.tr, &e.session.csrf, username, None, StatusCode::OK))
}

#[derive(serde::Deserialize)]
pub struct AccountPost {
    username: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
}

pub async fn account(
    State(st): State<AppState>,
    AdmittedForm { who: mut e, form }: AdmittedForm<ChoosingAccount, AccountPost>,
) -> Result<Response, WebError> {
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let confirm = form.password_confirm.unwrap_or_default();
    let chosen =
        st.keys.choose_account(&mut e.enrolment, &username, &password, &confirm, e.ctx.now).await?;
    e.keep().await?;
    let AccountChosen::Refused { refusal, username } = chosen else { return Ok(to_keys_page()) };
    let tr = &e.ctx.tr;
    let (status, field, text) = match refusal {
        AccountRefusal::PasswordMismatch => {
            (StatusCode::UNPROCESSABLE_ENTITY, "password_confirm", tr.t("password-mismatch"))
        }
        AccountRefusal::Rule { field, rule } => {
            (StatusCode::UNPROCESSABLE_ENTITY, field, tr.t(rule))
        }
        AccountRefusal::UsernameTaken => (StatusCode::CONFLICT, "username", tr.t("username-taken")),
    };
    Ok(account_page(tr, &e.session.csrf, username, Some(FieldErr { field, text }), status))
}

/// The keys already set up and the kinds that can be added.
async fn keys_page(
    st: &AppState,
    e: &Enrolling,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let view = st.keys.enrolment_keys(&e.account).await?;
    let tr = &e.ctx.tr;
    let options = view
        .offered
        .into_iter()
        .enumerate()
        .map(|(i, m)| KeyOption {
            value: m.as_str(),
            label: tr.t(&format!("enrol-{m}")),
            help: tr.t(&format!("enrol-{m}-help")),
            checked: i == 0,
        })
        .collect();
    let page = pages::ActivateKeys {
        c: Chrome::new(tr.clone(), KEYS_PAGE),
        csrf: e.session.csrf.clone(),
        username: e.account.username.clone(),
        options,
        active: view.active.iter().map(|m| tr.t(&format!("key-{m}"))).collect(),
        can_finish: !view.active.is_empty(),
        from_account: e.enrolment.registration_id.is_none(),
        error,
    };
    Ok(render(status, &page))
}

pub async fn keys(State(st): State<AppState>, e: Enrolling) -> Result<Response, WebError> {
    keys_page(&st, &e, None, StatusCode::OK).await
}

pub(super) fn qr_data_uri(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(240, 240)
                .quiet_zone(true)
                .build();
            format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(svg)
            )
        }
        Err(_) => String::new(),
    }
}

fn totp_page(
    e: &Enrolling,
    key: &NewTotp,
    error: Option<FormError>,
    status: StatusCode,
) -> Response {
    let page = pages::ActivateTotp {
        c: Chrome::new(e.ctx.tr.clone(), KEYS_PAGE),
        csrf: e.session.csrf.clone(),
        qr: qr_data_uri(&key.otpauth_uri),
        secret: key.secret_base32.clone(),
        otpauth_uri: key.otpauth_uri.clone(),
        error,
    };
    render(status, &page)
}

fn sms_page(
    e: &Enrolling,
    phone: String,
    sent_to: Option<String>,
    error: Option<FormError>,
    status: StatusCode,
) -> Response {
    let page = pages::ActivateSms {
        c: Chrome::new(e.ctx.tr.clone(), KEYS_PAGE),
        csrf: e.session.csrf.clone(),
        phone,
        sent_to,
        error,
    };
    render(status, &page)
}

#[derive(serde::Deserialize)]
pub struct KeyPost {
    key: Option<String>,
}

pub async fn choose_key(
    State(st): State<AppState>,
    AdmittedForm { who: mut e, form }: AdmittedForm<Enrolling, KeyPost>,
) -> Result<Response, WebError> {
    let chosen =
        st.keys.choose_key(&mut e.enrolment, &e.account, form.key.as_deref(), e.ctx.now).await?;
    e.keep().await?;
    match chosen {
        KeyChosen::Totp(key) => Ok(totp_page(&e, &key, None, StatusCode::OK)),
        KeyChosen::Sms { phone } => Ok(sms_page(&e, phone, None, None, StatusCode::OK)),
        // The codes are made and shown on the page this redirect leads to (see `token_card`).
        KeyChosen::TokenCard => Ok(Redirect::to(TOKEN_CARD_PAGE).into_response()),
        KeyChosen::SecurityKey { challenge } => {
            let page = pages::ActivateWebauthn {
                c: Chrome::new(e.ctx.tr.clone(), KEYS_PAGE),
                csrf: e.session.csrf.clone(),
                challenge,
                error: None,
            };
            Ok(render(StatusCode::OK, &page))
        }
        KeyChosen::NotOffered => {
            let error = FormError::new(&e.ctx.tr, "enrol-choose-key");
            keys_page(&st, &e, Some(error), StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// Shows a new token card once: makes the codes of the card that choosing `token` left pending,
/// activates it and shows them. Choosing posts to `/activate/keys` and is answered with a
/// redirect here, so the card never sits at `/activate/keys` itself: going to, reloading or
/// coming back to `/activate/keys` shows the choice of the next key (SPEC §7), never a card, and
/// no reload posts the choice again. Here, a reload or a second visit finds no pending card and
/// goes on to the choice: the codes are shown once.
pub async fn token_card(
    State(st): State<AppState>,
    mut e: Enrolling,
) -> Result<Response, WebError> {
    let shown = st.keys.show_token_card(&mut e.enrolment, &e.account, e.ctx.now).await?;
    e.keep().await?;
    let CardShown::Shown(card) = shown else { return Ok(to_keys_page()) };
    let page = pages::ActivateToken {
        c: Chrome::new(e.ctx.tr.clone(), KEYS_PAGE),
        card: card.into_iter().collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(serde::Deserialize)]
pub struct ConfirmPost {
    code: Option<String>,
    phone: Option<String>,
}

pub async fn confirm_totp(
    State(st): State<AppState>,
    AdmittedForm { who: mut e, form }: AdmittedForm<Enrolling, ConfirmPost>,
) -> Result<Response, WebError> {
    let code = form.code.unwrap_or_default();
    let confirmed = st.keys.confirm_totp(&mut e.enrolment, &e.account, &code, e.ctx.now).await?;
    e.keep().await?;
    match confirmed {
        TotpConfirmed::Added | TotpConfirmed::NonePending => Ok(to_keys_page()),
        TotpConfirmed::Wrong(key) => {
            let error = FormError::new(&e.ctx.tr, "enrol-totp-wrong");
            Ok(totp_page(&e, &key, Some(error), StatusCode::UNAUTHORIZED))
        }
    }
}

/// SMS: first the number (a code is sent), then the code.
pub async fn sms(
    State(st): State<AppState>,
    AdmittedForm { who: mut e, form }: AdmittedForm<Enrolling, ConfirmPost>,
) -> Result<Response, WebError> {
    let code = form.code.unwrap_or_default();
    let phone = form.phone.unwrap_or_default();
    let (lang, now) = (e.ctx.tr.lang, e.ctx.now);
    let step = st.keys.sms_step(&mut e.enrolment, &e.account, &code, &phone, lang, now).await?;
    e.keep().await?;
    let tr = &e.ctx.tr;
    match step {
        SmsStep::Added => Ok(to_keys_page()),
        SmsStep::Sent { phone, masked } => {
            Ok(sms_page(&e, phone, Some(masked), None, StatusCode::OK))
        }
        SmsStep::Wrong { phone } => {
            let error = FormError::new(tr, "enrol-sms-wrong");
            Ok(sms_page(&e, phone, None, Some(error), StatusCode::UNAUTHORIZED))
        }
        SmsStep::InvalidNumber { phone } => {
            let error = FormError::new(tr, "office-mobile-invalid");
            Ok(sms_page(&e, phone, None, Some(error), StatusCode::UNPROCESSABLE_ENTITY))
        }
    }
}

#[derive(serde::Deserialize)]
pub struct WebauthnPost {
    credential: Option<String>,
}

pub async fn webauthn(
    State(st): State<AppState>,
    AdmittedForm { who: mut e, form }: AdmittedForm<Enrolling, WebauthnPost>,
) -> Result<Response, WebError> {
    let challenge = e.take_security_key_challenge().await?;
    let answer = form.credential.unwrap_or_default();
    let added = st
        .keys
        .finish_security_key(&mut e.enrolment, &e.account, challenge, &answer, e.ctx.now)
        .await?;
    e.keep().await?;
    match added {
        SecurityKeyAdded::Added => Ok(to_keys_page()),
        SecurityKeyAdded::Refused => {
            let error = FormError::new(&e.ctx.tr, "enrol-webauthn-failed");
            keys_page(&st, &e, Some(error), StatusCode::BAD_REQUEST).await
        }
    }
}

#[derive(serde::Deserialize)]
pub struct FinishPost {}

pub async fn finish(
    State(st): State<AppState>,
    AdmittedForm { who: mut e, .. }: AdmittedForm<Enrolling, FinishPost>,
) -> Result<Response, WebError> {
    let finished =
        st.keys.finish_enrolment(&st.offices, &e.enrolment, &e.account, e.ctx.now).await?;
    if finished == EnrolmentFinished::NeedOneKey {
        let error = FormError::new(&e.ctx.tr, "enrol-need-one-key");
        return keys_page(&st, &e, Some(error), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    e.end().await?;
    if finished == EnrolmentFinished::KeysAdded {
        return Ok(Redirect::to("/account").into_response());
    }
    let tr = &e.ctx.tr;
    Ok(pages::message(
        StatusCode::OK,
        tr,
        "activate-done-title",
        tr.t1("activate-done", "username", &e.account.username),
        Some("activated"),
        Some(Link { href: "/account".into(), label: tr.t("activate-login-now") }),
    ))
}
