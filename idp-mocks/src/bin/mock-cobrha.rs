//! Stand-alone mock of CoBRHA (the RIZIV/INAMI registry of healthcare actors).
//!
//! Environment: `MOCK_LISTEN` (default `127.0.0.1:8091`), `RUST_LOG` (default `info`).
//! Serves `GET /professionals/{insz}` and the control API (`POST /control`,
//! `GET /control/stats`) until Ctrl-C; see `idp_mocks::cobrha` for the test care providers.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    idp_mocks::registry_mock::run_standalone::<idp_mocks::cobrha::Cobrha>("127.0.0.1:8091").await
}
