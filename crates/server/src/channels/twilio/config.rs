//! `[twilio]`: the Twilio account that places calls and sends text messages.

use crate::config::{ConfigError, Secret};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Twilio's REST API, unless `api_base` says otherwise.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// `[twilio]`: the account, the sender and the address Twilio calls back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioConfig {
    /// The account's SID (`AC` followed by 32 hexadecimal digits).
    pub account_sid: String,
    /// The account's auth token: it signs in to the REST API and signs Twilio's webhooks.
    pub auth_token: Option<Secret>,
    /// A file holding the auth token; wins over `auth_token`.
    pub auth_token_file: Option<PathBuf>,
    /// The Twilio number calls and texts come from, in E.164 form (`+33612345678`).
    #[serde(deserialize_with = "phone_number")]
    pub from: Option<String>,
    /// A messaging service that chooses the sender of texts (`MG…`), used when `from` is
    /// not set.
    pub messaging_service_sid: Option<String>,
    /// Where the REST API is: Twilio's own, or (over `http://`, loopback only) a stand-in.
    pub api_base: String,
    /// The public address of this server as Twilio reaches it (`https://mfa.example.com`):
    /// the webhooks' addresses start with it, and Twilio signs them over it.
    pub public_url: String,
    /// How long one request to the REST API may take.
    pub timeout_seconds: u64,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            account_sid: String::new(),
            auth_token: None,
            auth_token_file: None,
            from: None,
            messaging_service_sid: None,
            api_base: DEFAULT_API_BASE.to_owned(),
            public_url: String::new(),
            timeout_seconds: 10,
        }
    }
}

impl TwilioConfig {
    /// Refuses values that cannot work, naming the key, the value and the fix. `voice` and
    /// `sms` say which kinds of message Twilio delivers (what each needs of the sender).
    pub fn check(&self, voice: bool, sms: bool) -> Result<(), ConfigError> {
        let sid = self.account_sid.trim();
        if sid.is_empty() {
            return Err(ConfigError(
                "twilio.account_sid is not set. Fix: copy the Account SID (AC…) from the Twilio console."
                    .into(),
            ));
        }
        if !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError(format!(
                "twilio.account_sid = {:?}: not an Account SID. Fix: copy the Account SID (AC followed by 32 hexadecimal digits) from the Twilio console.",
                self.account_sid
            )));
        }
        if self.auth_token.is_none() && self.auth_token_file.is_none() {
            return Err(ConfigError(
                "twilio.auth_token is not set. Fix: set twilio.auth_token_file to a file holding the account's Auth Token (or twilio.auth_token)."
                    .into(),
            ));
        }
        if let Some(from) = &self.from
            && !is_e164(from)
        {
            return Err(ConfigError(format!(
                "twilio.from = {from:?}: not a phone number in E.164 form. Fix: use your Twilio number as +<country code><number>, for example \"+33612345678\"."
            )));
        }
        if let Some(service) = &self.messaging_service_sid
            && (service.trim().is_empty() || !service.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(ConfigError(format!(
                "twilio.messaging_service_sid = {service:?}: not a Messaging Service SID. Fix: copy it (MG…) from the Twilio console, or remove the key."
            )));
        }
        if voice && self.from.is_none() {
            return Err(ConfigError(
                "channels.voice = \"twilio\" but twilio.from is not set: calls need a caller number. Fix: set twilio.from to your Twilio number (\"+33612345678\")."
                    .into(),
            ));
        }
        if sms && self.from.is_none() && self.messaging_service_sid.is_none() {
            return Err(ConfigError(
                "channels.sms = \"twilio\" but neither twilio.from nor twilio.messaging_service_sid is set. Fix: set twilio.from to your Twilio number, or twilio.messaging_service_sid to a Messaging Service."
                    .into(),
            ));
        }
        check_base(
            "twilio.api_base",
            &self.api_base,
            "\"https://api.twilio.com\"",
        )?;
        if self.public_url.trim().is_empty() {
            return Err(ConfigError(
                "twilio.public_url is not set. Fix: set it to the https:// address at which Twilio reaches this server (\"https://mfa.example.com\"); the webhooks under /hooks/twilio/ are signed over it."
                    .into(),
            ));
        }
        check_base(
            "twilio.public_url",
            &self.public_url,
            "the public https:// address of this server (\"https://mfa.example.com\")",
        )?;
        if self.timeout_seconds == 0 || self.timeout_seconds > 120 {
            return Err(ConfigError(format!(
                "twilio.timeout_seconds = {}: out of range. Fix: use 1 to 120 (10 is usual).",
                self.timeout_seconds
            )));
        }
        Ok(())
    }

    /// The auth token: the file's content (trimmed) when `auth_token_file` is set, else
    /// `auth_token`.
    pub fn read_auth_token(&self) -> Result<Secret, ConfigError> {
        let token = match (&self.auth_token_file, &self.auth_token) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| {
                    ConfigError(format!(
                        "twilio.auth_token_file = {}: cannot be read ({e}). Fix: point it at a readable file holding the account's Auth Token.",
                        path.display()
                    ))
                })?,
            (None, Some(token)) => token.expose().trim().to_owned(),
            (None, None) => String::new(),
        };
        if token.is_empty() {
            return Err(ConfigError(
                "twilio.auth_token is empty. Fix: set twilio.auth_token_file to a file holding the account's Auth Token (or twilio.auth_token)."
                    .into(),
            ));
        }
        Ok(Secret::new(token))
    }

    /// `api_base` without a trailing slash.
    pub fn api_base(&self) -> &str {
        self.api_base.trim().trim_end_matches('/')
    }

    /// `public_url` without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.public_url.trim().trim_end_matches('/')
    }

    /// The full address of the webhook at `path` (`/hooks/twilio/voice/…`), as Twilio
    /// requests it and signs it.
    pub fn webhook_url(&self, path: &str) -> String {
        format!("{}/{}", self.public_url(), path.trim_start_matches('/'))
    }
}

/// A phone number as a string, or as the number an environment variable's value
/// `+15005550006` is read as (its `+` given back).
fn phone_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Text(String),
        Digits(u64),
    }
    Ok(Option::<Number>::deserialize(d)?.map(|n| match n {
        Number::Text(text) => text,
        Number::Digits(digits) => format!("+{digits}"),
    }))
}

/// `+` then 2 to 15 digits, the first not 0.
fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// An `https://` address, or an `http://` one to this machine; no query, no fragment.
fn check_base(key: &str, value: &str, example: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(value.trim()).map_err(|e| {
        ConfigError(format!(
            "{key} = {value:?}: not an address ({e}). Fix: use {example}."
        ))
    })?;
    if parsed.query().is_some() || parsed.fragment().is_some() || parsed.username() != "" {
        return Err(ConfigError(format!(
            "{key} = {value:?}: must not carry a query, a fragment or a user name. Fix: use {example}."
        )));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(ConfigError(format!(
            "{key} = {value:?}: http:// is accepted only for this machine (127.0.0.1, ::1, localhost), where a stand-in runs; anything else would carry the auth token or the webhooks in clear. Fix: use {example}."
        ))),
        _ => Err(ConfigError(format!(
            "{key} = {value:?}: not an https:// address. Fix: use {example}."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> TwilioConfig {
        TwilioConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: Some(Secret::new("s3cr3t-value")),
            from: Some("+33612345678".into()),
            public_url: "https://mfa.example.com/".into(),
            ..TwilioConfig::default()
        }
    }

    fn error(config: &TwilioConfig, voice: bool, sms: bool) -> String {
        match config.check(voice, sms) {
            Ok(()) => String::from("accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn a_complete_section_is_accepted_with_twilios_api_and_a_ten_second_timeout() {
        let config = valid();
        assert_eq!(error(&config, true, true), "accepted");
        assert_eq!(config.api_base(), "https://api.twilio.com");
        assert_eq!(config.timeout_seconds, 10);
        assert_eq!(
            config.webhook_url("/hooks/twilio/voice/a1"),
            "https://mfa.example.com/hooks/twilio/voice/a1"
        );
    }

    #[test]
    fn api_base_over_http_is_refused_unless_it_is_this_machine() {
        let mut config = valid();
        config.api_base = "http://api.twilio.com".into();
        let err = error(&config, true, true);
        assert!(
            err.contains("twilio.api_base") && err.contains("Fix:"),
            "{err}"
        );
        for base in [
            "http://127.0.0.1:4010",
            "http://[::1]:4010/",
            "http://localhost:1",
        ] {
            config.api_base = base.into();
            assert_eq!(error(&config, true, true), "accepted", "{base}");
        }
        config.api_base = "ftp://api.twilio.com".into();
        assert!(error(&config, true, true).contains("twilio.api_base"));
    }

    #[test]
    fn public_url_is_required_and_must_be_https_away_from_this_machine() {
        let mut config = valid();
        config.public_url = String::new();
        let err = error(&config, true, true);
        assert!(err.contains("twilio.public_url is not set"), "{err}");
        config.public_url = "http://mfa.example.com".into();
        let err = error(&config, true, true);
        assert!(
            err.contains("twilio.public_url") && err.contains("https://"),
            "{err}"
        );
        config.public_url = "https://mfa.example.com/?x=1".into();
        assert!(error(&config, true, true).contains("query"));
        config.public_url = "http://127.0.0.1:8443".into();
        assert_eq!(error(&config, true, true), "accepted");
    }

    #[test]
    fn calls_need_from_and_texts_need_from_or_a_messaging_service() {
        let mut config = valid();
        config.from = None;
        assert!(error(&config, true, false).contains("twilio.from"));
        assert!(error(&config, false, true).contains("twilio.messaging_service_sid"));
        config.messaging_service_sid = Some("MG0123456789abcdef0123456789abcdef".into());
        assert_eq!(error(&config, false, true), "accepted");
        assert!(error(&config, true, true).contains("calls need a caller number"));
        config.from = Some("0612345678".into());
        assert!(error(&config, false, true).contains("E.164"));
    }

    #[test]
    fn the_auth_token_is_required_and_the_file_wins_trimmed() {
        let mut config = valid();
        config.auth_token = None;
        assert!(error(&config, true, true).contains("twilio.auth_token"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  from-the-file\n").unwrap();
        config.auth_token = Some(Secret::new("from-the-key"));
        config.auth_token_file = Some(path);
        assert_eq!(error(&config, true, true), "accepted");
        assert_eq!(config.read_auth_token().unwrap().expose(), "from-the-file");
        config.auth_token_file = Some(dir.path().join("missing"));
        let err = config.read_auth_token().unwrap_err().0;
        assert!(err.contains("twilio.auth_token_file"), "{err}");
    }

    #[test]
    fn the_auth_token_never_shows_in_a_debug_print() {
        let config = valid();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("Secret(****)"), "{printed}");
    }

    #[test]
    fn account_sid_and_timeout_are_checked() {
        let mut config = valid();
        config.account_sid = "AC12/../x".into();
        assert!(error(&config, true, true).contains("twilio.account_sid"));
        config.account_sid = String::new();
        assert!(error(&config, true, true).contains("twilio.account_sid is not set"));
        let mut config = valid();
        config.timeout_seconds = 0;
        assert!(error(&config, true, true).contains("twilio.timeout_seconds"));
    }
}
