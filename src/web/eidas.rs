//! eIDAS pages and endpoints: the country list, the AuthnRequest, the ACS, the return to the
//! browser session, and first-login linking (SPEC §6). The decisions are `eidas::login` and
//! `linking`'s; these handlers render them.

use super::login::logged_in;
use super::pages::{self, render, Chrome, CountryLink, FormError, Link};
use super::{AppState, CrossSite, CsrfForm, Ctx, WebError};
use crate::assurance::Method;
use crate::eidas::login::{Accepted, Finished, Outgoing, Refusal};
use crate::eidas::Eidas;
use crate::i18n::Tr;
use crate::linking::{BisRequested, Linked, Linking};
use crate::session::{EidasLink, Session};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use std::sync::Arc;

fn country_name(tr: &Tr, code: &str) -> String {
    let key = format!("country-{}", code.to_lowercase());
    let name = tr.t(&key);
    if name == key {
        code.to_string()
    } else {
        name
    }
}

fn node(st: &AppState) -> Result<Arc<Eidas>, WebError> {
    st.eidas.clone().ok_or(WebError::NotFound)
}

pub async fn metadata(State(st): State<AppState>) -> Result<Response, WebError> {
    let sp = node(&st)?.sp.clone();
    let now = st.clock.now_utc();
    let xml = tokio::task::spawn_blocking(move || sp.metadata_xml(now))
        .await?
        .map_err(WebError::internal)?;
    let headers = [
        (header::CONTENT_TYPE, "application/samlmetadata+xml"),
        (header::CACHE_CONTROL, "public, max-age=300"),
    ];
    Ok((headers, xml).into_response())
}

#[derive(serde::Deserialize)]
pub struct CountryQuery {
    country: Option<String>,
}

pub async fn start(
    State(st): State<AppState>,
    mut ctx: Ctx,
    Query(q): Query<CountryQuery>,
) -> Result<Response, WebError> {
    let eidas = node(&st)?;
    let tr = ctx.tr.clone();
    let Some(country) = q.country.map(|c| c.to_uppercase()).filter(|c| eidas.countries.contains(c))
    else {
        let countries = eidas
            .countries
            .iter()
            .map(|c| CountryLink { code: c.clone(), name: country_name(&tr, c) })
            .collect();
        let page = pages::Countries { c: Chrome::new(tr, "/login/eidas"), countries };
        return Ok(render(StatusCode::OK, &page));
    };
    let mut session = ctx.session_or_new().await?;
    let Some(min_level) =
        st.provider.lowest_level_for(&session.data, Method::Eidas, ctx.now).await?
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
    let outgoing = eidas.request(&session.id, &country, min_level, ctx.now).await?;
    ctx.save(&mut session).await?;
    Ok(match outgoing {
        Outgoing::Redirect { url } => Redirect::to(&url).into_response(),
        Outgoing::Post { action, saml_request, relay_state } => {
            let c = Chrome::new(tr, "/login");
            render(
                StatusCode::OK,
                &pages::SamlPost { c, action, saml_request, relay_state, country },
            )
        }
    })
}

fn refused(tr: &Tr, r: Refusal) -> WebError {
    let text = if r == Refusal::Expired { "eidas-expired" } else { "eidas-refused" };
    WebError::page(StatusCode::BAD_REQUEST, tr, "eidas-refused-title", text, r.code())
}

#[derive(serde::Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// The assertion consumer service. The node POSTs here cross-site, so the browser's session
/// cookie (SameSite=Lax) is not sent: the answer is checked and kept with the request, and the
/// browser continues at `/saml/eidas/continue`.
pub async fn acs(
    State(st): State<AppState>,
    ctx: CrossSite,
    Form(form): Form<AcsForm>,
) -> Result<Response, WebError> {
    let eidas = node(&st)?;
    match eidas.accept(form.saml_response, form.relay_state, &ctx.address, ctx.now).await? {
        Accepted::Continue { relay } => {
            Ok(Redirect::to(&format!("/saml/eidas/continue?r={relay}")).into_response())
        }
        Accepted::Refused(r) => Err(refused(&ctx.tr, r)),
    }
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
    let eidas = node(&st)?;
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
    let page = |status, title, text, code| WebError::page(status, &tr, title, text, code);
    match eidas.finish(&session.id, q.r.as_deref(), ctx.now).await? {
        Finished::LoggedIn(login) => logged_in(&st, &ctx, session, login).await,
        Finished::NeedsLink(link) => {
            session.data.eidas_link = Some(link);
            ctx.save(&mut session).await?;
            Ok(Redirect::to("/link").into_response())
        }
        Finished::Cancelled => Ok(pages::message(
            StatusCode::OK,
            &tr,
            "eidas-cancelled-title",
            tr.t("eidas-cancelled"),
            Some("cancelled"),
            Some(Link { href: "/login".into(), label: tr.t("back-to-chooser") }),
        )),
        Finished::Failed => {
            Err(page(StatusCode::BAD_REQUEST, "eidas-failed-title", "eidas-failed", "failed"))
        }
        Finished::LevelTooLow => {
            Err(page(StatusCode::FORBIDDEN, "eidas-level-title", "eidas-level", "level_too_low"))
        }
        Finished::Refused(r) => Err(refused(&tr, r)),
    }
}

fn link_page(
    tr: &Tr,
    session: &Session,
    link: &EidasLink,
    error: Option<FormError>,
    status: StatusCode,
) -> Response {
    let birthdate = chrono::NaiveDate::parse_from_str(&link.identity.birthdate, "%Y-%m-%d")
        .map(|d| d.format(if tr.lang == crate::i18n::Lang::De { "%d.%m.%Y" } else { "%d/%m/%Y" }))
        .map(|d| d.to_string())
        .unwrap_or_else(|_| link.identity.birthdate.clone());
    let page = pages::Link2 {
        c: Chrome::new(tr.clone(), "/link"),
        csrf: session.csrf.clone(),
        family_name: link.identity.family_name.clone(),
        given_name: link.identity.given_name.clone(),
        birthdate,
        error,
    };
    render(status, &page)
}

pub async fn link_form(ctx: Ctx) -> Result<Response, WebError> {
    let Some(session) = &ctx.session else { return Ok(Redirect::to("/login").into_response()) };
    match Linking::live(session.data.eidas_link.as_ref(), ctx.now) {
        Some(link) => Ok(link_page(&ctx.tr, session, &link, None, StatusCode::OK)),
        None => Ok(Redirect::to("/login").into_response()),
    }
}

#[derive(serde::Deserialize)]
pub struct LinkForm {
    bis: Option<String>,
    email: Option<String>,
}

fn locked(tr: &Tr, until: i64) -> FormError {
    FormError { code: "locked", text: tr.t1("link-locked", "until", &tr.datetime(until)) }
}

pub async fn link_submit(
    State(st): State<AppState>,
    CsrfForm { ctx, mut session, form }: CsrfForm<LinkForm>,
) -> Result<Response, WebError> {
    let Some(link) = Linking::live(session.data.eidas_link.as_ref(), ctx.now) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let tr = &ctx.tr;
    let bis = form.bis.unwrap_or_default();
    let (status, error) = match st.linking.link(&link, &bis, &ctx.address, ctx.now).await? {
        Linked::Linked(login) => {
            session.data.eidas_link = None;
            return logged_in(&st, &ctx, session, login).await;
        }
        Linked::InvalidNumber(key) => {
            (StatusCode::BAD_REQUEST, FormError { code: key, text: tr.t(key) })
        }
        Linked::NoMatch { locked_until: None } => {
            (StatusCode::UNAUTHORIZED, FormError::new(tr, "link-no-match"))
        }
        Linked::NoMatch { locked_until: Some(until) } | Linked::Locked { until } => {
            (StatusCode::TOO_MANY_REQUESTS, locked(tr, until))
        }
        Linked::Unavailable => {
            let code = "unavailable";
            return Err(WebError::page(
                StatusCode::SERVICE_UNAVAILABLE,
                tr,
                "error-title",
                "bis-unavailable",
                code,
            ));
        }
        Linked::AlreadyLinked => {
            let code = "already_linked";
            return Err(WebError::page(
                StatusCode::CONFLICT,
                tr,
                "error-title",
                "link-already",
                code,
            ));
        }
    };
    Ok(link_page(tr, &session, &link, Some(error), status))
}

/// "I have no Bis number": the request is filed and the person is told what happens next.
pub async fn request_bis(
    State(st): State<AppState>,
    CsrfForm { ctx, mut session, form }: CsrfForm<LinkForm>,
) -> Result<Response, WebError> {
    let Some(link) = Linking::live(session.data.eidas_link.as_ref(), ctx.now) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let tr = &ctx.tr;
    let email = form.email.unwrap_or_default();
    match st.linking.request_bis(&link, &email, tr, ctx.now).await? {
        BisRequested::InvalidEmail => {
            let e = FormError::new(tr, "link-email-invalid");
            Ok(link_page(tr, &session, &link, Some(e), StatusCode::BAD_REQUEST))
        }
        BisRequested::Filed { email } => {
            session.data.eidas_link = None;
            ctx.save(&mut session).await?;
            let text = tr.t1("bis-requested", "email", &email);
            Ok(pages::message(StatusCode::OK, tr, "bis-requested-title", text, None, None))
        }
    }
}
