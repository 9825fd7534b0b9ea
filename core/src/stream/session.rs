//! One module session on the stream port (docs/protocol.md §7), without I/O:
//! registration first, then one [`BackendResponse`] per command, in order.
//!
//! [`ModuleSession::on_message`] turns each decoded message into a [`Step`]
//! for the connection task in [`crate::stream`] to carry out: a reply, a
//! reply and close, a new subscription, or work that blocks on the database
//! ([`Blocking`], run off the executor).
//!
//! The replies keep the shapes of the reference core (PROTOCOL.md §7), so a
//! module written for it works unchanged: `GetNodes` answers
//! `{"nodes": [ids]}`, `GetNodeCount` and `GetActiveConnections`
//! `{"count": N}`, registration `{"backend_id": N}`. Fields are only ever
//! added to those shapes, never renamed or removed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use honeybee_proto::{
    BackendCommand, BackendResponse, CoreMessage, DecodeError, ModuleMessage, NodeCommand,
    PROTOCOL_VERSION,
};
use serde_json::{json, Value};

use crate::api::event_page;
use crate::bus::{Bus, Interest, Topic};
use crate::metrics::{Metrics, StreamRefusal};
use crate::node::registry::{Registry, SendError};
use crate::store::{EventFilter, EventStore};

/// The answer to a missing or wrong API token.
pub const INVALID_TOKEN: &str = "invalid API token";

/// What a stream session uses.
pub struct ModuleContext {
    /// Nodes.
    pub registry: Arc<Registry>,
    /// Stored events.
    pub events: Arc<dyn EventStore>,
    /// Live messages.
    pub bus: Arc<Bus>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The API token modules must present.
    pub token: String,
}

impl ModuleContext {
    /// Whether `given` is the API token (constant time).
    pub fn token_ok(&self, given: &str) -> bool {
        !self.token.is_empty() && crate::secret::equal(given.as_bytes(), self.token.as_bytes())
    }
}

/// What the connection does next.
#[derive(Debug)]
pub enum Step {
    /// Send this response.
    Reply(BackendResponse),
    /// Send this response, then close.
    ReplyAndClose(BackendResponse),
    /// Close without a word.
    Close,
    /// Replace the subscription with this one, reply `Success`, and replay
    /// the stored events after the cursor, if one was given.
    Subscribe(Interest, Option<i64>),
    /// Run this off the executor, then send its response.
    Blocking(Blocking),
}

/// Commands that wait on the database.
#[derive(Debug, Clone, PartialEq)]
pub enum Blocking {
    /// `RemoveNode`: waits for the delete to commit.
    Remove(u64),
    /// `QueryEvents`: reads a page.
    Query(EventFilter),
}

impl Blocking {
    /// Does the work and says how it went. Blocks.
    pub fn run(self, ctx: &ModuleContext) -> BackendResponse {
        match self {
            Blocking::Remove(id) => match ctx.registry.delete(id) {
                None => failure(format!("Node {id} not found")),
                Some(Err(e)) => failure(format!("removing node {id}: {e}")),
                Some(Ok(())) => BackendResponse::Success {
                    message: Some(format!("Node {id} removed")),
                    data: None,
                },
            },
            Blocking::Query(filter) => match event_page::page(ctx.events.as_ref(), &filter) {
                Ok(page) => success(None, page),
                Err(e) => failure(format!("querying events: {e}")),
            },
        }
    }
}

fn failure(why: impl Into<String>) -> BackendResponse {
    BackendResponse::Failure(why.into())
}

fn success(message: Option<String>, data: Value) -> BackendResponse {
    BackendResponse::Success {
        message,
        data: Some(data),
    }
}

/// Numbers module sessions for their `backend_id`, unique in this process.
static NEXT_BACKEND_ID: AtomicU64 = AtomicU64::new(1);

/// A session's protocol state.
#[derive(Debug, Default)]
pub struct ModuleSession {
    registered: bool,
    name: Option<String>,
    backend_id: Option<u64>,
}

impl ModuleSession {
    /// A session that must send `BackendRegistration` first.
    pub fn new() -> ModuleSession {
        ModuleSession::default()
    }

    /// A session already authorised (a valid `?token=` on the WebSocket URL).
    pub fn authorised() -> ModuleSession {
        ModuleSession {
            registered: true,
            name: None,
            backend_id: None,
        }
    }

    /// Whether the API token was presented.
    pub fn registered(&self) -> bool {
        self.registered
    }

    /// The module's name, once it sent one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Handles one decoded message (or the decode error).
    pub fn on_message(
        &mut self,
        msg: Result<ModuleMessage, DecodeError>,
        ctx: &ModuleContext,
    ) -> Step {
        let msg = match msg {
            Ok(m) => m,
            Err(DecodeError::NotUtf8 | DecodeError::InvalidJson(_)) => {
                ctx.metrics.stream_refused(StreamRefusal::InvalidJson);
                return Step::Close;
            }
            Err(DecodeError::WrongVersion(v)) => {
                let why = failure(format!(
                    "protocol version {v} is not supported; this core speaks version {PROTOCOL_VERSION}"
                ));
                return if self.registered {
                    Step::Reply(why)
                } else {
                    Step::ReplyAndClose(why)
                };
            }
            Err(DecodeError::InvalidMessage(e)) => {
                if !self.registered {
                    // Not a usable registration: no valid token came.
                    ctx.metrics.stream_refused(StreamRefusal::InvalidToken);
                    return Step::ReplyAndClose(failure(INVALID_TOKEN));
                }
                ctx.metrics.stream_commands.fetch_add(1, Ordering::Relaxed);
                return Step::Reply(failure(format!("invalid message: {e}")));
            }
        };
        match msg {
            ModuleMessage::BackendRegistration(reg) => {
                if !ctx.token_ok(&reg.token) {
                    ctx.metrics.stream_refused(StreamRefusal::InvalidToken);
                    return Step::ReplyAndClose(failure(INVALID_TOKEN));
                }
                if !self.registered {
                    ctx.metrics
                        .stream_registrations
                        .fetch_add(1, Ordering::Relaxed);
                }
                self.registered = true;
                log::info!(
                    "module `{}` ({:?}) registered on the stream port",
                    reg.backend_name,
                    reg.backend_type
                );
                self.name = Some(reg.backend_name);
                let id = *self
                    .backend_id
                    .get_or_insert_with(|| NEXT_BACKEND_ID.fetch_add(1, Ordering::Relaxed));
                Step::Reply(success(
                    Some("Registration successful".into()),
                    json!({ "backend_id": id }),
                ))
            }
            ModuleMessage::BackendDrop => Step::Close,
            _ if !self.registered => {
                ctx.metrics.stream_refused(StreamRefusal::InvalidToken);
                Step::ReplyAndClose(failure(INVALID_TOKEN))
            }
            ModuleMessage::BackendCommand(cmd) => {
                ctx.metrics.stream_commands.fetch_add(1, Ordering::Relaxed);
                command(cmd, &ctx.registry)
            }
            ModuleMessage::Unknown(name) => Step::Reply(failure(format!("unknown message {name}"))),
        }
    }
}

fn send_failure(node_id: u64, e: SendError) -> BackendResponse {
    failure(match e {
        SendError::UnknownNode => format!("Node {node_id} not found"),
        SendError::NotConnected => format!("node {node_id} is not connected"),
        SendError::Busy => format!("node {node_id} is busy: its command queue is full"),
    })
}

fn nodes_json<T: serde::Serialize>(nodes: &[T]) -> Value {
    serde_json::to_value(nodes).unwrap_or(Value::Null)
}

/// The step for one command.
pub fn command(cmd: BackendCommand, registry: &Registry) -> Step {
    let reply = match cmd {
        BackendCommand::NodeCommand(NodeCommand { node_id, command }) => {
            let msg = CoreMessage::NodeCommand(NodeCommand { node_id, command });
            match registry.send(node_id, msg) {
                Ok(()) => BackendResponse::Success {
                    message: Some(format!("sent to node {node_id}")),
                    data: None,
                },
                Err(e) => send_failure(node_id, e),
            }
        }
        BackendCommand::BroadcastCommand { command } => {
            let mut sent = 0u64;
            for node in registry.list().into_iter().filter(|n| n.connected) {
                let msg = CoreMessage::NodeCommand(NodeCommand {
                    node_id: node.node_id,
                    command: command.clone(),
                });
                if registry.send(node.node_id, msg).is_ok() {
                    sent += 1;
                }
            }
            BackendResponse::Success {
                message: Some(format!("Command broadcast to {sent} nodes")),
                data: None,
            }
        }
        BackendCommand::GetNodes => {
            let ids: Vec<u64> = registry.list().iter().map(|n| n.node_id).collect();
            success(
                Some(format!("Retrieved {} nodes", ids.len())),
                json!({ "nodes": ids }),
            )
        }
        BackendCommand::GetNode { node_id } => match registry.get(node_id) {
            Some(view) => success(
                Some(format!("Node {node_id} retrieved")),
                serde_json::to_value(view).unwrap_or(Value::Null),
            ),
            None => failure(format!("Node {node_id} not found")),
        },
        BackendCommand::GetNodesByStatus { status } => {
            let nodes: Vec<_> = registry
                .list()
                .into_iter()
                .filter(|n| n.status == status.as_str())
                .collect();
            success(None, json!({ "nodes": nodes_json(&nodes) }))
        }
        BackendCommand::GetNodeCount => {
            let n: u64 = registry.status_counts().iter().map(|(_, n)| n).sum();
            success(None, json!({ "count": n }))
        }
        BackendCommand::RemoveNode { node_id } => return Step::Blocking(Blocking::Remove(node_id)),
        BackendCommand::GetActiveConnections => {
            // `nodes` is ours, added beside the reference's `count`.
            let ids: Vec<u64> = registry
                .list()
                .iter()
                .filter(|n| n.connected)
                .map(|n| n.node_id)
                .collect();
            success(None, json!({ "count": ids.len(), "nodes": ids }))
        }
        BackendCommand::Subscribe(sub) => {
            let mut topics = Vec::with_capacity(sub.topics.len());
            for t in &sub.topics {
                match Topic::parse(t) {
                    Some(topic) => topics.push(topic),
                    None => {
                        return Step::Reply(failure(format!(
                            "unknown topic `{t}`; topics are events, status, nodes"
                        )))
                    }
                }
            }
            let cursor = match sub.cursor.as_deref().map(crate::stream::resume::parse) {
                None => None,
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => return Step::Reply(failure(e)),
            };
            return Step::Subscribe(
                Interest {
                    topics,
                    filter: sub.filter.unwrap_or_default(),
                },
                cursor,
            );
        }
        BackendCommand::QueryEvents(q) => match event_page::filter_from_query(&q) {
            Ok(filter) => return Step::Blocking(Blocking::Query(filter)),
            Err(e) => failure(e),
        },
        BackendCommand::Unknown(name) => failure(format!("unknown command {name}")),
    };
    Step::Reply(reply)
}

/// The `token` parameter of a WebSocket request's query string, if any.
pub fn url_token(query: Option<&str>) -> Option<String> {
    let pairs = crate::api::event_query::pairs(query?).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::node::registry::Policy;
    use crate::store::sqlite;
    use crate::store::NodeStore;
    use honeybee_proto::{
        encode, BackendRegistration, BackendType, Command, Envelope, EventQuery, NodeRegistration,
        NodeStatus, NodeType, Subscribe,
    };

    const TOKEN: &str = "secret-token";

    struct Fixture {
        ctx: ModuleContext,
        dir: std::path::PathBuf,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.dir).ok();
        }
    }

    fn fixture(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("hb-module-{name}-{}", std::process::id()));
        honeybee_process::private_files::create_private_dir(&dir).unwrap();
        let store = Arc::new(sqlite::open(&dir.join("t.db")).unwrap());
        let metrics = Arc::new(Metrics::default());
        let bus = Arc::new(Bus::new());
        let policy = Policy::for_tests();
        let registry = Registry::load(
            store.clone() as Arc<dyn NodeStore>,
            metrics.clone(),
            bus.clone(),
            policy,
            Clock::new(),
            Arc::new(crate::fleet::Alone::new("test".into())),
        )
        .unwrap();
        Fixture {
            ctx: ModuleContext {
                registry: Arc::new(registry),
                events: store as Arc<dyn EventStore>,
                bus,
                metrics,
                token: TOKEN.into(),
            },
            dir,
        }
    }

    fn registration(token: &str) -> Result<ModuleMessage, DecodeError> {
        Ok(ModuleMessage::BackendRegistration(BackendRegistration {
            backend_name: "m".into(),
            backend_type: BackendType::Api,
            token: token.into(),
        }))
    }

    fn cmd(c: BackendCommand) -> Result<ModuleMessage, DecodeError> {
        Ok(ModuleMessage::BackendCommand(c))
    }

    fn reply(step: Step) -> BackendResponse {
        match step {
            Step::Reply(r) => r,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    fn data(step: Step) -> Value {
        match reply(step) {
            BackendResponse::Success { data: Some(d), .. } => d,
            other => panic!("expected success with data, got {other:?}"),
        }
    }

    fn fails_with(step: Step, want: &str) {
        assert_eq!(reply(step), BackendResponse::Failure(want.into()));
    }

    /// Registers node `id`; keeps its connection (the outbox) open.
    fn connect_node(ctx: &ModuleContext, id: u64) -> crate::node::outbox::Inbox {
        let reg = NodeRegistration {
            node_id: id,
            node_name: format!("n{id}"),
            address: "127.0.0.1".into(),
            port: 1,
            node_type: NodeType::Full,
            totp_code: None,
            enrollment_token: None,
            agent_version: None,
            capabilities: vec![],
            spool_epoch: None,
        };
        let accepted = ctx
            .registry
            .register(&reg, "127.0.0.1:5000".parse().unwrap())
            .unwrap();
        smol::block_on(accepted.receipt.committed()).unwrap();
        accepted.outbox
    }

    #[test]
    fn registration_needs_the_token() {
        let f = fixture("reg");
        let mut s = ModuleSession::new();
        match s.on_message(cmd(BackendCommand::GetNodes), &f.ctx) {
            Step::ReplyAndClose(BackendResponse::Failure(why)) => assert_eq!(why, INVALID_TOKEN),
            other => panic!("{other:?}"),
        }
        let mut s = ModuleSession::new();
        match s.on_message(registration("wrong"), &f.ctx) {
            Step::ReplyAndClose(BackendResponse::Failure(why)) => assert_eq!(why, INVALID_TOKEN),
            other => panic!("{other:?}"),
        }
        let mut s = ModuleSession::new();
        assert!(matches!(
            s.on_message(Err(DecodeError::InvalidJson("x".into())), &f.ctx),
            Step::Close
        ));
        assert!(matches!(
            s.on_message(Err(DecodeError::WrongVersion(3)), &f.ctx),
            Step::ReplyAndClose(BackendResponse::Failure(_))
        ));
        let mut s = ModuleSession::new();
        assert!(matches!(
            reply(s.on_message(registration(TOKEN), &f.ctx)),
            BackendResponse::Success { .. }
        ));
        assert!(s.registered());
        assert_eq!(s.name(), Some("m"));
        assert_eq!(
            f.ctx.metrics.stream_registrations.load(Ordering::Relaxed),
            1
        );
        // Registered: unknowns and bad payloads are answered, not fatal.
        fails_with(
            s.on_message(cmd(BackendCommand::Unknown("Frobnicate".into())), &f.ctx),
            "unknown command Frobnicate",
        );
        fails_with(
            s.on_message(Ok(ModuleMessage::Unknown("Hello".into())), &f.ctx),
            "unknown message Hello",
        );
        assert!(matches!(
            s.on_message(Err(DecodeError::InvalidMessage("bad".into())), &f.ctx),
            Step::Reply(BackendResponse::Failure(_))
        ));
        assert!(matches!(
            s.on_message(Ok(ModuleMessage::BackendDrop), &f.ctx),
            Step::Close
        ));
        // An empty configured token never matches.
        let mut empty = fixture("empty");
        empty.ctx.token.clear();
        assert!(!empty.ctx.token_ok(""));
    }

    #[test]
    fn node_commands_and_queries() {
        let f = fixture("cmds");
        let mut s = ModuleSession::authorised();
        let ctx = &f.ctx;
        assert_eq!(
            data(s.on_message(cmd(BackendCommand::GetNodeCount), ctx)),
            json!({"count": 0})
        );
        let inbox = connect_node(ctx, 7);

        let restart = Command::Restart;
        assert!(matches!(
            reply(s.on_message(
                cmd(BackendCommand::NodeCommand(NodeCommand {
                    node_id: 7,
                    command: restart.clone()
                })),
                ctx
            )),
            BackendResponse::Success { .. }
        ));
        let got = smol::block_on(inbox.recv());
        assert_eq!(
            got,
            Some(CoreMessage::NodeCommand(NodeCommand {
                node_id: 7,
                command: restart.clone()
            }))
        );
        fails_with(
            s.on_message(
                cmd(BackendCommand::NodeCommand(NodeCommand {
                    node_id: 8,
                    command: restart.clone(),
                })),
                ctx,
            ),
            "Node 8 not found",
        );
        assert_eq!(
            reply(s.on_message(
                cmd(BackendCommand::BroadcastCommand { command: restart }),
                ctx
            )),
            BackendResponse::Success {
                message: Some("Command broadcast to 1 nodes".into()),
                data: None
            }
        );
        let nodes = data(s.on_message(cmd(BackendCommand::GetNodes), ctx));
        assert_eq!(nodes, json!({"nodes": [7]}));
        assert_eq!(
            data(s.on_message(cmd(BackendCommand::GetNode { node_id: 7 }), ctx))["node_name"],
            "n7"
        );
        fails_with(
            s.on_message(cmd(BackendCommand::GetNode { node_id: 9 }), ctx),
            "Node 9 not found",
        );
        let connected = data(s.on_message(
            cmd(BackendCommand::GetNodesByStatus {
                status: NodeStatus::Connected,
            }),
            ctx,
        ));
        assert_eq!(connected["nodes"][0]["node_id"], 7);
        let running = data(s.on_message(
            cmd(BackendCommand::GetNodesByStatus {
                status: NodeStatus::Running,
            }),
            ctx,
        ));
        assert_eq!(running, json!({"nodes": []}));
        assert_eq!(
            data(s.on_message(cmd(BackendCommand::GetNodeCount), ctx)),
            json!({"count": 1})
        );
        let active = data(s.on_message(cmd(BackendCommand::GetActiveConnections), ctx));
        assert_eq!(active, json!({"count": 1, "nodes": [7]}));

        // Remove waits on the store: a Blocking step.
        match s.on_message(cmd(BackendCommand::RemoveNode { node_id: 7 }), ctx) {
            Step::Blocking(b) => {
                assert_eq!(b, Blocking::Remove(7));
                assert!(matches!(b.run(ctx), BackendResponse::Success { .. }));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Blocking::Remove(7).run(ctx),
            BackendResponse::Failure("Node 7 not found".into())
        );
        assert_eq!(
            data(s.on_message(cmd(BackendCommand::GetNodeCount), ctx)),
            json!({"count": 0})
        );
        fails_with(
            s.on_message(
                cmd(BackendCommand::NodeCommand(NodeCommand {
                    node_id: 7,
                    command: Command::Restart,
                })),
                ctx,
            ),
            "Node 7 not found",
        );
    }

    /// The reply to `c` as the module reads it off the wire.
    fn wire(s: &mut ModuleSession, c: BackendCommand, ctx: &ModuleContext) -> Value {
        let step = s.on_message(cmd(c), ctx);
        let r = match step {
            Step::Blocking(b) => b.run(ctx),
            other => reply(other),
        };
        let line = encode(&Envelope::new(
            honeybee_proto::StreamMessage::BackendResponse(r),
        ));
        let v: Value = serde_json::from_slice(&line).unwrap();
        v["message"]["BackendResponse"].clone()
    }

    // Golden replies: the shapes a module written for the reference core
    // parses (PROTOCOL.md §7). A change here breaks those modules.
    #[test]
    fn golden_registration_reply() {
        let f = fixture("golden-reg");
        let mut s = ModuleSession::new();
        let r = match s.on_message(registration(TOKEN), &f.ctx) {
            Step::Reply(r) => r,
            other => panic!("{other:?}"),
        };
        let line = encode(&Envelope::new(
            honeybee_proto::StreamMessage::BackendResponse(r),
        ));
        let v: Value = serde_json::from_slice(&line).unwrap();
        let ok = &v["message"]["BackendResponse"]["Success"];
        assert_eq!(ok["message"], "Registration successful", "{v}");
        assert!(ok["data"]["backend_id"].as_u64().is_some(), "{v}");
        // A second session gets another id.
        let mut other = ModuleSession::new();
        let r2 = data(other.on_message(registration(TOKEN), &f.ctx));
        assert_ne!(r2["backend_id"], ok["data"]["backend_id"]);
    }

    #[test]
    fn golden_get_nodes_and_count_replies() {
        let f = fixture("golden-nodes");
        let ctx = &f.ctx;
        let mut s = ModuleSession::authorised();
        let _a = connect_node(ctx, 7);
        let _b = connect_node(ctx, 9);
        let nodes = wire(&mut s, BackendCommand::GetNodes, ctx);
        let mut ids: Vec<u64> = nodes["Success"]["data"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        ids.sort();
        assert_eq!(ids, vec![7, 9], "{nodes}");
        assert_eq!(nodes["Success"]["message"], "Retrieved 2 nodes");
        assert_eq!(
            wire(&mut s, BackendCommand::GetNodeCount, ctx),
            json!({"Success": {"message": null, "data": {"count": 2}}})
        );
        let active = wire(&mut s, BackendCommand::GetActiveConnections, ctx);
        assert_eq!(active["Success"]["data"]["count"], 2, "{active}");
    }

    #[test]
    fn golden_get_node_replies() {
        let f = fixture("golden-node");
        let ctx = &f.ctx;
        let mut s = ModuleSession::authorised();
        let _a = connect_node(ctx, 7);
        let one = wire(&mut s, BackendCommand::GetNode { node_id: 7 }, ctx);
        assert_eq!(one["Success"]["message"], "Node 7 retrieved");
        let node = &one["Success"]["data"];
        assert_eq!(node["node_id"], 7, "{one}");
        assert_eq!(node["node_name"], "n7", "{one}");
        assert_eq!(
            wire(&mut s, BackendCommand::GetNode { node_id: 8 }, ctx),
            json!({"Failure": "Node 8 not found"})
        );
        let by_status = wire(
            &mut s,
            BackendCommand::GetNodesByStatus {
                status: NodeStatus::Connected,
            },
            ctx,
        );
        let listed = &by_status["Success"]["data"]["nodes"];
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{by_status}");
        assert_eq!(listed[0]["node_id"], 7, "{by_status}");
        assert_eq!(listed[0]["node_name"], "n7", "{by_status}");
    }

    #[test]
    fn golden_command_replies_carry_no_data() {
        let f = fixture("golden-cmd");
        let ctx = &f.ctx;
        let mut s = ModuleSession::authorised();
        let _a = connect_node(ctx, 7);
        let sent = wire(
            &mut s,
            BackendCommand::NodeCommand(NodeCommand {
                node_id: 7,
                command: Command::Restart,
            }),
            ctx,
        );
        assert_eq!(sent["Success"]["data"], Value::Null, "{sent}");
        assert!(sent["Success"]["message"].is_string(), "{sent}");
        assert_eq!(
            wire(
                &mut s,
                BackendCommand::BroadcastCommand {
                    command: Command::Restart
                },
                ctx
            ),
            json!({"Success": {"message": "Command broadcast to 1 nodes", "data": null}})
        );
        assert_eq!(
            wire(&mut s, BackendCommand::RemoveNode { node_id: 7 }, ctx),
            json!({"Success": {"message": "Node 7 removed", "data": null}})
        );
        assert_eq!(
            wire(&mut s, BackendCommand::RemoveNode { node_id: 7 }, ctx),
            json!({"Failure": "Node 7 not found"})
        );
        assert_eq!(
            wire(
                &mut s,
                BackendCommand::NodeCommand(NodeCommand {
                    node_id: 7,
                    command: Command::Restart,
                }),
                ctx
            ),
            json!({"Failure": "Node 7 not found"})
        );
    }

    #[test]
    fn subscribe_and_query_events() {
        let f = fixture("sub");
        let ctx = &f.ctx;
        let mut s = ModuleSession::authorised();
        match s.on_message(
            cmd(BackendCommand::Subscribe(Subscribe {
                cursor: None,
                topics: vec!["events".into(), "nodes".into()],
                filter: Some(honeybee_proto::EventFilter {
                    node_id: Some(3),
                    pot_id: None,
                    event_type_prefix: Some("cowrie.".into()),
                }),
            })),
            ctx,
        ) {
            Step::Subscribe(i, _) => {
                assert_eq!(i.topics, vec![Topic::Events, Topic::Nodes]);
                assert_eq!(i.filter.node_id, Some(3));
            }
            other => panic!("{other:?}"),
        }
        fails_with(
            s.on_message(
                cmd(BackendCommand::Subscribe(Subscribe {
                    cursor: None,
                    topics: vec!["events".into(), "weather".into()],
                    filter: None,
                })),
                ctx,
            ),
            "unknown topic `weather`; topics are events, status, nodes",
        );
        match s.on_message(cmd(BackendCommand::QueryEvents(EventQuery::default())), ctx) {
            Step::Blocking(b) => {
                assert_eq!(
                    b.run(ctx),
                    BackendResponse::Success {
                        message: None,
                        data: Some(json!({"events": [], "next_cursor": null}))
                    }
                );
            }
            other => panic!("{other:?}"),
        }
        let bad = s.on_message(
            cmd(BackendCommand::QueryEvents(EventQuery {
                limit: Some(5000),
                ..Default::default()
            })),
            ctx,
        );
        match reply(bad) {
            BackendResponse::Failure(why) => assert!(why.starts_with("limit:"), "{why}"),
            other => panic!("{other:?}"),
        }
        // The wire form of a response is one line.
        let line = encode(&Envelope::new(
            honeybee_proto::StreamMessage::BackendResponse(failure("x")),
        ));
        assert_eq!(
            line,
            b"{\"version\":2,\"message\":{\"BackendResponse\":{\"Failure\":\"x\"}}}\n"
        );
    }

    #[test]
    fn url_tokens() {
        assert_eq!(url_token(Some("token=abc")), Some("abc".into()));
        assert_eq!(url_token(Some("x=1&token=a%2Bb")), Some("a+b".into()));
        assert_eq!(url_token(Some("x=1")), None);
        assert_eq!(url_token(None), None);
    }
}
