//! A temporary directory under `std::env::temp_dir()`, removed on drop.

use std::path::{Path, PathBuf};

/// A directory that exists for the life of this value.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name starts with `prefix`.
    pub fn new(prefix: &str) -> TempDir {
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let path = base.join(format!(
                "{prefix}-{}-{:016x}",
                std::process::id(),
                crate::random_u64()
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create a temp dir under {}: {e}", base.display()),
            }
        }
        panic!("cannot find a free temp dir name under {}", base.display());
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
