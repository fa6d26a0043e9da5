//! cozo-broker: the identity and authentication broker of the CoZo platform.
//!
//! [`serve`] starts the broker on a listener and returns a [`Handle`]; `main.rs` is the CLI.

#![forbid(unsafe_code)]

pub mod admin;
pub mod assurance;
pub mod audit;
pub mod clock;
pub mod cobrha;
pub mod config;
pub mod crypto;
pub mod ehealth;
pub mod eid;
pub mod eidas;
pub mod eudiw;
pub mod fas;
pub mod http_client;
pub mod i18n;
pub mod identity;
pub mod keys;
pub mod linking;
pub mod metrics;
pub mod mtls;
pub mod office;
pub mod oidc;
pub mod outbox;
pub mod policy;
pub mod saml;
pub mod session;
pub mod store;
pub mod trust;
pub mod web;

#[cfg(feature = "demo")]
pub mod demo;

/// Every binary linking the broker (the server, its tests and benches) allocates with mimalloc:
/// with the system's malloc, allocation was ~7 % of a login's CPU and its locks a share of the
/// kernel's (BENCHMARKS.md, #17); mimalloc keeps per-thread free lists and frees without locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use assurance::Method;
use clock::Clock;
use config::Config;
use crypto::MasterKey;
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;
use tokio::sync::watch;

/// Everything a running broker is made of, built from the configuration.
pub struct Broker {
    pub cfg: Arc<Config>,
    pub store: Store,
    pub master: MasterKey,
    pub clock: Clock,
    pub state: web::AppState,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Keys(#[from] oidc::signing::KeyError),
    #[error(transparent)]
    KeyService(#[from] keys::KeyError),
    #[error(transparent)]
    Eidas(#[from] eidas::EidasError),
    #[error(transparent)]
    Eudiw(#[from] eudiw::EudiwError),
    #[error(transparent)]
    Eid(#[from] eid::EidError),
    #[error(transparent)]
    Ehealth(#[from] ehealth::EhealthError),
    #[error("policy error: {0}")]
    Policy(#[from] policy::PolicyError),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error(transparent)]
    HttpClient(#[from] http_client::HttpClientError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

pub fn master_key(cfg: &Config) -> Result<MasterKey, crypto::CryptoError> {
    match &cfg.secrets.master_key {
        Some(k) => MasterKey::from_base64(k),
        None => MasterKey::load_or_create(&cfg.secrets.master_key_file),
    }
}

/// The login methods this deployment offers, with the level each gives (SPEC §3).
pub fn offered_methods(cfg: &Config) -> Vec<policy::Candidate> {
    use assurance::AssuranceLevel;
    let mut c: Vec<policy::Candidate> = [Method::Totp, Method::Sms, Method::Token]
        .into_iter()
        .map(|m| policy::Candidate {
            method: m,
            level: m.own_level().unwrap_or(AssuranceLevel::Low),
            upstream: None,
        })
        .collect();
    if cfg.server.public_url.domain().is_some() {
        // WebAuthn needs a domain name (keys::webauthn).
        c.push(policy::Candidate {
            method: Method::Webauthn,
            level: AssuranceLevel::Substantial,
            upstream: None,
        });
    }
    if cfg.eid.ca_bundle.is_some() {
        c.push(policy::Candidate {
            method: Method::Eid,
            level: AssuranceLevel::High,
            upstream: None,
        });
    }
    if cfg.fas.issuer.is_some() {
        c.extend(
            fas::means_levels(&cfg.fas).into_iter().map(|(method, level)| policy::Candidate {
                method,
                level,
                upstream: Some("fas"),
            }),
        );
    }
    if cfg.eudiw.enabled {
        // The PID is issued at high; the deployment may cap it.
        c.push(policy::Candidate {
            method: Method::Eudiw,
            level: cfg.eudiw.max_level,
            upstream: Some("eudiw"),
        });
    }
    if cfg.eidas.node_metadata.is_some() {
        // A node vouches for each level up to what it is configured for.
        let max = cfg.eidas.max_level;
        c.extend(AssuranceLevel::ALL.into_iter().filter(|l| *l <= max).map(|level| {
            policy::Candidate { method: Method::Eidas, level, upstream: Some("eidas") }
        }));
    }
    c
}

/// Connects to the database and applies migrations.
pub async fn open_store(cfg: &Config) -> Result<Store, store::StoreError> {
    let store = Store::connect(&cfg.database.url, cfg.database.max_connections).await?;
    store.migrate().await?;
    Ok(store)
}

impl Broker {
    pub async fn build(cfg: Config, clock: Clock) -> Result<Self, StartError> {
        let cfg = Arc::new(cfg);
        let master = master_key(&cfg)?;
        let metrics = metrics::Metrics::new()?;
        let store = open_store(&cfg).await?;
        let audit = audit::Audit::new(store.clone()).observed_by(metrics.audit_observer());
        let now = clock.now();
        let retention = cfg.oidc.id_token_ttl_s + 300;
        let keyring = oidc::signing::KeyRing::load(&store, &master, now, retention).await?;
        let policies = Arc::new(policy::PolicyEngine::load(&cfg.policy.dir)?);
        let registry = match &cfg.cobrha.url {
            Some(url) => Some(Arc::new(
                cobrha::HttpRegistry::new(
                    url.as_str(),
                    std::time::Duration::from_millis(cfg.cobrha.timeout_ms),
                    std::time::Duration::from_secs(cfg.cobrha.cache_ttl_s),
                )?
                .with_upstream(metrics.upstream("cobrha")),
            ) as Arc<dyn cobrha::Registry>),
            None => None,
        };
        let provider = oidc::Provider::new(
            &cfg,
            store.clone(),
            keyring,
            master.clone(),
            clock.clone(),
            offered_methods(&cfg),
            policies,
            registry,
            audit.clone(),
            ehealth::Ehealth::new(&cfg.ehealth)?,
        )?;
        let eidas = eidas::Eidas::setup(
            &cfg,
            &store,
            &master,
            &audit,
            now,
            &metrics.upstream("eidas_node"),
        )
        .await?
        .map(Arc::new);
        let eudiw = eudiw::Eudiw::setup(
            &cfg,
            &store,
            &master,
            &audit,
            now,
            metrics.upstream("eudiw_status_list"),
        )
        .await?
        .map(Arc::new);
        let bis_register = match &cfg.bis_register.url {
            Some(url) => Some(Arc::new(
                linking::HttpBisRegister::new(
                    url.as_str(),
                    std::time::Duration::from_millis(cfg.bis_register.timeout_ms),
                )?
                .with_upstream(metrics.upstream("bis_register")),
            ) as Arc<dyn linking::BisRegister>),
            None => None,
        };
        let fas = fas::Fas::new(&cfg.fas, &cfg.issuer())?.map(|f| {
            let f = Arc::new(f.with_upstream(metrics.upstream("fas")));
            Arc::new(fas::callback::FederalLogin::new(f, store.clone(), audit.clone()))
        });
        let eid = eid::EidState::new(&cfg.eid)?;
        let sessions = session::Sessions::new(store.clone(), cfg.oidc.session_ttl_s);
        let keys = keys::KeyService::new(
            store.clone(),
            sessions.clone(),
            master.clone(),
            cfg.login.clone(),
            audit.clone(),
        )?
        .with_passkeys(&cfg.server.public_url)
        .with_metrics(&metrics);
        let offices =
            office::Offices::new(store.clone(), cfg.server.public_url.clone(), audit.clone());
        let state = web::AppState(Arc::new(web::Inner {
            cfg: cfg.clone(),
            exposition: metrics::Exposition::new(metrics.clone(), store.clone()),
            mailbox: outbox::Mailbox::new(store.clone()),
            clock: clock.clone(),
            provider,
            browsers: session::Browsers::new(sessions),
            keys,
            eidas,
            eudiw,
            linking: linking::Linking::new(store.clone(), audit.clone(), bis_register),
            fas,
            eid,
            eid_logins: eid::login::EidLogins::new(store.clone(), audit.clone()),
            offices,
            master: master.clone(),
            metrics,
            rate_limits: web::ratelimit::RateLimits::new(&cfg.server),
        }));
        Ok(Self { cfg, store, master, clock, state })
    }
}

/// A running broker.
pub struct Handle {
    pub addr: SocketAddr,
    pub policies: Arc<policy::PolicyEngine>,
    pub store: Store,
    pub clock: Clock,
    pub master: MasterKey,
    pub cfg: Arc<Config>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Handle {
    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        self.store.close().await;
    }

    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
    }

    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts the broker on `listener` (bound by the caller, so tests can use port 0).
pub async fn serve_on(
    cfg: Config,
    clock: Clock,
    listener: tokio::net::TcpListener,
) -> Result<Handle, StartError> {
    // Several rustls crypto backends are linked in (aws-lc-rs, ring): pick one for code that asks
    // for the process default (the SMTP client).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let broker = Broker::build(cfg, clock).await?;
    let addr =
        listener.local_addr().map_err(|e| StartError::Listen(broker.cfg.server.listen, e))?;
    let (tx, mut rx) = watch::channel(false);
    spawn_background(&broker, tx.subscribe());
    spawn_outbox(&broker, tx.subscribe());
    if let Some(eid) = broker.state.eid.clone() {
        let l = tokio::net::TcpListener::bind(broker.cfg.eid.listen)
            .await
            .map_err(|e| StartError::Listen(broker.cfg.eid.listen, e))?;
        let app = web::eid_router(broker.state.clone())
            .layer(tower_http::limit::RequestBodyLimitLayer::new(broker.cfg.server.max_body_bytes));
        let timeout = std::time::Duration::from_millis(broker.cfg.eid.handshake_timeout_ms);
        tokio::spawn(eid::server::serve(
            l,
            eid.current().server.clone(),
            app,
            timeout,
            tx.subscribe(),
        ));
        let mut stop = tx.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
            loop {
                tokio::select! {
                    _ = tick.tick() => eid.reload_if_changed(),
                    _ = stop.wait_for(|v| *v) => break,
                }
            }
        });
    }
    if let Some(ehealth) = broker.state.provider.ehealth.clone() {
        let l = tokio::net::TcpListener::bind(broker.cfg.mtls.listen)
            .await
            .map_err(|e| StartError::Listen(broker.cfg.mtls.listen, e))?;
        let tls = mtls::tls_config(&broker.cfg.mtls, &ehealth.current())?;
        let app = web::mtls_router(broker.state.clone())
            .layer(tower_http::limit::RequestBodyLimitLayer::new(broker.cfg.server.max_body_bytes));
        let timeout = std::time::Duration::from_millis(broker.cfg.mtls.handshake_timeout_ms);
        tokio::spawn(eid::server::serve(l, tls, app, timeout, tx.subscribe()));
        let mut stop = tx.subscribe();
        let every = broker.cfg.ehealth.reload_interval_s.clamp(1, 30);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
            loop {
                tokio::select! {
                    _ = tick.tick() => ehealth.reload_if_changed(),
                    _ = stop.wait_for(|v| *v) => break,
                }
            }
        });
    }
    let app = web::router(broker.state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await
    });
    tracing::info!(%addr, issuer = %broker.cfg.issuer(), "cozo-broker listening");
    Ok(Handle {
        addr,
        policies: broker.state.provider.policies.clone(),
        store: broker.store,
        clock: broker.clock,
        master: broker.master,
        cfg: broker.cfg,
        shutdown: tx,
        task,
    })
}

pub async fn serve(cfg: Config) -> Result<Handle, StartError> {
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| StartError::Listen(cfg.server.listen, e))?;
    serve_on(cfg, Clock::default(), listener).await
}

/// Delivers the outbox every second: back-channel logout tokens always, SMS and mail when a
/// gateway or SMTP server is configured (else they wait in the demo mailbox).
fn spawn_outbox(broker: &Broker, mut stop: watch::Receiver<bool>) {
    let outbox = match outbox::Outbox::new(&broker.cfg, broker.store.clone()) {
        Ok(o) => o
            .with_metrics(&broker.state.metrics)
            .with_logouts(broker.state.provider.clone() as Arc<dyn outbox::LogoutSigner>),
        Err(e) => {
            tracing::error!(error = %e, "outbox delivery disabled");
            return;
        }
    };
    let clock = broker.clock.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|v| *v) => break,
            }
            if let Err(e) = outbox.run_once(clock.now()).await {
                tracing::error!(error = %e, "outbox delivery failed");
            }
        }
    });
}

/// How often expired rows are purged, across all replicas together.
const PURGE_PERIOD_S: i64 = 300;

/// Periodic work: reload signing keys (rotation by another process; every replica, it is its
/// own cache), purge expired rows (once per period across all replicas: the replica that claims
/// the period in the database does it).
fn spawn_background(broker: &Broker, mut stop: watch::Receiver<bool>) {
    let state = broker.state.clone();
    let store = broker.store.clone();
    let master = broker.master.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|v| *v) => break,
            }
            let now = state.clock.now();
            state.rate_limits.forget_idle();
            let p = &state.provider;
            if let Err(e) = p.keys.reload(&store, &master, now, p.key_retention_s()).await {
                tracing::error!(error = %e, "reloading signing keys failed");
            }
            match store.claim_period("purge", now, PURGE_PERIOD_S).await {
                Ok(true) => {
                    let result = store.purge_expired(now).await;
                    state.metrics.job("purge", result.is_ok());
                    match result {
                        Ok(rows) => tracing::info!(rows, "expired rows purged"),
                        Err(e) => tracing::error!(error = %e, "purge failed"),
                    }
                    if let Err(e) = state.offices.purge(now).await {
                        tracing::error!(error = %e, "purging registrations failed");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "claiming the purge failed"),
            }
        }
    });
}
