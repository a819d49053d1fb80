//! Secrets at rest: AES-256-GCM sealing of OATH seeds (and later device keys).
