//! Finding the workspace's binaries from a test executable.

use std::path::{Path, PathBuf};

/// `$<env_var>` when set, else `<target>/<profile>/<name>` next to the test
/// executable's `deps/` (where `cargo test --workspace` builds it).
pub fn workspace_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{env_var}={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-exe>
    let profile_dir = exe
        .parent()
        .and_then(|deps| {
            if deps.file_name().is_some_and(|n| n == "deps") {
                deps.parent()
            } else {
                Some(deps)
            }
        })
        .expect("test executable has a parent dir");
    let bin = profile_dir.join(name);
    if !bin.is_file() {
        panic!(
            "{name} binary not found at {}; run `cargo build -p {name}` (or set {env_var})",
            bin.display()
        );
    }
    bin
}

/// The shipped (release) build of `name` for this machine: the static
/// `dist/x86_64-unknown-linux-musl/<name>` from `cross/build.sh`, else
/// `target/release/<name>`. `None` when neither exists, unless
/// `HONEYBEE_REQUIRE_DIST` is set (CI): then it panics and says why.
pub fn release_binary(name: &str) -> Option<PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = std::env::var_os("HONEYBEE_DIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("dist"));
    let candidates = [
        dist.join("x86_64-unknown-linux-musl").join(name),
        root.join("target/release").join(name),
    ];
    let required = std::env::var_os("HONEYBEE_REQUIRE_DIST").is_some();
    for found in candidates.iter().filter(|p| p.is_file()) {
        // CI builds dist/ from the checkout it tests; locally a release
        // build left from before an edit would test old code.
        if required || !is_stale(found) {
            return Some(found.clone());
        }
        eprintln!("{} is older than the sources: not used", found.display());
    }
    if required {
        panic!(
            "HONEYBEE_REQUIRE_DIST is set but no release {name} exists at {} or {}",
            candidates[0].display(),
            candidates[1].display()
        );
    }
    None
}

/// Whether a source file of the binaries (core, proto, agent, extension) is
/// newer than `bin`.
pub fn is_stale(bin: &Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stack: Vec<PathBuf> = [
        "core/src",
        "core/proto/src",
        "agent/src",
        "extension-node/src",
    ]
    .iter()
    .map(|d| root.join(d))
    .collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
            {
                return true;
            }
        }
    }
    false
}
