//! Where every error becomes a response: JSON with RFC 6749 codes for the protocol endpoints,
//! a page in the person's language (saying what to do next) for browsers. Internal details are
//! logged, never shown.

use super::pages::{message, Link};
use crate::i18n::Tr;
use crate::oidc::OidcError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum WebError {
    /// A protocol error for an app (token, revoke, userinfo, PAR).
    Oidc(OidcError),
    /// A page for a person.
    Page {
        status: StatusCode,
        tr: Tr,
        title_key: &'static str,
        text_key: &'static str,
        code: &'static str,
    },
    /// Something broke inside; the person gets a generic page.
    Internal(String),
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
}

impl From<OidcError> for WebError {
    fn from(e: OidcError) -> Self {
        WebError::Oidc(e)
    }
}

impl From<crate::store::StoreError> for WebError {
    fn from(e: crate::store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<crate::policy::PolicyError> for WebError {
    fn from(e: crate::policy::PolicyError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<crate::eidas::EidasError> for WebError {
    fn from(e: crate::eidas::EidasError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<crate::keys::KeyError> for WebError {
    fn from(e: crate::keys::KeyError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<crate::office::OfficeError> for WebError {
    fn from(e: crate::office::OfficeError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::Oidc(e) => oidc_error_response(&e),
            WebError::Page { status, tr, title_key, text_key, code } => message(
                status,
                &tr,
                title_key,
                tr.t(text_key),
                Some(code),
                Some(Link { href: "/login".into(), label: tr.t("back-to-start") }),
            ),
            WebError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                // No language is known here: say it in all four.
                let tr = Tr::new("en");
                let text = ["nl", "fr", "de", "en"]
                    .iter()
                    .map(|l| Tr::new(l).t("error-internal"))
                    .collect::<Vec<_>>()
                    .join(" / ");
                message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &tr,
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
            tracing::error!(error = %detail, "token endpoint error");
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
