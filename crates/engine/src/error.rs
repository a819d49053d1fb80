//! Domain errors with stable, machine-readable codes.
//!
//! The web layer maps each code to an HTTP status and a translated message; the code itself
//! is part of the SDK's contract and never changes once published.

use crate::clock::UnixTime;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DomainError {
    #[error("the username or password is incorrect")]
    InvalidCredentials,
    #[error("the account is locked until {until}")]
    UserLocked { until: UnixTime },
    #[error("the account is locked until an administrator unlocks it")]
    UserHardLocked,
    #[error("too many attempts; wait a minute")]
    RateLimited,
    #[error("signing in to the portal is turned off")]
    SignInDisabled,
    #[error("the directory has disabled this account; ask your administrator to enable it")]
    AccountDisabled,
    #[error(
        "the password has expired; change it in your organisation's directory, then sign in again"
    )]
    PasswordExpired,
    #[error("the directory cannot check passwords now; try again in a few minutes")]
    DirectoryUnavailable,
    #[error("user not found")]
    UserNotFound,
    #[error("a user with that username already exists")]
    UserExists,
    #[error(transparent)]
    Username(#[from] crate::username::UsernameError),
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    #[error(transparent)]
    Contact(#[from] crate::contact::ContactError),
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    #[error("the code must be {digits} digits")]
    MalformedCode { digits: u8 },
    #[error("the code is not valid")]
    InvalidCode,
    #[error("the code has already been used")]
    CodeAlreadyUsed,
    #[error("the answers are not right")]
    WrongAnswers,
    #[error(transparent)]
    Pin(#[from] crate::pin::PinError),
    #[error(transparent)]
    Answers(#[from] crate::answers::AnswerError),
    #[error(transparent)]
    Bypass(#[from] crate::flow::BypassError),
    #[error("no token with that serial number is available")]
    UnknownSerial,
    #[error("that token is already assigned to someone")]
    SerialAssigned,
    #[error("third-party OATH tokens are turned off")]
    HardwareTokensDisabled,
    #[error("the user has no second factor for this")]
    NotEnrolled,
    #[error("this step does not apply now")]
    WrongStep,
    #[error("the token file cannot be imported: {0}")]
    Import(String),
    #[error("no such authentication")]
    AuthenticationNotFound,
    #[error("this authentication is {0}; start a new one")]
    AuthenticationClosed(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error(
        "prove a second factor again first: this change needs one proved in the last few minutes"
    )]
    StepUpRequired,
    #[error("the session has ended or is not at this step; sign in again")]
    SessionEnded,
    #[error(
        "this account is blocked after a fraud report until {until}; ask your administrator to unblock it"
    )]
    FraudBlocked { until: UnixTime },
    #[error(transparent)]
    Phone(#[from] crate::phone::PhoneError),
    #[error("the webhook is not for a pending call or message, or was taken already")]
    WebhookRefused,
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
}

impl DomainError {
    /// The stable code of this error, as it appears in logs and in the SDK's problems.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidCredentials => "invalid_credentials",
            // The same code as a lock that ends by itself: clients already handle it.
            DomainError::UserLocked { .. } | DomainError::UserHardLocked => "user_locked",
            DomainError::RateLimited => "rate_limited",
            DomainError::SignInDisabled => "sign_in_disabled",
            DomainError::AccountDisabled => "account_disabled",
            DomainError::PasswordExpired => "password_expired",
            DomainError::DirectoryUnavailable => "directory_unavailable",
            DomainError::UserNotFound => "user_not_found",
            DomainError::UserExists => "user_exists",
            DomainError::Username(_) => "invalid_username",
            DomainError::Contact(
                crate::contact::ContactError::Email(_) | crate::contact::ContactError::EmailTooLong,
            ) => "invalid_email",
            DomainError::Contact(_) => "invalid_phone",
            DomainError::Password(_) => "invalid_password",
            DomainError::InvalidSetting(_) => "invalid_setting",
            DomainError::MalformedCode { .. } => "invalid_code_format",
            DomainError::InvalidCode => "invalid_code",
            DomainError::CodeAlreadyUsed => "code_already_used",
            DomainError::WrongAnswers => "wrong_answers",
            DomainError::Pin(e) => e.code(),
            DomainError::Answers(e) => e.code(),
            DomainError::Bypass(e) => e.code(),
            DomainError::UnknownSerial => "unknown_serial",
            DomainError::SerialAssigned => "serial_assigned",
            DomainError::HardwareTokensDisabled => "hardware_tokens_disabled",
            DomainError::NotEnrolled => "not_enrolled",
            DomainError::WrongStep => "wrong_step",
            DomainError::Import(_) => "import_failed",
            DomainError::AuthenticationNotFound => "authentication_not_found",
            DomainError::AuthenticationClosed(_) => "authentication_closed",
            DomainError::InvalidRequest(_) => "invalid_request",
            DomainError::StepUpRequired => "step_up_required",
            DomainError::SessionEnded => "session_ended",
            DomainError::FraudBlocked { .. } => "fraud_blocked",
            DomainError::Admin(e) => e.code(),
            DomainError::Phone(e) => e.code(),
            DomainError::WebhookRefused => "webhook_refused",
            DomainError::App(e) => e.code(),
        }
    }
}

impl From<crate::oath::OathError> for DomainError {
    fn from(e: crate::oath::OathError) -> Self {
        use crate::oath::OathError;
        match e {
            OathError::Malformed { digits } => DomainError::MalformedCode { digits },
            OathError::WrongCode | OathError::Unsupported => DomainError::InvalidCode,
            OathError::Replayed => DomainError::CodeAlreadyUsed,
        }
    }
}
