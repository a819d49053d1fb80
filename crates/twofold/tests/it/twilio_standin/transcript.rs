//! What the stand-in is told to do, and what it records.

use super::wire::basic_credentials;

/// What the person called does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallScenario {
    /// Answers; each entry is what they type at one `<Gather>` (`"#"`, `"1234#"`, `"0#"`,
    /// `"1"`, `""` for silence). When the entries run out, they stay silent.
    Answer {
        keys: Vec<String>,
    },
    Busy,
    NoAnswer,
    Failed,
}

/// What becomes of a text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextScenario {
    /// `sent`, then `delivered`.
    Delivered,
    /// `sent`, then `undelivered` with error 30003 (the handset is off).
    Undelivered,
    /// `failed` with error 30003.
    Failed,
}

/// One request to the REST API, as received.
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    pub path: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The form parameters in the order sent, repeated names kept.
    pub params: Vec<(String, String)>,
    /// The HTTP status the stand-in answered.
    pub status: u16,
    /// The sid created, when the request succeeded.
    pub sid: Option<String>,
}

impl ApiRequest {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The user name and password of HTTP Basic.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        basic_credentials(self.authorization.as_deref()?)
    }
}

/// What happened during a call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallEvent {
    /// A status callback was posted (`CallStatus`), and the server answered `status`.
    StatusCallback {
        call_status: String,
        status: u16,
    },
    /// `SendDigits` were dialled once the call was answered.
    SentDigits(String),
    /// A TwiML document was requested (the call's `Url`, a `<Gather>` action, a
    /// `<Redirect>`), with `Digits` when it is a gather's result; the server answered
    /// `status`.
    Fetched {
        url: String,
        digits: Option<String>,
        status: u16,
    },
    Said {
        language: String,
        text: String,
    },
    Paused {
        seconds: u32,
    },
    /// The person typed `digits` (the finish key excluded) and ended with `finished_on_key`
    /// (empty: the gather timed out or reached `numDigits`).
    Gathered {
        digits: String,
        finished_on_key: String,
    },
    /// A `<Gather>` got nothing usable and fell through to the next verb.
    GatherFellThrough,
    /// The TwiML said `<Hangup/>` or `<Reject/>`.
    HungUp,
    /// The TwiML could not be fetched or read: Twilio says "an application error has
    /// occurred" and hangs up.
    ApplicationError(String),
    /// A verb the stand-in does not follow (skipped).
    Unsupported(String),
}

/// A call's story.
#[derive(Debug, Clone)]
pub(crate) struct Transcript {
    pub sid: String,
    pub to: String,
    pub events: Vec<CallEvent>,
    /// The call has ended (and its last status callback was posted).
    pub done: bool,
}

impl Transcript {
    /// `(language, text)` of everything said, in order.
    pub fn said(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Said { language, text } => Some((language.clone(), text.clone())),
                _ => None,
            })
            .collect()
    }

    /// The text of everything said, joined by spaces.
    pub fn said_text(&self) -> String {
        self.said()
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `(digits, finished_on_key)` of each gather that got input.
    pub fn gathered(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Gathered {
                    digits,
                    finished_on_key,
                } => Some((digits.clone(), finished_on_key.clone())),
                _ => None,
            })
            .collect()
    }

    /// The `CallStatus` of each status callback posted.
    pub fn call_statuses(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::StatusCallback { call_status, .. } => Some(call_status.clone()),
                _ => None,
            })
            .collect()
    }

    /// The HTTP status the server gave each webhook the call posted (TwiML and status
    /// callbacks), in order.
    pub fn webhook_statuses(&self) -> Vec<u16> {
        self.events
            .iter()
            .filter_map(|e| match e {
                CallEvent::StatusCallback { status, .. } | CallEvent::Fetched { status, .. } => {
                    Some(*status)
                }
                _ => None,
            })
            .collect()
    }

    pub fn hung_up(&self) -> bool {
        self.events.contains(&CallEvent::HungUp)
    }
}

/// A status callback posted for a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageStatusPosted {
    pub message_status: String,
    pub error_code: Option<String>,
    /// The server's answer.
    pub status: u16,
}
