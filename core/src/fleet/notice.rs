//! What cores tell each other through PostgreSQL's NOTIFY: one channel per
//! kind, tab-separated fields (core names have no control characters).
//! Parsing is separate from I/O so that a malformed payload (another
//! program may NOTIFY on the same channel) is tested to be ignored.
//!
//! Every payload is small and bounded (PostgreSQL refuses 8,000 bytes and
//! more): a command for another core's node waits in the `routed_commands`
//! table and its notice carries only the row's id.

/// The channels a core listens on.
pub const CHANNELS: [&str; 4] = [MOVED, NODE, COMMAND, EVENTS];
/// A core took a node over (or let it go: epoch 0).
pub const MOVED: &str = "honeybee_moved";
/// A node's stored record, pots or status changed.
pub const NODE: &str = "honeybee_node";
/// A command for a node another core holds.
pub const COMMAND: &str = "honeybee_command";
/// A batch of events was committed.
pub const EVENTS: &str = "honeybee_events";

/// One notification, parsed.
#[derive(Debug, PartialEq)]
pub enum Notice {
    /// `core` holds the node since `epoch`; 0: it let the node go.
    Moved {
        /// The core.
        core: String,
        /// The node.
        node_id: u64,
        /// The hold's epoch (increasing across the fleet); 0 when released.
        epoch: u64,
    },
    /// `core` changed the node's stored state.
    Node {
        /// The core.
        core: String,
        /// The node.
        node_id: u64,
    },
    /// A command for the node, for core `core` to take from
    /// `routed_commands` and deliver.
    Command {
        /// The core that holds the node.
        core: String,
        /// The node.
        node_id: u64,
        /// The command's row.
        id: i64,
    },
    /// `core` committed `count` events with ids from `first`.
    Events {
        /// The core.
        core: String,
        /// The first id of the batch.
        first: i64,
        /// How many ids the batch took.
        count: i64,
    },
}

impl Notice {
    /// The channel and payload to send.
    pub fn encode(&self) -> (&'static str, String) {
        match self {
            Notice::Moved {
                core,
                node_id,
                epoch,
            } => (MOVED, format!("{core}\t{node_id}\t{epoch}")),
            Notice::Node { core, node_id } => (NODE, format!("{core}\t{node_id}")),
            Notice::Command { core, node_id, id } => (COMMAND, format!("{core}\t{node_id}\t{id}")),
            Notice::Events { core, first, count } => (EVENTS, format!("{core}\t{first}\t{count}")),
        }
    }

    /// Parses a payload from `channel`; `None` for anything malformed.
    pub fn parse(channel: &str, payload: &str) -> Option<Notice> {
        let mut fields = payload.splitn(3, '\t');
        let core = fields.next()?.to_string();
        let second = fields.next()?;
        let third = fields.next();
        Some(match channel {
            MOVED => Notice::Moved {
                core,
                node_id: second.parse().ok()?,
                epoch: third?.parse().ok()?,
            },
            NODE if third.is_none() => Notice::Node {
                core,
                node_id: second.parse().ok()?,
            },
            COMMAND => Notice::Command {
                core,
                node_id: second.parse().ok()?,
                id: third?.parse().ok()?,
            },
            EVENTS => {
                let (first, count): (i64, i64) = (second.parse().ok()?, third?.parse().ok()?);
                if count <= 0 || count > 1_000_000 {
                    return None;
                }
                Notice::Events { core, first, count }
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_round_trips() {
        let notices = [
            Notice::Moved {
                core: "a:9001".into(),
                node_id: u64::MAX,
                epoch: 7,
            },
            Notice::Node {
                core: "a".into(),
                node_id: 1,
            },
            Notice::Command {
                core: "b".into(),
                node_id: 2,
                id: i64::MAX,
            },
            Notice::Events {
                core: "c".into(),
                first: 8192,
                count: 4096,
            },
        ];
        for n in notices {
            let (channel, payload) = n.encode();
            assert_eq!(Notice::parse(channel, &payload), Some(n));
        }
    }

    #[test]
    fn malformed_payloads_are_ignored() {
        for (channel, payload) in [
            (MOVED, ""),
            (MOVED, "a\t1"),
            (MOVED, "a\tx\t1"),
            (NODE, "a\t1\t2"),
            (COMMAND, "a\t1\t{not an id"),
            (COMMAND, "a\t1\t{\"StopPot\":\"p\"}"),
            (COMMAND, "a\t1"),
            (EVENTS, "a\t1\t-5"),
            (EVENTS, "a\t1\t99999999"),
            ("other", "a\t1\t1"),
        ] {
            assert_eq!(Notice::parse(channel, payload), None, "{channel} {payload}");
        }
    }
}
