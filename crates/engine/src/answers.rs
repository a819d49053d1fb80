//! Security questions: answers are normalised before hashing, so that "Paris", " paris "
//! and "ＰＡＲＩＳ" are the same answer; and the questions asked at sign-in are drawn at
//! random from the user's four.
//!
//! A draw belongs to the user, not to a sign-in: it is kept (in the store) for
//! [`draw_lifetime_seconds`], so signing in again does not draw again until the attacker
//! gets the questions they know. Answers are checked against that draw only, each drawn
//! question counted once.

use rand::seq::SliceRandom;
use thiserror::Error;
use unicode_normalization::UnicodeNormalization;

/// Users pick exactly this many questions at enrolment.
pub const QUESTIONS_PER_USER: usize = 4;
pub const MAX_ANSWER_CHARS: usize = 256;

#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AnswerError {
    #[error("choose {QUESTIONS_PER_USER} questions")]
    WrongCount,
    #[error("choose {QUESTIONS_PER_USER} different questions")]
    SameQuestionTwice,
    #[error("one of the questions is not in the list")]
    UnknownQuestion,
    #[error("each answer needs at least {0} characters")]
    TooShort(usize),
    #[error("each answer may have at most {MAX_ANSWER_CHARS} characters")]
    TooLong,
}

impl AnswerError {
    pub fn code(&self) -> &'static str {
        match self {
            AnswerError::WrongCount => "wrong_question_count",
            AnswerError::SameQuestionTwice => "duplicate_question",
            AnswerError::UnknownQuestion => "unknown_question",
            AnswerError::TooShort(_) => "answer_too_short",
            AnswerError::TooLong => "answer_too_long",
        }
    }
}

/// NFKC, lower case, inner whitespace collapsed to one space, trimmed.
pub fn normalize_answer(answer: &str) -> String {
    let folded: String = answer.nfkc().collect::<String>().to_lowercase();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks an enrolment: four different known questions, each answer long enough.
pub fn check_enrollment(
    answers: &[(String, String)],
    known_questions: &[String],
    min_chars: usize,
) -> Result<(), AnswerError> {
    if answers.len() != QUESTIONS_PER_USER {
        return Err(AnswerError::WrongCount);
    }
    for (i, (question, answer)) in answers.iter().enumerate() {
        if answers[..i].iter().any(|(q, _)| q == question) {
            return Err(AnswerError::SameQuestionTwice);
        }
        if !known_questions.contains(question) {
            return Err(AnswerError::UnknownQuestion);
        }
        if answer.chars().count() > MAX_ANSWER_CHARS {
            return Err(AnswerError::TooLong);
        }
        if normalize_answer(answer).chars().count() < min_chars {
            return Err(AnswerError::TooShort(min_chars));
        }
    }
    Ok(())
}

/// How long one draw is kept for a user: an hour, or the lockout window if that is longer,
/// so failures and draws add up over the same span.
pub fn draw_lifetime_seconds(lockout_window_seconds: i64) -> i64 {
    lockout_window_seconds.max(3600)
}

/// Whether a kept draw can still be asked: `count` different questions, all still among the
/// user's own (an administrator may have changed how many are asked).
pub fn draw_fits(draw: &[String], user_questions: &[String], count: usize) -> bool {
    draw.len() == count
        && draw.iter().all(|q| user_questions.contains(q))
        && draw.iter().enumerate().all(|(i, q)| !draw[..i].contains(q))
}

/// Whether the questions a caller says it asked are the draw: the same questions, each
/// once, in any order. A question repeated to make up the count does not match.
pub fn asked_is_draw(asked: &[String], draw: &[String]) -> bool {
    asked.len() == draw.len()
        && draw
            .iter()
            .all(|q| asked.iter().filter(|a| *a == q).count() == 1)
}

/// The answer given to each drawn question, normalised, in the draw's order. A question
/// answered never, or more than once, gets an empty answer, which matches no stored hash.
pub fn answers_for_draw(draw: &[String], given: &[(String, String)]) -> Vec<String> {
    draw.iter()
        .map(|question| {
            let mut answers = given.iter().filter(|(q, _)| q == question);
            match (answers.next(), answers.next()) {
                (Some((_, answer)), None) => normalize_answer(answer),
                _ => String::new(),
            }
        })
        .collect()
}

/// Draws `count` of the user's question ids to ask, in random order.
pub fn draw_questions<R: rand::Rng + ?Sized>(
    user_questions: &[String],
    count: usize,
    rng: &mut R,
) -> Vec<String> {
    let mut ids = user_questions.to_vec();
    ids.shuffle(rng);
    ids.truncate(count.min(ids.len()));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_are_the_same_however_they_are_typed() {
        assert_eq!(normalize_answer("  Paris  "), "paris");
        assert_eq!(normalize_answer("ＰＡＲＩＳ"), "paris");
        assert_eq!(normalize_answer("New\u{00A0}  York"), "new york");
        assert_eq!(normalize_answer("Zoe\u{0308}"), normalize_answer("ZOË"));
    }

    #[test]
    fn enrollment_requires_four_security_questions() {
        let known = q(&["a", "b", "c", "d", "e"]);
        let three: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|s| (s.to_string(), "answer".to_string()))
            .collect();
        assert_eq!(
            check_enrollment(&three, &known, 3),
            Err(AnswerError::WrongCount)
        );
        let four: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| (s.to_string(), "answer".to_string()))
            .collect();
        assert_eq!(check_enrollment(&four, &known, 3), Ok(()));
    }

    #[test]
    fn the_same_question_twice_is_refused() {
        let known = q(&["a", "b", "c", "d"]);
        let twice: Vec<_> = ["a", "b", "c", "a"]
            .iter()
            .map(|s| (s.to_string(), "answer".to_string()))
            .collect();
        assert_eq!(
            check_enrollment(&twice, &known, 3),
            Err(AnswerError::SameQuestionTwice)
        );
    }

    #[test]
    fn short_or_unknown_answers_are_refused() {
        let known = q(&["a", "b", "c", "d"]);
        let mut answers: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| (s.to_string(), "answer".to_string()))
            .collect();
        answers[2].1 = "  x ".into();
        assert_eq!(
            check_enrollment(&answers, &known, 3),
            Err(AnswerError::TooShort(3))
        );
        answers[2] = ("z".into(), "answer".into());
        assert_eq!(
            check_enrollment(&answers, &known, 3),
            Err(AnswerError::UnknownQuestion)
        );
    }

    #[test]
    fn a_question_repeated_to_make_up_the_count_is_not_the_draw() {
        let draw = q(&["a", "b"]);
        assert!(asked_is_draw(&q(&["a", "b"]), &draw));
        assert!(asked_is_draw(&q(&["b", "a"]), &draw));
        assert!(!asked_is_draw(&q(&["a", "a"]), &draw));
        assert!(!asked_is_draw(&q(&["a", "a", "b"]), &draw));
        assert!(!asked_is_draw(&q(&["a"]), &draw));
        assert!(!asked_is_draw(&q(&["a", "c"]), &draw));
        assert!(!asked_is_draw(&q(&[]), &draw));
    }

    #[test]
    fn each_drawn_question_takes_exactly_one_answer() {
        let draw = q(&["a", "b"]);
        let given = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(q, a)| (q.to_string(), a.to_string()))
                .collect()
        };
        assert_eq!(
            answers_for_draw(&draw, &given(&[("b", " Paris "), ("a", "Rex")])),
            vec!["rex".to_string(), "paris".to_string()]
        );
        // The one known answer sent for every slot answers only its own question.
        assert_eq!(
            answers_for_draw(&draw, &given(&[("a", "Rex"), ("a", "Rex")])),
            vec![String::new(), String::new()]
        );
        assert_eq!(
            answers_for_draw(&draw, &given(&[("a", "Rex"), ("c", "Oslo")])),
            vec!["rex".to_string(), String::new()]
        );
    }

    #[test]
    fn a_kept_draw_fits_only_while_the_users_questions_and_the_count_allow() {
        let mine = q(&["a", "b", "c", "d"]);
        assert!(draw_fits(&q(&["c", "a"]), &mine, 2));
        assert!(!draw_fits(&q(&["c", "a"]), &mine, 3));
        assert!(!draw_fits(&q(&["c", "z"]), &mine, 2));
        assert!(!draw_fits(&q(&["c", "c"]), &mine, 2));
        assert_eq!(draw_lifetime_seconds(15 * 60), 3600);
        assert_eq!(draw_lifetime_seconds(3 * 3600), 3 * 3600);
    }

    #[test]
    fn drawn_questions_are_distinct_and_from_the_users_own() {
        let mine = q(&["a", "b", "c", "d"]);
        let mut rng = rand::thread_rng();
        for _ in 0..50 {
            let drawn = draw_questions(&mine, 2, &mut rng);
            assert_eq!(drawn.len(), 2);
            assert_ne!(drawn[0], drawn[1]);
            assert!(drawn.iter().all(|d| mine.contains(d)));
        }
    }
}
