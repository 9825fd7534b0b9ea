//! The packages from `packaging/build.sh`: `.deb` (amd64, arm64, armhf) and
//! `.rpm` (x86_64, aarch64, armv7hl) of honeybee-core and honeybee-agent in
//! `dist/packages/` (or `$HONEYBEE_DIST_DIR/packages/`).
//!
//! - lintian finds no errors in the debs (its warnings are printed);
//! - each deb has the expected metadata, files, modes and conffiles, and a
//!   static binary of its architecture;
//! - `rpm -qlp` lists exactly the expected files, with the configs marked
//!   `%config`, no dependency but the scriptlets' tools, `git` recommended;
//! - `systemd-analyze verify` passes on every unit of every package, and the
//!   units carry the hardening the packages promise;
//! - the packaged configs are read by the binaries with the packaged paths;
//! - as root, the amd64 debs install with `dpkg -i`, create the `honeybee`
//!   user, the `honeybee-pot` user pots run as (no shell, no home, not in
//!   group `honeybee`), `/var/lib/honeybee` (0711, root) and one 0700 folder
//!   per service, leave the configs and every service's state unreadable by
//!   `honeybee-pot`, keep an edited conffile on reinstall, and purge
//!   (`dpkg -P`) leaving nothing but the users.
//!
//! When the packages (or lintian, rpm, systemd-analyze, dpkg, root) are
//! missing, a test prints that it skipped and passes, unless
//! `HONEYBEE_REQUIRE_DIST` is set (CI, after `packaging/build.sh`): then it
//! fails and says why.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use honeybee_tests::TempDir;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PACKAGES: [&str; 2] = ["honeybee-core", "honeybee-agent"];

/// deb architecture, rpm architecture, ELF e_machine.
const ARCHES: [(&str, &str, u16); 3] = [
    ("amd64", "x86_64", 0x3e),
    ("arm64", "aarch64", 0xb7),
    ("armhf", "armv7hl", 0x28),
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

fn packages_dir() -> PathBuf {
    match std::env::var_os("HONEYBEE_DIST_DIR") {
        Some(d) => PathBuf::from(d).join("packages"),
        None => repo().join("dist/packages"),
    }
}

fn deb_path(pkg: &str, arch: &str) -> PathBuf {
    packages_dir().join(format!("{pkg}_{VERSION}_{arch}.deb"))
}

fn rpm_path(pkg: &str, arch: &str) -> PathBuf {
    packages_dir().join(format!("{pkg}-{VERSION}-1.{arch}.rpm"))
}

/// Skips (prints why, returns false) or, with `HONEYBEE_REQUIRE_DIST` set,
/// fails.
fn missing(why: String) -> bool {
    honeybee_tests::skip::skip("packaging", &why);
    false
}

/// Whether all twelve packages and `tools` are here.
fn ready(tools: &[(&str, &str)]) -> bool {
    let dir = packages_dir();
    if !dir.is_dir() {
        return missing(format!(
            "{} is missing (run cross/build.sh, then packaging/build.sh)",
            dir.display()
        ));
    }
    let mut absent = Vec::new();
    for pkg in PACKAGES {
        for (deb, rpm, _) in ARCHES {
            for p in [deb_path(pkg, deb), rpm_path(pkg, rpm)] {
                if !p.is_file() {
                    absent.push(p.display().to_string());
                }
            }
        }
    }
    if !absent.is_empty() {
        return missing(format!(
            "packages are missing (run cross/build.sh, then packaging/build.sh): {}",
            absent.join(", ")
        ));
    }
    for (tool, debian_package) in tools {
        if on_path(tool).is_none() {
            return missing(format!(
                "{tool} is not on PATH (Debian: apt-get install {debian_package})"
            ));
        }
    }
    true
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// stdout of a command that must succeed.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn units(pkg: &str) -> &'static [&'static str] {
    match pkg {
        "honeybee-core" => &["honeybee-core.service"],
        _ => &["honeybee-agent.service", "honeybee-extension.service"],
    }
}

fn configs(pkg: &str) -> &'static [&'static str] {
    match pkg {
        "honeybee-core" => &["/etc/honeybee/core.toml", "/etc/honeybee/alerts.toml"],
        _ => &[
            "/etc/honeybee/agent-full.toml",
            "/etc/honeybee/agent-extension.toml",
        ],
    }
}

/// The repo's potstore as packaged paths (files and folders), without
/// dotfiles and `__pycache__`, as packaging/build.sh copies it.
fn potstore_paths() -> BTreeSet<String> {
    fn walk(dir: &Path, rel: &str, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("potstore") {
            let entry = entry.expect("potstore entry");
            let name = entry.file_name().into_string().expect("UTF-8 name");
            if name.starts_with('.') || name == "__pycache__" {
                continue;
            }
            let path = format!("{rel}/{name}");
            out.insert(path.clone());
            if entry.file_type().expect("file type").is_dir() {
                walk(&entry.path(), &path, out);
            }
        }
    }
    let mut out = BTreeSet::from(["/usr/share/honeybee/potstore".to_string()]);
    walk(
        &repo().join("potstore"),
        "/usr/share/honeybee/potstore",
        &mut out,
    );
    out
}

/// Every path the package installs (files and folders of its own).
fn expected_files(pkg: &str, rpm: bool) -> BTreeSet<String> {
    let mut want: BTreeSet<String> = [
        format!("/usr/bin/{pkg}"),
        format!("/usr/share/man/man1/{pkg}.1.gz"),
        "/etc/honeybee".to_string(),
    ]
    .into();
    want.extend(configs(pkg).iter().map(|c| c.to_string()));
    want.extend(
        units(pkg)
            .iter()
            .map(|u| format!("/usr/lib/systemd/system/{u}")),
    );
    if pkg == "honeybee-core" {
        // The alerts module ships with the core.
        want.insert("/usr/bin/honeybee-alerts".into());
        want.insert("/usr/share/man/man1/honeybee-alerts.1.gz".into());
    }
    if pkg == "honeybee-agent" {
        want.insert("/usr/share/honeybee".into());
        want.extend(potstore_paths());
    }
    if rpm {
        want.insert(format!("/usr/share/licenses/{pkg}/copyright"));
        want.insert(format!("/usr/share/licenses/{pkg}/LICENSE"));
        want.insert("/var/lib/honeybee".into());
        want.extend(state_dirs(pkg).iter().map(|(d, _)| d.to_string()));
    } else {
        want.insert(format!("/usr/share/doc/{pkg}/copyright"));
        want.insert(format!("/usr/share/doc/{pkg}/changelog.gz"));
        want.insert(format!("/usr/share/lintian/overrides/{pkg}"));
    }
    want
}

/// The state folders of `pkg` and who owns them (mode 0700).
fn state_dirs(pkg: &str) -> &'static [(&'static str, &'static str)] {
    match pkg {
        "honeybee-core" => &[("/var/lib/honeybee/core", "honeybee")],
        _ => &[
            ("/var/lib/honeybee/agent", "root"),
            ("/var/lib/honeybee/extension", "honeybee"),
        ],
    }
}

/// The ELF machine of `bin`, and whether it asks for a program interpreter
/// (PT_INTERP: dynamically linked).
fn elf(bin: &Path) -> (u16, bool) {
    let b = std::fs::read(bin).expect("read binary");
    assert_eq!(&b[..4], b"\x7fELF", "{} is not ELF", bin.display());
    assert_eq!(b[5], 1, "{}: not little-endian", bin.display());
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let machine = u16_at(18);
    let (phoff, phentsize, phnum) = match b[4] {
        2 => (
            u64_at(32) as usize,
            u16_at(54) as usize,
            u16_at(56) as usize,
        ),
        _ => (
            u32_at(28) as usize,
            u16_at(42) as usize,
            u16_at(44) as usize,
        ),
    };
    let interp = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == 3);
    (machine, interp)
}

/// A deb unpacked into a temporary folder.
fn unpack(deb: &Path) -> TempDir {
    let dir = TempDir::new("honeybee-deb");
    ok("dpkg-deb", &["-x", s(deb), s(dir.path())]);
    dir
}

#[test]
fn lintian_finds_no_errors_in_the_debs() {
    if !ready(&[("lintian", "lintian")]) {
        return;
    }
    let mut args = vec!["--tag-display-limit".to_string(), "0".to_string()];
    for pkg in PACKAGES {
        for (deb, _, _) in ARCHES {
            args.push(deb_path(pkg, deb).display().to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run("lintian", &args);
    let text = String::from_utf8_lossy(&out.stdout);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
    let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("W:")).collect();
    eprintln!("lintian warnings: {}", warnings.len());
    for w in &warnings {
        eprintln!("  {w}");
    }
    assert!(
        errors.is_empty(),
        "lintian errors:\n{}\n{}",
        errors.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    // lintian exits non-zero on errors, or when it could not check at all.
    assert!(
        out.status.success(),
        "lintian failed ({}):\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn debs_carry_their_metadata_files_and_a_static_binary_of_their_arch() {
    if !ready(&[("dpkg-deb", "dpkg")]) {
        return;
    }
    let homepage = "https://github.com/honeybee/honeybee";
    for pkg in PACKAGES {
        for (arch, _, machine) in ARCHES {
            let deb = deb_path(pkg, arch);
            let field = |f: &str| ok("dpkg-deb", &["-f", s(&deb), f]).trim().to_string();
            assert_eq!(field("Package"), pkg);
            assert_eq!(field("Version"), VERSION);
            assert_eq!(field("Architecture"), arch);
            assert_eq!(field("Homepage"), homepage);
            // The maintainer scripts' adduser; nothing for the binaries.
            assert_eq!(field("Depends"), "adduser", "{}", deb.display());
            assert_eq!(field("Pre-Depends"), "");
            let recommends = if pkg == "honeybee-agent" { "git" } else { "" };
            assert_eq!(field("Recommends"), recommends, "{}", deb.display());
            assert!(!field("Description").is_empty());

            let conffiles = ok("dpkg-deb", &["-I", s(&deb), "conffiles"]);
            let conffiles: Vec<&str> = conffiles.lines().collect();
            assert_eq!(conffiles, configs(pkg), "{}", deb.display());

            let dir = unpack(&deb);
            let root = dir.path();
            let mut have = BTreeSet::new();
            let mut stack = vec![root.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
                    if p.is_dir() {
                        stack.push(p);
                        // Only folders of our own: not /usr, /usr/share, …
                        if !(rel.contains("honeybee") || rel.ends_with("/potstore")) {
                            continue;
                        }
                        if rel.starts_with("/usr/share/doc/")
                            || rel.starts_with("/usr/share/licenses/")
                        {
                            continue;
                        }
                    }
                    have.insert(rel);
                }
            }
            assert_eq!(have, expected_files(pkg, false), "{}", deb.display());

            let bin = root.join("usr/bin").join(pkg);
            let mode = std::fs::metadata(&bin).unwrap().permissions().mode();
            assert_eq!(mode & 0o7777, 0o755, "{}", bin.display());
            let (m, interp) = elf(&bin);
            assert_eq!(m, machine, "{} in {}", bin.display(), deb.display());
            assert!(
                !interp,
                "{} in {} is dynamically linked",
                pkg,
                deb.display()
            );

            // Every file root:root (dpkg-deb --root-owner-group); the
            // potstore's install/start scripts executable.
            let listing = ok("dpkg-deb", &["-c", s(&deb)]);
            for line in listing.lines() {
                assert!(line.contains(" root/root "), "{line}");
                if line.ends_with("/install") || line.ends_with("/start") {
                    assert!(line.starts_with("-rwxr-xr-x"), "{line}");
                }
            }
            let mut scripts = Vec::new();
            for script in ["postinst", "prerm", "postrm"] {
                let text = ok("dpkg-deb", &["-I", s(&deb), script]);
                let path = root.join(script);
                std::fs::write(&path, &text).unwrap();
                ok("sh", &["-n", s(&path)]);
                scripts.push(text);
            }
            assert!(scripts[0].contains("adduser --system"), "postinst");
            // Both packages' postinst is one template: the pot user is
            // made by the agent's only, as the test of the install shows.
            assert!(scripts[0].contains("honeybee-pot"), "postinst");
            assert!(scripts[2].contains("deb-systemd-helper purge"), "postrm");
        }
    }
}

#[test]
fn rpms_list_the_expected_files() {
    if !ready(&[("rpm", "rpm")]) {
        return;
    }
    for pkg in PACKAGES {
        for (_, arch, _) in ARCHES {
            let rpm = rpm_path(pkg, arch);
            let p = s(&rpm);
            let files: BTreeSet<String> =
                ok("rpm", &["-qlp", p]).lines().map(String::from).collect();
            assert_eq!(files, expected_files(pkg, true), "rpm -qlp {p}");

            let info = ok(
                "rpm",
                &[
                    "-qp",
                    "--qf",
                    "%{NAME} %{VERSION} %{ARCH} %{LICENSE} %{URL}",
                    p,
                ],
            );
            assert_eq!(
                info,
                format!("{pkg} {VERSION} {arch} Apache-2.0 https://github.com/honeybee/honeybee")
            );
            let config: Vec<String> = ok("rpm", &["-qp", "--configfiles", p])
                .lines()
                .map(String::from)
                .collect();
            let mut want: Vec<String> = configs(pkg).iter().map(|c| c.to_string()).collect();
            want.sort();
            assert_eq!(config, want, "%config files of {p}");

            // Modes and owners: configs root:honeybee 0640, /var/lib/honeybee
            // 0711 root (pots pass through), each service's folder 0700.
            let long = ok("rpm", &["-qlvp", p]);
            for line in long.lines() {
                let path = line.rsplit(' ').next().unwrap();
                let want = if configs(pkg).contains(&path) {
                    Some(("-rw-r-----", "root", "honeybee"))
                } else if path == "/var/lib/honeybee" {
                    Some(("drwx--x--x", "root", "root"))
                } else if let Some((_, owner)) = state_dirs(pkg).iter().find(|(d, _)| *d == path) {
                    Some(("drwx------", *owner, *owner))
                } else if path == format!("/usr/bin/{pkg}") {
                    Some(("-rwxr-xr-x", "root", "root"))
                } else {
                    None
                };
                if let Some((mode, user, group)) = want {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    assert_eq!((f[0], f[2], f[3]), (mode, user, group), "{line}");
                }
            }

            // No library or interpreter dependencies: only what the
            // scriptlets run, and rpm's own features.
            for req in ok("rpm", &["-qp", "--requires", p]).lines() {
                assert!(
                    req.starts_with("rpmlib(")
                        || [
                            "/bin/sh",
                            "/usr/sbin/useradd",
                            "/usr/sbin/groupadd",
                            "/usr/bin/getent"
                        ]
                        .contains(&req),
                    "{p} requires {req}"
                );
            }
            let recommends = ok("rpm", &["-qp", "--recommends", p]);
            let want = if pkg == "honeybee-agent" { "git\n" } else { "" };
            assert_eq!(recommends, want, "{p}");

            let scripts = ok("rpm", &["-qp", "--scripts", p]);
            assert!(scripts.contains("useradd -r"), "{scripts}");
            assert!(
                scripts.contains("-s /sbin/nologin -c \"HoneyBee pots\" honeybee-pot"),
                "{scripts}"
            );
            for unit in units(pkg) {
                assert!(scripts.contains(unit), "{scripts}");
            }
        }
    }
}

/// Checks a unit's text: the command, the user, the hardening.
fn check_unit(unit: &str, text: &str) {
    let has = |line: &str| text.lines().any(|l| l.trim() == line);
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/honeybee",
        "Restart=on-failure",
        "WantedBy=multi-user.target",
    ] {
        assert!(has(line), "{unit} lacks {line}");
    }
    let (exec, user, ambient) = match unit {
        "honeybee-core.service" => (
            "ExecStart=/usr/bin/honeybee-core --config /etc/honeybee/core.toml",
            Some("User=honeybee"),
            None,
        ),
        "honeybee-agent.service" => (
            "ExecStart=/usr/bin/honeybee-agent full --config /etc/honeybee/agent-full.toml",
            None,
            None,
        ),
        _ => (
            "ExecStart=/usr/bin/honeybee-agent extension --config /etc/honeybee/agent-extension.toml",
            Some("User=honeybee"),
            Some("AmbientCapabilities=CAP_NET_BIND_SERVICE"),
        ),
    };
    assert!(has(exec), "{unit} lacks {exec}");
    match user {
        Some(u) => assert!(has(u), "{unit} lacks {u}"),
        // The Full agent runs as root and starts its pots as honeybee.
        None => assert!(!text.contains("\nUser="), "{unit} sets a User"),
    }
    let amb: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("AmbientCapabilities="))
        .collect();
    match ambient {
        Some(a) => assert_eq!(amb, [a], "{unit}"),
        None => assert!(
            amb.iter().all(|l| l.trim() == "AmbientCapabilities="),
            "{unit}: {amb:?}"
        ),
    }
}

/// `systemd-analyze verify` on `unit_files`: success and not a word on
/// stderr (unknown keys are only warned about).
fn verify(unit_files: &[PathBuf]) {
    let mut args = vec!["verify", "--man=no"];
    args.extend(unit_files.iter().map(|p| s(p)));
    let out = run("systemd-analyze", &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze {args:?} ({}):\n{err}",
        out.status
    );
}

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    if !ready(&[("dpkg-deb", "dpkg"), ("systemd-analyze", "systemd")]) {
        return;
    }
    for pkg in PACKAGES {
        for (arch, _, _) in ARCHES {
            let dir = unpack(&deb_path(pkg, arch));
            let root = dir.path();
            let mut files = Vec::new();
            for unit in units(pkg) {
                let text = std::fs::read_to_string(root.join("usr/lib/systemd/system").join(unit))
                    .expect("unit file");
                check_unit(unit, &text);
                // The unit as packaged, but running the unpacked binary (which
                // verify checks is executable): /usr/bin may not have it.
                let bin = root.join("usr/bin");
                let copy = root.join(unit);
                std::fs::write(
                    &copy,
                    text.replace("ExecStart=/usr/bin/", &format!("ExecStart={}/", s(&bin))),
                )
                .unwrap();
                files.push(copy);
            }
            verify(&files);
        }
    }
}

#[test]
fn the_packaged_configs_are_read_with_the_packaged_paths() {
    if !ready(&[("dpkg-deb", "dpkg")]) {
        return;
    }
    let core = unpack(&deb_path("honeybee-core", "amd64"));
    let agent = unpack(&deb_path("honeybee-agent", "amd64"));
    let print = |dir: &TempDir, bin: &str, args: &[&str]| {
        let bin = dir.path().join("usr/bin").join(bin);
        ok(s(&bin), args)
    };
    let c = core.path().join("etc/honeybee/core.toml");
    let text = print(
        &core,
        "honeybee-core",
        &["--config", s(&c), "--print-config"],
    );
    assert!(
        text.contains("data_dir = \"/var/lib/honeybee/core\""),
        "{text}"
    );
    // The alerts module's config checks as packaged, with its state and
    // ECS file in the core's own folder.
    let a = core.path().join("etc/honeybee/alerts.toml");
    let text = std::fs::read_to_string(&a).expect("packaged alerts.toml");
    assert!(
        text.contains("state_dir = \"/var/lib/honeybee/core/alerts\""),
        "{text}"
    );
    assert!(
        text.contains("path = \"/var/lib/honeybee/core/alerts/alerts.ecs.json\""),
        "{text}"
    );
    print(&core, "honeybee-alerts", &["--check-config", s(&a)]);
    for (mode, file, state) in [
        ("full", "agent-full.toml", "/var/lib/honeybee/agent"),
        (
            "extension",
            "agent-extension.toml",
            "/var/lib/honeybee/extension",
        ),
    ] {
        let c = agent.path().join("etc/honeybee").join(file);
        let text = print(
            &agent,
            "honeybee-agent",
            &[mode, "--config", s(&c), "--print-config"],
        );
        assert!(
            text.contains(&format!("state_dir = \"{state}\"")),
            "{file}: {text}"
        );
        assert!(
            text.contains("potstore = \"/usr/share/honeybee/potstore\""),
            "{file}: {text}"
        );
    }
    // The packaged catalogue is readable by the agent.
    let store = agent.path().join("usr/share/honeybee/potstore");
    let list = print(
        &agent,
        "honeybee-agent",
        &["potstore", "list", "--potstore", s(&store)],
    );
    assert!(list.contains("native-telnet"), "{list}");
}

/// What dpkg knows of `pkg`: its `Status`, or empty when nothing.
fn dpkg_status(pkg: &str) -> String {
    let out = run("dpkg-query", &["-W", "-f", "${Status}", pkg]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn user_exists(name: &str) -> bool {
    run("getent", &["passwd", name]).status.success()
}

/// Puts the machine back as the install test found it, even when the test
/// fails half-way: packages purged, the folders they use (absent before the
/// test) removed, and the honeybee user gone again if the test made it.
struct Restore {
    user_was_there: bool,
    pot_user_was_there: bool,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = run("dpkg", &["-P", "honeybee-agent", "honeybee-core"]);
        for dir in ["/var/lib/honeybee", "/etc/honeybee", "/usr/share/honeybee"] {
            let _ = std::fs::remove_dir_all(dir);
        }
        for (user, was_there) in [
            ("honeybee", self.user_was_there),
            ("honeybee-pot", self.pot_user_was_there),
        ] {
            if !was_there && user_exists(user) {
                let out = run("userdel", &[user]);
                let _ = run("groupdel", &[user]);
                eprintln!(
                    "removed the {user} user the test created ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
    }
}

#[test]
fn the_amd64_debs_install_create_the_user_and_state_dir_and_purge_cleanly() {
    if !ready(&[("dpkg", "dpkg"), ("systemd-analyze", "systemd")]) {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        missing("installing packages needs root".into());
        return;
    }
    for pkg in PACKAGES {
        let status = dpkg_status(pkg);
        if !status.is_empty() && status != "unknown ok not-installed" {
            missing(format!(
                "{pkg} is already known to dpkg ({status}): not touching it"
            ));
            return;
        }
    }
    for path in ["/var/lib/honeybee", "/etc/honeybee", "/usr/share/honeybee"] {
        if Path::new(path).exists() {
            missing(format!("{path} exists already: not touching it"));
            return;
        }
    }
    let restore = Restore {
        user_was_there: user_exists("honeybee"),
        pot_user_was_there: user_exists("honeybee-pot"),
    };
    let core = deb_path("honeybee-core", "amd64");
    let agent = deb_path("honeybee-agent", "amd64");
    let install = || ok("dpkg", &["-i", "--force-confold", s(&core), s(&agent)]);
    install();

    // The user: a system account whose home is the state dir, no login.
    let pw = ok("getent", &["passwd", "honeybee"]);
    let f: Vec<&str> = pw.trim().split(':').collect();
    let uid: u32 = f[2].parse().unwrap();
    let gid: u32 = f[3].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "not a system user: {pw}");
    assert_eq!(f[5], "/var/lib/honeybee", "{pw}");
    assert!(f[6].ends_with("nologin") || f[6].ends_with("false"), "{pw}");
    let group = ok("getent", &["group", "honeybee"]);
    assert!(group.contains(&format!(":{gid}:")), "{group}");

    // The pot user: a system account of its own group, not in honeybee,
    // no login, no home.
    let pot_pw = ok("getent", &["passwd", "honeybee-pot"]);
    let f: Vec<&str> = pot_pw.trim().split(':').collect();
    let pot_uid: u32 = f[2].parse().unwrap();
    let pot_gid: u32 = f[3].parse().unwrap();
    assert!(pot_uid > 0 && pot_uid < 1000, "not a system user: {pot_pw}");
    assert!(
        pot_uid != uid && pot_gid != gid,
        "{pot_pw} shares with honeybee"
    );
    assert!(f[6].ends_with("nologin"), "{pot_pw}");
    assert!(
        !Path::new(f[5]).exists(),
        "honeybee-pot has a home: {pot_pw}"
    );
    let members = group.trim().rsplit(':').next().unwrap_or_default();
    assert!(
        !members.split(',').any(|m| m == "honeybee-pot"),
        "honeybee-pot is in group honeybee: {group}"
    );

    let check_installed = || {
        let state = std::fs::metadata("/var/lib/honeybee").expect("/var/lib/honeybee");
        assert!(state.is_dir());
        assert_eq!(state.mode() & 0o7777, 0o711, "/var/lib/honeybee mode");
        assert_eq!(
            (state.uid(), state.gid()),
            (0, 0),
            "/var/lib/honeybee owner"
        );
        for pkg in PACKAGES {
            for (dir, owner) in state_dirs(pkg) {
                let m = std::fs::metadata(dir).expect(dir);
                assert_eq!(m.mode() & 0o7777, 0o700, "{dir} mode");
                let want = if *owner == "root" { (0, 0) } else { (uid, gid) };
                assert_eq!((m.uid(), m.gid()), want, "{dir} owner");
            }
        }
        for pkg in PACKAGES {
            for c in configs(pkg) {
                let m = std::fs::metadata(c).expect(c);
                assert_eq!(m.mode() & 0o7777, 0o640, "{c} mode");
                assert_eq!((m.uid(), m.gid()), (0, gid), "{c} owner");
            }
            let v = ok(&format!("/usr/bin/{pkg}"), &["--version"]);
            assert_eq!(v.trim(), format!("{pkg} {VERSION}"));
        }
        let installed: Vec<PathBuf> = PACKAGES
            .iter()
            .flat_map(|p| units(p).iter())
            .map(|u| Path::new("/usr/lib/systemd/system").join(u))
            .collect();
        verify(&installed);
        let list = ok("/usr/bin/honeybee-agent", &["potstore", "list"]);
        assert!(list.contains("native-telnet"), "{list}");
    };
    check_installed();

    // A run leaves state behind; an admin edits a config.
    for (dir, file) in [
        ("/var/lib/honeybee/core", "honeybee.db"),
        ("/var/lib/honeybee/agent", "identity.json"),
        ("/var/lib/honeybee/extension", "identity.json"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(Path::new(dir).join(file), "{}").unwrap();
    }
    let edited = "\n# edited by the packaging test\n";
    let mut text = std::fs::read_to_string("/etc/honeybee/core.toml").unwrap();
    text.push_str(edited);
    std::fs::write("/etc/honeybee/core.toml", &text).unwrap();

    // Installed again (as an upgrade would be): the user is not made
    // twice, the edit and the state stay.
    install();
    check_installed();
    // What a pot could reach, as honeybee-pot with its real groups: none of
    // the configs (an enrollment token) nor any service's state (the core's
    // database and API token, the agents' TOTP keys).
    let mut secrets: Vec<&str> = PACKAGES
        .iter()
        .flat_map(|p| configs(p).iter().copied())
        .collect();
    secrets.extend([
        "/var/lib/honeybee/core/honeybee.db",
        "/var/lib/honeybee/agent/identity.json",
        "/var/lib/honeybee/extension/identity.json",
    ]);
    for path in secrets {
        assert!(Path::new(path).exists(), "{path}");
        let out = run(
            "setpriv",
            &[
                "--reuid=honeybee-pot",
                "--regid=honeybee-pot",
                "--init-groups",
                "cat",
                path,
            ],
        );
        assert!(!out.status.success(), "honeybee-pot can read {path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Permission denied"), "{path}: {err}");
    }
    let kept = std::fs::read_to_string("/etc/honeybee/core.toml").unwrap();
    assert!(kept.ends_with(edited), "the edited conffile was replaced");
    assert!(Path::new("/var/lib/honeybee/core/honeybee.db").exists());
    assert_eq!(
        ok("getent", &["passwd", "honeybee"]),
        pw,
        "the user changed on reinstall"
    );

    // Removed: the configs and the state stay until purge.
    ok("dpkg", &["-r", "honeybee-agent"]);
    assert_eq!(dpkg_status("honeybee-agent"), "deinstall ok config-files");
    assert!(Path::new("/etc/honeybee/agent-full.toml").exists());
    assert!(Path::new("/var/lib/honeybee/agent/identity.json").exists());
    assert!(!Path::new("/usr/bin/honeybee-agent").exists());
    // Purged: the agent's state goes, the core's stays while it is installed.
    ok("dpkg", &["-P", "honeybee-agent"]);
    assert!(!Path::new("/var/lib/honeybee/agent").exists());
    assert!(!Path::new("/var/lib/honeybee/extension").exists());
    assert!(!Path::new("/etc/honeybee/agent-full.toml").exists());
    assert!(Path::new("/var/lib/honeybee/core/honeybee.db").exists());
    ok("dpkg", &["-P", "honeybee-core"]);

    // Nothing left but the user (policy: a uid is never reused).
    for pkg in PACKAGES {
        let status = dpkg_status(pkg);
        assert!(
            status.is_empty() || status == "unknown ok not-installed",
            "{pkg}: {status}"
        );
    }
    let mut left = Vec::new();
    for path in [
        "/var/lib/honeybee",
        "/etc/honeybee",
        "/usr/share/honeybee",
        "/usr/bin/honeybee-core",
        "/usr/bin/honeybee-agent",
        "/usr/share/doc/honeybee-core",
        "/usr/share/doc/honeybee-agent",
        "/usr/share/man/man1/honeybee-core.1.gz",
        "/usr/share/man/man1/honeybee-agent.1.gz",
        "/usr/share/lintian/overrides/honeybee-core",
        "/usr/share/lintian/overrides/honeybee-agent",
    ] {
        if Path::new(path).exists() {
            left.push(path.to_string());
        }
    }
    for dir in [
        "/usr/lib/systemd/system",
        "/etc/systemd/system",
        "/etc/systemd/system/multi-user.target.wants",
        "/var/lib/systemd/deb-systemd-helper-enabled",
        "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants",
        "/var/lib/systemd/deb-systemd-helper-masked",
        "/var/lib/dpkg/info",
    ] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains("honeybee") {
                    left.push(format!("{dir}/{name}"));
                }
            }
        }
    }
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert!(user_exists("honeybee"), "purge removed the honeybee user");
    assert!(
        user_exists("honeybee-pot"),
        "purge removed the honeybee-pot user"
    );
    drop(restore);
}
