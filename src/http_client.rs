//! The one way the broker builds an HTTP client for an outside service (FAS, CoBRHA, the Bis
//! register, an eIDAS node's metadata, a client's JWKS): a timeout, no redirects followed (a
//! redirect could point a request at an internal address — openidconnect's security warning),
//! rustls. A client that cannot be built is an error at start, never a silent default without
//! the timeout or the redirect rule.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for {service}")]
pub struct HttpClientError {
    pub service: &'static str,
    #[source]
    pub source: reqwest::Error,
}

/// A client for `service` (named in the error) with this timeout.
pub fn build(service: &'static str, timeout: Duration) -> Result<reqwest::Client, HttpClientError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|source| HttpClientError { service, source })
}
