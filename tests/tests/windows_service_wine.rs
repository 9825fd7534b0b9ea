//! The Windows agent as a service, under Wine's Service Control Manager and
//! `msiexec`, in a throwaway prefix:
//!
//! - the MSI (`packaging/windows/build-msi.sh`) installs with `msiexec /i
//!   /qn`: the exe in `C:\Program Files\HoneyBee`, the config in
//!   `C:\ProgramData\HoneyBee`, the HoneyBeeAgent service registered
//!   (automatic start, LocalService, `service run`), and its `service
//!   prepare` step ran; `msiexec /x` removes the service and both files;
//! - `honeybee-agent.exe service install` registers it the same way; `service
//!   start` without a config fails, saying so, with service-specific exit
//!   code 2 in `sc query` and the reason in the service's log file; with a
//!   config it runs, takes its port, and `service stop` stops it through the
//!   agent's stop path (exit code 0); `service uninstall` deletes it.
//!
//! Not checked here, because Wine cannot show it: the firewall rule (Wine
//! has no Windows Firewall) and the access lists (Wine does not enforce them
//! on its files); see docs/operations.md. Two Wine differences the test
//! allows for: Wine's services see `%ProgramData%` as `C:\users\Public`
//! (the log line names the folder the service uses), and Wine starts
//! automatic-start services whenever its server starts, so `service start`
//! may find the service already running; and Wine ends services once no
//! other Wine program runs, so a `cmd` runs throughout.
//!
//! Rust's std needs `ProcessPrng`, which Wine 8 lacks: the test's shim
//! (`tests/wine/`) goes into the prefix's `system32`, so that the exe runs
//! from wherever msiexec puts it. Without Wine, mingw, wixl or the `.exe`
//! the test says SKIPPED, and fails under CI ([`honeybee_tests::skip`]).
//! The last test checks the Linux build's refusal.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use honeybee_tests::skip::skip;
use honeybee_tests::windows::{have, root, windows_exe, wine};
use honeybee_tests::TempDir;

const TEST: &str = "windows_service_wine";
const VERSION: &str = env!("CARGO_PKG_VERSION");
const KEY: &str = r"HKLM\System\CurrentControlSet\Services\HoneyBeeAgent";
/// Long enough for a cold Wine prefix; only ever waited out on failure.
const T: Duration = Duration::from_secs(60);

/// `Z:\…`: how a Windows program names a Linux path under Wine.
fn win_path(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

struct Prefix {
    wine: PathBuf,
    prefix: PathBuf,
}

impl Prefix {
    /// Runs `wine ARGS` to its end: exit status and stdout+stderr.
    fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(&self.wine)
            .args(args)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .output()
            .expect("run wine");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    fn drive_c(&self, rel: &str) -> PathBuf {
        self.prefix.join("drive_c").join(rel)
    }

    /// A `C:\…` path of the prefix as a Linux path.
    fn unix(&self, windows: &str) -> PathBuf {
        let rel = windows
            .strip_prefix("C:\\")
            .unwrap_or_else(|| panic!("not on C: {windows}"));
        self.drive_c(&rel.replace('\\', "/"))
    }

    fn registered(&self) -> Option<String> {
        let (code, out) = self.run(&["reg", "query", KEY]);
        (code == Some(0)).then_some(out)
    }

    fn sc_query(&self) -> String {
        self.run(&["sc", "query", "HoneyBeeAgent"]).1
    }

    /// Polls `sc query` until it shows `state` (or [`T`] passes).
    fn wait_state(&self, state: &str) -> String {
        let until = Instant::now() + T;
        loop {
            let q = self.sc_query();
            if q.contains(state) || Instant::now() > until {
                return q;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Killed (with its Wine session) when dropped.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn assert_registration(reg: &str, image: &str) {
    assert!(reg.contains(r"NT AUTHORITY\LocalService"), "{reg}");
    assert!(
        reg.lines()
            .any(|l| l.contains("Start") && l.contains("0x2")),
        "automatic start: {reg}"
    );
    assert!(
        reg.lines()
            .any(|l| l.contains("ImagePath") && l.contains(image) && l.ends_with("service run")),
        "ImagePath {image} … service run: {reg}"
    );
}

#[test]
fn msi_and_service_commands_under_wine() {
    let exe = windows_exe();
    let missing = if !exe.is_file() {
        Some(format!(
            "{} is missing (cross/build.sh x86_64-pc-windows-gnu)",
            exe.display()
        ))
    } else if wine().is_none() {
        Some("no Wine (Debian: apt-get install wine64)".into())
    } else if !have("x86_64-w64-mingw32-gcc") {
        Some("no x86_64-w64-mingw32-gcc (apt-get install gcc-mingw-w64-x86-64)".into())
    } else if !have("wixl") {
        Some("no wixl (apt-get install wixl)".into())
    } else {
        None
    };
    if let Some(why) = missing {
        return skip(TEST, &why);
    }
    let dir = TempDir::new("honeybee-wine-service");
    let w = Prefix {
        wine: wine().expect("wine"),
        prefix: dir.path().join("prefix"),
    };
    // Creates the prefix (seconds).
    let (code, out) = w.run(&["cmd", "/c", "exit"]);
    assert_eq!(code, Some(0), "creating the prefix: {out}");
    let shim = w.drive_c("windows/system32/bcryptprimitives.dll");
    let src = root().join("tests/wine");
    let built = Command::new("x86_64-w64-mingw32-gcc")
        .args(["-shared", "-O2", "-o"])
        .arg(&shim)
        .arg(src.join("bcryptprimitives.c"))
        .arg(src.join("bcryptprimitives.def"))
        .arg("-ladvapi32")
        .output()
        .expect("run x86_64-w64-mingw32-gcc");
    assert!(built.status.success(), "the ProcessPrng shim: {built:?}");
    // Wine ends its services (and services.exe) once no ordinary Wine
    // program runs any more, as after each `wine sc …` here: a `cmd` waiting
    // on its input keeps them alive for the whole test.
    let _holder = Holder(
        Command::new(&w.wine)
            .arg("cmd")
            .env("WINEPREFIX", &w.prefix)
            .env("WINEDEBUG", "-all")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wine cmd"),
    );

    // --- the MSI -----------------------------------------------------------
    let dist = dir.path().join("dist");
    let target = dist.join("x86_64-pc-windows-gnu");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(&exe, target.join("honeybee-agent.exe")).unwrap();
    let out = Command::new(root().join("packaging/windows/build-msi.sh"))
        .env("HONEYBEE_DIST_DIR", &dist)
        .output()
        .expect("build-msi.sh runs");
    assert!(out.status.success(), "build-msi.sh: {out:?}");
    let msi = win_path(&target.join(format!("honeybee-agent-{VERSION}.msi")));

    let (code, out) = w.run(&["msiexec", "/i", &msi, "/qn"]);
    assert_eq!(code, Some(0), "msiexec /i: {out}");
    let installed = w.drive_c("Program Files/HoneyBee/honeybee-agent.exe");
    let config = w.drive_c("ProgramData/HoneyBee/agent.toml");
    assert!(installed.is_file() && config.is_file(), "files installed");
    let reg = w.registered().expect("the MSI registered HoneyBeeAgent");
    assert_registration(&reg, r"C:\Program Files\HoneyBee\honeybee-agent.exe");
    // `service prepare` ran from the installed exe: its folders exist.
    assert!(
        w.drive_c("ProgramData/HoneyBee/state").is_dir(),
        "prepare ran"
    );

    let (code, out) = w.run(&["msiexec", "/x", &msi, "/qn"]);
    assert_eq!(code, Some(0), "msiexec /x: {out}");
    assert!(!installed.exists() && !config.exists(), "files removed");
    assert!(w.registered().is_none(), "service removed");

    // --- service install / start / stop / uninstall ------------------------
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(&exe, bin.join("honeybee-agent.exe")).unwrap();
    let agent = win_path(&bin.join("honeybee-agent.exe"));
    let (code, out) = w.run(&[&agent, "service", "install"]);
    assert_eq!(code, Some(0), "service install: {out}");
    let reg = w.registered().expect("service install registered it");
    assert_registration(&reg, &format!("\"{agent}\""));
    let (code, out) = w.run(&[&agent, "service", "install"]);
    assert_eq!(code, Some(1), "a second install: {out}");
    assert!(out.contains("already installed"), "{out}");

    // No config where the service looks: it says so and stops with 2.
    let (code, out) = w.run(&[&agent, "service", "start"]);
    let q = w.wait_state("STOPPED");
    assert!(
        q.contains("SERVICE_EXIT_CODE  : 2") && q.contains("1066"),
        "start without a config (start said {code:?} {out}): {q}"
    );
    // The service's own folder, from its log line.
    let logs = [
        w.drive_c("users/Public/HoneyBee/logs/agent.log"),
        w.drive_c("ProgramData/HoneyBee/logs/agent.log"),
    ];
    let log_text = || -> String {
        logs.iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    };
    let text = log_text();
    let line = text
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("no config at "))
        .unwrap_or_else(|| panic!("no config error in the log: {text}"));
    let wanted = line
        .split("no config at ")
        .nth(1)
        .and_then(|s| s.split(": put one there").next())
        .unwrap_or_else(|| panic!("config path in {line}"))
        .to_string();
    assert!(wanted.ends_with(r"HoneyBee\agent.toml"), "{wanted}");

    // With a config: running, its port taken, stopped through the SCM.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        w.unix(&wanted),
        format!(
            "mode = \"extension\"\ncore = \"127.0.0.1:1\"\n[extension]\nports = \"{port}\"\n\
             udp_ports = \"\"\nbind = [\"127.0.0.1\"]\n"
        ),
    )
    .unwrap();
    let (code, out) = w.run(&[&agent, "service", "start"]);
    assert!(
        code == Some(0) || out.contains("already running"),
        "service start: {code:?} {out}"
    );
    let q = w.wait_state("RUNNING");
    assert!(q.contains("RUNNING"), "{q}");
    let until = Instant::now() + T;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "port {port} never taken: {}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, out) = w.run(&[&agent, "service", "stop"]);
    assert_eq!(code, Some(0), "service stop: {out}");
    let q = w.wait_state("STOPPED");
    assert!(
        q.contains("STOPPED") && q.contains("WIN32_EXIT_CODE    : 0"),
        "{q}"
    );
    let text = log_text();
    assert!(text.contains("service: stop requested: stopping"), "{text}");
    assert!(text.contains("service: stopped"), "{text}");

    let (code, out) = w.run(&[&agent, "service", "uninstall"]);
    assert_eq!(code, Some(0), "service uninstall: {out}");
    assert!(w.registered().is_none(), "uninstall deleted it");
    let (code, out) = w.run(&[&agent, "service", "start"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not installed"), "{out}");
}

#[test]
fn linux_build_refuses_service() {
    let bin = honeybee_tests::binaries::workspace_binary("honeybee-agent", "HONEYBEE_AGENT_BIN");
    for args in [&["service", "install"][..], &["service", "bogus"][..]] {
        let out = Command::new(&bin).args(args).output().expect("run agent");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let want = if args[1] == "bogus" {
            "usage: honeybee-agent service"
        } else {
            "only on Windows"
        };
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
