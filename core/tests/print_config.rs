//! `honeybee-core --print-config` prints settings that read back as the
//! embedded defaults, with flags applied.
//!
//! Being an integration test of this package, it also makes
//! `cargo test --workspace` build the `honeybee-core` binary that the
//! end-to-end suite in `tests/` drives.

use std::process::Command;

use honeybee_core::config::{Config, Enrollment};

fn print_config(args: &[&str]) -> Config {
    let out = Command::new(env!("CARGO_BIN_EXE_honeybee-core"))
        .arg("--print-config")
        .args(args)
        .output()
        .expect("run honeybee-core");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn defaults_read_back() {
    assert_eq!(print_config(&[]), Config::default());
}

#[test]
fn flags_show_in_the_printed_config() {
    let c = print_config(&["--enrollment", "approve", "--node-port", "7101"]);
    assert_eq!(c.enrollment, Enrollment::Approve);
    assert_eq!(c.node_port, 7101);
    assert_eq!(c.api_port, Config::default().api_port);
}
