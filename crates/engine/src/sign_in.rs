//! The password step of signing in, as a pure decision.
//!
//! The caller (the server's service) gathers the facts — settings, the username's lockout
//! state, whether the password matched — and this module decides. Later factors (OATH,
//! security questions, bypass) extend the same machine.

use crate::clock::UnixTime;
use crate::error::DomainError;
use crate::lockout::{LockoutPolicy, LockoutState};

/// Before any password work: may this username try at all? (Locked, or counters already
/// full: see [`LockoutState::reserve`].)
pub fn may_attempt(
    allow_user_login: bool,
    lockout: &LockoutState,
    now: UnixTime,
    policy: LockoutPolicy,
) -> Result<(), DomainError> {
    if !allow_user_login {
        return Err(DomainError::SignInDisabled);
    }
    refusal(lockout, now, policy).map_or(Ok(()), Err)
}

/// Why an attempt at this username is refused now, if it is.
pub fn refusal(
    lockout: &LockoutState,
    now: UnixTime,
    policy: LockoutPolicy,
) -> Option<DomainError> {
    if let Some(lock) = lockout.lock(now) {
        return Some(lock.error());
    }
    if lockout.reserve(now, policy).is_some() {
        return None;
    }
    // The counters are full and the failure that filled them is in flight: the lock it
    // starts is the one to report.
    Some(lockout.settle_failure(now, policy).lock(now).map_or(
        DomainError::UserLocked {
            until: now + policy.duration_seconds,
        },
        |l| l.error(),
    ))
}

/// The outcome of a failed check, once the failure is settled in `lockout`: the lock it
/// started, or `error`.
pub fn after_failure(error: DomainError, lockout: &LockoutState, now: UnixTime) -> DomainError {
    lockout.lock(now).map_or(error, |lock| lock.error())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 2,
        window_seconds: 60,
        duration_seconds: 300,
        hard_cap: 100,
    };

    /// The password step as a table: (login allowed, state, matched) → outcome.
    #[test]
    fn password_step_table() {
        let clear = LockoutState::default();
        let one_failure = LockoutState {
            failures: 1,
            window_start: Some(990),
            consecutive: 1,
            ..LockoutState::default()
        };
        let locked = LockoutState {
            locked_until: Some(1200),
            ..LockoutState::default()
        };
        let hard_locked = LockoutState {
            consecutive: 100,
            hard_locked_at: Some(900),
            ..LockoutState::default()
        };
        let now = 1000;
        type Row = (bool, LockoutState, bool, Result<(), DomainError>);
        let table: [Row; 7] = [
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
            (true, hard_locked, true, Err(DomainError::UserHardLocked)),
            (false, clear, true, Err(DomainError::SignInDisabled)),
        ];
        for (i, (allowed, state, matched, expected)) in table.into_iter().enumerate() {
            let got = may_attempt(allowed, &state, now, POLICY).and_then(|()| {
                let Some(reserved) = state.reserve(now, POLICY) else {
                    return Err(DomainError::InvalidRequest("refused".into()));
                };
                if matched {
                    return Ok(());
                }
                let settled = reserved.settle_failure(now, POLICY);
                Err(after_failure(
                    DomainError::InvalidCredentials,
                    &settled,
                    now,
                ))
            });
            assert_eq!(got, expected, "row {i}");
        }
    }

    #[test]
    fn full_counters_are_refused_with_the_lock_they_start() {
        let full = LockoutState {
            failures: 2,
            window_start: Some(990),
            consecutive: 2,
            ..LockoutState::default()
        };
        assert_eq!(
            refusal(&full, 1000, POLICY),
            Some(DomainError::UserLocked { until: 1300 })
        );
        let cap = LockoutState {
            consecutive: 100,
            ..LockoutState::default()
        };
        assert_eq!(
            refusal(&cap, 1000, POLICY),
            Some(DomainError::UserHardLocked)
        );
    }
}
