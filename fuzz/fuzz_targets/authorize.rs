//! Authorization-request parsing and validation (src/oidc/authorize.rs): the input is the
//! query string of `/authorize`, decoded the way the route decodes it, then validated by the
//! provider against one registered client (a real store: SQLite in a temporary file). Any
//! input is refused with an error or accepted as a request that keeps the rules: the registered
//! redirect URI, `openid` in the scope, an S256 challenge of 43 characters.
#![no_main]

use base64::Engine;
use cozo_broker::admin::{self, ClientSpec};
use cozo_broker::clock::Clock;
use cozo_broker::config::Config;
use cozo_broker::oidc::authorize::AuthorizeParams;
use cozo_broker::oidc::Provider;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

const REDIRECT: &str = "https://app.fuzz.test/cb";

struct World {
    rt: tokio::runtime::Runtime,
    provider: Arc<Provider>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let db =
            std::env::temp_dir().join(format!("cozo-fuzz-authorize-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&db);
        let mut cfg = Config::default();
        cfg.database.url = format!("sqlite://{}", db.display());
        cfg.secrets.master_key = Some(base64::engine::general_purpose::STANDARD.encode([3u8; 32]));
        cfg.policy.dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies").into();
        let provider = rt.block_on(async {
            let broker = cozo_broker::Broker::build(cfg, Clock::default()).await.expect("broker");
            let p = broker.state.provider.clone();
            let spec = ClientSpec::new("app", REDIRECT, "portal");
            admin::add_client(&broker.store, &p.policies, &spec, broker.clock.now())
                .await
                .expect("client");
            p
        });
        World { rt, provider }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Ok(query) = std::str::from_utf8(data) else { return };
    let Ok(params) = serde_urlencoded::from_str::<AuthorizeParams>(query) else { return };
    if let Ok(req) = w.rt.block_on(w.provider.validate_authorize(&params, None)) {
        assert_eq!(req.client_id, "app");
        assert_eq!(req.redirect_uri, REDIRECT);
        assert!(req.scope.iter().any(|s| s == "openid"), "{:?}", req.scope);
        assert_eq!(req.code_challenge.len(), 43);
        assert!(req.ui_locales.len() <= 8);
    }
});
