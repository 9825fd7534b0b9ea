//! Load generators that measure the real HoneyBee binaries on loopback.
//! They print figures and never assert on timings.

pub mod core_process;
pub mod node;
pub mod procfs;
pub mod report;

/// Lifts the open-file limit to the hard limit: every node is a socket.
pub fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
