//! Smoke tests of the static ARM builds from `cross/build.sh`, run under
//! qemu-user on this machine: the aarch64 and armv7 agents, in Full mode
//! (an event sent through the event port) and in Extension mode (one TCP
//! probe on a port it took), register with the x86_64 core of the harness on
//! loopback and deliver; the aarch64 and armv7 cores start and answer
//! `/health` (and an authenticated API call, which reads their SQLite).
//!
//! The binaries are `dist/<target>/honeybee-{agent,core}` (or under
//! `$HONEYBEE_DIST_DIR`). When they or qemu are missing, each test prints
//! that it skipped and passes, unless `HONEYBEE_REQUIRE_DIST` is set (CI
//! sets it after running `cross/build.sh`): then it fails and says why.
//!
//! qemu is run explicitly (`qemu-aarch64-static BINARY …`): binfmt_misc is
//! not available in every container.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use honeybee_tests::agent_process::{cowrie_line, free_port, listening_on, send_events};
use honeybee_tests::http::request;
use honeybee_tests::{Api, Core, TempDir};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// Everything under emulation is slow: start-up, TLS-free registration and
/// delivery each get this long.
const T: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
struct Arch {
    target: &'static str,
    qemu: [&'static str; 2],
}

const AARCH64: Arch = Arch {
    target: "aarch64-unknown-linux-musl",
    qemu: ["qemu-aarch64-static", "qemu-aarch64"],
};
const ARMV7: Arch = Arch {
    target: "armv7-unknown-linux-musleabihf",
    qemu: ["qemu-arm-static", "qemu-arm"],
};

fn dist_dir() -> PathBuf {
    match std::env::var_os("HONEYBEE_DIST_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist"),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The emulator and the binary `name` for `arch`, or `None` (the test is
/// skipped) when either is missing and `HONEYBEE_REQUIRE_DIST` is unset.
fn emulated(arch: Arch, name: &str) -> Option<(PathBuf, PathBuf)> {
    let bin = dist_dir().join(arch.target).join(name);
    let qemu = arch.qemu.iter().find_map(|q| on_path(q));
    let missing = match (&qemu, bin.is_file()) {
        (Some(_), true) => None,
        (None, _) => Some(format!(
            "no {} or {} on PATH (Debian: apt-get install qemu-user-static)",
            arch.qemu[0], arch.qemu[1]
        )),
        (Some(_), false) => Some(format!(
            "{} is missing (run cross/build.sh {})",
            bin.display(),
            arch.target
        )),
    };
    match missing {
        None => Some((qemu.expect("qemu"), bin)),
        Some(why) => {
            honeybee_tests::skip::skip("cross_smoke", &why);
            None
        }
    }
}

/// A binary running under qemu; its stdout and stderr go to a file, printed
/// when the test panics. Dropping it sends SIGTERM, then SIGKILL after 10 s.
struct Emulated {
    child: Option<Child>,
    what: String,
    log: PathBuf,
}

impl Emulated {
    fn spawn(qemu: &Path, bin: &Path, args: &[String], dir: &Path, tag: &str) -> Emulated {
        let log = dir.join(format!("{tag}.log"));
        let out = File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log");
        let child = Command::new(qemu)
            .arg(bin)
            .args(args)
            .current_dir(dir)
            .env("HONEYBEE_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {} {}: {e}", qemu.display(), bin.display()));
        Emulated {
            child: Some(child),
            what: format!("{} {} {args:?}", qemu.display(), bin.display()),
            log,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with the output) if the process has exited.
    #[track_caller]
    fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "{} exited ({status}); output:\n{}",
                self.what,
                self.output()
            );
        }
    }

    /// Calls `f` every 100 ms until it returns `Some`, failing fast if the
    /// process exits and after `T`.
    #[track_caller]
    fn wait<R>(&mut self, what: &str, mut f: impl FnMut() -> Option<R>) -> R {
        let deadline = Instant::now() + T;
        loop {
            if let Some(r) = f() {
                return r;
            }
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{what}: not within {T:?} under qemu; {} output:\n{}",
                self.what,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM and a clean exit within 20 s.
    #[track_caller]
    fn terminate(mut self) {
        let mut child = self.child.take().expect("running");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} ignored SIGTERM; output:\n{}", self.what, self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.success(),
            "{} exited with {status} on SIGTERM; output:\n{}",
            self.what,
            self.output()
        );
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} ---\n{}\n--- end ---", self.what, self.output());
        }
    }
}

fn s(v: impl ToString) -> String {
    v.to_string()
}

fn node_id(state_dir: &Path) -> Option<u64> {
    let bytes = std::fs::read(state_dir.join("identity.json")).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["node_id"].as_u64()
}

/// Starts the `arch` agent in `mode` for `core`, waits until the core shows
/// it Running, and checks the node the core sees.
fn agent(
    core: &Core,
    (qemu, bin): &(PathBuf, PathBuf),
    arch: Arch,
    mode: &str,
    extra: &[String],
    ready: impl Fn() -> bool,
) -> (Emulated, u64) {
    let ws = core.workspace();
    let state = ws.path().join(format!("state-{mode}"));
    let name = format!("qemu-{}-{mode}", arch.target);
    let mut args = vec![
        s(mode),
        s("--core"),
        s(core.node_addr),
        s("--state-dir"),
        s(state.display()),
        s("--name"),
        name.clone(),
        s("--heartbeat-interval"),
        s(1),
    ];
    args.extend_from_slice(extra);
    let mut a = Emulated::spawn(qemu, bin, &args, ws.path(), &format!("agent-{mode}"));
    a.wait("the agent listens", || ready().then_some(()));
    let id = a.wait("identity.json", || node_id(&state));
    a.wait("the core sees the agent Running", || {
        core.api()
            .node(id)
            .filter(|n| n["status"] == "Running")
            .map(|_| ())
    });
    let node = core.api().node(id).expect("node");
    // A Full agent registers as a Full node, Extension mode as an Agent.
    let node_type = if mode == "full" { "Full" } else { "Agent" };
    assert_eq!(node["node_type"], node_type, "{node}");
    assert_eq!(node["node_name"], name.as_str(), "{node}");
    assert_eq!(
        node["capabilities"].to_string().contains("extension"),
        mode == "extension",
        "{node}"
    );
    (a, id)
}

fn full_mode_delivers_an_event(arch: Arch) {
    let Some(emu) = emulated(arch, "honeybee-agent") else {
        return;
    };
    let core = Core::start();
    let store = honeybee_tests::TestPotstore::new(core.workspace().path().join("potstore"))
        .with(honeybee_tests::TestPot::sleeper("relay"));
    let potstore = store.path().to_path_buf();
    let port = free_port();
    let extra = [
        s("--potstore"),
        s(potstore.display()),
        s("--event-port"),
        s(port),
    ];
    let (mut agent, id) = agent(&core, &emu, arch, "full", &extra, || listening_on(port));
    let line = cowrie_line("qemu-pot", "cowrie.login.failed", "203.0.113.9", 7);
    // Written by the test as the pot `qemu-pot` the agent started.
    let token =
        honeybee_tests::test_pot::start_token_pot(core.api(), id, &store, "relay", "qemu-pot");
    send_events(SocketAddr::from(([127, 0, 0, 1], port)), &token, &[line]);
    let node = s(id);
    let e = agent.wait("the event in GET /api/v1/events", || {
        core.api()
            .all_events(&[("node_id", node.as_str())])
            .into_iter()
            .find(|e| e["event_type"] == "cowrie.login.failed")
    });
    assert_eq!(e["pot_id"], "qemu-pot", "{e}");
    assert_eq!(e["data"]["src_ip"], "203.0.113.9", "{e}");
    assert_eq!(e["data"]["n"], 7, "{e}");
    agent.terminate();
    core.api().wait_status(id, "Stopped", T);
}

fn extension_mode_reports_a_probe(arch: Arch) {
    let Some(emu) = emulated(arch, "honeybee-agent") else {
        return;
    };
    let core = Core::start();
    let port = free_port();
    let extra = [
        s("--ports"),
        s(port),
        s("--udp-ports"),
        s(""),
        s("--bind"),
        s("127.0.0.1"),
    ];
    let (mut agent, _id) = agent(&core, &emu, arch, "extension", &extra, || {
        listening_on(port)
    });
    let mut probe = TcpStream::connect(("127.0.0.1", port)).expect("connect to the tripwire");
    std::io::Write::write_all(&mut probe, b"HELLO qemu\r\n").expect("write");
    drop(probe);
    let e = agent.wait("the extension.connection event", || {
        core.api()
            .all_events(&[("event_type", "extension.connection")])
            .into_iter()
            .find(|e| e["data"]["dst_port"] == port)
    });
    assert_eq!(e["data"]["src_ip"], "127.0.0.1", "{e}");
    assert_eq!(e["data"]["first_bytes"], "48454c4c4f2071656d750d0a", "{e}");
    agent.terminate();
}

fn core_answers_health(arch: Arch) {
    let Some((qemu, bin)) = emulated(arch, "honeybee-core") else {
        return;
    };
    let ws = TempDir::new("honeybee-qemu-core");
    let [node, api, stream] = [free_port(), free_port(), free_port()];
    let token = format!("qemu-token-{:016x}", honeybee_tests::random_u64());
    let args = [
        s("--data-dir"),
        s(ws.path().join("data").display()),
        s("--bind"),
        s("127.0.0.1"),
        s("--node-port"),
        s(node),
        s("--api-port"),
        s(api),
        s("--stream-port"),
        s(stream),
        s("--api-token"),
        token.clone(),
    ];
    let mut c = Emulated::spawn(&qemu, &bin, &args, ws.path(), "core");
    let addr = SocketAddr::from(([127, 0, 0, 1], api));
    let health = c.wait("GET /health", || {
        request(addr, "GET", "/health", None, None)
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(!health.text().is_empty(), "empty /health body");
    let api = Api::new(addr, token);
    api.get("/api/v1/nodes").expect_status(200);
    let page = api.events(&[]);
    assert!(page.events.is_empty(), "a fresh core has events: {page:?}");
    c.terminate();
}

#[test]
fn aarch64_agent_full_mode_delivers_an_event() {
    full_mode_delivers_an_event(AARCH64);
}

#[test]
fn armv7_agent_full_mode_delivers_an_event() {
    full_mode_delivers_an_event(ARMV7);
}

#[test]
fn aarch64_agent_extension_mode_reports_a_probe() {
    extension_mode_reports_a_probe(AARCH64);
}

#[test]
fn armv7_agent_extension_mode_reports_a_probe() {
    extension_mode_reports_a_probe(ARMV7);
}

#[test]
fn aarch64_core_answers_health() {
    core_answers_health(AARCH64);
}

#[test]
fn armv7_core_answers_health() {
    core_answers_health(ARMV7);
}
