//! `client add|list|remove`: the relying apps (SPEC §1, §5).

use super::{open_store, CliError, Output};
use clap::{Args, Subcommand};
use cozo_broker::admin::{self, ClientSpec};
use cozo_broker::config::Config;
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ClientCmd {
    Add(Box<ClientAdd>),
    List,
    Remove {
        #[arg(long)]
        id: String,
    },
}

#[derive(Args)]
pub struct ClientAdd {
    #[arg(long)]
    id: String,
    /// Required for browser clients (`--grant authorization_code`, the default).
    #[arg(long = "redirect-uri")]
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
    /// The name people see (e.g. on `/account/apps`).
    #[arg(long)]
    name: Option<String>,
    /// OIDC Back-Channel Logout 1.0: where logout tokens are POSTed.
    #[arg(long = "backchannel-logout-uri")]
    backchannel_logout_uri: Option<String>,
    /// Token requests must carry a DPoP proof (RFC 9449).
    #[arg(long)]
    dpop: bool,
    /// `authorization_code` (default) or `client_credentials`; repeatable.
    #[arg(long = "grant")]
    grant: Vec<String>,
    /// The eHealth certificate (PEM) of a `client_credentials` client.
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// A scope the client may get with `client_credentials` (default `api`); repeatable.
    #[arg(long = "scope")]
    scope: Vec<String>,
    /// A resource URI (RFC 8707) the client may get tokens for; repeatable.
    #[arg(long = "resource")]
    resource: Vec<String>,
    /// The client is a resource server: it may call `/introspect`.
    #[arg(long)]
    introspect: bool,
    /// The client may exchange tokens (RFC 8693).
    #[arg(long = "token-exchange")]
    token_exchange: bool,
}

pub async fn run(cmd: ClientCmd, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    match cmd {
        ClientCmd::Add(a) => add(*a, cfg, now, out).await,
        ClientCmd::List => list(cfg, out).await,
        ClientCmd::Remove { id } => remove(&id, cfg, now, out).await,
    }
}

async fn add(a: ClientAdd, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    let store = open_store(cfg).await?;
    let jwks = match &a.jwks {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| CliError::usage("--jwks", format!("--jwks: {e}")))?,
        ),
        None => None,
    };
    let certificate = match &a.certificate {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| CliError::usage("--certificate", format!("--certificate: {e}")))?,
        ),
        None => None,
    };
    let ehealth = cozo_broker::ehealth::Ehealth::new(&cfg.ehealth).map_err(|e| match e {
        cozo_broker::ehealth::EhealthError::Config(key, m) => {
            CliError::usage(&format!("ehealth.{key}"), format!("ehealth.{key}: {m}"))
        }
    })?;
    let spec = ClientSpec {
        id: a.id,
        redirect_uris: a.redirect_uri,
        post_logout_redirect_uris: a.post_logout_redirect_uri,
        policy: a.policy,
        auth_method: a.auth_method,
        jwks,
        jwks_uri: a.jwks_uri,
        id_token_alg: a.id_token_alg,
        public: a.public,
        name: a.name,
        backchannel_logout_uri: a.backchannel_logout_uri,
        dpop: a.dpop,
        grant_types: a.grant,
        certificate,
        scopes: a.scope,
        resources: a.resource,
        introspect: a.introspect,
        token_exchange: a.token_exchange,
    };
    let policies = cozo_broker::policy::PolicyEngine::load(&cfg.policy.dir)
        .map_err(|e| CliError::usage("policy.dir", format!("policy.dir: {e}")))?;
    let secret =
        admin::add_client_trusting(&store, &policies, ehealth.as_deref(), &spec, now).await?;
    out.result(json!({ "client_id": spec.id, "client_secret": secret }), || match &secret {
        Some(s) => format!("client {} added\nclient secret (shown once): {s}", spec.id),
        None => format!("client {} added", spec.id),
    });
    Ok(())
}

async fn list(cfg: &Config, out: Output) -> Result<(), CliError> {
    let clients = admin::clients(&open_store(cfg).await?).await?;
    let list: Vec<_> = clients
        .iter()
        .map(|(c, app)| {
            json!({
                "client_id": c.id, "redirect_uris": c.redirect_uris, "policy": c.policy,
                "auth_method": c.auth_method.as_str(), "id_token_alg": c.id_token_alg,
                "grant_types": c.api.as_ref().map(|a| a.grant_types.clone())
                    .unwrap_or_else(|| vec!["authorization_code".into()]),
                "name": app.name, "backchannel_logout_uri": app.backchannel_logout_uri,
                "dpop": app.dpop_required,
            })
        })
        .collect();
    out.result(json!({ "clients": list }), || {
        let rows = clients.iter().map(|(c, app)| {
            let name = app.name.as_deref().unwrap_or("-");
            format!("{}\t{name}\t{}\t{}", c.id, c.policy, c.redirect_uris.join(" "))
        });
        rows.collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

async fn remove(id: &str, cfg: &Config, now: i64, out: Output) -> Result<(), CliError> {
    admin::remove_client(&open_store(cfg).await?, id, now).await?;
    out.result(json!({ "client_id": id, "removed": true }), || format!("client {id} removed"));
    Ok(())
}
