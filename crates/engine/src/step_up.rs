//! Step-up: changing one's own second factors needs a second factor proved moments ago.
//!
//! A session signed in through a trusted address or a one-time bypass has proved only the
//! password. Left alone, such a session could remove the token (so that the next sign-in
//! enrols with the password alone), replace it with an attacker's, or start bypass after
//! bypass. So adding, replacing or removing a factor, changing the PIN or the security
//! answers, and starting a bypass need a second factor proved within
//! [`Settings::step_up_minutes`]. A user who holds no factor that a sign-in would ask for is
//! in the position of a first enrolment: the password is all there is to prove, and the
//! change is allowed (it is how they get their first factor).

use crate::clock::UnixTime;
use crate::flow::{self, Challenge, UserFactors};
use crate::settings::Settings;

/// Whether a session may change the user's factors now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorChange {
    Allowed,
    /// Ask for this challenge first.
    ProveFirst(Challenge),
}

/// Whether a second factor proved at `proved_at` is recent enough at `now`.
pub fn is_fresh(settings: &Settings, proved_at: Option<UnixTime>, now: UnixTime) -> bool {
    let limit = i64::from(settings.step_up_minutes) * 60;
    proved_at.is_some_and(|at| at <= now && now - at <= limit)
}

/// The challenges a user can answer to prove a second factor now: their own method first,
/// then the fallbacks the settings allow.
pub fn provable(settings: &Settings, factors: &UserFactors) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = flow::primary_challenge(factors).into_iter().collect();
    for c in flow::fallbacks(settings, factors, None) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    // A held OATH token can always prove possession, whatever the method says: first, but
    // after the app (whose offline codes are that token, the app's own fallback).
    if factors.has_oath_token && !out.contains(&Challenge::Oath) {
        if out.first() == Some(&Challenge::MobileApp) {
            out.push(Challenge::Oath);
        } else {
            out.insert(0, Challenge::Oath);
        }
    }
    out
}

/// Decides whether a factor change may go ahead for a session that last proved a second
/// factor at `proved_at`.
pub fn factor_change(
    settings: &Settings,
    factors: &UserFactors,
    proved_at: Option<UnixTime>,
    now: UnixTime,
) -> FactorChange {
    if is_fresh(settings, proved_at, now) {
        return FactorChange::Allowed;
    }
    match provable(settings, factors).first() {
        Some(challenge) => FactorChange::ProveFirst(*challenge),
        None => FactorChange::Allowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Method;

    fn with_token() -> UserFactors {
        UserFactors {
            enrolled: true,
            method: Some(Method::Oath),
            has_oath_token: true,
            security_answers: 0,
            has_pin: false,
            has_phone: false,
            has_backup_phone: false,
            has_device: false,
        }
    }

    #[test]
    fn a_password_only_session_of_a_user_with_a_token_must_prove_it_first() {
        let settings = Settings::default();
        assert_eq!(
            factor_change(&settings, &with_token(), None, 1000),
            FactorChange::ProveFirst(Challenge::Oath)
        );
    }

    #[test]
    fn a_factor_proved_within_the_setting_allows_changes_and_an_older_one_does_not() {
        let settings = Settings {
            step_up_minutes: 5,
            ..Settings::default()
        };
        let f = with_token();
        assert_eq!(
            factor_change(&settings, &f, Some(1000), 1300),
            FactorChange::Allowed
        );
        assert_eq!(
            factor_change(&settings, &f, Some(1000), 1301),
            FactorChange::ProveFirst(Challenge::Oath)
        );
        assert_eq!(
            factor_change(&settings, &f, Some(2000), 1000),
            FactorChange::ProveFirst(Challenge::Oath),
            "a proof dated in the future is not fresh"
        );
    }

    #[test]
    fn a_token_held_under_another_method_is_still_asked_for() {
        let settings = Settings::default();
        let f = UserFactors {
            method: Some(Method::PhoneCall),
            ..with_token()
        };
        assert_eq!(
            factor_change(&settings, &f, None, 10),
            FactorChange::ProveFirst(Challenge::Oath)
        );
    }

    #[test]
    fn security_answers_prove_a_factor_when_they_are_a_fallback() {
        let settings = Settings {
            security_questions_fallback: true,
            security_questions_required: 2,
            ..Settings::default()
        };
        let f = UserFactors {
            enrolled: true,
            security_answers: 4,
            ..UserFactors::default()
        };
        assert_eq!(
            factor_change(&settings, &f, None, 10),
            FactorChange::ProveFirst(Challenge::SecurityQuestions)
        );
    }

    #[test]
    fn a_user_with_nothing_to_prove_enrols_with_the_password_as_at_first_sign_in() {
        let settings = Settings::default();
        assert_eq!(
            factor_change(&settings, &UserFactors::default(), None, 10),
            FactorChange::Allowed
        );
    }
}
