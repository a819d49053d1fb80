//! SQLite migrations, embedded in the binary and applied in order, each in its own
//! transaction. They are recorded in `_sqlx_migrations` exactly as sqlx records them (the
//! PostgreSQL migrations still run through sqlx), so databases created by earlier versions
//! carry on, and a migration edited after it was applied is refused by its checksum.

use super::StoreError;
use super::db::sqlite_error;
use sha2::{Digest, Sha384};
use std::time::Instant;

/// `(version, description, sql)`, from `migrations/sqlite/NNNN_description.sql`. A new
/// file is added here too (a test checks that the two agree).
pub const SQLITE: &[(i64, &str, &str)] = &[
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

pub fn apply_sqlite(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    apply(conn, SQLITE)
}

/// Applies `migrations` (the first ones of [`SQLITE`]: tests stop part-way).
fn apply(
    conn: &mut rusqlite::Connection,
    migrations: &[(i64, &str, &str)],
) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        );",
    )
    .map_err(sqlite_error)?;
    let applied: Vec<(i64, bool, Vec<u8>)> = {
        let mut stmt = conn
            .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .map_err(sqlite_error)?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .map_err(sqlite_error)?
            .collect::<Result<_, _>>()
            .map_err(sqlite_error)?
    };
    let newest_known = migrations.iter().map(|m| m.0).max().unwrap_or(0);
    for (version, success, checksum) in &applied {
        if !success {
            return Err(StoreError::Database(format!(
                "migration {version} failed part-way earlier; restore the database from a backup"
            )));
        }
        match migrations.iter().find(|m| m.0 == *version) {
            Some((_, _, sql)) if Sha384::digest(sql).as_slice() != checksum.as_slice() => {
                return Err(StoreError::Database(format!(
                    "migration {version} was changed after it was applied to this database"
                )));
            }
            Some(_) => {}
            None if *version > newest_known => {
                return Err(StoreError::Database(format!(
                    "this database was migrated by a newer Twofold (migration {version}); \
                     run that version, or restore a backup"
                )));
            }
            None => {}
        }
    }
    for (version, description, sql) in migrations {
        if applied.iter().any(|a| a.0 == *version) {
            continue;
        }
        let started = Instant::now();
        let tx = conn.transaction().map_err(sqlite_error)?;
        tx.execute_batch(sql).map_err(sqlite_error)?;
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
        tx.commit().map_err(sqlite_error)?;
    }
    Ok(())
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
    fn every_sqlite_migration_file_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files.len(), SQLITE.len(), "{files:?}");
        for (file, (version, description, sql)) in files.iter().zip(SQLITE) {
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
