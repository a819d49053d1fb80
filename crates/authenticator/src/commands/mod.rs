//! What each command does.

mod accounts;
mod activate;
mod requests;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use twofold_authenticator::client::Http;
use twofold_authenticator::store::{Account, Store};

use crate::cli::{Cli, Command};

/// Runs the command; an error is printed by `main` and exits with status 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::ManPages { dir } = &cli.command {
        return man_pages(dir);
    }
    let context = Context {
        data_dir: match cli.data_dir {
            Some(dir) => dir,
            None => dirs::config_dir()
                .context("this system has no configuration directory: give --data-dir DIR")?
                .join("twofold-authenticator"),
        },
        ca_file: cli.ca_file,
    };
    match cli.command {
        Command::Activate(args) => activate::activate(&context, args).await,
        Command::List => accounts::list(&context).await,
        Command::Code { account } => accounts::code(&context, account.as_deref()),
        Command::Pending { json } => requests::pending(&context, json).await,
        Command::Watch { account } => requests::watch(&context, account.as_deref()).await,
        Command::Approve(args) => requests::approve(&context, args).await,
        Command::Deny(args) => requests::deny(&context, args).await,
        Command::ManPages { dir } => man_pages(&dir),
    }
}

/// `twofold-authenticator man-pages DIR` (hidden; the Debian package's build runs it).
fn man_pages(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory as _;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the directory {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The global options.
struct Context {
    data_dir: PathBuf,
    ca_file: Option<PathBuf>,
}

impl Context {
    /// The accounts file; warns when others than its owner can read it.
    fn store(&self) -> anyhow::Result<Store> {
        let store = Store::load(&self.data_dir)?;
        if store.loose_permissions {
            eprintln!(
                "warning: {} can be read by other users, and it holds private keys: run `chmod 600 {}`",
                store.path().display(),
                store.path().display()
            );
        }
        Ok(store)
    }

    fn http(&self) -> anyhow::Result<Http> {
        Ok(Http::new(self.ca_file.as_deref())?)
    }

    /// The saved accounts, or only the one with `device_id`; refuses none.
    fn accounts(&self, device_id: Option<&str>) -> anyhow::Result<Vec<Account>> {
        let store = self.store()?;
        if store.accounts.is_empty() {
            bail!(
                "no account is activated yet (in {}): run `twofold-authenticator activate URL CODE` first",
                store.path().display()
            );
        }
        match device_id {
            None => Ok(store.accounts),
            Some(id) => {
                let found: Vec<Account> = store
                    .accounts
                    .into_iter()
                    .filter(|a| a.device_id == id)
                    .collect();
                if found.is_empty() {
                    bail!(
                        "no account has the device id {id:?} (`twofold-authenticator list` shows them)"
                    );
                }
                Ok(found)
            }
        }
    }
}

/// A Unix time as UTC RFC 3339 (`2026-12-02T11:00:00Z`).
fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix_seconds.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn times_show_as_utc_rfc_3339() {
        assert_eq!(rfc3339(1796032800), "2026-11-30T10:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
