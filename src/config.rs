//! The one typed configuration: built-in defaults, then the TOML file, then `COZO_<SECTION>__<KEY>`
//! environment variables (SPEC §1). Unknown keys are refused so that a typo never silently
//! leaves a default in place.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use url::Url;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub secrets: SecretsConfig,
    pub oidc: OidcConfig,
    pub login: LoginConfig,
    pub ui: UiConfig,
    pub eid: EidConfig,
    pub ehealth: EhealthConfig,
    pub mtls: MtlsConfig,
    pub policy: PolicyConfig,
    pub cobrha: RegistryConfig,
    pub bis_register: RegistryConfig,
    pub sms: SmsConfig,
    pub mail: MailConfig,
    pub eidas: EidasConfig,
    pub fas: FasConfig,
    pub eudiw: EudiwConfig,
}

/// The federal authentication service (FAS/CSAM) as upstream OpenID provider (SPEC §6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FasConfig {
    /// Unset: no federal login. https, except on a loopback address (tests, demo).
    pub issuer: Option<Url>,
    pub client_id: String,
    pub client_secret: String,
    /// The ID token claim holding the national number.
    pub insz_claim: String,
    /// FAS `acr` → level (`low`, `substantial`, `high` or the eIDAS URI); a missing `acr` is refused.
    pub levels: std::collections::BTreeMap<String, String>,
    /// A value in the FAS `amr` → our method (`eid`, `itsme`, `totp`, `sms`, `token`).
    pub means: std::collections::BTreeMap<String, String>,
    pub max_level: crate::assurance::AssuranceLevel,
}

impl Default for FasConfig {
    fn default() -> Self {
        let levels = [
            ("urn:be:fedict:iam:fas:Level500", "high"),
            ("urn:be:fedict:iam:fas:Level450", "high"),
            ("urn:be:fedict:iam:fas:Level400", "substantial"),
            ("urn:be:fedict:iam:fas:Level350", "low"),
            ("urn:be:fedict:iam:fas:Level300", "low"),
            ("urn:be:fedict:iam:fas:Level200", "low"),
            ("urn:be:fedict:iam:fas:Level100", "low"),
        ];
        let means = [
            ("eid", "eid"),
            ("bmid", "itsme"),
            ("itsme", "itsme"),
            ("totp", "totp"),
            ("sms", "sms"),
            ("token", "token"),
        ];
        Self {
            issuer: None,
            client_id: "cozo-broker".into(),
            client_secret: String::new(),
            insz_claim: "egovNRN".into(),
            levels: levels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            means: means.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            max_level: crate::assurance::AssuranceLevel::High,
        }
    }
}

/// The eIDAS node this broker is a service provider of (SPEC §6).
/// How AuthnRequests travel to the eIDAS node.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SamlBinding {
    Redirect,
    Post,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EidasConfig {
    /// File path or URL of the node's SAML metadata; its signing certificate is the only one
    /// trusted. Unset: eIDAS login is not offered.
    pub node_metadata: Option<String>,
    /// The highest level this node may vouch for (`low`, `substantial`, `high`).
    pub max_level: crate::assurance::AssuranceLevel,
    /// ISO 3166 codes shown in the country list.
    pub countries: Vec<String>,
    pub require_encryption: bool,
    /// `redirect` or `post`: how AuthnRequests travel to the node.
    pub binding: SamlBinding,
    pub signing_key: Option<PathBuf>,
    pub signing_cert: Option<PathBuf>,
    pub encryption_key: Option<PathBuf>,
    pub encryption_cert: Option<PathBuf>,
    /// The EC (P-256/P-384) key for ECDH-ES nodes and its certificate; generated and stored
    /// like the others when unset.
    pub ec_encryption_key: Option<PathBuf>,
    pub ec_encryption_cert: Option<PathBuf>,
}

impl Default for EidasConfig {
    fn default() -> Self {
        Self {
            node_metadata: None,
            max_level: crate::assurance::AssuranceLevel::High,
            countries: ["NL", "DE", "FR", "LU"].iter().map(|s| s.to_string()).collect(),
            require_encryption: true,
            binding: SamlBinding::Redirect,
            signing_key: None,
            signing_cert: None,
            encryption_key: None,
            encryption_cert: None,
            ec_encryption_key: None,
            ec_encryption_cert: None,
        }
    }
}

/// The EU Digital Identity Wallet login: the broker as OpenID4VP verifier (SPEC §12).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EudiwConfig {
    pub enabled: bool,
    /// PEM file of the PID providers' certificates (or their CAs): the issuer's `x5c` must
    /// chain to one of them.
    pub trust_anchors: Option<PathBuf>,
    /// The highest level a wallet login gives (the PID is issued at high).
    pub max_level: crate::assurance::AssuranceLevel,
    /// The verifier's certificate (its SAN DNS name is the client id) and P-256 key, PEM;
    /// generated (self-signed, for the DNS name of `[server] public_url`) when unset.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Where "Open my wallet" points on this device, with the request's `client_id` and
    /// `request_uri` added; unset: `openid4vp://` (the wallet the phone registered for it).
    pub wallet_url: Option<Url>,
}

impl Default for EudiwConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            trust_anchors: None,
            max_level: crate::assurance::AssuranceLevel::High,
            cert: None,
            key: None,
            wallet_url: None,
        }
    }
}

/// SMS delivery: the broker POSTs `{"to","text"}` as JSON to the gateway (SPEC §7).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    pub gateway_url: Option<Url>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp://host:port` or `smtps://user:pass@host`.
    pub smtp_url: Option<String>,
    pub from: String,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self { smtp_url: None, from: "CoZo <no-reply@localhost>".into() }
    }
}

impl Config {
    /// Without an SMS gateway and SMTP server (the demo), messages stay in the outbox and
    /// `/demo/mailbox` shows them.
    pub fn demo_mailbox(&self) -> bool {
        self.sms.gateway_url.is_none() && self.mail.smtp_url.is_none()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The issuer and the base of every URL the broker hands out.
    pub public_url: Url,
    /// Request bodies over this are refused with 413 before any parsing.
    pub max_body_bytes: usize,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted load balancer).
    pub trust_forwarded_for: bool,
    /// Bearer token `/metrics` requires. Unset: `/metrics` is open (block it at the ingress).
    pub metrics_token: Option<String>,
    /// Requests per second per client address on the login pages, and separately on the
    /// token endpoints (per replica; 0 turns the limit off), and the burst allowed above it.
    pub rate_limit_per_s: u32,
    pub rate_limit_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path` (embedded default) or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// Base64 of 32 random bytes. Encrypts signing keys and TOTP secrets at rest (AES-256-GCM).
    /// Replicas must share it. When unset, `master_key_file` is used (created on first start).
    pub master_key: Option<String>,
    pub master_key_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    pub code_ttl_s: i64,
    pub access_token_ttl_s: i64,
    pub id_token_ttl_s: i64,
    /// Absolute life of a refresh-token family (the grant), counted from the code exchange.
    pub refresh_token_ttl_s: i64,
    /// Life of a pending authorization request (the person's time to log in).
    pub pending_ttl_s: i64,
    pub par_ttl_s: i64,
    /// Idle life of a browser session.
    pub session_ttl_s: i64,
    /// The JWKS key that signs access tokens (RFC 9068): `RS256` (default: every resource server
    /// must verify it, RFC 9068 §4), or `ES256` / `EdDSA` when every API behind the broker
    /// verifies those — an ECDSA signature costs a tenth of an RSA-2048 one, and every grant
    /// signs an ID token and an access token (BENCHMARKS.md, #18).
    pub access_token_alg: crate::oidc::signing::SigningAlg,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Wrong passwords or codes for one account within `window_s` before it locks.
    pub max_failures: i64,
    pub window_s: i64,
    pub lock_s: i64,
    /// Failures from one client address within `window_s` before it is slowed down, and locked.
    pub address_slowdown_after: i64,
    pub address_max_failures: i64,
    /// Argon2id cost (memory in KiB, iterations, parallelism); the floor is 19456/2/1.
    pub argon2_m_kib: u32,
    pub argon2_t: u32,
    pub argon2_p: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Language when neither `ui_locales`, the language cookie nor `Accept-Language` decide.
    pub default_language: crate::i18n::Lang,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EidConfig {
    pub listen: SocketAddr,
    pub public_url: Url,
    /// PEM file of the CAs that issue card certificates. Unset: no eID login.
    pub ca_bundle: Option<PathBuf>,
    /// Revocation lists (PEM or DER); a changed file takes effect within 60 s.
    pub crl: PathList,
    /// The listener's own certificate and key (PEM); generated when unset.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub handshake_timeout_ms: u64,
}

/// eHealth certificates of software clients (SPEC §10).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EhealthConfig {
    /// PEM file of the eHealth CAs. Unset: no software client can be registered.
    pub ca_bundle: Option<PathBuf>,
    /// Revocation lists (PEM or DER), one for every issuing CA; a changed file takes effect
    /// within two `reload_interval_s`.
    pub crl: PathList,
    /// How often the CRL files are checked for changes (seconds, 1–30).
    pub reload_interval_s: u64,
}

impl Default for EhealthConfig {
    fn default() -> Self {
        Self { ca_bundle: None, crl: PathList::None, reload_interval_s: 30 }
    }
}

/// The mutual-TLS listener for `tls_client_auth` and certificate-bound tokens (RFC 8705).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MtlsConfig {
    pub listen: SocketAddr,
    pub public_url: Url,
    /// The listener's own certificate and key (PEM); generated when unset.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub handshake_timeout_ms: u64,
}

impl Default for MtlsConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8444)),
            public_url: url("https://localhost:8444"),
            cert: None,
            key: None,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// One path or a list of paths.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(untagged)]
pub enum PathList {
    #[default]
    None,
    One(PathBuf),
    Many(Vec<PathBuf>),
}

impl PathList {
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            PathList::None => Vec::new(),
            PathList::One(p) => vec![p.clone()],
            PathList::Many(v) => v.clone(),
        }
    }
}

/// An outside registry reached over HTTP (CoBRHA, the Bis register).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL; unset: the registry is not configured (policies needing it fail closed).
    pub url: Option<Url>,
    pub timeout_ms: u64,
    pub cache_ttl_s: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { url: None, timeout_ms: 2000, cache_ttl_s: 300 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    pub dir: PathBuf,
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap_or_else(|_| unreachable!("built-in default URL {s} parses"))
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: url("http://localhost:8080"),
            max_body_bytes: 256 * 1024,
            trust_forwarded_for: false,
            metrics_token: None,
            rate_limit_per_s: 50,
            rate_limit_burst: 200,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: "sqlite://data/cozo-broker.db".into(), max_connections: 16 }
    }
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { master_key: None, master_key_file: PathBuf::from("data/master.key") }
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            code_ttl_s: 60,
            access_token_ttl_s: 600,
            id_token_ttl_s: 600,
            refresh_token_ttl_s: 8 * 3600,
            pending_ttl_s: 1800,
            par_ttl_s: 60,
            session_ttl_s: 8 * 3600,
            access_token_alg: crate::oidc::signing::SigningAlg::Rs256,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_s: 15 * 60,
            lock_s: 15 * 60,
            address_slowdown_after: 10,
            address_max_failures: 100,
            argon2_m_kib: 19456,
            argon2_t: 2,
            argon2_p: 1,
        }
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        Self { default_language: crate::i18n::Lang::Nl }
    }
}

impl Default for EidConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            public_url: url("https://localhost:8443"),
            ca_bundle: None,
            crl: PathList::None,
            cert: None,
            key: None,
            handshake_timeout_ms: 10_000,
        }
    }
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self { dir: PathBuf::from("policies") }
    }
}

/// A configuration problem, always naming the key (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("configuration error at `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self { key: key.to_string(), message: message.into() }
    }
}

impl Config {
    /// Loads defaults → `file` (or `cozo-broker.toml` if present) → environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Self::defaults());
        match file {
            Some(f) => {
                if !f.exists() {
                    return Err(ConfigError::new(
                        "--config",
                        format!("{} does not exist", f.display()),
                    ));
                }
                fig = fig.merge(Toml::file(f));
            }
            None if Path::new("cozo-broker.toml").exists() => {
                fig = fig.merge(Toml::file("cozo-broker.toml"));
            }
            None => {}
        }
        Self::from_figment(fig.merge(Self::env()))
    }

    /// `COZO_SECTION__KEY=value`. Variables without `__` (e.g. `COZO_PASSWORD` for the CLI) are not
    /// settings.
    fn env() -> Env {
        Env::prefixed("COZO_").filter(|k| k.as_str().contains("__")).split("__")
    }

    /// The defaults a figment starts from, without `[fas.levels]` and `[fas.means]`: figment
    /// merges tables key by key, so a configured table would keep every built-in key it leaves
    /// out (an `acr` the deployment meant to refuse would still get a level). The built-in table
    /// comes back in [`Self::from_figment`] only where none was configured.
    fn defaults() -> Serialized<Config> {
        let mut d = Config::default();
        d.fas.levels.clear();
        d.fas.means.clear();
        Serialized::defaults(d)
    }

    fn from_figment(fig: Figment) -> Result<Self, ConfigError> {
        let mut cfg: Config = fig.extract().map_err(|e| {
            let key = e.path.join(".");
            let key = if key.is_empty() { "config".to_string() } else { key };
            let mut message = e.kind.to_string();
            if let Some(md) = &e.metadata {
                message.push_str(&format!(" (from {})", md.name));
            }
            ConfigError { key, message }
        })?;
        let builtin = FasConfig::default();
        if cfg.fas.levels.is_empty() {
            cfg.fas.levels = builtin.levels;
        }
        if cfg.fas.means.is_empty() {
            cfg.fas.means = builtin.means;
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks that serde cannot express.
    fn check(&self) -> Result<(), ConfigError> {
        let pu = &self.server.public_url;
        if !matches!(pu.scheme(), "http" | "https") {
            return Err(ConfigError::new("server.public_url", "must be an http(s) URL"));
        }
        if pu.scheme() == "http" && !is_loopback_host(pu) {
            return Err(ConfigError::new(
                "server.public_url",
                "must be https (plain http is only for localhost)",
            ));
        }
        if pu.query().is_some() || pu.fragment().is_some() {
            return Err(ConfigError::new("server.public_url", "must not have a query or fragment"));
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres:")
            || db.starts_with("postgresql:"))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new("database.max_connections", "must be at least 1"));
        }
        if let Some(k) = &self.secrets.master_key {
            crate::crypto::MasterKey::from_base64(k)
                .map_err(|e| ConfigError::new("secrets.master_key", e.to_string()))?;
        }
        let o = &self.oidc;
        for (key, v) in [
            ("oidc.code_ttl_s", o.code_ttl_s),
            ("oidc.access_token_ttl_s", o.access_token_ttl_s),
            ("oidc.id_token_ttl_s", o.id_token_ttl_s),
            ("oidc.refresh_token_ttl_s", o.refresh_token_ttl_s),
            ("oidc.pending_ttl_s", o.pending_ttl_s),
            ("oidc.par_ttl_s", o.par_ttl_s),
            ("oidc.session_ttl_s", o.session_ttl_s),
            ("login.window_s", self.login.window_s),
            ("login.lock_s", self.login.lock_s),
            ("login.max_failures", self.login.max_failures),
        ] {
            if v <= 0 {
                return Err(ConfigError::new(key, "must be a positive number"));
            }
        }
        if o.code_ttl_s > 600 {
            return Err(ConfigError::new(
                "oidc.code_ttl_s",
                "must be at most 600 (RFC 6749 §4.1.2)",
            ));
        }
        let l = &self.login;
        if l.argon2_m_kib < 19456 || l.argon2_t < 2 || l.argon2_p < 1 {
            return Err(ConfigError::new(
                "login.argon2_m_kib",
                "argon2id cost below the floor m=19456 KiB, t=2, p=1",
            ));
        }
        if let Some(issuer) = &self.fas.issuer {
            if issuer.scheme() != "https" && !is_loopback_host(issuer) {
                return Err(ConfigError::new(
                    "fas.issuer",
                    "must be https (http only on a loopback address)",
                ));
            }
        }
        for (acr, level) in &self.fas.levels {
            if crate::assurance::AssuranceLevel::parse(level).is_none() {
                return Err(ConfigError::new(
                    "fas.levels",
                    format!("{acr} = {level}: not a level"),
                ));
            }
        }
        for (amr, method) in &self.fas.means {
            if !matches!(method.as_str(), "eid" | "itsme" | "totp" | "sms" | "token") {
                return Err(ConfigError::new(
                    "fas.means",
                    format!("{amr} = {method}: not a method"),
                ));
            }
        }
        if !self.eidas.require_encryption {
            return Err(ConfigError::new(
                "eidas.require_encryption",
                "unencrypted assertions are refused by this broker (eIDAS requires encryption)",
            ));
        }
        for c in &self.eidas.countries {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ConfigError::new(
                    "eidas.countries",
                    format!("{c} is not an ISO 3166 alpha-2 code"),
                ));
            }
        }
        let files = [
            &self.eidas.signing_key,
            &self.eidas.signing_cert,
            &self.eidas.encryption_key,
            &self.eidas.encryption_cert,
        ];
        if files.iter().any(|f| f.is_some()) && !files.iter().all(|f| f.is_some()) {
            return Err(ConfigError::new(
                "eidas.signing_key",
                "signing_key, signing_cert, encryption_key and encryption_cert go together",
            ));
        }
        if self.eidas.ec_encryption_key.is_some() != self.eidas.ec_encryption_cert.is_some() {
            return Err(ConfigError::new(
                "eidas.ec_encryption_key",
                "ec_encryption_key and ec_encryption_cert go together",
            ));
        }
        if self.eudiw.enabled && self.eudiw.trust_anchors.is_none() {
            return Err(ConfigError::new(
                "eudiw.trust_anchors",
                "the wallet login needs the PID providers' certificates (a PEM file)",
            ));
        }
        if self.eudiw.cert.is_some() != self.eudiw.key.is_some() {
            return Err(ConfigError::new("eudiw.cert", "cert and key go together"));
        }
        Ok(())
    }

    /// The issuer identifier: the public URL without a trailing slash.
    pub fn issuer(&self) -> String {
        self.server.public_url.as_str().trim_end_matches('/').to_string()
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) except on plain-http localhost.
    pub fn secure_cookies(&self) -> bool {
        self.server.public_url.scheme() == "https"
    }
}

pub fn is_loopback_host(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml: &str, _env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::from(Config::defaults()).merge(Toml::string(toml)))
    }

    /// The wallet login cannot start without the PID providers to trust (SPEC §12).
    #[test]
    fn eudiw_needs_trust_anchors_and_a_whole_key_pair() {
        let e = load_str("[eudiw]\nenabled = true\n", &[]).unwrap_err();
        assert_eq!(e.key, "eudiw.trust_anchors");
        let e = load_str("[eudiw]\ncert = \"c.pem\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "eudiw.cert");
        let ok = load_str(
            "[eudiw]\nenabled = true\ntrust_anchors = \"a.pem\"\nmax_level = \"substantial\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(ok.eudiw.max_level, crate::assurance::AssuranceLevel::Substantial);
    }

    /// A configured `[fas.levels]` (or `[fas.means]`) is the whole table: an `acr` it leaves out
    /// is refused, even one the built-in table knows (SPEC §6).
    #[test]
    fn fas_tables_replace_the_built_in_ones() {
        let builtin = FasConfig::default();
        let cfg = load_str("", &[]).unwrap();
        assert_eq!((cfg.fas.levels, cfg.fas.means), (builtin.levels.clone(), builtin.means));
        let cfg = load_str(
            "[fas.levels]\n\"urn:be:fedict:iam:fas:Level500\" = \"high\"\n\
             \"urn:be:fedict:iam:fas:Level450\" = \"high\"\n\
             \"urn:be:fedict:iam:fas:Level400\" = \"substantial\"\n\
             \"urn:be:fedict:iam:fas:Level350\" = \"low\"\n\
             [fas.means]\neid = \"eid\"\n",
            &[],
        )
        .unwrap();
        let levels: Vec<&str> = cfg.fas.levels.keys().map(String::as_str).collect();
        assert_eq!(
            levels,
            [
                "urn:be:fedict:iam:fas:Level350",
                "urn:be:fedict:iam:fas:Level400",
                "urn:be:fedict:iam:fas:Level450",
                "urn:be:fedict:iam:fas:Level500"
            ]
        );
        assert!(builtin.levels.contains_key("urn:be:fedict:iam:fas:Level200"));
        assert_eq!(cfg.fas.means.keys().collect::<Vec<_>>(), ["eid"]);
    }

    #[test]
    fn defaults_work_without_a_file() {
        let cfg = load_str("", &[]).unwrap();
        assert_eq!(cfg.server.listen.port(), 8080);
        assert_eq!(cfg.database.url, "sqlite://data/cozo-broker.db");
        assert_eq!(cfg.issuer(), "http://localhost:8080");
    }

    #[test]
    fn bad_values_name_their_key() {
        let e = load_str("[server]\nlisten = \"not an address\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "server.listen");
        let e = load_str("[server]\npublic_url = \"http://broker.example.be\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "server.public_url");
        let e = load_str("[server]\nlisten_port = 3\n", &[]).unwrap_err();
        assert!(e.key.contains("server"), "{e}");
        let e = load_str("[login]\nargon2_m_kib = 1024\n", &[]).unwrap_err();
        assert_eq!(e.key, "login.argon2_m_kib");
        let e = load_str("[database]\nurl = \"mysql://x\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "database.url");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("cozo-broker.toml", "[server]\nlisten = \"127.0.0.1:9000\"\n")?;
            jail.set_env("COZO_SERVER__LISTEN", "127.0.0.1:9001");
            jail.set_env("COZO_PASSWORD", "not a setting");
            let cfg = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(cfg.server.listen.port(), 9001);
            jail.set_env("COZO_DATABASE__MAX_CONNECTIONS", "many");
            let e = Config::load(None).unwrap_err();
            assert_eq!(e.key, "database.max_connections");
            Ok(())
        });
    }
}
