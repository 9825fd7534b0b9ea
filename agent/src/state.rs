//! The state directory: who this node is (node id, TOTP key). Its files are
//! written with the atomic, owner-only writes of
//! [`honeybee_process::private_files`], re-exported here.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(unix)]
pub use honeybee_process::private_files::owned_dir;
pub use honeybee_process::private_files::{
    create_private_dir as private_dir, open_dir, owner_only, write_private,
};

/// Refuses a state dir that is a symbolic link (the agent chmods and, in
/// Extension mode, chowns it as root); a missing one is fine (it is made).
pub fn check_state_dir(dir: &Path) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(format!(
            "state dir {} is a symbolic link; refusing it: point --state-dir (state_dir) at the \
             real directory",
            dir.display()
        )),
        Ok(meta) if !meta.is_dir() => {
            Err(format!("state dir {} is not a directory", dir.display()))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("state dir {}: {e}", dir.display())),
    }
}

/// Proves that this process can create and remove a file in `dir` (a probe
/// named `.write-probe`, owner-only), the way every state write does.
pub fn probe_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(".write-probe");
    let _ = fs::remove_file(&probe);
    owner_only(OpenOptions::new().write(true).create_new(true)).open(&probe)?;
    fs::remove_file(&probe)
}

/// Who this node is to the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Chosen at random on first start; the core keys the node by it.
    pub node_id: u64,
    /// Base32 TOTP key, from the core's first `RegistrationAck`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_key: Option<String>,
    /// The last TOTP step used: a step is never presented twice (the core
    /// refuses replays), even across agent restarts.
    #[serde(default)]
    pub last_totp_step: u64,
}

/// `identity.json` in the state dir.
pub struct IdentityFile {
    path: PathBuf,
    /// The identity as last written.
    pub identity: Identity,
}

impl IdentityFile {
    /// Loads the identity, or makes and saves a new one.
    pub fn open(state_dir: &Path) -> Result<IdentityFile, String> {
        let path = state_dir.join("identity.json");
        match fs::read(&path) {
            Ok(bytes) => {
                let identity: Identity = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                Ok(IdentityFile { path, identity })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let file = IdentityFile {
                    path,
                    identity: Identity {
                        node_id: new_node_id()?,
                        totp_key: None,
                        last_totp_step: 0,
                    },
                };
                file.save()?;
                Ok(file)
            }
            Err(e) => Err(format!("reading {}: {e}", path.display())),
        }
    }

    /// Writes the identity (atomically, owner-only).
    pub fn save(&self) -> Result<(), String> {
        let json = serde_json::to_vec_pretty(&self.identity).map_err(|e| e.to_string())?;
        write_private(&self.path, &json)
            .map_err(|e| format!("writing {}: {e}", self.path.display()))
    }
}

/// A random id below 2^53, so that it survives every JSON consumer
/// (JavaScript numbers in the dashboard) unchanged; never 0.
fn new_node_id() -> Result<u64, String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| format!("choosing a node id: {e}"))?;
    Ok((u64::from_le_bytes(b) >> 11).max(1))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn identity_is_created_once_private_and_kept() {
        let dir = std::env::temp_dir().join(format!("hb-agent-state-{}", std::process::id()));
        private_dir(&dir).unwrap();
        let mut first = IdentityFile::open(&dir).unwrap();
        assert!(first.identity.node_id > 0 && first.identity.node_id < 1 << 53);
        first.identity.totp_key = Some("JBSWY3DPEHPK3PXP".into());
        first.save().unwrap();
        let again = IdentityFile::open(&dir).unwrap();
        assert_eq!(again.identity, first.identity);
        let mode = fs::metadata(dir.join("identity.json")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert!(!dir.join("identity.tmp").exists());
        fs::write(dir.join("identity.json"), b"{garbage").unwrap();
        let e = IdentityFile::open(&dir).err().unwrap();
        assert!(e.contains("identity.json"), "{e}");
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn symlinked_dirs_are_refused_not_followed() {
        let base = std::env::temp_dir().join(format!("hb-agent-link-{}", std::process::id()));
        let target = base.join("target");
        fs::create_dir_all(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = private_dir(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link") && e.contains("link"), "{e}");
        assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o755);
        let e = check_state_dir(&link).unwrap_err();
        assert!(e.contains("is a symbolic link"), "{e}");
        check_state_dir(&target).unwrap();
        check_state_dir(&base.join("missing")).unwrap();
        fs::remove_dir_all(&base).ok();
    }
}
