//! `twofold doctor`: checks a configuration before it goes live, and changes nothing.
//!
//! It reads the configuration as every command does, then asks each part of the setup the
//! one question that proves it works: does the certificate fit its key and stay valid, does
//! the store answer and take a write, are its migrations current, does the sealing key
//! open what the store holds, does the directory accept the service account and find a
//! user, does the SMTP server take the sign-in, does Twilio accept the credentials, is
//! `portal_url` an https address, and does this machine's clock agree with the database
//! server's. Each answer is one [`Check`]: passed, failed (with the fix) or skipped (with
//! the reason, when the part is not configured).
//!
//! Nothing is written: no migration, no key generated, no setting seeded, nobody signed in,
//! no message sent. The one write is the store's readiness probe (`UPDATE readiness SET
//! checked_at`), which `/readyz` makes too and which proves that the store takes writes.

mod clock;
mod directory;
mod email;
mod portal_url;
mod sealing;
mod store;
mod tls;
mod twilio;

use crate::config::{Config, ConfigError};
use serde::Serialize;
use std::path::Path;

/// How a check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not checked: the part is not configured, or a check it needs failed first.
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// The answer of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// The check's stable name (`tls`, `store`, `migrations`…).
    pub check: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn skip(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A failure from one of Twofold's messages, which say `… Fix: …`: the part before is
    /// the detail, the part after the fix; `fix` when the message holds no single fix.
    pub fn failed_with(check: &'static str, message: &str, fix: &str) -> Check {
        let (detail, found) = split_fix(message);
        Check::fail(check, detail, found.unwrap_or_else(|| fix.to_owned()))
    }
}

/// `"what went wrong. Fix: what to do."` as its two halves.
fn split_fix(message: &str) -> (String, Option<String>) {
    let message = message.trim();
    if message.matches("Fix:").count() != 1 {
        return (message.to_owned(), None);
    }
    match message.split_once("Fix:") {
        Some((detail, fix)) => {
            let detail = detail.trim().trim_end_matches('.').trim_end();
            (detail.to_owned(), Some(fix.trim().to_owned()))
        }
        None => (message.to_owned(), None),
    }
}

/// What `twofold doctor` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
    /// The configuration did not parse, so no other check ran.
    pub unparsable: bool,
}

/// What `twofold doctor` was asked besides the configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A directory user to look up (`--user`).
    pub test_user: Option<String>,
}

/// Runs every check against the configuration `file` (with the `TWOFOLD_` environment) as
/// `twofold doctor` does.
pub async fn examine(file: Option<&Path>, options: &Options) -> Report {
    examine_loaded(file, Config::load(file), options).await
}

/// Only the sealing-key check, against the store `config` names: what `twofold restore`
/// runs once a backup is in place, since a backup never holds the keys that sealed it.
pub async fn sealing_key(config: &Config) -> Check {
    let opened = store::check(config).await;
    let check = sealing::check(config, opened.store.as_ref(), opened.fresh).await;
    if let Some(store) = opened.store {
        store.close().await;
    }
    check
}

/// [`examine`] once the configuration is loaded (or found not to parse).
async fn examine_loaded(
    file: Option<&Path>,
    loaded: Result<Config, ConfigError>,
    options: &Options,
) -> Report {
    let config = match loaded {
        Ok(config) => config,
        Err(e) => return unparsable(&e),
    };
    let mut checks = vec![Check::pass(
        "config",
        match file {
            Some(path) => format!(
                "{} and the TWOFOLD_ environment variables parse",
                path.display()
            ),
            None => "no file given (--config FILE or TWOFOLD_CONFIG): the built-in defaults \
                     and the TWOFOLD_ environment variables parse"
                .to_owned(),
        },
    )];
    checks.push(tls::check(&config, now_unix()));
    let opened = store::check(&config).await;
    checks.extend(opened.checks);
    let seed = config.seed_settings().unwrap_or_default();
    let (settings, settings_source) = match &opened.store {
        Some(store) => match store.settings_over(&seed).await {
            Ok(settings) => (settings, SettingsSource::Store),
            Err(_) => (seed, SettingsSource::Configuration),
        },
        None => (seed, SettingsSource::Configuration),
    };
    checks.push(sealing::check(&config, opened.store.as_ref(), opened.fresh).await);
    checks.extend(directory::check(&config, &settings, options.test_user.as_deref()).await);
    checks.push(email::check(&config).await);
    checks.push(twilio::check(&config).await);
    checks.push(portal_url::check(&settings, settings_source));
    checks.push(clock::check(&config, opened.store.as_ref()).await);
    if let Some(store) = opened.store {
        store.close().await;
    }
    Report {
        checks,
        unparsable: false,
    }
}

/// Where the settings the checks read came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SettingsSource {
    /// The store (what the server uses), over the configuration's seeds for the settings
    /// it does not hold yet.
    Store,
    /// The configuration's `[settings]`: the store is not there yet (or does not answer),
    /// and the first start seeds it from them.
    Configuration,
}

fn unparsable(error: &ConfigError) -> Report {
    let (detail, fix) = split_fix(&error.0);
    Report {
        checks: vec![Check {
            check: "config",
            status: Status::Fail,
            detail,
            fix: Some(fix.unwrap_or_else(|| {
                "correct the configuration as the message says (twofold.example.toml explains \
                 every key), then run twofold doctor again"
                    .to_owned()
            })),
        }],
        unparsable: true,
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A date as `2026-03-01`.
fn date(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix.to_string())
}

impl Report {
    /// 0 when nothing failed, 1 when a check failed, 2 when the configuration does not
    /// parse.
    pub fn exit_code(&self) -> u8 {
        if self.unparsable {
            2
        } else if self.checks.iter().any(|c| c.status == Status::Fail) {
            1
        } else {
            0
        }
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The report as an array of `{check, status, detail, fix}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.checks).unwrap_or(serde_json::Value::Null)
    }

    /// One line per check (`pass  tls         …`), the fix under a failure, and a summary;
    /// the status in colour when `colour` (a terminal).
    pub fn render_text(&self, colour: bool) -> String {
        let width = self.checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
        let mut out = String::new();
        for check in &self.checks {
            let status = check.status.as_str();
            let shown = if colour {
                let code = match check.status {
                    Status::Pass => "32",
                    Status::Fail => "31;1",
                    Status::Skip => "33",
                };
                format!("\x1b[{code}m{status}\x1b[0m")
            } else {
                status.to_owned()
            };
            out.push_str(&format!(
                "{shown}  {:<width$}  {}\n",
                check.check, check.detail
            ));
            if let Some(fix) = &check.fix {
                out.push_str(&format!("{:<4}  {:<width$}  fix: {fix}\n", "", ""));
            }
        }
        if self.unparsable {
            out.push_str(
                "\nThe configuration does not parse, so no other check could run: each needs it.\n",
            );
            return out;
        }
        out.push_str(&format!(
            "\n{} passed, {} failed, {} skipped.\n",
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip)
        ));
        out
    }
}

/// Where the settings the checks read are, for a message: "in the store".
fn settings_origin(source: SettingsSource) -> &'static str {
    match source {
        SettingsSource::Store => "in the store",
        SettingsSource::Configuration => "in [settings], which seeds the store at its first start",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_one_fix_is_split_into_detail_and_fix() {
        let (detail, fix) = split_fix("smtp.host is not set. Fix: set it to your SMTP server.");
        assert_eq!(detail, "smtp.host is not set");
        assert_eq!(fix.as_deref(), Some("set it to your SMTP server."));
        let (detail, fix) = split_fix("no fix here");
        assert_eq!((detail.as_str(), fix), ("no fix here", None));
        let two = "a. Fix: b\nc. Fix: d";
        assert_eq!(split_fix(two), (two.to_owned(), None));
    }

    #[test]
    fn the_exit_code_says_failed_or_unparsable_and_the_text_is_aligned_without_colour() {
        let report = Report {
            checks: vec![
                Check::pass("config", "parses"),
                Check::fail("migrations", "2 pending", "run twofold migrate"),
                Check::skip("clock", "SQLite"),
            ],
            unparsable: false,
        };
        assert_eq!(report.exit_code(), 1);
        let text = report.render_text(false);
        let expected = [
            "pass  config      parses".to_owned(),
            "fail  migrations  2 pending".to_owned(),
            format!("{}fix: run twofold migrate", " ".repeat(18)),
            "skip  clock       SQLite".to_owned(),
            String::new(),
            "1 passed, 1 failed, 1 skipped.".to_owned(),
        ];
        assert_eq!(text, expected.join("\n") + "\n");
        assert!(!text.contains('\x1b'));
        assert!(report.render_text(true).contains("\x1b[31;1mfail\x1b[0m"));
        let json = report.to_json();
        assert_eq!(json[1]["status"], "fail");
        assert_eq!(json[1]["fix"], "run twofold migrate");
        assert_eq!(json[0]["fix"], serde_json::Value::Null);
        assert_eq!(unparsable(&ConfigError("bad".into())).exit_code(), 2);
    }
}
