//! The alerts module: tells people when a tripwire is touched.
//!
//! `honeybee-alerts` reads every event of the fleet from the core's stream
//! port (9003) by cursor, matches it against `[[rule]]`s, folds the noise
//! (the first event of a rule and source alerts at once, the rest of the
//! window becomes one digest), and delivers alerts to `[[channel]]`s:
//! webhooks (plain JSON with an HMAC signature, Slack, Microsoft Teams),
//! syslog (RFC 5424 or CEF over UDP, TCP or TLS), email (SMTP with
//! STARTTLS or implicit TLS) and ECS JSON lines in a file. It uses only
//! what any module may use: the stream port and the REST API.

#![warn(missing_docs)]

pub mod alert;
pub mod channels;
pub mod cidr;
pub mod compose;
pub mod config;
pub mod core_api;
pub mod deadline;
pub mod delivery;
pub mod duration;
pub mod engine;
pub mod glob;
pub mod http;
pub mod noise;
pub mod observed;
pub mod outbox;
pub mod rules;
pub mod run;
pub mod sanitize;
pub mod secret;
pub mod seen;
pub mod state;
pub mod stats;
pub mod stream;
pub mod tls;
