//! Operational endpoints: `/healthz`, `/readyz`, `/metrics`.

use super::AppState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::Duration;
use twofold_sdk::Readiness;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and answering.
async fn healthz() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
        .into_response()
}

/// The store answers a write within two seconds (else 503), and the directory, if
/// passwords are checked in one, answers. A directory that does not answer makes the node
/// `degraded`, not unready: every node shares the directory, so a load balancer that took
/// them out would turn "sign-in is temporarily unavailable" into no service at all, and
/// the SDK's calls that need no password (codes, enrolments) still work.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(READY_WITHIN, state.service().ready()).await;
    let (status, store, directory) = match check {
        Ok(Ok(directory)) => (StatusCode::OK, "ok".to_owned(), directory),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable".to_owned(),
                None,
            )
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout".to_owned(), None),
    };
    let body = Readiness {
        status: if status != StatusCode::OK {
            "unavailable"
        } else if directory.as_deref().is_some_and(|d| d != "ok") {
            "degraded"
        } else {
            "ready"
        }
        .to_owned(),
        store,
        directory,
    };
    (status, Json(body)).into_response()
}

/// How long `/readyz` waits: the store's two seconds, and the directory's own bound (its
/// breaker's deadline) beside them.
const READY_WITHIN: Duration = Duration::from_secs(12);

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.inner.metrics {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => super::WebError::NotFound.into_response(),
    }
}
