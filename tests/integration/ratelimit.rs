//! Attack: one address floods the token endpoint and the login pages (issue #7, hardening).
//! Past its burst it gets 429 with `Retry-After` (JSON for /token, a page for browsers) before
//! any work is done; another address (a second loopback address, a real different peer) is
//! served as usual; the refusals are counted in `/metrics`.

use crate::both_backends;
use crate::common::*;
use std::net::{IpAddr, Ipv4Addr};

both_backends!(a_flood_from_one_address_is_refused_and_others_are_served);

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token_attempt(http: &reqwest::Client, s: &TestServer) -> reqwest::Response {
    http.post(s.url("/token"))
        .basic_auth("portal", Some("guessed-secret"))
        .form(&[("grant_type", "authorization_code"), ("code", "guessed-code")])
        .send()
        .await
        .unwrap()
}

async fn a_flood_from_one_address_is_refused_and_others_are_served(backend: Backend) {
    const RATE: u32 = 5;
    const BURST: u32 = 10;
    let s = TestServer::start_with(backend, |cfg| {
        cfg.server.rate_limit_per_s = RATE;
        cfg.server.rate_limit_burst = BURST;
    })
    .await;
    s.add_client("portal", "portal").await;
    let attacker = client_from([127, 0, 0, 1]);
    let started = std::time::Instant::now();
    let flood: Vec<reqwest::Response> =
        futures::future::join_all((0..100).map(|_| token_attempt(&attacker, &s))).await;
    let elapsed = started.elapsed().as_secs_f64();
    let refused: Vec<&reqwest::Response> = flood.iter().filter(|r| r.status() == 429).collect();
    let served = flood.len() - refused.len();
    assert!(
        (served as f64) <= BURST as f64 + RATE as f64 * elapsed + 1.0,
        "{served} served in {elapsed:.2} s"
    );
    assert!(refused.len() >= 50, "{} refused", refused.len());
    let retry: u64 = refused[0].headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value =
        flood.into_iter().find(|r| r.status() == 429).unwrap().json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    // Another address is not affected: its wrong guess gets the ordinary answer.
    let other = client_from([127, 0, 0, 2]);
    assert_eq!(token_attempt(&other, &s).await.status(), 401);
    // The attacker is still refused (a second flood: at most what the refill allows in the
    // meantime gets through, so a slow machine cannot make this pass or fail by timing); and the
    // refusal happens before client authentication.
    let again: Vec<reqwest::Response> =
        futures::future::join_all((0..20).map(|_| token_attempt(&attacker, &s))).await;
    let allowed = RATE as f64 * started.elapsed().as_secs_f64() + 1.0;
    let refused_again = again.iter().filter(|r| r.status() == 429).count();
    assert!(refused_again >= 1, "the attacker is refused again");
    assert!((again.len() - refused_again) as f64 <= allowed, "{refused_again} of 20 refused");

    // The login pages have an allowance of their own: still open to the attacker's address
    // until it floods them too, then a page in the person's language.
    let first = attacker.get(s.url("/login/key")).send().await.unwrap();
    assert_eq!(first.status(), 200, "the browser allowance is separate from the token one");
    let pages: Vec<reqwest::Response> = futures::future::join_all(
        (0..60).map(|_| attacker.get(s.url("/login/key")).header("accept-language", "nl").send()),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let page = pages.into_iter().find(|r| r.status() == 429).expect("the page flood is refused");
    assert!(page.headers().contains_key("retry-after"));
    let html = page.text().await.unwrap();
    assert!(html.contains("data-error=\"rate-limited\""), "{html}");
    assert!(html.contains("Te veel verzoeken"), "in Dutch: {html}");
    let other_page = other.get(s.url("/login/key")).send().await.unwrap();
    assert_eq!(other_page.status(), 200);

    // Discovery and JWKS are not limited (cheap, cached by apps).
    for _ in 0..30 {
        assert_eq!(attacker.get(s.url("/jwks")).send().await.unwrap().status(), 200);
    }

    let metrics = reqwest::get(s.url("/metrics")).await.unwrap().text().await.unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("cozo_throttle_events_total{") && l.contains("rate_limited"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 51.0, "{line}");
}
