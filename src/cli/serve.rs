//! `serve`, `demo` and `migrate`: the commands that run the broker or prepare its database.

use super::{CliError, Output};
use cozo_broker::config::Config;

/// Runs the broker until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub async fn serve(cfg: Config) -> Result<(), CliError> {
    init_logging();
    let handle = cozo_broker::serve(cfg).await.map_err(|e| match e {
        // A broken policy is a configuration error: file, line and reason (exit 2).
        cozo_broker::StartError::Policy(p) => {
            CliError::usage("policy.dir", format!("policy.dir: {p}"))
        }
        cozo_broker::StartError::Ehealth(cozo_broker::ehealth::EhealthError::Config(key, m)) => {
            CliError::usage(&format!("ehealth.{key}"), format!("ehealth.{key}: {m}"))
        }
        other => CliError::runtime(other),
    })?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing requests in flight");
    handle.shutdown().await;
    Ok(())
}

/// The broker with every mock and the demo app (builds with the `demo` feature only).
pub async fn demo(cfg: Config) -> Result<(), CliError> {
    #[cfg(feature = "demo")]
    {
        init_logging();
        cozo_broker::demo::run(cfg, shutdown_signal()).await.map_err(CliError::runtime)
    }
    #[cfg(not(feature = "demo"))]
    {
        let _ = cfg;
        Err(CliError::usage("demo", "this build has no demo (feature `demo`)"))
    }
}

pub async fn migrate(cfg: &Config, out: Output) -> Result<(), CliError> {
    super::open_store(cfg).await?;
    if out.json {
        out.result(serde_json::json!({ "migrated": true }), String::new);
    } else {
        // On standard error, as before: a script's standard output stays empty.
        eprintln!("migrations applied");
    }
    Ok(())
}

/// JSON log lines on standard error, filtered by `COZO_LOG` (default `info`).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("COZO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
