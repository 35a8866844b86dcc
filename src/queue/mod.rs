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

mod ready;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::HashMap;
use foldhash::HashMapExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ready::Ready;

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
/// share in between) the share is refused. Everything else that is retried (network errors,
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
    /// The one request of a refused share: flushes do not wait for it.
    probe: bool,
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
    /// Answers of 500 in a row for this share.
    streak: u32,
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

/// What [`Queue::drain`] dropped of one key: the key, its session, how many contents.
pub type KeyCount = (Arc<str>, Arc<str>, u64);

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
        if self.requests_in_flight() >= self.limits.concurrency {
            return None;
        }
        let Some(batch) = self.limits.batch else {
            let (position, key) = self.ready.pop_first()?;
            let (session, item) = self.start(position, key, now);
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
        Some(Dispatch {
            session,
            items: items.into_iter().map(|(_, _, item)| item).collect(),
        })
    }

    /// Puts a key taken from the ready set under way.
    fn start(&mut self, position: u64, key: Arc<str>, now: Instant) -> (Arc<str>, Item) {
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
            probe: std::mem::take(&mut entry.probe),
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

    /// The request for `key` succeeded: its share is healthy (resumed if it was refused), and
    /// every key parked by an outage may go now.
    pub fn sent(&mut self, key: &str, now: Instant) -> AfterSuccess {
        let Some(flight) = self.land(key) else {
            return AfterSuccess::default();
        };
        self.counts.sent += 1;
        self.successes += 1;
        if !flight.probe {
            self.outstanding.remove(&flight.mark);
        }
        let entry = self
            .entries
            .get_mut(key)
            .expect("landed keys have an entry");
        entry.attempts = 0;
        let session = entry.session.clone();
        let mut after = AfterSuccess::default();
        if let Some(health) = self.health.remove(&session) {
            if health.refused {
                after.resumed = true;
                self.resume(&session, health, now);
            }
        }
        // the service answers: keys that failed while it looked down go now
        let woken: Vec<(Instant, u64)> = std::mem::take(&mut self.wakeable).into_iter().collect();
        for at in woken {
            if let Some(key) = self.waiting.remove(&at) {
                if let Some(e) = self.entries.get_mut(&key) {
                    e.parked_until = None;
                }
                after.wake_timer |= !self.make_ready(key, at.1, || now);
            }
        }
        // refusals without evidence that the service was up are probed at once
        for session in std::mem::take(&mut self.unconfirmed) {
            if let Some(h) = self.health.get_mut(&session) {
                if let Some(at) = h.probe_at.replace(now) {
                    self.probes.remove(&(at, session.clone()));
                }
                self.probes.insert((now, session));
                after.wake_timer = true;
            }
        }
        after.wake_timer |= self.requeue_or_forget(key, now);
        after
    }

    /// The request for `key` failed with `failure` (a request of one key: see [`Queue::failed_batch`]).
    pub fn failed(
        &mut self,
        key: &str,
        now: Instant,
        failure: Failure,
        delay: impl FnOnce(u32) -> Duration,
    ) -> AfterFailure {
        self.failed_batch(&[key], now, failure, delay)[0]
    }

    /// The request carrying `keys` (all of one share) failed with `failure`: one answer, so it
    /// counts once toward its share's refusal, and its retried keys wait one `delay(retry)`
    /// (retry: the most failed attempts among them) and go again together. A retried key keeps
    /// its newest content (the failed one, unless a newer one arrived meanwhile) and is parked,
    /// or held with its share's others once the share is refused. Answers one result per key.
    pub fn failed_batch(
        &mut self,
        keys: &[&str],
        now: Instant,
        failure: Failure,
        delay: impl FnOnce(u32) -> Duration,
    ) -> Vec<AfterFailure> {
        let mut results = vec![AfterFailure::Dropped { given_up: false }; keys.len()];
        let mut retried: Vec<(usize, Arc<str>, Flight)> = Vec::new();
        let mut session: Option<Arc<str>> = None;
        for (n, key) in keys.iter().enumerate() {
            let Some(flight) = self.land(key) else {
                continue; // drained meanwhile
            };
            self.counts.failed += 1;
            let entry = self
                .entries
                .get_mut(*key)
                .expect("landed keys have an entry");
            let cancelled = entry.cancelled;
            session.get_or_insert_with(|| entry.session.clone());
            if failure == Failure::Final || cancelled.is_some() {
                entry.attempts = 0;
                let s = entry.session.clone();
                self.counts.dropped += 1;
                let given_up = cancelled != Some(Cancel::Removed);
                if given_up {
                    self.note_given_up(flight.mark);
                }
                self.land_mark(&s, &flight, now);
                self.requeue_or_forget(key, now);
                results[n] = AfterFailure::Dropped { given_up };
                continue;
            }
            entry.attempts += 1;
            self.counts.retried += 1;
            if entry.pending.is_some() {
                // the newer content replaces the failed one and covers its writes too
                self.counts.coalesced += 1;
                if !entry.held {
                    self.outstanding.remove(&entry.position);
                } else if let Some(h) = self.health.get_mut(&entry.session) {
                    h.held.remove(&entry.position);
                }
                entry.held = false;
            } else {
                self.pending_keys += 1;
                self.pending_bytes += flight.text.len();
                entry.pending = Some(flight.text.clone());
                entry.seq = flight.seq;
            }
            // it has had unsent data since the failed request's first write: it goes before later keys
            entry.position = flight.mark;
            retried.push((n, entry.key.clone(), flight));
        }
        let Some(session) = session.filter(|_| !retried.is_empty()) else {
            return results;
        };
        let mut newly = false;
        if failure == Failure::Refusal {
            let (successes, max) = (self.successes, self.limits.max_retries);
            let h = self.health.entry(session.clone()).or_default();
            if h.streak == 0 {
                h.streak_epoch = successes;
            }
            h.streak = h.streak.saturating_add(1);
            if !h.refused && h.streak >= max {
                newly = true;
                self.refuse(&session, now);
            }
        }
        if retried.iter().any(|(_, _, f)| f.probe) {
            if let Some(h) = self.health.get_mut(&session) {
                h.probe_mark = None;
                if h.refused {
                    self.schedule_probe(&session, now + self.limits.probe_interval);
                }
            }
        }
        let attempts = retried
            .iter()
            .map(|(_, k, _)| self.entries[k].attempts)
            .max()
            .unwrap_or(1);
        let wait = delay(attempts);
        let refused = self.is_refused(&session);
        for (n, key, flight) in retried {
            if refused {
                if !flight.probe {
                    self.outstanding.remove(&flight.mark);
                }
                self.hold(&key, || now);
                results[n] = AfterFailure::Held {
                    newly: std::mem::take(&mut newly),
                };
                continue;
            }
            if flight.probe {
                // a probe whose share resumed meanwhile: flushes wait for it again
                self.outstanding.insert(flight.mark);
            }
            let retry = self.entries[&key].attempts;
            let at = (now + wait).max(self.earliest_start(&key).unwrap_or(now));
            self.park(key, flight.mark, at);
            if failure == Failure::Outage && flight.epoch == self.successes {
                self.wakeable.insert((at, flight.mark));
            }
            results[n] = AfterFailure::Retry {
                retry,
                delay: at - now,
            };
        }
        results
    }

    /// Drops every pending content of `session` and cancels retries of its requests under way,
    /// forgetting the share's health; returns how many contents were dropped. `given_up` says
    /// whether flushes report them (true when the service ended the share, false for the host's
    /// own remove).
    pub fn purge_session(&mut self, session: &str, given_up: bool) -> u64 {
        let keys: Vec<Arc<str>> = self
            .entries
            .values()
            .filter(|e| &*e.session == session)
            .map(|e| e.key.clone())
            .collect();
        let mut dropped = 0;
        let mut positions = Vec::new();
        for key in keys {
            let entry = self.entries.get_mut(&key).expect("listed");
            if let Some(text) = entry.pending.take() {
                dropped += 1;
                positions.push(entry.position);
                self.pending_keys -= 1;
                self.pending_bytes -= text.len();
                self.outstanding.remove(&entry.position);
                match entry.parked_until.take() {
                    Some(at) => {
                        self.wakeable.remove(&(at, entry.position));
                        self.waiting.remove(&(at, entry.position))
                    }
                    None if entry.in_flight.is_none() => self.ready.remove(entry.position),
                    None => None,
                };
                entry.held = false;
                entry.probe = false;
            }
            if entry.in_flight.is_some() {
                entry.cancelled = Some(if given_up {
                    Cancel::GivenUp
                } else {
                    Cancel::Removed
                });
            } else {
                self.entries.remove(&key);
            }
        }
        if given_up {
            for position in positions {
                self.note_given_up(position);
            }
        }
        if let Some(h) = self.health.remove(session) {
            if let Some(at) = h.probe_at {
                self.probes.remove(&(at, Arc::from(session)));
            }
        }
        self.unconfirmed.retain(|s| &**s != session);
        self.counts.dropped += dropped;
        dropped
    }

    /// Drops everything, pending (held too) and in flight, at shutdown; returns how many
    /// contents, and how many of each key (with its session), by key.
    pub fn drain(&mut self) -> (u64, Vec<KeyCount>) {
        let left = (self.pending_keys + self.in_flight) as u64;
        let mut keys: Vec<KeyCount> = self
            .entries
            .values()
            .map(|e| {
                let n = u64::from(e.pending.is_some()) + u64::from(e.in_flight.is_some());
                (e.key.clone(), e.session.clone(), n)
            })
            .collect();
        keys.sort();
        self.counts.dropped += left;
        let (limits, counts, last_seq) = (self.limits, self.counts, self.last_seq);
        *self = Queue::new(limits);
        self.counts = counts;
        self.last_seq = last_seq;
        (left, keys)
    }

    /// Makes ready every parked key whose time has come, and the probes of refused shares.
    pub fn wake_due(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (at, key) = entry.remove_entry();
            self.wakeable.remove(&at);
            if let Some(e) = self.entries.get_mut(&key) {
                e.parked_until = None;
                let session = e.session.clone();
                self.ready.insert(at.1, key, session);
            }
        }
        while let Some((at, _)) = self.probes.first() {
            if *at > now {
                break;
            }
            let (_, session) = self.probes.pop_first().expect("first");
            self.make_probe(&session, now);
        }
    }

    /// When the earliest parked key may go (a retry, the end of an interval, a probe).
    pub fn next_parked_at(&self) -> Option<Instant> {
        let parked = self.waiting.first_key_value().map(|((at, _), _)| *at);
        let probe = self.probes.first().map(|(at, _)| *at);
        match (parked, probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Requests that could start now (not counting parked keys): ready keys, or with batching
    /// the shares with ready keys and nothing under way.
    pub fn startable(&self) -> usize {
        self.ready.startable()
    }

    /// Requests under way: contents, or with batching shares.
    pub fn requests_in_flight(&self) -> usize {
        if self.limits.batch.is_some() {
            self.ready.shares_in_flight()
        } else {
            self.in_flight
        }
    }

    /// Sequence number of the newest content accepted so far.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// True while some content numbered `seq` or lower is still pending or in flight (contents
    /// of refused shares aside: see [`Queue::held_up_to`]).
    pub fn holds_up_to(&self, seq: u64) -> bool {
        self.outstanding.first().is_some_and(|&first| first <= seq)
    }

    /// Contents numbered `seq` or lower held for refused shares (their probe included), and
    /// how many shares they are of.
    pub fn held_up_to(&self, seq: u64) -> (u64, usize) {
        let mut contents = 0;
        let mut shares = 0;
        for h in self.health.values().filter(|h| h.refused) {
            let n = h.held.range(..=seq).count() as u64
                + u64::from(h.probe_mark.is_some_and(|m| m <= seq));
            contents += n;
            shares += usize::from(n > 0);
        }
        (contents, shares)
    }

    /// Takes the count of given-up contents numbered `seq` or lower not yet reported (and any
    /// older ones that outgrew the log): a flush reports each once.
    pub fn take_given_up(&mut self, seq: u64) -> u64 {
        let later = self.given_up.split_off(&seq.saturating_add(1));
        let upto = std::mem::replace(&mut self.given_up, later);
        upto.values().sum::<u64>() + std::mem::take(&mut self.given_up_old)
    }

    /// True while `key` has content pending, parked, held or in flight.
    pub fn holds_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// True while the share of `session` is refused.
    pub fn is_refused(&self, session: &str) -> bool {
        self.health.get(session).is_some_and(|h| h.refused)
    }

    /// The share of `session` has a new secret: if it is refused, its probe goes now. True
    /// if a probe was scheduled (the clock's owner must look at `next_parked_at`).
    pub fn probe_now(&mut self, session: &str, now: Instant) -> bool {
        let Some((session, h)) = self.health.get_key_value(session) else {
            return false;
        };
        if !h.refused {
            return false;
        }
        let session = session.clone();
        self.schedule_probe(&session, now);
        true
    }

    /// Shares refused now.
    pub fn refused_shares(&self) -> usize {
        self.health.values().filter(|h| h.refused).count()
    }

    /// Contents held for refused shares (their probes included).
    pub fn held(&self) -> usize {
        self.health
            .values()
            .map(|h| h.held.len() + usize::from(h.probe_mark.is_some()))
            .sum()
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

    /// Ends the request of `key`: returns it, or None if there was none (the queue
    /// was drained meanwhile).
    fn land(&mut self, key: &str) -> Option<Flight> {
        let entry = self.entries.get_mut(key)?;
        let flight = entry.in_flight.take()?;
        self.in_flight -= 1;
        self.ready.land(&entry.session);
        Some(flight)
    }

    /// Forgets a dropped flight's mark: a flush's, or its share's probe (another goes now).
    fn land_mark(&mut self, session: &Arc<str>, flight: &Flight, now: Instant) {
        if !flight.probe {
            self.outstanding.remove(&flight.mark);
            return;
        }
        if let Some(h) = self.health.get_mut(session) {
            h.probe_mark = None;
            if h.refused {
                self.schedule_probe(session, now);
            }
        }
    }

    /// After a request ended for good: queue the key's newer content, or forget the key. True
    /// if the newer content is parked until the key's interval has passed.
    fn requeue_or_forget(&mut self, key: &str, now: Instant) -> bool {
        let entry = self.entries.get_mut(key).expect("entry");
        entry.cancelled = None;
        if entry.pending.is_none() {
            self.entries.remove(key);
            return false;
        }
        if entry.held {
            // waits with its refused share; the share's next probe may have found nothing
            // to send while this key was in flight
            let session = entry.session.clone();
            let idle = self
                .health
                .get(&session)
                .is_some_and(|h| h.probe_at.is_none() && h.probe_mark.is_none());
            if idle {
                self.schedule_probe(&session, now + self.limits.probe_interval);
            }
            return idle;
        }
        let (key, position) = (entry.key.clone(), entry.position);
        !self.make_ready(key, position, || now)
    }

    /// Puts a key with pending content and no request under way in the ready set, or parks it
    /// until its interval has passed. True if it is ready.
    fn make_ready(&mut self, key: Arc<str>, position: u64, now: impl FnOnce() -> Instant) -> bool {
        match self.earliest_start(&key) {
            Some(at) if at > now() => {
                self.park(key, position, at);
                false
            }
            _ => {
                let session = self.entries[&key].session.clone();
                self.ready.insert(position, key, session);
                true
            }
        }
    }

    fn park(&mut self, key: Arc<str>, position: u64, at: Instant) {
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.parked_until = Some(at);
        }
        self.waiting.insert((at, position), key);
    }

    /// Puts the pending content of `key` (of a refused share, not ready nor parked nor
    /// outstanding) in its share's held set; schedules a probe if none is due.
    fn hold(&mut self, key: &Arc<str>, now: impl FnOnce() -> Instant) {
        let entry = self.entries.get_mut(key).expect("held keys have an entry");
        entry.held = true;
        let (position, session) = (entry.position, entry.session.clone());
        let h = self
            .health
            .get_mut(&session)
            .expect("refused shares have health");
        h.held.insert(position, key.clone());
        if h.probe_at.is_none() && h.probe_mark.is_none() {
            let at = now() + self.limits.probe_interval;
            self.schedule_probe(&session, at);
        }
    }

    /// The share of `session` becomes refused: its waiting keys are held.
    fn refuse(&mut self, session: &Arc<str>, now: Instant) {
        self.counts.refusals += 1;
        let successes = self.successes;
        let h = self.health.get_mut(session).expect("a streak has health");
        h.refused = true;
        if h.streak_epoch == successes {
            self.unconfirmed.push(session.clone());
        }
        let keys: Vec<Arc<str>> = self
            .entries
            .values()
            .filter(|e| &e.session == session && e.pending.is_some() && !e.held)
            .map(|e| e.key.clone())
            .collect();
        for key in keys {
            let entry = self.entries.get_mut(&key).expect("listed");
            let position = entry.position;
            self.outstanding.remove(&position);
            match entry.parked_until.take() {
                Some(at) => {
                    self.wakeable.remove(&(at, position));
                    self.waiting.remove(&(at, position));
                }
                None if entry.in_flight.is_none() => {
                    self.ready.remove(position);
                }
                None => {}
            }
            self.hold(&key, || now);
        }
        self.schedule_probe(session, now + self.limits.probe_interval);
    }

    /// The share of `session` is live again: its held keys go (or wait for their interval).
    fn resume(&mut self, session: &Arc<str>, health: Health, now: Instant) {
        if let Some(at) = health.probe_at {
            self.probes.remove(&(at, session.clone()));
        }
        self.unconfirmed.retain(|s| s != session);
        for (position, key) in health.held {
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            entry.held = false;
            self.outstanding.insert(position);
            if entry.in_flight.is_none() {
                self.make_ready(key, position, || now);
            }
        }
        if health.probe_mark.is_some() {
            // a probe made ready but not yet sent: flushes wait for it again
            for e in self.entries.values_mut() {
                if e.probe && &e.session == session {
                    e.probe = false;
                    self.outstanding.insert(e.position);
                }
            }
        }
    }

    /// (Re)schedules the probe of refused `session` at `at`.
    fn schedule_probe(&mut self, session: &Arc<str>, at: Instant) {
        let Some(h) = self.health.get_mut(session) else {
            return;
        };
        if h.probe_mark.is_some() {
            return; // one under way: its answer schedules the next
        }
        if let Some(old) = h.probe_at.replace(at) {
            self.probes.remove(&(old, session.clone()));
        }
        self.probes.insert((at, session.clone()));
    }

    /// Makes the oldest held key of refused `session` (not under way) ready as its probe (or
    /// parks it for the rest of its interval).
    fn make_probe(&mut self, session: &Arc<str>, now: Instant) {
        let Some(h) = self.health.get_mut(session) else {
            return;
        };
        h.probe_at = None;
        if !h.refused || h.probe_mark.is_some() {
            return;
        }
        let entries = &self.entries;
        let found = h
            .held
            .iter()
            .find(|(_, k)| entries.get(*k).is_some_and(|e| e.in_flight.is_none()))
            .map(|(p, k)| (*p, k.clone()));
        let Some((position, key)) = found else {
            return; // nothing to probe with: the next held content schedules one
        };
        h.held.remove(&position);
        h.probe_mark = Some(position);
        let entry = self.entries.get_mut(&key).expect("held keys have an entry");
        entry.held = false;
        entry.probe = true;
        self.make_ready(key, position, || now);
    }

    fn note_given_up(&mut self, position: u64) {
        *self.given_up.entry(position).or_insert(0) += 1;
        if self.given_up.len() > GIVEN_UP_LOG {
            if let Some((_, n)) = self.given_up.pop_first() {
                self.given_up_old += n;
            }
        }
    }

    /// The earliest time `key` may start a request, if it started one within `min_interval`.
    fn earliest_start(&self, key: &str) -> Option<Instant> {
        self.starts
            .get(key)
            .map(|&at| at + self.limits.min_interval)
    }

    /// Remembers that a request of `key` starts now, and forgets starts older than the interval.
    fn note_start(&mut self, key: &Arc<str>, now: Instant) {
        let interval = self.limits.min_interval;
        if interval.is_zero() {
            return;
        }
        while let Some((at, _)) = self.start_log.front() {
            if *at + interval > now {
                break;
            }
            let (at, old) = self.start_log.pop_front().expect("front");
            if self.starts.get(&old) == Some(&at) {
                self.starts.remove(&old);
            }
        }
        self.starts.insert(key.clone(), now);
        self.start_log.push_back((now, key.clone()));
    }

    /// Checks the internal bookkeeping against a recount (tests only).
    #[cfg(test)]
    pub fn check(&self) {
        let pending: Vec<_> = self
            .entries
            .values()
            .filter_map(|e| e.pending.as_ref())
            .collect();
        assert_eq!(pending.len(), self.pending_keys);
        assert_eq!(
            pending.iter().map(|t| t.len()).sum::<usize>(),
            self.pending_bytes
        );
        let mut marks: BTreeSet<u64> = self
            .entries
            .values()
            .filter(|e| e.pending.is_some() && !e.held && !e.probe)
            .map(|e| e.position)
            .collect();
        marks.extend(
            self.entries
                .values()
                .filter_map(|e| e.in_flight.as_ref())
                .filter(|f| !f.probe)
                .map(|f| f.mark),
        );
        assert_eq!(marks, self.outstanding);
        let flying = self
            .entries
            .values()
            .filter(|e| e.in_flight.is_some())
            .count();
        assert_eq!(flying, self.in_flight);
        assert!(self.requests_in_flight() <= self.limits.concurrency);
        assert_eq!(self.ready.contents_in_flight(), self.in_flight);
        self.ready.check();
        for (k, e) in &self.entries {
            assert!(
                e.pending.is_some() || e.in_flight.is_some(),
                "idle entry {k} kept"
            );
            let refused = self.is_refused(&e.session);
            if e.held {
                assert!(refused, "{k} held for a share that is not refused");
                assert_eq!(self.health[&e.session].held.get(&e.position), Some(k));
                assert!(e.pending.is_some());
            }
            if e.pending.is_some() && refused && !e.probe {
                assert!(e.held, "{k} of a refused share is not held");
            }
            let ready =
                e.pending.is_some() && e.in_flight.is_none() && e.parked_until.is_none() && !e.held;
            assert_eq!(
                self.ready.get(e.position) == Some(k),
                ready,
                "ready set wrong for {k}"
            );
            assert_eq!(
                e.parked_until.is_some(),
                self.waiting.values().any(|w| w == k)
            );
        }
        for at in &self.wakeable {
            assert!(self.waiting.contains_key(at), "wakeable but not parked");
        }
        for (s, h) in &self.health {
            assert!(h.streak > 0 || h.refused, "idle health of {s} kept");
            if h.refused {
                assert!(
                    h.probe_mark.is_some()
                        || h.probe_at.is_some()
                        || h.held.values().all(|k| self.entries[k].in_flight.is_some()),
                    "refused {s} without a probe"
                );
            }
            if let Some(at) = h.probe_at {
                assert!(self.probes.contains(&(at, s.clone())));
            }
        }
        assert_eq!(
            self.probes.len(),
            self.health
                .values()
                .filter(|h| h.probe_at.is_some())
                .count()
        );
        let c = self.counts;
        assert_eq!(
            c.queued,
            c.sent + c.coalesced + c.dropped + self.pending_keys as u64 + self.in_flight as u64
        );
    }
}

#[cfg(test)]
mod batch_tests;
#[cfg(test)]
mod tests;
