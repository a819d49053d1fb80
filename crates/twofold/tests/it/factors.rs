//! Second factors end to end: codes from oathtool, the QR code read by zbarimg, the URI
//! accepted by pyotp, hardware tokens written by python-pskc.

use crate::support::*;

/// Follows the sign-in to the authenticator-app step, reads the QR code as a phone would,
/// and activates the token with a code from oathtool. Returns the base32 secret.
pub(crate) async fn enrol_authenticator_app(
    client: &reqwest::Client,
    server: &Server,
    scratch: &std::path::Path,
) -> String {
    let enroll = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(enroll.status(), 303);
    assert_eq!(location(&enroll), "/enroll/oath");
    let html = start_authenticator_app(client, server).await;
    assert!(html.contains("<h1>Add an authenticator app</h1>"), "{html}");
    let svg = between(&html, "<svg", "</svg>");
    let uri = decode_qr_svg(svg, scratch);
    assert!(uri.starts_with("otpauth://totp/Twofold:"), "{uri}");
    let shown = between(&html, "<code id=\"otpauth-uri\">", "</code>")
        .trim_start_matches("<code id=\"otpauth-uri\">")
        .trim_end_matches("</code>");
    let shown = html_unescape(shown);
    assert_eq!(shown, uri, "the URI shown for typing matches the QR code");
    let secret = uri_secret(&uri);
    let now = mid_step_now();
    let code = oathtool_totp(&secret, now);
    assert_eq!(
        pyotp_code(&uri, now),
        code,
        "pyotp reads the same token from the URI"
    );

    // A wrong code first: refused, nothing activated.
    let form = &html[html.find("action=\"/enroll/oath\"").unwrap()..];
    let token = input_value(form, "csrf_token").unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let refused = client
        .post(server.url("/enroll/oath"))
        .form(&[("csrf_token", token.as_str()), ("code", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("That code is not right")
    );

    let activated = client
        .post(server.url("/enroll/oath"))
        .form(&[("csrf_token", token.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        activated.status(),
        303,
        "{}",
        activated.text().await.unwrap_or_default()
    );
    assert_eq!(location(&activated), "/enroll");
    secret
}

/// Opens the authenticator-app page, starts the enrolment with its button (a POST: showing
/// the page changes nothing), and returns the page with the QR code.
pub(crate) async fn start_authenticator_app(client: &reqwest::Client, server: &Server) -> String {
    let html = client
        .get(server.url("/enroll/oath"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<svg"),
        "GET shows no key before the enrolment is started: {html}"
    );
    let form = &html[html
        .find("action=\"/enroll/oath/start\"")
        .unwrap_or_else(|| panic!("{html}"))..];
    let token = input_value(form, "csrf_token").unwrap();
    let started = client
        .post(server.url("/enroll/oath/start"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    assert_eq!(location(&started), "/enroll/oath");
    client
        .get(server.url("/enroll/oath"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Signs in with the password and expects the second-factor page.
pub(crate) async fn sign_in_to_verify(
    client: &reqwest::Client,
    server: &Server,
    user: &str,
    password: &str,
) -> String {
    let response = sign_in(client, server, user, password).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/verify");
    let page = client
        .get(server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>Verify it&#39;s you</h1>"), "{page}");
    page
}

pub(crate) async fn post_code(
    client: &reqwest::Client,
    server: &Server,
    page: &str,
    code: &str,
) -> reqwest::Response {
    let token = input_value(page, "csrf_token").unwrap();
    client
        .post(server.url("/verify"))
        .form(&[("csrf_token", token.as_str()), ("code", code)])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn sign_out(client: &reqwest::Client, server: &Server) {
    let page = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(
        &page[page.find("action=\"/sign-out\"").unwrap()..],
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
}

async fn authenticator_app_enrolment_then_sign_in(backend: Backend, split: bool) {
    authenticator_app_enrolment_then_sign_in_with(topology(Env::new(backend).await, split)).await;
}

async fn authenticator_app_enrolment_then_sign_in_with(env: Env) {
    env.add_user("alice", "correct horse battery");
    let server = env.start();
    let client = server.client();
    let first = sign_in(&client, &server, "alice", "correct horse battery").await;
    assert_eq!(location(&first), "/enroll");
    // Before the second factor, the account page is out of reach.
    assert_eq!(
        location(&client.get(server.url("/account")).send().await.unwrap()),
        "/enroll"
    );

    let secret = enrol_authenticator_app(&client, &server, env.dir.path()).await;
    let done = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account");
    let account = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("id=\"profile-token\">Authenticator app<"),
        "{account}"
    );
    sign_out(&client, &server).await;

    // Sign in again with a fresh code (the next time step: the enrolment used this one).
    let page = sign_in_to_verify(&client, &server, "alice", "correct horse battery").await;
    assert!(page.contains("autocomplete=\"one-time-code\""));
    let next = oathtool_totp(&secret, unix_now() + 30);
    let ok = post_code(&client, &server, &page, &next).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(location(&ok), "/account");
    assert_eq!(
        client
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    sign_out(&client, &server).await;

    // The same code again is refused as a replay, and says so.
    let page = sign_in_to_verify(&client, &server, "alice", "correct horse battery").await;
    let replay = post_code(&client, &server, &page, &next).await;
    assert_eq!(replay.status(), 409);
    assert!(
        replay
            .text()
            .await
            .unwrap()
            .contains("That code has already been used.")
    );
    assert_eq!(
        location(&client.get(server.url("/account")).send().await.unwrap()),
        "/verify"
    );

    // Malformed and over-long codes get their own message and do not count as guesses.
    for bad in ["12ab56", "1234567", "１２３４５６", &"9".repeat(200)] {
        let response = post_code(&client, &server, &page, bad).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("The code must be 6 digits.")
        );
    }
    let audit = env.cli_ok(&["audit", "tail", "-n", "200"], "");
    assert!(
        audit.contains("token_enrolled success actor=user:alice"),
        "{audit}"
    );
    assert!(audit.contains("detail=\"code_already_used\""), "{audit}");
    assert!(audit.contains("detail=\"oath\""), "{audit}");
}

#[tokio::test]
async fn an_authenticator_app_is_enrolled_from_the_qr_code_and_signs_in_on_sqlite() {
    authenticator_app_enrolment_then_sign_in(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn an_authenticator_app_is_enrolled_from_the_qr_code_and_signs_in_on_postgresql() {
    authenticator_app_enrolment_then_sign_in(Backend::Postgres, false).await;
}

async fn one_code_two_requests(backend: Backend) {
    let env = Env::new(backend).await;
    env.add_user("bob", "bob's password");
    let server = env.start();
    let enrolling = server.client();
    sign_in(&enrolling, &server, "bob", "bob's password").await;
    let secret = enrol_authenticator_app(&enrolling, &server, env.dir.path()).await;
    enrolling.get(server.url("/enroll")).send().await.unwrap();

    // Two browsers reach the code page, then send the same valid code at once.
    let a = server.client();
    let b = server.client();
    let page_a = sign_in_to_verify(&a, &server, "bob", "bob's password").await;
    let page_b = sign_in_to_verify(&b, &server, "bob", "bob's password").await;
    let code = oathtool_totp(&secret, unix_now() + 30);
    let (ra, rb) = tokio::join!(
        post_code(&a, &server, &page_a, &code),
        post_code(&b, &server, &page_b, &code)
    );
    let statuses = [ra.status().as_u16(), rb.status().as_u16()];
    assert!(
        statuses.contains(&303) && statuses.contains(&409),
        "exactly one succeeds, the other is told the code was used: {statuses:?}"
    );
}

#[tokio::test]
async fn the_same_code_sent_twice_at_once_lets_exactly_one_in_on_sqlite() {
    one_code_two_requests(Backend::Sqlite).await;
}

#[tokio::test]
async fn the_same_code_sent_twice_at_once_lets_exactly_one_in_on_postgresql() {
    one_code_two_requests(Backend::Postgres).await;
}

/// Fills the four-question form; returns the response.
async fn post_questions(
    client: &reqwest::Client,
    server: &Server,
    picks: &[(&str, &str)],
) -> reqwest::Response {
    let page = client
        .get(server.url("/enroll/questions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    let mut form = vec![("csrf_token".to_owned(), token)];
    for (i, (question, answer)) in picks.iter().enumerate() {
        form.push((format!("question-{}", i + 1), question.to_string()));
        form.push((format!("answer-{}", i + 1), answer.to_string()));
    }
    client
        .post(server.url("/enroll/questions"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn questions_fallback(backend: Backend, split: bool) {
    let env = topology(Env::new(backend).await, split)
        .set("TWOFOLD_SETTINGS__SECURITY_QUESTIONS_FALLBACK", "true")
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "10");
    env.add_user("carol", "carol's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "carol", "carol's password").await;
    enrol_authenticator_app(&client, &server, env.dir.path()).await;
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/enroll/questions"
    );

    let three = post_questions(
        &client,
        &server,
        &[
            ("en-1", "rex the dog"),
            ("en-2", "lyon"),
            ("en-3", "jules ferry"),
        ],
    )
    .await;
    assert_eq!(three.status(), 400);
    assert!(
        three
            .text()
            .await
            .unwrap()
            .contains("choose four questions")
    );
    let twice = post_questions(
        &client,
        &server,
        &[
            ("en-1", "rex"),
            ("en-2", "lyon"),
            ("en-3", "ferry"),
            ("en-1", "rex"),
        ],
    )
    .await;
    assert_eq!(twice.status(), 400);
    assert!(
        twice
            .text()
            .await
            .unwrap()
            .contains("choose four different questions")
    );
    let short = post_questions(
        &client,
        &server,
        &[
            ("en-1", "r"),
            ("en-2", "lyon"),
            ("en-3", "ferry"),
            ("en-4", "anne"),
        ],
    )
    .await;
    assert_eq!(short.status(), 400);
    let saved = post_questions(
        &client,
        &server,
        &[
            ("en-1", "Rex the Dog"),
            ("en-2", "Lyon"),
            ("en-3", "Jules  Ferry"),
            ("en-5", "Renault"),
        ],
    )
    .await;
    assert_eq!(saved.status(), 303);
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/account"
    );
    sign_out(&client, &server).await;

    // "I can't use my token": two of the four questions, drawn at random.
    let page = sign_in_to_verify(&client, &server, "carol", "carol's password").await;
    assert!(page.contains("I can&#39;t use my token"));
    let token = input_value(&page, "csrf_token").unwrap();
    let switched = client
        .post(server.url("/verify/fallback"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("challenge", "security_questions"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    let questions = client
        .get(server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let asked: Vec<String> = questions
        .match_indices("name=\"answer-")
        .map(|(i, _)| questions[i + 13..].split('"').next().unwrap().to_owned())
        .collect();
    assert_eq!(asked.len(), 2, "{questions}");
    let answer_for = |id: &str| match id {
        "en-1" => "  rex THE dog ",
        "en-2" => "LYON",
        "en-3" => "jules ferry",
        "en-5" => "renault",
        other => panic!("asked {other}, which carol did not choose"),
    };
    let token = input_value(&questions, "csrf_token").unwrap();
    let mut wrong = vec![("csrf_token".to_owned(), token.clone())];
    for id in &asked {
        wrong.push((format!("answer-{id}"), "not it".to_owned()));
    }
    let refused = client
        .post(server.url("/verify"))
        .form(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let refused_page = refused.text().await.unwrap();
    assert!(refused_page.contains("The answers are not right."));
    // The same questions are asked again: a reload does not draw easier ones.
    for id in &asked {
        assert!(refused_page.contains(&format!("name=\"answer-{id}\"")));
    }
    let mut right = vec![("csrf_token".to_owned(), token)];
    for id in &asked {
        right.push((format!("answer-{id}"), answer_for(id).to_owned()));
    }
    let ok = client
        .post(server.url("/verify"))
        .form(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(location(&ok), "/account");
    let audit = env.cli_ok(&["audit", "tail", "-n", "5"], "");
    assert!(audit.contains("detail=\"security_questions\""), "{audit}");
}

async fn one_time_bypass(backend: Backend, split: bool) {
    let env = topology(Env::new(backend).await, split)
        .set("TWOFOLD_SETTINGS__ALLOW_ONE_TIME_BYPASS", "true")
        .set("TWOFOLD_SETTINGS__PROMPT_FOR_BYPASS_SECONDS", "true")
        .set("TWOFOLD_SETTINGS__ONE_TIME_BYPASS_MAX_SECONDS", "600");
    env.add_user("dave", "dave's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "dave", "dave's password").await;
    enrol_authenticator_app(&client, &server, env.dir.path()).await;
    client.get(server.url("/enroll")).send().await.unwrap();

    let start_bypass = |seconds: &'static str| {
        let client = client.clone();
        let url = server.url("/account");
        let post_url = server.url("/account/bypass");
        async move {
            let page = client.get(url).send().await.unwrap().text().await.unwrap();
            let token = input_value(
                &page[page.find("action=\"/account/bypass\"").unwrap()..],
                "csrf_token",
            )
            .unwrap();
            client
                .post(post_url)
                .form(&[("csrf_token", token.as_str()), ("seconds", seconds)])
                .send()
                .await
                .unwrap()
        }
    };
    let too_long = start_bypass("601").await;
    assert_eq!(too_long.status(), 400);
    assert!(
        too_long
            .text()
            .await
            .unwrap()
            .contains("A bypass may last from 1 to 600 seconds.")
    );
    let started = start_bypass("60").await;
    assert_eq!(started.status(), 200);
    assert!(
        started
            .text()
            .await
            .unwrap()
            .contains("One-time bypass started")
    );
    sign_out(&client, &server).await;

    let bypassed = sign_in(&client, &server, "dave", "dave's password").await;
    assert_eq!(location(&bypassed), "/account", "no code within the window");
    sign_out(&client, &server).await;
    let again = sign_in(&client, &server, "dave", "dave's password").await;
    assert_eq!(location(&again), "/verify", "a bypass is used once");

    let audit = env.cli_ok(&["audit", "tail", "-n", "50"], "");
    assert!(
        audit.contains("bypass_started success actor=user:dave"),
        "{audit}"
    );
    assert!(audit.contains("detail=\"one_time_bypass\""), "{audit}");
}

#[tokio::test]
async fn an_expired_bypass_does_not_skip_the_code() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_ONE_TIME_BYPASS", "true")
        .set("TWOFOLD_SETTINGS__PROMPT_FOR_BYPASS_SECONDS", "true");
    env.add_user("erin", "erin's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "erin", "erin's password").await;
    enrol_authenticator_app(&client, &server, env.dir.path()).await;
    client.get(server.url("/enroll")).send().await.unwrap();
    let page = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(
        &page[page.find("action=\"/account/bypass\"").unwrap()..],
        "csrf_token",
    )
    .unwrap();
    let started = client
        .post(server.url("/account/bypass"))
        .form(&[("csrf_token", token.as_str()), ("seconds", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    sign_out(&client, &server).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let after = sign_in(&client, &server, "erin", "erin's password").await;
    assert_eq!(location(&after), "/verify");
}

/// Writes a PSKC file with python-pskc: one TOTP token, AES-128-CBC with a pre-shared key.
fn write_pskc(path: &std::path::Path, serial: &str, secret_hex: &str, key_hex: &str) {
    python_run(
        "import sys, pskc\n\
         p = pskc.PSKC()\n\
         k = p.add_key(id='1', serial=sys.argv[2], secret=bytes.fromhex(sys.argv[3]), algorithm='urn:ietf:params:xml:ns:keyprov:pskc:totp', response_length=6, time_interval=30)\n\
         p.encryption.setup_preshared_key(key=bytes.fromhex(sys.argv[4]), key_name='Pre-shared KEY')\n\
         p.write(sys.argv[1])",
        &[&path.display().to_string(), serial, secret_hex, key_hex],
    );
}

async fn hardware_token(backend: Backend, split: bool) {
    let env = topology(Env::new(backend).await, split)
        .set("TWOFOLD_SETTINGS__ALLOW_THIRD_PARTY_OATH_TOKEN", "true")
        .set(
            "TWOFOLD_SETTINGS__PROMPT_FOR_THIRD_PARTY_OATH_TOKEN",
            "true",
        );
    let secret_hex = "3132333435363738393031323334353637383930";
    let key_hex = "000102030405060708090a0b0c0d0e0f";
    let file = env.dir.path().join("tokens.pskcxml");
    write_pskc(&file, "HW-1001", secret_hex, key_hex);
    let out = env.cli(&["token", "import", &file.display().to_string()], "");
    assert!(!out.status.success(), "an encrypted file needs its key");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Pre-shared KEY"));
    env.cli_ok(
        &[
            "token",
            "import",
            &file.display().to_string(),
            "--key",
            key_hex,
        ],
        "",
    );
    let listed = env.cli_ok(&["token", "list"], "");
    assert!(
        listed.contains("HW-1001") && listed.contains("available"),
        "{listed}"
    );
    let again = env.cli(
        &[
            "token",
            "import",
            &file.display().to_string(),
            "--key",
            key_hex,
        ],
        "",
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("HW-1001"),
        "a duplicate serial is named"
    );

    env.add_user("frank", "frank's password");
    env.add_user("gina", "gina's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "frank", "frank's password").await;
    let oath_page = client
        .get(server.url("/enroll/oath"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(oath_page.contains("href=\"/enroll/hardware\""));
    let page = client
        .get(server.url("/enroll/hardware"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    let secret_b32 = python_run(
        "import base64, sys; print(base64.b32encode(bytes.fromhex(sys.argv[1])).decode())",
        &[secret_hex],
    );
    let code = oathtool_totp(&secret_b32, mid_step_now());
    let unknown = client
        .post(server.url("/enroll/hardware"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("serial", "HW-9999"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("No available token has that serial number.")
    );
    let associated = client
        .post(server.url("/enroll/hardware"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("serial", "HW-1001"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(associated.status(), 303);
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/account"
    );
    let account = client
        .get(server.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(account.contains("Hardware token HW-1001"), "{account}");
    assert!(env.cli_ok(&["token", "list"], "").contains("frank"));
    sign_out(&client, &server).await;

    let page = sign_in_to_verify(&client, &server, "frank", "frank's password").await;
    let next = oathtool_totp(&secret_b32, unix_now() + 30);
    assert_eq!(
        location(&post_code(&client, &server, &page, &next).await),
        "/account"
    );

    // Someone else cannot take a token that is assigned.
    let other = server.client();
    sign_in(&other, &server, "gina", "gina's password").await;
    let page = other
        .get(server.url("/enroll/hardware"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    let taken = other
        .post(server.url("/enroll/hardware"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("serial", "HW-1001"),
            ("code", "123456"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), 409);
    assert!(taken.text().await.unwrap().contains("already assigned"));
}

#[tokio::test]
async fn token_files_with_problems_import_nothing() {
    let env = Env::new(Backend::Sqlite).await;
    let key_hex = "000102030405060708090a0b0c0d0e0f";
    let good = env.dir.path().join("good.pskcxml");
    write_pskc(
        &good,
        "HW-2001",
        "3132333435363738393031323334353637383930",
        key_hex,
    );
    // A bad MAC: one byte of the encrypted secret changed.
    let xml = std::fs::read_to_string(&good).unwrap();
    let secret_at = xml.find("Secret>").unwrap();
    let start = xml[secret_at..].find("CipherValue>").unwrap() + secret_at;
    let value_start = xml[start..].find('>').unwrap() + start + 1;
    let mut damaged = xml.clone().into_bytes();
    let at = value_start + 30;
    damaged[at] = if damaged[at] == b'A' { b'B' } else { b'A' };
    let bad_mac = env.dir.path().join("bad-mac.pskcxml");
    std::fs::write(&bad_mac, &damaged).unwrap();
    let out = env.cli(
        &[
            "token",
            "import",
            &bad_mac.display().to_string(),
            "--key",
            key_hex,
        ],
        "",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the MAC does not match"), "{err}");

    let wrong_key = env.cli(
        &[
            "token",
            "import",
            &good.display().to_string(),
            "--key",
            "ffffffffffffffffffffffffffffffff",
        ],
        "",
    );
    assert!(!wrong_key.status.success());

    let truncated = env.dir.path().join("truncated.pskcxml");
    std::fs::write(&truncated, &xml[..xml.len() / 2]).unwrap();
    let out = env.cli(
        &[
            "token",
            "import",
            &truncated.display().to_string(),
            "--key",
            key_hex,
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line"),
        "the XML error's position is named"
    );

    let csv = env.dir.path().join("tokens.csv");
    std::fs::write(
        &csv,
        "serial,secret,type,digits,period_or_counter\n\
         CSV-1,3132333435363738393031323334353637383930,totp,6,30\n\
         CSV-2,not-a-secret!,totp,6,30\n\
         CSV-3,3132333435363738393031323334353637383930,hotp,7,0\n",
    )
    .unwrap();
    let out = env.cli(&["token", "import", &csv.display().to_string()], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("row 3") && err.contains("row 4"),
        "every bad row is named: {err}"
    );
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        env.cli_ok(&["token", "list"], "").contains("no tokens"),
        "nothing half-imported"
    );
}

async fn pin_with_code(backend: Backend) {
    // A window of two steps, so that two fresh codes exist right after enrolment.
    let env = Env::new(backend)
        .await
        .set("TWOFOLD_SETTINGS__PIN_REQUIRED", "true")
        .set("TWOFOLD_SETTINGS__OATH_TOTP_WINDOW_STEPS", "2");
    env.add_user("hugo", "hugo's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "hugo", "hugo's password").await;
    let secret = enrol_authenticator_app(&client, &server, env.dir.path()).await;
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/enroll/pin"
    );
    let page = client
        .get(server.url("/enroll/pin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    for (pin, confirm, message) in [
        ("1234", "1234", "too easy to guess"),
        ("0000", "0000", "too easy to guess"),
        ("25", "25", "at least 4 digits"),
        ("2580", "2581", "The two PINs differ"),
    ] {
        let refused = client
            .post(server.url("/enroll/pin"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("pin", pin),
                ("pin_confirm", confirm),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{pin}");
        assert!(refused.text().await.unwrap().contains(message), "{pin}");
    }
    let saved = client
        .post(server.url("/enroll/pin"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("pin", "2580"),
            ("pin_confirm", "2580"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), 303);
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/account"
    );
    sign_out(&client, &server).await;

    let page = sign_in_to_verify(&client, &server, "hugo", "hugo's password").await;
    assert!(
        page.contains("id=\"pin\""),
        "the PIN is asked with the code"
    );
    let token = input_value(&page, "csrf_token").unwrap();
    let code = oathtool_totp(&secret, unix_now() + 30);
    let wrong_pin = client
        .post(server.url("/verify"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("code", code.as_str()),
            ("pin", "9999"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_pin.status(), 401);
    assert!(
        wrong_pin
            .text()
            .await
            .unwrap()
            .contains("That code is not right"),
        "the message does not say which was wrong"
    );
    let code = oathtool_totp(&secret, unix_now() + 60);
    let ok = client
        .post(server.url("/verify"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("code", code.as_str()),
            ("pin", "2580"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(location(&ok), "/account");
}

#[tokio::test]
async fn without_enrolment_a_new_user_is_told_to_contact_the_administrator() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_USER_ENROLLMENT", "false");
    env.add_user("ines", "ines's password");
    let server = env.start();
    let response = sign_in(&server.client(), &server, "ines", "ines's password").await;
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Contact your administrator")
    );
}

#[tokio::test]
async fn key_rotation_re_encrypts_tokens_and_they_still_sign_in() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("jack", "jack's password");
    let secret;
    {
        let server = env.start();
        let client = server.client();
        sign_in(&client, &server, "jack", "jack's password").await;
        secret = enrol_authenticator_app(&client, &server, env.dir.path()).await;
        client.get(server.url("/enroll")).send().await.unwrap();
    }
    let rotated = env.cli_ok(&["key", "rotate"], "");
    assert!(
        rotated.contains("then run `twofold key reencrypt`"),
        "{rotated}"
    );
    let once = env.cli_ok(&["key", "reencrypt"], "");
    assert!(once.contains("re-encrypted 1 secret(s)"), "{once}");
    let twice = env.cli_ok(&["key", "reencrypt"], "");
    assert!(twice.contains("re-encrypted 0 secret(s)"), "{twice}");
    let server = env.start();
    let client = server.client();
    let page = sign_in_to_verify(&client, &server, "jack", "jack's password").await;
    let code = oathtool_totp(&secret, unix_now() + 30);
    assert_eq!(
        location(&post_code(&client, &server, &page, &code).await),
        "/account"
    );
}

#[tokio::test]
async fn security_questions_are_enrolled_and_answer_for_a_lost_token_on_sqlite() {
    questions_fallback(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn security_questions_are_enrolled_and_answer_for_a_lost_token_on_postgresql() {
    questions_fallback(Backend::Postgres, false).await;
}

#[tokio::test]
async fn a_one_time_bypass_signs_in_once_without_a_code_and_only_within_its_window_on_sqlite() {
    one_time_bypass(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn a_one_time_bypass_signs_in_once_without_a_code_and_only_within_its_window_on_postgresql() {
    one_time_bypass(Backend::Postgres, false).await;
}

#[tokio::test]
async fn an_imported_pskc_hardware_token_is_associated_by_serial_and_signs_in_on_sqlite() {
    hardware_token(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn an_imported_pskc_hardware_token_is_associated_by_serial_and_signs_in_on_postgresql() {
    hardware_token(Backend::Postgres, false).await;
}

#[tokio::test]
async fn a_required_pin_is_chosen_at_enrolment_and_typed_with_the_code_on_sqlite() {
    pin_with_code(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_required_pin_is_chosen_at_enrolment_and_typed_with_the_code_on_postgresql() {
    pin_with_code(Backend::Postgres).await;
}

#[tokio::test]
async fn an_authenticator_app_is_enrolled_from_the_qr_code_and_signs_in_split_over_the_sdk() {
    authenticator_app_enrolment_then_sign_in(Backend::Sqlite, true).await;
}

#[tokio::test]
async fn a_split_portal_trusting_the_servers_self_signed_certificate_enrols_and_signs_in_with_a_totp()
 {
    let env = Env::new(Backend::Sqlite).await.split_trusting_self_signed();
    authenticator_app_enrolment_then_sign_in_with(env).await;
}

#[tokio::test]
async fn security_questions_are_enrolled_and_answer_for_a_lost_token_split_over_the_sdk() {
    questions_fallback(Backend::Sqlite, true).await;
}

#[tokio::test]
async fn a_one_time_bypass_signs_in_once_without_a_code_split_over_the_sdk() {
    one_time_bypass(Backend::Sqlite, true).await;
}

#[tokio::test]
async fn an_imported_pskc_hardware_token_is_associated_by_serial_split_over_the_sdk() {
    hardware_token(Backend::Sqlite, true).await;
}

#[tokio::test]
async fn an_active_token_is_asked_for_even_when_the_wizard_was_left_unfinished() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__SECURITY_QUESTIONS_FALLBACK", "true");
    env.add_user("kim", "kim's password");
    let server = env.start();
    let first = server.client();
    sign_in(&first, &server, "kim", "kim's password").await;
    let secret = enrol_authenticator_app(&first, &server, env.dir.path()).await;
    // Kim walks away before the security questions. Someone with the password alone:
    let other = server.client();
    let attempt = sign_in(&other, &server, "kim", "kim's password").await;
    assert_eq!(
        location(&attempt),
        "/verify",
        "the token is asked for before any wizard step"
    );
    assert_eq!(
        location(
            &other
                .get(server.url("/enroll/questions"))
                .send()
                .await
                .unwrap()
        ),
        "/verify"
    );
    // With the code, the wizard resumes where it stopped.
    let page = other
        .get(server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let code = oathtool_totp(&secret, unix_now() + 30);
    let ok = post_code(&other, &server, &page, &code).await;
    assert_eq!(location(&ok), "/enroll");
    assert_eq!(
        location(&other.get(server.url("/enroll")).send().await.unwrap()),
        "/enroll/questions"
    );
}

#[tokio::test]
async fn wrong_codes_add_up_across_sign_ins_and_lock_the_account() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3");
    env.add_user("lena", "lena's password");
    let server = env.start();
    let client = server.client();
    sign_in(&client, &server, "lena", "lena's password").await;
    enrol_authenticator_app(&client, &server, env.dir.path()).await;
    client.get(server.url("/enroll")).send().await.unwrap();
    sign_out(&client, &server).await;
    for round in 0..2 {
        let page = sign_in_to_verify(&client, &server, "lena", "lena's password").await;
        let wrong = post_code(&client, &server, &page, "000000").await;
        assert_eq!(wrong.status(), 401, "round {round}");
        // A fresh browser: the right password must not wipe the count.
        let _ = client.get(server.url("/sign-in")).send().await;
    }
    let page = sign_in_to_verify(&client, &server, "lena", "lena's password").await;
    let locked = post_code(&client, &server, &page, "000000").await;
    assert_eq!(locked.status(), 423);
    assert!(
        locked
            .text()
            .await
            .unwrap()
            .contains("This account is locked")
    );
    let again = sign_in(&client, &server, "lena", "lena's password").await;
    assert_eq!(
        again.status(),
        423,
        "the lock holds at the password step too"
    );
}

#[tokio::test]
async fn a_pin_required_after_enrolment_is_chosen_right_after_the_next_code() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("milo", "milo's password");
    let secret = {
        let server = env.start();
        let client = server.client();
        sign_in(&client, &server, "milo", "milo's password").await;
        let secret = enrol_authenticator_app(&client, &server, env.dir.path()).await;
        assert_eq!(
            location(&client.get(server.url("/enroll")).send().await.unwrap()),
            "/account"
        );
        secret
    };
    env.cli_ok(&["settings", "set", "pin_required", "true"], "");
    let server = env.start();
    let client = server.client();
    let page = sign_in_to_verify(&client, &server, "milo", "milo's password").await;
    let code = oathtool_totp(&secret, unix_now() + 30);
    let ok = post_code(&client, &server, &page, &code).await;
    assert_eq!(
        location(&ok),
        "/enroll",
        "the code alone is right for a user without a PIN yet"
    );
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/enroll/pin"
    );
}

#[tokio::test]
async fn a_hardware_token_reserved_through_the_sdk_never_shows_its_seed() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_THIRD_PARTY_OATH_TOKEN", "true");
    let seed_hex = "3132333435363738393031323334353637383930";
    let csv = env.dir.path().join("t.csv");
    std::fs::write(&csv, format!("HW-7,hex:{seed_hex},totp,6,30\n")).unwrap();
    env.cli_ok(&["token", "import", &csv.display().to_string()], "");
    env.add_user("nina", "nina's password");
    let secret = env
        .cli_ok(&["service-account", "add", "ops"], "")
        .trim()
        .to_owned();
    let server = env.start();
    let sdk = server.client();
    let reserved = sdk
        .post(server.url("/sdk/v1/users/nina/oath"))
        .basic_auth("ops", Some(&secret))
        .json(&serde_json::json!({"kind": "hardware", "serial": "HW-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reserved.status(), 201);
    let client = server.client();
    sign_in(&client, &server, "nina", "nina's password").await;
    let html = start_authenticator_app(&client, &server).await;
    let shown = html_unescape(between(&html, "<code id=\"otpauth-uri\">", "</code>"));
    let hardware_b32 = python_run(
        "import base64, sys; print(base64.b32encode(bytes.fromhex(sys.argv[1])).decode().rstrip('='))",
        &[seed_hex],
    );
    assert!(
        !shown.contains(&hardware_b32),
        "the hardware seed must not be shown: {shown}"
    );
    // The reserved token went back to the inventory: it can be associated with a code.
    assert!(env.cli_ok(&["token", "list"], "").contains("available"));
}
