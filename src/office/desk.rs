//! The operator's use cases at the desk (SPEC §7): the office's live registrations, registering
//! a person (a code on paper and a link by mail, or a Bis request first), one registration, and
//! re-issuing (new code and link; with the Bis number once known; revoking the person's keys
//! after a lost device). An operator sees and acts on their own office's registrations only.

use super::{ActivationCode, Issued, LinkToken, OfficeError, Offices, ACTIVATION_TTL_S};
use super::{FieldError, NewRegistration, RegistrationForm};
use crate::audit::{Kind, Outcome};
use crate::crypto;
use crate::identity::Insz;
use crate::store::{Operator, OutboxMessage, Registration, RegistrationStatus, StoreError};

/// Registrations the office's list shows at most.
const LIST_LIMIT: i64 = 200;

/// The answer to the office form.
#[derive(Debug)]
pub enum Registered {
    /// Filed: the code to print (or the Bis request filed).
    Issued(Box<Issued>),
    /// Fields that break a rule, every one of them.
    Invalid(Vec<FieldError>),
    /// A live registration exists for this person (SPEC §7): its id when it is this office's
    /// (another office's is not shown).
    Duplicate { own: Option<String> },
}

/// The answer to a re-issue.
#[derive(Debug)]
pub enum Reissued {
    Issued(Box<Issued>),
    /// The Bis number typed is not a valid number: the message key of the rule it breaks.
    InvalidInsz(&'static str),
    /// Not a registration of this office (or none).
    NotFound,
    /// Still without a Bis number: one must be entered.
    BisMissing,
    /// Replaced by another registration.
    Voided,
    /// The Bis number belongs to another live registration.
    Duplicate,
}

fn audit_detail(operator: &Operator, registration_id: &str) -> serde_json::Value {
    serde_json::json!({
        "operator": operator.person_id, "office": operator.office, "registration": registration_id,
    })
}

impl Offices {
    /// The office's registrations still waiting for their person, newest first.
    pub async fn live_registrations(
        &self,
        operator: &Operator,
        now: i64,
    ) -> Result<Vec<Registration>, OfficeError> {
        let all = self.store.registrations_of_office(&operator.office, LIST_LIMIT).await?;
        Ok(all.into_iter().filter(|r| r.is_live(now)).collect())
    }

    /// The office form as posted: checked against every rule, then [`Offices::register`].
    pub async fn register_from_form(
        &self,
        operator: &Operator,
        form: &RegistrationForm,
        now: i64,
    ) -> Result<Registered, OfficeError> {
        let today = crate::clock::to_utc(now).date_naive();
        let new = match form.parse(today) {
            Ok(new) => new,
            Err(errors) => return Ok(Registered::Invalid(errors)),
        };
        match self.register(operator, new, now).await {
            Ok(issued) => Ok(Registered::Issued(Box::new(issued))),
            Err(OfficeError::Duplicate { existing }) => {
                let own = self.registration(operator, &existing).await?.map(|r| r.id);
                Ok(Registered::Duplicate { own })
            }
            Err(e) => Err(e),
        }
    }

    /// Registers a person at an operator's office: refuses a second live registration, files a
    /// Bis request when asked, and otherwise issues a code and sends the link.
    pub async fn register(
        &self,
        operator: &Operator,
        new: NewRegistration,
        now: i64,
    ) -> Result<Issued, OfficeError> {
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
            lang: new.lang,
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
            Some(l) => Some(self.send_link(&reg, l, now).await?),
            None => None,
        };
        self.audit(
            Kind::OfficeRegistration,
            if code.is_some() { Outcome::Issued } else { Outcome::BisRequested },
            person_id.as_deref(),
            audit_detail(operator, &id),
            now,
        )
        .await;
        Ok(Issued { registration: reg, code, link: link_url })
    }

    /// Mails the activation link, in the person's language.
    async fn send_link(
        &self,
        reg: &Registration,
        link: &LinkToken,
        now: i64,
    ) -> Result<String, OfficeError> {
        let tr = crate::i18n::Tr::new(reg.lang);
        let url = self.link_url(link);
        let until = tr.date(reg.expires_at);
        self.store
            .enqueue(&OutboxMessage {
                id: crypto::random_id(),
                channel: "mail".into(),
                recipient: reg.email.clone(),
                subject: Some(tr.t("activation-mail-subject")),
                body: tr.tn(
                    "activation-mail-body",
                    &[("name", &reg.given_names), ("link", &url), ("until", &until)],
                ),
                created_at: now,
                attempts: 0,
                sent_at: None,
            })
            .await?;
        Ok(url)
    }

    /// A registration of the operator's own office; another office's is `None` as well (never
    /// shown, not even that it exists).
    pub async fn registration(
        &self,
        operator: &Operator,
        id: &str,
    ) -> Result<Option<Registration>, OfficeError> {
        Ok(self.store.registration(id).await?.filter(|r| r.office == operator.office))
    }

    /// New code and link (the old ones stop working), a new 14 days. With `insz` (as typed) it
    /// completes a registration that was waiting for its Bis number. With `revoke_keys` it also
    /// revokes every key of the person (a lost device).
    pub async fn reissue(
        &self,
        operator: &Operator,
        id: &str,
        insz: Option<&str>,
        revoke_keys: bool,
        now: i64,
    ) -> Result<Reissued, OfficeError> {
        let typed = match insz.map(str::trim).filter(|s| !s.is_empty()).map(Insz::parse) {
            Some(Ok(i)) => Some(i),
            Some(Err(e)) => return Ok(Reissued::InvalidInsz(e.message_key())),
            None => None,
        };
        let Some(reg) = self.registration(operator, id).await? else {
            return Ok(Reissued::NotFound);
        };
        if reg.status == RegistrationStatus::Voided {
            return Ok(Reissued::Voided);
        }
        let insz = match (reg.insz.as_deref(), typed) {
            (Some(existing), _) => {
                Insz::parse(existing).map_err(|e| StoreError::Corrupt(format!("insz: {e}")))?
            }
            (None, Some(new)) => {
                let others = self.store.registrations_like(Some(new.as_str()), "", "").await?;
                if others.iter().any(|r| r.is_live(now) && r.id != reg.id) {
                    return Ok(Reissued::Duplicate);
                }
                new
            }
            (None, None) => return Ok(Reissued::BisMissing),
        };
        let person = self
            .store
            .person_or_create(&insz, &reg.given_names, &reg.family_name, Some(&reg.birthdate), now)
            .await?;
        if revoke_keys {
            if let Some(acct) = self.store.account_by_person(&person.id).await? {
                self.store.revoke_keys_of_account(&acct.id, now).await?;
                crate::oidc::backchannel::end_person(&self.store, &person.id, now).await?;
                let detail = audit_detail(operator, &reg.id);
                self.audit(Kind::KeyChange, Outcome::RevokedAll, Some(&person.id), detail, now)
                    .await;
            }
        }
        let code = ActivationCode::generate();
        let link = LinkToken::generate();
        let reissued = self
            .store
            .reissue_registration(
                &reg.id,
                &operator.person_id,
                Some(insz.as_str()),
                Some(&person.id),
                &code.hash(&reg.id),
                &LinkToken::hash_of(link.as_str()),
                now + ACTIVATION_TTL_S,
            )
            .await?;
        if !reissued {
            return Ok(Reissued::Voided);
        }
        let Some(reg) = self.store.registration(&reg.id).await? else {
            return Ok(Reissued::NotFound);
        };
        let url = self.send_link(&reg, &link, now).await?;
        let mut detail = audit_detail(operator, &reg.id);
        detail["revoked_keys"] = revoke_keys.into();
        self.audit(
            Kind::OfficeRegistration,
            Outcome::Reissued,
            reg.person_id.as_deref(),
            detail,
            now,
        )
        .await;
        let issued = Issued { registration: reg, code: Some(code), link: Some(url) };
        Ok(Reissued::Issued(Box::new(issued)))
    }
}
