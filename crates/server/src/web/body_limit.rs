//! The request body limit: `http.max_body_bytes` for every route, except the admin console's
//! token import, which takes files up to `http.max_import_bytes`.

use super::WebError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// The path whose body may be larger (a token file).
pub const IMPORT_PATH: &str = "/admin/tokens/import";

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub body: usize,
    pub import: usize,
}

/// Refuses a body that declares more than its route's limit, and stops reading one that
/// turns out larger. A token file over its limit goes back to the import form, which says
/// what the limit is.
pub async fn limit_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let import = request.uri().path() == IMPORT_PATH;
    let limit = if import { limits.import } else { limits.body };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        if import {
            return Redirect::to(&format!("/admin/tokens?too_large={limit}")).into_response();
        }
        return WebError::TooLarge.into_response();
    }
    let (parts, body) = request.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, limit));
    next.run(Request::from_parts(parts, body)).await
}
