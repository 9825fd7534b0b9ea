//! Fault injection for the end-to-end fault tests (`tests/tests/faults.rs`):
//!
//! - [`Tmpfs`]: a small tmpfs mounted on a directory (a disk that fills up),
//!   grown again or unmounted on drop; [`fill`] writes a filler file until
//!   the disk is full;
//! - [`NetNs`]: a network namespace of the test's own, which the calling
//!   thread enters (processes it starts are born inside it, with their own
//!   loopback), deleted on drop, also when the test fails; with
//!   [`NetNs::random_loss`] nftables drops packets at random in it;
//! - [`FaultProxy`]: a userspace TCP proxy on loopback that delays, splits
//!   writes at random byte boundaries, stalls, and cuts connections in the
//!   middle of a line. It reorders nothing that TCP would not: TCP hands
//!   bytes over in order whatever the packets did, so the only reordering a
//!   peer can meet is that of whole connections (a late one after a cut).
//!
//! This kernel has no `netem` (nor `tbf`) qdisc, so a fixed delay and
//! reordering of packets cannot be injected in the kernel. What is: packet
//! loss (nftables `numgen random` in a namespace; a lost segment makes the
//! later ones arrive out of order, TCP reassembles them) and a bandwidth
//! bottleneck (`htb`), whose queue delays packets once the sender outruns
//! it ([`NetNs::bottleneck`]). Per-write delay, split writes, stalls and
//! cuts mid-line are the proxy's.
//!
//! Everything here needs root except the proxy; [`privileged`] says whether
//! a test can go on, failing it when `CI` is set.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Whether a test that needs `what` (root, a tool) can run; when it cannot,
/// [`crate::skip::skip`] says so (a failure under CI) and the caller
/// returns.
#[track_caller]
pub fn privileged(what: &str, ok: Result<(), String>) -> bool {
    match ok {
        Ok(()) => true,
        Err(why) => {
            crate::skip::skip(what, &why);
            false
        }
    }
}

/// Runs `cmd`, returning its stderr on failure.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A tmpfs of a fixed size mounted on a directory; unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` (mode 0700) on `dir`, creating `dir`.
    pub fn mount(dir: &Path, bytes: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(dir))?;
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Changes the size (`mount -o remount,size=`): space returns.
    pub fn resize(&self, bytes: u64) {
        run(Command::new("mount")
            .arg("-o")
            .arg(format!("remount,size={bytes}"))
            .arg(&self.dir))
        .unwrap_or_else(|e| panic!("resizing the tmpfs: {e}"));
    }

    /// Bytes free on it now.
    pub fn free(&self) -> u64 {
        nix::sys::statvfs::statvfs(&self.dir)
            .map(|s| s.blocks_available() * s.fragment_size())
            .unwrap_or(0)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding a file there must not keep it.
        let _ = run(Command::new("umount").arg("-l").arg(&self.dir));
    }
}

/// Whether this process may mount a tmpfs (tried on a scratch dir).
pub fn can_mount() -> Result<(), String> {
    let dir = crate::TempDir::new("hb-can-mount");
    Tmpfs::mount(&dir.path().join("m"), 1 << 20).map(drop)
}

/// Writes `path` until the disk is full (ENOSPC); returns the bytes written.
pub fn fill(path: &Path) -> u64 {
    let mut f = File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let block = vec![0x5au8; 64 * 1024];
    let mut written = 0u64;
    let mut chunk = block.len();
    loop {
        match f.write(&block[..chunk]) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => {
                // Full at this size: fill the last crumbs too.
                if chunk == 1 {
                    break;
                }
                chunk /= 2;
            }
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    written
}

/// A network namespace the calling thread lives in until the drop, which
/// also deletes it.
pub struct NetNs {
    name: String,
    home: File,
}

impl NetNs {
    /// `ip netns add`, enters it on this thread (children started from this
    /// thread, and threads it spawns, are born inside) and brings `lo` up.
    pub fn enter(prefix: &str) -> Result<NetNs, String> {
        remove_stale(prefix);
        let name = format!(
            "{prefix}-{}-{:06x}",
            std::process::id(),
            crate::random_u64() & 0xff_ffff
        );
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| format!("/proc/thread-self/ns/net: {e}"))?;
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = NetNs { name, home };
        let target = File::open(format!("/run/netns/{}", ns.name))
            .map_err(|e| format!("/run/netns/{}: {e}", ns.name))?;
        nix::sched::setns(target.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns into {}: {e}", ns.name))?;
        run(Command::new("ip").args(["link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops `percent` % of the TCP packets to and from each of `ports` on
    /// loopback (both directions: data and acknowledgements), at random
    /// (nftables `numgen random`), counted; loopback's MTU becomes 1500.
    pub fn random_loss(&self, ports: &[u16], percent: u32) -> Result<(), String> {
        if which_nft().is_none() {
            return Err("nft (Debian package nftables) is not installed".into());
        }
        // Ethernet-sized packets, not loopback's 64 KiB: a loss costs a
        // segment as it would on a real link, and there are more to lose.
        run(Command::new("ip").args(["link", "set", "lo", "mtu", "1500"]))?;
        let drops: String = ports
            .iter()
            .map(|port| {
                format!(
                    "    tcp dport {port} numgen random mod 100 < {percent} counter drop\n    \
                     tcp sport {port} numgen random mod 100 < {percent} counter drop\n"
                )
            })
            .collect();
        let rules = format!(
            "table inet hbfault {{\n  chain out {{\n    type filter hook output priority 0; policy accept;\n\
             {drops}  }}\n}}\n"
        );
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("nft: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("nft: no stdin")?
            .write_all(rules.as_bytes())
            .map_err(|e| format!("nft: {e}"))?;
        let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nft -f: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Caps TCP traffic to and from `port` on loopback at `kbit` kbit/s
    /// (an `htb` class, `u32` filters): a slow link whose queue delays
    /// packets once the sender outruns it. (`netem`, which would delay
    /// every packet by a set time, is not in this kernel; `htb` is.)
    pub fn bottleneck(&self, port: u16, kbit: u32) -> Result<(), String> {
        let tc = |args: &str| run(Command::new("tc").args(args.split_whitespace()));
        tc("qdisc add dev lo root handle 1: htb default 10 r2q 100000")?;
        tc("class add dev lo parent 1: classid 1:10 htb rate 10gbit")?;
        tc(&format!(
            "class add dev lo parent 1: classid 1:20 htb rate {kbit}kbit ceil {kbit}kbit"
        ))?;
        for dir in ["dport", "sport"] {
            tc(&format!(
                "filter add dev lo protocol ip parent 1: prio 1 u32 match ip {dir} {port} 0xffff flowid 1:20"
            ))?;
        }
        Ok(())
    }

    /// Bytes that went through the bottleneck, and how often it held
    /// packets back (`overlimits`).
    pub fn bottleneck_stats(&self) -> (u64, u64) {
        let text =
            run(Command::new("tc").args(["-s", "class", "show", "dev", "lo", "classid", "1:20"]))
                .unwrap_or_default();
        let after = |key: &str| {
            text.split(key)
                .nth(1)
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (after("Sent "), after("overlimits "))
    }

    /// Packets dropped so far by [`NetNs::random_loss`].
    pub fn dropped_packets(&self) -> u64 {
        let text =
            run(Command::new("nft").args(["list", "table", "inet", "hbfault"])).unwrap_or_default();
        text.split("packets ")
            .skip(1)
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// Ends the loss (the rules go).
    pub fn clear_loss(&self) {
        let _ = run(Command::new("nft").args(["delete", "table", "inet", "hbfault"]));
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = nix::sched::setns(self.home.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET);
        let _ = run(Command::new("ip").args(["netns", "delete", &self.name]));
    }
}

/// Deletes namespaces named `<prefix>-<pid>-…` by [`NetNs::enter`] whose
/// test process is gone (killed before its drop could run).
fn remove_stale(prefix: &str) {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('-'))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(Command::new("ip").args(["netns", "delete", &name]));
        }
    }
}

/// Whether this process may create and enter a network namespace.
pub fn can_netns() -> Result<(), String> {
    if which("ip").is_none() {
        return Err("ip (Debian package iproute2) is not installed".into());
    }
    // Tried on a thread of its own, which leaves with it.
    std::thread::spawn(|| NetNs::enter("hb-can").map(drop))
        .join()
        .map_err(|_| "panicked".to_string())?
}

/// Where `nft` (Debian package nftables) is, if installed.
pub fn which_nft() -> Option<PathBuf> {
    which("nft").or_else(|| Some(PathBuf::from("/usr/sbin/nft")).filter(|p| p.is_file()))
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// What a [`FaultProxy`] does to the bytes it forwards, per read chunk.
#[derive(Debug, Clone, Copy)]
pub struct FaultPlan {
    /// Each piece waits up to this long before it is written.
    pub max_delay: Duration,
    /// A chunk is split into up to this many writes, at random bytes.
    pub max_pieces: usize,
    /// Per mille of chunks before which the link goes silent (and once
    /// for sure within a direction's first 8 chunks, unless 0)...
    pub stall_per_mille: u32,
    /// ...for up to this long.
    pub max_stall: Duration,
    /// Agent→core, the connection is cut after a random count of bytes in
    /// this range, never at a line's end (the bytes before the cut are
    /// delivered: a torn line). `None`: no cuts.
    pub cut_after_bytes: Option<(u64, u64)>,
    /// At most this many cuts in all. (Every reconnect spends a TOTP step
    /// and an agent may only use about one per 30 s: a link cut more often
    /// than twice in 30 s leaves it waiting up to a minute, by design.)
    pub max_cuts: u64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            max_delay: Duration::from_millis(20),
            max_pieces: 4,
            stall_per_mille: 15,
            max_stall: Duration::from_millis(1200),
            cut_after_bytes: Some((64 * 1024, 256 * 1024)),
            max_cuts: 2,
        }
    }
}

/// Counts of what a [`FaultProxy`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FaultCounts {
    pub connections: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub pieces: u64,
    pub stalls: u64,
    pub cuts: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    pieces: AtomicU64,
    stalls: AtomicU64,
    cuts: AtomicU64,
}

struct ProxyShared {
    target: SocketAddr,
    plan: FaultPlan,
    /// Faults on or off (off: a plain proxy).
    faulty: AtomicBool,
    stopping: AtomicBool,
    counters: Counters,
    seed: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

/// A TCP proxy on loopback that mistreats what it forwards (see the module
/// docs), until [`FaultProxy::calm`].
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    acceptor: Option<JoinHandle<()>>,
    seed: u64,
}

impl FaultProxy {
    /// Listens on a free `127.0.0.1` port, forwarding to `target` with the
    /// faults of `plan`, from a random seed (printed, see [`FaultProxy::seed`]).
    pub fn start(target: SocketAddr, plan: FaultPlan) -> FaultProxy {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("fault proxy: bind");
        let addr = listener.local_addr().expect("fault proxy: local_addr");
        let seed = crate::random_u64() | 1;
        let shared = Arc::new(ProxyShared {
            target,
            plan,
            faulty: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            counters: Counters::default(),
            seed: AtomicU64::new(seed),
            open: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        // Polled, not woken by a connection of its own: on a lossy link
        // that wake-up may be the packet lost.
        listener
            .set_nonblocking(true)
            .expect("fault proxy: nonblocking");
        let acceptor = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                while !s.stopping.load(Ordering::SeqCst) {
                    let Ok((client, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = client.set_nonblocking(false);
                    let s = s.clone();
                    let _ = std::thread::Builder::new()
                        .name("fault-proxy-conn".into())
                        .spawn(move || connection(client, s));
                }
            })
            .expect("fault proxy: spawn");
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
            seed,
        }
    }

    /// Where the agent connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The random seed the faults came from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Stops injecting faults: from now on a plain proxy.
    pub fn calm(&self) {
        self.shared.faulty.store(false, Ordering::SeqCst);
    }

    /// What it did so far.
    pub fn counts(&self) -> FaultCounts {
        let c = &self.shared.counters;
        FaultCounts {
            connections: c.connections.load(Ordering::SeqCst),
            bytes_up: c.bytes_up.load(Ordering::SeqCst),
            bytes_down: c.bytes_down.load(Ordering::SeqCst),
            pieces: c.pieces.load(Ordering::SeqCst),
            stalls: c.stalls.load(Ordering::SeqCst),
            cuts: c.cuts.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for s in self.shared.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// A small xorshift generator: enough for faults, reproducible from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn connection(client: TcpStream, shared: Arc<ProxyShared>) {
    let Ok(upstream) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(5)) else {
        let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
        return;
    };
    shared.counters.connections.fetch_add(1, Ordering::SeqCst);
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
        client.try_clone(),
        upstream.try_clone(),
        client.try_clone(),
        upstream.try_clone(),
    ) else {
        return;
    };
    {
        let mut open = shared.open.lock().unwrap();
        open.push(c3);
        open.push(u3);
    }
    // Each direction its own generator, from the shared seed.
    let seed = shared
        .seed
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::SeqCst);
    let s = shared.clone();
    let down = std::thread::spawn(move || pump(u2, c2, &s, false, Rng(seed ^ 0xdead_beef | 1)));
    pump(client, upstream, &shared, true, Rng(seed | 1));
    let _ = down.join();
}

fn pump(mut from: TcpStream, mut to: TcpStream, shared: &ProxyShared, up: bool, mut rng: Rng) {
    let plan = shared.plan;
    let c = &shared.counters;
    let mut buf = vec![0u8; 16 * 1024];
    let mut chunks = 0u64;
    let first_stall = 1 + rng.below(8);
    let mut countdown = plan
        .cut_after_bytes
        .map(|(lo, hi)| lo + rng.below(hi.saturating_sub(lo) + 1));
    let result: io::Result<()> = (|| loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return Ok(());
        }
        let n = from.read(&mut buf)?;
        if n == 0 {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        let data = &buf[..n];
        if !shared.faulty.load(Ordering::SeqCst) {
            to.write_all(data)?;
            (if up { &c.bytes_up } else { &c.bytes_down }).fetch_add(n as u64, Ordering::SeqCst);
            continue;
        }
        chunks += 1;
        // One stall early on for sure (if stalls are planned), then by chance.
        let forced = chunks == first_stall && plan.stall_per_mille > 0;
        if forced || rng.below(1000) < u64::from(plan.stall_per_mille) {
            c.stalls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(
                rng.below(plan.max_stall.as_millis() as u64 + 1),
            ));
        }
        // A cut in the middle of a line: some bytes of the chunk go, the
        // rest does not, and the connection is closed both ways.
        let may_cut = c.cuts.load(Ordering::SeqCst) < plan.max_cuts;
        let cut_at = match (up, countdown) {
            (true, Some(left)) if left < n as u64 && may_cut => {
                let mut at = (left as usize).max(1);
                while at > 1 && data.get(at - 1) == Some(&b'\n') {
                    at -= 1;
                }
                Some(at)
            }
            _ => None,
        };
        if let Some(left) = countdown.as_mut() {
            *left = left.saturating_sub(n as u64);
        }
        let limit = cut_at.unwrap_or(n);
        let pieces = 1 + rng.below(plan.max_pieces as u64) as usize;
        let mut bounds: Vec<usize> = (1..pieces)
            .map(|_| rng.below(limit as u64) as usize)
            .collect();
        bounds.push(limit);
        bounds.sort_unstable();
        let mut start = 0;
        for end in bounds {
            if end <= start {
                continue;
            }
            let delay = rng.below(plan.max_delay.as_millis() as u64 + 1);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            to.write_all(&data[start..end])?;
            c.pieces.fetch_add(1, Ordering::SeqCst);
            (if up { &c.bytes_up } else { &c.bytes_down })
                .fetch_add((end - start) as u64, Ordering::SeqCst);
            start = end;
        }
        if cut_at.is_some() {
            c.cuts.fetch_add(1, Ordering::SeqCst);
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
    })();
    let _ = result;
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A server that reads each connection to its end and hands the bytes
    /// over, connection by connection.
    fn sink() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
        let l = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { continue };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let _ = c.read_to_end(&mut got);
                    let _ = tx.send(got);
                });
            }
        });
        (addr, rx)
    }

    fn payload(lines: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| format!("line {i} {}\n", "x".repeat(i % 97)).into_bytes())
            .collect()
    }

    #[test]
    fn without_cuts_every_byte_arrives_in_order_however_split_and_delayed() {
        let (addr, rx) = sink();
        let plan = FaultPlan {
            max_delay: Duration::from_millis(2),
            stall_per_mille: 100,
            max_stall: Duration::from_millis(30),
            cut_after_bytes: None,
            ..FaultPlan::default()
        };
        let proxy = FaultProxy::start(addr, plan);
        let data = payload(5_000);
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(&data).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let got = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(
            got == data,
            "{} bytes of {} arrived, or altered",
            got.len(),
            data.len()
        );
        let counts = proxy.counts();
        assert!(counts.pieces > 1 && counts.stalls > 0, "{counts:?}");
        assert_eq!(counts.cuts, 0);
    }

    #[test]
    fn a_cut_delivers_a_prefix_that_ends_mid_line_and_closes_both_sides() {
        let (addr, rx) = sink();
        let plan = FaultPlan {
            max_delay: Duration::ZERO,
            stall_per_mille: 0,
            cut_after_bytes: Some((10_000, 20_000)),
            max_cuts: 1,
            ..FaultPlan::default()
        };
        let proxy = FaultProxy::start(addr, plan);
        let data = payload(5_000);
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        let _ = c.write_all(&data);
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(got.len() >= 9_000 && got.len() <= 20_000, "{}", got.len());
        assert!(data.starts_with(&got), "not a prefix");
        assert_ne!(got.last(), Some(&b'\n'), "the cut fell on a line's end");
        // The client side sees the end too.
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = Instant::now();
        let mut b = [0u8; 1];
        assert!(matches!(c.read(&mut b), Ok(0) | Err(_)));
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(proxy.counts().cuts, 1);
        // The cuts are spent: the next connection is whole.
        let mut c = TcpStream::connect(proxy.addr()).unwrap();
        c.write_all(&data).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap() == data);
    }
}
