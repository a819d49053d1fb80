//! Attack tests from the security review: each sends the request an attacker would send and
//! shows that it got nothing.

use crate::factors::{enrol_authenticator_app, post_code, sign_in_to_verify, sign_out};
use crate::support::*;

/// Posts the sign-in form with the given `X-Forwarded-For` lines, in order.
async fn sign_in_forwarded(
    client: &reqwest::Client,
    server: &Server,
    username: &str,
    password: &str,
    forwarded_for: &[&str],
) -> reqwest::Response {
    let token = sign_in_token(client, server).await;
    let mut request = client.post(server.url("/sign-in"));
    for line in forwarded_for {
        request = request.header("x-forwarded-for", *line);
    }
    request
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_forged_forwarded_for_line_before_the_proxys_own_does_not_skip_the_second_factor() {
    // A proxy on 127.0.0.1 that adds its own X-Forwarded-For line (HAProxy's `option
    // forwardfor`) in front of a server that trusts 10.0.0.0/8.
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_TLS__ENABLED", "false")
        .set("TWOFOLD_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]")
        .set("TWOFOLD_SETTINGS__TRUSTED_IP_RANGES", "[\"10.0.0.0/8\"]");
    env.add_user("mallory", "mallory's password");
    let server = env.start();
    let client = server.client();
    let first = sign_in_forwarded(&client, &server, "mallory", "mallory's password", &[]).await;
    assert_eq!(location(&first), "/enroll");
    enrol_authenticator_app(&client, &server, env.dir.path()).await;
    client.get(server.url("/enroll")).send().await.unwrap();
    sign_out(&client, &server).await;

    // The client's own line first, then the proxy's line with the client's real address.
    let forged = sign_in_forwarded(
        &client,
        &server,
        "mallory",
        "mallory's password",
        &["10.1.2.3", "203.0.113.9"],
    )
    .await;
    assert_eq!(
        location(&forged),
        "/verify",
        "the forged line must not make the sign-in trusted"
    );
    let audit = env.cli_ok(&["audit", "tail", "-n", "1"], "");
    assert!(audit.contains("ip=\"203.0.113.9\""), "{audit}");
    assert!(!audit.contains("trusted_ip"), "{audit}");

    // A port, garbage or a non-ASCII line ends the walk: never trusted through the header.
    for lines in [
        &["10.1.2.3", "203.0.113.9:4711"][..],
        &["10.1.2.3", "unknown"][..],
        &["10.1.2.3, bogus"][..],
    ] {
        let fresh = server.client();
        let response =
            sign_in_forwarded(&fresh, &server, "mallory", "mallory's password", lines).await;
        assert_eq!(location(&response), "/verify", "{lines:?}");
    }

    // The proxy's one line naming a client inside the trusted range is believed: the
    // setup above could have let the forged sign-in through.
    let fresh = server.client();
    let trusted = sign_in_forwarded(
        &fresh,
        &server,
        "mallory",
        "mallory's password",
        &["10.1.2.3"],
    )
    .await;
    assert_eq!(location(&trusted), "/account");
}

/// `twofold service-account add NAME --role ROLE`: the secret.
fn account(env: &Env, name: &str, role: &str) -> String {
    env.cli_ok(&["service-account", "add", name, "--role", role], "")
        .trim()
        .to_owned()
}

async fn rpc(
    server: &Server,
    name: &str,
    secret: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = server
        .client()
        .post(server.url("/sdk/v1/portal/rpc"))
        .basic_auth(name, Some(secret))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn an_applications_sdk_account_gets_403_on_the_portal_rpc_and_a_portal_account_on_the_sdk() {
    let env = Env::new(Backend::Sqlite).await;
    let app = account(&env, "app1", "sdk");
    let portal = account(&env, "frontend", "portal");
    env.add_user("victim", "victim's password");
    let server = env.start();

    // What the review's attacker sent with an application's account: refused whole.
    let (status, body) = rpc(
        &server,
        "app1",
        &app,
        serde_json::json!({"call": "begin_software_oath", "session": "anything"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "forbidden");
    let (status, _) = rpc(
        &server,
        "app1",
        &app,
        serde_json::json!({"call": "settings"}),
    )
    .await;
    assert_eq!(status, 403);

    // The portal's account reaches the RPC and nothing else.
    let (status, _) = rpc(
        &server,
        "frontend",
        &portal,
        serde_json::json!({"call": "settings"}),
    )
    .await;
    assert_eq!(status, 200);
    let users = server
        .client()
        .get(server.url("/sdk/v1/users/victim"))
        .basic_auth("frontend", Some(&portal))
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 403);
    let app_users = server
        .client()
        .get(server.url("/sdk/v1/users/victim"))
        .basic_auth("app1", Some(&app))
        .send()
        .await
        .unwrap();
    assert_eq!(app_users.status(), 200, "the application keeps the SDK");
    let audit = env.cli_ok(&["audit", "tail", "-n", "20"], "");
    assert!(
        audit.contains("sdk_call failure actor=sdk:app1") && audit.contains("portal/rpc 403"),
        "{audit}"
    );
    assert!(
        audit.contains("sdk_call failure actor=portal:frontend"),
        "{audit}"
    );
}

#[tokio::test]
async fn the_portal_rpc_cannot_write_a_session_or_act_for_a_user_without_one() {
    let env = Env::new(Backend::Sqlite).await;
    let portal = account(&env, "frontend", "portal");
    env.add_user("victim", "victim's password");
    // The shape of the old calls: the user's id, as an attacker may learn it.
    let user_id = "0123456789abcdef";
    let server = env.start();
    let now = unix_now();

    // The old calls that wrote a session record of the caller's choosing are gone.
    let (status, body) = rpc(
        &server,
        "frontend",
        &portal,
        serde_json::json!({"call": "create_session", "record": {
            "id_hash": "0".repeat(64), "user_id": user_id, "created_at": now,
            "last_seen_at": now, "expires_at": now + 3600,
            "data": "{\"username\":\"victim\",\"stage\":\"signed_in\",\"via\":\"oath\",\"max_until\":9999999999}"
        }}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Acting by user id is not a thing any more: every call names a session.
    let (status, body) = rpc(
        &server,
        "frontend",
        &portal,
        serde_json::json!({"call": "begin_software_oath", "user_id": user_id}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A made-up session gets nothing: no seed, no profile.
    for call in [
        "begin_software_oath",
        "profile",
        "factors",
        "pending_software_oath",
    ] {
        let (status, body) = rpc(
            &server,
            "frontend",
            &portal,
            serde_json::json!({"call": call, "session": "made-up-session-token"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["refused"], "SessionEnded", "{call}: {body}");
        assert!(!body.to_string().contains("otpauth"), "{body}");
    }
    let tokens = env.cli_ok(&["token", "list"], "");
    assert!(
        !tokens.contains("pending"),
        "no enrolment started: {tokens}"
    );

    // The actor is never taken from the body: a sign-in that claims to be an
    // administrator's account is audited as the portal's.
    let (status, body) = rpc(
        &server,
        "frontend",
        &portal,
        serde_json::json!({"call": "sign_in", "username": "victim", "password": "wrong password",
            "next": null, "replacing": null,
            "client": {"ip": "203.0.113.5", "user_agent": "ua", "actor": "sdk:admin"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let audit = env.cli_ok(&["audit", "tail", "-n", "5"], "");
    assert!(!audit.contains("sdk:admin"), "{audit}");
    assert!(
        audit.contains("sign_in failure actor=portal user=\"victim\""),
        "{audit}"
    );
}

/// The CSRF token of the form posting to `action` on `page`.
fn form_token(page: &str, action: &str) -> String {
    let at = page
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form for {action}: {page}"));
    input_value(&page[at..], "csrf_token").unwrap()
}

async fn get_text(client: &reqwest::Client, server: &Server, path: &str) -> String {
    client
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_session_signed_in_by_a_bypass_must_prove_a_code_before_removing_the_token_or_starting_a_bypass()
 {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_ONE_TIME_BYPASS", "true");
    env.add_user("vera", "vera's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "vera", "vera's password").await;
    let secret = enrol_authenticator_app(&client, &server, env.dir.path()).await;
    client.get(server.url("/enroll")).send().await.unwrap();
    // A bypass started while the code was fresh (allowed), then used by the next sign-in.
    let account = get_text(&client, &server, "/account").await;
    let started = client
        .post(server.url("/account/bypass"))
        .form(&[(
            "csrf_token",
            form_token(&account, "/account/bypass").as_str(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    sign_out(&client, &server).await;
    let bypassed = sign_in(&client, &server, "vera", "vera's password").await;
    assert_eq!(location(&bypassed), "/account", "signed in by the bypass");

    // The attacker who holds the password and the bypass presses "Remove".
    let account = get_text(&client, &server, "/account").await;
    let remove = client
        .post(server.url("/account/oath/remove"))
        .form(&[(
            "csrf_token",
            form_token(&account, "/account/oath/remove").as_str(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(remove.status(), 303);
    assert_eq!(location(&remove), "/verify", "asked for a code first");
    // ... and "Start a one-time bypass", to chain them.
    let account = get_text(&client, &server, "/account").await;
    let again = client
        .post(server.url("/account/bypass"))
        .form(&[(
            "csrf_token",
            form_token(&account, "/account/bypass").as_str(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&again), "/verify");
    // Replacing the token is refused the same way.
    let replace = client.get(server.url("/enroll/oath")).send().await.unwrap();
    assert_eq!(location(&replace), "/verify");
    let audit = env.cli_ok(&["audit", "tail", "-n", "100"], "");
    assert!(!audit.contains("token_removed"), "{audit}");
    assert_eq!(
        audit.matches("bypass_started success").count(),
        1,
        "no second bypass: {audit}"
    );
    assert!(
        env.cli_ok(&["token", "list"], "").contains("active"),
        "the token is still there"
    );

    // The page asks for the code; with it, the change goes through.
    let verify = get_text(&client, &server, "/verify").await;
    assert!(verify.contains("Confirm it&#39;s you"), "{verify}");
    let code = oathtool_totp(&secret, unix_now() + 30);
    let confirmed = client
        .post(server.url("/verify"))
        .form(&[
            ("csrf_token", form_token(&verify, "/verify").as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&confirmed), "/account?changed=confirmed");
    let account = get_text(&client, &server, "/account").await;
    let removed = client
        .post(server.url("/account/oath/remove"))
        .form(&[(
            "csrf_token",
            form_token(&account, "/account/oath/remove").as_str(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&removed), "/account?changed=token-removed");
}

#[tokio::test]
async fn a_session_signed_in_from_a_trusted_address_is_asked_for_a_code_before_changing_the_pin() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PIN_REQUIRED", "true");
    env.add_user("walt", "walt's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "walt", "walt's password").await;
    enrol_authenticator_app(&client, &server, env.dir.path()).await;
    drop(server);

    // The same user, now from a trusted address: signed in with the password alone.
    env.cli_ok(
        &["settings", "set", "trusted_ip_ranges", "[\"127.0.0.0/8\"]"],
        "",
    );
    let trusted = env;
    let server = trusted.start();
    let client = server.client();
    let signed = sign_in(&client, &server, "walt", "walt's password").await;
    assert_eq!(location(&signed), "/account");
    let page = get_text(&client, &server, "/enroll/pin").await;
    let response = client
        .post(server.url("/enroll/pin"))
        .form(&[
            ("csrf_token", form_token(&page, "/enroll/pin").as_str()),
            ("pin", "418093"),
            ("pin_confirm", "418093"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/verify", "asked for a code first");
    let audit = trusted.cli_ok(&["audit", "tail", "-n", "50"], "");
    assert!(!audit.contains("pin_changed"), "{audit}");
}

#[tokio::test]
async fn a_stale_enrolment_session_cannot_replace_a_token_enrolled_meanwhile() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("xena", "xena's password");
    let server = env.start();
    // Two sessions begun with the password alone: the attacker's and the user's.
    let attacker = server.client();
    let first = sign_in(&attacker, &server, "xena", "xena's password").await;
    assert_eq!(location(&first), "/enroll");
    let stale_page = get_text(&attacker, &server, "/enroll/oath").await;
    let stale_token = form_token(&stale_page, "/enroll/oath/start");
    let user = server.client();
    sign_in(&user, &server, "xena", "xena's password").await;
    let secret = enrol_authenticator_app(&user, &server, env.dir.path()).await;

    // The attacker's wizard session tries to start its own enrolment.
    let started = attacker
        .post(server.url("/enroll/oath/start"))
        .form(&[("csrf_token", stale_token.as_str())])
        .send()
        .await
        .unwrap();
    // The change ended every other session of the user: the form is now bound to a session
    // that does not exist.
    assert_eq!(started.status(), 403);
    let page = attacker
        .get(server.url("/enroll/oath"))
        .send()
        .await
        .unwrap();
    assert!(
        location(&page).starts_with("/sign-in"),
        "{}",
        location(&page)
    );
    let tokens = env.cli_ok(&["token", "list"], "");
    assert!(!tokens.contains("pending"), "{tokens}");

    // The user's token is the one that signs in.
    user.get(server.url("/enroll")).send().await.unwrap();
    sign_out(&user, &server).await;
    let page = sign_in_to_verify(&user, &server, "xena", "xena's password").await;
    let code = oathtool_totp(&secret, unix_now() + 30);
    let ok = post_code(&user, &server, &page, &code).await;
    assert_eq!(ok.status(), 303);
}

#[tokio::test]
async fn after_sign_in_a_token_made_for_the_pre_session_cookie_is_refused() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("yann", "yann's password");
    let server = env.start();
    let client = server.client();
    // A token bound to the pre-session cookie (what a sibling site could plant or read).
    let pre_token = sign_in_token(&client, &server).await;
    let signed = sign_in(&client, &server, "yann", "yann's password").await;
    assert_eq!(location(&signed), "/account");
    let out = client
        .post(server.url("/sign-out"))
        .form(&[("csrf_token", pre_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 403);
    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200, "still signed in");
}

#[tokio::test]
async fn showing_the_authenticator_app_page_starts_no_enrolment() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("zoe", "zoe's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "zoe", "zoe's password").await;
    for _ in 0..3 {
        let page = get_text(&client, &server, "/enroll/oath").await;
        assert!(!page.contains("otpauth://"), "{page}");
    }
    let tokens = env.cli_ok(&["token", "list"], "");
    assert!(!tokens.contains("pending"), "{tokens}");
    let page = get_text(&client, &server, "/enroll/oath").await;
    let started = client
        .post(server.url("/enroll/oath/start"))
        .form(&[(
            "csrf_token",
            form_token(&page, "/enroll/oath/start").as_str(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&started), "/enroll/oath");
    assert!(env.cli_ok(&["token", "list"], "").contains("pending"));
}

#[tokio::test]
async fn a_signed_in_user_who_opens_the_wizard_is_sent_to_the_account_page_and_stays_signed_in() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("abel", "abel's password");
    let server = env.start();
    let client = server.client();
    let signed = sign_in(&client, &server, "abel", "abel's password").await;
    assert_eq!(location(&signed), "/account");
    let wizard = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(wizard.status(), 303);
    assert_eq!(location(&wizard), "/account");
    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200, "still signed in");
}
