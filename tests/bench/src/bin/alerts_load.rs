//! `alerts-load`: the alerts module (release build) against the release
//! core on loopback, with a loopback webhook receiver. Prints:
//! - event sent by a node → alert received by the webhook, p50/p99, at 1
//!   and at 1,000 events/s (a rule alerting every event, no ceiling);
//! - the module's RSS idle, its peak and after a burst of 100,000 events
//!   from 5,000 sources under the shipped rules (tripwire, new source…)
//!   with a ceiling of 60 alerts a minute, and how many alerts and digests
//!   the burst made.
//!
//! Targets: p99 ≤ 1 s, RSS ≤ 10 MB, bounded under the burst. Asserts nothing.
//!
//! `cargo build --release -p honeybee-core -p honeybee-alerts -p honeybee-bench && target/release/alerts-load`

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_tests::alerts::{AlertsModule, WebhookReceiver};
use honeybee_tests::{Core, NodeIdentity, TempDir, TestNode};
use serde_json::json;

const TOKEN: &str = "alerts-bench-token-0123456789abcdef";

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn rss_kb(pid: u32) -> u64 {
    honeybee_tests::core_process::rss_kb(pid).unwrap_or(0)
}

fn quantile(v: &mut [u64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

fn release_alerts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bin = root.join("target/release/honeybee-alerts");
    if bin.is_file() && std::env::var_os("HONEYBEE_ALERTS_BIN").is_none() {
        std::env::set_var("HONEYBEE_ALERTS_BIN", bin);
    } else if !bin.is_file() {
        eprintln!("no release honeybee-alerts: running the debug build");
    }
}

fn config(hook: &WebhookReceiver, rules: &str, defaults: bool, per_minute: u32) -> String {
    format!(
        "default_rules = {defaults}\nreport_interval = \"5s\"\n\n[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nmax_per_minute = {per_minute}\n\n{rules}",
        hook.url()
    )
}

fn send(node: &mut TestNode, id: &NodeIdentity, seq: u64, src: &str) {
    let ts = format_rfc3339(now_unix().0, 0);
    node.must_send(&id.pot_event(
        "ext-01",
        "extension",
        "extension.connection",
        &ts,
        Some(seq),
        json!({"src_ip": src, "dst_port": 3389, "sent_us": unix_us()}),
    ));
}

/// p50/p99 from sent to received at `rate` events/s for `count` events.
fn latency(rate: u64, count: u64) {
    let core = Core::builder().api_token(TOKEN).release().start();
    let hook = WebhookReceiver::start();
    let rule = "[[rule]]\nname = \"every\"\nevent_type = \"extension.*\"\nseverity = \"high\"\nwindow = \"0s\"\n";
    let dir = Arc::new(TempDir::new("alerts-bench"));
    let m = AlertsModule::start(&core, &config(&hook, rule, false, 100_000), dir);
    let mut id = NodeIdentity::new("bench").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(core.node_addr);
    std::thread::sleep(Duration::from_secs(1));
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    for seq in 1..=count {
        let due = start + every * (seq as u32 - 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        send(&mut node, &id, seq, "203.0.113.7");
    }
    m.wait_for("every alert", Duration::from_secs(60), || {
        hook.received().len() as u64 >= count
    });
    let mut lat: Vec<u64> = hook
        .received()
        .iter()
        .filter_map(|r| {
            let sent = r.json()["event"]["honeybee"]["data"]["sent_us"].as_u64()?;
            let got = unix_us() - (Instant::now() - r.at).as_micros() as u64;
            Some(got.saturating_sub(sent))
        })
        .collect();
    let lagged = m.stderr().matches("lagged").count();
    println!(
        "{rate:>5} events/s, {count} events: sent → webhook p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; module RSS {:.1} MB; stream lagged {lagged} times",
        quantile(&mut lat, 0.5),
        quantile(&mut lat, 0.99),
        quantile(&mut lat, 1.0),
        rss_kb(m.pid().unwrap_or(0)) as f64 / 1024.0
    );
}

/// 100,000 events from 5,000 sources as fast as one node sends them.
fn burst(total: u64) {
    let core = Core::builder().api_token(TOKEN).release().start();
    let hook = WebhookReceiver::start();
    let dir = Arc::new(TempDir::new("alerts-bench"));
    let m = AlertsModule::start(&core, &config(&hook, "", true, 60), dir);
    let pid = m.pid().unwrap_or(0);
    let mut id = NodeIdentity::new("burst").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(core.node_addr);
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_kb(pid);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(idle));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let start = Instant::now();
    for seq in 1..=total {
        let i = seq % 5000;
        let src = format!("198.51.{}.{}", i / 250, i % 250 + 1);
        send(&mut node, &id, seq, &src);
    }
    node.wait_event_ack(total, Duration::from_secs(120));
    let sent = start.elapsed();
    // Until the module has handled them all: its cursor reaches the end.
    let state = m.dir.path().join("state/state.json");
    let handled = || {
        std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["cursor"].as_str().and_then(|c| c.parse::<u64>().ok()))
            .unwrap_or(0)
    };
    let end = Instant::now() + Duration::from_secs(120);
    let mut last = 0;
    while Instant::now() < end {
        last = handled();
        if last >= total {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let caught_up = start.elapsed();
    // The minute ends: the ceiling's one summary of what it held back.
    let end = Instant::now() + Duration::from_secs(75);
    while Instant::now() < end && !hook.bodies().iter().any(|b| b["rule"] == "ceiling") {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.join();
    let after = rss_kb(pid);
    let bodies = hook.bodies();
    let digests = bodies.iter().filter(|b| !b["digest"].is_null()).count();
    let held = bodies.iter().filter(|b| b["rule"] == "ceiling").count();
    println!(
        "burst of {total} events from 5,000 sources (shipped rules, 60 alerts/min ceiling): sent in {:.1} s, handled by the module after {:.1} s (cursor {last}); \
         module RSS idle {:.1} MB, peak {:.1} MB, after {:.1} MB; webhook got {} alerts ({} digests, {} ceiling summaries) by the end of the minute",
        sent.as_secs_f64(),
        caught_up.as_secs_f64(),
        idle as f64 / 1024.0,
        peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        after as f64 / 1024.0,
        bodies.len(),
        digests,
        held
    );
}

fn main() {
    release_alerts();
    latency(1, 20);
    latency(1000, 10_000);
    burst(100_000);
}
