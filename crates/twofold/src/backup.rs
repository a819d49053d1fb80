//! `twofold backup FILE` and `twofold restore FILE`.

use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use twofold_server::config::{Config, DatabaseTarget};
use twofold_server::store::backup::{self as copies, Contents};

const PG_DUMP: &str = "This server's store is PostgreSQL: back it up with PostgreSQL's own tools, \
     for example `pg_dump --format=custom --file=twofold.dump DBNAME` (restore with \
     `pg_restore --clean --dbname=DBNAME twofold.dump`, the servers stopped). pg_dump takes a \
     consistent snapshot while every node keeps running, and it is the copy your database \
     administrators already know how to keep, check and restore; Twofold copies only the \
     SQLite stores it keeps itself. See docs/operations.md.";

/// The SQLite file the configuration names, or why there is none to copy.
fn sqlite_path(config: &Config) -> Result<PathBuf> {
    match config
        .database_target()
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        DatabaseTarget::Sqlite(path) => Ok(path),
        DatabaseTarget::Postgres(_) => bail!("{PG_DUMP}"),
    }
}

/// Where the keys that seal OATH seeds are, as configured.
fn sealing_keys(config: &Config) -> String {
    let mut places = Vec::new();
    if config.secrets.key.is_some() {
        places.push(
            "the configuration's [secrets] key (or TWOFOLD_SECRETS__KEY in the environment)"
                .to_owned(),
        );
    }
    if let Some(file) = &config.secrets.key_file {
        places.push(format!("the file {} ([secrets] key_file)", file.display()));
    }
    let dir = config.data_dir.join("keys");
    if dir.is_dir() || places.is_empty() {
        places.push(format!("the directory {}", dir.display()));
    }
    places.join(", and ")
}

fn describe(c: &Contents) -> String {
    format!(
        "schema version {}: {} user(s), {} token(s), {} KiB",
        c.schema_version,
        c.users,
        c.tokens,
        c.bytes.div_ceil(1024)
    )
}

fn stamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "now".into())
}

/// `twofold backup FILE`.
pub async fn backup(config: &Config, file: &Path) -> Result<()> {
    let source = sqlite_path(config)?;
    if !source.is_file() {
        bail!(
            "there is no store at {} yet, so there is nothing to back up. Fix: check data_dir \
             (and --config) are the server's",
            source.display()
        );
    }
    let (from, to) = (source.clone(), file.to_owned());
    let found = tokio::task::spawn_blocking(move || copies::backup_sqlite(&from, &to)).await??;
    println!(
        "Backed up the store at {} to {} ({}).",
        source.display(),
        file.display(),
        describe(&found)
    );
    println!(
        "The sealing keys are NOT in this file: without them it cannot open a single token. \
         They are in {}. Back them up separately, and keep the two copies apart.",
        sealing_keys(config)
    );
    Ok(())
}

/// `twofold restore FILE`.
pub async fn restore(config: &Config, file: &Path) -> Result<()> {
    let target = match sqlite_path(config) {
        Ok(path) => path,
        Err(_) => bail!(
            "{}",
            PG_DUMP.replace("back it up with", "restore a pg_dump backup with")
        ),
    };
    let keep = target
        .parent()
        .map_or_else(|| PathBuf::from("backups"), |d| d.join("backups"))
        .join(format!("twofold-before-restore-{}.db", stamp()));
    let (from, to, kept) = (file.to_owned(), target.clone(), keep.clone());
    let (found, kept) =
        tokio::task::spawn_blocking(move || copies::restore_sqlite(&from, &to, &kept)).await??;
    println!(
        "Restored {} into {} ({}).",
        file.display(),
        target.display(),
        describe(&found)
    );
    if let Some(kept) = kept {
        println!("The store as it was before is kept in {}.", kept.display());
    }
    let keys = twofold_server::doctor::sealing_key(config).await;
    if keys.status == twofold_server::doctor::Status::Fail {
        bail!(
            "the backup is restored, but its tokens will not open: {}. Fix: {}. Until then \
             nobody can sign in with a token; `twofold doctor` checks again.",
            keys.detail,
            keys.fix
                .as_deref()
                .unwrap_or("restore the sealing keys from their own backup")
        );
    }
    println!(
        "Its tokens open only with the sealing keys that sealed them, which a backup never \
         holds: they are looked for in {} ({}). Start the server now; it upgrades an older \
         backup (after copying it) as it starts.",
        sealing_keys(config),
        keys.detail
    );
    Ok(())
}
