//! MaxMind-format databases for the enrichment tests, from PyPI packages:
//! small ones written with known networks by `tests/geo/make_mmdb.py`
//! (`mmdb-writer`), and the real GeoLite2 City database that
//! `maxminddb-geolite2` ships (read back with `maxminddb`, its Python
//! reader, for the expected answers). Nothing is committed or downloaded
//! by the core.
//!
//! The Python is `$HONEYBEE_PYTHON` when it has the packages (`.ci/run`
//! installs them into `.ci/venv`), else a venv made once under
//! `target/tmp/geo-venv` (needs python3 and python3-venv).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::temp_dir::TempDir;

/// The PyPI packages, pinned.
pub const PACKAGES: [&str; 2] = ["maxminddb-geolite2==2018.703", "mmdb-writer==0.2.7"];

fn has_packages(python: &Path) -> bool {
    Command::new(python)
        .args([
            "-c",
            "import mmdb_writer, netaddr, maxminddb, _maxminddb_geolite2",
        ])
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

fn find_python() -> Result<PathBuf, String> {
    let how = format!(
        "the enrichment tests need Python 3 with {}: set HONEYBEE_PYTHON to such an \
         interpreter (.ci/run installs them into .ci/venv), or install python3 and python3-venv \
         so that the tests can make target/tmp/geo-venv",
        PACKAGES.join(" ")
    );
    if let Some(p) = std::env::var_os("HONEYBEE_PYTHON") {
        let p = PathBuf::from(p);
        if has_packages(&p) {
            return Ok(p);
        }
    }
    let venv = target_dir().join("tmp").join("geo-venv");
    let py = venv.join("bin").join("python");
    if has_packages(&py) {
        return Ok(py);
    }
    std::fs::create_dir_all(target_dir().join("tmp")).map_err(|e| format!("{e}: {how}"))?;
    // Test binaries run at once: one makes the venv, the others wait.
    let lock_path = target_dir().join("tmp").join("geo-venv.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let _lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("locking {}: {e}", lock_path.display()))?;
    if has_packages(&py) {
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
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(&py)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(PACKAGES),
        "pip install",
    )?;
    if has_packages(&py) {
        Ok(py)
    } else {
        Err(format!("{} still lacks the packages: {how}", py.display()))
    }
}

/// A Python with the packages, found or made once per test binary.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_python) {
        Ok(p) => p.clone(),
        Err(e) => panic!("{e}"),
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("geo")
        .join("make_mmdb.py")
}

/// The test databases: `city.mmdb` (GeoLite2-City layout) and `asn.mmdb`
/// (GeoLite2-ASN layout) in a directory of their own.
pub struct TestDbs {
    dir: TempDir,
}

impl TestDbs {
    /// Writes variant 1 (see `tests/geo/make_mmdb.py`).
    pub fn new() -> TestDbs {
        let dbs = TestDbs {
            dir: TempDir::new("honeybee-geo"),
        };
        dbs.write(1);
        dbs
    }

    /// Writes `variant` over the files (each renamed into place).
    pub fn write(&self, variant: u32) {
        let mut cmd = Command::new(python());
        cmd.arg(script()).arg(self.dir.path());
        if variant == 2 {
            cmd.args(["--variant", "2"]);
        }
        let out = cmd.output().expect("run make_mmdb.py");
        assert!(
            out.status.success(),
            "make_mmdb.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The city database.
    pub fn city(&self) -> PathBuf {
        self.dir.path().join("city.mmdb")
    }

    /// The ASN database.
    pub fn asn(&self) -> PathBuf {
        self.dir.path().join("asn.mmdb")
    }

    /// A file in the same directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Default for TestDbs {
    fn default() -> Self {
        TestDbs::new()
    }
}

/// The GeoLite2 City database of `maxminddb-geolite2` (or
/// `$HONEYBEE_GEOLITE2_CITY`).
pub fn geolite2_city() -> PathBuf {
    if let Some(p) = std::env::var_os("HONEYBEE_GEOLITE2_CITY") {
        return PathBuf::from(p);
    }
    let out = Command::new(python())
        .args([
            "-c",
            "from _maxminddb_geolite2 import geolite2_database; print(geolite2_database())",
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// What Python's `maxminddb` reads for `ip` in `db`: the record as JSON
/// (`null` when the address is not in it).
pub fn python_lookup(db: &Path, ip: &str) -> serde_json::Value {
    let out = Command::new(python())
        .args([
            "-c",
            "import json, sys, maxminddb\n\
             print(json.dumps(maxminddb.open_database(sys.argv[1]).get(sys.argv[2])))",
        ])
        .arg(db)
        .arg(ip)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}
