//! The second factor at sign-in: an OATH code (with the PIN when PINs are required), the
//! security questions, a call or a text, a request to the mobile app (with the number to
//! choose in it), and switching to a fallback.

use super::extract::Admit;
use super::{CsrfForm, Fields, PageContext, Stage, Visitor, field, render};
use crate::service::app::PushStatus;
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
        .route("/verify/app/again", post(app_again_post))
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

#[derive(Template)]
#[template(path = "verify_app.html")]
struct VerifyAppTemplate {
    page: PageContext,
    error: Option<String>,
    /// What the page says ("We sent a request to your app. Choose 47 in the app.").
    status: String,
    /// The number to choose in the app, shown large (without number matching, none).
    number: Option<u8>,
    /// The request expired unanswered: the page offers to send another.
    expired: bool,
    fallbacks: Vec<FallbackChoice>,
    step_up: bool,
}

/// The challenge a session's second-factor step is at (or was at, for one a call, a text
/// or the app decided).
fn session_challenge(visitor: &Visitor) -> Option<Challenge> {
    let view = &visitor.session.as_ref()?.view;
    match (&view.stage, view.step_up) {
        (_, Some(challenge)) => Some(challenge),
        (Stage::Verify { challenge, .. }, None) => Some(*challenge),
        _ => None,
    }
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
            let step_up = visitor.signed_in().is_some();
            if session_challenge(visitor) == Some(Challenge::MobileApp) {
                let page = VerifyAppTemplate {
                    page: visitor.page(state),
                    error,
                    status: visitor.t().t("phone-decided"),
                    number: None,
                    expired: false,
                    fallbacks: Vec::new(),
                    step_up,
                };
                return Ok(visitor.finish(render(status, &page)?));
            }
            let page = VerifyPhoneTemplate {
                page: visitor.page(state),
                error,
                status: visitor.t().t("phone-decided"),
                backup_phone: false,
                fallbacks: Vec::new(),
                step_up,
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
        Challenge::MobileApp => {
            let push = verification.push.clone().unwrap_or(PushStatus {
                number: None,
                waiting: false,
                expired: false,
                expires_at: None,
            });
            let status_text = match push.number {
                Some(n) => t.t1("app-push-choose", "number", &n.to_string()),
                None => t.t("app-push-approve"),
            };
            let page = VerifyAppTemplate {
                page: visitor.page(state),
                error,
                status: status_text,
                number: push.number,
                expired: push.expired,
                fallbacks,
                step_up: verification.step_up,
            };
            Ok(visitor.finish(render(status, &page)?))
        }
        _ if verification.waiting || verification.challenge == Challenge::PhoneCall => {
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
        Challenge::Oath | Challenge::Sms | Challenge::PhoneCall => {
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
        Some("phone_call") => Challenge::PhoneCall,
        Some("sms") => Challenge::Sms,
        Some("mobile_app") => Challenge::MobileApp,
        _ => return Err(WebError::BadRequest("unknown challenge".into())),
    };
    match state.service().choose_challenge(&visitor.id, wanted).await {
        Ok(()) => Ok(visitor.finish(Redirect::to("/verify"))),
        Err(ServiceError::Domain(DomainError::WrongStep)) => {
            Err(WebError::BadRequest("that fallback is not offered".into()))
        }
        // A request to the app the limits refuse (one already waiting, a cool-down): the
        // page says so, and the other ways stay offered.
        Err(e @ ServiceError::Domain(DomainError::App(_))) => {
            let (status, message) = visitor.refusal(e)?;
            page(&state, &visitor, status, Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Serialize)]
struct PhoneStatus {
    decided: bool,
    /// A request to the app expired unanswered (the page then offers to send another).
    expired: bool,
}

/// Whether the session's call, text or request to the app is decided (the waiting page's
/// script asks), and whether a request to the app expired unanswered.
async fn phone_status(State(state): State<AppState>, visitor: Visitor) -> Response {
    let (decided, expired) = match &visitor.session {
        Some(active) => match state.service().phone_wait(&active.id, false).await {
            Ok(PhoneWait::Waiting { step, .. }) if step == "mobile_app" => {
                let expired = state
                    .service()
                    .push_status(&active.id)
                    .await
                    .is_ok_and(|p| p.expired);
                (false, expired)
            }
            Ok(PhoneWait::Waiting { .. }) => (false, false),
            _ => (true, false),
        },
        None => (true, false),
    };
    axum::Json(PhoneStatus { decided, expired }).into_response()
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
            let message = if session_challenge(&visitor) == Some(Challenge::MobileApp) {
                app_ended_message(&t, &ended, reason.as_deref())
            } else {
                phone_ended_message(&t, &ended, reason.as_deref())
            };
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
pub(crate) fn phone_ended_message(
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

/// What the page says when a request to the app did not sign the user in.
pub(crate) fn app_ended_message(
    t: &crate::web::i18n::Translator,
    state: &str,
    reason: Option<&str>,
) -> String {
    match (state, reason) {
        ("fraud", _) => t.t("phone-ended-fraud"),
        ("expired", _) => t.t("app-ended-expired"),
        (_, Some("declined")) => t.t("app-ended-declined"),
        (_, Some("invalid_code")) => t.t("app-ended-wrong"),
        (_, Some("rate_limited")) => t.t("app-push-limited"),
        (_, Some("user_locked")) => t.t("sign-in-over"),
        _ => t.t("phone-ended-denied"),
    }
}

/// Sends the request to the app again (a new number), once the one before expired.
async fn app_again_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields, Verifying>,
) -> Result<Response, WebError> {
    match state.service().send_push_again(&visitor.id, &client).await {
        Ok(()) => Ok(visitor.finish(Redirect::to("/verify"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            page(&state, &visitor, status, Some(message)).await
        }
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
