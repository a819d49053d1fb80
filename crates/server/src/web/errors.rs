//! Error pages: every 4xx/5xx the portal answers is a translated HTML page, never a trace.
//!
//! Handlers return a [`WebError`]; layers below the router (body limits, timeouts, unknown
//! methods) return bare statuses. The `error_pages` middleware turns both into a page in the
//! visitor's language, keeping the status.
//!
//! [`status_of`] is the one place that decides the HTTP status of each domain error: the
//! SDK's problems (`sdk::problems`) and the portal's messages (`portal::messages`) both take
//! it from here, so the two edges cannot disagree on what a refusal means.

use super::i18n::Translator;
use super::portal::messages::Step;
use super::portal::{ErrorTemplate, PageContext, request_language};
use crate::service::ServiceError;
use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use twofold_engine::DomainError;
use twofold_engine::PasswordError;
use twofold_engine::admin::AdminError;
use twofold_engine::app::AppError;
use twofold_engine::flow::BypassError;

/// The HTTP status of a domain error, for every edge. Exhaustive on purpose: a new error
/// does not compile until it has a status here.
pub fn status_of(error: &DomainError) -> StatusCode {
    match error {
        DomainError::InvalidCredentials
        | DomainError::InvalidCode
        | DomainError::WrongAnswers => StatusCode::UNAUTHORIZED,
        DomainError::UserLocked { .. } | DomainError::UserHardLocked => StatusCode::LOCKED,
        DomainError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        DomainError::SignInDisabled
        | DomainError::AccountDisabled
        | DomainError::PasswordExpired
        | DomainError::HardwareTokensDisabled
        | DomainError::FraudBlocked { .. }
        | DomainError::WebhookRefused
        | DomainError::Bypass(BypassError::NotAllowed) => StatusCode::FORBIDDEN,
        // A serial is looked up in the token inventory like a username among the users:
        // not there is 404, as the SDK has always answered.
        DomainError::UserNotFound
        | DomainError::AuthenticationNotFound
        | DomainError::UnknownSerial => StatusCode::NOT_FOUND,
        DomainError::UserExists
        | DomainError::CodeAlreadyUsed
        | DomainError::SerialAssigned
        | DomainError::NotEnrolled
        | DomainError::WrongStep
        | DomainError::AuthenticationClosed(_) => StatusCode::CONFLICT,
        DomainError::Import(_) => StatusCode::UNPROCESSABLE_ENTITY,
        DomainError::App(e) => match e {
            AppError::UnknownDevice
            | AppError::StaleTimestamp
            | AppError::ReplayedNonce
            | AppError::BadSignature => StatusCode::UNAUTHORIZED,
            AppError::InvalidActivationCode | AppError::ActivationDisabled => {
                StatusCode::FORBIDDEN
            }
            AppError::DeviceLimit { .. } | AppError::RequestAnswered => StatusCode::CONFLICT,
            AppError::RequestNotFound => StatusCode::NOT_FOUND,
            AppError::RequestExpired => StatusCode::GONE,
            AppError::InvalidKey(_) | AppError::InvalidPushEndpoint(_) => StatusCode::BAD_REQUEST,
            AppError::PushLimited => StatusCode::TOO_MANY_REQUESTS,
        },
        DomainError::Admin(e) => match e {
            AdminError::Forbidden(_)
            | AdminError::NotHeld(_)
            | AdminError::BypassAboveOwn(_)
            | AdminError::BootstrapInvalid
            | AdminError::AlreadyBootstrapped => StatusCode::FORBIDDEN,
            AdminError::LastOwner => StatusCode::CONFLICT,
            AdminError::NotAnAdministrator(_) => StatusCode::NOT_FOUND,
            AdminError::UnknownPermission(_)
            | AdminError::UnknownRole(_)
            | AdminError::BadScope(_)
            | AdminError::BadGroupName(_)
            | AdminError::NoPermission
            | AdminError::NotScopable(_)
            | AdminError::BypassMax(_) => StatusCode::BAD_REQUEST,
        },
        // Nobody can sign in while the directory is down, and nobody did anything wrong.
        DomainError::DirectoryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        // The server's own failure to hash or read a hash, not the caller's input.
        DomainError::Password(PasswordError::DamagedHash | PasswordError::Hashing) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        DomainError::Password(
            PasswordError::TooLong | PasswordError::TooShort | PasswordError::Common,
        )
        | DomainError::Username(_)
        | DomainError::Contact(_)
        | DomainError::Phone(_)
        | DomainError::InvalidSetting(_)
        | DomainError::MalformedCode { .. }
        | DomainError::Pin(_)
        | DomainError::Answers(_)
        | DomainError::Bypass(BypassError::OutOfRange { .. })
        | DomainError::InvalidRequest(_)
        // The portal answers these two with a redirect to the step the session is at.
        | DomainError::StepUpRequired
        | DomainError::SessionEnded => StatusCode::BAD_REQUEST,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("forbidden (CSRF)")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body too large")]
    TooLarge,
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal: {0}")]
    Internal(String),
    /// A refusal of the domain: a page with its status and the portal's message for it.
    #[error("refused: {0}")]
    Refused(DomainError),
    /// The request does not fit the step the session is at: this response sends it there.
    #[error("the session belongs at another step")]
    Elsewhere(Box<Response>),
}

/// Marks a response whose body the `error_pages` middleware must write, with the domain
/// error it tells of, if any.
#[derive(Debug, Clone)]
struct ErrorPage(Option<DomainError>);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::Elsewhere(_) => StatusCode::SEE_OTHER,
            WebError::Refused(error) => status_of(error),
            WebError::Forbidden => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match &self {
            WebError::Unavailable(detail) => tracing::warn!(%detail, "service unavailable"),
            WebError::Internal(detail) => tracing::error!(%detail, "internal error"),
            WebError::Refused(error) if status == StatusCode::SERVICE_UNAVAILABLE => {
                tracing::warn!(%error, "refused: unavailable")
            }
            WebError::Refused(error) if status.is_server_error() => {
                tracing::error!(%error, "internal error")
            }
            _ => {}
        }
        let refused = match self {
            WebError::Elsewhere(response) => return *response,
            WebError::Refused(error) => Some(error),
            _ => None,
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage(refused));
        response
    }
}

impl WebError {
    /// A request an extractor could not read: too large, or malformed.
    pub fn rejected(status: StatusCode, text: String) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::TooLarge
        } else {
            WebError::BadRequest(text)
        }
    }
}

impl From<axum::extract::rejection::FormRejection> for WebError {
    fn from(rejection: axum::extract::rejection::FormRejection) -> Self {
        WebError::rejected(rejection.status(), rejection.body_text())
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable(m) => WebError::Unavailable(m),
            ServiceError::Domain(d) => WebError::Refused(d),
            ServiceError::Internal(m) => WebError::Internal(m),
        }
    }
}

pub(super) async fn not_found() -> WebError {
    WebError::NotFound
}

pub(super) async fn error_pages(request: Request, next: Next) -> Response {
    // The SDK's and the app's clients read problems, not pages.
    let sdk =
        request.uri().path().starts_with("/sdk/") || request.uri().path().starts_with("/app/");
    let language = request_language(request.headers(), None, None);
    let reference = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let marked = response.extensions().get::<ErrorPage>().cloned();
    // Layers and extractors answer with an empty or plain-text body: those become pages.
    // HTML and JSON answers (the SDK's problems) are already what the client should see.
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !(marked.is_some() || bare) {
        return response;
    }
    if sdk {
        // SDK clients get a problem, in English, with a stable code.
        let code = match status {
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            _ if status.is_server_error() => "internal",
            _ => "invalid_request",
        };
        let mut problem = super::sdk::ProblemResponse::new(
            status,
            code,
            status.canonical_reason().unwrap_or("error").to_lowercase(),
        );
        problem.1.request_id = Some(reference);
        let (parts, _) = response.into_parts();
        let fresh = problem.into_response();
        let (fresh_parts, body) = fresh.into_parts();
        let mut parts = parts;
        parts.headers.remove(header::CONTENT_LENGTH);
        for (name, value) in fresh_parts.headers.iter() {
            parts.headers.insert(name.clone(), value.clone());
        }
        return Response::from_parts(parts, body);
    }
    let t = Translator::new(language);
    let refused = marked.and_then(|ErrorPage(refused)| refused);
    let message = match (&refused, status) {
        (Some(error), status) if !status.is_server_error() => {
            super::portal::messages::message(&t, error, Step::Other).1
        }
        (_, status) => match status {
            StatusCode::FORBIDDEN => t.t("error-forbidden"),
            StatusCode::NOT_FOUND => t.t("error-not-found"),
            StatusCode::PAYLOAD_TOO_LARGE => t.t("error-too-large"),
            StatusCode::REQUEST_TIMEOUT => t.t("error-timeout"),
            StatusCode::METHOD_NOT_ALLOWED => t.t("error-method"),
            StatusCode::SERVICE_UNAVAILABLE => t.t("error-unavailable"),
            StatusCode::BAD_REQUEST
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => t.t("error-forbidden"),
            _ => t.t1("error-internal", "reference", &reference),
        },
    };
    let page = ErrorTemplate {
        page: PageContext::bare(t),
        message,
    };
    let (mut parts, _) = response.into_parts();
    let body = match page.render() {
        Ok(html) => html,
        Err(_) => "<!doctype html><title>Error</title><h1>Error</h1>".to_owned(),
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, Html(body)).into_response()
}
