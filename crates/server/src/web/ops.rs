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

/// The store answers a write within two seconds.
async fn readyz(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(Duration::from_secs(2), state.service().ready()).await;
    let (status, store) = match check {
        Ok(Ok(())) => (StatusCode::OK, "ok".to_owned()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_owned())
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout".to_owned()),
    };
    let body = Readiness {
        status: if status == StatusCode::OK {
            "ready"
        } else {
            "unavailable"
        }
        .to_owned(),
        store,
    };
    (status, Json(body)).into_response()
}

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
