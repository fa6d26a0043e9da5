//! Operator actions behind the CLI (`client`, `person`, `key`, `keys`, `office`, `policy`,
//! `audit`): also used by the demo and the tests, so every path is the one operators use. The
//! CLI (`src/cli/`) parses and renders; these functions act, through the domain modules' use
//! cases where there is one (`keys`, `office`, `policy`, `oidc::signing`).

use crate::audit::{Audit, Event, Kind, Outcome};
use crate::config::Config;
use crate::crypto::{self, MasterKey};
use crate::identity::Insz;
use crate::keys::{self, NewTotp};
use crate::oidc::signing::SigningAlg;
use crate::store::{
    AuditRow, ClientAuthMethod, ClientRow, KeyRow, Person, SigningKeyRow, Store, StoreError,
};

/// Why an operator action failed. The first three are the operator's to fix (the CLI exits 2
/// and names [`AdminError::key`]); the others are failures of the system (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A value breaks a rule.
    #[error("{message}")]
    Invalid { key: String, message: String },
    /// What the operator named does not exist.
    #[error("{what} not found")]
    NotFound { key: &'static str, what: String },
    /// It exists already (a client id, a person, a username).
    #[error("{source}")]
    Exists {
        key: &'static str,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
}

impl AdminError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        AdminError::Invalid { key: key.into(), message: message.into() }
    }

    fn not_found(key: &'static str, what: impl Into<String>) -> Self {
        AdminError::NotFound { key, what: what.into() }
    }

    /// The option or setting at fault when the operator can fix it; `None` for a failure of the
    /// system (database, crypto).
    pub fn key(&self) -> Option<&str> {
        match self {
            AdminError::Invalid { key, .. } => Some(key),
            AdminError::NotFound { key, .. } | AdminError::Exists { key, .. } => Some(key),
            AdminError::Store(_) | AdminError::Key(_) => None,
        }
    }

    /// A unique-constraint violation becomes [`AdminError::Exists`] naming `key`.
    fn exists_or(key: &'static str) -> impl Fn(StoreError) -> Self {
        move |e| match e {
            StoreError::Conflict(_) => AdminError::Exists { key, source: e },
            other => AdminError::Store(other),
        }
    }
}

fn parse_insz(insz: &str, key: &'static str) -> Result<Insz, AdminError> {
    Insz::parse(insz).map_err(|e| AdminError::invalid(key, format!("{key}: {e}")))
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
    /// Sessions across apps (SPEC §11): `--name`, `--backchannel-logout-uri`, `--dpop`.
    pub name: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub dpop: bool,
    /// `authorization_code` (the default) and/or `client_credentials` (SPEC §10).
    pub grant_types: Vec<String>,
    /// PEM of the client's eHealth certificate (`client_credentials`).
    pub certificate: Option<String>,
    /// What `client_credentials` may grant (default `api`).
    pub scopes: Vec<String>,
    /// Resource URIs (RFC 8707) the client may ask tokens for.
    pub resources: Vec<String>,
    pub introspect: bool,
    pub token_exchange: bool,
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
            name: None,
            backchannel_logout_uri: None,
            dpop: false,
            grant_types: vec![],
            certificate: None,
            scopes: vec![],
            resources: vec![],
            introspect: false,
            token_exchange: false,
        }
    }

    /// A software client (`--grant client_credentials --certificate …`).
    pub fn software(id: &str, certificate_pem: &str, auth_method: &str, policy: &str) -> Self {
        Self {
            redirect_uris: vec![],
            auth_method: auth_method.into(),
            grant_types: vec!["client_credentials".into()],
            certificate: Some(certificate_pem.into()),
            ..Self::new(id, "", policy)
        }
    }
}

fn check_uri(u: &str, key: &'static str) -> Result<(), AdminError> {
    let url = url::Url::parse(u)
        .map_err(|_| AdminError::invalid(key, format!("{key} {u} is not a URL")))?;
    if url.fragment().is_some() {
        return Err(AdminError::invalid(key, format!("{key} {u} must not have a fragment")));
    }
    if url.scheme() == "http" && !crate::config::is_loopback_host(&url) {
        return Err(AdminError::invalid(
            key,
            format!("{key} {u} must be https (http only on localhost)"),
        ));
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
    add_client_trusting(store, policies, None, spec, now).await
}

/// Registers a client, checking its eHealth certificate (if any) against `ehealth` at `now`.
pub async fn add_client_trusting(
    store: &Store,
    policies: &crate::policy::PolicyEngine,
    ehealth: Option<&crate::ehealth::Ehealth>,
    spec: &ClientSpec,
    now: i64,
) -> Result<Option<String>, AdminError> {
    if spec.id.is_empty()
        || spec.id.len() > 128
        || !spec.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(AdminError::invalid("--id", "--id: letters, digits, - _ . only"));
    }
    let grants: Vec<String> = if spec.grant_types.is_empty() {
        vec!["authorization_code".into()]
    } else {
        spec.grant_types.clone()
    };
    for g in &grants {
        if !matches!(g.as_str(), "authorization_code" | "client_credentials") {
            return Err(AdminError::invalid(
                "--grant",
                format!("--grant {g}: authorization_code or client_credentials"),
            ));
        }
    }
    let browser = grants.iter().any(|g| g == "authorization_code");
    let software = grants.iter().any(|g| g == "client_credentials");
    if browser && spec.redirect_uris.is_empty() {
        return Err(AdminError::invalid("--redirect-uri", "--redirect-uri is required"));
    }
    for u in &spec.redirect_uris {
        check_uri(u, "--redirect-uri")?;
    }
    for u in &spec.post_logout_redirect_uris {
        check_uri(u, "--post-logout-redirect-uri")?;
    }
    if let Some(u) = &spec.backchannel_logout_uri {
        check_uri(u, "--backchannel-logout-uri")?;
    }
    if spec.name.as_deref().is_some_and(|n| n.trim().is_empty() || n.chars().count() > 100) {
        return Err(AdminError::invalid("--name", "--name: 1 to 100 characters"));
    }
    for u in &spec.resources {
        check_uri(u, "--resource")?;
    }
    for sc in &spec.scopes {
        if sc.is_empty() || !sc.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            return Err(AdminError::invalid("--scope", format!("--scope {sc:?} is not a scope")));
        }
    }
    if !policies.has(&spec.policy) {
        return Err(AdminError::invalid(
            "--policy",
            format!(
                "--policy {}: one of {} (files in {})",
                spec.policy,
                policies.names().collect::<Vec<_>>().join(", "),
                policies.dir().display()
            ),
        ));
    }
    if SigningAlg::parse(&spec.id_token_alg).is_none() {
        return Err(AdminError::invalid("--id-token-alg", "--id-token-alg: RS256, ES256 or EdDSA"));
    }
    let auth_method = if spec.public { "none".to_string() } else { spec.auth_method.clone() };
    // A certificate, checked now as at every token request (SPEC §10).
    let certificate = match &spec.certificate {
        None if software => {
            return Err(AdminError::invalid(
                "--certificate",
                "--grant client_credentials needs --certificate CERT.pem",
            ))
        }
        None => None,
        Some(_) if !software => {
            return Err(AdminError::invalid(
                "--certificate",
                "--certificate is for --grant client_credentials",
            ))
        }
        Some(pem) => {
            let ehealth = ehealth.ok_or_else(|| {
                AdminError::invalid(
                    "ehealth.ca_bundle",
                    "--certificate needs the eHealth CAs: set [ehealth] ca_bundle and crl",
                )
            })?;
            let verified = ehealth
                .verify_pem(pem, now)
                .map_err(|e| AdminError::invalid("--certificate", format!("--certificate: {e}")))?;
            if !matches!(auth_method.as_str(), "private_key_jwt" | "tls_client_auth") {
                return Err(AdminError::invalid(
                    "--auth-method",
                    "a certificate client authenticates with private_key_jwt or tls_client_auth",
                ));
            }
            Some((pem.clone(), verified.x5t_s256))
        }
    };
    match auth_method.as_str() {
        "client_secret_basic" | "client_secret_post" | "none" => {}
        "tls_client_auth" if certificate.is_some() => {}
        "private_key_jwt" if certificate.is_some() => {}
        "private_key_jwt" => {
            if spec.jwks.is_none() == spec.jwks_uri.is_none() {
                return Err(AdminError::invalid(
                    "--jwks",
                    "private_key_jwt needs --jwks FILE or --jwks-uri URL",
                ));
            }
            if let Some(j) = &spec.jwks {
                serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(j).map_err(|e| {
                    AdminError::invalid("--jwks", format!("--jwks is not a JWK set: {e}"))
                })?;
            }
        }
        other => {
            return Err(AdminError::invalid(
                "--auth-method",
                format!("--auth-method {other} is not supported"),
            ))
        }
    }
    let api = (software
        || spec.introspect
        || spec.token_exchange
        || !spec.resources.is_empty()
        || !spec.scopes.is_empty())
    .then(|| crate::store::ClientApi {
        grant_types: grants.clone(),
        certificate_sha256: certificate.as_ref().map(|(_, t)| t.clone()),
        certificate: certificate.map(|(pem, _)| pem),
        scopes: if spec.scopes.is_empty() && software {
            vec!["api".into()]
        } else {
            spec.scopes.clone()
        },
        resources: spec.resources.clone(),
        introspect: spec.introspect,
        token_exchange: spec.token_exchange,
    });
    let secret = matches!(auth_method.as_str(), "client_secret_basic" | "client_secret_post")
        .then(|| crypto::random_token(32));
    store
        .insert_client(&ClientRow {
            id: spec.id.clone(),
            secret_hash: secret.as_deref().map(crypto::token_hash),
            redirect_uris: spec.redirect_uris.clone(),
            post_logout_redirect_uris: spec.post_logout_redirect_uris.clone(),
            auth_method: ClientAuthMethod::parse(&auth_method).ok_or_else(|| {
                AdminError::invalid(
                    "--auth-method",
                    format!("--auth-method {auth_method} is not supported"),
                )
            })?,
            jwks: spec.jwks.clone(),
            jwks_uri: spec.jwks_uri.clone(),
            id_token_alg: spec.id_token_alg.clone(),
            policy: spec.policy.clone(),
            created_at: now,
            api,
            dpop_required: spec.dpop,
        })
        .await
        .map_err(AdminError::exists_or("--id"))?;
    if spec.name.is_some() || spec.backchannel_logout_uri.is_some() || spec.dpop {
        store
            .insert_client_app(&crate::store::ClientApp {
                client_id: spec.id.clone(),
                name: spec.name.as_ref().map(|n| n.trim().to_string()),
                backchannel_logout_uri: spec.backchannel_logout_uri.clone(),
                dpop_required: spec.dpop,
            })
            .await?;
    }
    Ok(secret)
}

/// The registered clients (`client list`).
pub async fn clients(
    store: &Store,
) -> Result<Vec<(ClientRow, crate::store::ClientApp)>, AdminError> {
    let mut out = Vec::new();
    for c in store.clients().await? {
        let app = store.client_app(&c.id).await?;
        out.push((c, app));
    }
    Ok(out)
}

/// Removes a client (`client remove`); an unknown id is the operator's mistake.
pub async fn remove_client(store: &Store, id: &str, now: i64) -> Result<(), AdminError> {
    if store.remove_client(id, now).await? {
        store.delete_client_app(id).await?;
        Ok(())
    } else {
        Err(AdminError::not_found("--id", format!("client {id}")))
    }
}

/// The OpenID provider's signing keys, retired ones included (`keys list`).
pub async fn signing_keys(store: &Store) -> Result<Vec<SigningKeyRow>, AdminError> {
    Ok(store.signing_keys(0).await?)
}

pub async fn add_person(
    store: &Store,
    insz: &str,
    given_name: &str,
    family_name: &str,
    birthdate: Option<&str>,
    now: i64,
) -> Result<Person, AdminError> {
    let insz = parse_insz(insz, "--insz")?;
    if given_name.trim().is_empty() || family_name.trim().is_empty() {
        return Err(AdminError::invalid(
            "--given-name",
            "--given-name and --family-name are required",
        ));
    }
    if let Some(b) = birthdate {
        chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d")
            .map_err(|_| AdminError::invalid("--birthdate", "--birthdate must be YYYY-MM-DD"))?;
    }
    let person = Person {
        id: crypto::random_token(16),
        insz,
        given_name: given_name.trim().into(),
        family_name: family_name.trim().into(),
        birthdate: birthdate.map(str::to_string),
        created_at: now,
    };
    store.insert_person(&person).await.map_err(AdminError::exists_or("--insz"))?;
    Ok(person)
}

/// The person with this INSZ (`person show`, and every `key` command).
pub async fn person(store: &Store, insz: &str) -> Result<Person, AdminError> {
    let insz = parse_insz(insz, "--insz")?;
    store
        .person_by_insz(&insz)
        .await?
        .ok_or_else(|| AdminError::not_found("--insz", "person with this INSZ"))
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
        Some(_) => {
            Err(AdminError::invalid("--username", "this person's account has another username"))
        }
        None => {
            let password = password.ok_or_else(|| {
                AdminError::invalid(
                    "COZO_PASSWORD",
                    "a new account needs a password (COZO_PASSWORD or standard input)",
                )
            })?;
            keys::create_account(store, &cfg.login, &person.id, username, password, now)
                .await
                .map_err(|e| match e {
                    keys::KeyError::Invalid(rule) => {
                        // The password comes from COZO_PASSWORD or standard input.
                        let key = if rule.starts_with("password") {
                            "COZO_PASSWORD"
                        } else {
                            "--username"
                        };
                        AdminError::invalid(key, format!("rejected: {rule}"))
                    }
                    keys::KeyError::Store(s @ StoreError::Conflict(_)) => {
                        AdminError::Exists { key: "--username", source: s }
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
        keys::KeyError::Invalid(_) => {
            AdminError::invalid("--phone", "--phone: + and 8 to 15 digits")
        }
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

/// The username and keys of the person's account (none without an account).
pub async fn list_keys(store: &Store, insz: &str) -> Result<(String, Vec<KeyRow>), AdminError> {
    let person = person(store, insz).await?;
    let Some(account) = store.account_by_person(&person.id).await? else {
        return Ok((String::new(), vec![]));
    };
    Ok((account.username.clone(), store.keys_of_account(&account.id).await?))
}

/// Revokes every key of the person's account and ends every broker session of theirs (their
/// apps get a back-channel logout, SPEC §11); answers how many keys.
pub async fn revoke_all_keys(store: &Store, insz: &str, now: i64) -> Result<u64, AdminError> {
    let person = person(store, insz).await?;
    let Some(account) = store.account_by_person(&person.id).await? else {
        return Ok(0);
    };
    let revoked = store.revoke_keys_of_account(&account.id, now).await?;
    crate::oidc::backchannel::end_person(store, &person.id, now).await?;
    Ok(revoked)
}

/// What `policy check` answers: the decision a client's policy gives, the policy that decided,
/// the reasons (message keys, and in English) and the methods that would do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyCheck {
    pub decision: &'static str,
    pub policy: String,
    pub reason: String,
    pub reasons: Vec<String>,
    /// Every method that would satisfy the policy, whether or not this configuration offers it.
    pub methods: Vec<String>,
    /// The part of `methods` this configuration switches on (what the chooser would show).
    pub offered: Vec<String>,
}

/// `cozo-broker policy check`: the decision a client's policy gives a person logging in with a
/// method (SPEC §4), as the policy engine makes it at a login, with the person's CoBRHA
/// professions when the policy looks at them.
pub async fn policy_check(
    store: &Store,
    cfg: &Config,
    client_id: &str,
    insz: &str,
    method: &str,
    level: Option<&str>,
    now: i64,
) -> Result<PolicyCheck, AdminError> {
    use crate::assurance::{AssuranceLevel, Method};
    use crate::policy::{Decision, LoginFacts, PolicyEngine, Subject};
    let engine = PolicyEngine::load(&cfg.policy.dir)
        .map_err(|e| AdminError::invalid("policy.dir", format!("policy.dir: {e}")))?;
    let client = store
        .client(client_id)
        .await?
        .ok_or_else(|| AdminError::not_found("--client", format!("client {client_id}")))?;
    let insz = parse_insz(insz, "--insz")?;
    let method = Method::parse(method).ok_or_else(|| {
        AdminError::invalid(
            "--method",
            "--method: eid, totp, webauthn, sms, token, eidas, eudiw, itsme, fas",
        )
    })?;
    let level = match level {
        Some(l) => AssuranceLevel::parse(l)
            .ok_or_else(|| AdminError::invalid("--level", "--level: low, substantial or high"))?,
        // A wallet's PID is issued at high, capped by `[eudiw] max_level`.
        None if method == Method::Eudiw => cfg.eudiw.max_level,
        None => method.own_level().unwrap_or(AssuranceLevel::Low),
    };
    let professions = match (&cfg.cobrha.url, engine.needs_registry(&client.policy)) {
        (Some(url), true) => active_professions(cfg, url, &insz, now).await,
        _ => None,
    };
    let subject = Subject { insz: Some(insz.as_str().to_string()), professions };
    // itsme exists only through FAS; eIDAS is its own upstream.
    let upstream = match method {
        Method::Eidas => Some("eidas"),
        Method::Eudiw => Some("eudiw"),
        Method::Itsme | Method::Fas => Some("fas"),
        _ => None,
    };
    let facts = LoginFacts { method, level, upstream, auth_time: now };
    // Decided over every method the broker knows, so that a method the decision allows is always
    // in `methods`; `offered` is the part this configuration switches on (the server's chooser).
    let every = crate::policy::every_method(cfg);
    let decision = engine
        .decide(&client.policy, &client.id, &subject, Some(&facts), &every, now)
        .map_err(|e| AdminError::invalid("--client", e.to_string()))?;
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
                .map_err(|e| AdminError::invalid("--client", e.to_string()))?;
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
    Ok(PolicyCheck {
        decision: decision.name(),
        policy: client.policy,
        reason,
        reasons,
        methods,
        offered,
    })
}

/// The person's professions active on the day of `now`; `None` when CoBRHA cannot be asked
/// (as at a login: the policy then decides without them).
async fn active_professions(
    cfg: &Config,
    url: &url::Url,
    insz: &Insz,
    now: i64,
) -> Option<Vec<String>> {
    use crate::cobrha::Registry;
    let registry = crate::cobrha::HttpRegistry::new(
        url.as_str(),
        std::time::Duration::from_millis(cfg.cobrha.timeout_ms),
        std::time::Duration::from_secs(1),
    )
    .ok()?;
    let today = crate::clock::to_utc(now).date_naive();
    let list = registry.professions(insz).await.ok()?;
    Some(list.into_iter().filter(|p| p.active_on(today)).map(|p| p.profession).collect())
}

/// Makes a known person an operator of a registration office (`office operator add`).
pub async fn add_operator(
    store: &Store,
    insz: &str,
    office: &str,
    now: i64,
) -> Result<crate::store::Operator, AdminError> {
    let insz = parse_insz(insz, "insz")?;
    let office = office.trim();
    if office.is_empty() || office.chars().count() > 100 {
        return Err(AdminError::invalid(
            "--office",
            "--office: give the office's name (1 to 100 characters)",
        ));
    }
    let person = store.person_by_insz(&insz).await?.ok_or_else(|| {
        AdminError::not_found(
            "insz",
            format!("person {} (add them first with `person add`)", insz.formatted()),
        )
    })?;
    store.upsert_operator(&person.id, office, now).await?;
    let e = Event::new(Kind::OfficeOperator, Outcome::Added)
        .person(&person.id)
        .detail(serde_json::json!({ "office": office }));
    Audit::new(store.clone()).record(e, now).await;
    Ok(crate::store::Operator { person_id: person.id, office: office.to_string() })
}

/// Registers a person at an operator's office from the command line (`office register`): the
/// same rules and the same use case as the `/office/register` form.
pub async fn office_register(
    offices: &crate::office::Offices,
    store: &Store,
    operator_insz: &str,
    form: &crate::office::RegistrationForm,
    now: i64,
) -> Result<crate::office::Issued, AdminError> {
    let today = crate::clock::to_utc(now).date_naive();
    let insz = parse_insz(operator_insz, "--operator")?;
    let person = store
        .person_by_insz(&insz)
        .await?
        .ok_or_else(|| AdminError::not_found("--operator", "operator"))?;
    let op = store.operator(&person.id).await?.ok_or_else(|| {
        AdminError::invalid("--operator", "--operator: this person is not an office operator")
    })?;
    let new = form.parse(today).map_err(|errs| {
        let tr = crate::i18n::Tr::new(crate::i18n::Lang::En);
        let option = |field: &str| format!("--{}", field.replace('_', "-"));
        AdminError::Invalid {
            // The first field at fault; the message lists them all.
            key: errs.first().map(|e| option(e.field)).unwrap_or_default(),
            message: errs
                .iter()
                .map(|e| format!("{}: {}", option(e.field), tr.t(e.key)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    })?;
    offices.register(&op, new, now).await.map_err(|e| match e {
        crate::office::OfficeError::Store(s) => AdminError::Store(s),
        other => AdminError::invalid("--insz", other.to_string()),
    })
}

/// Audit events, newest first (`audit export`).
pub async fn audit_events(
    store: &Store,
    since: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, AdminError> {
    Ok(store.audit_events(None, since, limit).await?)
}
