//! Errors of the token, revocation, userinfo and PAR endpoints, with their RFC 6749 codes.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// RFC 6749 §5.2
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (401).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// The code, refresh token or PKCE verifier is wrong, expired, used or not this client's.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// RFC 6750 §3.1: bearer token missing, expired or revoked.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// Broken inside (logged with its sources, answered `server_error`).
    #[error("server_error")]
    Server(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Another registered error code (e.g. `unmet_authentication_requirements` at PAR).
    #[error("{0}: {1}")]
    Custom(&'static str, String),
}

impl OidcError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidToken(_) => "invalid_token",
            Self::Server(_) => "server_error",
            Self::Custom(c, _) => c,
        }
    }

    /// A description safe to send to the client (never internal details).
    pub fn description(&self) -> String {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::InvalidScope(d)
            | Self::InvalidToken(d)
            | Self::Custom(_, d) => d.clone(),
            Self::UnsupportedGrantType => {
                "grant_type must be authorization_code or refresh_token".into()
            }
            Self::Server(_) => "the server could not complete the request; try again later".into(),
        }
    }
}

impl From<StoreError> for OidcError {
    fn from(e: StoreError) -> Self {
        OidcError::Server(Box::new(e))
    }
}

impl From<super::signing::KeyError> for OidcError {
    fn from(e: super::signing::KeyError) -> Self {
        OidcError::Server(Box::new(e))
    }
}
