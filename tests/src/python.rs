//! A Python 3 with some pinned PyPI packages, for tests whose peer is
//! written in Python (MaxMind databases, an SMTP server): `$HONEYBEE_PYTHON`
//! when it has them (`.ci/run` installs them all into `.ci/venv`), else a
//! venv made once under `target/tmp/<venv>` (needs python3 and
//! python3-venv).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn imports_ok(python: &Path, imports: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {imports}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `<workspace>/target`, from the test executable's path.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::temp_dir().join("honeybee-target"))
}

/// A Python that can `import <imports>`: `$HONEYBEE_PYTHON`, else the venv
/// `venv` made with `packages`. `what` names the tests in the error.
pub fn find(what: &str, packages: &[&str], imports: &str, venv: &str) -> Result<PathBuf, String> {
    let how = format!(
        "{what} need Python 3 with {}: set HONEYBEE_PYTHON to such an interpreter (.ci/run \
         installs them into .ci/venv), or install python3 and python3-venv so that the tests \
         can make target/tmp/{venv}",
        packages.join(" ")
    );
    if let Some(p) = std::env::var_os("HONEYBEE_PYTHON") {
        let p = PathBuf::from(p);
        if imports_ok(&p, imports) {
            return Ok(p);
        }
    }
    let tmp = target_dir().join("tmp");
    let dir = tmp.join(venv);
    let py = dir.join("bin").join("python");
    if imports_ok(&py, imports) {
        return Ok(py);
    }
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{e}: {how}"))?;
    // Test binaries run at once: one makes the venv, the others wait.
    let lock_path = tmp.join(format!("{venv}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let _lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking {}: {e}", lock_path.display()))?;
    if imports_ok(&py, imports) {
        return Ok(py);
    }
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}: {how}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed: {}{}: {how}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&dir),
        "python3 -m venv",
    )?;
    run(
        Command::new(&py)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages),
        "pip install",
    )?;
    if imports_ok(&py, imports) {
        Ok(py)
    } else {
        Err(format!("{} still lacks the packages: {how}", py.display()))
    }
}
