//! Where alerts go. Each channel type has its own file: its config (the
//! keys of a `[[channel]]` table besides the common ones) and a
//! [`Channel`] that delivers one alert at a time, blocking, bounded by the
//! channel's timeout. Retries, backoff, the outbox and the per-minute
//! ceiling are the caller's ([`crate::delivery`]), the same for every type.

use std::time::Duration;

use crate::alert::Alert;

pub mod email;
pub mod file;
pub mod syslog;
pub mod webhook;

/// Delivers alerts to one receiver.
pub trait Channel: Send {
    /// Delivers `alert`, or says why not (the message names the receiver
    /// and never carries a secret). Returns within about the channel's
    /// timeout, whatever the receiver does.
    fn send(&mut self, alert: &Alert) -> Result<(), String>;
}

/// What every channel's constructor gets besides its own config.
#[derive(Clone, Debug)]
pub struct Common {
    /// The channel's name (for errors and logs).
    pub name: String,
    /// Connect, read and write timeout towards the receiver.
    pub timeout: Duration,
}
