//! Four languages, complete (issue #9): the pages of the main journeys rendered in Dutch (and in
//! French and German) contain no English sentence from the catalogue, say `lang="nl"`, and the
//! language picked once (the `/lang/nl` link, a cookie) sticks through the whole journey. (That
//! every key exists in nl, fr, de and en is the unit test `i18n::tests::catalogues_are_complete`.)

use crate::common::*;
use cozo_broker::admin;
use idp_mocks::eidas::{self as node, Outcome};
use scraper::{Html, Selector};

/// `key = value` pairs of a Fluent file (continuation lines joined).
fn catalogue(lang: &str) -> Vec<(String, String)> {
    let path = format!("{}/locales/{lang}/main.ftl", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, String)> = vec![];
    for line in std::fs::read_to_string(path).unwrap().lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The literal pieces of a message (between `{ … }` placeables).
fn fragments(value: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = value;
    while let Some(i) = rest.find('{') {
        out.push(rest[..i].to_string());
        rest = rest[i..].split_once('}').map(|(_, r)| r).unwrap_or("");
    }
    out.push(rest.to_string());
    out.into_iter().map(|f| f.trim().to_string()).filter(|f| f.chars().count() > 12).collect()
}

/// English sentences that must not appear on a page in `lang`: pieces longer than 12 characters
/// of English messages that differ from their version in `lang`.
fn english_only(lang: &str) -> Vec<(String, String)> {
    let nl: std::collections::HashMap<String, String> = catalogue(lang).into_iter().collect();
    let mut out = vec![];
    for (k, v) in catalogue("en") {
        let theirs = nl.get(&k).cloned().unwrap_or_default();
        for f in fragments(&v) {
            if !theirs.contains(&f) {
                out.push((k.clone(), f));
            }
        }
    }
    out
}

/// The text a person reads on a page (and hears: alt texts and labels of controls).
fn visible_text(body: &str) -> String {
    let doc = Html::parse_document(body);
    let mut text = String::new();
    let skip = Selector::parse("script, style").unwrap();
    let skipped: Vec<_> = doc.select(&skip).map(|e| e.id()).collect();
    for node in doc.root_element().descendants() {
        if node.ancestors().any(|a| skipped.contains(&a.id())) {
            continue;
        }
        if let Some(t) = node.value().as_text() {
            text.push_str(t);
            text.push(' ');
        }
        if let Some(e) = node.value().as_element() {
            for a in ["alt", "aria-label", "title", "placeholder"] {
                if let Some(v) = e.attr(a) {
                    text.push_str(v);
                    text.push(' ');
                }
            }
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Checked {
    lang: &'static str,
    english: Vec<(String, String)>,
    pages: usize,
}

impl Checked {
    fn page(&mut self, what: &str, page: &Page) {
        assert!(page.status.is_success(), "{what}: {} {}", page.status, page.body);
        let lang = self.lang;
        assert!(
            page.body.contains(&format!("<html lang=\"{lang}\">")),
            "{what} is not in {lang}: {}",
            page.body
        );
        let text = visible_text(&page.body);
        let found: Vec<_> =
            self.english.iter().filter(|(_, f)| text.contains(f.as_str())).cloned().collect();
        assert!(found.is_empty(), "{what} (in {lang}) shows English: {found:?}\n{text}");
        self.pages += 1;
    }
}

#[test]
fn the_fragment_list_is_sane() {
    let e = english_only("nl");
    assert!(e.len() > 150, "{}", e.len());
    assert!(e.iter().any(|(k, _)| k == "chooser-title"));
    assert_eq!(
        fragments("Choose how you prove who you are to { $client }."),
        vec!["Choose how you prove who you are to".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dutch_pages_have_no_english_and_the_language_sticks() {
    pages_have_no_english_and_the_language_sticks("nl").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn french_pages_have_no_english_and_the_language_sticks() {
    pages_have_no_english_and_the_language_sticks("fr").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn german_pages_have_no_english_and_the_language_sticks() {
    pages_have_no_english_and_the_language_sticks("de").await;
}

async fn pages_have_no_english_and_the_language_sticks(lang: &'static str) {
    // A domain name, not an address: WebAuthn (the security-key page) needs one.
    let WithEidas { s, node: eidas, .. } = start_with_eidas(Backend::Sqlite).await;
    let mut ck = Checked { lang, english: english_only(lang), pages: 0 };
    let portal = s.add_client("portal", "portal").await;
    let ehealth = s.add_client("ehealth-app", "ehealth").await;
    let p = s.add_person("85073003328", "anna").await;
    s.add_sms_key(&p, "+32470123456").await;

    // The person picks the language once (the browser itself asks for English).
    let b = Browser::new();
    let chooser = b.follow(&s.base, b.get(&authorize_url(&s, &portal, &pkce(), &[])).await).await;
    assert!(chooser.body.contains("<html lang=\"en\">"));
    // The check would see English: the English chooser trips it.
    let english_text = visible_text(&chooser.body);
    assert!(ck.english.iter().any(|(_, f)| english_text.contains(f.as_str())), "{english_text}");
    let chooser =
        b.follow(&s.base, b.get(&s.url(&format!("/lang/{lang}?back=/login"))).await).await;
    ck.page("chooser", &chooser);
    let form = b.get(&s.url("/login/key")).await;
    ck.page("key login", &form);
    let wrong = b
        .submit(&s.base, &form, "/login/key", &[("username", "anna"), ("password", "nope nope")])
        .await;
    assert_eq!(wrong.data_error().as_deref(), Some("wrong-credentials"));
    ck.page("key login, wrong password", &Page { status: reqwest::StatusCode::OK, ..wrong });
    let code_page = password_step(&s, &b, &p).await;
    ck.page("code entry", &code_page);
    let sent =
        b.submit(&s.base, &code_page, "/login/key/code", &[("method", "sms"), ("code", "")]).await;
    ck.page("code entry, SMS sent", &sent);
    let sms = last_sms_code(&s, "+32470123456").await;
    let done =
        b.submit(&s.base, &sent, "/login/key/code", &[("method", "sms"), ("code", &sms)]).await;
    assert!(done.location().unwrap().starts_with(&portal.redirect_uri));
    s.handle.clock.advance(40);
    // Step-up for eHealth: the reason in the person's language.
    let step_up = b.follow(&s.base, b.get(&authorize_url(&s, &ehealth, &pkce(), &[])).await).await;
    assert!(step_up.body.contains("data-step-up"), "{}", step_up.body);
    ck.page("chooser with the step-up notice", &step_up);
    let account = b.get(&s.url("/account")).await;
    ck.page("account", &account);

    // eIDAS first login: the link page.
    let countries = b.get(&s.url("/login/eidas")).await;
    ck.page("eIDAS countries", &countries);
    let eb = Browser::new();
    eb.get(&s.url(&format!("/lang/{lang}"))).await;
    eb.follow(&s.base, eb.get(&authorize_url(&s, &portal, &pkce(), &[])).await).await;
    let to_node = eb.get(&s.url("/login/eidas?country=NL")).await;
    let loc = to_node.location().unwrap();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&loc)
        .send()
        .await
        .unwrap();
    let req = eidas.last_request().unwrap();
    let citizen = node::citizen("nl-substantial").unwrap();
    let resp = eidas.respond(&req.id, citizen, Outcome::Success).await.unwrap();
    let acs = eb
        .post(
            &s.url("/saml/eidas/acs"),
            &[
                ("SAMLResponse".into(), resp),
                ("RelayState".into(), query(&loc)["RelayState"].clone()),
            ],
        )
        .await;
    let link = eb.follow(&s.base, acs).await;
    ck.page("first-login linking", &link);

    // The office, in that language, registering a person who speaks it.
    let desk = Browser::new();
    let op = s.add_person("90010112395", "clerk").await;
    admin::add_operator(&s.handle.store, "90010112395", "Loket A", s.now()).await.unwrap();
    desk.get(&s.url(&format!("/lang/{lang}"))).await;
    desk.follow(&s.base, desk.get(&s.url("/office")).await).await;
    let cp = password_step(&s, &desk, &op).await;
    s.next_step();
    submit_totp(&s.base, &desk, &cp, &s.code(&op)).await;
    ck.page("office list", &desk.get(&s.url("/office")).await);
    let reg = desk.get(&s.url("/office/register")).await;
    ck.page("office registration", &reg);
    let mut fields = vec![
        ("insz", "85273004559"),
        ("family_name", "Janssens"),
        ("given_names", "Els"),
        ("birthdate", "1985-07-30"),
        ("nationality", "BE"),
        ("document_type", "passport"),
        ("document_number", "EL1234567"),
        ("email", "els@example.be"),
        ("mobile", "+32 470 12 34 99"),
        ("language", lang),
    ];
    let bad = desk.submit(&s.base, &reg, "/office/register", &[("insz", "12345678901")]).await;
    ck.page("office registration with errors", &Page { status: reqwest::StatusCode::OK, ..bad });
    let result = desk.submit(&s.base, &reg, "/office/register", &fields).await;
    ck.page("office result", &result);
    let code = result
        .html()
        .select(&Selector::parse("[data-activation-code]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("data-activation-code")
        .unwrap()
        .to_string();
    fields.clear();

    // Activation, in the language the office chose for the person (no cookie yet).
    let link = mailed_link(&s, "els@example.be").await;
    let person = Browser::new();
    person.get(&s.url(&format!("/lang/{lang}"))).await;
    let first = person.get(&s.url(&link)).await;
    ck.page("activation: code", &first);
    person.submit(&s.base, &first, &link, &[("code", &code)]).await;
    let acct = person.get(&s.url("/activate/account")).await;
    ck.page("activation: username and password", &acct);
    let pw = "Lang en veilig, 2026";
    person
        .submit(
            &s.base,
            &acct,
            "/activate/account",
            &[("username", "els.j"), ("password", pw), ("password_confirm", pw)],
        )
        .await;
    let keys = person.get(&s.url("/activate/keys")).await;
    ck.page("activation: keys", &keys);
    let totp = person.submit(&s.base, &keys, "/activate/keys", &[("key", "totp")]).await;
    ck.page("activation: app key", &totp);
    let keys = person.get(&s.url("/activate/keys")).await;
    let sms = person.submit(&s.base, &keys, "/activate/keys", &[("key", "sms")]).await;
    ck.page("activation: SMS key", &sms);
    let keys = person.get(&s.url("/activate/keys")).await;
    let token = person
        .follow(&s.base, person.submit(&s.base, &keys, "/activate/keys", &[("key", "token")]).await)
        .await;
    ck.page("activation: token card", &token);
    let keys = person.get(&s.url("/activate/keys")).await;
    let wa = person.submit(&s.base, &keys, "/activate/keys", &[("key", "webauthn")]).await;
    ck.page("activation: security key", &wa);
    assert!(ck.pages >= 20, "{}", ck.pages);
}
