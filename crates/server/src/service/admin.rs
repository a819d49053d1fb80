//! Administration use cases: what the CLI does today (and the admin portal will), each
//! checked and audited here rather than by the command that asks for it.

use super::{InProcessService, ServiceError};
use crate::store::{AuditRow, QuestionRecord, ServiceAccountRecord, TokenListing};
use twofold_engine::audit::AuditAction;
use twofold_engine::{DomainError, Language, Settings};

fn no_question(id: &str) -> ServiceError {
    DomainError::InvalidRequest(format!(
        "no question {id:?}; `twofold questions list` shows the ids"
    ))
    .into()
}

impl InProcessService {
    /// The newest `lines` audit events, oldest first.
    pub async fn audit_tail(&self, lines: i64) -> Result<Vec<AuditRow>, ServiceError> {
        Ok(self.store.audit_tail(lines.clamp(1, 100_000)).await?)
    }

    /// The audit events after the one numbered `after`.
    pub async fn audit_since(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, ServiceError> {
        Ok(self
            .store
            .audit_since(after, limit.clamp(1, 100_000))
            .await?)
    }

    /// The settings as stored now (not the copy a node reuses for a moment).
    pub async fn stored_settings(&self) -> Result<Settings, ServiceError> {
        Ok(self.store.settings().await?)
    }

    /// The token inventory.
    pub async fn list_tokens(&self, limit: i64) -> Result<Vec<TokenListing>, ServiceError> {
        Ok(self.store.list_tokens(limit.clamp(1, 1_000_000)).await?)
    }

    pub async fn list_service_accounts(&self) -> Result<Vec<ServiceAccountRecord>, ServiceError> {
        Ok(self.store.list_service_accounts().await?)
    }

    /// The security-question catalogue, disabled questions included.
    pub async fn list_questions(
        &self,
        language: Option<&str>,
    ) -> Result<Vec<QuestionRecord>, ServiceError> {
        Ok(self.store.questions(language, false).await?)
    }

    async fn question_changed(&self, actor: &str, detail: String) {
        self.audit(
            self.done_by(AuditAction::SecurityQuestionChanged, actor)
                .detail(detail),
        )
        .await;
    }

    /// Adds a question to the catalogue; returns its id.
    pub async fn add_question(
        &self,
        actor: &str,
        language: Language,
        text: &str,
    ) -> Result<String, ServiceError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > 200 {
            return Err(DomainError::InvalidRequest(
                "the question must have 1 to 200 characters".into(),
            )
            .into());
        }
        let id = self
            .store
            .add_question(language.tag(), text, self.clock.now())
            .await?;
        self.question_changed(actor, format!("added {id}")).await;
        Ok(id)
    }

    /// Offers a question to users again, or stops offering it.
    pub async fn set_question_enabled(
        &self,
        actor: &str,
        id: &str,
        enabled: bool,
    ) -> Result<(), ServiceError> {
        if !self.store.set_question_enabled(id, enabled).await? {
            return Err(no_question(id));
        }
        let what = if enabled { "enabled" } else { "disabled" };
        self.question_changed(actor, format!("{what} {id}")).await;
        Ok(())
    }

    /// Moves a question to `position` in its language's list.
    pub async fn move_question(
        &self,
        actor: &str,
        id: &str,
        position: i64,
    ) -> Result<(), ServiceError> {
        if !self.store.move_question(id, position).await? {
            return Err(no_question(id));
        }
        self.question_changed(actor, format!("moved {id} to {position}"))
            .await;
        Ok(())
    }
}
