//! One authentication for the portal and the SDK: who may read it, how many answers it takes,
//! and the administration that goes with it.

use crate::factors::{post_code, sign_in_to_verify};
use crate::support::*;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

struct Account {
    name: &'static str,
    secret: String,
}

impl Account {
    fn add(env: &Env, name: &'static str) -> Account {
        let secret = env
            .cli_ok(&["service-account", "add", name], "")
            .trim()
            .to_owned();
        Account { name, secret }
    }

    async fn send(&self, server: &Server, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = server.client();
        let request = match body {
            Some(body) => client.post(server.url(path)).json(&body),
            None => client.get(server.url(path)),
        };
        let response = request
            .basic_auth(self.name, Some(&self.secret))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Gives `user` an active authenticator app through `account`; returns its secret.
async fn enrol(server: &Server, account: &Account, user: &str) -> String {
    let (status, created) = account
        .send(
            server,
            "/sdk/v1/users",
            Some(json!({ "username": user, "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, enrolment) = account
        .send(
            server,
            &format!("/sdk/v1/users/{user}/oath"),
            Some(json!({ "kind": "software" })),
        )
        .await;
    assert_eq!(status, 201, "{enrolment}");
    let secret = uri_secret(enrolment["otpauth_uri"].as_str().unwrap());
    let (status, verified) = account
        .send(
            server,
            &format!("/sdk/v1/users/{user}/oath/verify"),
            Some(json!({ "code": oathtool_totp(&secret, mid_step_now()) })),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    secret
}

#[tokio::test]
async fn an_authentication_is_read_and_answered_only_by_the_account_that_started_it() {
    let env = Env::new(Backend::Sqlite).await;
    let app1 = Account::add(&env, "app1");
    let app2 = Account::add(&env, "app2");
    let server = env.start();
    let secret = enrol(&server, &app1, "alice").await;
    let (status, started) = app1
        .send(
            &server,
            "/sdk/v1/authentications",
            Some(json!({ "username": "alice" })),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let path = format!(
        "/sdk/v1/authentications/{}",
        started["id"].as_str().unwrap()
    );
    let code = oathtool_totp(&secret, unix_now() + 30);

    // Another application, with a valid account and the id, gets nothing: not the state, not
    // an answer checked. Its answer does not spend the code.
    let (status, seen) = app2.send(&server, &path, None).await;
    assert_eq!(status, 404, "{seen}");
    assert_eq!(seen["code"], "authentication_not_found");
    assert!(seen.get("state").is_none(), "{seen}");
    let (status, answered) = app2
        .send(
            &server,
            &format!("{path}/answer"),
            Some(json!({ "otp": code })),
        )
        .await;
    assert_eq!(status, 404, "{answered}");

    // The account that started it reads it, and the code still approves it.
    let (status, polled) = app1.send(&server, &path, None).await;
    assert_eq!((status, polled["state"].as_str()), (200, Some("pending")));
    let (status, approved) = app1
        .send(
            &server,
            &format!("{path}/answer"),
            Some(json!({ "otp": code })),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "approved");
    let (status, _) = app2.send(&server, &path, None).await;
    assert_eq!(status, 404, "approved or not, it is not app2's");
}

#[tokio::test]
async fn five_wrong_codes_end_a_portal_sign_in() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "50")
        .set("TWOFOLD_LIMITS__SECOND_FACTOR_PER_USER_PER_MINUTE", "1000");
    let app1 = Account::add(&env, "app1");
    let server = env.start();
    let secret = enrol(&server, &app1, "bruno").await;
    let browser = server.client();
    let page = sign_in_to_verify(&browser, &server, "bruno", PASSWORD).await;
    let right = oathtool_totp(&secret, unix_now() + 30);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for attempt in 1..=4 {
        let response = post_code(&browser, &server, &page, wrong).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    // The fifth ends the sign-in: it says so, and the right code is worth nothing in it.
    let fifth = post_code(&browser, &server, &page, wrong).await;
    assert_eq!(fifth.status(), 401);
    assert!(
        fifth.text().await.unwrap().contains("Sign in again"),
        "the page says what to do"
    );
    let late = post_code(&browser, &server, &page, &right).await;
    assert_ne!(location(&late), "/account");
    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert!(location(&account).starts_with("/sign-in"), "not signed in");

    // Signing in again starts a new authentication, which the right code approves.
    let page = sign_in_to_verify(&browser, &server, "bruno", PASSWORD).await;
    let ok = post_code(&browser, &server, &page, &right).await;
    assert_eq!(location(&ok), "/account");
}

#[tokio::test]
async fn deleting_a_service_account_is_audited() {
    let env = Env::new(Backend::Sqlite).await;
    Account::add(&env, "app9");
    env.cli_ok(&["service-account", "delete", "app9"], "");
    let audit = env.cli_ok(&["audit", "tail", "-n", "50", "--json"], "");
    let deleted: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "service_account_deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{audit}");
    assert_eq!(deleted[0]["subject"], "app9");
    assert!(deleted[0]["actor"].as_str().unwrap().starts_with("cli"));
    let out = env.cli(&["service-account", "delete", "app9"], "");
    assert!(!out.status.success(), "a second delete finds none");
}
