//! The mobile app, in the enrolment wizard and from the account page: installing an app,
//! an activation code (with its address and QR code) for it, and "Authenticate me now", a
//! first request the user approves in the app while the page shows the number to choose.
//! In the wizard, the app becomes the user's method once it answered that request.

use super::enroll::{Enrolling, Mode, done};
use super::sign_in::format_time;
use super::{CsrfForm, Fields, PageContext, field, render};
use crate::service::AppCheck;
use crate::service::app::{Activation, DeviceView};
use crate::web::client::Client;
use crate::web::i18n::Translator;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use twofold_engine::flow;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/enroll/app", get(app_get))
        .route("/enroll/app/code", post(code_post))
        .route("/enroll/app/test", post(test_post))
        .route("/enroll/app/status", get(status_get))
        .route("/enroll/app/check", post(check_post))
}

/// An activated device, as the pages list it.
pub struct DeviceLine {
    pub id: String,
    pub name: String,
    /// "Activated 2026-11-25 14:32 UTC · last used … · offline codes".
    pub details: String,
}

/// The devices as the pages list them.
pub(super) fn device_lines(t: &Translator, devices: &[DeviceView]) -> Vec<DeviceLine> {
    devices
        .iter()
        .map(|d| {
            let mut details = vec![
                t.t1("device-activated", "at", &format_time(d.created_at)),
                match d.last_used_at {
                    Some(at) => t.t1("device-last-used", "at", &format_time(at)),
                    None => t.t("device-never-used"),
                },
            ];
            if d.offline_codes {
                details.push(t.t("device-offline-codes"));
            }
            DeviceLine {
                id: d.id.clone(),
                name: d.name.clone(),
                details: details.join(" · "),
            }
        })
        .collect()
}

/// An activation code as the page shows it.
pub struct ActivationView {
    pub code: String,
    pub url: String,
    pub qr_svg: String,
    pub valid_until: String,
}

#[derive(Template)]
#[template(path = "enroll_app.html")]
struct AppTemplate {
    page: PageContext,
    wizard: bool,
    error: Option<String>,
    activation: Option<ActivationView>,
    devices: Vec<DeviceLine>,
    /// Another code may be made (activation allowed, fewer devices than the limit).
    can_activate: bool,
    /// Why no code may be made, when the user may not activate another device.
    cannot_activate: Option<String>,
    /// The label of the button that sends a request ("Authenticate me now", or "Send
    /// again" after one expired).
    test_label: String,
    /// A link away from the page: another method in the wizard, the account page.
    other: Option<(&'static str, String)>,
}

/// The page: what to install, the code (once made), and "Authenticate me now" once a
/// device is activated.
async fn app_page(
    state: &AppState,
    visitor: &Enrolling,
    status: StatusCode,
    error: Option<String>,
    activation: Option<Activation>,
    retry: bool,
) -> Result<Response, WebError> {
    let t = visitor.t();
    let devices = match state.service().devices(&visitor.id).await {
        Ok(d) => d,
        Err(e) => return Err(visitor.refused(e)),
    };
    let settings = &visitor.settings;
    let limit = usize::from(settings.mobile_app_device_limit);
    let can_activate = settings.allow_mobile_app_activation && devices.len() < limit;
    let cannot_activate = if !settings.allow_mobile_app_activation {
        Some(t.t("app-activation-disabled"))
    } else if devices.len() >= limit {
        Some(t.t1("app-limit-reached", "limit", &limit.to_string()))
    } else {
        None
    };
    let other = match visitor.mode {
        Mode::Wizard if flow::enrollable_methods(settings).len() > 1 => {
            Some(("/enroll/method", t.t("enroll-method-other")))
        }
        Mode::Wizard => None,
        Mode::Account => Some(("/account", t.t("account-back"))),
    };
    let page = AppTemplate {
        page: visitor.page(state),
        wizard: visitor.mode == Mode::Wizard,
        error,
        activation: activation.map(|a| ActivationView {
            valid_until: t.t1(
                "enroll-app-valid-until",
                "until",
                &format_time(a.expires_at),
            ),
            code: a.code,
            url: a.url,
            qr_svg: a.qr_svg,
        }),
        devices: device_lines(&t, &devices),
        can_activate,
        cannot_activate,
        test_label: if retry {
            t.t("app-send-again")
        } else {
            t.t("enroll-app-test")
        },
        other,
    };
    Ok(visitor.finish(render(status, &page)?))
}

async fn app_get(State(state): State<AppState>, visitor: Enrolling) -> Result<Response, WebError> {
    app_page(&state, &visitor, StatusCode::OK, None, None, false).await
}

/// "Generate activation code": a new code, shown once on the page this answers with.
async fn code_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    match state
        .service()
        .begin_app_activation(&visitor.id, &client)
        .await
    {
        Ok(activation) => {
            app_page(
                &state,
                &visitor,
                StatusCode::OK,
                None,
                Some(activation),
                false,
            )
            .await
        }
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            app_page(&state, &visitor, status, Some(message), None, false).await
        }
    }
}

#[derive(Template)]
#[template(path = "enroll_app_wait.html")]
struct WaitTemplate {
    page: PageContext,
    wizard: bool,
    /// What the page says ("We sent a request to your app. Choose 47 in the app.").
    status: String,
    number: Option<u8>,
    /// The request expired unanswered: the page offers to send another.
    expired: bool,
}

/// "Authenticate me now": a request to the user's devices; in the wizard, approving it
/// makes the app the user's method.
async fn test_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let make_primary = visitor.mode == Mode::Wizard;
    match state
        .service()
        .begin_app_check(&visitor.id, make_primary, &client)
        .await
    {
        Ok(check) => outcome(&state, &visitor, check, None).await,
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            app_page(&state, &visitor, status, Some(message), None, false).await
        }
    }
}

/// What the pages show for where "Authenticate me now" stands. `decided` is what the
/// waiting page's script learnt when it asked (`passed`, or `failed:<reason>`), for a test
/// its asking already closed.
async fn outcome(
    state: &AppState,
    visitor: &Enrolling,
    check: AppCheck,
    decided: Option<&str>,
) -> Result<Response, WebError> {
    let t = visitor.t();
    match check {
        AppCheck::Waiting { number, expired } => {
            let status = match number {
                Some(n) => t.t1("app-push-choose", "number", &n.to_string()),
                None => t.t("app-push-approve"),
            };
            let page = WaitTemplate {
                page: visitor.page(state),
                wizard: visitor.mode == Mode::Wizard,
                status,
                number,
                expired,
            };
            Ok(visitor.finish(render(StatusCode::OK, &page)?))
        }
        AppCheck::Passed => Ok(visitor.finish(done(visitor.mode, "app"))),
        AppCheck::Failed { reason } => failed(state, visitor, &reason).await,
        AppCheck::None => match decided.and_then(|d| d.strip_prefix("failed:")) {
            Some(reason) => failed(state, visitor, reason).await,
            // Nothing under way: the wizard goes on from what is stored; the account page
            // shows the devices.
            None => match visitor.mode {
                Mode::Wizard => Ok(visitor.finish(Redirect::to("/enroll"))),
                Mode::Account => Ok(visitor.finish(Redirect::to("/enroll/app"))),
            },
        },
    }
}

/// The page again, saying why the request was not approved.
async fn failed(state: &AppState, visitor: &Enrolling, reason: &str) -> Result<Response, WebError> {
    let message = check_failed_message(&visitor.t(), reason);
    let retry = reason == "expired";
    app_page(state, visitor, StatusCode::OK, Some(message), None, retry).await
}

/// What the page says when "Authenticate me now" was not approved.
fn check_failed_message(t: &Translator, reason: &str) -> String {
    match reason {
        "declined" => t.t("app-check-declined"),
        "invalid_code" => t.t("app-check-wrong"),
        "expired" => t.t("app-check-expired"),
        "fraud" => t.t("phone-ended-fraud"),
        "rate_limited" => t.t("app-push-limited"),
        "user_locked" => t.t("sign-in-over"),
        _ => t.t("app-check-failed"),
    }
}

#[derive(serde::Serialize)]
struct CheckStatus {
    decided: bool,
    /// The request expired unanswered (the page then offers to send another).
    expired: bool,
    /// `passed`, or `failed:<reason>`, once decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
}

/// Whether "Authenticate me now" is decided (the waiting page's script asks); asking
/// changes nothing.
async fn status_get(
    State(state): State<AppState>,
    Client(client): Client,
    visitor: Enrolling,
) -> Response {
    let status = match state.service().app_check(&visitor.id, false, &client).await {
        Ok(AppCheck::Waiting { expired, .. }) => CheckStatus {
            decided: false,
            expired,
            outcome: None,
        },
        Ok(AppCheck::Passed) => CheckStatus {
            decided: true,
            expired: false,
            outcome: Some("passed".into()),
        },
        Ok(AppCheck::Failed { reason }) => CheckStatus {
            decided: true,
            expired: false,
            outcome: Some(format!("failed:{reason}")),
        },
        Ok(AppCheck::None) | Err(_) => CheckStatus {
            decided: true,
            expired: false,
            outcome: None,
        },
    };
    visitor.finish(axum::Json(status).into_response())
}

/// The waiting page's form: takes where "Authenticate me now" stands.
async fn check_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, Enrolling>,
) -> Result<Response, WebError> {
    let decided = field(&form, "outcome").map(str::to_owned);
    match state.service().app_check(&visitor.id, true, &client).await {
        Ok(check) => outcome(&state, &visitor, check, decided.as_deref()).await,
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            app_page(&state, &visitor, status, Some(message), None, false).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twofold_engine::Language;

    #[test]
    fn every_outcome_of_a_first_request_has_its_own_message() {
        for language in Language::ALL.iter() {
            let t = Translator::new(*language);
            let messages: Vec<String> = ["declined", "invalid_code", "expired", "fraud"]
                .iter()
                .map(|r| check_failed_message(&t, r))
                .collect();
            for (i, m) in messages.iter().enumerate() {
                assert!(!m.is_empty() && !m.contains("Unknown localization"), "{m}");
                assert!(!messages[..i].contains(m), "{language:?}: {m} twice");
            }
        }
    }
}
