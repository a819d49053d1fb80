use super::db::query;
use super::{Store, StoreError};
use twofold_engine::{Settings, UnixTime};

impl Store {
    /// Writes every setting that is not stored yet (first start, or a setting added by an
    /// upgrade). Settings an administrator already changed are left alone.
    pub async fn seed_settings(&self, seed: &Settings, now: UnixTime) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for (key, value) in seed.to_entries() {
            query(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value.to_string())
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn settings(&self) -> Result<Settings, StoreError> {
        let rows = query("SELECT key, value FROM settings")
            .fetch_all(&self.db)
            .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get("key")?;
            let raw: String = row.try_get("value")?;
            let value = serde_json::from_str(&raw)
                .map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))?;
            entries.push((key, value));
        }
        Settings::from_entries(entries).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The settings as the next start will have them, without writing anything: the stored
    /// ones, and for a setting not stored yet the value `seed` (the configuration's
    /// `[settings]`) would give it.
    pub async fn settings_over(&self, seed: &Settings) -> Result<Settings, StoreError> {
        let rows = query("SELECT key, value FROM settings")
            .fetch_all(&self.db)
            .await?;
        let mut entries = seed.to_entries();
        for row in rows {
            let key: String = row.try_get("key")?;
            let raw: String = row.try_get("value")?;
            let value = serde_json::from_str(&raw)
                .map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))?;
            entries.insert(key, value);
        }
        Settings::from_entries(entries).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub async fn set_setting(
        &self,
        key: &str,
        value: &serde_json::Value,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(())
    }
}
