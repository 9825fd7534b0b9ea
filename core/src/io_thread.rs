//! The threads that run an executor: `node-io` (node, stream and module
//! connections until they are handed to the poller) and `api-gate` (the
//! API port's gate, kept apart so that floods elsewhere never delay it).
//!
//! One thread runs the executor and drives the async-io reactor itself, so
//! a message that arrives wakes exactly the thread that handles it; there is
//! no hand-off between a reactor thread and executor threads (measured: a
//! second executor thread doubled the CPU cost of a heartbeat).

use std::sync::Arc;

use smol::Executor;

/// Runs `executor` on the calling thread until `stop` is closed.
pub fn run(executor: Arc<Executor<'static>>, stop: async_channel::Receiver<()>) {
    async_io::block_on(executor.run(async {
        let _ = stop.recv().await;
    }))
}
