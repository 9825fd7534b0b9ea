//! The queue of messages for one connected node.
//!
//! A node is sent a command now and then, but thousands of nodes sit idle
//! with an empty queue; an `async_channel` costs ~750 bytes each, this ~100.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use honeybee_proto::{CoreMessage, EventAck};

/// Messages queued for one node before further ones are refused.
pub const CAPACITY: usize = 16;

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<CoreMessage>,
    closed: bool,
    waker: Option<Waker>,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The connection is gone.
    Closed,
    /// The node is not reading; `CAPACITY` messages are waiting.
    Full,
}

/// The sending side; the registry holds it.
#[derive(Debug, Clone)]
pub struct Outbox(Arc<Mutex<State>>);

/// The receiving side; the connection task holds it.
#[derive(Debug)]
pub struct Inbox(Arc<Mutex<State>>);

/// A connected pair.
pub fn outbox() -> (Outbox, Inbox) {
    let state = Arc::new(Mutex::new(State::default()));
    (Outbox(state.clone()), Inbox(state))
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Outbox {
    /// Queues a message without waiting.
    pub fn push(&self, message: CoreMessage) -> Result<(), PushError> {
        let mut st = lock(&self.0);
        if st.closed {
            return Err(PushError::Closed);
        }
        if st.queue.len() >= CAPACITY {
            return Err(PushError::Full);
        }
        st.queue.push_back(message);
        if let Some(w) = st.waker.take() {
            w.wake();
        }
        Ok(())
    }

    /// Queues an `EventAck`, or raises the one already waiting: a node needs
    /// only the highest acknowledged `seq`, so acks never fill the queue.
    /// Says whether a new message was queued (false: merged).
    pub fn push_ack(&self, ack: EventAck) -> Result<bool, PushError> {
        let mut st = lock(&self.0);
        if st.closed {
            return Err(PushError::Closed);
        }
        for queued in st.queue.iter_mut() {
            if let CoreMessage::EventAck(waiting) = queued {
                waiting.seq = waiting.seq.max(ack.seq);
                return Ok(false);
            }
        }
        drop(st);
        self.push(CoreMessage::EventAck(ack)).map(|()| true)
    }

    /// Ends the connection: the inbox yields `None` once drained of nothing.
    pub fn close(&self) {
        let mut st = lock(&self.0);
        st.closed = true;
        st.queue.clear();
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

impl Inbox {
    /// The next message, or `None` once the outbox was closed.
    pub async fn recv(&self) -> Option<CoreMessage> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`Inbox::recv`]: registers `cx`'s waker when empty.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<CoreMessage>> {
        let mut st = lock(&self.0);
        if st.closed {
            return Poll::Ready(None);
        }
        match st.queue.pop_front() {
            Some(m) => Poll::Ready(Some(m)),
            None => {
                if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        lock(&self.0).closed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeybee_proto::{Command, NodeCommand};

    fn msg(i: u64) -> CoreMessage {
        CoreMessage::NodeCommand(NodeCommand {
            node_id: i,
            command: Command::Restart,
        })
    }

    #[test]
    fn bounded_ordered_and_closable() {
        let (tx, rx) = outbox();
        for i in 0..CAPACITY as u64 {
            tx.push(msg(i)).unwrap();
        }
        assert_eq!(tx.push(msg(99)), Err(PushError::Full));
        smol::block_on(async {
            assert_eq!(rx.recv().await, Some(msg(0)));
            assert_eq!(rx.recv().await, Some(msg(1)));
        });
        tx.close();
        assert_eq!(smol::block_on(rx.recv()), None);
        assert_eq!(tx.push(msg(1)), Err(PushError::Closed));
        drop(rx);
    }

    #[test]
    fn acks_merge_into_the_one_waiting() {
        let (tx, rx) = outbox();
        for seq in [3, 9, 5] {
            tx.push_ack(EventAck { node_id: 1, seq }).unwrap();
        }
        for i in 0..CAPACITY as u64 - 1 {
            tx.push(msg(i)).unwrap();
        }
        tx.push_ack(EventAck {
            node_id: 1,
            seq: 11,
        })
        .unwrap();
        let first = smol::block_on(rx.recv());
        assert_eq!(
            first,
            Some(CoreMessage::EventAck(EventAck {
                node_id: 1,
                seq: 11
            }))
        );
    }

    #[test]
    fn a_dropped_inbox_refuses_pushes() {
        let (tx, rx) = outbox();
        drop(rx);
        assert_eq!(tx.push(msg(1)), Err(PushError::Closed));
    }

    #[test]
    fn recv_wakes_on_push() {
        let (tx, rx) = outbox();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            tx.push(msg(7)).unwrap();
        });
        assert_eq!(smol::block_on(rx.recv()), Some(msg(7)));
        t.join().unwrap();
    }
}
