//! Upstream calls are in their span only while they run (issue #15 item 5). A `span.enter()`
//! guard held across `.await` leaves the span entered on the thread while the call waits, so the
//! log lines (and spans) of whatever request runs next on that thread are attributed to the
//! waiting call. Each test runs an upstream call (for "request A") against a slow upstream on a
//! one-thread runtime, lets "request B" start and log meanwhile, and checks B's log line names B
//! only.

use crate::common::{database_url, Backend};
use cozo_broker::cobrha::Registry;
use cozo_broker::linking::BisRegister;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// How long the slow upstreams take; request B logs well within it.
const UPSTREAM_DELAY: Duration = Duration::from_millis(400);

/// An event's message and the names of the spans it is in, innermost first: what a JSON log
/// line reports as `span` and `spans`.
struct LogLine {
    message: String,
    spans: Vec<String>,
}

/// Every event, as [`LogLine`]s.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<LogLine>>>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name().to_string()).collect())
            .unwrap_or_default();
        let mut message = Message::default();
        event.record(&mut message);
        self.0.lock().unwrap().push(LogLine { message: message.0, spans });
    }
}

#[derive(Default)]
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Runs `upstream_call` as request A while request B starts and logs; returns the spans of B's
/// log line. Must run on a one-thread runtime (`#[tokio::test]`), where the two share a thread.
async fn spans_of_request_b_beside(upstream_call: impl Future) -> Vec<String> {
    let recorder = Recorder::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));
    let request_b = async {
        tokio::time::sleep(UPSTREAM_DELAY / 4).await;
        let span = tracing::info_span!("request_b");
        async { tracing::info!("request B is served") }.instrument(span).await;
    };
    tokio::join!(upstream_call.instrument(tracing::info_span!("request_a")), request_b);
    let lines = recorder.0.lock().unwrap();
    lines
        .iter()
        .find(|line| line.message == "request B is served")
        .map(|line| line.spans.clone())
        .expect("request B logged")
}

/// An upstream on a random port: `fast` answers at once, every other path after
/// [`UPSTREAM_DELAY`] with 503.
async fn slow_upstream(fast: impl FnOnce(&str) -> axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app = fast(&base).fallback(|| async {
        tokio::time::sleep(UPSTREAM_DELAY).await;
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn a_cobrha_lookup_does_not_capture_other_requests_log_lines() {
    let (url, mock) = idp_mocks::cobrha::start().await;
    mock.set_delay(UPSTREAM_DELAY);
    let registry = cozo_broker::cobrha::HttpRegistry::new(
        &url,
        Duration::from_secs(5),
        Duration::from_secs(300),
    )
    .unwrap();
    let gp = cozo_broker::identity::Insz::parse(idp_mocks::cobrha::GP).unwrap();
    let spans = spans_of_request_b_beside(async {
        assert_eq!(registry.professions(&gp).await.unwrap().len(), 1);
    })
    .await;
    assert_eq!(spans, ["request_b"], "request B's log line is attributed to: {spans:?}");
}

#[tokio::test]
async fn a_bis_register_lookup_does_not_capture_other_requests_log_lines() {
    let (url, mock) = idp_mocks::bis_register::start().await;
    mock.set_delay(UPSTREAM_DELAY);
    let register =
        cozo_broker::linking::HttpBisRegister::new(&url, Duration::from_secs(5)).unwrap();
    let bis = cozo_broker::identity::Insz::parse(idp_mocks::cobrha::FOREIGN_GP).unwrap();
    let spans = spans_of_request_b_beside(async {
        assert!(register.lookup(&bis).await.unwrap().is_some());
    })
    .await;
    assert_eq!(spans, ["request_b"], "request B's log line is attributed to: {spans:?}");
}

#[tokio::test]
async fn fas_discovery_does_not_capture_other_requests_log_lines() {
    let issuer = slow_upstream(|_| axum::Router::new()).await;
    let fas = federal_login(&issuer);
    let spans = spans_of_request_b_beside(async {
        assert!(fas.start(0).await.is_err(), "discovery answered 503");
    })
    .await;
    assert_eq!(spans, ["request_b"], "request B's log line is attributed to: {spans:?}");
}

#[tokio::test]
async fn the_fas_token_exchange_does_not_capture_other_requests_log_lines() {
    // Discovery and keys answer at once; the token endpoint is slow.
    let issuer = slow_upstream(|base| {
        let metadata = serde_json::json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(metadata) }),
            )
            .route(
                "/jwks",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"keys": []})) }),
            )
    })
    .await;
    let fas = federal_login(&issuer);
    let pending = cozo_broker::fas::FasPending {
        state: "state".into(),
        nonce: "nonce".into(),
        pkce_verifier: "v".repeat(43),
        at: 0,
    };
    let spans = spans_of_request_b_beside(async {
        let refused = fas.finish(&pending, "code").await;
        assert!(matches!(refused, Err(cozo_broker::fas::FasError::Invalid(_))), "{refused:?}");
    })
    .await;
    assert_eq!(spans, ["request_b"], "request B's log line is attributed to: {spans:?}");
}

fn federal_login(issuer: &str) -> cozo_broker::fas::Fas {
    let cfg = cozo_broker::config::FasConfig {
        issuer: Some(url::Url::parse(issuer).unwrap()),
        client_id: "broker".into(),
        client_secret: "secret".into(),
        ..Default::default()
    };
    cozo_broker::fas::Fas::new(&cfg, "http://127.0.0.1:9").unwrap().expect("FAS configured")
}

/// The outbox reads its queue from the database, so this one runs on both backends.
async fn an_sms_delivery_does_not_capture_other_requests_log_lines(backend: Backend) {
    let gateway = slow_upstream(|_| axum::Router::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = cozo_broker::store::Store::connect(&database_url(backend, dir.path()).await, 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
        .enqueue(&cozo_broker::store::OutboxMessage {
            id: "m1".into(),
            channel: "sms".into(),
            recipient: "+32470123456".into(),
            subject: None,
            body: "Your code: 123456".into(),
            created_at: 1_000,
            attempts: 0,
            sent_at: None,
        })
        .await
        .unwrap();
    let mut cfg = cozo_broker::config::Config::default();
    cfg.sms.gateway_url = Some(url::Url::parse(&format!("{gateway}/sms")).unwrap());
    let outbox = cozo_broker::outbox::Outbox::new(&cfg, store.clone()).unwrap();
    let spans = spans_of_request_b_beside(async {
        assert_eq!(outbox.run_once(1_000).await.unwrap(), 0, "the gateway answered 503");
    })
    .await;
    assert_eq!(spans, ["request_b"], "request B's log line is attributed to: {spans:?}");
    store.close().await;
}

/// One thread per test (not `both_backends!`'s two workers): the leak shows on a shared thread.
mod an_sms_delivery_does_not_capture_other_requests_log_lines {
    #[tokio::test]
    async fn sqlite() {
        super::an_sms_delivery_does_not_capture_other_requests_log_lines(
            crate::common::Backend::Sqlite,
        )
        .await
    }
    #[tokio::test]
    async fn postgres() {
        super::an_sms_delivery_does_not_capture_other_requests_log_lines(
            crate::common::Backend::Postgres,
        )
        .await
    }
}
