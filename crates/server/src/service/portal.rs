//! The portal's sessions, owned by the server.
//!
//! A portal, in the server or on its own host over the SDK, holds nothing but an opaque
//! session token: the cookie's value. The server keeps everything the session stands for:
//! whose it is, and either the [`Authentication`] its sign-in runs on (its id, nothing
//! else) or, once signed in, how it signed in, and when a second factor was last proved in
//! it. Where a sign-in stands is the authentication's state, moved by the engine's machine
//! like an application's authentication through the SDK: the portal has no machine of its
//! own. Every operation takes the token, derives the user and the step from it and checks
//! that the step is allowed now; only the server creates and advances sessions, and only
//! after it has verified the step. So no portal, local or remote, can write a session's
//! step, act for a user it holds no session of, or skip a step.
//!
//! Changing one's own factors needs a second factor proved within `step_up_minutes`
//! (see [`twofold_engine::step_up`]): a session that has not proved one recently is asked
//! for it first ([`DomainError::StepUpRequired`]), through an authentication of its own
//! (origin `step_up`). A wizard session begun with the password alone is re-checked at every
//! step: once the user holds a factor (enrolled elsewhere in the meantime), it must prove it
//! like any sign-in. A change of factors ends every other session of the user.

mod app;
pub use app::AppCheck;

use super::authentications::{Answer, StartOptions};
use super::factors::{FactorsView, QuestionView, SoftwareEnrollment};
use super::telephony::PhoneTarget;
use super::{ClientContext, InProcessService, MfaService, Profile, ServiceError};
use crate::store::{SessionRecord, UserRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twofold_engine::audit::{AuditAction, AuditEvent};
use twofold_engine::authentication::{self, Authentication, Event, Origin, State, Step};
use twofold_engine::flow::{self, Challenge, Via};
use twofold_engine::settings::Method;
use twofold_engine::step_up::{self, FactorChange};
use twofold_engine::{DomainError, Language, Settings, UnixTime};

/// How long a session may wait between the password and the second factor (enrolment
/// included: installing an authenticator app takes a few minutes).
pub const PRE_AUTH_SECONDS: i64 = authentication::PORTAL_SECONDS;

/// Who starts the portal's authentications. They are reachable only through the session
/// that holds their id (never sent to any portal), and the SDK's paths refuse them.
const PORTAL_STARTER: &str = "portal";

/// Where a session stands: signed in, or between the password and the second factor. A
/// view of the session's authentication; nothing stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage")]
pub enum Stage {
    SignedIn {
        via: Via,
    },
    /// The password was right; the second factor is asked. `asked` holds the security
    /// questions drawn for this attempt, so reloading the page does not draw easier ones.
    Verify {
        challenge: Challenge,
        asked: Vec<String>,
    },
    /// The password was right and the user enrols (first sign-in).
    Enroll,
}

/// What the server keeps in a session (JSON in the store).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionData {
    username: String,
    #[serde(default)]
    language: Option<Language>,
    /// Until signed in: the authentication this sign-in runs on.
    #[serde(default)]
    authentication: Option<String>,
    /// Once signed in: how.
    #[serde(default)]
    signed_in: Option<Via>,
    /// The session ends then at the latest (shorter for the OATH fallback and before the
    /// second factor).
    max_until: i64,
    /// Where to go once signed in (a local path, checked by the portal).
    #[serde(default)]
    next: Option<String>,
    /// When a second factor was last proved in this session.
    #[serde(default)]
    proved_at: Option<UnixTime>,
    /// A step-up under way: its authentication.
    #[serde(default)]
    step_up: Option<String>,
    /// New phone numbers waiting to be proved.
    #[serde(default)]
    phone_check: Option<PendingPhones>,
    /// "Authenticate me now": a first request to a new device.
    #[serde(default)]
    app_check: Option<app::PendingAppCheck>,
    /// An admin console session: signed in with a second factor always, with its own idle
    /// timeout.
    #[serde(default)]
    admin: bool,
}

/// What a portal may know of its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    pub username: String,
    pub language: Option<Language>,
    pub stage: Stage,
    pub next: Option<String>,
    /// Signed in, and asked to prove a second factor again (with this challenge).
    pub step_up: Option<Challenge>,
    /// An admin console session (signed in at `/admin`, a second factor always).
    #[serde(default)]
    pub admin: bool,
}

/// A session the server started or moved on: the new token for the cookie, and where it
/// stands now. Every step gets a new token; the one before it is worthless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSession {
    pub token: String,
    pub view: SessionView,
}

/// The outcome of the password step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInOutcome {
    Started(PortalSession),
    /// The password was right, but the user has no second factor and may not enrol.
    ContactAdministrator,
    /// The password was right, but the call or the text could not go to the user's phone
    /// (`reason`: the authentication's, `rate_limited`, `provider_unavailable`, …), or the
    /// request could not go to the user's app (`app`; `rate_limited`: the limits against
    /// push bombing).
    PhoneNotReached {
        reason: String,
        #[serde(default)]
        app: bool,
    },
}

/// Where a sign-in (or a step-up) waiting on a call or a text stands, for the page that
/// waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PhoneWait {
    /// Still waiting: the call is ringing or the reply has not come.
    Waiting {
        /// `phone_call`, `text_reply` or `text_code`.
        step: String,
        /// The number, masked (`+33 6 •• •• •• 78`).
        sent_to: Option<String>,
    },
    /// Decided (approved or not), and asked without `finish`: nothing changed yet.
    Decided,
    /// Approved: the session moved on (signed in, the wizard's next step, or the change
    /// confirmed).
    Done(PortalSession),
    /// It ended without approval: `state` (`denied`, `expired`, `fraud`) and the reason.
    Ended {
        state: String,
        reason: Option<String>,
    },
}

/// A phone number as a form gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneInput {
    pub number: String,
    #[serde(default)]
    pub extension: Option<String>,
}

/// Phone numbers waiting for a call or a text to prove the first reaches the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PendingPhones {
    authentication: String,
    method: Method,
    primary: twofold_engine::phone::Phone,
    backup: Option<twofold_engine::phone::Phone>,
}

/// Where a phone check stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PhoneCheck {
    /// Calling or texting the new number; `step` as in [`PhoneWait::Waiting`].
    Waiting { step: String, sent_to: String },
    /// The number is proved and stored.
    Saved,
    /// It was not proved (`reason`); nothing was stored.
    Failed { reason: String },
    /// No check is under way.
    None,
}

/// What the second-factor page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub challenge: Challenge,
    /// For security questions: the ones drawn (kept in the authentication: reloading does
    /// not draw again).
    pub questions: Vec<QuestionView>,
    /// For an OATH code: how many digits.
    pub digits: u8,
    /// The other challenges the user may switch to.
    pub others: Vec<Challenge>,
    /// A signed-in user confirming a change, not a sign-in.
    pub step_up: bool,
    /// For a call or a text: the number it went to, masked.
    pub sent_to: Option<String>,
    /// For a call or a two-way text: the page waits (and polls) instead of asking.
    pub waiting: bool,
    /// The user has a backup phone the call or text may go to instead.
    pub backup_phone: bool,
    /// For the app: the request's number to show, and whether it expired.
    #[serde(default)]
    pub push: Option<super::app::PushStatus>,
}

/// What the store keeps in place of a session token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// When a session last seen `now` ends: after the idle timeout (an admin console session's
/// own), and never after the maximum lifetime.
pub fn expiry(created_at: i64, now: i64, settings: &Settings, admin: bool) -> i64 {
    let idle_minutes = if admin {
        settings.admin_session_idle_minutes
    } else {
        settings.session_idle_minutes
    };
    let idle = now + i64::from(idle_minutes) * 60;
    let max = created_at + i64::from(settings.session_max_hours) * 3600;
    idle.min(max)
}

/// A session as read for one operation, with the authentication it waits on (its sign-in's,
/// or its step-up's), if any.
struct Loaded {
    id_hash: String,
    record: SessionRecord,
    data: SessionData,
    authentication: Option<Authentication>,
}

impl Loaded {
    fn view(&self) -> Option<SessionView> {
        view_of(&self.data, self.authentication.as_ref())
    }

    fn signed_in(&self) -> bool {
        self.data.signed_in.is_some()
    }

    /// The authentication waiting on a challenge, and that challenge.
    fn challenge(&self) -> Option<(&Authentication, Challenge, Vec<String>)> {
        let a = self.authentication.as_ref()?;
        match &a.state {
            State::Pending(step) => {
                let asked = match step {
                    Step::SecurityQuestions { asked } => asked.clone(),
                    _ => Vec::new(),
                };
                step.challenge().map(|c| (a, c, asked))
            }
            _ => None,
        }
    }
}

/// An authentication a call or a text decided (approved, denied, fraud, or expired while
/// ringing) that its session has not taken yet: the session keeps it until its page reads
/// the outcome ([`InProcessService::portal_phone_wait`]).
fn decided_by_phone(a: &Authentication, now: UnixTime) -> bool {
    a.channel.is_some()
        && a.consumed_at.is_none()
        && !matches!(a.origin, Origin::PhoneCheck | Origin::AppCheck)
        && !a.state_at(now).is_pending()
}

/// The challenge a call or a text put, for an authentication it decided.
fn decided_challenge(a: &Authentication) -> Option<Challenge> {
    if a.channel.is_none() || a.consumed_at.is_some() || a.state.is_pending() {
        return None;
    }
    if a.channel.as_deref() == Some(super::app::APP_CHANNEL) {
        return Some(Challenge::MobileApp);
    }
    Some(match a.state {
        State::Approved {
            via: Via::TextMessage,
        } => Challenge::Sms,
        _ => Challenge::PhoneCall,
    })
}

/// The view of a session, or `None` when its sign-in's authentication is not at a step a
/// page can show.
fn view_of(data: &SessionData, authentication: Option<&Authentication>) -> Option<SessionView> {
    let pending = authentication.and_then(|a| match &a.state {
        State::Pending(step) => Some(step),
        _ => None,
    });
    let decided = authentication.and_then(decided_challenge);
    let (stage, step_up) = match (data.signed_in, pending) {
        (Some(via), step) => (
            Stage::SignedIn { via },
            step.and_then(Step::challenge).or(decided),
        ),
        (None, Some(Step::Enroll)) => (Stage::Enroll, None),
        (None, Some(step)) => {
            let asked = match step {
                Step::SecurityQuestions { asked } => asked.clone(),
                _ => Vec::new(),
            };
            (
                Stage::Verify {
                    challenge: step.challenge()?,
                    asked,
                },
                None,
            )
        }
        (None, None) => match decided {
            Some(challenge) => (
                Stage::Verify {
                    challenge,
                    asked: Vec::new(),
                },
                None,
            ),
            None => return None,
        },
    };
    Some(SessionView {
        username: data.username.clone(),
        language: data.language,
        stage,
        next: data.next.clone(),
        step_up,
        admin: data.admin,
    })
}

/// Which sessions an operation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    SignedIn,
    SignedInOrEnrolling,
}

impl InProcessService {
    /// Reads the session behind `token` and the authentication it waits on, however that
    /// ended; `None` when there is no valid session (an invalid one is deleted).
    async fn peek(
        &self,
        token: &str,
    ) -> Result<Option<(String, SessionRecord, SessionData, Option<Authentication>)>, ServiceError>
    {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let settings = self.settings().await?;
        let now = self.clock.now();
        let id_hash = hash_token(token);
        let Some(record) = self.store.session(&id_hash, now).await? else {
            return Ok(None);
        };
        let data = serde_json::from_str::<SessionData>(&record.data).ok();
        // The settings may have shortened the timeouts since the session was stored.
        let valid = data.as_ref().is_some_and(|d| {
            now < expiry(record.created_at, record.last_seen_at, &settings, d.admin)
                && now < record.expires_at
                && now < d.max_until
        });
        let Some(data) = data.filter(|_| valid) else {
            self.store.delete_session(&id_hash).await?;
            return Ok(None);
        };
        let waits_on = data.step_up.clone().or(data.authentication.clone());
        let authentication = match &waits_on {
            Some(id) => self
                .store
                .authentication(id)
                .await?
                .filter(|a| a.user_id == record.user_id),
            None => None,
        };
        Ok(Some((id_hash, record, data, authentication)))
    }

    /// Reads the session behind `token` and the authentication it waits on; `None` when there
    /// is none or it has ended (an ended one is deleted). A sign-in whose authentication
    /// ended (denied after too many wrong answers, expired) ends with it; a step-up that
    /// ended is dropped.
    async fn load(&self, token: &str) -> Result<Option<Loaded>, ServiceError> {
        let Some((id_hash, record, mut data, raw)) = self.peek(token).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let waits_on = data.step_up.clone().or(data.authentication.clone());
        let authentication =
            raw.filter(|a| a.state_at(now).is_pending() || decided_by_phone(a, now));
        if authentication.is_none() && waits_on.is_some() {
            if data.signed_in.is_some() {
                data.step_up = None;
            } else {
                self.store.delete_session(&id_hash).await?;
                return Ok(None);
            }
        }
        let loaded = Loaded {
            id_hash,
            record,
            data,
            authentication,
        };
        if loaded.view().is_none() {
            self.store.delete_session(&loaded.id_hash).await?;
            return Ok(None);
        }
        Ok(Some(loaded))
    }

    async fn require(&self, token: &str, needs: Needs) -> Result<Loaded, ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let fits = match loaded.view().map(|v| v.stage) {
            Some(Stage::SignedIn { .. }) => true,
            Some(Stage::Enroll) => needs == Needs::SignedInOrEnrolling,
            _ => false,
        };
        if fits {
            Ok(loaded)
        } else {
            Err(DomainError::WrongStep.into())
        }
    }

    async fn save(&self, loaded: &Loaded) -> Result<(), ServiceError> {
        let json = serde_json::to_string(&loaded.data)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(self
            .store
            .update_session_data(&loaded.id_hash, &json)
            .await?)
    }

    /// Stores a new session (ending `replacing`, if any) and returns its token.
    async fn create(
        &self,
        user_id: &str,
        data: SessionData,
        authentication: Option<&Authentication>,
        replacing: Option<&str>,
    ) -> Result<PortalSession, ServiceError> {
        if let Some(old) = replacing {
            self.store.delete_session(old).await?;
        }
        let view = view_of(&data, authentication)
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let settings = self.settings().await?;
        let now = self.clock.now();
        let token = new_token();
        let record = SessionRecord {
            id_hash: hash_token(&token),
            user_id: user_id.to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: expiry(now, now, &settings, data.admin).min(data.max_until),
            data: serde_json::to_string(&data)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
        };
        self.store.create_session(&record).await?;
        Ok(PortalSession { token, view })
    }

    /// Moves a session on with a new token (the old one ends).
    async fn advance(&self, loaded: Loaded) -> Result<PortalSession, ServiceError> {
        let Loaded {
            id_hash,
            record,
            data,
            authentication,
        } = loaded;
        self.create(
            &record.user_id,
            data,
            authentication.as_ref(),
            Some(&id_hash),
        )
        .await
    }

    /// Lets a change of the user's own factors go ahead, or asks for a second factor first:
    /// a signed-in session is asked to step up (an authentication of its own); a wizard
    /// session whose user holds a factor by now is switched to it, like any sign-in.
    async fn for_change(&self, token: &str) -> Result<(Loaded, UserRecord), ServiceError> {
        let mut loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        let settings = self.settings().await?;
        let user = self.user(&loaded.record.user_id).await?;
        let (factors, _) = self.user_factors(&user).await?;
        match step_up::factor_change(&settings, &factors, loaded.data.proved_at, self.clock.now()) {
            FactorChange::Allowed => Ok((loaded, user)),
            FactorChange::ProveFirst(challenge) => {
                match loaded.authentication.take() {
                    Some(wizard) if !loaded.signed_in() => {
                        self.move_authentication(wizard, Event::Switch(challenge))
                            .await?;
                    }
                    Some(_) => {}
                    None => {
                        let started = self
                            .begin_authentication(
                                &user,
                                Origin::StepUp,
                                PORTAL_STARTER.to_owned(),
                                &ClientContext::default(),
                                StartOptions::default(),
                            )
                            .await?;
                        if started.state.is_pending() {
                            loaded.data.step_up = Some(started.id);
                            self.save(&loaded).await?;
                        }
                    }
                }
                Err(DomainError::StepUpRequired.into())
            }
        }
    }

    /// After a change of factors: every other session of the user ends (one begun before
    /// the change must not act on the new state), and a factor proved by the change itself
    /// counts as proved now.
    async fn after_change(&self, mut loaded: Loaded, proved: bool) -> Result<(), ServiceError> {
        self.store
            .delete_user_sessions_except(&loaded.record.user_id, &loaded.id_hash)
            .await?;
        if proved {
            loaded.data.proved_at = Some(self.clock.now());
            loaded.data.step_up = None;
            self.save(&loaded).await?;
        }
        Ok(())
    }

    /// An answer proved the session's authentication, or moved it on: a sign-in becomes
    /// signed in (or goes on to the wizard's remaining steps); a step-up records the proof.
    /// An approved authentication signs in once. Either way the session gets a new token.
    async fn proved(
        &self,
        mut loaded: Loaded,
        answered: Authentication,
    ) -> Result<PortalSession, ServiceError> {
        let now = self.clock.now();
        let settings = self.settings().await?;
        loaded.data.proved_at = Some(now);
        match &answered.state {
            State::Approved { via } => {
                if !self.store.consume_authentication(&answered.id, now).await? {
                    return Err(DomainError::SessionEnded.into());
                }
                if loaded.signed_in() {
                    loaded.data.step_up = None;
                } else {
                    loaded.data.signed_in = Some(*via);
                    loaded.data.authentication = None;
                    loaded.data.max_until = now + flow::session_limit_seconds(&settings, *via);
                }
                loaded.authentication = None;
            }
            // Proven: a user whose enrolment is unfinished (a PIN now required, questions
            // turned on) completes it before reaching their account.
            State::Pending(Step::Enroll) => {
                loaded.data.max_until = answered.expires_at;
                loaded.authentication = Some(answered);
            }
            _ => return Err(DomainError::WrongStep.into()),
        }
        self.advance(loaded).await
    }

    fn step_up_event(&self, user: &UserRecord, client: &ClientContext, via: Via) -> AuditEvent {
        self.succeeded(AuditAction::SignIn, user, client)
            .detail(format!("step_up {}", via.as_str()))
    }

    /// Answers the challenge the session waits on.
    async fn answer_session(
        &self,
        token: &str,
        answer: Answer,
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let Some((waiting, _, _)) = loaded.challenge() else {
            // The sign-in's authentication ended (denied, expired) between this request's
            // arrival and its turn, under a concurrent answer: nothing is left to answer.
            if let Some(ended) = loaded
                .authentication
                .as_ref()
                .filter(|a| !matches!(a.state, State::Pending(_)))
            {
                return Err(
                    DomainError::AuthenticationClosed(ended.state.name().to_owned()).into(),
                );
            }
            return Err(DomainError::WrongStep.into());
        };
        let answered = self.answer_authentication(waiting, answer, client).await?;
        if loaded.signed_in()
            && let State::Approved { via } = answered.state
        {
            let user = self.user(&loaded.record.user_id).await?;
            self.audit(self.step_up_event(&user, client, via)).await;
        }
        self.proved(loaded, answered).await
    }
}

/// The portal's operations, each on the session behind a token.
impl InProcessService {
    pub(super) async fn portal_sign_in(
        &self,
        username: &str,
        password: &str,
        next: Option<&str>,
        replacing: Option<&str>,
        client: &ClientContext,
    ) -> Result<SignInOutcome, ServiceError> {
        self.session_sign_in(Origin::Portal, username, password, next, replacing, client)
            .await
    }

    /// The password step of the admin console: an administrator only, and a second factor
    /// always (no trusted address, no bypass, no enrolment). The session it starts is an
    /// admin session, with the shorter idle timeout.
    pub async fn admin_sign_in(
        &self,
        username: &str,
        password: &str,
        next: Option<&str>,
        replacing: Option<&str>,
        client: &ClientContext,
    ) -> Result<SignInOutcome, ServiceError> {
        self.session_sign_in(Origin::Admin, username, password, next, replacing, client)
            .await
    }

    async fn session_sign_in(
        &self,
        origin: Origin,
        username: &str,
        password: &str,
        next: Option<&str>,
        replacing: Option<&str>,
        client: &ClientContext,
    ) -> Result<SignInOutcome, ServiceError> {
        let admin = origin == Origin::Admin;
        let identity = self
            .password_step_of(username, password, client, admin)
            .await?;
        let user = self.user(&identity.user_id).await?;
        if admin && self.store.admin(&user.id).await?.is_none() {
            return Err(
                twofold_engine::admin::AdminError::NotAnAdministrator(user.username).into(),
            );
        }
        let started = self
            .begin_authentication(
                &user,
                origin,
                PORTAL_STARTER.to_owned(),
                client,
                StartOptions::default(),
            )
            .await?;
        let settings = self.settings().await?;
        let now = self.clock.now();
        let mut data = SessionData {
            username: identity.username,
            language: identity.language,
            authentication: None,
            signed_in: None,
            max_until: started.expires_at,
            next: next.map(str::to_owned),
            proved_at: None,
            step_up: None,
            phone_check: None,
            app_check: None,
            admin,
        };
        let waiting = match &started.state {
            State::Approved { via } => {
                if !self.store.consume_authentication(&started.id, now).await? {
                    return Err(DomainError::SessionEnded.into());
                }
                data.signed_in = Some(*via);
                data.max_until = now + flow::session_limit_seconds(&settings, *via);
                None
            }
            State::Pending(_) => {
                data.authentication = Some(started.id.clone());
                Some(&started)
            }
            State::Denied { reason } if *reason != authentication::Reason::NotEnrolled => {
                let (factors, _) = self.user_factors(&user).await?;
                return Ok(SignInOutcome::PhoneNotReached {
                    reason: reason.as_str().to_owned(),
                    app: flow::primary_challenge(&factors) == Some(Challenge::MobileApp),
                });
            }
            _ => return Ok(SignInOutcome::ContactAdministrator),
        };
        let replacing = replacing.map(hash_token);
        let session = self
            .create(&identity.user_id, data, waiting, replacing.as_deref())
            .await?;
        Ok(SignInOutcome::Started(session))
    }

    pub(super) async fn portal_session(
        &self,
        token: &str,
    ) -> Result<Option<SessionView>, ServiceError> {
        let Some(loaded) = self.load(token).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        // Refresh the idle deadline, at most every 30 seconds to spare the store.
        if now - loaded.record.last_seen_at >= 30 {
            let settings = self.settings().await?;
            let expires = expiry(loaded.record.created_at, now, &settings, loaded.data.admin)
                .min(loaded.data.max_until);
            self.store
                .touch_session(&loaded.id_hash, now, expires)
                .await?;
        }
        Ok(loaded.view())
    }

    pub(super) async fn portal_sign_out(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let Some(loaded) = self.load(token).await? else {
            return Ok(());
        };
        self.store.delete_session(&loaded.id_hash).await?;
        let (ip, ua) = client.audit();
        let username = loaded.data.username;
        self.audit(
            self.done_by(AuditAction::SignOut, format!("user:{username}"))
                .subject(username)
                .client(ip, ua),
        )
        .await;
        Ok(())
    }

    pub(super) async fn portal_verification(
        &self,
        token: &str,
        language: Language,
    ) -> Result<Verification, ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let (waiting, challenge, asked) = loaded
            .challenge()
            .ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        let user_id = loaded.record.user_id.clone();
        let settings = self.settings().await?;
        let user = self.user(&user_id).await?;
        let (factors, token_record) = self.user_factors(&user).await?;
        let others = authentication::offered(waiting.origin, &settings, &factors, Some(challenge));
        let mut questions = Vec::new();
        let mut digits = 6;
        match challenge {
            Challenge::Oath => {
                if let Some(token) = token_record {
                    digits = token.params.digits;
                }
            }
            Challenge::SecurityQuestions => {
                let mine = self.catalogue(language).await?;
                let english = self.catalogue(Language::En).await?;
                questions = asked
                    .iter()
                    .map(|id| QuestionView {
                        id: id.clone(),
                        text: mine
                            .iter()
                            .chain(english.iter())
                            .find(|q| &q.id == id)
                            .map(|q| q.text.clone())
                            .unwrap_or_else(|| id.clone()),
                    })
                    .collect();
            }
            Challenge::PhoneCall | Challenge::Sms | Challenge::MobileApp => {}
        }
        let step = waiting.state.clone();
        Ok(Verification {
            challenge,
            questions,
            digits,
            others,
            step_up: loaded.signed_in(),
            sent_to: waiting
                .channel
                .as_deref()
                .filter(|c| *c != super::app::APP_CHANNEL)
                .map(twofold_engine::phone::masked),
            waiting: matches!(
                step,
                State::Pending(Step::PhoneCall | Step::TextReply | Step::MobileApp)
            ),
            backup_phone: factors.has_backup_phone,
            push: if step == State::Pending(Step::MobileApp) {
                Some(self.push_status(waiting).await?)
            } else {
                None
            },
        })
    }

    pub(super) async fn portal_choose_challenge(
        &self,
        token: &str,
        wanted: Challenge,
    ) -> Result<(), ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let (waiting, _, _) = loaded
            .challenge()
            .ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        self.move_authentication(waiting.clone(), Event::Switch(wanted))
            .await?;
        Ok(())
    }

    pub(super) async fn portal_verify_oath(
        &self,
        token: &str,
        code: &str,
        pin: Option<&str>,
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let answer = Answer::Otp {
            code: code.to_owned(),
            pin: pin.map(str::to_owned),
        };
        self.answer_session(token, answer, client).await
    }

    pub(super) async fn portal_answer_questions(
        &self,
        token: &str,
        given: &[(String, String)],
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        self.answer_session(token, Answer::SecurityAnswers(given.to_vec()), client)
            .await
    }

    pub(super) async fn portal_complete_enrollment(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let (mut loaded, _user) = self.for_change(token).await?;
        let wizard = match loaded.authentication.take() {
            Some(a) if !loaded.signed_in() && a.state == State::Pending(Step::Enroll) => a,
            _ => return Err(DomainError::WrongStep.into()),
        };
        let user_id = loaded.record.user_id.clone();
        self.finish_enrollment(&user_id, client).await?;
        let done = self
            .move_authentication(wizard, Event::EnrollmentCompleted)
            .await?;
        self.proved(loaded, done).await
    }
}

/// Session-scoped operations of [`MfaService`] for the portal in this process, and for the
/// portal RPC (which calls them with the token the remote portal relayed).
impl InProcessService {
    pub(super) async fn portal_factors(&self, token: &str) -> Result<FactorsView, ServiceError> {
        let loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        self.factors_of(&loaded.record.user_id).await
    }

    pub(super) async fn portal_profile(&self, token: &str) -> Result<Profile, ServiceError> {
        let loaded = self.require(token, Needs::SignedIn).await?;
        self.profile_of(&loaded.record.user_id).await
    }

    pub(super) async fn portal_set_language(
        &self,
        token: &str,
        language: Language,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let mut loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        self.change_language(&loaded.record.user_id, language, client)
            .await?;
        loaded.data.language = Some(language);
        self.save(&loaded).await
    }

    pub(super) async fn portal_pending_software_oath(
        &self,
        token: &str,
    ) -> Result<Option<SoftwareEnrollment>, ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.pending_software(&loaded.record.user_id).await
    }

    pub(super) async fn portal_begin_software_oath(
        &self,
        token: &str,
    ) -> Result<SoftwareEnrollment, ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.begin_software(&loaded.record.user_id).await
    }

    pub(super) async fn portal_confirm_software_oath(
        &self,
        token: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.confirm_software(&loaded.record.user_id, code, client)
            .await?;
        self.after_change(loaded, true).await
    }

    pub(super) async fn portal_associate_hardware_token(
        &self,
        token: &str,
        serial: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.associate_hardware(&loaded.record.user_id, serial, code, client)
            .await?;
        self.after_change(loaded, true).await
    }

    pub(super) async fn portal_remove_oath_token(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.remove_token(&loaded.record.user_id, client).await?;
        self.after_change(loaded, false).await
    }

    pub(super) async fn portal_set_pin(
        &self,
        token: &str,
        pin: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.change_pin(&loaded.record.user_id, pin, client).await?;
        self.after_change(loaded, false).await
    }

    pub(super) async fn portal_set_security_answers(
        &self,
        token: &str,
        answers: &[(String, String)],
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.change_answers(&loaded.record.user_id, answers, client)
            .await?;
        self.after_change(loaded, false).await
    }

    pub(super) async fn portal_start_bypass(
        &self,
        token: &str,
        seconds: Option<u32>,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.begin_bypass(&loaded.record.user_id, seconds, client)
            .await
    }
}

/// The portal's operations for calls and texts: the page that waits, the backup phone, and
/// proving a new phone number.
impl InProcessService {
    /// Where the session's call or text stands: still waiting, approved (the session moves
    /// on), or ended without approval (the sign-in ends; a step-up is dropped).
    pub(super) async fn portal_phone_wait(
        &self,
        token: &str,
        finish: bool,
    ) -> Result<PhoneWait, ServiceError> {
        let Some((id_hash, record, mut data, raw)) = self.peek(token).await? else {
            return Err(DomainError::SessionEnded.into());
        };
        let Some(a) = raw else {
            return Err(DomainError::WrongStep.into());
        };
        let now = self.clock.now();
        match a.state_at(now) {
            State::Pending(step) if step.out_of_band() => Ok(PhoneWait::Waiting {
                step: step.name().to_owned(),
                sent_to: a
                    .channel
                    .as_deref()
                    .filter(|c| *c != super::app::APP_CHANNEL)
                    .map(twofold_engine::phone::masked),
            }),
            State::Pending(_) => Err(DomainError::WrongStep.into()),
            _ if !finish => Ok(PhoneWait::Decided),
            State::Approved { .. } => {
                let loaded = Loaded {
                    id_hash,
                    record,
                    data,
                    authentication: None,
                };
                if loaded.signed_in() {
                    let user = self.user(&loaded.record.user_id).await?;
                    if let State::Approved { via } = a.state {
                        self.audit(self.step_up_event(&user, &ClientContext::default(), via))
                            .await;
                    }
                }
                self.proved(loaded, a).await.map(PhoneWait::Done)
            }
            ended => {
                let reason = match &ended {
                    State::Denied { reason } => Some(reason.as_str().to_owned()),
                    _ => None,
                };
                if data.signed_in.is_some() {
                    data.step_up = None;
                    let json = serde_json::to_string(&data)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?;
                    self.store.update_session_data(&id_hash, &json).await?;
                } else {
                    self.store.delete_session(&id_hash).await?;
                }
                Ok(PhoneWait::Ended {
                    state: ended.name().to_owned(),
                    reason,
                })
            }
        }
    }

    /// Sends the session's call or text again, to the user's backup phone.
    pub(super) async fn portal_use_backup_phone(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let Some(a) = loaded.authentication.clone() else {
            return Err(DomainError::WrongStep.into());
        };
        if !matches!(&a.state, State::Pending(step) if step.goes_to_phone()) {
            return Err(DomainError::WrongStep.into());
        }
        let user = self.user(&a.user_id).await?;
        let settings = self.settings_now().await?;
        let moved = Authentication {
            version: a.version + 1,
            ..a.clone()
        };
        self.move_to_phone(a, moved, &user, &settings, &PhoneTarget::Backup, client)
            .await?;
        Ok(())
    }

    /// Starts proving new phone numbers (the wizard's phone step, or a change on the account
    /// page): a call or a text (`method`) to the new primary number. They are stored, with
    /// the method, once it is answered ([`InProcessService::portal_phone_check`]).
    pub(super) async fn portal_begin_phone_check(
        &self,
        token: &str,
        method: Method,
        primary: &PhoneInput,
        backup: Option<&PhoneInput>,
        client: &ClientContext,
    ) -> Result<PhoneCheck, ServiceError> {
        let (mut loaded, user) = self.for_change(token).await?;
        let settings = self.settings_now().await?;
        let challenge = match method {
            Method::PhoneCall => Challenge::PhoneCall,
            Method::Sms => Challenge::Sms,
            Method::Oath | Method::MobileApp => {
                return Err(DomainError::InvalidRequest(
                    "a phone is proved by a call or a text".into(),
                )
                .into());
            }
        };
        // The user's own method, or one they may choose: never another when they may not.
        let own = user.method.as_deref() == Some(super::factors::method_tag(method));
        let chosen = settings.allow_method_selection
            && flow::enrollable_methods(&settings).contains(&method);
        if !own && !chosen {
            return Err(DomainError::InvalidRequest("that method is not offered".into()).into());
        }
        let region = Some(settings.default_region.as_str()).filter(|r| !r.is_empty());
        let primary =
            twofold_engine::phone::parse(&primary.number, primary.extension.as_deref(), region)
                .map_err(DomainError::from)?;
        let backup = match backup.filter(|b| !b.number.trim().is_empty()) {
            Some(b) => Some(
                twofold_engine::phone::parse(&b.number, b.extension.as_deref(), region)
                    .map_err(DomainError::from)?,
            ),
            None => None,
        };
        let started = self
            .begin_authentication(
                &user,
                Origin::PhoneCheck,
                PORTAL_STARTER.to_owned(),
                client,
                StartOptions {
                    wanted: Some(challenge),
                    context: None,
                    phone: PhoneTarget::Number(primary.clone()),
                },
            )
            .await?;
        let view = phone_check_view(&started, &primary.number);
        if started.state.is_pending() {
            loaded.data.phone_check = Some(PendingPhones {
                authentication: started.id,
                method,
                primary,
                backup,
            });
            self.save(&loaded).await?;
        }
        Ok(view)
    }

    /// Where the session's phone check stands; once the call or text is answered, the
    /// numbers and the method are stored (and the session counts as having proved a second
    /// factor).
    pub(super) async fn portal_phone_check(
        &self,
        token: &str,
        finish: bool,
        client: &ClientContext,
    ) -> Result<PhoneCheck, ServiceError> {
        let mut loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        let Some(pending) = loaded.data.phone_check.clone() else {
            return Ok(PhoneCheck::None);
        };
        let a = self
            .store
            .authentication(&pending.authentication)
            .await?
            .filter(|a| a.user_id == loaded.record.user_id && a.origin == Origin::PhoneCheck)
            .ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        let view = phone_check_view(&a, &pending.primary.number);
        // Asked without `finish` (the page's script): where it stands, nothing stored.
        if !finish {
            return Ok(match a.state_at(self.clock.now()) {
                State::Pending(_) => view,
                State::Expired => PhoneCheck::Failed {
                    reason: "expired".into(),
                },
                _ => view,
            });
        }
        if !matches!(a.state, State::Approved { .. }) {
            if !a.state_at(self.clock.now()).is_pending() {
                loaded.data.phone_check = None;
                self.save(&loaded).await?;
            }
            return Ok(view);
        }
        if !self
            .store
            .consume_authentication(&a.id, self.clock.now())
            .await?
        {
            return Err(DomainError::SessionEnded.into());
        }
        let user = self.user(&loaded.record.user_id).await?;
        self.store_phones(
            &user,
            Some(pending.method),
            &pending.primary,
            pending.backup.as_ref(),
            client,
        )
        .await?;
        loaded.data.phone_check = None;
        self.after_change(loaded, true).await?;
        Ok(PhoneCheck::Saved)
    }
}

impl InProcessService {
    /// The code of the text a phone check sent (one-way texts), typed in the page.
    pub(super) async fn portal_phone_check_code(
        &self,
        token: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<PhoneCheck, ServiceError> {
        let loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        let Some(pending) = loaded.data.phone_check.clone() else {
            return Ok(PhoneCheck::None);
        };
        let a = self
            .store
            .authentication(&pending.authentication)
            .await?
            .filter(|a| a.user_id == loaded.record.user_id && a.origin == Origin::PhoneCheck)
            .ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        self.answer_authentication(&a, Answer::TextCode(code.to_owned()), client)
            .await?;
        self.portal_phone_check(token, true, client).await
    }
}

/// The view of a phone check's authentication.
fn phone_check_view(a: &Authentication, number: &str) -> PhoneCheck {
    match &a.state {
        State::Pending(step) => PhoneCheck::Waiting {
            step: step.name().to_owned(),
            sent_to: twofold_engine::phone::display(number),
        },
        State::Approved { .. } => PhoneCheck::Saved,
        State::Denied { reason } => PhoneCheck::Failed {
            reason: reason.as_str().to_owned(),
        },
        other => PhoneCheck::Failed {
            reason: other.name().to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_at_idle_timeout_or_maximum_lifetime() {
        let settings = Settings {
            session_idle_minutes: 10,
            session_max_hours: 1,
            ..Settings::default()
        };
        assert_eq!(expiry(0, 100, &settings, false), 700);
        assert_eq!(
            expiry(0, 3500, &settings, false),
            3600,
            "capped by the maximum lifetime"
        );
    }

    #[test]
    fn a_session_stored_before_authentications_held_the_stage_does_not_read() {
        // Such a session kept its own stage; it ends (the user signs in again) rather than
        // be read as something it was not.
        let json = r#"{"username":"alice","language":"fr","stage":"verify","challenge":"oath","asked":[],"max_until":99,"next":"/account"}"#;
        assert!(serde_json::from_str::<SessionData>(json).is_err());
        let json = r#"{"username":"alice","authentication":"a1","max_until":99}"#;
        let data: SessionData = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(data.authentication.as_deref(), Some("a1"));
        assert_eq!(data.signed_in, None);
    }
}
