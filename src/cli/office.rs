//! `office operator add` and `office register`: registration offices (SPEC §7). A registration
//! from the command line follows the rules of the `/office/register` form, through the same
//! use case.

use super::{open_store, CliError, Output};
use clap::{Args, Subcommand};
use cozo_broker::admin;
use cozo_broker::config::Config;
use cozo_broker::office::{Offices, RegistrationForm};
use serde_json::json;

#[derive(Subcommand)]
pub enum OfficeCmd {
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Register a person at an operator's office (as the /office/register form does).
    Register(Box<Register>),
}

#[derive(Subcommand)]
pub enum OperatorCmd {
    /// Make a known person an operator of an office.
    Add {
        insz: String,
        #[arg(long)]
        office: String,
    },
}

/// The registration form's fields as options (`family_name` → `--family-name`).
#[derive(Args)]
pub struct Register {
    /// INSZ of the operator who registers.
    #[arg(long)]
    operator: String,
    #[arg(long)]
    insz: Option<String>,
    /// The person has no Bis number yet: file a Bis request instead.
    #[arg(long = "request-bis")]
    request_bis: bool,
    #[arg(long = "family-name")]
    family_name: String,
    #[arg(long = "given-names")]
    given_names: String,
    #[arg(long)]
    birthdate: String,
    #[arg(long)]
    nationality: String,
    #[arg(long = "document-type")]
    document_type: String,
    #[arg(long = "document-number")]
    document_number: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    mobile: String,
    #[arg(long, default_value = "en")]
    language: String,
}

impl Register {
    /// What the form would carry.
    fn into_form(self) -> (String, RegistrationForm) {
        let form = RegistrationForm {
            insz: self.insz,
            request_bis: self.request_bis.then(|| "1".to_string()),
            family_name: Some(self.family_name),
            given_names: Some(self.given_names),
            birthdate: Some(self.birthdate),
            nationality: Some(self.nationality),
            document_type: Some(self.document_type),
            document_number: Some(self.document_number),
            email: Some(self.email),
            mobile: Some(self.mobile),
            language: Some(self.language),
        };
        (self.operator, form)
    }
}

pub async fn run(cmd: OfficeCmd, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    match cmd {
        OfficeCmd::Operator(OperatorCmd::Add { insz, office }) => {
            add_operator(&insz, &office, cfg, now, out).await
        }
        OfficeCmd::Register(r) => register(*r, cfg, now, out).await,
    }
}

async fn add_operator(
    insz: &str,
    office: &str,
    cfg: &Config,
    now: i64,
    out: Output,
) -> Result<(), CliError> {
    let op = admin::add_operator(&open_store(cfg).await?, insz, office, now).await?;
    out.result(json!({ "person_id": op.person_id, "office": op.office }), || {
        format!("operator added to {}", op.office)
    });
    Ok(())
}

async fn register(r: Register, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let (operator, form) = r.into_form();
    let offices = Offices::new(
        store.clone(),
        cfg.server.public_url.clone(),
        cozo_broker::audit::Audit::new(store.clone()),
    );
    let issued = admin::office_register(&offices, &store, &operator, &form, now).await?;
    let reg = &issued.registration;
    let code = issued.code.as_ref().map(|c| c.grouped());
    let json = json!({
        "registration_id": reg.id,
        "status": reg.status.as_str(),
        "activation_code": code,
        "activation_link": issued.link,
        "expires_at": reg.expires_at,
    });
    out.result(json, || match &code {
        Some(c) => format!(
            "registration {}: activation code {c} (shown once), link sent to {}",
            reg.id, reg.email
        ),
        None => format!("registration {}: Bis number requested", reg.id),
    });
    Ok(())
}
