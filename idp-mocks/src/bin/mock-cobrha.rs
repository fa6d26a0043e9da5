//! Stand-alone mock of CoBRHA (the RIZIV/INAMI registry of healthcare actors).
//!
//! Environment: `MOCK_LISTEN` (default `127.0.0.1:8091`), `RUST_LOG` (default `info`).
//! Serves `GET /professionals/{insz}` and the control API (`POST /control`,
//! `GET /control/stats`) until Ctrl-C; see `idp_mocks::cobrha` for the test care providers.

use anyhow::Context as _;
use idp_mocks::cobrha::{self, MockCobrha, Status};

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
        .unwrap_or_else(|| "127.0.0.1:8091".to_string());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (MOCK_LISTEN)"))?;
    let addr = listener.local_addr().context("no local address")?;

    eprintln!("mock CoBRHA on http://{addr} (GET /professionals/{{insz}}); test care providers:");
    for p in cobrha::test_professionals() {
        let professions: Vec<String> = p
            .professions
            .iter()
            .map(|prof| {
                let status = match prof.status {
                    Status::Active => "active",
                    Status::Inactive => "inactive",
                };
                format!("{} {} {status}", prof.profession, prof.nihii)
            })
            .collect();
        eprintln!("  {}  {}", p.insz, professions.join(", "));
    }

    MockCobrha::new()
        .serve_with_shutdown(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("mock CoBRHA failed")
}
