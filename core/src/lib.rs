//! The HoneyBee core: the server every node reports to.
//!
//! This crate provides the parts of `honeybee-core`: the node port
//! ([`listener`], [`session`]: Protocol v2 over TCP or TLS 1.3), the
//! [`registry`] of nodes (enrollment, TOTP, lockouts, liveness), the
//! [`store`] trait and its embedded SQLite implementation, the HTTP [`api`]
//! with `/metrics`, the [`stream`] port for modules and the dashboard
//! ([`module_session`]: PROTOCOL.md §7, live messages from the [`bus`]), the
//! extension [`modules`] the core runs as child processes (managed through
//! [`api_modules`]), and the [`config`] and [`cli`] that set them up.
//!
//! # Implementation
//!
//! Node connections are smol tasks on a small executor (one thread per core,
//! at most four); each connection is one task that reads lines, handles
//! them, and writes the commands queued for its node. The async-io reactor
//! thread wakes them. The store has one writer thread that commits queued
//! writes in batched transactions; a registration is acknowledged only after
//! its transaction committed. The HTTP API runs on its own tiny_http threads
//! and only takes the registry's lock briefly, so a slow or silent node can
//! never hold it up. Signals are taken by a dedicated thread.
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

pub mod admission;
pub mod api;
pub mod api_events;
pub mod api_modules;
pub mod budget;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod event_page;
pub mod event_query;
pub mod events;
pub mod files;
pub mod http_gate;
pub mod http_head;
pub mod io_thread;
pub mod listener;
pub mod lockout;
pub mod metrics;
pub mod module_session;
pub mod modules;
pub mod node_poller;
pub mod origin;
pub mod outbox;
pub mod registry;
pub mod secret;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod sqlite_events;
pub mod sqlite_store;
pub mod store;
pub mod stream;
pub mod tls;
pub mod totp;
