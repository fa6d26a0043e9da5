//! Mock of CoBRHA, the RIZIV/INAMI registry of healthcare actors: who is a care provider, with
//! which professions and NIHII (RIZIV/INAMI) numbers.
//!
//! # Wire format (SPEC §8)
//!
//! `GET {url}/professionals/{insz}` →
//!
//! * 200 `{"insz": "…", "professions": [{"profession": "<code>", "nihii": "<11 digits>",
//!   "status": "active"|"inactive", "valid_from": "YYYY-MM-DD", "valid_until": "YYYY-MM-DD"|null}]}`;
//! * 404 `{"error": "not_found"}` when the registry knows no profession of that person;
//! * 400 `{"error": "invalid_insz"}` when the path is not a valid INSZ (11 digits, right check
//!   digits; the real registry refuses malformed numbers too);
//! * 503 `{"error": "unavailable"}` while the mock is set to fail.
//!
//! Profession codes are CoBRHA-style upper-case names: [`PHYSICIAN`], [`DENTIST`], [`NURSE`],
//! [`PHYSIOTHERAPIST`], [`PHARMACIST`], [`MIDWIFE`].
//!
//! A NIHII number has 11 digits: 8 identifying digits, of which the 7th and 8th are check digits
//! `97 - (first six digits mod 97)` (see [`nihii_is_valid`]), then a 3-digit qualification code.
//! The qualification codes below are illustrative.
//!
//! # Control (tests of timeouts and fail-closed behaviour)
//!
//! The control API of every registry mock ([`crate::registry_mock`]): `POST /control`
//! `{"delay_ms": N, "fail": bool}`, `GET /control`, `GET /control/stats` → `{"lookups": N}`; in
//! process: [`RegistryMock::set_delay`], [`RegistryMock::set_failing`],
//! [`RegistryMock::lookups`], [`RegistryMock::reset`]. Every request to `/professionals/…`
//! counts as a lookup; it first waits the delay, then answers 503 if failing.
//!
//! # Test care providers
//!
//! Invented people; every INSZ and NIHII number has valid check digits.
//!
//! | constant | INSZ | who | professions |
//! |---|---|---|---|
//! | [`GP`] | `75031212346` | Dr. Pieter Janssens, born 1975-03-12, general practitioner in Ghent | `PHYSICIAN` `10412751004` active since 2003-10-01 |
//! | [`PHYSICIAN_DENTIST`] | `68092504715` | Dr. Koen Peeters, born 1968-09-25, maxillofacial surgeon | `PHYSICIAN` `11385226580` active since 1996-07-01; `DENTIST` `30041888001` active since 1999-07-01 |
//! | [`FORMER_NURSE_PHYSIOTHERAPIST`] | `76020328670` | Sofie Claes, born 1976-02-03 | `NURSE` `45190320401` inactive 1998-09-01 – 2012-08-31; `PHYSIOTHERAPIST` `56073423000` active since 2012-09-01 |
//! | [`FOREIGN_GP`] | `90410513351` (Bis, month + 40) | Dr. Pieter van den Berg, born 1990-01-05, Dutch GP working in Belgium: the eIDAS mock's DigiD Hoog citizen `NL_HIGH`, also in the Bis register mock | `PHYSICIAN` `19725444004` active since 2019-03-01 |
//! | [`RETIRED_PHYSICIAN`] | `48011707146` | Dr. Marc Dubois, born 1948-01-17, retired | `PHYSICIAN` `10084238004` inactive 1974-10-01 – 2016-12-31 |
//! | [`NOT_A_PROFESSIONAL`] | `01041821502` | Lucas Wouters, born 2001-04-18, a patient | none: 404 |

use serde::{Deserialize, Serialize};

use crate::registry_mock::{self, Registry, RegistryMock};

/// Profession code of a physician (doctor of medicine).
pub const PHYSICIAN: &str = "PHYSICIAN";
/// Profession code of a dentist.
pub const DENTIST: &str = "DENTIST";
/// Profession code of a nurse.
pub const NURSE: &str = "NURSE";
/// Profession code of a physiotherapist.
pub const PHYSIOTHERAPIST: &str = "PHYSIOTHERAPIST";
/// Profession code of a pharmacist.
pub const PHARMACIST: &str = "PHARMACIST";
/// Profession code of a midwife.
pub const MIDWIFE: &str = "MIDWIFE";

/// Belgian general practitioner with one active profession: `PHYSICIAN`, NIHII `10412751004`.
pub const GP: &str = "75031212346";
/// NIHII number of [`GP`].
pub const GP_NIHII: &str = "10412751004";
/// Two active professions: `PHYSICIAN` (`11385226580`) and `DENTIST` (`30041888001`).
pub const PHYSICIAN_DENTIST: &str = "68092504715";
/// One inactive profession (`NURSE` `45190320401`, until 2012-08-31) and one active
/// (`PHYSIOTHERAPIST` `56073423000`).
pub const FORMER_NURSE_PHYSIOTHERAPIST: &str = "76020328670";
/// Foreign (Dutch) care provider with a Bis number (month + 40): active `PHYSICIAN`
/// `19725444004`. The eIDAS mock's citizen `NL_HIGH` (Pieter van den Berg, 1990-01-05).
pub const FOREIGN_GP: &str = "90410513351";
/// NIHII number of [`FOREIGN_GP`].
pub const FOREIGN_GP_NIHII: &str = "19725444004";
/// Only an inactive profession: `PHYSICIAN` `10084238004`, until 2016-12-31.
pub const RETIRED_PHYSICIAN: &str = "48011707146";
/// A valid INSZ (born 2001) that CoBRHA does not know: 404.
pub const NOT_A_PROFESSIONAL: &str = "01041821502";

/// Whether a profession is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Inactive,
}

/// One profession of a care provider, as on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profession {
    /// CoBRHA profession code, e.g. [`PHYSICIAN`].
    pub profession: String,
    /// NIHII (RIZIV/INAMI) number, 11 digits.
    pub nihii: String,
    pub status: Status,
    /// `YYYY-MM-DD`.
    pub valid_from: String,
    /// `YYYY-MM-DD`, or `None` (`null` on the wire) while open-ended.
    pub valid_until: Option<String>,
}

impl Profession {
    fn new(profession: &str, nihii: &str, status: Status, from: &str, until: Option<&str>) -> Self {
        Profession {
            profession: profession.to_string(),
            nihii: nihii.to_string(),
            status,
            valid_from: from.to_string(),
            valid_until: until.map(str::to_string),
        }
    }
}

/// A care provider, as on the wire: the answer to `GET /professionals/{insz}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Professional {
    pub insz: String,
    pub professions: Vec<Profession>,
}

/// The test care providers listed in the module documentation.
pub fn test_professionals() -> Vec<Professional> {
    use Status::{Active, Inactive};
    let p = |insz: &str, professions: Vec<Profession>| Professional {
        insz: insz.to_string(),
        professions,
    };
    vec![
        p(GP, vec![Profession::new(PHYSICIAN, GP_NIHII, Active, "2003-10-01", None)]),
        p(
            PHYSICIAN_DENTIST,
            vec![
                Profession::new(PHYSICIAN, "11385226580", Active, "1996-07-01", None),
                Profession::new(DENTIST, "30041888001", Active, "1999-07-01", None),
            ],
        ),
        p(
            FORMER_NURSE_PHYSIOTHERAPIST,
            vec![
                Profession::new(NURSE, "45190320401", Inactive, "1998-09-01", Some("2012-08-31")),
                Profession::new(PHYSIOTHERAPIST, "56073423000", Active, "2012-09-01", None),
            ],
        ),
        p(
            FOREIGN_GP,
            vec![Profession::new(PHYSICIAN, FOREIGN_GP_NIHII, Active, "2019-03-01", None)],
        ),
        p(
            RETIRED_PHYSICIAN,
            vec![Profession::new(
                PHYSICIAN,
                "10084238004",
                Inactive,
                "1974-10-01",
                Some("2016-12-31"),
            )],
        ),
    ]
}

/// Whether `s` is a valid NIHII number: 11 digits whose 7th and 8th digits are
/// `97 - (first six digits mod 97)` (97 when the remainder is 0).
pub fn nihii_is_valid(s: &str) -> bool {
    if s.len() != 11 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (Ok(first6), Ok(check)) = (s[0..6].parse::<u32>(), s[6..8].parse::<u32>()) else {
        return false;
    };
    check == 97 - first6 % 97
}

/// CoBRHA as a [`Registry`]: care providers by INSZ, answered only with a profession.
#[derive(Debug)]
pub struct Cobrha;

impl Registry for Cobrha {
    type Record = Professional;
    const NAME: &'static str = "mock CoBRHA";
    const LOG_NAME: &'static str = "cobrha";
    const ROUTE: &'static str = "/professionals/{insz}";
    const INVALID: &'static str = "invalid_insz";
    const TEST_RECORDS: &'static str = "test care providers";

    fn insz(record: &Professional) -> &str {
        &record.insz
    }

    fn test_records() -> Vec<Professional> {
        test_professionals()
    }

    /// A care provider with no professions is answered with 404, as CoBRHA does.
    fn answers(_insz: &str, record: &Professional) -> bool {
        !record.professions.is_empty()
    }

    fn summary(p: &Professional) -> String {
        let professions: Vec<String> = p
            .professions
            .iter()
            .map(|prof| {
                let status = match prof.status {
                    Status::Active => "active",
                    Status::Inactive => "inactive",
                };
                format!("{} {} {status}", prof.profession, prof.nihii)
            })
            .collect();
        format!("{}  {}", p.insz, professions.join(", "))
    }
}

/// The CoBRHA mock, holding the [test care providers](test_professionals) when new.
pub type MockCobrha = RegistryMock<Cobrha>;

/// For tests: starts a [`MockCobrha`] with the test data on 127.0.0.1 (free port) on a background
/// task; answers its base URL (`http://127.0.0.1:PORT`, the `[cobrha] url`) and the handle.
pub async fn start() -> (String, MockCobrha) {
    registry_mock::start().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::time::Duration;

    /// Every test person's INSZ with their birth date and whether it is a Bis number.
    const PEOPLE: &[(&str, &str, bool)] = &[
        (GP, "1975-03-12", false),
        (PHYSICIAN_DENTIST, "1968-09-25", false),
        (FORMER_NURSE_PHYSIOTHERAPIST, "1976-02-03", false),
        (FOREIGN_GP, "1990-01-05", true),
        (RETIRED_PHYSICIAN, "1948-01-17", false),
        (NOT_A_PROFESSIONAL, "2001-04-18", false),
    ];

    /// The INSZ check of the brief, with the century known from the birth date.
    fn check_insz(insz: &str, birthdate: &str, bis_plus: u32) {
        assert_eq!(insz.len(), 11, "{insz}");
        let year: u32 = birthdate[0..4].parse().unwrap();
        let month: u32 = birthdate[5..7].parse().unwrap();
        let day = &birthdate[8..10];
        assert_eq!(&insz[0..2], &birthdate[2..4], "{insz}: year");
        assert_eq!(insz[2..4].parse::<u32>().unwrap(), month + bis_plus, "{insz}: month");
        assert_eq!(&insz[4..6], day, "{insz}: day");
        let first9: u64 = insz[0..9].parse().unwrap();
        let base = if year >= 2000 { 2_000_000_000 + first9 } else { first9 };
        let check: u64 = insz[9..11].parse().unwrap();
        assert_eq!(check, 97 - base % 97, "{insz}: check digits");
        assert!(registry_mock::insz_is_valid(insz));
    }

    #[test]
    fn every_insz_is_valid() {
        for (insz, birthdate, bis) in PEOPLE {
            check_insz(insz, birthdate, if *bis { 40 } else { 0 });
            assert_eq!(registry_mock::insz_is_bis(insz), *bis, "{insz}");
        }
        let listed: Vec<&str> = PEOPLE.iter().map(|p| p.0).collect();
        for p in test_professionals() {
            assert!(listed.contains(&p.insz.as_str()), "{} has no birth date here", p.insz);
        }
    }

    #[test]
    fn every_nihii_is_valid() {
        let mut seen = std::collections::HashSet::new();
        for p in test_professionals() {
            for prof in &p.professions {
                assert!(nihii_is_valid(&prof.nihii), "{}: {}", p.insz, prof.nihii);
                let first6: u32 = prof.nihii[0..6].parse().unwrap();
                assert_eq!(prof.nihii[6..8].parse::<u32>().unwrap(), 97 - first6 % 97);
                assert!(seen.insert(prof.nihii.clone()), "NIHII {} used twice", prof.nihii);
                assert!(
                    [PHYSICIAN, DENTIST, NURSE, PHYSIOTHERAPIST, PHARMACIST, MIDWIFE]
                        .contains(&prof.profession.as_str()),
                    "{}",
                    prof.profession
                );
            }
        }
        assert!(!nihii_is_valid("10412752004"), "wrong check digits");
        assert!(!nihii_is_valid("1041275100"), "too short");
        assert!(!nihii_is_valid("1041275100a"), "not digits");
        // Remainder 0: the check digits are 97.
        assert!(nihii_is_valid("00009797000"));
    }

    #[test]
    fn the_test_cases_are_what_the_docs_say() {
        let mock = MockCobrha::new();
        let active = |insz: &str| -> Vec<String> {
            mock.get(insz)
                .unwrap()
                .professions
                .into_iter()
                .filter(|p| p.status == Status::Active)
                .map(|p| p.profession)
                .collect()
        };
        assert_eq!(active(GP), [PHYSICIAN]);
        assert_eq!(active(PHYSICIAN_DENTIST), [PHYSICIAN, DENTIST]);
        assert_eq!(active(FORMER_NURSE_PHYSIOTHERAPIST), [PHYSIOTHERAPIST]);
        assert_eq!(mock.get(FORMER_NURSE_PHYSIOTHERAPIST).unwrap().professions.len(), 2);
        assert_eq!(active(FOREIGN_GP), [PHYSICIAN]);
        assert!(active(RETIRED_PHYSICIAN).is_empty());
        assert!(mock.get(NOT_A_PROFESSIONAL).is_none());
        for p in test_professionals() {
            for prof in &p.professions {
                match prof.status {
                    Status::Active => assert_eq!(prof.valid_until, None),
                    Status::Inactive => {
                        let until = prof.valid_until.as_deref().unwrap();
                        assert!(until < "2024-01-01" && prof.valid_from.as_str() < until);
                    }
                }
            }
        }
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

        let (status, body) = get(&client, &format!("{url}/professionals/{GP}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"insz": GP, "professions": [{"profession": "PHYSICIAN", "nihii": GP_NIHII,
                "status": "active", "valid_from": "2003-10-01", "valid_until": null}]})
        );

        let (status, body) =
            get(&client, &format!("{url}/professionals/{FORMER_NURSE_PHYSIOTHERAPIST}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["professions"][0]["status"], "inactive");
        assert_eq!(body["professions"][0]["valid_until"], "2012-08-31");
        assert_eq!(body["professions"][1]["status"], "active");

        let (status, body) = get(&client, &format!("{url}/professionals/{FOREIGN_GP}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["insz"], FOREIGN_GP);

        let (status, body) =
            get(&client, &format!("{url}/professionals/{RETIRED_PHYSICIAN}")).await;
        assert_eq!((status, &body["professions"][0]["status"]), (200, &json!("inactive")));

        let (status, _) = get(&client, &format!("{url}/professionals/{NOT_A_PROFESSIONAL}")).await;
        assert_eq!(status, 404);
        let (status, _) = get(&client, &format!("{url}/professionals/75031212347")).await;
        assert_eq!(status, 400, "wrong check digits");
        let (status, _) = get(&client, &format!("{url}/professionals/abc")).await;
        assert_eq!(status, 400);

        assert_eq!(mock.lookups(), 7);
        let (status, body) = get(&client, &format!("{url}/control/stats")).await;
        assert_eq!((status, body), (200, json!({"lookups": 7})));
        assert_eq!(mock.lookups(), 7, "control requests are not lookups");
    }

    #[tokio::test]
    async fn inserted_and_removed_people() {
        let (url, mock) = start().await;
        let client = reqwest::Client::new();
        mock.insert(Professional { insz: NOT_A_PROFESSIONAL.into(), professions: vec![] });
        let (status, _) = get(&client, &format!("{url}/professionals/{NOT_A_PROFESSIONAL}")).await;
        assert_eq!(status, 404, "no professions is 404");
        mock.insert(Professional {
            insz: NOT_A_PROFESSIONAL.into(),
            professions: vec![Profession::new(
                NURSE,
                "40000226401",
                Status::Active,
                "2023-09-01",
                None,
            )],
        });
        let (status, body) =
            get(&client, &format!("{url}/professionals/{NOT_A_PROFESSIONAL}")).await;
        assert_eq!((status, &body["professions"][0]["profession"]), (200, &json!("NURSE")));
        assert!(mock.remove(GP).is_some());
        let (status, _) = get(&client, &format!("{url}/professionals/{GP}")).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn failing_and_slow_through_the_handle() {
        let (url, mock) = start().await;
        let client = reqwest::Client::new();
        let lookup = format!("{url}/professionals/{GP}");

        mock.set_failing(true);
        let (status, body) = get(&client, &lookup).await;
        assert_eq!((status, body), (503, json!({"error": "unavailable"})));
        let (status, _) = get(&client, &format!("{url}/professionals/{NOT_A_PROFESSIONAL}")).await;
        assert_eq!(status, 503, "every lookup fails");
        mock.set_failing(false);
        assert_eq!(get(&client, &lookup).await.0, 200);

        mock.set_delay(Duration::from_millis(400));
        let started = std::time::Instant::now();
        let err = client
            .get(&lookup)
            .timeout(Duration::from_millis(100))
            .send()
            .await
            .expect_err("a slow registry times out");
        assert!(err.is_timeout(), "{err}");
        assert!(started.elapsed() < Duration::from_millis(400));

        let started = std::time::Instant::now();
        assert_eq!(get(&client, &lookup).await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(400));

        assert_eq!(mock.lookups(), 5);
        mock.reset();
        assert_eq!(mock.lookups(), 0);
        let started = std::time::Instant::now();
        assert_eq!(get(&client, &lookup).await.0, 200);
        assert!(started.elapsed() < Duration::from_millis(400));
    }

    #[tokio::test]
    async fn failing_and_slow_through_the_control_api() {
        let (url, mock) = start().await;
        let client = reqwest::Client::new();
        let lookup = format!("{url}/professionals/{GP}");
        let control = format!("{url}/control");

        let resp = client.post(&control).json(&json!({"fail": true})).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let state: Value = resp.json().await.unwrap();
        assert_eq!(state, json!({"delay_ms": 0, "fail": true, "lookups": 0}));
        assert_eq!(get(&client, &lookup).await.0, 503);

        let resp = client
            .post(&control)
            .json(&json!({"delay_ms": 300, "fail": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let started = std::time::Instant::now();
        assert_eq!(get(&client, &lookup).await.0, 200);
        assert!(started.elapsed() >= Duration::from_millis(300));

        // A missing field keeps its value.
        client.post(&control).json(&json!({"fail": true})).send().await.unwrap();
        let (status, state) = get(&client, &control).await;
        assert_eq!((status, state), (200, json!({"delay_ms": 300, "fail": true, "lookups": 2})));

        // A misspelt field is refused rather than ignored.
        let resp = client.post(&control).json(&json!({"failing": false})).send().await.unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());

        client.post(&control).json(&json!({"delay_ms": 0, "fail": false})).send().await.unwrap();
        assert_eq!(get(&client, &lookup).await.0, 200);
        assert_eq!(get(&client, &format!("{url}/control/stats")).await.1, json!({"lookups": 3}));
        assert_eq!(mock.lookups(), 3);
    }
}
