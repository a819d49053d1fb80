use super::db::{Row, query};
use super::{Store, StoreError, bool_int, is_unique_violation, new_id};
use twofold_engine::{UnixTime, Username};

/// A user as stored. The password hash never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub password_hash: Option<String>,
    pub enabled: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    /// The chosen primary method (`oath`, later `phone_call`, `sms`, `mobile_app`).
    pub method: Option<String>,
    pub pin_hash: Option<String>,
    /// When the user finished the enrolment wizard.
    pub enrolled_at: Option<UnixTime>,
    pub mobile_phone: Option<String>,
    /// Where the user came from: `local`, `ldap`, `csv` or `radius`.
    pub source: String,
    /// The directory's own id for the user (survives a rename).
    pub external_id: Option<String>,
    /// When a sync last found the user gone from the directory (`None` while present).
    pub left_directory_at: Option<UnixTime>,
    /// When the user was emailed the portal's address.
    pub invited_at: Option<UnixTime>,
    /// Digits dialled once a call to `phone` is answered.
    pub extension: Option<String>,
    /// A second number (E.164), for when the first cannot be reached.
    pub backup_phone: Option<String>,
    pub backup_extension: Option<String>,
    /// A fraud report blocks sign-ins until then.
    pub fraud_blocked_until: Option<UnixTime>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
}

/// Changes to a user: `None` leaves a field as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub language: Option<Option<String>>,
    pub password_hash: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub method: Option<Option<String>>,
    pub pin_hash: Option<Option<String>>,
    pub enrolled_at: Option<Option<UnixTime>>,
    pub extension: Option<Option<String>>,
    pub backup_phone: Option<Option<String>>,
    pub backup_extension: Option<Option<String>>,
    pub fraud_blocked_until: Option<Option<UnixTime>>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.phone.is_none()
            && self.language.is_none()
            && self.password_hash.is_none()
            && self.enabled.is_none()
            && self.method.is_none()
            && self.pin_hash.is_none()
            && self.enrolled_at.is_none()
            && self.extension.is_none()
            && self.backup_phone.is_none()
            && self.backup_extension.is_none()
            && self.fraud_blocked_until.is_none()
    }
}

pub(super) const COLUMNS: &str = "id, username, email, phone, language, password_hash, enabled, created_at, updated_at, \
                       method, pin_hash, enrolled_at, mobile_phone, source, external_id, left_directory_at, invited_at, \
                       extension, backup_phone, backup_extension, fraud_blocked_until";

pub(super) fn user_from_row(row: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        phone: row.try_get("phone")?,
        language: row.try_get("language")?,
        password_hash: row.try_get("password_hash")?,
        enabled: row.try_get::<i64>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        method: row.try_get("method")?,
        pin_hash: row.try_get("pin_hash")?,
        enrolled_at: row.try_get("enrolled_at")?,
        mobile_phone: row.try_get("mobile_phone")?,
        source: row.try_get("source")?,
        external_id: row.try_get("external_id")?,
        left_directory_at: row.try_get("left_directory_at")?,
        invited_at: row.try_get("invited_at")?,
        extension: row.try_get("extension")?,
        backup_phone: row.try_get("backup_phone")?,
        backup_extension: row.try_get("backup_extension")?,
        fraud_blocked_until: row.try_get("fraud_blocked_until")?,
    })
}

/// What deciding the step after the password needs beyond the user: whether they hold an
/// active token, how many security answers they keep, and their usable one-time bypass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInFacts {
    pub has_active_token: bool,
    pub security_answers: usize,
    /// The newest bypass not used and not expired.
    pub bypass_id: Option<String>,
    /// How many authenticator-app devices the user activated.
    pub devices: u32,
}

impl Store {
    /// [`SignInFacts`] of a user at `now`, in one read.
    pub async fn sign_in_facts(
        &self,
        user_id: &str,
        now: UnixTime,
    ) -> Result<SignInFacts, StoreError> {
        let row = query(
            "SELECT \
               (SELECT COUNT(*) FROM oath_tokens WHERE user_id = $1 AND status = $3) AS tokens, \
               (SELECT COUNT(*) FROM security_answers WHERE user_id = $1) AS answers, \
               (SELECT COUNT(*) FROM devices WHERE user_id = $1) AS devices, \
               (SELECT id FROM bypasses WHERE user_id = $1 AND used_at IS NULL AND expires_at > $2 \
                ORDER BY created_at DESC LIMIT 1) AS bypass_id",
        )
        .bind(user_id)
        .bind(now)
        .bind(super::TokenStatus::Active.as_str())
        .fetch_one(&self.db)
        .await?;
        Ok(SignInFacts {
            has_active_token: row.try_get::<i64>("tokens")? > 0,
            security_answers: usize::try_from(row.try_get::<i64>("answers")?).unwrap_or(0),
            bypass_id: row.try_get("bypass_id")?,
            devices: u32::try_from(row.try_get::<i64>("devices")?).unwrap_or(0),
        })
    }

    pub async fn create_user(&self, new: NewUser, now: UnixTime) -> Result<UserRecord, StoreError> {
        let id = new_id();
        let result = query(
            "INSERT INTO users (id, username, email, phone, language, password_hash, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, 1, $6, $6)",
        )
        .bind(&id)
        .bind(new.username.as_str())
        .bind(new.email)
        .bind(new.phone)
        .bind(new.password_hash)
        .bind(now)
        .execute(&self.db)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("a user with that username"));
            }
            Err(e) => return Err(e),
        }
        self.user_by_id(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = query(format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
            .bind(username.as_str())
            .fetch_optional(&self.db)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = query(format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users in username order, `limit` at a time, after the username `after`.
    pub async fn list_users(
        &self,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Vec<UserRecord>, StoreError> {
        self.find_users(limit, after, "").await
    }

    /// Like [`Store::list_users`], keeping usernames that contain `contains`.
    pub async fn find_users(
        &self,
        limit: i64,
        after: Option<&str>,
        contains: &str,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let mut pattern = String::from("%");
        for c in contains.chars() {
            if matches!(c, '%' | '_' | '!') {
                pattern.push('!');
            }
            pattern.push(c);
        }
        pattern.push('%');
        let rows = query(format!(
            "SELECT {COLUMNS} FROM users WHERE username > $1 AND username LIKE $3 ESCAPE '!' ORDER BY username LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .bind(pattern)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Applies `changes` and returns the user as it now is.
    pub async fn update_user(
        &self,
        username: &Username,
        changes: UserChanges,
        now: UnixTime,
    ) -> Result<UserRecord, StoreError> {
        let current = self
            .user_by_username(username)
            .await?
            .ok_or(StoreError::NotFound)?;
        let email = changes.email.unwrap_or(current.email);
        let phone = changes.phone.unwrap_or(current.phone);
        let language = changes.language.unwrap_or(current.language);
        let password_hash = changes.password_hash.unwrap_or(current.password_hash);
        let enabled = changes.enabled.unwrap_or(current.enabled);
        let method = changes.method.unwrap_or(current.method);
        let pin_hash = changes.pin_hash.unwrap_or(current.pin_hash);
        let enrolled_at = changes.enrolled_at.unwrap_or(current.enrolled_at);
        let extension = changes.extension.unwrap_or(current.extension);
        let backup_phone = changes.backup_phone.unwrap_or(current.backup_phone);
        let backup_extension = changes.backup_extension.unwrap_or(current.backup_extension);
        let fraud_blocked_until = changes
            .fraud_blocked_until
            .unwrap_or(current.fraud_blocked_until);
        let done = query(
            "UPDATE users SET email = $1, phone = $2, language = $3, password_hash = $4, enabled = $5, updated_at = $6, \
             method = $8, pin_hash = $9, enrolled_at = $10, extension = $11, backup_phone = $12, \
             backup_extension = $13, fraud_blocked_until = $14 WHERE id = $7",
        )
        .bind(email)
        .bind(phone)
        .bind(language)
        .bind(password_hash)
        .bind(bool_int(enabled))
        .bind(now)
        .bind(&current.id)
        .bind(method)
        .bind(pin_hash)
        .bind(enrolled_at)
        .bind(extension)
        .bind(backup_phone)
        .bind(backup_extension)
        .bind(fraud_blocked_until)
        .execute(&self.db)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.user_by_id(&current.id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes a user and, with them, their sessions. `false` when there was no such user.
    pub async fn delete_user(&self, username: &Username) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        // Software tokens go with the user; hardware tokens return to the inventory.
        query(
            "DELETE FROM oath_tokens WHERE kind = 'software' AND user_id IN (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username.as_str())
        .execute(&mut tx)
        .await?;
        query(
            "UPDATE oath_tokens SET user_id = NULL, status = 'available', version = version + 1 \
             WHERE user_id IN (SELECT id FROM users WHERE username = $1)",
        )
        .bind(username.as_str())
        .execute(&mut tx)
        .await?;
        query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE username = $1)")
            .bind(username.as_str())
            .execute(&mut tx)
            .await?;
        let done = query("DELETE FROM users WHERE username = $1")
            .bind(username.as_str())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
