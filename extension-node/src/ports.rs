//! Port lists for Extension mode: the `--ports` / `--udp-ports` syntax and the
//! built-in defaults.
//!
//! An operator writes ports the way firewalls and nmap do, `21-23,80,445,5900-5905`;
//! the agent needs a sorted list without duplicates that fits a fixed bound, because
//! every port becomes a listener and per-port state elsewhere is sized by
//! [`MAX_PORTS`]. Parsing therefore refuses, with a message naming the bad item,
//! anything that is not a port (0, 70000, `abc`), a backwards range, an empty item, or
//! more than [`MAX_PORTS`] ports in all — a typo in a config should stop the agent at
//! start-up rather than silently listen on the wrong set. [`format_ports`] turns a
//! list back into the compact form for the start-up report and log lines.

use std::fmt::Write as _;

/// Most ports one agent listens on (TCP or UDP each): a fixed bound.
pub const MAX_PORTS: usize = 256;

/// A sorted, duplicate-free list of at most [`MAX_PORTS`] ports.
pub type PortList = heapless::Vec<u16, MAX_PORTS>;

/// The TCP ports scanners probe most, sorted: what Extension mode listens on when no
/// `--ports` is given. Each is a service worm and scanner traffic asks for first, so a
/// connection to one of them on a workstation that does not run it is a strong signal.
pub const DEFAULT_TCP: &[u16] = &[
    21,    // FTP
    22,    // SSH
    23,    // Telnet
    25,    // SMTP
    53,    // DNS (TCP)
    80,    // HTTP
    81,    // HTTP alternate
    88,    // Kerberos
    110,   // POP3
    111,   // ONC RPC portmapper
    135,   // MS RPC endpoint mapper
    139,   // NetBIOS session
    143,   // IMAP
    389,   // LDAP
    443,   // HTTPS
    445,   // SMB
    465,   // SMTPS
    587,   // SMTP submission
    993,   // IMAPS
    995,   // POP3S
    1080,  // SOCKS
    1433,  // MSSQL
    1521,  // Oracle
    2049,  // NFS
    2222,  // SSH alternate
    2375,  // Docker API (plain)
    2376,  // Docker API (TLS)
    3306,  // MySQL
    3389,  // RDP
    5432,  // PostgreSQL
    5601,  // Kibana
    5900,  // VNC
    5985,  // WinRM (HTTP)
    6379,  // Redis
    6443,  // Kubernetes API
    8000,  // HTTP alternate
    8080,  // HTTP proxy / alternate
    8081,  // HTTP alternate
    8443,  // HTTPS alternate
    8888,  // HTTP alternate
    9000,  // HTTP alternate, PHP-FPM, MinIO
    9200,  // Elasticsearch
    10250, // kubelet
    11211, // memcached
    27017, // MongoDB
];

/// The UDP ports Extension mode listens on by default, sorted: few, because a UDP
/// listener only learns something when the protocol gets a datagram it can recognise.
pub const DEFAULT_UDP: &[u16] = &[
    123,  // NTP
    161,  // SNMP
    1900, // SSDP
];

/// Parses a port specification such as `21-23,80,445,3389,5900-5905`.
///
/// Items are single ports or inclusive ranges `a-b`, separated by commas; whitespace
/// around items and numbers is ignored. The result is sorted and deduplicated. An empty
/// (or all-blank) specification gives an empty list. Errors name the offending item:
/// port 0, a number above 65535, something that is not a number, a backwards range, an
/// empty item (`80,,443`), or more than [`MAX_PORTS`] ports in all.
pub fn parse_ports(spec: &str) -> Result<PortList, String> {
    if spec.trim().is_empty() {
        return Ok(PortList::new());
    }
    // A bitmap over the whole port space deduplicates and sorts in one pass without
    // allocating; 8 KiB on the stack, only at start-up.
    let mut seen = [0u64; 1024];
    let mut count = 0usize;
    for raw in spec.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return Err(format!(
                "empty item in port list \"{}\" (two commas in a row, or one at an end?)",
                spec.trim()
            ));
        }
        let (low, high) = match item.split_once('-') {
            Some((a, b)) => {
                let low = parse_port(a, item)?;
                let high = parse_port(b, item)?;
                if low > high {
                    return Err(format!("range {item}: start {low} is above end {high}"));
                }
                (low, high)
            }
            None => {
                let port = parse_port(item, item)?;
                (port, port)
            }
        };
        // Checked per item, before touching the bitmap, so that a huge range such as
        // `1-65535` fails at once instead of walking 65,535 ports.
        if usize::from(high - low) >= MAX_PORTS {
            return Err(format!(
                "{item}: {} ports, more than the {MAX_PORTS} one agent listens on",
                u32::from(high - low) + 1
            ));
        }
        for port in low..=high {
            let (word, bit) = (usize::from(port / 64), port % 64);
            if let Some(slot) = seen.get_mut(word) {
                if *slot & (1 << bit) == 0 {
                    *slot |= 1 << bit;
                    count += 1;
                }
            }
        }
        if count > MAX_PORTS {
            return Err(format!(
                "{item}: brings the list to more than the {MAX_PORTS} ports one agent listens on"
            ));
        }
    }
    let mut ports = PortList::new();
    for (word_index, word) in seen.iter().enumerate() {
        let mut bits = *word;
        while bits != 0 {
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            // word_index < 1024 and bit < 64, so this is at most 65,535.
            let port = u16::try_from(word_index * 64 + bit as usize).unwrap_or(u16::MAX);
            // Cannot fail: count was checked against MAX_PORTS above.
            if ports.push(port).is_err() {
                return Err(format!(
                    "more than the {MAX_PORTS} ports one agent listens on"
                ));
            }
        }
    }
    Ok(ports)
}

/// Parses one port number of `item` (the whole item, for the error message).
fn parse_port(text: &str, item: &str) -> Result<u16, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{item}: a range needs a port on both sides of '-'"));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{item}: \"{text}\" is not a port number"));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(format!("{item}: port 0 is not a port one can listen on")),
        Ok(n) => u16::try_from(n).map_err(|_| format!("{item}: port {n} is above 65535")),
        // Only digits, so the only failure left is a number too long for u32.
        Err(_) => Err(format!("{item}: port {text} is above 65535")),
    }
}

/// Formats ports in the compact form [`parse_ports`] reads: sorted, duplicates
/// dropped, runs of three or more consecutive ports written as a range
/// (`21-23,80,81,445`). Pairs stay two items, since `80,81` reads better than `80-81`.
pub fn format_ports(ports: &[u16]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut rest = sorted.as_slice();
    while let Some((&start, tail)) = rest.split_first() {
        // Length of the run of consecutive ports beginning at `start`.
        let run = 1 + tail
            .iter()
            .zip(1u32..)
            .take_while(|&(&p, step)| u32::from(p) == u32::from(start) + step)
            .count();
        if !out.is_empty() {
            out.push(',');
        }
        let end = u32::from(start) + run as u32 - 1;
        match run {
            1 => {
                let _ = write!(out, "{start}");
            }
            2 => {
                let _ = write!(out, "{start},{end}");
            }
            _ => {
                let _ = write!(out, "{start}-{end}");
            }
        }
        rest = rest.get(run..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> Vec<u16> {
        parse_ports(spec).unwrap().to_vec()
    }

    fn error(spec: &str) -> String {
        parse_ports(spec).unwrap_err()
    }

    #[test]
    fn parses_the_example_from_the_issue() {
        assert_eq!(
            parsed("21-23,80,445,3389,5900-5905"),
            [21, 22, 23, 80, 445, 3389, 5900, 5901, 5902, 5903, 5904, 5905]
        );
    }

    #[test]
    fn empty_and_blank_specs_give_an_empty_list() {
        assert!(parsed("").is_empty());
        assert!(parsed("   \t ").is_empty());
    }

    #[test]
    fn sorts_and_deduplicates() {
        assert_eq!(parsed("443,80,22,80,21-23,22"), [21, 22, 23, 80, 443]);
        assert_eq!(parsed("10-12,11-13"), [10, 11, 12, 13]);
    }

    #[test]
    fn tolerates_whitespace() {
        assert_eq!(parsed(" 21 - 23 ,\t80 , 443\n"), [21, 22, 23, 80, 443]);
    }

    #[test]
    fn single_port_range_and_extremes() {
        assert_eq!(parsed("7-7"), [7]);
        assert_eq!(parsed("1"), [1]);
        assert_eq!(parsed("65535"), [65535]);
        assert_eq!(
            parsed("65530-65535"),
            [65530, 65531, 65532, 65533, 65534, 65535]
        );
    }

    #[test]
    fn port_zero_is_refused_and_named() {
        let e = error("80,0");
        assert!(e.contains("port 0"), "{e}");
        let e = error("0-5");
        assert!(e.contains("port 0"), "{e}");
    }

    #[test]
    fn numbers_above_65535_are_refused_and_named() {
        let e = error("80,70000");
        assert!(e.contains("70000"), "{e}");
        let e = error("65535-65536");
        assert!(e.contains("65536"), "{e}");
        let e = error("99999999999999999999");
        assert!(e.contains("99999999999999999999"), "{e}");
    }

    #[test]
    fn backwards_ranges_are_refused_and_named() {
        let e = error("5-3");
        assert!(e.contains("5-3"), "{e}");
    }

    #[test]
    fn empty_items_are_refused() {
        for spec in ["80,,443", "80,", ",80", "80, ,443"] {
            let e = error(spec);
            assert!(e.contains("empty item"), "{spec}: {e}");
        }
    }

    #[test]
    fn half_ranges_and_junk_are_refused_and_named() {
        let e = error("-5");
        assert!(e.contains("-5"), "{e}");
        let e = error("5-");
        assert!(e.contains("5-"), "{e}");
        let e = error("80,http");
        assert!(e.contains("http"), "{e}");
        let e = error("1-2-3");
        assert!(e.contains("1-2-3"), "{e}");
        let e = error("+80");
        assert!(e.contains("+80"), "{e}");
        let e = error("8 0");
        assert!(e.contains("8 0"), "{e}");
    }

    #[test]
    fn exactly_max_ports_is_accepted() {
        let list = parse_ports("1000-1255").unwrap();
        assert_eq!(list.len(), MAX_PORTS);
        // Overlapping items that still add up to MAX_PORTS distinct ports.
        let list = parse_ports("1000-1200,1100-1255,1000").unwrap();
        assert_eq!(list.len(), MAX_PORTS);
    }

    #[test]
    fn more_than_max_ports_is_refused_and_names_the_item() {
        let e = error("1-65535");
        assert!(e.contains("1-65535") && e.contains("256"), "{e}");
        let e = error("1000-1255,2000");
        assert!(e.contains("2000") && e.contains("256"), "{e}");
        let e = error("1-200,300-400");
        assert!(e.contains("300-400"), "{e}");
    }

    #[test]
    fn formats_runs_as_ranges() {
        assert_eq!(
            format_ports(&[21, 22, 23, 80, 445, 3389, 5900, 5901, 5902, 5903, 5904, 5905]),
            "21-23,80,445,3389,5900-5905"
        );
        assert_eq!(format_ports(&[80, 81]), "80,81");
        assert_eq!(format_ports(&[]), "");
        assert_eq!(format_ports(&[7]), "7");
        assert_eq!(format_ports(&[65533, 65534, 65535]), "65533-65535");
    }

    #[test]
    fn formatting_sorts_and_deduplicates() {
        assert_eq!(format_ports(&[23, 21, 22, 22, 80]), "21-23,80");
    }

    #[test]
    fn format_and_parse_round_trip() {
        for spec in [
            "21-23,80,445,3389,5900-5905",
            "1,3,5,7",
            "1-3,5-7",
            "80,81",
            "65535",
            "1-256",
        ] {
            let list = parse_ports(spec).unwrap();
            assert_eq!(format_ports(&list), spec);
            assert_eq!(parse_ports(&format_ports(&list)).unwrap(), list);
        }
    }

    #[test]
    fn defaults_are_sorted_unique_and_within_bounds() {
        for list in [DEFAULT_TCP, DEFAULT_UDP] {
            assert!(!list.is_empty());
            assert!(list.len() <= MAX_PORTS);
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
            assert!(!list.contains(&0));
            // The defaults survive the same path a configured list takes.
            assert_eq!(parse_ports(&format_ports(list)).unwrap().as_slice(), list);
        }
    }

    #[test]
    fn default_tcp_covers_what_scanners_probe() {
        for port in [
            21, 22, 23, 25, 80, 443, 445, 1433, 1521, 2375, 3306, 3389, 5432, 5900, 6379, 6443,
            9200, 11211, 27017,
        ] {
            assert!(DEFAULT_TCP.contains(&port), "{port}");
        }
        assert!((40..=50).contains(&DEFAULT_TCP.len()));
        assert_eq!(DEFAULT_UDP, &[123, 161, 1900]);
    }

    #[test]
    fn random_specs_never_panic_and_stay_bounded() {
        // A small xorshift generator keeps the test deterministic without a dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789,- \t-,9876501x";
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let spec: String = (0..len)
                .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
                .collect();
            if let Ok(list) = parse_ports(&spec) {
                assert!(list.len() <= MAX_PORTS);
                assert!(list.windows(2).all(|w| w[0] < w[1]));
                assert!(!list.contains(&0));
                assert_eq!(parse_ports(&format_ports(&list)).unwrap(), list);
            }
        }
    }
}
