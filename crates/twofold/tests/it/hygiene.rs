//! Security review, issue 8: what the audit log shows an operator (escaped fields, the SDK
//! call and its user, the user agent of failed second factors), and slow key derivation off
//! the async workers.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

/// A newline that forges a second event, and escape sequences that recolour or erase the
/// operator's terminal.
const FORGED: &str =
    "mallory\n2026-01-01T00:00:00Z sign_in success actor=portal user=\"root\"\x1b[31m\x1b[2K\r";

fn add_sdk_account(env: &Env) -> String {
    env.cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned()
}

/// `POST`s JSON to the SDK as `app1`; returns the status and the body.
async fn sdk_post(
    server: &Server,
    secret: &str,
    path: &str,
    body: Value,
    user_agent: &str,
) -> (u16, Value) {
    let response = server
        .client()
        .post(server.url(path))
        .basic_auth("app1", Some(secret))
        .header("user-agent", user_agent)
        .json(&body)
        .send()
        .await
        .expect("the SDK answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

fn assert_nothing_reaches_the_terminal(tail: &str) {
    assert!(
        !tail.contains('\x1b') && !tail.contains('\r'),
        "an escape sequence reached the terminal: {tail:?}"
    );
    assert!(
        !tail
            .lines()
            .any(|line| line.starts_with("2026-01-01T00:00:00Z sign_in success")),
        "a forged event shows as a line of its own:\n{tail}"
    );
}

#[tokio::test]
async fn audit_tail_escapes_newlines_and_escape_sequences_in_every_field() {
    // The command line's actor is `cli:` and the login name, which the caller controls.
    let env = Env::new(Backend::Sqlite).await.set("USER", FORGED);
    env.cli_ok(&["settings", "set", "lockout_threshold", "4"], "");
    // A username as typed, through the SDK.
    let secret = add_sdk_account(&env);
    let server = env.start();
    let (status, _) = sdk_post(
        &server,
        &secret,
        "/sdk/v1/authentications",
        json!({ "username": FORGED, "password": "wrong password" }),
        "agent/1",
    )
    .await;
    assert_eq!(status, 401);

    let tail = env.cli_ok(&["audit", "tail", "-n", "50"], "");
    assert_nothing_reaches_the_terminal(&tail);
    assert!(
        tail.contains(
            "setting_changed success actor=\"cli:mallory\\n2026-01-01T00:00:00Z sign_in success actor=portal user=\\\"root\\\"\\u{1b}[31m\\u{1b}[2K\\r\""
        ),
        "the forged actor shows escaped:\n{tail}"
    );
    assert!(
        tail.contains("user=\"mallory\\n2026-01-01T00:00:00Z"),
        "the forged username shows escaped:\n{tail}"
    );
    // The JSON output stays exact (and escaped by JSON itself).
    let json = env.cli_ok(&["audit", "tail", "-n", "50", "--json"], "");
    assert!(!json.contains('\x1b'), "{json:?}");
    assert!(
        json.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| e["actor"] == json!(format!("cli:{FORGED}"))),
        "{json}"
    );
}

#[tokio::test]
async fn sdk_calls_are_audited_with_their_operation_and_user() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("alice", PASSWORD);
    let secret = add_sdk_account(&env);
    let server = env.start();
    let (status, _) = sdk_post(
        &server,
        &secret,
        "/sdk/v1/authentications",
        json!({ "username": "alice", "password": "wrong password" }),
        "agent/1",
    )
    .await;
    assert_eq!(status, 401);
    let response = server
        .client()
        .put(server.url("/sdk/v1/users/alice/pin"))
        .basic_auth("app1", Some(&secret))
        .json(&json!({ "pin": "4829" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 204);

    let tail = env.cli_ok(&["audit", "tail", "-n", "50"], "");
    let has = |parts: &[&str]| tail.lines().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        has(&[
            "sdk_call failure actor=sdk:app1",
            "user=\"alice\"",
            "detail=\"start_authentication: POST /sdk/v1/authentications 401\"",
        ]),
        "the call names its operation and the user from its body:\n{tail}"
    );
    assert!(
        has(&[
            "sdk_call",
            "actor=sdk:app1",
            "user=\"alice\"",
            &format!("detail=\"set_pin: PUT /sdk/v1/users/alice/pin {status}\""),
        ]),
        "the call names its operation and the user from its path:\n{tail}"
    );
}

/// Enrols an authenticator app for `user` through the SDK; returns its base32 secret.
async fn enrol_software(server: &Server, secret: &str, user: &str) -> String {
    let (status, enrolment) = sdk_post(
        server,
        secret,
        &format!("/sdk/v1/users/{user}/oath"),
        json!({ "kind": "software" }),
        "agent/1",
    )
    .await;
    assert_eq!(status, 201, "{enrolment}");
    let seed = uri_secret(enrolment["otpauth_uri"].as_str().unwrap());
    let (status, verified) = sdk_post(
        server,
        secret,
        &format!("/sdk/v1/users/{user}/oath/verify"),
        json!({ "code": oathtool_totp(&seed, mid_step_now()) }),
        "agent/1",
    )
    .await;
    assert_eq!(status, 200, "{verified}");
    seed
}

#[tokio::test]
async fn a_failed_second_factor_is_audited_with_the_user_agent() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("alice", PASSWORD);
    let secret = add_sdk_account(&env);
    let server = env.start();
    let seed = enrol_software(&server, &secret, "alice").await;
    let (status, started) = sdk_post(
        &server,
        &secret,
        "/sdk/v1/authentications",
        json!({ "username": "alice", "password": PASSWORD }),
        "vpn-gateway/2.1",
    )
    .await;
    assert_eq!(status, 201, "{started}");
    // A code that is certainly wrong: the right one, changed in its last digit.
    let right = oathtool_totp(&seed, unix_now());
    let wrong = format!("{}{}", &right[..5], (right.as_bytes()[5] - b'0' + 5) % 10);
    let id = started["id"].as_str().unwrap();
    let (status, answer) = sdk_post(
        &server,
        &secret,
        &format!("/sdk/v1/authentications/{id}/answer"),
        json!({ "otp": wrong }),
        "vpn-gateway/2.1",
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    let tail = env.cli_ok(&["audit", "tail", "-n", "50"], "");
    assert!(
        tail.lines().any(|l| l.contains("sign_in failure")
            && l.contains("user=\"alice\"")
            && l.contains("invalid_code")
            && l.contains("agent=\"vpn-gateway/2.1\"")),
        "the failed second factor keeps the user agent:\n{tail}"
    );
}

/// The PBKDF2 fixture, made to ask for half a million rounds (seconds of CPU in a debug
/// build; Twofold accepts up to 10 million).
fn slow_pskc_file() -> String {
    let fixture = include_str!("../../../engine/tests/fixtures/pskc/pbkdf2.pskcxml");
    assert!(fixture.contains("<IterationCount>12000</IterationCount>"));
    fixture.replace(
        "<IterationCount>12000</IterationCount>",
        "<IterationCount>500000</IterationCount>",
    )
}

#[tokio::test]
async fn health_checks_answer_while_a_slow_pskc_import_runs() {
    // One async worker: key derivation on it would stall every other request.
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TOKIO_WORKER_THREADS", "1");
    let secret = add_sdk_account(&env);
    let server = env.start();
    let client = server.client();
    let import = tokio::spawn({
        let request = client
            .post(server.url("/sdk/v1/tokens/import"))
            .basic_auth("app1", Some(&secret))
            .json(&json!({ "content": slow_pskc_file(), "password": "not the password" }));
        async move { request.send().await.map(|r| r.status().as_u16()) }
    });
    // Let the import reach its key derivation (half a million rounds take seconds).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = tokio::time::timeout(
        Duration::from_secs(60),
        client.get(server.url("/healthz")).send(),
    )
    .await;
    let import_running = !import.is_finished();
    let status = health
        .expect("/healthz answers within a minute")
        .expect("/healthz answers")
        .status();
    assert_eq!(status, 200);
    assert!(
        import_running,
        "/healthz answered only after the import had finished: the key derivation held the async worker"
    );
    for _ in 0..3 {
        let status = tokio::time::timeout(
            Duration::from_secs(60),
            client.get(server.url("/healthz")).send(),
        )
        .await
        .expect("/healthz answers within a minute")
        .expect("/healthz answers")
        .status();
        assert_eq!(status, 200);
    }
    // The import itself ends with the problem of the wrong password.
    let status = tokio::time::timeout(Duration::from_secs(300), import)
        .await
        .expect("the import ends")
        .unwrap()
        .expect("the import answers");
    assert_eq!(status, 422);
}
