//! The `[ldap]` section: where the directory is, how Twofold reaches it, and which of its
//! attributes hold what.

use crate::config::{ConfigError, Secret};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The OpenLDAP form of `ldap.user_filter`.
pub const DEFAULT_USER_FILTER: &str = "(&(objectClass=inetOrgPerson)(uid={username}))";

/// `[ldap]`: an LDAP directory or Active Directory that checks passwords
/// (`primary_authentication = "ldap"`) and lists users for imports and syncs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://dc1.corp.example:636` or `ldap://ldap.corp.example:389`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before anything is sent.
    #[serde(default)]
    pub starttls: bool,
    /// PEM certificates of the CA that signed the directory's certificate. Without it, the
    /// system's trusted roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The service account that searches the directory.
    pub bind_dn: String,
    #[serde(default)]
    pub bind_password: Option<Secret>,
    /// A file holding the service account's password (one line).
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Where users are searched.
    pub base_dn: String,
    /// The search for one user; `{username}` is replaced by the escaped account name.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Only members of this group may sign in (`memberOf`).
    #[serde(default)]
    pub group_dn: Option<String>,
    /// The longest any one directory operation may take (connect, StartTLS, bind, search).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Service-account connections kept open for searches.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    #[serde(default)]
    pub attributes: LdapAttributes,
}

/// `[ldap.attributes]`: the directory attributes that hold each user detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapAttributes {
    pub username: String,
    pub email: String,
    pub phone: String,
    pub mobile_phone: String,
    pub language: String,
    pub unique_id: String,
}

impl Default for LdapAttributes {
    fn default() -> Self {
        Self {
            username: "uid".into(),
            email: "mail".into(),
            phone: "telephoneNumber".into(),
            mobile_phone: "mobile".into(),
            language: "preferredLanguage".into(),
            unique_id: "entryUUID".into(),
        }
    }
}

fn default_user_filter() -> String {
    DEFAULT_USER_FILTER.into()
}

fn default_timeout_seconds() -> u64 {
    5
}

fn default_pool_size() -> usize {
    4
}

/// Whether the connection is encrypted, as [`LdapConfig::check`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ldaps,
    StartTls,
    /// `ldap://` without StartTLS: passwords cross the network in the clear.
    Plain,
}

impl LdapConfig {
    /// Checks every key; the error names the key, its value and the fix.
    pub fn check(&self) -> Result<Transport, ConfigError> {
        let bad = |key: &str, value: &str, why: &str| {
            ConfigError(format!("ldap.{key} = {value:?}: {why}"))
        };
        let scheme = self
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        let transport = match scheme.as_deref() {
            Some("ldaps") if self.starttls => {
                return Err(ConfigError(format!(
                    "ldap.starttls = true with ldap.url = {:?}: an ldaps:// connection is already encrypted and cannot start TLS again. \
                     Fix: set starttls = false for ldaps://, or use an ldap:// URL with starttls = true.",
                    self.url
                )));
            }
            Some("ldaps") => Transport::Ldaps,
            Some("ldap") if self.starttls => Transport::StartTls,
            Some("ldap") => Transport::Plain,
            _ => {
                return Err(bad(
                    "url",
                    &self.url,
                    "not an LDAP URL. Fix: use ldaps://HOST:636, or ldap://HOST:389 with starttls = true",
                ));
            }
        };
        if url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(|h| !h.is_empty()))
            != Some(true)
        {
            return Err(bad(
                "url",
                &self.url,
                "no host in the URL. Fix: name the directory server, for example ldaps://dc1.corp.example:636",
            ));
        }
        if !self.user_filter.contains("{username}") {
            return Err(bad(
                "user_filter",
                &self.user_filter,
                "the filter must contain {username}, where the account name goes. \
                 Fix: for example (&(objectClass=user)(sAMAccountName={username})) for Active Directory, \
                 (&(objectClass=inetOrgPerson)(uid={username})) for OpenLDAP",
            ));
        }
        if !(self.user_filter.starts_with('(') && self.user_filter.ends_with(')')) {
            return Err(bad(
                "user_filter",
                &self.user_filter,
                "a filter is written in parentheses. Fix: for example (&(objectClass=inetOrgPerson)(uid={username}))",
            ));
        }
        for (key, value) in [("bind_dn", &self.bind_dn), ("base_dn", &self.base_dn)] {
            if value.trim().is_empty() {
                return Err(bad(
                    key,
                    value,
                    "empty. Fix: give a DN, for example cn=twofold,ou=services,dc=corp,dc=example",
                ));
            }
        }
        if self
            .group_dn
            .as_deref()
            .is_some_and(|g| g.trim().is_empty())
        {
            return Err(bad(
                "group_dn",
                "",
                "empty. Fix: give the DN of the group whose members may sign in, or leave the key out",
            ));
        }
        if self.timeout_seconds == 0 {
            return Err(bad(
                "timeout_seconds",
                "0",
                "every operation would time out. Fix: use 1 or more (5 is the default)",
            ));
        }
        if self.pool_size == 0 {
            return Err(bad(
                "pool_size",
                "0",
                "no connection could search the directory. Fix: use 1 or more (4 is the default)",
            ));
        }
        for (key, value) in [
            ("username", &self.attributes.username),
            ("email", &self.attributes.email),
            ("phone", &self.attributes.phone),
            ("mobile_phone", &self.attributes.mobile_phone),
            ("language", &self.attributes.language),
            ("unique_id", &self.attributes.unique_id),
        ] {
            if value.trim().is_empty() || value.contains([' ', '(', ')', ',', '=']) {
                return Err(ConfigError(format!(
                    "ldap.attributes.{key} = {value:?}: not an attribute name. Fix: name the directory attribute, or leave the key out for its default"
                )));
            }
        }
        if let Some(ca) = &self.ca_file
            && let Err(e) = std::fs::read(ca)
        {
            return Err(ConfigError(format!(
                "ldap.ca_file = {}: cannot be read ({e}). Fix: point it at the PEM file of the CA that signed the directory's certificate.",
                ca.display()
            )));
        }
        self.bind_password()?;
        Ok(transport)
    }

    /// The service account's password, from `bind_password` or `bind_password_file`.
    pub fn bind_password(&self) -> Result<Secret, ConfigError> {
        match (&self.bind_password, &self.bind_password_file) {
            (Some(_), Some(_)) => Err(ConfigError(
                "ldap.bind_password and ldap.bind_password_file are both set. Fix: keep one \
                 (bind_password_file, so the password stays out of the configuration file)."
                    .into(),
            )),
            (None, None) => Err(ConfigError(
                "ldap.bind_password is not set: the service account needs its password. Fix: set \
                 ldap.bind_password_file to a file holding it (or ldap.bind_password, or the \
                 TWOFOLD_LDAP__BIND_PASSWORD environment variable)."
                    .into(),
            )),
            (Some(p), None) => Ok(p.clone()),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError(format!(
                        "ldap.bind_password_file = {}: cannot be read ({e}). Fix: point it at a file \
                         holding the service account's password, readable by the user Twofold runs as.",
                        path.display()
                    ))
                })?;
                let password = text.trim_end_matches(['\r', '\n']);
                if password.is_empty() {
                    return Err(ConfigError(format!(
                        "ldap.bind_password_file = {}: the file is empty. Fix: put the service account's password in it.",
                        path.display()
                    )));
                }
                Ok(Secret::new(password))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn valid() -> LdapConfig {
        LdapConfig {
            url: "ldaps://dc1.corp.example:636".into(),
            starttls: false,
            ca_file: None,
            bind_dn: "cn=twofold,dc=corp,dc=example".into(),
            bind_password: Some(Secret::new("service secret")),
            bind_password_file: None,
            base_dn: "dc=corp,dc=example".into(),
            user_filter: DEFAULT_USER_FILTER.into(),
            group_dn: None,
            timeout_seconds: 5,
            pool_size: 4,
            attributes: LdapAttributes::default(),
        }
    }

    fn refusal(config: LdapConfig) -> String {
        config.check().unwrap_err().0
    }

    #[test]
    fn each_transport_is_recognised_from_the_url_and_starttls() {
        assert_eq!(valid().check().unwrap(), Transport::Ldaps);
        let mut c = valid();
        c.url = "ldap://ldap.corp.example".into();
        assert_eq!(c.clone().check().unwrap(), Transport::Plain);
        c.starttls = true;
        assert_eq!(c.check().unwrap(), Transport::StartTls);
    }

    #[test]
    fn a_bad_ldap_value_is_refused_with_its_key_and_a_fix() {
        let mut c = valid();
        c.url = "http://x".into();
        let m = refusal(c);
        assert!(m.starts_with("ldap.url = \"http://x\""), "{m}");
        assert!(m.contains("Fix:"), "{m}");

        let mut c = valid();
        c.user_filter = "(uid=alice)".into();
        assert!(refusal(c).starts_with("ldap.user_filter = "));

        let mut c = valid();
        c.starttls = true;
        assert!(refusal(c).starts_with("ldap.starttls = true"));

        let mut c = valid();
        c.bind_password_file = Some("/nonexistent/password".into());
        assert!(refusal(c).contains("both set"));

        let mut c = valid();
        c.bind_password = None;
        assert!(refusal(c).starts_with("ldap.bind_password is not set"));

        let mut c = valid();
        c.bind_password = None;
        c.bind_password_file = Some("/nonexistent/password".into());
        assert!(
            refusal(c)
                .starts_with("ldap.bind_password_file = /nonexistent/password: cannot be read")
        );

        let mut c = valid();
        c.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(refusal(c).starts_with("ldap.ca_file = /nonexistent/ca.pem"));

        let mut c = valid();
        c.timeout_seconds = 0;
        assert!(refusal(c).starts_with("ldap.timeout_seconds = \"0\""));
    }

    #[test]
    fn the_bind_password_is_read_from_its_file_without_the_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret pass\n").unwrap();
        let mut c = valid();
        c.bind_password = None;
        c.bind_password_file = Some(path);
        assert_eq!(c.bind_password().unwrap().expose(), "s3cret pass");
    }
}
