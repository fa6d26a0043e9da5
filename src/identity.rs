//! Who a person is to the broker: the INSZ (national register number or Bis number).
//!
//! Parse, don't validate: an [`Insz`] can only be built from eleven digits whose check digits
//! are right, so the rest of the code never sees an invalid number.

use std::fmt;
use std::str::FromStr;

/// Why a string is not an INSZ. Each variant names the rule that failed, so forms can say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InszError {
    #[error("an INSZ has 11 digits")]
    Length,
    #[error("an INSZ contains only digits (dots, dashes and spaces are allowed as separators)")]
    NotDigits,
    #[error("the month of an INSZ must be 00-12, or 20-32 / 40-52 for a Bis number")]
    Month,
    #[error("the day of an INSZ must be 00-31")]
    Day,
    #[error("the serial number of an INSZ cannot be 000 or 999")]
    Serial,
    #[error("the check digits of this INSZ are wrong")]
    CheckDigits,
}

impl InszError {
    /// Message key in the catalogue (`locales/*/main.ftl`) for forms.
    pub fn message_key(&self) -> &'static str {
        match self {
            InszError::Length => "insz-error-length",
            InszError::NotDigits => "insz-error-digits",
            InszError::Month => "insz-error-month",
            InszError::Day => "insz-error-day",
            InszError::Serial => "insz-error-serial",
            InszError::CheckDigits => "insz-error-check",
        }
    }
}

/// What kind of number an [`Insz`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InszKind {
    /// National register number (Belgian residents).
    NationalRegister,
    /// Bis number with the gender unknown (month + 20).
    BisGenderUnknown,
    /// Bis number with the gender known (month + 40).
    BisGenderKnown,
}

/// A valid INSZ (NISS): `YYMMDDSSSCC`, stored as its 11 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Insz(String);

impl Insz {
    /// Parses an INSZ, accepting the usual separators (`85.07.30-033.28`, `850730 033 28`).
    pub fn parse(input: &str) -> Result<Self, InszError> {
        let mut digits = String::with_capacity(11);
        for c in input.trim().chars() {
            match c {
                '0'..='9' => digits.push(c),
                '.' | '-' | ' ' => {}
                _ => return Err(InszError::NotDigits),
            }
        }
        if digits.len() != 11 {
            return Err(InszError::Length);
        }
        let num = |r: std::ops::Range<usize>| -> u64 {
            digits[r].bytes().fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'))
        };
        let month = num(2..4);
        let day = num(4..6);
        let serial = num(6..9);
        let base_month = month % 20;
        if !(month <= 12 || (20..=32).contains(&month) || (40..=52).contains(&month))
            || base_month > 12
        {
            return Err(InszError::Month);
        }
        if day > 31 {
            return Err(InszError::Day);
        }
        if serial == 0 || serial == 999 {
            return Err(InszError::Serial);
        }
        let first9 = num(0..9);
        let check = num(9..11);
        let before_2000 = 97 - (first9 % 97);
        let from_2000 = 97 - ((2_000_000_000 + first9) % 97);
        if check != before_2000 && check != from_2000 {
            return Err(InszError::CheckDigits);
        }
        Ok(Insz(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> InszKind {
        match &self.0[2..4] {
            m if m.starts_with('2') || m.starts_with('3') => InszKind::BisGenderUnknown,
            m if m.starts_with('4') || m.starts_with('5') => InszKind::BisGenderKnown,
            _ => InszKind::NationalRegister,
        }
    }

    pub fn is_bis(&self) -> bool {
        self.kind() != InszKind::NationalRegister
    }

    /// The number grouped as people write it: `85.07.30-033.28`.
    pub fn formatted(&self) -> String {
        let d = &self.0;
        format!("{}.{}.{}-{}.{}", &d[0..2], &d[2..4], &d[4..6], &d[6..9], &d[9..11])
    }

    /// Shown on pages where the whole number is not needed: `85.07.30-***.**`.
    pub fn masked(&self) -> String {
        let d = &self.0;
        format!("{}.{}.{}-***.**", &d[0..2], &d[2..4], &d[4..6])
    }
}

impl fmt::Display for Insz {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Insz {
    /// Logs and debug output show only the birth-date part: an INSZ is personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Insz({})", self.masked())
    }
}

impl FromStr for Insz {
    type Err = InszError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Insz::parse(s)
    }
}

impl<'de> serde::Deserialize<'de> for Insz {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Insz::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a valid number from its first nine digits, for the given century.
    fn with_check(first9: &str, from_2000: bool) -> String {
        let n: u64 = first9.parse().unwrap();
        let base = if from_2000 { 2_000_000_000 + n } else { n };
        format!("{first9}{:02}", 97 - base % 97)
    }

    #[test]
    fn national_register_number_born_before_2000() {
        // 30 July 1985, serial 033 (odd: male): 850730033 mod 97 = 69 → 28.
        let insz = Insz::parse("85073003328").unwrap();
        assert_eq!(insz.kind(), InszKind::NationalRegister);
        assert_eq!(insz.formatted(), "85.07.30-033.28");
        assert_eq!(Insz::parse("85.07.30-033.28").unwrap(), insz);
        assert_eq!(Insz::parse(" 850730 033 28 ").unwrap(), insz);
    }

    #[test]
    fn national_register_number_born_from_2000() {
        // 3 February 2001, serial 001: (2010203001 mod 97) = 27 → 70.
        let insz = Insz::parse("01020300170").unwrap();
        assert_eq!(insz.kind(), InszKind::NationalRegister);
        // The same digits with the pre-2000 check are a different (valid) number.
        let old = with_check("010203001", false);
        assert_ne!(old, "01020300170");
        assert!(Insz::parse(&old).is_ok());
    }

    #[test]
    fn bis_numbers() {
        let unknown_gender = with_check("852730033", false); // month 07 + 20
        assert_eq!(Insz::parse(&unknown_gender).unwrap().kind(), InszKind::BisGenderUnknown);
        let known_gender = with_check("854730034", false); // month 07 + 40
        let insz = Insz::parse(&known_gender).unwrap();
        assert_eq!(insz.kind(), InszKind::BisGenderKnown);
        assert!(insz.is_bis());
        let born_2003 = with_check("034511002", true); // November 2003 + 40
        assert_eq!(Insz::parse(&born_2003).unwrap().kind(), InszKind::BisGenderKnown);
    }

    #[test]
    fn unknown_birth_day_and_month() {
        let unknown_day = with_check("850700033", false);
        assert!(Insz::parse(&unknown_day).is_ok());
        let unknown_month_bis = with_check("854000035", false); // Bis, month and day unknown
        assert!(Insz::parse(&unknown_month_bis).is_ok());
        let unknown_all = with_check("000000001", false);
        assert!(Insz::parse(&unknown_all).is_ok());
    }

    #[test]
    fn every_rule_rejects() {
        assert_eq!(Insz::parse("8507300332"), Err(InszError::Length));
        assert_eq!(Insz::parse("850730033288"), Err(InszError::Length));
        assert_eq!(Insz::parse(""), Err(InszError::Length));
        assert_eq!(Insz::parse("85O73003328"), Err(InszError::NotDigits));
        assert_eq!(Insz::parse("85073003329"), Err(InszError::CheckDigits));
        assert_eq!(Insz::parse(&with_check("851330033", false)), Err(InszError::Month));
        assert_eq!(Insz::parse(&with_check("856030033", false)), Err(InszError::Month));
        assert_eq!(Insz::parse(&with_check("853330033", false)), Err(InszError::Month));
        assert_eq!(Insz::parse(&with_check("850732033", false)), Err(InszError::Day));
        assert_eq!(Insz::parse(&with_check("850730000", false)), Err(InszError::Serial));
        assert_eq!(Insz::parse(&with_check("850730999", false)), Err(InszError::Serial));
    }

    #[test]
    fn debug_output_hides_the_number() {
        let insz = Insz::parse("85073003328").unwrap();
        assert!(!format!("{insz:?}").contains("03328"));
    }

    #[test]
    fn deserialize_rejects_invalid() {
        assert!(serde_json::from_str::<Insz>("\"85073003328\"").is_ok());
        assert!(serde_json::from_str::<Insz>("\"85073003329\"").is_err());
    }
}
