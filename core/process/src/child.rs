//! Child processes a HoneyBee program supervises (the agent's pots, the
//! core's modules): each in its own process group, so that stopping it
//! stops everything it started, with the parent's blocked signals
//! unblocked, and told to stop when its parent dies.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};

use nix::sys::signal::{killpg, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;

/// Resource limits for a child, applied between fork and exec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Open files (soft and hard); `None` keeps the parent's.
    pub open_files: Option<u64>,
    /// No core dumps: a crashing pot must not leave its memory on disk.
    pub no_core_dumps: bool,
}

/// Makes `cmd` start its child as the leader of a new process group, with
/// no signal blocked (the parent blocks SIGTERM and SIGINT in every thread
/// for its signal thread, and the mask is inherited: a child that kept it
/// could not be stopped with SIGTERM), SIGTERM when the parent dies (so a
/// restarted parent does not find a port taken by an orphan), and `limits`.
pub fn prepare(cmd: &mut Command, limits: Limits) {
    cmd.process_group(0);
    let unblocked = SigSet::empty();
    // SAFETY: only plain, async-signal-safe system calls (sigprocmask,
    // prctl, setrlimit) run between fork and exec; `unblocked` and `limits`
    // were made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&unblocked), None)?;
            #[cfg(target_os = "linux")]
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            use nix::sys::resource::{setrlimit, Resource};
            if limits.no_core_dumps {
                setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
            }
            if let Some(n) = limits.open_files {
                setrlimit(Resource::RLIMIT_NOFILE, n, n)?;
            }
            Ok(())
        });
    }
}

/// Sends `signal` to the process group led by `pid`; false when the group
/// is gone (or `pid` is not a usable group id).
pub fn signal_group(pid: u32, signal: Signal) -> bool {
    match i32::try_from(pid) {
        // Never 0 or 1: killpg(0) is our own group, and group 1 is init's.
        Ok(p) if p > 1 => killpg(Pid::from_raw(p), signal).is_ok(),
        _ => false,
    }
}

/// How a child ended, for logs and statuses: `exited with status 3`,
/// `killed by SIGKILL`.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => "ended".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_prepared_child_leads_its_group_and_a_group_signal_stops_it_all() {
        let mut cmd = Command::new("sh");
        // The shell starts a grandchild in the same group, then waits.
        cmd.args(["-c", "sleep 30 & wait"]);
        prepare(
            &mut cmd,
            Limits {
                open_files: Some(64),
                no_core_dumps: true,
            },
        );
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let pgid = nix::unistd::getpgid(Some(Pid::from_raw(pid as i32))).unwrap();
        assert_eq!(pgid.as_raw(), pid as i32, "the child leads its own group");
        assert!(signal_group(pid, Signal::SIGTERM));
        let status = child.wait().unwrap();
        assert_eq!(describe(status), "killed by SIGTERM");
        // The grandchild got SIGTERM too: the group empties (once init
        // reaps it).
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            !signal_group(pid, Signal::SIGTERM)
        });
        assert!(gone, "the grandchild outlived the group signal");
        assert!(!signal_group(0, Signal::SIGTERM) && !signal_group(1, Signal::SIGTERM));
    }

    #[test]
    fn statuses_read_as_words() {
        assert_eq!(
            describe(ExitStatus::from_raw(3 << 8)),
            "exited with status 3"
        );
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by SIGKILL");
    }
}
