//! Phone calls and text messages through Twilio, end to end: the server places the call
//! or sends the text through the Twilio stand-in, which answers the call as a scenario says
//! (following the server's TwiML and posting the keys to its webhooks, signed as Twilio
//! signs), reports busy lines and missed calls, and delivers replies. On SQLite and
//! PostgreSQL, through the SDK and the portal, and on two nodes.

use crate::email;
use crate::smtp;
use crate::support::*;
use crate::twilio_standin::{CallScenario, TwilioStandIn};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const FROM: &str = "+15005550006";
const PUBLIC: &str = "https://mfa.example.test";
const PASSWORD: &str = "correct horse battery";
const ALICE_PHONE: &str = "+33612345678";
const BACKUP_PHONE: &str = "+33698765432";
const WAIT: Duration = Duration::from_secs(20);

/// A server whose calls and texts go through the stand-in, with an SDK account.
struct Phones {
    env: Env,
    stand_in: TwilioStandIn,
    server: Server,
    secret: String,
}

fn twilio_env(env: Env, stand_in: &TwilioStandIn) -> Env {
    env.set("TWOFOLD_CHANNELS__VOICE", "twilio")
        .set("TWOFOLD_CHANNELS__SMS", "twilio")
        .set("TWOFOLD_TWILIO__ACCOUNT_SID", SID)
        .set("TWOFOLD_TWILIO__AUTH_TOKEN", TOKEN)
        .set("TWOFOLD_TWILIO__FROM", FROM)
        .set("TWOFOLD_TWILIO__API_BASE", &stand_in.api_base())
        .set("TWOFOLD_TWILIO__PUBLIC_URL", PUBLIC)
        .set(
            "TWOFOLD_SETTINGS__SELECTABLE_METHODS",
            r#"["phone_call","sms","oath"]"#,
        )
}

impl Phones {
    async fn start(backend: Backend, configure: impl FnOnce(Env) -> Env) -> Phones {
        let stand_in = TwilioStandIn::start(SID, TOKEN).await;
        let env = configure(twilio_env(Env::new(backend).await, &stand_in));
        env.add_user("alice", PASSWORD);
        let secret = env
            .cli_ok(&["service-account", "add", "app1"], "")
            .trim()
            .to_owned();
        let server = env.start();
        stand_in.route(PUBLIC, std::slice::from_ref(&server.base));
        Phones {
            env,
            stand_in,
            server,
            secret,
        }
    }

    async fn sdk(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        sdk_call(&self.server, &self.secret, method, path, body).await
    }

    /// Gives `user` a phone (and a backup) and a method, as an administrator would.
    async fn give_phone(&self, user: &str, method: &str) {
        let (status, body) = self
            .sdk(
                reqwest::Method::PATCH,
                &format!("/sdk/v1/users/{user}"),
                Some(json!({ "phone": ALICE_PHONE, "method": method })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn set_pin(&self, user: &str, pin: &str) {
        let (status, body) = self
            .sdk(
                reqwest::Method::PUT,
                &format!("/sdk/v1/users/{user}/pin"),
                Some(json!({ "pin": pin })),
            )
            .await;
        assert!(status < 300, "{status} {body}");
    }

    async fn start_authentication(&self, body: Value) -> Value {
        let (status, started) = self
            .sdk(reqwest::Method::POST, "/sdk/v1/authentications", Some(body))
            .await;
        assert_eq!(status, 201, "{started}");
        started
    }

    /// Polls an authentication until it is no longer pending.
    async fn decided(&self, id: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (status, a) = self
                .sdk(
                    reqwest::Method::GET,
                    &format!("/sdk/v1/authentications/{id}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{a}");
            if a["state"] != "pending" {
                return a;
            }
            assert!(Instant::now() < deadline, "still pending: {a}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text the stand-in received for `to`, and its six-digit code.
    async fn texted_code(&self, to: &str) -> (String, String) {
        let text = self.stand_in.wait_for_text_to(to, WAIT).await;
        let body = text.get("Body").unwrap_or_default().to_owned();
        let code: String = body
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap_or_default()
            .to_owned();
        assert_eq!(code.len(), 6, "{body}");
        (body, code)
    }
}

async fn sdk_call(
    server: &Server,
    secret: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server
        .client()
        .request(method, server.url(path))
        .basic_auth("app1", Some(secret));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the SDK answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn answer(keys: &[&str]) -> CallScenario {
    CallScenario::Answer {
        keys: keys.iter().map(|k| (*k).to_owned()).collect(),
    }
}

async fn a_call_answered_with_the_pound_key_approves(backend: Backend) {
    let p = Phones::start(backend, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    p.stand_in.on_call(ALICE_PHONE, answer(&["#"]));
    let started = p
        .start_authentication(json!({ "username": "alice", "password": PASSWORD }))
        .await;
    assert_eq!(started["state"], "pending", "{started}");
    assert_eq!(started["next"], "phone_call", "{started}");
    let decided = p.decided(started["id"].as_str().unwrap()).await;
    assert_eq!(decided["state"], "approved", "{decided}");

    let sid = p.stand_in.wait_for_call_to(ALICE_PHONE, WAIT).await;
    let transcript = p.stand_in.wait_call_done(&sid, WAIT).await;
    let said = transcript.said_text();
    assert!(said.contains("Twofold"), "{said}");
    assert!(said.contains("pound key"), "{said}");
    assert!(said.contains("approved"), "{said}");
    assert!(transcript.said().iter().all(|(lang, _)| lang == "en-US"));
    assert!(
        transcript.webhook_statuses().iter().all(|s| *s < 300),
        "{transcript:?}"
    );
    let call = &p.stand_in.calls()[0];
    assert_eq!(call.get("To"), Some(ALICE_PHONE));
    assert_eq!(call.get("From"), Some(FROM));
}

#[tokio::test]
async fn a_call_answered_with_the_pound_key_approves_on_sqlite() {
    a_call_answered_with_the_pound_key_approves(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_call_answered_with_the_pound_key_approves_on_postgresql() {
    a_call_answered_with_the_pound_key_approves(Backend::Postgres).await;
}

#[tokio::test]
async fn a_french_user_is_greeted_in_french() {
    let p = Phones::start(Backend::Sqlite, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    let (status, body) = p
        .sdk(
            reqwest::Method::PATCH,
            "/sdk/v1/users/alice",
            Some(json!({ "language": "fr" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    p.stand_in.on_call(ALICE_PHONE, answer(&["#"]));
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    let decided = p.decided(started["id"].as_str().unwrap()).await;
    assert_eq!(decided["state"], "approved", "{decided}");
    let sid = p.stand_in.wait_for_call_to(ALICE_PHONE, WAIT).await;
    let transcript = p.stand_in.wait_call_done(&sid, WAIT).await;
    assert!(transcript.said().iter().all(|(lang, _)| lang == "fr-FR"));
    assert!(transcript.said_text().contains("dièse"));
}

async fn pin_mode_asks_for_the_pin_and_three_wrong_pins_deny(backend: Backend) {
    let p = Phones::start(backend, |e| {
        e.set("TWOFOLD_SETTINGS__PHONE_CALL_MODE", "pin")
    })
    .await;
    p.give_phone("alice", "phone_call").await;
    p.set_pin("alice", "4821").await;

    // The right PIN, after a wrong one.
    p.stand_in.on_call(ALICE_PHONE, answer(&["1111#", "4821#"]));
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    let decided = p.decided(started["id"].as_str().unwrap()).await;
    assert_eq!(decided["state"], "approved", "{decided}");
    let sid = p.stand_in.wait_for_call_to(ALICE_PHONE, WAIT).await;
    let said = p.stand_in.wait_call_done(&sid, WAIT).await.said_text();
    assert!(said.contains("type your PIN"), "{said}");
    assert!(said.contains("That PIN is not right"), "{said}");

    // Three wrong PINs: goodbye, denied.
    p.stand_in
        .on_call(ALICE_PHONE, answer(&["1111#", "2222#", "3333#", "4821#"]));
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    let decided = p.decided(started["id"].as_str().unwrap()).await;
    assert_eq!(decided["state"], "denied", "{decided}");
    assert_eq!(decided["reason"], "invalid_code", "{decided}");
    let sids = p.stand_in.call_sids_to(ALICE_PHONE);
    let transcript = p.stand_in.wait_call_done(sids.last().unwrap(), WAIT).await;
    assert_eq!(transcript.gathered().len(), 3, "{transcript:?}");
    assert!(transcript.said_text().contains("wrong too many times"));
    // The wrong PINs count towards lockout, like wrong codes.
    let audit = p.env.cli_ok(&["audit", "tail", "--lines", "50"], "");
    assert!(audit.matches("invalid_code").count() >= 3, "{audit}");
}

#[tokio::test]
async fn pin_mode_asks_for_the_pin_and_three_wrong_pins_deny_on_sqlite() {
    pin_mode_asks_for_the_pin_and_three_wrong_pins_deny(Backend::Sqlite).await;
}

#[tokio::test]
async fn pin_mode_asks_for_the_pin_and_three_wrong_pins_deny_on_postgresql() {
    pin_mode_asks_for_the_pin_and_three_wrong_pins_deny(Backend::Postgres).await;
}

#[tokio::test]
async fn the_fraud_code_then_1_blocks_the_user_and_emails_the_administrators() {
    let dir = tempfile::tempdir().unwrap();
    let mail = smtp::start(dir.path(), email::USERNAME, email::PASSWORD);
    let p = Phones::start(Backend::Sqlite, |e| {
        email::smtp_env(e, &mail, email::PASSWORD, true).set(
            "TWOFOLD_SETTINGS__FRAUD_ALERT_EMAILS",
            r#"["security@example.test"]"#,
        )
    })
    .await;
    p.give_phone("alice", "phone_call").await;
    p.stand_in.on_call(ALICE_PHONE, answer(&["0#", "1"]));
    let started = p
        .start_authentication(json!({ "username": "alice", "password": PASSWORD }))
        .await;
    let decided = p.decided(started["id"].as_str().unwrap()).await;
    assert_eq!(decided["state"], "fraud", "{decided}");
    let sid = p.stand_in.wait_for_call_to(ALICE_PHONE, WAIT).await;
    let said = p.stand_in.wait_call_done(&sid, WAIT).await.said_text();
    assert!(said.contains("press 1"), "{said}");
    assert!(said.contains("fraud is reported"), "{said}");

    // Blocked: the right password no longer starts anything.
    let (status, refused) = p
        .sdk(
            reqwest::Method::POST,
            "/sdk/v1/authentications",
            Some(json!({ "username": "alice", "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "fraud_blocked", "{refused}");
    assert_eq!(p.stand_in.calls().len(), 1, "no second call");

    // The administrators were told, by email.
    let deadline = Instant::now() + WAIT;
    let email = loop {
        if let Some(m) = mail.received().into_iter().find(|m| {
            m.rcpt_tos
                .iter()
                .any(|t| t.contains("security@example.test"))
        }) {
            break m;
        }
        assert!(Instant::now() < deadline, "no fraud email");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(email.subject, "Fraud reported by alice");
    assert!(
        email.body.contains("twofold user unblock alice"),
        "{}",
        email.body
    );
    let audit = p.env.cli_ok(&["audit", "tail", "--lines", "50"], "");
    assert!(audit.contains("fraud_reported"), "{audit}");
}

#[tokio::test]
async fn the_fraud_code_without_1_denies_without_blocking() {
    let p = Phones::start(Backend::Sqlite, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    p.stand_in.on_call(ALICE_PHONE, answer(&["0#", "2"]));
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    let decided = p.decided(started["id"].as_str().unwrap()).await;
    assert_eq!(decided["state"], "denied", "{decided}");
    let again = p.start_authentication(json!({ "username": "alice" })).await;
    assert_eq!(again["state"], "pending", "not blocked: {again}");
}

async fn a_busy_line_or_a_missed_call_denies_with_its_reason(backend: Backend) {
    let p = Phones::start(backend, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    for (scenario, reason) in [
        (CallScenario::Busy, "busy"),
        (CallScenario::NoAnswer, "no_answer"),
    ] {
        p.stand_in.on_call(ALICE_PHONE, scenario);
        let started = p.start_authentication(json!({ "username": "alice" })).await;
        let decided = p.decided(started["id"].as_str().unwrap()).await;
        assert_eq!(decided["state"], "denied", "{decided}");
        assert_eq!(decided["reason"], reason, "{decided}");
    }
}

#[tokio::test]
async fn a_busy_line_or_a_missed_call_denies_with_its_reason_on_sqlite() {
    a_busy_line_or_a_missed_call_denies_with_its_reason(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_busy_line_or_a_missed_call_denies_with_its_reason_on_postgresql() {
    a_busy_line_or_a_missed_call_denies_with_its_reason(Backend::Postgres).await;
}

async fn a_one_way_text_code_is_typed_and_used_once(backend: Backend) {
    let p = Phones::start(backend, |e| e).await;
    p.give_phone("alice", "sms").await;
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    assert_eq!(started["next"], "text_code", "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let (body, code) = p.texted_code(ALICE_PHONE).await;
    assert!(body.starts_with("Twofold"), "{body}");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, refused) = p
        .sdk(
            reqwest::Method::POST,
            &format!("/sdk/v1/authentications/{id}/answer"),
            Some(json!({ "otp": wrong })),
        )
        .await;
    assert_eq!(status, 401, "{refused}");
    let (status, approved) = p
        .sdk(
            reqwest::Method::POST,
            &format!("/sdk/v1/authentications/{id}/answer"),
            Some(json!({ "otp": code })),
        )
        .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "approved", "{approved}");
    // Used once: the same code again finds the authentication over.
    let (status, again) = p
        .sdk(
            reqwest::Method::POST,
            &format!("/sdk/v1/authentications/{id}/answer"),
            Some(json!({ "otp": code })),
        )
        .await;
    assert_eq!(status, 409, "{again}");
    let text = &p.stand_in.messages()[0];
    assert_eq!(text.get("To"), Some(ALICE_PHONE));
    assert!(
        text.get("StatusCallback")
            .is_some_and(|u| u.starts_with(PUBLIC))
    );
}

#[tokio::test]
async fn a_one_way_text_code_is_typed_and_used_once_on_sqlite() {
    a_one_way_text_code_is_typed_and_used_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_one_way_text_code_is_typed_and_used_once_on_postgresql() {
    a_one_way_text_code_is_typed_and_used_once(Backend::Postgres).await;
}

#[tokio::test]
async fn a_two_way_reply_approves_and_a_reply_from_another_number_changes_nothing() {
    let p = Phones::start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_SETTINGS__SMS_MODE", "two_way")
    })
    .await;
    p.give_phone("alice", "sms").await;
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    assert_eq!(started["next"], "text_reply", "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let (body, code) = p.texted_code(ALICE_PHONE).await;
    assert!(body.contains("reply"), "{body}");
    let sms_hook = format!("{PUBLIC}/hooks/twilio/sms");

    // The right code from another number: nothing happens.
    let (status, _) = p
        .stand_in
        .send_inbound_text(&sms_hook, "+33611111111", FROM, &code)
        .await;
    assert_eq!(status, 200);
    let (_, still) = p
        .sdk(
            reqwest::Method::GET,
            &format!("/sdk/v1/authentications/{id}"),
            None,
        )
        .await;
    assert_eq!(still["state"], "pending", "{still}");

    // STOP is acknowledged, never taken for a code.
    let (status, reply) = p
        .stand_in
        .send_inbound_text(&sms_hook, ALICE_PHONE, FROM, "STOP")
        .await;
    assert_eq!(status, 200);
    assert!(reply.contains("<Message>"), "{reply}");

    // The code from Alice's phone approves.
    let (status, reply) = p
        .stand_in
        .send_inbound_text(&sms_hook, ALICE_PHONE, FROM, &code)
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("approved"), "{reply}");
    let decided = p.decided(&id).await;
    assert_eq!(decided["state"], "approved", "{decided}");
}

#[tokio::test]
async fn a_two_way_reply_with_the_pin_approves_and_without_it_does_not() {
    let p = Phones::start(Backend::Postgres, |e| {
        e.set("TWOFOLD_SETTINGS__SMS_MODE", "two_way_pin")
    })
    .await;
    p.give_phone("alice", "sms").await;
    p.set_pin("alice", "4821").await;
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let (body, code) = p.texted_code(ALICE_PHONE).await;
    assert!(body.contains("PIN"), "{body}");
    let sms_hook = format!("{PUBLIC}/hooks/twilio/sms");
    let (_, reply) = p
        .stand_in
        .send_inbound_text(&sms_hook, ALICE_PHONE, FROM, &code)
        .await;
    assert!(reply.contains("does not approve"), "{reply}");
    let (_, reply) = p
        .stand_in
        .send_inbound_text(&sms_hook, ALICE_PHONE, FROM, &format!("{code} 4821"))
        .await;
    assert!(reply.contains("approved"), "{reply}");
    assert_eq!(p.decided(&id).await["state"], "approved");
}

#[tokio::test]
async fn a_text_to_the_backup_phone_goes_there() {
    let p = Phones::start(Backend::Sqlite, |e| e).await;
    p.give_phone("alice", "sms").await;
    let (status, body) = p
        .sdk(
            reqwest::Method::PUT,
            "/sdk/v1/users/alice/phones",
            Some(json!({
                "primary": { "number": ALICE_PHONE },
                "backup": { "number": BACKUP_PHONE }
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let started = p
        .start_authentication(json!({ "username": "alice", "phone": "backup" }))
        .await;
    assert_eq!(started["next"], "text_code", "{started}");
    p.texted_code(BACKUP_PHONE).await;
    assert!(
        p.stand_in
            .messages()
            .iter()
            .all(|m| m.get("To") == Some(BACKUP_PHONE))
    );
}

#[tokio::test]
async fn a_bad_signature_or_a_replayed_webhook_is_refused_and_changes_nothing() {
    let p = Phones::start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_SETTINGS__SMS_MODE", "two_way")
    })
    .await;
    p.give_phone("alice", "sms").await;
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let (_, code) = p.texted_code(ALICE_PHONE).await;
    let sms_hook = format!("{PUBLIC}/hooks/twilio/sms");
    let params = p.stand_in.inbound_text_params(ALICE_PHONE, FROM, &code);

    // Signed with another token, unsigned, or signed over other parameters: 403.
    let forged =
        twofold_server::channels::twilio::signature::signature("not-the-token", &sms_hook, &params);
    let (status, _) = p
        .stand_in
        .post_with_signature(&sms_hook, &params, Some(&forged))
        .await;
    assert_eq!(status, 403);
    let (status, _) = p
        .stand_in
        .post_with_signature(&sms_hook, &params, None)
        .await;
    assert_eq!(status, 403);
    let other = p.stand_in.inbound_text_params(ALICE_PHONE, FROM, "000000");
    let signed_other = p.stand_in.sign(&sms_hook, &other);
    let (status, _) = p
        .stand_in
        .post_with_signature(&sms_hook, &params, Some(&signed_other))
        .await;
    assert_eq!(status, 403);
    let (_, still) = p
        .sdk(
            reqwest::Method::GET,
            &format!("/sdk/v1/authentications/{id}"),
            None,
        )
        .await;
    assert_eq!(still["state"], "pending", "{still}");
    assert_eq!(still["attempts"].as_u64().unwrap_or(0), 0, "{still}");

    // The genuine webhook approves; the same webhook again is refused.
    let (status, _) = p.stand_in.post_signed(&sms_hook, &params).await;
    assert_eq!(status, 200);
    assert_eq!(p.decided(&id).await["state"], "approved");
    let (status, _) = p.stand_in.post_signed(&sms_hook, &params).await;
    assert_eq!(status, 403);

    // A status callback for an unknown authentication: 403.
    let status_params = vec![
        (
            "CallSid".to_owned(),
            "CA00000000000000000000000000000000".to_owned(),
        ),
        ("CallStatus".to_owned(), "busy".to_owned()),
    ];
    let (status, _) = p
        .stand_in
        .post_signed(
            &format!("{PUBLIC}/hooks/twilio/call-status/no-such-authentication"),
            &status_params,
        )
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_replayed_or_overtaken_gather_cannot_count_twice() {
    let p = Phones::start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_SETTINGS__PHONE_CALL_MODE", "pin")
    })
    .await;
    p.give_phone("alice", "phone_call").await;
    p.set_pin("alice", "4821").await;
    // The stand-in's own call waits: this test plays Twilio's webhooks itself.
    p.stand_in.set_call_delay(Duration::from_secs(60));
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    let id = started["id"].as_str().unwrap().to_owned();
    let call = p.stand_in.calls()[0].clone();
    let call_params = vec![
        ("CallSid".to_owned(), call.sid.clone().unwrap_or_default()),
        ("CallStatus".to_owned(), "in-progress".to_owned()),
        ("From".to_owned(), FROM.to_owned()),
        ("To".to_owned(), ALICE_PHONE.to_owned()),
    ];
    let (status, twiml) = p
        .stand_in
        .post_signed(&format!("{PUBLIC}/hooks/twilio/voice/{id}"), &call_params)
        .await;
    assert_eq!(status, 200, "{twiml}");
    let action = twiml
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    assert!(action.starts_with(PUBLIC), "{action}");
    let mut wrong_pin = call_params.clone();
    wrong_pin.push(("Digits".to_owned(), "1111".to_owned()));
    wrong_pin.push(("FinishedOnKey".to_owned(), "#".to_owned()));
    let (status, again) = p.stand_in.post_signed(&action, &wrong_pin).await;
    assert_eq!(status, 200, "{again}");
    assert!(again.contains("That PIN is not right"), "{again}");

    // The same webhook again: refused.
    let (status, _) = p.stand_in.post_signed(&action, &wrong_pin).await;
    assert_eq!(status, 403);
    // The old prompt answered again with other keys (a new webhook, validly signed): its
    // version is stale, refused.
    let mut other = call_params.clone();
    other.push(("Digits".to_owned(), "2222".to_owned()));
    other.push(("FinishedOnKey".to_owned(), "#".to_owned()));
    let (status, _) = p.stand_in.post_signed(&action, &other).await;
    assert_eq!(status, 403);
    let audit = p.env.cli_ok(&["audit", "tail", "--lines", "50"], "");
    assert_eq!(audit.matches("invalid_code").count(), 1, "{audit}");

    // The new prompt takes the right PIN.
    let next_action = again
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let mut right_pin = call_params.clone();
    right_pin.push(("Digits".to_owned(), "4821".to_owned()));
    right_pin.push(("FinishedOnKey".to_owned(), "#".to_owned()));
    let (status, done) = p.stand_in.post_signed(&next_action, &right_pin).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("<Hangup/>"), "{done}");
    assert_eq!(p.decided(&id).await["state"], "approved");
}

#[tokio::test]
async fn the_hourly_limit_per_number_stops_calls_before_the_provider_is_asked() {
    let p = Phones::start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_SETTINGS__PHONE_SENDS_PER_NUMBER_HOUR", "2")
    })
    .await;
    p.give_phone("alice", "sms").await;
    for _ in 0..2 {
        let started = p.start_authentication(json!({ "username": "alice" })).await;
        assert_eq!(started["state"], "pending", "{started}");
    }
    let third = p.start_authentication(json!({ "username": "alice" })).await;
    assert_eq!(third["state"], "denied", "{third}");
    assert_eq!(third["reason"], "rate_limited", "{third}");
    p.stand_in.wait_for_text_to(ALICE_PHONE, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.stand_in.messages().len(), 2, "no third text was sent");
    let audit = p.env.cli_ok(&["audit", "tail", "--lines", "50"], "");
    assert!(audit.contains("limit_number"), "{audit}");
}

#[tokio::test]
async fn a_country_not_allowed_is_never_called() {
    let p = Phones::start(Backend::Sqlite, |e| {
        e.set("TWOFOLD_SETTINGS__SMS_ALLOWED_COUNTRIES", r#"["BE"]"#)
    })
    .await;
    p.give_phone("alice", "phone_call").await;
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    assert_eq!(started["state"], "denied", "{started}");
    assert_eq!(started["reason"], "country_not_allowed", "{started}");
    assert!(p.stand_in.calls().is_empty());
}

#[tokio::test]
async fn an_unreachable_twilio_denies_with_provider_unavailable() {
    let p = Phones::start(Backend::Sqlite, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    p.stand_in.set_unreachable(true);
    let started = p.start_authentication(json!({ "username": "alice" })).await;
    assert_eq!(started["state"], "denied", "{started}");
    assert_eq!(started["reason"], "provider_unavailable", "{started}");
}

#[tokio::test]
async fn a_webhook_landing_on_the_other_node_of_two_is_taken() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let env = twilio_env(
        Env::new(Backend::Postgres).await.set(
            "TWOFOLD_SECRETS__KEY",
            "5f0c2a9e7d41b38c6e15a02f94d7b3c8e1a6f05d29c4b7e830f1d6a2c5b98e47",
        ),
        &stand_in,
    )
    .set("TWOFOLD_SETTINGS__PHONE_CALL_MODE", "pin");
    env.add_user("alice", PASSWORD);
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    let a = env.start();
    let b = env.start_another_node("node-b");
    // Every webhook goes to node B; the authentication starts on node A.
    stand_in.route(PUBLIC, std::slice::from_ref(&b.base));
    let (status, body) = sdk_call(
        &a,
        &secret,
        reqwest::Method::PATCH,
        "/sdk/v1/users/alice",
        Some(json!({ "phone": ALICE_PHONE, "method": "phone_call" })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = sdk_call(
        &a,
        &secret,
        reqwest::Method::PUT,
        "/sdk/v1/users/alice/pin",
        Some(json!({ "pin": "4821" })),
    )
    .await;
    assert!(status < 300, "{status} {body}");
    stand_in.on_call(ALICE_PHONE, answer(&["9999#", "4821#"]));
    let (status, started) = sdk_call(
        &a,
        &secret,
        reqwest::Method::POST,
        "/sdk/v1/authentications",
        Some(json!({ "username": "alice" })),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let id = started["id"].as_str().unwrap();
    let sid = stand_in.wait_for_call_to(ALICE_PHONE, WAIT).await;
    let transcript = stand_in.wait_call_done(&sid, WAIT).await;
    assert!(
        stand_in
            .webhooks()
            .iter()
            .all(|w| w.sent_to.starts_with(&b.base)),
        "{transcript:?}"
    );
    let (_, decided) = sdk_call(
        &a,
        &secret,
        reqwest::Method::GET,
        &format!("/sdk/v1/authentications/{id}"),
        None,
    )
    .await;
    assert_eq!(decided["state"], "approved", "{decided} {transcript:?}");
}

#[tokio::test]
async fn a_portal_sign_in_waits_for_the_call_and_continues_once_answered() {
    let p = Phones::start(Backend::Sqlite, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    p.stand_in.on_call(ALICE_PHONE, answer(&["#"]));
    let client = p.server.client();
    let signed = sign_in(&client, &p.server, "alice", PASSWORD).await;
    assert_eq!(location(&signed), "/verify");
    let page = client
        .get(p.server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Calling +33 6 •• •• •• 78"), "{page}");
    assert!(
        page.contains("data-status-url=\"/verify/phone/status\""),
        "{page}"
    );
    let sid = p.stand_in.wait_for_call_to(ALICE_PHONE, WAIT).await;
    p.stand_in.wait_call_done(&sid, WAIT).await;
    let status: Value = client
        .get(p.server.url("/verify/phone/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["decided"], true, "{status}");
    let token = input_value(&page, "csrf_token").unwrap();
    let done = client
        .post(p.server.url("/verify/phone"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account");
    let account = client.get(p.server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200);
}

#[tokio::test]
async fn a_portal_sign_in_whose_call_is_busy_says_so() {
    let p = Phones::start(Backend::Sqlite, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    p.stand_in.on_call(ALICE_PHONE, CallScenario::Busy);
    let client = p.server.client();
    sign_in(&client, &p.server, "alice", PASSWORD).await;
    let page = client
        .get(p.server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let status: Value = client
            .get(p.server.url("/verify/phone/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["decided"] == true {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended = client
        .post(p.server.url("/verify/phone"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 401);
    let text = ended.text().await.unwrap();
    assert!(text.contains("The line was busy"), "{text}");
    let account = client.get(p.server.url("/account")).send().await.unwrap();
    assert_ne!(account.status(), 200, "not signed in");
}

#[tokio::test]
async fn use_my_backup_phone_calls_the_backup_and_it_signs_in() {
    let p = Phones::start(Backend::Sqlite, |e| e).await;
    p.give_phone("alice", "phone_call").await;
    let (status, body) = p
        .sdk(
            reqwest::Method::PUT,
            "/sdk/v1/users/alice/phones",
            Some(json!({
                "primary": { "number": ALICE_PHONE },
                "backup": { "number": BACKUP_PHONE }
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The primary phone rings on and on (its call never gets going here).
    p.stand_in.set_call_delay(Duration::from_secs(120));
    p.stand_in.on_call(BACKUP_PHONE, answer(&["#"]));
    let client = p.server.client();
    sign_in(&client, &p.server, "alice", PASSWORD).await;
    let page = client
        .get(p.server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("action=\"/verify/backup-phone\""), "{page}");
    p.stand_in.set_call_delay(Duration::from_millis(150));
    let token = input_value(&page, "csrf_token").unwrap();
    let again = client
        .post(p.server.url("/verify/backup-phone"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/verify");
    let sid = p.stand_in.wait_for_call_to(BACKUP_PHONE, WAIT).await;
    p.stand_in.wait_call_done(&sid, WAIT).await;
    let page = client
        .get(p.server.url("/verify"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&page, "csrf_token").unwrap();
    let done = client
        .post(p.server.url("/verify/phone"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account");
    let calls: Vec<_> = p
        .stand_in
        .calls()
        .iter()
        .filter_map(|c| c.get("To").map(str::to_owned))
        .collect();
    assert_eq!(calls, [ALICE_PHONE, BACKUP_PHONE]);
}
