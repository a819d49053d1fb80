use super::db::query;
use super::{Store, StoreError, is_unique_violation};
use twofold_engine::LockoutState;

/// A lockout row as read, with the version to compare against when writing it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionedLockout {
    pub state: LockoutState,
    /// `None` when no row exists.
    pub version: Option<i64>,
}

impl Store {
    pub async fn lockout(&self, username: &str) -> Result<VersionedLockout, StoreError> {
        let row = query(
            "SELECT failures, window_start, locked_until, version FROM lockouts WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else {
            return Ok(VersionedLockout::default());
        };
        let failures: i64 = row.try_get("failures")?;
        Ok(VersionedLockout {
            state: LockoutState {
                failures: u32::try_from(failures).unwrap_or(u32::MAX),
                window_start: row.try_get("window_start")?,
                locked_until: row.try_get("locked_until")?,
            },
            version: Some(row.try_get("version")?),
        })
    }

    /// Writes `next` (or removes the row for `None`) if nobody changed it since it was read
    /// as `read`. Returns `false` on a lost race: read again and retry.
    pub async fn replace_lockout(
        &self,
        username: &str,
        read: VersionedLockout,
        next: Option<LockoutState>,
    ) -> Result<bool, StoreError> {
        let affected = match (read.version, next) {
            (None, None) => return Ok(true),
            (None, Some(state)) => {
                let result = query(
                    "INSERT INTO lockouts (username, failures, window_start, locked_until, version) \
                     VALUES ($1, $2, $3, $4, 1)",
                )
                .bind(username)
                .bind(i64::from(state.failures))
                .bind(state.window_start)
                .bind(state.locked_until)
                .execute(&self.db)
                .await;
                match result {
                    Ok(done) => done.rows_affected(),
                    Err(e) if is_unique_violation(&e) => 0,
                    Err(e) => return Err(e),
                }
            }
            (Some(version), Some(state)) => query(
                "UPDATE lockouts SET failures = $1, window_start = $2, locked_until = $3, version = $4 \
                 WHERE username = $5 AND version = $6",
            )
            .bind(i64::from(state.failures))
            .bind(state.window_start)
            .bind(state.locked_until)
            .bind(version + 1)
            .bind(username)
            .bind(version)
            .execute(&self.db)
            .await?
            .rows_affected(),
            (Some(version), None) => query("DELETE FROM lockouts WHERE username = $1 AND version = $2")
                .bind(username)
                .bind(version)
                .execute(&self.db)
                .await?
                .rows_affected(),
        };
        Ok(affected == 1)
    }

    /// Releases a lock at once (an administrator's unlock). `true` if there was one.
    pub async fn clear_lockout(&self, username: &str) -> Result<bool, StoreError> {
        let done = query("DELETE FROM lockouts WHERE username = $1")
            .bind(username)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
