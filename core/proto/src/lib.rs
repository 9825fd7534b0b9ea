//! HoneyBee Protocol v2: the messages nodes, the core and modules exchange, and
//! the NDJSON codec that frames them.
//!
//! This crate provides:
//! - [`Envelope`], the `{"version": 2, "message": {...}}` wrapper, and
//!   [`decode`] / [`encode`] for one line;
//! - the message sets per direction: [`NodeMessage`] (node → core),
//!   [`CoreMessage`] (core → node), [`ModuleMessage`] (module → core) and
//!   [`StreamMessage`] (core → module);
//! - [`LineDecoder`], a sans-I/O frame splitter: feed it bytes, take complete
//!   lines out. It never buffers more than `max_message_bytes` of a line.
//!
//! # Implementation
//!
//! Nothing here touches a socket or a thread: parsing is pure so that it can be
//! unit tested and fuzzed (`fuzz/`: `proto_frame` checks [`LineDecoder`]
//! against a model of the framing rules, `proto_envelope` decodes every
//! message set and checks `decode(encode(x)) == x`). Reads are tolerant in
//! the ways `docs/protocol.md` lists (unit variants as `"X"`, `{"X": {}}` or `{"X": null}`; both `NodeEvent`
//! forms; the alternative `PotEvent` shape; unknown fields and variants), while
//! writes always use one canonical form.
//!
//! # Example
//!
//! ```
//! use honeybee_proto::{decode, encode, Envelope, LineDecoder, NodeMessage};
//!
//! let mut frames = LineDecoder::new(1024 * 1024);
//! frames.feed(b"{\"version\":2,\"message\":\"NodeDrop\"}\r\n").unwrap();
//! let line = frames.next_frame().unwrap().unwrap();
//! let msg: NodeMessage = decode(line).unwrap();
//! assert_eq!(msg, NodeMessage::NodeDrop);
//! assert_eq!(encode(&Envelope::new(msg)), b"{\"version\":2,\"message\":{\"NodeDrop\":{}}}\n");
//! ```
#![warn(missing_docs)]

mod command;
mod core_message;
pub mod ecs;
mod envelope;
mod frame;
mod module;
mod node_event;
mod node_message;
mod pot_event;
mod status;
pub mod time;
pub mod totp;
mod variant;

pub use command::{Command, InstallPot};
pub use core_message::{CoreMessage, EventAck, NodeCommand, RegistrationAck};
pub use envelope::{decode, encode, encode_into, DecodeError, Envelope, PROTOCOL_VERSION};
pub use frame::{FrameError, LineDecoder, DEFAULT_MAX_MESSAGE_BYTES};
pub use module::{
    BackendCommand, BackendRegistration, BackendResponse, BackendType, EventFilter, EventQuery,
    ModuleMessage, StreamMessage, Subscribe,
};
pub use node_event::{NodeEvent, NodeEventKind};
pub use node_message::{
    NodeMessage, NodeRegistration, NodeStatusUpdate, PotStatusUpdate, CAP_EVENT_ACK, CAP_EXTENSION,
    CAP_NATIVE_POTS,
};
pub use pot_event::PotEvent;
pub use status::{NodeStatus, NodeType, PotStatus};
