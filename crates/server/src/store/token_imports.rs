//! Token imports started from the admin console (a job per file), and the hardware token
//! inventory a page at a time.

use super::db::query;
use super::tokens::{params_from_row, parse_status};
use super::{Store, StoreError, TokenStatus};
use twofold_engine::UnixTime;
use twofold_engine::oath::OathParams;

/// One token import: where it is, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenImportRecord {
    pub id: String,
    pub file_name: String,
    /// `checking`, `importing`, `finished`, `refused` or `failed`.
    pub state: String,
    pub total: i64,
    pub done: i64,
    /// A JSON array of `{"location", "reason"}`.
    pub errors: String,
    pub created_by: String,
    pub created_at: UnixTime,
}

/// One hardware token of the inventory.
#[derive(Debug, Clone)]
pub struct InventoryToken {
    pub serial: String,
    pub params: OathParams,
    pub status: TokenStatus,
    pub username: Option<String>,
}

/// `%`, `_` and `\` taken literally in a LIKE pattern (with `ESCAPE '\'`).
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store {
    pub async fn create_token_import(
        &self,
        id: &str,
        file_name: &str,
        created_by: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        query(
            "INSERT INTO token_imports (id, file_name, state, total, done, errors, created_by, created_at, updated_at) \
             VALUES ($1, $2, 'checking', 0, 0, '[]', $3, $4, $4)",
        )
        .bind(id)
        .bind(file_name)
        .bind(created_by)
        .bind(now)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    /// Records where an import is.
    pub async fn update_token_import(
        &self,
        id: &str,
        state: &str,
        total: i64,
        done: i64,
        errors: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        query(
            "UPDATE token_imports SET state = $1, total = $2, done = $3, errors = $4, updated_at = $5 \
             WHERE id = $6",
        )
        .bind(state)
        .bind(total)
        .bind(done)
        .bind(errors)
        .bind(now)
        .bind(id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    pub async fn token_import(&self, id: &str) -> Result<Option<TokenImportRecord>, StoreError> {
        let row = query(
            "SELECT id, file_name, state, total, done, errors, created_by, created_at \
             FROM token_imports WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        row.map(|row| {
            Ok(TokenImportRecord {
                id: row.try_get("id")?,
                file_name: row.try_get("file_name")?,
                state: row.try_get("state")?,
                total: row.try_get("total")?,
                done: row.try_get("done")?,
                errors: row.try_get("errors")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Every serial in the store.
    pub async fn token_serials(&self) -> Result<Vec<String>, StoreError> {
        let rows = query("SELECT serial FROM oath_tokens WHERE serial IS NOT NULL")
            .fetch_all(&self.db)
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String>("serial"))
            .collect()
    }

    /// Up to `limit` hardware tokens whose serial comes after `after` (keyset pagination, in
    /// serial order), those whose serial contains `search` when it is not empty.
    pub async fn token_inventory(
        &self,
        after: &str,
        search: &str,
        limit: i64,
    ) -> Result<Vec<InventoryToken>, StoreError> {
        let pattern = format!("%{}%", like_literal(search));
        let rows = query(
            "SELECT t.serial, t.otp_type, t.algorithm, t.digits, t.period, t.status, u.username \
             FROM oath_tokens t LEFT JOIN users u ON u.id = t.user_id \
             WHERE t.kind = 'hardware' AND t.serial IS NOT NULL AND t.serial > $1 \
             AND ($2 = '' OR t.serial LIKE $3 ESCAPE '\\') \
             ORDER BY t.serial LIMIT $4",
        )
        .bind(after)
        .bind(search)
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|row| {
                let status: String = row.try_get("status")?;
                Ok(InventoryToken {
                    serial: row.try_get("serial")?,
                    params: params_from_row(row)?,
                    status: parse_status(&status)?,
                    username: row.try_get("username")?,
                })
            })
            .collect()
    }
}
