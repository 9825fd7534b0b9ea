//! The HoneyBee core: the server every node reports to.
//!
//! This crate provides the parts of `honeybee-core`, one folder per concern:
//! [`node`] (the node port: Protocol v2 over TCP or TLS 1.3, the registry of
//! nodes with enrollment, TOTP, lockouts and liveness), [`store`] (the store
//! interface and its backends), [`api`] (the HTTP port: REST, `/metrics`, the
//! dashboard, and the gate in front of them), [`stream`] (the live stream port
//! for modules and browsers, docs/protocol.md §7, fed by the [`bus`]), the
//! extension [`modules`] the core runs as child processes (and what alert
//! modules report, [`alerts`]), and the [`config`]
//! and [`cli`] that set them up.
//!
//! # Implementation
//!
//! A new node connection is a smol task on the node I/O thread until it has
//! registered: admission, TLS, the first line. Registered connections are
//! then served by the node poller ([`node::poller`]), one thread over
//! edge-triggered epoll that reads every node's lines and writes the
//! commands and acknowledgements queued for it. The store has one writer
//! thread that commits queued writes in batched transactions; a
//! registration is acknowledged only after its transaction committed. The
//! HTTP API's gate has a thread of its own, and tiny_http serves the routes
//! on its own threads behind it, taking the registry's lock only briefly, so
//! a slow or silent node can never hold it up. Signals are taken by a
//! dedicated thread.
//!
//! # Example
//!
//! ```no_run
//! let config = honeybee_core::config::Config::default();
//! let core = honeybee_core::server::Core::start(&config).expect("core starts");
//! println!("nodes: {}, api: {}", core.node_addr, core.api_addr);
//! core.stop();
//! ```
#![warn(missing_docs)]

pub mod alerts;
pub mod api;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod fleet;
pub mod geo;
pub mod io_thread;
pub mod metrics;
pub mod modules;
pub mod node;
pub mod proxy_protocol;
pub mod secret;
pub mod server;
pub mod store;
pub mod stream;
pub mod trusted_proxies;
