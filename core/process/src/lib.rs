//! What every HoneyBee program does the same way, written once.
//!
//! The core, the agent and the alerts module each parse flags, read a TOML
//! config file, log to stderr at the level of `HONEYBEE_LOG`, stop on
//! SIGTERM (Ctrl-C on Windows), write secrets to owner-only files and retry
//! with backoff. This crate holds those parts, so a fix lands in every
//! program at once:
//! [`flags`], [`toml_file`], [`logging`], [`signals`], [`private_files`],
//! [`child`] (supervised child processes, Unix only: process groups and
//! signals) and [`backoff`]. It stays small: the agent ships on routers
//! with a few megabytes to spare.
//!
//! Everything but [`child`] also builds for Windows, where the agent runs
//! in Extension mode: [`signals`] takes the console's Ctrl-C and
//! Ctrl-Break there, and [`private_files`] says what owner-only means
//! without Unix modes.
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
pub mod private_files;
pub mod signals;
pub mod toml_file;
