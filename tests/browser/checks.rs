//! What every page of the journeys must pass: axe-core (no serious or critical violation),
//! the language, labels, errors tied to their fields and announced, a keyboard-only tab order
//! with a visible focus, and no horizontal scroll at 375 px.

use crate::chrome::{cdp, js, TAB};
use fantoccini::Client;
use serde_json::json;

/// axe-core 4.14.1 (MPL-2.0), vendored: see vendor/README.md.
const AXE: &str = include_str!("vendor/axe.min.js");

/// All the checks, on the page the browser shows now. `lang` is the expected `<html lang>`
/// (None for pages that are not the broker's own, e.g. the mock eIDAS node: checked by axe
/// only).
pub async fn page_ok(c: &Client, lang: Option<&str>, what: &str) {
    keyboard(c, what).await;
    axe(c, what).await;
    if let Some(lang) = lang {
        let got = js(c, "return document.documentElement.lang").await;
        assert_eq!(got, json!(lang), "{what}: <html lang> is {got}, the page should be in {lang}");
        fields(c, what).await;
        no_inline_script(c, what).await;
        narrow(c, what).await;
    }
}

/// axe-core injected through WebDriver's script execution (chromedriver runs it with the
/// DevTools protocol, which the page's CSP does not govern: no `unsafe-inline` needed).
pub async fn axe(c: &Client, what: &str) {
    let loaded = js(c, "return typeof window.axe").await;
    if loaded != json!("object") {
        js(c, &format!("{AXE}\n;return typeof window.axe")).await;
    }
    let r = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] }).then(function (r) {
               done(r.violations.map(function (v) {
                 return [v.impact, v.impact + ' ' + v.id + ': ' + v.help + '\\n    ' + v.nodes.map(function (n) {
                   return n.html.slice(0, 160) + ' -> ' + (n.failureSummary || '').replace(/\\n/g, ' ');
                 }).join('\\n    ')];
               }));
             }).catch(function (e) { done([['critical', 'axe failed: ' + e]]); });",
            vec![],
        )
        .await
        .unwrap();
    let all: Vec<(String, String)> = serde_json::from_value(r).unwrap();
    let (v, minor): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|(impact, _)| impact == "serious" || impact == "critical");
    let v: Vec<String> = v.into_iter().map(|(_, t)| t).collect();
    for (_, t) in minor {
        eprintln!("{what}: axe-core (not failing): {t}");
    }
    assert!(v.is_empty(), "{what}: axe-core finds {} problems:\n  {}", v.len(), v.join("\n  "));
}

/// Every field has a label; every field marked invalid names its error with
/// `aria-describedby`, and an error summary is announced (`role=alert`).
async fn fields(c: &Client, what: &str) {
    let problems = js(
        c,
        "var out = [];
         document.querySelectorAll('input, select, textarea').forEach(function (f) {
           if (f.type === 'hidden') return;
           var named = (f.labels && f.labels.length) || f.getAttribute('aria-label') || f.getAttribute('aria-labelledby');
           if (!named) out.push('no label: ' + f.outerHTML.slice(0, 120));
           if (f.getAttribute('aria-invalid') === 'true') {
             var ids = (f.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
             var errs = ids.map(function (i) { return document.getElementById(i); })
               .filter(function (e) { return e && (e.classList.contains('error') || e.getAttribute('role') === 'alert'); });
             if (!errs.length) out.push('invalid without its error in aria-describedby: ' + f.outerHTML.slice(0, 120));
             if (!document.querySelector('[role=alert]:not([hidden])')) out.push('an error that is not announced (no role=alert)');
           }
           (f.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean).forEach(function (i) {
             if (!document.getElementById(i)) out.push('aria-describedby names a missing id ' + i);
           });
         });
         return out;",
    )
    .await;
    let problems: Vec<String> = serde_json::from_value(problems).unwrap();
    assert!(problems.is_empty(), "{what}: {problems:#?}");
}

/// Tab from the top of the page reaches every control in document order (one stop per radio
/// group), each with a visible focus indicator; no positive tabindex.
async fn keyboard(c: &Client, what: &str) {
    let n = js(
        c,
        "var seen = {};
         window.__cozoTab = Array.from(document.querySelectorAll(
             'a[href], button, input, select, textarea, summary, [tabindex]')).filter(function (e) {
           if (e.disabled || e.type === 'hidden' || e.tabIndex < 0) return false;
           if (!e.checkVisibility({ visibilityProperty: true, contentVisibilityAuto: true })) return false;
           if (e.type === 'radio') {
             if (seen[e.name]) return false;
             seen[e.name] = true;
           }
           return true;
         });
         // a checked radio later in its group stands for the group at the first one's place
         window.__cozoTab = window.__cozoTab.map(function (e) {
           if (e.type !== 'radio') return e;
           var c = document.querySelector('input[type=radio][name=\"' + e.name + '\"]:checked');
           return c || e;
         });
         if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
         return [window.__cozoTab.length,
                 document.querySelectorAll('[tabindex]:not([tabindex=\"0\"]):not([tabindex=\"-1\"])').length];",
    )
    .await;
    let (count, positive) = (n[0].as_u64().unwrap(), n[1].as_u64().unwrap());
    assert_eq!(positive, 0, "{what}: positive tabindex breaks the tab order");
    let (mut i, mut presses) = (0, 0);
    while i < count {
        presses += 1;
        assert!(presses < count * 4 + 10, "{what}: Tab never reaches control {i}");
        let body = c.active_element().await.unwrap();
        body.send_keys(TAB).await.unwrap();
        let r = js(
            c,
            "var a = document.activeElement, s = getComputedStyle(a);
             var visible = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
             return [window.__cozoTab.indexOf(a), visible, a.outerHTML.slice(0, 100),
                     window.__cozoTab.map(function (e) { return e.outerHTML.slice(0, 80); })];",
        )
        .await;
        // A date field has a stop per part (day, month, year): the same control again.
        if i > 0 && r[0] == json!(i - 1) {
            continue;
        }
        assert_eq!(
            r[0],
            json!(i),
            "{what}: Tab #{presses} lands on {} instead of control {i} of {:#}",
            r[2],
            r[3]
        );
        assert_eq!(r[1], json!(true), "{what}: no visible focus on {}", r[2]);
        i += 1;
    }
    js(c, "if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); return null").await;
}

/// At 375 CSS px wide (a small phone) nothing scrolls sideways.
async fn narrow(c: &Client, what: &str) {
    cdp(
        c,
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 375, "height": 740, "deviceScaleFactor": 1, "mobile": true}),
    )
    .await;
    let w = js(c, "return [document.documentElement.scrollWidth, window.innerWidth]").await;
    cdp(c, "Emulation.clearDeviceMetricsOverride", json!({})).await;
    let (scroll, inner) = (w[0].as_u64().unwrap(), w[1].as_u64().unwrap());
    assert!(
        scroll <= inner,
        "{what}: {scroll} px wide at a {inner} px viewport (horizontal scroll)"
    );
}

/// The CSP allows scripts from 'self' only: no inline script, no event-handler attributes.
async fn no_inline_script(c: &Client, what: &str) {
    let inline = js(
        c,
        "var out = [];
         document.querySelectorAll('script:not([src])').forEach(function (s) { out.push(s.outerHTML.slice(0, 80)); });
         document.querySelectorAll('*').forEach(function (e) {
           Array.from(e.attributes).forEach(function (a) { if (/^on/i.test(a.name)) out.push(e.tagName + ' ' + a.name); });
         });
         return out;",
    )
    .await;
    assert_eq!(inline, json!([]), "{what}: inline script");
}
