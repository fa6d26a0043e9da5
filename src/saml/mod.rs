//! eIDAS SAML service provider: the protocol core (SPEC §6, "eIDAS SAML SP").
//!
//! Builds signed SP metadata and signed AuthnRequests (HTTP-Redirect and HTTP-POST bindings)
//! and validates the node's responses. Knows nothing about HTTP, sessions or storage: the
//! caller keeps the request IDs it sent, refuses replayed assertion IDs, compares the level
//! with what it asked for, and runs [`ServiceProvider::validate_response`] (synchronous and
//! CPU-bound, a few milliseconds) on the blocking pool.
//!
//! Crypto follows the eIDAS profile as far as this platform allows (see `shared/notes`):
//! * signatures verified with bergshamra against the node's metadata certificate only, ECDSA
//!   or RSASSA-PSS with SHA-256/384/512, exclusive c14n, one enveloped signature per element
//!   (`dsig`); RSA PKCS#1 v1.5 and SHA-1 are refused;
//! * assertions must be encrypted: AES-GCM content, RSA-OAEP key transport (OpenSSL) or
//!   ECDH-ES key agreement (aws-lc-rs) (`xmlenc`), then the assertion's own signature is
//!   required too;
//! * our own signatures: ECDSA P-256 with SHA-256.

mod dsig;
mod keys;
mod metadata;
mod request;
mod response;
mod xml;
mod xmlenc;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use openssl::x509::X509;

pub use keys::SpKeys;
pub use metadata::IdpTrust;
pub use request::{new_request_id, AuthnRequestSpec};
pub use response::{ResponseError, ValidatedAssertion};

use crate::assurance::AssuranceLevel;

/// Tolerated clock difference with the node, for every time check.
pub const CLOCK_SKEW_SECS: i64 = 60;
/// Largest accepted (decoded) SAMLResponse.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Algorithm and format URIs, for callers and tests.
pub mod uris {
    pub use super::dsig::{
        ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512, ENVELOPED, EXC_C14N, MGF1, PSS_NS,
        RSA_PSS_SHA256, RSA_PSS_SHA384, RSA_PSS_SHA512, SHA384, SHA512,
    };
    pub use super::request::{
        ATTR_NAME_FORMAT_URI, BINDING_POST, BINDING_REDIRECT, ENTITY_FORMAT, NATURAL_PERSON_PREFIX,
        PERSISTENT, TRANSIENT,
    };
    pub use super::xmlenc::{
        AES128_GCM, AES192_GCM, AES256_GCM, CONCAT_KDF, DSIG11_NS, ECDH_ES, KW_AES128, KW_AES256,
        MGF1_SHA256, P256_URN, P384_URN, RSA_1_5, RSA_OAEP_11, RSA_OAEP_MGF1P, SHA1, SHA256,
    };
}

/// Set-up and configuration errors (bad keys, unusable metadata, bad request parameters).
#[derive(thiserror::Error, Debug)]
pub enum SamlError {
    /// A key or certificate of the SP is missing, malformed or of the wrong kind.
    #[error("SAML SP key material: {0}")]
    Key(String),
    /// The node's metadata cannot be used.
    #[error("eIDAS node metadata: {0}")]
    Metadata(String),
    /// The node's metadata has no signing certificate: its responses could not be verified.
    #[error("eIDAS node metadata has no signing certificate")]
    NoSigningCertificate,
    /// The node's metadata is signed, but the signature is not acceptable or does not verify.
    #[error("eIDAS node metadata signature: {0}")]
    MetadataSignature(String),
    /// The node's metadata has no SingleSignOnService for this binding.
    #[error("the eIDAS node has no SingleSignOnService for the HTTP-{0} binding")]
    NoEndpoint(&'static str),
    /// A caller-supplied value is unusable (request ID, country, RelayState, URL).
    #[error("invalid SAML parameter: {0}")]
    InvalidParameter(String),
    /// Signing or encoding a message failed.
    #[error("SAML signing: {0}")]
    Signing(String),
}

/// The SP: our keys and the trusted node. Built once at start-up and shared (`Arc`); all
/// methods take `&self` and are safe to call from several threads.
pub struct ServiceProvider {
    entity_id: String,
    acs_url: String,
    idp: IdpTrust,
    idp_signers: dsig::TrustedSigners,
    keys: keys::LoadedKeys,
    /// Put `eidas:SPType` in AuthnRequests instead of the metadata (CEF accepts it in exactly
    /// one of the two).
    sp_type_in_request: bool,
}

impl std::fmt::Debug for ServiceProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("entity_id", &self.entity_id)
            .field("acs_url", &self.acs_url)
            .field("idp", &self.idp.entity_id)
            .finish_non_exhaustive()
    }
}

impl ServiceProvider {
    /// `entity_id`: our entity ID (the metadata URL by convention); `acs_url`: the absolute
    /// URL of the HTTP-POST assertion consumer service. Refuses a node without signing
    /// certificates, malformed certificates and unusable keys.
    pub fn new(
        entity_id: &str,
        acs_url: &str,
        keys: &SpKeys,
        idp: IdpTrust,
    ) -> Result<Self, SamlError> {
        if entity_id.trim().is_empty() || entity_id.trim() != entity_id {
            return Err(SamlError::InvalidParameter(format!("entity ID {entity_id:?}")));
        }
        let acs = url::Url::parse(acs_url)
            .map_err(|e| SamlError::InvalidParameter(format!("ACS URL {acs_url:?}: {e}")))?;
        if !matches!(acs.scheme(), "https" | "http") {
            return Err(SamlError::InvalidParameter(format!("ACS URL {acs_url:?}")));
        }
        if idp.signing_certs_der.is_empty() {
            return Err(SamlError::NoSigningCertificate);
        }
        if idp.entity_id.trim().is_empty() {
            return Err(SamlError::Metadata("the node has no entity ID".into()));
        }
        for der in &idp.signing_certs_der {
            X509::from_der(der)
                .map_err(|e| SamlError::Metadata(format!("invalid signing certificate: {e}")))?;
        }
        let idp_signers =
            dsig::TrustedSigners::from_der(&idp.signing_certs_der).map_err(SamlError::Metadata)?;
        Ok(ServiceProvider {
            entity_id: entity_id.to_string(),
            acs_url: acs_url.to_string(),
            keys: keys::LoadedKeys::load(keys)?,
            idp,
            idp_signers,
            sp_type_in_request: false,
        })
    }

    /// Sends `eidas:SPType` (always `public`) in each AuthnRequest instead of in the metadata.
    /// A CEF node wants it in exactly one place; the default is the metadata.
    pub fn with_sp_type_in_request(mut self, in_request: bool) -> Self {
        self.sp_type_in_request = in_request;
        self
    }

    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }

    pub fn acs_url(&self) -> &str {
        &self.acs_url
    }

    pub fn idp(&self) -> &IdpTrust {
        &self.idp
    }

    /// Signed SP metadata: `md:EntityDescriptor` (valid for a day) with `md:Extensions`
    /// (`eidas:SPType` public, the accepted signature and digest algorithms), an
    /// `SPSSODescriptor` with `AuthnRequestsSigned` and `WantAssertionsSigned`, the signing and
    /// the encryption certificate (AES-256-GCM and RSA-OAEP SHA-256/MGF1-SHA-256 named), NameID
    /// formats persistent and transient, and the HTTP-POST ACS. Enveloped ECDSA-SHA256
    /// signature, SHA-256 digest, exclusive c14n. Schema order is respected.
    pub fn metadata_xml(&self, now: DateTime<Utc>) -> Result<String, SamlError> {
        metadata::sp_metadata(self, now)
    }

    /// Validates a base64 `SAMLResponse` from the ACS (HTTP-POST binding), in this order:
    /// size (1 MiB) and base64; no DTD/entities, comments or processing instructions; the
    /// Response signature (node certificate, ECDSA only; afterwards only the signed content is
    /// read); Version, Issuer, Destination (= ACS URL), InResponseTo (one of
    /// `expected_request_ids`: an empty list means every response is unsolicited and refused),
    /// IssueInstant; the status (→ [`ResponseError::Cancelled`], [`ResponseError::Failed`],
    /// [`ResponseError::LevelTooLow`]); exactly one EncryptedAssertion and no clear one;
    /// decryption; the assertion's own signature (required); Issuer, Subject with a bearer
    /// confirmation (Recipient, InResponseTo, NotOnOrAfter), Conditions (time window with
    /// [`CLOCK_SKEW_SECS`], an AudienceRestriction naming us), the level and the four
    /// mandatory natural-person attributes.
    ///
    /// Not done here: the level check against the request (the caller knows it; or use
    /// [`validate_response_for_level`](Self::validate_response_for_level)) and assertion-ID
    /// replay (database).
    pub fn validate_response(
        &self,
        saml_response_b64: &str,
        expected_request_ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<ValidatedAssertion, ResponseError> {
        self.validate(saml_response_b64, expected_request_ids, now)
    }

    /// [`validate_response`](Self::validate_response) plus the level check: an assertion below
    /// `min_level`, or the node's `NoAuthnContext`, gives [`ResponseError::LevelTooLow`] with
    /// `required: min_level`.
    pub fn validate_response_for_level(
        &self,
        saml_response_b64: &str,
        expected_request_ids: &[String],
        min_level: AssuranceLevel,
        now: DateTime<Utc>,
    ) -> Result<ValidatedAssertion, ResponseError> {
        match self.validate(saml_response_b64, expected_request_ids, now) {
            Ok(a) if a.level < min_level => {
                Err(ResponseError::LevelTooLow { asserted: Some(a.level), required: min_level })
            }
            Ok(a) => Ok(a),
            Err(ResponseError::LevelTooLow { asserted, .. }) => {
                Err(ResponseError::LevelTooLow { asserted, required: min_level })
            }
            Err(e) => Err(e),
        }
    }
}
