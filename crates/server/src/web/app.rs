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

fn invalid(detail: impl Into<String>) -> Response {
    ProblemResponse::new(StatusCode::BAD_REQUEST, "invalid_request", detail).into_response()
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
fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
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
        Err(r) => return r,
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
fn signature_headers(headers: &HeaderMap) -> Result<[String; 4], Response> {
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
                )
                .into_response());
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
    let [device_id, timestamp, nonce, signature] = signature_headers(headers)?;
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
fn wait_of(uri: &Uri) -> Result<u64, Response> {
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
        Err(r) => return r,
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
        Err(r) => return r,
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
