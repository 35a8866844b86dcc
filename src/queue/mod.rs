//! The coalescing queue: the newest unsent content of each key, dispatched in the order of each
//! key's first unsent write, at most one request per key and `concurrency` in all, two requests
//! of one key at least `min_interval` apart, with keys parked until their retry or interval time.
//! With batching ([`Limits::batch`], the "next" protocol) a request carries all the ready keys of
//! one share, a share has at most one request under way, and `concurrency` counts shares; v1 is
//! the batch-of-one case of the same machinery.
//! It also keeps each share's health: a share the service refuses is held back and probed
//! (see [`Failure`] for how outage and refusal are told apart).
//! Pure state: the runtime wraps it in a mutex and supplies the clock, so unit and property tests
//! drive it directly.
//!
//! Files by job: this one the types, intake (`offer`) and dispatch; `answers.rs` settling an
//! answer and dropping work; `pacing.rs` parking (retries, `min_interval`); `health.rs` share
//! health (500s in a row, refusal, probes); `marks.rs` flush marks and given-up positions;
//! `ready.rs` the ready set; `check.rs` the recount tests run after every step.

mod answers;
#[cfg(test)]
mod check;
mod health;
mod marks;
mod pacing;
mod ready;
mod service;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::HashMap;
use foldhash::HashMapExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ready::Ready;
use service::Service;
pub use service::{OUTAGE_AFTER, PROBE_SPACING_MAX, ServiceChange};

/// The queue's bounds, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub concurrency: usize,
    /// Answers of 500 in a row for one share before it counts as refused.
    pub max_retries: u32,
    pub max_pending_bytes: usize,
    /// Least time between the starts of two requests of one key: a key rewritten faster waits,
    /// and its writes meanwhile coalesce. Zero sends again as soon as the key is free.
    pub min_interval: Duration,
    /// Least time between two requests of a refused share (`retry_max_ms`).
    pub probe_interval: Duration,
    /// Batching: None sends one key per request.
    pub batch: Option<Batch>,
}

/// How a share's ready keys are batched into one request.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Most content bytes in one request (a bigger single content still goes, alone).
    pub max_bytes: usize,
    /// Where a key goes in its request (lower first; ties by position).
    pub order: fn(&str) -> u8,
}

/// Lifetime totals. Every accepted content ends in exactly one of sent, coalesced or dropped,
/// or is still pending or in flight: `queued = sent + coalesced + dropped + pending + in_flight`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Contents accepted by `offer` (and those `give_up_unsent` dropped at once).
    pub queued: u64,
    /// Contents replaced by a newer one of the same key before they were delivered.
    pub coalesced: u64,
    /// Contents the service accepted (2xx).
    pub sent: u64,
    /// Contents given up: refused by the service, share gone, too large, purged, shut down.
    pub dropped: u64,
    /// Failed attempts that were scheduled for another try.
    pub retried: u64,
    /// Failed attempts, retried or not.
    pub failed: u64,
    /// Times a share became refused.
    pub refusals: u64,
}

/// One request to make: the items of one share (exactly one without batching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub session: Arc<str>,
    pub items: Vec<Item>,
}

/// One key of a request: send `content` as its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub key: Arc<str>,
    pub content: Arc<str>,
    /// The number of the newest write this content carries (older ones are covered too).
    pub seq: u64,
}

/// A key dropped at shutdown: (key, session, contents).
pub type Dropped = (Arc<str>, Arc<str>, u64);

/// How `offer` took a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The key had nothing waiting; it now has.
    Queued,
    /// Queued, but parked: the key's last request started less than `min_interval` ago, or its
    /// share is refused (the clock's owner must wake at `next_parked_at`).
    Parked,
    /// The key already had content waiting; the new content replaced it.
    Coalesced,
}

/// `offer` refused a content: pending bytes would pass the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull {
    pub pending_bytes: usize,
    pub limit: usize,
}

/// What kind of failure a request met; the runtime classifies the answer, the queue keeps the
/// consequences per key and per share.
///
/// Outage or refusal: opencode's hosted services answer a wrong or stale secret and a deleted
/// share with 500, exactly as a fault of their own. So only a 500 counts toward refusal, and only
/// for its share: after `max_retries` answers of 500 in a row for one share (no success of that
/// share in between), each to a request started after the previous counted one came back (so a
/// burst of concurrent 500s counts once: refusal is counted by time), the share is refused. Everything else that is retried (network errors,
/// unreadable answers, 408, 429, 502-504) is an outage and never gives anything up. A success
/// of another share during the streak is the evidence that the service is up and refusing this
/// share: such a refusal holds until a probe succeeds (one request per `probe_interval`). A
/// refusal without that evidence may be a fault of the whole service, so the first success of
/// any share probes it at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No usable answer (network, unreadable answer, 408, 502-504): retried; if no request
    /// succeeded while it was under way, the service looked down, and the next success anywhere
    /// ends the key's wait.
    Outage,
    /// The service asked to slow down (429, or a Retry-After): retried after its own wait only.
    Busy,
    /// 500: retried, and one more answer toward the share counting as refused.
    Refusal,
    /// Not retryable: the content is dropped (and counted as given up).
    Final,
}

/// How a failed attempt was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The key will be tried again after `delay` (retry number `retry`).
    Retry { retry: u32, delay: Duration },
    /// The key's share is refused: the content waits with the share's others, not waited for
    /// by flushes. `newly` is true for the failure that made the share refused.
    Held { newly: bool },
    /// The failed content was dropped: not retryable, or its session was purged.
    Dropped { given_up: bool },
}

/// What a success changed besides the key itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfterSuccess {
    /// Something was parked or a probe scheduled: the clock's owner must look at
    /// `next_parked_at` again.
    pub wake_timer: bool,
    /// The key's share was refused and is live again.
    pub resumed: bool,
}

/// The request under way for a key.
#[derive(Debug)]
struct Flight {
    /// Position the key had when it was dispatched: the oldest write this request delivers.
    mark: u64,
    /// The newest write this request delivers.
    seq: u64,
    text: Arc<str>,
    /// Successes landed when it started: none since means the service looked down.
    epoch: u64,
    /// Answers of 500 counted toward refusal (any share) when it started: its own 500 counts
    /// only if it started after its share's previous counted 500 came back.
    refusal_epoch: u64,
    /// The one request of a refused share: flushes do not wait for it.
    probe: bool,
    /// The service's probe: started while the service was down.
    service_probe: bool,
}

/// Why a key's request under way will not be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    /// The host removed the share.
    Removed,
    /// The share is gone on the service's side: its contents are given up.
    GivenUp,
}

#[derive(Debug)]
struct Entry {
    key: Arc<str>,
    session: Arc<str>,
    /// Newest content not yet handed to a request.
    pending: Option<Arc<str>>,
    /// With pending content: the sequence number of the first write not yet sent. It orders
    /// keys for dispatch and marks what a flush waits for.
    position: u64,
    /// With pending content: the number of its newest write.
    seq: u64,
    in_flight: Option<Flight>,
    /// Set while the key waits for a retry or for its interval since its last request.
    parked_until: Option<Instant>,
    /// Failed attempts since the key's last success (the backoff's exponent).
    attempts: u32,
    /// The session was purged while this key's request was under way: do not retry it.
    cancelled: Option<Cancel>,
    /// Its pending content waits in its refused share's `held` set.
    held: bool,
    /// Made ready as its refused share's probe.
    probe: bool,
}

/// One share's standing with the service, kept while it has answers of 500 in a row.
#[derive(Debug, Default)]
struct Health {
    /// Answers of 500 in a row for this share, counted by time: a burst of concurrent 500s
    /// counts once.
    streak: u32,
    /// `counted_500s` just after this share's latest counted 500: a 500 to a request that
    /// started before that (`Flight::refusal_epoch` lower) belongs to the same burst.
    counted_at: u64,
    /// `successes` when the streak began: a success since then was another share's.
    streak_epoch: u64,
    refused: bool,
    /// While refused: positions of its keys whose pending content is held back.
    held: BTreeMap<u64, Arc<str>>,
    /// While refused: when the next probe may be made ready (None while one is under way).
    probe_at: Option<Instant>,
    /// The position of the probe made ready or under way.
    probe_mark: Option<u64>,
}

/// Given-up contents remembered for flushes, by position; older ones are summed.
const GIVEN_UP_LOG: usize = 65_536;

/// The queue. See the module documentation.
#[derive(Debug)]
pub struct Queue {
    limits: Limits,
    entries: HashMap<Arc<str>, Entry>,
    /// Keys that can be sent now, by position. A key is here exactly when it has pending
    /// content, no request under way, no retry to wait for and its share is not refused (or
    /// it is that share's probe). It also counts requests under way per session.
    ready: Ready,
    /// Parked keys (waiting for a retry or for their interval), by (time, position).
    waiting: BTreeMap<(Instant, u64), Arc<str>>,
    /// The parked keys of `waiting` whose wait the next success ends (they failed while the
    /// service looked down).
    wakeable: BTreeSet<(Instant, u64)>,
    /// When each key's latest request started, kept for `min_interval` (empty when it is zero).
    starts: HashMap<Arc<str>, Instant>,
    /// The same starts in time order, to forget them once `min_interval` has passed.
    start_log: VecDeque<(Instant, Arc<str>)>,
    /// The oldest undelivered write of every pending key and of every request under way, except
    /// those of refused shares: a flush is done when none is at or below its mark.
    outstanding: BTreeSet<u64>,
    /// Shares with answers of 500 in a row, or refused.
    health: HashMap<Arc<str>, Health>,
    /// Refused shares' next probes, by time.
    probes: BTreeSet<(Instant, Arc<str>)>,
    /// Refused shares without evidence that the service is up: probed at the next success.
    unconfirmed: Vec<Arc<str>>,
    /// Successful requests, ever.
    successes: u64,
    /// Answers of 500 counted toward a share's refusal, ever (see `Health::counted_at`).
    counted_500s: u64,
    /// The service's health and its gate (service.rs).
    service: Service,
    /// Positions of given-up contents not yet reported by a flush, with a count each.
    given_up: BTreeMap<u64, u64>,
    /// Given-up contents that no longer fit in `given_up`: reported by the next flush.
    given_up_old: u64,
    in_flight: usize,
    pending_keys: usize,
    pending_bytes: usize,
    last_seq: u64,
    counts: Counts,
}

impl Queue {
    pub fn new(limits: Limits) -> Self {
        Queue {
            limits,
            entries: HashMap::new(),
            ready: Ready::new(limits.batch.is_some()),
            waiting: BTreeMap::new(),
            wakeable: BTreeSet::new(),
            starts: HashMap::new(),
            start_log: VecDeque::new(),
            outstanding: BTreeSet::new(),
            health: HashMap::new(),
            probes: BTreeSet::new(),
            unconfirmed: Vec::new(),
            successes: 0,
            counted_500s: 0,
            service: Service::default(),
            given_up: BTreeMap::new(),
            given_up_old: 0,
            in_flight: 0,
            pending_keys: 0,
            pending_bytes: 0,
            last_seq: 0,
            counts: Counts::default(),
        }
    }

    /// Takes the newest content of `key` (of `session`), replacing any content still waiting.
    /// `now` is read only for a key that started a request within `min_interval` (a clock read
    /// costs as much as a tenth of a small write).
    pub fn offer(
        &mut self,
        key: &str,
        session: &str,
        text: Arc<str>,
        now: impl FnOnce() -> Instant,
    ) -> Result<Offer, QueueFull> {
        let waiting_len = self
            .entries
            .get(key)
            .and_then(|e| e.pending.as_ref())
            .map_or(0, |t| t.len());
        let after = self.pending_bytes - waiting_len + text.len();
        if after > self.limits.max_pending_bytes {
            return Err(QueueFull {
                pending_bytes: self.pending_bytes,
                limit: self.limits.max_pending_bytes,
            });
        }
        self.last_seq += 1;
        let seq = self.last_seq;
        self.counts.queued += 1;
        self.pending_bytes = after;
        let Some(entry) = self.entries.get_mut(key) else {
            let key: Arc<str> = Arc::from(key);
            let session: Arc<str> = Arc::from(session);
            self.pending_keys += 1;
            self.entries.insert(
                key.clone(),
                Entry {
                    key: key.clone(),
                    session: session.clone(),
                    pending: Some(text),
                    position: seq,
                    seq,
                    in_flight: None,
                    parked_until: None,
                    attempts: 0,
                    cancelled: None,
                    held: false,
                    probe: false,
                },
            );
            if self.is_refused(&session) {
                self.hold(&key, now);
                return Ok(Offer::Parked);
            }
            self.outstanding.insert(seq);
            return Ok(if self.make_ready(key, seq, now) {
                self.note_ready();
                Offer::Queued
            } else {
                Offer::Parked
            });
        };
        entry.seq = seq;
        if entry.pending.replace(text).is_some() {
            // same position: the newer content goes where the first unsent write stood
            self.counts.coalesced += 1;
            return Ok(Offer::Coalesced);
        }
        // the key is in flight (an idle key has no entry): it goes out again afterwards
        debug_assert!(entry.in_flight.is_some());
        entry.position = seq;
        self.pending_keys += 1;
        let (key, session) = (entry.key.clone(), entry.session.clone());
        if self.is_refused(&session) {
            self.hold(&key, now);
        } else {
            self.outstanding.insert(seq);
        }
        Ok(Offer::Queued)
    }

    /// Counts a content dropped before it was queued (larger than `max_content_bytes`): it
    /// takes a position, so flushes after it report it as given up.
    pub fn give_up_unsent(&mut self) {
        self.last_seq += 1;
        self.counts.queued += 1;
        self.counts.dropped += 1;
        self.note_given_up(self.last_seq);
    }

    /// The next request to make, if a key is ready and fewer than `concurrency` requests are
    /// under way. Parked keys whose time has come are made ready first. With batching: the
    /// first ready key's share with nothing under way, with all its ready keys (up to
    /// `max_bytes`), in the batch's order.
    pub fn next_dispatch(&mut self, now: Instant) -> Option<Dispatch> {
        self.wake_due(now);
        if self.requests_in_flight() >= self.limits.concurrency || !self.gate_open(now) {
            return None;
        }
        self.ready_oldest_for_probe(now);
        let Some(batch) = self.limits.batch else {
            let (position, key) = self.ready.pop_first()?;
            let (session, item) = self.start(position, key, now);
            self.note_service_start();
            return Some(Dispatch {
                session,
                items: vec![item],
            });
        };
        let session = self.ready.first_open_share()?;
        let mut bytes = 0;
        let mut chosen = Vec::new();
        for (position, key) in self.ready.of_share(&session) {
            let len = self.entries[&key].pending.as_ref().map_or(0, |t| t.len());
            if !chosen.is_empty() && bytes + len > batch.max_bytes {
                break; // the rest goes in the next request
            }
            bytes += len;
            chosen.push((position, key));
        }
        let mut items: Vec<(u8, u64, Item)> = chosen
            .into_iter()
            .map(|(position, key)| {
                self.ready.remove(position);
                let order = (batch.order)(&key);
                (order, position, self.start(position, key, now).1)
            })
            .collect();
        items.sort_by_key(|(order, position, _)| (*order, *position));
        self.note_service_start();
        Some(Dispatch {
            session,
            items: items.into_iter().map(|(_, _, item)| item).collect(),
        })
    }

    /// Puts a key taken from the ready set under way.
    pub(super) fn start(&mut self, position: u64, key: Arc<str>, now: Instant) -> (Arc<str>, Item) {
        let entry = self
            .entries
            .get_mut(&key)
            .expect("ready keys have an entry");
        let text = entry
            .pending
            .take()
            .expect("ready keys have pending content");
        self.pending_keys -= 1;
        self.pending_bytes -= text.len();
        entry.in_flight = Some(Flight {
            mark: position,
            seq: entry.seq,
            text: text.clone(),
            epoch: self.successes,
            refusal_epoch: self.counted_500s,
            probe: std::mem::take(&mut entry.probe),
            service_probe: self.service.down_since.is_some(),
        });
        self.in_flight += 1;
        let session = entry.session.clone();
        let seq = entry.seq;
        self.ready.fly(&session);
        self.note_start(&key, now);
        (
            session,
            Item {
                key,
                content: text,
                seq,
            },
        )
    }

    /// Requests that could start now (not counting parked keys): ready keys, or with batching
    /// the shares with ready keys and nothing under way; none while the service's gate is
    /// closed, and at most one (the probe) while the service is down.
    pub fn startable(&self) -> usize {
        if self.gated() {
            return 0;
        }
        let n = self.ready.startable();
        if self.service.down_since.is_some() {
            n.min(1)
        } else {
            n
        }
    }

    /// Requests under way: contents, or with batching shares.
    pub fn requests_in_flight(&self) -> usize {
        if self.limits.batch.is_some() {
            self.ready.shares_in_flight()
        } else {
            self.in_flight
        }
    }

    /// The key's and its session's shared names, while it has an entry.
    pub fn names(&self, key: &str) -> Option<(&Arc<str>, &Arc<str>)> {
        self.entries.get(key).map(|e| (&e.key, &e.session))
    }

    /// Every key's newest content not yet delivered (pending, else in flight), for tests.
    #[cfg(test)]
    pub fn contents(&self) -> Vec<(Arc<str>, Arc<str>)> {
        let mut all: Vec<(Arc<str>, Arc<str>)> = self
            .entries
            .values()
            .filter_map(|e| {
                let flying = e.in_flight.as_ref().filter(|_| e.cancelled.is_none());
                let text = e.pending.as_ref().or(flying.map(|f| &f.text))?;
                Some((e.key.clone(), text.clone()))
            })
            .collect();
        all.sort();
        all
    }

    /// True while `key` has content pending, parked, held or in flight.
    pub fn holds_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Contents under way for `session`.
    pub fn in_flight_of(&self, session: &str) -> usize {
        self.ready.in_flight_of(session)
    }

    /// Contents under way.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn pending_keys(&self) -> usize {
        self.pending_keys
    }

    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }
}

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod tests;
