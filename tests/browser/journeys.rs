//! The five journeys of issue #9 in headless Chromium, with the checks of `checks.rs` on every
//! page the person sees. SQLite only: the PostgreSQL backend is exercised by the same flows over
//! HTTP in tests/integration.

use crate::checks::page_ok;
use crate::chrome::*;
use crate::common::*;
use cozo_broker::admin;
use fantoccini::Client;
use idp_mocks::demo_app::{DemoApp, DemoAppConfig};
use serde_json::json;

pub const OPERATOR: &str = "90010112395";
pub const NEWCOMER_BIS: &str = "85273004559";
pub const PHONE: &str = "+32470123456";

/// A broker whose public URL is `http://localhost:PORT` (WebAuthn needs a domain name).
pub async fn broker_with(tweak: impl FnOnce(&mut cozo_broker::config::Config)) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    TestServer::start_on(Backend::Sqlite, listener, |cfg| {
        cfg.server.public_url = url::Url::parse(&format!("http://localhost:{port}")).unwrap();
        tweak(cfg);
    })
    .await
}

pub fn base(s: &TestServer) -> String {
    s.handle.cfg.server.public_url.as_str().trim_end_matches('/').to_string()
}

/// The demo relying app on 127.0.0.1 (another host than the broker's `localhost`, as in real
/// life another site), with the apps `(path, policy)`.
pub struct Demo {
    pub base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn demo_app(s: &TestServer, apps: &[(&str, &str, &str)]) -> Demo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut demo = vec![];
    for (path, policy, title) in apps {
        let mut spec = admin::ClientSpec::new(
            &format!("demo-{path}"),
            &format!("{app_base}/{path}/callback"),
            policy,
        );
        spec.post_logout_redirect_uris = vec![format!("{app_base}/")];
        let secret =
            admin::add_client(&s.handle.store, &s.handle.policies, &spec, s.now()).await.unwrap();
        demo.push(DemoApp {
            title: title.to_string(),
            path: path.to_string(),
            client_id: format!("demo-{path}"),
            client_secret: secret,
            scope: vec!["openid".into(), "profile".into(), "insz".into()],
            description: String::new(),
        });
    }
    let cfg = DemoAppConfig {
        issuer: url::Url::parse(&base(s)).unwrap(),
        public_url: url::Url::parse(&app_base).unwrap(),
        apps: demo,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(idp_mocks::demo_app::serve(listener, cfg, async move {
        let _ = rx.await;
    }));
    Demo { base: app_base, _stop: tx }
}

/// A claim as the demo app shows it.
pub async fn claim(c: &Client, name: &str) -> String {
    text(c, &format!("tr[data-claim=\"{name}\"] td")).await
}

/// From the chooser: digital key → username + password (Enter submits) → the code page.
pub async fn key_to_code_page(c: &Client, user: &str, password: &str, lang: &str) {
    let key = find(c, "[data-method=key] a").await;
    press_enter(c, &key).await;
    assert_eq!(path(c).await, "/login/key");
    page_ok(c, Some(lang), "key login").await;
    type_in(c, "#username", user).await;
    let pw = type_in(c, "#password", password).await;
    press_enter(c, &pw).await;
    assert_eq!(path(c).await, "/login/key/code", "password not accepted");
    page_ok(c, Some(lang), "code entry").await;
}

/// On the code page: the app code, typed and sent with Enter.
pub async fn enter_app_code(c: &Client, code: &str) {
    choose(c, "#method-totp").await;
    let f = type_in(c, "#code", code).await;
    press_enter(c, &f).await;
}

/// (a) Demo app → chooser → digital key (password + app code) → back in the app, claims shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_app_to_a_key_login_and_back() {
    let s = broker_with(|_| {}).await;
    let p = s.add_person("85073003328", "anna").await;
    let demo = demo_app(&s, &[("portal", "portal", "Portal")]).await;
    with_chrome(1000, "en", |c| async move {
        c.goto(&demo.base).await.unwrap();
        page_ok(&c, None, "demo app home").await;
        let login = find(&c, "a[href=\"/portal/login\"]").await;
        press_enter(&c, &login).await;
        wait_path(&c, "/login").await;
        page_ok(&c, Some("en"), "chooser").await;
        key_to_code_page(&c, &p.username, &p.password, "en").await;
        enter_app_code(&c, &s.code(&p)).await;
        wait_path(&c, "/portal/callback").await;
        page_ok(&c, None, "demo app claims").await;
        assert_eq!(claim(&c, "insz").await, "85073003328");
        assert_eq!(claim(&c, "acr").await, "http://eidas.europa.eu/LoA/substantial");
        assert_eq!(claim(&c, "amr").await, r#"["pwd","totp"]"#);
    })
    .await;
}

/// An operator with an app key logs in at /office (in the browser).
pub async fn operator_login(c: &Client, s: &TestServer) {
    let op = s.add_person(OPERATOR, "clerk").await;
    admin::add_operator(&s.handle.store, OPERATOR, "Office A", s.now()).await.unwrap();
    c.goto(&format!("{}/office", base(s))).await.unwrap();
    wait_path(c, "/login").await;
    key_to_code_page(c, "clerk", &op.password, "en").await;
    enter_app_code(c, &s.code(&op)).await;
    wait_path(c, "/office").await;
    s.next_step();
}

/// The operator registers a person; returns the activation code from the printable result.
pub async fn register_person(c: &Client, email: &str, lang: &str) -> String {
    page_ok(c, Some("en"), "office list").await;
    let reg = find(c, "[data-register]").await;
    press_enter(c, &reg).await;
    assert_eq!(path(c).await, "/office/register");
    page_ok(c, Some("en"), "office registration form").await;
    // A wrong INSZ first (the check digits): the error is tied to the field and announced.
    type_in(c, "#insz", "12345678901").await;
    type_in(c, "#family_name", "Rossi").await;
    type_in(c, "#given_names", "Sofia").await;
    // A date field, typed as in the browser's locale (en-US: month, day, year).
    type_in(c, "#birthdate", "07301985").await;
    type_in(c, "#nationality", "IT").await;
    type_in(c, "#document_number", "YA1234567").await;
    type_in(c, "#email", email).await;
    let m = type_in(c, "#mobile", "+39 333 123 4567").await;
    press_enter(c, &m).await;
    assert_eq!(attr(c, "#insz", "aria-invalid").await, "true");
    page_ok(c, Some("en"), "office registration form with errors").await;
    let m = type_in(c, "#insz", NEWCOMER_BIS).await;
    js(c, &format!("document.getElementById('language').value = '{lang}'; return null")).await;
    press_enter(c, &m).await;
    let code = attr(c, "[data-activation-code]", "data-activation-code").await;
    page_ok(c, Some("en"), "office result (printable)").await;
    code
}

/// The person: the mailed link, the paper code, username + password; ends on the keys page.
pub async fn activate_account(
    c: &Client,
    s: &TestServer,
    email: &str,
    code: &str,
    user: &str,
    pw: &str,
) {
    let link = mailed_link(s, email).await;
    c.goto(&format!("{}{link}", base(s))).await.unwrap();
    page_ok(c, Some("en"), "activation: code").await;
    let f = type_in(c, "#code", code).await;
    press_enter(c, &f).await;
    assert_eq!(path(c).await, "/activate/account");
    page_ok(c, Some("en"), "activation: username and password").await;
    type_in(c, "#username", user).await;
    type_in(c, "#password", pw).await;
    let f = type_in(c, "#password_confirm", pw).await;
    press_enter(c, &f).await;
    assert_eq!(path(c).await, "/activate/keys");
    page_ok(c, Some("en"), "activation: keys").await;
}

/// On the keys page: choose a key with the keyboard and go on.
pub async fn add_key(c: &Client, key: &str) {
    choose(c, &format!("#key-{key}")).await;
    let submit = find(c, "form[action=\"/activate/keys\"] button[type=submit]").await;
    press_enter(c, &submit).await;
}

/// Decodes the QR code on the page from a screenshot of it.
pub async fn scan_qr(c: &Client) -> String {
    let img = find(c, "img[data-totp-qr]").await;
    let png = img.screenshot().await.unwrap();
    let gray = image::load_from_memory(&png).unwrap().to_luma8();
    let (w, h) = gray.dimensions();
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
            gray.get_pixel(x as u32, y as u32)[0]
        });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the screenshot");
    grids[0].decode().unwrap().1
}

/// (b) The desk registers a person; the person activates with the QR code, confirms a code and
/// logs in to the account page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_office_registration_to_activation_with_the_qr_code_to_a_login() {
    let s = broker_with(|_| {}).await;
    with_chrome(1000, "en", |c| async move {
        operator_login(&c, &s).await;
        let code = register_person(&c, "sofia@example.it", "en").await;
        c.delete_all_cookies().await.unwrap();

        let pw = "Lungo e sicuro, 2026";
        activate_account(&c, &s, "sofia@example.it", &code, "sofia.rossi", pw).await;
        add_key(&c, "totp").await;
        page_ok(&c, Some("en"), "activation: app key (QR)").await;
        let uri = attr(&c, "[data-otpauth-uri]", "data-otpauth-uri").await;
        let scanned = scan_qr(&c).await;
        assert_eq!(scanned, uri, "the QR code carries the otpauth URI");
        let secret = attr(&c, "[data-totp-secret]", "data-totp-secret").await;
        assert!(scanned.contains(&format!("secret={secret}")), "{scanned}");
        let secret = cozo_broker::keys::totp::decode_base32(&secret).unwrap();
        // A wrong code first: the error is tied to the field.
        let f = type_in(&c, "#code", "000000").await;
        press_enter(&c, &f).await;
        page_ok(&c, Some("en"), "activation: app key, wrong code").await;
        let f = type_in(&c, "#code", &cozo_broker::keys::totp::code_at(&secret, s.now())).await;
        press_enter(&c, &f).await;
        assert_eq!(path(&c).await, "/activate/keys");
        page_ok(&c, Some("en"), "activation: keys, one active").await;
        // An SMS key (the number from the registration) and a token card too.
        add_key(&c, "sms").await;
        page_ok(&c, Some("en"), "activation: SMS key, phone").await;
        let phone = find(&c, "#phone").await;
        assert_eq!(phone.prop("value").await.unwrap().as_deref(), Some("+393331234567"));
        press_enter(&c, &phone).await;
        page_ok(&c, Some("en"), "activation: SMS key, code sent").await;
        let f = type_in(&c, "#code", &last_sms_code(&s, "+393331234567").await).await;
        press_enter(&c, &f).await;
        assert_eq!(path(&c).await, "/activate/keys");
        add_key(&c, "token").await;
        page_ok(&c, Some("en"), "activation: token card").await;
        assert_eq!(
            js(&c, "return document.querySelectorAll('[data-position]').length").await,
            json!(24)
        );
        let next = find(&c, "a[href=\"/activate/keys\"]").await;
        press_enter(&c, &next).await;
        assert_eq!(
            js(&c, "return document.querySelectorAll('[data-active-key]').length").await,
            json!(3)
        );
        let finish = find(&c, "[data-finish]").await;
        press_enter(&c, &finish).await;
        page_ok(&c, Some("en"), "activation: done").await;

        s.next_step();
        c.goto(&format!("{}/account", base(&s))).await.unwrap();
        wait_path(&c, "/login").await;
        key_to_code_page(&c, "sofia.rossi", pw, "en").await;
        enter_app_code(&c, &cozo_broker::keys::totp::code_at(&secret, s.now())).await;
        wait_path(&c, "/account").await;
        page_ok(&c, Some("en"), "account").await;
        assert!(text(&c, "main").await.contains("Sofia"));
    })
    .await;
}

/// Chromium's own virtual authenticator (CDP `WebAuthn.addVirtualAuthenticator`): a security
/// key that answers by itself, as if touched.
pub async fn virtual_authenticator(c: &Client) -> String {
    cdp(c, "WebAuthn.enable", json!({})).await;
    let r = cdp(
        c,
        "WebAuthn.addVirtualAuthenticator",
        json!({"options": {
            "protocol": "ctap2", "transport": "usb", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true,
            "automaticPresenceSimulation": true,
        }}),
    )
    .await;
    r["authenticatorId"].as_str().unwrap().to_string()
}

/// (c) WebAuthn for real: a security key registered at activation, then a login with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_webauthn_security_key_registered_at_activation_then_used_to_log_in() {
    let s = broker_with(|_| {}).await;
    with_chrome(1000, "en", |c| async move {
        operator_login(&c, &s).await;
        let code = register_person(&c, "sofia@example.it", "en").await;
        c.delete_all_cookies().await.unwrap();
        let pw = "Lungo e sicuro, 2026";
        activate_account(&c, &s, "sofia@example.it", &code, "sofia.rossi", pw).await;
        let auth = virtual_authenticator(&c).await;
        add_key(&c, "webauthn").await;
        page_ok(&c, Some("en"), "activation: security key").await;
        let button = find(&c, "form[data-webauthn-create] button[type=submit]").await;
        press_enter(&c, &button).await;
        assert_eq!(path(&c).await, "/activate/keys", "the key did not register");
        let creds = cdp(&c, "WebAuthn.getCredentials", json!({"authenticatorId": auth})).await;
        assert_eq!(creds["credentials"].as_array().unwrap().len(), 1, "{creds}");
        assert_eq!(
            js(&c, "return document.querySelectorAll('[data-active-key]').length").await,
            json!(1)
        );
        let finish = find(&c, "[data-finish]").await;
        press_enter(&c, &finish).await;

        c.goto(&format!("{}/account", base(&s))).await.unwrap();
        wait_path(&c, "/login").await;
        key_to_code_page(&c, "sofia.rossi", pw, "en").await;
        choose(&c, "#method-webauthn").await;
        let f = find(&c, "#code").await;
        press_enter(&c, &f).await;
        page_ok(&c, Some("en"), "code entry: security key").await;
        let use_key = find(&c, "form[data-webauthn-get] button[type=submit]").await;
        navigate(&c, async { use_key.send_keys(ENTER).await.unwrap() }).await;
        wait_path(&c, "/account").await;
        let creds = cdp(&c, "WebAuthn.getCredentials", json!({"authenticatorId": auth})).await;
        assert!(creds["credentials"][0]["signCount"].as_u64().unwrap() >= 1, "{creds}");
    })
    .await;
}

/// (e) Step-up: an SMS login for the portal, then the eHealth app asks for the app code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_sms_login_then_ehealth_steps_up_to_the_app_code() {
    let s = broker_with(|_| {}).await;
    let p = s.add_person("85073003328", "anna").await;
    s.add_sms_key(&p, PHONE).await;
    let demo =
        demo_app(&s, &[("portal", "portal", "Portal"), ("ehealth", "ehealth", "eHealth")]).await;
    with_chrome(1000, "en", |c| async move {
        c.goto(&format!("{}/portal/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        key_to_code_page(&c, "anna", &p.password, "en").await;
        choose(&c, "#method-sms").await;
        let f = find(&c, "#code").await;
        press_enter(&c, &f).await;
        page_ok(&c, Some("en"), "code entry: SMS sent").await;
        let f = type_in(&c, "#code", &last_sms_code(&s, PHONE).await).await;
        press_enter(&c, &f).await;
        wait_path(&c, "/portal/callback").await;
        assert_eq!(claim(&c, "amr").await, r#"["pwd","sms"]"#);
        s.handle.clock.advance(40);

        c.goto(&format!("{}/ehealth/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        let notice = text(&c, "[data-step-up]").await;
        assert!(notice.contains("SMS"), "{notice}");
        page_ok(&c, Some("en"), "chooser: step-up notice").await;
        key_to_code_page(&c, "anna", &p.password, "en").await;
        assert_eq!(
            js(&c, "return Array.from(document.querySelectorAll('input[name=method]')).map(function (e) { return e.value; })").await,
            json!(["totp"]),
            "only the app code is offered"
        );
        enter_app_code(&c, &s.code(&p)).await;
        wait_path(&c, "/ehealth/callback").await;
        assert_eq!(claim(&c, "amr").await, r#"["pwd","totp"]"#);
        assert_eq!(claim(&c, "acr").await, "http://eidas.europa.eu/LoA/substantial");
    })
    .await;
}

/// (d) eIDAS: EU login → Nederland → DigiD on the mock node, first-login linking with the Bis
/// number, back in the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_eidas_digid_first_login_links_the_bis_number() {
    use idp_mocks::bis_register;
    use idp_mocks::eidas as node;
    let WithEidas { s, .. } = start_with_eidas(Backend::Sqlite).await;
    let citizen = node::citizen("nl-substantial").unwrap();
    let demo = demo_app(&s, &[("portal", "portal", "Portal")]).await;
    with_chrome(1000, "en", |c| async move {
        c.goto(&format!("{}/portal/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        let eu = find(&c, "[data-method=eidas] a").await;
        press_enter(&c, &eu).await;
        page_ok(&c, Some("en"), "eIDAS countries").await;
        let nl = find(&c, "[data-country=NL] a").await;
        press_enter(&c, &nl).await;
        // The mock node's DigiD page.
        page_ok(&c, None, "mock node: DigiD").await;
        let user = type_in(&c, "input[name=username]", citizen.username).await;
        navigate(&c, async { user.send_keys(ENTER).await.unwrap() }).await;
        wait_path(&c, "/link").await;
        page_ok(&c, Some("en"), "first-login linking").await;
        assert!(text(&c, "[data-eidas-identity]").await.contains(citizen.family_name));
        // A number that is not valid: the rule is named, tied to the field.
        let f = type_in(&c, "#bis", "12345").await;
        press_enter(&c, &f).await;
        page_ok(&c, Some("en"), "first-login linking, invalid number").await;
        let f = type_in(&c, "#bis", bis_register::DUTCH_PATIENT).await;
        press_enter(&c, &f).await;
        wait_path(&c, "/portal/callback").await;
        assert_eq!(claim(&c, "amr").await, r#"["eidas"]"#);
        assert_eq!(claim(&c, "insz").await, bis_register::DUTCH_PATIENT);
        assert_eq!(claim(&c, "eidas_person_identifier").await, citizen.person_identifier);
    })
    .await;
}

/// Without JavaScript: a key login works (plain forms), and the SAML POST form that the mock
/// node would submit by script has a visible button that does it (eIDAS needs no script either).
/// Only WebAuthn needs JavaScript, and its pages say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f_without_javascript_forms_and_the_saml_post_button_work() {
    let WithEidas { s, .. } = start_with_eidas(Backend::Sqlite).await;
    let p = s.add_person("85073003328", "anna").await;
    let demo = demo_app(&s, &[("portal", "portal", "Portal")]).await;
    with_chrome(1000, "en", |c| async move {
        cdp(&c, "Emulation.setScriptExecutionDisabled", json!({"value": true})).await;
        c.goto(&format!("{}/portal/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        // (No axe here: it needs the page's script engine.)
        let key = find(&c, "[data-method=key] a").await;
        press_enter(&c, &key).await;
        type_in(&c, "#username", &p.username).await;
        let pw = type_in(&c, "#password", &p.password).await;
        press_enter(&c, &pw).await;
        enter_app_code(&c, &s.code(&p)).await;
        wait_path(&c, "/portal/callback").await;
        assert_eq!(claim(&c, "amr").await, r#"["pwd","totp"]"#);

        c.goto(&format!("{}/portal/login?prompt=login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        let eu = find(&c, "[data-method=eidas] a").await;
        press_enter(&c, &eu).await;
        let nl = find(&c, "[data-country=NL] a").await;
        press_enter(&c, &nl).await;
        let user = type_in(&c, "input[name=username]", "sanne.devries").await;
        press_enter(&c, &user).await;
        // No script ran: the node's answer waits behind its button.
        let button = find(&c, "form[data-autosubmit] button[type=submit]").await;
        assert!(button.is_displayed().await.unwrap());
        press_enter(&c, &button).await;
        wait_path(&c, "/link").await;
    })
    .await;
}

/// The language picked once on the first page (the header's language link) holds for every page
/// after it, also after the round trip to the app; all of them pass the checks in Dutch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g_dutch_picked_once_sticks_through_the_journey() {
    let s = broker_with(|_| {}).await;
    let p = s.add_person("85073003328", "anna").await;
    let demo = demo_app(&s, &[("portal", "portal", "Portal")]).await;
    with_chrome(1000, "en", |c| async move {
        c.goto(&format!("{}/portal/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        assert_eq!(js(&c, "return document.documentElement.lang").await, json!("en"));
        let nl = find(&c, "nav.lang a[hreflang=nl]").await;
        press_enter(&c, &nl).await;
        assert_eq!(path(&c).await, "/login");
        page_ok(&c, Some("nl"), "chooser (nl)").await;
        key_to_code_page(&c, &p.username, &p.password, "nl").await;
        enter_app_code(&c, &s.code(&p)).await;
        wait_path(&c, "/portal/callback").await;
        c.goto(&format!("{}/account", base(&s))).await.unwrap();
        wait_path(&c, "/account").await;
        page_ok(&c, Some("nl"), "account (nl)").await;
    })
    .await;
}

/// (h) SPEC §11: logged in to two apps, the person opens `/account/apps` in each of the four
/// languages (checks on every page), revokes one app by keyboard, and the other stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h_account_apps_lists_the_apps_and_revokes_one() {
    let s = broker_with(|_| {}).await;
    let p = s.add_person("85073003328", "anna").await;
    let demo =
        demo_app(&s, &[("portal", "portal", "Portal"), ("other", "portal", "Other app")]).await;
    with_chrome(1000, "en", |c| async move {
        c.goto(&format!("{}/portal/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        key_to_code_page(&c, &p.username, &p.password, "en").await;
        enter_app_code(&c, &s.code(&p)).await;
        wait_path(&c, "/portal/callback").await;
        // The second app: the broker session answers at once.
        c.goto(&format!("{}/other/login", demo.base)).await.unwrap();
        wait_path(&c, "/other/callback").await;
        c.goto(&format!("{}/account", base(&s))).await.unwrap();
        wait_path(&c, "/account").await;
        page_ok(&c, Some("en"), "account").await;
        find(&c, "form[data-action=\"sign-out-everywhere\"] button").await;
        let apps = find(&c, "a[href=\"/account/apps\"]").await;
        press_enter(&c, &apps).await;
        wait_path(&c, "/account/apps").await;
        for lang in ["nl", "fr", "de", "en"] {
            let a = find(&c, &format!("nav.lang a[hreflang=\"{lang}\"]")).await;
            press_enter(&c, &a).await;
            wait_path(&c, "/account/apps").await;
            page_ok(&c, Some(lang), &format!("account apps ({lang})")).await;
        }
        let n = js(&c, "return document.querySelectorAll('[data-app]').length").await;
        assert_eq!(n, json!(2));
        let revoke =
            find(&c, "[data-app=\"demo-portal\"] form[data-action=\"revoke-app\"] button").await;
        press_enter(&c, &revoke).await;
        wait_path(&c, "/account/apps").await;
        page_ok(&c, Some("en"), "account apps after revoking one").await;
        let left = js(
            &c,
            "return Array.from(document.querySelectorAll('[data-app]')).map(e => e.dataset.app)",
        )
        .await;
        assert_eq!(left, json!(["demo-other"]));
    })
    .await;
}

/// (i) EU Digital Identity Wallet: the chooser's wallet method, the waiting page (QR code and
/// "Open my wallet"), the test wallet on this device sharing Sanne's Dutch PID, first-login
/// linking with her Bis number, back in the app; then the waiting page in the other languages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i_eu_wallet_same_device_links_the_bis_number_and_the_qr_page_in_four_languages() {
    use idp_mocks::bis_register;
    use idp_mocks::eudiw::{provider, wallet};
    let pid = provider::start("Mock PID Provider").await.unwrap();
    let wallet_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wallet_url = format!("http://127.0.0.1:{}/", wallet_listener.local_addr().unwrap().port());
    tokio::spawn(wallet::serve(wallet_listener, pid.clone()));
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("pid-anchors.pem");
    std::fs::write(&anchors, pid.trust_anchor_pem()).unwrap();
    let (bis_url, _) = bis_register::start().await;
    let s = broker_with(|cfg| {
        cfg.eudiw.enabled = true;
        cfg.eudiw.trust_anchors = Some(anchors);
        cfg.eudiw.wallet_url = Some(url::Url::parse(&wallet_url).unwrap());
        cfg.bis_register.url = Some(url::Url::parse(&bis_url).unwrap());
    })
    .await;
    let demo = demo_app(&s, &[("portal", "portal", "Portal")]).await;
    let app = demo.base.clone();
    with_chrome(1000, "en", |c| async move {
        c.goto(&format!("{app}/portal/login")).await.unwrap();
        wait_path(&c, "/login").await;
        let w = find(&c, "[data-method=eudiw] a").await;
        press_enter(&c, &w).await;
        assert_eq!(path(&c).await, "/login/eudiw");
        page_ok(&c, Some("en"), "EU wallet: waiting page").await;
        assert!(attr(&c, "img.qr", "src").await.starts_with("data:image/svg+xml;base64,"));
        let open = find(&c, "a[data-wallet-uri]").await;
        press_enter(&c, &open).await;
        // The test wallet's page: Sanne de Vries is the first holder; share.
        let share = find(&c, "button[value=share]").await;
        navigate(&c, async { share.click().await.unwrap() }).await;
        wait_path(&c, "/link").await;
        page_ok(&c, Some("en"), "EU wallet: first-login linking").await;
        assert!(text(&c, "[data-eidas-identity]").await.contains("de Vries"));
        let f = type_in(&c, "#bis", bis_register::DUTCH_PATIENT).await;
        press_enter(&c, &f).await;
        wait_path(&c, "/portal/callback").await;
        assert_eq!(claim(&c, "amr").await, r#"["eudiw"]"#);
        assert_eq!(claim(&c, "insz").await, bis_register::DUTCH_PATIENT);
    })
    .await;
    for lang in ["nl", "fr", "de"] {
        let app = demo.base.clone();
        with_chrome(1000, lang, |c| async move {
            c.goto(&format!("{app}/portal/login")).await.unwrap();
            wait_path(&c, "/login").await;
            let w = find(&c, "[data-method=eudiw] a").await;
            press_enter(&c, &w).await;
            assert_eq!(path(&c).await, "/login/eudiw");
            page_ok(&c, Some(lang), &format!("EU wallet: waiting page ({lang})")).await;
        })
        .await;
    }
}
