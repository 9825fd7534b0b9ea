//! Noise control, as decisions on plain values (time is an input): per
//! rule and source the first event alerts at once and the rest of the
//! window is folded into one digest at the window's end; per channel at
//! most `max_per_minute` alerts go out, the rest are counted and
//! summarised once the minute is over.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Most windows open at once. Beyond, events of new sources fold into one
/// window per rule for "other sources", so a flood of spoofed addresses
/// cannot grow memory.
pub const MAX_WINDOWS: usize = 10_000;
/// Distinct event types counted per window; the rest count as `other`.
const MAX_TYPES: usize = 16;
/// Distinct nodes remembered per window (counting stops growing there).
const MAX_NODES: usize = 64;
/// The source key of the overflow window.
pub const OTHER_SOURCES: &str = "other sources";

/// One open window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// When it opened (ms since the Unix epoch).
    pub start_ms: u64,
    /// When it closes.
    pub end_ms: u64,
    /// Events folded so far (the first not counted).
    pub count: u64,
    /// Folded events per type.
    pub types: BTreeMap<String, u64>,
    /// Nodes of the folded events.
    pub nodes: Vec<u64>,
    /// The last folded event's alert title, for the digest (a window keeps
    /// no more of its events: ten thousand of them must stay small).
    pub last_title: Option<String>,
}

/// The event being decided on, as a window counts it.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// Its type.
    pub event_type: &'a str,
    /// Its node.
    pub node_id: u64,
    /// Its own alert's title (kept as the digest's sample).
    pub title: &'a str,
}

/// What to do with an event that matched a rule.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Alert now.
    Alert,
    /// Folded into the open window.
    Folded,
}

/// A window that ended with folded events: its digest is due.
#[derive(Debug, PartialEq)]
pub struct DueDigest {
    /// The rule.
    pub rule: String,
    /// The source key (an address, `node:<id>`, or [`OTHER_SOURCES`]).
    pub source: String,
    /// The window.
    pub window: Window,
}

/// All open windows.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Windows {
    open: HashMap<String, HashMap<String, Window>>,
    len: usize,
    /// Events folded into an overflow window because too many were open.
    pub overflowed: u64,
}

impl Windows {
    /// Decides for an event of `rule` from `source` at `now_ms`, with the
    /// rule's `window_ms` (0: always alert). `alert` is what the event's
    /// own alert would be, kept as the digest's sample.
    pub fn observe(
        &mut self,
        rule: &str,
        source: &str,
        window_ms: u64,
        now_ms: u64,
        event: Sample<'_>,
    ) -> Decision {
        let Sample {
            event_type,
            node_id,
            title,
        } = event;
        if window_ms == 0 {
            return Decision::Alert;
        }
        let per_rule = self.open.entry(rule.to_string()).or_default();
        let key = match per_rule.get(source) {
            Some(w) if now_ms < w.end_ms => source,
            // An ended window's digest is taken by `due`; until then a new
            // event of the source starts afresh.
            Some(_) => {
                per_rule.remove(source);
                self.len = self.len.saturating_sub(1);
                source
            }
            None if self.len >= MAX_WINDOWS => {
                self.overflowed += 1;
                OTHER_SOURCES
            }
            None => source,
        };
        match per_rule.get_mut(key) {
            Some(w) if now_ms < w.end_ms => {
                w.count += 1;
                let t = if w.types.len() < MAX_TYPES || w.types.contains_key(event_type) {
                    event_type
                } else {
                    "other"
                };
                *w.types.entry(t.to_string()).or_default() += 1;
                if w.nodes.len() < MAX_NODES && !w.nodes.contains(&node_id) {
                    w.nodes.push(node_id);
                }
                w.last_title = Some(title.to_string());
                Decision::Folded
            }
            _ => {
                if per_rule.remove(key).is_some() {
                    self.len = self.len.saturating_sub(1);
                }
                per_rule.insert(
                    key.to_string(),
                    Window {
                        start_ms: now_ms,
                        end_ms: now_ms.saturating_add(window_ms),
                        count: 0,
                        types: BTreeMap::new(),
                        nodes: Vec::new(),
                        last_title: None,
                    },
                );
                self.len += 1;
                Decision::Alert
            }
        }
    }

    /// Removes the windows that ended by `now_ms`; those with folded
    /// events are returned, their digests due, oldest first.
    pub fn due(&mut self, now_ms: u64) -> Vec<DueDigest> {
        let mut out = Vec::new();
        self.due_each(now_ms, |d| out.push(d));
        out
    }

    /// As [`Windows::due`], but hands each digest to `emit` as it is taken
    /// out, oldest first. Why: after a stall (a lagged stream, say)
    /// thousands of windows end at once, and their digests, each composed
    /// into an alert of a few KiB, held all together were the module's
    /// peak memory; only the keys of the ended windows are held here.
    pub fn due_each(&mut self, now_ms: u64, mut emit: impl FnMut(DueDigest)) {
        let mut ended: Vec<(u64, String, String)> = Vec::new();
        for (rule, per_rule) in &self.open {
            for (source, w) in per_rule {
                if w.end_ms <= now_ms {
                    ended.push((w.start_ms, rule.clone(), source.clone()));
                }
            }
        }
        ended.sort_unstable();
        for (_, rule, source) in ended {
            let Some(per_rule) = self.open.get_mut(&rule) else {
                continue;
            };
            if let Some(window) = per_rule.remove(&source) {
                self.len = self.len.saturating_sub(1);
                if window.count > 0 {
                    emit(DueDigest {
                        rule,
                        source,
                        window,
                    });
                }
            }
        }
        self.open.retain(|_, w| !w.is_empty());
        // A burst's capacity is not kept once its windows have ended.
        for per_rule in self.open.values_mut() {
            if per_rule.capacity() > 4 * per_rule.len().max(256) {
                per_rule.shrink_to_fit();
            }
        }
    }

    /// Windows open now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One channel's per-minute ceiling.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    minute: u64,
    sent: u32,
    /// Alerts held back this minute, per rule.
    pub held: BTreeMap<String, u64>,
}

/// The summary owed for a minute in which alerts were held back.
#[derive(Debug, PartialEq)]
pub struct HeldBack {
    /// The minute (ms since the epoch of its start).
    pub minute_start_ms: u64,
    /// Alerts held back, per rule.
    pub held: BTreeMap<String, u64>,
}

impl Ceiling {
    /// Whether one more alert may go out at `now_ms` under `max` per
    /// minute; if not, it is counted for `rule`. A minute that ended with
    /// alerts held back is returned, its summary due (it is sent even
    /// beyond the ceiling: one line per minute at most).
    pub fn admit(&mut self, rule: &str, max: u32, now_ms: u64) -> (bool, Option<HeldBack>) {
        let ended = self.roll(now_ms);
        if self.sent < max {
            self.sent += 1;
            (true, ended)
        } else {
            if self.held.len() < 64 || self.held.contains_key(rule) {
                *self.held.entry(rule.to_string()).or_default() += 1;
            } else {
                *self.held.entry("other".into()).or_default() += 1;
            }
            (false, ended)
        }
    }

    /// Closes the minute if `now_ms` is past it; its held-back summary.
    pub fn roll(&mut self, now_ms: u64) -> Option<HeldBack> {
        let minute = now_ms / 60_000;
        if minute == self.minute {
            return None;
        }
        let was = std::mem::take(&mut self.held);
        let start = self.minute * 60_000;
        self.minute = minute;
        self.sent = 0;
        (!was.is_empty()).then_some(HeldBack {
            minute_start_ms: start,
            held: was,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_alerts_and_the_rest_of_the_window_is_one_digest() {
        let mut w = Windows::default();
        let min10 = 600_000;
        assert_eq!(
            w.observe(
                "r",
                "203.0.113.7",
                min10,
                0,
                Sample {
                    event_type: "login",
                    node_id: 1,
                    title: "x"
                }
            ),
            Decision::Alert
        );
        for i in 1..=57u64 {
            let t = if i <= 41 { "login" } else { "command" };
            assert_eq!(
                w.observe(
                    "r",
                    "203.0.113.7",
                    min10,
                    i * 1000,
                    Sample {
                        event_type: t,
                        node_id: i % 3,
                        title: "x"
                    }
                ),
                Decision::Folded
            );
        }
        // Another source has its own window; another rule too.
        assert_eq!(
            w.observe(
                "r",
                "198.51.100.1",
                min10,
                5000,
                Sample {
                    event_type: "login",
                    node_id: 1,
                    title: "x"
                }
            ),
            Decision::Alert
        );
        assert_eq!(
            w.observe(
                "q",
                "203.0.113.7",
                min10,
                5000,
                Sample {
                    event_type: "login",
                    node_id: 1,
                    title: "x"
                }
            ),
            Decision::Alert
        );
        assert!(w.due(min10 - 1).is_empty());
        let due = w.due(min10);
        assert_eq!(
            due.len(),
            1,
            "only the window with folded events has a digest"
        );
        let d = &due[0];
        assert_eq!(
            (d.rule.as_str(), d.source.as_str(), d.window.count),
            ("r", "203.0.113.7", 57)
        );
        assert_eq!(d.window.types.get("login"), Some(&41));
        assert_eq!(d.window.types.get("command"), Some(&16));
        assert_eq!(d.window.nodes.len(), 3);
        assert_eq!(
            w.len(),
            2,
            "the ended window is closed, the later ones stay"
        );
        assert_eq!(
            w.observe(
                "r",
                "203.0.113.7",
                min10,
                min10 + 1,
                Sample {
                    event_type: "login",
                    node_id: 1,
                    title: "x"
                }
            ),
            Decision::Alert
        );
    }

    #[test]
    fn a_zero_window_alerts_every_time() {
        let mut w = Windows::default();
        for t in 0..5 {
            assert_eq!(
                w.observe(
                    "down",
                    "node:1",
                    0,
                    t,
                    Sample {
                        event_type: "node.status",
                        node_id: 1,
                        title: "x"
                    }
                ),
                Decision::Alert
            );
        }
        assert!(w.is_empty());
    }

    #[test]
    fn a_flood_of_sources_is_bounded_and_folded() {
        let mut w = Windows::default();
        let mut alerted = 0;
        for i in 0..(MAX_WINDOWS as u64 + 5000) {
            if w.observe(
                "r",
                &format!("s{i}"),
                60_000,
                10,
                Sample {
                    event_type: "x",
                    node_id: 1,
                    title: "x",
                },
            ) == Decision::Alert
            {
                alerted += 1;
            }
        }
        assert_eq!(w.len(), MAX_WINDOWS + 1);
        assert_eq!(
            alerted,
            MAX_WINDOWS + 1,
            "one alert per source up to the bound, one for the rest"
        );
        assert_eq!(w.overflowed, 5000);
        let due = w.due(60_010);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].source.as_str(), due[0].window.count),
            (OTHER_SOURCES, 4999)
        );
    }

    #[test]
    fn ended_windows_are_handed_out_one_by_one_oldest_first_and_capacity_is_given_back() {
        let mut w = Windows::default();
        let sample = Sample {
            event_type: "x",
            node_id: 1,
            title: "x",
        };
        // 5,000 sources, each with one folded event, opened in reverse
        // order of their names.
        for i in 0..5000u64 {
            let s = format!("s{i}");
            let t = 10_000 - i;
            assert_eq!(w.observe("r", &s, 1000, t, sample), Decision::Alert);
            assert_eq!(w.observe("r", &s, 1000, t + 1, sample), Decision::Folded);
        }
        let big = w.open["r"].capacity();
        // Two windows stay open, so the rule's map is kept (and shrunk).
        w.observe("r", "late-1", 1000, 20_000, sample);
        w.observe("r", "late-2", 1000, 20_000, sample);
        let mut starts = Vec::new();
        w.due_each(11_001, |d| {
            assert_eq!(d.window.count, 1);
            starts.push(d.window.start_ms);
        });
        assert_eq!(starts.len(), 5000, "every folded window, none lost");
        assert!(starts.windows(2).all(|p| p[0] <= p[1]), "oldest first");
        assert_eq!(w.len(), 2);
        assert!(
            w.open["r"].capacity() < big / 4,
            "the burst's room is freed"
        );
    }

    #[test]
    fn the_ceiling_holds_back_and_summarises_once_a_minute() {
        let mut c = Ceiling::default();
        let t0 = 120_000;
        for _ in 0..3 {
            assert_eq!(c.admit("r", 3, t0), (true, None));
        }
        for _ in 0..10 {
            assert_eq!(c.admit("r", 3, t0 + 1000), (false, None));
        }
        assert_eq!(c.admit("q", 3, t0 + 2000), (false, None));
        let (ok, held) = c.admit("r", 3, t0 + 60_000);
        assert!(ok);
        let held = held.unwrap();
        assert_eq!(held.minute_start_ms, t0);
        assert_eq!(held.held.get("r"), Some(&10));
        assert_eq!(held.held.get("q"), Some(&1));
        assert_eq!(c.roll(t0 + 60_500), None);
    }
}
