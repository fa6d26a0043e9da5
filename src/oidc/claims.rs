//! What tokens say about a person: ID token and userinfo claims (SPEC §5).

use super::signing::SigningAlg;
use super::{OidcError, Provider};
use crate::session::Login;
use crate::store::Person;
use chrono::{TimeZone, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, AuthenticationContextClass,
    AuthenticationMethodReference, EndUserBirthday, EndUserFamilyName, EndUserGivenName, IdToken,
    IdTokenClaims, IssuerUrl, Nonce, StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};

/// The person's data as it was when the login happened; kept with the code and the grant so
/// that every token of a grant says the same thing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PersonClaims {
    pub insz: String,
    pub given_name: String,
    pub family_name: String,
    #[serde(default)]
    pub birthdate: Option<String>,
}

impl PersonClaims {
    pub fn of(p: &Person) -> Self {
        Self {
            insz: p.insz.as_str().to_string(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            birthdate: p.birthdate.clone(),
        }
    }
}

/// Stored with a code and then with its grant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GrantDetails {
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub login: Login,
    pub person: PersonClaims,
    /// Active CoBRHA professions at login; `None` when the registry was not asked or down.
    #[serde(default)]
    pub professions: Option<Vec<ProfessionClaim>>,
    /// The broker session the grant was issued in (`sid`, SPEC §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl GrantDetails {
    pub fn has_scope(&self, s: &str) -> bool {
        self.scope.iter().any(|x| x == s)
    }
}

/// A CoBRHA profession in tokens (scope `professions`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfessionClaim {
    pub profession: String,
    pub nihii: String,
}

/// The claims the broker adds to the standard ones.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BrokerClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insz: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub professions: Option<Vec<ProfessionClaim>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eidas_person_identifier: Option<String>,
    /// The broker session (OIDC Back-Channel Logout 1.0 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The member state that issued the PID of a wallet login (SPEC §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eudiw_issuing_country: Option<String>,
}
impl AdditionalClaims for BrokerClaims {}

pub type BrokerIdToken = IdToken<
    BrokerClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

fn time(t: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(t, 0).single().unwrap_or_default()
}

impl Provider {
    /// Signs an ID token for `client` with its algorithm (RS256 by default).
    pub fn id_token(
        &self,
        now: i64,
        client: &crate::store::ClientRow,
        subject: &str,
        details: &GrantDetails,
        nonce: Option<&str>,
        access_token: &str,
    ) -> Result<String, OidcError> {
        let (client_id, alg) = (client.id.as_str(), client.id_token_alg.as_str());
        let alg = SigningAlg::parse(alg).unwrap_or(SigningAlg::Rs256);
        let keys = self.keys.current();
        let key =
            keys.active(alg).ok_or_else(|| OidcError::Server(format!("no {alg:?} key").into()))?;
        let issuer =
            IssuerUrl::new(self.issuer.clone()).map_err(|e| OidcError::Server(Box::new(e)))?;
        let mut standard = StandardClaims::new(SubjectIdentifier::new(subject.to_string()));
        if details.has_scope("profile") {
            standard = standard
                .set_given_name(Some(
                    EndUserGivenName::new(details.person.given_name.clone()).into(),
                ))
                .set_family_name(Some(
                    EndUserFamilyName::new(details.person.family_name.clone()).into(),
                ))
                .set_birthdate(details.person.birthdate.clone().map(EndUserBirthday::new));
        }
        let extra = BrokerClaims {
            insz: details.has_scope("insz").then(|| details.person.insz.clone()),
            professions: if details.has_scope("professions") {
                details.professions.clone()
            } else {
                None
            },
            eidas_person_identifier: details.login.eidas_person_identifier.clone(),
            sid: details.sid.clone(),
            eudiw_issuing_country: details.login.eudiw_issuing_country.clone(),
        };
        let login = &details.login;
        let claims = IdTokenClaims::new(
            issuer,
            vec![Audience::new(client_id.to_string())],
            time(now + self.cfg.id_token_ttl_s),
            time(now),
            standard,
            extra,
        )
        .set_auth_time(Some(time(login.auth_time)))
        .set_nonce(nonce.map(|n| Nonce::new(n.to_string())))
        .set_auth_context_ref(Some(AuthenticationContextClass::new(login.acr.uri().to_string())))
        .set_auth_method_refs(Some(
            login.amr.iter().map(|a| AuthenticationMethodReference::new(a.clone())).collect(),
        ));
        let token = BrokerIdToken::new(
            claims,
            key.as_ref(),
            alg.jws(),
            Some(&AccessToken::new(access_token.to_string())),
            None,
        )
        .map_err(|e| OidcError::Server(format!("ID token signing: {e}").into()))?;
        Ok(token.to_string())
    }

    /// Userinfo claims for a grant's scopes.
    pub fn userinfo_claims(&self, subject: &str, details: &GrantDetails) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("sub".into(), subject.into());
        if details.has_scope("insz") {
            m.insert("insz".into(), details.person.insz.clone().into());
        }
        if details.has_scope("profile") {
            m.insert("given_name".into(), details.person.given_name.clone().into());
            m.insert("family_name".into(), details.person.family_name.clone().into());
            if let Some(b) = &details.person.birthdate {
                m.insert("birthdate".into(), b.clone().into());
            }
        }
        if details.has_scope("professions") {
            if let Some(p) = &details.professions {
                m.insert("professions".into(), serde_json::to_value(p).unwrap_or_default());
            }
        }
        if let Some(e) = &details.login.eidas_person_identifier {
            m.insert("eidas_person_identifier".into(), e.clone().into());
        }
        if let Some(c) = &details.login.eudiw_issuing_country {
            m.insert("eudiw_issuing_country".into(), c.clone().into());
        }
        serde_json::Value::Object(m)
    }
}
