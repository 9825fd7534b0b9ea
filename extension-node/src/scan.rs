//! Scan and flood detection: which connections Extension mode reports one by one, when
//! a source is scanning, and how a flood becomes periodic summaries.
//!
//! Every connection to an Extension-mode port is suspicious, but reporting each one
//! would let a single attacker turn the agent into an amplifier: 5,000 connections
//! would become 5,000 events, spool entries and uplink messages. So each source gets a
//! small, fixed-size record: the distinct ports it touched within a sliding
//! `scan_window` (reaching `scan_ports` of them raises one `extension.portscan`), and a
//! sliding count of its connections within `flood_window` (reaching
//! `flood_connections` turns further connections into a count, reported by [`tick`]
//! once per `flood_window` as an `extension.flood` summary).
//!
//! Memory is fixed whatever arrives: at most [`MAX_SOURCES`] sources, each with at most
//! [`PORTS_PER_SOURCE`] remembered ports and [`FLOOD_PORTS`] flood ports, all in one
//! allocation made by [`Detector::new`]. When the table is full the least recently seen
//! source is dropped and counted ([`Detector::evicted`]). Time is passed in rather than
//! read from a clock, so tests and fuzzers can drive hours of traffic in microseconds;
//! time that goes backwards is tolerated (it saturates) rather than trusted.
//!
//! [`tick`]: Detector::tick

use std::collections::hash_map::RandomState;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::json;

/// Thresholds and windows for scan and flood detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanConfig {
    /// Distinct ports one source must touch within `scan_window` to count as a scan
    /// (default 8). 0 turns scan detection off; values above [`PORTS_PER_SOURCE`] act
    /// as [`PORTS_PER_SOURCE`], the most a source record can remember.
    pub scan_ports: u16,
    /// How far back distinct ports are counted (default 60 s).
    pub scan_window: Duration,
    /// Connections from one source within `flood_window` that make a flood (default
    /// 30); the connection that reaches it and all that follow while the rate stays
    /// that high are suppressed and summarised. 0 turns flood detection off.
    pub flood_connections: u32,
    /// How far back connections are counted, and how often a flooding source gets a
    /// summary (default 10 s).
    pub flood_window: Duration,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            scan_ports: 8,
            scan_window: Duration::from_secs(60),
            flood_connections: 30,
            flood_window: Duration::from_secs(10),
        }
    }
}

/// Most sources tracked at once (a power of two, as heapless maps require).
pub const MAX_SOURCES: usize = 1024;

/// Distinct ports remembered per source within the scan window: the most a
/// [`ScanEvent`] lists, and the highest useful `scan_ports`.
pub const PORTS_PER_SOURCE: usize = 64;

/// Distinct ports listed in one [`FloodSummary`].
pub const FLOOD_PORTS: usize = 16;

/// What to do with one observed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Emit an `extension.connection` event for it.
    Report,
    /// The source floods: the connection is counted into the next [`FloodSummary`],
    /// no per-connection event.
    Suppress,
}

/// One source touched many distinct ports quickly: the payload of an
/// `extension.portscan` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanEvent {
    /// The scanning source (IPv4-mapped IPv6 addresses are given as IPv4).
    pub src: IpAddr,
    /// The distinct ports it touched within the window, sorted (at most
    /// [`PORTS_PER_SOURCE`]).
    pub ports: Vec<u16>,
    /// How many distinct ports that is.
    pub count: u32,
    /// The window the ports were counted in, in seconds.
    pub window_secs: u64,
}

impl ScanEvent {
    /// The event's `data` object, with the well-known `src_ip` key of docs/protocol.md §4.
    pub fn to_data(&self) -> serde_json::Value {
        json!({
            "src_ip": self.src.to_string(),
            "ports": self.ports,
            "count": self.count,
            "window_secs": self.window_secs,
        })
    }
}

/// Connections suppressed from one flooding source over the last `since_secs`
/// seconds: the payload of an `extension.flood` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodSummary {
    /// The flooding source (IPv4-mapped IPv6 addresses are given as IPv4).
    pub src: IpAddr,
    /// Connections suppressed since the previous summary for this source.
    pub connections: u64,
    /// Distinct ports those connections went to, sorted (the first [`FLOOD_PORTS`]).
    pub ports: Vec<u16>,
    /// Seconds from the first of those connections to the summary.
    pub since_secs: u64,
}

impl FloodSummary {
    /// The event's `data` object, with the well-known `src_ip` key of docs/protocol.md §4.
    pub fn to_data(&self) -> serde_json::Value {
        json!({
            "src_ip": self.src.to_string(),
            "connections": self.connections,
            "ports": self.ports,
            "since_secs": self.since_secs,
        })
    }
}

/// Port timestamps are stored as 16-bit ticks of 1/`STAMP_TICKS_PER_WINDOW` of the scan
/// window (at least 1 ms), which halves the largest part of a source record compared
/// with 32-bit milliseconds. Entries never live longer than two windows (see
/// [`Detector::observe`]), far less than the 65,536 ticks after which they would wrap.
const STAMP_TICKS_PER_WINDOW: u64 = 1024;

/// The distinct ports one source touched recently, each with the tick it was last
/// touched at. Parallel arrays rather than a Vec of pairs: no padding.
struct PortWindow {
    ports: [u16; PORTS_PER_SOURCE],
    stamps: [u16; PORTS_PER_SOURCE],
    len: usize,
}

impl PortWindow {
    const fn new() -> Self {
        PortWindow {
            ports: [0; PORTS_PER_SOURCE],
            stamps: [0; PORTS_PER_SOURCE],
            len: 0,
        }
    }

    fn ports(&self) -> &[u16] {
        self.ports.get(..self.len).unwrap_or(&[])
    }

    /// Drops the ports last touched `window_ticks` or more ticks before `now`,
    /// keeping the others in order.
    fn prune(&mut self, now: u16, window_ticks: u64) {
        let mut kept = 0;
        for i in 0..self.len {
            let (Some(&port), Some(&stamp)) = (self.ports.get(i), self.stamps.get(i)) else {
                break;
            };
            if u64::from(now.wrapping_sub(stamp)) < window_ticks {
                // kept <= i: this moves entries down over the dropped ones.
                if let (Some(p), Some(s)) = (self.ports.get_mut(kept), self.stamps.get_mut(kept)) {
                    *p = port;
                    *s = stamp;
                }
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Records a touch of `port`; returns whether it was not remembered before. When
    /// full, the least recently touched port makes room: the window then lists the
    /// most recent ports, which are the ones an operator wants to see.
    fn touch(&mut self, port: u16, now: u16) -> bool {
        if let Some(i) = self.ports().iter().position(|&p| p == port) {
            if let Some(stamp) = self.stamps.get_mut(i) {
                *stamp = now;
            }
            return false;
        }
        let slot = if self.len < PORTS_PER_SOURCE {
            self.len += 1;
            self.len - 1
        } else {
            // The oldest entry is the one with the largest age.
            self.stamps
                .iter()
                .enumerate()
                .max_by_key(|&(_, &stamp)| now.wrapping_sub(stamp))
                .map_or(0, |(i, _)| i)
        };
        if let (Some(p), Some(s)) = (self.ports.get_mut(slot), self.stamps.get_mut(slot)) {
            *p = port;
            *s = now;
        }
        true
    }
}

/// Everything remembered about one source. All fields are fixed-size; times are
/// milliseconds since the detector's first observation.
struct Source {
    /// Last connection (for eviction and forgetting).
    last_seen: u64,
    /// Distinct ports touched within the scan window.
    window: PortWindow,
    /// When the source last touched a port it had not touched within the window.
    last_new_port: u64,
    /// A scan was reported and no window has passed without a new port since: the
    /// same scan must not be reported again.
    scanning: bool,
    /// Start of the current flood bucket; buckets are `flood_window` long.
    bucket_start: u64,
    /// Connections in the current bucket.
    bucket: u32,
    /// Connections in the bucket before it.
    previous: u32,
    /// Connections suppressed since the last summary.
    suppressed: u64,
    /// When the first of those was suppressed.
    suppressed_since: u64,
    /// Distinct ports of those connections.
    flood_ports: heapless::Vec<u16, FLOOD_PORTS>,
}

impl Source {
    const fn new(now: u64) -> Self {
        Source {
            last_seen: now,
            window: PortWindow::new(),
            last_new_port: now,
            scanning: false,
            bucket_start: now,
            bucket: 0,
            previous: 0,
            suppressed: 0,
            suppressed_since: now,
            flood_ports: heapless::Vec::new(),
        }
    }
}

/// A fixed-capacity map from source address to its record. std's `RandomState`
/// (keyed SipHash) rather than FNV: attackers choose their addresses, IPv6 ones
/// freely within a prefix, and must not be able to precompute colliding ones that
/// make every lookup walk the whole table.
type Sources = heapless::IndexMap<IpAddr, Source, RandomState, MAX_SOURCES>;

/// Per-source sliding-window scan and flood detector with fixed capacity.
///
/// Call [`observe`](Detector::observe) for every accepted connection or datagram and
/// [`tick`](Detector::tick) periodically (about once a second) for flood summaries.
pub struct Detector {
    config: ScanConfig,
    /// Boxed so that the detector itself is small to move. This one allocation, made
    /// in `new`, is all the detector ever holds (about 390 KiB, whose pages are only
    /// touched as sources arrive); tick and scan results are the only other allocations.
    sources: Box<Sources>,
    /// The instant all stored times count from: the first one passed in.
    base: Option<Instant>,
    evicted: u64,
    scan_window_ms: u64,
    flood_window_ms: u64,
    /// Milliseconds per port-stamp tick, and the scan window in ticks.
    tick_ms: u64,
    window_ticks: u64,
}

/// A Duration in whole milliseconds, saturating (a u64 of milliseconds is 584
/// million years).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The address a source is known by: IPv4-mapped IPv6 (`::ffff:a.b.c.d`, what a
/// dual-stack socket reports for an IPv4 peer) is the IPv4 address, so one host
/// reaching both an IPv4 and a dual-stack listener is one source.
fn canonical(src: IpAddr) -> IpAddr {
    match src {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(src, IpAddr::V4),
        IpAddr::V4(_) => src,
    }
}

impl Detector {
    /// A detector with no sources tracked yet.
    pub fn new(config: ScanConfig) -> Detector {
        let scan_window_ms = millis(config.scan_window);
        let tick_ms = scan_window_ms.div_ceil(STAMP_TICKS_PER_WINDOW).max(1);
        Detector {
            config,
            sources: Box::default(),
            base: None,
            evicted: 0,
            scan_window_ms,
            flood_window_ms: millis(config.flood_window),
            tick_ms,
            window_ticks: scan_window_ms.div_ceil(tick_ms),
        }
    }

    /// The configuration this detector was made with.
    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// Milliseconds from the first instant seen to `now`; earlier instants count as 0.
    fn elapsed_ms(&mut self, now: Instant) -> u64 {
        let base = *self.base.get_or_insert(now);
        millis(now.saturating_duration_since(base))
    }

    /// Makes room for one more source by dropping the least recently seen one.
    fn evict_oldest(&mut self) {
        let oldest = self
            .sources
            .iter()
            .min_by_key(|(_, s)| s.last_seen)
            .map(|(src, _)| *src);
        if let Some(src) = oldest {
            self.sources.swap_remove(&src);
            self.evicted = self.evicted.saturating_add(1);
        }
    }

    /// One connection (or datagram) from `src` to `port` at `now` (monotonic: build
    /// test instants by adding Durations to one base).
    ///
    /// Returns whether to report it, and at most one [`ScanEvent`]: raised once when
    /// the source reaches `scan_ports` distinct ports within `scan_window`, and not
    /// again for that source until a whole `scan_window` has passed without it
    /// touching a new port. A flooding source that also scans still raises its scan.
    pub fn observe(
        &mut self,
        src: IpAddr,
        port: u16,
        now: Instant,
    ) -> (Verdict, Option<ScanEvent>) {
        let src = canonical(src);
        let now_ms = self.elapsed_ms(now);
        if !self.sources.contains_key(&src) {
            if self.sources.len() >= MAX_SOURCES {
                self.evict_oldest();
            }
            if self.sources.insert(src, Source::new(now_ms)).is_err() {
                // Unreachable after the eviction above; if it ever happened, reporting
                // the connection unfiltered is the safe side (the uplink is bounded).
                return (Verdict::Report, None);
            }
        }
        let (scan_window_ms, flood_window_ms) = (self.scan_window_ms, self.flood_window_ms);
        let (tick_ms, window_ticks) = (self.tick_ms, self.window_ticks);
        let config = self.config;
        let Some(source) = self.sources.get_mut(&src) else {
            return (Verdict::Report, None);
        };

        // Scan: distinct ports within the sliding window.
        let stamp = (now_ms / tick_ms) as u16; // wraps on purpose; ages use wrapping_sub
        if now_ms.saturating_sub(source.last_seen) >= scan_window_ms {
            // Everything remembered is older than the window. Clearing here (not only
            // pruning) is what bounds every stored stamp's age to two windows, so the
            // 16-bit ticks never wrap into looking young.
            source.window = PortWindow::new();
        } else {
            source.window.prune(stamp, window_ticks);
        }
        let mut scan = None;
        let before = source.window.len;
        if source.window.touch(port, stamp) {
            if source.scanning && now_ms.saturating_sub(source.last_new_port) >= scan_window_ms {
                // A whole window without a new port: the previous scan is over.
                source.scanning = false;
            }
            source.last_new_port = now_ms;
            let threshold = usize::from(config.scan_ports).min(PORTS_PER_SOURCE);
            // Raised on crossing the threshold, so a source that keeps hitting the
            // same ports after a quiet spell does not raise it again.
            if threshold > 0
                && !source.scanning
                && before < threshold
                && source.window.len >= threshold
            {
                source.scanning = true;
                let mut ports = source.window.ports().to_vec();
                ports.sort_unstable();
                scan = Some(ScanEvent {
                    src,
                    count: ports.len() as u32,
                    ports,
                    window_secs: config.scan_window.as_secs(),
                });
            }
        }

        // Flood: a sliding count over two buckets, the previous one weighted by how
        // much of it still lies within the window. Two counters instead of one stamp
        // per connection keep the record fixed-size at any rate.
        let since_bucket = now_ms.saturating_sub(source.bucket_start);
        if since_bucket >= flood_window_ms.saturating_mul(2) {
            source.previous = 0;
            source.bucket = 0;
            source.bucket_start = now_ms;
        } else if since_bucket >= flood_window_ms {
            source.previous = source.bucket;
            source.bucket = 0;
            source.bucket_start = source.bucket_start.saturating_add(flood_window_ms);
        }
        source.bucket = source.bucket.saturating_add(1);
        let into_bucket = now_ms.saturating_sub(source.bucket_start);
        // In u128: a u32 count times a window of years in milliseconds overflows u64.
        // A zero window carries nothing over.
        let carried = (u128::from(source.previous)
            * u128::from(flood_window_ms.saturating_sub(into_bucket)))
        .checked_div(u128::from(flood_window_ms))
        .unwrap_or(0);
        let recent = u128::from(source.bucket) + carried;
        let verdict =
            if config.flood_connections > 0 && recent >= u128::from(config.flood_connections) {
                if source.suppressed == 0 {
                    source.suppressed_since = now_ms;
                }
                source.suppressed = source.suppressed.saturating_add(1);
                if !source.flood_ports.contains(&port) {
                    // Full: the summary lists the first FLOOD_PORTS ports, the count is exact.
                    let _ = source.flood_ports.push(port);
                }
                Verdict::Suppress
            } else {
                Verdict::Report
            };

        source.last_seen = now_ms;
        (verdict, scan)
    }

    /// Flood summaries due at `now`: for each source with suppressed connections, one
    /// summary per `flood_window` with the connections suppressed since its last
    /// summary. Sources idle for longer than both windows are forgotten (after their
    /// last summary). At most [`MAX_SOURCES`] items.
    pub fn tick(&mut self, now: Instant) -> Vec<FloodSummary> {
        let now_ms = self.elapsed_ms(now);
        let flood_window_ms = self.flood_window_ms;
        let idle_limit = self.scan_window_ms.max(flood_window_ms);
        let mut due = Vec::new();
        self.sources.retain(|src, source| {
            if source.suppressed > 0
                && now_ms.saturating_sub(source.suppressed_since) >= flood_window_ms
            {
                let mut ports = source.flood_ports.to_vec();
                ports.sort_unstable();
                due.push(FloodSummary {
                    src: *src,
                    connections: source.suppressed,
                    ports,
                    since_secs: now_ms.saturating_sub(source.suppressed_since) / 1000,
                });
                source.suppressed = 0;
                source.flood_ports.clear();
            }
            // A source with a summary still pending is kept whatever its age, so
            // suppressed connections are always accounted for.
            source.suppressed > 0 || now_ms.saturating_sub(source.last_seen) <= idle_limit
        });
        due
    }

    /// Sources dropped because the table was full (least recently seen first). Their
    /// records are gone; any connections they had suppressed since their last summary
    /// are not summarised.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Sources tracked now (at most [`MAX_SOURCES`]).
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ten_ports_in_a_second_raise_exactly_one_scan_with_those_ports() {
        let config = ScanConfig {
            scan_ports: 10,
            ..ScanConfig::default()
        };
        let mut d = Detector::new(config);
        let base = Instant::now();
        let src = v4(192, 0, 2, 7);
        let ports = [21, 22, 23, 80, 443, 445, 3306, 3389, 5900, 6379];
        let mut events = Vec::new();
        for (i, &port) in ports.iter().enumerate() {
            let (verdict, scan) = d.observe(src, port, base + ms(i as u64 * 100));
            assert_eq!(verdict, Verdict::Report);
            events.extend(scan);
        }
        // Touching the same ports again within the window is the same scan.
        for (i, &port) in ports.iter().enumerate() {
            let (_, scan) = d.observe(src, port, base + ms(1000 + i as u64 * 10));
            events.extend(scan);
        }
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event.src, src);
        let mut expected = ports.to_vec();
        expected.sort_unstable();
        assert_eq!(event.ports, expected);
        assert_eq!(event.count, 10);
        assert_eq!(event.window_secs, 60);
        let data = event.to_data();
        assert_eq!(data["src_ip"], "192.0.2.7");
        assert_eq!(data["count"], 10);
        assert_eq!(data["ports"].as_array().map(Vec::len), Some(10));
    }

    #[test]
    fn default_threshold_raises_once_at_the_eighth_port() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(198, 51, 100, 1);
        let mut raised_at = Vec::new();
        for port in 1..=40u16 {
            if let (_, Some(event)) = d.observe(src, port, base + ms(u64::from(port) * 50)) {
                assert_eq!(event.ports, (1..=8).collect::<Vec<u16>>());
                assert_eq!(event.count, 8);
                raised_at.push(port);
            }
        }
        assert_eq!(raised_at, [8]);
    }

    #[test]
    fn slow_touches_spread_over_more_than_the_window_raise_nothing() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(203, 0, 113, 9);
        // One new port every 9 s: never more than 7 within any 60 s.
        for i in 0..100u64 {
            let (verdict, scan) =
                d.observe(src, 1000 + i as u16, base + Duration::from_secs(9 * i));
            assert_eq!(verdict, Verdict::Report);
            assert!(scan.is_none(), "port {i}: {scan:?}");
            d.tick(base + Duration::from_secs(9 * i));
        }
    }

    #[test]
    fn the_window_slides_rather_than_resetting() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(203, 0, 113, 10);
        // 4 ports at t=0..3 s, 4 more at t=50..53 s: 8 within 60 s although they fall
        // in different minutes.
        let mut events = 0;
        for i in 0..4u64 {
            events += d
                .observe(src, 100 + i as u16, base + Duration::from_secs(i))
                .1
                .iter()
                .count();
        }
        for i in 0..4u64 {
            events += d
                .observe(src, 200 + i as u16, base + Duration::from_secs(50 + i))
                .1
                .iter()
                .count();
        }
        assert_eq!(events, 1);
        // Whereas the first four have left the window by t=120 s.
        let other = v4(203, 0, 113, 11);
        let mut events = 0;
        for i in 0..4u64 {
            events += d
                .observe(other, 100 + i as u16, base + Duration::from_secs(i))
                .1
                .iter()
                .count();
        }
        for i in 0..4u64 {
            events += d
                .observe(other, 200 + i as u16, base + Duration::from_secs(70 + i))
                .1
                .iter()
                .count();
        }
        assert_eq!(events, 0);
    }

    #[test]
    fn a_new_scan_after_a_quiet_window_is_raised_again_but_a_continuing_one_is_not() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(198, 51, 100, 2);
        let mut count = 0;
        // A slow, continuing scan: a new port every 5 s for 10 minutes.
        for i in 0..120u64 {
            count += d
                .observe(src, i as u16 + 1, base + Duration::from_secs(5 * i))
                .1
                .iter()
                .count();
        }
        assert_eq!(count, 1);
        // Silence for more than a window, then a second scan.
        let later = base + Duration::from_secs(5 * 120 + 120);
        for i in 0..10u64 {
            count += d
                .observe(src, 2000 + i as u16, later + ms(i))
                .1
                .iter()
                .count();
        }
        assert_eq!(count, 2);
    }

    #[test]
    fn hammering_the_same_ports_does_not_re_raise() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(198, 51, 100, 3);
        let mut count = 0;
        for round in 0..300u64 {
            for port in 0..10u16 {
                let at = base + Duration::from_secs(round) + ms(u64::from(port));
                count += d.observe(src, 5000 + port, at).1.iter().count();
            }
        }
        assert_eq!(count, 1);
    }

    #[test]
    fn a_flood_is_reported_a_little_then_suppressed_and_summarised_exactly() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(192, 0, 2, 66);
        let (mut reported, mut suppressed) = (0u64, 0u64);
        let mut summaries = Vec::new();
        let mut first_suppress = None;
        // 5,000 connections to two ports, one every 10 ms (50 s), ticking every second.
        for i in 0..5000u64 {
            let now = base + ms(i * 10);
            let port = if i % 2 == 0 { 445 } else { 3389 };
            match d.observe(src, port, now).0 {
                Verdict::Report => {
                    assert!(first_suppress.is_none(), "reported again at {i}");
                    reported += 1;
                }
                Verdict::Suppress => {
                    first_suppress.get_or_insert(i);
                    suppressed += 1;
                }
            }
            if i % 100 == 0 {
                summaries.extend(d.tick(now));
            }
        }
        // Drain: the last summary is due one window later; the source is then forgotten.
        for s in 50..200u64 {
            summaries.extend(d.tick(base + Duration::from_secs(s)));
        }
        assert_eq!(
            reported, 29,
            "the 30th connection in the window makes the flood"
        );
        assert_eq!(reported + suppressed, 5000);
        assert_eq!(
            summaries.iter().map(|s| s.connections).sum::<u64>(),
            suppressed
        );
        // One summary per flood window, not one per connection.
        assert!((5..=7).contains(&summaries.len()), "{}", summaries.len());
        for s in &summaries {
            assert_eq!(s.src, src);
            assert_eq!(s.ports, [445, 3389]);
            assert!(s.since_secs >= 9 && s.since_secs <= 11, "{s:?}");
        }
        assert_eq!(
            summaries[0].to_data()["connections"],
            summaries[0].connections
        );
        assert_eq!(d.tracked(), 0, "an idle source is forgotten");
    }

    #[test]
    fn a_burst_at_one_instant_is_suppressed_and_summarised() {
        let mut d = Detector::new(ScanConfig::default());
        let now = Instant::now();
        let src = v4(192, 0, 2, 67);
        let verdicts: Vec<Verdict> = (0..5000).map(|_| d.observe(src, 80, now).0).collect();
        let reported = verdicts.iter().filter(|&&v| v == Verdict::Report).count();
        assert_eq!(reported, 29);
        assert!(verdicts[29..].iter().all(|&v| v == Verdict::Suppress));
        assert!(
            d.tick(now + ms(9_999)).is_empty(),
            "not due before a whole window"
        );
        let summaries = d.tick(now + Duration::from_secs(10));
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].connections, 5000 - 29);
        assert_eq!(summaries[0].ports, [80]);
        assert_eq!(summaries[0].since_secs, 10);
        assert!(
            d.tick(now + Duration::from_secs(20)).is_empty(),
            "nothing new to summarise"
        );
    }

    #[test]
    fn a_flood_ends_when_the_rate_drops() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(192, 0, 2, 68);
        for _ in 0..100 {
            d.observe(src, 80, base);
        }
        assert_eq!(
            d.observe(src, 80, base + Duration::from_secs(5)).0,
            Verdict::Suppress
        );
        // 25 s later the window holds one connection: reported again.
        assert_eq!(
            d.observe(src, 80, base + Duration::from_secs(30)).0,
            Verdict::Report
        );
        // And a slow trickle (one every 2 s, five per window) stays reported.
        for i in 1..50u64 {
            let at = base + Duration::from_secs(30 + 2 * i);
            assert_eq!(d.observe(src, 80, at).0, Verdict::Report, "{i}");
        }
    }

    #[test]
    fn a_flooding_source_that_scans_still_raises_its_scan() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let src = v4(192, 0, 2, 69);
        for i in 0..200u64 {
            d.observe(src, 22, base + ms(i));
        }
        let mut scans = Vec::new();
        for (i, port) in (8000..8020u16).enumerate() {
            let (verdict, scan) = d.observe(src, port, base + ms(200 + i as u64));
            assert_eq!(verdict, Verdict::Suppress);
            scans.extend(scan);
        }
        assert_eq!(scans.len(), 1);
        assert_eq!(scans[0].count, 8);
        assert!(scans[0].ports.contains(&22));
        let summary = d.tick(base + Duration::from_secs(11));
        assert_eq!(summary.len(), 1);
        assert_eq!(
            summary[0].ports.len(),
            FLOOD_PORTS,
            "ports listed are bounded"
        );
    }

    #[test]
    fn many_sources_stay_within_the_bound_and_evictions_are_counted() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        for i in 0..100_000u32 {
            let [_, b, c, e] = i.to_be_bytes();
            d.observe(v4(10, b, c, e), 22, base + ms(u64::from(i)));
            assert!(d.tracked() <= MAX_SOURCES);
        }
        assert_eq!(d.tracked(), MAX_SOURCES);
        assert_eq!(d.evicted(), 100_000 - MAX_SOURCES as u64);
    }

    #[test]
    fn the_least_recently_seen_source_is_evicted() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let keep = v4(192, 0, 2, 1);
        let scanner = v4(192, 0, 2, 2);
        // The scanner touches 7 ports early, then stays quiet.
        for port in 1..=7u16 {
            d.observe(scanner, port, base);
        }
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let [_, b, c, e] = i.to_be_bytes();
            let now = base + ms(1 + u64::from(i));
            d.observe(v4(10, b, c, e), 80, now);
            // One source stays active and must never be the one dropped.
            d.observe(keep, 80, now);
        }
        assert_eq!(d.evicted(), 12);
        // The scanner's record was dropped: its 8th port starts a fresh count.
        let (_, scan) = d.observe(scanner, 8, base + ms(2000));
        assert!(scan.is_none());
        assert_eq!(d.evicted(), 13);
        // The active source is still known: touching 7 more ports makes 8 with port 80.
        let mut raised = 0;
        for port in 1..=7u16 {
            raised += d.observe(keep, port, base + ms(2001)).1.iter().count();
        }
        assert_eq!(raised, 1);
    }

    #[test]
    fn ipv6_sources_are_tracked_and_ipv4_mapped_ones_are_ipv4() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x42));
        let mut events = Vec::new();
        for port in 1..=8u16 {
            events.extend(d.observe(v6, port, base).1);
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].src, v6);
        assert_eq!(events[0].to_data()["src_ip"], "2001:db8::42");

        // The same IPv4 host seen through an IPv4 listener and a dual-stack one.
        let plain = v4(198, 51, 100, 77);
        let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 77).to_ipv6_mapped());
        let mut events = Vec::new();
        for port in 1..=4u16 {
            events.extend(d.observe(plain, port, base).1);
            events.extend(d.observe(mapped, port + 100, base).1);
        }
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].src, plain);
        assert_eq!(d.tracked(), 2);
    }

    #[test]
    fn ipv6_floods_are_summarised_too() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now();
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 3, 4, 5, 6));
        let suppressed = (0..1000)
            .filter(|&i| d.observe(v6, 443, base + ms(i)).0 == Verdict::Suppress)
            .count() as u64;
        let summaries = d.tick(base + Duration::from_secs(11));
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].src, v6);
        assert_eq!(summaries[0].connections, suppressed);
    }

    #[test]
    fn idle_sources_are_forgotten_only_after_both_windows() {
        let config = ScanConfig {
            scan_window: Duration::from_secs(60),
            flood_window: Duration::from_secs(10),
            ..ScanConfig::default()
        };
        let mut d = Detector::new(config);
        let base = Instant::now();
        d.observe(v4(192, 0, 2, 1), 80, base);
        d.tick(base + Duration::from_secs(30));
        assert_eq!(d.tracked(), 1, "still within the scan window");
        d.tick(base + Duration::from_secs(60));
        assert_eq!(d.tracked(), 1);
        d.tick(base + Duration::from_secs(61));
        assert_eq!(d.tracked(), 0);
    }

    #[test]
    fn zero_thresholds_turn_detection_off() {
        let config = ScanConfig {
            scan_ports: 0,
            flood_connections: 0,
            ..ScanConfig::default()
        };
        let mut d = Detector::new(config);
        let base = Instant::now();
        let src = v4(192, 0, 2, 1);
        for i in 0..1000u64 {
            let (verdict, scan) = d.observe(src, i as u16, base + ms(i));
            assert_eq!(verdict, Verdict::Report);
            assert!(scan.is_none());
        }
        assert!(d.tick(base + Duration::from_secs(100)).is_empty());
    }

    #[test]
    fn a_threshold_above_the_port_memory_is_capped() {
        let config = ScanConfig {
            scan_ports: 1000,
            ..ScanConfig::default()
        };
        let mut d = Detector::new(config);
        let base = Instant::now();
        let src = v4(192, 0, 2, 1);
        let events: Vec<ScanEvent> = (0..500u16)
            .filter_map(|p| d.observe(src, p, base + ms(u64::from(p))).1)
            .collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].ports.len(), PORTS_PER_SOURCE);
    }

    #[test]
    fn time_going_backwards_or_instants_before_the_first_are_tolerated() {
        let mut d = Detector::new(ScanConfig::default());
        let base = Instant::now() + Duration::from_secs(1000);
        let src = v4(192, 0, 2, 1);
        d.observe(src, 1, base);
        for i in 0..100u64 {
            d.observe(src, i as u16, base - Duration::from_secs(i));
            d.tick(base - Duration::from_secs(i * 3));
        }
        assert!(d.tracked() <= MAX_SOURCES);
    }

    #[test]
    fn very_long_and_zero_windows_do_not_misbehave() {
        let src = v4(192, 0, 2, 1);
        let base = Instant::now();
        for window in [Duration::ZERO, ms(1), Duration::from_secs(86_400 * 365)] {
            let config = ScanConfig {
                scan_window: window,
                flood_window: window,
                ..ScanConfig::default()
            };
            let mut d = Detector::new(config);
            for i in 0..200u64 {
                d.observe(src, (i % 20) as u16, base + ms(i * 7));
                d.tick(base + ms(i * 7));
            }
            assert!(d.tracked() <= 1);
        }
        // A long uptime: stamps wrap many times without a stale port looking fresh.
        let mut d = Detector::new(ScanConfig::default());
        let src = v4(192, 0, 2, 2);
        let mut raised = 0;
        for i in 0..6000u64 {
            // A new port every 20 s for 33 hours: three within any minute, never eight,
            // while the 16-bit ticks (58.6 ms each here) wrap about every 64 minutes.
            raised += d
                .observe(src, (i % 500) as u16, base + Duration::from_secs(20 * i))
                .1
                .iter()
                .count();
        }
        assert_eq!(raised, 0);
    }

    #[test]
    fn the_whole_table_is_a_few_hundred_kilobytes() {
        let size = std::mem::size_of::<Sources>();
        assert!(size <= 400 * 1024, "{size} bytes");
        // The detector itself stays small to move around.
        assert!(std::mem::size_of::<Detector>() <= 128);
    }

    #[test]
    fn random_calls_never_panic_and_never_exceed_the_bounds() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let base = Instant::now() + Duration::from_secs(100_000);
        for round in 0..4 {
            let config = ScanConfig {
                scan_ports: (next() % 70) as u16,
                scan_window: ms(next() % 120_000),
                flood_connections: (next() % 50) as u32,
                flood_window: ms(next() % 30_000),
            };
            let mut d = Detector::new(config);
            let mut clock = 0u64;
            let (mut suppressed, mut summarised) = (0u64, 0u64);
            for _ in 0..60_000 {
                let r = next();
                // Mostly forward, sometimes a jump, rarely backwards.
                clock = match r % 100 {
                    0 => clock.saturating_sub(next() % 5_000),
                    1..=3 => clock + next() % 200_000,
                    _ => clock + next() % 50,
                };
                let now = base + ms(clock) - Duration::from_secs(50_000);
                if r % 97 == 0 {
                    let summaries = d.tick(now);
                    assert!(summaries.len() <= MAX_SOURCES);
                    for s in &summaries {
                        assert!(s.ports.len() <= FLOOD_PORTS && !s.ports.is_empty());
                        assert!(s.connections > 0);
                        summarised += s.connections;
                    }
                } else {
                    // A mix of few busy sources and many one-off ones, v4 and v6.
                    // Even rounds stay below MAX_SOURCES, odd ones overflow it.
                    let many = if round % 2 == 0 { 300 } else { 3000 };
                    let src = match (r >> 8) % 4 {
                        0 => v4(10, 0, 0, (next() % 4) as u8),
                        1 => IpAddr::V6(Ipv6Addr::new(
                            0x2001,
                            0xdb8,
                            0,
                            0,
                            0,
                            0,
                            0,
                            (next() % many) as u16,
                        )),
                        2 => {
                            IpAddr::V6(Ipv4Addr::new(10, 0, 0, (next() % 4) as u8).to_ipv6_mapped())
                        }
                        _ => v4(172, 16, 0, (next() % (many / 12)) as u8),
                    };
                    let port = (next() % 300) as u16;
                    let (verdict, scan) = d.observe(src, port, now);
                    if verdict == Verdict::Suppress {
                        suppressed += 1;
                    }
                    if let Some(scan) = scan {
                        assert!(scan.ports.len() <= PORTS_PER_SOURCE);
                        assert_eq!(scan.count as usize, scan.ports.len());
                        assert!(scan.ports.windows(2).all(|w| w[0] < w[1]));
                    }
                }
                assert!(d.tracked() <= MAX_SOURCES);
            }
            assert!(summarised <= suppressed, "round {round}");
            if d.evicted() == 0 {
                // Without evictions, a final tick far in the future accounts for every
                // suppressed connection.
                let end = base + ms(clock) + Duration::from_secs(1_000_000);
                summarised += d.tick(end).iter().map(|s| s.connections).sum::<u64>();
                assert_eq!(summarised, suppressed, "round {round}");
            }
        }
    }
}
