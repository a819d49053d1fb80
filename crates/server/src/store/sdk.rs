use super::db::{Row, query};
use super::{Store, StoreError, is_unique_violation};
use twofold_engine::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRecord {
    pub name: String,
    pub secret_hash: String,
    pub role: String,
    pub created_at: UnixTime,
}

/// An authentication started through the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationRecord {
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub state: String,
    pub next: Option<String>,
    /// JSON list of the question ids asked.
    pub asked: Option<String>,
    pub via: Option<String>,
    pub reason: Option<String>,
    pub attempts: i64,
    pub client_ip: Option<String>,
    pub context: Option<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub version: i64,
}

fn authentication_from_row(row: &Row) -> Result<AuthenticationRecord, StoreError> {
    Ok(AuthenticationRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        username: row.try_get("username")?,
        state: row.try_get("state")?,
        next: row.try_get("next")?,
        asked: row.try_get("asked")?,
        via: row.try_get("via")?,
        reason: row.try_get("reason")?,
        attempts: row.try_get("attempts")?,
        client_ip: row.try_get("client_ip")?,
        context: row.try_get("context")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        version: row.try_get("version")?,
    })
}

impl Store {
    pub async fn create_service_account(
        &self,
        account: &ServiceAccountRecord,
    ) -> Result<(), StoreError> {
        let result = query("INSERT INTO service_accounts (name, secret_hash, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&account.name)
            .bind(&account.secret_hash)
            .bind(&account.role)
            .bind(account.created_at)
            .execute(&self.db)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("a service account with that name"))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn service_account(
        &self,
        name: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError> {
        let row = query(
            "SELECT name, secret_hash, role, created_at FROM service_accounts WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.db)
        .await?;
        row.map(|row| {
            Ok(ServiceAccountRecord {
                name: row.try_get("name")?,
                secret_hash: row.try_get("secret_hash")?,
                role: row.try_get("role")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    pub async fn list_service_accounts(&self) -> Result<Vec<ServiceAccountRecord>, StoreError> {
        let rows =
            query("SELECT name, secret_hash, role, created_at FROM service_accounts ORDER BY name")
                .fetch_all(&self.db)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(ServiceAccountRecord {
                    name: row.try_get("name")?,
                    secret_hash: row.try_get("secret_hash")?,
                    role: row.try_get("role")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn delete_service_account(&self, name: &str) -> Result<bool, StoreError> {
        let done = query("DELETE FROM service_accounts WHERE name = $1")
            .bind(name)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn create_authentication(&self, a: &AuthenticationRecord) -> Result<(), StoreError> {
        query(
            "INSERT INTO authentications (id, user_id, username, state, next, asked, via, reason, attempts, client_ip, \
             context, created_at, expires_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1)",
        )
        .bind(&a.id)
        .bind(&a.user_id)
        .bind(&a.username)
        .bind(&a.state)
        .bind(a.next.as_deref())
        .bind(a.asked.as_deref())
        .bind(a.via.as_deref())
        .bind(a.reason.as_deref())
        .bind(a.attempts)
        .bind(a.client_ip.as_deref())
        .bind(a.context.as_deref())
        .bind(a.created_at)
        .bind(a.expires_at)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn authentication(
        &self,
        id: &str,
    ) -> Result<Option<AuthenticationRecord>, StoreError> {
        let row = query(
            "SELECT id, user_id, username, state, next, asked, via, reason, attempts, client_ip, context, created_at, \
             expires_at, version FROM authentications WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        row.as_ref().map(authentication_from_row).transpose()
    }

    /// Moves an authentication on if nobody else did since it was read as `version`.
    pub async fn update_authentication(
        &self,
        a: &AuthenticationRecord,
    ) -> Result<bool, StoreError> {
        let done = query(
            "UPDATE authentications SET state = $1, next = $2, asked = $3, via = $4, reason = $5, attempts = $6, \
             version = version + 1 WHERE id = $7 AND version = $8",
        )
        .bind(&a.state)
        .bind(a.next.as_deref())
        .bind(a.asked.as_deref())
        .bind(a.via.as_deref())
        .bind(a.reason.as_deref())
        .bind(a.attempts)
        .bind(&a.id)
        .bind(a.version)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts one answer to a pending authentication before it is checked. `false` when the
    /// authentication is no longer pending, has expired, or already holds `max` attempts.
    pub async fn reserve_authentication_attempt(
        &self,
        id: &str,
        max: i64,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let done = query(
            "UPDATE authentications SET attempts = attempts + 1 \
             WHERE id = $1 AND state = 'pending' AND expires_at > $3 AND attempts < $2",
        )
        .bind(id)
        .bind(max)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Hands back an answer that did not count (a malformed one).
    pub async fn release_authentication_attempt(&self, id: &str) -> Result<(), StoreError> {
        query("UPDATE authentications SET attempts = attempts - 1 WHERE id = $1 AND attempts > 0")
            .bind(id)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// Denies a pending authentication, whoever else is answering it. `false` when it was
    /// no longer pending.
    pub async fn deny_authentication(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let done = query(
            "UPDATE authentications SET state = 'denied', reason = $2, next = NULL, \
             version = version + 1 WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .bind(reason)
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets authentications that ended more than a day ago.
    pub async fn delete_old_authentications(&self, before: UnixTime) -> Result<u64, StoreError> {
        let done = query("DELETE FROM authentications WHERE expires_at < $1")
            .bind(before)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected())
    }
}
