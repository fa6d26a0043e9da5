//! The `client_credentials` grant for software with an eHealth certificate (SPEC §10): the
//! client authenticated with its certificate (`private_key_jwt` signed by its key, or
//! `tls_client_auth` on the mTLS listener); the token describes the certificate's holder and is
//! bound to the certificate when it was obtained over mTLS.

use super::access_token::AccessClaims;
use super::token::{TokenForm, TokenResponse};
use super::{OidcError, Provider};
use crate::audit::{Event, Kind, Outcome};
use crate::crypto;
use crate::ehealth::{CertificateHolder, VerifiedCertificate};
use crate::store::{ClientRow, GrantRow, NewTokens};
use serde_json::json;

/// `acr` of a token obtained with an eHealth certificate (a software key: `amr` `swk`).
const SOFTWARE_ACR: &str = "http://eidas.europa.eu/LoA/substantial";

/// What a software grant stores: the claims its tokens carry (there is no person behind it for
/// `/userinfo`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SoftwareDetails {
    pub software: AccessClaims,
}

impl Provider {
    /// The opaque `sub` of a certificate holder: the same for one holder across clients and
    /// certificates, and not the INSZ (a keyed hash of the holder's identifier).
    pub fn holder_subject(&self, holder: &CertificateHolder) -> String {
        crypto::b64url(&self.master.mac("ehealth-holder-sub", holder.key().as_bytes()))
    }

    /// The registered certificate of `client`, checked again now (chain, expiry, revocation).
    pub fn check_client_certificate(
        &self,
        client: &ClientRow,
        now: i64,
    ) -> Result<VerifiedCertificate, OidcError> {
        let pem = client
            .api
            .as_ref()
            .and_then(|a| a.certificate.as_deref())
            .ok_or_else(|| OidcError::InvalidClient("the client has no certificate".into()))?;
        let ehealth = self.ehealth.as_ref().ok_or_else(|| {
            OidcError::InvalidClient("eHealth certificates are not configured".into())
        })?;
        ehealth.verify_pem(pem, now).map_err(|e| {
            OidcError::InvalidClient(format!("the client's certificate is refused: {e}"))
        })
    }

    pub(super) async fn client_credentials(
        &self,
        client: &ClientRow,
        form: &TokenForm,
        bound_to: Option<&str>,
        now: i64,
    ) -> Result<TokenResponse, OidcError> {
        let api = client.api.as_ref().ok_or_else(|| {
            OidcError::UnauthorizedClient(
                "the client is not registered for client_credentials".into(),
            )
        })?;
        let scope: Vec<String> = match form.scope.as_deref() {
            None => api.scopes.clone(),
            Some(asked) => {
                let asked: Vec<String> =
                    asked.split_ascii_whitespace().map(str::to_string).collect();
                if let Some(s) = asked.iter().find(|s| !api.scopes.contains(s)) {
                    return Err(OidcError::InvalidScope(format!(
                        "the scope {s} is not registered for this client"
                    )));
                }
                asked
            }
        };
        let aud = self.audience(client, &form.resources)?;
        let certificate = self.check_client_certificate(client, now)?;
        let holder = &certificate.holder;
        let sub = self.holder_subject(holder);
        let professions = match holder {
            CertificateHolder::Person(insz) => self.active_professions(insz, now).await,
            _ => Some(Vec::new()),
        };
        let subject = crate::policy::Subject {
            insz: match holder {
                CertificateHolder::Person(insz) => Some(insz.as_str().to_string()),
                _ => None,
            },
            professions: professions
                .as_ref()
                .map(|v| v.iter().map(|p| p.profession.clone()).collect()),
        };
        let (allowed, reasons) = self
            .policies
            .evaluate_software(&client.policy, &client.id, &subject, now)
            .map_err(|e| OidcError::Server(Box::new(e)))?;
        // Rules about a person's INSZ are met by an organisation's or institution's own number.
        let person = matches!(holder, CertificateHolder::Person(_));
        let only_insz = reasons.iter().all(|r| r == "policy-insz-required");
        if !allowed && (person || !only_insz) {
            self.audit
                .record(
                    Event::new(Kind::TokenIssued, Outcome::Refused)
                        .client(&client.id)
                        .detail(json!({ "grant": "client_credentials", "reasons": reasons })),
                    now,
                )
                .await;
            return Err(OidcError::UnauthorizedClient(policy_refusal(&client.policy, &reasons)));
        }
        let jti = crypto::random_token(32);
        let mut claims = AccessClaims::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), sub.clone().into());
        claims.insert("aud".into(), aud);
        claims.insert("client_id".into(), client.id.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.cfg.access_token_ttl_s).into());
        claims.insert("jti".into(), jti.clone().into());
        claims.insert("scope".into(), scope.join(" ").into());
        claims.insert("acr".into(), SOFTWARE_ACR.into());
        claims.insert("amr".into(), json!(["swk"]));
        claims.extend(holder.claims());
        if let (true, Some(p)) = (person, &professions) {
            claims.insert("professions".into(), serde_json::to_value(p).unwrap_or_default());
        }
        if let Some(t) = bound_to {
            claims.insert("cnf".into(), json!({ "x5t#S256": t }));
        }
        let access_token = self.sign_access_token(&claims)?;
        let details = serde_json::to_string(&SoftwareDetails { software: claims })
            .map_err(|e| OidcError::Server(Box::new(e)))?;
        let grant = GrantRow {
            id: crypto::random_id(),
            client_id: client.id.clone(),
            person_id: sub.clone(),
            details,
            created_at: now,
            expires_at: now + self.cfg.access_token_ttl_s,
            revoked_at: None,
        };
        let tokens = NewTokens {
            id: crypto::random_id(),
            access_hash: crypto::token_hash(&jti),
            refresh_hash: None,
            access_expires_at: now + self.cfg.access_token_ttl_s,
            created_at: now,
        };
        self.store.insert_grant_with_tokens(&grant, &tokens).await?;
        self.audit
            .record(
                Event::new(Kind::TokenIssued, Outcome::Ok)
                    .client(&client.id)
                    .detail(json!({ "grant": "client_credentials", "holder": sub })),
                now,
            )
            .await;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.cfg.access_token_ttl_s,
            refresh_token: None,
            id_token: None,
            scope: scope.join(" "),
            issued_token_type: None,
        })
    }

    /// Active CoBRHA professions of a person; `None` when the registry is not configured or
    /// could not be asked (a policy needing them then fails closed).
    pub async fn active_professions(
        &self,
        insz: &crate::identity::Insz,
        now: i64,
    ) -> Option<Vec<super::claims::ProfessionClaim>> {
        let registry = self.registry.as_ref()?;
        let today = crate::clock::to_utc(now).date_naive();
        match registry.professions(insz).await {
            Ok(list) => Some(
                list.into_iter()
                    .filter(|p| p.active_on(today))
                    .map(|p| super::claims::ProfessionClaim {
                        profession: p.profession,
                        nihii: p.nihii.as_str().to_string(),
                    })
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "CoBRHA lookup failed");
                None
            }
        }
    }
}

/// Why a holder does not meet the client's policy, for `error_description`.
fn policy_refusal(policy: &str, reasons: &[String]) -> String {
    let why: Vec<&str> = reasons
        .iter()
        .map(|r| match r.as_str() {
            "policy-profession-required" => {
                "the certificate holder has no active CoBRHA profession (a care provider's SSIN certificate is needed)"
            }
            "policy-registry-unavailable" => {
                "CoBRHA (the professions registry) could not be asked; try again later"
            }
            "policy-insz-required" => "the certificate is not a person's (SSIN) certificate",
            _ => "the certificate holder does not meet it",
        })
        .collect();
    format!("the client's policy {policy} refuses this certificate: {}", why.join("; "))
}
