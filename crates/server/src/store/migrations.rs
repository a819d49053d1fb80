//! The store's migrations, embedded in the binary. Every pending migration is applied in
//! ONE transaction: an upgrade that fails part-way leaves the store exactly as it was, still
//! readable by the release that wrote it. They are recorded in `_sqlx_migrations` as sqlx
//! records them (databases created by earlier versions, whose PostgreSQL migrations ran
//! through sqlx, carry on), and a migration edited after it was applied is refused by its
//! checksum. Each upgrade also records, in `twofold_schema_releases`, which release of
//! Twofold applied which version, so that an older binary meeting newer data can say which
//! release the data needs.

use super::StoreError;
use super::db::sqlite_error;
use sha2::{Digest, Sha384};
use std::time::Instant;

/// One migration: `(version, description, sql)`.
pub type Migration = (i64, &'static str, &'static str);

/// `(version, description, sql)`, from `migrations/sqlite/NNNN_description.sql`. A new
/// file is added here too (a test checks that the two agree).
pub const SQLITE: &[Migration] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "second factors",
        include_str!("../../migrations/sqlite/0002_second_factors.sql"),
    ),
    (
        3,
        "sdk",
        include_str!("../../migrations/sqlite/0003_sdk.sql"),
    ),
    (
        4,
        "question draws and setting limits",
        include_str!("../../migrations/sqlite/0004_question_draws_and_setting_limits.sql"),
    ),
    (
        5,
        "lockout hard cap",
        include_str!("../../migrations/sqlite/0005_lockout_hard_cap.sql"),
    ),
    (
        6,
        "one authentication",
        include_str!("../../migrations/sqlite/0006_one_authentication.sql"),
    ),
    (
        7,
        "directory users",
        include_str!("../../migrations/sqlite/0007_directory_users.sql"),
    ),
    (
        8,
        "phones",
        include_str!("../../migrations/sqlite/0008_phones.sql"),
    ),
    (
        9,
        "devices",
        include_str!("../../migrations/sqlite/0009_devices.sql"),
    ),
    (
        10,
        "admins",
        include_str!("../../migrations/sqlite/0010_admins.sql"),
    ),
    (
        11,
        "user search",
        include_str!("../../migrations/sqlite/0011_user_search.sql"),
    ),
    (
        12,
        "token imports",
        include_str!("../../migrations/sqlite/0012_token_imports.sql"),
    ),
    (
        13,
        "audit search",
        include_str!("../../migrations/sqlite/0013_audit_search.sql"),
    ),
];

/// The same for PostgreSQL, from `migrations/postgres/`.
pub const POSTGRES: &[Migration] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "second factors",
        include_str!("../../migrations/postgres/0002_second_factors.sql"),
    ),
    (
        3,
        "sdk",
        include_str!("../../migrations/postgres/0003_sdk.sql"),
    ),
    (
        4,
        "question draws and setting limits",
        include_str!("../../migrations/postgres/0004_question_draws_and_setting_limits.sql"),
    ),
    (
        5,
        "lockout hard cap",
        include_str!("../../migrations/postgres/0005_lockout_hard_cap.sql"),
    ),
    (
        6,
        "one authentication",
        include_str!("../../migrations/postgres/0006_one_authentication.sql"),
    ),
    (
        7,
        "directory users",
        include_str!("../../migrations/postgres/0007_directory_users.sql"),
    ),
    (
        8,
        "phones",
        include_str!("../../migrations/postgres/0008_phones.sql"),
    ),
    (
        9,
        "devices",
        include_str!("../../migrations/postgres/0009_devices.sql"),
    ),
    (
        10,
        "admins",
        include_str!("../../migrations/postgres/0010_admins.sql"),
    ),
    (
        11,
        "user search",
        include_str!("../../migrations/postgres/0011_user_search.sql"),
    ),
    (
        12,
        "token imports",
        include_str!("../../migrations/postgres/0012_token_imports.sql"),
    ),
    (
        13,
        "audit search",
        include_str!("../../migrations/postgres/0013_audit_search.sql"),
    ),
];

/// The lock PostgreSQL nodes take while one of them migrates (any constant; "twofold").
const PG_MIGRATION_LOCK: i64 = 0x0074_776f_666f_6c64;

/// This binary's release, recorded with the versions it applies.
pub const RELEASE: &str = env!("CARGO_PKG_VERSION");

const SQLITE_TABLES: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
        version BIGINT PRIMARY KEY,
        description TEXT NOT NULL,
        installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
        success BOOLEAN NOT NULL,
        checksum BLOB NOT NULL,
        execution_time BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS twofold_schema_releases (
        version BIGINT PRIMARY KEY,
        release TEXT NOT NULL,
        applied_at BIGINT NOT NULL
    );";

const POSTGRES_TABLES: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
        version BIGINT PRIMARY KEY,
        description TEXT NOT NULL,
        installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
        success BOOLEAN NOT NULL,
        checksum BYTEA NOT NULL,
        execution_time BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS twofold_schema_releases (
        version BIGINT PRIMARY KEY,
        release TEXT NOT NULL,
        applied_at BIGINT NOT NULL
    );";

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone)]
pub struct Applied {
    pub version: i64,
    pub success: bool,
    pub checksum: Vec<u8>,
}

/// What a store holds, against what this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The versions applied, oldest first.
    pub applied: Vec<i64>,
    /// The newest version this binary knows.
    pub newest_known: i64,
    /// Versions this binary knows that the store has not had yet.
    pub pending: Vec<i64>,
    /// Versions the store has that this binary does not know: a newer release applied them.
    pub newer: Vec<i64>,
    /// The release that applied the newest of `newer`, when it recorded itself.
    pub newer_release: Option<String>,
}

impl SchemaStatus {
    /// The store's schema version (the newest applied; 0 for an empty store).
    pub fn version(&self) -> i64 {
        self.applied.iter().copied().max().unwrap_or(0)
    }

    /// Refuses data a newer release has upgraded: this binary would misread it.
    pub fn check_not_newer(&self) -> Result<(), StoreError> {
        let Some(newest) = self.newer.iter().copied().max() else {
            return Ok(());
        };
        let by = match &self.newer_release {
            Some(release) => format!(", applied by Twofold {release}"),
            None => String::new(),
        };
        let needs = match &self.newer_release {
            Some(release) => format!("Twofold {release} or newer"),
            None => format!("a Twofold release that knows schema version {newest}"),
        };
        Err(StoreError::Schema(format!(
            "this store has schema version {newest}{by}, but this binary (Twofold {RELEASE}) \
             knows versions up to {}. The data needs {needs}. Fix: install that release \
             again, or restore the backup taken before the upgrade (for SQLite, in the \
             backups/ directory beside the database) with this release's `twofold restore`",
            self.newest_known
        )))
    }
}

/// Compares the rows of `_sqlx_migrations` with the migrations this binary knows.
pub fn status_of(
    applied: &[Applied],
    known: &[Migration],
    newer_release: Option<String>,
) -> Result<SchemaStatus, StoreError> {
    let newest_known = known.iter().map(|m| m.0).max().unwrap_or(0);
    for row in applied {
        if !row.success {
            return Err(StoreError::Schema(format!(
                "migration {} failed part-way under an earlier release; restore the database \
                 from a backup",
                row.version
            )));
        }
        if let Some((_, _, sql)) = known.iter().find(|m| m.0 == row.version)
            && Sha384::digest(sql).as_slice() != row.checksum.as_slice()
        {
            return Err(StoreError::Schema(format!(
                "migration {} was changed after it was applied to this database",
                row.version
            )));
        }
    }
    let versions: Vec<i64> = applied.iter().map(|a| a.version).collect();
    let newer: Vec<i64> = versions
        .iter()
        .copied()
        .filter(|v| *v > newest_known && !known.iter().any(|m| m.0 == *v))
        .collect();
    Ok(SchemaStatus {
        pending: known
            .iter()
            .map(|m| m.0)
            .filter(|v| !versions.contains(v))
            .collect(),
        newer_release: if newer.is_empty() {
            None
        } else {
            newer_release
        },
        newer,
        applied: versions,
        newest_known,
    })
}

fn failed(version: i64, description: &str, from: i64, error: impl std::fmt::Display) -> StoreError {
    StoreError::Schema(format!(
        "migration {version} ({description}) failed: {error}. Nothing was changed: the store \
         is still at schema version {from}, as the release that wrote it left it"
    ))
}

fn sqlite_applied(conn: &rusqlite::Connection) -> Result<Vec<Applied>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
        .map_err(sqlite_error)?;
    stmt.query_map([], |row| {
        Ok(Applied {
            version: row.get(0)?,
            success: row.get(1)?,
            checksum: row.get(2)?,
        })
    })
    .map_err(sqlite_error)?
    .collect::<Result<_, _>>()
    .map_err(sqlite_error)
}

fn sqlite_newest_release(conn: &rusqlite::Connection) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT release FROM twofold_schema_releases ORDER BY version DESC LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
    .map_err(sqlite_error)
}

/// The schema of a SQLite store, read without changing it (tables missing: an empty store).
pub fn sqlite_status(conn: &rusqlite::Connection) -> Result<SchemaStatus, StoreError> {
    let has = |table: &str| -> Result<bool, StoreError> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(sqlite_error)
    };
    let applied = if has("_sqlx_migrations")? {
        sqlite_applied(conn)?
    } else {
        Vec::new()
    };
    let release = if has("twofold_schema_releases")? {
        sqlite_newest_release(conn)?
    } else {
        None
    };
    status_of(&applied, SQLITE, release)
}

pub fn apply_sqlite(conn: &mut rusqlite::Connection) -> Result<Vec<i64>, StoreError> {
    apply(conn, SQLITE)
}

/// Applies the pending ones of `migrations` (the first ones of [`SQLITE`]: tests stop
/// part-way) in one transaction. Returns the versions applied.
fn apply(
    conn: &mut rusqlite::Connection,
    migrations: &[Migration],
) -> Result<Vec<i64>, StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    tx.execute_batch(SQLITE_TABLES).map_err(sqlite_error)?;
    let status = status_of(
        &sqlite_applied(&tx)?,
        migrations,
        sqlite_newest_release(&tx)?,
    )?;
    status.check_not_newer()?;
    let from = status.version();
    let now = unix_now();
    for (version, description, sql) in migrations {
        if !status.pending.contains(version) {
            continue;
        }
        let started = Instant::now();
        tx.execute_batch(sql)
            .map_err(|e| failed(*version, description, from, e))?;
        tx.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, ?4)",
            rusqlite::params![
                version,
                description,
                Sha384::digest(sql).to_vec(),
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
            ],
        )
        .map_err(sqlite_error)?;
        tx.execute(
            "INSERT INTO twofold_schema_releases (version, release, applied_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (version) DO NOTHING",
            rusqlite::params![version, RELEASE, now],
        )
        .map_err(sqlite_error)?;
    }
    tx.commit().map_err(sqlite_error)?;
    Ok(status.pending)
}

/// The schema of a PostgreSQL store, read without changing it.
pub async fn postgres_status(pool: &sqlx::PgPool) -> Result<SchemaStatus, StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() \
         AND table_name IN ('_sqlx_migrations', 'twofold_schema_releases')",
    )
    .fetch_all(pool)
    .await?;
    let applied = if tables.iter().any(|t| t == "_sqlx_migrations") {
        postgres_applied(pool).await?
    } else {
        Vec::new()
    };
    let release = if tables.iter().any(|t| t == "twofold_schema_releases") {
        postgres_newest_release(pool).await?
    } else {
        None
    };
    status_of(&applied, POSTGRES, release)
}

async fn postgres_applied<'c>(conn: impl sqlx::PgExecutor<'c>) -> Result<Vec<Applied>, StoreError> {
    let rows: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(version, success, checksum)| Applied {
            version,
            success,
            checksum,
        })
        .collect())
}

async fn postgres_newest_release<'c>(
    conn: impl sqlx::PgExecutor<'c>,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT release FROM twofold_schema_releases ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?)
}

/// Applies the pending PostgreSQL migrations in one transaction, under a lock that makes
/// nodes starting together take turns. Returns the versions applied.
pub async fn apply_postgres(pool: &sqlx::PgPool) -> Result<Vec<i64>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(POSTGRES_TABLES).execute(&mut *tx).await?;
    let status = status_of(
        &postgres_applied(&mut *tx).await?,
        POSTGRES,
        postgres_newest_release(&mut *tx).await?,
    )?;
    status.check_not_newer()?;
    let from = status.version();
    let now = unix_now();
    for (version, description, sql) in POSTGRES {
        if !status.pending.contains(version) {
            continue;
        }
        let started = Instant::now();
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(*version, description, from, e))?;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, $4)",
        )
        .bind(version)
        .bind(description)
        .bind(Sha384::digest(sql).to_vec())
        .bind(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO twofold_schema_releases (version, release, applied_at) VALUES ($1, $2, $3) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(RELEASE)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(status.pending)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_upgrade_to_the_hard_cap_lowers_a_lockout_threshold_above_100() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        apply(&mut conn, &SQLITE[..3]).unwrap();
        conn.execute_batch(
            "INSERT INTO settings (key, value, updated_at) VALUES ('lockout_threshold', '500', 1);
             INSERT INTO lockouts (username, failures, window_start, locked_until, version) \
             VALUES ('alice', 2, 10, NULL, 1);",
        )
        .unwrap();
        apply_sqlite(&mut conn).unwrap();
        let threshold: String = conn
            .query_row(
                "SELECT value FROM settings WHERE key = 'lockout_threshold'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(threshold, "100");
        let (consecutive, hard): (i64, Option<i64>) = conn
            .query_row(
                "SELECT consecutive, hard_locked_at FROM lockouts WHERE username = 'alice'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((consecutive, hard), (0, None));

        let mut kept = rusqlite::Connection::open_in_memory().unwrap();
        apply(&mut kept, &SQLITE[..3]).unwrap();
        kept.execute_batch(
            "INSERT INTO settings (key, value, updated_at) VALUES ('lockout_threshold', '7', 1)",
        )
        .unwrap();
        apply_sqlite(&mut kept).unwrap();
        let threshold: String = kept
            .query_row(
                "SELECT value FROM settings WHERE key = 'lockout_threshold'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(threshold, "7", "a threshold within the cap is kept");
    }

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        for (folder, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let dir = format!("{}/migrations/{folder}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files.len(), list.len(), "{files:?}");
            for (file, (version, description, sql)) in files.iter().zip(list) {
                let (number, rest) = file.split_once('_').unwrap();
                assert_eq!(number.parse::<i64>().unwrap(), *version);
                assert_eq!(
                    rest.trim_end_matches(".sql").replace('_', " "),
                    *description
                );
                assert_eq!(
                    std::fs::read_to_string(format!("{dir}/{file}")).unwrap(),
                    *sql
                );
            }
        }
    }

    #[test]
    fn a_failed_upgrade_leaves_the_store_as_the_older_release_left_it() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        apply(&mut conn, &SQLITE[..9]).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, created_at, updated_at) VALUES ('1', 'ada', 1, 1)",
        )
        .unwrap();
        let dump = |conn: &rusqlite::Connection| -> Vec<String> {
            let mut stmt = conn
                .prepare("SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = dump(&conn);
        // Something in the way of the last migration's last statement: every one before it
        // has run when it fails.
        let last = SQLITE.last().unwrap().2;
        let index = last
            .split("CREATE INDEX ")
            .last()
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        conn.execute_batch(&format!("CREATE TABLE {index} (x)"))
            .unwrap();
        let before_with_obstacle = dump(&conn);
        let refused = apply_sqlite(&mut conn).unwrap_err().to_string();
        assert!(refused.contains("Nothing was changed"), "{refused}");
        assert!(refused.contains("schema version 9"), "{refused}");
        assert_eq!(dump(&conn), before_with_obstacle);
        assert_ne!(before, before_with_obstacle);
        let status = sqlite_status(&conn).unwrap();
        assert_eq!(status.version(), 9);
        assert_eq!(
            status.pending,
            (10..=SQLITE.len() as i64).collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_older_binary_refuses_a_store_a_newer_release_upgraded_and_names_it() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        apply_sqlite(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99, 'future', TRUE, x'00', 1);
             INSERT INTO twofold_schema_releases (version, release, applied_at) VALUES (99, '9.9.0', 1);",
        )
        .unwrap();
        let status = sqlite_status(&conn).unwrap();
        assert_eq!(status.newer, vec![99]);
        let refused = apply_sqlite(&mut conn).unwrap_err().to_string();
        assert!(refused.contains("schema version 99"), "{refused}");
        assert!(refused.contains("Twofold 9.9.0 or newer"), "{refused}");
        assert!(refused.contains(&format!("Twofold {RELEASE}")), "{refused}");
    }
}
