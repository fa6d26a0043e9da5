//! Access policies per client (SPEC §4), written in Cedar in `policies/` and evaluated by the
//! `cedar-policy` engine: the one place that decides whether a login may open a service.
//!
//! Each `<name>.cedar` file is one named policy; a client names the policy that guards it. The
//! files are validated against `policies/schema.cedarschema` at start; a broken file stops
//! start-up with its file, line and reason. A `forbid` rule carries `@reason("<message key>")`,
//! which becomes the explanation a person reads ("this service needs the security code from
//! your app; SMS is not enough").

use crate::assurance::{AssuranceLevel, Method};
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet, Request,
    Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}:{line}: {reason}")]
    Invalid { file: String, line: usize, reason: String },
    #[error("cannot read the policy directory {0}: {1}")]
    Io(String, std::io::Error),
    #[error("unknown policy `{0}`")]
    Unknown(String),
}

/// The facts about a person that policies see.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub insz: Option<String>,
    /// Active CoBRHA profession codes; `None` when the registry could not be asked.
    pub professions: Option<Vec<String>>,
}

impl Subject {
    /// Before the person is known (the chooser): assume what a person could bring, so that only
    /// the method decides.
    pub fn anyone() -> Self {
        Self { insz: Some(String::new()), professions: Some(vec!["*".into()]) }
    }
}

/// The facts about one login that policies see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginFacts {
    pub method: Method,
    pub level: AssuranceLevel,
    pub upstream: Option<&'static str>,
    pub auth_time: i64,
}

/// A method and the level it would give, offered by this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub method: Method,
    pub level: AssuranceLevel,
    pub upstream: Option<&'static str>,
}

/// What this browser may log in with now: the methods that would satisfy the waiting request
/// (or, for the broker's own pages, a login at substantial or higher), and why a login it has is
/// not enough.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// The client waiting, if any.
    pub client: Option<String>,
    /// The level the request needs, when above low.
    pub level: Option<AssuranceLevel>,
    /// Message keys: why the current login is not enough (step-up).
    pub reasons: Vec<String>,
    pub methods: Vec<Method>,
    /// What to say when a key of the person's is held back and no reason was given.
    pub held_back_reason: &'static str,
}

/// Every way of logging in the broker knows, with the level each gives under `cfg`, whether or
/// not `cfg` switches it on: the eID card, the digital keys (WebAuthn included), eIDAS at each
/// level up to `[eidas] max_level`, and each FAS means (SPEC §3). The server offers the part of
/// it that `cfg` enables (`crate::offered_methods`); `policy check` lists from all of it, so that
/// a method it allows is always among the methods it names.
pub fn every_method(cfg: &crate::config::Config) -> Vec<Candidate> {
    let own = |method: Method| Candidate {
        method,
        level: method.own_level().unwrap_or(AssuranceLevel::Low),
        upstream: None,
    };
    let mut out: Vec<Candidate> =
        [Method::Eid, Method::Totp, Method::Webauthn, Method::Sms, Method::Token]
            .into_iter()
            .map(own)
            .collect();
    let eidas_max = cfg.eidas.max_level;
    out.extend(
        AssuranceLevel::ALL.into_iter().filter(|l| *l <= eidas_max).map(|level| Candidate {
            method: Method::Eidas,
            level,
            upstream: Some("eidas"),
        }),
    );
    out.push(Candidate {
        method: Method::Eudiw,
        level: cfg.eudiw.max_level,
        upstream: Some("eudiw"),
    });
    out.extend(crate::fas::means_levels(&cfg.fas).into_iter().map(|(method, level)| Candidate {
        method,
        level,
        upstream: Some("fas"),
    }));
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Allow,
    /// This login is not enough; these methods would be.
    StepUp {
        reasons: Vec<String>,
        methods: Vec<Candidate>,
    },
    /// Nothing the person could use would be enough. `temporary`: only because a registry the
    /// policy needs could not be asked (the app may try again later).
    Deny {
        reasons: Vec<String>,
        temporary: bool,
    },
}

impl Decision {
    pub fn name(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::StepUp { .. } => "step_up",
            Decision::Deny { .. } => "deny",
        }
    }
}

pub struct PolicyEngine {
    schema: Schema,
    sets: BTreeMap<String, PolicySet>,
    /// Policies that look at CoBRHA data (so the registry is asked only for them).
    registry_users: Vec<String>,
    /// Policies whose text reads `auth_time` (only their decisions depend on the login's time).
    time_users: Vec<String>,
    /// Decisions already taken, by everything Cedar sees (issue #17: building the entities and
    /// the request costs far more than looking up the answer; the chooser alone asks once per
    /// method). The policies are immutable once loaded, and a decision depends only on the
    /// facts in its key, so a cached answer is the answer.
    decisions: moka::sync::Cache<DecisionKey, (bool, Vec<String>)>,
    dir: PathBuf,
}

/// Everything a Cedar decision depends on. The INSZ is kept only as its SHA-256: the cache
/// holds no national number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    policy: String,
    client_id: String,
    insz: Option<[u8; 32]>,
    professions: Option<Vec<String>>,
    method: String,
    level: AssuranceLevel,
    upstream: Option<&'static str>,
    /// `None` unless the policy reads `auth_time`.
    auth_time: Option<i64>,
}

/// How many decisions are kept: the chooser's are a few per client; a person's are one per
/// (person, method), and old ones are evicted first.
const DECISION_CACHE_ENTRIES: u64 = 20_000;

fn level_number(l: AssuranceLevel) -> i64 {
    match l {
        AssuranceLevel::Low => 1,
        AssuranceLevel::Substantial => 2,
        AssuranceLevel::High => 3,
    }
}

/// 1-based line of a byte offset.
fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].bytes().filter(|b| *b == b'\n').count() + 1
}

fn first_line(src: &str, d: &dyn Diagnostic) -> usize {
    d.labels().and_then(|mut l| l.next()).map(|l| line_of(src, l.offset())).unwrap_or(1)
}

impl PolicyEngine {
    /// Loads and validates every `*.cedar` file of `dir` against `dir/schema.cedarschema`.
    pub fn load(dir: &Path) -> Result<Self, PolicyError> {
        let schema_path = dir.join("schema.cedarschema");
        let schema_file = schema_path.display().to_string();
        let schema_src = std::fs::read_to_string(&schema_path)
            .map_err(|e| PolicyError::Io(schema_file.clone(), e))?;
        let (schema, _warnings) =
            Schema::from_cedarschema_str(&schema_src).map_err(|e| PolicyError::Invalid {
                file: schema_file.clone(),
                line: first_line(&schema_src, &e),
                reason: e.to_string(),
            })?;
        let mut sets = BTreeMap::new();
        let mut registry_users = Vec::new();
        let mut time_users = Vec::new();
        let entries =
            std::fs::read_dir(dir).map_err(|e| PolicyError::Io(dir.display().to_string(), e))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cedar"))
            .collect();
        paths.sort();
        for path in paths {
            let file = path.display().to_string();
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let src =
                std::fs::read_to_string(&path).map_err(|e| PolicyError::Io(file.clone(), e))?;
            let set = PolicySet::from_str(&src).map_err(|e| PolicyError::Invalid {
                file: file.clone(),
                line: first_line(&src, &e),
                reason: e.to_string(),
            })?;
            let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            if let Some(e) = result.validation_errors().next() {
                return Err(PolicyError::Invalid {
                    file,
                    line: first_line(&src, e),
                    reason: e.to_string(),
                });
            }
            if set.policies().next().is_none() {
                return Err(PolicyError::Invalid { file, line: 1, reason: "no policy".into() });
            }
            if src.contains("professions") || src.contains("registry_available") {
                registry_users.push(name.clone());
            }
            if src.contains("auth_time") {
                time_users.push(name.clone());
            }
            sets.insert(name, set);
        }
        let decisions = moka::sync::Cache::builder()
            .max_capacity(DECISION_CACHE_ENTRIES)
            .time_to_idle(std::time::Duration::from_secs(600))
            .build();
        Ok(Self { schema, sets, registry_users, time_users, decisions, dir: dir.to_path_buf() })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sets.keys().map(String::as_str)
    }

    pub fn needs_registry(&self, name: &str) -> bool {
        self.registry_users.iter().any(|n| n == name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.sets.contains_key(name)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `policy` lets this login of this person into `client_id`, and if not, the
    /// reasons (message keys of the `forbid` rules that decided).
    pub fn evaluate(
        &self,
        policy: &str,
        client_id: &str,
        subject: &Subject,
        login: &LoginFacts,
    ) -> Result<(bool, Vec<String>), PolicyError> {
        let method = login.method.as_str();
        self.evaluate_as(policy, client_id, subject, method, login)
    }

    /// [`PolicyEngine::evaluate`] for software authenticated by an eHealth certificate (SPEC
    /// §10): method `swk`, level substantial, no upstream.
    pub fn evaluate_software(
        &self,
        policy: &str,
        client_id: &str,
        subject: &Subject,
        now: i64,
    ) -> Result<(bool, Vec<String>), PolicyError> {
        let facts = LoginFacts {
            // Only the level and time are read from here; the method is given as `swk`.
            method: Method::Eid,
            level: AssuranceLevel::Substantial,
            upstream: None,
            auth_time: now,
        };
        self.evaluate_as(policy, client_id, subject, "swk", &facts)
    }

    fn evaluate_as(
        &self,
        policy: &str,
        client_id: &str,
        subject: &Subject,
        method: &str,
        login: &LoginFacts,
    ) -> Result<(bool, Vec<String>), PolicyError> {
        let key = DecisionKey {
            policy: policy.to_string(),
            client_id: client_id.to_string(),
            insz: subject.insz.as_deref().map(|i| crate::crypto::sha256(i.as_bytes())),
            professions: subject.professions.clone(),
            method: method.to_string(),
            level: login.level,
            upstream: login.upstream,
            auth_time: self.time_users.iter().any(|p| p == policy).then_some(login.auth_time),
        };
        if let Some(hit) = self.decisions.get(&key) {
            return Ok(hit);
        }
        let decided = self.evaluate_uncached(policy, client_id, subject, method, login)?;
        self.decisions.insert(key, decided.clone());
        Ok(decided)
    }

    fn evaluate_uncached(
        &self,
        policy: &str,
        client_id: &str,
        subject: &Subject,
        method: &str,
        login: &LoginFacts,
    ) -> Result<(bool, Vec<String>), PolicyError> {
        let set = self.sets.get(policy).ok_or_else(|| PolicyError::Unknown(policy.into()))?;
        let mut person_attrs = serde_json::json!({
            "professions": subject.professions.clone().unwrap_or_default(),
            "registry_available": subject.professions.is_some(),
        });
        if let Some(insz) = &subject.insz {
            person_attrs["insz"] = insz.clone().into();
        }
        let entities = serde_json::json!([
            { "uid": { "type": "Person", "id": "p" }, "attrs": person_attrs, "parents": [] },
            { "uid": { "type": "Login", "id": "l" }, "attrs": {
                "method": method,
                "level": level_number(login.level),
                "upstream": login.upstream.unwrap_or(""),
                "auth_time": login.auth_time,
            }, "parents": [] },
            { "uid": { "type": "Client", "id": client_id }, "attrs": { "policy": policy }, "parents": [] },
        ]);
        let internal = |e: String| PolicyError::Invalid { file: policy.into(), line: 0, reason: e };
        let entities = Entities::from_json_value(entities, Some(&self.schema))
            .map_err(|e| internal(e.to_string()))?;
        let uid = |t: &str, id: &str| {
            EntityUid::from_str(&format!("{t}::{}", serde_json::Value::String(id.into())))
                .map_err(|e| internal(e.to_string()))
        };
        let action = uid("Action", "login")?;
        let context = Context::from_json_value(
            serde_json::json!({ "login": { "__entity": { "type": "Login", "id": "l" } } }),
            Some((&self.schema, &action)),
        )
        .map_err(|e| internal(e.to_string()))?;
        let request = Request::new(
            uid("Person", "p")?,
            action,
            uid("Client", client_id)?,
            context,
            Some(&self.schema),
        )
        .map_err(|e| internal(e.to_string()))?;
        let response = Authorizer::new().is_authorized(&request, set, &entities);
        if let Some(e) = response.diagnostics().errors().next() {
            // An evaluation error denies (Cedar skips the erroring policy); say so in the logs.
            tracing::error!(policy, error = %e, "policy evaluation error");
        }
        let allowed = response.decision() == CedarDecision::Allow;
        let reasons = if allowed {
            Vec::new()
        } else {
            let mut r: Vec<String> = response
                .diagnostics()
                .reason()
                .filter_map(|id| {
                    set.policy(id).and_then(|p| p.annotation("reason")).map(str::to_string)
                })
                .collect();
            r.sort();
            r.dedup();
            if r.is_empty() {
                r.push("policy-not-allowed".into());
            }
            r
        };
        Ok((allowed, reasons))
    }

    /// The full decision for a client: allow this login, or offer the candidates that would be
    /// allowed (step-up), or deny when none would.
    pub fn decide(
        &self,
        policy: &str,
        client_id: &str,
        subject: &Subject,
        login: Option<&LoginFacts>,
        candidates: &[Candidate],
        now: i64,
    ) -> Result<Decision, PolicyError> {
        let mut reasons = Vec::new();
        if let Some(l) = login {
            let (ok, why) = self.evaluate(policy, client_id, subject, l)?;
            if ok {
                return Ok(Decision::Allow);
            }
            reasons = why;
        }
        let mut methods = Vec::new();
        let mut candidate_reasons = Vec::new();
        for c in candidates {
            let facts = LoginFacts {
                method: c.method,
                level: c.level,
                upstream: c.upstream,
                auth_time: now,
            };
            let (ok, why) = self.evaluate(policy, client_id, subject, &facts)?;
            if ok {
                methods.push(*c);
            } else {
                candidate_reasons.extend(why);
            }
        }
        if methods.is_empty() {
            if reasons.is_empty() {
                candidate_reasons.sort();
                candidate_reasons.dedup();
                reasons = candidate_reasons;
            }
            let temporary = subject.professions.is_none()
                && self.registry_users.iter().any(|p| p == policy)
                && !matches!(
                    self.decide(
                        policy,
                        client_id,
                        &Subject { professions: Some(vec!["*".into()]), ..subject.clone() },
                        login,
                        candidates,
                        now,
                    )?,
                    Decision::Deny { .. }
                );
            return Ok(Decision::Deny { reasons, temporary });
        }
        Ok(Decision::StepUp { reasons, methods })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AssuranceLevel::*;

    fn engine() -> PolicyEngine {
        PolicyEngine::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
    }

    fn person() -> Subject {
        Subject { insz: Some("85073003328".into()), professions: Some(vec![]) }
    }

    fn facts(method: Method, level: AssuranceLevel) -> LoginFacts {
        LoginFacts { method, level, upstream: None, auth_time: 0 }
    }

    /// SPEC §3/§4 as a table: method × level × policy → allowed.
    #[test]
    fn matrix() {
        let e = engine();
        let doctor = Subject { professions: Some(vec!["PHYSICIAN".into()]), ..person() };
        let cases = [
            (Method::Totp, Substantial, true, true),
            (Method::Webauthn, Substantial, true, true),
            (Method::Sms, Low, true, false),
            (Method::Token, Low, true, false),
            (Method::Eid, High, true, true),
            (Method::Eidas, Low, true, false),
            (Method::Eidas, Substantial, true, true),
            (Method::Eidas, High, true, true),
            (Method::Itsme, High, true, true),
            // An SMS login through FAS is still an SMS login.
            (Method::Sms, Substantial, true, false),
        ];
        for (method, level, portal, ehealth) in cases {
            let f = facts(method, level);
            assert_eq!(
                e.evaluate("portal", "c", &person(), &f).unwrap().0,
                portal,
                "portal {method} {level}"
            );
            assert_eq!(
                e.evaluate("ehealth", "c", &person(), &f).unwrap().0,
                ehealth,
                "ehealth {method} {level}"
            );
            assert_eq!(
                e.evaluate("ehealth-professional", "c", &doctor, &f).unwrap().0,
                ehealth,
                "professional {method} {level}"
            );
            assert!(!e.evaluate("ehealth-professional", "c", &person(), &f).unwrap().0);
        }
    }

    /// The decision cache never answers one set of facts with another's decision: every
    /// combination asked twice on one engine (the second time from the cache) gives what a fresh
    /// engine computes.
    #[test]
    fn cached_decisions_are_the_decisions() {
        let cached = engine();
        let subjects = [
            person(),
            Subject { professions: Some(vec!["PHYSICIAN".into()]), ..person() },
            Subject { insz: None, professions: Some(vec![]) },
            Subject { professions: None, ..person() },
            Subject::anyone(),
        ];
        let methods = [Method::Totp, Method::Sms, Method::Token, Method::Eid, Method::Eidas];
        for round in 0..2 {
            for policy in ["portal", "ehealth", "ehealth-professional"] {
                for subject in &subjects {
                    for method in methods {
                        for level in AssuranceLevel::ALL {
                            let f = facts(method, level);
                            let fresh = engine().evaluate_uncached(
                                policy,
                                "c",
                                subject,
                                method.as_str(),
                                &f,
                            );
                            assert_eq!(
                                cached.evaluate(policy, "c", subject, &f).unwrap(),
                                fresh.unwrap(),
                                "round {round}: {policy} {subject:?} {method} {level}"
                            );
                        }
                    }
                }
            }
        }
        // The second round was answered from the cache.
        assert!(cached
            .decisions
            .get(&DecisionKey {
                policy: "portal".into(),
                client_id: "c".into(),
                insz: person().insz.as_deref().map(|i| crate::crypto::sha256(i.as_bytes())),
                professions: Some(vec![]),
                method: "totp".into(),
                level: Substantial,
                upstream: None,
                auth_time: None,
            })
            .is_some());
    }

    #[test]
    fn reasons_explain_the_refusal() {
        let e = engine();
        let (ok, why) = e.evaluate("ehealth", "c", &person(), &facts(Method::Sms, Low)).unwrap();
        assert!(!ok);
        assert_eq!(why, vec!["policy-level-substantial", "policy-no-sms-token"]);
        let no_insz = Subject { insz: None, professions: Some(vec![]) };
        let (ok, why) = e.evaluate("portal", "c", &no_insz, &facts(Method::Eidas, High)).unwrap();
        assert!(!ok);
        assert_eq!(why, vec!["policy-insz-required"]);
        let unknown = Subject { insz: Some("x".into()), professions: None };
        let (_, why) = e
            .evaluate("ehealth-professional", "c", &unknown, &facts(Method::Totp, Substantial))
            .unwrap();
        assert_eq!(why, vec!["policy-registry-unavailable"]);
    }

    #[test]
    fn step_up_offers_only_what_would_satisfy() {
        let e = engine();
        let candidates = [
            Candidate { method: Method::Totp, level: Substantial, upstream: None },
            Candidate { method: Method::Sms, level: Low, upstream: None },
            Candidate { method: Method::Token, level: Low, upstream: None },
        ];
        let d = e
            .decide("ehealth", "c", &person(), Some(&facts(Method::Sms, Low)), &candidates, 0)
            .unwrap();
        match d {
            Decision::StepUp { methods, reasons } => {
                assert_eq!(
                    methods.iter().map(|c| c.method).collect::<Vec<_>>(),
                    vec![Method::Totp]
                );
                assert!(reasons.contains(&"policy-no-sms-token".to_string()));
            }
            other => panic!("{other:?}"),
        }
        let d = e.decide("ehealth", "c", &person(), None, &candidates[1..], 0).unwrap();
        assert!(matches!(d, Decision::Deny { .. }));
        assert_eq!(
            e.decide("portal", "c", &person(), Some(&facts(Method::Sms, Low)), &candidates, 0)
                .unwrap(),
            Decision::Allow
        );
    }

    /// The server offers a part of what `policy check` considers, never something else, and
    /// everything when the deployment switches every method on.
    #[test]
    fn the_server_offers_a_part_of_every_method() {
        let mut cfg = crate::config::Config::default();
        cfg.server.public_url = url::Url::parse("http://127.0.0.1:8080").unwrap();
        let every = every_method(&cfg);
        let offered = crate::offered_methods(&cfg);
        assert!(offered.iter().all(|c| every.contains(c)), "{offered:?}");
        assert!(!offered.iter().any(|c| matches!(c.method, Method::Eid | Method::Webauthn)));
        cfg.server.public_url = url::Url::parse("https://login.cozo.example").unwrap();
        cfg.eid.ca_bundle = Some("ca-bundle.pem".into());
        cfg.fas.issuer = Some(url::Url::parse("https://fas.example").unwrap());
        cfg.eidas.node_metadata = Some("node.xml".into());
        cfg.eudiw.enabled = true;
        let offered = crate::offered_methods(&cfg);
        let every = every_method(&cfg);
        assert!(every.iter().all(|c| offered.contains(c)), "{every:?} vs {offered:?}");
        assert!(offered.iter().all(|c| every.contains(c)), "{offered:?} vs {every:?}");
        for m in [Method::Eid, Method::Webauthn, Method::Eidas, Method::Eudiw, Method::Itsme] {
            assert!(every.iter().any(|c| c.method == m), "{m}");
        }
    }

    #[test]
    fn broken_policy_stops_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/schema.cedarschema");
        std::fs::copy(src, dir.path().join("schema.cedarschema")).unwrap();
        std::fs::write(
            dir.path().join("bad.cedar"),
            "// fine\npermit (principal, action, resource)\nwhen { context.login.levl > 1 };\n",
        )
        .unwrap();
        let err = PolicyEngine::load(dir.path()).err().expect("refused");
        let PolicyError::Invalid { file, line, reason } = &err else { panic!("{err}") };
        assert!(file.ends_with("bad.cedar"));
        assert_eq!(*line, 3, "{reason}");
        std::fs::write(dir.path().join("bad.cedar"), "permit (principal, action, resource\n")
            .unwrap();
        let err = PolicyEngine::load(dir.path()).err().expect("refused");
        assert!(matches!(err, PolicyError::Invalid { .. }), "{err}");
    }
}
