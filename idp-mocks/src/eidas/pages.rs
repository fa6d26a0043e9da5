//! The node's HTML pages (no inline script or style; forms work without JavaScript).

use super::citizens::{citizens_of, country_name, Citizen, COUNTRIES};
use super::request::ReceivedRequest;
use super::xml::escape;

pub const CSS: &str = "\
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1b1b1b}\
header{background:#003399;color:#fff;padding:.8rem 1.5rem;font-weight:600}\
header.digid{background:#b05500}\
main{max-width:38rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:6px;\
box-shadow:0 1px 3px rgba(0,0,0,.15)}\
h1{font-size:1.4rem;margin-top:0}\
label{display:block;margin:.4rem 0}\
fieldset{border:1px solid #ccd;border-radius:4px;margin:1rem 0}\
input[type=text],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}\
button{padding:.5rem 1.2rem;margin:.6rem .4rem .2rem 0;border:0;border-radius:4px;\
background:#003399;color:#fff;font-size:1rem;cursor:pointer}\
button.secondary{background:#777}\
.digid button{background:#b05500}\
.error{color:#b00020;font-weight:600}\
.small{color:#555;font-size:.9rem}\
code{font-size:.85rem;word-break:break-all}\
";

/// Submits the form marked `data-autosubmit` once the page has loaded.
pub const AUTOSUBMIT_JS: &str = "\
document.addEventListener('DOMContentLoaded',function(){\
var f=document.querySelector('form[data-autosubmit]');if(f){f.submit();}});\n";

fn layout(title: &str, header: &str, header_class: &str, body: &str, script: bool) -> String {
    let script = if script { "<script src=\"/autosubmit.js\" defer></script>" } else { "" };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/node.css\">{script}</head>\
         <body><header class=\"{header_class}\">{}</header><main>{body}</main></body></html>",
        escape(title),
        escape(header),
    )
}

const NODE_HEADER: &str = "eIDAS node (mock)";

fn requester(req: &ReceivedRequest) -> String {
    escape(req.provider_name.as_deref().unwrap_or(&req.issuer))
}

fn cancel_form(key: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/login/{key}/cancel\">\
         <button type=\"submit\" class=\"secondary\" name=\"cancel\" value=\"1\">{label}</button>\
         </form>"
    )
}

fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" data-error=\"{0}\">{0}</p>", escape(e)))
        .unwrap_or_default()
}

/// "Choose your country".
pub fn country_page(key: &str, req: &ReceivedRequest, error: Option<&str>) -> String {
    let options: String = COUNTRIES
        .iter()
        .map(|(code, name)| {
            format!(
                "<label><input type=\"radio\" name=\"country\" value=\"{code}\" required> \
                 {name} ({code})</label>"
            )
        })
        .collect();
    let body = format!(
        "<h1>Choose your country</h1>{}\
         <p><strong>{}</strong> asks you to identify yourself with the electronic identity of \
         your country.</p>\
         <form method=\"post\" action=\"/login/{key}\"><fieldset><legend>Country</legend>\
         {options}</fieldset><button type=\"submit\">Continue</button></form>{}",
        error_line(error),
        requester(req),
        cancel_form(key, "Cancel"),
    );
    layout("Choose your country", NODE_HEADER, "", &body, false)
}

fn citizen_options(user_label: &str, citizens: &[&Citizen], req: &ReceivedRequest) -> String {
    let default = citizens.iter().find(|c| req.accepts_level(c.level)).map(|c| c.key);
    citizens
        .iter()
        .map(|c| {
            format!(
                "<label><input type=\"radio\" name=\"citizen\" value=\"{key}\"{checked}> \
                 {given} {family} (born {dob}) — {means}, level {level}{user}</label>",
                key = c.key,
                checked = if Some(c.key) == default { " checked" } else { "" },
                given = escape(c.given_name),
                family = escape(c.family_name),
                dob = c.date_of_birth,
                means = escape(c.means),
                level = c.level,
                user = if user_label.is_empty() {
                    String::new()
                } else {
                    format!(" <span class=\"small\">{user_label}{}</span>", escape(c.username))
                },
            )
        })
        .collect()
}

/// The DigiD step for NL.
pub fn digid_page(key: &str, req: &ReceivedRequest, error: Option<&str>) -> String {
    let citizens: Vec<&Citizen> = citizens_of("NL").collect();
    let body = format!(
        "<div class=\"digid\"><h1>DigiD</h1>{}\
         <p>Inloggen bij <strong>{}</strong> via eIDAS (log in with DigiD).</p>\
         <form method=\"post\" action=\"/login/{key}/authenticate\">\
         <label>DigiD gebruikersnaam (username)\
         <input type=\"text\" name=\"username\" value=\"\" autocomplete=\"username\"></label>\
         <label>Wachtwoord (password, any)\
         <input type=\"password\" name=\"password\" value=\"\" autocomplete=\"current-password\">\
         </label>\
         <fieldset><legend>Or choose a test citizen</legend>{}</fieldset>\
         <button type=\"submit\">Inloggen</button></form>{}</div>",
        error_line(error),
        requester(req),
        citizen_options("username: ", &citizens, req),
        cancel_form(key, "Annuleren (cancel)"),
    );
    layout("DigiD – Inloggen", "DigiD", "digid", &body, false)
}

/// The test-citizen step for the other countries.
pub fn citizens_page(
    key: &str,
    country: &str,
    req: &ReceivedRequest,
    error: Option<&str>,
) -> String {
    let citizens: Vec<&Citizen> = citizens_of(country).collect();
    let name = country_name(country).unwrap_or(country);
    let body = format!(
        "<h1>Log in – {}</h1>{}\
         <p><strong>{}</strong> asks you to identify yourself.</p>\
         <form method=\"post\" action=\"/login/{key}/authenticate\">\
         <fieldset><legend>Test citizen</legend>{}</fieldset>\
         <button type=\"submit\">Log in</button></form>{}",
        escape(name),
        error_line(error),
        requester(req),
        citizen_options("", &citizens, req),
        cancel_form(key, "Cancel"),
    );
    layout(&format!("Log in – {name}"), &format!("{NODE_HEADER} – {name}"), "", &body, false)
}

/// The auto-submitting form that carries the response to the SP.
pub fn post_page(acs_url: &str, saml_response: &str, relay_state: Option<&str>) -> String {
    let relay = relay_state
        .map(|r| format!("<input type=\"hidden\" name=\"RelayState\" value=\"{}\">", escape(r)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Returning to the service</h1>\
         <form method=\"post\" action=\"{}\" data-autosubmit>\
         <input type=\"hidden\" name=\"SAMLResponse\" value=\"{}\">{relay}\
         <p>If nothing happens, press Continue.</p>\
         <button type=\"submit\">Continue</button></form>",
        escape(acs_url),
        escape(saml_response),
    );
    layout("Returning to the service", NODE_HEADER, "", &body, true)
}

/// An error page; `code` goes into `data-error`.
pub fn error_page(code: &str, message: &str) -> String {
    let body = format!(
        "<h1>Request refused</h1><p class=\"error\" data-error=\"{}\">{}</p>",
        escape(code),
        escape(message)
    );
    layout("eIDAS node – error", NODE_HEADER, "", &body, false)
}

/// The node's home page.
pub fn index_page(entity_id: &str, metadata_url: &str) -> String {
    let body = format!(
        "<h1>Mock eIDAS node</h1><p>A stand-in for a CEF eIDAS node with DigiD behind it, for \
         tests and demos.</p><p>Entity ID: <code>{}</code></p>\
         <p><a href=\"{}\">Metadata</a></p>",
        escape(entity_id),
        escape(metadata_url)
    );
    layout("Mock eIDAS node", NODE_HEADER, "", &body, false)
}
