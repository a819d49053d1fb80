//! Lockout counters, changed only by single conditional statements so that every node
//! agrees without reading first: the rules are the engine's ([`twofold_engine::lockout`]),
//! written here in SQL (the store's tests check the two agree, on both backends).

use super::db::{Db, query};
use super::{Store, StoreError};
use twofold_engine::{LockoutPolicy, LockoutState, UnixTime};

/// A lockout row as read, with its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionedLockout {
    pub state: LockoutState,
    /// `None` when no row exists.
    pub version: Option<i64>,
}

/// What settling a failure changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// This failure (or refusal) reached the hard cap: the username is now locked until an
    /// administrator unlocks it. True for exactly one caller.
    pub hard_locked: bool,
    /// This failure started a lock that ends by itself.
    pub locked: bool,
}

/// The window is open at `$2` (now), `$3` being the window's length in seconds.
const WINDOW_OPEN: &str = "lockouts.window_start IS NOT NULL AND $2 - lockouts.window_start < $3";

fn u32_column(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

impl Store {
    pub async fn lockout(&self, username: &str) -> Result<VersionedLockout, StoreError> {
        let row = query(
            "SELECT failures, window_start, locked_until, consecutive, hard_locked_at, version \
             FROM lockouts WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else {
            return Ok(VersionedLockout::default());
        };
        Ok(VersionedLockout {
            state: LockoutState {
                failures: u32_column(row.try_get("failures")?),
                window_start: row.try_get("window_start")?,
                locked_until: row.try_get("locked_until")?,
                consecutive: u32_column(row.try_get("consecutive")?),
                hard_locked_at: row.try_get("hard_locked_at")?,
            },
            version: Some(row.try_get("version")?),
        })
    }

    /// Counts one attempt before its check ([`LockoutState::reserve`]), in one statement.
    /// `false` when the attempt is refused: the username is locked, or its counters are full.
    pub async fn reserve_attempt(
        &self,
        username: &str,
        now: UnixTime,
        policy: LockoutPolicy,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "INSERT INTO lockouts (username, failures, window_start, locked_until, consecutive, hard_locked_at, version) \
             VALUES ($1, 1, $2, NULL, 1, NULL, 1) \
             ON CONFLICT (username) DO UPDATE SET \
               failures = CASE WHEN {WINDOW_OPEN} THEN lockouts.failures + 1 ELSE 1 END, \
               window_start = CASE WHEN {WINDOW_OPEN} THEN lockouts.window_start ELSE $2 END, \
               consecutive = lockouts.consecutive + 1, \
               version = lockouts.version + 1 \
             WHERE lockouts.hard_locked_at IS NULL \
               AND (lockouts.locked_until IS NULL OR lockouts.locked_until <= $2) \
               AND lockouts.consecutive < $5 \
               AND NOT ({WINDOW_OPEN} AND lockouts.failures >= $4)"
        );
        let done = query(sql)
            .bind(username)
            .bind(now)
            .bind(policy.window_seconds)
            .bind(i64::from(policy.threshold))
            .bind(i64::from(policy.hard_cap))
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// After a failed check or a refused reservation: starts the locks the counters call for
    /// ([`LockoutState::settle_failure`]).
    pub async fn settle_failure(
        &self,
        username: &str,
        now: UnixTime,
        policy: LockoutPolicy,
    ) -> Result<Settled, StoreError> {
        let hard = query(
            "UPDATE lockouts SET hard_locked_at = $2, version = version + 1 \
             WHERE username = $1 AND hard_locked_at IS NULL AND consecutive >= $3",
        )
        .bind(username)
        .bind(now)
        .bind(i64::from(policy.hard_cap));
        let window = query(format!(
            "UPDATE lockouts SET locked_until = $2 + $5, failures = 0, window_start = NULL, \
             version = version + 1 \
             WHERE username = $1 AND (locked_until IS NULL OR locked_until <= $2) \
               AND {WINDOW_OPEN} AND failures >= $4"
        ))
        .bind(username)
        .bind(now)
        .bind(policy.window_seconds)
        .bind(i64::from(policy.threshold))
        .bind(policy.duration_seconds);
        let changed = self.db.execute_all(vec![hard, window]).await?;
        Ok(Settled {
            hard_locked: changed.first() == Some(&1),
            locked: changed.get(1) == Some(&1),
        })
    }

    /// After a successful sign-in: clears the counters, but never a lock in force
    /// ([`LockoutState::after_success`]); the row goes when nothing is left in it.
    pub async fn settle_success(&self, username: &str, now: UnixTime) -> Result<(), StoreError> {
        if let Db::Postgres(_) = &self.db {
            // One statement: both parts see the row as it was, and the clearing applies only
            // when the row stays (a lock in force).
            query(
                "WITH gone AS (DELETE FROM lockouts WHERE username = $1 AND hard_locked_at IS NULL \
                 AND (locked_until IS NULL OR locked_until <= $2) RETURNING username) \
                 UPDATE lockouts SET failures = 0, window_start = NULL, consecutive = 0, \
                 version = version + 1 WHERE username = $1 AND hard_locked_at IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM gone)",
            )
            .bind(username)
            .bind(now)
            .execute(&self.db)
            .await?;
            return Ok(());
        }
        let delete = query(
            "DELETE FROM lockouts WHERE username = $1 AND hard_locked_at IS NULL \
             AND (locked_until IS NULL OR locked_until <= $2)",
        )
        .bind(username)
        .bind(now);
        let clear = query(
            "UPDATE lockouts SET failures = 0, window_start = NULL, consecutive = 0, \
             version = version + 1 WHERE username = $1 AND hard_locked_at IS NULL",
        )
        .bind(username);
        self.db.execute_all(vec![delete, clear]).await?;
        Ok(())
    }

    /// Hands back a reservation whose check succeeded without ending a sign-in (a right
    /// password): [`LockoutState::release`].
    pub async fn release_attempt(&self, username: &str) -> Result<(), StoreError> {
        query(
            "UPDATE lockouts SET \
               failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END, \
               consecutive = CASE WHEN consecutive > 0 THEN consecutive - 1 ELSE 0 END, \
               version = version + 1 \
             WHERE username = $1",
        )
        .bind(username)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Releases every lock and clears the counters at once (an administrator's unlock).
    /// `true` if there was a row.
    pub async fn clear_lockout(&self, username: &str) -> Result<bool, StoreError> {
        let done = query("DELETE FROM lockouts WHERE username = $1")
            .bind(username)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
