//! Delivery figures per channel, shared by the channel's worker (which
//! counts) and the reporter (which sends them to the core).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

/// Latency samples kept per channel for the quantiles.
const SAMPLES: usize = 1000;
/// Recent outcomes kept per channel for the dashboard.
pub const RECENT: usize = 50;

/// One delivery outcome, as the dashboard lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The alert's id.
    pub id: String,
    /// When (RFC 3339).
    pub time: String,
    /// Its rule.
    pub rule: String,
    /// Its severity.
    pub severity: String,
    /// The channel.
    pub channel: String,
    /// `sent`, `failed` or `dropped`.
    pub outcome: &'static str,
    /// Its title.
    pub title: String,
    /// Why it failed.
    pub error: Option<String>,
}

/// One channel's figures.
#[derive(Debug, Default)]
pub struct ChannelStats {
    /// Delivered.
    pub sent: u64,
    /// Given up after the last retry.
    pub failed: u64,
    /// Attempts that failed and were retried.
    pub retries: u64,
    /// Dropped because the outbox was full.
    pub dropped: u64,
    /// Waiting now.
    pub queued: u64,
    /// The last error (never a secret: channels do not put them in errors).
    pub last_error: Option<String>,
    latencies: VecDeque<u64>,
    /// The latest outcomes, newest last.
    pub recent: VecDeque<Outcome>,
}

impl ChannelStats {
    /// Records a delivery that took `ms` from the alert being made.
    pub fn delivered(&mut self, ms: u64) {
        self.sent += 1;
        if self.latencies.len() >= SAMPLES {
            self.latencies.pop_front();
        }
        self.latencies.push_back(ms);
    }

    /// Records an outcome for the dashboard.
    pub fn outcome(&mut self, o: Outcome) {
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(o);
    }

    /// The `q` quantile (0–1) of the latencies, in ms.
    pub fn latency(&self, q: f64) -> Option<u64> {
        let mut v: Vec<u64> = self.latencies.iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v.get(i).copied()
    }
}

/// A channel's name, type and figures.
pub type Entry = (String, &'static str, ChannelStats);

/// Every channel's figures.
#[derive(Clone, Debug, Default)]
pub struct Stats(Arc<Mutex<Vec<Entry>>>);

impl Stats {
    /// Adds a channel; its index.
    pub fn add(&self, name: &str, kind: &'static str) -> usize {
        let mut v = self.lock();
        v.push((name.to_string(), kind, ChannelStats::default()));
        v.len() - 1
    }

    /// Changes channel `i`'s figures.
    pub fn with<R>(&self, i: usize, f: impl FnOnce(&mut ChannelStats) -> R) -> Option<R> {
        self.lock().get_mut(i).map(|(_, _, s)| f(s))
    }

    /// Locks them all.
    pub fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
