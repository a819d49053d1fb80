//! Phone calls and text messages: sending them for an authentication, and what comes back
//! (the keys typed during a call, a reply, a provider's report).
//!
//! An authentication that lands on a step that goes to a phone ([`Step::goes_to_phone`]) is
//! prepared before it is stored: the number is chosen (primary or backup) and read again,
//! the allowed countries and the hourly limits are checked (a refusal denies it, and
//! nothing is sent), a text's code is drawn and only its keyed hash kept. Once stored, the
//! call or the text goes out through the channel `[channels]` chose. What comes back names
//! the authentication (Twilio's webhook addresses) or the sender's number (a reply), and is
//! turned into the machine's events here, on any node.

use super::authentications::Answer;
use super::{ClientContext, InProcessService, ServiceError, language_of};
use crate::channels::{DigitsExpected, Email, PhoneCall, TextMessage};
use crate::store::{UserChanges, UserRecord};
use serde::{Deserialize, Serialize};
use twofold_engine::audit::{AuditAction, AuditOutcome};
use twofold_engine::authentication::{
    self, Authentication, Event, ProviderFailure, State, Step, Transition,
};
use twofold_engine::flow::{UserFactors, Via};
use twofold_engine::phone_call::{
    self, CallEnd, CallPurpose, CallScript, CallStage, Keys, Reply, SmsMode,
};
use twofold_engine::{DomainError, Language, Settings, Username, phone};

/// Which of the user's phones a call or a text goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneChoice {
    #[default]
    Primary,
    Backup,
}

/// The number a call or a text goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneTarget {
    Primary,
    Backup,
    /// A number being added or changed (a phone check).
    Number(phone::Phone),
}

impl From<PhoneChoice> for PhoneTarget {
    fn from(choice: PhoneChoice) -> Self {
        match choice {
            PhoneChoice::Primary => PhoneTarget::Primary,
            PhoneChoice::Backup => PhoneTarget::Backup,
        }
    }
}

/// What goes out once the authentication is stored.
#[derive(Debug, Clone)]
pub(super) enum Outgoing {
    Call(PhoneCall),
    Text(TextMessage),
}

/// What a call does next, and the authentication's version the keys it gathers answer
/// (a webhook carrying an older version is a replay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTurn {
    pub script: CallScript,
    pub version: i64,
}

/// How a provider reported a call or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Under way or done, nothing to change (queued, ringing, answered, sent, delivered,
    /// completed).
    Progress,
    /// The call ended: if nothing was decided during it, nobody answered it.
    Completed,
    Failed(ProviderFailure),
}

impl DeliveryStatus {
    /// Twilio's `CallStatus` / `MessageStatus` values.
    pub fn from_twilio(status: &str) -> DeliveryStatus {
        match status {
            "busy" => DeliveryStatus::Failed(ProviderFailure::Busy),
            "no-answer" => DeliveryStatus::Failed(ProviderFailure::NoAnswer),
            "failed" | "undelivered" => DeliveryStatus::Failed(ProviderFailure::Undelivered),
            "canceled" => DeliveryStatus::Failed(ProviderFailure::Canceled),
            "completed" => DeliveryStatus::Completed,
            _ => DeliveryStatus::Progress,
        }
    }
}

/// A six-digit code, uniformly drawn.
fn new_text_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// The client an inbound event acts as: the address that started the authentication (for
/// the audit and the per-address limits), with the provider as actor.
fn inbound_client(a: &Authentication) -> ClientContext {
    ClientContext {
        ip: a.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
        user_agent: None,
        actor: None,
    }
}

impl InProcessService {
    /// The language calls and texts to `user` speak.
    fn phone_language(&self, user: &UserRecord, settings: &Settings) -> Language {
        language_of(user).unwrap_or(settings.default_language)
    }

    /// Prepares an authentication that waits on a call or a text before it is stored:
    /// chooses and reads the number, applies the allowed countries and the hourly limits
    /// (a refusal denies it; nothing is sent), draws a text's code. Returns what to send
    /// once it is stored.
    pub(super) async fn prepare_phone(
        &self,
        a: &mut Authentication,
        user: &UserRecord,
        settings: &Settings,
        target: &PhoneTarget,
        client: &ClientContext,
    ) -> Result<Option<Outgoing>, ServiceError> {
        let step = match &a.state {
            State::Pending(step) if step.goes_to_phone() => step.clone(),
            _ => return Ok(None),
        };
        let (number, extension) = match target {
            PhoneTarget::Primary => (user.phone.as_deref(), user.extension.as_deref()),
            PhoneTarget::Backup => (
                user.backup_phone.as_deref(),
                user.backup_extension.as_deref(),
            ),
            PhoneTarget::Number(p) => (Some(p.number.as_str()), p.extension.as_deref()),
        };
        let Some(number) = number else {
            return Err(DomainError::InvalidRequest(match target {
                PhoneTarget::Backup => "the user has no backup phone".into(),
                _ => "the user has no phone number".into(),
            })
            .into());
        };
        let region = Some(settings.default_region.as_str()).filter(|r| !r.is_empty());
        let refuse = |failure| match authentication::apply(
            a,
            &Event::ProviderFailed(failure),
            self.clock.now(),
            settings,
            &UserFactors::default(),
        ) {
            Transition::Moved { state, .. } => state,
            Transition::Refused(_) => State::Denied {
                reason: authentication::Reason::Undelivered,
            },
        };
        let phone = match phone::parse(number, extension, region) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(user = %user.username, error = %e, "stored phone number cannot be called");
                a.state = refuse(ProviderFailure::Undelivered);
                self.audit(
                    self.event(
                        AuditAction::PhoneMessageSent,
                        AuditOutcome::Failure,
                        user,
                        client,
                    )
                    .detail("invalid_number"),
                )
                .await;
                return Ok(None);
            }
        };
        if let Some(reason) = self
            .send_refusal(&phone.number, user, settings, client)
            .await?
        {
            a.state = refuse(reason.0);
            self.audit(
                self.event(
                    AuditAction::PhoneMessageSent,
                    AuditOutcome::Failure,
                    user,
                    client,
                )
                .detail(reason.1),
            )
            .await;
            return Ok(None);
        }
        let now = self.clock.now();
        let ip = client.ip.map(|ip| ip.to_string());
        self.store
            .record_phone_send(&phone.number, &user.id, ip.as_deref(), now)
            .await?;
        a.channel = Some(phone.number.clone());
        let language = self.phone_language(user, settings);
        let organisation = settings.organisation_name.as_str();
        let outgoing = match step {
            Step::PhoneCall => {
                let script = phone_call::greeting(
                    language,
                    organisation,
                    purpose_of(a),
                    settings.call_needs_pin() && user.pin_hash.is_some(),
                    &settings.fraud_code,
                );
                Outgoing::Call(PhoneCall {
                    authentication_id: a.id.clone(),
                    to: phone.number,
                    extension: phone.extension,
                    language,
                    say: script_text(&script),
                    expect: script.gather.as_ref().map(|g| DigitsExpected {
                        max_digits: g.max_keys,
                        finish_on_key: g.finish_on_key,
                        timeout_seconds: g.timeout_seconds,
                    }),
                })
            }
            _ => {
                let code = new_text_code();
                a.code_hash = Some(
                    self.keyring
                        .code_hash(a.id.as_bytes(), code.as_bytes())
                        .map_err(|e| ServiceError::Internal(e.to_string()))?,
                );
                let mode = match step {
                    Step::TextCode => SmsMode::Otp,
                    _ if settings.text_needs_pin() => SmsMode::TwoWayPin,
                    _ => SmsMode::TwoWay,
                };
                let minutes = settings.sms_code_seconds.div_ceil(60);
                if step == Step::TextCode {
                    // The code is good for `sms_code_seconds`, however long the sign-in waits.
                    a.expires_at = a.expires_at.min(now + i64::from(settings.sms_code_seconds));
                }
                Outgoing::Text(TextMessage {
                    authentication_id: Some(a.id.clone()),
                    to: phone.number,
                    body: phone_call::code_text(language, organisation, &code, mode, minutes),
                    reply_expected: mode != SmsMode::Otp,
                })
            }
        };
        Ok(Some(outgoing))
    }

    /// Why a call or text to `number` may not go now (and the audit's word for it), if it
    /// may not.
    async fn send_refusal(
        &self,
        number: &str,
        user: &UserRecord,
        settings: &Settings,
        client: &ClientContext,
    ) -> Result<Option<(ProviderFailure, &'static str)>, ServiceError> {
        if !settings.sms_allowed_countries.is_empty() {
            let allowed = phone::region_of(number)
                .is_some_and(|r| settings.sms_allowed_countries.contains(&r));
            if !allowed {
                return Ok(Some((
                    ProviderFailure::CountryNotAllowed,
                    "country_not_allowed",
                )));
            }
        }
        let ip = client.ip.map(|ip| ip.to_string());
        let counts = self
            .store
            .phone_sends_since(number, &user.id, ip.as_deref(), self.clock.now() - 3600)
            .await?;
        let over = if counts.in_all >= settings.phone_sends_per_hour {
            Some("limit_all")
        } else if counts.to_number >= settings.phone_sends_per_number_hour {
            Some("limit_number")
        } else if counts.for_user >= settings.phone_sends_per_user_hour {
            Some("limit_user")
        } else if ip.is_some() && counts.from_address >= settings.phone_sends_per_address_hour {
            Some("limit_address")
        } else {
            None
        };
        Ok(over.map(|detail| (ProviderFailure::RateLimited, detail)))
    }

    /// Sends what [`InProcessService::prepare_phone`] prepared for the stored authentication
    /// `a`, and records the provider's id; a failure denies it (`provider_unavailable` when
    /// the provider could not be reached, `undelivered` when it refused).
    pub(super) async fn send_to_phone(
        &self,
        a: Authentication,
        outgoing: Outgoing,
    ) -> Result<Authentication, ServiceError> {
        let sent = match &outgoing {
            Outgoing::Call(call) => self.channels.voice.call(call).await,
            Outgoing::Text(text) => self.channels.sms.send_text(text).await,
        };
        let user = self.user(&a.user_id).await?;
        let client = inbound_client(&a);
        let kind = match outgoing {
            Outgoing::Call(_) => "call",
            Outgoing::Text(_) => "text",
        };
        match sent {
            Ok(id) => {
                self.store
                    .set_authentication_message_id(&a.id, id.as_str())
                    .await?;
                self.audit(
                    self.succeeded(AuditAction::PhoneMessageSent, &user, &client)
                        .detail(kind),
                )
                .await;
                Ok(Authentication {
                    message_id: Some(id.0),
                    ..a
                })
            }
            Err(e) => {
                tracing::warn!(authentication = %a.id, error = %e, "{kind} not sent");
                let failure = if e.is_transient() {
                    ProviderFailure::Unavailable
                } else {
                    ProviderFailure::Undelivered
                };
                self.audit(
                    self.event(
                        AuditAction::PhoneMessageSent,
                        AuditOutcome::Failure,
                        &user,
                        &client,
                    )
                    .detail(if e.is_transient() {
                        "provider_unavailable"
                    } else {
                        "undelivered"
                    }),
                )
                .await;
                self.move_authentication(a, Event::ProviderFailed(failure))
                    .await
            }
        }
    }

    /// The authentication a provider's webhook names, while it waits on `step`.
    async fn waiting_on(&self, id: &str, step: &Step) -> Result<Authentication, ServiceError> {
        let a = self
            .store
            .authentication(id)
            .await?
            .ok_or(DomainError::WebhookRefused)?;
        match a.state_at(self.clock.now()) {
            State::Pending(s) if s.name() == step.name() => Ok(a),
            _ => Err(DomainError::WebhookRefused.into()),
        }
    }

    /// What a call says when it is answered (Twilio fetches it from the call's `Url`).
    pub async fn call_answered(&self, authentication_id: &str) -> Result<CallTurn, ServiceError> {
        let a = self.waiting_on(authentication_id, &Step::PhoneCall).await?;
        let settings = self.settings_now().await?;
        let user = self.user(&a.user_id).await?;
        let script = phone_call::greeting(
            self.phone_language(&user, &settings),
            &settings.organisation_name,
            purpose_of(&a),
            settings.call_needs_pin() && user.pin_hash.is_some(),
            &settings.fraud_code,
        );
        Ok(CallTurn {
            script,
            version: a.version,
        })
    }

    /// The keys typed at a call's prompt (`typed`: every key, the final `#` included), for
    /// the authentication as it was at `version` (the prompt's): approves, asks again,
    /// reports fraud or denies, and says what the call says next.
    pub async fn call_keys(
        &self,
        authentication_id: &str,
        stage: CallStage,
        version: i64,
        typed: &str,
    ) -> Result<CallTurn, ServiceError> {
        let a = self.waiting_on(authentication_id, &Step::PhoneCall).await?;
        if a.version != version {
            // An older prompt's answer: replayed, or overtaken by another.
            return Err(DomainError::WebhookRefused.into());
        }
        let settings = self.settings_now().await?;
        let user = self.user(&a.user_id).await?;
        let language = self.phone_language(&user, &settings);
        let pin_mode = settings.call_needs_pin() && user.pin_hash.is_some();
        let end = |end: CallEnd, a: &Authentication| CallTurn {
            script: CallScript::goodbye(language, phone_call::goodbye_text(language, end)),
            version: a.version,
        };
        let client = inbound_client(&a);
        match phone_call::interpret(stage, typed, pin_mode, &settings.fraud_code) {
            Keys::FraudCode => Ok(CallTurn {
                script: phone_call::fraud_question(language),
                version: a.version,
            }),
            Keys::ReportFraud => {
                let moved = self.move_authentication(a, Event::FraudReported).await?;
                self.fraud_reported(&user, &moved, &settings).await?;
                Ok(end(CallEnd::FraudReported, &moved))
            }
            Keys::Other if stage == CallStage::FraudConfirm => {
                let moved = self.move_authentication(a, Event::Cancel).await?;
                Ok(end(CallEnd::NotReported, &moved))
            }
            Keys::Silence => {
                let moved = self
                    .move_authentication(a, Event::ProviderFailed(ProviderFailure::NoAnswer))
                    .await?;
                Ok(end(CallEnd::Silence, &moved))
            }
            keys => {
                let answer = Answer::Call {
                    keys_right: matches!(keys, Keys::Confirm | Keys::Pin(_)),
                    pin: match keys {
                        Keys::Pin(pin) => Some(pin),
                        _ => None,
                    },
                };
                let result = self.answer_authentication(&a, answer, &client).await;
                let now_a = self.store.authentication(&a.id).await?.unwrap_or(a);
                match (result, &now_a.state) {
                    (Ok(_), State::Approved { .. }) => Ok(end(CallEnd::Approved, &now_a)),
                    (_, State::Pending(Step::PhoneCall)) if pin_mode => Ok(CallTurn {
                        script: phone_call::pin_again(language),
                        version: now_a.version,
                    }),
                    (_, State::Pending(Step::PhoneCall)) => Ok(CallTurn {
                        script: phone_call::greeting(
                            language,
                            &settings.organisation_name,
                            purpose_of(&now_a),
                            false,
                            &settings.fraud_code,
                        ),
                        version: now_a.version,
                    }),
                    (_, State::Denied { reason })
                        if *reason == authentication::Reason::InvalidCode =>
                    {
                        Ok(end(CallEnd::TooManyPins, &now_a))
                    }
                    (Err(ServiceError::Domain(_)) | Ok(_), _) => Ok(end(CallEnd::Denied, &now_a)),
                    (Err(e), _) => Err(e),
                }
            }
        }
    }

    /// A provider's report on a call or a message: a failure denies the authentication
    /// (the page shows why); a call that ended while still pending was not answered.
    pub async fn delivery_status(
        &self,
        authentication_id: &str,
        status: DeliveryStatus,
    ) -> Result<(), ServiceError> {
        let Some(a) = self.store.authentication(authentication_id).await? else {
            return Err(DomainError::WebhookRefused.into());
        };
        let failure = match status {
            DeliveryStatus::Progress => return Ok(()),
            DeliveryStatus::Completed => ProviderFailure::NoAnswer,
            DeliveryStatus::Failed(f) => f,
        };
        match a.state_at(self.clock.now()) {
            State::Pending(step) if step.goes_to_phone() => {
                // A text delivered late is no failure; only calls end with the call.
                if status == DeliveryStatus::Completed && step != Step::PhoneCall {
                    return Ok(());
                }
                self.move_authentication(a, Event::ProviderFailed(failure))
                    .await?;
                Ok(())
            }
            // Already decided: a "completed" after the call approved it is expected.
            _ if status == DeliveryStatus::Completed => Ok(()),
            _ => Err(DomainError::WebhookRefused.into()),
        }
    }

    /// A text message from `from` (E.164): a reply to the pending two-way text sent to that
    /// number, if there is one. Returns what to answer (the STOP acknowledgement, or the
    /// outcome), or `None` when the message changes nothing (no pending text to that number).
    pub async fn text_received(
        &self,
        from: &str,
        body: &str,
    ) -> Result<Option<String>, ServiceError> {
        let settings = self.settings_now().await?;
        let region = Some(settings.default_region.as_str()).filter(|r| !r.is_empty());
        let Ok(sender) = phone::parse(from, None, region) else {
            return Ok(None);
        };
        let pending = self
            .store
            .pending_text_reply_from(&sender.number, self.clock.now())
            .await?;
        let Some(a) = pending else {
            return Ok(None);
        };
        let user = self.user(&a.user_id).await?;
        let language = self.phone_language(&user, &settings);
        let organisation = settings.organisation_name.as_str();
        match phone_call::read_reply(body, settings.text_needs_pin()) {
            Reply::Stop => Ok(Some(phone_call::stop_text(language, organisation))),
            Reply::Other => Ok(None),
            Reply::Code { code, pin } => {
                let client = inbound_client(&a);
                let answer = Answer::TextReply {
                    code,
                    pin: if settings.text_needs_pin() {
                        Some(pin.unwrap_or_default())
                    } else {
                        None
                    },
                };
                let approved = matches!(
                    self.answer_authentication(&a, answer, &client).await,
                    Ok(Authentication {
                        state: State::Approved { .. },
                        ..
                    })
                );
                Ok(Some(phone_call::reply_result_text(
                    language,
                    organisation,
                    approved,
                )))
            }
        }
    }

    /// Checks what a call or a text proves: a text's code (against the hash kept in the
    /// authentication), the PIN (when given), counted towards lockout like any code. With
    /// neither (`#` in standard mode), the user's answering the call is the proof.
    pub(super) async fn check_phone_answer(
        &self,
        a: &Authentication,
        code: Option<&str>,
        pin: Option<&str>,
        via: Via,
        client: &ClientContext,
    ) -> Result<Via, ServiceError> {
        let user = self.user(&a.user_id).await?;
        if code.is_none() && pin.is_none() {
            self.successful_attempt(&user.username).await?;
            self.record_signed_in(&user, via, client).await;
            return Ok(via);
        }
        let settings = self.settings_now().await?;
        self.reserve_attempt(&user.username, &settings, client)
            .await?;
        let code_ok = match code {
            Some(code) => a.code_hash.as_deref().is_some_and(|hash| {
                self.keyring
                    .code_matches(hash, a.id.as_bytes(), code.trim().as_bytes())
            }),
            None => true,
        };
        let pin_ok = match pin {
            Some(pin) => {
                self.checked(&user.username, self.pin_matches(&user, Some(pin)))
                    .await?
            }
            None => true,
        };
        if code_ok && pin_ok {
            self.successful_attempt(&user.username).await?;
            self.record_signed_in(&user, via, client).await;
            Ok(via)
        } else {
            Err(self
                .factor_failure(&user, DomainError::InvalidCode, client)
                .await?)
        }
    }

    /// A user reported a sign-in as not theirs: they are blocked for `fraud_block_days`,
    /// the administrators in `fraud_alert_emails` are emailed, and it is audited.
    pub(super) async fn fraud_reported(
        &self,
        user: &UserRecord,
        a: &Authentication,
        settings: &Settings,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        let until = now + i64::from(settings.fraud_block_days) * 86_400;
        let username =
            Username::parse(&user.username).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .update_user(
                &username,
                UserChanges {
                    fraud_blocked_until: Some(Some(until)),
                    ..UserChanges::default()
                },
                now,
            )
            .await?;
        // Sessions begun before the report end with it.
        self.store.delete_user_sessions(&user.id).await?;
        let client = inbound_client(a);
        self.audit(
            self.event(
                AuditAction::FraudReported,
                AuditOutcome::Success,
                user,
                &client,
            )
            .detail(format!(
                "authentication {} blocked_days {}",
                a.id, settings.fraud_block_days
            )),
        )
        .await;
        let address = a.client_ip.as_deref().unwrap_or("unknown");
        for to in &settings.fraud_alert_emails {
            let email = Email {
                to: to.clone(),
                subject: format!("Fraud reported by {}", user.username),
                text_body: format!(
                    "{} reported a sign-in as not theirs {}.\n\n\
                     User: {}\nAuthentication: {}\nStarted from: {}\nOrigin: {}\n\n\
                     The user is blocked for {} days. Review the audit log \
                     (twofold audit tail), then unblock them with \
                     `twofold user unblock {}` when it is safe.\n",
                    user.username,
                    if a.channel.as_deref() == Some(super::app::APP_CHANNEL) {
                        "in the authenticator app (\"not me\")"
                    } else {
                        "during a verification call"
                    },
                    user.username,
                    a.id,
                    address,
                    a.origin.as_str(),
                    settings.fraud_block_days,
                    user.username
                ),
            };
            if let Err(e) = self.channels.email.send_email(&email).await {
                tracing::warn!(to = %to, error = %e, "fraud alert email not sent");
            }
        }
        Ok(())
    }

    /// Stores a user's phones (already read by [`phone::parse`]) and, when given, their
    /// method; audited.
    pub(super) async fn store_phones(
        &self,
        user: &UserRecord,
        method: Option<twofold_engine::settings::Method>,
        primary: &phone::Phone,
        backup: Option<&phone::Phone>,
        client: &ClientContext,
    ) -> Result<UserRecord, ServiceError> {
        let username =
            Username::parse(&user.username).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let changes = UserChanges {
            phone: Some(Some(primary.number.clone())),
            extension: Some(primary.extension.clone()),
            backup_phone: Some(backup.map(|b| b.number.clone())),
            backup_extension: Some(backup.and_then(|b| b.extension.clone())),
            method: method.map(|m| Some(super::factors::method_tag(m).to_owned())),
            ..UserChanges::default()
        };
        let updated = self
            .store
            .update_user(&username, changes, self.clock.now())
            .await?;
        self.audit(
            self.succeeded(AuditAction::PhoneChanged, &updated, client)
                .detail(match backup {
                    Some(_) => "primary and backup",
                    None => "primary",
                }),
        )
        .await;
        Ok(updated)
    }

    /// Lifts a fraud block (an administrator's decision).
    pub async fn unblock_user(&self, actor: &str, username: &str) -> Result<bool, ServiceError> {
        let user = self.find_user(username).await?;
        if user.fraud_blocked_until.is_none() {
            return Ok(false);
        }
        let name =
            Username::parse(&user.username).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.store
            .update_user(
                &name,
                UserChanges {
                    fraud_blocked_until: Some(None),
                    ..UserChanges::default()
                },
                self.clock.now(),
            )
            .await?;
        self.audit(
            self.done_by(AuditAction::UserUnblocked, actor)
                .subject(&user.username),
        )
        .await;
        Ok(true)
    }
}

/// Why a call for `a` rings.
fn purpose_of(a: &Authentication) -> CallPurpose {
    match a.origin {
        twofold_engine::authentication::Origin::PhoneCheck => CallPurpose::ConfirmNumber,
        _ => CallPurpose::SignIn,
    }
}

/// The whole of what a script says, as one text (for the console's inbox).
fn script_text(script: &CallScript) -> String {
    let mut parts = script.say.clone();
    if let Some(g) = &script.gather {
        parts.push(g.prompt.clone());
    }
    parts.join(" ")
}
