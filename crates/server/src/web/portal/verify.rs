//! The second factor at sign-in: an OATH code (with the PIN when PINs are required), or the
//! security questions, and switching to a fallback.

use super::sign_in::format_time;
use super::{PageContext, Stage, Visitor, field, render};
use crate::service::{QuestionView, ServiceError};
use crate::web::client::Client;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use twofold_engine::DomainError;
use twofold_engine::flow::Challenge;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/verify", get(verify_get).post(verify_post))
        .route("/verify/fallback", post(fallback_post))
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

fn challenge_value(c: Challenge) -> &'static str {
    match c {
        Challenge::Oath => "oath",
        Challenge::SecurityQuestions => "security_questions",
    }
}

/// The message for a failed second factor.
pub(super) fn factor_error(visitor: &Visitor, e: &DomainError) -> (StatusCode, String) {
    let t = visitor.t();
    match e {
        DomainError::UserLocked { until } => (
            StatusCode::LOCKED,
            t.t1("sign-in-locked", "until", &format_time(*until)),
        ),
        DomainError::UserHardLocked => (StatusCode::LOCKED, t.t("sign-in-hard-locked")),
        DomainError::RateLimited => (StatusCode::TOO_MANY_REQUESTS, t.t("code-rate-limited")),
        DomainError::MalformedCode { digits } => (
            StatusCode::BAD_REQUEST,
            t.t1("code-malformed", "digits", &digits.to_string()),
        ),
        DomainError::CodeAlreadyUsed => (StatusCode::UNAUTHORIZED, t.t("code-replayed")),
        DomainError::WrongAnswers => (StatusCode::UNAUTHORIZED, t.t("answers-wrong")),
        DomainError::AuthenticationClosed(_) => (StatusCode::UNAUTHORIZED, t.t("sign-in-over")),
        DomainError::UnknownSerial => (StatusCode::BAD_REQUEST, t.t("serial-unknown")),
        DomainError::SerialAssigned => (StatusCode::CONFLICT, t.t("serial-assigned")),
        DomainError::Pin(p) => (
            StatusCode::BAD_REQUEST,
            t.t1("pin-invalid", "reason", &pin_reason(visitor, p)),
        ),
        DomainError::Answers(a) => (
            StatusCode::BAD_REQUEST,
            t.t1("answers-invalid", "reason", &answers_reason(visitor, a)),
        ),
        DomainError::Bypass(twofold_engine::flow::BypassError::OutOfRange { max }) => (
            StatusCode::BAD_REQUEST,
            t.t1("bypass-out-of-range", "max", &max.to_string()),
        ),
        _ => (StatusCode::UNAUTHORIZED, t.t("code-wrong")),
    }
}

fn pin_reason(visitor: &Visitor, e: &twofold_engine::pin::PinError) -> String {
    use twofold_engine::pin::PinError;
    let t = visitor.t();
    match e {
        PinError::NotDigits => t.t("pin-not-digits"),
        PinError::TooShort(n) => t.t1("pin-too-short", "min", &n.to_string()),
        PinError::TooLong => t.t("pin-too-long"),
        PinError::Trivial => t.t("pin-trivial"),
    }
}

fn answers_reason(visitor: &Visitor, e: &twofold_engine::answers::AnswerError) -> String {
    use twofold_engine::answers::AnswerError;
    let t = visitor.t();
    match e {
        AnswerError::WrongCount => t.t("questions-four"),
        AnswerError::SameQuestionTwice => t.t("questions-different"),
        AnswerError::UnknownQuestion => t.t("questions-unknown"),
        AnswerError::TooShort(n) => t.t1("answer-too-short", "min", &n.to_string()),
        AnswerError::TooLong => t.t("answer-too-long"),
    }
}

async fn page(
    state: &AppState,
    visitor: &Visitor,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let Some(token) = visitor.token() else {
        return Ok(visitor.send_to_step());
    };
    let verification = match state.service().verification(token, visitor.language).await {
        Ok(v) => v,
        Err(ServiceError::Domain(e)) => {
            return match super::session_refusal(visitor, &e) {
                Some(response) => Ok(response),
                None => {
                    // Nothing to ask (no questions left to draw, say): say why.
                    let (status, message) = factor_error(visitor, &e);
                    let page = super::ErrorTemplate {
                        page: visitor.page(state),
                        message,
                    };
                    Ok(visitor.finish(render(status, &page)?))
                }
            };
        }
        Err(e) => return Err(e.into()),
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
            },
        })
        .collect();
    match verification.challenge {
        Challenge::Oath => {
            let page = VerifyOathTemplate {
                page: visitor.page(state),
                error,
                pin_required: visitor.settings.pin_required,
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

/// Whether the session is at a second-factor step: a sign-in's, or a signed-in user's
/// confirmation before a change.
fn verifying(visitor: &Visitor) -> Option<&str> {
    let active = visitor.session.as_ref()?;
    match (&active.view.stage, active.view.step_up) {
        (Stage::Verify { .. }, _) | (Stage::SignedIn { .. }, Some(_)) => Some(active.id.as_str()),
        _ => None,
    }
}

async fn verify_get(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    if verifying(&visitor).is_none() {
        return Ok(match visitor.signed_in() {
            Some(_) => Redirect::to("/account").into_response(),
            None => visitor.send_to_step(),
        });
    }
    page(&state, &visitor, StatusCode::OK, None).await
}

async fn verify_post(
    State(state): State<AppState>,
    visitor: Visitor,
    Client(client): Client,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    visitor.check_csrf(&state, field(&form, "csrf_token").unwrap_or(""))?;
    let Some(token) = verifying(&visitor) else {
        return Ok(visitor.send_to_step());
    };
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
        Err(ServiceError::Domain(e)) => match super::session_refusal(&visitor, &e) {
            Some(response) => Ok(response),
            None => {
                let (status, message) = factor_error(&visitor, &e);
                // An answer that ended the sign-in (the account locked, too many wrong
                // answers) is said on a page of its own: there is nothing left to answer.
                if !step_up && !matches!(state.service().session(token).await, Ok(Some(_))) {
                    let locked = matches!(
                        e,
                        DomainError::UserLocked { .. } | DomainError::UserHardLocked
                    );
                    let page = super::ErrorTemplate {
                        page: visitor.page(&state),
                        message: if locked {
                            message
                        } else {
                            visitor.t().t("sign-in-over")
                        },
                    };
                    return Ok(visitor.finish(render(status, &page)?));
                }
                page(&state, &visitor, status, Some(message)).await
            }
        },
        Err(e) => Err(e.into()),
    }
}

async fn fallback_post(
    State(state): State<AppState>,
    visitor: Visitor,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    visitor.check_csrf(&state, field(&form, "csrf_token").unwrap_or(""))?;
    let Some(token) = verifying(&visitor) else {
        return Ok(visitor.send_to_step());
    };
    let wanted = match field(&form, "challenge") {
        Some("oath") => Challenge::Oath,
        Some("security_questions") => Challenge::SecurityQuestions,
        _ => return Err(WebError::BadRequest("unknown challenge".into())),
    };
    match state.service().choose_challenge(token, wanted).await {
        Ok(()) => Ok(visitor.finish(Redirect::to("/verify"))),
        Err(ServiceError::Domain(twofold_engine::DomainError::WrongStep)) => {
            Err(WebError::BadRequest("that fallback is not offered".into()))
        }
        Err(e) => Err(e.into()),
    }
}
