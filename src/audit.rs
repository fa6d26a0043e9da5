//! The audit trail (SPEC §9): who did what, when, how and how strongly — never secrets. Every
//! module records through [`Audit::record`], the one writer, which also feeds the metrics (so
//! what is counted is what is recorded). Kinds, outcomes and methods are enums: the strings in
//! the `audit` table and in `audit export` are theirs (`as_str`), snake_case throughout.

use crate::assurance::{AssuranceLevel, Method};
use crate::store::{AuditRow, Store};
use std::sync::Arc;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $s),+ } }
            pub fn parse(s: &str) -> Option<Self> { Self::ALL.iter().copied().find(|k| k.as_str() == s) }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

string_enum!(
    /// What happened.
    Kind {
        Login => "login",
        /// An account or a link locked after too many failures.
        Lockout => "lockout",
        Logout => "logout",
        /// First-login linking of a foreign identity to a Bis number.
        Link => "link",
        BisRequest => "bis_request",
        KeyChange => "key_change",
        Activation => "activation",
        OfficeRegistration => "office_registration",
        OfficeOperator => "office_operator",
        /// Tokens issued for a code.
        TokenIssued => "token_issued",
        /// A redeemed code presented again: what it issued is revoked.
        CodeReuse => "code_reuse",
        /// A rotated refresh token presented again: its family is revoked.
        RefreshReuse => "refresh_reuse",
    }
);

string_enum!(
    /// How it ended.
    Outcome {
        Ok => "ok",
        Failed => "failed",
        Refused => "refused",
        Revoked => "revoked",
        Added => "added",
        Removed => "removed",
        AccountSet => "account_set",
        RevokedAll => "revoked_all",
        Issued => "issued",
        BisRequested => "bis_requested",
        Reissued => "reissued",
        CodeOk => "code_ok",
    }
);

/// The factor an event is about: a login method, or the password of a digital key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Factor {
    Password,
    Method(Method),
}

impl Factor {
    pub fn as_str(self) -> &'static str {
        match self {
            Factor::Password => "password",
            Factor::Method(m) => m.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "password" {
            Some(Factor::Password)
        } else {
            Method::parse(s).map(Factor::Method)
        }
    }
}

impl From<Method> for Factor {
    fn from(m: Method) -> Self {
        Factor::Method(m)
    }
}

/// One audit event, as the modules describe it.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub outcome: Outcome,
    pub person_id: Option<String>,
    pub client_id: Option<String>,
    pub factor: Option<Factor>,
    pub level: Option<AssuranceLevel>,
    pub address: Option<String>,
    /// Extra facts as JSON (never secrets).
    pub detail: serde_json::Value,
}

impl Event {
    pub fn new(kind: Kind, outcome: Outcome) -> Self {
        Self {
            kind,
            outcome,
            person_id: None,
            client_id: None,
            factor: None,
            level: None,
            address: None,
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn person(mut self, id: impl Into<String>) -> Self {
        self.person_id = Some(id.into());
        self
    }

    pub fn person_opt(mut self, id: Option<&str>) -> Self {
        self.person_id = id.map(str::to_string);
        self
    }

    pub fn client(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    pub fn client_opt(mut self, id: Option<&str>) -> Self {
        self.client_id = id.map(str::to_string);
        self
    }

    pub fn factor(mut self, f: impl Into<Factor>) -> Self {
        self.factor = Some(f.into());
        self
    }

    pub fn level(mut self, l: AssuranceLevel) -> Self {
        self.level = Some(l);
        self
    }

    pub fn address(mut self, a: &str) -> Self {
        self.address = Some(a.to_string());
        self
    }

    pub fn detail(mut self, d: serde_json::Value) -> Self {
        self.detail = d;
        self
    }
}

/// Sees every event recorded (the metrics).
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// The one writer of the audit trail.
#[derive(Clone)]
pub struct Audit {
    store: Store,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Audit")
    }
}

impl Audit {
    pub fn new(store: Store) -> Self {
        Self { store, observer: None }
    }

    /// This writer, with `observer` told of every event (clones share it).
    pub fn observed_by(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The stored form of an event at `now`, with a new id.
    pub fn row(e: &Event, now: i64) -> AuditRow {
        AuditRow {
            id: crate::crypto::random_id(),
            at: now,
            kind: e.kind.as_str().to_string(),
            outcome: e.outcome.as_str().to_string(),
            person_id: e.person_id.clone(),
            client_id: e.client_id.clone(),
            method: e.factor.map(|f| f.as_str().to_string()),
            acr: e.level.map(|l| l.uri().to_string()),
            address: e.address.clone(),
            detail: e.detail.to_string(),
        }
    }

    /// Tells the observer (metrics) of an event whose row a statement of its own stores: a
    /// code's exchange writes its row with the redemption ([`crate::store::Store::redeem_code`]).
    pub fn observe(&self, e: &Event) {
        if let Some(o) = &self.observer {
            o(e);
        }
    }

    /// Records an event at `now`. A failure to store is logged, never shown to the person: the
    /// action it describes has already happened.
    pub async fn record(&self, e: Event, now: i64) {
        self.observe(&e);
        self.store(&Self::row(&e, now)).await;
    }

    /// Stores a row made by [`Audit::row`] (its event observed already); a failure is logged.
    pub async fn store(&self, row: &AuditRow) {
        if let Err(err) = self.store.insert_audit(row).await {
            tracing::error!(error = %err, kind = %row.kind, "audit event could not be stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(*k));
            assert!(k.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(*o));
        }
        assert_eq!(Factor::parse("password"), Some(Factor::Password));
        assert_eq!(Factor::parse("totp"), Some(Factor::Method(Method::Totp)));
    }
}
