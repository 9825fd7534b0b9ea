//! Golden lines for Protocol v2 (docs/protocol.md).
//!
//! Two directions:
//! - "as this project writes it": `encode(&Envelope::new(msg))` must equal a
//!   hand-written line byte for byte (and the line must read back as `msg`);
//! - "as other peers write them": lines in every form docs/protocol.md says a reader
//!   must accept, and the value `decode` must give for each.
//!
//! Every expected line is written out by hand from docs/protocol.md; none is produced
//! by the code under test. Where a JSON object has free-form keys (`data`,
//! `details`, `config`, `UpdateConfig` settings) the keys are written in sorted
//! order, which is what serde_json writes with or without `preserve_order`
//! when the map is built in that order.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;

use honeybee_proto::{
    decode, encode, BackendCommand, BackendRegistration, BackendResponse, BackendType, Command,
    CoreMessage, DecodeError, Envelope, EventAck, EventFilter, EventQuery, InstallPot, LineDecoder,
    ModuleMessage, NodeCommand, NodeEvent, NodeEventKind, NodeMessage, NodeRegistration,
    NodeStatus, NodeStatusUpdate, NodeType, PotEvent, PotStatus, PotStatusUpdate, RegistrationAck,
    StreamMessage, Subscribe, CAP_EVENT_ACK, CAP_EXTENSION, CAP_NATIVE_POTS,
    DEFAULT_MAX_MESSAGE_BYTES,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

const MAX_ID: &str = "18446744073709551615";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `msg` is written as exactly `line` plus `\n`, and `line` reads back as `msg`.
#[track_caller]
fn golden<M>(msg: M, line: &str)
where
    M: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let written = encode(&Envelope::new(&msg));
    assert_eq!(
        String::from_utf8(written).expect("encode wrote UTF-8"),
        format!("{line}\n"),
        "writing {msg:?}"
    );
    assert_eq!(decode::<M>(line.as_bytes()), Ok(msg), "reading {line}");
}

/// A line from a peer reads as `expected`.
#[track_caller]
fn reads<M>(line: &str, expected: M)
where
    M: DeserializeOwned + PartialEq + Debug,
{
    assert_eq!(decode::<M>(line.as_bytes()), Ok(expected), "reading {line}");
}

fn envelope(message: &str) -> String {
    format!(r#"{{"version":2,"message":{message}}}"#)
}

fn s(text: &str) -> String {
    text.to_owned()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Every command with its canonical JSON (docs/protocol.md §3).
fn commands() -> Vec<(Command, &'static str)> {
    let full_install = InstallPot {
        pot_id: s("cowrie-01"),
        honeypot_type: s("cowrie"),
        git_url: Some(s("https://github.com/cowrie/cowrie.git")),
        git_branch: Some(s("main")),
        config: Some(BTreeMap::from([
            (s("hostname"), s("srv04")),
            (s("ssh_port"), s("2222")),
        ])),
        auto_start: true,
    };
    let minimal_install = InstallPot {
        pot_id: s("telnet-01"),
        honeypot_type: s("native-telnet"),
        git_url: None,
        git_branch: None,
        config: None,
        auto_start: false,
    };
    vec![
        (
            Command::InstallPot(full_install),
            r#"{"InstallPot":{"pot_id":"cowrie-01","honeypot_type":"cowrie","git_url":"https://github.com/cowrie/cowrie.git","git_branch":"main","config":{"hostname":"srv04","ssh_port":"2222"},"auto_start":true}}"#,
        ),
        (
            Command::InstallPot(minimal_install),
            r#"{"InstallPot":{"pot_id":"telnet-01","honeypot_type":"native-telnet","auto_start":false}}"#,
        ),
        (
            Command::DeployPot(s("cowrie-01")),
            r#"{"DeployPot":"cowrie-01"}"#,
        ),
        (
            Command::StopPot(s("cowrie-01")),
            r#"{"StopPot":"cowrie-01"}"#,
        ),
        (
            Command::RestartPot(s("cowrie-01")),
            r#"{"RestartPot":"cowrie-01"}"#,
        ),
        (
            Command::GetPotStatus(s("cowrie-01")),
            r#"{"GetPotStatus":"cowrie-01"}"#,
        ),
        (
            Command::GetPotLogs(s("cowrie-01")),
            r#"{"GetPotLogs":"cowrie-01"}"#,
        ),
        (
            Command::GetPotMetrics(s("cowrie-01")),
            r#"{"GetPotMetrics":"cowrie-01"}"#,
        ),
        (
            Command::GetPotInfo(s("cowrie-01")),
            r#"{"GetPotInfo":"cowrie-01"}"#,
        ),
        (Command::GetInstalledPots, r#"{"GetInstalledPots":{}}"#),
        (
            Command::UninstallPot(s("cowrie-01")),
            r#"{"UninstallPot":"cowrie-01"}"#,
        ),
        (Command::Restart, r#"{"Restart":{}}"#),
        (Command::UpdateConfig(None), r#"{"UpdateConfig":{}}"#),
        (
            Command::UpdateConfig(Some(object(
                json!({"heartbeat_interval": 10, "ports": [2323, 8080]}),
            ))),
            r#"{"UpdateConfig":{"heartbeat_interval":10,"ports":[2323,8080]}}"#,
        ),
    ]
}

/// Builds a pot command from its pot id.
type PotCommand = fn(String) -> Command;

/// The pot commands whose payload is a pot id, by wire name.
fn pot_commands() -> Vec<(&'static str, PotCommand)> {
    vec![
        ("DeployPot", Command::DeployPot),
        ("StopPot", Command::StopPot),
        ("RestartPot", Command::RestartPot),
        ("GetPotStatus", Command::GetPotStatus),
        ("GetPotLogs", Command::GetPotLogs),
        ("GetPotMetrics", Command::GetPotMetrics),
        ("GetPotInfo", Command::GetPotInfo),
        ("UninstallPot", Command::UninstallPot),
    ]
}

/// The three forms of a unit variant docs/protocol.md §1 requires readers to accept.
fn unit_forms(name: &str) -> [String; 4] {
    [
        format!(r#""{name}""#),
        format!(r#"{{"{name}":{{}}}}"#),
        format!(r#"{{"{name}":null}}"#),
        // Writers never pretty-print, but a reader takes any JSON whitespace.
        format!(r#"{{ "{name}" : {{ }} }}"#),
    ]
}

fn spec_pot_event() -> PotEvent {
    PotEvent {
        node_id: 12345,
        pot_id: s("cowrie-01"),
        pot_type: s("cowrie"),
        event_type: s("cowrie.login.failed"),
        timestamp: s("2026-01-15T10:30:00Z"),
        seq: Some(42),
        data: object(json!({
            "dst_port": 2222,
            "password": "123456",
            "src_ip": "203.0.113.7",
            "src_port": 51234,
            "username": "root",
        })),
    }
}

// ---------------------------------------------------------------------------
// As this project writes it: node → core (§2)
// ---------------------------------------------------------------------------

#[test]
fn writes_node_registration() {
    let full = NodeRegistration {
        node_id: u64::MAX,
        node_name: s("edge-01"),
        address: s("198.51.100.7"),
        port: 65535,
        node_type: NodeType::Agent,
        totp_code: Some(s("287082")),
        enrollment_token: Some(s("enroll-me")),
        agent_version: Some(s("0.1.0")),
        capabilities: vec![s(CAP_EVENT_ACK), s(CAP_NATIVE_POTS), s(CAP_EXTENSION)],
        spool_epoch: None,
    };
    golden(
        NodeMessage::NodeRegistration(full),
        &format!(
            r#"{{"version":2,"message":{{"NodeRegistration":{{"node_id":{MAX_ID},"node_name":"edge-01","address":"198.51.100.7","port":65535,"node_type":"Agent","totp_code":"287082","enrollment_token":"enroll-me","agent_version":"0.1.0","capabilities":["event-ack","native-pots","extension"]}}}}}}"#
        ),
    );

    // Optional fields are left out, not written as null.
    let minimal = NodeRegistration {
        node_id: 1,
        node_name: s("n"),
        address: s("10.0.0.1"),
        port: 8080,
        node_type: NodeType::Full,
        totp_code: None,
        enrollment_token: None,
        agent_version: None,
        capabilities: vec![],
        spool_epoch: None,
    };
    golden(
        NodeMessage::NodeRegistration(minimal),
        r#"{"version":2,"message":{"NodeRegistration":{"node_id":1,"node_name":"n","address":"10.0.0.1","port":8080,"node_type":"Full"}}}"#,
    );
}

#[test]
fn writes_node_status_update_for_every_status() {
    let statuses = [
        (NodeStatus::Connected, "Connected"),
        (NodeStatus::Deploying, "Deploying"),
        (NodeStatus::Running, "Running"),
        (NodeStatus::Stopped, "Stopped"),
        (NodeStatus::Failed, "Failed"),
        (NodeStatus::Unknown, "Unknown"),
    ];
    for (status, name) in statuses {
        golden(
            NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                node_id: 8_026_213_383_729_478_583,
                status,
            }),
            &format!(
                r#"{{"version":2,"message":{{"NodeStatusUpdate":{{"node_id":8026213383729478583,"status":"{name}"}}}}}}"#
            ),
        );
    }
}

#[test]
fn writes_pot_status_update() {
    let statuses = [
        (PotStatus::Installing, "Installing"),
        (PotStatus::Running, "Running"),
        (PotStatus::Stopped, "Stopped"),
        (PotStatus::Failed, "Failed"),
    ];
    for (status, name) in statuses {
        golden(
            NodeMessage::PotStatusUpdate(PotStatusUpdate {
                node_id: 12345,
                pot_id: s("cowrie-01"),
                pot_type: s("cowrie"),
                status,
                message: None,
                details: None,
            }),
            &format!(
                r#"{{"version":2,"message":{{"PotStatusUpdate":{{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","status":"{name}"}}}}}}"#
            ),
        );
    }

    golden(
        NodeMessage::PotStatusUpdate(PotStatusUpdate {
            node_id: 12345,
            pot_id: s("nosuch-01"),
            pot_type: s("unknown"),
            status: PotStatus::Failed,
            message: Some(s("pot nosuch-01 not found")),
            details: None,
        }),
        r#"{"version":2,"message":{"PotStatusUpdate":{"node_id":12345,"pot_id":"nosuch-01","pot_type":"unknown","status":"Failed","message":"pot nosuch-01 not found"}}}"#,
    );
    // GetPotLogs, GetPotMetrics and UninstallPot answers (§3).
    golden(
        NodeMessage::PotStatusUpdate(PotStatusUpdate {
            node_id: 12345,
            pot_id: s("cowrie-01"),
            pot_type: s("cowrie"),
            status: PotStatus::Running,
            message: None,
            details: Some(json!({"lines": ["line one", "line \"two\""]})),
        }),
        r#"{"version":2,"message":{"PotStatusUpdate":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","status":"Running","details":{"lines":["line one","line \"two\""]}}}}"#,
    );
    golden(
        NodeMessage::PotStatusUpdate(PotStatusUpdate {
            node_id: 12345,
            pot_id: s("cowrie-01"),
            pot_type: s("cowrie"),
            status: PotStatus::Running,
            message: Some(s("metrics")),
            details: Some(json!({
                "cpu_seconds": 1.5,
                "events": 7,
                "pid": 4242,
                "restarts": 0,
                "rss_bytes": 1048576,
                "uptime_s": 3600,
            })),
        }),
        r#"{"version":2,"message":{"PotStatusUpdate":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","status":"Running","message":"metrics","details":{"cpu_seconds":1.5,"events":7,"pid":4242,"restarts":0,"rss_bytes":1048576,"uptime_s":3600}}}}"#,
    );
    golden(
        NodeMessage::PotStatusUpdate(PotStatusUpdate {
            node_id: 12345,
            pot_id: s("cowrie-01"),
            pot_type: s("cowrie"),
            status: PotStatus::Stopped,
            message: None,
            details: Some(json!({"uninstalled": true})),
        }),
        r#"{"version":2,"message":{"PotStatusUpdate":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","status":"Stopped","details":{"uninstalled":true}}}}"#,
    );
}

#[test]
fn writes_pot_event_canonically() {
    // The §4 example (its `data` keys in sorted order).
    golden(
        NodeMessage::PotEvent(spec_pot_event()),
        r#"{"version":2,"message":{"PotEvent":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","seq":42,"data":{"dst_port":2222,"password":"123456","src_ip":"203.0.113.7","src_port":51234,"username":"root"}}}}"#,
    );
    // Without `event-ack` there is no `seq`; `data` is always written.
    golden(
        NodeMessage::PotEvent(PotEvent {
            node_id: u64::MAX,
            pot_id: s("ext"),
            pot_type: s("extension"),
            event_type: s("extension.portscan"),
            timestamp: s("2026-01-15T10:30:00.250000Z"),
            seq: None,
            data: Map::new(),
        }),
        &format!(
            r#"{{"version":2,"message":{{"PotEvent":{{"node_id":{MAX_ID},"pot_id":"ext","pot_type":"extension","event_type":"extension.portscan","timestamp":"2026-01-15T10:30:00.250000Z","data":{{}}}}}}}}"#
        ),
    );
}

#[test]
fn reads_the_spec_pot_event_example_verbatim() {
    // docs/protocol.md §4, joined onto one line as it goes on the wire.
    let line = r#"{"version":2,"message":{"PotEvent":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie", "event_type":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","seq":42, "data":{"src_ip":"203.0.113.7","src_port":51234,"dst_port":2222,"username":"root","password":"123456"}}}}"#;
    reads(line, NodeMessage::PotEvent(spec_pot_event()));
}

#[test]
fn writes_node_event_in_type_form() {
    let cases = [
        (
            NodeEvent::new(NodeEventKind::Started),
            r#"{"type":"Started"}"#,
        ),
        (
            NodeEvent::new(NodeEventKind::Stopped),
            r#"{"type":"Stopped"}"#,
        ),
        (
            NodeEvent {
                description: Some(s("spool full: dropped 12 events")),
                ..NodeEvent::new(NodeEventKind::Alarm)
            },
            r#"{"type":"Alarm","description":"spool full: dropped 12 events"}"#,
        ),
        (
            NodeEvent {
                message: Some(s("pot nosuch-01 not found")),
                ..NodeEvent::new(NodeEventKind::Error)
            },
            r#"{"type":"Error","message":"pot nosuch-01 not found"}"#,
        ),
        (
            NodeEvent {
                node_id: Some(u64::MAX),
                kind: NodeEventKind::Error,
                message: Some(s("m")),
                description: Some(s("d")),
            },
            r#"{"node_id":18446744073709551615,"type":"Error","message":"m","description":"d"}"#,
        ),
        // A kind this version does not know is kept as written.
        (
            NodeEvent::new(NodeEventKind::Other(s("Rebooting"))),
            r#"{"type":"Rebooting"}"#,
        ),
    ];
    for (event, payload) in cases {
        golden(
            NodeMessage::NodeEvent(event),
            &envelope(&format!(r#"{{"NodeEvent":{payload}}}"#)),
        );
    }
}

#[test]
fn writes_node_drop_as_empty_object() {
    golden(
        NodeMessage::NodeDrop,
        r#"{"version":2,"message":{"NodeDrop":{}}}"#,
    );
}

// ---------------------------------------------------------------------------
// As this project writes it: core → node (§3)
// ---------------------------------------------------------------------------

#[test]
fn writes_registration_ack() {
    golden(
        CoreMessage::RegistrationAck(RegistrationAck {
            node_id: u64::MAX,
            accepted: true,
            message: None,
            totp_key: Some(s("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")),
        }),
        &format!(
            r#"{{"version":2,"message":{{"RegistrationAck":{{"node_id":{MAX_ID},"accepted":true,"totp_key":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}}}}}}"#
        ),
    );
    golden(
        CoreMessage::RegistrationAck(RegistrationAck {
            node_id: 7,
            accepted: false,
            message: Some(s("pending approval")),
            totp_key: None,
        }),
        r#"{"version":2,"message":{"RegistrationAck":{"node_id":7,"accepted":false,"message":"pending approval"}}}"#,
    );
    golden(
        CoreMessage::RegistrationAck(RegistrationAck {
            node_id: 7,
            accepted: true,
            message: Some(s("welcome back")),
            totp_key: None,
        }),
        r#"{"version":2,"message":{"RegistrationAck":{"node_id":7,"accepted":true,"message":"welcome back"}}}"#,
    );
}

#[test]
fn writes_every_command_in_a_node_command() {
    for (command, json) in commands() {
        golden(
            CoreMessage::NodeCommand(NodeCommand {
                node_id: u64::MAX,
                command,
            }),
            &envelope(&format!(
                r#"{{"NodeCommand":{{"node_id":{MAX_ID},"command":{json}}}}}"#
            )),
        );
    }
}

#[test]
fn writes_event_ack() {
    golden(
        CoreMessage::EventAck(EventAck {
            node_id: 7,
            seq: u64::MAX,
        }),
        &format!(r#"{{"version":2,"message":{{"EventAck":{{"node_id":7,"seq":{MAX_ID}}}}}}}"#),
    );
    golden(
        CoreMessage::EventAck(EventAck {
            node_id: 12345,
            seq: 0,
        }),
        r#"{"version":2,"message":{"EventAck":{"node_id":12345,"seq":0}}}"#,
    );
}

// ---------------------------------------------------------------------------
// As this project writes it: module ↔ core (§7)
// ---------------------------------------------------------------------------

#[test]
fn writes_backend_registration_for_every_backend_type() {
    let types = [
        (BackendType::Web, r#""Web""#),
        (BackendType::Api, r#""Api""#),
        (BackendType::Monitoring, r#""Monitoring""#),
        (BackendType::Cli, r#""Cli""#),
        (BackendType::Custom(s("grafana")), r#"{"Custom":"grafana"}"#),
    ];
    for (backend_type, json) in types {
        golden(
            ModuleMessage::BackendRegistration(BackendRegistration {
                backend_name: s("dashboard"),
                backend_type,
                token: s("api-token-1"),
            }),
            &envelope(&format!(
                r#"{{"BackendRegistration":{{"backend_name":"dashboard","backend_type":{json},"token":"api-token-1"}}}}"#
            )),
        );
    }
}

#[test]
fn writes_every_backend_command() {
    let cases = vec![
        (
            BackendCommand::NodeCommand(NodeCommand {
                node_id: 9,
                command: Command::StopPot(s("cowrie-01")),
            }),
            r#"{"NodeCommand":{"node_id":9,"command":{"StopPot":"cowrie-01"}}}"#.to_owned(),
        ),
        (
            BackendCommand::BroadcastCommand {
                command: Command::Restart,
            },
            r#"{"BroadcastCommand":{"command":{"Restart":{}}}}"#.to_owned(),
        ),
        (BackendCommand::GetNodes, r#"{"GetNodes":{}}"#.to_owned()),
        (
            BackendCommand::GetNode { node_id: u64::MAX },
            format!(r#"{{"GetNode":{{"node_id":{MAX_ID}}}}}"#),
        ),
        (
            BackendCommand::GetNodesByStatus {
                status: NodeStatus::Unknown,
            },
            r#"{"GetNodesByStatus":{"status":"Unknown"}}"#.to_owned(),
        ),
        (BackendCommand::GetNodeCount, r#"{"GetNodeCount":{}}"#.to_owned()),
        (
            BackendCommand::RemoveNode { node_id: u64::MAX },
            format!(r#"{{"RemoveNode":{{"node_id":{MAX_ID}}}}}"#),
        ),
        (
            BackendCommand::GetActiveConnections,
            r#"{"GetActiveConnections":{}}"#.to_owned(),
        ),
        (
            BackendCommand::Subscribe(Subscribe {
                topics: vec![s("events"), s("status"), s("nodes")],
                filter: Some(EventFilter {
                    node_id: Some(u64::MAX),
                    pot_id: Some(s("cowrie-01")),
                    event_type_prefix: Some(s("cowrie.login.")),
                }),
                cursor: None,
            }),
            format!(
                r#"{{"Subscribe":{{"topics":["events","status","nodes"],"filter":{{"node_id":{MAX_ID},"pot_id":"cowrie-01","event_type_prefix":"cowrie.login."}}}}}}"#
            ),
        ),
        (
            BackendCommand::Subscribe(Subscribe {
                topics: vec![s("events")],
                filter: None,
                cursor: None,
            }),
            r#"{"Subscribe":{"topics":["events"]}}"#.to_owned(),
        ),
        (
            BackendCommand::Subscribe(Subscribe {
                topics: vec![s("events")],
                filter: None,
                cursor: Some(s("8192")),
            }),
            r#"{"Subscribe":{"topics":["events"],"cursor":"8192"}}"#.to_owned(),
        ),
        (
            BackendCommand::QueryEvents(EventQuery {
                node_id: Some(12345),
                pot_id: Some(s("cowrie-01")),
                event_type: Some(s("cowrie.login.failed")),
                src_ip: Some(s("203.0.113.7")),
                since: Some(s("2026-01-15T00:00:00Z")),
                until: Some(s("2026-01-16T00:00:00Z")),
                limit: Some(1000),
                cursor: Some(s("c-42")),
            }),
            r#"{"QueryEvents":{"node_id":12345,"pot_id":"cowrie-01","event_type":"cowrie.login.failed","src_ip":"203.0.113.7","since":"2026-01-15T00:00:00Z","until":"2026-01-16T00:00:00Z","limit":1000,"cursor":"c-42"}}"#.to_owned(),
        ),
        (
            BackendCommand::QueryEvents(EventQuery::default()),
            r#"{"QueryEvents":{}}"#.to_owned(),
        ),
    ];
    for (command, json) in cases {
        golden(
            ModuleMessage::BackendCommand(command),
            &envelope(&format!(r#"{{"BackendCommand":{json}}}"#)),
        );
    }
}

#[test]
fn writes_every_command_inside_backend_commands() {
    for (command, json) in commands() {
        golden(
            ModuleMessage::BackendCommand(BackendCommand::NodeCommand(NodeCommand {
                node_id: 3,
                command: command.clone(),
            })),
            &envelope(&format!(
                r#"{{"BackendCommand":{{"NodeCommand":{{"node_id":3,"command":{json}}}}}}}"#
            )),
        );
        golden(
            ModuleMessage::BackendCommand(BackendCommand::BroadcastCommand { command }),
            &envelope(&format!(
                r#"{{"BackendCommand":{{"BroadcastCommand":{{"command":{json}}}}}}}"#
            )),
        );
    }
}

#[test]
fn writes_backend_drop_as_empty_object() {
    golden(
        ModuleMessage::BackendDrop,
        r#"{"version":2,"message":{"BackendDrop":{}}}"#,
    );
}

#[test]
fn writes_every_backend_response() {
    let cases = [
        (
            BackendResponse::Success {
                message: Some(s("3 nodes")),
                data: Some(json!([{"node_id": 1}, {"node_id": 2}, {"node_id": 3}])),
            },
            r#"{"Success":{"message":"3 nodes","data":[{"node_id":1},{"node_id":2},{"node_id":3}]}}"#,
        ),
        (
            BackendResponse::Success {
                message: Some(s("ok")),
                data: None,
            },
            r#"{"Success":{"message":"ok","data":null}}"#,
        ),
        (
            BackendResponse::Success {
                message: None,
                data: Some(json!(3)),
            },
            r#"{"Success":{"message":null,"data":3}}"#,
        ),
        (
            BackendResponse::Success {
                message: None,
                data: None,
            },
            r#"{"Success":{"message":null,"data":null}}"#,
        ),
        (
            BackendResponse::Failure(s("unknown node 5")),
            r#"{"Failure":"unknown node 5"}"#,
        ),
        (
            BackendResponse::Failure(s("lagged 17")),
            r#"{"Failure":"lagged 17"}"#,
        ),
    ];
    for (response, json) in cases {
        golden(
            StreamMessage::BackendResponse(response),
            &envelope(&format!(r#"{{"BackendResponse":{json}}}"#)),
        );
    }
}

#[test]
fn stream_forwards_node_envelopes_unchanged() {
    // §7: subscribers get the node-side envelopes themselves.
    let cases = [
        (
            NodeMessage::PotEvent(spec_pot_event()),
            r#"{"PotEvent":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","seq":42,"data":{"dst_port":2222,"password":"123456","src_ip":"203.0.113.7","src_port":51234,"username":"root"}}}"#,
        ),
        (
            NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                node_id: 12345,
                status: NodeStatus::Unknown,
            }),
            r#"{"NodeStatusUpdate":{"node_id":12345,"status":"Unknown"}}"#,
        ),
        (
            NodeMessage::PotStatusUpdate(PotStatusUpdate {
                node_id: 12345,
                pot_id: s("cowrie-01"),
                pot_type: s("cowrie"),
                status: PotStatus::Running,
                message: None,
                details: None,
            }),
            r#"{"PotStatusUpdate":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","status":"Running"}}"#,
        ),
        (
            NodeMessage::NodeEvent(NodeEvent {
                node_id: Some(12345),
                description: Some(s("spool full")),
                ..NodeEvent::new(NodeEventKind::Alarm)
            }),
            r#"{"NodeEvent":{"node_id":12345,"type":"Alarm","description":"spool full"}}"#,
        ),
        (NodeMessage::NodeDrop, r#"{"NodeDrop":{}}"#),
    ];
    for (msg, json) in cases {
        let line = envelope(json);
        // Same bytes as the node-side envelope ...
        assert_eq!(
            encode(&Envelope::new(&msg)),
            format!("{line}\n").into_bytes()
        );
        // ... and as a stream message.
        golden(StreamMessage::Node(msg), &line);
    }
}

#[test]
fn writes_unknown_variants_as_unit_variants() {
    // An unknown variant keeps only its name, so it can only be written in the
    // unit form (§1); reading that back gives the same Unknown.
    golden(
        NodeMessage::Unknown(s("NodeTeleport")),
        r#"{"version":2,"message":{"NodeTeleport":{}}}"#,
    );
    golden(
        StreamMessage::Node(NodeMessage::Unknown(s("NodeTeleport"))),
        r#"{"version":2,"message":{"NodeTeleport":{}}}"#,
    );
    golden(
        CoreMessage::Unknown(s("CoreHello")),
        r#"{"version":2,"message":{"CoreHello":{}}}"#,
    );
    golden(
        CoreMessage::NodeCommand(NodeCommand {
            node_id: 1,
            command: Command::Unknown(s("SelfDestruct")),
        }),
        r#"{"version":2,"message":{"NodeCommand":{"node_id":1,"command":{"SelfDestruct":{}}}}}"#,
    );
    golden(
        ModuleMessage::Unknown(s("ModuleHello")),
        r#"{"version":2,"message":{"ModuleHello":{}}}"#,
    );
    golden(
        ModuleMessage::BackendCommand(BackendCommand::Unknown(s("ReplayAll"))),
        r#"{"version":2,"message":{"BackendCommand":{"ReplayAll":{}}}}"#,
    );
}

// ---------------------------------------------------------------------------
// As other peers write them: tolerant reads
// ---------------------------------------------------------------------------

#[test]
fn reads_all_unit_variant_forms() {
    for form in unit_forms("NodeDrop") {
        reads(&envelope(&form), NodeMessage::NodeDrop);
        reads(&envelope(&form), StreamMessage::Node(NodeMessage::NodeDrop));
    }
    for form in unit_forms("BackendDrop") {
        reads(&envelope(&form), ModuleMessage::BackendDrop);
    }
    let node_commands = [
        ("GetInstalledPots", Command::GetInstalledPots),
        ("Restart", Command::Restart),
        ("UpdateConfig", Command::UpdateConfig(None)),
    ];
    for (name, command) in node_commands {
        for form in unit_forms(name) {
            reads(
                &envelope(&format!(
                    r#"{{"NodeCommand":{{"node_id":5,"command":{form}}}}}"#
                )),
                CoreMessage::NodeCommand(NodeCommand {
                    node_id: 5,
                    command: command.clone(),
                }),
            );
            reads(
                &envelope(&format!(
                    r#"{{"BackendCommand":{{"BroadcastCommand":{{"command":{form}}}}}}}"#
                )),
                ModuleMessage::BackendCommand(BackendCommand::BroadcastCommand {
                    command: command.clone(),
                }),
            );
        }
    }
    let backend_commands = [
        ("GetNodes", BackendCommand::GetNodes),
        ("GetNodeCount", BackendCommand::GetNodeCount),
        ("GetActiveConnections", BackendCommand::GetActiveConnections),
    ];
    for (name, command) in backend_commands {
        for form in unit_forms(name) {
            reads(
                &envelope(&format!(r#"{{"BackendCommand":{form}}}"#)),
                ModuleMessage::BackendCommand(command.clone()),
            );
        }
    }
    let backend_types = [
        ("Web", BackendType::Web),
        ("Api", BackendType::Api),
        ("Monitoring", BackendType::Monitoring),
        ("Cli", BackendType::Cli),
    ];
    for (name, backend_type) in backend_types {
        for form in unit_forms(name) {
            reads(
                &envelope(&format!(
                    r#"{{"BackendRegistration":{{"backend_name":"m","backend_type":{form},"token":"t"}}}}"#
                )),
                ModuleMessage::BackendRegistration(BackendRegistration {
                    backend_name: s("m"),
                    backend_type: backend_type.clone(),
                    token: s("t"),
                }),
            );
        }
    }
}

#[test]
fn unit_payload_fields_are_ignored() {
    reads(
        &envelope(r#"{"NodeDrop":{"reason":"shutdown","at":1768473000}}"#),
        NodeMessage::NodeDrop,
    );
    reads(
        &envelope(r#"{"NodeCommand":{"node_id":5,"command":{"Restart":{"delay":3}}}}"#),
        CoreMessage::NodeCommand(NodeCommand {
            node_id: 5,
            command: Command::Restart,
        }),
    );
    reads(
        &envelope(r#"{"BackendCommand":{"GetNodes":{"page":2}}}"#),
        ModuleMessage::BackendCommand(BackendCommand::GetNodes),
    );
}

#[test]
fn update_config_reads_unit_or_settings() {
    let settings = object(json!({"heartbeat_interval": 10, "ports": [2323]}));
    reads(
        &envelope(
            r#"{"NodeCommand":{"node_id":5,"command":{"UpdateConfig":{"ports":[2323],"heartbeat_interval":10}}}}"#,
        ),
        CoreMessage::NodeCommand(NodeCommand {
            node_id: 5,
            command: Command::UpdateConfig(Some(settings)),
        }),
    );
}

#[test]
fn reads_both_node_event_forms() {
    let error = NodeEvent {
        message: Some(s("pot nosuch-01 not found")),
        ..NodeEvent::new(NodeEventKind::Error)
    };
    let alarm = NodeEvent {
        description: Some(s("spool full")),
        ..NodeEvent::new(NodeEventKind::Alarm)
    };
    let cases = [
        // Type form.
        (
            r#"{"type":"Error","message":"pot nosuch-01 not found"}"#,
            error.clone(),
        ),
        (
            r#"{"message":"pot nosuch-01 not found","type":"Error"}"#,
            error.clone(),
        ),
        (
            r#"{"type":"Alarm","description":"spool full"}"#,
            alarm.clone(),
        ),
        (
            r#"{"type":"Started"}"#,
            NodeEvent::new(NodeEventKind::Started),
        ),
        (
            r#"{"type":"Stopped"}"#,
            NodeEvent::new(NodeEventKind::Stopped),
        ),
        (
            r#"{"type":"Alarm","description":"spool full","node_id":18446744073709551615}"#,
            NodeEvent {
                node_id: Some(u64::MAX),
                ..alarm.clone()
            },
        ),
        // Enum form.
        (r#""Started""#, NodeEvent::new(NodeEventKind::Started)),
        (r#""Stopped""#, NodeEvent::new(NodeEventKind::Stopped)),
        (r#""Alarm""#, NodeEvent::new(NodeEventKind::Alarm)),
        (r#""Error""#, NodeEvent::new(NodeEventKind::Error)),
        (r#"{"Started":{}}"#, NodeEvent::new(NodeEventKind::Started)),
        (
            r#"{"Stopped":null}"#,
            NodeEvent::new(NodeEventKind::Stopped),
        ),
        (r#"{"Alarm":{"description":"spool full"}}"#, alarm.clone()),
        (
            r#"{"Error":{"message":"pot nosuch-01 not found"}}"#,
            error.clone(),
        ),
        (
            r#"{ "Error" : { "message" : "pot nosuch-01 not found" } }"#,
            error,
        ),
    ];
    for (payload, expected) in cases {
        let line = envelope(&format!(r#"{{"NodeEvent":{payload}}}"#));
        reads(&line, NodeMessage::NodeEvent(expected.clone()));
        reads(&line, StreamMessage::Node(NodeMessage::NodeEvent(expected)));
    }
}

#[test]
fn node_event_enum_and_type_forms_are_stored_alike() {
    let pairs = [
        (
            r#"{"type":"Error","message":"boom"}"#,
            r#"{"Error":{"message":"boom"}}"#,
        ),
        (
            r#"{"type":"Alarm","description":"dropped 3"}"#,
            r#"{"Alarm":{"description":"dropped 3"}}"#,
        ),
        (r#"{"type":"Started"}"#, r#""Started""#),
        (r#"{"type":"Stopped"}"#, r#"{"Stopped":{}}"#),
    ];
    for (type_form, enum_form) in pairs {
        let a: NodeMessage =
            decode(envelope(&format!(r#"{{"NodeEvent":{type_form}}}"#)).as_bytes()).unwrap();
        let b: NodeMessage =
            decode(envelope(&format!(r#"{{"NodeEvent":{enum_form}}}"#)).as_bytes()).unwrap();
        assert_eq!(a, b, "{type_form} vs {enum_form}");
        // Both are written back in the type form.
        assert_eq!(
            encode(&Envelope::new(b)),
            format!("{}\n", envelope(&format!(r#"{{"NodeEvent":{type_form}}}"#))).into_bytes()
        );
    }
}

#[test]
fn reads_the_alternative_pot_event_shape_like_the_canonical_one() {
    let expected = PotEvent {
        node_id: 12345,
        pot_id: s("cowrie-01"),
        pot_type: s("cowrie"),
        event_type: s("cowrie.login.failed"),
        timestamp: s("2026-01-15T10:30:00Z"),
        seq: None,
        data: object(json!({
            "message": "login attempt [root/123456] failed",
            "password": "123456",
            "src_ip": "203.0.113.7",
            "username": "root",
        })),
    };
    let canonical = r#"{"version":2,"message":{"PotEvent":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","data":{"message":"login attempt [root/123456] failed","password":"123456","src_ip":"203.0.113.7","username":"root"}}}}"#;
    golden(NodeMessage::PotEvent(expected.clone()), canonical);

    // `event`, `metadata`, unix seconds and a top-level `message`, alone and together.
    let alternatives = [
        r#"{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event":"cowrie.login.failed","timestamp":1768473000,"metadata":{"src_ip":"203.0.113.7","username":"root","password":"123456"},"message":"login attempt [root/123456] failed"}"#,
        r#"{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","data":{"message":"login attempt [root/123456] failed","password":"123456","src_ip":"203.0.113.7","username":"root"}}"#,
        r#"{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","metadata":{"message":"login attempt [root/123456] failed","password":"123456","src_ip":"203.0.113.7","username":"root"}}"#,
        r#"{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":1768473000,"data":{"message":"login attempt [root/123456] failed","password":"123456","src_ip":"203.0.113.7","username":"root"}}"#,
        r#"{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","message":"login attempt [root/123456] failed","data":{"password":"123456","src_ip":"203.0.113.7","username":"root"}}"#,
        r#"{"timestamp":1768473000,"message":"login attempt [root/123456] failed","metadata":{"username":"root","src_ip":"203.0.113.7","password":"123456"},"event":"cowrie.login.failed","pot_type":"cowrie","pot_id":"cowrie-01","node_id":12345}"#,
    ];
    for alternative in alternatives {
        let line = envelope(&format!(r#"{{"PotEvent":{alternative}}}"#));
        reads(&line, NodeMessage::PotEvent(expected.clone()));
        // Stored alike: written back as the canonical line (compared as JSON,
        // since `data` keeps the peer's key order if serde_json preserves it).
        let msg: NodeMessage = decode(line.as_bytes()).unwrap();
        let written: Value = serde_json::from_slice(&encode(&Envelope::new(msg))).unwrap();
        let canonical: Value = serde_json::from_str(canonical).unwrap();
        assert_eq!(written, canonical, "{alternative}");
    }
}

#[test]
fn unix_second_timestamps_become_rfc3339_utc() {
    let cases = [
        (0_i64, "1970-01-01T00:00:00Z"),
        (1_768_473_000, "2026-01-15T10:30:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (1_795_645_079, "2026-11-25T22:17:59Z"),
    ];
    for (secs, text) in cases {
        let line = envelope(&format!(
            r#"{{"PotEvent":{{"node_id":1,"pot_id":"p","pot_type":"t","event":"e","timestamp":{secs},"metadata":{{}}}}}}"#
        ));
        reads(
            &line,
            NodeMessage::PotEvent(PotEvent {
                node_id: 1,
                pot_id: s("p"),
                pot_type: s("t"),
                event_type: s("e"),
                timestamp: s(text),
                seq: None,
                data: Map::new(),
            }),
        );
    }
}

#[test]
fn reads_node_ids_up_to_u64_max() {
    for id in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        reads(
            &envelope(&format!(
                r#"{{"NodeStatusUpdate":{{"node_id":{id},"status":"Running"}}}}"#
            )),
            NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                node_id: id,
                status: NodeStatus::Running,
            }),
        );
        reads(
            &envelope(&format!(
                r#"{{"NodeRegistration":{{"node_id":{id},"node_name":"n","address":"a","port":1,"node_type":"Full"}}}}"#
            )),
            NodeMessage::NodeRegistration(NodeRegistration {
                node_id: id,
                node_name: s("n"),
                address: s("a"),
                port: 1,
                node_type: NodeType::Full,
                totp_code: None,
                enrollment_token: None,
                agent_version: None,
                capabilities: vec![],
                spool_epoch: None,
            }),
        );
        reads(
            &envelope(&format!(
                r#"{{"PotEvent":{{"node_id":{id},"pot_id":"p","pot_type":"t","event_type":"e","timestamp":"2026-01-15T10:30:00Z","seq":{id},"data":{{}}}}}}"#
            )),
            NodeMessage::PotEvent(PotEvent {
                node_id: id,
                pot_id: s("p"),
                pot_type: s("t"),
                event_type: s("e"),
                timestamp: s("2026-01-15T10:30:00Z"),
                seq: Some(id),
                data: Map::new(),
            }),
        );
        reads(
            &envelope(&format!(r#"{{"EventAck":{{"node_id":{id},"seq":{id}}}}}"#)),
            CoreMessage::EventAck(EventAck {
                node_id: id,
                seq: id,
            }),
        );
        reads(
            &envelope(&format!(
                r#"{{"NodeCommand":{{"node_id":{id},"command":"Restart"}}}}"#
            )),
            CoreMessage::NodeCommand(NodeCommand {
                node_id: id,
                command: Command::Restart,
            }),
        );
        reads(
            &envelope(&format!(
                r#"{{"BackendCommand":{{"GetNode":{{"node_id":{id}}}}}}}"#
            )),
            ModuleMessage::BackendCommand(BackendCommand::GetNode { node_id: id }),
        );
        reads(
            &envelope(&format!(
                r#"{{"BackendCommand":{{"RemoveNode":{{"node_id":{id}}}}}}}"#
            )),
            ModuleMessage::BackendCommand(BackendCommand::RemoveNode { node_id: id }),
        );
    }
}

#[test]
fn node_ids_past_u64_max_or_negative_are_refused() {
    for bad in ["18446744073709551616", "-1", "1.5", "\"7\""] {
        let line = envelope(&format!(
            r#"{{"NodeStatusUpdate":{{"node_id":{bad},"status":"Running"}}}}"#
        ));
        assert!(
            matches!(
                decode::<NodeMessage>(line.as_bytes()),
                Err(DecodeError::InvalidMessage(_))
            ),
            "{line}"
        );
    }
}

#[test]
fn unknown_fields_are_ignored() {
    reads(
        r#"{"version":2,"trace_id":"abc","message":{"NodeDrop":{}},"sent_at":1768473000}"#,
        NodeMessage::NodeDrop,
    );
    reads(
        &envelope(
            r#"{"NodeRegistration":{"node_id":1,"node_name":"n","address":"a","port":1,"node_type":"Full","os":"linux","labels":{"dc":"fra"}}}"#,
        ),
        NodeMessage::NodeRegistration(NodeRegistration {
            node_id: 1,
            node_name: s("n"),
            address: s("a"),
            port: 1,
            node_type: NodeType::Full,
            totp_code: None,
            enrollment_token: None,
            agent_version: None,
            capabilities: vec![],
            spool_epoch: None,
        }),
    );
    reads(
        &envelope(r#"{"NodeStatusUpdate":{"node_id":1,"status":"Running","load":[0.1,0.2]}}"#),
        NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
            node_id: 1,
            status: NodeStatus::Running,
        }),
    );
    reads(
        &envelope(
            r#"{"PotStatusUpdate":{"node_id":1,"pot_id":"p","pot_type":"t","status":"Running","pid":77}}"#,
        ),
        NodeMessage::PotStatusUpdate(PotStatusUpdate {
            node_id: 1,
            pot_id: s("p"),
            pot_type: s("t"),
            status: PotStatus::Running,
            message: None,
            details: None,
        }),
    );
    reads(
        &envelope(
            r#"{"PotEvent":{"node_id":12345,"pot_id":"cowrie-01","pot_type":"cowrie","event_type":"cowrie.login.failed","timestamp":"2026-01-15T10:30:00Z","seq":42,"uuid":"e2ef3670","data":{"dst_port":2222,"password":"123456","src_ip":"203.0.113.7","src_port":51234,"username":"root"}}}"#,
        ),
        NodeMessage::PotEvent(spec_pot_event()),
    );
    reads(
        &envelope(r#"{"NodeEvent":{"type":"Started","uptime_s":0}}"#),
        NodeMessage::NodeEvent(NodeEvent::new(NodeEventKind::Started)),
    );
    reads(
        &envelope(r#"{"NodeEvent":{"Alarm":{"description":"d","severity":"high"}}}"#),
        NodeMessage::NodeEvent(NodeEvent {
            description: Some(s("d")),
            ..NodeEvent::new(NodeEventKind::Alarm)
        }),
    );
    reads(
        &envelope(r#"{"RegistrationAck":{"node_id":1,"accepted":true,"server":"core-2"}}"#),
        CoreMessage::RegistrationAck(RegistrationAck {
            node_id: 1,
            accepted: true,
            message: None,
            totp_key: None,
        }),
    );
    reads(
        &envelope(
            r#"{"NodeCommand":{"node_id":1,"issued_by":"admin","command":{"InstallPot":{"pot_id":"p","honeypot_type":"cowrie","priority":3}}}}"#,
        ),
        CoreMessage::NodeCommand(NodeCommand {
            node_id: 1,
            command: Command::InstallPot(InstallPot {
                pot_id: s("p"),
                honeypot_type: s("cowrie"),
                git_url: None,
                git_branch: None,
                config: None,
                auto_start: false,
            }),
        }),
    );
    reads(
        &envelope(r#"{"EventAck":{"node_id":1,"seq":2,"batch":9}}"#),
        CoreMessage::EventAck(EventAck { node_id: 1, seq: 2 }),
    );
    reads(
        &envelope(
            r#"{"BackendRegistration":{"backend_name":"m","backend_type":"Cli","token":"t","version":"9"}}"#,
        ),
        ModuleMessage::BackendRegistration(BackendRegistration {
            backend_name: s("m"),
            backend_type: BackendType::Cli,
            token: s("t"),
        }),
    );
    reads(
        &envelope(
            r#"{"BackendCommand":{"Subscribe":{"topics":["events"],"filter":{"pot_id":"p","src_ip":"x"},"since":"now"}}}"#,
        ),
        ModuleMessage::BackendCommand(BackendCommand::Subscribe(Subscribe {
            topics: vec![s("events")],
            filter: Some(EventFilter {
                node_id: None,
                pot_id: Some(s("p")),
                event_type_prefix: None,
            }),
            cursor: None,
        })),
    );
    reads(
        &envelope(r#"{"BackendResponse":{"Success":{"message":"ok","took_ms":3}}}"#),
        StreamMessage::BackendResponse(BackendResponse::Success {
            message: Some(s("ok")),
            data: None,
        }),
    );
    // Keys beside the variant key are tolerated too.
    reads(
        &envelope(r#"{"NodeDrop":{},"note":"bye"}"#),
        NodeMessage::NodeDrop,
    );
}

#[test]
fn unknown_variants_decode_to_unknown() {
    let payloads = [
        "{}",
        "null",
        r#"{"x":[1,{"y":"z"}]}"#,
        "[1,2]",
        "\"s\"",
        "7",
    ];
    for payload in payloads {
        let name = "NodeTeleport";
        let line = envelope(&format!(r#"{{"{name}":{payload}}}"#));
        reads(&line, NodeMessage::Unknown(s(name)));
        reads(&line, CoreMessage::Unknown(s(name)));
        reads(&line, ModuleMessage::Unknown(s(name)));
        reads(&line, StreamMessage::Node(NodeMessage::Unknown(s(name))));
        reads(
            &envelope(&format!(
                r#"{{"NodeCommand":{{"node_id":1,"command":{{"SelfDestruct":{payload}}}}}}}"#
            )),
            CoreMessage::NodeCommand(NodeCommand {
                node_id: 1,
                command: Command::Unknown(s("SelfDestruct")),
            }),
        );
        reads(
            &envelope(&format!(
                r#"{{"BackendCommand":{{"ReplayAll":{payload}}}}}"#
            )),
            ModuleMessage::BackendCommand(BackendCommand::Unknown(s("ReplayAll"))),
        );
    }
    // The bare string form.
    reads(
        &envelope(r#""NodeTeleport""#),
        NodeMessage::Unknown(s("NodeTeleport")),
    );
    reads(
        &envelope(r#""CoreHello""#),
        CoreMessage::Unknown(s("CoreHello")),
    );
    reads(
        &envelope(r#""ModuleHello""#),
        ModuleMessage::Unknown(s("ModuleHello")),
    );
    reads(
        &envelope(r#"{"NodeCommand":{"node_id":1,"command":"SelfDestruct"}}"#),
        CoreMessage::NodeCommand(NodeCommand {
            node_id: 1,
            command: Command::Unknown(s("SelfDestruct")),
        }),
    );
    reads(
        &envelope(r#"{"BackendCommand":"ReplayAll"}"#),
        ModuleMessage::BackendCommand(BackendCommand::Unknown(s("ReplayAll"))),
    );
    // A direction's variants are unknown in the other direction.
    reads(
        &envelope(r#"{"RegistrationAck":{"node_id":1,"accepted":true}}"#),
        NodeMessage::Unknown(s("RegistrationAck")),
    );
    reads(
        &envelope(r#"{"PotEvent":{"node_id":1}}"#),
        CoreMessage::Unknown(s("PotEvent")),
    );
    reads(
        &envelope(r#"{"NodeDrop":{}}"#),
        ModuleMessage::Unknown(s("NodeDrop")),
    );
    // An unknown NodeEvent type is kept, not refused.
    reads(
        &envelope(r#"{"NodeEvent":{"type":"Rebooting","message":"m"}}"#),
        NodeMessage::NodeEvent(NodeEvent {
            message: Some(s("m")),
            ..NodeEvent::new(NodeEventKind::Other(s("Rebooting")))
        }),
    );
    reads(
        &envelope(r#"{"NodeEvent":"Rebooting"}"#),
        NodeMessage::NodeEvent(NodeEvent::new(NodeEventKind::Other(s("Rebooting")))),
    );
}

#[test]
fn reads_pot_commands_in_both_forms() {
    for (name, make) in pot_commands() {
        let expected = CoreMessage::NodeCommand(NodeCommand {
            node_id: 1,
            command: make(s("cowrie-01")),
        });
        for payload in [
            r#""cowrie-01""#,
            r#"{"pot_id":"cowrie-01"}"#,
            r#"{"pot_id":"cowrie-01","force":true}"#,
            r#"{"force":true,"pot_id":"cowrie-01"}"#,
        ] {
            reads(
                &envelope(&format!(
                    r#"{{"NodeCommand":{{"node_id":1,"command":{{"{name}":{payload}}}}}}}"#
                )),
                expected.clone(),
            );
        }
        // A pot command without a pot is not a valid command.
        for payload in ["{}", "null", r#"{"id":"cowrie-01"}"#] {
            let line = envelope(&format!(
                r#"{{"NodeCommand":{{"node_id":1,"command":{{"{name}":{payload}}}}}}}"#
            ));
            assert!(
                matches!(
                    decode::<CoreMessage>(line.as_bytes()),
                    Err(DecodeError::InvalidMessage(_))
                ),
                "{line}"
            );
        }
    }
}

#[test]
fn wrong_version_is_reported_before_the_message_is_read() {
    for version in [0_u64, 1, 3, u64::MAX] {
        for message in [
            r#"{"NodeDrop":{}}"#,
            r#"{"NodeStatusUpdate":{"bogus":1}}"#,
            "42",
        ] {
            let line = format!(r#"{{"version":{version},"message":{message}}}"#);
            assert_eq!(
                decode::<NodeMessage>(line.as_bytes()),
                Err(DecodeError::WrongVersion(version)),
                "{line}"
            );
            assert_eq!(
                decode::<CoreMessage>(line.as_bytes()),
                Err(DecodeError::WrongVersion(version))
            );
            assert_eq!(
                decode::<ModuleMessage>(line.as_bytes()),
                Err(DecodeError::WrongVersion(version))
            );
        }
    }
    // Even without a message.
    assert_eq!(
        decode::<NodeMessage>(br#"{"version":1}"#),
        Err(DecodeError::WrongVersion(1))
    );
}

#[test]
fn missing_version_or_message_is_invalid_json() {
    let lines = [
        r#"{"message":{"NodeDrop":{}}}"#,
        r#"{"version":null,"message":{"NodeDrop":{}}}"#,
        r#"{"version":2}"#,
        r#"{"version":2,"message":null}"#,
        r#"{}"#,
        r#"{"version":"2","message":{"NodeDrop":{}}}"#,
        r#"{"version":-2,"message":{"NodeDrop":{}}}"#,
        r#"[2,{"NodeDrop":{}}]"#,
        r#""NodeDrop""#,
        r#"{"version":2,"message":{"NodeDrop":{}}"#,
        r#"{"version":2,"message":{"NodeDrop":{}}} trailing"#,
        "",
        "not json",
    ];
    for line in lines {
        let result = decode::<NodeMessage>(line.as_bytes());
        assert!(
            matches!(result, Err(DecodeError::InvalidJson(_))),
            "{line:?} gave {result:?}"
        );
    }
}

#[test]
fn a_bad_payload_is_an_invalid_message() {
    let lines = [
        envelope(r#"{"NodeStatusUpdate":{"node_id":1,"status":"Sleeping"}}"#),
        envelope(r#"{"NodeStatusUpdate":{"node_id":1}}"#),
        envelope(
            r#"{"NodeRegistration":{"node_id":1,"node_name":"n","address":"a","port":70000,"node_type":"Full"}}"#,
        ),
        envelope(
            r#"{"NodeRegistration":{"node_id":1,"node_name":"n","address":"a","port":1,"node_type":"Half"}}"#,
        ),
        envelope(r#""NodeStatusUpdate""#),
        envelope("{}"),
        envelope("42"),
    ];
    for line in lines {
        let result = decode::<NodeMessage>(line.as_bytes());
        assert!(
            matches!(result, Err(DecodeError::InvalidMessage(_))),
            "{line} gave {result:?}"
        );
    }
}

#[test]
fn non_utf8_is_not_utf8() {
    let lines: [&[u8]; 4] = [
        b"{\"version\":2,\"message\":{\"NodeEvent\":{\"type\":\"Error\",\"message\":\"\xff\"}}}",
        b"\xfe\xff{\"version\":2,\"message\":{\"NodeDrop\":{}}}",
        b"{\"version\":2,\"message\":{\"NodeDrop\":{}}}\xc3",
        b"{\"version\":2,\"message\":\"Node\xed\xa0\x80Drop\"}",
    ];
    for line in lines {
        assert_eq!(decode::<NodeMessage>(line), Err(DecodeError::NotUtf8));
        assert_eq!(decode::<CoreMessage>(line), Err(DecodeError::NotUtf8));
        assert_eq!(decode::<ModuleMessage>(line), Err(DecodeError::NotUtf8));
    }
}

#[test]
fn crlf_lines_through_the_line_decoder() {
    let stream = concat!(
        "{\"version\":2,\"message\":{\"NodeStatusUpdate\":{\"node_id\":1,\"status\":\"Running\"}}}\r\n",
        "{\"version\":2,\"message\":{\"NodeEvent\":{\"type\":\"Error\",\"message\":\"x\"}}}\n",
        "\r\n",
        "{\"version\":2,\"message\":\"NodeDrop\"}\r\n",
    );
    let expected = vec![
        NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
            node_id: 1,
            status: NodeStatus::Running,
        }),
        NodeMessage::NodeEvent(NodeEvent {
            message: Some(s("x")),
            ..NodeEvent::new(NodeEventKind::Error)
        }),
        NodeMessage::NodeDrop,
    ];

    // All at once, and split right between every `\r` and its `\n`.
    let bytes = stream.as_bytes();
    let mut splits = vec![vec![bytes.to_vec()]];
    let mut pieces = Vec::new();
    let mut from = 0;
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\r' {
            pieces.push(bytes[from..=i].to_vec());
            from = i + 1;
        }
    }
    pieces.push(bytes[from..].to_vec());
    splits.push(pieces);
    splits.push(bytes.iter().map(|b| vec![*b]).collect());

    for chunks in splits {
        let mut frames = LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
        let mut got = Vec::new();
        for chunk in &chunks {
            frames.feed(chunk).unwrap();
            while let Some(line) = frames.next_frame().unwrap() {
                assert!(!line.contains(&b'\r') && !line.contains(&b'\n'));
                got.push(decode::<NodeMessage>(line).unwrap());
            }
        }
        assert_eq!(got, expected);
    }
}

// ---------------------------------------------------------------------------
// Fixtures from real peers
// ---------------------------------------------------------------------------

/// Real wire samples, copied into the repository's `tests/fixtures/` from
/// the shared ones (a clone of the repository alone must pass its tests).
fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {} is missing ({e})", path.display()))
}

#[test]
fn every_line_of_the_go_peer_fixture_decodes() {
    let bytes = fixture("peer-node-v2.ndjson");
    let text = std::str::from_utf8(&bytes).expect("fixture is UTF-8");
    let raw_lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!raw_lines.is_empty(), "fixture is empty");

    // Framed the way a connection frames it.
    let mut frames = LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
    frames.feed(&bytes).unwrap();
    let mut messages = Vec::new();
    while let Some(line) = frames.next_frame().unwrap() {
        let text = std::str::from_utf8(line).unwrap();
        let msg = decode::<NodeMessage>(line)
            .unwrap_or_else(|e| panic!("fixture line does not decode: {e}\n{text}"));
        assert!(
            !matches!(msg, NodeMessage::Unknown(_)),
            "fixture line read as an unknown variant: {text}"
        );
        // Cross-check the decoded fields against a plain JSON reading.
        let raw: Value = serde_json::from_str(text).unwrap();
        let payload = &raw["message"][msg.name()];
        match &msg {
            NodeMessage::NodeRegistration(r) => {
                assert_eq!(Some(r.node_id), payload["node_id"].as_u64());
                assert_eq!(Some(r.node_name.as_str()), payload["node_name"].as_str());
                assert_eq!(Some(r.address.as_str()), payload["address"].as_str());
                assert_eq!(Some(u64::from(r.port)), payload["port"].as_u64());
                assert_eq!(Some(r.node_type.as_str()), payload["node_type"].as_str());
                assert_eq!(r.totp_code.as_deref(), payload["totp_code"].as_str());
            }
            NodeMessage::NodeStatusUpdate(u) => {
                assert_eq!(Some(u.node_id), payload["node_id"].as_u64());
                assert_eq!(Some(u.status.as_str()), payload["status"].as_str());
            }
            NodeMessage::NodeEvent(e) => {
                assert_eq!(Some(e.kind.as_str()), payload["type"].as_str());
                assert_eq!(e.message.as_deref(), payload["message"].as_str());
            }
            _ => {}
        }
        messages.push(msg);
    }
    assert_eq!(messages.len(), raw_lines.len(), "every line is one message");
    for (line, msg) in raw_lines.iter().zip(&messages) {
        assert_eq!(decode::<NodeMessage>(line.as_bytes()).as_ref(), Ok(msg));
    }

    // What the README says the capture holds.
    match messages.first() {
        Some(NodeMessage::NodeRegistration(r)) => {
            assert!(r.totp_code.is_some(), "the Go node sends a totp_code");
            assert_eq!(r.node_type, NodeType::Full);
        }
        other => panic!("first message is not a registration: {other:?}"),
    }
    assert!(messages
        .iter()
        .any(|m| matches!(m, NodeMessage::NodeStatusUpdate(_))));
    assert!(messages.iter().any(|m| matches!(
        m,
        NodeMessage::NodeEvent(NodeEvent {
            kind: NodeEventKind::Error,
            message: Some(_),
            ..
        })
    )));
    assert_eq!(messages.last(), Some(&NodeMessage::NodeDrop));
}

// ---------------------------------------------------------------------------
// Secrets never in Debug output
// ---------------------------------------------------------------------------

#[track_caller]
fn assert_hidden(debug: &[String], secrets: &[&str], visible: &[&str]) {
    for text in debug {
        for secret in secrets {
            assert!(!text.contains(secret), "secret {secret:?} in {text}");
        }
        for shown in visible {
            assert!(text.contains(shown), "{shown:?} missing from {text}");
        }
    }
}

fn debug_forms<T: Debug>(value: &T) -> Vec<String> {
    vec![format!("{value:?}"), format!("{value:#?}")]
}

#[test]
fn debug_never_shows_secrets() {
    let registration = NodeRegistration {
        node_id: 77,
        node_name: s("edge-07"),
        address: s("192.0.2.7"),
        port: 9001,
        node_type: NodeType::Agent,
        totp_code: Some(s("913577")),
        enrollment_token: Some(s("ENROLL-TOKEN-SECRET-q8Z")),
        agent_version: Some(s("0.1.0")),
        capabilities: vec![s(CAP_EVENT_ACK)],
        spool_epoch: None,
    };
    let secrets = ["913577", "ENROLL-TOKEN-SECRET-q8Z"];
    let visible = ["edge-07", "192.0.2.7", "0.1.0", "event-ack"];
    assert_hidden(&debug_forms(&registration), &secrets, &visible);
    let msg = NodeMessage::NodeRegistration(registration.clone());
    assert_hidden(&debug_forms(&msg), &secrets, &visible);
    assert_hidden(&debug_forms(&Envelope::new(&msg)), &secrets, &visible);
    // Decoded from the wire, too.
    let decoded: NodeMessage = decode(&encode(&Envelope::new(&msg))[..]).unwrap();
    assert_hidden(&debug_forms(&decoded), &secrets, &visible);

    let ack = RegistrationAck {
        node_id: 77,
        accepted: true,
        message: Some(s("first registration")),
        totp_key: Some(s("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")),
    };
    let secrets = ["GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"];
    let visible = ["first registration"];
    assert_hidden(&debug_forms(&ack), &secrets, &visible);
    assert_hidden(
        &debug_forms(&CoreMessage::RegistrationAck(ack)),
        &secrets,
        &visible,
    );

    let backend = BackendRegistration {
        backend_name: s("grafana-bridge"),
        backend_type: BackendType::Custom(s("grafana")),
        token: s("API-TOKEN-SECRET-f00d"),
    };
    let secrets = ["API-TOKEN-SECRET-f00d"];
    let visible = ["grafana-bridge"];
    assert_hidden(&debug_forms(&backend), &secrets, &visible);
    assert_hidden(
        &debug_forms(&ModuleMessage::BackendRegistration(backend)),
        &secrets,
        &visible,
    );
}

#[test]
fn cowrie_fields_are_kept_verbatim_in_pot_event_data() {
    // §4: data keys other than the well-known ones are "kept verbatim"; Cowrie's
    // float `time` (§8) is the sharpest case: its digits must survive a trip
    // through a PotEvent unchanged.
    let bytes = fixture("cowrie-socketlog.ndjson");
    let mut frames = LineDecoder::new(64 * 1024);
    frames.feed(&bytes).unwrap();
    let mut count = 0;
    while let Some(line) = frames.next_frame().unwrap() {
        let text = std::str::from_utf8(line).expect("fixture is UTF-8");
        let data: Map<String, Value> = serde_json::from_str(text).expect("fixture line is JSON");
        let event = PotEvent {
            node_id: 1,
            pot_id: s("cowrie-01"),
            pot_type: s("cowrie"),
            event_type: data["eventid"].as_str().expect("eventid").to_owned(),
            timestamp: data["timestamp"].as_str().expect("timestamp").to_owned(),
            seq: Some(count),
            data: data.clone(),
        };
        let written = encode(&Envelope::new(NodeMessage::PotEvent(event.clone())));
        let written = String::from_utf8(written).unwrap();
        // Every number appears in the line exactly as Cowrie wrote it.
        for (key, value) in &data {
            if let Value::Number(_) = value {
                let raw = number_text(text, key);
                assert!(
                    written.contains(&format!("\"{key}\":{raw}")),
                    "{key}: {raw} not kept verbatim in {written}"
                );
            }
        }
        reads(written.trim_end(), NodeMessage::PotEvent(event));
        count += 1;
    }
    assert_eq!(count, 30, "the README promises 30 events");
}

/// The text of the number at `"key": ` in a JSON line as Python writes it.
fn number_text<'a>(line: &'a str, key: &str) -> &'a str {
    let pattern = format!("\"{key}\": ");
    let start = line.find(&pattern).expect("key in line") + pattern.len();
    let rest = &line[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    &rest[..end]
}
