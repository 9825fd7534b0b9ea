//! The potstore: where Full mode finds its pots (format in `potstore/README.md`).
//!
//! A potstore directory holds `potstore.json`, the catalogue, and one folder per pot
//! with a `manifest.json` naming its `install` and `start` executables. A git
//! repository holding a single pot (just a `manifest.json` at its root) works too.
//! InstallPot comes from the network and chooses the pot type and its config, so
//! everything taken from these files or from the command is checked here before it
//! becomes a path, an environment variable or a `git` argument.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The catalogue file inside a potstore directory.
pub const CATALOGUE_FILE: &str = "potstore.json";
/// The manifest file inside a pot folder.
pub const MANIFEST_FILE: &str = "manifest.json";

// A cloned repository is untrusted input: a multi-gigabyte "manifest" must not take
// the memory of a small device. Real files are a few KiB.
const MAX_JSON_BYTES: u64 = 1024 * 1024;
const MAX_KEY_LEN: usize = 64;
const MAX_POT_ID_LEN: usize = 64;

/// A potstore problem, with the file, pot or key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PotstoreError(pub String);

impl fmt::Display for PotstoreError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PotstoreError {}

/// One pot as listed in `potstore.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// Unique name in the catalogue, e.g. `cowrie`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The pot's version.
    pub version: String,
    /// The kind of honeypot (JSON `type`); a second lookup key after `id`.
    #[serde(rename = "type")]
    pub pot_type: String,
    /// One line for people choosing a pot.
    #[serde(default)]
    pub description: String,
    /// Protocols it speaks, e.g. `ssh`, `telnet`.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Default ports by config key, e.g. `ssh_port` → 2222.
    #[serde(default)]
    pub ports: BTreeMap<String, u16>,
    /// What the machine needs beforehand, e.g. the Debian package `python3-venv`.
    #[serde(default)]
    pub requirements: Vec<String>,
    /// The pot's folder, relative to the potstore directory; empty for a
    /// native pot.
    #[serde(default)]
    pub directory: String,
    /// Compiled into the agent (`native-telnet`, …): no folder, no scripts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native: bool,
}

/// The parsed `potstore.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Catalogue {
    /// Every pot the potstore offers.
    pub pots: Vec<CatalogueEntry>,
}

impl Catalogue {
    /// Reads and checks `<potstore_dir>/potstore.json`.
    pub fn load(potstore_dir: &Path) -> Result<Catalogue, PotstoreError> {
        let path = potstore_dir.join(CATALOGUE_FILE);
        let context = |detail: String| {
            PotstoreError(format!("reading potstore {}: {detail}", path.display()))
        };
        let text = read_bounded(&path).map_err(context)?;
        let catalogue: Catalogue = parse_json(&text).map_err(context)?;
        catalogue.check().map_err(context)?;
        Ok(catalogue)
    }

    /// The pot whose `id` is `honeypot_type`, else the first whose `type` is.
    pub fn find(&self, honeypot_type: &str) -> Option<&CatalogueEntry> {
        self.pots
            .iter()
            .find(|p| p.id == honeypot_type)
            .or_else(|| self.pots.iter().find(|p| p.pot_type == honeypot_type))
    }

    fn check(&self) -> Result<(), String> {
        for (i, pot) in self.pots.iter().enumerate() {
            let which = format!("pot #{} ({:?})", i + 1, pot.id);
            if pot.id.is_empty() {
                return Err(format!("{which}: empty id"));
            }
            if self.pots.iter().take(i).any(|p| p.id == pot.id) {
                return Err(format!("{which}: duplicate id"));
            }
            if !pot.native {
                relative_path(&pot.directory).map_err(|e| format!("{which}: directory: {e}"))?;
            }
        }
        Ok(())
    }
}

/// A pot folder's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The pot's id, e.g. `cowrie`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The pot's version.
    pub version: String,
    /// The kind of honeypot (JSON `type`).
    #[serde(rename = "type")]
    pub pot_type: String,
    /// Protocols it speaks.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Default ports by config key.
    #[serde(default)]
    pub ports: BTreeMap<String, u16>,
    /// Config defaults, key → value; InstallPot's `config` overrides them.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The idempotent install executable, relative to the pot folder.
    pub install: String,
    /// The foreground start executable, relative to the pot folder.
    pub start: String,
}

/// Reads and checks `<pot_folder>/manifest.json`, including that `install` and
/// `start` are executable regular files inside the folder.
pub fn load_manifest(pot_folder: &Path) -> Result<Manifest, PotstoreError> {
    let path = pot_folder.join(MANIFEST_FILE);
    let context = |detail: String| {
        PotstoreError(format!("reading pot manifest {}: {detail}", path.display()))
    };
    let text = read_bounded(&path).map_err(context)?;
    let manifest: Manifest = parse_json(&text).map_err(context)?;
    for (field, value) in [("install", &manifest.install), ("start", &manifest.start)] {
        let relative = relative_path(value).map_err(|e| context(format!("{field}: {e}")))?;
        executable_file(&pot_folder.join(relative))
            .map_err(|e| context(format!("{field}: {e}")))?;
    }
    check_config(&manifest.config).map_err(context)?;
    Ok(manifest)
}

/// A pot found in a potstore: its folder and manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PotSource {
    /// The pot folder in the potstore (or the cloned repository).
    pub folder: PathBuf,
    /// Its checked manifest.
    pub manifest: Manifest,
}

impl PotSource {
    /// The `install` executable.
    pub fn install_path(&self) -> PathBuf {
        self.folder.join(&self.manifest.install)
    }

    /// The `start` executable.
    pub fn start_path(&self) -> PathBuf {
        self.folder.join(&self.manifest.start)
    }

    /// What GetPotInfo reports: name, version, type, protocols, ports.
    pub fn info(&self) -> serde_json::Value {
        let m = &self.manifest;
        serde_json::json!({
            "name": m.name,
            "version": m.version,
            "type": m.pot_type,
            "protocols": m.protocols,
            "ports": m.ports,
        })
    }
}

/// `honeypot_type` looked up in `<dir>/potstore.json`; or, when there is no
/// potstore.json but `<dir>/manifest.json` exists (a git repository holding one pot),
/// that pot.
pub fn resolve(dir: &Path, honeypot_type: &str) -> Result<PotSource, PotstoreError> {
    if !dir.join(CATALOGUE_FILE).exists() && dir.join(MANIFEST_FILE).exists() {
        // The operator chose this repository by URL: it is the pot, whatever its type.
        let manifest = load_manifest(dir)?;
        return Ok(PotSource {
            folder: dir.to_path_buf(),
            manifest,
        });
    }
    let catalogue = Catalogue::load(dir)?;
    let entry = catalogue.find(honeypot_type).ok_or_else(|| {
        let known: Vec<&str> = catalogue.pots.iter().map(|p| p.id.as_str()).collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        PotstoreError(format!(
            "potstore {}: no pot with id or type {honeypot_type:?} (known ids: {known})",
            dir.display()
        ))
    })?;
    let folder = dir.join(&entry.directory);
    let manifest = load_manifest(&folder)?;
    Ok(PotSource { folder, manifest })
}

/// The environment for a pot's `install` and `start`: the `HONEYBEE_*` variables and
/// each config key as `HONEYBEE_CFG_<KEY>`, `overrides` (InstallPot's `config`)
/// replacing the manifest defaults.
pub fn pot_env(
    manifest: &Manifest,
    overrides: &BTreeMap<String, String>,
    pot_id: &str,
    pot_dir: &Path,
    source: &Path,
    event_addr: &str,
    node_id: u64,
) -> Result<Vec<(String, String)>, PotstoreError> {
    if !valid_pot_id(pot_id) {
        return Err(PotstoreError(format!(
            "pot id {pot_id:?}: must be 1-{MAX_POT_ID_LEN} of [A-Za-z0-9_.-], not starting with '.'"
        )));
    }
    check_config(overrides).map_err(|e| PotstoreError(format!("pot {pot_id}: {e}")))?;
    let utf8 = |what: &str, path: &Path| {
        path.to_str().map(str::to_string).ok_or_else(|| {
            PotstoreError(format!(
                "pot {pot_id}: {what} {} is not UTF-8",
                path.display()
            ))
        })
    };
    let mut env = vec![
        ("HONEYBEE_POT_ID".to_string(), pot_id.to_string()),
        (
            "HONEYBEE_POT_DIR".to_string(),
            utf8("working dir", pot_dir)?,
        ),
        (
            "HONEYBEE_POT_SOURCE".to_string(),
            utf8("source folder", source)?,
        ),
        ("HONEYBEE_EVENT_ADDR".to_string(), event_addr.to_string()),
        ("HONEYBEE_NODE_ID".to_string(), node_id.to_string()),
    ];
    // Keys are matched case-insensitively, as they end up upper-cased: an override
    // `SSH_PORT` replaces the default `ssh_port`.
    let mut config: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in &manifest.config {
        config.insert(key.to_ascii_uppercase(), value);
    }
    for (key, value) in overrides {
        config.insert(key.to_ascii_uppercase(), value);
    }
    env.extend(
        config
            .into_iter()
            .map(|(key, value)| (format!("HONEYBEE_CFG_{key}"), value.to_string())),
    );
    if let Some((name, _)) = env.iter().find(|(_, v)| v.contains('\0')) {
        return Err(PotstoreError(format!(
            "pot {pot_id}: {name} contains a NUL byte"
        )));
    }
    Ok(env)
}

/// Whether `id` can name a pot: 1-64 of `[A-Za-z0-9_.-]`, not starting with `.`
/// (it becomes a directory name under the state dir).
pub fn valid_pot_id(id: &str) -> bool {
    (1..=MAX_POT_ID_LEN).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `git clone --depth 1 [--branch B] -- URL DEST` that never prompts; refuses a `url`
/// or `branch` that could pass for an option or holds control characters.
pub fn git_clone_command(
    url: &str,
    branch: Option<&str>,
    dest: &Path,
) -> Result<Command, PotstoreError> {
    clone_command(url, branch, dest, &["--depth", "1"])
}

/// `git clone --no-checkout [--branch B] -- URL DEST`: the full history, so
/// that [`git_checkout_command`] can then check out a pinned commit.
pub fn git_clone_pinned_command(
    url: &str,
    branch: Option<&str>,
    dest: &Path,
) -> Result<Command, PotstoreError> {
    clone_command(url, branch, dest, &["--no-checkout"])
}

/// `git -C DEST checkout -q --detach COMMIT^{commit}`: exactly `commit`
/// (40 or 64 hex digits), or an error.
pub fn git_checkout_command(dest: &Path, commit: &str) -> Result<Command, PotstoreError> {
    let hex = commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex || !(commit.len() == 40 || commit.len() == 64) {
        return Err(PotstoreError(format!(
            "commit {commit:?} is not 40 or 64 hex digits"
        )));
    }
    let mut cmd = Command::new("git");
    cmd.args(["-c", "protocol.ext.allow=never", "-C"])
        .arg(dest)
        .args(["checkout", "-q", "--detach"])
        .arg(format!("{commit}^{{commit}}"));
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    Ok(cmd)
}

/// The commit checked out in the clone at `dest` (its `.git/HEAD` when
/// detached), read without following a symlink or blocking on a FIFO: the
/// clone belongs to the pot user.
pub fn git_head(dest: &Path) -> Result<String, PotstoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dest.join(".git").join("HEAD");
    let context = |e: String| PotstoreError(format!("reading {}: {e}", path.display()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags::NOFOLLOW_NONBLOCK)
        .open(&path)
        .map_err(|e| context(e.to_string()))?;
    let meta = file.metadata().map_err(|e| context(e.to_string()))?;
    if !meta.is_file() {
        return Err(context("not a regular file".into()));
    }
    let mut text = String::new();
    file.take(256)
        .read_to_string(&mut text)
        .map_err(|e| context(e.to_string()))?;
    Ok(text.trim().to_ascii_lowercase())
}

mod libc_flags {
    use nix::fcntl::OFlag;
    /// O_NOFOLLOW | O_NONBLOCK.
    pub const NOFOLLOW_NONBLOCK: i32 = OFlag::O_NOFOLLOW.bits() | OFlag::O_NONBLOCK.bits();
}

fn clone_command(
    url: &str,
    branch: Option<&str>,
    dest: &Path,
    how: &[&str],
) -> Result<Command, PotstoreError> {
    git_word("git_url", url)?;
    if let Some(branch) = branch {
        git_word("git_branch", branch)?;
    }
    let mut cmd = Command::new("git");
    // The `ext::` transport runs a command named in the URL; git refuses it by default,
    // and a permissive system gitconfig must not change that for a URL from the network.
    cmd.args(["-c", "protocol.ext.allow=never", "clone"]);
    cmd.args(how);
    if let Some(branch) = branch {
        cmd.args(["--branch", branch]);
    }
    cmd.arg("--").arg(url).arg(dest);
    // No credential prompt on a terminal nobody watches: fail instead of hanging.
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    Ok(cmd)
}

fn git_word(field: &str, value: &str) -> Result<(), PotstoreError> {
    if value.is_empty() {
        return Err(PotstoreError(format!("{field} is empty")));
    }
    if value.starts_with('-') {
        return Err(PotstoreError(format!("{field} {value:?} starts with '-'")));
    }
    if value.chars().any(char::is_control) {
        return Err(PotstoreError(format!(
            "{field} {value:?} contains a control character"
        )));
    }
    Ok(())
}

/// Config keys become variable names and values their contents.
fn check_config(config: &BTreeMap<String, String>) -> Result<(), String> {
    let mut upper: BTreeMap<String, &str> = BTreeMap::new();
    for (key, value) in config {
        let key_ok = (1..=MAX_KEY_LEN).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !key_ok {
            return Err(format!(
                "config key {key:?}: must be 1-{MAX_KEY_LEN} of [A-Za-z0-9_]"
            ));
        }
        if value.contains('\0') {
            return Err(format!("config key {key:?}: value contains a NUL byte"));
        }
        if let Some(other) = upper.insert(key.to_ascii_uppercase(), key) {
            return Err(format!(
                "config keys {other:?} and {key:?} differ only in case"
            ));
        }
    }
    Ok(())
}

/// A path from a potstore file, accepted only if it stays below its base directory.
fn relative_path(value: &str) -> Result<&Path, String> {
    let path = Path::new(value);
    let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
    if value.is_empty() || !normal {
        return Err(format!(
            "{value:?} must be a relative path without '.' or '..'"
        ));
    }
    Ok(path)
}

fn executable_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not executable", path.display()));
    }
    Ok(())
}

fn read_bounded(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_JSON_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_JSON_BYTES {
        return Err(format!("larger than {MAX_JSON_BYTES} bytes"));
    }
    Ok(text)
}

/// Parses JSON; errors read "line L, column C: what".
fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        if e.line() == 0 {
            return full;
        }
        let position = format!(" at line {} column {}", e.line(), e.column());
        let what = full.strip_suffix(&position).unwrap_or(&full);
        format!("line {}, column {}: {what}", e.line(), e.column())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!(
                "honeybee-potstore-{}-{n}-{name}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn write_script(path: &Path) {
        write(path, "#!/bin/sh\nexit 0\n");
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    const CATALOGUE: &str = r#"{"pots": [
        {"id": "cowrie", "name": "Cowrie", "version": "3.1.4", "type": "ssh",
         "description": "SSH and Telnet", "protocols": ["ssh", "telnet"],
         "ports": {"ssh_port": 2222, "telnet_port": 2223},
         "requirements": ["python3-venv"], "directory": "cowrie"},
        {"id": "trap", "name": "Trap", "version": "1", "type": "http", "directory": "pots/trap"}
    ]}"#;

    const CONFIG: &str = r#""ssh_port": "2222", "hostname": "srv04""#;

    fn manifest_json(id: &str, pot_type: &str) -> String {
        manifest_with(id, pot_type, "install", "bin/start", CONFIG)
    }

    fn manifest_with(id: &str, pot_type: &str, install: &str, start: &str, config: &str) -> String {
        format!(
            r#"{{"id": "{id}", "name": "N {id}", "version": "1.0", "type": "{pot_type}",
               "protocols": ["ssh"], "ports": {{"ssh_port": 2222}},
               "config": {{{config}}}, "install": {install:?}, "start": {start:?}}}"#
        )
    }

    fn make_pot(folder: &Path, id: &str, pot_type: &str) {
        write(&folder.join(MANIFEST_FILE), &manifest_json(id, pot_type));
        write_script(&folder.join("install"));
        write_script(&folder.join("bin/start"));
    }

    /// A potstore with the two pots of CATALOGUE.
    fn potstore(name: &str) -> TempDir {
        let dir = TempDir::new(name);
        write(&dir.0.join(CATALOGUE_FILE), CATALOGUE);
        make_pot(&dir.0.join("cowrie"), "cowrie", "ssh");
        make_pot(&dir.0.join("pots/trap"), "trap", "http");
        dir
    }

    fn err<T: fmt::Debug>(r: Result<T, PotstoreError>) -> String {
        r.unwrap_err().0
    }

    #[test]
    fn shipped_potstore_json_parses() {
        let catalogue: Catalogue =
            parse_json(include_str!("../../potstore/potstore.json")).unwrap();
        catalogue.check().unwrap();
    }

    #[test]
    fn loads_catalogue_with_defaults_for_optional_fields() {
        let dir = potstore("load");
        let c = Catalogue::load(&dir.0).unwrap();
        assert_eq!(c.pots.len(), 2);
        let cowrie = &c.pots[0];
        assert_eq!(cowrie.pot_type, "ssh");
        assert_eq!(cowrie.ports.get("telnet_port"), Some(&2223));
        assert_eq!(cowrie.requirements, ["python3-venv"]);
        let trap = &c.pots[1];
        assert_eq!(
            (
                trap.description.as_str(),
                trap.protocols.len(),
                trap.ports.len()
            ),
            ("", 0, 0)
        );
    }

    #[test]
    fn find_by_id_then_by_type() {
        let dir = potstore("find");
        let c = Catalogue::load(&dir.0).unwrap();
        assert_eq!(c.find("trap").unwrap().id, "trap");
        assert_eq!(c.find("ssh").unwrap().id, "cowrie");
        assert!(c.find("telnet").is_none());
        // An id wins over another pot's type.
        let mut c = c;
        c.pots[1].pot_type = "cowrie".into();
        assert_eq!(c.find("cowrie").unwrap().id, "cowrie");
    }

    #[test]
    fn resolve_finds_pot_folder_and_executables() {
        let dir = potstore("resolve");
        let pot = resolve(&dir.0, "http").unwrap();
        assert_eq!(pot.folder, dir.0.join("pots/trap"));
        assert_eq!(pot.manifest.id, "trap");
        assert_eq!(pot.install_path(), dir.0.join("pots/trap/install"));
        assert_eq!(pot.start_path(), dir.0.join("pots/trap/bin/start"));
        let info = pot.info();
        assert_eq!(info["type"], "http");
        assert_eq!(info["version"], "1.0");
        assert_eq!(info["ports"]["ssh_port"], 2222);
        assert_eq!(info["protocols"][0], "ssh");
    }

    #[test]
    fn resolve_unknown_type_lists_known_ids() {
        let dir = potstore("unknown");
        let e = err(resolve(&dir.0, "ftp"));
        assert!(
            e.contains("\"ftp\"") && e.contains("known ids: cowrie, trap"),
            "{e}"
        );
    }

    #[test]
    fn single_pot_repository_is_that_pot() {
        let dir = TempDir::new("single");
        make_pot(&dir.0, "mypot", "ssh");
        let pot = resolve(&dir.0, "whatever").unwrap();
        assert_eq!(pot.folder, dir.0);
        assert_eq!(pot.manifest.id, "mypot");
    }

    #[test]
    fn missing_files_name_their_path() {
        let dir = TempDir::new("missing");
        let e = err(resolve(&dir.0, "cowrie"));
        assert!(
            e.contains(&dir.0.join(CATALOGUE_FILE).display().to_string()),
            "{e}"
        );
        let e = err(load_manifest(&dir.0));
        assert!(
            e.contains(&dir.0.join(MANIFEST_FILE).display().to_string()),
            "{e}"
        );
        // A catalogue entry whose folder has no manifest.
        write(&dir.0.join(CATALOGUE_FILE), CATALOGUE);
        let e = err(resolve(&dir.0, "cowrie"));
        assert!(e.contains("cowrie/manifest.json"), "{e}");
    }

    #[test]
    fn garbled_json_gives_path_line_and_column() {
        let dir = TempDir::new("garbled");
        write(
            &dir.0.join(CATALOGUE_FILE),
            "{\"pots\": [\n  {\"id\": \"x\",\n   oops}]}",
        );
        let e = err(Catalogue::load(&dir.0));
        let path = dir.0.join(CATALOGUE_FILE).display().to_string();
        assert!(
            e.starts_with(&format!("reading potstore {path}: line 3, column 4: ")),
            "{e}"
        );
        assert!(!e.ends_with("column 4"), "position said twice: {e}");
        write(&dir.0.join(MANIFEST_FILE), "{\"id\": \"x\"}");
        let e = err(load_manifest(&dir.0));
        assert!(e.contains("line 1, column 11: missing field `name`"), "{e}");
    }

    #[test]
    fn refuses_oversize_json() {
        let dir = TempDir::new("oversize");
        write(
            &dir.0.join(CATALOGUE_FILE),
            &" ".repeat(MAX_JSON_BYTES as usize + 1),
        );
        assert!(err(Catalogue::load(&dir.0)).contains("larger than"));
    }

    #[test]
    fn refuses_directory_outside_the_potstore() {
        for bad in ["", "/etc", "../cowrie", "a/../../b", "./cowrie", "."] {
            let dir = TempDir::new("dirs");
            let json = format!(
                r#"{{"pots": [{{"id": "p", "name": "P", "version": "1", "type": "t", "directory": {bad:?}}}]}}"#
            );
            write(&dir.0.join(CATALOGUE_FILE), &json);
            let e = err(Catalogue::load(&dir.0));
            assert!(e.contains("pot #1 (\"p\"): directory:"), "{bad}: {e}");
        }
    }

    #[test]
    fn refuses_duplicate_and_empty_ids() {
        let dir = TempDir::new("dup");
        let entry = r#"{"id": "p", "name": "P", "version": "1", "type": "t", "directory": "p"}"#;
        write(
            &dir.0.join(CATALOGUE_FILE),
            &format!(r#"{{"pots": [{entry}, {entry}]}}"#),
        );
        assert!(err(Catalogue::load(&dir.0)).contains("pot #2 (\"p\"): duplicate id"));
        let empty = entry.replace("\"id\": \"p\"", "\"id\": \"\"");
        write(
            &dir.0.join(CATALOGUE_FILE),
            &format!(r#"{{"pots": [{empty}]}}"#),
        );
        assert!(err(Catalogue::load(&dir.0)).contains("empty id"));
    }

    #[test]
    fn refuses_executables_outside_the_folder_or_missing() {
        let dir = TempDir::new("exec");
        make_pot(&dir.0, "p", "t");
        let good = manifest_json("p", "t");
        for bad in ["/bin/sh", "../start", "", "bin/../bin/start", "./install"] {
            write(
                &dir.0.join(MANIFEST_FILE),
                &manifest_with("p", "t", bad, "bin/start", CONFIG),
            );
            let e = err(load_manifest(&dir.0));
            assert!(
                e.contains("install: ") && e.contains("relative path"),
                "{bad}: {e}"
            );
            write(
                &dir.0.join(MANIFEST_FILE),
                &manifest_with("p", "t", "install", bad, CONFIG),
            );
            let e = err(load_manifest(&dir.0));
            assert!(
                e.contains("start: ") && e.contains("relative path"),
                "{bad}: {e}"
            );
        }
        write(
            &dir.0.join(MANIFEST_FILE),
            &manifest_with("p", "t", "install", "nope", CONFIG),
        );
        assert!(err(load_manifest(&dir.0)).contains("start: "));
        write(
            &dir.0.join(MANIFEST_FILE),
            &manifest_with("p", "t", "install", "bin", CONFIG),
        );
        assert!(err(load_manifest(&dir.0)).contains("is not a regular file"));
        write(&dir.0.join(MANIFEST_FILE), &good);
        fs::set_permissions(dir.0.join("install"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(err(load_manifest(&dir.0)).contains("is not executable"));
    }

    #[test]
    fn refuses_bad_config_defaults() {
        let dir = TempDir::new("cfg");
        make_pot(&dir.0, "p", "t");
        for (bad, why) in [
            (r#""host-name": "x""#, "host-name"),
            (r#""": "x""#, "must be 1-64"),
            (r#""hostname": "a\u0000b""#, "NUL"),
            (r#""HOSTNAME": "x", "hostname": "y""#, "differ only in case"),
        ] {
            write(
                &dir.0.join(MANIFEST_FILE),
                &manifest_with("p", "t", "install", "bin/start", bad),
            );
            let e = err(load_manifest(&dir.0));
            assert!(
                e.contains("manifest.json: config key") && e.contains(why),
                "{bad}: {e}"
            );
        }
    }

    fn manifest() -> Manifest {
        let dir = TempDir::new("env");
        make_pot(&dir.0, "p", "t");
        load_manifest(&dir.0).unwrap()
    }

    fn env_of(
        overrides: &[(&str, &str)],
        pot_id: &str,
    ) -> Result<Vec<(String, String)>, PotstoreError> {
        let overrides = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pot_env(
            &manifest(),
            &overrides,
            pot_id,
            Path::new("/state/pots/p1"),
            Path::new("/store/p"),
            "127.0.0.1:9100",
            7,
        )
    }

    #[test]
    fn env_has_fixed_variables_and_upper_cased_config() {
        let env = env_of(&[], "p1").unwrap();
        let expected = [
            ("HONEYBEE_POT_ID", "p1"),
            ("HONEYBEE_POT_DIR", "/state/pots/p1"),
            ("HONEYBEE_POT_SOURCE", "/store/p"),
            ("HONEYBEE_EVENT_ADDR", "127.0.0.1:9100"),
            ("HONEYBEE_NODE_ID", "7"),
            ("HONEYBEE_CFG_HOSTNAME", "srv04"),
            ("HONEYBEE_CFG_SSH_PORT", "2222"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env, expected);
    }

    #[test]
    fn env_overrides_win_whatever_their_case() {
        let env = env_of(
            &[("SSH_PORT", "22"), ("Hostname", "web1"), ("new_key", "v")],
            "p1",
        )
        .unwrap();
        let get = |name: &str| {
            env.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("HONEYBEE_CFG_SSH_PORT"), ["22"]);
        assert_eq!(get("HONEYBEE_CFG_HOSTNAME"), ["web1"]);
        assert_eq!(get("HONEYBEE_CFG_NEW_KEY"), ["v"]);
        assert_eq!(env.len(), 8);
    }

    #[test]
    fn env_refuses_bad_overrides_and_pot_ids() {
        let e = err(env_of(&[("a=b", "x")], "p1"));
        assert!(e.starts_with("pot p1: config key \"a=b\": must be"), "{e}");
        let e = err(env_of(&[(&"k".repeat(65), "x")], "p1"));
        assert!(e.contains("must be 1-64"), "{e}");
        let e = err(env_of(&[("hostname", "a\0b")], "p1"));
        assert!(e.contains("\"hostname\": value contains a NUL byte"), "{e}");
        let e = err(env_of(&[("port", "1"), ("PORT", "2")], "p1"));
        assert!(e.contains("differ only in case"), "{e}");
        assert!(err(env_of(&[], "../x")).contains("pot id \"../x\""));
    }

    #[test]
    fn pot_ids() {
        for good in ["a", "cowrie-01", "Pot_2.x", &"a".repeat(64)] {
            assert!(valid_pot_id(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "é",
            "a\0",
            &"a".repeat(65),
        ] {
            assert!(!valid_pot_id(bad), "{bad:?}");
        }
    }

    fn args(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn git_clone_arguments() {
        let dest = Path::new("/state/pots/p1/src");
        let cmd = git_clone_command("https://example.org/pot.git", None, dest).unwrap();
        assert_eq!(cmd.get_program(), "git");
        let base = ["-c", "protocol.ext.allow=never", "clone", "--depth", "1"];
        let tail = ["--", "https://example.org/pot.git", "/state/pots/p1/src"];
        assert_eq!(args(&cmd), [&base[..], &tail[..]].concat());
        let prompt = cmd
            .get_envs()
            .find(|(k, _)| *k == "GIT_TERMINAL_PROMPT")
            .and_then(|(_, v)| v);
        assert_eq!(prompt, Some(std::ffi::OsStr::new("0")));
        let cmd = git_clone_command("https://example.org/pot.git", Some("v2"), dest).unwrap();
        assert_eq!(
            args(&cmd),
            [&base[..], &["--branch", "v2"], &tail[..]].concat()
        );
    }

    #[test]
    fn git_clone_refuses_option_like_or_control_characters() {
        let dest = Path::new("/tmp/x");
        let e = err(git_clone_command("--upload-pack=touch /tmp/p", None, dest));
        assert!(
            e.contains("git_url") && e.contains("starts with '-'"),
            "{e}"
        );
        assert!(err(git_clone_command("", None, dest)).contains("git_url is empty"));
        assert!(err(git_clone_command("https://x/\0y", None, dest)).contains("control character"));
        assert!(err(git_clone_command("https://x/y\n", None, dest)).contains("control character"));
        let e = err(git_clone_command("https://x/y", Some("-b"), dest));
        assert!(
            e.contains("git_branch") && e.contains("starts with '-'"),
            "{e}"
        );
        assert!(
            err(git_clone_command("https://x/y", Some("a\tb"), dest)).contains("control character")
        );
    }
}
