//! Directories and files only their owner may read — state dirs, TOTP
//! keys, tokens — made without following a symbolic link planted where
//! one of them should be, and written atomically.
//!
//! A file is replaced by writing a temporary sibling, syncing it, renaming
//! it over the old one and (on Unix) syncing the directory: a crash at any
//! point leaves either the old file or the new one, never half of one.
//! Secrets are read, and modes changed, through handles that were opened
//! without following a link.
//!
//! On Unix "owner-only" is mode 0700 for directories and 0600 for files.
//! On Windows there are no mode bits: files and directories made here get
//! the access list they inherit from their parent, and owner-only access
//! lists arrive with the Windows service, which gives the agent a state
//! directory of its own. The functions that only make sense with Unix
//! owners and modes ([`owned_dir`], [`restrict_to_owner`]) exist on Unix
//! only.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

#[cfg(unix)]
use nix::fcntl::OFlag;

/// Asks for an owner-only file when `opts` creates one: mode 0600 on
/// Unix; on Windows the inherited access list (see the module docs).
pub fn owner_only(opts: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    opts.mode(0o600);
    opts
}

fn link_refused(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; refusing to follow it",
        path.display()
    ))
}

fn not_a_directory(path: &Path, kind: io::ErrorKind) -> io::Error {
    io::Error::new(kind, format!("{} is not a directory", path.display()))
}

/// Opens `path` without following a symbolic link at its last component;
/// a link is refused with an error that says so.
#[cfg(unix)]
fn open_nofollow(path: &Path, dir: bool) -> io::Result<File> {
    let extra = if dir {
        OFlag::O_DIRECTORY
    } else {
        OFlag::empty()
    };
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | extra).bits())
        .open(path)
        .map_err(|e| {
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            match e.raw_os_error() {
                _ if is_link => link_refused(path),
                Some(nix::libc::ENOTDIR) if dir => not_a_directory(path, e.kind()),
                _ => e,
            }
        })
}

/// Opens `path` itself, a symbolic link or junction included, and refuses
/// it when it is one: the handle is checked, not the name, so a link
/// swapped in between a check and the open is still caught.
#[cfg(windows)]
fn open_nofollow(path: &Path, dir: bool) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    // FILE_FLAG_OPEN_REPARSE_POINT: open a link, not its target.
    // FILE_FLAG_BACKUP_SEMANTICS: the only way to open a directory.
    const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    const BACKUP_SEMANTICS: u32 = 0x0200_0000;
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_REPARSE_POINT | BACKUP_SEMANTICS)
        .open(path)?;
    let meta = f.metadata()?;
    if meta.file_type().is_symlink() {
        return Err(link_refused(path));
    }
    if dir && !meta.is_dir() {
        return Err(not_a_directory(path, io::ErrorKind::NotADirectory));
    }
    if !dir && meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            format!("{} is a directory", path.display()),
        ));
    }
    Ok(f)
}

/// Opens the directory `dir` itself: a symbolic link or a non-directory
/// there is an error that names the path.
pub fn open_dir(dir: &Path) -> io::Result<File> {
    open_nofollow(dir, true)
}

/// Creates `dir` (and parents), owner-only (mode 0700 on Unix, tightened if
/// it existed with looser bits). A symbolic link there is refused.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return owned_dir(dir, 0o700, None);
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)?;
        open_dir(dir).map(drop)
    }
}

/// Creates `dir` (and parents), then sets its mode and, when `owner` is
/// given, its owner — on the directory itself, through a descriptor opened
/// with `O_NOFOLLOW`: a symlink planted at `dir` (say `pots/cowrie-01 ->
/// /root`) is refused instead of handing its target to someone else.
#[cfg(unix)]
pub fn owned_dir(dir: &Path, mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let fd = open_dir(dir)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&fd, Some(uid), Some(gid))?;
    }
    if fd.metadata()?.permissions().mode() & 0o7777 != mode {
        fd.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Reads a secret file that must not be a symbolic link.
pub fn read_secret(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    open_nofollow(path, false)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Reads a secret file of at most `max` bytes that must not be a symbolic
/// link; a larger one is an error (`InvalidData`), not read to its end.
pub fn read_secret_bytes(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_nofollow(path, false)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: larger than {max} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

/// Replaces `path` with `bytes`, atomically, owner-only (see [`owner_only`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = owner_only(OpenOptions::new().write(true).create_new(true)).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    // The rename itself reaches the disk with the directory. Windows has no
    // handle to sync a directory through; NTFS journals the rename.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Makes sure an existing file is not readable by others (0600); a
/// symbolic link is refused, not followed.
#[cfg(unix)]
pub fn restrict_to_owner(path: &Path) -> io::Result<()> {
    open_nofollow(path, false)?.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hb-private-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn modes_are_private_and_writes_replace_whole_files() {
        let d = temp("modes");
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        let key = d.join("key");
        write_private(&key, b"one").unwrap();
        write_private(&key, b"two").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(read_secret(&key).unwrap(), "two");
        assert!(!d.join("key.tmp").exists());
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        restrict_to_owner(&key).unwrap();
        assert_eq!(mode(&key), 0o600);
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn symbolic_links_are_refused_not_followed() {
        let d = temp("links");
        fs::create_dir_all(&d).unwrap();
        let target = d.join("target");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        let link = d.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = create_private_dir(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(mode(&target), 0o755, "the link's target was changed");
        let secret = d.join("secret");
        fs::write(&secret, "s").unwrap();
        let slink = d.join("slink");
        std::os::unix::fs::symlink(&secret, &slink).unwrap();
        assert!(read_secret(&slink).is_err());
        assert!(restrict_to_owner(&slink).is_err());
        let file = d.join("file");
        fs::write(&file, "f").unwrap();
        let e = open_dir(&file).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        fs::remove_dir_all(&d).ok();
    }
}
