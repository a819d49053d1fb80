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
//!
//! A directory fails closed: when it cannot answer, it returns
//! [`DirectoryError::Unavailable`], which signs nobody in and counts no failure against the
//! user (the user did nothing wrong); it is never reported as a wrong password.

mod local;

pub use local::LocalDirectory;

use async_trait::async_trait;
use twofold_engine::Username;

/// What a directory knows about an account whose password it accepted. Directories that
/// hold more than the password (LDAP) fill in the contact details they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryAccount {
    /// The account's username as the directory spells it (the form Twofold's users carry).
    pub username: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// How a directory answered a username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryOutcome {
    /// The password is right.
    Accepted(DirectoryAccount),
    /// The password is wrong, or the directory has no such user: a directory does not say
    /// which.
    Rejected,
    /// The directory holds the account but it may not sign in.
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

    /// Checks `password` for `username`. Every call that returns an outcome costs about
    /// the same time whether or not the user exists, so that failures reveal nothing.
    async fn check_password(
        &self,
        username: &Username,
        password: &str,
    ) -> Result<DirectoryOutcome, DirectoryError>;
}
