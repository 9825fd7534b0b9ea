//! The Windows agent under test on Linux: where its `.exe` is, and the
//! Wine, mingw and MSI tools that run, shim and package it. Shared by the
//! `windows_*` tests, which each say SKIPPED (or fail under CI) when one
//! of these is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `$HONEYBEE_WINDOWS_AGENT`, else `honeybee-agent.exe` in
/// `$HONEYBEE_DIST_DIR` (default `dist/`), where `cross/build.sh
/// x86_64-pc-windows-gnu` puts it.
pub fn windows_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("HONEYBEE_WINDOWS_AGENT") {
        return PathBuf::from(p);
    }
    let dist = std::env::var_os("HONEYBEE_DIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("dist"));
    dist.join("x86_64-pc-windows-gnu/honeybee-agent.exe")
}

/// A program `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `$HONEYBEE_WINE`, else Debian's wine64 (not on `PATH`), else `wine64` or
/// `wine` on `PATH`.
pub fn wine() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HONEYBEE_WINE") {
        return Some(PathBuf::from(p));
    }
    let debian = PathBuf::from("/usr/lib/wine/wine64");
    if debian.is_file() {
        return Some(debian);
    }
    on_path("wine64").or_else(|| on_path("wine"))
}

/// Whether `tool` runs at all.
pub fn have(tool: &str) -> bool {
    Command::new(tool).arg("--help").output().is_ok()
}
