//! The portal's sessions, owned by the server.
//!
//! A portal, in the server or on its own host over the SDK, holds nothing but an opaque
//! session token: the cookie's value. The server keeps everything the session stands for:
//! whose it is, where the sign-in stands ([`Stage`]), and when a second factor was last
//! proved in it. Every operation takes the token, derives the user and the stage from it and
//! checks that the step is allowed now; only the server creates and advances sessions, and
//! only after it has verified the step. So no portal, local or remote, can write a session's
//! stage, act for a user it holds no session of, or skip a step.
//!
//! Changing one's own factors needs a second factor proved within `step_up_minutes`
//! (see [`twofold_engine::step_up`]): a session that has not proved one recently is asked
//! for it first ([`DomainError::StepUpRequired`]). A wizard session begun with the password
//! alone is re-checked at every step: once the user holds a factor (enrolled elsewhere in the
//! meantime), it must prove it like any sign-in. A change of factors ends every other session
//! of the user.

use super::factors::{FactorsView, QuestionView, SoftwareEnrollment};
use super::{ClientContext, InProcessService, MfaService, Profile, ServiceError};
use crate::store::{SessionRecord, UserRecord};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
use twofold_engine::flow::{self, Challenge, NextStep, Via};
use twofold_engine::step_up::{self, FactorChange};
use twofold_engine::{DomainError, Language, Settings, UnixTime};

/// How long a session may wait between the password and the second factor (enrolment
/// included: installing an authenticator app takes a few minutes).
pub const PRE_AUTH_SECONDS: i64 = 30 * 60;

/// Where a session stands: signed in, or between the password and the second factor.
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

/// A signed-in session asked to prove a second factor again before a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUp {
    pub challenge: Challenge,
    #[serde(default)]
    pub asked: Vec<String>,
}

/// What the server keeps in a session (JSON in the store).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionData {
    username: String,
    #[serde(default)]
    language: Option<Language>,
    #[serde(flatten)]
    stage: Stage,
    /// The session ends then at the latest (shorter for the OATH fallback and before the
    /// second factor).
    max_until: i64,
    /// Where to go once signed in (a local path, checked by the portal).
    #[serde(default)]
    next: Option<String>,
    /// When a second factor was last proved in this session.
    #[serde(default)]
    proved_at: Option<UnixTime>,
    #[serde(default)]
    step_up: Option<StepUp>,
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
}

/// What the second-factor page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub challenge: Challenge,
    /// For security questions: the ones drawn (kept in the session: reloading does not
    /// draw again).
    pub questions: Vec<QuestionView>,
    /// For an OATH code: how many digits.
    pub digits: u8,
    /// The other challenges the user may switch to.
    pub others: Vec<Challenge>,
    /// A signed-in user confirming a change, not a sign-in.
    pub step_up: bool,
}

/// What the store keeps in place of a session token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_token() -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// When a session last seen `now` ends: after the idle timeout, and never after the
/// maximum lifetime.
pub fn expiry(created_at: i64, now: i64, settings: &Settings) -> i64 {
    let idle = now + i64::from(settings.session_idle_minutes) * 60;
    let max = created_at + i64::from(settings.session_max_hours) * 3600;
    idle.min(max)
}

/// A session as read for one operation.
struct Loaded {
    id_hash: String,
    record: SessionRecord,
    data: SessionData,
}

impl Loaded {
    fn view(&self) -> SessionView {
        view_of(&self.data)
    }
}

fn view_of(data: &SessionData) -> SessionView {
    SessionView {
        username: data.username.clone(),
        language: data.language,
        stage: data.stage.clone(),
        next: data.next.clone(),
        step_up: match data.stage {
            Stage::SignedIn { .. } => data.step_up.as_ref().map(|s| s.challenge),
            _ => None,
        },
    }
}

/// Which sessions an operation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    SignedIn,
    SignedInOrEnrolling,
}

impl InProcessService {
    /// Reads the session behind `token`; `None` when there is none or it has ended (an
    /// ended one is deleted).
    async fn load(&self, token: &str) -> Result<Option<Loaded>, ServiceError> {
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
        let valid = now < expiry(record.created_at, record.last_seen_at, &settings)
            && now < record.expires_at
            && data.as_ref().is_some_and(|d| now < d.max_until);
        match data {
            Some(data) if valid => Ok(Some(Loaded {
                id_hash,
                record,
                data,
            })),
            _ => {
                self.store.delete_session(&id_hash).await?;
                Ok(None)
            }
        }
    }

    async fn require(&self, token: &str, needs: Needs) -> Result<Loaded, ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let fits = matches!(
            (&loaded.data.stage, needs),
            (Stage::SignedIn { .. }, _) | (Stage::Enroll, Needs::SignedInOrEnrolling)
        );
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
        replacing: Option<&str>,
    ) -> Result<PortalSession, ServiceError> {
        if let Some(old) = replacing {
            self.store.delete_session(old).await?;
        }
        let settings = self.settings().await?;
        let now = self.clock.now();
        let token = new_token();
        let record = SessionRecord {
            id_hash: hash_token(&token),
            user_id: user_id.to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: expiry(now, now, &settings).min(data.max_until),
            data: serde_json::to_string(&data)
                .map_err(|e| ServiceError::Internal(e.to_string()))?,
        };
        self.store.create_session(&record).await?;
        Ok(PortalSession {
            token,
            view: view_of(&data),
        })
    }

    /// Moves a session on with a new token (the old one ends).
    async fn advance(&self, loaded: Loaded) -> Result<PortalSession, ServiceError> {
        let Loaded {
            id_hash,
            record,
            data,
        } = loaded;
        self.create(&record.user_id, data, Some(&id_hash)).await
    }

    /// Lets a change of the user's own factors go ahead, or asks for a second factor first:
    /// a signed-in session is asked to step up; a wizard session whose user holds a factor
    /// by now goes to the second-factor page like any sign-in.
    async fn for_change(&self, token: &str) -> Result<(Loaded, UserRecord), ServiceError> {
        let mut loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        let settings = self.settings().await?;
        let user = self.user(&loaded.record.user_id).await?;
        let (factors, _) = self.user_factors(&user).await?;
        match step_up::factor_change(&settings, &factors, loaded.data.proved_at, self.clock.now()) {
            FactorChange::Allowed => Ok((loaded, user)),
            FactorChange::ProveFirst(challenge) => {
                match loaded.data.stage {
                    Stage::Enroll => {
                        loaded.data.stage = Stage::Verify {
                            challenge,
                            asked: Vec::new(),
                        };
                    }
                    _ => {
                        if loaded.data.step_up.is_none() {
                            loaded.data.step_up = Some(StepUp {
                                challenge,
                                asked: Vec::new(),
                            });
                        }
                    }
                }
                self.save(&loaded).await?;
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

    /// The challenge a session answers now and the question ids drawn for it.
    fn challenge_of(data: &SessionData) -> Option<(Challenge, Vec<String>)> {
        match (&data.stage, &data.step_up) {
            (Stage::Verify { challenge, asked }, _) => Some((*challenge, asked.clone())),
            (Stage::SignedIn { .. }, Some(s)) => Some((s.challenge, s.asked.clone())),
            _ => None,
        }
    }

    fn set_challenge(data: &mut SessionData, challenge: Challenge, asked: Vec<String>) {
        match &mut data.stage {
            Stage::Verify { .. } => data.stage = Stage::Verify { challenge, asked },
            _ => data.step_up = Some(StepUp { challenge, asked }),
        }
    }

    async fn others(
        &self,
        user_id: &str,
        current: Challenge,
        step_up: bool,
    ) -> Result<Vec<Challenge>, ServiceError> {
        let settings = self.settings().await?;
        let user = self.user(user_id).await?;
        let (factors, _) = self.user_factors(&user).await?;
        let mut choices = if step_up {
            step_up::provable(&settings, &factors)
        } else {
            let mut c = flow::fallbacks(&settings, &factors, Some(current));
            if let Some(primary) = flow::primary_challenge(&factors)
                && !c.contains(&primary)
            {
                c.insert(0, primary);
            }
            c
        };
        choices.retain(|c| *c != current);
        Ok(choices)
    }

    /// A second factor was proved: a sign-in moves on (to the wizard's remaining steps, or
    /// signed in); a step-up records the proof. Either way the session gets a new token.
    async fn proved(&self, mut loaded: Loaded, via: Via) -> Result<PortalSession, ServiceError> {
        let now = self.clock.now();
        let settings = self.settings().await?;
        loaded.data.proved_at = Some(now);
        loaded.data.step_up = None;
        if let Stage::Verify { .. } = loaded.data.stage {
            // Proven: a user whose enrolment is unfinished (a PIN now required, questions
            // turned on) completes it before reaching their account.
            let unfinished = self
                .factors_of(&loaded.record.user_id)
                .await?
                .next_enrollment
                .is_some();
            if unfinished {
                loaded.data.stage = Stage::Enroll;
                loaded.data.max_until = now + PRE_AUTH_SECONDS;
            } else {
                loaded.data.stage = Stage::SignedIn { via };
                loaded.data.max_until = now + flow::session_limit_seconds(&settings, via);
            }
        }
        self.advance(loaded).await
    }

    fn step_up_event(&self, user: &UserRecord, client: &ClientContext, via: Via) -> AuditEvent {
        self.event(AuditAction::SignIn, AuditOutcome::Success, user, client)
            .detail(format!("step_up {}", via.as_str()))
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
        let progress = self.sign_in_progress(username, password, client).await?;
        let identity = progress.identity;
        let settings = self.settings().await?;
        let now = self.clock.now();
        let (stage, max_until) = match progress.next {
            NextStep::SignedIn(via) => (
                Stage::SignedIn { via },
                now + flow::session_limit_seconds(&settings, via),
            ),
            NextStep::Enroll => (Stage::Enroll, now + PRE_AUTH_SECONDS),
            NextStep::Verify(challenge) => (
                Stage::Verify {
                    challenge,
                    asked: Vec::new(),
                },
                now + PRE_AUTH_SECONDS,
            ),
            NextStep::ContactAdministrator => return Ok(SignInOutcome::ContactAdministrator),
        };
        let data = SessionData {
            username: identity.username,
            language: identity.language,
            stage,
            max_until,
            next: next.map(str::to_owned),
            proved_at: None,
            step_up: None,
        };
        let replacing = replacing.map(hash_token);
        let session = self
            .create(&identity.user_id, data, replacing.as_deref())
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
            let expires =
                expiry(loaded.record.created_at, now, &settings).min(loaded.data.max_until);
            self.store
                .touch_session(&loaded.id_hash, now, expires)
                .await?;
        }
        Ok(Some(loaded.view()))
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
            AuditEvent::new(
                self.clock.now(),
                AuditAction::SignOut,
                AuditOutcome::Success,
                format!("user:{username}"),
            )
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
        let mut loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let step_up = matches!(loaded.data.stage, Stage::SignedIn { .. });
        let (challenge, mut asked) =
            Self::challenge_of(&loaded.data).ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        let user_id = loaded.record.user_id.clone();
        let others = self.others(&user_id, challenge, step_up).await?;
        let mut questions = Vec::new();
        let mut digits = 6;
        match challenge {
            Challenge::Oath => {
                if let Some(token) = self.factors_of(&user_id).await?.token {
                    digits = token.params.digits;
                }
            }
            Challenge::SecurityQuestions => {
                if asked.is_empty() {
                    let drawn = self.draw_questions(&user_id).await?;
                    asked = drawn.iter().map(|q| q.id.clone()).collect();
                    Self::set_challenge(&mut loaded.data, challenge, asked.clone());
                    self.save(&loaded).await?;
                }
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
        }
        Ok(Verification {
            challenge,
            questions,
            digits,
            others,
            step_up,
        })
    }

    pub(super) async fn portal_choose_challenge(
        &self,
        token: &str,
        wanted: Challenge,
    ) -> Result<(), ServiceError> {
        let mut loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let step_up = matches!(loaded.data.stage, Stage::SignedIn { .. });
        let (current, asked) =
            Self::challenge_of(&loaded.data).ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        let offered = self
            .others(&loaded.record.user_id, current, step_up)
            .await?;
        if !offered.contains(&wanted) {
            return Err(DomainError::WrongStep.into());
        }
        // Questions drawn once stay drawn for this sign-in: switching back and forth must
        // not offer a new, perhaps easier, draw.
        Self::set_challenge(&mut loaded.data, wanted, asked);
        self.save(&loaded).await
    }

    pub(super) async fn portal_verify_oath(
        &self,
        token: &str,
        code: &str,
        pin: Option<&str>,
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        match Self::challenge_of(&loaded.data) {
            Some((Challenge::Oath, _)) => {}
            _ => return Err(DomainError::WrongStep.into()),
        }
        let step_up = matches!(loaded.data.stage, Stage::SignedIn { .. });
        let user_id = loaded.record.user_id.clone();
        // Held to this node's budget per user and per browser address.
        self.limit_attempts(&user_id, client.ip)?;
        let via = self.verify_oath_code(&user_id, code, pin, client).await?;
        if step_up {
            let user = self.user(&user_id).await?;
            self.audit(self.step_up_event(&user, client, via)).await;
        }
        self.proved(loaded, via).await
    }

    pub(super) async fn portal_answer_questions(
        &self,
        token: &str,
        given: &[(String, String)],
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let asked = match Self::challenge_of(&loaded.data) {
            Some((Challenge::SecurityQuestions, asked)) if !asked.is_empty() => asked,
            _ => return Err(DomainError::WrongStep.into()),
        };
        let step_up = matches!(loaded.data.stage, Stage::SignedIn { .. });
        // The answers to the questions the server drew, in its order; anything else the
        // form carried is ignored.
        let answers: Vec<(String, String)> = asked
            .iter()
            .map(|q| {
                let answer = given
                    .iter()
                    .find(|(id, _)| id == q)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default();
                (q.clone(), answer)
            })
            .collect();
        let user_id = loaded.record.user_id.clone();
        self.limit_attempts(&user_id, client.ip)?;
        let via = self
            .check_answers(&user_id, &asked, &answers, client)
            .await?;
        if step_up {
            let user = self.user(&user_id).await?;
            self.audit(self.step_up_event(&user, client, via)).await;
        }
        self.proved(loaded, via).await
    }

    pub(super) async fn portal_complete_enrollment(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let (mut loaded, _user) = self.for_change(token).await?;
        if loaded.data.stage != Stage::Enroll {
            return Err(DomainError::WrongStep.into());
        }
        let user_id = loaded.record.user_id.clone();
        self.finish_enrollment(&user_id, client).await?;
        let settings = self.settings().await?;
        loaded.data.stage = Stage::SignedIn {
            via: Via::Enrollment,
        };
        loaded.data.max_until =
            self.clock.now() + flow::session_limit_seconds(&settings, Via::Enrollment);
        self.advance(loaded).await
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
        assert_eq!(expiry(0, 100, &settings), 700);
        assert_eq!(
            expiry(0, 3500, &settings),
            3600,
            "capped by the maximum lifetime"
        );
    }

    #[test]
    fn stored_sessions_of_the_previous_shape_still_read() {
        let json = r#"{"username":"alice","language":"fr","stage":"verify","challenge":"oath","asked":[],"max_until":99,"next":"/account"}"#;
        let data: SessionData = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(data.proved_at, None);
        assert!(matches!(data.stage, Stage::Verify { .. }));
    }
}
