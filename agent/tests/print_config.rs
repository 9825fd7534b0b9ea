//! `honeybee-agent <mode> --print-config` prints settings that read back as
//! the embedded defaults, with the mode and flags applied.
//!
//! Being an integration test of this package, it also makes
//! `cargo test --workspace` build the `honeybee-agent` binary that the
//! end-to-end suite in `tests/` drives.

use std::process::Command;

use honeybee_agent::config::{Config, Mode};

fn print_config(args: &[&str]) -> Config {
    let out = Command::new(env!("CARGO_BIN_EXE_honeybee-agent"))
        .args(args)
        .arg("--print-config")
        .output()
        .expect("run honeybee-agent");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn defaults_read_back_in_both_modes() {
    assert_eq!(print_config(&["full"]), Config::default());
    let ext = print_config(&["extension"]);
    assert_eq!(ext.mode, Mode::Extension);
    assert_eq!(
        Config {
            mode: Mode::Full,
            ..ext
        },
        Config::default()
    );
}

#[test]
fn flags_show_in_the_printed_config() {
    let c = print_config(&[
        "extension",
        "--ports",
        "22,80",
        "--profile",
        "windows-workstation",
    ]);
    assert_eq!(c.extension.ports, "22,80");
    assert_eq!(c.extension.profile, "windows-workstation");
}
