//! The enrollment token without putting it on the command line (F13):
//! `HONEYBEE_ENROLLMENT_TOKEN` and `--enrollment-token-file` enroll against
//! a core that requires the token; only `--enrollment-token` (readable by
//! every local user in /proc/PID/cmdline) logs a warning; a token file
//! every local user can read is refused with exit status 2.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use honeybee_tests::{Agent, AgentBuilder, Core};

const T: Duration = Duration::from_secs(30);
const TOKEN: &str = "tok-5e1f0c9a7d";
/// The start of the warning the flag brings.
const WARNING: &str = "--enrollment-token is readable by every local user";

fn core() -> Core {
    Core::builder()
        .args(["--enrollment", "token", "--enrollment-token", TOKEN])
        .start()
}

fn agent(core: &Core, state: &str) -> AgentBuilder {
    Agent::full(core.node_addr)
        .workspace(core.workspace())
        .state_dir(core.workspace().path().join(state))
}

fn token_file(core: &Core, name: &str, mode: u32) -> String {
    let path = core.workspace().path().join(name);
    std::fs::write(&path, format!("{TOKEN}\n")).expect("write the token file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path.display().to_string()
}

#[test]
fn the_token_from_the_environment_or_a_file_enrolls_and_only_the_flag_warns() {
    let core = core();
    let from_env = agent(&core, "env-state")
        .env("HONEYBEE_ENROLLMENT_TOKEN", TOKEN)
        .start();
    let file = token_file(&core, "token", 0o600);
    let from_file = agent(&core, "file-state")
        .args(["--enrollment-token-file", file.as_str()])
        .start();
    let from_flag = agent(&core, "flag-state").enrollment_token(TOKEN).start();
    let without = agent(&core, "no-token-state").start();
    for a in [&from_env, &from_file, &from_flag] {
        core.api().wait_status(a.node_id(), "Running", T);
    }
    assert!(
        without.wait_stderr_contains("enrollment token", T),
        "the core must require the token for this test to mean anything:\n{}",
        without.stderr()
    );
    assert!(core.api().node(without.node_id()).is_none());
    assert!(
        from_flag.wait_stderr_contains(WARNING, T),
        "{}",
        from_flag.stderr()
    );
    for (what, a) in [("env", &from_env), ("file", &from_file)] {
        assert!(!a.stderr().contains(WARNING), "{what}: {}", a.stderr());
    }
    for a in [&from_env, &from_file, &from_flag] {
        assert!(!a.stderr().contains(TOKEN), "the token was logged");
    }
}

#[test]
fn a_token_file_every_local_user_can_read_is_refused() {
    let core = core();
    let file = token_file(&core, "open-token", 0o644);
    // A Full agent that exits before it listens is an error of try_start,
    // which carries the exit status and stderr.
    let started = agent(&core, "open-state")
        .args(["--enrollment-token-file", file.as_str()])
        .try_start();
    let Err(report) = started else {
        panic!("the agent ran with a world-readable token file");
    };
    assert!(report.contains("exit status: 2"), "{report}");
    assert!(
        report.contains(&format!("enrollment token file {file}: mode 644")),
        "{report}"
    );
    assert!(!report.contains(TOKEN), "{report}");
}
