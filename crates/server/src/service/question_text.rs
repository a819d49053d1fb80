//! Rewording a security question (the admin console's catalogue page).

use super::{InProcessService, ServiceError};
use twofold_engine::DomainError;
use twofold_engine::audit::AuditAction;

/// A question's text: 1 to 200 characters once trimmed (as when it is added).
pub fn check_question_text(text: &str) -> Result<&str, DomainError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(DomainError::InvalidRequest(
            "the question must have 1 to 200 characters".into(),
        ));
    }
    Ok(text)
}

impl InProcessService {
    /// Rewords a question. Users who chose it keep their answer: a rewording should keep the
    /// question's meaning (to ask something else, add a question and disable this one).
    pub async fn edit_question(
        &self,
        actor: &str,
        id: &str,
        text: &str,
    ) -> Result<(), ServiceError> {
        let text = check_question_text(text)?;
        if !self.store.set_question_text(id, text).await? {
            return Err(DomainError::InvalidRequest(format!("no question {id:?}")).into());
        }
        self.audit(
            self.done_by(AuditAction::SecurityQuestionChanged, actor)
                .subject(id)
                .detail(format!("reworded {id}")),
        )
        .await;
        Ok(())
    }
}
