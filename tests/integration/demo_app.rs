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

both_backends!(demo_apps_log_out_together_through_back_channel_logout);

/// SPEC §11: two demo apps of one broker session; logging out of one ends the other's session
/// (the demo app verifies the logout tokens with the broker's JWKS).
async fn demo_apps_log_out_together_through_back_channel_logout(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut apps = Vec::new();
    for (id, path) in [("demo-portal", "portal"), ("demo-other", "other")] {
        let mut spec = cozo_broker::admin::ClientSpec::new(
            id,
            &format!("{app_base}/{path}/callback"),
            "portal",
        );
        spec.post_logout_redirect_uris = vec![format!("{app_base}/")];
        spec.backchannel_logout_uri = Some(format!("{app_base}/{path}/backchannel-logout"));
        let secret =
            cozo_broker::admin::add_client(&s.handle.store, &s.handle.policies, &spec, s.now())
                .await
                .unwrap();
        apps.push(DemoApp {
            title: path.into(),
            path: path.into(),
            client_id: id.into(),
            client_secret: secret,
            scope: vec!["openid".into()],
            description: String::new(),
        });
    }
    let cfg = DemoAppConfig {
        issuer: url::Url::parse(&s.base).unwrap(),
        public_url: url::Url::parse(&app_base).unwrap(),
        apps,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = tokio::spawn(idp_mocks::demo_app::serve(listener, cfg, async move {
        let _ = rx.await;
    }));

    let b = Browser::new();
    let to_broker = b.get(&format!("{app_base}/portal/login")).await.location().unwrap();
    let back = key_login(&s, &b, &to_broker, &p).await;
    let portal = b.get(&back).await;
    assert_eq!(portal.status, 200, "{}", portal.body);
    // The second app: the broker session answers at once.
    let to_broker = b.get(&format!("{app_base}/other/login")).await.location().unwrap();
    let back = b.get(&to_broker).await.location().unwrap();
    assert!(back.starts_with(&app_base), "{back}");
    assert_eq!(b.get(&back).await.status, 200);
    let home = b.get(&format!("{app_base}/")).await;
    let count = |page: &Page, attr: &str| {
        page.html().select(&scraper::Selector::parse(&format!("[{attr}]")).unwrap()).count()
    };
    assert_eq!(count(&home, "data-session"), 2, "{}", home.body);

    // "Log out" in the portal: through the broker and back.
    let sel = scraper::Selector::parse("a#logout").unwrap();
    let logout =
        portal.html().select(&sel).next().unwrap().value().attr("href").unwrap().to_string();
    let out = b.get(&logout).await;
    assert_eq!(out.status, 303, "{}", out.body);
    let mut ended = 0;
    for _ in 0..100 {
        let home = b.get(&format!("{app_base}/")).await;
        ended = count(&home, "data-session-ended");
        if ended == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ended, 2, "both apps' sessions ended");
    let _ = tx.send(());
    let _ = app.await;
}
