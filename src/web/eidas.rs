//! eIDAS pages and endpoints: the country list, the AuthnRequest, the ACS, the return to the
//! browser session, and first-login linking (SPEC §6).

use super::login::complete_login;
use super::pages::{self, render, Chrome, CountryLink, FormError, Link};
use super::{AppState, WebError};
use crate::assurance::{AssuranceLevel, Method};
use crate::eidas::Answer;
use crate::identity::Insz;
use crate::linking::{self, ForeignIdentity};
use crate::session::{EidasLink, Login, Session};
use crate::store::{AuditEvent, OutboxMessage, Person};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use std::net::SocketAddr;

/// Tries of the Bis field per eIDAS identity before linking locks for a day.
const LINK_MAX_FAILURES: i64 = 5;
const LINK_WINDOW_S: i64 = 86_400;

fn country_name(tr: &crate::i18n::Tr, code: &str) -> String {
    let key = format!("country-{}", code.to_lowercase());
    let name = tr.t(&key);
    if name == key {
        code.to_string()
    } else {
        name
    }
}

pub async fn metadata(State(st): State<AppState>) -> Result<Response, WebError> {
    let Some(eidas) = &st.eidas else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    let sp = eidas.sp.clone();
    let xml = tokio::task::spawn_blocking(move || sp.metadata_xml())
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/samlmetadata+xml"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        xml,
    )
        .into_response())
}

#[derive(serde::Deserialize)]
pub struct CountryQuery {
    country: Option<String>,
}

/// The lowest eIDAS level the pending request's policy accepts (low without a request).
async fn eidas_min_level(
    st: &AppState,
    session: &Session,
) -> Result<Option<AssuranceLevel>, WebError> {
    let Some(id) = &session.data.pending else { return Ok(Some(AssuranceLevel::Low)) };
    let Some(req) =
        st.provider.load_pending(id).await.map_err(|e| WebError::Internal(format!("{e:?}")))?
    else {
        return Ok(Some(AssuranceLevel::Low));
    };
    let offered: Vec<_> = st
        .provider
        .offered(req.asked_level)
        .into_iter()
        .filter(|c| c.method == Method::Eidas)
        .collect();
    let decision = st.provider.policies.decide(
        &req.policy,
        &req.client_id,
        &crate::policy::Subject::anyone(),
        None,
        &offered,
        st.clock.now(),
    )?;
    Ok(match decision {
        crate::policy::Decision::StepUp { methods, .. } => methods.iter().map(|c| c.level).min(),
        _ => None,
    })
}

pub async fn start(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CountryQuery>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let Some(eidas) = st.eidas.clone() else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    let Some(country) = q.country.map(|c| c.to_uppercase()).filter(|c| eidas.countries.contains(c))
    else {
        let page = pages::Countries {
            c: Chrome::new(tr.clone(), "/login/eidas"),
            countries: eidas
                .countries
                .iter()
                .map(|c| CountryLink { code: c.clone(), name: country_name(&tr, c) })
                .collect(),
        };
        return Ok(render(StatusCode::OK, &page));
    };
    let (mut session, is_new) = st.session_or_new(&mut ctx).await?;
    let Some(min_level) = eidas_min_level(&st, &session).await? else {
        return Err(WebError::page(
            StatusCode::FORBIDDEN,
            &tr,
            "error-title",
            "policy-not-allowed",
            "not-allowed",
        ));
    };
    let (spec, relay) =
        eidas.start(&st.store, &session.id, &country, min_level, st.clock.now()).await?;
    st.sessions.save(&mut session).await?;
    let sp = eidas.sp.clone();
    let mut resp = if eidas.post_binding {
        let (action, saml_request) = tokio::task::spawn_blocking(move || sp.post_request(&spec))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map_err(|e| WebError::Internal(e.to_string()))?;
        let page = pages::SamlPost {
            c: Chrome::new(tr.clone(), "/login"),
            action,
            saml_request,
            relay_state: relay,
            country,
        };
        render(StatusCode::OK, &page)
    } else {
        let url = tokio::task::spawn_blocking(move || sp.redirect_request(&spec, &relay))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
            .map_err(|e| WebError::Internal(e.to_string()))?;
        Redirect::to(&url).into_response()
    };
    if is_new {
        resp.headers_mut().append(header::SET_COOKIE, st.session_cookie(&session));
    }
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

fn refused(tr: &crate::i18n::Tr, code: &'static str) -> WebError {
    WebError::page(StatusCode::BAD_REQUEST, tr, "eidas-refused-title", "eidas-refused", code)
}

/// The assertion consumer service. The node POSTs here cross-site, so the browser's session
/// cookie (SameSite=Lax) is not sent: the answer is checked and kept with the request, and the
/// browser continues at `/saml/eidas/continue`, where its session must be the one that sent the
/// request.
pub async fn acs(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<AcsForm>,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let Some(eidas) = st.eidas.clone() else { return Ok(StatusCode::NOT_FOUND.into_response()) };
    let now = st.clock.now();
    let (Some(b64), Some(relay)) = (form.saml_response, form.relay_state) else {
        return Err(refused(&tr, "unsolicited"));
    };
    let Some(request) = st.store.saml_request_by_relay(&relay).await? else {
        return Err(refused(&tr, "unsolicited"));
    };
    if request.answered_at.is_some() {
        return Err(refused(&tr, "replayed"));
    }
    if request.expires_at <= now {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "eidas-refused-title",
            "eidas-expired",
            "expired",
        ));
    }
    let min_level = AssuranceLevel::parse(&request.min_level).unwrap_or(AssuranceLevel::High);
    let sp = eidas.sp.clone();
    let expected = vec![request.id.clone()];
    let clock_now = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
    let result =
        tokio::task::spawn_blocking(move || sp.validate_response(&b64, &expected, clock_now))
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?;
    let (answer, assertion) = match eidas.answer(result, min_level) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "eIDAS response refused");
            st.provider
                .audit(AuditEvent {
                    kind: "login".into(),
                    outcome: "failed".into(),
                    method: Some("eidas".into()),
                    address: Some(ctx.address.clone()),
                    detail: serde_json::json!({ "reason": "invalid_response" }).to_string(),
                    ..Default::default()
                })
                .await;
            return Err(refused(&tr, "invalid"));
        }
    };
    if let Some(a) = &assertion {
        // An assertion is accepted once, on every replica.
        let ttl = a.not_on_or_after.timestamp().max(now) + 300;
        if !st.store.see_once(&format!("saml-assertion:{}", a.assertion_id), ttl).await? {
            return Err(refused(&tr, "replayed"));
        }
    }
    let json = serde_json::to_string(&answer).map_err(|e| WebError::Internal(e.to_string()))?;
    if !st.store.answer_saml_request(&request.id, &json, now).await? {
        return Err(refused(&tr, "replayed"));
    }
    Ok(Redirect::to(&format!("/saml/eidas/continue?r={relay}")).into_response())
}

#[derive(serde::Deserialize)]
pub struct ContinueQuery {
    r: Option<String>,
}

pub async fn continue_login(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<ContinueQuery>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let now = st.clock.now();
    let Some(mut session) = ctx.session.take() else {
        return Err(WebError::page(
            StatusCode::BAD_REQUEST,
            &tr,
            "session-expired-title",
            "session-expired",
            "session",
        ));
    };
    let request = match &q.r {
        Some(r) => st.store.saml_request_by_relay(r).await?,
        None => None,
    };
    // Only the browser session that sent the request may use its answer.
    let Some(request) = request.filter(|r| {
        crate::crypto::ct_eq(
            r.session_ref.as_bytes(),
            crate::crypto::token_hash(&session.id).as_bytes(),
        )
    }) else {
        return Err(refused(&tr, "other-session"));
    };
    if !st.store.consume_saml_request(&request.id, now).await? {
        return Err(refused(&tr, "replayed"));
    }
    let answer: Answer = serde_json::from_str(request.result.as_deref().unwrap_or("null"))
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let (identity, level) = match answer {
        Answer::Ok { identity, level } => (identity, level),
        Answer::Cancelled => {
            return Ok(pages::message(
                StatusCode::OK,
                &tr,
                "eidas-cancelled-title",
                tr.t("eidas-cancelled"),
                Some("cancelled"),
                Some(Link { href: "/login".into(), label: tr.t("back-to-chooser") }),
            ))
        }
        Answer::Failed => {
            return Err(WebError::page(
                StatusCode::BAD_REQUEST,
                &tr,
                "eidas-failed-title",
                "eidas-failed",
                "failed",
            ))
        }
        Answer::LevelTooLow => {
            return Err(WebError::page(
                StatusCode::FORBIDDEN,
                &tr,
                "eidas-level-title",
                "eidas-level",
                "level_too_low",
            ))
        }
    };
    match st.store.identity_person(linking::EIDAS, &identity.person_identifier).await? {
        Some(person_id) => {
            let login = eidas_login(&person_id, &identity, level, now);
            complete_login(&st, &ctx, session, login).await
        }
        None => {
            session.data.eidas_link = Some(EidasLink { identity, level, at: now });
            st.sessions.save(&mut session).await?;
            Ok(Redirect::to("/link").into_response())
        }
    }
}

fn eidas_login(
    person_id: &str,
    identity: &ForeignIdentity,
    level: AssuranceLevel,
    now: i64,
) -> Login {
    Login {
        person_id: person_id.to_string(),
        auth_time: now,
        acr: level,
        amr: vec!["eidas".into()],
        method: Method::Eidas,
        eidas_person_identifier: Some(identity.person_identifier.clone()),
    }
}

fn link_page(
    tr: &crate::i18n::Tr,
    session: &Session,
    link: &EidasLink,
    error: Option<FormError>,
    status: StatusCode,
) -> Response {
    let birthdate = chrono::NaiveDate::parse_from_str(&link.identity.birthdate, "%Y-%m-%d")
        .map(|d| match tr.lang {
            "de" => d.format("%d.%m.%Y").to_string(),
            _ => d.format("%d/%m/%Y").to_string(),
        })
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

/// The link step must follow its eIDAS login within the request's life.
fn live_link(st: &AppState, session: &Session) -> Option<EidasLink> {
    session.data.eidas_link.clone().filter(|l| st.clock.now() - l.at <= crate::eidas::REQUEST_TTL_S)
}

pub async fn link_form(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let ctx = st.ctx(&headers, peer).await?;
    let Some(session) = &ctx.session else { return Ok(Redirect::to("/login").into_response()) };
    let Some(link) = live_link(&st, session) else {
        return Ok(Redirect::to("/login").into_response());
    };
    Ok(link_page(&ctx.tr, session, &link, None, StatusCode::OK))
}

#[derive(serde::Deserialize)]
pub struct LinkForm {
    csrf: Option<String>,
    bis: Option<String>,
    email: Option<String>,
}

fn link_key(pid: &str) -> String {
    format!("link:{}", crate::crypto::token_hash(pid))
}

pub async fn link_submit(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let Some(mut session) = ctx.session.take() else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !session.csrf_ok(form.csrf.as_deref()) {
        return Err(WebError::page(
            StatusCode::FORBIDDEN,
            &tr,
            "session-expired-title",
            "csrf-failed",
            "csrf",
        ));
    }
    let Some(link) = live_link(&st, &session) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let now = st.clock.now();
    let pid = link.identity.person_identifier.clone();
    if let Some(until) = st.store.locked_until(&link_key(&pid), now).await? {
        let e =
            FormError { code: "locked", text: tr.t1("link-locked", "until", &tr.datetime(until)) };
        return Ok(link_page(&tr, &session, &link, Some(e), StatusCode::TOO_MANY_REQUESTS));
    }
    let bis = match Insz::parse(form.bis.as_deref().unwrap_or_default()) {
        Ok(b) => b,
        Err(e) => {
            let err = FormError { code: e.message_key(), text: tr.t(e.message_key()) };
            return Ok(link_page(&tr, &session, &link, Some(err), StatusCode::BAD_REQUEST));
        }
    };
    let Some(register) = st.bis_register.clone() else {
        return Err(WebError::page(
            StatusCode::SERVICE_UNAVAILABLE,
            &tr,
            "error-title",
            "bis-unavailable",
            "unavailable",
        ));
    };
    let entry = match register.lookup(&bis).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "Bis register lookup failed");
            return Err(WebError::page(
                StatusCode::SERVICE_UNAVAILABLE,
                &tr,
                "error-title",
                "bis-unavailable",
                "unavailable",
            ));
        }
    };
    let Some(entry) =
        entry.filter(|e| linking::matches(e, &link.identity) && e.bis == bis.as_str())
    else {
        // Unknown number or another person's: the same neutral answer, counted.
        let c = st
            .store
            .record_failure(&link_key(&pid), now, LINK_WINDOW_S, LINK_MAX_FAILURES, LINK_WINDOW_S)
            .await?;
        st.provider
            .audit(AuditEvent {
                kind: "link".into(),
                outcome: "failed".into(),
                method: Some("eidas".into()),
                address: Some(ctx.address.clone()),
                ..Default::default()
            })
            .await;
        let e = match c.locked_until {
            Some(until) => FormError {
                code: "locked",
                text: tr.t1("link-locked", "until", &tr.datetime(until)),
            },
            None => FormError::new(&tr, "link-no-match"),
        };
        let status = if c.locked_until.is_some() {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNAUTHORIZED
        };
        return Ok(link_page(&tr, &session, &link, Some(e), status));
    };
    let person = match st.store.person_by_insz(&bis).await? {
        Some(p) => p,
        None => {
            let p = Person {
                id: crate::crypto::random_token(16),
                insz: bis.clone(),
                given_name: entry.given_names.join(" "),
                family_name: entry.family_name.clone(),
                birthdate: Some(entry.birthdate.clone()),
                created_at: now,
            };
            st.store.insert_person(&p).await?;
            p
        }
    };
    if let Err(e) = st.store.link_identity(linking::EIDAS, &pid, &person.id, now).await {
        // Linked meanwhile (another tab, another replica): one identifier, one INSZ.
        tracing::warn!(error = %e, "eIDAS identity already linked");
        st.provider
            .audit(AuditEvent {
                kind: "link".into(),
                outcome: "refused".into(),
                person_id: Some(person.id.clone()),
                method: Some("eidas".into()),
                detail: serde_json::json!({ "reason": "already_linked" }).to_string(),
                ..Default::default()
            })
            .await;
        return Err(WebError::page(
            StatusCode::CONFLICT,
            &tr,
            "error-title",
            "link-already",
            "already_linked",
        ));
    }
    st.provider
        .audit(AuditEvent {
            kind: "link".into(),
            outcome: "ok".into(),
            person_id: Some(person.id.clone()),
            method: Some("eidas".into()),
            address: Some(ctx.address.clone()),
            ..Default::default()
        })
        .await;
    session.data.eidas_link = None;
    let login = eidas_login(&person.id, &link.identity, link.level, now);
    complete_login(&st, &ctx, session, login).await
}

/// "I have no Bis number": the request is kept with the eIDAS data and the person is told what
/// happens next (the federal services contact them by email).
pub async fn request_bis(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LinkForm>,
) -> Result<Response, WebError> {
    let mut ctx = st.ctx(&headers, peer).await?;
    let tr = ctx.tr.clone();
    let Some(mut session) = ctx.session.take() else {
        return Ok(Redirect::to("/login").into_response());
    };
    if !session.csrf_ok(form.csrf.as_deref()) {
        return Err(WebError::page(
            StatusCode::FORBIDDEN,
            &tr,
            "session-expired-title",
            "csrf-failed",
            "csrf",
        ));
    }
    let Some(link) = live_link(&st, &session) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let email = form.email.unwrap_or_default().trim().to_string();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c == '<' || c == '>');
    if !valid {
        let e = FormError::new(&tr, "link-email-invalid");
        return Ok(link_page(&tr, &session, &link, Some(e), StatusCode::BAD_REQUEST));
    }
    let now = st.clock.now();
    let id = crate::crypto::random_id();
    let who = &link.identity;
    st.store
        .insert_bis_request(
            &id,
            &who.person_identifier,
            &who.family_name,
            &who.given_name,
            &who.birthdate,
            &email,
            now,
        )
        .await?;
    st.store
        .enqueue(&OutboxMessage {
            id: crate::crypto::random_id(),
            channel: "mail".into(),
            recipient: email.clone(),
            subject: Some(tr.t("bis-mail-subject")),
            body: tr.t("bis-mail-body"),
            created_at: now,
            attempts: 0,
            sent_at: None,
        })
        .await?;
    st.provider
        .audit(AuditEvent {
            kind: "bis_request".into(),
            outcome: "ok".into(),
            method: Some("eidas".into()),
            ..Default::default()
        })
        .await;
    session.data.eidas_link = None;
    st.sessions.save(&mut session).await?;
    Ok(pages::message(
        StatusCode::OK,
        &tr,
        "bis-requested-title",
        tr.t1("bis-requested", "email", &email),
        None,
        None,
    ))
}
