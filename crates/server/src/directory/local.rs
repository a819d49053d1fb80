//! Local accounts: argon2id hashes kept in the store.

use super::{Directory, DirectoryAccount, DirectoryError, DirectoryOutcome};
use crate::service::blocking::BlockingPool;
use crate::store::Store;
use async_trait::async_trait;
use twofold_engine::Username;
use twofold_engine::password::PasswordHasher;

/// Checks passwords against the hashes in the store.
///
/// An unknown user, a disabled one and one without a password each cost one argon2
/// verification (against a hash of a random secret), like a known user with a wrong
/// password: the time a refusal takes says nothing about the account. A disabled account's
/// own hash is never checked, and its refusal is the same as a wrong password's: an
/// administrator disabled it in Twofold, and a guesser must not learn that the account
/// exists.
pub struct LocalDirectory {
    store: Store,
    hasher: PasswordHasher,
    /// argon2 runs here, off the async workers, one job per core at a time (the pool is the
    /// one PINs and security answers use too).
    hashing: BlockingPool,
}

impl LocalDirectory {
    pub(crate) fn new(store: Store, hasher: PasswordHasher, hashing: BlockingPool) -> Self {
        Self {
            store,
            hasher,
            hashing,
        }
    }

    fn unavailable(reason: impl std::fmt::Display) -> DirectoryError {
        DirectoryError::Unavailable {
            directory: "local",
            reason: reason.to_string(),
        }
    }
}

#[async_trait]
impl Directory for LocalDirectory {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn check_password(
        &self,
        username: &Username,
        password: &str,
    ) -> Result<DirectoryOutcome, DirectoryError> {
        let user = self
            .store
            .user_by_username(username)
            .await
            .map_err(|e| Self::unavailable(format!("the store: {e}")))?;
        let stored = user
            .as_ref()
            .filter(|u| u.enabled)
            .and_then(|u| u.password_hash.clone());
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
        let matched = self
            .hashing
            .run(move || hasher.verify(&password, stored.as_deref()))
            .await
            .map_err(Self::unavailable)?;
        let matched = matched.unwrap_or_else(|e| {
            tracing::error!(username = %username, error = %e, "stored password hash cannot be read");
            false
        });
        Ok(match user {
            Some(user) if !user.enabled => DirectoryOutcome::Rejected,
            Some(user) if matched => DirectoryOutcome::Accepted(DirectoryAccount {
                username: user.username,
                email: user.email,
                phone: user.phone,
                ..Default::default()
            }),
            _ => DirectoryOutcome::Rejected,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::DatabaseTarget;
    use crate::store::{NewUser, UserChanges};
    use std::time::Duration;

    const PASSWORD: &str = "correct horse battery staple";

    async fn directory_with_alice() -> (LocalDirectory, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &DatabaseTarget::Sqlite(dir.path().join("t.db")),
            4,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let hasher = PasswordHasher::new().unwrap();
        for (name, password) in [("alice", Some(PASSWORD)), ("nopassword", None)] {
            store
                .create_user(
                    NewUser {
                        username: Username::parse(name).unwrap(),
                        email: Some(format!("{name}@example.com")),
                        phone: None,
                        password_hash: password.map(|p| hasher.hash_new(p).unwrap()),
                    },
                    1_700_000_000,
                )
                .await
                .unwrap();
        }
        (
            LocalDirectory::new(store, hasher, BlockingPool::new(1)),
            dir,
        )
    }

    fn name(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    #[tokio::test]
    async fn the_right_password_is_accepted_with_the_accounts_details() {
        let (directory, _dir) = directory_with_alice().await;
        assert_eq!(
            directory
                .check_password(&name("alice"), PASSWORD)
                .await
                .unwrap(),
            DirectoryOutcome::Accepted(DirectoryAccount {
                username: "alice".into(),
                email: Some("alice@example.com".into()),
                phone: None,
                ..Default::default()
            })
        );
    }

    #[tokio::test]
    async fn a_wrong_password_is_rejected() {
        let (directory, _dir) = directory_with_alice().await;
        for wrong in [
            "correct horse battery stapl",
            "",
            "CORRECT HORSE BATTERY STAPLE",
        ] {
            assert_eq!(
                directory
                    .check_password(&name("alice"), wrong)
                    .await
                    .unwrap(),
                DirectoryOutcome::Rejected,
                "{wrong:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_user_or_one_without_a_password_is_rejected_like_a_wrong_password() {
        let (directory, _dir) = directory_with_alice().await;
        for user in ["mallory", "nopassword"] {
            assert_eq!(
                directory
                    .check_password(&name(user), PASSWORD)
                    .await
                    .unwrap(),
                DirectoryOutcome::Rejected,
                "{user}"
            );
        }
    }

    #[tokio::test]
    async fn a_disabled_account_is_refused_even_with_its_right_password() {
        let (directory, _dir) = directory_with_alice().await;
        directory
            .store
            .update_user(
                &name("alice"),
                UserChanges {
                    enabled: Some(false),
                    ..UserChanges::default()
                },
                1_700_000_001,
            )
            .await
            .unwrap();
        for password in [PASSWORD, "wrong password entirely"] {
            assert_eq!(
                directory
                    .check_password(&name("alice"), password)
                    .await
                    .unwrap(),
                DirectoryOutcome::Rejected
            );
        }
    }
}
