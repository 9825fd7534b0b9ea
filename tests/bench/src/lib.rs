//! Load generators that measure the real HoneyBee binaries on loopback.
//! They print figures and never assert on timings.

pub mod child;
pub mod core_process;
pub mod daemon;
pub mod extension;
pub mod fleet;
pub mod haproxy;
pub mod node;
pub mod postgres;
pub mod procfs;
pub mod report;
pub mod rss_watch;
pub mod subscriber;

/// Lifts the open-file limit to the hard limit: every node is a socket.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Lifts the open-file limit, hard and soft, to `wanted` (at most the
/// kernel's `fs.nr_open`) when this process may (as root), else the soft
/// limit to the hard one; the daemons a benchmark starts inherit it (the
/// core lifts its soft limit to its hard one, HAProxy sizes itself from its
/// `maxconn`). Returns the soft limit in force.
pub fn raise_fd_limit_to(wanted: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 0;
    };
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let wanted = wanted.min(nr_open);
    if wanted > hard && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        return wanted;
    }
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// A workspace binary next to this benchmark's own executable (the same
/// `target/<profile>/`), or `$env` when set, made absolute: the daemons run
/// from temp dirs.
pub fn sibling_binary(env: &str, name: &str) -> Result<std::path::PathBuf, String> {
    if let Ok(p) = std::env::var(env) {
        return std::fs::canonicalize(&p).map_err(|e| format!("{env}={p}: {e}"));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe.with_file_name(name);
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: cargo build --release -p {name}",
            bin.display()
        ))
    }
}
