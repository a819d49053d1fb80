//! What the portal tells a visitor when the domain refuses: the status (the same as the SDK's,
//! from [`status_of`]) and a translated message, for every domain error.

use super::sign_in::format_time;
use crate::web::errors::status_of;
use crate::web::i18n::Translator;
use axum::http::StatusCode;
use twofold_engine::answers::AnswerError;
use twofold_engine::flow::BypassError;
use twofold_engine::password::MAX_PASSWORD_CHARS;
use twofold_engine::phone::PhoneError;
use twofold_engine::pin::PinError;
use twofold_engine::{DomainError, PasswordError};

/// Which form the refusal answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The sign-in form (username and password).
    Password,
    /// Any other form or page.
    Other,
}

/// The status and message for a refusal. At the password step nothing but the step's own
/// outcomes is told apart: anything else is "the username or password is incorrect", so
/// that no answer there says whether a user exists.
pub fn message(t: &Translator, error: &DomainError, step: Step) -> (StatusCode, String) {
    if step == Step::Password && !password_step_outcome(error) {
        return (StatusCode::UNAUTHORIZED, t.t("sign-in-failed"));
    }
    (status_of(error), text(t, error, step))
}

/// What the password step may tell its visitor.
fn password_step_outcome(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::InvalidCredentials
            | DomainError::UserLocked { .. }
            | DomainError::UserHardLocked
            | DomainError::RateLimited
            | DomainError::SignInDisabled
            | DomainError::AccountDisabled
            | DomainError::PasswordExpired
            | DomainError::DirectoryUnavailable
            | DomainError::Password(PasswordError::TooLong)
            // Told only after the right password (the service checks it first).
            | DomainError::FraudBlocked { .. }
    )
}

/// The message of each domain error. Exhaustive on purpose: a new error does not compile
/// until it has a message here.
fn text(t: &Translator, error: &DomainError, step: Step) -> String {
    match error {
        DomainError::InvalidCredentials | DomainError::Username(_) => t.t("sign-in-failed"),
        DomainError::UserLocked { until } => t.t1("sign-in-locked", "until", &format_time(*until)),
        DomainError::UserHardLocked => t.t("sign-in-hard-locked"),
        DomainError::RateLimited => match step {
            Step::Password => t.t("sign-in-rate-limited"),
            Step::Other => t.t("code-rate-limited"),
        },
        DomainError::SignInDisabled => t.t("sign-in-disabled"),
        DomainError::AccountDisabled => t.t("sign-in-account-disabled"),
        DomainError::PasswordExpired => t.t("sign-in-password-expired"),
        DomainError::DirectoryUnavailable => t.t("sign-in-unavailable"),
        // The user is gone: whatever their session was doing is over.
        DomainError::UserNotFound | DomainError::SessionEnded => t.t("sign-in-expired"),
        DomainError::Password(PasswordError::TooLong) => t.t1(
            "sign-in-password-too-long",
            "max",
            &MAX_PASSWORD_CHARS.to_string(),
        ),
        DomainError::MalformedCode { digits } => {
            t.t1("code-malformed", "digits", &digits.to_string())
        }
        DomainError::InvalidCode => t.t("code-wrong"),
        DomainError::CodeAlreadyUsed => t.t("code-replayed"),
        DomainError::WrongAnswers => t.t("answers-wrong"),
        DomainError::UnknownSerial => t.t("serial-unknown"),
        DomainError::SerialAssigned => t.t("serial-assigned"),
        DomainError::HardwareTokensDisabled => t.t("hardware-tokens-disabled"),
        DomainError::NotEnrolled => t.t("not-enrolled"),
        DomainError::Pin(p) => t.t1("pin-invalid", "reason", &pin_reason(t, p)),
        DomainError::Answers(a) => t.t1("answers-invalid", "reason", &answers_reason(t, a)),
        DomainError::Bypass(BypassError::OutOfRange { max }) => {
            t.t1("bypass-out-of-range", "max", &max.to_string())
        }
        DomainError::Bypass(BypassError::NotAllowed) => t.t("bypass-not-allowed"),
        DomainError::StepUpRequired => t.t("step-up-intro"),
        // Nothing the portal's forms ask for: a refusal the visitor can only retry.
        DomainError::UserExists
        | DomainError::Password(_)
        | DomainError::Contact(_)
        | DomainError::InvalidSetting(_)
        | DomainError::WrongStep
        | DomainError::Import(_)
        | DomainError::AuthenticationNotFound
        | DomainError::InvalidRequest(_) => t.t("error-refused"),
        DomainError::AuthenticationClosed(_) => t.t("sign-in-over"),
        DomainError::FraudBlocked { until } => {
            t.t1("sign-in-fraud-blocked", "until", &format_time(*until))
        }
        DomainError::Phone(p) => match p {
            PhoneError::NotANumber(_) => t.t("phone-not-a-number"),
            PhoneError::NoCountry(_) => t.t("phone-needs-country"),
            PhoneError::Invalid(_, country) => t.t1("phone-invalid", "country", country),
            PhoneError::Extension(_) => t.t("phone-extension"),
            PhoneError::Region(_) => t.t("error-refused"),
        },
        DomainError::WebhookRefused => t.t("error-refused"),
        DomainError::App(e) => match e {
            twofold_engine::app::AppError::DeviceLimit { limit } => {
                t.t1("app-device-limit", "limit", &limit.to_string())
            }
            twofold_engine::app::AppError::ActivationDisabled => t.t("app-activation-disabled"),
            twofold_engine::app::AppError::PushLimited => t.t("app-push-limited"),
            _ => t.t("error-refused"),
        },
        DomainError::Admin(e) => admin_message(t, e),
    }
}

/// An administration refusal, in the visitor's language.
fn admin_message(t: &Translator, e: &twofold_engine::admin::AdminError) -> String {
    use twofold_engine::admin::AdminError;
    match e {
        AdminError::Forbidden(p) => t.t1("admin-error-forbidden", "permission", p.as_str()),
        AdminError::NotHeld(_) | AdminError::BypassAboveOwn(_) => {
            t.t1("admin-error-not-held", "detail", &e.to_string())
        }
        AdminError::LastOwner => t.t("admin-error-last-owner"),
        AdminError::NotAnAdministrator(name) => {
            t.t1("admin-error-not-an-administrator", "username", name)
        }
        AdminError::BootstrapInvalid | AdminError::AlreadyBootstrapped => {
            t.t("admin-error-bootstrap")
        }
        AdminError::UnknownPermission(_)
        | AdminError::UnknownRole(_)
        | AdminError::BadScope(_)
        | AdminError::BadGroupName(_)
        | AdminError::NoPermission
        | AdminError::NotScopable(_)
        | AdminError::BypassMax(_) => t.t1("admin-error-invalid-grant", "detail", &e.to_string()),
    }
}

fn pin_reason(t: &Translator, e: &PinError) -> String {
    match e {
        PinError::NotDigits => t.t("pin-not-digits"),
        PinError::TooShort(n) => t.t1("pin-too-short", "min", &n.to_string()),
        PinError::TooLong => t.t("pin-too-long"),
        PinError::Trivial => t.t("pin-trivial"),
    }
}

fn answers_reason(t: &Translator, e: &AnswerError) -> String {
    match e {
        AnswerError::WrongCount => t.t("questions-four"),
        AnswerError::SameQuestionTwice => t.t("questions-different"),
        AnswerError::UnknownQuestion => t.t("questions-unknown"),
        AnswerError::TooShort(n) => t.t1("answer-too-short", "min", &n.to_string()),
        AnswerError::TooLong => t.t("answer-too-long"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use twofold_engine::Language;
    use twofold_engine::admin::{AdminError, Permission};
    use twofold_engine::contact::ContactError;
    use twofold_engine::username::UsernameError;

    /// One of every domain error (every variant, and every variant of the errors inside).
    pub(crate) fn every_domain_error() -> Vec<DomainError> {
        vec![
            DomainError::InvalidCredentials,
            DomainError::App(twofold_engine::app::AppError::InvalidActivationCode),
            DomainError::App(twofold_engine::app::AppError::DeviceLimit { limit: 1 }),
            DomainError::App(twofold_engine::app::AppError::ActivationDisabled),
            DomainError::App(twofold_engine::app::AppError::UnknownDevice),
            DomainError::App(twofold_engine::app::AppError::StaleTimestamp),
            DomainError::App(twofold_engine::app::AppError::ReplayedNonce),
            DomainError::App(twofold_engine::app::AppError::BadSignature),
            DomainError::App(twofold_engine::app::AppError::InvalidKey("x".into())),
            DomainError::App(twofold_engine::app::AppError::RequestNotFound),
            DomainError::App(twofold_engine::app::AppError::RequestAnswered),
            DomainError::App(twofold_engine::app::AppError::RequestExpired),
            DomainError::App(twofold_engine::app::AppError::InvalidPushEndpoint(
                "x".into(),
            )),
            DomainError::App(twofold_engine::app::AppError::PushLimited),
            DomainError::UserLocked {
                until: 1_800_000_000,
            },
            DomainError::UserHardLocked,
            DomainError::RateLimited,
            DomainError::SignInDisabled,
            DomainError::AccountDisabled,
            DomainError::PasswordExpired,
            DomainError::DirectoryUnavailable,
            DomainError::UserNotFound,
            DomainError::UserExists,
            DomainError::Username(UsernameError::Empty),
            DomainError::Username(UsernameError::TooLong),
            DomainError::Username(UsernameError::Whitespace),
            DomainError::Username(UsernameError::Invisible(0x200b)),
            DomainError::Password(PasswordError::TooLong),
            DomainError::Password(PasswordError::TooShort),
            DomainError::Password(PasswordError::Common),
            DomainError::Password(PasswordError::DamagedHash),
            DomainError::Password(PasswordError::Hashing),
            DomainError::Contact(ContactError::Email("x".into())),
            DomainError::Contact(ContactError::EmailTooLong),
            DomainError::Contact(ContactError::Phone("x".into())),
            DomainError::Contact(ContactError::PhoneTooLong),
            DomainError::InvalidSetting("language".into()),
            DomainError::MalformedCode { digits: 6 },
            DomainError::InvalidCode,
            DomainError::CodeAlreadyUsed,
            DomainError::WrongAnswers,
            DomainError::Pin(PinError::NotDigits),
            DomainError::Pin(PinError::TooShort(4)),
            DomainError::Pin(PinError::TooLong),
            DomainError::Pin(PinError::Trivial),
            DomainError::Answers(AnswerError::WrongCount),
            DomainError::Answers(AnswerError::SameQuestionTwice),
            DomainError::Answers(AnswerError::UnknownQuestion),
            DomainError::Answers(AnswerError::TooShort(3)),
            DomainError::Answers(AnswerError::TooLong),
            DomainError::Bypass(BypassError::NotAllowed),
            DomainError::Bypass(BypassError::OutOfRange { max: 3600 }),
            DomainError::UnknownSerial,
            DomainError::SerialAssigned,
            DomainError::HardwareTokensDisabled,
            DomainError::NotEnrolled,
            DomainError::WrongStep,
            DomainError::Import("row 2".into()),
            DomainError::AuthenticationNotFound,
            DomainError::AuthenticationClosed("approved".into()),
            DomainError::InvalidRequest("method".into()),
            DomainError::StepUpRequired,
            DomainError::SessionEnded,
            DomainError::Admin(AdminError::UnknownPermission("x".into())),
            DomainError::Admin(AdminError::UnknownRole("x".into())),
            DomainError::Admin(AdminError::BadScope("x".into())),
            DomainError::Admin(AdminError::BadGroupName("".into())),
            DomainError::Admin(AdminError::NoPermission),
            DomainError::Admin(AdminError::NotScopable(vec![Permission::AuditRead])),
            DomainError::Admin(AdminError::BypassMax(1)),
            DomainError::Admin(AdminError::NotHeld(Vec::new())),
            DomainError::Admin(AdminError::BypassAboveOwn(300)),
            DomainError::Admin(AdminError::LastOwner),
            DomainError::Admin(AdminError::Forbidden(Permission::UsersRead)),
            DomainError::Admin(AdminError::NotAnAdministrator("x".into())),
            DomainError::Admin(AdminError::BootstrapInvalid),
            DomainError::Admin(AdminError::AlreadyBootstrapped),
        ]
    }

    #[test]
    fn every_domain_error_has_a_translated_message_with_the_sdks_status() {
        for language in Language::ALL.iter() {
            let t = Translator::new(*language);
            for error in every_domain_error() {
                let (status, text) = message(&t, &error, Step::Other);
                assert_eq!(status, status_of(&error), "{error:?}");
                assert!(
                    !text.is_empty() && !text.contains("Unknown localization"),
                    "{error:?} in {language:?}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn the_password_step_tells_an_unknown_user_from_a_wrong_password_in_nothing() {
        let t = Translator::new(Language::En);
        let wrong = message(&t, &DomainError::InvalidCredentials, Step::Password);
        for error in [
            DomainError::UserNotFound,
            DomainError::Username(UsernameError::Whitespace),
            DomainError::NotEnrolled,
            DomainError::Password(PasswordError::Common),
        ] {
            assert_eq!(message(&t, &error, Step::Password), wrong, "{error:?}");
        }
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            message(&t, &DomainError::UserHardLocked, Step::Password).0,
            StatusCode::LOCKED
        );
    }

    #[test]
    fn a_refused_serial_is_told_the_same_status_as_in_the_sdk() {
        let t = Translator::new(Language::En);
        let (status, text) = message(&t, &DomainError::UnknownSerial, Step::Other);
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(text.contains("serial number"), "{text}");
    }
}
