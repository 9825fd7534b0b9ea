//! Address ranges that no geolocation database describes: private,
//! loopback, documentation and the like. An event from such a source is
//! labelled, never looked up. Pure, so that every range is unit-tested.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The label of a special-purpose address, or `None` for an address that
/// may be routed on the Internet (and so may be in a database).
///
/// Labels: `unspecified`, `loopback`, `private` (RFC 1918, fc00::/7),
/// `link-local`, `documentation` (RFC 5737, 2001:db8::/32, 3fff::/20),
/// `cgnat` (100.64.0.0/10), `multicast`, `broadcast`, `benchmarking`
/// (198.18.0.0/15) and `reserved` (0.0.0.0/8, 192.0.0.0/24, 240.0.0.0/4,
/// 100::/64, fec0::/10). An IPv4 address mapped into IPv6 (::ffff:a.b.c.d)
/// is labelled as the IPv4 address.
pub fn label(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => label_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => label_v4(v4),
            None => label_v6(v6),
        },
    }
}

/// `ip` as it is looked up: an IPv4-mapped IPv6 address as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn label_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: [([u8; 4], u32, &str); 15] = [
        ([0, 0, 0, 0], 32, "unspecified"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([0, 0, 0, 0], 8, "reserved"),
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([100, 64, 0, 0], 10, "cgnat"),
        ([198, 18, 0, 0], 15, "benchmarking"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    if in_v4(ip, [192, 0, 0, 0], 24) {
        return Some("reserved");
    }
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, l)| *l)
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == net & mask
}

fn label_v6(ip: Ipv6Addr) -> Option<&'static str> {
    const RANGES: [(u128, u32, &str); 9] = [
        (0, 128, "unspecified"),
        (1, 128, "loopback"),
        (0xfc00 << 112, 7, "private"),
        (0xfe80 << 112, 10, "link-local"),
        (0xfec0 << 112, 10, "reserved"),
        (0xff00 << 112, 8, "multicast"),
        (0x2001_0db8 << 96, 32, "documentation"),
        (0x3fff << 112, 20, "documentation"),
        (0x0100 << 112, 64, "reserved"),
    ];
    RANGES
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, l)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(s: &str) -> Option<&'static str> {
        label(s.parse().unwrap())
    }

    #[test]
    fn every_special_range_is_labelled_at_both_ends() {
        for (ip, want) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "reserved"),
            ("10.0.0.0", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.10.1", "link-local"),
            ("192.0.2.7", "documentation"),
            ("198.51.100.255", "documentation"),
            ("203.0.113.0", "documentation"),
            ("100.64.0.1", "cgnat"),
            ("100.127.255.255", "cgnat"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.0.0.9", "reserved"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.255", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "private"),
            ("fd12:3456::1", "private"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "reserved"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("2001:db8:ffff::1", "documentation"),
            ("3fff::1", "documentation"),
            ("100::1", "reserved"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:127.0.0.1", "loopback"),
        ] {
            assert_eq!(l(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_addresses_next_to_special_ranges_are_not_labelled() {
        for ip in [
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.0.1.255",
            "192.0.3.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "81.2.69.160",
            "2003::1",
            "2001:db7:ffff::1",
            "2001:db9::1",
            "fbff::1",
            "fe00::1",
            "2a02:2770::1",
            "::ffff:81.2.69.160",
            "64:ff9b::1.2.3.4",
        ] {
            assert_eq!(l(ip), None, "{ip}");
        }
    }

    #[test]
    fn mapped_addresses_are_looked_up_as_ipv4() {
        assert_eq!(
            canonical("::ffff:81.2.69.160".parse().unwrap()),
            "81.2.69.160".parse::<IpAddr>().unwrap()
        );
        let v6: IpAddr = "2003::1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }
}
