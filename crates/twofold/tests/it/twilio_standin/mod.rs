//! A Twilio that runs in the test process and behaves like Twilio on the wire.
//!
//! - Its REST API (`/2010-04-01/Accounts/{sid}/Calls.json`, `…/Messages.json`) checks HTTP
//!   Basic, the account in the path and the required parameters, answers with Twilio's JSON
//!   (sids, `queued`) or its error JSON and codes, and records every request. The account
//!   itself (`GET /2010-04-01/Accounts/{sid}.json`) is read as Twilio answers it: the
//!   account's record for its own credentials, 401 with error 20003 for others.
//! - A created call runs the scenario chosen for its number ([`CallScenario`]): status
//!   callbacks, then the call's TwiML fetched from `Url` and followed as Twilio does
//!   (`<Say>`, `<Pause>`, `<Gather>` with the keys the scenario types, `<Redirect>`,
//!   `<Hangup>`), everything said and typed kept in the call's [`Transcript`].
//! - A created text message gets its status callbacks ([`TextScenario`]).
//! - Inbound text messages and arbitrary webhooks can be posted to the server under test.
//!
//! Every request it sends is signed as Twilio signs (`X-Twilio-Signature`), by its own code
//! here, independent of the product's, so that each checks the other. Its client accepts
//! the server's self-signed certificate.
//!
//! As Twilio does, a `<Gather>` that gets no digit (silence, or the finish key alone) posts
//! nothing and goes on with the next verb, unless it has `actionOnEmptyResult="true"`; it
//! then posts `Digits=""` with `FinishedOnKey` (`#`, or empty for silence). Every webhook is
//! a POST (a `method="GET"` is not followed).
//!
//! `route(public_url, nodes)` sends what is addressed to `public_url` to the nodes in turn,
//! signed over `public_url`: a load balancer in front of several nodes, and a way to give
//! the server a `twilio.public_url` before its port is known.

#![allow(dead_code)]

mod call;
mod rest;
mod transcript;
mod wire;

use rest::{fetch_account, not_found, rest_api};
pub(crate) use transcript::{
    ApiRequest, CallEvent, CallScenario, MessageStatusPosted, TextScenario, Transcript,
};
use wire::{form_body, webhook_client};
pub(crate) use wire::{pairs, parse_form, twilio_signature};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    /// The account's status when read (`active` unless set).
    account_status: Option<String>,
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
            .route("/2010-04-01/Accounts/{account}", get(fetch_account))
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

    /// The status the account's record gives (`active`, `suspended`, `closed`).
    pub fn set_account_status(&self, status: &str) {
        self.inner.recorded.lock().unwrap().account_status = Some(status.to_owned());
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
        wait_until(
            timeout,
            || self.call_sids_to(number).pop(),
            || format!("no call to {number}; requests: {:?}", self.requests()),
        )
        .await
    }

    /// Waits for a text message to `number` to be accepted; the request that sent it (the
    /// latest one).
    pub async fn wait_for_text_to(&self, number: &str, timeout: Duration) -> ApiRequest {
        let sent = || {
            self.messages()
                .into_iter()
                .rfind(|m| m.sid.is_some() && m.get("To") == Some(number))
        };
        wait_until(timeout, sent, || {
            format!("no text to {number}; requests: {:?}", self.requests())
        })
        .await
    }

    /// Waits for the call `sid` to end; its transcript.
    pub async fn wait_call_done(&self, sid: &str, timeout: Duration) -> Transcript {
        let ended = || self.transcript(sid).filter(|t| t.done);
        wait_until(timeout, ended, || {
            format!("the call {sid} did not end: {:?}", self.transcript(sid))
        })
        .await
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
        let done = || {
            let done = self
                .inner
                .recorded
                .lock()
                .unwrap()
                .message_done
                .get(sid)
                .copied();
            done.unwrap_or(false).then(|| self.message_statuses(sid))
        };
        wait_until(timeout, done, || format!("the text {sid} did not finish")).await
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

/// Polls `found` until it gives something, or fails the test after `timeout` with `what`.
async fn wait_until<T>(
    timeout: Duration,
    found: impl Fn() -> Option<T>,
    what: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "within {timeout:?}: {}", what());
        tokio::time::sleep(Duration::from_millis(20)).await;
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
