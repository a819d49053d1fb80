//! The edges agree: the portal and the SDK give a refusal the same status, and take a
//! hardware token by serial under the same rule (a wrong serial is a guess, counted towards
//! the user's lockout).

use crate::support::*;
use serde_json::{Value, json};

/// `twofold service-account add NAME`: its secret.
fn service_account(env: &Env, name: &str) -> String {
    env.cli_ok(&["service-account", "add", name], "")
        .trim()
        .to_owned()
}

/// Asks the SDK to take the hardware token `serial` for `user` (no code): the status and the
/// problem's code.
async fn take_serial(server: &Server, secret: &str, user: &str, serial: &str) -> (u16, String) {
    let response = server
        .client()
        .post(server.url(&format!("/sdk/v1/users/{user}/oath")))
        .basic_auth("app1", Some(secret))
        .json(&json!({ "kind": "hardware", "serial": serial }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

fn hardware_tokens_allowed(env: Env) -> Env {
    env.set("TWOFOLD_SETTINGS__ALLOW_THIRD_PARTY_OATH_TOKEN", "true")
        .set(
            "TWOFOLD_SETTINGS__PROMPT_FOR_THIRD_PARTY_OATH_TOKEN",
            "true",
        )
}

#[tokio::test]
async fn an_unknown_serial_is_404_on_the_portal_and_in_the_sdk() {
    let env = hardware_tokens_allowed(Env::new(Backend::Sqlite).await);
    env.add_user("frank", "frank's password");
    let secret = service_account(&env, "app1");
    let server = env.start();

    let client = server.client();
    sign_in(&client, &server, "frank", "frank's password").await;
    let page = client
        .get(server.url("/enroll/hardware"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    let portal = client
        .post(server.url("/enroll/hardware"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("serial", "HW-9999"),
            ("code", "123456"),
        ])
        .send()
        .await
        .unwrap();
    let portal_status = portal.status().as_u16();
    assert!(
        portal
            .text()
            .await
            .unwrap()
            .contains("No available token has that serial number.")
    );

    let (sdk_status, code) = take_serial(&server, &secret, "frank", "HW-9999").await;
    assert_eq!(code, "unknown_serial");
    assert_eq!(
        (portal_status, sdk_status),
        (404, 404),
        "the portal and the SDK tell an unknown serial alike"
    );
}

#[tokio::test]
async fn an_application_guessing_serials_for_a_user_locks_the_user_out() {
    let env = hardware_tokens_allowed(Env::new(Backend::Sqlite).await)
        .password_only()
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3");
    env.add_user("gina", "gina's password");
    let secret = service_account(&env, "app1");
    let server = env.start();

    // Each wrong serial counts like a wrong code: the third locks the user out.
    let mut answers = Vec::new();
    for guess in 0..3 {
        answers.push(take_serial(&server, &secret, "gina", &format!("HW-{guess:04}")).await);
    }
    assert_eq!(
        answers,
        [
            (404, "unknown_serial".to_owned()),
            (404, "unknown_serial".to_owned()),
            (423, "user_locked".to_owned()),
        ]
    );
    // Locked, the guesses get nothing more: not even whether a serial exists.
    assert_eq!(
        take_serial(&server, &secret, "gina", "HW-0003").await,
        (423, "user_locked".to_owned())
    );
    // The lock is the user's, in the portal too: the right password does not get in.
    let client = server.client();
    let signed_in = sign_in(&client, &server, "gina", "gina's password").await;
    assert_eq!(signed_in.status(), 423);
    let audit = env.cli_ok(&["audit", "tail", "-n", "50"], "");
    assert!(audit.contains("unknown_serial"), "{audit}");
}

#[tokio::test]
async fn every_portal_form_refuses_a_forged_csrf_token_before_acting() {
    let env = hardware_tokens_allowed(Env::new(Backend::Sqlite).await).password_only();
    env.add_user("hana", "hana's password");
    let server = env.start();
    let client = server.client();
    let signed_in = sign_in(&client, &server, "hana", "hana's password").await;
    assert_eq!(location(&signed_in), "/account");

    // A cross-site form carries no token of this session: every form of the portal
    // refuses it, whatever else it says.
    for path in [
        "/sign-in",
        "/sign-out",
        "/language",
        "/verify",
        "/verify/fallback",
        "/enroll/oath/start",
        "/enroll/oath",
        "/enroll/hardware",
        "/enroll/pin",
        "/enroll/questions",
        "/account/oath/remove",
        "/account/bypass",
    ] {
        let forged = client
            .post(server.url(path))
            .form(&[
                ("csrf_token", "Zm9yZ2VkLXRva2VuLWZyb20tYW5vdGhlci1zaXRl"),
                ("language", "fr"),
                ("pin", "4826"),
                ("pin_confirm", "4826"),
                ("username", "hana"),
                ("password", "hana's password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403, "{path}");
    }
    // Still signed in, in English, with nothing changed.
    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200);
    let page = account.text().await.unwrap();
    assert!(page.contains("Signed in as hana."), "{page}");
    assert!(!page.contains("One-time bypass until"), "{page}");
}
