//! The client's address. Footfall runs behind a CDN or a reverse proxy, so the TCP peer is
//! usually a proxy; `X-Forwarded-For` is believed only when the peer is a configured trusted proxy, and then
//! read right to left, skipping further trusted hops, so a client cannot forge its address
//! by sending its own `X-Forwarded-For`.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// The address of the client behind `peer`: `peer` itself unless it is a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: stop believing anything further left.
            None => break,
        }
    }
    client
}

/// What a per-client limit counts as one client: an IPv4 address (also when written as an
/// IPv4-mapped IPv6 address), or the /64 prefix of an IPv6 address — one subscriber is
/// usually handed a whole /64, so counting single IPv6 addresses would make one client look
/// like billions.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:567`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn untrusted_peer_header_ignored() {
        let got = client_ip(ip("203.0.113.1"), &headers("1.1.1.1"), &[]);
        assert_eq!(got, ip("203.0.113.1"));
    }

    #[test]
    fn trusted_proxy_chain_read_right_to_left() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        // Client forged "6.6.6.6"; the real client is 198.51.100.4, then two internal hops.
        let got = client_ip(
            ip("10.0.0.2"),
            &headers("6.6.6.6, 198.51.100.4, 10.0.0.9"),
            &trusted,
        );
        assert_eq!(got, ip("198.51.100.4"));
    }

    #[test]
    fn ports_and_ipv6() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers("[2001:db8::1]:443"), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers("192.0.2.1:5555"), &trusted),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn limits_count_ipv6_by_prefix() {
        assert_eq!(limit_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            limit_key(ip("2001:db8:1:2:ffff:1:2:3")),
            limit_key(ip("2001:db8:1:2::9"))
        );
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn garbage_stops_the_walk() {
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().expect("net")];
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers("1.2.3.4, nonsense"), &trusted),
            ip("127.0.0.1")
        );
    }
}
