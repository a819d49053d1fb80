//! The portal on its own host: `MfaService` and `PortalSessions` over the Web Service SDK.
//!
//! The portal's operations travel as [`PortalCall`]s to `POST /sdk/v1/portal/rpc`, where
//! the server answers them with the same in-process service a local portal uses; domain
//! errors come back as they are, so both portals say the same things. This endpoint is the
//! portal's own protocol, versioned with Twofold, not part of the SDK's stable contract.

use super::{
    ClientContext, FactorsView, InProcessService, MfaService, PortalSessions, Profile,
    QuestionView, ServiceError, SignInProgress, SoftwareEnrollment,
};
use crate::store::SessionRecord;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use twofold_engine::flow::Via;
use twofold_engine::settings::Method;
use twofold_engine::{DomainError, Language, Settings, UnixTime};
use twofold_sdk::client::{SdkClient, SdkError};

/// One operation of the portal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum PortalCall {
    Settings,
    SignIn {
        username: String,
        password: String,
        client: ClientContext,
    },
    Profile {
        user_id: String,
    },
    SetLanguage {
        user_id: String,
        language: Language,
        client: ClientContext,
    },
    SignedOut {
        username: String,
        client: ClientContext,
    },
    Ready,
    Factors {
        user_id: String,
    },
    VerifyOath {
        user_id: String,
        code: String,
        pin: Option<String>,
        client: ClientContext,
    },
    DrawSecurityQuestions {
        user_id: String,
    },
    AnswerSecurityQuestions {
        user_id: String,
        asked: Vec<String>,
        answers: Vec<(String, String)>,
        client: ClientContext,
    },
    BeginSoftwareOath {
        user_id: String,
    },
    ConfirmSoftwareOath {
        user_id: String,
        code: String,
        client: ClientContext,
    },
    AssociateHardwareToken {
        user_id: String,
        serial: String,
        code: String,
        client: ClientContext,
    },
    RemoveOathToken {
        user_id: String,
        client: ClientContext,
    },
    SetPin {
        user_id: String,
        pin: String,
        client: ClientContext,
    },
    SetMethod {
        user_id: String,
        method: Method,
        client: ClientContext,
    },
    QuestionCatalogue {
        language: Language,
    },
    SetSecurityAnswers {
        user_id: String,
        answers: Vec<(String, String)>,
        client: ClientContext,
    },
    CompleteEnrollment {
        user_id: String,
        client: ClientContext,
    },
    StartBypass {
        user_id: String,
        seconds: Option<u32>,
        client: ClientContext,
    },
    CreateSession {
        record: SessionRecord,
    },
    Session {
        id_hash: String,
        now: UnixTime,
    },
    TouchSession {
        id_hash: String,
        now: UnixTime,
        expires_at: UnixTime,
    },
    UpdateSessionData {
        id_hash: String,
        data: String,
    },
    DeleteSession {
        id_hash: String,
    },
}

/// The answer to a [`PortalCall`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalReply {
    Settings(Box<Settings>),
    Progress(SignInProgress),
    Profile(Profile),
    Factors(Box<FactorsView>),
    Via(Via),
    Questions(Vec<QuestionView>),
    Enrollment(SoftwareEnrollment),
    Time(UnixTime),
    Session(Option<SessionRecord>),
    Done,
    /// A domain error, as the in-process service raised it.
    Refused(DomainError),
}

/// Answers a call with the in-process service (the server side of the RPC).
pub async fn dispatch(
    service: &InProcessService,
    call: PortalCall,
) -> Result<PortalReply, ServiceError> {
    use PortalCall as C;
    use PortalReply as R;
    let result = match call {
        C::Settings => service.settings().await.map(|s| R::Settings(Box::new(s))),
        C::SignIn {
            username,
            password,
            client,
        } => service
            .sign_in(&username, &password, &client)
            .await
            .map(R::Progress),
        C::Profile { user_id } => service.profile(&user_id).await.map(R::Profile),
        C::SetLanguage {
            user_id,
            language,
            client,
        } => service
            .set_language(&user_id, language, &client)
            .await
            .map(|()| R::Done),
        C::SignedOut { username, client } => service
            .signed_out(&username, &client)
            .await
            .map(|()| R::Done),
        C::Ready => service.ready().await.map(|()| R::Done),
        C::Factors { user_id } => service
            .factors(&user_id)
            .await
            .map(|f| R::Factors(Box::new(f))),
        C::VerifyOath {
            user_id,
            code,
            pin,
            client,
        } => service
            .verify_oath(&user_id, &code, pin.as_deref(), &client)
            .await
            .map(R::Via),
        C::DrawSecurityQuestions { user_id } => service
            .draw_security_questions(&user_id)
            .await
            .map(R::Questions),
        C::AnswerSecurityQuestions {
            user_id,
            asked,
            answers,
            client,
        } => service
            .answer_security_questions(&user_id, &asked, &answers, &client)
            .await
            .map(R::Via),
        C::BeginSoftwareOath { user_id } => service
            .begin_software_oath(&user_id)
            .await
            .map(R::Enrollment),
        C::ConfirmSoftwareOath {
            user_id,
            code,
            client,
        } => service
            .confirm_software_oath(&user_id, &code, &client)
            .await
            .map(|()| R::Done),
        C::AssociateHardwareToken {
            user_id,
            serial,
            code,
            client,
        } => service
            .associate_hardware_token(&user_id, &serial, &code, &client)
            .await
            .map(|()| R::Done),
        C::RemoveOathToken { user_id, client } => service
            .remove_oath_token(&user_id, &client)
            .await
            .map(|()| R::Done),
        C::SetPin {
            user_id,
            pin,
            client,
        } => service
            .set_pin(&user_id, &pin, &client)
            .await
            .map(|()| R::Done),
        C::SetMethod {
            user_id,
            method,
            client,
        } => service
            .set_method(&user_id, method, &client)
            .await
            .map(|()| R::Done),
        C::QuestionCatalogue { language } => {
            service.question_catalogue(language).await.map(R::Questions)
        }
        C::SetSecurityAnswers {
            user_id,
            answers,
            client,
        } => service
            .set_security_answers(&user_id, &answers, &client)
            .await
            .map(|()| R::Done),
        C::CompleteEnrollment { user_id, client } => service
            .complete_enrollment(&user_id, &client)
            .await
            .map(|()| R::Done),
        C::StartBypass {
            user_id,
            seconds,
            client,
        } => service
            .start_bypass(&user_id, seconds, &client)
            .await
            .map(R::Time),
        C::CreateSession { record } => service.create_session(&record).await.map(|()| R::Done),
        C::Session { id_hash, now } => service.session(&id_hash, now).await.map(R::Session),
        C::TouchSession {
            id_hash,
            now,
            expires_at,
        } => service
            .touch_session(&id_hash, now, expires_at)
            .await
            .map(|()| R::Done),
        C::UpdateSessionData { id_hash, data } => service
            .update_session_data(&id_hash, &data)
            .await
            .map(|()| R::Done),
        C::DeleteSession { id_hash } => service.delete_session(&id_hash).await.map(|()| R::Done),
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
    ServiceError::Internal(format!("unexpected answer from the MFA server: {reply:?}"))
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
    async fn sign_in(
        &self,
        username: &str,
        password: &str,
        client: &ClientContext,
    ) -> Result<SignInProgress, ServiceError> {
        let call = PortalCall::SignIn {
            username: username.to_owned(),
            password: password.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Progress(p) => p)
    }
    async fn profile(&self, user_id: &str) -> Result<Profile, ServiceError> {
        expect!(self, PortalCall::Profile { user_id: user_id.to_owned() }, PortalReply::Profile(p) => p)
    }
    async fn set_language(
        &self,
        user_id: &str,
        language: Language,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::SetLanguage {
            user_id: user_id.to_owned(),
            language,
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn signed_out(&self, username: &str, client: &ClientContext) -> Result<(), ServiceError> {
        let call = PortalCall::SignedOut {
            username: username.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn ready(&self) -> Result<(), ServiceError> {
        expect!(self, PortalCall::Ready, PortalReply::Done => ())
    }
    async fn factors(&self, user_id: &str) -> Result<FactorsView, ServiceError> {
        expect!(self, PortalCall::Factors { user_id: user_id.to_owned() }, PortalReply::Factors(f) => *f)
    }
    async fn verify_oath(
        &self,
        user_id: &str,
        code: &str,
        pin: Option<&str>,
        client: &ClientContext,
    ) -> Result<Via, ServiceError> {
        let call = PortalCall::VerifyOath {
            user_id: user_id.to_owned(),
            code: code.to_owned(),
            pin: pin.map(str::to_owned),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Via(v) => v)
    }
    async fn draw_security_questions(
        &self,
        user_id: &str,
    ) -> Result<Vec<QuestionView>, ServiceError> {
        expect!(self, PortalCall::DrawSecurityQuestions { user_id: user_id.to_owned() }, PortalReply::Questions(q) => q)
    }
    async fn answer_security_questions(
        &self,
        user_id: &str,
        asked: &[String],
        answers: &[(String, String)],
        client: &ClientContext,
    ) -> Result<Via, ServiceError> {
        let call = PortalCall::AnswerSecurityQuestions {
            user_id: user_id.to_owned(),
            asked: asked.to_vec(),
            answers: answers.to_vec(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Via(v) => v)
    }
    async fn begin_software_oath(&self, user_id: &str) -> Result<SoftwareEnrollment, ServiceError> {
        expect!(self, PortalCall::BeginSoftwareOath { user_id: user_id.to_owned() }, PortalReply::Enrollment(e) => e)
    }
    async fn confirm_software_oath(
        &self,
        user_id: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::ConfirmSoftwareOath {
            user_id: user_id.to_owned(),
            code: code.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn associate_hardware_token(
        &self,
        user_id: &str,
        serial: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::AssociateHardwareToken {
            user_id: user_id.to_owned(),
            serial: serial.to_owned(),
            code: code.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn remove_oath_token(
        &self,
        user_id: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::RemoveOathToken {
            user_id: user_id.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn set_pin(
        &self,
        user_id: &str,
        pin: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::SetPin {
            user_id: user_id.to_owned(),
            pin: pin.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn set_method(
        &self,
        user_id: &str,
        method: Method,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::SetMethod {
            user_id: user_id.to_owned(),
            method,
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn question_catalogue(
        &self,
        language: Language,
    ) -> Result<Vec<QuestionView>, ServiceError> {
        expect!(self, PortalCall::QuestionCatalogue { language }, PortalReply::Questions(q) => q)
    }
    async fn set_security_answers(
        &self,
        user_id: &str,
        answers: &[(String, String)],
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::SetSecurityAnswers {
            user_id: user_id.to_owned(),
            answers: answers.to_vec(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn complete_enrollment(
        &self,
        user_id: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let call = PortalCall::CompleteEnrollment {
            user_id: user_id.to_owned(),
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Done => ())
    }
    async fn start_bypass(
        &self,
        user_id: &str,
        seconds: Option<u32>,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let call = PortalCall::StartBypass {
            user_id: user_id.to_owned(),
            seconds,
            client: client.clone(),
        };
        expect!(self, call, PortalReply::Time(t) => t)
    }
}

#[async_trait]
impl PortalSessions for RemoteService {
    async fn create_session(&self, record: &SessionRecord) -> Result<(), ServiceError> {
        expect!(self, PortalCall::CreateSession { record: record.clone() }, PortalReply::Done => ())
    }
    async fn session(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, ServiceError> {
        expect!(self, PortalCall::Session { id_hash: id_hash.to_owned(), now }, PortalReply::Session(s) => s)
    }
    async fn touch_session(
        &self,
        id_hash: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), ServiceError> {
        expect!(self, PortalCall::TouchSession { id_hash: id_hash.to_owned(), now, expires_at }, PortalReply::Done => ())
    }
    async fn update_session_data(&self, id_hash: &str, data: &str) -> Result<(), ServiceError> {
        expect!(self, PortalCall::UpdateSessionData { id_hash: id_hash.to_owned(), data: data.to_owned() }, PortalReply::Done => ())
    }
    async fn delete_session(&self, id_hash: &str) -> Result<(), ServiceError> {
        expect!(self, PortalCall::DeleteSession { id_hash: id_hash.to_owned() }, PortalReply::Done => ())
    }
}
