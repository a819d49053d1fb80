//! Domain errors with stable, machine-readable codes.
//!
//! The web layer maps each code to an HTTP status and a translated message; the code itself
//! is part of the SDK's contract and never changes once published.

use crate::clock::UnixTime;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    #[error("the username or password is incorrect")]
    InvalidCredentials,
    #[error("the account is locked until {until}")]
    UserLocked { until: UnixTime },
    #[error("signing in to the portal is turned off")]
    SignInDisabled,
    #[error("user not found")]
    UserNotFound,
    #[error("a user with that username already exists")]
    UserExists,
    #[error(transparent)]
    Username(#[from] crate::username::UsernameError),
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
}

impl DomainError {
    /// The stable code of this error, as it appears in logs and in the SDK's problems.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidCredentials => "invalid_credentials",
            DomainError::UserLocked { .. } => "user_locked",
            DomainError::SignInDisabled => "sign_in_disabled",
            DomainError::UserNotFound => "user_not_found",
            DomainError::UserExists => "user_exists",
            DomainError::Username(_) => "invalid_username",
            DomainError::Password(_) => "invalid_password",
            DomainError::InvalidSetting(_) => "invalid_setting",
        }
    }
}
