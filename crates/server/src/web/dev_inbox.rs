//! `/dev/inbox`: the console channel's messages, for a developer on this machine.
//!
//! The page lists what the console channel did not deliver, newest first: calls with what
//! they say, text messages, emails, pushes. A call can be answered by typing digits and a
//! text message replied to; the answer goes to the application's [`InboundEvents`], as a
//! provider's webhook would.
//!
//! The inbox holds codes, so it is locked down. It is routed only while a console channel is
//! configured, and answers only a request that [`is_local`]: its own TCP peer is a loopback
//! address, it carries no header a proxy adds, and it names a loopback host. Anything else
//! gets the same 404 as an address that does not exist, so the page's existence is not
//! revealed either. Forms carry the portal's CSRF token.

use super::portal::{PageContext, Visitor, render};
use super::{AppState, WebError};
use crate::channels::{DevInbox, InboundEvents, InboxAnswer, InboxEntry, InboxMessage, MessageId};
use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The inbox and where its answers go.
#[derive(Clone)]
pub struct DevInboxParts {
    pub inbox: Arc<DevInbox>,
    pub events: Arc<dyn InboundEvents>,
}

/// The most digits one answer may carry.
const MAX_DIGITS: usize = 32;
/// The longest reply: ten concatenated text messages.
const MAX_REPLY_CHARS: usize = 1600;

pub(super) fn routes(parts: DevInboxParts) -> Router<AppState> {
    Router::new()
        .route("/dev/inbox", get(inbox_get))
        .route("/dev/inbox/{id}/answer", post(answer_post))
        .route("/dev/inbox/{id}/reply", post(reply_post))
        .route_layer(middleware::from_fn(local_only))
        .layer(Extension(parts))
}

/// Headers that a proxy adds: a request carrying one came from elsewhere, whatever its
/// peer.
const PROXY_HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
];

/// Whether a request comes from this machine itself: its TCP peer (never a header) is a
/// loopback address, no proxy header says it was relayed from elsewhere, and the host it
/// names is a loopback one (a web page on another site whose name was pointed at 127.0.0.1,
/// DNS rebinding, names its own host).
pub fn is_local(peer: Option<SocketAddr>, uri: &Uri, headers: &HeaderMap) -> bool {
    let Some(peer) = peer else {
        return false;
    };
    if !peer.ip().to_canonical().is_loopback() {
        return false;
    }
    if PROXY_HEADERS.iter().any(|name| headers.contains_key(*name)) {
        return false;
    }
    // HTTP/2 names the host in the URI's authority, HTTP/1.1 in `Host`; both must agree.
    let hosts: Vec<&str> = uri
        .authority()
        .map(|a| a.host())
        .into_iter()
        .chain(
            headers
                .get_all(header::HOST)
                .iter()
                .map(|v| v.to_str().unwrap_or("invalid")),
        )
        .collect();
    !hosts.is_empty() && hosts.iter().all(|h| loopback_host(h))
}

/// `localhost`, a name under `.localhost`, or a loopback address, with or without a port.
fn loopback_host(host: &str) -> bool {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        // `[::1]` or `[::1]:8443`.
        Some(rest) => match rest.split_once(']') {
            Some((address, port)) if port.is_empty() || port.starts_with(':') => address,
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return false,
            None => host,
        },
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

async fn local_only(request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    if is_local(peer, request.uri(), request.headers()) {
        return next.run(request).await;
    }
    tracing::warn!(
        peer = ?peer,
        path = %request.uri().path(),
        "development inbox refused: only a client on this machine, not through a proxy, may use it"
    );
    WebError::NotFound.into_response()
}

#[derive(Template)]
#[template(path = "dev_inbox.html")]
struct InboxTemplate {
    page: PageContext,
    entries: Vec<EntryView>,
}

/// One message as the page shows it.
struct EntryView {
    id: String,
    title: String,
    at: String,
    /// Label and value pairs.
    details: Vec<(String, String)>,
    /// Longer text, shown as written.
    body: Option<String>,
    answers: Vec<String>,
    answerable: bool,
    repliable: bool,
}

fn view(entry: &InboxEntry, t: &super::i18n::Translator) -> EntryView {
    let mut details = Vec::new();
    let (title, body) = match &entry.message {
        InboxMessage::Call(call) => {
            if let Some(extension) = &call.extension {
                details.push((t.t("inbox-extension"), extension.clone()));
            }
            details.push((t.t("inbox-language"), call.language.autonym().to_owned()));
            let expects = match call.expect {
                Some(e) => {
                    let mut text = t.t1("inbox-expects-digits", "max", &e.max_digits.to_string());
                    if let Some(key) = e.finish_on_key {
                        text.push_str(", ");
                        text.push_str(&t.t1("inbox-expects-finish", "key", &key.to_string()));
                    }
                    text
                }
                None => t.t("inbox-expects-nothing"),
            };
            details.push((t.t("inbox-expects"), expects));
            (
                t.t1("inbox-call-to", "to", &call.to),
                Some(call.say.clone()),
            )
        }
        InboxMessage::Text(text) => {
            details.push((
                t.t("inbox-reply-expected"),
                t.t(if text.reply_expected {
                    "inbox-yes"
                } else {
                    "inbox-no"
                }),
            ));
            (
                t.t1("inbox-text-to", "to", &text.to),
                Some(text.body.clone()),
            )
        }
        InboxMessage::Email(email) => {
            details.push((t.t("inbox-subject"), email.subject.clone()));
            (
                t.t1("inbox-email-to", "to", &email.to),
                Some(email.text_body.clone()),
            )
        }
        InboxMessage::Push(push) => (
            t.t1("inbox-push-to", "device", &push.device_id),
            Some(serde_json::to_string_pretty(&push.payload).unwrap_or_default()),
        ),
    };
    details.push((t.t("inbox-message-id"), entry.id.0.clone()));
    let answers = entry
        .answers
        .iter()
        .map(|a| match a {
            InboxAnswer::Digits { at, digits } => format!(
                "{} · {}",
                format_time(*at),
                t.t1("inbox-answered", "digits", digits)
            ),
            InboxAnswer::Reply { at, body } => format!(
                "{} · {}",
                format_time(*at),
                t.t1("inbox-replied", "body", body)
            ),
            InboxAnswer::Said { at, text } => format!(
                "{} · {}",
                format_time(*at),
                t.t1("inbox-said", "text", text)
            ),
        })
        .collect();
    EntryView {
        id: entry.id.0.clone(),
        title,
        at: format_time(entry.at),
        details,
        body,
        answers,
        answerable: matches!(entry.message, InboxMessage::Call(_)),
        repliable: matches!(entry.message, InboxMessage::Text(_)),
    }
}

/// A moment as the inbox shows it: `2026-12-01 23:45:07 UTC`.
fn format_time(at: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| at.to_string())
}

async fn inbox_get(
    State(state): State<AppState>,
    Extension(parts): Extension<DevInboxParts>,
    visitor: Visitor,
) -> Result<Response, WebError> {
    let t = visitor.t();
    let page = InboxTemplate {
        page: visitor.page(&state),
        entries: parts.inbox.entries().iter().map(|e| view(e, &t)).collect(),
    };
    Ok(visitor.finish(render(StatusCode::OK, &page)?))
}

#[derive(Debug, Deserialize)]
struct AnswerForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    digits: String,
}

/// The message a form answers, once the form's CSRF token is checked; 404 when the inbox
/// does not hold it.
fn answered_message(
    state: &AppState,
    visitor: &Visitor,
    parts: &DevInboxParts,
    id: String,
    csrf_token: &str,
) -> Result<(MessageId, InboxMessage), WebError> {
    visitor.check_csrf(state, csrf_token)?;
    let id = MessageId(id);
    let entry = parts.inbox.get(&id).ok_or(WebError::NotFound)?;
    Ok((id, entry.message))
}

/// Back to the message on the page.
fn back_to(visitor: &Visitor, id: &MessageId) -> Response {
    visitor.finish(Redirect::to(&format!("/dev/inbox#{id}")))
}

async fn answer_post(
    State(state): State<AppState>,
    Extension(parts): Extension<DevInboxParts>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    let (id, message) = answered_message(&state, &visitor, &parts, id, &form.csrf_token)?;
    let InboxMessage::Call(_) = message else {
        return Err(WebError::NotFound);
    };
    let digits = form.digits.trim();
    if digits.is_empty()
        || digits.chars().count() > MAX_DIGITS
        || !digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
    {
        return Err(WebError::BadRequest(format!(
            "digits: up to {MAX_DIGITS} of 0-9, * and #"
        )));
    }
    parts.events.call_answered(&id, digits).await;
    Ok(back_to(&visitor, &id))
}

#[derive(Debug, Deserialize)]
struct ReplyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    body: String,
}

async fn reply_post(
    State(state): State<AppState>,
    Extension(parts): Extension<DevInboxParts>,
    visitor: Visitor,
    Path(id): Path<String>,
    form: Result<Form<ReplyForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    let (id, message) = answered_message(&state, &visitor, &parts, id, &form.csrf_token)?;
    let InboxMessage::Text(text) = message else {
        return Err(WebError::NotFound);
    };
    let body = form.body.trim();
    if body.is_empty() || body.chars().count() > MAX_REPLY_CHARS {
        return Err(WebError::BadRequest(format!(
            "reply: 1 to {MAX_REPLY_CHARS} characters"
        )));
    }
    // The reply comes from the number the text went to, as from a phone.
    parts.events.text_received(&text.to, body).await;
    Ok(back_to(&visitor, &id))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn peer(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn a_loopback_peer_naming_a_loopback_host_is_local() {
        for (p, host) in [
            ("127.0.0.1:50000", "127.0.0.1:8443"),
            ("127.0.0.1:50000", "localhost:8443"),
            ("127.0.0.1:50000", "localhost"),
            ("127.0.0.1:50000", "dev.localhost:8443"),
            ("[::1]:50000", "[::1]:8443"),
            ("[::ffff:127.0.0.1]:50000", "127.0.0.1"),
            ("127.0.0.2:50000", "127.0.0.2:8443"),
        ] {
            assert!(
                is_local(peer(p), &uri("/dev/inbox"), &headers(&[("host", host)])),
                "{p} {host}"
            );
        }
        assert!(is_local(
            peer("127.0.0.1:50000"),
            &uri("https://localhost:8443/dev/inbox"),
            &HeaderMap::new()
        ));
    }

    #[test]
    fn a_peer_on_another_address_is_not_local_whatever_its_headers_say() {
        for p in ["192.0.2.7:50000", "[2001:db8::1]:50000", "10.0.0.1:1"] {
            assert!(
                !is_local(
                    peer(p),
                    &uri("/dev/inbox"),
                    &headers(&[("host", "127.0.0.1")])
                ),
                "{p}"
            );
        }
        assert!(!is_local(
            None,
            &uri("/dev/inbox"),
            &headers(&[("host", "localhost")])
        ));
    }

    #[test]
    fn a_loopback_peer_relaying_for_someone_else_is_not_local() {
        for (name, value) in [
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("x-forwarded-host", "localhost"),
            ("x-forwarded-proto", "https"),
            ("via", "1.1 proxy"),
        ] {
            assert!(
                !is_local(
                    peer("127.0.0.1:50000"),
                    &uri("/dev/inbox"),
                    &headers(&[("host", "localhost:8443"), (name, value)])
                ),
                "{name}: {value}"
            );
        }
    }

    #[test]
    fn a_loopback_peer_naming_another_host_is_not_local() {
        for host in [
            "evil.example",
            "evil.example:8443",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "192.0.2.2:8443",
            "[::1]x",
            "localhost:80x",
            "",
        ] {
            assert!(
                !is_local(
                    peer("127.0.0.1:50000"),
                    &uri("/dev/inbox"),
                    &headers(&[("host", host)])
                ),
                "{host:?}"
            );
        }
        assert!(
            !is_local(
                peer("127.0.0.1:50000"),
                &uri("/dev/inbox"),
                &HeaderMap::new()
            ),
            "no host at all"
        );
        assert!(
            !is_local(
                peer("127.0.0.1:50000"),
                &uri("/dev/inbox"),
                &headers(&[("host", "localhost"), ("host", "evil.example")])
            ),
            "two hosts"
        );
        assert!(
            !is_local(
                peer("127.0.0.1:50000"),
                &uri("https://evil.example/dev/inbox"),
                &headers(&[("host", "localhost")])
            ),
            "an authority that disagrees"
        );
    }
}
