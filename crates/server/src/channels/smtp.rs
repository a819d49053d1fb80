//! Email over SMTP (`[channels] email = "smtp"`, configured by `[smtp]`), with lettre: a
//! pooled connection, STARTTLS (required, never skipped), implicit TLS or, for a relay on
//! this machine, none; AUTH PLAIN or LOGIN when a username is set.
//!
//! Failures say what an operator can do: a refused sign-in names `smtp.username` and
//! `smtp.password`, a refused connection `smtp.host` and `smtp.port`, an untrusted
//! certificate `smtp.ca_file`. 4xx answers, timeouts and refused connections are
//! [`DeliveryError::Transient`]; 5xx answers (a refused sign-in, a refused recipient) are
//! [`DeliveryError::Permanent`]. No message carries the password.

use super::{DeliveryError, Email, EmailChannel, MessageId};
use crate::config::{ConfigError, Secret};
use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on this machine or a network you trust.
    None,
}

impl SmtpSecurity {
    pub fn label(self) -> &'static str {
        match self {
            SmtpSecurity::Starttls => "STARTTLS",
            SmtpSecurity::Tls => "TLS",
            SmtpSecurity::None => "no encryption",
        }
    }
}

/// `[smtp]`: the SMTP server that sends emails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// The server's name (checked against its certificate) or address.
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// The account to sign in as; no sign-in without it.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// A file holding the password; wins over `password`.
    pub password_file: Option<PathBuf>,
    /// The sender, `mfa@example.com` or `Twofold <mfa@example.com>`.
    pub from: String,
    /// PEM certificates to trust instead of the public roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// How long to wait for the server at each step.
    pub timeout_seconds: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            password_file: None,
            from: String::new(),
            ca_file: None,
            timeout_seconds: 10,
        }
    }
}

impl SmtpConfig {
    /// Refuses values that cannot work, naming the key, the value and the fix.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError(
                "smtp.host is not set. Fix: set it to your SMTP server, for example \"smtp.example.com\"."
                    .into(),
            ));
        }
        if self.port == 0 {
            return Err(ConfigError(
                "smtp.port = 0. Fix: use 587 for STARTTLS, 465 for TLS, 25 for a local relay."
                    .into(),
            ));
        }
        self.sender()?;
        if self.timeout_seconds == 0 || self.timeout_seconds > 300 {
            return Err(ConfigError(format!(
                "smtp.timeout_seconds = {}: out of range. Fix: use 1 to 300 (10 is usual).",
                self.timeout_seconds
            )));
        }
        let has_password = self.password.is_some() || self.password_file.is_some();
        match (&self.username, has_password) {
            (Some(u), _) if u.is_empty() => Err(ConfigError(
                "smtp.username is empty. Fix: set the account to sign in as, or remove the key to send without signing in.".into(),
            )),
            (Some(_), false) => Err(ConfigError(
                "smtp.username is set but smtp.password is not. Fix: set smtp.password or smtp.password_file.".into(),
            )),
            (None, true) => Err(ConfigError(
                "smtp.password is set but smtp.username is not. Fix: set smtp.username to the account the password belongs to.".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The `from` address, parsed.
    pub fn sender(&self) -> Result<Mailbox, ConfigError> {
        self.from.parse::<Mailbox>().map_err(|e| {
            ConfigError(format!(
                "smtp.from = {:?}: not an email address ({e}). \
                 Fix: use \"mfa@example.com\" or \"Twofold <mfa@example.com>\".",
                self.from
            ))
        })
    }

    fn read_password(&self) -> Result<Option<String>, ConfigError> {
        match (&self.password_file, &self.password) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|e| {
                    ConfigError(format!(
                        "smtp.password_file = {}: cannot be read ({e}). \
                         Fix: point it at a readable file holding the SMTP password.",
                        path.display()
                    ))
                }),
            (None, Some(p)) => Ok(Some(p.expose().to_owned())),
            (None, None) => Ok(None),
        }
    }

    fn tls_parameters(&self) -> Result<TlsParameters, ConfigError> {
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError(format!(
                    "smtp.ca_file = {}: cannot be read ({e}). Fix: point it at a PEM file of the CA that signed the SMTP server's certificate.",
                    path.display()
                ))
            })?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| {
                ConfigError(format!(
                    "smtp.ca_file = {}: not a PEM certificate ({e}). Fix: give the CA certificate in PEM form (-----BEGIN CERTIFICATE-----).",
                    path.display()
                ))
            })?;
            builder = builder
                .certificate_store(CertificateStore::None)
                .add_root_certificate(certificate);
        }
        builder.build_rustls().map_err(|e| {
            ConfigError(format!(
                "[smtp]: the TLS settings cannot be used ({e}). Fix: check smtp.host and smtp.ca_file."
            ))
        })
    }

    /// Whether the host is this machine (where plain SMTP is acceptable).
    pub fn host_is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// Sends emails through an SMTP server.
pub struct SmtpChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
    security: SmtpSecurity,
    username: Option<String>,
}

impl SmtpChannel {
    /// The channel `[smtp]` describes (checked, its files read). Call it inside the Tokio
    /// runtime: the connection pool starts a task.
    pub fn from_config(config: &SmtpConfig) -> Result<SmtpChannel, ConfigError> {
        config.check()?;
        let from = config.sender()?;
        let tls = match config.security {
            SmtpSecurity::Starttls => Tls::Required(config.tls_parameters()?),
            SmtpSecurity::Tls => Tls::Wrapper(config.tls_parameters()?),
            SmtpSecurity::None => Tls::None,
        };
        if config.security == SmtpSecurity::None && !config.host_is_loopback() {
            tracing::warn!(
                host = %config.host,
                "smtp.security = \"none\" to a host that is not this machine: emails{} cross \
                 the network in clear. Fix: use security = \"starttls\" or \"tls\"",
                if config.username.is_some() {
                    " and the SMTP password"
                } else {
                    ""
                }
            );
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(config.timeout_seconds)))
            .pool_config(PoolConfig::new().max_size(4));
        if let (Some(username), Some(password)) = (&config.username, config.read_password()?) {
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(SmtpChannel {
            transport: builder.build(),
            from,
            server: format!("{}:{}", config.host, config.port),
            security: config.security,
            username: config.username.clone(),
        })
    }

    /// `smtp.example.com:587 (STARTTLS, signed in as mfa)`: where emails go.
    pub fn describe(&self) -> String {
        match &self.username {
            Some(user) => format!(
                "{} ({}, signed in as {user})",
                self.server,
                self.security.label()
            ),
            None => format!(
                "{} ({}, without signing in)",
                self.server,
                self.security.label()
            ),
        }
    }

    /// Connects as a delivery would (TLS as configured, then AUTH when `smtp.username` is
    /// set) and says NOOP, sending nothing: proves that the server takes the connection and
    /// the sign-in (`twofold doctor`). lettre's `test_connection` opens the connection with
    /// the transport's own steps, authentication included.
    pub async fn check_sign_in(&self) -> Result<(), DeliveryError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(DeliveryError::Transient(format!(
                "the SMTP server {} took the connection but did not answer NOOP. \
                 Fix: check smtp.host and smtp.port name an SMTP server",
                self.server
            ))),
            Err(e) => Err(self.delivery_error(&e)),
        }
    }

    fn delivery_error(&self, e: &lettre::transport::smtp::Error) -> DeliveryError {
        let detail = error_chain(e);
        let code = e.status().map(|c| c.to_string());
        let server = &self.server;
        if let Some(code) = code.as_deref()
            && matches!(code, "530" | "534" | "535" | "538" | "454")
        {
            let user = self.username.as_deref().unwrap_or("(none)");
            let message = format!(
                "the SMTP server {server} refused the sign-in as {user} ({detail}). \
                 Fix: check smtp.username and smtp.password (or smtp.password_file)"
            );
            return if code.starts_with('4') {
                DeliveryError::Transient(message)
            } else {
                DeliveryError::Permanent(message)
            };
        }
        if e.is_permanent() {
            return DeliveryError::Permanent(format!(
                "the SMTP server {server} refused the message ({detail}). \
                 Fix: check the recipient's address and smtp.from (the server may not let this account send as it)"
            ));
        }
        if e.is_transient() {
            return DeliveryError::Transient(format!(
                "the SMTP server {server} cannot take the message now ({detail}); it may later"
            ));
        }
        if e.is_tls() || detail.contains("certificate") || detail.contains("Certificate") {
            return DeliveryError::Transient(format!(
                "the TLS connection to {server} failed ({detail}). Fix: if the server's certificate \
                 comes from a private CA, set smtp.ca_file to that CA's PEM file; check that smtp.host \
                 is the name in the certificate, and smtp.security (\"starttls\" on 587, \"tls\" on 465)"
            ));
        }
        if e.is_timeout() {
            return DeliveryError::Transient(format!(
                "the SMTP server {server} did not answer in time ({detail}). \
                 Fix: check smtp.host, smtp.port and smtp.security, and that a firewall lets Twofold reach it"
            ));
        }
        if detail.contains("No compatible authentication mechanism") {
            return DeliveryError::Permanent(format!(
                "the SMTP server {server} offers no sign-in that Twofold can use over this connection \
                 ({detail}). Fix: use security = \"starttls\" or \"tls\" (servers offer AUTH only over TLS), \
                 or remove smtp.username"
            ));
        }
        DeliveryError::Transient(format!(
            "the SMTP server {server} cannot be reached ({detail}). \
             Fix: check smtp.host and smtp.port, and that the server is running"
        ))
    }
}

/// The error and its causes, one after the other.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[async_trait]
impl EmailChannel for SmtpChannel {
    fn provider(&self) -> &'static str {
        "smtp"
    }

    #[tracing::instrument(skip_all, fields(channel = "smtp"))]
    async fn send_email(&self, email: &Email) -> Result<MessageId, DeliveryError> {
        let to: Mailbox = email.to.parse().map_err(|e| {
            DeliveryError::Permanent(format!("{:?} is not an email address ({e})", email.to))
        })?;
        let domain = self.from.email.domain().to_owned();
        let id = format!("<{}@{domain}>", hex::encode(rand::random::<[u8; 16]>()));
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(email.text_body.clone())
            .map_err(|e| DeliveryError::Permanent(format!("the email cannot be built ({e})")))?;
        match self.transport.send(message).await {
            Ok(_) => {
                tracing::info!(server = %self.server, message_id = %id, "email sent");
                Ok(MessageId(id))
            }
            Err(e) => {
                let error = self.delivery_error(&e);
                tracing::warn!(server = %self.server, error = %error, "email not sent");
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn good() -> SmtpConfig {
        SmtpConfig {
            host: "smtp.example.com".into(),
            from: "Twofold <mfa@example.com>".into(),
            username: Some("mfa".into()),
            password: Some(Secret::new("pw")),
            ..SmtpConfig::default()
        }
    }

    #[test]
    fn a_bad_smtp_section_names_the_key_and_the_fix() {
        assert!(good().check().is_ok());
        let cases = [
            (
                SmtpConfig {
                    host: String::new(),
                    ..good()
                },
                "smtp.host",
            ),
            (
                SmtpConfig {
                    from: "not an address".into(),
                    ..good()
                },
                "smtp.from",
            ),
            (
                SmtpConfig {
                    password: None,
                    ..good()
                },
                "smtp.password",
            ),
            (
                SmtpConfig {
                    username: None,
                    ..good()
                },
                "smtp.username",
            ),
            (
                SmtpConfig {
                    timeout_seconds: 0,
                    ..good()
                },
                "smtp.timeout_seconds",
            ),
        ];
        for (config, key) in cases {
            let message = config.check().unwrap_err().0;
            assert!(message.contains(key), "{message}");
            assert!(message.contains("Fix:"), "{message}");
        }
    }

    #[tokio::test]
    async fn the_description_never_shows_the_password() {
        let channel = SmtpChannel::from_config(&SmtpConfig {
            password: Some(Secret::new("hunter2-secret")),
            ..good()
        })
        .unwrap();
        let described = channel.describe();
        assert_eq!(
            described,
            "smtp.example.com:587 (STARTTLS, signed in as mfa)"
        );
        let config = SmtpConfig {
            password: Some(Secret::new("hunter2-secret")),
            ..good()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
