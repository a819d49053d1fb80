//! The store: it answers, takes a write, and its migrations are the ones this binary
//! knows. Connects with [`Store::connect`], which neither migrates nor seeds; a SQLite file
//! that does not exist yet is left uncreated.

use super::Check;
use crate::config::{Config, DatabaseTarget};
use crate::serve::describe_target;
use crate::store::{Backend, RELEASE, Store, StoreError};
use std::time::Duration;

const STORE: &str = "store";
const MIGRATIONS: &str = "migrations";

/// The store's checks, and the store when it answered (for the checks that read it).
pub(super) struct Opened {
    pub checks: Vec<Check>,
    pub store: Option<Store>,
    /// The store does not exist yet (a SQLite file the first start creates): nothing can
    /// be in it.
    pub fresh: bool,
}

pub(super) async fn check(config: &Config) -> Opened {
    let not_checked = |why: &str| Check::skip(MIGRATIONS, why.to_owned());
    let target = match config.database_target() {
        Ok(target) => target,
        Err(e) => {
            return Opened {
                checks: vec![
                    Check::failed_with(STORE, &e.0, "check database.url and database.url_file"),
                    not_checked("the store could not be opened"),
                ],
                store: None,
                fresh: false,
            };
        }
    };
    let described = describe_target(&target);
    if let DatabaseTarget::Sqlite(path) = &target
        && !path.exists()
    {
        return Opened {
            checks: vec![
                Check::skip(
                    STORE,
                    format!(
                        "{described} does not exist yet: the first `twofold serve` or `twofold migrate` \
                         creates it (doctor creates nothing)"
                    ),
                ),
                not_checked("no store yet: the first start applies every migration"),
            ],
            store: None,
            fresh: true,
        };
    }
    let timeout = Duration::from_secs(config.database.connect_timeout_seconds.max(1));
    let store = match Store::connect(&target, 2, timeout).await {
        Ok(store) => store,
        Err(e) => {
            return Opened {
                checks: vec![
                    Check::fail(
                        STORE,
                        format!("{described} cannot be reached: {}", reason(&e)),
                        match target {
                            DatabaseTarget::Postgres(_) => {
                                "check database.url (or database.url_file, TWOFOLD_DATABASE__URL): the host, \
                                 port, database name, user and password; that PostgreSQL runs and accepts \
                                 connections from this machine (listen_addresses, pg_hba.conf)"
                            }
                            DatabaseTarget::Sqlite(_) => {
                                "check that the file is a Twofold SQLite database and readable by the user \
                                 Twofold runs as"
                            }
                        },
                    ),
                    not_checked("the store did not answer"),
                ],
                store: None,
                fresh: false,
            };
        }
    };
    let (migrations, empty) = migrations_check(&store).await;
    let store_check = if empty {
        // No readiness row to write to yet: the migrations check says what to do.
        Check::pass(
            STORE,
            format!(
                "{described} answers; it is empty, so whether it takes writes shows once migrated"
            ),
        )
    } else {
        match store.check_ready(super::now_unix()).await {
            Ok(()) => Check::pass(STORE, format!("{described} answers and takes writes")),
            Err(e) => writes_refused(&described, &e),
        }
    };
    Opened {
        checks: vec![store_check, migrations],
        store: Some(store),
        fresh: false,
    }
}

/// The readiness probe failed: why, and what to do.
fn writes_refused(described: &str, e: &StoreError) -> Check {
    match e {
        StoreError::ReadOnly(m) => Check::fail(
            STORE,
            format!("{described} answers but is read-only: {m}"),
            "give Twofold a writable database: for PostgreSQL the primary, not a standby; for SQLite \
             a file and directory the user Twofold runs as may write",
        ),
        StoreError::Database(m) if m.contains("permission denied") => Check::fail(
            STORE,
            format!("{described} answers but refuses writes: {m}"),
            "connect as the role that owns Twofold's tables (the one that ran the migrations), or \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO the role in database.url",
        ),
        StoreError::Database(m) if m.contains("readiness") => Check::fail(
            STORE,
            format!("{described} answers but has no readiness table ({m})"),
            "run `twofold migrate`, or check that database.url names Twofold's database",
        ),
        other => Check::fail(
            STORE,
            format!("{described} answers but a write failed: {}", reason(other)),
            "check the database server's log for the cause",
        ),
    }
}

fn reason(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(m)
        | StoreError::ReadOnly(m)
        | StoreError::Database(m)
        | StoreError::Corrupt(m) => m.clone(),
        other => other.to_string(),
    }
}

/// The migrations the store has against the ones this binary knows, and whether the store
/// is empty (no migration applied).
async fn migrations_check(store: &Store) -> (Check, bool) {
    let status = match store.schema_status().await {
        Ok(status) => status,
        Err(e) => {
            return (
                Check::failed_with(
                    MIGRATIONS,
                    &reason(&e),
                    "restore the store from the backup taken before the last upgrade",
                ),
                false,
            );
        }
    };
    if let Err(e) = status.check_not_newer() {
        return (
            Check::failed_with(
                MIGRATIONS,
                &reason(&e),
                "run the release that upgraded the data, or restore the backup taken before it",
            ),
            false,
        );
    }
    let migrate = match store.backend() {
        Backend::Sqlite => {
            "run `twofold migrate` (it copies the database to backups/ beside it first, and applies              every pending migration in one transaction)"
        }
        Backend::Postgres => {
            "take a backup (pg_dump), then run `twofold migrate` (it applies every pending migration              in one transaction)"
        }
    };
    if status.applied.is_empty() {
        return (
            Check::fail(
                MIGRATIONS,
                format!(
                    "the store is empty: none of the migrations up to version {} is applied yet",
                    status.newest_known
                ),
                "run `twofold migrate`, or start the server: it applies them",
            ),
            true,
        );
    }
    if !status.pending.is_empty() {
        let pending: Vec<String> = status.pending.iter().map(i64::to_string).collect();
        return (
            Check::fail(
                MIGRATIONS,
                format!(
                    "the store is at schema version {}, and {} migration{} this binary knows {} not                      applied: {} (the server applies them at its next start)",
                    status.version(),
                    pending.len(),
                    if pending.len() == 1 { "" } else { "s" },
                    if pending.len() == 1 { "is" } else { "are" },
                    pending.join(", ")
                ),
                migrate,
            ),
            false,
        );
    }
    (
        Check::pass(
            MIGRATIONS,
            format!(
                "schema version {}, the newest this binary (Twofold {RELEASE}) knows",
                status.version()
            ),
        ),
        false,
    )
}
