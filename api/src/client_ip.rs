//! The client's address of a request, behind trusted reverse proxies
//! (`SWITCHYARD_TRUSTED_PROXIES`): what the per-IP rate limit, the login attempt limits and the
//! logs (`client.ip` on the request span) count and show.
//!
//! The connection's peer is the client, unless the peer is a trusted proxy: then the client is
//! read from `X-Forwarded-For` (every such header, in order, as one comma-separated list), walked
//! from the right, since each proxy appends the address it got the request from and only the
//! entries the trusted proxies added can be believed:
//!
//! * a trusted address is skipped (one more proxy of ours);
//! * the first untrusted address is the client;
//! * when every address is trusted, the leftmost is;
//! * an entry that is not an address (`unknown`, garbage, a header that is not text) ends the
//!   walk: the last good address is the client (the peer, when it was the rightmost entry).
//!
//! A header from a peer that is not trusted is ignored: anyone can write one. Entries are
//! addresses (`192.0.2.7`, `2001:db8::7`), optionally with a port (`192.0.2.7:4711`,
//! `[2001:db8::7]:4711`) or in brackets; IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`, what a
//! dual-stack listener sees) count as the IPv4 address, for the trusted list and the answer.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The client's address: `peer`, or, when `peer` is in `trusted`, the one `X-Forwarded-For`
/// names (see the module's documentation).
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let values: Vec<_> = headers.get_all(FORWARDED_FOR).iter().collect();
    for value in values.into_iter().rev() {
        let Ok(list) = value.to_str() else { return client };
        for entry in list.rsplit(',') {
            let Some(ip) = parse_entry(entry) else { return client };
            client = ip;
            if !is_trusted(&ip) {
                return ip;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, maybe with a port or in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim_matches([' ', '\t']);
    let ip =
        entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip())).or_else(|| {
            entry.strip_prefix('[')?.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// The client's address of a request: its peer (known when the server runs with
/// `into_make_service_with_connect_info`, as `serve` does) resolved against `trusted`.
pub fn of_request(extensions: &Extensions, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let ConnectInfo(peer) = extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(resolve(peer.ip(), headers, trusted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(s: &str) -> Vec<IpNet> {
        crate::config::parse_nets(s).expect("nets")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    /// Headers with one `X-Forwarded-For` per value.
    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let trusted = nets("10.0.0.0/8");
        let spoofed = xff(&["203.0.113.9"]);
        assert_eq!(resolve(ip("192.0.2.1"), &spoofed, &trusted), ip("192.0.2.1"));
        // No trusted proxies at all: the header is never read.
        assert_eq!(resolve(ip("10.0.0.1"), &spoofed, &[]), ip("10.0.0.1"));
        // A forged chain of "trusted" addresses from an untrusted peer changes nothing either.
        assert_eq!(resolve(ip("192.0.2.1"), &xff(&["10.0.0.5, 10.0.0.6"]), &trusted), ip("192.0.2.1"));
    }

    #[test]
    fn a_trusted_peer_names_the_client() {
        let trusted = nets("127.0.0.1");
        assert_eq!(resolve(ip("127.0.0.1"), &xff(&["203.0.113.9"]), &trusted), ip("203.0.113.9"));
        // No header: the proxy itself.
        assert_eq!(resolve(ip("127.0.0.1"), &HeaderMap::new(), &trusted), ip("127.0.0.1"));
        // Whitespace and ports are fine.
        assert_eq!(resolve(ip("127.0.0.1"), &xff(&["  203.0.113.9:4711 "]), &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn chains_are_walked_from_the_right_skipping_trusted_proxies() {
        let trusted = nets("10.0.0.0/8, 127.0.0.1");
        // client, spoofed by the client, then what our proxies appended.
        let h = xff(&["198.51.100.66, 203.0.113.9, 10.1.2.3"]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("203.0.113.9"), "the leftmost is the client's own claim");
        // The same chain split over several headers, in order.
        let h = xff(&["198.51.100.66", "203.0.113.9, 10.1.2.3", "10.9.9.9"]);
        assert_eq!(resolve(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.9"));
        // Every entry trusted: the leftmost.
        let h = xff(&["10.0.0.7, 10.0.0.8"]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("10.0.0.7"));
        // An untrusted proxy in the middle is as far as the walk can believe.
        let h = xff(&["203.0.113.9, 192.0.2.50, 10.0.0.8"]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("192.0.2.50"));
    }

    #[test]
    fn ipv6_peers_entries_and_mapped_addresses() {
        let trusted = nets("2001:db8:1::/48, 127.0.0.1");
        let h = xff(&["2001:db8:ffff::9, 2001:db8:1::2"]);
        assert_eq!(resolve(ip("2001:db8:1::1"), &h, &trusted), ip("2001:db8:ffff::9"));
        assert_eq!(resolve(ip("2001:db8:1::1"), &xff(&["[2001:db8:ffff::9]:443"]), &trusted), ip("2001:db8:ffff::9"));
        assert_eq!(resolve(ip("2001:db8:1::1"), &xff(&["[2001:db8:ffff::9]"]), &trusted), ip("2001:db8:ffff::9"));
        // A dual-stack listener sees 127.0.0.1 as ::ffff:127.0.0.1: still the trusted proxy.
        assert_eq!(resolve(ip("::ffff:127.0.0.1"), &xff(&["::ffff:203.0.113.9"]), &trusted), ip("203.0.113.9"));
        assert_eq!(resolve(ip("::ffff:192.0.2.1"), &xff(&["203.0.113.9"]), &trusted), ip("192.0.2.1"));
        // An IPv6 peer outside the block is not trusted.
        assert_eq!(resolve(ip("2001:db8:2::1"), &xff(&["203.0.113.9"]), &trusted), ip("2001:db8:2::1"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_good_address() {
        let trusted = nets("10.0.0.0/8");
        let peer = ip("10.0.0.1");
        for bad in ["unknown", "", " , ", "not an ip", "203.0.113.9/24", "fe80::1%eth0", "203.0.113.9, junk"] {
            assert_eq!(resolve(peer, &xff(&[bad]), &trusted), peer, "{bad:?}");
        }
        // Garbage left of the client is never reached.
        assert_eq!(resolve(peer, &xff(&["junk, 203.0.113.9"]), &trusted), ip("203.0.113.9"));
        // Garbage behind a trusted hop: that hop is the last good address.
        assert_eq!(resolve(peer, &xff(&["203.0.113.9, junk, 10.0.0.9"]), &trusted), ip("10.0.0.9"));
        // A header that is not text stops the walk too.
        let mut h = xff(&["203.0.113.9"]);
        h.append(FORWARDED_FOR, HeaderValue::from_bytes(b"10.0.0.9\xff").expect("opaque header"));
        assert_eq!(resolve(peer, &h, &trusted), peer);
    }

    #[test]
    fn requests_without_connection_info_have_no_client() {
        assert_eq!(of_request(&Extensions::new(), &xff(&["203.0.113.9"]), &nets("0.0.0.0/0")), None);
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))));
        let trusted = nets("127.0.0.1");
        assert_eq!(of_request(&ext, &xff(&["203.0.113.9"]), &trusted), Some(ip("203.0.113.9")));
        assert_eq!(of_request(&ext, &xff(&["203.0.113.9"]), &[]), Some(ip("127.0.0.1")));
    }
}
