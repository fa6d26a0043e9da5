//! Browser sessions: what the broker remembers about one browser between requests, stored
//! server-side (several replicas share them). The cookie carries only a random id; the database
//! keeps its hash.

use crate::assurance::{AssuranceLevel, Method};
use crate::crypto;
use crate::store::{SessionRow, Store, StoreError};
use serde::{Deserialize, Serialize};

/// A login that just succeeded, with its person when the login step read it already (a linked
/// eIDAS identity is read with its person in one query): what follows the login needs the
/// person next and need not read it again.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedIn {
    pub login: Login,
    pub person: Option<crate::store::Person>,
}

impl From<Login> for LoggedIn {
    fn from(login: Login) -> Self {
        Self { login, person: None }
    }
}

/// A completed login: who, when, how and how strongly. It is carried into codes and grants, so
/// every token says how its person logged in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Login {
    pub person_id: String,
    pub auth_time: i64,
    pub acr: AssuranceLevel,
    pub amr: Vec<String>,
    pub method: Method,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eidas_person_identifier: Option<String>,
    /// The member state that issued the wallet's PID (method `eudiw`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eudiw_issuing_country: Option<String>,
}

impl Login {
    /// The upstream service that vouched for this login, as policies see it.
    pub fn upstream(&self) -> Option<&'static str> {
        if self.amr.iter().any(|a| a == "fas") {
            Some("fas")
        } else if self.method == Method::Eidas {
            Some("eidas")
        } else if self.method == Method::Eudiw {
            Some("eudiw")
        } else {
            None
        }
    }
}

/// The first factor of a digital-key login passed; the second is awaited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyStep {
    pub account_id: String,
    pub person_id: String,
    pub username: String,
    pub at: i64,
    /// The open one-time challenge (an SMS code sent, a card position asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// The open security-key challenge (webauthn-rs state; server-side only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SessionData {
    /// The authorization request this browser is logging in for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_step: Option<KeyStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<crate::i18n::Lang>,
    /// An eIDAS identity waiting to be linked to a Bis number (first login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eidas_link: Option<EidasLink>,
    /// A federal login under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fas: Option<crate::fas::FasPending>,
    /// Keys being set up: at activation (from an office registration) or from `/account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrol: Option<Enrolment>,
    /// Where to go after a login made without an authorization request (e.g. `/office`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// The broker session (OIDC `sid`, SPEC §11): one per person logged in in this browser,
    /// the same for every app it logs in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<BrokerSession>,
}

/// The `sid` of a broker session and whose it is (a login of another person starts another).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BrokerSession {
    pub sid: String,
    pub person_id: String,
}

impl SessionData {
    /// A login of `person_id` joins the current broker session if it is that person's, else
    /// starts a new one.
    pub fn join_broker_session(&mut self, person_id: &str) {
        if self.sid.as_ref().is_none_or(|s| s.person_id != person_id) {
            let sid = crypto::random_token(16);
            self.sid = Some(BrokerSession { sid, person_id: person_id.into() });
        }
    }
}

/// Key enrolment under way in this browser.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Enrolment {
    /// The office registration being activated (`None` when adding a key from `/account`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_id: Option<String>,
    pub person_id: String,
    /// Set once the username and password are chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub at: i64,
    /// A TOTP key shown but not confirmed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_key: Option<String>,
    /// An SMS confirmation code sent (challenge id) and the masked number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_phone: Option<String>,
    /// A security-key registration under way (webauthn-rs state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<serde_json::Value>,
    /// Keys added in this enrolment, for the summary.
    #[serde(default)]
    pub added: Vec<Method>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EidasLink {
    pub identity: crate::linking::ForeignIdentity,
    pub level: AssuranceLevel,
    pub at: i64,
    /// Who vouched for the identity: the eIDAS node, or a wallet's PID.
    #[serde(default)]
    pub via: crate::linking::LinkVia,
}

#[derive(Debug, Clone)]
pub struct Session {
    /// The raw id (the cookie value); only its hash is stored.
    pub id: String,
    pub csrf: String,
    pub data: SessionData,
    pub expires_at: i64,
    /// The data as the database holds it (JSON): a save that would write the same data again
    /// and only move the idle expiry by less than [`EXPIRY_SLACK_S`] writes nothing. `None`:
    /// not in the database yet (its first save inserts it).
    stored: Option<String>,
}

/// How far a save may leave the idle expiry behind instead of writing an unchanged session
/// (issue #17: most steps of a login read the session and change nothing). The idle life of a
/// session is therefore between `session_ttl_s - EXPIRY_SLACK_S` and `session_ttl_s`.
pub const EXPIRY_SLACK_S: i64 = 60;

impl Session {
    pub fn id_hash(&self) -> String {
        crypto::token_hash(&self.id)
    }

    /// The row that stores this session with `data` (its JSON) under its current id.
    fn row(&self, data: String, now: i64, expires_at: i64) -> SessionRow {
        SessionRow {
            id_hash: self.id_hash(),
            csrf: self.csrf.clone(),
            data,
            person_id: self.data.login.as_ref().map(|l| l.person_id.clone()),
            created_at: now,
            expires_at,
        }
    }

    /// Constant-time check of a form's CSRF token.
    pub fn csrf_ok(&self, token: Option<&str>) -> bool {
        token.is_some_and(|t| crypto::ct_eq(t.as_bytes(), self.csrf.as_bytes()))
    }
}

#[derive(Clone, Debug)]
pub struct Sessions {
    store: Store,
    ttl_s: i64,
}

impl Sessions {
    pub fn new(store: Store, ttl_s: i64) -> Self {
        Self { store, ttl_s }
    }

    pub async fn load(&self, id: &str, now: i64) -> Result<Option<Session>, StoreError> {
        if id.len() != 43 {
            return Ok(None);
        }
        let Some(row) = self.store.session(&crypto::token_hash(id), now).await? else {
            return Ok(None);
        };
        // A row that does not parse is treated as no session, not as an error page.
        let data = serde_json::from_str(&row.data).unwrap_or_default();
        Ok(Some(Session {
            id: id.to_string(),
            csrf: row.csrf,
            data,
            expires_at: row.expires_at,
            stored: Some(row.data),
        }))
    }

    /// A new session, stored at once.
    pub async fn create(&self, data: SessionData, now: i64) -> Result<Session, StoreError> {
        let mut s = Self::unsaved(data, now);
        self.save(&mut s, now).await?;
        Ok(s)
    }

    /// A new session that is stored by its first save: a request that fills it in before
    /// saving (`/authorize`) writes it once instead of twice.
    pub fn unsaved(data: SessionData, now: i64) -> Session {
        Session {
            id: crypto::random_token(32),
            csrf: crypto::random_token(32),
            data,
            expires_at: now,
            stored: None,
        }
    }

    /// Saves the data and extends the idle expiry (a new session is inserted); writes nothing
    /// when the data is as stored and the expiry was extended less than [`EXPIRY_SLACK_S`] ago.
    pub async fn save(&self, s: &mut Session, now: i64) -> Result<(), StoreError> {
        let data = serde_json::to_string(&s.data).unwrap_or_default();
        let expires_at = now + self.ttl_s;
        let Some(stored) = &s.stored else {
            let row = s.row(data, now, expires_at);
            self.store.insert_session(&row).await?;
            s.expires_at = expires_at;
            s.stored = Some(row.data);
            return Ok(());
        };
        if data == *stored && expires_at - s.expires_at < EXPIRY_SLACK_S {
            return Ok(());
        }
        self.store
            .update_session(
                &s.id_hash(),
                &data,
                s.data.login.as_ref().map(|l| l.person_id.as_str()),
                expires_at,
            )
            .await?;
        s.expires_at = expires_at;
        s.stored = Some(data);
        Ok(())
    }

    /// Gives the session a fresh id and CSRF token (after a login: no session fixation) and
    /// saves its data with them: one statement, where a rename and a save were two.
    pub async fn renew_id(&self, s: &mut Session, now: i64) -> Result<(), StoreError> {
        if s.stored.is_none() {
            // Never stored: nothing to move, a fresh id is all it needs.
            s.id = crypto::random_token(32);
            s.csrf = crypto::random_token(32);
            return self.save(s, now).await;
        }
        let old = s.id_hash();
        let data = serde_json::to_string(&s.data).unwrap_or_default();
        let expires_at = now + self.ttl_s;
        s.id = crypto::random_token(32);
        s.csrf = crypto::random_token(32);
        let renamed = s.row(data, now, expires_at);
        self.store.rename_session(&old, &renamed).await?;
        s.expires_at = expires_at;
        s.stored = Some(renamed.data);
        Ok(())
    }

    pub async fn destroy(&self, s: &Session) -> Result<(), StoreError> {
        self.store.delete_session(&s.id_hash()).await
    }
}

/// What the browser's session cookie must become after a request.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionCookie {
    /// A new or renewed session id.
    Set(String),
    /// The session ended.
    Clear,
}

/// Why the browser session of a request could not be read or written (the session store
/// failed): the web layer shows its internal-error page.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("browser session: {0}")]
    Store(#[from] StoreError),
}

/// The browser session of one request: the use case behind the session cookie. It decides when
/// a session is created (the first form), saved, renewed (after a login: no session fixation)
/// or ended; the web layer asks it and writes the [`SessionCookie`] it answers with.
#[derive(Clone, Debug)]
pub struct Browser {
    sessions: Sessions,
    /// The request's one clock read.
    now: i64,
}

/// Where each request's [`Browser`] comes from: the web layer holds this, not the session
/// store itself.
#[derive(Clone, Debug)]
pub struct Browsers {
    sessions: Sessions,
}

impl Browsers {
    pub fn new(sessions: Sessions) -> Self {
        Self { sessions }
    }

    /// The live session the cookie names, if any, and the use case for the rest of the request.
    pub async fn open(
        &self,
        cookie: Option<&str>,
        now: i64,
    ) -> Result<(Browser, Option<Session>), SessionError> {
        let current = match cookie {
            Some(id) => self.sessions.load(id, now).await?,
            None => None,
        };
        Ok((Browser { sessions: self.sessions.clone(), now }, current))
    }
}

impl Browser {
    /// `current`, or a new session (forms need one for their CSRF token) and its cookie.
    pub async fn or_new(
        &self,
        current: Option<Session>,
    ) -> Result<(Session, Option<SessionCookie>), SessionError> {
        match current {
            Some(s) => Ok((s, None)),
            None => {
                let s = self.sessions.create(SessionData::default(), self.now).await?;
                let cookie = SessionCookie::Set(s.id.clone());
                Ok((s, Some(cookie)))
            }
        }
    }

    /// `current`, or a new session that its first [`Browser::save`] stores, and its cookie:
    /// for a request that always saves what it put in the session.
    pub fn or_unsaved(&self, current: Option<Session>) -> (Session, Option<SessionCookie>) {
        match current {
            Some(s) => (s, None),
            None => {
                let s = Sessions::unsaved(SessionData::default(), self.now);
                let cookie = SessionCookie::Set(s.id.clone());
                (s, Some(cookie))
            }
        }
    }

    /// Saves the session's data (and extends its life); stores a new session.
    pub async fn save(&self, s: &mut Session) -> Result<(), SessionError> {
        Ok(self.sessions.save(s, self.now).await?)
    }

    /// A fresh id and CSRF token after a login, the session's data saved with them; the
    /// cookie follows.
    pub async fn renew(&self, s: &mut Session) -> Result<SessionCookie, SessionError> {
        self.sessions.renew_id(s, self.now).await?;
        Ok(SessionCookie::Set(s.id.clone()))
    }

    /// Ends the session, if there is one; the cookie is cleared either way.
    pub async fn end(&self, current: Option<Session>) -> Result<SessionCookie, SessionError> {
        if let Some(s) = current {
            self.sessions.destroy(&s).await?;
        }
        Ok(SessionCookie::Clear)
    }

    /// Keeps a language picked on a page in the session.
    pub async fn keep_language(
        &self,
        s: &mut Session,
        lang: crate::i18n::Lang,
    ) -> Result<(), SessionError> {
        s.data.lang = Some(lang);
        self.save(s).await
    }
}
