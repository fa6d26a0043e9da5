//! Operator actions behind the CLI (`client`, `person`, `key`, `keys`): also used by the demo and
//! the tests, so every path is the one operators use.

use crate::audit::{Audit, Event, Kind, Outcome};
use crate::config::Config;
use crate::crypto::{self, MasterKey};
use crate::identity::Insz;
use crate::keys::{self, NewTotp};
use crate::oidc::signing::SigningAlg;
use crate::store::{ClientAuthMethod, ClientRow, KeyRow, Person, Store, StoreError};

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
            auth_method: ClientAuthMethod::parse(&auth_method).ok_or_else(|| {
                AdminError::Invalid(format!("--auth-method {auth_method} is not supported"))
            })?,
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

/// The person's digital-key account, created (username + password) if they have none yet.
pub async fn account_for(
    store: &Store,
    cfg: &Config,
    insz: &str,
    username: &str,
    password: Option<&str>,
    now: i64,
) -> Result<crate::store::Account, AdminError> {
    let person = person(store, insz).await?;
    match store.account_by_person(&person.id).await? {
        Some(a) if a.username == keys::normalize_username(username) => Ok(a),
        Some(_) => Err(AdminError::Invalid("this person's account has another username".into())),
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
                })
        }
    }
}

/// Adds an active TOTP key to the person's account, creating the account if needed.
pub async fn add_totp_key(
    store: &Store,
    master: &MasterKey,
    cfg: &Config,
    insz: &str,
    username: &str,
    password: Option<&str>,
    now: i64,
) -> Result<NewTotp, AdminError> {
    let account = account_for(store, cfg, insz, username, password, now).await?;
    Ok(keys::add_totp(store, master, &account, now).await?)
}

/// Adds an SMS key (a mobile number in international form).
pub async fn add_sms_key(
    store: &Store,
    cfg: &Config,
    insz: &str,
    username: &str,
    password: Option<&str>,
    phone: &str,
    now: i64,
) -> Result<String, AdminError> {
    let account = account_for(store, cfg, insz, username, password, now).await?;
    keys::add_sms(store, &account, phone, now).await.map_err(|e| match e {
        keys::KeyError::Invalid(_) => AdminError::Invalid("--phone: + and 8 to 15 digits".into()),
        other => other.into(),
    })
}

/// Adds a token card; returns its 24 codes (shown once; stored as HMACs under the master key).
pub async fn add_token_key(
    store: &Store,
    master: &MasterKey,
    cfg: &Config,
    insz: &str,
    username: &str,
    password: Option<&str>,
    now: i64,
) -> Result<std::collections::BTreeMap<i64, String>, AdminError> {
    let account = account_for(store, cfg, insz, username, password, now).await?;
    Ok(keys::add_token(store, master, &account, now).await?)
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

/// `cozo-broker policy check`: the decision a client's policy gives a person logging in with a
/// method (SPEC §4), with the policy that decided, the reasons and the methods that would do.
pub async fn policy_check(
    store: &Store,
    cfg: &Config,
    client_id: &str,
    insz: &str,
    method: &str,
    level: Option<&str>,
    now: i64,
) -> Result<serde_json::Value, AdminError> {
    use crate::assurance::{AssuranceLevel, Method};
    use crate::policy::{Decision, LoginFacts, PolicyEngine, Subject};
    let engine = PolicyEngine::load(&cfg.policy.dir)
        .map_err(|e| AdminError::Invalid(format!("policy.dir: {e}")))?;
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("client {client_id}")))?;
    let insz = Insz::parse(insz).map_err(|e| AdminError::Invalid(format!("--insz: {e}")))?;
    let method = Method::parse(method).ok_or_else(|| {
        AdminError::Invalid("--method: eid, totp, webauthn, sms, token, eidas, itsme, fas".into())
    })?;
    let level = match level {
        Some(l) => AssuranceLevel::parse(l)
            .ok_or_else(|| AdminError::Invalid("--level: low, substantial or high".into()))?,
        None => method.own_level().unwrap_or(AssuranceLevel::Low),
    };
    let professions = match (&cfg.cobrha.url, engine.needs_registry(&client.policy)) {
        (Some(url), true) => {
            let reg = crate::cobrha::HttpRegistry::new(
                url.as_str(),
                std::time::Duration::from_millis(cfg.cobrha.timeout_ms),
                std::time::Duration::from_secs(1),
            )
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
            let today = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default().date_naive();
            use crate::cobrha::Registry;
            reg.professions(&insz).await.ok().map(|v| {
                v.into_iter()
                    .filter(|p| p.active_on(today))
                    .map(|p| p.profession)
                    .collect::<Vec<_>>()
            })
        }
        _ => None,
    };
    let subject = Subject { insz: Some(insz.as_str().to_string()), professions };
    // itsme exists only through FAS; eIDAS is its own upstream.
    let upstream = match method {
        Method::Eidas => Some("eidas"),
        Method::Itsme | Method::Fas => Some("fas"),
        _ => None,
    };
    let facts = LoginFacts { method, level, upstream, auth_time: now };
    // Decided over every method the broker knows, so that a method the decision allows is always
    // in `methods`; `offered` is the part this configuration switches on (the server's chooser).
    let every = crate::policy::every_method(cfg);
    let decision = engine
        .decide(&client.policy, &client.id, &subject, Some(&facts), &every, now)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let satisfying = |candidates: &[crate::policy::Candidate]| -> Result<Vec<String>, AdminError> {
        let mut names: Vec<String> = Vec::new();
        for c in candidates {
            let login = LoginFacts {
                method: c.method,
                level: c.level,
                upstream: c.upstream,
                auth_time: now,
            };
            let (ok, _) = engine
                .evaluate(&client.policy, &client.id, &subject, &login)
                .map_err(|e| AdminError::Invalid(e.to_string()))?;
            if ok && !names.iter().any(|n| n == c.method.as_str()) {
                names.push(c.method.as_str().to_string());
            }
        }
        Ok(names)
    };
    let methods = satisfying(&every)?;
    let switched_on = satisfying(&crate::offered_methods(cfg))?;
    let offered: Vec<String> =
        methods.iter().filter(|m| switched_on.contains(m)).cloned().collect();
    let reasons = match &decision {
        Decision::Allow => Vec::new(),
        Decision::StepUp { reasons, .. } | Decision::Deny { reasons, .. } => reasons.clone(),
    };
    let tr = crate::i18n::Tr::new(crate::i18n::Lang::En);
    let mut reason = if reasons.is_empty() {
        format!("a {} login at level {} satisfies policy {}", method, level.short(), client.policy)
    } else {
        reasons.iter().map(|r| tr.t(r)).collect::<Vec<_>>().join(" ")
    };
    if !methods.is_empty() && offered.is_empty() {
        reason.push_str(" None of the methods that would satisfy it is switched on here.");
    }
    Ok(serde_json::json!({
        "decision": decision.name(),
        "policy": client.policy,
        "reason": reason,
        "reasons": reasons,
        "methods": methods,
        "offered": offered,
    }))
}

/// Makes a known person an operator of a registration office (`office operator add`).
pub async fn add_operator(
    store: &Store,
    insz: &str,
    office: &str,
    now: i64,
) -> Result<crate::store::Operator, AdminError> {
    let insz = Insz::parse(insz).map_err(|e| AdminError::Invalid(format!("insz: {e}")))?;
    let office = office.trim();
    if office.is_empty() || office.chars().count() > 100 {
        return Err(AdminError::Invalid(
            "--office: give the office's name (1 to 100 characters)".into(),
        ));
    }
    let person = store.person_by_insz(&insz).await?.ok_or_else(|| {
        AdminError::NotFound(format!(
            "person {} (add them first with `person add`)",
            insz.formatted()
        ))
    })?;
    store.upsert_operator(&person.id, office, now).await?;
    let e = Event::new(Kind::OfficeOperator, Outcome::Added)
        .person(&person.id)
        .detail(serde_json::json!({ "office": office }));
    Audit::new(store.clone()).record(e, now).await;
    Ok(crate::store::Operator { person_id: person.id, office: office.to_string() })
}

/// Registers a person at an operator's office from the command line (`office register`): the
/// same rules as the `/office/register` form.
pub async fn office_register(
    offices: &crate::office::Offices,
    store: &Store,
    operator_insz: &str,
    form: &crate::office::RegistrationForm,
    now: i64,
) -> Result<crate::office::Issued, AdminError> {
    let insz =
        Insz::parse(operator_insz).map_err(|e| AdminError::Invalid(format!("--operator: {e}")))?;
    let person = store
        .person_by_insz(&insz)
        .await?
        .ok_or_else(|| AdminError::NotFound("operator".into()))?;
    let op = store.operator(&person.id).await?.ok_or_else(|| {
        AdminError::Invalid("--operator: this person is not an office operator".into())
    })?;
    let new = form.parse(crate::clock::to_utc(now).date_naive()).map_err(|errs| {
        AdminError::Invalid(
            errs.iter()
                .map(|e| {
                    format!(
                        "--{}: {}",
                        e.field.replace('_', "-"),
                        crate::i18n::Tr::new(crate::i18n::Lang::En).t(e.key)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    offices.register(&op, new, now).await.map_err(|e| match e {
        crate::office::OfficeError::Store(s) => AdminError::Store(s),
        other => AdminError::Invalid(other.to_string()),
    })
}
