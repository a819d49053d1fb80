//! End-to-end tests of the `twofold` binary: one test binary, each test with its own server.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin;
mod admin_console;
mod authentications;
mod cli;
mod console;
mod console_audit;
mod console_permissions;
mod console_settings;
mod console_users;
mod dev_inbox;
mod directory_users;
mod doctor;
mod edges;
mod email;
mod factors;
mod freeradius;
mod hygiene;
mod ldap;
mod ldap_users;
mod lockout;
mod mobile_app;
mod multinode;
mod operations;
mod policy;
mod portal;
mod portal_app;
mod portal_phones;
mod ports;
mod radius;
mod sdk;
mod sdk_phones;
mod security;
mod slapd;
mod smtp;
mod start;
mod systemd;
mod telephony;
mod twilio;
mod twilio_standin;
mod upgrades;
