//! Properties of the codec:
//! - every canonical message reads back as itself: `decode(encode(x)) == x`;
//! - framing is by newline, never by read: encoded lines fed in any chunks come
//!   back as exactly those lines;
//! - the line decoder never holds more than `max + 2` bytes, whatever it is fed,
//!   and splits lines exactly as docs/protocol.md §1 says.
//!
//! "Canonical" excludes values the protocol cannot tell apart on the wire: an
//! `Unknown(name)` whose name is a known variant, a `NodeEventKind::Other` with
//! a known kind, `UpdateConfig(Some(empty))` (read as `UpdateConfig(None)`), and
//! optional JSON values that are `Some(null)` (read as `None`).

use std::fmt::Debug;

use honeybee_proto::{
    decode, encode, BackendCommand, BackendRegistration, BackendResponse, BackendType, Command,
    CoreMessage, Envelope, EventAck, EventFilter, EventQuery, FrameError, InstallPot, LineDecoder,
    ModuleMessage, NodeCommand, NodeEvent, NodeEventKind, NodeMessage, NodeRegistration,
    NodeStatus, NodeStatusUpdate, NodeType, PotEvent, PotStatus, PotStatusUpdate, RegistrationAck,
    StreamMessage, Subscribe, DEFAULT_MAX_MESSAGE_BYTES,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------
// Variant names, from docs/protocol.md
// ---------------------------------------------------------------------------

const NODE_VARIANTS: &[&str] = &[
    "NodeRegistration",
    "NodeStatusUpdate",
    "PotStatusUpdate",
    "PotEvent",
    "NodeEvent",
    "NodeDrop",
];
const CORE_VARIANTS: &[&str] = &["RegistrationAck", "NodeCommand", "EventAck"];
const COMMANDS: &[&str] = &[
    "InstallPot",
    "DeployPot",
    "StopPot",
    "RestartPot",
    "GetPotStatus",
    "GetPotLogs",
    "GetPotMetrics",
    "GetPotInfo",
    "GetInstalledPots",
    "UninstallPot",
    "Restart",
    "UpdateConfig",
];
const MODULE_VARIANTS: &[&str] = &["BackendRegistration", "BackendCommand", "BackendDrop"];
const BACKEND_COMMANDS: &[&str] = &[
    "NodeCommand",
    "BroadcastCommand",
    "GetNodes",
    "GetNode",
    "GetNodesByStatus",
    "GetNodeCount",
    "RemoveNode",
    "GetActiveConnections",
    "Subscribe",
    "QueryEvents",
];
const NODE_EVENT_KINDS: &[&str] = &["Started", "Stopped", "Alarm", "Error"];
/// Where a stream message names a node message, or a response.
const STREAM_ONLY: &[&str] = &["BackendResponse"];

fn all_names() -> Vec<&'static str> {
    [
        NODE_VARIANTS,
        CORE_VARIANTS,
        COMMANDS,
        MODULE_VARIANTS,
        BACKEND_COMMANDS,
        NODE_EVENT_KINDS,
        STREAM_ONLY,
    ]
    .concat()
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any string, biased towards what breaks JSON: quotes, backslashes, control
/// characters, line breaks, non-BMP characters.
fn text() -> impl Strategy<Value = String> {
    let special = select(vec![
        '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{1f}', '\u{7f}', '\u{2028}', '\u{2029}',
        '\u{feff}', '\u{fffd}', 'é', 'ß', '中', '😀', '{', '}', '[', ']', ':', ',',
    ]);
    vec(
        prop_oneof![
            3 => any::<char>(),
            2 => special,
            2 => proptest::char::range('a', 'z'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn id() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0),
        Just(u64::MAX),
        Just(i64::MAX as u64),
        Just(i64::MAX as u64 + 1),
        0u64..1000,
    ]
}

/// A variant name that is none of `known`: random text, or a name that is
/// known elsewhere in the protocol.
fn unknown_name(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        text(),
        select(all_names()).prop_map(str::to_owned),
        "[A-Z][a-zA-Z]{0,12}".prop_map(|s| s.to_owned()),
    ]
    .prop_filter("a known variant name", move |name| {
        !known.contains(&name.as_str())
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| {
            Number::from_f64(f).map(Value::Number)
        }),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            json_map(inner).prop_map(Value::Object),
        ]
    })
}

fn json_map(values: impl Strategy<Value = Value>) -> impl Strategy<Value = Map<String, Value>> {
    btree_map(text(), values, 0..5).prop_map(|m| m.into_iter().collect())
}

/// `Some(null)` is written as `null` and read as `None`.
fn optional_json() -> impl Strategy<Value = Option<Value>> {
    option::of(json_value().prop_filter("null", |v| !v.is_null()))
}

fn node_status() -> impl Strategy<Value = NodeStatus> {
    select(NodeStatus::ALL.to_vec())
}

fn node_message() -> BoxedStrategy<NodeMessage> {
    let registration = (
        id(),
        text(),
        text(),
        any::<u16>(),
        select(vec![NodeType::Full, NodeType::Agent]),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        vec(text(), 0..4),
    )
        .prop_map(
            |(
                node_id,
                node_name,
                address,
                port,
                node_type,
                totp_code,
                enrollment_token,
                agent_version,
                capabilities,
            )| {
                NodeMessage::NodeRegistration(NodeRegistration {
                    node_id,
                    node_name,
                    address,
                    port,
                    node_type,
                    totp_code,
                    enrollment_token,
                    agent_version,
                    capabilities,
                    spool_epoch: None,
                })
            },
        );
    let status = (id(), node_status()).prop_map(|(node_id, status)| {
        NodeMessage::NodeStatusUpdate(NodeStatusUpdate { node_id, status })
    });
    let pot_status = (
        id(),
        text(),
        text(),
        select(PotStatus::ALL.to_vec()),
        option::of(text()),
        optional_json(),
    )
        .prop_map(|(node_id, pot_id, pot_type, status, message, details)| {
            NodeMessage::PotStatusUpdate(PotStatusUpdate {
                node_id,
                pot_id,
                pot_type,
                status,
                message,
                details,
            })
        });
    let pot_event = (
        id(),
        text(),
        text(),
        text(),
        text(),
        option::of(id()),
        json_map(json_value()),
    )
        .prop_map(
            |(node_id, pot_id, pot_type, event_type, timestamp, seq, data)| {
                NodeMessage::PotEvent(PotEvent {
                    node_id,
                    pot_id,
                    pot_type,
                    event_type,
                    timestamp,
                    seq,
                    data,
                })
            },
        );
    let kind = prop_oneof![
        Just(NodeEventKind::Started),
        Just(NodeEventKind::Stopped),
        Just(NodeEventKind::Alarm),
        Just(NodeEventKind::Error),
        unknown_name(NODE_EVENT_KINDS).prop_map(NodeEventKind::Other),
    ];
    let node_event = (
        option::of(id()),
        kind,
        option::of(text()),
        option::of(text()),
    )
        .prop_map(|(node_id, kind, message, description)| {
            NodeMessage::NodeEvent(NodeEvent {
                node_id,
                kind,
                message,
                description,
            })
        });
    prop_oneof![
        registration,
        status,
        pot_status,
        pot_event,
        node_event,
        Just(NodeMessage::NodeDrop),
        unknown_name(NODE_VARIANTS).prop_map(NodeMessage::Unknown),
    ]
    .boxed()
}

fn command() -> BoxedStrategy<Command> {
    let install = (
        text(),
        text(),
        option::of(text()),
        option::of(text()),
        option::of(btree_map(text(), text(), 0..4)),
        any::<bool>(),
    )
        .prop_map(
            |(pot_id, honeypot_type, git_url, git_branch, config, auto_start)| {
                Command::InstallPot(InstallPot {
                    pot_id,
                    honeypot_type,
                    git_url,
                    git_branch,
                    config,
                    auto_start,
                })
            },
        );
    let pot: Vec<fn(String) -> Command> = vec![
        Command::DeployPot,
        Command::StopPot,
        Command::RestartPot,
        Command::GetPotStatus,
        Command::GetPotLogs,
        Command::GetPotMetrics,
        Command::GetPotInfo,
        Command::UninstallPot,
    ];
    let pot_command = (select(pot), text()).prop_map(|(make, pot_id)| make(pot_id));
    let settings = option::of(
        json_map(json_value())
            .prop_filter("an empty settings map reads as none", |m| !m.is_empty()),
    );
    prop_oneof![
        install,
        pot_command,
        Just(Command::GetInstalledPots),
        Just(Command::Restart),
        settings.prop_map(Command::UpdateConfig),
        unknown_name(COMMANDS).prop_map(Command::Unknown),
    ]
    .boxed()
}

fn core_message() -> BoxedStrategy<CoreMessage> {
    let ack = (id(), any::<bool>(), option::of(text()), option::of(text())).prop_map(
        |(node_id, accepted, message, totp_key)| {
            CoreMessage::RegistrationAck(RegistrationAck {
                node_id,
                accepted,
                message,
                totp_key,
            })
        },
    );
    let node_command = (id(), command())
        .prop_map(|(node_id, command)| CoreMessage::NodeCommand(NodeCommand { node_id, command }));
    let event_ack =
        (id(), id()).prop_map(|(node_id, seq)| CoreMessage::EventAck(EventAck { node_id, seq }));
    prop_oneof![
        ack,
        node_command,
        event_ack,
        unknown_name(CORE_VARIANTS).prop_map(CoreMessage::Unknown),
    ]
    .boxed()
}

fn backend_command() -> BoxedStrategy<BackendCommand> {
    let filter = (option::of(id()), option::of(text()), option::of(text())).prop_map(
        |(node_id, pot_id, event_type_prefix)| EventFilter {
            node_id,
            pot_id,
            event_type_prefix,
        },
    );
    let subscribe = (vec(text(), 0..4), option::of(filter)).prop_map(|(topics, filter)| {
        BackendCommand::Subscribe(Subscribe {
            topics,
            filter,
            cursor: None,
        })
    });
    let query = (
        option::of(id()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(any::<u32>()),
        option::of(text()),
    )
        .prop_map(
            |(node_id, pot_id, event_type, src_ip, since, until, limit, cursor)| {
                BackendCommand::QueryEvents(EventQuery {
                    node_id,
                    pot_id,
                    event_type,
                    src_ip,
                    since,
                    until,
                    limit,
                    cursor,
                })
            },
        );
    prop_oneof![
        (id(), command()).prop_map(
            |(node_id, command)| BackendCommand::NodeCommand(NodeCommand { node_id, command })
        ),
        command().prop_map(|command| BackendCommand::BroadcastCommand { command }),
        Just(BackendCommand::GetNodes),
        id().prop_map(|node_id| BackendCommand::GetNode { node_id }),
        node_status().prop_map(|status| BackendCommand::GetNodesByStatus { status }),
        Just(BackendCommand::GetNodeCount),
        id().prop_map(|node_id| BackendCommand::RemoveNode { node_id }),
        Just(BackendCommand::GetActiveConnections),
        subscribe,
        query,
        unknown_name(BACKEND_COMMANDS).prop_map(BackendCommand::Unknown),
    ]
    .boxed()
}

fn module_message() -> BoxedStrategy<ModuleMessage> {
    let backend_type = prop_oneof![
        Just(BackendType::Web),
        Just(BackendType::Api),
        Just(BackendType::Monitoring),
        Just(BackendType::Cli),
        text().prop_map(BackendType::Custom),
    ];
    let registration =
        (text(), backend_type, text()).prop_map(|(backend_name, backend_type, token)| {
            ModuleMessage::BackendRegistration(BackendRegistration {
                backend_name,
                backend_type,
                token,
            })
        });
    prop_oneof![
        registration,
        backend_command().prop_map(ModuleMessage::BackendCommand),
        Just(ModuleMessage::BackendDrop),
        unknown_name(MODULE_VARIANTS).prop_map(ModuleMessage::Unknown),
    ]
    .boxed()
}

fn stream_message() -> BoxedStrategy<StreamMessage> {
    let response = prop_oneof![
        (option::of(text()), optional_json())
            .prop_map(|(message, data)| BackendResponse::Success { message, data }),
        text().prop_map(BackendResponse::Failure),
    ];
    prop_oneof![
        response.prop_map(StreamMessage::BackendResponse),
        node_message()
            .prop_filter("a stream reads BackendResponse as a response", |m| {
                !matches!(m, NodeMessage::Unknown(name) if STREAM_ONLY.contains(&name.as_str()))
            })
            .prop_map(StreamMessage::Node),
    ]
    .boxed()
}

/// Messages of all directions, as lines.
fn any_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        node_message().prop_map(|m| encode(&Envelope::new(m))),
        core_message().prop_map(|m| encode(&Envelope::new(m))),
        module_message().prop_map(|m| encode(&Envelope::new(m))),
        stream_message().prop_map(|m| encode(&Envelope::new(m))),
    ]
}

// ---------------------------------------------------------------------------
// decode(encode(x)) == x
// ---------------------------------------------------------------------------

fn round_trip<M>(msg: &M) -> Result<(), TestCaseError>
where
    M: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let line = encode(&Envelope::new(msg));
    // One line, never pretty-printed, newline-terminated.
    prop_assert_eq!(line.last(), Some(&b'\n'));
    let body = &line[..line.len() - 1];
    prop_assert!(!body.contains(&b'\n'), "newline inside {:?}", body);
    prop_assert!(!body.contains(&b'\r'), "CR inside {:?}", body);
    let prefix: &[u8] = br#"{"version":2,"message":"#;
    prop_assert!(body.starts_with(prefix), "envelope prefix");
    let back: M = decode(body).map_err(|e| {
        TestCaseError::fail(format!(
            "{e}\n{}\nfrom {msg:?}",
            String::from_utf8_lossy(body)
        ))
    })?;
    prop_assert_eq!(&back, msg, "line: {}", String::from_utf8_lossy(body));
    Ok(())
}

proptest! {
    #[test]
    fn node_messages_round_trip(msg in node_message()) {
        round_trip(&msg)?;
    }

    #[test]
    fn core_messages_round_trip(msg in core_message()) {
        round_trip(&msg)?;
    }

    #[test]
    fn every_command_round_trips(node_id in id(), command in command()) {
        round_trip(&CoreMessage::NodeCommand(NodeCommand { node_id, command: command.clone() }))?;
        round_trip(&ModuleMessage::BackendCommand(BackendCommand::BroadcastCommand { command }))?;
    }

    #[test]
    fn module_messages_round_trip(msg in module_message()) {
        round_trip(&msg)?;
    }

    #[test]
    fn stream_messages_round_trip(msg in stream_message()) {
        round_trip(&msg)?;
    }
}

// ---------------------------------------------------------------------------
// Framing is by newline, never by read
// ---------------------------------------------------------------------------

/// Cuts `bytes` at the given points (any order, repeats allowed).
fn chunks(bytes: &[u8], cuts: &[Index]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

/// Feeds `chunks` with `feed`, taking frames out after each.
fn frames_by_feed(chunks: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut decoder = LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk)?;
        while let Some(frame) = decoder.next_frame()? {
            out.push(frame.to_vec());
        }
    }
    Ok(out)
}

/// Copies `chunks` through `window`/`filled` as a socket reader would, a read
/// never larger than the chunk nor the window.
fn frames_by_window(chunks: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut decoder = LineDecoder::new(DEFAULT_MAX_MESSAGE_BYTES);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let window = decoder.window();
            assert!(!window.is_empty(), "no window before any error");
            let n = window.len().min(rest.len());
            window[..n].copy_from_slice(&rest[..n]);
            decoder.filled(n);
            rest = &rest[n..];
            while let Some(frame) = decoder.next_frame()? {
                out.push(frame.to_vec());
            }
        }
    }
    Ok(out)
}

proptest! {
    #[test]
    fn lines_come_back_whatever_the_chunking(
        lines in vec(any_line(), 0..8),
        cuts in vec(any::<Index>(), 0..12),
        crlf in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for line in &lines {
            let body = &line[..line.len() - 1];
            expected.push(body.to_vec());
            stream.extend_from_slice(body);
            stream.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
        let chunks = chunks(&stream, &cuts);
        prop_assert_eq!(frames_by_feed(&chunks), Ok(expected.clone()));
        prop_assert_eq!(frames_by_window(&chunks), Ok(expected));
    }

    #[test]
    fn messages_come_back_whatever_the_chunking(
        msgs in vec(node_message(), 1..6),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        let mut stream = Vec::new();
        for msg in &msgs {
            stream.extend_from_slice(&encode(&Envelope::new(msg)));
        }
        let chunks = chunks(&stream, &cuts);
        let frames = frames_by_window(&chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let decoded: Vec<NodeMessage> = frames
            .iter()
            .map(|f| decode(f).map_err(|e| TestCaseError::fail(e.to_string())))
            .collect::<Result<_, _>>()?;
        prop_assert_eq!(decoded, msgs);
    }
}

// ---------------------------------------------------------------------------
// The line decoder's memory bound and line rules
// ---------------------------------------------------------------------------

/// What docs/protocol.md §1 makes of a byte stream, for a decoder that is drained
/// after every read: the non-blank lines (one trailing `\r` dropped) up to the
/// first line longer than `max`, and whether the stream breaks the limit. An
/// unfinished last line breaks it once it holds `max + 2` bytes: only a `\n`
/// could still end a line of `max` bytes and a `\r`.
fn model(stream: &[u8], max: usize) -> (Vec<Vec<u8>>, bool) {
    let mut frames = Vec::new();
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let tail = parts.pop().unwrap_or_default();
    for raw in parts {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.len() > max {
            return (frames, true);
        }
        if !line.is_empty() {
            frames.push(line.to_vec());
        }
    }
    (frames, tail.len() > max + 1)
}

/// A stream of lines whose lengths sit around `max`.
fn edgy_stream(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let line = (
        0..=max + 3,
        select(vec![b'x', b'\r', 0xff, b' ']),
        select(vec![&b""[..], b"\n", b"\r\n", b"\r", b"\n\n", b"\r\r\n"]),
    )
        .prop_map(|(len, fill, end)| {
            let mut line = vec![fill; len];
            line.extend_from_slice(end);
            line
        });
    vec(line, 0..8).prop_map(|lines| lines.concat())
}

fn random_stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Arbitrary bytes (a newline now and then).
        vec(any::<u8>(), 0..4000),
        // Mostly newlines and carriage returns.
        vec(select(vec![b'\n', b'\r', b'a']), 0..4000),
        // No newline at all.
        vec(any::<u8>().prop_filter("newline", |b| *b != b'\n'), 0..4000),
    ]
}

fn bounded_case() -> impl Strategy<Value = (usize, Vec<u8>, Vec<usize>)> {
    prop_oneof![
        (1usize..8, random_stream()),
        (1usize..2000, random_stream()),
        (1usize..3000).prop_flat_map(|max| (Just(max), edgy_stream(max))),
        (1usize..8).prop_flat_map(|max| (Just(max), edgy_stream(max))),
        // Past the size at which an emptied buffer is released.
        (16_000usize..40_000).prop_flat_map(|max| (Just(max), edgy_stream(max))),
    ]
    .prop_flat_map(|(max, stream)| (Just(max), Just(stream), vec(1usize..5000, 1..16)))
}

proptest! {
    #[test]
    fn the_decoder_never_holds_more_than_max_plus_two(
        (max, stream, reads) in bounded_case(),
    ) {
        let mut decoder = LineDecoder::new(max);
        let bound = max + 2;
        let mut frames = Vec::new();
        let mut failed = false;
        let mut rest = &stream[..];
        let mut read = reads.iter().cycle();
        while !rest.is_empty() && !failed {
            let window = decoder.window();
            prop_assert!(!window.is_empty(), "no window before any error");
            let n = window.len().min(rest.len()).min(*read.next().unwrap());
            window[..n].copy_from_slice(&rest[..n]);
            decoder.filled(n);
            rest = &rest[n..];
            prop_assert!(decoder.capacity() <= bound, "capacity {} > {}", decoder.capacity(), bound);
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        prop_assert!(frame.len() <= max);
                        prop_assert!(!frame.is_empty() && !frame.contains(&b'\n'));
                        frames.push(frame.to_vec());
                    }
                    Ok(None) => break,
                    Err(e) => {
                        prop_assert_eq!(e, FrameError::TooLong { max });
                        failed = true;
                        break;
                    }
                }
            }
            prop_assert!(decoder.capacity() <= bound, "capacity {} > {}", decoder.capacity(), bound);
            prop_assert!(decoder.buffered() <= bound);
        }
        let (expected_frames, expected_failure) = model(&stream, max);
        prop_assert_eq!(&frames, &expected_frames);
        prop_assert_eq!(failed, expected_failure);
        if failed {
            // A failed decoder stays failed and takes nothing more.
            prop_assert!(decoder.window().is_empty());
            prop_assert!(decoder.next_frame().is_err());
        }
        prop_assert!(decoder.capacity() <= bound);
    }
}

#[test]
fn a_line_at_the_default_limit_allocates_no_more_than_the_limit() {
    // docs/protocol.md §1: 1 MiB lines; the reader stops buffering at the limit and
    // never allocates more.
    let max = DEFAULT_MAX_MESSAGE_BYTES;
    for (line_len, ending, fits) in [
        (max, &b"\r\n"[..], true),
        (max, b"\n", true),
        (max + 1, b"\n", false),
        (4 * max, b"\n", false),
    ] {
        let mut stream = vec![b'x'; line_len];
        stream.extend_from_slice(ending);
        let mut decoder = LineDecoder::new(max);
        let mut rest = &stream[..];
        let mut result = Ok(None);
        while !rest.is_empty() {
            let window = decoder.window();
            if window.is_empty() {
                break;
            }
            let n = window.len().min(rest.len());
            window[..n].copy_from_slice(&rest[..n]);
            decoder.filled(n);
            rest = &rest[n..];
            assert!(
                decoder.capacity() <= max + 2,
                "capacity {}",
                decoder.capacity()
            );
            result = decoder.next_frame().map(|f| f.map(<[u8]>::len));
            if result != Ok(None) {
                break;
            }
        }
        if fits {
            assert_eq!(result, Ok(Some(max)));
        } else {
            assert_eq!(result, Err(FrameError::TooLong { max }));
            assert!(decoder.window().is_empty());
        }
        assert!(
            decoder.capacity() <= max + 2,
            "capacity {}",
            decoder.capacity()
        );
    }
}
