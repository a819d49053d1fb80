//! The mobile app end to end (`docs/mobile-app.md`): the real server, the real
//! `twofold-authenticator`, and requests this file signs itself with the device key the
//! authenticator keeps. Activation with a code (typed, or read from the QR code), approval
//! with the number the sign-in shows, a wrong number, deny, "not me" with the email to the
//! administrators, PIN mode, expiry, removed devices, the signature rules, the limits against
//! push bombing, the long-poll across two nodes, and UnifiedPush wake-ups.

use crate::email;
use crate::smtp;
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";
const WAIT: Duration = Duration::from_secs(10);

// ---- the SDK ----

/// One answer of the SDK.
#[derive(Debug)]
struct Reply {
    status: u16,
    text: String,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        self
    }

    #[track_caller]
    fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        assert_eq!(self.body["code"], json!(code), "{}", self.text);
    }
}

/// A caller of the SDK with the service account `app1`.
struct Sdk {
    base: String,
    client: reqwest::Client,
    secret: String,
}

impl Sdk {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .basic_auth("app1", Some(&self.secret));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the SDK answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, text, body }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    /// A new activation code for `user` (`POST /sdk/v1/users/{u}/devices/activation`).
    async fn activation(&self, user: &str) -> Value {
        let reply = self
            .send(
                Method::POST,
                &format!("/sdk/v1/users/{user}/devices/activation"),
                None,
            )
            .await;
        reply.expect(201).body
    }

    /// Starts a sign-in that pushes to `user`'s app, from an application and an address
    /// the app shows.
    async fn push(&self, user: &str) -> Reply {
        self.post(
            "/sdk/v1/authentications",
            json!({
                "username": user,
                "method": "mobile_app",
                "client_ip": "203.0.113.9",
                "context": {"application": "Contoso VPN"},
            }),
        )
        .await
    }

    /// Starts a sign-in that must push; returns the authentication with its number.
    async fn push_ok(&self, user: &str) -> Value {
        let started = self.push(user).await.expect(201);
        assert_eq!(started.body["state"], json!("pending"), "{}", started.text);
        assert!(
            started.body["number"].as_u64().is_some(),
            "the number to show: {}",
            started.text
        );
        started.body
    }

    /// `user`'s devices, as an administrator sees them.
    async fn devices(&self, user: &str) -> Vec<Value> {
        let reply = self
            .get(&format!("/sdk/v1/users/{user}/devices"))
            .await
            .expect(200);
        reply.body["devices"].as_array().expect("devices").clone()
    }

    async fn authentication(&self, id: &str) -> Value {
        self.get(&format!("/sdk/v1/authentications/{id}"))
            .await
            .expect(200)
            .body
    }

    /// Polls an authentication until it is no longer pending.
    async fn decided(&self, id: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let a = self.authentication(id).await;
            if a["state"] != json!("pending") {
                return a;
            }
            assert!(Instant::now() < deadline, "still pending: {a}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn number_of(started: &Value) -> u8 {
    started["number"].as_u64().expect("number") as u8
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// The server, its SDK caller, and the directory they live in (dropped in this order).
struct Running {
    sdk: Sdk,
    server: Server,
    env: Env,
}

/// A server with the mobile app allowed and the user `ada`; `configure` adds settings.
/// The server listens on a port chosen here, so that the address it gives with activation
/// codes (its own, as no `portal_url` is set) is the one the tests reach.
async fn start(backend: Backend, configure: impl FnOnce(Env) -> Env) -> Running {
    let port = crate::ports::free_tcp_port();
    let env = configure(
        Env::new(backend)
            .await
            .set("TWOFOLD_LISTEN", &format!("127.0.0.1:{port}"))
            .set("TWOFOLD_SETTINGS__ALLOW_MOBILE_APP_ACTIVATION", "true")
            .set(
                "TWOFOLD_SETTINGS__SELECTABLE_METHODS",
                r#"["mobile_app","oath"]"#,
            ),
    );
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    let server = env.start();
    let sdk = Sdk {
        base: server.base.clone(),
        client: server.client(),
        secret,
    };
    sdk.post(
        "/sdk/v1/users",
        json!({"username": "ada", "password": PASSWORD}),
    )
    .await
    .expect(201);
    Running { sdk, server, env }
}

impl Running {
    fn phone(&self, name: &str) -> Phone {
        Phone {
            dir: self.env.dir.path().join(name),
            ca: self.server.cert_file(),
        }
    }

    /// `ada` with the authenticator activated from a fresh code: the phone.
    async fn ada_with_phone(&self) -> Phone {
        let phone = self.phone("phone");
        let activation = self.sdk.activation("ada").await;
        phone.activate(
            activation["url"].as_str().unwrap(),
            activation["code"].as_str().unwrap(),
            &["--name", "Ada's phone"],
        );
        phone
    }

    fn audit(&self) -> String {
        self.env
            .cli_ok(&["audit", "tail", "--lines", "100"], "")
            .to_owned()
    }
}

// ---- the authenticator ----

/// A `twofold-authenticator` with its own data directory.
struct Phone {
    dir: PathBuf,
    ca: PathBuf,
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Phone {
    fn run(&self, args: &[&str]) -> Output {
        authenticator(&self.dir, &self.ca, args)
    }

    /// Runs a command that must succeed; returns its standard output.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command that must fail; returns standard error.
    #[track_caller]
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    #[track_caller]
    fn activate(&self, url: &str, code: &str, extra: &[&str]) -> String {
        let mut args = vec!["activate", url, code];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// `pending --json`.
    #[track_caller]
    fn pending(&self) -> Vec<Value> {
        let out = self.ok(&["pending", "--json"]);
        serde_json::from_str::<Vec<Value>>(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// The one request waiting now.
    #[track_caller]
    fn the_request(&self) -> Value {
        let pending = self.pending();
        assert_eq!(pending.len(), 1, "{pending:?}");
        pending.into_iter().next().unwrap()
    }

    /// The saved accounts (`accounts.json`; none before the first activation).
    fn accounts(&self) -> Vec<Value> {
        let Ok(bytes) = std::fs::read(self.dir.join("accounts.json")) else {
            return Vec::new();
        };
        let data: Value = serde_json::from_slice(&bytes).unwrap();
        data["accounts"].as_array().expect("accounts").clone()
    }

    /// The one saved account.
    #[track_caller]
    fn account(&self) -> Value {
        let accounts = self.accounts();
        assert_eq!(accounts.len(), 1, "{accounts:?}");
        accounts[0].clone()
    }

    /// `approve ID --number N`: its standard output (the outcome).
    #[track_caller]
    fn approve(&self, request: &Value, number: u8) -> String {
        self.ok(&[
            "approve",
            request["id"].as_str().unwrap(),
            "--number",
            &number.to_string(),
        ])
        .trim()
        .to_owned()
    }
}

/// One of the request's numbers that is not `number`.
fn another_number(request: &Value, number: u8) -> u8 {
    request["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap() as u8)
        .find(|n| *n != number)
        .expect("three numbers")
}

// ---- signed requests, made here with the device key ----

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_hex(body: &[u8]) -> String {
    Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A nonce never used before: 16 bytes, base64url.
fn new_nonce() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = format!(
        "{:?}{}{}",
        std::time::SystemTime::now(),
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    b64(&Sha256::digest(seed.as_bytes())[..16])
}

/// A signed call, ready to send (and to send again, or to change before sending).
#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    body: Vec<u8>,
    device: String,
    timestamp: String,
    nonce: String,
    signature: String,
}

/// An answer to a signed call.
#[derive(Debug)]
struct AppReply {
    status: u16,
    raw: Vec<u8>,
    body: Value,
    signature: Option<String>,
}

impl AppReply {
    #[track_caller]
    fn expect(self, status: u16) -> AppReply {
        assert_eq!(
            self.status,
            status,
            "unexpected answer: {}",
            String::from_utf8_lossy(&self.raw)
        );
        self
    }

    #[track_caller]
    fn problem(&self, status: u16, code: &str) {
        let text = String::from_utf8_lossy(&self.raw);
        assert_eq!(self.status, status, "unexpected answer: {text}");
        assert_eq!(self.body["code"], json!(code), "{text}");
    }
}

/// The device as this file drives it: the key from the authenticator's `accounts.json`.
struct Device {
    base: String,
    id: String,
    key: SigningKey,
    server_key: VerifyingKey,
    http: reqwest::Client,
}

impl Device {
    fn of(phone: &Phone, server: &Server) -> Device {
        let account = phone.account();
        let s = |k: &str| {
            account[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k}"))
                .to_owned()
        };
        assert_eq!(s("algorithm"), "ed25519");
        let private: [u8; 32] = URL_SAFE_NO_PAD
            .decode(s("private_key"))
            .unwrap()
            .try_into()
            .unwrap();
        let server_key: [u8; 32] = URL_SAFE_NO_PAD
            .decode(s("server_public_key"))
            .unwrap()
            .try_into()
            .unwrap();
        Device {
            base: s("server_url").trim_end_matches('/').to_owned(),
            id: s("device_id"),
            key: SigningKey::from_bytes(&private),
            server_key: VerifyingKey::from_bytes(&server_key).unwrap(),
            http: server.client(),
        }
    }

    fn signature(&self, call: &Call) -> String {
        let message = format!(
            "twofold-app-v1\n{}\n{}\n{}\n{}\n{}",
            call.method.as_str(),
            call.path,
            call.timestamp,
            call.nonce,
            sha256_hex(&call.body)
        );
        b64(&self.key.sign(message.as_bytes()).to_bytes())
    }

    /// A call signed now with a new nonce.
    fn prepare(&self, method: Method, path: &str, body: Option<&Value>) -> Call {
        self.prepare_at(method, path, body, unix_now())
    }

    fn prepare_at(&self, method: Method, path: &str, body: Option<&Value>, at: i64) -> Call {
        let mut call = Call {
            method,
            path: path.to_owned(),
            body: body
                .map(|b| serde_json::to_vec(b).unwrap())
                .unwrap_or_default(),
            device: self.id.clone(),
            timestamp: at.to_string(),
            nonce: new_nonce(),
            signature: String::new(),
        };
        call.signature = self.signature(&call);
        call
    }

    async fn send(&self, call: &Call) -> AppReply {
        let mut request = self
            .http
            .request(call.method.clone(), format!("{}{}", self.base, call.path))
            .header("Twofold-Device", &call.device)
            .header("Twofold-Timestamp", &call.timestamp)
            .header("Twofold-Nonce", &call.nonce)
            .header("Twofold-Signature", &call.signature);
        if !call.body.is_empty() {
            request = request
                .header("Content-Type", "application/json")
                .body(call.body.clone());
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let signature = response
            .headers()
            .get("twofold-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let raw = response.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        AppReply {
            status,
            raw,
            body,
            signature,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> AppReply {
        self.send(&self.prepare(method, path, body)).await
    }

    /// Whether an answer carries the server's signature over the call's nonce and the
    /// body, with the key the activation gave.
    fn answer_verifies(&self, call: &Call, reply: &AppReply) -> bool {
        let Some(signature) = &reply.signature else {
            return false;
        };
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let Ok(bytes): Result<[u8; 64], _> = bytes.try_into() else {
            return false;
        };
        let message = format!(
            "twofold-app-v1\nresponse\n{}\n{}",
            call.nonce,
            sha256_hex(&reply.raw)
        );
        self.server_key
            .verify(
                message.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&bytes),
            )
            .is_ok()
    }

    /// The requests waiting now (`GET /app/v1/requests`).
    async fn requests(&self) -> Vec<Value> {
        let reply = self
            .call(Method::GET, "/app/v1/requests", None)
            .await
            .expect(200);
        reply.body["requests"].as_array().unwrap().clone()
    }

    fn answer_call(&self, request: &Value, body: Value) -> Call {
        self.prepare(
            Method::POST,
            &format!(
                "/app/v1/requests/{}/answer",
                request["id"].as_str().unwrap()
            ),
            Some(&body),
        )
    }
}

// ---- activation ----

async fn activation_with_the_code_and_url_adds_the_device(backend: Backend) {
    let run = start(backend, |e| e).await;
    let activation = run.sdk.activation("ada").await;
    let code = activation["code"].as_str().unwrap();
    let url = activation["url"].as_str().unwrap();
    // Sixteen characters of Crockford's base32 in four groups, the server's address, a QR
    // code of the twofold:// URI, ten minutes.
    assert_eq!(code.len(), 19, "{activation}");
    assert!(
        code.split('-')
            .all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_alphanumeric())),
        "{activation}"
    );
    assert_eq!(url, run.server.base, "{activation}");
    let uri = activation["uri"].as_str().unwrap();
    let parsed = url::Url::parse(uri).unwrap();
    assert_eq!(parsed.scheme(), "twofold");
    let pairs: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(pairs["url"], url);
    assert_eq!(pairs["code"], code);
    let expires = activation["expires_at"].as_i64().unwrap();
    assert!((expires - unix_now() - 600).abs() <= 5, "{activation}");
    assert!(
        activation["qr_svg"].as_str().unwrap().contains("<svg"),
        "{activation}"
    );

    // Typed as a person might: lower case, spaces instead of dashes.
    let phone = run.phone("phone");
    let typed = code.to_lowercase().replace('-', " ");
    let out = phone.activate(url, &typed, &["--name", "Ada's phone"]);
    assert!(out.contains("Activated"), "{out}");
    let account = phone.account();
    assert_eq!(account["username"], json!("ada"));
    assert_eq!(account["name"], json!("Ada's phone"));
    let listed = phone.ok(&["list"]);
    assert!(listed.contains("ada"), "{listed}");

    // The administrator sees it in ada's devices.
    let devices = run.sdk.devices("ada").await;
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["id"], account["device_id"]);
    assert_eq!(devices[0]["name"], json!("Ada's phone"));
    assert_eq!(devices[0]["algorithm"], json!("ed25519"));
    assert_eq!(devices[0]["offline_codes"], json!(true));
    assert_eq!(devices[0]["push_endpoint"], json!(false));
    assert_eq!(devices[0]["last_used_at"], Value::Null);

    // Ada had no OATH token: the device brought one, and its offline code signs in.
    let code_now = phone.ok(&["code"]);
    let digits: String = code_now
        .split_whitespace()
        .find(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("a six-digit code in {code_now}"))
        .to_owned();
    let started = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "ada", "method": "oath"}),
        )
        .await
        .expect(201);
    let answered = run
        .sdk
        .post(
            &format!("/sdk/v1/authentications/{}/answer", id_of(&started.body)),
            json!({"otp": digits}),
        )
        .await
        .expect(200);
    assert_eq!(
        answered.body["state"],
        json!("approved"),
        "{}",
        answered.text
    );

    let audit = run.audit();
    assert!(audit.contains("device_activated"), "{audit}");
}

#[tokio::test]
async fn activation_with_the_code_and_url_adds_the_device_on_sqlite() {
    activation_with_the_code_and_url_adds_the_device(Backend::Sqlite).await;
}

#[tokio::test]
async fn activation_with_the_code_and_url_adds_the_device_on_postgresql() {
    activation_with_the_code_and_url_adds_the_device(Backend::Postgres).await;
}

#[tokio::test]
async fn activation_from_a_picture_of_the_qr_code_works() {
    let run = start(Backend::Sqlite, |e| e).await;
    let activation = run.sdk.activation("ada").await;
    let pictures = run.env.dir.path().join("pictures");
    std::fs::create_dir_all(&pictures).unwrap();
    // What a phone's camera reads, as text, and the picture the authenticator is given.
    let read = decode_qr_svg(activation["qr_svg"].as_str().unwrap(), &pictures);
    assert_eq!(read, activation["uri"].as_str().unwrap());
    let phone = run.phone("phone");
    let out = phone.ok(&[
        "activate",
        "--qr",
        &pictures.join("qr.png").display().to_string(),
    ]);
    assert!(out.contains("Activated"), "{out}");
    assert_eq!(phone.account()["server_url"], activation["url"]);
}

#[tokio::test]
async fn a_used_or_made_up_activation_code_is_refused() {
    let run = start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_SETTINGS__MOBILE_APP_DEVICE_LIMIT", "3")
    })
    .await;
    let activation = run.sdk.activation("ada").await;
    let (url, code) = (
        activation["url"].as_str().unwrap(),
        activation["code"].as_str().unwrap(),
    );
    run.phone("first").activate(url, code, &[]);

    let second = run.phone("second");
    let refused = second.fails(&["activate", url, code]);
    assert!(refused.contains("invalid_activation_code"), "{refused}");
    let refused = second.fails(&["activate", url, "ZZZZ-ZZZZ-ZZZZ-ZZZZ"]);
    assert!(refused.contains("invalid_activation_code"), "{refused}");
    assert_eq!(
        second.accounts().len(),
        0,
        "nothing saved for a refused activation"
    );
    assert_eq!(run.sdk.devices("ada").await.len(), 1);
}

#[tokio::test]
async fn a_second_device_is_refused_at_the_limit_and_allowed_when_it_is_raised() {
    let run = start(Backend::Sqlite, |e| e).await;
    run.ada_with_phone().await;
    // One device is the default limit: no code for a second.
    run.sdk
        .send(Method::POST, "/sdk/v1/users/ada/devices/activation", None)
        .await
        .problem(409, "device_limit");

    set_device_limit(&run, 2).await;
    let second = run.sdk.activation("ada").await;
    run.phone("second").activate(
        second["url"].as_str().unwrap(),
        second["code"].as_str().unwrap(),
        &[],
    );
    assert_eq!(run.sdk.devices("ada").await.len(), 2);
    run.sdk
        .send(Method::POST, "/sdk/v1/users/ada/devices/activation", None)
        .await
        .problem(409, "device_limit");

    // A code made within the limit, used after the limit went down: refused at activation.
    let first_id = run.sdk.devices("ada").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    run.sdk
        .send(
            Method::DELETE,
            &format!("/sdk/v1/users/ada/devices/{first_id}"),
            None,
        )
        .await
        .expect(204);
    let third = run.sdk.activation("ada").await;
    set_device_limit(&run, 1).await;
    let refused = run.phone("third").fails(&[
        "activate",
        third["url"].as_str().unwrap(),
        third["code"].as_str().unwrap(),
    ]);
    assert!(refused.contains("device_limit"), "{refused}");
    assert_eq!(run.sdk.devices("ada").await.len(), 1);
}

/// Sets `mobile_app_device_limit` with the CLI and waits until the server applies it.
async fn set_device_limit(run: &Running, limit: u8) {
    run.env.cli_ok(
        &[
            "settings",
            "set",
            "mobile_app_device_limit",
            &limit.to_string(),
        ],
        "",
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let settings = run.sdk.get("/sdk/v1/settings").await.expect(200);
        if settings.body["mobile_app_device_limit"] == json!(limit) {
            return;
        }
        assert!(Instant::now() < deadline, "{}", settings.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---- answering from the authenticator ----

async fn approving_with_the_number_shown_signs_in(backend: Backend) {
    let run = start(backend, |e| e).await;
    let phone = run.ada_with_phone().await;
    let started = run.sdk.push_ok("ada").await;
    let number = number_of(&started);
    assert!((10..=99).contains(&number), "{started}");

    let request = phone.the_request();
    let numbers: Vec<u8> = request["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(numbers.len(), 3, "{request}");
    assert!(numbers.contains(&number), "{request}");
    assert!(
        numbers[0] != numbers[1] && numbers[1] != numbers[2] && numbers[0] != numbers[2],
        "{request}"
    );
    assert!(numbers.iter().all(|n| (10..=99).contains(n)), "{request}");
    assert_eq!(request["number_matching"], json!(true));
    assert_eq!(request["pin_required"], json!(false));
    let context = &request["context"];
    assert_eq!(context["application"], json!("Contoso VPN"), "{request}");
    assert_eq!(context["address"], json!("203.0.113.9"), "{request}");
    assert_eq!(context["username"], json!("ada"), "{request}");
    assert_eq!(context["purpose"], json!("sign_in"), "{request}");
    assert!(
        (context["time"].as_i64().unwrap() - unix_now()).abs() < 30,
        "{request}"
    );

    assert_eq!(phone.approve(&request, number), "approved");
    let decided = run.sdk.decided(&id_of(&started)).await;
    assert_eq!(decided["state"], json!("approved"), "{decided}");
    assert!(phone.pending().is_empty(), "answered requests are gone");
    // The device was used just now.
    let devices = run.sdk.devices("ada").await;
    let used = devices[0]["last_used_at"].as_i64().expect("last used");
    assert!((used - unix_now()).abs() < 30, "{devices:?}");
}

#[tokio::test]
async fn approving_with_the_number_shown_signs_in_on_sqlite() {
    approving_with_the_number_shown_signs_in(Backend::Sqlite).await;
}

#[tokio::test]
async fn approving_with_the_number_shown_signs_in_on_postgresql() {
    approving_with_the_number_shown_signs_in(Backend::Postgres).await;
}

async fn a_wrong_number_denies_and_counts_towards_lockout(backend: Backend) {
    let run = start(backend, |e| {
        e.set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3")
            .set("TWOFOLD_SETTINGS__PUSH_DENIALS_BEFORE_COOLDOWN", "10")
    })
    .await;
    let phone = run.ada_with_phone().await;
    let shown = run.env.cli_ok(&["user", "show", "ada"], "");
    assert!(shown.contains("locked:    no"), "{shown}");
    // Two wrong numbers deny; the third reaches the lockout threshold.
    for reason in ["invalid_code", "invalid_code", "user_locked"] {
        let started = run.sdk.push_ok("ada").await;
        let request = phone.the_request();
        let wrong = another_number(&request, number_of(&started));
        assert_eq!(phone.approve(&request, wrong), format!("denied ({reason})"));
        let decided = run.sdk.decided(&id_of(&started)).await;
        assert_eq!(decided["state"], json!("denied"), "{decided}");
        assert_eq!(decided["reason"], json!(reason), "{decided}");
        // No second try on the same request.
        assert!(phone.pending().is_empty());
    }
    let shown = run.env.cli_ok(&["user", "show", "ada"], "");
    assert!(shown.contains("locked:    until"), "{shown}");
    let audit = run.audit();
    assert!(audit.matches("invalid_code").count() >= 2, "{audit}");
}

#[tokio::test]
async fn a_wrong_number_denies_and_counts_towards_lockout_on_sqlite() {
    a_wrong_number_denies_and_counts_towards_lockout(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_wrong_number_denies_and_counts_towards_lockout_on_postgresql() {
    a_wrong_number_denies_and_counts_towards_lockout(Backend::Postgres).await;
}

async fn deny_declines_the_sign_in_without_blocking(backend: Backend) {
    let run = start(backend, |e| e).await;
    let phone = run.ada_with_phone().await;
    let started = run.sdk.push_ok("ada").await;
    let request = phone.the_request();
    let out = phone.ok(&["deny", request["id"].as_str().unwrap()]);
    assert_eq!(out.trim(), "denied (declined)");
    let decided = run.sdk.decided(&id_of(&started)).await;
    assert_eq!(decided["state"], json!("denied"), "{decided}");
    assert_eq!(decided["reason"], json!("declined"), "{decided}");
    // Not blocked: the next sign-in pushes again.
    run.sdk.push_ok("ada").await;
    assert_eq!(phone.pending().len(), 1);
}

#[tokio::test]
async fn deny_declines_the_sign_in_without_blocking_on_sqlite() {
    deny_declines_the_sign_in_without_blocking(Backend::Sqlite).await;
}

#[tokio::test]
async fn deny_declines_the_sign_in_without_blocking_on_postgresql() {
    deny_declines_the_sign_in_without_blocking(Backend::Postgres).await;
}

async fn not_me_blocks_the_user_and_emails_the_administrators(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mail = smtp::start(dir.path(), email::USERNAME, email::PASSWORD);
    let run = start(backend, |e| {
        email::smtp_env(e, &mail, email::PASSWORD, true).set(
            "TWOFOLD_SETTINGS__FRAUD_ALERT_EMAILS",
            r#"["security@example.test"]"#,
        )
    })
    .await;
    let phone = run.ada_with_phone().await;
    let started = run.sdk.push_ok("ada").await;
    let request = phone.the_request();
    let out = phone.ok(&["deny", request["id"].as_str().unwrap(), "--not-me"]);
    assert_eq!(out.trim(), "fraud reported");
    let decided = run.sdk.decided(&id_of(&started)).await;
    assert_eq!(decided["state"], json!("fraud"), "{decided}");

    // Blocked: a new sign-in is refused, and nothing reaches the app.
    run.sdk.push("ada").await.problem(403, "fraud_blocked");
    assert!(phone.pending().is_empty());
    let user = run.sdk.get("/sdk/v1/users/ada").await.expect(200);
    assert!(
        user.body["fraud_blocked_until"].as_i64().unwrap() > unix_now(),
        "{}",
        user.text
    );

    let deadline = Instant::now() + WAIT;
    let message = loop {
        if let Some(m) = mail.received().into_iter().find(|m| {
            m.rcpt_tos
                .iter()
                .any(|t| t.contains("security@example.test"))
        }) {
            break m;
        }
        assert!(Instant::now() < deadline, "no fraud email");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(message.subject.contains("ada"), "{message:?}");
    assert!(
        message.body.contains("twofold user unblock ada"),
        "{}",
        message.body
    );
    let audit = run.audit();
    assert!(audit.contains("fraud_reported"), "{audit}");
}

#[tokio::test]
async fn not_me_blocks_the_user_and_emails_the_administrators_on_sqlite() {
    not_me_blocks_the_user_and_emails_the_administrators(Backend::Sqlite).await;
}

#[tokio::test]
async fn not_me_blocks_the_user_and_emails_the_administrators_on_postgresql() {
    not_me_blocks_the_user_and_emails_the_administrators(Backend::Postgres).await;
}

async fn pin_mode_approves_with_the_right_pin_only(backend: Backend) {
    let run = start(backend, |e| {
        e.set("TWOFOLD_SETTINGS__PIN_REQUIRED", "true")
            .set("TWOFOLD_SETTINGS__PUSH_DENIALS_BEFORE_COOLDOWN", "10")
    })
    .await;
    let phone = run.ada_with_phone().await;
    run.sdk
        .send(
            Method::PUT,
            "/sdk/v1/users/ada/pin",
            Some(json!({"pin": "4821"})),
        )
        .await;
    let started = run.sdk.push_ok("ada").await;
    let request = phone.the_request();
    assert_eq!(request["pin_required"], json!(true), "{request}");
    let id = request["id"].as_str().unwrap().to_owned();
    let number = number_of(&started).to_string();
    // Without the PIN the authenticator sends nothing.
    let refused = phone.fails(&["approve", &id, "--number", &number]);
    assert!(refused.contains("PIN"), "{refused}");
    let out = phone.ok(&["approve", &id, "--number", &number, "--pin", "4821"]);
    assert_eq!(out.trim(), "approved");
    assert_eq!(
        run.sdk.decided(&id_of(&started)).await["state"],
        json!("approved")
    );

    let started = run.sdk.push_ok("ada").await;
    let request = phone.the_request();
    let number = number_of(&started).to_string();
    let out = phone.ok(&[
        "approve",
        request["id"].as_str().unwrap(),
        "--number",
        &number,
        "--pin",
        "1111",
    ]);
    assert_eq!(out.trim(), "denied (invalid_code)");
    let decided = run.sdk.decided(&id_of(&started)).await;
    assert_eq!(decided["state"], json!("denied"), "{decided}");
    assert_eq!(decided["reason"], json!("invalid_code"), "{decided}");
}

#[tokio::test]
async fn pin_mode_approves_with_the_right_pin_only_on_sqlite() {
    pin_mode_approves_with_the_right_pin_only(Backend::Sqlite).await;
}

#[tokio::test]
async fn pin_mode_approves_with_the_right_pin_only_on_postgresql() {
    pin_mode_approves_with_the_right_pin_only(Backend::Postgres).await;
}

async fn an_expired_request_cannot_be_approved(backend: Backend) {
    let run = start(backend, |e| {
        e.set("TWOFOLD_SETTINGS__PUSH_REQUEST_SECONDS", "10")
    })
    .await;
    let phone = run.ada_with_phone().await;
    let started = run.sdk.push_ok("ada").await;
    let request = phone.the_request();
    let expires = request["expires_at"].as_i64().unwrap();
    assert!(
        (expires - request["created_at"].as_i64().unwrap() - 10).abs() <= 1,
        "{request}"
    );
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(
        phone.pending().is_empty(),
        "an expired request is not shown"
    );
    // Answered directly (the app had it on screen): the server refuses it.
    let refused = phone.fails(&[
        "approve",
        request["id"].as_str().unwrap(),
        "--number",
        &number_of(&started).to_string(),
        "--nonce",
        request["nonce"].as_str().unwrap(),
        "--account",
        request["device_id"].as_str().unwrap(),
    ]);
    assert!(refused.contains("request_expired"), "{refused}");
    let decided = run.sdk.decided(&id_of(&started)).await;
    assert_eq!(decided["state"], json!("expired"), "{decided}");
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved_on_sqlite() {
    an_expired_request_cannot_be_approved(Backend::Sqlite).await;
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved_on_postgresql() {
    an_expired_request_cannot_be_approved(Backend::Postgres).await;
}

async fn a_removed_device_is_refused_at_once(backend: Backend) {
    let run = start(backend, |e| e).await;
    let phone = run.ada_with_phone().await;
    let device = Device::of(&phone, &run.server);
    // A long-poll held while the administrator removes the device ends at once.
    let poll = device.prepare(Method::GET, "/app/v1/requests?wait=25", None);
    let held = {
        let http = device.http.clone();
        let url = format!("{}{}", device.base, poll.path);
        let poll = poll.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let response = http
                .get(url)
                .header("Twofold-Device", &poll.device)
                .header("Twofold-Timestamp", &poll.timestamp)
                .header("Twofold-Nonce", &poll.nonce)
                .header("Twofold-Signature", &poll.signature)
                .send()
                .await
                .expect("the long-poll ends");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let removed = run
        .sdk
        .send(
            Method::DELETE,
            &format!("/sdk/v1/users/ada/devices/{}", device.id),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    let (status, body, took) = held.await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], json!("unknown_device"), "{body}");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // Every later request is refused, and the authenticator says why.
    device
        .call(Method::GET, "/app/v1/device", None)
        .await
        .problem(401, "unknown_device");
    let out = phone.run(&["pending"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown_device"),
        "{}",
        text(&out)
    );
    // Ada has no device to push to.
    assert!(run.sdk.devices("ada").await.is_empty());
    // Removing it again: there is no such device.
    run.sdk
        .send(
            Method::DELETE,
            &format!("/sdk/v1/users/ada/devices/{}", device.id),
            None,
        )
        .await
        .problem(404, "device_not_found");
    let audit = run.audit();
    assert!(audit.contains("device_removed"), "{audit}");
}

#[tokio::test]
async fn a_removed_device_is_refused_at_once_on_sqlite() {
    a_removed_device_is_refused_at_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_removed_device_is_refused_at_once_on_postgresql() {
    a_removed_device_is_refused_at_once(Backend::Postgres).await;
}

#[tokio::test]
async fn a_device_that_removes_itself_is_refused_and_loses_its_offline_codes() {
    let run = start(Backend::Sqlite, |e| e).await;
    let phone = run.ada_with_phone().await;
    let device = Device::of(&phone, &run.server);
    let info = device
        .call(Method::GET, "/app/v1/device", None)
        .await
        .expect(200);
    assert_eq!(info.body["device_id"], json!(device.id));
    assert_eq!(info.body["username"], json!("ada"));
    assert_eq!(info.body["name"], json!("Ada's phone"));
    let before = run.sdk.get("/sdk/v1/users/ada").await.expect(200);
    assert_ne!(before.body["oath"], Value::Null, "{}", before.text);
    let gone = device.call(Method::DELETE, "/app/v1/device", None).await;
    assert_eq!(gone.status, 204, "{gone:?}");
    device
        .call(Method::GET, "/app/v1/requests", None)
        .await
        .problem(401, "unknown_device");
    assert!(run.sdk.devices("ada").await.is_empty());
    // The OATH token the device brought went with it.
    let after = run.sdk.get("/sdk/v1/users/ada").await.expect(200);
    assert_eq!(after.body["oath"], Value::Null, "{}", after.text);
    let started = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "ada", "method": "oath"}),
        )
        .await
        .expect(201);
    assert_eq!(started.body["state"], json!("denied"), "{}", started.text);
    assert_eq!(
        started.body["reason"],
        json!("not_enrolled"),
        "{}",
        started.text
    );
    let audit = run.audit();
    assert!(audit.contains("device_removed"), "{audit}");
}

// ---- the signature rules ----

async fn signed_requests_are_checked_and_answers_signed(backend: Backend) {
    let run = start(backend, |e| e).await;
    let phone = run.ada_with_phone().await;
    let device = Device::of(&phone, &run.server);

    // An answer signed with the key the activation gave, over this call's nonce.
    let call = device.prepare(Method::GET, "/app/v1/device", None);
    let reply = device.send(&call).await.expect(200);
    assert!(device.answer_verifies(&call, &reply), "{reply:?}");
    let other = device.prepare(Method::GET, "/app/v1/device", None);
    assert!(
        !device.answer_verifies(&other, &reply),
        "an answer does not verify for another request's nonce"
    );

    // The same signed request again.
    device.send(&call).await.problem(401, "replayed_nonce");

    // A signature with one bit changed.
    let mut tampered = device.prepare(Method::GET, "/app/v1/device", None);
    let mut sig = URL_SAFE_NO_PAD.decode(&tampered.signature).unwrap();
    sig[10] ^= 1;
    tampered.signature = b64(&sig);
    device.send(&tampered).await.problem(401, "bad_signature");
    // A path other than the one signed.
    let mut moved = device.prepare(Method::GET, "/app/v1/requests", None);
    moved.path = "/app/v1/requests?wait=0".into();
    device.send(&moved).await.problem(401, "bad_signature");
    // Signed by another key.
    let stranger = SigningKey::from_bytes(&[7u8; 32]);
    let mut forged = device.prepare(Method::GET, "/app/v1/device", None);
    let message = format!(
        "twofold-app-v1\nGET\n/app/v1/device\n{}\n{}\n{}",
        forged.timestamp,
        forged.nonce,
        sha256_hex(b"")
    );
    forged.signature = b64(&stranger.sign(message.as_bytes()).to_bytes());
    device.send(&forged).await.problem(401, "bad_signature");

    // Two minutes off, either way.
    for offset in [-120, 120] {
        let stale = device.prepare_at(Method::GET, "/app/v1/device", None, unix_now() + offset);
        device.send(&stale).await.problem(401, "stale_timestamp");
    }
    // A device that does not exist.
    let mut unknown = device.prepare(Method::GET, "/app/v1/device", None);
    unknown.device = "d_nonexistent".into();
    device.send(&unknown).await.problem(401, "unknown_device");
    // Not signed at all.
    let bare = device
        .http
        .get(format!("{}/app/v1/device", device.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);

    // The device still works after all this.
    device
        .call(Method::GET, "/app/v1/device", None)
        .await
        .expect(200);
}

#[tokio::test]
async fn signed_requests_are_checked_and_answers_signed_on_sqlite() {
    signed_requests_are_checked_and_answers_signed(Backend::Sqlite).await;
}

#[tokio::test]
async fn signed_requests_are_checked_and_answers_signed_on_postgresql() {
    signed_requests_are_checked_and_answers_signed(Backend::Postgres).await;
}

#[tokio::test]
async fn an_answer_counts_once_and_for_its_own_request_only() {
    let run = start(Backend::Sqlite, |e| e).await;
    let phone = run.ada_with_phone().await;
    let device = Device::of(&phone, &run.server);

    let first = run.sdk.push_ok("ada").await;
    let requests = device.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = requests[0].clone();
    let approve = device.answer_call(
        &request,
        json!({"nonce": request["nonce"], "answer": "approve", "number": number_of(&first)}),
    );
    let reply = device.send(&approve).await.expect(200);
    assert!(device.answer_verifies(&approve, &reply), "{reply:?}");
    assert_eq!(reply.body["outcome"], json!("approved"), "{reply:?}");

    // The recorded answer, sent again: refused before anything else.
    device.send(&approve).await.problem(401, "replayed_nonce");
    // The same answer newly signed: the request was answered.
    let again = device.answer_call(
        &request,
        json!({"nonce": request["nonce"], "answer": "deny"}),
    );
    device.send(&again).await.problem(409, "request_answered");
    assert_eq!(
        run.sdk.decided(&id_of(&first)).await["state"],
        json!("approved")
    );

    // A new sign-in; an answer that carries the first request's nonce is not its answer.
    let second = run.sdk.push_ok("ada").await;
    let requests = device.requests().await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let next = requests[0].clone();
    assert_ne!(next["nonce"], request["nonce"]);
    let borrowed = device.answer_call(
        &next,
        json!({"nonce": request["nonce"], "answer": "approve", "number": number_of(&second)}),
    );
    device.send(&borrowed).await.problem(400, "invalid_request");
    // Nor is the answer to another request id.
    let misaddressed = device.answer_call(
        &request,
        json!({"nonce": next["nonce"], "answer": "approve", "number": number_of(&second)}),
    );
    let refused = device.send(&misaddressed).await;
    assert!(
        refused.status == 409 || refused.status == 400,
        "{refused:?}"
    );
    assert_eq!(
        run.sdk.authentication(&id_of(&second)).await["state"],
        json!("pending"),
        "the refusals changed nothing"
    );
    let good = device.answer_call(
        &next,
        json!({"nonce": next["nonce"], "answer": "approve", "number": number_of(&second)}),
    );
    let reply = device.send(&good).await.expect(200);
    assert_eq!(reply.body["outcome"], json!("approved"), "{reply:?}");
    // An unknown request id.
    let nowhere = device.answer_call(
        &json!({"id": "p_nonexistent"}),
        json!({"nonce": next["nonce"], "answer": "deny"}),
    );
    device
        .send(&nowhere)
        .await
        .problem(404, "request_not_found");
}

// ---- the limits against push bombing ----

async fn two_sign_ins_at_once_push_only_one(backend: Backend) {
    let run = start(backend, |e| {
        e.set("TWOFOLD_SETTINGS__PUSH_DENIALS_BEFORE_COOLDOWN", "2")
    })
    .await;
    let phone = run.ada_with_phone().await;
    let (a, b) = tokio::join!(run.sdk.push("ada"), run.sdk.push("ada"));
    let (a, b) = (a.expect(201).body, b.expect(201).body);
    let (pushed, refused) = if a["state"] == json!("pending") {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(pushed["state"], json!("pending"), "{pushed} / {refused}");
    assert!(pushed["number"].as_u64().is_some(), "{pushed}");
    assert_eq!(refused["state"], json!("denied"), "{pushed} / {refused}");
    assert_eq!(refused["reason"], json!("rate_limited"), "{refused}");
    let pending = phone.pending();
    assert_eq!(pending.len(), 1, "one request reaches the app: {pending:?}");

    // Denied twice: the cool-down starts, and no push is sent.
    phone.ok(&["deny", pending[0]["id"].as_str().unwrap()]);
    run.sdk.push_ok("ada").await;
    let request = phone.the_request();
    phone.ok(&["deny", request["id"].as_str().unwrap()]);
    let cooling = run.sdk.push("ada").await.expect(201);
    assert_eq!(cooling.body["state"], json!("denied"), "{}", cooling.text);
    assert_eq!(
        cooling.body["reason"],
        json!("rate_limited"),
        "{}",
        cooling.text
    );
    assert!(phone.pending().is_empty());
    let audit = run.audit();
    assert!(audit.contains("cooling down"), "{audit}");
}

#[tokio::test]
async fn two_sign_ins_at_once_push_only_one_on_sqlite() {
    two_sign_ins_at_once_push_only_one(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_sign_ins_at_once_push_only_one_on_postgresql() {
    two_sign_ins_at_once_push_only_one(Backend::Postgres).await;
}

// ---- two nodes ----

/// `twofold-authenticator watch`, its standard output read line by line.
struct Watch {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(phone: &Phone) -> Watch {
        let mut child = Command::new(authenticator_bin())
            .arg("--data-dir")
            .arg(&phone.dir)
            .arg("--ca-file")
            .arg(&phone.ca)
            .arg("watch")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("twofold-authenticator watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = ready_tx.send(line);
            }
        });
        let started = ready
            .recv_timeout(WAIT)
            .expect("watch says what it watches");
        assert!(started.contains("Watching 1 account"), "{started}");
        Watch { child, lines }
    }

    /// Waits until a line contains `needle`; returns what came until then.
    fn until(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut seen = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if line.contains(needle) {
                        return seen;
                    }
                }
                Err(_) => panic!("{needle:?} did not come within {within:?}:\n{seen}"),
            }
        }
    }
}

#[tokio::test]
async fn the_app_waiting_on_node_b_gets_the_request_a_sign_in_on_node_a_sent() {
    const SEAL_KEY: &str = "5f0c2a9e7d41b38c6e15a02f94d7b3c8e1a6f05d29c4b7e830f1d6a2c5b98e47";
    let env = Env::new(Backend::Postgres)
        .await
        .set("TWOFOLD_SECRETS__KEY", SEAL_KEY)
        .set("TWOFOLD_SETTINGS__ALLOW_MOBILE_APP_ACTIVATION", "true");
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    env.add_user("ada", PASSWORD);
    let a = env.start();
    let b = env.start_another_node("node-b");
    let sdk_a = Sdk {
        base: a.base.clone(),
        client: a.client(),
        secret,
    };
    // The code made on A; the device talks to B (behind one name, the balancer chose B).
    let activation = sdk_a.activation("ada").await;
    let phone = Phone {
        dir: env.dir.path().join("phone"),
        ca: b.cert_file(),
    };
    phone.activate(&b.base, activation["code"].as_str().unwrap(), &[]);

    let watch = Watch::start(&phone);
    // The long-poll is held on B now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = Instant::now();
    let started = sdk_a.push_ok("ada").await;
    let seen = watch.until("approve with the one", Duration::from_secs(5));
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    let numbers = seen
        .lines()
        .find(|l| l.contains("numbers:"))
        .unwrap_or_default();
    assert!(
        numbers.contains(&format!(" {} ", number_of(&started))),
        "{seen}"
    );
    assert!(seen.contains("from:     Contoso VPN"), "{seen}");
    drop(watch);

    // Answered through B, decided for A's caller.
    let request = phone.the_request();
    assert_eq!(phone.approve(&request, number_of(&started)), "approved");
    assert_eq!(
        sdk_a.decided(&id_of(&started)).await["state"],
        json!("approved")
    );

    // A device removed on A is refused on B.
    let device = Device::of(&phone, &b);
    let removed = sdk_a
        .send(
            Method::DELETE,
            &format!("/sdk/v1/users/ada/devices/{}", device.id),
            None,
        )
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    device
        .call(Method::GET, "/app/v1/device", None)
        .await
        .problem(401, "unknown_device");
    drop((a, b));
}

#[tokio::test]
async fn a_nonce_used_on_one_node_is_refused_on_the_other() {
    let env = Env::new(Backend::Postgres)
        .await
        .set(
            "TWOFOLD_SECRETS__KEY",
            "5f0c2a9e7d41b38c6e15a02f94d7b3c8e1a6f05d29c4b7e830f1d6a2c5b98e47",
        )
        .set("TWOFOLD_SETTINGS__ALLOW_MOBILE_APP_ACTIVATION", "true");
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    env.add_user("ada", PASSWORD);
    let a = env.start();
    let b = env.start_another_node("node-b");
    let sdk = Sdk {
        base: a.base.clone(),
        client: a.client(),
        secret,
    };
    let activation = sdk.activation("ada").await;
    let phone = Phone {
        dir: env.dir.path().join("phone"),
        ca: a.cert_file(),
    };
    phone.activate(&a.base, activation["code"].as_str().unwrap(), &[]);
    let on_a = Device::of(&phone, &a);
    let call = on_a.prepare(Method::GET, "/app/v1/device", None);
    let reply = on_a.send(&call).await.expect(200);
    assert!(on_a.answer_verifies(&call, &reply));
    let on_b = Device {
        base: b.base.clone(),
        ..Device::of(&phone, &b)
    };
    on_b.send(&call).await.problem(401, "replayed_nonce");
    // B signs with the same server key.
    let fresh = on_b.prepare(Method::GET, "/app/v1/device", None);
    let reply = on_b.send(&fresh).await.expect(200);
    assert!(on_b.answer_verifies(&fresh, &reply), "one server key");
}

// ---- UnifiedPush ----

/// A POST an endpoint received.
#[derive(Debug)]
struct Delivery {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Delivery {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A UnifiedPush endpoint on 127.0.0.1: answers 201 to every request, except
/// `/redirect`, which it redirects to `/redirected`.
struct Receiver {
    port: u16,
    deliveries: std::sync::mpsc::Receiver<Delivery>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, deliveries) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.push((k.trim().to_owned(), v.trim().to_owned()));
                    }
                }
                let length = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let answer = if path == "/redirect" {
                    format!(
                        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{port}/redirected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    "HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = stream.write_all(answer.as_bytes());
                let _ = tx.send(Delivery {
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
            }
        });
        Receiver { port, deliveries }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn next(&self, within: Duration) -> Option<Delivery> {
        self.deliveries.recv_timeout(within).ok()
    }
}

async fn a_push_wakes_the_device_through_its_unified_push_endpoint(backend: Backend) {
    let receiver = Receiver::start();
    let run = start(backend, |e| {
        e.set("TWOFOLD_APP__ALLOW_PRIVATE_PUSH_ENDPOINTS", "true")
    })
    .await;
    let activation = run.sdk.activation("ada").await;
    let phone = run.phone("phone");
    let endpoint = receiver.url("/up/ada-phone");
    phone.activate(
        activation["url"].as_str().unwrap(),
        activation["code"].as_str().unwrap(),
        &["--push-endpoint", &endpoint],
    );
    assert_eq!(phone.account()["push_endpoint"], json!(endpoint));
    assert!(
        receiver.next(Duration::from_millis(500)).is_none(),
        "nothing is sent at activation"
    );

    let started = run.sdk.push_ok("ada").await;
    let wake = receiver.next(WAIT).expect("a wake-up reaches the endpoint");
    assert_eq!(wake.path, "/up/ada-phone");
    let body: Value = serde_json::from_str(&wake.body).unwrap();
    assert_eq!(body, json!({"type": "twofold.wake", "v": 1}), "{wake:?}");
    assert_eq!(wake.header("content-type"), Some("application/json"));
    assert_eq!(wake.header("ttl"), Some("120"));
    assert_eq!(wake.header("urgency"), Some("high"));
    // No secret and no detail of the sign-in.
    let request = phone.the_request();
    let everything = format!("{wake:?}");
    for secret in [
        request["id"].as_str().unwrap().to_owned(),
        request["nonce"].as_str().unwrap().to_owned(),
        id_of(&started),
        "203.0.113.9".to_owned(),
        "Contoso".to_owned(),
    ] {
        assert!(!everything.contains(&secret), "{secret} in {everything}");
    }
    assert!(
        !wake.body.contains(&number_of(&started).to_string()),
        "{wake:?}"
    );
    // Woken, the app long-polls and answers.
    assert_eq!(phone.approve(&request, number_of(&started)), "approved");
}

#[tokio::test]
async fn a_push_wakes_the_device_through_its_unified_push_endpoint_on_sqlite() {
    a_push_wakes_the_device_through_its_unified_push_endpoint(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_push_wakes_the_device_through_its_unified_push_endpoint_on_postgresql() {
    a_push_wakes_the_device_through_its_unified_push_endpoint(Backend::Postgres).await;
}

#[tokio::test]
async fn a_wake_up_is_not_redirected() {
    let receiver = Receiver::start();
    let run = start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_APP__ALLOW_PRIVATE_PUSH_ENDPOINTS", "true")
    })
    .await;
    let activation = run.sdk.activation("ada").await;
    let phone = run.phone("phone");
    phone.activate(
        activation["url"].as_str().unwrap(),
        activation["code"].as_str().unwrap(),
        &["--push-endpoint", &receiver.url("/redirect")],
    );
    let started = run.sdk.push_ok("ada").await;
    let first = receiver.next(WAIT).expect("the wake-up");
    assert_eq!(first.path, "/redirect");
    assert!(
        receiver.next(Duration::from_secs(2)).is_none(),
        "the redirect is not followed"
    );
    // The long-poll still delivers.
    let request = phone.the_request();
    assert_eq!(phone.approve(&request, number_of(&started)), "approved");
}

#[tokio::test]
async fn a_private_push_endpoint_is_refused_unless_allowed() {
    let receiver = Receiver::start();
    let run = start(Backend::Sqlite, |e| e).await;
    let activation = run.sdk.activation("ada").await;
    let (url, code) = (
        activation["url"].as_str().unwrap(),
        activation["code"].as_str().unwrap(),
    );
    let phone = run.phone("phone");
    for endpoint in [
        receiver.url("/up"),
        "http://localhost:9/up".to_owned(),
        "http://10.0.0.7/up".to_owned(),
        "http://[::1]:9/up".to_owned(),
        "http://169.254.169.254/latest".to_owned(),
    ] {
        let refused = phone.fails(&["activate", url, code, "--push-endpoint", &endpoint]);
        assert!(
            refused.contains("invalid_push_endpoint"),
            "{endpoint}: {refused}"
        );
    }
    // The refusals spent nothing: the code still activates, without an endpoint.
    phone.activate(url, code, &[]);
    run.sdk.push_ok("ada").await;
    assert!(
        receiver.next(Duration::from_secs(1)).is_none(),
        "nothing reached the private address"
    );
}

// ---- activation by hand ----

/// `POST /app/v1/activate` with `key`, as an app would: the proof signs the code as
/// normalised and the public key as sent. `from` is the address a trusted proxy vouches for.
async fn activate_by_hand(
    server: &Server,
    key: &SigningKey,
    code: &str,
    from: Option<&str>,
) -> (u16, Value) {
    let public = b64(key.verifying_key().as_bytes());
    let normalised: String = code
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .collect::<String>()
        .to_uppercase();
    let proof = key.sign(format!("twofold-app-v1\nactivate\n{normalised}\n{public}").as_bytes());
    let mut request = server
        .client()
        .post(server.url("/app/v1/activate"))
        .json(&json!({
            "code": code,
            "algorithm": "ed25519",
            "public_key": public,
            "name": "Hand-made app",
            "proof": b64(&proof.to_bytes()),
        }));
    if let Some(from) = from {
        request = request.header("X-Forwarded-For", from);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_app_that_activates_itself_gets_the_server_key_that_signs_its_answers() {
    let run = start(Backend::Sqlite, |e| e).await;
    let activation = run.sdk.activation("ada").await;
    let code = activation["code"].as_str().unwrap();
    let key = SigningKey::from_bytes(&Sha256::digest(b"ada's own app").into());

    // A proof made with another key is refused, and spends nothing.
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let public = b64(key.verifying_key().as_bytes());
    let normalised = code.replace('-', "");
    let wrong = other.sign(format!("twofold-app-v1\nactivate\n{normalised}\n{public}").as_bytes());
    let refused = run
        .server
        .client()
        .post(run.server.url("/app/v1/activate"))
        .json(&json!({
            "code": code, "algorithm": "ed25519", "public_key": public,
            "name": "Hand-made app", "proof": b64(&wrong.to_bytes()),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["code"], json!("bad_signature"), "{refused}");

    let (status, answer) = activate_by_hand(&run.server, &key, code, None).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["account"]["username"], json!("ada"), "{answer}");
    assert_eq!(answer["server"]["algorithm"], json!("ed25519"), "{answer}");
    assert_eq!(answer["server"]["url"], json!(run.server.base), "{answer}");
    assert!(answer["oath"]["secret"].as_str().is_some(), "{answer}");
    let server_key: [u8; 32] = URL_SAFE_NO_PAD
        .decode(answer["server"]["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let device = Device {
        base: run.server.base.clone(),
        id: answer["device_id"].as_str().unwrap().to_owned(),
        key,
        server_key: VerifyingKey::from_bytes(&server_key).unwrap(),
        http: run.server.client(),
    };
    let started = run.sdk.push_ok("ada").await;
    let call = device.prepare(Method::GET, "/app/v1/requests?wait=5", None);
    let reply = device.send(&call).await.expect(200);
    assert!(device.answer_verifies(&call, &reply), "{reply:?}");
    let request = reply.body["requests"][0].clone();
    let approve = device.answer_call(
        &request,
        json!({"nonce": request["nonce"], "answer": "approve", "number": number_of(&started)}),
    );
    let reply = device.send(&approve).await.expect(200);
    assert!(device.answer_verifies(&approve, &reply), "{reply:?}");
    assert_eq!(
        run.sdk.decided(&id_of(&started)).await["state"],
        json!("approved")
    );
}

#[tokio::test]
async fn guessing_activation_codes_from_one_address_does_not_stop_others() {
    let run = start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]")
    })
    .await;
    let key = SigningKey::from_bytes(&[5u8; 32]);
    let mut limited = false;
    for _ in 0..40 {
        let (status, answer) = activate_by_hand(
            &run.server,
            &key,
            "ZZZZ-ZZZZ-ZZZZ-ZZZZ",
            Some("198.51.100.7"),
        )
        .await;
        if status == 429 {
            assert_eq!(answer["code"], json!("rate_limited"), "{answer}");
            limited = true;
            break;
        }
        assert_eq!(answer["code"], json!("invalid_activation_code"), "{answer}");
    }
    assert!(limited, "a guesser is stopped");
    // Ada, elsewhere, activates at once.
    let activation = run.sdk.activation("ada").await;
    let (status, answer) = activate_by_hand(
        &run.server,
        &key,
        activation["code"].as_str().unwrap(),
        Some("192.0.2.44"),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn without_number_matching_the_app_approves_without_a_number() {
    let run = start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_SETTINGS__PUSH_NUMBER_MATCHING", "false")
    })
    .await;
    let phone = run.ada_with_phone().await;
    let started = run.sdk.push("ada").await.expect(201);
    assert_eq!(started.body["state"], json!("pending"), "{}", started.text);
    assert_eq!(started.body["number"], Value::Null, "{}", started.text);
    let request = phone.the_request();
    assert_eq!(request["number_matching"], json!(false), "{request}");
    assert_eq!(request["numbers"], json!([]), "{request}");
    let out = phone.ok(&["approve", request["id"].as_str().unwrap()]);
    assert_eq!(out.trim(), "approved");
    assert_eq!(
        run.sdk.decided(&id_of(&started.body)).await["state"],
        json!("approved")
    );
}

#[tokio::test]
async fn a_long_poll_is_held_no_longer_than_the_server_allows() {
    let run = start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_APP__LONG_POLL_SECONDS", "2")
    })
    .await;
    let phone = run.ada_with_phone().await;
    let device = Device::of(&phone, &run.server);
    let began = Instant::now();
    let call = device.prepare(Method::GET, "/app/v1/requests?wait=25", None);
    let reply = device.send(&call).await.expect(200);
    let held = began.elapsed();
    assert!(device.answer_verifies(&call, &reply), "{reply:?}");
    assert_eq!(reply.body["requests"], json!([]), "{reply:?}");
    assert!(
        held >= Duration::from_millis(1900) && held < Duration::from_secs(10),
        "{held:?}"
    );
    device
        .call(Method::GET, "/app/v1/requests?wait=61", None)
        .await
        .problem(400, "invalid_request");
}
