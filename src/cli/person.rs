//! `person add|show`: people, by INSZ.

use super::{open_store, CliError, Output};
use clap::Subcommand;
use cozo_broker::admin;
use cozo_broker::config::Config;
use serde_json::json;

#[derive(Subcommand)]
pub enum PersonCmd {
    Add {
        #[arg(long)]
        insz: String,
        #[arg(long = "given-name")]
        given_name: String,
        #[arg(long = "family-name")]
        family_name: String,
        #[arg(long)]
        birthdate: Option<String>,
    },
    Show {
        #[arg(long)]
        insz: String,
    },
}

pub async fn run(cmd: PersonCmd, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    match cmd {
        PersonCmd::Add { insz, given_name, family_name, birthdate } => {
            add(&insz, &given_name, &family_name, birthdate.as_deref(), cfg, now, out).await
        }
        PersonCmd::Show { insz } => show(&insz, cfg, out).await,
    }
}

async fn add(
    insz: &str,
    given_name: &str,
    family_name: &str,
    birthdate: Option<&str>,
    cfg: &Config,
    now: i64,
    out: Output,
) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let person = admin::add_person(&store, insz, given_name, family_name, birthdate, now).await?;
    out.result(json!({ "id": person.id, "insz": person.insz }), || {
        format!("person {} added", person.insz.formatted())
    });
    Ok(())
}

async fn show(insz: &str, cfg: &Config, out: Output) -> Result<(), CliError> {
    let p = admin::person(&open_store(cfg).await?, insz).await?;
    out.result(
        json!({
            "id": p.id, "insz": p.insz, "given_name": p.given_name,
            "family_name": p.family_name, "birthdate": p.birthdate,
        }),
        || format!("{} {} ({})", p.given_name, p.family_name, p.insz.formatted()),
    );
    Ok(())
}
