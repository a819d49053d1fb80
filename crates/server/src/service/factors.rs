//! Second factors in the in-process service: the flow after the password, OATH tokens,
//! PINs, security questions, enrolment and one-time bypasses.

use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{
    NewToken, StoreError, TokenKind, TokenRecord, TokenStatus, UserChanges, UserRecord, new_id,
};
use twofold_engine::answers::{self, QUESTIONS_PER_USER};
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
use twofold_engine::flow::{self, Challenge, EnrollmentStep, UserFactors, Via};
use twofold_engine::oath::{self, OathKind, OathParams, OathState, Window};
use twofold_engine::settings::Method;
use twofold_engine::{DomainError, Language, Settings, UnixTime, Username, pin};
use zeroize::Zeroizing;

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
fn second_factor_checked(factor: &'static str) {
    metrics::counter!("twofold_second_factor_checks_total", "factor" => factor).increment(1);
}

fn token_aad(id: &str) -> Vec<u8> {
    format!("oath_tokens:{id}").into_bytes()
}

fn window(settings: &Settings) -> Window {
    Window {
        totp_steps: u32::from(settings.oath_totp_window_steps),
        hotp_look_ahead: u32::from(settings.oath_hotp_look_ahead),
    }
}

fn method_tag(method: Method) -> &'static str {
    match method {
        Method::PhoneCall => "phone_call",
        Method::Sms => "sms",
        Method::MobileApp => "mobile_app",
        Method::Oath => "oath",
    }
}

/// What the engine needs to know of `user`'s factors, given whether they hold an active
/// token and how many security answers they keep.
pub(super) fn factors_with(user: &UserRecord, has_oath_token: bool, answers: usize) -> UserFactors {
    UserFactors {
        enrolled: user.enrolled_at.is_some(),
        method: parse_method(user.method.as_deref()),
        has_oath_token,
        security_answers: answers,
        has_pin: user.pin_hash.is_some(),
    }
}

fn parse_method(tag: Option<&str>) -> Option<Method> {
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
        Ok((factors_with(user, token.is_some(), answers), token))
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
    async fn factor_failure(
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
    async fn factor_success(
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
    async fn checked<T>(
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

    /// Checks `code` against `token` and stores the advanced counters, exactly once.
    /// Returns the new state, or the OATH error (replays included) without counting it.
    /// Checks `code` against the token and spends it (single use: of two requests with the
    /// same code, one wins). With `ends_sign_in`, that user's lockout counters are cleared in
    /// the same write as the spending.
    async fn spend_code(
        &self,
        token: TokenRecord,
        code: &str,
        settings: &Settings,
        ends_sign_in: Option<&str>,
    ) -> Result<Result<OathState, DomainError>, ServiceError> {
        let code = match oath::normalize_code(code, token.params.digits) {
            Ok(code) => code,
            Err(e) => return Ok(Err(e.into())),
        };
        let mut token = token;
        for _ in 0..8 {
            // A seed that cannot be opened (a key missing from this node's keyring) is the
            // server's problem, not a wrong code: it must not count against the user.
            let secret = self
                .keyring
                .open(&token.secret_sealed, &token_aad(&token.id))
                .map_err(|e| {
                    ServiceError::Internal(format!(
                        "the seed of token {} cannot be opened: {e}",
                        token.id
                    ))
                })?;
            let next = match oath::verify(
                &secret,
                &token.params,
                &token.state,
                &code,
                self.clock.now(),
                window(settings),
            ) {
                Ok(next) => next,
                Err(e) => return Ok(Err(e.into())),
            };
            let advanced = match ends_sign_in {
                Some(username) => {
                    self.store
                        .advance_token_and_settle_success(
                            &token.id,
                            token.version,
                            &next,
                            username,
                            self.clock.now(),
                        )
                        .await?
                }
                None => {
                    self.store
                        .advance_token(&token.id, token.version, &next)
                        .await?
                }
            };
            if advanced {
                return Ok(Ok(next));
            }
            // Someone else used this token meanwhile: read it again (the same code is then a replay).
            token = self.store.token(&token.id).await?.ok_or_else(|| {
                ServiceError::Internal("the token disappeared while in use".into())
            })?;
        }
        Err(ServiceError::Internal(
            "the token kept changing under us".into(),
        ))
    }

    async fn pin_matches(
        &self,
        user: &UserRecord,
        pin: Option<&str>,
    ) -> Result<bool, ServiceError> {
        let hasher = self.hasher.clone();
        let pin = pin.unwrap_or("").to_owned();
        let stored = user.pin_hash.clone();
        self.hashing
            .run(move || hasher.verify(&pin, stored.as_deref()).unwrap_or(false))
            .await
    }

    pub async fn verify_oath_code(
        &self,
        user_id: &str,
        code: &str,
        pin: Option<&str>,
        client: &ClientContext,
    ) -> Result<Via, ServiceError> {
        let settings = self.settings_now().await?;
        let (user, token) = self
            .store
            .user_with_active_token(user_id)
            .await?
            .ok_or(ServiceError::Domain(DomainError::UserNotFound))?;
        let token = token.ok_or(ServiceError::Domain(DomainError::NotEnrolled))?;
        // What `via` needs to know: the user's method, and that they hold a token.
        let factors = UserFactors {
            enrolled: user.enrolled_at.is_some(),
            method: parse_method(user.method.as_deref()),
            has_oath_token: true,
            security_answers: 0,
            has_pin: user.pin_hash.is_some(),
        };
        // A malformed code is refused without counting: it cannot be a guess.
        oath::normalize_code(code, token.params.digits).map_err(DomainError::from)?;
        // Counted before the code is checked: refused when locked or the counters are full.
        self.reserve_attempt(&user.username, &settings, client)
            .await?;
        second_factor_checked("oath");
        // Users enrolled before PINs were required have none yet: their code alone counts,
        // and the portal sends them to choose one right after.
        let pin_ok = if settings.pin_required && user.pin_hash.is_some() {
            self.checked(&user.username, self.pin_matches(&user, pin))
                .await?
        } else {
            true
        };
        // A right code with a right PIN ends the sign-in: the code is spent and the counters
        // cleared in one write.
        let ends_sign_in = pin_ok.then_some(user.username.as_str());
        let spent = self
            .checked(
                &user.username,
                self.spend_code(token, code, &settings, ends_sign_in),
            )
            .await?;
        match spent {
            Ok(_) if pin_ok => {
                let via = flow::via(Challenge::Oath, &factors);
                self.record_signed_in(&user, via, client).await;
                Ok(via)
            }
            Ok(_) => Err(self
                .factor_failure(&user, DomainError::InvalidCode, client)
                .await?),
            Err(e) => Err(self.factor_failure(&user, e, client).await?),
        }
    }

    pub async fn draw_questions(&self, user_id: &str) -> Result<Vec<QuestionView>, ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let mine: Vec<String> = self
            .store
            .answers(&user.id)
            .await?
            .into_iter()
            .map(|(q, _)| q)
            .collect();
        if !settings.security_questions_fallback
            || mine.len() < usize::from(settings.security_questions_required)
        {
            return Err(DomainError::NotEnrolled.into());
        }
        let drawn = self.kept_draw(&user.id, &mine, &settings).await?;
        let catalogue = self.store.questions(None, false).await?;
        Ok(drawn
            .into_iter()
            .map(|id| QuestionView {
                text: catalogue
                    .iter()
                    .find(|q| q.id == id)
                    .map(|q| q.text.clone())
                    .unwrap_or_else(|| id.clone()),
                id,
            })
            .collect())
    }

    /// The user's kept draw while it lasts and still fits, now lasting a while longer;
    /// otherwise a new one, kept from now on. Two sign-ins drawing at once end with the same
    /// draw (the store keeps the first).
    async fn kept_draw(
        &self,
        user_id: &str,
        mine: &[String],
        settings: &Settings,
    ) -> Result<Vec<String>, ServiceError> {
        let required = usize::from(settings.security_questions_required);
        let now = self.clock.now();
        let kept = self.store.question_draw(user_id, now).await?;
        let fits = kept
            .as_ref()
            .is_some_and(|k| answers::draw_fits(k, mine, required));
        let replace = kept.is_some() && !fits;
        let draw = match kept {
            Some(kept) if fits => kept,
            _ => answers::draw_questions(mine, required, &mut rand::thread_rng()),
        };
        let lifetime =
            answers::draw_lifetime_seconds(i64::from(settings.lockout_window_minutes) * 60);
        Ok(self
            .store
            .keep_question_draw(user_id, &draw, now, now + lifetime, replace)
            .await?)
    }

    /// Checks answers against the user's kept draw. `asked` (what the caller showed) must be
    /// that draw, each question once; each drawn question takes exactly one answer.
    pub async fn check_answers(
        &self,
        user_id: &str,
        asked: &[String],
        given: &[(String, String)],
        client: &ClientContext,
    ) -> Result<Via, ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let stored = self.store.answers(&user.id).await?;
        let mine: Vec<String> = stored.iter().map(|(q, _)| q.clone()).collect();
        let required = usize::from(settings.security_questions_required);
        let draw = self.store.question_draw(&user.id, self.clock.now()).await?;
        let Some(draw) = draw.filter(|d| {
            settings.security_questions_fallback
                && answers::draw_fits(d, &mine, required)
                && answers::asked_is_draw(asked, d)
        }) else {
            return Err(DomainError::WrongStep.into());
        };
        // Verify every answer (no early exit), off the async workers.
        let pairs: Vec<(String, Option<String>)> = answers::answers_for_draw(&draw, given)
            .into_iter()
            .zip(&draw)
            .map(|(answer, question)| {
                let hash = stored
                    .iter()
                    .find(|(q, _)| q == question)
                    .map(|(_, h)| h.clone());
                (answer, hash)
            })
            .collect();
        // Counted before the answers are checked.
        self.reserve_attempt(&user.username, &settings, client)
            .await?;
        second_factor_checked("security_questions");
        let hasher = self.hasher.clone();
        let all_right = self
            .checked(
                &user.username,
                self.hashing.run(move || {
                    pairs
                        .iter()
                        .map(|(answer, hash)| {
                            hasher.verify(answer, hash.as_deref()).unwrap_or(false)
                        })
                        .fold(true, |acc, ok| acc & ok)
                }),
            )
            .await?;
        if all_right {
            self.factor_success(&user, Via::SecurityQuestions, client)
                .await
        } else {
            Err(self
                .factor_failure(&user, DomainError::WrongAnswers, client)
                .await?)
        }
    }

    /// The authenticator-app enrolment in progress, if any: shown again, never started.
    /// Only an unfinished authenticator-app enrolment is shown again: a hardware token
    /// reserved for the user must never have its seed displayed.
    pub(super) async fn pending_software(
        &self,
        user_id: &str,
    ) -> Result<Option<SoftwareEnrollment>, ServiceError> {
        let user = self.user(user_id).await?;
        self.pending_software_of(&user).await
    }

    async fn pending_software_of(
        &self,
        user: &UserRecord,
    ) -> Result<Option<SoftwareEnrollment>, ServiceError> {
        let settings = self.settings_now().await?;
        let pending = self
            .store
            .user_token_of_kind(&user.id, TokenStatus::Pending, TokenKind::Software)
            .await?;
        match pending {
            Some(pending) => {
                let secret = self
                    .keyring
                    .open(&pending.secret_sealed, &token_aad(&pending.id))
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                enrollment_view(&settings, user, &secret, pending.params).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Shows the authenticator-app enrolment in progress again, or starts one.
    pub(super) async fn begin_software(
        &self,
        user_id: &str,
    ) -> Result<SoftwareEnrollment, ServiceError> {
        let user = self.user(user_id).await?;
        match self.pending_software_of(&user).await? {
            Some(enrollment) => Ok(enrollment),
            None => self.begin_software_with(&user, OathParams::default()).await,
        }
    }

    /// Starts an authenticator-app enrolment with chosen parameters: a new seed, sealed,
    /// pending until its first valid code (the portal uses the defaults; the SDK may choose).
    pub(super) async fn begin_software_with(
        &self,
        user: &UserRecord,
        params: OathParams,
    ) -> Result<SoftwareEnrollment, ServiceError> {
        let settings = self.settings_now().await?;
        let secret = Zeroizing::new(oath::generate_secret());
        let id = new_id();
        let sealed = self
            .keyring
            .seal(&secret, &token_aad(&id))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let token = NewToken {
            id,
            serial: None,
            user_id: Some(user.id.clone()),
            kind: TokenKind::Software,
            params,
            counter: 0,
            secret_sealed: sealed,
            key_id: self.keyring.current_id().to_owned(),
            status: TokenStatus::Pending,
        };
        self.store
            .create_pending_token(&token, self.clock.now())
            .await?;
        enrollment_view(&settings, user, &secret, params)
    }

    async fn activate(
        &self,
        user: &UserRecord,
        token: TokenRecord,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let settings = self.settings_now().await?;
        let code = oath::normalize_code(code, token.params.digits).map_err(DomainError::from)?;
        // Counted before the code is checked, like any second factor.
        self.reserve_attempt(&user.username, &settings, client)
            .await?;
        second_factor_checked("oath_activation");
        let secret = match self
            .keyring
            .open(&token.secret_sealed, &token_aad(&token.id))
        {
            Ok(secret) => secret,
            Err(e) => {
                self.release_attempt(&user.username).await?;
                return Err(ServiceError::Internal(e.to_string()));
            }
        };
        let next = match oath::verify(
            &secret,
            &token.params,
            &token.state,
            &code,
            self.clock.now(),
            window(&settings),
        ) {
            Ok(next) => next,
            Err(e) => return Err(self.factor_failure(user, e.into(), client).await?),
        };
        let now = self.clock.now();
        let activated = self
            .checked(&user.username, async {
                Ok(self
                    .store
                    .activate_token(&token.id, &user.id, token.version, &next, now)
                    .await?)
            })
            .await?;
        if !activated {
            // The same code was just used by a concurrent request: a replay, counted as such.
            return Err(self
                .factor_failure(user, DomainError::CodeAlreadyUsed, client)
                .await?);
        }
        if user.method.is_none() {
            let changes = UserChanges {
                method: Some(Some(method_tag(Method::Oath).to_owned())),
                ..UserChanges::default()
            };
            self.store
                .update_user(&username_of(user)?, changes, now)
                .await?;
        }
        self.successful_attempt(&user.username).await?;
        // A token activated with nothing else required completes enrolment (through the
        // SDK there is no wizard to finish it).
        let settings = self.settings_now().await?;
        if let Some(updated) = self.store.user_by_id(&user.id).await?
            && updated.enrolled_at.is_none()
        {
            let (factors, _) = self.user_factors(&updated).await?;
            if flow::next_enrollment_step(&settings, &factors).is_none() {
                let changes = UserChanges {
                    enrolled_at: Some(Some(now)),
                    ..UserChanges::default()
                };
                self.store
                    .update_user(&username_of(&updated)?, changes, now)
                    .await?;
                self.audit(self.succeeded(AuditAction::EnrollmentCompleted, user, client))
                    .await;
            }
        }
        let detail = match (&token.kind, &token.serial) {
            (TokenKind::Hardware, Some(serial)) => format!("hardware token {serial}"),
            _ => "authenticator app".to_owned(),
        };
        self.audit(
            self.succeeded(AuditAction::TokenEnrolled, user, client)
                .detail(detail),
        )
        .await;
        Ok(())
    }

    pub(super) async fn confirm_software(
        &self,
        user_id: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.user(user_id).await?;
        let token = self
            .store
            .user_token_of_kind(&user.id, TokenStatus::Pending, TokenKind::Software)
            .await?
            .ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        self.activate(&user, token, code, client).await
    }

    /// Activates whichever token is pending for the user (an authenticator app, or a
    /// hardware token reserved through the SDK). `false` when none is pending.
    pub(super) async fn confirm_any_pending(
        &self,
        user: &UserRecord,
        code: &str,
        client: &ClientContext,
    ) -> Result<bool, ServiceError> {
        match self
            .store
            .user_token(&user.id, TokenStatus::Pending)
            .await?
        {
            Some(token) => {
                self.activate(user, token, code, client).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub async fn associate_hardware(
        &self,
        user_id: &str,
        serial: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.user(user_id).await?;
        let token = self.available_hardware(&user, serial, client).await?;
        self.activate(&user, token, code, client).await
    }

    /// The available hardware token a user names by its serial, for every way of taking one
    /// (the portal's association, the SDK's with or without a code). Hardware tokens must be
    /// allowed, and a serial that is empty or over 64 characters names none. Naming a serial
    /// is a guess like a code: it is counted towards the user's lockout before the lookup
    /// (so a locked user is refused whatever the serial), handed back when it names an
    /// available token, and a failure when it names none or someone else's.
    pub(super) async fn available_hardware(
        &self,
        user: &UserRecord,
        serial: &str,
        client: &ClientContext,
    ) -> Result<TokenRecord, ServiceError> {
        let settings = self.settings_now().await?;
        if !settings.allow_third_party_oath_token {
            return Err(DomainError::HardwareTokensDisabled.into());
        }
        let serial = serial.trim();
        if serial.is_empty() || serial.chars().count() > 64 {
            return Err(DomainError::UnknownSerial.into());
        }
        self.reserve_attempt(&user.username, &settings, client)
            .await?;
        let found = self
            .checked(&user.username, async {
                Ok(self.store.token_by_serial(serial).await?)
            })
            .await?;
        let refused = match found {
            Some(t) if t.kind == TokenKind::Hardware && t.status == TokenStatus::Available => {
                self.release_attempt(&user.username).await?;
                return Ok(t);
            }
            Some(t) if t.kind == TokenKind::Hardware => DomainError::SerialAssigned,
            _ => DomainError::UnknownSerial,
        };
        Err(self.factor_failure(user, refused, client).await?)
    }

    pub(super) async fn remove_token(
        &self,
        user_id: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.user(user_id).await?;
        self.store.remove_user_tokens(&user.id).await?;
        self.audit(self.succeeded(AuditAction::TokenRemoved, &user, client))
            .await;
        Ok(())
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

    pub(super) async fn catalogue(
        &self,
        language: Language,
    ) -> Result<Vec<QuestionView>, ServiceError> {
        let mut questions = self.store.questions(Some(language.tag()), true).await?;
        if questions.len() < QUESTIONS_PER_USER && language != Language::En {
            questions.extend(self.store.questions(Some(Language::En.tag()), true).await?);
        }
        Ok(questions
            .into_iter()
            .map(|q| QuestionView {
                id: q.id,
                text: q.text,
            })
            .collect())
    }

    pub async fn change_answers(
        &self,
        user_id: &str,
        given: &[(String, String)],
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let known: Vec<String> = self
            .store
            .questions(None, true)
            .await?
            .into_iter()
            .map(|q| q.id)
            .collect();
        answers::check_enrollment(
            given,
            &known,
            usize::from(settings.security_answer_min_length),
        )
        .map_err(DomainError::from)?;
        let hasher = self.hasher.clone();
        let normalised: Vec<(String, String)> = given
            .iter()
            .map(|(q, a)| (q.clone(), answers::normalize_answer(a)))
            .collect();
        let hashed = self
            .hashing
            .run(move || {
                normalised
                    .into_iter()
                    .map(|(q, a)| hasher.hash_secret(&a).map(|h| (q, h)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
            .map_err(DomainError::from)?;
        self.store
            .replace_answers(&user.id, &hashed, self.clock.now())
            .await?;
        self.audit(self.succeeded(AuditAction::SecurityAnswersChanged, &user, client))
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

    pub(super) async fn begin_bypass(
        &self,
        user_id: &str,
        seconds: Option<u32>,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let settings = self.settings_now().await?;
        let seconds = flow::bypass_seconds(&settings, seconds).map_err(DomainError::from)?;
        let user = self.user(user_id).await?;
        let actor = format!("user:{}", user.username);
        self.create_bypass(&user, seconds, None, &actor, client)
            .await
    }

    /// Stores a one-time bypass of `seconds` for `user` (the caller checked the length
    /// against its rules) and audits it; returns when it expires.
    pub(super) async fn create_bypass(
        &self,
        user: &UserRecord,
        seconds: u32,
        reason: Option<&str>,
        actor: &str,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let now = self.clock.now();
        let expires = now + i64::from(seconds);
        let reason: Option<String> = reason.map(|r| r.chars().take(200).collect());
        self.store
            .create_bypass(&user.id, expires, reason.as_deref(), actor, now)
            .await?;
        self.audit(
            self.succeeded(AuditAction::BypassStarted, user, client)
                .detail(format!(
                    "{seconds} seconds{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                )),
        )
        .await;
        Ok(expires)
    }

    // ---- administration (the CLI) ----

    /// Imports hardware tokens: all or nothing.
    pub async fn import_tokens(
        &self,
        actor: &str,
        tokens: &[twofold_engine::token_import::ImportedToken],
    ) -> Result<usize, ServiceError> {
        let mut rows = Vec::with_capacity(tokens.len());
        for t in tokens {
            let id = new_id();
            let sealed = self
                .keyring
                .seal(&t.secret, &token_aad(&id))
                .map_err(|e| ServiceError::Internal(e.to_string()))?;
            rows.push(NewToken {
                id,
                serial: Some(t.serial.clone()),
                user_id: None,
                kind: TokenKind::Hardware,
                params: t.params,
                counter: t.counter,
                secret_sealed: sealed,
                key_id: self.keyring.current_id().to_owned(),
                status: TokenStatus::Available,
            });
        }
        match self.store.import_tokens(&rows, self.clock.now()).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(m)) => return Err(DomainError::Import(m).into()),
            Err(e) => return Err(e.into()),
        }
        self.audit(
            self.done_by(AuditAction::TokensImported, actor)
                .detail(format!("{} tokens", rows.len())),
        )
        .await;
        Ok(rows.len())
    }

    /// Resynchronises a token that drifted, with two consecutive codes.
    pub async fn resync_token(
        &self,
        actor: &str,
        serial_or_user: &str,
        first: &str,
        second: &str,
    ) -> Result<(), ServiceError> {
        let token = match self.store.token_by_serial(serial_or_user).await? {
            Some(t) => t,
            None => {
                let username = Username::parse(serial_or_user).map_err(DomainError::from)?;
                let user = self
                    .store
                    .user_by_username(&username)
                    .await?
                    .ok_or(ServiceError::Domain(DomainError::UnknownSerial))?;
                self.store
                    .user_token(&user.id, TokenStatus::Active)
                    .await?
                    .ok_or(ServiceError::Domain(DomainError::NotEnrolled))?
            }
        };
        let secret = self
            .keyring
            .open(&token.secret_sealed, &token_aad(&token.id))
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let search = match token.params.kind {
            OathKind::Totp { .. } => 40,
            OathKind::Hotp => 1000,
        };
        let next = oath::resync(
            &secret,
            &token.params,
            &token.state,
            first,
            second,
            self.clock.now(),
            search,
        )
        .map_err(DomainError::from)?;
        if !self
            .store
            .advance_token(&token.id, token.version, &next)
            .await?
        {
            return Err(DomainError::CodeAlreadyUsed.into());
        }
        self.audit(
            self.done_by(AuditAction::TokenResynchronised, actor)
                .subject(
                    token
                        .serial
                        .clone()
                        .unwrap_or_else(|| serial_or_user.to_owned()),
                ),
        )
        .await;
        Ok(())
    }

    pub async fn seed_questions(&self) -> Result<(), ServiceError> {
        Ok(self
            .store
            .seed_questions(DEFAULT_QUESTIONS, self.clock.now())
            .await?)
    }
}

/// What an authenticator app needs to add a token: URI, QR code and key.
fn enrollment_view(
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

fn username_of(user: &UserRecord) -> Result<Username, ServiceError> {
    Username::parse(&user.username).map_err(|e| ServiceError::Domain(e.into()))
}
