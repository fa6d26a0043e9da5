//! Stand-alone demo relying app.
//!
//! Environment:
//! * `DEMO_ISSUER` (required): the broker's issuer, e.g. `http://localhost:8080`;
//! * `DEMO_PUBLIC_URL` (default `http://localhost:8090`): this app's public URL;
//! * `DEMO_LISTEN` (default `127.0.0.1:8090`): the address to listen on;
//! * `DEMO_APPS` (required): JSON array of apps, e.g.
//!   `[{"title":"Portal","path":"portal","client_id":"demo-portal","scope":["openid","profile"],"description":"…"}]`
//!   (`client_secret` optional: without it the app is a public client).

use anyhow::Context as _;
use idp_mocks::demo_app::{serve, DemoApp, DemoAppConfig};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let issuer = std::env::var("DEMO_ISSUER").context("DEMO_ISSUER is not set")?;
    let issuer = url::Url::parse(&issuer).with_context(|| format!("DEMO_ISSUER {issuer:?}"))?;
    let public_url = env_or("DEMO_PUBLIC_URL", "http://localhost:8090");
    let public_url =
        url::Url::parse(&public_url).with_context(|| format!("DEMO_PUBLIC_URL {public_url:?}"))?;
    let listen = env_or("DEMO_LISTEN", "127.0.0.1:8090");
    let apps = std::env::var("DEMO_APPS").context("DEMO_APPS is not set")?;
    let apps: Vec<DemoApp> =
        serde_json::from_str(&apps).context("DEMO_APPS is not a JSON array of apps")?;

    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("demo app on {public_url} (listening on {listen}), issuer {issuer}");
    let cfg = DemoAppConfig { issuer, public_url, apps };
    serve(listener, cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
