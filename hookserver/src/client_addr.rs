//! Who is calling: the socket peer, or the `X-Forwarded-For` address a trusted
//! proxy vouches for. Only the proxies' own hops are believed.

use crate::{allow_list::AllowList, rejection::Rejection};
use http::HeaderMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The client address: the socket peer, unless the peer is a trusted proxy, in which
/// case `X-Forwarded-For` is read from the right: the first address that is not
/// itself a trusted proxy is the client (all trusted: the leftmost). IPv4-mapped
/// IPv6 addresses count as the IPv4 address they carry.
pub(crate) fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &AllowList,
) -> Result<IpAddr, Rejection> {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.contains(*ip);
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    // Every X-Forwarded-For line, in order, is one list; the peer appended last.
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().map_err(|_| Rejection::BadForwardedFor)?;
        for hop in value.split(',') {
            hops.push(parse_hop(hop.trim()).ok_or(Rejection::BadForwardedFor)?);
        }
    }
    Ok(hops
        .iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(ip))
        .or(hops.first().copied())
        .unwrap_or(peer))
}

/// One `X-Forwarded-For` entry: an address, optionally with a port as some proxies
/// write it (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<Ipv6Addr>()
                .ok()
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow_list::test_support::{ip, nets};
    use http::HeaderValue;

    #[test]
    fn trusted_proxies_written_as_mapped_addresses_match() {
        let trusted = AllowList::new(nets(&["::ffff:10.0.0.0/104"]));
        let h = xff(&["192.30.252.1"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted).unwrap(),
            ip("192.30.252.1")
        );
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted = AllowList::new(nets(&["10.0.0.0/8"]));
        let claim = xff(&["192.30.252.1"]);
        // Untrusted peer: the header is ignored, even when it is garbage.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &claim, &trusted).unwrap(),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), &xff(&["garbage"]), &trusted).unwrap(),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &claim, &AllowList::default()).unwrap(),
            ip("10.0.0.2")
        );
        // Trusted peer: the header is believed.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &claim, &trusted).unwrap(),
            ip("192.30.252.1")
        );
        // Trusted peer without the header: the peer itself.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted).unwrap(),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn forwarded_for_rightmost_untrusted_wins() {
        let trusted = AllowList::new(nets(&["10.0.0.0/8"]));
        // A client can prepend anything; only what our proxies appended counts.
        let h = xff(&["192.30.252.1, 203.0.113.7, 10.1.1.1"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted).unwrap(),
            ip("203.0.113.7")
        );
        // Several header lines form one list.
        let h = xff(&["192.30.252.1", "203.0.113.7", "10.1.1.1"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted).unwrap(),
            ip("203.0.113.7")
        );
        // All trusted: the leftmost.
        let h = xff(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted).unwrap(),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn forwarded_for_forms_and_mapped_addresses() {
        let trusted = AllowList::new(nets(&["127.0.0.1/32", "::1/128"]));
        for (value, want) in [
            ("192.30.252.1:4711", "192.30.252.1"),
            ("[2a0a:a440::1]:443", "2a0a:a440::1"),
            ("[2a0a:a440::1]", "2a0a:a440::1"),
            ("::ffff:192.30.252.1", "192.30.252.1"),
            (" 192.30.252.1 ", "192.30.252.1"),
        ] {
            assert_eq!(
                client_ip(ip("127.0.0.1"), &xff(&[value]), &trusted).unwrap(),
                ip(want),
                "{value}"
            );
        }
        // A mapped peer is unwrapped before the trust check.
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &xff(&["192.30.252.1"]), &trusted).unwrap(),
            ip("192.30.252.1")
        );
    }

    #[test]
    fn unparsable_forwarded_for_is_a_400() {
        let trusted = AllowList::new(nets(&["127.0.0.1/32"]));
        for bad in [
            "github.com",
            "",
            "1.2.3.4, ",
            "1.2.3",
            "unknown",
            "1.2.3.4;proto=https",
        ] {
            let err = client_ip(ip("127.0.0.1"), &xff(&[bad]), &trusted).unwrap_err();
            assert_eq!(err, Rejection::BadForwardedFor, "{bad:?}");
            assert_eq!(err.status().as_u16(), 400);
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff1.2.3.4").unwrap(),
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &h, &trusted).unwrap_err(),
            Rejection::BadForwardedFor
        );
    }
}
