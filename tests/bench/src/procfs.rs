//! Reading process figures from /proc for the benchmarks.

/// Clock ticks per second (utime/stime units).
pub fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64
}

/// The fields of `/proc/<pid>/stat` after the parenthesised command name:
/// [0] state, [1] ppid, [11] utime, [12] stime, [13] cutime, [14] cstime.
pub fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// A `kB` value of `/proc/<pid>/smaps_rollup` (`key` with its colon, e.g.
/// `"Pss:"`: the process's share of its pages, shared ones divided among
/// the processes that map them); 0 when unknown.
pub fn smaps_rollup_kb(pid: u32, key: &str) -> u64 {
    kb_field(&format!("/proc/{pid}/smaps_rollup"), key)
}

/// Drops `path` from the page cache, as after a reboot. How a file was last
/// written decides the size of its page-cache folios, and the kernel maps a
/// large folio whole: an executable just written by `strip` or `cp` can
/// show up to 0.3 MB more RSS than the same file read back from disk.
pub fn drop_from_page_cache(path: &std::path::Path) -> Result<(), String> {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
        .map_err(|e| format!("{}: posix_fadvise: {e}", path.display()))
}

/// A `kB` value of `/proc/<pid>/status` (`key` with its colon, e.g.
/// `"VmRSS:"`); 0 when unknown.
pub fn status_kb(pid: u32, key: &str) -> u64 {
    kb_field(&format!("/proc/{pid}/status"), key)
}

fn kb_field(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) `pid` has used itself, from `/proc/<pid>/stat`;
/// `None` when the process is gone.
pub fn cpu(pid: u32) -> Option<std::time::Duration> {
    let f = stat_fields(pid)?;
    let ticks = f.get(11)? + f.get(12)?;
    Some(std::time::Duration::from_micros(
        ticks * 1_000_000 / clock_ticks(),
    ))
}

/// CPU time of every live thread of `pid`, in nanoseconds, from
/// `/proc/<pid>/task/*/schedstat` (the scheduler's own count, not 10 ms
/// ticks); `None` when the kernel keeps no schedstat or the process is gone.
pub fn threads_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// The live processes whose parent is `parent`.
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_fields(pid).is_some_and(|f| f.get(1).copied() == Some(u64::from(parent)))
        })
        .collect()
}

/// CPU time of a server and its worker processes (PostgreSQL's postmaster
/// and its backends): the server's own, that of its live children, and
/// that of the children it has already reaped (its `cutime`/`cstime`: a
/// backend whose client disconnected still counts).
pub fn server_cpu(pid: u32) -> Option<std::time::Duration> {
    let f = stat_fields(pid)?;
    let own = f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?;
    let mut total = std::time::Duration::from_micros(own * 1_000_000 / clock_ticks());
    for child in children(pid) {
        total += cpu(child).unwrap_or_default();
    }
    Some(total)
}
