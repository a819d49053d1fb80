//! One authentication, from its start to approved, denied, expired or fraud.
//!
//! Every second-factor proof is an [`Authentication`]: a portal sign-in after its password, a
//! signed-in portal session confirming a change (a step-up), and an application's request
//! through the Web Service SDK. It is a record in the store, so any node can take its next
//! event: a code typed on a page or sent through the SDK, security answers, the digits of a
//! phone call, a text message's reply, the authenticator app's answer, a provider's failure,
//! a timeout, a cancel.
//!
//! Two pure functions move it: [`start`] decides the first state from what the password step
//! knows (the sign-in flow of [`crate::flow`]: trusted address, bypass, enrolment, the
//! user's method and its fallbacks), and [`apply`] applies one event at a given time under
//! the given settings and the user's factors. Checking a code or a PIN needs secrets and the
//! store, so the server checks and the event carries the result ([`Check`]); what the result
//! means for the authentication is decided here, and only here.
//!
//! The machine fails closed: an event that does not fit the state, an answer to a step the
//! user cannot answer (a method not enrolled), or a user with no usable factor never yields
//! [`State::Approved`].

use crate::clock::UnixTime;
use crate::flow::{self, AttemptFacts, Challenge, NextStep, UserFactors, Via};
use crate::phone_call::SmsMode;
use crate::settings::Settings;
use crate::step_up;
use serde::{Deserialize, Serialize};

/// Wrong answers to one authentication before it is denied (the user's lockout counters
/// bound the attempts across authentications).
pub const MAX_ANSWERS: u32 = 5;
/// How long a portal sign-in may wait between the password and the end of the second factor,
/// enrolment included (installing an authenticator app takes a few minutes).
pub const PORTAL_SECONDS: i64 = 30 * 60;
/// How long an application's authentication (SDK) and a step-up wait for their answer.
pub const ANSWER_SECONDS: i64 = 300;

/// Who started an authentication: it decides what a first sign-in without a factor may do
/// (enrol in the portal; be denied through the SDK) and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A portal sign-in, after the password.
    Portal,
    /// A signed-in portal session proving a second factor again before a change.
    StepUp,
    /// An application, through the Web Service SDK.
    Sdk,
    /// A call or a text to a phone number the user is adding or changing, proving it
    /// reaches them before it is stored.
    PhoneCheck,
    /// A first request to a newly activated authenticator app (the enrolment's
    /// "Authenticate me now"), proving it works.
    AppCheck,
    /// An administrator's sign-in to the admin console, after the password: a second factor
    /// always, whatever the client's address or a bypass, and no enrolment.
    Admin,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Portal => "portal",
            Origin::StepUp => "step_up",
            Origin::Sdk => "sdk",
            Origin::PhoneCheck => "phone_check",
            Origin::AppCheck => "app_check",
            Origin::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Origin> {
        match s {
            "portal" => Some(Origin::Portal),
            "step_up" => Some(Origin::StepUp),
            "sdk" => Some(Origin::Sdk),
            "phone_check" => Some(Origin::PhoneCheck),
            "app_check" => Some(Origin::AppCheck),
            "admin" => Some(Origin::Admin),
            _ => None,
        }
    }

    /// How long an authentication of this origin waits for its end.
    pub fn lifetime(self) -> i64 {
        match self {
            Origin::Portal | Origin::Admin => PORTAL_SECONDS,
            Origin::StepUp | Origin::Sdk | Origin::PhoneCheck | Origin::AppCheck => ANSWER_SECONDS,
        }
    }
}

/// What a pending authentication waits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    /// An OATH code, typed in a page or sent by an application.
    Oath,
    /// Answers to the security questions drawn for this authentication (`asked`: their ids,
    /// drawn once, so that asking again never offers an easier draw).
    SecurityQuestions { asked: Vec<String> },
    /// A portal sign-in of a user with no usable factor, enrolling with the password alone
    /// (or finishing an enrolment the settings now require).
    Enroll,
    /// A phone call: the user answers and presses `#` (after the PIN, in PIN mode).
    PhoneCall,
    /// A two-way text message: the user replies with the code (and the PIN).
    TextReply,
    /// A one-way text message: the user types its code in the page (or an application
    /// sends it).
    TextCode,
    /// A push to the authenticator app: approve, deny or "not me".
    MobileApp,
}

impl Step {
    /// The name of the step in the store and in the SDK's `next`.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Oath => "otp",
            Step::SecurityQuestions { .. } => "security_answers",
            Step::Enroll => "enroll",
            Step::PhoneCall => "phone_call",
            Step::TextReply => "text_reply",
            Step::TextCode => "text_code",
            Step::MobileApp => "mobile_app",
        }
    }

    /// Reads a step from its stored name and question ids.
    pub fn parse(name: &str, asked: Vec<String>) -> Option<Step> {
        Some(match name {
            "otp" => Step::Oath,
            "security_answers" => Step::SecurityQuestions { asked },
            "enroll" => Step::Enroll,
            "phone_call" => Step::PhoneCall,
            "text_reply" => Step::TextReply,
            "text_code" => Step::TextCode,
            "mobile_app" => Step::MobileApp,
            _ => return None,
        })
    }

    /// The step that puts `challenge` to the user (security questions not drawn yet; a
    /// text message as `sms_mode` says).
    pub fn of(challenge: Challenge, settings: &Settings) -> Step {
        match challenge {
            Challenge::Oath => Step::Oath,
            Challenge::SecurityQuestions => Step::SecurityQuestions { asked: Vec::new() },
            Challenge::PhoneCall => Step::PhoneCall,
            Challenge::MobileApp => Step::MobileApp,
            Challenge::Sms => match settings.sms_mode {
                SmsMode::Otp => Step::TextCode,
                SmsMode::TwoWay | SmsMode::TwoWayPin => Step::TextReply,
            },
        }
    }

    /// Whether the step sends something to the user's phone (a call or a text).
    pub fn goes_to_phone(&self) -> bool {
        matches!(self, Step::PhoneCall | Step::TextReply | Step::TextCode)
    }

    /// Whether the step is answered away from the page (a call, a text, the app): the page
    /// waits for it.
    pub fn out_of_band(&self) -> bool {
        self.goes_to_phone() || *self == Step::MobileApp
    }

    /// The challenge this step puts, when it is one typed in a page or sent by an
    /// application.
    pub fn challenge(&self) -> Option<Challenge> {
        match self {
            Step::Oath => Some(Challenge::Oath),
            Step::SecurityQuestions { .. } => Some(Challenge::SecurityQuestions),
            Step::PhoneCall => Some(Challenge::PhoneCall),
            Step::TextReply | Step::TextCode => Some(Challenge::Sms),
            Step::MobileApp => Some(Challenge::MobileApp),
            Step::Enroll => None,
        }
    }
}

/// Why an authentication was denied (stable codes: the SDK shows them as `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The user has no second factor this authentication could ask for.
    NotEnrolled,
    /// Too many wrong codes.
    InvalidCode,
    /// Too many wrong security answers.
    WrongAnswers,
    /// The user's account locked meanwhile.
    UserLocked,
    /// The user declined (the app's "deny").
    Declined,
    /// The phone was busy.
    Busy,
    /// Nobody answered the call.
    NoAnswer,
    /// The text message could not be delivered.
    Undelivered,
    /// The provider could not be reached.
    ProviderUnavailable,
    /// The caller cancelled it.
    Cancelled,
    /// Too many calls or texts to this number, for this user, from this address, or in
    /// all, this hour: none was sent.
    RateLimited,
    /// Calls and texts may not go to this number's country (`sms_allowed_countries`).
    CountryNotAllowed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotEnrolled => "not_enrolled",
            Reason::InvalidCode => "invalid_code",
            Reason::WrongAnswers => "wrong_answers",
            Reason::UserLocked => "user_locked",
            Reason::Declined => "declined",
            Reason::Busy => "busy",
            Reason::NoAnswer => "no_answer",
            Reason::Undelivered => "undelivered",
            Reason::ProviderUnavailable => "provider_unavailable",
            Reason::Cancelled => "cancelled",
            Reason::RateLimited => "rate_limited",
            Reason::CountryNotAllowed => "country_not_allowed",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        [
            Reason::NotEnrolled,
            Reason::InvalidCode,
            Reason::WrongAnswers,
            Reason::UserLocked,
            Reason::Declined,
            Reason::Busy,
            Reason::NoAnswer,
            Reason::Undelivered,
            Reason::ProviderUnavailable,
            Reason::Cancelled,
            Reason::RateLimited,
            Reason::CountryNotAllowed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Where an authentication stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum State {
    Pending(Step),
    Approved {
        via: Via,
    },
    Denied {
        reason: Reason,
    },
    Expired,
    /// The user reported it as not theirs (a fraud code in a call, "not me" in the app).
    Fraud,
}

impl State {
    /// The state's name, as the store and the SDK show it.
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending(_) => "pending",
            State::Approved { .. } => "approved",
            State::Denied { .. } => "denied",
            State::Expired => "expired",
            State::Fraud => "fraud",
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, State::Pending(_))
    }
}

/// One authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub origin: Origin,
    /// Who may read and answer it: the SDK account (`sdk:NAME`) or the portal session
    /// (`session:HASH`) that started it, and nobody else.
    pub started_by: String,
    pub state: State,
    /// Answers counted against it.
    pub attempts: u32,
    /// The user's address, when known.
    pub client_ip: Option<String>,
    /// What the application said the sign-in is for (JSON), shown to the user where a
    /// method can show it.
    pub context: Option<String>,
    /// The phone or device it went to, for methods that go somewhere (a phone number in
    /// E.164).
    pub channel: Option<String>,
    /// The provider's id of the call or the message (Twilio's sid).
    pub message_id: Option<String>,
    /// The keyed hash of the code a text message carried, so that any node can check it.
    pub code_hash: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// When an approved authentication was used (a session signed in with it); it is used
    /// once.
    pub consumed_at: Option<UnixTime>,
    /// The store's optimistic lock: each write moves it on.
    pub version: i64,
}

impl Authentication {
    /// The state as seen at `now`: a pending one past its expiry is expired, whether or not
    /// the store was told yet.
    pub fn state_at(&self, now: UnixTime) -> State {
        match &self.state {
            State::Pending(_) if now >= self.expires_at => State::Expired,
            other => other.clone(),
        }
    }
}

/// Why an authentication cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartRefusal {
    /// The caller asked for a method the user cannot answer now.
    MethodNotOffered,
}

/// The challenges an authentication waiting on `current` may switch to.
pub fn offered(
    origin: Origin,
    settings: &Settings,
    factors: &UserFactors,
    current: Option<Challenge>,
) -> Vec<Challenge> {
    let mut choices = match origin {
        Origin::StepUp => step_up::provable(settings, factors),
        Origin::PhoneCheck | Origin::AppCheck => Vec::new(),
        Origin::Portal | Origin::Sdk | Origin::Admin => {
            let mut c: Vec<Challenge> = flow::primary_challenge(factors).into_iter().collect();
            for f in flow::fallbacks(settings, factors, current) {
                if !c.contains(&f) {
                    c.push(f);
                }
            }
            if c.is_empty()
                && let Some(usable) = flow::usable_challenge(settings, factors)
            {
                c.push(usable);
            }
            c
        }
    };
    if let Some(current) = current {
        choices.retain(|c| *c != current);
    }
    choices
}

/// The first state of an authentication, from what the password step knows.
///
/// `wanted` is a challenge the caller asked for (an application choosing security
/// questions); it must be one the user can answer now.
pub fn start(
    origin: Origin,
    settings: &Settings,
    factors: &UserFactors,
    facts: AttemptFacts,
    wanted: Option<Challenge>,
) -> Result<State, StartRefusal> {
    let first = match origin {
        // The number is being proved, not the user: the call or the text it asked for.
        Origin::PhoneCheck => {
            return match wanted {
                Some(c @ (Challenge::PhoneCall | Challenge::Sms)) => {
                    Ok(State::Pending(Step::of(c, settings)))
                }
                _ => Err(StartRefusal::MethodNotOffered),
            };
        }
        // The device is being tried, whatever the user's method.
        Origin::AppCheck if factors.has_device => return Ok(State::Pending(Step::MobileApp)),
        Origin::AppCheck => return Err(StartRefusal::MethodNotOffered),
        Origin::StepUp => match step_up::provable(settings, factors).first() {
            Some(c) => NextStep::Verify(*c),
            // Nothing a sign-in would ask for: nothing to prove again.
            None => {
                return Ok(State::Denied {
                    reason: Reason::NotEnrolled,
                });
            }
        },
        Origin::Portal | Origin::Sdk => flow::after_password(settings, factors, facts),
        // Neither a trusted address nor a bypass stands in for an administrator's factor.
        Origin::Admin => flow::after_password(
            settings,
            factors,
            AttemptFacts {
                client_ip: None,
                bypass_available: false,
            },
        ),
    };
    match first {
        NextStep::SignedIn(via) => Ok(State::Approved { via }),
        NextStep::Enroll if origin == Origin::Portal => Ok(State::Pending(Step::Enroll)),
        NextStep::Enroll | NextStep::ContactAdministrator => Ok(State::Denied {
            reason: Reason::NotEnrolled,
        }),
        NextStep::Verify(primary) => {
            let challenge = match wanted {
                None => primary,
                Some(c) if c == primary => c,
                Some(c) if offered(origin, settings, factors, Some(primary)).contains(&c) => c,
                // An application may call or text any user who has a phone, whatever their
                // own method.
                Some(c @ (Challenge::PhoneCall | Challenge::Sms))
                    if origin == Origin::Sdk && factors.has_phone =>
                {
                    c
                }
                // And send a request to any user's activated app.
                Some(Challenge::MobileApp) if origin == Origin::Sdk && factors.has_device => {
                    Challenge::MobileApp
                }
                Some(_) => return Err(StartRefusal::MethodNotOffered),
            };
            Ok(State::Pending(Step::of(challenge, settings)))
        }
    }
}

/// What the server found when it checked an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Right,
    Wrong,
    /// The user's account is locked (this answer or earlier ones): it ends the authentication.
    Locked,
}

/// The authenticator app's answer other than an approval (its signature checked by the
/// server). An approval carries a number and maybe a PIN to check: it is
/// [`Event::AppApproval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppAnswer {
    Deny,
    NotMe,
}

/// Why a call or a message did not reach the user: the provider's report, or the server's
/// own refusal to send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFailure {
    Busy,
    NoAnswer,
    Undelivered,
    Unavailable,
    /// The call was cancelled before it was answered.
    Canceled,
    /// The sending limits were reached (nothing was sent).
    RateLimited,
    /// The number's country is not allowed (nothing was sent).
    CountryNotAllowed,
}

/// Something that happened to an authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An OATH code was typed or sent, and checked. The attempt was counted when it was
    /// reserved, before the check ([`may_answer`]).
    Code(Check),
    /// Security answers were given, and checked.
    SecurityAnswers(Check),
    /// The digits typed during a phone call: `#` confirms; in PIN mode the server checked the
    /// PIN typed before it. A fraud report is [`Event::FraudReported`].
    CallDigits(Check),
    /// A reply to a two-way text message, checked (the code, and the PIN).
    TextReply(Check),
    /// The code of a one-way text message, typed or sent, and checked.
    TextCode(Check),
    /// The authenticator app approved, and the server checked the number it picked and the
    /// PIN (in PIN mode). One answer only: a wrong one denies.
    AppApproval(Check),
    /// The authenticator app denied, or answered "not me".
    App(AppAnswer),
    /// The user reported the authentication as not theirs (fraud code during a call).
    FraudReported,
    /// The provider could not reach the user.
    ProviderFailed(ProviderFailure),
    /// Switch to another challenge the user may answer (a fallback).
    Switch(Challenge),
    /// Security questions were drawn for the step.
    QuestionsDrawn(Vec<String>),
    /// The user finished enrolling in the portal.
    EnrollmentCompleted,
    /// The expiry passed.
    Timeout,
    /// The caller (the page, the application) gave up.
    Cancel,
}

/// Why an event did not move an authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It has ended already (approved, denied, expired, fraud); the state's name.
    Closed(&'static str),
    /// It does not wait for this kind of event now (an answer to another step, a second
    /// draw of questions, …).
    WrongStep,
    /// The challenge asked for is not one the user may answer now.
    NotOffered,
    /// Its expiry has not passed yet (a timeout that came early).
    NotExpired,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// Store this state (and `attempts`) if the authentication is still the version read.
    Moved { state: State, attempts: u32 },
    /// Nothing changes.
    Refused(Refusal),
}

/// How many answers `step` accepts before the authentication is denied: a call asks for
/// the PIN at most `call_pin_attempts` times; the app's approval is taken once (a wrong
/// number or PIN denies, so that guessing among the numbers shown gets nothing).
pub fn answer_limit(step: &Step, settings: &Settings) -> u32 {
    match step {
        Step::PhoneCall => u32::from(settings.call_pin_attempts).clamp(1, MAX_ANSWERS),
        Step::MobileApp => 1,
        _ => MAX_ANSWERS,
    }
}

/// Whether an answer of this kind (`step` name) may be checked now. The server counts it
/// against the authentication (atomically, before checking it, up to [`answer_limit`])
/// only when this says yes.
pub fn may_answer(
    authentication: &Authentication,
    answering: &Step,
    now: UnixTime,
    settings: &Settings,
) -> Result<(), Refusal> {
    match authentication.state_at(now) {
        State::Pending(step) if step.name() == answering.name() => {
            if authentication.attempts >= answer_limit(&step, settings) {
                Err(Refusal::Closed("denied"))
            } else {
                Ok(())
            }
        }
        State::Pending(_) => Err(Refusal::WrongStep),
        other => Err(Refusal::Closed(other.name())),
    }
}

fn answered_step(event: &Event) -> Option<(&'static str, Check)> {
    match event {
        Event::Code(c) => Some(("otp", *c)),
        Event::SecurityAnswers(c) => Some(("security_answers", *c)),
        Event::CallDigits(c) => Some(("phone_call", *c)),
        Event::TextReply(c) => Some(("text_reply", *c)),
        Event::TextCode(c) => Some(("text_code", *c)),
        Event::AppApproval(c) => Some(("mobile_app", *c)),
        _ => None,
    }
}

/// Whether the user can prove `step` at all: a right answer to a step the user holds no
/// factor for never approves. A phone check proves the number it called, not yet the
/// user's.
fn holds(origin: Origin, step: &Step, settings: &Settings, factors: &UserFactors) -> bool {
    match step {
        Step::PhoneCall | Step::TextReply | Step::TextCode if origin == Origin::PhoneCheck => true,
        Step::Oath => factors.has_oath_token,
        Step::SecurityQuestions { asked } => {
            !asked.is_empty()
                && factors.security_answers >= usize::from(settings.security_questions_required)
        }
        Step::PhoneCall | Step::TextReply | Step::TextCode => factors.has_phone,
        Step::MobileApp => factors.has_device,
        Step::Enroll => false,
    }
}

/// How a right answer to `step` is recorded.
fn via_of(step: &Step, factors: &UserFactors) -> Via {
    match step {
        Step::Oath => flow::via(Challenge::Oath, factors),
        Step::SecurityQuestions { .. } => Via::SecurityQuestions,
        Step::PhoneCall => Via::PhoneCall,
        Step::TextReply | Step::TextCode => Via::TextMessage,
        Step::MobileApp => Via::MobileApp,
        Step::Enroll => Via::Enrollment,
    }
}

/// The state after a proof: approved, or, for a portal sign-in whose enrolment is unfinished
/// (a PIN now required, questions turned on), the wizard's remaining steps first.
fn proved(origin: Origin, via: Via, settings: &Settings, factors: &UserFactors) -> State {
    if origin == Origin::Portal && flow::next_enrollment_step(settings, factors).is_some() {
        State::Pending(Step::Enroll)
    } else {
        State::Approved { via }
    }
}

/// Applies `event` to `authentication` at `now`, under `settings`, for a user holding
/// `factors`.
pub fn apply(
    authentication: &Authentication,
    event: &Event,
    now: UnixTime,
    settings: &Settings,
    factors: &UserFactors,
) -> Transition {
    let attempts = authentication.attempts;
    let moved = |state: State, attempts: u32| Transition::Moved { state, attempts };
    let step = match &authentication.state {
        State::Pending(step) => step,
        ended => return Transition::Refused(Refusal::Closed(ended.name())),
    };
    let expired = now >= authentication.expires_at;
    match event {
        Event::Timeout if expired => return moved(State::Expired, attempts),
        Event::Timeout => return Transition::Refused(Refusal::NotExpired),
        // Past its expiry, any event finds it expired.
        _ if expired => return moved(State::Expired, attempts),
        _ => {}
    }
    if let Some((name, check)) = answered_step(event) {
        if name != step.name() {
            return Transition::Refused(Refusal::WrongStep);
        }
        return match check {
            Check::Right if holds(authentication.origin, step, settings, factors) => moved(
                proved(
                    authentication.origin,
                    via_of(step, factors),
                    settings,
                    factors,
                ),
                attempts,
            ),
            // Right, for a factor the user does not hold: counted like a wrong one.
            Check::Right | Check::Wrong if attempts < answer_limit(step, settings) => {
                moved(authentication.state.clone(), attempts)
            }
            Check::Right | Check::Wrong => moved(
                State::Denied {
                    reason: match step {
                        Step::SecurityQuestions { .. } => Reason::WrongAnswers,
                        _ => Reason::InvalidCode,
                    },
                },
                attempts,
            ),
            Check::Locked => moved(
                State::Denied {
                    reason: Reason::UserLocked,
                },
                attempts,
            ),
        };
    }
    match event {
        Event::App(answer) => match (step, answer) {
            (Step::MobileApp, AppAnswer::Deny) => moved(
                State::Denied {
                    reason: Reason::Declined,
                },
                attempts,
            ),
            (Step::MobileApp, AppAnswer::NotMe) => moved(State::Fraud, attempts),
            _ => Transition::Refused(Refusal::WrongStep),
        },
        Event::FraudReported => match step {
            Step::PhoneCall | Step::TextReply | Step::TextCode | Step::MobileApp => {
                moved(State::Fraud, attempts)
            }
            _ => Transition::Refused(Refusal::WrongStep),
        },
        Event::ProviderFailed(failure) => match step {
            Step::PhoneCall | Step::TextReply | Step::TextCode | Step::MobileApp => moved(
                State::Denied {
                    reason: match failure {
                        ProviderFailure::Busy => Reason::Busy,
                        ProviderFailure::NoAnswer => Reason::NoAnswer,
                        ProviderFailure::Undelivered => Reason::Undelivered,
                        ProviderFailure::Unavailable => Reason::ProviderUnavailable,
                        ProviderFailure::Canceled => Reason::Cancelled,
                        ProviderFailure::RateLimited => Reason::RateLimited,
                        ProviderFailure::CountryNotAllowed => Reason::CountryNotAllowed,
                    },
                },
                attempts,
            ),
            _ => Transition::Refused(Refusal::WrongStep),
        },
        // From the wizard too: a user who enrolled with the password alone and holds a
        // factor by now (enrolled elsewhere meanwhile) proves it like any sign-in.
        Event::Switch(wanted) => {
            let current = step.challenge();
            if current == Some(*wanted) {
                return Transition::Refused(Refusal::NotOffered);
            }
            if !offered(authentication.origin, settings, factors, current).contains(wanted) {
                return Transition::Refused(Refusal::NotOffered);
            }
            moved(State::Pending(Step::of(*wanted, settings)), attempts)
        }
        Event::QuestionsDrawn(ids) => match step {
            Step::SecurityQuestions { asked } if asked.is_empty() && !ids.is_empty() => moved(
                State::Pending(Step::SecurityQuestions { asked: ids.clone() }),
                attempts,
            ),
            _ => Transition::Refused(Refusal::WrongStep),
        },
        Event::EnrollmentCompleted => match step {
            // Enrolled, and holding a factor a sign-in could ask for: signed in.
            Step::Enroll
                if flow::next_enrollment_step(settings, factors).is_none()
                    && (flow::primary_challenge(factors).is_some()
                        || flow::usable_challenge(settings, factors).is_some()) =>
            {
                moved(
                    State::Approved {
                        via: Via::Enrollment,
                    },
                    attempts,
                )
            }
            _ => Transition::Refused(Refusal::WrongStep),
        },
        Event::Cancel => moved(
            State::Denied {
                reason: Reason::Cancelled,
            },
            attempts,
        ),
        Event::Timeout
        | Event::Code(_)
        | Event::SecurityAnswers(_)
        | Event::CallDigits(_)
        | Event::TextReply(_)
        | Event::TextCode(_)
        | Event::AppApproval(_) => Transition::Refused(Refusal::WrongStep),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
