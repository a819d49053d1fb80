//! Sealed values (see [`crate::secrets`]) wherever the store keeps them, for re-encryption
//! under a new key: `oath_tokens.secret_sealed`, `devices.key_sealed` (a device's public key
//! and push endpoint) and `app_server_keys.private_sealed` (the server's signing key for the
//! app). A new sealed column joins [`Store::sealed_values_not_under`] and
//! [`Store::replace_sealed_value`] here.

use super::db::query;
use super::{Store, StoreError};
use crate::secrets::sealed_prefix;

const OATH_TOKENS: &str = "oath_tokens";
const DEVICES: &str = "devices";
const APP_SERVER_KEYS: &str = "app_server_keys";

/// The sealed columns without a `key_id` column of their own: (table, column).
const SEALED_ONLY: [(&str, &str); 2] =
    [(DEVICES, "key_sealed"), (APP_SERVER_KEYS, "private_sealed")];

/// One sealed value as read: the table, the row's id and the sealed text. The row id is
/// part of the value's associated data (`<table>:<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub table: &'static str,
    pub id: String,
    pub sealed: String,
}

impl Store {
    /// Every sealed value not under `current_key`: its `key_id` column names another key, or
    /// its text does not start with `v1:<current_key>:` (so a row whose two disagree is
    /// re-encrypted too, rather than left under a key the operator may delete).
    pub async fn sealed_values_not_under(
        &self,
        current_key: &str,
    ) -> Result<Vec<SealedValue>, StoreError> {
        let rows = query(
            "SELECT id, secret_sealed FROM oath_tokens \
             WHERE key_id <> $1 OR substr(secret_sealed, 1, length($2)) <> $2 \
             ORDER BY id",
        )
        .bind(current_key)
        .bind(sealed_prefix(current_key))
        .fetch_all(&self.db)
        .await?;
        let mut out: Vec<SealedValue> = rows
            .iter()
            .map(|row| {
                Ok(SealedValue {
                    table: OATH_TOKENS,
                    id: row.try_get("id")?,
                    sealed: row.try_get("secret_sealed")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        for (table, column) in SEALED_ONLY {
            let rows = query(format!(
                "SELECT id, {column} AS sealed FROM {table} \
                 WHERE substr({column}, 1, length($1)) <> $1 ORDER BY id"
            ))
            .bind(sealed_prefix(current_key))
            .fetch_all(&self.db)
            .await?;
            for row in &rows {
                out.push(SealedValue {
                    table,
                    id: row.try_get("id")?,
                    sealed: row.try_get("sealed")?,
                });
            }
        }
        Ok(out)
    }

    /// One sealed value of each kind the store keeps (the first OATH seed, device key and app
    /// server key, by id), for a check that the keyring still opens them (`twofold doctor`).
    /// Empty when nothing is sealed yet.
    pub async fn sample_sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        let mut out = Vec::new();
        for (table, column) in [(OATH_TOKENS, "secret_sealed")]
            .into_iter()
            .chain(SEALED_ONLY)
        {
            let row = query(format!(
                "SELECT id, {column} AS sealed FROM {table} ORDER BY id LIMIT 1"
            ))
            .fetch_optional(&self.db)
            .await?;
            if let Some(row) = row {
                out.push(SealedValue {
                    table,
                    id: row.try_get("id")?,
                    sealed: row.try_get("sealed")?,
                });
            }
        }
        Ok(out)
    }

    /// Replaces one sealed value with `new_sealed` under `new_key_id` if it is still the one
    /// read (same sealed text), and bumps the row's version so that a writer holding the old
    /// row retries. Returns `false` if it changed or went away meanwhile.
    pub async fn replace_sealed_value(
        &self,
        value: &SealedValue,
        new_sealed: &str,
        new_key_id: &str,
    ) -> Result<bool, StoreError> {
        if let Some((table, column)) = SEALED_ONLY.iter().find(|(t, _)| *t == value.table) {
            let done = query(format!(
                "UPDATE {table} SET {column} = $1 WHERE id = $2 AND {column} = $3"
            ))
            .bind(new_sealed)
            .bind(&value.id)
            .bind(&value.sealed)
            .execute(&self.db)
            .await?;
            return Ok(done.rows_affected() == 1);
        }
        let sql = match value.table {
            OATH_TOKENS => {
                "UPDATE oath_tokens SET secret_sealed = $1, key_id = $2, version = version + 1 \
                 WHERE id = $3 AND secret_sealed = $4"
            }
            other => {
                return Err(StoreError::Database(format!(
                    "no sealed values are kept in the table {other}"
                )));
            }
        };
        let done = query(sql)
            .bind(new_sealed)
            .bind(new_key_id)
            .bind(&value.id)
            .bind(&value.sealed)
            .execute(&self.db)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatabaseTarget, Secret};
    use crate::secrets::{Keyring, SecretsError, reencrypt_all};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// A migrated SQLite store in `dir`, and a PostgreSQL one too when
    /// `TWOFOLD_TEST_POSTGRES_URL` names a server (as `scripts/test` does); each with its own
    /// data directory for keys.
    async fn stores(dir: &Path) -> Vec<(Store, PathBuf)> {
        let mut targets = vec![DatabaseTarget::Sqlite(dir.join("t.db"))];
        if let Ok(admin) = std::env::var("TWOFOLD_TEST_POSTGRES_URL") {
            use sqlx::Connection;
            let name = format!("sealed_{}", hex::encode(rand::random::<[u8; 8]>()));
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&format!("/{name}"));
            targets.push(DatabaseTarget::Postgres(Secret::new(url.as_str())));
        }
        let mut stores = Vec::new();
        for (n, target) in targets.iter().enumerate() {
            let store = Store::connect(target, 4, Duration::from_secs(5))
                .await
                .unwrap();
            store.migrate().await.unwrap();
            stores.push((store, dir.join(format!("data{n}"))));
        }
        stores
    }

    /// Adds an unassigned TOTP token whose seed is `seed` sealed for its row.
    async fn insert_token(store: &Store, keyring: &Keyring, id: &str, seed: &[u8]) -> String {
        let sealed = keyring
            .seal(seed, format!("{OATH_TOKENS}:{id}").as_bytes())
            .unwrap();
        query(
            "INSERT INTO oath_tokens (id, kind, otp_type, algorithm, digits, period, counter, \
             secret_sealed, key_id, status, created_at) \
             VALUES ($1, 'hardware', 'totp', 'SHA1', 6, 30, 0, $2, $3, 'available', 0)",
        )
        .bind(id)
        .bind(&sealed)
        .bind(keyring.current_id())
        .execute(&store.db)
        .await
        .unwrap();
        sealed
    }

    async fn token(store: &Store, id: &str) -> (String, String, i64) {
        let row = query("SELECT secret_sealed, key_id, version FROM oath_tokens WHERE id = $1")
            .bind(id)
            .fetch_one(&store.db)
            .await
            .unwrap();
        (
            row.try_get("secret_sealed").unwrap(),
            row.try_get("key_id").unwrap(),
            row.try_get("version").unwrap(),
        )
    }

    #[tokio::test]
    async fn reencryption_moves_every_token_to_the_current_key() {
        let dir = tempfile::tempdir().unwrap();
        for (store, data_dir) in stores(dir.path()).await {
            let mut keyring = Keyring::load(&data_dir, None, None).unwrap();
            let old_id = keyring.current_id().to_owned();
            insert_token(&store, &keyring, "t1", b"seed one").await;
            insert_token(&store, &keyring, "t2", b"seed two").await;
            assert_eq!(reencrypt_all(&store, &keyring).await.unwrap(), 0);

            let new_id = keyring.rotate(&data_dir).unwrap();
            insert_token(&store, &keyring, "t3", b"seed three").await;
            assert_eq!(
                store.sealed_values_not_under(&new_id).await.unwrap().len(),
                2
            );

            assert_eq!(reencrypt_all(&store, &keyring).await.unwrap(), 2);
            for (id, seed) in [
                ("t1", &b"seed one"[..]),
                ("t2", b"seed two"),
                ("t3", b"seed three"),
            ] {
                let (sealed, key_id, _) = token(&store, id).await;
                assert_eq!(key_id, new_id);
                assert_eq!(Keyring::key_id_of(&sealed), Some(new_id.as_str()));
                let opened = keyring
                    .open(&sealed, format!("oath_tokens:{id}").as_bytes())
                    .unwrap();
                assert_eq!(&opened[..], seed);
            }
            assert_eq!(token(&store, "t1").await.2, 2, "the version moved on");
            assert_eq!(reencrypt_all(&store, &keyring).await.unwrap(), 0);

            // Once everything is under the new key, the old key file can go.
            std::fs::remove_file(data_dir.join("keys").join(format!("{old_id}.key"))).unwrap();
            let without_old = Keyring::load(&data_dir, None, None).unwrap();
            let (sealed, _, _) = token(&store, "t2").await;
            assert_eq!(
                &without_old.open(&sealed, b"oath_tokens:t2").unwrap()[..],
                b"seed two"
            );
            store.close().await;
        }
    }

    #[tokio::test]
    async fn reencryption_moves_device_keys_and_the_app_server_key_too() {
        let dir = tempfile::tempdir().unwrap();
        for (store, data_dir) in stores(dir.path()).await {
            let mut keyring = Keyring::load(&data_dir, None, None).unwrap();
            query("INSERT INTO users (id, username, enabled, created_at, updated_at) VALUES ('u1', 'ada', 1, 0, 0)")
                .execute(&store.db)
                .await
                .unwrap();
            let device = keyring.seal(b"device key", b"devices:d1").unwrap();
            query(
                "INSERT INTO devices (id, user_id, name, algorithm, key_sealed, created_at) \
                 VALUES ('d1', 'u1', 'phone', 'ed25519', $1, 0)",
            )
            .bind(&device)
            .execute(&store.db)
            .await
            .unwrap();
            let server = keyring
                .seal(b"server key", b"app_server_keys:current")
                .unwrap();
            store.app_server_key(("pub", &server), 0).await.unwrap();
            let new_id = keyring.rotate(&data_dir).unwrap();
            assert_eq!(reencrypt_all(&store, &keyring).await.unwrap(), 2);
            let row = query("SELECT key_sealed FROM devices WHERE id = 'd1'")
                .fetch_one(&store.db)
                .await
                .unwrap();
            let sealed: String = row.try_get("key_sealed").unwrap();
            assert_eq!(Keyring::key_id_of(&sealed), Some(new_id.as_str()));
            assert_eq!(
                &keyring.open(&sealed, b"devices:d1").unwrap()[..],
                b"device key"
            );
            let (_, server) = store.app_server_key(("other", "other"), 0).await.unwrap();
            assert_eq!(
                &keyring.open(&server, b"app_server_keys:current").unwrap()[..],
                b"server key"
            );
            assert_eq!(reencrypt_all(&store, &keyring).await.unwrap(), 0);
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_row_whose_key_id_disagrees_with_its_value_is_reencrypted_too() {
        let dir = tempfile::tempdir().unwrap();
        for (store, data_dir) in stores(dir.path()).await {
            let mut keyring = Keyring::load(&data_dir, None, None).unwrap();
            insert_token(&store, &keyring, "t1", b"seed").await;
            let new_id = keyring.rotate(&data_dir).unwrap();
            query("UPDATE oath_tokens SET key_id = $1")
                .bind(&new_id)
                .execute(&store.db)
                .await
                .unwrap();
            assert_eq!(reencrypt_all(&store, &keyring).await.unwrap(), 1);
            let (sealed, _, _) = token(&store, "t1").await;
            assert_eq!(Keyring::key_id_of(&sealed), Some(new_id.as_str()));
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_sealed_value_changed_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        for (store, _) in stores(dir.path()).await {
            let keyring = Keyring::for_tests([5; 32]);
            let sealed = insert_token(&store, &keyring, "t1", b"seed").await;
            let read = SealedValue {
                table: OATH_TOKENS,
                id: "t1".into(),
                sealed: "v1:gone:AAAA".into(),
            };
            assert!(
                !store
                    .replace_sealed_value(&read, "v1:x:y", "x")
                    .await
                    .unwrap()
            );
            assert_eq!(token(&store, "t1").await.0, sealed);
            let read = SealedValue { sealed, ..read };
            assert!(
                store
                    .replace_sealed_value(&read, "v1:x:y", "x")
                    .await
                    .unwrap()
            );
            assert_eq!(token(&store, "t1").await, ("v1:x:y".into(), "x".into(), 2));
            store.close().await;
        }
    }

    #[tokio::test]
    async fn a_value_copied_to_another_row_stops_reencryption_naming_the_row() {
        let dir = tempfile::tempdir().unwrap();
        for (store, data_dir) in stores(dir.path()).await {
            let mut keyring = Keyring::load(&data_dir, None, None).unwrap();
            let sealed = insert_token(&store, &keyring, "t1", b"seed").await;
            insert_token(&store, &keyring, "t2", b"other").await;
            query("UPDATE oath_tokens SET secret_sealed = $1 WHERE id = 't2'")
                .bind(&sealed)
                .execute(&store.db)
                .await
                .unwrap();
            keyring.rotate(&data_dir).unwrap();
            let error = reencrypt_all(&store, &keyring).await.unwrap_err();
            assert!(
                matches!(&error, SecretsError::Row { table: "oath_tokens", id, .. } if id == "t2"),
                "{error}"
            );
            store.close().await;
        }
    }
}
