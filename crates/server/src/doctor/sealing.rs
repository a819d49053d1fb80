//! The key that seals secrets at rest: it loads (without generating one), and it opens a
//! sample of what the store holds sealed, one value of each kind.

use super::Check;
use crate::config::Config;
use crate::secrets::{Keyring, SecretsError};
use crate::store::{SealedValue, Store};

const NAME: &str = "sealing_key";

/// `fresh`: the store does not exist yet, so nothing is sealed.
pub(super) async fn check(config: &Config, store: Option<&Store>, fresh: bool) -> Check {
    let keys_dir = config.data_dir.join("keys");
    let looked_in = format!(
        "keys are read from [secrets] key (TWOFOLD_SECRETS__KEY), [secrets] key_file and {}",
        keys_dir.display()
    );
    let keyring = match Keyring::load_existing(
        &config.data_dir,
        config.secrets.key.as_ref().map(|k| k.expose()),
        config.secrets.key_file.as_deref(),
    ) {
        Ok(keyring) => keyring,
        Err(e) => {
            return Check::failed_with(
                NAME,
                &e.to_string(),
                "correct the key as the message says, or restore the keys directory from a backup",
            );
        }
    };
    let samples = match store {
        Some(store) => store.sample_sealed_values().await.ok(),
        None => None,
    };
    let restore = format!(
        "restore {} from your backup of the keys (kept apart from the store's backups), or set secrets.key or secrets.key_file \
         to the key that sealed it (a key's id is the first 8 hex digits of its SHA-256)",
        keys_dir.display()
    );
    let Some(keyring) = keyring else {
        return match samples.as_deref().and_then(|s| s.first()) {
            Some(value) => Check::fail(
                NAME,
                format!(
                    "no key found, but the store holds values sealed under key {} ({} row {}); {looked_in}",
                    Keyring::key_id_of(&value.sealed).unwrap_or("?"),
                    value.table,
                    value.id
                ),
                restore,
            ),
            None if samples.is_some() || fresh => Check::pass(
                NAME,
                format!(
                    "no key yet and nothing sealed: the first start generates one in {} (back it up, \
                     apart from the store's backups)",
                    keys_dir.display()
                ),
            ),
            None => Check::skip(
                NAME,
                format!(
                    "no key found, and the store cannot be read to tell whether it holds sealed values \
                     (see the store check); {looked_in}"
                ),
            ),
        };
    };
    let current = format!(
        "key {} (from {})",
        keyring.current_id(),
        keyring.current_source()
    );
    let Some(samples) = samples else {
        return Check::pass(
            NAME,
            if fresh {
                format!("{current} loads; there is no store yet, so nothing is sealed")
            } else {
                format!(
                    "{current} loads; no sealed value was opened: the store cannot be read (see the store check)"
                )
            },
        );
    };
    if samples.is_empty() {
        return Check::pass(
            NAME,
            format!("{current} loads; the store holds nothing sealed yet"),
        );
    }
    for value in &samples {
        if let Err(e) = open(&keyring, value) {
            return refused(value, &e, &looked_in, &restore);
        }
    }
    let kinds: Vec<&str> = samples.iter().map(|v| kind(v.table)).collect();
    Check::pass(
        NAME,
        format!(
            "{current} opens a sample of what the store holds sealed: {}",
            kinds.join(", ")
        ),
    )
}

fn open(keyring: &Keyring, value: &SealedValue) -> Result<(), SecretsError> {
    let aad = format!("{}:{}", value.table, value.id);
    keyring.open(&value.sealed, aad.as_bytes()).map(|_| ())
}

fn refused(value: &SealedValue, e: &SecretsError, looked_in: &str, restore: &str) -> Check {
    let row = format!("{} row {}", value.table, value.id);
    match e {
        SecretsError::UnknownKey { id, .. } => Check::fail(
            NAME,
            format!(
                "the {} in {row} is sealed under key {id}, which is not in the keyring; {looked_in}",
                kind(value.table)
            ),
            restore.to_owned(),
        ),
        SecretsError::Refused(id) => Check::fail(
            NAME,
            format!(
                "key {id} is in the keyring but does not open the {} in {row}: the key under that id is \
                 not the one that sealed it, or the value was altered",
                kind(value.table)
            ),
            restore.to_owned(),
        ),
        other => Check::fail(
            NAME,
            format!(
                "the {} in {row} cannot be opened: {other}",
                kind(value.table)
            ),
            "restore the store from a backup",
        ),
    }
}

/// What a table's sealed column holds, for people.
fn kind(table: &str) -> &'static str {
    match table {
        "oath_tokens" => "OATH seed",
        "devices" => "device key",
        "app_server_keys" => "app server key",
        _ => "sealed value",
    }
}
