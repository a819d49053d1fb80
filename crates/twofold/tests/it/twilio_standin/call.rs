//! A call in progress: its status callbacks, and its TwiML followed as Twilio does.

use super::wire::http_date;
use super::*;

/// At most this many TwiML documents per call (a `<Redirect>` loop ends there).
const MAX_DOCUMENTS: usize = 50;

/// A call in progress.
pub(super) struct Call {
    pub(super) inner: Arc<Inner>,
    pub(super) sid: String,
    pub(super) to: String,
    pub(super) from: String,
    pub(super) url: String,
    pub(super) status_callback: Option<String>,
    pub(super) events: Vec<String>,
    pub(super) send_digits: Option<String>,
    pub(super) sequence: u32,
}

impl Call {
    /// Twilio's standard parameters of a call's requests.
    fn params(&self, call_status: &str) -> Vec<(String, String)> {
        pairs(&[
            ("AccountSid", &self.inner.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", &self.sid),
            ("CallStatus", call_status),
            ("Called", &self.to),
            ("Caller", &self.from),
            ("Direction", "outbound-api"),
            ("From", &self.from),
            ("To", &self.to),
        ])
    }

    fn record(&self, event: CallEvent) {
        self.inner.record_call_event(&self.sid, event);
    }

    /// Posts a status callback for `event` (`initiated`, `ringing`, `answered`,
    /// `completed`) with `call_status`, when the call asked for it.
    async fn status(&mut self, event: &str, call_status: &str, duration: Option<u64>) {
        let Some(url) = self.status_callback.clone() else {
            return;
        };
        let wanted = if self.events.is_empty() {
            event == "completed"
        } else {
            self.events.iter().any(|e| e == event)
        };
        if !wanted {
            return;
        }
        let mut params = self.params(call_status);
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.push(("SequenceNumber".into(), self.sequence.to_string()));
        params.push(("Timestamp".into(), http_date()));
        self.sequence += 1;
        if let Some(seconds) = duration {
            params.push(("CallDuration".into(), seconds.to_string()));
            params.push(("Duration".into(), seconds.div_ceil(60).max(1).to_string()));
        }
        let (status, _) = self.inner.post_signed(&url, &params).await;
        self.record(CallEvent::StatusCallback {
            call_status: call_status.to_owned(),
            status,
        });
    }

    pub(super) async fn run(mut self, scenario: CallScenario) {
        tokio::time::sleep(Duration::from_millis(
            self.inner.call_delay_ms.load(Ordering::SeqCst),
        ))
        .await;
        let started = Instant::now();
        match scenario {
            CallScenario::Busy => {
                self.status("initiated", "initiated", None).await;
                self.status("completed", "busy", Some(0)).await;
            }
            CallScenario::NoAnswer => {
                self.status("initiated", "initiated", None).await;
                self.status("ringing", "ringing", None).await;
                self.status("completed", "no-answer", Some(0)).await;
            }
            CallScenario::Failed => {
                self.status("completed", "failed", Some(0)).await;
            }
            CallScenario::Answer { keys } => {
                self.status("initiated", "initiated", None).await;
                self.status("ringing", "ringing", None).await;
                self.status("answered", "in-progress", None).await;
                if let Some(digits) = self.send_digits.clone() {
                    self.record(CallEvent::SentDigits(digits));
                }
                self.follow(keys.into()).await;
                let seconds = started.elapsed().as_secs().max(1);
                self.status("completed", "completed", Some(seconds)).await;
            }
        }
        let mut recorded = self.inner.recorded.lock().unwrap();
        if let Some(t) = recorded.transcripts.get_mut(&self.sid) {
            t.done = true;
        }
    }

    /// Fetches a TwiML document (POST with the call's parameters and `extra`).
    async fn fetch(
        &self,
        url: &str,
        extra: &[(String, String)],
        digits: Option<String>,
    ) -> Option<Element> {
        let mut params = self.params("in-progress");
        params.extend(extra.iter().cloned());
        let (status, body) = self.inner.post_signed(url, &params).await;
        self.record(CallEvent::Fetched {
            url: url.to_owned(),
            digits,
            status,
        });
        if !(200..300).contains(&status) {
            self.record(CallEvent::ApplicationError(format!(
                "{url} answered {status}: {body}"
            )));
            return None;
        }
        match parse_twiml(&body) {
            Ok(document) => Some(document),
            Err(e) => {
                self.record(CallEvent::ApplicationError(format!(
                    "{url} answered TwiML that cannot be read ({e}): {body}"
                )));
                None
            }
        }
    }

    /// Follows the TwiML from the call's `Url` to the end of the call.
    async fn follow(&self, mut keys: VecDeque<String>) {
        let mut url = self.url.clone();
        let mut document = self.fetch(&url, &[], None).await;
        let mut documents = 1;
        'documents: while let Some(response) = document.take() {
            if response.name != "Response" {
                self.record(CallEvent::ApplicationError(format!(
                    "the document's root is <{}>, not <Response>",
                    response.name
                )));
                return;
            }
            if documents >= MAX_DOCUMENTS {
                self.record(CallEvent::ApplicationError(format!(
                    "more than {MAX_DOCUMENTS} documents in one call"
                )));
                return;
            }
            for verb in &response.children {
                match verb.name.as_str() {
                    "Say" => self.say(verb),
                    "Pause" => self.pause(verb),
                    "Hangup" | "Reject" => {
                        self.record(CallEvent::HungUp);
                        return;
                    }
                    "Redirect" => {
                        let target = resolve(&url, verb.text.trim());
                        documents += 1;
                        document = self.fetch(&target, &[], None).await;
                        url = target;
                        continue 'documents;
                    }
                    "Gather" => {
                        for nested in &verb.children {
                            match nested.name.as_str() {
                                "Say" => self.say(nested),
                                "Pause" => self.pause(nested),
                                other => self.record(CallEvent::Unsupported(other.to_owned())),
                            }
                        }
                        let typed = keys.pop_front().unwrap_or_default();
                        let Some((digits, finished_on_key)) = gather(verb, &typed) else {
                            self.record(CallEvent::GatherFellThrough);
                            continue;
                        };
                        self.record(CallEvent::Gathered {
                            digits: digits.clone(),
                            finished_on_key: finished_on_key.clone(),
                        });
                        let target = resolve(&url, verb.attr("action").unwrap_or(&url));
                        let extra = pairs(&[
                            ("Digits", &digits),
                            ("FinishedOnKey", &finished_on_key),
                            ("msg", "Gather End"),
                        ]);
                        documents += 1;
                        document = self.fetch(&target, &extra, Some(digits)).await;
                        url = target;
                        continue 'documents;
                    }
                    other => self.record(CallEvent::Unsupported(other.to_owned())),
                }
            }
            // The end of a document ends the call.
            return;
        }
    }

    fn say(&self, verb: &Element) {
        let language = verb.attr("language").unwrap_or("en-US").to_owned();
        let times = verb
            .attr("loop")
            .and_then(|l| l.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, 3);
        for _ in 0..times {
            self.record(CallEvent::Said {
                language: language.clone(),
                text: verb.text.trim().to_owned(),
            });
        }
    }

    fn pause(&self, verb: &Element) {
        let seconds = verb
            .attr("length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(1);
        self.record(CallEvent::Paused { seconds });
    }
}

/// What a `<Gather>` posts when the person types `typed`: `(Digits, FinishedOnKey)`, or
/// `None` when it falls through to the next verb (no digits and no `actionOnEmptyResult`:
/// silence, or the finish key alone, as Twilio does).
fn gather(verb: &Element, typed: &str) -> Option<(String, String)> {
    let finish_key = verb.attr("finishOnKey").unwrap_or("#");
    let max_digits = verb
        .attr("numDigits")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0);
    let mut digits = String::new();
    let mut finished_on_key = String::new();
    for key in typed.chars() {
        if !finish_key.is_empty() && finish_key.contains(key) {
            finished_on_key.push(key);
            break;
        }
        digits.push(key);
        if max_digits.is_some_and(|max| digits.chars().count() >= max) {
            break;
        }
    }
    let on_empty = verb
        .attr("actionOnEmptyResult")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if digits.is_empty() && !on_empty {
        return None;
    }
    Some((digits, finished_on_key))
}

/// `target` resolved against the current document's `base`.
fn resolve(base: &str, target: &str) -> String {
    // An absolute address is requested (and signed) exactly as written.
    if target.starts_with("https://") || target.starts_with("http://") {
        return target.to_owned();
    }
    match url::Url::parse(base).and_then(|b| b.join(target)) {
        Ok(url) => url.to_string(),
        Err(_) => target.to_owned(),
    }
}

/// One element of a TwiML document.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a TwiML document into its root element.
pub(crate) fn parse_twiml(xml: &str) -> Result<Element, String> {
    use quick_xml::events::{BytesStart, Event};
    fn element(start: &BytesStart<'_>) -> Result<Element, String> {
        let mut element = Element {
            name: String::from_utf8_lossy(start.name().as_ref()).into_owned(),
            ..Element::default()
        };
        for attr in start.attributes() {
            let attr = attr.map_err(|e| e.to_string())?;
            let value = attr.unescape_value().map_err(|e| e.to_string())?;
            element.attrs.push((
                String::from_utf8_lossy(attr.key.as_ref()).into_owned(),
                value.into_owned(),
            ));
        }
        Ok(element)
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(start) => stack.push(element(&start)?),
            Event::Empty(start) => {
                let element = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("an end tag without its start")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current
                        .text
                        .push_str(&text.unescape().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current
                        .text
                        .push_str(&String::from_utf8_lossy(&data.into_inner()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "an empty document".into())
}
