//! Stand-alone mock of the Bis register.
//!
//! Environment: `MOCK_LISTEN` (default `127.0.0.1:8092`), `RUST_LOG` (default `info`).
//! Serves `GET /persons/{bis}` and the control API (`POST /control`, `GET /control/stats`)
//! until Ctrl-C; see `idp_mocks::bis_register` for the test persons.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    idp_mocks::registry_mock::run_standalone::<idp_mocks::bis_register::BisRegister>(
        "127.0.0.1:8092",
    )
    .await
}
