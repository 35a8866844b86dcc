//! The timer thread: sleeps until the earliest parked key may go (a retry, a hot key's
//! interval, a refused share's probe) or an asynchronous flush's deadline, then lets the
//! engine hand the ready keys to workers and end the flushes out of time.

use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::instance::Instance;
use super::messages::Tick;

/// The timer thread's body; `done` is told when it leaves.
pub fn run(instance: Arc<Instance>, ticks: Receiver<Tick>, done: Sender<()>) {
    loop {
        let next = instance.decide(|engine, fx| {
            if engine.is_closed() {
                return Err(());
            }
            Ok(engine.tick(Instant::now(), fx))
        });
        let Ok(next) = next else {
            break;
        };
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
