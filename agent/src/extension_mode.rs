//! Extension mode: the tripwires of `honeybee-extension` feeding the spool
//! and the uplink that both modes share.

use std::rc::Rc;

use honeybee_extension::tripwire::{Extension, Sink};
use honeybee_proto::time::now_rfc3339;
use honeybee_proto::{NodeEventKind, PotEvent};
use serde_json::{Map, Value};

use crate::shared::Shared;

/// The pot id (and type) Extension-mode events carry.
pub const POT_ID: &str = "extension";

/// Tripwire events into the spool; notices as NodeEvents.
pub struct SpoolSink {
    /// The agent's shared state.
    pub shared: Rc<Shared>,
}

impl Sink for SpoolSink {
    fn event(&self, event_type: &'static str, data: Map<String, Value>) {
        let event = PotEvent {
            node_id: self.shared.node_id,
            pot_id: POT_ID.into(),
            pot_type: POT_ID.into(),
            event_type: event_type.into(),
            timestamp: now_rfc3339(),
            seq: None,
            data,
        };
        if let Err(e) = self
            .shared
            .spool
            .borrow_mut()
            .push_all(self.shared.node_id, vec![event])
        {
            log::error!("spool: writing an event: {e}");
        }
        self.shared.wake();
    }

    fn notice(&self, alarm: bool, message: String) {
        log::info!("{message}");
        let kind = if alarm {
            NodeEventKind::Alarm
        } else {
            NodeEventKind::Started
        };
        self.shared.node_event(kind, Some(message), None);
    }
}

/// Binds the configured ports (call before dropping privileges).
pub fn bind(settings: honeybee_extension::config::Settings, shared: &Rc<Shared>) -> Rc<Extension> {
    let sink = Rc::new(SpoolSink {
        shared: shared.clone(),
    });
    let ext = Extension::bind(settings, sink);
    let report = ext.report();
    log::info!("extension: {report}");
    *shared.started_description.borrow_mut() = Some(report);
    ext
}
