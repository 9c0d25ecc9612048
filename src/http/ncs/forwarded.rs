//! Who sent a request: the peer, or, behind trusted proxies, the address they saw.
//!
//! `X-Forwarded-For` is a list each proxy appends its peer to, so only the entries added
//! by proxies we trust are believed. Walking from the right, trusted proxies are
//! skipped and the first address that is not one is the client: anything to its left
//! was written by the client itself and proves nothing.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The client address, or `None` when a trusted proxy's header holds something that is
/// not an address (the chain cannot be followed, so nothing is believed).
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return Some(client);
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|h| !h.is_empty());
    for hop in hops.rev() {
        client = parse_hop(hop)?;
        if !is_trusted(&client) {
            return Some(client);
        }
    }
    // Every hop was a trusted proxy: the left-most is where the request began.
    Some(client)
}

/// `1.2.3.4`, `2001:db8::1`, and the `1.2.3.4:5678` / `[2001:db8::1]:80` some proxies write.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            hop.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let got = client_address(ip("198.51.100.9"), &["203.0.113.7"], &nets(&["10.0.0.0/8"]));
        assert_eq!(got, Some(ip("198.51.100.9")));
        assert_eq!(
            client_address(ip("10.1.1.1"), &["203.0.113.7"], &[]),
            Some(ip("10.1.1.1"))
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.0.2.1/32"]);
        // The client forged the first entry; the proxies appended the rest.
        let got = client_address(
            ip("10.0.0.2"),
            &["1.1.1.1, 203.0.113.7, 192.0.2.1"],
            &trusted,
        );
        assert_eq!(got, Some(ip("203.0.113.7")));
    }

    #[test]
    fn several_headers_are_one_list_in_order() {
        let trusted = nets(&["10.0.0.0/8"]);
        let got = client_address(ip("10.0.0.2"), &["203.0.113.7", "10.9.9.9"], &trusted);
        assert_eq!(got, Some(ip("203.0.113.7")));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let trusted = nets(&["127.0.0.1/32"]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &[], &trusted),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(
            client_address(ip("127.0.0.1"), &[" , "], &trusted),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn when_every_hop_is_trusted_the_left_most_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let got = client_address(ip("10.0.0.2"), &["10.0.0.5, 10.0.0.4"], &trusted);
        assert_eq!(got, Some(ip("10.0.0.5")));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.2"), &["203.0.113.7:4711"], &trusted),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(
            client_address(ip("::1"), &["[2001:db8::7]:443"], &trusted),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            client_address(ip("::1"), &["[2001:db8::8]"], &trusted),
            Some(ip("2001:db8::8"))
        );
        // A mapped untrusted peer is reported as plain IPv4, as lists hold it.
        assert_eq!(
            client_address(ip("::ffff:203.0.113.7"), &[], &trusted),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn garbage_from_a_trusted_proxy_is_believed_by_nobody() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_address(ip("10.0.0.2"), &["unknown"], &trusted), None);
        // Garbage left of the client is the client's own writing and never read.
        assert_eq!(
            client_address(ip("10.0.0.2"), &["nonsense, 203.0.113.7"], &trusted),
            Some(ip("203.0.113.7"))
        );
    }
}
