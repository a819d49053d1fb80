use super::db::query;
use super::{Store, StoreError, bool_int, new_id};
use twofold_engine::UnixTime;

/// A question of the approved catalogue, in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionRecord {
    pub id: String,
    pub language: String,
    pub text: String,
    pub position: i64,
    pub enabled: bool,
}

impl Store {
    /// Adds the shipped questions that are not in the catalogue yet (by id); questions an
    /// administrator disabled or moved stay as they are.
    pub async fn seed_questions(
        &self,
        defaults: &[(&str, &str, &str)],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for (position, (id, language, text)) in defaults.iter().enumerate() {
            query(
                "INSERT INTO security_questions (id, language, text, position, enabled, created_at) \
                 VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(*id)
            .bind(*language)
            .bind(*text)
            .bind(i64::try_from(position).unwrap_or(0))
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The catalogue in display order; `language` filters, `enabled_only` hides disabled ones.
    pub async fn questions(
        &self,
        language: Option<&str>,
        enabled_only: bool,
    ) -> Result<Vec<QuestionRecord>, StoreError> {
        let rows = query(
            "SELECT id, language, text, position, enabled FROM security_questions \
             WHERE ($1 = '' OR language = $1) AND ($2 = 0 OR enabled = 1) ORDER BY language, position, id",
        )
        .bind(language.unwrap_or(""))
        .bind(bool_int(enabled_only))
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QuestionRecord {
                    id: row.try_get("id")?,
                    language: row.try_get("language")?,
                    text: row.try_get("text")?,
                    position: row.try_get("position")?,
                    enabled: row.try_get::<i64>("enabled")? != 0,
                })
            })
            .collect()
    }

    /// Adds a question at the end of its language's list; returns its id.
    pub async fn add_question(
        &self,
        language: &str,
        text: &str,
        now: UnixTime,
    ) -> Result<String, StoreError> {
        let id = format!("q-{}", &new_id()[..12]);
        query(
            "INSERT INTO security_questions (id, language, text, position, enabled, created_at) \
             VALUES ($1, $2, $3, (SELECT COALESCE(MAX(position), -1) + 1 FROM security_questions WHERE language = $2), 1, $4)",
        )
        .bind(&id)
        .bind(language)
        .bind(text)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(id)
    }

    /// Enables or disables a question. `false` when there is no such question.
    pub async fn set_question_enabled(&self, id: &str, enabled: bool) -> Result<bool, StoreError> {
        let done = query("UPDATE security_questions SET enabled = $1 WHERE id = $2")
            .bind(bool_int(enabled))
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves a question to `position` within its language (0 is first), shifting the others.
    pub async fn move_question(&self, id: &str, position: i64) -> Result<bool, StoreError> {
        let Some(question) = self
            .questions(None, false)
            .await?
            .into_iter()
            .find(|q| q.id == id)
        else {
            return Ok(false);
        };
        let mut ids: Vec<String> = self
            .questions(Some(&question.language), false)
            .await?
            .into_iter()
            .map(|q| q.id)
            .filter(|q| q != id)
            .collect();
        let at = usize::try_from(position.max(0)).unwrap_or(0).min(ids.len());
        ids.insert(at, id.to_owned());
        let mut tx = self.db.begin().await?;
        for (i, qid) in ids.iter().enumerate() {
            query("UPDATE security_questions SET position = $1 WHERE id = $2")
                .bind(i64::try_from(i).unwrap_or(0))
                .bind(qid)
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Replaces all of a user's answers at once.
    pub async fn replace_answers(
        &self,
        user_id: &str,
        answers: &[(String, String)],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        query("DELETE FROM security_answers WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        // A draw from the old questions has nothing left to ask.
        query("DELETE FROM security_question_draws WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        for (question_id, hash) in answers {
            query(
                "INSERT INTO security_answers (user_id, question_id, answer_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(user_id)
            .bind(question_id)
            .bind(hash)
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The user's (question id, answer hash) pairs.
    pub async fn answers(&self, user_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = query("SELECT question_id, answer_hash FROM security_answers WHERE user_id = $1 ORDER BY question_id")
            .bind(user_id)
            .fetch_all(&self.db)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("question_id")?, row.try_get("answer_hash")?)))
            .collect()
    }

    /// The questions drawn for the user, while the draw lasts (until `expires_at`).
    pub async fn question_draw(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let row = query(
            "SELECT question_ids FROM security_question_draws WHERE user_id = $1 AND expires_at > $2",
        )
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.db)
        .await?;
        row.map(|row| draw_ids(&row.try_get::<String>("question_ids")?))
            .transpose()
    }

    /// Keeps a draw for the user until `expires_at` and returns the draw now kept: `draw`
    /// if the user had none that lasts (or `replace` is set, for one that no longer fits),
    /// otherwise the one already kept, which then lasts until `expires_at` too. Two
    /// sign-ins that draw at once therefore end with one draw.
    pub async fn keep_question_draw(
        &self,
        user_id: &str,
        draw: &[String],
        now: UnixTime,
        expires_at: UnixTime,
        replace: bool,
    ) -> Result<Vec<String>, StoreError> {
        let ids = serde_json::to_string(draw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.db.begin().await?;
        query(
            "INSERT INTO security_question_draws (user_id, question_ids, drawn_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
             question_ids = CASE WHEN security_question_draws.expires_at <= $3 OR $5 = 1 \
                 THEN excluded.question_ids ELSE security_question_draws.question_ids END, \
             drawn_at = CASE WHEN security_question_draws.expires_at <= $3 OR $5 = 1 \
                 THEN excluded.drawn_at ELSE security_question_draws.drawn_at END, \
             expires_at = excluded.expires_at",
        )
        .bind(user_id)
        .bind(ids)
        .bind(now)
        .bind(expires_at)
        .bind(bool_int(replace))
        .execute(&mut tx)
        .await?;
        let row = query("SELECT question_ids FROM security_question_draws WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut tx)
            .await?;
        tx.commit().await?;
        draw_ids(&row.try_get::<String>("question_ids")?)
    }
}

fn draw_ids(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("question draw: {e}")))
}
