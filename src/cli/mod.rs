//! The `cozo-broker` command line (SPEC §1): the clap types, the dispatch, and how results and
//! errors are printed. One file per command group; each parses its arguments, calls one operator
//! action (`cozo_broker::admin`) or use case, and renders what it answers.
//!
//! Exit codes: 0 ok, 2 bad usage or configuration (the message names the option or setting at
//! fault), 1 runtime failure (database, crypto, a service down).
//!
//! `--json` (global, accepted after any command): a result is one JSON object on standard
//! output, and an error is one JSON object on standard error,
//! `{"error": "<message>", "key": "<option or setting>"}` (`key` is `null` for a runtime
//! failure), with the same exit codes. Errors go to standard error in both modes, so standard
//! output holds a result or nothing. `audit export` prints JSON lines in both modes.
//!
//! The wall clock is read once per command, here, and passed down as `now`.

mod audit;
mod client;
mod key;
mod keys;
mod office;
mod person;
mod policy;
mod serve;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, Subcommand};
use cozo_broker::admin::AdminError;
use cozo_broker::clock;
use cozo_broker::config::{Config, ConfigError};
use cozo_broker::store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cozo-broker", version, about = "Identity and authentication broker for CoZo")]
pub struct Cli {
    /// Configuration file (default: cozo-broker.toml if present, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print the result as one JSON object (and errors as one JSON object on standard error).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve,
    /// Run the demo: broker, mocks and a demo app, with demo identities printed.
    Demo,
    /// Apply database migrations and exit.
    Migrate,
    /// Relying apps (OpenID Connect clients).
    #[command(subcommand)]
    Client(client::ClientCmd),
    /// Signing keys of the OpenID provider.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Registration offices: operators and registrations (SPEC §7).
    #[command(subcommand)]
    Office(office::OfficeCmd),
    /// People, by INSZ.
    #[command(subcommand)]
    Person(person::PersonCmd),
    /// Digital keys of a person.
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// The audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Access policies (policies/*.cedar).
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// Print the current code of a TOTP secret (base32), as an authenticator app would.
    TotpCode { secret: String },
}

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage (exit 2): `key` names the option at fault.
    #[error("{message}")]
    Usage { key: String, message: String },
    /// The configuration does not load (exit 2); it names the setting.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An operator action refused (exit 2, naming the option) or failed (exit 1).
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The command could not be carried out (exit 1).
    #[error(transparent)]
    Runtime(anyhow::Error),
}

impl CliError {
    fn usage(key: &str, message: impl Into<String>) -> Self {
        CliError::Usage { key: key.into(), message: message.into() }
    }

    fn runtime(e: impl Into<anyhow::Error>) -> Self {
        CliError::Runtime(e.into())
    }

    /// The option or setting at fault; `None` for a runtime failure.
    fn key(&self) -> Option<&str> {
        match self {
            CliError::Usage { key, .. } => Some(key),
            CliError::Config(e) => Some(&e.key),
            CliError::Admin(e) => e.key(),
            CliError::Runtime(_) => None,
        }
    }

    fn exit_code(&self) -> u8 {
        if self.key().is_some() {
            2
        } else {
            1
        }
    }
}

/// Where a command's answer goes: one JSON object with `--json`, lines for people otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Prints a command's result: `json` with `--json`, else `text` (if it says anything).
    fn result(self, json: serde_json::Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{json}");
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{text}");
            }
        }
    }

    /// Prints a failure on standard error and answers the exit code.
    fn failure(self, message: &str, key: Option<&str>, code: u8) -> ExitCode {
        if self.json {
            eprintln!("{}", serde_json::json!({ "error": message, "key": key }));
        } else {
            eprintln!("error: {message}");
        }
        ExitCode::from(code)
    }

    /// The exit code of a command's outcome, with its error printed.
    pub fn exit(self, outcome: Result<(), CliError>) -> ExitCode {
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => self.failure(&e.to_string(), e.key(), e.exit_code()),
        }
    }
}

impl Cli {
    /// The command line, or the exit code of a usage error already printed (as JSON when
    /// `--json` is among the arguments; `--help` and `--version` as clap prints them).
    pub fn parse_or_exit() -> Result<Cli, ExitCode> {
        Cli::try_parse().map_err(|e| {
            let json = std::env::args_os().any(|a| a == "--json");
            if !json || e.exit_code() == 0 {
                let _ = e.print();
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
            Output { json }.failure(&usage_message(&e), Some(&usage_key(&e)), 2)
        })
    }

    pub fn output(&self) -> Output {
        Output { json: self.json }
    }
}

/// clap's message on one line, without its `error: ` prefix, tips and usage.
fn usage_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first_paragraph = rendered.split("\n\n").next().unwrap_or_default();
    let words = first_paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    words.strip_prefix("error: ").unwrap_or(&words).to_string()
}

/// The argument or subcommand clap refused (`--insz`, `frobnicate`), or the command that lacks
/// its subcommand (`client`).
fn usage_key(e: &clap::Error) -> String {
    let named = e.get(ContextKind::InvalidArg).or_else(|| e.get(ContextKind::InvalidSubcommand));
    let name = match named {
        Some(ContextValue::String(s)) => s.as_str(),
        Some(ContextValue::Strings(v)) => v.first().map(String::as_str).unwrap_or_default(),
        _ => "",
    };
    let mut words = name.split_whitespace();
    let key = if e.kind() == ErrorKind::MissingSubcommand {
        // `cozo-broker client` → `client`
        words.next_back()
    } else {
        // `--insz <INSZ>` → `--insz`
        words.next()
    };
    key.unwrap_or("command").to_string()
}

/// Runs the command. `totp-code` needs no configuration, so it works where the broker's
/// configuration would not load.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let out = cli.output();
    let now = clock::system_now();
    if let Command::TotpCode { secret } = &cli.command {
        return key::totp_code(secret, now, out);
    }
    let cfg = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve::serve(cfg).await,
        Command::Demo => serve::demo(cfg).await,
        Command::Migrate => serve::migrate(&cfg, out).await,
        Command::Client(c) => client::run(c, &cfg, now, out).await,
        Command::Keys(k) => keys::run(k, &cfg, now, out).await,
        Command::Office(o) => office::run(o, &cfg, now, out).await,
        Command::Person(p) => person::run(p, &cfg, now, out).await,
        Command::Key(k) => key::run(k, &cfg, now, out).await,
        Command::Audit(a) => audit::run(a, &cfg).await,
        Command::Policy(p) => policy::run(p, &cfg, now, out).await,
        Command::TotpCode { secret } => key::totp_code(&secret, now, out),
    }
}

/// The database, migrated.
async fn open_store(cfg: &Config) -> Result<Store, CliError> {
    cozo_broker::open_store(cfg).await.map_err(CliError::runtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_is_global_and_usage_errors_name_the_argument() {
        let cli = Cli::try_parse_from(["cozo-broker", "client", "list", "--json"]).unwrap();
        assert!(cli.json);
        let cli = Cli::try_parse_from(["cozo-broker", "--json", "keys", "list"]).unwrap();
        assert!(cli.json);
        let e = Cli::try_parse_from(["cozo-broker", "client", "frobnicate"]).err().unwrap();
        assert_eq!(usage_key(&e), "frobnicate");
        let e = Cli::try_parse_from(["cozo-broker", "client", "--json"]).err().unwrap();
        assert_eq!(usage_key(&e), "client");
        let e = Cli::try_parse_from(["cozo-broker", "person", "show"]).err().unwrap();
        assert_eq!(usage_key(&e), "--insz");
        assert!(usage_message(&e).contains("--insz"), "{}", usage_message(&e));
    }

    #[test]
    fn exit_codes() {
        assert_eq!(CliError::usage("--insz", "bad").exit_code(), 2);
        assert_eq!(CliError::runtime(anyhow::anyhow!("down")).exit_code(), 1);
        let store = AdminError::Store(cozo_broker::store::StoreError::Corrupt("x".into()));
        assert_eq!(CliError::from(store).exit_code(), 1);
    }
}
