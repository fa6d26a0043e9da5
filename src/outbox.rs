//! Delivery of the outbox (SMS, mail and back-channel logout tokens), by a periodic task on
//! every replica. Each message is claimed with a conditional update before it is sent, so two
//! replicas never send it twice; failures retry with a backoff from 1 s up to 1 h (SPEC §7,
//! §11); a message answered 2xx is marked sent and never tried again.

use crate::config::Config;
use crate::store::{OutboxMessage, Store, StoreError};
use tracing::Instrument;

/// Backoff after `attempts` failed tries: 1 s, 2 s, 4 s, … capped at one hour.
pub fn backoff_s(attempts: i64) -> i64 {
    1i64.checked_shl(attempts.clamp(0, 30) as u32).unwrap_or(i64::MAX).min(3600)
}

/// The demo mailbox could not be read (the store failed).
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("demo mailbox: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    Failed(String),
}

/// Signs a queued logout token at delivery (the OpenID provider's keys).
pub trait LogoutSigner: Send + Sync {
    fn sign(&self, body: &str, now: i64) -> Result<String, String>;
}

pub struct Outbox {
    logouts: Option<std::sync::Arc<dyn LogoutSigner>>,
    store: Store,
    http: reqwest::Client,
    sms_gateway: Option<url::Url>,
    smtp: Option<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>>,
    from: Option<lettre::message::Mailbox>,
    sms_upstream: crate::metrics::Upstream,
    smtp_upstream: crate::metrics::Upstream,
}

impl Outbox {
    pub fn new(cfg: &Config, store: Store) -> Result<Self, String> {
        let smtp = match &cfg.mail.smtp_url {
            Some(u) => Some(
                lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(u)
                    .map_err(|e| format!("mail.smtp_url: {e}"))?
                    .build(),
            ),
            None => None,
        };
        let from = if smtp.is_some() {
            Some(cfg.mail.from.parse().map_err(|e| format!("mail.from: {e}"))?)
        } else {
            None
        };
        let http = crate::http_client::build("the SMS gateway", std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            logouts: None,
            store,
            http,
            sms_gateway: cfg.sms.gateway_url.clone(),
            smtp,
            from,
            sms_upstream: Default::default(),
            smtp_upstream: Default::default(),
        })
    }

    /// Times each delivery to the SMS gateway and the SMTP server in the metrics.
    pub fn with_metrics(mut self, m: &std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.sms_upstream = m.upstream("sms_gateway");
        self.smtp_upstream = m.upstream("smtp");
        self
    }

    /// Delivers back-channel logout tokens, signed by `signer`.
    pub fn with_logouts(mut self, signer: std::sync::Arc<dyn LogoutSigner>) -> Self {
        self.logouts = Some(signer);
        self
    }

    /// Whether a channel has somewhere to go; without it, messages stay (the demo mailbox).
    fn delivers(&self, channel: &str) -> bool {
        match channel {
            "sms" => self.sms_gateway.is_some(),
            "mail" => self.smtp.is_some(),
            crate::oidc::backchannel::CHANNEL => self.logouts.is_some(),
            _ => false,
        }
    }

    /// Sends what is due; returns how many messages were delivered.
    pub async fn run_once(&self, now: i64) -> Result<usize, StoreError> {
        let mut sent = 0;
        let due = if self.delivers("sms") || self.delivers("mail") {
            self.store.due_messages(now, 20).await?
        } else {
            self.store.due_messages_of(crate::oidc::backchannel::CHANNEL, now, 20).await?
        };
        for m in due {
            if !self.delivers(&m.channel) {
                continue;
            }
            // Claim: push the next attempt out so no other replica picks it up meanwhile.
            if !self.store.claim_message(&m.id, m.next_attempt_at, now + 60).await? {
                continue;
            }
            let result = match m.channel.as_str() {
                crate::oidc::backchannel::CHANNEL => {
                    self.send_logout(&m.recipient, &m.body, now).await
                }
                "sms" => self.sms_upstream.observe(self.send_sms(&m.recipient, &m.body)).await,
                _ => {
                    let subject = m.subject.as_deref().unwrap_or("");
                    self.smtp_upstream.observe(self.send_mail(&m.recipient, subject, &m.body)).await
                }
            };
            match result {
                Ok(()) => {
                    self.store.message_sent(&m.id, now).await?;
                    sent += 1;
                }
                Err(e) => {
                    tracing::warn!(channel = %m.channel, attempts = m.attempts + 1, error = %e, "delivery failed");
                    self.store
                        .message_failed(&m.id, now + backoff_s(m.attempts), &e.to_string())
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    /// POSTs a logout token (Back-Channel Logout 1.0 §2.5): delivered when answered 2xx.
    async fn send_logout(&self, uri: &str, body: &str, now: i64) -> Result<(), DeliveryError> {
        let Some(signer) = &self.logouts else {
            return Err(DeliveryError::Failed("no signer".into()));
        };
        let token = signer.sign(body, now).map_err(DeliveryError::Failed)?;
        let r = self
            .http
            .post(uri)
            .form(&[("logout_token", token.as_str())])
            .send()
            .instrument(tracing::info_span!("backchannel_logout"))
            .await
            .map_err(|e| DeliveryError::Failed(e.without_url().to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Failed(format!("the app answered {}", r.status())))
        }
    }

    async fn send_sms(&self, to: &str, text: &str) -> Result<(), DeliveryError> {
        let Some(url) = &self.sms_gateway else {
            return Err(DeliveryError::Failed("no gateway".into()));
        };
        // `.instrument`, not `span.enter()`: a guard held across `.await` would leave the span
        // entered on the thread while other tasks run there.
        let r = self
            .http
            .post(url.clone())
            .json(&serde_json::json!({ "to": to, "text": text }))
            .send()
            .instrument(tracing::info_span!("sms_gateway"))
            .await
            .map_err(|e| DeliveryError::Failed(e.to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(DeliveryError::Failed(format!("gateway answered {}", r.status())))
        }
    }

    async fn send_mail(&self, to: &str, subject: &str, body: &str) -> Result<(), DeliveryError> {
        use lettre::AsyncTransport;
        let (Some(smtp), Some(from)) = (&self.smtp, &self.from) else {
            return Err(DeliveryError::Failed("no SMTP server".into()));
        };
        let to: lettre::message::Mailbox =
            to.parse().map_err(|e| DeliveryError::Failed(format!("recipient: {e}")))?;
        let msg = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .body(body.to_string())
            .map_err(|e| DeliveryError::Failed(e.to_string()))?;
        smtp.send(msg).await.map(|_| ()).map_err(|e| DeliveryError::Failed(e.to_string()))
    }
}

/// The demo mailbox (no gateway configured): what the outbox holds, for `/demo/mailbox`.
#[derive(Clone)]
pub struct Mailbox {
    store: Store,
}

impl Mailbox {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The newest messages of the outbox.
    pub async fn messages(&self) -> Result<Vec<OutboxMessage>, MailboxError> {
        Ok(self.store.outbox(100).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_from_one_second_to_one_hour() {
        assert_eq!(backoff_s(0), 1);
        assert_eq!(backoff_s(1), 2);
        assert_eq!(backoff_s(5), 32);
        assert_eq!(backoff_s(12), 3600);
        assert_eq!(backoff_s(1000), 3600);
    }
}
