//! Sign-in against a real FreeRADIUS server (`primary_authentication = "radius"`): the portal
//! and the SDK check passwords with RADIUS, rejects count towards lockout, and a server that
//! cannot be heard (a wrong shared secret, unsigned answers, silence) makes sign-in
//! unavailable without counting anything against the user.

use crate::factors::{enrol_authenticator_app, post_code, sign_in_to_verify, sign_out};
use crate::freeradius::{self, FreeRadius, RadiusSetup};
use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const RADIUS_PASSWORD: &str = "radius wonderland";
const LOCAL_PASSWORD: &str = "local password only";
const WRONG_PASSWORD_MESSAGE: &str = "The username or password is incorrect.";

fn radius_for(env: &Env, name: &str, setup: &RadiusSetup) -> FreeRadius {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    freeradius::start(&dir, setup)
}

/// The environment of a server whose passwords `servers` check with `secret`.
fn radius_env(env: Env, servers: &[String], secret: &str, timeout: u64, retries: u32) -> Env {
    let list = servers
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ");
    env.set("TWOFOLD_SETTINGS__PRIMARY_AUTHENTICATION", "radius")
        .set("TWOFOLD_RADIUS__SERVERS", &format!("[{list}]"))
        .set("TWOFOLD_RADIUS__SECRET", secret)
        .set("TWOFOLD_RADIUS__TIMEOUT_SECONDS", &timeout.to_string())
        .set("TWOFOLD_RADIUS__RETRIES", &retries.to_string())
}

/// A caller of the SDK as the service account `app1`.
struct Sdk {
    base: String,
    client: reqwest::Client,
    secret: String,
}

impl Sdk {
    fn new(env: &Env) -> (Sdk, Server) {
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
        (sdk, server)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .basic_auth("app1", Some(&self.secret))
            .json(&body)
            .send()
            .await
            .expect("the SDK answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn start_authentication(&self, user: &str, password: &str) -> (u16, Value) {
        self.post(
            "/sdk/v1/authentications",
            json!({ "username": user, "password": password }),
        )
        .await
    }

    /// Gives `user` an active authenticator app.
    async fn enrol(&self, user: &str) {
        let (status, enrolment) = self
            .post(
                &format!("/sdk/v1/users/{user}/oath"),
                json!({ "kind": "software" }),
            )
            .await;
        assert_eq!(status, 201, "{enrolment}");
        let secret = uri_secret(enrolment["otpauth_uri"].as_str().unwrap());
        let (status, verified) = self
            .post(
                &format!("/sdk/v1/users/{user}/oath/verify"),
                json!({ "code": oathtool_totp(&secret, mid_step_now()) }),
            )
            .await;
        assert_eq!(status, 200, "{verified}");
    }
}

fn audit_details(env: &Env) -> String {
    env.cli_ok(&["audit", "tail", "-n", "50"], "")
}

#[tokio::test]
async fn a_radius_user_signs_in_to_the_portal_with_the_radius_password_and_enrols() {
    let env = Env::new(Backend::Sqlite).await;
    let radius = radius_for(
        &env,
        "radius",
        &RadiusSetup {
            users: &[("alice", RADIUS_PASSWORD)],
            ..Default::default()
        },
    );
    let env = radius_env(env, &[radius.address()], &radius.secret, 2, 1);
    // The local password is not the one checked.
    env.add_user("alice", LOCAL_PASSWORD);
    let server = env.start();
    let client = server.client();

    let local = sign_in(&client, &server, "alice", LOCAL_PASSWORD).await;
    assert_ne!(local.status(), 303, "the local password is not RADIUS's");
    assert!(local.text().await.unwrap().contains(WRONG_PASSWORD_MESSAGE));

    let first = sign_in(&client, &server, "alice", RADIUS_PASSWORD).await;
    assert_eq!(first.status(), 303);
    assert_eq!(location(&first), "/enroll");
    let secret = enrol_authenticator_app(&client, &server, env.dir.path()).await;
    let done = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(location(&done), "/account");
    sign_out(&client, &server).await;

    // Next time: the RADIUS password, then the second factor.
    let page = sign_in_to_verify(&client, &server, "alice", RADIUS_PASSWORD).await;
    let code = oathtool_totp(&secret, unix_now() + 30);
    let done = post_code(&client, &server, &page, &code).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account");
    drop(radius);
}

#[tokio::test]
async fn the_sdk_checks_passwords_with_radius_and_rejects_count_towards_lockout() {
    let env = Env::new(Backend::Postgres).await;
    let radius = radius_for(
        &env,
        "radius",
        &RadiusSetup {
            users: &[("bob", RADIUS_PASSWORD)],
            ..Default::default()
        },
    );
    let env = radius_env(env, &[radius.address()], &radius.secret, 2, 1)
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3");
    env.cli_ok(&["user", "add", "bob"], "");
    let (sdk, _server) = Sdk::new(&env);
    sdk.enrol("bob").await;

    let (status, started) = sdk.start_authentication("bob", RADIUS_PASSWORD).await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["state"], "pending");
    assert_eq!(started["next"], "otp");

    // Access-Reject: a wrong password, counted.
    for _ in 0..3 {
        let (status, problem) = sdk.start_authentication("bob", "not the password").await;
        assert!(
            (status == 401 && problem["code"] == "invalid_credentials")
                || (status == 423 && problem["code"] == "user_locked"),
            "{status} {problem}"
        );
    }
    let (status, problem) = sdk.start_authentication("bob", RADIUS_PASSWORD).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (423, Some("user_locked")),
        "three rejects lock the account: {problem}"
    );
    assert!(
        env.cli_ok(&["user", "show", "bob"], "")
            .contains("locked:    until")
    );
}

#[tokio::test]
async fn a_wrong_shared_secret_makes_sign_in_unavailable_and_counts_no_failure() {
    let env = Env::new(Backend::Sqlite).await;
    let radius = radius_for(
        &env,
        "radius",
        &RadiusSetup {
            users: &[("carol", RADIUS_PASSWORD)],
            secret: "the server's secret",
            ..Default::default()
        },
    );
    // FreeRADIUS drops requests signed with another secret: two silent attempts of 1 s.
    let env = radius_env(env, &[radius.address()], "not the server's secret", 1, 1)
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "2");
    env.cli_ok(&["user", "add", "carol"], "");
    let (sdk, server) = Sdk::new(&env);
    sdk.enrol("carol").await;

    for _ in 0..3 {
        let started = Instant::now();
        let (status, problem) = sdk.start_authentication("carol", RADIUS_PASSWORD).await;
        let took = started.elapsed();
        assert_eq!(status, 503, "{problem}");
        assert_eq!(problem["code"], "directory_unavailable", "{problem}");
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
            "about timeout_seconds x attempts (2 s): {took:?}"
        );
    }
    // Three failures in a row open the breaker: the next sign-ins are refused at once,
    // without waiting on (or hammering) a server that does not answer.
    let started = Instant::now();
    let (status, problem) = sdk.start_authentication("carol", RADIUS_PASSWORD).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("directory_unavailable"))
    );
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let client = server.client();
    let portal = sign_in(&client, &server, "carol", RADIUS_PASSWORD).await;
    assert_eq!(portal.status(), 503);
    let page = portal.text().await.unwrap();
    assert!(!page.contains(WRONG_PASSWORD_MESSAGE), "{page}");
    assert!(
        page.contains("Sign-in is temporarily unavailable"),
        "the portal says what is wrong: {page}"
    );
    // /readyz reports what the sign-ins found: RADIUS cannot be asked without a password.
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(
        ready,
        json!({"status": "degraded", "store": "ok", "directory": "unavailable"})
    );

    // Four refusals past a threshold of two, and the account is not locked.
    let shown = env.cli_ok(&["user", "show", "carol"], "");
    assert!(shown.contains("locked:    no"), "{shown}");
    let audit = audit_details(&env);
    assert!(audit.contains("directory_unavailable"), "{audit}");
}

#[tokio::test]
async fn answers_without_a_message_authenticator_are_not_believed() {
    let env = Env::new(Backend::Sqlite).await;
    // A server that answers rightly but does not sign its answers (FreeRADIUS 3.2.1's
    // default): its Access-Accept is indistinguishable from a forged one.
    let radius = radius_for(
        &env,
        "radius",
        &RadiusSetup {
            users: &[("dave", RADIUS_PASSWORD)],
            signs_answers: false,
            ..Default::default()
        },
    );
    let env = radius_env(env, &[radius.address()], &radius.secret, 1, 0);
    env.cli_ok(&["user", "add", "dave"], "");
    let (sdk, server) = Sdk::new(&env);
    sdk.enrol("dave").await;
    let (status, problem) = sdk.start_authentication("dave", RADIUS_PASSWORD).await;
    assert_eq!(status, 503, "{problem}");
    assert!(
        server.stderr().contains("no Message-Authenticator"),
        "the dropped answer is logged: {}",
        server.stderr()
    );
}

#[tokio::test]
async fn a_silent_first_server_hands_over_to_the_second() {
    let env = Env::new(Backend::Sqlite).await;
    let radius = radius_for(
        &env,
        "radius",
        &RadiusSetup {
            users: &[("erin", RADIUS_PASSWORD)],
            ..Default::default()
        },
    );
    // A socket that reads and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_address = silent.local_addr().unwrap().to_string();
    let env = radius_env(
        env,
        &[silent_address, radius.address()],
        &radius.secret,
        1,
        0,
    );
    env.cli_ok(&["user", "add", "erin"], "");
    let (sdk, _server) = Sdk::new(&env);
    sdk.enrol("erin").await;
    let started = Instant::now();
    let (status, body) = sdk.start_authentication("erin", RADIUS_PASSWORD).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "pending");
    assert!(started.elapsed() >= Duration::from_millis(900));
    drop(silent);
}

#[tokio::test]
async fn radius_sign_in_without_a_radius_section_stops_the_start() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PRIMARY_AUTHENTICATION", "radius");
    let stderr = env.start_fails();
    assert!(stderr.contains("[radius]"), "{stderr}");
    assert!(stderr.contains("Fix:"), "{stderr}");

    let env = radius_env(
        Env::new(Backend::Sqlite).await,
        &["127.0.0.1:1812".to_owned()],
        "a secret",
        0,
        1,
    );
    let stderr = env.start_fails();
    assert!(stderr.contains("radius.timeout_seconds = 0"), "{stderr}");
}
