//! Where what the fleet listener hears goes: the registry (nodes moved,
//! changed, commands for them) and the bus (events other cores committed,
//! for this core's live stream and dashboard).

use std::sync::Arc;

use honeybee_proto::{CoreMessage, PotEvent};

use crate::bus::{Bus, Live};
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

    fn wants_events(&self) -> bool {
        self.bus.active()
    }

    fn events(&self, events: Vec<(PotEvent, i64)>) {
        if !self.bus.active() {
            return;
        }
        for (e, id) in events {
            self.bus.publish(Live::event(e, id));
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
