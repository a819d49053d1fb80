//! Phone calls and text messages through Twilio's REST API (`[channels] voice = "twilio"`,
//! `sms = "twilio"`, configured by `[twilio]`).
//!
//! A call is created with the addresses Twilio calls back: the TwiML of the call
//! (`/hooks/twilio/voice/{authentication}`) and its status callbacks
//! (`/hooks/twilio/call-status/{authentication}`); a text message with its status callback
//! (`/hooks/twilio/message-status/{authentication}`). Those webhooks check Twilio's
//! signature ([`signature::is_valid`]) with the account's auth token over `public_url`.
//!
//! Failures: Twilio's error answers (4xx with `{"code", "message", "more_info", "status"}`)
//! are [`DeliveryError::Permanent`] and name Twilio's code; a refused sign-in (401) names
//! the keys to fix. A connection that fails, a timeout, 429 or 5xx is tried again (three
//! attempts in all, after 250 ms then 750 ms), then [`DeliveryError::Transient`]. A timeout
//! may come after Twilio accepted the request, so a retried call can, rarely, ring twice.
//! No message or log carries the auth token.

mod config;
pub mod signature;

pub use config::{DEFAULT_API_BASE, TwilioConfig};

use super::{DeliveryError, MessageId, PhoneCall, TextChannel, TextMessage, VoiceChannel};
use crate::config::{ConfigError, Secret};
use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Twilio's REST API version in every resource path.
const API_VERSION: &str = "2010-04-01";
/// The pauses before the second and third attempts.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(750)];
/// How long Twilio lets a call ring before it gives up (`no-answer`).
const RING_SECONDS: u32 = 30;

/// Places calls and sends text messages through a Twilio account.
pub struct TwilioChannel {
    http: reqwest::Client,
    api_base: String,
    account_sid: String,
    auth_token: Secret,
    from: Option<String>,
    messaging_service_sid: Option<String>,
    public_url: String,
}

impl TwilioChannel {
    /// The channel `[twilio]` describes (checked, the auth token's file read).
    pub fn from_config(config: &TwilioConfig) -> Result<TwilioChannel, ConfigError> {
        config.check(false, false)?;
        let auth_token = config.read_auth_token()?;
        let timeout = Duration::from_secs(config.timeout_seconds);
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(config.api_base())?)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // An answer that sends the request elsewhere is not Twilio's API: never follow it
            // with the account's credentials.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("twofold/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ConfigError(format!("[twilio]: the HTTP client cannot be set up ({e})."))
            })?;
        tracing::info!(
            account_sid = %config.account_sid.trim(),
            api_base = %config.api_base(),
            public_url = %config.public_url(),
            "Twilio channel: calls and texts through the Twilio account; webhooks under public_url/hooks/twilio/"
        );
        Ok(TwilioChannel {
            http,
            api_base: config.api_base().to_owned(),
            account_sid: config.account_sid.trim().to_owned(),
            auth_token,
            from: config.from.clone(),
            messaging_service_sid: config.messaging_service_sid.clone(),
            public_url: config.public_url().to_owned(),
        })
    }

    /// The auth token, which signs Twilio's webhooks.
    pub fn auth_token(&self) -> &str {
        self.auth_token.expose()
    }

    /// The public address Twilio calls back, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The full address of the webhook at `path`, as Twilio requests and signs it.
    pub fn webhook_url(&self, path: &str) -> String {
        format!("{}/{}", self.public_url, path.trim_start_matches('/'))
    }

    /// Whether `signature` (the `X-Twilio-Signature` header) is Twilio's for a POST of
    /// `params` to the webhook at `path_and_query` under `public_url` (as
    /// [`signature::is_valid`]).
    pub fn verify_webhook(
        &self,
        path_and_query: &str,
        params: &[(String, String)],
        signature: &str,
    ) -> bool {
        signature::is_valid(
            self.auth_token.expose(),
            &self.webhook_url(path_and_query),
            params,
            signature,
        )
    }

    /// The parameters of the request that creates `call`.
    pub fn call_parameters(
        &self,
        call: &PhoneCall,
    ) -> Result<Vec<(String, String)>, DeliveryError> {
        let from = self.from.as_deref().ok_or_else(|| {
            DeliveryError::Permanent(
                "twilio.from is not set: calls need a caller number. Fix: set twilio.from to your Twilio number."
                    .into(),
            )
        })?;
        let id = path_segment(&call.authentication_id);
        let mut params = vec![
            pair("To", &call.to),
            pair("From", from),
            pair(
                "Url",
                &self.webhook_url(&format!("hooks/twilio/voice/{id}")),
            ),
            pair("Method", "POST"),
            pair(
                "StatusCallback",
                &self.webhook_url(&format!("hooks/twilio/call-status/{id}")),
            ),
        ];
        for event in ["initiated", "ringing", "answered", "completed"] {
            params.push(pair("StatusCallbackEvent", event));
        }
        params.push(pair("StatusCallbackMethod", "POST"));
        params.push(pair("Timeout", &RING_SECONDS.to_string()));
        if let Some(extension) = call.extension.as_deref().filter(|e| !e.is_empty()) {
            if !extension
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                return Err(DeliveryError::Permanent(format!(
                    "the extension {extension:?} of {} cannot be dialled: only digits, * and # can.",
                    call.to
                )));
            }
            // Each `w` waits half a second once the call is answered, before the digits.
            params.push(pair("SendDigits", &format!("wwww{extension}")));
        }
        Ok(params)
    }

    /// The parameters of the request that sends `message`.
    pub fn message_parameters(
        &self,
        message: &TextMessage,
    ) -> Result<Vec<(String, String)>, DeliveryError> {
        let mut params = vec![pair("To", &message.to)];
        match (&self.from, &self.messaging_service_sid) {
            (Some(from), _) => params.push(pair("From", from)),
            (None, Some(service)) => params.push(pair("MessagingServiceSid", service)),
            (None, None) => {
                return Err(DeliveryError::Permanent(
                    "neither twilio.from nor twilio.messaging_service_sid is set: texts need a sender. Fix: set one of them."
                        .into(),
                ));
            }
        }
        params.push(pair("Body", &message.body));
        if let Some(id) = &message.authentication_id {
            params.push(pair(
                "StatusCallback",
                &self.webhook_url(&format!("hooks/twilio/message-status/{}", path_segment(id))),
            ));
        }
        Ok(params)
    }

    /// POSTs `params` to the account's `resource` (`Calls`, `Messages`), trying again while
    /// Twilio is unreachable or overloaded.
    async fn create(
        &self,
        resource: &str,
        what: &str,
        params: &[(String, String)],
    ) -> Result<MessageId, DeliveryError> {
        let url = format!(
            "{}/{API_VERSION}/Accounts/{}/{resource}.json",
            self.api_base,
            path_segment(&self.account_sid)
        );
        let mut last_problem = String::new();
        for attempt in 0..=RETRY_DELAYS.len() {
            if attempt > 0 {
                tokio::time::sleep(RETRY_DELAYS[attempt - 1]).await;
            }
            match self.attempt(&url, what, params).await {
                Attempt::Created(id) => return Ok(id),
                Attempt::Refused(message) => return Err(DeliveryError::Permanent(message)),
                Attempt::Unavailable(problem) => {
                    tracing::warn!(
                        provider = "twilio",
                        attempt = attempt + 1,
                        problem = %problem,
                        "Twilio's API is unavailable"
                    );
                    last_problem = problem;
                }
            }
        }
        Err(DeliveryError::Transient(format!(
            "Twilio's API cannot be reached for {what} ({} attempts at {}): {last_problem}",
            RETRY_DELAYS.len() + 1,
            self.api_base
        )))
    }

    async fn attempt(&self, url: &str, what: &str, params: &[(String, String)]) -> Attempt {
        let response = self
            .http
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(params)
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return Attempt::Unavailable(describe(&e)),
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Attempt::Unavailable(format!("HTTP {status}, then {}", describe(&e))),
        };
        if status.is_success() {
            return match serde_json::from_slice::<Created>(&body) {
                Ok(Created { sid }) if !sid.is_empty() => Attempt::Created(MessageId(sid)),
                _ => Attempt::Refused(format!(
                    "Twilio answered HTTP {status} to {what} without the sid of what it created: {}",
                    excerpt(&body)
                )),
            };
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Unavailable(format!("HTTP {status}: {}", twilio_error(&body)));
        }
        if status == StatusCode::UNAUTHORIZED {
            return Attempt::Refused(format!(
                "Twilio refused the account's credentials (HTTP 401: {}). Fix: check twilio.account_sid and twilio.auth_token (or the file twilio.auth_token_file names).",
                twilio_error(&body)
            ));
        }
        Attempt::Refused(format!(
            "Twilio refused {what} (HTTP {}): {}",
            status.as_u16(),
            twilio_error(&body)
        ))
    }
}

/// The account as Twilio describes it (`GET /2010-04-01/Accounts/{AccountSid}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TwilioAccount {
    #[serde(default)]
    pub sid: String,
    #[serde(default)]
    pub friendly_name: String,
    /// `active`, `suspended` or `closed`.
    #[serde(default)]
    pub status: String,
}

impl TwilioChannel {
    /// Reads the account's own record, a request that changes nothing: proves that Twilio
    /// accepts `account_sid` and the auth token (`twofold doctor`). One attempt, no retry.
    pub async fn fetch_account(&self) -> Result<TwilioAccount, DeliveryError> {
        let url = format!(
            "{}/{API_VERSION}/Accounts/{}.json",
            self.api_base,
            path_segment(&self.account_sid)
        );
        let response = self
            .http
            .get(&url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .send()
            .await
            .map_err(|e| {
                DeliveryError::Transient(format!(
                    "Twilio's API at {} cannot be reached ({}). Fix: check twilio.api_base and that this machine may reach it (a firewall, a proxy)",
                    self.api_base,
                    describe(&e)
                ))
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            DeliveryError::Transient(format!("HTTP {status}, then {}", describe(&e)))
        })?;
        if status.is_success() {
            return serde_json::from_slice::<TwilioAccount>(&body).map_err(|_| {
                DeliveryError::Permanent(format!(
                    "{} answered HTTP {status} without an account record: {}. Fix: check that twilio.api_base is Twilio's API",
                    self.api_base,
                    excerpt(&body)
                ))
            });
        }
        Err(match status {
            StatusCode::UNAUTHORIZED => DeliveryError::Permanent(format!(
                "Twilio refused the account's credentials (HTTP 401: {}). Fix: check twilio.account_sid and twilio.auth_token (or the file twilio.auth_token_file names) against the Twilio console",
                twilio_error(&body)
            )),
            StatusCode::NOT_FOUND => DeliveryError::Permanent(format!(
                "Twilio has no account {} for these credentials (HTTP 404: {}). Fix: copy the Account SID that goes with the auth token from the Twilio console into twilio.account_sid",
                self.account_sid,
                twilio_error(&body)
            )),
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                DeliveryError::Transient(format!(
                    "Twilio's API is unavailable (HTTP {}: {}); try again later",
                    s.as_u16(),
                    twilio_error(&body)
                ))
            }
            s => DeliveryError::Permanent(format!(
                "Twilio refused to read the account (HTTP {}): {}",
                s.as_u16(),
                twilio_error(&body)
            )),
        })
    }
}

enum Attempt {
    Created(MessageId),
    Refused(String),
    Unavailable(String),
}

#[async_trait]
impl VoiceChannel for TwilioChannel {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    async fn call(&self, call: &PhoneCall) -> Result<MessageId, DeliveryError> {
        let params = self.call_parameters(call)?;
        let what = format!("the call to {}", call.to);
        let id = self.create("Calls", &what, &params).await?;
        tracing::info!(provider = "twilio", call_sid = %id, authentication_id = %call.authentication_id, "call created");
        Ok(id)
    }
}

#[async_trait]
impl TextChannel for TwilioChannel {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    async fn send_text(&self, message: &TextMessage) -> Result<MessageId, DeliveryError> {
        let params = self.message_parameters(message)?;
        let what = format!("the text to {}", message.to);
        let id = self.create("Messages", &what, &params).await?;
        tracing::info!(provider = "twilio", message_sid = %id, "text message created");
        Ok(id)
    }
}

#[derive(Deserialize)]
struct Created {
    #[serde(default)]
    sid: String,
}

/// Twilio's error answer.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
    more_info: Option<String>,
}

/// `21211 The 'To' number … is not a valid phone number. (https://www.twilio.com/docs/errors/21211)`,
/// or an excerpt of a body that is not Twilio's error.
fn twilio_error(body: &[u8]) -> String {
    match serde_json::from_slice::<TwilioError>(body) {
        Ok(TwilioError {
            code,
            message,
            more_info,
        }) if code.is_some() || message.is_some() => {
            let mut text = String::new();
            if let Some(code) = code {
                text.push_str(&code.to_string());
            }
            if let Some(message) = message {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(&printable(&message, 300));
            }
            if let Some(more) = more_info.filter(|m| !m.is_empty()) {
                text.push_str(&format!(" ({})", printable(&more, 200)));
            }
            text
        }
        _ => format!("not Twilio's error answer: {}", excerpt(body)),
    }
}

/// The start of a body, printable, for a message.
fn excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".into();
    }
    format!("{:?}", printable(&String::from_utf8_lossy(body), 120))
}

/// `text` without control characters, cut at `max` characters.
fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

/// `value` percent-encoded for one path segment.
fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// TLS to Twilio's API: the system's trusted roots, with ring.
fn tls_config(api_base: &str) -> Result<rustls::ClientConfig, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "a system CA certificate cannot be read");
    }
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 && api_base.starts_with("https://") {
        return Err(ConfigError(
            "[twilio]: the system has no trusted CA certificates, so Twilio's API cannot be checked. Fix: install the system's CA certificates (the ca-certificates package)."
                .into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("[twilio]: TLS cannot be set up ({e}).")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold_engine::Language;

    fn channel(from: Option<&str>, service: Option<&str>) -> TwilioChannel {
        let config = TwilioConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: Some(Secret::new("s3cr3t-value")),
            from: from.map(str::to_owned),
            messaging_service_sid: service.map(str::to_owned),
            api_base: "http://127.0.0.1:9".into(),
            public_url: "https://mfa.example.com/".into(),
            ..TwilioConfig::default()
        };
        TwilioChannel::from_config(&config).unwrap()
    }

    fn call(extension: Option<&str>) -> PhoneCall {
        PhoneCall {
            authentication_id: "au 1/2".into(),
            to: "+33612345678".into(),
            extension: extension.map(str::to_owned),
            language: Language::default(),
            say: "Press pound".into(),
            expect: None,
        }
    }

    fn values<'a>(params: &'a [(String, String)], name: &str) -> Vec<&'a str> {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn webhook_addresses_join_the_public_url_without_doubled_slashes_and_encode_the_id() {
        let params = channel(Some("+15005550006"), None)
            .call_parameters(&call(None))
            .unwrap();
        assert_eq!(
            values(&params, "Url"),
            ["https://mfa.example.com/hooks/twilio/voice/au%201%2F2"]
        );
        assert_eq!(
            values(&params, "StatusCallback"),
            ["https://mfa.example.com/hooks/twilio/call-status/au%201%2F2"]
        );
        assert!(values(&params, "SendDigits").is_empty());
    }

    #[test]
    fn an_extension_that_is_not_digits_is_not_dialled() {
        let err = channel(Some("+15005550006"), None)
            .call_parameters(&call(Some("12w9999")))
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Permanent(_)), "{err:?}");
    }

    #[test]
    fn a_call_without_a_caller_number_is_refused_before_any_request() {
        let err = channel(None, Some("MG1"))
            .call_parameters(&call(None))
            .unwrap_err();
        assert!(err.to_string().contains("twilio.from"), "{err}");
    }

    #[test]
    fn twilios_error_answer_is_named_by_its_code_and_any_body_is_described() {
        let body = br#"{"code": 21211, "message": "The 'To' number +3361 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#;
        assert_eq!(
            twilio_error(body),
            "21211 The 'To' number +3361 is not a valid phone number. (https://www.twilio.com/docs/errors/21211)"
        );
        for body in [
            &b""[..],
            b"<html>bad gateway</html>",
            b"{\"code\": 2",
            b"null",
            b"\xff\xfe",
        ] {
            let text = twilio_error(body);
            assert!(text.starts_with("not Twilio's error answer"), "{text}");
        }
        let long = "x".repeat(10_000);
        assert!(twilio_error(long.as_bytes()).chars().count() < 200);
    }

    #[test]
    fn a_webhook_is_verified_over_the_public_url_and_its_path() {
        let channel = channel(Some("+15005550006"), None);
        let params = vec![pair("Digits", "1234"), pair("CallSid", "CA1")];
        let url = "https://mfa.example.com/hooks/twilio/voice/au_1?attempt=2";
        let header = signature::signature("s3cr3t-value", url, &params);
        assert!(channel.verify_webhook("/hooks/twilio/voice/au_1?attempt=2", &params, &header));
        assert!(!channel.verify_webhook("/hooks/twilio/voice/au_2?attempt=2", &params, &header));
        assert!(!channel.verify_webhook("/hooks/twilio/voice/au_1", &params, &header));
        let other = signature::signature("another-token", url, &params);
        assert!(!channel.verify_webhook("/hooks/twilio/voice/au_1?attempt=2", &params, &other));
    }

    #[test]
    fn the_channel_shows_the_token_only_to_who_asks_for_it() {
        let channel = channel(Some("+15005550006"), None);
        assert_eq!(channel.auth_token(), "s3cr3t-value");
        assert_eq!(channel.public_url(), "https://mfa.example.com");
    }
}
