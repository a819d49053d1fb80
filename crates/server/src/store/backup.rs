//! Consistent copies of a SQLite store, taken while the server runs, and their restore.
//!
//! A copy is made with SQLite's online backup API in one step: it reads the database in one
//! read transaction, so the copy is the database as it was at one instant, while WAL lets
//! the server go on writing. The copy is written beside its final name, checked with
//! `PRAGMA quick_check`, synced, and only then renamed into place: a copy that exists is
//! whole. A restore writes the backup's pages into the store through SQLite's locking (the
//! same API, the other way), after copying the store as it was, so that nothing is lost.
//!
//! The sealing keys are never inside a copy: a copy alone cannot open a single token.

use super::migrations::{self, SchemaStatus};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a copy or a restore could not be made. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} already exists; give a new file name (a backup never overwrites a file)", .0.display())]
    Exists(PathBuf),
    #[error("cannot read the store at {}: {reason}", path.display())]
    Source { path: PathBuf, reason: String },
    #[error("cannot write {}: {reason}. Fix: give a path in a writable directory with room for the copy", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("{} is not a Twofold backup: {reason}", path.display())]
    NotABackup { path: PathBuf, reason: String },
    #[error("{0}")]
    Newer(String),
    #[error(
        "a Twofold server is using the store at {}; stop it first (systemctl stop twofold), \
         restore, then start it again",
        .0.display()
    )]
    InUse(PathBuf),
}

/// What a copy holds, for the message that reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub schema_version: i64,
    pub users: i64,
    pub tokens: i64,
    pub bytes: u64,
}

/// The lock a server holds on its SQLite store while it runs (shared: several processes may
/// serve; a restore needs it alone). Released when dropped or when the process ends.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open_lock(db: &Path) -> Result<File, BackupError> {
    let path = lock_path(db);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| BackupError::Write {
            path,
            reason: e.to_string(),
        })
}

/// Takes the shared lock a running server holds on `db`.
pub fn lock_for_serving(db: &Path) -> Result<StoreLock, BackupError> {
    let file = open_lock(db)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(StoreLock { _file: file }),
        // Only a restore holds it alone, for the seconds it takes.
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::InUse(db.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(BackupError::Write {
            path: lock_path(db),
            reason: e.to_string(),
        }),
    }
}

fn lock_alone(db: &Path) -> Result<StoreLock, BackupError> {
    let file = open_lock(db)?;
    match file.try_lock() {
        Ok(()) => Ok(StoreLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::InUse(db.to_owned())),
        Err(std::fs::TryLockError::Error(e)) => Err(BackupError::Write {
            path: lock_path(db),
            reason: e.to_string(),
        }),
    }
}

fn open_source(path: &Path) -> Result<Connection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Source {
            path: path.to_owned(),
            reason: "there is no such file".into(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| BackupError::Source {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| BackupError::Source {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(conn)
}

/// Copies everything from `from` into `to` in one step (one read transaction: a consistent
/// copy), waiting out a writer that holds the lock for a moment.
fn copy_pages(from: &Connection, to: &mut Connection) -> Result<(), rusqlite::Error> {
    let backup = Backup::new(from, to)?;
    for _ in 0..200 {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Err(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the store stayed locked for 10 s".into()),
    ))
}

fn contents(conn: &Connection, path: &Path) -> Result<(Contents, SchemaStatus), String> {
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if check != "ok" {
        return Err(format!("the integrity check says: {check}"));
    }
    let status = migrations::sqlite_status(conn).map_err(|e| e.to_string())?;
    if status.applied.is_empty() {
        return Err("it holds no Twofold schema".into());
    }
    let count = |table: &str| -> Result<i64, String> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| e.to_string())
    };
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok((
        Contents {
            schema_version: status.version(),
            users: count("users")?,
            tokens: count("oath_tokens")?,
            bytes,
        },
        status,
    ))
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

/// Writes a consistent copy of the SQLite store at `source` to `dest` (a new file, mode
/// 0600), while the server may be running.
pub fn backup_sqlite(source: &Path, dest: &Path) -> Result<Contents, BackupError> {
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    let src = open_source(source)?;
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let write_error = |e: &dyn std::fmt::Display| BackupError::Write {
        path: dest.to_owned(),
        reason: e.to_string(),
    };
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_error(&e))?;
    }
    // Created by us, readable by its owner only: it holds password hashes.
    let _ = std::fs::remove_file(&partial);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| write_error(&e))?;
    let result = (|| {
        let mut out = Connection::open(&partial).map_err(|e| write_error(&e))?;
        copy_pages(&src, &mut out).map_err(|e| BackupError::Source {
            path: source.to_owned(),
            reason: format!("the copy failed: {e}"),
        })?;
        // One self-contained file, whatever the store's journal mode.
        out.pragma_update(None, "journal_mode", "DELETE")
            .map_err(|e| write_error(&e))?;
        let (found, _) = contents(&out, &partial).map_err(|e| BackupError::Source {
            path: source.to_owned(),
            reason: e,
        })?;
        drop(out);
        File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| write_error(&e))?;
        std::fs::rename(&partial, dest).map_err(|e| write_error(&e))?;
        sync_dir(dest);
        Ok(found)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Reads a backup and says what it holds, refusing what is not a whole Twofold store or
/// what this binary is too old for.
pub fn inspect_backup(backup: &Path) -> Result<Contents, BackupError> {
    let conn = open_source(backup)?;
    let (found, status) = contents(&conn, backup).map_err(|e| BackupError::NotABackup {
        path: backup.to_owned(),
        reason: e,
    })?;
    status
        .check_not_newer()
        .map_err(|e| BackupError::Newer(e.to_string()))?;
    Ok(found)
}

/// Replaces the store at `target` with the backup at `backup`. The store as it was is first
/// copied to `keep` (returned), so a restore of the wrong file can be undone. Refused while
/// a server holds the store.
pub fn restore_sqlite(
    backup: &Path,
    target: &Path,
    keep: &Path,
) -> Result<(Contents, Option<PathBuf>), BackupError> {
    let found = inspect_backup(backup)?;
    // A restore on a new machine: the data directory is made as the server makes it,
    // private to its user, before its lock file can be taken.
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| BackupError::Write {
                path: target.to_owned(),
                reason: e.to_string(),
            })?;
    }
    let _alone = lock_alone(target)?;
    let kept = if target.is_file() && std::fs::metadata(target).map(|m| m.len()).unwrap_or(0) > 0 {
        backup_sqlite(target, keep)?;
        Some(keep.to_owned())
    } else {
        None
    };
    if !target.exists() {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(target)
            .map_err(|e| BackupError::Write {
                path: target.to_owned(),
                reason: e.to_string(),
            })?;
    }
    let src = open_source(backup)?;
    let mut live = Connection::open(target).map_err(|e| BackupError::Write {
        path: target.to_owned(),
        reason: e.to_string(),
    })?;
    live.busy_timeout(Duration::from_secs(10))
        .map_err(|e| BackupError::Write {
            path: target.to_owned(),
            reason: e.to_string(),
        })?;
    copy_pages(&src, &mut live).map_err(|e| BackupError::Write {
        path: target.to_owned(),
        reason: format!("the restore failed: {e}"),
    })?;
    Ok((found, kept))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store(path: &Path, users: &[&str]) {
        let mut conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        migrations::apply_sqlite(&mut conn).unwrap();
        for user in users {
            conn.execute(
                "INSERT INTO users (id, username, created_at, updated_at) VALUES (?1, ?1, 1, 1)",
                [user],
            )
            .unwrap();
        }
    }

    #[test]
    fn a_backup_is_a_whole_private_copy_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("twofold.db");
        store(&db, &["ada", "bob"]);
        let copy = dir.path().join("copy.db");
        let found = backup_sqlite(&db, &copy).unwrap();
        assert_eq!(found.users, 2);
        assert_eq!(found.schema_version, migrations::SQLITE.len() as i64);
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join("copy.db-wal").exists());
        assert!(matches!(
            backup_sqlite(&db, &copy),
            Err(BackupError::Exists(_))
        ));
        assert_eq!(inspect_backup(&copy).unwrap().users, 2);
    }

    #[test]
    fn a_truncated_or_foreign_file_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("twofold.db");
        store(&db, &["ada"]);
        let copy = dir.path().join("copy.db");
        backup_sqlite(&db, &copy).unwrap();
        let bytes = std::fs::read(&copy).unwrap();
        let cut = dir.path().join("cut.db");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let keep = dir.path().join("kept.db");
        let refused = restore_sqlite(&cut, &db, &keep).unwrap_err();
        assert!(
            matches!(refused, BackupError::NotABackup { .. }),
            "{refused}"
        );
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let refused = restore_sqlite(&other, &db, &keep).unwrap_err();
        assert!(
            refused.to_string().contains("no Twofold schema"),
            "{refused}"
        );
        assert!(!keep.exists(), "nothing was touched");
    }

    #[test]
    fn a_restore_brings_back_the_copy_and_keeps_what_it_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("twofold.db");
        store(&db, &["ada"]);
        let copy = dir.path().join("copy.db");
        backup_sqlite(&db, &copy).unwrap();
        Connection::open(&db)
            .unwrap()
            .execute(
                "INSERT INTO users (id, username, created_at, updated_at) VALUES ('x', 'eve', 1, 1)",
                [],
            )
            .unwrap();
        let keep = dir.path().join("backups/before-restore.db");
        let (found, kept) = restore_sqlite(&copy, &db, &keep).unwrap();
        assert_eq!(found.users, 1);
        assert_eq!(kept.as_deref(), Some(keep.as_path()));
        assert_eq!(inspect_backup(&keep).unwrap().users, 2, "eve is kept aside");
        let users: i64 = Connection::open(&db)
            .unwrap()
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(users, 1);
    }

    #[test]
    fn a_restore_is_refused_while_a_server_holds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("twofold.db");
        store(&db, &["ada"]);
        let copy = dir.path().join("copy.db");
        backup_sqlite(&db, &copy).unwrap();
        let serving = lock_for_serving(&db).unwrap();
        let refused = restore_sqlite(&copy, &db, &dir.path().join("k.db")).unwrap_err();
        assert!(matches!(refused, BackupError::InUse(_)), "{refused}");
        drop(serving);
        restore_sqlite(&copy, &db, &dir.path().join("k.db")).unwrap();
    }
}
