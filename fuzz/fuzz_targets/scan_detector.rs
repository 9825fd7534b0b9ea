//! The Extension scan/flood detector's state machine, driven by an arbitrary
//! sequence of operations decoded from the input.
//!
//! Input: 6 bytes of configuration, then 4-byte operations `[op, src, port,
//! dt]`: `op` picks observe or tick and how far the clock moves (`dt` in
//! milliseconds, seconds or minutes), `src` one of 256 sources (IPv4, IPv6 and
//! IPv4-mapped forms of the same hosts, plus a spray of distinct addresses to
//! overflow the table), `port` one of 256 ports.
//!
//! Invariants: at most `MAX_SOURCES` tracked; evictions only grow and only
//! when the table is full; a scan event lists at most `PORTS_PER_SOURCE`
//! distinct sorted ports, `count` of them, reaching the threshold; a flood
//! summary lists at most `FLOOD_PORTS` distinct sorted ports and never more
//! connections than were suppressed; one tick yields at most one summary per
//! source.
#![no_main]

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use honeybee_extension::scan::{
    Detector, ScanConfig, Verdict, FLOOD_PORTS, MAX_SOURCES, PORTS_PER_SOURCE,
};
use libfuzzer_sys::fuzz_target;

fn source(sel: u8, spray: &mut u32) -> IpAddr {
    let host = sel & 0x3f;
    match sel >> 6 {
        0 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, host)),
        // The same hosts as seen by a dual-stack socket: one source each.
        1 => IpAddr::V6(Ipv4Addr::new(192, 0, 2, host).to_ipv6_mapped()),
        2 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(host))),
        _ => {
            // A new address every time: fills the table past MAX_SOURCES.
            *spray = spray.wrapping_add(1);
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (*spray & 0x00ff_ffff)))
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, e, f, ops @ ..] = data else {
        return;
    };
    let config = ScanConfig {
        scan_ports: u16::from_le_bytes([*a, *b & 0x01]),
        scan_window: Duration::from_millis(u64::from(*c) * 977),
        flood_connections: u32::from(*d),
        flood_window: Duration::from_millis(u64::from(*e) * 131 + u64::from(*f & 3) * 1_000_000),
    };
    let threshold = usize::from(config.scan_ports).min(PORTS_PER_SOURCE);
    let mut det = Detector::new(config);
    assert_eq!(det.config(), &config);
    let start = Instant::now();
    let mut now = start;
    let mut spray = 0u32;
    let mut suppressed = 0u64;
    let mut summarised = 0u64;
    let mut evicted = 0u64;
    for op in ops.chunks_exact(4) {
        let &[kind, src, port, dt] = op else {
            continue;
        };
        let step = match kind & 0x3 {
            0 => Duration::from_millis(u64::from(dt)),
            1 => Duration::from_secs(u64::from(dt)),
            2 => Duration::from_secs(u64::from(dt) * 60),
            _ => Duration::ZERO,
        };
        // Time never goes back except when asked to: a clock step backwards
        // must be tolerated too.
        now = if kind & 0x80 != 0 {
            now.checked_sub(step).unwrap_or(start).max(start)
        } else {
            now + step
        };
        let before = det.tracked();
        if kind & 0x40 == 0 {
            let port = 1 + u16::from(port) * 7;
            let (verdict, scan) = det.observe(source(src, &mut spray), port, now);
            if verdict == Verdict::Suppress {
                suppressed += 1;
                assert!(config.flood_connections > 0, "suppressed with floods off");
            }
            if let Some(s) = scan {
                assert!(threshold > 0, "scan raised with scans off");
                assert_eq!(s.count as usize, s.ports.len());
                assert!(s.ports.len() <= PORTS_PER_SOURCE);
                assert!(
                    s.ports.len() >= threshold,
                    "{} < {threshold}",
                    s.ports.len()
                );
                assert!(
                    s.ports.windows(2).all(|w| w[0] < w[1]),
                    "unsorted {:?}",
                    s.ports
                );
                assert!(s.ports.contains(&port), "the new port is not in the scan");
                let _ = s.to_data();
            }
            assert!(det.tracked() <= MAX_SOURCES);
            assert!(det.tracked() >= before.min(MAX_SOURCES - 1));
        } else {
            let due = det.tick(now);
            assert!(due.len() <= MAX_SOURCES);
            let mut seen = HashSet::new();
            for s in &due {
                assert!(seen.insert(s.src), "two summaries for {}", s.src);
                assert!(s.connections > 0);
                assert!(s.ports.len() <= FLOOD_PORTS);
                assert!(
                    s.ports.windows(2).all(|w| w[0] < w[1]),
                    "unsorted {:?}",
                    s.ports
                );
                summarised += s.connections;
                let _ = s.to_data();
            }
            assert!(det.tracked() <= before, "tick added sources");
        }
        assert!(det.evicted() >= evicted, "evictions went down");
        if det.evicted() > evicted {
            assert_eq!(before, MAX_SOURCES, "evicted with room in the table");
        }
        evicted = det.evicted();
        assert!(
            summarised <= suppressed,
            "{summarised} summarised of {suppressed}"
        );
    }
});
