//! LDAP and Active Directory: passwords checked by binding as the user, accounts listed for
//! imports and syncs.
//!
//! A sign-in searches for the user as the service account (on a pooled connection), then
//! binds as the entry found with the user's password on a connection of its own: Twofold
//! never sees or compares a stored password, and keeps none. A name that finds no entry
//! still costs a bind (as a DN that does not exist), so that a refusal takes the same round
//! trips whether or not the account exists.

mod config;
mod connection;
mod results;

pub use config::{DEFAULT_USER_FILTER, LdapAttributes, LdapConfig, Transport};

use super::{
    Directory, DirectoryAccount, DirectoryEntry, DirectoryError, DirectoryOutcome, EntryScope,
    UserSource, account_part,
};
use crate::config::{ConfigError, Secret};
use async_trait::async_trait;
use connection::{Connector, Pool, unavailable};
use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Scope, SearchEntry, SearchOptions, ldap_escape};
use rustls::RootCertStore;
use std::sync::Arc;
use std::time::Duration;
use twofold_engine::Username;

/// Why the service account could not bind.
#[derive(Debug, thiserror::Error)]
pub enum ServiceBindError {
    /// The directory answered and refused the bind (49: invalidCredentials, most often).
    #[error("{url} refused the service account {bind_dn:?} (result {rc}: {text})")]
    Refused {
        url: String,
        bind_dn: String,
        rc: u32,
        text: String,
    },
    /// The directory could not be reached, or did not answer in time.
    #[error(transparent)]
    Unavailable(#[from] DirectoryError),
}

/// Entries per page when listing accounts.
const PAGE_SIZE: i32 = 500;

/// `primary_authentication = "ldap"`: an LDAP directory or Active Directory.
pub struct LdapDirectory {
    connector: Connector,
    pool: Pool,
    bind_dn: String,
    bind_password: Secret,
    base_dn: String,
    user_filter: String,
    group_dn: Option<String>,
    attributes: LdapAttributes,
}

impl LdapDirectory {
    /// The directory `[ldap]` describes. Checks the section (a bad key is named with its
    /// fix), reads the password file and the CA file; connects to nothing yet. Warns when
    /// passwords would cross the network unencrypted.
    pub fn from_config(config: &LdapConfig) -> Result<Self, ConfigError> {
        let transport = config.check()?;
        if transport == Transport::Plain {
            tracing::warn!(
                url = %config.url,
                "ldap.url is ldap:// without StartTLS: the service account's and users' passwords \
                 cross the network unencrypted, readable by anyone on the path. Fix: use ldaps:// \
                 or set ldap.starttls = true"
            );
        }
        let tls = tls_config(config, transport)?;
        Ok(Self {
            connector: Connector {
                url: config.url.clone(),
                starttls: config.starttls,
                tls,
                timeout: Duration::from_secs(config.timeout_seconds),
            },
            pool: Pool::new(config.pool_size),
            bind_dn: config.bind_dn.clone(),
            bind_password: config.bind_password()?,
            base_dn: config.base_dn.clone(),
            user_filter: config.user_filter.clone(),
            group_dn: config.group_dn.clone(),
            attributes: config.attributes.clone(),
        })
    }

    /// Binds as the service account on a connection of its own, and closes it: proves that
    /// the directory answers and accepts `bind_dn` with its password (`twofold doctor`).
    pub async fn bind_service_account(&self) -> Result<(), ServiceBindError> {
        let mut connection = self.connector.connect().await?;
        let result = self
            .connector
            .bounded(
                "the service account's bind",
                connection
                    .ldap
                    .simple_bind(&self.bind_dn, self.bind_password.expose()),
            )
            .await?;
        let _ = tokio::time::timeout(Duration::from_millis(200), connection.ldap.unbind()).await;
        if result.rc != 0 {
            return Err(ServiceBindError::Refused {
                url: self.connector.url.clone(),
                bind_dn: self.bind_dn.clone(),
                rc: result.rc,
                text: result.text,
            });
        }
        Ok(())
    }

    /// The DNs of the entries a sign-in as `login` would find (at most two: more than one
    /// is as bad as two), searched as the service account with the user filter and
    /// `group_dn`, as a sign-in searches; binds as nobody (`twofold doctor`).
    pub async fn find_account(&self, login: &str) -> Result<Vec<String>, DirectoryError> {
        let filter = self.sign_in_filter(account_part(login));
        let entries = self.search(&self.base_dn, &filter, 2).await?;
        Ok(entries.into_iter().map(|e| e.dn).collect())
    }

    /// The search filter a sign-in as `login` uses (for messages).
    pub fn filter_for(&self, login: &str) -> String {
        self.sign_in_filter(account_part(login))
    }

    /// The filter that finds the account `account` (escaped, RFC 4515), limited to the
    /// group's members when `group_dn` is set.
    fn sign_in_filter(&self, account: &str) -> String {
        let filter = self
            .user_filter
            .replace("{username}", ldap_escape(account).as_ref());
        self.within_group(filter, self.group_dn.as_deref())
    }

    fn within_group(&self, filter: String, group: Option<&str>) -> String {
        match group {
            Some(group) => format!("(&{filter}(memberOf={}))", ldap_escape(group)),
            None => filter,
        }
    }

    fn requested_attributes(&self) -> Vec<String> {
        let a = &self.attributes;
        vec![
            a.username.clone(),
            a.email.clone(),
            a.phone.clone(),
            a.mobile_phone.clone(),
            a.language.clone(),
            a.unique_id.clone(),
            "memberOf".to_owned(),
        ]
    }

    /// Searches on a pooled service connection. A reused connection that fails at once (the
    /// server restarted since) is dropped and the search tried once on a new one.
    async fn search(
        &self,
        base: &str,
        filter: &str,
        size_limit: i32,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let attributes = self.requested_attributes();
        let mut retried = false;
        loop {
            let mut pooled = self
                .pool
                .take(&self.connector, &self.bind_dn, self.bind_password.expose())
                .await?;
            let started = std::time::Instant::now();
            let result = self
                .connector
                .bounded(
                    "a search",
                    pooled
                        .connection
                        .ldap
                        .with_search_options(SearchOptions::new().sizelimit(size_limit))
                        .search(base, Scope::Subtree, filter, &attributes),
                )
                .await;
            match result {
                // 4: sizeLimitExceeded, with the entries found until then.
                Ok(found) if found.1.rc == 0 || found.1.rc == 4 => {
                    self.pool.put(pooled);
                    return Ok(found.0.into_iter().map(SearchEntry::construct).collect());
                }
                // 32: noSuchObject, the base does not exist.
                Ok(found) if found.1.rc == 32 => {
                    self.pool.put(pooled);
                    tracing::error!(
                        base,
                        "the LDAP search base does not exist. Fix: check ldap.base_dn"
                    );
                    return Ok(Vec::new());
                }
                Ok(found) => {
                    return Err(unavailable(format!(
                        "{} refused a search (result {}: {})",
                        self.connector.url, found.1.rc, found.1.text
                    )));
                }
                // A connection that broke fails at once; one that timed out is not tried
                // again, so a hung server costs one timeout.
                Err(e)
                    if pooled.reused && !retried && started.elapsed() < self.connector.timeout =>
                {
                    tracing::debug!(error = %e, "a pooled LDAP connection failed; trying a new one");
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Binds as `dn` with `password` on a connection of its own, asking for the password
    /// policy's verdict. `None` when the password is right and the account may sign in,
    /// otherwise why not.
    async fn bind_as_user(
        &self,
        dn: &str,
        password: &str,
    ) -> Result<Option<DirectoryOutcome>, DirectoryError> {
        let mut connection = self.connector.connect().await?;
        let result = self
            .connector
            .bounded(
                "the user's bind",
                connection
                    .ldap
                    .with_controls(RawControl {
                        ctype: results::PASSWORD_POLICY_OID.to_owned(),
                        crit: false,
                        val: None,
                    })
                    .simple_bind(dn, password),
            )
            .await?;
        let _ = tokio::time::timeout(Duration::from_millis(200), connection.ldap.unbind()).await;
        let policy = result
            .ctrls
            .iter()
            .filter(|c| c.1.ctype == results::PASSWORD_POLICY_OID)
            .find_map(|c| {
                c.1.val
                    .as_deref()
                    .and_then(results::password_policy_refusal)
            });
        match result.rc {
            // A right password; the policy may still say it must be changed first.
            0 => Ok(policy),
            // 49: invalidCredentials; 50: insufficientAccessRights; 53: unwillingToPerform
            // (a policy refused the bind).
            49 | 50 | 53 => Ok(Some(
                policy
                    .or_else(|| results::active_directory_refusal(&result.text))
                    .unwrap_or(DirectoryOutcome::Rejected),
            )),
            // 51: busy; 52: unavailable; 80: other.
            rc @ (51 | 52 | 80) => Err(unavailable(format!(
                "{} could not check a password (result {rc}: {})",
                self.connector.url, result.text
            ))),
            rc => {
                tracing::warn!(rc, text = %result.text, "the directory refused a user's bind");
                Ok(Some(DirectoryOutcome::Rejected))
            }
        }
    }

    /// A bind that must fail, as a DN that does not exist under the base: what a sign-in
    /// with an unknown name costs, so that it takes as long as one with a known name.
    async fn bind_as_nobody(&self, password: &str) -> Result<DirectoryOutcome, DirectoryError> {
        let dn = format!(
            "cn={},{}",
            hex::encode(rand::random::<[u8; 16]>()),
            self.base_dn
        );
        self.bind_as_user(&dn, password).await?;
        Ok(DirectoryOutcome::Rejected)
    }

    /// The account an entry describes, or `None` (logged) when it has no usable username.
    fn account(&self, entry: &SearchEntry) -> Option<DirectoryAccount> {
        let a = &self.attributes;
        let raw = first(entry, &a.username)?;
        let username = match Username::parse(&raw) {
            Ok(u) => u.as_str().to_owned(),
            Err(e) => {
                tracing::warn!(dn = %entry.dn, error = %e, "a directory entry's username cannot be a Twofold username");
                return None;
            }
        };
        Some(DirectoryAccount {
            username,
            email: first(entry, &a.email),
            phone: first(entry, &a.phone),
            mobile_phone: first(entry, &a.mobile_phone),
            language: first(entry, &a.language),
            unique_id: unique_id(entry, &a.unique_id),
            groups: values(entry, "memberOf"),
            dn: entry.dn.clone(),
        })
    }
}

/// The values of an attribute, whatever the case of its name in the answer.
fn values(entry: &SearchEntry, name: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn first(entry: &SearchEntry, name: &str) -> Option<String> {
    values(entry, name)
        .into_iter()
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// The stable id: a string (`entryUUID`), or a binary GUID (`objectGUID`) in its usual
/// string form.
fn unique_id(entry: &SearchEntry, name: &str) -> Option<String> {
    let binary = entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first());
    if let Some(bytes) = binary {
        return results::guid_string(bytes).or_else(|| Some(hex::encode(bytes)));
    }
    let text = values(entry, name).into_iter().next()?;
    // A binary GUID whose bytes happen to be valid UTF-8 arrives as text.
    if name.eq_ignore_ascii_case("objectGUID") {
        return results::guid_string(text.as_bytes()).or(Some(text));
    }
    Some(text)
}

fn tls_config(
    config: &LdapConfig,
    transport: Transport,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let mut roots = RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let bad = |why: String| {
                ConfigError(format!(
                    "ldap.ca_file = {}: {why}. Fix: point it at the PEM file of the CA that signed the directory's certificate.",
                    path.display()
                ))
            };
            let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
            if certs.is_empty() {
                return Err(bad("holds no certificate".into()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("a certificate cannot be used ({e})")))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "a system CA certificate cannot be read");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 && transport != Transport::Plain {
                return Err(ConfigError(
                    "ldap.ca_file is not set and the system has no trusted CA certificates. Fix: set ldap.ca_file to the PEM file of the CA that signed the directory's certificate."
                        .into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("TLS for [ldap] cannot be set up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[async_trait]
impl Directory for LdapDirectory {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn account_name(&self, login: &Username) -> Username {
        Username::parse(account_part(login.as_str())).unwrap_or_else(|_| login.clone())
    }

    async fn check_password(
        &self,
        username: &Username,
        password: &str,
    ) -> Result<DirectoryOutcome, DirectoryError> {
        // An empty password would be an unauthenticated bind, which directories accept.
        if password.is_empty() {
            return Ok(DirectoryOutcome::Rejected);
        }
        let account = account_part(username.as_str());
        if account.is_empty() {
            return self.bind_as_nobody(password).await;
        }
        let filter = self.sign_in_filter(account);
        let entries = self.search(&self.base_dn, &filter, 2).await?;
        let entry = match entries.as_slice() {
            [entry] => entry,
            [] => return self.bind_as_nobody(password).await,
            [..] => {
                tracing::error!(
                    account,
                    filter = %filter,
                    "more than one directory entry matches one sign-in name: refused. Fix: make \
                     ldap.user_filter match one account per name (sAMAccountName or uid), or \
                     narrow ldap.base_dn"
                );
                return self.bind_as_nobody(password).await;
            }
        };
        Ok(match self.bind_as_user(&entry.dn, password).await? {
            Some(refused) => refused,
            None => match self.account(entry) {
                Some(account) => DirectoryOutcome::Accepted(account),
                None => DirectoryOutcome::Rejected,
            },
        })
    }

    fn checks_health(&self) -> bool {
        true
    }

    async fn health(&self) -> Result<(), DirectoryError> {
        let mut pooled = self
            .pool
            .take(&self.connector, &self.bind_dn, self.bind_password.expose())
            .await?;
        let found = self
            .connector
            .bounded(
                "a read of the root DSE",
                pooled
                    .connection
                    .ldap
                    .search("", Scope::Base, "(objectClass=*)", vec!["1.1"]),
            )
            .await?;
        if found.1.rc != 0 {
            return Err(unavailable(format!(
                "{} refused to read its root DSE (result {}: {})",
                self.connector.url, found.1.rc, found.1.text
            )));
        }
        self.pool.put(pooled);
        Ok(())
    }
}

#[async_trait]
impl UserSource for LdapDirectory {
    async fn entries(&self, scope: &EntryScope) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        // Every account the user filter's other conditions match.
        let any = self.user_filter.replace("{username}", "*");
        let (base, filter) = match scope {
            EntryScope::Base(base) => (base.as_deref().unwrap_or(&self.base_dn), any),
            EntryScope::Group(group) => {
                (self.base_dn.as_str(), self.within_group(any, Some(group)))
            }
        };
        let attributes = self.requested_attributes();
        let mut pooled = self
            .pool
            .take(&self.connector, &self.bind_dn, self.bind_password.expose())
            .await?;
        let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE_SIZE)),
        ];
        let mut stream = self
            .connector
            .bounded(
                "a search",
                pooled.connection.ldap.streaming_search_with(
                    adapters,
                    base,
                    Scope::Subtree,
                    &filter,
                    attributes,
                ),
            )
            .await?;
        let mut accounts = Vec::new();
        while let Some(entry) = self
            .connector
            .bounded("a page of a search", stream.next())
            .await?
        {
            let entry = SearchEntry::construct(entry);
            match self.account(&entry) {
                Some(account) => accounts.push(account),
                None => {
                    tracing::warn!(dn = %entry.dn, attribute = %self.attributes.username, "a directory entry without a username is left out")
                }
            }
        }
        let done = self
            .connector
            .bounded("the end of a search", async { Ok(stream.finish().await) })
            .await?;
        if done.rc != 0 {
            return Err(unavailable(format!(
                "{} ended a search of {base} early (result {}: {})",
                self.connector.url, done.rc, done.text
            )));
        }
        self.pool.put(pooled);
        Ok(accounts)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn directory(group: Option<&str>) -> LdapDirectory {
        LdapDirectory::from_config(&LdapConfig {
            url: "ldap://ldap.corp.example".into(),
            starttls: false,
            ca_file: None,
            bind_dn: "cn=twofold,dc=corp,dc=example".into(),
            bind_password: Some(Secret::new("service secret")),
            bind_password_file: None,
            base_dn: "dc=corp,dc=example".into(),
            user_filter: DEFAULT_USER_FILTER.into(),
            group_dn: group.map(str::to_owned),
            timeout_seconds: 5,
            pool_size: 4,
            attributes: LdapAttributes::default(),
        })
        .unwrap()
    }

    #[test]
    fn a_sign_in_name_is_a_value_in_the_filter_never_filter_syntax() {
        let plain = directory(None);
        assert_eq!(
            plain.sign_in_filter("alice"),
            "(&(objectClass=inetOrgPerson)(uid=alice))"
        );
        assert_eq!(
            plain.sign_in_filter("*)(uid=*"),
            "(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(
            plain.sign_in_filter("a\\b\0"),
            "(&(objectClass=inetOrgPerson)(uid=a\\5cb\\00))"
        );
        let grouped = directory(Some("cn=MFA (all),ou=groups,dc=corp,dc=example"));
        assert_eq!(
            grouped.sign_in_filter("alice"),
            "(&(&(objectClass=inetOrgPerson)(uid=alice))(memberOf=cn=MFA \\28all\\29,ou=groups,dc=corp,dc=example))"
        );
    }
}
