//! The console channel: for development, every message goes to the log and to the
//! development inbox instead of being delivered. Nothing leaves the machine.

use super::inbox::{DevInbox, InboxAnswer, InboxMessage};
use super::{
    DeliveryError, Email, EmailChannel, InboundEvents, MessageId, PhoneCall, PushChannel,
    PushNotification, TextChannel, TextMessage, VoiceChannel,
};
use async_trait::async_trait;
use std::sync::Arc;
use twofold_engine::Clock;

/// Writes each message to the log (its text included, codes and all: it is for development)
/// and keeps it in the [`DevInbox`].
pub struct ConsoleChannel {
    inbox: Arc<DevInbox>,
    clock: Arc<dyn Clock>,
}

impl ConsoleChannel {
    pub fn new(inbox: Arc<DevInbox>, clock: Arc<dyn Clock>) -> Self {
        Self { inbox, clock }
    }

    fn keep(&self, kind: &str, message: InboxMessage) -> MessageId {
        let id = MessageId(format!("{kind}-{}", hex::encode(rand::random::<[u8; 8]>())));
        self.inbox.add(id.clone(), self.clock.now(), message);
        id
    }
}

#[async_trait]
impl VoiceChannel for ConsoleChannel {
    fn provider(&self) -> &'static str {
        "console"
    }

    async fn call(&self, call: &PhoneCall) -> Result<MessageId, DeliveryError> {
        let id = self.keep("call", InboxMessage::Call(call.clone()));
        tracing::info!(
            message_id = %id,
            to = %call.to,
            extension = call.extension.as_deref().unwrap_or(""),
            language = call.language.tag(),
            say = %call.say,
            max_digits = call.expect.map(|e| e.max_digits),
            "console channel: phone call not placed (see /dev/inbox)"
        );
        Ok(id)
    }
}

#[async_trait]
impl TextChannel for ConsoleChannel {
    fn provider(&self) -> &'static str {
        "console"
    }

    async fn send_text(&self, message: &TextMessage) -> Result<MessageId, DeliveryError> {
        let id = self.keep("text", InboxMessage::Text(message.clone()));
        tracing::info!(
            message_id = %id,
            to = %message.to,
            body = %message.body,
            reply_expected = message.reply_expected,
            "console channel: text message not sent (see /dev/inbox)"
        );
        Ok(id)
    }
}

#[async_trait]
impl EmailChannel for ConsoleChannel {
    fn provider(&self) -> &'static str {
        "console"
    }

    async fn send_email(&self, email: &Email) -> Result<MessageId, DeliveryError> {
        let id = self.keep("email", InboxMessage::Email(email.clone()));
        tracing::info!(
            message_id = %id,
            to = %email.to,
            subject = %email.subject,
            body = %email.text_body,
            "console channel: email not sent (see /dev/inbox)"
        );
        Ok(id)
    }
}

#[async_trait]
impl PushChannel for ConsoleChannel {
    fn provider(&self) -> &'static str {
        "console"
    }

    async fn push(&self, notification: &PushNotification) -> Result<MessageId, DeliveryError> {
        let id = self.keep("push", InboxMessage::Push(notification.clone()));
        tracing::info!(
            message_id = %id,
            device_id = %notification.device_id,
            payload = %notification.payload,
            "console channel: push notification not sent (see /dev/inbox)"
        );
        Ok(id)
    }
}

/// Records inbound answers: each is logged and recorded on its message in the inbox, where
/// `/dev/inbox` shows it (the server's console inbound hands them to the service too).
pub struct InboxEvents {
    inbox: Arc<DevInbox>,
    clock: Arc<dyn Clock>,
}

impl InboxEvents {
    pub fn new(inbox: Arc<DevInbox>, clock: Arc<dyn Clock>) -> Self {
        Self { inbox, clock }
    }
}

#[async_trait]
impl InboundEvents for InboxEvents {
    async fn call_answered(&self, call: &MessageId, digits: &str) {
        let recorded = self.inbox.record(
            call,
            InboxAnswer::Digits {
                at: self.clock.now(),
                digits: digits.to_owned(),
            },
        );
        tracing::info!(message_id = %call, digits, recorded, "call answered");
    }

    async fn text_received(&self, from: &str, body: &str) {
        let to = self.inbox.latest_text_to(from);
        let recorded = to.as_ref().is_some_and(|id| {
            self.inbox.record(
                id,
                InboxAnswer::Reply {
                    at: self.clock.now(),
                    body: body.to_owned(),
                },
            )
        });
        tracing::info!(from, body, in_reply_to = ?to.map(|id| id.0), recorded, "text message received");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::channels::DigitsExpected;
    use twofold_engine::{Language, ManualClock};

    fn console() -> (ConsoleChannel, Arc<DevInbox>, Arc<ManualClock>) {
        let inbox = Arc::new(DevInbox::new(DevInbox::CAPACITY));
        let clock = Arc::new(ManualClock::new(1_700_000_000));
        (
            ConsoleChannel::new(inbox.clone(), clock.clone()),
            inbox,
            clock,
        )
    }

    #[tokio::test]
    async fn every_kind_of_message_lands_in_the_inbox_with_its_own_id() {
        let (console, inbox, _) = console();
        let call = PhoneCall {
            authentication_id: "a1".into(),
            to: "+33612345678".into(),
            extension: Some("890".into()),
            language: Language::Fr,
            say: "Appuyez sur dièse.".into(),
            expect: Some(DigitsExpected {
                max_digits: 8,
                finish_on_key: Some('#'),
                timeout_seconds: 10,
            }),
        };
        let ids = [
            console.call(&call).await.unwrap(),
            console
                .send_text(&TextMessage {
                    authentication_id: None,
                    to: "+33612345678".into(),
                    body: "Your code: 123456".into(),
                    reply_expected: false,
                })
                .await
                .unwrap(),
            console
                .send_email(&Email {
                    to: "alice@example.com".into(),
                    subject: "Welcome".into(),
                    text_body: "Hello".into(),
                })
                .await
                .unwrap(),
            console
                .push(&PushNotification {
                    device_id: "device-1".into(),
                    payload: serde_json::json!({ "authentication": "a1" }),
                })
                .await
                .unwrap(),
        ];
        let entries = inbox.entries();
        assert_eq!(entries.len(), 4);
        let listed: Vec<MessageId> = entries.iter().rev().map(|e| e.id.clone()).collect();
        assert_eq!(listed, ids);
        assert_eq!(entries[3].message, InboxMessage::Call(call));
        assert!(ids[0].as_str().starts_with("call-") && ids[1].as_str().starts_with("text-"));
        assert_ne!(
            ids[0],
            console
                .call(&PhoneCall {
                    authentication_id: "a1".into(),
                    to: "+33612345678".into(),
                    extension: None,
                    language: Language::En,
                    say: "again".into(),
                    expect: None,
                })
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn answers_are_recorded_on_the_call_and_on_the_text_they_reply_to() {
        let (console, inbox, clock) = console();
        let events = InboxEvents::new(inbox.clone(), clock.clone());
        let call = console
            .call(&PhoneCall {
                authentication_id: "a1".into(),
                to: "+33612345678".into(),
                extension: None,
                language: Language::En,
                say: "Press pound.".into(),
                expect: None,
            })
            .await
            .unwrap();
        let text = console
            .send_text(&TextMessage {
                authentication_id: None,
                to: "+33698765432".into(),
                body: "Reply with 123456".into(),
                reply_expected: true,
            })
            .await
            .unwrap();
        clock.advance(5);
        events.call_answered(&call, "#").await;
        events.text_received("+33698765432", "123456").await;
        events.text_received("+33600000000", "stranger").await;
        assert_eq!(
            inbox.get(&call).unwrap().answers,
            [InboxAnswer::Digits {
                at: 1_700_000_005,
                digits: "#".into()
            }]
        );
        assert_eq!(
            inbox.get(&text).unwrap().answers,
            [InboxAnswer::Reply {
                at: 1_700_000_005,
                body: "123456".into()
            }]
        );
    }
}
