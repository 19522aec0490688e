//! The CIDR allow-list: sets of networks merged into sorted ranges, asked
//! "contains?" per delivery by binary search. `meta` fills one from GitHub's
//! answer; the source check reads it. No I/O here.

use ipnet::IpNet;
use std::net::IpAddr;

/// A set of CIDRs, merged into sorted, disjoint ranges so that `contains` is a
/// binary search, with no parsing and no allocation per lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AllowList {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl AllowList {
    /// The list of `nets`. The IPv4-mapped part of an IPv6 network
    /// (`::ffff:0:0/96`) is stored as IPv4, since lookups match mapped addresses as
    /// IPv4.
    pub(crate) fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
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
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(ip) => in_ranges(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => in_ranges(&self.v6, u128::from(ip)),
        }
    }

    /// How many disjoint ranges the list holds after merging.
    pub(crate) fn len(&self) -> usize {
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

/// A CIDR (`10.0.0.0/8`) or a bare address (`10.0.0.1`, `::1`).
pub(crate) fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Short spellings for the tests of this module and of `client_addr`.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    pub(crate) fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::{test_support::*, *};
    use std::net::Ipv4Addr;

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
        assert_eq!(AllowList::new([]).len(), 0);
    }
}
