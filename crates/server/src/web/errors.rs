//! Error pages: every 4xx/5xx the portal answers is a translated HTML page, never a trace.
//!
//! Handlers return a [`WebError`]; layers below the router (body limits, timeouts, unknown
//! methods) return bare statuses. The `error_pages` middleware turns both into a page in the
//! visitor's language, keeping the status.

use super::i18n::Translator;
use super::portal::{ErrorTemplate, PageContext, request_language};
use crate::service::ServiceError;
use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use twofold_engine::DomainError;

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
}

/// Marks a response whose body the `error_pages` middleware must write.
#[derive(Debug, Clone, Copy)]
struct ErrorPage;

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
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
            _ => {}
        }
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage);
        response
    }
}

impl From<axum::extract::rejection::FormRejection> for WebError {
    fn from(rejection: axum::extract::rejection::FormRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WebError::TooLarge
        } else {
            WebError::BadRequest(rejection.body_text())
        }
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable(m) => WebError::Unavailable(m),
            ServiceError::Domain(DomainError::UserNotFound) => WebError::NotFound,
            ServiceError::Domain(d) => WebError::BadRequest(d.to_string()),
            ServiceError::Internal(m) => WebError::Internal(m),
        }
    }
}

pub(super) async fn not_found() -> WebError {
    WebError::NotFound
}

pub(super) async fn error_pages(request: Request, next: Next) -> Response {
    let sdk = request.uri().path().starts_with("/sdk/");
    let language = request_language(request.headers(), None, None);
    let reference = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let marked = response.extensions().get::<ErrorPage>().is_some();
    // Layers and extractors answer with an empty or plain-text body: those become pages.
    // HTML and JSON answers (the SDK's problems) are already what the client should see.
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !(marked || bare) {
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
    let message = match status {
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
