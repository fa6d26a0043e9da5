//! The demo relying app (idp-mocks) logs a person in through the broker and shows the claims:
//! the journey `make demo` offers, driven like a browser.

use crate::both_backends;
use crate::common::*;
use idp_mocks::demo_app::{DemoApp, DemoAppConfig};

both_backends!(demo_app_logs_in_with_a_digital_key);

async fn demo_app_logs_in_with_a_digital_key(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut spec = cozo_broker::admin::ClientSpec::new(
        "demo-portal",
        &format!("{app_base}/portal/callback"),
        "portal",
    );
    spec.post_logout_redirect_uris = vec![format!("{app_base}/")];
    let secret =
        cozo_broker::admin::add_client(&s.handle.store, &s.handle.policies, &spec, s.now())
            .await
            .unwrap();
    let cfg = DemoAppConfig {
        issuer: url::Url::parse(&s.base).unwrap(),
        public_url: url::Url::parse(&app_base).unwrap(),
        apps: vec![DemoApp {
            title: "Portal".into(),
            path: "portal".into(),
            client_id: "demo-portal".into(),
            client_secret: secret,
            scope: vec!["openid".into(), "profile".into(), "insz".into()],
            description: String::new(),
        }],
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = tokio::spawn(idp_mocks::demo_app::serve(listener, cfg, async move {
        let _ = rx.await;
    }));

    let b = Browser::new();
    let start = b.get(&format!("{app_base}/portal/login")).await;
    let to_broker = start.location().expect("redirect to the broker");
    let back = key_login(&s, &b, &to_broker, &p).await;
    assert!(back.starts_with(&app_base), "{back}");
    let page = b.get(&back).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let claim = |name: &str| {
        let sel = scraper::Selector::parse(&format!("tr[data-claim=\"{name}\"] td")).unwrap();
        page.html().select(&sel).next().map(|e| e.text().collect::<String>())
    };
    assert_eq!(claim("insz").as_deref(), Some("85073003328"));
    assert_eq!(claim("acr").as_deref(), Some("http://eidas.europa.eu/LoA/substantial"));
    assert_eq!(claim("amr").as_deref(), Some(r#"["pwd","totp"]"#));
    assert!(page.body.contains("id=\"userinfo\""));
    let _ = tx.send(());
    let _ = app.await;
}
