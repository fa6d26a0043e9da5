//! Levels of assurance (eIDAS) and login methods (the `acr` and `amr` of tokens, SPEC §3).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// eIDAS level of assurance. Ordered: `Low < Substantial < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AssuranceLevel {
    Low,
    Substantial,
    High,
}

impl AssuranceLevel {
    pub const ALL: [AssuranceLevel; 3] = [Self::Low, Self::Substantial, Self::High];

    /// The eIDAS URI, as it appears in `acr` and in SAML `AuthnContextClassRef`.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Low => "http://eidas.europa.eu/LoA/low",
            Self::Substantial => "http://eidas.europa.eu/LoA/substantial",
            Self::High => "http://eidas.europa.eu/LoA/high",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Substantial => "substantial",
            Self::High => "high",
        }
    }

    /// Parses `low`/`substantial`/`high` or the full eIDAS URI (config and `acr_values` use both).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| s.eq_ignore_ascii_case(l.short()) || s == l.uri())
    }
}

impl fmt::Display for AssuranceLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri())
    }
}

impl FromStr for AssuranceLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("unknown level '{s}': use low, substantial or high"))
    }
}

impl Serialize for AssuranceLevel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.uri())
    }
}

impl<'de> Deserialize<'de> for AssuranceLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown level '{s}'")))
    }
}

/// How a person proved who they are. The string form is the `amr` value (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Eid,
    Totp,
    Webauthn,
    Sms,
    Token,
    Eidas,
    Itsme,
    Fas,
    /// EU Digital Identity Wallet presenting its PID (SPEC §12).
    Eudiw,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eid => "eid",
            Self::Totp => "totp",
            Self::Webauthn => "webauthn",
            Self::Sms => "sms",
            Self::Token => "token",
            Self::Eidas => "eidas",
            Self::Itsme => "itsme",
            Self::Fas => "fas",
            Self::Eudiw => "eudiw",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Eid,
            Self::Totp,
            Self::Webauthn,
            Self::Sms,
            Self::Token,
            Self::Eidas,
            Self::Itsme,
            Self::Fas,
            Self::Eudiw,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// The level a method gives on its own (SPEC §3). eIDAS, FAS and the wallet get theirs from
    /// upstream (the wallet: high, capped by `[eudiw] max_level`).
    pub fn own_level(self) -> Option<AssuranceLevel> {
        match self {
            Self::Eid | Self::Itsme => Some(AssuranceLevel::High),
            Self::Totp | Self::Webauthn => Some(AssuranceLevel::Substantial),
            Self::Sms | Self::Token => Some(AssuranceLevel::Low),
            Self::Eidas | Self::Fas | Self::Eudiw => None,
        }
    }

    /// Digital-key second factors, in the order the key-login page offers them.
    pub const KEY_FACTORS: [Method; 4] = [Self::Totp, Self::Webauthn, Self::Sms, Self::Token];
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_parse_both_forms() {
        assert!(AssuranceLevel::Low < AssuranceLevel::Substantial);
        assert!(AssuranceLevel::Substantial < AssuranceLevel::High);
        assert_eq!(AssuranceLevel::parse("substantial"), Some(AssuranceLevel::Substantial));
        assert_eq!(
            AssuranceLevel::parse("http://eidas.europa.eu/LoA/high"),
            Some(AssuranceLevel::High)
        );
        assert_eq!(AssuranceLevel::parse("http://eidas.europa.eu/LoA/medium"), None);
    }

    #[test]
    fn method_levels_follow_the_spec_table() {
        assert_eq!(Method::Totp.own_level(), Some(AssuranceLevel::Substantial));
        assert_eq!(Method::Sms.own_level(), Some(AssuranceLevel::Low));
        assert_eq!(Method::Token.own_level(), Some(AssuranceLevel::Low));
        assert_eq!(Method::Eid.own_level(), Some(AssuranceLevel::High));
        assert_eq!(Method::parse("webauthn"), Some(Method::Webauthn));
    }
}
