//! Commands the core sends to a node (docs/protocol.md §3).

use std::collections::BTreeMap;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::variant::{self, tolerant_enum_serde, Variants};

/// A command, written `{"Name": payload}`; unit commands `{"Name": {}}`.
///
/// Pot commands carry the pot id as a string (`{"StopPot": "cowrie-01"}`);
/// `{"StopPot": {"pot_id": "cowrie-01"}}` is read too.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Install a pot from the potstore or a git repository.
    InstallPot(InstallPot),
    /// Start an installed pot.
    DeployPot(String),
    /// Stop a pot.
    StopPot(String),
    /// Stop and start a pot.
    RestartPot(String),
    /// Report a pot's status.
    GetPotStatus(String),
    /// Report a pot's last log lines.
    GetPotLogs(String),
    /// Report a pot's process metrics.
    GetPotMetrics(String),
    /// Report a pot's manifest.
    GetPotInfo(String),
    /// Report every installed pot.
    GetInstalledPots,
    /// (ext) Remove a pot.
    UninstallPot(String),
    /// Reconnect.
    Restart,
    /// Reload configuration; (ext) with settings to change.
    UpdateConfig(Option<Map<String, Value>>),
    /// A command this version does not know.
    Unknown(String),
}

/// `InstallPot`'s payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallPot {
    /// The id the pot will have on the node.
    pub pot_id: String,
    /// The pot type from the potstore (`cowrie`, `native-telnet` …).
    pub honeypot_type: String,
    /// A git repository to install from instead of the potstore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_url: Option<String>,
    /// The branch of `git_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_branch: Option<String>,
    /// Config values overriding the pot's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Start the pot once installed.
    #[serde(default)]
    pub auto_start: bool,
}

impl Command {
    /// The command name, as on the wire.
    pub fn name(&self) -> &str {
        match self {
            Command::InstallPot(_) => "InstallPot",
            Command::DeployPot(_) => "DeployPot",
            Command::StopPot(_) => "StopPot",
            Command::RestartPot(_) => "RestartPot",
            Command::GetPotStatus(_) => "GetPotStatus",
            Command::GetPotLogs(_) => "GetPotLogs",
            Command::GetPotMetrics(_) => "GetPotMetrics",
            Command::GetPotInfo(_) => "GetPotInfo",
            Command::GetInstalledPots => "GetInstalledPots",
            Command::UninstallPot(_) => "UninstallPot",
            Command::Restart => "Restart",
            Command::UpdateConfig(_) => "UpdateConfig",
            Command::Unknown(name) => name,
        }
    }

    /// The pot a pot command is about.
    pub fn pot_id(&self) -> Option<&str> {
        match self {
            Command::InstallPot(p) => Some(&p.pot_id),
            Command::DeployPot(id)
            | Command::StopPot(id)
            | Command::RestartPot(id)
            | Command::GetPotStatus(id)
            | Command::GetPotLogs(id)
            | Command::GetPotMetrics(id)
            | Command::GetPotInfo(id)
            | Command::UninstallPot(id) => Some(id),
            _ => None,
        }
    }

    fn serialize_variants<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let name = self.name();
        match self {
            Command::InstallPot(p) => variant::serialize_variant(s, name, p),
            Command::UpdateConfig(Some(settings)) => variant::serialize_variant(s, name, settings),
            Command::GetInstalledPots
            | Command::Restart
            | Command::UpdateConfig(None)
            | Command::Unknown(_) => variant::serialize_unit(s, name),
            _ => match self.pot_id() {
                Some(id) => variant::serialize_variant(s, name, id),
                None => variant::serialize_unit(s, name),
            },
        }
    }
}

impl Variants for Command {
    const EXPECTING: &'static str = "a node command";

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "GetInstalledPots" => Some(Command::GetInstalledPots),
            "Restart" => Some(Command::Restart),
            "UpdateConfig" => Some(Command::UpdateConfig(None)),
            "InstallPot" | "DeployPot" | "StopPot" | "RestartPot" | "GetPotStatus"
            | "GetPotLogs" | "GetPotMetrics" | "GetPotInfo" | "UninstallPot" => None,
            other => Some(Command::Unknown(other.to_owned())),
        }
    }

    fn from_payload<'de, A: MapAccess<'de>>(name: &str, map: &mut A) -> Result<Self, A::Error> {
        let pot = |map: &mut A| map.next_value::<PotId>().map(|p| p.0);
        Ok(match name {
            "InstallPot" => Command::InstallPot(variant::payload(map)?),
            "DeployPot" => Command::DeployPot(pot(map)?),
            "StopPot" => Command::StopPot(pot(map)?),
            "RestartPot" => Command::RestartPot(pot(map)?),
            "GetPotStatus" => Command::GetPotStatus(pot(map)?),
            "GetPotLogs" => Command::GetPotLogs(pot(map)?),
            "GetPotMetrics" => Command::GetPotMetrics(pot(map)?),
            "GetPotInfo" => Command::GetPotInfo(pot(map)?),
            "UninstallPot" => Command::UninstallPot(pot(map)?),
            "GetInstalledPots" => {
                variant::unit_payload(map)?;
                Command::GetInstalledPots
            }
            "Restart" => {
                variant::unit_payload(map)?;
                Command::Restart
            }
            "UpdateConfig" => {
                let settings: Option<Map<String, Value>> = map.next_value()?;
                Command::UpdateConfig(settings.filter(|m| !m.is_empty()))
            }
            other => {
                variant::skip_payload(map)?;
                Command::Unknown(other.to_owned())
            }
        })
    }
}

tolerant_enum_serde!(Command);

/// A pot id written as `"id"` or `{"pot_id": "id"}`.
struct PotId(String);

impl<'de> Deserialize<'de> for PotId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PotId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a pot id string or {\"pot_id\": ...}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PotId, E> {
                Ok(PotId(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PotId, A::Error> {
                let mut id = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "pot_id" {
                        id = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                id.map(PotId)
                    .ok_or_else(|| de::Error::missing_field("pot_id"))
            }
        }
        d.deserialize_any(V)
    }
}
