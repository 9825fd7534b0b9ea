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

use std::time::{Duration, Instant};

use honeybee_bench::core_process::CoreProcess;
use honeybee_bench::node::{self, NodeKey, Transport};
use honeybee_bench::report;

struct Options {
    sizes: Vec<usize>,
    tls: Vec<bool>,
    heartbeat_rounds: u32,
    heartbeat_period: Duration,
    in_flight: usize,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        sizes: vec![1000, 10_000],
        tls: vec![false, true],
        heartbeat_rounds: 10,
        heartbeat_period: Duration::from_secs(1),
        in_flight: 256,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--nodes" => {
                o.sizes = value()?
                    .split(',')
                    .map(|n| n.parse().map_err(|_| format!("--nodes: bad number {n}")))
                    .collect::<Result<_, _>>()?
            }
            "--tls" => o.tls = vec![true],
            "--plain" => o.tls = vec![false],
            "--rounds" => o.heartbeat_rounds = value()?.parse().map_err(|_| "--rounds: number")?,
            "--in-flight" => o.in_flight = value()?.parse().map_err(|_| "--in-flight: number")?,
            "--help" | "-h" => {
                println!(
                    "node-load [--nodes 1000,10000] [--tls|--plain] [--rounds N] [--in-flight N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
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
    honeybee_bench::raise_fd_limit();
    let mut rows = Vec::new();
    for &tls in &options.tls {
        for &n in &options.sizes {
            match run(n, tls, &options) {
                Ok(row) => {
                    report::print_row(&row);
                    rows.push(row);
                }
                Err(e) => eprintln!("node-load: {n} nodes, tls={tls}: {e}"),
            }
        }
    }
    report::print_table(&rows);
}

fn run(n: usize, tls: bool, o: &Options) -> Result<report::Row, String> {
    let core = CoreProcess::start(tls)?;
    let transport = Transport::new(core.node_addr, core.tls_roots.clone());
    let idle = core.sample()?;

    // Phase 1: first registration of every node (keys issued, each committed).
    let t = Instant::now();
    let keys: Vec<NodeKey> = smol::block_on(node::enroll_all(&transport, n, o.in_flight))?;
    let enroll_secs = t.elapsed().as_secs_f64();

    // Phase 2: every node reconnects and registers with a TOTP code; the
    // connections stay open for the heartbeat phase.
    let t = Instant::now();
    let before = core.sample()?;
    eprintln!(
        "  after enrolment of {n}: core RSS {:.1} MB",
        before.rss_kb as f64 / 1024.0
    );
    let mut fleet = smol::block_on(node::register_all(&transport, &keys, o.in_flight))?;
    let register_secs = t.elapsed().as_secs_f64();
    let after_register = core.sample()?;
    eprintln!(
        "  after {n} TOTP registrations: core RSS {:.1} MB",
        after_register.rss_kb as f64 / 1024.0
    );

    // Phase 3: heartbeats, each node once per period, spread over the period.
    let settle = core.sample()?;
    let t = Instant::now();
    let sent = smol::block_on(node::heartbeat(
        &mut fleet,
        o.heartbeat_rounds,
        o.heartbeat_period,
    ))?;
    let hb_secs = t.elapsed().as_secs_f64();
    let after_hb = core.sample()?;
    let counted = core.heartbeats_seen()?;
    let connected = core.connected_nodes()?;
    drop(fleet);

    Ok(report::Row {
        nodes: n,
        tls,
        enroll_per_sec: n as f64 / enroll_secs,
        enroll_secs,
        register_per_sec: n as f64 / register_secs,
        register_secs,
        register_cpu_us: (after_register.cpu - before.cpu).as_secs_f64() * 1e6 / n as f64,
        heartbeats: sent,
        heartbeats_counted: counted,
        heartbeat_secs: hb_secs,
        heartbeat_cpu_us: (after_hb.cpu - settle.cpu).as_secs_f64() * 1e6 / sent.max(1) as f64,
        connected,
        idle_rss_mb: idle.rss_kb as f64 / 1024.0,
        rss_mb: after_hb.rss_kb as f64 / 1024.0,
        hwm_mb: after_hb.hwm_kb as f64 / 1024.0,
    })
}
