//! Full mode: the pot supervisor. It answers every pot command of
//! docs/protocol.md §3, installs pots from the agent's own potstore (or a git
//! repository under a `full.git_allow` prefix, checked at every start),
//! runs them, restarts the ones that crash (with backoff, `Failed` after 5
//! crashes in 5 minutes), and keeps the list of installed pots and whether
//! each should run in `pots/pots.json`, so that a restarted agent brings
//! its running pots back.
//!
//! Commands are handled one at a time on the agent's thread; only the slow
//! parts (a git clone, an `install` script) run as tasks that report back.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;
use honeybee_proto::{Command, InstallPot, PotStatus};
use serde::{Deserialize, Serialize};
use smol::LocalExecutor;

use crate::answers::{failed, pot_status};
use crate::config::Config;
use crate::event_map::PotHint;
use crate::extension_mode::PotSink;
use crate::git_allow::{GitAllow, GitSource};
use crate::pot_process::{self, describe, LogRing, RunAs, Running, Spec};
use crate::potstore::{self, PotSource};
use crate::proc_stat;
use crate::shared::Shared;
use crate::state;
use crate::users::pots_run_as;
use honeybee_extension::native;

mod crashes;
use crashes::{AfterCrash, Crashes, MAX_CRASHES};

/// Most pots installed on one node.
pub const MAX_POTS: usize = 64;
/// An `install` (or clone) taking longer is stopped and the pot Failed.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What survives an agent restart, per pot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct SavedPot {
    pot_id: String,
    honeypot_type: String,
    #[serde(default)]
    git_url: Option<String>,
    #[serde(default)]
    git_branch: Option<String>,
    /// The commit checked out at install, when the allow list or the
    /// command pinned one: a start is refused when the pin changes.
    #[serde(default)]
    git_commit: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    /// Whether the operator wants it running.
    run: bool,
}

struct Pot {
    saved: SavedPot,
    source: Option<PotSource>,
    status: PotStatus,
    message: Option<String>,
    process: Option<Running>,
    /// A native pot's listener, when it runs.
    native: Option<native::Handle>,
    /// Which native pot this is, if it is one.
    kind: Option<native::Kind>,
    /// Bumped at every start and stop, so that stale exits are ignored.
    generation: u64,
    crashes: Crashes,
    restarts: u32,
    installing: bool,
    logs: Rc<RefCell<LogRing>>,
}

enum Internal {
    Exited {
        pot_id: String,
        generation: u64,
        status: ExitStatus,
    },
    RestartDue {
        pot_id: String,
        generation: u64,
    },
    Installed {
        pot_id: String,
        generation: u64,
        result: Result<Box<PotSource>, String>,
    },
}

enum Work {
    Command(Command),
    Internal(Internal),
    Shutdown,
}

/// The pot supervisor.
pub struct Supervisor {
    ex: Rc<LocalExecutor<'static>>,
    shared: Rc<Shared>,
    config: Rc<Config>,
    pots_dir: PathBuf,
    event_addr: String,
    /// Who pots run as; looked up when the first pot needs it, so that an
    /// agent without pots never loads the user database.
    run_as: Option<Result<RunAs, String>>,
    /// Where git installs may come from (`full.git_allow`).
    git_allow: GitAllow,
    pots: BTreeMap<String, Pot>,
    internal: (
        async_channel::Sender<Internal>,
        async_channel::Receiver<Internal>,
    ),
}

impl Supervisor {
    /// A supervisor keeping its pots under `<state_dir>/pots`.
    pub fn new(
        ex: Rc<LocalExecutor<'static>>,
        shared: Rc<Shared>,
        config: Rc<Config>,
    ) -> Result<Supervisor, String> {
        let pots_dir = config.state_dir.join("pots");
        state::private_dir(&pots_dir)
            .map_err(|e| format!("creating {}: {e}", pots_dir.display()))?;
        let git_allow = GitAllow::new(&config.full.git_allow).map_err(|e| e.0)?;
        Ok(Supervisor {
            git_allow,
            ex,
            shared,
            event_addr: format!("127.0.0.1:{}", config.full.event_port),
            config,
            pots_dir,
            run_as: None,
            pots: BTreeMap::new(),
            internal: async_channel::unbounded(),
        })
    }

    /// Handles commands until `shutdown` fires, then stops every pot
    /// (keeping whether it should run) and returns.
    pub async fn run(mut self, shutdown: async_channel::Receiver<()>) {
        self.restore();
        let commands = self.shared.commands.1.clone();
        loop {
            let work = future::or(
                async {
                    match commands.recv().await {
                        Ok(c) => Work::Command(c),
                        Err(_) => Work::Shutdown,
                    }
                },
                future::or(
                    async {
                        match self.internal.1.recv().await {
                            Ok(i) => Work::Internal(i),
                            Err(_) => Work::Shutdown,
                        }
                    },
                    async {
                        let _ = shutdown.recv().await;
                        Work::Shutdown
                    },
                ),
            )
            .await;
            match work {
                Work::Command(c) => self.command(c).await,
                Work::Internal(i) => self.internal(i).await,
                Work::Shutdown => break,
            }
        }
        let grace = self.grace();
        for (id, pot) in self.pots.iter_mut() {
            pot.native = None;
            if let Some(p) = pot.process.take() {
                log::info!("stopping pot {id}");
                pot.generation += 1;
                p.stop(grace).await;
                pot.status = PotStatus::Stopped;
            }
        }
    }

    /// Who pots run as (see [`pots_run_as`]), looked up once. Never the
    /// agent's own user: a non-root agent without `full.pot_user` starts
    /// no pot.
    fn run_as(&mut self) -> Result<RunAs, String> {
        if self.run_as.is_none() {
            let who = pots_run_as(self.config.full.pot_user.as_deref()).and_then(|who| {
                // The pot user must reach its own folder inside the state
                // dir; x without r lets it through without listing.
                for dir in [&self.config.state_dir, &self.pots_dir] {
                    set_mode(dir, 0o711)?;
                }
                Ok(who)
            });
            self.run_as = Some(who);
        }
        self.run_as
            .clone()
            .unwrap_or_else(|| Err("the pot user was not looked up".into()))
    }

    /// Whether the git pot `saved` may still run: its URL under the current
    /// `full.git_allow`, and at the commit it pins, if it pins one.
    fn git_still_allowed(&self, saved: &SavedPot) -> Result<(), String> {
        let Some(url) = &saved.git_url else {
            return Ok(());
        };
        let git = self.git_allow.check(url).map_err(|e| e.0)?;
        if git.commit.is_some() && git.commit != saved.git_commit {
            return Err(format!(
                "full.git_allow now pins commit {}, the installed pot is at {}; install it again",
                git.commit.as_deref().unwrap_or_default(),
                saved.git_commit.as_deref().unwrap_or("an unpinned commit")
            ));
        }
        Ok(())
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.config.full.stop_grace_secs)
    }

    fn saved_path(&self) -> PathBuf {
        self.pots_dir.join("pots.json")
    }

    fn pot_dir(&self, pot_id: &str) -> PathBuf {
        self.pots_dir.join(pot_id)
    }

    /// Brings back the pots of the last run.
    fn restore(&mut self) {
        let path = self.saved_path();
        let saved: Vec<SavedPot> = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    log::error!("reading {}: {e}; starting with no pots", path.display());
                    return;
                }
            },
            Err(_) => return,
        };
        for s in saved.into_iter().take(MAX_POTS) {
            if !potstore::valid_pot_id(&s.pot_id) {
                continue;
            }
            let id = s.pot_id.clone();
            let source = match native::Kind::from_type(&s.honeypot_type) {
                Some(_) => Err(String::new()),
                None => self.source_of(&s),
            };
            let (status, message) = match &source {
                Err(e) if e.is_empty() => (PotStatus::Stopped, None),
                Ok(_) => (PotStatus::Stopped, None),
                Err(e) => (PotStatus::Failed, Some(e.clone())),
            };
            let run = s.run;
            self.pots
                .insert(id.clone(), new_pot(s, source.ok(), status, message));
            if run {
                if let Err(e) = self.start(&id) {
                    log::warn!("pot {id} did not come back: {e}");
                    // Said to the core with the first GetInstalledPots/status.
                    if let Some(p) = self.pots.get_mut(&id) {
                        p.status = PotStatus::Failed;
                        p.message = Some(e);
                    }
                } else {
                    log::info!("pot {id} is running again");
                }
            }
        }
        self.publish_hints();
    }

    fn source_of(&self, s: &SavedPot) -> Result<PotSource, String> {
        let dir = match &s.git_url {
            Some(_) => self.pot_dir(&s.pot_id).join("source"),
            None => self.config.full.potstore.clone(),
        };
        potstore::resolve(&dir, &s.honeypot_type).map_err(|e| e.0)
    }

    fn save(&self) {
        let saved: Vec<&SavedPot> = self.pots.values().map(|p| &p.saved).collect();
        let json = serde_json::to_vec_pretty(&saved).unwrap_or_default();
        if let Err(e) = state::write_private(&self.saved_path(), &json) {
            log::error!("writing {}: {e}", self.saved_path().display());
        }
    }

    fn publish_hints(&self) {
        *self.shared.pot_hints.borrow_mut() = self
            .pots
            .iter()
            .map(|(id, p)| PotHint {
                pot_id: id.clone(),
                pot_type: p.saved.honeypot_type.clone(),
                running: p.status == PotStatus::Running,
            })
            .collect();
    }

    fn report(&self, pot_id: &str, details: Option<serde_json::Value>) {
        if let Some(p) = self.pots.get(pot_id) {
            pot_status(
                &self.shared,
                pot_id,
                &p.saved.honeypot_type,
                p.status,
                p.message.clone(),
                details,
            );
        }
    }

    fn set(&mut self, pot_id: &str, status: PotStatus, message: Option<String>) {
        if let Some(p) = self.pots.get_mut(pot_id) {
            p.status = status;
            p.message = message;
        }
        self.publish_hints();
        self.report(pot_id, None);
    }

    async fn command(&mut self, command: Command) {
        if let Some(id) = command.pot_id() {
            if !matches!(command, Command::InstallPot(_)) && !self.pots.contains_key(id) {
                let why = format!("no pot {id:?} is installed on this node");
                return failed(&self.shared, &command, &why);
            }
        }
        match command {
            Command::InstallPot(p) => self.install(p).await,
            Command::DeployPot(id) => {
                if let Some(p) = self.pots.get_mut(&id) {
                    p.crashes.clear();
                }
                self.deploy(&id)
            }
            Command::StopPot(id) => {
                self.stop(&id, false).await;
                self.report(&id, None);
            }
            Command::RestartPot(id) => {
                self.stop(&id, true).await;
                self.deploy(&id);
            }
            Command::GetPotStatus(id) => self.report(&id, None),
            Command::GetPotLogs(id) => {
                let lines = self.pots.get(&id).map(|p| p.logs.borrow().lines());
                self.report(&id, Some(serde_json::json!({ "lines": lines })));
            }
            Command::GetPotMetrics(id) => {
                let details = self.metrics(&id);
                self.report(&id, Some(details));
            }
            Command::GetPotInfo(id) => match self.pots.get(&id).and_then(|p| {
                p.kind
                    .map(native::Kind::info)
                    .or_else(|| p.source.as_ref().map(PotSource::info))
            }) {
                Some(info) => self.report(&id, Some(info)),
                None => failed(
                    &self.shared,
                    &Command::GetPotInfo(id.clone()),
                    "the pot has no manifest (install failed)",
                ),
            },
            Command::GetInstalledPots => {
                let ids: Vec<String> = self.pots.keys().cloned().collect();
                for id in ids {
                    self.report(&id, None);
                }
            }
            Command::UninstallPot(id) => self.uninstall(&id).await,
            Command::UpdateConfig(_) => {}
            Command::Restart => {}
            Command::Unknown(ref name) => {
                let why = format!("unknown command {name}");
                failed(&self.shared, &command, &why)
            }
        }
    }

    fn deploy(&mut self, id: &str) {
        if self.pots.get(id).is_some_and(|p| p.installing) {
            return failed(
                &self.shared,
                &Command::DeployPot(id.into()),
                "the pot is still installing",
            );
        }
        if let Some(p) = self.pots.get_mut(id) {
            p.saved.run = true;
        }
        self.save();
        if self
            .pots
            .get(id)
            .is_some_and(|p| p.process.is_some() || p.native.is_some())
        {
            return self.report(id, None);
        }
        match self.start(id) {
            Ok(()) => self.set(id, PotStatus::Running, None),
            Err(e) => self.set(id, PotStatus::Failed, Some(e)),
        }
    }

    /// Starts the pot's `start` executable.
    fn start(&mut self, id: &str) -> Result<(), String> {
        if let Some(kind) = self.pots.get(id).and_then(|p| p.kind) {
            return self.start_native(id, kind);
        }
        if let Some(saved) = self.pots.get(id).map(|p| p.saved.clone()) {
            // The allow list may have changed since the install (an agent
            // restart with a new config): it decides every start.
            self.git_still_allowed(&saved)?;
        }
        let run_as = self.run_as()?;
        let dir = self.pot_dir(id);
        ensure_pot_owns(&dir, run_as)?;
        let node_id = self.shared.node_id;
        let internal = self.internal.0.clone();
        let pot = self.pots.get_mut(id).ok_or("not installed")?;
        let source = pot
            .source
            .as_ref()
            .ok_or("the pot is not installed (install failed)")?;
        let mut env = potstore::pot_env(
            &source.manifest,
            &pot.saved.config,
            id,
            &dir,
            &source.folder,
            &self.event_addr,
            node_id,
        )
        .map_err(|e| e.0)?;
        // A new token each start: only this run of this pot can write its
        // events (docs/protocol.md §8).
        env.push((
            "HONEYBEE_POT_TOKEN".to_string(),
            self.shared.issue_pot_token(id)?,
        ));
        pot.generation += 1;
        let generation = pot.generation;
        let pot_id = id.to_string();
        let running = pot_process::spawn(
            &self.ex,
            Spec {
                program: &source.start_path(),
                args: &[],
                cwd: &dir,
                env: &env,
                run_as: Some(run_as),
                logs: pot.logs.clone(),
                label: "start",
            },
            move |status| {
                let _ = internal.try_send(Internal::Exited {
                    pot_id,
                    generation,
                    status,
                });
            },
        )
        .map_err(|e| format!("starting {}: {e}", source.start_path().display()))?;
        log::info!("pot {id} started (pid {})", running.pid);
        pot.process = Some(running);
        pot.status = PotStatus::Running;
        pot.message = None;
        Ok(())
    }

    /// Starts a native pot inside the agent.
    fn start_native(&mut self, id: &str, kind: native::Kind) -> Result<(), String> {
        let pot = self.pots.get_mut(id).ok_or("not installed")?;
        let sink = Rc::new(PotSink {
            shared: self.shared.clone(),
            pot_id: id.to_string(),
            pot_type: pot.saved.honeypot_type.clone(),
        });
        let handle = native::start(&self.ex, kind, &pot.saved.config, sink)?;
        log::info!("native pot {id} listening on {}", handle.addr);
        pot.logs
            .borrow_mut()
            .push(format!("[native] listening on {}", handle.addr));
        pot.native = Some(handle);
        pot.status = PotStatus::Running;
        pot.message = None;
        Ok(())
    }

    /// Stops the pot's processes; `keep_wanted` leaves its desired state.
    async fn stop(&mut self, id: &str, keep_wanted: bool) {
        let grace = self.grace();
        let Some(pot) = self.pots.get_mut(id) else {
            return;
        };
        pot.generation += 1;
        if !keep_wanted {
            pot.saved.run = false;
        }
        if let Some(native) = pot.native.take() {
            native.stop().await;
            log::info!("native pot {id} stopped");
        }
        self.shared.revoke_pot_token(id);
        if let Some(p) = pot.process.take() {
            p.stop(grace).await;
            log::info!("pot {id} stopped");
        }
        if let Some(pot) = self.pots.get_mut(id) {
            if pot.status == PotStatus::Running || !pot.installing {
                pot.status = PotStatus::Stopped;
                pot.message = None;
            }
        }
        self.save();
        self.publish_hints();
    }

    async fn install(&mut self, req: InstallPot) {
        let id = req.pot_id.clone();
        let cmd = Command::InstallPot(req.clone());
        if !potstore::valid_pot_id(&id) {
            return failed(
                &self.shared,
                &cmd,
                "pot_id must be 1-64 of A-Z a-z 0-9 _ . - (not starting with '.')",
            );
        }
        if !self.pots.contains_key(&id) && self.pots.len() >= MAX_POTS {
            return failed(
                &self.shared,
                &cmd,
                &format!("{MAX_POTS} pots are installed already"),
            );
        }
        if self.pots.get(&id).is_some_and(|p| p.installing) {
            return failed(
                &self.shared,
                &cmd,
                "an install of this pot is already running",
            );
        }
        if !potstore::valid_pot_id(&req.honeypot_type) {
            // A catalogue key, never a path: the potstore dir is the agent's.
            return failed(
                &self.shared,
                &cmd,
                "honeypot_type must be 1-64 of A-Z a-z 0-9 _ . - (not starting with '.')",
            );
        }
        if let Some(kind) = native::Kind::from_type(&req.honeypot_type) {
            return self.install_native(req, kind).await;
        }
        let git = match &req.git_url {
            Some(url) => match self.git_allow.check(url) {
                Ok(git) => Some(git),
                Err(e) => return failed(&self.shared, &cmd, &e.0),
            },
            None => None,
        };
        let run_as = match self.run_as() {
            Ok(who) => who,
            Err(e) => return failed(&self.shared, &cmd, &e),
        };
        self.stop(&id, false).await;
        let saved = SavedPot {
            pot_id: id.clone(),
            honeypot_type: req.honeypot_type.clone(),
            git_url: req.git_url.clone(),
            git_branch: req.git_branch.clone(),
            git_commit: git.as_ref().and_then(|g| g.commit.clone()),
            config: req.config.clone().unwrap_or_default(),
            run: req.auto_start,
        };
        let logs = match self.pots.remove(&id) {
            Some(old) => old.logs,
            None => Rc::default(),
        };
        let mut pot = new_pot(saved.clone(), None, PotStatus::Installing, None);
        pot.logs = logs;
        pot.installing = true;
        pot.generation += 1;
        let generation = pot.generation;
        self.pots.insert(id.clone(), pot);
        self.save();
        self.set(&id, PotStatus::Installing, None);
        let job = InstallJob {
            ex: self.ex.clone(),
            saved,
            git,
            dir: self.pot_dir(&id),
            potstore: self.config.full.potstore.clone(),
            run_as,
            event_addr: self.event_addr.clone(),
            node_id: self.shared.node_id,
            logs: self
                .pots
                .get(&id)
                .map(|p| p.logs.clone())
                .unwrap_or_default(),
        };
        let internal = self.internal.0.clone();
        self.ex
            .spawn(async move {
                let result = job.run().await.map(Box::new);
                let _ = internal
                    .send(Internal::Installed {
                        pot_id: id,
                        generation,
                        result,
                    })
                    .await;
            })
            .detach();
    }

    /// A native pot needs nothing installed: it is ready at once.
    async fn install_native(&mut self, req: InstallPot, kind: native::Kind) {
        let id = req.pot_id.clone();
        self.stop(&id, false).await;
        let saved = SavedPot {
            pot_id: id.clone(),
            honeypot_type: req.honeypot_type.clone(),
            git_url: None,
            git_branch: None,
            git_commit: None,
            config: req.config.clone().unwrap_or_default(),
            run: req.auto_start,
        };
        let mut pot = new_pot(saved, None, PotStatus::Stopped, None);
        pot.kind = Some(kind);
        self.pots.insert(id.clone(), pot);
        self.save();
        self.set(&id, PotStatus::Installing, None);
        if req.auto_start {
            self.deploy(&id);
        } else {
            self.set(&id, PotStatus::Stopped, None);
        }
    }

    async fn uninstall(&mut self, id: &str) {
        self.stop(id, false).await;
        if let Some(p) = self.pots.get(id) {
            if p.installing {
                return failed(
                    &self.shared,
                    &Command::UninstallPot(id.into()),
                    "the pot is still installing",
                );
            }
        }
        let pot_type = self
            .pots
            .get(id)
            .map(|p| p.saved.honeypot_type.clone())
            .unwrap_or_default();
        self.pots.remove(id);
        self.shared.pot_events.borrow_mut().remove(id);
        let dir = self.pot_dir(id);
        // std's remove_dir_all removes a symlink itself, never what it
        // points to, and walks the tree with openat/O_NOFOLLOW: a link
        // planted at or inside the pot dir cannot take the removal
        // outside the state dir.
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::warn!("removing {}: {e}", dir.display());
            }
        }
        self.save();
        self.publish_hints();
        log::info!("pot {id} uninstalled");
        pot_status(
            &self.shared,
            id,
            &pot_type,
            PotStatus::Stopped,
            Some("uninstalled".into()),
            Some(serde_json::json!({ "uninstalled": true })),
        );
    }

    fn metrics(&self, id: &str) -> serde_json::Value {
        let Some(pot) = self.pots.get(id) else {
            return serde_json::Value::Null;
        };
        let events = self
            .shared
            .pot_events
            .borrow()
            .get(id)
            .copied()
            .unwrap_or(0);
        let (pid, group) = match &pot.process {
            Some(p) => (
                Some(p.pid),
                proc_stat::group_stats(p.pid).unwrap_or_default(),
            ),
            None => (None, proc_stat::GroupStats::default()),
        };
        serde_json::json!({
            "pid": pid,
            "processes": group.processes,
            "cpu_seconds": group.cpu_seconds,
            "rss_bytes": group.rss_bytes,
            "uptime_s": group.uptime_s,
            "restarts": pot.restarts,
            "events": events,
        })
    }

    async fn internal(&mut self, work: Internal) {
        match work {
            Internal::Exited {
                pot_id,
                generation,
                status,
            } => self.exited(&pot_id, generation, status),
            Internal::RestartDue { pot_id, generation } => {
                let due = self.pots.get(&pot_id).is_some_and(|p| {
                    p.generation == generation && p.process.is_none() && p.saved.run
                });
                if due {
                    if let Some(p) = self.pots.get_mut(&pot_id) {
                        p.restarts += 1;
                    }
                    match self.start(&pot_id) {
                        Ok(()) => self.set(&pot_id, PotStatus::Running, None),
                        Err(e) => self.set(&pot_id, PotStatus::Failed, Some(e)),
                    }
                }
            }
            Internal::Installed {
                pot_id,
                generation,
                result,
            } => {
                let Some(pot) = self.pots.get_mut(&pot_id) else {
                    return;
                };
                if pot.generation != generation {
                    return;
                }
                pot.installing = false;
                match result {
                    Ok(source) => {
                        log::info!("pot {pot_id} installed");
                        pot.source = Some(*source);
                        if pot.saved.run {
                            self.deploy(&pot_id);
                        } else {
                            self.set(&pot_id, PotStatus::Stopped, None);
                        }
                    }
                    Err(e) => {
                        log::warn!("pot {pot_id}: install failed: {e}");
                        pot.saved.run = false;
                        self.save();
                        self.set(&pot_id, PotStatus::Failed, Some(e));
                    }
                }
            }
        }
    }

    /// A pot ended on its own: restart it with backoff, or give up.
    fn exited(&mut self, id: &str, generation: u64, status: ExitStatus) {
        let Some(pot) = self.pots.get_mut(id) else {
            return;
        };
        if pot.generation != generation || pot.process.is_none() {
            return; // stopped on purpose
        }
        let ran = pot.process.take().map(|p| p.started.elapsed());
        self.crashed(id, generation, ran, describe(status), Instant::now());
    }

    /// Run `generation` of pot `id` died on its own at `now`, after `ran`,
    /// as `how` says: its token goes, and it is restarted later or given up.
    fn crashed(
        &mut self,
        id: &str,
        generation: u64,
        ran: Option<Duration>,
        how: String,
        now: Instant,
    ) {
        self.shared.revoke_pot_token(id);
        let Some(pot) = self.pots.get_mut(id) else {
            return;
        };
        let delay = match pot.crashes.record(ran, now) {
            AfterCrash::RestartIn(delay) => delay,
            AfterCrash::GiveUp => {
                log::warn!("pot {id} {how}: {MAX_CRASHES} crashes in 5 minutes, giving up");
                let why = format!("{how}; crashed {MAX_CRASHES} times in 5 minutes, not restarted");
                return self.set(id, PotStatus::Failed, Some(why));
            }
        };
        log::warn!("pot {id} {how}; restarting in {} s", delay.as_secs());
        let message = format!("{how}; restarting in {} s", delay.as_secs());
        let internal = self.internal.0.clone();
        let pot_id = id.to_string();
        self.ex
            .spawn(async move {
                Timer::after(delay).await;
                let _ = internal
                    .send(Internal::RestartDue { pot_id, generation })
                    .await;
            })
            .detach();
        // Nothing runs until the restart: say so, and why.
        self.set(id, PotStatus::Stopped, Some(message));
    }
}

fn new_pot(
    saved: SavedPot,
    source: Option<PotSource>,
    status: PotStatus,
    message: Option<String>,
) -> Pot {
    let kind = native::Kind::from_type(&saved.honeypot_type);
    Pot {
        saved,
        source,
        status,
        message,
        process: None,
        native: None,
        kind,
        generation: 0,
        crashes: Crashes::default(),
        restarts: 0,
        installing: false,
        logs: Rc::default(),
    }
}

/// The slow part of an install, run as a task.
struct InstallJob {
    ex: Rc<LocalExecutor<'static>>,
    saved: SavedPot,
    /// The checked git source, for a git install.
    git: Option<GitSource>,
    dir: PathBuf,
    potstore: PathBuf,
    run_as: RunAs,
    event_addr: String,
    node_id: u64,
    logs: Rc<RefCell<LogRing>>,
}

impl InstallJob {
    async fn run(self) -> Result<PotSource, String> {
        // Made and handed to the pot user through a descriptor that does
        // not follow a symlink planted at the pot's path.
        let owner = Some((self.run_as.uid, self.run_as.gid));
        state::owned_dir(&self.dir, 0o700, owner).map_err(|e| {
            format!(
                "giving {} to uid {}: {e}",
                self.dir.display(),
                self.run_as.uid
            )
        })?;
        let source_dir = match &self.git {
            Some(git) => {
                let dest = self.dir.join("source");
                let _ = std::fs::remove_dir_all(&dest);
                let branch = self.saved.git_branch.as_deref();
                let env = vec![("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())];
                let mut steps = Vec::new();
                match &git.commit {
                    None => steps.push(potstore::git_clone_command(&git.url, branch, &dest)),
                    Some(commit) => {
                        steps.push(potstore::git_clone_pinned_command(&git.url, branch, &dest));
                        steps.push(potstore::git_checkout_command(&dest, commit));
                    }
                }
                for step in steps {
                    let step = step.map_err(|e| e.0)?;
                    let args: Vec<OsString> = step.get_args().map(OsString::from).collect();
                    self.exec(Path::new("git"), &args, &env, "git").await?;
                }
                if let Some(commit) = &git.commit {
                    let head = potstore::git_head(&dest).map_err(|e| e.0)?;
                    if head != *commit {
                        return Err(format!(
                            "git: checked out {head:?}, not the pinned commit {commit}"
                        ));
                    }
                }
                dest
            }
            None => self.potstore.clone(),
        };
        let source = potstore::resolve(&source_dir, &self.saved.honeypot_type).map_err(|e| e.0)?;
        let env = potstore::pot_env(
            &source.manifest,
            &self.saved.config,
            &self.saved.pot_id,
            &self.dir,
            &source.folder,
            &self.event_addr,
            self.node_id,
        )
        .map_err(|e| e.0)?;
        self.exec(&source.install_path(), &[], &env, "install")
            .await?;
        Ok(source)
    }

    async fn exec(
        &self,
        program: &Path,
        args: &[OsString],
        env: &[(String, String)],
        label: &'static str,
    ) -> Result<(), String> {
        let (tx, rx) = async_channel::bounded(1);
        let running = pot_process::spawn(
            &self.ex,
            Spec {
                program,
                args,
                cwd: &self.dir,
                env,
                run_as: Some(self.run_as),
                logs: self.logs.clone(),
                label,
            },
            move |status| {
                let _ = tx.try_send(status);
            },
        )
        .map_err(|e| format!("{label}: starting {}: {e}", program.display()))?;
        let status = future::or(async { rx.recv().await.ok() }, async {
            Timer::after(INSTALL_TIMEOUT).await;
            None
        })
        .await;
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => {
                // git says why in its `fatal:` line, then adds hints.
                let lines = self.logs.borrow().lines();
                let why = lines
                    .iter()
                    .rev()
                    .find(|l| l.contains("fatal:") || l.contains("error:"))
                    .or(lines.last())
                    .cloned()
                    .unwrap_or_default();
                Err(format!("{label} {}: {why}", describe(s)))
            }
            None => {
                running.stop(Duration::from_secs(5)).await;
                Err(format!(
                    "{label} took longer than {} minutes",
                    INSTALL_TIMEOUT.as_secs() / 60
                ))
            }
        }
    }
}

/// Checks, before a start, that the pot's folder is a real directory (never
/// a symlink) owned by the pot user. A folder of another owner (pots ran as
/// `honeybee` before `honeybee-pot`, or `full.pot_user` changed) is handed
/// over, following no symlink, so that a pot restored after an upgrade can
/// still write its own files.
fn ensure_pot_owns(dir: &Path, who: RunAs) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let fd = state::open_dir(dir).map_err(|e| format!("pot dir: {e}"))?;
    let meta = fd
        .metadata()
        .map_err(|e| format!("reading {}: {e}", dir.display()))?;
    if meta.uid() == who.uid && meta.gid() == who.gid {
        return Ok(());
    }
    log::info!(
        "handing {} (uid {}) to the pot user, uid {}",
        dir.display(),
        meta.uid(),
        who.uid
    );
    crate::privileges::give(dir, who)
}

/// Sets `mode` on the directory `path` itself, never a symlink's target.
fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    state::open_dir(path)
        .and_then(|fd| fd.set_permissions(std::fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("setting mode {mode:o} on {}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
