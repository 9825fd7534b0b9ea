//! What differs between Unix and Windows, in one place.
//!
//! The agent builds for Linux (and other Unixes) and, in Extension mode
//! only, for Windows (`x86_64-pc-windows-gnu`, for office workstations).
//! These parts are Unix-only and are compiled only there (`cfg(unix)` in
//! `lib.rs` and `agent.rs`):
//!
//! - **Full mode** as a whole ([`crate::supervisor`], [`crate::potstore`],
//!   [`crate::pot_process`], [`crate::event_socket`], [`crate::proc_stat`],
//!   [`crate::users`]): pots run in their own process groups as another
//!   user, are stopped with SIGTERM then SIGKILL of the group, limited with
//!   rlimits, measured through `/proc`, and their directories are owned and
//!   moded (`chown`, 0700) for them. None of that has a Windows equivalent
//!   that a pot written for Linux (Cowrie, PHP's server) could use, so on
//!   Windows `full` is refused with [`FULL_MODE_UNSUPPORTED`] and exit
//!   status 2.
//! - **Dropping privileges** ([`crate::privileges`]): setuid/setgid after
//!   binding low ports. Windows needs no privilege to bind any port, so an
//!   Extension agent there keeps the user it was started as.
//! - **File modes**: the enrollment token file's mode is checked and the
//!   state files are made 0600 on Unix; on Windows files inherit the access
//!   list of their directory (see `honeybee_process::private_files`).
//! - **Signals**: SIGTERM/SIGINT on Unix, the console's Ctrl-C and
//!   Ctrl-Break on Windows (`honeybee_process::signals`).
//!
//! Everything else (uplink, TLS, TOTP, enrollment, spool, tripwires) is the
//! same code on both.

use std::path::PathBuf;

/// The refusal of Full mode where it cannot run.
#[cfg(not(unix))]
pub const FULL_MODE_UNSUPPORTED: &str =
    "Full mode is not supported on Windows: run `honeybee-agent extension` \
     (pots need Unix process groups, users and signals)";

/// Who the agent runs as, for error messages.
pub fn current_user() -> String {
    #[cfg(unix)]
    return crate::users::current_user();
    #[cfg(not(unix))]
    return match std::env::var("USERNAME") {
        Ok(name) if !name.is_empty() => format!("user {name}"),
        _ => "the current user".into(),
    };
}

/// The state dir when none is configured: /var/lib/honeybee for root (the
/// packages' state dir), else a folder beside where the agent was started.
pub fn default_state_dir() -> PathBuf {
    #[cfg(unix)]
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/honeybee");
    }
    PathBuf::from("./honeybee-agent-state")
}

/// This machine's name, if the system tells it.
pub fn hostname() -> Option<String> {
    #[cfg(unix)]
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok();
    name.map(|h| h.trim().to_string()).filter(|h| !h.is_empty())
}

/// Whether a secret file's access lets others read it: an error when every
/// local user may, a warning when its group may. Unix modes only; on
/// Windows its access list is the one its folder gives it.
pub fn check_secret_access(meta: &std::fs::Metadata) -> Result<Option<String>, String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o004 != 0 {
            return Err(format!(
                "mode {mode:o} lets every local user read it; chmod 600 it"
            ));
        }
        Ok((mode & 0o040 != 0)
            .then(|| format!("mode {mode:o} lets its group read it; chmod 600 it")))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}
