//! Creating the data dir and secret files with the right modes, without
//! following a symbolic link planted where one of them should be: modes are
//! changed and secrets read through descriptors opened with `O_NOFOLLOW`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::libc::{O_DIRECTORY, O_NOFOLLOW};

/// Opens `path` without following a symbolic link at its last component;
/// a link is refused with an error that says so.
fn open_nofollow(path: &Path, extra: i32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | extra)
        .open(path)
        .map_err(|e| {
            let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if is_link {
                io::Error::other(format!(
                    "{} is a symbolic link; refusing to follow it",
                    path.display()
                ))
            } else {
                e
            }
        })
}

/// Creates `dir` (and parents) with mode 0700, and tightens it to 0700 if it
/// already existed with looser bits. A symbolic link there is refused.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let d = open_nofollow(dir, O_DIRECTORY)?;
    let mode = d.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        d.set_permissions(fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Reads a secret file that must not be a symbolic link.
pub fn read_secret(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    open_nofollow(path, 0)?.read_to_string(&mut text)?;
    Ok(text)
}

/// Writes `contents` to `path` with mode 0600, atomically (temp file, fsync,
/// rename), so a crash never leaves a half-written secret.
pub fn write_secret(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Makes sure an existing file is not readable by others (0600); a
/// symbolic link is refused, not followed.
pub fn restrict_to_owner(path: &Path) -> io::Result<()> {
    open_nofollow(path, 0)?.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_private() {
        let base = std::env::temp_dir().join(format!("hb-files-{}", std::process::id()));
        let dir = base.join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let f = dir.join("secret");
        write_secret(&f, b"x").unwrap();
        write_secret(&f, b"y").unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(&f).unwrap(), b"y");
        fs::remove_dir_all(&base).ok();
    }

    #[test]
    fn symbolic_links_are_refused_not_followed() {
        let base = std::env::temp_dir().join(format!("hb-links-{}", std::process::id()));
        let target = base.join("elsewhere");
        fs::create_dir_all(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        let link = base.join("data");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = create_private_dir(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "the link's target was re-permissioned");
        let secret = target.join("real");
        fs::write(&secret, "s").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        let token = base.join("api-token");
        std::os::unix::fs::symlink(&secret, &token).unwrap();
        assert!(read_secret(&token).is_err());
        assert!(restrict_to_owner(&token).is_err());
        let mode = fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        fs::remove_dir_all(&base).ok();
    }
}
