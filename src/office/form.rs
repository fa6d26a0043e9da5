//! The office form (SPEC §7): what the operator types, and every rule it must pass before a
//! registration is filed.

use crate::identity::{Insz, InszError};

/// Birth dates before this are typing errors.
const EARLIEST_BIRTHDATE: chrono::NaiveDate = match chrono::NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => chrono::NaiveDate::MIN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    Passport,
    IdentityCard,
    ResidencePermit,
}

impl DocumentType {
    pub const ALL: [DocumentType; 3] =
        [DocumentType::Passport, DocumentType::IdentityCard, DocumentType::ResidencePermit];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passport => "passport",
            Self::IdentityCard => "identity_card",
            Self::ResidencePermit => "residence_permit",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// What the office form carries, as typed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct RegistrationForm {
    pub insz: Option<String>,
    pub request_bis: Option<String>,
    pub family_name: Option<String>,
    pub given_names: Option<String>,
    pub birthdate: Option<String>,
    pub nationality: Option<String>,
    pub document_type: Option<String>,
    pub document_number: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub language: Option<String>,
}

/// A registration that passed every rule.
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub insz: Option<Insz>,
    pub family_name: String,
    pub given_names: String,
    pub birthdate: chrono::NaiveDate,
    pub nationality: String,
    pub document_type: DocumentType,
    /// Only the last characters are stored (enough to tell two documents apart at the desk).
    pub document_hint: String,
    pub email: String,
    pub mobile: String,
    pub lang: crate::i18n::Lang,
}

/// A field that failed, with the catalogue key of the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: &'static str,
    pub key: &'static str,
}

fn trimmed(s: &Option<String>) -> String {
    s.as_deref().unwrap_or_default().trim().to_string()
}

pub fn parse_email(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',');
    ok.then(|| s.to_string())
}

impl RegistrationForm {
    /// Every rule at once, so the operator sees every problem in one go.
    pub fn parse(&self, today: chrono::NaiveDate) -> Result<NewRegistration, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field, key| errors.push(FieldError { field, key });
        let request_bis = self.request_bis.as_deref().is_some_and(|v| !v.is_empty());
        let insz_raw = trimmed(&self.insz);
        let insz = if request_bis {
            None
        } else if insz_raw.is_empty() {
            err("insz", "office-insz-required");
            None
        } else {
            match Insz::parse(&insz_raw) {
                Ok(i) => Some(i),
                Err(e) => {
                    err("insz", InszError::message_key(&e));
                    None
                }
            }
        };
        let family_name = trimmed(&self.family_name);
        if family_name.is_empty() || family_name.chars().count() > 100 {
            err("family_name", "office-name-required");
        }
        let given_names = trimmed(&self.given_names);
        if given_names.is_empty() || given_names.chars().count() > 100 {
            err("given_names", "office-name-required");
        }
        let birthdate = chrono::NaiveDate::parse_from_str(&trimmed(&self.birthdate), "%Y-%m-%d")
            .ok()
            .filter(|d| *d <= today && *d > EARLIEST_BIRTHDATE);
        if birthdate.is_none() {
            err("birthdate", "office-birthdate-invalid");
        }
        let nationality = trimmed(&self.nationality).to_ascii_uppercase();
        if nationality.len() != 2 || !nationality.bytes().all(|b| b.is_ascii_uppercase()) {
            err("nationality", "office-nationality-invalid");
        }
        let document_type = DocumentType::parse(&trimmed(&self.document_type));
        if document_type.is_none() {
            err("document_type", "office-document-type-invalid");
        }
        let number: String = trimmed(&self.document_number)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !(5..=20).contains(&number.len()) {
            err("document_number", "office-document-number-invalid");
        }
        let email = parse_email(&trimmed(&self.email));
        if email.is_none() {
            err("email", "office-email-invalid");
        }
        let mobile = crate::keys::parse_phone(&trimmed(&self.mobile));
        if mobile.is_none() {
            err("mobile", "office-mobile-invalid");
        }
        let lang =
            crate::i18n::Lang::parse(&trimmed(&self.language)).unwrap_or(crate::i18n::Lang::En);
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(birthdate), Some(document_type), Some(email), Some(mobile)) =
            (birthdate, document_type, email, mobile)
        else {
            return Err(errors);
        };
        let hint_from = number.len().saturating_sub(3);
        Ok(NewRegistration {
            insz,
            family_name,
            given_names,
            birthdate,
            nationality,
            document_type,
            document_hint: format!("…{}", &number[hint_from..]),
            email,
            mobile,
            lang,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_form_names_every_failing_field() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let form = RegistrationForm {
            insz: Some("85073003329".into()),
            birthdate: Some("2030-01-01".into()),
            nationality: Some("Dutch".into()),
            email: Some("no-at-sign".into()),
            mobile: Some("0470".into()),
            ..Default::default()
        };
        let errs = form.parse(today).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field).collect();
        for f in [
            "insz",
            "family_name",
            "given_names",
            "birthdate",
            "nationality",
            "document_type",
            "document_number",
            "email",
            "mobile",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        let ok = RegistrationForm {
            insz: None,
            request_bis: Some("on".into()),
            family_name: Some("Jansen".into()),
            given_names: Some("Anna Maria".into()),
            birthdate: Some("1985-07-30".into()),
            nationality: Some("nl".into()),
            document_type: Some("passport".into()),
            document_number: Some("NX12 34567".into()),
            email: Some("anna@example.nl".into()),
            mobile: Some("+31 6 1234 5678".into()),
            language: Some("nl".into()),
        }
        .parse(today)
        .unwrap();
        assert!(ok.insz.is_none());
        assert_eq!(ok.nationality, "NL");
        assert_eq!(ok.document_hint, "…567");
    }
}
