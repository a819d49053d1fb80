//! OATH tokens: authenticator apps enrolled from the portal or the SDK, hardware tokens
//! imported and taken by serial, and the check of a code (single use, PIN, lockout).

use super::factors::{
    SoftwareEnrollment, enrollment_view, method_tag, parse_method, second_factor_checked,
    token_aad, username_of, window,
};
use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{
    NewToken, StoreError, TokenKind, TokenRecord, TokenStatus, UserChanges, UserRecord, new_id,
};
use twofold_engine::audit::AuditAction;
use twofold_engine::flow::{self, Challenge, UserFactors, Via};
use twofold_engine::oath::{self, OathKind, OathParams, OathState};
use twofold_engine::settings::Method;
use twofold_engine::{DomainError, Settings, Username};
use zeroize::Zeroizing;

impl InProcessService {
    /// Checks `code` against `token` and stores the advanced counters, exactly once.
    /// Returns the new state, or the OATH error (replays included) without counting it.
    /// Checks `code` against the token and spends it (single use: of two requests with the
    /// same code, one wins). With `ends_sign_in`, that user's lockout counters are cleared in
    /// the same write as the spending.
    pub(super) async fn spend_code(
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

    pub(super) async fn pin_matches(
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
            has_phone: user.phone.is_some(),
            has_backup_phone: user.backup_phone.is_some(),
            has_device: false,
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

    pub(super) async fn pending_software_of(
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

    pub(super) async fn activate(
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
}
