//! Extension mode started as root: once its ports are bound the agent
//! becomes an unprivileged user for good. Its state dir is handed to that
//! user first, so that the spool and identity stay writable.

use std::path::Path;

use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};

use crate::users::{pot_user, RunAs};

/// Becomes `user` (or nobody) when running as root; does nothing otherwise.
/// Returns who the agent now is.
pub fn drop_to(user: &str, state_dir: &Path) -> Result<Option<RunAs>, String> {
    let Some(who) = pot_user(user)? else {
        return Ok(None);
    };
    give(state_dir, who)?;
    let (uid, gid) = (Uid::from_raw(who.uid), Gid::from_raw(who.gid));
    setgroups(&[gid]).map_err(|e| format!("dropping supplementary groups: {e}"))?;
    setgid(gid).map_err(|e| format!("setgid {}: {e}", who.gid))?;
    setuid(uid).map_err(|e| format!("setuid {}: {e}", who.uid))?;
    // Proof that there is no way back.
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err("still able to become root after dropping privileges".into());
    }
    Ok(Some(who))
}

/// Chowns `dir` and everything in it to `who`, following no symlink:
/// directories through descriptors opened with O_NOFOLLOW, files with
/// lchown (a file swapped for a symlink has the link chowned, not its
/// target).
pub(crate) fn give(dir: &Path, who: RunAs) -> Result<(), String> {
    let fail = |path: &Path, e: &dyn std::fmt::Display| {
        format!("giving {} to uid {}: {e}", path.display(), who.uid)
    };
    let fd = crate::state::open_dir(dir).map_err(|e| fail(dir, &e))?;
    std::os::unix::fs::fchown(&fd, Some(who.uid), Some(who.gid)).map_err(|e| fail(dir, &e))?;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.is_dir() {
            give(&path, who)?;
        } else if meta.is_file() {
            std::os::unix::fs::lchown(&path, Some(who.uid), Some(who.gid))
                .map_err(|e| fail(&path, &e))?;
        }
    }
    Ok(())
}
