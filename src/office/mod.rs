//! Registration offices (SPEC §7): an operator checks a person's identity documents and issues
//! an activation code on paper plus an activation link by mail. This module decides and stores;
//! `web::office` and `web::activate` render.
//!
//! The code and the link are both needed, so a stolen mail alone or a lost paper alone opens
//! nothing. Both are random, stored only as hashes, compared in constant time, used once, and
//! expire after [`ACTIVATION_TTL_S`].

use crate::audit::{Audit, Event, Kind, Outcome};
use crate::clock::Clock;
use crate::crypto;
use crate::identity::{Insz, InszError};
use crate::store::{OutboxMessage, Registration, RegistrationStatus, Store, StoreError};
use std::fmt;

/// Code and link are valid for 14 days (SPEC §7).
pub const ACTIVATION_TTL_S: i64 = 14 * 24 * 3600;
/// Wrong codes for one link before it locks until a re-issue.
pub const MAX_CODE_FAILURES: i64 = 5;
/// Finished and voided registrations are kept this long (for the office's list), then purged.
pub const KEEP_DONE_S: i64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A live registration exists for this person (SPEC §7: refused with a clear message).
    #[error("a live registration exists for this person")]
    Duplicate { existing: String },
    #[error("no such registration in this office")]
    NotFound,
    #[error("this registration cannot be re-issued: {0}")]
    NotReissuable(&'static str),
}

/// No look-alikes (0/O, 1/I/L): people copy the code from paper.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// 12 characters of a 31-letter alphabet: 59 bits (SPEC §7 asks ≥ 50).
const CODE_LEN: usize = 12;

/// The activation code printed for the person: `XXXX-XXXX-XXXX`. Only valid codes can be built.
#[derive(Clone, PartialEq, Eq)]
pub struct ActivationCode(String);

impl ActivationCode {
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rngs::OsRng;
        Self(
            (0..CODE_LEN)
                .map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())]))
                .collect(),
        )
    }

    /// Accepts the code as people type it: any case, with or without dashes and spaces.
    pub fn parse(input: &str) -> Option<Self> {
        let s: String = input
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '.'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (s.len() == CODE_LEN && s.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(Self(s))
    }

    /// Grouped by four for reading aloud and typing.
    pub fn grouped(&self) -> String {
        self.0
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c))
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Bound to its registration, so one hash cannot be replayed against another.
    fn hash(&self, registration_id: &str) -> String {
        crypto::token_hash(&format!("activation:{registration_id}:{}", self.0))
    }
}

impl fmt::Debug for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ActivationCode(…)")
    }
}

/// The secret part of the activation link: 256 random bits.
pub struct LinkToken(String);

impl LinkToken {
    pub fn generate() -> Self {
        Self(crypto::random_token(32))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn hash_of(raw: &str) -> String {
        crypto::token_hash(&format!("activation-link:{raw}"))
    }
}

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
            .filter(|d| *d <= today && *d > chrono::NaiveDate::from_ymd_opt(1900, 1, 1).unwrap());
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

/// What the office hands over: the code (shown once) and when it expires.
#[derive(Debug)]
pub struct Issued {
    pub registration: Registration,
    /// `None` while a Bis number is awaited.
    pub code: Option<ActivationCode>,
    pub link: Option<String>,
}

/// The result of typing a code on the activation page.
#[derive(Debug)]
pub enum Opening {
    Opened(Box<Registration>),
    Wrong {
        left: i64,
    },
    Locked,
    Expired,
    /// Already used, voided by a re-issue, or not a link of ours (one answer for all three).
    Unusable,
}

#[derive(Clone)]
pub struct Offices {
    store: Store,
    clock: Clock,
    public_url: url::Url,
    audit_log: Audit,
}

fn activation_mail(
    tr: &crate::i18n::Tr,
    given_names: &str,
    link: &str,
    until: &str,
) -> (String, String) {
    let subject = tr.t("activation-mail-subject");
    let body =
        tr.tn("activation-mail-body", &[("name", given_names), ("link", link), ("until", until)]);
    (subject, body)
}

impl Offices {
    pub fn new(store: Store, clock: Clock, public_url: url::Url, audit_log: Audit) -> Self {
        Self { store, clock, public_url, audit_log }
    }

    pub fn link_url(&self, token: &LinkToken) -> String {
        let mut u = self.public_url.clone();
        u.set_path(&format!("/activate/{}", token.as_str()));
        u.to_string()
    }

    async fn audit(
        &self,
        kind: Kind,
        outcome: Outcome,
        person: Option<&str>,
        detail: serde_json::Value,
    ) {
        let e = Event::new(kind, outcome).person_opt(person).detail(detail);
        self.audit_log.record(e, self.clock.now()).await;
    }

    /// Registers a person at an operator's office: refuses a second live registration, files a
    /// Bis request when asked, and otherwise issues a code and sends the link.
    pub async fn register(
        &self,
        operator: &crate::store::Operator,
        new: NewRegistration,
    ) -> Result<Issued, OfficeError> {
        let now = self.clock.now();
        let birthdate = new.birthdate.format("%Y-%m-%d").to_string();
        let existing = self
            .store
            .registrations_like(new.insz.as_ref().map(Insz::as_str), &new.family_name, &birthdate)
            .await?;
        if let Some(live) = existing.iter().find(|r| r.is_live(now)) {
            return Err(OfficeError::Duplicate { existing: live.id.clone() });
        }
        let id = crypto::random_id();
        let person_id = match &new.insz {
            Some(insz) => Some(
                self.store
                    .person_or_create(
                        insz,
                        &new.given_names,
                        &new.family_name,
                        Some(&birthdate),
                        now,
                    )
                    .await?
                    .id,
            ),
            None => None,
        };
        let bis_request_id = if new.insz.is_none() {
            let bid = crypto::random_id();
            self.store
                .insert_bis_request(
                    &bid,
                    &format!("office:{id}"),
                    &new.family_name,
                    &new.given_names,
                    &birthdate,
                    &new.email,
                    now,
                )
                .await?;
            Some(bid)
        } else {
            None
        };
        let (code, link) = if new.insz.is_some() {
            (Some(ActivationCode::generate()), Some(LinkToken::generate()))
        } else {
            (None, None)
        };
        let reg = Registration {
            id: id.clone(),
            office: operator.office.clone(),
            operator_id: operator.person_id.clone(),
            insz: new.insz.as_ref().map(|i| i.as_str().to_string()),
            person_id: person_id.clone(),
            bis_request_id,
            family_name: new.family_name.clone(),
            given_names: new.given_names.clone(),
            birthdate,
            nationality: new.nationality.clone(),
            document_type: new.document_type.as_str().into(),
            document_hint: new.document_hint.clone(),
            email: new.email.clone(),
            mobile: new.mobile.clone(),
            lang: new.lang.clone(),
            status: if code.is_some() {
                RegistrationStatus::Issued
            } else {
                RegistrationStatus::AwaitingBis
            },
            code_hash: code.as_ref().map(|c| c.hash(&id)),
            link_hash: link.as_ref().map(|l| LinkToken::hash_of(l.as_str())),
            failures: 0,
            created_at: now,
            expires_at: now + ACTIVATION_TTL_S,
            activated_at: None,
        };
        self.store.insert_registration(&reg).await?;
        let link_url = match &link {
            Some(l) => Some(self.send_link(&reg, l).await?),
            None => None,
        };
        self.audit(
            Kind::OfficeRegistration,
            if code.is_some() { Outcome::Issued } else { Outcome::BisRequested },
            person_id.as_deref(),
            serde_json::json!({
                "operator": operator.person_id, "office": operator.office, "registration": id,
            }),
        )
        .await;
        Ok(Issued { registration: reg, code, link: link_url })
    }

    async fn send_link(&self, reg: &Registration, link: &LinkToken) -> Result<String, OfficeError> {
        let tr = crate::i18n::Tr::new(reg.lang);
        let url = self.link_url(link);
        let (subject, body) =
            activation_mail(&tr, &reg.given_names, &url, &tr.date(reg.expires_at));
        self.store
            .enqueue(&OutboxMessage {
                id: crypto::random_id(),
                channel: "mail".into(),
                recipient: reg.email.clone(),
                subject: Some(subject),
                body,
                created_at: self.clock.now(),
                attempts: 0,
                sent_at: None,
            })
            .await?;
        Ok(url)
    }

    /// A registration of the operator's own office; others are "not found" (never shown).
    pub async fn of_office(
        &self,
        operator: &crate::store::Operator,
        id: &str,
    ) -> Result<Registration, OfficeError> {
        match self.store.registration(id).await? {
            Some(r) if r.office == operator.office => Ok(r),
            _ => Err(OfficeError::NotFound),
        }
    }

    /// New code and link (the old ones stop working), a new 14 days. With `insz` it completes a
    /// registration that was waiting for its Bis number. With `revoke_keys` it also revokes
    /// every key of the person (a lost device).
    pub async fn reissue(
        &self,
        operator: &crate::store::Operator,
        id: &str,
        insz: Option<Insz>,
        revoke_keys: bool,
    ) -> Result<Issued, OfficeError> {
        let now = self.clock.now();
        let reg = self.of_office(operator, id).await?;
        if reg.status == RegistrationStatus::Voided {
            return Err(OfficeError::NotReissuable("voided"));
        }
        let insz = match (reg.insz.as_deref(), insz) {
            (Some(existing), _) => {
                Some(Insz::parse(existing).map_err(|e| StoreError::Corrupt(format!("insz: {e}")))?)
            }
            (None, Some(new)) => {
                let others = self.store.registrations_like(Some(new.as_str()), "", "").await?;
                if let Some(live) = others.iter().find(|r| r.is_live(now) && r.id != reg.id) {
                    return Err(OfficeError::Duplicate { existing: live.id.clone() });
                }
                Some(new)
            }
            (None, None) => return Err(OfficeError::NotReissuable("bis-missing")),
        };
        let person = match &insz {
            Some(i) => Some(
                self.store
                    .person_or_create(
                        i,
                        &reg.given_names,
                        &reg.family_name,
                        Some(&reg.birthdate),
                        now,
                    )
                    .await?,
            ),
            None => None,
        };
        if revoke_keys {
            if let Some(p) = &person {
                if let Some(acct) = self.store.account_by_person(&p.id).await? {
                    self.store.revoke_keys_of_account(&acct.id, now).await?;
                    self.audit(
                        Kind::KeyChange,
                        Outcome::RevokedAll,
                        Some(&p.id),
                        serde_json::json!({
                            "operator": operator.person_id, "office": operator.office,
                            "registration": reg.id,
                        }),
                    )
                    .await;
                }
            }
        }
        let code = ActivationCode::generate();
        let link = LinkToken::generate();
        let expires_at = now + ACTIVATION_TTL_S;
        let ok = self
            .store
            .reissue_registration(
                &reg.id,
                &operator.person_id,
                insz.as_ref().map(Insz::as_str),
                person.as_ref().map(|p| p.id.as_str()),
                &code.hash(&reg.id),
                &LinkToken::hash_of(link.as_str()),
                expires_at,
            )
            .await?;
        if !ok {
            return Err(OfficeError::NotReissuable("voided"));
        }
        let reg = self.store.registration(&reg.id).await?.ok_or(OfficeError::NotFound)?;
        let url = self.send_link(&reg, &link).await?;
        self.audit(
            Kind::OfficeRegistration,
            Outcome::Reissued,
            reg.person_id.as_deref(),
            serde_json::json!({
                "operator": operator.person_id, "office": operator.office, "registration": reg.id,
                "revoked_keys": revoke_keys,
            }),
        )
        .await;
        Ok(Issued { registration: reg, code: Some(code), link: Some(url) })
    }

    /// The registration behind a link, if the link is ours (whatever its state).
    pub async fn by_link(&self, raw: &str) -> Result<Option<Registration>, OfficeError> {
        if raw.len() != 43 {
            return Ok(None);
        }
        Ok(self.store.registration_by_link(&LinkToken::hash_of(raw)).await?)
    }

    /// Checks the paper code for a link. Right: the registration opens (used once). Wrong: counts,
    /// and the fifth wrong code locks the link until the office re-issues.
    pub async fn open(&self, raw_link: &str, code: &str) -> Result<Opening, OfficeError> {
        let now = self.clock.now();
        let Some(reg) = self.by_link(raw_link).await? else { return Ok(Opening::Unusable) };
        match reg.status {
            RegistrationStatus::Issued if reg.expires_at > now => {}
            RegistrationStatus::Issued => return Ok(Opening::Expired),
            RegistrationStatus::Locked => return Ok(Opening::Locked),
            _ => return Ok(Opening::Unusable),
        }
        let right = match (ActivationCode::parse(code), &reg.code_hash) {
            (Some(c), Some(h)) => crypto::ct_eq(c.hash(&reg.id).as_bytes(), h.as_bytes()),
            _ => false,
        };
        if right {
            if self.store.open_registration(&reg.id, now).await? {
                self.audit(
                    Kind::Activation,
                    Outcome::CodeOk,
                    reg.person_id.as_deref(),
                    serde_json::json!({ "registration": reg.id, "office": reg.office }),
                )
                .await;
                let reg = self.store.registration(&reg.id).await?.ok_or(OfficeError::NotFound)?;
                return Ok(Opening::Opened(Box::new(reg)));
            }
            return Ok(Opening::Unusable);
        }
        let failures = self.store.registration_failure(&reg.id, MAX_CODE_FAILURES).await?;
        let locked = failures >= MAX_CODE_FAILURES;
        self.audit(
            if locked { Kind::Lockout } else { Kind::Activation },
            Outcome::Failed,
            reg.person_id.as_deref(),
            serde_json::json!({ "registration": reg.id, "office": reg.office }),
        )
        .await;
        Ok(if locked {
            Opening::Locked
        } else {
            Opening::Wrong { left: MAX_CODE_FAILURES - failures }
        })
    }

    /// The person finished: the registration is used up and its link forgotten.
    pub async fn finish(
        &self,
        registration_id: &str,
        person_id: &str,
    ) -> Result<bool, OfficeError> {
        let ok =
            self.store.activate_registration(registration_id, person_id, self.clock.now()).await?;
        if ok {
            self.audit(
                Kind::Activation,
                Outcome::Ok,
                Some(person_id),
                serde_json::json!({ "registration": registration_id }),
            )
            .await;
        }
        Ok(ok)
    }

    pub async fn purge(&self) -> Result<u64, OfficeError> {
        Ok(self.store.purge_registrations(self.clock.now(), KEEP_DONE_S).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_code_has_enough_entropy_and_no_lookalikes() {
        let bits = (CODE_ALPHABET.len() as f64).log2() * CODE_LEN as f64;
        assert!(bits >= 50.0, "{bits} bits");
        for c in [b'0', b'O', b'1', b'I', b'L'] {
            assert!(!CODE_ALPHABET.contains(&c));
        }
        let code = ActivationCode::generate();
        let g = code.grouped();
        assert_eq!(g.len(), 14);
        assert_eq!(ActivationCode::parse(&g.to_lowercase()), Some(code.clone()));
        assert_eq!(ActivationCode::parse(&g.replace('-', " ")), Some(code));
        assert!(ActivationCode::parse("ABCD-EFGH-IJK0").is_none());
        assert!(ActivationCode::parse("ABCD").is_none());
    }

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
