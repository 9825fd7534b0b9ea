//! `heartbeat-cost`: what one heartbeat costs the core at realistic rates.
//!
//! Starts the release `honeybee-core`, connects N plain TCP nodes from
//! distinct loopback addresses (127.1.x.y), registers each once (open
//! enrolment; the connection that registered stays open), reports every
//! node `Running` once, and then, for each rate, sends heartbeats
//! (`NodeStatusUpdate`, status unchanged) spread evenly over time, round
//! robin over the nodes, for a fixed duration.
//!
//! For each window it prints the core's CPU per heartbeat (utime + stime of
//! `/proc/PID/stat`, and the finer `/proc/PID/task/*/schedstat` run time of
//! its threads), its wake-ups (voluntary context switches of its threads,
//! `/proc/PID/task/*/status`), its RSS, and the load generator's own CPU so
//! that readers can judge how much the two shared the machine. Figures are
//! printed, never asserted.
//!
//! The generator is one thread with non-blocking sockets and a paced loop:
//! it sleeps until the next heartbeat is due and writes one pre-encoded line.
//!
//! `/proc/PID/stat` counts in clock ticks (10 ms): at 333 heartbeats a
//! second a 20 s window resolves 1.5 µs per heartbeat, a 60 s one 0.5 µs;
//! the schedstat figure beside it is in nanoseconds.
//!
//!     cargo build --release -p honeybee-core -p honeybee-bench
//!     target/release/heartbeat-cost [--nodes 5000] [--rates 333,1000,5000]
//!         [--large 10000] [--large-rates 333] [--seconds 20] [--threads]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use honeybee_bench::core_process::CoreProcess;
use honeybee_bench::node::{heartbeat_msg, registration};
use honeybee_bench::procfs;
use honeybee_proto::{decode, encode, CoreMessage, Envelope, LineDecoder};

struct Options {
    nodes: usize,
    rates: Vec<f64>,
    large: usize,
    large_rates: Vec<f64>,
    seconds: f64,
    idle_seconds: f64,
    threads: bool,
}

fn rates(v: &str) -> Result<Vec<f64>, String> {
    v.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .ok_or(format!("bad rate {r}"))
        })
        .collect()
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        nodes: 5000,
        rates: vec![333.0, 1000.0, 5000.0],
        large: 10_000,
        large_rates: vec![333.0],
        seconds: 20.0,
        idle_seconds: 5.0,
        threads: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|_| format!("{a}: bad number {v}"));
        match a.as_str() {
            "--nodes" => o.nodes = number(value()?)? as usize,
            "--rates" => o.rates = rates(&value()?)?,
            "--large" => o.large = number(value()?)? as usize,
            "--large-rates" => o.large_rates = rates(&value()?)?,
            "--seconds" => o.seconds = number(value()?)?,
            "--idle-seconds" => o.idle_seconds = number(value()?)?,
            "--threads" => o.threads = true,
            "--help" | "-h" => {
                println!(
                    "heartbeat-cost [--nodes 5000] [--rates 333,1000,5000] [--large 10000] \
                     [--large-rates 333] [--seconds 20] [--idle-seconds 5] [--threads]\n\
                     --large 0 skips the second fleet; --threads prints each core thread's share"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("heartbeat-cost: {e}");
            std::process::exit(2);
        }
    };
    honeybee_bench::raise_fd_limit();
    let mut rows = Vec::new();
    let mut fleets = vec![(o.nodes, o.rates.clone())];
    if o.large > 0 && !o.large_rates.is_empty() {
        fleets.push((o.large, o.large_rates.clone()));
    }
    for (n, rates) in fleets {
        if let Err(e) = run(n, &rates, &o, &mut rows) {
            eprintln!("heartbeat-cost: {n} nodes: {e}");
        }
    }
    println!();
    println!(
        "| nodes | heartbeats/s (sent) | core µs CPU/heartbeat (stat) | (schedstat) | core wake-ups/heartbeat | core RSS MB | generator µs CPU/heartbeat |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} ({:.0}) | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} |",
            r.nodes, r.label, r.sent_rate, r.cpu_us, r.sched_us, r.wakeups, r.rss_mb, r.gen_us
        );
    }
}

struct Row {
    nodes: usize,
    label: String,
    sent_rate: f64,
    cpu_us: f64,
    sched_us: f64,
    wakeups: f64,
    rss_mb: f64,
    gen_us: f64,
}

fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// Connections registered per batch (the core admits 1,024 pending).
const BATCH: usize = 256;

struct Node {
    stream: TcpStream,
    beat: Vec<u8>,
}

fn connect(from: Ipv4Addr, to: SocketAddr) -> Result<TcpStream, String> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .map_err(|e| e.to_string())?;
    sock.bind(&SocketAddr::V4(SocketAddrV4::new(from, 0)).into())
        .map_err(|e| format!("binding {from}: {e}"))?;
    sock.connect(&to.into())
        .map_err(|e| format!("connecting from {from}: {e}"))?;
    let s = TcpStream::from(sock);
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

fn read_ack(s: &mut TcpStream) -> Result<(), String> {
    let mut frames = LineDecoder::new(64 * 1024);
    loop {
        if let Some(line) = frames.next_frame().map_err(|e| e.to_string())? {
            return match decode::<CoreMessage>(line) {
                Ok(CoreMessage::RegistrationAck(a)) if a.accepted => Ok(()),
                other => Err(format!(
                    "expected an accepting RegistrationAck, got {other:?}"
                )),
            };
        }
        let n = s.read(frames.window()).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before RegistrationAck".into());
        }
        frames.filled(n);
    }
}

/// Connects and registers nodes 1..=n, `BATCH` at a time; every
/// connection stays open, non-blocking.
fn register(n: usize, to: SocketAddr) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::with_capacity(n);
    for start in (0..n).step_by(BATCH) {
        let mut batch = Vec::with_capacity(BATCH);
        for i in start..(start + BATCH).min(n) {
            let id = i as u64 + 1;
            let mut s = connect(source(i), to)?;
            s.write_all(&encode(&Envelope::new(registration(id, None))))
                .map_err(|e| e.to_string())?;
            batch.push((id, s));
        }
        for (id, mut s) in batch {
            s.set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            read_ack(&mut s).map_err(|e| format!("node {id}: {e}"))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            nodes.push(Node {
                stream: s,
                beat: encode(&Envelope::new(heartbeat_msg(id))),
            });
        }
    }
    Ok(nodes)
}

/// One thread of the core at one moment.
#[derive(Clone, Default)]
struct Thread {
    name: String,
    ticks: u64,
    run_ns: u64,
    voluntary: u64,
    involuntary: u64,
}

/// The core at one moment: its CPU ticks (whole process, exited threads
/// included), RSS, and each live thread.
struct Snapshot {
    ticks: u64,
    rss_kb: u64,
    threads: BTreeMap<u32, Thread>,
}

fn snapshot(pid: u32) -> Snapshot {
    let ticks = procfs::stat_fields(pid).map_or(0, |f| f[11] + f[12]);
    let mut threads = BTreeMap::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
                continue;
            };
            let base = format!("/proc/{pid}/task/{tid}");
            let mut t = Thread::default();
            if let Ok(stat) = std::fs::read_to_string(format!("{base}/stat")) {
                if let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) {
                    t.name = stat[open + 1..close].to_string();
                    let f: Vec<u64> = stat[close + 1..]
                        .split_whitespace()
                        .map(|v| v.parse().unwrap_or(0))
                        .collect();
                    t.ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
                }
            }
            if let Ok(s) = std::fs::read_to_string(format!("{base}/schedstat")) {
                t.run_ns = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
            if let Ok(s) = std::fs::read_to_string(format!("{base}/status")) {
                for l in s.lines() {
                    let v = |k: &str| l.strip_prefix(k).and_then(|v| v.trim().parse::<u64>().ok());
                    if let Some(v) = v("voluntary_ctxt_switches:") {
                        t.voluntary = v;
                    } else if let Some(v) = v("nonvoluntary_ctxt_switches:") {
                        t.involuntary = v;
                    }
                }
            }
            threads.insert(tid, t);
        }
    }
    Snapshot {
        ticks,
        rss_kb: procfs::status_kb(pid, "VmRSS:"),
        threads,
    }
}

/// What the core spent between two snapshots.
struct Spent {
    cpu: Duration,
    run: Duration,
    voluntary: u64,
    involuntary: u64,
    /// Per thread name: run time, voluntary switches.
    by_thread: BTreeMap<String, (Duration, u64)>,
}

fn spent(a: &Snapshot, b: &Snapshot) -> Spent {
    let hz = procfs::clock_ticks();
    let mut s = Spent {
        cpu: Duration::from_micros(b.ticks.saturating_sub(a.ticks) * 1_000_000 / hz),
        run: Duration::ZERO,
        voluntary: 0,
        involuntary: 0,
        by_thread: BTreeMap::new(),
    };
    for (tid, t) in &b.threads {
        // A thread born during the window counts from zero.
        let before = a.threads.get(tid).cloned().unwrap_or_default();
        let run = Duration::from_nanos(t.run_ns.saturating_sub(before.run_ns));
        let vol = t.voluntary.saturating_sub(before.voluntary);
        s.run += run;
        s.voluntary += vol;
        s.involuntary += t.involuntary.saturating_sub(before.involuntary);
        let e = s.by_thread.entry(t.name.clone()).or_default();
        e.0 += run;
        e.1 += vol;
    }
    s
}

fn own_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000)
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// Writes every node's heartbeat once (they go from `Connected` to
/// `Running`: a status change and a store write each).
fn first_beats(nodes: &mut [Node]) -> u64 {
    nodes.iter_mut().map(|n| send(n) as u64).sum()
}

/// One heartbeat; false if the socket would not take it whole.
fn send(node: &mut Node) -> bool {
    match node.stream.write(&node.beat) {
        Ok(k) => k == node.beat.len(),
        Err(e) if e.kind() == ErrorKind::Interrupted => send(node),
        Err(_) => false,
    }
}

/// Sends `rate` heartbeats a second for `seconds`, round robin from
/// `*next`, each at its own due time. Returns (sent, failed).
fn pace(nodes: &mut [Node], next: &mut usize, rate: f64, seconds: f64) -> (u64, u64) {
    let total = (rate * seconds).round() as u64;
    let start = Instant::now();
    let (mut sent, mut failed) = (0, 0);
    for k in 0..total {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if send(&mut nodes[*next]) {
            sent += 1;
        } else {
            failed += 1;
        }
        *next = (*next + 1) % nodes.len();
    }
    (sent, failed)
}

fn wait_counted(core: &CoreProcess, target: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let seen = core.heartbeats_seen().unwrap_or(0);
        if seen >= target || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_threads(s: &Spent, per: f64) {
    let mut v: Vec<_> = s.by_thread.iter().collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.1 .0));
    for (name, (run, vol)) in v.into_iter().take(8) {
        if run.is_zero() && *vol == 0 {
            continue;
        }
        println!(
            "      {name:<16} {:>9.1} ms  {:>7.2} µs/hb  {:>8} wake-ups",
            run.as_secs_f64() * 1e3,
            run.as_secs_f64() * 1e6 / per,
            vol
        );
    }
}

fn run(n: usize, rates: &[f64], o: &Options, rows: &mut Vec<Row>) -> Result<(), String> {
    let core = CoreProcess::start(false)?;
    let pid = core_pid(&core)?;
    let fresh = snapshot(pid);
    let t = Instant::now();
    let mut nodes = register(n, core.node_addr)?;
    let reg_secs = t.elapsed().as_secs_f64();
    let connected = core.connected_nodes()?;
    let sent = first_beats(&mut nodes);
    let counted = wait_counted(&core, sent, Duration::from_secs(30));
    // The status writes settle.
    std::thread::sleep(Duration::from_secs(1));
    let registered = snapshot(pid);
    println!(
        "{n} nodes registered in {reg_secs:.2} s ({connected} connected), first heartbeats {counted}/{sent} counted; \
         core RSS {:.1} MB (fresh {:.1} MB)",
        registered.rss_kb as f64 / 1024.0,
        fresh.rss_kb as f64 / 1024.0
    );

    // Idle: nodes connected and silent.
    if o.idle_seconds > 0.0 {
        let a = snapshot(pid);
        std::thread::sleep(Duration::from_secs_f64(o.idle_seconds));
        let b = snapshot(pid);
        let s = spent(&a, &b);
        println!(
            "  idle {:.0} s: core CPU {:.2} ms/s (schedstat {:.2} ms/s), {:.1} wake-ups/s, RSS {:.1} MB",
            o.idle_seconds,
            s.cpu.as_secs_f64() * 1e3 / o.idle_seconds,
            s.run.as_secs_f64() * 1e3 / o.idle_seconds,
            s.voluntary as f64 / o.idle_seconds,
            b.rss_kb as f64 / 1024.0
        );
        if o.threads {
            print_threads(&s, 1.0);
        }
    }

    let mut next = 0;
    for &rate in rates {
        let seen_before = core.heartbeats_seen()?;
        let a = snapshot(pid);
        let own_a = own_cpu();
        let t = Instant::now();
        let (sent, failed) = pace(&mut nodes, &mut next, rate, o.seconds);
        let secs = t.elapsed().as_secs_f64();
        let own = own_cpu() - own_a;
        // The last heartbeats are handled within milliseconds.
        std::thread::sleep(Duration::from_millis(100));
        let b = snapshot(pid);
        let counted = wait_counted(&core, seen_before + sent, Duration::from_secs(5)) - seen_before;
        let s = spent(&a, &b);
        let per = sent.max(1) as f64;
        let row = Row {
            nodes: n,
            label: format!("{rate:.0}"),
            sent_rate: sent as f64 / secs,
            cpu_us: s.cpu.as_secs_f64() * 1e6 / per,
            sched_us: s.run.as_secs_f64() * 1e6 / per,
            wakeups: s.voluntary as f64 / per,
            rss_mb: b.rss_kb as f64 / 1024.0,
            gen_us: own.as_secs_f64() * 1e6 / per,
        };
        println!(
            "  {n} nodes at {rate:.0}/s: {sent} heartbeats in {secs:.1} s ({:.0}/s, {failed} not written, core counted {counted}); \
             core CPU {:.2} µs/heartbeat (stat; schedstat {:.2}), {:.2} wake-ups/heartbeat ({} involuntary in all), \
             RSS {:.1} MB; generator {:.2} µs CPU/heartbeat",
            row.sent_rate,
            row.cpu_us,
            row.sched_us,
            row.wakeups,
            s.involuntary,
            row.rss_mb,
            row.gen_us
        );
        if o.threads {
            print_threads(&s, per);
        }
        rows.push(row);
    }
    drop(nodes);
    Ok(())
}

/// The core's pid: our child whose command line has its node port
/// (`CoreProcess` keeps its `Child` to itself).
fn core_pid(core: &CoreProcess) -> Result<u32, String> {
    let me = std::process::id() as u64;
    let port = format!("--node-port\0{}\0", core.node_addr.port());
    for e in std::fs::read_dir("/proc")
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if procfs::stat_fields(pid).is_some_and(|f| f.get(1) == Some(&me))
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&port))
        {
            return Ok(pid);
        }
    }
    Err("the core process was not found among this one's children".to_string())
}
