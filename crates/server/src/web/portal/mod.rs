//! The portal's pages. Each module holds its handlers (`<page>_<get|post>`) and templates.

mod account;
mod enroll;
mod enroll_app;
mod enroll_phone;
mod extract;
mod language;
pub mod messages;
pub(crate) mod sign_in;
pub(crate) mod verify;

use super::i18n::Translator;
use super::session::{self, LANG_COOKIE, PRE_COOKIE, SESSION_COOKIE};
use super::{AppState, WebError};
use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use twofold_engine::{DomainError, Language, Settings};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/static/style.css", get(stylesheet))
        .route("/static/wait.js", get(wait_script))
        .route("/static/import.js", get(import_script))
        .merge(sign_in::routes())
        .merge(account::routes())
        .merge(language::routes())
        .merge(verify::routes())
        .merge(enroll::routes())
        .merge(enroll_phone::routes())
        .merge(enroll_app::routes())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/style.css"),
    )
        .into_response()
}

async fn wait_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/wait.js"),
    )
        .into_response()
}

/// The token import page's script (it polls the import's status).
async fn import_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../static/import.js"),
    )
        .into_response()
}

/// One entry of the language switcher.
pub struct LanguageChoice {
    pub tag: &'static str,
    pub name: &'static str,
    pub selected: bool,
}

/// What the base layout needs on every page.
pub struct PageContext {
    pub t: Translator,
    pub csrf_token: String,
    pub path: String,
    pub show_language: bool,
    pub languages: Vec<LanguageChoice>,
}

impl PageContext {
    /// For error pages: no forms.
    pub fn bare(t: Translator) -> Self {
        Self {
            t,
            csrf_token: String::new(),
            path: "/".into(),
            show_language: false,
            languages: Vec::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorTemplate {
    pub page: PageContext,
    pub message: String,
}

/// The language of a request: the switcher's cookie, then the user's own setting, then the
/// browser's `Accept-Language`, then the default.
pub fn request_language(
    headers: &HeaderMap,
    user: Option<Language>,
    settings: Option<&Settings>,
) -> Language {
    let selectable = settings.is_none_or(|s| s.allow_language_selection);
    let cookie = session::read_cookie(headers, LANG_COOKIE).and_then(Language::from_tag);
    let browser = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Language::negotiate);
    let default = settings.map(|s| s.default_language).unwrap_or_default();
    if selectable {
        cookie.or(user).or(browser).unwrap_or(default)
    } else {
        browser.unwrap_or(default)
    }
}

use crate::service::ServiceError;
pub use crate::service::{PortalSession, SessionView, Stage};
pub use extract::{CsrfForm, SignedIn};
pub(crate) use sign_in::format_time;

/// A visitor's session, as the server describes it.
#[derive(Clone)]
pub struct ActiveSession {
    /// The token as the cookie carries it (the CSRF binding, and what the server is sent).
    pub id: String,
    pub view: SessionView,
}

/// Everything a portal handler knows about who is asking.
#[derive(Clone)]
pub struct Visitor {
    pub session: Option<ActiveSession>,
    /// The cookie carried a session that is gone or expired.
    pub session_ended: bool,
    pre: String,
    new_pre: bool,
    pub language: Language,
    pub settings: Settings,
    pub path: String,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let settings = state.service().settings().await?;
        let mut session = None;
        let mut session_ended = false;
        if let Some(id) = session::read_cookie(&parts.headers, SESSION_COOKIE) {
            match state.service().session(id).await? {
                Some(view) => {
                    session = Some(ActiveSession {
                        id: id.to_owned(),
                        view,
                    })
                }
                None => session_ended = true,
            }
        }
        let (pre, new_pre) = match session::read_cookie(&parts.headers, PRE_COOKIE) {
            Some(p) => (p.to_owned(), false),
            None => (session::new_token(), true),
        };
        let user_language = session.as_ref().and_then(|s| s.view.language);
        let language = request_language(&parts.headers, user_language, Some(&settings));
        Ok(Visitor {
            session,
            session_ended,
            pre,
            new_pre,
            language,
            settings,
            path: parts.uri.path().to_owned(),
        })
    }
}

impl Visitor {
    /// The session, when its user is signed in (second factor done).
    pub fn signed_in(&self) -> Option<&ActiveSession> {
        self.session
            .as_ref()
            .filter(|s| matches!(s.view.stage, Stage::SignedIn { .. }))
    }

    /// The session's token, for the server.
    pub fn token(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.id.as_str())
    }

    pub fn t(&self) -> Translator {
        Translator::new(self.language)
    }

    fn binding(&self) -> &str {
        self.session
            .as_ref()
            .map(|s| s.id.as_str())
            .unwrap_or(&self.pre)
    }

    pub fn csrf_token(&self, state: &AppState) -> String {
        state.csrf().token(self.binding())
    }

    /// Accepts a token made for this visitor's session; a visitor without a session (the
    /// sign-in form, the language switcher) uses their pre-session cookie's. Once a session
    /// exists, only a token bound to it is accepted: a token made for the pre-session
    /// cookie, which a sibling site might plant, gets nowhere after sign-in. A missing
    /// cookie never verifies.
    pub fn check_csrf(&self, state: &AppState, token: &str) -> Result<(), WebError> {
        let ok = match &self.session {
            Some(s) => state.csrf().verify(&s.id, token),
            None => !self.new_pre && state.csrf().verify(&self.pre, token),
        };
        if ok {
            Ok(())
        } else {
            tracing::info!(path = %self.path, "form refused: missing or wrong CSRF token");
            Err(WebError::Forbidden)
        }
    }

    pub fn page(&self, state: &AppState) -> PageContext {
        PageContext {
            t: self.t(),
            csrf_token: self.csrf_token(state),
            path: self.path.clone(),
            show_language: self.settings.allow_language_selection,
            languages: Language::ALL
                .iter()
                .map(|l| LanguageChoice {
                    tag: l.tag(),
                    name: l.autonym(),
                    selected: *l == self.language,
                })
                .collect(),
        }
    }

    /// Adds the cookies this visit needs to `response`.
    pub fn finish(&self, response: impl IntoResponse) -> Response {
        let mut response = response.into_response();
        let headers = response.headers_mut();
        if self.new_pre {
            headers.append(
                header::SET_COOKIE,
                session::set_cookie(PRE_COOKIE, &self.pre, None),
            );
        }
        if self.session_ended {
            headers.append(header::SET_COOKIE, session::clear_cookie(SESSION_COOKIE));
        }
        response
    }

    /// Where a session belongs now, for a request it cannot make at this step: the
    /// second-factor page while one is asked, the wizard while enrolling, the account page
    /// once signed in, else the sign-in page (to come back here after).
    pub fn send_to_step(&self) -> Response {
        match self
            .session
            .as_ref()
            .map(|s| (&s.view.stage, s.view.step_up))
        {
            Some((Stage::Verify { .. }, _)) | Some((Stage::SignedIn { .. }, Some(_))) => {
                self.finish(Redirect::to("/verify"))
            }
            Some((Stage::Enroll, _)) => self.finish(Redirect::to("/enroll")),
            Some((Stage::SignedIn { .. }, None)) => self.finish(Redirect::to("/account")),
            None => {
                let mut target = format!("/sign-in?next={}", url_encode(&self.path));
                if self.session_ended {
                    target.push_str("&expired=1");
                }
                self.finish(Redirect::to(&target))
            }
        }
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Visitor {
    /// Refuses a request the session cannot make at its step: sends it there.
    pub fn elsewhere(&self) -> WebError {
        WebError::Elsewhere(Box::new(self.send_to_step()))
    }

    /// A domain error that is about the session rather than the form: the step the session
    /// is at, or the second factor a change needs first. `None` for the others, which the
    /// page shows.
    fn session_refusal(&self, error: &DomainError) -> Option<Response> {
        match error {
            DomainError::StepUpRequired => Some(self.finish(Redirect::to("/verify"))),
            DomainError::SessionEnded | DomainError::WrongStep => Some(self.send_to_step()),
            _ => None,
        }
    }

    /// What a form shows for a refused request: the status and message of the domain's
    /// refusal. A refusal about the session sends it to its step instead, and the server's
    /// own failures are error pages.
    pub fn refusal(&self, error: ServiceError) -> Result<(StatusCode, String), WebError> {
        match error {
            ServiceError::Domain(e) => match self.session_refusal(&e) {
                Some(to) => Err(WebError::Elsewhere(Box::new(to))),
                None => Ok(messages::message(&self.t(), &e, messages::Step::Other)),
            },
            other => Err(other.into()),
        }
    }

    /// A refused request with no form to show the refusal on: the session sent to its step,
    /// or an error page.
    pub fn refused(&self, error: ServiceError) -> WebError {
        match error {
            ServiceError::Domain(e) => match self.session_refusal(&e) {
                Some(to) => WebError::Elsewhere(Box::new(to)),
                None => WebError::Refused(e),
            },
            other => other.into(),
        }
    }
}

/// The response that sends a session the server moved on to `to`, with its new cookie.
pub fn moved_to(session: &PortalSession, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &session.token, None),
    );
    response
}

/// Where a session the server moved on goes next: the wizard, or the page asked for.
pub fn landing(session: &PortalSession) -> String {
    match session.view.stage {
        Stage::Enroll => "/enroll".to_owned(),
        Stage::Verify { .. } => "/verify".to_owned(),
        Stage::SignedIn { .. } => safe_next(session.view.next.as_deref()),
    }
}

/// A form read as name/value pairs (forms whose field names vary).
pub type Fields = Vec<(String, String)>;

/// A field of a form read as name/value pairs.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Renders a template as an HTML response with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> Result<Response, WebError> {
    let html = template
        .render()
        .map_err(|e| WebError::Internal(format!("template: {e}")))?;
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Where to go after signing in: only a path on this site, never another host.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 512
                && !n.chars().any(|c| c.is_control() || c == '\\')
                && n != "/sign-in" =>
        {
            n.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/account")), "/account");
        assert_eq!(safe_next(Some("//evil.example/")), "/account");
        assert_eq!(safe_next(Some("/\\evil.example/")), "/account");
        assert_eq!(safe_next(Some("https://evil.example/")), "/account");
        assert_eq!(safe_next(None), "/account");
    }
}
