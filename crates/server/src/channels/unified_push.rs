//! Wake-ups to authenticator apps through their UnifiedPush endpoint (ntfy, for example).
//!
//! The body holds no secret: `{"type":"twofold.wake","v":1}`. The app wakes and long-polls
//! `/app/v1/requests`. An endpoint is a URL a device gave, so the server applies the
//! UnifiedPush specification's rules against server-side request forgery before it POSTs:
//! http(s) only, no credentials in the URL, every address the host resolves to public
//! (unless `[app] allow_private_push_endpoints`), the connection made to the address that
//! was checked (no second lookup, no DNS rebinding), no redirects, a short timeout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What a wake-up carries.
pub const WAKE_BODY: &str = r#"{"type":"twofold.wake","v":1}"#;
/// The longest an endpoint URL may be.
const MAX_ENDPOINT: usize = 2048;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Posts wake-ups to UnifiedPush endpoints.
#[derive(Clone)]
pub struct WakeSender {
    allow_private: bool,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for WakeSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeSender")
            .field("allow_private", &self.allow_private)
            .finish()
    }
}

impl WakeSender {
    pub fn new(allow_private: bool) -> WakeSender {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(found.certs);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = match rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
        {
            Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
            // ring supports the default versions; this cannot fail in practice.
            Err(_) => rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        WakeSender {
            allow_private,
            tls: Arc::new(config),
        }
    }

    /// Checks an endpoint's form (when a device registers it): the scheme, no credentials, a
    /// host. Its addresses are checked when it is used.
    pub fn check_form(endpoint: &str) -> Result<url::Url, String> {
        if endpoint.len() > MAX_ENDPOINT {
            return Err(format!("longer than {MAX_ENDPOINT} characters"));
        }
        let url = url::Url::parse(endpoint).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!(
                "the scheme {:?} is not allowed; use https:// (or http://)",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a user name or password in the URL is not allowed".into());
        }
        if url.host().is_none() {
            return Err("the URL has no host".into());
        }
        Ok(url)
    }

    /// The addresses `endpoint` may be reached at, all of them allowed, or why not.
    pub async fn resolve(&self, endpoint: &str) -> Result<(url::Url, Vec<SocketAddr>), String> {
        let url = Self::check_form(endpoint)?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "the URL has no port".to_string())?;
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(url::Host::Domain(name)) => {
                tokio::time::timeout(TIMEOUT, tokio::net::lookup_host((name.to_owned(), port)))
                    .await
                    .map_err(|_| format!("looking up {name} took too long"))?
                    .map_err(|e| format!("{name} cannot be looked up ({e})"))?
                    .collect()
            }
            None => return Err("the URL has no host".into()),
        };
        if addrs.is_empty() {
            return Err("the host has no address".into());
        }
        if !self.allow_private
            && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            return Err(format!(
                "it reaches {}, a private, loopback or otherwise non-public address",
                bad.ip()
            ));
        }
        Ok((url, addrs))
    }

    /// Posts a wake-up to `endpoint`, to the address checked, without following redirects.
    pub async fn wake(&self, endpoint: &str) -> Result<(), String> {
        let (url, addrs) = self.resolve(endpoint).await?;
        let mut builder = reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT);
        if let Some(url::Host::Domain(name)) = url.host() {
            builder = builder.resolve_to_addrs(name, &addrs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("the HTTP client cannot be built ({e})"))?;
        let response = client
            .post(url)
            .header("Content-Type", "application/json")
            .header("TTL", "120")
            .header("Urgency", "high")
            .body(WAKE_BODY)
            .send()
            .await
            .map_err(|e| format!("the endpoint cannot be reached ({e})"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {status}"))
        }
    }
}

/// Whether an address is one a server on the internet may be reached at.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10).
        || (a == 100 && (64..=127).contains(&b))
        // IETF protocol assignments (192.0.0.0/24) and benchmarking (198.18.0.0/15).
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        // Reserved (240.0.0.0/4).
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        // Documentation (2001:db8::/32).
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // NAT64 well-known prefix and IPv4-compatible forms reach IPv4 space.
        || (s[0] == 0x0064 && s[1] == 0xff9b)
        || (s[0..6] == [0, 0, 0, 0, 0, 0]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_http_urls_without_credentials_are_endpoints() {
        assert!(WakeSender::check_form("https://ntfy.example.net/upAbc").is_ok());
        assert!(WakeSender::check_form("http://ntfy.example.net/upAbc").is_ok());
        for bad in [
            "ftp://ntfy.example.net/x",
            "file:///etc/passwd",
            "https://user:pw@ntfy.example.net/x",
            "gopher://x",
            "not a url",
        ] {
            assert!(WakeSender::check_form(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_loopback_endpoint_is_refused_unless_allowed() {
        let strict = WakeSender::new(false);
        let err = strict.resolve("http://127.0.0.1:9/up").await.unwrap_err();
        assert!(err.contains("127.0.0.1"), "{err}");
        let err = strict.resolve("http://localhost:9/up").await.unwrap_err();
        assert!(err.contains("non-public"), "{err}");
        let open = WakeSender::new(true);
        assert!(open.resolve("http://127.0.0.1:9/up").await.is_ok());
    }
}
