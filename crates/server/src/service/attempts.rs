//! Counting attempts at a secret (a password, a code, security answers) towards lockout,
//! and the per-node rate limits on second-factor attempts.
//!
//! Every attempt is counted in the store *before* its secret is checked, and refused when
//! the username is locked or its counters are full: however many requests arrive at once,
//! on however many nodes, no more than `lockout_threshold` secrets are checked between two
//! locks, and no more than `lockout_hard_cap` in a row without a success. The rules are the
//! engine's ([`twofold_engine::lockout`]); the store applies them in single statements.

use super::{ClientContext, InProcessService, ServiceError};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
use twofold_engine::{DomainError, Settings, sign_in};

/// Second-factor attempts one user, and one client address, may make per minute on this
/// node (the lockout counters, in the store, are what every node agrees on; these blunt
/// floods cheaply before any work).
pub struct AttemptLimits {
    per_user: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl AttemptLimits {
    /// The defaults of `[limits]`: 10 per user and 30 per address, per minute.
    pub const DEFAULT_PER_USER_PER_MINUTE: u32 = 10;
    pub const DEFAULT_PER_IP_PER_MINUTE: u32 = 30;

    pub fn new(per_user_per_minute: u32, per_ip_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            per_user: RateLimiter::keyed(quota(per_user_per_minute)),
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
        }
    }

    /// Whether one more attempt is allowed now (the address's budget is spent first).
    pub fn allow(&self, username: &str, ip: Option<IpAddr>) -> bool {
        if let Some(ip) = ip
            && self.per_ip.check_key(&ip).is_err()
        {
            return false;
        }
        self.per_user.check_key(&username.to_owned()).is_ok()
    }

    /// Forgets keys that are back to a full budget, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.per_user.retain_recent();
        self.per_ip.retain_recent();
        self.per_user.shrink_to_fit();
        self.per_ip.shrink_to_fit();
    }
}

impl Default for AttemptLimits {
    fn default() -> Self {
        Self::new(
            Self::DEFAULT_PER_USER_PER_MINUTE,
            Self::DEFAULT_PER_IP_PER_MINUTE,
        )
    }
}

impl InProcessService {
    /// Sets the per-node rate limits on second-factor attempts (`[limits]`).
    pub fn with_attempt_limits(mut self, per_user_per_minute: u32, per_ip_per_minute: u32) -> Self {
        self.attempt_limits = AttemptLimits::new(per_user_per_minute, per_ip_per_minute);
        self
    }

    /// Forgets rate-limit keys back to a full budget (called every minute).
    pub fn forget_idle_attempt_limits(&self) {
        self.attempt_limits.forget_idle();
    }

    /// Refuses a second-factor attempt beyond this node's per-user or per-address budget.
    pub(super) fn limit_attempts(
        &self,
        username: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), ServiceError> {
        if self.attempt_limits.allow(username, ip) {
            return Ok(());
        }
        metrics::counter!("twofold_sign_ins_total", "result" => "rate_limited").increment(1);
        Err(DomainError::RateLimited.into())
    }

    /// Counts one attempt at `username` before its secret is checked. Refused (with the lock
    /// to report) when the username is locked or its counters are full.
    pub(super) async fn reserve_attempt(
        &self,
        username: &str,
        settings: &Settings,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let policy = settings.lockout_policy();
        let now = self.clock.now();
        if self.store.reserve_attempt(username, now, policy).await? {
            return Ok(());
        }
        // Refused: start the lock the full counters call for (the attempt that filled them
        // may still be in flight), and report it.
        self.settle_failed_attempt(username, settings, client)
            .await?;
        let state = self.store.lockout(username).await?.state;
        Err(sign_in::refusal(&state, self.clock.now(), policy)
            .unwrap_or(DomainError::UserLocked {
                until: now + policy.duration_seconds,
            })
            .into())
    }

    /// After a failed check (or a refused reservation): starts the locks the counters call
    /// for, audits a hard lock, and returns what to report instead of `error` (the lock,
    /// when there is one now).
    pub(super) async fn settle_failed_attempt(
        &self,
        username: &str,
        settings: &Settings,
        client: &ClientContext,
    ) -> Result<Option<DomainError>, ServiceError> {
        let policy = settings.lockout_policy();
        let now = self.clock.now();
        let settled = self.store.settle_failure(username, now, policy).await?;
        if settled.hard_locked {
            tracing::warn!(
                username,
                hard_cap = policy.hard_cap,
                "consecutive failures reached the hard cap: locked until an administrator unlocks it"
            );
            metrics::counter!("twofold_hard_locks_total").increment(1);
            let (ip, ua) = client.audit();
            self.audit(
                AuditEvent::new(
                    now,
                    AuditAction::UserHardLocked,
                    AuditOutcome::Failure,
                    "system",
                )
                .subject(username)
                .client(ip, ua)
                .detail(format!(
                    "{} consecutive failures; locked until `twofold user unlock {username}`",
                    policy.hard_cap
                )),
            )
            .await;
        }
        let state = self.store.lockout(username).await?.state;
        Ok(state.lock(now).map(|lock| lock.error()))
    }

    /// A failed check of a reserved attempt: settles it and returns the error to report.
    pub(super) async fn failed_attempt(
        &self,
        username: &str,
        error: DomainError,
        settings: &Settings,
        client: &ClientContext,
    ) -> Result<DomainError, ServiceError> {
        Ok(self
            .settle_failed_attempt(username, settings, client)
            .await?
            .unwrap_or(error))
    }

    /// A whole sign-in (or a second factor) succeeded: the counters are cleared, a lock in
    /// force is not.
    pub(super) async fn successful_attempt(&self, username: &str) -> Result<(), ServiceError> {
        Ok(self
            .store
            .settle_success(username, self.clock.now())
            .await?)
    }

    /// Hands back a reservation whose check could not be made (the server's fault) or
    /// succeeded without ending a sign-in (a right password).
    pub(super) async fn release_attempt(&self, username: &str) -> Result<(), ServiceError> {
        Ok(self.store.release_attempt(username).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_user_is_held_to_their_budget_from_any_address() {
        let limits = AttemptLimits::new(2, 100);
        assert!(limits.allow("alice", Some([192, 0, 2, 1].into())));
        assert!(limits.allow("alice", Some([192, 0, 2, 2].into())));
        assert!(!limits.allow("alice", Some([192, 0, 2, 3].into())));
        assert!(limits.allow("bob", Some([192, 0, 2, 3].into())));
    }

    #[test]
    fn one_address_is_held_to_its_budget_whoever_it_tries() {
        let limits = AttemptLimits::new(100, 3);
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!((0..3).all(|i| limits.allow(&format!("user{i}"), Some(ip))));
        assert!(!limits.allow("user9", Some(ip)));
        assert!(limits.allow("user9", Some([192, 0, 2, 2].into())));
    }
}
