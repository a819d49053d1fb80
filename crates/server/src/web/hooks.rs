//! `/hooks/twilio/…`: what Twilio calls back while a verification call or text is under
//! way.
//!
//! - `POST /hooks/twilio/voice/{id}`: the call was answered; the TwiML greets the user and
//!   gathers their keys.
//! - `POST /hooks/twilio/voice/{id}/gather?stage=…&v=…`: the keys typed at a prompt (the
//!   prompt's stage and the authentication's version are in the address, so an old
//!   prompt's answer, replayed or overtaken, is refused).
//! - `POST /hooks/twilio/call-status/{id}` and `/message-status/{id}`: Twilio's reports
//!   (busy, no answer, failed, completed…).
//! - `POST /hooks/twilio/sms`: a text message to the Twofold number (a two-way reply, a
//!   STOP).
//!
//! Every request must carry Twilio's `X-Twilio-Signature` over `[twilio] public_url`, the
//! path and the POST parameters, and may be taken once: a bad or missing signature, a
//! webhook already taken, or one for an unknown or finished authentication gets 403 and
//! changes nothing.

use crate::channels::TwilioChannel;
use crate::service::{CallTurn, DeliveryStatus, InProcessService, ServiceError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use twofold_engine::DomainError;
use twofold_engine::Language;
use twofold_engine::phone_call::{CallScript, CallStage};

/// What the webhooks need: the service, and the Twilio channel whose auth token signs them.
#[derive(Clone)]
pub struct HooksState {
    service: Arc<InProcessService>,
    twilio: Arc<TwilioChannel>,
}

pub fn routes(service: Arc<InProcessService>, twilio: Arc<TwilioChannel>) -> Router {
    Router::new()
        .route("/hooks/twilio/voice/{id}", post(voice))
        .route("/hooks/twilio/voice/{id}/gather", post(gather))
        .route("/hooks/twilio/call-status/{id}", post(call_status))
        .route("/hooks/twilio/message-status/{id}", post(message_status))
        .route("/hooks/twilio/sms", post(inbound_text))
        .with_state(HooksState { service, twilio })
}

/// A webhook whose signature was checked and which was not taken before.
struct Signed {
    params: Vec<(String, String)>,
    /// Its key in the store's receipts, to hand back if it could not be processed.
    key: String,
}

impl Signed {
    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn refused(why: &str) -> Response {
    tracing::warn!(why, "Twilio webhook refused");
    (StatusCode::FORBIDDEN, "refused\n").into_response()
}

/// Checks the signature and takes the webhook once.
async fn signed(
    state: &HooksState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Signed, Response> {
    let Some(signature) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(refused("no X-Twilio-Signature"));
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    if !state
        .twilio
        .verify_webhook(&path_and_query, &params, signature)
    {
        return Err(refused("bad X-Twilio-Signature"));
    }
    // The same address with the same parameters is the same webhook: taken once.
    let mut sorted = params.clone();
    sorted.sort();
    let mut digest = Sha256::new();
    digest.update(path_and_query.as_bytes());
    for (k, v) in &sorted {
        digest.update([0]);
        digest.update(k.as_bytes());
        digest.update([0]);
        digest.update(v.as_bytes());
    }
    let key = hex::encode(digest.finalize());
    match state
        .service
        .store()
        .take_webhook(&key, state.service.now())
        .await
    {
        Ok(true) => Ok(Signed { params, key }),
        Ok(false) => Err(refused("webhook replayed")),
        Err(e) => {
            tracing::error!(error = %e, "Twilio webhook: the store cannot record it");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}

/// The answer to a webhook the service could not take: 403 for a refusal (the
/// authentication is unknown or over, an old prompt), 503 for a failure of ours (the
/// receipt is handed back, so that Twilio's retry is taken).
async fn failed(state: &HooksState, signed: &Signed, e: ServiceError) -> Response {
    match e {
        ServiceError::Domain(d) => refused(d.code()),
        other => {
            tracing::error!(error = %other, "Twilio webhook failed");
            if let Err(e) = state.service.store().release_webhook(&signed.key).await {
                tracing::warn!(error = %e, "Twilio webhook receipt not released");
            }
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn voice_language(language: Language) -> &'static str {
    match language {
        Language::En => "en-US",
        Language::Fr => "fr-FR",
    }
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The TwiML of a call's next turn.
pub fn twiml(twilio: &TwilioChannel, authentication_id: &str, turn: &CallTurn) -> String {
    let script: &CallScript = &turn.script;
    let lang = voice_language(script.language);
    let say = |text: &str| format!("<Say language=\"{lang}\">{}</Say>", xml_escape(text));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>");
    for text in &script.say {
        out.push_str(&say(text));
    }
    match &script.gather {
        Some(g) => {
            let action = twilio.webhook_url(&format!(
                "/hooks/twilio/voice/{authentication_id}/gather?stage={}&v={}",
                g.stage.as_str(),
                turn.version
            ));
            let finish = g
                .finish_on_key
                .map(|k| format!(" finishOnKey=\"{k}\""))
                .unwrap_or_else(|| " finishOnKey=\"\"".to_owned());
            out.push_str(&format!(
                "<Gather input=\"dtmf\" action=\"{}\" method=\"POST\" numDigits=\"{}\" timeout=\"{}\"{finish} actionOnEmptyResult=\"true\">{}</Gather>",
                xml_escape(&action),
                g.max_keys,
                g.timeout_seconds,
                say(&g.prompt)
            ));
        }
        None => out.push_str("<Hangup/>"),
    }
    out.push_str("</Response>");
    out
}

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn voice(
    State(state): State<HooksState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match signed(&state, &uri, &headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state.service.call_answered(&id).await {
        Ok(turn) => xml(twiml(&state.twilio, &id, &turn)),
        Err(e) => failed(&state, &signed, e).await,
    }
}

#[derive(serde::Deserialize)]
struct GatherQuery {
    stage: String,
    v: i64,
}

async fn gather(
    State(state): State<HooksState>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<GatherQuery>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match signed(&state, &uri, &headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(stage) = CallStage::parse(&query.stage) else {
        return refused("unknown stage");
    };
    // Twilio posts the keys without the key that ended them.
    let mut typed = signed.get("Digits").unwrap_or("").to_owned();
    if let Some(key) = signed.get("FinishedOnKey").filter(|k| !k.is_empty()) {
        typed.push_str(key);
    }
    match state.service.call_keys(&id, stage, query.v, &typed).await {
        Ok(turn) => xml(twiml(&state.twilio, &id, &turn)),
        Err(e) => failed(&state, &signed, e).await,
    }
}

async fn status(
    state: HooksState,
    id: String,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    field: &str,
) -> Response {
    let signed = match signed(&state, &uri, &headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(reported) = signed.get(field) else {
        return refused("no status");
    };
    match state
        .service
        .delivery_status(&id, DeliveryStatus::from_twilio(reported))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(&state, &signed, e).await,
    }
}

async fn call_status(
    State(state): State<HooksState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    status(state, id, uri, headers, body, "CallStatus").await
}

async fn message_status(
    State(state): State<HooksState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    status(state, id, uri, headers, body, "MessageStatus").await
}

async fn inbound_text(
    State(state): State<HooksState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let signed = match signed(&state, &uri, &headers, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (Some(from), Some(text)) = (signed.get("From"), signed.get("Body")) else {
        return refused("no From or Body");
    };
    match state.service.text_received(from, text).await {
        Ok(Some(reply)) => xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            xml_escape(&reply)
        )),
        // Nothing waits on it: an empty answer, so Twilio sends nothing back.
        Ok(None) => xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_owned()),
        Err(ServiceError::Domain(DomainError::WebhookRefused)) => refused("not pending"),
        Err(e) => failed(&state, &signed, e).await,
    }
}
