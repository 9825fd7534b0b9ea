//! Starting and stopping the core's parts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_io::Timer;
use futures_lite::future;
use futures_rustls::TlsAcceptor;

use crate::alerts::AlertBoard;
use crate::api::gate::{self, HttpGate};
use crate::api::{Api, ApiContext};
use crate::bus::{Bus, Live};
use crate::clock::Clock;
use crate::config::{Config, Enrollment};
use crate::fleet::delivery::Delivery;
use crate::fleet::shared::SharedFleet;
use crate::fleet::{Alone, Fleet};
use crate::geo::Enricher;
use crate::io_thread;
use crate::metrics::Metrics;
use crate::modules::{CoreAccess, Modules, Timing};
use crate::node::admission::{Admission, Limits};
use crate::node::listener::{self, NodeListener};
use crate::node::lockout::LockoutPolicy;
use crate::node::poller::NodePoller;
use crate::node::registry::{Policy, Registry};
use crate::node::session::NodeContext;
use crate::node::{tls, totp};
use crate::store::{postgres, sqlite, Retention, Store};
use crate::store::{EventStore, NodeStore};
use crate::stream::session::ModuleContext;
use crate::stream::StreamListener;
use honeybee_process::private_files as files;

/// Time modules get between SIGTERM and SIGKILL at shutdown.
const MODULE_GRACE: Duration = Duration::from_secs(3);

/// A started core; [`Core::stop`] shuts it down.
pub struct Core {
    api: Api,
    registry: Arc<Registry>,
    store: Arc<Store>,
    stop: async_channel::Sender<()>,
    poller: Arc<NodePoller>,
    modules: Arc<Modules>,
    shared_fleet: Option<Arc<SharedFleet>>,
    workers: Vec<std::thread::JoinHandle<()>>,
    /// Where nodes connect.
    pub node_addr: SocketAddr,
    /// Where the API answers.
    pub api_addr: SocketAddr,
    /// Where modules and the dashboard connect (WebSocket or NDJSON).
    pub stream_addr: SocketAddr,
}

/// Reads the API token from the config, or from `<data_dir>/api-token`,
/// generating that file on first start.
pub fn api_token(config: &Config) -> Result<String, String> {
    if !config.api_token.is_empty() {
        return Ok(config.api_token.clone());
    }
    let path = config.api_token_path();
    match files::read_secret(&path) {
        Ok(t) if !t.trim().is_empty() => {
            files::restrict_to_owner(&path)
                .map_err(|e| format!("securing {}: {e}", path.display()))?;
            log::info!("API token: read from {}", path.display());
            Ok(t.trim().to_string())
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("reading the API token {}: {e}", path.display()))
        }
        Ok(_) | Err(_) => {
            let raw = totp::generate_key().map_err(|e| format!("generating an API token: {e}"))?;
            let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
            files::write_private(&path, format!("{token}\n").as_bytes())
                .map_err(|e| format!("writing the API token to {}: {e}", path.display()))?;
            log::info!(
                "API token: generated into {} (mode 0600); use it as 'Authorization: Bearer <token>'",
                path.display()
            );
            Ok(token)
        }
    }
}

impl Core {
    /// Starts every part. Errors say which part and why.
    pub fn start(config: &Config) -> Result<Core, String> {
        Core::start_until(config, &|| false)
    }

    /// Like [`Core::start`], but gives up waiting for the database once
    /// `stop` answers true (a signal arrived).
    pub fn start_until(config: &Config, stop: &dyn Fn() -> bool) -> Result<Core, String> {
        let enricher =
            Enricher::open(config.enrichment.geoip_path(), config.enrichment.asn_path())?;
        Core::start_with(config, stop, Arc::new(enricher))
    }

    /// Like [`Core::start_until`], with the enrichment databases already
    /// opened (`main` opens them first: a bad file exits 2).
    pub fn start_with(
        config: &Config,
        stop: &dyn Fn() -> bool,
        enricher: Arc<Enricher>,
    ) -> Result<Core, String> {
        let ip: IpAddr = config
            .bind
            .parse()
            .map_err(|_| format!("bind: `{}` is not an IP address", config.bind))?;
        if config.enrollment == Enrollment::Open && config.binds_beyond_loopback() {
            log::warn!(
                "enrollment is open and the core binds {ip}: anyone who reaches port {} can register a node; \
                 use --enrollment token or approve",
                config.node_port
            );
        }
        let trusted_proxies =
            crate::trusted_proxies::TrustedProxies::parse(&config.trusted_proxies)
                .map_err(|e| e.to_string())?;
        trusted_proxies.log_start();
        files::create_private_dir(&config.data_dir)
            .map_err(|e| format!("creating data dir {}: {e}", config.data_dir.display()))?;
        let token = api_token(config)?;
        let bus = Arc::new(Bus::new());
        let metrics = Arc::new(Metrics::default());
        let retention = Retention {
            days: config.retention_days,
            max_events: config.max_events,
            max_bytes: config.max_database_mb.saturating_mul(1024 * 1024),
            every: std::time::Duration::from_secs(config.retention_interval),
        };
        let core_name = config.effective_core_name();
        let postgres_url = config.postgres().map_err(|e| e.0)?;
        let store = match &postgres_url {
            Some(url) => postgres::open(url, &core_name, retention, metrics.clone(), stop),
            None => sqlite::open_with(&config.database_path(), retention, metrics.clone()),
        };
        let store = Arc::new(store.map_err(|e| e.to_string())?);
        if enricher.active() {
            enricher.watch();
            store.set_enricher(enricher.clone());
        }
        // With a shared database the lease lasts two heartbeat intervals:
        // a core that dies stops counting within that.
        let shared_fleet = match &postgres_url {
            Some(url) => Some(
                SharedFleet::new(
                    core_name.clone(),
                    url.clone(),
                    Duration::from_secs(config.heartbeat_interval.saturating_mul(2).max(2)),
                )
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let fleet: Arc<dyn Fleet> = match &shared_fleet {
            Some(f) => f.clone(),
            None => Arc::new(Alone::new(core_name.clone())),
        };
        store.set_retention_active(!fleet.shared());
        let clock = Clock::new();
        let policy = Policy {
            enrollment: config.enrollment,
            enrollment_token: config.enrollment_token.clone(),
            max_nodes: config.max_nodes,
            heartbeat_interval: Duration::from_secs(config.heartbeat_interval),
            lockout: LockoutPolicy {
                failures: config.lockout_failures,
                window: Duration::from_secs(config.lockout_window),
                base: Duration::from_secs(config.lockout_base),
                max: Duration::from_secs(config.lockout_max.max(config.lockout_base)),
            },
        };
        let registry = Arc::new(
            Registry::load(
                store.clone() as Arc<dyn NodeStore>,
                metrics.clone(),
                bus.clone(),
                policy,
                clock,
                fleet.clone(),
            )
            .map_err(|e| e.to_string())?,
        );
        if let Some(f) = &shared_fleet {
            f.listen(Arc::new(Delivery {
                registry: registry.clone(),
                bus: bus.clone(),
                store: store.clone() as Arc<dyn NodeStore>,
            }))
            .map_err(|e| e.to_string())?;
        }
        let tls = if config.tls.enabled() {
            Some(TlsAcceptor::from(tls::server_config(&config.tls)?))
        } else {
            None
        };
        let node_socket = listener::bind(SocketAddr::new(ip, config.node_port))
            .map_err(|e| format!("binding node port {ip}:{}: {e}", config.node_port))?;
        let node_addr = node_socket
            .get_ref()
            .local_addr()
            .map_err(|e| format!("node port: {e}"))?;
        let stream_socket = listener::bind(SocketAddr::new(ip, config.stream_port))
            .map_err(|e| format!("binding stream port {ip}:{}: {e}", config.stream_port))?;
        let stream_addr = stream_socket
            .get_ref()
            .local_addr()
            .map_err(|e| format!("stream port: {e}"))?;
        let stream_ctx = Arc::new(ModuleContext {
            registry: registry.clone(),
            events: store.clone() as Arc<dyn EventStore>,
            bus: bus.clone(),
            metrics: metrics.clone(),
            token: token.clone(),
        });
        let api_socket = gate::bind(SocketAddr::new(ip, config.api_port))
            .map_err(|e| format!("binding API port {ip}:{}: {e}", config.api_port))?;
        let api_addr = api_socket
            .get_ref()
            .local_addr()
            .map_err(|e| format!("API port: {e}"))?;
        // Modules reach the stream port and the API on loopback when the
        // core binds everything.
        let for_modules = |addr: SocketAddr| {
            if ip.is_unspecified() {
                let loopback: IpAddr = match ip {
                    IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                };
                SocketAddr::new(loopback, addr.port())
            } else {
                addr
            }
        };
        let modules = Arc::new(Modules::start(
            &config.modules,
            CoreAccess {
                stream_addr: for_modules(stream_addr).to_string(),
                api_addr: for_modules(api_addr).to_string(),
                // The API port speaks plain HTTP (TLS is for port 9001);
                // an API behind a TLS proxy is not where modules connect.
                api_tls: false,
                api_token: token.clone(),
            },
            Timing::default(),
            metrics.clone(),
        )?);
        // tiny_http behind the gate, on a socket only this user can reach.
        let api_unix = config.data_dir.join("api.sock");
        let _ = std::fs::remove_file(&api_unix);
        let api = Api::start(
            &api_unix,
            Arc::new(ApiContext {
                registry: registry.clone(),
                metrics: metrics.clone(),
                events: store.clone() as Arc<dyn EventStore>,
                token: token.clone(),
                modules: modules.clone(),
                modules_api_add: config.modules_api_add,
                stream_port: stream_addr.port(),
                fleet: fleet.clone(),
                alerts: Arc::new(AlertBoard::default()),
                store_trouble: {
                    let store = store.clone();
                    Arc::new(move || store.failing().map(|e| format!("database: {e}")))
                },
            }),
        )?;

        let executor = Arc::new(smol::Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        {
            // Acknowledge committed events on the node's current connection.
            let registry = registry.clone();
            let metrics = metrics.clone();
            store.on_commit(Box::new(move |node_id, epoch, seq| {
                let counter = match registry.ack_events(node_id, epoch, seq) {
                    Ok(true) => &metrics.event_acks,
                    Ok(false) => return,
                    Err(_) => &metrics.event_acks_failed,
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }));
        }
        {
            // The live stream sees what was stored, in commit order. With
            // several cores, commit order is the order of PostgreSQL's
            // notices: the fleet listener publishes every core's batches,
            // this core's own from a stash.
            let bus = bus.clone();
            let fleet = shared_fleet.clone();
            store.on_stored(Box::new(move |events| {
                if !bus.active() {
                    return;
                }
                let events = events.iter().map(|(e, id)| (e.to_pot_event(), *id));
                match &fleet {
                    Some(f) => f.stash_stored(events.collect()),
                    None => events.for_each(|(e, id)| bus.publish(Live::event(e, id))),
                }
            }));
        }
        let node_ctx = Arc::new(NodeContext {
            registry: registry.clone(),
            bus: bus.clone(),
            events: store.clone() as Arc<dyn EventStore>,
            metrics: metrics.clone(),
            max_message_bytes: config.max_message_bytes,
            fleet: fleet.clone(),
        });
        let poller = Arc::new(
            NodePoller::start(node_ctx.clone())
                .map_err(|e| format!("starting the node poller: {e}"))?,
        );
        let node_listener = NodeListener {
            socket: node_socket,
            ctx: node_ctx,
            admission: Admission::new(Limits {
                max_pending: config.max_pending_connections,
                max_pending_per_source: config.max_pending_per_source,
                rate_per_source: config.connect_rate_per_source,
            }),
            tls,
            registration_timeout: Duration::from_secs(config.registration_timeout),
            executor: executor.clone(),
            poller: poller.clone(),
            trusted_proxies: trusted_proxies.clone(),
        };
        let until_stopped = {
            let stopped = stopped.clone();
            move || {
                let stopped = stopped.clone();
                async move {
                    let _ = stopped.recv().await;
                }
            }
        };
        executor
            .spawn(future::or(node_listener.run(), until_stopped()))
            .detach();
        // The API gate has an executor and a thread of its own: a flood on
        // the node or stream port must not delay /health or an operator.
        let api_executor = Arc::new(smol::Executor::new());
        let gate = HttpGate {
            socket: api_socket,
            backend: api_unix,
            token,
            metrics: metrics.clone(),
            executor: api_executor.clone(),
            trusted_proxies: trusted_proxies.clone(),
        };
        api_executor
            .spawn(future::or(gate.run(), until_stopped()))
            .detach();
        let stream_listener = StreamListener {
            socket: stream_socket,
            ctx: stream_ctx,
            registration_timeout: Duration::from_secs(config.registration_timeout),
            executor: executor.clone(),
            api_port: api_addr.port(),
            trusted_proxies,
        };
        executor
            .spawn(future::or(stream_listener.run(), until_stopped()))
            .detach();
        let sweep_every =
            Duration::from_millis((config.heartbeat_interval * 1000 / 4).clamp(250, 5000));
        let sweeper = registry.clone();
        executor
            .spawn(future::or(
                async move {
                    loop {
                        Timer::after(sweep_every).await;
                        sweeper.sweep();
                    }
                },
                until_stopped(),
            ))
            .detach();
        let workers = {
            let ex = executor.clone();
            let gate_stopped = stopped.clone();
            let stopped = stopped.clone();
            let worker = std::thread::Builder::new()
                .name("node-io".into())
                .spawn(move || io_thread::run(ex, stopped))
                .map_err(|e| format!("starting the node I/O thread: {e}"))?;
            let gate = std::thread::Builder::new()
                .name("api-gate".into())
                .spawn(move || io_thread::run(api_executor, gate_stopped))
                .map_err(|e| format!("starting the API gate thread: {e}"))?;
            vec![worker, gate]
        };
        // Modules and retention run on one core of the fleet: the leader.
        {
            let (fleet, modules, store) = (fleet.clone(), modules.clone(), store.clone());
            // Decided before the core serves, so that modules a leader runs
            // are running when the API first answers about them.
            let mut leading = fleet.is_leader();
            if leading {
                store.set_retention_active(true);
                modules.autostart();
            }
            executor
                .spawn(future::or(
                    async move {
                        loop {
                            let now = fleet.is_leader();
                            if now != leading {
                                leading = now;
                                store.set_retention_active(now);
                                let modules = modules.clone();
                                // Stopping waits for the modules to exit.
                                smol::unblock(move || {
                                    if now {
                                        modules.autostart();
                                    } else {
                                        log::info!("fleet: no longer the leader; stopping modules");
                                        modules.stop_all(MODULE_GRACE);
                                    }
                                })
                                .await;
                            }
                            if !fleet.shared() {
                                // Alone, a core leads from start to end:
                                // nothing to watch, no wake-ups.
                                break;
                            }
                            Timer::after(Duration::from_millis(500)).await;
                        }
                    },
                    until_stopped(),
                ))
                .detach();
        }
        let where_kept = match &postgres_url {
            Some(url) => format!("state in PostgreSQL {url}"),
            None => format!("data in {}", config.data_dir.display()),
        };
        log::info!(
            "honeybee-core {} ({core_name}) serving nodes on {node_addr} ({}), API on http://{api_addr}, stream on {stream_addr}, enrollment {}, {where_kept}",
            env!("CARGO_PKG_VERSION"),
            if config.tls.client_ca.is_empty() {
                if config.tls.enabled() { "TLS 1.3" } else { "plain TCP" }
            } else {
                "TLS 1.3 + client certificates"
            },
            config.enrollment.as_str(),
        );
        Ok(Core {
            api,
            registry,
            store,
            stop,
            poller,
            modules,
            shared_fleet,
            workers,
            node_addr,
            api_addr,
            stream_addr,
        })
    }

    /// Stops accepting, closes node connections, commits queued writes.
    ///
    /// Returns when everything is stopped; it never ends the process, so a
    /// program that embeds the core goes on after it (the binary bounds the
    /// wait with [`honeybee_process::signals::Watchdog`]).
    pub fn stop(self) {
        self.modules.stop_all(MODULE_GRACE);
        self.stop.close();
        self.registry.close_all();
        if let Some(f) = &self.shared_fleet {
            f.leave();
        }
        self.poller.stop();
        self.api.stop();
        for w in self.workers {
            let _ = w.join();
        }
        self.store.close();
        log::info!("stopped");
    }
}
