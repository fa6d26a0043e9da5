//! The CoBRHA professions cache is bounded and forgets after its TTL (issue #15 item 3): it must
//! not grow with everyone who ever logged in, nor keep their professional data for ever. Driven
//! against the CoBRHA mock over HTTP; no database is involved.

use cozo_broker::cobrha::{HttpRegistry, Registry};
use cozo_broker::identity::Insz;
use std::time::Duration;

/// `count` distinct valid national numbers (born 1980-01-01, serials 1…, right check digits).
fn national_numbers(count: u32) -> Vec<Insz> {
    (1..=count)
        .map(|serial| {
            let first9 = format!("800101{serial:03}");
            let check = 97 - first9.parse::<u64>().unwrap() % 97;
            Insz::parse(&format!("{first9}{check:02}")).expect("valid INSZ")
        })
        .collect()
}

#[tokio::test]
async fn the_cobrha_cache_does_not_grow_past_its_bound() {
    let (url, mock) = idp_mocks::cobrha::start().await;
    let registry = HttpRegistry::new(&url, Duration::from_secs(5), Duration::from_secs(300))
        .unwrap()
        .with_cache_max_entries(16);

    // It still caches: a second lookup of the same person does not reach the registry.
    let gp = Insz::parse(idp_mocks::cobrha::GP).unwrap();
    assert_eq!(registry.professions(&gp).await.unwrap().len(), 1);
    assert_eq!(registry.professions(&gp).await.unwrap().len(), 1);
    assert_eq!(mock.lookups(), 1, "cached");

    // 200 more people (unknown to CoBRHA: an empty answer, cached like any other).
    for insz in national_numbers(200) {
        assert!(registry.professions(&insz).await.unwrap().is_empty());
    }
    assert_eq!(mock.lookups(), 201);
    let held = registry.cached_entries();
    assert!(held <= 16, "the cache holds {held} people, past its bound of 16");
    assert!(held > 0, "the cache still holds someone");
}

#[tokio::test]
async fn cached_professions_expire_after_the_configured_ttl() {
    let (url, mock) = idp_mocks::cobrha::start().await;
    let registry =
        HttpRegistry::new(&url, Duration::from_secs(5), Duration::from_millis(300)).unwrap();
    let gp = Insz::parse(idp_mocks::cobrha::GP).unwrap();
    registry.professions(&gp).await.unwrap();
    registry.professions(&gp).await.unwrap();
    assert_eq!(mock.lookups(), 1, "cached within the TTL");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(registry.cached_entries(), 0, "expired entries are dropped");
    registry.professions(&gp).await.unwrap();
    assert_eq!(mock.lookups(), 2, "asked again after the TTL");
}
