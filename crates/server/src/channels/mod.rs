//! Outbound delivery: one port per kind of message (a phone call, a text message, a push to
//! an authenticator device, an email), and the port inbound answers come back through.
//!
//! A delivery returns the provider's id for the message, or a [`DeliveryError`] that says
//! whether trying again may help ([`DeliveryError::Transient`]: the provider is unavailable)
//! or not ([`DeliveryError::Permanent`]: a number that cannot be called, a message the
//! provider refused). Which implementation serves each kind is chosen at start from
//! `[channels]` ([`Channels::from_config`]).
//!
//! - [`console`]: the development implementation of every kind. It writes each message to
//!   the log and to a [`DevInbox`] held in memory, which `/dev/inbox` shows; there a
//!   developer answers a call by typing digits and replies to a text message, and the
//!   answers come back through [`InboundEvents`] as a provider's would.
//! - [`smtp`]: emails through the operator's SMTP server (`email = "smtp"`, `[smtp]`).
//! - [`twilio`]: phone calls and text messages through Twilio (`voice = "twilio"`,
//!   `sms = "twilio"`, `[twilio]`).

pub mod console;
pub mod inbox;
pub mod smtp;
pub mod twilio;
pub mod unified_push;

pub use console::{ConsoleChannel, InboxEvents};
pub use inbox::{DevInbox, InboxAnswer, InboxEntry, InboxMessage};
pub use smtp::{SmtpChannel, SmtpConfig, SmtpSecurity};
pub use twilio::{TwilioAccount, TwilioChannel, TwilioConfig};

use crate::config::{ChannelProvider, ChannelsConfig, ConfigError};
use async_trait::async_trait;
use std::sync::Arc;
use twofold_engine::{Clock, Language};

/// The id a provider gave a message (Twilio's call or message sid; the console's own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub String);

impl MessageId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Trying again will not help: a number that cannot be valid, an address that does
    /// not exist, a message the provider refused.
    #[error("the message cannot be delivered: {0}")]
    Permanent(String),
    /// The provider could not be reached or is overloaded: the same message may get
    /// through later.
    #[error("the delivery provider is unavailable: {0}")]
    Transient(String),
}

impl DeliveryError {
    pub fn is_transient(&self) -> bool {
        matches!(self, DeliveryError::Transient(_))
    }
}

/// The digits a call waits for once it has spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitsExpected {
    /// The most digits gathered (the keys `*` and `#` included).
    pub max_digits: u8,
    /// The key that ends the input early (`#`), if any.
    pub finish_on_key: Option<char>,
    /// How long the call waits for the first key.
    pub timeout_seconds: u16,
}

/// A phone call to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneCall {
    /// The authentication the call proves: a provider that asks the server what to say
    /// (Twilio fetches its TwiML) names it in the webhook addresses it is given.
    pub authentication_id: String,
    /// The number to call, in E.164 form (`+33612345678`).
    pub to: String,
    /// Digits to dial once the call is answered (`890`), if any.
    pub extension: Option<String>,
    /// The language of the voice.
    pub language: Language,
    /// What the call says.
    pub say: String,
    /// The digits the call then gathers; `None` for a call that only speaks.
    pub expect: Option<DigitsExpected>,
}

/// A text message (SMS) to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMessage {
    /// The authentication the message belongs to, if any (its status callback names it).
    pub authentication_id: Option<String>,
    /// The number to text, in E.164 form.
    pub to: String,
    pub body: String,
    /// The message asks for a reply (two-way text messages).
    pub reply_expected: bool,
}

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    /// The plain-text body.
    pub text_body: String,
}

/// A push notification to an authenticator device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushNotification {
    /// The device, as its activation registered it.
    pub device_id: String,
    pub payload: serde_json::Value,
}

/// Places phone calls.
#[async_trait]
pub trait VoiceChannel: Send + Sync + 'static {
    /// The provider's name, as `[channels]` names it (`console`).
    fn provider(&self) -> &'static str;
    async fn call(&self, call: &PhoneCall) -> Result<MessageId, DeliveryError>;
}

/// Sends text messages.
#[async_trait]
pub trait TextChannel: Send + Sync + 'static {
    fn provider(&self) -> &'static str;
    async fn send_text(&self, message: &TextMessage) -> Result<MessageId, DeliveryError>;
}

/// Sends emails.
#[async_trait]
pub trait EmailChannel: Send + Sync + 'static {
    fn provider(&self) -> &'static str;
    async fn send_email(&self, email: &Email) -> Result<MessageId, DeliveryError>;
}

/// Sends push notifications to authenticator devices.
#[async_trait]
pub trait PushChannel: Send + Sync + 'static {
    fn provider(&self) -> &'static str;
    async fn push(&self, notification: &PushNotification) -> Result<MessageId, DeliveryError>;
}

/// What comes back from the person a message reached: the digits typed during a call, a
/// text message received. Providers' webhooks and the development inbox both hand their
/// answers here; what they mean is the application's business.
#[async_trait]
pub trait InboundEvents: Send + Sync + 'static {
    /// The call `call` gathered `digits` (as typed: `123#`).
    async fn call_answered(&self, call: &MessageId, digits: &str);
    /// A text message arrived from `from` (E.164).
    async fn text_received(&self, from: &str, body: &str);
}

/// The channels chosen at start, one per kind.
#[derive(Clone)]
pub struct Channels {
    pub voice: Arc<dyn VoiceChannel>,
    pub sms: Arc<dyn TextChannel>,
    pub email: Arc<dyn EmailChannel>,
    /// Push has no provider to choose yet: it goes to the console.
    pub push: Arc<dyn PushChannel>,
    /// The development inbox, while any channel is the console.
    pub dev_inbox: Option<Arc<DevInbox>>,
    /// The Twilio channel, while calls or texts go through Twilio: its auth token and
    /// public address check the webhooks' signatures.
    pub twilio: Option<Arc<TwilioChannel>>,
}

impl Channels {
    /// Every kind to the console, with an inbox of its own.
    pub fn console(clock: Arc<dyn Clock>) -> Channels {
        let inbox = Arc::new(DevInbox::new(DevInbox::CAPACITY));
        let console = Arc::new(ConsoleChannel::new(inbox.clone(), clock));
        Channels {
            voice: console.clone(),
            sms: console.clone(),
            email: console.clone(),
            push: console,
            dev_inbox: Some(inbox),
            twilio: None,
        }
    }

    /// The channels `[channels]` names; `smtp` is `[smtp]`, needed when `email = "smtp"`;
    /// `twilio` is `[twilio]`, needed when `voice` or `sms` is `"twilio"`.
    pub fn from_config(
        config: &ChannelsConfig,
        smtp: Option<&SmtpConfig>,
        twilio: Option<&TwilioConfig>,
        clock: Arc<dyn Clock>,
    ) -> Result<Channels, ConfigError> {
        let inbox = Arc::new(DevInbox::new(DevInbox::CAPACITY));
        let console = Arc::new(ConsoleChannel::new(inbox.clone(), clock));
        let email_only = |key: &str| {
            ConfigError(format!(
                "channels.{key} = \"smtp\": SMTP delivers emails only. Fix: use \"console\" or \"twilio\" for {key}."
            ))
        };
        let uses_twilio = |provider| provider == ChannelProvider::Twilio;
        let twilio_channel = if uses_twilio(config.voice) || uses_twilio(config.sms) {
            let twilio = twilio.ok_or_else(|| {
                ConfigError(
                    "channels.voice or channels.sms = \"twilio\" but the configuration has no [twilio] section. \
                     Fix: add [twilio] with account_sid, auth_token_file, from and public_url (see twofold.example.toml)."
                        .into(),
                )
            })?;
            twilio.check(uses_twilio(config.voice), uses_twilio(config.sms))?;
            Some(Arc::new(TwilioChannel::from_config(twilio)?))
        } else {
            None
        };
        let voice: Arc<dyn VoiceChannel> = match (config.voice, &twilio_channel) {
            (ChannelProvider::Console, _) => console.clone(),
            (ChannelProvider::Twilio, Some(twilio)) => twilio.clone(),
            (ChannelProvider::Twilio, None) => return Err(twilio_missing()),
            (ChannelProvider::Smtp, _) => return Err(email_only("voice")),
        };
        let sms: Arc<dyn TextChannel> = match (config.sms, &twilio_channel) {
            (ChannelProvider::Console, _) => console.clone(),
            (ChannelProvider::Twilio, Some(twilio)) => twilio.clone(),
            (ChannelProvider::Twilio, None) => return Err(twilio_missing()),
            (ChannelProvider::Smtp, _) => return Err(email_only("sms")),
        };
        let email: Arc<dyn EmailChannel> = match config.email {
            ChannelProvider::Console => console.clone(),
            ChannelProvider::Twilio => return Err(twilio_sends_no_email()),
            ChannelProvider::Smtp => {
                let smtp = smtp.ok_or_else(|| {
                    ConfigError(
                        "channels.email = \"smtp\" but the configuration has no [smtp] section. \
                         Fix: add [smtp] with host and from (see twofold.example.toml)."
                            .into(),
                    )
                })?;
                Arc::new(SmtpChannel::from_config(smtp)?)
            }
        };
        Ok(Channels {
            voice,
            sms,
            email,
            push: console,
            dev_inbox: config.uses_console().then_some(inbox),
            twilio: twilio_channel,
        })
    }
}

fn twilio_missing() -> ConfigError {
    ConfigError("[twilio] is needed by [channels] but was not set up.".into())
}

/// `email = "twilio"`: Twilio's channels here are calls and texts.
pub fn twilio_sends_no_email() -> ConfigError {
    ConfigError(
        "channels.email = \"twilio\": Twilio places calls and sends texts, not emails. Fix: use \"smtp\" (with [smtp]) or \"console\" for email."
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use twofold_engine::SystemClock;

    fn twilio() -> TwilioConfig {
        TwilioConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: Some(Secret::new("token")),
            from: Some("+15005550006".into()),
            public_url: "https://mfa.example.com".into(),
            ..TwilioConfig::default()
        }
    }

    #[tokio::test]
    async fn calls_and_texts_go_through_twilio_when_channels_say_so() {
        let config = ChannelsConfig {
            voice: ChannelProvider::Twilio,
            sms: ChannelProvider::Console,
            email: ChannelProvider::Console,
        };
        let channels =
            Channels::from_config(&config, None, Some(&twilio()), Arc::new(SystemClock)).unwrap();
        assert_eq!(channels.voice.provider(), "twilio");
        assert_eq!(channels.sms.provider(), "console");
        let twilio_channel = channels.twilio.unwrap();
        assert_eq!(twilio_channel.public_url(), "https://mfa.example.com");

        let channels = Channels::from_config(
            &ChannelsConfig::default(),
            None,
            Some(&twilio()),
            Arc::new(SystemClock),
        )
        .unwrap();
        assert!(
            channels.twilio.is_none(),
            "an unused [twilio] builds nothing"
        );

        let err = Channels::from_config(&config, None, None, Arc::new(SystemClock))
            .err()
            .unwrap();
        assert!(err.0.contains("[twilio]"), "{err}");
        let mut without_from = twilio();
        without_from.from = None;
        let err = Channels::from_config(&config, None, Some(&without_from), Arc::new(SystemClock))
            .err()
            .unwrap();
        assert!(err.0.contains("twilio.from"), "{err}");
        let email = ChannelsConfig {
            email: ChannelProvider::Twilio,
            ..ChannelsConfig::default()
        };
        let err = Channels::from_config(&email, None, Some(&twilio()), Arc::new(SystemClock))
            .err()
            .unwrap();
        assert!(err.0.contains("channels.email = \"twilio\""), "{err}");
    }
}
