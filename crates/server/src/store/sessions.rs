use super::db::{Row, query};
use super::{Store, StoreError};
use twofold_engine::UnixTime;

/// A portal session. The store knows only the SHA-256 of the id the cookie carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: String,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub expires_at: UnixTime,
    /// JSON: what the portal keeps for this session.
    pub data: String,
}

fn session_from_row(row: &Row) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id_hash: row.try_get("id_hash")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        data: row.try_get("data")?,
    })
}

impl Store {
    pub async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        query(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, data) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.id_hash)
        .bind(&s.user_id)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&s.data)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// The session, if it exists and has not expired at `now`.
    pub async fn session(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = query(
            "SELECT id_hash, user_id, created_at, last_seen_at, expires_at, data FROM sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    pub async fn touch_session(
        &self,
        id_hash: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id_hash = $3")
            .bind(now)
            .bind(expires_at)
            .bind(id_hash)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    pub async fn update_session_data(&self, id_hash: &str, data: &str) -> Result<(), StoreError> {
        query("UPDATE sessions SET data = $1 WHERE id_hash = $2")
            .bind(data)
            .bind(id_hash)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Ends every session of a user (after a password change, disabling, or a deletion).
    pub async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let done = query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected())
    }

    /// Ends every session of a user but one (after a change of their factors).
    pub async fn delete_user_sessions_except(
        &self,
        user_id: &str,
        keep_id_hash: &str,
    ) -> Result<u64, StoreError> {
        let done = query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep_id_hash)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_expired_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
        let done = query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected())
    }
}
