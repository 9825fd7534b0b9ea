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
use std::process::Command;
use std::sync::OnceLock;

use crate::temp_dir::TempDir;

/// The PyPI packages, pinned.
pub const PACKAGES: [&str; 2] = ["maxminddb-geolite2==2018.703", "mmdb-writer==0.2.7"];

fn find_python() -> Result<PathBuf, String> {
    crate::python::find(
        "the enrichment tests",
        &PACKAGES,
        "mmdb_writer, netaddr, maxminddb, _maxminddb_geolite2",
        "geo-venv",
    )
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
