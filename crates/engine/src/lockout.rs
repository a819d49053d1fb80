//! Lockout: N failures within a window lock the username for a while, and a hard cap on
//! *consecutive* failures locks it until an administrator releases it.
//!
//! The state is kept per *username as typed* (after normalisation), whether or not an account
//! exists, so that "this account is locked" can never be used to learn which usernames exist.
//!
//! ## Counting before checking
//!
//! Every attempt is counted *before* its secret is checked ([`LockoutState::reserve`]), and
//! refused when the counters are already full, so that concurrent attempts can never check
//! more than `threshold` secrets between two locks, nor more than `hard_cap` in a row. After
//! the check, a failure may start a lock ([`LockoutState::settle_failure`]); a success
//! clears the counters but never a lock in force ([`LockoutState::after_success`]), since
//! other attempts may have filled the counters meanwhile. A right password is only a step of
//! a sign-in: its reservation is handed back ([`LockoutState::release`]) rather than clearing
//! anything.
//!
//! The store applies these same rules as single conditional statements (the store's tests
//! check that they agree with this model), so any number of nodes agree without retries.
//!
//! ## Why a hard cap
//!
//! The window lock ends by itself and forgets failures once it starts, so on its own it
//! slows a patient guesser but never stops one (with the defaults, about 400 guesses a day at
//! a code, forever). The consecutive count is cleared only by a success or an
//! administrator: when it reaches `hard_cap` (at most 100, as NIST SP 800-63B §5.2.2
//! requires), the username stays locked until `twofold user unlock`.

use crate::clock::UnixTime;
use crate::error::DomainError;
use serde::{Deserialize, Serialize};

/// The most consecutive failures any configuration may allow (NIST SP 800-63B).
pub const MAX_HARD_CAP: u32 = 100;

/// How many failures, within how long, lock for how long; and how many in a row lock until
/// an administrator releases the username. From the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub window_seconds: i64,
    pub duration_seconds: i64,
    /// Consecutive failures (whatever the window) that lock until an administrator unlocks.
    pub hard_cap: u32,
}

/// The lockout counters of one username, as the store keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LockoutState {
    /// Attempts counted in the current window (a reserved attempt counts until it settles).
    pub failures: u32,
    pub window_start: Option<UnixTime>,
    pub locked_until: Option<UnixTime>,
    /// Failed attempts since the last success, whatever the window; only a success or an
    /// administrator clears it.
    #[serde(default)]
    pub consecutive: u32,
    /// Set when `consecutive` reached the hard cap: locked until an administrator unlocks.
    #[serde(default)]
    pub hard_locked_at: Option<UnixTime>,
}

/// Why a username is locked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lock {
    /// Released by itself at this moment.
    Until(UnixTime),
    /// Released only by an administrator.
    UntilReleased,
}

impl Lock {
    pub fn error(self) -> DomainError {
        match self {
            Lock::Until(until) => DomainError::UserLocked { until },
            Lock::UntilReleased => DomainError::UserHardLocked,
        }
    }
}

impl LockoutState {
    /// When the username is under a lock that ends by itself at `now`, the moment it ends.
    pub fn locked_at(&self, now: UnixTime) -> Option<UnixTime> {
        self.locked_until.filter(|until| *until > now)
    }

    /// Whether the username is hard-locked (until an administrator releases it).
    pub fn is_hard_locked(&self) -> bool {
        self.hard_locked_at.is_some()
    }

    /// The lock in force at `now`, the hard lock first.
    pub fn lock(&self, now: UnixTime) -> Option<Lock> {
        if self.is_hard_locked() {
            return Some(Lock::UntilReleased);
        }
        self.locked_at(now).map(Lock::Until)
    }

    fn window_open(&self, now: UnixTime, policy: LockoutPolicy) -> bool {
        self.window_start
            .is_some_and(|start| now - start < policy.window_seconds)
    }

    /// Counts one attempt before its check. `None` when the attempt is refused: locked, or
    /// the counters already hold `threshold` attempts in the window or `hard_cap` in a row
    /// (the failure that filled them may still be in flight).
    pub fn reserve(&self, now: UnixTime, policy: LockoutPolicy) -> Option<LockoutState> {
        if self.lock(now).is_some() || self.consecutive >= policy.hard_cap {
            return None;
        }
        let in_window = self.window_open(now, policy);
        if in_window && self.failures >= policy.threshold {
            return None;
        }
        let (failures, window_start) = if in_window {
            (self.failures.saturating_add(1), self.window_start)
        } else {
            (1, Some(now))
        };
        Some(LockoutState {
            failures,
            window_start,
            consecutive: self.consecutive.saturating_add(1),
            ..*self
        })
    }

    /// After a failed check (or a refused reservation): starts the lock the counters call
    /// for. The window lock starts a fresh window when it ends; the hard lock stays.
    pub fn settle_failure(&self, now: UnixTime, policy: LockoutPolicy) -> LockoutState {
        let mut next = *self;
        if next.hard_locked_at.is_none() && next.consecutive >= policy.hard_cap {
            next.hard_locked_at = Some(now);
        }
        if next.locked_at(now).is_none()
            && self.window_open(now, policy)
            && next.failures >= policy.threshold
        {
            next.locked_until = Some(now + policy.duration_seconds);
            next.failures = 0;
            next.window_start = None;
        }
        next
    }

    /// After a successful sign-in: the counters are cleared, a lock in force is not.
    pub fn after_success(&self) -> LockoutState {
        if self.is_hard_locked() {
            return *self;
        }
        LockoutState {
            failures: 0,
            window_start: None,
            consecutive: 0,
            ..*self
        }
    }

    /// Hands back a reservation whose check succeeded without finishing a sign-in (a right
    /// password): as if the attempt had not been counted.
    pub fn release(&self) -> LockoutState {
        LockoutState {
            failures: self.failures.saturating_sub(1),
            consecutive: self.consecutive.saturating_sub(1),
            ..*self
        }
    }

    /// Whether nothing is left worth keeping (the store may delete the row).
    pub fn is_clear(&self, now: UnixTime, policy: LockoutPolicy) -> bool {
        self.lock(now).is_none() && self.consecutive == 0 && !self.window_open(now, policy)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        window_seconds: 600,
        duration_seconds: 900,
        hard_cap: 100,
    };

    /// One failed attempt: counted first, settled after the check.
    fn fail(s: LockoutState, now: UnixTime, policy: LockoutPolicy) -> LockoutState {
        match s.reserve(now, policy) {
            Some(reserved) => reserved.settle_failure(now, policy),
            None => s.settle_failure(now, policy),
        }
    }

    #[test]
    fn the_threshold_th_failure_within_the_window_locks() {
        let mut s = LockoutState::default();
        s = fail(s, 1000, POLICY);
        s = fail(s, 1100, POLICY);
        assert_eq!(s.locked_at(1100), None);
        s = fail(s, 1200, POLICY);
        assert_eq!(s.locked_at(1200), Some(2100));
        assert_eq!(s.locked_at(2099), Some(2100));
        assert_eq!(s.locked_at(2100), None, "released after the duration");
        assert_eq!(s.lock(1500), Some(Lock::Until(2100)));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let mut s = LockoutState::default();
        s = fail(s, 1000, POLICY);
        s = fail(s, 1500, POLICY);
        s = fail(s, 1700, POLICY); // the first failure left the window at 1600
        assert_eq!(s.locked_at(1700), None);
        assert_eq!(s.failures, 1);
        assert_eq!(s.consecutive, 3, "but they still count in a row");
    }

    #[test]
    fn attempts_while_locked_are_refused_and_do_not_extend_the_lock() {
        let locked = LockoutState {
            locked_until: Some(2000),
            ..LockoutState::default()
        };
        assert_eq!(locked.reserve(1500, POLICY), None);
        assert_eq!(fail(locked, 1500, POLICY), locked);
    }

    #[test]
    fn a_threshold_of_one_locks_on_the_first_failure() {
        let policy = LockoutPolicy {
            threshold: 1,
            ..POLICY
        };
        let s = fail(LockoutState::default(), 10, policy);
        assert_eq!(s.locked_at(10), Some(910));
    }

    #[test]
    fn concurrent_attempts_beyond_the_threshold_are_refused_before_any_check() {
        // Three attempts reserved at once, none settled yet: a fourth is refused.
        let mut s = LockoutState::default();
        for _ in 0..3 {
            s = s.reserve(1000, POLICY).unwrap();
        }
        assert_eq!(s.reserve(1000, POLICY), None);
        // The refusal starts the lock that the attempts in flight will find.
        let refused = s.settle_failure(1000, POLICY);
        assert_eq!(refused.locked_at(1000), Some(1900));
        // One of those in flight succeeds: the lock stays.
        assert_eq!(refused.after_success().locked_at(1000), Some(1900));
    }

    #[test]
    fn a_patient_guesser_is_stopped_for_good_at_the_hard_cap() {
        let policy = LockoutPolicy {
            hard_cap: 10,
            ..POLICY
        };
        let mut s = LockoutState::default();
        let mut now = 0;
        let mut checked = 0;
        // Guess as fast as the window locks allow, for a year.
        while now < 365 * 86_400 {
            if let Some(reserved) = s.reserve(now, policy) {
                checked += 1;
                s = reserved.settle_failure(now, policy);
            }
            now += 60;
        }
        assert_eq!(checked, 10, "no guess after the hard cap");
        assert_eq!(s.lock(now), Some(Lock::UntilReleased));
        assert_eq!(s.lock(now).unwrap().error(), DomainError::UserHardLocked);
    }

    #[test]
    fn only_a_success_clears_the_consecutive_count() {
        let mut s = LockoutState::default();
        for i in 0..5 {
            s = fail(s, i64::from(i) * 10_000, POLICY);
        }
        assert_eq!(s.consecutive, 5);
        s = s.reserve(100_000, POLICY).unwrap().release();
        assert_eq!(s.consecutive, 5, "a right password alone clears nothing");
        s = s.after_success();
        assert_eq!(s.consecutive, 0);
    }

    #[test]
    fn a_success_does_not_release_a_hard_lock() {
        let s = LockoutState {
            consecutive: 100,
            hard_locked_at: Some(5),
            ..LockoutState::default()
        };
        assert_eq!(s.after_success(), s);
        assert_eq!(s.reserve(10, POLICY), None);
    }

    #[test]
    fn state_is_clear_once_window_and_lock_have_passed() {
        let s = fail(LockoutState::default(), 1000, POLICY);
        assert!(!s.is_clear(1000, POLICY));
        assert!(!s.is_clear(1600, POLICY), "one failure in a row remains");
        assert!(s.after_success().is_clear(1600, POLICY));
    }
}
