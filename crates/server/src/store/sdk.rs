use super::db::query;
use super::{Store, StoreError, is_unique_violation};
use twofold_engine::UnixTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRecord {
    pub name: String,
    pub secret_hash: String,
    pub role: String,
    pub created_at: UnixTime,
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
}
