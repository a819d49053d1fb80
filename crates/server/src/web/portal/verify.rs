//! The second factor at sign-in: an OATH code (with the PIN when PINs are required), or the
//! security questions, and switching to a fallback.

use super::sign_in::format_time;
use super::{ActiveSession, PageContext, Stage, Visitor, advance_session, field, render};
use crate::service::{QuestionView, ServiceError};
use crate::web::client::Client;
use crate::web::session;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use twofold_engine::DomainError;
use twofold_engine::flow::{self, Challenge};

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
}

#[derive(Template)]
#[template(path = "verify_questions.html")]
struct VerifyQuestionsTemplate {
    page: PageContext,
    error: Option<String>,
    questions: Vec<QuestionView>,
    fallbacks: Vec<FallbackChoice>,
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
        DomainError::MalformedCode { digits } => (
            StatusCode::BAD_REQUEST,
            t.t1("code-malformed", "digits", &digits.to_string()),
        ),
        DomainError::CodeAlreadyUsed => (StatusCode::UNAUTHORIZED, t.t("code-replayed")),
        DomainError::WrongAnswers => (StatusCode::UNAUTHORIZED, t.t("answers-wrong")),
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

fn verifying(visitor: &Visitor) -> Option<(&ActiveSession, Challenge, Vec<String>)> {
    let active = visitor.session.as_ref()?;
    match &active.data.stage {
        Stage::Verify { challenge, asked } => Some((active, *challenge, asked.clone())),
        _ => None,
    }
}

async fn fallback_choices(
    state: &AppState,
    visitor: &Visitor,
    user_id: &str,
    current: Challenge,
) -> Result<Vec<FallbackChoice>, WebError> {
    let factors = state.service().factors(user_id).await?;
    let mut choices: Vec<Challenge> =
        flow::fallbacks(&visitor.settings, &factors.factors, Some(current));
    if let Some(primary) = factors.primary
        && primary != current
        && !choices.contains(&primary)
    {
        choices.insert(0, primary);
    }
    let t = visitor.t();
    Ok(choices
        .into_iter()
        .map(|c| FallbackChoice {
            value: challenge_value(c),
            label: match c {
                Challenge::Oath => t.t("fallback-oath"),
                Challenge::SecurityQuestions => t.t("fallback-questions"),
            },
        })
        .collect())
}

async fn page(
    state: &AppState,
    visitor: &Visitor,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let Some((active, challenge, mut asked)) = verifying(visitor) else {
        return Ok(visitor.finish(Redirect::to("/sign-in")));
    };
    let user_id = active.record.user_id.clone();
    let fallbacks = fallback_choices(state, visitor, &user_id, challenge).await?;
    match challenge {
        Challenge::Oath => {
            let factors = state.service().factors(&user_id).await?;
            let digits = factors.token.map(|t| t.params.digits).unwrap_or(6);
            let page = VerifyOathTemplate {
                page: visitor.page(state),
                error,
                pin_required: visitor.settings.pin_required,
                digits,
                fallbacks,
            };
            Ok(visitor.finish(render(status, &page)?))
        }
        Challenge::SecurityQuestions => {
            let questions = if asked.is_empty() {
                let drawn = state.service().draw_security_questions(&user_id).await?;
                asked = drawn.iter().map(|q| q.id.clone()).collect();
                let mut data = active.data.clone();
                data.stage = Stage::Verify { challenge, asked };
                let json =
                    serde_json::to_string(&data).map_err(|e| WebError::Internal(e.to_string()))?;
                state
                    .sessions()
                    .update_session_data(&session::hash_id(&active.id), &json)
                    .await?;
                drawn
            } else {
                let catalogue = state.service().question_catalogue(visitor.language).await?;
                let all = state
                    .service()
                    .question_catalogue(twofold_engine::Language::En)
                    .await?;
                asked
                    .iter()
                    .map(|id| QuestionView {
                        id: id.clone(),
                        text: catalogue
                            .iter()
                            .chain(all.iter())
                            .find(|q| &q.id == id)
                            .map(|q| q.text.clone())
                            .unwrap_or_else(|| id.clone()),
                    })
                    .collect()
            };
            let page = VerifyQuestionsTemplate {
                page: visitor.page(state),
                error,
                questions,
                fallbacks,
            };
            Ok(visitor.finish(render(status, &page)?))
        }
    }
}

async fn verify_get(State(state): State<AppState>, visitor: Visitor) -> Result<Response, WebError> {
    if visitor.signed_in().is_some() {
        return Ok(Redirect::to("/account").into_response());
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
    let Some((active, challenge, asked)) = verifying(&visitor) else {
        return Ok(visitor.finish(Redirect::to("/sign-in")));
    };
    let user_id = active.record.user_id.clone();
    let result = match challenge {
        Challenge::Oath => {
            let code = field(&form, "code").unwrap_or("");
            state
                .service()
                .verify_oath(&user_id, code, field(&form, "pin"), &client)
                .await
        }
        Challenge::SecurityQuestions => {
            let answers: Vec<(String, String)> = asked
                .iter()
                .map(|q| {
                    (
                        q.clone(),
                        field(&form, &format!("answer-{q}"))
                            .unwrap_or("")
                            .to_owned(),
                    )
                })
                .collect();
            state
                .service()
                .answer_security_questions(&user_id, &asked, &answers, &client)
                .await
        }
    };
    match result {
        Ok(via) => {
            let now = state.now();
            // Proven: a user whose enrolment is unfinished (a PIN now required, questions
            // turned on) completes it before reaching their account.
            if state
                .service()
                .factors(&user_id)
                .await?
                .next_enrollment
                .is_some()
            {
                return advance_session(
                    &state,
                    &visitor,
                    active,
                    Stage::Enroll,
                    now + super::PRE_AUTH_SECONDS,
                    "/enroll",
                )
                .await;
            }
            let to = super::safe_next(active.data.next.as_deref());
            advance_session(
                &state,
                &visitor,
                active,
                Stage::SignedIn { via },
                now + flow::session_limit_seconds(&visitor.settings, via),
                &to,
            )
            .await
        }
        Err(ServiceError::Domain(e)) => {
            let (status, message) = factor_error(&visitor, &e);
            page(&state, &visitor, status, Some(message)).await
        }
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
    let Some((active, current, asked)) = verifying(&visitor) else {
        return Ok(visitor.finish(Redirect::to("/sign-in")));
    };
    let wanted = match field(&form, "challenge") {
        Some("oath") => Challenge::Oath,
        Some("security_questions") => Challenge::SecurityQuestions,
        _ => return Err(WebError::BadRequest("unknown challenge".into())),
    };
    let offered = fallback_choices(&state, &visitor, &active.record.user_id, current).await?;
    if !offered.iter().any(|c| c.value == challenge_value(wanted)) {
        return Err(WebError::BadRequest("that fallback is not offered".into()));
    }
    let mut data = active.data.clone();
    // Questions drawn once stay drawn for this sign-in: switching back and forth must not
    // offer a new, perhaps easier, draw.
    data.stage = Stage::Verify {
        challenge: wanted,
        asked,
    };
    let json = serde_json::to_string(&data).map_err(|e| WebError::Internal(e.to_string()))?;
    state
        .sessions()
        .update_session_data(&session::hash_id(&active.id), &json)
        .await?;
    Ok(visitor.finish(Redirect::to("/verify")))
}
