//! Levels of assurance and the node's test citizens.

use std::fmt;
use std::str::FromStr;

/// An eIDAS level of assurance (`http://eidas.europa.eu/LoA/…`), ordered low < substantial < high.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Loa {
    Low,
    Substantial,
    High,
}

impl Loa {
    pub const ALL: [Loa; 3] = [Loa::Low, Loa::Substantial, Loa::High];

    /// The level's URI, e.g. `http://eidas.europa.eu/LoA/substantial`.
    pub fn uri(self) -> &'static str {
        match self {
            Loa::Low => "http://eidas.europa.eu/LoA/low",
            Loa::Substantial => "http://eidas.europa.eu/LoA/substantial",
            Loa::High => "http://eidas.europa.eu/LoA/high",
        }
    }

    /// `low`, `substantial` or `high`.
    pub fn name(self) -> &'static str {
        match self {
            Loa::Low => "low",
            Loa::Substantial => "substantial",
            Loa::High => "high",
        }
    }

    /// The level for an eIDAS LoA URI (exact match); `None` for anything else.
    pub fn from_uri(uri: &str) -> Option<Loa> {
        Loa::ALL.into_iter().find(|l| l.uri() == uri)
    }
}

impl fmt::Display for Loa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Loa {
    type Err = String;

    /// Accepts `low`/`substantial`/`high` or the full URI.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Loa::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s) || l.uri() == s)
            .ok_or_else(|| format!("unknown level of assurance {s:?}"))
    }
}

/// A test citizen that can log in at the mock node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Citizen {
    /// Stable key used by tests and forms, e.g. `nl-substantial`.
    pub key: &'static str,
    /// ISO 3166-1 alpha-2 code of the citizen's country (the node behind which they log in).
    pub country: &'static str,
    /// The user name typed on the country's login page (DigiD for NL).
    pub username: &'static str,
    /// `CurrentGivenName`.
    pub given_name: &'static str,
    /// `CurrentFamilyName`.
    pub family_name: &'static str,
    /// `DateOfBirth`, `YYYY-MM-DD`.
    pub date_of_birth: &'static str,
    /// `PersonIdentifier`, `XX/BE/<id>`.
    pub person_identifier: &'static str,
    /// The level of assurance of this citizen's means of login.
    pub level: Loa,
    /// What kind of login this is, shown on the pages.
    pub means: &'static str,
}

/// NL, DigiD app with one-time ID check (DigiD Substantieel) → substantial.
pub const NL_SUBSTANTIAL: Citizen = Citizen {
    key: "nl-substantial",
    country: "NL",
    username: "sanne.devries",
    given_name: "Sanne",
    family_name: "de Vries",
    date_of_birth: "1985-04-12",
    person_identifier: "NL/BE/0ad7c3f1b95e4e2a8c61d04f7b2e9a35",
    level: Loa::Substantial,
    means: "DigiD app with ID check (Substantieel)",
};

/// NL, DigiD Basis (user name + password) → low.
pub const NL_LOW: Citizen = Citizen {
    key: "nl-low",
    country: "NL",
    username: "jan.jansen",
    given_name: "Jan",
    family_name: "Jansen",
    date_of_birth: "1972-09-30",
    person_identifier: "NL/BE/5e1b9f0c27d84a6b9d3e8f41c0a7b2d6",
    level: Loa::Low,
    means: "DigiD Basis (user name and password)",
};

/// NL, DigiD Hoog (identity card chip read at each login) → high.
pub const NL_HIGH: Citizen = Citizen {
    key: "nl-high",
    country: "NL",
    username: "pieter.vandenberg",
    given_name: "Pieter",
    family_name: "van den Berg",
    date_of_birth: "1990-01-05",
    person_identifier: "NL/BE/c4e80a1d9b7f4c3e8a2d6b05f1e9c7a3",
    level: Loa::High,
    means: "DigiD Hoog (identity card)",
};

/// DE, German eID card (online function) → substantial.
pub const DE_SUBSTANTIAL: Citizen = Citizen {
    key: "de-substantial",
    country: "DE",
    username: "erika.mustermann",
    given_name: "Erika",
    family_name: "Mustermann",
    date_of_birth: "1964-08-12",
    person_identifier: "DE/BE/7f3c9e2a1b6d48e0a5c2f9d83b1e6a40",
    level: Loa::Substantial,
    means: "Personalausweis (online ID)",
};

/// FR, FranceConnect+ → substantial; names with diacritics.
pub const FR_SUBSTANTIAL: Citizen = Citizen {
    key: "fr-substantial",
    country: "FR",
    username: "helene.lefevre",
    given_name: "Hélène Éloïse",
    family_name: "Lefèvre-Château",
    date_of_birth: "1979-11-23",
    person_identifier: "FR/BE/b2d94f1e6c0a47d3b8e5a1c9f2d7e064",
    level: Loa::Substantial,
    means: "FranceConnect+",
};

/// LU, Luxembourg eID card → high.
pub const LU_HIGH: Citizen = Citizen {
    key: "lu-high",
    country: "LU",
    username: "marie.schmit",
    given_name: "Marie",
    family_name: "Schmit",
    date_of_birth: "1958-02-28",
    person_identifier: "LU/BE/e9a1c5d3f7b24086a4d1e8c2b6f0a973",
    level: Loa::High,
    means: "Luxembourg eID card",
};

/// All test citizens.
pub const TEST_CITIZENS: &[Citizen] =
    &[NL_SUBSTANTIAL, NL_LOW, NL_HIGH, DE_SUBSTANTIAL, FR_SUBSTANTIAL, LU_HIGH];

/// The countries on the country page: (code, English name).
pub const COUNTRIES: &[(&str, &str)] =
    &[("NL", "Netherlands"), ("DE", "Germany"), ("FR", "France"), ("LU", "Luxembourg")];

/// All test citizens (same as [`TEST_CITIZENS`]).
pub fn test_citizens() -> &'static [Citizen] {
    TEST_CITIZENS
}

/// The test citizen with this key (or, failing that, this user name).
pub fn citizen(key_or_username: &str) -> Option<&'static Citizen> {
    let k = key_or_username.trim();
    TEST_CITIZENS
        .iter()
        .find(|c| c.key == k)
        .or_else(|| TEST_CITIZENS.iter().find(|c| c.username.eq_ignore_ascii_case(k)))
}

/// The test citizens of one country.
pub fn citizens_of(country: &str) -> impl Iterator<Item = &'static Citizen> + '_ {
    TEST_CITIZENS.iter().filter(move |c| c.country.eq_ignore_ascii_case(country))
}

/// The English name of a country on the country page.
pub fn country_name(code: &str) -> Option<&'static str> {
    COUNTRIES.iter().find(|(c, _)| c.eq_ignore_ascii_case(code)).map(|(_, n)| *n)
}
