//! The coalescing queue: the newest unsent content of each key, dispatched in the order of each
//! key's first unsent write, at most one request per key and `concurrency` in all, two requests
//! of one key at least `min_interval` apart, with keys parked until their retry or interval time.
//! Pure state: the runtime wraps it in a mutex and supplies the clock, so unit and property tests
//! drive it directly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::HashMap;
use foldhash::HashMapExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The queue's bounds, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub concurrency: usize,
    pub max_retries: u32,
    pub max_pending_bytes: usize,
    /// Least time between the starts of two requests of one key: a key rewritten faster waits,
    /// and its writes meanwhile coalesce. Zero sends again as soon as the key is free.
    pub min_interval: Duration,
}

/// Lifetime totals. Every accepted content ends in exactly one of sent, coalesced or dropped,
/// or is still pending or in flight: `queued = sent + coalesced + dropped + pending + in_flight`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Contents accepted by `offer`.
    pub queued: u64,
    /// Contents replaced by a newer one of the same key before they were delivered.
    pub coalesced: u64,
    /// Contents the service accepted (2xx).
    pub sent: u64,
    /// Contents given up: refused by the service, retries spent, share gone, purged, shut down.
    pub dropped: u64,
    /// Failed attempts that were scheduled for another try.
    pub retried: u64,
    /// Failed attempts, retried or not.
    pub failed: u64,
}

/// One request to make: send `content` as the value of `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub key: Arc<str>,
    pub session: Arc<str>,
    pub content: Arc<str>,
}

/// How `offer` took a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// The key had nothing waiting; it now has.
    Queued,
    /// Queued, but the key's last request started less than `min_interval` ago: it is parked
    /// until then (the clock's owner must wake at `next_parked_at`).
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

/// How a failed attempt was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The key will be tried again after `delay` (retry number `retry`).
    Retry { retry: u32, delay: Duration },
    /// The failed content was dropped: not retryable, retries spent, or its session was purged.
    Dropped { exhausted: bool },
}

/// The request under way for a key.
#[derive(Debug)]
struct Flight {
    /// Position the key had when it was dispatched: the oldest write this request delivers.
    mark: u64,
    text: Arc<str>,
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
    in_flight: Option<Flight>,
    /// Set while the key waits for a retry or for its interval since its last request.
    parked_until: Option<Instant>,
    /// Failed attempts since the key's last success.
    attempts: u32,
    /// The session was purged while this key's request was under way: do not retry it.
    cancelled: bool,
}

/// The queue. See the module documentation.
#[derive(Debug)]
pub struct Queue {
    limits: Limits,
    entries: HashMap<Arc<str>, Entry>,
    /// Keys that can be sent now, by position. A key is here exactly when it has pending
    /// content, no request under way and no retry to wait for.
    ready: BTreeMap<u64, Arc<str>>,
    /// Parked keys (waiting for a retry or for their interval), by (time, position).
    waiting: BTreeMap<(Instant, u64), Arc<str>>,
    /// When each key's latest request started, kept for `min_interval` (empty when it is zero).
    starts: HashMap<Arc<str>, Instant>,
    /// The same starts in time order, to forget them once `min_interval` has passed.
    start_log: VecDeque<(Instant, Arc<str>)>,
    /// The oldest undelivered write of every pending key and of every request under way: a
    /// flush is done when none is at or below its mark.
    outstanding: BTreeSet<u64>,
    /// Requests under way, per session (for remove).
    flights: HashMap<Arc<str>, usize>,
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
            ready: BTreeMap::new(),
            waiting: BTreeMap::new(),
            starts: HashMap::new(),
            start_log: VecDeque::new(),
            outstanding: BTreeSet::new(),
            flights: HashMap::new(),
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
            self.outstanding.insert(seq);
            self.pending_keys += 1;
            self.entries.insert(
                key.clone(),
                Entry {
                    key: key.clone(),
                    session: Arc::from(session),
                    pending: Some(text),
                    position: seq,
                    in_flight: None,
                    parked_until: None,
                    attempts: 0,
                    cancelled: false,
                },
            );
            return Ok(if self.make_ready(key, seq, now) {
                Offer::Queued
            } else {
                Offer::Parked
            });
        };
        if entry.pending.replace(text).is_some() {
            // same position: the newer content goes where the first unsent write stood
            self.counts.coalesced += 1;
            return Ok(Offer::Coalesced);
        }
        // the key is in flight (an idle key has no entry): it goes out again afterwards
        debug_assert!(entry.in_flight.is_some());
        entry.position = seq;
        self.outstanding.insert(seq);
        self.pending_keys += 1;
        Ok(Offer::Queued)
    }

    /// The next request to make, if a key is ready and fewer than `concurrency` are under way.
    /// Parked keys whose time has come are made ready first.
    pub fn next_dispatch(&mut self, now: Instant) -> Option<Dispatch> {
        self.wake_due(now);
        if self.in_flight >= self.limits.concurrency {
            return None;
        }
        let (position, key) = self.ready.pop_first()?;
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
            text: text.clone(),
        });
        self.in_flight += 1;
        let session = entry.session.clone();
        *self.flights.entry(session.clone()).or_insert(0) += 1;
        self.note_start(&key, now);
        Some(Dispatch {
            key,
            session,
            content: text,
        })
    }

    /// The request for `key` succeeded. True if the key has newer content that is parked until
    /// its interval has passed.
    pub fn sent(&mut self, key: &str, now: Instant) -> bool {
        let Some(flight) = self.land(key) else {
            return false;
        };
        self.counts.sent += 1;
        self.outstanding.remove(&flight.mark);
        let entry = self
            .entries
            .get_mut(key)
            .expect("landed keys have an entry");
        entry.attempts = 0;
        self.requeue_or_forget(key, now)
    }

    /// The request for `key` failed. A retryable failure keeps the key's newest content (the
    /// failed one, unless a newer one arrived meanwhile) and parks the key for `delay(retry)`,
    /// until the key has failed more than `max_retries` times since its last success.
    pub fn failed(
        &mut self,
        key: &str,
        now: Instant,
        retryable: bool,
        delay: impl FnOnce(u32) -> Duration,
    ) -> AfterFailure {
        let Some(flight) = self.land(key) else {
            return AfterFailure::Dropped { exhausted: false };
        };
        self.counts.failed += 1;
        let entry = self
            .entries
            .get_mut(key)
            .expect("landed keys have an entry");
        entry.attempts += 1;
        let exhausted = entry.attempts > self.limits.max_retries && !entry.cancelled;
        if !retryable || exhausted || entry.cancelled {
            entry.attempts = 0;
            self.counts.dropped += 1;
            self.outstanding.remove(&flight.mark);
            self.requeue_or_forget(key, now);
            return AfterFailure::Dropped {
                exhausted: retryable && exhausted,
            };
        }
        let retry = entry.attempts;
        self.counts.retried += 1;
        if entry.pending.is_some() {
            // the newer content replaces the failed one and covers its writes too
            self.counts.coalesced += 1;
            self.outstanding.remove(&entry.position);
        } else {
            self.pending_keys += 1;
            self.pending_bytes += flight.text.len();
            entry.pending = Some(flight.text);
        }
        // it has had unsent data since the failed request's first write: it goes before later keys
        entry.position = flight.mark;
        let key = entry.key.clone();
        let at = (now + delay(retry)).max(self.earliest_start(&key).unwrap_or(now));
        self.park(key, flight.mark, at);
        AfterFailure::Retry {
            retry,
            delay: at - now,
        }
    }

    /// Drops every pending content of `session` and cancels retries of its requests under way;
    /// returns how many contents were dropped.
    pub fn purge_session(&mut self, session: &str) -> u64 {
        let keys: Vec<Arc<str>> = self
            .entries
            .values()
            .filter(|e| &*e.session == session)
            .map(|e| e.key.clone())
            .collect();
        let mut dropped = 0;
        for key in keys {
            let entry = self.entries.get_mut(&key).expect("listed");
            if let Some(text) = entry.pending.take() {
                dropped += 1;
                self.pending_keys -= 1;
                self.pending_bytes -= text.len();
                self.outstanding.remove(&entry.position);
                match entry.parked_until.take() {
                    Some(at) => self.waiting.remove(&(at, entry.position)),
                    None if entry.in_flight.is_none() => self.ready.remove(&entry.position),
                    None => None,
                };
            }
            if entry.in_flight.is_some() {
                entry.cancelled = true;
            } else {
                self.entries.remove(&key);
            }
        }
        self.counts.dropped += dropped;
        dropped
    }

    /// Drops everything, pending and in flight (at shutdown); returns how many contents.
    pub fn drain(&mut self) -> u64 {
        let left = (self.pending_keys + self.in_flight) as u64;
        self.counts.dropped += left;
        let (limits, counts, last_seq) = (self.limits, self.counts, self.last_seq);
        *self = Queue::new(limits);
        self.counts = counts;
        self.last_seq = last_seq;
        left
    }

    /// Makes ready every parked key whose time has come.
    pub fn wake_due(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, position), key) = entry.remove_entry();
            if let Some(e) = self.entries.get_mut(&key) {
                e.parked_until = None;
            }
            self.ready.insert(position, key);
        }
    }

    /// When the earliest parked key may go (a retry, or the end of an interval).
    pub fn next_parked_at(&self) -> Option<Instant> {
        self.waiting.first_key_value().map(|((at, _), _)| *at)
    }

    /// Keys that could be sent now (not counting parked ones).
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Sequence number of the newest content accepted so far.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// True while some content numbered `seq` or lower is still pending or in flight.
    pub fn holds_up_to(&self, seq: u64) -> bool {
        self.outstanding.first().is_some_and(|&first| first <= seq)
    }

    /// True while `key` has content pending, parked or in flight.
    pub fn holds_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Requests under way for `session`.
    pub fn in_flight_of(&self, session: &str) -> usize {
        self.flights.get(session).copied().unwrap_or(0)
    }

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
        if let Some(n) = self.flights.get_mut(&entry.session) {
            *n -= 1;
            if *n == 0 {
                self.flights.remove(&entry.session);
            }
        }
        Some(flight)
    }

    /// After a request ended for good: queue the key's newer content, or forget the key. True
    /// if the newer content is parked until the key's interval has passed.
    fn requeue_or_forget(&mut self, key: &str, now: Instant) -> bool {
        let entry = self.entries.get_mut(key).expect("entry");
        entry.cancelled = false;
        if entry.pending.is_none() {
            self.entries.remove(key);
            return false;
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
                self.ready.insert(position, key);
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
            .filter(|e| e.pending.is_some())
            .map(|e| e.position)
            .collect();
        marks.extend(
            self.entries
                .values()
                .filter_map(|e| e.in_flight.as_ref())
                .map(|f| f.mark),
        );
        assert_eq!(marks, self.outstanding);
        let flying = self
            .entries
            .values()
            .filter(|e| e.in_flight.is_some())
            .count();
        assert_eq!(flying, self.in_flight);
        assert!(self.in_flight <= self.limits.concurrency);
        assert_eq!(self.flights.values().sum::<usize>(), self.in_flight);
        assert_eq!(self.outstanding.len(), pending.len() + flying);
        for (k, e) in &self.entries {
            assert!(
                e.pending.is_some() || e.in_flight.is_some(),
                "idle entry {k} kept"
            );
            let ready = e.pending.is_some() && e.in_flight.is_none() && e.parked_until.is_none();
            assert_eq!(
                self.ready.get(&e.position) == Some(k),
                ready,
                "ready set wrong for {k}"
            );
            assert_eq!(
                e.parked_until.is_some(),
                self.waiting.values().any(|w| w == k)
            );
        }
        assert_eq!(
            self.ready.len(),
            self.entries
                .values()
                .filter(|e| e.pending.is_some()
                    && e.in_flight.is_none()
                    && e.parked_until.is_none())
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
mod tests {
    use super::*;

    fn queue(concurrency: usize) -> Queue {
        Queue::new(Limits {
            concurrency,
            max_retries: 3,
            max_pending_bytes: 1 << 20,
            min_interval: Duration::ZERO,
        })
    }

    fn offer(q: &mut Queue, key: &str, text: &str) -> Offer {
        offer_at(q, key, text, Instant::now())
    }

    fn offer_at(q: &mut Queue, key: &str, text: &str, now: Instant) -> Offer {
        let r = q.offer(key, "ses", Arc::from(text), || now).unwrap();
        q.check();
        r
    }

    fn next(q: &mut Queue, now: Instant) -> Option<(String, String)> {
        let d = q
            .next_dispatch(now)
            .map(|d| (d.key.to_string(), d.content.to_string()));
        q.check();
        d
    }

    #[test]
    fn coalesces_to_the_newest_and_keeps_first_write_order() {
        let mut q = queue(8);
        let now = Instant::now();
        assert_eq!(offer(&mut q, "a", "1"), Offer::Queued);
        assert_eq!(offer(&mut q, "b", "1"), Offer::Queued);
        assert_eq!(offer(&mut q, "a", "2"), Offer::Coalesced);
        assert_eq!(next(&mut q, now), Some(("a".into(), "2".into())));
        assert_eq!(next(&mut q, now), Some(("b".into(), "1".into())));
        assert_eq!(next(&mut q, now), None);
        assert_eq!(q.counts().coalesced, 1);
    }

    #[test]
    fn a_key_rewritten_in_flight_goes_again_afterwards_never_twice_at_once() {
        let mut q = queue(8);
        let now = Instant::now();
        offer(&mut q, "a", "1");
        assert_eq!(next(&mut q, now), Some(("a".into(), "1".into())));
        offer(&mut q, "a", "2");
        offer(&mut q, "b", "1");
        // a is in flight: only b may go
        assert_eq!(next(&mut q, now), Some(("b".into(), "1".into())));
        assert_eq!(next(&mut q, now), None);
        q.sent("a", Instant::now());
        q.check();
        assert_eq!(next(&mut q, now), Some(("a".into(), "2".into())));
    }

    #[test]
    fn concurrency_one_keeps_the_original_strict_order() {
        let mut q = queue(1);
        let now = Instant::now();
        offer(&mut q, "k", "1");
        assert_eq!(next(&mut q, now).unwrap().0, "k");
        offer(&mut q, "k", "2"); // written while in flight, before j
        offer(&mut q, "j", "1");
        assert_eq!(next(&mut q, now), None);
        q.sent("k", Instant::now());
        assert_eq!(next(&mut q, now), Some(("k".into(), "2".into())));
        q.sent("k", Instant::now());
        assert_eq!(next(&mut q, now), Some(("j".into(), "1".into())));
    }

    fn queue_with_interval(ms: u64) -> Queue {
        Queue::new(Limits {
            min_interval: Duration::from_millis(ms),
            ..queue(8).limits
        })
    }

    #[test]
    fn a_hot_key_starts_its_requests_at_least_the_interval_apart() {
        let mut q = queue_with_interval(25);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        offer_at(&mut q, "a", "1", t0);
        assert_eq!(next(&mut q, t0), Some(("a".into(), "1".into())));
        offer_at(&mut q, "a", "2", ms(5)); // a is in flight
        offer_at(&mut q, "b", "1", ms(5));
        assert_eq!(next(&mut q, ms(5)), Some(("b".into(), "1".into())));
        // a's answer comes at 20 ms; its next request may start at 25 ms
        assert!(q.sent("a", ms(20)), "parked");
        q.check();
        assert_eq!(offer_at(&mut q, "a", "3", ms(21)), Offer::Coalesced);
        assert_eq!(next(&mut q, ms(24)), None);
        assert_eq!(q.next_parked_at(), Some(ms(25)));
        assert_eq!(next(&mut q, ms(25)), Some(("a".into(), "3".into())));
        assert_eq!(q.counts().coalesced, 1);
        // b was started at 5 ms: a rewrite sent at 40 ms goes at once
        assert!(!q.sent("b", ms(30)));
        assert_eq!(offer_at(&mut q, "b", "2", ms(40)), Offer::Queued);
        assert_eq!(next(&mut q, ms(40)), Some(("b".into(), "2".into())));
    }

    #[test]
    fn a_key_written_again_soon_after_its_request_ended_is_parked_for_the_rest_of_the_interval() {
        let mut q = queue_with_interval(25);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        offer_at(&mut q, "a", "1", t0);
        next(&mut q, t0).unwrap();
        assert!(!q.sent("a", ms(10)), "nothing newer: the key is forgotten");
        assert_eq!(offer_at(&mut q, "a", "2", ms(12)), Offer::Parked);
        assert_eq!(next(&mut q, ms(12)), None);
        assert_eq!(next(&mut q, ms(25)), Some(("a".into(), "2".into())));
        // with the key answered and nothing newer for longer than the interval, it is forgotten
        q.sent("a", ms(30));
        assert_eq!(offer_at(&mut q, "a", "3", ms(60)), Offer::Queued);
    }

    #[test]
    fn a_retry_waits_for_the_interval_too() {
        let mut q = queue_with_interval(25);
        let t0 = Instant::now();
        offer_at(&mut q, "a", "1", t0);
        next(&mut q, t0).unwrap();
        let now = t0 + Duration::from_millis(5);
        let r = q.failed("a", now, true, |_| Duration::from_millis(1));
        assert_eq!(
            r,
            AfterFailure::Retry {
                retry: 1,
                delay: Duration::from_millis(20)
            }
        );
        q.check();
        assert_eq!(q.next_parked_at(), Some(t0 + Duration::from_millis(25)));
    }

    #[test]
    fn retry_parks_the_key_and_a_newer_content_replaces_the_failed_one() {
        let mut q = queue(8);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        next(&mut q, t0).unwrap();
        let r = q.failed("a", t0, true, |n| Duration::from_millis(100 * n as u64));
        assert_eq!(
            r,
            AfterFailure::Retry {
                retry: 1,
                delay: Duration::from_millis(100)
            }
        );
        q.check();
        assert_eq!(next(&mut q, t0), None, "parked until its time");
        assert_eq!(q.next_parked_at(), Some(t0 + Duration::from_millis(100)));
        offer(&mut q, "a", "2"); // keeps coalescing while it waits
        assert_eq!(next(&mut q, t0 + Duration::from_millis(99)), None);
        assert_eq!(
            next(&mut q, t0 + Duration::from_millis(100)),
            Some(("a".into(), "2".into()))
        );
        q.sent("a", Instant::now());
        q.check();
        assert_eq!(q.counts().coalesced, 1);
        assert_eq!(q.counts().sent, 1);
    }

    #[test]
    fn a_retried_key_goes_before_later_keys() {
        let mut q = queue(1);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        next(&mut q, t0).unwrap();
        offer(&mut q, "b", "1");
        q.failed("a", t0, true, |_| Duration::ZERO);
        assert_eq!(next(&mut q, t0).unwrap().0, "a");
    }

    #[test]
    fn retries_are_bounded_and_reset_on_success() {
        let mut q = queue(8);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        for retry in 1..=3 {
            next(&mut q, t0).unwrap();
            assert_eq!(
                q.failed("a", t0, true, |_| Duration::ZERO),
                AfterFailure::Retry {
                    retry,
                    delay: Duration::ZERO
                }
            );
        }
        next(&mut q, t0).unwrap();
        assert_eq!(
            q.failed("a", t0, true, |_| Duration::ZERO),
            AfterFailure::Dropped { exhausted: true }
        );
        q.check();
        assert_eq!(q.counts().dropped, 1);
        assert_eq!(q.pending_keys(), 0);
        // a later write starts afresh
        offer(&mut q, "a", "2");
        next(&mut q, t0).unwrap();
        assert_eq!(
            q.failed("a", t0, true, |_| Duration::ZERO),
            AfterFailure::Retry {
                retry: 1,
                delay: Duration::ZERO
            }
        );
    }

    #[test]
    fn a_rejected_content_is_dropped_and_the_newer_one_still_goes() {
        let mut q = queue(8);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        next(&mut q, t0).unwrap();
        offer(&mut q, "a", "2");
        assert_eq!(
            q.failed("a", t0, false, |_| unreachable!()),
            AfterFailure::Dropped { exhausted: false }
        );
        assert_eq!(next(&mut q, t0), Some(("a".into(), "2".into())));
    }

    #[test]
    fn purge_drops_pending_and_cancels_retries_of_flights() {
        let mut q = queue(8);
        let t0 = Instant::now();
        q.offer("s1/a", "s1", Arc::from("1"), Instant::now).unwrap();
        q.offer("s1/b", "s1", Arc::from("1"), Instant::now).unwrap();
        q.offer("s2/a", "s2", Arc::from("1"), Instant::now).unwrap();
        let d = q.next_dispatch(t0).unwrap();
        assert_eq!(&*d.key, "s1/a");
        q.offer("s1/a", "s1", Arc::from("2"), Instant::now).unwrap();
        assert_eq!(q.in_flight_of("s1"), 1);
        assert_eq!(q.purge_session("s1"), 2);
        q.check();
        assert_eq!(
            q.failed("s1/a", t0, true, |_| Duration::ZERO),
            AfterFailure::Dropped { exhausted: false }
        );
        q.check();
        assert_eq!(q.in_flight_of("s1"), 0);
        assert_eq!(next(&mut q, t0), Some(("s2/a".into(), "1".into())));
        assert_eq!(next(&mut q, t0), None);
    }

    #[test]
    fn pending_bytes_are_bounded() {
        let mut q = Queue::new(Limits {
            concurrency: 1,
            max_retries: 0,
            max_pending_bytes: 10,
            min_interval: Duration::ZERO,
        });
        q.offer("a", "s", Arc::from("123456"), Instant::now)
            .unwrap();
        let full = q
            .offer("b", "s", Arc::from("123456"), Instant::now)
            .unwrap_err();
        assert_eq!(
            full,
            QueueFull {
                pending_bytes: 6,
                limit: 10
            }
        );
        // replacing a's content only counts the difference
        q.offer("a", "s", Arc::from("1234567890"), Instant::now)
            .unwrap();
        q.check();
        assert_eq!(q.counts().queued, 2);
        // in flight content is not pending
        q.next_dispatch(Instant::now()).unwrap();
        q.offer("b", "s", Arc::from("123456"), Instant::now)
            .unwrap();
        q.check();
    }

    #[test]
    fn a_flush_mark_survives_coalescing_and_retries() {
        let mut q = queue(8);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        let mark = q.last_seq();
        offer(&mut q, "a", "2"); // rewritten after the flush began: still owed
        assert!(q.holds_up_to(mark));
        next(&mut q, t0).unwrap();
        offer(&mut q, "a", "3");
        q.failed("a", t0, true, |_| Duration::ZERO);
        q.check();
        assert!(
            q.holds_up_to(mark),
            "the retried content still covers the first write"
        );
        assert_eq!(next(&mut q, t0), Some(("a".into(), "3".into())));
        q.sent("a", Instant::now());
        assert!(!q.holds_up_to(mark));
    }

    #[test]
    fn flush_marks_and_drain() {
        let mut q = queue(8);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        let mark = q.last_seq();
        assert!(q.holds_up_to(mark));
        next(&mut q, t0).unwrap();
        offer(&mut q, "b", "1");
        assert!(q.holds_up_to(mark));
        q.sent("a", Instant::now());
        assert!(!q.holds_up_to(mark), "later writes do not hold a flush");
        assert!(q.holds_up_to(q.last_seq()));
        assert_eq!(q.drain(), 1);
        q.check();
        assert!(!q.holds_up_to(u64::MAX));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;
        use std::collections::HashMap;

        #[derive(Debug, Clone)]
        enum Op {
            Write(u8),
            Dispatch,
            /// Complete the i-th request under way: 0 success, 1 retryable failure, 2 rejection.
            Complete(usize, u8),
            Tick(u16),
        }

        fn op(fatal: bool) -> impl Strategy<Value = Op> {
            let outcome = if fatal { 0u8..3 } else { 0u8..2 };
            prop_oneof![
                4 => (0u8..6).prop_map(Op::Write),
                3 => Just(Op::Dispatch),
                3 => (0usize..8, outcome).prop_map(|(i, o)| Op::Complete(i, o)),
                1 => (0u16..500).prop_map(Op::Tick),
            ]
        }

        struct Run {
            q: Queue,
            now: Instant,
            flying: Vec<Dispatch>,
            /// When each key's latest request started.
            started: HashMap<String, Instant>,
            /// What the service received, per key, in order.
            service: HashMap<String, Vec<u64>>,
            written: HashMap<String, u64>,
            next_value: u64,
        }

        impl Run {
            fn new(concurrency: usize, max_retries: u32, min_interval_ms: u64) -> Run {
                Run {
                    q: Queue::new(Limits {
                        concurrency,
                        max_retries,
                        max_pending_bytes: usize::MAX,
                        min_interval: Duration::from_millis(min_interval_ms),
                    }),
                    now: Instant::now(),
                    started: HashMap::new(),
                    flying: Vec::new(),
                    service: HashMap::new(),
                    written: HashMap::new(),
                    next_value: 0,
                }
            }

            fn apply(&mut self, op: &Op) {
                match *op {
                    Op::Write(k) => {
                        self.next_value += 1;
                        let key = format!("session/part/s{}/m/{k}", k % 2);
                        self.q
                            .offer(
                                &key,
                                &format!("s{}", k % 2),
                                Arc::from(self.next_value.to_string()),
                                || self.now,
                            )
                            .unwrap();
                        self.written.insert(key, self.next_value);
                    }
                    Op::Dispatch => {
                        if let Some(d) = self.q.next_dispatch(self.now) {
                            assert!(
                                !self.flying.iter().any(|f| f.key == d.key),
                                "two requests in flight for {}",
                                d.key
                            );
                            self.start(&d);
                            self.flying.push(d);
                        }
                        assert!(self.flying.len() <= self.q.limits.concurrency);
                    }
                    Op::Complete(i, outcome) => {
                        if self.flying.is_empty() {
                            return;
                        }
                        let d = self.flying.remove(i % self.flying.len());
                        match outcome {
                            0 => {
                                self.service
                                    .entry(d.key.to_string())
                                    .or_default()
                                    .push(d.content.parse().unwrap());
                                self.q.sent(&d.key, self.now);
                            }
                            1 => {
                                self.q.failed(&d.key, self.now, true, |n| {
                                    Duration::from_millis(10 * n as u64)
                                });
                            }
                            _ => {
                                self.q.failed(&d.key, self.now, false, |_| Duration::ZERO);
                            }
                        }
                    }
                    Op::Tick(ms) => self.now += Duration::from_millis(ms as u64),
                }
                self.q.check();
                assert_eq!(self.q.in_flight(), self.flying.len());
            }

            /// Checks the interval since the key's last request, and notes this one's start.
            fn start(&mut self, d: &Dispatch) {
                if let Some(&last) = self.started.get(&*d.key) {
                    assert!(
                        self.now - last >= self.q.limits.min_interval,
                        "{} started again after {:?}",
                        d.key,
                        self.now - last
                    );
                }
                self.started.insert(d.key.to_string(), self.now);
            }

            /// Lets the service answer everything until the queue is empty (bounded).
            fn settle(&mut self) {
                for _ in 0..10_000 {
                    while let Some(d) = self.q.next_dispatch(self.now) {
                        self.start(&d);
                        self.flying.push(d);
                    }
                    if self.flying.is_empty() && self.q.next_parked_at().is_none() {
                        break;
                    }
                    for d in std::mem::take(&mut self.flying) {
                        self.service
                            .entry(d.key.to_string())
                            .or_default()
                            .push(d.content.parse().unwrap());
                        self.q.sent(&d.key, self.now);
                    }
                    self.now += Duration::from_secs(3600);
                    self.q.check();
                }
                assert_eq!(self.q.pending_keys(), 0);
                assert!(!self.q.holds_up_to(u64::MAX));
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

            /// Retryable failures only: the service ends with the newest content of every key,
            /// each key's contents arrive in write order, and a key never has two requests out.
            #[test]
            fn newest_content_wins_in_write_order(
                concurrency in 1usize..4,
                min_interval_ms in prop_oneof![Just(0u64), 1u64..300],
                ops in proptest::collection::vec(op(false), 1..200),
            ) {
                let mut run = Run::new(concurrency, u32::MAX, min_interval_ms);
                for op in &ops {
                    run.apply(op);
                }
                run.settle();
                for (key, newest) in &run.written {
                    let got = &run.service[key];
                    prop_assert_eq!(got.last(), Some(newest), "key {}", key);
                    prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order for {}: {:?}", key, got);
                }
                let c = run.q.counts();
                prop_assert_eq!(c.queued, c.sent + c.coalesced + c.dropped);
                prop_assert_eq!(c.dropped, 0);
            }

            /// With rejections and a small retry budget: the bookkeeping stays exact and every
            /// content ends sent, coalesced or dropped.
            #[test]
            fn every_content_is_accounted_for(
                concurrency in 1usize..4,
                max_retries in 0u32..3,
                min_interval_ms in prop_oneof![Just(0u64), 1u64..300],
                ops in proptest::collection::vec(op(true), 1..200),
            ) {
                let mut run = Run::new(concurrency, max_retries, min_interval_ms);
                for op in &ops {
                    run.apply(op);
                }
                run.settle();
                let c = run.q.counts();
                prop_assert_eq!(c.queued, c.sent + c.coalesced + c.dropped);
                prop_assert_eq!(c.sent as usize, run.service.values().map(Vec::len).sum::<usize>());
                for got in run.service.values() {
                    prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
                }
            }
        }
    }
}
