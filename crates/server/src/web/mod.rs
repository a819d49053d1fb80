//! The HTTP layer: the router, the middleware every request crosses, and the portal's pages.

pub mod admin;
pub mod app;
mod body_limit;
pub mod client;
pub mod dev_inbox;
mod errors;
pub mod hooks;
pub mod i18n;
mod ops;
pub(crate) mod portal;
pub mod ratelimit;
pub mod sdk;
pub mod session;

use crate::config::HttpConfig;
use crate::service::MfaService;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use ipnet::IpNet;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use twofold_engine::Clock;

pub use errors::WebError;

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    service: Arc<dyn MfaService>,
    /// The in-process service, where the store is (the admin console runs only there).
    admin: Option<Arc<crate::service::InProcessService>>,
    clock: Arc<dyn Clock>,
    csrf: session::Csrf,
    trusted_proxies: Vec<IpNet>,
    limits: Arc<ratelimit::SignInLimits>,
    metrics: Option<PrometheusHandle>,
}

/// What it takes to build the HTTP layer.
pub struct WebParts {
    pub service: Arc<dyn MfaService>,
    pub clock: Arc<dyn Clock>,
    pub csrf_key: [u8; 32],
    pub http: HttpConfig,
    pub limits: Arc<ratelimit::SignInLimits>,
    pub metrics: Option<PrometheusHandle>,
    /// Serve the Web Service SDK (`/sdk/v1`) over this service.
    pub sdk: Option<Arc<crate::service::InProcessService>>,
    /// Whether this server terminates TLS itself.
    pub tls: bool,
    /// Serve the development inbox (`/dev/inbox`): only while a console channel is
    /// configured.
    pub dev_inbox: Option<dev_inbox::DevInboxParts>,
    /// Serve Twilio's webhooks (`/hooks/twilio/…`): only while calls or texts go through
    /// Twilio.
    pub twilio: Option<Arc<crate::channels::TwilioChannel>>,
}

impl AppState {
    pub fn service(&self) -> &dyn MfaService {
        self.inner.service.as_ref()
    }
    /// The in-process service, on a server that holds the store (not a split portal).
    pub fn admin_service(&self) -> Option<&Arc<crate::service::InProcessService>> {
        self.inner.admin.as_ref()
    }
    pub fn now(&self) -> i64 {
        self.inner.clock.now()
    }
    pub fn csrf(&self) -> &session::Csrf {
        &self.inner.csrf
    }
    pub fn limits(&self) -> &ratelimit::SignInLimits {
        &self.inner.limits
    }
}

/// The whole application: portal pages, operational endpoints and every middleware.
pub fn router(parts: WebParts) -> Router {
    let http = parts.http.clone();
    let state = AppState {
        inner: Arc::new(Inner {
            service: parts.service,
            admin: parts.sdk.clone(),
            clock: parts.clock,
            csrf: session::Csrf::new(parts.csrf_key),
            trusted_proxies: http.trusted_proxies.clone(),
            limits: parts.limits,
            metrics: parts.metrics,
        }),
    };
    let request_id = HeaderName::from_static("x-request-id");
    let hook_routes = match (&parts.sdk, parts.twilio) {
        (Some(service), Some(twilio)) => hooks::routes(service.clone(), twilio),
        _ => Router::new(),
    };
    let app_routes = match &parts.sdk {
        Some(service) => app::routes(service.clone(), state.inner.limits.clone()),
        None => Router::new(),
    };
    let sdk_routes = match parts.sdk {
        Some(service) => sdk::router(sdk::SdkState::new(
            state.clone(),
            service,
            parts.tls,
            http.sdk_allow_plain_http,
        )),
        None => Router::new(),
    };
    let admin_routes = match state.admin_service() {
        Some(_) => admin::routes(state.clone()),
        None => Router::new(),
    };
    let dev_inbox_routes = parts.dev_inbox.map(dev_inbox::routes).unwrap_or_default();
    Router::new()
        .merge(portal::routes())
        .merge(admin_routes)
        .merge(ops::routes())
        .merge(dev_inbox_routes)
        .fallback(errors::not_found)
        .with_state(state.clone())
        .merge(sdk_routes)
        .merge(app_routes)
        .merge(hook_routes)
        .layer(DefaultBodyLimit::max(http.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            body_limit::BodyLimits {
                body: http.max_body_bytes,
                import: http.max_import_bytes,
            },
            body_limit::limit_body,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client::resolve_client,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(http.request_timeout_seconds),
        ))
        // Outside the limits and the timeout, so their bare answers become pages too.
        .layer(middleware::from_fn(errors::error_pages))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(record_metrics))
        .layer(middleware::from_fn(request_span))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, RandomRequestId))
}

#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&hex::encode(rand::random::<[u8; 8]>()))
            .ok()
            .map(RequestId::new)
    }
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every response carries.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Every log line of a request carries its id, the reference shown on error pages.
async fn request_span(request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    next.run(request).instrument(span).await
}

/// Requests by route and status, and their latency.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("twofold_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("twofold_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
