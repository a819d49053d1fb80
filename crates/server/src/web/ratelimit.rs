//! Rate limits on signing in, per client address and per username.
//!
//! These are per node and in memory: they blunt floods cheaply. The lockout counters, which
//! every node must agree on, are in the store.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

pub struct SignInLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_username: DefaultKeyedRateLimiter<String>,
}

impl SignInLimits {
    pub fn new(per_ip_per_minute: u32, per_username_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
            per_username: RateLimiter::keyed(quota(per_username_per_minute)),
        }
    }

    /// Whether one more attempt is allowed now. Both budgets are spent only when both allow.
    pub fn allow(&self, ip: Option<IpAddr>, username: &str) -> bool {
        if let Some(ip) = ip
            && self.per_ip.check_key(&ip).is_err()
        {
            return false;
        }
        let key: String = username.trim().to_lowercase().chars().take(256).collect();
        self.per_username.check_key(&key).is_ok()
    }

    /// Forgets keys that are back to a full budget, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.per_ip.retain_recent();
        self.per_username.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_username.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_is_held_to_its_budget() {
        let limits = SignInLimits::new(3, 100);
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!((0..3).all(|i| limits.allow(Some(ip), &format!("user{i}"))));
        assert!(!limits.allow(Some(ip), "user9"));
        assert!(
            limits.allow(Some([192, 0, 2, 2].into()), "user9"),
            "another address is not affected"
        );
    }

    #[test]
    fn one_username_is_held_to_its_budget_from_any_address() {
        let limits = SignInLimits::new(100, 2);
        assert!(limits.allow(Some([192, 0, 2, 1].into()), "alice"));
        assert!(limits.allow(Some([192, 0, 2, 2].into()), "Alice"));
        assert!(!limits.allow(Some([192, 0, 2, 3].into()), "ALICE "));
    }
}
