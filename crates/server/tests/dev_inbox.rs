//! `/dev/inbox` through the router: what the console channel sent shows there, answers go
//! to the application's inbound events, and nobody but a client on this machine gets
//! anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;
use twofold_engine::{Clock, Language, ManualClock, Settings};
use twofold_server::channels::{
    ConsoleChannel, DevInbox, DigitsExpected, Email, EmailChannel, InboundEvents, InboxEvents,
    MessageId, PhoneCall, TextChannel, TextMessage, VoiceChannel,
};
use twofold_server::config::{DatabaseTarget, HttpConfig};
use twofold_server::secrets::Keyring;
use twofold_server::service::InProcessService;
use twofold_server::store::Store;
use twofold_server::web::dev_inbox::DevInboxParts;
use twofold_server::web::ratelimit::SignInLimits;
use twofold_server::web::{WebParts, router};

const LOOPBACK: &str = "127.0.0.1:50123";

/// Inbound events as the application receives them, recorded for the test.
#[derive(Default)]
struct Recorded {
    calls: Mutex<Vec<(String, String)>>,
    texts: Mutex<Vec<(String, String)>>,
}

/// Hands each event to the inbox's own recorder too, so the page shows it.
struct Recording {
    seen: Arc<Recorded>,
    inbox_events: InboxEvents,
}

#[async_trait]
impl InboundEvents for Recording {
    async fn call_answered(&self, call: &MessageId, digits: &str) {
        self.seen
            .calls
            .lock()
            .unwrap()
            .push((call.0.clone(), digits.to_owned()));
        self.inbox_events.call_answered(call, digits).await;
    }
    async fn text_received(&self, from: &str, body: &str) {
        self.seen
            .texts
            .lock()
            .unwrap()
            .push((from.to_owned(), body.to_owned()));
        self.inbox_events.text_received(from, body).await;
    }
}

struct App {
    router: Router,
    console: ConsoleChannel,
    seen: Arc<Recorded>,
    _dir: tempfile::TempDir,
}

async fn app(with_inbox: bool) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &DatabaseTarget::Sqlite(dir.path().join("t.db")),
        4,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(1_764_633_600));
    store
        .seed_settings(&Settings::default(), clock.now())
        .await
        .unwrap();
    let service =
        Arc::new(InProcessService::new(store, clock.clone(), Keyring::for_tests([7; 32])).unwrap());
    let inbox = Arc::new(DevInbox::new(DevInbox::CAPACITY));
    let seen = Arc::new(Recorded::default());
    let events = Arc::new(Recording {
        seen: seen.clone(),
        inbox_events: InboxEvents::new(inbox.clone(), clock.clone()),
    });
    let router = router(WebParts {
        service: service.clone(),
        clock: clock.clone(),
        csrf_key: [9; 32],
        http: HttpConfig::default(),
        limits: Arc::new(SignInLimits::new(1000, 1000)),
        metrics: None,
        sdk: Some(service),
        tls: true,
        dev_inbox: with_inbox.then(|| DevInboxParts {
            inbox: inbox.clone(),
            events,
        }),
        twilio: None,
    });
    App {
        router,
        console: ConsoleChannel::new(inbox, clock),
        seen,
        _dir: dir,
    }
}

fn request(method: &str, path: &str, peer: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost:8443")
        .extension(ConnectInfo(peer.parse::<SocketAddr>().unwrap()))
}

async fn send(app: &App, request: Request<Body>) -> (StatusCode, String, Vec<String>) {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned(), cookies)
}

async fn page(app: &App, peer: &str) -> (StatusCode, String, Vec<String>) {
    send(
        app,
        request("GET", "/dev/inbox", peer)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

fn form_post(path: &str, peer: &str, cookie: &str, body: &str) -> Request<Body> {
    request("POST", path, peer)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn call_with_code() -> PhoneCall {
    PhoneCall {
        authentication_id: "a1".into(),
        to: "+33612345678".into(),
        extension: Some("890".into()),
        language: Language::En,
        say: "Your Twofold code is 4 8 1 5 1 6. Press pound to finish.".into(),
        expect: Some(DigitsExpected {
            max_digits: 8,
            finish_on_key: Some('#'),
            timeout_seconds: 10,
        }),
    }
}

#[tokio::test]
async fn the_inbox_shows_what_the_console_channel_sent_newest_first() {
    let app = app(true).await;
    let (status, html, _) = page(&app, LOOPBACK).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No messages yet."), "{html}");

    let call = app.console.call(&call_with_code()).await.unwrap();
    let text = app
        .console
        .send_text(&TextMessage {
            authentication_id: None,
            to: "+33698765432".into(),
            body: "Twofold: reply with 271828 to sign in".into(),
            reply_expected: true,
        })
        .await
        .unwrap();
    app.console
        .send_email(&Email {
            to: "alice@example.com".into(),
            subject: "Welcome to Twofold".into(),
            text_body: "Your portal: https://mfa.example.com/".into(),
        })
        .await
        .unwrap();
    let (status, html, _) = page(&app, LOOPBACK).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<h1>").count(), 1);
    assert!(
        html.contains("Development inbox: messages are not delivered; do not use in production.")
    );
    assert!(!html.contains("No messages yet."));
    for shown in [
        "Your Twofold code is 4 8 1 5 1 6.",
        "Phone call to +33612345678",
        "890",
        "up to 8 keys, ending with #",
        "Twofold: reply with 271828 to sign in",
        "Welcome to Twofold",
        "alice@example.com",
    ] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    let positions: Vec<usize> = ["Email to", text.as_str(), call.as_str()]
        .iter()
        .map(|s| html.find(s).unwrap())
        .collect();
    assert!(positions.is_sorted(), "newest first: {positions:?}");
    assert!(html.contains(&format!("action=\"/dev/inbox/{call}/answer\"")));
    assert!(html.contains(&format!("action=\"/dev/inbox/{text}/reply\"")));
}

#[tokio::test]
async fn the_inbox_speaks_french_to_a_french_browser() {
    let app = app(true).await;
    let (status, html, _) = send(
        &app,
        request("GET", "/dev/inbox", LOOPBACK)
            .header(header::ACCEPT_LANGUAGE, "fr-FR,fr;q=0.9")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"fr\">"));
    assert!(html.contains("ne pas utiliser en production"), "{html}");
    assert!(html.contains("Aucun message pour l’instant."), "{html}");
}

#[tokio::test]
async fn answering_a_call_and_replying_to_a_text_reach_the_application_and_show_on_the_page() {
    let app = app(true).await;
    let call = app.console.call(&call_with_code()).await.unwrap();
    let text = app
        .console
        .send_text(&TextMessage {
            authentication_id: None,
            to: "+33698765432".into(),
            body: "Reply with 271828".into(),
            reply_expected: true,
        })
        .await
        .unwrap();
    let (_, html, cookies) = page(&app, LOOPBACK).await;
    let cookie = cookies.join("; ");
    let token = csrf_token(&html);

    let (status, _, _) = send(
        &app,
        form_post(
            &format!("/dev/inbox/{call}/answer"),
            LOOPBACK,
            &cookie,
            &format!("csrf_token={token}&digits=481516%23"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = send(
        &app,
        form_post(
            &format!("/dev/inbox/{text}/reply"),
            LOOPBACK,
            &cookie,
            &format!("csrf_token={token}&body=271828+1234"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    assert_eq!(
        *app.seen.calls.lock().unwrap(),
        [(call.0.clone(), "481516#".to_owned())]
    );
    assert_eq!(
        *app.seen.texts.lock().unwrap(),
        [("+33698765432".to_owned(), "271828 1234".to_owned())]
    );
    let (_, html, _) = page(&app, LOOPBACK).await;
    assert!(html.contains("Answered with 481516#"), "{html}");
    assert!(html.contains("Reply: 271828 1234"), "{html}");
}

#[tokio::test]
async fn answers_without_the_csrf_token_or_with_bad_input_reach_nothing() {
    let app = app(true).await;
    let call = app.console.call(&call_with_code()).await.unwrap();
    let text = app
        .console
        .send_text(&TextMessage {
            authentication_id: None,
            to: "+33698765432".into(),
            body: "x".into(),
            reply_expected: true,
        })
        .await
        .unwrap();
    let (_, html, cookies) = page(&app, LOOPBACK).await;
    let cookie = cookies.join("; ");
    let token = csrf_token(&html);
    let answer = format!("/dev/inbox/{call}/answer");
    for (path, cookie, body, expected) in [
        // A cross-site form: no token, or a token without the cookie it is bound to.
        (
            answer.clone(),
            cookie.clone(),
            "digits=1%23".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (
            answer.clone(),
            String::new(),
            format!("csrf_token={token}&digits=1%23"),
            StatusCode::FORBIDDEN,
        ),
        (
            answer.clone(),
            cookie.clone(),
            "csrf_token=forged&digits=1%23".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        // Not digits, too many, none.
        (
            answer.clone(),
            cookie.clone(),
            format!("csrf_token={token}&digits=12a"),
            StatusCode::BAD_REQUEST,
        ),
        (
            answer.clone(),
            cookie.clone(),
            format!("csrf_token={token}&digits={}", "1".repeat(33)),
            StatusCode::BAD_REQUEST,
        ),
        (
            answer.clone(),
            cookie.clone(),
            format!("csrf_token={token}&digits="),
            StatusCode::BAD_REQUEST,
        ),
        // A message that is not there, or not a call.
        (
            "/dev/inbox/call-0000000000000000/answer".to_owned(),
            cookie.clone(),
            format!("csrf_token={token}&digits=1"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/dev/inbox/{text}/answer"),
            cookie.clone(),
            format!("csrf_token={token}&digits=1"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/dev/inbox/{call}/reply"),
            cookie.clone(),
            format!("csrf_token={token}&body=hello"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/dev/inbox/{text}/reply"),
            cookie.clone(),
            format!("csrf_token={token}&body=+"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/dev/inbox/{text}/reply"),
            cookie.clone(),
            format!("csrf_token={token}&body={}", "x".repeat(1601)),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, _, _) = send(&app, form_post(&path, LOOPBACK, &cookie, &body)).await;
        assert_eq!(status, expected, "{path} {body}");
    }
    assert!(app.seen.calls.lock().unwrap().is_empty());
    assert!(app.seen.texts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_client_on_another_address_gets_nothing_not_even_with_a_valid_form() {
    let app = app(true).await;
    let call = app.console.call(&call_with_code()).await.unwrap();
    let (_, html, cookies) = page(&app, LOOPBACK).await;
    let cookie = cookies.join("; ");
    let token = csrf_token(&html);
    for peer in ["192.0.2.7:40000", "[2001:db8::7]:40000", "10.0.0.1:40000"] {
        let (status, html, _) = page(&app, peer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{peer}");
        assert!(!html.contains("4 8 1 5 1 6"));
        let (status, _, _) = send(
            &app,
            form_post(
                &format!("/dev/inbox/{call}/answer"),
                peer,
                &cookie,
                &format!("csrf_token={token}&digits=1%23"),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{peer}");
    }
    assert!(app.seen.calls.lock().unwrap().is_empty());
    // Without a socket address at all (no connection info): nothing either.
    let (status, _, _) = send(
        &app,
        Request::get("/dev/inbox")
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_loopback_peer_relaying_a_remote_client_or_naming_another_host_gets_nothing() {
    let app = app(true).await;
    app.console.call(&call_with_code()).await.unwrap();
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-for", "127.0.0.1"),
        ("forwarded", "for=203.0.113.9;proto=https"),
        ("x-real-ip", "203.0.113.9"),
        ("via", "1.1 proxy.example"),
        ("host", "evil.example"),
    ] {
        let mut builder = Request::builder()
            .uri("/dev/inbox")
            .extension(ConnectInfo(LOOPBACK.parse::<SocketAddr>().unwrap()));
        if name != "host" {
            builder = builder.header(header::HOST, "localhost:8443");
        }
        let (status, html, _) = send(
            &app,
            builder.header(name, value).body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{name}: {value}");
        assert!(!html.contains("4 8 1 5 1 6"));
    }
}

#[tokio::test]
async fn without_a_console_channel_there_is_no_inbox() {
    let app = app(false).await;
    app.console.call(&call_with_code()).await.unwrap();
    let (status, html, _) = page(&app, LOOPBACK).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("4 8 1 5 1 6"));
}
