//! `[[rule]]`s: which events alert, how loudly, and where to.
//!
//! A rule matches when every condition it has holds: event type, pot type
//! and node (globs, any of a list), source address (CIDR list) and not in
//! its `ignore` list, a source never seen before (`new_source`), and each
//! field condition (`[rule.fields]`: equal to a value or any of a list;
//! `[rule.fields_match]`: a glob). Conditions left out match anything.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::alert::Severity;
use crate::cidr::Cidr;
use crate::glob;
use crate::observed::Observed;

/// One `[[rule]]` as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name (shown in alerts).
    pub name: String,
    /// Event type glob(s): `extension.*`, `["*.login.success", "node.*"]`.
    #[serde(default)]
    pub event_type: Option<OneOrMany>,
    /// Pot type glob(s).
    #[serde(default)]
    pub pot_type: Option<OneOrMany>,
    /// Node ids or node name globs.
    #[serde(default)]
    pub node: Option<OneOrMany>,
    /// Source networks the event's `src_ip` must be in.
    #[serde(default)]
    pub source: Option<Vec<String>>,
    /// Source networks never alerted on (the office's own scanner).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Only the first event ever seen from a source.
    #[serde(default)]
    pub new_source: bool,
    /// Fields equal to a value, or to any of a list.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldValue>,
    /// Fields matching a glob.
    #[serde(default)]
    pub fields_match: BTreeMap<String, String>,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Channel names; empty means every channel.
    #[serde(default)]
    pub channels: Vec<String>,
    /// The first event of a source alerts at once; the rest of the window
    /// become one digest at its end. Default `10m`; `0s` alerts every event.
    #[serde(default)]
    pub window: Option<String>,
}

/// A string or a list of strings.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several (any may match).
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A field condition's value: text, number, boolean, or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// Equal to any of these.
    Many(Vec<toml::Value>),
    /// Equal to this.
    One(toml::Value),
}

/// A checked rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Its name.
    pub name: String,
    event_types: Vec<String>,
    pot_types: Vec<String>,
    nodes: Vec<String>,
    sources: Option<Vec<Cidr>>,
    ignore: Vec<Cidr>,
    /// Whether it wants only sources never seen before.
    pub new_source: bool,
    fields: Vec<(String, Vec<String>)>,
    fields_match: Vec<(String, String)>,
    /// Its severity.
    pub severity: Severity,
    /// Its channels (empty: all).
    pub channels: Vec<String>,
    /// Its window (zero: no folding).
    pub window: Duration,
}

/// The window when a rule does not say.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);

impl RuleConfig {
    /// Checks and compiles the rule; errors name the rule and the key.
    pub fn compile(self) -> Result<Rule, String> {
        let name = self.name.clone();
        let at = |key: &str, e: String| format!("rule {name:?}: {key}: {e}");
        if !crate::config::valid_name(&name) {
            return Err(format!(
                "rule name {name:?} must be 1 to 64 of A-Z a-z 0-9 _ - ."
            ));
        }
        let severity = Severity::parse(&self.severity).ok_or_else(|| {
            at(
                "severity",
                format!("{:?} is not low, medium, high or critical", self.severity),
            )
        })?;
        let cidrs = |key: &str, list: &[String]| -> Result<Vec<Cidr>, String> {
            list.iter()
                .map(|s| Cidr::parse(s).map_err(|e| at(key, e)))
                .collect()
        };
        let window = match &self.window {
            Some(w) => crate::duration::parse(w).map_err(|e| at("window", e))?,
            None => DEFAULT_WINDOW,
        };
        let mut fields = Vec::new();
        for (k, v) in self.fields {
            let values = match v {
                FieldValue::One(v) => vec![v],
                FieldValue::Many(v) => v,
            };
            let texts = values
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    toml::Value::Integer(i) => Ok(i.to_string()),
                    toml::Value::Float(f) => Ok(f.to_string()),
                    toml::Value::Boolean(b) => Ok(b.to_string()),
                    other => Err(at(
                        &format!("fields.{k}"),
                        format!("{other} is not a text, number or boolean"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?;
            fields.push((k, texts));
        }
        Ok(Rule {
            event_types: self.event_type.map(OneOrMany::into_vec).unwrap_or_default(),
            pot_types: self.pot_type.map(OneOrMany::into_vec).unwrap_or_default(),
            nodes: self.node.map(OneOrMany::into_vec).unwrap_or_default(),
            sources: match &self.source {
                Some(s) => Some(cidrs("source", s)?),
                None => None,
            },
            ignore: cidrs("ignore", &self.ignore)?,
            new_source: self.new_source,
            fields,
            fields_match: self.fields_match.into_iter().collect(),
            severity,
            channels: self.channels,
            window,
            name,
        })
    }
}

impl Rule {
    /// Whether `o` matches; `new_source` says whether its source was never
    /// seen before (the caller keeps that memory).
    pub fn matches(&self, o: &Observed, new_source: bool) -> bool {
        let any_glob = |globs: &[String], text: Option<&str>| {
            globs.is_empty() || text.is_some_and(|t| globs.iter().any(|g| glob::matches(g, t)))
        };
        if !any_glob(&self.event_types, Some(&o.event_type))
            || !any_glob(&self.pot_types, o.pot_type.as_deref())
        {
            return false;
        }
        if !self.nodes.is_empty() {
            let id = o.node_id.to_string();
            let hit = self.nodes.iter().any(|n| {
                *n == id
                    || o.node_name
                        .as_deref()
                        .is_some_and(|name| glob::matches(n, name))
            });
            if !hit {
                return false;
            }
        }
        if let Some(sources) = &self.sources {
            if !o
                .source
                .is_some_and(|ip| sources.iter().any(|c| c.contains(ip)))
            {
                return false;
            }
        }
        if o.source
            .is_some_and(|ip| self.ignore.iter().any(|c| c.contains(ip)))
        {
            return false;
        }
        if self.new_source && !(new_source && o.source.is_some()) {
            return false;
        }
        let fields_ok = self
            .fields
            .iter()
            .all(|(k, vals)| o.text(k).is_some_and(|t| vals.contains(&t)));
        fields_ok
            && self
                .fields_match
                .iter()
                .all(|(k, g)| o.text(k).is_some_and(|t| glob::matches(g, &t)))
    }
}

/// The rules shipped on (`default_rules = true`): any tripwire touched and
/// any successful login are high; a source never seen before is medium; a
/// node or pot going down (the canary itself dying) is high. A rule of
/// the config with the same name replaces one of these.
pub fn defaults() -> Vec<Rule> {
    let text = r#"
[[rule]]
name = "tripwire"
event_type = "extension.*"
severity = "high"

[[rule]]
name = "login"
event_type = ["*.login.success", "*login_success*", "*.login.succeeded"]
severity = "high"

[[rule]]
name = "new-source"
new_source = true
severity = "medium"

[[rule]]
name = "node-down"
event_type = "node.status"
fields = { status = ["Unknown", "Stopped", "Failed"] }
severity = "high"
window = "0s"

[[rule]]
name = "pot-down"
event_type = "pot.status"
fields = { status = ["Stopped", "Failed"] }
severity = "high"
window = "0s"
"#;
    #[derive(Deserialize)]
    struct Rules {
        rule: Vec<RuleConfig>,
    }
    // The text above is ours and tested; an error here is a bug, shown as
    // no default rules rather than a crash.
    toml::from_str::<Rules>(text)
        .map(|r| {
            r.rule
                .into_iter()
                .filter_map(|r| r.compile().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeybee_proto::PotEvent;
    use serde_json::json;

    fn event(t: &str, data: serde_json::Value) -> Observed {
        Observed::from_event(
            PotEvent {
                node_id: 12,
                pot_id: "cowrie-01".into(),
                pot_type: "cowrie".into(),
                event_type: t.into(),
                timestamp: "2026-12-07T03:00:00Z".into(),
                seq: Some(1),
                data: data.as_object().cloned().unwrap_or_default(),
            },
            Some("7".into()),
        )
        .with_node_name(Some("office-pc-12".into()))
    }

    fn rule(text: &str) -> Rule {
        toml::from_str::<RuleConfig>(text)
            .unwrap()
            .compile()
            .unwrap()
    }

    #[test]
    fn the_shipped_defaults_cover_tripwires_logins_new_sources_and_dead_canaries() {
        let d = defaults();
        let names: Vec<&str> = d.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["tripwire", "login", "new-source", "node-down", "pot-down"]
        );
        let by = |n: &str| d.iter().find(|r| r.name == n).unwrap();
        let probe = event(
            "extension.connection",
            json!({"src_ip": "203.0.113.7", "dst_port": 3389}),
        );
        assert!(by("tripwire").matches(&probe, false));
        assert!(!by("tripwire").matches(&event("cowrie.login.failed", json!({})), false));
        assert!(by("login").matches(&event("cowrie.login.success", json!({})), false));
        assert!(by("new-source").matches(&probe, true));
        assert!(!by("new-source").matches(&probe, false));
        let down = Observed::node_status(12, "Unknown", Some("Running"), "t".into());
        assert!(by("node-down").matches(&down, false));
        let up = Observed::node_status(12, "Running", Some("Unknown"), "t".into());
        assert!(!by("node-down").matches(&up, false));
        let crashed = Observed::pot_status(
            12,
            "cowrie-01",
            "cowrie",
            "Failed",
            Some("Running"),
            Some("crash loop"),
            "t".into(),
        );
        assert!(by("pot-down").matches(&crashed, false));
        assert_eq!(by("node-down").window, Duration::ZERO);
        assert_eq!(by("tripwire").window, DEFAULT_WINDOW);
    }

    #[test]
    fn every_condition_must_hold() {
        let r = rule(
            r#"
name = "root-logins-from-outside"
event_type = "cowrie.login.*"
pot_type = "cow*"
node = ["office-*", "99"]
source = ["203.0.113.0/24"]
ignore = ["203.0.113.200/32"]
fields = { username = ["root", "admin"], dst_port = 2222 }
fields_match = { password = "*123*" }
severity = "high"
"#,
        );
        let hit = json!({"src_ip": "203.0.113.7", "username": "root", "password": "x123y", "dst_port": 2222});
        assert!(r.matches(&event("cowrie.login.failed", hit.clone()), false));
        let mut other = hit.clone();
        other["username"] = json!("guest");
        assert!(!r.matches(&event("cowrie.login.failed", other), false));
        let mut scanner = hit.clone();
        scanner["src_ip"] = json!("203.0.113.200");
        assert!(
            !r.matches(&event("cowrie.login.failed", scanner), false),
            "ignored source"
        );
        let mut outside = hit.clone();
        outside["src_ip"] = json!("198.51.100.1");
        assert!(!r.matches(&event("cowrie.login.failed", outside), false));
        assert!(!r.matches(&event("cowrie.command.input", hit.clone()), false));
        let mut nopass = hit;
        nopass["password"] = json!("secret");
        assert!(!r.matches(&event("cowrie.login.failed", nopass), false));
    }

    #[test]
    fn bad_rules_are_refused_with_their_name_and_key() {
        let e = toml::from_str::<RuleConfig>("name = \"x\"\nseverity = \"loud\"")
            .unwrap()
            .compile()
            .unwrap_err();
        assert!(e.contains("rule \"x\": severity"), "{e}");
        let e = toml::from_str::<RuleConfig>(
            "name = \"x\"\nseverity = \"high\"\nsource = [\"10.0.0.0/40\"]",
        )
        .unwrap()
        .compile()
        .unwrap_err();
        assert!(e.contains("source"), "{e}");
        let e =
            toml::from_str::<RuleConfig>("name = \"x\"\nseverity = \"high\"\nevent_typ = \"a\"")
                .unwrap_err();
        assert!(e.to_string().contains("event_typ"), "{e}");
    }
}
