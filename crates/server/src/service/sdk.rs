//! What the Web Service SDK does, over the same engine and store as the portal: an
//! authentication started through the SDK follows exactly the portal's state machine.

use super::authentications::Answer;
use super::authentications::StartOptions;
use super::phones::PhoneEntry;
use super::telephony::PhoneChoice;
use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{
    ServiceAccountRecord, StoreError, TokenKind, TokenStatus, UserChanges, UserRecord,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use twofold_engine::audit::AuditAction;
use twofold_engine::authentication::{Authentication, Origin, State, Step};
use twofold_engine::flow::{self, Challenge};
use twofold_engine::oath::{Algorithm, OathKind, OathParams};
use twofold_engine::settings::Method;
use twofold_engine::token_import::{self, PskcKey};
use twofold_engine::{DomainError, Language, Username};
use twofold_sdk as sdk;

/// The role that may call the SDK (the original's "PhoneFactor Admins").
pub const SDK_ROLE: &str = "sdk";
/// The role of a portal on its own host: it may call the portal's RPC and nothing else.
pub const PORTAL_ROLE: &str = "portal";

/// A service account's secret, shown once.
pub struct ServiceAccountSecret(pub String);

/// How long a service account read from the store is reused (a deleted account stops
/// working within this time on every node).
const ACCOUNT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn token_view(kind: TokenKind, serial: Option<String>, params: &OathParams) -> sdk::OathTokenView {
    let (otp_type, period) = match params.kind {
        OathKind::Totp { period } => ("totp", Some(period)),
        OathKind::Hotp => ("hotp", None),
    };
    sdk::OathTokenView {
        kind: kind.as_str().to_owned(),
        serial,
        otp_type: otp_type.to_owned(),
        digits: params.digits,
        period,
        algorithm: algorithm_name(params.algorithm).to_owned(),
    }
}

fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "sha1",
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    }
}

fn parse_username(name: &str) -> Result<Username, ServiceError> {
    Username::parse(name).map_err(|e| ServiceError::Domain(e.into()))
}

/// Who started an authentication through the SDK: the service account.
fn caller(client: &ClientContext) -> String {
    client.actor.clone().unwrap_or_else(|| "sdk".to_owned())
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::Domain(DomainError::InvalidRequest(message.into()))
}

impl InProcessService {
    // ---- service accounts ----

    /// Creates a service account in `role` and returns its secret (shown once; the store
    /// keeps its SHA-256: the secret is 256 random bits, so a fast hash is enough).
    pub async fn add_service_account(
        &self,
        actor: &str,
        name: &str,
        role: &str,
    ) -> Result<ServiceAccountSecret, ServiceError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "a service account name has 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        let secret = format!("tf_{}", hex::encode(rand::random::<[u8; 32]>()));
        let record = ServiceAccountRecord {
            name: name.to_owned(),
            secret_hash: secret_hash(&secret),
            role: role.to_owned(),
            created_at: self.clock.now(),
        };
        match self.store.create_service_account(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(invalid(format!(
                    "a service account named {name} already exists"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(
            self.done_by(AuditAction::ServiceAccountCreated, actor)
                .subject(name)
                .detail(format!("role {role}")),
        )
        .await;
        Ok(ServiceAccountSecret(secret))
    }

    /// Deletes a service account (audited); `false` when there was none of that name. It
    /// stops working on every node within the account cache's time.
    pub async fn delete_service_account(
        &self,
        actor: &str,
        name: &str,
    ) -> Result<bool, ServiceError> {
        let deleted = self.store.delete_service_account(name).await?;
        if let Ok(mut cache) = self.accounts_cache.lock() {
            cache.remove(name);
        }
        if deleted {
            self.audit(
                self.done_by(AuditAction::ServiceAccountDeleted, actor)
                    .subject(name),
            )
            .await;
        }
        Ok(deleted)
    }

    /// The account, when `secret` is its secret (compared in constant time).
    pub async fn authenticate_service_account(
        &self,
        name: &str,
        secret: &str,
    ) -> Result<Option<ServiceAccountRecord>, ServiceError> {
        let cached = self.accounts_cache.lock().ok().and_then(|cache| {
            cache
                .get(name)
                .filter(|(_, at)| at.elapsed() < ACCOUNT_CACHE_TTL)
                .map(|(a, _)| a.clone())
        });
        let account = match cached {
            Some(account) => Some(account),
            None => {
                let fetched = self.store.service_account(name).await?;
                if let (Some(account), Ok(mut cache)) = (&fetched, self.accounts_cache.lock()) {
                    if cache.len() > 10_000 {
                        cache.clear();
                    }
                    cache.insert(
                        name.to_owned(),
                        (account.clone(), std::time::Instant::now()),
                    );
                }
                fetched
            }
        };
        let Some(account) = account else {
            // Same work for an unknown name.
            let _ = secret_hash(secret)
                .as_bytes()
                .ct_eq(secret_hash("").as_bytes());
            return Ok(None);
        };
        let given = secret_hash(secret);
        if bool::from(given.as_bytes().ct_eq(account.secret_hash.as_bytes())) {
            Ok(Some(account))
        } else {
            Ok(None)
        }
    }

    // ---- users ----

    pub async fn sdk_user(&self, username: &str) -> Result<sdk::User, ServiceError> {
        let name = parse_username(username)?;
        let user = self
            .store
            .user_by_username(&name)
            .await?
            .ok_or(ServiceError::Domain(DomainError::UserNotFound))?;
        self.user_view(&user).await
    }

    async fn user_view(&self, user: &UserRecord) -> Result<sdk::User, ServiceError> {
        let (factors, token) = self.user_factors(user).await?;
        let now = self.clock.now();
        let lock = self.store.lockout(&user.username).await?.state.lock(now);
        let (locked_until, hard_locked) = match lock {
            Some(twofold_engine::lockout::Lock::Until(until)) => (Some(until), false),
            Some(twofold_engine::lockout::Lock::UntilReleased) => (None, true),
            None => (None, false),
        };
        let bypass_until = self
            .store
            .active_bypass(&user.id, now)
            .await?
            .map(|b| b.expires_at);
        Ok(sdk::User {
            username: user.username.clone(),
            email: user.email.clone(),
            phone: user.phone.clone(),
            extension: user.extension.clone(),
            backup_phone: user.backup_phone.clone(),
            backup_extension: user.backup_extension.clone(),
            language: user.language.clone(),
            enabled: user.enabled,
            has_password: user.password_hash.is_some(),
            has_pin: user.pin_hash.is_some(),
            method: user.method.clone(),
            enrolled: factors.enrolled,
            oath: token.map(|t| token_view(t.kind, t.serial, &t.params)),
            security_answers: factors.security_answers,
            created_at: user.created_at,
            locked_until,
            hard_locked,
            bypass_until,
            fraud_blocked_until: user.fraud_blocked_until.filter(|until| *until > now),
        })
    }

    /// `PUT /sdk/v1/users/{username}/phones`.
    pub async fn sdk_set_phones(
        &self,
        username: &str,
        body: sdk::PhonesSet,
        client: &ClientContext,
    ) -> Result<sdk::User, ServiceError> {
        let entry = |p: sdk::PhoneNumber| PhoneEntry {
            number: p.number,
            extension: p.extension,
        };
        let primary = body.primary.map(entry);
        let backup = body.backup.map(entry);
        let user = self
            .set_user_phones(username, primary.as_ref(), backup.as_ref(), client)
            .await?;
        self.user_view(&user).await
    }

    /// `PUT /sdk/v1/users/{username}/method`.
    pub async fn sdk_set_method(
        &self,
        username: &str,
        method: sdk::Method,
        client: &ClientContext,
    ) -> Result<sdk::User, ServiceError> {
        let user = self
            .set_user_method(username, engine_method(method), client)
            .await?;
        self.user_view(&user).await
    }

    pub async fn sdk_list_users(
        &self,
        query: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<sdk::UserList, ServiceError> {
        let limit = limit.clamp(1, 500);
        let mut rows = self
            .store
            .find_users(limit + 1, cursor, query.trim())
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(500));
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push(self.user_view(row).await?);
        }
        Ok(sdk::UserList {
            next_cursor: if more {
                users.last().map(|u| u.username.clone())
            } else {
                None
            },
            users,
        })
    }

    pub async fn sdk_create_user(
        &self,
        actor: &str,
        body: sdk::UserCreate,
    ) -> Result<sdk::User, ServiceError> {
        if let Some(language) = &body.language
            && Language::from_tag(language).is_none()
        {
            return Err(invalid(format!("language {language:?}: use en or fr")));
        }
        let user = self
            .add_user(
                actor,
                &body.username,
                body.email,
                body.phone,
                body.password.as_deref(),
            )
            .await?;
        if let Some(language) = body.language {
            let changes = UserChanges {
                language: Some(Some(language)),
                ..UserChanges::default()
            };
            self.update_user(actor, &user.username, changes, None)
                .await?;
        }
        self.sdk_user(&user.username).await
    }

    pub async fn sdk_patch_user(
        &self,
        actor: &str,
        username: &str,
        body: sdk::UserPatch,
    ) -> Result<sdk::User, ServiceError> {
        let method = match body.method.as_deref() {
            None => None,
            Some(m @ ("oath" | "phone_call" | "sms")) => Some(Some(m.to_owned())),
            Some(other) => {
                return Err(invalid(format!(
                    "method {other:?}: use oath, phone_call or sms"
                )));
            }
        };
        let changes = UserChanges {
            email: body.email,
            phone: body.phone,
            language: body.language,
            enabled: body.enabled,
            method,
            ..UserChanges::default()
        };
        if changes.is_empty() && body.password.is_none() {
            return self.sdk_user(username).await;
        }
        let user = self
            .update_user(actor, username, changes, body.password.as_deref())
            .await?;
        self.sdk_user(&user.username).await
    }

    async fn by_name(&self, username: &str) -> Result<UserRecord, ServiceError> {
        let name = parse_username(username)?;
        self.store
            .user_by_username(&name)
            .await?
            .ok_or(ServiceError::Domain(DomainError::UserNotFound))
    }

    pub async fn sdk_set_pin(
        &self,
        username: &str,
        pin: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.by_name(username).await?;
        self.change_pin(&user.id, pin, client).await?;
        self.end_portal_sessions(&user.id).await
    }

    /// A change of the user's factors through the SDK ends their portal sessions: one begun
    /// before the change must not act on the new state.
    async fn end_portal_sessions(&self, user_id: &str) -> Result<(), ServiceError> {
        self.store.delete_user_sessions(user_id).await?;
        Ok(())
    }

    // ---- OATH ----

    pub async fn sdk_oath_enroll(
        &self,
        username: &str,
        body: sdk::OathEnroll,
        client: &ClientContext,
    ) -> Result<sdk::OathEnrollment, ServiceError> {
        let user = self.by_name(username).await?;
        match body {
            sdk::OathEnroll::Software {
                otp_type,
                digits,
                period,
                algorithm,
            } => {
                let params =
                    software_params(otp_type.as_deref(), digits, period, algorithm.as_deref())?;
                let enrollment = self.begin_software_with(&user, params).await?;
                Ok(sdk::OathEnrollment {
                    state: "pending".into(),
                    kind: "software".into(),
                    otpauth_uri: Some(enrollment.uri),
                    secret: Some(enrollment.secret_base32),
                    qr_svg: Some(enrollment.qr_svg),
                    serial: None,
                })
            }
            sdk::OathEnroll::Hardware { serial, code } => {
                match code {
                    Some(code) => {
                        self.associate_hardware(&user.id, &serial, &code, client)
                            .await?;
                        self.end_portal_sessions(&user.id).await?;
                    }
                    None => self.reserve_hardware(&user, &serial, client).await?,
                }
                Ok(sdk::OathEnrollment {
                    state: if self
                        .store
                        .user_token(&user.id, TokenStatus::Active)
                        .await?
                        .is_some_and(|t| t.serial.as_deref() == Some(serial.trim()))
                    {
                        "active".into()
                    } else {
                        "pending".into()
                    },
                    kind: "hardware".into(),
                    otpauth_uri: None,
                    secret: None,
                    qr_svg: None,
                    serial: Some(serial.trim().to_owned()),
                })
            }
        }
    }

    /// Reserves an available hardware token for a user: the first valid code activates it.
    /// The serial is checked, and counted, as in the portal ([`Self::available_hardware`]).
    async fn reserve_hardware(
        &self,
        user: &UserRecord,
        serial: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let token = self.available_hardware(user, serial, client).await?;
        if !self
            .store
            .reserve_token(&token.id, &user.id, token.version)
            .await?
        {
            // Taken by someone else since it was looked up.
            return Err(DomainError::SerialAssigned.into());
        }
        self.audit(
            self.succeeded(AuditAction::TokenEnrolled, user, client)
                .detail(format!(
                    "hardware token {} reserved, pending a code",
                    serial.trim()
                )),
        )
        .await;
        Ok(())
    }

    /// Verifies a code: activates a pending token, or checks the active one (single use,
    /// counting failures towards lockout).
    pub async fn sdk_oath_verify(
        &self,
        username: &str,
        code: &str,
        pin: Option<&str>,
        client: &ClientContext,
    ) -> Result<sdk::Verified, ServiceError> {
        let user = self.by_name(username).await?;
        if self.confirm_any_pending(&user, code, client).await? {
            self.end_portal_sessions(&user.id).await?;
            return Ok(sdk::Verified {
                verified: true,
                via: "enrollment".into(),
            });
        }
        let via = self.verify_oath_code(&user.id, code, pin, client).await?;
        Ok(sdk::Verified {
            verified: true,
            via: via.as_str().to_owned(),
        })
    }

    // ---- security questions, bypass ----

    pub async fn sdk_questions(
        &self,
        language: Option<&str>,
    ) -> Result<Vec<sdk::SecurityQuestion>, ServiceError> {
        let language = match language {
            Some(tag) if !tag.is_empty() => Some(
                Language::from_tag(tag)
                    .ok_or_else(|| invalid(format!("lang {tag:?}: use en or fr")))?
                    .tag(),
            ),
            _ => None,
        };
        Ok(self
            .store
            .questions(language, true)
            .await?
            .into_iter()
            .map(|q| sdk::SecurityQuestion {
                id: q.id,
                language: q.language,
                text: q.text,
            })
            .collect())
    }

    pub async fn sdk_set_answers(
        &self,
        username: &str,
        answers: &[sdk::SecurityAnswer],
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.by_name(username).await?;
        let pairs: Vec<(String, String)> = answers
            .iter()
            .map(|a| (a.question_id.clone(), a.answer.clone()))
            .collect();
        self.change_answers(&user.id, &pairs, client).await?;
        self.end_portal_sessions(&user.id).await
    }

    pub async fn sdk_bypass(
        &self,
        username: &str,
        body: &sdk::BypassCreate,
        client: &ClientContext,
    ) -> Result<sdk::Bypass, ServiceError> {
        let user = self.by_name(username).await?;
        let settings = self.settings_now().await?;
        let seconds = flow::administered_bypass_seconds(&settings, body.seconds)
            .map_err(DomainError::from)?;
        let actor = client.actor.clone().unwrap_or_else(|| "sdk".to_owned());
        let expires_at = self
            .create_bypass(&user, seconds, body.reason.as_deref(), &actor, client)
            .await?;
        Ok(sdk::Bypass { expires_at })
    }

    // ---- authentications ----

    pub async fn sdk_start_authentication(
        &self,
        body: sdk::AuthenticationStart,
        client: &ClientContext,
    ) -> Result<sdk::Authentication, ServiceError> {
        // The caller's own address is the application's, not the user's: without
        // `client_ip` the user's address is unknown, and no trusted range applies.
        let mut client = ClientContext {
            ip: None,
            ..client.clone()
        };
        if let Some(ip) = &body.client_ip {
            client.ip = Some(
                ip.parse()
                    .map_err(|_| invalid(format!("client_ip {ip:?} is not an IP address")))?,
            );
        }
        let wanted = match body.method.as_deref() {
            None => None,
            Some("oath") => Some(Challenge::Oath),
            Some("security_questions") => Some(Challenge::SecurityQuestions),
            Some("phone_call") => Some(Challenge::PhoneCall),
            Some("sms") => Some(Challenge::Sms),
            Some("mobile_app") => Some(Challenge::MobileApp),
            Some(other) => {
                return Err(invalid(format!(
                    "method {other:?}: use oath, security_questions, phone_call, sms or mobile_app"
                )));
            }
        };
        let phone = match body.phone.as_deref() {
            None | Some("primary") => PhoneChoice::Primary,
            Some("backup") => PhoneChoice::Backup,
            Some(other) => {
                return Err(invalid(format!("phone {other:?}: use primary or backup")));
            }
        };
        let user = match &body.password {
            Some(password) => {
                let identity = self
                    .check_password(&body.username, password, &client, false)
                    .await?;
                self.user(&identity.user_id).await?
            }
            None => {
                let user = self.by_name(&body.username).await?;
                if !user.enabled {
                    return Err(DomainError::InvalidCredentials.into());
                }
                super::not_fraud_blocked(&user, self.clock.now())?;
                let lockout = self.store.lockout(&user.username).await?;
                let policy = self.settings_now().await?.lockout_policy();
                twofold_engine::sign_in::may_attempt(
                    true,
                    &lockout.state,
                    self.clock.now(),
                    policy,
                )
                .map_err(ServiceError::Domain)?;
                user
            }
        };
        let context = (!body.context.is_empty())
            .then(|| serde_json::to_string(&body.context).unwrap_or_default());
        let started = self
            .begin_authentication(
                &user,
                Origin::Sdk,
                caller(&client),
                &client,
                StartOptions {
                    wanted,
                    context,
                    phone: phone.into(),
                },
            )
            .await?;
        self.authentication_view(&started).await
    }

    async fn authentication_view(
        &self,
        a: &Authentication,
    ) -> Result<sdk::Authentication, ServiceError> {
        let state = a.state_at(self.clock.now());
        let questions = match &state {
            State::Pending(Step::SecurityQuestions { asked }) if !asked.is_empty() => {
                let all = self.store.questions(None, false).await?;
                asked
                    .iter()
                    .filter_map(|id| all.iter().find(|q| &q.id == id))
                    .map(|q| sdk::SecurityQuestion {
                        id: q.id.clone(),
                        language: q.language.clone(),
                        text: q.text.clone(),
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        Ok(sdk::Authentication {
            id: a.id.clone(),
            state: state.name().to_owned(),
            username: a.username.clone(),
            next: match &state {
                State::Pending(step) => Some(step.name().to_owned()),
                _ => None,
            },
            questions,
            via: match &state {
                State::Approved { via } => Some(via.as_str().to_owned()),
                _ => None,
            },
            reason: match &state {
                State::Denied { reason } => Some(reason.as_str().to_owned()),
                _ => None,
            },
            expires_at: a.expires_at,
            number: match &state {
                State::Pending(Step::MobileApp) => self.push_status(a).await?.number,
                _ => None,
            },
        })
    }

    /// Creates a one-time activation code for a user's authenticator app.
    pub async fn sdk_create_activation(
        &self,
        username: &str,
        client: &ClientContext,
    ) -> Result<sdk::AppActivation, ServiceError> {
        let user = self.find_user(username).await?;
        let a = self.create_activation(&user.id, client).await?;
        Ok(sdk::AppActivation {
            code: a.code,
            url: a.url,
            uri: a.uri,
            qr_svg: a.qr_svg,
            expires_at: a.expires_at,
        })
    }

    /// A user's activated devices.
    pub async fn sdk_devices(&self, username: &str) -> Result<sdk::DeviceList, ServiceError> {
        let user = self.find_user(username).await?;
        let devices = self.devices_of(&user.id).await?;
        Ok(sdk::DeviceList {
            devices: devices
                .into_iter()
                .map(|d| sdk::Device {
                    id: d.id,
                    name: d.name,
                    algorithm: d.algorithm,
                    created_at: d.created_at,
                    last_used_at: d.last_used_at,
                    offline_codes: d.offline_codes,
                    push_endpoint: d.push_endpoint,
                })
                .collect(),
        })
    }

    /// Removes one of a user's devices: its requests are refused at once.
    pub async fn sdk_remove_device(
        &self,
        username: &str,
        device_id: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.find_user(username).await?;
        self.remove_device_of(&user.id, device_id, client).await
    }

    /// An authentication, for the account that started it (any other finds nothing).
    pub async fn sdk_authentication(
        &self,
        id: &str,
        client: &ClientContext,
    ) -> Result<sdk::Authentication, ServiceError> {
        let a = self.authentication_for(id, &caller(client)).await?;
        self.authentication_view(&a).await
    }

    pub async fn sdk_answer(
        &self,
        id: &str,
        answer: sdk::AuthenticationAnswer,
        client: &ClientContext,
    ) -> Result<sdk::Authentication, ServiceError> {
        let a = self.authentication_for(id, &caller(client)).await?;
        let state = a.state_at(self.clock.now());
        let step = match &state {
            State::Pending(step) => step,
            other => return Err(DomainError::AuthenticationClosed(other.name().into()).into()),
        };
        // The answer must fit the authentication before anything is counted.
        let answer = match (step, answer) {
            (Step::Oath, sdk::AuthenticationAnswer::Otp(otp)) => Answer::Otp {
                code: otp.otp,
                pin: otp.pin,
            },
            (Step::TextCode, sdk::AuthenticationAnswer::Otp(otp)) => {
                if otp.pin.is_some() {
                    return Err(invalid(
                        "the code of a text message is sent alone: {\"otp\": \"…\"}",
                    ));
                }
                Answer::TextCode(otp.otp)
            }
            (Step::SecurityQuestions { .. }, sdk::AuthenticationAnswer::Answers(given)) => {
                Answer::SecurityAnswers(
                    given
                        .answers
                        .iter()
                        .map(|a| (a.question_id.clone(), a.answer.clone()))
                        .collect(),
                )
            }
            (Step::Oath | Step::TextCode, _) => {
                return Err(invalid("this authentication expects {\"otp\": \"…\"}"));
            }
            (Step::PhoneCall | Step::TextReply, _) => {
                return Err(invalid(
                    "this authentication is answered on the phone (the call, or a reply to the text): poll it until it is decided",
                ));
            }
            _ => {
                return Err(invalid(
                    "this authentication expects {\"answers\": [{\"question_id\": …, \"answer\": …}]}",
                ));
            }
        };
        // The user answers, not the application: their address (given at the start) is the
        // one held to a budget, with the user's own.
        let client = ClientContext {
            ip: a.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
            ..client.clone()
        };
        let answered = self.answer_authentication(&a, answer, &client).await?;
        self.authentication_view(&answered).await
    }

    // ---- tokens ----

    pub async fn sdk_import_tokens(
        &self,
        actor: &str,
        body: &sdk::TokenImport,
    ) -> Result<usize, ServiceError> {
        let key = match (&body.key, &body.password) {
            (Some(_), Some(_)) => return Err(invalid("give either key or password, not both")),
            (Some(hex_key), None) => Some(PskcKey::PreShared(
                hex::decode(hex_key.trim())
                    .map_err(|_| invalid("key must be the pre-shared key in hex"))?,
            )),
            (None, Some(password)) => Some(PskcKey::Password(password.clone())),
            (None, None) => None,
        };
        // A password-protected PSKC file costs up to 10 million PBKDF2 rounds: off the async
        // workers, one file at a time.
        let content = body.content.clone();
        let tokens = self
            .imports
            .run(move || token_import::parse_file("upload", content.as_bytes(), key.as_ref()))
            .await?
            .map_err(|problems| {
                ServiceError::Domain(DomainError::Import(
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.location, p.reason))
                        .collect::<Vec<_>>()
                        .join("; "),
                ))
            })?;
        self.import_tokens(actor, &tokens).await
    }
}

/// The engine's method for the SDK's.
pub fn engine_method(method: sdk::Method) -> Method {
    match method {
        sdk::Method::PhoneCall => Method::PhoneCall,
        sdk::Method::Sms => Method::Sms,
        sdk::Method::MobileApp => Method::MobileApp,
        sdk::Method::Oath => Method::Oath,
    }
}

fn software_params(
    otp_type: Option<&str>,
    digits: Option<u8>,
    period: Option<u32>,
    algorithm: Option<&str>,
) -> Result<OathParams, ServiceError> {
    let algorithm = match algorithm.unwrap_or("sha1") {
        "sha1" => Algorithm::Sha1,
        "sha256" => Algorithm::Sha256,
        "sha512" => Algorithm::Sha512,
        other => {
            return Err(invalid(format!(
                "algorithm {other:?}: use sha1, sha256 or sha512"
            )));
        }
    };
    let digits = match digits.unwrap_or(6) {
        d @ (6 | 8) => d,
        d => return Err(invalid(format!("digits {d}: use 6 or 8"))),
    };
    let kind = match otp_type.unwrap_or("totp") {
        "totp" => match period.unwrap_or(30) {
            p @ (30 | 60) => OathKind::Totp { period: p },
            p => return Err(invalid(format!("period {p}: use 30 or 60"))),
        },
        "hotp" => {
            if period.is_some() {
                return Err(invalid("period applies to totp only"));
            }
            OathKind::Hotp
        }
        other => return Err(invalid(format!("type {other:?}: use totp or hotp"))),
    };
    Ok(OathParams {
        algorithm,
        digits,
        kind,
    })
}
