//! The `{"version": 2, "message": ...}` envelope and one-line encode/decode.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The only protocol version this crate speaks.
pub const PROTOCOL_VERSION: u64 = 2;

/// One message on the wire.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope<M> {
    /// Always [`PROTOCOL_VERSION`] when written by this crate.
    pub version: u64,
    /// The message.
    pub message: M,
}

impl<M> Envelope<M> {
    /// Wraps `message` in a version-2 envelope.
    pub fn new(message: M) -> Self {
        Envelope {
            version: PROTOCOL_VERSION,
            message,
        }
    }
}

/// Why a line could not be read as a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The line is not UTF-8.
    NotUtf8,
    /// The line is not JSON, or not a JSON object with `version` and `message`.
    InvalidJson(String),
    /// The envelope is fine but its `version` is not 2.
    WrongVersion(u64),
    /// Valid JSON and version, but the message does not match its variant.
    InvalidMessage(String),
}

impl DecodeError {
    /// A short stable name, used as a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::NotUtf8 => "not_utf8",
            DecodeError::InvalidJson(_) => "invalid_json",
            DecodeError::WrongVersion(_) => "wrong_version",
            DecodeError::InvalidMessage(_) => "invalid_message",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            DecodeError::NotUtf8 => f.write_str("message is not UTF-8"),
            DecodeError::InvalidJson(e) => write!(f, "invalid JSON envelope: {e}"),
            DecodeError::WrongVersion(v) => write!(
                f,
                "protocol version {v} is not supported; this core speaks version {PROTOCOL_VERSION}"
            ),
            DecodeError::InvalidMessage(e) => write!(f, "invalid message: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    version: Option<u64>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
}

/// Reads one line (without its newline) as an envelope holding an `M`.
///
/// The version is checked before the message is parsed, so that a peer of
/// another version gets told so rather than "invalid message".
pub fn decode<M: DeserializeOwned>(line: &[u8]) -> Result<M, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|_| DecodeError::NotUtf8)?;
    // The envelope is an object; a derived struct would also accept `[2, {...}]`.
    if !text
        .trim_start_matches([' ', '\t', '\r', '\n'])
        .starts_with('{')
    {
        return Err(DecodeError::InvalidJson(
            "envelope is not a JSON object".into(),
        ));
    }
    let raw: RawEnvelope =
        serde_json::from_str(text).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    let version = raw
        .version
        .ok_or_else(|| DecodeError::InvalidJson("missing field `version`".into()))?;
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::WrongVersion(version));
    }
    let message = raw
        .message
        .ok_or_else(|| DecodeError::InvalidJson("missing field `message`".into()))?;
    serde_json::from_str(message.get()).map_err(|e| DecodeError::InvalidMessage(e.to_string()))
}

/// Encodes an envelope as one line, `\n` included.
pub fn encode<M: Serialize>(envelope: &Envelope<M>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_into(envelope, &mut out);
    out
}

/// Appends an envelope as one line, `\n` included, to `out`.
pub fn encode_into<M: Serialize>(envelope: &Envelope<M>, out: &mut Vec<u8>) {
    // Our message types serialize to plain JSON maps with string keys; the
    // only possible failure would be a bug in a manual Serialize impl.
    if let Err(e) = serde_json::to_writer(&mut *out, envelope) {
        debug_assert!(false, "encoding a message failed: {e}");
    }
    out.push(b'\n');
}
