//! Security questions: the catalogue, a user's four answers, and the draw that a sign-in
//! asks.

use super::factors::{DEFAULT_QUESTIONS, QuestionView, second_factor_checked};
use super::{ClientContext, InProcessService, ServiceError};
use twofold_engine::answers::{self, QUESTIONS_PER_USER};
use twofold_engine::audit::AuditAction;
use twofold_engine::flow::Via;
use twofold_engine::{DomainError, Language, Settings};

impl InProcessService {
    pub async fn draw_questions(&self, user_id: &str) -> Result<Vec<QuestionView>, ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let mine: Vec<String> = self
            .store
            .answers(&user.id)
            .await?
            .into_iter()
            .map(|(q, _)| q)
            .collect();
        if !settings.security_questions_fallback
            || mine.len() < usize::from(settings.security_questions_required)
        {
            return Err(DomainError::NotEnrolled.into());
        }
        let drawn = self.kept_draw(&user.id, &mine, &settings).await?;
        let catalogue = self.store.questions(None, false).await?;
        Ok(drawn
            .into_iter()
            .map(|id| QuestionView {
                text: catalogue
                    .iter()
                    .find(|q| q.id == id)
                    .map(|q| q.text.clone())
                    .unwrap_or_else(|| id.clone()),
                id,
            })
            .collect())
    }

    /// The user's kept draw while it lasts and still fits, now lasting a while longer;
    /// otherwise a new one, kept from now on. Two sign-ins drawing at once end with the same
    /// draw (the store keeps the first).
    pub(super) async fn kept_draw(
        &self,
        user_id: &str,
        mine: &[String],
        settings: &Settings,
    ) -> Result<Vec<String>, ServiceError> {
        let required = usize::from(settings.security_questions_required);
        let now = self.clock.now();
        let kept = self.store.question_draw(user_id, now).await?;
        let fits = kept
            .as_ref()
            .is_some_and(|k| answers::draw_fits(k, mine, required));
        let replace = kept.is_some() && !fits;
        let draw = match kept {
            Some(kept) if fits => kept,
            _ => answers::draw_questions(mine, required, &mut rand::thread_rng()),
        };
        let lifetime =
            answers::draw_lifetime_seconds(i64::from(settings.lockout_window_minutes) * 60);
        Ok(self
            .store
            .keep_question_draw(user_id, &draw, now, now + lifetime, replace)
            .await?)
    }

    /// Checks answers against the user's kept draw. `asked` (what the caller showed) must be
    /// that draw, each question once; each drawn question takes exactly one answer.
    pub async fn check_answers(
        &self,
        user_id: &str,
        asked: &[String],
        given: &[(String, String)],
        client: &ClientContext,
    ) -> Result<Via, ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let stored = self.store.answers(&user.id).await?;
        let mine: Vec<String> = stored.iter().map(|(q, _)| q.clone()).collect();
        let required = usize::from(settings.security_questions_required);
        let draw = self.store.question_draw(&user.id, self.clock.now()).await?;
        let Some(draw) = draw.filter(|d| {
            settings.security_questions_fallback
                && answers::draw_fits(d, &mine, required)
                && answers::asked_is_draw(asked, d)
        }) else {
            return Err(DomainError::WrongStep.into());
        };
        // Verify every answer (no early exit), off the async workers.
        let pairs: Vec<(String, Option<String>)> = answers::answers_for_draw(&draw, given)
            .into_iter()
            .zip(&draw)
            .map(|(answer, question)| {
                let hash = stored
                    .iter()
                    .find(|(q, _)| q == question)
                    .map(|(_, h)| h.clone());
                (answer, hash)
            })
            .collect();
        // Counted before the answers are checked.
        self.reserve_attempt(&user.username, &settings, client)
            .await?;
        second_factor_checked("security_questions");
        let hasher = self.hasher.clone();
        let all_right = self
            .checked(
                &user.username,
                self.hashing.run(move || {
                    pairs
                        .iter()
                        .map(|(answer, hash)| {
                            hasher.verify(answer, hash.as_deref()).unwrap_or(false)
                        })
                        .fold(true, |acc, ok| acc & ok)
                }),
            )
            .await?;
        if all_right {
            self.factor_success(&user, Via::SecurityQuestions, client)
                .await
        } else {
            Err(self
                .factor_failure(&user, DomainError::WrongAnswers, client)
                .await?)
        }
    }

    pub(super) async fn catalogue(
        &self,
        language: Language,
    ) -> Result<Vec<QuestionView>, ServiceError> {
        let mut questions = self.store.questions(Some(language.tag()), true).await?;
        if questions.len() < QUESTIONS_PER_USER && language != Language::En {
            questions.extend(self.store.questions(Some(Language::En.tag()), true).await?);
        }
        Ok(questions
            .into_iter()
            .map(|q| QuestionView {
                id: q.id,
                text: q.text,
            })
            .collect())
    }

    pub async fn change_answers(
        &self,
        user_id: &str,
        given: &[(String, String)],
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let known: Vec<String> = self
            .store
            .questions(None, true)
            .await?
            .into_iter()
            .map(|q| q.id)
            .collect();
        answers::check_enrollment(
            given,
            &known,
            usize::from(settings.security_answer_min_length),
        )
        .map_err(DomainError::from)?;
        let hasher = self.hasher.clone();
        let normalised: Vec<(String, String)> = given
            .iter()
            .map(|(q, a)| (q.clone(), answers::normalize_answer(a)))
            .collect();
        let hashed = self
            .hashing
            .run(move || {
                normalised
                    .into_iter()
                    .map(|(q, a)| hasher.hash_secret(&a).map(|h| (q, h)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
            .map_err(DomainError::from)?;
        self.store
            .replace_answers(&user.id, &hashed, self.clock.now())
            .await?;
        self.audit(self.succeeded(AuditAction::SecurityAnswersChanged, &user, client))
            .await;
        Ok(())
    }

    pub async fn seed_questions(&self) -> Result<(), ServiceError> {
        Ok(self
            .store
            .seed_questions(DEFAULT_QUESTIONS, self.clock.now())
            .await?)
    }
}
