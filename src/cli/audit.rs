//! `audit export`: the audit trail as JSON lines (in both output modes: each line is one
//! event, so a log pipeline reads it as it comes).

use super::{open_store, CliError};
use clap::Subcommand;
use cozo_broker::admin;
use cozo_broker::config::Config;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Audit events as JSON lines, newest first.
    Export {
        #[arg(long, default_value_t = 0)]
        since: i64,
        #[arg(long, default_value_t = 10000)]
        limit: i64,
    },
}

pub async fn run(cmd: AuditCmd, cfg: &Config) -> Result<(), CliError> {
    match cmd {
        AuditCmd::Export { since, limit } => export(since, limit, cfg).await,
    }
}

async fn export(since: i64, limit: i64, cfg: &Config) -> Result<(), CliError> {
    for event in admin::audit_events(&open_store(cfg).await?, since, limit).await? {
        println!("{}", serde_json::to_string(&event).map_err(CliError::runtime)?);
    }
    Ok(())
}
