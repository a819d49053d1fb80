//! Authentications: portal sign-ins, step-ups and the SDK's, one record each, so that any
//! node can take the next event. The engine decides every state; the store keeps it and
//! makes each write conditional on the version read (two nodes answering at once cannot
//! both move it).

use super::db::{Query, Row, Tx, query};
use super::{Store, StoreError};
use twofold_engine::UnixTime;
use twofold_engine::authentication::{Authentication, Origin, Reason, State, Step};
use twofold_engine::flow::Via;

const COLUMNS: &str = "id, user_id, username, origin, started_by, state, next, asked, via, reason, \
     attempts, client_ip, context, channel, created_at, expires_at, consumed_at, version, \
     message_id, code_hash";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("authentication {what} {value:?}"))
}

fn from_row(row: &Row) -> Result<Authentication, StoreError> {
    let state_name: String = row.try_get("state")?;
    let next: Option<String> = row.try_get("next")?;
    let asked: Option<String> = row.try_get("asked")?;
    let via: Option<String> = row.try_get("via")?;
    let reason: Option<String> = row.try_get("reason")?;
    let origin: String = row.try_get("origin")?;
    let attempts: i64 = row.try_get("attempts")?;
    let state = match state_name.as_str() {
        "pending" => {
            let name = next.unwrap_or_default();
            let asked: Vec<String> = match asked.as_deref() {
                Some(json) => serde_json::from_str(json).map_err(|_| corrupt("questions", json))?,
                None => Vec::new(),
            };
            State::Pending(Step::parse(&name, asked).ok_or_else(|| corrupt("step", &name))?)
        }
        "approved" => {
            let via = via.unwrap_or_default();
            State::Approved {
                via: Via::parse(&via).ok_or_else(|| corrupt("via", &via))?,
            }
        }
        "denied" => {
            let reason = reason.unwrap_or_default();
            State::Denied {
                reason: Reason::parse(&reason).ok_or_else(|| corrupt("reason", &reason))?,
            }
        }
        "expired" => State::Expired,
        "fraud" => State::Fraud,
        other => return Err(corrupt("state", other)),
    };
    Ok(Authentication {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        origin: Origin::parse(&origin).ok_or_else(|| corrupt("origin", &origin))?,
        started_by: row.try_get("started_by")?,
        state,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        client_ip: row.try_get("client_ip")?,
        context: row.try_get("context")?,
        channel: row.try_get("channel")?,
        message_id: row.try_get("message_id")?,
        code_hash: row.try_get("code_hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        consumed_at: row.try_get("consumed_at")?,
        version: row.try_get("version")?,
    })
}

/// The stored columns of a state: (state, next, asked, via, reason).
type StateColumns = (
    &'static str,
    Option<&'static str>,
    Option<String>,
    Option<&'static str>,
    Option<&'static str>,
);

fn columns(state: &State) -> StateColumns {
    match state {
        State::Pending(step) => {
            let asked = match step {
                Step::SecurityQuestions { asked } if !asked.is_empty() => {
                    serde_json::to_string(asked).ok()
                }
                _ => None,
            };
            ("pending", Some(step.name()), asked, None, None)
        }
        State::Approved { via } => ("approved", None, None, Some(via.as_str()), None),
        State::Denied { reason } => ("denied", None, None, None, Some(reason.as_str())),
        State::Expired => ("expired", None, None, None, None),
        State::Fraud => ("fraud", None, None, None, None),
    }
}

fn insert_query(a: &Authentication) -> Query<'_> {
    let (state, next, asked, via, reason) = columns(&a.state);
    query(format!(
        "INSERT INTO authentications ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    ))
    .bind(&a.id)
    .bind(&a.user_id)
    .bind(&a.username)
    .bind(a.origin.as_str())
    .bind(&a.started_by)
    .bind(state)
    .bind(next)
    .bind(asked)
    .bind(via)
    .bind(reason)
    .bind(i64::from(a.attempts))
    .bind(a.client_ip.as_deref())
    .bind(a.context.as_deref())
    .bind(a.channel.as_deref())
    .bind(a.created_at)
    .bind(a.expires_at)
    .bind(a.consumed_at)
    .bind(a.version)
    .bind(a.message_id.as_deref())
    .bind(a.code_hash.as_deref())
}

impl Store {
    pub async fn create_authentication(&self, a: &Authentication) -> Result<(), StoreError> {
        insert_query(a).execute(&self.db).await?;
        Ok(())
    }

    /// [`Store::create_authentication`], inside a transaction.
    pub(super) async fn insert_authentication(
        &self,
        tx: &mut Tx,
        a: &Authentication,
    ) -> Result<(), StoreError> {
        insert_query(a).execute(tx).await?;
        Ok(())
    }

    /// Moves `a` (if still at the version read) to `moved`'s state, with where it went
    /// (`channel`, `message_id`, `code_hash`) and its expiry, inside a transaction.
    pub(super) async fn update_authentication_delivery(
        &self,
        tx: &mut Tx,
        a: &Authentication,
        moved: &Authentication,
    ) -> Result<bool, StoreError> {
        let (state, next, asked, via, reason) = columns(&moved.state);
        let done = query(
            "UPDATE authentications SET state = $1, next = $2, asked = $3, via = $4, reason = $5, \
             channel = $8, code_hash = $9, expires_at = $10, message_id = $11, \
             version = version + 1 WHERE id = $6 AND version = $7",
        )
        .bind(state)
        .bind(next)
        .bind(asked)
        .bind(via)
        .bind(reason)
        .bind(&a.id)
        .bind(a.version)
        .bind(moved.channel.as_deref())
        .bind(moved.code_hash.as_deref())
        .bind(moved.expires_at)
        .bind(moved.message_id.as_deref())
        .execute(tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn authentication(&self, id: &str) -> Result<Option<Authentication>, StoreError> {
        let row = query(format!(
            "SELECT {COLUMNS} FROM authentications WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Stores `state` for an authentication if nobody moved it since it was read as
    /// `a.version`; `false` when somebody did.
    pub async fn move_authentication(
        &self,
        a: &Authentication,
        state: &State,
    ) -> Result<bool, StoreError> {
        let (state, next, asked, via, reason) = columns(state);
        let done = query(
            "UPDATE authentications SET state = $1, next = $2, asked = $3, via = $4, reason = $5, \
             version = version + 1 WHERE id = $6 AND version = $7",
        )
        .bind(state)
        .bind(next)
        .bind(asked)
        .bind(via)
        .bind(reason)
        .bind(&a.id)
        .bind(a.version)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Like [`Store::move_authentication`], storing with the state where the authentication
    /// now goes (the phone number), the hash of its text's code and its expiry.
    pub async fn move_authentication_with_delivery(
        &self,
        a: &Authentication,
        moved: &Authentication,
    ) -> Result<bool, StoreError> {
        let (state, next, asked, via, reason) = columns(&moved.state);
        let done = query(
            "UPDATE authentications SET state = $1, next = $2, asked = $3, via = $4, reason = $5, \
             channel = $8, code_hash = $9, expires_at = $10, message_id = NULL, \
             version = version + 1 WHERE id = $6 AND version = $7",
        )
        .bind(state)
        .bind(next)
        .bind(asked)
        .bind(via)
        .bind(reason)
        .bind(&a.id)
        .bind(a.version)
        .bind(moved.channel.as_deref())
        .bind(moved.code_hash.as_deref())
        .bind(moved.expires_at)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts one answer to a pending authentication before it is checked, and returns it as
    /// it stands after that. `None` when it is no longer pending, has expired, or already
    /// holds `max` attempts.
    pub async fn reserve_authentication_attempt(
        &self,
        id: &str,
        max: u32,
        now: UnixTime,
    ) -> Result<Option<Authentication>, StoreError> {
        let row = query(format!(
            "UPDATE authentications SET attempts = attempts + 1, version = version + 1 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $3 AND attempts < $2 \
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(i64::from(max))
        .bind(now)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Hands back an answer that did not count (a malformed one).
    pub async fn release_authentication_attempt(&self, id: &str) -> Result<(), StoreError> {
        query(
            "UPDATE authentications SET attempts = attempts - 1, version = version + 1 \
             WHERE id = $1 AND attempts > 0",
        )
        .bind(id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Marks an approved authentication used; `false` when it was used already (or is not
    /// approved): it signs in once.
    pub async fn consume_authentication(
        &self,
        id: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = query(
            "UPDATE authentications SET consumed_at = $2, version = version + 1 \
             WHERE id = $1 AND state = 'approved' AND consumed_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the provider's id of the call or message an authentication sent.
    pub async fn set_authentication_message_id(
        &self,
        id: &str,
        message_id: &str,
    ) -> Result<(), StoreError> {
        query("UPDATE authentications SET message_id = $2 WHERE id = $1")
            .bind(id)
            .bind(message_id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// The authentication whose call or message the provider knows as `message_id`.
    pub async fn authentication_by_message_id(
        &self,
        message_id: &str,
    ) -> Result<Option<Authentication>, StoreError> {
        let row = query(format!(
            "SELECT {COLUMNS} FROM authentications WHERE message_id = $1 \
             ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(message_id)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The newest pending authentication waiting for a text reply from `number`.
    pub async fn pending_text_reply_from(
        &self,
        number: &str,
        now: UnixTime,
    ) -> Result<Option<Authentication>, StoreError> {
        let row = query(format!(
            "SELECT {COLUMNS} FROM authentications WHERE channel = $1 AND state = 'pending' \
             AND next = 'text_reply' AND expires_at > $2 ORDER BY created_at DESC LIMIT 1"
        ))
        .bind(number)
        .bind(now)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Forgets authentications that ended before `before`.
    pub async fn delete_old_authentications(&self, before: UnixTime) -> Result<u64, StoreError> {
        let done = query("DELETE FROM authentications WHERE expires_at < $1")
            .bind(before)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected())
    }
}
