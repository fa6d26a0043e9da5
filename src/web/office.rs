//! `/office`: the registration desk (SPEC §7). Operators log in through the broker's own login
//! pages with at least substantial ([`Operator`]); they see and act on their own office's
//! registrations only. The rules are `office::desk`'s; the handlers render its decisions.

use super::extract::{AdmittedForm, Operator};
use super::pages::{self, render, Chrome, FieldErr, Link};
use super::{AppState, Ctx, WebError};
use crate::i18n::Tr;
use crate::identity::Insz;
use crate::office::{DocumentType, Issued, Registered, RegistrationForm, Reissued};
use crate::office::{Registration, RegistrationStatus};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

const HOME: &str = "/office";
const REGISTER: &str = "/office/register";

/// Where an operator comes back to after logging in: the register form to itself, every other
/// office page to the list (no registration id from a URL is remembered across a login).
pub(super) fn return_to(path: &str) -> &'static str {
    if path == REGISTER {
        REGISTER
    } else {
        HOME
    }
}

fn office_message(
    tr: &Tr,
    status: StatusCode,
    text_key: &str,
    code: &'static str,
    link: Link,
) -> Response {
    pages::message(status, tr, "office-title", tr.t(text_key), Some(code), Some(link))
}

/// An operator whose login is below substantial: log in again with a stronger key.
pub(super) fn level_too_low(tr: &Tr) -> Response {
    let again = Link { href: "/office/login".into(), label: tr.t("office-login-again") };
    office_message(tr, StatusCode::FORBIDDEN, "office-level-too-low", "level-too-low", again)
}

/// A logged-in person who is not an operator.
pub(super) fn not_operator(tr: &Tr) -> Response {
    let account = Link { href: "/account".into(), label: tr.t("account-title") };
    office_message(tr, StatusCode::FORBIDDEN, "office-not-operator", "not-operator", account)
}

fn back_home(tr: &Tr) -> Link {
    Link { href: HOME.into(), label: tr.t("office-back") }
}

fn back_to(tr: &Tr, id: &str) -> Link {
    Link { href: format!("/office/registrations/{id}"), label: tr.t("office-back") }
}

/// Another office's registration, or none: the same answer.
fn not_found(tr: &Tr) -> Response {
    office_message(tr, StatusCode::NOT_FOUND, "office-not-found", "not-found", back_home(tr))
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

/// Clears the login and logs in again, coming back to `/office` (a stronger login).
pub async fn login(mut ctx: Ctx) -> Result<Response, WebError> {
    let mut s = ctx.session_or_new().await?;
    s.data.login = None;
    s.data.pending = None;
    s.data.return_to = Some(HOME.into());
    ctx.save(&mut s).await?;
    Ok(Redirect::to("/login").into_response())
}

pub async fn list(State(st): State<AppState>, op: Operator) -> Result<Response, WebError> {
    let now = op.ctx.now;
    let tr = &op.ctx.tr;
    let registrations = st.offices.live_registrations(&op.operator, now).await?;
    let rows = registrations.iter().map(|r| row(tr, r, now)).collect();
    let office = op.operator.office.clone();
    Ok(render(
        StatusCode::OK,
        &pages::OfficeList { c: Chrome::new(tr.clone(), HOME), office, rows },
    ))
}

fn form_page(
    op: &Operator,
    form: RegistrationForm,
    errors: Vec<FieldErr>,
    duplicate: Option<String>,
) -> pages::OfficeRegister {
    let tr = &op.ctx.tr;
    pages::OfficeRegister {
        c: Chrome::new(tr.clone(), REGISTER),
        csrf: op.session.csrf.clone(),
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

pub async fn register_form(op: Operator) -> Result<Response, WebError> {
    let form =
        RegistrationForm { language: Some(op.ctx.tr.lang.to_string()), ..Default::default() };
    Ok(render(StatusCode::OK, &form_page(&op, form, Vec::new(), None)))
}

/// The code to hand over on paper, and what to tell the person (in their language).
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
    AdmittedForm { who: op, form }: AdmittedForm<Operator, RegistrationForm>,
) -> Result<Response, WebError> {
    let tr = &op.ctx.tr;
    match st.offices.register_from_form(&op.operator, &form, op.ctx.now).await? {
        Registered::Issued(issued) => Ok(result_page(&st, tr, &issued)),
        Registered::Invalid(errors) => {
            let errors = errors
                .into_iter()
                .map(|e| FieldErr { field: e.field, text: tr.t(e.key) })
                .collect();
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &form_page(&op, form, errors, None)))
        }
        Registered::Duplicate { own } => {
            // Another office's registration is not shown; only that one exists.
            let link = own.map(|id| format!("/office/registrations/{id}")).unwrap_or_default();
            Ok(render(StatusCode::CONFLICT, &form_page(&op, form, Vec::new(), Some(link))))
        }
    }
}

pub async fn show(
    State(st): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let tr = &op.ctx.tr;
    let Some(reg) = st.offices.registration(&op.operator, &id).await? else {
        return Ok(not_found(tr));
    };
    let document_type = reg.document_type.replace('_', "-");
    let page = pages::OfficeRegistration {
        c: Chrome::new(tr.clone(), HOME),
        csrf: op.session.csrf.clone(),
        r: row(tr, &reg, op.ctx.now),
        birthdate: reg.birthdate.clone(),
        nationality: reg.nationality.clone(),
        document: format!(
            "{} {}",
            tr.t(&format!("office-document-{document_type}")),
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
    insz: Option<String>,
    revoke_keys: Option<String>,
}

pub async fn reissue(
    State(st): State<AppState>,
    Path(id): Path<String>,
    AdmittedForm { who: op, form }: AdmittedForm<Operator, ReissuePost>,
) -> Result<Response, WebError> {
    let tr = &op.ctx.tr;
    let revoke = form.revoke_keys.as_deref().is_some_and(|v| !v.is_empty());
    let reissued =
        st.offices.reissue(&op.operator, &id, form.insz.as_deref(), revoke, op.ctx.now).await?;
    let conflict = StatusCode::CONFLICT;
    match reissued {
        Reissued::Issued(issued) => Ok(result_page(&st, tr, &issued)),
        Reissued::InvalidInsz(rule) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(office_message(tr, status, rule, "insz-invalid", back_to(tr, &id)))
        }
        Reissued::NotFound => Ok(not_found(tr)),
        Reissued::BisMissing => Ok(office_message(
            tr,
            conflict,
            "office-bis-missing",
            "not-reissuable",
            back_to(tr, &id),
        )),
        Reissued::Voided => {
            let text = "office-not-reissuable";
            Ok(office_message(tr, conflict, text, "not-reissuable", back_to(tr, &id)))
        }
        Reissued::Duplicate => {
            Ok(office_message(tr, conflict, "office-duplicate", "duplicate", back_home(tr)))
        }
    }
}
