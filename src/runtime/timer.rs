//! The timer thread: sleeps until the earliest parked key may go (a retry, or a hot key's
//! interval), then hands ready keys to workers;
//! it also ends asynchronous flushes whose deadline has come.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::flush;
use super::messages::Tick;
use super::shared::Shared;
use super::state::Effects;

/// The timer thread's body; `done` is told when it leaves.
pub fn run(shared: Arc<Shared>, ticks: Receiver<Tick>, done: Sender<()>) {
    loop {
        let mut fx = Effects::default();
        let next = {
            let mut state = shared.lock();
            if state.closed {
                break;
            }
            let now = Instant::now();
            state.queue.wake_due(now);
            if !state.flushes.is_empty() {
                flush::check_flushes(&mut state, now, &mut fx);
            }
            fx.tokens = state.claim_workers(shared.config.concurrency);
            match (state.queue.next_parked_at(), flush::next_deadline(&state)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };
        shared.apply(fx);
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
