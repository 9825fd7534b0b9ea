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
        spool_event(&self.shared, POT_ID, POT_ID, event_type, data);
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

    fn ports(&self, report: Map<String, Value>) {
        *self.shared.extension_ports.borrow_mut() = Some(report);
        report_ports(&self.shared, None);
    }
}

/// The `extension` pot's status: Running, with the ports taken and skipped
/// (and why) as its details; `message` says what else happened (a pot
/// command it cannot follow). Sent on every connection and whenever the
/// ports change.
pub fn report_ports(shared: &Shared, message: Option<String>) {
    let details = shared.extension_ports.borrow().clone().map(Value::Object);
    crate::answers::pot_status(
        shared,
        POT_ID,
        POT_ID,
        honeybee_proto::PotStatus::Running,
        message,
        details,
    );
}

/// A native pot's events, under its own pot id, into the spool.
pub struct PotSink {
    /// The agent's shared state.
    pub shared: Rc<Shared>,
    /// The installed pot's id.
    pub pot_id: String,
    /// Its type (`native-telnet`, …).
    pub pot_type: String,
}

impl Sink for PotSink {
    fn event(&self, event_type: &'static str, data: Map<String, Value>) {
        spool_event(&self.shared, &self.pot_id, &self.pot_type, event_type, data);
    }

    fn notice(&self, _alarm: bool, message: String) {
        log::info!("pot {}: {message}", self.pot_id);
    }
}

/// One event into the spool, counted for its pot.
fn spool_event(
    shared: &Shared,
    pot_id: &str,
    pot_type: &str,
    event_type: &'static str,
    data: Map<String, Value>,
) {
    let event = PotEvent {
        node_id: shared.node_id,
        pot_id: pot_id.into(),
        pot_type: pot_type.into(),
        event_type: event_type.into(),
        timestamp: now_rfc3339(),
        seq: None,
        data,
    };
    shared.count_pot_events(std::slice::from_ref(&event));
    if let Err(e) = shared
        .spool
        .borrow_mut()
        .push_all(shared.node_id, vec![event])
    {
        log::error!("spool: writing an event: {e}");
    }
    shared.wake();
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
    *shared.extension_ports.borrow_mut() = Some(ext.ports_report());
    ext
}
