//! `twofold-authenticator`: the reference client of the mobile app protocol.

fn main() {}
