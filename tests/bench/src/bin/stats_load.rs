//! `stats-load`: how fast `GET /api/v1/stats` answers over a large store.
//!
//! Fills a SQLite database directly through the core's store (the same
//! writer, summary tables and transactions as ingest) with `--events` events
//! spread evenly over the last `--days` days, drawn the way attack traffic
//! looks: a few sources, usernames, passwords and commands very often and
//! many rarely (Zipf-like), from ~120 countries and ~3,000 autonomous
//! systems. Then starts the release core on that data dir and times
//! `--requests` statistics requests per range. Prints figures; asserts
//! nothing.
//!
//!     cargo build --release -p honeybee-core -p honeybee-bench
//!     target/release/stats-load --events 10000000 --days 30
//!     target/release/stats-load --reuse DIR          # time an earlier fill again

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use honeybee_bench::core_process::{CoreOptions, CoreProcess};
use honeybee_core::geo::Geo;
use honeybee_core::metrics::Metrics;
use honeybee_core::store::event_row::EventRecord;
use honeybee_core::store::{sqlite, EventStore, NodeStore, Retention};

struct Options {
    events: u64,
    days: u64,
    requests: usize,
    /// Keep the database here (and reuse it when it is already filled).
    reuse: Option<std::path::PathBuf>,
    /// Distinct values: sources, usernames, passwords, commands.
    sources: usize,
    usernames: usize,
    passwords: usize,
    commands: usize,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        events: 10_000_000,
        days: 30,
        requests: 200,
        reuse: None,
        sources: 50_000,
        usernames: 2_000,
        passwords: 20_000,
        commands: 5_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let num = |v: String| -> Result<u64, String> {
            v.replace('_', "")
                .parse()
                .map_err(|_| format!("{a}: `{v}` is not a number"))
        };
        match a.as_str() {
            "--events" => o.events = num(value()?)?.max(1),
            "--days" => o.days = num(value()?)?.clamp(1, 365),
            "--requests" => o.requests = num(value()?)? as usize,
            "--sources" => o.sources = num(value()?)?.max(1) as usize,
            "--usernames" => o.usernames = num(value()?)?.max(1) as usize,
            "--passwords" => o.passwords = num(value()?)?.max(1) as usize,
            "--commands" => o.commands = num(value()?)?.max(1) as usize,
            "--reuse" => o.reuse = Some(value()?.into()),
            "--help" | "-h" => {
                println!(
                    "stats-load [--events N] [--days D] [--requests R] [--reuse DIR] \
                     [--sources N] [--usernames N] [--passwords N] [--commands N]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// A small fast generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Value `i` of `n` drawn with weight 1/(i+1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for i in 0..n {
            sum += 1.0 / ((i + 1) as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn draw(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

const COUNTRIES: [(&str, &str); 24] = [
    ("CN", "China"),
    ("US", "United States"),
    ("RU", "Russia"),
    ("BR", "Brazil"),
    ("IN", "India"),
    ("DE", "Germany"),
    ("VN", "Vietnam"),
    ("KR", "South Korea"),
    ("NL", "Netherlands"),
    ("FR", "France"),
    ("GB", "United Kingdom"),
    ("ID", "Indonesia"),
    ("TW", "Taiwan"),
    ("SG", "Singapore"),
    ("HK", "Hong Kong"),
    ("IR", "Iran"),
    ("UA", "Ukraine"),
    ("JP", "Japan"),
    ("TR", "Turkey"),
    ("AR", "Argentina"),
    ("MX", "Mexico"),
    ("TH", "Thailand"),
    ("PL", "Poland"),
    ("IT", "Italy"),
];

/// Country `i` of about 120: the named ones first, then made-up codes.
fn country(i: usize) -> (String, String) {
    match COUNTRIES.get(i) {
        Some((c, n)) => (c.to_string(), n.to_string()),
        None => {
            let a = b'A' + (i / 26 % 26) as u8;
            let b = b'A' + (i % 26) as u8;
            let code = format!("{}{}", a as char, b as char);
            (code.clone(), format!("Country {code}"))
        }
    }
}

const EVENT_TYPES: [&str; 8] = [
    "cowrie.login.failed",
    "cowrie.login.success",
    "cowrie.command.input",
    "cowrie.session.connect",
    "cowrie.session.closed",
    "extension.connection",
    "extension.portscan",
    "honnypotter.login",
];

fn fill(o: &Options, dir: &std::path::Path) -> Result<(), String> {
    let path = dir.join("honeybee.db");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let metrics = Arc::new(Metrics::default());
    let store = sqlite::open_with(&path, Retention::default(), metrics.clone())
        .map_err(|e| e.to_string())?;
    let (src, user, pass, cmd) = (
        Zipf::new(o.sources, 1.1),
        Zipf::new(o.usernames, 1.1),
        Zipf::new(o.passwords, 1.0),
        Zipf::new(o.commands, 1.1),
    );
    let (countries, asns) = (Zipf::new(120, 1.2), Zipf::new(3_000, 1.1));
    let mut rng = Rng(20261207);
    let now_us = honeybee_proto::time::now_unix().0 * 1_000_000;
    let span = o.days as i64 * 86_400_000_000;
    let start = now_us - span;
    let t = Instant::now();
    let mut last_report = Instant::now();
    for i in 0..o.events {
        let time_us = start + (i as i128 * span as i128 / o.events as i128) as i64;
        let s = src.draw(&mut rng);
        let src_ip = format!(
            "{}.{}.{}.{}",
            11 + s % 200,
            (s / 200) % 256,
            (s / 51_200) % 256,
            1 + s % 250
        );
        let et = EVENT_TYPES[(rng.next() % EVENT_TYPES.len() as u64) as usize];
        let login = et.contains("login");
        let (username, password) = if login {
            (
                Some(format!("user{}", user.draw(&mut rng))),
                Some(format!("pass{}", pass.draw(&mut rng))),
            )
        } else {
            (None, None)
        };
        let input = (et == "cowrie.command.input").then(|| format!("cmd {}", cmd.draw(&mut rng)));
        // A source keeps its country and AS.
        let mut per_source = Rng(s as u64 ^ 0xA5A5);
        let c = countries.draw(&mut per_source);
        let (code, name) = country(c);
        let asn = 1_000 + asns.draw(&mut per_source) as i64;
        let record = EventRecord {
            node_id: 1 + (i % 50),
            seq: None,
            epoch: 0,
            pot_id: "cowrie-01".into(),
            pot_type: "cowrie".into(),
            event_type: et.into(),
            timestamp: honeybee_proto::time::format_rfc3339(time_us / 1_000_000, 0),
            time_us,
            src_ip: Some(src_ip.clone()),
            src_port: Some(40_000),
            dst_port: Some(22),
            protocol: Some("ssh".into()),
            username,
            password,
            input,
            data: format!("{{\"src_ip\":\"{src_ip}\"}}"),
            geo: Some(Arc::new(Geo {
                country: Some(code),
                country_name: Some(name),
                city: None,
                asn: Some(asn),
                as_org: Some(format!("AS {asn} Networks")),
                net: None,
            })),
        };
        store.append(record).map_err(|e| e.to_string())?;
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            eprintln!(
                "  {} of {} events stored ({:.0}/s)",
                metrics.events_stored.load(Ordering::Relaxed),
                o.events,
                metrics.events_stored.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    store.close();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "filled {} events over {} days in {secs:.0} s ({:.0} events/s through the store's writer, summaries included); database {:.0} MB",
        o.events,
        o.days,
        o.events as f64 / secs,
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
    );
    Ok(())
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
            eprintln!("stats-load: {e}");
            std::process::exit(2);
        }
    };
    let dir = o.reuse.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("hb-stats-load-{}", std::process::id()))
    });
    let data = dir.join("data");
    if !data.join("honeybee.db").exists() {
        if let Err(e) = fill(&o, &data) {
            eprintln!("stats-load: {e}");
            std::process::exit(1);
        }
    } else {
        println!("reusing {}", data.display());
    }
    // The release core on that data dir; retention off so that nothing moves.
    let core = match CoreProcess::start_opts(&CoreOptions {
        config: Some("retention_days = 0\nmax_events = 0\nmax_database_mb = 0\n".into()),
        extra_args: vec!["--data-dir".into(), data.display().to_string()],
        ..CoreOptions::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stats-load: {e}");
            std::process::exit(1);
        }
    };
    for range in ["range=1h", "range=24h", "range=7d", "range=30d"] {
        let path = format!("/api/v1/stats?{range}");
        let mut times = Vec::with_capacity(o.requests);
        let mut in_window = String::new();
        for _ in 0..o.requests {
            let t = Instant::now();
            match core.get(&path) {
                Ok(body) if body.starts_with("HTTP/1.1 200") => {
                    times.push(t.elapsed());
                    if in_window.is_empty() {
                        in_window = body
                            .split("\"events_in_window\":")
                            .nth(1)
                            .and_then(|r| r.split([',', '}']).next())
                            .unwrap_or("?")
                            .to_string();
                    }
                }
                Ok(body) => eprintln!("stats-load: {}", body.lines().next().unwrap_or("")),
                Err(e) => eprintln!("stats-load: {e}"),
            }
        }
        times.sort();
        println!(
            "{range}: {} requests over {} events ({in_window} in the range): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            times.len(),
            o.events,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );
    }
    drop(core);
    if o.reuse.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
