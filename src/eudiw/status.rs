//! Token Status List (draft-ietf-oauth-status-list): the issuer's signed list of credential
//! states, fetched from `status.status_list.uri` and cached for the list's `ttl` (SPEC §12).
//! A list that cannot be fetched or verified leaves the status unknown, and unknown refuses.

use super::jose::{Jws, TrustAnchors};
use super::sdjwt::{Refusal, StatusRef};
use flate2::read::ZlibDecoder;
use serde_json::Value;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// When a list gives no `ttl`, it is fetched again after this long.
const DEFAULT_TTL_S: i64 = 300;
/// A list is never trusted for longer than a day, whatever its `ttl`.
const MAX_TTL_S: i64 = 86_400;
/// Lists larger than this (decompressed) are refused: 1 MiB is eight million 1-bit entries.
const MAX_LIST_BYTES: u64 = 1 << 20;

#[derive(Debug)]
struct StatusList {
    bits: u8,
    bytes: Vec<u8>,
    /// When this copy must be fetched again.
    fresh_until: i64,
}

impl StatusList {
    fn status(&self, idx: u64) -> Option<u8> {
        let bit = idx.checked_mul(u64::from(self.bits))?;
        let byte = *self.bytes.get(usize::try_from(bit / 8).ok()?)?;
        let mask = ((1u16 << self.bits) - 1) as u8;
        Some((byte >> (bit % 8)) & mask)
    }
}

pub struct StatusLists {
    http: reqwest::Client,
    cache: moka::sync::Cache<String, Arc<StatusList>>,
    upstream: crate::metrics::Upstream,
}

impl StatusLists {
    pub fn new(
        upstream: crate::metrics::Upstream,
    ) -> Result<Self, crate::http_client::HttpClientError> {
        Ok(Self {
            http: crate::http_client::build("a PID status list", Duration::from_secs(5))?,
            cache: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(Duration::from_secs(MAX_TTL_S as u64))
                .build(),
            upstream,
        })
    }

    /// `Ok` when the entry says VALID (0); revoked or suspended refuse, and so does a list that
    /// cannot be had.
    pub async fn check(
        &self,
        at: &StatusRef,
        anchors: &TrustAnchors,
        now: i64,
    ) -> Result<(), Refusal> {
        let cached = self.cache.get(&at.uri).filter(|l| l.fresh_until > now);
        let list = match cached {
            Some(l) => l,
            None => {
                let l = Arc::new(self.fetch(&at.uri, anchors, now).await.map_err(|e| {
                    tracing::warn!(uri = %at.uri, error = %e, "status list unavailable");
                    Refusal::StatusUnknown
                })?);
                self.cache.insert(at.uri.clone(), l.clone());
                l
            }
        };
        match list.status(at.idx) {
            Some(0) => Ok(()),
            Some(_) => Err(Refusal::Revoked),
            None => Err(Refusal::StatusUnknown),
        }
    }

    async fn fetch(
        &self,
        uri: &str,
        anchors: &TrustAnchors,
        now: i64,
    ) -> Result<StatusList, String> {
        let body = self
            .upstream
            .observe(async {
                self.http
                    .get(uri)
                    .header(reqwest::header::ACCEPT, "application/statuslist+jwt")
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| e.to_string())?
                    .text()
                    .await
                    .map_err(|e| e.to_string())
            })
            .await?;
        parse(body.trim(), uri, anchors, now)
    }
}

/// A status list token: signed by a key chained to the anchors, about `uri`, not expired.
fn parse(jwt: &str, uri: &str, anchors: &TrustAnchors, now: i64) -> Result<StatusList, String> {
    let jws = Jws::parse(jwt).map_err(|e| e.to_string())?;
    if jws.typ() != Some("statuslist+jwt") {
        return Err("not a status list token".into());
    }
    let x5c: Vec<String> = jws
        .header
        .get("x5c")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let key = anchors.leaf_key(&x5c, now).map_err(|e| e.to_string())?;
    jws.verify_es256(&key).map_err(|e| e.to_string())?;
    let c = &jws.payload;
    if c.get("sub").and_then(Value::as_str) != Some(uri) {
        return Err("sub is not the list's URI".into());
    }
    if c.get("exp").and_then(Value::as_i64).is_some_and(|e| e <= now) {
        return Err("expired".into());
    }
    let list = c.get("status_list").ok_or("no status_list")?;
    let bits = match list.get("bits").and_then(Value::as_u64) {
        Some(b @ (1 | 2 | 4 | 8)) => b as u8,
        _ => return Err("bits".into()),
    };
    let lst = list
        .get("lst")
        .and_then(Value::as_str)
        .and_then(crate::crypto::b64url_decode)
        .ok_or("lst")?;
    let mut bytes = Vec::new();
    ZlibDecoder::new(&lst[..])
        .take(MAX_LIST_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("lst: {e}"))?;
    let ttl = c.get("ttl").and_then(Value::as_i64).unwrap_or(DEFAULT_TTL_S).clamp(0, MAX_TTL_S);
    let mut fresh_until = now + ttl;
    if let Some(exp) = c.get("exp").and_then(Value::as_i64) {
        fresh_until = fresh_until.min(exp);
    }
    Ok(StatusList { bits, bytes, fresh_until })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_little_end_first() {
        // Draft example: bits 1, bytes [0xB9, 0xA3] → 1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1.
        let l = StatusList { bits: 1, bytes: vec![0xB9, 0xA3], fresh_until: 0 };
        let got: Vec<u8> = (0..16).map(|i| l.status(i).unwrap()).collect();
        assert_eq!(got, [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]);
        assert_eq!(l.status(16), None);
        let two = StatusList { bits: 2, bytes: vec![0b1110_0100], fresh_until: 0 };
        assert_eq!((0..4).map(|i| two.status(i).unwrap()).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }
}
