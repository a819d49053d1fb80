//! The REST API: `Calls.json` and `Messages.json`, and what each starts.

use super::call::Call;
use super::*;

/// Twilio's error answer.
fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    });
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body)).into_response()
}

pub(super) async fn not_found() -> Response {
    twilio_error(404, 20404, "The requested resource was not found")
}

pub(super) async fn rest_api(
    State(inner): State<Arc<Inner>>,
    Path((account, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_form(&body);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = format!("/2010-04-01/Accounts/{account}/{resource}");
    let mut request = ApiRequest {
        path,
        authorization,
        params,
        status: 0,
        sid: None,
    };
    let (response, status, sid) = answer(&inner, &account, &resource, &request);
    request.status = status;
    request.sid = sid;
    inner.record(request);
    response
}

/// `GET /2010-04-01/Accounts/{AccountSid}.json`: the account's record, as Twilio gives it
/// to its own credentials (the auth token included, as Twilio does).
pub(super) async fn fetch_account(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = format!("/2010-04-01/Accounts/{account}");
    let mut request = ApiRequest {
        path: path.clone(),
        authorization,
        params: Vec::new(),
        status: 0,
        sid: None,
    };
    let (response, status) = account_record(&inner, &account, &request);
    request.status = status;
    inner.record(request);
    response
}

fn account_record(inner: &Arc<Inner>, account: &str, request: &ApiRequest) -> (Response, u16) {
    let fail =
        |status: u16, code: u32, message: &str| (twilio_error(status, code, message), status);
    if inner.unreachable.load(Ordering::SeqCst) {
        return fail(503, 20503, "Service Unavailable");
    }
    let authenticated = request
        .basic_credentials()
        .is_some_and(|(user, password)| user == inner.account_sid && password == inner.auth_token);
    if !authenticated {
        return fail(401, 20003, "Authenticate");
    }
    if account.strip_suffix(".json") != Some(inner.account_sid.as_str()) {
        return fail(
            404,
            20404,
            &format!("The requested resource /2010-04-01/Accounts/{account} was not found"),
        );
    }
    let status = inner
        .recorded
        .lock()
        .unwrap()
        .account_status
        .clone()
        .unwrap_or_else(|| "active".to_owned());
    let sid = &inner.account_sid;
    let body = serde_json::json!({
        "auth_token": inner.auth_token,
        "date_created": "Thu, 30 Jul 2015 20:00:00 +0000",
        "date_updated": "Thu, 30 Jul 2015 20:00:00 +0000",
        "friendly_name": "Twofold test account",
        "owner_account_sid": sid,
        "sid": sid,
        "status": status,
        "subresource_uris": {
            "calls": format!("/2010-04-01/Accounts/{sid}/Calls.json"),
            "messages": format!("/2010-04-01/Accounts/{sid}/Messages.json"),
        },
        "type": "Full",
        "uri": format!("/2010-04-01/Accounts/{sid}.json"),
    });
    ((StatusCode::OK, axum::Json(body)).into_response(), 200)
}

/// The REST API's answer to one request, and what it starts.
fn answer(
    inner: &Arc<Inner>,
    account: &str,
    resource: &str,
    request: &ApiRequest,
) -> (Response, u16, Option<String>) {
    let fail =
        |status: u16, code: u32, message: &str| (twilio_error(status, code, message), status, None);
    if inner.unreachable.load(Ordering::SeqCst) {
        return fail(503, 20503, "Service Unavailable");
    }
    let injected = inner.recorded.lock().unwrap().failures.pop_front();
    match injected {
        Some(Injected::Twilio {
            status,
            code,
            message,
        }) => return fail(status, code, &message),
        Some(Injected::Raw {
            status,
            content_type,
            body,
        }) => {
            let code = StatusCode::from_u16(status).unwrap();
            let response = (code, [("content-type", content_type)], body).into_response();
            return (response, status, None);
        }
        None => {}
    }
    let authenticated = request
        .basic_credentials()
        .is_some_and(|(user, password)| user == inner.account_sid && password == inner.auth_token);
    if !authenticated {
        return fail(401, 20003, "Authenticate");
    }
    if account != inner.account_sid {
        return fail(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/{resource} was not found"
            ),
        );
    }
    match resource {
        "Calls.json" => create_call(inner, request),
        "Messages.json" => create_message(inner, request),
        _ => fail(
            404,
            20404,
            &format!(
                "The requested resource /2010-04-01/Accounts/{account}/{resource} was not found"
            ),
        ),
    }
}

fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

fn create_call(inner: &Arc<Inner>, request: &ApiRequest) -> (Response, u16, Option<String>) {
    let fail = |code: u32, message: String| (twilio_error(400, code, &message), 400, None);
    let Some(to) = request.get("To").filter(|v| !v.is_empty()) else {
        return fail(21201, "No 'To' number is specified".into());
    };
    if !is_e164(to) {
        return fail(
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        );
    }
    let Some(from) = request.get("From").filter(|v| !v.is_empty()) else {
        return fail(21213, "No 'From' number is specified".into());
    };
    if !is_e164(from) {
        return fail(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        );
    }
    let Some(url) = request.get("Url").filter(|v| !v.is_empty()) else {
        return fail(21205, "Url parameter is required.".into());
    };
    if url::Url::parse(url).is_err() {
        return fail(21205, format!("Url is not a valid URL: {url}"));
    }
    if let Some(callback) = request.get("StatusCallback")
        && url::Url::parse(callback).is_err()
    {
        return fail(21609, format!("Invalid StatusCallback url: {callback}"));
    }
    let sid = inner.new_sid("CA");
    let body = serde_json::json!({
        "sid": sid,
        "account_sid": inner.account_sid,
        "to": to,
        "to_formatted": to,
        "from": from,
        "from_formatted": from,
        "status": "queued",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "price": null,
        "uri": format!("/2010-04-01/Accounts/{}/Calls/{sid}.json", inner.account_sid),
    });
    let scenario = inner
        .recorded
        .lock()
        .unwrap()
        .call_scenarios
        .get(to)
        .cloned()
        .unwrap_or(CallScenario::Answer { keys: Vec::new() });
    {
        let mut recorded = inner.recorded.lock().unwrap();
        recorded.call_order.push(sid.clone());
        recorded.transcripts.insert(
            sid.clone(),
            Transcript {
                sid: sid.clone(),
                to: to.to_owned(),
                events: Vec::new(),
                done: false,
            },
        );
    }
    let call = Call {
        inner: inner.clone(),
        sid: sid.clone(),
        to: to.to_owned(),
        from: from.to_owned(),
        url: url.to_owned(),
        status_callback: request.get("StatusCallback").map(str::to_owned),
        events: request
            .all("StatusCallbackEvent")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .map(str::to_owned)
            .collect(),
        send_digits: request.get("SendDigits").map(str::to_owned),
        sequence: 0,
    };
    inner.spawn(call.run(scenario));
    (
        (StatusCode::CREATED, axum::Json(body)).into_response(),
        201,
        Some(sid),
    )
}

fn create_message(inner: &Arc<Inner>, request: &ApiRequest) -> (Response, u16, Option<String>) {
    let fail = |code: u32, message: String| (twilio_error(400, code, &message), 400, None);
    let Some(to) = request.get("To").filter(|v| !v.is_empty()) else {
        return fail(21604, "A 'To' phone number is required.".into());
    };
    if !is_e164(to) {
        return fail(21211, format!("Invalid 'To' Phone Number: {to}"));
    }
    let from = request.get("From").filter(|v| !v.is_empty());
    let service = request.get("MessagingServiceSid").filter(|v| !v.is_empty());
    if from.is_none() && service.is_none() {
        return fail(21603, "A 'From' phone number is required.".into());
    }
    let Some(body_text) = request.get("Body").filter(|v| !v.is_empty()) else {
        return fail(21602, "Message body is required.".into());
    };
    if body_text.chars().count() > 1600 {
        return fail(
            21617,
            "The concatenated message body exceeds the 1600 character limit.".into(),
        );
    }
    let sid = inner.new_sid("SM");
    let body = serde_json::json!({
        "sid": sid,
        "account_sid": inner.account_sid,
        "to": to,
        "from": from,
        "messaging_service_sid": service,
        "body": body_text,
        "status": if from.is_some() { "queued" } else { "accepted" },
        "num_segments": "1",
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "error_code": null,
        "error_message": null,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{sid}.json", inner.account_sid),
    });
    let scenario = inner
        .recorded
        .lock()
        .unwrap()
        .text_scenarios
        .get(to)
        .copied()
        .unwrap_or(TextScenario::Delivered);
    match request.get("StatusCallback") {
        Some(callback) => {
            let task_inner = inner.clone();
            let callback = callback.to_owned();
            let sid_for_task = sid.clone();
            let from = from.unwrap_or("+15005550006").to_owned();
            let to = to.to_owned();
            inner.spawn(async move {
                message_callbacks(task_inner, sid_for_task, callback, from, to, scenario).await;
            });
        }
        None => {
            inner
                .recorded
                .lock()
                .unwrap()
                .message_done
                .insert(sid.clone(), true);
        }
    }
    (
        (StatusCode::CREATED, axum::Json(body)).into_response(),
        201,
        Some(sid),
    )
}

async fn message_callbacks(
    inner: Arc<Inner>,
    sid: String,
    url: String,
    from: String,
    to: String,
    scenario: TextScenario,
) {
    tokio::time::sleep(Duration::from_millis(
        inner.call_delay_ms.load(Ordering::SeqCst),
    ))
    .await;
    let steps: &[(&str, Option<&str>)] = match scenario {
        TextScenario::Delivered => &[("sent", None), ("delivered", None)],
        TextScenario::Undelivered => &[("sent", None), ("undelivered", Some("30003"))],
        TextScenario::Failed => &[("failed", Some("30003"))],
    };
    for (message_status, error_code) in steps {
        let mut params = pairs(&[
            ("AccountSid", &inner.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("From", &from),
            ("To", &to),
            ("MessageSid", &sid),
            ("SmsSid", &sid),
            ("SmsStatus", message_status),
            ("MessageStatus", message_status),
        ]);
        if let Some(code) = error_code {
            params.push(("ErrorCode".into(), (*code).to_owned()));
        }
        let (status, _) = inner.post_signed(&url, &params).await;
        inner
            .recorded
            .lock()
            .unwrap()
            .message_statuses
            .entry(sid.clone())
            .or_default()
            .push(MessageStatusPosted {
                message_status: (*message_status).to_owned(),
                error_code: error_code.map(str::to_owned),
                status,
            });
    }
    inner
        .recorded
        .lock()
        .unwrap()
        .message_done
        .insert(sid, true);
}
