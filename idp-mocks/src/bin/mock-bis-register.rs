//! Stand-alone mock of the Bis register.
//!
//! Environment: `MOCK_LISTEN` (default `127.0.0.1:8092`), `RUST_LOG` (default `info`).
//! Serves `GET /persons/{bis}` and the control API (`POST /control`, `GET /control/stats`)
//! until Ctrl-C; see `idp_mocks::bis_register` for the test persons.

use anyhow::Context as _;
use idp_mocks::bis_register::{self, MockBisRegister};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let listen = std::env::var("MOCK_LISTEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:8092".to_string());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (MOCK_LISTEN)"))?;
    let addr = listener.local_addr().context("no local address")?;

    eprintln!("mock Bis register on http://{addr} (GET /persons/{{bis}}); test persons:");
    for p in bis_register::test_persons() {
        eprintln!(
            "  {}  {}, {}  born {}",
            p.bis,
            p.family_name,
            p.given_names.join(" "),
            p.birthdate
        );
    }

    MockBisRegister::new()
        .serve_with_shutdown(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("mock Bis register failed")
}
