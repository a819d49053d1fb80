//! The language switcher: a form on every page, so it works without JavaScript.

use super::{CsrfForm, safe_next};
use crate::web::client::Client;
use crate::web::session::{self, LANG_COOKIE};
use crate::web::{AppState, WebError};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use serde::Deserialize;
use twofold_engine::Language;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/language", post(language_post))
}

#[derive(Debug, Deserialize)]
struct LanguageForm {
    #[serde(default)]
    language: String,
    #[serde(default)]
    next: Option<String>,
}

async fn language_post(
    State(state): State<AppState>,
    Client(client): Client,
    CsrfForm { form, who: visitor }: CsrfForm<LanguageForm>,
) -> Result<Response, WebError> {
    let language = Language::from_tag(&form.language)
        .ok_or_else(|| WebError::BadRequest(format!("unknown language {:?}", form.language)))?;
    if !visitor.settings.allow_language_selection {
        return Err(WebError::Forbidden);
    }
    // The user's own setting changes once they are past the second factor (or enrolling);
    // before that, the cookie alone carries the choice.
    if let Some(active) = &visitor.session
        && !matches!(active.view.stage, super::Stage::Verify { .. })
    {
        state
            .service()
            .set_language(&active.id, language, &client)
            .await?;
    }
    let next = match form.next.as_deref() {
        Some("/sign-in") => "/sign-in".to_owned(),
        other => safe_next(other),
    };
    let mut response = visitor.finish(Redirect::to(&next));
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LANG_COOKIE, language.tag(), Some(365 * 86_400)),
    );
    Ok(response.into_response())
}
