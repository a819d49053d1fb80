//! What every second-factor use case shares: the user's factors as the engine sees them,
//! the audit of successes and failures, the views the pages show; and the PIN and the end
//! of the enrolment wizard. OATH tokens, security questions and bypasses have modules of
//! their own (`oath`, `questions`, `bypass`).

use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{TokenKind, TokenRecord, TokenStatus, UserChanges, UserRecord};
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
use twofold_engine::flow::{self, Challenge, EnrollmentStep, UserFactors, Via};
use twofold_engine::oath::{self, OathParams, Window};
use twofold_engine::settings::Method;
use twofold_engine::{DomainError, Settings, UnixTime, Username, pin};

/// A user's token as pages show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenSummary {
    pub kind: TokenKind,
    pub serial: Option<String>,
    pub params: OathParams,
    pub activated_at: Option<UnixTime>,
}

/// What a user has enrolled, and what the settings make of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FactorsView {
    pub username: String,
    pub factors: UserFactors,
    pub token: Option<TokenSummary>,
    pub active_bypass_until: Option<UnixTime>,
    pub next_enrollment: Option<EnrollmentStep>,
    /// The fallbacks offered instead of the user's own method.
    pub fallbacks: Vec<Challenge>,
    pub primary: Option<Challenge>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuestionView {
    pub id: String,
    pub text: String,
}

/// An authenticator-app enrolment in progress: everything needed to add it to an app.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SoftwareEnrollment {
    pub uri: String,
    pub secret_base32: String,
    pub qr_svg: String,
    pub issuer: String,
    pub account: String,
    pub params: OathParams,
}

/// The shipped security questions: (id, language, text).
pub const DEFAULT_QUESTIONS: &[(&str, &str, &str)] = &[
    ("en-1", "en", "What was the name of your first pet?"),
    ("en-2", "en", "In what city were you born?"),
    ("en-3", "en", "What was the name of your first school?"),
    ("en-4", "en", "What is your oldest cousin's first name?"),
    ("en-5", "en", "What was the make of your first car?"),
    (
        "en-6",
        "en",
        "What street did you live on when you were ten?",
    ),
    ("en-7", "en", "What was your childhood nickname?"),
    (
        "en-8",
        "en",
        "What is the first name of your favourite teacher?",
    ),
    (
        "fr-1",
        "fr",
        "Quel était le nom de votre premier animal de compagnie ?",
    ),
    ("fr-2", "fr", "Dans quelle ville êtes-vous né(e) ?"),
    ("fr-3", "fr", "Quel était le nom de votre première école ?"),
    (
        "fr-4",
        "fr",
        "Quel est le prénom de votre cousin(e) le/la plus âgé(e) ?",
    ),
    (
        "fr-5",
        "fr",
        "Quelle était la marque de votre première voiture ?",
    ),
    ("fr-6", "fr", "Dans quelle rue habitiez-vous à dix ans ?"),
    ("fr-7", "fr", "Quel était votre surnom d’enfance ?"),
    (
        "fr-8",
        "fr",
        "Quel est le prénom de votre enseignant(e) préféré(e) ?",
    ),
];

/// Counts one second factor about to be checked (`twofold_second_factor_checks_total`):
/// what an operator, and the tests, watch to see that no burst checks more than the lockout
/// allows.
pub(super) fn second_factor_checked(factor: &'static str) {
    metrics::counter!("twofold_second_factor_checks_total", "factor" => factor).increment(1);
}

pub(super) fn token_aad(id: &str) -> Vec<u8> {
    format!("oath_tokens:{id}").into_bytes()
}

pub(super) fn window(settings: &Settings) -> Window {
    Window {
        totp_steps: u32::from(settings.oath_totp_window_steps),
        hotp_look_ahead: u32::from(settings.oath_hotp_look_ahead),
    }
}

pub(super) fn method_tag(method: Method) -> &'static str {
    match method {
        Method::PhoneCall => "phone_call",
        Method::Sms => "sms",
        Method::MobileApp => "mobile_app",
        Method::Oath => "oath",
    }
}

/// What the engine needs to know of `user`'s factors, given whether they hold an active
/// token and how many security answers they keep.
pub(super) fn factors_with(
    user: &UserRecord,
    has_oath_token: bool,
    answers: usize,
    devices: u32,
) -> UserFactors {
    UserFactors {
        has_device: devices > 0,
        enrolled: user.enrolled_at.is_some(),
        method: parse_method(user.method.as_deref()),
        has_oath_token,
        security_answers: answers,
        has_pin: user.pin_hash.is_some(),
        has_phone: user.phone.is_some(),
        has_backup_phone: user.backup_phone.is_some(),
    }
}

pub(super) fn parse_method(tag: Option<&str>) -> Option<Method> {
    match tag? {
        "phone_call" => Some(Method::PhoneCall),
        "sms" => Some(Method::Sms),
        "mobile_app" => Some(Method::MobileApp),
        "oath" => Some(Method::Oath),
        _ => None,
    }
}

/// The QR code of an `otpauth://` URI as an SVG image.
pub(super) fn qr_svg(uri: &str) -> Result<String, ServiceError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| ServiceError::Internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

impl InProcessService {
    pub(super) async fn user(&self, user_id: &str) -> Result<UserRecord, ServiceError> {
        self.store
            .user_by_id(user_id)
            .await?
            .ok_or(ServiceError::Domain(DomainError::UserNotFound))
    }

    pub(super) async fn user_factors(
        &self,
        user: &UserRecord,
    ) -> Result<(UserFactors, Option<TokenRecord>), ServiceError> {
        let token = self.store.user_token(&user.id, TokenStatus::Active).await?;
        let answers = self.store.answers(&user.id).await?.len();
        let devices = self.store.device_count(&user.id).await?;
        Ok((factors_with(user, token.is_some(), answers, devices), token))
    }

    /// An audit event of something that went through for `user`.
    pub(super) fn succeeded(
        &self,
        action: AuditAction,
        user: &UserRecord,
        client: &ClientContext,
    ) -> AuditEvent {
        self.event(action, AuditOutcome::Success, user, client)
    }

    pub(super) fn event(
        &self,
        action: AuditAction,
        outcome: AuditOutcome,
        user: &UserRecord,
        client: &ClientContext,
    ) -> AuditEvent {
        // A service account acting through the SDK is named; otherwise sign-in attempts are
        // the portal's doing and changes are the user's.
        let actor = match (&client.actor, action) {
            (Some(actor), _) => actor.clone(),
            (None, AuditAction::SignIn) => "portal".to_owned(),
            (None, _) => format!("user:{}", user.username),
        };
        AuditEvent::new(self.clock.now(), action, outcome, actor)
            .subject(user.username.clone())
            .client(
                client.ip.map(|ip| ip.to_string()),
                client.user_agent.clone(),
            )
    }

    /// Settles a failed second factor (an attempt reserved before its check); returns the
    /// error to report (the lock, if there is one now) and audits the failure.
    pub(super) async fn factor_failure(
        &self,
        user: &UserRecord,
        error: DomainError,
        client: &ClientContext,
    ) -> Result<ServiceError, ServiceError> {
        let settings = self.settings_now().await?;
        let reported = self
            .failed_attempt(&user.username, error, &settings, client)
            .await?;
        self.audit(
            self.event(AuditAction::SignIn, AuditOutcome::Failure, user, client)
                .detail(reported.code()),
        )
        .await;
        metrics::counter!("twofold_sign_ins_total", "result" => "second_factor_failure")
            .increment(1);
        Ok(reported.into())
    }

    /// A second factor proven: the counters are cleared (never a lock in force).
    pub(super) async fn factor_success(
        &self,
        user: &UserRecord,
        via: Via,
        client: &ClientContext,
    ) -> Result<Via, ServiceError> {
        self.successful_attempt(&user.username).await?;
        self.record_signed_in(user, via, client).await;
        Ok(via)
    }

    /// Runs the check of a reserved attempt; when the check itself fails (the server's
    /// fault, not a wrong secret), the reservation is handed back.
    pub(super) async fn checked<T>(
        &self,
        username: &str,
        check: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        match check.await {
            Ok(value) => Ok(value),
            Err(e) => {
                self.release_attempt(username).await?;
                Err(e)
            }
        }
    }

    pub(super) async fn record_signed_in(
        &self,
        user: &UserRecord,
        via: Via,
        client: &ClientContext,
    ) {
        self.audit(
            self.succeeded(AuditAction::SignIn, user, client)
                .detail(via.as_str()),
        )
        .await;
        metrics::counter!("twofold_sign_ins_total", "result" => "success").increment(1);
    }

    pub(super) async fn settings_now(&self) -> Result<Settings, ServiceError> {
        use super::MfaService;
        self.settings().await
    }

    pub(super) async fn factors_of(&self, user_id: &str) -> Result<FactorsView, ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let (factors, token) = self.user_factors(&user).await?;
        let bypass = self.store.active_bypass(&user.id, self.clock.now()).await?;
        let primary = flow::primary_challenge(&factors);
        Ok(FactorsView {
            username: user.username.clone(),
            next_enrollment: flow::next_enrollment_step(&settings, &factors),
            fallbacks: flow::fallbacks(&settings, &factors, primary),
            primary,
            factors,
            token: token.map(|t| TokenSummary {
                kind: t.kind,
                serial: t.serial,
                params: t.params,
                activated_at: t.activated_at,
            }),
            active_bypass_until: bypass.map(|b| b.expires_at),
        })
    }

    pub(super) async fn change_pin(
        &self,
        user_id: &str,
        new_pin: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        pin::check_new_pin(new_pin, usize::from(settings.pin_min_length))
            .map_err(DomainError::from)?;
        let hasher = self.hasher.clone();
        let owned = new_pin.to_owned();
        let hash = self
            .hashing
            .run(move || hasher.hash_secret(&owned))
            .await?
            .map_err(DomainError::from)?;
        let changes = UserChanges {
            pin_hash: Some(Some(hash)),
            ..UserChanges::default()
        };
        self.store
            .update_user(&username_of(&user)?, changes, self.clock.now())
            .await?;
        self.audit(self.succeeded(AuditAction::PinChanged, &user, client))
            .await;
        Ok(())
    }

    pub(super) async fn finish_enrollment(
        &self,
        user_id: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let (factors, _) = self.user_factors(&user).await?;
        if flow::next_enrollment_step(&settings, &factors).is_some() {
            return Err(DomainError::WrongStep.into());
        }
        let now = self.clock.now();
        let changes = UserChanges {
            enrolled_at: Some(Some(user.enrolled_at.unwrap_or(now))),
            method: Some(Some(
                user.method
                    .clone()
                    .unwrap_or_else(|| method_tag(Method::Oath).to_owned()),
            )),
            ..UserChanges::default()
        };
        self.store
            .update_user(&username_of(&user)?, changes, now)
            .await?;
        self.successful_attempt(&user.username).await?;
        if user.enrolled_at.is_none() {
            self.audit(self.succeeded(AuditAction::EnrollmentCompleted, &user, client))
                .await;
        }
        self.record_signed_in(&user, Via::Enrollment, client).await;
        Ok(())
    }
}

/// What an authenticator app needs to add a token: URI, QR code and key.
pub(super) fn enrollment_view(
    settings: &Settings,
    user: &UserRecord,
    secret: &[u8],
    params: OathParams,
) -> Result<SoftwareEnrollment, ServiceError> {
    let uri = oath::otpauth_uri(&settings.oath_issuer, &user.username, secret, &params, 0);
    Ok(SoftwareEnrollment {
        qr_svg: qr_svg(&uri)?,
        secret_base32: oath::encode_base32(secret),
        issuer: settings.oath_issuer.clone(),
        account: user.username.clone(),
        params,
        uri,
    })
}

pub(super) fn username_of(user: &UserRecord) -> Result<Username, ServiceError> {
    Username::parse(&user.username).map_err(|e| ServiceError::Domain(e.into()))
}
