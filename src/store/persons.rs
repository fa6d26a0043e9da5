//! Persons, their digital-key accounts and keys, and linked external identities.

use super::{col, Result, Store, StoreError};
use crate::assurance::Method;
use crate::identity::Insz;
use sqlx::any::AnyRow;

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: String,
    pub insz: Insz,
    pub given_name: String,
    pub family_name: String,
    pub birthdate: Option<String>,
    pub created_at: i64,
}

impl Person {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let insz: String = col(r, "insz")?;
        Ok(Self {
            id: col(r, "id")?,
            insz: Insz::parse(&insz).map_err(|e| StoreError::Corrupt(format!("insz: {e}")))?,
            given_name: col(r, "given_name")?,
            family_name: col(r, "family_name")?,
            birthdate: col(r, "birthdate")?,
            created_at: col(r, "created_at")?,
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub person_id: String,
    pub username: String,
    pub password_hash: String,
}

/// Where a key stands. Only active keys log in; a pending one waits for its first code (TOTP),
/// for the code sent to its number (SMS) or to be shown (token card).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Pending,
    Active,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Revoked].into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One second factor of an account. Its kind is the login method it proves (one of
/// [`Method::KEY_FACTORS`]).
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub account_id: String,
    pub kind: Method,
    pub status: KeyStatus,
    pub secret_enc: Option<Vec<u8>>,
    pub phone: Option<String>,
    pub data: Option<String>,
    pub last_step: i64,
    pub created_at: i64,
}

impl KeyRow {
    /// Whether this key logs in as `kind` now.
    pub fn is_active(&self, kind: Method) -> bool {
        self.kind == kind && self.status == KeyStatus::Active
    }

    fn from_row(r: &AnyRow) -> Result<Self> {
        let kind: String = col(r, "kind")?;
        let status: String = col(r, "status")?;
        Ok(Self {
            id: col(r, "id")?,
            account_id: col(r, "account_id")?,
            kind: Method::parse(&kind)
                .filter(|m| Method::KEY_FACTORS.contains(m))
                .ok_or_else(|| StoreError::Corrupt(format!("key kind {kind}")))?,
            status: KeyStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("key status {status}")))?,
            secret_enc: col(r, "secret_enc")?,
            phone: col(r, "phone")?,
            data: col(r, "data")?,
            last_step: col(r, "last_step")?,
            created_at: col(r, "created_at")?,
        })
    }
}

const PERSON_COLS: &str = "id, insz, given_name, family_name, birthdate, created_at";
const ACCOUNT_COLS: &str = "id, person_id, username, password_hash";
const KEY_COLS: &str =
    "id, account_id, kind, status, secret_enc, phone, data, last_step, created_at";

impl Store {
    pub async fn insert_person(&self, p: &Person) -> Result<()> {
        sqlx::query(
            "INSERT INTO persons (id, insz, given_name, family_name, birthdate, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.id)
        .bind(p.insz.as_str())
        .bind(&p.given_name)
        .bind(&p.family_name)
        .bind(&p.birthdate)
        .bind(p.created_at)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(|e| StoreError::conflict_or(e, "a person with this INSZ"))?;
        Ok(())
    }

    pub async fn person(&self, id: &str) -> Result<Option<Person>> {
        let sql = format!("SELECT {PERSON_COLS} FROM persons WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&mut *self.read.get().await?).await?;
        row.as_ref().map(Person::from_row).transpose()
    }

    /// The person an external identity is linked to, read with the link in one query (the
    /// login's next step needs the person).
    pub async fn person_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<Person>> {
        let sql = format!(
            "SELECT {PERSON_COLS} FROM persons WHERE id = \
             (SELECT person_id FROM identities WHERE provider = $1 AND subject = $2)"
        );
        let row = sqlx::query(&sql)
            .bind(provider)
            .bind(subject)
            .fetch_optional(&mut *self.read.get().await?)
            .await?;
        row.as_ref().map(Person::from_row).transpose()
    }

    pub async fn person_by_insz(&self, insz: &Insz) -> Result<Option<Person>> {
        let sql = format!("SELECT {PERSON_COLS} FROM persons WHERE insz = $1");
        let row = sqlx::query(&sql)
            .bind(insz.as_str())
            .fetch_optional(&mut *self.read.get().await?)
            .await?;
        row.as_ref().map(Person::from_row).transpose()
    }

    /// The person with this INSZ, created with these names when the broker does not know them
    /// yet (eID and FAS logins, SPEC §6). Safe when two logins race: the loser reads the winner's.
    pub async fn person_or_create(
        &self,
        insz: &Insz,
        given_name: &str,
        family_name: &str,
        birthdate: Option<&str>,
        now: i64,
    ) -> Result<Person> {
        if let Some(p) = self.person_by_insz(insz).await? {
            return Ok(p);
        }
        let p = Person {
            id: crate::crypto::random_token(16),
            insz: insz.clone(),
            given_name: given_name.to_string(),
            family_name: family_name.to_string(),
            birthdate: birthdate.map(str::to_string),
            created_at: now,
        };
        match self.insert_person(&p).await {
            Ok(()) => Ok(p),
            Err(StoreError::Conflict(_)) => self
                .person_by_insz(insz)
                .await?
                .ok_or_else(|| StoreError::Corrupt("person vanished after a conflict".into())),
            Err(e) => Err(e),
        }
    }

    pub async fn insert_account(&self, a: &Account, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO accounts (id, person_id, username, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&a.id)
        .bind(&a.person_id)
        .bind(&a.username)
        .bind(&a.password_hash)
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(|e| StoreError::conflict_or(e, "an account with this username or person"))?;
        Ok(())
    }

    pub async fn account_by_username(&self, username: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE username = $1");
        Ok(sqlx::query_as(&sql).bind(username).fetch_optional(&mut *self.pool.get().await?).await?)
    }

    pub async fn account_by_person(&self, person_id: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE person_id = $1");
        Ok(sqlx::query_as(&sql)
            .bind(person_id)
            .fetch_optional(&mut *self.pool.get().await?)
            .await?)
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1");
        Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&mut *self.pool.get().await?).await?)
    }

    pub async fn insert_key(&self, k: &KeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO keys (id, account_id, kind, status, secret_enc, phone, data, last_step, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&k.id)
        .bind(&k.account_id)
        .bind(k.kind.as_str())
        .bind(k.status.as_str())
        .bind(&k.secret_enc)
        .bind(&k.phone)
        .bind(&k.data)
        .bind(k.last_step)
        .bind(k.created_at)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(())
    }

    /// Every key of an account that is not revoked (active and pending), oldest first.
    pub async fn keys_of_account(&self, account_id: &str) -> Result<Vec<KeyRow>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM keys WHERE account_id = $1 AND status <> 'revoked' \
             ORDER BY created_at, id"
        );
        let rows =
            sqlx::query(&sql).bind(account_id).fetch_all(&mut *self.pool.get().await?).await?;
        rows.iter().map(KeyRow::from_row).collect()
    }

    /// Accepts TOTP time step `step` for a key only if no equal or later step was accepted
    /// before: one atomic compare-and-set, so two concurrent requests cannot both win.
    pub async fn advance_totp_step(&self, key_id: &str, step: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE keys SET last_step = $1 WHERE id = $2 AND status = 'active' AND last_step < $1",
        )
        .bind(step)
        .bind(key_id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A pending key becomes active (TOTP confirmed with a first code, phone confirmed by SMS).
    pub async fn activate_key(&self, key_id: &str, account_id: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE keys SET status = 'active' WHERE id = $1 AND account_id = $2 AND status = 'pending'",
        )
        .bind(key_id)
        .bind(account_id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes one key of an account, unless it is the account's last active key.
    pub async fn revoke_key_unless_last(
        &self,
        key_id: &str,
        account_id: &str,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE keys SET status = 'revoked', revoked_at = $1 \
             WHERE id = $2 AND account_id = $3 AND status <> 'revoked' \
             AND (status <> 'active' OR (SELECT COUNT(*) FROM keys k2 \
                  WHERE k2.account_id = $3 AND k2.status = 'active') > 1)",
        )
        .bind(now)
        .bind(key_id)
        .bind(account_id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Sets a new username and password on an account (re-activation after a lost device).
    pub async fn update_account(&self, a: &Account) -> Result<()> {
        sqlx::query("UPDATE accounts SET username = $1, password_hash = $2 WHERE id = $3")
            .bind(&a.username)
            .bind(&a.password_hash)
            .bind(&a.id)
            .execute(&mut *self.pool.get().await?)
            .await
            .map_err(|e| StoreError::conflict_or(e, "an account with this username"))?;
        Ok(())
    }

    /// Stores a key's kind-specific data (a WebAuthn credential whose counter moved).
    pub async fn update_key_data(&self, key_id: &str, data: &str) -> Result<()> {
        sqlx::query("UPDATE keys SET data = $1 WHERE id = $2")
            .bind(data)
            .bind(key_id)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }

    pub async fn revoke_keys_of_account(&self, account_id: &str, now: i64) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE keys SET status = 'revoked', revoked_at = $1 \
             WHERE account_id = $2 AND status <> 'revoked'",
        )
        .bind(now)
        .bind(account_id)
        .execute(&mut *self.pool.get().await?)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        person_id: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO identities (provider, subject, person_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(provider)
        .bind(subject)
        .bind(person_id)
        .bind(now)
        .execute(&mut *self.pool.get().await?)
        .await
        .map_err(|e| StoreError::conflict_or(e, "this identity link"))?;
        Ok(())
    }

    pub async fn unlink_identity(&self, provider: &str, subject: &str) -> Result<()> {
        sqlx::query("DELETE FROM identities WHERE provider = $1 AND subject = $2")
            .bind(provider)
            .bind(subject)
            .execute(&mut *self.pool.get().await?)
            .await?;
        Ok(())
    }
}
