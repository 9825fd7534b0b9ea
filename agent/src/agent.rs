//! Starting the parts of the agent for its mode and running them on one
//! thread until a signal.

use std::rc::Rc;

use honeybee_proto::{Command, NodeType};
use smol::LocalExecutor;

use crate::answers::failed;
use crate::config::{Config, Mode};
use crate::connect::Connector;
use crate::event_socket::{self, EventSocketStats};
use crate::extension_mode;
use crate::privileges;
use crate::shared::Shared;
use crate::spool::Spool;
use crate::state::{self, IdentityFile};
use crate::supervisor::Supervisor;
use crate::uplink::{NodeInfo, Uplink};

/// Runs the agent until `shutdown` yields (SIGTERM/SIGINT), then says
/// goodbye to the core. Errors are the ones that stop a start.
pub fn run(config: Config, shutdown: async_channel::Receiver<()>) -> Result<(), String> {
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
        Mode::Full => {
            let listener = event_socket::bind(config.full.event_port)?;
            let supervisor = Supervisor::new(ex.clone(), shared.clone(), config.clone())?;
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
            let settings = config.extension.settings()?;
            let tripwires = extension_mode::bind(settings, &shared);
            if let Some(who) = privileges::drop_to(&config.extension.user, &config.state_dir)? {
                log::info!(
                    "ports bound; now running as uid {} gid {}",
                    who.uid,
                    who.gid
                );
            }
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

/// Extension nodes run no pots: pot commands are answered Failed.
async fn no_pots(shared: &Shared) {
    while let Ok(c) = shared.commands.1.recv().await {
        match c {
            Command::GetInstalledPots | Command::UpdateConfig(_) | Command::Restart => {}
            other => failed(shared, &other, "an Extension node runs no pots"),
        }
    }
}
