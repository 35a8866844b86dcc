//! The slots through which asynchronous operations (create, remove, flush) hand their results
//! to the host: each registered operation is completed exactly once, by its own finish or by
//! shutdown's abandon, and its result waits for `share_op_take`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crossbeam_channel::Sender;

use super::messages::Notice;
use crate::error::{Error, ErrorKind, Result};
use crate::locks::{lock, wait_until};

/// Called once with an asynchronous operation's id and outcome (Ok, or what went wrong), on
/// the notifier thread.
pub type Completion = Box<dyn FnOnce(u32, std::result::Result<(), ErrorKind>) + Send>;

enum Slot {
    /// Running for the runtime of this generation; the completion is still to be called.
    Pending {
        generation: u64,
        completion: Completion,
    },
    /// Finished: what `share_op_take` hands over.
    Done(Result<String>),
}

/// The slots of every asynchronous operation of the process (they outlive a runtime: a result
/// waits for `share_op_take` after shutdown). Its lock is never held with the runtime's state
/// lock (see the lock order in ARCHITECTURE.md).
pub struct Slots {
    slots: Mutex<Option<HashMap<u32, Slot>>>,
    /// Notified when an operation's slot leaves Pending (shutdown waits on it).
    settled: Condvar,
    next_id: AtomicU32,
    /// The newest runtime generation whose shutdown has abandoned its operations: no operation
    /// of it or an older one may start after that. Read and written under the `slots` lock
    /// only, so that an operation either registers before shutdown's [`Slots::abandon`] (which
    /// then completes it, if nothing else has) or fails to start at once.
    closed_generation: AtomicU64,
    /// Completions marked done whose notice is still being sent (after the lock): shutdown
    /// waits for none before it stops the notifier, so no completion arrives after its Stop.
    in_transit: AtomicUsize,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::new()
    }
}

impl Slots {
    pub const fn new() -> Slots {
        Slots {
            slots: Mutex::new(None),
            settled: Condvar::new(),
            next_id: AtomicU32::new(1),
            closed_generation: AtomicU64::new(0),
            in_transit: AtomicUsize::new(0),
        }
    }

    /// Opens a slot for an operation of runtime `generation`; returns its id. Fails (and the
    /// completion is never called) once shutdown has abandoned that runtime's operations.
    pub fn register(&self, generation: u64, completion: Completion) -> Result<u32> {
        let mut slots = lock(&self.slots);
        if generation <= self.closed_generation.load(Ordering::Relaxed) {
            return Err(Error::not_initialized());
        }
        let slots = slots.get_or_insert_with(HashMap::new);
        let id = loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !slots.contains_key(&id) {
                break id;
            }
        };
        slots.insert(
            id,
            Slot::Pending {
                generation,
                completion,
            },
        );
        Ok(id)
    }

    /// Records an operation's result and has its completion called on the notifier (unless
    /// shutdown already completed it). Call with no lock held.
    pub fn finish(&self, notices: &Sender<Notice>, id: u32, result: Result<String>) {
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.kind);
        let completion = {
            let mut slots = lock(&self.slots);
            let slots = slots.get_or_insert_with(HashMap::new);
            if !matches!(slots.get(&id), Some(Slot::Pending { .. })) {
                return; // shutdown completed it already
            }
            let Some(Slot::Pending { completion, .. }) = slots.insert(id, Slot::Done(result))
            else {
                return;
            };
            self.in_transit.fetch_add(1, Ordering::SeqCst);
            self.settled.notify_all();
            completion
        };
        let _ = notices.send(Notice::Call(Box::new(move || completion(id, outcome))));
        self.in_transit.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits until no operation of runtime `generation` is running, or `deadline`; true if none is.
    pub fn wait_for_pending(&self, generation: u64, deadline: Instant) -> bool {
        let (slots, none) = wait_until(&self.settled, lock(&self.slots), deadline, |slots| {
            !slots.as_ref().is_some_and(|slots| {
                slots
                    .values()
                    .any(|s| matches!(s, Slot::Pending { generation: g, .. } if *g == generation))
            })
        });
        drop(slots);
        none
    }

    /// Completes every operation still running for runtime `generation` with SHARE_ERR_TIMEOUT
    /// (shutdown's deadline); returns the completions to call. Afterwards no operation of it can
    /// register, and once [`Slots::settle_in_transit`] returns none is on its way to the notifier.
    pub fn abandon(&self, generation: u64) -> Vec<Box<dyn FnOnce() + Send>> {
        let mut slots = lock(&self.slots);
        self.closed_generation
            .fetch_max(generation, Ordering::Relaxed);
        let slots = slots.get_or_insert_with(HashMap::new);
        let ids: Vec<u32> = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Pending { generation: g, .. } if *g == generation))
            .map(|(id, _)| *id)
            .collect();
        let mut calls: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        for id in ids {
            if let Some(Slot::Pending { completion, .. }) = slots.remove(&id) {
                slots.insert(id, Slot::Done(Err(stopped())));
                calls.push(Box::new(move || completion(id, Err(ErrorKind::Timeout))));
            }
        }
        calls
    }

    /// Waits (a few microseconds: they are channel sends) until no completion marked done is
    /// still being sent.
    pub fn settle_in_transit(&self) {
        while self.in_transit.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
    }

    /// Whether an operation is still running (false once its result waits for take).
    pub fn pending(&self, id: u32) -> Result<bool> {
        let slots = lock(&self.slots);
        match slots.as_ref().and_then(|slots| slots.get(&id)) {
            Some(Slot::Pending { .. }) => Ok(true),
            Some(Slot::Done(_)) => Ok(false),
            None => Err(Error::invalid(format!(
                "no operation {id} (unknown, or already taken)"
            ))),
        }
    }

    /// Takes a finished operation's result (once).
    pub fn take(&self, id: u32) -> Result<String> {
        let mut slots = lock(&self.slots);
        let slots = slots.get_or_insert_with(HashMap::new);
        match slots.remove(&id) {
            Some(Slot::Done(result)) => result,
            Some(pending) => {
                slots.insert(id, pending);
                Err(Error::invalid(format!(
                    "operation {id} has not completed yet"
                )))
            }
            None => Err(Error::invalid(format!(
                "no operation {id} to take (unknown, or already taken)"
            ))),
        }
    }
}

/// The result of an operation that shutdown overtook.
pub fn stopped() -> Error {
    Error::new(
        ErrorKind::Timeout,
        "share_shutdown stopped the library before the operation finished",
    )
}
