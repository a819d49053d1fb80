//! The reference client of Twofold's mobile app protocol (`/app/v1`, see
//! `docs/mobile-app.md`): device keys, the signed requests and answers, the accounts file,
//! offline codes and activation QR codes. The `twofold-authenticator` binary is a thin
//! command line over these modules.

pub mod client;
pub mod keys;
pub mod protocol;
pub mod qr;
pub mod store;
pub mod totp;
