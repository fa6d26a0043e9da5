//! `/activate/…`: a person activates their digital key with the paper code and the mailed link
//! (SPEC §7), then chooses a username and password and sets up one or more keys. The same key
//! pages serve `/account` when a logged-in person adds a key.

use super::pages::{self, render, Chrome, FormError, KeyOption, Link};
use super::{AppState, Ctx, WebError};
use crate::assurance::Method;
use crate::audit::{Event, Kind, Outcome};
use crate::i18n::Tr;
use crate::keys::{self, KeyError};
use crate::office::Opening;
use crate::session::{Enrolment, Session};
use crate::store::Account;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine;

/// An enrolment must be finished within an hour of its start.
const ENROL_TTL_S: i64 = 3600;

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

/// The enrolment under way in this session, if it is still fresh.
fn enrolment(ctx: &Ctx, session: Option<&Session>) -> Option<Enrolment> {
    session.and_then(|s| s.data.enrol.clone()).filter(|e| ctx.now - e.at <= ENROL_TTL_S)
}

fn no_enrolment(tr: &Tr) -> Response {
    link_problem(tr, StatusCode::FORBIDDEN, "activate-no-enrolment", "no-enrolment")
}

async fn audit(st: &AppState, now: i64, outcome: Outcome, person: &str, method: Option<Method>) {
    let mut e = Event::new(Kind::KeyChange, outcome).person(person);
    if let Some(m) = method {
        e = e.factor(m);
    }
    st.keys.record(e, now).await;
}

pub async fn code_form(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let tr = ctx.tr.clone();
    let reg = st.offices.by_link(&token).await?;
    let now = ctx.now;
    let Some(reg) = reg else {
        return Ok(link_problem(&tr, StatusCode::NOT_FOUND, "activate-link-unusable", "unusable"));
    };
    use crate::store::RegistrationStatus as S;
    match reg.status {
        S::Issued if reg.expires_at > now => {}
        S::Issued => {
            return Ok(link_problem(&tr, StatusCode::GONE, "activate-link-expired", "expired"))
        }
        S::Locked => {
            return Ok(link_problem(&tr, StatusCode::FORBIDDEN, "activate-link-locked", "locked"))
        }
        _ => return Ok(link_problem(&tr, StatusCode::GONE, "activate-link-unusable", "unusable")),
    }
    let session = ctx.session_or_new(&st).await?;
    let page = pages::ActivateCode {
        c: Chrome::new(tr.clone(), &format!("/activate/{token}")),
        csrf: session.csrf.clone(),
        token,
        expires: tr.date(reg.expires_at),
        error: None,
    };
    let resp = render(StatusCode::OK, &page);
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct CodePost {
    csrf: Option<String>,
    code: Option<String>,
}

pub async fn code(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Path(token): Path<String>,
    Form(post): Form<CodePost>,
) -> Result<Response, WebError> {
    ctx.require_csrf(post.csrf.as_deref())?;
    let tr = ctx.tr.clone();
    let code = post.code.unwrap_or_default();
    if code.trim().is_empty() {
        // A link alone opens nothing: the paper code is required.
        let reg = st.offices.by_link(&token).await?;
        let expires = reg.map(|r| tr.date(r.expires_at)).unwrap_or_default();
        let page = pages::ActivateCode {
            c: Chrome::new(tr.clone(), &format!("/activate/{token}")),
            csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
            token,
            expires,
            error: Some(FormError::new(&tr, "activate-code-required")),
        };
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    match st.offices.open(&token, &code).await? {
        Opening::Opened(reg) => {
            let Some(mut session) = ctx.session.take() else {
                return Err(WebError::internal("no session"));
            };
            let Some(person_id) = reg.person_id.clone() else {
                return Err(WebError::internal("an issued registration without a person"));
            };
            session.data.enrol = Some(Enrolment {
                registration_id: Some(reg.id.clone()),
                person_id,
                account_id: None,
                at: ctx.now,
                ..Default::default()
            });
            session.data.lang.get_or_insert(reg.lang);
            ctx.renew(&st, &mut session).await?;
            ctx.save(&st, &mut session).await?;
            let resp = Redirect::to("/activate/account").into_response();
            Ok(resp)
        }
        Opening::Wrong { left } => {
            let reg = st.offices.by_link(&token).await?;
            let page = pages::ActivateCode {
                c: Chrome::new(tr.clone(), &format!("/activate/{token}")),
                csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
                token,
                expires: reg.map(|r| tr.date(r.expires_at)).unwrap_or_default(),
                error: Some(FormError {
                    code: "wrong-code",
                    text: tr.t1("activate-code-wrong", "left", &left.to_string()),
                }),
            };
            Ok(render(StatusCode::UNAUTHORIZED, &page))
        }
        Opening::Locked => {
            Ok(link_problem(&tr, StatusCode::FORBIDDEN, "activate-link-locked", "locked"))
        }
        Opening::Expired => {
            Ok(link_problem(&tr, StatusCode::GONE, "activate-link-expired", "expired"))
        }
        Opening::Unusable => {
            Ok(link_problem(&tr, StatusCode::GONE, "activate-link-unusable", "unusable"))
        }
    }
}

async fn account_page(
    st: &AppState,
    ctx: &Ctx,
    enrol: &Enrolment,
    error: Option<(&'static str, String)>,
    username: String,
    status: StatusCode,
) -> Result<Response, WebError> {
    let existing = st.store.account_by_person(&enrol.person_id).await?;
    let page = pages::ActivateAccount {
        c: Chrome::new(ctx.tr.clone(), "/activate/account"),
        csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
        username: if username.is_empty() {
            existing.map(|a| a.username).unwrap_or_default()
        } else {
            username
        },
        error: error.map(|(field, text)| pages::FieldErr { field, text }),
    };
    Ok(render(status, &page))
}

pub async fn account_form(State(st): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let Some(enrol) = enrolment(&ctx, ctx.session.as_ref()) else {
        return Ok(no_enrolment(&ctx.tr));
    };
    if enrol.account_id.is_some() {
        return Ok(Redirect::to("/activate/keys").into_response());
    }
    account_page(&st, &ctx, &enrol, None, String::new(), StatusCode::OK).await
}

#[derive(serde::Deserialize)]
pub struct AccountPost {
    csrf: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
}

pub async fn account(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Form(post): Form<AccountPost>,
) -> Result<Response, WebError> {
    ctx.require_csrf(post.csrf.as_deref())?;
    let tr = ctx.tr.clone();
    let Some(mut enrol) = enrolment(&ctx, ctx.session.as_ref()) else {
        return Ok(no_enrolment(&tr));
    };
    if enrol.account_id.is_some() {
        return Ok(Redirect::to("/activate/keys").into_response());
    }
    let username = post.username.unwrap_or_default();
    let password = post.password.unwrap_or_default();
    if password != post.password_confirm.unwrap_or_default() {
        let e = Some(("password_confirm", tr.t("password-mismatch")));
        return account_page(&st, &ctx, &enrol, e, username, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    let now = ctx.now;
    let existing = st.store.account_by_person(&enrol.person_id).await?;
    let result = match &existing {
        // A new activation (e.g. after a lost device) sets a new username and password.
        Some(acct) => keys::reset_account(&st.store, &st.cfg.login, acct, &username, &password)
            .await
            .map(|_| acct.id.clone()),
        None => keys::create_account(
            &st.store,
            &st.cfg.login,
            &enrol.person_id,
            &username,
            &password,
            now,
        )
        .await
        .map(|a| a.id),
    };
    let account_id = match result {
        Ok(id) => id,
        Err(KeyError::Invalid(key)) => {
            let field = if key.starts_with("username") { "username" } else { "password" };
            let e = Some((field, tr.t(key)));
            return account_page(&st, &ctx, &enrol, e, username, StatusCode::UNPROCESSABLE_ENTITY)
                .await;
        }
        Err(KeyError::Store(crate::store::StoreError::Conflict(_))) => {
            let e = Some(("username", tr.t("username-taken")));
            return account_page(&st, &ctx, &enrol, e, username, StatusCode::CONFLICT).await;
        }
        Err(e) => return Err(e.into()),
    };
    audit(&st, ctx.now, Outcome::AccountSet, &enrol.person_id, None).await;
    enrol.account_id = Some(account_id);
    let Some(mut session) = ctx.session.take() else {
        return Err(WebError::internal("no session"));
    };
    session.data.enrol = Some(enrol);
    ctx.save(&st, &mut session).await?;
    Ok(Redirect::to("/activate/keys").into_response())
}

/// The account being enrolled, or the page that says there is none.
async fn enrol_account(
    st: &AppState,
    ctx: &Ctx,
) -> Result<Result<(Enrolment, Account), Response>, WebError> {
    let Some(enrol) = enrolment(ctx, ctx.session.as_ref()) else {
        return Ok(Err(no_enrolment(&ctx.tr)));
    };
    let Some(account_id) = &enrol.account_id else {
        return Ok(Err(Redirect::to("/activate/account").into_response()));
    };
    match st.store.account(account_id).await? {
        Some(a) if a.person_id == enrol.person_id => Ok(Ok((enrol, a))),
        _ => Ok(Err(no_enrolment(&ctx.tr))),
    }
}

macro_rules! enrol_or_return {
    ($st:expr, $ctx:expr) => {
        match enrol_account($st, $ctx).await? {
            Ok(v) => v,
            Err(resp) => return Ok(resp),
        }
    };
}

/// Key kinds a person can set up here, strongest first.
fn kinds(st: &AppState) -> Vec<Method> {
    Method::KEY_FACTORS
        .into_iter()
        .filter(|m| *m != Method::Webauthn || st.keys.passkeys.is_some())
        .collect()
}

async fn keys_page(
    st: &AppState,
    ctx: &Ctx,
    enrol: &Enrolment,
    account: &Account,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let tr = &ctx.tr;
    let active = st.keys.active_methods(&account.id).await?;
    let options = kinds(st)
        .into_iter()
        .enumerate()
        .map(|(i, m)| KeyOption {
            value: m.as_str(),
            label: tr.t(&format!("enrol-{}", m.as_str())),
            help: tr.t(&format!("enrol-{}-help", m.as_str())),
            checked: i == 0,
        })
        .collect();
    let page = pages::ActivateKeys {
        c: Chrome::new(tr.clone(), "/activate/keys"),
        csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
        username: account.username.clone(),
        options,
        active: active.iter().map(|m| tr.t(&format!("key-{}", m.as_str()))).collect(),
        can_finish: !active.is_empty(),
        from_account: enrol.registration_id.is_none(),
        error,
    };
    Ok(render(status, &page))
}

pub async fn keys(State(st): State<AppState>, ctx: Ctx) -> Result<Response, WebError> {
    let (enrol, account) = enrol_or_return!(&st, &ctx);
    keys_page(&st, &ctx, &enrol, &account, None, StatusCode::OK).await
}

#[derive(serde::Deserialize)]
pub struct KeyPost {
    csrf: Option<String>,
    key: Option<String>,
}

fn qr_data_uri(text: &str) -> String {
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

async fn save_enrol(st: &AppState, ctx: &mut Ctx, enrol: Enrolment) -> Result<(), WebError> {
    let Some(mut session) = ctx.session.take() else {
        return Err(WebError::internal("no session"));
    };
    session.data.enrol = Some(enrol);
    ctx.save(&st, &mut session).await?;
    ctx.session = Some(session);
    Ok(())
}

async fn totp_page(
    st: &AppState,
    ctx: &Ctx,
    account: &Account,
    key_id: &str,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let key = st.store.keys_of_account(&account.id).await?.into_iter().find(|k| k.id == key_id);
    let Some(enc) = key.and_then(|k| k.secret_enc) else {
        return Ok(Redirect::to("/activate/keys").into_response());
    };
    let secret = st.master.decrypt(&format!("totp:{key_id}"), &enc).map_err(KeyError::from)?;
    let uri = keys::totp::otpauth_uri(&secret, &account.username);
    let page = pages::ActivateTotp {
        c: Chrome::new(ctx.tr.clone(), "/activate/keys"),
        csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
        qr: qr_data_uri(&uri),
        secret: keys::totp::secret_base32(&secret),
        otpauth_uri: uri,
        error,
    };
    Ok(render(status, &page))
}

async fn sms_page(
    ctx: &Ctx,
    phone: String,
    sent_to: Option<String>,
    error: Option<FormError>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let page = pages::ActivateSms {
        c: Chrome::new(ctx.tr.clone(), "/activate/keys"),
        csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
        phone,
        sent_to,
        error,
    };
    Ok(render(status, &page))
}

pub async fn choose_key(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Form(post): Form<KeyPost>,
) -> Result<Response, WebError> {
    ctx.require_csrf(post.csrf.as_deref())?;
    let (mut enrol, account) = enrol_or_return!(&st, &ctx);
    let tr = ctx.tr.clone();
    let now = ctx.now;
    let kind = post.key.as_deref().and_then(Method::parse).filter(|m| kinds(&st).contains(m));
    match kind {
        Some(Method::Totp) => {
            // Shown now, active only after a first valid code (never stored as active unconfirmed).
            let new = keys::add_totp(&st.store, &st.master, &account, "pending", now).await?;
            enrol.totp_key = Some(new.key_id.clone());
            save_enrol(&st, &mut ctx, enrol).await?;
            totp_page(&st, &ctx, &account, &new.key_id, None, StatusCode::OK).await
        }
        Some(Method::Sms) => {
            let phone = match &enrol.registration_id {
                Some(id) => st.store.registration(id).await?.map(|r| r.mobile),
                None => None,
            };
            sms_page(&ctx, phone.unwrap_or_default(), None, None, StatusCode::OK).await
        }
        Some(Method::Token) => {
            // The codes are made and shown on the page this redirect leads to (see `token_card`).
            keys::start_token_card(&st.store, &account, now).await?;
            Ok(Redirect::to(TOKEN_CARD_PATH).into_response())
        }
        Some(Method::Webauthn) => {
            let Some(pk) = &st.keys.passkeys else {
                return keys_page(&st, &ctx, &enrol, &account, None, StatusCode::BAD_REQUEST).await;
            };
            let (challenge, state) =
                pk.start_registration(&st.store, &account).await.map_err(WebError::internal)?;
            enrol.webauthn = Some(state);
            save_enrol(&st, &mut ctx, enrol).await?;
            let page = pages::ActivateWebauthn {
                c: Chrome::new(tr.clone(), "/activate/keys"),
                csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
                challenge: serde_json::to_string(&challenge).unwrap_or_default(),
                error: None,
            };
            Ok(render(StatusCode::OK, &page))
        }
        _ => {
            let e = FormError::new(&tr, "enrol-choose-key");
            keys_page(&st, &ctx, &enrol, &account, Some(e), StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// Where a new token card is shown.
const TOKEN_CARD_PATH: &str = "/activate/keys/token";

/// Shows a new token card once: makes the codes of the card that choosing `token` left pending,
/// activates it and shows them. Choosing posts to `/activate/keys` and is answered with a
/// redirect here, so the card never sits at `/activate/keys` itself: going to, reloading or
/// coming back to `/activate/keys` shows the choice of the next key (SPEC §7), never a card, and
/// no reload posts the choice again. Here, a reload or a second visit finds no pending card and
/// goes on to the choice: the codes are shown once.
pub async fn token_card(State(st): State<AppState>, mut ctx: Ctx) -> Result<Response, WebError> {
    let (mut enrol, account) = enrol_or_return!(&st, &ctx);
    let Some(key_id) = keys::pending_token_card(&st.store, &account.id).await? else {
        return Ok(Redirect::to("/activate/keys").into_response());
    };
    let Some(card) = keys::issue_token_card(&st.store, &st.master, &account.id, &key_id).await?
    else {
        return Ok(Redirect::to("/activate/keys").into_response());
    };
    audit(&st, ctx.now, Outcome::Added, &enrol.person_id, Some(Method::Token)).await;
    enrol.added.push("token".into());
    save_enrol(&st, &mut ctx, enrol).await?;
    let page = pages::ActivateToken {
        c: Chrome::new(ctx.tr.clone(), "/activate/keys"),
        card: card.into_iter().collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(serde::Deserialize)]
pub struct ConfirmPost {
    csrf: Option<String>,
    code: Option<String>,
    phone: Option<String>,
}

pub async fn confirm_totp(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Form(post): Form<ConfirmPost>,
) -> Result<Response, WebError> {
    ctx.require_csrf(post.csrf.as_deref())?;
    let (mut enrol, account) = enrol_or_return!(&st, &ctx);
    let tr = ctx.tr.clone();
    let Some(key_id) = enrol.totp_key.clone() else {
        return Ok(Redirect::to("/activate/keys").into_response());
    };
    let code = post.code.unwrap_or_default();
    let ok =
        keys::confirm_totp(&st.store, &st.master, &account.id, &key_id, &code, ctx.now).await?;
    if !ok {
        let e = FormError::new(&tr, "enrol-totp-wrong");
        return totp_page(&st, &ctx, &account, &key_id, Some(e), StatusCode::UNAUTHORIZED).await;
    }
    audit(&st, ctx.now, Outcome::Added, &enrol.person_id, Some(Method::Totp)).await;
    enrol.totp_key = None;
    enrol.added.push("totp".into());
    save_enrol(&st, &mut ctx, enrol).await?;
    Ok(Redirect::to("/activate/keys").into_response())
}

/// SMS: first the number (a code is sent), then the code.
pub async fn sms(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Form(post): Form<ConfirmPost>,
) -> Result<Response, WebError> {
    ctx.require_csrf(post.csrf.as_deref())?;
    let (mut enrol, account) = enrol_or_return!(&st, &ctx);
    let tr = ctx.tr.clone();
    let now = ctx.now;
    let code = post.code.unwrap_or_default();
    if let (Some(ch), false) = (enrol.sms_challenge.clone(), code.trim().is_empty()) {
        if keys::confirm_sms(&st.store, &account.id, &ch, code.trim(), now).await? {
            audit(&st, ctx.now, Outcome::Added, &enrol.person_id, Some(Method::Sms)).await;
            enrol.sms_challenge = None;
            enrol.sms_phone = None;
            enrol.added.push("sms".into());
            save_enrol(&st, &mut ctx, enrol).await?;
            return Ok(Redirect::to("/activate/keys").into_response());
        }
        // One code, one try: a wrong code means a new one must be sent.
        let _ = st.store.use_challenge(&ch, now).await?;
        let phone = enrol.sms_phone.clone().unwrap_or_default();
        enrol.sms_challenge = None;
        save_enrol(&st, &mut ctx, enrol).await?;
        let e = FormError::new(&tr, "enrol-sms-wrong");
        return sms_page(&ctx, phone, None, Some(e), StatusCode::UNAUTHORIZED).await;
    }
    let phone = post.phone.unwrap_or_default();
    match keys::start_sms_enrolment(&st.store, &account, &phone, tr.lang, now).await {
        Ok((_key_id, challenge)) => {
            enrol.sms_challenge = Some(challenge);
            enrol.sms_phone = Some(phone.clone());
            save_enrol(&st, &mut ctx, enrol).await?;
            sms_page(&ctx, phone.clone(), Some(keys::mask_phone(&phone)), None, StatusCode::OK)
                .await
        }
        Err(KeyError::Invalid(_)) => {
            let e = FormError::new(&tr, "office-mobile-invalid");
            sms_page(&ctx, phone, None, Some(e), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct WebauthnPost {
    csrf: Option<String>,
    credential: Option<String>,
}

pub async fn webauthn(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Form(post): Form<WebauthnPost>,
) -> Result<Response, WebError> {
    ctx.require_csrf(post.csrf.as_deref())?;
    let (mut enrol, account) = enrol_or_return!(&st, &ctx);
    let tr = ctx.tr.clone();
    // The challenge is used once, whatever the answer.
    let state = enrol.webauthn.take();
    save_enrol(&st, &mut ctx, enrol.clone()).await?;
    let (Some(pk), Some(state)) = (&st.keys.passkeys, state) else {
        let e = FormError::new(&tr, "enrol-webauthn-failed");
        return keys_page(&st, &ctx, &enrol, &account, Some(e), StatusCode::BAD_REQUEST).await;
    };
    let answer = post.credential.unwrap_or_default();
    match pk.finish_registration(&st.store, &account, &state, &answer, ctx.now).await {
        Ok(_) => {
            audit(&st, ctx.now, Outcome::Added, &enrol.person_id, Some(Method::Webauthn)).await;
            enrol.added.push("webauthn".into());
            save_enrol(&st, &mut ctx, enrol).await?;
            Ok(Redirect::to("/activate/keys").into_response())
        }
        Err(keys::webauthn::WebauthnError::Store(e)) => Err(e.into()),
        Err(e) => {
            tracing::info!(error = %e, "security key registration refused");
            let e = FormError::new(&tr, "enrol-webauthn-failed");
            keys_page(&st, &ctx, &enrol, &account, Some(e), StatusCode::BAD_REQUEST).await
        }
    }
}

#[derive(serde::Deserialize)]
pub struct FinishPost {
    csrf: Option<String>,
}

pub async fn finish(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Form(post): Form<FinishPost>,
) -> Result<Response, WebError> {
    ctx.require_csrf(post.csrf.as_deref())?;
    let (enrol, account) = enrol_or_return!(&st, &ctx);
    let tr = ctx.tr.clone();
    if st.keys.active_methods(&account.id).await?.is_empty() {
        let e = FormError::new(&tr, "enrol-need-one-key");
        return keys_page(&st, &ctx, &enrol, &account, Some(e), StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    if let Some(reg) = &enrol.registration_id {
        st.offices.finish(reg, &enrol.person_id).await?;
    }
    let Some(mut session) = ctx.session.take() else {
        return Err(WebError::internal("no session"));
    };
    session.data.enrol = None;
    ctx.save(&st, &mut session).await?;
    if enrol.registration_id.is_none() {
        return Ok(Redirect::to("/account").into_response());
    }
    Ok(pages::message(
        StatusCode::OK,
        &tr,
        "activate-done-title",
        tr.t1("activate-done", "username", &account.username),
        Some("activated"),
        Some(Link { href: "/account".into(), label: tr.t("activate-login-now") }),
    ))
}
