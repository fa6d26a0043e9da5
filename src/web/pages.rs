//! Page models for the templates in `templates/`. Handlers fill them; askama renders them.

use crate::i18n::{Lang, Tr};
use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

pub struct LangLink {
    pub code: &'static str,
    pub name: &'static str,
    pub current: bool,
}

/// What every page has: the language and the language switcher.
pub struct Chrome {
    pub tr: Tr,
    /// Where the language switcher returns to (a local path, URL-encoded).
    pub back: String,
    pub langs: Vec<LangLink>,
}

impl Chrome {
    pub fn new(tr: Tr, back: &str) -> Self {
        let langs = Lang::ALL
            .iter()
            .map(|l| LangLink { code: l.as_str(), name: l.endonym(), current: *l == tr.lang })
            .collect();
        let back = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        Self { tr, back, langs }
    }
}

pub struct FormError {
    pub code: &'static str,
    pub text: String,
}

impl FormError {
    pub fn new(tr: &Tr, code: &'static str) -> Self {
        Self { code, text: tr.t(code) }
    }
}

pub struct MethodLink {
    pub id: &'static str,
    pub href: String,
    pub title: String,
    pub help: String,
}

#[derive(Template)]
#[template(path = "chooser.html")]
pub struct Chooser {
    pub c: Chrome,
    pub client: Option<String>,
    pub level: Option<String>,
    /// Why the current login is not enough (step-up), in the person's language.
    pub reasons: Vec<String>,
    pub methods: Vec<MethodLink>,
}

#[derive(Template)]
#[template(path = "key_login.html")]
pub struct KeyLogin {
    pub c: Chrome,
    pub csrf: String,
    pub username: String,
    pub error: Option<FormError>,
}

pub struct KeyOption {
    pub value: &'static str,
    pub label: String,
    pub help: String,
    pub checked: bool,
}

/// Information for the person (an SMS was sent, which card position to type).
pub struct Notice {
    pub text: String,
    pub position: Option<i64>,
    /// A security-key challenge for the browser (JSON for `navigator.credentials.get`).
    pub webauthn: Option<String>,
}

#[derive(Template)]
#[template(path = "key_code.html")]
pub struct KeyCode {
    pub c: Chrome,
    pub csrf: String,
    pub options: Vec<KeyOption>,
    pub error: Option<FormError>,
    pub notice: Option<Notice>,
}

pub struct Link {
    pub href: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub c: Chrome,
    pub title: String,
    pub text: String,
    pub code: Option<&'static str>,
    pub link: Option<Link>,
}

pub struct HistoryRow {
    pub when: String,
    pub method: String,
    pub level: String,
    pub app: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct Account {
    pub c: Chrome,
    pub csrf: String,
    pub name: String,
    pub insz: String,
    pub acr: String,
    pub level: String,
    pub history: Vec<HistoryRow>,
    pub keys: Vec<KeyRowView>,
    pub has_account: bool,
    pub error: Option<FormError>,
}

/// An app holding a live grant (`/account/apps`).
pub struct AppView {
    pub client_id: String,
    pub name: String,
    pub since: String,
    pub last_token: String,
    pub level: String,
    /// Where its revoke form posts.
    pub revoke: String,
}

/// The tokens one app got in the last 90 days.
pub struct AppHistoryView {
    pub client_id: String,
    pub name: String,
    pub issued: Vec<String>,
}

#[derive(Template)]
#[template(path = "account_apps.html")]
pub struct AccountApps {
    pub c: Chrome,
    pub csrf: String,
    pub apps: Vec<AppView>,
    pub history: Vec<AppHistoryView>,
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirm {
    pub c: Chrome,
    pub csrf: String,
    pub post_logout_redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub state: Option<String>,
}

/// Renders a template with a status; a template error becomes a plain 500.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The page after a logout: the broker session has ended.
pub fn logged_out(tr: &Tr) -> Response {
    message(
        StatusCode::OK,
        tr,
        "logged-out-title",
        tr.t("logged-out"),
        None,
        Some(Link { href: "/login".into(), label: tr.t("back-to-start") }),
    )
}

/// A message page: title key, text (already translated), an error code for tests and assistive
/// tools, and a link that says what to do next.
pub fn message(
    status: StatusCode,
    tr: &Tr,
    title_key: &str,
    text: String,
    code: Option<&'static str>,
    link: Option<Link>,
) -> Response {
    let page =
        Message { c: Chrome::new(tr.clone(), "/"), title: tr.t(title_key), text, code, link };
    render(status, &page)
}

pub struct MailItem {
    pub when: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
pub struct Mailbox {
    pub c: Chrome,
    pub messages: Vec<MailItem>,
}

pub struct CountryLink {
    pub code: String,
    pub name: String,
}

/// The wallet login's waiting page (SPEC §12).
#[derive(Template)]
#[template(path = "eudiw_wait.html")]
pub struct WalletWait {
    pub c: Chrome,
    /// `openid4vp://…`: opened by a wallet on this device.
    pub wallet_uri: String,
    /// The link to the wallet on this device (`[eudiw] wallet_url`, else `wallet_uri`).
    pub same_device_uri: String,
    /// The same URI as a QR code (data URI), for a wallet on another device.
    pub qr: String,
    pub poll: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "countries.html")]
pub struct Countries {
    pub c: Chrome,
    pub countries: Vec<CountryLink>,
}

#[derive(Template)]
#[template(path = "saml_post.html")]
pub struct SamlPost {
    pub c: Chrome,
    pub action: String,
    pub saml_request: String,
    pub relay_state: String,
    pub country: String,
}

#[derive(Template)]
#[template(path = "link.html")]
pub struct Link2 {
    pub c: Chrome,
    pub csrf: String,
    pub family_name: String,
    pub given_name: String,
    pub birthdate: String,
    pub error: Option<FormError>,
}

/// A form field that failed a rule; templates tie it to its field with `aria-describedby`.
pub struct FieldErr {
    pub field: &'static str,
    pub text: String,
}

pub struct RegistrationRow {
    pub id: String,
    pub name: String,
    pub insz: String,
    pub status: &'static str,
    pub status_text: String,
    pub created: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "office.html")]
pub struct OfficeList {
    pub c: Chrome,
    pub office: String,
    pub rows: Vec<RegistrationRow>,
}

#[derive(Template)]
#[template(path = "office_register.html")]
pub struct OfficeRegister {
    pub c: Chrome,
    pub csrf: String,
    pub document_types: Vec<(&'static str, String)>,
    pub languages: Vec<&'static str>,
    pub v: crate::office::RegistrationForm,
    pub errors: Vec<FieldErr>,
    /// A live registration exists: a link to it (empty when it belongs to another office).
    pub duplicate: Option<String>,
}

impl OfficeRegister {
    pub fn err(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.text.as_str())
    }
    pub fn val(&self, field: &str) -> &str {
        let v = &self.v;
        let f = match field {
            "insz" => &v.insz,
            "family_name" => &v.family_name,
            "given_names" => &v.given_names,
            "birthdate" => &v.birthdate,
            "nationality" => &v.nationality,
            "document_type" => &v.document_type,
            "document_number" => &v.document_number,
            "email" => &v.email,
            "mobile" => &v.mobile,
            "language" => &v.language,
            "request_bis" => &v.request_bis,
            _ => return "",
        };
        f.as_deref().unwrap_or_default()
    }
    pub fn same(&self, a: &str, b: &str) -> bool {
        a == b
    }
    /// Whether a select's option is the chosen one.
    pub fn chosen(&self, field: &str, value: &str) -> bool {
        self.val(field) == value
    }
    pub fn lang_name(&self, code: &str) -> String {
        self.c.tr.t(&format!("language-{code}"))
    }
}

#[derive(Template)]
#[template(path = "office_result.html")]
pub struct OfficeResult {
    pub c: Chrome,
    pub name: String,
    pub code: Option<String>,
    pub expires: String,
    pub expires_office: String,
    pub email: String,
    pub person_lang: Lang,
    pub instructions_title: String,
    pub instructions: String,
    pub ehealth_note: String,
    pub id: String,
    pub public_url: String,
}

#[derive(Template)]
#[template(path = "office_registration.html")]
pub struct OfficeRegistration {
    pub c: Chrome,
    pub csrf: String,
    pub r: RegistrationRow,
    pub birthdate: String,
    pub nationality: String,
    pub document: String,
    pub email: String,
    pub mobile: String,
    pub needs_bis: bool,
    pub reissuable: bool,
    pub error: Option<FormError>,
}

#[derive(Template)]
#[template(path = "activate_code.html")]
pub struct ActivateCode {
    pub c: Chrome,
    pub csrf: String,
    pub token: String,
    pub expires: String,
    pub error: Option<FormError>,
}

#[derive(Template)]
#[template(path = "activate_account.html")]
pub struct ActivateAccount {
    pub c: Chrome,
    pub csrf: String,
    pub username: String,
    pub error: Option<FieldErr>,
}

impl ActivateAccount {
    pub fn err(&self, field: &str) -> Option<&str> {
        self.error.as_ref().filter(|e| e.field == field).map(|e| e.text.as_str())
    }
}

#[derive(Template)]
#[template(path = "activate_keys.html")]
pub struct ActivateKeys {
    pub c: Chrome,
    pub csrf: String,
    pub username: String,
    pub options: Vec<KeyOption>,
    /// Labels of the keys already active on the account.
    pub active: Vec<String>,
    pub can_finish: bool,
    /// Adding a key from `/account` (not a first activation).
    pub from_account: bool,
    pub error: Option<FormError>,
}

#[derive(Template)]
#[template(path = "activate_totp.html")]
pub struct ActivateTotp {
    pub c: Chrome,
    pub csrf: String,
    /// The QR code as an SVG data URI (rendered on the server; no script).
    pub qr: String,
    pub secret: String,
    pub otpauth_uri: String,
    pub error: Option<FormError>,
}

#[derive(Template)]
#[template(path = "activate_sms.html")]
pub struct ActivateSms {
    pub c: Chrome,
    pub csrf: String,
    pub phone: String,
    /// The masked number a code was sent to; then the page asks for the code.
    pub sent_to: Option<String>,
    pub error: Option<FormError>,
}

#[derive(Template)]
#[template(path = "activate_token.html")]
pub struct ActivateToken {
    pub c: Chrome,
    pub card: Vec<(i64, String)>,
}

#[derive(Template)]
#[template(path = "activate_webauthn.html")]
pub struct ActivateWebauthn {
    pub c: Chrome,
    pub csrf: String,
    /// JSON for `navigator.credentials.create`.
    pub challenge: String,
    pub error: Option<FormError>,
}

pub struct KeyRowView {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub added: String,
    pub detail: String,
}
