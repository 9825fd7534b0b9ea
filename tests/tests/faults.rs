//! Faults, end to end, each with its figures (events sent / stored /
//! duplicated, time to recover), printed to stderr past the test harness's
//! capture so that every run shows them:
//!
//! - the disk under the core fills up (a small tmpfs as its data dir): no
//!   EventAck for what is not stored, the agent keeps spooling, nothing is
//!   lost once space returns, the database passes `PRAGMA integrity_check`;
//! - the disk under the agent's spool fills up: the oldest events are
//!   dropped, counted and reported in an Alarm, the agent keeps running;
//! - packet loss between agent and core (nftables in a network namespace of
//!   the test's own) together with delay, split writes and stalls, and
//!   apart from it connections cut mid-line (a userspace proxy: this kernel
//!   has no `netem`, see `honeybee_tests::faults`): every event exactly once;
//! - the core restarted 10 times in a minute while 10 agents stream: every
//!   event exactly once;
//! - an agent killed -9 while it writes its spool: a torn record is cut and
//!   counted (Alarm), never sent as garbage; every other event exactly once.
//!
//! The disk and namespace tests need root: without it they print why they
//! are skipped, and fail when `CI` is set.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeybee_tests::agent_process::{self, connect_as_pot, cowrie_line, send_events};
use honeybee_tests::faults::{self, privileged, FaultPlan, FaultProxy, NetNs, Tmpfs};
use honeybee_tests::test_pot::start_token_pot;
use honeybee_tests::{wait_for, Agent, Core, LinkProxy, TempDir, TestPot, TestPotstore};
use nix::sys::signal::Signal;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);
const EVENT: &str = "cowrie.login.failed";

/// One line of figures, on stderr past the harness's capture.
fn figures(test: &str, text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "FIGURES {test}: {text}");
}

fn relay_store(dir: &Path) -> TestPotstore {
    TestPotstore::new(dir.join("potstore")).with(TestPot::sleeper("relay"))
}

/// Every stored event of `node_id`.
fn stored(core: &Core, node_id: u64) -> Vec<Value> {
    core.api()
        .all_events(&[("node_id", node_id.to_string().as_str())])
}

/// Waits (bounded) until `want` events of `node_id` are stored; returns them.
fn wait_stored(core: &Core, node_id: u64, want: usize, timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = stored(core, node_id);
        if events.len() >= want || Instant::now() >= deadline {
            return events;
        }
        std::thread::sleep(POLL);
    }
}

/// What was stored: distinct seqs, distinct `data.n`, and duplicates (an
/// event stored more than once, by seq or by `n`).
struct Tally {
    seqs: BTreeSet<u64>,
    ns: BTreeSet<u64>,
    duplicated: usize,
}

#[track_caller]
fn tally(events: &[Value]) -> Tally {
    let mut seqs = BTreeSet::new();
    let mut ns = BTreeSet::new();
    let mut duplicated = 0;
    for e in events {
        assert_eq!(e["event_type"], EVENT, "not an event the pot sent: {e}");
        let seq = e["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {e}"));
        let n = e["data"]["n"]
            .as_u64()
            .unwrap_or_else(|| panic!("no data.n: {e}"));
        if !seqs.insert(seq) | !ns.insert(n) {
            duplicated += 1;
        }
    }
    Tally {
        seqs,
        ns,
        duplicated,
    }
}

/// Lines `first..first+n` of pot `pot_id`.
fn lines(pot_id: &str, first: u64, n: u64) -> Vec<String> {
    (first..first + n)
        .map(|k| cowrie_line(pot_id, EVENT, "203.0.113.9", k))
        .collect()
}

/// Sends events `first..first+n` as `pot_id` at about `per_second`, from a
/// thread.
fn paced_sender(
    addr: SocketAddr,
    token: String,
    pot_id: String,
    first: u64,
    n: u64,
    per_second: u64,
) -> std::thread::JoinHandle<()> {
    agent_process::paced_sender(addr, token, first..first + n, per_second, move |k| {
        cowrie_line(&pot_id, EVENT, "203.0.113.9", k)
    })
}

fn metric(core: &Core, name: &str) -> f64 {
    core.api().metrics().get(name, &[]).unwrap_or(0.0)
}

/// The sum of a metric over all its labels.
fn metric_sum(core: &Core, name: &str) -> f64 {
    let m = core.api().metrics();
    let keys: Vec<String> = m
        .keys()
        .filter(|k| *k == name || k.starts_with(&format!("{name}{{")))
        .map(str::to_owned)
        .collect();
    keys.iter()
        .map(|k| {
            m.get(k, &[])
                .or_else(|| {
                    let (n, l) = k.split_once('{')?;
                    let l = l.trim_end_matches('}');
                    let (lk, lv) = l.split_once('=')?;
                    m.get(n, &[(lk, lv.trim_matches('"'))])
                })
                .unwrap_or(0.0)
        })
        .sum()
}

/// The Alarms of `node_id` whose message starts with `prefix`, and the sum
/// of the counts after it (`"<prefix><count> ..."`).
fn alarms(core: &Core, node_id: u64, prefix: &str) -> (Vec<Value>, u64) {
    let node = core.api().node(node_id).unwrap_or_default();
    let found: Vec<Value> = node["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| {
                    e["type"] == "Alarm"
                        && e["message"].as_str().is_some_and(|m| m.starts_with(prefix))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let sum = found
        .iter()
        .filter_map(|e| {
            e["message"]
                .as_str()?
                .strip_prefix(prefix)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    (found, sum)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The spool's segment files under an agent's state dir.
fn segments(state_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(state_dir.join("spool"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "spool"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The highest seq the agent wrote to its spool files.
fn spooled_max_seq(state_dir: &Path) -> u64 {
    segments(state_dir)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .flat_map(|data| {
            data.split(|&b| b == b'\n')
                .filter_map(|l| {
                    let sp = l.iter().position(|&b| b == b' ')?;
                    std::str::from_utf8(&l[..sp]).ok()?.parse::<u64>().ok()
                })
                .max()
        })
        .max()
        .unwrap_or(0)
}

fn postgres_mode(test: &str) -> bool {
    if honeybee_tests::postgres::enabled() {
        eprintln!(
            "{test}: checks the SQLite store's own files; not run with HONEYBEE_TEST_POSTGRES"
        );
        return true;
    }
    false
}

/// The disk under the core fills up while an agent streams: what cannot be
/// stored is not acknowledged, the agent keeps it spooled, and once space
/// returns every event is stored exactly once in a database that passes
/// `PRAGMA integrity_check` (and opens again).
#[test]
fn core_disk_full_acks_nothing_unstored_and_loses_nothing() {
    const TEST: &str = "core_disk_full";
    if postgres_mode(TEST) || !privileged("root to mount a tmpfs", faults::can_mount()) {
        return;
    }
    let ws = Arc::new(TempDir::new("fault-core-disk"));
    let disk = Tmpfs::mount(&ws.path().join("data"), 32 << 20).expect("tmpfs");
    let mut core = Core::builder().workspace(ws.clone()).start();
    let store = relay_store(ws.path());
    let agent = Agent::full(core.node_addr)
        .workspace(ws.clone())
        .potstore(store.path())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let token = start_token_pot(core.api(), id, &store, "relay", "pot-a");
    let before = 1_000u64;
    send_events(agent.event_addr(), &token, &lines("pot-a", 0, before));
    assert_eq!(
        wait_stored(&core, id, before as usize, T).len() as u64,
        before
    );

    // The disk fills up.
    let filler = disk.path().join("filler");
    let filled = faults::fill(&filler);
    let errors_before = metric(&core, "honeybee_store_errors_total");
    let during = 3_000u64;
    let sender = paced_sender(
        agent.event_addr(),
        token.clone(),
        "pot-a".into(),
        before,
        during,
        1_000,
    );
    wait_for("the core to fail writing to the full disk", T, POLL, || {
        (metric(&core, "honeybee_store_errors_total") > errors_before).then_some(())
    });
    sender.join().expect("sender");
    let total = before + during;
    // The agent has spooled everything: its spool holds seq `total`.
    wait_for("the agent to spool every event", T, POLL, || {
        (spooled_max_seq(agent.state_dir()) >= total).then_some(())
    });
    // While the disk stays full: nothing is acknowledged that is not stored.
    let mut checks = 0;
    let full_since = Instant::now();
    while full_since.elapsed() < Duration::from_secs(3) {
        let acked = std::fs::read_to_string(agent.state_dir().join("spool/acked"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let have = stored(&core, id).len() as u64;
        assert!(
            acked <= have,
            "the agent holds an EventAck for seq {acked} but the core stores {have} events"
        );
        assert!(core.is_running(), "the core died on a full disk");
        checks += 1;
        std::thread::sleep(POLL);
    }
    let stored_while_full = stored(&core, id).len() as u64;
    let acked_while_full = std::fs::read_to_string(agent.state_dir().join("spool/acked"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        stored_while_full < total,
        "every event was stored on a full disk ({filled} bytes of filler)"
    );
    let pending_segments = segments(agent.state_dir()).len();
    assert!(pending_segments > 0, "the agent keeps what is not stored");
    // The worst moment to die: killed -9 on the full disk, and started
    // again (as systemd would) before any space returns.
    core.stop_with(Signal::SIGKILL, T);
    let t_restart = Instant::now();
    let node_port = core.node_addr.port().to_string();
    let mut core = Core::builder()
        .workspace(ws.clone())
        .args(["--node-port", node_port.as_str()])
        .try_start()
        .unwrap_or_else(|e| panic!("the core does not start again on a full disk: {e}"));
    let restart_full = t_restart.elapsed();
    core.api()
        .wait_status(id, "Running", Duration::from_secs(90));

    // Space returns.
    std::fs::remove_file(&filler).expect("remove the filler");
    let t0 = Instant::now();
    let events = wait_stored(&core, id, total as usize, Duration::from_secs(60));
    let recover = t0.elapsed();
    let t = tally(&events);
    figures(
        TEST,
        &format!(
            "sent={total} stored={} duplicated={} stored_while_full={stored_while_full} \
             agent_acked_while_full={acked_while_full} ack_checks={checks} \
             filler_bytes={filled} restart_on_full_disk_ms={} recover_ms={}",
            t.seqs.len(),
            t.duplicated,
            ms(restart_full),
            ms(recover)
        ),
    );
    assert_eq!(t.duplicated, 0, "an event was stored twice");
    assert_eq!(events.len() as u64, total, "every event, once");
    assert_eq!(t.ns, (0..total).collect::<BTreeSet<_>>());
    assert!(core.is_running(), "the core died");

    // The database: intact, and it opens again with everything in it.
    let (status, _) = core.terminate(T);
    assert!(status.success(), "core exit: {status}\n{}", core.stderr());
    let db = ws.path().join("data/honeybee.db");
    let conn = rusqlite::Connection::open(&db).expect("open the database");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("PRAGMA integrity_check");
    assert_eq!(check, "ok", "the database is damaged");
    drop(conn);
    let core = Core::builder().workspace(ws.clone()).start();
    assert_eq!(stored(&core, id).len() as u64, total, "after a restart");
    // The summary tables count each event once, also those a crash on the
    // full disk left for later.
    let stats = core.api().get("/api/v1/stats").expect_status(200).json();
    assert_eq!(stats["totals"]["events"], total, "{}", stats["totals"]);
    drop(agent);
    drop(core);
    drop(disk);
}

/// The disk under the agent's spool fills up while the core is away: the
/// oldest events are dropped, counted and reported in an Alarm; the agent
/// keeps running; every event it kept is stored once, the newest last; and
/// once acknowledged events free the disk, nothing more is dropped.
#[test]
fn agent_spool_disk_full_drops_the_oldest_counted_and_keeps_running() {
    const TEST: &str = "agent_spool_disk_full";
    if !privileged("root to mount a tmpfs", faults::can_mount()) {
        return;
    }
    let core = Core::start();
    let ws = core.workspace();
    let proxy = LinkProxy::start(core.node_addr);
    let store = relay_store(ws.path());
    let state = ws.path().join("agent-state");
    let disk = Tmpfs::mount(&state, 8 << 20).expect("tmpfs");
    let mut agent = Agent::full(proxy.addr())
        .workspace(ws.clone())
        .state_dir(&state)
        .potstore(store.path())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let token = start_token_pot(core.api(), id, &store, "relay", "pot-a");
    // Leave the spool 256 KiB of the disk (its own bound is 64 MiB).
    let room = 256 * 1024;
    let filler_bytes = disk.free().saturating_sub(room);
    std::fs::write(state.join("filler"), vec![0u8; filler_bytes as usize]).expect("filler");
    proxy.cut();
    let total = 5_000u64;
    send_events(agent.event_addr(), &token, &lines("pot-a", 0, total));
    wait_for("the agent to spool the newest event", T, POLL, || {
        (spooled_max_seq(&state) >= total).then_some(())
    });
    assert!(agent.is_running(), "the agent died on a full disk");
    assert!(
        agent.stderr().contains("disk under the spool is full"),
        "the agent did not say its disk is full:\n{}",
        agent.stderr()
    );
    proxy.restore();
    let t0 = Instant::now();
    let (alarms_seen, dropped) = wait_for("the Alarm of dropped events", T, POLL, || {
        let (a, n) = alarms(&core, id, "spool full: ");
        (n > 0).then_some((a, n))
    });
    assert!(dropped > 0 && dropped < total, "{alarms_seen:?}");
    assert!(
        alarms_seen.iter().any(|a| a["description"]
            .as_str()
            .is_some_and(|d| d.contains("disk under the spool is full"))),
        "the Alarm does not say the disk was full: {alarms_seen:?}"
    );
    let events = wait_stored(&core, id, (total - dropped) as usize, T);
    let recover = t0.elapsed();
    let t = tally(&events);
    // The count in the Alarms and what arrived add up, and what was dropped
    // is the oldest.
    let (_, dropped_final) = alarms(&core, id, "spool full: ");
    figures(
        TEST,
        &format!(
            "sent={total} stored={} duplicated={} dropped_counted={dropped_final} alarms={} \
             spool_room_bytes={room} recover_ms={}",
            t.seqs.len(),
            t.duplicated,
            alarms_seen.len(),
            ms(recover)
        ),
    );
    assert_eq!(t.duplicated, 0);
    assert_eq!(
        events.len() as u64 + dropped_final,
        total,
        "stored + dropped (counted) = sent"
    );
    assert_eq!(
        t.seqs,
        (dropped_final + 1..=total).collect::<BTreeSet<_>>(),
        "the oldest were dropped, the newest kept, in one run"
    );
    assert!(agent.is_running(), "the agent died");
    // Acknowledged segments went: the disk has room again, nothing more is
    // dropped.
    let more = 500u64;
    send_events(agent.event_addr(), &token, &lines("pot-a", total, more));
    let events = wait_stored(&core, id, (total - dropped_final + more) as usize, T);
    assert_eq!(events.len() as u64, total - dropped_final + more);
    assert_eq!(alarms(&core, id, "spool full: ").1, dropped_final);
    drop(agent);
    drop(disk);
}

/// Random packet loss (10 % of the packets of the node connection, both
/// ways) and a 2 Mbit/s bottleneck (a queue: delay) in a network namespace
/// of the test's own, and within it the proxy delaying, splitting and
/// stalling (no cuts) between agent and core, so that loss and delay come
/// together: every event once.
#[test]
fn packet_loss_and_delay_in_a_network_namespace_store_every_event_once() {
    const TEST: &str = "packet_loss_delay_netns";
    let usable = faults::can_netns().and_then(|()| {
        faults::which_nft()
            .map(drop)
            .ok_or_else(|| "nft (Debian package nftables) is not installed".to_string())
    });
    if !privileged("root, ip (iproute2) and nft (nftables)", usable) {
        return;
    }
    let ns = NetNs::enter("hbfault").expect("network namespace");
    let core = Core::start();
    let store = relay_store(core.workspace().path());
    // Started inside the namespace: its threads and sockets live there.
    let proxy = FaultProxy::start(
        core.node_addr,
        FaultPlan {
            cut_after_bytes: None,
            ..FaultPlan::default()
        },
    );
    ns.random_loss(&[core.node_addr.port(), proxy.addr().port()], 10)
        .expect("nftables random loss");
    // Slower than the stream (about 3.6 Mbit/s): a queue, and delay.
    ns.bottleneck(core.node_addr.port(), 2_000)
        .expect("htb bottleneck");
    let agent = Agent::full(proxy.addr())
        .workspace(core.workspace())
        .potstore(store.path())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let token = start_token_pot(core.api(), id, &store, "relay", "pot-a");
    let total = 4_000u64;
    let t0 = Instant::now();
    paced_sender(agent.event_addr(), token, "pot-a".into(), 0, total, 1_000)
        .join()
        .expect("sender");
    let sent_in = t0.elapsed();
    let t1 = Instant::now();
    let events = wait_stored(&core, id, total as usize, Duration::from_secs(60));
    let lag = t1.elapsed();
    let t = tally(&events);
    let lost_packets = ns.dropped_packets();
    let c = proxy.counts();
    let (shaped_bytes, held_back) = ns.bottleneck_stats();
    figures(
        TEST,
        &format!(
            "sent={total} stored={} duplicated={} packets_dropped={lost_packets} \
             loss=10% bottleneck=2Mbit/s bottleneck_bytes={shaped_bytes} overlimits={held_back} \
             stalls={} pieces={} send_ms={} last_event_lag_ms={} namespace={}",
            t.seqs.len(),
            t.duplicated,
            c.stalls,
            c.pieces,
            ms(sent_in),
            ms(lag),
            ns.name()
        ),
    );
    assert!(
        lost_packets > 0,
        "no packet was dropped: the fault did not happen"
    );
    assert_eq!(t.duplicated, 0);
    assert_eq!(events.len() as u64, total, "every event, once");
    assert_eq!(t.seqs, (1..=total).collect::<BTreeSet<_>>());
    drop(agent);
    drop(proxy);
    drop(core);
    drop(ns);
}

/// Delay, writes split at random bytes, stalls, and connections cut in the
/// middle of a line between agent and core (a userspace proxy): every event
/// once, and the time from the last fault to the last event stored.
#[test]
fn a_slow_split_stalling_link_cut_mid_line_stores_every_event_once() {
    const TEST: &str = "delay_split_stall_cut";
    let core = Core::start();
    let proxy = FaultProxy::start(core.node_addr, FaultPlan::default());
    let store = relay_store(core.workspace().path());
    let agent = Agent::full(proxy.addr())
        .workspace(core.workspace())
        .potstore(store.path())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let token = start_token_pot(core.api(), id, &store, "relay", "pot-a");
    let total = 5_000u64;
    paced_sender(agent.event_addr(), token, "pot-a".into(), 0, total, 1_000)
        .join()
        .expect("sender");
    // Then a calm link.
    proxy.calm();
    let t0 = Instant::now();
    let events = wait_stored(&core, id, total as usize, Duration::from_secs(60));
    let recover = t0.elapsed();
    let t = tally(&events);
    let c = proxy.counts();
    figures(
        TEST,
        &format!(
            "sent={total} stored={} duplicated={} connections={} cuts_mid_line={} stalls={} \
             pieces={} bytes_up={} bytes_down={} seed={:#x} recover_ms={}",
            t.seqs.len(),
            t.duplicated,
            c.connections,
            c.cuts,
            c.stalls,
            c.pieces,
            c.bytes_up,
            c.bytes_down,
            proxy.seed(),
            ms(recover)
        ),
    );
    assert_eq!(t.duplicated, 0);
    assert_eq!(events.len() as u64, total, "every event, once");
    assert_eq!(t.seqs, (1..=total).collect::<BTreeSet<_>>());
    assert!(
        c.stalls > 0 && c.cuts >= 2 && c.pieces > c.connections,
        "the faults did not happen: {c:?}"
    );
    assert_eq!(
        metric_sum(&core, "honeybee_protocol_errors_total"),
        0.0,
        "a torn line reached the core as a protocol error"
    );
}

/// The core killed (-9 and SIGTERM in turn) and restarted 10 times in a
/// minute while 10 agents stream: every event of every agent exactly once.
#[test]
fn a_core_restarted_10_times_in_a_minute_under_10_agents_stores_every_event_once() {
    const TEST: &str = "core_restart_loop";
    const AGENTS: usize = 10;
    const RESTARTS: usize = 10;
    const PER_SECOND: u64 = 40;
    const SECONDS: u64 = 46;
    let mut core = Core::start();
    let ws = core.workspace();
    let node_port = core.node_addr.port().to_string();
    let store = relay_store(ws.path());
    let agents: Vec<Agent> = (0..AGENTS)
        .map(|i| {
            Agent::full(core.node_addr)
                .workspace(ws.clone())
                .state_dir(ws.path().join(format!("agent-{i}")))
                .potstore(store.path())
                .name(&format!("streamer-{i}"))
                .start()
        })
        .collect();
    let ids: Vec<u64> = agents.iter().map(Agent::node_id).collect();
    for &id in &ids {
        core.api().wait_status(id, "Running", T);
    }
    let tokens: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| start_token_pot(core.api(), id, &store, "relay", &format!("pot-{i}")))
        .collect();
    let per_agent = PER_SECOND * SECONDS;
    let senders: Vec<_> = agents
        .iter()
        .zip(tokens)
        .enumerate()
        .map(|(i, (a, token))| {
            paced_sender(
                a.event_addr(),
                token,
                format!("pot-{i}"),
                0,
                per_agent,
                PER_SECOND,
            )
        })
        .collect();
    let loop_start = Instant::now();
    let mut downtimes = Vec::new();
    let mut resumed = 0;
    for r in 0..RESTARTS {
        // The fault schedule: one restart about every 4.5 s.
        let due = loop_start + Duration::from_millis(4_500 * r as u64 + 1_500);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if metric(&core, "honeybee_events_stored_total") > 0.0 {
            resumed += 1;
        }
        let signal = if r % 2 == 0 {
            Signal::SIGKILL
        } else {
            Signal::SIGTERM
        };
        let down = Instant::now();
        core.stop_with(signal, T);
        core = Core::builder()
            .workspace(ws.clone())
            .args(["--node-port", node_port.as_str()])
            .start();
        downtimes.push(down.elapsed());
    }
    let loop_took = loop_start.elapsed();
    for s in senders {
        s.join().expect("sender");
    }
    let t0 = Instant::now();
    let mut stored_total = 0usize;
    let mut duplicated = 0usize;
    let mut missing = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let events = wait_stored(&core, id, per_agent as usize, Duration::from_secs(90));
        let t = tally(&events);
        stored_total += t.seqs.len();
        duplicated += t.duplicated;
        if t.ns != (0..per_agent).collect::<BTreeSet<_>>() {
            missing.push((i, per_agent as usize - t.ns.len()));
        }
    }
    let recover = t0.elapsed();
    let max = |v: &[Duration]| v.iter().max().copied().map_or(0, ms);
    figures(
        TEST,
        &format!(
            "agents={AGENTS} restarts={RESTARTS} in {}ms sent={} stored={stored_total} \
             duplicated={duplicated} max_restart_ms={} cores_that_stored_before_the_next_kill={resumed} \
             recover_after_last_send_ms={}",
            ms(loop_took),
            per_agent * AGENTS as u64,
            max(&downtimes),
            ms(recover)
        ),
    );
    assert!(
        loop_took <= Duration::from_secs(60),
        "10 restarts took {loop_took:?}"
    );
    assert_eq!(duplicated, 0, "an event was stored twice");
    assert!(
        missing.is_empty(),
        "events lost (agent, how many): {missing:?}"
    );
    assert_eq!(stored_total as u64, per_agent * AGENTS as u64);
    drop(agents);
}

/// Writes events `first..` as `pot_id` as fast as the agent reads them,
/// until the connection breaks or `stop`; returns how many whole lines were
/// written.
fn flood(
    addr: SocketAddr,
    token: String,
    first: u64,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut sock: TcpStream = connect_as_pot(addr, &token, T);
        let mut k = first;
        while !stop.load(Ordering::SeqCst) {
            let mut bytes = lines("pot-a", k, 200).join("\n");
            bytes.push('\n');
            if sock.write_all(bytes.as_bytes()).is_err() {
                return;
            }
            k += 200;
            written.fetch_add(200, Ordering::SeqCst);
        }
    })
}

/// An agent killed -9 again and again while it writes its spool (the core
/// away meanwhile, so that nothing is reported between the kills): a record
/// torn by a kill is cut and counted (an Alarm, also when the agent is
/// killed again before it could report it), never sent; everything else the
/// agent accepted is stored exactly once, with no gap in its seqs. To be
/// sure the torn-record path runs, the last round also tears the spool's
/// last record by hand, as a kill in the middle of `write` does.
#[test]
fn an_agent_killed_mid_spool_write_never_replays_a_torn_record() {
    const TEST: &str = "agent_kill9_mid_write";
    const ROUNDS: u64 = 6;
    let core = Core::start();
    let ws = core.workspace();
    let proxy = LinkProxy::start(core.node_addr);
    let store = relay_store(ws.path());
    let mut agent = Agent::full(proxy.addr())
        .workspace(ws.clone())
        .potstore(store.path())
        .start();
    let id = agent.node_id();
    core.api().wait_status(id, "Running", T);
    let mut token = start_token_pot(core.api(), id, &store, "relay", "pot-a");
    let state = agent.state_dir().to_path_buf();
    proxy.cut();
    let written = Arc::new(AtomicU64::new(0));
    let mut torn_natural = 0u64;
    let mut injected = 0u64;
    let mut restarts = Vec::new();
    let mut seed = honeybee_tests::random_u64() | 1;
    for r in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let sender = flood(
            agent.event_addr(),
            token.clone(),
            r * 1_000_000,
            stop.clone(),
            written.clone(),
        );
        // Let it write a while, then kill it in the middle of the flood.
        let spooled = spooled_max_seq(&state);
        wait_for(
            "the agent to spool the flood",
            T,
            Duration::from_millis(10),
            || (spooled_max_seq(&state) > spooled + 500).then_some(()),
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 300));
        agent.kill9();
        stop.store(true, Ordering::SeqCst);
        sender.join().expect("flood");
        // What the kill left on disk: a segment ending in half a line.
        let segs = segments(&state);
        for p in &segs {
            let data = std::fs::read(p).unwrap_or_default();
            if !data.is_empty() && !data.ends_with(b"\n") {
                torn_natural += 1;
            }
        }
        if r == ROUNDS - 1 {
            let last = segs.last().expect("a spool segment");
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(last)
                .expect("open the segment");
            f.write_all(b"999999 {\"version\":2,\"message\":{\"PotEvent\":{\"node_id\":1,\"po")
                .expect("tear");
            injected += 1;
        }
        let starts = store.starts("pot-a");
        let t = Instant::now();
        agent = agent.builder().start();
        wait_for(
            "the pot to start again",
            T,
            Duration::from_millis(20),
            || (store.starts("pot-a") > starts).then_some(()),
        );
        token = store.wait_token("pot-a", T);
        restarts.push(t.elapsed());
    }
    let top = spooled_max_seq(&state);
    proxy.restore();
    let t0 = Instant::now();
    // Every torn record is reported, and everything spooled arrives.
    let want = torn_natural + injected;
    // As long as the events below: the agent's reconnect backoff grew
    // while the link was cut, and a loaded machine adds to it.
    wait_for(
        "the Alarms of torn records",
        Duration::from_secs(60),
        POLL,
        || (alarms(&core, id, "spool damaged: ").1 >= want).then_some(()),
    );
    let events = wait_for(
        "every spooled event to be stored",
        Duration::from_secs(60),
        POLL,
        || {
            let e = stored(&core, id);
            (e.iter().filter_map(|e| e["seq"].as_u64()).max() >= Some(top)).then_some(e)
        },
    );
    let recover = t0.elapsed();
    let t = tally(&events);
    let (_, damaged) = alarms(&core, id, "spool damaged: ");
    let sent = written.load(Ordering::SeqCst);
    figures(
        TEST,
        &format!(
            "kills={ROUNDS} written_to_event_socket={sent} accepted_and_spooled={top} stored={} duplicated={} \
             torn_by_kill={torn_natural} torn_by_hand={injected} dropped_counted={damaged} \
             max_restart_ms={} recover_ms={}",
            t.seqs.len(),
            t.duplicated,
            restarts.iter().max().copied().map_or(0, ms),
            ms(recover)
        ),
    );
    assert_eq!(t.duplicated, 0);
    assert_eq!(damaged, want, "each torn record counted once");
    assert_eq!(
        t.seqs,
        (1..=top).collect::<BTreeSet<_>>(),
        "a gap in the seqs: an accepted event was lost"
    );
    assert!(
        t.ns.iter().all(|n| n / 1_000_000 < ROUNDS),
        "an event the pot never sent"
    );
    assert_eq!(
        metric_sum(&core, "honeybee_protocol_errors_total"),
        0.0,
        "garbage reached the core"
    );
    assert!(agent.is_running(), "the agent died");
}
