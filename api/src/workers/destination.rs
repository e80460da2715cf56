//! Where webhooks may go: not to the server's own network.
//!
//! A webhook URL is chosen by a tenant admin, and the server POSTs to it from inside the
//! operator's network, so an unchecked URL would let a tenant reach loopback services, the
//! private network or a cloud metadata endpoint (`169.254.169.254`). Every address a
//! destination resolves to must be public, unless the operator allowed it
//! (`SWITCHYARD_WEBHOOK_ALLOW`). The check runs when a webhook is created and again at every
//! delivery: the HTTP client resolves names through [`GuardedResolver`], so the addresses it
//! connects to are the ones that were checked (a name that re-resolves to an internal address
//! after creation, DNS rebinding, is refused too). Redirects are not followed and proxies are
//! not used, for the same reason.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("credentials in the URL are not allowed (use the signing secret)")]
    Credentials,
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("cannot resolve `{0}`")]
    Unresolved(String),
    #[error("`{host}` resolves to {addr}, a loopback, private, link-local or reserved address: refused")]
    Internal { host: String, addr: IpAddr },
}

/// The destinations policy: public addresses, plus what the operator allowed.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    allow: Arc<Vec<IpNet>>,
}

impl Destinations {
    pub fn new(allow: Vec<IpNet>) -> Destinations {
        Destinations { allow: Arc::new(allow) }
    }

    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|net| net.contains(&ip)) || !is_internal(ip)
    }

    /// Parses and checks a webhook URL: scheme, host, and every address it resolves to.
    pub async fn check_url(&self, raw: &str) -> Result<Url, DestinationError> {
        let url = parse_url(raw)?;
        let host = url.host_str().ok_or(DestinationError::NoHost)?.to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        self.resolve(&host, port).await?;
        Ok(url)
    }

    /// Resolves `host` (a name or an address literal) and checks every address.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DestinationError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| DestinationError::Unresolved(host.to_string()))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(DestinationError::Unresolved(host.to_string()));
        }
        if let Some(bad) = addrs.iter().find(|a| !self.is_allowed(a.ip())) {
            return Err(DestinationError::Internal { host: host.to_string(), addr: bad.ip() });
        }
        Ok(addrs)
    }
}

/// A URL's shape, without resolving it.
pub fn parse_url(raw: &str) -> Result<Url, DestinationError> {
    if raw.len() > MAX_URL_LEN {
        return Err(DestinationError::TooLong);
    }
    let url = Url::parse(raw.trim()).map_err(|e| DestinationError::NotAUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DestinationError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(DestinationError::NoHost);
    }
    Ok(url)
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Loopback, private, shared (CGNAT), link-local (metadata services), multicast,
/// documentation, benchmarking and reserved ranges: nothing a public webhook lives at.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                        // 0.0.0.0/8 "this network"
        || a == 10                                // 10/8 private
        || (a == 100 && (64..128).contains(&b))   // 100.64/10 shared (CGNAT; some clouds' metadata)
        || a == 127                               // loopback
        || (a == 169 && b == 254)                 // link-local, 169.254.169.254 metadata
        || (a == 172 && (16..32).contains(&b))    // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)         // 192.0.0/24 protocol assignments
        || (a == 192 && b == 0 && c == 2)         // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)       // 6to4 relay anycast
        || (a == 192 && b == 168)                 // 192.168/16 private
        || (a == 198 && (b == 18 || b == 19))     // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100)      // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)       // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()                           // ::
        || ip.is_loopback()                       // ::1
        || (s[0] & 0xfe00) == 0xfc00              // fc00::/7 unique local (fd00:ec2::254 metadata)
        || (s[0] & 0xffc0) == 0xfe80              // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0              // fec0::/10 site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00              // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8)     // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard
        || (s[0] == 0x0064 && s[1] == 0xff9b)     // 64:ff9b::/96 NAT64: may reach IPv4 anywhere
        || (s[0] == 0x2002)                       // 6to4: embeds an IPv4 address
        || (s[0..6] == [0, 0, 0, 0, 0, 0]) // ::/96 IPv4-compatible (deprecated)
}

/// The HTTP client's resolver: the system's, with every address checked by [`Destinations`].
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Destinations);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs =
                policy.resolve(&host, 0).await.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn internal_ranges_are_refused_and_public_ones_pass() {
        for bad in [
            "127.0.0.1",
            "127.3.2.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(is_internal(ip(bad)), "{bad} should be internal");
        }
        for good in ["1.1.1.1", "8.8.8.8", "172.15.0.1", "172.32.0.1", "100.63.0.1", "2606:4700::1111"] {
            assert!(!is_internal(ip(good)), "{good} should be public");
        }
    }

    #[test]
    fn the_allow_list_opens_exactly_what_it_names() {
        let d = Destinations::new(crate::config::parse_nets("127.0.0.1, 10.9.0.0/16").expect("nets"));
        assert!(d.is_allowed(ip("127.0.0.1")));
        assert!(d.is_allowed(ip("::ffff:127.0.0.1")));
        assert!(!d.is_allowed(ip("127.0.0.2")));
        assert!(d.is_allowed(ip("10.9.8.7")));
        assert!(!d.is_allowed(ip("10.8.0.1")));
        assert!(!d.is_allowed(ip("::1")));
        assert!(d.is_allowed(ip("8.8.8.8")));
    }

    #[tokio::test]
    async fn urls_are_checked_before_anything_is_sent() {
        let d = Destinations::default();
        assert_eq!(d.check_url("ftp://example.com/").await, Err(DestinationError::Scheme));
        assert_eq!(d.check_url("https://user:pw@example.com/").await, Err(DestinationError::Credentials));
        assert!(matches!(d.check_url("not a url").await, Err(DestinationError::NotAUrl(_))));
        assert!(matches!(
            d.check_url("http://169.254.169.254/latest/meta-data").await,
            Err(DestinationError::Internal { .. })
        ));
        assert!(matches!(d.check_url("http://[::1]:8080/").await, Err(DestinationError::Internal { .. })));
        assert!(matches!(d.check_url("http://10.0.0.1/hook").await, Err(DestinationError::Internal { .. })));
        // `localhost` resolves (from /etc/hosts) to loopback addresses only.
        assert!(matches!(d.check_url("http://localhost:9/").await, Err(DestinationError::Internal { .. })));
        let open = Destinations::new(crate::config::parse_nets("127.0.0.1").expect("nets"));
        assert!(open.check_url("http://127.0.0.1:9/hook").await.is_ok());
    }
}
