//! Ports for the peers the tests start (FreeRADIUS, aiosmtpd) that cannot be told to pick
//! their own: below 32768, where loopback sockets in TIME-WAIT never sit.

use std::net::{TcpListener, UdpSocket};

fn free_port(is_free: impl Fn(u16) -> bool, kind: &str) -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for i in 0..2000u32 {
        let port = 10_000 + ((seed.wrapping_add(i.wrapping_mul(7919))) % 22_000) as u16;
        if is_free(port) {
            return port;
        }
    }
    panic!("no free {kind} port below 32768");
}

/// A UDP port on 127.0.0.1 that nothing uses now.
pub(crate) fn free_udp_port() -> u16 {
    free_port(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok(), "UDP")
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
pub(crate) fn free_tcp_port() -> u16 {
    free_port(|p| TcpListener::bind(("127.0.0.1", p)).is_ok(), "TCP")
}
