//! What a channel delivers: one alert, for the first event of a rule and
//! source, or a digest of the rest of a window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Unusual: a source never seen before.
    Medium,
    /// Someone touched a tripwire, logged in, or a canary died.
    High,
    /// Page someone now.
    Critical,
}

impl Severity {
    /// Parses `low`, `medium`, `high` or `critical`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s {
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The RFC 5424 severity (0 emergency … 7 debug).
    pub fn syslog(self) -> u8 {
        match self {
            Severity::Low => 5,
            Severity::Medium => 4,
            Severity::High => 3,
            Severity::Critical => 2,
        }
    }

    /// The CEF severity (0–10).
    pub fn cef(self) -> u8 {
        match self {
            Severity::Low => 3,
            Severity::Medium => 5,
            Severity::High => 8,
            Severity::Critical => 10,
        }
    }
}

/// The rest of a window, folded into one alert.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// Events folded (the first, alerted at once, not included).
    pub count: u64,
    /// Distinct nodes they came from.
    pub nodes: u64,
    /// Events per event type.
    pub types: BTreeMap<String, u64>,
    /// The window's length in seconds.
    pub window_secs: u64,
}

/// One alert, as every channel renders it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique and stable: `<rule>/<event id>` for a first alert,
    /// `<rule>/<source>/digest/<window start>` for a digest. Channels that
    /// can de-duplicate (webhook receivers, SIEMs) may use it.
    pub id: String,
    /// The rule that fired.
    pub rule: String,
    /// Its severity.
    pub severity: Severity,
    /// When the alert was made (RFC 3339, UTC).
    pub time: String,
    /// One line for a subject or chat message, already cleaned
    /// ([`crate::sanitize`]): no control characters, at most 200 bytes.
    pub title: String,
    /// The event's fields as text, cleaned and truncated visibly, in a
    /// stable order: `event.type`, `node.id`, `node.name`, `pot.id`,
    /// `source.ip`, `source.port`, `destination.port`, `user.name`, … then
    /// the event's own data fields as `data.<key>`.
    pub fields: Vec<(String, String)>,
    /// For a digest: what was folded.
    pub digest: Option<Digest>,
    /// The triggering (or, for a digest, the last) event mapped to the
    /// Elastic Common Schema (`honeybee_proto::ecs`).
    pub ecs: serde_json::Value,
}

impl Alert {
    /// The value of field `name`, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The plain-text body shared by email, file and chat formats: the
    /// title, the digest line if any, then one `key: value` line per field.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str(&self.title);
        out.push('\n');
        if let Some(d) = &self.digest {
            out.push_str(&d.summary());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&format!(
            "severity: {}\nrule: {}\ntime: {}\n",
            self.severity.name(),
            self.rule,
            self.time
        ));
        for (k, v) in &self.fields {
            out.push_str(k);
            out.push_str(": ");
            out.push_str(v);
            out.push('\n');
        }
        out
    }
}

impl Digest {
    /// "57 more on 3 nodes in 10 min: 41 cowrie.login.failed, 16 cowrie.command.input".
    pub fn summary(&self) -> String {
        let types: Vec<String> = self.types.iter().map(|(t, n)| format!("{n} {t}")).collect();
        format!(
            "and {} more on {} node{} in {}: {}",
            self.count,
            self.nodes,
            if self.nodes == 1 { "" } else { "s" },
            window_text(self.window_secs),
            types.join(", ")
        )
    }
}

fn window_text(secs: u64) -> String {
    if secs.is_multiple_of(3600) && secs > 0 {
        format!("{} h", secs / 3600)
    } else if secs.is_multiple_of(60) && secs > 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_reads_like_a_sentence() {
        let d = Digest {
            count: 57,
            nodes: 3,
            types: [("login".to_string(), 41), ("command".to_string(), 16)].into(),
            window_secs: 600,
        };
        assert_eq!(
            d.summary(),
            "and 57 more on 3 nodes in 10 min: 16 command, 41 login"
        );
    }
}
