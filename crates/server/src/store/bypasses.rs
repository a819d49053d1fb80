use super::db::query;
use super::{Store, StoreError, new_id};
use twofold_engine::UnixTime;

/// A one-time bypass of the second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BypassRecord {
    pub id: String,
    pub user_id: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
    pub reason: Option<String>,
    pub created_by: String,
}

impl Store {
    /// Starts a bypass, replacing the user's unused ones. Returns its id.
    pub async fn create_bypass(
        &self,
        user_id: &str,
        expires_at: UnixTime,
        reason: Option<&str>,
        created_by: &str,
        now: UnixTime,
    ) -> Result<String, StoreError> {
        let id = new_id();
        let mut tx = self.db.begin().await?;
        query("DELETE FROM bypasses WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        query(
            "INSERT INTO bypasses (id, user_id, created_at, expires_at, used_at, reason, created_by) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .bind(reason)
        .bind(created_by)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The user's unused bypass that is still valid at `now`.
    pub async fn active_bypass(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<Option<BypassRecord>, StoreError> {
        let row = query(
            "SELECT id, user_id, created_at, expires_at, used_at, reason, created_by FROM bypasses \
             WHERE user_id = $1 AND used_at IS NULL AND expires_at > $2 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.db)
        .await?;
        row.map(|row| {
            Ok(BypassRecord {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                used_at: row.try_get("used_at")?,
                reason: row.try_get("reason")?,
                created_by: row.try_get("created_by")?,
            })
        })
        .transpose()
    }

    /// Uses the bypass `id` once: `true` for exactly one caller, and only within its window.
    pub async fn consume_bypass(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = query("UPDATE bypasses SET used_at = $1 WHERE id = $2 AND used_at IS NULL AND expires_at > $1")
            .bind(now)
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels the user's unused bypasses. Returns how many.
    pub async fn cancel_bypasses(&self, user_id: &str) -> Result<u64, StoreError> {
        let done = query("DELETE FROM bypasses WHERE user_id = $1 AND used_at IS NULL")
            .bind(user_id)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected())
    }
}
