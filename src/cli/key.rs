//! `key add-totp|add-sms|add-token|list|revoke` (the digital keys of a person) and `totp-code`.
//! A person's first key creates their account: its password comes from `COZO_PASSWORD` or
//! standard input, never from an option (options show in process lists and shell history).

use super::{open_store, CliError, Output};
use clap::{Args, Subcommand};
use cozo_broker::admin;
use cozo_broker::config::Config;
use serde_json::json;
use std::io::Read;

#[derive(Subcommand)]
pub enum KeyCmd {
    AddTotp(Account),
    AddSms {
        #[command(flatten)]
        account: Account,
        #[arg(long)]
        phone: String,
    },
    AddToken(Account),
    List {
        #[arg(long)]
        insz: String,
    },
    Revoke {
        #[arg(long)]
        insz: String,
        #[arg(long, required = true)]
        all: bool,
    },
}

/// Whose key: the person and the username of their account.
#[derive(Args)]
pub struct Account {
    #[arg(long)]
    insz: String,
    #[arg(long)]
    username: String,
}

pub async fn run(cmd: KeyCmd, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    match cmd {
        KeyCmd::AddTotp(account) => add_totp(&account, cfg, now, out).await,
        KeyCmd::AddSms { account, phone } => add_sms(&account, &phone, cfg, now, out).await,
        KeyCmd::AddToken(account) => add_token(&account, cfg, now, out).await,
        KeyCmd::List { insz } => list(&insz, cfg, out).await,
        KeyCmd::Revoke { insz, all: _ } => revoke_all(&insz, cfg, now, out).await,
    }
}

async fn add_totp(a: &Account, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let master = cozo_broker::master_key(cfg).map_err(CliError::runtime)?;
    let password = read_password();
    let t =
        admin::add_totp_key(&store, &master, cfg, &a.insz, &a.username, password.as_deref(), now)
            .await?;
    out.result(json!({ "secret": t.secret_base32, "otpauth_uri": t.otpauth_uri }), || {
        format!("secret (shown once): {}\n{}", t.secret_base32, t.otpauth_uri)
    });
    Ok(())
}

async fn add_sms(
    a: &Account,
    phone: &str,
    cfg: &Config,
    now: i64,
    out: Output,
) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let password = read_password();
    let id = admin::add_sms_key(&store, cfg, &a.insz, &a.username, password.as_deref(), phone, now)
        .await?;
    out.result(json!({ "key_id": id }), || "SMS key added".into());
    Ok(())
}

async fn add_token(a: &Account, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let master = cozo_broker::master_key(cfg).map_err(CliError::runtime)?;
    let password = read_password();
    let card =
        admin::add_token_key(&store, &master, cfg, &a.insz, &a.username, password.as_deref(), now)
            .await?;
    let by_position: serde_json::Map<String, serde_json::Value> =
        card.iter().map(|(k, v)| (k.to_string(), v.clone().into())).collect();
    out.result(json!({ "card": by_position }), || {
        card.iter().map(|(k, v)| format!("{k:>2}  {v}")).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

async fn list(insz: &str, cfg: &Config, out: Output) -> Result<(), CliError> {
    let (username, keys) = admin::list_keys(&open_store(cfg).await?, insz).await?;
    let list: Vec<_> = keys
        .iter()
        .map(
            |k| json!({"id": k.id, "kind": k.kind, "status": k.status, "created_at": k.created_at}),
        )
        .collect();
    out.result(json!({ "username": username, "keys": list }), || {
        let rows = keys.iter().map(|k| format!("{}\t{}\t{}", k.id, k.kind, k.status));
        rows.collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

async fn revoke_all(insz: &str, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    let revoked = admin::revoke_all_keys(&open_store(cfg).await?, insz, now).await?;
    out.result(json!({ "revoked": revoked }), || format!("{revoked} keys revoked"));
    Ok(())
}

/// `totp-code`: what an authenticator app would show now for this secret.
pub fn totp_code(secret: &str, now: i64, out: Output) -> Result<(), CliError> {
    use cozo_broker::keys::totp;
    let secret = totp::decode_base32(secret)
        .ok_or_else(|| CliError::usage("secret", "the secret is not base32"))?;
    let code = totp::code_at(&secret, now);
    out.result(json!({ "code": code }), || code.clone());
    Ok(())
}

/// The password for a new account: `COZO_PASSWORD`, else standard input (one line).
fn read_password() -> Option<String> {
    if let Ok(p) = std::env::var("COZO_PASSWORD") {
        return Some(p);
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).ok()?;
    let p = s.trim_end_matches(['\n', '\r']).to_string();
    (!p.is_empty()).then_some(p)
}
