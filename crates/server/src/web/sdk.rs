//! The Web Service SDK: `/sdk/v1`, JSON, for service accounts in the `sdk` role.
//!
//! Calls authenticate with HTTP Basic over TLS. Errors are RFC 9457 problems with a stable
//! `code`. The OpenAPI 3.1 document is generated from these handlers (utoipa) and served at
//! `/sdk/v1/openapi.json`; routes and document are registered together, so they cannot drift.

use super::{AppState, client::Client};
use crate::service::{ClientContext, InProcessService, PORTAL_ROLE, SDK_ROLE};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
use twofold_sdk as sdk;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// What the SDK needs besides the portal's state.
#[derive(Clone)]
pub struct SdkState {
    pub app: AppState,
    pub service: Arc<InProcessService>,
    pub tls: bool,
    pub allow_plain_http: bool,
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
}

impl SdkState {
    pub fn new(
        app: AppState,
        service: Arc<InProcessService>,
        tls: bool,
        allow_plain_http: bool,
    ) -> Self {
        Self {
            app,
            service,
            tls,
            allow_plain_http,
            failures: Arc::default(),
        }
    }
}

/// Wrong credentials allowed from one address per minute before it gets 429.
const FAILURES_PER_MINUTE: u32 = 20;

pub(super) mod problems;

pub use problems::ProblemResponse;

type SdkResult<T> = Result<T, ProblemResponse>;

/// A JSON body whose rejections are problems that name what was wrong.
pub struct SdkJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for SdkJson<T> {
    type Rejection = ProblemResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ProblemResponse::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ProblemResponse::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "the request body is too large",
                    )
                } else {
                    ProblemResponse::new(rejection.status(), "invalid_body", rejection.body_text())
                }
            })?;
        // Every body is an object: serde would otherwise take an array for the fields in
        // their order (`[null, null]` for `{"email": null, "phone": null}`).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            let _syntax_is_fine =
                Json::<serde::de::IgnoredAny>::from_bytes(&bytes).map_err(json_problem)?;
            return Err(ProblemResponse::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the body must be a JSON object: {\"field\": value, …}",
            ));
        }
        Json::<T>::from_bytes(&bytes)
            .map(|Json(v)| SdkJson(v))
            .map_err(json_problem)
    }
}

/// `application/json`, or a `+json` type, as axum's own `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A body that is not JSON, or not the JSON asked for (the content type and the size were
/// checked before it was read).
fn json_problem(rejection: JsonRejection) -> ProblemResponse {
    match rejection {
        JsonRejection::JsonDataError(e) => ProblemResponse::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            e.body_text().replace(
                "Failed to deserialize the JSON body into the target type: ",
                "",
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => ProblemResponse::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            e.body_text().replace(
                "Failed to parse the request body as JSON: ",
                "the body is not valid JSON: ",
            ),
        ),
        other => ProblemResponse::new(other.status(), "invalid_body", other.body_text()),
    }
}

/// An extractor of axum's whose rejection becomes a 400 problem with `code`.
macro_rules! with_problem {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $code:literal) => {
        $(#[$doc])*
        pub struct $name<T>(pub T);

        impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S>
            for $name<T>
        {
            type Rejection = ProblemResponse;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                match $inner::<T>::from_request_parts(parts, state).await {
                    Ok($inner(value)) => Ok($name(value)),
                    Err(rejection) => Err(ProblemResponse::new(
                        StatusCode::BAD_REQUEST,
                        $code,
                        rejection.body_text(),
                    )),
                }
            }
        }
    };
}

with_problem!(
    /// A path segment (`{username}`, `{id}`); a bad one is an `invalid_path` problem.
    SdkPath,
    Path,
    "invalid_path"
);
with_problem!(
    /// Query parameters; unknown or mistyped ones are an `invalid_query` problem.
    SdkQuery,
    Query,
    "invalid_query"
);

// ---- authentication of service accounts ----

/// The service account making the call, as the `authenticate` middleware found it: every
/// SDK handler takes it to act as that account.
#[derive(Debug, Clone)]
pub struct SdkCaller {
    pub account: String,
    /// The client the call came from.
    client: ClientContext,
    /// The user the call acted on, when a handler learns it from the body or the answer
    /// rather than the path (the `sdk_call` audit event names them).
    acted_on: Arc<std::sync::OnceLock<String>>,
}

impl SdkCaller {
    /// Who acts, as the audit log names them: `sdk:NAME`.
    pub fn actor(&self) -> String {
        format!("sdk:{}", self.account)
    }

    /// The client, acting as this account.
    pub fn context(&self) -> ClientContext {
        ClientContext {
            actor: Some(self.actor()),
            ..self.client.clone()
        }
    }

    /// Names the user this call acts on, for its `sdk_call` audit event.
    fn acted_on(&self, username: &str) {
        let _first_wins = self.acted_on.set(username.to_owned());
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SdkCaller {
    type Rejection = ProblemResponse;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SdkCaller>()
            .cloned()
            .ok_or_else(|| ProblemResponse::internal("an SDK handler ran without a caller"))
    }
}

/// The SDK's operations by method and route (`POST /sdk/v1/authentications` →
/// `start_authentication`): the operation ids of the OpenAPI document, so that the audit
/// log and the document say the same.
static OPERATIONS: std::sync::LazyLock<HashMap<(String, String), String>> =
    std::sync::LazyLock::new(|| {
        let mut names = HashMap::new();
        for (path, item) in operations().split_for_parts().1.paths.paths {
            for (method, operation) in [
                ("GET", &item.get),
                ("PUT", &item.put),
                ("POST", &item.post),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
            ] {
                if let Some(id) = operation.as_ref().and_then(|o| o.operation_id.clone()) {
                    names.insert((method.to_owned(), path.clone()), id);
                }
            }
        }
        names.insert(
            ("POST".into(), "/sdk/v1/portal/rpc".into()),
            "portal_rpc".into(),
        );
        names
    });

/// What the `sdk_call` event names: the operation, and the user it acted on (from the
/// path's `{username}`, or from the handler).
async fn call_names(request: &mut Request) -> (&'static str, Option<String>) {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let operation = OPERATIONS
        .get(&(request.method().as_str().to_owned(), route))
        .map_or("unknown_operation", String::as_str);
    let user = axum::RequestExt::extract_parts::<axum::extract::RawPathParams>(request)
        .await
        .ok()
        .and_then(|params| {
            params
                .iter()
                .find(|(name, _)| *name == "username")
                .map(|(_, value)| value.to_owned())
        });
    (operation, user)
}

/// Query parameters that must never carry a credential.
const CREDENTIAL_PARAMETERS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "token",
    "access_token",
    "authorization",
    "key",
];

async fn authenticate(
    State(state): State<SdkState>,
    Client(client): Client,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(query) = request.uri().query()
        && url::form_urlencoded::parse(query.as_bytes())
            .any(|(k, _)| CREDENTIAL_PARAMETERS.contains(&k.to_ascii_lowercase().as_str()))
    {
        return ProblemResponse::new(
            StatusCode::BAD_REQUEST,
            "credentials_in_query",
            "credentials in the query string are refused (they end up in logs): use the Authorization header (HTTP Basic)",
        )
        .into_response();
    }
    if !state.tls && !state.allow_plain_http {
        let forwarded_https = request
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        let via_trusted_proxy = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .is_some_and(|c| {
                state
                    .app
                    .inner
                    .trusted_proxies
                    .iter()
                    .any(|n| n.contains(&c.0.ip()))
            });
        if !(forwarded_https && via_trusted_proxy) {
            return ProblemResponse::new(
                StatusCode::FORBIDDEN,
                "tls_required",
                "the SDK is served over TLS only; call it with https:// (through the TLS-terminating proxy)",
            )
            .into_response();
        }
    }
    let ip = client.ip;
    if let Some(ip) = ip
        && let Ok(failures) = state.failures.lock()
        && let Some((count, since)) = failures.get(&ip)
        && since.elapsed() < Duration::from_secs(60)
        && *count >= FAILURES_PER_MINUTE
    {
        let mut response = ProblemResponse::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many failed sign-ins from this address; wait a minute",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    let credentials = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(u, p)| (u.to_owned(), p.to_owned()))
        });
    let Some((name, secret)) = credentials else {
        return ProblemResponse::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "authenticate with HTTP Basic: the service account's name and secret",
        )
        .into_response();
    };
    let account = match state
        .service
        .authenticate_service_account(&name, &secret)
        .await
    {
        Ok(Some(account)) => account,
        Ok(None) => {
            if let Some(ip) = ip
                && let Ok(mut failures) = state.failures.lock()
            {
                let entry = failures.entry(ip).or_insert((0, Instant::now()));
                if entry.1.elapsed() >= Duration::from_secs(60) {
                    *entry = (0, Instant::now());
                }
                entry.0 += 1;
                if failures.len() > 100_000 {
                    failures.retain(|_, (_, since)| since.elapsed() < Duration::from_secs(60));
                }
            }
            tracing::info!(account = %name, "SDK: wrong credentials");
            return ProblemResponse::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "wrong service account name or secret",
            )
            .into_response();
        }
        Err(e) => return ProblemResponse::from(e).into_response(),
    };
    // Each role reaches its own part and nothing else: applications (`sdk`) the SDK, a
    // portal on its own host (`portal`) the portal's RPC.
    let wanted = if request.uri().path() == PORTAL_RPC_PATH {
        PORTAL_ROLE
    } else {
        SDK_ROLE
    };
    if account.role != wanted {
        state
            .service
            .record(
                AuditEvent::new(
                    state.service.now(),
                    AuditAction::SdkCall,
                    AuditOutcome::Failure,
                    format!("{}:{}", account_kind(&account.role), account.name),
                )
                .client(ip.map(|ip| ip.to_string()), client.user_agent.clone())
                .detail(format!(
                    "{} {} 403 (role {})",
                    request.method(),
                    request.uri().path(),
                    account.role
                )),
            )
            .await;
        return ProblemResponse::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the account {} is in the {} role; this needs the {wanted} role",
                account.name, account.role
            ),
        )
        .into_response();
    }
    let caller = SdkCaller {
        account: account.name,
        client: client.clone(),
        acted_on: Arc::default(),
    };
    request.extensions_mut().insert(caller.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (operation, path_user) = call_names(&mut request).await;
    let response = next.run(request).await;
    let outcome = if response.status().is_success() {
        AuditOutcome::Success
    } else {
        AuditOutcome::Failure
    };
    let mut event = AuditEvent::new(
        state.service.now(),
        AuditAction::SdkCall,
        outcome,
        format!("{}:{}", account_kind(wanted), caller.account),
    )
    .client(ip.map(|ip| ip.to_string()), client.user_agent.clone())
    .detail(format!(
        "{operation}: {method} {path} {}",
        response.status().as_u16()
    ));
    if let Some(user) = path_user.or_else(|| caller.acted_on.get().cloned()) {
        event = event.subject(user.chars().take(160).collect::<String>());
    }
    state.service.record(event).await;
    response
}

/// The portal's RPC, for service accounts in the `portal` role only.
const PORTAL_RPC_PATH: &str = "/sdk/v1/portal/rpc";

/// How an account is named in the audit log: `sdk:NAME` or `portal:NAME`.
fn account_kind(role: &str) -> &'static str {
    if role == PORTAL_ROLE { "portal" } else { "sdk" }
}

// ---- the OpenAPI document ----

#[derive(OpenApi)]
#[openapi(
    info(title = "Twofold Web Service SDK", version = "1", description = "Users, second factors and authentications of a Twofold MFA server. HTTP Basic with a service account in the `sdk` role; errors are RFC 9457 problems with a stable `code`."),
    components(schemas(sdk::Problem)),
    modifiers(&BasicAuth),
    security(("basic" = []))
)]
struct ApiDoc;

struct BasicAuth;

impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// Every SDK operation, registered with its OpenAPI description: routes and document come
/// from this one list, so they cannot drift apart.
fn operations() -> OpenApiRouter<SdkState> {
    OpenApiRouter::<SdkState>::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_user, list_users))
        .routes(routes!(get_user, patch_user, delete_user))
        .routes(routes!(set_pin))
        .routes(routes!(set_phones))
        .routes(routes!(set_method))
        .routes(routes!(unblock_user))
        .routes(routes!(create_app_activation))
        .routes(routes!(list_devices))
        .routes(routes!(remove_device))
        .routes(routes!(enroll_oath))
        .routes(routes!(verify_oath))
        .routes(routes!(security_questions))
        .routes(routes!(set_security_answers))
        .routes(routes!(create_bypass))
        .routes(routes!(start_authentication))
        .routes(routes!(get_authentication))
        .routes(routes!(answer_authentication))
        .routes(routes!(import_tokens))
        .routes(routes!(get_settings))
}

/// Problems are `application/problem+json` (the handlers' annotations name only the
/// schema), and every operation can answer the problems that the layers in front of the
/// handlers give: bad credentials, a missing role, the rate limit, a wrong content type or
/// an oversized body, an unavailable store.
fn with_common_problems(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{Content, RefOr, Response};
    const PROBLEM: &str = "application/problem+json";
    let problem = |description: &str| {
        let mut response = Response::new(description);
        response.content.insert(
            PROBLEM.to_owned(),
            Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            )))),
        );
        RefOr::T(response)
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let names_a_resource = path.contains('{');
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response
                    && let Some(content) = response.content.shift_remove("application/json")
                {
                    let is_problem = matches!(&content.schema,
                        Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
                    let kind = if is_problem {
                        PROBLEM
                    } else {
                        "application/json"
                    };
                    response.content.insert(kind.to_owned(), content);
                }
            }
            let has_body = operation.request_body.is_some();
            let mut common = vec![
                (
                    "400",
                    "The request is malformed: the problem names the field.",
                ),
                ("401", "Missing or wrong service-account credentials."),
                (
                    "403",
                    "The account lacks the `sdk` role, or the call came over plain HTTP.",
                ),
                (
                    "429",
                    "Too many failed credentials from this address: wait a minute.",
                ),
                (
                    "503",
                    "The server cannot reach its store (`unavailable`), or the directory that checks passwords does not answer (`directory_unavailable`): retry later.",
                ),
            ];
            if names_a_resource {
                common.push(("404", "No such user or authentication (`user_not_found`, `authentication_not_found`)."));
            }
            if has_body {
                common.push(("413", "The body is larger than the limit."));
                common.push(("415", "The body is not `application/json`."));
            }
            for (status, description) in common {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem(description));
            }
        }
    }
    openapi
}

/// The SDK's routes and its OpenAPI document.
pub fn router(state: SdkState) -> Router {
    let openapi = openapi_document();
    let (api, _) = operations().split_for_parts();
    let document: Arc<String> = Arc::new(openapi.to_pretty_json().unwrap_or_default());
    let api = api
        .route(PORTAL_RPC_PATH, axum::routing::post(portal_rpc))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new().merge(api.with_state(state)).route(
        "/sdk/v1/openapi.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    document.as_str().to_owned(),
                )
            }
        }),
    )
}

/// The OpenAPI document, as served (for tests and tools).
/// It describes `/app/v1` too, the protocol an authenticator device speaks, whose
/// refusals are the same problems but whose callers are devices, not service accounts.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut openapi = with_common_problems(operations().split_for_parts().1);
    openapi.merge(super::app::AppApi::openapi());
    openapi
}

// ---- handlers ----

/// Creates a user.
#[utoipa::path(post, path = "/sdk/v1/users", request_body = sdk::UserCreate, tag = "users",
    responses((status = 201, body = sdk::User), (status = 400, body = sdk::Problem), (status = 409, body = sdk::Problem)))]
async fn create_user(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkJson(body): SdkJson<sdk::UserCreate>,
) -> SdkResult<(StatusCode, Json<sdk::User>)> {
    caller.acted_on(&body.username);
    let user = state.service.sdk_create_user(&caller.actor(), body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Keep usernames that contain this text.
    #[serde(default)]
    query: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (100 by default).
    #[serde(default)]
    limit: Option<i64>,
}

/// Lists users, a page at a time, in username order.
#[utoipa::path(get, path = "/sdk/v1/users", params(ListQuery), tag = "users", responses((status = 200, body = sdk::UserList)))]
async fn list_users(
    State(state): State<SdkState>,
    SdkQuery(q): SdkQuery<ListQuery>,
) -> SdkResult<Json<sdk::UserList>> {
    Ok(Json(
        state
            .service
            .sdk_list_users(
                q.query.as_deref().unwrap_or(""),
                q.cursor.as_deref(),
                q.limit.unwrap_or(100),
            )
            .await?,
    ))
}

/// Gets a user with their second factors.
#[utoipa::path(get, path = "/sdk/v1/users/{username}", params(("username" = String, Path, description = "The user's username.")), tag = "users",
    responses((status = 200, body = sdk::User), (status = 404, body = sdk::Problem)))]
async fn get_user(
    State(state): State<SdkState>,
    SdkPath(username): SdkPath<String>,
) -> SdkResult<Json<sdk::User>> {
    Ok(Json(state.service.sdk_user(&username).await?))
}

/// Changes a user: a field left out is unchanged, `null` clears it.
#[utoipa::path(patch, path = "/sdk/v1/users/{username}", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::UserPatch, tag = "users",
    responses((status = 200, body = sdk::User), (status = 404, body = sdk::Problem)))]
async fn patch_user(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(body): SdkJson<sdk::UserPatch>,
) -> SdkResult<Json<sdk::User>> {
    Ok(Json(
        state
            .service
            .sdk_patch_user(&caller.actor(), &username, body)
            .await?,
    ))
}

/// Deletes a user (their software tokens too; hardware tokens return to the inventory).
#[utoipa::path(delete, path = "/sdk/v1/users/{username}", params(("username" = String, Path, description = "The user's username.")), tag = "users",
    responses((status = 204), (status = 404, body = sdk::Problem)))]
async fn delete_user(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
) -> SdkResult<StatusCode> {
    state
        .service
        .delete_user(&caller.actor(), &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the user's PIN.
#[utoipa::path(put, path = "/sdk/v1/users/{username}/pin", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::PinSet, tag = "users",
    responses((status = 204), (status = 400, body = sdk::Problem)))]
async fn set_pin(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(body): SdkJson<sdk::PinSet>,
) -> SdkResult<StatusCode> {
    state
        .service
        .sdk_set_pin(&username, &body.pin, &caller.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the user's phones, as an administrator: the numbers are read with the
/// `default_region` setting and stored in E.164; no call or text is made. `"primary": null`
/// clears both phones. Ends the user's portal sessions.
#[utoipa::path(put, path = "/sdk/v1/users/{username}/phones", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::PhonesSet, tag = "users",
    responses((status = 200, body = sdk::User),
        (status = 400, body = sdk::Problem, description = "A number that is not a phone number, or cannot be valid in its country (`invalid_phone`); a number without its country code while `default_region` is not set (`phone_needs_country`); an extension that is not 1 to 10 digits (`invalid_extension`); a field that is unknown or misspelt (`invalid_body`); the phones cleared while the user's method needs one, or a backup without a primary (`invalid_request`). Nothing is changed."),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`).")))]
async fn set_phones(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(body): SdkJson<sdk::PhonesSet>,
) -> SdkResult<Json<sdk::User>> {
    Ok(Json(
        state
            .service
            .sdk_set_phones(&username, body, &caller.context())
            .await?,
    ))
}

/// Sets the user's primary method. `phone_call` and `sms` need a phone, `oath` an active
/// OATH token, `mobile_app` an activated device. Ends the user's portal sessions.
#[utoipa::path(put, path = "/sdk/v1/users/{username}/method", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::MethodSet, tag = "users",
    responses((status = 200, body = sdk::User),
        (status = 400, body = sdk::Problem, description = "An unknown method (`invalid_body`)."),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`)."),
        (status = 409, body = sdk::Problem, description = "The user lacks what the method needs: a phone for `phone_call` and `sms`, an active OATH token for `oath`, an activated device for `mobile_app` (`not_enrolled`; the detail says which).")))]
async fn set_method(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(body): SdkJson<sdk::MethodSet>,
) -> SdkResult<Json<sdk::User>> {
    match state
        .service
        .sdk_set_method(&username, body.method, &caller.context())
        .await
    {
        Ok(user) => Ok(Json(user)),
        Err(crate::service::ServiceError::Domain(twofold_engine::DomainError::NotEnrolled)) => {
            Err(ProblemResponse::new(
                StatusCode::CONFLICT,
                "not_enrolled",
                crate::service::phones::missing_for(crate::service::engine_method(body.method)),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Lifts a fraud block: the user may sign in, and be called or texted, again. Audited
/// (`user_unblocked`); a user who is not blocked is left as is.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/unblock", params(("username" = String, Path, description = "The user's username.")), tag = "users",
    responses((status = 204, description = "The user is not blocked (any more)."),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`).")))]
async fn unblock_user(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
) -> SdkResult<StatusCode> {
    state
        .service
        .unblock_user(&caller.actor(), &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a one-time activation code for the user's authenticator app: the code, the URL
/// and the QR code to show them (`docs/mobile-app.md`). Their earlier unused code stops
/// working. Audited (`app_activation_created`).
#[utoipa::path(post, path = "/sdk/v1/users/{username}/devices/activation", params(("username" = String, Path, description = "The user's username.")), tag = "devices",
    responses((status = 201, body = sdk::AppActivation),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`)."),
        (status = 409, body = sdk::Problem, description = "The user has `mobile_app_device_limit` devices already (`device_limit`).")))]
async fn create_app_activation(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
) -> SdkResult<(StatusCode, Json<sdk::AppActivation>)> {
    let activation = state
        .service
        .sdk_create_activation(&username, &caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(activation)))
}

/// The user's activated authenticator devices.
#[utoipa::path(get, path = "/sdk/v1/users/{username}/devices", params(("username" = String, Path, description = "The user's username.")), tag = "devices",
    responses((status = 200, body = sdk::DeviceList),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`).")))]
async fn list_devices(
    State(state): State<SdkState>,
    _caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
) -> SdkResult<Json<sdk::DeviceList>> {
    Ok(Json(state.service.sdk_devices(&username).await?))
}

/// Removes one of the user's devices: its requests are refused at once, on every node, and
/// the offline codes it brought stop working. Audited (`device_removed`).
#[utoipa::path(delete, path = "/sdk/v1/users/{username}/devices/{id}", params(("username" = String, Path, description = "The user's username."), ("id" = String, Path, description = "The device's id.")), tag = "devices",
    responses((status = 204, description = "The device is removed."),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`), or the user has no such device (`device_not_found`).")))]
async fn remove_device(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath((username, id)): SdkPath<(String, String)>,
) -> SdkResult<StatusCode> {
    match state
        .service
        .sdk_remove_device(&username, &id, &caller.context())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(crate::service::ServiceError::Domain(twofold_engine::DomainError::App(
            twofold_engine::app::AppError::UnknownDevice,
        ))) => Err(ProblemResponse::new(
            StatusCode::NOT_FOUND,
            "device_not_found",
            format!(
                "{username} has no device {id}; list them with GET /sdk/v1/users/{username}/devices"
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Enrols an authenticator app (returns the otpauth URI and a QR code), or associates a
/// hardware token by serial.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/oath", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::OathEnroll, tag = "oath",
    responses((status = 201, body = sdk::OathEnrollment),
        (status = 401, body = sdk::Problem, description = "The code given with a serial is wrong (`invalid_code`)."),
        (status = 403, body = sdk::Problem, description = "Hardware tokens are turned off (`hardware_tokens_disabled`), or the account lacks the `sdk` role."),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`), or no available hardware token has that serial (`unknown_serial`): a wrong serial counts towards the user's lockout."),
        (status = 409, body = sdk::Problem, description = "The token belongs to someone else (`serial_assigned`), or the code was used before (`code_already_used`)."),
        (status = 423, body = sdk::Problem, description = "Too many wrong serials or codes: the user is locked out (`user_locked`).")))]
async fn enroll_oath(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(value): SdkJson<serde_json::Value>,
) -> SdkResult<(StatusCode, Json<sdk::OathEnrollment>)> {
    let body = oath_enroll_body(value)?;
    let enrollment = state
        .service
        .sdk_oath_enroll(&username, body, &caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(enrollment)))
}

/// Verifies a code: activates a pending token, or checks the active one. Codes are
/// single-use: a replay gets 409 `code_already_used`.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/oath/verify", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::CodeCheck, tag = "oath",
    responses((status = 200, body = sdk::Verified), (status = 401, body = sdk::Problem), (status = 409, body = sdk::Problem), (status = 423, body = sdk::Problem)))]
async fn verify_oath(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(body): SdkJson<sdk::CodeCheck>,
) -> SdkResult<Json<sdk::Verified>> {
    Ok(Json(
        state
            .service
            .sdk_oath_verify(
                &username,
                &body.code,
                body.pin.as_deref(),
                &caller.context(),
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct LangQuery {
    /// `en` or `fr`; all languages when left out.
    #[serde(default)]
    lang: Option<String>,
}

/// The approved security questions.
#[utoipa::path(get, path = "/sdk/v1/security-questions", params(LangQuery), tag = "security questions",
    responses((status = 200, body = Vec<sdk::SecurityQuestion>)))]
async fn security_questions(
    State(state): State<SdkState>,
    SdkQuery(q): SdkQuery<LangQuery>,
) -> SdkResult<Json<Vec<sdk::SecurityQuestion>>> {
    Ok(Json(state.service.sdk_questions(q.lang.as_deref()).await?))
}

/// Sets the user's four security answers.
#[utoipa::path(put, path = "/sdk/v1/users/{username}/security-answers", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::SecurityAnswers, tag = "security questions",
    responses((status = 204), (status = 400, body = sdk::Problem)))]
async fn set_security_answers(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(body): SdkJson<sdk::SecurityAnswers>,
) -> SdkResult<StatusCode> {
    state
        .service
        .sdk_set_answers(&username, &body.answers, &caller.context())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a one-time bypass for the user's next sign-in.
#[utoipa::path(post, path = "/sdk/v1/users/{username}/bypass", params(("username" = String, Path, description = "The user's username.")), request_body = sdk::BypassCreate, tag = "users",
    responses((status = 201, body = sdk::Bypass), (status = 400, body = sdk::Problem), (status = 403, body = sdk::Problem)))]
async fn create_bypass(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(username): SdkPath<String>,
    SdkJson(body): SdkJson<sdk::BypassCreate>,
) -> SdkResult<(StatusCode, Json<sdk::Bypass>)> {
    let bypass = state
        .service
        .sdk_bypass(&username, &body, &caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(bypass)))
}

/// Starts an authentication: the portal's state machine (password, trusted IPs, bypass,
/// lockout), then what is needed next. With `"method": "phone_call"` or `"sms"` a call or a
/// text goes to the user's phone (`"phone": "backup"`: the backup phone), and `next` is
/// `phone_call`, `text_reply` (poll until decided) or `text_code` (send the text's code to
/// `/answer` as `otp`). A call or text refused before it is sent (the hourly limits, the
/// allowed countries) denies the authentication at once, with `reason` `rate_limited` or
/// `country_not_allowed`.
#[utoipa::path(post, path = "/sdk/v1/authentications", request_body = sdk::AuthenticationStart, tag = "authentications",
    responses((status = 201, body = sdk::Authentication),
        (status = 400, body = sdk::Problem, description = "An unknown `method` or `phone`, a method the user cannot use now, or `\"phone\": \"backup\"` for a user without a backup phone (`invalid_request`)."),
        (status = 401, body = sdk::Problem),
        (status = 403, body = sdk::Problem, description = "The user is blocked after a fraud report (`fraud_blocked`), or sign-ins are turned off (`sign_in_disabled`)."),
        (status = 404, body = sdk::Problem, description = "No such user (`user_not_found`): without a password, the username is looked up."), (status = 423, body = sdk::Problem)))]
async fn start_authentication(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkJson(body): SdkJson<sdk::AuthenticationStart>,
) -> SdkResult<(StatusCode, Json<sdk::Authentication>)> {
    caller.acted_on(&body.username);
    let authentication = state
        .service
        .sdk_start_authentication(body, &caller.context())
        .await?;
    Ok((StatusCode::CREATED, Json(authentication)))
}

/// Polls an authentication.
#[utoipa::path(get, path = "/sdk/v1/authentications/{id}", params(("id" = String, Path, description = "The authentication's id, as returned when it was started.")), tag = "authentications",
    responses((status = 200, body = sdk::Authentication), (status = 404, body = sdk::Problem, description = "No such authentication, or another account started it (`authentication_not_found`).")))]
async fn get_authentication(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(id): SdkPath<String>,
) -> SdkResult<Json<sdk::Authentication>> {
    Ok(Json(
        state
            .service
            .sdk_authentication(&id, &caller.context())
            .await?,
    ))
}

/// Answers an authentication with an OTP (`next` is `otp`, or `text_code`: the code of the
/// text message) or security answers (`next` is `security_answers`). One that waits on a
/// call or a reply to a text (`phone_call`, `text_reply`) is not answered here: poll it.
#[utoipa::path(post, path = "/sdk/v1/authentications/{id}/answer", params(("id" = String, Path, description = "The authentication's id, as returned when it was started.")), request_body = sdk::AuthenticationAnswer, tag = "authentications",
    responses((status = 200, body = sdk::Authentication),
        (status = 400, body = sdk::Problem, description = "The answer does not fit `next` (`invalid_request`), or a code of the wrong length (`invalid_code_format`)."),
        (status = 401, body = sdk::Problem, description = "A wrong code or wrong answers (`invalid_code`, `wrong_answers`)."),
        (status = 409, body = sdk::Problem, description = "The authentication is decided already (`authentication_closed`), or the code was used before (`code_already_used`).")))]
async fn answer_authentication(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkPath(id): SdkPath<String>,
    SdkJson(value): SdkJson<serde_json::Value>,
) -> SdkResult<Json<sdk::Authentication>> {
    // Untagged enums say little on failure: decide by the fields given, then name the problem.
    let answer = if value.get("otp").is_some() {
        sdk::AuthenticationAnswer::Otp(named(value)?)
    } else if value.get("answers").is_some() {
        sdk::AuthenticationAnswer::Answers(named(value)?)
    } else {
        return Err(ProblemResponse::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "give {\"otp\": \"123456\"} or {\"answers\": [{\"question_id\": …, \"answer\": …}]}",
        ));
    };
    let authentication = state
        .service
        .sdk_answer(&id, answer, &caller.context())
        .await?;
    caller.acted_on(&authentication.username);
    Ok(Json(authentication))
}

/// Imports hardware tokens from a PSKC or CSV file: all of them, or none.
#[utoipa::path(post, path = "/sdk/v1/tokens/import", request_body = sdk::TokenImport, tag = "oath",
    responses((status = 201, body = sdk::TokenImportResult), (status = 422, body = sdk::Problem)))]
async fn import_tokens(
    State(state): State<SdkState>,
    caller: SdkCaller,
    SdkJson(body): SdkJson<sdk::TokenImport>,
) -> SdkResult<(StatusCode, Json<sdk::TokenImportResult>)> {
    let imported = state
        .service
        .sdk_import_tokens(&caller.actor(), &body)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(sdk::TokenImportResult { imported }),
    ))
}

/// The settings in force.
#[utoipa::path(get, path = "/sdk/v1/settings", tag = "settings", responses((status = 200, body = Object)))]
async fn get_settings(State(state): State<SdkState>) -> SdkResult<Json<serde_json::Value>> {
    use crate::service::MfaService;
    let settings = state.service.settings().await?;
    Ok(Json(serde_json::to_value(settings).unwrap_or_default()))
}

/// The portal's own protocol (a portal on its own host calls this for every page). Not part
/// of the SDK's stable contract: it changes with Twofold's versions.
async fn portal_rpc(
    State(state): State<SdkState>,
    SdkJson(call): SdkJson<crate::service::remote::PortalCall>,
) -> SdkResult<Json<crate::service::remote::PortalReply>> {
    Ok(Json(
        crate::service::remote::dispatch(&state.service, call).await?,
    ))
}

/// Deserializes a JSON value, naming the field at fault in the problem.
fn named<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ProblemResponse> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let detail = if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        };
        ProblemResponse::new(StatusCode::BAD_REQUEST, "invalid_body", detail)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftwareEnrollBody {
    #[allow(dead_code)]
    kind: String,
    #[serde(default, rename = "type")]
    otp_type: Option<String>,
    #[serde(default)]
    digits: Option<u8>,
    #[serde(default)]
    period: Option<u32>,
    #[serde(default)]
    algorithm: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HardwareEnrollBody {
    #[allow(dead_code)]
    kind: String,
    serial: String,
    #[serde(default)]
    code: Option<String>,
}

/// `{"kind": "software", …}` or `{"kind": "hardware", "serial": …}`, with problems that name
/// the field (an internally tagged enum would lose its path).
fn oath_enroll_body(value: serde_json::Value) -> Result<sdk::OathEnroll, ProblemResponse> {
    match value.get("kind").and_then(|k| k.as_str()) {
        Some("software") => {
            let b: SoftwareEnrollBody = named(value)?;
            Ok(sdk::OathEnroll::Software {
                otp_type: b.otp_type,
                digits: b.digits,
                period: b.period,
                algorithm: b.algorithm,
            })
        }
        Some("hardware") => {
            let b: HardwareEnrollBody = named(value)?;
            Ok(sdk::OathEnroll::Hardware {
                serial: b.serial,
                code: b.code,
            })
        }
        Some(other) => Err(ProblemResponse::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("kind: unknown variant `{other}`, expected `software` or `hardware`"),
        )),
        None => Err(ProblemResponse::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "kind: missing field `kind` (`software` or `hardware`)",
        )),
    }
}
