//! The second factor at sign-in: an OATH code (with the PIN when PINs are required), or the
//! security questions, and switching to a fallback.

use super::extract::Admit;
use super::{CsrfForm, Fields, PageContext, Stage, Visitor, field, render};
use crate::service::{QuestionView, ServiceError};
use crate::web::client::Client;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
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
