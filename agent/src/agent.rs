//! Starting the parts of the agent for its mode and running them on one
//! thread until a signal.

use std::rc::Rc;

use honeybee_proto::{Command, NodeType};
use smol::LocalExecutor;

use crate::answers::failed;
use crate::config::{Config, Mode};
use crate::connect::Connector;
#[cfg(unix)]
use crate::event_socket::{self, EventSocketStats};
use crate::extension_mode;
#[cfg(unix)]
use crate::privileges;
use crate::shared::Shared;
use crate::spool::Spool;
use crate::state::{self, IdentityFile};
#[cfg(unix)]
use crate::supervisor::Supervisor;
use crate::uplink::{NodeInfo, Uplink};

/// The Extension tripwires' SSH host key in the state directory (0600),
/// so that a returning visitor's client sees the same key after a restart.
const SSH_HOST_KEY: &str = "ssh_host_ed25519_key";

/// Why the agent stopped with an error.
#[derive(Debug)]
pub enum Failure {
    /// It cannot run as configured (say its state dir is not writable by
    /// the user it runs as): exit status 2, like bad flags.
    Refused(String),
    /// Anything else that stopped a start: exit status 1.
    Error(String),
}

impl Failure {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 2,
            Failure::Error(_) => 1,
        }
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failure::Error(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Failure::Refused(e) | Failure::Error(e) => f.write_str(e),
        }
    }
}

/// Refuses to run when the state dir (or one of `more` inside it) is not
/// writable by the user the agent now is: it could not keep its TOTP key or
/// spool a single event, and would only look alive.
fn check_state_writable(config: &Config, more: &[&str]) -> Result<(), Failure> {
    let mut dirs = vec![config.state_dir.clone()];
    dirs.extend(more.iter().map(|d| config.state_dir.join(d)));
    for dir in dirs {
        if let Err(e) = state::probe_writable(&dir) {
            return Err(Failure::Refused(format!(
                "the state dir is not writable by {}, which the agent runs as: creating a file in {}: {e}; \
                 it could not save its TOTP key or spool events. Let that user reach and write {} \
                 (every directory above it needs x for it), or choose another --state-dir",
                crate::platform::current_user(),
                dir.display(),
                config.state_dir.display(),
            )));
        }
    }
    Ok(())
}

/// Runs the agent until `shutdown` yields (SIGTERM/SIGINT), then says
/// goodbye to the core. Errors are the ones that stop a start.
pub fn run(config: Config, shutdown: async_channel::Receiver<()>) -> Result<(), Failure> {
    #[cfg(not(unix))]
    if config.mode == Mode::Full {
        return Err(Failure::Refused(
            crate::platform::FULL_MODE_UNSUPPORTED.into(),
        ));
    }
    let config = Rc::new(config);
    state::private_dir(&config.state_dir)
        .map_err(|e| format!("creating state dir {}: {e}", config.state_dir.display()))?;
    let identity = IdentityFile::open(&config.state_dir)?;
    let node_id = identity.identity.node_id;
    let spool = Spool::open(
        &config.state_dir.join("spool"),
        config.spool.max_bytes,
        config.spool.memory_events,
    )?;
    let connector = Connector::new(&config)?;
    let shared = Rc::new(Shared::new(node_id, spool, config.heartbeat_interval));
    let ex = Rc::new(LocalExecutor::new());
    let info = match config.mode {
        Mode::Full => NodeInfo {
            node_type: NodeType::Full,
            capabilities: Vec::new(),
            port: config.full.event_port,
        },
        Mode::Extension => NodeInfo {
            node_type: NodeType::Agent,
            capabilities: vec!["extension".into()],
            port: 0,
        },
    };
    match config.mode {
        // Refused before anything was made, above.
        #[cfg(not(unix))]
        Mode::Full => {
            return Err(Failure::Refused(
                crate::platform::FULL_MODE_UNSUPPORTED.into(),
            ))
        }
        #[cfg(unix)]
        Mode::Full => {
            let listener = event_socket::bind(config.full.event_port)?;
            let supervisor = Supervisor::new(ex.clone(), shared.clone(), config.clone())?;
            // Full mode keeps its user; the check still catches a read-only
            // or foreign state dir before the agent looks healthy.
            check_state_writable(&config, &["spool", "pots"])?;
            ex.spawn(event_socket::serve(
                ex.clone(),
                listener,
                shared.clone(),
                event_socket::Limits::new(config.full.event_rate),
                Rc::new(EventSocketStats::default()),
            ))
            .detach();
            let shared = shared.clone();
            ex.spawn(async move {
                supervisor.run(shutdown).await;
                shared.stop();
            })
            .detach();
        }
        Mode::Extension => {
            let mut settings = config.extension.settings()?;
            settings.ssh_host_key = Some(config.state_dir.join(SSH_HOST_KEY));
            let tripwires = extension_mode::bind(settings, &shared);
            #[cfg(unix)]
            if let Some(who) = privileges::drop_to(&config.extension.user, &config.state_dir)? {
                log::info!(
                    "ports bound; now running as uid {} gid {}",
                    who.uid,
                    who.gid
                );
            }
            check_state_writable(&config, &["spool"])?;
            ex.spawn(tripwires.run(ex.clone())).detach();
            let shared = shared.clone();
            ex.spawn(async move {
                let _ = futures_lite::future::or(
                    async {
                        let _ = shutdown.recv().await;
                    },
                    no_pots(&shared),
                )
                .await;
                shared.stop();
            })
            .detach();
        }
    }
    log::info!(
        "honeybee-agent {} ({:?} mode) node {node_id}, state in {}, core {}",
        env!("CARGO_PKG_VERSION"),
        config.mode,
        config.state_dir.display(),
        config.core
    );
    let uplink = Uplink::new(config.clone(), connector, identity, shared.clone(), info);
    async_io::block_on(ex.run(uplink.run()));
    shared.spool.borrow_mut().sync();
    log::info!("stopped");
    Ok(())
}

/// Extension nodes run no pots: pot commands are answered Failed, except
/// that the tripwires show as the pot `extension` (the pot id of their
/// events): its status, with the ports taken and skipped, answers
/// GetInstalledPots and any command naming it.
async fn no_pots(shared: &Shared) {
    while let Ok(c) = shared.commands.1.recv().await {
        match c {
            Command::GetInstalledPots => extension_mode::report_ports(shared, None),
            Command::UpdateConfig(_) | Command::Restart => {}
            Command::GetPotStatus(ref id) if id == extension_mode::POT_ID => {
                extension_mode::report_ports(shared, None)
            }
            ref other if other.pot_id() == Some(extension_mode::POT_ID) => {
                extension_mode::report_ports(
                    shared,
                    Some(format!(
                        "{}: the tripwires of an Extension node take no pot commands",
                        other.name()
                    )),
                )
            }
            other => failed(shared, &other, "an Extension node runs no pots"),
        }
    }
}
