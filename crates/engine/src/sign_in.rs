//! The password step of signing in, as a pure decision.
//!
//! The caller (the server's service) gathers the facts — settings, the username's lockout
//! state, whether the password matched — and this module decides. Later factors (OATH,
//! security questions, bypass) extend the same machine.

use crate::clock::UnixTime;
use crate::error::DomainError;
use crate::lockout::{LockoutPolicy, LockoutState};

/// Before any password work: may this username try at all?
pub fn may_attempt(
    allow_user_login: bool,
    lockout: &LockoutState,
    now: UnixTime,
) -> Result<(), DomainError> {
    if !allow_user_login {
        return Err(DomainError::SignInDisabled);
    }
    if let Some(until) = lockout.locked_at(now) {
        return Err(DomainError::UserLocked { until });
    }
    Ok(())
}

/// The result of a password check: the outcome and the lockout state to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordDecision {
    pub outcome: Result<(), DomainError>,
    /// `None` means "clear the counters".
    pub lockout: Option<LockoutState>,
}

/// After the password was checked (against the real hash, or the dummy one).
pub fn after_password(
    password_matched: bool,
    lockout: &LockoutState,
    now: UnixTime,
    policy: LockoutPolicy,
) -> PasswordDecision {
    if password_matched {
        return PasswordDecision {
            outcome: Ok(()),
            lockout: None,
        };
    }
    let next = lockout.after_failure(now, policy);
    let outcome = match next.locked_at(now) {
        Some(until) => Err(DomainError::UserLocked { until }),
        None => Err(DomainError::InvalidCredentials),
    };
    PasswordDecision {
        outcome,
        lockout: Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 2,
        window_seconds: 60,
        duration_seconds: 300,
    };

    /// The password step as a table: (login allowed, state, matched) → outcome.
    #[test]
    fn password_step_table() {
        let clear = LockoutState::default();
        let one_failure = LockoutState {
            failures: 1,
            window_start: Some(990),
            locked_until: None,
        };
        let locked = LockoutState {
            failures: 0,
            window_start: None,
            locked_until: Some(1200),
        };
        let now = 1000;
        type Row = (bool, LockoutState, bool, Result<(), DomainError>);
        let table: [Row; 6] = [
            (true, clear, true, Ok(())),
            (true, clear, false, Err(DomainError::InvalidCredentials)),
            (
                true,
                one_failure,
                false,
                Err(DomainError::UserLocked { until: 1300 }),
            ),
            (true, one_failure, true, Ok(())),
            (
                true,
                locked,
                true,
                Err(DomainError::UserLocked { until: 1200 }),
            ),
            (false, clear, true, Err(DomainError::SignInDisabled)),
        ];
        for (i, (allowed, state, matched, expected)) in table.into_iter().enumerate() {
            let got = may_attempt(allowed, &state, now)
                .and_then(|()| after_password(matched, &state, now, POLICY).outcome);
            assert_eq!(got, expected, "row {i}");
        }
    }

    #[test]
    fn success_clears_the_counters() {
        let state = LockoutState {
            failures: 1,
            window_start: Some(990),
            locked_until: None,
        };
        assert_eq!(after_password(true, &state, 1000, POLICY).lockout, None);
    }
}
