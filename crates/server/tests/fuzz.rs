//! Fuzzing what the server decodes from clients: the SDK's JSON bodies (into each request
//! type, and through the SDK's body extractor in the real router) and the portal's forms and
//! queries (through the real router: its form types are the portal's own). Mutated valid
//! bodies and random bytes; no input may panic, hang (408) or fail inside (500), and every
//! SDK error is a problem document.
//!
//! A short, repeatable pass runs with the test suite; `scripts/fuzz` runs a long one. The
//! harness is the engine's (`crates/engine/tests/fuzzing/mod.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../engine/tests/fuzzing/mod.rs"]
mod fuzzing;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use fuzzing::{Target, fuzz};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use twofold_engine::{Clock, Settings, SystemClock};
use twofold_server::config::{DatabaseTarget, HttpConfig};
use twofold_server::secrets::Keyring;
use twofold_server::service::{DEFAULT_QUESTIONS, InProcessService, SDK_ROLE};
use twofold_server::store::Store;
use twofold_server::web::{self, WebParts, ratelimit::SignInLimits};

/// The whole application in this process, with a service account, a user and a portal
/// visitor's session.
struct App {
    router: Router,
    runtime: tokio::runtime::Runtime,
    basic: String,
    cookie: String,
    csrf: String,
    _dir: tempfile::TempDir,
}

impl App {
    fn new() -> App {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (router, basic, cookie, csrf) = runtime.block_on(async {
            let store = Store::connect(
                &DatabaseTarget::Sqlite(dir.path().join("fuzz.db")),
                8,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
            store.migrate().await.unwrap();
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            store
                .seed_settings(&Settings::default(), clock.now())
                .await
                .unwrap();
            store
                .seed_questions(DEFAULT_QUESTIONS, clock.now())
                .await
                .unwrap();
            let keyring = Keyring::load(dir.path(), None, None).unwrap();
            let service = Arc::new(InProcessService::new(store, clock.clone(), keyring).unwrap());
            let secret = service
                .add_service_account("test", "app1", SDK_ROLE)
                .await
                .unwrap();
            service
                .add_user("test", "alice", None, None, Some("correct horse battery"))
                .await
                .unwrap();
            let router = web::router(WebParts {
                service: service.clone(),
                clock,
                csrf_key: [7; 32],
                http: HttpConfig::default(),
                limits: Arc::new(SignInLimits::new(1_000_000, 1_000_000)),
                metrics: None,
                sdk: Some(service),
                tls: true,
                dev_inbox: None,
                twilio: None,
            });
            use base64::Engine;
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("app1:{}", secret.0))
            );
            let page = router
                .clone()
                .oneshot(Request::get("/sign-in").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let cookie = page
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split(';').next())
                .collect::<Vec<_>>()
                .join("; ");
            let html = axum::body::to_bytes(page.into_body(), 1 << 20)
                .await
                .unwrap();
            let html = String::from_utf8_lossy(&html);
            let marker = "name=\"csrf_token\" value=\"";
            let start = html
                .find(marker)
                .expect("the sign-in page has a CSRF token")
                + marker.len();
            let csrf = html[start..][..html[start..].find('"').unwrap()].to_owned();
            (router, basic, cookie, csrf)
        });
        App {
            router,
            runtime,
            basic,
            cookie,
            csrf,
            _dir: dir,
        }
    }

    /// Sends a request; refuses a hang (the router's timeout answers 408) and an internal
    /// failure (500).
    fn send(&self, request: Request<Body>) -> Result<axum::response::Response, String> {
        let what = format!("{} {}", request.method(), request.uri());
        let response = self
            .runtime
            .block_on(self.router.clone().oneshot(request))
            .map_err(|e| format!("{what}: the router failed: {e}"))?;
        match response.status() {
            StatusCode::INTERNAL_SERVER_ERROR | StatusCode::REQUEST_TIMEOUT => {
                Err(format!("{what}: answered {}", response.status()))
            }
            _ => Ok(response),
        }
    }
}

// ---- the SDK's JSON bodies ----

/// Each operation with a body: method, path, and a valid body.
const SDK_BODIES: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/sdk/v1/users",
        r#"{"username":"fuzz1","email":"fuzz@example.com","phone":"+12015550123","password":"correct horse battery","language":"fr"}"#,
    ),
    (
        "PATCH",
        "/sdk/v1/users/alice",
        r#"{"email":null,"phone":"+12015550123","language":"en","enabled":true,"method":"oath"}"#,
    ),
    ("PUT", "/sdk/v1/users/alice/pin", r#"{"pin":"482913"}"#),
    (
        "POST",
        "/sdk/v1/users/alice/oath",
        r#"{"kind":"software","type":"totp","digits":6,"period":30,"algorithm":"sha1"}"#,
    ),
    (
        "POST",
        "/sdk/v1/users/alice/oath",
        r#"{"kind":"hardware","serial":"HW-1","code":"123456"}"#,
    ),
    (
        "POST",
        "/sdk/v1/users/alice/oath/verify",
        r#"{"code":"123456","pin":"1234"}"#,
    ),
    (
        "PUT",
        "/sdk/v1/users/alice/security-answers",
        r#"{"answers":[{"question_id":"q-first-pet","answer":"Rex"},{"question_id":"q2","answer":"blue"}]}"#,
    ),
    (
        "POST",
        "/sdk/v1/users/alice/bypass",
        r#"{"seconds":300,"reason":"ticket 4711"}"#,
    ),
    (
        "POST",
        "/sdk/v1/authentications",
        r#"{"username":"alice","password":"wrong password","method":"oath","client_ip":"192.0.2.1","context":{"app":"vpn"}}"#,
    ),
    (
        "POST",
        "/sdk/v1/authentications/a1b2c3/answer",
        r#"{"otp":"123456","pin":"1234"}"#,
    ),
    (
        "POST",
        "/sdk/v1/authentications/a1b2c3/answer",
        r#"{"answers":[{"question_id":"q1","answer":"Rex"}]}"#,
    ),
    (
        "POST",
        "/sdk/v1/tokens/import",
        r#"{"content":"HW-9,3132333435363738393031323334353637383930,totp,6,30\n","key":null}"#,
    ),
];

fn json_tokens() -> Vec<Vec<u8>> {
    [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\\",
        "\\u0000",
        "\\ud800",
        "\\uDFFF",
        "null",
        "true",
        "false",
        "-0",
        "1e999",
        "-1",
        "18446744073709551616",
        "4294967296",
        "256",
        "0.5",
        "\"username\":",
        "\"kind\":",
        "\"otp\":",
        "\"answers\":",
        "\"password\":",
        "\"content\":",
        "\"context\":",
        "\u{feff}",
        "\u{202e}",
        "\n",
        "\0",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .chain([vec![0xff], vec![0xc3], vec![0xed, 0xa0, 0x80]])
    .collect()
}

/// Deserialises into `T`; only a panic is wrong here.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
    let _ = serde_json::from_slice::<T>(bytes);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = serde_path_to_error::deserialize::<_, T>(value);
    }
}

#[test]
fn mutated_json_never_panics_any_sdk_request_type() {
    use twofold_sdk as sdk;
    let target = Target {
        name: "sdk-json-types",
        seeds: SDK_BODIES
            .iter()
            .map(|(_, _, b)| b.as_bytes().to_vec())
            .collect(),
        tokens: json_tokens(),
        cases: 3000,
    };
    fuzz(target, |bytes| {
        decode::<sdk::UserCreate>(bytes);
        decode::<sdk::UserPatch>(bytes);
        decode::<sdk::PinSet>(bytes);
        decode::<sdk::OathEnroll>(bytes);
        decode::<sdk::CodeCheck>(bytes);
        decode::<sdk::SecurityAnswers>(bytes);
        decode::<sdk::BypassCreate>(bytes);
        decode::<sdk::AuthenticationStart>(bytes);
        decode::<sdk::AuthenticationAnswer>(bytes);
        decode::<sdk::OtpAnswer>(bytes);
        decode::<sdk::TokenImport>(bytes);
        Ok(())
    });
}

/// Valid calls of the portal's RPC (what a portal on its own host sends).
const PORTAL_CALLS: &[&str] = &[
    r#"{"call":"settings"}"#,
    r#"{"call":"sign_in","username":"alice","password":"correct horse battery","next":"/account","replacing":null,"client":{"ip":"203.0.113.9","user_agent":"Firefox"}}"#,
    r#"{"call":"verify_oath","session":"c2Vzc2lvbg","code":"123456","pin":null,"client":{"ip":null,"user_agent":null}}"#,
    r#"{"call":"answer_security_questions","session":"c2Vzc2lvbg","answers":[["en-1","Rex"],["en-2","Paris"]],"client":{"ip":"::1","user_agent":"x"}}"#,
    r#"{"call":"start_bypass","session":"c2Vzc2lvbg","seconds":300,"client":{"ip":null,"user_agent":null}}"#,
    r#"{"call":"choose_challenge","session":"c2Vzc2lvbg","challenge":"security_questions"}"#,
];

#[test]
fn mutated_portal_rpc_calls_never_panic_the_decoder() {
    let target = Target {
        name: "portal-rpc-json",
        seeds: PORTAL_CALLS.iter().map(|b| b.as_bytes().to_vec()).collect(),
        tokens: json_tokens(),
        cases: 2000,
    };
    fuzz(target, |bytes| {
        decode::<twofold_server::service::remote::PortalCall>(bytes);
        Ok(())
    });
}

#[test]
fn mutated_json_bodies_through_the_sdk_get_problems_never_failures() {
    let app = App::new();
    // The first byte picks the operation; the rest is the body.
    let target = Target {
        name: "sdk-router",
        seeds: SDK_BODIES
            .iter()
            .enumerate()
            .map(|(i, (_, _, body))| {
                let mut seed = vec![u8::try_from(i).unwrap()];
                seed.extend_from_slice(body.as_bytes());
                seed
            })
            .collect(),
        tokens: json_tokens(),
        cases: 1000,
    };
    // The valid bodies get past the credentials and the extractor: the fuzzing reaches the
    // handlers.
    let sdk_call = |method: &str, path: &str, body: &[u8]| {
        Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header(header::AUTHORIZATION, &app.basic)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_vec()))
            .unwrap()
    };
    for (method, path, body) in SDK_BODIES {
        let response = app.send(sdk_call(method, path, body.as_bytes())).unwrap();
        let status = response.status();
        let body = app
            .runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default();
        assert!(
            ![
                "unauthenticated",
                "tls_required",
                "forbidden",
                "invalid_body",
                "invalid_json",
                "unsupported_media_type",
            ]
            .contains(&code.as_str()),
            "{method} {path} answered {status} {code} to its valid body"
        );
    }
    fuzz(target, |bytes| {
        let Some((&pick, body)) = bytes.split_first() else {
            return Ok(());
        };
        let (method, path, _) = SDK_BODIES[usize::from(pick) % SDK_BODIES.len()];
        let response = app.send(sdk_call(method, path, body))?;
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if response.status().is_client_error() && content_type != "application/problem+json" {
            return Err(format!(
                "{method} {path} answered {} as {content_type:?}, not as a problem",
                response.status()
            ));
        }
        Ok(())
    });
}

// ---- the portal's forms and queries ----

/// Each form the portal takes: its path and a valid body (`{csrf}` is the visitor's token).
const PORTAL_FORMS: &[(&str, &str)] = &[
    (
        "/sign-in",
        "csrf_token={csrf}&username=alice&password=correct+horse+battery&next=%2Faccount",
    ),
    ("/sign-out", "csrf_token={csrf}"),
    ("/verify", "csrf_token={csrf}&code=123456&pin=1234"),
    ("/verify/fallback", "csrf_token={csrf}&challenge=questions"),
    ("/enroll/oath/start", "csrf_token={csrf}"),
    ("/enroll/oath", "csrf_token={csrf}&code=123456"),
    (
        "/enroll/hardware",
        "csrf_token={csrf}&serial=HW-1&code=123456",
    ),
    (
        "/enroll/pin",
        "csrf_token={csrf}&pin=482913&pin_confirm=482913",
    ),
    (
        "/enroll/questions",
        "csrf_token={csrf}&question_1=q1&answer_1=Rex&question_2=q2&answer_2=blue",
    ),
    ("/account/oath/remove", "csrf_token={csrf}"),
    (
        "/account/bypass",
        "csrf_token={csrf}&code=123456&seconds=300",
    ),
    ("/language", "csrf_token={csrf}&language=fr&next=%2Faccount"),
];

const PORTAL_QUERIES: &[&str] = &[
    "/sign-in?next=%2Faccount&expired=1&signed_out=1",
    "/account?changed=pin",
];

fn form_tokens() -> Vec<Vec<u8>> {
    [
        "&",
        "=",
        "%",
        "%00",
        "%0a",
        "%ff",
        "%zz",
        "%2",
        "+",
        "%2B",
        "csrf_token=",
        "next=",
        "next=%2F%2Fevil.example",
        "next=https://evil.example/",
        "username=",
        "password=",
        "code=",
        "pin=",
        "language=",
        "\u{feff}",
        "\u{202e}",
        "\0",
        "\n",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .chain([vec![0xff], vec![0xc3], vec![0xed, 0xa0, 0x80]])
    .collect()
}

#[test]
fn mutated_portal_forms_never_fail_or_hang() {
    let app = App::new();
    let target = Target {
        name: "portal-forms",
        seeds: PORTAL_FORMS
            .iter()
            .enumerate()
            .map(|(i, (_, body))| {
                let mut seed = vec![u8::try_from(i).unwrap()];
                seed.extend_from_slice(body.replace("{csrf}", &app.csrf).as_bytes());
                seed
            })
            .collect(),
        tokens: form_tokens(),
        cases: 1000,
    };
    // The valid sign-in passes the CSRF check: the fuzzing reaches the handlers.
    let sign_in = PORTAL_FORMS[0].1.replace("{csrf}", &app.csrf);
    let status = app
        .send(
            Request::post("/sign-in")
                .header(header::COOKIE, &app.cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(sign_in))
                .unwrap(),
        )
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::SEE_OTHER, "the valid sign-in form");
    fuzz(target, |bytes| {
        let Some((&pick, body)) = bytes.split_first() else {
            return Ok(());
        };
        let (path, _) = PORTAL_FORMS[usize::from(pick) % PORTAL_FORMS.len()];
        let request = Request::post(path)
            .header(header::COOKIE, &app.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_vec()))
            .unwrap();
        app.send(request).map(drop)
    });
}

/// The bytes as a query string: what cannot stand in a URI is percent-encoded, the rest
/// (`%`, `&`, `=`, `+` included) is left for the decoder.
fn as_query(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"%&=+-._~!$'()*,;:@/?".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[test]
fn mutated_portal_queries_never_fail_or_hang() {
    let app = App::new();
    let target = Target {
        name: "portal-queries",
        seeds: PORTAL_QUERIES
            .iter()
            .map(|q| q.as_bytes().to_vec())
            .collect(),
        tokens: form_tokens(),
        cases: 1000,
    };
    fuzz(target, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let (path, query) = match text.split_once('?') {
            Some(("/account", query)) => ("/account", query.as_bytes()),
            Some((_, query)) => ("/sign-in", query.as_bytes()),
            None => ("/sign-in", bytes),
        };
        let request = Request::get(format!("{path}?{}", as_query(query)))
            .header(header::COOKIE, &app.cookie)
            .body(Body::empty())
            .unwrap();
        app.send(request).map(drop)
    });
}
