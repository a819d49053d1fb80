//! Settings (`settings.write`): every setting of the store on one page, grouped, each with the
//! explanation `twofold.example.toml` gives it, checked by the same rules as
//! `twofold settings set` and audited with the administrator as actor.
//!
//! Only the settings whose value changed are written. A refused value brings the page back
//! with what was typed and the message next to its field; nothing is written then. A change
//! is in force on every node within the settings cache's lifetime (2 seconds).

use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use twofold_engine::Settings;
use twofold_engine::admin::Permission;
use twofold_engine::settings::SettingError;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    let write = Need::Permission(Permission::SettingsWrite);
    r.get("/admin/settings", write, settings_get)
        .post("/admin/settings", write, settings_post)
}

/// The example configuration, whose `[settings]` comments explain each setting.
const EXAMPLE: &str = include_str!("../../../../../twofold.example.toml");

/// The form's hidden field that names each boolean shown on the page: an unchecked box is
/// absent from the form, so only a named boolean's absence means `false`.
const BOOLEAN_MARKER: &str = "boolean_shown";

/// The page's groups (a fieldset each) and their settings, in the page's order.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "sign-in",
        &[
            "portal_url",
            "primary_authentication",
            "allow_user_login",
            "trusted_ip_ranges",
            "allow_language_selection",
            "default_language",
            "enable_logging",
        ],
    ),
    (
        "enrollment",
        &[
            "allow_user_enrollment",
            "prompt_for_backup_phone",
            "prompt_for_third_party_oath_token",
            "allow_method_selection",
            "selectable_methods",
            "allow_third_party_oath_token",
            "allow_mobile_app_activation",
            "mobile_app_device_limit",
        ],
    ),
    (
        "bypass",
        &[
            "allow_one_time_bypass",
            "prompt_for_bypass_seconds",
            "one_time_bypass_seconds",
            "one_time_bypass_max_seconds",
        ],
    ),
    (
        "fallbacks",
        &[
            "security_questions_fallback",
            "security_questions_required",
            "security_answer_min_length",
            "oath_token_fallback",
            "oath_token_fallback_session_minutes",
        ],
    ),
    ("pin", &["pin_required", "pin_min_length"]),
    (
        "oath",
        &[
            "oath_totp_window_steps",
            "oath_hotp_look_ahead",
            "oath_issuer",
        ],
    ),
    (
        "lockout",
        &[
            "lockout_threshold",
            "lockout_window_minutes",
            "lockout_duration_minutes",
            "lockout_hard_cap",
        ],
    ),
    (
        "sessions",
        &[
            "session_idle_minutes",
            "session_max_hours",
            "admin_session_idle_minutes",
            "step_up_minutes",
        ],
    ),
    (
        "directory",
        &[
            "create_users_on_sign_in",
            "sync_interval_minutes",
            "sync_removal_threshold",
            "sync_delete_after_days",
        ],
    ),
    (
        "phone",
        &[
            "organisation_name",
            "default_region",
            "phone_call_mode",
            "sms_mode",
            "sms_code_seconds",
            "call_pin_attempts",
            "fraud_code",
            "fraud_block_days",
            "fraud_alert_emails",
            "sms_allowed_countries",
            "phone_sends_per_number_hour",
            "phone_sends_per_user_hour",
            "phone_sends_per_address_hour",
            "phone_sends_per_hour",
        ],
    ),
    (
        "push",
        &[
            "app_activation_minutes",
            "push_number_matching",
            "push_request_seconds",
            "push_denials_before_cooldown",
            "push_cooldown_minutes",
        ],
    ),
];

/// The choices of the settings whose value is one of a few words.
fn choices(key: &str) -> Option<&'static [&'static str]> {
    Some(match key {
        "primary_authentication" => &["local", "ldap", "radius"],
        "default_language" => &["en", "fr"],
        "phone_call_mode" => &["standard", "pin"],
        "sms_mode" => &["otp", "two_way", "two_way_pin"],
        _ => return None,
    })
}

/// The range of a numeric setting, as `Settings::validate` checks it (where another setting
/// narrows it, the widest it can be).
fn bounds(key: &str) -> (u64, Option<u64>) {
    let (min, max) = match key {
        "mobile_app_device_limit" => (1, 10),
        "security_questions_required" => (1, 4),
        "one_time_bypass_seconds" | "one_time_bypass_max_seconds" => (1, 86_400),
        "lockout_threshold" | "lockout_hard_cap" => {
            (1, u64::from(twofold_engine::lockout::MAX_HARD_CAP))
        }
        "pin_min_length" => (4, 16),
        "security_answer_min_length" => (1, 64),
        "oath_totp_window_steps" => (0, twofold_engine::settings::MAX_TOTP_WINDOW_STEPS),
        "oath_hotp_look_ahead" => (0, twofold_engine::settings::MAX_HOTP_LOOK_AHEAD),
        "lockout_window_minutes" | "lockout_duration_minutes" => (1, 10_080),
        "session_idle_minutes" | "admin_session_idle_minutes" => {
            (1, twofold_engine::settings::MAX_SESSION_IDLE_MINUTES)
        }
        "session_max_hours" => (1, twofold_engine::settings::MAX_SESSION_HOURS),
        "step_up_minutes" => (1, 30),
        "oath_token_fallback_session_minutes" | "push_cooldown_minutes" => (1, 1440),
        "sync_interval_minutes" => (0, 10_080),
        "sync_removal_threshold" => (0, 1_000_000),
        "sync_delete_after_days" => (0, 3650),
        "sms_code_seconds" => (60, 900),
        "call_pin_attempts" => (1, 5),
        "fraud_block_days" => (1, 3650),
        "app_activation_minutes" => (1, 60),
        "push_request_seconds" => (10, 600),
        "push_denials_before_cooldown" => (1, 20),
        "phone_sends_per_number_hour"
        | "phone_sends_per_user_hour"
        | "phone_sends_per_address_hour"
        | "phone_sends_per_hour" => (1, 1_000_000),
        _ => return (0, None),
    };
    (min, Some(max))
}

/// Each setting's explanation: the comment above its key in the example configuration's
/// `[settings]` table (keys written on consecutive lines share the comment above the first).
pub fn explanations() -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut in_settings = false;
    let mut comment: Vec<&str> = Vec::new();
    let mut previous: Option<String> = None;
    for line in EXAMPLE.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            if in_settings {
                break;
            }
            in_settings = line == "[settings]";
            continue;
        }
        if !in_settings {
            continue;
        }
        if line.is_empty() {
            comment.clear();
            previous = None;
        } else if let Some(text) = line.strip_prefix('#') {
            let text = text.trim();
            if !text.starts_with("----") {
                comment.push(text);
            }
            previous = None;
        } else if let Some((key, _)) = line.split_once('=') {
            let explanation = if comment.is_empty() {
                previous.clone().unwrap_or_default()
            } else {
                comment.join(" ")
            };
            comment.clear();
            found.insert(key.trim().to_owned(), explanation.clone());
            previous = Some(explanation);
        }
    }
    found
}

/// How a setting is typed on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Check,
    Number,
    Choice,
    Text,
    List,
}

impl Kind {
    fn of(key: &str, value: &Value) -> Kind {
        match value {
            Value::Bool(_) => Kind::Check,
            Value::Number(_) => Kind::Number,
            Value::Array(_) => Kind::List,
            _ if choices(key).is_some() => Kind::Choice,
            _ => Kind::Text,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Check => "check",
            Kind::Number => "number",
            Kind::Choice => "choice",
            Kind::Text => "text",
            Kind::List => "list",
        }
    }
}

/// A value as the page shows it in its field.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join("\n"),
        other => other.to_string(),
    }
}

struct Field {
    key: String,
    kind: &'static str,
    value: String,
    checked: bool,
    options: Vec<(&'static str, bool)>,
    min: u64,
    max: String,
    explanation: String,
    error: Option<String>,
}

struct Group {
    legend: String,
    fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsTemplate {
    admin: AdminPage,
    notice: Option<String>,
    error: Option<(String, String)>,
    groups: Vec<Group>,
    marker: &'static str,
}

#[derive(Debug, Default, Deserialize)]
struct Saved {
    #[serde(default)]
    saved: Option<usize>,
}

/// What was typed, by key, and the refusal to show.
#[derive(Default)]
struct Typed {
    values: BTreeMap<String, Value>,
    refused: Option<SettingError>,
}

async fn render_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    notice: Option<String>,
    typed: Typed,
) -> Result<Response, WebError> {
    let t = admin.t();
    let current = admin.service(state)?.stored_settings().await?.to_entries();
    let explanations = explanations();
    let refused_message = typed
        .refused
        .as_ref()
        .map(|e| t.t1("admin-settings-refused", "fix", &e.fix));
    let groups = GROUPS
        .iter()
        .map(|(group, keys)| Group {
            legend: t.t(&format!("admin-settings-group-{group}")),
            fields: keys
                .iter()
                .filter_map(|key| {
                    let stored = current.get(*key)?;
                    let value = typed.values.get(*key).unwrap_or(stored);
                    let kind = Kind::of(key, stored);
                    let text = shown(value);
                    let (min, max) = bounds(key);
                    Some(Field {
                        key: (*key).to_owned(),
                        kind: kind.as_str(),
                        checked: value == &Value::Bool(true),
                        options: choices(key)
                            .unwrap_or_default()
                            .iter()
                            .map(|c| (*c, *c == text))
                            .collect(),
                        value: text,
                        min,
                        max: max.map(|m| m.to_string()).unwrap_or_default(),
                        explanation: explanations.get(*key).cloned().unwrap_or_default(),
                        error: typed
                            .refused
                            .as_ref()
                            .filter(|e| e.key == *key)
                            .and(refused_message.clone()),
                    })
                })
                .collect(),
        })
        .collect();
    let error = typed
        .refused
        .as_ref()
        .map(|e| (e.key.clone(), refused_message.clone().unwrap_or_default()));
    let template = SettingsTemplate {
        admin: admin.page(state, Section::Settings),
        notice,
        error,
        groups,
        marker: BOOLEAN_MARKER,
    };
    page(status, &template)
}

async fn settings_get(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<Saved>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let t = admin.t();
    let notice = query.ok().and_then(|Query(q)| q.saved).map(|n| {
        if n == 0 {
            t.t("admin-settings-unchanged")
        } else {
            t.t1("admin-settings-saved", "count", &n.to_string())
        }
    });
    render_page(&state, &admin, StatusCode::OK, notice, Typed::default()).await
}

/// The value the form gives `key`, `None` when the form does not speak of it.
fn posted(fields: &[(String, String)], key: &str, stored: &Value) -> Option<Value> {
    let one = crate::web::portal::field(fields, key);
    match Kind::of(key, stored) {
        Kind::Check => {
            let shown = fields
                .iter()
                .any(|(name, value)| name == BOOLEAN_MARKER && value == key);
            shown.then(|| Value::Bool(one.is_some()))
        }
        Kind::Number => {
            let raw = one?.trim();
            Some(
                serde_json::from_str::<serde_json::Number>(raw)
                    .map(Value::Number)
                    .unwrap_or_else(|_| Value::String(raw.to_owned())),
            )
        }
        Kind::Choice | Kind::Text => Some(Value::String(one?.trim().to_owned())),
        Kind::List => Some(Value::Array(
            one?.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| Value::String(l.to_owned()))
                .collect(),
        )),
    }
}

/// Checks the changed values together, as the CLI checks one: each must fit its setting,
/// and the settings with all of them must hold.
fn check(
    current: &BTreeMap<String, Value>,
    changes: &[(String, Value)],
) -> Result<(), SettingError> {
    let mut all = serde_json::Map::new();
    all.extend(current.clone());
    for (key, value) in changes {
        let mut alone = serde_json::Map::new();
        alone.extend(Settings::default().to_entries());
        alone.insert(key.clone(), value.clone());
        if let Err(e) = serde_json::from_value::<Settings>(Value::Object(alone)) {
            return Err(SettingError {
                key: key.clone(),
                value: value.to_string(),
                fix: format!("the value does not fit this setting ({e})"),
            });
        }
        all.insert(key.clone(), value.clone());
    }
    let settings =
        serde_json::from_value::<Settings>(Value::Object(all)).map_err(|e| SettingError {
            key: "settings".into(),
            value: String::new(),
            fix: e.to_string(),
        })?;
    settings.validate()
}

async fn settings_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let service = admin.service(&state)?.clone();
    let current = service.stored_settings().await?.to_entries();
    let mut typed = Typed::default();
    let mut changes = Vec::new();
    for (key, stored) in &current {
        if let Some(value) = posted(&fields, key, stored) {
            if &value != stored {
                changes.push((key.clone(), value.clone()));
            }
            typed.values.insert(key.clone(), value);
        }
    }
    if let Err(refused) = check(&current, &changes) {
        typed.refused = Some(refused);
        return render_page(
            &state,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            typed,
        )
        .await;
    }
    // Each write is checked against the settings stored at that moment, so one change may
    // wait for another (lowering `lockout_hard_cap` below the threshold needs the lower
    // threshold first); the whole set was checked above, so an order exists.
    let saved = changes.len();
    let mut pending = changes;
    let actor = admin.actor.actor();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        let mut last_error = None;
        for (key, value) in pending {
            match service.set_setting(&actor, &key, &value.to_string()).await {
                Ok(_) => {}
                Err(e) => {
                    last_error = Some((key.clone(), e));
                    waiting.push((key, value));
                }
            }
        }
        if let Some((key, e)) = last_error
            && waiting.len() == before
        {
            typed.refused = Some(SettingError {
                key,
                value: String::new(),
                fix: e.to_string(),
            });
            return render_page(
                &state,
                &admin,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                typed,
            )
            .await;
        }
        pending = waiting;
    }
    Ok(Redirect::to(&format!("/admin/settings?saved={saved}")).into_response())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_setting_has_an_explanation_from_the_example_configuration() {
        let explanations = explanations();
        for key in Settings::default().to_entries().keys() {
            let text = explanations.get(key).map(String::as_str).unwrap_or("");
            assert!(
                text.len() > 10,
                "`{key}` needs a comment above it in twofold.example.toml's [settings]"
            );
        }
        assert!(explanations["phone_sends_per_hour"].contains("Hourly limits"));
        assert!(explanations["allow_user_login"].starts_with("Users may sign in"));
    }

    #[test]
    fn every_setting_is_on_the_page_once() {
        let keys: Vec<&str> = GROUPS
            .iter()
            .flat_map(|(_, keys)| keys.iter().copied())
            .collect();
        let unique: BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(unique.len(), keys.len(), "a setting in two groups");
        let all = Settings::default().to_entries();
        let expected: BTreeSet<&str> = all.keys().map(String::as_str).collect();
        assert_eq!(unique, expected);
    }

    #[test]
    fn the_page_bounds_are_those_the_settings_check() {
        let defaults = Settings::default();
        for (key, value) in defaults.to_entries() {
            match Kind::of(&key, &value) {
                Kind::Number => {
                    let (min, max) = bounds(&key);
                    let max = max.unwrap_or_else(|| panic!("`{key}` has no maximum"));
                    assert!(
                        defaults.with_value(&key, &(max + 1).to_string()).is_err(),
                        "{key}"
                    );
                    if min > 0 {
                        assert!(
                            defaults.with_value(&key, &(min - 1).to_string()).is_err(),
                            "{key}"
                        );
                    }
                }
                Kind::Choice => {
                    for choice in choices(&key).unwrap() {
                        let raw = Value::String((*choice).to_owned()).to_string();
                        assert!(defaults.with_value(&key, &raw).is_ok(), "{key} = {choice}");
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn an_unchecked_box_is_false_only_when_the_page_showed_it() {
        let fields = vec![(BOOLEAN_MARKER.to_owned(), "allow_user_login".to_owned())];
        assert_eq!(
            posted(&fields, "allow_user_login", &Value::Bool(true)),
            Some(Value::Bool(false))
        );
        assert_eq!(posted(&fields, "pin_required", &Value::Bool(true)), None);
    }

    #[test]
    fn changes_are_checked_together() {
        let current = Settings::default().to_entries();
        // Lowering the cap below the threshold alone is refused; with a lower threshold, not.
        let cap = vec![("lockout_hard_cap".to_owned(), serde_json::json!(3))];
        assert!(check(&current, &cap).is_err());
        let both = vec![
            ("lockout_hard_cap".to_owned(), serde_json::json!(3)),
            ("lockout_threshold".to_owned(), serde_json::json!(2)),
        ];
        check(&current, &both).unwrap();
        let bad = vec![(
            "trusted_ip_ranges".to_owned(),
            serde_json::json!(["10.0.0.0/8", "10.0.0.300/8"]),
        )];
        assert_eq!(check(&current, &bad).unwrap_err().key, "trusted_ip_ranges");
    }
}
