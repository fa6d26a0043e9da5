//! `/metrics` (SPEC §9, issue #7): after real logins and token calls over HTTP, the Prometheus
//! text carries logins by method, level and outcome, token grants by type and outcome, upstream
//! latency, throttling events and the outbox backlog; `[server] metrics_token` closes it.

use crate::both_backends;
use crate::common::*;

both_backends!(logins_grants_upstreams_and_backlog_are_counted, a_metrics_token_closes_metrics);

/// The value of the series `name` whose labels include all of `labels` (`k="v"` each).
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(s: &TestServer) -> String {
    let r = reqwest::get(s.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    r.text().await.unwrap()
}

async fn logins_grants_upstreams_and_backlog_are_counted(backend: Backend) {
    let (cobrha_url, _cobrha) = idp_mocks::cobrha::start().await;
    let s = TestServer::start_with(backend, |cfg| {
        cfg.cobrha.url = Some(url::Url::parse(&cobrha_url).unwrap());
    })
    .await;
    let c = s.add_client("portal", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let before = scrape(&s).await;
    assert_eq!(value(&before, "cozo_outbox_backlog", &[]), Some(0.0));
    assert_eq!(value(&before, "cozo_logins_total", &[]), None, "nothing counted yet");

    // A login asking for professions (a CoBRHA lookup), its code exchange and a refresh.
    let b = Browser::new();
    let pk = pkce();
    let authorize = authorize_url(&s, &c, &pk, &[("scope", "openid profile insz professions")]);
    let loc = key_login(&s, &b, &authorize, &p).await;
    let code = query(&loc)["code"].clone();
    let t: serde_json::Value = exchange(&s, &c, &code, &pk.verifier).await.json().await.unwrap();
    assert_eq!(refresh(&s, &c, t["refresh_token"].as_str().unwrap()).await.status(), 200);
    // The same code again: invalid_grant.
    assert_eq!(exchange(&s, &c, &code, &pk.verifier).await.status(), 400);
    // A wrong password.
    let wrong = submit_password(&s.base, &b, &("anna", "nope")).await;
    assert_eq!(wrong.status, 401);
    // A message waiting in the outbox (no gateway configured: it stays).
    s.handle
        .store
        .enqueue(&cozo_broker::store::OutboxMessage {
            id: "m1".into(),
            channel: "sms".into(),
            recipient: "+32470123456".into(),
            subject: None,
            body: "hello".into(),
            created_at: s.now(),
            attempts: 0,
            sent_at: None,
        })
        .await
        .unwrap();

    let text = scrape(&s).await;
    let logins = "cozo_logins_total";
    assert_eq!(
        value(&text, logins, &[r#"method="totp""#, r#"level="substantial""#, r#"outcome="ok""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, logins, &[r#"method="password""#, r#"outcome="failed""#]),
        Some(1.0),
        "{text}"
    );
    let grants = "cozo_token_grants_total";
    let ok = r#"outcome="ok""#;
    assert_eq!(value(&text, grants, &[r#"grant_type="authorization_code""#, ok]), Some(1.0));
    assert_eq!(value(&text, grants, &[r#"grant_type="refresh_token""#, ok]), Some(1.0));
    assert_eq!(
        value(&text, grants, &[r#"grant_type="authorization_code""#, r#"outcome="invalid_grant""#]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "cozo_upstream_request_duration_seconds_count", &[r#"upstream="cobrha""#, ok]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "cozo_outbox_backlog", &[]), Some(1.0));
    assert_eq!(
        value(&text, "cozo_http_requests_total", &[r#"route="/token""#, r#"status="200""#]),
        Some(2.0)
    );
}

async fn a_metrics_token_closes_metrics(backend: Backend) {
    let s = TestServer::start_with(backend, |cfg| {
        cfg.server.metrics_token = Some("scrape-secret".into());
    })
    .await;
    let http = reqwest::Client::new();
    let r = http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(s.url("/metrics")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http.get(s.url("/metrics")).bearer_auth("scrape-secret").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("cozo_outbox_backlog"));
}
