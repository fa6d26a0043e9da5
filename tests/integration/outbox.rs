//! The outbox delivers SMS through the configured gateway (JSON `{"to","text"}`), retrying with
//! backoff when the gateway fails (SPEC §7).

use crate::both_backends;
use crate::common::*;
use std::sync::{Arc, Mutex};

both_backends!(sms_codes_go_through_the_gateway_with_retries);

async fn sms_codes_go_through_the_gateway_with_retries(backend: Backend) {
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let received = received.clone();
        let calls = calls.clone();
        axum::Router::new().route(
            "/sms",
            axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                let received = received.clone();
                let calls = calls.clone();
                async move {
                    // The first delivery fails: the outbox must retry.
                    if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    received.lock().unwrap().push(v);
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = format!("http://127.0.0.1:{}/sms", listener.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let s = TestServer::start_with(backend, |cfg| {
        cfg.sms.gateway_url = Some(url::Url::parse(&gw).unwrap())
    })
    .await;
    let c = s.add_client("portal", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    cozo_broker::admin::add_sms_key(
        &s.handle.store,
        &s.handle.cfg,
        &p.insz,
        "anna",
        None,
        "+32470123456",
        s.now(),
    )
    .await
    .unwrap();
    // No demo mailbox when a gateway is configured.
    assert_eq!(Browser::new().get(&s.url("/demo/mailbox")).await.status, 404);
    let b = Browser::new();
    let pk = pkce();
    let chooser = b.follow(&s.base, b.get(&authorize_url(&s, &c, &pk, &[])).await).await;
    assert!(chooser.url.ends_with("/login"));
    let form = b.follow(&s.base, b.get(&s.url("/login/key")).await).await;
    let r = b
        .submit(&s.base, &form, "/login/key", &[("username", "anna"), ("password", &p.password)])
        .await;
    let page = b.follow(&s.base, r).await;
    let sent =
        b.submit(&s.base, &page, "/login/key/code", &[("method", "sms"), ("code", "")]).await;
    assert_eq!(sent.status, 200);
    let mut msg = None;
    for _ in 0..100 {
        if let Some(v) = received.lock().unwrap().first().cloned() {
            msg = Some(v);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let msg = msg.expect("delivered after a retry");
    assert_eq!(msg["to"], "+32470123456");
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let text = msg["text"].as_str().unwrap();
    let code: String =
        text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).unwrap().into();
    let done =
        b.submit(&s.base, &sent, "/login/key/code", &[("method", "sms"), ("code", &code)]).await;
    assert!(done.location().unwrap().starts_with(&c.redirect_uri));
    // Delivered messages no longer hold their text (it carried a one-time code).
    let out = s.handle.store.outbox(1).await.unwrap();
    assert!(out[0].sent_at.is_some());
    assert!(out[0].body.is_empty());
}
