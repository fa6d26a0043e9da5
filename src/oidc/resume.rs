//! What happens after any login (key, eID, eIDAS, FAS) and at `/authorize` with the session's
//! login: the one place that asks the policy, fetches the CoBRHA facts, issues the code, keeps
//! the request for a step-up or tells the client why not. The web layer renders [`Resume`].

use super::authorize::{Access, Answering, AuthRequest, Next};
use super::{AuthorizeError, Provider};
use crate::assurance::AssuranceLevel;
use crate::audit::{Audit, Event, Kind, Outcome};
use crate::policy::Allowed;
use crate::policy::Subject;
use crate::session::{LoggedIn, Login, SessionData};
use crate::store::Person;

/// Why a request is resumed: at `/authorize` (the session's login, if any, and its person read
/// from the store), or right after a login (whose person the login step may have read already).
enum Trigger {
    Authorize,
    Login { person: Option<Person> },
}

/// Where the browser goes next.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// The request is answered: to the client's redirect URI with the code.
    Code { url: String },
    /// No login yet, or not enough for this client: the request waits in the session and the
    /// person picks a method that would do (the chooser shows only those).
    Choose,
    /// The client is told why not at its redirect URI (`login_required`,
    /// `unmet_authentication_requirements`).
    ErrorRedirect { url: String },
    /// A registry the client's policy needs could not be asked: the person is told, and the link
    /// back carries `error=temporarily_unavailable` and the request's `state`.
    Unavailable { back: String },
    /// No request was waiting: a page of the broker itself (`/account`, `/office`).
    Return { to: String },
}

impl Provider {
    /// The methods this browser may use now (the chooser, the key code page).
    pub async fn allowed(
        &self,
        session: &SessionData,
        now: i64,
    ) -> Result<Allowed, AuthorizeError> {
        let Some((req, access)) = self.pending_access(session, now).await? else {
            // The broker's own pages (`/office`, adding a key) need at least substantial.
            let min = session.return_to.as_ref().map(|_| AssuranceLevel::Substantial);
            return Ok(Allowed {
                client: None,
                level: None,
                reasons: Vec::new(),
                methods: self.offered(min).iter().map(|c| c.method).collect(),
                held_back_reason: "policy-level-substantial",
            });
        };
        let (reasons, methods) = match access {
            Access::Answer => {
                (Vec::new(), self.offered(req.asked_level).iter().map(|c| c.method).collect())
            }
            Access::StepUp { reasons, methods } => {
                (reasons, methods.iter().map(|c| c.method).collect())
            }
            Access::Deny { reasons, .. } => (reasons, Vec::new()),
        };
        Ok(Allowed {
            client: Some(req.client_id.clone()),
            level: Some(req.min_level).filter(|l| *l > AssuranceLevel::Low),
            reasons,
            methods,
            held_back_reason: "policy-no-sms-token",
        })
    }

    /// The lowest level of `method` the waiting request's policy accepts (the level to ask an
    /// upstream for); low without a request; `None` when the policy accepts no login by it.
    pub async fn lowest_level_for(
        &self,
        session: &SessionData,
        method: crate::assurance::Method,
        now: i64,
    ) -> Result<Option<AssuranceLevel>, AuthorizeError> {
        let req = match &session.pending {
            Some(id) => self.load_pending(id, now).await?,
            None => None,
        };
        let Some(req) = req else { return Ok(Some(AssuranceLevel::Low)) };
        let offered: Vec<_> =
            self.offered(req.asked_level).into_iter().filter(|c| c.method == method).collect();
        let decision = self.policies.decide(
            &req.policy,
            &req.client_id,
            &Subject::anyone(),
            None,
            &offered,
            now,
        )?;
        Ok(match decision {
            crate::policy::Decision::StepUp { methods, .. } => {
                methods.iter().map(|c| c.level).min()
            }
            _ => None,
        })
    }

    /// `/authorize` with a validated request: answer from the session's login if the policy
    /// allows it (never for `prompt=login`), otherwise ask for a login or tell the client.
    pub async fn authorize(
        &self,
        session: &mut SessionData,
        req: &AuthRequest,
        now: i64,
    ) -> Result<Resume, AuthorizeError> {
        self.resume(session, None, req, &mut None, Trigger::Authorize, now).await
    }

    /// A login just succeeded: it becomes the session's login, is audited, and answers the
    /// waiting request (or returns the person to the broker page they came from).
    pub async fn after_login(
        &self,
        session: &mut SessionData,
        logged_in: LoggedIn,
        address: &str,
        now: i64,
    ) -> Result<Resume, AuthorizeError> {
        let LoggedIn { login, person } = logged_in;
        session.key_step = None;
        session.join_broker_session(&login.person_id);
        session.login = Some(login.clone());
        let pending = match session.pending.clone() {
            Some(id) => self.load_pending(&id, now).await?.map(|r| (id, r)),
            None => None,
        };
        let event = Event::new(Kind::Login, Outcome::Ok)
            .person(&login.person_id)
            .client_opt(pending.as_ref().map(|(_, r)| r.client_id.as_str()))
            .factor(login.method)
            .level(login.acr)
            .address(address);
        self.audit.observe(&event);
        // Written with the code when the login answers the request at once; else here, after
        // whatever the request led to (an error included).
        let mut login_audit = Some(Audit::row(&event, now));
        let resume = match pending {
            Some((id, req)) => {
                let trigger = Trigger::Login { person };
                self.resume(session, Some(id), &req, &mut login_audit, trigger, now).await
            }
            None => {
                Ok(Resume::Return { to: session.return_to.take().unwrap_or("/account".into()) })
            }
        };
        if let Some(row) = login_audit {
            self.audit.store(&row).await;
        }
        resume
    }

    /// The waiting request of this session and what the policy says of the session's login for
    /// it: the reasons a step-up is needed and the methods that would do (for the chooser and
    /// the code page).
    pub async fn pending_access(
        &self,
        session: &SessionData,
        now: i64,
    ) -> Result<Option<(AuthRequest, Access)>, AuthorizeError> {
        let Some(id) = &session.pending else { return Ok(None) };
        let Some(req) = self.load_pending(id, now).await? else { return Ok(None) };
        let (login, subject, _) = self.login_facts(session, &req, None, now).await?;
        let access = self.access(&req, &subject, login.as_ref(), now)?;
        Ok(Some((req, access)))
    }

    /// The session's login (if its person still exists), the policy's view of that person, and
    /// the person's facts for the token. `known`: the login's person as the login step read it
    /// (used only if it is that login's person).
    async fn login_facts(
        &self,
        session: &SessionData,
        req: &AuthRequest,
        known: Option<Person>,
        now: i64,
    ) -> Result<(Option<Login>, Subject, Option<(Person, super::PersonFacts)>), AuthorizeError>
    {
        let Some(login) = &session.login else { return Ok((None, Subject::anyone(), None)) };
        let person = match known.filter(|p| p.id == login.person_id) {
            Some(p) => Some(p),
            None => self.store.person(&login.person_id).await?,
        };
        let Some(person) = person else {
            return Ok((None, Subject::anyone(), None));
        };
        let facts = self.person_facts(&person, req, now).await;
        Ok((Some(login.clone()), facts.subject.clone(), Some((person, facts))))
    }

    async fn resume(
        &self,
        session: &mut SessionData,
        pending_id: Option<String>,
        req: &AuthRequest,
        login_audit: &mut Option<crate::store::AuditRow>,
        trigger: Trigger,
        now: i64,
    ) -> Result<Resume, AuthorizeError> {
        let (after_login, known) = match trigger {
            Trigger::Authorize => (false, None),
            Trigger::Login { person } => (true, person),
        };
        let (login, subject, person) = self.login_facts(session, req, known, now).await?;
        let access = self.access(req, &subject, login.as_ref(), now)?;
        let next = match (&access, after_login) {
            (Access::Answer, true) => Next::Answer,
            (_, true) => Next::LogIn,
            _ => self.next_step(req, &access),
        };
        let resume = match (next, access, login, person) {
            (Next::Answer, _, Some(login), Some((person, facts))) => {
                // The request is done with: its pending row goes with the code's write.
                session.pending = None;
                let sid = session.sid.as_ref().map(|s| s.sid.clone());
                let answering = Answering { pending_id: pending_id.as_deref(), login_audit };
                let url =
                    self.issue_code(req, answering, &login, &person, &facts, sid, now).await?;
                Resume::Code { url }
            }
            (Next::LoginRequired, ..) => Resume::ErrorRedirect {
                url: self.redirect(
                    &req.redirect_uri,
                    req.state.as_deref(),
                    &[("error", "login_required"), ("error_description", "the person must log in")],
                ),
            },
            (_, Access::Deny { temporary: true, .. }, ..) => {
                self.finish_request(session, pending_id.as_deref()).await?;
                Resume::Unavailable {
                    back: self.redirect(
                        &req.redirect_uri,
                        req.state.as_deref(),
                        &[
                            ("error", "temporarily_unavailable"),
                            ("error_description", "the registry is unavailable"),
                        ],
                    ),
                }
            }
            (_, Access::Deny { .. }, ..) => {
                self.finish_request(session, pending_id.as_deref()).await?;
                Resume::ErrorRedirect {
                    url: self.redirect(
                        &req.redirect_uri,
                        req.state.as_deref(),
                        &[
                            ("error", "unmet_authentication_requirements"),
                            (
                                "error_description",
                                "this login does not satisfy the service's policy",
                            ),
                        ],
                    ),
                }
            }
            _ => {
                let id = match pending_id {
                    Some(id) => id,
                    None => self.save_pending(req, now).await?,
                };
                session.pending = Some(id);
                session.key_step = None;
                Resume::Choose
            }
        };
        Ok(resume)
    }

    /// The request is done with (answered or refused): it can never be used again.
    async fn finish_request(
        &self,
        session: &mut SessionData,
        pending_id: Option<&str>,
    ) -> Result<(), AuthorizeError> {
        if let Some(id) = pending_id {
            self.store.take_pending(id).await?;
        }
        session.pending = None;
        Ok(())
    }
}
