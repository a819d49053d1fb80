//! Twofold's domain logic.
//!
//! Everything here is pure: no HTTP, no SQL, no clocks or randomness that a test cannot
//! control. The server crate stores what these types describe and serves what they decide.

pub mod admin;
pub mod answers;
pub mod app;
pub mod audit;
pub mod authentication;
pub mod clock;
pub mod contact;
pub mod error;
pub mod flow;
pub mod language;
pub mod lockout;
pub mod oath;
pub mod password;
pub mod phone;
pub mod phone_call;
pub mod pin;
pub mod settings;
pub mod sign_in;
pub mod step_up;
pub mod token_import;
pub mod username;

pub use audit::{AuditAction, AuditEvent, AuditOutcome};
pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
pub use error::DomainError;
pub use language::Language;
pub use lockout::{LockoutPolicy, LockoutState};
pub use password::{PasswordError, PasswordHasher};
pub use settings::Settings;
pub use username::{Username, UsernameError};
