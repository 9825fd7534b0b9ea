//! `nat-restart`: do N nodes behind ONE NAT address all register again
//! within 2 minutes of a core restart, under the core's admission limits?
//!
//! Starts the real `honeybee-core`, enrolls N nodes all from 127.0.0.1
//! (retrying the connections the per-source limits refuse), restarts the
//! core on the same data dir (nodes and TOTP keys persist), then has every
//! node reconnect from 127.0.0.1 the way the agent does: the agent's own
//! `Backoff` (1 s doubling to 60 s, each delay between half and all of the
//! step, reset on success; the first attempt after the first delay,
//! 0.5–1 s) and the agent's own TOTP step rule (`totp::next_step`: never a
//! step twice; the current step, else the one ahead the core accepts, else
//! wait for the next step — here before connecting). Registered nodes keep
//! their connections open and heartbeat every 20 s; a lost one reconnects.
//!
//! Prints the time until 50/90/99/100 % registered after the restart, the
//! attempts and what the client saw, the core's refusal counters and its
//! CPU and memory. Figures, never assertions.
//!
//! `--connect-rate R` starts the core with `connect_rate_per_source = R`
//! (a config file); `--spend-on-answer` counts a TOTP step as spent only
//! once the core answered, instead of on send as the agent does (a
//! connection refused at accept then costs no step).
//!
//!     cargo build --release -p honeybee-core -p honeybee-bench
//!     target/release/nat-restart [--nodes 5000] [--connect-rate 200] [--spend-on-answer]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{future, AsyncReadExt};
use honeybee_agent::backoff::Backoff;
use honeybee_agent::totp as agent_totp;
use honeybee_bench::core_process::CoreProcess;
use honeybee_bench::node::{self, Io, NodeKey, Transport};

/// The one address every node connects from: the NAT.
const NAT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// The agent's wait for the registration answer (uplink.rs).
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The target: everyone back within this.
const TARGET: Duration = Duration::from_secs(120);

/// When a node counts a TOTP step as spent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spend {
    /// When it sends the registration, as the agent does: also on a
    /// connection the core has already closed at accept, unread.
    OnSend,
    /// Only when the core answered (or did not answer within 10 s): a
    /// connection closed before any answer leaves the step unspent. Not
    /// what the agent does; measured for comparison.
    OnAnswer,
}

struct Options {
    nodes: usize,
    spend: Spend,
    connect_rate: Option<u32>,
    limit: Duration,
    heartbeat: Duration,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        nodes: 5000,
        spend: Spend::OnSend,
        connect_rate: None,
        limit: Duration::from_secs(300),
        heartbeat: Duration::from_secs(20),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--nodes" => o.nodes = value()?.parse().map_err(|_| "--nodes: number")?,
            "--connect-rate" => {
                o.connect_rate = Some(value()?.parse().map_err(|_| "--connect-rate: number")?)
            }
            "--limit" => {
                o.limit = Duration::from_secs(value()?.parse().map_err(|_| "--limit: seconds")?)
            }
            "--spend-on-answer" => o.spend = Spend::OnAnswer,
            "--heartbeat" => {
                o.heartbeat =
                    Duration::from_secs(value()?.parse().map_err(|_| "--heartbeat: seconds")?)
            }
            "--help" | "-h" => {
                println!(
                    "nat-restart [--nodes 5000] [--connect-rate N (core config connect_rate_per_source; default: the core's)] [--limit 300] [--heartbeat 20] [--spend-on-answer]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    Ok(o)
}

fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("nat-restart: {e}");
            std::process::exit(2);
        }
    };
    honeybee_bench::raise_fd_limit();
    if let Err(e) = run(&options) {
        eprintln!("nat-restart: {e}");
        std::process::exit(1);
    }
}

/// What the clients saw, all nodes together.
#[derive(Default)]
struct Seen {
    attempts: AtomicU64,
    /// The connection ended (EOF or reset) before an acknowledgement: the
    /// core closed it at accept.
    closed_before_ack: AtomicU64,
    /// `connect` itself failed.
    connect_failed: AtomicU64,
    /// No acknowledgement within the agent's 10 s.
    no_ack: AtomicU64,
    /// Acknowledgements with `accepted = false`, by message.
    refused_by_ack: Mutex<BTreeMap<String, u64>>,
    /// Attempts that first waited for a fresh TOTP step, and how long.
    step_waits: AtomicU64,
    step_wait_ms: AtomicU64,
    /// Registered connections the core later closed.
    lost: AtomicU64,
    registered_now: AtomicU64,
    /// Time from t0 of each node's first registration.
    first_registered: Mutex<Vec<Duration>>,
}

fn run(o: &Options) -> Result<(), String> {
    let n = o.nodes;
    let config = o
        .connect_rate
        .map(|r| format!("connect_rate_per_source = {r}\n"));
    let mut core = CoreProcess::start_with(false, config.as_deref())?;
    let transport = Arc::new(Transport::new(core.node_addr, None));
    let limits = o
        .connect_rate
        .map_or("the core's default (200/s, bursts of 400)".into(), |r| {
            format!("{r}/s, bursts of {}", r * 2)
        });
    let spend = match o.spend {
        Spend::OnSend => "on send (as the agent)",
        Spend::OnAnswer => "on an answer only (not the agent)",
    };
    println!(
        "nat-restart: {n} nodes behind {NAT}, core connect_rate_per_source = {limits}, TOTP step spent {spend}"
    );

    // Enrollment from the one address; refused connections retried.
    let t = Instant::now();
    let (keys, retries) = smol::block_on(node::enroll_all_from(
        &transport,
        n,
        16,
        NAT,
        Duration::from_millis(50),
    ))?;
    println!(
        "  enrolled {n} in {:.1} s ({retries} refused connections retried)",
        t.elapsed().as_secs_f64()
    );

    // Restart on the same data dir.
    let t = Instant::now();
    core.restart()?;
    let restart_secs = t.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let start_sample = core.sample()?;
    println!("  core restarted in {restart_secs:.2} s (SIGTERM to /health); t0 = /health answered");

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = keys
        .into_iter()
        .map(|k| {
            let (transport, seen, stop) = (transport.clone(), seen.clone(), stop.clone());
            let (heartbeat, spend) = (o.heartbeat, o.spend);
            smol::spawn(async move { agent(k, transport, seen, stop, t0, heartbeat, spend).await })
        })
        .collect();

    // Watch until all registered or the limit.
    let mut peak_rss_kb = 0;
    let mut next_report = Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let done = seen.first_registered.lock().unwrap().len();
        let elapsed = t0.elapsed();
        if let Ok(s) = core.sample() {
            peak_rss_kb = peak_rss_kb.max(s.rss_kb);
        }
        if elapsed >= next_report {
            next_report += Duration::from_secs(10);
            println!(
                "  t={:>4.0} s  registered {done:>5} (connected {:>5})  attempts {:>6}  closed before ack {:>6}",
                elapsed.as_secs_f64(),
                seen.registered_now.load(Ordering::Relaxed),
                seen.attempts.load(Ordering::Relaxed),
                seen.closed_before_ack.load(Ordering::Relaxed),
            );
        }
        if done >= n || elapsed >= o.limit {
            break;
        }
    }
    let wall = t0.elapsed();
    let end_sample = core.sample()?;
    let metrics = core.get("/metrics")?;
    let connections_open = core.connected_nodes().ok();
    stop.store(true, Ordering::Relaxed);
    drop(tasks);

    // Figures.
    let mut times = seen.first_registered.lock().unwrap().clone();
    times.sort();
    println!();
    println!(
        "nat-restart: {n} nodes behind one address, after a core restart; connect_rate_per_source {limits}; TOTP step spent {spend}"
    );
    for p in [50u32, 90, 99, 100] {
        let k = (n * p as usize).div_ceil(100).max(1);
        match times.get(k - 1) {
            Some(d) => println!("  {p:>3} % registered ({k:>5}): {:>7.1} s", d.as_secs_f64()),
            None => println!(
                "  {p:>3} % registered ({k:>5}): not within {:.0} s",
                wall.as_secs_f64()
            ),
        }
    }
    println!(
        "  registered at the end: {} of {n} (connected now {}, core's connections_open {})",
        times.len(),
        seen.registered_now.load(Ordering::Relaxed),
        connections_open.map_or("?".into(), |c| c.to_string())
    );
    let attempts = seen.attempts.load(Ordering::Relaxed);
    println!(
        "  attempts: {attempts} ({:.2} per node)",
        attempts as f64 / n as f64
    );
    println!("  refusals seen by the clients:");
    println!(
        "    closed before ack (refused at accept): {}",
        seen.closed_before_ack.load(Ordering::Relaxed)
    );
    println!(
        "    connect failed:                        {}",
        seen.connect_failed.load(Ordering::Relaxed)
    );
    println!(
        "    no ack within 10 s:                    {}",
        seen.no_ack.load(Ordering::Relaxed)
    );
    for (why, count) in seen.refused_by_ack.lock().unwrap().iter() {
        println!("    ack accepted=false \"{why}\": {count}");
    }
    let waits = seen.step_waits.load(Ordering::Relaxed);
    println!(
        "  attempts that waited for a fresh TOTP step: {waits} (mean {:.1} s)",
        seen.step_wait_ms.load(Ordering::Relaxed) as f64 / 1000.0 / waits.max(1) as f64
    );
    println!(
        "  registered connections lost afterwards: {}",
        seen.lost.load(Ordering::Relaxed)
    );
    println!("  core /metrics:");
    for line in metrics.lines().filter(|l| {
        l.starts_with("honeybee_connections_refused_total")
            || l.starts_with("honeybee_registrations_refused_total")
            || l.starts_with("honeybee_registrations_accepted_total")
            || l.starts_with("honeybee_connections_total")
    }) {
        println!("    {line}");
    }
    let cpu = end_sample.cpu.saturating_sub(start_sample.cpu);
    println!(
        "  core: CPU {:.1} s over {:.1} s ({:.0} % of one core); RSS {:.1} MB at the end, peak seen {:.1} MB, HWM {:.1} MB",
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        cpu.as_secs_f64() * 100.0 / wall.as_secs_f64(),
        end_sample.rss_kb as f64 / 1024.0,
        peak_rss_kb as f64 / 1024.0,
        end_sample.hwm_kb as f64 / 1024.0,
    );
    let met = times.len() >= n && times.last().is_some_and(|d| *d <= TARGET);
    println!(
        "  target: all {n} within {} s: {}",
        TARGET.as_secs(),
        if met { "met" } else { "missed" }
    );
    Ok(())
}

/// How one attempt ended.
enum Attempt {
    Registered(Box<dyn Io>),
    Failed,
}

/// One node: reconnects like the agent's uplink until stopped.
async fn agent(
    k: NodeKey,
    transport: Arc<Transport>,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    t0: Instant,
    heartbeat: Duration,
    spend: Spend,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    // The connection was lost at the restart: the agent's first delay.
    let mut last_step = 0u64;
    let mut ever = false;
    loop {
        Timer::after(backoff.next_delay()).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (step, wait) = agent_totp::next_step(last_step, agent_totp::unix_now());
        // As the agent: a wait for a fresh step is spread over the step.
        let wait = agent_totp::spread(wait, honeybee_agent::backoff::random_unit());
        if !wait.is_zero() {
            seen.step_waits.fetch_add(1, Ordering::Relaxed);
            seen.step_wait_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            Timer::after(wait).await;
        }
        seen.attempts.fetch_add(1, Ordering::Relaxed);
        let mut stream = match attempt(&k, &transport, &seen, step, &mut last_step, spend).await {
            Attempt::Registered(s) => s,
            Attempt::Failed => continue,
        };
        backoff.reset();
        if !ever {
            ever = true;
            seen.first_registered.lock().unwrap().push(t0.elapsed());
        }
        seen.registered_now.fetch_add(1, Ordering::Relaxed);
        hold(&mut stream, k.id(), heartbeat, &stop).await;
        seen.registered_now.fetch_sub(1, Ordering::Relaxed);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        seen.lost.fetch_add(1, Ordering::Relaxed);
    }
}

/// Connect, register with a code for `step`, wait for the answer.
async fn attempt(
    k: &NodeKey,
    transport: &Transport,
    seen: &Seen,
    step: u64,
    last_step: &mut u64,
    spend: Spend,
) -> Attempt {
    let mut s = match transport.connect(NAT).await {
        Ok(s) => s,
        Err(_) => {
            seen.connect_failed.fetch_add(1, Ordering::Relaxed);
            return Attempt::Failed;
        }
    };
    // As the agent: a plan made before a slow connect may be stale; then
    // the step due now (never a wait here).
    let now = agent_totp::unix_now();
    let step = if agent_totp::still_accepted(step, now) {
        step
    } else {
        agent_totp::next_step(*last_step, now).0
    };
    if spend == Spend::OnSend {
        *last_step = step;
    }
    let code = code_at(k.key(), step);
    let answer = future::or(
        async {
            node::send(&mut s, node::registration(k.id(), Some(code))).await?;
            node::ack(&mut s).await.map(Some)
        },
        async {
            Timer::after(REGISTRATION_TIMEOUT).await;
            Ok(None)
        },
    )
    .await;
    if spend == Spend::OnAnswer && answer.is_ok() {
        *last_step = step;
    }
    match answer {
        Ok(Some(a)) if a.accepted => {
            if node::send(&mut s, node::heartbeat_msg(k.id()))
                .await
                .is_err()
            {
                seen.closed_before_ack.fetch_add(1, Ordering::Relaxed);
                return Attempt::Failed;
            }
            Attempt::Registered(s)
        }
        Ok(Some(a)) => {
            let why = a.message.unwrap_or_else(|| "no reason given".into());
            *seen.refused_by_ack.lock().unwrap().entry(why).or_default() += 1;
            Attempt::Failed
        }
        Ok(None) => {
            seen.no_ack.fetch_add(1, Ordering::Relaxed);
            Attempt::Failed
        }
        Err(_) => {
            seen.closed_before_ack.fetch_add(1, Ordering::Relaxed);
            Attempt::Failed
        }
    }
}

/// The code for `step` (SHA-1, 6 digits, 30 s).
fn code_at(key: &[u8], step: u64) -> String {
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, key.to_vec())
        .generate(step * 30)
}

/// Keeps a registered connection: reads (and drops) what the core sends,
/// heartbeats every `period`. Returns when the core closes it or on stop.
async fn hold(stream: &mut Box<dyn Io>, id: u64, period: Duration, stop: &AtomicBool) {
    let mut buf = vec![0u8; 4096];
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
