//! The node port (9001): accepting connections, Protocol v2 sessions, and
//! the registry that decides who a node is and whether it may stay.

pub mod admission;
pub mod budget;
pub mod listener;
pub mod lockout;
pub mod outbox;
pub mod poller;
pub mod registry;
pub mod session;
pub mod tls;
pub mod totp;
