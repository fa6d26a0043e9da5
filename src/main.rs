//! The `cozo-broker` command (SPEC §1). Exit codes: 0 ok, 2 bad usage or configuration (the
//! message names the key), 1 runtime failure.

use clap::{Args, Parser, Subcommand};
use cozo_broker::admin::{self, AdminError, ClientSpec};
use cozo_broker::config::Config;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "cozo-broker", version, about = "Identity and authentication broker for CoZo")]
struct Cli {
    /// Configuration file (default: cozo-broker.toml if present, else built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
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
    #[command(subcommand)]
    Client(ClientCmd),
    /// Signing keys of the OpenID provider.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Registration offices: operators and registrations (SPEC §7).
    #[command(subcommand)]
    Office(OfficeCmd),
    #[command(subcommand)]
    Person(PersonCmd),
    /// Digital keys of a person.
    #[command(subcommand)]
    Key(KeyCmd),
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Access policies (policies/*.cedar).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Print the current code of a TOTP secret (base32), as an authenticator app would.
    TotpCode { secret: String },
}

#[derive(Subcommand)]
enum ClientCmd {
    Add(ClientAdd),
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        #[arg(long)]
        id: String,
    },
}

#[derive(Args)]
struct ClientAdd {
    #[arg(long)]
    id: String,
    #[arg(long = "redirect-uri", required = true)]
    redirect_uri: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uri: Vec<String>,
    #[arg(long, default_value = "portal")]
    policy: String,
    #[arg(long = "auth-method", default_value = "client_secret_basic")]
    auth_method: String,
    #[arg(long)]
    jwks: Option<PathBuf>,
    #[arg(long = "jwks-uri")]
    jwks_uri: Option<String>,
    #[arg(long = "id-token-alg", default_value = "RS256")]
    id_token_alg: String,
    #[arg(long)]
    public: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum KeysCmd {
    Rotate {
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum OfficeCmd {
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// Register a person at an operator's office (as the /office/register form does).
    Register {
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
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum OperatorCmd {
    /// Make a known person an operator of an office.
    Add {
        insz: String,
        #[arg(long)]
        office: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PersonCmd {
    Add {
        #[arg(long)]
        insz: String,
        #[arg(long = "given-name")]
        given_name: String,
        #[arg(long = "family-name")]
        family_name: String,
        #[arg(long)]
        birthdate: Option<String>,
        #[arg(long)]
        json: bool,
    },
    Show {
        #[arg(long)]
        insz: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    AddTotp {
        #[arg(long)]
        insz: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        json: bool,
    },
    AddSms {
        #[arg(long)]
        insz: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        phone: String,
        #[arg(long)]
        json: bool,
    },
    AddToken {
        #[arg(long)]
        insz: String,
        #[arg(long)]
        username: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        insz: String,
        #[arg(long)]
        json: bool,
    },
    Revoke {
        #[arg(long)]
        insz: String,
        #[arg(long, required = true)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
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
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Audit events as JSON lines, newest first.
    Export {
        #[arg(long, default_value_t = 0)]
        since: i64,
        #[arg(long, default_value_t = 10000)]
        limit: i64,
    },
}

#[derive(Debug)]
enum Failure {
    Usage(String),
    Runtime(String),
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(_) | AdminError::NotFound(_) => Failure::Usage(e.to_string()),
            AdminError::Store(cozo_broker::store::StoreError::Conflict(_)) => {
                Failure::Usage(e.to_string())
            }
            other => Failure::Runtime(other.to_string()),
        }
    }
}

fn runtime<E: std::fmt::Display>(e: E) -> Failure {
    Failure::Runtime(e.to_string())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("COZO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn print_json(v: serde_json::Value) {
    println!("{v}");
}

fn read_password() -> Option<String> {
    if let Ok(p) = std::env::var("COZO_PASSWORD") {
        return Some(p);
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).ok()?;
    let p = s.trim_end_matches(['\n', '\r']).to_string();
    (!p.is_empty()).then_some(p)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::TotpCode { secret } = &cli.command {
        return match cozo_broker::keys::totp::decode_base32(secret) {
            Some(s) => {
                println!(
                    "{}",
                    cozo_broker::keys::totp::code_at(&s, chrono::Utc::now().timestamp())
                );
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("error: the secret is not base32");
                ExitCode::from(2)
            }
        };
    }
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command, cfg).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(m)) => {
            eprintln!("error: {m}");
            ExitCode::from(1)
        }
    }
}

async fn run(command: Command, cfg: Config) -> Result<(), Failure> {
    let now = chrono::Utc::now().timestamp();
    match command {
        Command::Serve => {
            init_logging();
            let handle = cozo_broker::serve(cfg).await.map_err(|e| match e {
                // A broken policy is a configuration error: file, line and reason (exit 2).
                cozo_broker::StartError::Policy(p) => Failure::Usage(format!("policy.dir: {p}")),
                other => runtime(other),
            })?;
            shutdown_signal().await;
            tracing::info!("shutting down: finishing requests in flight");
            handle.shutdown().await;
            Ok(())
        }
        Command::Demo => {
            #[cfg(feature = "demo")]
            {
                init_logging();
                cozo_broker::demo::run(cfg, shutdown_signal()).await.map_err(runtime)
            }
            #[cfg(not(feature = "demo"))]
            Err(Failure::Usage("this build has no demo (feature `demo`)".into()))
        }
        Command::Migrate => {
            cozo_broker::open_store(&cfg).await.map_err(runtime)?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Client(c) => client(c, &cfg, now).await,
        Command::Keys(k) => {
            let store = cozo_broker::open_store(&cfg).await.map_err(runtime)?;
            let master = cozo_broker::master_key(&cfg).map_err(runtime)?;
            match k {
                KeysCmd::Rotate { json } => {
                    let kids = cozo_broker::oidc::signing::rotate(&store, &master, now)
                        .await
                        .map_err(runtime)?;
                    if json {
                        print_json(serde_json::json!({ "kids": kids }));
                    } else {
                        println!("new signing keys: {}", kids.join(", "));
                    }
                }
                KeysCmd::List { json } => {
                    let rows = store.signing_keys(0).await.map_err(runtime)?;
                    let list: Vec<_> = rows
                        .iter()
                        .map(|r| serde_json::json!({"kid": r.kid, "alg": r.alg, "created_at": r.created_at, "retired_at": r.retired_at}))
                        .collect();
                    if json {
                        print_json(serde_json::json!({ "keys": list }));
                    } else {
                        for r in rows {
                            println!(
                                "{}\t{}\t{}",
                                r.kid,
                                r.alg,
                                if r.retired_at.is_some() { "retired" } else { "active" }
                            );
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Office(o) => {
            let store = cozo_broker::open_store(&cfg).await.map_err(runtime)?;
            match o {
                OfficeCmd::Operator(OperatorCmd::Add { insz, office, json }) => {
                    let op = admin::add_operator(&store, &insz, &office, now).await?;
                    if json {
                        print_json(
                            serde_json::json!({ "person_id": op.person_id, "office": op.office }),
                        );
                    } else {
                        println!("operator added to {}", op.office);
                    }
                }
                OfficeCmd::Register {
                    operator,
                    insz,
                    request_bis,
                    family_name,
                    given_names,
                    birthdate,
                    nationality,
                    document_type,
                    document_number,
                    email,
                    mobile,
                    language,
                    json,
                } => {
                    let form = cozo_broker::office::RegistrationForm {
                        insz,
                        request_bis: request_bis.then(|| "1".to_string()),
                        family_name: Some(family_name),
                        given_names: Some(given_names),
                        birthdate: Some(birthdate),
                        nationality: Some(nationality),
                        document_type: Some(document_type),
                        document_number: Some(document_number),
                        email: Some(email),
                        mobile: Some(mobile),
                        language: Some(language),
                    };
                    let offices = cozo_broker::office::Offices::new(
                        store.clone(),
                        cfg.server.public_url.clone(),
                        cozo_broker::audit::Audit::new(store.clone()),
                    );
                    let issued =
                        admin::office_register(&offices, &store, &operator, &form, now).await?;
                    let reg = &issued.registration;
                    let code = issued.code.as_ref().map(|c| c.grouped());
                    if json {
                        print_json(serde_json::json!({
                            "registration_id": reg.id,
                            "status": reg.status.as_str(),
                            "activation_code": code,
                            "activation_link": issued.link,
                            "expires_at": reg.expires_at,
                        }));
                    } else {
                        match code {
                            Some(c) => println!(
                                "registration {}: activation code {c} (shown once), link sent to {}",
                                reg.id, reg.email
                            ),
                            None => println!("registration {}: Bis number requested", reg.id),
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Person(p) => {
            let store = cozo_broker::open_store(&cfg).await.map_err(runtime)?;
            match p {
                PersonCmd::Add { insz, given_name, family_name, birthdate, json } => {
                    let person = admin::add_person(
                        &store,
                        &insz,
                        &given_name,
                        &family_name,
                        birthdate.as_deref(),
                        now,
                    )
                    .await?;
                    if json {
                        print_json(serde_json::json!({ "id": person.id, "insz": person.insz }));
                    } else {
                        println!("person {} added", person.insz.formatted());
                    }
                }
                PersonCmd::Show { insz, json } => {
                    let insz = cozo_broker::identity::Insz::parse(&insz)
                        .map_err(|e| Failure::Usage(format!("--insz: {e}")))?;
                    let p = store
                        .person_by_insz(&insz)
                        .await
                        .map_err(runtime)?
                        .ok_or_else(|| Failure::Usage("no person with this INSZ".into()))?;
                    let v = serde_json::json!({"id": p.id, "insz": p.insz, "given_name": p.given_name, "family_name": p.family_name, "birthdate": p.birthdate});
                    if json {
                        print_json(v);
                    } else {
                        println!("{} {} ({})", p.given_name, p.family_name, p.insz.formatted());
                    }
                }
            }
            Ok(())
        }
        Command::Key(k) => {
            let store = cozo_broker::open_store(&cfg).await.map_err(runtime)?;
            match k {
                KeyCmd::AddTotp { insz, username, json } => {
                    let master = cozo_broker::master_key(&cfg).map_err(runtime)?;
                    let password = read_password();
                    let t = admin::add_totp_key(
                        &store,
                        &master,
                        &cfg,
                        &insz,
                        &username,
                        password.as_deref(),
                        now,
                    )
                    .await?;
                    if json {
                        print_json(
                            serde_json::json!({ "secret": t.secret_base32, "otpauth_uri": t.otpauth_uri }),
                        );
                    } else {
                        println!("secret (shown once): {}\n{}", t.secret_base32, t.otpauth_uri);
                    }
                }
                KeyCmd::AddSms { insz, username, phone, json } => {
                    let password = read_password();
                    let id = admin::add_sms_key(
                        &store,
                        &cfg,
                        &insz,
                        &username,
                        password.as_deref(),
                        &phone,
                        now,
                    )
                    .await?;
                    if json {
                        print_json(serde_json::json!({ "key_id": id }));
                    } else {
                        println!("SMS key added");
                    }
                }
                KeyCmd::AddToken { insz, username, json } => {
                    let master = cozo_broker::master_key(&cfg).map_err(runtime)?;
                    let password = read_password();
                    let card = admin::add_token_key(
                        &store,
                        &master,
                        &cfg,
                        &insz,
                        &username,
                        password.as_deref(),
                        now,
                    )
                    .await?;
                    let card: serde_json::Map<String, serde_json::Value> =
                        card.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
                    if json {
                        print_json(serde_json::json!({ "card": card }));
                    } else {
                        for (k, v) in card {
                            println!("{k:>2}  {}", v.as_str().unwrap_or_default());
                        }
                    }
                }
                KeyCmd::List { insz, json } => {
                    let (username, keys) = admin::list_keys(&store, &insz).await?;
                    let list: Vec<_> = keys
                        .iter()
                        .map(|k| serde_json::json!({"id": k.id, "kind": k.kind, "status": k.status, "created_at": k.created_at}))
                        .collect();
                    if json {
                        print_json(serde_json::json!({ "username": username, "keys": list }));
                    } else {
                        for k in keys {
                            println!("{}\t{}\t{}", k.id, k.kind, k.status);
                        }
                    }
                }
                KeyCmd::Revoke { insz, all: _ } => {
                    let n = admin::revoke_all_keys(&store, &insz, now).await?;
                    println!("{n} keys revoked");
                }
            }
            Ok(())
        }
        Command::Audit(AuditCmd::Export { since, limit }) => {
            let store = cozo_broker::open_store(&cfg).await.map_err(runtime)?;
            for e in store.audit_events(None, since, limit).await.map_err(runtime)? {
                println!("{}", serde_json::to_string(&e).unwrap_or_default());
            }
            Ok(())
        }
        Command::Policy(PolicyCmd::Check { client, insz, method, level, json }) => {
            let store = cozo_broker::open_store(&cfg).await.map_err(runtime)?;
            let out = cozo_broker::admin::policy_check(
                &store,
                &cfg,
                &client,
                &insz,
                &method,
                level.as_deref(),
                now,
            )
            .await?;
            if json {
                print_json(out);
            } else {
                let list = |key: &str| {
                    out[key]
                        .as_array()
                        .map(|a| a.iter().filter_map(|m| m.as_str()).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                };
                println!(
                    "{} (policy {}): {}\nmethods that would satisfy: {}\nof those, offered here: {}",
                    out["decision"].as_str().unwrap_or_default(),
                    out["policy"].as_str().unwrap_or_default(),
                    out["reason"].as_str().unwrap_or_default(),
                    list("methods"),
                    list("offered"),
                );
            }
            Ok(())
        }
        Command::TotpCode { .. } => Ok(()),
    }
}

async fn client(c: ClientCmd, cfg: &Config, now: i64) -> Result<(), Failure> {
    let store = cozo_broker::open_store(cfg).await.map_err(runtime)?;
    match c {
        ClientCmd::Add(a) => {
            let jwks = match &a.jwks {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| Failure::Usage(format!("--jwks: {e}")))?,
                ),
                None => None,
            };
            let spec = ClientSpec {
                id: a.id.clone(),
                redirect_uris: a.redirect_uri,
                post_logout_redirect_uris: a.post_logout_redirect_uri,
                policy: a.policy,
                auth_method: a.auth_method,
                jwks,
                jwks_uri: a.jwks_uri,
                id_token_alg: a.id_token_alg,
                public: a.public,
            };
            let policies = cozo_broker::policy::PolicyEngine::load(&cfg.policy.dir)
                .map_err(|e| Failure::Usage(format!("policy.dir: {e}")))?;
            let secret = admin::add_client(&store, &policies, &spec, now).await?;
            if a.json {
                print_json(serde_json::json!({ "client_id": a.id, "client_secret": secret }));
            } else {
                println!("client {} added", a.id);
                if let Some(s) = secret {
                    println!("client secret (shown once): {s}");
                }
            }
        }
        ClientCmd::List { json } => {
            let clients = store.clients().await.map_err(runtime)?;
            let list: Vec<_> = clients
                .iter()
                .map(|c| serde_json::json!({"client_id": c.id, "redirect_uris": c.redirect_uris, "policy": c.policy, "auth_method": c.auth_method.as_str(), "id_token_alg": c.id_token_alg}))
                .collect();
            if json {
                print_json(serde_json::json!({ "clients": list }));
            } else {
                for c in clients {
                    println!("{}\t{}\t{}", c.id, c.policy, c.redirect_uris.join(" "));
                }
            }
        }
        ClientCmd::Remove { id } => {
            if !store.remove_client(&id, now).await.map_err(runtime)? {
                return Err(Failure::Usage(format!("no client {id}")));
            }
            println!("client {id} removed");
        }
    }
    Ok(())
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
