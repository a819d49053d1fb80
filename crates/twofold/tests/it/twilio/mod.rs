//! The Twilio channel against the Twilio stand-in (its REST requests, its failures), and
//! `twofold serve` with `[twilio]`. `webhooks`: the stand-in against a small site of
//! webhooks that checks every signature with the product's own check: each side checks
//! the other.

mod site;
mod webhooks;

use site::Site;

use crate::support::{Backend, Env};
use crate::twilio_standin::{CallEvent, CallScenario, TextScenario, TwilioStandIn};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use twofold_engine::Language;
use twofold_server::channels::twilio::signature;
use twofold_server::channels::{
    DeliveryError, PhoneCall, TextChannel, TextMessage, TwilioChannel, TwilioConfig, VoiceChannel,
};
use twofold_server::config::Secret;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const FROM: &str = "+15005550006";
const WAIT: Duration = Duration::from_secs(20);

fn config(stand_in: &TwilioStandIn, public_url: &str) -> TwilioConfig {
    TwilioConfig {
        account_sid: SID.into(),
        auth_token: Some(Secret::new(TOKEN)),
        from: Some(FROM.into()),
        api_base: stand_in.api_base(),
        public_url: format!("{public_url}/"),
        ..TwilioConfig::default()
    }
}

fn channel(config: &TwilioConfig) -> TwilioChannel {
    TwilioChannel::from_config(config).unwrap()
}

fn phone_call(authentication_id: &str, to: &str, extension: Option<&str>) -> PhoneCall {
    PhoneCall {
        authentication_id: authentication_id.into(),
        to: to.into(),
        extension: extension.map(str::to_owned),
        language: Language::default(),
        say: "Press pound to sign in.".into(),
        expect: None,
    }
}

fn text(authentication_id: Option<&str>, to: &str) -> TextMessage {
    TextMessage {
        authentication_id: authentication_id.map(str::to_owned),
        to: to.into(),
        body: "Example Corp: your code is 123456".into(),
        reply_expected: false,
    }
}

#[tokio::test]
async fn a_twilio_call_sends_every_parameter_with_basic_auth() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    stand_in.on_call("+33612345678", CallScenario::Busy);
    let twilio = channel(&config(&stand_in, "https://mfa.example.com"));

    let id = twilio
        .call(&phone_call("au_42", "+33612345678", None))
        .await
        .unwrap();

    let calls = stand_in.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.path, format!("/2010-04-01/Accounts/{SID}/Calls.json"));
    assert_eq!(call.basic_credentials(), Some((SID.into(), TOKEN.into())));
    assert_eq!(call.status, 201);
    assert_eq!(call.sid.as_deref(), Some(id.as_str()));
    assert!(
        id.as_str().starts_with("CA") && id.as_str().len() == 34,
        "{id}"
    );
    assert_eq!(call.get("To"), Some("+33612345678"));
    assert_eq!(call.get("From"), Some(FROM));
    assert_eq!(
        call.get("Url"),
        Some("https://mfa.example.com/hooks/twilio/voice/au_42")
    );
    assert_eq!(call.get("Method"), Some("POST"));
    assert_eq!(
        call.get("StatusCallback"),
        Some("https://mfa.example.com/hooks/twilio/call-status/au_42")
    );
    assert_eq!(
        call.all("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    assert_eq!(call.get("StatusCallbackMethod"), Some("POST"));
    assert_eq!(call.get("Timeout"), Some("30"));
    assert_eq!(call.get("SendDigits"), None);
}

#[tokio::test]
async fn an_extension_is_dialled_after_the_call_is_answered() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let site = Site::start(
        TOKEN,
        &[("/hooks/twilio/voice/au_7", "<Response><Hangup/></Response>")],
    )
    .await;
    let twilio = channel(&config(&stand_in, site.base()));

    let id = twilio
        .call(&phone_call("au_7", "+33612345678", Some("890")))
        .await
        .unwrap();

    assert_eq!(stand_in.calls()[0].get("SendDigits"), Some("wwww890"));
    assert_eq!(
        stand_in.wait_for_call_to("+33612345678", WAIT).await,
        id.as_str()
    );
    let transcript = stand_in.wait_call_done(id.as_str(), WAIT).await;
    let answered = transcript
        .events
        .iter()
        .position(|e| {
            *e == CallEvent::StatusCallback {
                call_status: "in-progress".into(),
                status: 200,
            }
        })
        .unwrap();
    let dialled = transcript
        .events
        .iter()
        .position(|e| *e == CallEvent::SentDigits("wwww890".into()))
        .unwrap();
    assert!(answered < dialled, "{transcript:?}");
}

#[tokio::test]
async fn a_text_without_a_from_number_goes_through_the_messaging_service() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let mut config = config(&stand_in, "https://mfa.example.com");
    config.from = None;
    config.messaging_service_sid = Some("MG0123456789abcdef0123456789abcdef".into());
    let twilio = channel(&config);

    let id = twilio
        .send_text(&text(Some("au_9"), "+33612345678"))
        .await
        .unwrap();
    twilio.send_text(&text(None, "+33612345679")).await.unwrap();

    let messages = stand_in.messages();
    assert_eq!(messages.len(), 2);
    let first = &messages[0];
    assert_eq!(
        first.path,
        format!("/2010-04-01/Accounts/{SID}/Messages.json")
    );
    assert_eq!(first.basic_credentials(), Some((SID.into(), TOKEN.into())));
    assert_eq!(first.sid.as_deref(), Some(id.as_str()));
    assert!(
        id.as_str().starts_with("SM") && id.as_str().len() == 34,
        "{id}"
    );
    assert_eq!(first.get("To"), Some("+33612345678"));
    assert_eq!(first.get("From"), None);
    assert_eq!(
        first.get("MessagingServiceSid"),
        Some("MG0123456789abcdef0123456789abcdef")
    );
    assert_eq!(first.get("Body"), Some("Example Corp: your code is 123456"));
    assert_eq!(
        first.get("StatusCallback"),
        Some("https://mfa.example.com/hooks/twilio/message-status/au_9")
    );
    // A text that belongs to no authentication asks for no status.
    assert_eq!(messages[1].get("StatusCallback"), None);
}

#[tokio::test]
async fn a_text_from_a_number_names_it_as_from() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let mut config = config(&stand_in, "https://mfa.example.com");
    config.messaging_service_sid = Some("MG0123456789abcdef0123456789abcdef".into());
    channel(&config)
        .send_text(&text(None, "+33612345678"))
        .await
        .unwrap();
    let message = &stand_in.messages()[0];
    assert_eq!(message.get("From"), Some(FROM));
    assert_eq!(message.get("MessagingServiceSid"), None);
}

#[tokio::test]
async fn twilios_error_answer_becomes_a_permanent_failure_naming_the_code() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let twilio = channel(&config(&stand_in, "https://mfa.example.com"));

    let err = twilio
        .call(&phone_call("au_1", "+0612", None))
        .await
        .unwrap_err();

    let DeliveryError::Permanent(message) = &err else {
        panic!("expected a permanent failure: {err:?}");
    };
    assert!(
        message.starts_with("Twilio refused the call to +0612 (HTTP 400): 21211 "),
        "{message}"
    );
    assert!(message.contains("21211"), "{message}");
    assert!(
        message.contains("https://www.twilio.com/docs/errors/21211"),
        "{message}"
    );
    // A refusal is not tried again.
    assert_eq!(stand_in.calls().len(), 1);

    stand_in.fail_next_requests(1, 400, 21610, "Attempt to send to unsubscribed recipient");
    let err = twilio
        .send_text(&text(None, "+33612345678"))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    assert!(
        err.to_string()
            .contains("21610 Attempt to send to unsubscribed recipient"),
        "{err}"
    );
    assert_eq!(stand_in.messages().len(), 1);
}

#[tokio::test]
async fn a_twilio_api_failing_twice_is_retried_and_the_third_try_succeeds() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    stand_in.on_call("+33612345678", CallScenario::Busy);
    let twilio = channel(&config(&stand_in, "https://mfa.example.com"));

    stand_in.fail_next_requests(2, 500, 20500, "Internal Server Error");
    let id = twilio
        .call(&phone_call("au_1", "+33612345678", None))
        .await
        .unwrap();
    let statuses: Vec<u16> = stand_in.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 500, 201]);
    assert_eq!(stand_in.calls()[2].sid.as_deref(), Some(id.as_str()));

    // Too many requests (429) and an overloaded API (503) are tried again too.
    stand_in.fail_next_requests(1, 429, 20429, "Too Many Requests");
    stand_in.fail_next_requests(1, 503, 20503, "Service Unavailable");
    twilio.send_text(&text(None, "+33612345678")).await.unwrap();
    let statuses: Vec<u16> = stand_in.messages().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 503, 201]);
}

#[tokio::test]
async fn an_unreachable_twilio_api_is_a_transient_failure_after_three_tries() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let twilio = channel(&config(&stand_in, "https://mfa.example.com"));

    stand_in.set_unreachable(true);
    let started = Instant::now();
    let err = twilio
        .call(&phone_call("au_1", "+33612345678", None))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("3 attempts"), "{err}");
    assert_eq!(stand_in.dropped_connections(), 3);
    // Waiting between tries: 250 ms, then 750 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    assert!(stand_in.calls().is_empty());

    // An API that keeps answering 503 fails the same way, after three requests.
    stand_in.set_unreachable(false);
    stand_in.fail_next_requests(3, 503, 20503, "Service Unavailable");
    let err = twilio
        .send_text(&text(None, "+33612345678"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(stand_in.messages().len(), 3);
}

#[tokio::test]
async fn any_answer_from_the_twilio_api_is_described_never_a_panic() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let twilio = channel(&config(&stand_in, "https://mfa.example.com"));
    let call = phone_call("au_1", "+33612345678", None);

    // A proxy's HTML page for a 502, three times: the API is unavailable.
    for _ in 0..3 {
        stand_in.answer_next_request_with(
            502,
            "text/html",
            "<html><body>Bad Gateway</body></html>",
        );
    }
    let err = twilio.call(&call).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("Bad Gateway"), "{err}");

    // Refusals whose body is not Twilio's error answer.
    for (status, content_type, body, expected) in [
        (
            400,
            "application/json",
            r#"{"code": 212"#,
            "not Twilio's error answer",
        ),
        (400, "text/plain", "", "(empty body)"),
        (404, "text/html", "<h1>Not Found</h1>\u{0}\n", "Not Found"),
        (201, "application/json", "", "without the sid"),
        (
            201,
            "application/json",
            r#"{"sid": "CA12"#,
            "without the sid",
        ),
        (
            200,
            "text/html",
            "<html>captive portal</html>",
            "captive portal",
        ),
    ] {
        stand_in.answer_next_request_with(status, content_type, body);
        let err = twilio.call(&call).await.unwrap_err();
        assert!(!err.is_transient(), "{status} {body:?}: {err:?}");
        assert!(
            err.to_string().contains(expected),
            "{status} {body:?}: {err}"
        );
    }
    // A huge body is cut short in the message.
    stand_in.answer_next_request_with(400, "text/plain", &"x".repeat(100_000));
    let err = twilio.call(&call).await.unwrap_err();
    assert!(err.to_string().len() < 500, "{}", err.to_string().len());
}

#[tokio::test]
async fn wrong_twilio_credentials_are_a_permanent_failure_naming_the_keys() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let mut config = config(&stand_in, "https://mfa.example.com");
    config.auth_token = Some(Secret::new("not-the-token"));
    let twilio = channel(&config);

    let err = twilio
        .call(&phone_call("au_1", "+33612345678", None))
        .await
        .unwrap_err();

    let DeliveryError::Permanent(message) = &err else {
        panic!("expected a permanent failure: {err:?}");
    };
    assert!(message.contains("20003"), "{message}");
    assert!(message.contains("twilio.account_sid"), "{message}");
    assert!(message.contains("twilio.auth_token"), "{message}");
    assert!(!message.contains("not-the-token"), "{message}");
    let calls = stand_in.calls();
    assert_eq!(calls.len(), 1, "credentials refused are not tried again");
    assert_eq!(calls[0].status, 401);
    assert!(calls[0].sid.is_none());
}

#[tokio::test]
async fn the_stand_in_refuses_what_twilio_refuses_with_twilios_codes() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let http = reqwest::Client::new();
    let calls = format!(
        "{}/2010-04-01/Accounts/{SID}/Calls.json",
        stand_in.api_base()
    );
    let messages = format!(
        "{}/2010-04-01/Accounts/{SID}/Messages.json",
        stand_in.api_base()
    );
    let post = |url: String, user: &str, password: &str, form: &[(&str, &str)]| {
        let request = http.post(url).basic_auth(user, Some(password)).form(form);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body["code"].as_u64().unwrap_or(0), body)
        }
    };
    let call = [
        ("To", "+33612345678"),
        ("From", FROM),
        ("Url", "https://mfa.example.com/hooks/twilio/voice/au_1"),
    ];
    let without = |name: &str| -> Vec<(&str, &str)> {
        call.iter().copied().filter(|(k, _)| *k != name).collect()
    };
    type Case<'a> = (String, &'a str, &'a str, Vec<(&'a str, &'a str)>, u16, u64);
    let cases: Vec<Case> = vec![
        (calls.clone(), SID, "wrong", call.to_vec(), 401, 20003),
        (calls.clone(), "ACother", TOKEN, call.to_vec(), 401, 20003),
        (
            calls.replace(SID, "AC0000"),
            SID,
            TOKEN,
            call.to_vec(),
            404,
            20404,
        ),
        (calls.clone(), SID, TOKEN, without("To"), 400, 21201),
        (calls.clone(), SID, TOKEN, without("From"), 400, 21213),
        (calls.clone(), SID, TOKEN, without("Url"), 400, 21205),
        (
            messages.clone(),
            SID,
            TOKEN,
            vec![("From", FROM), ("Body", "hi")],
            400,
            21604,
        ),
        (
            messages.clone(),
            SID,
            TOKEN,
            vec![("To", "+33612345678"), ("Body", "hi")],
            400,
            21603,
        ),
        (
            messages.clone(),
            SID,
            TOKEN,
            vec![("To", "+33612345678"), ("From", FROM)],
            400,
            21602,
        ),
        (
            messages.clone(),
            SID,
            TOKEN,
            vec![("To", "12"), ("From", FROM), ("Body", "hi")],
            400,
            21211,
        ),
    ];
    for (url, user, password, form, status, code) in cases {
        let (got_status, got_code, body) = post(url.clone(), user, password, &form).await;
        assert_eq!(
            (got_status, got_code),
            (status, code),
            "{url} {form:?}: {body}"
        );
        assert_eq!(
            body["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}"),
            "{body}"
        );
    }
    assert!(stand_in.requests().iter().all(|r| r.sid.is_none()));
    let (status, _, body) = post(calls.clone(), SID, TOKEN, &call).await;
    assert_eq!(status, 201);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["to"], "+33612345678");
    assert_eq!(body["from"], FROM);
}

fn twilio_env(env: Env, api_base: &str) -> Env {
    env.set("TWOFOLD_CHANNELS__VOICE", "twilio")
        .set("TWOFOLD_CHANNELS__SMS", "twilio")
        .set("TWOFOLD_TWILIO__ACCOUNT_SID", SID)
        .set("TWOFOLD_TWILIO__AUTH_TOKEN", TOKEN)
        .set("TWOFOLD_TWILIO__FROM", FROM)
        .set("TWOFOLD_TWILIO__API_BASE", api_base)
        .set("TWOFOLD_TWILIO__PUBLIC_URL", "https://mfa.example.com")
}

#[tokio::test]
async fn serve_refuses_twilio_settings_that_cannot_work_and_names_the_fix() {
    let env = twilio_env(Env::new(Backend::Sqlite).await, "http://api.twilio.com");
    let err = env.start_fails();
    assert!(
        err.contains("twilio.api_base") && err.contains("Fix:"),
        "{err}"
    );
    assert!(!err.contains(TOKEN), "{err}");

    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_CHANNELS__SMS", "twilio");
    let err = env.start_fails();
    assert!(err.contains("[twilio]") && err.contains("Fix:"), "{err}");

    let env = twilio_env(Env::new(Backend::Sqlite).await, "https://api.twilio.com")
        .set("TWOFOLD_CHANNELS__EMAIL", "twilio");
    let err = env.start_fails();
    assert!(err.contains("channels.email = \"twilio\""), "{err}");

    let env = twilio_env(Env::new(Backend::Sqlite).await, "https://api.twilio.com")
        .set("TWOFOLD_TWILIO__PUBLIC_URL", "http://mfa.example.com");
    let err = env.start_fails();
    assert!(err.contains("twilio.public_url"), "{err}");
}

#[tokio::test]
async fn serve_starts_with_calls_and_texts_through_twilio_and_keeps_the_token_out_of_its_log() {
    let stand_in = TwilioStandIn::start(SID, TOKEN).await;
    let env = twilio_env(Env::new(Backend::Sqlite).await, &stand_in.api_base())
        .set("TWOFOLD_LOG__LEVEL", "debug");
    let server = env.start();
    let log = format!("{}{}", server.banner, server.stderr());
    assert!(log.contains("Twilio channel"), "{log}");
    assert!(log.contains(SID), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
    // Email still goes to the console, so the development inbox is still served.
    let inbox = server
        .client()
        .get(server.url("/dev/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(inbox.status(), 200);

    // The stand-in reaches the server over its self-signed HTTPS, through a public address
    // routed to it: whatever the server answers, it answered.
    stand_in.route(
        "https://mfa.example.test",
        std::slice::from_ref(&server.base),
    );
    let (status, body) = stand_in
        .send_inbound_text(
            "https://mfa.example.test/hooks/twilio/sms",
            "+33612345678",
            FROM,
            "1",
        )
        .await;
    assert_ne!(status, 0, "{body}");
    let sent = stand_in.webhooks().pop().unwrap();
    assert!(sent.sent_to.starts_with(&server.base), "{sent:?}");
}
