//! Registration offices and activation (SPEC §7): the whole journey from the desk to a login
//! with every kind of key, and the attacks on it.

use crate::both_backends;
use crate::common::*;
use cozo_broker::admin;
use cozo_broker::assurance::Method;
use cozo_broker::store::{KeyStatus, RegistrationStatus};
use reqwest::StatusCode;
use scraper::Selector;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

both_backends!(
    full_journey_from_the_desk_to_a_login_with_every_key,
    account_adds_a_key_after_a_fresh_strong_login_and_removes_one,
    codes_and_links_resist_guessing_reuse_and_expiry,
    operators_see_only_their_office_and_need_substantial,
    unconfirmed_keys_never_log_in_and_the_last_key_stays,
    a_lost_device_is_revoked_by_the_office_and_reactivated,
    after_the_token_card_the_next_key_can_be_added,
    forged_office_forms_change_nothing,
    forged_activation_forms_change_nothing,
    an_enrolment_ends_after_an_hour,
);

const OPERATOR: &str = "90010112395";
const OTHER_OPERATOR: &str = "85073003328";
const NEWCOMER_BIS: &str = "85273004559";

/// A server whose public URL is `localhost` (WebAuthn needs a domain name).
async fn start(backend: Backend) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    TestServer::start_on(backend, listener, |cfg| {
        cfg.server.public_url = url::Url::parse(&format!("http://localhost:{port}")).unwrap();
    })
    .await
}

fn attr(page: &Page, selector: &str, name: &str) -> Option<String> {
    let doc = page.html();
    let sel = Selector::parse(selector).unwrap();
    doc.select(&sel).next().and_then(|e| e.value().attr(name).map(str::to_string))
}

/// An operator with an app key, logged in at `/office` in `b`.
async fn operator_logged_in(
    s: &TestServer,
    b: &Browser,
    insz: &str,
    user: &str,
    office: &str,
) -> TestPerson {
    let op = s.add_person(insz, user).await;
    admin::add_operator(&s.handle.store, insz, office, s.now()).await.unwrap();
    let first = b.follow(&s.base, b.get(&s.url("/office")).await).await;
    assert!(first.url.ends_with("/login"), "not sent to log in: {}", first.url);
    let code_page = password_step(s, b, &op).await;
    let back = submit_totp(&s.base, b, &code_page, &s.code(&op)).await;
    assert_eq!(back.location().as_deref(), Some("/office"), "{}", back.body);
    s.next_step();
    op
}

async fn register(s: &TestServer, b: &Browser, insz: &str, email: &str) -> Page {
    let form = b.get(&s.url("/office/register")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    b.submit(
        &s.base,
        &form,
        "/office/register",
        &[
            ("insz", insz),
            ("family_name", "Rossi"),
            ("given_names", "Sofia"),
            ("birthdate", "1985-07-30"),
            ("nationality", "it"),
            ("document_type", "passport"),
            ("document_number", "YA1234567"),
            ("email", email),
            ("mobile", "+39 333 123 4567"),
            ("language", "en"),
        ],
    )
    .await
}

/// Opens the link and types the code; returns the username/password page.
async fn open(s: &TestServer, b: &Browser, link: &str, code: &str) -> Page {
    let form = b.get(&s.url(link)).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    b.submit(&s.base, &form, link, &[("code", code)]).await
}

async fn choose_account(s: &TestServer, b: &Browser, user: &str, password: &str) -> Page {
    let page = b.get(&s.url("/activate/account")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let done = b
        .submit(
            &s.base,
            &page,
            "/activate/account",
            &[("username", user), ("password", password), ("password_confirm", password)],
        )
        .await;
    assert_eq!(done.location().as_deref(), Some("/activate/keys"), "{}", done.body);
    b.get(&s.url("/activate/keys")).await
}

fn origin(s: &TestServer) -> url::Url {
    s.handle.cfg.server.public_url.clone()
}

async fn claims_after(s: &TestServer, c: &TestClient, pk: &Pkce, done: Page) -> serde_json::Value {
    let done = b_follow_to_client(s, done).await;
    let code = query(&done)["code"].clone();
    let resp = exchange(s, c, &code, &pk.verifier).await;
    assert_eq!(resp.status(), 200);
    let tokens: serde_json::Value = resp.json().await.unwrap();
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

async fn b_follow_to_client(_s: &TestServer, done: Page) -> String {
    done.location().unwrap_or_else(|| panic!("no redirect: {} {}", done.status, done.body))
}

async fn full_journey_from_the_desk_to_a_login_with_every_key(backend: Backend) {
    let s = start(backend).await;
    let portal = s.add_client("portal-app", "portal").await;
    let desk = Browser::new();
    operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;

    // Registration: the result page shows the code once, with its expiry and instructions.
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.body);
    let code = attr(&result, "[data-activation-code]", "data-activation-code")
        .unwrap_or_else(|| panic!("no code: {}", result.body));
    assert_eq!(code.len(), 14, "{code}");
    assert!(result.body.contains("sofia@example.it"));
    // The office list shows it; the audit names the operator.
    let list = desk.get(&s.url("/office")).await;
    assert!(list.body.contains("Sofia Rossi"), "{}", list.body);
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "office_registration" && e.detail.contains("operator")));
    // A second live registration for the same person is refused.
    let again = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.data_error().as_deref(), Some("duplicate"));

    // The person: link from the mail + code from the paper.
    let link = mailed_link(&s, "sofia@example.it").await;
    let person = Browser::new();
    let opened = open(&s, &person, &link, &code.to_lowercase()).await;
    assert_eq!(opened.location().as_deref(), Some("/activate/account"), "{}", opened.body);
    // Password rules: too short, containing the username, common.
    let acct_page = person.get(&s.url("/activate/account")).await;
    for (pw, why) in
        [("short", "password"), ("sofia.rossi-2026!", "password"), ("password1234", "password")]
    {
        let r = person
            .submit(
                &s.base,
                &acct_page,
                "/activate/account",
                &[("username", "sofia.rossi"), ("password", pw), ("password_confirm", pw)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{pw}");
        assert_eq!(r.data_error().as_deref(), Some(why));
    }
    let password = "Lungo e sicuro, 2026";
    let keys_page = choose_account(&s, &person, "sofia.rossi", password).await;
    assert!(keys_page.body.contains("data-ehealth-note"));

    // TOTP: QR + secret, active only after the first code.
    let totp = person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "totp")]).await;
    let secret = attr(&totp, "[data-totp-secret]", "data-totp-secret").unwrap();
    let uri = attr(&totp, "[data-otpauth-uri]", "data-otpauth-uri").unwrap();
    assert!(uri.starts_with("otpauth://totp/") && uri.contains(&secret), "{uri}");
    assert!(attr(&totp, "img[data-totp-qr]", "src")
        .unwrap()
        .starts_with("data:image/svg+xml;base64,"));
    let secret = cozo_broker::keys::totp::decode_base32(&secret).unwrap();
    let wrong = person.submit(&s.base, &totp, "/activate/keys/totp", &[("code", "000000")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let now_code = cozo_broker::keys::totp::code_at(&secret, s.now());
    let ok = person.submit(&s.base, &wrong, "/activate/keys/totp", &[("code", &now_code)]).await;
    assert_eq!(ok.location().as_deref(), Some("/activate/keys"), "{}", ok.body);

    // SMS: number prefilled from the registration, confirmed by a code.
    let keys_page = person.get(&s.url("/activate/keys")).await;
    let sms = person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "sms")]).await;
    let sent = person.submit(&s.base, &sms, "/activate/keys/sms", &[]).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    let sms_code = last_sms_code(&s, "+393331234567").await;
    let ok = person.submit(&s.base, &sent, "/activate/keys/sms", &[("code", &sms_code)]).await;
    assert_eq!(ok.location().as_deref(), Some("/activate/keys"), "{}", ok.body);

    // Token: a card of 24 numbered codes.
    let keys_page = person.get(&s.url("/activate/keys")).await;
    let card_page = person
        .follow(
            &s.base,
            person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "token")]).await,
        )
        .await;
    let doc = card_page.html();
    let sel = Selector::parse("[data-position]").unwrap();
    let card: std::collections::HashMap<String, String> = doc
        .select(&sel)
        .map(|e| (e.value().attr("data-position").unwrap().to_string(), e.text().collect()))
        .collect();
    assert_eq!(card.len(), 24);

    // WebAuthn: a software passkey registers.
    let keys_page = person.get(&s.url("/activate/keys")).await;
    let wa_page =
        person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "webauthn")]).await;
    let challenge: CreationChallengeResponse = serde_json::from_str(
        &attr(&wa_page, "[data-webauthn-create]", "data-webauthn-create").unwrap(),
    )
    .unwrap();
    let mut authenticator = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let answer = authenticator.do_registration(origin(&s), challenge).unwrap();
    let ok = person
        .submit(
            &s.base,
            &wa_page,
            "/activate/keys/webauthn",
            &[("credential", &serde_json::to_string(&answer).unwrap())],
        )
        .await;
    assert_eq!(ok.location().as_deref(), Some("/activate/keys"), "{}", ok.body);

    let keys_page = person.get(&s.url("/activate/keys")).await;
    assert_eq!(keys_page.html().select(&Selector::parse("[data-active-key]").unwrap()).count(), 4);
    let done = person.submit(&s.base, &keys_page, "/activate/finish", &[]).await;
    assert_eq!(done.data_error().as_deref(), Some("activated"), "{}", done.body);
    // The link is used up.
    let reused = person.get(&s.url(&link)).await;
    assert_eq!(reused.data_error().as_deref(), Some("unusable"), "{}", reused.body);

    // A login to an app with each key: acr/amr per SPEC §3.
    for (method, level) in
        [("totp", "substantial"), ("sms", "low"), ("token", "low"), ("webauthn", "substantial")]
    {
        s.next_step();
        let b = Browser::new();
        let pk = pkce();
        let code_page =
            to_code_page(&s, &b, &authorize_url(&s, &portal, &pk, &[]), &("sofia.rossi", password))
                .await;
        assert!(code_page.body.contains(&format!("value=\"{method}\"")), "{method} not offered");
        let done = match method {
            "totp" => {
                let c = cozo_broker::keys::totp::code_at(&secret, s.now());
                submit_totp(&s.base, &b, &code_page, &c).await
            }
            "sms" => {
                let asked = b
                    .submit(
                        &s.base,
                        &code_page,
                        "/login/key/code",
                        &[("method", "sms"), ("code", "")],
                    )
                    .await;
                let c = last_sms_code(&s, "+393331234567").await;
                b.submit(&s.base, &asked, "/login/key/code", &[("method", "sms"), ("code", &c)])
                    .await
            }
            "token" => {
                let asked = b
                    .submit(
                        &s.base,
                        &code_page,
                        "/login/key/code",
                        &[("method", "token"), ("code", "")],
                    )
                    .await;
                let pos = attr(&asked, "[data-token-position]", "data-token-position").unwrap();
                let c = card[&pos].clone();
                b.submit(&s.base, &asked, "/login/key/code", &[("method", "token"), ("code", &c)])
                    .await
            }
            _ => {
                let asked = b
                    .submit(
                        &s.base,
                        &code_page,
                        "/login/key/code",
                        &[("method", "webauthn"), ("code", "")],
                    )
                    .await;
                let req: RequestChallengeResponse = serde_json::from_str(
                    &attr(&asked, "[data-webauthn-get]", "data-webauthn-get").unwrap(),
                )
                .unwrap();
                let answer = authenticator.do_authentication(origin(&s), req).unwrap();
                let json = serde_json::to_string(&answer).unwrap();
                let done = b
                    .post(
                        &s.url("/login/key/code"),
                        &[
                            ("csrf".into(), asked.form("/login/key/code")[0].1.clone()),
                            ("method".into(), "webauthn".into()),
                            ("code".into(), json.clone()),
                        ],
                    )
                    .await;
                done
            }
        };
        let claims = claims_after(&s, &portal, &pk, done).await;
        assert_eq!(claims["acr"], format!("http://eidas.europa.eu/LoA/{level}"), "{method}");
        assert_eq!(claims["amr"], serde_json::json!(["pwd", method]), "{method}");
    }
}

async fn codes_and_links_resist_guessing_reuse_and_expiry(backend: Backend) {
    let s = start(backend).await;
    let desk = Browser::new();
    operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    let code = attr(&result, "[data-activation-code]", "data-activation-code").unwrap();
    let reg_id = attr(&result, "[data-registration]", "data-registration").unwrap();
    let link = mailed_link(&s, "sofia@example.it").await;
    let person = Browser::new();

    // A link alone opens nothing.
    let form = person.get(&s.url(&link)).await;
    let no_code = person.submit(&s.base, &form, &link, &[("code", "")]).await;
    assert_eq!(no_code.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_code.data_error().as_deref(), Some("activate-code-required"));
    assert_eq!(person.get(&s.url("/activate/account")).await.status, StatusCode::FORBIDDEN);

    // A forged link is refused like a used one.
    let forged = person.get(&s.url(&format!("/activate/{}", "A".repeat(43)))).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);

    // Five wrong codes lock the link; then even the right code is refused.
    for i in 0..5 {
        let r = person.submit(&s.base, &form, &link, &[("code", "ABCD-EFGH-JKMN")]).await;
        if i < 4 {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "try {i}");
        } else {
            assert_eq!(r.data_error().as_deref(), Some("locked"), "{}", r.body);
        }
    }
    let right = person.submit(&s.base, &form, &link, &[("code", &code)]).await;
    assert_eq!(right.data_error().as_deref(), Some("locked"));
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "lockout"));

    // The office re-issues: the old link and code stop working, the new ones work once.
    s.handle.clock.advance(1);
    let page = desk.get(&s.url(&format!("/office/registrations/{reg_id}"))).await;
    let reissued =
        desk.submit(&s.base, &page, &format!("/office/registrations/{reg_id}/reissue"), &[]).await;
    let code2 = attr(&reissued, "[data-activation-code]", "data-activation-code").unwrap();
    assert_ne!(code, code2);
    let link2 = mailed_link(&s, "sofia@example.it").await;
    assert_ne!(link, link2);
    assert_eq!(person.get(&s.url(&link)).await.status, StatusCode::NOT_FOUND);
    let with_old_code = open(&s, &person, &link2, &code).await;
    assert_eq!(with_old_code.status, StatusCode::UNAUTHORIZED);
    let opened = open(&s, &person, &link2, &code2).await;
    assert_eq!(opened.location().as_deref(), Some("/activate/account"));
    // Used once: another browser with the same link and code gets nothing.
    let other = Browser::new();
    assert_eq!(other.get(&s.url(&link2)).await.status, StatusCode::GONE);

    // Expiry (clock injected): a fresh registration's link is dead after 14 days.
    let result = register(&s, &desk, "85073003328", "jan@example.be").await;
    let code3 = attr(&result, "[data-activation-code]", "data-activation-code").unwrap();
    let link3 = mailed_link(&s, "jan@example.be").await;
    s.handle.clock.advance(14 * 24 * 3600 + 1);
    let late = Browser::new();
    let page = late.get(&s.url(&link3)).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert_eq!(page.data_error().as_deref(), Some("expired"));
    let _ = code3;
    // Nothing secret in the store: neither code nor link token appears in any column we keep.
    let reg = s.handle.store.registration(&reg_id).await.unwrap().unwrap();
    assert!(reg.code_hash.is_none() && reg.link_hash.as_deref() != Some(&link2[10..]));
    assert_eq!(reg.document_hint, "…567");
    // The periodic purge removes expired registrations (their hashes with them).
    let purged = s
        .handle
        .store
        .purge_registrations(s.now(), cozo_broker::office::KEEP_DONE_S)
        .await
        .unwrap();
    assert!(purged >= 2, "{purged}");
    assert!(s.handle.store.registration(&reg_id).await.unwrap().is_none());
}

async fn operators_see_only_their_office_and_need_substantial(backend: Backend) {
    let s = start(backend).await;
    let desk_a = Browser::new();
    operator_logged_in(&s, &desk_a, OPERATOR, "clerk-a", "Office A").await;
    let result = register(&s, &desk_a, NEWCOMER_BIS, "sofia@example.it").await;
    let reg_id = attr(&result, "[data-registration]", "data-registration").unwrap();

    let desk_b = Browser::new();
    operator_logged_in(&s, &desk_b, OTHER_OPERATOR, "clerk-b", "Office B").await;
    let list_b = desk_b.get(&s.url("/office")).await;
    assert!(!list_b.body.contains("Sofia"), "another office's registration is listed");
    let peek = desk_b.get(&s.url(&format!("/office/registrations/{reg_id}"))).await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    let csrf = list_b.html().select(&Selector::parse("a").unwrap()).count();
    let _ = csrf;
    let form = desk_b.get(&s.url("/office/register")).await;
    let token = form.form("/office/register").into_iter().find(|(k, _)| k == "csrf").unwrap().1;
    let reissue = desk_b
        .post(&s.url(&format!("/office/registrations/{reg_id}/reissue")), &[("csrf".into(), token)])
        .await;
    assert_eq!(reissue.status, StatusCode::NOT_FOUND);
    // B registering the same person is refused, without a link to A's registration.
    let dup = register(&s, &desk_b, NEWCOMER_BIS, "sofia@example.it").await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(!dup.body.contains(&reg_id));

    // An operator whose login is below substantial is refused (SMS login for an app first).
    let low = Browser::new();
    let op = s.add_person("80041520187", "clerk-c").await;
    admin::add_operator(&s.handle.store, "80041520187", "Office A", s.now()).await.unwrap();
    s.add_sms_key(&op, "+32470000001").await;
    let portal = s.add_client("portal-app", "portal").await;
    let pk = pkce();
    let code_page = to_code_page(&s, &low, &authorize_url(&s, &portal, &pk, &[]), &op).await;
    let asked = low
        .submit(&s.base, &code_page, "/login/key/code", &[("method", "sms"), ("code", "")])
        .await;
    let c = last_sms_code(&s, "+32470000001").await;
    let done =
        low.submit(&s.base, &asked, "/login/key/code", &[("method", "sms"), ("code", &c)]).await;
    assert!(done.location().unwrap().contains("code="));
    let refused = low.get(&s.url("/office")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.data_error().as_deref(), Some("level-too-low"));
    // Logging in again for the office offers only strong keys.
    let again = low.follow(&s.base, low.get(&s.url("/office/login")).await).await;
    assert!(again.url.ends_with("/login"));
    let code_page = password_step(&s, &low, &op).await;
    assert!(!code_page.body.contains("value=\"sms\""), "SMS offered for the office");
    let sms_try = low
        .submit(&s.base, &code_page, "/login/key/code", &[("method", "sms"), ("code", "")])
        .await;
    assert_eq!(sms_try.status, StatusCode::FORBIDDEN);
    // A person who is not an operator gets a clear refusal.
    let stranger = Browser::new();
    let p = s.add_person("75021500171", "stranger").await;
    let first = stranger.follow(&s.base, stranger.get(&s.url("/office")).await).await;
    assert!(first.url.ends_with("/login"));
    let code_page = password_step(&s, &stranger, &p).await;
    let back = submit_totp(&s.base, &stranger, &code_page, &s.code(&p)).await;
    let page = stranger.follow(&s.base, back).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(page.data_error().as_deref(), Some("not-operator"));
}

async fn unconfirmed_keys_never_log_in_and_the_last_key_stays(backend: Backend) {
    let s = start(backend).await;
    let portal = s.add_client("portal-app", "portal").await;
    let desk = Browser::new();
    operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    let code = attr(&result, "[data-activation-code]", "data-activation-code").unwrap();
    let link = mailed_link(&s, "sofia@example.it").await;
    let person = Browser::new();
    open(&s, &person, &link, &code).await;
    let password = "Lungo e sicuro, 2026";
    let keys_page = choose_account(&s, &person, "sofia.rossi", password).await;
    // Finishing without any key is refused.
    let csrf = keys_page.form("/activate/keys").into_iter().find(|(k, _)| k == "csrf").unwrap().1;
    let none = person.post(&s.url("/activate/finish"), &[("csrf".into(), csrf)]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(none.data_error().as_deref(), Some("enrol-need-one-key"));
    // TOTP shown but never confirmed; then a token card.
    let totp = person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "totp")]).await;
    let secret = attr(&totp, "[data-totp-secret]", "data-totp-secret").unwrap();
    let secret = cozo_broker::keys::totp::decode_base32(&secret).unwrap();
    let keys_page = person.get(&s.url("/activate/keys")).await;
    person
        .follow(
            &s.base,
            person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "token")]).await,
        )
        .await;
    let keys_page = person.get(&s.url("/activate/keys")).await;
    let done = person.submit(&s.base, &keys_page, "/activate/finish", &[]).await;
    assert_eq!(done.data_error().as_deref(), Some("activated"));

    // The unconfirmed app key is not offered and its code does not log in.
    let b = Browser::new();
    let pk = pkce();
    let code_page =
        to_code_page(&s, &b, &authorize_url(&s, &portal, &pk, &[]), &("sofia.rossi", password))
            .await;
    assert!(!code_page.body.contains("value=\"totp\""));
    let c = cozo_broker::keys::totp::code_at(&secret, s.now());
    let r = submit_totp(&s.base, &b, &code_page, &c).await;
    assert!(r.location().is_none_or(|l| !l.contains("code=")), "an unconfirmed key logged in");

    // Log in with the card; at /account the only key cannot be removed.
    let card_key = s.handle.store.account_by_username("sofia.rossi").await.unwrap().unwrap();
    let active: Vec<_> = s
        .handle
        .store
        .keys_of_account(&card_key.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.status == KeyStatus::Active)
        .collect();
    assert_eq!(active.len(), 1, "only the card is active");
    let b = Browser::new();
    let code_page = password_step(&s, &b, &("sofia.rossi", password)).await;
    assert!(code_page.body.contains("value=\"token\""));
    let account = b.get(&s.url("/account")).await;
    assert!(account.url.ends_with("/account"));
    let _ = account;
    // The removal is refused without a login, and with one for the last key.
    let csrf = code_page.form("/login/key/code").into_iter().find(|(k, _)| k == "csrf").unwrap().1;
    let r = b
        .post(&s.url(&format!("/account/keys/{}/remove", active[0].id)), &[("csrf".into(), csrf)])
        .await;
    assert_eq!(r.location().as_deref(), Some("/login"));
    assert!(!s
        .handle
        .store
        .revoke_key_unless_last(&active[0].id, &card_key.id, s.now())
        .await
        .unwrap());
}

async fn account_adds_a_key_after_a_fresh_strong_login_and_removes_one(backend: Backend) {
    let s = start(backend).await;
    let p = s.add_person("85073003328", "anna").await;
    let b = Browser::new();
    let code_page = password_step(&s, &b, &p).await;
    let done = submit_totp(&s.base, &b, &code_page, &s.code(&p)).await;
    assert_eq!(done.location().as_deref(), Some("/account"));
    let account = b.get(&s.url("/account")).await;
    assert_eq!(account.html().select(&Selector::parse("[data-key]").unwrap()).count(), 1);
    // The only key has no remove button.
    assert!(!account.body.contains("/remove"));

    // Fresh and substantial: the key pages open for this account (no new password asked).
    let added = b.submit(&s.base, &account, "/account/keys/add", &[]).await;
    assert_eq!(added.location().as_deref(), Some("/activate/keys"), "{}", added.body);
    let keys_page = b.get(&s.url("/activate/keys")).await;
    b.follow(&s.base, b.submit(&s.base, &keys_page, "/activate/keys", &[("key", "token")]).await)
        .await;
    let keys_page = b.get(&s.url("/activate/keys")).await;
    let back = b.submit(&s.base, &keys_page, "/activate/finish", &[]).await;
    assert_eq!(back.location().as_deref(), Some("/account"));
    let account = b.get(&s.url("/account")).await;
    let doc = account.html();
    let keys: Vec<(String, String)> = doc
        .select(&Selector::parse("[data-key]").unwrap())
        .map(|e| {
            (
                e.value().attr("data-key").unwrap().into(),
                e.value().attr("data-kind").unwrap().into(),
            )
        })
        .collect();
    assert_eq!(keys.len(), 2, "{}", account.body);
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "key_change" && e.method.as_deref() == Some("token")));

    // Remove the card; the app key then is the last one and stays.
    let (card, _) = keys.iter().find(|(_, k)| k == "token").unwrap();
    let (app, _) = keys.iter().find(|(_, k)| k == "totp").unwrap();
    let action = format!("/account/keys/{card}/remove");
    let removed = b.submit(&s.base, &account, &action, &[]).await;
    assert_eq!(removed.location().as_deref(), Some("/account"));
    let csrf = account.form("/account/keys/add")[0].1.clone();
    let last =
        b.post(&s.url(&format!("/account/keys/{app}/remove")), &[("csrf".into(), csrf)]).await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert_eq!(last.data_error().as_deref(), Some("account-last-key"));

    // Eleven minutes later the login is too old to add a key.
    s.handle.clock.advance(11 * 60);
    let account = b.get(&s.url("/account")).await;
    let stale = b.submit(&s.base, &account, "/account/keys/add", &[]).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert_eq!(stale.data_error().as_deref(), Some("reauth"));
}

async fn a_lost_device_is_revoked_by_the_office_and_reactivated(backend: Backend) {
    let s = start(backend).await;
    let portal = s.add_client("portal-app", "portal").await;
    // Sofia already has a digital key (app code) and loses her phone.
    let sofia = s.add_person(NEWCOMER_BIS, "sofia").await;
    // The lost phone is logged in to the portal (SPEC §11: its session must end).
    let phone = Browser::new();
    let pk = pkce();
    let loc = key_login(&s, &phone, &authorize_url(&s, &portal, &pk, &[]), &sofia).await;
    let on_phone: serde_json::Value =
        exchange(&s, &portal, &query(&loc)["code"], &pk.verifier).await.json().await.unwrap();
    s.next_step();
    let desk = Browser::new();
    operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    let reg_id = attr(&result, "[data-registration]", "data-registration").unwrap();
    s.handle.clock.advance(1);
    let page = desk.get(&s.url(&format!("/office/registrations/{reg_id}"))).await;
    let reissued = desk
        .submit(
            &s.base,
            &page,
            &format!("/office/registrations/{reg_id}/reissue"),
            &[("revoke_keys", "1")],
        )
        .await;
    let code = attr(&reissued, "[data-activation-code]", "data-activation-code").unwrap();
    let events = s.handle.store.audit_events(None, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "key_change" && e.outcome == "revoked_all"));
    // The phone's broker session and its app grants ended with the keys.
    let r = refresh(&s, &portal, on_phone["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(phone.get(&s.url("/account")).await.location().as_deref(), Some("/login"));

    // The old key no longer logs in.
    let b = Browser::new();
    let pk = pkce();
    let code_page = to_code_page(&s, &b, &authorize_url(&s, &portal, &pk, &[]), &sofia).await;
    let r = submit_totp(&s.base, &b, &code_page, &s.code(&sofia)).await;
    assert!(r.location().is_none_or(|l| !l.contains("code=")), "a revoked key logged in");

    // Re-activation: the same account gets a new username, password and key.
    let link = mailed_link(&s, "sofia@example.it").await;
    let person = Browser::new();
    open(&s, &person, &link, &code).await;
    let acct = person.get(&s.url("/activate/account")).await;
    assert!(acct.body.contains("value=\"sofia\""), "the username is prefilled");
    let password = "Nuovo telefono, 2026";
    let keys_page = choose_account(&s, &person, "sofia.rossi", password).await;
    person
        .follow(
            &s.base,
            person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "token")]).await,
        )
        .await;
    let keys_page = person.get(&s.url("/activate/keys")).await;
    let done = person.submit(&s.base, &keys_page, "/activate/finish", &[]).await;
    assert_eq!(done.data_error().as_deref(), Some("activated"));
    let b = Browser::new();
    let old = submit_password(&s.base, &b, &sofia).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED, "the old username and password are gone");
    let code_page = to_code_page(
        &s,
        &Browser::new(),
        &authorize_url(&s, &portal, &pkce(), &[]),
        &("sofia.rossi", password),
    )
    .await;
    assert!(code_page.body.contains("value=\"token\""), "{}", code_page.body);
    assert!(!code_page.body.contains("value=\"totp\""));
}

/// Issue #15 (12), SPEC §7: after each key the page offers `key` again. After the token card,
/// `/activate/keys` shows the choice (never the card: the card is shown on a page of its own,
/// once), and the app key can be added next.
async fn after_the_token_card_the_next_key_can_be_added(backend: Backend) {
    let s = start(backend).await;
    let desk = Browser::new();
    operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    let code = attr(&result, "[data-activation-code]", "data-activation-code").unwrap();
    let link = mailed_link(&s, "sofia@example.it").await;
    let person = Browser::new();
    open(&s, &person, &link, &code).await;
    let keys_page = choose_account(&s, &person, "sofia.rossi", "Lungo e sicuro, 2026").await;
    let positions = Selector::parse("[data-position]").unwrap();
    let key_radios = Selector::parse("form[action=\"/activate/keys\"] input[name=key]").unwrap();

    // Choosing the card: the answer to the post is a redirect, not the card.
    let chosen = person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "token")]).await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER, "{}", chosen.body);
    assert_eq!(chosen.html().select(&positions).count(), 0, "the card at /activate/keys");
    let card_page = person.follow(&s.base, chosen).await;
    assert_eq!(card_page.status, StatusCode::OK, "{}", card_page.body);
    assert_eq!(card_page.html().select(&positions).count(), 24, "{}", card_page.body);
    assert!(card_page.body.contains("href=\"/activate/keys\""), "a way on: {}", card_page.body);
    assert_ne!(card_page.url, s.url("/activate/keys"), "the card sits at /activate/keys");

    // Coming back to the card's page (a reload) shows no card and makes none.
    let reload = person.get(&card_page.url).await;
    assert_eq!(reload.location().as_deref(), Some("/activate/keys"), "{}", reload.body);
    assert_eq!(reload.html().select(&positions).count(), 0);

    // /activate/keys offers `key` again, with the card among the active keys.
    let keys_page = person.get(&s.url("/activate/keys")).await;
    assert_eq!(keys_page.status, StatusCode::OK);
    assert_eq!(keys_page.html().select(&positions).count(), 0, "{}", keys_page.body);
    let offered: Vec<String> = keys_page
        .html()
        .select(&key_radios)
        .filter_map(|e| e.value().attr("value").map(str::to_string))
        .collect();
    assert!(offered.contains(&"totp".to_string()), "{offered:?}");
    assert_eq!(keys_page.html().select(&Selector::parse("[data-active-key]").unwrap()).count(), 1);

    // The app key next.
    let totp = person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "totp")]).await;
    assert_eq!(totp.status, StatusCode::OK, "{}", totp.body);
    let secret = attr(&totp, "[data-totp-secret]", "data-totp-secret").unwrap();
    let secret = cozo_broker::keys::totp::decode_base32(&secret).unwrap();
    let c = cozo_broker::keys::totp::code_at(&secret, s.now());
    let ok = person.submit(&s.base, &totp, "/activate/keys/totp", &[("code", &c)]).await;
    assert_eq!(ok.location().as_deref(), Some("/activate/keys"), "{}", ok.body);
    let keys_page = person.get(&s.url("/activate/keys")).await;
    assert_eq!(keys_page.html().select(&Selector::parse("[data-active-key]").unwrap()).count(), 2);
    let done = person.submit(&s.base, &keys_page, "/activate/finish", &[]).await;
    assert_eq!(done.data_error().as_deref(), Some("activated"), "{}", done.body);

    // One card was made, and it is active.
    let account = s.handle.store.account_by_username("sofia.rossi").await.unwrap().unwrap();
    let keys = s.handle.store.keys_of_account(&account.id).await.unwrap();
    let cards: Vec<_> = keys.iter().filter(|k| k.kind == Method::Token).collect();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].status, KeyStatus::Active);
}

/// The office form's fields for Sofia (as `register` fills them), plus `extra`.
fn registration_fields(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    [
        ("insz", NEWCOMER_BIS),
        ("family_name", "Rossi"),
        ("given_names", "Sofia"),
        ("birthdate", "1985-07-30"),
        ("nationality", "it"),
        ("document_type", "passport"),
        ("document_number", "YA1234567"),
        ("email", "sofia@example.it"),
        ("mobile", "+39 333 123 4567"),
        ("language", "en"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The key login of `p` in `b` after the chooser; returns where the browser goes next.
async fn log_in_with_app_code(s: &TestServer, b: &Browser, p: &TestPerson) -> Option<String> {
    let form = b.get(&s.url("/login/key")).await;
    let code_page = b
        .follow(
            &s.base,
            b.submit(
                &s.base,
                &form,
                "/login/key",
                &[("username", &p.username), ("password", &p.password)],
            )
            .await,
        )
        .await;
    let done = b
        .submit(&s.base, &code_page, "/login/key/code", &[("method", "totp"), ("code", &s.code(p))])
        .await;
    done.location()
}

async fn forged_office_forms_change_nothing(backend: Backend) {
    let s = start(backend).await;
    let store = &s.handle.store;
    let desk = Browser::new();
    let clerk = operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;

    // Another site's form (a forged or missing token) files nothing and mails nothing.
    for token in [Some("forged"), None] {
        let extra: Vec<(&str, &str)> = token.map(|t| ("csrf", t)).into_iter().collect();
        let forged = desk.post(&s.url("/office/register"), &registration_fields(&extra)).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
        assert_eq!(forged.data_error().as_deref(), Some("csrf"));
    }
    assert!(store.registrations_of_office("Office A", 10).await.unwrap().is_empty());
    assert!(store.outbox(10).await.unwrap().iter().all(|m| m.channel != "mail"));

    // A forged re-issue (with "revoke the keys") leaves the registration, its code and its
    // link as they were.
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    let code = attr(&result, "[data-activation-code]", "data-activation-code").unwrap();
    let reg_id = attr(&result, "[data-registration]", "data-registration").unwrap();
    let before = store.registration(&reg_id).await.unwrap().unwrap();
    let forged = desk
        .post(
            &s.url(&format!("/office/registrations/{reg_id}/reissue")),
            &[("csrf".into(), "forged".into()), ("revoke_keys".into(), "on".into())],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(forged.data_error().as_deref(), Some("csrf"));
    let after = store.registration(&reg_id).await.unwrap().unwrap();
    assert_eq!((after.status, after.expires_at), (before.status, before.expires_at));
    assert_eq!(after.link_hash, before.link_hash);
    let link = mailed_link(&s, "sofia@example.it").await;
    let opened = open(&s, &Browser::new(), &link, &code).await;
    assert_eq!(opened.location().as_deref(), Some("/activate/account"), "{}", opened.body);

    // Someone not logged in, with a login for an app under way: a forged office form neither
    // drops that login nor sends it to the office afterwards.
    let portal = s.add_client("portal-app", "portal").await;
    let anna = s.add_person("75021500171", "anna").await;
    let victim = Browser::new();
    let authorize = authorize_url(&s, &portal, &pkce(), &[]);
    let chooser = victim.follow(&s.base, victim.get(&authorize).await).await;
    assert!(chooser.url.ends_with("/login"), "{}", chooser.url);
    let forged = victim.post(&s.url("/office/register"), &registration_fields(&[])).await;
    assert_eq!(forged.data_error().as_deref(), Some("csrf"));
    let next = log_in_with_app_code(&s, &victim, &anna).await.unwrap_or_default();
    assert!(next.starts_with(&portal.redirect_uri) && next.contains("code="), "{next}");

    // A real visit to the register form without a login comes back to it after the login.
    s.next_step();
    let desk2 = Browser::new();
    let first = desk2.follow(&s.base, desk2.get(&s.url("/office/register")).await).await;
    assert!(first.url.ends_with("/login"), "{}", first.url);
    let back = log_in_with_app_code(&s, &desk2, &clerk).await;
    assert_eq!(back.as_deref(), Some("/office/register"));
}

async fn forged_activation_forms_change_nothing(backend: Backend) {
    let s = start(backend).await;
    let store = &s.handle.store;
    let desk = Browser::new();
    operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    let code = attr(&result, "[data-activation-code]", "data-activation-code").unwrap();
    let reg_id = attr(&result, "[data-registration]", "data-registration").unwrap();
    let link = mailed_link(&s, "sofia@example.it").await;

    // No session at all: the form is refused as forged (the CSRF check comes first).
    let stranger = Browser::new();
    let r = stranger.post(&s.url("/activate/keys"), &[("key".into(), "token".into())]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.data_error().as_deref(), Some("csrf"));
    // A forged code form neither opens the link nor counts a wrong code.
    let forged = stranger
        .post(&s.url(&link), &[("csrf".into(), "forged".into()), ("code".into(), code.clone())])
        .await;
    assert_eq!(forged.data_error().as_deref(), Some("csrf"));
    let reg = store.registration(&reg_id).await.unwrap().unwrap();
    assert_eq!((reg.status, reg.failures), (RegistrationStatus::Issued, 0));

    let person = Browser::new();
    let opened = open(&s, &person, &link, &code).await;
    assert_eq!(opened.location().as_deref(), Some("/activate/account"));
    let password = "Lungo e sicuro, 2026";
    let forged = person
        .post(
            &s.url("/activate/account"),
            &[
                ("csrf".into(), "forged".into()),
                ("username".into(), "sofia.rossi".into()),
                ("password".into(), password.into()),
                ("password_confirm".into(), password.into()),
            ],
        )
        .await;
    assert_eq!(forged.data_error().as_deref(), Some("csrf"));
    assert!(store.account_by_username("sofia.rossi").await.unwrap().is_none());

    choose_account(&s, &person, "sofia.rossi", password).await;
    let account = store.account_by_username("sofia.rossi").await.unwrap().unwrap();
    for (path, fields) in [
        ("/activate/keys", vec![("key", "token")]),
        ("/activate/keys/sms", vec![("phone", "+32470000009")]),
        ("/activate/finish", vec![]),
    ] {
        let mut form: Vec<(String, String)> = vec![("csrf".into(), "forged".into())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let r = person.post(&s.url(path), &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.data_error().as_deref(), Some("csrf"), "{path}");
    }
    assert!(store.keys_of_account(&account.id).await.unwrap().is_empty(), "a key was made");
    assert!(store.outbox(10).await.unwrap().iter().all(|m| m.channel != "sms"), "an SMS was sent");
    let reg = store.registration(&reg_id).await.unwrap().unwrap();
    assert_eq!(reg.status, RegistrationStatus::Opened, "finished by a forged form");
}

async fn an_enrolment_ends_after_an_hour(backend: Backend) {
    let s = start(backend).await;
    let desk = Browser::new();
    operator_logged_in(&s, &desk, OPERATOR, "clerk", "Office A").await;
    let result = register(&s, &desk, NEWCOMER_BIS, "sofia@example.it").await;
    let code = attr(&result, "[data-activation-code]", "data-activation-code").unwrap();
    let link = mailed_link(&s, "sofia@example.it").await;
    let person = Browser::new();
    open(&s, &person, &link, &code).await;
    choose_account(&s, &person, "sofia.rossi", "Lungo e sicuro, 2026").await;

    // Just before the hour the keys page still opens; past it, neither the page nor its form.
    s.handle.clock.advance(3600 - 30);
    let keys_page = person.get(&s.url("/activate/keys")).await;
    assert_eq!(keys_page.status, StatusCode::OK, "{}", keys_page.body);
    s.handle.clock.advance(31);
    let late = person.get(&s.url("/activate/keys")).await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    assert_eq!(late.data_error().as_deref(), Some("no-enrolment"));
    let post = person.submit(&s.base, &keys_page, "/activate/keys", &[("key", "token")]).await;
    assert_eq!(post.data_error().as_deref(), Some("no-enrolment"));
    let account = s.handle.store.account_by_username("sofia.rossi").await.unwrap().unwrap();
    assert!(s.handle.store.keys_of_account(&account.id).await.unwrap().is_empty());
}
