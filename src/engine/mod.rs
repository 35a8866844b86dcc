//! The engine: everything the library decides, with no threads and no I/O. It holds the
//! coalescing queue, the share registry, worker accounting, asynchronous flushes, counters and
//! the spool's [`Journal`]; each method changes them and writes what must follow into
//! [`Effects`] (events, completions, worker tokens, wake-ups), which the runtime does once its
//! lock is released. Every change the spool must know of is journaled by the method making it.
//!
//! Files by job: `intake.rs` writes, share records, creates and removes; `settle.rs` dispatch
//! and settling one answer per verdict; `flushes.rs` flush marks and asynchronous flushes;
//! `journal.rs` the records for the spool; `ledger.rs` the ledger of shares (kept until the
//! service confirms a deletion); `replay_tests.rs` the property that replaying the
//! journal gives back the pending set.

mod acked;
mod flushes;
mod intake;
mod journal;
pub mod ledger;
#[cfg(test)]
mod replay_tests;
mod settle;

use std::sync::Arc;
use std::time::Instant;

use crate::error::Result;
use crate::events::{Event, Reason};
use crate::queue::{Dropped, Limits, Queue, QueueFull};
use crate::registry::{self, Registry};
use crate::retry::{Attempt, RetryPolicy};
use crate::spool::Recovery;

pub use journal::Journal;
pub use ledger::Ledger;
pub use settle::Next;

/// The state the runtime keeps behind its one mutex. See the module documentation.
pub struct Engine {
    queue: Queue,
    registry: Registry,
    /// Every share made or told of until the service confirmed its deletion (the registry
    /// holds the ones syncs go to).
    ledger: Ledger,
    /// Workers holding a sync token (sending, or about to look for a ready request).
    sync_workers: usize,
    /// Set by shutdown: no more work is accepted.
    closed: bool,
    /// Threads waiting for work to settle (flush, remove, shutdown): settles notify only when
    /// there are some.
    pub waiters: usize,
    /// Asynchronous flushes: (mark, deadline, operation id), completed by settles and the timer.
    flushes: Vec<(u64, Instant, u32)>,
    pub counters: Counters,
    journal: Journal,
    /// An empty buffer for the next decision's events (kept for its capacity: no allocation
    /// per decision under the lock).
    event_buffer: Vec<Event>,
    concurrency: usize,
    policy: RetryPolicy,
    /// The contents the service acknowledged, the bases of appends.
    acked: acked::Acked,
}

/// Counters for stats, besides the queue's.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
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
    /// Contents sent as appends of the acknowledged one (docs/append-protocol.md).
    pub appends: u64,
    /// Requests of appends the service refused (409), sent again whole at once.
    pub append_refusals: u64,
}

/// What a decision requires once the lock is released.
#[derive(Default)]
pub struct Effects {
    /// Events for the host (the runtime records them before it releases the lock, so a flush
    /// that returns finds them buffered, and wakes the notifier after).
    pub events: Vec<Event>,
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
    pub fn emit(&mut self, events: impl IntoIterator<Item = Event>) {
        self.events.extend(events);
    }
}

/// Why a write was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Shutdown has begun.
    Closed,
    /// The session has no share (it was removed meanwhile).
    Unshared,
    /// Pending bytes would pass `max_pending_bytes`.
    Full(QueueFull),
}

/// What the local part of a remove found.
pub struct Forgotten {
    /// The secret the delete goes with.
    pub secret: registry::Secret,
    /// The service was refusing the share.
    pub refused: bool,
    /// The share's id on the service, if a create or a share record gave one ("next").
    pub id: Option<Arc<str>>,
}

/// How one dispatched request ended on its worker.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The items (indexes into the dispatch) the request carried.
    pub sent: Vec<usize>,
    /// The request's answer, if one was made.
    pub answer: Option<Attempt>,
    /// Items not sent: why, as a drop reason and words without the secret.
    pub not_sent: Vec<(usize, Reason, String)>,
    /// Items sent with credentials redacted: the rules that matched and how many.
    pub redacted: Vec<(usize, Vec<Arc<str>>, usize)>,
    /// The contents as sent, kept as the bases of appends if the answer is a 2xx (only while
    /// the service advertises appends).
    pub texts: Vec<(usize, Arc<str>)>,
    /// Items sent as appends, and whether the service refused them (they then went whole).
    pub appended: usize,
    pub append_refused: bool,
}

/// What shutdown found left.
pub struct Left {
    /// Contents pending or in flight.
    pub contents: u64,
    /// Per key: (key, session, contents).
    pub keys: Vec<Dropped>,
    /// Shares refused at the time.
    pub refused: usize,
}

impl Engine {
    pub fn new(limits: Limits, policy: RetryPolicy) -> Engine {
        Engine {
            queue: Queue::new(limits),
            registry: Registry::default(),
            ledger: Ledger::default(),
            sync_workers: 0,
            closed: false,
            waiters: 0,
            flushes: Vec::new(),
            counters: Counters::default(),
            journal: Journal::default(),
            event_buffer: Vec::new(),
            concurrency: limits.concurrency,
            policy,
            acked: acked::Acked::default(),
        }
    }

    /// The engine of a run that speaks `protocol` to the service at `service` (what its ledger's
    /// new entries record).
    pub fn serving(mut self, service: &str, protocol: &str) -> Engine {
        self.ledger = Ledger::new(service, protocol);
        self
    }

    /// The ledger, for reads (`share_list`).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The queue, for reads (stats, waits); it changes only through the engine's methods.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The shares, for reads.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The buffer a decision's [`Effects`] collects events in.
    pub fn take_event_buffer(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.event_buffer)
    }

    /// Gives the buffer back, emptied, for the next decision.
    pub fn return_event_buffer(&mut self, mut events: Vec<Event>) {
        events.clear();
        self.event_buffer = events;
    }

    /// Bytes of acknowledged contents kept as the bases of appends.
    pub fn acked_bytes(&self) -> usize {
        self.acked.bytes()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn journal_mut(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// How many more workers to wake for the requests that could start: workers already
    /// holding a token but not sending pick them up themselves, and at most `concurrency` hold
    /// a token.
    fn claim_workers(&mut self) -> usize {
        let idle = self
            .sync_workers
            .saturating_sub(self.queue.requests_in_flight());
        let wanted = self.queue.startable().saturating_sub(idle);
        let room = self.concurrency.saturating_sub(self.sync_workers);
        let n = wanted.min(room);
        self.sync_workers += n;
        n
    }

    /// At `share_init` with a spool: takes what it held (the ledger; the shares of this run's
    /// service into the registry, their contents into the queue in write order) and turns the
    /// journal on. Returns how many contents did not fit in `max_pending_bytes` (they stay in
    /// the spool) and the worker tokens to hand out. The shares of another service stay in the
    /// ledger and the spool, untouched.
    pub fn recover(&mut self, recovery: Recovery, now: Instant) -> (u64, usize) {
        self.journal.start(recovery.next_seq);
        self.ledger.recover(recovery.ledger);
        for share in recovery.shares {
            if !self.ledger.belongs_here(&share) {
                continue;
            }
            let known = registry::Share {
                secret: share.secret,
                id: share.id,
            };
            self.registry.insert(&share.session, known);
        }
        let mut deferred = 0;
        for c in recovery.contents {
            if !self.registry.contains(&c.session) {
                continue; // a share of another service: it stays in the spool
            }
            if self
                .queue
                .offer(&c.key, &c.session, c.text, || now)
                .is_err()
            {
                deferred += 1; // stays in the spool for the next share_init
            }
        }
        (deferred, self.claim_workers())
    }

    /// The removals the ledger holds for this run's service that the service has not confirmed
    /// (asked for before a crash or a restart, or failed): (session, share) to delete again.
    pub fn pending_removals(&self) -> Vec<(Arc<str>, registry::Share)> {
        self.ledger
            .entries()
            .into_iter()
            .filter(|e| e.removing && self.ledger.belongs_here(&e.share))
            .map(|e| {
                let share = registry::Share {
                    secret: e.share.secret,
                    id: e.share.id,
                };
                (e.share.session, share)
            })
            .collect()
    }

    /// The secret of the session's share as the registry or the ledger knows it (for a remove
    /// whose host no longer has it).
    pub fn known_secret(&self, session: &str) -> Option<registry::Secret> {
        self.registry
            .get(session)
            .map(|s| s.secret.clone())
            .or_else(|| self.ledger.get(session).map(|e| e.share.secret.clone()))
    }

    /// The timer's turn: parked keys whose time has come go, asynchronous flushes past their
    /// deadline end. Returns when to look again.
    pub fn tick(&mut self, now: Instant, fx: &mut Effects) -> Option<Instant> {
        self.queue.wake_due(now);
        self.check_flushes(now, fx);
        fx.tokens = self.claim_workers();
        match (self.queue.next_parked_at(), self.next_flush_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Shutdown: no more work is accepted; everything pending or in flight is dropped from the
    /// queue (a spool keeps it: nothing is journaled as given up).
    pub fn close(&mut self, fx: &mut Effects) -> Left {
        self.closed = true;
        self.acked.clear();
        let refused = self.queue.refused_shares();
        let (contents, keys) = self.queue.drain();
        fx.notify_waiters = true;
        Left {
            contents,
            keys,
            refused,
        }
    }
}
