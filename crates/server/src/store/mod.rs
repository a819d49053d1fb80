//! The store: everything a second node needs, in SQLite or PostgreSQL.
//!
//! One code path for both backends (see [`db`]): every query is written once with `$N`
//! placeholders, times are epoch seconds (`BIGINT`/`INTEGER`), ids are text, and booleans
//! are 0/1 integers. Each backend has its own migrations folder, embedded in the binary.

mod admins;
mod audit;
mod audit_search;
mod authentications;
pub mod backup;
mod bypasses;
mod db;
mod devices;
mod directory_users;
mod lockouts;
mod migrations;
mod phones;
mod question_text;
mod questions;
mod reports;
mod sdk;
mod sealed;
mod sessions;
mod settings;
mod token_imports;
mod tokens;
mod user_search;
mod users;

pub use admins::{AdminRecord, AdminWrite};
pub use audit::AuditRow;
pub use audit_search::AuditFilter;
pub use bypasses::BypassRecord;
pub use devices::{DeviceAdmission, DeviceRecord, PushAdmission, PushLimits, PushRequestRecord};
pub use directory_users::{DirectoryUser, UserOrigin, Written};
pub use lockouts::{Settled, VersionedLockout};
pub use migrations::{RELEASE, SchemaStatus};
pub use phones::SendCounts;
pub use questions::QuestionRecord;
pub use reports::{DAY, DayCount, UserStates};
pub use sdk::ServiceAccountRecord;
pub use sealed::SealedValue;
pub use sessions::SessionRecord;
pub use token_imports::{InventoryToken, TokenImportRecord};
pub use tokens::{NewToken, TokenKind, TokenListing, TokenRecord, TokenStatus};
pub use user_search::{UserFilter, UserListing, UserSearch, UserToken};
pub use users::{NewUser, SignInFacts, UserChanges, UserRecord};

use crate::config::DatabaseTarget;
use db::{Db, SqliteDb, query};
use sqlx::postgres::PgPoolOptions;
use std::path::{Path, PathBuf};
use std::time::Duration;
use twofold_engine::UnixTime;

/// A PostgreSQL connection idle at least this long is pinged before it is used again.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),
    #[error("the database is read-only: {0}")]
    ReadOnly(String),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0}")]
    Duplicate(String),
    #[error("database error: unique violation: {0}")]
    Unique(String),
    #[error("not found")]
    NotFound,
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
    /// The schema cannot be used or upgraded (the message says why and what to do).
    #[error("{0}")]
    Schema(String),
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
                StoreError::Unique(message)
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

fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Unique(_))
}

/// The repository every part of the server uses. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    backend: Backend,
    /// The SQLite file, for copies; none for PostgreSQL.
    sqlite_path: Option<PathBuf>,
}

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The schema version before.
    pub from: i64,
    /// The versions applied now (none: the store was current).
    pub applied: Vec<i64>,
    /// The copy of the store taken before upgrading it (SQLite only).
    pub backup: Option<PathBuf>,
}

impl Store {
    /// Connects (creating the SQLite file if needed) and checks that the database answers.
    pub async fn connect(
        target: &DatabaseTarget,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        match target {
            DatabaseTarget::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                create_private_file(path)?;
                let db = SqliteDb::open(path)?;
                Ok(Store {
                    db: Db::Sqlite(std::sync::Arc::new(db)),
                    backend: Backend::Sqlite,
                    sqlite_path: Some(path.clone()),
                })
            }
            DatabaseTarget::Postgres(url) => {
                let options = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(timeout)
                    .idle_timeout(Some(Duration::from_secs(300)))
                    // Every statement takes a connection from the pool: a ping before each
                    // one would double the round trips. A connection that sat idle a while
                    // is pinged (the network or the server may have dropped it since); one
                    // in use a moment ago is not, and a broken one is dropped when it is
                    // handed back (sqlx tests each connection then).
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_WHEN_IDLE_FOR {
                                sqlx::Connection::ping(conn).await?;
                            }
                            Ok(true)
                        })
                    });
                let pool = tokio::time::timeout(
                    timeout + Duration::from_secs(1),
                    options.connect(url.expose()),
                )
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!("no answer within {} s", timeout.as_secs()))
                })?
                .map_err(|e| match classify(e) {
                    StoreError::Database(m) => StoreError::Unavailable(m),
                    other => other,
                })?;
                Ok(Store {
                    db: Db::Postgres(pool),
                    backend: Backend::Postgres,
                    sqlite_path: None,
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The schema the store holds against the one this binary knows, read without changing
    /// anything.
    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        match &self.db {
            Db::Sqlite(db) => db.with_writer(|conn| migrations::sqlite_status(conn)).await,
            Db::Postgres(pool) => migrations::postgres_status(pool).await,
        }
    }

    /// Applies the pending migrations, all in one transaction (a failure changes nothing).
    /// A SQLite store that already holds data is first copied to `backups/` beside it.
    /// Refuses a store that a newer release has upgraded.
    pub async fn migrate(&self) -> Result<MigrationReport, StoreError> {
        let status = self.schema_status().await?;
        status.check_not_newer()?;
        let from = status.version();
        match &self.db {
            Db::Sqlite(db) => {
                let backup = match &self.sqlite_path {
                    Some(path) if from > 0 && !status.pending.is_empty() => {
                        Some(backup_before_upgrade(path.clone(), from).await?)
                    }
                    _ => None,
                };
                let applied = db.with_writer(migrations::apply_sqlite).await?;
                Ok(MigrationReport {
                    from,
                    applied,
                    backup,
                })
            }
            Db::Postgres(pool) => Ok(MigrationReport {
                from,
                applied: migrations::apply_postgres(pool).await?,
                backup: None,
            }),
        }
    }

    /// The SQLite file, when the store is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite_path.as_deref()
    }

    /// Proves that the store answers a write now (for `/readyz` and at start).
    pub async fn check_ready(&self, now: UnixTime) -> Result<(), StoreError> {
        query("UPDATE readiness SET checked_at = $1 WHERE id = 1")
            .bind(now)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    /// The database server's own clock, in milliseconds since the Unix epoch, read now
    /// (PostgreSQL's `clock_timestamp()`); `None` for SQLite, which runs on this machine's
    /// clock.
    pub async fn database_time_millis(&self) -> Result<Option<i64>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(None);
        }
        let row =
            query("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS millis")
                .fetch_one(&self.db)
                .await?;
        Ok(Some(row.try_get("millis")?))
    }

    pub async fn close(&self) {
        if let Db::Postgres(pool) = &self.db {
            pool.close().await;
        }
    }

    /// A named secret shared by every node, created by the first one that asks.
    pub async fn server_secret(
        &self,
        name: &str,
        now: UnixTime,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generate())
        .bind(now)
        .execute(&self.db)
        .await?;
        query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.db)
            .await?
            .try_get("value")
    }
}

/// Copies the SQLite store at `path` to `backups/twofold-schemaN-TIME.db` beside it. When
/// the newest copy already there for that schema holds the same bytes (a server that fails
/// to upgrade and is restarted), that copy is kept and the new one dropped.
async fn backup_before_upgrade(path: PathBuf, from: i64) -> Result<PathBuf, StoreError> {
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("backups"), |d| d.join("backups"));
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "now".into());
    let prefix = format!("twofold-schema{from}-");
    tokio::task::spawn_blocking(move || {
        create_private_dir(&dir)?;
        let previous = newest_with_prefix(&dir, &prefix);
        let mut dest = dir.join(format!("{prefix}{stamp}.db"));
        let mut n = 1;
        while dest.exists() {
            n += 1;
            dest = dir.join(format!("{prefix}{stamp}-{n}.db"));
        }
        backup::backup_sqlite(&path, &dest).map_err(|e| {
            StoreError::Schema(format!(
                "no copy could be taken before upgrading the store, so it was not upgraded: {e}"
            ))
        })?;
        if let Some(previous) = previous
            && same_bytes(&previous, &dest)
        {
            let _ = std::fs::remove_file(&dest);
            return Ok(previous);
        }
        Ok(dest)
    })
    .await
    .map_err(|e| StoreError::Database(e.to_string()))?
}

/// The last file of `dir` (by name: they carry their time) whose name starts with `prefix`.
fn newest_with_prefix(dir: &Path, prefix: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".db"))
        })
        .max()
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    size(a).is_some() && size(a) == size(b) && std::fs::read(a).ok() == std::fs::read(b).ok()
}

/// A directory readable by its owner only (copies of the store hold password hashes).
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Schema(format!("cannot create {}: {e}", dir.display())))
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

/// A random identifier: 128 bits as 32 hex digits.
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn bool_int(b: bool) -> i64 {
    i64::from(b)
}
