//! The store: everything a second node needs, in SQLite or PostgreSQL.
//!
//! One code path for both backends through sqlx's `Any` driver: every query is written once
//! with `$N` placeholders, times are epoch seconds (`BIGINT`/`INTEGER`), ids are text, and
//! booleans are 0/1 integers (the `Any` driver maps only integers, floats, text and blobs
//! the same way on both). Each backend has its own migrations folder, embedded in the binary.

mod audit;
mod bypasses;
mod lockouts;
mod questions;
mod sdk;
mod sealed;
mod sessions;
mod settings;
mod tokens;
mod users;

pub use audit::AuditRow;
pub use bypasses::BypassRecord;
pub use questions::QuestionRecord;
pub use sdk::{AuthenticationRecord, ServiceAccountRecord};
pub use sealed::SealedValue;
pub use sessions::SessionRecord;
pub use tokens::{NewToken, TokenKind, TokenListing, TokenRecord, TokenStatus};
pub use users::{NewUser, UserChanges, UserRecord};

use crate::config::DatabaseTarget;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::path::Path;
use std::time::Duration;
use twofold_engine::UnixTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0}")]
    Duplicate(String),
    #[error("not found")]
    NotFound,
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        classify(e)
    }
}

fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if code == "25006"
                || code == "8"
                || message.contains("readonly")
                || message.contains("read-only")
            {
                StoreError::ReadOnly(message)
            } else if is_connection_refusal(&code, &message) {
                StoreError::Unavailable(message)
            } else if db.is_unique_violation() {
                StoreError::Database(format!("unique violation: {message}"))
            } else {
                StoreError::Database(message)
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Migrate(m) => {
            let text = m.to_string();
            if text.contains("readonly") || text.contains("read-only") {
                StoreError::ReadOnly(text)
            } else {
                StoreError::Database(text)
            }
        }
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Database(e.to_string()),
    }
}

/// PostgreSQL's ways of saying "not now": connection exceptions (08), operator intervention
/// (57P: shutdown, terminated backend), too many connections (53300), a database that does
/// not exist, refuses connections, or rejects the credentials (3D000, 55000, 28xxx).
fn is_connection_refusal(code: &str, message: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("57P")
        || code.starts_with("28")
        || code == "53300"
        || code == "3D000"
        || message.contains("does not allow connections")
        || message.contains("not currently accepting connections")
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The repository every part of the server uses. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects (creating the SQLite file if needed) and checks that the database answers.
    pub async fn connect(
        target: &DatabaseTarget,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        install_default_drivers();
        let (url, backend) = match target {
            DatabaseTarget::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                create_private_file(path)?;
                (sqlite_url(path), Backend::Sqlite)
            }
            DatabaseTarget::Postgres(url) => (url.expose().to_owned(), Backend::Postgres),
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .test_before_acquire(true);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers and a writer work at once; the busy timeout makes a
                    // second writer wait instead of failing.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = tokio::time::timeout(timeout + Duration::from_secs(1), options.connect(&url))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("no answer within {} s", timeout.as_secs()))
            })?
            .map_err(|e| match classify(e) {
                StoreError::Database(m) => StoreError::Unavailable(m),
                other => other,
            })?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&self.pool).await,
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await
            }
        };
        result.map_err(|e| classify(sqlx::Error::Migrate(Box::new(e))))
    }

    /// Proves that the store answers a write now (for `/readyz` and at start).
    pub async fn check_ready(&self, now: UnixTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE readiness SET checked_at = $1 WHERE id = 1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A named secret shared by every node, created by the first one that asks.
    pub async fn server_secret(
        &self,
        name: &str,
        now: UnixTime,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generate())
        .bind(now)
        .execute(&self.pool)
        .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }
}

/// Creates the SQLite file readable by its owner only (it holds password hashes); SQLite
/// gives its WAL and shared-memory files the same permissions.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", path.display())))
}

fn sqlite_url(path: &Path) -> String {
    // Percent-encode what would end or confuse the path part of the URL.
    let raw = path.to_string_lossy();
    let mut encoded = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '%' => encoded.push_str("%25"),
            '?' => encoded.push_str("%3F"),
            '#' => encoded.push_str("%23"),
            ' ' => encoded.push_str("%20"),
            c => encoded.push(c),
        }
    }
    format!("sqlite://{encoded}?mode=rwc")
}

/// A random identifier: 128 bits as 32 hex digits.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn bool_int(b: bool) -> i64 {
    i64::from(b)
}
