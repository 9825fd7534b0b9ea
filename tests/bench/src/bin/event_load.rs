//! `event-load`: starts the real `honeybee-core`, has K nodes stream N
//! PotEvents with `seq` as fast as the core acknowledges them, then times
//! event queries. Prints durable (acknowledged) events per second, the core's
//! CPU and memory, and query latency percentiles; asserts nothing.
//!
//!     cargo build --release -p honeybee-core -p honeybee-bench
//!     target/release/event-load --events 1000000 --nodes 10
//!     target/release/event-load --rate 10000 --seconds 10 --nodes 10   # latency
//!
//! With `--postgres URL|auto` the cores keep their state in PostgreSQL
//! (`auto`: a throwaway local cluster with fsync on) and `--cores N` starts
//! N of them over the one database, with HAProxy in front when N ≥ 2 that
//! every node connection goes through. Then the run measures, in order:
//! durable events/s through all cores, the CPU time per event of each core
//! and of PostgreSQL (all its server processes), event queries, and the
//! live-stream latency at `--rate` (default 10,000 events/s) with one raw
//! NDJSON subscriber on every core: the first core to deliver an event is
//! the one its node is connected to (local), every other core delivers it
//! after PostgreSQL told it of the commit (LISTEN/NOTIFY).
//!
//!     target/release/event-load --postgres auto --cores 2 --events 1000000 --nodes 10
//!
//! With `--geoip FILE` and/or `--asn FILE` (MaxMind-format databases) the
//! run is made twice per `--rounds`, enrichment off then on, over the same
//! events from `--sources N` public addresses (default 20,000), and prints
//! both rates side by side.
//!
//!     target/release/event-load --events 1000000 --geoip GeoLite2-City.mmdb --asn GeoLite2-ASN.mmdb

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeybee_bench::core_process::{CoreProcess, Sample, TOKEN};
use honeybee_bench::fleet::{self, Fleet, FleetOptions};
use honeybee_bench::subscriber::{Heard, Subscriber};
use honeybee_proto::{
    decode, encode_into, CoreMessage, Envelope, NodeMessage, NodeRegistration, NodeType, PotEvent,
    CAP_EVENT_ACK,
};

struct Options {
    events: u64,
    nodes: u64,
    queries: usize,
    /// Latency mode: events per second, all nodes together.
    rate: Option<u64>,
    seconds: u64,
    fleet: FleetOptions,
    /// Enrichment databases: the run is made without them, then with them.
    geoip: Option<String>,
    asn: Option<String>,
    /// Distinct public source addresses (0: 203.0.113.0/24, documentation).
    sources: u64,
    /// Off/on pairs with enrichment.
    rounds: u64,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        events: 1_000_000,
        nodes: 10,
        queries: 200,
        rate: None,
        seconds: 10,
        fleet: FleetOptions::default(),
        geoip: None,
        asn: None,
        sources: 0,
        rounds: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if o.fleet
            .take(a, || it.next().cloned().ok_or(format!("{a} needs a value")))?
        {
            continue;
        }
        let mut num = || -> Result<u64, String> {
            it.next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .ok_or(format!("{a} needs a number"))
        };
        match a.as_str() {
            "--events" => o.events = num()?,
            "--nodes" => o.nodes = num()?.max(1),
            "--queries" => o.queries = num()? as usize,
            "--rate" => o.rate = Some(num()?.max(1)),
            "--seconds" => o.seconds = num()?.max(1),
            "--sources" => o.sources = num()?,
            "--rounds" => o.rounds = num()?.max(1),
            "--geoip" => o.geoip = Some(it.next().cloned().ok_or("--geoip needs a file")?),
            "--asn" => o.asn = Some(it.next().cloned().ok_or("--asn needs a file")?),
            "--help" | "-h" => {
                println!(
                    "event-load [--events N] [--nodes K] [--queries Q] [--geoip FILE] [--asn FILE] [--sources N] [--rounds R] | [--rate EVENTS_PER_S --seconds S --nodes K] {}",
                    fleet::USAGE
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if (o.geoip.is_some() || o.asn.is_some()) && o.sources == 0 {
        o.sources = 20_000;
    }
    Ok(o)
}

/// Distinct source addresses the events come from (0: documentation range).
static SOURCES: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Public IPv4 address number `k` (deterministic; special-purpose ranges
/// skipped), so that enrichment finds most of them in a real database.
fn public_source(k: u64) -> String {
    let mut x = k
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x632B_E59B_D9B4_E019);
    loop {
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 27;
        let [a, b, c, d] = ((x >> 16) as u32).to_be_bytes();
        let special = a == 0
            || a == 10
            || a == 127
            || a >= 224
            || (a == 100 && (64..128).contains(&b))
            || (a == 169 && b == 254)
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 192 && b == 0 && (c == 0 || c == 2))
            || (a == 198 && (b == 18 || b == 19))
            || (a == 198 && b == 51 && c == 100)
            || (a == 203 && b == 0 && c == 113);
        if !special {
            return format!("{a}.{b}.{c}.{d}");
        }
    }
}

/// Connects node `index` with event-ack; returns its socket and a reader.
fn connect_node(
    addr: std::net::SocketAddr,
    index: u64,
) -> Result<(TcpStream, BufReader<TcpStream>), String> {
    let id = 1_000 + index;
    let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(sock.try_clone().map_err(|e| e.to_string())?);
    let reg = NodeMessage::NodeRegistration(NodeRegistration {
        node_id: id,
        node_name: format!("events-{index}"),
        address: "127.0.0.1".into(),
        port: 0,
        node_type: NodeType::Full,
        totp_code: None,
        enrollment_token: None,
        agent_version: Some("bench".into()),
        capabilities: vec![CAP_EVENT_ACK.into()],
        spool_epoch: None,
    });
    let mut line = Vec::new();
    encode_into(&Envelope::new(reg), &mut line);
    sock.write_all(&line).map_err(|e| e.to_string())?;
    let mut text = String::new();
    reader.read_line(&mut text).map_err(|e| e.to_string())?;
    Ok((sock, reader))
}

/// One login event of node `id`; `sent_ns` lets a subscriber time it.
fn login(id: u64, seq: u64, sent_ns: Option<u128>) -> NodeMessage {
    let mut data = serde_json::Map::new();
    let sources = SOURCES.get().copied().unwrap_or(0);
    let src = if sources == 0 {
        format!("203.0.113.{}", seq % 200)
    } else {
        // Each node's events walk the pool from its own offset.
        public_source((seq.wrapping_mul(7919) + id * 104_729) % sources)
    };
    data.insert("src_ip".into(), src.into());
    data.insert("src_port".into(), (40_000 + seq % 20_000).into());
    data.insert("dst_port".into(), 22.into());
    data.insert("username".into(), "root".into());
    data.insert("password".into(), format!("pw{}", seq % 1000).into());
    if let Some(ns) = sent_ns {
        data.insert("sent_ns".into(), (ns as u64).into());
    }
    NodeMessage::PotEvent(PotEvent {
        node_id: id,
        pot_id: "cowrie-01".into(),
        pot_type: "cowrie".into(),
        event_type: if seq.is_multiple_of(3) {
            "cowrie.command.input"
        } else {
            "cowrie.login.failed"
        }
        .into(),
        timestamp: honeybee_proto::time::now_rfc3339(),
        seq: Some(seq),
        data,
    })
}

/// Events up to which a node encodes everything before the clock starts, so
/// that the load generator's own JSON encoding does not compete with the
/// core for the two cores during the timed part.
const PRE_ENCODE: u64 = 200_000;

/// One node: registers with event-ack, writes its events in large writes,
/// and returns when an EventAck covers its last seq. `start` is set once
/// every node is ready to send.
fn node(
    addr: std::net::SocketAddr,
    index: u64,
    count: u64,
    ready: Arc<std::sync::Barrier>,
    start: Arc<std::sync::OnceLock<Instant>>,
) -> Result<Duration, String> {
    let id = 1_000 + index;
    let (mut sock, mut reader) = connect_node(addr, index)?;
    let encode = |from: u64, to: u64| {
        let mut buf = Vec::new();
        for seq in from..=to {
            encode_into(&Envelope::new(login(id, seq, None)), &mut buf);
        }
        buf
    };
    let pre = if count <= PRE_ENCODE {
        encode(1, count)
    } else {
        Vec::new()
    };
    ready.wait();
    let start = *start.get_or_init(Instant::now);
    let acker = std::thread::spawn(move || -> Result<Duration, String> {
        let mut text = String::new();
        loop {
            text.clear();
            if reader.read_line(&mut text).map_err(|e| e.to_string())? == 0 {
                return Err("connection closed before the last ack".into());
            }
            if let Ok(CoreMessage::EventAck(a)) = decode::<CoreMessage>(text.trim_end().as_bytes())
            {
                if a.seq >= count {
                    return Ok(start.elapsed());
                }
            }
        }
    });
    if count <= PRE_ENCODE {
        sock.write_all(&pre).map_err(|e| e.to_string())?;
    } else {
        let mut seq = 1;
        while seq <= count {
            let to = (seq + 199).min(count);
            sock.write_all(&encode(seq, to))
                .map_err(|e| e.to_string())?;
            seq = to + 1;
        }
    }
    acker
        .join()
        .map_err(|_| "ack reader panicked".to_string())?
}

/// Latency mode: a WebSocket subscriber listens while `nodes` nodes send
/// `rate` events per second in total for `seconds`; each event carries its
/// send time, so the subscriber measures send-to-receipt latency.
fn latency(core: &CoreProcess, o: &Options, rate: u64) {
    let epoch = Instant::now();
    let url = format!(
        "ws://{}/?token={}",
        core.stream_addr,
        honeybee_bench::core_process::TOKEN
    );
    let stream = TcpStream::connect(core.stream_addr).expect("connect to the stream port");
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).expect("WebSocket handshake");
    // Lets the listener notice its deadline when messages stop coming.
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)));
    let subscribe =
        r#"{"version":2,"message":{"BackendCommand":{"Subscribe":{"topics":["events"]}}}}"#;
    ws.send(tungstenite::Message::text(subscribe))
        .expect("subscribe");
    let total = rate * o.seconds;
    let listener = std::thread::spawn(move || {
        let mut lat = Vec::with_capacity(total as usize);
        let mut lagged = 0u64;
        let deadline = Instant::now() + Duration::from_secs(10 + total / rate.max(1));
        while (lat.len() as u64) + lagged < total && Instant::now() < deadline {
            let msg = match ws.read() {
                Ok(m) => m,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => break,
            };
            let tungstenite::Message::Text(text) = msg else {
                continue;
            };
            let now = epoch.elapsed().as_nanos() as u64;
            let v: serde_json::Value = match serde_json::from_str(text.as_str()) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if let Some(sent) = v["message"]["PotEvent"]["data"]["sent_ns"].as_u64() {
                lat.push(Duration::from_nanos(now.saturating_sub(sent)));
            } else if let Some(f) = v["message"]["BackendResponse"]["Failure"].as_str() {
                if let Some(n) = f.strip_prefix("lagged ") {
                    lagged += n.parse::<u64>().unwrap_or(0);
                }
            }
        }
        (lat, lagged)
    });
    std::thread::sleep(Duration::from_millis(200));
    let before = core.sample().expect("sample");
    let per_node = rate / o.nodes;
    let senders: Vec<_> = (0..o.nodes)
        .map(|i| {
            let addr = core.node_addr;
            let seconds = o.seconds;
            std::thread::spawn(move || -> Result<(), String> {
                let (mut sock, mut reader) = connect_node(addr, 100 + i)?;
                let id = 1_100 + i;
                // 1 ms ticks; each sends the events due by then.
                let start = Instant::now();
                let mut sent = 0u64;
                let mut buf = Vec::new();
                while sent < per_node * seconds {
                    let due = (start.elapsed().as_secs_f64() * per_node as f64) as u64;
                    while sent < due.min(per_node * seconds) {
                        sent += 1;
                        let ns = epoch.elapsed().as_nanos();
                        encode_into(&Envelope::new(login(id, sent, Some(ns))), &mut buf);
                    }
                    if !buf.is_empty() {
                        sock.write_all(&buf).map_err(|e| e.to_string())?;
                        buf.clear();
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                // Leave only once everything is acknowledged: closing with
                // unread acks would reset the connection, and a reset makes
                // the core's kernel drop what it had not read yet (a real
                // agent replays its spool; this load generator would not).
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                        return Err("closed before the last ack".into());
                    }
                    if let Ok(CoreMessage::EventAck(a)) =
                        decode::<CoreMessage>(line.trim_end().as_bytes())
                    {
                        if a.seq >= per_node * seconds {
                            return Ok(());
                        }
                    }
                }
            })
        })
        .collect();
    for s in senders {
        if let Ok(Err(e)) = s.join() {
            eprintln!("event-load: a node failed: {e}");
        }
    }
    let (mut lat, lagged) = listener.join().expect("listener");
    let stored = core
        .get("/api/v1/stats")
        .ok()
        .and_then(|r| r.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["totals"]["events"].as_u64())
        .unwrap_or(0);
    if stored != per_node * o.nodes * o.seconds {
        eprintln!("event-load: the core stored {stored} events");
    }
    let after = core.sample().expect("sample");
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} events/s from {} nodes for {} s, one WebSocket subscriber: received {} of {} ({} reported lagged); \
         send-to-subscriber latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; core CPU {:.1}% of one core, RSS {:.1} MB",
        rate,
        o.nodes,
        o.seconds,
        lat.len(),
        per_node * o.nodes * o.seconds,
        lagged,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        (after.cpu - before.cpu).as_secs_f64() * 100.0 / o.seconds as f64,
        after.rss_kb as f64 / 1024.0
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("event-load: {e}");
            std::process::exit(2);
        }
    };
    honeybee_bench::raise_fd_limit();
    if let Err(e) = o.fleet.check() {
        eprintln!("event-load: {e}");
        std::process::exit(2);
    }
    if o.fleet.postgres() {
        if let Err(e) = shared(&o) {
            eprintln!("event-load: {e}");
            std::process::exit(1);
        }
        return;
    }
    let _ = SOURCES.set(o.sources);
    if o.geoip.is_some() || o.asn.is_some() {
        enrichment(&o);
        return;
    }
    let core = match CoreProcess::start(false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("event-load: {e}");
            std::process::exit(1);
        }
    };
    if let Some(rate) = o.rate {
        latency(&core, &o, rate);
        return;
    }
    throughput(&core, &o);
    let total = (o.events / o.nodes) * o.nodes;
    query_latency(&core, o.queries, total);
}

/// Ingest with enrichment off and on, `--rounds` times, over the same
/// events; prints each run and the mean rates side by side.
fn enrichment(o: &Options) {
    let mut config = String::from("[enrichment]\n");
    for (key, file) in [("geoip", &o.geoip), ("asn", &o.asn)] {
        if let Some(f) = file {
            let path = std::fs::canonicalize(f).unwrap_or_else(|_| f.into());
            config.push_str(&format!("{key} = {:?}\n", path.display().to_string()));
        }
    }
    println!(
        "enrichment: {} events from {} nodes, {} distinct public sources; databases: {}",
        (o.events / o.nodes) * o.nodes,
        o.nodes,
        o.sources,
        config.lines().skip(1).collect::<Vec<_>>().join(", ")
    );
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 1..=o.rounds {
        for enriched in [false, true] {
            let core = match CoreProcess::start_with(false, enriched.then_some(config.as_str())) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("event-load: {e}");
                    std::process::exit(1);
                }
            };
            print!(
                "round {round}, enrichment {}: ",
                if enriched { "on " } else { "off" }
            );
            let rate = throughput(&core, o);
            if enriched {
                on.push(rate);
            } else {
                off.push(rate);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (off, on) = (mean(&off), mean(&on));
    println!(
        "durable events/s, mean of {} rounds: enrichment off {off:.0}, on {on:.0} ({:+.1} %)",
        o.rounds,
        (on / off - 1.0) * 100.0
    );
}

/// Streams `--events` from `--nodes` nodes as fast as acknowledged; prints
/// and returns durable events per second.
fn throughput(core: &CoreProcess, o: &Options) -> f64 {
    let per_node = o.events / o.nodes;
    let total = per_node * o.nodes;
    let ready = Arc::new(std::sync::Barrier::new(o.nodes as usize + 1));
    let start = Arc::new(std::sync::OnceLock::new());
    let workers: Vec<_> = (0..o.nodes)
        .map(|i| {
            let (addr, ready, start) = (core.node_addr, ready.clone(), start.clone());
            std::thread::spawn(move || node(addr, i, per_node, ready, start))
        })
        .collect();
    ready.wait();
    let before = core.sample().expect("sample");
    let mut last = Duration::ZERO;
    for w in workers {
        match w.join() {
            Ok(Ok(t)) => last = last.max(t),
            Ok(Err(e)) => eprintln!("event-load: a node failed: {e}"),
            Err(_) => eprintln!("event-load: a node panicked"),
        }
    }
    let after = core.sample().expect("sample");
    let cpu = (after.cpu - before.cpu).as_secs_f64();
    println!(
        "{total} events from {} nodes acknowledged in {:.2} s: {:.0} durable events/s; core CPU {:.2} s ({:.1} µs per event); core RSS {:.1} MB (peak {:.1})",
        o.nodes,
        last.as_secs_f64(),
        total as f64 / last.as_secs_f64(),
        cpu,
        cpu * 1e6 / total as f64,
        after.rss_kb as f64 / 1024.0,
        after.hwm_kb as f64 / 1024.0
    );
    total as f64 / last.as_secs_f64()
}

/// Times `count` event queries (five kinds in turn) over `total` stored
/// events.
fn query_latency(core: &CoreProcess, count: usize, total: u64) {
    let queries = [
        "/api/v1/events?limit=100",
        "/api/v1/events?node_id=1003&limit=100",
        "/api/v1/events?src_ip=203.0.113.7&limit=100",
        "/api/v1/events?event_type=cowrie.command.input&limit=100",
        "/api/v1/events?pot_id=cowrie-01&since=2020-01-01T00:00:00Z&limit=100",
    ];
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let t = Instant::now();
        match core.get(queries[i % queries.len()]) {
            Ok(body) if body.starts_with("HTTP/1.1 200") => times.push(t.elapsed()),
            Ok(body) => eprintln!(
                "event-load: query failed: {}",
                body.lines().next().unwrap_or("")
            ),
            Err(e) => eprintln!("event-load: query failed: {e}"),
        }
    }
    times.sort();
    println!(
        "{} event queries over {total} stored events: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

/// The run over PostgreSQL: throughput and queries (unless `--rate` asks
/// for latency only), then live-stream latency.
fn shared(o: &Options) -> Result<(), String> {
    let fleet = Fleet::start(&o.fleet, false, o.nodes * 2)?;
    let through = if !fleet.proxies.is_empty() {
        " through HAProxy"
    } else {
        ""
    };
    println!(
        "event-load: {}; {} nodes{through}",
        o.fleet.describe(),
        o.nodes
    );
    if o.rate.is_none() && o.events > 0 {
        let total = shared_throughput(&fleet, o)?;
        query_latency(&fleet.cores[0], o.queries, total);
    }
    shared_latency(&fleet, o, o.rate.unwrap_or(10_000))
}

/// Each core's stored-events counter.
fn stored_counts(fleet: &Fleet) -> Vec<u64> {
    fleet
        .cores
        .iter()
        .map(|c| c.metric_value("honeybee_events_stored_total").unwrap_or(0))
        .collect()
}

fn samples(fleet: &Fleet) -> Result<Vec<Sample>, String> {
    fleet.cores.iter().map(|c| c.sample()).collect()
}

/// Durable events/s with every node streaming as fast as it is
/// acknowledged; CPU per event of each core and of PostgreSQL. Returns the
/// events stored.
fn shared_throughput(fleet: &Fleet, o: &Options) -> Result<u64, String> {
    let per_node = o.events / o.nodes;
    let total = per_node * o.nodes;
    let ready = Arc::new(std::sync::Barrier::new(o.nodes as usize + 1));
    let start = Arc::new(std::sync::OnceLock::new());
    let workers: Vec<_> = (0..o.nodes)
        .map(|i| {
            let (addr, ready, start) = (fleet.node_addr(), ready.clone(), start.clone());
            std::thread::spawn(move || node(addr, i, per_node, ready, start))
        })
        .collect();
    // Sampled before the nodes are let go: they start at once, and events
    // stored before a sample would be missing from the counts.
    let before = samples(fleet)?;
    let stored_before = stored_counts(fleet);
    let (pg_before, proxy_before) = (fleet.pg_cpu(), fleet.proxy_cpu());
    ready.wait();
    let mut last = Duration::ZERO;
    let mut failed = 0;
    for w in workers {
        match w.join() {
            Ok(Ok(t)) => last = last.max(t),
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("event-load: a node failed: {e}")
            }
            Err(_) => eprintln!("event-load: a node panicked"),
        }
    }
    let after = samples(fleet)?;
    let stored_after = stored_counts(fleet);
    let (pg_after, proxy_after) = (fleet.pg_cpu(), fleet.proxy_cpu());
    let secs = last.as_secs_f64();
    println!(
        "{total} events from {} nodes acknowledged in {secs:.2} s: {:.0} durable events/s{}",
        o.nodes,
        total as f64 / secs,
        if failed > 0 {
            format!(" ({failed} nodes FAILED)")
        } else {
            String::new()
        }
    );
    let mut cores_cpu = 0.0;
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        let cpu = (a.cpu - b.cpu).as_secs_f64();
        cores_cpu += cpu;
        let stored = stored_after[i] - stored_before[i];
        println!(
            "  core{}: stored {stored} events; CPU {cpu:.2} s = {:.1} µs per event it stored ({:.1} µs per event of all); RSS {:.1} MB (peak {:.1})",
            i + 1,
            cpu * 1e6 / stored.max(1) as f64,
            cpu * 1e6 / total as f64,
            a.rss_kb as f64 / 1024.0,
            a.hwm_kb as f64 / 1024.0,
        );
    }
    if fleet.cores.len() > 1 {
        println!(
            "  all cores: CPU {cores_cpu:.2} s = {:.1} µs per event",
            cores_cpu * 1e6 / total as f64
        );
    }
    match (pg_before, pg_after) {
        (Some(b), Some(a)) => {
            let cpu = (a - b).as_secs_f64();
            println!(
                "  PostgreSQL (all server processes): CPU {cpu:.2} s = {:.1} µs per event; database {:.0} MB",
                cpu * 1e6 / total as f64,
                fleet.pg.as_ref().map_or(0, |pg| pg.database_bytes()) as f64 / 1e6
            );
        }
        _ => println!(
            "  PostgreSQL CPU: not measured (an existing server; --postgres auto measures it)"
        ),
    }
    if let (Some(b), Some(a)) = (proxy_before, proxy_after) {
        let cpu = (a - b).as_secs_f64();
        println!(
            "  HAProxy: CPU {cpu:.2} s = {:.1} µs per event",
            cpu * 1e6 / total as f64
        );
    }
    let stored = fleet::stats_totals(&fleet.cores[0])?["events"]
        .as_u64()
        .unwrap_or(0);
    if stored != total {
        eprintln!("event-load: the database holds {stored} events, {total} sent");
    }
    Ok(stored)
}

/// One node sending `per_node × seconds` events at `per_node`/s in 1 ms
/// ticks, each stamped with its send time; returns once all are
/// acknowledged.
fn rate_sender(
    addr: std::net::SocketAddr,
    index: u64,
    per_node: u64,
    seconds: u64,
    epoch: Instant,
) -> Result<(), String> {
    let (mut sock, mut reader) = connect_node(addr, index)?;
    let id = 1_000 + index;
    let count = per_node * seconds;
    let start = Instant::now();
    let mut sent = 0u64;
    let mut buf = Vec::new();
    while sent < count {
        let due = (start.elapsed().as_secs_f64() * per_node as f64) as u64;
        while sent < due.min(count) {
            sent += 1;
            let ns = epoch.elapsed().as_nanos();
            encode_into(&Envelope::new(login(id, sent, Some(ns))), &mut buf);
        }
        if !buf.is_empty() {
            sock.write_all(&buf).map_err(|e| e.to_string())?;
            buf.clear();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Leave once everything is acknowledged (see `latency`).
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("closed before the last ack".into());
        }
        if let Ok(CoreMessage::EventAck(a)) = decode::<CoreMessage>(line.trim_end().as_bytes()) {
            if a.seq >= count {
                return Ok(());
            }
        }
    }
}

/// Live-stream latency over PostgreSQL: `nodes` nodes (through HAProxy
/// when there is one) send `rate` events/s in total for `seconds`, each
/// stamped with its send time; a raw NDJSON subscriber on every core
/// records when each event arrives. The earliest arrival of an event is on
/// the core its node is connected to (local); every later one is a core
/// that heard of the commit through PostgreSQL (other core).
fn shared_latency(fleet: &Fleet, o: &Options, rate: u64) -> Result<(), String> {
    let epoch = Instant::now();
    let per_node = rate / o.nodes;
    let total = per_node * o.nodes * o.seconds;
    let subscribers: Vec<Subscriber> = fleet
        .cores
        .iter()
        .map(|c| Subscriber::events(c.stream_addr, TOKEN))
        .collect::<Result<_, _>>()?;
    // The listeners stop when everything arrived, or 30 s after the last
    // acknowledgement (set below; until then, no deadline).
    let done: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
    let listeners: Vec<_> = subscribers
        .into_iter()
        .map(|s| {
            let done = done.clone();
            std::thread::spawn(move || {
                s.listen(epoch, total, move || {
                    done.get()
                        .map_or(Instant::now() + Duration::from_secs(3600), |d| {
                            *d + Duration::from_secs(30)
                        })
                })
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let before = samples(fleet)?;
    let pg_before = fleet.pg_cpu();
    let t = Instant::now();
    let senders: Vec<_> = (0..o.nodes)
        .map(|i| {
            let (addr, seconds) = (fleet.node_addr(), o.seconds);
            std::thread::spawn(move || rate_sender(addr, 100 + i, per_node, seconds, epoch))
        })
        .collect();
    for s in senders {
        match s.join() {
            Ok(Err(e)) => eprintln!("event-load: a node failed: {e}"),
            Err(_) => eprintln!("event-load: a node panicked"),
            Ok(Ok(())) => {}
        }
    }
    let acked = t.elapsed();
    let after = samples(fleet)?;
    let pg_after = fleet.pg_cpu();
    let _ = done.set(Instant::now());
    let heard: Vec<Heard> = listeners
        .into_iter()
        .map(|l| l.join().unwrap_or_default())
        .collect();

    // Per event: local = earliest arrival, others = every later one.
    let mut local = Vec::new();
    let mut remote = Vec::new();
    let mut keys: std::collections::HashSet<(u64, u64)> = std::collections::HashSet::new();
    for h in &heard {
        keys.extend(h.events.keys().copied());
    }
    let mut everywhere = 0u64;
    for k in &keys {
        let mut arrivals: Vec<Duration> = heard
            .iter()
            .filter_map(|h| h.events.get(k))
            .map(|&(at, sent)| Duration::from_nanos(at.saturating_sub(sent)))
            .collect();
        arrivals.sort();
        if arrivals.len() == heard.len() {
            everywhere += 1;
        }
        local.push(arrivals[0]);
        remote.extend(arrivals.into_iter().skip(1));
    }
    local.sort();
    remote.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let secs = acked.as_secs_f64();
    println!(
        "{rate} events/s from {} nodes{} for {} s ({total} events, all acknowledged after {secs:.1} s); one NDJSON subscriber on each of {} cores:",
        o.nodes,
        if !fleet.proxies.is_empty() { " through HAProxy" } else { "" },
        o.seconds,
        fleet.cores.len()
    );
    for (i, h) in heard.iter().enumerate() {
        println!(
            "  core{} subscriber: received {} of {total} ({} reported lagged)",
            i + 1,
            h.events.len(),
            h.lagged
        );
    }
    println!(
        "  send → subscriber of the core that took the event: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} events)",
        ms(percentile(&local, 0.5)),
        ms(percentile(&local, 0.99)),
        ms(local.last().copied().unwrap_or_default()),
        local.len()
    );
    if fleet.cores.len() > 1 {
        println!(
            "  send → subscriber of another core (commit, NOTIFY, fetch): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} arrivals; {everywhere} events reached every core)",
            ms(percentile(&remote, 0.5)),
            ms(percentile(&remote, 0.99)),
            ms(remote.last().copied().unwrap_or_default()),
            remote.len()
        );
    }
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        println!(
            "  core{}: CPU {:.1}% of one core, RSS {:.1} MB",
            i + 1,
            (a.cpu - b.cpu).as_secs_f64() * 100.0 / secs,
            a.rss_kb as f64 / 1024.0
        );
    }
    if let (Some(b), Some(a)) = (pg_before, pg_after) {
        println!(
            "  PostgreSQL: CPU {:.1}% of one core",
            (a - b).as_secs_f64() * 100.0 / secs
        );
    }
    Ok(())
}
