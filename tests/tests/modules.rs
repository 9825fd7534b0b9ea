//! Extension modules (`[[modules]]`): the core runs the Python example
//! `core/modules/credential_log.py`, which writes every login attempt to a
//! CSV file; the REST API lists, adds, starts and stops modules, and a
//! module that dies is started again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use honeybee_proto::time::{format_rfc3339, now_unix};
use honeybee_tests::{wait_for, Core};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(15);
const EVERY: Duration = Duration::from_millis(50);

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/modules/credential_log.py")
}

fn python_available() -> bool {
    std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A core running the example as `creds`, writing to `<workspace>/creds.csv`.
fn core_with_example(csv: &Path) -> Core {
    let config = format!(
        "[[modules]]\nname = \"creds\"\ncommand = \"python3\"\nargs = [{}]\nenv = {{ HONEYBEE_CREDENTIAL_CSV = {} }}\n",
        toml_str(&example().to_string_lossy()),
        toml_str(&csv.to_string_lossy()),
    );
    Core::builder().config(&config).start()
}

fn module(core: &Core, name: &str) -> Value {
    let list = core.api().get("/api/v1/modules").expect_status(200).json();
    list["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no module {name} in {list}"))
}

fn subscribed(core: &Core, name: &str) -> bool {
    module(core, name)["recent_output"]
        .as_array()
        .is_some_and(|a| {
            a.iter()
                .any(|l| l.as_str().is_some_and(|l| l.contains("subscribed")))
        })
}

fn login(
    id: &honeybee_tests::NodeIdentity,
    user: &str,
    password: &str,
) -> honeybee_proto::NodeMessage {
    let ts = format_rfc3339(now_unix().0 - 1, 0);
    id.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.login.failed",
        &ts,
        None,
        json!({"src_ip": "203.0.113.7", "src_port": 51234, "username": user, "password": password}),
    )
}

fn csv_lines(csv: &Path) -> Vec<String> {
    std::fs::read_to_string(csv)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_example_module_writes_login_attempts_to_csv_and_is_restarted() {
    if !python_available() {
        honeybee_tests::skip::skip(
            "the_example_module_writes_login_attempts_to_csv_and_is_restarted",
            "python3 not found",
        );
        return;
    }
    let dir = honeybee_tests::temp_dir::TempDir::new("modules-csv");
    let csv = dir.path().join("creds.csv");
    let core = core_with_example(&csv);
    let m = wait_for("the module to subscribe", T, EVERY, || {
        subscribed(&core, "creds").then(|| module(&core, "creds"))
    });
    assert_eq!(m["status"], "running", "{m}");
    assert_eq!(m["env_keys"], json!(["HONEYBEE_CREDENTIAL_CSV"]));
    assert!(m.get("env").is_none(), "env values are not shown: {m}");

    let (mut node, id) = core.enroll("module-node");
    node.must_send(&login(&id, "root", "123456"));
    node.must_send(&id.pot_event(
        "cowrie-01",
        "cowrie",
        "cowrie.command.input",
        &format_rfc3339(now_unix().0 - 1, 0),
        None,
        json!({"src_ip": "203.0.113.7", "input": "uname -a"}),
    ));
    node.must_send(&login(&id, "admin", "pa,ss\"word"));
    let lines = wait_for("two CSV rows", T, EVERY, || {
        let l = csv_lines(&csv);
        (l.len() >= 3).then_some(l)
    });
    assert_eq!(lines[0], "time,node_id,pot_id,src_ip,username,password");
    assert!(
        lines[1].ends_with(&format!(
            ",{},cowrie-01,203.0.113.7,root,123456",
            id.node_id
        )),
        "{lines:?}"
    );
    assert!(lines[2].ends_with(",admin,\"pa,ss\"\"word\""), "{lines:?}");

    // Killed, it comes back (after a 1 s backoff) and keeps writing.
    let pid = m["pid"].as_i64().expect("pid") as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let m = wait_for("the restart", T, EVERY, || {
        let m = module(&core, "creds");
        (m["restarts"] == 1 && m["status"] == "running" && m["pid"].as_i64() != Some(pid as i64))
            .then_some(m)
    });
    assert!(m["last_exit"].as_str().unwrap().contains("9"), "{m}");
    let metrics = core.metrics();
    assert_eq!(metrics.value("honeybee_module_restarts_total", &[]), 1.0);
    assert_eq!(metrics.value("honeybee_modules_running", &[]), 1.0);
    // It has to reconnect before it sees the next event.
    wait_for("a new subscription", T, EVERY, || {
        let out = module(&core, "creds")["recent_output"].clone();
        (out.as_array()
            .unwrap()
            .iter()
            .filter(|l| l.as_str().unwrap().contains("subscribed"))
            .count()
            >= 2)
            .then_some(())
    });
    node.must_send(&login(&id, "guest", "guest"));
    wait_for("the third row", T, EVERY, || {
        let l = csv_lines(&csv);
        (l.len() >= 4 && l[3].ends_with(",guest,guest")).then_some(())
    });

    // Core shutdown stops the module too.
    let pid = m["pid"].as_i64().unwrap() as i32;
    let mut core = core;
    core.terminate(Duration::from_secs(6));
    wait_for(
        "the module to be gone",
        Duration::from_secs(2),
        EVERY,
        || kill(Pid::from_raw(pid), None).is_err().then_some(()),
    );
}

#[test]
fn the_api_lists_adds_starts_and_stops_modules() {
    // By default the API may not add programs for the core to run.
    let locked = Core::start();
    let e = locked
        .api()
        .post("/api/v1/modules", r#"{"name": "x", "command": "true"}"#)
        .expect_error(403);
    assert!(e.contains("modules_api_add"), "{e}");
    drop(locked);
    let core = Core::builder().config("modules_api_add = true\n").start();
    let api = core.api().clone();
    let api = &api;
    let list = api.get("/api/v1/modules").expect_status(200).json();
    assert_eq!(list, json!({"count": 0, "modules": []}));

    let body = json!({
        "name": "sleeper",
        "command": "sh",
        "args": ["-c", "echo hello; exec sleep 300"],
        "env": {"SECRET": "s3cret-value"},
    });
    let m = api
        .post("/api/v1/modules", &body.to_string())
        .expect_status(201)
        .json();
    assert_eq!(m["status"], "running", "{m}");
    assert_eq!(m["autostart"], true);
    assert!(!m.to_string().contains("s3cret"), "{m}");
    let pid = m["pid"].as_i64().unwrap() as i32;
    wait_for("its output", T, EVERY, || {
        (module(&core, "sleeper")["recent_output"] == json!(["hello"])).then_some(())
    });

    // Same name again: 409; bad input: 400; unknown name: 404; wrong method: 405.
    api.post("/api/v1/modules", &body.to_string())
        .expect_error(409);
    api.post("/api/v1/modules", r#"{"name": "a b", "command": "sh"}"#)
        .expect_error(400);
    api.post("/api/v1/modules", r#"{"name": "x"}"#)
        .expect_error(400);
    api.post(
        "/api/v1/modules",
        r#"{"name": "x", "command": "sh", "bogus": 1}"#,
    )
    .expect_error(400);
    api.post("/api/v1/modules/nope/start", "").expect_error(404);
    api.post("/api/v1/modules/nope/stop", "").expect_error(404);
    api.call("DELETE", "/api/v1/modules", None)
        .expect_error(405);
    api.get("/api/v1/modules/sleeper/stop").expect_error(405);
    api.call_as(None, "GET", "/api/v1/modules")
        .expect_error(401);

    let asked = std::time::Instant::now();
    let m = api
        .post("/api/v1/modules/sleeper/stop", "")
        .expect_status(200)
        .json();
    // SIGTERM reaches it (the core's blocked signals are not inherited).
    assert!(
        asked.elapsed() < Duration::from_secs(4),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(m["status"], "stopped", "{m}");
    assert_eq!(m["pid"], Value::Null);
    assert!(
        kill(Pid::from_raw(pid), None).is_err(),
        "process {pid} still there"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        module(&core, "sleeper")["status"],
        "stopped",
        "a stopped module stays stopped"
    );

    let m = api
        .post("/api/v1/modules/sleeper/start", "")
        .expect_status(200)
        .json();
    assert_eq!(m["status"], "running", "{m}");
    assert_ne!(m["pid"].as_i64(), Some(pid as i64));
    let m = api
        .post("/api/v1/modules/sleeper/start", "")
        .expect_status(200)
        .json();
    assert_eq!(
        m["status"], "running",
        "starting a running module is harmless"
    );

    let late =
        json!({"name": "late", "command": "sh", "args": ["-c", "sleep 300"], "autostart": false});
    let m = api
        .post("/api/v1/modules", &late.to_string())
        .expect_status(201)
        .json();
    assert_eq!(m["status"], "stopped", "{m}");
    let list = api.get("/api/v1/modules").expect_status(200).json();
    assert_eq!(list["count"], 2);

    // Core shutdown stops it, within the 5 s shutdown budget.
    let pid = module(&core, "sleeper")["pid"].as_i64().unwrap() as i32;
    let mut core = core;
    let (_, took) = core.terminate(Duration::from_secs(6));
    assert!(took < Duration::from_millis(4500), "shutdown took {took:?}");
    assert!(
        kill(Pid::from_raw(pid), None).is_err(),
        "module {pid} survived the core"
    );
}

#[test]
fn modules_do_not_outlive_a_killed_core() {
    let config =
        "[[modules]]\nname = \"sleeper\"\ncommand = \"sh\"\nargs = [\"-c\", \"exec sleep 300\"]\n";
    let mut core = Core::builder().config(config).start();
    let pid = wait_for("the module to run", T, EVERY, || {
        module(&core, "sleeper")["pid"].as_i64()
    }) as i32;
    core.stop_with(Signal::SIGKILL, Duration::from_secs(5));
    wait_for("the module to go with the core", T, EVERY, || {
        let gone = kill(Pid::from_raw(pid), None).is_err()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "));
        gone.then_some(())
    });
}

/// A module reaches the REST API through `HONEYBEE_API_ADDR` (with the
/// token of `HONEYBEE_API_TOKEN`; `HONEYBEE_API_TLS` unset: the API speaks
/// plain HTTP): here it posts an alert report, as the alerts module does.
#[test]
fn a_module_is_told_where_the_api_is_and_can_use_it() {
    if !python_available() {
        honeybee_tests::skip::skip(
            "a_module_is_told_where_the_api_is_and_can_use_it",
            "python3 not found",
        );
        return;
    }
    let script = r#"
import http.client, json, os, time
addr = os.environ["HONEYBEE_API_ADDR"]
print("api=" + addr, "tls=" + os.environ.get("HONEYBEE_API_TLS", "unset"),
      "stream=" + os.environ["HONEYBEE_STREAM_ADDR"], flush=True)
host, port = addr.rsplit(":", 1)
body = json.dumps({"module": "reporter", "channels": [{"name": "hook", "type": "webhook",
    "sent": 7, "failed": 0, "retries": 0, "dropped": 0, "queued": 0}], "recent": []})
c = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=5)
c.request("POST", "/api/v1/alerts/report", body, {"Content-Type": "application/json",
    "Authorization": "Bearer " + os.environ["HONEYBEE_API_TOKEN"]})
print("status=%d" % c.getresponse().status, flush=True)
time.sleep(300)
"#;
    let config = format!(
        "[[modules]]\nname = \"reporter\"\ncommand = \"python3\"\nargs = [\"-c\", {}]\n",
        toml_str(script)
    );
    let core = Core::builder().config(&config).start();
    let output = wait_for("the module's report", T, EVERY, || {
        let out = module(&core, "reporter")["recent_output"].clone();
        out.as_array()
            .is_some_and(|a| a.iter().any(|l| l == "status=200"))
            .then_some(out)
    });
    let want = format!(
        "api={} tls=unset stream={}",
        core.api_addr, core.stream_addr
    );
    assert!(
        output
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == want.as_str()),
        "{output}"
    );
    let alerts = core.api().get("/api/v1/alerts").expect_status(200).json();
    assert_eq!(alerts["channels"][0]["module"], "reporter", "{alerts}");
    assert_eq!(alerts["channels"][0]["sent"], 7, "{alerts}");
}
