//! Lockout as an attacker meets it (issue 8): bursts of concurrent guesses check no more
//! codes than the threshold allows, a patient guesser is stopped for good at the hard cap
//! until an administrator unlocks, second-factor attempts are rate-limited per user and per
//! address, and a method this version cannot deliver never skips the second factor.

use crate::support::*;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// A caller of the SDK with one service account's credentials.
struct Sdk {
    base: String,
    client: reqwest::Client,
    secret: String,
}

impl Sdk {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
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
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
}

/// Adds the service account `app1` (before the server starts).
fn add_account(env: &Env) -> String {
    env.cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned()
}

fn sdk_for(server: &Server, secret: &str) -> Sdk {
    Sdk {
        base: server.base.clone(),
        client: server.client(),
        secret: secret.to_owned(),
    }
}

/// Gives `user` an active authenticator app through the SDK; returns its base32 secret.
async fn enrol(sdk: &Sdk, user: &str) -> String {
    let (status, enrolment) = sdk
        .post(
            &format!("/sdk/v1/users/{user}/oath"),
            json!({ "kind": "software" }),
        )
        .await;
    assert_eq!(status, 201, "{enrolment}");
    let secret = uri_secret(enrolment["otpauth_uri"].as_str().unwrap());
    let (status, verified) = sdk
        .post(
            &format!("/sdk/v1/users/{user}/oath/verify"),
            json!({ "code": oathtool_totp(&secret, mid_step_now()) }),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    secret
}

/// `n` distinct six-digit codes that none of the steps around now would accept.
fn wrong_codes(secret: &str, n: usize) -> Vec<String> {
    let now = unix_now();
    let valid: Vec<String> = (-3..=3)
        .map(|step| oathtool_totp(secret, now + step * 30))
        .collect();
    (100_000..)
        .map(|c: u32| c.to_string())
        .filter(|c| !valid.contains(c))
        .take(n)
        .collect()
}

/// The audit log's failed sign-in events for `user` (each is one secret checked: refused
/// attempts are not checked and not logged as such).
fn failed_sign_ins(env: &Env, user: &str) -> Vec<Value> {
    env.cli_ok(&["audit", "tail", "-n", "5000", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "sign_in" && e["outcome"] == "failure" && e["subject"] == user)
        .collect()
}

fn audit_actions(env: &Env, action: &str) -> Vec<Value> {
    env.cli_ok(&["audit", "tail", "-n", "5000", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == action)
        .collect()
}

/// How many second factors of `factor` the server has checked, from its own metrics.
async fn checks(server: &Server, factor: &str) -> u64 {
    let text = server
        .client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("twofold_second_factor_checks_total{{factor=\"{factor}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Rate limits high enough that only the lockout counters bound a burst.
fn without_rate_limits(env: Env) -> Env {
    env.set("TWOFOLD_LIMITS__SECOND_FACTOR_PER_USER_PER_MINUTE", "10000")
        .set("TWOFOLD_LIMITS__SECOND_FACTOR_PER_IP_PER_MINUTE", "10000")
}

/// Signs `user` in on the portal and returns the verify page.
async fn to_verify(client: &reqwest::Client, server: &Server, user: &str) -> String {
    let response = sign_in(client, server, user, PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/verify");
    client
        .get(server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn post_code(
    client: &reqwest::Client,
    server: &Server,
    token: &str,
    code: &str,
) -> reqwest::Response {
    client
        .post(server.url("/verify"))
        .form(&[("csrf_token", token), ("code", code)])
        .send()
        .await
        .unwrap()
}

// ---- finding 6: a burst of guesses checks at most the threshold ----

async fn burst_at_one_portal_session(backend: Backend) {
    let env = without_rate_limits(Env::new(backend).await);
    env.add_user("alice", PASSWORD);
    let account = add_account(&env);
    let server = env.start();
    let secret = enrol(&sdk_for(&server, &account), "alice").await;

    // One browser session over one HTTP/2 connection, a hundred wrong codes at once.
    let browser = server.http2_client();
    let page = to_verify(&browser, &server, "alice").await;
    let token = input_value(&page, "csrf_token").unwrap();
    assert_eq!(checks(&server, "oath").await, 0);
    let mut tasks = Vec::new();
    for code in wrong_codes(&secret, 100) {
        let (browser, url, token) = (browser.clone(), server.url("/verify"), token.clone());
        tasks.push(tokio::spawn(async move {
            browser
                .post(url)
                .version(reqwest::Version::HTTP_2)
                .form(&[("csrf_token", token.as_str()), ("code", code.as_str())])
                .send()
                .await
                .unwrap()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let response = task.await.unwrap();
        let status = response.status().as_u16();
        // Once the sign-in has ended (its five answers spent, the account locked), a guess
        // still in flight finds no session: its form's token is refused (403), or, when it
        // passed that check just before, it is sent back to a page of the sign-in (a 303 to
        // the sign-in page, or to the second-factor page, which then says the sign-in is
        // over). Never to the account.
        if status == 303 {
            let to = location(&response);
            assert!(
                to.starts_with("/sign-in") || to == "/verify",
                "a guess was sent to {to}"
            );
        }
        statuses.push(status);
    }
    assert!(
        statuses.iter().all(|s| [303, 401, 403, 423].contains(s)),
        "every guess is refused (wrong, locked, or its sign-in over), none fails: {statuses:?}"
    );
    assert!(statuses.contains(&423), "{statuses:?}");

    // What the server checked, from its own records: the default threshold, 5, no more.
    assert_eq!(checks(&server, "oath").await, 5, "codes checked");
    let failed = failed_sign_ins(&env, "alice");
    assert_eq!(failed.len(), 5, "failures logged: {failed:#?}");

    // The lock holds even against the right code: the sign-in the burst ended gets nothing
    // with it, and a new sign-in is refused as locked.
    let right = oathtool_totp(&secret, unix_now() + 30);
    let late = post_code(&browser, &server, &token, &right).await;
    assert_ne!(location(&late), "/account");
    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert!(location(&account).starts_with("/sign-in"), "not signed in");
    let fresh = server.client();
    let again = sign_in(&fresh, &server, "alice", PASSWORD).await;
    assert_eq!(again.status(), 423);
    assert!(
        env.cli_ok(&["user", "show", "alice"], "")
            .contains("locked:    until 2"),
        "the CLI shows the lock"
    );
}

#[tokio::test]
async fn a_burst_of_wrong_codes_at_one_portal_session_checks_at_most_the_threshold_on_sqlite() {
    burst_at_one_portal_session(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_burst_of_wrong_codes_at_one_portal_session_checks_at_most_the_threshold_on_postgresql() {
    burst_at_one_portal_session(Backend::Postgres).await;
}

async fn burst_at_one_sdk_authentication(backend: Backend) {
    let env = without_rate_limits(Env::new(backend).await)
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3");
    let account = add_account(&env);
    let server = env.start();
    let sdk = sdk_for(&server, &account);
    let (status, _) = sdk
        .post(
            "/sdk/v1/users",
            json!({ "username": "bob", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, 201);
    let secret = enrol(&sdk, "bob").await;
    let (status, started) = sdk
        .post(
            "/sdk/v1/authentications",
            json!({ "username": "bob", "password": PASSWORD, "client_ip": "198.51.100.7" }),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    assert_eq!(started["next"], "otp", "{started}");
    let path = format!(
        "/sdk/v1/authentications/{}",
        started["id"].as_str().unwrap()
    );

    assert_eq!(checks(&server, "oath").await, 0);
    let sdk = std::sync::Arc::new(sdk);
    let mut tasks = Vec::new();
    for code in wrong_codes(&secret, 100) {
        let (sdk, answer) = (sdk.clone(), format!("{path}/answer"));
        tasks.push(tokio::spawn(async move {
            sdk.post(&answer, json!({ "otp": code })).await
        }));
    }
    let mut codes = Vec::new();
    for task in tasks {
        let (status, problem) = task.await.unwrap();
        assert!(
            matches!(status, 401 | 409 | 423),
            "wrong, closed or locked, never a failure: {status} {problem}"
        );
        codes.push(problem["code"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        codes
            .iter()
            .any(|c| c == "user_locked" || c == "authentication_closed")
    );

    assert_eq!(checks(&server, "oath").await, 3, "codes checked");
    let failed = failed_sign_ins(&env, "bob");
    assert_eq!(failed.len(), 3, "failures logged: {failed:#?}");
    let (_, now) = sdk.get(&path).await;
    assert_eq!(now["state"], "denied", "{now}");
    let (_, user) = sdk.get("/sdk/v1/users/bob").await;
    assert!(
        user["locked_until"].as_i64().unwrap() > unix_now(),
        "{user}"
    );
}

#[tokio::test]
async fn a_burst_of_wrong_answers_to_one_sdk_authentication_checks_at_most_the_threshold_on_sqlite()
{
    burst_at_one_sdk_authentication(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_burst_of_wrong_answers_to_one_sdk_authentication_checks_at_most_the_threshold_on_postgresql()
 {
    burst_at_one_sdk_authentication(Backend::Postgres).await;
}

// ---- finding 4: the hard cap ----

/// Moves the window lock of `user` into the past, as if its duration had passed.
async fn let_the_window_lock_pass(env: &Env, backend: Backend, user: &str) {
    let sql = format!("UPDATE lockouts SET locked_until = 1 WHERE username = '{user}'");
    match backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(env.data_dir().join("twofold.db")).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            conn.execute(&sql, []).unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let url = env.vars["TWOFOLD_DATABASE__URL"].clone();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

async fn hard_cap(backend: Backend) {
    let env = Env::new(backend)
        .await
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "2")
        .set("TWOFOLD_SETTINGS__LOCKOUT_HARD_CAP", "5");
    let account = add_account(&env);
    let server = env.start();
    let sdk = sdk_for(&server, &account);
    let (status, _) = sdk
        .post("/sdk/v1/users", json!({ "username": "carol" }))
        .await;
    assert_eq!(status, 201);
    let secret = enrol(&sdk, "carol").await;
    let verify = "/sdk/v1/users/carol/oath/verify";
    let mut wrong = wrong_codes(&secret, 20).into_iter();
    let mut guess = || {
        let code = wrong.next().unwrap();
        let sdk = &sdk;
        async move {
            let (status, problem) = sdk.post(verify, json!({ "code": code })).await;
            (
                status,
                problem["code"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };

    // Two guesses, a window lock; it passes; two more, another; it passes: the fifth
    // guess in a row reaches the hard cap.
    assert_eq!(guess().await, (401, "invalid_code".to_owned()));
    assert_eq!(guess().await, (423, "user_locked".to_owned()));
    assert_eq!(guess().await.0, 423, "refused, not checked, while locked");
    let_the_window_lock_pass(&env, backend, "carol").await;
    assert_eq!(guess().await, (401, "invalid_code".to_owned()));
    assert_eq!(guess().await, (423, "user_locked".to_owned()));
    let_the_window_lock_pass(&env, backend, "carol").await;
    let (status, code) = guess().await;
    assert_eq!((status, code.as_str()), (423, "user_locked"));

    // The window lock passes again; the hard lock does not, even for the right code.
    let_the_window_lock_pass(&env, backend, "carol").await;
    let right = oathtool_totp(&secret, unix_now() + 30);
    let (status, problem) = sdk.post(verify, json!({ "code": right })).await;
    assert_eq!(status, 423, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("until an administrator unlocks it"),
        "{problem}"
    );
    assert_eq!(
        failed_sign_ins(&env, "carol").len(),
        5,
        "five guesses checked"
    );
    let (_, user) = sdk.get("/sdk/v1/users/carol").await;
    assert_eq!(user["hard_locked"], true, "{user}");
    assert!(user["locked_until"].is_null(), "{user}");

    let shown = env.cli_ok(&["user", "show", "carol"], "");
    assert!(
        shown.contains("locked:    until an administrator unlocks it"),
        "{shown}"
    );
    let hard = audit_actions(&env, "user_hard_locked");
    assert_eq!(hard.len(), 1, "{hard:#?}");
    assert_eq!(hard[0]["subject"], "carol");

    // An administrator releases it; the right code works again.
    let out = env.cli_ok(&["user", "unlock", "carol"], "");
    assert!(out.contains("unlocked carol"), "{out}");
    let unlocked = audit_actions(&env, "user_unlocked");
    assert!(
        unlocked[0]["detail"]
            .as_str()
            .unwrap()
            .contains("hard lock released"),
        "{unlocked:#?}"
    );
    assert!(
        env.cli_ok(&["user", "show", "carol"], "")
            .contains("locked:    no")
    );
    let (status, verified) = sdk.post(verify, json!({ "code": right })).await;
    assert_eq!(status, 200, "{verified}");
}

#[tokio::test]
async fn a_patient_guesser_is_locked_until_an_administrator_unlocks_on_sqlite() {
    hard_cap(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_patient_guesser_is_locked_until_an_administrator_unlocks_on_postgresql() {
    hard_cap(Backend::Postgres).await;
}

#[tokio::test]
async fn a_lockout_threshold_above_the_hard_cap_is_refused() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "101");
    let message = env.start_fails();
    assert!(message.contains("lockout_threshold"), "{message}");
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("dora", PASSWORD);
    env.cli_ok(&["settings", "set", "lockout_hard_cap", "10"], "");
    let out = env.cli(&["settings", "set", "lockout_threshold", "11"], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lockout_threshold") && err.contains("1 to 10"),
        "{err}"
    );
    let out = env.cli(&["settings", "set", "lockout_hard_cap", "1000"], "");
    assert!(!out.status.success());
}

// ---- finding 6: rate limits on second-factor attempts ----

#[tokio::test]
async fn sdk_answers_are_rate_limited_per_user_and_per_address() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "50")
        .set("TWOFOLD_LIMITS__SECOND_FACTOR_PER_USER_PER_MINUTE", "2")
        .set("TWOFOLD_LIMITS__SECOND_FACTOR_PER_IP_PER_MINUTE", "3");
    let account = add_account(&env);
    let server = env.start();
    let sdk = sdk_for(&server, &account);
    let mut secrets = Vec::new();
    for user in ["erin", "frank"] {
        let (status, _) = sdk.post("/sdk/v1/users", json!({ "username": user })).await;
        assert_eq!(status, 201);
        secrets.push(enrol(&sdk, user).await);
    }
    let x = "203.0.113.1";
    let erin = start_authentication(&sdk, "erin", x).await;
    let mut wrong = wrong_codes(&secrets[0], 20).into_iter();
    let mut answer = |path: String| {
        let code = wrong.next().unwrap();
        let sdk = &sdk;
        async move {
            let (status, problem) = sdk.post(&path, json!({ "otp": code })).await;
            (
                status,
                problem["code"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    assert_eq!(answer(erin.clone()).await.0, 401);
    assert_eq!(answer(erin.clone()).await.0, 401);
    assert_eq!(
        answer(erin.clone()).await,
        (429, "rate_limited".to_owned()),
        "erin's own budget is spent"
    );
    // That third try spent the address's third attempt: frank, untouched so far, is
    // refused from there, and answers from elsewhere.
    let frank = start_authentication(&sdk, "frank", x).await;
    assert_eq!(
        answer(frank).await,
        (429, "rate_limited".to_owned()),
        "the address's budget is spent"
    );
    let frank_elsewhere = start_authentication(&sdk, "frank", "203.0.113.2").await;
    assert_eq!(answer(frank_elsewhere).await.0, 401);
    // Three answers were checked; the refused ones were not.
    assert_eq!(failed_sign_ins(&env, "erin").len(), 2);
    assert_eq!(failed_sign_ins(&env, "frank").len(), 1);
}

/// Starts an authentication for `user` from `ip`; returns its answer path.
async fn start_authentication(sdk: &Sdk, user: &str, ip: &str) -> String {
    let (status, started) = sdk
        .post(
            "/sdk/v1/authentications",
            json!({ "username": user, "client_ip": ip }),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    format!(
        "/sdk/v1/authentications/{}/answer",
        started["id"].as_str().unwrap()
    )
}

#[tokio::test]
async fn portal_codes_are_rate_limited_per_user() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "50")
        .set("TWOFOLD_LIMITS__SECOND_FACTOR_PER_USER_PER_MINUTE", "2");
    env.add_user("gina", PASSWORD);
    let account = add_account(&env);
    let server = env.start();
    let secret = enrol(&sdk_for(&server, &account), "gina").await;
    let browser = server.client();
    let page = to_verify(&browser, &server, "gina").await;
    let token = input_value(&page, "csrf_token").unwrap();
    for code in wrong_codes(&secret, 6) {
        let _ = post_code(&browser, &server, &token, &code).await;
    }
    assert_eq!(
        failed_sign_ins(&env, "gina").len(),
        2,
        "only the user's budget of codes was checked"
    );
}

// ---- finding 7: fail closed on methods ----

async fn set_method(env: &Env, user: &str, method: &str) {
    let conn = rusqlite::Connection::open(env.data_dir().join("twofold.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let changed = conn
        .execute(
            "UPDATE users SET method = ?1 WHERE username = ?2",
            [method, user],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn a_user_whose_method_cannot_be_delivered_still_proves_their_token() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("hana", PASSWORD);
    let account = add_account(&env);
    let server = env.start();
    let sdk = sdk_for(&server, &account);
    let secret = enrol(&sdk, "hana").await;
    let mut last = None;
    for method in ["phone_call", "sms", "mobile_app"] {
        set_method(&env, "hana", method).await;
        let browser = server.client();
        // The password alone never signs in, enrols or opens the account page.
        let page = to_verify(&browser, &server, "hana").await;
        for path in ["/account", "/enroll"] {
            let response = browser.get(server.url(path)).send().await.unwrap();
            assert_ne!(response.status(), 200, "{method}: {path} without the code");
        }
        let (status, started) = sdk
            .post("/sdk/v1/authentications", json!({ "username": "hana" }))
            .await;
        assert_eq!(status, 201);
        assert_eq!(started["state"], "pending", "{method}: {started}");
        assert_eq!(started["next"], "otp", "{method}: {started}");
        last = Some((browser, page));
    }
    // With the code, the sign-in completes.
    let (browser, page) = last.unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    let code = oathtool_totp(&secret, unix_now() + 30);
    let done = post_code(&browser, &server, &token, &code).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account");
}
