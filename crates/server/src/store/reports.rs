//! The console's reports: counts from the audit log by day, and users by state now.

use super::db::query;
use super::{Store, StoreError};
use twofold_engine::UnixTime;

/// Seconds in a day: reports count by UTC day (`at / 86400`).
pub const DAY: i64 = 86_400;

/// How many events of one kind happened on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// What was counted: a sign-in's method (`detail`), or an action.
    pub key: Option<String>,
    pub count: i64,
}

/// Users by their state now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserStates {
    /// Enabled, with their enrolment finished.
    pub enrolled: i64,
    /// Enabled, enrolment unfinished.
    pub not_enrolled: i64,
    pub disabled: i64,
}

fn day_counts(rows: &[super::db::Row]) -> Result<Vec<DayCount>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(DayCount {
                day: row.try_get("day")?,
                key: row.try_get("k")?,
                count: row.try_get("n")?,
            })
        })
        .collect()
}

impl Store {
    /// Successful sign-ins since `since`, by day and by how they were proved (the event's
    /// `detail`).
    pub async fn sign_ins_by_method(&self, since: UnixTime) -> Result<Vec<DayCount>, StoreError> {
        let rows = query(
            "SELECT at / 86400 AS day, detail AS k, COUNT(*) AS n FROM audit_log \
             WHERE action = 'sign_in' AND outcome = 'success' AND at >= $1 \
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(&self.db)
        .await?;
        day_counts(&rows)
    }

    /// Events of `action` since `since`, by day (only those with `outcome`, when given).
    pub async fn events_by_day(
        &self,
        action: &str,
        outcome: Option<&str>,
        since: UnixTime,
    ) -> Result<Vec<DayCount>, StoreError> {
        let q = match outcome {
            Some(outcome) => query(
                "SELECT at / 86400 AS day, action AS k, COUNT(*) AS n FROM audit_log \
                 WHERE action = $1 AND at >= $2 AND outcome = $3 \
                 GROUP BY 1, 2 ORDER BY 1",
            )
            .bind(action)
            .bind(since)
            .bind(outcome),
            None => query(
                "SELECT at / 86400 AS day, action AS k, COUNT(*) AS n FROM audit_log \
                 WHERE action = $1 AND at >= $2 \
                 GROUP BY 1, 2 ORDER BY 1",
            )
            .bind(action)
            .bind(since),
        };
        let rows = q.fetch_all(&self.db).await?;
        day_counts(&rows)
    }

    /// Every user, counted by state.
    pub async fn user_states(&self) -> Result<UserStates, StoreError> {
        let rows = query(
            "SELECT CASE WHEN enabled = 0 THEN 'disabled' \
                         WHEN enrolled_at IS NOT NULL THEN 'enrolled' \
                         ELSE 'not_enrolled' END AS k, \
                    COUNT(*) AS n \
             FROM users GROUP BY 1",
        )
        .fetch_all(&self.db)
        .await?;
        let mut states = UserStates::default();
        for row in &rows {
            let key: String = row.try_get("k")?;
            let n: i64 = row.try_get("n")?;
            match key.as_str() {
                "disabled" => states.disabled = n,
                "enrolled" => states.enrolled = n,
                _ => states.not_enrolled = n,
            }
        }
        Ok(states)
    }
}
