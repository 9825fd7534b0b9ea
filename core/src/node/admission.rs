//! Admission of new node connections: caps on unregistered connections,
//! overall and per source address, and a per-source connection rate.
//!
//! A connection from a trusted proxy ([`crate::trusted_proxies`]) is
//! admitted in two steps: at accept against the overall cap only
//! ([`Admission::admit_unattributed`]), since the proxy speaks for many
//! clients and must not exhaust its own address's places; then, once its
//! PROXY header named the client, against that client's limits
//! ([`Permit::attribute`]).
//!
//! The overall cap is a queue, not a wall, on the node port: while it is
//! full the accept loop waits ([`Admission::place`]) and newcomers wait in
//! the kernel's listen backlog, to be served in arrival order as places
//! free. A legitimate burst (every node of a failed core arriving at once)
//! is then served at the core's pace instead of refused, and a flood of
//! idle connections holds places only until its registration timeout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most source addresses tracked at once; a fixed bound on network-fed state.
const MAX_SOURCES: usize = 65_536;

/// Why a connection was turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many unregistered connections overall.
    TooManyPending,
    /// Too many unregistered connections from this source.
    SourcePending,
    /// This source connects too fast.
    SourceRate,
    /// Too many unregistered connections from this source's network
    /// (IPv4 /24, IPv6 /64).
    NetworkPending,
    /// A trusted proxy's connection without a valid PROXY header in time.
    /// Not an admission decision, but counted and reported with them.
    ProxyHeader,
}

impl Refusal {
    /// Every reason, for metrics.
    pub const ALL: [Refusal; 5] = [
        Refusal::TooManyPending,
        Refusal::SourcePending,
        Refusal::SourceRate,
        Refusal::NetworkPending,
        Refusal::ProxyHeader,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooManyPending => "too_many_pending",
            Refusal::SourcePending => "source_pending",
            Refusal::SourceRate => "source_rate",
            Refusal::NetworkPending => "network_pending",
            Refusal::ProxyHeader => "proxy_header",
        }
    }
}

/// The limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Unregistered connections overall.
    pub max_pending: usize,
    /// Unregistered connections per source.
    pub max_pending_per_source: usize,
    /// New connections per second per source; bursts of twice this.
    pub rate_per_source: u32,
}

impl Limits {
    /// Unregistered connections per network (IPv4 /24, IPv6 /64): a quarter
    /// of all, so that one attacker's network (many addresses of one
    /// provider, or all of 127.0.0.0/24) cannot take every place.
    pub fn max_pending_per_network(&self) -> usize {
        (self.max_pending / 4).max(self.max_pending_per_source)
    }
}

/// The network an address belongs to for [`Limits::max_pending_per_network`].
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
    }
}

#[derive(Debug)]
struct Source {
    pending: usize,
    tokens: f64,
    refilled: Instant,
}

#[derive(Debug, Default)]
struct State {
    pending: usize,
    sources: HashMap<IpAddr, Source>,
    /// Pending connections per network; entries at zero are removed.
    networks: HashMap<IpAddr, usize>,
}

/// Tracks unregistered connections; cheap to clone.
#[derive(Clone, Debug)]
pub struct Admission {
    limits: Limits,
    state: Arc<Mutex<State>>,
    /// Notified whenever a place frees.
    freed: Arc<event_listener::Event>,
}

/// An admitted, still unregistered connection. Dropping it (registered or
/// closed) frees its place.
#[derive(Debug)]
pub struct Permit {
    admission: Admission,
    /// The source whose places it holds; `None` while a trusted proxy's
    /// connection has not named its client yet (overall place only).
    source: Option<IpAddr>,
}

impl Admission {
    /// A tracker with these limits.
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            state: Arc::new(Mutex::new(State::default())),
            freed: Arc::new(event_listener::Event::new()),
        }
    }

    /// Admits a connection from `source`, or says why not.
    pub fn admit(&self, source: IpAddr, now: Instant) -> Result<Permit, Refusal> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pending >= self.limits.max_pending {
            return Err(Refusal::TooManyPending);
        }
        self.take_source(&mut st, source, now)?;
        st.pending += 1;
        Ok(Permit {
            admission: self.clone(),
            source: Some(source),
        })
    }

    /// [`Admission::admit`] for a connection from `peer`, or
    /// [`Admission::admit_unattributed`] when `peer` is a trusted proxy: its
    /// connections count for the clients its PROXY headers will name.
    pub fn admit_from(
        &self,
        peer: IpAddr,
        proxies: &crate::trusted_proxies::TrustedProxies,
        now: Instant,
    ) -> Result<Permit, Refusal> {
        if proxies.contains(peer) {
            self.admit_unattributed()
        } else {
            self.admit(peer, now)
        }
    }

    /// Admits a connection against the overall cap only: one from a trusted
    /// proxy, whose source is not known before its PROXY header. Its
    /// source's limits apply once [`Permit::attribute`] names it.
    pub fn admit_unattributed(&self) -> Result<Permit, Refusal> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.pending >= self.limits.max_pending {
            return Err(Refusal::TooManyPending);
        }
        st.pending += 1;
        Ok(Permit {
            admission: self.clone(),
            source: None,
        })
    }

    /// Takes a place of `source` (rate, per-source and per-network caps);
    /// the overall count is the caller's.
    fn take_source(&self, st: &mut State, source: IpAddr, now: Instant) -> Result<(), Refusal> {
        if st.sources.len() >= MAX_SOURCES && !st.sources.contains_key(&source) {
            self.prune(st, now);
            if st.sources.len() >= MAX_SOURCES {
                return Err(Refusal::TooManyPending);
            }
        }
        let rate = f64::from(self.limits.rate_per_source);
        let burst = rate * 2.0;
        let entry = st.sources.entry(source).or_insert(Source {
            pending: 0,
            tokens: burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(entry.refilled).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * rate).min(burst);
        entry.refilled = now;
        if entry.pending >= self.limits.max_pending_per_source {
            return Err(Refusal::SourcePending);
        }
        if entry.tokens < 1.0 {
            return Err(Refusal::SourceRate);
        }
        let net_pending = st.networks.get(&network(source)).copied().unwrap_or(0);
        if net_pending >= self.limits.max_pending_per_network() {
            return Err(Refusal::NetworkPending);
        }
        if let Some(entry) = st.sources.get_mut(&source) {
            entry.tokens -= 1.0;
            entry.pending += 1;
        }
        *st.networks.entry(network(source)).or_insert(0) += 1;
        Ok(())
    }

    /// Gives back a place of `source` (not the overall one).
    fn give_source(st: &mut State, source: IpAddr) {
        if let Some(s) = st.sources.get_mut(&source) {
            s.pending = s.pending.saturating_sub(1);
        }
        let net = network(source);
        if let Some(n) = st.networks.get_mut(&net) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.networks.remove(&net);
            }
        }
    }

    /// Waits until the overall cap has a free place; `on_full` runs once
    /// if it has to wait.
    pub async fn place(&self, on_full: impl FnOnce()) {
        let mut on_full = Some(on_full);
        loop {
            // Listen before looking, so a place freed in between wakes us.
            let freed = self.freed.listen();
            if self.pending() < self.limits.max_pending {
                return;
            }
            if let Some(f) = on_full.take() {
                f();
            }
            freed.await;
        }
    }

    /// Unregistered connections now.
    pub fn pending(&self) -> usize {
        self.state.lock().map(|s| s.pending).unwrap_or(0)
    }

    fn prune(&self, st: &mut State, now: Instant) {
        let rate = f64::from(self.limits.rate_per_source);
        let burst = rate * 2.0;
        st.sources.retain(|_, s| {
            let refill = now.saturating_duration_since(s.refilled).as_secs_f64() * rate;
            s.pending > 0 || s.tokens + refill < burst
        });
    }

    fn release(&self, source: Option<IpAddr>) {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.pending = st.pending.saturating_sub(1);
            if let Some(source) = source {
                Self::give_source(&mut st, source);
            }
            if st.sources.len() > MAX_SOURCES / 2 {
                self.prune(&mut st, Instant::now());
            }
        }
        self.freed.notify(1);
    }
}

impl Permit {
    /// Moves this permit to `source`: the client a trusted proxy's PROXY
    /// header named. Its rate, per-source and per-network limits apply as
    /// to a direct connection; refused, the permit is dropped (its overall
    /// place freed) and the reason returned. A permit that already had a
    /// source gives that source's place back.
    pub fn attribute(mut self, source: IpAddr, now: Instant) -> Result<Permit, Refusal> {
        let admission = self.admission.clone();
        let mut st = admission.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = self.source.take() {
            Admission::give_source(&mut st, old);
        }
        admission.take_source(&mut st, source, now)?;
        self.source = Some(source);
        Ok(self)
    }

    /// The source whose places this permit holds, once known.
    pub fn source(&self) -> Option<IpAddr> {
        self.source
    }
}

/// Turns refusals into log lines an operator can read without a flood of
/// them: the first refusal at once, then one summary at most every
/// [`REPORT_EVERY`], with counts per reason and the address refused most.
#[derive(Debug, Default)]
pub struct RefusalReport {
    counts: [u64; Refusal::ALL.len()],
    top: Option<(IpAddr, u64)>,
    by_source: HashMap<IpAddr, u64>,
    last: Option<Instant>,
}

/// The shortest time between two refusal summaries.
pub const REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Sources counted between two summaries; more still count per reason.
const REPORT_SOURCES: usize = 1024;

/// Records a refusal in `report` and logs the summary line when one is due.
pub fn report_refusal(report: &Mutex<RefusalReport>, what: &str, why: Refusal, source: IpAddr) {
    let line =
        report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(what, why, source, Instant::now());
    if let Some(line) = line {
        log::warn!("{line}");
    }
}

impl RefusalReport {
    /// Records a refusal of `source` for `why`; returns a line to log
    /// when one is due (`what` names the port: "node connections").
    pub fn record(
        &mut self,
        what: &str,
        why: Refusal,
        source: IpAddr,
        now: Instant,
    ) -> Option<String> {
        let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        if self.by_source.len() < REPORT_SOURCES || self.by_source.contains_key(&source) {
            let n = self.by_source.entry(source).or_insert(0);
            *n += 1;
            if self.top.is_none_or(|(_, best)| *n > best) {
                self.top = Some((source, *n));
            }
        }
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < REPORT_EVERY)
        {
            return None;
        }
        let reasons: Vec<String> = Refusal::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{} {n}", r.label()))
            .collect();
        let line = format!(
            "refused {} {what} ({}); most from {} ({} addresses){}",
            self.counts.iter().sum::<u64>(),
            reasons.join(", "),
            self.top.map(|(ip, _)| ip.to_string()).unwrap_or_default(),
            self.by_source.len(),
            if self.last.is_some() {
                format!(" in the last {} s or more", REPORT_EVERY.as_secs())
            } else {
                String::new()
            }
        );
        *self = RefusalReport {
            last: Some(now),
            ..RefusalReport::default()
        };
        Some(line)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.release(self.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_and_rate() {
        let a = Admission::new(Limits {
            max_pending: 10,
            max_pending_per_source: 3,
            rate_per_source: 2,
        });
        let t = Instant::now();
        let p: Vec<_> = (0..3)
            .map(|_| a.admit(ip("127.0.0.1"), t).unwrap())
            .collect();
        assert_eq!(
            a.admit(ip("127.0.0.1"), t).unwrap_err(),
            Refusal::SourcePending
        );
        drop(p);
        // 4 tokens of burst: 3 used above, one left.
        let _p = a.admit(ip("127.0.0.1"), t).unwrap();
        assert_eq!(
            a.admit(ip("127.0.0.1"), t).unwrap_err(),
            Refusal::SourceRate
        );
        let later = t + Duration::from_secs(1);
        let _q = a.admit(ip("127.0.0.1"), later).unwrap();
        let mut others = Vec::new();
        for i in 2..12 {
            match a.admit(ip(&format!("127.0.{i}.1")), t) {
                Ok(p) => others.push(p),
                Err(e) => assert_eq!(e, Refusal::TooManyPending),
            }
        }
        assert_eq!(a.pending(), 10);
        drop(others);
        assert_eq!(a.pending(), 2);
    }

    #[test]
    fn one_network_gets_a_quarter_of_the_places() {
        let a = Admission::new(Limits {
            max_pending: 64,
            max_pending_per_source: 4,
            rate_per_source: 1000,
        });
        let now = Instant::now();
        let mut held = Vec::new();
        for host in 1..=4u8 {
            for _ in 0..4 {
                held.push(a.admit(IpAddr::from([127, 0, 0, host]), now).unwrap());
            }
        }
        // 16 = 64 / 4 from 127.0.0.0/24; a fifth address there is refused…
        assert_eq!(
            a.admit(ip("127.0.0.5"), now).unwrap_err(),
            Refusal::NetworkPending
        );
        // …another network is not.
        held.push(a.admit(ip("127.0.1.1"), now).unwrap());
        held.truncate(15);
        assert!(
            a.admit(ip("127.0.0.5"), now).is_ok(),
            "a freed place is reusable"
        );
    }

    #[test]
    fn a_proxys_connections_count_for_the_clients_they_name() {
        let a = Admission::new(Limits {
            max_pending: 8,
            max_pending_per_source: 2,
            rate_per_source: 1000,
        });
        let now = Instant::now();
        // The proxy's own address never runs out of places...
        let waiting: Vec<_> = (0..5).map(|_| a.admit_unattributed().unwrap()).collect();
        assert_eq!(a.pending(), 5);
        assert!(waiting.iter().all(|p| p.source().is_none()));
        let mut waiting = waiting.into_iter();
        let mut next = || waiting.next().unwrap();
        // ...the clients they name have theirs.
        let c1 = next().attribute(ip("192.0.2.1"), now).unwrap();
        let c2 = next().attribute(ip("192.0.2.1"), now).unwrap();
        assert_eq!(c1.source(), Some(ip("192.0.2.1")));
        assert_eq!(
            next().attribute(ip("192.0.2.1"), now).unwrap_err(),
            Refusal::SourcePending
        );
        // The refused one gave its overall place back.
        assert_eq!(a.pending(), 4);
        let other = next().attribute(ip("198.51.100.2"), now).unwrap();
        // A direct connection from that client shares its places.
        assert_eq!(
            a.admit(ip("192.0.2.1"), now).unwrap_err(),
            Refusal::SourcePending
        );
        drop(c1);
        let direct = a.admit(ip("192.0.2.1"), now).unwrap();
        // The overall cap still binds the proxy.
        let more: Vec<_> = (0..4).map(|_| a.admit_unattributed().unwrap()).collect();
        assert_eq!(a.admit_unattributed().unwrap_err(), Refusal::TooManyPending);
        // Re-attributing moves the place.
        let moved = other.attribute(ip("203.0.113.3"), now).unwrap();
        assert!(a.admit(ip("198.51.100.2"), now).is_err(), "overall cap");
        drop((c2, direct, moved, more, next()));
        assert_eq!(a.pending(), 0);
        let st = a.state.lock().unwrap();
        assert!(st.networks.is_empty(), "{:?}", st.networks);
        assert!(st.sources.values().all(|s| s.pending == 0));
    }

    #[test]
    fn refusals_are_reported_at_once_then_summarised() {
        let mut r = RefusalReport::default();
        let t0 = Instant::now();
        let first = r.record("node connections", Refusal::SourceRate, ip("10.0.0.1"), t0);
        assert!(first.unwrap().contains("source_rate 1"));
        for i in 0..500u32 {
            let src = IpAddr::from([10, 0, (i % 3) as u8, 1]);
            assert_eq!(
                r.record("node connections", Refusal::SourcePending, src, t0),
                None
            );
        }
        let later = t0 + REPORT_EVERY;
        let line = r
            .record(
                "node connections",
                Refusal::SourcePending,
                ip("10.0.0.1"),
                later,
            )
            .unwrap();
        assert!(
            line.contains("refused 501 node connections (source_pending 501)"),
            "{line}"
        );
        assert!(line.contains("most from 10.0.0.1 (3 addresses)"), "{line}");
    }
}
