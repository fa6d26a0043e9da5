//! Stand-alone mock of the Belgian federal authentication service (FAS/CSAM) as an OpenID
//! Connect provider.
//!
//! Environment:
//! * `MOCK_LISTEN` (default `127.0.0.1:8094`): the address to listen on;
//! * `MOCK_PUBLIC_URL` (default `http://localhost:8094`): the issuer (discovery at
//!   `{MOCK_PUBLIC_URL}/.well-known/openid-configuration`); a path such as `/fas/oauth2` is
//!   served as well;
//! * `FAS_CLIENT_ID` (default `cozo-broker`), `FAS_CLIENT_SECRET` (default `demo-fas-secret`);
//! * `FAS_REDIRECT_URI` (default `http://localhost:8080/oidc/fas/callback`): the registered
//!   redirect URI (several may be given, separated by commas or spaces);
//! * `RUST_LOG` (default `info`).
//!
//! The signing key is generated at start-up: relying parties must fetch the JWKS again.
//! See `idp_mocks::fas` for the means, levels and test persons.

use anyhow::Context as _;
use idp_mocks::fas::{self, serve, FasConfig, Means, MockFas};

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

    let listen = env_or("MOCK_LISTEN", "127.0.0.1:8094");
    let public_url = env_or("MOCK_PUBLIC_URL", "http://localhost:8094");
    url::Url::parse(&public_url).with_context(|| format!("MOCK_PUBLIC_URL {public_url:?}"))?;
    let redirect_uris: Vec<String> =
        env_or("FAS_REDIRECT_URI", "http://localhost:8080/oidc/fas/callback")
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    for uri in &redirect_uris {
        url::Url::parse(uri).with_context(|| format!("FAS_REDIRECT_URI {uri:?}"))?;
    }
    let config = FasConfig {
        base_url: public_url.trim_end_matches('/').to_string(),
        client_id: env_or("FAS_CLIENT_ID", "cozo-broker"),
        client_secret: env_or("FAS_CLIENT_SECRET", "demo-fas-secret"),
        redirect_uris,
    };
    let provider = MockFas::new(config)?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (MOCK_LISTEN)"))?;

    eprintln!(
        "mock FAS on {} (listening on {listen}), discovery {}",
        provider.issuer(),
        provider.discovery_url()
    );
    eprintln!(
        "  client {}, redirect URIs: {}",
        provider.client_id(),
        provider.redirect_uris().join(", ")
    );
    eprintln!("  means (acr / amr):");
    for m in Means::ALL {
        eprintln!("    {:<6} {} / {}", m.as_str(), m.acr(), m.amr());
    }
    eprintln!("  test persons:");
    for p in fas::test_persons() {
        eprintln!("    {:<7} {}  {} {}", p.key, p.insz, p.given_name, p.surname);
    }

    serve(listener, provider, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("mock FAS failed")
}
