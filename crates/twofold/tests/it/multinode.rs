//! Two `twofold serve` nodes on one PostgreSQL database, as behind a load balancer without
//! sticky sessions: whatever one node starts, the other finishes. Each node has its own data
//! directory; they share the database, the key that seals OATH seeds and the certificate.

use crate::factors::{enrol_authenticator_app, post_code, sign_in_to_verify, sign_out};
use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

/// The seal key every node is given (`secrets.key`), so a seed sealed on one node opens on
/// the other.
const SEAL_KEY: &str = "5f0c2a9e7d41b38c6e15a02f94d7b3c8e1a6f05d29c4b7e830f1d6a2c5b98e47";

/// How long the documentation says a settings change may take to reach every node
/// (configuration.md, postgresql.md).
const SETTINGS_REREAD: Duration = Duration::from_secs(2);

/// One deployment of two nodes, A and B, on a fresh PostgreSQL database.
struct TwoNodes {
    env: Env,
    a: Server,
    b: Server,
}

async fn two_nodes(configure: impl FnOnce(Env) -> Env) -> TwoNodes {
    let env = configure(
        Env::new(Backend::Postgres)
            .await
            .set("TWOFOLD_SECRETS__KEY", SEAL_KEY),
    );
    env.add_user("alice", PASSWORD);
    let a = env.start();
    let b = env.start_another_node("node-b");
    assert_ne!(a.base, b.base, "two processes, two addresses");
    TwoNodes { env, a, b }
}

/// The browser's view of the account page on a node: its status.
async fn account_status(client: &reqwest::Client, node: &Server) -> u16 {
    client
        .get(node.url("/account"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Enrols alice's authenticator app in the portal of `node` and signs her out; returns
/// the base32 secret.
async fn enrol_alice(nodes: &TwoNodes, node: &Server) -> String {
    let client = node.client();
    sign_in(&client, node, "alice", PASSWORD).await;
    let secret = enrol_authenticator_app(&client, node, nodes.env.dir.path()).await;
    assert_eq!(
        location(&client.get(node.url("/enroll")).send().await.unwrap()),
        "/account"
    );
    sign_out(&client, node).await;
    secret
}

#[tokio::test]
async fn a_sign_in_whose_password_was_checked_on_one_node_takes_its_code_on_the_other() {
    let nodes = two_nodes(|env| env).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let secret = enrol_alice(&nodes, a).await;

    // The password on A; the browser, with its cookie, then reaches B.
    let browser = a.client();
    sign_in_to_verify(&browser, a, "alice", PASSWORD).await;
    assert_eq!(
        location(&browser.get(b.url("/account")).send().await.unwrap()),
        "/verify",
        "B knows the sign-in is waiting for its code"
    );
    let page_on_b = browser
        .get(b.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page_on_b.contains("<h1>Verify it&#39;s you</h1>"),
        "{page_on_b}"
    );

    // The code on B, with B's form (and so B's CSRF token).
    let code = oathtool_totp(&secret, unix_now() + 30);
    let accepted = post_code(&browser, b, &page_on_b, &code).await;
    assert_eq!(
        accepted.status(),
        303,
        "{}",
        accepted.text().await.unwrap_or_default()
    );
    assert_eq!(location(&accepted), "/account");

    // Signed in on both.
    assert_eq!(account_status(&browser, b).await, 200);
    assert_eq!(account_status(&browser, a).await, 200);
    let account_on_a = browser
        .get(a.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account_on_a.contains("alice"), "{account_on_a}");

    // The code, spent on B, is refused on A.
    let other = a.client();
    let page_on_a = sign_in_to_verify(&other, a, "alice", PASSWORD).await;
    let replay = post_code(&other, a, &page_on_a, &code).await;
    assert_eq!(replay.status(), 409);
    assert!(
        replay
            .text()
            .await
            .unwrap()
            .contains("That code has already been used.")
    );
    assert_eq!(account_status(&other, a).await, 303);
}

/// A caller of the SDK on one node, with one service account's credentials.
struct Sdk<'a> {
    node: &'a Server,
    client: reqwest::Client,
    secret: &'a str,
}

impl<'a> Sdk<'a> {
    fn on(node: &'a Server, secret: &'a str) -> Self {
        Sdk {
            node,
            client: node.client(),
            secret,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, self.node.url(path))
            .basic_auth("app1", Some(self.secret));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the SDK answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
}

#[tokio::test]
async fn an_sdk_authentication_started_on_one_node_is_polled_and_answered_on_the_other() {
    let nodes = two_nodes(|env| env).await;
    let secret = nodes
        .env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    let (on_a, on_b) = (Sdk::on(&nodes.a, &secret), Sdk::on(&nodes.b, &secret));

    // The software token: enrolled through A, activated through B.
    let (status, enrolment) = on_a
        .post("/sdk/v1/users/alice/oath", json!({ "kind": "software" }))
        .await;
    assert_eq!(status, 201, "{enrolment}");
    let seed = uri_secret(enrolment["otpauth_uri"].as_str().unwrap());
    let (status, verified) = on_b
        .post(
            "/sdk/v1/users/alice/oath/verify",
            json!({ "code": oathtool_totp(&seed, mid_step_now()) }),
        )
        .await;
    assert_eq!(status, 200, "{verified}");

    // Started on A, polled and answered on B.
    let (status, started) = on_a
        .post("/sdk/v1/authentications", json!({ "username": "alice" }))
        .await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["state"], "pending", "{started}");
    let path = format!(
        "/sdk/v1/authentications/{}",
        started["id"].as_str().unwrap()
    );
    let (status, polled) = on_b.get(&path).await;
    assert_eq!(status, 200, "{polled}");
    assert_eq!(polled["state"], "pending", "{polled}");
    assert_eq!(polled["next"], "otp", "{polled}");
    let code = oathtool_totp(&seed, unix_now() + 30);
    let (status, answered) = on_b
        .post(&format!("{path}/answer"), json!({ "otp": code }))
        .await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["state"], "approved", "{answered}");
    assert_eq!(answered["via"], "oath", "{answered}");

    // The code B accepted is a replay on A.
    let (status, again) = on_a
        .post("/sdk/v1/authentications", json!({ "username": "alice" }))
        .await;
    assert_eq!(status, 201, "{again}");
    let again_path = format!("/sdk/v1/authentications/{}", again["id"].as_str().unwrap());
    let (status, replay) = on_a
        .post(&format!("{again_path}/answer"), json!({ "otp": code }))
        .await;
    assert_eq!(status, 409, "{replay}");
    assert_eq!(replay["code"], "code_already_used", "{replay}");
    assert_eq!(on_b.get(&again_path).await.1["state"], "pending");
}

#[tokio::test]
async fn a_setting_changed_on_one_node_is_in_force_on_the_other_within_the_documented_time() {
    let nodes = two_nodes(|env| env.password_only()).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let browser = b.client();
    // B has read the settings (signing in is on) before the change.
    assert_eq!(
        location(&sign_in(&browser, b, "alice", PASSWORD).await),
        "/account"
    );
    sign_out(&browser, b).await;

    // The operator turns signing in off on A's host.
    nodes
        .env
        .cli_ok(&["settings", "set", "allow_user_login", "false"], "");
    let changed = Instant::now();
    // B's sign-in page says so within the documented time (plus a margin for the request).
    let bound = SETTINGS_REREAD + Duration::from_millis(1500);
    loop {
        let page = browser
            .get(b.url("/sign-in"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("Signing in to the portal is turned off") {
            break;
        }
        assert!(
            changed.elapsed() < bound,
            "B still offers signing in {:?} after the change",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sign_in(&browser, b, "alice", PASSWORD).await.status(), 403);
    assert_eq!(
        sign_in(&a.client(), a, "alice", PASSWORD).await.status(),
        403
    );
}

#[tokio::test]
async fn a_lockout_earned_on_one_node_holds_on_the_other() {
    let nodes = two_nodes(|env| env.set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3")).await;
    let (a, b) = (&nodes.a, &nodes.b);
    let secret = enrol_alice(&nodes, a).await;

    // Alice waits at B's code page while someone with her password guesses on A.
    let alice = b.client();
    let page_on_b = sign_in_to_verify(&alice, b, "alice", PASSWORD).await;
    let guesser = a.client();
    let right = oathtool_totp(&secret, unix_now() + 30);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let mut refused = Vec::new();
    for _ in 0..3 {
        let page = sign_in_to_verify(&guesser, a, "alice", PASSWORD).await;
        let response = post_code(&guesser, a, &page, wrong).await;
        refused.push(response.status().as_u16());
    }
    assert_eq!(refused, [401, 401, 423], "the third wrong code locks");

    // On B, the right code is refused: the account is locked.
    let locked = post_code(&alice, b, &page_on_b, &right).await;
    assert_eq!(locked.status(), 423);
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("This account is locked")
    );
    assert_eq!(account_status(&alice, b).await, 303);
    assert_eq!(
        sign_in(&b.client(), b, "alice", PASSWORD).await.status(),
        423,
        "the password step on B is locked too"
    );
}
