//! `keys rotate|list`: the signing keys of the OpenID provider.

use super::{open_store, CliError, Output};
use clap::Subcommand;
use cozo_broker::admin;
use cozo_broker::config::Config;
use serde_json::json;

#[derive(Subcommand)]
pub enum KeysCmd {
    Rotate,
    List,
}

pub async fn run(cmd: KeysCmd, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    match cmd {
        KeysCmd::Rotate => rotate(cfg, now, out).await,
        KeysCmd::List => list(cfg, out).await,
    }
}

/// A new key per algorithm; the old ones stay published until their tokens expire.
async fn rotate(cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let master = cozo_broker::master_key(cfg).map_err(CliError::runtime)?;
    let kids = cozo_broker::oidc::signing::rotate(&store, &master, now)
        .await
        .map_err(CliError::runtime)?;
    out.result(json!({ "kids": kids }), || format!("new signing keys: {}", kids.join(", ")));
    Ok(())
}

async fn list(cfg: &Config, out: Output) -> Result<(), CliError> {
    let keys = admin::signing_keys(&open_store(cfg).await?).await?;
    let list: Vec<_> = keys
        .iter()
        .map(|k| {
            json!({"kid": k.kid, "alg": k.alg, "created_at": k.created_at, "retired_at": k.retired_at})
        })
        .collect();
    out.result(json!({ "keys": list }), || {
        let state = |retired: Option<i64>| if retired.is_some() { "retired" } else { "active" };
        let rows = keys.iter().map(|k| format!("{}\t{}\t{}", k.kid, k.alg, state(k.retired_at)));
        rows.collect::<Vec<_>>().join("\n")
    });
    Ok(())
}
