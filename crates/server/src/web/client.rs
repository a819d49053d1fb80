//! Who the client is: their address (believing `X-Forwarded-For` only from trusted proxies)
//! and user agent.

use super::AppState;
use crate::service::ClientContext;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// The client as resolved for this request.
#[derive(Debug, Clone, Default)]
pub struct Client(pub ClientContext);

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most address of `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    // An IPv4 client of a socket bound to `[::]` arrives as `::ffff:a.b.c.d`: use the IPv4
    // address, so that IPv4 ranges in the settings match.
    client_ip_raw(peer.map(|p| p.to_canonical()), forwarded_for, trusted)
}

fn client_ip_raw(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else {
        return Some(peer);
    };
    // Walk from the right: each trusted hop vouches for the one before it. Stop at the first
    // address no trusted proxy added, or at anything that is not an address.
    let mut client = peer;
    for hop in header.rsplit(',').map(str::trim) {
        let Ok(hop) = hop.parse::<IpAddr>() else {
            break;
        };
        let hop = hop.to_canonical();
        client = hop;
        if !is_trusted(&hop) {
            break;
        }
    }
    Some(client)
}

pub(super) async fn resolve_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = client_ip(peer, forwarded, &state.inner.trusted_proxies);
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    request.extensions_mut().insert(Client(ClientContext {
        ip,
        user_agent,
        actor: None,
    }));
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Client>()
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_ranges() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(Some(ip("::ffff:10.1.2.3")), None, &trusted),
            Some(ip("10.1.2.3"))
        );
        assert_eq!(
            client_ip(Some(ip("::ffff:10.0.0.2")), Some("203.0.113.9"), &trusted),
            Some(ip("203.0.113.9")),
            "a mapped proxy address is a trusted proxy"
        );
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(Some(ip("192.0.2.1")), Some("203.0.113.9"), &trusted),
            Some(ip("192.0.2.1"))
        );
    }

    #[test]
    fn forwarded_for_from_a_trusted_proxy_gives_the_first_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            client_ip(
                Some(ip("10.0.0.2")),
                Some("198.51.100.7, 203.0.113.9, 10.0.0.5"),
                &trusted
            ),
            Some(ip("203.0.113.9")),
            "a client-supplied left-most value cannot spoof the address"
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), None, &trusted),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), Some("2001:db8::1"), &trusted),
            Some(ip("2001:db8::1"))
        );
    }
}
