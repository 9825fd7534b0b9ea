//! Directories and files only their owner may read — state dirs, TOTP
//! keys, tokens — made without following a symbolic link planted where
//! one of them should be, and written atomically.
//!
//! A file is replaced by writing a temporary sibling (mode 0600), syncing
//! it, renaming it over the old one and syncing the directory: a crash at
//! any point leaves either the old file or the new one, never half of one.
//! Modes are changed and secrets read through descriptors opened with
//! `O_NOFOLLOW`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// Opens `path` without following a symbolic link at its last component;
/// a link is refused with an error that says so.
fn open_nofollow(path: &Path, extra: OFlag) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | extra).bits())
        .open(path)
        .map_err(|e| {
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            match e.raw_os_error() {
                _ if is_link => io::Error::other(format!(
                    "{} is a symbolic link; refusing to follow it",
                    path.display()
                )),
                Some(nix::libc::ENOTDIR) if extra.contains(OFlag::O_DIRECTORY) => {
                    io::Error::new(e.kind(), format!("{} is not a directory", path.display()))
                }
                _ => e,
            }
        })
}

/// Opens the directory `dir` itself: a symbolic link or a non-directory
/// there is an error that names the path.
pub fn open_dir(dir: &Path) -> io::Result<File> {
    open_nofollow(dir, OFlag::O_DIRECTORY)
}

/// Creates `dir` (and parents) with mode 0700, and tightens it to 0700 if
/// it existed with looser bits. A symbolic link there is refused.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    owned_dir(dir, 0o700, None)
}

/// Creates `dir` (and parents), then sets its mode and, when `owner` is
/// given, its owner — on the directory itself, through a descriptor opened
/// with `O_NOFOLLOW`: a symlink planted at `dir` (say `pots/cowrie-01 ->
/// /root`) is refused instead of handing its target to someone else.
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
    open_nofollow(path, OFlag::empty())?.read_to_string(&mut text)?;
    Ok(text)
}

/// Replaces `path` with `bytes`, atomically, mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Makes sure an existing file is not readable by others (0600); a
/// symbolic link is refused, not followed.
pub fn restrict_to_owner(path: &Path) -> io::Result<()> {
    open_nofollow(path, OFlag::empty())?.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
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
