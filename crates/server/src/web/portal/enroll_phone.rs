//! The phone numbers, in the enrolment wizard and from the account page: the form, then a
//! call or a text to the new primary number, and the page that waits for it (or takes the
//! texted code). The numbers and the method are stored only once the call or text is
//! answered.

use super::enroll::{Enrolling, Mode, done, method_value, parse_method};
use super::{CsrfForm, Fields, PageContext, field, render};
use crate::service::{PhoneCheck, PhoneInput, ServiceError};
use crate::web::client::Client;
use crate::web::i18n::Translator;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use twofold_engine::DomainError;
use twofold_engine::flow;
use twofold_engine::phone;
use twofold_engine::settings::Method;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/enroll/phone", get(phone_get).post(phone_post))
        .route("/enroll/phone/status", get(status_get))
        .route("/enroll/phone/check", post(check_post))
        .route("/enroll/phone/code", post(code_post))
}

/// The most characters kept of a typed field (the numbers are checked by the server).
const FIELD_MAX: usize = 64;

/// What the phone form holds; the waiting pages carry it on, so that a failed check shows
/// the form again with what was typed.
#[derive(Debug, Clone, Default)]
pub struct PhoneForm {
    pub method: String,
    pub number: String,
    pub extension: String,
    pub backup_number: String,
    pub backup_extension: String,
}

impl PhoneForm {
    fn read(form: &[(String, String)]) -> Self {
        let get = |name: &str| -> String {
            field(form, name)
                .unwrap_or("")
                .trim()
                .chars()
                .take(FIELD_MAX)
                .collect()
        };
        PhoneForm {
            method: get("method"),
            number: get("number"),
            extension: get("extension"),
            backup_number: get("backup_number"),
            backup_extension: get("backup_extension"),
        }
    }

    fn primary(&self) -> PhoneInput {
        PhoneInput {
            number: self.number.clone(),
            extension: non_empty(&self.extension),
        }
    }

    fn backup(&self) -> Option<PhoneInput> {
        (!self.backup_number.is_empty()).then(|| PhoneInput {
            number: self.backup_number.clone(),
            extension: non_empty(&self.backup_extension),
        })
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// The phone method a page is for: the one asked for when the user may enrol it (or has
/// it already), else the user's own phone method, else the only phone method offered.
fn phone_method(
    visitor: &Enrolling,
    asked: Option<&str>,
    current: Option<Method>,
) -> Option<Method> {
    let offered = flow::enrollable_methods(&visitor.settings);
    let allowed = |m: Method| {
        matches!(m, Method::PhoneCall | Method::Sms) && (offered.contains(&m) || current == Some(m))
    };
    if let Some(asked) = asked.filter(|a| !a.is_empty()) {
        return parse_method(asked).filter(|m| allowed(*m));
    }
    if let Some(m) = current.filter(|m| allowed(*m)) {
        return Some(m);
    }
    let phones: Vec<Method> = offered
        .into_iter()
        .filter(|m| matches!(m, Method::PhoneCall | Method::Sms))
        .collect();
    match phones.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

async fn current_method(state: &AppState, visitor: &Enrolling) -> Result<Option<Method>, WebError> {
    match state.service().factors(&visitor.id).await {
        Ok(f) => Ok(f.factors.method),
        Err(e) => Err(visitor.refused(e)),
    }
}

/// Where a visitor without a phone method to prove goes: the method page in the wizard, the
/// account page otherwise.
fn no_method(visitor: &Enrolling) -> Response {
    match visitor.mode {
        Mode::Wizard => visitor.finish(Redirect::to("/enroll/method")),
        Mode::Account => visitor.finish(Redirect::to("/account")),
    }
}

/// An error shown next to a field of the form.
#[derive(Default)]
struct FormErrors {
    page: Option<String>,
    number: Option<String>,
    backup: Option<String>,
}

#[derive(Template)]
#[template(path = "enroll_phone.html")]
struct PhoneTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    number_error: Option<String>,
    backup_error: Option<String>,
    intro: String,
    submit: String,
    prompt_backup: bool,
    form: PhoneForm,
    /// A link away from the form: another method in the wizard, the account page.
    other_method: Option<(&'static str, String)>,
}

fn form_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    method: Method,
    form: PhoneForm,
    errors: FormErrors,
) -> Result<Response, WebError> {
    let t = visitor.t();
    let (intro, submit) = match method {
        Method::Sms => (t.t("enroll-phone-intro-text"), t.t("phone-text-me")),
        _ => (t.t("enroll-phone-intro-call"), t.t("phone-call-me")),
    };
    let other_method = match visitor.mode {
        Mode::Wizard if flow::enrollable_methods(&visitor.settings).len() > 1 => {
            Some(("/enroll/method", t.t("enroll-method-other")))
        }
        Mode::Wizard => None,
        Mode::Account => Some(("/account", t.t("account-back"))),
    };
    let page = PhoneTemplate {
        page: visitor.page(state),
        wizard: visitor.mode == Mode::Wizard,
        error: errors.page,
        number_error: errors.number,
        backup_error: errors.backup,
        intro,
        submit,
        // From the account page the backup phone is always there to change (an empty one
        // is removed).
        prompt_backup: visitor.settings.prompt_for_backup_phone || visitor.mode == Mode::Account,
        form: PhoneForm {
            method: method_value(method).to_owned(),
            ..form
        },
        other_method,
    };
    Ok(visitor.finish(render(status, &page)?))
}

#[derive(Debug, Default, Deserialize)]
struct PhoneQuery {
    method: Option<String>,
}

async fn phone_get(
    State(state): State<AppState>,
    visitor: Enrolling,
    query: Result<Query<PhoneQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let current = current_method(&state, &visitor).await?;
    let Some(method) = phone_method(&visitor, query.method.as_deref(), current) else {
        return Ok(no_method(&visitor));
    };
    form_page(
        &state,
        &visitor,
        StatusCode::OK,
        method,
        PhoneForm::default(),
        FormErrors::default(),
    )
}

/// "Call me now" / "Text me now": checks the numbers and calls or texts the primary one.
async fn phone_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let mut form = PhoneForm::read(&form);
    let current = current_method(&state, &visitor).await?;
    let Some(method) = phone_method(&visitor, Some(&form.method), current) else {
        return Err(WebError::BadRequest("that method is not offered".into()));
    };
    form.method = method_value(method).to_owned();
    let takes_backup = visitor.settings.prompt_for_backup_phone || visitor.mode == Mode::Account;
    if !takes_backup {
        form.backup_number.clear();
        form.backup_extension.clear();
    }
    let backup = form.backup();
    match state
        .service()
        .begin_phone_check(
            &visitor.id,
            method,
            &form.primary(),
            backup.as_ref(),
            &client,
        )
        .await
    {
        Ok(check) => outcome(&state, &visitor, check, form, None).await,
        Err(ServiceError::Domain(DomainError::Phone(e))) => {
            let (status, message) = visitor.refusal(DomainError::Phone(e).into())?;
            let errors = if primary_is_wrong(&visitor, &form) {
                FormErrors {
                    number: Some(message),
                    ..FormErrors::default()
                }
            } else {
                FormErrors {
                    backup: Some(message),
                    ..FormErrors::default()
                }
            };
            form_page(&state, &visitor, status, method, form, errors)
        }
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            let errors = FormErrors {
                page: Some(message),
                ..FormErrors::default()
            };
            form_page(&state, &visitor, status, method, form, errors)
        }
    }
}

/// Whether the refused number is the primary one (else the backup), read as the server
/// reads it.
fn primary_is_wrong(visitor: &Enrolling, form: &PhoneForm) -> bool {
    let region = Some(visitor.settings.default_region.as_str()).filter(|r| !r.is_empty());
    phone::parse(&form.number, non_empty(&form.extension).as_deref(), region).is_err()
}

#[derive(Template)]
#[template(path = "enroll_phone_wait.html")]
struct WaitTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    /// What is happening ("Calling +33 6 12 34 56 78…").
    status: String,
    /// A one-way text: the page asks for its code.
    code_form: bool,
    form: PhoneForm,
}

fn wait_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    step: &str,
    sent_to: &str,
    form: PhoneForm,
    error: Option<String>,
) -> Result<Response, WebError> {
    let t = visitor.t();
    let text = match step {
        "text_code" => t.t1("verify-text-intro", "number", sent_to),
        "text_reply" => t.t1("phone-reply-waiting", "number", sent_to),
        _ => t.t1("phone-calling", "number", sent_to),
    };
    let page = WaitTemplate {
        page: visitor.page(state),
        wizard: visitor.mode == Mode::Wizard,
        error,
        status: text,
        code_form: step == "text_code",
        form,
    };
    Ok(visitor.finish(render(status, &page)?))
}

/// What the pages show for where a check stands. `decided` is what the waiting page's
/// script learnt when it asked (`saved`, or `failed:<reason>`), for a check its asking
/// already closed.
async fn outcome(
    state: &AppState,
    visitor: &Enrolling,
    check: PhoneCheck,
    form: PhoneForm,
    decided: Option<&str>,
) -> Result<Response, WebError> {
    let method = parse_method(&form.method).unwrap_or(Method::PhoneCall);
    match check {
        PhoneCheck::Waiting { step, sent_to } => {
            wait_page(state, visitor, StatusCode::OK, &step, &sent_to, form, None)
        }
        PhoneCheck::Saved => Ok(visitor.finish(done(visitor.mode, "phone"))),
        PhoneCheck::Failed { reason } => {
            let errors = FormErrors {
                page: Some(check_failed_message(&visitor.t(), &reason)),
                ..FormErrors::default()
            };
            form_page(state, visitor, StatusCode::OK, method, form, errors)
        }
        PhoneCheck::None => match decided.and_then(|d| d.strip_prefix("failed:")) {
            Some(reason) => {
                let errors = FormErrors {
                    page: Some(check_failed_message(&visitor.t(), reason)),
                    ..FormErrors::default()
                };
                form_page(state, visitor, StatusCode::OK, method, form, errors)
            }
            // Nothing under way: the wizard goes on from what is stored (the next step when
            // the numbers were saved, the phone form again when not); the account page
            // says the change is saved only when the stored number is the one typed.
            None => match visitor.mode {
                Mode::Wizard => Ok(visitor.finish(Redirect::to("/enroll"))),
                Mode::Account => {
                    let stored = match state.service().profile(&visitor.id).await {
                        Ok(p) => p.phone,
                        Err(e) => return Err(visitor.refused(e)),
                    };
                    let region =
                        Some(visitor.settings.default_region.as_str()).filter(|r| !r.is_empty());
                    let typed = phone::parse(&form.number, None, region).ok();
                    if decided == Some("saved") && typed.is_some_and(|p| Some(p.number) == stored) {
                        Ok(visitor.finish(done(visitor.mode, "phone")))
                    } else {
                        form_page(
                            state,
                            visitor,
                            StatusCode::OK,
                            method,
                            form,
                            FormErrors::default(),
                        )
                    }
                }
            },
        },
    }
}

/// What the form says when the call or text did not prove the number.
pub(super) fn check_failed_message(t: &Translator, reason: &str) -> String {
    match reason {
        "busy" => t.t("phone-check-busy"),
        "no_answer" => t.t("phone-check-no-answer"),
        "expired" => t.t("phone-check-expired"),
        "invalid_code" => t.t("phone-check-wrong"),
        "fraud"
        | "undelivered"
        | "provider_unavailable"
        | "rate_limited"
        | "country_not_allowed"
        | "user_locked" => super::verify::phone_ended_message(t, reason, Some(reason)),
        _ => t.t("phone-check-denied"),
    }
}

#[derive(serde::Serialize)]
struct CheckStatus {
    decided: bool,
    /// `saved`, or `failed:<reason>`, once decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
}

/// Whether the check is decided (the waiting page's script asks); asking changes nothing.
async fn status_get(
    State(state): State<AppState>,
    Client(client): Client,
    visitor: Enrolling,
) -> Response {
    let status = match state
        .service()
        .phone_check(&visitor.id, false, &client)
        .await
    {
        Ok(PhoneCheck::Waiting { .. }) => CheckStatus {
            decided: false,
            outcome: None,
        },
        Ok(PhoneCheck::Saved) => CheckStatus {
            decided: true,
            outcome: Some("saved".into()),
        },
        Ok(PhoneCheck::Failed { reason }) => CheckStatus {
            decided: true,
            outcome: Some(format!("failed:{reason}")),
        },
        Ok(PhoneCheck::None) | Err(_) => CheckStatus {
            decided: true,
            outcome: None,
        },
    };
    visitor.finish(axum::Json(status).into_response())
}

/// The waiting page's form: takes where the check stands.
async fn check_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let decided = field(&form, "outcome").map(str::to_owned);
    let form = PhoneForm::read(&form);
    match state
        .service()
        .phone_check(&visitor.id, true, &client)
        .await
    {
        Ok(check) => outcome(&state, &visitor, check, form, decided.as_deref()).await,
        Err(e) => Err(visitor.refused(e)),
    }
}

/// The code of a one-way text, typed in the page.
async fn code_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let code = field(&form, "code").unwrap_or("").to_owned();
    let form = PhoneForm::read(&form);
    match state
        .service()
        .phone_check_code(&visitor.id, &code, &client)
        .await
    {
        Ok(check) => outcome(&state, &visitor, check, form, None).await,
        Err(e) => {
            // A wrong code may have ended the check (too many): then the form says so.
            if let Ok(check @ PhoneCheck::Failed { .. }) = state
                .service()
                .phone_check(&visitor.id, true, &client)
                .await
            {
                return outcome(&state, &visitor, check, form, None).await;
            }
            let (status, message) = visitor.refusal(e)?;
            let region = Some(visitor.settings.default_region.as_str()).filter(|r| !r.is_empty());
            let sent_to = phone::parse(&form.number, None, region)
                .map(|p| phone::display(&p.number))
                .unwrap_or_else(|_| form.number.clone());
            wait_page(
                &state,
                &visitor,
                status,
                "text_code",
                &sent_to,
                form,
                Some(message),
            )
        }
    }
}
