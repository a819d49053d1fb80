//! The second factor at sign-in: an OATH code (with the PIN when PINs are required), or the
//! security questions, and switching to a fallback.

use super::extract::Admit;
use super::{CsrfForm, Fields, PageContext, Stage, Visitor, field, render};
use crate::service::{PhoneWait, QuestionView, ServiceError};
use crate::web::client::Client;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use twofold_engine::DomainError;
use twofold_engine::flow::Challenge;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/verify", get(verify_get).post(verify_post))
        .route("/verify/fallback", post(fallback_post))
        .route("/verify/phone", post(phone_post))
        .route("/verify/phone/status", get(phone_status))
        .route("/verify/backup-phone", post(backup_phone_post))
}

/// A fallback offered on the page, as a button.
pub struct FallbackChoice {
    pub value: &'static str,
    pub label: String,
}

#[derive(Template)]
#[template(path = "verify_oath.html")]
struct VerifyOathTemplate {
    page: PageContext,
    error: Option<String>,
    /// What the page asks for (the authenticator app's code, or the texted code).
    intro: String,
    /// A texted code may be sent to the backup phone instead.
    backup_phone: bool,
    pin_required: bool,
    digits: u8,
    fallbacks: Vec<FallbackChoice>,
    step_up: bool,
}

#[derive(Template)]
#[template(path = "verify_questions.html")]
struct VerifyQuestionsTemplate {
    page: PageContext,
    error: Option<String>,
    questions: Vec<QuestionView>,
    fallbacks: Vec<FallbackChoice>,
    step_up: bool,
}

#[derive(Template)]
#[template(path = "verify_phone.html")]
struct VerifyPhoneTemplate {
    page: PageContext,
    error: Option<String>,
    /// What the page says is happening ("Calling +33 6 •• •• •• 78…").
    status: String,
    backup_phone: bool,
    fallbacks: Vec<FallbackChoice>,
    step_up: bool,
}

fn challenge_value(c: Challenge) -> &'static str {
    match c {
        Challenge::Oath => "oath",
        Challenge::SecurityQuestions => "security_questions",
        Challenge::PhoneCall => "phone_call",
        Challenge::Sms => "sms",
        Challenge::MobileApp => "mobile_app",
    }
}

/// A visitor whose session is at a second-factor step: a sign-in's, or a signed-in user's
/// confirmation before a change.
pub(super) struct Verifying {
    visitor: Visitor,
    id: String,
}

super::extract::admitted_visitor!(Verifying);

impl Admit for Verifying {
    fn admit(visitor: Visitor) -> Result<Self, WebError> {
        let id = visitor.session.as_ref().and_then(|active| {
            match (&active.view.stage, active.view.step_up) {
                (Stage::Verify { .. }, _) | (Stage::SignedIn { .. }, Some(_)) => {
                    Some(active.id.clone())
                }
                _ => None,
            }
        });
        match id {
            Some(id) => Ok(Verifying { visitor, id }),
            None => Err(visitor.elsewhere()),
        }
    }
}

async fn page(
    state: &AppState,
    visitor: &Verifying,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let verification = match state
        .service()
        .verification(&visitor.id, visitor.language)
        .await
    {
        Ok(v) => v,
        // A call or a text decided it: the waiting page takes the outcome.
        Err(ServiceError::Domain(DomainError::WrongStep))
            if matches!(
                state.service().phone_wait(&visitor.id, false).await,
                Ok(PhoneWait::Decided)
            ) =>
        {
            let page = VerifyPhoneTemplate {
                page: visitor.page(state),
                error,
                status: visitor.t().t("phone-decided"),
                backup_phone: false,
                fallbacks: Vec::new(),
                step_up: visitor.signed_in().is_some(),
            };
            return Ok(visitor.finish(render(status, &page)?));
        }
        Err(e) => {
            // Nothing to ask (no questions left to draw, say): say why.
            let (status, message) = visitor.refusal(e)?;
            let page = super::ErrorTemplate {
                page: visitor.page(state),
                message,
            };
            return Ok(visitor.finish(render(status, &page)?));
        }
    };
    let t = visitor.t();
    let fallbacks = verification
        .others
        .iter()
        .map(|c| FallbackChoice {
            value: challenge_value(*c),
            label: match c {
                Challenge::Oath => t.t("fallback-oath"),
                Challenge::SecurityQuestions => t.t("fallback-questions"),
                Challenge::PhoneCall => t.t("fallback-phone-call"),
                Challenge::Sms => t.t("fallback-sms"),
                Challenge::MobileApp => t.t("fallback-mobile-app"),
            },
        })
        .collect();
    let sent_to = verification.sent_to.clone().unwrap_or_default();
    match verification.challenge {
        _ if verification.waiting
            || matches!(
                verification.challenge,
                Challenge::PhoneCall | Challenge::MobileApp
            ) =>
        {
            let waiting = match verification.challenge {
                Challenge::PhoneCall => t.t1("phone-calling", "number", &sent_to),
                _ => t.t1("phone-reply-waiting", "number", &sent_to),
            };
            let page = VerifyPhoneTemplate {
                page: visitor.page(state),
                error,
                status: waiting,
                backup_phone: verification.backup_phone,
                fallbacks,
                step_up: verification.step_up,
            };
            Ok(visitor.finish(render(status, &page)?))
        }
        Challenge::Oath | Challenge::Sms | Challenge::PhoneCall | Challenge::MobileApp => {
            let text_code = verification.challenge == Challenge::Sms;
            let page = VerifyOathTemplate {
                page: visitor.page(state),
                error,
                intro: if text_code {
                    t.t1("verify-text-intro", "number", &sent_to)
                } else {
                    t.t("verify-oath-intro")
                },
                backup_phone: text_code && verification.backup_phone,
                pin_required: visitor.settings.pin_required && !text_code,
                digits: verification.digits,
                fallbacks,
                step_up: verification.step_up,
            };
            Ok(visitor.finish(render(status, &page)?))
        }
        Challenge::SecurityQuestions => {
            let page = VerifyQuestionsTemplate {
                page: visitor.page(state),
                error,
                questions: verification.questions,
                fallbacks,
                step_up: verification.step_up,
            };
            Ok(visitor.finish(render(status, &page)?))
        }
    }
}

async fn verify_get(
    State(state): State<AppState>,
    visitor: Verifying,
) -> Result<Response, WebError> {
    page(&state, &visitor, StatusCode::OK, None).await
}

async fn verify_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Verifying>,
) -> Result<Response, WebError> {
    let token = visitor.id.as_str();
    let step_up = visitor.signed_in().is_some();
    let code = field(&form, "code");
    let result = match code {
        Some(code) => {
            state
                .service()
                .verify_oath(token, code, field(&form, "pin"), &client)
                .await
        }
        None => {
            // The answers are named `answer-<question id>`; the server checks them against
            // the questions it drew, whatever else the form carries.
            let answers: Vec<(String, String)> = form
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("answer-")
                        .map(|id| (id.to_owned(), v.clone()))
                })
                .collect();
            state
                .service()
                .answer_security_questions(token, &answers, &client)
                .await
        }
    };
    match result {
        Ok(session) if step_up => Ok(super::moved_to(&session, "/account?changed=confirmed")),
        Ok(session) => Ok(super::moved_to(&session, &super::landing(&session))),
        Err(e) => {
            // An answer that ended the sign-in (the account locked, five wrong answers), or
            // came after its answers were spent, is said on a page of its own: there is
            // nothing left to answer.
            // (A session ended by a concurrent answer, between this request's arrival and
            // its turn, is the same news.)
            let closed = !step_up
                && matches!(
                    e,
                    ServiceError::Domain(
                        DomainError::AuthenticationClosed(_) | DomainError::SessionEnded
                    )
                );
            let locked = matches!(
                e,
                ServiceError::Domain(DomainError::UserLocked { .. } | DomainError::UserHardLocked)
            );
            let (status, message) = if closed {
                (StatusCode::UNAUTHORIZED, String::new())
            } else {
                visitor.refusal(e)?
            };
            let ended = !step_up && !matches!(state.service().session(token).await, Ok(Some(_)));
            if ended || closed {
                let (status, message) = if locked {
                    (status, message)
                } else {
                    (StatusCode::UNAUTHORIZED, visitor.t().t("sign-in-over"))
                };
                let page = super::ErrorTemplate {
                    page: visitor.page(&state),
                    message,
                };
                return Ok(visitor.finish(render(status, &page)?));
            }
            page(&state, &visitor, status, Some(message)).await
        }
    }
}

async fn fallback_post(
    State(state): State<AppState>,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Verifying>,
) -> Result<Response, WebError> {
    let wanted = match field(&form, "challenge") {
        Some("oath") => Challenge::Oath,
        Some("security_questions") => Challenge::SecurityQuestions,
        _ => return Err(WebError::BadRequest("unknown challenge".into())),
    };
    match state.service().choose_challenge(&visitor.id, wanted).await {
        Ok(()) => Ok(visitor.finish(Redirect::to("/verify"))),
        Err(ServiceError::Domain(DomainError::WrongStep)) => {
            Err(WebError::BadRequest("that fallback is not offered".into()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Serialize)]
struct PhoneStatus {
    decided: bool,
}

/// Whether the session's call or text is decided (the waiting page's script asks).
async fn phone_status(State(state): State<AppState>, visitor: Visitor) -> Response {
    let decided = match &visitor.session {
        Some(active) => !matches!(
            state.service().phone_wait(&active.id, false).await,
            Ok(PhoneWait::Waiting { .. })
        ),
        None => true,
    };
    axum::Json(PhoneStatus { decided }).into_response()
}

/// Takes the outcome of the session's call or text: signed in (or the change confirmed),
/// still waiting, or ended with its reason.
async fn phone_post(
    State(state): State<AppState>,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields, Verifying>,
) -> Result<Response, WebError> {
    let step_up = visitor.signed_in().is_some();
    match state.service().phone_wait(&visitor.id, true).await {
        Ok(PhoneWait::Done(session)) if step_up => {
            Ok(super::moved_to(&session, "/account?changed=confirmed"))
        }
        Ok(PhoneWait::Done(session)) => Ok(super::moved_to(&session, &super::landing(&session))),
        Ok(PhoneWait::Waiting { .. } | PhoneWait::Decided) => {
            page(&state, &visitor, StatusCode::OK, None).await
        }
        Ok(PhoneWait::Ended {
            state: ended,
            reason,
        }) => {
            let t = visitor.t();
            let message = phone_ended_message(&t, &ended, reason.as_deref());
            if step_up {
                return Ok(visitor.finish(Redirect::to("/account?changed=not-confirmed")));
            }
            let page = super::ErrorTemplate {
                page: visitor.page(&state),
                message,
            };
            Ok(visitor.finish(render(StatusCode::UNAUTHORIZED, &page)?))
        }
        Err(e) => Err(e.into()),
    }
}

/// What the page says when a call or a text did not sign the user in.
pub(super) fn phone_ended_message(
    t: &crate::web::i18n::Translator,
    state: &str,
    reason: Option<&str>,
) -> String {
    match (state, reason) {
        ("fraud", _) => t.t("phone-ended-fraud"),
        ("expired", _) => t.t("phone-ended-expired"),
        (_, Some("busy")) => t.t("phone-ended-busy"),
        (_, Some("no_answer")) => t.t("phone-ended-no-answer"),
        (_, Some("undelivered")) => t.t("phone-ended-undelivered"),
        (_, Some("provider_unavailable")) => t.t("phone-ended-unavailable"),
        (_, Some("rate_limited")) => t.t("phone-ended-rate-limited"),
        (_, Some("country_not_allowed")) => t.t("phone-ended-country"),
        (_, Some("invalid_code")) => t.t("phone-ended-wrong"),
        (_, Some("user_locked")) => t.t("sign-in-over"),
        _ => t.t("phone-ended-denied"),
    }
}

/// Sends the call or the text again, to the backup phone.
async fn backup_phone_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields, Verifying>,
) -> Result<Response, WebError> {
    match state.service().use_backup_phone(&visitor.id, &client).await {
        Ok(()) => Ok(visitor.finish(Redirect::to("/verify"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            page(&state, &visitor, status, Some(message)).await
        }
    }
}
