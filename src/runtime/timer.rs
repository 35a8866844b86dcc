//! The timer thread: sleeps until the earliest retry is due, then hands ready keys to workers.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::shared::{Shared, Tick};

/// The timer thread's body; `done` is told when it leaves.
pub fn run(shared: Arc<Shared>, ticks: Receiver<Tick>, done: Sender<()>) {
    loop {
        let (tokens, next) = {
            let mut state = shared.lock();
            if state.closed {
                break;
            }
            state.queue.wake_due(Instant::now());
            let tokens = state.claim_workers(shared.config.concurrency);
            (tokens, state.queue.next_retry_at())
        };
        shared.wake_workers(tokens);
        let tick = match next {
            Some(at) => ticks.recv_deadline(at),
            None => ticks.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match tick {
            Ok(Tick::Wake) | Err(RecvTimeoutError::Timeout) => continue,
            Ok(Tick::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = done.send(());
}
