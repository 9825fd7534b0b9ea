//! Finding the workspace's binaries from a test executable.

use std::path::PathBuf;

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
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    if std::env::var_os("HONEYBEE_REQUIRE_DIST").is_some() {
        panic!(
            "HONEYBEE_REQUIRE_DIST is set but no release {name} exists at {} or {}",
            candidates[0].display(),
            candidates[1].display()
        );
    }
    None
}
