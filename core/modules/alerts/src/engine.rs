//! From what happened to what is sent where: rules, new sources, status
//! changes, windows and ceilings, as one state machine with time as an
//! input. The stream thread feeds it; the outboxes take what it returns.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Digest, Severity};
use crate::compose;
use crate::noise::{Ceiling, Decision, Sample, Windows};
use crate::observed::Observed;
use crate::rules::Rule;
use crate::seen::Seen;

/// Node and pot statuses remembered (to tell `previous`); a fixed bound.
const MAX_STATUSES: usize = 200_000;

/// A channel as the engine sees it.
#[derive(Clone, Debug)]
pub struct Route {
    /// Its name.
    pub name: String,
    /// Alerts below this are not sent to it.
    pub min_severity: Severity,
    /// Its ceiling per minute.
    pub max_per_minute: u32,
}

/// An alert for one channel.
#[derive(Debug, PartialEq)]
pub struct Outgoing {
    /// Index into the routes.
    pub channel: usize,
    /// The alert.
    pub alert: Alert,
}

/// What survives a restart: windows, ceilings, sources seen, statuses.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Memory {
    /// Open windows.
    pub windows: Windows,
    /// Ceilings per channel name.
    pub ceilings: HashMap<String, Ceiling>,
    /// Sources seen.
    pub seen: Seen,
    /// Last status per node (`"12"`) and pot (`"12/cowrie-01"`).
    pub statuses: HashMap<String, String>,
}

/// The engine.
pub struct Engine {
    rules: Vec<Rule>,
    routes: Vec<Route>,
    /// Its memory (saved by the caller).
    pub memory: Memory,
}

impl Engine {
    /// An engine for these rules and channels, continuing from `memory`.
    pub fn new(rules: Vec<Rule>, routes: Vec<Route>, memory: Memory) -> Engine {
        Engine {
            rules,
            routes,
            memory,
        }
    }

    /// Rules in force.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The status change `o` describes, or `None` when it repeats the last
    /// known status (nothing changed).
    pub fn status_change(&mut self, key: String, status: &str) -> Option<Option<String>> {
        let statuses = &mut self.memory.statuses;
        let previous = statuses.get(&key).cloned();
        if previous.as_deref() == Some(status) {
            return None;
        }
        if statuses.len() >= MAX_STATUSES && previous.is_none() {
            statuses.clear();
        }
        statuses.insert(key, status.to_string());
        Some(previous)
    }

    /// What `o`, seen at `now_ms`, sends where.
    pub fn observe(&mut self, o: &Observed, now_ms: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        self.observe_each(o, now_ms, &mut |x| out.push(x));
        out
    }

    /// As [`Engine::observe`], handing each alert to `emit` as it is made
    /// (so the caller writes it to its outbox before the next is composed).
    pub fn observe_each(&mut self, o: &Observed, now_ms: u64, emit: &mut dyn FnMut(Outgoing)) {
        self.tick_each(now_ms, emit);
        let new_source = o.source.is_some_and(|ip| self.memory.seen.first_time(ip));
        for rule in &self.rules {
            if !rule.matches(o, new_source) {
                continue;
            }
            let alert = compose::alert(rule, o, now_ms);
            let source = match o.source {
                Some(ip) => ip.to_string(),
                None => format!("node:{}", o.node_id),
            };
            // A new source is one event by definition: no window to fold
            // into (ten thousand of them would only hold memory).
            let window_ms = if rule.new_source {
                0
            } else {
                u64::try_from(rule.window.as_millis()).unwrap_or(u64::MAX)
            };
            let sample = Sample {
                event_type: &o.event_type,
                node_id: o.node_id,
                title: &alert.title,
            };
            let decision = self
                .memory
                .windows
                .observe(&rule.name, &source, window_ms, now_ms, sample);
            if decision == Decision::Alert {
                route(
                    &self.routes,
                    &mut self.memory.ceilings,
                    rule,
                    alert,
                    now_ms,
                    emit,
                );
            }
        }
    }

    /// Digests of ended windows and summaries of ceilings, due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Outgoing> {
        let mut out = Vec::new();
        self.tick_each(now_ms, &mut |x| out.push(x));
        out
    }

    /// As [`Engine::tick`], handing each alert to `emit` as it is made: a
    /// stall can end thousands of windows at once, and their digests are
    /// never all in memory together.
    pub fn tick_each(&mut self, now_ms: u64, emit: &mut dyn FnMut(Outgoing)) {
        let (rules, routes, memory) = (&self.rules, &self.routes, &mut self.memory);
        let ceilings = &mut memory.ceilings;
        memory.windows.due_each(now_ms, |due| {
            let Some(rule) = rules.iter().find(|r| r.name == due.rule) else {
                return;
            };
            let digest = Digest {
                count: due.window.count,
                nodes: due.window.nodes.len() as u64,
                types: due.window.types,
                window_secs: rule.window.as_secs(),
            };
            let alert = compose::digest(
                rule,
                &due.source,
                due.window.start_ms,
                digest,
                due.window.last_title.as_deref(),
                now_ms,
            );
            route(routes, ceilings, rule, alert, now_ms, emit);
        });
        for (i, r) in self.routes.iter().enumerate() {
            let ceiling = self.memory.ceilings.entry(r.name.clone()).or_default();
            if let Some(held) = ceiling.roll(now_ms) {
                emit(Outgoing {
                    channel: i,
                    alert: compose::held_back(&r.name, r.max_per_minute, &held, now_ms),
                });
            }
        }
    }
}

fn route(
    routes: &[Route],
    ceilings: &mut HashMap<String, Ceiling>,
    rule: &Rule,
    alert: Alert,
    now_ms: u64,
    emit: &mut dyn FnMut(Outgoing),
) {
    for (i, r) in routes.iter().enumerate() {
        let wanted = rule.channels.is_empty() || rule.channels.contains(&r.name);
        if !wanted || alert.severity < r.min_severity {
            continue;
        }
        let ceiling = ceilings.entry(r.name.clone()).or_default();
        let (admitted, ended) = ceiling.admit(&rule.name, r.max_per_minute, now_ms);
        if let Some(held) = ended {
            emit(Outgoing {
                channel: i,
                alert: compose::held_back(&r.name, r.max_per_minute, &held, now_ms),
            });
        }
        if admitted {
            emit(Outgoing {
                channel: i,
                alert: alert.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeybee_proto::PotEvent;
    use serde_json::json;

    fn routes() -> Vec<Route> {
        vec![
            Route {
                name: "hook".into(),
                min_severity: Severity::Low,
                max_per_minute: 2,
            },
            Route {
                name: "pager".into(),
                min_severity: Severity::High,
                max_per_minute: 100,
            },
        ]
    }

    fn probe(id: u64, src: &str) -> Observed {
        Observed::from_event(
            PotEvent {
                node_id: 3,
                pot_id: "ext".into(),
                pot_type: "extension".into(),
                event_type: "extension.connection".into(),
                timestamp: "2026-12-07T03:00:00Z".into(),
                seq: Some(id),
                data: json!({"src_ip": src})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            },
            Some(id.to_string()),
        )
    }

    #[test]
    fn routes_ceilings_and_digests_follow_the_rules() {
        // Shipped rules: tripwire (high, 10 min window) and new-source
        // (medium, no window) both take a first probe.
        let mut e = Engine::new(crate::rules::defaults(), routes(), Memory::default());
        let out = e.observe(&probe(1, "203.0.113.7"), 0);
        let to = |out: &[Outgoing], ch: usize| {
            out.iter()
                .filter(|o| o.channel == ch)
                .map(|o| o.alert.rule.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(to(&out, 0), ["tripwire", "new-source"]);
        assert_eq!(to(&out, 1), ["tripwire"], "the pager takes high only");
        // The same source again: folded; a new source: both rules again,
        // but the hook's ceiling of 2 a minute is reached.
        assert!(e.observe(&probe(2, "203.0.113.7"), 1000).is_empty());
        let out = e.observe(&probe(3, "198.51.100.1"), 2000);
        assert!(to(&out, 0).is_empty(), "held back by the ceiling");
        assert_eq!(to(&out, 1), ["tripwire"]);
        // The minute ends: one summary of the two held back.
        let out = e.tick(60_000);
        let held: Vec<&Outgoing> = out.iter().filter(|o| o.alert.rule == "ceiling").collect();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].channel, 0);
        assert!(
            held[0]
                .alert
                .title
                .starts_with("2 more alerts held back on hook"),
            "{}",
            held[0].alert.title
        );
        // The window ends: the digest of the one folded probe, to both.
        let out = e.tick(600_000);
        let digests: Vec<&Outgoing> = out.iter().filter(|o| o.alert.digest.is_some()).collect();
        assert_eq!(digests.len(), 2);
        assert_eq!(digests[0].alert.digest.as_ref().map(|d| d.count), Some(1));
        assert_eq!(digests[0].alert.ecs["source"]["ip"], "203.0.113.7");
        assert_eq!(
            e.memory.windows.len(),
            1,
            "the later source's window is still open"
        );
    }

    #[test]
    fn a_status_is_a_change_only_when_it_changes() {
        let mut e = Engine::new(vec![], routes(), Memory::default());
        assert_eq!(e.status_change("12".into(), "Running"), Some(None));
        assert_eq!(e.status_change("12".into(), "Running"), None);
        assert_eq!(
            e.status_change("12".into(), "Unknown"),
            Some(Some("Running".into()))
        );
    }
}
