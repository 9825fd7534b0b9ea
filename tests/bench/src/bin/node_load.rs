//! `node-load`: starts the real `honeybee-core`, connects N simulated nodes
//! from distinct loopback addresses, and prints what the core spent.
//!
//! Phases, each timed: enrolment (first registration, the core issues TOTP
//! keys), re-registration with TOTP codes, then heartbeats at a steady rate.
//! The core's CPU time and memory come from `/proc/<pid>`; figures are
//! printed, never asserted.
//!
//!     cargo build --release -p honeybee-core -p honeybee-bench
//!     target/release/node-load --nodes 1000,10000 [--tls]
//!
//! With `--postgres URL|auto` the cores keep their state in PostgreSQL
//! (`auto`: a throwaway local cluster, fsync on) and `--cores N` starts N of
//! them over the one database with HAProxy in front (N ≥ 2), which every
//! node connection goes through (`send-proxy-v2`, `balance leastconn`).
//! PostgreSQL's CPU (all its server processes) is reported beside the
//! cores'. With N ≥ 2 a failover follows the heartbeats: every node keeps
//! its connection and heartbeats, reconnecting on its own when it drops
//! (the agent's backoff, 0.5–1 s first, and the agent's TOTP step rule, or
//! `--totp-rule current-step`: only the current step's code, so a node that
//! registered in the current step waits for the next); then core1 is killed
//! with SIGKILL and the run measures how long until every node it held is
//! registered again on the others.
//!
//!     target/release/node-load --postgres auto --cores 2 --nodes 10000 --plain
//!     target/release/node-load --nodes 50000 --plain --in-flight 512

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_io::Timer;
use futures_lite::{future, AsyncReadExt};
use honeybee_agent::backoff::Backoff;
use honeybee_agent::totp as agent_totp;
use honeybee_bench::core_process::Sample;
use honeybee_bench::fleet::{self, Fleet, FleetOptions, Store};
use honeybee_bench::node::{self, Io, Node, NodeKey, Transport};
use honeybee_bench::report;

/// Which TOTP step a reconnecting node presents.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TotpRule {
    /// The agent's (`honeybee_agent::totp::next_step`): the current step,
    /// else the one ahead (the core accepts one step either side), else
    /// wait for the next step.
    Agent,
    /// Only the current step's code: a node that already used the current
    /// step waits for the next one.
    CurrentStep,
}

impl TotpRule {
    fn name(self) -> &'static str {
        match self {
            TotpRule::Agent => "agent (step ahead allowed)",
            TotpRule::CurrentStep => "current step only",
        }
    }
}

struct Options {
    sizes: Vec<usize>,
    tls: Vec<bool>,
    heartbeat_rounds: u32,
    heartbeat_period: Duration,
    in_flight: usize,
    fleet: FleetOptions,
    /// Kill a core after the heartbeats (default with several cores).
    failover: Option<bool>,
    totp: Vec<TotpRule>,
    failover_limit: Duration,
    /// Heartbeat period of the nodes while they wait for the failover.
    hold_heartbeat: Duration,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        sizes: vec![1000, 10_000],
        tls: vec![false, true],
        heartbeat_rounds: 10,
        heartbeat_period: Duration::from_secs(1),
        in_flight: 256,
        fleet: FleetOptions::default(),
        failover: None,
        totp: vec![TotpRule::Agent],
        failover_limit: Duration::from_secs(300),
        hold_heartbeat: Duration::from_secs(20),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if o.fleet
            .take(a, || it.next().cloned().ok_or(format!("{a} needs a value")))?
        {
            continue;
        }
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--nodes" => {
                o.sizes = value()?
                    .split(',')
                    .map(|n| {
                        n.replace('_', "")
                            .parse()
                            .map_err(|_| format!("--nodes: bad number {n}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--tls" => o.tls = vec![true],
            "--plain" => o.tls = vec![false],
            "--rounds" => o.heartbeat_rounds = value()?.parse().map_err(|_| "--rounds: number")?,
            "--in-flight" => o.in_flight = value()?.parse().map_err(|_| "--in-flight: number")?,
            "--failover" => o.failover = Some(true),
            "--no-failover" => o.failover = Some(false),
            "--totp-rule" => {
                o.totp = value()?
                    .split(',')
                    .map(|r| match r {
                        "agent" => Ok(TotpRule::Agent),
                        "current-step" => Ok(TotpRule::CurrentStep),
                        _ => Err(format!("--totp-rule: agent or current-step, not {r}")),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--failover-limit" => {
                o.failover_limit =
                    Duration::from_secs(value()?.parse().map_err(|_| "--failover-limit: seconds")?)
            }
            "--help" | "-h" => {
                println!(
                    "node-load [--nodes 1000,10000] [--tls|--plain] [--rounds N] [--in-flight N] {} \
                     [--failover|--no-failover] [--totp-rule agent,current-step] [--failover-limit SECS]",
                    fleet::USAGE
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    o.fleet.check()?;
    Ok(o)
}

fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("node-load: {e}");
            std::process::exit(2);
        }
    };
    // Every node is a socket here and in the core (and two in HAProxy).
    let files = honeybee_bench::raise_fd_limit_to(1 << 20);
    let largest = options.sizes.iter().copied().max().unwrap_or(0) as u64;
    // The core keeps about 20 descriptors of its own (database, listeners,
    // pollers), this process about 10.
    if largest + 25 > files {
        eprintln!(
            "node-load: the open-file limit is {files} (hard limit; raising it needs CAP_SYS_RESOURCE): \
             the load generator and the core each need a descriptor per node, so more than about {} nodes will fail",
            files.saturating_sub(25)
        );
    }
    let mut rows = Vec::new();
    let mut failovers = Vec::new();
    for &tls in &options.tls {
        for &n in &options.sizes {
            let rules: Vec<Option<TotpRule>> = if failover_wanted(&options) {
                options.totp.iter().copied().map(Some).collect()
            } else {
                vec![None]
            };
            for rule in rules {
                match run(n, tls, rule, &options) {
                    Ok((row, f)) => {
                        if f.is_none() {
                            report::print_row(&row);
                        }
                        rows.push(row);
                        failovers.extend(f);
                    }
                    Err(e) => eprintln!("node-load: {n} nodes, tls={tls}: {e}"),
                }
            }
        }
    }
    report::print_table(&rows);
    print_failover_table(&failovers);
}

fn failover_wanted(o: &Options) -> bool {
    o.fleet.cores >= 2 && o.failover != Some(false)
}

fn store_name(o: &Options) -> String {
    match o.fleet.store {
        Store::Sqlite => "SQLite".into(),
        _ if o.fleet.cores > 1 => format!("PostgreSQL, {} cores", o.fleet.cores),
        _ => "PostgreSQL, 1 core".into(),
    }
}

fn samples(fleet: &Fleet) -> Result<Vec<Sample>, String> {
    fleet.cores.iter().map(|c| c.sample()).collect()
}

/// The cores after the first (the survivors of a failover).
fn survivor_samples(fleet: &Fleet) -> Result<Vec<Sample>, String> {
    fleet.cores[1..].iter().map(|c| c.sample()).collect()
}

fn cpu_between(a: &[Sample], b: &[Sample]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(a, b)| b.cpu.saturating_sub(a.cpu).as_secs_f64())
        .sum()
}

fn pg_between(a: Option<Duration>, b: Option<Duration>) -> Option<f64> {
    Some(b?.saturating_sub(a?).as_secs_f64())
}

fn run(
    n: usize,
    tls: bool,
    rule: Option<TotpRule>,
    o: &Options,
) -> Result<(report::Row, Option<FailoverFigures>), String> {
    let mut fleet = Fleet::start(&o.fleet, tls, n as u64)?;
    if o.fleet.store != Store::Sqlite {
        eprintln!("  {}", o.fleet.describe());
    }
    let transport = Arc::new(Transport::to_any(fleet.node_addrs(), fleet.tls_roots()));
    let idle = samples(&fleet)?;

    // Phase 1: first registration of every node (keys issued, each committed).
    let t = Instant::now();
    let keys: Vec<NodeKey> = smol::block_on(node::enroll_all(&transport, n, o.in_flight))?;
    let enroll_secs = t.elapsed().as_secs_f64();
    eprintln!(
        "  enrolled {n} in {enroll_secs:.2} s ({:.0}/s)",
        n as f64 / enroll_secs
    );

    // Phase 2: every node reconnects and registers with a TOTP code; the
    // connections stay open for the heartbeat phase.
    let t = Instant::now();
    let before = samples(&fleet)?;
    let pg_before = fleet.pg_cpu();
    eprintln!(
        "  after enrolment of {n}: core RSS {} MB",
        rss_list(&before)
    );
    let mut nodes = smol::block_on(node::register_all(&transport, &keys, o.in_flight))?;
    let register_secs = t.elapsed().as_secs_f64();
    let after_register = samples(&fleet)?;
    let pg_after_register = fleet.pg_cpu();
    eprintln!(
        "  after {n} TOTP registrations: core RSS {} MB",
        rss_list(&after_register)
    );

    // With PostgreSQL a registration leaves work behind on the other cores
    // (each hears of it and reloads the node): wait until the cores and
    // PostgreSQL are quiet, count that work with the registrations, and
    // keep it out of the heartbeats.
    let (after_register, pg_after_register) = if o.fleet.postgres() {
        let t = Instant::now();
        settle(&fleet);
        let quiet = (samples(&fleet)?, fleet.pg_cpu());
        eprintln!(
            "  quiet {:.1} s after the last registration",
            t.elapsed().as_secs_f64()
        );
        quiet
    } else {
        (after_register, pg_after_register)
    };

    // Phase 3: heartbeats, each node once per period, spread over the period.
    let settle = samples(&fleet)?;
    let pg_settle = fleet.pg_cpu();
    let t = Instant::now();
    let sent = smol::block_on(node::heartbeat(
        &mut nodes,
        o.heartbeat_rounds,
        o.heartbeat_period,
    ))?;
    let hb_secs = t.elapsed().as_secs_f64();
    let after_hb = samples(&fleet)?;
    let pg_after_hb = fleet.pg_cpu();
    let mut counted = 0;
    let mut connected = 0;
    for core in &fleet.cores {
        counted += core.heartbeats_seen()?;
        connected += core.connected_nodes()?;
    }
    let max_kb = |v: &[Sample], f: fn(&Sample) -> u64| v.iter().map(f).max().unwrap_or(0);

    let row = report::Row {
        nodes: n,
        tls,
        enroll_per_sec: n as f64 / enroll_secs,
        enroll_secs,
        register_per_sec: n as f64 / register_secs,
        register_secs,
        register_cpu_us: cpu_between(&before, &after_register) * 1e6 / n as f64,
        heartbeats: sent,
        heartbeats_counted: counted,
        heartbeat_secs: hb_secs,
        heartbeat_cpu_us: cpu_between(&settle, &after_hb) * 1e6 / sent.max(1) as f64,
        connected,
        idle_rss_mb: max_kb(&idle, |s| s.rss_kb) as f64 / 1024.0,
        rss_mb: max_kb(&after_hb, |s| s.rss_kb) as f64 / 1024.0,
        hwm_mb: max_kb(&after_hb, |s| s.hwm_kb) as f64 / 1024.0,
        store: store_name(o),
        core_rss_mb: after_hb.iter().map(|s| s.rss_kb as f64 / 1024.0).collect(),
        pg_register_cpu_us: pg_between(pg_before, pg_after_register).map(|c| c * 1e6 / n as f64),
        pg_heartbeat_cpu_us: pg_between(pg_settle, pg_after_hb)
            .map(|c| c * 1e6 / sent.max(1) as f64),
    };
    let figures = match rule {
        Some(rule) if fleet.cores.len() >= 2 => {
            report::print_row(&row);
            Some(failover(&mut fleet, nodes, keys, transport, rule, o)?)
        }
        _ => {
            drop(nodes);
            None
        }
    };
    Ok((row, figures))
}

/// Waits (60 s at most) until the cores and PostgreSQL together use less
/// than 5 % of one CPU over a second.
fn settle(fleet: &Fleet) {
    let total = |f: &Fleet| -> Duration {
        f.cores
            .iter()
            .filter_map(|c| c.sample().ok())
            .map(|s| s.cpu)
            .sum::<Duration>()
            + f.pg_cpu().unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = total(fleet);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = total(fleet);
        if now.saturating_sub(last) < Duration::from_millis(50) {
            return;
        }
        last = now;
    }
}

fn rss_list(v: &[Sample]) -> String {
    v.iter()
        .map(|s| format!("{:.1}", s.rss_kb as f64 / 1024.0))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// What the nodes saw during the failover, all together.
#[derive(Default)]
struct Seen {
    /// Since the kill: when each node's connection ended.
    lost: Mutex<Vec<Duration>>,
    /// Connections that ended before the kill.
    lost_before_kill: AtomicU64,
    /// Since the kill: when each node that lost its connection was
    /// registered again.
    back: Mutex<Vec<Duration>>,
    attempts: AtomicU64,
    closed_before_ack: AtomicU64,
    connect_failed: AtomicU64,
    no_ack: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
    step_waits: AtomicU64,
    step_wait_ms: AtomicU64,
}

/// The figures of one failover, for the table.
struct FailoverFigures {
    nodes: usize,
    rule: TotpRule,
    on_victim: u64,
    lost: usize,
    down_after: Option<Duration>,
    p50: Option<Duration>,
    p99: Option<Duration>,
    all_back: Option<Duration>,
    survivors_view: Option<Duration>,
    step_waits: u64,
    mean_wait: f64,
    into_step: f64,
}

/// The agent's wait for a registration answer (uplink.rs).
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(10);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The step to present after `last`, and how long to wait for it first.
fn plan(rule: TotpRule, last: u64) -> (u64, Duration) {
    match rule {
        TotpRule::Agent => {
            let (step, wait) = agent_totp::next_step(last, agent_totp::unix_now());
            // As the agent: a wait for a fresh step is spread over the step.
            (
                step,
                agent_totp::spread(wait, honeybee_agent::backoff::random_unit()),
            )
        }
        TotpRule::CurrentStep => {
            let now = unix_ms();
            let step = now / 30_000;
            if step > last {
                (step, Duration::ZERO)
            } else {
                let next = last + 1;
                (next, Duration::from_millis(next * 30_000 - now + 10))
            }
        }
    }
}

/// Kills core1 while every node holds its connection, and measures how
/// long until the nodes it held are registered again elsewhere.
fn failover(
    fleet: &mut Fleet,
    nodes: Vec<Node>,
    keys: Vec<NodeKey>,
    transport: Arc<Transport>,
    rule: TotpRule,
    o: &Options,
) -> Result<FailoverFigures, String> {
    let n = nodes.len();
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let t0: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let registered_steps: Vec<u64> = nodes.iter().map(|n| n.step()).collect();
    let tasks: Vec<_> = nodes
        .into_iter()
        .zip(keys)
        .enumerate()
        .map(|(i, (node, key))| {
            let (transport, seen, stop, t0) =
                (transport.clone(), seen.clone(), stop.clone(), t0.clone());
            let heartbeat = o.hold_heartbeat;
            smol::spawn(async move {
                keep(i, node, key, transport, seen, stop, t0, rule, heartbeat).await
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let on_victim = fleet.cores[0].connected_nodes()?;
    let others: Vec<u64> = fleet.cores[1..]
        .iter()
        .map(|c| c.connected_nodes())
        .collect::<Result<_, _>>()?;
    let survivors_before = survivor_samples(fleet)?;
    let pg_before = fleet.pg_cpu();
    let into_step = (unix_ms() % 30_000) as f64 / 1000.0;
    let kill_step = unix_ms() / 30_000;
    let last_step = registered_steps.iter().copied().max().unwrap_or(0);
    println!(
        "failover: {n} nodes; kill -9 core1 holding {on_victim} (others hold {others:?}); TOTP rule: {}; \
         the kill is {into_step:.1} s into TOTP step {kill_step}, the nodes registered with steps {}..={last_step}",
        rule.name(),
        registered_steps.iter().copied().min().unwrap_or(0),
    );
    let start = *t0.get_or_init(Instant::now);
    fleet.cores[0].kill9();

    let mut down_after = None;
    let mut survivors_view = None;
    let mut next_report = Duration::from_secs(5);
    let total_expected = n as u64;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let elapsed = start.elapsed();
        if down_after.is_none()
            && fleet.proxies.iter().all(|p| {
                p.node_server_status(0)
                    .is_some_and(|s| s.starts_with("DOWN"))
            })
        {
            down_after = Some(elapsed);
        }
        let lost = seen.lost.lock().unwrap().len();
        let back = seen.back.lock().unwrap().len();
        if survivors_view.is_none() {
            // Registered nodes, as each surviving core counts them.
            let held: u64 = fleet.cores[1..]
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    c.metric_value(&format!(
                        "honeybee_nodes_connected{{core_name=\"core{}\"}}",
                        i + 2
                    ))
                    .unwrap_or(0)
                })
                .sum();
            if held >= total_expected {
                survivors_view = Some(start.elapsed());
            }
        }
        if elapsed >= next_report {
            next_report += Duration::from_secs(5);
            eprintln!(
                "  t={:>5.1} s  lost {lost:>5}  registered again {back:>5}  attempts {:>6}",
                elapsed.as_secs_f64(),
                seen.attempts.load(Ordering::Relaxed)
            );
        }
        let all_lost_back = lost as u64 >= on_victim && back >= lost;
        if (all_lost_back && survivors_view.is_some()) || elapsed >= o.failover_limit {
            break;
        }
    }
    let wall = start.elapsed();
    let survivors_after = survivor_samples(fleet)?;
    let pg_after = fleet.pg_cpu();
    stop.store(true, Ordering::Relaxed);
    drop(tasks);

    let mut back = seen.back.lock().unwrap().clone();
    back.sort();
    let lost = seen.lost.lock().unwrap().clone();
    let last_lost = lost.iter().max().copied().unwrap_or_default();
    let at = |p: usize| -> Option<Duration> {
        let k = (lost.len() * p).div_ceil(100).max(1);
        back.get(k - 1).copied()
    };
    let s = |d: Option<Duration>| d.map_or("–".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    println!(
        "  HAProxy marked core1 DOWN after {}; {} connections lost (the last {:.2} s after the kill; {} before it)",
        s(down_after),
        lost.len(),
        last_lost.as_secs_f64(),
        seen.lost_before_kill.load(Ordering::Relaxed)
    );
    println!(
        "  registered again: 50 % {}, 90 % {}, 99 % {}, all {} ({} of {} lost; watched {:.1} s)",
        s(at(50)),
        s(at(90)),
        s(at(99)),
        s(if back.len() >= lost.len() && !lost.is_empty() {
            back.last().copied()
        } else {
            None
        }),
        back.len(),
        lost.len(),
        wall.as_secs_f64()
    );
    println!(
        "  the surviving cores' own count of nodes connected to them (honeybee_nodes_connected) reached all {n} after {}",
        s(survivors_view)
    );
    let attempts = seen.attempts.load(Ordering::Relaxed);
    let waits = seen.step_waits.load(Ordering::Relaxed);
    let mean_wait = seen.step_wait_ms.load(Ordering::Relaxed) as f64 / 1000.0 / waits.max(1) as f64;
    println!(
        "  attempts {attempts} ({:.2} per lost node): closed before ack {}, connect failed {}, no ack in 10 s {}; \
         attempts that first waited for a fresh TOTP step: {waits} (mean wait {mean_wait:.1} s)",
        attempts as f64 / lost.len().max(1) as f64,
        seen.closed_before_ack.load(Ordering::Relaxed),
        seen.connect_failed.load(Ordering::Relaxed),
        seen.no_ack.load(Ordering::Relaxed),
    );
    for (why, count) in seen.refused.lock().unwrap().iter() {
        println!("    refused ({why}): {count}");
    }
    // Where refused or closed attempts come from: the survivors' own
    // counts and HAProxy's.
    for (i, core) in fleet.cores.iter().enumerate().skip(1) {
        if let Ok(text) = core.get("/metrics") {
            for l in text.lines().filter(|l| {
                !l.starts_with('#')
                    && (l.contains("refused")
                        || l.contains("registration")
                        || l.contains("timeout"))
                    && !l.ends_with(" 0")
            }) {
                println!("    core{}: {l}", i + 1);
            }
        }
    }
    for (k, proxy) in fleet.proxies.iter().enumerate() {
        for l in proxy.counters(
            "honeybee_nodes",
            &[
                "scur", "smax", "stot", "econ", "eresp", "wretr", "wredis", "dcon", "dses",
                "cli_abrt", "srv_abrt", "qmax", "ereq",
            ],
        ) {
            println!("    haproxy{}: {l}", k + 1);
        }
    }
    for (i, (b, a)) in survivors_before.iter().zip(&survivors_after).enumerate() {
        println!(
            "  core{}: CPU {:.2} s during the failover; RSS {:.1} → {:.1} MB",
            i + 2,
            a.cpu.saturating_sub(b.cpu).as_secs_f64(),
            b.rss_kb as f64 / 1024.0,
            a.rss_kb as f64 / 1024.0
        );
    }
    if let Some(pg) = pg_between(pg_before, pg_after) {
        println!("  PostgreSQL: CPU {pg:.2} s during the failover");
    }
    Ok(FailoverFigures {
        nodes: n,
        rule,
        on_victim,
        lost: lost.len(),
        down_after,
        p50: at(50),
        p99: at(99),
        all_back: (back.len() >= lost.len() && !lost.is_empty())
            .then(|| back.last().copied())
            .flatten(),
        survivors_view,
        step_waits: waits,
        mean_wait,
        into_step,
    })
}

fn print_failover_table(rows: &[FailoverFigures]) {
    if rows.is_empty() {
        return;
    }
    let s = |d: Option<Duration>| d.map_or("–".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    println!();
    println!("| nodes | on the killed core | TOTP rule | kill into the step | HAProxy DOWN after | 50 % back | 99 % back | all back | survivor counts all | waited for a step (mean) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} ({} lost) | {} | {:.1} s | {} | {} | {} | {} | {} | {} ({:.1} s) |",
            r.nodes,
            r.on_victim,
            r.lost,
            r.rule.name(),
            r.into_step,
            s(r.down_after),
            s(r.p50),
            s(r.p99),
            s(r.all_back),
            s(r.survivors_view),
            r.step_waits,
            r.mean_wait
        );
    }
}

/// One node: keeps its connection (heartbeats every `heartbeat`); when it
/// drops, reconnects like the agent until registered again.
#[allow(clippy::too_many_arguments)]
async fn keep(
    i: usize,
    node: Node,
    key: NodeKey,
    transport: Arc<Transport>,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    t0: Arc<OnceLock<Instant>>,
    rule: TotpRule,
    heartbeat: Duration,
) {
    let id = node.id();
    let mut last_step = node.step();
    let mut stream = node.into_stream();
    loop {
        hold(&mut stream, id, heartbeat, &stop).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match t0.get() {
            Some(t) => seen.lost.lock().unwrap().push(t.elapsed()),
            None => {
                seen.lost_before_kill.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        stream = loop {
            Timer::after(backoff.next_delay()).await;
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let (step, wait) = plan(rule, last_step);
            if !wait.is_zero() {
                seen.step_waits.fetch_add(1, Ordering::Relaxed);
                seen.step_wait_ms
                    .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                Timer::after(wait).await;
            }
            seen.attempts.fetch_add(1, Ordering::Relaxed);
            if let Some(s) = attempt(i, &key, &transport, &seen, step, &mut last_step, rule).await {
                break s;
            }
        };
        if let Some(t) = t0.get() {
            seen.back.lock().unwrap().push(t.elapsed());
        }
    }
}

/// Connect, register with a code for `step` (spent on send, as the
/// agent), wait for the answer; the connection when accepted.
async fn attempt(
    i: usize,
    key: &NodeKey,
    transport: &Transport,
    seen: &Seen,
    step: u64,
    last_step: &mut u64,
    rule: TotpRule,
) -> Option<Box<dyn Io>> {
    let mut s = match transport.connect(node::source(i)).await {
        Ok(s) => s,
        Err(_) => {
            seen.connect_failed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
    };
    // As the agent: a plan made before a slow connect may be stale.
    let step =
        if rule == TotpRule::Agent && !agent_totp::still_accepted(step, agent_totp::unix_now()) {
            agent_totp::next_step(*last_step, agent_totp::unix_now()).0
        } else {
            step
        };
    *last_step = step;
    let code = node::code_at(key.key(), step);
    let answer = future::or(
        async {
            node::send(&mut s, node::registration(key.id(), Some(code))).await?;
            node::ack(&mut s).await.map(Some)
        },
        async {
            Timer::after(REGISTRATION_TIMEOUT).await;
            Ok(None)
        },
    )
    .await;
    match answer {
        Ok(Some(a)) if a.accepted => {
            if node::send(&mut s, node::heartbeat_msg(key.id()))
                .await
                .is_err()
            {
                seen.closed_before_ack.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Some(s)
        }
        Ok(Some(a)) => {
            let why = a.message.unwrap_or_else(|| "no reason given".into());
            *seen.refused.lock().unwrap().entry(why).or_default() += 1;
            None
        }
        Ok(None) => {
            seen.no_ack.fetch_add(1, Ordering::Relaxed);
            None
        }
        Err(_) => {
            seen.closed_before_ack.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// Keeps a registered connection: reads (and drops) what the core sends,
/// heartbeats every `period`. Returns when the connection ends or on stop.
async fn hold(stream: &mut Box<dyn Io>, id: u64, period: Duration, stop: &AtomicBool) {
    let mut buf = vec![0u8; 1024];
    let mut next = Instant::now() + period;
    loop {
        let read = future::or(async { Some(stream.read(&mut buf).await) }, async {
            Timer::at(next).await;
            None
        })
        .await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match read {
            Some(Ok(0)) | Some(Err(_)) => return,
            Some(Ok(_)) => {}
            None => {
                next += period;
                if node::send(stream, node::heartbeat_msg(id)).await.is_err() {
                    return;
                }
            }
        }
    }
}
