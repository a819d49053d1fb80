//! OATH one-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238).
//!
//! The store keeps an [`OathState`] per token; [`verify`] takes it and returns the state to
//! write back, so that a code is accepted once: a TOTP step at or below the last used one, or
//! an HOTP counter below the next expected one, is refused as a replay.

use serde::{Deserialize, Serialize};

/// The HMAC hash function of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

/// Time-based (with its period in seconds) or counter-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum OathKind {
    Totp { period: u32 },
    Hotp,
}

/// What a token computes: algorithm, number of digits (6 or 8) and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OathParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub kind: OathKind,
}

impl Default for OathParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            kind: OathKind::Totp { period: 30 },
        }
    }
}

/// What the store remembers of a token between verifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OathState {
    /// HOTP: the next counter value expected (codes below it are used up).
    pub counter: u64,
    /// TOTP: the last time step whose code was accepted.
    pub last_step: Option<u64>,
    /// TOTP: the token's clock offset, in steps, as last observed.
    pub drift: i64,
}

/// How far from the expected value a code may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// TOTP: steps accepted either side of the expected one (a setting; 1 by default).
    pub totp_steps: u32,
    /// HOTP: counter values accepted ahead of the expected one (a setting; 10 by default).
    pub hotp_look_ahead: u32,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            totp_steps: 1,
            hotp_look_ahead: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OathError {
    /// Not the right number of digits, or not digits at all.
    #[error("the code must be {digits} digits")]
    Malformed { digits: u8 },
    #[error("the code is not valid")]
    WrongCode,
    #[error("the code has already been used")]
    Replayed,
    #[error("the token's parameters are not supported")]
    Unsupported,
}

impl OathError {
    pub fn code(&self) -> &'static str {
        match self {
            OathError::Malformed { .. } => "invalid_code_format",
            OathError::WrongCode => "invalid_code",
            OathError::Replayed => "code_already_used",
            OathError::Unsupported => "unsupported_token",
        }
    }
}
