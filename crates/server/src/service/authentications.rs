//! The authentication use cases: start one after the password step, answer it, move it.
//!
//! The portal's sign-ins and step-ups and the SDK's authentications all run here, on the
//! engine's [`twofold_engine::authentication`] machine and the store's one `authentications`
//! table. The engine decides every state; this module reads what the decision needs (the
//! settings, the user's factors, an unused bypass), checks the secrets the events carry
//! (codes, answers), and stores the result on the version it read, so that any node can take
//! any event and two answers at once cannot both count.

use super::factors::factors_with;
use super::telephony::PhoneTarget;
use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{UserRecord, new_id};
use twofold_engine::audit::{AuditAction, AuditOutcome};
use twofold_engine::authentication::{
    self, Authentication, Check, Event, Origin, Refusal, StartRefusal, State, Step, Transition,
};
use twofold_engine::flow::{AttemptFacts, Challenge, UserFactors, Via};
use twofold_engine::{DomainError, Settings};

/// An answer typed in a page or sent by an application.
#[derive(Debug, Clone)]
pub(super) enum Answer {
    Otp {
        code: String,
        pin: Option<String>,
    },
    SecurityAnswers(Vec<(String, String)>),
    /// The code of a one-way text message, typed in a page or sent by an application.
    TextCode(String),
    /// A reply to a two-way text message: its code, and the PIN when replies carry it.
    TextReply {
        code: String,
        pin: Option<String>,
    },
    /// The keys typed during a call: the right key (`#`), and the PIN in PIN mode.
    Call {
        keys_right: bool,
        pin: Option<String>,
    },
    /// The app's approval: the number it picked (with number matching) and the PIN (in PIN
    /// mode).
    App {
        number: Option<String>,
        pin: Option<String>,
    },
}

impl Answer {
    /// A code typed for an authentication waiting on a text message's code is that code.
    fn for_state(self, state: &State) -> Answer {
        match (self, state) {
            (Answer::Otp { code, .. }, State::Pending(Step::TextCode)) => Answer::TextCode(code),
            (answer, _) => answer,
        }
    }

    fn step(&self) -> Step {
        match self {
            Answer::Otp { .. } => Step::Oath,
            Answer::SecurityAnswers(_) => Step::SecurityQuestions { asked: Vec::new() },
            Answer::TextCode(_) => Step::TextCode,
            Answer::TextReply { .. } => Step::TextReply,
            Answer::Call { .. } => Step::PhoneCall,
            Answer::App { .. } => Step::MobileApp,
        }
    }

    fn event(&self, check: Check) -> Event {
        match self {
            Answer::Otp { .. } => Event::Code(check),
            Answer::SecurityAnswers(_) => Event::SecurityAnswers(check),
            Answer::TextCode(_) => Event::TextCode(check),
            Answer::TextReply { .. } => Event::TextReply(check),
            Answer::Call { .. } => Event::CallDigits(check),
            Answer::App { .. } => Event::AppApproval(check),
        }
    }
}

/// What a caller may ask of a new authentication beyond the user's own method.
#[derive(Debug, Clone)]
pub(super) struct StartOptions {
    /// A challenge the caller asked for (an application choosing security questions, a
    /// phone check's call or text); it must be one the user can answer now.
    pub wanted: Option<Challenge>,
    /// What the application said the sign-in is for (JSON).
    pub context: Option<String>,
    /// Where a call or a text goes.
    pub phone: PhoneTarget,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            wanted: None,
            context: None,
            phone: PhoneTarget::Primary,
        }
    }
}

/// The error a refused event reports.
pub(super) fn refusal_error(refusal: Refusal) -> ServiceError {
    match refusal {
        Refusal::Closed(state) => DomainError::AuthenticationClosed(state.to_owned()).into(),
        Refusal::WrongStep | Refusal::NotOffered | Refusal::NotExpired => {
            DomainError::WrongStep.into()
        }
    }
}

/// Two nodes kept moving the same authentication while this one tried: rare, and safe to
/// retry.
fn busy() -> ServiceError {
    ServiceError::Unavailable("the authentication is being answered elsewhere; try again".into())
}

/// Whether a refused answer counts as a guess (it does unless it could not be one).
fn counts(e: &DomainError) -> bool {
    !matches!(
        e,
        DomainError::MalformedCode { .. }
            | DomainError::InvalidRequest(_)
            | DomainError::RateLimited
    )
}

impl InProcessService {
    /// What the machine needs to know of a user now.
    async fn decision_inputs(
        &self,
        user: &UserRecord,
    ) -> Result<(Settings, UserFactors), ServiceError> {
        let settings = self.settings_now().await?;
        let known = self.store.sign_in_facts(&user.id, self.clock.now()).await?;
        Ok((
            settings,
            factors_with(
                user,
                known.has_active_token,
                known.security_answers,
                known.devices,
            ),
        ))
    }

    /// Starts an authentication for `user`, whose password (or an application's word for it)
    /// was accepted: its first state follows the sign-in flow (trusted address, bypass,
    /// enrolment, the user's method), and it is stored, so that any node can take its answer.
    /// A sign-in approved at once (trusted address, bypass) is audited as one.
    pub(super) async fn begin_authentication(
        &self,
        user: &UserRecord,
        origin: Origin,
        started_by: String,
        client: &ClientContext,
        options: StartOptions,
    ) -> Result<Authentication, ServiceError> {
        let StartOptions {
            wanted,
            context,
            phone,
        } = options;
        let settings = self.settings_now().await?;
        let now = self.clock.now();
        let known = self.store.sign_in_facts(&user.id, now).await?;
        let factors = factors_with(
            user,
            known.has_active_token,
            known.security_answers,
            known.devices,
        );
        // A step-up proves a factor again: no trusted address or bypass stands in for it.
        let bypass = match origin {
            Origin::StepUp | Origin::PhoneCheck | Origin::AppCheck | Origin::Admin => None,
            Origin::Portal | Origin::Sdk => known.bypass_id,
        };
        let mut facts = AttemptFacts {
            client_ip: client.ip.filter(|_| origin != Origin::StepUp),
            bypass_available: bypass.is_some(),
        };
        let first = |facts| {
            authentication::start(origin, &settings, &factors, facts, wanted).map_err(
                |StartRefusal::MethodNotOffered| {
                    ServiceError::Domain(DomainError::InvalidRequest(
                        "that method is not available to this user".into(),
                    ))
                },
            )
        };
        let mut state = first(facts)?;
        if state == (State::Approved { via: Via::Bypass }) {
            // The bypass is used once: if another sign-in took it meanwhile, this one goes on
            // as if there were none.
            let used = match &bypass {
                Some(id) => self.store.consume_bypass(id, now).await?,
                None => false,
            };
            if !used {
                facts.bypass_available = false;
                state = first(facts)?;
            }
        }
        match &state {
            State::Approved { via } => {
                self.successful_attempt(&user.username).await?;
                self.record_signed_in(user, *via, client).await;
            }
            State::Denied { .. } if origin != Origin::StepUp => {
                self.audit(
                    self.event(AuditAction::SignIn, AuditOutcome::Failure, user, client)
                        .detail("not_enrolled"),
                )
                .await;
            }
            _ => {}
        }
        let mut a = Authentication {
            id: new_id(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            origin,
            started_by,
            state,
            attempts: 0,
            client_ip: client.ip.map(|ip| ip.to_string()),
            context,
            channel: None,
            message_id: None,
            code_hash: None,
            created_at: now,
            expires_at: now + origin.lifetime(),
            consumed_at: None,
            version: 1,
        };
        if let Some(asked) = self.questions_to_draw(&a).await?
            && let Transition::Moved { state, .. } =
                authentication::apply(&a, &Event::QuestionsDrawn(asked), now, &settings, &factors)
        {
            a.state = state;
        }
        if a.state == State::Pending(Step::MobileApp) {
            return self.start_with_push(a, user, &settings, client).await;
        }
        let outgoing = self
            .prepare_phone(&mut a, user, &settings, &phone, client)
            .await?;
        self.store.create_authentication(&a).await?;
        match outgoing {
            Some(outgoing) => self.send_to_phone(a, outgoing).await,
            None => Ok(a),
        }
    }

    /// The questions to draw for an authentication that asks for security answers and has
    /// none drawn yet.
    async fn questions_to_draw(
        &self,
        a: &Authentication,
    ) -> Result<Option<Vec<String>>, ServiceError> {
        match &a.state {
            State::Pending(Step::SecurityQuestions { asked }) if asked.is_empty() => {
                let drawn = self.draw_questions(&a.user_id).await?;
                Ok((!drawn.is_empty()).then(|| drawn.into_iter().map(|q| q.id).collect()))
            }
            _ => Ok(None),
        }
    }

    /// Reads an authentication again after another node moved it.
    async fn reread(&self, id: &str) -> Result<Authentication, ServiceError> {
        self.store
            .authentication(id)
            .await?
            .ok_or(ServiceError::Domain(DomainError::AuthenticationNotFound))
    }

    /// The authentication `id`, for the one who started it: anyone else finds nothing.
    pub(super) async fn authentication_for(
        &self,
        id: &str,
        started_by: &str,
    ) -> Result<Authentication, ServiceError> {
        match self.store.authentication(id).await? {
            Some(a) if a.started_by == started_by => Ok(a),
            _ => Err(DomainError::AuthenticationNotFound.into()),
        }
    }

    /// Applies an event that carries no secret to check (a switch to another challenge, a
    /// finished enrolment, a cancel), and stores the result. Questions are drawn when the
    /// new step asks for them.
    pub(super) async fn move_authentication(
        &self,
        a: Authentication,
        event: Event,
    ) -> Result<Authentication, ServiceError> {
        let user = self.user(&a.user_id).await?;
        let mut a = a;
        for _ in 0..8 {
            let (settings, factors) = self.decision_inputs(&user).await?;
            let now = self.clock.now();
            let state = match authentication::apply(&a, &event, now, &settings, &factors) {
                Transition::Moved { state, .. } => state,
                Transition::Refused(refusal) => return Err(refusal_error(refusal)),
            };
            let mut moved = Authentication {
                state,
                version: a.version + 1,
                ..a.clone()
            };
            if let Some(asked) = self.questions_to_draw(&moved).await? {
                moved.state = State::Pending(Step::SecurityQuestions { asked });
            }
            let to_phone = matches!(&moved.state, State::Pending(step) if step.goes_to_phone())
                && moved.state != a.state;
            if moved.state == State::Pending(Step::MobileApp) && moved.state != a.state {
                // Switched to the app: a request goes out now.
                let client = ClientContext {
                    ip: a.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
                    ..ClientContext::default()
                };
                return self.move_to_push(a, moved, &user, &settings, &client).await;
            }
            if to_phone {
                // Switched to a call or a text: it goes out now, as for a new authentication.
                let client = ClientContext {
                    ip: a.client_ip.as_deref().and_then(|ip| ip.parse().ok()),
                    ..ClientContext::default()
                };
                return self
                    .move_to_phone(a, moved, &user, &settings, &PhoneTarget::Primary, &client)
                    .await;
            }
            if self.store.move_authentication(&a, &moved.state).await? {
                return Ok(moved);
            }
            a = self.reread(&a.id).await?;
        }
        Err(busy())
    }

    /// Moves `a` to the phone step of `moved` (the next version), for `target`: the call or
    /// text is prepared (number, limits, code), stored with the new state, then sent. A
    /// switch to a call or a text, and a call or text sent again to the backup phone.
    pub(super) async fn move_to_phone(
        &self,
        a: Authentication,
        mut moved: Authentication,
        user: &UserRecord,
        settings: &Settings,
        target: &PhoneTarget,
        client: &ClientContext,
    ) -> Result<Authentication, ServiceError> {
        let outgoing = self
            .prepare_phone(&mut moved, user, settings, target, client)
            .await?;
        if !self
            .store
            .move_authentication_with_delivery(&a, &moved)
            .await?
        {
            return Err(busy());
        }
        match outgoing {
            // Boxed: sending may deny it, which moves it again.
            Some(outgoing) => Box::pin(self.send_to_phone(moved, outgoing)).await,
            None => Ok(moved),
        }
    }

    /// Answers an authentication: counts the answer against it (before the check, so that
    /// concurrent answers cannot check more than [`MAX_ANSWERS`]), checks it (a code, single
    /// use; security answers), and stores what the engine makes of the result. A wrong
    /// answer is reported as its error after it was stored; the fifth one denies the
    /// authentication.
    ///
    /// `client.ip` is the user's address: it is held to the per-address budget.
    pub(super) async fn answer_authentication(
        &self,
        a: &Authentication,
        answer: Answer,
        client: &ClientContext,
    ) -> Result<Authentication, ServiceError> {
        let now = self.clock.now();
        let answer = answer.for_state(&a.state);
        let settings = self.settings_now().await?;
        authentication::may_answer(a, &answer.step(), now, &settings).map_err(refusal_error)?;
        self.limit_attempts(&a.user_id, client.ip)?;
        let limit = authentication::answer_limit(&answer.step(), &settings);
        let Some(reserved) = self
            .store
            .reserve_authentication_attempt(&a.id, limit, now)
            .await?
        else {
            // Its answers are all spent (or it ended meanwhile). When the user's account is
            // locked by now, that is the news; otherwise the authentication is over.
            let lockout = self.store.lockout(&a.username).await?;
            let policy = self.settings_now().await?.lockout_policy();
            twofold_engine::sign_in::may_attempt(true, &lockout.state, self.clock.now(), policy)
                .map_err(ServiceError::Domain)?;
            let state = match self.store.authentication(&a.id).await? {
                Some(now_a) => now_a.state_at(self.clock.now()).name(),
                None => "denied",
            };
            return Err(DomainError::AuthenticationClosed(
                if state == "pending" { "denied" } else { state }.to_owned(),
            )
            .into());
        };
        let checked = match &answer {
            Answer::Otp { code, pin } => {
                self.verify_oath_code(&a.user_id, code, pin.as_deref(), client)
                    .await
            }
            Answer::SecurityAnswers(given) => {
                let asked = match &reserved.state {
                    State::Pending(Step::SecurityQuestions { asked }) => asked.clone(),
                    _ => Vec::new(),
                };
                self.check_answers(&a.user_id, &asked, given, client).await
            }
            Answer::TextCode(code) => {
                self.check_phone_answer(&reserved, Some(code), None, Via::TextMessage, client)
                    .await
            }
            Answer::TextReply { code, pin } => {
                self.check_phone_answer(
                    &reserved,
                    Some(code),
                    pin.as_deref(),
                    Via::TextMessage,
                    client,
                )
                .await
            }
            Answer::Call {
                keys_right: false, ..
            } => Err(DomainError::InvalidCode.into()),
            Answer::Call { pin, .. } => {
                self.check_phone_answer(&reserved, None, pin.as_deref(), Via::PhoneCall, client)
                    .await
            }
            Answer::App { number, pin } => {
                self.check_phone_answer(
                    &reserved,
                    number.as_deref(),
                    pin.as_deref(),
                    Via::MobileApp,
                    client,
                )
                .await
            }
        };
        let (check, error) = match checked {
            Ok(_) => (Check::Right, None),
            Err(ServiceError::Domain(e)) if counts(&e) => {
                let check = if matches!(
                    e,
                    DomainError::UserLocked { .. } | DomainError::UserHardLocked
                ) {
                    Check::Locked
                } else {
                    Check::Wrong
                };
                (check, Some(e))
            }
            Err(e) => {
                self.store.release_authentication_attempt(&a.id).await?;
                return Err(e);
            }
        };
        let event = answer.event(check);
        // Only a right answer depends on what the user holds (a wrong one counts, whatever).
        let factors = match check {
            Check::Right => self.decision_inputs(&self.user(&a.user_id).await?).await?.1,
            Check::Wrong | Check::Locked => UserFactors::default(),
        };
        let mut current = reserved;
        for _ in 0..8 {
            match authentication::apply(&current, &event, self.clock.now(), &settings, &factors) {
                // A wrong answer that leaves it pending changes nothing the reservation did
                // not already write. (A right one for a factor the user does not hold is
                // counted the same way, and never approves.)
                Transition::Moved { state, .. } if state == current.state => {
                    return Err(error.unwrap_or(DomainError::WrongStep).into());
                }
                Transition::Moved { state, .. } => {
                    if self.store.move_authentication(&current, &state).await? {
                        return match error {
                            Some(e) => Err(e.into()),
                            None => Ok(Authentication {
                                state,
                                version: current.version + 1,
                                ..current
                            }),
                        };
                    }
                }
                Transition::Refused(refusal) => {
                    return Err(error.map_or_else(|| refusal_error(refusal), ServiceError::from));
                }
            }
            current = self.reread(&a.id).await?;
        }
        Err(busy())
    }
}
