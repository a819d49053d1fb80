//! The configuration file and its environment overrides.
//!
//! Layers, later ones winning: built-in defaults → the TOML file → `TWOFOLD_<SECTION>__<KEY>`
//! environment variables (`TWOFOLD_LISTEN`, `TWOFOLD_DATA_DIR` for top-level keys) → secrets
//! read from the files named by `*_file` keys. Every key is known: a misspelt one stops the
//! start with its name, where it came from, and what to do instead.

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use twofold_engine::Settings;

/// A value that must never appear in a log or a debug print.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port the server listens on.
    pub listen: SocketAddr,
    /// Where the SQLite database, the generated certificate and the logs live.
    pub data_dir: PathBuf,
    pub tls: TlsConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub metrics: MetricsConfig,
    pub secrets: SecretsConfig,
    /// For `twofold portal`: how the portal reaches the MFA server's Web Service SDK.
    pub sdk: SdkConfig,
    /// Who delivers phone calls, text messages and emails.
    pub channels: ChannelsConfig,
    /// `[radius]`: the RADIUS servers that check passwords when `primary_authentication`
    /// is `radius`.
    pub radius: Option<crate::directory::RadiusConfig>,
    /// `[smtp]`: the SMTP server that sends emails when `channels.email = "smtp"`.
    pub smtp: Option<crate::channels::SmtpConfig>,
    /// `[twilio]`: the Twilio account that places calls and sends texts when
    /// `channels.voice` or `channels.sms` is `"twilio"`.
    pub twilio: Option<crate::channels::TwilioConfig>,
    /// The LDAP directory or Active Directory (`primary_authentication = "ldap"`, imports).
    pub ldap: Option<crate::directory::ldap::LdapConfig>,
    /// `[app]`: the authenticator app's protocol (`/app/v1`).
    pub app: AppConfig,
    /// Seeds for the settings kept in the store (applied on first start only).
    pub settings: BTreeMap<String, serde_json::Value>,
    /// `[[sync]]`: which directory users an import or a sync brings in, each item with the
    /// defaults it gives new users; the first item a user matches wins.
    pub sync: Vec<SyncItem>,
    /// The file this configuration was read from (`--config`), if any: not a key, so that
    /// the commands the server prints name the same file.
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Serve HTTPS. Turn off only behind a reverse proxy that terminates TLS.
    pub enabled: bool,
    /// PEM certificate chain. Without it, a self-signed certificate is generated.
    pub cert_file: Option<PathBuf>,
    /// PEM private key for `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cert_file: None,
            key_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Peers whose `X-Forwarded-For` header is believed (your reverse proxies).
    pub trusted_proxies: Vec<IpNet>,
    /// The largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// The largest token file the admin console's import accepts (its own limit, so that
    /// other routes keep `max_body_bytes`).
    pub max_import_bytes: usize,
    /// A request that takes longer than this many seconds is answered 408.
    pub request_timeout_seconds: u64,
    /// With `tls.enabled = false`, the SDK still insists on TLS: it accepts a call only
    /// when a trusted proxy says the client used HTTPS (`X-Forwarded-Proto: https`).
    /// `true` accepts plain HTTP calls too (a private network you trust).
    pub sdk_allow_plain_http: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_import_bytes: 10 * 1024 * 1024,
            request_timeout_seconds: 30,
            sdk_allow_plain_http: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://…` for PostgreSQL. Empty: SQLite in the data directory.
    pub url: Option<Secret>,
    /// A file holding the URL (for secrets managers); wins over `url`.
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
    /// How long to wait for the database at start and for a pooled connection.
    pub connect_timeout_seconds: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: 16,
            connect_timeout_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `twofold_server=debug,info`…
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Sign-in attempts one client address may make per minute.
    pub sign_in_per_ip_per_minute: u32,
    /// Sign-in attempts for one username per minute, from anywhere.
    pub sign_in_per_username_per_minute: u32,
    /// Second-factor attempts (a code, security answers) one user may make per minute on
    /// one node: the portal's `/verify` and the SDK's `/answer`.
    pub second_factor_per_user_per_minute: u32,
    /// Second-factor attempts from one client address per minute on one node (for the SDK,
    /// the user's address given as `client_ip` when the authentication started).
    pub second_factor_per_ip_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            sign_in_per_ip_per_minute: 30,
            sign_in_per_username_per_minute: 10,
            second_factor_per_user_per_minute:
                crate::service::AttemptLimits::DEFAULT_PER_USER_PER_MINUTE,
            second_factor_per_ip_per_minute:
                crate::service::AttemptLimits::DEFAULT_PER_IP_PER_MINUTE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics`.
    pub enabled: bool,
}

/// `[app]`: how authenticator devices reach this server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// The URL given with activation codes (short: users may type it). Empty: the
    /// `portal_url` setting, then the server's own address.
    pub public_url: String,
    /// The longest a device's `GET /app/v1/requests?wait=` is held, in seconds (1 to 60).
    pub long_poll_seconds: u64,
    /// Allow UnifiedPush endpoints on private and loopback addresses (tests, or a ntfy server
    /// on the same private network). Off, such endpoints are refused.
    pub allow_private_push_endpoints: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            long_poll_seconds: 25,
            allow_private_push_endpoints: false,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The key that seals OATH seeds at rest. Without `key` or `key_file`, keys are generated
/// and kept in `data_dir/keys/` (copy that folder to every node, and back it up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// 32 bytes as 64 hex digits or base64.
    pub key: Option<Secret>,
    /// A file holding the key, in the same encodings.
    pub key_file: Option<PathBuf>,
}

/// Who delivers one kind of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChannelProvider {
    /// For development: messages go to the log and to `/dev/inbox`, never to anyone.
    #[default]
    Console,
    /// Emails through the SMTP server of `[smtp]` (emails only).
    Smtp,
    /// Phone calls and text messages through the Twilio account of `[twilio]`.
    Twilio,
}

/// `[channels]`: the provider of each kind of message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelsConfig {
    /// Phone calls.
    pub voice: ChannelProvider,
    /// Text messages (SMS).
    pub sms: ChannelProvider,
    /// Emails.
    pub email: ChannelProvider,
}

impl ChannelsConfig {
    /// The kinds whose messages go to the console, by their keys (`voice`, `sms`, `email`).
    pub fn console_kinds(&self) -> Vec<&'static str> {
        [
            ("voice", self.voice),
            ("sms", self.sms),
            ("email", self.email),
        ]
        .into_iter()
        .filter(|(_, provider)| *provider == ChannelProvider::Console)
        .map(|(key, _)| key)
        .collect()
    }

    /// Whether any kind goes to the console (and so `/dev/inbox` is served).
    pub fn uses_console(&self) -> bool {
        !self.console_kinds().is_empty()
    }
}

/// The MFA server as the portal on its own host reaches it (`twofold portal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdkConfig {
    /// The MFA server, `https://mfa-internal.example.com:8443`.
    pub url: Option<String>,
    /// A service account in the `sdk` role (`twofold service-account add NAME`).
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// A file holding the password; wins over `password`.
    pub password_file: Option<PathBuf>,
    /// PEM certificates to trust: the server's (self-signed) certificate or its CA.
    pub ca_file: Option<PathBuf>,
    /// The server certificate's SHA-256 fingerprint, as `twofold serve` prints it.
    pub pin_sha256: Option<String>,
    pub timeout_seconds: u64,
    /// Extra attempts for idempotent calls when the server does not answer.
    pub retries: u32,
}

impl Default for SdkConfig {
    fn default() -> Self {
        Self {
            url: None,
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            pin_sha256: None,
            timeout_seconds: 10,
            retries: 2,
        }
    }
}

impl SdkConfig {
    /// The client configuration, or a message naming what is missing and how to fix it.
    pub fn client_config(&self) -> Result<twofold_sdk::client::ClientConfig, ConfigError> {
        let missing = |key: &str, fix: &str| {
            ConfigError(format!(
                "sdk.{key} is not set: `twofold portal` needs it. Fix: {fix}"
            ))
        };
        let url = self.url.clone().ok_or_else(|| {
            missing(
                "url",
                "set it to the MFA server, for example \"https://mfa.example.com:8443\"",
            )
        })?;
        let username = self.username.clone().ok_or_else(|| {
            missing(
                "username",
                "create a service account with `twofold service-account add portal` on the server",
            )
        })?;
        let password = match &self.password_file {
            Some(path) => std::fs::read_to_string(path).map(|s| s.trim().to_owned()).map_err(|e| {
                ConfigError(format!("sdk.password_file = {}: cannot be read ({e}). Fix: point it at the file holding the service account's secret.", path.display()))
            })?,
            None => self
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .ok_or_else(|| missing("password", "set sdk.password or sdk.password_file to the service account's secret"))?,
        };
        if self.ca_file.is_none() && self.pin_sha256.is_none() {
            return Err(missing(
                "ca_file",
                "set it to the server's certificate (data_dir/tls/cert.pem on the server), or set sdk.pin_sha256 to its fingerprint",
            ));
        }
        Ok(twofold_sdk::client::ClientConfig {
            url,
            username,
            password,
            ca_file: self.ca_file.clone(),
            pin_sha256: self.pin_sha256.clone(),
            timeout: std::time::Duration::from_secs(self.timeout_seconds.max(1)),
            retries: self.retries,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("twofold-data"),
            tls: TlsConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            limits: LimitsConfig::default(),
            metrics: MetricsConfig::default(),
            secrets: SecretsConfig::default(),
            sdk: SdkConfig::default(),
            channels: ChannelsConfig::default(),
            radius: None,
            smtp: None,
            twilio: None,
            ldap: None,
            app: AppConfig::default(),
            settings: BTreeMap::new(),
            sync: Vec::new(),
            source_file: None,
        }
    }
}

/// A configuration that cannot be used. The message names the key, the value and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Which database the store uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(Secret),
}

impl Config {
    /// Loads the configuration: the file (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Loads with an explicit environment, so tests need not touch the process's own.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "the configuration file {} cannot be read: it does not exist or is not a file. \
                     Fix: give the path of a TOML file (see twofold.example.toml), or leave out --config.",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("TWOFOLD_")
                    && !IGNORED_ENV.contains(&k.as_str())
                    && !IGNORED_ENV_PREFIXES.iter().any(|p| k.starts_with(p))
            })
            .collect();
        figment = figment.merge(env_provider(env));
        let mut config: Config = figment
            .extract()
            .map_err(|e| describe_figment_error(&figment, e))?;
        config.check()?;
        config.source_file = file.map(Path::to_path_buf);
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.tls.cert_file.is_some() != self.tls.key_file.is_some() {
            return Err(ConfigError(
                "tls.cert_file and tls.key_file must be given together. \
                 Fix: set both to PEM files, or neither to use a generated self-signed certificate."
                    .into(),
            ));
        }
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError(format!(
                "http.max_body_bytes = {}: too small for the portal's forms. Fix: use at least 1024.",
                self.http.max_body_bytes
            )));
        }
        if !(1024..=token_import_max()).contains(&self.http.max_import_bytes) {
            return Err(ConfigError(format!(
                "http.max_import_bytes = {}: token files are read whole. Fix: use 1024 to {}.",
                self.http.max_import_bytes,
                token_import_max()
            )));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError(
                "database.max_connections = 0: the store needs at least one connection. Fix: use 1 or more."
                    .into(),
            ));
        }
        for (name, value) in [
            (
                "limits.sign_in_per_ip_per_minute",
                self.limits.sign_in_per_ip_per_minute,
            ),
            (
                "limits.sign_in_per_username_per_minute",
                self.limits.sign_in_per_username_per_minute,
            ),
            (
                "limits.second_factor_per_user_per_minute",
                self.limits.second_factor_per_user_per_minute,
            ),
            (
                "limits.second_factor_per_ip_per_minute",
                self.limits.second_factor_per_ip_per_minute,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError(format!(
                    "{name} = 0 would refuse every sign-in. Fix: use 1 or more."
                )));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError(format!(
                "log.level = {:?}: {e}. Fix: use a level such as \"info\" or \"debug\".",
                self.log.level
            )));
        }
        if let Some(radius) = &self.radius {
            radius.check()?;
        }
        self.check_channels()?;
        if !(1..=60).contains(&self.app.long_poll_seconds) {
            return Err(ConfigError(format!(
                "app.long_poll_seconds = {}: out of range. Fix: use 1 to 60 (25 is a good value).",
                self.app.long_poll_seconds
            )));
        }
        if self.app.long_poll_seconds >= self.http.request_timeout_seconds {
            return Err(ConfigError(format!(
                "app.long_poll_seconds = {} must be shorter than http.request_timeout_seconds = {}: \
                 a long-poll would be cut off. Fix: lower app.long_poll_seconds or raise the timeout.",
                self.app.long_poll_seconds, self.http.request_timeout_seconds
            )));
        }
        let url = self.app.public_url.trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError(format!(
                "app.public_url = {url:?}: not an http(s) URL. Fix: write it in full, e.g. \"https://mfa.example.com\"."
            )));
        }
        if let Some(ldap) = &self.ldap {
            ldap.check()?;
        }
        self.seed_settings()?;
        for (index, item) in self.sync.iter().enumerate() {
            item.check()
                .map_err(|e| ConfigError(format!("sync[{index}].{e}")))?;
        }
        Ok(())
    }

    fn check_channels(&self) -> Result<(), ConfigError> {
        for (key, provider) in [("voice", self.channels.voice), ("sms", self.channels.sms)] {
            if provider == ChannelProvider::Smtp {
                return Err(ConfigError(format!(
                    "channels.{key} = \"smtp\": SMTP delivers emails only. Fix: use \"console\" or \"twilio\" for {key}."
                )));
            }
        }
        if self.channels.email == ChannelProvider::Twilio {
            return Err(crate::channels::twilio_sends_no_email());
        }
        let voice = self.channels.voice == ChannelProvider::Twilio;
        let sms = self.channels.sms == ChannelProvider::Twilio;
        match &self.twilio {
            None if voice || sms => {
                return Err(ConfigError(format!(
                    "channels.{} = \"twilio\" but the configuration has no [twilio] section. \
                     Fix: add [twilio] with account_sid, auth_token_file, from and public_url (see twofold.example.toml).",
                    if voice { "voice" } else { "sms" }
                )));
            }
            Some(twilio) => twilio.check(voice, sms)?,
            None => {}
        }
        match (&self.smtp, self.channels.email) {
            (None, ChannelProvider::Smtp) => Err(ConfigError(
                "channels.email = \"smtp\" but the configuration has no [smtp] section. \
                 Fix: add [smtp] with host and from (see twofold.example.toml)."
                    .into(),
            )),
            (Some(smtp), _) => smtp.check(),
            (None, _) => Ok(()),
        }
    }

    /// The settings this file seeds, checked against the settings' own rules.
    pub fn seed_settings(&self) -> Result<Settings, ConfigError> {
        Settings::from_entries(self.settings.clone()).map_err(|e| {
            ConfigError(format!(
                "settings.{} = {}: {}",
                e.key,
                if e.value.is_empty() {
                    "…".into()
                } else {
                    e.value.clone()
                },
                e.fix
            ))
        })
    }

    /// The database to use, reading `database.url_file` if it is set.
    pub fn database_target(&self) -> Result<DatabaseTarget, ConfigError> {
        let url = match &self.database.url_file {
            Some(path) => Some(std::fs::read_to_string(path).map(|s| s.trim().to_owned()).map_err(|e| {
                ConfigError(format!(
                    "database.url_file = {}: cannot be read ({e}). Fix: point it at a readable file holding the database URL.",
                    path.display()
                ))
            })?),
            None => self.database.url.as_ref().map(|s| s.expose().to_owned()),
        };
        match url.as_deref().map(str::trim) {
            None | Some("") => Ok(DatabaseTarget::Sqlite(self.data_dir.join("twofold.db"))),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(DatabaseTarget::Postgres(Secret::new(u)))
            }
            Some(u) if u.starts_with("sqlite:") => {
                let path = u
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                Ok(DatabaseTarget::Sqlite(PathBuf::from(path)))
            }
            Some(u) => Err(ConfigError(format!(
                "database.url = \"{}…\": not a database URL Twofold knows. \
                 Fix: use postgres://user:password@host/dbname, or leave it empty for SQLite in the data directory.",
                u.chars().take(12).collect::<String>()
            ))),
        }
    }
}

/// Variables with the prefix that are not configuration keys: the `--config` option's, and
/// the test suite's own (`TWOFOLD_TEST_*`, `TWOFOLD_BIN`).
const IGNORED_ENV: &[&str] = &["TWOFOLD_CONFIG", "TWOFOLD_LOG", "TWOFOLD_BIN"];
const IGNORED_ENV_PREFIXES: &[&str] = &["TWOFOLD_TEST_"];

/// `TWOFOLD_<SECTION>__<KEY>` variables as a figment provider. figment's own `Env` reads
/// the process environment; this one takes an explicit list so tests can pass their own,
/// and names the variable in error messages.
struct EnvVars(Vec<(String, String)>);

impl figment::Provider for EnvVars {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("environment variable").interpolater(|_, path| {
            let keys: Vec<String> = path.iter().map(|k| k.to_ascii_uppercase()).collect();
            format!("TWOFOLD_{}", keys.join("__"))
        })
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut root = figment::value::Dict::new();
        for (name, raw) in &self.0 {
            let Some(rest) = name.strip_prefix("TWOFOLD_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let value: figment::value::Value =
                raw.parse().unwrap_or_else(|_: std::convert::Infallible| {
                    figment::value::Value::from(raw.clone())
                });
            insert_path(&mut root, &path, value);
        }
        Ok(figment::Profile::Default.collect(root))
    }
}

fn env_provider(vars: Vec<(String, String)>) -> EnvVars {
    EnvVars(vars)
}

fn insert_path(dict: &mut figment::value::Dict, path: &[String], value: figment::value::Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| figment::value::Value::from(figment::value::Dict::new()));
            if let figment::value::Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            } else {
                let mut inner = figment::value::Dict::new();
                insert_path(&mut inner, rest, value);
                *entry = inner.into();
            }
        }
    }
}

/// Turns figment's errors into one message per problem: key, value, source and fix.
fn describe_figment_error(figment: &Figment, error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let mut lines = Vec::new();
    for e in error {
        let key = e.path.join(".");
        let source = e
            .metadata
            .as_ref()
            .map(|m| match &m.source {
                Some(figment::Source::File(p)) => format!(" (in {})", p.display()),
                _ if m.name == "environment variable" => {
                    let keys: Vec<&str> = e.path.iter().map(String::as_str).collect();
                    format!(
                        " (from {})",
                        m.interpolate(&figment::Profile::Default, &keys)
                    )
                }
                _ => String::new(),
            })
            .unwrap_or_default();
        let value = figment
            .find_value(&key)
            .ok()
            .map(|v| match v {
                figment::value::Value::String(_, s) => format!("{s:?}"),
                other => format!("{other:?}"),
            })
            .map(|v| format!(" = {v}"))
            .unwrap_or_default();
        let line = match &e.kind {
            Kind::UnknownField(field, expected) => {
                let full = if key.is_empty() {
                    field.clone()
                } else if key == *field || key.ends_with(&format!(".{field}")) {
                    key.clone()
                } else {
                    format!("{key}.{field}")
                };
                format!(
                    "unknown configuration key `{full}`{source}. Fix: check its spelling or remove it; \
                     the keys allowed here are: {}. twofold.example.toml explains each.",
                    expected.join(", ")
                )
            }
            Kind::InvalidType(actual, expected) => format!(
                "`{key}` = {actual}{source}: expected {expected}. Fix: {}",
                hint(&key, expected)
            ),
            Kind::InvalidValue(actual, expected) => format!(
                "`{key}` = {actual}{source}: expected {expected}. Fix: {}",
                hint(&key, expected)
            ),
            Kind::UnknownVariant(actual, expected) => format!(
                "`{key}` = \"{actual}\"{source}: not one of the choices. Fix: use one of {}.",
                expected.join(", ")
            ),
            Kind::Message(msg) => {
                if key.is_empty() {
                    format!(
                        "the configuration cannot be read{source}: {msg}. Fix: correct the TOML syntax at the place shown."
                    )
                } else {
                    format!("`{key}`{value}{source}: {msg}. Fix: {}", hint(&key, ""))
                }
            }
            other => format!("`{key}`{value}{source}: {other}. Fix: {}", hint(&key, "")),
        };
        lines.push(line);
    }
    ConfigError(format!(
        "configuration error: {}",
        lines.join("\nconfiguration error: ")
    ))
}

fn hint(key: &str, expected: &str) -> String {
    match key {
        "listen" => {
            "use an address and port, for example \"127.0.0.1:8443\" or \"[::1]:8443\".".into()
        }
        "data_dir" => "use a directory path, for example \"/var/lib/twofold\".".into(),
        k if k.starts_with("http.trusted_proxies") => {
            "list addresses or ranges, for example [\"10.0.0.0/8\", \"192.0.2.7/32\"].".into()
        }
        _ if expected.contains("a boolean") || expected == "bool" => "use true or false.".into(),
        _ if expected.contains("integer")
            || expected.starts_with('u')
            || expected.starts_with('i') =>
        {
            "use a whole number, without quotes.".into()
        }
        _ => "see twofold.example.toml for this key's allowed values.".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    #[test]
    fn the_example_configuration_loads_and_explains_every_setting_and_app_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../twofold.example.toml");
        let config = Config::load_from(Some(&path), Vec::new()).unwrap();
        assert_eq!(config.app, AppConfig::default());
        let text = std::fs::read_to_string(&path).unwrap();
        let defaults = serde_json::to_value(twofold_engine::Settings::default()).unwrap();
        for key in defaults.as_object().unwrap().keys() {
            assert!(
                text.contains(&format!("\n{key} = ")) || text.contains(&format!("#{key} = ")),
                "twofold.example.toml does not explain the setting {key}"
            );
        }
        for key in [
            "public_url",
            "long_poll_seconds",
            "allow_private_push_endpoints",
        ] {
            assert!(text.contains(&format!("#{key} = ")), "[app] {key}");
        }
    }

    #[test]
    fn a_long_poll_longer_than_the_request_timeout_is_refused_with_the_fix() {
        let f = file("[app]\nlong_poll_seconds = 40\n");
        let err = Config::load_from(Some(f.path()), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app.long_poll_seconds") && err.contains("request_timeout_seconds"),
            "{err}"
        );
        let f = file("[app]\npublic_url = \"mfa.example.com\"\n");
        let err = Config::load_from(Some(f.path()), Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app.public_url") && err.contains("https://"),
            "{err}"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_listen_on_loopback_8443_with_tls_and_sqlite() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8443");
        assert!(c.tls.enabled);
        assert_eq!(
            c.database_target().unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("twofold-data/twofold.db"))
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let f = file("listen = \"127.0.0.1:9000\"\n[database]\nmax_connections = 3\n");
        let c = Config::load_from(
            Some(f.path()),
            env(&[
                ("TWOFOLD_LISTEN", "127.0.0.1:9001"),
                ("TWOFOLD_DATA_DIR", "/tmp/x"),
                ("TWOFOLD_DATABASE__URL", "postgres://u:p@127.0.0.1/db"),
                ("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.database.max_connections, 3);
        assert!(matches!(
            c.database_target().unwrap(),
            DatabaseTarget::Postgres(_)
        ));
        assert_eq!(c.seed_settings().unwrap().lockout_threshold, 3);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_allowed_ones() {
        let f = file("[database]\nurll = \"postgres://x\"\n");
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().0;
        assert!(err.contains("database.urll"), "{err}");
        assert!(err.contains("url_file"), "{err}");
    }

    #[test]
    fn a_bad_value_names_key_value_and_fix() {
        let f = file("listen = \"localhost\"\n");
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().0;
        assert!(err.contains("`listen` = \"localhost\""), "{err}");
        assert!(err.contains("localhost"), "{err}");
        assert!(err.contains("127.0.0.1:8443"), "{err}");

        let err = Config::load_from(None, env(&[("TWOFOLD_DATABASE__MAX_CONNECTIONS", "ten")]))
            .unwrap_err()
            .0;
        assert!(err.contains("database.max_connections"), "{err}");
        assert!(err.contains("TWOFOLD_DATABASE__MAX_CONNECTIONS"), "{err}");
        assert!(err.contains("whole number"), "{err}");
    }

    #[test]
    fn broken_toml_is_reported_with_its_place() {
        let f = file("listen = \"127.0.0.1:8443\n[tls\n");
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().0;
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn a_bad_setting_seed_is_refused_at_load() {
        let f = file("[settings]\nmobile_app_device_limit = 12\n");
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().0;
        assert!(err.contains("settings.mobile_app_device_limit"), "{err}");
        assert!(err.contains("1 to 10"), "{err}");
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let err = Config::load_from(Some(Path::new("/nonexistent/twofold.toml")), env(&[]))
            .unwrap_err()
            .0;
        assert!(err.contains("/nonexistent/twofold.toml"), "{err}");
    }

    #[test]
    fn half_a_certificate_is_refused() {
        let err = Config::load_from(None, env(&[("TWOFOLD_TLS__CERT_FILE", "/tmp/c.pem")]))
            .unwrap_err()
            .0;
        assert!(err.contains("tls.key_file"), "{err}");
    }

    #[test]
    fn channels_default_to_the_console() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.channels, ChannelsConfig::default());
        assert_eq!(c.channels.console_kinds(), ["voice", "sms", "email"]);
        let f = file("[channels]\nvoice = \"console\"\nsms = \"console\"\nemail = \"console\"\n");
        let c = Config::load_from(Some(f.path()), env(&[])).unwrap();
        assert!(c.channels.uses_console());
    }

    #[test]
    fn an_unknown_channel_provider_names_the_key_the_value_and_the_choices() {
        let f = file("[channels]\nsms = \"vonage\"\n");
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().0;
        assert!(err.contains("`channels.sms` = \"vonage\""), "{err}");
        assert!(err.contains("console"), "{err}");

        let err = Config::load_from(None, env(&[("TWOFOLD_CHANNELS__EMAIL", "sendgrid")]))
            .unwrap_err()
            .0;
        assert!(err.contains("channels.email"), "{err}");
        assert!(err.contains("sendgrid"), "{err}");
        assert!(err.contains("TWOFOLD_CHANNELS__EMAIL"), "{err}");
        assert!(err.contains("console"), "{err}");

        let f = file("[channels]\npush = \"console\"\n");
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().0;
        assert!(err.contains("channels.push"), "{err}");
    }

    #[test]
    fn calls_and_texts_through_twilio_need_a_twilio_section_and_twilio_sends_no_email() {
        let err = Config::load_from(None, env(&[("TWOFOLD_CHANNELS__VOICE", "twilio")]))
            .unwrap_err()
            .0;
        assert!(
            err.contains("channels.voice = \"twilio\"") && err.contains("[twilio]"),
            "{err}"
        );
        let err = Config::load_from(None, env(&[("TWOFOLD_CHANNELS__EMAIL", "twilio")]))
            .unwrap_err()
            .0;
        assert!(err.contains("channels.email = \"twilio\""), "{err}");
        let token = file("0123456789abcdef0123456789abcdef\n");
        let f = file(&format!(
            "[channels]\nvoice = \"twilio\"\nsms = \"twilio\"\n[twilio]\n\
             account_sid = \"AC0123456789abcdef0123456789abcdef\"\n\
             auth_token_file = {:?}\nfrom = \"+15005550006\"\n\
             public_url = \"https://mfa.example.com\"\n",
            token.path().display().to_string()
        ));
        let config = Config::load_from(Some(f.path()), env(&[])).unwrap();
        let twilio = config.twilio.unwrap();
        assert_eq!(twilio.api_base(), "https://api.twilio.com");
        assert_eq!(twilio.timeout_seconds, 10);
        assert_eq!(
            twilio.read_auth_token().unwrap().expose(),
            "0123456789abcdef0123456789abcdef"
        );
        // The environment overrides a key of the section, and a misspelt key is named.
        let err = Config::load_from(
            Some(f.path()),
            env(&[("TWOFOLD_TWILIO__API_BASE", "http://api.twilio.com")]),
        )
        .unwrap_err()
        .0;
        assert!(err.contains("twilio.api_base"), "{err}");
        let err = Config::load_from(Some(f.path()), env(&[("TWOFOLD_TWILIO__AUTH_TOKN", "x")]))
            .unwrap_err()
            .0;
        assert!(err.contains("twilio.auth_tokn"), "{err}");
        // A phone number in the environment stays a phone number.
        let config = Config::load_from(
            Some(f.path()),
            env(&[("TWOFOLD_TWILIO__FROM", "+33612345678")]),
        )
        .unwrap();
        assert_eq!(config.twilio.unwrap().from.as_deref(), Some("+33612345678"));
    }

    #[test]
    fn email_through_smtp_needs_an_smtp_section_and_smtp_sends_nothing_else() {
        let err = Config::load_from(None, env(&[("TWOFOLD_CHANNELS__EMAIL", "smtp")]))
            .unwrap_err()
            .0;
        assert!(err.contains("[smtp]") && err.contains("Fix:"), "{err}");
        let err = Config::load_from(None, env(&[("TWOFOLD_CHANNELS__VOICE", "smtp")]))
            .unwrap_err()
            .0;
        assert!(err.contains("channels.voice = \"smtp\""), "{err}");
        let f = file(
            "[channels]\nemail = \"smtp\"\n[smtp]\nhost = \"smtp.example.com\"\nfrom = \"Twofold <mfa@example.com>\"\n",
        );
        let config = Config::load_from(Some(f.path()), env(&[])).unwrap();
        let smtp = config.smtp.unwrap();
        assert_eq!((smtp.port, smtp.timeout_seconds), (587, 10));
        assert_eq!(smtp.security, crate::channels::SmtpSecurity::Starttls);
    }

    #[test]
    fn a_radius_section_gets_its_defaults_and_a_bad_value_is_named() {
        let f = file("[radius]\nservers = [\"127.0.0.1:1812\"]\nsecret = \"s3cret\"\n");
        let radius = Config::load_from(Some(f.path()), env(&[]))
            .unwrap()
            .radius
            .unwrap();
        assert_eq!(
            (
                radius.timeout_seconds,
                radius.retries,
                radius.nas_identifier.as_str()
            ),
            (3, 1, "twofold")
        );
        let err = Config::load_from(Some(f.path()), env(&[("TWOFOLD_RADIUS__RETRIES", "50")]))
            .unwrap_err()
            .0;
        assert!(
            err.contains("radius.retries = 50") && err.contains("Fix:"),
            "{err}"
        );
        let f = file("[radius]\nservers = [\"127.0.0.1:1812\"]\nsecret = \"s\"\nport = 1812\n");
        let err = Config::load_from(Some(f.path()), env(&[])).unwrap_err().0;
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::load_from(
            None,
            env(&[("TWOFOLD_DATABASE__URL", "postgres://u:hunter2@h/d")]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}

/// One `[[sync]]` item: the members of a group, or the accounts under a base DN, and the
/// defaults a new user from it gets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncItem {
    /// The DN of a group: its members match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A DN: the accounts under it match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_dn: Option<String>,
    /// The primary method a new user gets (`oath`, `phone_call`, `sms`, `mobile_app`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The language a new user gets when the directory holds none (`en`, `fr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl SyncItem {
    /// Checks the item; the error starts with the key it is about.
    fn check(&self) -> Result<(), String> {
        match (&self.group, &self.base_dn) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(format!(
                    "group / base_dn: give exactly one of them (group = {:?}, base_dn = {:?}). \
                     Fix: one [[sync]] item per group or base DN.",
                    self.group, self.base_dn
                ));
            }
            (Some(dn), None) | (None, Some(dn)) if dn.trim().is_empty() => {
                return Err(
                    "group / base_dn is empty. Fix: give a DN such as \"cn=mfa,ou=groups,dc=example,dc=com\"."
                        .into(),
                );
            }
            _ => {}
        }
        if let Some(method) = &self.method
            && serde_json::from_value::<twofold_engine::settings::Method>(
                serde_json::Value::String(method.clone()),
            )
            .is_err()
        {
            return Err(format!(
                "method = {method:?}: not a method. Fix: use one of oath, phone_call, sms, mobile_app."
            ));
        }
        if let Some(language) = &self.language
            && twofold_engine::Language::from_tag(language).is_none()
        {
            return Err(format!(
                "language = {language:?}: not a language Twofold speaks. Fix: use en or fr."
            ));
        }
        Ok(())
    }

    /// Where a directory lists this item's accounts.
    pub fn scope(&self) -> crate::directory::EntryScope {
        match (&self.group, &self.base_dn) {
            (Some(group), _) => crate::directory::EntryScope::Group(group.clone()),
            (None, base) => crate::directory::EntryScope::Base(base.clone()),
        }
    }

    /// Whether `account` belongs to this item: a member of its group, or under its base
    /// DN (DNs compared without regard to case).
    pub fn matches(&self, account: &crate::directory::DirectoryAccount) -> bool {
        if let Some(group) = &self.group {
            return account.groups.iter().any(|g| same_dn(g, group));
        }
        if let Some(base) = &self.base_dn {
            let dn = normalise_dn(&account.dn);
            let base = normalise_dn(base);
            return dn == base || dn.ends_with(&format!(",{base}"));
        }
        false
    }
}

/// A DN in lower case without the spaces around its commas.
fn normalise_dn(dn: &str) -> String {
    dn.split(',')
        .map(|part| part.trim().to_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

fn same_dn(a: &str, b: &str) -> bool {
    normalise_dn(a) == normalise_dn(b)
}

/// The largest token file the importer reads.
fn token_import_max() -> usize {
    twofold_engine::token_import::MAX_FILE_BYTES
}
