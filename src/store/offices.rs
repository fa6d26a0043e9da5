//! Registration offices: operators and registrations (SPEC §7).

use super::{col, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Connection;

#[derive(Debug, Clone)]
pub struct Operator {
    pub person_id: String,
    pub office: String,
}

/// Where a registration stands. Only `Issued` and `Opened` can still lead to an activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStatus {
    /// Filed with "no Bis number yet": no code until the office enters the Bis number.
    AwaitingBis,
    /// Code and link sent, not used yet.
    Issued,
    /// The code was entered: this registration is being activated in one browser.
    Opened,
    /// Too many wrong codes: only a re-issue opens it again.
    Locked,
    Activated,
    /// Replaced by a re-issue.
    Voided,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingBis => "awaiting_bis",
            Self::Issued => "issued",
            Self::Opened => "opened",
            Self::Locked => "locked",
            Self::Activated => "activated",
            Self::Voided => "voided",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "awaiting_bis" => Self::AwaitingBis,
            "issued" => Self::Issued,
            "opened" => Self::Opened,
            "locked" => Self::Locked,
            "activated" => Self::Activated,
            "voided" => Self::Voided,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Registration {
    pub id: String,
    pub office: String,
    pub operator_id: String,
    pub insz: Option<String>,
    pub person_id: Option<String>,
    pub bis_request_id: Option<String>,
    pub family_name: String,
    pub given_names: String,
    pub birthdate: String,
    pub nationality: String,
    pub document_type: String,
    pub document_hint: String,
    pub email: String,
    pub mobile: String,
    pub lang: crate::i18n::Lang,
    pub status: RegistrationStatus,
    pub code_hash: Option<String>,
    pub link_hash: Option<String>,
    pub failures: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub activated_at: Option<i64>,
}

const REG_COLS: &str = "id, office, operator_id, insz, person_id, bis_request_id, family_name, \
     given_names, birthdate, nationality, document_type, document_hint, email, mobile, lang, \
     status, code_hash, link_hash, failures, created_at, expires_at, activated_at";

impl Registration {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let status: String = col(r, "status")?;
        Ok(Self {
            id: col(r, "id")?,
            office: col(r, "office")?,
            operator_id: col(r, "operator_id")?,
            insz: col(r, "insz")?,
            person_id: col(r, "person_id")?,
            bis_request_id: col(r, "bis_request_id")?,
            family_name: col(r, "family_name")?,
            given_names: col(r, "given_names")?,
            birthdate: col(r, "birthdate")?,
            nationality: col(r, "nationality")?,
            document_type: col(r, "document_type")?,
            document_hint: col(r, "document_hint")?,
            email: col(r, "email")?,
            mobile: col(r, "mobile")?,
            lang: {
                let l: String = col(r, "lang")?;
                crate::i18n::Lang::parse(&l)
                    .ok_or_else(|| StoreError::Corrupt(format!("registration language {l}")))?
            },
            status: RegistrationStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("registration status {status}")))?,
            code_hash: col(r, "code_hash")?,
            link_hash: col(r, "link_hash")?,
            failures: col(r, "failures")?,
            created_at: col(r, "created_at")?,
            expires_at: col(r, "expires_at")?,
            activated_at: col(r, "activated_at")?,
        })
    }

    /// Still waiting for the person (not used up, voided or past its date).
    pub fn is_live(&self, now: i64) -> bool {
        matches!(
            self.status,
            RegistrationStatus::AwaitingBis
                | RegistrationStatus::Issued
                | RegistrationStatus::Opened
                | RegistrationStatus::Locked
        ) && self.expires_at > now
    }
}

impl Store {
    pub async fn upsert_operator(&self, person_id: &str, office: &str, now: i64) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("DELETE FROM operators WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO operators (person_id, office, created_at) VALUES ($1, $2, $3)")
            .bind(person_id)
            .bind(office)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn operator(&self, person_id: &str) -> Result<Option<Operator>> {
        let row = sqlx::query("SELECT person_id, office FROM operators WHERE person_id = $1")
            .bind(person_id)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?;
        row.map(|r| Ok(Operator { person_id: col(&r, "person_id")?, office: col(&r, "office")? }))
            .transpose()
    }

    pub async fn insert_registration(&self, r: &Registration) -> Result<()> {
        let sql = format!(
            "INSERT INTO registrations ({REG_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        );
        sqlx::query(&sql)
            .bind(&r.id)
            .bind(&r.office)
            .bind(&r.operator_id)
            .bind(&r.insz)
            .bind(&r.person_id)
            .bind(&r.bis_request_id)
            .bind(&r.family_name)
            .bind(&r.given_names)
            .bind(&r.birthdate)
            .bind(&r.nationality)
            .bind(&r.document_type)
            .bind(&r.document_hint)
            .bind(&r.email)
            .bind(&r.mobile)
            .bind(r.lang.as_str())
            .bind(r.status.as_str())
            .bind(&r.code_hash)
            .bind(&r.link_hash)
            .bind(r.failures)
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(r.activated_at)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(|e| StoreError::conflict_or(e, "a registration"))?;
        Ok(())
    }

    pub async fn registration(&self, id: &str) -> Result<Option<Registration>> {
        let sql = format!("SELECT {REG_COLS} FROM registrations WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *self.pool.get().await?).await?;
        row.as_ref().map(Registration::from_row).transpose()
    }

    pub async fn registration_by_link(&self, link_hash: &str) -> Result<Option<Registration>> {
        let sql = format!("SELECT {REG_COLS} FROM registrations WHERE link_hash = $1");
        let row =
            sqlx::query(&sql).bind(link_hash).fetch_optional(&mut *self.pool.get().await?).await?;
        row.as_ref().map(Registration::from_row).transpose()
    }

    /// Registrations of one office, newest first.
    pub async fn registrations_of_office(
        &self,
        office: &str,
        limit: i64,
    ) -> Result<Vec<Registration>> {
        let sql = format!(
            "SELECT {REG_COLS} FROM registrations WHERE office = $1 \
             ORDER BY created_at DESC, id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(office)
            .bind(limit)
            .fetch_all(&mut *self.pool.get().await?)
            .await?;
        rows.iter().map(Registration::from_row).collect()
    }

    /// Registrations for an INSZ, or (without one) for the same names and birth date.
    pub async fn registrations_like(
        &self,
        insz: Option<&str>,
        family_name: &str,
        birthdate: &str,
    ) -> Result<Vec<Registration>> {
        let rows = match insz {
            Some(i) => {
                let sql = format!("SELECT {REG_COLS} FROM registrations WHERE insz = $1");
                sqlx::query(&sql).bind(i).fetch_all(&mut *self.pool.get().await?).await?
            }
            None => {
                let sql = format!(
                    "SELECT {REG_COLS} FROM registrations WHERE insz IS NULL \
                     AND family_name = $1 AND birthdate = $2"
                );
                sqlx::query(&sql)
                    .bind(family_name)
                    .bind(birthdate)
                    .fetch_all(&mut *self.pool.get().await?)
                    .await?
            }
        };
        rows.iter().map(Registration::from_row).collect()
    }

    /// Counts a wrong code; locks the registration at `max`. Returns the new count.
    pub async fn registration_failure(&self, id: &str, max: i64) -> Result<i64> {
        sqlx::query(
            "UPDATE registrations SET failures = failures + 1, \
             status = CASE WHEN failures + 1 >= $2 THEN 'locked' ELSE status END \
             WHERE id = $1 AND status = 'issued'",
        )
        .bind(id)
        .bind(max)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(self.registration(id).await?.map_or(max, |r| r.failures))
    }

    /// Uses the code once: `issued` → `opened`, atomically; false if another request won.
    pub async fn open_registration(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE registrations SET status = 'opened', opened_at = $2, code_hash = NULL \
             WHERE id = $1 AND status = 'issued' AND expires_at > $2",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks an opened registration activated and forgets its link.
    pub async fn activate_registration(&self, id: &str, person_id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE registrations SET status = 'activated', activated_at = $2, person_id = $3, \
             link_hash = NULL WHERE id = $1 AND status = 'opened'",
        )
        .bind(id)
        .bind(now)
        .bind(person_id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A re-issue: new code and link hashes, a new expiry, failures reset; the old ones are void.
    #[allow(clippy::too_many_arguments)]
    pub async fn reissue_registration(
        &self,
        id: &str,
        operator_id: &str,
        insz: Option<&str>,
        person_id: Option<&str>,
        code_hash: &str,
        link_hash: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE registrations SET status = 'issued', operator_id = $2, \
             insz = COALESCE($3, insz), person_id = COALESCE($4, person_id), code_hash = $5, \
             link_hash = $6, failures = 0, expires_at = $7, opened_at = NULL \
             WHERE id = $1 AND status <> 'voided'",
        )
        .bind(id)
        .bind(operator_id)
        .bind(insz)
        .bind(person_id)
        .bind(code_hash)
        .bind(link_hash)
        .bind(expires_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Expired registrations and used-up codes are not kept (SPEC §7: only what is needed).
    pub async fn purge_registrations(&self, now: i64, keep_done_s: i64) -> Result<u64> {
        let a = sqlx::query(
            "DELETE FROM registrations WHERE expires_at < $1 AND status <> 'activated'",
        )
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await?
        .rows_affected();
        let b = sqlx::query(
            "DELETE FROM registrations WHERE status IN ('activated', 'voided') \
             AND COALESCE(activated_at, created_at) < $1",
        )
        .bind(now - keep_done_s)
        .execute(&mut *self.pool.get().await?)
        .await?
        .rows_affected();
        let c = sqlx::query(
            "DELETE FROM token_codes WHERE used_at IS NOT NULL AND used_at < $1 \
             OR key_id IN (SELECT id FROM keys WHERE status = 'revoked')",
        )
        .bind(now - keep_done_s)
        .execute(&mut *self.pool.get().await?)
        .await?
        .rows_affected();
        Ok(a + b + c)
    }
}
