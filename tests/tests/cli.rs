//! The command line (behaviour.md, CLI).

use std::net::TcpListener;
use std::time::Duration;

use honeybee_tests::core_process::run_to_exit;
use honeybee_tests::TempDir;

const T: Duration = Duration::from_secs(10);

/// Flags that keep a core that wrongly keeps running off the default ports.
fn safe_args(dir: &TempDir) -> Vec<String> {
    let ports: Vec<u16> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    vec![
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--node-port".into(),
        ports[0].to_string(),
        "--api-port".into(),
        ports[1].to_string(),
        "--stream-port".into(),
        ports[2].to_string(),
    ]
}

#[test]
fn version_and_help_exit_zero() {
    let dir = TempDir::new("honeybee-cli");
    let (s, out, err) = run_to_exit(&["--version"], dir.path(), T);
    assert!(s.success(), "--version: {s}\n{err}");
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")),
        "--version should print {}: {out:?}",
        env!("CARGO_PKG_VERSION")
    );
    let (s, out, err) = run_to_exit(&["--help"], dir.path(), T);
    assert!(s.success(), "--help: {s}\n{err}");
    let text = format!("{out}{err}");
    for flag in [
        "--config",
        "--data-dir",
        "--node-port",
        "--api-token",
        "--enrollment",
    ] {
        assert!(
            text.contains(flag),
            "--help does not mention {flag}:\n{text}"
        );
    }
}

#[test]
fn print_config_prints_the_defaults_as_toml() {
    let dir = TempDir::new("honeybee-cli");
    let (s, out, err) = run_to_exit(&["--print-config"], dir.path(), T);
    assert!(s.success(), "--print-config: {s}\n{err}");
    for line in [
        "bind = \"127.0.0.1\"",
        "node_port = 9001",
        "api_port = 9002",
        "stream_port = 9003",
        "enrollment = \"open\"",
        "heartbeat_interval = 30",
        "registration_timeout = 10",
        "max_message_bytes = 1048576",
        "max_nodes = 100000",
        "max_pending_connections = 1024",
        "max_pending_per_source = 32",
        "connect_rate_per_source = 200",
        "max_database_mb = 4096",
        "lockout_failures = 5",
        "lockout_window = 300",
        "lockout_base = 60",
        "lockout_max = 3600",
        "[tls]",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim() == line || l.trim().starts_with(&format!("{line} "))),
            "--print-config lacks `{line}`:\n{out}"
        );
    }
    assert!(
        !dir.path().join("honeybee-data").exists(),
        "--print-config created a data dir"
    );
}

#[test]
fn a_bad_flag_exits_2_naming_it() {
    let dir = TempDir::new("honeybee-cli");
    let (s, _, err) = run_to_exit(&["--no-such-flag"], dir.path(), T);
    assert_eq!(s.code(), Some(2), "unknown flag: {s}\n{err}");
    assert!(
        err.contains("--no-such-flag"),
        "stderr should name the flag: {err}"
    );

    let mut args = safe_args(&dir);
    let pos = args.iter().position(|a| a == "--node-port").unwrap();
    args[pos + 1] = "not-a-port".into();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (s, _, err) = run_to_exit(&a, dir.path(), T);
    assert_eq!(s.code(), Some(2), "bad --node-port: {s}\n{err}");
    assert!(
        err.contains("--node-port"),
        "stderr should name the flag: {err}"
    );

    let mut args = safe_args(&dir);
    args.extend(["--enrollment".into(), "sometimes".into()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (s, _, err) = run_to_exit(&a, dir.path(), T);
    assert_eq!(s.code(), Some(2), "bad --enrollment: {s}\n{err}");
    assert!(
        err.contains("--enrollment"),
        "stderr should name the flag: {err}"
    );
}

#[test]
fn a_bad_config_exits_2_naming_file_and_line() {
    let dir = TempDir::new("honeybee-cli");
    let cfg = dir.path().join("broken.toml");
    std::fs::write(
        &cfg,
        "bind = \"127.0.0.1\"\nnode_port = 9001\napi_port = = 3\n",
    )
    .unwrap();
    let mut args = vec!["--config".to_string(), cfg.display().to_string()];
    args.extend(safe_args(&dir));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (s, _, err) = run_to_exit(&a, dir.path(), T);
    assert_eq!(s.code(), Some(2), "bad config: {s}\n{err}");
    assert!(
        err.contains("broken.toml"),
        "stderr should name the file: {err}"
    );
    assert!(
        err.contains("line 3") || err.contains(":3:") || err.contains(":3 "),
        "stderr should name line 3: {err}"
    );

    // Well-formed but wrong: token policy without a token.
    std::fs::write(&cfg, "enrollment = \"token\"\n").unwrap();
    let (s, _, err) = run_to_exit(&a, dir.path(), T);
    assert_eq!(
        s.code(),
        Some(2),
        "token policy without a token: {s}\n{err}"
    );
    assert!(
        err.contains("enrollment_token"),
        "stderr should say what is missing: {err}"
    );
}

#[test]
fn print_config_never_shows_a_token_and_says_it_is_set() {
    let dir = TempDir::new("honeybee-cli");
    let cfg = dir.path().join("core.toml");
    std::fs::write(
        &cfg,
        "enrollment = \"token\"\nenrollment_token = \"enroll-from-file-31337\"\n",
    )
    .unwrap();
    let (s, out, err) = honeybee_tests::core_process::run_to_exit_with_env(
        &["--config", cfg.to_str().unwrap(), "--print-config"],
        &[("HONEYBEE_API_TOKEN", "api-from-env-31337")],
        dir.path(),
        T,
    );
    assert!(s.success(), "--print-config: {s}\n{err}");
    assert!(
        !out.contains("31337") && !err.contains("31337"),
        "a token shows:\n{out}\n{err}"
    );
    for name in ["api_token", "enrollment_token"] {
        assert!(
            out.contains(&format!("# {name} is set but not shown")),
            "no note for {name}:\n{out}"
        );
    }
    // The printed config is still one the core reads (with the token from
    // a file, as the note says).
    let edited = out.replace(
        "enrollment_token_file = \"\"",
        "enrollment_token_file = \"tok\"",
    );
    assert_ne!(edited, out, "no enrollment_token_file line:\n{out}");
    std::fs::write(&cfg, edited).unwrap();
    std::fs::write(dir.path().join("tok"), "enroll-from-file-31337\n").unwrap();
    let (s, again, err) = run_to_exit(
        &["--config", cfg.to_str().unwrap(), "--print-config"],
        dir.path(),
        T,
    );
    assert!(s.success(), "the printed config does not load: {err}");
    assert!(again.contains("enrollment = \"token\""), "{again}");
}
