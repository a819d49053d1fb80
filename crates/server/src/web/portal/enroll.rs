//! The enrolment wizard (first sign-in) and the same pages from the account page: the
//! method, the authenticator app, a third-party hardware token, the PIN, the security
//! questions. The phone numbers have a module of their own (`enroll_phone`).
//!
//! `/enroll` works out the next missing step from the settings and what the user has (the
//! engine's `next_enrollment_step`), so later methods slot in as further steps.

use super::extract::Admit;
use super::{CsrfForm, Fields, PageContext, Stage, Visitor, field, render};
use crate::service::{QuestionView, SoftwareEnrollment};
use crate::web::client::Client;
use crate::web::i18n::Translator;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use twofold_engine::answers::QUESTIONS_PER_USER;
use twofold_engine::flow::{self, EnrollmentStep};
use twofold_engine::oath::OathKind;
use twofold_engine::settings::Method;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/enroll", get(enroll_get))
        .route("/enroll/method", get(method_get).post(method_post))
        .route("/enroll/oath", get(oath_get).post(oath_post))
        .route("/enroll/oath/start", axum::routing::post(oath_start_post))
        .route("/enroll/hardware", get(hardware_get).post(hardware_post))
        .route("/enroll/pin", get(pin_get).post(pin_post))
        .route("/enroll/questions", get(questions_get).post(questions_post))
}

/// Whether a page is a step of the first-sign-in wizard or a change from the account page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Wizard,
    Account,
}

/// A visitor whose session may enrol: in the wizard, or signed in (no confirmation pending).
pub(super) struct Enrolling {
    visitor: Visitor,
    pub(super) id: String,
    pub(super) mode: Mode,
}

super::extract::admitted_visitor!(Enrolling);

impl Admit for Enrolling {
    fn admit(visitor: Visitor) -> Result<Self, WebError> {
        let who = visitor
            .session
            .as_ref()
            .and_then(|active| match active.view.stage {
                Stage::Enroll => Some((active.id.clone(), Mode::Wizard)),
                Stage::SignedIn { .. } if active.view.step_up.is_none() => {
                    Some((active.id.clone(), Mode::Account))
                }
                _ => None,
            });
        match who {
            Some((id, mode)) => Ok(Enrolling { visitor, id, mode }),
            None => Err(visitor.elsewhere()),
        }
    }
}

pub(super) fn done(mode: Mode, what: &str) -> Response {
    match mode {
        Mode::Wizard => Redirect::to("/enroll").into_response(),
        Mode::Account => Redirect::to(&format!("/account?changed={what}")).into_response(),
    }
}

async fn enroll_get(
    State(state): State<AppState>,
    visitor: Enrolling,
    Client(client): Client,
) -> Result<Response, WebError> {
    if visitor.mode != Mode::Wizard {
        return Ok(visitor.send_to_step());
    }
    let factors = match state.service().factors(&visitor.id).await {
        Ok(f) => f,
        Err(e) => return Err(visitor.refused(e)),
    };
    let to = match factors.next_enrollment {
        Some(EnrollmentStep::Method) => "/enroll/method",
        Some(EnrollmentStep::Oath) => "/enroll/oath",
        Some(EnrollmentStep::Phone) => "/enroll/phone",
        Some(EnrollmentStep::MobileApp) => "/enroll/app",
        Some(EnrollmentStep::Pin) => "/enroll/pin",
        Some(EnrollmentStep::SecurityQuestions) => "/enroll/questions",
        None => {
            return match state
                .service()
                .complete_enrollment(&visitor.id, &client)
                .await
            {
                Ok(session) => Ok(super::moved_to(&session, &super::landing(&session))),
                Err(e) => Err(visitor.refused(e)),
            };
        }
    };
    Ok(visitor.finish(Redirect::to(to)))
}

// ---- method ----

/// A method offered on the method page, as a radio choice.
pub struct MethodChoice {
    pub value: &'static str,
    pub label: String,
    pub checked: bool,
}

/// The form value of a method.
pub(super) fn method_value(method: Method) -> &'static str {
    match method {
        Method::PhoneCall => "phone_call",
        Method::Sms => "sms",
        Method::MobileApp => "mobile_app",
        Method::Oath => "oath",
    }
}

/// A method as a form names it.
pub(super) fn parse_method(value: &str) -> Option<Method> {
    match value {
        "phone_call" => Some(Method::PhoneCall),
        "sms" => Some(Method::Sms),
        "mobile_app" => Some(Method::MobileApp),
        "oath" => Some(Method::Oath),
        _ => None,
    }
}

/// A method's name, as pages show it.
pub(super) fn method_label(t: &Translator, method: Method) -> String {
    t.t(match method {
        Method::PhoneCall => "method-phone-call",
        Method::Sms => "method-sms",
        Method::MobileApp => "method-mobile-app",
        Method::Oath => "method-oath",
    })
}

/// The methods the page offers: the ones users may enrol. From the account page, the
/// authenticator app is not offered as a change of method: its own page adds or replaces
/// the token.
fn offered_methods(visitor: &Enrolling) -> Vec<Method> {
    flow::enrollable_methods(&visitor.settings)
        .into_iter()
        .filter(|m| visitor.mode == Mode::Wizard || matches!(m, Method::PhoneCall | Method::Sms))
        .collect()
}

#[derive(Template)]
#[template(path = "enroll_method.html")]
struct MethodTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    choices: Vec<MethodChoice>,
}

fn method_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    error: Option<String>,
    chosen: Option<Method>,
) -> Result<Response, WebError> {
    let t = visitor.t();
    let offered = offered_methods(visitor);
    if visitor.mode == Mode::Account && !visitor.settings.allow_method_selection {
        return Err(WebError::NotFound);
    }
    let chosen = chosen.or_else(|| offered.first().copied());
    let choices = offered
        .into_iter()
        .map(|m| MethodChoice {
            value: method_value(m),
            label: method_label(&t, m),
            checked: Some(m) == chosen,
        })
        .collect();
    let page = MethodTemplate {
        page: visitor.page(state),
        wizard: visitor.mode == Mode::Wizard,
        error,
        choices,
    };
    Ok(visitor.finish(render(status, &page)?))
}

async fn method_get(
    State(state): State<AppState>,
    visitor: Enrolling,
) -> Result<Response, WebError> {
    method_page(&state, &visitor, StatusCode::OK, None, None)
}

/// Goes on to the chosen method's own enrolment. Nothing is stored yet: a phone method is
/// stored with the phone once a call or a text proves it, the authenticator app with its
/// token, the mobile app once it answered a first request.
async fn method_post(
    State(state): State<AppState>,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let chosen = field(&form, "method").and_then(parse_method);
    match chosen.filter(|m| offered_methods(&visitor).contains(m)) {
        Some(Method::Oath) => Ok(visitor.finish(Redirect::to("/enroll/oath"))),
        Some(Method::MobileApp) => Ok(visitor.finish(Redirect::to("/enroll/app"))),
        Some(m @ (Method::PhoneCall | Method::Sms)) => Ok(visitor.finish(Redirect::to(&format!(
            "/enroll/phone?method={}",
            method_value(m)
        )))),
        _ => {
            let message = visitor.t().t("method-choose");
            method_page(
                &state,
                &visitor,
                StatusCode::BAD_REQUEST,
                Some(message),
                None,
            )
        }
    }
}

// ---- authenticator app ----

#[derive(Template)]
#[template(path = "enroll_oath.html")]
struct OathTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    enrollment: Option<SoftwareEnrollment>,
    secret_groups: String,
    period: u32,
    offer_hardware: bool,
}

async fn oath_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let mode = visitor.mode;
    // Showing the page changes nothing: an enrolment starts only from the form (POST).
    let enrollment = match state.service().pending_software_oath(&visitor.id).await {
        Ok(e) => e,
        Err(e) => return Err(visitor.refused(e)),
    };
    let secret_groups = enrollment
        .as_ref()
        .map(|e| {
            e.secret_base32
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let period = match enrollment.as_ref().map(|e| e.params.kind) {
        Some(OathKind::Totp { period }) => period,
        _ => 0,
    };
    let settings = &visitor.settings;
    let offer_hardware = settings.allow_third_party_oath_token
        && (mode == Mode::Account || settings.prompt_for_third_party_oath_token);
    let page = OathTemplate {
        page: visitor.page(state),
        wizard: mode == Mode::Wizard,
        error,
        enrollment,
        secret_groups,
        period,
        offer_hardware,
    };
    Ok(visitor.finish(render(status, &page)?))
}

async fn oath_get(State(state): State<AppState>, visitor: Enrolling) -> Result<Response, WebError> {
    oath_page(&state, &visitor, StatusCode::OK, None).await
}

/// Starts an authenticator-app enrolment (a new key), then shows it.
async fn oath_start_post(
    State(state): State<AppState>,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    match state.service().begin_software_oath(&visitor.id).await {
        Ok(_) => Ok(visitor.finish(Redirect::to("/enroll/oath"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            oath_page(&state, &visitor, status, Some(message)).await
        }
    }
}

async fn oath_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    match state
        .service()
        .confirm_software_oath(&visitor.id, field(&form, "code").unwrap_or(""), &client)
        .await
    {
        Ok(()) => Ok(visitor.finish(done(visitor.mode, "oath"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            oath_page(&state, &visitor, status, Some(message)).await
        }
    }
}

// ---- third-party hardware token ----

#[derive(Template)]
#[template(path = "enroll_hardware.html")]
struct HardwareTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    serial: String,
}

async fn hardware_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    error: Option<String>,
    serial: &str,
) -> Result<Response, WebError> {
    if !visitor.settings.allow_third_party_oath_token {
        return Err(WebError::NotFound);
    }
    let page = HardwareTemplate {
        page: visitor.page(state),
        wizard: visitor.mode == Mode::Wizard,
        error,
        serial: serial.chars().take(64).collect(),
    };
    Ok(visitor.finish(render(status, &page)?))
}

async fn hardware_get(
    State(state): State<AppState>,
    visitor: Enrolling,
) -> Result<Response, WebError> {
    hardware_page(&state, &visitor, StatusCode::OK, None, "").await
}

async fn hardware_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let serial = field(&form, "serial").unwrap_or("");
    match state
        .service()
        .associate_hardware_token(
            &visitor.id,
            serial,
            field(&form, "code").unwrap_or(""),
            &client,
        )
        .await
    {
        Ok(()) => Ok(visitor.finish(done(visitor.mode, "oath"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            hardware_page(&state, &visitor, status, Some(message), serial).await
        }
    }
}

// ---- PIN ----

#[derive(Template)]
#[template(path = "enroll_pin.html")]
struct PinTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    min: u8,
}

async fn pin_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let page = PinTemplate {
        page: visitor.page(state),
        wizard: visitor.mode == Mode::Wizard,
        error,
        min: visitor.settings.pin_min_length,
    };
    Ok(visitor.finish(render(status, &page)?))
}

async fn pin_get(State(state): State<AppState>, visitor: Enrolling) -> Result<Response, WebError> {
    pin_page(&state, &visitor, StatusCode::OK, None).await
}

async fn pin_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let pin = field(&form, "pin").unwrap_or("");
    if pin != field(&form, "pin_confirm").unwrap_or("") {
        let message = visitor.t().t("pin-mismatch");
        return pin_page(&state, &visitor, StatusCode::BAD_REQUEST, Some(message)).await;
    }
    match state.service().set_pin(&visitor.id, pin, &client).await {
        Ok(()) => Ok(visitor.finish(done(visitor.mode, "pin"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            pin_page(&state, &visitor, status, Some(message)).await
        }
    }
}

// ---- security questions ----

/// One of the four pickers, with what the user chose before an error.
pub struct Picker {
    pub index: usize,
    pub options: Vec<(QuestionView, bool)>,
}

#[derive(Template)]
#[template(path = "enroll_questions.html")]
struct QuestionsTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    pickers: Vec<Picker>,
    min: u8,
}

async fn questions_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    error: Option<String>,
    chosen: &[String],
) -> Result<Response, WebError> {
    let catalogue = state.service().question_catalogue(visitor.language).await?;
    let pickers = (0..QUESTIONS_PER_USER)
        .map(|i| Picker {
            index: i + 1,
            options: catalogue
                .iter()
                .enumerate()
                .map(|(j, q)| {
                    let selected = match chosen.get(i) {
                        Some(c) => c == &q.id,
                        None => j == i,
                    };
                    (q.clone(), selected)
                })
                .collect(),
        })
        .collect();
    let page = QuestionsTemplate {
        page: visitor.page(state),
        wizard: visitor.mode == Mode::Wizard,
        error,
        pickers,
        min: visitor.settings.security_answer_min_length,
    };
    Ok(visitor.finish(render(status, &page)?))
}

async fn questions_get(
    State(state): State<AppState>,
    visitor: Enrolling,
) -> Result<Response, WebError> {
    questions_page(&state, &visitor, StatusCode::OK, None, &[]).await
}

async fn questions_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let answers: Vec<(String, String)> = (1..=QUESTIONS_PER_USER)
        .map(|i| {
            (
                field(&form, &format!("question-{i}"))
                    .unwrap_or("")
                    .to_owned(),
                field(&form, &format!("answer-{i}"))
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .filter(|(q, _)| !q.is_empty())
        .collect();
    match state
        .service()
        .set_security_answers(&visitor.id, &answers, &client)
        .await
    {
        Ok(()) => Ok(visitor.finish(done(visitor.mode, "questions"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            let chosen: Vec<String> = answers.into_iter().map(|(q, _)| q).collect();
            questions_page(&state, &visitor, status, Some(message), &chosen).await
        }
    }
}
