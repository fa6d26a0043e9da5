//! CoBRHA, the registry of healthcare actors (RIZIV/INAMI): which professions a person holds
//! (SPEC §8). The shipped adapter speaks the JSON wire format of the contract; a deployment can
//! plug in the eHealth web-service client behind [`Registry`].

use crate::identity::Insz;
use chrono::NaiveDate;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use tracing::Instrument;

/// A RIZIV/INAMI number: 11 digits, 8 identifying the person (with 2 check digits: 97 minus the
/// first six digits mod 97) and a 3-digit qualification code. Cannot hold an invalid number.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Nihii(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NihiiError {
    #[error("a NIHII number has 11 digits")]
    Length,
    #[error("the check digits of this NIHII number are wrong")]
    CheckDigits,
}

impl Nihii {
    pub fn parse(s: &str) -> Result<Self, NihiiError> {
        let digits: String = s.chars().filter(|c| !matches!(c, '-' | '.' | ' ')).collect();
        if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NihiiError::Length);
        }
        let first6: u64 = digits[..6].parse().map_err(|_| NihiiError::Length)?;
        let check: u64 = digits[6..8].parse().map_err(|_| NihiiError::Length)?;
        if check != 97 - first6 % 97 {
            return Err(NihiiError::CheckDigits);
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Nihii {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nihii({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profession {
    pub profession: String,
    pub nihii: Nihii,
    pub active: bool,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
}

impl Profession {
    /// Active in the registry and valid on `day`.
    pub fn active_on(&self, day: NaiveDate) -> bool {
        self.active
            && self.valid_from.is_none_or(|f| f <= day)
            && self.valid_until.is_none_or(|u| day <= u)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// Down, slow (past the timeout) or answering with an error: callers fail closed.
    #[error("the registry is unavailable: {0}")]
    Unavailable(String),
}

/// A source of professions by INSZ.
pub trait Registry: Send + Sync {
    fn professions<'a>(
        &'a self,
        insz: &'a Insz,
    ) -> BoxFuture<'a, Result<Vec<Profession>, RegistryError>>;
}

#[derive(Deserialize)]
struct WireAnswer {
    professions: Vec<WireProfession>,
}

#[derive(Deserialize)]
struct WireProfession {
    profession: String,
    nihii: String,
    status: String,
    valid_from: Option<String>,
    valid_until: Option<String>,
}

/// How many people's professions the cache keeps at most. Without a bound it would grow with
/// everyone who ever logged in; 100 000 lists of a few professions stay within some tens of MB.
pub const CACHE_MAX_ENTRIES: u64 = 100_000;

/// The HTTP JSON adapter (`GET {url}/professionals/{insz}`), with a bounded TTL cache.
pub struct HttpRegistry {
    http: reqwest::Client,
    url: String,
    ttl: Duration,
    /// INSZ → professions; an entry leaves after `ttl` or when the bound needs room.
    cache: moka::sync::Cache<String, Vec<Profession>>,
    upstream: crate::metrics::Upstream,
}

/// moka panics on a time-to-live past 1000 years; a year is already far past any sensible
/// `cache_ttl_s`, so a larger one is read as a year instead of stopping the start.
const CACHE_TTL_MAX: Duration = Duration::from_secs(365 * 24 * 3600);

fn professions_cache(
    ttl: Duration,
    max_entries: u64,
) -> moka::sync::Cache<String, Vec<Profession>> {
    moka::sync::Cache::builder()
        .max_capacity(max_entries)
        .time_to_live(ttl.min(CACHE_TTL_MAX))
        .build()
}

impl HttpRegistry {
    pub fn new(
        url: &str,
        timeout: Duration,
        ttl: Duration,
    ) -> Result<Self, crate::http_client::HttpClientError> {
        let http = crate::http_client::build("CoBRHA", timeout)?;
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_string(),
            ttl,
            cache: professions_cache(ttl, CACHE_MAX_ENTRIES),
            upstream: Default::default(),
        })
    }

    /// Caches at most `max_entries` people instead of [`CACHE_MAX_ENTRIES`] (tests of the bound).
    pub fn with_cache_max_entries(mut self, max_entries: u64) -> Self {
        self.cache = professions_cache(self.ttl, max_entries);
        self
    }

    /// How many people's professions are cached, once pending evictions are done.
    pub fn cached_entries(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }

    /// Times each lookup (cache misses only) in the metrics.
    pub fn with_upstream(mut self, upstream: crate::metrics::Upstream) -> Self {
        self.upstream = upstream;
        self
    }

    /// One lookup, in its own span: `.instrument` enters it only while this future is polled, so
    /// events of other requests running on the thread meanwhile do not land in it.
    async fn fetch(&self, insz: &Insz) -> Result<Vec<Profession>, RegistryError> {
        self.request_professions(insz).instrument(tracing::info_span!("cobrha_lookup")).await
    }

    async fn request_professions(&self, insz: &Insz) -> Result<Vec<Profession>, RegistryError> {
        let url = format!("{}/professionals/{}", self.url, insz.as_str());
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| RegistryError::Unavailable(e.to_string()))?;
        match resp.status() {
            reqwest::StatusCode::NOT_FOUND => return Ok(Vec::new()),
            s if !s.is_success() => return Err(RegistryError::Unavailable(format!("status {s}"))),
            _ => {}
        }
        let answer: WireAnswer =
            resp.json().await.map_err(|e| RegistryError::Unavailable(format!("answer: {e}")))?;
        let date = |s: &Option<String>| {
            s.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        };
        Ok(answer
            .professions
            .into_iter()
            .filter_map(|p| match Nihii::parse(&p.nihii) {
                Ok(nihii) => Some(Profession {
                    active: p.status == "active",
                    valid_from: date(&p.valid_from),
                    valid_until: date(&p.valid_until),
                    profession: p.profession,
                    nihii,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "CoBRHA returned an invalid NIHII number; ignored");
                    None
                }
            })
            .collect())
    }
}

impl Registry for HttpRegistry {
    fn professions<'a>(
        &'a self,
        insz: &'a Insz,
    ) -> BoxFuture<'a, Result<Vec<Profession>, RegistryError>> {
        Box::pin(async move {
            if let Some(v) = self.cache.get(insz.as_str()) {
                return Ok(v);
            }
            let v = self.upstream.observe(self.fetch(insz)).await?;
            self.cache.insert(insz.as_str().to_string(), v.clone());
            Ok(v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nihii(first6: u32, qual: &str) -> String {
        format!("{first6:06}{:02}{qual}", 97 - first6 % 97)
    }

    #[test]
    fn nihii_check_digits() {
        // 123456 mod 97 = 72 → 25.
        assert_eq!(nihii(123456, "003"), "12345625003");
        assert!(Nihii::parse("12345625003").is_ok());
        assert!(Nihii::parse("1-23456-25-003").is_ok());
        assert_eq!(Nihii::parse("12345626003"), Err(NihiiError::CheckDigits));
        assert_eq!(Nihii::parse("1234562500"), Err(NihiiError::Length));
        assert_eq!(Nihii::parse("1234562500x"), Err(NihiiError::Length));
    }

    #[test]
    fn activity_follows_status_and_validity() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let p = Profession {
            profession: "PHYSICIAN".into(),
            nihii: Nihii::parse("12345625003").unwrap(),
            active: true,
            valid_from: d("2020-01-01"),
            valid_until: d("2030-12-31"),
        };
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert!(p.active_on(today));
        assert!(!Profession { active: false, ..p.clone() }.active_on(today));
        assert!(!Profession { valid_until: d("2025-01-01"), ..p.clone() }.active_on(today));
        assert!(!Profession { valid_from: d("2027-01-01"), ..p }.active_on(today));
    }
}
