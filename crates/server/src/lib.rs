//! Twofold's server: configuration, the store, the HTTP layer and the portal.

pub mod channels;
pub mod config;
pub mod directory;
pub mod doctor;
pub mod secrets;
pub mod serve;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
