//! Fan-out of live node messages to subscribers (the stream on port 9003).
//!
//! Publishing never waits: each subscriber has a bounded queue, and when it
//! is full the oldest message is dropped and counted, so a slow subscriber
//! can neither slow the nodes nor the other subscribers. The subscriber
//! learns how many it missed (`lagged N`).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use honeybee_proto::{
    encode, Envelope, EventFilter, NodeMessage, PotEvent, StreamMessage, PROTOCOL_VERSION,
};

/// Messages queued per subscriber before the oldest are dropped.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// What a live message is about, for topics and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// `PotEvent`s.
    Events,
    /// `NodeStatusUpdate`, `PotStatusUpdate`, `NodeEvent`.
    Status,
    /// Nodes registering, leaving, lost, deleted (as `NodeStatusUpdate`).
    Nodes,
}

impl Topic {
    /// Parses `events`, `status` or `nodes`.
    pub fn parse(s: &str) -> Option<Topic> {
        match s {
            "events" => Some(Topic::Events),
            "status" => Some(Topic::Status),
            "nodes" => Some(Topic::Nodes),
            _ => None,
        }
    }
}

/// One published message: its encoded line and what filters look at.
#[derive(Debug)]
pub struct Live {
    /// The topic.
    pub topic: Topic,
    /// The node it came from.
    pub node_id: u64,
    /// The pot, for events and pot updates.
    pub pot_id: Option<String>,
    /// The event type, for events.
    pub event_type: Option<String>,
    /// The NDJSON line (`\n` included) as subscribers receive it.
    pub line: Arc<str>,
    /// A stored event's id: its place in commit order, which a subscriber
    /// resumes after (`Subscribe.cursor`).
    pub cursor: Option<i64>,
}

impl Live {
    /// Wraps a node message (with its `node_id` set) for publishing.
    pub fn new(topic: Topic, node_id: u64, message: NodeMessage) -> Live {
        let (pot_id, event_type) = match &message {
            NodeMessage::PotEvent(e) => (Some(e.pot_id.clone()), Some(e.event_type.clone())),
            NodeMessage::PotStatusUpdate(p) => (Some(p.pot_id.clone()), None),
            _ => (None, None),
        };
        let bytes = encode(&Envelope::new(StreamMessage::Node(message)));
        Live {
            topic,
            node_id,
            pot_id,
            event_type,
            line: Arc::from(String::from_utf8_lossy(&bytes).as_ref()),
            cursor: None,
        }
    }

    /// A stored event with its id, which the line carries as the envelope's
    /// `"cursor"` (a string: JavaScript numbers stop being exact at 2^53).
    pub fn event(event: PotEvent, id: i64) -> Live {
        let (node_id, pot_id, event_type) = (
            event.node_id,
            event.pot_id.clone(),
            event.event_type.clone(),
        );
        let envelope = CursorEnvelope {
            version: PROTOCOL_VERSION,
            cursor: id.to_string(),
            message: StreamMessage::Node(NodeMessage::PotEvent(event)),
        };
        let mut line = serde_json::to_string(&envelope).unwrap_or_default();
        line.push('\n');
        Live {
            topic: Topic::Events,
            node_id,
            pot_id: Some(pot_id),
            event_type: Some(event_type),
            line: Arc::from(line),
            cursor: Some(id),
        }
    }
}

/// The envelope of docs/protocol.md with the stream's `cursor` beside `message`.
#[derive(serde::Serialize)]
struct CursorEnvelope {
    version: u64,
    cursor: String,
    message: StreamMessage,
}

/// What a subscriber wants.
#[derive(Clone, Debug, Default)]
pub struct Interest {
    /// Topics; empty means all.
    pub topics: Vec<Topic>,
    /// Narrows events (and pot updates by `pot_id`).
    pub filter: EventFilter,
}

impl Interest {
    fn wants(&self, live: &Live) -> bool {
        if !self.topics.is_empty() && !self.topics.contains(&live.topic) {
            return false;
        }
        let f = &self.filter;
        if f.node_id.is_some_and(|id| id != live.node_id) {
            return false;
        }
        if let (Some(want), Some(got)) = (&f.pot_id, &live.pot_id) {
            if want != got {
                return false;
            }
        }
        if live.topic == Topic::Events {
            if let (Some(prefix), Some(t)) = (&f.event_type_prefix, &live.event_type) {
                return t.starts_with(prefix.as_str());
            }
        }
        true
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A message line, and its cursor if it is a stored event.
    Line(Arc<str>, Option<i64>),
    /// This many messages were dropped since the last delivery.
    Lagged(u64),
}

#[derive(Debug, Default)]
struct Queue {
    lines: VecDeque<(Arc<str>, Option<i64>)>,
    dropped: u64,
    closed: bool,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Subscriber {
    interest: Mutex<Interest>,
    queue: Mutex<Queue>,
}

/// The fan-out point; shared by everything that publishes.
#[derive(Debug, Default)]
pub struct Bus {
    subscribers: Mutex<Vec<Weak<Subscriber>>>,
    /// Messages dropped from slow subscribers' queues, all subscribers.
    pub dropped: AtomicU64,
}

/// A subscriber's end; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    inner: Arc<Subscriber>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Bus {
    /// A bus with no subscribers.
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Subscribes with `interest`.
    pub fn subscribe(&self, interest: Interest) -> Subscription {
        let inner = Arc::new(Subscriber {
            interest: Mutex::new(interest),
            queue: Mutex::new(Queue::default()),
        });
        let mut subs = lock(&self.subscribers);
        subs.retain(|w| w.strong_count() > 0);
        subs.push(Arc::downgrade(&inner));
        Subscription { inner }
    }

    /// Whether anyone listens (publishers skip encoding when not).
    pub fn active(&self) -> bool {
        !lock(&self.subscribers).is_empty()
    }

    /// Subscribers now.
    pub fn subscribers(&self) -> usize {
        lock(&self.subscribers)
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Hands `live` to every interested subscriber; never waits.
    pub fn publish(&self, live: Live) {
        let targets: Vec<Arc<Subscriber>> = {
            let mut subs = lock(&self.subscribers);
            subs.retain(|w| w.strong_count() > 0);
            subs.iter().filter_map(Weak::upgrade).collect()
        };
        for sub in targets {
            if !lock(&sub.interest).wants(&live) {
                continue;
            }
            let mut q = lock(&sub.queue);
            if q.closed {
                continue;
            }
            if q.lines.len() >= SUBSCRIBER_QUEUE {
                q.lines.pop_front();
                q.dropped += 1;
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.lines.push_back((live.line.clone(), live.cursor));
            if let Some(w) = q.waker.take() {
                w.wake();
            }
        }
    }
}

impl Subscription {
    /// Replaces what this subscriber wants.
    pub fn set_interest(&self, interest: Interest) {
        *lock(&self.inner.interest) = interest;
    }

    /// The next delivery; a `Lagged` notice comes before the first message
    /// after a drop. `None` once closed.
    pub async fn recv(&self) -> Option<Delivery> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`Subscription::recv`].
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        let mut q = lock(&self.inner.queue);
        if q.dropped > 0 {
            let n = std::mem::take(&mut q.dropped);
            return Poll::Ready(Some(Delivery::Lagged(n)));
        }
        if let Some((line, cursor)) = q.lines.pop_front() {
            return Poll::Ready(Some(Delivery::Line(line, cursor)));
        }
        if q.closed {
            return Poll::Ready(None);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Stops deliveries; `recv` then yields `None`.
    pub fn close(&self) {
        let mut q = lock(&self.inner.queue);
        q.closed = true;
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeybee_proto::{NodeStatus, NodeStatusUpdate, PotEvent};

    fn event(node: u64, pot: &str, ty: &str) -> Live {
        Live::new(
            Topic::Events,
            node,
            NodeMessage::PotEvent(PotEvent {
                node_id: node,
                pot_id: pot.into(),
                pot_type: "t".into(),
                event_type: ty.into(),
                timestamp: "2026-01-01T00:00:00Z".into(),
                seq: None,
                data: Default::default(),
            }),
        )
    }

    #[test]
    fn filters_and_topics() {
        let bus = Bus::new();
        let sub = bus.subscribe(Interest {
            topics: vec![Topic::Events],
            filter: EventFilter {
                node_id: Some(1),
                pot_id: None,
                event_type_prefix: Some("cowrie.login".into()),
            },
        });
        bus.publish(event(1, "a", "cowrie.login.failed"));
        bus.publish(event(2, "a", "cowrie.login.failed"));
        bus.publish(event(1, "a", "cowrie.command.input"));
        bus.publish(Live::new(
            Topic::Status,
            1,
            NodeMessage::NodeStatusUpdate(NodeStatusUpdate {
                node_id: 1,
                status: NodeStatus::Running,
            }),
        ));
        let got = smol::block_on(sub.recv()).unwrap();
        match got {
            Delivery::Line(l, _) => assert!(l.contains("cowrie.login.failed") && l.ends_with('\n')),
            other => panic!("{other:?}"),
        }
        sub.close();
        assert_eq!(smol::block_on(sub.recv()), None);
    }

    #[test]
    fn a_slow_subscriber_loses_the_oldest_and_is_told() {
        let bus = Bus::new();
        let slow = bus.subscribe(Interest::default());
        for i in 0..SUBSCRIBER_QUEUE + 10 {
            bus.publish(event(1, "a", &format!("e.{i}")));
        }
        assert_eq!(smol::block_on(slow.recv()), Some(Delivery::Lagged(10)));
        match smol::block_on(slow.recv()) {
            Some(Delivery::Line(l, _)) => assert!(l.contains("\"e.10\""), "{l}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(bus.dropped.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn dropped_subscriptions_are_forgotten() {
        let bus = Bus::new();
        let sub = bus.subscribe(Interest::default());
        assert_eq!(bus.subscribers(), 1);
        drop(sub);
        bus.publish(event(1, "a", "x"));
        assert_eq!(bus.subscribers(), 0);
    }
}
