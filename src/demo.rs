//! `cozo-broker demo`: the broker on the embedded default (SQLite under `./data/`), the mocks of
//! the outside services and a demo relying app, with demo identities printed (SPEC §1).

use crate::admin::{self, ClientSpec};
use crate::config::Config;
use idp_mocks::demo_app::{DemoApp, DemoAppConfig};
use std::future::Future;

pub const DEMO_INSZ: &str = "85073003328";
pub const DEMO_USERNAME: &str = "anna.peeters";
pub const DEMO_PASSWORD: &str = "Tram7-Brugge-Zon";
const DEMO_APP_URL: &str = "http://localhost:8090";

pub async fn run(
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = crate::open_store(&cfg).await?;
    let master = crate::master_key(&cfg)?;
    let now = chrono::Utc::now().timestamp();
    let policies = crate::policy::PolicyEngine::load(&cfg.policy.dir)?;

    // Demo clients are re-registered at every start: their secrets are only ever shown once.
    let app_url = url::Url::parse(DEMO_APP_URL)?;
    let mut apps = Vec::new();
    for (id, path, title, policy, description) in [
        (
            "demo-portal",
            "portal",
            "CoZo portal (demo)",
            "portal",
            "Policy portal: any login of level low or more.",
        ),
        (
            "demo-ehealth",
            "ehealth",
            "eHealth app (demo)",
            "ehealth",
            "Policy ehealth: level substantial, app code (TOTP) or stronger.",
        ),
    ] {
        store.remove_client(id, now).await?;
        let mut spec = ClientSpec::new(id, &format!("{DEMO_APP_URL}/{path}/callback"), policy);
        spec.post_logout_redirect_uris = vec![format!("{DEMO_APP_URL}/")];
        let secret = admin::add_client(&store, &policies, &spec, now).await?;
        apps.push(DemoApp {
            title: title.into(),
            path: path.into(),
            client_id: id.into(),
            client_secret: secret,
            scope: vec!["openid".into(), "profile".into(), "insz".into()],
            description: description.into(),
        });
    }

    // The demo person and a fresh TOTP key.
    let insz = crate::identity::Insz::parse(DEMO_INSZ)?;
    if store.person_by_insz(&insz).await?.is_none() {
        admin::add_person(&store, DEMO_INSZ, "Anna", "Peeters", Some("1985-07-30"), now).await?;
    }
    admin::revoke_all_keys(&store, DEMO_INSZ, now).await?;
    let totp = admin::add_totp_key(
        &store,
        &master,
        &cfg,
        DEMO_INSZ,
        DEMO_USERNAME,
        Some(DEMO_PASSWORD),
        now,
    )
    .await?;
    store.close().await;

    let issuer = url::Url::parse(&cfg.issuer())?;
    let broker = crate::serve(cfg.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8090").await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let demo_cfg = DemoAppConfig { issuer, public_url: app_url, apps };
    let demo = tokio::spawn(idp_mocks::demo_app::serve(listener, demo_cfg, async move {
        let _ = stop_rx.await;
    }));

    println!(
        "\n  cozo-broker demo is running (SQLite under ./data/)\n\n  \
         broker     {}\n  demo app   {DEMO_APP_URL}   ← open this and click \"Log in\"\n\n  \
         Digital key (username + password + app code):\n    \
         username   {DEMO_USERNAME}\n    password   {DEMO_PASSWORD}\n    \
         TOTP secret {}\n    otpauth    {}\n    \
         current code: cargo run -q -- totp-code {}   (or scan the otpauth URI into an authenticator app)\n\n  \
         Ctrl-C stops everything.\n",
        broker.cfg.issuer(),
        totp.secret_base32,
        totp.otpauth_uri,
        totp.secret_base32
    );

    shutdown.await;
    let _ = stop_tx.send(());
    broker.shutdown().await;
    let _ = demo.await;
    Ok(())
}
