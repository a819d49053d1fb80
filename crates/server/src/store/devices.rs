//! The authenticator app's records, shared by every node: activated devices, one-time
//! activation codes, the requests sent to devices (with the number to match), the nonces of
//! signed requests already taken, and the server's signing key.

use super::db::{Row, Tx, query};
use super::{Store, StoreError, is_unique_violation};
use twofold_engine::UnixTime;
use twofold_engine::authentication::Authentication;

/// An activated device. Its public key and push endpoint are sealed together in
/// `key_sealed` (associated data `devices:<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    /// `ed25519` or `p256`.
    pub algorithm: String,
    pub key_sealed: String,
    /// The offline OATH token the device brought, if it did.
    pub token_id: Option<String>,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

const DEVICE_COLUMNS: &str =
    "id, user_id, name, algorithm, key_sealed, token_id, created_at, last_used_at";

fn device_from(row: &Row) -> Result<DeviceRecord, StoreError> {
    Ok(DeviceRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        algorithm: row.try_get("algorithm")?,
        key_sealed: row.try_get("key_sealed")?,
        token_id: row.try_get("token_id")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// A request sent to a user's devices for one authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequestRecord {
    pub id: String,
    pub authentication_id: String,
    pub user_id: String,
    /// The number the page shows.
    pub number: u8,
    /// The three numbers the app offers, in the order it shows them.
    pub choices: Vec<u8>,
    pub nonce: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub answered_at: Option<UnixTime>,
    /// `approve`, `wrong`, `deny` or `not_me`, once answered.
    pub answer: Option<String>,
    pub device_id: Option<String>,
}

const PUSH_COLUMNS: &str = "id, authentication_id, user_id, number, choices, nonce, created_at, \
     expires_at, answered_at, answer, device_id";

fn push_from(row: &Row) -> Result<PushRequestRecord, StoreError> {
    let number: i64 = row.try_get("number")?;
    let choices: String = row.try_get("choices")?;
    Ok(PushRequestRecord {
        id: row.try_get("id")?,
        authentication_id: row.try_get("authentication_id")?,
        user_id: row.try_get("user_id")?,
        number: u8::try_from(number)
            .map_err(|_| StoreError::Corrupt(format!("push request number {number}")))?,
        choices: choices
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse::<u8>()
                    .map_err(|_| StoreError::Corrupt(format!("push request choices {choices:?}")))
            })
            .collect::<Result<_, _>>()?,
        nonce: row.try_get("nonce")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        answered_at: row.try_get("answered_at")?,
        answer: row.try_get("answer")?,
        device_id: row.try_get("device_id")?,
    })
}

/// The limits a new request is held to, against push bombing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushLimits {
    /// Denials within `cooldown_seconds` that start the cool-down.
    pub denials: u32,
    pub cooldown_seconds: i64,
}

/// Whether a request could be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushAdmission {
    Sent,
    /// Another request to this user is still waiting for its answer.
    AlreadyPending,
    /// Too many requests were denied lately: none goes out until this time.
    CoolingDown {
        until: UnixTime,
    },
    /// The authentication moved meanwhile (its version is not the one read).
    Moved,
}

/// Why an activation could not add a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAdmission {
    Added,
    /// The user has as many devices as the limit allows.
    LimitReached,
}

const DENIED_ANSWERS: &str = "('deny', 'not_me', 'wrong')";

impl Store {
    /// Keeps a new activation code (its keyed hash) for `user_id`; the user's earlier unused
    /// codes stop working.
    pub async fn create_activation_code(
        &self,
        code_hash: &str,
        user_id: &str,
        created_by: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        query("DELETE FROM activation_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        query(
            "INSERT INTO activation_codes (code_hash, user_id, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(code_hash)
        .bind(user_id)
        .bind(created_by)
        .bind(now)
        .bind(expires_at)
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// Whether an activation code is waiting, unused and unexpired (nothing changes).
    pub async fn activation_code_waiting(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let row = query("SELECT expires_at FROM activation_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(&self.db)
            .await?;
        Ok(match row {
            Some(row) => row.try_get::<i64>("expires_at")? > now,
            None => false,
        })
    }

    /// Takes an activation code once: the user it was made for, if it was valid at `now`.
    /// A taken code is gone, whether or not it had expired.
    pub async fn take_activation_code(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        let row = query(
            "DELETE FROM activation_codes WHERE code_hash = $1 RETURNING user_id, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at")?;
        (expires_at > now)
            .then(|| row.try_get("user_id"))
            .transpose()
    }

    /// Adds a device unless the user already has `limit` of them (checked and written under
    /// the user's row lock, so two activations at once cannot pass the limit together).
    pub async fn add_device(
        &self,
        device: &DeviceRecord,
        limit: u32,
    ) -> Result<DeviceAdmission, StoreError> {
        let mut tx = self.db.begin().await?;
        lock_user(&mut tx, &device.user_id).await?;
        let row = query("SELECT COUNT(*) AS n FROM devices WHERE user_id = $1")
            .bind(&device.user_id)
            .fetch_one(&mut tx)
            .await?;
        let n: i64 = row.try_get("n")?;
        if n >= i64::from(limit) {
            drop(tx);
            return Ok(DeviceAdmission::LimitReached);
        }
        query(format!(
            "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&device.id)
        .bind(&device.user_id)
        .bind(&device.name)
        .bind(&device.algorithm)
        .bind(&device.key_sealed)
        .bind(device.token_id.as_deref())
        .bind(device.created_at)
        .bind(device.last_used_at)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(DeviceAdmission::Added)
    }

    pub async fn device(&self, id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = query(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(device_from).transpose()
    }

    /// A user's devices, the oldest first.
    pub async fn devices_of(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let rows = query(format!(
            "SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(device_from).collect()
    }

    /// How many devices a user has.
    pub async fn device_count(&self, user_id: &str) -> Result<u32, StoreError> {
        let row = query("SELECT COUNT(*) AS n FROM devices WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.db)
            .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Removes one of a user's devices, and returns it.
    pub async fn remove_device(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let row = query(format!(
            "DELETE FROM devices WHERE id = $1 AND user_id = $2 RETURNING {DEVICE_COLUMNS}"
        ))
        .bind(id)
        .bind(user_id)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(device_from).transpose()
    }

    /// Records the offline OATH token a device brought.
    pub async fn set_device_token(&self, id: &str, token_id: &str) -> Result<(), StoreError> {
        query("UPDATE devices SET token_id = $1 WHERE id = $2")
            .bind(token_id)
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes a device's offline OATH token, if it is still the user's.
    pub async fn delete_device_token(
        &self,
        user_id: &str,
        token_id: &str,
    ) -> Result<(), StoreError> {
        query("DELETE FROM oath_tokens WHERE id = $1 AND user_id = $2 AND kind = 'software'")
            .bind(token_id)
            .bind(user_id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Records that a device was heard from.
    pub async fn touch_device(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        query("UPDATE devices SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Takes a signed request's nonce once: `false` when the device used it before.
    pub async fn take_device_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        match query("INSERT INTO device_nonces (device_id, nonce, seen_at) VALUES ($1, $2, $3)")
            .bind(device_id)
            .bind(nonce)
            .bind(now)
            .execute(&self.db)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The server's signing key (its public key and its sealed private key), made from
    /// `candidate` the first time any node asks: every node then uses the stored one.
    pub async fn app_server_key(
        &self,
        candidate: (&str, &str),
        now: UnixTime,
    ) -> Result<(String, String), StoreError> {
        let inserted = query(
            "INSERT INTO app_server_keys (id, public_key, private_sealed, created_at) \
             VALUES ('current', $1, $2, $3)",
        )
        .bind(candidate.0)
        .bind(candidate.1)
        .bind(now)
        .execute(&self.db)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e),
        }
        let row =
            query("SELECT public_key, private_sealed FROM app_server_keys WHERE id = 'current'")
                .fetch_one(&self.db)
                .await?;
        Ok((row.try_get("public_key")?, row.try_get("private_sealed")?))
    }

    /// Stores a new authentication together with its first request to the user's devices,
    /// if the limits allow one now; otherwise stores nothing.
    pub async fn create_authentication_with_push(
        &self,
        a: &Authentication,
        push: &PushRequestRecord,
        limits: PushLimits,
        now: UnixTime,
    ) -> Result<PushAdmission, StoreError> {
        let mut tx = self.db.begin().await?;
        lock_user(&mut tx, &a.user_id).await?;
        let admission = admit(&mut tx, &a.user_id, limits, now).await?;
        if admission != PushAdmission::Sent {
            drop(tx);
            return Ok(admission);
        }
        self.insert_authentication(&mut tx, a).await?;
        insert_push(&mut tx, push).await?;
        tx.commit().await?;
        Ok(PushAdmission::Sent)
    }

    /// Moves `a` (at the version read) to `moved`, whose `message_id` names a new request,
    /// and stores the request, if the limits allow one now.
    pub async fn move_authentication_with_push(
        &self,
        a: &Authentication,
        moved: &Authentication,
        push: &PushRequestRecord,
        limits: PushLimits,
        now: UnixTime,
    ) -> Result<PushAdmission, StoreError> {
        let mut tx = self.db.begin().await?;
        lock_user(&mut tx, &a.user_id).await?;
        let admission = admit(&mut tx, &a.user_id, limits, now).await?;
        if admission != PushAdmission::Sent {
            drop(tx);
            return Ok(admission);
        }
        if !self
            .update_authentication_delivery(&mut tx, a, moved)
            .await?
        {
            drop(tx);
            return Ok(PushAdmission::Moved);
        }
        insert_push(&mut tx, push).await?;
        tx.commit().await?;
        Ok(PushAdmission::Sent)
    }

    pub async fn push_request(&self, id: &str) -> Result<Option<PushRequestRecord>, StoreError> {
        let row = query(format!(
            "SELECT {PUSH_COLUMNS} FROM push_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(push_from).transpose()
    }

    /// The user's requests still waiting for an answer at `now`: unanswered, unexpired, and
    /// the current request of an authentication still waiting on the app.
    pub async fn pending_push_requests(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<Vec<PushRequestRecord>, StoreError> {
        let rows = query(format!(
            "SELECT {} FROM push_requests p JOIN authentications a ON a.id = p.authentication_id \
             WHERE p.user_id = $1 AND p.answered_at IS NULL AND p.expires_at > $2 \
             AND a.state = 'pending' AND a.next = 'mobile_app' AND a.message_id = p.id \
             AND a.expires_at > $2 ORDER BY p.created_at, p.id",
            PUSH_COLUMNS
                .split(", ")
                .map(|c| format!("p.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(push_from).collect()
    }

    /// Takes the answer to a request once, before its expiry: `false` when it was answered
    /// already or has expired.
    pub async fn answer_push_request(
        &self,
        id: &str,
        device_id: &str,
        answer: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = query(
            "UPDATE push_requests SET answered_at = $1, answer = $2, device_id = $3 \
             WHERE id = $4 AND answered_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(answer)
        .bind(device_id)
        .bind(id)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes a taken answer's word (an approval found wrong is recorded as `wrong`).
    pub async fn set_push_answer(&self, id: &str, answer: &str) -> Result<(), StoreError> {
        query("UPDATE push_requests SET answer = $1 WHERE id = $2")
            .bind(answer)
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// The users who were sent a request since `since` (for the long-polls another node
    /// holds).
    pub async fn users_pushed_since(&self, since: UnixTime) -> Result<Vec<String>, StoreError> {
        let rows = query("SELECT DISTINCT user_id FROM push_requests WHERE created_at >= $1")
            .bind(since)
            .fetch_all(&self.db)
            .await?;
        rows.iter().map(|r| r.try_get("user_id")).collect()
    }

    /// Forgets nonces older than `nonces_before`, answered or expired requests older than
    /// `requests_before`, and expired activation codes.
    pub async fn delete_old_app_records(
        &self,
        nonces_before: UnixTime,
        requests_before: UnixTime,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let nonces = query("DELETE FROM device_nonces WHERE seen_at < $1")
            .bind(nonces_before)
            .execute(&self.db)
            .await?;
        let requests = query("DELETE FROM push_requests WHERE expires_at < $1")
            .bind(requests_before)
            .execute(&self.db)
            .await?;
        let codes = query("DELETE FROM activation_codes WHERE expires_at < $1")
            .bind(now)
            .execute(&self.db)
            .await?;
        Ok(nonces.rows_affected() + requests.rows_affected() + codes.rows_affected())
    }
}

/// Takes the user's row lock for the rest of the transaction (PostgreSQL; SQLite's writer
/// transaction is exclusive already).
async fn lock_user(tx: &mut Tx, user_id: &str) -> Result<(), StoreError> {
    query("UPDATE users SET id = id WHERE id = $1")
        .bind(user_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Whether a request may go to `user_id` now: none waiting, and not cooling down.
async fn admit(
    tx: &mut Tx,
    user_id: &str,
    limits: PushLimits,
    now: UnixTime,
) -> Result<PushAdmission, StoreError> {
    let row = query(
        "SELECT COUNT(*) AS n FROM push_requests p JOIN authentications a \
         ON a.id = p.authentication_id \
         WHERE p.user_id = $1 AND p.answered_at IS NULL AND p.expires_at > $2 \
         AND a.state = 'pending' AND a.message_id = p.id AND a.expires_at > $2",
    )
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let waiting: i64 = row.try_get("n")?;
    if waiting > 0 {
        return Ok(PushAdmission::AlreadyPending);
    }
    let rows = query(format!(
        "SELECT answered_at FROM push_requests WHERE user_id = $1 \
         AND answer IN {DENIED_ANSWERS} AND answered_at IS NOT NULL \
         ORDER BY answered_at DESC LIMIT $2"
    ))
    .bind(user_id)
    .bind(i64::from(limits.denials))
    .fetch_all(&mut *tx)
    .await?;
    let times: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("answered_at"))
        .collect::<Result<_, _>>()?;
    if let (Some(last), Some(first)) = (times.first(), times.last())
        && times.len() >= limits.denials as usize
        && last - first <= limits.cooldown_seconds
        && now < last + limits.cooldown_seconds
    {
        return Ok(PushAdmission::CoolingDown {
            until: last + limits.cooldown_seconds,
        });
    }
    Ok(PushAdmission::Sent)
}

async fn insert_push(tx: &mut Tx, push: &PushRequestRecord) -> Result<(), StoreError> {
    let choices = push
        .choices
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(",");
    query(format!(
        "INSERT INTO push_requests ({PUSH_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, NULL)"
    ))
    .bind(&push.id)
    .bind(&push.authentication_id)
    .bind(&push.user_id)
    .bind(i64::from(push.number))
    .bind(choices)
    .bind(&push.nonce)
    .bind(push.created_at)
    .bind(push.expires_at)
    .execute(tx)
    .await?;
    Ok(())
}
