//! Rate limits per client address on the login and token endpoints (issue #7, hardening).
//!
//! This is the first line against floods: a cheap in-memory check (`governor`, GCRA) before any
//! session lookup, password hash or database write, answering 429 with `Retry-After`. Its memory
//! is per replica, so behind N replicas an address gets up to N times the configured rate; the
//! shared line is the per-account and per-address failure throttle in the database
//! (`src/keys`, `store::throttle`), which every replica sees.
//!
//! Two buckets per address, so that a person's browser and an app's back end do not eat each
//! other's allowance: the browser login routes, and the OAuth endpoints apps call (`/token`,
//! `/par`, `/revoke`, `/userinfo`). The address is the one every handler uses
//! ([`super::AppState::request_address`]: the peer, or `X-Forwarded-For` when
//! `[server] trust_forwarded_for`).

use super::AppState;
use crate::config::ServerConfig;
use crate::i18n::Tr;
use crate::metrics::ThrottleEvent;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;

/// Which allowance a route draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Pages of a login (authorize, chooser, key forms, upstream returns, linking, activation
    /// codes, the office and account logins).
    Browser,
    /// Endpoints apps call with their credentials.
    Api,
}

impl Class {
    /// The class of a path, or `None` for routes that are not limited (discovery, JWKS, static
    /// files, health, metrics: cheap, cached, or not reachable by a login flood).
    pub fn of(path: &str) -> Option<Self> {
        match path {
            "/token" | "/par" | "/revoke" | "/userinfo" => Some(Class::Api),
            "/authorize"
            | "/login"
            | "/link"
            | "/saml/eidas/acs"
            | "/saml/eidas/continue"
            | "/oidc/fas/callback"
            | "/office/login"
            | "/account/login" => Some(Class::Browser),
            p if ["/login/", "/link/", "/activate/"].iter().any(|pre| p.starts_with(pre)) => {
                Some(Class::Browser)
            }
            _ => None,
        }
    }
}

pub struct RateLimits {
    browser: Option<DefaultKeyedRateLimiter<String>>,
    api: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimits {
    /// From `[server] rate_limit_per_s` and `rate_limit_burst`; a rate of 0 turns limiting off.
    pub fn new(cfg: &ServerConfig) -> Self {
        let quota = NonZeroU32::new(cfg.rate_limit_per_s).map(|rate| {
            let burst =
                NonZeroU32::new(cfg.rate_limit_burst.max(cfg.rate_limit_per_s)).unwrap_or(rate);
            Quota::per_second(rate).allow_burst(burst)
        });
        Self { browser: quota.map(RateLimiter::keyed), api: quota.map(RateLimiter::keyed) }
    }

    /// `Ok` if the request may go on, else how many seconds to wait (at least 1).
    pub fn check(&self, class: Class, address: &str) -> Result<(), u64> {
        let limiter = match class {
            Class::Browser => &self.browser,
            Class::Api => &self.api,
        };
        let Some(limiter) = limiter else { return Ok(()) };
        limiter.check_key(&address.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs_f64().ceil() as u64).max(1)
        })
    }

    /// Forgets addresses whose allowance is full again (bounded memory under address churn).
    pub fn forget_idle(&self) {
        for l in [&self.browser, &self.api].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The middleware: checks the route's allowance for the client's address.
pub async fn limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(class) = Class::of(req.uri().path()) else {
        return next.run(req).await;
    };
    let address = st.request_address(req.extensions(), req.headers());
    let Err(wait) = st.rate_limits.check(class, &address) else {
        return next.run(req).await;
    };
    st.metrics.throttle(ThrottleEvent::RateLimited);
    tracing::warn!(%address, path = req.uri().path(), "rate limit: request refused");
    let mut resp = match class {
        Class::Api => {
            let body = serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": format!(
                    "too many requests from this address; retry after {wait} s"
                ),
            });
            (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
        }
        Class::Browser => {
            // No session lookup under a flood: the language from the cookie or the browser.
            let lang = super::extract::request_language(req.headers(), None)
                .unwrap_or(st.cfg.ui.default_language);
            let tr = Tr::new(lang);
            super::pages::message(
                StatusCode::TOO_MANY_REQUESTS,
                &tr,
                "rate-limited-title",
                tr.t("rate-limited"),
                Some("rate-limited"),
                None,
            )
        }
    };
    let h = resp.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(wait));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified() {
        assert_eq!(Class::of("/token"), Some(Class::Api));
        assert_eq!(Class::of("/par"), Some(Class::Api));
        assert_eq!(Class::of("/login/key/code"), Some(Class::Browser));
        assert_eq!(Class::of("/saml/eidas/acs"), Some(Class::Browser));
        assert_eq!(Class::of("/activate/abc"), Some(Class::Browser));
        assert_eq!(Class::of("/jwks"), None);
        assert_eq!(Class::of("/metrics"), None);
        assert_eq!(Class::of("/loginx"), None);
    }

    #[test]
    fn an_address_over_its_burst_waits_and_others_do_not() {
        let cfg = ServerConfig { rate_limit_per_s: 1, rate_limit_burst: 3, ..Default::default() };
        let l = RateLimits::new(&cfg);
        for _ in 0..3 {
            assert_eq!(l.check(Class::Api, "192.0.2.1"), Ok(()));
        }
        let wait = l.check(Class::Api, "192.0.2.1").unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert_eq!(l.check(Class::Api, "192.0.2.2"), Ok(()), "another address");
        assert_eq!(l.check(Class::Browser, "192.0.2.1"), Ok(()), "the other bucket");
        let off = RateLimits::new(&ServerConfig { rate_limit_per_s: 0, ..Default::default() });
        for _ in 0..1000 {
            assert_eq!(off.check(Class::Api, "192.0.2.1"), Ok(()));
        }
    }
}
