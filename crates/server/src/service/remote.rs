//! The portal on its own host: `MfaService` over the Web Service SDK.
//!
//! The portal's operations travel as [`PortalCall`]s to `POST /sdk/v1/portal/rpc`, which
//! only a service account in the `portal` role may call. The server answers them with the
//! same session-scoped operations a local portal uses: the portal relays the visitor's
//! session token, and the server derives the user and the step from it, creates and advances
//! sessions itself, and names the actor from its own records. The portal relays the
//! browser's address and user agent (it is the browser's proxy, and trusted as one). Domain
//! errors come back as they are, so both portals say the same things. This endpoint is the
//! portal's own protocol, versioned with Twofold, not part of the SDK's stable contract.

use super::{
    ClientContext, FactorsView, InProcessService, MfaService, PortalSession, Profile, QuestionView,
    ServiceError, SessionView, SignInOutcome, SoftwareEnrollment, Verification,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use twofold_engine::flow::Challenge;
use twofold_engine::{DomainError, Language, Settings, UnixTime};
use twofold_sdk::client::{SdkClient, SdkError};

/// One operation of the portal. `session` is the visitor's session token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum PortalCall {
    Settings,
    Ready,
    QuestionCatalogue {
        language: Language,
    },
    SignIn {
        username: String,
        password: String,
        next: Option<String>,
        replacing: Option<String>,
        client: ClientContext,
    },
    Session {
        session: String,
    },
    SignOut {
        session: String,
        client: ClientContext,
    },
    Verification {
        session: String,
        language: Language,
    },
    ChooseChallenge {
        session: String,
        challenge: Challenge,
    },
    VerifyOath {
        session: String,
        code: String,
        pin: Option<String>,
        client: ClientContext,
    },
    AnswerSecurityQuestions {
        session: String,
        answers: Vec<(String, String)>,
        client: ClientContext,
    },
    Factors {
        session: String,
    },
    Profile {
        session: String,
    },
    SetLanguage {
        session: String,
        language: Language,
        client: ClientContext,
    },
    PendingSoftwareOath {
        session: String,
    },
    BeginSoftwareOath {
        session: String,
    },
    ConfirmSoftwareOath {
        session: String,
        code: String,
        client: ClientContext,
    },
    AssociateHardwareToken {
        session: String,
        serial: String,
        code: String,
        client: ClientContext,
    },
    RemoveOathToken {
        session: String,
        client: ClientContext,
    },
    SetPin {
        session: String,
        pin: String,
        client: ClientContext,
    },
    SetSecurityAnswers {
        session: String,
        answers: Vec<(String, String)>,
        client: ClientContext,
    },
    CompleteEnrollment {
        session: String,
        client: ClientContext,
    },
    StartBypass {
        session: String,
        seconds: Option<u32>,
        client: ClientContext,
    },
}

/// The answer to a [`PortalCall`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalReply {
    Settings(Box<Settings>),
    SignIn(SignInOutcome),
    Session(Option<SessionView>),
    Verification(Verification),
    /// The session moved on: its new token.
    Moved(PortalSession),
    Profile(Profile),
    Factors(Box<FactorsView>),
    Questions(Vec<QuestionView>),
    Enrollment(SoftwareEnrollment),
    PendingEnrollment(Option<SoftwareEnrollment>),
    Time(UnixTime),
    Done,
    /// A domain error, as the in-process service raised it.
    Refused(DomainError),
}

impl PortalReply {
    /// The kind of reply, for messages: a reply may hold a seed, so it is never printed.
    fn kind(&self) -> &'static str {
        match self {
            PortalReply::Settings(_) => "settings",
            PortalReply::SignIn(_) => "sign_in",
            PortalReply::Session(_) => "session",
            PortalReply::Verification(_) => "verification",
            PortalReply::Moved(_) => "moved",
            PortalReply::Profile(_) => "profile",
            PortalReply::Factors(_) => "factors",
            PortalReply::Questions(_) => "questions",
            PortalReply::Enrollment(_) => "enrollment",
            PortalReply::PendingEnrollment(_) => "pending_enrollment",
            PortalReply::Time(_) => "time",
            PortalReply::Done => "done",
            PortalReply::Refused(_) => "refused",
        }
    }
}

/// Answers a call with the in-process service (the server side of the RPC). The actor of
/// every change is the session's user (or, for sign-ins, the portal): nothing in the call
/// can name another.
pub async fn dispatch(
    service: &InProcessService,
    call: PortalCall,
) -> Result<PortalReply, ServiceError> {
    use PortalCall as C;
    use PortalReply as R;
    let s: &dyn MfaService = service;
    let result = match call {
        C::Settings => s.settings().await.map(|x| R::Settings(Box::new(x))),
        C::Ready => s.ready().await.map(|()| R::Done),
        C::QuestionCatalogue { language } => s.question_catalogue(language).await.map(R::Questions),
        C::SignIn {
            username,
            password,
            next,
            replacing,
            client,
        } => s
            .sign_in(
                &username,
                &password,
                next.as_deref(),
                replacing.as_deref(),
                &client,
            )
            .await
            .map(R::SignIn),
        C::Session { session } => s.session(&session).await.map(R::Session),
        C::SignOut { session, client } => s.sign_out(&session, &client).await.map(|()| R::Done),
        C::Verification { session, language } => s
            .verification(&session, language)
            .await
            .map(R::Verification),
        C::ChooseChallenge { session, challenge } => s
            .choose_challenge(&session, challenge)
            .await
            .map(|()| R::Done),
        C::VerifyOath {
            session,
            code,
            pin,
            client,
        } => s
            .verify_oath(&session, &code, pin.as_deref(), &client)
            .await
            .map(R::Moved),
        C::AnswerSecurityQuestions {
            session,
            answers,
            client,
        } => s
            .answer_security_questions(&session, &answers, &client)
            .await
            .map(R::Moved),
        C::Factors { session } => s.factors(&session).await.map(|f| R::Factors(Box::new(f))),
        C::Profile { session } => s.profile(&session).await.map(R::Profile),
        C::SetLanguage {
            session,
            language,
            client,
        } => s
            .set_language(&session, language, &client)
            .await
            .map(|()| R::Done),
        C::PendingSoftwareOath { session } => s
            .pending_software_oath(&session)
            .await
            .map(R::PendingEnrollment),
        C::BeginSoftwareOath { session } => {
            s.begin_software_oath(&session).await.map(R::Enrollment)
        }
        C::ConfirmSoftwareOath {
            session,
            code,
            client,
        } => s
            .confirm_software_oath(&session, &code, &client)
            .await
            .map(|()| R::Done),
        C::AssociateHardwareToken {
            session,
            serial,
            code,
            client,
        } => s
            .associate_hardware_token(&session, &serial, &code, &client)
            .await
            .map(|()| R::Done),
        C::RemoveOathToken { session, client } => s
            .remove_oath_token(&session, &client)
            .await
            .map(|()| R::Done),
        C::SetPin {
            session,
            pin,
            client,
        } => s.set_pin(&session, &pin, &client).await.map(|()| R::Done),
        C::SetSecurityAnswers {
            session,
            answers,
            client,
        } => s
            .set_security_answers(&session, &answers, &client)
            .await
            .map(|()| R::Done),
        C::CompleteEnrollment { session, client } => {
            s.complete_enrollment(&session, &client).await.map(R::Moved)
        }
        C::StartBypass {
            session,
            seconds,
            client,
        } => s
            .start_bypass(&session, seconds, &client)
            .await
            .map(R::Time),
    };
    match result {
        Ok(reply) => Ok(reply),
        Err(ServiceError::Domain(e)) => Ok(R::Refused(e)),
        Err(other) => Err(other),
    }
}

/// The portal's service when it runs on its own host.
pub struct RemoteService {
    client: SdkClient,
    settings_cache: RwLock<Option<(Instant, Settings)>>,
}

impl RemoteService {
    pub fn new(client: SdkClient) -> Self {
        Self {
            client,
            settings_cache: RwLock::new(None),
        }
    }

    async fn call(&self, call: PortalCall) -> Result<PortalReply, ServiceError> {
        match self
            .client
            .json::<PortalReply, _>(reqwest_post(), "portal/rpc", Some(&call))
            .await
        {
            Ok(PortalReply::Refused(e)) => Err(ServiceError::Domain(e)),
            Ok(reply) => Ok(reply),
            Err(SdkError::Unavailable(m)) => Err(ServiceError::Unavailable(m)),
            Err(SdkError::Problem(p)) if p.status == 503 => Err(ServiceError::Unavailable(p.code)),
            Err(e) => Err(ServiceError::Internal(e.to_string())),
        }
    }
}

fn reqwest_post() -> twofold_sdk::client::HttpMethod {
    twofold_sdk::client::HttpMethod::POST
}

fn unexpected(reply: PortalReply) -> ServiceError {
    ServiceError::Internal(format!(
        "unexpected answer from the MFA server: a {} reply",
        reply.kind()
    ))
}

macro_rules! expect {
    ($self:ident, $call:expr, $pattern:pat => $value:expr) => {
        match $self.call($call).await? {
            $pattern => Ok($value),
            other => Err(unexpected(other)),
        }
    };
}

/// How long the portal reuses the server's settings.
const SETTINGS_TTL: Duration = Duration::from_secs(2);

fn owned(token: &str) -> String {
    token.to_owned()
}

#[async_trait]
impl MfaService for RemoteService {
    async fn settings(&self) -> Result<Settings, ServiceError> {
        if let Some((at, settings)) = self.settings_cache.read().await.as_ref()
            && at.elapsed() < SETTINGS_TTL
        {
            return Ok(settings.clone());
        }
        let settings: Settings =
            expect!(self, PortalCall::Settings, PortalReply::Settings(s) => *s)?;
        *self.settings_cache.write().await = Some((Instant::now(), settings.clone()));
        Ok(settings)
    }
    async fn ready(&self) -> Result<(), ServiceError> {
        expect!(self, PortalCall::Ready, PortalReply::Done => ())
    }
    async fn question_catalogue(
        &self,
        language: Language,
    ) -> Result<Vec<QuestionView>, ServiceError> {
        expect!(self, PortalCall::QuestionCatalogue { language }, PortalReply::Questions(q) => q)
    }
    async fn sign_in(
        &self,
        username: &str,
        password: &str,
        next: Option<&str>,
        replacing: Option<&str>,
        client: &ClientContext,
    ) -> Result<SignInOutcome, ServiceError> {
        let call = PortalCall::SignIn {
            username: username.to_owned(),
            password: password.to_owned(),
            next: next.map(str::to_owned),
            replacing: replacing.map(str::to_owned),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::SignIn(o) => o)
    }
    async fn session(&self, token: &str) -> Result<Option<SessionView>, ServiceError> {
        expect!(self, PortalCall::Session { session: owned(token) }, PortalReply::Session(v) => v)
    }
    async fn sign_out(&self, token: &str, client: &ClientContext) -> Result<(), ServiceError> {
        let call = PortalCall::SignOut {
            session: owned(token),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn verification(
        &self,
        token: &str,
        language: Language,
    ) -> Result<Verification, ServiceError> {
        let call = PortalCall::Verification {
            session: owned(token),
            language,
        };
        expect!(self, call, PortalReply::Verification(v) => v)
    }
    async fn choose_challenge(
        &self,
        token: &str,
        challenge: Challenge,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::ChooseChallenge {
            session: owned(token),
            challenge,
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn verify_oath(
        &self,
        token: &str,
        code: &str,
        pin: Option<&str>,
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let call = PortalCall::VerifyOath {
            session: owned(token),
            code: code.to_owned(),
            pin: pin.map(str::to_owned),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Moved(m) => m)
    }
    async fn answer_security_questions(
        &self,
        token: &str,
        answers: &[(String, String)],
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let call = PortalCall::AnswerSecurityQuestions {
            session: owned(token),
            answers: answers.to_vec(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Moved(m) => m)
    }
    async fn factors(&self, token: &str) -> Result<FactorsView, ServiceError> {
        expect!(self, PortalCall::Factors { session: owned(token) }, PortalReply::Factors(f) => *f)
    }
    async fn profile(&self, token: &str) -> Result<Profile, ServiceError> {
        expect!(self, PortalCall::Profile { session: owned(token) }, PortalReply::Profile(p) => p)
    }
    async fn set_language(
        &self,
        token: &str,
        language: Language,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::SetLanguage {
            session: owned(token),
            language,
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn pending_software_oath(
        &self,
        token: &str,
    ) -> Result<Option<SoftwareEnrollment>, ServiceError> {
        expect!(self, PortalCall::PendingSoftwareOath { session: owned(token) }, PortalReply::PendingEnrollment(e) => e)
    }
    async fn begin_software_oath(&self, token: &str) -> Result<SoftwareEnrollment, ServiceError> {
        expect!(self, PortalCall::BeginSoftwareOath { session: owned(token) }, PortalReply::Enrollment(e) => e)
    }
    async fn confirm_software_oath(
        &self,
        token: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::ConfirmSoftwareOath {
            session: owned(token),
            code: code.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn associate_hardware_token(
        &self,
        token: &str,
        serial: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::AssociateHardwareToken {
            session: owned(token),
            serial: serial.to_owned(),
            code: code.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn remove_oath_token(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::RemoveOathToken {
            session: owned(token),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn set_pin(
        &self,
        token: &str,
        pin: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::SetPin {
            session: owned(token),
            pin: pin.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn set_security_answers(
        &self,
        token: &str,
        answers: &[(String, String)],
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::SetSecurityAnswers {
            session: owned(token),
            answers: answers.to_vec(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn complete_enrollment(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<PortalSession, ServiceError> {
        let call = PortalCall::CompleteEnrollment {
            session: owned(token),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Moved(m) => m)
    }
    async fn start_bypass(
        &self,
        token: &str,
        seconds: Option<u32>,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let call = PortalCall::StartBypass {
            session: owned(token),
            seconds,
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Time(t) => t)
    }
}
