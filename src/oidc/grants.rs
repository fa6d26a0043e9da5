//! A person's view of the apps that hold their tokens (`/account/apps`, SPEC §11): the live
//! grants per app, every token issued in the last 90 days, and revoking one app alone.

use super::claims::GrantDetails;
use super::{OidcError, Provider};
use crate::assurance::AssuranceLevel;
use crate::audit::{Event, Kind, Outcome};
use crate::session::Login;
use crate::store::GrantScope;

/// How far back the page lists token issuances.
pub const HISTORY_S: i64 = 90 * 86_400;

/// An app holding at least one live grant for the person.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveApp {
    pub client_id: String,
    /// The client's `--name`, if it registered one.
    pub name: Option<String>,
    /// Its oldest live grant's start.
    pub since: i64,
    pub last_token_at: Option<i64>,
    /// The level of the login behind its newest grant.
    pub level: Option<AssuranceLevel>,
}

/// The tokens issued to one app in the last 90 days, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AppHistory {
    pub client_id: String,
    pub name: Option<String>,
    pub issued: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AppsView {
    pub live: Vec<LiveApp>,
    pub history: Vec<AppHistory>,
}

/// The answer to "revoke this app".
#[derive(Debug, Clone, PartialEq)]
pub enum AppRevoked {
    /// Its grants for this person ended; its back-channel logout is queued.
    Revoked,
    /// The person has no live grant with that app (another person's app included).
    NotFound,
}

impl Provider {
    /// The person's apps: live grants and the last 90 days of issuances.
    pub async fn apps_view(&self, login: &Login, now: i64) -> Result<AppsView, OidcError> {
        let person = &login.person_id;
        let mut live: Vec<LiveApp> = Vec::new();
        for g in self.store.live_grants_of_person(person, now).await? {
            let level = serde_json::from_str::<GrantDetails>(&g.details).ok().map(|d| d.login.acr);
            match live.iter_mut().find(|a| a.client_id == g.client_id) {
                Some(a) => {
                    a.last_token_at = a.last_token_at.max(g.last_token_at);
                    a.level = level.or(a.level);
                }
                None => live.push(LiveApp {
                    client_id: g.client_id,
                    name: g.name,
                    since: g.created_at,
                    last_token_at: g.last_token_at,
                    level,
                }),
            }
        }
        let mut history: Vec<AppHistory> = Vec::new();
        for i in self.store.issuances_of_person(person, now - HISTORY_S).await? {
            match history.iter_mut().find(|h| h.client_id == i.client_id) {
                Some(h) => h.issued.push(i.created_at),
                None => {
                    let name = self.store.client_app(&i.client_id).await?.name;
                    history.push(AppHistory {
                        client_id: i.client_id,
                        name,
                        issued: vec![i.created_at],
                    });
                }
            }
        }
        Ok(AppsView { live, history })
    }

    /// Ends one app's grants for this person: its tokens are revoked and its back-channel
    /// logout queued; the other apps keep theirs.
    pub async fn revoke_app(
        &self,
        login: &Login,
        client_id: &str,
        now: i64,
    ) -> Result<AppRevoked, OidcError> {
        let person_id = &login.person_id;
        let holds = self
            .store
            .live_grants_of_person(person_id, now)
            .await?
            .iter()
            .any(|g| g.client_id == client_id);
        if !holds {
            return Ok(AppRevoked::NotFound);
        }
        super::backchannel::end(&self.store, GrantScope::App { person_id, client_id }, now).await?;
        self.audit
            .record(
                Event::new(Kind::Logout, Outcome::Revoked)
                    .person(person_id)
                    .client(client_id)
                    .detail(serde_json::json!({ "app_revoked": true })),
                now,
            )
            .await;
        Ok(AppRevoked::Revoked)
    }
}
