//! `alerts-load`: the alerts module (release build) against the release
//! core on loopback, with a loopback webhook receiver. Prints:
//! - the latency to the webhook at 1 and at 1,000 events/s (a rule
//!   alerting every event, no ceiling), p50/p99/max, measured twice: from
//!   the node's send, and from the event's commit (when the core's stream
//!   published it to a subscriber of the bench's own, as it does to the
//!   module), so the core's storing is told apart from the module's work;
//! - the module's RSS idle in every run, and its peak and after a burst
//!   of 100,000 events from 5,000 sources under the shipped rules
//!   (tripwire, new source…), a ceiling of 60 alerts a minute on the
//!   webhook, and how many alerts and digests the burst made (all of them:
//!   an ECS file channel without a ceiling to speak of records every one)
//!   and how many reached the webhook; twice, side by side: with the
//!   shipped 10-minute windows (no digest is due during the run), and with
//!   the tripwire's window cut to 2 s so that windows end and digests go
//!   out during the run.
//!
//! Targets: p99 ≤ 1 s, RSS ≤ 10 MB, bounded under the burst. Asserts nothing.
//!
//! `cargo build --release -p honeybee-core -p honeybee-alerts -p honeybee-bench && target/release/alerts-load [burst]`
//! (`burst`: the bursts only, without the latency runs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeybee_bench::subscriber::Subscriber;
use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_tests::alerts::{AlertsModule, WebhookReceiver};
use honeybee_tests::{Core, NodeIdentity, TempDir, TestNode};
use serde_json::{json, Value};

const TOKEN: &str = "alerts-bench-token-0123456789abcdef";

fn rss_kb(pid: u32) -> u64 {
    honeybee_tests::core_process::rss_kb(pid).unwrap_or(0)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn quantile(v: &mut [u64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i] as f64 / 1000.0
}

/// p50, p99 and max of `v` (µs) as text in ms.
fn spread(v: &mut [u64]) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        quantile(v, 0.5),
        quantile(v, 0.99),
        quantile(v, 1.0)
    )
}

/// The release `honeybee-alerts` beside this benchmark's executable (the
/// same target directory, whatever `CARGO_TARGET_DIR` says), unless
/// `HONEYBEE_ALERTS_BIN` names one.
fn release_alerts() {
    match honeybee_bench::sibling_binary("HONEYBEE_ALERTS_BIN", "honeybee-alerts") {
        Ok(bin) => std::env::set_var("HONEYBEE_ALERTS_BIN", bin),
        Err(e) => eprintln!("{e}: running the debug build"),
    }
}

fn webhook(hook: &WebhookReceiver, per_minute: u32) -> String {
    format!(
        "[[channel]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"{}\"\nmax_per_minute = {per_minute}\n",
        hook.url()
    )
}

fn send(node: &mut TestNode, id: &NodeIdentity, seq: u64, src: &str, sent_ns: u64) {
    let ts = format_rfc3339(now_unix().0, 0);
    node.must_send(&id.pot_event(
        "ext-01",
        "extension",
        "extension.connection",
        &ts,
        Some(seq),
        json!({"src_ip": src, "dst_port": 3389, "sent_ns": sent_ns}),
    ));
}

/// Latency at `rate` events/s for `count` events, from the send and from
/// the commit.
fn latency(rate: u64, count: u64) {
    let core = Core::builder().api_token(TOKEN).release().start();
    let hook = WebhookReceiver::start();
    let rule = "[[rule]]\nname = \"every\"\nevent_type = \"extension.*\"\nseverity = \"high\"\nwindow = \"0s\"\n";
    let dir = Arc::new(TempDir::new("alerts-bench"));
    let cfg = format!(
        "default_rules = false\nreport_interval = \"5s\"\n\n{}\n{rule}",
        webhook(&hook, 100_000)
    );
    let m = AlertsModule::start(&core, &cfg, dir);
    let pid = m.pid().unwrap_or(0);
    m.wait_subscribed(&core, 1);
    let subscriber = match Subscriber::events(core.stream_addr, TOKEN) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("the bench's own subscriber: {e}");
            return;
        }
    };
    let mut id = NodeIdentity::new("bench").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(core.node_addr);
    // The module has settled: connected, node names not yet asked.
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_kb(pid);
    let epoch = Instant::now();
    let listen_until = Arc::new(AtomicU64::new(u64::MAX));
    let listener = {
        let until = listen_until.clone();
        std::thread::spawn(move || {
            subscriber.listen(epoch, count, move || match until.load(Ordering::Relaxed) {
                u64::MAX => Instant::now() + Duration::from_secs(3600),
                ms => epoch + Duration::from_millis(ms),
            })
        })
    };
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    for seq in 1..=count {
        let due = start + every * (seq as u32 - 1);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent_ns = epoch.elapsed().as_nanos() as u64;
        send(&mut node, &id, seq, "203.0.113.7", sent_ns);
    }
    m.wait_for("every alert", Duration::from_secs(60), || {
        hook.received().len() as u64 >= count
    });
    listen_until.store(
        (epoch.elapsed() + Duration::from_secs(5)).as_millis() as u64,
        Ordering::Relaxed,
    );
    let heard = listener.join().unwrap_or_default();
    // When the stream published each event, by its send stamp.
    let published: HashMap<u64, u64> = heard
        .events
        .values()
        .map(|&(at, sent)| (sent, at))
        .collect();
    let (mut from_send, mut from_commit) = (Vec::new(), Vec::new());
    for r in hook.received() {
        let Some(sent) = r.json()["event"]["honeybee"]["data"]["sent_ns"].as_u64() else {
            continue;
        };
        let got = r.at.saturating_duration_since(epoch).as_nanos() as u64;
        from_send.push(got.saturating_sub(sent) / 1000);
        if let Some(at) = published.get(&sent) {
            from_commit.push(got.saturating_sub(*at) / 1000);
        }
    }
    let lagged = m.stderr().matches("lagged").count();
    println!(
        "{rate:>5} events/s, {count} events: to the webhook from the send {}; from the commit ({} of {count} seen published) {}; \
         module RSS idle {:.1} MB, after {:.1} MB; module stream lagged {lagged} times",
        spread(&mut from_send),
        from_commit.len(),
        spread(&mut from_commit),
        mb(idle),
        mb(rss_kb(pid)),
    );
}

/// What a burst measured.
struct Burst {
    label: String,
    idle: u64,
    peak: u64,
    after: u64,
    alerts: usize,
    digests: usize,
    hook: usize,
    lagged: usize,
}

/// 100,000 events from 5,000 sources as fast as one node sends them,
/// under the shipped rules, the tripwire's window cut to `window` if set.
fn burst(total: u64, window: Option<&str>) -> Burst {
    let core = Core::builder().api_token(TOKEN).release().start();
    let hook = WebhookReceiver::start();
    let dir = Arc::new(TempDir::new("alerts-bench"));
    let file = dir.path().join("alerts.ecs.json");
    let cfg = format!(
        "default_rules = true\nreport_interval = \"5s\"\n\n{}\n\
         [[channel]]\nname = \"ecs\"\ntype = \"file\"\npath = \"{}\"\nmax_per_minute = 100000\n\n{}",
        webhook(&hook, 60),
        file.display(),
        window.map_or(String::new(), |w| format!(
            "[[rule]]\nname = \"tripwire\"\nevent_type = \"extension.*\"\nseverity = \"high\"\nwindow = \"{w}\"\n"
        )),
    );
    let m = AlertsModule::start(&core, &cfg, dir);
    let pid = m.pid().unwrap_or(0);
    m.wait_subscribed(&core, 1);
    let mut id = NodeIdentity::new("burst").with_capabilities(&["event-ack"]);
    let mut node = id.enroll(core.node_addr);
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_kb(pid);
    let peak = Arc::new(AtomicU64::new(idle));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let start = Instant::now();
    for seq in 1..=total {
        let i = seq % 5000;
        let src = format!("198.51.{}.{}", i / 250, i % 250 + 1);
        send(&mut node, &id, seq, &src, 0);
    }
    node.wait_event_ack(total, Duration::from_secs(120));
    let sent = start.elapsed();
    // Until the module has handled them all: its cursor reaches the end.
    let state = m.dir.path().join("state/state.json");
    let handled = || {
        std::fs::read(&state)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
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
    // Every event in the file, as a first alert or in a digest: the last
    // windows end 2 s after the last events (with the shipped windows,
    // 10 minutes after: not waited for).
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let accounted = |lines: &[Value]| -> u64 {
        lines
            .iter()
            .filter(|l| l["rule"]["name"] == "tripwire")
            .map(|l| {
                l["honeybee"]["alert"]["digest"]["count"]
                    .as_u64()
                    .unwrap_or(1)
            })
            .sum()
    };
    let end = Instant::now() + Duration::from_secs(if window.is_some() { 60 } else { 0 });
    while Instant::now() < end && accounted(&lines()) < total {
        std::thread::sleep(Duration::from_millis(200));
    }
    let all_out = start.elapsed();
    // The minute ends: the ceiling's one summary of what it held back.
    let end = Instant::now() + Duration::from_secs(75);
    while Instant::now() < end && !hook.bodies().iter().any(|b| b["rule"] == "ceiling") {
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let after = rss_kb(pid);
    let made = lines();
    let digests = made
        .iter()
        .filter(|l| l["honeybee"]["alert"]["digest"].is_object())
        .count();
    let bodies = hook.bodies();
    let hook_digests = bodies.iter().filter(|b| !b["digest"].is_null()).count();
    let held = bodies.iter().filter(|b| b["rule"] == "ceiling").count();
    let lagged = m.stderr().matches("lagged").count();
    let label = window.map_or("shipped, windows 10 min".into(), |w| {
        format!("tripwire window {w}")
    });
    println!(
        "burst of {total} events from 5,000 sources (shipped rules, {label}): sent in {:.1} s, handled by the module after {:.1} s (cursor {last}), \
         events in an alert or digest after {:.1} s: {} of {total}; module RSS idle {:.1} MB, peak {:.1} MB, after {:.1} MB; \
         the module made {} alerts ({digests} digests); the webhook (60 a minute) got {} ({hook_digests} digests, {held} ceiling summaries); stream lagged {lagged} times",
        sent.as_secs_f64(),
        caught_up.as_secs_f64(),
        all_out.as_secs_f64(),
        accounted(&made),
        mb(idle),
        mb(peak.load(Ordering::Relaxed)),
        mb(after),
        made.len(),
        bodies.len(),
    );
    Burst {
        label,
        idle,
        peak: peak.load(Ordering::Relaxed),
        after,
        alerts: made.len(),
        digests,
        hook: bodies.len(),
        lagged,
    }
}

fn main() {
    release_alerts();
    if std::env::args().nth(1).as_deref() != Some("burst") {
        latency(1, 20);
        latency(1000, 10_000);
    }
    let runs = [burst(100_000, None), burst(100_000, Some("2s"))];
    println!("\nburst of 100,000 events   | idle MB | peak MB | after MB | alerts | digests | webhook | lagged");
    for b in &runs {
        println!(
            "{:<25} | {:>7.1} | {:>7.1} | {:>8.1} | {:>6} | {:>7} | {:>7} | {:>6}",
            b.label,
            mb(b.idle),
            mb(b.peak),
            mb(b.after),
            b.alerts,
            b.digests,
            b.hook,
            b.lagged
        );
    }
}
