//! The mutual-TLS listener (RFC 8705, SPEC §10): `/token`, `/introspect`, `/revoke` and
//! `/userinfo` over TLS 1.2 and 1.3, asking for a client certificate without requiring one.
//! The handshake only proves that the client holds the key of the certificate it sends; which
//! certificate it is (the registered one, for `tls_client_auth` and bound tokens) and whether
//! it is still trusted is decided by the token endpoint, so that a missing or other certificate
//! gets an OAuth error (401 `invalid_client`) rather than a broken connection.

use crate::ehealth::{EhealthError, EhealthTrust};
use std::sync::Arc;

/// The listener's TLS configuration.
pub fn tls_config(
    cfg: &crate::config::MtlsConfig,
    trust: &EhealthTrust,
) -> Result<Arc<rustls::ServerConfig>, EhealthError> {
    let (chain, key) =
        crate::trust::server_identity(cfg.cert.as_deref(), cfg.key.as_deref(), &cfg.public_url)
            .map_err(|e| EhealthError::Config(e.key, e.message))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(crate::trust::DeferredVerifier { inner: trust.verifier() });
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| EhealthError::Config("listen", e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| EhealthError::Config("cert", e.to_string()))?;
    Ok(Arc::new(server))
}
