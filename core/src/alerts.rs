//! What alert modules report about their deliveries: per channel figures
//! and the latest alerts, for `GET /api/v1/alerts`, `/metrics` and the
//! dashboard's Alerts panel.
//!
//! The core knows nothing of rules or channels beyond the shape of a
//! report (`POST /api/v1/alerts/report`, behaviour.md). It keeps, in
//! memory, the latest figures per (module, channel) and one ring of the
//! most recent alerts of every module. Everything is bounded, whatever a
//! module sends: [`MAX_MODULES`] modules of [`MAX_CHANNELS`] channels (the
//! ones that reported longest ago make room), [`RECENT`] alerts, and every
//! string. With several cores only the leader runs modules, so only its
//! board fills.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};

use honeybee_proto::time::{format_rfc3339, now_unix, parse_rfc3339};
use serde::{Deserialize, Serialize};

use crate::metrics::label_value;
use crate::node::budget::clip;

/// Largest report body, in bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// Recent alerts kept, every module together.
pub const RECENT: usize = 200;
/// Modules whose figures are kept.
pub const MAX_MODULES: usize = 8;
/// Channels per module (and per report).
pub const MAX_CHANNELS: usize = 32;
/// Longest module, channel or rule name, in bytes.
pub const MAX_NAME: usize = 64;
/// Longest channel type or severity, in bytes.
pub const MAX_KIND: usize = 32;
/// Longest alert id kept, in bytes (longer ones are cut, with `…`). Ids
/// are opaque: a module may build them from attack data (a source, a pot).
pub const MAX_ID: usize = 256;
/// Longest time, in bytes.
pub const MAX_TIME: usize = 64;
/// Longest alert title kept, in bytes (longer ones are cut, with `…`).
pub const MAX_TITLE: usize = 200;
/// Longest error kept, in bytes (longer ones are cut, with `…`).
pub const MAX_ERROR: usize = 300;

/// A report as posted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The module's name (`A-Z a-z 0-9 _ - .`, 1 to 64).
    pub module: String,
    /// Its channels' figures now (a name listed twice: the later wins).
    pub channels: Vec<ChannelReport>,
    /// Alerts it handled lately, in any order.
    pub recent: Vec<RecentReport>,
}

/// One channel's figures as reported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelReport {
    /// Its name.
    pub name: String,
    /// Its kind (`webhook`, `syslog`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Alerts delivered.
    pub sent: u64,
    /// Alerts given up on.
    pub failed: u64,
    /// Attempts retried.
    pub retries: u64,
    /// Alerts dropped (queue full).
    pub dropped: u64,
    /// Alerts waiting now.
    pub queued: u64,
    /// Median delivery latency, if any alert was delivered.
    #[serde(default)]
    pub latency_ms_p50: Option<u64>,
    /// 99th percentile delivery latency.
    #[serde(default)]
    pub latency_ms_p99: Option<u64>,
    /// The last delivery error.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// How an alert's delivery on a channel ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Delivered.
    Sent,
    /// Given up after the retries.
    Failed,
    /// Not tried: the channel's queue was full.
    Dropped,
}

/// One alert on one channel as reported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecentReport {
    /// The alert's id (the same alert on two channels has one id).
    pub id: String,
    /// When it was raised (RFC 3339).
    pub time: String,
    /// Its rule.
    pub rule: String,
    /// Its severity.
    pub severity: String,
    /// The channel.
    pub channel: String,
    /// What happened.
    pub outcome: Outcome,
    /// Its title (attack data: shown as text only).
    pub title: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// A channel as `GET /api/v1/alerts` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ChannelView {
    /// The module that reported it.
    pub module: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    #[serde(rename = "type")]
    pub kind: String,
    /// Alerts delivered.
    pub sent: u64,
    /// Alerts given up on.
    pub failed: u64,
    /// Attempts retried.
    pub retries: u64,
    /// Alerts dropped.
    pub dropped: u64,
    /// Alerts waiting.
    pub queued: u64,
    /// Median latency.
    pub latency_ms_p50: Option<u64>,
    /// 99th percentile latency.
    pub latency_ms_p99: Option<u64>,
    /// The last error.
    pub last_error: Option<String>,
    /// When the core received these figures (RFC 3339).
    pub reported_at: String,
}

/// A recent alert as `GET /api/v1/alerts` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecentView {
    /// The module that reported it.
    pub module: String,
    /// The alert's id.
    pub id: String,
    /// When it was raised (RFC 3339, UTC).
    pub time: String,
    /// Its rule.
    pub rule: String,
    /// Its severity.
    pub severity: String,
    /// The channel.
    pub channel: String,
    /// What happened.
    pub outcome: Outcome,
    /// Its title.
    pub title: String,
    /// Why it failed.
    pub error: Option<String>,
    /// `time` as unix seconds and nanoseconds, for the order.
    #[serde(skip)]
    at: (i64, u32),
}

/// A metric of every channel: name, type, help, value.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ChannelView) -> u64,
);

/// What a report changed.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Channels now kept for the module.
    pub channels: usize,
    /// Recent alerts that were new (not yet in the ring, and recent enough).
    pub recent_added: usize,
}

struct ModuleFigures {
    /// When it last reported (a counter: newer reports are larger).
    turn: u64,
    /// Its channels by name, each with the turn of its last report.
    channels: BTreeMap<String, (u64, ChannelView)>,
}

#[derive(Default)]
struct Board {
    turn: u64,
    modules: BTreeMap<String, ModuleFigures>,
    /// Newest first.
    recent: Vec<RecentView>,
}

/// The reports of every alert module. See the module docs.
#[derive(Default)]
pub struct AlertBoard {
    board: Mutex<Board>,
}

fn name_ok(s: &str, max: usize, extra: &[u8]) -> bool {
    (1..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || extra.contains(&b))
}

fn check(field: &str, value: &str, max: usize, extra: &[u8]) -> Result<(), String> {
    if name_ok(value, max, extra) {
        return Ok(());
    }
    let allowed: String = extra.iter().map(|&b| char::from(b)).collect();
    Err(format!(
        "{field}: {:?} is not 1 to {max} of A-Z a-z 0-9 _ -{}{allowed}",
        clip(value, 80),
        if allowed.is_empty() { "" } else { " " },
    ))
}

fn clip_opt(text: &Option<String>, max: usize) -> Option<String> {
    text.as_deref().map(|t| clip(t, max))
}

impl Report {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        check("module", &self.module, MAX_NAME, b".")?;
        if self.channels.len() > MAX_CHANNELS {
            return Err(format!(
                "channels: {} channels; at most {MAX_CHANNELS}",
                self.channels.len()
            ));
        }
        for (i, c) in self.channels.iter().enumerate() {
            check(&format!("channels[{i}].name"), &c.name, MAX_NAME, b".")?;
            check(&format!("channels[{i}].type"), &c.kind, MAX_KIND, b".")?;
        }
        for (i, r) in self.recent.iter().enumerate() {
            if r.id.is_empty() {
                return Err(format!("recent[{i}].id: empty"));
            }
            check(&format!("recent[{i}].rule"), &r.rule, MAX_NAME, b".")?;
            check(&format!("recent[{i}].severity"), &r.severity, MAX_KIND, b"")?;
            check(&format!("recent[{i}].channel"), &r.channel, MAX_NAME, b".")?;
            if r.time.len() > MAX_TIME || parse_rfc3339(&r.time).is_none() {
                return Err(format!(
                    "recent[{i}].time: {:?} is not an RFC 3339 time (e.g. 2026-01-15T10:30:00Z)",
                    clip(&r.time, 80)
                ));
            }
        }
        Ok(())
    }
}

impl AlertBoard {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a report; the error (a bad field) changes nothing.
    pub fn report(&self, report: Report) -> Result<Accepted, String> {
        report.validate()?;
        let now = now_unix();
        let reported_at = format_rfc3339(now.0, 0);
        let mut board = self.lock();
        board.turn += 1;
        let turn = board.turn;
        if !board.modules.contains_key(&report.module) && board.modules.len() >= MAX_MODULES {
            // The module that reported longest ago makes room.
            let oldest = board
                .modules
                .iter()
                .min_by_key(|(_, m)| m.turn)
                .map(|(name, _)| name.clone());
            if let Some(name) = oldest {
                log::info!(
                    "alerts: {MAX_MODULES} modules reported; forgetting `{name}`, the least recent"
                );
                board.modules.remove(&name);
            }
        }
        let module = board
            .modules
            .entry(report.module.clone())
            .or_insert_with(|| ModuleFigures {
                turn,
                channels: BTreeMap::new(),
            });
        module.turn = turn;
        for c in &report.channels {
            let view = ChannelView {
                module: report.module.clone(),
                name: c.name.clone(),
                kind: c.kind.clone(),
                sent: c.sent,
                failed: c.failed,
                retries: c.retries,
                dropped: c.dropped,
                queued: c.queued,
                latency_ms_p50: c.latency_ms_p50,
                latency_ms_p99: c.latency_ms_p99,
                last_error: clip_opt(&c.last_error, MAX_ERROR),
                reported_at: reported_at.clone(),
            };
            module.channels.insert(c.name.clone(), (turn, view));
        }
        while module.channels.len() > MAX_CHANNELS {
            // Channels this report did not name, reported longest ago, go.
            let oldest = module
                .channels
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => module.channels.remove(&name),
                None => break,
            };
        }
        let channels = module.channels.len();
        let mut recent_added = 0;
        for r in &report.recent {
            let Some(at) = parse_rfc3339(&r.time) else {
                continue;
            };
            let id = clip(&r.id, MAX_ID);
            let dup = board.recent.iter().any(|o| {
                o.id == id
                    && o.channel == r.channel
                    && o.outcome == r.outcome
                    && o.module == report.module
            });
            if dup {
                continue;
            }
            // Newest first; among equal times the one heard last first.
            let place = board.recent.partition_point(|o| o.at > at);
            if place >= RECENT {
                continue;
            }
            board.recent.insert(
                place,
                RecentView {
                    module: report.module.clone(),
                    id,
                    time: format_rfc3339(at.0, at.1),
                    rule: r.rule.clone(),
                    severity: r.severity.clone(),
                    channel: r.channel.clone(),
                    outcome: r.outcome,
                    title: clip(&r.title, MAX_TITLE),
                    error: clip_opt(&r.error, MAX_ERROR),
                    at,
                },
            );
            board.recent.truncate(RECENT);
            recent_added += 1;
        }
        Ok(Accepted {
            channels,
            recent_added,
        })
    }

    /// Every channel, by module and name, and the recent alerts, newest
    /// first.
    pub fn view(&self) -> (Vec<ChannelView>, Vec<RecentView>) {
        let board = self.lock();
        let channels = board
            .modules
            .values()
            .flat_map(|m| m.channels.values().map(|(_, v)| v.clone()))
            .collect();
        (channels, board.recent.clone())
    }

    /// The `honeybee_alerts_*` metrics, appended to `out`.
    pub fn render_metrics(&self, out: &mut String) {
        let (channels, _) = self.view();
        let series: [Series; 5] = [
            (
                "honeybee_alerts_sent_total",
                "counter",
                "Alerts an alert module delivered, per channel (as the module reported).",
                |c| c.sent,
            ),
            (
                "honeybee_alerts_failed_total",
                "counter",
                "Alerts given up on after the retries, per channel.",
                |c| c.failed,
            ),
            (
                "honeybee_alerts_retries_total",
                "counter",
                "Delivery attempts retried, per channel.",
                |c| c.retries,
            ),
            (
                "honeybee_alerts_dropped_total",
                "counter",
                "Alerts dropped because a channel's queue was full.",
                |c| c.dropped,
            ),
            (
                "honeybee_alerts_queued",
                "gauge",
                "Alerts waiting for delivery, per channel.",
                |c| c.queued,
            ),
        ];
        let labels = |c: &ChannelView| {
            format!(
                "module=\"{}\",channel=\"{}\"",
                label_value(&c.module),
                label_value(&c.name)
            )
        };
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for c in &channels {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(c), value(c));
            }
        }
        let name = "honeybee_alerts_latency_ms";
        let _ = writeln!(
            out,
            "# HELP {name} Delivery latency of alerts in ms, per channel: median and 99th percentile.\n# TYPE {name} gauge"
        );
        for c in &channels {
            for (q, v) in [("0.5", c.latency_ms_p50), ("0.99", c.latency_ms_p99)] {
                if let Some(v) = v {
                    let _ = writeln!(out, "{name}{{{},quantile=\"{q}\"}} {v}", labels(c));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(v: serde_json::Value) -> Report {
        serde_json::from_value(v).unwrap()
    }

    fn channel(name: &str, sent: u64) -> serde_json::Value {
        json!({"name": name, "type": "webhook", "sent": sent, "failed": 1, "retries": 3,
               "dropped": 0, "queued": 0, "latency_ms_p50": 40, "latency_ms_p99": 180,
               "last_error": null})
    }

    fn recent(id: &str, second: u32, outcome: &str) -> serde_json::Value {
        json!({"id": id, "time": format!("2026-12-07T10:00:{second:02}Z"), "rule": "tripwire",
               "severity": "high", "channel": "hook", "outcome": outcome, "title": "t", "error": null})
    }

    #[test]
    fn latest_figures_win_and_recent_is_deduplicated_newest_first() {
        let b = AlertBoard::default();
        let r = b
            .report(report(
                json!({"module": "alerts", "channels": [channel("hook", 1)],
                "recent": [recent("a/1", 1, "failed"), recent("a/1", 2, "sent")]}),
            ))
            .unwrap();
        assert_eq!(
            r,
            Accepted {
                channels: 1,
                recent_added: 2
            }
        );
        let r = b
            .report(report(
                json!({"module": "alerts", "channels": [channel("hook", 5)],
                "recent": [recent("a/1", 2, "sent"), recent("a/2", 0, "sent")]}),
            ))
            .unwrap();
        assert_eq!(r.recent_added, 1);
        let (channels, recent) = b.view();
        assert_eq!(channels.len(), 1);
        assert_eq!(
            (channels[0].sent, channels[0].module.as_str()),
            (5, "alerts")
        );
        let order: Vec<(&str, Outcome)> =
            recent.iter().map(|r| (r.id.as_str(), r.outcome)).collect();
        assert_eq!(
            order,
            [
                ("a/1", Outcome::Sent),
                ("a/1", Outcome::Failed),
                ("a/2", Outcome::Sent)
            ]
        );
    }

    #[test]
    fn everything_is_bounded() {
        let b = AlertBoard::default();
        let long = "x".repeat(5000);
        let mut entries: Vec<_> = (0..300)
            .map(|i| {
                let mut e = recent(&format!("r/{i}"), (i % 60) as u32, "failed");
                e["title"] = json!(long);
                e["error"] = json!(long);
                e
            })
            .collect();
        entries.reverse();
        let channels: Vec<_> = (0..32).map(|i| channel(&format!("c{i}"), i)).collect();
        b.report(report(
            json!({"module": "m0", "channels": channels, "recent": entries}),
        ))
        .unwrap();
        let (_, recent) = b.view();
        assert_eq!(recent.len(), RECENT);
        assert!(recent.iter().all(|r| r.title.len() <= MAX_TITLE));
        assert!(recent
            .iter()
            .all(|r| r.error.as_deref().is_some_and(|e| e.len() <= MAX_ERROR)));
        assert!(recent.windows(2).all(|w| w[0].at >= w[1].at));
        // 33 channels in one report: refused; over time the oldest go.
        let too_many: Vec<_> = (0..33).map(|i| channel(&format!("c{i}"), i)).collect();
        assert!(b
            .report(report(
                json!({"module": "m0", "channels": too_many, "recent": []})
            ))
            .unwrap_err()
            .starts_with("channels"));
        b.report(report(
            json!({"module": "m0", "channels": [channel("new", 1)], "recent": []}),
        ))
        .unwrap();
        let (channels, _) = b.view();
        assert_eq!(channels.len(), MAX_CHANNELS);
        assert!(channels.iter().any(|c| c.name == "new"));
        // A ninth module pushes out the one that reported longest ago.
        for i in 1..=8 {
            b.report(report(
                json!({"module": format!("m{i}"), "channels": [channel("hook", 1)], "recent": []}),
            ))
            .unwrap();
        }
        let (channels, _) = b.view();
        assert!(channels.iter().all(|c| c.module != "m0"));
        assert_eq!(channels.len(), MAX_MODULES);
    }

    #[test]
    fn bad_fields_are_named() {
        let b = AlertBoard::default();
        for (v, field) in [
            (
                json!({"module": "a b", "channels": [], "recent": []}),
                "module",
            ),
            (
                json!({"module": "a", "channels": [], "recent": [{"id": "", "time": "2026-12-07T10:00:00Z",
                    "rule": "r", "severity": "high", "channel": "c", "outcome": "sent", "title": "t"}]}),
                "recent[0].id",
            ),
            (
                json!({"module": "a", "channels": [channel(&"n".repeat(65), 1)], "recent": []}),
                "channels[0].name",
            ),
            (
                json!({"module": "a", "channels": [], "recent": [{"id": "i", "time": "yesterday",
                    "rule": "r", "severity": "high", "channel": "c", "outcome": "sent", "title": "t"}]}),
                "recent[0].time",
            ),
        ] {
            let e = b.report(report(v)).unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
        assert!(serde_json::from_value::<Report>(
            json!({"module": "a", "channels": [], "recent": [], "extra": 1})
        )
        .is_err());
        assert!(
            serde_json::from_value::<Report>(json!({"module": "a", "channels": [],
            "recent": [{"id": "i", "time": "2026-12-07T10:00:00Z", "rule": "r",
            "severity": "high", "channel": "c", "outcome": "maybe", "title": "t"}]}))
            .is_err()
        );
        assert!(b.view().0.is_empty() && b.view().1.is_empty());
    }

    #[test]
    fn metrics_escape_labels() {
        let b = AlertBoard::default();
        b.report(report(
            json!({"module": "alerts", "channels": [channel("hook.1", 12)], "recent": []}),
        ))
        .unwrap();
        let mut out = String::new();
        b.render_metrics(&mut out);
        assert!(out.contains("honeybee_alerts_sent_total{module=\"alerts\",channel=\"hook.1\"} 12"));
        assert!(out.contains(
            "honeybee_alerts_latency_ms{module=\"alerts\",channel=\"hook.1\",quantile=\"0.99\"} 180"
        ));
        assert!(out.contains("# TYPE honeybee_alerts_queued gauge"));
    }
}
