//! The console's audit log and reports: searching the log a page at a time, recording who
//! exported it, and the counts the reports page draws.

use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{AuditFilter, AuditRow, DAY, DayCount, UserStates};
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};

/// The days a report may cover.
pub const REPORT_DAYS: std::ops::RangeInclusive<i64> = 7..=365;

/// What the reports page shows, for the `days` UTC days ending today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The first day covered (days since 1970-01-01, UTC).
    pub first_day: i64,
    pub days: i64,
    /// Successful sign-ins by day, keyed by how the second step was proved.
    pub sign_ins: Vec<DayCount>,
    /// Failed sign-ins by day.
    pub failed_sign_ins: Vec<DayCount>,
    /// Users locked out until an administrator unlocks them, by day.
    pub hard_locked: Vec<DayCount>,
    /// Users blocked by a fraud report, by day.
    pub fraud_blocked: Vec<DayCount>,
    /// One-time bypasses started, by day.
    pub bypassed: Vec<DayCount>,
    /// Users by state now.
    pub users: UserStates,
}

/// How a successful sign-in was proved, from its event's `detail` (`oath`; a step-up's
/// `step_up oath` counts as `oath`).
pub fn sign_in_method(detail: Option<&str>) -> &str {
    detail
        .and_then(|d| d.split_whitespace().last())
        .unwrap_or("unknown")
}

impl InProcessService {
    /// Up to `limit` events matching `filter`, numbered below `before`, newest first.
    pub async fn search_audit(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, ServiceError> {
        Ok(self
            .store
            .search_audit(filter, before, limit.clamp(1, 10_000))
            .await?)
    }

    /// Records that the client's actor exported the audit log with `filters` (as the page's
    /// query string shows them).
    pub async fn record_audit_export(&self, client: &ClientContext, filters: &str) {
        let (ip, ua) = client.audit();
        let event = AuditEvent::new(
            self.clock.now(),
            AuditAction::AuditExported,
            AuditOutcome::Success,
            client.actor.clone().unwrap_or_else(|| "unknown".to_owned()),
        )
        .client(ip, ua)
        .detail(if filters.is_empty() {
            "everything".to_owned()
        } else {
            filters.chars().take(1000).collect()
        });
        self.audit(event).await;
    }

    /// The counts of the reports page over the last `days` UTC days (today included).
    pub async fn report(&self, days: i64) -> Result<Report, ServiceError> {
        let days = days.clamp(*REPORT_DAYS.start(), *REPORT_DAYS.end());
        let today = self.clock.now().div_euclid(DAY);
        let first_day = today - days + 1;
        let since = first_day * DAY;
        let store = &self.store;
        let per_day = |action: AuditAction, outcome: Option<AuditOutcome>| {
            store.events_by_day(action.as_str(), outcome.map(AuditOutcome::as_str), since)
        };
        Ok(Report {
            first_day,
            days,
            sign_ins: store.sign_ins_by_method(since).await?,
            failed_sign_ins: per_day(AuditAction::SignIn, Some(AuditOutcome::Failure)).await?,
            hard_locked: per_day(AuditAction::UserHardLocked, None).await?,
            fraud_blocked: per_day(AuditAction::FraudReported, None).await?,
            bypassed: per_day(AuditAction::BypassStarted, None).await?,
            users: store.user_states().await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_up_counts_under_the_method_that_proved_it() {
        assert_eq!(sign_in_method(Some("oath")), "oath");
        assert_eq!(sign_in_method(Some("step_up mobile_app")), "mobile_app");
        assert_eq!(sign_in_method(None), "unknown");
    }
}
