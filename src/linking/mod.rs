//! First-login linking: a foreign identity (the eIDAS PersonIdentifier) is linked to a Bis
//! number once, after the Bis register confirms that the names and birth date match (SPEC §6).

mod link;
pub use link::{login_of, BisRequested, Linked, Linking, LINK_MAX_FAILURES, LINK_WINDOW_S};

use crate::identity::Insz;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::time::Duration;
use tracing::Instrument;
use unicode_normalization::UnicodeNormalization;

/// The provider name of eIDAS identities in the link table (SPEC §2).
pub const EIDAS: &str = "eidas";
/// The provider name of wallet PIDs in the link table (SPEC §12).
pub const EUDIW: &str = "eudiw";

/// Who vouched for a foreign identity waiting to be linked: the same flow serves both.
#[derive(Debug, Clone, Default, serde::Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkVia {
    #[default]
    Eidas,
    /// A wallet's PID, issued by `issuing_country`.
    Eudiw { issuing_country: String },
}

impl LinkVia {
    /// The provider in the identity link table.
    pub fn provider(&self) -> &'static str {
        match self {
            Self::Eidas => EIDAS,
            Self::Eudiw { .. } => EUDIW,
        }
    }

    pub fn method(&self) -> crate::assurance::Method {
        match self {
            Self::Eidas => crate::assurance::Method::Eidas,
            Self::Eudiw { .. } => crate::assurance::Method::Eudiw,
        }
    }
}

/// A person as the Bis register knows them.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct BisEntry {
    pub bis: String,
    pub family_name: String,
    pub given_names: Vec<String>,
    pub birthdate: String,
}

/// Why linking could not go on (the store failed); everything a person can cause is a
/// decision ([`Linked`], [`BisRequested`]), not an error.
#[derive(Debug, thiserror::Error)]
pub enum LinkingError {
    #[error("linking: {0}")]
    Store(#[from] crate::store::StoreError),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BisError {
    #[error("the Bis register is unavailable: {0}")]
    Unavailable(String),
}

/// A source of Bis-register entries (the shipped HTTP adapter, or the eHealth web service).
pub trait BisRegister: Send + Sync {
    fn lookup<'a>(&'a self, bis: &'a Insz) -> BoxFuture<'a, Result<Option<BisEntry>, BisError>>;
}

/// `GET {url}/persons/{bis}` → 200 entry or 404.
pub struct HttpBisRegister {
    http: reqwest::Client,
    url: String,
    upstream: crate::metrics::Upstream,
}

impl HttpBisRegister {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, crate::http_client::HttpClientError> {
        let http = crate::http_client::build("the Bis register", timeout)?;
        Ok(Self { http, url: url.trim_end_matches('/').to_string(), upstream: Default::default() })
    }

    /// Times each lookup in the metrics.
    pub fn with_upstream(mut self, upstream: crate::metrics::Upstream) -> Self {
        self.upstream = upstream;
        self
    }
}

impl BisRegister for HttpBisRegister {
    fn lookup<'a>(&'a self, bis: &'a Insz) -> BoxFuture<'a, Result<Option<BisEntry>, BisError>> {
        let lookup = async move {
            let resp = self
                .http
                .get(format!("{}/persons/{}", self.url, bis.as_str()))
                .send()
                .await
                .map_err(|e| BisError::Unavailable(e.to_string()))?;
            match resp.status() {
                reqwest::StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => resp
                    .json()
                    .await
                    .map(Some)
                    .map_err(|e| BisError::Unavailable(format!("answer: {e}"))),
                s => Err(BisError::Unavailable(format!("status {s}"))),
            }
        };
        // `.instrument`, not `span.enter()`: a guard held across `.await` would leave the span
        // entered on the thread while other tasks run there.
        Box::pin(
            self.upstream.observe(lookup.instrument(tracing::info_span!("bis_register_lookup"))),
        )
    }
}

/// Names compared the way people expect: case, diacritics, hyphens, apostrophes and extra
/// spaces do not matter ("Lefèvre-Château" = "LEFEVRE CHATEAU").
pub fn fold_name(s: &str) -> String {
    let folded: String = s
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .map(|c| if c.is_alphanumeric() { c.to_lowercase().next().unwrap_or(c) } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the eIDAS node asserted about the person.
#[derive(Debug, Clone, serde::Serialize, Deserialize, PartialEq)]
pub struct ForeignIdentity {
    pub person_identifier: String,
    pub family_name: String,
    pub given_name: String,
    pub birthdate: String,
}

/// The register's entry matches the asserted identity: family name, given name(s) and birth date.
pub fn matches(entry: &BisEntry, who: &ForeignIdentity) -> bool {
    fold_name(&entry.family_name) == fold_name(&who.family_name)
        && fold_name(&entry.given_names.join(" ")) == fold_name(&who.given_name)
        && entry.birthdate == who.birthdate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_diacritics_and_punctuation() {
        assert_eq!(fold_name("Lefèvre-Château"), "lefevre chateau");
        assert_eq!(fold_name("  LEFEVRE   chateau "), "lefevre chateau");
        assert_eq!(fold_name("Hélène Éloïse"), fold_name("helene eloise"));
        assert_eq!(fold_name("d'Artagnan"), "d artagnan");
        assert_ne!(fold_name("de Vries"), fold_name("de Vriez"));
    }

    #[test]
    fn matching_needs_names_and_birth_date() {
        let entry = BisEntry {
            bis: "85441204638".into(),
            family_name: "de Vries".into(),
            given_names: vec!["Sanne".into()],
            birthdate: "1985-04-12".into(),
        };
        let who = ForeignIdentity {
            person_identifier: "NL/BE/x".into(),
            family_name: "De Vries".into(),
            given_name: "sanne".into(),
            birthdate: "1985-04-12".into(),
        };
        assert!(matches(&entry, &who));
        assert!(!matches(
            &entry,
            &ForeignIdentity { birthdate: "1985-04-13".into(), ..who.clone() }
        ));
        assert!(!matches(&entry, &ForeignIdentity { given_name: "Sanna".into(), ..who.clone() }));
        assert!(!matches(&entry, &ForeignIdentity { family_name: "Jansen".into(), ..who }));
    }
}
