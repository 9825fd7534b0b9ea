//! What every HoneyBee program does the same way, written once.
//!
//! The core, the agent and the alerts module each parse flags, read a TOML
//! config file, log to stderr at the level of `HONEYBEE_LOG`, stop on
//! SIGTERM, write secrets to owner-only files and retry with backoff. This
//! crate holds those parts, so a fix lands in every program at once:
//! [`flags`], [`toml_file`], [`logging`], [`signals`], [`private_files`],
//! [`child`] (supervised child processes) and [`backoff`]. It stays small: the agent ships on routers with a few
//! megabytes to spare.
//!
//! # Implementation
//!
//! Nothing here starts a thread except [`signals::on_signal`] (one thread
//! that waits for signals, so no async-signal-safety rules apply to what
//! it runs) and [`signals::Watchdog`] (one thread that ends a shutdown
//! that hangs).
//!
//! # Example
//!
//! ```
//! use honeybee_process::flags::Args;
//!
//! let argv = vec!["--port=9001".to_string(), "--verbose".to_string()];
//! let mut args = Args::new(&argv);
//! let (flag, inline) = args.next().unwrap();
//! assert_eq!((flag, args.value(flag, inline).unwrap().as_str()), ("--port", "9001"));
//! assert_eq!(args.next().map(|(f, _)| f), Some("--verbose"));
//! ```
#![warn(missing_docs)]

pub mod backoff;
#[cfg(unix)]
pub mod child;
pub mod flags;
pub mod logging;
#[cfg(unix)]
pub mod private_files;
#[cfg(unix)]
pub mod signals;
pub mod toml_file;
