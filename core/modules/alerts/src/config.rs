//! The module's config file (`configs/alerts.toml`): `[[channel]]`s,
//! `[[rule]]`s and a few top-level settings. Every key is checked: an
//! unknown key, channel type or field is an error that names it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::alert::Severity;
use crate::channels::{self, Channel, Common};
use crate::rules::{self, Rule, RuleConfig};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    api_token_file: Option<PathBuf>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default = "yes")]
    default_rules: bool,
    #[serde(default)]
    max_outbox: Option<usize>,
    #[serde(default)]
    report_interval: Option<String>,
    #[serde(default)]
    channel: Vec<toml::Table>,
    #[serde(default)]
    rule: Vec<RuleConfig>,
}

fn yes() -> bool {
    true
}

/// The checked config.
#[derive(Debug)]
pub struct Config {
    /// The core's stream port (`host:port`), unless given on the command
    /// line or by the core.
    pub stream: Option<String>,
    /// The core's REST API (`host:port`), for node names and reports.
    pub api: Option<String>,
    /// Where the API token is.
    pub api_token_file: Option<PathBuf>,
    /// Where the cursor, windows and outboxes live.
    pub state_dir: Option<PathBuf>,
    /// Most alerts waiting per channel on disk; beyond, the oldest are
    /// dropped and counted.
    pub max_outbox: usize,
    /// How often figures are reported to the core.
    pub report_interval: Duration,
    /// The channels.
    pub channels: Vec<ChannelSpec>,
    /// The rules: the shipped defaults (unless `default_rules = false`)
    /// with the file's own, a file rule replacing a default of its name.
    pub rules: Vec<Rule>,
}

/// One `[[channel]]`, checked but not opened.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    /// Name and timeout.
    pub common: Common,
    /// `webhook`, `slack`, `teams`, `syslog`, `email` or `file`.
    pub kind: &'static str,
    /// Alerts sent per minute at most; beyond, they are counted and one
    /// summary goes out when the minute ends.
    pub max_per_minute: u32,
    /// Alerts below this severity are not sent here.
    pub min_severity: Severity,
    settings: Settings,
}

#[derive(Debug, Clone)]
enum Settings {
    Webhook(channels::webhook::WebhookConfig, channels::webhook::Format),
    Syslog(channels::syslog::SyslogConfig),
    Email(channels::email::EmailConfig),
    File(channels::file::FileConfig),
}

/// Channel types.
pub const CHANNEL_TYPES: [&str; 6] = ["webhook", "slack", "teams", "syslog", "email", "file"];

impl ChannelSpec {
    /// Builds the channel (secrets are read here, not when checking).
    pub fn open(&self) -> Result<Box<dyn Channel>, String> {
        match &self.settings {
            Settings::Webhook(c, f) => channels::webhook::open(&self.common, c, *f),
            Settings::Syslog(c) => channels::syslog::open(&self.common, c),
            Settings::Email(c) => channels::email::open(&self.common, c),
            Settings::File(c) => channels::file::open(&self.common, c),
        }
    }
}

/// Whether `name` is 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Reads and checks `path`; the error starts with the path.
pub fn load(path: &Path) -> Result<Config, String> {
    let text = honeybee_process::toml_file::read(path)?;
    parse(&text).map_err(|e| format!("reading config {}: {e}", path.display()))
}

/// Checks a config text.
pub fn parse(text: &str) -> Result<Config, String> {
    let file: File = honeybee_process::toml_file::parse(text)?;
    let mut channels = Vec::new();
    for (i, table) in file.channel.into_iter().enumerate() {
        let spec = channel(table).map_err(|e| format!("[[channel]] #{}: {e}", i + 1))?;
        if channels
            .iter()
            .any(|c: &ChannelSpec| c.common.name == spec.common.name)
        {
            return Err(format!("channel {:?} is defined twice", spec.common.name));
        }
        channels.push(spec);
    }
    let mut rules: Vec<Rule> = if file.default_rules {
        rules::defaults()
    } else {
        Vec::new()
    };
    let mut own = Vec::<String>::new();
    for r in file.rule {
        let rule = r.compile()?;
        if own.contains(&rule.name) {
            return Err(format!("rule {:?} is defined twice", rule.name));
        }
        own.push(rule.name.clone());
        for c in &rule.channels {
            if !channels.iter().any(|s| &s.common.name == c) {
                return Err(format!(
                    "rule {:?}: channels: no channel named {c:?}",
                    rule.name
                ));
            }
        }
        rules.retain(|d| d.name != rule.name);
        rules.push(rule);
    }
    let report_interval = match &file.report_interval {
        Some(s) => crate::duration::parse(s).map_err(|e| format!("report_interval: {e}"))?,
        None => Duration::from_secs(5),
    };
    let max_outbox = file.max_outbox.unwrap_or(10_000);
    if max_outbox == 0 {
        return Err("max_outbox: must be at least 1".into());
    }
    Ok(Config {
        stream: file.stream,
        api: file.api,
        api_token_file: file.api_token_file,
        state_dir: file.state_dir,
        max_outbox,
        report_interval: report_interval.max(Duration::from_secs(1)),
        channels,
        rules,
    })
}

/// One channel table: the common keys, then the type's own (unknown ones
/// refused by the type's config).
fn channel(mut t: toml::Table) -> Result<ChannelSpec, String> {
    let text = |t: &mut toml::Table, key: &str| -> Result<Option<String>, String> {
        match t.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "{key}: expected a string, found {}",
                other.type_str()
            )),
        }
    };
    let name = text(&mut t, "name")?.ok_or("missing key `name`")?;
    if !valid_name(&name) {
        return Err(format!(
            "name {name:?} must be 1 to 64 of A-Z a-z 0-9 _ - ."
        ));
    }
    let at = |e: String| format!("channel {name:?}: {e}");
    let kind_text = text(&mut t, "type")
        .map_err(at)?
        .ok_or_else(|| at("missing key `type`".into()))?;
    let kind = CHANNEL_TYPES
        .iter()
        .copied()
        .find(|k| *k == kind_text)
        .ok_or_else(|| {
            at(format!(
                "unknown channel type {kind_text:?} (expected one of {})",
                CHANNEL_TYPES.join(", ")
            ))
        })?;
    let timeout = match text(&mut t, "timeout").map_err(at)? {
        Some(s) => crate::duration::parse(&s).map_err(|e| at(format!("timeout: {e}")))?,
        None => Duration::from_secs(10),
    };
    let max_per_minute = match t.remove("max_per_minute") {
        None => 60,
        Some(toml::Value::Integer(n)) if (1..=100_000).contains(&n) => n as u32,
        Some(v) => return Err(at(format!("max_per_minute: {v} is not 1 to 100000"))),
    };
    let min_severity = match text(&mut t, "min_severity").map_err(at)? {
        None => Severity::Low,
        Some(s) => Severity::parse(&s).ok_or_else(|| {
            at(format!(
                "min_severity: {s:?} is not low, medium, high or critical"
            ))
        })?,
    };
    let rest = toml::Value::Table(t);
    let typed = |e: toml::de::Error| at(format!("{kind}: {}", e.to_string().trim_end()));
    use channels::webhook::Format;
    let settings = match kind {
        "webhook" => Settings::Webhook(rest.try_into().map_err(typed)?, Format::Json),
        "slack" => Settings::Webhook(rest.try_into().map_err(typed)?, Format::Slack),
        "teams" => Settings::Webhook(rest.try_into().map_err(typed)?, Format::Teams),
        "syslog" => Settings::Syslog(rest.try_into().map_err(typed)?),
        "email" => Settings::Email(rest.try_into().map_err(typed)?),
        _ => Settings::File(rest.try_into().map_err(typed)?),
    };
    Ok(ChannelSpec {
        common: Common { name, timeout },
        kind,
        max_per_minute,
        min_severity,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config contract of the issue, word for word: these keys must
    /// work as written.
    const CONTRACT: &str = r#"
[[channel]]
name = "hook"
type = "webhook"            # webhook | slack | teams | syslog | email | file
url = "http://127.0.0.1:8088/alert"

[[channel]]
name = "siem"
type = "syslog"
address = "127.0.0.1:5514"
transport = "udp"           # udp | tcp | tls
format = "rfc5424"          # rfc5424 | cef

[[channel]]
name = "mail"
type = "email"
server = "127.0.0.1:2525"
tls = "none"                # none | starttls | implicit
from = "honeybee@example.org"
to = ["soc@example.org"]

[[rule]]
name = "tripwire"
event_type = "extension.*"  # glob
severity = "high"
channels = ["hook", "siem", "mail"]
window = "10m"              # first event at once, the rest as one digest at the window's end
"#;

    #[test]
    fn the_documented_contract_parses_and_every_channel_opens() {
        let c = parse(CONTRACT).unwrap();
        let kinds: Vec<&str> = c.channels.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["webhook", "syslog", "email"]);
        for ch in &c.channels {
            ch.open()
                .unwrap_or_else(|e| panic!("{}: {e}", ch.common.name));
        }
        let tripwire = c.rules.iter().find(|r| r.name == "tripwire").unwrap();
        assert_eq!(tripwire.channels, ["hook", "siem", "mail"]);
        assert_eq!(tripwire.window, Duration::from_secs(600));
        // The file's tripwire replaced the shipped one; the other defaults stay.
        assert_eq!(c.rules.iter().filter(|r| r.name == "tripwire").count(), 1);
        assert!(c.rules.iter().any(|r| r.name == "node-down"));
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let text = include_str!("../../../../configs/alerts.toml");
        let c = parse(text).unwrap();
        assert_eq!(
            c.channels.len(),
            1,
            "only the ECS file is on out of the box"
        );
        assert_eq!(c.rules.len(), 5, "the shipped rules");
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = parse("[[channel]]\nname = \"a\"\ntype = \"webhook\"\nurl = \"http://x/\"\n[[channel]]\nname = \"a\"\ntype = \"file\"\npath = \"/tmp/x\"\n").unwrap_err();
        assert!(e.contains("\"a\" is defined twice"), "{e}");
        // A channel's own values are checked when it is opened (as
        // --check-config and a start do).
        let c = parse("[[channel]]\nname = \"a\"\ntype = \"syslog\"\naddress = \"127.0.0.1:1\"\ntransport = \"carrier-pigeon\"\n").unwrap();
        let e = c.channels[0].open().err().unwrap();
        assert!(e.contains("transport"), "{e}");
        let e = parse(
            "[[channel]]\nname = \"a\"\ntype = \"file\"\npath = \"/tmp/x\"\nmax_per_minute = 0\n",
        )
        .unwrap_err();
        assert!(e.contains("max_per_minute"), "{e}");
        let e = parse("[[channel]]\ntype = \"file\"\npath = \"/tmp/x\"\n").unwrap_err();
        assert!(e.contains("name"), "{e}");
    }
}
