//! Passwords: argon2id with OWASP's parameters, bounded input, and equal work for unknown users.

use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use thiserror::Error;

/// The longest password accepted, in characters. Longer input is refused before any hashing,
/// so a 10,000-character password costs the server nothing.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// The shortest password that can be set for a local account.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// OWASP's argon2id recommendation (2023): 19 MiB of memory, 2 iterations, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PasswordError {
    #[error("the password is longer than {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the stored password hash is damaged")]
    DamagedHash,
    #[error("the password could not be hashed")]
    Hashing,
}

/// Hashes and verifies passwords (and, later, PINs and security answers).
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// A hash of a random secret, verified against when a username is unknown, so that a
    /// failed sign-in takes as long whether or not the user exists.
    dummy_hash: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new() -> Result<Self, PasswordError> {
        let params =
            Params::new(MEMORY_KIB, ITERATIONS, LANES, None).map_err(|_| PasswordError::Hashing)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut hasher = Self {
            argon2,
            dummy_hash: String::new(),
        };
        let random: [u8; 32] = rand::random();
        hasher.dummy_hash = hasher.hash_unchecked(&hex_string(&random))?;
        Ok(hasher)
    }

    /// Checks a password given at sign-in: only its length, before anything costly happens.
    pub fn check_length(password: &str) -> Result<(), PasswordError> {
        if password.chars().take(MAX_PASSWORD_CHARS + 1).count() > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(())
    }

    /// Checks a new password against the policy for local accounts.
    pub fn check_new(password: &str) -> Result<(), PasswordError> {
        Self::check_length(password)?;
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        Ok(())
    }

    /// Hashes a new password (after the policy check) into a PHC string.
    pub fn hash_new(&self, password: &str) -> Result<String, PasswordError> {
        Self::check_new(password)?;
        self.hash_unchecked(password)
    }

    /// Hashes a PIN or a normalised security answer (their own policies are checked by the
    /// caller) into a PHC string.
    pub fn hash_secret(&self, secret: &str) -> Result<String, PasswordError> {
        Self::check_length(secret)?;
        self.hash_unchecked(secret)
    }

    fn hash_unchecked(&self, secret: &str) -> Result<String, PasswordError> {
        use argon2::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| PasswordError::Hashing)
    }

    /// Verifies a password against a stored PHC string, in constant time.
    /// `None` for the hash means the user is unknown: the same work is done and `false` returned.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, PasswordError> {
        Self::check_length(password)?;
        let (hash, known) = match stored {
            Some(h) => (h, true),
            None => (self.dummy_hash.as_str(), false),
        };
        let parsed = PasswordHash::new(hash).map_err(|_| PasswordError::DamagedHash)?;
        let matches = self
            .argon2
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = PasswordHasher::new().unwrap();
        let stored = h.hash_new("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("correct horse", Some(&stored)).unwrap());
        assert!(!h.verify("correct horsf", Some(&stored)).unwrap());
    }

    #[test]
    fn unknown_users_never_verify() {
        let h = PasswordHasher::new().unwrap();
        assert!(!h.verify("anything at all", None).unwrap());
    }

    #[test]
    fn a_ten_thousand_character_password_is_refused_before_hashing() {
        let long = "x".repeat(10_000);
        assert_eq!(
            PasswordHasher::check_length(&long),
            Err(PasswordError::TooLong)
        );
        let h = PasswordHasher::new().unwrap();
        assert_eq!(h.verify(&long, None), Err(PasswordError::TooLong));
        assert_eq!(h.hash_new(&long), Err(PasswordError::TooLong));
    }

    #[test]
    fn short_new_passwords_are_refused() {
        assert_eq!(
            PasswordHasher::check_new("short"),
            Err(PasswordError::TooShort)
        );
        assert!(PasswordHasher::check_new("long enough").is_ok());
    }

    #[test]
    fn a_damaged_hash_is_reported_not_accepted() {
        let h = PasswordHasher::new().unwrap();
        assert_eq!(
            h.verify("whatever1", Some("not-a-phc-string")),
            Err(PasswordError::DamagedHash)
        );
    }
}
