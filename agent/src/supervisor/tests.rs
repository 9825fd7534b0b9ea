//! The supervisor's decisions about a pot's life, driven through its own
//! command and internal handlers, with no pot process: the pot user lookup
//! is set to fail, so a start that is attempted shows as `Failed`.

use std::os::unix::process::ExitStatusExt;

use honeybee_proto::{decode, NodeMessage};

use super::crashes::HEALTHY_RUN;
use super::*;
use crate::spool::Spool;

const NO_USER: &str = "no pot user in unit tests";

struct Fixture {
    sup: Supervisor,
    shared: Rc<Shared>,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("hb-sup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state_dir = dir.join("state");
    state::private_dir(&state_dir).unwrap();
    let spool = Spool::open(&dir.join("spool"), 1 << 20, 16).unwrap();
    let shared = Rc::new(Shared::new(1, spool, 30));
    let mut config = Config {
        state_dir,
        ..Config::default()
    };
    config.full.potstore = dir.join("potstore");
    let ex = Rc::new(LocalExecutor::new());
    let mut sup = Supervisor::new(ex, shared.clone(), Rc::new(config)).unwrap();
    sup.run_as = Some(Err(NO_USER.into()));
    Fixture { sup, shared, dir }
}

/// A pot report: id, status, message.
type Report = (String, PotStatus, Option<String>);

impl Fixture {
    /// An installed script pot (`run`: the operator wants it running),
    /// as it is between a crash and its restart.
    fn installed(&mut self, id: &str, run: bool) {
        let saved = SavedPot {
            pot_id: id.into(),
            honeypot_type: "cowrie".into(),
            git_url: None,
            git_branch: None,
            git_commit: None,
            config: BTreeMap::new(),
            run,
        };
        let message = Some("exited with code 1; restarting in 1 s".into());
        let mut pot = new_pot(saved, None, PotStatus::Stopped, message);
        pot.generation = 3;
        self.sup.pots.insert(id.into(), pot);
    }

    fn pot(&self, id: &str) -> &Pot {
        self.sup.pots.get(id).unwrap()
    }

    fn command(&mut self, c: Command) {
        future::block_on(self.sup.command(c));
    }

    fn internal(&mut self, i: Internal) {
        future::block_on(self.sup.internal(i));
    }

    fn restart_due(&mut self, id: &str, generation: u64) {
        self.internal(Internal::RestartDue {
            pot_id: id.into(),
            generation,
        });
    }

    /// What the supervisor told the core since the last call.
    fn reports(&self) -> Vec<Report> {
        let mut out = Vec::new();
        self.shared.drain_outbox(&mut out);
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| match decode::<NodeMessage>(l).unwrap() {
                NodeMessage::PotStatusUpdate(u) => (u.pot_id, u.status, u.message),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn saved(&self) -> Vec<SavedPot> {
        serde_json::from_slice(&std::fs::read(self.sup.saved_path()).unwrap()).unwrap()
    }
}

fn report(id: &str, status: PotStatus, message: Option<&str>) -> Report {
    (id.into(), status, message.map(String::from))
}

#[test]
fn a_due_restart_starts_the_pot_again_and_counts_it() {
    let mut f = fixture("due");
    f.installed("p", true);
    f.restart_due("p", 3);
    assert_eq!(f.pot("p").restarts, 1);
    assert_eq!(
        f.reports(),
        [report("p", PotStatus::Failed, Some(NO_USER))],
        "the start was attempted, and why it failed said"
    );
}

#[test]
fn stopping_a_pot_cancels_its_pending_restart() {
    let mut f = fixture("stop");
    f.installed("p", true);
    f.command(Command::StopPot("p".into()));
    assert_eq!(f.reports(), [report("p", PotStatus::Stopped, None)]);
    assert!(!f.saved()[0].run, "an agent restart leaves it stopped too");
    f.restart_due("p", 3);
    assert_eq!(f.pot("p").restarts, 0);
    assert_eq!(f.pot("p").status, PotStatus::Stopped);
    assert!(f.reports().is_empty());
}

#[test]
fn a_restart_is_not_due_for_a_pot_the_operator_does_not_want_running() {
    let mut f = fixture("unwanted");
    f.installed("p", false);
    f.restart_due("p", 3);
    assert_eq!(f.pot("p").restarts, 0);
    assert!(f.reports().is_empty());
}

#[test]
fn a_restart_command_makes_a_pending_restart_stale() {
    let mut f = fixture("restart-cmd");
    f.installed("p", true);
    f.command(Command::RestartPot("p".into()));
    assert_eq!(f.reports(), [report("p", PotStatus::Failed, Some(NO_USER))]);
    assert!(f.saved()[0].run, "still wanted running");
    // The restart scheduled by the crash must not start it a second time.
    f.restart_due("p", 3);
    assert_eq!(f.pot("p").restarts, 0);
    assert!(f.reports().is_empty());
}

#[test]
fn an_exit_of_a_run_already_stopped_is_ignored() {
    let mut f = fixture("stale-exit");
    f.installed("p", true);
    for generation in [2, 3] {
        f.internal(Internal::Exited {
            pot_id: "p".into(),
            generation,
            status: ExitStatus::from_raw(1 << 8),
        });
    }
    assert!(f.reports().is_empty());
    assert_eq!(f.pot("p").status, PotStatus::Stopped);
}

#[test]
fn deploy_forgets_the_crashes_before_it() {
    let mut f = fixture("deploy");
    f.installed("p", true);
    let t0 = Instant::now();
    let quick = Some(HEALTHY_RUN / 10);
    for i in 0..4 {
        let pot = f.sup.pots.get_mut("p").unwrap();
        pot.crashes.record(quick, t0 + Duration::from_secs(i));
    }
    f.command(Command::DeployPot("p".into()));
    assert_eq!(f.reports(), [report("p", PotStatus::Failed, Some(NO_USER))]);
    let pot = f.sup.pots.get_mut("p").unwrap();
    assert_eq!(
        pot.crashes.record(quick, t0 + Duration::from_secs(5)),
        AfterCrash::RestartIn(Duration::from_secs(1)),
        "a first crash again, not the fifth"
    );
}

#[test]
fn commands_for_pots_that_are_not_installed_are_answered_failed() {
    let mut f = fixture("ghost");
    for c in [
        Command::StopPot("ghost".into()),
        Command::DeployPot("ghost".into()),
        Command::UninstallPot("ghost".into()),
    ] {
        let name = c.name().to_string();
        f.command(c);
        let why = format!("{name}: no pot \"ghost\" is installed on this node");
        assert_eq!(
            f.reports(),
            [report("ghost", PotStatus::Failed, Some(&why))]
        );
    }
}

fn install(id: &str, honeypot_type: &str, auto_start: bool) -> Command {
    Command::InstallPot(InstallPot {
        pot_id: id.into(),
        honeypot_type: honeypot_type.into(),
        git_url: None,
        git_branch: None,
        config: None,
        auto_start,
    })
}

#[test]
fn install_refuses_bad_ids_a_busy_pot_and_the_pot_past_the_limit() {
    let mut f = fixture("install-limits");
    f.command(install("../etc", "cowrie", false));
    let (_, status, message) = f.reports().remove(0);
    assert_eq!(status, PotStatus::Failed);
    assert!(message.unwrap().contains("pot_id must be"));
    f.command(install("p", "../../bin", false));
    let (_, _, message) = f.reports().remove(0);
    assert!(message.unwrap().contains("honeypot_type must be"));
    f.installed("busy", true);
    f.sup.pots.get_mut("busy").unwrap().installing = true;
    f.command(install("busy", "cowrie", false));
    let (_, _, message) = f.reports().remove(0);
    assert!(message.unwrap().contains("already running"));
    for i in 1..MAX_POTS {
        f.installed(&format!("p{i}"), false);
    }
    f.command(install("one-more", "native-telnet", false));
    let why = format!("InstallPot: {MAX_POTS} pots are installed already");
    assert_eq!(
        f.reports(),
        [report("one-more", PotStatus::Failed, Some(&why))]
    );
    assert!(!f.sup.pots.contains_key("one-more"));
}

#[test]
fn a_native_pot_installed_without_auto_start_is_saved_stopped_and_restored() {
    let mut f = fixture("native");
    f.command(install("tel", "native-telnet", false));
    assert_eq!(
        f.reports(),
        [
            report("tel", PotStatus::Installing, None),
            report("tel", PotStatus::Stopped, None),
        ]
    );
    let saved = f.saved();
    assert_eq!(saved.len(), 1);
    assert_eq!((saved[0].pot_id.as_str(), saved[0].run), ("tel", false));
    // A restarted agent has it back, stopped.
    let config = f.sup.config.clone();
    let ex = f.sup.ex.clone();
    let mut again = Supervisor::new(ex, f.shared.clone(), config).unwrap();
    again.restore();
    let pot = again.pots.get("tel").unwrap();
    assert_eq!(pot.status, PotStatus::Stopped);
    assert!(pot.process.is_none() && pot.native.is_none());
}

#[test]
fn uninstall_forgets_the_pot_and_says_so() {
    let mut f = fixture("uninstall");
    f.installed("p", true);
    f.command(Command::UninstallPot("p".into()));
    assert_eq!(
        f.reports(),
        [report("p", PotStatus::Stopped, Some("uninstalled"))]
    );
    assert!(f.sup.pots.is_empty());
    assert!(f.saved().is_empty());
}

#[test]
fn a_crash_says_when_the_pot_restarts_and_the_fifth_quick_one_fails_it() {
    let mut f = fixture("crash");
    f.installed("p", true);
    let token = f.shared.issue_pot_token("p").unwrap();
    let t0 = Instant::now();
    let quick = Some(HEALTHY_RUN / 30);
    let how = || "exited with status 1".to_string();
    for (i, delay) in [1, 2, 4, 8].into_iter().enumerate() {
        let at = t0 + Duration::from_secs(10 * i as u64);
        f.sup.crashed("p", 3, quick, how(), at);
        let why = format!("exited with status 1; restarting in {delay} s");
        assert_eq!(f.reports(), [report("p", PotStatus::Stopped, Some(&why))]);
        assert_eq!(
            f.shared.pot_for_token(&token),
            None,
            "the dead run's event token is revoked"
        );
    }
    f.sup
        .crashed("p", 3, quick, how(), t0 + Duration::from_secs(40));
    let why = "exited with status 1; crashed 5 times in 5 minutes, not restarted";
    assert_eq!(f.reports(), [report("p", PotStatus::Failed, Some(why))]);
}

#[test]
fn a_wanted_pot_that_cannot_come_back_after_a_restart_is_failed_and_still_wanted() {
    let f = fixture("restore");
    let saved = |id: &str, run: bool| SavedPot {
        pot_id: id.into(),
        honeypot_type: "cowrie".into(),
        git_url: None,
        git_branch: None,
        git_commit: None,
        config: BTreeMap::new(),
        run,
    };
    let pots = vec![
        saved("wanted", true),
        saved("idle", false),
        saved("../bad", true),
    ];
    state::write_private(&f.sup.saved_path(), &serde_json::to_vec(&pots).unwrap()).unwrap();
    let mut again =
        Supervisor::new(f.sup.ex.clone(), f.shared.clone(), f.sup.config.clone()).unwrap();
    again.run_as = Some(Err(NO_USER.into()));
    again.restore();
    let ids: Vec<&String> = again.pots.keys().collect();
    assert_eq!(ids, ["idle", "wanted"], "an invalid id is never restored");
    let wanted = again.pots.get("wanted").unwrap();
    assert_eq!(wanted.status, PotStatus::Failed);
    assert_eq!(wanted.message.as_deref(), Some(NO_USER));
    assert!(
        wanted.saved.run,
        "a fixed setup brings it back on the next start"
    );
    let idle = again.pots.get("idle").unwrap();
    assert_eq!(
        idle.status,
        PotStatus::Failed,
        "its type is not in the potstore"
    );
    assert!(idle.process.is_none());
}
