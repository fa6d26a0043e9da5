//! Operator actions behind the CLI (`client`, `person`, `key`, `keys`): also used by the demo and
//! the tests, so every path is the one operators use.

use crate::config::Config;
use crate::crypto::{self, MasterKey};
use crate::identity::Insz;
use crate::keys::{self, NewTotp};
use crate::oidc::signing::SigningAlg;
use crate::store::{ClientRow, KeyRow, Person, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub id: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub policy: String,
    pub auth_method: String,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub id_token_alg: String,
    pub public: bool,
}

impl ClientSpec {
    pub fn new(id: &str, redirect_uri: &str, policy: &str) -> Self {
        Self {
            id: id.into(),
            redirect_uris: vec![redirect_uri.into()],
            post_logout_redirect_uris: vec![],
            policy: policy.into(),
            auth_method: "client_secret_basic".into(),
            jwks: None,
            jwks_uri: None,
            id_token_alg: "RS256".into(),
            public: false,
        }
    }
}

fn check_uri(u: &str, what: &str) -> Result<(), AdminError> {
    let url =
        url::Url::parse(u).map_err(|_| AdminError::Invalid(format!("{what} {u} is not a URL")))?;
    if url.fragment().is_some() {
        return Err(AdminError::Invalid(format!("{what} {u} must not have a fragment")));
    }
    if url.scheme() == "http" && !crate::config::is_loopback_host(&url) {
        return Err(AdminError::Invalid(format!(
            "{what} {u} must be https (http only on localhost)"
        )));
    }
    Ok(())
}

/// Registers a client; returns its secret (shown once, stored only as a hash).
pub async fn add_client(
    store: &Store,
    policies: &crate::policy::PolicyEngine,
    spec: &ClientSpec,
    now: i64,
) -> Result<Option<String>, AdminError> {
    if spec.id.is_empty()
        || spec.id.len() > 128
        || !spec.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(AdminError::Invalid("--id: letters, digits, - _ . only".into()));
    }
    if spec.redirect_uris.is_empty() {
        return Err(AdminError::Invalid("--redirect-uri is required".into()));
    }
    for u in &spec.redirect_uris {
        check_uri(u, "--redirect-uri")?;
    }
    for u in &spec.post_logout_redirect_uris {
        check_uri(u, "--post-logout-redirect-uri")?;
    }
    if !policies.has(&spec.policy) {
        return Err(AdminError::Invalid(format!(
            "--policy {}: one of {} (files in {})",
            spec.policy,
            policies.names().collect::<Vec<_>>().join(", "),
            policies.dir().display()
        )));
    }
    if SigningAlg::parse(&spec.id_token_alg).is_none() {
        return Err(AdminError::Invalid("--id-token-alg: RS256, ES256 or EdDSA".into()));
    }
    let auth_method = if spec.public { "none".to_string() } else { spec.auth_method.clone() };
    match auth_method.as_str() {
        "client_secret_basic" | "client_secret_post" | "none" => {}
        "private_key_jwt" => {
            if spec.jwks.is_none() == spec.jwks_uri.is_none() {
                return Err(AdminError::Invalid(
                    "private_key_jwt needs --jwks FILE or --jwks-uri URL".into(),
                ));
            }
            if let Some(j) = &spec.jwks {
                serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(j)
                    .map_err(|e| AdminError::Invalid(format!("--jwks is not a JWK set: {e}")))?;
            }
        }
        other => {
            return Err(AdminError::Invalid(format!("--auth-method {other} is not supported")))
        }
    }
    let secret = matches!(auth_method.as_str(), "client_secret_basic" | "client_secret_post")
        .then(|| crypto::random_token(32));
    store
        .insert_client(&ClientRow {
            id: spec.id.clone(),
            secret_hash: secret.as_deref().map(crypto::token_hash),
            redirect_uris: spec.redirect_uris.clone(),
            post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
            auth_method,
            jwks: spec.jwks.clone(),
            jwks_uri: spec.jwks_uri.clone(),
            id_token_alg: spec.id_token_alg.clone(),
            policy: spec.policy.clone(),
            created_at: now,
        })
        .await?;
    Ok(secret)
}

pub async fn add_person(
    store: &Store,
    insz: &str,
    given_name: &str,
    family_name: &str,
    birthdate: Option<&str>,
    now: i64,
) -> Result<Person, AdminError> {
    let insz = Insz::parse(insz).map_err(|e| AdminError::Invalid(format!("--insz: {e}")))?;
    if given_name.trim().is_empty() || family_name.trim().is_empty() {
        return Err(AdminError::Invalid("--given-name and --family-name are required".into()));
    }
    if let Some(b) = birthdate {
        chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d")
            .map_err(|_| AdminError::Invalid("--birthdate must be YYYY-MM-DD".into()))?;
    }
    let person = Person {
        id: crypto::random_token(16),
        insz,
        given_name: given_name.trim().into(),
        family_name: family_name.trim().into(),
        birthdate: birthdate.map(str::to_string),
        created_at: now,
    };
    store.insert_person(&person).await?;
    Ok(person)
}

async fn person(store: &Store, insz: &str) -> Result<Person, AdminError> {
    let insz = Insz::parse(insz).map_err(|e| AdminError::Invalid(format!("--insz: {e}")))?;
    store
        .person_by_insz(&insz)
        .await?
        .ok_or_else(|| AdminError::NotFound("person with this INSZ".into()))
}

/// Adds an active TOTP key to the person's account, creating the account (username + password)
/// if the person has none yet.
pub async fn add_totp_key(
    store: &Store,
    master: &MasterKey,
    cfg: &Config,
    insz: &str,
    username: &str,
    password: Option<&str>,
    now: i64,
) -> Result<NewTotp, AdminError> {
    let person = person(store, insz).await?;
    let account = match store.account_by_person(&person.id).await? {
        Some(a) if a.username == keys::normalize_username(username) => a,
        Some(_) => {
            return Err(AdminError::Invalid("this person's account has another username".into()))
        }
        None => {
            let password = password.ok_or_else(|| {
                AdminError::Invalid(
                    "a new account needs a password (COZO_PASSWORD or standard input)".into(),
                )
            })?;
            keys::create_account(store, &cfg.login, &person.id, username, password, now)
                .await
                .map_err(|e| match e {
                    keys::KeyError::Invalid(rule) => {
                        AdminError::Invalid(format!("rejected: {rule}"))
                    }
                    other => other.into(),
                })?
        }
    };
    Ok(keys::add_totp(store, master, &account, "active", now).await?)
}

pub async fn list_keys(store: &Store, insz: &str) -> Result<(String, Vec<KeyRow>), AdminError> {
    let person = person(store, insz).await?;
    let Some(account) = store.account_by_person(&person.id).await? else {
        return Ok((String::new(), vec![]));
    };
    Ok((account.username.clone(), store.keys_of_account(&account.id).await?))
}

pub async fn revoke_all_keys(store: &Store, insz: &str, now: i64) -> Result<u64, AdminError> {
    let person = person(store, insz).await?;
    let Some(account) = store.account_by_person(&person.id).await? else {
        return Ok(0);
    };
    Ok(store.revoke_keys_of_account(&account.id, now).await?)
}
