//! Attacks on a running core, as an outsider on loopback would make them,
//! shared by the hostile-client tests (which assert what must hold) and the
//! `hostile-load` benchmark (which prints RSS and `/health` latency).
//!
//! Each attack runs for a bounded time, sends only to the address it is
//! given, and returns what the attacker saw.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where attacks come from: a loopback address apart from the honest
/// clients (127.0.0.1), which keep their own per-source places.
pub const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 66));

/// What one raw HTTP exchange produced.
#[derive(Debug)]
pub struct Seen {
    /// The status code of the answer, if one came.
    pub status: Option<u16>,
    /// Bytes the attacker managed to send.
    pub sent: u64,
    /// The answer as text (cut at 4 KiB).
    pub text: String,
}

/// Sends `head` (and then `body` bytes of filler, as far as the core takes
/// them) and reads the answer within `wait`.
pub fn raw_exchange(addr: SocketAddr, head: &[u8], body: u64, wait: Duration) -> Seen {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return Seen {
            status: None,
            sent: 0,
            text: "connect failed".into(),
        };
    };
    let _ = s.set_write_timeout(Some(wait));
    let mut sent = 0u64;
    if s.write_all(head).is_ok() {
        sent += head.len() as u64;
        let chunk = vec![b'a'; 64 * 1024];
        while sent < head.len() as u64 + body {
            let n = (head.len() as u64 + body - sent).min(chunk.len() as u64) as usize;
            match s.write(&chunk[..n]) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n as u64,
            }
        }
    }
    read_answer(s, wait, sent)
}

/// A connection to `addr` from the loopback address `source`
/// (127.0.0.0/8 has many: an attacker apart from the honest clients).
pub fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::new(source, 0).into())?;
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(sock.into())
}

fn read_answer(mut s: TcpStream, wait: Duration, sent: u64) -> Seen {
    let deadline = Instant::now() + wait;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while raw.len() < 4096 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok());
    Seen { status, sent, text }
}

/// Connections that trickle one byte every `every`: a head that never ends
/// (`head` is sent whole first, then `filler` bytes one at a time).
pub struct Trickle {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Seen>>,
}

impl Trickle {
    /// Opens `n` connections from `source` to `addr`, each sending `head`
    /// then one byte every `every`, until stopped or the core closes them.
    pub fn start(
        source: IpAddr,
        addr: SocketAddr,
        n: usize,
        head: Vec<u8>,
        every: Duration,
    ) -> Trickle {
        let stop = Arc::new(AtomicBool::new(false));
        let head = Arc::new(head);
        let threads = (0..n)
            .map(|_| {
                let (stop, head) = (stop.clone(), head.clone());
                std::thread::spawn(move || trickle_one(source, addr, &head, every, &stop))
            })
            .collect();
        Trickle { stop, threads }
    }

    /// Stops trickling and returns what each connection saw.
    pub fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .collect()
    }
}

fn trickle_one(
    source: IpAddr,
    addr: SocketAddr,
    head: &[u8],
    every: Duration,
    stop: &AtomicBool,
) -> Seen {
    let Ok(mut s) = connect_from(source, addr) else {
        return Seen {
            status: None,
            sent: 0,
            text: "connect failed".into(),
        };
    };
    let mut sent = 0u64;
    if s.write_all(head).is_ok() {
        sent = head.len() as u64;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(every);
            if s.write_all(b"a").is_err() {
                break;
            }
            sent += 1;
        }
    }
    read_answer(s, Duration::from_secs(2), sent)
}

/// Polls `/health` on its own thread and keeps every latency.
pub struct HealthProbe {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    results: Arc<Mutex<ProbeResults>>,
}

/// Latencies seen by a [`HealthProbe`].
#[derive(Debug, Default, Clone)]
pub struct ProbeResults {
    /// Every answered request's latency.
    pub latencies: Vec<Duration>,
    /// Requests that failed or answered something other than 200.
    pub failures: Vec<String>,
}

impl ProbeResults {
    /// The `q` quantile (0.0..=1.0) of the latencies; zero without any.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut v = self.latencies.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i.min(v.len() - 1)]
    }

    /// The slowest answer; zero without any.
    pub fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }

    /// Panics unless every poll was answered 200, each within a second.
    #[track_caller]
    pub fn assert_healthy(&self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: /health failed {} times: {:?}",
            self.failures.len(),
            &self.failures[..self.failures.len().min(5)]
        );
        assert!(!self.latencies.is_empty(), "{what}: /health never answered");
        assert!(
            self.max() < Duration::from_secs(1),
            "{what}: /health took {:?} (p99 {:?})",
            self.max(),
            self.quantile(0.99)
        );
    }
}

impl HealthProbe {
    /// Starts polling `addr` every `every`.
    pub fn start(addr: SocketAddr, every: Duration) -> HealthProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(ProbeResults::default()));
        let thread = {
            let (stop, results) = (stop.clone(), results.clone());
            // At least one request, even when finished at once: an attack
            // that ended quickly still gets its health checked.
            std::thread::spawn(move || loop {
                {
                    let t = Instant::now();
                    let outcome = crate::http::request(addr, "GET", "/health", None, None);
                    let took = t.elapsed();
                    let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(resp) if resp.status == 200 => r.latencies.push(took),
                        Ok(resp) => r.failures.push(format!("status {}", resp.status)),
                        Err(e) => r.failures.push(format!("{e} after {took:?}")),
                    }
                    drop(r);
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(every);
            })
        };
        HealthProbe {
            stop,
            thread: Some(thread),
            results,
        }
    }

    /// Stops and returns what it saw.
    pub fn finish(mut self) -> ProbeResults {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let r = self.results.lock().unwrap_or_else(|e| e.into_inner());
        r.clone()
    }
}

impl Drop for HealthProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
