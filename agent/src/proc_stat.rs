//! Process figures from `/proc`, for the pot metrics command.
//!
//! `GetPotMetrics` answers a pot's pid, CPU seconds, resident memory and
//! uptime. A pot may be a tree of processes (a shell wrapper, an interpreter,
//! its workers), so the figures are summed over the pot's process group. The
//! parsing of `/proc/<pid>/stat` is separate from the reading so that it can
//! be tested on fixed text. Linux only.

use std::fs;
use std::io;

use nix::unistd::{sysconf, SysconfVar};

/// Most processes one group scan counts; a fork bomb in a pot must not turn a
/// metrics request into unbounded work.
const MAX_GROUP_PROCESSES: u32 = 4096;

/// The fields of `/proc/<pid>/stat` the metrics need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatFields {
    /// Process id (field 1).
    pub pid: i32,
    /// Parent process id (field 4).
    pub ppid: i32,
    /// Process group id (field 5).
    pub pgrp: i32,
    /// User-mode CPU time in clock ticks (field 14).
    pub utime_ticks: u64,
    /// Kernel-mode CPU time in clock ticks (field 15).
    pub stime_ticks: u64,
    /// Start time after boot in clock ticks (field 22).
    pub start_ticks: u64,
    /// Resident set size in pages (field 24).
    pub rss_pages: i64,
}

/// Parses the content of `/proc/<pid>/stat`; `None` if it is malformed.
///
/// The command name (field 2) is in parentheses and may itself contain
/// spaces and `)`, so the fields after it are found from the last `)`.
pub fn parse_stat(content: &str) -> Option<StatFields> {
    let (head, _) = content.split_once('(')?;
    let pid = head.trim().parse().ok()?;
    let close = content.rfind(')')?;
    let mut rest = content.get(close + 1..)?.split_ascii_whitespace();
    // `rest` starts at field 3 (state); `nth` counts from there.
    let mut field = |skip: usize| rest.nth(skip);
    let ppid = field(1)?.parse().ok()?; // 4
    let pgrp = field(0)?.parse().ok()?; // 5
    let utime_ticks = field(8)?.parse().ok()?; // 14
    let stime_ticks = field(0)?.parse().ok()?; // 15
    let start_ticks = field(6)?.parse().ok()?; // 22
    let rss_pages = field(1)?.parse().ok()?; // 24
    Some(StatFields {
        pid,
        ppid,
        pgrp,
        utime_ticks,
        stime_ticks,
        start_ticks,
        rss_pages,
    })
}

/// Figures for one process group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupStats {
    /// Processes found in the group (at most 4096 are counted).
    pub processes: u32,
    /// User and kernel CPU time of those processes, in seconds.
    pub cpu_seconds: f64,
    /// Their summed resident memory (shared pages count once per process).
    pub rss_bytes: u64,
    /// Seconds since the group leader started; if the leader has exited,
    /// since the oldest member started.
    pub uptime_s: f64,
}

/// Sums the processes whose process group is `pgid`.
///
/// A group with no processes left gives all zeros. Processes that exit
/// during the scan are skipped. Errors come only from `/proc` itself or the
/// system configuration being unreadable.
pub fn group_stats(pgid: i32) -> io::Result<GroupStats> {
    let ticks_per_s = sysconf_positive(SysconfVar::CLK_TCK, "CLK_TCK")? as f64;
    let page_size = sysconf_positive(SysconfVar::PAGE_SIZE, "PAGE_SIZE")?;
    let entries = fs::read_dir("/proc").map_err(|e| context(e, "listing /proc"))?;
    let mut stats = GroupStats::default();
    let mut leader_start = None;
    let mut oldest_start: Option<u64> = None;
    for entry in entries {
        // An entry that cannot be read is a process that went away.
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(content) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(stat) = parse_stat(&content) else {
            continue;
        };
        if stat.pgrp != pgid {
            continue;
        }
        stats.processes += 1;
        stats.cpu_seconds += stat.utime_ticks.saturating_add(stat.stime_ticks) as f64 / ticks_per_s;
        let rss = u64::try_from(stat.rss_pages).unwrap_or(0);
        stats.rss_bytes = stats
            .rss_bytes
            .saturating_add(rss.saturating_mul(page_size));
        if stat.pid == pgid {
            leader_start = Some(stat.start_ticks);
        }
        oldest_start = Some(oldest_start.map_or(stat.start_ticks, |t| t.min(stat.start_ticks)));
        if stats.processes >= MAX_GROUP_PROCESSES {
            break;
        }
    }
    if let Some(start) = leader_start.or(oldest_start) {
        let since_boot = system_uptime()?;
        stats.uptime_s = (since_boot - start as f64 / ticks_per_s).max(0.0);
    }
    Ok(stats)
}

/// This process's resident memory (`VmRSS` of `/proc/self/status`), in bytes.
pub fn self_rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

/// The `VmRSS:  1234 kB` line of a `/proc/<pid>/status`, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_ascii_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

/// Seconds since boot, the first figure of `/proc/uptime`.
fn system_uptime() -> io::Result<f64> {
    let text =
        fs::read_to_string("/proc/uptime").map_err(|e| context(e, "reading /proc/uptime"))?;
    text.split_ascii_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/uptime does not start with a number: {text:?}"),
            )
        })
}

fn sysconf_positive(var: SysconfVar, name: &str) -> io::Result<u64> {
    match sysconf(var) {
        Ok(Some(v)) if v > 0 => u64::try_from(v)
            .map_err(|_| io::Error::other(format!("sysconf({name}) = {v} out of range"))),
        Ok(_) => Err(io::Error::other(format!("sysconf({name}) gave no value"))),
        Err(e) => Err(io::Error::other(format!("sysconf({name}): {e}"))),
    }
}

fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    const SLEEP_STAT: &str = "4242 (sleep) S 4200 4242 4200 34816 4242 4194304 91 0 0 0 \
        3 5 0 0 20 0 1 0 987654 8605696 142 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 \
        17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn parses_a_plain_stat_line() {
        assert_eq!(
            parse_stat(SLEEP_STAT),
            Some(StatFields {
                pid: 4242,
                ppid: 4200,
                pgrp: 4242,
                utime_ticks: 3,
                stime_ticks: 5,
                start_ticks: 987654,
                rss_pages: 142,
            })
        );
    }

    #[test]
    fn command_names_with_spaces_and_parentheses() {
        for comm in ["a b", "(a b) c", "a b) c)", ") ) 1 2 3", "x(y"] {
            let line = SLEEP_STAT.replacen("sleep", comm, 1);
            let stat = parse_stat(&line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(
                (stat.pid, stat.ppid, stat.pgrp),
                (4242, 4200, 4242),
                "{comm}"
            );
            assert_eq!((stat.start_ticks, stat.rss_pages), (987654, 142), "{comm}");
        }
    }

    #[test]
    fn rejects_malformed_stat() {
        for bad in [
            "",
            "4242",
            "4242 (sleep",
            "x (sleep) S 1 2",
            "4242 (sleep) S 4200 4242",
            "4242 (sleep) S 4200 x 4200 0 0 0 0 0 0 0 3 5 0 0 20 0 1 0 9 1 142",
            "4242 (sleep) S 4200 4242 4200 0 0 0 0 0 0 0 3 5 0 0 20 0 1 0 9 1",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad}");
        }
        let short = "4242 (sleep) S 4200 4242 4200 0 0 0 0 0 0 0 3 5 0 0 20 0 1 0 9 1 142";
        assert!(parse_stat(short).is_some(), "trailing fields are optional");
    }

    #[test]
    fn own_stat_parses() {
        let content = fs::read_to_string("/proc/self/stat").unwrap();
        let stat = parse_stat(&content).unwrap();
        assert_eq!(stat.pid as u32, std::process::id());
        assert!(stat.rss_pages > 0);
    }

    #[test]
    fn group_stats_of_a_spawned_group() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        // The child joins its own group (setpgid) and execs a moment after
        // spawn returns: wait for that rather than race it.
        let mut stats = group_stats(pgid);
        for _ in 0..200 {
            if stats
                .as_ref()
                .is_ok_and(|s| s.processes >= 1 && s.rss_bytes > 0)
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            stats = group_stats(pgid);
        }
        let _ = child.kill();
        let _ = child.wait();
        let stats = stats.unwrap();
        assert!(stats.processes >= 1, "{stats:?}");
        assert!(stats.rss_bytes > 0, "{stats:?}");
        assert!(stats.cpu_seconds >= 0.0, "{stats:?}");
        assert!((0.0..30.0).contains(&stats.uptime_s), "{stats:?}");
        assert_eq!(group_stats(pgid).unwrap(), GroupStats::default(), "gone");
    }

    #[test]
    fn self_rss_is_known() {
        assert!(self_rss_bytes().is_some_and(|b| b > 0));
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_vm_rss("VmRSS:\t2048 MB\n"), None);
        assert_eq!(parse_vm_rss("VmHWM:\t2048 kB\n"), None);
    }
}
