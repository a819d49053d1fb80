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
///
/// `forwarded_for` is every `X-Forwarded-For` line of the request, in order: they are one
/// list (RFC 9110 §5.3). Some proxies (HAProxy's `option forwardfor`) add a line of their own
/// after the client's instead of appending to it, so reading only the first line would take
/// the client's own words for its address. A hop that is not a bare address (`ip:port`,
/// `unknown`, garbage) ends the walk: the header can only ever name an address that a trusted
/// proxy vouched for. `Forwarded` (RFC 7239) is not read at all.
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

/// Every `X-Forwarded-For` line joined into one list, in order. A line that is not visible
/// ASCII poisons the list (the walk then stops at it, as at any hop that does not parse).
fn forwarded_for(headers: &axum::http::HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("invalid"))
        .collect();
    (!lines.is_empty()).then(|| lines.join(","))
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
    let ip = client_ip(
        peer,
        forwarded_for(request.headers()).as_deref(),
        &state.inner.trusted_proxies,
    );
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
    fn a_client_sent_forwarded_for_line_before_the_proxys_own_line_is_not_believed() {
        // HAProxy's `option forwardfor` adds its own line after the client's.
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let mut headers = axum::http::HeaderMap::new();
        headers.append("x-forwarded-for", "10.1.2.3".parse().unwrap());
        headers.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        let joined = forwarded_for(&headers);
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), joined.as_deref(), &trusted),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn a_hop_that_does_not_parse_ends_the_walk_at_the_last_trusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        for header in [
            "10.9.9.9, 203.0.113.9:4711, 10.0.0.5",
            "10.9.9.9, unknown, 10.0.0.5",
            "10.9.9.9, , 10.0.0.5",
            "10.9.9.9,invalid,10.0.0.5",
        ] {
            assert_eq!(
                client_ip(Some(ip("10.0.0.2")), Some(header), &trusted),
                Some(ip("10.0.0.5")),
                "{header}"
            );
        }
        let mut headers = axum::http::HeaderMap::new();
        headers.append("x-forwarded-for", "10.9.9.9".parse().unwrap());
        headers.append(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        );
        headers.append("x-forwarded-for", "10.0.0.5".parse().unwrap());
        assert_eq!(
            client_ip(
                Some(ip("10.0.0.2")),
                forwarded_for(&headers).as_deref(),
                &trusted
            ),
            Some(ip("10.0.0.5")),
            "a line that is not ASCII stops the walk too"
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
