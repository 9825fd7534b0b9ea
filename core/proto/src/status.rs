//! Status and type values shared by nodes and the core.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the core knows about a node's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Registered, not yet running its pots.
    Connected,
    /// Installing or starting pots.
    Deploying,
    /// Up and heartbeating.
    Running,
    /// Left on purpose (`NodeDrop`) or stopped.
    Stopped,
    /// Reported a failure.
    Failed,
    /// Lost: missed heartbeats or dropped without `NodeDrop`.
    Unknown,
}

impl NodeStatus {
    /// Every status, in a stable order (for metrics).
    pub const ALL: [NodeStatus; 6] = [
        NodeStatus::Connected,
        NodeStatus::Deploying,
        NodeStatus::Running,
        NodeStatus::Stopped,
        NodeStatus::Failed,
        NodeStatus::Unknown,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Connected => "Connected",
            NodeStatus::Deploying => "Deploying",
            NodeStatus::Running => "Running",
            NodeStatus::Stopped => "Stopped",
            NodeStatus::Failed => "Failed",
            NodeStatus::Unknown => "Unknown",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<NodeStatus> {
        NodeStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether a node in this status is expected to heartbeat.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            NodeStatus::Connected | NodeStatus::Deploying | NodeStatus::Running
        )
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pot's state on its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PotStatus {
    /// Being installed.
    Installing,
    /// Running.
    Running,
    /// Installed, not running.
    Stopped,
    /// Install or start failed, or it crashed too often.
    Failed,
}

impl PotStatus {
    /// Every status.
    pub const ALL: [PotStatus; 4] = [
        PotStatus::Installing,
        PotStatus::Running,
        PotStatus::Stopped,
        PotStatus::Failed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PotStatus::Installing => "Installing",
            PotStatus::Running => "Running",
            PotStatus::Stopped => "Stopped",
            PotStatus::Failed => "Failed",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<PotStatus> {
        PotStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for PotStatus {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of node registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NodeType {
    /// A pot supervisor (agent in Full mode).
    Full,
    /// A lightweight node (agent in Extension mode).
    Agent,
}

impl NodeType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Full => "Full",
            NodeType::Agent => "Agent",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<NodeType> {
        match s {
            "Full" => Some(NodeType::Full),
            "Agent" => Some(NodeType::Agent),
            _ => None,
        }
    }
}
