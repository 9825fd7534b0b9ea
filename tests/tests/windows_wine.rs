//! The Windows agent (`dist/x86_64-pc-windows-gnu/honeybee-agent.exe`, from
//! `cross/build.sh x86_64-pc-windows-gnu`) in Extension mode under Wine,
//! against the Linux core of the harness, on loopback only.
//!
//! One test, in steps, because a Wine prefix takes seconds to create: the
//! agent (its config in a folder whose name has spaces and non-ASCII
//! letters) enrolls with a token and then registers with TOTP, takes its
//! free ports and skips one a Linux program holds (which keeps answering
//! its owner), fingerprints an SSH and an HTTP probe into
//! `extension.connection` events seen through the REST API, reports a port
//! scan and a flood, keeps the events of a probe made while the core is
//! down and delivers them once it is back, and stops on Ctrl-C. Then the
//! same bounds as on Linux, checked on both builds in the same way: at most
//! 64 connections read at once, at most 4 KiB read from one; and a
//! `FIGURES` line: binary size, start-up time until every port listens, CPU
//! per probe, Windows build under Wine beside the Linux build.
//!
//! Nothing is built here. The `.exe` is `$HONEYBEE_WINDOWS_AGENT` or the
//! one in `dist/` (`$HONEYBEE_DIST_DIR`); Wine is `$HONEYBEE_WINE`, Debian's
//! `/usr/lib/wine/wine64`, or `wine64`/`wine` on PATH. Wine 8 lacks the
//! `ProcessPrng` that Rust's standard library imports, so the test compiles
//! `tests/wine/bcryptprimitives.c` with `x86_64-w64-mingw32-gcc` into a
//! temporary folder beside a copy of the `.exe` (never shipped). When the
//! `.exe`, Wine or the compiler is missing the test says SKIPPED, and fails
//! under CI ([`honeybee_tests::skip`]).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use honeybee_tests::agent_process::{free_ports, listening_on, port_list};
use honeybee_tests::windows::{on_path, root, windows_exe, wine};
use honeybee_tests::{Core, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// Wine starts slowly and its first start in a prefix slower still.
const T: Duration = Duration::from_secs(60);
const TOKEN: &str = "wine-enrollment-token-0123456789";
const TEST: &str = "windows_wine";

/// A Wine prefix of its own with the agent and the shim beside it.
struct Wine {
    wine: PathBuf,
    exe: PathBuf,
    prefix: PathBuf,
    dir: TempDir,
}

impl Wine {
    fn setup() -> Option<Wine> {
        let exe = windows_exe();
        let missing = if !exe.is_file() {
            Some(format!(
                "{} is missing (run cross/build.sh x86_64-pc-windows-gnu)",
                exe.display()
            ))
        } else if wine().is_none() {
            Some("no Wine (Debian: apt-get install wine64)".to_string())
        } else if on_path("x86_64-w64-mingw32-gcc").is_none() {
            Some("no x86_64-w64-mingw32-gcc (Debian: apt-get install gcc-mingw-w64-x86-64)".into())
        } else {
            None
        };
        if let Some(why) = missing {
            honeybee_tests::skip::skip(TEST, &why);
            return None;
        }
        let dir = TempDir::new("honeybee-wine");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        std::fs::copy(&exe, bin.join("honeybee-agent.exe")).expect("copy the exe");
        let src = root().join("tests/wine");
        let out = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-shared", "-O2", "-o"])
            .arg(bin.join("bcryptprimitives.dll"))
            .arg(src.join("bcryptprimitives.c"))
            .arg(src.join("bcryptprimitives.def"))
            .arg("-ladvapi32")
            .output()
            .expect("run x86_64-w64-mingw32-gcc");
        assert!(
            out.status.success(),
            "building the ProcessPrng shim: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let w = Wine {
            wine: wine().expect("wine"),
            exe: bin.join("honeybee-agent.exe"),
            prefix: dir.path().join("prefix"),
            dir,
        };
        // The first run creates the prefix (seconds): not part of any figure.
        let (code, out) = w.run_to_exit(&["--version"]);
        assert_eq!(code, Some(0), "--version under Wine: {out}");
        assert!(out.contains("honeybee-agent "), "{out}");
        Some(w)
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.wine);
        c.arg(&self.exe)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            // Wine reads Unix file names and arguments in the locale's
            // encoding: UTF-8 for the non-ASCII config path.
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env("HONEYBEE_LOG", "debug")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    fn run_to_exit(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.command().args(args).output().expect("run wine");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }
}

/// `Z:\…`: how a Windows program names a Linux path under Wine.
fn win_path(p: &Path) -> String {
    format!("Z:{}", p.display()).replace('/', "\\")
}

/// A running agent (Windows under Wine, or Linux); output in a file, shown
/// when the test fails. Dropping it kills it.
struct Running {
    child: Option<Child>,
    log: PathBuf,
    what: String,
}

impl Running {
    fn spawn(mut cmd: Command, log: PathBuf, what: &str) -> Running {
        let out = File::create(&log).expect("log");
        let err = out.try_clone().expect("log");
        let child = cmd
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        Running {
            child: Some(child),
            log,
            what: what.to_string(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    #[track_caller]
    fn wait<R>(&mut self, what: &str, mut f: impl FnMut() -> Option<R>) -> R {
        let deadline = Instant::now() + T;
        loop {
            if let Some(r) = f() {
                return r;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.what,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not within {T:?}; {} output:\n{}",
                self.what,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` and waits for the exit; the exit status.
    fn stop(&mut self, signal: Signal) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), signal);
        let deadline = Instant::now() + T;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn cpu_secs(&self) -> f64 {
        cpu_secs(self.pid())
    }
}

/// CPU seconds (user + system) process `pid` used so far, from /proc.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command name in parentheses: utime and stime are the 12th
    // and 13th fields.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields
        .get(11..13)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// The wineserver of `prefix`: under Wine the sockets live there, so the
/// work of a probe is shared between it and the agent's process.
fn wineserver_pids(prefix: &Path) -> Vec<u32> {
    let want = format!("WINEPREFIX={}", prefix.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("wineserver"))
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        })
        .collect()
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}\n--- end ---", self.what, self.output());
        }
    }
}

fn node_id(state_dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(state_dir.join("identity.json")).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["node_id"].as_u64()
}

fn identity(state_dir: &Path) -> Value {
    std::fs::read(state_dir.join("identity.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Connects, writes `bytes`, and closes.
fn probe(port: u16, bytes: &[u8]) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect to a tripwire");
    c.write_all(bytes).expect("write the probe");
    let _ = c.shutdown(Shutdown::Write);
    // The agent closes after reading: wait for it, so that probes from
    // one test step never overlap the next.
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = c.read_to_end(&mut Vec::new());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn event_where(core: &Core, event_type: &str, pred: impl Fn(&Value) -> bool) -> Option<Value> {
    core.api()
        .all_events(&[("event_type", event_type)])
        .into_iter()
        .find(|e| pred(&e["data"]))
}

/// The extension config, written to `path`.
fn write_config(path: &Path, core: SocketAddr, state: &Path, ports: &[u16], extra: &str) {
    let text = format!(
        "core = \"{}\"\nstate_dir = '{}'\nname = \"wine-agent\"\nenrollment_token = \"{TOKEN}\"\n\
         heartbeat_interval = 1\n\n[extension]\nports = \"{}\"\nudp_ports = \"\"\nbind = [\"127.0.0.1\"]\n{extra}",
        core,
        win_path(state),
        port_list(ports),
    );
    std::fs::write(path, text).expect("write the agent config");
}

#[test]
fn windows_agent_under_wine_extension_mode_end_to_end() {
    let Some(wine) = Wine::setup() else {
        return;
    };
    let core = Core::builder()
        .args(["--enrollment", "token", "--enrollment-token", TOKEN])
        .start();

    // Full mode is refused with exit status 2, never a crash.
    let (code, out) = wine.run_to_exit(&["full", "--core", "127.0.0.1:9"]);
    assert_eq!(code, Some(2), "full mode under Wine: {out}");
    assert!(
        out.contains("Full mode is not supported on Windows"),
        "{out}"
    );

    // A Linux program holds one of the configured ports.
    let service = TcpListener::bind("127.0.0.1:0").expect("service");
    let held = service.local_addr().expect("addr").port();
    let owner = std::thread::spawn(move || {
        let (mut s, _) = service.accept().expect("accept");
        s.write_all(b"real service\n").expect("write");
    });
    let ports = free_ports(3);
    let (ssh, http, spool) = (ports[0], ports[1], ports[2]);
    let home = wine.dir.path().join("Honey Bee – ü 蜂 files");
    std::fs::create_dir_all(&home).expect("config dir");
    let state = home.join("state dir");
    let config = home.join("agent config ü.toml");
    let mut wanted = ports.clone();
    wanted.push(held);
    // The node port stays across the core's restart below; the restarted
    // `Core` only knows the port it was first given.
    let node_addr = core.node_addr;
    write_config(&config, node_addr, &state, &wanted, "scan_ports = 3\n");
    let mut cmd = wine.command();
    cmd.args(["extension", "--config", &win_path(&config)]);
    let mut agent = Running::spawn(cmd, wine.dir.path().join("agent.log"), "the Windows agent");

    // Enrollment, then TOTP: the key arrives with the first registration.
    let id = agent.wait("identity.json", || node_id(&state));
    agent.wait("the core sees the agent Running", || {
        core.api()
            .node(id)
            .filter(|n| n["status"] == "Running")
            .map(|_| ())
    });
    let node = core.api().node(id).expect("node");
    assert_eq!(node["node_type"], "Agent", "{node}");
    assert_eq!(node["node_name"], "wine-agent", "{node}");
    assert!(
        node["capabilities"].to_string().contains("extension"),
        "{node}"
    );
    agent.wait("the TOTP key in identity.json", || {
        identity(&state)["totp_key"].is_string().then_some(())
    });

    // Its ports, and the Linux program's port left to it.
    for &p in &ports {
        agent.wait(&format!("the agent listens on {p}"), || {
            listening_on(p).then_some(())
        });
    }
    let pot = core
        .api()
        .wait_pot(id, "extension", T, |p| p["details"]["skipped"].is_array());
    let mut taken = ports.clone();
    taken.sort_unstable();
    assert_eq!(pot["details"]["tcp"], serde_json::json!(taken), "{pot}");
    assert_eq!(
        pot["details"]["skipped"],
        serde_json::json!([{"protocol": "tcp", "port": held, "reason": "in use"}]),
        "{pot}"
    );
    let mut c = TcpStream::connect(("127.0.0.1", held)).expect("the held port");
    let mut answer = String::new();
    c.read_to_string(&mut answer).expect("read");
    assert_eq!(answer, "real service\n", "the Linux program still answers");
    owner.join().expect("owner");

    // Probes become fingerprinted events; three ports make a scan.
    probe(ssh, b"SSH-2.0-OpenSSH_9.6 wine-probe\r\n");
    probe(
        http,
        b"GET /wp-login.php HTTP/1.1\r\nHost: ws.example\r\nUser-Agent: wine-test/1\r\n\r\n",
    );
    let e = agent.wait("the SSH probe's event", || {
        event_where(&core, "extension.connection", |d| d["dst_port"] == ssh)
    });
    assert_eq!(e["node_id"], id, "{e}");
    assert_eq!(e["pot_id"], "extension", "{e}");
    assert_eq!(e["data"]["src_ip"], "127.0.0.1", "{e}");
    assert_eq!(e["data"]["protocol"], "ssh", "{e}");
    assert_eq!(
        e["data"]["client_version"], "SSH-2.0-OpenSSH_9.6 wine-probe",
        "{e}"
    );
    let e = agent.wait("the HTTP probe's event", || {
        event_where(&core, "extension.connection", |d| d["dst_port"] == http)
    });
    assert_eq!(e["data"]["protocol"], "http", "{e}");
    assert_eq!(e["data"]["path"], "/wp-login.php", "{e}");
    assert_eq!(e["data"]["user_agent"], "wine-test/1", "{e}");

    // The core goes away; what the agent sees meanwhile waits in its spool.
    let mut core = core;
    let node_port = core.node_addr.port().to_string();
    core.terminate(T);
    let payloads: Vec<String> = (0..3).map(|k| format!("SPOOLED {k}\r\n")).collect();
    for p in &payloads {
        probe(spool, p.as_bytes());
    }
    // Third distinct port of 127.0.0.1 within the window: one scan.
    let core = Core::builder()
        .workspace(core.workspace())
        .args(["--node-port", node_port.as_str()])
        .args(["--enrollment", "token", "--enrollment-token", TOKEN])
        .start();
    for p in &payloads {
        let want = hex(p.as_bytes());
        agent.wait(&format!("the spooled {p:?}"), || {
            event_where(&core, "extension.connection", |d| {
                d["dst_port"] == spool && d["first_bytes"] == want.as_str()
            })
        });
    }
    let spooled = core
        .api()
        .all_events(&[("event_type", "extension.connection")])
        .into_iter()
        .filter(|e| e["data"]["dst_port"] == spool)
        .count();
    assert_eq!(spooled, payloads.len(), "each spooled event once");
    agent.wait("the portscan event", || {
        event_where(&core, "extension.portscan", |d| d["src_ip"] == "127.0.0.1")
    });

    // A small flood from one source becomes a summary.
    for _ in 0..60 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", http)) {
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
        }
    }
    let f = agent.wait("the flood summary", || {
        event_where(&core, "extension.flood", |d| d["src_ip"] == "127.0.0.1")
    });
    assert!(f["data"]["connections"].as_u64().unwrap_or(0) > 0, "{f}");

    // Ctrl-C (Wine turns SIGINT into the console's Ctrl-C): a goodbye to the
    // core and a clean exit.
    let status = agent.stop(Signal::SIGINT);
    assert!(
        status.is_some_and(|s| s.success()),
        "exit on Ctrl-C: {status:?}; output:\n{}",
        agent.output()
    );
    core.api().wait_status(id, "Stopped", T);
    drop(agent);

    bounds_and_figures(&wine, &core, node_addr);
}

/// One build of the agent, for the bounds and the figures.
struct Build<'a> {
    label: &'static str,
    size: u64,
    command: Box<dyn Fn() -> Command + 'a>,
}

/// The same bounds on both builds, then the figures.
fn bounds_and_figures(wine: &Wine, core: &Core, node_addr: SocketAddr) {
    let linux = honeybee_tests::binaries::release_binary("honeybee-agent")
        .map(|p| ("linux (release)", p))
        .unwrap_or_else(|| {
            (
                "linux (debug)",
                honeybee_tests::agent_process::agent_binary(),
            )
        });
    let (linux_label, linux_bin) = linux;
    let builds = [
        Build {
            label: "windows under wine",
            size: std::fs::metadata(&wine.exe).map_or(0, |m| m.len()),
            command: Box::new(|| wine.command()),
        },
        Build {
            label: linux_label,
            size: std::fs::metadata(&linux_bin).map_or(0, |m| m.len()),
            command: Box::new(move || {
                let mut c = Command::new(&linux_bin);
                c.env("HONEYBEE_LOG", "debug").stdin(Stdio::null());
                c
            }),
        },
    ];
    let mut figures = Vec::new();
    for (k, b) in builds.iter().enumerate() {
        let dir = wine.dir.path().join(format!("bounds-{k}"));
        std::fs::create_dir_all(&dir).expect("dir");
        let ports = free_ports(16);
        let windows = k == 0;
        let state = dir.join("state");
        let config = dir.join("agent.toml");
        // Floods are not summarised here: every connection is read, so that
        // the in-flight bound and the CPU per probe are what is measured.
        write_config(
            &config,
            node_addr,
            &state,
            &ports,
            "max_read = 4096\nread_timeout_ms = 20000\nflood_connections = 1000000\nscan_ports = 1000\n",
        );
        let path = if windows {
            win_path(&config)
        } else {
            config.display().to_string()
        };
        let mut cmd = (b.command)();
        cmd.args(["extension", "--config", &path]);
        if !windows {
            // The Linux config names its state dir the Windows way.
            cmd.args(["--state-dir", &state.display().to_string()]);
        }
        let started = Instant::now();
        let mut agent = Running::spawn(cmd, dir.join("agent.log"), b.label);
        agent.wait("every port listening", || {
            ports.iter().all(|&p| listening_on(p)).then_some(())
        });
        let startup = started.elapsed();
        let id = agent.wait("identity.json", || node_id(&state));
        core.api().wait_status(id, "Running", T);

        // 100 silent connections: 64 are read (held open), the rest closed
        // unread at once.
        let port = ports[0];
        let conns: Vec<TcpStream> = (0..100)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        let closed = |c: &TcpStream| {
            let _ = c.set_nonblocking(true);
            match c.peek(&mut [0u8; 1]) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            }
        };
        let shut = agent.wait("36 connections closed unread", || {
            let n = conns.iter().filter(|c| closed(c)).count();
            (n >= 36).then_some(n)
        });
        assert_eq!(
            shut, 36,
            "{}: {shut} of 100 silent connections closed: 64 are read at once",
            b.label
        );
        drop(conns);

        // 64 KiB on one connection: 4 KiB read.
        let big = ports[1];
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", big)) {
            let _ = c.write_all(&vec![b'A'; 64 * 1024]);
        }
        let e = agent.wait("the 4 KiB event", || {
            event_where(core, "extension.connection", |d| d["dst_port"] == big)
        });
        assert_eq!(e["data"]["bytes"], 4096, "{}: {e}", b.label);
        assert_eq!(
            e["data"]["first_bytes"],
            "41".repeat(64),
            "{}: {e}",
            b.label
        );

        // CPU per probe: 200 HTTP probes over the other ports.
        let n = 200;
        let servers = if windows {
            wineserver_pids(&wine.prefix)
        } else {
            Vec::new()
        };
        let used =
            |agent: &Running| agent.cpu_secs() + servers.iter().map(|&p| cpu_secs(p)).sum::<f64>();
        let cpu0 = used(&agent);
        for i in 0..n {
            probe(
                ports[2 + i % (ports.len() - 2)],
                b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: figures\r\n\r\n",
            );
        }
        let cpu = used(&agent) - cpu0;
        let status = agent.stop(Signal::SIGINT);
        assert!(
            status.is_some_and(|s| s.success()),
            "{}: {status:?}",
            b.label
        );
        figures.push(format!(
            "{}: {:.2} MB, start-up to 16 ports listening {} ms, CPU {:.0} µs a probe",
            b.label,
            b.size as f64 / 1e6,
            startup.as_millis(),
            cpu * 1e6 / n as f64
        ));
    }
    // Relative only: Wine (its server's CPU is counted with the agent's) and
    // a debug Linux build are not what runs on a workstation.
    eprintln!("FIGURES windows_wine: {}", figures.join("; "));
}
