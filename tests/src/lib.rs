//! End-to-end test harness for HoneyBee.
//!
//! The tests in `tests/tests/` start the real `honeybee-core` binary on
//! loopback ports picked at random, each with its own temporary data dir, and
//! drive it as nodes and operators would:
//!
//! - [`Core`] ([`core_process`]): starts, waits for `/health`, stops the core;
//! - [`Haproxy`] ([`haproxy`]): a real HAProxy in front of one or more cores,
//!   configured like `configs/haproxy.cfg` (PROXY protocol v2 to each core);
//! - [`TestNode`] ([`test_node`]): a Protocol v2 node over TCP or TLS 1.3;
//! - [`Api`] ([`http`]): a tiny blocking HTTP/1.1 client for the REST API;
//! - [`Metrics`] ([`metrics`]): the Prometheus text of `/metrics`, parsed;
//! - [`Pki`] ([`certs`]): CA, server and client certificates made with rcgen;
//! - [`totp`]: RFC 6238 codes for a chosen time step;
//! - [`TempDir`] ([`temp_dir`]): a directory removed on drop;
//! - [`Agent`] ([`agent_process`]): starts and stops the real
//!   `honeybee-agent`, feeds its event socket;
//! - [`TestPotstore`] ([`test_pot`]): a potstore of test pots (event
//!   emitter, crasher, failing install) and `/proc` process-group checks;
//! - [`LinkProxy`] ([`link_proxy`]): a TCP proxy a test can cut and restore;
//! - [`faults`]: a small tmpfs, a network namespace with random packet
//!   loss, a proxy that delays, splits, stalls and cuts;
//! - [`clients`]: the real clients of the deception tests (Python, curl,
//!   redis-cli);
//! - [`python`]: a Python 3 with pinned PyPI packages, for peers written
//!   in Python;
//! - [`nmap`]: the ports of nmap's XML report;
//! - [`postgres::Postgres`]: a throwaway PostgreSQL cluster; with
//!   `HONEYBEE_TEST_POSTGRES=1` every core keeps its state in one.
//!
//! Everything is blocking and bounded by deadlines: a test never waits
//! longer than it must, and never forever.

pub mod agent_process;
pub mod alerts;
pub mod attacks;
pub mod binaries;
pub mod certs;
pub mod child_process;
pub mod clients;
pub mod core_process;
pub mod faults;
pub mod geo;
pub mod haproxy;
pub mod http;
pub mod link_proxy;
pub mod metrics;
pub mod nmap;
pub mod postgres;
pub mod python;
pub mod skip;
pub mod temp_dir;
pub mod test_node;
pub mod test_pot;
pub mod totp;
pub mod windows;

pub use agent_process::{Agent, AgentBuilder, AgentMode};
pub use certs::Pki;
pub use core_process::{Core, CoreBuilder};
pub use haproxy::Haproxy;
pub use http::{Api, EventPage, Response};
pub use link_proxy::LinkProxy;
pub use metrics::Metrics;
pub use temp_dir::TempDir;
pub use test_node::{NodeIdentity, RecvError, TestNode};
pub use test_pot::{TestPot, TestPotstore};

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A random u64 (not cryptographic; enough for node ids and tokens).
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A random node id that also fits in a JSON double (some peers parse ids
/// as floats; ids above 2^53 are tested explicitly with the Go fixture).
pub fn random_node_id() -> u64 {
    random_u64() & ((1 << 53) - 1) | 1
}

/// Calls `f` every `every` until it returns `Some`, or panics after
/// `timeout`, naming `what`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(every.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Like [`wait_for`] but returns `None` instead of panicking.
pub fn poll_until<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Raises this process's open-file soft limit to at least `want` (capped by
/// the hard limit); returns the new soft limit. Children inherit it.
pub fn raise_fd_limit(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    if soft >= want {
        return soft;
    }
    let new = want.min(hard);
    match setrlimit(Resource::RLIMIT_NOFILE, new, hard) {
        Ok(()) => new,
        Err(_) => soft,
    }
}
