//! What calls and text messages need shared by every node: the sends of the last hour, for
//! the limits against SMS pumping and toll fraud, and the provider webhooks already taken,
//! so that a replayed one is refused.

use super::db::query;
use super::{Store, StoreError, is_unique_violation, new_id};
use twofold_engine::UnixTime;

/// Calls and texts sent since a moment, counted four ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendCounts {
    pub to_number: u32,
    pub for_user: u32,
    pub from_address: u32,
    pub in_all: u32,
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

impl Store {
    /// The sends since `since` to `number`, for `user_id`, asked from `client_ip`, and in all.
    pub async fn phone_sends_since(
        &self,
        number: &str,
        user_id: &str,
        client_ip: Option<&str>,
        since: UnixTime,
    ) -> Result<SendCounts, StoreError> {
        let row = query(
            "SELECT \
               (SELECT COUNT(*) FROM phone_sends WHERE number = $1 AND at >= $4) AS to_number, \
               (SELECT COUNT(*) FROM phone_sends WHERE user_id = $2 AND at >= $4) AS for_user, \
               (SELECT COUNT(*) FROM phone_sends WHERE client_ip = $3 AND at >= $4) AS from_address, \
               (SELECT COUNT(*) FROM phone_sends WHERE at >= $4) AS in_all",
        )
        .bind(number)
        .bind(user_id)
        .bind(client_ip)
        .bind(since)
        .fetch_one(&self.db)
        .await?;
        Ok(SendCounts {
            to_number: count(row.try_get("to_number")?),
            for_user: count(row.try_get("for_user")?),
            from_address: count(row.try_get("from_address")?),
            in_all: count(row.try_get("in_all")?),
        })
    }

    /// Records one call or text sent.
    pub async fn record_phone_send(
        &self,
        number: &str,
        user_id: &str,
        client_ip: Option<&str>,
        at: UnixTime,
    ) -> Result<(), StoreError> {
        query("INSERT INTO phone_sends (id, at, number, user_id, client_ip) VALUES ($1, $2, $3, $4, $5)")
            .bind(new_id())
            .bind(at)
            .bind(number)
            .bind(user_id)
            .bind(client_ip)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Takes a webhook once: `false` when one with the same `key` was taken before.
    pub async fn take_webhook(&self, key: &str, now: UnixTime) -> Result<bool, StoreError> {
        match query("INSERT INTO webhook_receipts (key, received_at) VALUES ($1, $2)")
            .bind(key)
            .bind(now)
            .execute(&self.db)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Hands a webhook back (it could not be processed): the provider's retry is taken.
    pub async fn release_webhook(&self, key: &str) -> Result<(), StoreError> {
        query("DELETE FROM webhook_receipts WHERE key = $1")
            .bind(key)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets sends and webhook receipts older than `before`.
    pub async fn delete_old_phone_records(&self, before: UnixTime) -> Result<u64, StoreError> {
        let sends = query("DELETE FROM phone_sends WHERE at < $1")
            .bind(before)
            .execute(&self.db)
            .await?;
        let receipts = query("DELETE FROM webhook_receipts WHERE received_at < $1")
            .bind(before)
            .execute(&self.db)
            .await?;
        Ok(sends.rows_affected() + receipts.rows_affected())
    }
}
