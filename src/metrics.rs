//! Operational metrics, served at `/metrics` in the Prometheus text format (SPEC §9).
//!
//! Crate: `prometheus` (TiKV's client), not the `metrics` facade with its exporter. The facade
//! installs one recorder per process, so every broker started in a test process would count
//! into the same numbers; here each broker owns a [`prometheus::Registry`] (kept in
//! `AppState`), which makes the counters exact per instance and testable, and the crate needs
//! no HTTP server of its own (the broker's router serves the text).
//!
//! What is counted where, each in one place:
//! - logins (method, level, outcome), lockouts and every other audit event: from the audit
//!   trail itself ([`Metrics::audit_observer`] on [`crate::audit::Audit`], the one writer), so a
//!   login counted is a login recorded, whichever module recorded it;
//! - token grants (grant type, outcome): in the `/token` handler;
//! - upstream calls (eIDAS node metadata, FAS, CoBRHA, Bis register, SMS gateway, SMTP):
//!   latency and errors, by [`Upstream::observe`] around each HTTP exchange;
//! - throttling: account lockouts (audit), refusals while locked (HTTP 429 from a handler),
//!   rate-limit rejections (the per-address limiter);
//! - the outbox backlog: read from the database at scrape time, so every replica reports the
//!   shared figure;
//! - password verifications (argon2id), by whether the hash had the configured cost: in the
//!   one place that verifies ([`crate::keys::KeyService`]), so a known and an unknown username
//!   can be shown to cost the same work.
//!
//! Counters are per process; Prometheus sums them over replicas.

use crate::assurance::AssuranceLevel;
use crate::audit::{Event, Factor, Kind};
use crate::store::Store;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::future::Future;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metric registration failed: {0}")]
    Prometheus(#[from] prometheus::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub struct Metrics {
    registry: Registry,
    logins: IntCounterVec,
    audit_events: IntCounterVec,
    token_grants: IntCounterVec,
    upstream_seconds: HistogramVec,
    upstream_errors: IntCounterVec,
    throttle_events: IntCounterVec,
    http_requests: IntCounterVec,
    jobs: IntCounterVec,
    password_verifications: IntCounterVec,
    outbox_backlog: IntGauge,
}

/// Throttling events, the `event` label of `cozo_throttle_events_total`.
#[derive(Debug, Clone, Copy)]
pub enum ThrottleEvent {
    /// An account, username or address was locked (too many failures).
    Lockout,
    /// A request was refused because a lock is running (HTTP 429 from a page or endpoint).
    RefusedWhileLocked,
    /// The per-address rate limiter refused a request before any work.
    RateLimited,
}

impl ThrottleEvent {
    fn label(self) -> &'static str {
        match self {
            ThrottleEvent::Lockout => "lockout",
            ThrottleEvent::RefusedWhileLocked => "refused_while_locked",
            ThrottleEvent::RateLimited => "rate_limited",
        }
    }
}

impl Metrics {
    pub fn new() -> Result<Arc<Self>, MetricsError> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let logins = counter(
            "cozo_logins_total",
            "Logins by method (amr), level (low, substantial, high, none) and outcome (ok, \
             failed, locked).",
            &["method", "level", "outcome"],
        )?;
        let audit_events = counter(
            "cozo_audit_events_total",
            "Audit events recorded, by kind and outcome.",
            &["kind", "outcome"],
        )?;
        let token_grants = counter(
            "cozo_token_grants_total",
            "Token endpoint requests by grant type and outcome (ok or the OAuth error code).",
            &["grant_type", "outcome"],
        )?;
        let upstream_errors = counter(
            "cozo_upstream_errors_total",
            "Failed calls to outside services (timeouts, transport errors, error answers).",
            &["upstream"],
        )?;
        let throttle_events = counter(
            "cozo_throttle_events_total",
            "Throttling: lockouts, refusals while locked, rate-limit rejections.",
            &["event"],
        )?;
        let http_requests = counter(
            "cozo_http_requests_total",
            "HTTP requests by route and status code.",
            &["route", "status"],
        )?;
        let jobs = counter(
            "cozo_jobs_total",
            "Background job runs on this replica (a job runs on one replica per period), by \
             job and outcome.",
            &["job", "outcome"],
        )?;
        let password_verifications = counter(
            "cozo_password_hash_verifications_total",
            "Argon2id password verifications (a known username's hash or the dummy hash of an \
             unknown one), by cost: configured, or outdated (a hash made before a cost change).",
            &["cost"],
        )?;
        let upstream_seconds = HistogramVec::new(
            HistogramOpts::new(
                "cozo_upstream_request_duration_seconds",
                "Latency of calls to outside services, by service and outcome.",
            )
            .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["upstream", "outcome"],
        )?;
        registry.register(Box::new(upstream_seconds.clone()))?;
        let outbox_backlog = IntGauge::new(
            "cozo_outbox_backlog",
            "Messages (SMS, mail) not delivered yet, across all replicas (read at scrape time).",
        )?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        Ok(Arc::new(Self {
            registry,
            logins,
            audit_events,
            token_grants,
            upstream_seconds,
            upstream_errors,
            throttle_events,
            http_requests,
            jobs,
            password_verifications,
            outbox_backlog,
        }))
    }

    /// Counts an audit event: every kind, and logins and lockouts in their own series.
    pub fn audit(&self, e: &Event) {
        self.audit_events.with_label_values(&[e.kind.as_str(), e.outcome.as_str()]).inc();
        let method = e.factor.map(Factor::as_str).unwrap_or("none");
        let level = e.level.map(AssuranceLevel::short).unwrap_or("none");
        match e.kind {
            Kind::Login => {
                self.logins.with_label_values(&[method, level, e.outcome.as_str()]).inc()
            }
            Kind::Lockout => {
                self.logins.with_label_values(&[method, level, "locked"]).inc();
                self.throttle(ThrottleEvent::Lockout);
            }
            _ => {}
        }
    }

    /// The observer that feeds [`Metrics::audit`] from the audit writer.
    pub fn audit_observer(self: &Arc<Self>) -> crate::audit::Observer {
        let m = self.clone();
        Arc::new(move |e| m.audit(e))
    }

    pub fn token_grant(&self, grant_type: &str, outcome: &str) {
        // Unknown grant types are one label value, not whatever a client sends.
        let grant_type = match grant_type {
            "authorization_code" | "refresh_token" => grant_type,
            _ => "other",
        };
        self.token_grants.with_label_values(&[grant_type, outcome]).inc();
    }

    pub fn throttle(&self, event: ThrottleEvent) {
        self.throttle_events.with_label_values(&[event.label()]).inc();
    }

    pub fn http_request(&self, route: &str, status: u16) {
        self.http_requests.with_label_values(&[route, status.to_string().as_str()]).inc();
    }

    /// One argon2id password verification; `configured`: the hash had the configured cost.
    pub fn password_verification(&self, configured: bool) {
        let cost = if configured { "configured" } else { "outdated" };
        self.password_verifications.with_label_values(&[cost]).inc();
    }

    /// A background job ran here (`ok` or `error`).
    pub fn job(&self, job: &str, ok: bool) {
        self.jobs.with_label_values(&[job, if ok { "ok" } else { "error" }]).inc();
    }

    /// A handle for timing the calls to one outside service.
    pub fn upstream(self: &Arc<Self>, name: &'static str) -> Upstream {
        Upstream(Some((self.clone(), name)))
    }

    /// The text exposition, with the gauges read from the database first.
    pub async fn render(&self, store: &Store) -> Result<String, MetricsError> {
        self.outbox_backlog.set(store.outbox_backlog().await?);
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// `/metrics`: the registry and the database its gauges are read from.
#[derive(Clone)]
pub struct Exposition {
    metrics: Arc<Metrics>,
    store: Store,
}

impl Exposition {
    pub fn new(metrics: Arc<Metrics>, store: Store) -> Self {
        Self { metrics, store }
    }

    pub async fn text(&self) -> Result<String, MetricsError> {
        self.metrics.render(&self.store).await
    }
}

/// Times the calls to one outside service; `Upstream::default()` times nothing (tools, tests).
#[derive(Clone, Default)]
pub struct Upstream(Option<(Arc<Metrics>, &'static str)>);

impl Upstream {
    /// Runs one exchange with the service and records its latency and outcome (an `Err` is an
    /// error; a well-formed "not found" answer is not).
    pub async fn observe<T, E>(&self, call: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let start = crate::clock::Stopwatch::start();
        let result = call.await;
        if let Some((m, name)) = &self.0 {
            let outcome = if result.is_ok() { "ok" } else { "error" };
            m.upstream_seconds
                .with_label_values(&[*name, outcome])
                .observe(start.elapsed().as_secs_f64());
            if result.is_err() {
                m.upstream_errors.with_label_values(&[*name]).inc();
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;

    #[test]
    fn logins_and_lockouts_are_counted_from_audit_events() {
        let m = Metrics::new().unwrap();
        m.audit(
            &Event::new(Kind::Login, Outcome::Ok)
                .factor(crate::assurance::Method::Totp)
                .level(AssuranceLevel::Substantial),
        );
        m.audit(&Event::new(Kind::Lockout, Outcome::Failed).factor(Factor::Password));
        assert_eq!(m.logins.with_label_values(&["totp", "substantial", "ok"]).get(), 1);
        assert_eq!(m.logins.with_label_values(&["password", "none", "locked"]).get(), 1);
        assert_eq!(m.throttle_events.with_label_values(&["lockout"]).get(), 1);
        m.token_grant("urn:whatever", "unsupported_grant_type");
        assert_eq!(m.token_grants.with_label_values(&["other", "unsupported_grant_type"]).get(), 1);
    }
}
