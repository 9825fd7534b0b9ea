//! Load generators that measure the real HoneyBee binaries on loopback.
//! They print figures and never assert on timings.

pub mod child;
pub mod core_process;
pub mod node;
pub mod procfs;
pub mod report;
pub mod rss_watch;

/// Lifts the open-file limit to the hard limit: every node is a socket.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
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
