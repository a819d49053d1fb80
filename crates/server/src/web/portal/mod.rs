//! The portal's pages. Each module holds its handlers (`<page>_<get|post>`) and templates.

mod account;
mod enroll;
mod language;
mod sign_in;
mod verify;

use super::i18n::Translator;
use super::session::{self, LANG_COOKIE, PRE_COOKIE, SESSION_COOKIE};
use super::{AppState, WebError};
use crate::store::SessionRecord;
use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use twofold_engine::flow::{Challenge, Via};
use twofold_engine::{Language, Settings};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/account") }))
        .route("/static/style.css", get(stylesheet))
        .merge(sign_in::routes())
        .merge(account::routes())
        .merge(language::routes())
        .merge(verify::routes())
        .merge(enroll::routes())
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

/// Where a session stands: signed in, or between the password and the second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage")]
pub enum Stage {
    SignedIn {
        via: Via,
    },
    /// The password was right; the second factor is asked. `asked` holds the security
    /// questions drawn for this attempt, so reloading the page does not draw easier ones.
    Verify {
        challenge: Challenge,
        asked: Vec<String>,
    },
    /// The password was right and the user enrols (first sign-in).
    Enroll,
}

/// What the portal keeps in a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub username: String,
    #[serde(default)]
    pub language: Option<Language>,
    #[serde(flatten)]
    pub stage: Stage,
    /// The session ends then at the latest (shorter for the OATH fallback and before the
    /// second factor).
    pub max_until: i64,
    /// Where to go once signed in.
    #[serde(default)]
    pub next: Option<String>,
}

/// How long a session may wait between the password and the second factor (enrolment
/// included: installing an authenticator app takes a few minutes).
pub const PRE_AUTH_SECONDS: i64 = 30 * 60;

/// A signed-in visitor's session.
pub struct ActiveSession {
    /// The id as the cookie carries it (the CSRF binding).
    pub id: String,
    pub record: SessionRecord,
    pub data: SessionData,
}

/// Everything a portal handler knows about who is asking.
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
        let now = state.now();
        let mut session = None;
        let mut session_ended = false;
        if let Some(id) = session::read_cookie(&parts.headers, SESSION_COOKIE) {
            let id_hash = session::hash_id(id);
            match state.sessions().session(&id_hash, now).await? {
                Some(record)
                    if still_valid(&record, now, &settings)
                        && session_data(&record).is_some_and(|d| now < d.max_until) =>
                {
                    let data = session_data(&record)
                        .ok_or_else(|| WebError::Internal("session data".into()))?;
                    // Refresh the idle deadline, at most every 30 seconds to spare the store.
                    if now - record.last_seen_at >= 30 {
                        let expires = expiry(record.created_at, now, &settings).min(data.max_until);
                        state
                            .sessions()
                            .touch_session(&id_hash, now, expires)
                            .await?;
                    }
                    session = Some(ActiveSession {
                        id: id.to_owned(),
                        record,
                        data,
                    });
                }
                Some(_) => {
                    state.sessions().delete_session(&id_hash).await?;
                    session_ended = true;
                }
                None => session_ended = true,
            }
        }
        let (pre, new_pre) = match session::read_cookie(&parts.headers, PRE_COOKIE) {
            Some(p) => (p.to_owned(), false),
            None => (session::new_token(), true),
        };
        let user_language = session.as_ref().and_then(|s| s.data.language);
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

/// When a session last seen `now` ends: after the idle timeout, and never after the
/// maximum lifetime.
pub fn expiry(created_at: i64, now: i64, settings: &Settings) -> i64 {
    let idle = now + i64::from(settings.session_idle_minutes) * 60;
    let max = created_at + i64::from(settings.session_max_hours) * 3600;
    idle.min(max)
}

fn session_data(record: &SessionRecord) -> Option<SessionData> {
    serde_json::from_str(&record.data).ok()
}

fn still_valid(record: &SessionRecord, now: i64, settings: &Settings) -> bool {
    // The settings may have shortened the timeouts since the session was stored.
    now < expiry(record.created_at, record.last_seen_at, settings) && now < record.expires_at
}

impl Visitor {
    /// The session, when its user is signed in (second factor done).
    pub fn signed_in(&self) -> Option<&ActiveSession> {
        self.session
            .as_ref()
            .filter(|s| matches!(s.data.stage, Stage::SignedIn { .. }))
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

    /// Accepts a token made for this visitor's session or, for forms shown before signing
    /// in, for their pre-session cookie. A missing cookie never verifies.
    pub fn check_csrf(&self, state: &AppState, token: &str) -> Result<(), WebError> {
        let for_session = self
            .session
            .as_ref()
            .is_some_and(|s| state.csrf().verify(&s.id, token));
        let for_pre = !self.new_pre && state.csrf().verify(&self.pre, token);
        if for_session || for_pre {
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
}

/// Starts a new session for `user_id` at `stage`, ending the visitor's current one (a new
/// id at every step: a session id seen before a step is worthless after it). Returns the
/// `Set-Cookie` value.
pub async fn start_session(
    state: &AppState,
    visitor: &Visitor,
    user_id: &str,
    data: SessionData,
) -> Result<HeaderValue, WebError> {
    if let Some(old) = &visitor.session {
        state
            .sessions()
            .delete_session(&session::hash_id(&old.id))
            .await?;
    }
    let now = state.now();
    let id = session::new_token();
    let record = SessionRecord {
        id_hash: session::hash_id(&id),
        user_id: user_id.to_owned(),
        created_at: now,
        last_seen_at: now,
        expires_at: expiry(now, now, &visitor.settings).min(data.max_until),
        data: serde_json::to_string(&data).map_err(|e| WebError::Internal(e.to_string()))?,
    };
    state.sessions().create_session(&record).await?;
    Ok(session::set_cookie(SESSION_COOKIE, &id, None))
}

/// Moves the visitor's session to `stage` with a new session id; returns the response
/// that sends them on to `to`.
pub async fn advance_session(
    state: &AppState,
    visitor: &Visitor,
    active: &ActiveSession,
    stage: Stage,
    max_until: i64,
    to: &str,
) -> Result<Response, WebError> {
    let data = SessionData {
        stage,
        max_until,
        ..active.data.clone()
    };
    let cookie = start_session(state, visitor, &active.record.user_id, data).await?;
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// A field of a form read as name/value pairs (forms whose field names vary).
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Renders a template as an HTML response with `status`.
pub fn render(
    status: axum::http::StatusCode,
    template: &impl Template,
) -> Result<Response, WebError> {
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

    #[test]
    fn a_session_ends_at_idle_timeout_or_maximum_lifetime() {
        let settings = Settings {
            session_idle_minutes: 10,
            session_max_hours: 1,
            ..Settings::default()
        };
        assert_eq!(expiry(0, 100, &settings), 700);
        assert_eq!(
            expiry(0, 3500, &settings),
            3600,
            "capped by the maximum lifetime"
        );
    }
}
