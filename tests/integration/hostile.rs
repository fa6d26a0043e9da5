//! Hostile input: each attack gets a clear error and changes nothing.

use crate::both_backends;
use crate::common::*;
use cozo_broker::admin;
use cozo_broker::assurance::Method;
use cozo_broker::keys::password::{self, Cost};
use cozo_broker::store::KeyStatus;

both_backends!(
    reused_code_is_refused_and_revokes_its_tokens,
    access_token_revoked_only_by_its_own_client,
    reused_refresh_token_revokes_the_family,
    redirect_uri_and_client_checks,
    pkce_is_required_and_checked,
    expired_code_is_refused,
    wrong_password_and_unknown_user_get_the_same_answer,
    wrong_and_replayed_totp,
    concurrent_replay_of_one_totp_code_wins_once,
    lockout_after_five_failures_until_the_lock_ends,
    forms_without_csrf_token_change_nothing,
    oversized_bodies_are_refused_before_parsing,
    refresh_token_of_another_client,
    one_refresh_token_presented_twice_at_once_succeeds_once_and_revokes_its_family,
    one_code_exchanged_twice_at_once_succeeds_once_and_revokes_its_tokens,
    a_refresh_asking_for_more_scope_changes_nothing,
    known_and_unknown_usernames_cost_one_argon2_verification_each,
    a_stolen_session_cannot_remove_a_key,
    token_card_codes_are_stored_as_hmacs_and_old_cards_keep_working,
);

async fn reused_code_is_refused_and_revokes_its_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let pk = pkce();
    let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &c, &pk, &[]), &p).await;
    let code = query(&loc)["code"].clone();
    let first = exchange(&s, &c, &code, &pk.verifier).await;
    assert_eq!(first.status(), 200);
    let t: serde_json::Value = first.json().await.unwrap();
    let second = exchange(&s, &c, &code, &pk.verifier).await;
    assert_eq!(second.status(), 400);
    let e: serde_json::Value = second.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    // What the first exchange issued is revoked.
    let r = refresh(&s, &c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 400);
    let ui = reqwest::Client::new()
        .get(s.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(ui.status(), 401);
}

async fn reused_refresh_token_revokes_the_family(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &c, &p).await;
    let old = t["refresh_token"].as_str().unwrap().to_string();
    let t2: serde_json::Value = refresh(&s, &c, &old).await.json().await.unwrap();
    let newer = t2["refresh_token"].as_str().unwrap().to_string();
    // The old one again: refused, and the newer one (same family) dies with it.
    let reuse = refresh(&s, &c, &old).await;
    assert_eq!(reuse.status(), 400);
    let e: serde_json::Value = reuse.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(refresh(&s, &c, &newer).await.status(), 400);
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "refresh_reuse"), "audited");
    // A made-up token.
    assert_eq!(refresh(&s, &c, "not-a-token").await.status(), 400);
}

async fn redirect_uri_and_client_checks(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let b = Browser::new();
    let pk = pkce();
    // Unregistered redirect URI: an error page, never a redirect.
    let evil = TestClient { redirect_uri: "http://127.0.0.1:9/app/cb/../evil".into(), ..c.clone() };
    let page = b.get(&authorize_url(&s, &evil, &pk, &[])).await;
    assert_eq!(page.status, 400);
    assert!(page.location().is_none());
    assert_eq!(page.data_error().as_deref(), Some("invalid_client"));
    let prefix = TestClient { redirect_uri: format!("{}x", c.redirect_uri), ..c.clone() };
    assert_eq!(b.get(&authorize_url(&s, &prefix, &pk, &[])).await.status, 400);
    // Unknown client.
    let unknown = TestClient { id: "nobody".into(), ..c.clone() };
    assert_eq!(b.get(&authorize_url(&s, &unknown, &pk, &[])).await.status, 400);
    // Wrong response_type / scope: reported to the (registered) redirect URI with state and iss.
    let page = b.get(&authorize_url(&s, &c, &pk, &[("response_type", "token")])).await;
    let loc = page.location().unwrap();
    let q = query(&loc);
    assert!(q.contains_key("error"));
    assert_eq!(q["iss"], s.base);
    // Token endpoint: wrong secret.
    let bad = TestClient { secret: Some("wrong".into()), ..c.clone() };
    let r = exchange(&s, &bad, "x", &pk.verifier).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
}

async fn pkce_is_required_and_checked(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    // No challenge at all.
    let mut url = url::Url::parse(&authorize_url(&s, &c, &pkce(), &[])).unwrap();
    let pairs: Vec<(String, String)> =
        url.query_pairs().into_owned().filter(|(k, _)| !k.starts_with("code_challenge")).collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let q = query(&b.get(url.as_str()).await.location().unwrap());
    assert_eq!(q["error"], "invalid_request");
    // plain method refused.
    let plain = b.get(&authorize_url(&s, &c, &pkce(), &[])).await; // baseline OK
    assert!(plain.location().unwrap().ends_with("/login"));
    let mut url = url::Url::parse(&authorize_url(&s, &c, &pkce(), &[])).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| if k == "code_challenge_method" { (k, "plain".to_string()) } else { (k, v) })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    assert_eq!(query(&b.get(url.as_str()).await.location().unwrap())["error"], "invalid_request");

    // Missing or wrong verifier: refused, and the code still works with the right one.
    let pk = pkce();
    let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &c, &pk, &[]), &p).await;
    let code = query(&loc)["code"].clone();
    let http = reqwest::Client::new();
    let missing = http
        .post(s.url("/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &c.redirect_uri),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let wrong = exchange(&s, &c, &code, &pkce().verifier).await;
    assert_eq!(wrong.status(), 400);
    let e: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(exchange(&s, &c, &code, &pk.verifier).await.status(), 200);
}

async fn expired_code_is_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let pk = pkce();
    let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &c, &pk, &[]), &p).await;
    s.handle.clock.advance(61);
    let r = exchange(&s, &c, &query(&loc)["code"], &pk.verifier).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert!(e["error_description"].as_str().unwrap().contains("expired"));
}

async fn start_key_login(s: &TestServer, b: &Browser) -> Page {
    b.follow(&s.base, b.get(&s.url("/login/key")).await).await
}

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let form = start_key_login(&s, &b).await;
    let wrong = b
        .submit(
            &s.base,
            &form,
            "/login/key",
            &[("username", "anna"), ("password", "nope nope nope")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.data_error().as_deref(), Some("wrong-credentials"));
    let unknown = b
        .submit(
            &s.base,
            &wrong,
            "/login/key",
            &[("username", "nobody"), ("password", "nope nope nope")],
        )
        .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.data_error(), wrong.data_error());
    // Same page, apart from the username echoed back.
    assert_eq!(unknown.body.replace("nobody", "X"), wrong.body.replace("anna", "X"));
}

async fn wrong_and_replayed_totp(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    b.get(&authorize_url(&s, &c, &pkce(), &[])).await;
    let form = start_key_login(&s, &b).await;
    let r = b
        .submit(&s.base, &form, "/login/key", &[("username", "anna"), ("password", &p.password)])
        .await;
    let code_page = b.follow(&s.base, r).await;
    let right = s.code(&p);
    let wrong_code = if right == "000000" { "111111" } else { "000000" };
    let wrong = b
        .submit(&s.base, &code_page, "/login/key/code", &[("method", "totp"), ("code", wrong_code)])
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.data_error().as_deref(), Some("wrong-code"));
    // The right code logs in once...
    let ok =
        b.submit(&s.base, &wrong, "/login/key/code", &[("method", "totp"), ("code", &right)]).await;
    assert!(ok.location().unwrap().starts_with(&c.redirect_uri));
    // ...and the same code (same time step) in another browser is a replay.
    let b2 = Browser::new();
    let form = start_key_login(&s, &b2).await;
    let r = b2
        .submit(&s.base, &form, "/login/key", &[("username", "anna"), ("password", &p.password)])
        .await;
    let code_page = b2.follow(&s.base, r).await;
    let replay = b2
        .submit(&s.base, &code_page, "/login/key/code", &[("method", "totp"), ("code", &right)])
        .await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.data_error().as_deref(), Some("replayed-code"));
}

async fn concurrent_replay_of_one_totp_code_wins_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let mut pages = Vec::new();
    let mut browsers = Vec::new();
    for _ in 0..4 {
        let b = Browser::new();
        let form = start_key_login(&s, &b).await;
        let r = b
            .submit(
                &s.base,
                &form,
                "/login/key",
                &[("username", "anna"), ("password", &p.password)],
            )
            .await;
        pages.push(b.follow(&s.base, r).await);
        browsers.push(b);
    }
    let code = s.code(&p);
    let futs = browsers.iter().zip(pages.iter()).map(|(b, page)| {
        let code = code.clone();
        let base = s.base.clone();
        async move {
            b.submit(&base, page, "/login/key/code", &[("method", "totp"), ("code", &code)]).await
        }
    });
    let results = futures::future::join_all(futs).await;
    let wins = results.iter().filter(|r| r.status == 303).count();
    assert_eq!(wins, 1, "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
}

async fn lockout_after_five_failures_until_the_lock_ends(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let mut page = start_key_login(&s, &b).await;
    for i in 0..5 {
        page = b
            .submit(
                &s.base,
                &page,
                "/login/key",
                &[("username", "anna"), ("password", "wrong password!")],
            )
            .await;
        let expected = if i < 4 { 401 } else { 429 };
        assert_eq!(page.status, expected, "attempt {i}");
    }
    assert_eq!(page.data_error().as_deref(), Some("locked"));
    // Even the right password is refused while locked, with the time it ends.
    let locked = b
        .submit(&s.base, &page, "/login/key", &[("username", "anna"), ("password", &p.password)])
        .await;
    assert_eq!(locked.status, 429);
    assert!(locked.body.contains("blocked until"), "{}", locked.body);
    // An unknown username locks the same way (no account enumeration).
    let mut page = locked;
    for _ in 0..5 {
        page = b
            .submit(
                &s.base,
                &page,
                "/login/key",
                &[("username", "ghost"), ("password", "wrong password!")],
            )
            .await;
    }
    assert_eq!(page.status, 429);
    // After 15 minutes the account opens again.
    s.handle.clock.advance(15 * 60 + 1);
    let open = b
        .submit(&s.base, &page, "/login/key", &[("username", "anna"), ("password", &p.password)])
        .await;
    assert_eq!(open.status, 303, "{}", open.body);
    // Wrong codes count too.
    let code_page = b.follow(&s.base, open).await;
    let mut page = code_page;
    for _ in 0..5 {
        page = b
            .submit(&s.base, &page, "/login/key/code", &[("method", "totp"), ("code", "999999")])
            .await;
    }
    assert_eq!(page.status, 429);
    let right = b
        .submit(&s.base, &page, "/login/key/code", &[("method", "totp"), ("code", &s.code(&p))])
        .await;
    assert_eq!(right.status, 429, "a right code while locked is refused");
}

async fn forms_without_csrf_token_change_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let form = start_key_login(&s, &b).await;
    let no_csrf = b
        .post(
            &s.url("/login/key"),
            &[("username".into(), "anna".into()), ("password".into(), p.password.clone())],
        )
        .await;
    assert_eq!(no_csrf.status, 403);
    assert_eq!(no_csrf.data_error().as_deref(), Some("csrf"));
    let forged = b
        .submit(
            &s.base,
            &form,
            "/login/key",
            &[("csrf", "forged"), ("username", "anna"), ("password", &p.password)],
        )
        .await;
    assert_eq!(forged.status, 403);
    // Nothing happened: the code step is not open.
    let code = b.get(&s.url("/login/key/code")).await;
    assert_eq!(code.location().as_deref(), Some("/login/key"));
    // And no failure was counted against the account.
    let ok = b
        .submit(&s.base, &form, "/login/key", &[("username", "anna"), ("password", &p.password)])
        .await;
    assert_eq!(ok.status, 303);
}

async fn oversized_bodies_are_refused_before_parsing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let big = "a".repeat(300 * 1024);
    let r = reqwest::Client::new()
        .post(s.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

/// RFC 7009 answers 200 to any client, but only the token's own client revokes it (the
/// revocation statement checks the grant's client).
async fn access_token_revoked_only_by_its_own_client(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.add_client("app-a", "portal").await;
    let other = s.add_client("app-b", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &a, &p).await;
    let at = t["access_token"].as_str().unwrap();
    let revoke = |c: &TestClient| {
        reqwest::Client::new()
            .post(s.url("/revoke"))
            .basic_auth(&c.id, c.secret.as_deref())
            .form(&[("token", at), ("token_type_hint", "access_token")])
            .send()
    };
    assert_eq!(revoke(&other).await.unwrap().status(), 200);
    assert_eq!(userinfo_status(&s, at).await, 200, "another client's revocation changed nothing");
    assert_eq!(revoke(&a).await.unwrap().status(), 200);
    assert_eq!(userinfo_status(&s, at).await, 401, "its own client's revocation takes effect");
}

async fn refresh_token_of_another_client(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.add_client("app-a", "portal").await;
    let other = s.add_client("app-b", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &a, &p).await;
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&s, &other, rt).await.status(), 400);
    // Its owner still can: the foreign attempt changed nothing.
    assert_eq!(refresh(&s, &a, rt).await.status(), 200);
}

/// The same request `n` times at the same moment (each on its own connection).
async fn at_once<F, Fut>(n: usize, send: F) -> Vec<reqwest::Response>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = reqwest::Response>,
{
    futures::future::join_all((0..n).map(|_| send())).await
}

async fn userinfo_status(s: &TestServer, access_token: &str) -> u16 {
    let r = reqwest::Client::new().get(s.url("/userinfo")).bearer_auth(access_token).send().await;
    r.unwrap().status().as_u16()
}

/// Issue #18: the one-statement rotation keeps its single-use guarantee under a race. The
/// losers see a used token, which is a reuse: the whole family dies, the winner's new tokens
/// included (as before the change).
async fn one_refresh_token_presented_twice_at_once_succeeds_once_and_revokes_its_family(
    backend: Backend,
) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    for round in 0..3 {
        let t = login_and_exchange(&s, &c, &p).await;
        let rt = t["refresh_token"].as_str().unwrap().to_string();
        let answers = at_once(2 + round, || refresh(&s, &c, &rt)).await;
        let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 400), "{statuses:?}");
        let mut winner = None;
        for r in answers {
            let body: serde_json::Value = r.json().await.unwrap();
            if body.get("access_token").is_some() {
                winner = Some(body);
            } else {
                assert_eq!(body["error"], "invalid_grant", "{body}");
            }
        }
        let winner = winner.unwrap();
        let next = winner["refresh_token"].as_str().unwrap();
        assert_eq!(refresh(&s, &c, next).await.status(), 400, "the family is revoked");
        assert_eq!(userinfo_status(&s, winner["access_token"].as_str().unwrap()).await, 401);
        assert_eq!(userinfo_status(&s, t["access_token"].as_str().unwrap()).await, 401);
        s.next_step(); // a fresh TOTP step for the next login
    }
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "refresh_reuse"), "audited");
}

/// Issue #18: the one-statement code redemption under a race: one exchange wins, and a loser
/// revokes what the winner got (a second use of a code, as before the change).
async fn one_code_exchanged_twice_at_once_succeeds_once_and_revokes_its_tokens(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    for round in 0..3 {
        let pk = pkce();
        let loc = key_login(&s, &Browser::new(), &authorize_url(&s, &c, &pk, &[]), &p).await;
        let code = query(&loc)["code"].clone();
        let answers = at_once(2 + round, || exchange(&s, &c, &code, &pk.verifier)).await;
        let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        let mut winner = None;
        for r in answers {
            let body: serde_json::Value = r.json().await.unwrap();
            if body.get("access_token").is_some() {
                winner = Some(body);
            } else {
                assert_eq!(body["error"], "invalid_grant", "{body}");
            }
        }
        let winner = winner.unwrap();
        assert_eq!(refresh(&s, &c, winner["refresh_token"].as_str().unwrap()).await.status(), 400);
        assert_eq!(userinfo_status(&s, winner["access_token"].as_str().unwrap()).await, 401);
        s.next_step(); // a fresh TOTP step for the next login
    }
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "code_reuse"), "audited");
}

/// A refresh may narrow the scope, never widen it; a refresh asking for more is refused and
/// leaves the token usable.
async fn a_refresh_asking_for_more_scope_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let c = s.add_client("app", "portal").await;
    let p = s.add_person("85073003328", "anna").await;
    let t = login_and_exchange(&s, &c, &p).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let wider = reqwest::Client::new()
        .post(s.url("/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("scope", "openid professions"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wider.status(), 400);
    let e: serde_json::Value = wider.json().await.unwrap();
    assert_eq!(e["error"], "invalid_scope");
    let narrower = reqwest::Client::new()
        .post(s.url("/token"))
        .basic_auth(&c.id, c.secret.as_deref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt), ("scope", "openid insz")])
        .send()
        .await
        .unwrap();
    assert_eq!(narrower.status(), 200, "the refused refresh did not use the token");
}

/// `cozo_password_hash_verifications_total{cost="…"}` on `/metrics` (0 when not counted yet).
async fn verifications(s: &TestServer, cost: &str) -> u64 {
    let text = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    let series = format!("cozo_password_hash_verifications_total{{cost=\"{cost}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.trim().parse().unwrap())
}

/// Issue #15 (11), SPEC §6: a wrong password costs the same argon2 work whether the username
/// exists or not (one verification, with the configured cost); proved by counting, not timing.
async fn known_and_unknown_usernames_cost_one_argon2_verification_each(backend: Backend) {
    let s = TestServer::start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let mut page = start_key_login(&s, &b).await;
    let too_long = "x".repeat(65);
    for user in ["anna", "nobody", "ANNA ", too_long.as_str(), ""] {
        let (configured, outdated) =
            (verifications(&s, "configured").await, verifications(&s, "outdated").await);
        page = b
            .submit(&s.base, &page, "/login/key", &[("username", user), ("password", "nope nope")])
            .await;
        assert_eq!(page.status, 401, "{user:?}");
        assert_eq!(page.data_error().as_deref(), Some("wrong-credentials"), "{user:?}");
        assert_eq!(verifications(&s, "configured").await, configured + 1, "{user:?}");
        assert_eq!(verifications(&s, "outdated").await, outdated, "{user:?}");
    }

    // A hash made before a cost change costs other work: counted as outdated, and replaced by
    // one with the configured cost at the next right password.
    let cfg = &s.handle.cfg.login;
    let configured = Cost { m_kib: cfg.argon2_m_kib, t: cfg.argon2_t, p: cfg.argon2_p };
    let older = Cost { t: configured.t + 1, ..configured };
    let store = &s.handle.store;
    let mut account = store.account_by_username("anna").await.unwrap().unwrap();
    account.password_hash = password::hash(older, &p.password).unwrap();
    store.update_account(&account).await.unwrap();
    let before = verifications(&s, "outdated").await;
    let b = Browser::new();
    let form = start_key_login(&s, &b).await;
    let right = b
        .submit(&s.base, &form, "/login/key", &[("username", "anna"), ("password", &p.password)])
        .await;
    assert_eq!(right.location().as_deref(), Some("/login/key/code"), "{}", right.body);
    assert_eq!(verifications(&s, "outdated").await, before + 1);
    let upgraded = store.account_by_username("anna").await.unwrap().unwrap().password_hash;
    assert!(password::uses_cost(&upgraded, configured), "{upgraded}");
    assert!(password::verify(&upgraded, &p.password));
    let before = verifications(&s, "configured").await;
    let form = start_key_login(&s, &b).await;
    let r = b
        .submit(&s.base, &form, "/login/key", &[("username", "anna"), ("password", "nope nope")])
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(verifications(&s, "configured").await, before + 1);
}

/// The account, its app key and its card (a person with both).
async fn person_with_card(
    s: &TestServer,
) -> (TestPerson, std::collections::BTreeMap<i64, String>, String, String) {
    let p = s.add_person("85073003328", "anna").await;
    let h = &s.handle;
    let card = admin::add_token_key(&h.store, &h.master, &h.cfg, &p.insz, "anna", None, s.now())
        .await
        .unwrap();
    let account = h.store.account_by_username("anna").await.unwrap().unwrap();
    let keys = h.store.keys_of_account(&account.id).await.unwrap();
    let id = |kind: Method| keys.iter().find(|k| k.kind == kind).unwrap().id.clone();
    (p, card, id(Method::Totp), id(Method::Token))
}

/// Logs in with the card at the position the broker asks; returns the answer.
async fn card_login(
    s: &TestServer,
    b: &Browser,
    code_page: &Page,
    card: &std::collections::BTreeMap<i64, String>,
) -> Page {
    let asked =
        b.submit(&s.base, code_page, "/login/key/code", &[("method", "token"), ("code", "")]).await;
    let sel = scraper::Selector::parse("[data-token-position]").unwrap();
    let pos: i64 = asked
        .html()
        .select(&sel)
        .next()
        .and_then(|e| e.value().attr("data-token-position").map(str::to_string))
        .unwrap_or_else(|| panic!("no position asked: {}", asked.body))
        .parse()
        .unwrap();
    b.submit(&s.base, &asked, "/login/key/code", &[("method", "token"), ("code", &card[&pos])])
        .await
}

async fn active_kinds(s: &TestServer) -> Vec<String> {
    let account = s.handle.store.account_by_username("anna").await.unwrap().unwrap();
    let keys = s.handle.store.keys_of_account(&account.id).await.unwrap();
    let mut kinds: Vec<String> = keys
        .into_iter()
        .filter(|k| k.status == KeyStatus::Active)
        .map(|k| k.kind.to_string())
        .collect();
    kinds.sort();
    kinds
}

/// Issue #15 (2): removing a key needs what adding one needs, a login at substantial or higher
/// within ten minutes. With a session logged in by the card (low), or a substantial one left
/// open for eleven minutes (a stolen or forgotten session), the app key cannot be removed.
async fn a_stolen_session_cannot_remove_a_key(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (p, card, app, card_key) = person_with_card(&s).await;
    let both = vec!["token".to_string(), "totp".to_string()];

    // A session logged in with the card: low.
    let b = Browser::new();
    let code_page = password_step(&s, &b, &p).await;
    let done = card_login(&s, &b, &code_page, &card).await;
    assert_eq!(done.location().as_deref(), Some("/account"), "{}", done.body);
    let account = b.get(&s.url("/account")).await;
    assert_eq!(account.status, 200);
    let remove_app = format!("/account/keys/{app}/remove");
    let refused = b.submit(&s.base, &account, &remove_app, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.data_error().as_deref(), Some("reauth"));
    assert!(refused.body.contains("href=\"/account/login\""), "{}", refused.body);
    assert_eq!(active_kinds(&s).await, both, "the app key stays");

    // A substantial login, eleven minutes old.
    s.next_step();
    let b = Browser::new();
    let code_page = password_step(&s, &b, &p).await;
    let done = submit_totp(&s.base, &b, &code_page, &s.code(&p)).await;
    assert_eq!(done.location().as_deref(), Some("/account"), "{}", done.body);
    s.handle.clock.advance(11 * 60);
    let account = b.get(&s.url("/account")).await;
    assert_eq!(account.status, 200);
    for key in [&app, &card_key] {
        let stale = b.submit(&s.base, &account, &format!("/account/keys/{key}/remove"), &[]).await;
        assert_eq!(stale.status, 403, "{}", stale.body);
        assert_eq!(stale.data_error().as_deref(), Some("reauth"));
    }
    assert_eq!(active_kinds(&s).await, both);
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == "key-change" && e.outcome == "removed"));

    // Logging in again with the app key (the refusal page's link) allows it.
    let again = b.follow(&s.base, b.get(&s.url("/account/login")).await).await;
    assert!(again.url.ends_with("/login"), "{}", again.url);
    s.next_step();
    let code_page = password_step(&s, &b, &p).await;
    let done = submit_totp(&s.base, &b, &code_page, &s.code(&p)).await;
    assert_eq!(done.location().as_deref(), Some("/account"), "{}", done.body);
    let account = b.get(&s.url("/account")).await;
    let removed =
        b.submit(&s.base, &account, &format!("/account/keys/{card_key}/remove"), &[]).await;
    assert_eq!(removed.location().as_deref(), Some("/account"), "{}", removed.body);
    assert_eq!(active_kinds(&s).await, vec!["totp".to_string()]);
}

/// Issue #15 (4): a card's codes (about 30 bits each) are kept as HMACs under a key derived
/// from the master key, never as a plain SHA-256 that a leaked table would give away in
/// seconds; cards issued before (plain SHA-256) keep working until replaced.
async fn token_card_codes_are_stored_as_hmacs_and_old_cards_keep_working(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (p, card, _app, card_key) = person_with_card(&s).await;
    let store = &s.handle.store;
    for (pos, code) in &card {
        let (stored, _) = store.token_code_hash(&card_key, *pos).await.unwrap().unwrap();
        assert!(stored.starts_with("v2:"), "{stored}");
        assert_ne!(stored, cozo_broker::crypto::token_hash(code), "a plain SHA-256");
        assert!(!stored.contains(&cozo_broker::crypto::token_hash(code)));
        assert!(!stored.to_uppercase().contains(code.as_str()));
    }
    let b = Browser::new();
    let code_page = password_step(&s, &b, &p).await;
    let done = card_login(&s, &b, &code_page, &card).await;
    assert_eq!(done.location().as_deref(), Some("/account"), "{}", done.body);

    // A card issued before the fix: its rows hold SHA-256 of the codes.
    let now = s.now();
    let bob = s.add_person("90010112395", "bob").await;
    let account = store.account_by_username("bob").await.unwrap().unwrap();
    let old_id = "old-card-of-bob";
    store
        .insert_key(&cozo_broker::store::KeyRow {
            id: old_id.into(),
            account_id: account.id.clone(),
            kind: Method::Token,
            status: KeyStatus::Active,
            secret_enc: None,
            phone: None,
            data: None,
            last_step: 0,
            created_at: now,
        })
        .await
        .unwrap();
    let old: std::collections::BTreeMap<i64, String> =
        (1..=24).map(|pos| (pos, format!("ABC{pos:03}"))).collect();
    let rows: Vec<(i64, String)> =
        old.iter().map(|(pos, c)| (*pos, cozo_broker::crypto::token_hash(c))).collect();
    store.insert_token_codes(old_id, &rows).await.unwrap();
    let b = Browser::new();
    let code_page = password_step(&s, &b, &bob).await;
    let done = card_login(&s, &b, &code_page, &old).await;
    assert_eq!(done.location().as_deref(), Some("/account"), "old card: {}", done.body);
    // A wrong code on the old card is still wrong.
    let b = Browser::new();
    let code_page = password_step(&s, &b, &bob).await;
    let wrong: std::collections::BTreeMap<i64, String> =
        (1..=24).map(|pos| (pos, "ZZZZZZ".to_string())).collect();
    let r = card_login(&s, &b, &code_page, &wrong).await;
    assert_eq!(r.status, 401, "{}", r.body);
}
