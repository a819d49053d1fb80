//! A Twilio that runs in the test process and behaves like Twilio on the wire.
//!
//! - Its REST API (`/2010-04-01/Accounts/{sid}/Calls.json`, `…/Messages.json`) checks HTTP
//!   Basic, the account in the path and the required parameters, answers with Twilio's JSON
//!   (sids, `queued`) or its error JSON and codes, and records every request.
//! - A created call runs the scenario chosen for its number ([`CallScenario`]): status
//!   callbacks, then the call's TwiML fetched from `Url` and followed as Twilio does
//!   (`<Say>`, `<Pause>`, `<Gather>` with the keys the scenario types, `<Redirect>`,
//!   `<Hangup>`), everything said and typed kept in the call's [`Transcript`].
//! - A created text message gets its status callbacks ([`TextScenario`]).
//! - Inbound text messages and arbitrary webhooks can be posted to the server under test.
//!
//! Every request it sends is signed as Twilio signs (`X-Twilio-Signature`), by its own code
//! here, independent of the product's, so that each checks the other.

#![allow(dead_code)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the person called does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallScenario {
    /// Answers; each entry is what they type at one `<Gather>` (`"#"`, `"1234#"`, `"0#"`,
    /// `"1"`, `""` for silence). When the entries run out, they stay silent.
    Answer {
        keys: Vec<String>,
    },
    Busy,
    NoAnswer,
    Failed,
}

/// What becomes of a text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextScenario {
    /// `sent`, then `delivered`.
    Delivered,
    /// `sent`, then `undelivered` with error 30003 (the handset is off).
    Undelivered,
    /// `failed` with error 30003.
    Failed,
}

/// One request to the REST API, as received.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The form parameters in the order sent, repeated names kept.
    pub params: Vec<(String, String)>,
    /// The HTTP status the stand-in answered.
    pub status: u16,
    /// The sid created, when the request succeeded.
    pub sid: Option<String>,
}

impl ApiRequest {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The user name and password of HTTP Basic.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        basic_credentials(self.authorization.as_deref()?)
    }
}

/// What happened during a call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallEvent {
    /// A status callback was posted (`CallStatus`), and the server answered `status`.
    StatusCallback {
        call_status: String,
        status: u16,
    },
    /// `SendDigits` were dialled once the call was answered.
    SentDigits(String),
    /// A TwiML document was requested (the call's `Url`, a `<Gather>` action, a
    /// `<Redirect>`), with `Digits` when it is a gather's result; the server answered
    /// `status`.
    Fetched {
        url: String,
        digits: Option<String>,
        status: u16,
    },
    Said {
        language: String,
        text: String,
    },
    Paused {
        seconds: u32,
    },
    /// The person typed `digits` (the finish key excluded) and ended with `finished_on_key`
    /// (empty: the gather timed out or reached `numDigits`).
    Gathered {
        digits: String,
        finished_on_key: String,
    },
    /// A `<Gather>` got nothing usable and fell through to the next verb.
    GatherFellThrough,
    /// The TwiML said `<Hangup/>` or `<Reject/>`.
    HungUp,
    /// The TwiML could not be fetched or read: Twilio says "an application error has
    /// occurred" and hangs up.
    ApplicationError(String),
    /// A verb the stand-in does not follow (skipped).
    Unsupported(String),
}

/// A call's story.
#[derive(Debug, Clone)]
pub(crate) struct Transcript {
    pub sid: String,
    pub to: String,
    pub events: Vec<CallEvent>,
    /// The call has ended (and its last status callback was posted).
    pub done: bool,
}

impl Transcript {
    /// `(language, text)` of everything said, in order.
    pub fn said(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Said { language, text } => Some((language.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }

    /// The text of everything said, joined by spaces.
    pub fn said_text(&self) -> String {
        self.said()
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `(digits, finished_on_key)` of each gather that got input.
    pub fn gathered(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Gathered {
                    digits,
                    finished_on_key,
                } => Some((digits.clone(), finished_on_key.clone())),
                _ => None,
            })
            .collect()
    }

    /// The `CallStatus` of each status callback posted.
    pub fn call_statuses(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::StatusCallback { call_status, .. } => Some(call_status.clone()),
                _ => None,
            })
            .collect()
    }

    /// The HTTP status the server gave each webhook the call posted (TwiML and status
    /// callbacks), in order.
    pub fn webhook_statuses(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::StatusCallback { status, .. } | CallEvent::Fetched { status, .. } => {
                    Some(*status)
                }
                _ => None,
            })
            .collect()
    }

    pub fn hung_up(&self) -> bool {
        self.events.contains(&CallEvent::HungUp)
    }
}

/// A status callback posted for a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageStatusPosted {
    pub message_status: String,
    pub error_code: Option<String>,
    /// The server's answer.
    pub status: u16,
}

/// A failure the REST API answers instead of doing its work.
#[derive(Debug, Clone)]
enum Injected {
    /// Twilio's error JSON.
    Twilio {
        status: u16,
        code: u32,
        message: String,
    },
    /// Any body (a proxy's HTML page, a truncated answer).
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
}

/// A public address served by nodes behind a load balancer.
struct Route {
    public_base: String,
    nodes: Vec<String>,
    next: usize,
}

/// A request the stand-in sent to a webhook.
#[derive(Debug, Clone)]
pub(crate) struct WebhookPost {
    /// The address requested and signed (the public one).
    pub url: String,
    /// Where the request went (a node's address, when a route applies).
    pub sent_to: String,
    pub params: Vec<(String, String)>,
    /// The server's answer (0: none).
    pub status: u16,
}

#[derive(Default)]
struct Recorded {
    routes: Vec<Route>,
    webhooks: Vec<WebhookPost>,
    requests: Vec<ApiRequest>,
    failures: VecDeque<Injected>,
    call_scenarios: HashMap<String, CallScenario>,
    text_scenarios: HashMap<String, TextScenario>,
    transcripts: HashMap<String, Transcript>,
    /// Call sids in the order the calls were created.
    call_order: Vec<String>,
    message_statuses: HashMap<String, Vec<MessageStatusPosted>>,
    message_done: HashMap<String, bool>,
}

struct Inner {
    account_sid: String,
    auth_token: String,
    recorded: Mutex<Recorded>,
    unreachable: AtomicBool,
    /// Connections closed at once while unreachable.
    dropped_connections: AtomicU64,
    counter: AtomicU64,
    /// How long a created call waits before its first callback (Twilio's queue).
    call_delay_ms: AtomicU64,
    http: reqwest::Client,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The stand-in; it stops when dropped.
pub(crate) struct TwilioStandIn {
    inner: Arc<Inner>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for TwilioStandIn {
    fn drop(&mut self) {
        self.server.abort();
        if let Ok(tasks) = self.inner.tasks.lock() {
            for task in tasks.iter() {
                task.abort();
            }
        }
    }
}

/// Accepts connections, or drops them at once while the stand-in is unreachable.
struct StandInListener {
    listener: TcpListener,
    inner: Arc<Inner>,
}

impl axum::serve::Listener for StandInListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) if !self.inner.unreachable.load(Ordering::SeqCst) => {
                    return (stream, addr);
                }
                Ok((stream, _)) => {
                    self.inner
                        .dropped_connections
                        .fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl TwilioStandIn {
    /// A Twilio account `account_sid` whose auth token is `auth_token`, listening on
    /// 127.0.0.1 at a port of its own.
    pub async fn start(account_sid: &str, auth_token: &str) -> TwilioStandIn {
        crate::support::install_crypto();
        let inner = Arc::new(Inner {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            recorded: Mutex::new(Recorded::default()),
            unreachable: AtomicBool::new(false),
            dropped_connections: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            call_delay_ms: AtomicU64::new(150),
            http: webhook_client(),
            tasks: Mutex::new(Vec::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/2010-04-01/Accounts/{account}/{resource}", post(rest_api))
            .fallback(not_found)
            .with_state(inner.clone());
        let listener = StandInListener {
            listener,
            inner: inner.clone(),
        };
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TwilioStandIn {
            inner,
            addr,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`, for `twilio.api_base`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn account_sid(&self) -> &str {
        &self.inner.account_sid
    }

    pub fn auth_token(&self) -> &str {
        &self.inner.auth_token
    }

    /// Every request to the REST API, in order.
    pub fn requests(&self) -> Vec<ApiRequest> {
        self.inner.recorded.lock().unwrap().requests.clone()
    }

    /// Every request to `Calls.json`, failed ones included.
    pub fn calls(&self) -> Vec<ApiRequest> {
        self.requests_to("Calls.json")
    }

    /// Every request to `Messages.json`, failed ones included.
    pub fn messages(&self) -> Vec<ApiRequest> {
        self.requests_to("Messages.json")
    }

    fn requests_to(&self, resource: &str) -> Vec<ApiRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.ends_with(resource))
            .collect()
    }

    /// The next `n` requests to the REST API get `http_status` with Twilio's error JSON
    /// (`twilio_code`, `message`) and do nothing.
    pub fn fail_next_requests(&self, n: usize, http_status: u16, twilio_code: u32, message: &str) {
        let mut recorded = self.inner.recorded.lock().unwrap();
        for _ in 0..n {
            recorded.failures.push_back(Injected::Twilio {
                status: http_status,
                code: twilio_code,
                message: message.to_owned(),
            });
        }
    }

    /// The next request to the REST API gets `http_status` with `body` as it is (an HTML
    /// page from a proxy, an empty or truncated answer) and does nothing.
    pub fn answer_next_request_with(&self, http_status: u16, content_type: &str, body: &str) {
        let mut recorded = self.inner.recorded.lock().unwrap();
        recorded.failures.push_back(Injected::Raw {
            status: http_status,
            content_type: content_type.to_owned(),
            body: body.to_owned(),
        });
    }

    /// While unreachable, new connections are closed at once and requests on connections
    /// already open get 503.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.inner.unreachable.store(unreachable, Ordering::SeqCst);
    }

    /// How many connections were closed at once while unreachable.
    pub fn dropped_connections(&self) -> u64 {
        self.inner.dropped_connections.load(Ordering::SeqCst)
    }

    /// What happens when `number` is called (by default: answered, then silence).
    pub fn on_call(&self, number: &str, scenario: CallScenario) {
        let mut recorded = self.inner.recorded.lock().unwrap();
        recorded.call_scenarios.insert(number.to_owned(), scenario);
    }

    /// What becomes of texts to `number` (by default: delivered).
    pub fn on_text(&self, number: &str, scenario: TextScenario) {
        let mut recorded = self.inner.recorded.lock().unwrap();
        recorded.text_scenarios.insert(number.to_owned(), scenario);
    }

    /// Sends requests to addresses under `public_base` to `nodes` in turn, as a load
    /// balancer in front of them would, while signing the public address, as Twilio does:
    /// `route("https://mfa.example.test", &[node_a.base, node_b.base])`. This also lets
    /// `twilio.public_url` be set before the server's port is known.
    pub fn route(&self, public_base: &str, nodes: &[String]) {
        let mut recorded = self.inner.recorded.lock().unwrap();
        recorded
            .routes
            .retain(|r| r.public_base != public_base.trim_end_matches('/'));
        recorded.routes.push(Route {
            public_base: public_base.trim_end_matches('/').to_owned(),
            nodes: nodes
                .iter()
                .map(|n| n.trim_end_matches('/').to_owned())
                .collect(),
            next: 0,
        });
    }

    /// Every request sent to a webhook so far (the TwiML, gathers, status callbacks,
    /// inbound texts, attack posts), in order.
    pub fn webhooks(&self) -> Vec<WebhookPost> {
        self.inner.recorded.lock().unwrap().webhooks.clone()
    }

    /// How long a created call waits before it starts (150 ms unless set).
    pub fn set_call_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.inner.call_delay_ms.store(ms, Ordering::SeqCst);
    }

    /// The transcript of the call `sid` so far.
    pub fn transcript(&self, sid: &str) -> Option<Transcript> {
        self.inner
            .recorded
            .lock()
            .unwrap()
            .transcripts
            .get(sid)
            .cloned()
    }

    /// The sids of the calls placed to `number`, oldest first.
    pub fn call_sids_to(&self, number: &str) -> Vec<String> {
        let recorded = self.inner.recorded.lock().unwrap();
        recorded
            .call_order
            .iter()
            .filter(|sid| {
                recorded
                    .transcripts
                    .get(*sid)
                    .is_some_and(|t| t.to == number)
            })
            .cloned()
            .collect()
    }

    /// Waits for a call to `number` to be created; its sid.
    pub async fn wait_for_call_to(&self, number: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(sid) = self.call_sids_to(number).pop() {
                return sid;
            }
            assert!(
                Instant::now() < deadline,
                "no call to {number} within {timeout:?}; requests: {:?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a text message to `number` to be accepted; the request that sent it (the
    /// latest one).
    pub async fn wait_for_text_to(&self, number: &str, timeout: Duration) -> ApiRequest {
        let deadline = Instant::now() + timeout;
        loop {
            let sent = self
                .messages()
                .into_iter()
                .rfind(|m| m.sid.is_some() && m.get("To") == Some(number));
            if let Some(message) = sent {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no text to {number} within {timeout:?}; requests: {:?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the call `sid` to end; its transcript.
    pub async fn wait_call_done(&self, sid: &str, timeout: Duration) -> Transcript {
        let deadline = Instant::now() + timeout;
        loop {
            let transcript = self.transcript(sid);
            if let Some(t) = &transcript
                && t.done
            {
                return t.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the call {sid} did not end within {timeout:?}: {transcript:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The status callbacks posted so far for the text message `sid`.
    pub fn message_statuses(&self, sid: &str) -> Vec<MessageStatusPosted> {
        let recorded = self.inner.recorded.lock().unwrap();
        recorded
            .message_statuses
            .get(sid)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the text message `sid` has had all its status callbacks.
    pub async fn wait_message_done(
        &self,
        sid: &str,
        timeout: Duration,
    ) -> Vec<MessageStatusPosted> {
        let deadline = Instant::now() + timeout;
        loop {
            let done = {
                let recorded = self.inner.recorded.lock().unwrap();
                recorded.message_done.get(sid).copied().unwrap_or(false)
            };
            if done {
                return self.message_statuses(sid);
            }
            assert!(
                Instant::now() < deadline,
                "the text {sid} did not finish within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts an inbound text message from `from` to `to` to `url` (the server's inbound
    /// webhook) with Twilio's parameters, signed; the server's status and body.
    pub async fn send_inbound_text(
        &self,
        url: &str,
        from: &str,
        to: &str,
        body: &str,
    ) -> (u16, String) {
        let params = self.inbound_text_params(from, to, body);
        self.post_signed(url, &params).await
    }

    /// Twilio's parameters for an inbound text message (a fresh `MessageSid`).
    pub fn inbound_text_params(&self, from: &str, to: &str, body: &str) -> Vec<(String, String)> {
        let sid = self.inner.new_sid("SM");
        pairs(&[
            ("ToCountry", "US"),
            ("ToState", ""),
            ("SmsMessageSid", &sid),
            ("NumMedia", "0"),
            ("ToCity", ""),
            ("FromZip", ""),
            ("SmsSid", &sid),
            ("FromState", ""),
            ("SmsStatus", "received"),
            ("FromCity", ""),
            ("Body", body),
            ("FromCountry", ""),
            ("To", to),
            ("ToZip", ""),
            ("NumSegments", "1"),
            ("MessageSid", &sid),
            ("AccountSid", &self.inner.account_sid),
            ("From", from),
            ("ApiVersion", "2010-04-01"),
        ])
    }

    /// POSTs `params` to `url`, signed with the account's auth token as Twilio signs.
    pub async fn post_signed(&self, url: &str, params: &[(String, String)]) -> (u16, String) {
        let signature = twilio_signature(&self.inner.auth_token, url, params);
        self.post_with_signature(url, params, Some(&signature))
            .await
    }

    /// POSTs `params` to `url` with the given `X-Twilio-Signature` (none: no header), for
    /// attack tests.
    pub async fn post_with_signature(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> (u16, String) {
        let (status, body) = self.inner.post_form(url, params, signature).await;
        (status, body)
    }

    /// The signature Twilio would send for a POST of `params` to `url`.
    pub fn sign(&self, url: &str, params: &[(String, String)]) -> String {
        twilio_signature(&self.inner.auth_token, url, params)
    }
}

impl Inner {
    fn new_sid(&self, prefix: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        format!(
            "{prefix}{nanos:016x}{:016x}",
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }

    fn spawn(self: &Arc<Self>, future: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(future);
        let mut tasks = self.tasks.lock().unwrap();
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    /// POSTs a signed (or not) form; the status and the body (status 0: no answer).
    async fn post_form(
        &self,
        url: &str,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> (u16, String) {
        let sent_to = self.route(url);
        let mut request = self
            .http
            .post(&sent_to)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("user-agent", "TwilioProxy/1.1")
            .header("i-twilio-idempotency-token", self.new_sid("ID"))
            .body(form_body(params));
        if let Some(signature) = signature {
            request = request.header("x-twilio-signature", signature);
        }
        let (status, body) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
            Err(e) => (0, format!("no answer: {e}")),
        };
        self.recorded.lock().unwrap().webhooks.push(WebhookPost {
            url: url.to_owned(),
            sent_to,
            params: params.to_vec(),
            status,
        });
        (status, body)
    }

    /// Where a request to `url` goes: through the first route whose public address starts
    /// it, to the route's next node; else to `url` itself.
    fn route(&self, url: &str) -> String {
        let mut recorded = self.recorded.lock().unwrap();
        for route in &mut recorded.routes {
            if let Some(rest) = url.strip_prefix(&route.public_base)
                && (rest.is_empty() || rest.starts_with(['/', '?']))
                && !route.nodes.is_empty()
            {
                let node = &route.nodes[route.next % route.nodes.len()];
                route.next += 1;
                return format!("{node}{rest}");
            }
        }
        url.to_owned()
    }

    async fn post_signed(&self, url: &str, params: &[(String, String)]) -> (u16, String) {
        let signature = twilio_signature(&self.auth_token, url, params);
        self.post_form(url, params, Some(&signature)).await
    }

    fn record(&self, request: ApiRequest) {
        self.recorded.lock().unwrap().requests.push(request);
    }

    fn record_call_event(&self, sid: &str, event: CallEvent) {
        let mut recorded = self.recorded.lock().unwrap();
        if let Some(t) = recorded.transcripts.get_mut(sid) {
            t.events.push(event);
        }
    }
}

/// Twilio's error answer.
fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

async fn not_found() -> Response {
    twilio_error(404, 20404, "The requested resource was not found")
}

async fn rest_api(
    State(inner): State<Arc<Inner>>,
    Path((account, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = format!("/2010-04-01/Accounts/{account}/{resource}");
    let mut request = ApiRequest {
        path,
        authorization,
        params,
        status: 0,
        sid: None,
    };
    let (response, status, sid) = answer(&inner, &account, &resource, &request);
    request.status = status;
    request.sid = sid;
    inner.record(request);
    response
}

/// The REST API's answer to one request, and what it starts.
fn answer(
    inner: &Arc<Inner>,
    account: &str,
    resource: &str,
    request: &ApiRequest,
) -> (Response, u16, Option<String>) {
    let fail =
        |status: u16, code: u32, message: &str| (twilio_error(status, code, message), status, None);
    if inner.unreachable.load(Ordering::SeqCst) {
        return fail(503, 20503, "Service Unavailable");
    }
    let injected = inner.recorded.lock().unwrap().failures.pop_front();
    match injected {
        Some(Injected::Twilio {
            status,
            code,
            message,
        }) => return fail(status, code, &message),
        Some(Injected::Raw {
            status,
            content_type,
            body,
        }) => {
            let code = StatusCode::from_u16(status).unwrap();
            let response = (code, [("content-type", content_type)], body).into_response();
            return (response, status, None);
        }
        None => {}
    }
    let authenticated = request
        .basic_credentials()
        .is_some_and(|(user, password)| user == inner.account_sid && password == inner.auth_token);
    if !authenticated {
        return fail(401, 20003, "Authenticate");
    }
    if account != inner.account_sid {
        return fail(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/{resource} was not found"
            ),
        );
    }
    match resource {
        "Calls.json" => create_call(inner, request),
        "Messages.json" => create_message(inner, request),
        _ => fail(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/{resource} was not found"
            ),
        ),
    }
}

fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

fn create_call(inner: &Arc<Inner>, request: &ApiRequest) -> (Response, u16, Option<String>) {
    let fail = |code: u32, message: String| (twilio_error(400, code, &message), 400, None);
    let Some(to) = request.get("To").filter(|v| !v.is_empty()) else {
        return fail(21201, "No 'To' number is specified".into());
    };
    if !is_e164(to) {
        return fail(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let Some(from) = request.get("From").filter(|v| !v.is_empty()) else {
        return fail(21213, "No 'From' number is specified".into());
    };
    if !is_e164(from) {
        return fail(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        );
    }
    let Some(url) = request.get("Url").filter(|v| !v.is_empty()) else {
        return fail(21205, "Url parameter is required.".into());
    };
    if url::Url::parse(url).is_err() {
        return fail(21205, format!("Url is not a valid URL: {url}"));
    }
    if let Some(callback) = request.get("StatusCallback")
        && url::Url::parse(callback).is_err()
    {
        return fail(21609, format!("Invalid StatusCallback url: {callback}"));
    }
    let sid = inner.new_sid("CA");
    let body = serde_json::json!({
        "sid": sid,
        "account_sid": inner.account_sid,
        "to": to,
        "to_formatted": to,
        "from": from,
        "from_formatted": from,
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "price": null,
        "uri": format!("/2010-04-01/Accounts/{}/Calls/{sid}.json", inner.account_sid),
    });
    let scenario = inner
        .recorded
        .lock()
        .unwrap()
        .call_scenarios
        .get(to)
        .cloned()
        .unwrap_or(CallScenario::Answer { keys: Vec::new() });
    {
        let mut recorded = inner.recorded.lock().unwrap();
        recorded.call_order.push(sid.clone());
        recorded.transcripts.insert(
            sid.clone(),
            Transcript {
                sid: sid.clone(),
                to: to.to_owned(),
                events: Vec::new(),
                done: false,
            },
        );
    }
    let call = Call {
        inner: inner.clone(),
        sid: sid.clone(),
        to: to.to_owned(),
        from: from.to_owned(),
        url: url.to_owned(),
        status_callback: request.get("StatusCallback").map(str::to_owned),
        events: request
            .all("StatusCallbackEvent")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(str::to_owned)
            .collect(),
        send_digits: request.get("SendDigits").map(str::to_owned),
        sequence: 0,
    };
    inner.spawn(call.run(scenario));
    (
        (StatusCode::CREATED, axum::Json(body)).into_response(),
        201,
        Some(sid),
    )
}

fn create_message(inner: &Arc<Inner>, request: &ApiRequest) -> (Response, u16, Option<String>) {
    let fail = |code: u32, message: String| (twilio_error(400, code, &message), 400, None);
    let Some(to) = request.get("To").filter(|v| !v.is_empty()) else {
        return fail(21604, "A 'To' phone number is required.".into());
    };
    if !is_e164(to) {
        return fail(21211, format!("Invalid 'To' Phone Number: {to}"));
    }
    let from = request.get("From").filter(|v| !v.is_empty());
    let service = request.get("MessagingServiceSid").filter(|v| !v.is_empty());
    if from.is_none() && service.is_none() {
        return fail(21603, "A 'From' phone number is required.".into());
    }
    let Some(body_text) = request.get("Body").filter(|v| !v.is_empty()) else {
        return fail(21602, "Message body is required.".into());
    };
    if body_text.chars().count() > 1600 {
        return fail(
            21617,
            "The concatenated message body exceeds the 1600 character limit.".into(),
        );
    }
    let sid = inner.new_sid("SM");
    let body = serde_json::json!({
        "sid": sid,
        "account_sid": inner.account_sid,
        "to": to,
        "from": from,
        "messaging_service_sid": service,
        "body": body_text,
        "status": if from.is_some() { "queued" } else { "accepted" },
        "num_segments": "1",
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "error_code": null,
        "error_message": null,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", inner.account_sid),
    });
    let scenario = inner
        .recorded
        .lock()
        .unwrap()
        .text_scenarios
        .get(to)
        .copied()
        .unwrap_or(TextScenario::Delivered);
    match request.get("StatusCallback") {
        Some(callback) => {
            let task_inner = inner.clone();
            let callback = callback.to_owned();
            let sid_for_task = sid.clone();
            let from = from.unwrap_or("+15005550006").to_owned();
            let to = to.to_owned();
            inner.spawn(async move {
                message_callbacks(task_inner, sid_for_task, callback, from, to, scenario).await;
            });
        }
        None => {
            inner
                .recorded
                .lock()
                .unwrap()
                .message_done
                .insert(sid.clone(), true);
        }
    }
    (
        (StatusCode::CREATED, axum::Json(body)).into_response(),
        201,
        Some(sid),
    )
}

async fn message_callbacks(
    inner: Arc<Inner>,
    sid: String,
    url: String,
    from: String,
    to: String,
    scenario: TextScenario,
) {
    tokio::time::sleep(Duration::from_millis(
        inner.call_delay_ms.load(Ordering::SeqCst),
    ))
    .await;
    let steps: &[(&str, Option<&str>)] = match scenario {
        TextScenario::Delivered => &[("sent", None), ("delivered", None)],
        TextScenario::Undelivered => &[("sent", None), ("undelivered", Some("30003"))],
        TextScenario::Failed => &[("failed", Some("30003"))],
    };
    for (message_status, error_code) in steps {
        let mut params = pairs(&[
            ("AccountSid", &inner.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("From", &from),
            ("To", &to),
            ("MessageSid", &sid),
            ("SmsSid", &sid),
            ("SmsStatus", message_status),
            ("MessageStatus", message_status),
        ]);
        if let Some(code) = error_code {
            params.push(("ErrorCode".into(), (*code).to_owned()));
        }
        let (status, _) = inner.post_signed(&url, &params).await;
        inner
            .recorded
            .lock()
            .unwrap()
            .message_statuses
            .entry(sid.clone())
            .or_default()
            .push(MessageStatusPosted {
                message_status: (*message_status).to_owned(),
                error_code: error_code.map(str::to_owned),
                status,
            });
    }
    inner
        .recorded
        .lock()
        .unwrap()
        .message_done
        .insert(sid, true);
}

/// At most this many TwiML documents per call (a `<Redirect>` loop ends there).
const MAX_DOCUMENTS: usize = 50;

/// A call in progress.
struct Call {
    inner: Arc<Inner>,
    sid: String,
    to: String,
    from: String,
    url: String,
    status_callback: Option<String>,
    events: Vec<String>,
    send_digits: Option<String>,
    sequence: u32,
}

impl Call {
    /// Twilio's standard parameters of a call's requests.
    fn params(&self, call_status: &str) -> Vec<(String, String)> {
        pairs(&[
            ("AccountSid", &self.inner.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", &self.sid),
            ("CallStatus", call_status),
            ("Called", &self.to),
            ("Caller", &self.from),
            ("Direction", "outbound-api"),
            ("From", &self.from),
            ("To", &self.to),
        ])
    }

    fn record(&self, event: CallEvent) {
        self.inner.record_call_event(&self.sid, event);
    }

    /// Posts a status callback for `event` (`initiated`, `ringing`, `answered`,
    /// `completed`) with `call_status`, when the call asked for it.
    async fn status(&mut self, event: &str, call_status: &str, duration: Option<u64>) {
        let Some(url) = self.status_callback.clone() else {
            return;
        };
        let wanted = if self.events.is_empty() {
            event == "completed"
        } else {
            self.events.iter().any(|e| e == event)
        };
        if !wanted {
            return;
        }
        let mut params = self.params(call_status);
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push(("SequenceNumber".into(), self.sequence.to_string()));
        params.push(("Timestamp".into(), http_date()));
        self.sequence += 1;
        if let Some(seconds) = duration {
            params.push(("CallDuration".into(), seconds.to_string()));
            params.push(("Duration".into(), seconds.div_ceil(60).max(1).to_string()));
        }
        let (status, _) = self.inner.post_signed(&url, &params).await;
        self.record(CallEvent::StatusCallback {
            call_status: call_status.to_owned(),
            status,
        });
    }

    async fn run(mut self, scenario: CallScenario) {
        tokio::time::sleep(Duration::from_millis(
            self.inner.call_delay_ms.load(Ordering::SeqCst),
        ))
        .await;
        let started = Instant::now();
        match scenario {
            CallScenario::Busy => {
                self.status("initiated", "initiated", None).await;
                self.status("completed", "busy", Some(0)).await;
            }
            CallScenario::NoAnswer => {
                self.status("initiated", "initiated", None).await;
                self.status("ringing", "ringing", None).await;
                self.status("completed", "no-answer", Some(0)).await;
            }
            CallScenario::Failed => {
                self.status("completed", "failed", Some(0)).await;
            }
            CallScenario::Answer { keys } => {
                self.status("initiated", "initiated", None).await;
                self.status("ringing", "ringing", None).await;
                self.status("answered", "in-progress", None).await;
                if let Some(digits) = self.send_digits.clone() {
                    self.record(CallEvent::SentDigits(digits));
                }
                self.follow(keys.into()).await;
                let seconds = started.elapsed().as_secs().max(1);
                self.status("completed", "completed", Some(seconds)).await;
            }
        }
        let mut recorded = self.inner.recorded.lock().unwrap();
        if let Some(t) = recorded.transcripts.get_mut(&self.sid) {
            t.done = true;
        }
    }

    /// Fetches a TwiML document (POST with the call's parameters and `extra`).
    async fn fetch(
        &self,
        url: &str,
        extra: &[(String, String)],
        digits: Option<String>,
    ) -> Option<Element> {
        let mut params = self.params("in-progress");
        params.extend(extra.iter().cloned());
        let (status, body) = self.inner.post_signed(url, &params).await;
        self.record(CallEvent::Fetched {
            url: url.to_owned(),
            digits,
            status,
        });
        if !(200..300).contains(&status) {
            self.record(CallEvent::ApplicationError(format!(
                "{url} answered {status}: {body}"
            )));
            return None;
        }
        match parse_twiml(&body) {
            Ok(document) => Some(document),
            Err(e) => {
                self.record(CallEvent::ApplicationError(format!(
                    "{url} answered TwiML that cannot be read ({e}): {body}"
                )));
                None
            }
        }
    }

    /// Follows the TwiML from the call's `Url` to the end of the call.
    async fn follow(&self, mut keys: VecDeque<String>) {
        let mut url = self.url.clone();
        let mut document = self.fetch(&url, &[], None).await;
        let mut documents = 1;
        'documents: while let Some(response) = document.take() {
            if response.name != "Response" {
                self.record(CallEvent::ApplicationError(format!(
                    "the document's root is <{}>, not <Response>",
                    response.name
                )));
                return;
            }
            if documents >= MAX_DOCUMENTS {
                self.record(CallEvent::ApplicationError(format!(
                    "more than {MAX_DOCUMENTS} documents in one call"
                )));
                return;
            }
            for verb in &response.children {
                match verb.name.as_str() {
                    "Say" => self.say(verb),
                    "Pause" => self.pause(verb),
                    "Hangup" | "Reject" => {
                        self.record(CallEvent::HungUp);
                        return;
                    }
                    "Redirect" => {
                        let target = resolve(&url, verb.text.trim());
                        documents += 1;
                        document = self.fetch(&target, &[], None).await;
                        url = target;
                        continue 'documents;
                    }
                    "Gather" => {
                        for nested in &verb.children {
                            match nested.name.as_str() {
                                "Say" => self.say(nested),
                                "Pause" => self.pause(nested),
                                other => self.record(CallEvent::Unsupported(other.to_owned())),
                            }
                        }
                        let typed = keys.pop_front().unwrap_or_default();
                        let Some((digits, finished_on_key)) = gather(verb, &typed) else {
                            self.record(CallEvent::GatherFellThrough);
                            continue;
                        };
                        self.record(CallEvent::Gathered {
                            digits: digits.clone(),
                            finished_on_key: finished_on_key.clone(),
                        });
                        let target = resolve(&url, verb.attr("action").unwrap_or(&url));
                        let extra = pairs(&[
                            ("Digits", &digits),
                            ("FinishedOnKey", &finished_on_key),
                            ("msg", "Gather End"),
                        ]);
                        documents += 1;
                        document = self.fetch(&target, &extra, Some(digits)).await;
                        url = target;
                        continue 'documents;
                    }
                    other => self.record(CallEvent::Unsupported(other.to_owned())),
                }
            }
            // The end of a document ends the call.
            return;
        }
    }

    fn say(&self, verb: &Element) {
        let language = verb.attr("language").unwrap_or("en-US").to_owned();
        let times = verb
            .attr("loop")
            .and_then(|l| l.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, 3);
        for _ in 0..times {
            self.record(CallEvent::Said {
                language: language.clone(),
                text: verb.text.trim().to_owned(),
            });
        }
    }

    fn pause(&self, verb: &Element) {
        let seconds = verb
            .attr("length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(1);
        self.record(CallEvent::Paused { seconds });
    }
}

/// What a `<Gather>` posts when the person types `typed`: `(Digits, FinishedOnKey)`, or
/// `None` when it falls through to the next verb (no digits and no `actionOnEmptyResult`:
/// silence, or the finish key alone, as Twilio does).
fn gather(verb: &Element, typed: &str) -> Option<(String, String)> {
    let finish_key = verb.attr("finishOnKey").unwrap_or("#");
    let max_digits = verb
        .attr("numDigits")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0);
    let mut digits = String::new();
    let mut finished_on_key = String::new();
    for key in typed.chars() {
        if !finish_key.is_empty() && finish_key.contains(key) {
            finished_on_key.push(key);
            break;
        }
        digits.push(key);
        if max_digits.is_some_and(|max| digits.chars().count() >= max) {
            break;
        }
    }
    let on_empty = verb
        .attr("actionOnEmptyResult")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if digits.is_empty() && !on_empty {
        return None;
    }
    Some((digits, finished_on_key))
}

/// `target` resolved against the current document's `base`.
fn resolve(base: &str, target: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(target)) {
        Ok(url) => url.to_string(),
        Err(_) => target.to_owned(),
    }
}

/// One element of a TwiML document.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a TwiML document into its root element.
pub(crate) fn parse_twiml(xml: &str) -> Result<Element, String> {
    use quick_xml::events::{BytesStart, Event};
    fn element(start: &BytesStart<'_>) -> Result<Element, String> {
        let mut element = Element {
            name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
            ..Element::default()
        };
        for attr in start.attributes() {
            let attr = attr.map_err(|e| e.to_string())?;
            let value = attr.unescape_value().map_err(|e| e.to_string())?;
            element.attrs.push((
                String::from_utf8_lossy(attr.key.as_ref()).into_owned(),
                value.into_owned(),
            ));
        }
        Ok(element)
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(start) => stack.push(element(&start)?),
            Event::Empty(start) => {
                let element = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("an end tag without its start")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current
                        .text
                        .push_str(&text.unescape().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current
                        .text
                        .push_str(&String::from_utf8_lossy(&data.into_inner()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "an empty document".into())
}

/// Twilio's `X-Twilio-Signature`: HMAC-SHA1 with the auth token over the URL followed by
/// each parameter's name and value, sorted; base64. Written here apart from the product's.
pub(crate) fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn form_body(params: &[(String, String)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn http_date() -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// The client the stand-in posts webhooks with: it accepts the server's self-signed
/// certificate (tests only).
fn webhook_client() -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
