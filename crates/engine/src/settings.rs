//! The portal's settings: every row of the original's User Portal settings tab, and more.
//!
//! Settings live in the store, shared by every node and editable by administrators; the
//! configuration file's `[settings]` table seeds them on first start. Each setting is one
//! key whose value is JSON, so the store and the CLI handle them one at a time.

use crate::language::Language;
use crate::lockout::LockoutPolicy;
pub use crate::phone_call::SmsMode;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the portal checks the password (the first factor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryAuthentication {
    #[default]
    Local,
    Ldap,
    Radius,
}

/// A second-factor method a user can pick as their primary contact method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    PhoneCall,
    Sms,
    MobileApp,
    Oath,
}

/// All settings, with the original's defaults where it had them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the portal is hosted; included in emails to imported users.
    pub portal_url: String,
    /// Local accounts, LDAP/Active Directory, or RADIUS.
    pub primary_authentication: PrimaryAuthentication,
    /// Users may type a username and password on the sign-in page.
    pub allow_user_login: bool,
    /// First sign-in takes users through enrolment.
    pub allow_user_enrollment: bool,
    /// Enrolment asks for a backup phone number.
    pub prompt_for_backup_phone: bool,
    /// Enrolment offers to associate a third-party OATH token.
    pub prompt_for_third_party_oath_token: bool,
    /// Users may start a one-time bypass from their account page.
    pub allow_one_time_bypass: bool,
    /// Users choose how long the bypass lasts (up to `one_time_bypass_max_seconds`).
    pub prompt_for_bypass_seconds: bool,
    /// How long a bypass lasts when users cannot choose.
    pub one_time_bypass_seconds: u32,
    /// The longest bypass a user may choose.
    pub one_time_bypass_max_seconds: u32,
    /// Users may choose their primary method among `selectable_methods`.
    pub allow_method_selection: bool,
    pub selectable_methods: Vec<Method>,
    /// Users may choose the language of the portal and their calls and messages.
    pub allow_language_selection: bool,
    /// The language used when neither the user nor the browser chooses one.
    pub default_language: Language,
    /// Users may generate activation codes for the mobile app.
    pub allow_mobile_app_activation: bool,
    /// How many devices one user may activate (1 to 10).
    pub mobile_app_device_limit: u8,
    /// Security questions may be used when the second factor fails.
    pub security_questions_fallback: bool,
    /// How many of the user's four questions must be answered.
    pub security_questions_required: u8,
    /// Users may associate a third-party (hardware) OATH token.
    pub allow_third_party_oath_token: bool,
    /// An OATH token may be used when the second factor fails.
    pub oath_token_fallback: bool,
    /// How long a session started through the OATH fallback lasts, in minutes.
    pub oath_token_fallback_session_minutes: u32,
    /// Write the portal's log to files in the data directory's `logs/` folder.
    pub enable_logging: bool,
    /// Clients from these ranges skip the second factor.
    pub trusted_ip_ranges: Vec<IpNet>,
    /// Users must have a PIN; with an OATH token they type it with the code.
    pub pin_required: bool,
    /// The fewest digits a PIN may have.
    pub pin_min_length: u8,
    /// The fewest characters a security answer may have (after normalisation).
    pub security_answer_min_length: u8,
    /// TOTP codes are accepted this many time steps either side of now (0 to
    /// [`MAX_TOTP_WINDOW_STEPS`]).
    pub oath_totp_window_steps: u8,
    /// HOTP codes are accepted this many counter values ahead of the expected one (0 to
    /// [`MAX_HOTP_LOOK_AHEAD`]).
    pub oath_hotp_look_ahead: u8,
    /// The issuer shown in authenticator apps for enrolled tokens.
    pub oath_issuer: String,
    /// How many failures within `lockout_window_minutes` lock a username.
    pub lockout_threshold: u32,
    pub lockout_window_minutes: u32,
    /// How long a lock lasts before it is released by itself.
    pub lockout_duration_minutes: u32,
    /// Consecutive failures (only a success clears the count) that lock a username until an
    /// administrator unlocks it (1 to 100; at least `lockout_threshold`).
    pub lockout_hard_cap: u32,
    /// A portal session ends after this long without a request (1 to
    /// [`MAX_SESSION_IDLE_MINUTES`]).
    pub session_idle_minutes: u32,
    /// A portal session ends this long after sign-in, however active (1 to
    /// [`MAX_SESSION_HOURS`]).
    pub session_max_hours: u32,
    /// An admin console session ends after this long without a request (1 to
    /// `session_idle_minutes`'s upper limit; shorter than users' by default).
    pub admin_session_idle_minutes: u32,
    /// Adding, replacing or removing a factor, changing the PIN or the security answers, and
    /// starting a one-time bypass need a second factor proved within this many minutes
    /// (a session signed in through a trusted address or a bypass is asked for one first).
    pub step_up_minutes: u32,
    /// A directory user who is not yet in Twofold is created at their first sign-in, with
    /// the defaults of the first `[[sync]]` item they match.
    pub create_users_on_sign_in: bool,
    /// `twofold serve` syncs users from the directory this often (0: never; `twofold users
    /// sync` still does).
    pub sync_interval_minutes: u32,
    /// A sync that would disable more users than this at once disables none until
    /// `twofold users sync --approve`.
    pub sync_removal_threshold: u32,
    /// Users who left the directory are disabled at once, and deleted this many days later.
    pub sync_delete_after_days: u32,
    /// The organisation's name, as calls and text messages say it.
    pub organisation_name: String,
    /// The country of phone numbers typed without their country code (`FR`, `US`); empty:
    /// numbers must be written with it (`+33 …`).
    pub default_region: String,
    /// Phone calls: `standard` (press `#` to approve) or `pin` (type the PIN, then `#`).
    /// With `pin_required`, calls ask for the PIN whatever this says.
    pub phone_call_mode: PhoneCallMode,
    /// Text messages: `otp` (the user types the code in the page), `two_way` (the user
    /// replies with the code) or `two_way_pin` (the code followed by the PIN).
    pub sms_mode: SmsMode,
    /// How long a code sent by text message may be used, in seconds (60 to 900).
    pub sms_code_seconds: u32,
    /// Wrong PINs one call accepts before it says goodbye and the sign-in is denied (1 to 5).
    pub call_pin_attempts: u8,
    /// Typed during a call and followed by `#`, this reports fraud (1 to 4 digits; empty:
    /// no fraud code).
    pub fraud_code: String,
    /// A fraud report blocks the user for this many days, or until an administrator
    /// unblocks them (1 to 3650).
    pub fraud_block_days: u32,
    /// Who is emailed when a user reports fraud.
    pub fraud_alert_emails: Vec<String>,
    /// The countries (two-letter codes, `FR`) calls and texts may go to; empty: all.
    pub sms_allowed_countries: Vec<String>,
    /// Calls and texts to one number in an hour, at most.
    pub phone_sends_per_number_hour: u32,
    /// Calls and texts for one user in an hour, at most.
    pub phone_sends_per_user_hour: u32,
    /// Calls and texts asked from one address in an hour, at most.
    pub phone_sends_per_address_hour: u32,
    /// Calls and texts in an hour, for everyone together, at most.
    pub phone_sends_per_hour: u32,
    /// How long an activation code for the mobile app works, in minutes (1 to 60).
    pub app_activation_minutes: u32,
    /// The app must pick the number the sign-in page shows (number matching).
    pub push_number_matching: bool,
    /// How long a request to the app may be answered, in seconds (10 to 600).
    pub push_request_seconds: u32,
    /// Denied (or "not me") requests within `push_cooldown_minutes` after which no request
    /// goes to the user's app until the cool-down passes (1 to 20).
    pub push_denials_before_cooldown: u32,
    /// The cool-down against push bombing, in minutes (1 to 1440).
    pub push_cooldown_minutes: u32,
}

/// How a verification call is approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PhoneCallMode {
    #[default]
    Standard,
    Pin,
}

impl Settings {
    /// Whether calls ask for the PIN.
    pub fn call_needs_pin(&self) -> bool {
        self.pin_required || self.phone_call_mode == PhoneCallMode::Pin
    }

    /// Whether text replies carry the PIN.
    pub fn text_needs_pin(&self) -> bool {
        self.sms_mode == SmsMode::TwoWayPin
    }
}

// The upper limits of the settings that bound how much an attacker gets (security review,
// issue 8, finding 10). They follow NIST SP 800-63B's AAL2 and OWASP ASVS level 2.
/// ±2 steps (a code is good for about 2½ minutes) absorbs a phone clock a minute off;
/// RFC 6238 recommends one step, and each step more multiplies an online guesser's odds.
pub const MAX_TOTP_WINDOW_STEPS: u64 = 2;
/// RFC 4226 (§7.4) leaves the look-ahead to the operator; 20 covers a token's button pressed
/// in a pocket, while each value more is one more code a guess may hit.
pub const MAX_HOTP_LOOK_AHEAD: u64 = 20;
/// AAL2 requires reauthentication at least every 12 hours, however active the session.
pub const MAX_SESSION_HOURS: u64 = 12;
/// AAL2 requires reauthentication after 30 minutes without activity.
pub const MAX_SESSION_IDLE_MINUTES: u64 = 30;

impl Default for Settings {
    fn default() -> Self {
        Self {
            portal_url: String::new(),
            primary_authentication: PrimaryAuthentication::Local,
            allow_user_login: true,
            allow_user_enrollment: true,
            prompt_for_backup_phone: false,
            prompt_for_third_party_oath_token: false,
            allow_one_time_bypass: false,
            prompt_for_bypass_seconds: false,
            one_time_bypass_seconds: 300,
            one_time_bypass_max_seconds: 3600,
            allow_method_selection: true,
            selectable_methods: vec![
                Method::PhoneCall,
                Method::Sms,
                Method::MobileApp,
                Method::Oath,
            ],
            allow_language_selection: true,
            default_language: Language::En,
            allow_mobile_app_activation: false,
            mobile_app_device_limit: 1,
            security_questions_fallback: false,
            security_questions_required: 2,
            allow_third_party_oath_token: false,
            oath_token_fallback: false,
            oath_token_fallback_session_minutes: 60,
            enable_logging: false,
            trusted_ip_ranges: Vec::new(),
            pin_required: false,
            pin_min_length: 4,
            security_answer_min_length: 3,
            oath_totp_window_steps: 1,
            oath_hotp_look_ahead: 10,
            oath_issuer: "Twofold".into(),
            lockout_threshold: 5,
            lockout_window_minutes: 15,
            lockout_duration_minutes: 15,
            lockout_hard_cap: crate::lockout::MAX_HARD_CAP,
            session_idle_minutes: 20,
            session_max_hours: 12,
            admin_session_idle_minutes: 10,
            step_up_minutes: 10,
            create_users_on_sign_in: false,
            sync_interval_minutes: 60,
            sync_removal_threshold: 5,
            sync_delete_after_days: 30,
            organisation_name: "Twofold".into(),
            default_region: String::new(),
            phone_call_mode: PhoneCallMode::Standard,
            sms_mode: SmsMode::Otp,
            sms_code_seconds: 300,
            call_pin_attempts: 3,
            fraud_code: "0".into(),
            fraud_block_days: 90,
            fraud_alert_emails: Vec::new(),
            sms_allowed_countries: Vec::new(),
            phone_sends_per_number_hour: 5,
            phone_sends_per_user_hour: 10,
            phone_sends_per_address_hour: 20,
            phone_sends_per_hour: 1000,
            app_activation_minutes: 10,
            push_number_matching: true,
            push_request_seconds: 120,
            push_denials_before_cooldown: 3,
            push_cooldown_minutes: 15,
        }
    }
}

/// One setting that cannot be used, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting `{key}` = {value}: {fix}")]
pub struct SettingError {
    pub key: String,
    pub value: String,
    pub fix: String,
}

impl Settings {
    /// Checks ranges that the types alone cannot express.
    pub fn validate(&self) -> Result<(), SettingError> {
        fn range(key: &str, value: u64, min: u64, max: u64) -> Result<(), SettingError> {
            limit(key, value, min, max, None)
        }
        /// A range whose maximum is a security limit: the message says why.
        fn limit(
            key: &str,
            value: u64,
            min: u64,
            max: u64,
            why: Option<&str>,
        ) -> Result<(), SettingError> {
            if value < min || value > max {
                let why = why.map(|w| format!(" ({max} is the limit: {w})"));
                return Err(SettingError {
                    key: key.to_owned(),
                    value: value.to_string(),
                    fix: format!(
                        "use a whole number from {min} to {max}{}",
                        why.unwrap_or_default()
                    ),
                });
            }
            Ok(())
        }
        range(
            "mobile_app_device_limit",
            self.mobile_app_device_limit.into(),
            1,
            10,
        )?;
        range(
            "security_questions_required",
            self.security_questions_required.into(),
            1,
            4,
        )?;
        range(
            "one_time_bypass_seconds",
            self.one_time_bypass_seconds.into(),
            1,
            86_400,
        )?;
        range(
            "one_time_bypass_max_seconds",
            self.one_time_bypass_max_seconds.into(),
            1,
            86_400,
        )?;
        range("lockout_threshold", self.lockout_threshold.into(), 1, 1000)?;
        let cap = crate::lockout::MAX_HARD_CAP;
        range(
            "lockout_hard_cap",
            self.lockout_hard_cap.into(),
            1,
            cap.into(),
        )?;
        range(
            "lockout_threshold",
            self.lockout_threshold.into(),
            1,
            self.lockout_hard_cap.into(),
        )?;
        range("pin_min_length", self.pin_min_length.into(), 4, 16)?;
        range(
            "security_answer_min_length",
            self.security_answer_min_length.into(),
            1,
            64,
        )?;
        limit(
            "oath_totp_window_steps",
            self.oath_totp_window_steps.into(),
            0,
            MAX_TOTP_WINDOW_STEPS,
            Some("a wider window accepts more guesses, and older codes"),
        )?;
        limit(
            "oath_hotp_look_ahead",
            self.oath_hotp_look_ahead.into(),
            0,
            MAX_HOTP_LOOK_AHEAD,
            Some("each value more is one more code a guess may hit"),
        )?;
        if self.oath_issuer.trim().is_empty()
            || self.oath_issuer.chars().count() > 64
            || self.oath_issuer.contains(':')
        {
            return Err(SettingError {
                key: "oath_issuer".into(),
                value: format!("{:?}", self.oath_issuer),
                fix: "use 1 to 64 characters without ':', for example \"Contoso\"".into(),
            });
        }
        range(
            "lockout_window_minutes",
            self.lockout_window_minutes.into(),
            1,
            10_080,
        )?;
        range(
            "lockout_duration_minutes",
            self.lockout_duration_minutes.into(),
            1,
            10_080,
        )?;
        limit(
            "session_idle_minutes",
            self.session_idle_minutes.into(),
            1,
            MAX_SESSION_IDLE_MINUTES,
            Some("the idle timeout of NIST SP 800-63B at AAL2"),
        )?;
        limit(
            "session_max_hours",
            self.session_max_hours.into(),
            1,
            MAX_SESSION_HOURS,
            Some("NIST SP 800-63B at AAL2 reauthenticates every 12 hours"),
        )?;
        limit(
            "admin_session_idle_minutes",
            self.admin_session_idle_minutes.into(),
            1,
            MAX_SESSION_IDLE_MINUTES,
            Some("the idle timeout of NIST SP 800-63B at AAL2"),
        )?;
        range("step_up_minutes", self.step_up_minutes.into(), 1, 30)?;
        range(
            "oath_token_fallback_session_minutes",
            self.oath_token_fallback_session_minutes.into(),
            1,
            1440,
        )?;
        range(
            "sync_interval_minutes",
            self.sync_interval_minutes.into(),
            0,
            10_080,
        )?;
        range(
            "sync_removal_threshold",
            self.sync_removal_threshold.into(),
            0,
            1_000_000,
        )?;
        range(
            "sync_delete_after_days",
            self.sync_delete_after_days.into(),
            0,
            3650,
        )?;
        range("sms_code_seconds", self.sms_code_seconds.into(), 60, 900)?;
        range("call_pin_attempts", self.call_pin_attempts.into(), 1, 5)?;
        range("fraud_block_days", self.fraud_block_days.into(), 1, 3650)?;
        range(
            "app_activation_minutes",
            self.app_activation_minutes.into(),
            1,
            60,
        )?;
        range(
            "push_request_seconds",
            self.push_request_seconds.into(),
            10,
            600,
        )?;
        range(
            "push_denials_before_cooldown",
            self.push_denials_before_cooldown.into(),
            1,
            20,
        )?;
        range(
            "push_cooldown_minutes",
            self.push_cooldown_minutes.into(),
            1,
            1440,
        )?;
        for (key, value) in [
            (
                "phone_sends_per_number_hour",
                self.phone_sends_per_number_hour,
            ),
            ("phone_sends_per_user_hour", self.phone_sends_per_user_hour),
            (
                "phone_sends_per_address_hour",
                self.phone_sends_per_address_hour,
            ),
            ("phone_sends_per_hour", self.phone_sends_per_hour),
        ] {
            range(key, value.into(), 1, 1_000_000)?;
        }
        if self.fraud_code.len() > 4 || !self.fraud_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SettingError {
                key: "fraud_code".into(),
                value: format!("{:?}", self.fraud_code),
                fix: "use 1 to 4 digits (\"0\"), or \"\" for no fraud code".into(),
            });
        }
        if !self.default_region.is_empty()
            && crate::phone::check_region(&self.default_region).as_deref()
                != Ok(self.default_region.as_str())
        {
            return Err(SettingError {
                key: "default_region".into(),
                value: format!("{:?}", self.default_region),
                fix: "use a country's two-letter code in capitals (\"FR\", \"US\"), or \"\"".into(),
            });
        }
        for country in &self.sms_allowed_countries {
            if crate::phone::check_region(country).as_deref() != Ok(country.as_str()) {
                return Err(SettingError {
                    key: "sms_allowed_countries".into(),
                    value: format!("{country:?}"),
                    fix: "list countries by their two-letter codes in capitals ([\"FR\", \"BE\"])"
                        .into(),
                });
            }
        }
        for email in &self.fraud_alert_emails {
            if crate::contact::check_email(email).is_err() {
                return Err(SettingError {
                    key: "fraud_alert_emails".into(),
                    value: format!("{email:?}"),
                    fix: "list email addresses ([\"security@example.com\"])".into(),
                });
            }
        }
        if self.organisation_name.trim().is_empty() || self.organisation_name.chars().count() > 40 {
            return Err(SettingError {
                key: "organisation_name".into(),
                value: format!("{:?}", self.organisation_name),
                fix: "use 1 to 40 characters; texts and calls say it (\"Contoso\")".into(),
            });
        }
        if self.one_time_bypass_seconds > self.one_time_bypass_max_seconds {
            return Err(SettingError {
                key: "one_time_bypass_seconds".into(),
                value: self.one_time_bypass_seconds.to_string(),
                fix: format!(
                    "use at most one_time_bypass_max_seconds ({})",
                    self.one_time_bypass_max_seconds
                ),
            });
        }
        let url_ok = self.portal_url.is_empty()
            || self.portal_url.starts_with("https://")
            || self.portal_url.starts_with("http://");
        if !url_ok {
            return Err(SettingError {
                key: "portal_url".into(),
                value: format!("{:?}", self.portal_url),
                fix: "give the full address, for example \"https://mfa.example.com/\"".into(),
            });
        }
        Ok(())
    }

    pub fn lockout_policy(&self) -> LockoutPolicy {
        LockoutPolicy {
            threshold: self.lockout_threshold,
            window_seconds: i64::from(self.lockout_window_minutes) * 60,
            duration_seconds: i64::from(self.lockout_duration_minutes) * 60,
            hard_cap: self.lockout_hard_cap,
        }
    }

    /// Every setting as `key → JSON value`, in key order.
    pub fn to_entries(&self) -> BTreeMap<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
            _ => BTreeMap::new(),
        }
    }

    /// Builds settings from stored entries over the defaults. Unknown keys are refused.
    pub fn from_entries(
        entries: impl IntoIterator<Item = (String, serde_json::Value)>,
    ) -> Result<Self, SettingError> {
        let mut map = match serde_json::to_value(Settings::default()) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        for (key, value) in entries {
            if !map.contains_key(&key) {
                return Err(SettingError {
                    value: value.to_string(),
                    fix: format!("`{key}` is not a setting; `twofold settings show` lists them"),
                    key,
                });
            }
            map.insert(key, value);
        }
        let settings: Settings =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| SettingError {
                key: "settings".into(),
                value: String::new(),
                fix: e.to_string(),
            })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses a value typed on the command line for `key` (JSON, or a bare string) and
    /// returns the setting as it would be stored, after checking the whole set still holds.
    pub fn with_value(
        &self,
        key: &str,
        raw: &str,
    ) -> Result<(Settings, serde_json::Value), SettingError> {
        let value = serde_json::from_str::<serde_json::Value>(raw)
            .unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
        let mut entries = self.to_entries();
        if !entries.contains_key(key) {
            return Err(SettingError {
                key: key.to_owned(),
                value: raw.to_owned(),
                fix: "this is not a setting; `twofold settings show` lists them".into(),
            });
        }
        entries.insert(key.to_owned(), value.clone());
        let mut map = serde_json::Map::new();
        map.extend(entries);
        let updated: Settings =
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| SettingError {
                key: key.to_owned(),
                value: raw.to_owned(),
                fix: format!("the value does not fit this setting ({e})"),
            })?;
        updated.validate()?;
        Ok((updated, value))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_original() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(s.one_time_bypass_seconds, 300);
        assert!(s.allow_user_login);
    }

    #[test]
    fn entries_round_trip() {
        let s = Settings {
            lockout_threshold: 9,
            trusted_ip_ranges: vec!["10.0.0.0/8".parse().unwrap()],
            ..Settings::default()
        };
        assert_eq!(Settings::from_entries(s.to_entries()).unwrap(), s);
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_name() {
        let err = Settings::from_entries([("lockout_treshold".to_owned(), serde_json::json!(3))])
            .unwrap_err();
        assert_eq!(err.key, "lockout_treshold");
    }

    #[test]
    fn out_of_range_values_name_the_key_and_the_range() {
        let err = Settings::default()
            .with_value("mobile_app_device_limit", "11")
            .unwrap_err();
        assert_eq!(err.key, "mobile_app_device_limit");
        assert!(err.fix.contains("1 to 10"));
        let err = Settings::default()
            .with_value("lockout_threshold", "\"many\"")
            .unwrap_err();
        assert_eq!(err.key, "lockout_threshold");
    }

    #[test]
    fn weak_values_are_refused_with_the_key_and_the_limit() {
        for (key, weak, limit) in [
            ("oath_totp_window_steps", "10", "from 0 to 2"),
            ("oath_totp_window_steps", "3", "from 0 to 2"),
            ("oath_hotp_look_ahead", "100", "from 0 to 20"),
            ("oath_hotp_look_ahead", "21", "from 0 to 20"),
            ("session_max_hours", "720", "from 1 to 12"),
            ("session_max_hours", "13", "from 1 to 12"),
            ("session_idle_minutes", "1440", "from 1 to 30"),
            ("session_idle_minutes", "31", "from 1 to 30"),
        ] {
            let err = Settings::default().with_value(key, weak).unwrap_err();
            assert_eq!(err.key, key);
            assert_eq!(err.value, weak);
            assert!(err.fix.contains(limit), "{key}: {}", err.fix);
            assert!(err.fix.contains("is the limit:"), "{key}: {}", err.fix);
        }
        for (key, at_the_limit) in [
            ("oath_totp_window_steps", "2"),
            ("oath_hotp_look_ahead", "20"),
            ("session_max_hours", "12"),
            ("session_idle_minutes", "30"),
        ] {
            Settings::default().with_value(key, at_the_limit).unwrap();
        }
    }

    #[test]
    fn the_hard_cap_is_at_most_100_and_the_threshold_at_most_the_cap() {
        assert_eq!(Settings::default().lockout_hard_cap, 100);
        let err = Settings::default()
            .with_value("lockout_hard_cap", "101")
            .unwrap_err();
        assert_eq!(err.key, "lockout_hard_cap");
        assert!(err.fix.contains("1 to 100"), "{}", err.fix);
        let err = Settings::default()
            .with_value("lockout_threshold", "101")
            .unwrap_err();
        assert_eq!(err.key, "lockout_threshold");
        assert!(err.fix.contains("1 to 100"), "{}", err.fix);
        let (low_cap, _) = Settings::default()
            .with_value("lockout_hard_cap", "20")
            .unwrap();
        let err = low_cap.with_value("lockout_threshold", "21").unwrap_err();
        assert!(err.fix.contains("1 to 20"), "{}", err.fix);
        assert_eq!(low_cap.lockout_policy().hard_cap, 20);
    }

    #[test]
    fn directory_sync_settings_have_their_defaults_and_ranges() {
        let s = Settings::default();
        assert!(!s.create_users_on_sign_in);
        assert_eq!(
            (
                s.sync_interval_minutes,
                s.sync_removal_threshold,
                s.sync_delete_after_days
            ),
            (60, 5, 30)
        );
        for (key, bad) in [
            ("sync_interval_minutes", "10081"),
            ("sync_delete_after_days", "3651"),
            ("sync_removal_threshold", "-1"),
        ] {
            let err = Settings::default().with_value(key, bad).unwrap_err();
            assert_eq!(err.key, key);
        }
        let (s, _) = Settings::default()
            .with_value("sync_interval_minutes", "0")
            .unwrap();
        assert_eq!(s.sync_interval_minutes, 0);
    }

    #[test]
    fn values_from_the_command_line_are_typed() {
        let (s, _) = Settings::default()
            .with_value("lockout_threshold", "3")
            .unwrap();
        assert_eq!(s.lockout_threshold, 3);
        let (s, _) = Settings::default()
            .with_value("portal_url", "https://mfa.example.com/")
            .unwrap();
        assert_eq!(s.portal_url, "https://mfa.example.com/");
        let (s, _) = Settings::default()
            .with_value("trusted_ip_ranges", r#"["192.0.2.0/24","2001:db8::/32"]"#)
            .unwrap();
        assert_eq!(s.trusted_ip_ranges.len(), 2);
    }
}
