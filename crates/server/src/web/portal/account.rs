//! The account page: the profile, the second factors (the mobile app's devices among them),
//! and the one-time bypass.

use super::enroll_app::{DeviceLine, device_lines};
use super::sign_in::format_time;
use super::{CsrfForm, Fields, PageContext, SignedIn, field, render};
use crate::store::TokenKind;
use crate::web::client::Client;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use twofold_engine::flow;
use twofold_engine::settings::Method;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_get))
        .route("/account/oath/remove", post(remove_token_post))
        .route("/account/app/remove", post(remove_device_post))
        .route("/account/bypass", post(bypass_post))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTemplate {
    page: PageContext,
    notice: Option<String>,
    error: Option<String>,
    intro: String,
    username: String,
    email: String,
    phone: String,
    backup_phone: String,
    method: String,
    /// The user's phone method, when they have one ("Change phone numbers" keeps it).
    phone_method: Option<&'static str>,
    /// Users may change their method (to a phone method; the authenticator app has its
    /// own link).
    change_method: bool,
    language: String,
    member_since: String,
    token: String,
    has_token: bool,
    show_pin: bool,
    show_questions: bool,
    answers: usize,
    allow_bypass: bool,
    prompt_bypass_seconds: bool,
    bypass_default: u32,
    bypass_max: u32,
    bypass_until: Option<String>,
    /// The mobile app's section is shown (activation allowed, or devices to list).
    show_app: bool,
    devices: Vec<DeviceLine>,
    /// The link to activate a device ("Activate the mobile app", "Activate another
    /// device"), while the user may.
    activate_app: Option<String>,
    /// Why no other device may be activated (the limit is reached).
    app_limit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AccountQuery {
    changed: Option<String>,
}

async fn account_page(
    state: &AppState,
    visitor: &SignedIn,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let profile = state.service().profile(visitor.id()).await?;
    let factors = state.service().factors(visitor.id()).await?;
    let t = visitor.t();
    let not_set = t.t("account-not-set");
    let token = match &factors.token {
        Some(token) => match (&token.kind, &token.serial) {
            (TokenKind::Hardware, Some(serial)) => t.t1("token-hardware", "serial", serial),
            _ => t.t("token-app"),
        },
        None => t.t("token-none"),
    };
    let settings = &visitor.settings;
    let devices = state.service().devices(visitor.id()).await?;
    let limit = usize::from(settings.mobile_app_device_limit);
    let activate_app = (settings.allow_mobile_app_activation && devices.len() < limit).then(|| {
        if devices.is_empty() {
            t.t("app-activate")
        } else {
            t.t("app-activate-another")
        }
    });
    let app_limit = (settings.allow_mobile_app_activation && devices.len() >= limit)
        .then(|| t.t1("app-limit-reached", "limit", &limit.to_string()));
    let page = AccountTemplate {
        page: visitor.page(state),
        notice,
        error,
        intro: t.t1("account-intro", "username", &profile.username),
        username: profile.username,
        email: profile.email.unwrap_or_else(|| not_set.clone()),
        phone: profile
            .phone
            .as_deref()
            .map(twofold_engine::phone::display)
            .unwrap_or_else(|| not_set.clone()),
        backup_phone: if factors.factors.has_backup_phone {
            t.t("account-set")
        } else {
            not_set.clone()
        },
        method: factors
            .factors
            .method
            .map(|m| super::enroll::method_label(&t, m))
            .unwrap_or_else(|| not_set.clone()),
        phone_method: factors
            .factors
            .method
            .filter(|m| matches!(m, Method::PhoneCall | Method::Sms))
            .map(super::enroll::method_value),
        change_method: settings.allow_method_selection
            && flow::enrollable_methods(settings)
                .iter()
                .any(|m| matches!(m, Method::PhoneCall | Method::Sms)),
        language: profile
            .language
            .map(|l| l.autonym().to_owned())
            .unwrap_or(not_set),
        member_since: format_time(profile.created_at),
        has_token: factors.token.is_some(),
        token,
        show_pin: settings.pin_required || factors.factors.has_pin,
        show_questions: settings.security_questions_fallback,
        answers: factors.factors.security_answers,
        allow_bypass: settings.allow_one_time_bypass,
        prompt_bypass_seconds: settings.prompt_for_bypass_seconds,
        bypass_default: settings.one_time_bypass_seconds,
        bypass_max: settings.one_time_bypass_max_seconds,
        bypass_until: factors.active_bypass_until.map(format_time),
        show_app: settings.allow_mobile_app_activation || !devices.is_empty(),
        devices: device_lines(&t, &devices),
        activate_app,
        app_limit,
    };
    Ok(visitor.finish(render(status, &page)?))
}

async fn account_get(
    State(state): State<AppState>,
    visitor: SignedIn,
    query: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let t = visitor.t();
    let notice = match query.changed.as_deref() {
        Some("oath") => Some(t.t("changed-oath")),
        Some("pin") => Some(t.t("changed-pin")),
        Some("phone") => Some(t.t("changed-phone")),
        Some("questions") => Some(t.t("changed-questions")),
        Some("token-removed") => Some(t.t("changed-token-removed")),
        Some("app") => Some(t.t("changed-app")),
        Some("device-removed") => Some(t.t("changed-device-removed")),
        Some("confirmed") => Some(t.t("step-up-done")),
        _ => None,
    };
    // A confirmation that was not given (denied in the app, unanswered) is said as an error.
    let error =
        (query.changed.as_deref() == Some("not-confirmed")).then(|| t.t("step-up-not-confirmed"));
    account_page(&state, &visitor, StatusCode::OK, notice, error).await
}

async fn remove_token_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields, SignedIn>,
) -> Result<Response, WebError> {
    match state
        .service()
        .remove_oath_token(visitor.id(), &client)
        .await
    {
        Ok(()) => Ok(visitor.finish(Redirect::to("/account?changed=token-removed"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            account_page(&state, &visitor, status, None, Some(message)).await
        }
    }
}

/// Removes one of the user's devices: it cannot approve anything any more.
async fn remove_device_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, SignedIn>,
) -> Result<Response, WebError> {
    let device = field(&form, "device_id").unwrap_or("");
    match state
        .service()
        .remove_device(visitor.id(), device, &client)
        .await
    {
        Ok(()) => Ok(visitor.finish(Redirect::to("/account?changed=device-removed"))),
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            account_page(&state, &visitor, status, None, Some(message)).await
        }
    }
}

async fn bypass_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<Fields, SignedIn>,
) -> Result<Response, WebError> {
    let t = visitor.t();
    let raw = field(&form, "seconds").unwrap_or("").trim();
    let seconds = if raw.is_empty() {
        None
    } else {
        match raw.parse::<u32>() {
            Ok(s) => Some(s),
            Err(_) => {
                let message = t.t1(
                    "bypass-out-of-range",
                    "max",
                    &visitor.settings.one_time_bypass_max_seconds.to_string(),
                );
                return account_page(
                    &state,
                    &visitor,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some(message),
                )
                .await;
            }
        }
    };
    match state
        .service()
        .start_bypass(visitor.id(), seconds, &client)
        .await
    {
        Ok(until) => {
            let notice = t.t1("bypass-started", "until", &format_time(until));
            account_page(&state, &visitor, StatusCode::OK, Some(notice), None).await
        }
        Err(e) => {
            let (status, message) = visitor.refusal(e)?;
            account_page(&state, &visitor, status, None, Some(message)).await
        }
    }
}
