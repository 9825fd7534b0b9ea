//! The HoneyBee agent: the edge binary, in one of two modes.
//!
//! **Full** mode supervises honeypots: the [`supervisor`] installs pots from
//! the [`potstore`] (or a git URL that [`git_allow`] permits), runs each in
//! its own process group as the pot user ([`users`], [`pot_process`]),
//! answers the core's pot commands ([`answers`]) and brings running pots
//! back after a restart; pots write their events to the loopback
//! [`event_socket`], whose lines [`event_map`] turns into `PotEvent`s.
//! **Extension** mode ([`extension_mode`]) runs the tripwires of the
//! `honeybee-extension` crate on the ports nobody on the machine uses.
//!
//! Both modes share the [`uplink`] to the core (TCP or TLS 1.3 through
//! [`connect`], TOTP registration through [`totp`], heartbeats, commands,
//! reconnects with [`backoff`]), the event [`spool`] that keeps every event
//! until the core acknowledges it, and the [`state`] directory holding the
//! node's identity. [`config`] and [`cli`] set them up; the wire protocol is
//! described in the repository's `docs/protocol.md`.
//!
//! # Implementation
//!
//! One thread runs a single-threaded executor: the uplink, the supervisor
//! or the tripwires, and the event socket are tasks on it sharing
//! [`shared::Shared`]; a second thread only waits for SIGTERM and SIGINT
//! ([`shutdown`]). Started as root, an Extension agent binds its ports
//! and then drops to an unprivileged user ([`privileges`]).
//!
//! # Platforms
//!
//! Linux (and other Unixes) run both modes; Windows runs Extension mode
//! only. What is Unix-only, and why, is written once in [`platform`].
#![warn(missing_docs)]

pub mod agent;
pub mod answers;
pub mod cli;
pub mod config;
pub mod connect;
pub mod event_map;
#[cfg(unix)]
pub mod event_socket;
pub mod extension_mode;
pub mod git_allow;
pub mod platform;
#[cfg(unix)]
pub mod pot_process;
#[cfg(unix)]
pub mod potstore;
#[cfg(unix)]
pub mod privileges;
#[cfg(unix)]
pub mod proc_stat;
pub mod service;
pub mod shared;
pub mod spool;
pub mod state;
#[cfg(unix)]
pub mod supervisor;
pub mod totp;
pub mod uplink;
#[cfg(unix)]
pub mod users;

/// Reconnect delays (shared with the other HoneyBee programs).
pub use honeybee_process::backoff;
