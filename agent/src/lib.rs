//! The HoneyBee agent: the edge binary.
//!
//! (crate docs: being written)
#![warn(missing_docs)]

pub mod agent;
pub mod answers;
pub mod cli;
pub mod config;
pub mod connect;
pub mod event_map;
pub mod event_socket;
pub mod extension_mode;
pub mod git_allow;
pub mod pot_process;
pub mod potstore;
pub mod privileges;
pub mod proc_stat;
pub mod shared;
pub mod spool;
pub mod state;
pub mod supervisor;
pub mod totp;
pub mod uplink;
pub mod users;

/// Reconnect delays (shared with the other HoneyBee programs).
pub use honeybee_process::backoff;
