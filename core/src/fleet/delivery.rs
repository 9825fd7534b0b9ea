//! Where what the fleet listener hears goes: the registry (nodes moved,
//! changed, commands for them) and the bus (events other cores committed,
//! for this core's live stream and dashboard).

use std::sync::Arc;

use honeybee_proto::{CoreMessage, NodeMessage, PotEvent};

use crate::bus::{Bus, Live, Topic};
use crate::fleet::shared::Deliveries;
use crate::fleet::SharedNode;
use crate::node::registry::Registry;
use crate::store::NodeStore;

/// Hands notices to this core's parts.
pub struct Delivery {
    /// Nodes.
    pub registry: Arc<Registry>,
    /// Live subscribers.
    pub bus: Arc<Bus>,
    /// For a full reload after notices may have been missed.
    pub store: Arc<dyn NodeStore>,
}

impl Deliveries for Delivery {
    fn moved_away(&self, node_id: u64) {
        self.registry.moved_away(node_id);
    }

    fn node_changed(&self, node_id: u64, node: Option<SharedNode>) {
        self.registry.merge_shared(node_id, node);
    }

    fn command(&self, node_id: u64, message: CoreMessage) {
        if let Err(e) = self.registry.send(node_id, message) {
            log::warn!(
                "fleet: a command for node {node_id} from another core not delivered: {e:?}"
            );
        }
    }

    fn events(&self, events: Vec<PotEvent>) {
        if !self.bus.active() {
            return;
        }
        for e in events {
            let node_id = e.node_id;
            self.bus
                .publish(Live::new(Topic::Events, node_id, NodeMessage::PotEvent(e)));
        }
    }

    fn resync(&self) {
        match self.store.load_nodes() {
            Ok(nodes) => {
                for node in nodes {
                    let id = node.node.node_id;
                    self.registry.merge_shared(
                        id,
                        Some(SharedNode {
                            node,
                            locked_until_ms: None,
                        }),
                    );
                }
            }
            Err(e) => log::warn!("fleet: reloading nodes: {e}"),
        }
    }
}
