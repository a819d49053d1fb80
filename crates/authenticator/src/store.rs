//! The accounts file, `accounts.json` in the data directory.
//!
//! It holds the device private keys, so the directory is made with mode `0700`, the file
//! with mode `0600`, and every change is written to a temporary file in the same directory
//! that then replaces the old one (a crash leaves the old file or the new one, never half).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::keys::{Algorithm, DeviceKey, KeyError, ServerKey};
use crate::protocol::OathSeed;

/// The name of the accounts file in the data directory.
pub const FILE_NAME: &str = "accounts.json";

const FORMAT_VERSION: u32 = 1;

/// What can go wrong with the accounts file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {reason}")]
    Io {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path} is not a readable accounts file ({reason})")]
    Format {
        path: PathBuf,
        reason: serde_json::Error,
    },
    #[error("{path} has format version {found}; this program reads version {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
}

/// One activated account: this device's identity on one server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub device_id: String,
    pub algorithm: Algorithm,
    /// The device's private key, base64url (32 bytes).
    pub private_key: String,
    /// The device's public key as sent at activation, base64url.
    pub public_key: String,
    /// The base URL the protocol lives under (`{url}/app/v1/…`), without a trailing `/`.
    pub server_url: String,
    /// The server's Ed25519 public key, base64url: it signs every answer.
    pub server_public_key: String,
    pub username: String,
    /// How the server names the account ("Contoso: ada").
    pub label: String,
    /// The device's name in the user's device list.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_endpoint: Option<String>,
    /// The offline codes' seed, when the device is the user's OATH token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oath: Option<OathSeed>,
    /// Unix seconds.
    pub activated_at: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the private key nor the OATH secret is ever printed.
        f.debug_struct("Account")
            .field("device_id", &self.device_id)
            .field("algorithm", &self.algorithm)
            .field("public_key", &self.public_key)
            .field("server_url", &self.server_url)
            .field("label", &self.label)
            .field("name", &self.name)
            .field("oath", &self.oath.is_some())
            .field("activated_at", &self.activated_at)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn device_key(&self) -> Result<DeviceKey, KeyError> {
        DeviceKey::from_private_b64(self.algorithm, &self.private_key)
    }

    pub fn server_key(&self) -> Result<ServerKey, KeyError> {
        ServerKey::from_b64(&self.server_public_key)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct FileContents {
    version: u32,
    accounts: Vec<Account>,
}

/// The accounts of one data directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    pub accounts: Vec<Account>,
    /// The file can be read by others than its owner (its mode is not `0600` or stricter).
    pub loose_permissions: bool,
}

impl Store {
    /// Reads `accounts.json` in `dir`; no file means no accounts yet.
    pub fn load(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(FILE_NAME);
        let io = |reason| StoreError::Io {
            path: path.clone(),
            reason,
        };
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Store {
                    dir: dir.to_owned(),
                    accounts: Vec::new(),
                    loose_permissions: false,
                });
            }
            Err(e) => return Err(io(e)),
        };
        let contents: FileContents =
            serde_json::from_slice(&text).map_err(|reason| StoreError::Format {
                path: path.clone(),
                reason,
            })?;
        if contents.version != FORMAT_VERSION {
            return Err(StoreError::Version {
                path,
                found: contents.version,
            });
        }
        let loose_permissions = loose_permissions(&path).map_err(io)?;
        Ok(Store {
            dir: dir.to_owned(),
            accounts: contents.accounts,
            loose_permissions,
        })
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Adds `account`, or replaces the one with its device id.
    pub fn upsert(&mut self, account: Account) {
        match self
            .accounts
            .iter_mut()
            .find(|a| a.device_id == account.device_id)
        {
            Some(existing) => *existing = account,
            None => self.accounts.push(account),
        }
    }

    /// Writes the accounts: the directory is made (mode `0700`) if needed, then a temporary
    /// file (mode `0600`) replaces `accounts.json`.
    pub fn save(&mut self) -> Result<(), StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |reason| StoreError::Io { path, reason }
        };
        create_private_dir(&self.dir).map_err(io(&self.dir))?;
        let contents = FileContents {
            version: FORMAT_VERSION,
            accounts: self.accounts.clone(),
        };
        let mut text =
            serde_json::to_vec_pretty(&contents).map_err(|reason| StoreError::Format {
                path: self.path(),
                reason,
            })?;
        text.push(b'\n');

        let temp = self
            .dir
            .join(format!(".{FILE_NAME}.{}.tmp", crate::protocol::new_nonce()));
        let written = write_private_file(&temp, &text);
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(io(&temp)(e));
        }
        let target = self.path();
        if let Err(e) = fs::rename(&temp, &target) {
            let _ = fs::remove_file(&temp);
            return Err(io(&target)(e));
        }
        // Make the rename itself durable.
        if let Ok(dir) = fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.loose_permissions = false;
        Ok(())
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(unix)]
fn loose_permissions(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt as _;
    Ok(fs::metadata(path)?.permissions().mode() & 0o077 != 0)
}

#[cfg(not(unix))]
fn loose_permissions(_path: &Path) -> std::io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn account(device_id: &str, algorithm: Algorithm) -> Account {
        let key = DeviceKey::generate(algorithm);
        Account {
            device_id: device_id.into(),
            algorithm,
            private_key: key.private_key_b64(),
            public_key: key.public_key_b64(),
            server_url: "https://mfa.example.com".into(),
            server_public_key: crate::keys::b64(&[7; 32]),
            username: "ada".into(),
            label: "Contoso: ada".into(),
            name: "Ada's laptop".into(),
            push_endpoint: None,
            oath: Some(OathSeed {
                secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into(),
                algorithm: "SHA1".into(),
                digits: 6,
                period: 30,
            }),
            activated_at: 1796032800,
        }
    }

    #[test]
    fn saved_accounts_read_back_the_same_with_working_keys() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("twofold-authenticator");
        let mut store = Store::load(&dir).unwrap();
        assert!(store.accounts.is_empty());
        store.upsert(account("d_1", Algorithm::Ed25519));
        store.upsert(account("d_2", Algorithm::P256));
        store.save().unwrap();

        let again = Store::load(&dir).unwrap();
        assert_eq!(again.accounts, store.accounts);
        assert!(!again.loose_permissions);
        for account in &again.accounts {
            assert_eq!(
                account.device_key().unwrap().public_key_b64(),
                account.public_key
            );
        }
        // Only the accounts file is left: no temporary file.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME]);
    }

    #[test]
    fn the_accounts_file_is_readable_by_its_owner_only() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("data");
        let mut store = Store::load(&dir).unwrap();
        store.upsert(account("d_1", Algorithm::Ed25519));
        store.save().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&dir), 0o700);

        // A file opened up by hand is noticed, and the next save closes it again.
        fs::set_permissions(dir.join(FILE_NAME), fs::Permissions::from_mode(0o644)).unwrap();
        let mut store = Store::load(&dir).unwrap();
        assert!(store.loose_permissions);
        store.save().unwrap();
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
    }

    #[test]
    fn activating_the_same_device_again_replaces_it() {
        let temp = tempfile::tempdir().unwrap();
        let mut store = Store::load(temp.path()).unwrap();
        store.upsert(account("d_1", Algorithm::Ed25519));
        let mut renamed = account("d_1", Algorithm::Ed25519);
        renamed.name = "renamed".into();
        store.upsert(renamed);
        assert_eq!(store.accounts.len(), 1);
        assert_eq!(store.accounts[0].name, "renamed");
    }

    #[test]
    fn a_damaged_accounts_file_is_reported_not_replaced() {
        let temp = tempfile::tempdir().unwrap();
        fs::write(temp.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(matches!(
            Store::load(temp.path()),
            Err(StoreError::Format { .. })
        ));
        fs::write(
            temp.path().join(FILE_NAME),
            br#"{"version":9,"accounts":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            Store::load(temp.path()),
            Err(StoreError::Version { found: 9, .. })
        ));
    }
}
