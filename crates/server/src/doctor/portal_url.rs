//! The `portal_url` setting: set, and an https address (it goes into the invitations
//! emailed to users, who type their passwords where it leads).

use super::{Check, SettingsSource, settings_origin};
use twofold_engine::Settings;

const NAME: &str = "portal_url";

pub(super) fn check(settings: &Settings, source: SettingsSource) -> Check {
    let url = settings.portal_url.trim();
    let origin = settings_origin(source);
    let how = |value: &str| match source {
        SettingsSource::Store => format!(
            "`twofold settings set portal_url {value}` (the store's value wins over [settings])"
        ),
        SettingsSource::Configuration => format!(
            "portal_url = \"{value}\" in [settings] before the first start, or `twofold settings set \
             portal_url {value}` after it"
        ),
    };
    if url.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "portal_url is not set {origin}: imported users are not invited, and emails cannot link to the portal"
            ),
            format!(
                "set it to the https address users reach the portal at: {}",
                how("https://mfa.example.com/")
            ),
        );
    }
    let https = url.strip_prefix("https://").map(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty()
    });
    match https {
        Some(true) => match url::Url::parse(url) {
            Ok(_) => Check::pass(NAME, format!("portal_url = {url:?} {origin}")),
            Err(e) => Check::fail(
                NAME,
                format!("portal_url = {url:?} {origin} is not an address: {e}"),
                how("https://mfa.example.com/"),
            ),
        },
        Some(false) => Check::fail(
            NAME,
            format!("portal_url = {url:?} {origin} names no host"),
            how("https://mfa.example.com/"),
        ),
        None => {
            let suggested = match url.strip_prefix("http://") {
                Some(rest) => format!("https://{rest}"),
                None => "https://mfa.example.com/".to_owned(),
            };
            Check::fail(
                NAME,
                format!(
                    "portal_url = {url:?} {origin} does not use https: users would follow it and type \
                     their passwords over a connection anyone on the way can read"
                ),
                format!("use https: {}", how(&suggested)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn with(url: &str) -> Check {
        let settings = Settings {
            portal_url: url.to_owned(),
            ..Settings::default()
        };
        check(&settings, SettingsSource::Store)
    }

    #[test]
    fn portal_url_must_be_set_and_https_with_a_host() {
        assert_eq!(with("https://mfa.example.com/").status, Status::Pass);
        for bad in ["", "http://mfa.example.com/", "https://", "mfa.example.com"] {
            let c = with(bad);
            assert_eq!(c.status, Status::Fail, "{bad}: {c:?}");
            assert!(
                c.fix
                    .as_deref()
                    .is_some_and(|f| f.contains("twofold settings set portal_url https://")),
                "{c:?}"
            );
        }
        assert!(
            with("http://mfa.example.com/")
                .fix
                .is_some_and(|f| f.contains("https://mfa.example.com/"))
        );
    }
}
