//! Where every error becomes a response, each kind in one place: JSON with the RFC error codes
//! for the protocol endpoints ([`oidc_error_response`]), a page in the person's language that
//! says what to do next for browsers ([`WebError::Page`]), and a fixed page for anything broken
//! inside ([`WebError::Internal`]: the detail and its sources are logged, never shown).

use super::pages::{message, Link};
use crate::i18n::{Lang, Tr};
use crate::oidc::OidcError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A protocol error for an app (token, revoke, userinfo, PAR).
    #[error(transparent)]
    Oidc(#[from] OidcError),
    /// A page for a person.
    #[error("page {code} ({status})")]
    Page {
        status: StatusCode,
        tr: Tr,
        title_key: &'static str,
        text_key: &'static str,
        code: &'static str,
    },
    /// A route of a feature this deployment does not have (e.g. no eIDAS node configured).
    #[error("not found")]
    NotFound,
    /// Something broke inside; the person gets a fixed page.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl WebError {
    pub fn page(
        status: StatusCode,
        tr: &Tr,
        title_key: &'static str,
        text_key: &'static str,
        code: &'static str,
    ) -> Self {
        Self::Page { status, tr: tr.clone(), title_key, text_key, code }
    }

    pub fn internal(e: impl Into<BoxError>) -> Self {
        Self::Internal(e.into())
    }
}

/// Module errors that reach a handler are internal: the use cases turn everything a person
/// could cause into a decision, not an error.
macro_rules! internal_from {
    ($($t:ty),+ $(,)?) => {
        $(impl From<$t> for WebError {
            fn from(e: $t) -> Self {
                WebError::Internal(Box::new(e))
            }
        })+
    };
}

internal_from!(
    crate::session::SessionError,
    crate::eid::EidError,
    crate::linking::LinkingError,
    crate::outbox::MailboxError,
    crate::fas::FasError,
    crate::policy::PolicyError,
    crate::eidas::EidasError,
    crate::eudiw::EudiwError,
    crate::keys::KeyError,
    crate::office::OfficeError,
    crate::oidc::authorize::AuthorizeError,
    tokio::task::JoinError,
);

/// The error and every source under it, for the log line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Oidc(e) => oidc_error_response(&e),
            WebError::NotFound => StatusCode::NOT_FOUND.into_response(),
            WebError::Page { status, tr, title_key, text_key, code } => message(
                status,
                &tr,
                title_key,
                tr.t(text_key),
                Some(code),
                Some(Link { href: "/login".into(), label: tr.t("back-to-start") }),
            ),
            WebError::Internal(e) => {
                tracing::error!(error = %chain(e.as_ref()), "internal error");
                // No language is known here: say it in all four.
                let text = Lang::ALL
                    .iter()
                    .map(|l| Tr::new(*l).t("error-internal"))
                    .collect::<Vec<_>>()
                    .join(" / ");
                message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &Tr::new(Lang::En),
                    "error-title",
                    text,
                    Some("internal"),
                    None,
                )
            }
        }
    }
}

pub fn oidc_error_response(e: &OidcError) -> Response {
    let status = match e {
        OidcError::InvalidClient(_) | OidcError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        OidcError::Server(detail) => {
            tracing::error!(error = %chain(detail.as_ref()), "token endpoint error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let body = serde_json::json!({ "error": e.code(), "error_description": e.description() });
    let mut resp = (status, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match e {
        OidcError::InvalidClient(_) => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"cozo-broker\""),
            );
        }
        OidcError::InvalidToken(_) => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        _ => {}
    }
    resp
}
