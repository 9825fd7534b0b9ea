//! `hostile-load`: the attacks of issue step 7 against the release core on
//! loopback, one core per attack. For each it prints the core's RSS before,
//! at its peak during, and after the attack, and the latency of `/health`
//! (polled every 20 ms) while it runs. Targets: RSS +64 MB at most, `/health`
//! p99 under 100 ms. Prints figures, asserts nothing.
//!
//! `cargo build --release -p honeybee-core && cargo run --release -p honeybee-bench --bin hostile-load`

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

use honeybee_tests::attacks::{connect_from, raw_exchange, HealthProbe, Trickle, ATTACKER};
use honeybee_tests::Core;

struct Attack {
    name: &'static str,
    run: fn(&Core),
}

fn content_length(core: &Core) {
    for _ in 0..200 {
        raw_exchange(
            core.api_addr,
            b"GET /health HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n",
            0,
            Duration::from_secs(5),
        );
    }
}

fn endless_headers(core: &Core) {
    let addr = core.api_addr;
    let threads: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                raw_exchange(
                    addr,
                    b"GET / HTTP/1.1\r\nX: ",
                    512 << 20,
                    Duration::from_secs(10),
                )
            })
        })
        .collect();
    threads.into_iter().for_each(|t| drop(t.join()));
}

fn slow_clients(core: &Core) {
    let token = core.api().token.clone();
    let head = format!(
        "POST /api/v1/nodes/1/commands HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Length: 100000\r\n\r\n"
    );
    let every = Duration::from_millis(100);
    let bodies = Trickle::start(ATTACKER, core.api_addr, 8, head.into_bytes(), every);
    let heads = Trickle::start(
        ATTACKER,
        core.api_addr,
        24,
        b"GET / HTTP/1.1\r\nX: ".to_vec(),
        every,
    );
    std::thread::sleep(Duration::from_secs(12));
    heads.finish();
    bodies.finish();
}

fn partial_node_lines(core: &Core) {
    let addr = core.node_addr;
    let threads: Vec<_> = (1..=40u8)
        .map(|host| {
            std::thread::spawn(move || {
                let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 100 + host));
                let chunk = vec![b'x'; 64 * 1024];
                let mut conns: Vec<TcpStream> = (0..32)
                    .filter_map(|_| connect_from(src, addr).ok())
                    .collect();
                for c in &mut conns {
                    let _ = c.set_write_timeout(Some(Duration::from_millis(200)));
                    for _ in 0..16 {
                        if c.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                }
                std::thread::sleep(Duration::from_secs(5));
                conns
            })
        })
        .collect();
    threads.into_iter().for_each(|t| drop(t.join()));
}

fn idle_stream(core: &Core) {
    let idle: Vec<TcpStream> = (0..256)
        .filter_map(|_| connect_from(ATTACKER, core.stream_addr).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    drop(idle);
}

fn main() {
    honeybee_tests::raise_fd_limit(8192);
    let attacks = [
        Attack {
            name: "Content-Length 2^64-1 x200 (F1)",
            run: content_length,
        },
        Attack {
            name: "3 x 512 MiB header line (F2)",
            run: endless_headers,
        },
        Attack {
            name: "24 slow heads + 8 slow bodies (F3)",
            run: slow_clients,
        },
        Attack {
            name: "40 addr x 32 partial node lines (F8)",
            run: partial_node_lines,
        },
        Attack {
            name: "256 idle stream connections (F8)",
            run: idle_stream,
        },
    ];
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>12} {:>12} {:>8}",
        "attack", "RSS before", "peak", "after", "/health p99", "/health max", "failed"
    );
    for attack in attacks {
        let core = Core::builder().release().start();
        let before = core.rss_kb();
        let probe = HealthProbe::start(core.api_addr, Duration::from_millis(20));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = {
            let (peak, done, pid) = (peak.clone(), done.clone(), core.pid());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(pid) = pid {
                        let kb = honeybee_bench::procfs::status_kb(pid, "VmRSS:");
                        peak.fetch_max(kb, std::sync::atomic::Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let t = Instant::now();
        (attack.run)(&core);
        let took = t.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = sampler.join();
        let seen = probe.finish();
        let after = core.rss_kb();
        println!(
            "{:<40} {:>7.1} MB {:>7.1} MB {:>7.1} MB {:>9.1} ms {:>9.1} ms {:>8}   ({:.1} s, {} probes)",
            attack.name,
            before as f64 / 1024.0,
            peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
            after as f64 / 1024.0,
            seen.quantile(0.99).as_secs_f64() * 1000.0,
            seen.max().as_secs_f64() * 1000.0,
            seen.failures.len(),
            took.as_secs_f64(),
            seen.latencies.len()
        );
    }
    println!("targets: RSS +64 MB at most during any attack; /health p99 under 100 ms");
}
