//! Secrets at rest: AES-256-GCM sealing of OATH seeds (and later device keys).
//!
//! A sealed value is text, `v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`, so it names
//! the key that sealed it: after a rotation old values still open with their old key, and
//! [`reencrypt_all`] moves them to the current one, after which the old key can go.
//!
//! The key is the operator's. [`Keyring::load`] takes, in order: an explicit key
//! (`[secrets] key`, `TWOFOLD_SECRETS__KEY`), a key file (`[secrets] key_file`), or the
//! directory `<data_dir>/keys/` (`<id>.key` files, mode 0600, and a `current` file naming
//! the current id), generating a first key there when there is none. Keys are 32 bytes,
//! written as 64 hex characters or base64; their ids are the first 8 hex characters of the
//! key's SHA-256, so the same key always has the same id wherever it is configured.
//!
//! Choices, and why:
//! - A random 96-bit nonce per value: values are sealed rarely (enrolments, imports), far
//!   below the 2³² seals per key where random nonces start to risk a repeat.
//! - The associated data is `v1:<key id>:<aad>`, where the caller's `aad` says where the value
//!   is stored (`oath_tokens:<token id>`): a sealed value copied to another row, or relabelled
//!   with another key id, does not open.
//! - Keys and opened plaintexts live in [`Zeroizing`] buffers, and sealing works in place in
//!   a buffer sized up front, so no stray copy of a secret is left in freed memory by us.

use crate::store::{Store, StoreError};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The format tag of sealed values.
const VERSION: &str = "v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Name of the file in the keys directory that names the current key.
const CURRENT_FILE: &str = "current";
/// How often [`reencrypt_all`] looks again when values change under it.
const REENCRYPT_PASSES: usize = 5;

/// What every bad-key message ends with.
const KEY_FIX: &str = "Fix: use 64 hex characters or the base64 of 32 random bytes, \
                       for example the output of `openssl rand -hex 32`.";

/// Base64 in either alphabet, padded or not, for keys the operator writes.
const BASE64_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const BASE64_URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A key that is not 32 bytes in a known encoding. `origin` names where it came from.
    #[error("{origin}: {problem}. {KEY_FIX}")]
    BadKey { origin: String, problem: String },
    /// A file of the keyring that cannot be read or written.
    #[error("{}: cannot {action} ({error}). Fix: {fix}", path.display())]
    File {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
        fix: String,
    },
    /// The keys directory is inconsistent (no `current`, a missing key, a bad file name).
    #[error("{0}")]
    Keyring(String),
    #[error("the key {id} that sealed this value is not in the keyring: restore {} from a backup", path.display())]
    UnknownKey { id: String, path: PathBuf },
    #[error("a sealed value is malformed: {0}")]
    Malformed(&'static str),
    #[error(
        "a value sealed under key {0} did not open: it was altered, or copied from another record"
    )]
    Refused(String),
    #[error("the system's random number generator failed: {0}")]
    Random(String),
    #[error("sealing failed")]
    Seal,
    #[error(
        "the current key comes from {origin}, which Twofold does not change. Fix: save the \
         current key as {} (mode 0600) so values sealed with it still open, set a new key \
         (`openssl rand -hex 32`) in {origin}, restart, then re-encrypt",
        kept.display()
    )]
    RotateExplicit { origin: String, kept: PathBuf },
    #[error("{table} row {id}: {error}")]
    Row {
        table: &'static str,
        id: String,
        error: Box<SecretsError>,
    },
    #[error(
        "sealed values kept changing during re-encryption ({left} still under old keys). \
         Fix: run it again; if that repeats, restart every server first so they all seal with the current key"
    )]
    KeepsChanging { left: usize },
    #[error("the store: {0}")]
    Store(#[from] StoreError),
}

/// Where the current key came from, which decides whether Twofold may rotate it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CurrentSource {
    /// `<data_dir>/keys/current`: Twofold's own, rotatable.
    KeysDir,
    /// Configuration the operator owns; the text names it for messages.
    Explicit(String),
    /// [`Keyring::for_tests`].
    Fixed,
}

/// The keys that open sealed values, and the one that seals new ones.
pub struct Keyring {
    current: String,
    keys: BTreeMap<String, Zeroizing<[u8; KEY_LEN]>>,
    /// `<data_dir>/keys`, for messages that say which file to restore.
    keys_dir: Option<PathBuf>,
    source: CurrentSource,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("keys_dir", &self.keys_dir)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Loads the keyring. Sources, in order: an explicit key (`key`: 64 hex characters or
    /// base64 of 32 bytes, from `[secrets] key` / `TWOFOLD_SECRETS__KEY`), then a key file
    /// (`key_file`, same encodings, whitespace trimmed), then `<data_dir>/keys/` with one
    /// `<id>.key` file per key and a `current` file naming the current id. With none of
    /// them, a new key is generated in `<data_dir>/keys/` (file 0600, directory 0700) and
    /// made current.
    ///
    /// An explicit key or key file gets the id derived from the key, so it is stable; the
    /// keys in `<data_dir>/keys/`, if any, are loaded too, to open values sealed before.
    pub fn load(
        data_dir: &Path,
        key: Option<&str>,
        key_file: Option<&Path>,
    ) -> Result<Keyring, SecretsError> {
        Self::load_from_sources(data_dir, key, key_file, true)?.ok_or_else(|| {
            SecretsError::Keyring(format!(
                "no key in {} after generating one. Fix: check that the directory is writable",
                data_dir.join("keys").display()
            ))
        })
    }

    /// Loads the keyring from the same sources as [`Keyring::load`], but changes nothing:
    /// with no key configured and none in `<data_dir>/keys/`, it generates none and
    /// returns `None` (for `twofold doctor`, which must leave the setup as it found it).
    pub fn load_existing(
        data_dir: &Path,
        key: Option<&str>,
        key_file: Option<&Path>,
    ) -> Result<Option<Keyring>, SecretsError> {
        Self::load_from_sources(data_dir, key, key_file, false)
    }

    fn load_from_sources(
        data_dir: &Path,
        key: Option<&str>,
        key_file: Option<&Path>,
        generate: bool,
    ) -> Result<Option<Keyring>, SecretsError> {
        let keys_dir = data_dir.join("keys");
        let explicit = match (key, key_file) {
            (Some(text), _) => {
                let source = "secrets.key (TWOFOLD_SECRETS__KEY)".to_owned();
                Some((parse_key(text, &source)?, source))
            }
            (None, Some(path)) => {
                let source = format!("secrets.key_file = {}", path.display());
                let text = read_secret_file(
                    path,
                    "point secrets.key_file at a readable file holding the key",
                )?;
                Some((parse_key(&text, &source)?, source))
            }
            (None, None) => None,
        };

        let mut stored = read_keys_dir(&keys_dir)?;
        if explicit.is_none() && stored.keys.is_empty() && stored.current.is_none() {
            if !generate {
                return Ok(None);
            }
            create_first_key(&keys_dir)?;
            // Read back what is there: another process may have created the first key at
            // the same moment, and then its key is the one both use.
            stored = read_keys_dir(&keys_dir)?;
        }

        let (current, source) = match explicit {
            Some((key, source)) => {
                let id = key_id_for(&key);
                if let Some(other) = stored.keys.get(&id)
                    && other[..] != key[..]
                {
                    return Err(SecretsError::Keyring(format!(
                        "{} holds a different key under the id {id} of {source}. Fix: move \
                         that file away; key ids are the start of the key's SHA-256",
                        keys_dir.join(format!("{id}.key")).display()
                    )));
                }
                stored.keys.insert(id.clone(), key);
                (id, CurrentSource::Explicit(source))
            }
            None => {
                let current_path = keys_dir.join(CURRENT_FILE);
                let Some(id) = stored.current else {
                    return Err(SecretsError::Keyring(format!(
                        "{} holds keys but no file `{CURRENT_FILE}` naming the one to seal with. \
                         Fix: write the id of the current key (a file name without .key) into {}",
                        keys_dir.display(),
                        current_path.display()
                    )));
                };
                if !stored.keys.contains_key(&id) {
                    return Err(SecretsError::Keyring(format!(
                        "{} names the key {id}, but {} is missing. Fix: restore it from a backup",
                        current_path.display(),
                        keys_dir.join(format!("{id}.key")).display()
                    )));
                }
                (id, CurrentSource::KeysDir)
            }
        };
        Ok(Some(Keyring {
            current,
            keys: stored.keys,
            keys_dir: Some(keys_dir),
            source,
        }))
    }

    /// A keyring of one fixed key, for other modules' tests.
    pub fn for_tests(key: [u8; 32]) -> Keyring {
        let key = Zeroizing::new(key);
        let id = key_id_for(&key);
        Keyring {
            current: id.clone(),
            keys: BTreeMap::from([(id, key)]),
            keys_dir: None,
            source: CurrentSource::Fixed,
        }
    }

    /// The id of the key new values are sealed with.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Where the current key comes from, for messages: `secrets.key_file = /etc/…`, or the
    /// `current` file of the keys directory.
    pub fn current_source(&self) -> String {
        match (&self.source, &self.keys_dir) {
            (CurrentSource::Explicit(source), _) => source.clone(),
            (CurrentSource::KeysDir, Some(dir)) => dir.join(CURRENT_FILE).display().to_string(),
            (CurrentSource::KeysDir, None) => format!("keys/{CURRENT_FILE}"),
            (CurrentSource::Fixed, _) => "a fixed test key".to_owned(),
        }
    }

    /// Seals `plaintext` under the current key with AES-256-GCM and a random 96-bit nonce.
    /// `aad` binds the value to where it is stored (`oath_tokens:<token id>`), so a value
    /// copied to another row does not open. Returns `v1:<key id>:<base64url>`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, SecretsError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| self.unknown_key(&self.current))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| SecretsError::Random(e.to_string()))?;
        // nonce ‖ ciphertext ‖ tag, encrypted in place in a buffer that never grows.
        let mut buffer = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN));
        buffer.extend_from_slice(&nonce);
        buffer.extend_from_slice(plaintext);
        let tag = cipher(key)
            .encrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &associated_data(&self.current, aad),
                &mut buffer[NONCE_LEN..],
            )
            .map_err(|_| SecretsError::Seal)?;
        buffer.extend_from_slice(&tag);
        Ok(format!(
            "{VERSION}:{}:{}",
            self.current,
            general_purpose::URL_SAFE_NO_PAD.encode(&buffer[..])
        ))
    }

    /// Opens a value made by [`Keyring::seal`] with the same `aad`, under whichever key of
    /// the keyring sealed it.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let (id, body) = split_sealed(sealed)?;
        let key = self.keys.get(id).ok_or_else(|| self.unknown_key(id))?;
        let raw = general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretsError::Malformed("its body is not base64url"))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretsError::Malformed("it is too short"));
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        cipher(key)
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &associated_data(id, aad),
                &mut plaintext[..],
                Tag::from_slice(tag),
            )
            .map_err(|_| SecretsError::Refused(id.to_owned()))?;
        Ok(plaintext)
    }

    /// A keyed hash of a short-lived secret (a text message's code): `<key id>:<hex>`,
    /// HMAC-SHA256 under a key derived from the current key, so that a copy of the store
    /// alone does not reveal the code. `context` binds it to its record.
    pub fn code_hash(&self, context: &[u8], code: &[u8]) -> Result<String, SecretsError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| self.unknown_key(&self.current))?;
        Ok(format!(
            "{}:{}",
            self.current,
            hex::encode(code_mac(key, context, code))
        ))
    }

    /// Whether `code` is the one [`Keyring::code_hash`] hashed (compared in constant time).
    pub fn code_matches(&self, hash: &str, context: &[u8], code: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        let Some((id, hex_mac)) = hash.rsplit_once(':') else {
            return false;
        };
        let (Some(key), Ok(stored)) = (self.keys.get(id), hex::decode(hex_mac)) else {
            return false;
        };
        code_mac(key, context, code).ct_eq(&stored[..]).into()
    }

    /// The id of the key that sealed `sealed`, if it is a sealed value.
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        split_sealed(sealed).ok().map(|(id, _)| id)
    }

    /// Makes a new key current in `<data_dir>/keys`, keeping the old ones to open what they
    /// sealed, and returns its id. Refused when the current key is the operator's (an
    /// explicit key or key file): the operator changes that one.
    ///
    /// Servers already running keep sealing with the key they loaded: restart them before
    /// running [`reencrypt_all`].
    pub fn rotate(&mut self, data_dir: &Path) -> Result<String, SecretsError> {
        let keys_dir = data_dir.join("keys");
        match &self.source {
            CurrentSource::KeysDir => {}
            CurrentSource::Explicit(source) => {
                return Err(SecretsError::RotateExplicit {
                    origin: source.clone(),
                    kept: keys_dir.join(format!("{}.key", self.current)),
                });
            }
            CurrentSource::Fixed => {
                return Err(SecretsError::RotateExplicit {
                    origin: "a fixed test key".to_owned(),
                    kept: keys_dir.join(format!("{}.key", self.current)),
                });
            }
        }
        let (id, key) = write_new_key(&keys_dir)?;
        let current_path = keys_dir.join(CURRENT_FILE);
        let temp = keys_dir.join(format!(".{CURRENT_FILE}.{id}.tmp"));
        write_private_file(&temp, format!("{id}\n").as_bytes())?;
        fs::rename(&temp, &current_path).map_err(|error| SecretsError::File {
            path: current_path.clone(),
            action: "replace",
            error,
            fix: format!("check that {} is writable", keys_dir.display()),
        })?;
        sync_dir(&keys_dir)?;
        self.keys.insert(id.clone(), key);
        self.current = id.clone();
        self.keys_dir = Some(keys_dir);
        Ok(id)
    }

    fn unknown_key(&self, id: &str) -> SecretsError {
        let file = format!("{id}.key");
        SecretsError::UnknownKey {
            id: id.to_owned(),
            path: match &self.keys_dir {
                Some(dir) => dir.join(file),
                None => Path::new("keys").join(file),
            },
        }
    }
}

/// Seals every stored value that is not under the keyring's current key again under it,
/// and returns how many it re-encrypted. Running it again re-encrypts nothing.
///
/// A value that changes while it is being re-encrypted is left as it now is and looked at
/// again in a further pass. A value that does not open stops the run with the row named;
/// what was re-encrypted before stays so.
pub async fn reencrypt_all(store: &Store, keyring: &Keyring) -> Result<usize, SecretsError> {
    let current = keyring.current_id();
    let mut reencrypted = 0;
    let mut left = 0;
    for _ in 0..REENCRYPT_PASSES {
        let values = store.sealed_values_not_under(current).await?;
        if values.is_empty() {
            return Ok(reencrypted);
        }
        left = 0;
        for value in &values {
            let resealed =
                reseal(keyring, value.table, &value.id, &value.sealed).map_err(|error| {
                    SecretsError::Row {
                        table: value.table,
                        id: value.id.clone(),
                        error: Box::new(error),
                    }
                })?;
            if store
                .replace_sealed_value(value, &resealed, current)
                .await?
            {
                reencrypted += 1;
                tracing::debug!(table = value.table, id = %value.id, key_id = current, "re-encrypted");
            } else {
                left += 1;
            }
        }
        if left == 0 {
            return Ok(reencrypted);
        }
    }
    Err(SecretsError::KeepsChanging { left })
}

/// Opens a value stored in `table` row `id` and seals it again under the current key.
fn reseal(keyring: &Keyring, table: &str, id: &str, sealed: &str) -> Result<String, SecretsError> {
    let aad = format!("{table}:{id}");
    let plaintext = keyring.open(sealed, aad.as_bytes())?;
    keyring.seal(&plaintext, aad.as_bytes())
}

/// The text every value sealed under `key_id` starts with (for the store's queries).
pub(crate) fn sealed_prefix(key_id: &str) -> String {
    format!("{VERSION}:{key_id}:")
}

fn split_sealed(sealed: &str) -> Result<(&str, &str), SecretsError> {
    let rest = sealed
        .strip_prefix(VERSION)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or(SecretsError::Malformed("it does not start with v1:"))?;
    let (id, body) = rest
        .split_once(':')
        .ok_or(SecretsError::Malformed("it names no key"))?;
    if !is_valid_id(id) {
        return Err(SecretsError::Malformed("its key id is not valid"));
    }
    Ok((id, body))
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

fn associated_data(key_id: &str, aad: &[u8]) -> Vec<u8> {
    let prefix = sealed_prefix(key_id);
    let mut data = Vec::with_capacity(prefix.len() + aad.len());
    data.extend_from_slice(prefix.as_bytes());
    data.extend_from_slice(aad);
    data
}

/// Ids name files and sit between colons: letters, digits, `-` and `_`, at most 64.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The first 8 hex characters of the key's SHA-256.
fn key_id_for(key: &[u8; KEY_LEN]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

/// Decodes a key written as 64 hex characters or base64 of 32 bytes. `source` names where
/// it came from; the key itself never appears in a message.
fn parse_key(text: &str, source: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, SecretsError> {
    let text = text.trim();
    let bad = |problem: String| SecretsError::BadKey {
        origin: source.to_owned(),
        problem,
    };
    if text.is_empty() {
        return Err(bad("is empty".to_owned()));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode_to_slice(text, &mut key[..]).map_err(|_| bad("is not valid hex".to_owned()))?;
        return Ok(key);
    }
    let decoded = BASE64_STANDARD
        .decode(text)
        .or_else(|_| BASE64_URL.decode(text))
        .map(Zeroizing::new);
    match decoded {
        Ok(bytes) if bytes.len() == KEY_LEN => {
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Ok(bytes) => Err(bad(format!(
            "decodes (as base64) to {} bytes, but a key is 32 bytes",
            bytes.len()
        ))),
        Err(_) if text.bytes().all(|b| b.is_ascii_hexdigit()) => Err(bad(format!(
            "is {} hex characters, but a key is 64 (32 bytes)",
            text.len()
        ))),
        Err(_) => Err(bad("is neither 64 hex characters nor base64".to_owned())),
    }
}

fn read_secret_file(path: &Path, fix: &str) -> Result<Zeroizing<String>, SecretsError> {
    fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|error| SecretsError::File {
            path: path.to_owned(),
            action: "read it",
            error,
            fix: fix.to_owned(),
        })
}

/// What `<data_dir>/keys/` holds; empty when it does not exist.
#[derive(Default)]
struct StoredKeys {
    keys: BTreeMap<String, Zeroizing<[u8; KEY_LEN]>>,
    current: Option<String>,
}

fn read_keys_dir(dir: &Path) -> Result<StoredKeys, SecretsError> {
    let mut stored = StoredKeys::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(stored),
        Err(error) => {
            return Err(SecretsError::File {
                path: dir.to_owned(),
                action: "list it",
                error,
                fix: "make the keys directory readable by the user Twofold runs as".to_owned(),
            });
        }
    };
    warn_if_not_private(dir, 0o700);
    for entry in entries {
        let entry = entry.map_err(|error| SecretsError::File {
            path: dir.to_owned(),
            action: "list it",
            error,
            fix: "make the keys directory readable by the user Twofold runs as".to_owned(),
        })?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some(id) = name.strip_suffix(".key") else {
            continue;
        };
        if !is_valid_id(id) {
            return Err(SecretsError::Keyring(format!(
                "{}: a key's file name must be its id (letters, digits, - and _) followed by .key. \
                 Fix: rename it",
                path.display()
            )));
        }
        warn_if_not_private(&path, 0o600);
        let text = read_secret_file(&path, "make it readable by the user Twofold runs as")?;
        let key = parse_key(&text, &path.display().to_string())?;
        stored.keys.insert(id.to_owned(), key);
    }
    let current_path = dir.join(CURRENT_FILE);
    match fs::read_to_string(&current_path) {
        Ok(text) => {
            let id = text.trim();
            if !is_valid_id(id) {
                return Err(SecretsError::Keyring(format!(
                    "{} must hold the id of the current key (letters, digits, - and _). \
                     Fix: write the name of its .key file there, without .key",
                    current_path.display()
                )));
            }
            stored.current = Some(id.to_owned());
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(SecretsError::File {
                path: current_path,
                action: "read it",
                error,
                fix: "make it readable by the user Twofold runs as".to_owned(),
            });
        }
    }
    Ok(stored)
}

/// Generates the first key and makes it current, unless another process made one current
/// first (then ours is removed again).
fn create_first_key(keys_dir: &Path) -> Result<(), SecretsError> {
    let (id, _key) = write_new_key(keys_dir)?;
    let key_path = keys_dir.join(format!("{id}.key"));
    let current_path = keys_dir.join(CURRENT_FILE);
    let temp = keys_dir.join(format!(".{CURRENT_FILE}.{id}.tmp"));
    write_private_file(&temp, format!("{id}\n").as_bytes())?;
    // A hard link publishes the complete file, and only if there is none yet.
    let linked = fs::hard_link(&temp, &current_path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_dir(keys_dir)?;
            tracing::info!(key_id = %id, path = %key_path.display(), "generated the key that seals secrets at rest; back it up");
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let _ = fs::remove_file(&key_path);
            Ok(())
        }
        Err(error) => {
            let _ = fs::remove_file(&key_path);
            Err(SecretsError::File {
                path: current_path,
                action: "create it",
                error,
                fix: format!("check that {} is writable", keys_dir.display()),
            })
        }
    }
}

/// Generates a key and writes it to `<keys_dir>/<id>.key` (0600; directory 0700).
fn write_new_key(keys_dir: &Path) -> Result<(String, Zeroizing<[u8; KEY_LEN]>), SecretsError> {
    create_private_dir(keys_dir)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut key[..])
        .map_err(|e| SecretsError::Random(e.to_string()))?;
    let id = key_id_for(&key);
    let mut text = Zeroizing::new([0u8; 2 * KEY_LEN + 1]);
    hex::encode_to_slice(&key[..], &mut text[..2 * KEY_LEN]).map_err(|_| SecretsError::Seal)?;
    text[2 * KEY_LEN] = b'\n';
    write_private_file(&keys_dir.join(format!("{id}.key")), &text[..])?;
    Ok((id, key))
}

fn create_private_dir(dir: &Path) -> Result<(), SecretsError> {
    let failed = |error| SecretsError::File {
        path: dir.to_owned(),
        action: "create it",
        error,
        fix: "make the data directory writable by the user Twofold runs as".to_owned(),
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(failed)?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    Ok(())
}

/// Creates `path` (which must not exist) with mode 0600, writes `contents` and syncs it.
fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), SecretsError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let failed = |error| SecretsError::File {
        path: path.to_owned(),
        action: "write it",
        error,
        fix: "check that the keys directory is writable and has no file of that name".to_owned(),
    };
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(contents).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// Makes a rename or a new file in `dir` survive a crash.
fn sync_dir(dir: &Path) -> Result<(), SecretsError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|error| SecretsError::File {
            path: dir.to_owned(),
            action: "sync it",
            error,
            fix: "check the file system holding the data directory".to_owned(),
        })?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Keys are for Twofold's user alone: say so when others may read them.
fn warn_if_not_private(path: &Path, expected: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{mode:o}"),
                    "others than Twofold's user can reach this key material; fix: chmod {expected:o}"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, expected);
}

/// HMAC-SHA256 of `context ‖ 0 ‖ code` under a key derived from `key` for this purpose only.
fn code_mac(key: &[u8; KEY_LEN], context: &[u8], code: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let derived = Sha256::new()
        .chain_update(b"twofold code hash v1")
        .chain_update(key)
        .finalize();
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&derived) {
        Ok(mac) => mac,
        // HMAC takes keys of any length.
        Err(_) => return [0u8; 32],
    };
    mac.update(context);
    mac.update(&[0]);
    mac.update(code);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn a_sealed_value_opens_only_with_its_own_aad() {
        let keyring = Keyring::for_tests(KEY);
        let sealed = keyring.seal(b"seed", b"oath_tokens:a").unwrap();
        assert_eq!(
            &keyring.open(&sealed, b"oath_tokens:a").unwrap()[..],
            b"seed"
        );
        assert!(matches!(
            keyring.open(&sealed, b"oath_tokens:b"),
            Err(SecretsError::Refused(_))
        ));
        // Fresh nonce each time: the same secret never seals to the same text.
        assert_ne!(sealed, keyring.seal(b"seed", b"oath_tokens:a").unwrap());
        assert!(sealed.starts_with(&format!("v1:{}:", keyring.current_id())));
        assert_eq!(Keyring::key_id_of(&sealed), Some(keyring.current_id()));
        assert_eq!(Keyring::key_id_of("plain text"), None);
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let keyring = Keyring::for_tests(KEY);
        let sealed = keyring.seal(b"seed", b"t:1").unwrap();
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut raw = general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let tampered = format!("{head}:{}", general_purpose::URL_SAFE_NO_PAD.encode(&raw));
            assert!(
                matches!(
                    keyring.open(&tampered, b"t:1"),
                    Err(SecretsError::Refused(_))
                ),
                "byte {i}"
            );
            raw[i] ^= 1;
        }
        let truncated = &sealed[..sealed.len() - 4];
        assert!(keyring.open(truncated, b"t:1").is_err());
        assert!(matches!(
            keyring.open("v1:abc", b"t:1"),
            Err(SecretsError::Malformed(_))
        ));
        assert!(matches!(
            keyring.open("v2:abc:AAAA", b"t:1"),
            Err(SecretsError::Malformed(_))
        ));
    }

    #[test]
    fn loading_existing_keys_generates_none_and_finds_what_load_made() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            Keyring::load_existing(dir.path(), None, None)
                .unwrap()
                .is_none()
        );
        assert!(!dir.path().join("keys").exists(), "nothing was written");
        let made = Keyring::load(dir.path(), None, None).unwrap();
        let found = Keyring::load_existing(dir.path(), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(found.current_id(), made.current_id());
        let explicit = Keyring::load_existing(dir.path(), Some(&hex::encode([3u8; 32])), None)
            .unwrap()
            .unwrap();
        assert_ne!(explicit.current_id(), made.current_id());
    }

    #[test]
    fn a_value_sealed_under_a_missing_key_names_the_file_to_restore() {
        let dir = tempfile::tempdir().unwrap();
        let other = Keyring::for_tests([9; 32]);
        let sealed = other.seal(b"seed", b"t:1").unwrap();
        let keyring = Keyring::load(dir.path(), None, None).unwrap();
        let message = keyring.open(&sealed, b"t:1").unwrap_err().to_string();
        let expected = dir
            .path()
            .join("keys")
            .join(format!("{}.key", other.current_id()));
        assert!(message.contains(other.current_id()), "{message}");
        assert!(
            message.contains(&expected.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn a_generated_key_is_kept_across_loads_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load(dir.path(), None, None).unwrap();
        let sealed = first.seal(b"seed", b"t:1").unwrap();
        let second = Keyring::load(dir.path(), None, None).unwrap();
        assert_eq!(first.current_id(), second.current_id());
        assert_eq!(&second.open(&sealed, b"t:1").unwrap()[..], b"seed");

        let keys = dir.path().join("keys");
        let key_file = keys.join(format!("{}.key", first.current_id()));
        let current = fs::read_to_string(keys.join("current")).unwrap();
        assert_eq!(current.trim(), first.current_id());
        // The file holds the key itself, and its id is derived from it.
        let text = fs::read_to_string(&key_file).unwrap();
        let key = parse_key(&text, "test").unwrap();
        assert_eq!(key_id_for(&key), first.current_id());
        assert_eq!(
            fs::read_dir(&keys).unwrap().count(),
            2,
            "no temporary files left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&key_file), 0o600);
            assert_eq!(mode(&keys), 0o700);
        }
    }

    #[test]
    fn an_explicit_key_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let short_hex = "ab".repeat(31);
        let message = Keyring::load(dir.path(), Some(&short_hex), None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("secrets.key"), "{message}");
        assert!(message.contains("62 hex characters"), "{message}");
        assert!(message.contains("openssl rand -hex 32"), "{message}");
        assert!(
            !message.contains(&short_hex),
            "the key is not echoed: {message}"
        );

        let file = dir.path().join("key.b64");
        fs::write(&file, general_purpose::STANDARD.encode([1u8; 16])).unwrap();
        let message = Keyring::load(dir.path(), None, Some(&file))
            .unwrap_err()
            .to_string();
        assert!(message.contains("secrets.key_file"), "{message}");
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("16 bytes"), "{message}");

        let message = Keyring::load(dir.path(), Some("  "), None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("is empty"), "{message}");

        let missing = dir.path().join("nope");
        let message = Keyring::load(dir.path(), None, Some(&missing))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );

        // Nothing was generated for the operator's failed attempts.
        assert!(!dir.path().join("keys").exists());
    }

    #[test]
    fn an_explicit_key_has_a_stable_id_in_any_encoding_and_old_keys_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let generated = Keyring::load(dir.path(), None, None).unwrap();
        let old = generated.seal(b"old seed", b"t:1").unwrap();

        let key = [42u8; 32];
        let from_hex = Keyring::load(dir.path(), Some(&hex::encode(key)), None).unwrap();
        let file = dir.path().join("key");
        fs::write(
            &file,
            format!("{}\n", general_purpose::STANDARD.encode(key)),
        )
        .unwrap();
        let from_file = Keyring::load(dir.path(), None, Some(&file)).unwrap();
        let url_no_pad = general_purpose::URL_SAFE_NO_PAD.encode(key);
        let from_url = Keyring::load(dir.path(), Some(&url_no_pad), None).unwrap();

        assert_eq!(from_hex.current_id(), from_file.current_id());
        assert_eq!(from_hex.current_id(), from_url.current_id());
        assert_eq!(from_hex.current_id(), Keyring::for_tests(key).current_id());
        assert_ne!(from_hex.current_id(), generated.current_id());
        assert_eq!(from_hex.current_id().len(), 8);
        assert_eq!(&from_file.open(&old, b"t:1").unwrap()[..], b"old seed");
        let new = from_file.seal(b"new seed", b"t:2").unwrap();
        assert_eq!(Keyring::key_id_of(&new), Some(from_hex.current_id()));
    }

    #[test]
    fn after_rotation_old_values_still_open_and_new_ones_use_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut keyring = Keyring::load(dir.path(), None, None).unwrap();
        let old_id = keyring.current_id().to_owned();
        let old = keyring.seal(b"old seed", b"t:1").unwrap();

        let new_id = keyring.rotate(dir.path()).unwrap();
        assert_ne!(new_id, old_id);
        assert_eq!(keyring.current_id(), new_id);
        let new = keyring.seal(b"new seed", b"t:2").unwrap();
        assert_eq!(Keyring::key_id_of(&new), Some(new_id.as_str()));
        assert_eq!(&keyring.open(&old, b"t:1").unwrap()[..], b"old seed");

        let reloaded = Keyring::load(dir.path(), None, None).unwrap();
        assert_eq!(reloaded.current_id(), new_id);
        assert_eq!(&reloaded.open(&old, b"t:1").unwrap()[..], b"old seed");
        assert_eq!(&reloaded.open(&new, b"t:2").unwrap()[..], b"new seed");
    }

    #[test]
    fn rotation_is_refused_for_the_operators_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut keyring = Keyring::load(dir.path(), Some(&hex::encode([3u8; 32])), None).unwrap();
        let id = keyring.current_id().to_owned();
        let message = keyring.rotate(dir.path()).unwrap_err().to_string();
        assert!(message.contains("secrets.key"), "{message}");
        assert!(message.contains(&format!("{id}.key")), "{message}");
        assert_eq!(keyring.current_id(), id);
        assert!(!dir.path().join("keys").exists());
    }

    #[test]
    fn a_keys_directory_without_a_current_key_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::load(dir.path(), None, None).unwrap();
        let current = dir.path().join("keys").join("current");
        fs::remove_file(&current).unwrap();
        let message = Keyring::load(dir.path(), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&current.display().to_string()),
            "{message}"
        );

        fs::write(&current, "k9\n").unwrap();
        let message = Keyring::load(dir.path(), None, None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("k9.key"), "{message}");

        fs::write(&current, format!("{}\n", keyring.current_id())).unwrap();
        assert!(Keyring::load(dir.path(), None, None).is_ok());
    }

    #[test]
    fn debug_does_not_print_keys() {
        let key = [0xab; 32];
        let printed = format!("{:?}", Keyring::for_tests(key));
        assert!(!printed.contains(&hex::encode(key)), "{printed}");
        assert!(!printed.contains("171"), "{printed}");
        assert!(printed.contains(Keyring::for_tests(key).current_id()));
    }
}
