//! `/office`: the registration desk (SPEC §7). Operators log in through the broker's own login
//! pages with at least substantial; they see and act on their own office's registrations only.

use super::pages::{self, render, Chrome, FieldErr, Link};
use super::{AppState, Ctx, WebError};
use crate::assurance::AssuranceLevel;
use crate::i18n::Tr;
use crate::identity::Insz;
use crate::office::{DocumentType, Issued, OfficeError, RegistrationForm};
use crate::store::{Operator, Registration, RegistrationStatus};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

const HOME: &str = "/office";

/// The operator behind this browser, or the response that says why there is none.
async fn operator(
    st: &AppState,
    ctx: &mut Ctx,
    here: &str,
) -> Result<Result<Operator, Response>, WebError> {
    let tr = ctx.tr.clone();
    let login = ctx.session.as_ref().and_then(|s| s.data.login.clone());
    let Some(login) = login else {
        // Not logged in: log in first, then come back here.
        let mut s = ctx.session_or_new(st).await?;
        s.data.return_to = Some(here.to_string());
        s.data.pending = None;
        ctx.save(&st, &mut s).await?;
        let resp = Redirect::to("/login").into_response();
        ctx.session = Some(s);
        return Ok(Err(resp));
    };
    if login.acr < AssuranceLevel::Substantial {
        return Ok(Err(pages::message(
            StatusCode::FORBIDDEN,
            &tr,
            "office-title",
            tr.t("office-level-too-low"),
            Some("level-too-low"),
            Some(Link { href: "/office/login".into(), label: tr.t("office-login-again") }),
        )));
    }
    match st.store.operator(&login.person_id).await? {
        Some(op) => Ok(Ok(op)),
        None => Ok(Err(pages::message(
            StatusCode::FORBIDDEN,
            &tr,
            "office-title",
            tr.t("office-not-operator"),
            Some("not-operator"),
            Some(Link { href: "/account".into(), label: tr.t("account-title") }),
        ))),
    }
}

macro_rules! operator_or_return {
    ($st:expr, $ctx:expr, $here:expr) => {
        match operator($st, $ctx, $here).await? {
            Ok(op) => op,
            Err(resp) => return Ok(resp),
        }
    };
}

fn status_text(tr: &Tr, r: &Registration, now: i64) -> String {
    if r.expires_at <= now
        && matches!(r.status, RegistrationStatus::Issued | RegistrationStatus::Locked)
    {
        return tr.t("office-status-expired");
    }
    tr.t(&format!("office-status-{}", r.status.as_str().replace('_', "-")))
}

fn row(tr: &Tr, r: &Registration, now: i64) -> pages::RegistrationRow {
    pages::RegistrationRow {
        id: r.id.clone(),
        name: format!("{} {}", r.given_names, r.family_name),
        insz: r
            .insz
            .as_deref()
            .and_then(|i| Insz::parse(i).ok())
            .map(|i| i.masked())
            .unwrap_or_else(|| tr.t("office-bis-requested-short")),
        status: r.status.as_str(),
        status_text: status_text(tr, r, now),
        created: tr.date(r.created_at),
        expires: tr.date(r.expires_at),
    }
}

/// Another office's registration, or none: the same answer.
fn not_found(tr: &Tr) -> Response {
    pages::message(
        StatusCode::NOT_FOUND,
        tr,
        "office-title",
        tr.t("office-not-found"),
        Some("not-found"),
        Some(Link { href: HOME.into(), label: tr.t("office-back") }),
    )
}

/// Clears the login and logs in again, coming back to `/office` (a stronger login).
pub async fn login(State(st): State<AppState>, mut ctx: Ctx) -> Result<Response, WebError> {
    let mut s = ctx.session_or_new(&st).await?;
    s.data.login = None;
    s.data.pending = None;
    s.data.return_to = Some(HOME.into());
    ctx.save(&st, &mut s).await?;
    let resp = Redirect::to("/login").into_response();
    Ok(resp)
}

pub async fn list(State(st): State<AppState>, mut ctx: Ctx) -> Result<Response, WebError> {
    let op = operator_or_return!(&st, &mut ctx, HOME);
    let now = ctx.now;
    let tr = &ctx.tr;
    let rows = st
        .store
        .registrations_of_office(&op.office, 200)
        .await?
        .iter()
        .filter(|r| r.is_live(now))
        .map(|r| row(tr, r, now))
        .collect();
    let page =
        pages::OfficeList { c: Chrome::new(tr.clone(), HOME), office: op.office.clone(), rows };
    Ok(render(StatusCode::OK, &page))
}

fn form_page(
    tr: &Tr,
    csrf: String,
    form: RegistrationForm,
    errors: Vec<FieldErr>,
    duplicate: Option<String>,
) -> pages::OfficeRegister {
    pages::OfficeRegister {
        c: Chrome::new(tr.clone(), "/office/register"),
        csrf,
        document_types: DocumentType::ALL
            .iter()
            .map(|d| {
                (d.as_str(), tr.t(&format!("office-document-{}", d.as_str().replace('_', "-"))))
            })
            .collect(),
        languages: crate::i18n::Lang::ALL.iter().map(|l| l.as_str()).collect(),
        v: form,
        errors,
        duplicate,
    }
}

pub async fn register_form(State(st): State<AppState>, mut ctx: Ctx) -> Result<Response, WebError> {
    let _op = operator_or_return!(&st, &mut ctx, "/office/register");
    let csrf = ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default();
    let form = RegistrationForm { language: Some(ctx.tr.lang.to_string()), ..Default::default() };
    Ok(render(StatusCode::OK, &form_page(&ctx.tr, csrf, form, Vec::new(), None)))
}

#[derive(serde::Deserialize)]
pub struct RegisterPost {
    csrf: Option<String>,
    #[serde(flatten)]
    form: RegistrationForm,
}

fn result_page(st: &AppState, tr: &Tr, issued: &Issued) -> Response {
    let reg = &issued.registration;
    let person_tr = Tr::new(reg.lang);
    let page = pages::OfficeResult {
        c: Chrome::new(tr.clone(), HOME),
        name: format!("{} {}", reg.given_names, reg.family_name),
        code: issued.code.as_ref().map(|c| c.grouped()),
        expires: person_tr.datetime(reg.expires_at),
        expires_office: tr.datetime(reg.expires_at),
        email: reg.email.clone(),
        person_lang: person_tr.lang,
        instructions: person_tr.tn(
            "office-instructions",
            &[("email", &reg.email), ("until", &person_tr.date(reg.expires_at))],
        ),
        instructions_title: person_tr.t("office-instructions-title"),
        ehealth_note: person_tr.t("activate-ehealth-note"),
        id: reg.id.clone(),
        public_url: st.cfg.server.public_url.to_string(),
    };
    render(StatusCode::OK, &page)
}

pub async fn register(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Form(post): Form<RegisterPost>,
) -> Result<Response, WebError> {
    let op = operator_or_return!(&st, &mut ctx, "/office/register");
    ctx.require_csrf(post.csrf.as_deref())?;
    let tr = ctx.tr.clone();
    let csrf = ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default();
    let today =
        chrono::DateTime::from_timestamp(ctx.now, 0).map(|d| d.date_naive()).unwrap_or_default();
    let new = match post.form.parse(today) {
        Ok(n) => n,
        Err(errors) => {
            let errors = errors
                .into_iter()
                .map(|e| FieldErr { field: e.field, text: tr.t(e.key) })
                .collect();
            let page = form_page(&tr, csrf, post.form, errors, None);
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
    };
    match st.offices.register(&op, new).await {
        Ok(issued) => Ok(result_page(&st, &tr, &issued)),
        Err(OfficeError::Duplicate { existing }) => {
            // Another office's registration is not shown; only that one exists.
            let own = st.offices.of_office(&op, &existing).await.is_ok();
            let page = form_page(
                &tr,
                csrf,
                post.form,
                Vec::new(),
                Some(if own { format!("/office/registrations/{existing}") } else { String::new() }),
            );
            Ok(render(StatusCode::CONFLICT, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn show(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let op = operator_or_return!(&st, &mut ctx, HOME);
    let reg = match st.offices.of_office(&op, &id).await {
        Ok(r) => r,
        Err(OfficeError::NotFound) => return Ok(not_found(&ctx.tr)),
        Err(e) => return Err(e.into()),
    };
    let now = ctx.now;
    let tr = &ctx.tr;
    let page = pages::OfficeRegistration {
        c: Chrome::new(tr.clone(), HOME),
        csrf: ctx.session.as_ref().map(|s| s.csrf.clone()).unwrap_or_default(),
        r: row(tr, &reg, now),
        birthdate: reg.birthdate.clone(),
        nationality: reg.nationality.clone(),
        document: format!(
            "{} {}",
            tr.t(&format!("office-document-{}", reg.document_type.replace('_', "-"))),
            reg.document_hint
        ),
        email: reg.email.clone(),
        mobile: crate::keys::mask_phone(&reg.mobile),
        needs_bis: reg.insz.is_none(),
        reissuable: reg.status != RegistrationStatus::Voided,
        error: None,
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(serde::Deserialize)]
pub struct ReissuePost {
    csrf: Option<String>,
    insz: Option<String>,
    revoke_keys: Option<String>,
}

pub async fn reissue(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Path(id): Path<String>,
    Form(post): Form<ReissuePost>,
) -> Result<Response, WebError> {
    let op = operator_or_return!(&st, &mut ctx, HOME);
    ctx.require_csrf(post.csrf.as_deref())?;
    let tr = ctx.tr.clone();
    let insz = match post.insz.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => match Insz::parse(raw) {
            Ok(i) => Some(i),
            Err(e) => {
                return Ok(pages::message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &tr,
                    "office-title",
                    tr.t(e.message_key()),
                    Some("insz-invalid"),
                    Some(Link {
                        href: format!("/office/registrations/{id}"),
                        label: tr.t("office-back"),
                    }),
                ))
            }
        },
        None => None,
    };
    let revoke = post.revoke_keys.as_deref().is_some_and(|v| !v.is_empty());
    match st.offices.reissue(&op, &id, insz, revoke).await {
        Ok(issued) => Ok(result_page(&st, &tr, &issued)),
        Err(OfficeError::NotReissuable(why)) => Ok(pages::message(
            StatusCode::CONFLICT,
            &tr,
            "office-title",
            tr.t(if why == "bis-missing" { "office-bis-missing" } else { "office-not-reissuable" }),
            Some("not-reissuable"),
            Some(Link { href: format!("/office/registrations/{id}"), label: tr.t("office-back") }),
        )),
        Err(OfficeError::NotFound) => Ok(not_found(&tr)),
        Err(OfficeError::Duplicate { .. }) => Ok(pages::message(
            StatusCode::CONFLICT,
            &tr,
            "office-title",
            tr.t("office-duplicate"),
            Some("duplicate"),
            Some(Link { href: HOME.into(), label: tr.t("office-back") }),
        )),
        Err(e) => Err(e.into()),
    }
}
