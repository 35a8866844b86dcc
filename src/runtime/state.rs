//! The state behind a runtime's one mutex, and the effects a locked section decides.
//!
//! Decide under the lock, act after it: a locked section changes the state and writes what must
//! happen because of it into [`Effects`]; [`Shared::apply`](super::Shared::apply) does it once
//! the lock is released. Nothing under the lock calls the host, sends on a channel or does I/O.
//!
//! Lock order (outer first; a thread takes locks only in this order):
//! 1. `LIFECYCLE` (runtime/mod.rs: init and shutdown),
//! 2. `CURRENT` (read to find the running runtime; written by init and shutdown only),
//! 3. the state mutex ([`Shared::lock`](super::Shared::lock)),
//! 4. the event hub's buffer (a leaf: [`Hub::record`](crate::events::Hub::record) only).
//!
//! The completion slots' lock (runtime/completions.rs) is never held together with the state
//! lock, nor with the hub's. The spool's progress lock and its `LINGERING` list of stopping
//! spool threads (runtime/spooler.rs) are leaves, never held together with the state lock.

use std::time::Instant;

use crate::error::Result;
use crate::events::{Event, hub};
use crate::queue::Queue;
use crate::registry::Registry;

/// The state behind the runtime's one mutex.
pub struct State {
    pub queue: Queue,
    pub registry: Registry,
    /// Workers holding a sync token (sending, or about to look for a ready request).
    pub sync_workers: usize,
    /// Set by shutdown: no more work is accepted.
    pub closed: bool,
    /// Threads waiting on `changed` (flush, remove, shutdown): settles notify only when > 0.
    pub waiters: usize,
    /// Asynchronous flushes: (mark, deadline, operation id), completed by settles and the timer.
    pub flushes: Vec<(u64, Instant, u32)>,
    /// Sync requests made (each carries one content under v1, many under "next").
    pub requests: u64,
    /// Contents dropped for being over `max_content_bytes` (before or after redaction).
    pub too_large: u64,
    /// Contents dropped because the secret could not be removed from them.
    pub unsafe_contents: u64,
    /// Requests abandoned because the library panicked while sending (bugs).
    pub panics: u64,
    /// Credentials replaced by markers in contents sent (again at each upload of a content).
    pub redacted: u64,
    /// spool: records for the spool thread (pushed under this lock, written after it)
    pub spool: super::spooler::Buffer,
}

impl State {
    pub fn new(queue: Queue) -> State {
        State {
            queue,
            registry: Registry::default(),
            sync_workers: 0,
            closed: false,
            waiters: 0,
            flushes: Vec::new(),
            requests: 0,
            too_large: 0,
            unsafe_contents: 0,
            panics: 0,
            redacted: 0,
            spool: Default::default(), // spool:
        }
    }

    /// How many more workers to wake for the requests that could start: workers already
    /// holding a token but not sending pick them up themselves, and at most `concurrency` hold
    /// a token.
    pub fn claim_workers(&mut self, concurrency: usize) -> usize {
        let idle = self
            .sync_workers
            .saturating_sub(self.queue.requests_in_flight());
        let wanted = self.queue.startable().saturating_sub(idle);
        let room = concurrency.saturating_sub(self.sync_workers);
        let n = wanted.min(room);
        self.sync_workers += n;
        n
    }
}

/// What a locked section decided to do once the lock is released.
#[derive(Default)]
pub struct Effects {
    /// Events were recorded and the notifier must be woken.
    pub wake_events: bool,
    /// Asynchronous operations to complete (flushes), with their results.
    pub completions: Vec<(u32, Result<String>)>,
    /// Sync tokens to hand to workers.
    pub tokens: usize,
    /// The timer must look at the earliest parked time again.
    pub wake_timer: bool,
    /// Threads waiting for work to settle must look again.
    pub notify_waiters: bool,
}

impl Effects {
    /// Records events now, under the lock (so a flush that returns finds them buffered); the
    /// wake-up is an effect.
    pub fn emit(&mut self, events: impl IntoIterator<Item = Event>) {
        self.wake_events |= hub().record(events);
    }
}
