//! Debian's headless Chromium driven over WebDriver (chromedriver), with the DevTools protocol
//! reached through chromedriver's `goog/cdp/execute` where WebDriver has no command (virtual
//! WebAuthn authenticators, device metrics).

use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::future::Future;
use std::time::{Duration, Instant};

/// Where Debian's `chromium` and `chromium-driver` packages put them (scripts/deps.sh installs
/// both); `COZO_CHROMIUM` / `COZO_CHROMEDRIVER` override.
pub fn chromium() -> String {
    std::env::var("COZO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}
pub fn chromedriver() -> String {
    std::env::var("COZO_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// One browser at a time: the machine has two cores, and each journey already runs a broker.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const ENTER: &str = "\u{E007}";
pub const TAB: &str = "\u{E004}";

/// Runs `body` with a fresh headless Chromium (own profile, window `width` px wide, preferred
/// language `lang`), and always closes the browser, also when `body` panics. A missing Chromium
/// or chromedriver fails the test: it never skips.
pub async fn with_chrome<F, Fut>(width: u32, lang: &str, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()>,
{
    use futures::FutureExt;
    let _one = ONE_AT_A_TIME.lock().await;
    let (browser, driver) = (chromium(), chromedriver());
    for (path, pkg) in [(&browser, "chromium"), (&driver, "chromium-driver")] {
        assert!(
            std::path::Path::new(path).exists(),
            "{path} is missing: the browser tests need Debian's `{pkg}` package \
             (`make deps` / scripts/deps.sh installs it)"
        );
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {driver}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": browser,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--no-first-run", "--disable-extensions",
                "--disable-features=Translate,OptimizationHints,MediaRouter,PasswordLeakDetection",
                "--force-device-scale-factor=1", "--hide-scrollbars",
                format!("--window-size={width},900"), format!("--lang={lang}"),
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "prefs": {
                "intl.accept_languages": lang,
                "credentials_enable_service": false,
                "profile.password_manager_enabled": false,
            },
        },
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let c = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not start {browser}: {e}"));
    let r = std::panic::AssertUnwindSafe(body(c.clone())).catch_unwind().await;
    let _ = c.close().await;
    let _ = child.kill().await;
    drop(profile);
    if let Err(p) = r {
        std::panic::resume_unwind(p);
    }
}

/// A DevTools protocol command through chromedriver (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"cmd": self.cmd, "params": self.params}).to_string()))
    }
}

pub async fn cdp(c: &Client, cmd: &str, params: Value) -> Value {
    c.issue_cmd(Cdp { cmd: cmd.into(), params }).await.unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
}

/// Runs a script (wrapped in a function by chromedriver; `return` gives the value).
pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

pub async fn find(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no element {css}: {e}"))
}

pub async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// Does `action` and waits until the browser shows a new, fully loaded document.
pub async fn navigate<Fut: Future>(c: &Client, action: Fut) -> Fut::Output {
    js(c, "window.__cozoOld = true; return null").await;
    let out = action.await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fresh = c
            .execute(
                "return typeof window.__cozoOld === 'undefined' && document.readyState === 'complete'",
                vec![],
            )
            .await;
        if let Ok(Value::Bool(true)) = fresh {
            break;
        }
        let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        assert!(Instant::now() < deadline, "no new page after the action (still at {url})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

/// Waits until the URL's path is `p` (across redirects and auto-submitting forms).
pub async fn wait_path(c: &Client, p: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = js(c, "return document.readyState").await == json!("complete");
        if done && path(c).await == p {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never reached {p}; at {}",
            c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Types into the field (focusing it first, as a click or Tab would).
pub async fn type_in(c: &Client, css: &str, text: &str) -> Element {
    let e = find(c, css).await;
    e.clear().await.ok();
    e.send_keys(text).await.unwrap_or_else(|err| panic!("typing into {css}: {err}"));
    e
}

/// Presses Enter in the element (a field submits its form; a link or button is activated).
pub async fn press_enter(c: &Client, e: &Element) {
    navigate(c, async { e.send_keys(ENTER).await.unwrap() }).await;
}

/// Chooses a radio button with the keyboard (focus + Space).
pub async fn choose(c: &Client, css: &str) {
    let e = find(c, css).await;
    e.send_keys(" ").await.unwrap();
    assert!(e.is_selected().await.unwrap(), "{css} not chosen by Space");
}

pub async fn text(c: &Client, css: &str) -> String {
    find(c, css).await.text().await.unwrap()
}

pub async fn attr(c: &Client, css: &str, name: &str) -> String {
    find(c, css).await.attr(name).await.unwrap().unwrap_or_else(|| panic!("{css} has no {name}"))
}
