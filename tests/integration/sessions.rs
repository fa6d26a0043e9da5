//! Sessions across apps (SPEC §11): `sid` in ID tokens, back-channel logout through the outbox
//! (retried, delivered once), refresh tokens revoked when the broker session ends, "sign out
//! everywhere", key revocation, and `/account/apps`.

use crate::both_backends;
use crate::common::*;
use cozo_broker::admin::ClientSpec;
use scraper::Selector;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

both_backends!(
    id_tokens_of_one_broker_session_share_a_sid,
    logout_tells_every_app_of_the_session_once_and_revokes_their_refresh_tokens,
    sign_out_everywhere_and_revoked_keys_end_every_session,
    a_key_removed_at_account_ends_the_other_sessions_only,
    apps_page_lists_the_apps_and_revokes_one_alone,
    a_person_cannot_see_or_revoke_another_persons_app,
    a_save_writes_only_changes_and_moves_the_idle_expiry,
);

/// Back-channel logout endpoints of test apps: `/{app}` records each `logout_token`; the
/// first `fail_first` calls of every app are answered 503.
#[derive(Clone, Default)]
struct Receiver {
    tokens: Arc<Mutex<HashMap<String, Vec<String>>>>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    fail_first: Arc<AtomicUsize>,
    base: String,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = Receiver::default();
        r.fail_first.store(fail_first, Ordering::SeqCst);
        r.base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = r.clone();
        let app = axum::Router::new().route(
            "/{app}",
            axum::routing::post(
                move |axum::extract::Path(app): axum::extract::Path<String>,
                      axum::Form(f): axum::Form<HashMap<String, String>>| {
                    let st = state.clone();
                    async move {
                        let n = {
                            let mut calls = st.calls.lock().unwrap();
                            let n = calls.entry(app.clone()).or_default();
                            *n += 1;
                            *n
                        };
                        if n <= st.fail_first.load(Ordering::SeqCst) {
                            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                        }
                        let token = f.get("logout_token").cloned().unwrap_or_default();
                        st.tokens.lock().unwrap().entry(app).or_default().push(token);
                        axum::http::StatusCode::OK
                    }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    fn uri(&self, app: &str) -> String {
        format!("{}/{app}", self.base)
    }

    fn tokens(&self, app: &str) -> Vec<String> {
        self.tokens.lock().unwrap().get(app).cloned().unwrap_or_default()
    }

    fn calls(&self, app: &str) -> usize {
        self.calls.lock().unwrap().get(app).copied().unwrap_or_default()
    }

    /// Waits (up to 10 s) until `app` received `n` logout tokens.
    async fn wait_for(&self, app: &str, n: usize) -> Vec<String> {
        for _ in 0..100 {
            if self.tokens(app).len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let got = self.tokens(app);
        assert_eq!(got.len(), n, "logout tokens for {app}");
        got
    }
}

async fn app(
    s: &TestServer,
    id: &str,
    name: Option<&str>,
    logout_uri: Option<String>,
) -> TestClient {
    let mut spec = ClientSpec::new(id, &format!("http://127.0.0.1:9/{id}/cb"), "portal");
    spec.name = name.map(str::to_string);
    spec.backchannel_logout_uri = logout_uri;
    s.add_client_spec(&spec).await
}

/// Logs `b` in (or reuses its session) for `c`; answers the token response.
async fn tokens_in(
    s: &TestServer,
    b: &Browser,
    c: &TestClient,
    p: &TestPerson,
) -> serde_json::Value {
    let pk = pkce();
    let url = authorize_url(s, c, &pk, &[]);
    let first = b.get(&url).await;
    let loc = match first.location() {
        Some(l) if l.starts_with(&c.redirect_uri) => l,
        _ => key_login(s, b, &url, p).await,
    };
    let code = query(&loc)["code"].clone();
    let r = exchange(s, c, &code, &pk.verifier).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn sid(t: &serde_json::Value) -> String {
    jwt_claims(t["id_token"].as_str().unwrap())["sid"].as_str().expect("sid").to_string()
}

fn refresh_token(t: &serde_json::Value) -> &str {
    t["refresh_token"].as_str().unwrap()
}

/// Verifies a logout token with the broker's JWKS and the rules of Back-Channel Logout 1.0.
async fn verified_logout_token(s: &TestServer, token: &str) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(s.url("/jwks")).await.unwrap().json().await.unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("a key of the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[s.base.as_str()]);
    v.validate_aud = false;
    v.set_required_spec_claims(&["iss", "aud", "exp", "iat", "sub"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).unwrap().claims;
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(
        claims["events"],
        serde_json::json!({ "http://schemas.openid.net/event/backchannel-logout": {} })
    );
    claims
}

async fn id_tokens_of_one_broker_session_share_a_sid(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = app(&s, "app-a", None, None).await;
    let c = app(&s, "app-b", None, None).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let ta = tokens_in(&s, &b, &a, &p).await;
    let tb = tokens_in(&s, &b, &c, &p).await;
    assert_eq!(sid(&ta), sid(&tb), "one broker session, one sid for every app");
    // A refreshed ID token keeps it.
    let r: serde_json::Value = refresh(&s, &a, refresh_token(&ta)).await.json().await.unwrap();
    assert_eq!(sid(&r), sid(&ta));
    // Another browser is another broker session.
    s.next_step();
    let other = tokens_in(&s, &Browser::new(), &a, &p).await;
    assert_ne!(sid(&other), sid(&ta));
    let d: serde_json::Value = reqwest::get(s.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
}

async fn logout_tells_every_app_of_the_session_once_and_revokes_their_refresh_tokens(
    backend: Backend,
) {
    // Every app's endpoint fails its first call: the outbox retries.
    let rx = Receiver::start(1).await;
    let s = TestServer::start(backend).await;
    let a = app(&s, "app-a", Some("Portal"), Some(rx.uri("a"))).await;
    let c = app(&s, "app-b", None, Some(rx.uri("b"))).await;
    let quiet = app(&s, "app-quiet", None, None).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let ta = tokens_in(&s, &b, &a, &p).await;
    let tb = tokens_in(&s, &b, &c, &p).await;
    let tq = tokens_in(&s, &b, &quiet, &p).await;
    // The same person in another browser: that session stays.
    s.next_step();
    let other = tokens_in(&s, &Browser::new(), &a, &p).await;
    // A code issued in the session but exchanged only after the logout.
    let late_pk = pkce();
    let late = b.get(&authorize_url(&s, &c, &late_pk, &[])).await.location().unwrap();
    let late_code = query(&late)["code"].clone();

    let logout = format!("{}?id_token_hint={}", s.url("/logout"), ta["id_token"].as_str().unwrap());
    let out = b.get(&logout).await;
    assert_eq!(out.status, 200, "{}", out.body);
    // Before the answer: the session's refresh tokens are revoked, every app's.
    for (client, t) in [(&a, &ta), (&c, &tb), (&quiet, &tq)] {
        let r = refresh(&s, client, refresh_token(t)).await;
        assert_eq!(r.status(), 400, "{}", client.id);
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_grant");
    }
    let ui = reqwest::Client::new()
        .get(s.url("/userinfo"))
        .bearer_auth(ta["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);
    let r = exchange(&s, &c, &late_code, &late_pk.verifier).await;
    assert_eq!(r.status(), 400, "a code of an ended session starts no grant");
    // The other browser's grant lives on.
    assert_eq!(refresh(&s, &a, refresh_token(&other)).await.status(), 200);

    // Each app with a URI gets one logout token, after a failed first attempt.
    let got_a = rx.wait_for("a", 1).await;
    let got_b = rx.wait_for("b", 1).await;
    for (token, client) in [(&got_a[0], &a), (&got_b[0], &c)] {
        let claims = verified_logout_token(&s, token).await;
        assert_eq!(claims["aud"], client.id.as_str());
        assert_eq!(claims["sid"], sid(&ta).as_str());
        assert_eq!(claims["sub"], jwt_claims(ta["id_token"].as_str().unwrap())["sub"]);
    }
    assert!(rx.calls("a") >= 2 && rx.calls("b") >= 2, "retried after the failure");
    // Delivered: never again.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(rx.tokens("a").len(), 1);
    assert_eq!(rx.tokens("b").len(), 1);
    let out = s.handle.store.outbox(100).await.unwrap();
    let logouts: Vec<_> = out.iter().filter(|m| m.channel == "backchannel_logout").collect();
    assert_eq!(logouts.len(), 2, "one per app of the session");
    assert!(logouts.iter().all(|m| m.sent_at.is_some()));
}

async fn sign_out_everywhere_and_revoked_keys_end_every_session(backend: Backend) {
    let rx = Receiver::start(0).await;
    let s = TestServer::start(backend).await;
    let a = app(&s, "app-a", None, Some(rx.uri("a"))).await;
    let p = s.add_person("85073003328", "anna").await;
    let b1 = Browser::new();
    let t1 = tokens_in(&s, &b1, &a, &p).await;
    s.next_step();
    let b2 = Browser::new();
    let t2 = tokens_in(&s, &b2, &a, &p).await;
    assert_ne!(sid(&t1), sid(&t2));

    let account = b1.get(&s.url("/account")).await;
    assert_eq!(account.status, 200);
    let doc = account.html();
    let everywhere = Selector::parse("form[data-action=\"sign-out-everywhere\"]").unwrap();
    assert_eq!(doc.select(&everywhere).count(), 1);
    let out = b1.submit(&s.base, &account, "/account/sign-out-everywhere", &[]).await;
    assert_eq!(out.status, 200, "{}", out.body);
    // Both browsers are logged out, both grants revoked, the app told of both sessions.
    for b in [&b1, &b2] {
        let r = b.get(&s.url("/account")).await;
        assert_eq!(r.location().as_deref(), Some("/login"));
    }
    for t in [&t1, &t2] {
        assert_eq!(refresh(&s, &a, refresh_token(t)).await.status(), 400);
    }
    let got = rx.wait_for("a", 2).await;
    let mut sids: Vec<String> = Vec::new();
    for t in &got {
        sids.push(verified_logout_token(&s, t).await["sid"].as_str().unwrap().to_string());
    }
    sids.sort();
    let mut want = vec![sid(&t1), sid(&t2)];
    want.sort();
    assert_eq!(sids, want);

    // Keys revoked by the office or the command line end the sessions too.
    s.next_step();
    let b3 = Browser::new();
    let t3 = tokens_in(&s, &b3, &a, &p).await;
    cozo_broker::admin::revoke_all_keys(&s.handle.store, &p.insz, s.now()).await.unwrap();
    assert_eq!(refresh(&s, &a, refresh_token(&t3)).await.status(), 400);
    assert_eq!(b3.get(&s.url("/account")).await.location().as_deref(), Some("/login"));
    let got = rx.wait_for("a", 3).await;
    assert_eq!(verified_logout_token(&s, &got[2]).await["sid"], sid(&t3).as_str());
}

async fn apps_page_lists_the_apps_and_revokes_one_alone(backend: Backend) {
    let rx = Receiver::start(0).await;
    let s = TestServer::start(backend).await;
    let a = app(&s, "app-a", Some("Health portal"), Some(rx.uri("a"))).await;
    let c = app(&s, "app-b", None, Some(rx.uri("b"))).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let ta = tokens_in(&s, &b, &a, &p).await;
    let tb = tokens_in(&s, &b, &c, &p).await;
    s.handle.clock.advance(60);
    let tb = refresh(&s, &c, refresh_token(&tb)).await.json::<serde_json::Value>().await.unwrap();

    let page = b.get(&s.url("/account/apps")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let doc = page.html();
    let mut apps: Vec<String> = doc
        .select(&Selector::parse("[data-app]").unwrap())
        .map(|e| e.value().attr("data-app").unwrap().to_string())
        .collect();
    apps.sort();
    assert_eq!(apps, vec!["app-a".to_string(), "app-b".to_string()]);
    assert!(page.body.contains("Health portal"), "the name people see");
    let forms = Selector::parse("form[data-action=\"revoke-app\"]").unwrap();
    assert_eq!(doc.select(&forms).count(), 2);
    let issued = |client: &str| {
        let sel = format!("[data-history=\"{client}\"] [data-issued]");
        doc.select(&Selector::parse(&sel).unwrap()).count()
    };
    assert_eq!((issued("app-a"), issued("app-b")), (1, 2), "a code exchange, then a refresh");

    let revoked = b.submit(&s.base, &page, "/account/apps/app-a/revoke", &[]).await;
    assert_eq!(revoked.location().as_deref(), Some("/account/apps"), "{}", revoked.body);
    // app-a's tokens are revoked and it is told; app-b keeps its grant and hears nothing.
    assert_eq!(refresh(&s, &a, refresh_token(&ta)).await.status(), 400);
    assert_eq!(refresh(&s, &c, refresh_token(&tb)).await.status(), 200);
    let got = rx.wait_for("a", 1).await;
    let claims = verified_logout_token(&s, &got[0]).await;
    assert_eq!(claims["aud"], "app-a");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(rx.tokens("b").is_empty());
    let page = b.get(&s.url("/account/apps")).await;
    let doc = page.html();
    let left: Vec<_> = doc
        .select(&Selector::parse("[data-app]").unwrap())
        .map(|e| e.value().attr("data-app").unwrap().to_string())
        .collect();
    assert_eq!(left, vec!["app-b".to_string()]);
    // The history keeps app-a's issuance.
    assert_eq!(doc.select(&Selector::parse("[data-history=\"app-a\"]").unwrap()).count(), 1);
    // The browser session itself lives on.
    assert_eq!(b.get(&s.url("/account")).await.status, 200);
}

async fn a_person_cannot_see_or_revoke_another_persons_app(backend: Backend) {
    let rx = Receiver::start(0).await;
    let s = TestServer::start(backend).await;
    let a = app(&s, "app-a", None, Some(rx.uri("a"))).await;
    let anna = s.add_person("85073003328", "anna").await;
    let bert = s.add_person("90010112395", "bert").await;
    let ta = tokens_in(&s, &Browser::new(), &a, &anna).await;
    s.next_step();
    let b = Browser::new();
    let bert_login = b.get(&authorize_url(&s, &a, &pkce(), &[])).await;
    assert!(bert_login.location().unwrap().ends_with("/login"));
    key_login(&s, &b, &authorize_url(&s, &a, &pkce(), &[]), &bert).await;
    // Bert's own grant was never redeemed: his page lists no app, and never Anna's.
    let page = b.get(&s.url("/account/apps")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.html().select(&Selector::parse("[data-app]").unwrap()).count(), 0);
    let account = b.get(&s.url("/account")).await;
    let csrf = account.form("/account/logout")[0].1.clone();
    // Revoking Anna's app from Bert's session changes nothing.
    let r = b.post(&s.url("/account/apps/app-a/revoke"), &[("csrf".into(), csrf)]).await;
    assert_eq!(r.status, 404, "{}", r.body);
    // Without the CSRF token: refused as well.
    let r = b.post(&s.url("/account/apps/app-a/revoke"), &[]).await;
    assert_eq!(r.status, 403);
    // Without a session: to the login.
    let r = Browser::new().get(&s.url("/account/apps")).await;
    assert_eq!(r.location().as_deref(), Some("/login"));
    assert_eq!(refresh(&s, &a, refresh_token(&ta)).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(rx.tokens("a").is_empty());
    let out = s.handle.store.outbox(100).await.unwrap();
    assert!(!out.iter().any(|m| m.channel == "backchannel_logout"));
    // The purge keeps the broker session of a live grant: a later logout still finds it.
    s.handle.store.purge_expired(s.now() + 3600).await.unwrap();
    let ended = cozo_broker::oidc::backchannel::end(
        &s.handle.store,
        cozo_broker::store::GrantScope::Person { person_id: &anna_id(&s).await, keep: None },
        s.now(),
    )
    .await
    .unwrap();
    assert_eq!(ended.len(), 1);
}

async fn anna_id(s: &TestServer) -> String {
    let insz = cozo_broker::identity::Insz::parse("85073003328").unwrap();
    s.handle.store.person_by_insz(&insz).await.unwrap().unwrap().id
}

async fn a_key_removed_at_account_ends_the_other_sessions_only(backend: Backend) {
    let rx = Receiver::start(0).await;
    let s = TestServer::start(backend).await;
    let a = app(&s, "app-a", None, Some(rx.uri("a"))).await;
    let p = s.add_person("85073003328", "anna").await;
    s.add_token_key(&p).await;
    // The "lost phone" session, and the person's own browser, both in the app.
    let lost = Browser::new();
    let t_lost = tokens_in(&s, &lost, &a, &p).await;
    s.next_step();
    let own = Browser::new();
    let t_own = tokens_in(&s, &own, &a, &p).await;
    let account = own.get(&s.url("/account")).await;
    let doc = account.html();
    let remove = Selector::parse("form[data-action=\"remove-key\"]").unwrap();
    assert_eq!(doc.select(&remove).count(), 2, "one removal form per key");
    let card = doc
        .select(&Selector::parse("[data-kind=\"token\"]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("data-key")
        .unwrap()
        .to_string();
    let removed = own.submit(&s.base, &account, &format!("/account/keys/{card}/remove"), &[]).await;
    assert_eq!(removed.location().as_deref(), Some("/account"), "{}", removed.body);
    // The other session ended (its grant revoked, the app told); this one stays.
    assert_eq!(lost.get(&s.url("/account")).await.location().as_deref(), Some("/login"));
    assert_eq!(refresh(&s, &a, refresh_token(&t_lost)).await.status(), 400);
    assert_eq!(own.get(&s.url("/account")).await.status, 200);
    assert_eq!(refresh(&s, &a, refresh_token(&t_own)).await.status(), 200);
    let got = rx.wait_for("a", 1).await;
    assert_eq!(verified_logout_token(&s, &got[0]).await["sid"], sid(&t_lost).as_str());
}

/// `Sessions::save` writes what changed, and extends the idle expiry once it lags by more than
/// `EXPIRY_SLACK_S`; an unchanged save in between writes nothing (so it cannot undo a change
/// another request made to the same session meanwhile).
async fn a_save_writes_only_changes_and_moves_the_idle_expiry(backend: Backend) {
    use cozo_broker::session::{Sessions, EXPIRY_SLACK_S};
    let dir = tempfile::tempdir().unwrap();
    let store = cozo_broker::store::Store::connect(&database_url(backend, dir.path()).await, 4)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let sessions = Sessions::new(store.clone(), 3_600);
    let t0 = 1_000_000;
    let created = sessions.create(Default::default(), t0).await.unwrap();
    let expiry = |s: &cozo_broker::session::Session| s.expires_at;
    let row_expiry = || {
        let (store, h) = (store.clone(), created.id_hash());
        async move { store.session(&h, t0).await.unwrap().map(|r| r.expires_at) }
    };
    // Unchanged, within the slack: nothing written, even after another request's change.
    let mut a = sessions.load(&created.id, t0 + 1).await.unwrap().unwrap();
    let mut b = sessions.load(&created.id, t0 + 1).await.unwrap().unwrap();
    b.data.lang = Some(cozo_broker::i18n::Lang::Fr);
    sessions.save(&mut b, t0 + 2).await.unwrap();
    assert_eq!(row_expiry().await, Some(t0 + 2 + 3_600), "a change is written");
    sessions.save(&mut a, t0 + 3).await.unwrap();
    let stored = sessions.load(&created.id, t0 + 4).await.unwrap().unwrap();
    assert_eq!(stored.data.lang, Some(cozo_broker::i18n::Lang::Fr), "not overwritten");
    assert_eq!(expiry(&a), t0 + 3_600, "an unchanged save within the slack moves nothing");
    // Unchanged, but the expiry lags by the slack or more: extended.
    let mut c = sessions.load(&created.id, t0 + 10).await.unwrap().unwrap();
    let later = t0 + 2 + EXPIRY_SLACK_S;
    sessions.save(&mut c, later).await.unwrap();
    assert_eq!(row_expiry().await, Some(later + 3_600));
    assert_eq!(expiry(&c), later + 3_600);
}
