//! Primary authentication: where a username and password are checked.
//!
//! The service asks the configured [`Directory`] one question, "is this the password of this
//! user?", and keeps everything around it for itself, the same whatever the directory: the
//! length check, the lockout counters, the rate limits, the audit log, and finding the Twofold
//! user the directory vouched for. A directory only checks the password and says how the
//! check went.
//!
//! - [`LocalDirectory`]: argon2id hashes kept in the store (`primary_authentication =
//!   "local"`).
//! - [`RadiusDirectory`]: a PAP Access-Request to the operator's RADIUS servers
//!   (`primary_authentication = "radius"`, configured by `[radius]`).
//! - [`LdapDirectory`]: an LDAP directory or Active Directory (`"ldap"`): a bind as the user.
//!
//! A directory fails closed: when it cannot answer, it returns
//! [`DirectoryError::Unavailable`], which signs nobody in and counts no failure against the
//! user (the user did nothing wrong); it is never reported as a wrong password.

mod breaker;
pub mod ldap;
mod local;
pub mod radius;

pub use breaker::Breaker;

pub use ldap::LdapDirectory;
pub use local::LocalDirectory;
pub use radius::{RadiusConfig, RadiusDirectory};

use async_trait::async_trait;
use twofold_engine::Username;

/// What a directory knows about an account whose password it accepted. Directories that
/// hold more than the password (LDAP) fill in the contact details they hold; the others
/// leave them `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirectoryAccount {
    /// The account's username as the directory spells it (the form Twofold's users carry).
    pub username: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile_phone: Option<String>,
    /// A language tag (`en`, `fr-FR`), as the directory holds it.
    pub language: Option<String>,
    /// The directory's stable id for the account (`objectGUID`, `entryUUID`), which
    /// survives a rename; `None` for directories without one.
    pub unique_id: Option<String>,
    /// The groups the account belongs to, by DN, where the directory says so
    /// (`memberOf`): `[[sync]]` items match on them.
    pub groups: Vec<String>,
    /// The account's own DN (empty where the directory has none): `[[sync]]` items with
    /// a `base_dn` match on it.
    pub dn: String,
}

/// The part of a sign-in name that names the account, without the forms that only say
/// which domain it is in: `CORP\alice` and `alice@corp.example` are both `alice`.
///
/// Directories that accept those forms (LDAP against Active Directory) use this for the
/// Twofold user and the lockout counters, so that one person has one lockout counter
/// whichever form they type.
pub fn account_part(login: &str) -> &str {
    let after_domain = match login.rsplit_once('\\') {
        Some((_, name)) => name,
        None => login,
    };
    match after_domain.split_once('@') {
        Some((name, _)) => name,
        None => after_domain,
    }
}

/// How a directory answered a username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryOutcome {
    /// The password is right.
    Accepted(DirectoryAccount),
    /// The password is wrong, or the directory has no such user: a directory does not say
    /// which.
    Rejected,
    /// The directory holds the account but it may not sign in. The user is told, so a
    /// directory answers this only after the right password (as Active Directory does);
    /// before that, a disabled account is [`DirectoryOutcome::Rejected`].
    AccountDisabled,
    /// The password was right but has expired; the user must change it in the directory.
    PasswordExpired,
}

impl DirectoryOutcome {
    /// The outcome as the audit log names it.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryOutcome::Accepted(_) => "accepted",
            DirectoryOutcome::Rejected => "invalid_credentials",
            DirectoryOutcome::AccountDisabled => "account_disabled",
            DirectoryOutcome::PasswordExpired => "password_expired",
        }
    }
}

/// A directory that could not check a password. Nobody signs in while it lasts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("the directory ({directory}) cannot check passwords now: {reason}")]
    Unavailable {
        directory: &'static str,
        reason: String,
    },
}

/// Where passwords are checked.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// The directory's kind, as `primary_authentication` names it (`local`).
    fn kind(&self) -> &'static str;

    /// The account a sign-in name designates, as Twofold's users and the lockout
    /// counters know it. The local directory takes the name as typed; a directory that
    /// accepts `DOMAIN\name` or `name@domain` returns the account part ([`account_part`]).
    fn account_name(&self, login: &Username) -> Username {
        login.clone()
    }

    /// Checks `password` for `username` (the name as the user typed it, normalised).
    /// Every call that returns an outcome costs about the same time whether or not the
    /// user exists, so that failures reveal nothing.
    async fn check_password(
        &self,
        username: &Username,
        password: &str,
    ) -> Result<DirectoryOutcome, DirectoryError>;

    /// Whether the directory answers now (for `/readyz`): an LDAP directory reads its root
    /// entry on a service connection. The local directory, kept in the store, always
    /// answers.
    async fn health(&self) -> Result<(), DirectoryError> {
        Ok(())
    }

    /// Whether [`Directory::health`] asks the directory. A directory that cannot be asked
    /// without a user's password (RADIUS) says no, and its health is what the last
    /// sign-ins found (the [`Breaker`]'s state).
    fn checks_health(&self) -> bool {
        false
    }
}

/// One account as a directory lists it for an import or a sync.
pub type DirectoryEntry = DirectoryAccount;

/// Where an import or a sync reads accounts: all the accounts under a base DN, or the
/// members of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryScope {
    /// Every account the user filter finds under this DN (the configured `base_dn` when
    /// `None`).
    Base(Option<String>),
    /// The members of this group.
    Group(String),
}

/// A directory that can list its accounts (LDAP; not RADIUS, which only checks passwords).
#[async_trait]
pub trait UserSource: Send + Sync + 'static {
    /// The accounts in `scope`, with their attributes. A directory that cannot answer
    /// returns [`DirectoryError::Unavailable`], and the caller changes nothing.
    async fn entries(&self, scope: &EntryScope) -> Result<Vec<DirectoryEntry>, DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::account_part;

    #[test]
    fn the_three_forms_of_a_windows_sign_in_name_designate_one_account() {
        for login in ["alice", "CORP\\alice", "alice@corp.example"] {
            assert_eq!(account_part(login), "alice", "{login}");
        }
        assert_eq!(account_part("corp.example\\bob@corp.example"), "bob");
        assert_eq!(account_part("@corp.example"), "");
    }
}
