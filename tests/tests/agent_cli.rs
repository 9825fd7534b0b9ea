//! The agent's command line: `--version`, `--help`, `--print-config`,
//! flags over the config file over the defaults, and clear refusals.

use std::time::Duration;

use honeybee_tests::agent_process::agent_binary;
use honeybee_tests::core_process::run_program_to_exit;
use honeybee_tests::TempDir;

/// The agent's exit, stdout and stderr.
struct Output {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs the agent to its exit; fails the test after 10 s (a bug that made
/// it run on).
fn run(args: &[&str], cwd: &std::path::Path) -> Output {
    let (status, out, err) =
        run_program_to_exit(&agent_binary(), args, &[], cwd, Duration::from_secs(10));
    Output {
        status,
        stdout: out.into_bytes(),
        stderr: err.into_bytes(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_help_and_print_config() {
    let dir = TempDir::new("agent-cli");
    let out = run(&["--version"], dir.path());
    assert!(out.status.success());
    assert!(text(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = run(&["--help"], dir.path());
    let help = text(&out.stdout);
    assert!(out.status.success());
    for flag in [
        "full",
        "extension",
        "--config",
        "--core",
        "--state-dir",
        "--name",
        "--enrollment-token",
        "--tls",
        "--ca",
        "--server-name",
        "--client-cert",
        "--client-key",
        "--heartbeat-interval",
        "--log-format",
        "--potstore",
        "--event-port",
        "--print-config",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    let out = run(&["full", "--print-config"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let default_state = if nix::unistd::geteuid().is_root() {
        "/var/lib/honeybee"
    } else {
        "./honeybee-agent-state"
    };
    assert!(
        printed.contains(&format!("state_dir = \"{default_state}\"")),
        "{printed}"
    );
    assert!(printed.contains("event_port = 9100"), "{printed}");
    assert!(printed.contains("core = \"127.0.0.1:9001\""), "{printed}");
}

#[test]
fn flags_override_the_file_which_overrides_the_defaults() {
    let dir = TempDir::new("agent-cli");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "core = \"10.1.2.3:9001\"\nheartbeat_interval = 7\n[full]\nevent_port = 9200\n",
    )
    .expect("write config");
    let path = config.display().to_string();
    let out = run(
        &[
            "full",
            "--config",
            &path,
            "--event-port",
            "9300",
            "--print-config",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("core = \"10.1.2.3:9001\""), "{printed}");
    assert!(printed.contains("heartbeat_interval = 7"), "{printed}");
    assert!(printed.contains("event_port = 9300"), "{printed}");
    // What it printed is a config file that says the same.
    std::fs::write(&config, &printed).expect("write");
    let again = run(&["full", "--config", &path, "--print-config"], dir.path());
    assert_eq!(text(&again.stdout), printed);
}

#[test]
fn bad_input_is_refused_with_exit_2_and_a_reason() {
    let dir = TempDir::new("agent-cli");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "core = \"127.0.0.1:9001\"\nheartbeat_interval = \"soon\"\n",
    )
    .expect("write");
    let bad = bad.display().to_string();
    for (args, why) in [
        (vec![], "mode"),
        (vec!["full", "--no-such-flag"], "unknown argument"),
        (vec!["full", "--core", "no-port"], "core"),
        (vec!["extension", "--event-port", "9100"], "full mode"),
        (
            vec!["full", "--config", "/nonexistent/agent.toml"],
            "/nonexistent/agent.toml",
        ),
        (vec!["full", "--config", bad.as_str()], "line 2"),
    ] {
        let out = run(&args, dir.path());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(why),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn print_config_never_shows_the_enrollment_token() {
    let dir = TempDir::new("agent-cli");
    let out = run(
        &[
            "extension",
            "--enrollment-token",
            "agent-token-31337",
            "--print-config",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(!printed.contains("31337"), "the token shows:\n{printed}");
    assert!(
        printed.contains("# enrollment_token is set but not shown"),
        "{printed}"
    );
}
