//! Rewording a question of the catalogue.

use super::db::query;
use super::{Store, StoreError};

impl Store {
    /// Replaces a question's text. `false` when there is no such question.
    pub async fn set_question_text(&self, id: &str, text: &str) -> Result<bool, StoreError> {
        let done = query("UPDATE security_questions SET text = $1 WHERE id = $2")
            .bind(text)
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
