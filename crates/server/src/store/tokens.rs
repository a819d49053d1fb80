use super::db::{Db, Row, Tx, query};
use super::users::{self, UserRecord};
use super::{Store, StoreError, is_unique_violation};
use twofold_engine::UnixTime;
use twofold_engine::oath::{Algorithm, OathKind, OathParams, OathState};

/// An authenticator app's token, or a third-party hardware token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenKind {
    Software,
    Hardware,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Software => "software",
            TokenKind::Hardware => "hardware",
        }
    }
}

/// `pending`: enrolled but not yet proven with a code; `active`: in use by its user;
/// `available`: a hardware token in the inventory, not assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    Pending,
    Active,
    Available,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Pending => "pending",
            TokenStatus::Active => "active",
            TokenStatus::Available => "available",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub serial: Option<String>,
    pub user_id: Option<String>,
    pub kind: TokenKind,
    pub params: OathParams,
    pub state: OathState,
    pub secret_sealed: String,
    pub key_id: String,
    pub status: TokenStatus,
    pub created_at: UnixTime,
    pub activated_at: Option<UnixTime>,
    pub version: i64,
}

/// A token to insert; its id is chosen by the caller, who sealed the secret for it.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub serial: Option<String>,
    pub user_id: Option<String>,
    pub kind: TokenKind,
    pub params: OathParams,
    pub counter: u64,
    pub secret_sealed: String,
    pub key_id: String,
    pub status: TokenStatus,
}

/// A row of `twofold token list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenListing {
    pub serial: Option<String>,
    pub kind: TokenKind,
    pub params: OathParams,
    pub status: TokenStatus,
    pub username: Option<String>,
}

const COLUMNS: &str = "id, serial, user_id, kind, otp_type, algorithm, digits, period, counter, last_step, drift, \
                       secret_sealed, key_id, status, created_at, activated_at, version";

fn algorithm_str(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha1 => "sha1",
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha512 => "sha512",
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("oath token {what} {value:?}"))
}

pub(super) fn params_from_row(row: &Row) -> Result<OathParams, StoreError> {
    let algorithm: String = row.try_get("algorithm")?;
    let otp_type: String = row.try_get("otp_type")?;
    let digits: i64 = row.try_get("digits")?;
    let period: i64 = row.try_get("period")?;
    Ok(OathParams {
        algorithm: match algorithm.as_str() {
            "sha1" => Algorithm::Sha1,
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => return Err(corrupt("algorithm", other)),
        },
        digits: u8::try_from(digits).map_err(|_| corrupt("digits", &digits.to_string()))?,
        kind: match otp_type.as_str() {
            "totp" => OathKind::Totp {
                period: u32::try_from(period)
                    .map_err(|_| corrupt("period", &period.to_string()))?,
            },
            "hotp" => OathKind::Hotp,
            other => return Err(corrupt("type", other)),
        },
    })
}

fn token_from_row(row: &Row) -> Result<TokenRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let counter: i64 = row.try_get("counter")?;
    let last_step: Option<i64> = row.try_get("last_step")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        serial: row.try_get("serial")?,
        user_id: row.try_get("user_id")?,
        kind: parse_kind(&kind)?,
        params: params_from_row(row)?,
        state: OathState {
            counter: u64::try_from(counter).unwrap_or(0),
            last_step: last_step.and_then(|s| u64::try_from(s).ok()),
            drift: row.try_get("drift")?,
        },
        secret_sealed: row.try_get("secret_sealed")?,
        key_id: row.try_get("key_id")?,
        status: parse_status(&status)?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        version: row.try_get("version")?,
    })
}

fn parse_kind(kind: &str) -> Result<TokenKind, StoreError> {
    match kind {
        "software" => Ok(TokenKind::Software),
        "hardware" => Ok(TokenKind::Hardware),
        other => Err(corrupt("kind", other)),
    }
}

pub(super) fn parse_status(status: &str) -> Result<TokenStatus, StoreError> {
    match status {
        "pending" => Ok(TokenStatus::Pending),
        "active" => Ok(TokenStatus::Active),
        "available" => Ok(TokenStatus::Available),
        other => Err(corrupt("status", other)),
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn insert_token(tx: &mut Tx, t: &NewToken, now: UnixTime) -> Result<(), StoreError> {
    let (otp_type, period) = match t.params.kind {
        OathKind::Totp { period } => ("totp", i64::from(period)),
        OathKind::Hotp => ("hotp", 0),
    };
    query(
        "INSERT INTO oath_tokens (id, serial, user_id, kind, otp_type, algorithm, digits, period, counter, last_step, \
         drift, secret_sealed, key_id, status, created_at, activated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 0, $10, $11, $12, $13, NULL, 1)",
    )
    .bind(&t.id)
    .bind(t.serial.as_deref())
    .bind(t.user_id.as_deref())
    .bind(t.kind.as_str())
    .bind(otp_type)
    .bind(algorithm_str(t.params.algorithm))
    .bind(i64::from(t.params.digits))
    .bind(period)
    .bind(to_i64(t.counter))
    .bind(&t.secret_sealed)
    .bind(&t.key_id)
    .bind(t.status.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Removes a user's active token: a software token is deleted, a hardware token returns to
/// the inventory (with its counters, which the physical token keeps too).
async fn release_active_tokens(tx: &mut Tx, user_id: &str, except: &str) -> Result<(), StoreError> {
    query("DELETE FROM oath_tokens WHERE user_id = $1 AND kind = 'software' AND id <> $2")
        .bind(user_id)
        .bind(except)
        .execute(&mut *tx)
        .await?;
    query(
        "UPDATE oath_tokens SET user_id = NULL, status = 'available', version = version + 1 \
         WHERE user_id = $1 AND kind = 'hardware' AND id <> $2",
    )
    .bind(user_id)
    .bind(except)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// Imports tokens in one transaction: all of them, or none. A serial already in the
    /// store is refused, naming it.
    pub async fn import_tokens(
        &self,
        tokens: &[NewToken],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for t in tokens {
            if let Err(e) = insert_token(&mut tx, t, now).await {
                if is_unique_violation(&e) {
                    return Err(StoreError::Duplicate(format!(
                        "serial {} is already in the store",
                        t.serial.as_deref().unwrap_or("-")
                    )));
                }
                return Err(e);
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Starts a software enrolment: the user's earlier unfinished one is discarded.
    pub async fn create_pending_token(
        &self,
        token: &NewToken,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        // The user's unfinished app enrolment is discarded; a hardware token reserved for
        // them returns to the inventory (never deleted: it is a physical object).
        query("DELETE FROM oath_tokens WHERE user_id = $1 AND status = 'pending' AND kind = 'software'")
            .bind(token.user_id.as_deref())
            .execute(&mut tx)
            .await?;
        query(
            "UPDATE oath_tokens SET user_id = NULL, status = 'available', version = version + 1 \
             WHERE user_id = $1 AND status = 'pending'",
        )
        .bind(token.user_id.as_deref())
        .execute(&mut tx)
        .await?;
        insert_token(&mut tx, token, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = query(format!("SELECT {COLUMNS} FROM oath_tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The user's token with this status (there is at most one active and one pending).
    pub async fn user_token(
        &self,
        user_id: &str,
        status: TokenStatus,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = query(format!(
            "SELECT {COLUMNS} FROM oath_tokens WHERE user_id = $1 AND status = $2 ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(user_id)
        .bind(status.as_str())
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// A user and their active token (the newest, as [`Store::user_token`]), in one read:
    /// what checking a code needs.
    pub async fn user_with_active_token(
        &self,
        user_id: &str,
    ) -> Result<Option<(UserRecord, Option<TokenRecord>)>, StoreError> {
        let token_columns: Vec<String> = COLUMNS
            .split(',')
            .map(|c| format!("t.{0} AS t_{0}", c.trim()))
            .collect();
        let user_columns: Vec<String> = users::COLUMNS
            .split(',')
            .map(|c| format!("u.{}", c.trim()))
            .collect();
        let row = query(format!(
            "SELECT {}, {} FROM users u LEFT JOIN oath_tokens t ON t.id = \
             (SELECT id FROM oath_tokens WHERE user_id = u.id AND status = $2 \
              ORDER BY created_at DESC LIMIT 1) \
             WHERE u.id = $1",
            user_columns.join(", "),
            token_columns.join(", ")
        ))
        .bind(user_id)
        .bind(TokenStatus::Active.as_str())
        .fetch_optional(&self.db)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = users::user_from_row(&row)?;
        let token_row = row.prefixed("t_");
        let token = match token_row.try_get::<Option<String>>("id")? {
            Some(_) => Some(token_from_row(&token_row)?),
            None => None,
        };
        Ok(Some((user, token)))
    }

    /// The user's token with this status and kind.
    pub async fn user_token_of_kind(
        &self,
        user_id: &str,
        status: TokenStatus,
        kind: TokenKind,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = query(format!(
            "SELECT {COLUMNS} FROM oath_tokens WHERE user_id = $1 AND status = $2 AND kind = $3 ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(user_id)
        .bind(status.as_str())
        .bind(kind.as_str())
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub async fn token_by_serial(&self, serial: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = query(format!(
            "SELECT {COLUMNS} FROM oath_tokens WHERE serial = $1"
        ))
        .bind(serial)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// Stores a token's new counters if nobody else changed the token since it was read as
    /// `version`. This is what makes a code single-use across requests and nodes: of two
    /// requests carrying the same code, only the first write succeeds.
    pub async fn advance_token(
        &self,
        id: &str,
        version: i64,
        state: &OathState,
    ) -> Result<bool, StoreError> {
        let done = query(
            "UPDATE oath_tokens SET counter = $1, last_step = $2, drift = $3, version = version + 1 \
             WHERE id = $4 AND version = $5",
        )
        .bind(to_i64(state.counter))
        .bind(state.last_step.map(to_i64))
        .bind(state.drift)
        .bind(id)
        .bind(version)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// [`Store::advance_token`] and, when the code is spent, the lockout counters of
    /// `username` cleared as [`Store::settle_success`] does: a right code that ends a sign-in.
    /// On PostgreSQL one statement does both, so the two cannot part. `false` on a lost race
    /// (nothing is cleared then).
    pub async fn advance_token_and_settle_success(
        &self,
        id: &str,
        version: i64,
        state: &OathState,
        username: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        if let Db::Sqlite(_) = &self.db {
            if !self.advance_token(id, version, state).await? {
                return Ok(false);
            }
            self.settle_success(username, now).await?;
            return Ok(true);
        }
        let row = query(
            "WITH spent AS (UPDATE oath_tokens SET counter = $1, last_step = $2, drift = $3, \
               version = version + 1 WHERE id = $4 AND version = $5 RETURNING id), \
             gone AS (DELETE FROM lockouts WHERE username = $6 AND hard_locked_at IS NULL \
               AND (locked_until IS NULL OR locked_until <= $7) \
               AND EXISTS (SELECT 1 FROM spent) RETURNING username), \
             cleared AS (UPDATE lockouts SET failures = 0, window_start = NULL, consecutive = 0, \
               version = version + 1 WHERE username = $6 AND hard_locked_at IS NULL \
               AND EXISTS (SELECT 1 FROM spent) AND NOT EXISTS (SELECT 1 FROM gone) \
               RETURNING username) \
             SELECT COUNT(*) AS spent FROM spent",
        )
        .bind(to_i64(state.counter))
        .bind(state.last_step.map(to_i64))
        .bind(state.drift)
        .bind(id)
        .bind(version)
        .bind(username)
        .bind(now)
        .fetch_one(&self.db)
        .await?;
        Ok(row.try_get::<i64>("spent")? == 1)
    }

    /// Makes a token the user's active one (after a valid code), with its advanced counters,
    /// releasing the token they had before. `false` on a lost race.
    pub async fn activate_token(
        &self,
        id: &str,
        user_id: &str,
        version: i64,
        state: &OathState,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let done = query(
            "UPDATE oath_tokens SET user_id = $1, status = 'active', activated_at = $2, counter = $3, last_step = $4, \
             drift = $5, version = version + 1 \
             WHERE id = $6 AND version = $7 AND (user_id = $1 OR (user_id IS NULL AND status = 'available'))",
        )
        .bind(user_id)
        .bind(now)
        .bind(to_i64(state.counter))
        .bind(state.last_step.map(to_i64))
        .bind(state.drift)
        .bind(id)
        .bind(version)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        release_active_tokens(&mut tx, user_id, id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Reserves an available hardware token for a user, pending their first valid code.
    pub async fn reserve_token(
        &self,
        id: &str,
        user_id: &str,
        version: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        query("DELETE FROM oath_tokens WHERE user_id = $1 AND status = 'pending' AND kind = 'software'")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        query("UPDATE oath_tokens SET user_id = NULL, status = 'available' WHERE user_id = $1 AND status = 'pending'")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        let done = query(
            "UPDATE oath_tokens SET user_id = $1, status = 'pending', version = version + 1 \
             WHERE id = $2 AND version = $3 AND status = 'available'",
        )
        .bind(user_id)
        .bind(id)
        .bind(version)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes every token of a user (the account page's "remove", an administrator's reset).
    pub async fn remove_user_tokens(&self, user_id: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        release_active_tokens(&mut tx, user_id, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// The inventory, by serial (software tokens after hardware ones).
    pub async fn list_tokens(&self, limit: i64) -> Result<Vec<TokenListing>, StoreError> {
        let rows = query(
            "SELECT t.serial, t.kind, t.otp_type, t.algorithm, t.digits, t.period, t.status, u.username \
             FROM oath_tokens t LEFT JOIN users u ON u.id = t.user_id \
             ORDER BY t.kind, t.serial, u.username LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("kind")?;
                let status: String = row.try_get("status")?;
                Ok(TokenListing {
                    serial: row.try_get("serial")?,
                    kind: parse_kind(&kind)?,
                    params: params_from_row(row)?,
                    status: parse_status(&status)?,
                    username: row.try_get("username")?,
                })
            })
            .collect()
    }
}
