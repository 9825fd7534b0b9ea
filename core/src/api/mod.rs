//! The HTTP side (port 9002): `/health`, `/metrics` and the REST API under
//! `/api/v1`, served by tiny_http on its own threads.

pub mod alerts;
pub mod dashboard;
pub mod event_page;
pub mod event_query;
pub mod events;
pub mod facts;
pub mod gate;
pub mod head;
pub mod modules;
pub mod routes;
pub mod sessions;
pub mod sources;
pub mod views;

use std::io::Read;
use std::sync::Arc;
use std::thread::JoinHandle;

use honeybee_proto::{Command, CoreMessage, NodeCommand};
use serde_json::{json, Value};
use tiny_http::{Header, Request, Response, Server};

use crate::alerts::AlertBoard;
use crate::fleet::{Fleet, Routed};
use crate::metrics::Metrics;
use crate::modules::Modules;
use crate::node::outbox;
use crate::node::registry::{Registry, SendError};
use crate::store::EventStore;
use routes::Op;

/// Threads answering requests; the API never waits on node connections.
const THREADS: usize = 2;
/// NodeEvents returned with one node, and status changes.
const NODE_EVENTS: usize = 50;
/// Node events read for one node's two lists.
const NODE_HISTORY_READ: usize = 400;

/// What the API reads from.
pub struct ApiContext {
    /// Nodes.
    pub registry: Arc<Registry>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Attack events.
    pub events: Arc<dyn EventStore>,
    /// The bearer token.
    pub token: String,
    /// Extension modules.
    pub modules: Arc<Modules>,
    /// Whether `POST /api/v1/modules` may add modules.
    pub modules_api_add: bool,
    /// The stream port (WebSocket), for the dashboard's `/ui/config.json`.
    pub stream_port: u16,
    /// The other cores, if the database is shared.
    pub fleet: Arc<dyn Fleet>,
    /// What alert modules reported.
    pub alerts: Arc<AlertBoard>,
    /// Why the store cannot write now, if it cannot.
    pub store_trouble: Arc<dyn Fn() -> Option<String> + Send + Sync>,
}

/// The running HTTP server.
pub struct Api {
    server: Arc<Server>,
    threads: Vec<JoinHandle<()>>,
}

impl Api {
    /// Serves on the Unix socket `path`; the TCP port belongs to the
    /// [`crate::api::gate`], which forwards admitted connections here.
    pub fn start(path: &std::path::Path, ctx: Arc<ApiContext>) -> Result<Api, String> {
        let server = Arc::new(
            Server::http_unix(path)
                .map_err(|e| format!("binding the API's Unix socket {}: {e}", path.display()))?,
        );
        let threads = (0..THREADS)
            .map(|i| {
                let server = server.clone();
                let ctx = ctx.clone();
                std::thread::Builder::new()
                    .name(format!("api-{i}"))
                    .spawn(move || {
                        for request in server.incoming_requests() {
                            answer(request, &ctx);
                        }
                    })
                    .map_err(|e| format!("starting API thread: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Api { server, threads })
    }

    /// Stops accepting and waits for the threads.
    pub fn stop(self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Every answer; boxed so that streamed bodies (the export) fit too.
pub type Reply = tiny_http::ResponseBox;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A header from two ASCII constants.
pub fn header(name: &str, value: &str) -> Header {
    // Both are ASCII constants from this file.
    Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap_or_else(|_| {
        Header::from_bytes(&b"X-Invalid"[..], &b"1"[..]).expect("static header")
    })
}

/// A JSON answer.
pub fn json_reply(status: u16, body: &Value) -> Reply {
    Response::from_data(body.to_string().into_bytes())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        .boxed()
}

/// The OpenAPI 3 description of these routes.
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

fn not_allowed(allow: &str) -> Reply {
    error(405, "method not allowed").with_header(header("Allow", allow))
}

/// A JSON error answer: `{"error": message}`.
pub fn error(status: u16, message: impl Into<String>) -> Reply {
    json_reply(status, &json!({ "error": message.into() }))
}

fn answer(mut request: Request, ctx: &ApiContext) {
    let reply = route(&mut request, ctx);
    if let Err(e) = request.respond(reply) {
        log::debug!("answering an API request: {e}");
    }
}

fn authorized(request: &Request, token: &str) -> bool {
    request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Bearer "))
        .is_some_and(|given| crate::secret::equal(given.trim().as_bytes(), token.as_bytes()))
}

fn route(request: &mut Request, ctx: &ApiContext) -> Reply {
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or("");
    let method = request.method().as_str().to_string();
    if dashboard::is_dashboard_path(path) && matches!(method.as_str(), "GET" | "HEAD") {
        let host = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Host"))
            .map(|h| h.value.as_str().to_string());
        return dashboard::serve(path, host.as_deref(), ctx.stream_port);
    }
    let found = routes::find(&method, path);
    let public = matches!(&found, routes::Match::Found(r, _) if r.public);
    // Without the token, not even which routes exist is told.
    if !public && !authorized(request, &ctx.token) {
        return error(401, "missing or invalid API token")
            .with_header(header("WWW-Authenticate", "Bearer realm=\"honeybee\""));
    }
    let (route, params) = match found {
        routes::Match::Found(route, params) => (route, params),
        routes::Match::WrongMethod(mut allowed) => {
            if allowed.contains(&"GET") {
                allowed.push("HEAD");
            }
            return not_allowed(&allowed.join(", "));
        }
        routes::Match::NotFound => return error(404, format!("no route for {path}")),
    };
    let param = params.first().copied().unwrap_or("");
    dispatch(route.op, param, &url, request, ctx)
}

/// Runs one operation of the table in [`routes`].
fn dispatch(op: Op, param: &str, url: &str, request: &mut Request, ctx: &ApiContext) -> Reply {
    match op {
        Op::Health => health(ctx),
        // The API's description is public, like /health.
        Op::OpenApi => Response::from_data(OPENAPI.as_bytes().to_vec())
            .with_header(header("Content-Type", "application/json"))
            .boxed(),
        Op::Metrics => {
            let mut text = ctx.metrics.render(&ctx.registry.status_counts());
            fleet_metrics(ctx, &mut text);
            ctx.alerts.render_metrics(&mut text);
            Response::from_data(text.into_bytes())
                .with_header(header(
                    "Content-Type",
                    "text/plain; version=0.0.4; charset=utf-8",
                ))
                .boxed()
        }
        Op::Nodes => {
            let nodes = ctx.registry.list();
            json_reply(200, &json!({"count": nodes.len(), "nodes": nodes}))
        }
        Op::Node => with_node(param, |id| node_detail(ctx, id)),
        Op::DeleteNode => with_node(param, |id| match ctx.registry.delete(id) {
            None => no_such_node(id),
            Some(Ok(())) => json_reply(200, &json!({ "deleted": id })),
            Some(Err(e)) => error(500, e.to_string()),
        }),
        Op::ApproveNode => with_node(param, |id| approve(ctx, id, request)),
        Op::NodeCommand => with_node(param, |id| command(ctx, id, request)),
        Op::Events => events::list(ctx, url),
        Op::ExportEvents => events::export(ctx, url),
        Op::Event => views::event(ctx, param),
        Op::Source => sources::source(ctx, param),
        Op::Sessions => sessions::list(ctx, url),
        Op::Session => sessions::one(ctx, param, url),
        Op::Stats => events::stats(ctx, url),
        Op::Honeypots => honeypots(ctx),
        Op::Cores => cores(ctx),
        Op::Modules => modules::list(ctx),
        Op::AddModule => modules::add(ctx, request),
        Op::StartModule => modules::start(ctx, param),
        Op::StopModule => modules::stop(ctx, param),
        Op::Alerts => alerts::list(ctx),
        Op::ReportAlerts => alerts::report(ctx, request),
    }
}

/// `GET /health`: 503 while the database fails, so a load balancer routes
/// around this core.
fn health(ctx: &ApiContext) -> Reply {
    match (ctx.store_trouble)().or_else(|| ctx.fleet.trouble()) {
        None => json_reply(
            200,
            &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"),
                "core_name": ctx.fleet.core_name()}),
        ),
        Some(reason) => json_reply(
            503,
            &json!({"status": "unavailable", "reason": reason,
                "version": env!("CARGO_PKG_VERSION"),
                "core_name": ctx.fleet.core_name()}),
        ),
    }
}

/// `GET /api/v1/cores`: every core of the fleet, alive or not (a day back).
fn cores(ctx: &ApiContext) -> Reply {
    let local = ctx.registry.connected_here();
    match ctx.fleet.cores(local) {
        Ok(cores) => json_reply(200, &json!({"count": cores.len(), "cores": cores})),
        Err(e) => error(503, e.to_string()),
    }
}

/// This core's name and role, and connected nodes per core.
fn fleet_metrics(ctx: &ApiContext, out: &mut String) {
    use std::fmt::Write;
    let name = crate::metrics::label_value(ctx.fleet.core_name());
    let _ = writeln!(out, "# HELP honeybee_core_info This core: its name, and whether it leads (runs modules and retention).");
    let _ = writeln!(out, "# TYPE honeybee_core_info gauge");
    let _ = writeln!(
        out,
        "honeybee_core_info{{core_name=\"{name}\",leader=\"{}\"}} 1",
        ctx.fleet.is_leader()
    );
    let _ = writeln!(
        out,
        "# HELP honeybee_nodes_connected Connected nodes, by the core they are connected to."
    );
    let _ = writeln!(out, "# TYPE honeybee_nodes_connected gauge");
    for (core, n) in ctx.registry.connected_by_core() {
        let core = crate::metrics::label_value(&core);
        let _ = writeln!(out, "honeybee_nodes_connected{{core_name=\"{core}\"}} {n}");
    }
}

fn with_node(id: &str, f: impl FnOnce(u64) -> Reply) -> Reply {
    match id.parse::<u64>() {
        Ok(id) => f(id),
        Err(_) => error(
            400,
            format!("invalid node id `{id}`: expected an integer 0..=2^64-1"),
        ),
    }
}

fn no_such_node(id: u64) -> Reply {
    error(404, format!("no such node {id}"))
}

fn node_detail(ctx: &ApiContext, id: u64) -> Reply {
    let Some(view) = ctx.registry.get(id) else {
        return no_such_node(id);
    };
    // The node's own events and the status changes the core recorded
    // share a table: read enough of it for both lists.
    let events = match ctx.registry.node_events(id, NODE_HISTORY_READ) {
        Ok(events) => events,
        Err(e) => return error(500, e.to_string()),
    };
    let (history, own): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| e.kind == crate::node::registry::STATUS_EVENT);
    let mut body = json!(view);
    body["events"] = own
        .into_iter()
        .take(NODE_EVENTS)
        .map(|e| json!({"type": e.kind, "message": e.message, "description": e.description, "time": e.time}))
        .collect();
    body["status_history"] = history
        .into_iter()
        .take(NODE_EVENTS)
        .map(|e| json!({"status": e.message, "note": e.description, "time": e.time}))
        .collect();
    json_reply(200, &body)
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes.
pub fn json_body<T: serde::de::DeserializeOwned>(request: &mut Request) -> Result<T, Reply> {
    json_body_within(request, MAX_BODY)
}

/// Reads a JSON body of at most `limit` bytes: 413 past it, 400 when it
/// is not the JSON `T` takes.
pub fn json_body_within<T: serde::de::DeserializeOwned>(
    request: &mut Request,
    limit: usize,
) -> Result<T, Reply> {
    if request.body_length().is_some_and(|n| n > limit) {
        return Err(error(413, format!("request body over {limit} bytes")));
    }
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(limit as u64 + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        return Err(error(400, format!("reading the request body: {e}")));
    }
    if body.len() > limit {
        return Err(error(413, format!("request body over {limit} bytes")));
    }
    serde_json::from_slice(&body).map_err(|e| error(400, format!("invalid JSON body: {e}")))
}

/// `POST /api/v1/nodes/{id}/commands`: a command of docs/protocol.md §3 for a
/// connected node; its answer arrives as the node's `PotStatusUpdate`.
fn command(ctx: &ApiContext, id: u64, request: &mut Request) -> Reply {
    let body: Value = match json_body(request) {
        Ok(v) => v,
        Err(reply) => return reply,
    };
    // The wire tolerates keys beside the variant; an operator's request is
    // held to the documented shape.
    let one_key = match &body {
        Value::Object(m) => m.len() == 1,
        Value::String(_) => true,
        _ => false,
    };
    if !one_key {
        return error(
            400,
            "a command is an object with exactly one key, e.g. {\"StopPot\": \"cowrie-01\"}",
        );
    }
    let command: Command = match serde_json::from_value(body) {
        Ok(c) => c,
        Err(e) => return error(400, format!("invalid command: {e}")),
    };
    if let Command::Unknown(name) = &command {
        return error(400, format!("unknown command `{name}`"));
    }
    let name = command.name().to_string();
    let message = CoreMessage::NodeCommand(NodeCommand {
        node_id: id,
        command,
    });
    let here = ctx.fleet.core_name().to_string();
    let routed = match ctx.registry.send(id, message.clone()) {
        Err(SendError::NotConnected) | Err(SendError::UnknownNode) if ctx.fleet.shared() => {
            // Another core may hold it: it delivers the command.
            match ctx.fleet.route(id, &message) {
                Ok(Routed::Sent { core_name }) => Ok(core_name),
                Ok(Routed::NotHeld) if ctx.registry.get(id).is_none() => {
                    Err(SendError::UnknownNode)
                }
                Ok(Routed::NotHeld) => Err(SendError::NotConnected),
                Err(e) => return error(503, format!("routing the command: {e}")),
            }
        }
        other => other.map(|()| here),
    };
    match routed {
        Ok(core_name) => json_reply(
            202,
            &json!({"node_id": id, "command": name, "sent": true, "core_name": core_name}),
        ),
        Err(SendError::UnknownNode) => no_such_node(id),
        Err(SendError::NotConnected) => {
            error(409, format!("node {id} is not connected to any core"))
        }
        Err(SendError::Busy) => error(
            429,
            format!(
                "node {id} has {} commands waiting; try again",
                outbox::CAPACITY
            ),
        ),
    }
}

/// `POST /api/v1/nodes/{id}/approve`, optionally with
/// `{"peer_address": "IP"}`: the address the operator saw in the pending
/// list; the approval is refused (409) if the node now asks from elsewhere.
fn approve(ctx: &ApiContext, id: u64, request: &mut Request) -> Reply {
    let expected = if request.body_length().unwrap_or(0) == 0 {
        None
    } else {
        let body: Value = match json_body(request) {
            Ok(v) => v,
            Err(reply) => return reply,
        };
        let Value::Object(fields) = &body else {
            return error(400, "the body is an object: {\"peer_address\": \"IP\"}");
        };
        let peer = match fields.get("peer_address") {
            None => None,
            Some(Value::String(text)) => Some(text.as_str()),
            Some(_) => return error(400, "peer_address is a string"),
        };
        match peer {
            None => None,
            Some(text) => match text.parse::<std::net::IpAddr>() {
                Ok(ip) => Some(ip),
                // A `peer_address` of a connected node reads "ip:port".
                Err(_) => match text.parse::<std::net::SocketAddr>() {
                    Ok(sa) => Some(sa.ip()),
                    // Whatever it is, it is not where the node asks from.
                    Err(_) if ctx.registry.get(id).is_some() => {
                        return error(
                            409,
                            format!("peer_address `{text}` is not the address node {id} asks from"),
                        )
                    }
                    Err(_) => return no_such_node(id),
                },
            },
        }
    };
    match ctx.registry.approve(id, expected) {
        None => no_such_node(id),
        Some(Ok(Ok(view))) => json_reply(200, &json!(view)),
        Some(Ok(Err(why))) => error(409, why),
        Some(Err(e)) => error(500, e.to_string()),
    }
}

/// `GET /api/v1/honeypots`: every pot of every node.
fn honeypots(ctx: &ApiContext) -> Reply {
    let pots: Vec<Value> = ctx
        .registry
        .list()
        .into_iter()
        .flat_map(|node| {
            let (node_id, node_name, connected) = (node.node_id, node.node_name, node.connected);
            node.pots.into_iter().map(move |pot| {
                let mut v = json!(pot);
                v["node_id"] = json!(node_id);
                v["node_name"] = json!(node_name);
                v["node_connected"] = json!(connected);
                v
            })
        })
        .collect();
    json_reply(200, &json!({"count": pots.len(), "honeypots": pots}))
}
