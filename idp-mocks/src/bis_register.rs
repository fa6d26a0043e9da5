//! Mock of the Bis register (Kruispuntbank / Banque-Carrefour de la Sécurité Sociale): people who
//! are not in the Belgian national register but have a Bis number. The broker uses it only to link
//! an eIDAS identity to a Bis number (SPEC §6 "First login linking").
//!
//! # Wire format (SPEC §8)
//!
//! `GET {url}/persons/{bis}` →
//!
//! * 200 `{"bis": "…", "family_name": "…", "given_names": ["…", …], "birthdate": "YYYY-MM-DD"}`
//!   (UTF-8; names are given as the person writes them, diacritics included);
//! * 404 `{"error": "not_found"}` for a Bis number the register does not know, and for a valid
//!   national register number (not a Bis number);
//! * 400 `{"error": "invalid_bis"}` when the path is not a valid INSZ (11 digits, right check
//!   digits);
//! * 503 `{"error": "unavailable"}` while the mock is set to fail.
//!
//! # Control (tests of timeouts and failures)
//!
//! The control API of every registry mock ([`crate::registry_mock`]): `POST /control`
//! `{"delay_ms": N, "fail": bool}`, `GET /control`, `GET /control/stats` → `{"lookups": N}`; in
//! process: [`RegistryMock::set_delay`], [`RegistryMock::set_failing`],
//! [`RegistryMock::lookups`], [`RegistryMock::reset`]. Every request to `/persons/…` counts as
//! a lookup; it first waits the delay, then answers 503 if failing.
//!
//! # Test persons
//!
//! Invented people; every Bis number has valid check digits (month + 40: gender known, the serial's
//! parity is the gender; month + 20: gender unknown). The first five are the eIDAS mock's test
//! citizens ([`crate::eidas::TEST_CITIZENS`]) with the same names and birth dates as their node
//! asserts (`CurrentGivenName` is the given names joined by a space), so a test can log in
//! through eIDAS and link with these numbers. The eIDAS mock's `NL_LOW` (Jan Jansen) has no Bis
//! number, for the "I have no Bis number" path.
//!
//! | constant | Bis number | family name | given names | birth date | who |
//! |---|---|---|---|---|---|
//! | [`DUTCH_PATIENT`] | `85441204638` | `de Vries` | `Sanne` | 1985-04-12 | Dutch patient, DigiD Substantieel (eIDAS `NL_SUBSTANTIAL`) |
//! | [`FOREIGN_GP`] | `90410513351` | `van den Berg` | `Pieter` | 1990-01-05 | Dutch GP, DigiD Hoog (eIDAS `NL_HIGH`); an active `PHYSICIAN` in the CoBRHA mock ([`crate::cobrha::FOREIGN_GP`]) |
//! | [`GERMAN`] | `64481215895` | `Mustermann` | `Erika` | 1964-08-12 | German (eIDAS `DE_SUBSTANTIAL`) |
//! | [`FRENCH`] | `79512306203` | `Lefèvre-Château` | `Hélène`, `Éloïse` | 1979-11-23 | French, diacritics in both names (eIDAS `FR_SUBSTANTIAL`) |
//! | [`LUXEMBOURGER`] | `58422809493` | `Schmit` | `Marie` | 1958-02-28 | Luxembourger (eIDAS `LU_HIGH`) |
//! | [`LUXEMBOURGER_GENDER_UNKNOWN`] | `01291708744` (month + 20) | `Schmit` | `Luc` | 2001-09-17 | Luxembourger born from 2000 on, gender unknown; no eIDAS citizen |

use serde::{Deserialize, Serialize};

use crate::registry_mock::{self, Registry, RegistryMock};

/// Dutch patient "Sanne de Vries", born 1985-04-12 (month + 40); eIDAS `NL_SUBSTANTIAL`.
pub const DUTCH_PATIENT: &str = "85441204638";
/// Dutch GP "Pieter van den Berg", born 1990-01-05 (month + 40); eIDAS `NL_HIGH`. The same number
/// as [`crate::cobrha::FOREIGN_GP`].
pub const FOREIGN_GP: &str = crate::cobrha::FOREIGN_GP;
/// German "Erika Mustermann", born 1964-08-12 (month + 40); eIDAS `DE_SUBSTANTIAL`.
pub const GERMAN: &str = "64481215895";
/// French "Hélène Éloïse Lefèvre-Château", born 1979-11-23 (month + 40); eIDAS `FR_SUBSTANTIAL`.
pub const FRENCH: &str = "79512306203";
/// Luxembourger "Marie Schmit", born 1958-02-28 (month + 40); eIDAS `LU_HIGH`.
pub const LUXEMBOURGER: &str = "58422809493";
/// Luxembourger "Luc Schmit", born 2001-09-17 (month + 20, gender unknown); no eIDAS citizen.
pub const LUXEMBOURGER_GENDER_UNKNOWN: &str = "01291708744";

/// A person in the Bis register, as on the wire: the answer to `GET /persons/{bis}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BisPerson {
    pub bis: String,
    pub family_name: String,
    pub given_names: Vec<String>,
    /// `YYYY-MM-DD`.
    pub birthdate: String,
}

impl BisPerson {
    /// A person from string slices.
    pub fn new(bis: &str, family_name: &str, given_names: &[&str], birthdate: &str) -> Self {
        BisPerson {
            bis: bis.to_string(),
            family_name: family_name.to_string(),
            given_names: given_names.iter().map(|g| g.to_string()).collect(),
            birthdate: birthdate.to_string(),
        }
    }
}

/// The test persons listed in the module documentation.
pub fn test_persons() -> Vec<BisPerson> {
    vec![
        BisPerson::new(DUTCH_PATIENT, "de Vries", &["Sanne"], "1985-04-12"),
        BisPerson::new(FOREIGN_GP, "van den Berg", &["Pieter"], "1990-01-05"),
        BisPerson::new(GERMAN, "Mustermann", &["Erika"], "1964-08-12"),
        BisPerson::new(FRENCH, "Lefèvre-Château", &["Hélène", "Éloïse"], "1979-11-23"),
        BisPerson::new(LUXEMBOURGER, "Schmit", &["Marie"], "1958-02-28"),
        BisPerson::new(LUXEMBOURGER_GENDER_UNKNOWN, "Schmit", &["Luc"], "2001-09-17"),
    ]
}

/// The Bis register as a [`Registry`]: people by Bis number. A national register number is not
/// in it (404), whatever the mock holds.
#[derive(Debug)]
pub struct BisRegister;

impl Registry for BisRegister {
    type Record = BisPerson;
    const NAME: &'static str = "mock Bis register";
    const LOG_NAME: &'static str = "bis_register";
    const ROUTE: &'static str = "/persons/{bis}";
    const INVALID: &'static str = "invalid_bis";
    const TEST_RECORDS: &'static str = "test persons";

    fn insz(record: &BisPerson) -> &str {
        &record.bis
    }

    fn test_records() -> Vec<BisPerson> {
        test_persons()
    }

    fn answers(insz: &str, _record: &BisPerson) -> bool {
        registry_mock::insz_is_bis(insz)
    }

    fn summary(p: &BisPerson) -> String {
        format!("{}  {}, {}  born {}", p.bis, p.family_name, p.given_names.join(" "), p.birthdate)
    }
}

/// The Bis register mock, holding the [test persons](test_persons) when new.
pub type MockBisRegister = RegistryMock<BisRegister>;

/// For tests: starts a [`MockBisRegister`] with the test persons on 127.0.0.1 (free port) on a
/// background task; answers its base URL (`http://127.0.0.1:PORT`, the `[bis_register] url`) and
/// the handle.
pub async fn start() -> (String, MockBisRegister) {
    registry_mock::start().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::time::Duration;

    #[test]
    fn every_bis_number_is_valid_and_matches_the_birth_date() {
        let persons = test_persons();
        assert_eq!(persons.len(), 6);
        for p in &persons {
            let (bis, birthdate) = (p.bis.as_str(), p.birthdate.as_str());
            assert_eq!(bis.len(), 11, "{bis}");
            assert!(bis.bytes().all(|b| b.is_ascii_digit()), "{bis}");
            let year: u32 = birthdate[0..4].parse().unwrap();
            let month: u32 = birthdate[5..7].parse().unwrap();
            assert_eq!(&bis[0..2], &birthdate[2..4], "{bis}: year");
            let bis_month: u32 = bis[2..4].parse().unwrap();
            assert!(bis_month == month + 20 || bis_month == month + 40, "{bis}: month");
            assert_eq!(&bis[4..6], &birthdate[8..10], "{bis}: day");
            let first9: u64 = bis[0..9].parse().unwrap();
            let base = if year >= 2000 { 2_000_000_000 + first9 } else { first9 };
            let check: u64 = bis[9..11].parse().unwrap();
            assert_eq!(check, 97 - base % 97, "{bis}: check digits");
            assert!(registry_mock::insz_is_bis(bis), "{bis}");
            assert!(!p.family_name.is_empty() && !p.given_names.is_empty());
        }
        // Both kinds of Bis number are covered.
        assert!(persons.iter().any(|p| p.bis[2..3] == *"2" || p.bis[2..3] == *"3"));
        assert!(persons.iter().any(|p| p.bis[2..3] == *"4" || p.bis[2..3] == *"5"));
    }

    #[test]
    fn the_eidas_citizens_match_their_bis_entries() {
        let persons = test_persons();
        let matched = |c: &crate::eidas::Citizen| {
            persons.iter().find(|p| {
                p.family_name == c.family_name
                    && p.given_names.join(" ") == c.given_name
                    && p.birthdate == c.date_of_birth
            })
        };
        for c in crate::eidas::TEST_CITIZENS {
            if c.key == "nl-low" {
                assert!(matched(c).is_none(), "NL_LOW has no Bis number");
            } else {
                assert!(matched(c).is_some(), "eIDAS citizen {} has no Bis entry", c.key);
            }
        }
        let key_of = |bis: &str| {
            let p = persons.iter().find(|p| p.bis == bis).unwrap();
            crate::eidas::TEST_CITIZENS.iter().find(|c| matched(c) == Some(p)).map(|c| c.key)
        };
        assert_eq!(key_of(DUTCH_PATIENT), Some("nl-substantial"));
        assert_eq!(key_of(FOREIGN_GP), Some("nl-high"));
        assert_eq!(key_of(GERMAN), Some("de-substantial"));
        assert_eq!(key_of(FRENCH), Some("fr-substantial"));
        assert_eq!(key_of(LUXEMBOURGER), Some("lu-high"));
        assert_eq!(key_of(LUXEMBOURGER_GENDER_UNKNOWN), None);
    }

    async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
        let resp = client.get(url).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn lookups_answer_the_wire_format() {
        let (url, mock) = start().await;
        let client = reqwest::Client::new();

        let (status, body) = get(&client, &format!("{url}/persons/{DUTCH_PATIENT}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"bis": DUTCH_PATIENT, "family_name": "de Vries",
                "given_names": ["Sanne"], "birthdate": "1985-04-12"})
        );

        let resp = client.get(format!("{url}/persons/{FRENCH}")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("application/json"), "{content_type}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["family_name"], "Lefèvre-Château");
        assert_eq!(body["given_names"], json!(["Hélène", "Éloïse"]));

        for bis in [GERMAN, LUXEMBOURGER, LUXEMBOURGER_GENDER_UNKNOWN, FOREIGN_GP] {
            let (status, body) = get(&client, &format!("{url}/persons/{bis}")).await;
            assert_eq!((status, &body["bis"]), (200, &json!(bis)));
        }

        // A valid Bis number nobody has, a national register number, a malformed number.
        let (status, _) = get(&client, &format!("{url}/persons/80451402496")).await;
        assert_eq!(status, 404);
        assert!(registry_mock::insz_is_bis("80451402496"));
        let (status, _) = get(&client, &format!("{url}/persons/{}", crate::cobrha::GP)).await;
        assert_eq!(status, 404);
        let (status, _) = get(&client, &format!("{url}/persons/80451402398")).await;
        assert_eq!(status, 400);

        assert_eq!(mock.lookups(), 9);
        let (_, stats) = get(&client, &format!("{url}/control/stats")).await;
        assert_eq!(stats, json!({"lookups": 9}));

        assert!(mock.remove(GERMAN).is_some());
        assert_eq!(get(&client, &format!("{url}/persons/{GERMAN}")).await.0, 404);
        mock.insert(BisPerson::new(GERMAN, "Mustermann", &["Erika", "Anna"], "1964-08-12"));
        let (status, body) = get(&client, &format!("{url}/persons/{GERMAN}")).await;
        assert_eq!((status, &body["given_names"]), (200, &json!(["Erika", "Anna"])));
    }

    #[tokio::test]
    async fn failing_and_slow() {
        let (url, mock) = start().await;
        let client = reqwest::Client::new();
        let lookup = format!("{url}/persons/{DUTCH_PATIENT}");

        mock.set_failing(true);
        assert_eq!(get(&client, &lookup).await, (503, json!({"error": "unavailable"})));
        mock.set_failing(false);
        assert_eq!(get(&client, &lookup).await.0, 200);

        mock.set_delay(Duration::from_millis(400));
        let err = client
            .get(&lookup)
            .timeout(Duration::from_millis(100))
            .send()
            .await
            .expect_err("a slow register times out");
        assert!(err.is_timeout(), "{err}");
        mock.set_delay(Duration::ZERO);

        let control = format!("{url}/control");
        let resp = client
            .post(&control)
            .json(&json!({"delay_ms": 250, "fail": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let started = std::time::Instant::now();
        assert_eq!(get(&client, &lookup).await.0, 503);
        assert!(started.elapsed() >= Duration::from_millis(250), "the delay comes first");
        client.post(&control).json(&json!({"delay_ms": 0, "fail": false})).send().await.unwrap();
        assert_eq!(get(&client, &lookup).await.0, 200);

        assert_eq!(mock.lookups(), 5);
        mock.reset();
        assert_eq!(get(&client, &format!("{url}/control/stats")).await.1, json!({"lookups": 0}));
    }
}
