//! `policy check`: what a client's policy decides for a person and a login method, without
//! logging in (SPEC §4).

use super::{open_store, CliError, Output};
use clap::Subcommand;
use cozo_broker::admin;
use cozo_broker::config::Config;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Evaluate a client's policy for a person and a login method, without logging in.
    Check {
        #[arg(long)]
        client: String,
        #[arg(long)]
        insz: String,
        #[arg(long)]
        method: String,
        /// The level the login would have (default: the method's own level).
        #[arg(long)]
        level: Option<String>,
    },
}

pub async fn run(cmd: PolicyCmd, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    match cmd {
        PolicyCmd::Check { client, insz, method, level } => {
            check(&client, &insz, &method, level.as_deref(), cfg, now, out).await
        }
    }
}

async fn check(
    client: &str,
    insz: &str,
    method: &str,
    level: Option<&str>,
    cfg: &Config,
    now: i64,
    out: Output,
) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let check = admin::policy_check(&store, cfg, client, insz, method, level, now).await?;
    let json = serde_json::to_value(&check).map_err(CliError::runtime)?;
    out.result(json, || {
        format!(
            "{} (policy {}): {}\nmethods that would satisfy: {}",
            check.decision,
            check.policy,
            check.reason,
            check.methods.join(", ")
        )
    });
    Ok(())
}
