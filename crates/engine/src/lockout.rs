//! Lockout: N failures within a window lock the username for a while.
//!
//! The state is kept per *username as typed* (after normalisation), whether or not an account
//! exists, so that "this account is locked" can never be used to learn which usernames exist.

use crate::clock::UnixTime;
use serde::{Deserialize, Serialize};

/// How many failures, within how long, lock for how long. From the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub window_seconds: i64,
    pub duration_seconds: i64,
}

/// The lockout counters of one username, as the store keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LockoutState {
    pub failures: u32,
    pub window_start: Option<UnixTime>,
    pub locked_until: Option<UnixTime>,
}

impl LockoutState {
    /// When the username is locked at `now`, the moment it will be released.
    pub fn locked_at(&self, now: UnixTime) -> Option<UnixTime> {
        self.locked_until.filter(|until| *until > now)
    }

    /// The state after one more failure at `now`.
    pub fn after_failure(&self, now: UnixTime, policy: LockoutPolicy) -> LockoutState {
        if self.locked_at(now).is_some() {
            return *self;
        }
        let in_window = self
            .window_start
            .is_some_and(|start| now - start < policy.window_seconds);
        let (failures, window_start) = if in_window {
            (self.failures.saturating_add(1), self.window_start)
        } else {
            (1, Some(now))
        };
        if failures >= policy.threshold {
            LockoutState {
                failures: 0,
                window_start: None,
                locked_until: Some(now + policy.duration_seconds),
            }
        } else {
            LockoutState {
                failures,
                window_start,
                locked_until: None,
            }
        }
    }

    /// Whether nothing is left worth keeping (the store may delete the row).
    pub fn is_clear(&self, now: UnixTime, policy: LockoutPolicy) -> bool {
        self.locked_at(now).is_none()
            && self
                .window_start
                .is_none_or(|start| now - start >= policy.window_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        window_seconds: 600,
        duration_seconds: 900,
    };

    #[test]
    fn the_threshold_th_failure_within_the_window_locks() {
        let mut s = LockoutState::default();
        s = s.after_failure(1000, POLICY);
        s = s.after_failure(1100, POLICY);
        assert_eq!(s.locked_at(1100), None);
        s = s.after_failure(1200, POLICY);
        assert_eq!(s.locked_at(1200), Some(2100));
        assert_eq!(s.locked_at(2099), Some(2100));
        assert_eq!(s.locked_at(2100), None, "released after the duration");
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let mut s = LockoutState::default();
        s = s.after_failure(1000, POLICY);
        s = s.after_failure(1500, POLICY);
        s = s.after_failure(1700, POLICY); // the first failure left the window at 1600
        assert_eq!(s.locked_at(1700), None);
        assert_eq!(s.failures, 1);
    }

    #[test]
    fn failures_while_locked_do_not_extend_the_lock() {
        let locked = LockoutState {
            failures: 0,
            window_start: None,
            locked_until: Some(2000),
        };
        assert_eq!(locked.after_failure(1500, POLICY), locked);
    }

    #[test]
    fn a_threshold_of_one_locks_on_the_first_failure() {
        let policy = LockoutPolicy {
            threshold: 1,
            ..POLICY
        };
        let s = LockoutState::default().after_failure(10, policy);
        assert_eq!(s.locked_at(10), Some(910));
    }

    #[test]
    fn state_is_clear_once_window_and_lock_have_passed() {
        let s = LockoutState::default().after_failure(1000, POLICY);
        assert!(!s.is_clear(1000, POLICY));
        assert!(s.is_clear(1600, POLICY));
    }
}
