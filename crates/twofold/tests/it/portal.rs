//! Signing in to the portal through its HTML forms, on SQLite and on PostgreSQL.

use crate::support::*;

async fn sign_in_reaches_the_account_page(backend: Backend, split: bool) {
    let env = topology(Env::new(backend).await, split).password_only();
    env.add_user("alice", "correct horse battery");
    let server = env.start();
    let client = server.client();

    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303);
    assert_eq!(location(&account), "/sign-in?next=%2Faccount");

    let response = sign_in(&client, &server, "alice", "correct horse battery").await;
    assert_eq!(
        response.status(),
        303,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(location(&response), "/account");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-twofold-session="))
        .expect("a session cookie")
        .to_owned();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }

    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200);
    let html = account.text().await.unwrap();
    assert!(html.contains("<h1>Your account</h1>"), "{html}");
    assert!(html.contains("id=\"profile-username\">alice<"), "{html}");
    assert_eq!(html.matches("<h1").count(), 1, "one <h1> per page");

    // Signing out needs the form's token, and then the account page is out of reach.
    let token = input_value(
        &html[html.find("action=\"/sign-out\"").unwrap()..],
        "csrf_token",
    )
    .unwrap();
    let out = client
        .post(server.url("/sign-out"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303);
}

#[tokio::test]
async fn a_user_added_from_the_cli_signs_in_and_reaches_the_account_page_on_sqlite() {
    sign_in_reaches_the_account_page(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn a_user_added_from_the_cli_signs_in_and_reaches_the_account_page_on_postgresql() {
    sign_in_reaches_the_account_page(Backend::Postgres, false).await;
}

async fn wrong_passwords_lock_the_account(backend: Backend, split: bool) {
    let env = topology(Env::new(backend).await, split)
        .password_only()
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3");
    env.add_user("bob", "the right password");
    let server = env.start();
    let client = server.client();

    let wrong = sign_in(&client, &server, "bob", "a wrong password").await;
    assert_eq!(wrong.status(), 401);
    let wrong_text = wrong.text().await.unwrap();
    assert!(wrong_text.contains("The username or password is incorrect."));
    assert!(
        wrong_text.contains("value=\"bob\""),
        "the username is kept in the form"
    );

    // An unknown user gets the very same answer.
    let unknown = sign_in(&client, &server, "nobody", "a wrong password").await;
    assert_eq!(unknown.status(), 401);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("The username or password is incorrect.")
    );

    sign_in(&client, &server, "bob", "another wrong one").await;
    let locked = sign_in(&client, &server, "bob", "third wrong one").await;
    assert_eq!(locked.status(), 423);
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("This account is locked")
    );

    // Locked means locked: the right password does not get in either.
    let right = sign_in(&client, &server, "bob", "the right password").await;
    assert_eq!(right.status(), 423);

    // Repeated failures for a name that does not exist lock it the same way, so the lock
    // message reveals nothing about which accounts exist.
    for _ in 0..2 {
        sign_in(&client, &server, "nobody", "a wrong password").await;
    }
    let ghost = sign_in(&client, &server, "nobody", "a wrong password").await;
    assert_eq!(ghost.status(), 423);

    let show = env.cli_ok(&["user", "show", "bob"], "");
    assert!(show.contains("locked:    until"), "{show}");
    let unlocked = env.cli_ok(&["user", "unlock", "bob"], "");
    assert!(unlocked.contains("unlocked bob"), "{unlocked}");
    let right = sign_in(&client, &server, "bob", "the right password").await;
    assert_eq!(right.status(), 303);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_unlocked_on_sqlite() {
    wrong_passwords_lock_the_account(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_unlocked_on_postgresql() {
    wrong_passwords_lock_the_account(Backend::Postgres, false).await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("carol", "carol's password");
    let server = env.start();
    let client = server.client();

    // No token at all, a token from nowhere, and a right token without its cookie.
    let bare = client
        .post(server.url("/sign-in"))
        .form(&[("username", "carol"), ("password", "carol's password")])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    assert!(bare.text().await.unwrap().contains("This form has expired"));
    let token = sign_in_token(&client, &server).await;
    let cookieless = server
        .client()
        .post(server.url("/sign-in"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "carol"),
            ("password", "carol's password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cookieless.status(), 403);
    let audit = env.cli_ok(&["audit", "tail", "--json"], "");
    assert!(
        !audit.contains("\"sign_in\""),
        "refused forms must not reach sign-in: {audit}"
    );

    // Signed in, a sign-out without the token leaves the session alone.
    assert_eq!(
        sign_in(&client, &server, "carol", "carol's password")
            .await
            .status(),
        303
    );
    let forged = client
        .post(server.url("/sign-out"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        client
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // And a language change without it changes nothing either.
    let forged = client
        .post(server.url("/language"))
        .form(&[("language", "fr"), ("next", "/account")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let page = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html lang=\"en\">"));
}

#[tokio::test]
async fn an_expired_session_goes_back_to_sign_in_then_to_the_page_asked_for() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("dave", "dave's password");
    let server = env.start();
    let client = server.client();
    assert_eq!(
        sign_in(&client, &server, "dave", "dave's password")
            .await
            .status(),
        303
    );
    assert_eq!(
        client
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Age the session past the idle timeout, as time would.
    age_sessions(&env.data_dir(), 21 * 60).await;

    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303);
    let target = location(&account);
    assert_eq!(target, "/sign-in?next=%2Faccount&expired=1");
    let page = client
        .get(server.url(&target))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your session has ended"), "{page}");
    let next = input_value(&page[page.find("action=\"/sign-in\"").unwrap()..], "next").unwrap();
    assert_eq!(next, "/account");
    let token = input_value(
        &page[page.find("action=\"/sign-in\"").unwrap()..],
        "csrf_token",
    )
    .unwrap();
    let again = client
        .post(server.url("/sign-in"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "dave"),
            ("password", "dave's password"),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/account");
}

/// Moves every session's clock back by `seconds` in the SQLite store.
async fn age_sessions(data_dir: &std::path::Path, seconds: i64) {
    let conn = rusqlite::Connection::open(data_dir.join("twofold.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute(
        "UPDATE sessions SET created_at = created_at - ?1, last_seen_at = last_seen_at - ?1, expires_at = expires_at - ?1",
        [seconds],
    )
    .unwrap();
}

#[tokio::test]
async fn a_username_with_odd_unicode_signs_in_however_it_is_typed() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    // Added decomposed and in capitals, signed in full-width and composed.
    env.add_user("ZOE\u{0308}", "zoë's password");
    assert!(env.cli_ok(&["user", "list"], "").contains("zoë"));
    let server = env.start();
    let client = server.client();
    let response = sign_in(&client, &server, " ＺＯＥ\u{0308} ", "zoë's password").await;
    assert_eq!(response.status(), 303);
    let page = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">zoë<"), "{page}");

    // An invisible character is refused with a reason, not silently stored.
    let out = env.cli(&["user", "add", "zo\u{200B}e"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invisible"));
}

#[tokio::test]
async fn a_ten_thousand_character_password_is_refused_before_hashing() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("erin", "erin's password");
    let server = env.start();
    let client = server.client();
    let long = "p".repeat(10_000);
    let response = sign_in(&client, &server, "erin", &long).await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("That password is too long: use at most 1024 characters.")
    );
    let audit = env.cli_ok(&["audit", "tail", "--json"], "");
    assert!(audit.contains("password_too_long"), "{audit}");
    // Setting such a password from the CLI is refused too, and changes nothing.
    let out = env.cli(&["user", "set", "erin", "--password-stdin"], &long);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than 1024"));
    assert_eq!(
        sign_in(&client, &server, "erin", "erin's password")
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn an_oversized_request_body_gets_413() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    let server = env.start();
    let client = server.http2_client();
    let token = sign_in_token(&client, &server).await;
    let huge = "x".repeat(1024 * 1024);
    let response = client
        .post(server.url("/sign-in"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "x"),
            ("password", huge.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("What you sent is too large.")
    );
}

#[tokio::test]
async fn pages_speak_french_when_asked_and_the_switcher_remembers_it() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("fanny", "fanny's password");
    let server = env.start();
    let client = server.client();

    let page = client
        .get(server.url("/sign-in"))
        .header("accept-language", "fr-CA,fr;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html lang=\"fr\">"));
    assert!(page.contains("<h1>Connexion</h1>"));
    assert!(page.contains("<label for=\"username\">Nom d’utilisateur</label>"));

    // Signed in (in English), the user switches to French; it sticks to their account.
    assert_eq!(
        sign_in(&client, &server, "fanny", "fanny's password")
            .await
            .status(),
        303
    );
    let account = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&account, "csrf_token").unwrap();
    let switched = client
        .post(server.url("/language"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("language", "fr"),
            ("next", "/account"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    let account = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("<h1>Votre compte</h1>"), "{account}");
    assert!(
        env.cli_ok(&["user", "show", "fanny"], "")
            .contains("language:  fr")
    );

    // A new browser with no cookie gets French once the user signs in.
    let other = server.client();
    assert_eq!(
        sign_in(&other, &server, "fanny", "fanny's password")
            .await
            .status(),
        303
    );
    let account = other
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("<h1>Votre compte</h1>"));
}

#[tokio::test]
async fn every_form_field_has_a_label_and_the_standard_autocomplete() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    let server = env.start();
    let html = server
        .client()
        .get(server.url("/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<label for=\"username\">"));
    assert!(
        html.contains("id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\"")
    );
    assert!(html.contains("<label for=\"password\">"));
    assert!(html.contains(
        "id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\""
    ));
    assert!(html.contains("<label for=\"language\">"));
    assert!(
        !html.contains("<script"),
        "the sign-in page needs no script"
    );
    assert!(
        !html.contains("style=\""),
        "no inline styles (the CSP forbids them)"
    );
}

#[tokio::test]
async fn sign_in_attempts_from_one_address_are_rate_limited() {
    let env = Env::new(Backend::Sqlite)
        .await
        .password_only()
        .set("TWOFOLD_LIMITS__SIGN_IN_PER_IP_PER_MINUTE", "2");
    env.add_user("gus", "gus's password");
    let server = env.start();
    let client = server.client();
    assert_eq!(
        sign_in(&client, &server, "x1", "wrong password")
            .await
            .status(),
        401
    );
    assert_eq!(
        sign_in(&client, &server, "x2", "wrong password")
            .await
            .status(),
        401
    );
    let limited = sign_in(&client, &server, "gus", "gus's password").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers().get("retry-after").unwrap(), "60");
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("Too many attempts from here")
    );
}

#[tokio::test]
async fn signing_in_is_refused_when_the_setting_turns_it_off() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("hana", "hana's password");
    env.cli_ok(&["settings", "set", "allow_user_login", "false"], "");
    let server = env.start();
    let client = server.client();
    let page = client
        .get(server.url("/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signing in to the portal is turned off"));
    let response = sign_in(&client, &server, "hana", "hana's password").await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_loses_their_sessions() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("ivan", "ivan's password");
    let server = env.start();
    let client = server.client();
    assert_eq!(
        sign_in(&client, &server, "ivan", "ivan's password")
            .await
            .status(),
        303
    );
    env.cli_ok(&["user", "set", "ivan", "--disable"], "");
    assert_eq!(
        client
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    assert_eq!(
        sign_in(&client, &server, "ivan", "ivan's password")
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_user_added_from_the_cli_signs_in_and_reaches_the_account_page_split_over_the_sdk() {
    sign_in_reaches_the_account_page(Backend::Sqlite, true).await;
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_unlocked_split_over_the_sdk() {
    wrong_passwords_lock_the_account(Backend::Sqlite, true).await;
}

#[tokio::test]
async fn the_split_portal_shows_an_unavailable_page_when_the_server_stops() {
    let env = Env::new(Backend::Sqlite).await.password_only().split();
    env.add_user("walt", "walt's password");
    let mut portal = env.start();
    let client = portal.client();
    assert!(
        portal.banner.contains("MFA server:  https://127.0.0.1:"),
        "{}",
        portal.banner
    );
    assert_eq!(
        sign_in(&client, &portal, "walt", "walt's password")
            .await
            .status(),
        303
    );
    assert_eq!(
        client
            .get(portal.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    drop(portal.behind.take());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let page = client.get(portal.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), 503);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("The service is temporarily unavailable."),
        "{html}"
    );
    assert!(
        !html.contains("reqwest") && !html.contains("error sending request"),
        "no trace: {html}"
    );
    assert_eq!(
        client
            .get(portal.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        client
            .get(portal.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
