//! The audit log's vocabulary: who did what to whom, from where, and how it ended.

use crate::clock::UnixTime;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// The password step succeeded; the second factor follows.
    PasswordVerified,
    /// A sign-in attempt: a failure at any step, or a completed sign-in.
    SignIn,
    SignOut,
    UserCreated,
    UserUpdated,
    UserDeleted,
    UserUnlocked,
    /// Consecutive failures reached the hard cap: locked until an administrator unlocks.
    UserHardLocked,
    LanguageChanged,
    SettingChanged,
    TokenEnrolled,
    TokenRemoved,
    TokensImported,
    TokenResynchronised,
    PinChanged,
    MethodChanged,
    SecurityAnswersChanged,
    SecurityQuestionChanged,
    EnrollmentCompleted,
    BypassStarted,
    KeyRotated,
    ServiceAccountCreated,
    ServiceAccountDeleted,
    SdkCall,
    /// Users were imported from a file or a directory (one event per run, with its counts).
    UsersImported,
    /// A directory sync ran (one event per run, with its counts).
    UsersSynced,
    /// A sync found a user gone from the directory and disabled them.
    UserLeftDirectory,
    /// An imported user was emailed the portal's address.
    InvitationSent,
    /// A verification call was placed or a text sent (failure: refused by the limits or
    /// the allowed countries, or the provider failed).
    PhoneMessageSent,
    /// A user's phone numbers changed.
    PhoneChanged,
    /// A user reported a sign-in as not theirs (a fraud code in a call): they are blocked.
    FraudReported,
    /// An administrator lifted a fraud block.
    UserUnblocked,
    /// An activation code for the authenticator app was created.
    AppActivationCreated,
    /// An authenticator app was activated on a device.
    DeviceActivated,
    /// A device was removed (by its user, an administrator, or itself).
    DeviceRemoved,
    /// A request went to the user's authenticator app (or could not).
    PushSent,
    /// Someone was made an administrator, or their rights changed (`detail`: the grants).
    AdminChanged,
    /// An administrator's rights were taken away.
    AdminRemoved,
    /// A user's groups changed (`detail`: the groups now).
    GroupsChanged,
    /// An administrator exported the audit log (`detail`: the filters).
    AuditExported,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::PasswordVerified => "password_verified",
            AuditAction::SignIn => "sign_in",
            AuditAction::SignOut => "sign_out",
            AuditAction::UserCreated => "user_created",
            AuditAction::UserUpdated => "user_updated",
            AuditAction::UserDeleted => "user_deleted",
            AuditAction::UserUnlocked => "user_unlocked",
            AuditAction::UserHardLocked => "user_hard_locked",
            AuditAction::LanguageChanged => "language_changed",
            AuditAction::SettingChanged => "setting_changed",
            AuditAction::TokenEnrolled => "token_enrolled",
            AuditAction::TokenRemoved => "token_removed",
            AuditAction::TokensImported => "tokens_imported",
            AuditAction::TokenResynchronised => "token_resynchronised",
            AuditAction::PinChanged => "pin_changed",
            AuditAction::MethodChanged => "method_changed",
            AuditAction::SecurityAnswersChanged => "security_answers_changed",
            AuditAction::SecurityQuestionChanged => "security_question_changed",
            AuditAction::EnrollmentCompleted => "enrollment_completed",
            AuditAction::BypassStarted => "bypass_started",
            AuditAction::KeyRotated => "key_rotated",
            AuditAction::ServiceAccountCreated => "service_account_created",
            AuditAction::ServiceAccountDeleted => "service_account_deleted",
            AuditAction::SdkCall => "sdk_call",
            AuditAction::UsersImported => "users_imported",
            AuditAction::UsersSynced => "users_synced",
            AuditAction::UserLeftDirectory => "user_left_directory",
            AuditAction::InvitationSent => "invitation_sent",
            AuditAction::PhoneMessageSent => "phone_message_sent",
            AuditAction::PhoneChanged => "phone_changed",
            AuditAction::FraudReported => "fraud_reported",
            AuditAction::UserUnblocked => "user_unblocked",
            AuditAction::AppActivationCreated => "app_activation_created",
            AuditAction::DeviceActivated => "device_activated",
            AuditAction::DeviceRemoved => "device_removed",
            AuditAction::PushSent => "push_sent",
            AuditAction::AdminChanged => "admin_changed",
            AuditAction::AdminRemoved => "admin_removed",
            AuditAction::GroupsChanged => "groups_changed",
            AuditAction::AuditExported => "audit_exported",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Success,
    Failure,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
        }
    }
}

/// One line of the audit log. `detail` holds a stable reason code or what changed, never a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: UnixTime,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// Who acted: `user:alice`, `cli:root`, `sdk:portal-host`.
    pub actor: String,
    /// The username acted upon, as typed (normalised when it could be).
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(
        at: UnixTime,
        action: AuditAction,
        outcome: AuditOutcome,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            at,
            action,
            outcome,
            actor: actor.into(),
            subject: None,
            client_ip: None,
            user_agent: None,
            detail: None,
        }
    }
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    pub fn client(mut self, ip: Option<String>, user_agent: Option<String>) -> Self {
        self.client_ip = ip;
        // A user agent is the client's to choose: keep it bounded.
        self.user_agent = user_agent.map(|ua| ua.chars().take(256).collect());
        self
    }
}
