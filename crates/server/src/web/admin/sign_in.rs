//! The console's sign-in (a password, then the second factor on the portal's own page),
//! signing out, and the first administrator's bootstrap link.

use super::{AdminRoutes, Need, safe_admin_next};
use crate::service::Stage;
use crate::web::client::Client;
use crate::web::portal::sign_in::{Door, SignInForm, SignInTemplate, password_step};
use crate::web::portal::{CsrfForm, PageContext, Visitor, render};
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

/// The console's door: its own page and form, the portal's password step.
const ADMIN_DOOR: Door = Door {
    action: "/admin/sign-in",
    title: "admin-sign-in-title",
    intro: "admin-sign-in-intro",
    no_factor: "admin-sign-in-needs-factor",
};

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
    let page = SignInTemplate::new(visitor.page(&state), ADMIN_DOOR, next, notice, None);
    Ok(visitor.finish(render(StatusCode::OK, &page)?))
}

async fn sign_in_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<SignInForm>,
) -> Result<Response, WebError> {
    let service = state.admin_service().cloned().ok_or(WebError::NotFound)?;
    let next = safe_admin_next(form.next.as_deref());
    password_step(
        &state,
        &client,
        &visitor,
        &form,
        ADMIN_DOOR,
        next.clone(),
        || {
            service.admin_sign_in(
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
