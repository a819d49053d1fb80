//! The account page: the signed-in user's profile.

use super::sign_in::format_time;
use super::{PageContext, Visitor, render};
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/account", get(account_get))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTemplate {
    page: PageContext,
    intro: String,
    username: String,
    email: String,
    phone: String,
    language: String,
    member_since: String,
}

/// Sends a visitor who is not signed in to the sign-in page, to come back here after.
pub(super) fn require_sign_in(visitor: &Visitor) -> Response {
    let mut target = format!("/sign-in?next={}", url_encode(&visitor.path));
    if visitor.session_ended {
        target.push_str("&expired=1");
    }
    visitor.finish(Redirect::to(&target))
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn account_get(
    State(state): State<AppState>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let Some(active) = &visitor.session else {
        return Ok(require_sign_in(&visitor));
    };
    let profile = state.service().profile(&active.record.user_id).await?;
    let t = visitor.t();
    let not_set = t.t("account-not-set");
    let page = AccountTemplate {
        page: visitor.page(&state),
        intro: t.t1("account-intro", "username", &profile.username),
        username: profile.username,
        email: profile.email.unwrap_or_else(|| not_set.clone()),
        phone: profile.phone.unwrap_or_else(|| not_set.clone()),
        language: profile
            .language
            .map(|l| l.autonym().to_owned())
            .unwrap_or(not_set),
        member_since: format_time(profile.created_at),
    };
    Ok(visitor
        .finish(render(StatusCode::OK, &page)?)
        .into_response())
}
