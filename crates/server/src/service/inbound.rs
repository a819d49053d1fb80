//! The development inbox's answers, taken as a provider's webhooks would be: the keys a
//! developer types for a console call become the call's keys, a reply to a console text
//! becomes an inbound text. What the server says back is recorded on the inbox entry.

use super::InProcessService;
use super::telephony::CallTurn;
use crate::channels::{DevInbox, InboundEvents, InboxAnswer, InboxEvents, MessageId};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use twofold_engine::phone_call::CallStage;

/// Hands the inbox's answers to the service.
pub struct ConsoleInbound {
    service: Arc<InProcessService>,
    inbox: Arc<DevInbox>,
    /// Records each answer on its inbox entry, as the inbox alone does.
    recorder: InboxEvents,
    /// The prompt each console call waits at (Twilio keeps this in the gather's address).
    stages: Mutex<HashMap<MessageId, CallStage>>,
}

impl ConsoleInbound {
    pub fn new(service: Arc<InProcessService>, inbox: Arc<DevInbox>) -> Self {
        let recorder = InboxEvents::new(inbox.clone(), service.clock.clone());
        Self {
            service,
            inbox,
            recorder,
            stages: Mutex::new(HashMap::new()),
        }
    }

    fn said(&self, id: &MessageId, text: String) {
        let at = self.service.now();
        self.inbox.record(id, InboxAnswer::Said { at, text });
    }

    fn stage(&self, id: &MessageId) -> CallStage {
        self.stages
            .lock()
            .map(|s| s.get(id).copied().unwrap_or(CallStage::Greeting))
            .unwrap_or(CallStage::Greeting)
    }

    fn set_stage(&self, id: &MessageId, turn: &CallTurn) {
        if let Ok(mut stages) = self.stages.lock() {
            match &turn.script.gather {
                Some(g) => {
                    stages.insert(id.clone(), g.stage);
                }
                None => {
                    stages.remove(id);
                }
            }
        }
    }
}

#[async_trait]
impl InboundEvents for ConsoleInbound {
    async fn call_answered(&self, call: &MessageId, digits: &str) {
        self.recorder.call_answered(call, digits).await;
        let authentication = match self
            .service
            .store()
            .authentication_by_message_id(call.as_str())
            .await
        {
            Ok(Some(a)) => a,
            Ok(None) => {
                tracing::info!(message_id = %call, "console call answered: no authentication waits on it");
                return;
            }
            Err(e) => {
                tracing::warn!(message_id = %call, error = %e, "console call answered: store error");
                return;
            }
        };
        let stage = self.stage(call);
        match self
            .service
            .call_keys(&authentication.id, stage, authentication.version, digits)
            .await
        {
            Ok(turn) => {
                let mut text = turn.script.say.join(" ");
                if let Some(g) = &turn.script.gather {
                    text = format!("{text} {}", g.prompt).trim().to_owned();
                }
                self.set_stage(call, &turn);
                self.said(call, text);
            }
            Err(e) => {
                tracing::info!(message_id = %call, error = %e, "console call answered: refused");
                self.said(call, format!("({e})"));
            }
        }
    }

    async fn text_received(&self, from: &str, body: &str) {
        let to = self.inbox.latest_text_to(from);
        self.recorder.text_received(from, body).await;
        match self.service.text_received(from, body).await {
            Ok(Some(reply)) => {
                if let Some(id) = &to {
                    self.said(id, reply);
                }
            }
            Ok(None) => tracing::info!(from, "console text received: nothing waits on it"),
            Err(e) => tracing::warn!(from, error = %e, "console text received: refused"),
        }
    }
}
