//! Administrators, their grants, local groups, and the first administrator's bootstrap link.

use super::db::{Row, Tx, query};
use super::{Store, StoreError};
use twofold_engine::UnixTime;
use twofold_engine::admin::{Grant, Permission, Rights, Scope};

/// An administrator as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRecord {
    pub user_id: String,
    pub username: String,
    pub rights: Rights,
    pub created_at: UnixTime,
    pub created_by: String,
}

/// What a change of administrators did to the owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminWrite {
    Done,
    /// Refused (nothing written): no owner would be left.
    NoOwnerLeft,
}

/// The owners: every permission for all users.
const OWNERS: &str = "SELECT user_id FROM admin_grants WHERE scope = 'all' \
                      GROUP BY user_id HAVING COUNT(DISTINCT permission) = 15";

fn grant_from_row(row: &Row) -> Result<Option<Grant>, StoreError> {
    let permission: String = row.try_get("permission")?;
    let scope: String = row.try_get("scope")?;
    // A name this version does not know (written by a newer one) grants nothing here.
    Ok(
        match (Permission::parse(&permission), Scope::parse(&scope)) {
            (Ok(permission), Ok(scope)) => Some(Grant { permission, scope }),
            _ => None,
        },
    )
}

/// Serialises changes of administrators (PostgreSQL; SQLite's writer transaction is
/// exclusive already), so that two removals cannot each leave the other as the last owner.
async fn lock_admins(tx: &mut Tx) -> Result<(), StoreError> {
    query("UPDATE admins SET created_at = created_at")
        .execute(tx)
        .await?;
    Ok(())
}

async fn owners_left(tx: &mut Tx) -> Result<i64, StoreError> {
    let row = query(format!("SELECT COUNT(*) AS n FROM ({OWNERS}) o"))
        .fetch_one(tx)
        .await?;
    row.try_get("n")
}

impl Store {
    /// How many administrators there are.
    pub async fn count_admins(&self) -> Result<i64, StoreError> {
        query("SELECT COUNT(*) AS n FROM admins")
            .fetch_one(&self.db)
            .await?
            .try_get("n")
    }

    /// The administrator who is the user `user_id`, if they are one.
    pub async fn admin(&self, user_id: &str) -> Result<Option<AdminRecord>, StoreError> {
        Ok(self
            .admins_where("a.user_id = $1", Some(user_id))
            .await?
            .pop())
    }

    /// Every administrator, by username.
    pub async fn list_admins(&self) -> Result<Vec<AdminRecord>, StoreError> {
        self.admins_where("1 = 1", None).await
    }

    async fn admins_where(
        &self,
        condition: &str,
        param: Option<&str>,
    ) -> Result<Vec<AdminRecord>, StoreError> {
        let mut q = query(format!(
            "SELECT a.user_id, u.username, a.bypass_max_seconds, a.created_at, a.created_by \
             FROM admins a JOIN users u ON u.id = a.user_id WHERE {condition} ORDER BY u.username"
        ));
        if let Some(p) = param {
            q = q.bind(p);
        }
        let rows = q.fetch_all(&self.db).await?;
        let mut admins = Vec::with_capacity(rows.len());
        for row in rows {
            let user_id: String = row.try_get("user_id")?;
            let grants = query(
                "SELECT permission, scope FROM admin_grants WHERE user_id = $1 \
                 ORDER BY permission, scope",
            )
            .bind(&user_id)
            .fetch_all(&self.db)
            .await?;
            let mut list = Vec::with_capacity(grants.len());
            for g in &grants {
                if let Some(grant) = grant_from_row(g)? {
                    list.push(grant);
                }
            }
            list.sort();
            let bypass: Option<i64> = row.try_get("bypass_max_seconds")?;
            admins.push(AdminRecord {
                user_id,
                username: row.try_get("username")?,
                rights: Rights {
                    grants: list,
                    bypass_max_seconds: bypass.and_then(|s| u32::try_from(s).ok()),
                },
                created_at: row.try_get("created_at")?,
                created_by: row.try_get("created_by")?,
            });
        }
        Ok(admins)
    }

    /// Makes `user_id` an administrator with `rights` (replacing any they had), unless that
    /// leaves no owner.
    pub async fn put_admin(
        &self,
        user_id: &str,
        rights: &Rights,
        created_by: &str,
        now: UnixTime,
    ) -> Result<AdminWrite, StoreError> {
        let mut tx = self.db.begin().await?;
        lock_admins(&mut tx).await?;
        query("DELETE FROM admin_grants WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        let bypass = rights.bypass_max_seconds.map(i64::from);
        let updated = query("UPDATE admins SET bypass_max_seconds = $2 WHERE user_id = $1")
            .bind(user_id)
            .bind(bypass)
            .execute(&mut tx)
            .await?;
        if updated.rows_affected() == 0 {
            query(
                "INSERT INTO admins (user_id, bypass_max_seconds, created_at, created_by) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(user_id)
            .bind(bypass)
            .bind(now)
            .bind(created_by)
            .execute(&mut tx)
            .await?;
        }
        for grant in &rights.grants {
            query("INSERT INTO admin_grants (user_id, permission, scope) VALUES ($1, $2, $3)")
                .bind(user_id)
                .bind(grant.permission.as_str())
                .bind(grant.scope.as_string())
                .execute(&mut tx)
                .await?;
        }
        if owners_left(&mut tx).await? == 0 {
            return Ok(AdminWrite::NoOwnerLeft);
        }
        tx.commit().await?;
        Ok(AdminWrite::Done)
    }

    /// Takes away every right of `user_id`, unless that leaves no owner while administrators
    /// remain. Returns `None` when they were no administrator.
    pub async fn remove_admin(&self, user_id: &str) -> Result<Option<AdminWrite>, StoreError> {
        let mut tx = self.db.begin().await?;
        lock_admins(&mut tx).await?;
        let gone = query("DELETE FROM admins WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Ok(None);
        }
        if owners_left(&mut tx).await? == 0 {
            return Ok(Some(AdminWrite::NoOwnerLeft));
        }
        tx.commit().await?;
        Ok(Some(AdminWrite::Done))
    }

    /// The groups `user_id` belongs to, by name.
    pub async fn user_groups(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            query("SELECT group_name FROM user_groups WHERE user_id = $1 ORDER BY group_name")
                .bind(user_id)
                .fetch_all(&self.db)
                .await?;
        rows.iter().map(|r| r.try_get("group_name")).collect()
    }

    /// Puts `user_id` in exactly `groups`.
    pub async fn set_user_groups(
        &self,
        user_id: &str,
        groups: &[String],
    ) -> Result<(), StoreError> {
        let mut statements =
            vec![query("DELETE FROM user_groups WHERE user_id = $1").bind(user_id)];
        for g in groups {
            statements.push(
                query("INSERT INTO user_groups (user_id, group_name) VALUES ($1, $2)")
                    .bind(user_id)
                    .bind(g.as_str()),
            );
        }
        self.db.execute_all(statements).await?;
        Ok(())
    }

    /// Every group that has members, with how many.
    pub async fn groups(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = query(
            "SELECT group_name, COUNT(*) AS n FROM user_groups GROUP BY group_name ORDER BY group_name",
        )
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("group_name")?, r.try_get("n")?)))
            .collect()
    }

    /// Stores a new bootstrap link (its hash), ending every earlier one.
    pub async fn create_bootstrap(
        &self,
        token_hash: &str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> Result<(), StoreError> {
        self.db
            .execute_all(vec![
                query("DELETE FROM admin_bootstrap WHERE used_at IS NULL"),
                query(
                    "INSERT INTO admin_bootstrap (token_hash, created_at, expires_at, used_at) \
                     VALUES ($1, $2, $3, NULL)",
                )
                .bind(token_hash)
                .bind(now)
                .bind(expires_at),
            ])
            .await?;
        Ok(())
    }

    /// Whether the bootstrap link `token_hash` is unused and valid at `now`.
    pub async fn bootstrap_valid(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(query(
            "SELECT token_hash FROM admin_bootstrap WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.db)
        .await?
        .is_some())
    }

    /// Uses the bootstrap link once to make `user_id` the first administrator with `rights`:
    /// `false` (nothing written) when the link is used or expired, or an administrator
    /// exists already.
    pub async fn redeem_bootstrap(
        &self,
        token_hash: &str,
        user_id: &str,
        rights: &Rights,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        lock_admins(&mut tx).await?;
        let used = query(
            "UPDATE admin_bootstrap SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL \
             AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .execute(&mut tx)
        .await?;
        let existing: i64 = query("SELECT COUNT(*) AS n FROM admins")
            .fetch_one(&mut tx)
            .await?
            .try_get("n")?;
        if used.rows_affected() != 1 || existing > 0 {
            return Ok(false);
        }
        query(
            "INSERT INTO admins (user_id, bypass_max_seconds, created_at, created_by) \
             VALUES ($1, $2, $3, 'bootstrap')",
        )
        .bind(user_id)
        .bind(rights.bypass_max_seconds.map(i64::from))
        .bind(now)
        .execute(&mut tx)
        .await?;
        for grant in &rights.grants {
            query("INSERT INTO admin_grants (user_id, permission, scope) VALUES ($1, $2, $3)")
                .bind(user_id)
                .bind(grant.permission.as_str())
                .bind(grant.scope.as_string())
                .execute(&mut tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
