//! Invitations by email: each one a record in the store's `mails`
//! collection, written in the same transaction as the meeting change that
//! caused it, so a mail is never lost to a crash or an SMTP server that is
//! down, and never sent for a change that did not commit. [`MailQueue::run`]
//! sends what is due with lettre (SMTP, STARTTLS or SMTPS over rustls with
//! ring), deletes what was accepted, and retries the rest with a growing
//! delay; a permanent refusal (5xx) is logged and dropped.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use confero_store::{RecordWrite, Store};

use crate::clock::Clock;

/// The store collection mails wait in.
pub const MAILS: &str = "mails";

/// The longest wait between two tries of one mail.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One mail waiting to go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedMail {
    /// The recipient.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The iCalendar part.
    pub calendar: String,
    /// Its iTIP method (`REQUEST`, `CANCEL`), also a Content-Type parameter.
    pub method: String,
    /// Tries so far.
    pub attempts: u32,
    /// Not to be tried before this.
    pub not_before: DateTime<Utc>,
}

impl QueuedMail {
    /// The store write that queues it.
    pub fn write(&self) -> RecordWrite {
        RecordWrite {
            collection: MAILS,
            id: Uuid::new_v4(),
            body: Some(serde_json::to_string(self).unwrap_or_default()),
        }
    }

    /// The MIME message: a plain-text part and a `text/calendar` part as
    /// alternatives, which is what calendar clients look for.
    pub fn message(&self, from: &str) -> Result<Message, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("from address: {e}"))?;
        let to: Mailbox = self.to.parse().map_err(|e| format!("to address: {e}"))?;
        let calendar_type = ContentType::parse(&format!("text/calendar; charset=utf-8; method={}", self.method))
            .map_err(|e| e.to_string())?;
        Message::builder()
            .from(from)
            .to(to)
            .subject(&self.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(self.text.clone()))
                    .singlepart(SinglePart::builder().header(calendar_type).body(self.calendar.clone())),
            )
            .map_err(|e| e.to_string())
    }
}

/// How the SMTP server is reached (`confero scheduler email ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// Host name or address.
    pub server: String,
    /// Port.
    pub port: u16,
    /// `smtps`: TLS from the first byte; else plain SMTP.
    pub smtps: bool,
    /// STARTTLS required (plain SMTP only).
    pub starttls: bool,
    /// Credentials, when auth is enabled.
    pub credentials: Option<(String, String)>,
    /// A bundle to trust instead of the public roots.
    pub trust: Option<PathBuf>,
    /// The From address.
    pub from: String,
}

impl EmailSettings {
    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = if self.smtps || self.starttls {
            let mut params = TlsParameters::builder(self.server.clone());
            if let Some(bundle) = &self.trust {
                let pem = std::fs::read(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| e.to_string())?;
            if self.smtps {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        } else {
            Tls::None
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.server.clone())
            .port(self.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(20)));
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

/// The delay before try `attempts + 1`: 1 s, 2 s, 4 s, ... up to [`MAX_BACKOFF`].
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(5)).min(MAX_BACKOFF)
}

/// The queue's sender.
pub struct MailQueue {
    store: Arc<dyn Store>,
    settings: Option<EmailSettings>,
    clock: Arc<dyn Clock>,
    wake: tokio::sync::Notify,
    /// `timedLogging email`.
    verbose: Arc<crate::timed_logging::TimedLogging>,
}

impl MailQueue {
    /// A sender of the mails in `store`; with no settings mails wait.
    pub fn new(store: Arc<dyn Store>, settings: Option<EmailSettings>, clock: Arc<dyn Clock>) -> Arc<MailQueue> {
        MailQueue::with_timed_logging(store, settings, clock, Arc::new(crate::timed_logging::TimedLogging::off()))
    }

    /// The same, logging each attempt while `timedLogging email` is on.
    pub fn with_timed_logging(
        store: Arc<dyn Store>,
        settings: Option<EmailSettings>,
        clock: Arc<dyn Clock>,
        verbose: Arc<crate::timed_logging::TimedLogging>,
    ) -> Arc<MailQueue> {
        Arc::new(MailQueue { store, settings, clock, wake: tokio::sync::Notify::new(), verbose })
    }

    /// Whether an SMTP server is configured.
    pub fn configured(&self) -> bool {
        self.settings.is_some()
    }

    /// Says new mails were queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Sends until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let Some(settings) = self.settings.clone() else {
            tracing::info!("scheduler: email server not configured; invitations wait in the queue");
            shutdown.await;
            return;
        };
        let transport = match settings.transport() {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("scheduler: email settings unusable ({e}); invitations wait in the queue");
                shutdown.await;
                return;
            }
        };
        loop {
            let wait = self.send_due(&settings, &transport).await;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Tries every due mail once; returns how long until the next is due.
    async fn send_due(&self, settings: &EmailSettings, transport: &AsyncSmtpTransport<Tokio1Executor>) -> Duration {
        let store = self.store.clone();
        let records = match tokio::task::spawn_blocking(move || store.records(MAILS)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!("scheduler: reading the mail queue: {e}");
                return MAX_BACKOFF;
            }
            Err(_) => return MAX_BACKOFF,
        };
        let mut next = MAX_BACKOFF;
        for (id, body) in records {
            let Ok(mut mail) = serde_json::from_str::<QueuedMail>(&body) else {
                tracing::warn!("scheduler: dropping an unreadable queued mail {id}");
                self.write(RecordWrite { collection: MAILS, id, body: None }).await;
                continue;
            };
            let now = self.clock.now();
            if mail.not_before > now {
                next = next.min((mail.not_before - now).to_std().unwrap_or(MAX_BACKOFF));
                continue;
            }
            let outcome = match mail.message(&settings.from) {
                Ok(message) => transport.send(message).await.map(|_| ()).map_err(|e| (e.is_permanent(), e.to_string())),
                Err(e) => Err((true, e)),
            };
            if self.verbose.on(crate::timed_logging::Part::Email) {
                let result = match &outcome {
                    Ok(()) => "accepted".to_string(),
                    Err((permanent, e)) => format!("{} ({e})", if *permanent { "refused" } else { "failed" }),
                };
                tracing::info!(
                    target: "scheduler::timedLogging::email",
                    "SMTP {}:{} {} to {} (try {}): {result}",
                    settings.server,
                    settings.port,
                    mail.method,
                    mail.to,
                    mail.attempts + 1
                );
            }
            match outcome {
                Ok(()) => {
                    tracing::info!("scheduler: {} invitation sent to {}", mail.method, mail.to);
                    self.write(RecordWrite { collection: MAILS, id, body: None }).await;
                }
                Err((true, e)) => {
                    tracing::warn!("scheduler: mail to {} refused for good, dropped: {e}", mail.to);
                    self.write(RecordWrite { collection: MAILS, id, body: None }).await;
                }
                Err((false, e)) => {
                    let delay = backoff(mail.attempts);
                    mail.attempts += 1;
                    mail.not_before = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    tracing::warn!(
                        "scheduler: mail to {} not sent (try {}), again in {delay:?}: {e}",
                        mail.to,
                        mail.attempts
                    );
                    let body = serde_json::to_string(&mail).unwrap_or_default();
                    self.write(RecordWrite { collection: MAILS, id, body: Some(body) }).await;
                    next = next.min(delay);
                    // The server is likely down: the others wait for the next round.
                    break;
                }
            }
        }
        next
    }

    async fn write(&self, w: RecordWrite) {
        let store = self.store.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.write_records(&[w])).await {
            tracing::warn!("scheduler: updating the mail queue: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn a_queued_mail_is_text_and_calendar_alternatives() {
        let mail = QueuedMail {
            to: "ana@example.test".into(),
            subject: "Invitation: Weekly sync".into(),
            text: "Join".into(),
            calendar: "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".into(),
            method: "REQUEST".into(),
            attempts: 0,
            not_before: DateTime::UNIX_EPOCH,
        };
        let text = String::from_utf8(mail.message("scheduler@example.test").unwrap().formatted()).unwrap();
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("text/calendar; charset=utf-8; method=REQUEST"), "{text}");
        let back: QueuedMail = serde_json::from_str(&serde_json::to_string(&mail).unwrap()).unwrap();
        assert_eq!(back, mail);
    }
}
