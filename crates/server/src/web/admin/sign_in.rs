//! The console's sign-in (a password, then the second factor on the portal's own page),
//! signing out, and the first administrator's bootstrap link.

use super::{AdminRoutes, Need, safe_admin_next};
use crate::service::{ServiceError, SignInOutcome, Stage};
use crate::web::client::Client;
use crate::web::portal::messages::{self, Step};
use crate::web::portal::{CsrfForm, PageContext, Visitor, landing, moved_to, render};
use crate::web::session::{self, SESSION_COOKIE};
use crate::web::{AppState, WebError};
use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use twofold_engine::flow::Via;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    r.get("/admin/sign-in", Need::Public, sign_in_get)
        .post("/admin/sign-in", Need::Public, sign_in_post)
        .post("/admin/sign-out", Need::Admin, sign_out_post)
        .get("/admin/bootstrap", Need::Public, bootstrap_get)
        .post("/admin/bootstrap", Need::Public, bootstrap_post)
}

#[derive(Template)]
#[template(path = "admin/sign_in.html")]
struct SignInTemplate {
    page: PageContext,
    next: String,
    username: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
    bootstrapped: Option<String>,
}

async fn sign_in_get(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Query<SignInQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let next = safe_admin_next(query.next.as_deref());
    if visitor
        .signed_in()
        .is_some_and(|s| s.view.admin && s.view.step_up.is_none())
    {
        return Ok(Redirect::to(&next).into_response());
    }
    let t = visitor.t();
    let notice = if query.signed_out.is_some() {
        Some(t.t("signed-out"))
    } else if query.bootstrapped.is_some() {
        Some(t.t("admin-bootstrap-done"))
    } else if visitor.session_ended {
        Some(t.t("sign-in-expired"))
    } else {
        None
    };
    let page = SignInTemplate {
        page: visitor.page(&state),
        next,
        username: String::new(),
        notice,
        error: None,
    };
    Ok(visitor.finish(render(StatusCode::OK, &page)?))
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn sign_in_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<SignInForm>,
) -> Result<Response, WebError> {
    let service = state.admin_service().cloned().ok_or(WebError::NotFound)?;
    let t = visitor.t();
    let next = safe_admin_next(form.next.as_deref());
    let again = |status: StatusCode, message: String| -> Result<Response, WebError> {
        let page = SignInTemplate {
            page: visitor.page(&state),
            next: next.clone(),
            username: form.username.chars().take(256).collect(),
            notice: None,
            error: Some(message),
        };
        Ok(visitor.finish(render(status, &page)?))
    };
    if !state.limits().allow(client.ip, &form.username) {
        let mut response = again(StatusCode::TOO_MANY_REQUESTS, t.t("sign-in-rate-limited"))?;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        return Ok(response);
    }
    let outcome = match service
        .admin_sign_in(
            &form.username,
            &form.password,
            Some(&next),
            visitor.token(),
            &client,
        )
        .await
    {
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
    let session = match outcome {
        SignInOutcome::Started(session) => session,
        SignInOutcome::ContactAdministrator => {
            return again(StatusCode::FORBIDDEN, t.t("admin-sign-in-needs-factor"));
        }
        SignInOutcome::PhoneNotReached { reason, app } => {
            let message = if app {
                crate::web::portal::verify::app_ended_message(&t, "denied", Some(&reason))
            } else {
                crate::web::portal::verify::phone_ended_message(&t, "denied", Some(&reason))
            };
            return again(StatusCode::SERVICE_UNAVAILABLE, message);
        }
    };
    Ok(moved_to(&session, &landing(&session)))
}

async fn sign_out_post(
    State(state): State<AppState>,
    admin: super::Admin,
) -> Result<Response, WebError> {
    if let Some(token) = admin.visitor.token() {
        state.service().sign_out(token, &admin.client).await?;
    }
    let mut response = Redirect::to("/admin/sign-in?signed_out=1").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE));
    Ok(response)
}

#[derive(Template)]
#[template(path = "admin/bootstrap.html")]
struct BootstrapTemplate {
    page: PageContext,
    token: String,
    /// The signed-in user who would become the owner; `None`: not signed in (with a factor).
    username: Option<String>,
    sign_in_href: String,
}

#[derive(Debug, Default, Deserialize)]
struct BootstrapQuery {
    #[serde(default)]
    token: String,
}

/// The signed-in user of a session that proved a factor (not a trusted address or a bypass).
fn proved_user(visitor: &Visitor) -> Option<String> {
    visitor.signed_in().and_then(|s| match s.view.stage {
        Stage::SignedIn { via } if !matches!(via, Via::TrustedIp | Via::Bypass) => {
            Some(s.view.username.clone())
        }
        _ => None,
    })
}

async fn bootstrap_get(
    State(state): State<AppState>,
    visitor: Visitor,
    query: Result<Query<BootstrapQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let service = state.admin_service().cloned().ok_or(WebError::NotFound)?;
    let token = query.map(|Query(q)| q.token).unwrap_or_default();
    if !service.bootstrap_open(&token).await? {
        return Err(WebError::Refused(
            twofold_engine::admin::AdminError::BootstrapInvalid.into(),
        ));
    }
    let back = format!(
        "/admin/bootstrap?token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let page = BootstrapTemplate {
        page: visitor.page(&state),
        username: proved_user(&visitor),
        sign_in_href: format!(
            "/sign-in?next={}",
            url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
        ),
        token,
    };
    Ok(visitor.finish(render(StatusCode::OK, &page)?))
}

#[derive(Debug, Deserialize)]
struct BootstrapForm {
    #[serde(default)]
    token: String,
}

async fn bootstrap_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<BootstrapForm>,
) -> Result<Response, WebError> {
    let service = state.admin_service().cloned().ok_or(WebError::NotFound)?;
    let Some(username) = proved_user(&visitor) else {
        return Err(visitor.elsewhere());
    };
    let user = service.find_user(&username).await?;
    service
        .redeem_bootstrap(&form.token, &user, &client)
        .await?;
    Ok(Redirect::to("/admin/sign-in?bootstrapped=1").into_response())
}
