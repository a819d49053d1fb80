//! The sign-in page (password step) and signing out.

use super::messages::{self, Step};
use super::{CsrfForm, Fields, PageContext, Visitor, landing, render, safe_next};
use crate::service::{ServiceError, SignInOutcome};
use crate::web::client::Client;
use crate::web::session::{self, LANG_COOKIE, SESSION_COOKIE};
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_get).post(sign_in_post))
        .route("/sign-out", post(sign_out_post))
}

/// The two doors with a password form: the portal's and the admin console's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Door {
    /// Where the form posts.
    pub action: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    /// What a user with no second factor (and no enrolment) is told.
    pub no_factor: &'static str,
}

pub(crate) const PORTAL: Door = Door {
    action: "/sign-in",
    title: "sign-in-title",
    intro: "sign-in-intro",
    no_factor: "sign-in-not-enrolled",
};

#[derive(Template)]
#[template(path = "sign_in.html")]
pub(crate) struct SignInTemplate {
    page: PageContext,
    door: Door,
    next: String,
    username: String,
    notice: Option<String>,
    error: Option<String>,
}

impl SignInTemplate {
    pub(crate) fn new(
        page: PageContext,
        door: Door,
        next: String,
        notice: Option<String>,
        error: Option<String>,
    ) -> Self {
        Self {
            page,
            door,
            next,
            username: String::new(),
            notice,
            error,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    next: Option<String>,
    expired: Option<String>,
    signed_out: Option<String>,
}

async fn sign_in_get(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Query<SignInQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let next = safe_next(query.next.as_deref());
    if visitor.signed_in().is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    let t = visitor.t();
    let notice = if query.expired.is_some() || visitor.session_ended {
        Some(t.t("sign-in-expired"))
    } else if query.signed_out.is_some() {
        Some(t.t("signed-out"))
    } else {
        None
    };
    let error = (!visitor.settings.allow_user_login).then(|| t.t("sign-in-disabled"));
    let page = SignInTemplate::new(visitor.page(&state), PORTAL, next, notice, error);
    Ok(visitor.finish(render(StatusCode::OK, &page)?))
}

/// The password form, as either door posts it.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub next: Option<String>,
}

async fn sign_in_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<SignInForm>,
) -> Result<Response, WebError> {
    let next = safe_next(form.next.as_deref());
    let service = state.service();
    password_step(
        &state,
        &client,
        &visitor,
        &form,
        PORTAL,
        next.clone(),
        || {
            service.sign_in(
                &form.username,
                &form.password,
                Some(&next),
                visitor.token(),
                &client,
            )
        },
    )
    .await
}

/// The password step of either door: the rate limit, then `sign_in`, then where the session
/// goes (the second factor, the wizard, or the page asked for), or the form again with why.
pub(crate) async fn password_step<F, Fut>(
    state: &AppState,
    client: &crate::service::ClientContext,
    visitor: &Visitor,
    form: &SignInForm,
    door: Door,
    next: String,
    sign_in: F,
) -> Result<Response, WebError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<SignInOutcome, ServiceError>>,
{
    let t = visitor.t();
    let again = |status: StatusCode, message: String| -> Result<Response, WebError> {
        let mut page =
            SignInTemplate::new(visitor.page(state), door, next.clone(), None, Some(message));
        page.username = form.username.chars().take(256).collect();
        Ok(visitor.finish(render(status, &page)?))
    };

    if !state.limits().allow(client.ip, &form.username) {
        let mut response = again(StatusCode::TOO_MANY_REQUESTS, t.t("sign-in-rate-limited"))?;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        return Ok(response);
    }

    let outcome = match sign_in().await {
        Ok(outcome) => outcome,
        // The password was right: saying the account administers nothing gives nothing away.
        Err(ServiceError::Domain(
            e @ twofold_engine::DomainError::Admin(
                twofold_engine::admin::AdminError::NotAnAdministrator(_),
            ),
        )) => {
            let (status, message) = messages::message(&t, &e, Step::Other);
            return again(status, message);
        }
        Err(ServiceError::Domain(e)) => {
            let (status, message) = messages::message(&t, &e, Step::Password);
            return again(status, message);
        }
        Err(other) => return Err(other.into()),
    };
    // The server started a new session (a new id at every sign-in: a session fixed before
    // signing in is worthless) at the step it decided.
    let session = match outcome {
        SignInOutcome::Started(session) => session,
        SignInOutcome::ContactAdministrator => {
            return again(StatusCode::FORBIDDEN, t.t(door.no_factor));
        }
        SignInOutcome::PhoneNotReached { reason, app } => {
            let message = if app {
                super::verify::app_ended_message(&t, "denied", Some(&reason))
            } else {
                super::verify::phone_ended_message(&t, "denied", Some(&reason))
            };
            return again(StatusCode::SERVICE_UNAVAILABLE, message);
        }
    };
    let language = session.view.language;
    let mut response = super::moved_to(&session, &landing(&session));
    if let Some(language) = language.filter(|_| visitor.settings.allow_language_selection) {
        response.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(LANG_COOKIE, language.tag(), Some(365 * 86_400)),
        );
    }
    Ok(response)
}

async fn sign_out_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { who: visitor, .. }: CsrfForm<Fields>,
) -> Result<Response, WebError> {
    if let Some(token) = visitor.token() {
        state.service().sign_out(token, &client).await?;
    }
    let mut response = Redirect::to("/sign-in?signed_out=1").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE));
    Ok(response)
}

/// A moment as shown to users: `2026-11-25 14:32 UTC`.
pub(crate) fn format_time(at: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| at.to_string())
}
