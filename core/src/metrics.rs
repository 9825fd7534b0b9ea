//! Counters for `/metrics` (Prometheus text format).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use honeybee_proto::NodeStatus;

use crate::node::admission::Refusal;

/// Why a registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationRefusal {
    /// Envelope version is not 2.
    WrongVersion,
    /// First message was not `NodeRegistration`.
    NotRegistration,
    /// `NodeRegistration` payload did not parse.
    InvalidRegistration,
    /// Token policy, missing or wrong token.
    BadEnrollmentToken,
    /// Approve policy, not yet approved.
    PendingApproval,
    /// Known node sent no code.
    MissingTotp,
    /// Known node sent a wrong code.
    BadTotp,
    /// Known node reused a step.
    ReplayedTotp,
    /// Node id locked out.
    LockedOut,
    /// `max_nodes` reached.
    NodeLimit,
    /// The store could not record the registration.
    Internal,
}

impl RegistrationRefusal {
    /// Every reason, in label order.
    pub const ALL: [RegistrationRefusal; 11] = [
        RegistrationRefusal::WrongVersion,
        RegistrationRefusal::NotRegistration,
        RegistrationRefusal::InvalidRegistration,
        RegistrationRefusal::BadEnrollmentToken,
        RegistrationRefusal::PendingApproval,
        RegistrationRefusal::MissingTotp,
        RegistrationRefusal::BadTotp,
        RegistrationRefusal::ReplayedTotp,
        RegistrationRefusal::LockedOut,
        RegistrationRefusal::NodeLimit,
        RegistrationRefusal::Internal,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            RegistrationRefusal::WrongVersion => "wrong_version",
            RegistrationRefusal::NotRegistration => "not_registration",
            RegistrationRefusal::InvalidRegistration => "invalid_registration",
            RegistrationRefusal::BadEnrollmentToken => "bad_enrollment_token",
            RegistrationRefusal::PendingApproval => "pending_approval",
            RegistrationRefusal::MissingTotp => "missing_totp",
            RegistrationRefusal::BadTotp => "bad_totp",
            RegistrationRefusal::ReplayedTotp => "replayed_totp",
            RegistrationRefusal::LockedOut => "locked_out",
            RegistrationRefusal::NodeLimit => "node_limit",
            RegistrationRefusal::Internal => "internal",
        }
    }
}

/// A protocol error on a node connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// Line over `max_message_bytes`.
    TooLong,
    /// Not UTF-8.
    NotUtf8,
    /// Not a JSON envelope.
    InvalidJson,
    /// Version other than 2.
    WrongVersion,
    /// A known variant with a bad payload.
    InvalidMessage,
    /// A message other than `NodeRegistration` came first.
    NotRegistration,
    /// No registration within the deadline.
    RegistrationTimeout,
    /// TLS handshake failed (plaintext, TLS 1.2, bad client certificate …).
    TlsHandshake,
    /// A variant this core does not know.
    UnknownVariant,
}

impl ProtocolError {
    /// Every kind, in label order.
    pub const ALL: [ProtocolError; 9] = [
        ProtocolError::TooLong,
        ProtocolError::NotUtf8,
        ProtocolError::InvalidJson,
        ProtocolError::WrongVersion,
        ProtocolError::InvalidMessage,
        ProtocolError::NotRegistration,
        ProtocolError::RegistrationTimeout,
        ProtocolError::TlsHandshake,
        ProtocolError::UnknownVariant,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            ProtocolError::TooLong => "too_long",
            ProtocolError::NotUtf8 => "not_utf8",
            ProtocolError::InvalidJson => "invalid_json",
            ProtocolError::WrongVersion => "wrong_version",
            ProtocolError::InvalidMessage => "invalid_message",
            ProtocolError::NotRegistration => "not_registration",
            ProtocolError::RegistrationTimeout => "registration_timeout",
            ProtocolError::TlsHandshake => "tls_handshake",
            ProtocolError::UnknownVariant => "unknown_variant",
        }
    }

    /// The kind of a decode error.
    pub fn from_decode(e: &honeybee_proto::DecodeError) -> ProtocolError {
        use honeybee_proto::DecodeError as D;
        match e {
            D::NotUtf8 => ProtocolError::NotUtf8,
            D::InvalidJson(_) => ProtocolError::InvalidJson,
            D::WrongVersion(_) => ProtocolError::WrongVersion,
            D::InvalidMessage(_) => ProtocolError::InvalidMessage,
        }
    }
}

/// Why a stream-port (9003) connection was closed before or instead of
/// serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRefusal {
    /// `MAX_SESSIONS` stream sessions were already open.
    TooManySessions,
    /// Wrong or missing API token.
    InvalidToken,
    /// No registration within the deadline.
    RegistrationTimeout,
    /// Not an envelope: not UTF-8 or not JSON.
    InvalidJson,
    /// A line or WebSocket message over the size limit.
    TooLong,
    /// The WebSocket handshake failed.
    Handshake,
    /// Too many unregistered connections (overall or from this source), or
    /// this source connects too fast.
    Pending,
    /// A browser page from another origin opened the WebSocket.
    Origin,
    /// A trusted proxy's connection without a valid PROXY header in time.
    ProxyHeader,
}

impl StreamRefusal {
    /// Every reason, in label order.
    pub const ALL: [StreamRefusal; 9] = [
        StreamRefusal::TooManySessions,
        StreamRefusal::InvalidToken,
        StreamRefusal::RegistrationTimeout,
        StreamRefusal::InvalidJson,
        StreamRefusal::TooLong,
        StreamRefusal::Handshake,
        StreamRefusal::Pending,
        StreamRefusal::Origin,
        StreamRefusal::ProxyHeader,
    ];

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            StreamRefusal::TooManySessions => "too_many_sessions",
            StreamRefusal::InvalidToken => "invalid_token",
            StreamRefusal::RegistrationTimeout => "registration_timeout",
            StreamRefusal::InvalidJson => "invalid_json",
            StreamRefusal::TooLong => "too_long",
            StreamRefusal::Handshake => "handshake",
            StreamRefusal::Pending => "pending_limit",
            StreamRefusal::Origin => "origin",
            StreamRefusal::ProxyHeader => "proxy_header",
        }
    }
}

/// All counters; shared by every part of the core.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Accepted TCP connections on the node port.
    pub connections: AtomicU64,
    /// Node connections open now.
    pub connections_open: AtomicU64,
    /// Times the node port stopped accepting because
    /// `max_pending_connections` unregistered connections were open
    /// (newcomers waited in the listen backlog).
    pub accept_waits: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
    /// Accepted registrations.
    pub registrations_accepted: AtomicU64,
    registrations_refused: [AtomicU64; 11],
    protocol_errors: [AtomicU64; 9],
    /// Heartbeats (`NodeStatusUpdate`) received.
    pub heartbeats: AtomicU64,
    /// Store writes that failed.
    pub store_errors: AtomicU64,
    /// PotEvents read from nodes.
    pub events_received: AtomicU64,
    /// PotEvents committed (duplicates not counted).
    pub events_stored: AtomicU64,
    /// Replayed PotEvents already stored.
    pub events_duplicate: AtomicU64,
    /// EventAck messages queued for nodes (raising one still waiting does
    /// not count again).
    pub event_acks: AtomicU64,
    /// EventAcks that could not be queued (node gone or not reading).
    pub event_acks_failed: AtomicU64,
    /// Events removed by retention.
    pub events_expired: AtomicU64,
    /// API connections closed at accept (limits of the HTTP gate).
    pub api_refused: AtomicU64,
    /// API requests the gate answered itself with an error (head too
    /// large or malformed, body too large or unauthenticated, too slow).
    pub api_requests_refused: AtomicU64,
    /// Connections accepted on the stream port.
    pub stream_connections: AtomicU64,
    /// Stream sessions open now (registered or not).
    pub stream_sessions_open: AtomicU64,
    /// Stream sessions that presented a valid API token.
    pub stream_registrations: AtomicU64,
    /// `Subscribe` commands applied.
    pub stream_subscriptions: AtomicU64,
    stream_refused: [AtomicU64; StreamRefusal::ALL.len()],
    /// `BackendCommand`s answered.
    pub stream_commands: AtomicU64,
    /// Live messages dropped for slow stream subscribers (reported as `lagged N`).
    pub stream_dropped: AtomicU64,
    /// Times a module was started again after it exited or failed to start.
    pub module_restarts: AtomicU64,
    /// Modules whose process runs now.
    pub modules_running: AtomicU64,
}

fn index<T: PartialEq>(all: &[T], v: T) -> usize {
    all.iter().position(|x| *x == v).unwrap_or(0)
}

impl Metrics {
    /// Counts a refused connection.
    pub fn connection_refused(&self, r: Refusal) {
        self.refused[index(&Refusal::ALL, r)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused registration.
    pub fn registration_refused(&self, r: RegistrationRefusal) {
        self.registrations_refused[index(&RegistrationRefusal::ALL, r)]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream connection closed for `r`.
    pub fn stream_refused(&self, r: StreamRefusal) {
        self.stream_refused[index(&StreamRefusal::ALL, r)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a protocol error.
    pub fn protocol_error(&self, e: ProtocolError) {
        self.protocol_errors[index(&ProtocolError::ALL, e)].fetch_add(1, Ordering::Relaxed);
    }

    /// The value of one protocol-error counter.
    pub fn protocol_errors(&self, e: ProtocolError) -> u64 {
        self.protocol_errors[index(&ProtocolError::ALL, e)].load(Ordering::Relaxed)
    }

    /// Renders everything; `nodes` gives the node count per status.
    pub fn render(&self, nodes: &[(NodeStatus, u64)]) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            &mut out,
            "honeybee_connections_total",
            "Node connections accepted on the node port.",
            get(&self.connections),
        );
        gauge_head(
            &mut out,
            "honeybee_connections_open",
            "Node connections open now.",
        );
        let _ = writeln!(
            out,
            "honeybee_connections_open {}",
            get(&self.connections_open)
        );
        counter(
            &mut out,
            "honeybee_connections_accept_waits_total",
            "Times the node port paused accepting at max_pending_connections (newcomers waited in the listen backlog).",
            get(&self.accept_waits),
        );
        labelled(
            &mut out,
            "honeybee_connections_refused_total",
            "Node connections closed at accept, by reason.",
            "reason",
            Refusal::ALL
                .iter()
                .map(|r| r.label())
                .zip(self.refused.iter().map(get)),
        );
        counter(
            &mut out,
            "honeybee_registrations_accepted_total",
            "Registrations accepted.",
            get(&self.registrations_accepted),
        );
        labelled(
            &mut out,
            "honeybee_registrations_refused_total",
            "Registrations refused, by reason.",
            "reason",
            RegistrationRefusal::ALL
                .iter()
                .map(|r| r.label())
                .zip(self.registrations_refused.iter().map(get)),
        );
        labelled(
            &mut out,
            "honeybee_protocol_errors_total",
            "Protocol errors on node connections, by kind.",
            "kind",
            ProtocolError::ALL
                .iter()
                .map(|r| r.label())
                .zip(self.protocol_errors.iter().map(get)),
        );
        counter(
            &mut out,
            "honeybee_heartbeats_total",
            "Node heartbeats received.",
            get(&self.heartbeats),
        );
        counter(
            &mut out,
            "honeybee_store_errors_total",
            "Database writes that failed.",
            get(&self.store_errors),
        );
        for (name, help, value) in [
            (
                "honeybee_events_received_total",
                "PotEvents read from nodes.",
                &self.events_received,
            ),
            (
                "honeybee_events_stored_total",
                "PotEvents committed (replays not counted).",
                &self.events_stored,
            ),
            (
                "honeybee_events_duplicate_total",
                "Replayed PotEvents that were already stored.",
                &self.events_duplicate,
            ),
            (
                "honeybee_event_acks_total",
                "EventAck messages queued for nodes.",
                &self.event_acks,
            ),
            (
                "honeybee_event_acks_failed_total",
                "EventAcks not queued: node gone or not reading.",
                &self.event_acks_failed,
            ),
            (
                "honeybee_events_expired_total",
                "Events removed by retention.",
                &self.events_expired,
            ),
            (
                "honeybee_api_connections_refused_total",
                "API connections closed at accept: too many, or too fast from one source.",
                &self.api_refused,
            ),
            (
                "honeybee_api_requests_refused_total",
                "API requests refused by the gate: oversized, malformed, unauthenticated body or too slow.",
                &self.api_requests_refused,
            ),
        ] {
            counter(&mut out, name, help, get(value));
        }
        counter(
            &mut out,
            "honeybee_stream_connections_total",
            "Connections accepted on the stream port.",
            get(&self.stream_connections),
        );
        gauge_head(
            &mut out,
            "honeybee_stream_sessions_open",
            "Stream sessions open now.",
        );
        let _ = writeln!(
            out,
            "honeybee_stream_sessions_open {}",
            get(&self.stream_sessions_open)
        );
        counter(
            &mut out,
            "honeybee_stream_registrations_total",
            "Stream sessions that presented a valid API token.",
            get(&self.stream_registrations),
        );
        counter(
            &mut out,
            "honeybee_stream_subscriptions_total",
            "Subscribe commands applied: from then on the session gets live messages.",
            get(&self.stream_subscriptions),
        );
        labelled(
            &mut out,
            "honeybee_stream_refused_total",
            "Stream connections closed without being served, by reason.",
            "reason",
            StreamRefusal::ALL
                .iter()
                .map(|r| r.label())
                .zip(self.stream_refused.iter().map(get)),
        );
        counter(
            &mut out,
            "honeybee_stream_commands_total",
            "Module commands answered on the stream port.",
            get(&self.stream_commands),
        );
        counter(
            &mut out,
            "honeybee_stream_dropped_total",
            "Live messages dropped for slow stream subscribers.",
            get(&self.stream_dropped),
        );
        counter(
            &mut out,
            "honeybee_module_restarts_total",
            "Module processes started again after an exit or a failed start.",
            get(&self.module_restarts),
        );
        gauge_head(
            &mut out,
            "honeybee_modules_running",
            "Module processes running now.",
        );
        let _ = writeln!(
            out,
            "honeybee_modules_running {}",
            get(&self.modules_running)
        );
        gauge_head(&mut out, "honeybee_nodes", "Known nodes, by status.");
        for (status, n) in nodes {
            let _ = writeln!(out, "honeybee_nodes{{status=\"{status}\"}} {n}");
        }
        out
    }
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge_head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// A Prometheus label value: backslash, double quote and newline escaped.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labelled<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, n) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_rendered() {
        let m = Metrics::default();
        m.protocol_error(ProtocolError::TooLong);
        m.registration_refused(RegistrationRefusal::BadTotp);
        m.connection_refused(Refusal::SourceRate);
        let text = m.render(&[(NodeStatus::Running, 3)]);
        assert!(text.contains("honeybee_protocol_errors_total{kind=\"too_long\"} 1"));
        assert!(text.contains("honeybee_protocol_errors_total{kind=\"unknown_variant\"} 0"));
        assert!(text.contains("honeybee_registrations_refused_total{reason=\"bad_totp\"} 1"));
        assert!(text.contains("honeybee_connections_refused_total{reason=\"source_rate\"} 1"));
        assert!(text.contains("honeybee_nodes{status=\"Running\"} 3"));
        m.stream_refused(StreamRefusal::InvalidToken);
        let text = m.render(&[]);
        assert!(text.contains("honeybee_stream_refused_total{reason=\"invalid_token\"} 1"));
        assert!(text.contains("honeybee_stream_refused_total{reason=\"handshake\"} 0"));
    }
}
