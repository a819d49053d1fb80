//! The development inbox: the console channel's messages, kept in memory for `/dev/inbox`.
//!
//! It is a development tool on one node: it holds the last [`DevInbox::CAPACITY`] messages
//! of this process, forgets them at restart, and is not shared with other nodes.

use super::{Email, MessageId, PhoneCall, PushNotification, TextMessage};
use std::collections::VecDeque;
use std::sync::Mutex;
use twofold_engine::UnixTime;

/// One message the console channel did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxMessage {
    Call(PhoneCall),
    Text(TextMessage),
    Email(Email),
    Push(PushNotification),
}

/// What came back for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxAnswer {
    /// Digits typed during a call.
    Digits { at: UnixTime, digits: String },
    /// A text message sent back from the number a text went to.
    Reply { at: UnixTime, body: String },
    /// What the server said back: the call's next words, or its text reply.
    Said { at: UnixTime, text: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub id: MessageId,
    pub at: UnixTime,
    pub message: InboxMessage,
    /// Oldest first.
    pub answers: Vec<InboxAnswer>,
}

/// The last messages of the console channel, newest first.
#[derive(Debug)]
pub struct DevInbox {
    capacity: usize,
    entries: Mutex<VecDeque<InboxEntry>>,
}

impl DevInbox {
    /// How many messages the inbox keeps; older ones are forgotten.
    pub const CAPACITY: usize = 200;
    /// The most answers kept for one message.
    const ANSWERS_PER_MESSAGE: usize = 20;

    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn entries_mut(&self) -> std::sync::MutexGuard<'_, VecDeque<InboxEntry>> {
        // A panic while holding the lock cannot leave the list half-changed: every change
        // is one push or pop.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `message`, forgetting the oldest beyond the capacity.
    pub fn add(&self, id: MessageId, at: UnixTime, message: InboxMessage) {
        let mut entries = self.entries_mut();
        entries.push_front(InboxEntry {
            id,
            at,
            message,
            answers: Vec::new(),
        });
        entries.truncate(self.capacity);
    }

    /// Every message kept, newest first.
    pub fn entries(&self) -> Vec<InboxEntry> {
        self.entries_mut().iter().cloned().collect()
    }

    pub fn get(&self, id: &MessageId) -> Option<InboxEntry> {
        self.entries_mut().iter().find(|e| &e.id == id).cloned()
    }

    /// Records `answer` on message `id`; `false` when the inbox no longer holds it.
    pub fn record(&self, id: &MessageId, answer: InboxAnswer) -> bool {
        let mut entries = self.entries_mut();
        let Some(entry) = entries.iter_mut().find(|e| &e.id == id) else {
            return false;
        };
        if entry.answers.len() >= Self::ANSWERS_PER_MESSAGE {
            entry.answers.remove(0);
        }
        entry.answers.push(answer);
        true
    }

    /// The newest text message sent to `number`: where a reply from it belongs.
    pub fn latest_text_to(&self, number: &str) -> Option<MessageId> {
        self.entries_mut()
            .iter()
            .find(|e| matches!(&e.message, InboxMessage::Text(t) if t.to == number))
            .map(|e| e.id.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn text(to: &str, body: &str) -> InboxMessage {
        InboxMessage::Text(TextMessage {
            authentication_id: None,
            to: to.into(),
            body: body.into(),
            reply_expected: true,
        })
    }

    #[test]
    fn the_inbox_lists_newest_first_and_forgets_beyond_its_capacity() {
        let inbox = DevInbox::new(3);
        for i in 0..5 {
            inbox.add(MessageId(format!("m{i}")), i, text("+33600000000", "x"));
        }
        let ids: Vec<String> = inbox.entries().into_iter().map(|e| e.id.0).collect();
        assert_eq!(ids, ["m4", "m3", "m2"]);
        assert!(inbox.get(&MessageId("m0".into())).is_none());
    }

    #[test]
    fn a_reply_belongs_to_the_newest_text_to_its_number() {
        let inbox = DevInbox::new(10);
        inbox.add(MessageId("a".into()), 1, text("+33611111111", "first"));
        inbox.add(MessageId("b".into()), 2, text("+33622222222", "other"));
        inbox.add(MessageId("c".into()), 3, text("+33611111111", "second"));
        assert_eq!(
            inbox.latest_text_to("+33611111111"),
            Some(MessageId("c".into()))
        );
        assert_eq!(inbox.latest_text_to("+33699999999"), None);
        assert!(inbox.record(
            &MessageId("c".into()),
            InboxAnswer::Reply {
                at: 4,
                body: "123456".into()
            }
        ));
        assert!(!inbox.record(
            &MessageId("gone".into()),
            InboxAnswer::Reply {
                at: 4,
                body: "x".into()
            }
        ));
        assert_eq!(inbox.get(&MessageId("c".into())).unwrap().answers.len(), 1);
    }
}
