//! `make screenshots`: the main pages in English and Dutch, 800 px wide, to docs/screenshots/
//! (run with `cargo test --test browser screenshots -- --ignored`). The Dutch run picks the
//! language once, with the language link on the first page of each journey; every page after
//! that must be in Dutch.

use crate::chrome::*;
use crate::common::*;
use crate::journeys::*;
use cozo_broker::admin;
use fantoccini::Client;
use serde_json::json;

const WIDTH: u32 = 800;

fn out_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
}

/// The whole page (not only the viewport), `WIDTH` px wide, as `docs/screenshots/{lang}-{name}.png`.
async fn shot(c: &Client, lang: &str, name: &str) {
    let got = js(c, "return document.documentElement.lang").await;
    assert_eq!(got, json!(lang), "{name} is not in {lang}");
    let h = js(c, "return Math.ceil(document.documentElement.scrollHeight)").await;
    let h = h.as_u64().unwrap().clamp(300, 4000);
    cdp(
        c,
        "Emulation.setDeviceMetricsOverride",
        json!({"width": WIDTH, "height": h, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    js(c, "if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); return null").await;
    let png = c.screenshot().await.unwrap();
    cdp(c, "Emulation.clearDeviceMetricsOverride", json!({})).await;
    std::fs::create_dir_all(out_dir()).unwrap();
    std::fs::write(out_dir().join(format!("{lang}-{name}.png")), png).unwrap();
}

/// Picks the language with the link in the page header (nothing to do for English, the
/// browser's own language).
async fn pick(c: &Client, lang: &str) {
    if lang != "en" {
        let a = find(c, &format!("nav.lang a[hreflang=\"{lang}\"]")).await;
        press_enter(c, &a).await;
    }
}

async fn code_page(c: &Client, user: &str, password: &str) {
    let key = find(c, "[data-method=key] a").await;
    press_enter(c, &key).await;
    type_in(c, "#username", user).await;
    let pw = type_in(c, "#password", password).await;
    press_enter(c, &pw).await;
}

async fn render(lang: &'static str) {
    let WithEidas { s, .. } = start_with_eidas(Backend::Sqlite).await;
    let p = s.add_person("85073003328", "anna").await;
    s.add_sms_key(&p, PHONE).await;
    let demo =
        demo_app(&s, &[("portal", "portal", "Portal"), ("ehealth", "ehealth", "eHealth")]).await;
    with_chrome(WIDTH, "en", |c| async move {
        // Chooser, key login, code entry; an SMS login for the portal.
        c.goto(&format!("{}/portal/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        pick(&c, lang).await;
        shot(&c, lang, "chooser").await;
        let key = find(&c, "[data-method=key] a").await;
        press_enter(&c, &key).await;
        shot(&c, lang, "key-login").await;
        type_in(&c, "#username", "anna").await;
        let pw = type_in(&c, "#password", &p.password).await;
        press_enter(&c, &pw).await;
        shot(&c, lang, "code-entry").await;
        choose(&c, "#method-sms").await;
        let f = find(&c, "#code").await;
        press_enter(&c, &f).await;
        let f = type_in(&c, "#code", &last_sms_code(&s, PHONE).await).await;
        press_enter(&c, &f).await;
        wait_path(&c, "/portal/callback").await;
        s.handle.clock.advance(40);
        // The eHealth app: step-up to the app code; then the account page.
        c.goto(&format!("{}/ehealth/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        shot(&c, lang, "step-up").await;
        code_page(&c, "anna", &p.password).await;
        enter_app_code(&c, &s.code(&p)).await;
        wait_path(&c, "/ehealth/callback").await;
        c.goto(&format!("{}/account", base(&s))).await.unwrap();
        shot(&c, lang, "account").await;

        // eIDAS: EU login → Nederland → DigiD → first-login linking.
        c.delete_all_cookies().await.unwrap();
        c.goto(&format!("{}/portal/login", demo.base)).await.unwrap();
        wait_path(&c, "/login").await;
        pick(&c, lang).await;
        let eu = find(&c, "[data-method=eidas] a").await;
        press_enter(&c, &eu).await;
        let nl = find(&c, "[data-country=NL] a").await;
        press_enter(&c, &nl).await;
        let user = type_in(&c, "input[name=username]", "sanne.devries").await;
        navigate(&c, async { user.send_keys(ENTER).await.unwrap() }).await;
        wait_path(&c, "/link").await;
        shot(&c, lang, "link").await;

        // The office: registration form and its printable result.
        c.delete_all_cookies().await.unwrap();
        let op = s.add_person(OPERATOR, "clerk").await;
        admin::add_operator(&s.handle.store, OPERATOR, "Office A", s.now()).await.unwrap();
        c.goto(&format!("{}/office", base(&s))).await.unwrap();
        wait_path(&c, "/login").await;
        pick(&c, lang).await;
        s.next_step();
        code_page(&c, "clerk", &op.password).await;
        enter_app_code(&c, &s.code(&op)).await;
        wait_path(&c, "/office").await;
        let reg = find(&c, "[data-register]").await;
        press_enter(&c, &reg).await;
        shot(&c, lang, "office-register").await;
        type_in(&c, "#insz", NEWCOMER_BIS).await;
        type_in(&c, "#family_name", "Rossi").await;
        type_in(&c, "#given_names", "Sofia").await;
        js(&c, "document.getElementById('birthdate').value = '1985-07-30'; return null").await;
        type_in(&c, "#nationality", "IT").await;
        type_in(&c, "#document_number", "YA1234567").await;
        type_in(&c, "#email", "sofia@example.it").await;
        let m = type_in(&c, "#mobile", "+39 333 123 4567").await;
        press_enter(&c, &m).await;
        let code = attr(&c, "[data-activation-code]", "data-activation-code").await;
        shot(&c, lang, "office-result").await;

        // Activation: code, username and password, keys, the app key with its QR code.
        c.delete_all_cookies().await.unwrap();
        let link = mailed_link(&s, "sofia@example.it").await;
        c.goto(&format!("{}{link}", base(&s))).await.unwrap();
        pick(&c, lang).await;
        shot(&c, lang, "activate-code").await;
        let f = type_in(&c, "#code", &code).await;
        press_enter(&c, &f).await;
        shot(&c, lang, "activate-account").await;
        type_in(&c, "#username", "sofia.rossi").await;
        type_in(&c, "#password", "Lungo e sicuro, 2026").await;
        let f = type_in(&c, "#password_confirm", "Lungo e sicuro, 2026").await;
        press_enter(&c, &f).await;
        shot(&c, lang, "activate-keys").await;
        add_key(&c, "totp").await;
        shot(&c, lang, "activate-totp").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots/: run by `make screenshots`"]
async fn screenshots() {
    render("en").await;
    render("nl").await;
}
