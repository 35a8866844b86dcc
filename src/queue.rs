//! The coalescing queue: the newest unsent content of each key, dispatched in the order of each
//! key's first unsent write, at most one request per key and `concurrency` in all, with failed
//! keys parked until their retry time. Pure state: the runtime wraps it in a mutex and supplies
//! the clock, so unit and property tests drive it directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The queue's bounds, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub concurrency: usize,
    pub max_retries: u32,
    pub max_pending_bytes: usize,
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

#[derive(Debug)]
struct Content {
    seq: u64,
    text: Arc<str>,
}

#[derive(Debug)]
struct Entry {
    key: Arc<str>,
    session: Arc<str>,
    /// Newest content not yet handed to a request.
    pending: Option<Content>,
    /// Content of the request under way.
    in_flight: Option<Content>,
    /// Order among keys: the sequence number of the first write not yet sent.
    position: u64,
    /// Set while the key waits for a retry.
    retry_at: Option<Instant>,
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
    /// Keys waiting for a retry, by (retry time, position).
    waiting: BTreeMap<(Instant, u64), Arc<str>>,
    /// Sequence numbers of every content pending or in flight (for flush).
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
    pub fn offer(&mut self, key: &str, session: &str, text: Arc<str>) -> Result<Offer, QueueFull> {
        let waiting_len = self.entries.get(key).and_then(|e| e.pending.as_ref()).map_or(0, |c| c.text.len());
        let after = self.pending_bytes - waiting_len + text.len();
        if after > self.limits.max_pending_bytes {
            return Err(QueueFull { pending_bytes: self.pending_bytes, limit: self.limits.max_pending_bytes });
        }
        self.last_seq += 1;
        let seq = self.last_seq;
        self.counts.queued += 1;
        self.outstanding.insert(seq);
        self.pending_bytes = after;
        let content = Content { seq, text };
        let Some(entry) = self.entries.get_mut(key) else {
            let key: Arc<str> = Arc::from(key);
            self.ready.insert(seq, key.clone());
            self.pending_keys += 1;
            self.entries.insert(key.clone(), Entry {
                key,
                session: Arc::from(session),
                pending: Some(content),
                in_flight: None,
                position: seq,
                retry_at: None,
                attempts: 0,
                cancelled: false,
            });
            return Ok(Offer::Queued);
        };
        match entry.pending.replace(content) {
            Some(old) => {
                self.outstanding.remove(&old.seq);
                self.counts.coalesced += 1;
                Ok(Offer::Coalesced)
            }
            None => {
                // the key is in flight (an idle key has no entry): it goes out again afterwards
                entry.position = seq;
                self.pending_keys += 1;
                if entry.in_flight.is_none() && entry.retry_at.is_none() {
                    self.ready.insert(seq, entry.key.clone());
                }
                Ok(Offer::Queued)
            }
        }
    }

    /// The next request to make, if a key is ready and fewer than `concurrency` are under way.
    /// Keys whose retry time has come are made ready first.
    pub fn next_dispatch(&mut self, now: Instant) -> Option<Dispatch> {
        self.wake_due(now);
        if self.in_flight >= self.limits.concurrency {
            return None;
        }
        let (_, key) = self.ready.pop_first()?;
        let entry = self.entries.get_mut(&key).expect("ready keys have an entry");
        let content = entry.pending.take().expect("ready keys have pending content");
        self.pending_keys -= 1;
        self.pending_bytes -= content.text.len();
        let text = content.text.clone();
        entry.in_flight = Some(content);
        self.in_flight += 1;
        *self.flights.entry(entry.session.clone()).or_insert(0) += 1;
        Some(Dispatch { key, session: entry.session.clone(), content: text })
    }

    /// The request for `key` succeeded.
    pub fn sent(&mut self, key: &str) {
        let Some(content) = self.land(key) else { return };
        self.counts.sent += 1;
        self.outstanding.remove(&content.seq);
        let entry = self.entries.get_mut(key).expect("landed keys have an entry");
        entry.attempts = 0;
        self.requeue_or_forget(key);
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
        let Some(content) = self.land(key) else { return AfterFailure::Dropped { exhausted: false } };
        self.counts.failed += 1;
        let entry = self.entries.get_mut(key).expect("landed keys have an entry");
        entry.attempts += 1;
        let exhausted = entry.attempts > self.limits.max_retries;
        if !retryable || exhausted || entry.cancelled {
            entry.attempts = 0;
            self.counts.dropped += 1;
            self.outstanding.remove(&content.seq);
            self.requeue_or_forget(key);
            return AfterFailure::Dropped { exhausted: retryable && exhausted };
        }
        let retry = entry.attempts;
        self.counts.retried += 1;
        if entry.pending.is_some() {
            self.counts.coalesced += 1; // the newer content replaces the failed one
            self.outstanding.remove(&content.seq);
        } else {
            self.pending_keys += 1;
            self.pending_bytes += content.text.len();
            entry.pending = Some(Content { seq: content.seq, text: content.text });
        }
        // it had unsent data since the failed write: it goes before later keys
        entry.position = content.seq;
        let delay = delay(retry);
        let at = now + delay;
        entry.retry_at = Some(at);
        self.waiting.insert((at, content.seq), entry.key.clone());
        AfterFailure::Retry { retry, delay }
    }

    /// Drops every pending content of `session` and cancels retries of its requests under way;
    /// returns how many contents were dropped.
    pub fn purge_session(&mut self, session: &str) -> u64 {
        let keys: Vec<Arc<str>> =
            self.entries.iter().filter(|(_, e)| &*e.session == session).map(|(k, _)| k.clone()).collect();
        let mut dropped = 0;
        for key in keys {
            let entry = self.entries.get_mut(&key).expect("listed");
            if let Some(content) = entry.pending.take() {
                dropped += 1;
                self.pending_keys -= 1;
                self.pending_bytes -= content.text.len();
                self.outstanding.remove(&content.seq);
                match entry.retry_at.take() {
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
        let left = self.outstanding.len() as u64;
        self.counts.dropped += left;
        let (limits, counts) = (self.limits, self.counts);
        *self = Queue::new(limits);
        self.counts = counts;
        left
    }

    /// Makes ready every parked key whose retry time has come.
    pub fn wake_due(&mut self, now: Instant) {
        while let Some(entry) = self.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, position), key) = entry.remove_entry();
            if let Some(e) = self.entries.get_mut(&key) {
                e.retry_at = None;
            }
            self.ready.insert(position, key);
        }
    }

    /// When the earliest parked key may be retried.
    pub fn next_retry_at(&self) -> Option<Instant> {
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

    /// Ends the request of `key`: returns its content, or None if there was none (the queue
    /// was drained meanwhile).
    fn land(&mut self, key: &str) -> Option<Content> {
        let entry = self.entries.get_mut(key)?;
        let content = entry.in_flight.take()?;
        self.in_flight -= 1;
        if let Some(n) = self.flights.get_mut(&entry.session) {
            *n -= 1;
            if *n == 0 {
                self.flights.remove(&entry.session);
            }
        }
        Some(content)
    }

    /// After a request ended for good: queue the key's newer content, or forget the key.
    fn requeue_or_forget(&mut self, key: &str) {
        let entry = self.entries.get_mut(key).expect("entry");
        entry.cancelled = false;
        if entry.pending.is_some() {
            self.ready.insert(entry.position, entry.key.clone());
        } else {
            self.entries.remove(key);
        }
    }

    /// Checks the internal bookkeeping against a recount (tests only).
    #[cfg(test)]
    pub fn check(&self) {
        let pending: Vec<_> = self.entries.values().filter_map(|e| e.pending.as_ref()).collect();
        assert_eq!(pending.len(), self.pending_keys);
        assert_eq!(pending.iter().map(|c| c.text.len()).sum::<usize>(), self.pending_bytes);
        let flying = self.entries.values().filter(|e| e.in_flight.is_some()).count();
        assert_eq!(flying, self.in_flight);
        assert!(self.in_flight <= self.limits.concurrency);
        assert_eq!(self.flights.values().sum::<usize>(), self.in_flight);
        assert_eq!(self.outstanding.len(), pending.len() + flying);
        for (k, e) in &self.entries {
            assert!(e.pending.is_some() || e.in_flight.is_some(), "idle entry {k} kept");
            let ready = e.pending.is_some() && e.in_flight.is_none() && e.retry_at.is_none();
            assert_eq!(self.ready.get(&e.position) == Some(k), ready, "ready set wrong for {k}");
            assert_eq!(e.retry_at.is_some(), self.waiting.values().any(|w| w == k));
        }
        assert_eq!(self.ready.len(), self.entries.values().filter(|e| e.pending.is_some() && e.in_flight.is_none() && e.retry_at.is_none()).count());
        let c = self.counts;
        assert_eq!(c.queued, c.sent + c.coalesced + c.dropped + self.pending_keys as u64 + self.in_flight as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(concurrency: usize) -> Queue {
        Queue::new(Limits { concurrency, max_retries: 3, max_pending_bytes: 1 << 20 })
    }

    fn offer(q: &mut Queue, key: &str, text: &str) -> Offer {
        let r = q.offer(key, "ses", Arc::from(text)).unwrap();
        q.check();
        r
    }

    fn next(q: &mut Queue, now: Instant) -> Option<(String, String)> {
        let d = q.next_dispatch(now).map(|d| (d.key.to_string(), d.content.to_string()));
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
        q.sent("a");
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
        q.sent("k");
        assert_eq!(next(&mut q, now), Some(("k".into(), "2".into())));
        q.sent("k");
        assert_eq!(next(&mut q, now), Some(("j".into(), "1".into())));
    }

    #[test]
    fn retry_parks_the_key_and_a_newer_content_replaces_the_failed_one() {
        let mut q = queue(8);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        next(&mut q, t0).unwrap();
        let r = q.failed("a", t0, true, |n| Duration::from_millis(100 * n as u64));
        assert_eq!(r, AfterFailure::Retry { retry: 1, delay: Duration::from_millis(100) });
        q.check();
        assert_eq!(next(&mut q, t0), None, "parked until its time");
        assert_eq!(q.next_retry_at(), Some(t0 + Duration::from_millis(100)));
        offer(&mut q, "a", "2"); // keeps coalescing while it waits
        assert_eq!(next(&mut q, t0 + Duration::from_millis(99)), None);
        assert_eq!(next(&mut q, t0 + Duration::from_millis(100)), Some(("a".into(), "2".into())));
        q.sent("a");
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
            assert_eq!(q.failed("a", t0, true, |_| Duration::ZERO), AfterFailure::Retry { retry, delay: Duration::ZERO });
        }
        next(&mut q, t0).unwrap();
        assert_eq!(q.failed("a", t0, true, |_| Duration::ZERO), AfterFailure::Dropped { exhausted: true });
        q.check();
        assert_eq!(q.counts().dropped, 1);
        assert_eq!(q.pending_keys(), 0);
        // a later write starts afresh
        offer(&mut q, "a", "2");
        next(&mut q, t0).unwrap();
        assert_eq!(q.failed("a", t0, true, |_| Duration::ZERO), AfterFailure::Retry { retry: 1, delay: Duration::ZERO });
    }

    #[test]
    fn a_rejected_content_is_dropped_and_the_newer_one_still_goes() {
        let mut q = queue(8);
        let t0 = Instant::now();
        offer(&mut q, "a", "1");
        next(&mut q, t0).unwrap();
        offer(&mut q, "a", "2");
        assert_eq!(q.failed("a", t0, false, |_| unreachable!()), AfterFailure::Dropped { exhausted: false });
        assert_eq!(next(&mut q, t0), Some(("a".into(), "2".into())));
    }

    #[test]
    fn purge_drops_pending_and_cancels_retries_of_flights() {
        let mut q = queue(8);
        let t0 = Instant::now();
        q.offer("s1/a", "s1", Arc::from("1")).unwrap();
        q.offer("s1/b", "s1", Arc::from("1")).unwrap();
        q.offer("s2/a", "s2", Arc::from("1")).unwrap();
        let d = q.next_dispatch(t0).unwrap();
        assert_eq!(&*d.key, "s1/a");
        q.offer("s1/a", "s1", Arc::from("2")).unwrap();
        assert_eq!(q.in_flight_of("s1"), 1);
        assert_eq!(q.purge_session("s1"), 2);
        q.check();
        assert_eq!(q.failed("s1/a", t0, true, |_| Duration::ZERO), AfterFailure::Dropped { exhausted: false });
        q.check();
        assert_eq!(q.in_flight_of("s1"), 0);
        assert_eq!(next(&mut q, t0), Some(("s2/a".into(), "1".into())));
        assert_eq!(next(&mut q, t0), None);
    }

    #[test]
    fn pending_bytes_are_bounded() {
        let mut q = Queue::new(Limits { concurrency: 1, max_retries: 0, max_pending_bytes: 10 });
        q.offer("a", "s", Arc::from("123456")).unwrap();
        let full = q.offer("b", "s", Arc::from("123456")).unwrap_err();
        assert_eq!(full, QueueFull { pending_bytes: 6, limit: 10 });
        // replacing a's content only counts the difference
        q.offer("a", "s", Arc::from("1234567890")).unwrap();
        q.check();
        assert_eq!(q.counts().queued, 2);
        // in flight content is not pending
        q.next_dispatch(Instant::now()).unwrap();
        q.offer("b", "s", Arc::from("123456")).unwrap();
        q.check();
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
        q.sent("a");
        assert!(!q.holds_up_to(mark), "later writes do not hold a flush");
        assert!(q.holds_up_to(q.last_seq()));
        assert_eq!(q.drain(), 1);
        q.check();
        assert!(!q.holds_up_to(u64::MAX));
    }
}
