//! Users brought in from a directory or a file, and the leases that let one node at a time
//! run a job.
//!
//! A directory user is written whole in one transaction: found again by the directory's
//! own id (which survives a rename), else by username, then updated; or added. A process
//! killed part-way leaves each user either as they were or as the directory describes
//! them, and a rerun carries on.

use super::audit::insert_event;
use super::db::{Tx, query};
use super::users::{COLUMNS, user_from_row};
use super::{Store, StoreError, UserRecord, bool_int, new_id};
use twofold_engine::{AuditEvent, UnixTime};

/// Where a user came from (the `source` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOrigin {
    Local,
    Ldap,
    Csv,
    Radius,
}

impl UserOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            UserOrigin::Local => "local",
            UserOrigin::Ldap => "ldap",
            UserOrigin::Csv => "csv",
            UserOrigin::Radius => "radius",
        }
    }
}

/// A user as a directory or a file describes them, already checked by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub username: String,
    pub origin: UserOrigin,
    /// The directory's own id, when it has one.
    pub external_id: Option<String>,
    /// Contact details and language: a value replaces the stored one; `None` leaves the
    /// stored one as it is (a phone number the user gave in the portal is kept).
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Digits dialled after `phone` answers (`x890` in the directory).
    pub extension: Option<String>,
    pub mobile_phone: Option<String>,
    pub language: Option<String>,
    /// The primary method a new user gets; an existing user keeps theirs.
    pub method: Option<String>,
    /// A new user with an email address is queued for an invitation to the portal.
    pub invite: bool,
}

/// What writing a [`DirectoryUser`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Added(UserRecord),
    /// The fields that changed, by name (`username` for a rename, `returned` for a user
    /// who had left the directory and is back).
    Updated {
        user: UserRecord,
        changed: Vec<&'static str>,
    },
    Unchanged(UserRecord),
}

impl Store {
    /// Adds or updates `user` in one transaction, with the audit event `audit` makes of
    /// what was done (the user and its event are committed together). With `dry_run` the
    /// transaction is rolled back: the outcome says what would have happened.
    pub async fn write_directory_user(
        &self,
        user: &DirectoryUser,
        now: UnixTime,
        dry_run: bool,
        audit: &(dyn Fn(&Written) -> Option<AuditEvent> + Send + Sync),
    ) -> Result<Written, StoreError> {
        let mut tx = self.db.begin().await?;
        let written = write_in(&mut tx, user, now).await?;
        if !dry_run {
            if let Some(event) = audit(&written) {
                insert_event(&event).execute(&mut tx).await?;
            }
            tx.commit().await?;
        }
        Ok(written)
    }

    /// The users that came from `origin`, in username order.
    pub async fn users_of_origin(&self, origin: UserOrigin) -> Result<Vec<UserRecord>, StoreError> {
        let rows = query(format!(
            "SELECT {COLUMNS} FROM users WHERE source = $1 ORDER BY username"
        ))
        .bind(origin.as_str())
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Records that a sync found the user gone from the directory: disables them and ends
    /// their sessions. The first time they were found gone is kept.
    pub async fn mark_left_directory(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        query(
            "UPDATE users SET enabled = 0, left_directory_at = COALESCE(left_directory_at, $2), \
             updated_at = $2 WHERE id = $1",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut tx)
        .await?;
        query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await
    }

    /// Users whose invitation is due, oldest first.
    pub async fn due_invitations(&self, limit: i64) -> Result<Vec<UserRecord>, StoreError> {
        let rows = query(format!(
            "SELECT {COLUMNS} FROM users WHERE invitation_due = 1 ORDER BY created_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// The user's invitation is no longer due: sent at `sent_at`, or given up (`None`).
    pub async fn invitation_done(
        &self,
        user_id: &str,
        sent_at: Option<UnixTime>,
    ) -> Result<(), StoreError> {
        query(
            "UPDATE users SET invitation_due = 0, invited_at = COALESCE($2, invited_at) WHERE id = $1",
        )
        .bind(user_id)
        .bind(sent_at)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Takes the lease `name` for `holder` until `now + seconds`, if it is free or expired
    /// (in one statement: of two nodes asking at once, one gets it). `false` when it is
    /// held, by another node or by `holder` itself.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        seconds: i64,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let row = query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at < $4 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(seconds))
        .bind(now)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.is_some())
    }

    /// Keeps the lease until `until`, if `holder` still has it.
    pub async fn hold_lease_until(
        &self,
        name: &str,
        holder: &str,
        until: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = query("UPDATE leases SET expires_at = $3 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .bind(until)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives the lease back, if `holder` still has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.db)
            .await?;
        Ok(())
    }
}

async fn find(tx: &mut Tx, column: &str, value: &str) -> Result<Option<UserRecord>, StoreError> {
    let row = query(format!("SELECT {COLUMNS} FROM users WHERE {column} = $1"))
        .bind(value)
        .fetch_optional(&mut *tx)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

async fn write_in(tx: &mut Tx, user: &DirectoryUser, now: UnixTime) -> Result<Written, StoreError> {
    let by_id = match &user.external_id {
        Some(id) => find(tx, "external_id", id).await?,
        None => None,
    };
    let found = match by_id {
        Some(found) => Some(found),
        None => match find(tx, "username", &user.username).await? {
            Some(other)
                if other.external_id.is_some()
                    && user.external_id.is_some()
                    && other.external_id != user.external_id =>
            {
                return Err(StoreError::Duplicate(format!(
                    "the username {} belongs to another directory account",
                    user.username
                )));
            }
            found => found,
        },
    };
    let Some(current) = found else {
        return add(tx, user, now).await;
    };
    let mut next = current.clone();
    let mut changed = Vec::new();
    if next.username != user.username {
        next.username = user.username.clone();
        changed.push("username");
    }
    for (name, field, value) in [
        ("email", &mut next.email, &user.email),
        ("phone", &mut next.phone, &user.phone),
        ("extension", &mut next.extension, &user.extension),
        ("mobile_phone", &mut next.mobile_phone, &user.mobile_phone),
        ("language", &mut next.language, &user.language),
    ] {
        if value.is_some() && field != value {
            field.clone_from(value);
            changed.push(name);
        }
    }
    if next.external_id.is_none() && user.external_id.is_some() {
        next.external_id.clone_from(&user.external_id);
        changed.push("external_id");
    }
    if user.origin == UserOrigin::Ldap && next.source != UserOrigin::Ldap.as_str() {
        next.source = UserOrigin::Ldap.as_str().to_owned();
        changed.push("source");
    }
    if next.left_directory_at.is_some() && user.origin == UserOrigin::Ldap {
        // Back in the directory: a sync disabled them when they left, so it enables them.
        next.left_directory_at = None;
        next.enabled = true;
        changed.push("returned");
    }
    if changed.is_empty() {
        return Ok(Written::Unchanged(current));
    }
    let result = query(
        "UPDATE users SET username = $2, email = $3, phone = $4, mobile_phone = $5, language = $6, \
         external_id = $7, source = $8, left_directory_at = $9, enabled = $10, updated_at = $11, \
         extension = $12 WHERE id = $1",
    )
    .bind(&next.id)
    .bind(&next.username)
    .bind(&next.email)
    .bind(&next.phone)
    .bind(&next.mobile_phone)
    .bind(&next.language)
    .bind(&next.external_id)
    .bind(&next.source)
    .bind(next.left_directory_at)
    .bind(bool_int(next.enabled))
    .bind(now)
    .bind(&next.extension)
    .execute(&mut *tx)
    .await;
    match result {
        Ok(_) => {}
        Err(StoreError::Unique(_)) => {
            return Err(StoreError::Duplicate(format!(
                "cannot rename {} to {}: another user has that username",
                current.username, user.username
            )));
        }
        Err(e) => return Err(e),
    }
    next.updated_at = now;
    Ok(Written::Updated {
        user: next,
        changed,
    })
}

async fn add(tx: &mut Tx, user: &DirectoryUser, now: UnixTime) -> Result<Written, StoreError> {
    let id = new_id();
    let invite = user.invite && user.email.is_some();
    let result = query(format!(
        "INSERT INTO users (id, username, email, phone, mobile_phone, language, password_hash, enabled, \
         created_at, updated_at, method, source, external_id, invitation_due, extension) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL, 1, $7, $7, $8, $9, $10, $11, $12) RETURNING {COLUMNS}",
    ))
    .bind(&id)
    .bind(&user.username)
    .bind(&user.email)
    .bind(&user.phone)
    .bind(&user.mobile_phone)
    .bind(&user.language)
    .bind(now)
    .bind(&user.method)
    .bind(user.origin.as_str())
    .bind(&user.external_id)
    .bind(bool_int(invite))
    .bind(&user.extension)
    .fetch_one(&mut *tx)
    .await;
    match result {
        Ok(row) => Ok(Written::Added(user_from_row(&row)?)),
        Err(StoreError::Unique(_)) => Err(StoreError::Duplicate(format!(
            "the username {} or its directory id is taken by another user",
            user.username
        ))),
        Err(e) => Err(e),
    }
}
