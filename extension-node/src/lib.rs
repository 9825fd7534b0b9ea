//! Extension mode: quiet tripwires on the ports nobody on this machine uses.
//!
//! An office workstation or a Raspberry Pi runs real services on some ports
//! and nothing on most. `honeybee-extension` takes the commonly probed ports
//! that are free ([`bind`]: never SO_REUSEPORT, on Windows SO_EXCLUSIVEADDRUSE
//! and never SO_REUSEADDR; a port in use on any address is skipped and tried
//! again later), answers each connection with a
//! plausible [`banner`] where the protocol speaks first, reads a few hundred
//! bytes, and turns them into a [`fingerprint`] (HTTP request line and
//! User-Agent, TLS ClientHello with SNI and JA3, SSH client version, RDP
//! cookie, SMB dialects, Redis/MySQL/FTP/Telnet/SMTP commands). A per-source
//! sliding window ([`scan`]) raises one `extension.portscan` for a scan and
//! turns a flood into periodic `extension.flood` summaries.
//!
//! # Implementation
//!
//! Everything runs as tasks on the caller's single-threaded executor
//! (`async-executor`'s `LocalExecutor`, as the agent uses): one task per
//! listening socket, one per connection being read (at most
//! [`tripwire::MAX_IN_FLIGHT`]), one ticker for flood summaries and port
//! retries. What the tripwires see goes to a [`tripwire::Sink`]; the agent's
//! sink appends it to the event spool. Parsers are sans-I/O functions over a
//! byte slice, so they are unit tested and fuzzed without sockets (`fuzz/`:
//! `fp_*`, `scan_detector`, `native_*`, `config_extension`). Every
//! structure fed from the network has a fixed capacity; overflow is counted
//! and reported, never allocated.
//!
//! # Example
//!
//! ```
//! use honeybee_extension::fingerprint::fingerprint;
//!
//! let fp = fingerprint(8080, b"GET /admin HTTP/1.1\r\nHost: x\r\nUser-Agent: zgrab/0.x\r\n\r\n");
//! assert_eq!(fp.protocol, "http");
//! ```
#![warn(missing_docs)]

pub mod banner;
pub mod bind;
pub mod config;
pub mod fingerprint;
pub mod native;
#[cfg(any(windows, test))]
mod port_table;
pub mod ports;
pub mod profile;
mod reader;
pub mod respond;
pub mod scan;
pub mod tripwire;
