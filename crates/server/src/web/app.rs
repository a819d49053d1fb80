//! `/app/v1`: the protocol an authenticator device speaks (`docs/mobile-app.md`).
//!
//! - `POST /app/v1/activate`: a one-time activation code and the device's public key.
//! - `GET /app/v1/requests?wait=N`: the requests waiting for the device's user (a long-poll).
//! - `POST /app/v1/requests/{id}/answer`: approve (with the number, and the PIN), deny, or
//!   "not me".
//! - `GET /app/v1/device`, `DELETE /app/v1/device`: the device itself.
//!
//! Every request but the activation is signed by the device's key (four `Twofold-*`
//! headers) and every answer to one is signed by the server's key (`Twofold-Signature`).
//! Refusals are RFC 9457 problems with a stable `code`, as the SDK's are.

use super::client::Client;
use super::ratelimit::SignInLimits;
use super::sdk::problems::ProblemResponse;
use crate::service::app::{ActivateBody, AnswerBody, RequestsReply, SignedRequest};
use crate::service::{InProcessService, ServiceError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::sync::Arc;

/// The app protocol's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(activate, requests, answer, device, remove_device))]
pub struct AppApi;

/// What the app's routes need.
#[derive(Clone)]
pub struct AppRoutesState {
    service: Arc<InProcessService>,
    limits: Arc<SignInLimits>,
}

pub fn routes(service: Arc<InProcessService>, limits: Arc<SignInLimits>) -> Router {
    Router::new()
        .route("/app/v1/activate", post(activate))
        .route("/app/v1/requests", get(requests))
        .route("/app/v1/requests/{id}/answer", post(answer))
        .route("/app/v1/device", get(device).delete(remove_device))
        .with_state(AppRoutesState { service, limits })
}

fn invalid(detail: impl Into<String>) -> ProblemResponse {
    ProblemResponse::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
}

fn refused(e: ServiceError) -> Response {
    ProblemResponse::from(e).into_response()
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Reads a JSON body, or says what is wrong with it.
fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProblemResponse> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            invalid(format!("the body is not the JSON this call takes: {inner}"))
        } else {
            invalid(format!("{path}: {inner}"))
        }
    })
}

/// Activates a device with a one-time activation code. Not signed: the code is the
/// credential, and `proof` (the device key's signature over `twofold-app-v1`, `activate`, the
/// normalised code and the public key, joined by newlines) shows the device holds its key.
#[utoipa::path(post, path = "/app/v1/activate", request_body = ActivateBody, tag = "app",
    responses((status = 201, body = crate::service::app::ActivateReply, description = "The device id, the account, the server's key, and the offline OATH seed when the user had no OATH token."),
        (status = 400, body = twofold_sdk::Problem, description = "A malformed body or key (`invalid_request`), or a refused push endpoint (`invalid_push_endpoint`)."),
        (status = 401, body = twofold_sdk::Problem, description = "The proof does not verify (`bad_signature`)."),
        (status = 403, body = twofold_sdk::Problem, description = "The code is unknown, used or expired (`invalid_activation_code`), or the user is blocked (`fraud_blocked`) or disabled (`account_disabled`)."),
        (status = 409, body = twofold_sdk::Problem, description = "The user has `mobile_app_device_limit` devices already (`device_limit`)."),
        (status = 429, body = twofold_sdk::Problem, description = "Too many activation attempts from this address (`rate_limited`).")))]
async fn activate(
    State(state): State<AppRoutesState>,
    Client(client): Client,
    body: Bytes,
) -> Response {
    // Activation codes are long, but each try costs the per-address budget. The second
    // budget is keyed by the address too: one shared key would let ten activations a
    // minute through for the whole server, and a guesser anywhere would lock out everyone.
    let key = match client.ip {
        Some(ip) => format!("app:activate:{ip}"),
        None => "app:activate".to_owned(),
    };
    if !state.limits.allow(client.ip, &key) {
        return ProblemResponse::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many activation attempts from this address; wait a minute",
        )
        .into_response();
    }
    let body: ActivateBody = match read_json(&body) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    match state.service.activate_device(body, &client).await {
        Ok(reply) => match serde_json::to_vec(&reply) {
            Ok(bytes) => json_response(StatusCode::CREATED, bytes),
            Err(e) => refused(ServiceError::Internal(e.to_string())),
        },
        Err(e) => refused(e),
    }
}

/// The four signature headers, or the refusal that says which is missing.
fn signature_headers(headers: &HeaderMap) -> Result<[String; 4], ProblemResponse> {
    let mut out: [String; 4] = Default::default();
    for (slot, name) in out.iter_mut().zip([
        "twofold-device",
        "twofold-timestamp",
        "twofold-nonce",
        "twofold-signature",
    ]) {
        match headers.get(name).and_then(|v| v.to_str().ok()) {
            Some(v) if !v.trim().is_empty() => *slot = v.trim().to_owned(),
            _ => {
                return Err(ProblemResponse::new(
                    StatusCode::UNAUTHORIZED,
                    "bad_signature",
                    format!(
                        "the request is not signed: {name} is missing (every /app/v1 request but \
                         the activation carries Twofold-Device, Twofold-Timestamp, Twofold-Nonce \
                         and Twofold-Signature)"
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// A request whose signature was checked: the device, and the nonce to sign the answer
/// with.
struct Verified {
    device: crate::store::DeviceRecord,
    nonce: String,
}

async fn verify(
    state: &AppRoutesState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, Response> {
    let [device_id, timestamp, nonce, signature] =
        signature_headers(headers).map_err(IntoResponse::into_response)?;
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or_else(|| uri.path());
    let request = SignedRequest {
        device_id: &device_id,
        timestamp: &timestamp,
        nonce: &nonce,
        signature: &signature,
        method: method.as_str(),
        path_and_query,
        body,
    };
    match state.service.verify_device_request(request).await {
        Ok(device) => Ok(Verified { device, nonce }),
        Err(e) => {
            tracing::info!(device = %device_id, error = %e, "app request refused");
            Err(refused(e))
        }
    }
}

/// A signed answer: the body, and the server's signature over it and the request's nonce.
async fn signed_json<T: Serialize>(
    state: &AppRoutesState,
    verified: &Verified,
    status: StatusCode,
    value: &T,
) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(b) => b,
        Err(e) => return refused(ServiceError::Internal(e.to_string())),
    };
    let signature = match state
        .service
        .sign_app_response(&verified.nonce, &body)
        .await
    {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let mut response = json_response(status, body);
    if let Ok(v) = HeaderValue::from_str(&signature) {
        response.headers_mut().insert("twofold-signature", v);
    }
    response
}

/// `wait` from the query, 0 to 60.
fn wait_of(uri: &Uri) -> Result<u64, ProblemResponse> {
    let mut wait = 0;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "wait" => {
                wait = value
                    .parse::<u64>()
                    .ok()
                    .filter(|w| *w <= 60)
                    .ok_or_else(|| invalid("wait: give a number of seconds from 0 to 60"))?;
            }
            other => return Err(invalid(format!("{other}: not a parameter of this call"))),
        }
    }
    Ok(wait)
}

/// The requests waiting for the device's user; with `wait`, held until one arrives (a
/// long-poll). The answer is signed by the server (`Twofold-Signature`).
#[utoipa::path(get, path = "/app/v1/requests", tag = "app",
    params(
        ("Twofold-Device" = String, Header, description = "The device id the activation gave."),
        ("Twofold-Timestamp" = String, Header, description = "The device's time, Unix seconds; within 60 seconds of the server's."),
        ("Twofold-Nonce" = String, Header, description = "16 to 64 base64url characters, new for every request."),
        ("Twofold-Signature" = String, Header, description = "base64url signature by the device key over `twofold-app-v1`, the method, the path and query, the timestamp, the nonce and the hex SHA-256 of the body, joined by newlines."),
        ("wait" = Option<u64>, Query, description = "Seconds to wait for a request when none is waiting (0 to 60; at most `[app] long_poll_seconds`)."),
    ),
    responses((status = 200, body = crate::service::app::RequestsReply),
        (status = 400, body = twofold_sdk::Problem, description = "A bad `wait` (`invalid_request`)."),
        (status = 401, body = twofold_sdk::Problem, description = "Unsigned, unknown or removed device (`unknown_device`), stale timestamp (`stale_timestamp`), replayed nonce (`replayed_nonce`), or a signature that does not verify (`bad_signature`)."),))]
async fn requests(
    State(state): State<AppRoutesState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verified = match verify(&state, &method, &uri, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let wait = match wait_of(&uri) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    match state
        .service
        .wait_for_requests(&verified.device, wait)
        .await
    {
        Ok(requests) => {
            signed_json(
                &state,
                &verified,
                StatusCode::OK,
                &RequestsReply { requests },
            )
            .await
        }
        Err(e) => refused(e),
    }
}

/// Answers a request: approve (with the number and, in PIN mode, the PIN), deny, or
/// `not_me` (fraud). A wrong number or PIN denies the sign-in and counts towards lockout.
#[utoipa::path(post, path = "/app/v1/requests/{id}/answer", request_body = AnswerBody, tag = "app",
    params(
        ("Twofold-Device" = String, Header, description = "The device id the activation gave."),
        ("Twofold-Timestamp" = String, Header, description = "The device's time, Unix seconds; within 60 seconds of the server's."),
        ("Twofold-Nonce" = String, Header, description = "16 to 64 base64url characters, new for every request."),
        ("Twofold-Signature" = String, Header, description = "base64url signature by the device key over `twofold-app-v1`, the method, the path and query, the timestamp, the nonce and the hex SHA-256 of the body, joined by newlines."),
        ("id" = String, Path, description = "The request's id."),
    ),
    responses((status = 200, body = crate::service::app::AnswerReply, description = "What became of the sign-in: `approved`, `denied` (with `reason`) or `fraud`."),
        (status = 400, body = twofold_sdk::Problem, description = "A malformed body, a missing number or PIN, or a nonce that is not the request's (`invalid_request`)."),
        (status = 401, body = twofold_sdk::Problem, description = "Unsigned, unknown or removed device (`unknown_device`), stale timestamp (`stale_timestamp`), replayed nonce (`replayed_nonce`), or a signature that does not verify (`bad_signature`)."),
        (status = 404, body = twofold_sdk::Problem, description = "No such request for this device's user (`request_not_found`)."),
        (status = 409, body = twofold_sdk::Problem, description = "The request was answered already (`request_answered`)."),
        (status = 410, body = twofold_sdk::Problem, description = "The request expired (`request_expired`).")))]
async fn answer(
    State(state): State<AppRoutesState>,
    Path(id): Path<String>,
    Client(client): Client,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verified = match verify(&state, &method, &uri, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let answer: AnswerBody = match read_json(&body) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    match state
        .service
        .answer_app_request(&verified.device, &id, answer, &client)
        .await
    {
        Ok(reply) => signed_json(&state, &verified, StatusCode::OK, &reply).await,
        Err(e) => refused(e),
    }
}

/// This device, as the server knows it.
#[utoipa::path(get, path = "/app/v1/device", tag = "app",
    params(
        ("Twofold-Device" = String, Header, description = "The device id the activation gave."),
        ("Twofold-Timestamp" = String, Header, description = "The device's time, Unix seconds; within 60 seconds of the server's."),
        ("Twofold-Nonce" = String, Header, description = "16 to 64 base64url characters, new for every request."),
        ("Twofold-Signature" = String, Header, description = "base64url signature by the device key over `twofold-app-v1`, the method, the path and query, the timestamp, the nonce and the hex SHA-256 of the body, joined by newlines."),
    ),
    responses((status = 200, body = crate::service::app::DeviceInfo),
        (status = 401, body = twofold_sdk::Problem, description = "Unsigned, unknown or removed device (`unknown_device`), stale timestamp (`stale_timestamp`), replayed nonce (`replayed_nonce`), or a signature that does not verify (`bad_signature`)."),))]
async fn device(
    State(state): State<AppRoutesState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verified = match verify(&state, &method, &uri, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match state.service.device_info(&verified.device).await {
        Ok(info) => signed_json(&state, &verified, StatusCode::OK, &info).await,
        Err(e) => refused(e),
    }
}

/// Removes this device (the app's "remove account"); its offline codes stop working.
#[utoipa::path(delete, path = "/app/v1/device", tag = "app",
    params(
        ("Twofold-Device" = String, Header, description = "The device id the activation gave."),
        ("Twofold-Timestamp" = String, Header, description = "The device's time, Unix seconds; within 60 seconds of the server's."),
        ("Twofold-Nonce" = String, Header, description = "16 to 64 base64url characters, new for every request."),
        ("Twofold-Signature" = String, Header, description = "base64url signature by the device key over `twofold-app-v1`, the method, the path and query, the timestamp, the nonce and the hex SHA-256 of the body, joined by newlines."),
    ),
    responses((status = 204, description = "The device is removed."),
        (status = 401, body = twofold_sdk::Problem, description = "Unsigned, unknown or removed device (`unknown_device`), stale timestamp (`stale_timestamp`), replayed nonce (`replayed_nonce`), or a signature that does not verify (`bad_signature`)."),))]
async fn remove_device(
    State(state): State<AppRoutesState>,
    Client(client): Client,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verified = match verify(&state, &method, &uri, &headers, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match state
        .service
        .remove_own_device(&verified.device, &client)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}
