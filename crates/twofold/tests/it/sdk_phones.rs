//! Phones, the primary method and fraud blocks through the Web Service SDK and the command
//! line: numbers read and stored in E.164, refusals that name what is wrong and change
//! nothing, and authentications by text message answered with the code the console channel
//! wrote to `/dev/inbox`.

use crate::support::*;
use reqwest::Method;
use serde_json::{Value, json};

/// One answer of the SDK.
struct Reply {
    status: u16,
    text: String,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        self
    }

    /// Expects a problem with this status and code; returns its detail.
    #[track_caller]
    fn problem(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        assert_eq!(self.body["code"], json!(code), "{}", self.text);
        let detail = self.body["detail"].as_str().unwrap_or_default().to_owned();
        assert!(!detail.is_empty(), "a problem says why: {}", self.text);
        detail
    }
}

/// A caller of the SDK with the service account `app1`.
struct Sdk {
    base: String,
    client: reqwest::Client,
    secret: String,
}

impl Sdk {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
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
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, text, body }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }
}

/// The server, its SDK caller, and the directory they live in (dropped in this order).
struct Running {
    sdk: Sdk,
    server: Server,
    env: Env,
}

async fn running(env: Env) -> Running {
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    let server = env.start();
    Running {
        sdk: Sdk {
            base: server.base.clone(),
            client: server.client(),
            secret,
        },
        server,
        env,
    }
}

/// A user `ada` with a password, made through the SDK.
async fn add_ada(sdk: &Sdk) {
    sdk.post(
        "/sdk/v1/users",
        json!({"username": "ada", "password": "correct horse battery"}),
    )
    .await
    .expect(201);
}

/// The user as `GET /sdk/v1/users/ada` shows them.
async fn ada(sdk: &Sdk) -> Value {
    sdk.get("/sdk/v1/users/ada").await.expect(200).body
}

/// What `ada`'s phones are, as the SDK shows them.
fn phones_of(user: &Value) -> [Value; 4] {
    [
        user["phone"].clone(),
        user["extension"].clone(),
        user["backup_phone"].clone(),
        user["backup_extension"].clone(),
    ]
}

fn audit_tail(env: &Env) -> String {
    env.cli_ok(&["audit", "tail", "-n", "200"], "")
}

async fn set_ada_phones(sdk: &Sdk) {
    sdk.put(
        "/sdk/v1/users/ada/phones",
        json!({
            "primary": {"number": "+33 6 12 34 56 78", "extension": "890"},
            "backup": {"number": "+1 201-555-0123"}
        }),
    )
    .await
    .expect(200);
}

async fn set_ada_method(sdk: &Sdk, method: &str) {
    sdk.put("/sdk/v1/users/ada/method", json!({ "method": method }))
        .await
        .expect(200);
}

// ---- the development inbox ----

/// One message of `/dev/inbox`.
struct InboxEntry {
    id: String,
    title: String,
    body: String,
}

async fn inbox(server: &Server) -> (Vec<InboxEntry>, String) {
    let html = server
        .client()
        .get(server.url("/dev/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let entries = html
        .split("<li id=\"")
        .skip(1)
        .map(|part| InboxEntry {
            id: part.split('"').next().unwrap_or_default().to_owned(),
            title: html_unescape(inside(part, "<h2>", "</h2>")),
            body: html_unescape(inside(part, "<pre class=\"message-body\">", "</pre>")),
        })
        .collect();
    (entries, html)
}

/// The text between `start` and `end` (both left out), or nothing.
fn inside<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    html.split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map_or("", |(text, _)| text)
}

/// The messages of the inbox whose title names `to` (the newest first), once there is one.
async fn messages_to(server: &Server, kind: &str, to: &str) -> Vec<InboxEntry> {
    for _ in 0..50 {
        let (entries, _) = inbox(server).await;
        let found: Vec<InboxEntry> = entries
            .into_iter()
            .filter(|e| e.title == format!("{kind} to {to}"))
            .collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, html) = inbox(server).await;
    panic!("no {kind} to {to} in /dev/inbox:\n{html}");
}

/// The six-digit code a text message carries.
fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .unwrap_or_else(|| panic!("no six-digit code in {text:?}"))
        .to_owned()
}

/// Types `digits` during the inbox's call `id`, as its form does.
async fn answer_call(server: &Server, id: &str, digits: &str) {
    let client = server.client();
    let html = client
        .get(server.url("/dev/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&html, "csrf_token").expect("the inbox's CSRF token");
    let response = client
        .post(server.url(&format!("/dev/inbox/{id}/answer")))
        .form(&[("csrf_token", token.as_str()), ("digits", digits)])
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success() || response.status().is_redirection(),
        "{}",
        response.status()
    );
}

// ---- phones ----

async fn phones_are_stored_in_e164_with_their_extensions(backend: Backend) {
    let run = running(Env::new(backend).await).await;
    add_ada(&run.sdk).await;
    let set = run
        .sdk
        .put(
            "/sdk/v1/users/ada/phones",
            json!({
                "primary": {"number": "+33 6 12 34 56 78", "extension": "890"},
                "backup": {"number": "+1 201-555-0123 x42"}
            }),
        )
        .await
        .expect(200);
    let stored = [
        json!("+33612345678"),
        json!("890"),
        json!("+12015550123"),
        json!("42"),
    ];
    assert_eq!(phones_of(&set.body), stored, "{}", set.text);
    assert_eq!(phones_of(&ada(&run.sdk).await), stored);

    let audit = audit_tail(&run.env);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("phone_changed") && l.contains("sdk:app1") && l.contains("ada")),
        "{audit}"
    );
    let (entries, html) = inbox(&run.server).await;
    assert!(entries.is_empty(), "no call or text is made: {html}");
}

#[tokio::test]
async fn phones_are_stored_in_e164_with_their_extensions_on_sqlite() {
    phones_are_stored_in_e164_with_their_extensions(Backend::Sqlite).await;
}

#[tokio::test]
async fn phones_are_stored_in_e164_with_their_extensions_on_postgres() {
    phones_are_stored_in_e164_with_their_extensions(Backend::Postgres).await;
}

#[tokio::test]
async fn a_national_number_is_read_in_the_default_region() {
    let run = running(
        Env::new(Backend::Sqlite)
            .await
            .set("TWOFOLD_SETTINGS__DEFAULT_REGION", "FR"),
    )
    .await;
    add_ada(&run.sdk).await;
    let set = run
        .sdk
        .put(
            "/sdk/v1/users/ada/phones",
            json!({"primary": {"number": "06 12 34 56 78"}, "backup": null}),
        )
        .await
        .expect(200);
    assert_eq!(set.body["phone"], json!("+33612345678"), "{}", set.text);
    assert_eq!(set.body["backup_phone"], Value::Null);
}

#[tokio::test]
async fn bad_numbers_are_refused_with_their_code_and_change_nothing() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    let before = phones_of(&ada(&run.sdk).await);
    let cases = [
        (
            json!({"primary": {"number": "+33 ring ring"}}),
            "invalid_phone",
            "ring ring",
        ),
        (
            json!({"primary": {"number": "06 12 34 56 78"}}),
            "phone_needs_country",
            "country code",
        ),
        (
            json!({"primary": {"number": "+33 1"}}),
            "invalid_phone",
            "+33 1",
        ),
        (
            json!({"primary": {"number": "+33 6 12 34 56 78", "extension": "12a"}}),
            "invalid_extension",
            "12a",
        ),
        (
            json!({"primary": {"number": "+33 6 12 34 56 78"}, "backup": {"number": "555"}}),
            "phone_needs_country",
            "555",
        ),
        (
            json!({"primary": {"number": "+33 6 12 34 56 78"}, "backup": {"number": "+1 201-555-0123", "extension": "12345678901"}}),
            "invalid_extension",
            "12345678901",
        ),
    ];
    for (body, code, named) in cases {
        let reply = run.sdk.put("/sdk/v1/users/ada/phones", body.clone()).await;
        let detail = reply.problem(400, code);
        assert!(detail.contains(named), "{body}: {detail}");
        assert_eq!(phones_of(&ada(&run.sdk).await), before, "{body}");
    }
    let unknown = run
        .sdk
        .put(
            "/sdk/v1/users/nobody/phones",
            json!({"primary": {"number": "+33 6 12 34 56 78"}}),
        )
        .await;
    unknown.problem(404, "user_not_found");
    let audit = audit_tail(&run.env);
    assert_eq!(
        audit.matches("phone_changed").count(),
        1,
        "only the first change is audited as one: {audit}"
    );
}

/// An application cannot slip a field past the SDK: a body with a field the contract does
/// not have (a forged verification, a method, an owner) is refused whole, and the user's
/// phones and method stay as they were.
#[tokio::test]
async fn unknown_fields_in_a_phones_or_method_body_are_refused_and_nothing_changes() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    let before = ada(&run.sdk).await;
    let attacks = [
        json!({"primary": {"number": "+33 6 98 76 54 32", "verified": true}}),
        json!({"primary": {"number": "+33 6 98 76 54 32"}, "method": "sms"}),
        json!({"primary": {"number": "+33 6 98 76 54 32"}, "username": "root"}),
        json!({"primary": {"number": "+33 6 98 76 54 32"}, "backup": {"number": "+33 6 98 76 54 33", "owner": "eve"}}),
        json!({"backup": {"number": "+33 6 98 76 54 32"}}),
        json!({}),
    ];
    for body in attacks {
        let reply = run.sdk.put("/sdk/v1/users/ada/phones", body.clone()).await;
        reply.problem(400, "invalid_body");
        let after = ada(&run.sdk).await;
        assert_eq!(phones_of(&after), phones_of(&before), "{body}");
        assert_eq!(after["method"], before["method"], "{body}");
    }
    let reply = run
        .sdk
        .put(
            "/sdk/v1/users/ada/method",
            json!({"method": "sms", "phone": "+33 6 98 76 54 32"}),
        )
        .await;
    reply.problem(400, "invalid_body");
    let after = ada(&run.sdk).await;
    assert_eq!(after["method"], before["method"]);
    assert_eq!(phones_of(&after), phones_of(&before));
    let audit = audit_tail(&run.env);
    assert_eq!(audit.matches("phone_changed").count(), 1, "{audit}");
    assert!(!audit.contains("method_changed"), "{audit}");
}

#[tokio::test]
async fn a_null_primary_clears_both_phones_unless_the_method_needs_one() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    run.sdk
        .put("/sdk/v1/users/ada/method", json!({"method": "sms"}))
        .await
        .expect(200);
    let refused = run
        .sdk
        .put("/sdk/v1/users/ada/phones", json!({"primary": null}))
        .await;
    let detail = refused.problem(400, "invalid_request");
    assert!(detail.contains("sms"), "{detail}");
    assert_eq!(ada(&run.sdk).await["phone"], json!("+33612345678"));

    // Once the user has another method, the phones may go.
    let env = &run.env;
    let secret = {
        let enrolment = run
            .sdk
            .post("/sdk/v1/users/ada/oath", json!({"kind": "software"}))
            .await
            .expect(201);
        uri_secret(enrolment.body["otpauth_uri"].as_str().unwrap())
    };
    run.sdk
        .post(
            "/sdk/v1/users/ada/oath/verify",
            json!({"code": oathtool_totp(&secret, mid_step_now())}),
        )
        .await
        .expect(200);
    run.sdk
        .put("/sdk/v1/users/ada/method", json!({"method": "oath"}))
        .await
        .expect(200);
    let cleared = run
        .sdk
        .put("/sdk/v1/users/ada/phones", json!({"primary": null}))
        .await
        .expect(200);
    assert_eq!(
        phones_of(&cleared.body),
        [Value::Null, Value::Null, Value::Null, Value::Null],
        "{}",
        cleared.text
    );
    assert!(audit_tail(env).contains("cleared"));
}

// ---- method ----

#[tokio::test]
async fn the_method_is_set_when_the_user_has_what_it_needs_and_mobile_app_needs_a_device() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    for method in ["sms", "phone_call", "oath"] {
        let refused = run
            .sdk
            .put("/sdk/v1/users/ada/method", json!({"method": method}))
            .await;
        let detail = refused.problem(409, "not_enrolled");
        let needed = if method == "oath" {
            "OATH token"
        } else {
            "phone"
        };
        assert!(detail.contains(needed), "{method}: {detail}");
    }
    assert_eq!(ada(&run.sdk).await["method"], Value::Null);

    set_ada_phones(&run.sdk).await;
    for method in ["sms", "phone_call"] {
        let set = run
            .sdk
            .put("/sdk/v1/users/ada/method", json!({"method": method}))
            .await
            .expect(200);
        assert_eq!(set.body["method"], json!(method), "{}", set.text);
        assert_eq!(ada(&run.sdk).await["method"], json!(method));
    }

    let app = run
        .sdk
        .put("/sdk/v1/users/ada/method", json!({"method": "mobile_app"}))
        .await;
    let detail = app.problem(409, "not_enrolled");
    assert!(detail.contains("activated device"), "{detail}");
    let unknown = run
        .sdk
        .put(
            "/sdk/v1/users/ada/method",
            json!({"method": "carrier_pigeon"}),
        )
        .await;
    unknown.problem(400, "invalid_body");
    assert_eq!(ada(&run.sdk).await["method"], json!("phone_call"));

    let audit = audit_tail(&run.env);
    let changes: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("method_changed"))
        .collect();
    assert_eq!(changes.len(), 2, "{audit}");
    assert!(
        changes
            .iter()
            .all(|l| l.contains("sdk:app1") && l.contains("ada")),
        "{audit}"
    );
}

// ---- authentications by text message ----

async fn a_text_message_authentication_is_approved_with_the_code_it_carries(backend: Backend) {
    let run = running(Env::new(backend).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    set_ada_method(&run.sdk, "sms").await;
    let started = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "ada", "method": "sms"}),
        )
        .await
        .expect(201);
    assert_eq!(started.body["state"], json!("pending"), "{}", started.text);
    assert_eq!(started.body["next"], json!("text_code"), "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();

    let texts = messages_to(&run.server, "Text message", "+33612345678").await;
    assert_eq!(texts.len(), 1);
    let code = code_in(&texts[0].body);

    let polled = run
        .sdk
        .get(&format!("/sdk/v1/authentications/{id}"))
        .await
        .expect(200);
    assert_eq!(polled.body["state"], json!("pending"));

    let approved = run
        .sdk
        .post(
            &format!("/sdk/v1/authentications/{id}/answer"),
            json!({"otp": code}),
        )
        .await
        .expect(200);
    assert_eq!(
        approved.body["state"],
        json!("approved"),
        "{}",
        approved.text
    );
    assert_eq!(approved.body["via"], json!("sms"), "{}", approved.text);

    let again = run
        .sdk
        .post(
            &format!("/sdk/v1/authentications/{id}/answer"),
            json!({"otp": code}),
        )
        .await;
    again.problem(409, "authentication_closed");
}

#[tokio::test]
async fn a_text_message_authentication_is_approved_with_the_code_it_carries_on_sqlite() {
    a_text_message_authentication_is_approved_with_the_code_it_carries(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_text_message_authentication_is_approved_with_the_code_it_carries_on_postgres() {
    a_text_message_authentication_is_approved_with_the_code_it_carries(Backend::Postgres).await;
}

#[tokio::test]
async fn a_wrong_text_code_is_refused_and_the_right_one_still_approves() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    set_ada_method(&run.sdk, "sms").await;
    let started = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "ada", "method": "sms"}),
        )
        .await
        .expect(201);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let code = code_in(&messages_to(&run.server, "Text message", "+33612345678").await[0].body);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let refused = run
        .sdk
        .post(
            &format!("/sdk/v1/authentications/{id}/answer"),
            json!({"otp": wrong}),
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    let polled = run
        .sdk
        .get(&format!("/sdk/v1/authentications/{id}"))
        .await
        .expect(200);
    assert_eq!(polled.body["state"], json!("pending"), "{}", polled.text);
    run.sdk
        .post(
            &format!("/sdk/v1/authentications/{id}/answer"),
            json!({"otp": code}),
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn the_backup_phone_gets_the_text_when_asked_for() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    set_ada_method(&run.sdk, "sms").await;
    let started = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "ada", "method": "sms", "phone": "backup"}),
        )
        .await
        .expect(201);
    assert_eq!(started.body["next"], json!("text_code"), "{}", started.text);
    let id = started.body["id"].as_str().unwrap().to_owned();
    let texts = messages_to(&run.server, "Text message", "+12015550123").await;
    let (entries, html) = inbox(&run.server).await;
    assert!(
        !entries.iter().any(|e| e.title.contains("+33612345678")),
        "nothing goes to the primary phone: {html}"
    );
    let approved = run
        .sdk
        .post(
            &format!("/sdk/v1/authentications/{id}/answer"),
            json!({"otp": code_in(&texts[0].body)}),
        )
        .await
        .expect(200);
    assert_eq!(approved.body["state"], json!("approved"));

    // A user without a backup phone is told so; nothing is sent.
    run.sdk
        .post("/sdk/v1/users", json!({"username": "bob"}))
        .await
        .expect(201);
    run.sdk
        .put(
            "/sdk/v1/users/bob/phones",
            json!({"primary": {"number": "+33 6 98 76 54 32"}}),
        )
        .await
        .expect(200);
    run.sdk
        .put("/sdk/v1/users/bob/method", json!({"method": "sms"}))
        .await
        .expect(200);
    let refused = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "bob", "method": "sms", "phone": "backup"}),
        )
        .await;
    let detail = refused.problem(400, "invalid_request");
    assert!(detail.contains("backup"), "{detail}");
    let (entries, html) = inbox(&run.server).await;
    assert!(
        !entries.iter().any(|e| e.title.contains("+33698765432")),
        "{html}"
    );
}

// ---- fraud block ----

/// Ada reports a call she did not ask for (the fraud code, then 1): she is blocked.
async fn ada_reports_fraud(run: &Running) {
    set_ada_method(&run.sdk, "phone_call").await;
    let started = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "ada", "method": "phone_call"}),
        )
        .await
        .expect(201);
    assert_eq!(
        started.body["next"],
        json!("phone_call"),
        "{}",
        started.text
    );
    let id = started.body["id"].as_str().unwrap().to_owned();
    let call = messages_to(&run.server, "Phone call", "+33612345678").await;
    answer_call(&run.server, &call[0].id, "0#").await;
    answer_call(&run.server, &call[0].id, "1").await;
    let polled = run
        .sdk
        .get(&format!("/sdk/v1/authentications/{id}"))
        .await
        .expect(200);
    assert_eq!(polled.body["state"], json!("fraud"), "{}", polled.text);
}

#[tokio::test]
async fn unblock_lifts_a_fraud_block_and_is_audited() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    assert_eq!(ada(&run.sdk).await["fraud_blocked_until"], Value::Null);
    ada_reports_fraud(&run).await;

    let blocked = ada(&run.sdk).await;
    let until = blocked["fraud_blocked_until"]
        .as_i64()
        .unwrap_or_else(|| panic!("a blocked user shows until when: {blocked}"));
    assert!(until > unix_now() + 80 * 86_400, "{until}");
    let refused = run
        .sdk
        .post(
            "/sdk/v1/authentications",
            json!({"username": "ada", "method": "phone_call"}),
        )
        .await;
    refused.problem(403, "fraud_blocked");

    let unknown = run
        .sdk
        .send(Method::POST, "/sdk/v1/users/nobody/unblock", None)
        .await;
    unknown.problem(404, "user_not_found");

    let unblocked = run
        .sdk
        .send(Method::POST, "/sdk/v1/users/ada/unblock", None)
        .await;
    assert_eq!(unblocked.status, 204, "{}", unblocked.text);
    assert_eq!(ada(&run.sdk).await["fraud_blocked_until"], Value::Null);
    let audit = audit_tail(&run.env);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("user_unblocked") && l.contains("sdk:app1") && l.contains("ada")),
        "{audit}"
    );
    let again = run
        .sdk
        .post("/sdk/v1/authentications", json!({"username": "ada"}))
        .await
        .expect(201);
    assert_eq!(again.body["next"], json!("phone_call"), "{}", again.text);
}

// ---- the command line ----

#[tokio::test]
async fn user_set_reads_phones_and_the_method_and_user_show_prints_them() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__DEFAULT_REGION", "FR");
    env.add_user("ada", "correct horse battery");
    env.cli_ok(
        &[
            "user",
            "set",
            "ada",
            "--phone",
            "06 12 34 56 78",
            "--extension",
            "890",
            "--backup-phone",
            "+1 201-555-0123",
            "--method",
            "sms",
        ],
        "",
    );
    let shown = env.cli_ok(&["user", "show", "ada"], "");
    assert!(shown.contains("+33 6 12 34 56 78 ext. 890"), "{shown}");
    assert!(shown.contains("+1 201-555-0123"), "{shown}");
    assert!(shown.contains("method:    sms"), "{shown}");
    assert!(shown.contains("blocked:   no"), "{shown}");
    let json: Value =
        serde_json::from_str(&env.cli_ok(&["user", "show", "ada", "--json"], "")).unwrap();
    assert_eq!(json["phone"], json!("+33612345678"));
    assert_eq!(json["extension"], json!("890"));
    assert_eq!(json["backup_phone"], json!("+12015550123"));
    assert_eq!(json["method"], json!("sms"));

    // An extension alone changes the current number's.
    env.cli_ok(&["user", "set", "ada", "--extension", "12"], "");
    let json: Value =
        serde_json::from_str(&env.cli_ok(&["user", "show", "ada", "--json"], "")).unwrap();
    assert_eq!(json["phone"], json!("+33612345678"));
    assert_eq!(json["extension"], json!("12"));
    assert_eq!(json["backup_phone"], json!("+12015550123"));

    let audit = env.cli_ok(&["audit", "tail", "-n", "50"], "");
    assert!(audit.contains("phone_changed"), "{audit}");
    assert!(audit.contains("method_changed"), "{audit}");
}

#[tokio::test]
async fn user_set_names_the_flag_at_fault_and_changes_nothing() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("ada", "correct horse battery");
    env.cli_ok(&["user", "set", "ada", "--phone", "+33 6 12 34 56 78"], "");
    let show = || env.cli_ok(&["user", "show", "ada", "--json"], "");
    let before = show();
    for (args, flag) in [
        (vec!["--phone", "06 12 34 56 78"], "--phone"),
        (vec!["--phone", "ring ring"], "--phone"),
        (vec!["--extension", "12a"], "--extension"),
        (
            vec![
                "--backup-phone",
                "+1 201-555-0123",
                "--backup-extension",
                "x-y",
            ],
            "--backup-extension",
        ),
        (vec!["--backup-extension", "12"], "--backup-extension"),
        (vec!["--backup-phone", "12"], "--backup-phone"),
        (vec!["--method", "oath"], "--method"),
        (vec!["--method", "telegram"], "--method"),
        (
            vec!["--email", "ada@example.com", "--phone", "ring ring"],
            "--phone",
        ),
    ] {
        let mut full = vec!["user", "set", "ada"];
        full.extend(args.iter().copied());
        let out = env.cli(&full, "");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(said.contains(flag), "{args:?}: {said}");
        assert_eq!(show(), before, "{args:?} changed nothing");
    }
    let out = env.cli(&["user", "set", "ada", "--method", "mobile_app"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("activated device"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The method needs its phone: clearing it is refused, with the way out.
    env.cli_ok(&["user", "set", "ada", "--method", "phone_call"], "");
    let out = env.cli(&["user", "set", "ada", "--clear-phone"], "");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--method"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn user_unblock_lifts_a_fraud_block_that_user_show_reports() {
    let run = running(Env::new(Backend::Sqlite).await).await;
    add_ada(&run.sdk).await;
    set_ada_phones(&run.sdk).await;
    let said = run.env.cli_ok(&["user", "unblock", "ada"], "");
    assert!(said.contains("ada was not blocked"), "{said}");
    ada_reports_fraud(&run).await;

    let shown = run.env.cli_ok(&["user", "show", "ada"], "");
    assert!(
        shown.contains("blocked:   after a fraud report, until")
            && shown.contains("twofold user unblock ada"),
        "{shown}"
    );
    let said = run.env.cli_ok(&["user", "unblock", "ada"], "");
    assert!(said.contains("unblocked ada"), "{said}");
    let shown = run.env.cli_ok(&["user", "show", "ada"], "");
    assert!(shown.contains("blocked:   no"), "{shown}");
    let audit = audit_tail(&run.env);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("user_unblocked") && l.contains("cli:tester")),
        "{audit}"
    );
    let unknown = run.env.cli(&["user", "unblock", "nobody"], "");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("user not found"));
}
