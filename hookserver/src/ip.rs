//! Who is calling: the client address (socket peer, or `X-Forwarded-For` from a
//! trusted proxy), and the CIDR allow-list it must be in.

use crate::{config::Config, meta::MetaCache, rejection::Rejection};
use http::HeaderMap;
use ipnet::IpNet;
use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

/// The source-IP check of one router.
pub(crate) struct SourceCheck {
    trusted_proxies: AllowList,
    allowed: Allowed,
}

enum Allowed {
    /// `HOOKSERVER_ALLOWED_IPS`: fixed, never fetched.
    Fixed(AllowList),
    /// GitHub's `/meta` `hooks` ranges, cached.
    Meta(Arc<MetaCache>),
}

impl SourceCheck {
    pub(crate) fn new(config: &Config) -> Self {
        let allowed = match &config.allowed_ips {
            Some(nets) => Allowed::Fixed(AllowList::new(nets.iter().copied())),
            None => Allowed::Meta(Arc::new(MetaCache::new(config))),
        };
        let trusted_proxies = AllowList::new(config.trusted_proxies.iter().copied());
        Self {
            trusted_proxies,
            allowed,
        }
    }

    /// The meta cache, when the allow-list comes from GitHub.
    pub(crate) fn meta(&self) -> Option<&Arc<MetaCache>> {
        match &self.allowed {
            Allowed::Meta(meta) => Some(meta),
            Allowed::Fixed(_) => None,
        }
    }

    /// Resolves the client and checks it against the allow-list. Runs before the
    /// body is read, so a stranger costs us no more than its headers.
    pub(crate) async fn check(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<IpAddr, Rejection> {
        let Some(peer) = peer else {
            tracing::error!(
                "source-IP checking is on but the server gives no peer address: serve the app \
                 with hookserver::serve, or with into_make_service_with_connect_info::<SocketAddr>()"
            );
            return Err(Rejection::NoPeerAddress);
        };
        let client = client_ip(peer, headers, &self.trusted_proxies)?;
        let allowed = match &self.allowed {
            Allowed::Fixed(list) => list.contains(client),
            Allowed::Meta(meta) => meta.allow_list().await?.contains(client),
        };
        if allowed {
            Ok(client)
        } else {
            tracing::debug!(%client, "source address outside the allow-list");
            Err(Rejection::ForbiddenSource)
        }
    }
}

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

/// A set of CIDRs, merged into sorted, disjoint ranges so that `contains` is a
/// binary search, with no parsing and no allocation per lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl AllowList {
    /// The list of `nets`. The IPv4-mapped part of an IPv6 network
    /// (`::ffff:0:0/96`) is stored as IPv4, since lookups match mapped addresses as
    /// IPv4.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        const MAPPED_START: u128 = 0xffff_0000_0000;
        const MAPPED_END: u128 = 0xffff_ffff_ffff;
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net.trunc() {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => {
                    let (start, end) = (u128::from(n.network()), u128::from(n.broadcast()));
                    v6.push((start, end));
                    // A wider net (`::/0`, `::ffff:0:0/95`) covers mapped addresses too.
                    let (from, to) = (start.max(MAPPED_START), end.min(MAPPED_END));
                    if from <= to {
                        // In the mapped range, so both fit 32 bits after the subtraction.
                        let low = |x: u128| u32::try_from(x - MAPPED_START).unwrap_or(u32::MAX);
                        v4.push((low(from), low(to)));
                    }
                }
            }
        }
        Self {
            v4: merge(v4),
            v6: merge(v6),
        }
    }

    /// Whether `ip` (IPv4-mapped IPv6 matched as IPv4) is in the list.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => in_ranges(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => in_ranges(&self.v6, u128::from(ip)),
        }
    }

    /// True when the list holds no range at all.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// How many disjoint ranges the list holds after merging.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }
}

fn merge<T: Ord + Copy + num_like::Succ>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if last.1.succ().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end)
            }
            _ => merged.push((start, end)),
        }
    }
    merged
}

fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= x);
    after > 0 && x <= ranges[after - 1].1
}

mod num_like {
    /// The next integer, `None` at the maximum.
    pub(super) trait Succ: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl Succ for u32 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Option<Self> {
            self.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::net::Ipv4Addr;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn github() -> AllowList {
        AllowList::new(nets(&[
            "192.30.252.0/22",
            "185.199.108.0/22",
            "140.82.112.0/20",
            "143.55.64.0/20",
            "2a0a:a440::/29",
            "2606:50c0::/32",
        ]))
    }

    #[test]
    fn contains_edges_of_each_range() {
        let list = github();
        for inside in [
            "192.30.252.0",
            "192.30.255.255",
            "140.82.112.1",
            "143.55.79.255",
            "2a0a:a440::1",
            "2a0a:a447:ffff::1",
            "2606:50c0:ffff::",
        ] {
            assert!(list.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "192.30.251.255",
            "192.30.0.1",
            "140.82.128.0",
            "127.0.0.1",
            "2a0a:a448::",
            "2606:50c1::",
            "::1",
            "0.0.0.0",
        ] {
            assert!(!list.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_as_ipv4() {
        let list = github();
        assert!(list.contains(ip("::ffff:192.30.252.1")));
        assert!(!list.contains(ip("::ffff:10.0.0.1")));
        let mapped_net = AllowList::new(nets(&["::ffff:10.0.0.0/104"]));
        assert!(mapped_net.contains(ip("10.1.2.3")));
    }

    #[test]
    fn ipv6_nets_covering_mapped_addresses_match_them() {
        // Found by property testing: a net wider than ::ffff:0:0/96 must cover the
        // mapped addresses the narrower one covers.
        for wide in [
            "::/0",
            "::ffff:0:0/95",
            "::ffff:0:0/96",
            "::ffff:1.2.0.0/112",
        ] {
            let list = AllowList::new(nets(&[wide]));
            assert!(list.contains(ip("::ffff:1.2.3.4")), "{wide}");
            assert!(list.contains(ip("1.2.3.4")), "{wide}");
        }
        let partial = AllowList::new(nets(&["::ffff:1.2.0.0/112"]));
        assert!(!partial.contains(ip("1.3.0.0")));
        assert!(!AllowList::new(nets(&["2001:db8::/32"])).contains(ip("1.2.3.4")));
    }

    #[test]
    fn trusted_proxies_written_as_mapped_addresses_match() {
        let trusted = AllowList::new(nets(&["::ffff:10.0.0.0/104"]));
        let h = xff(&["192.30.252.1"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &h, &trusted).unwrap(),
            ip("192.30.252.1")
        );
    }

    #[test]
    fn merges_overlapping_and_adjacent_ranges() {
        let list = AllowList::new(nets(&[
            "10.0.0.0/24",
            "10.0.1.0/24",
            "10.0.0.128/25",
            "255.255.255.255/32",
            "0.0.0.0/32",
            "10.0.0.5/8",
        ]));
        assert_eq!(
            list.v4,
            vec![
                (0, 0),
                (
                    u32::from(Ipv4Addr::new(10, 0, 0, 0)),
                    u32::from(Ipv4Addr::new(10, 255, 255, 255))
                ),
                (u32::MAX, u32::MAX)
            ]
        );
        assert!(list.contains(ip("255.255.255.255")) && list.contains(ip("0.0.0.0")));
        let all = AllowList::new(nets(&["::/0", "0.0.0.0/0"]));
        assert!(all.contains(ip("ffff::1")) && all.contains(ip("8.8.8.8")));
        assert!(AllowList::new([]).is_empty());
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
