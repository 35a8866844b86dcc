//! Pacing: keys parked until their retry or until `min_interval` has passed since their last
//! request started, and waking them when their time comes.

use std::sync::Arc;
use std::time::Instant;

use super::Queue;

impl Queue {
    /// Puts a key with pending content and no request under way in the ready set, or parks it
    /// until its interval has passed. True if it is ready.
    pub(super) fn make_ready(
        &mut self,
        key: Arc<str>,
        position: u64,
        now: impl FnOnce() -> Instant,
    ) -> bool {
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

    pub(super) fn park(&mut self, key: Arc<str>, position: u64, at: Instant) {
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.parked_until = Some(at);
        }
        self.waiting.insert((at, position), key);
    }

    /// Makes ready every parked key whose time has come, and the probes of refused shares.
    pub fn wake_due(&mut self, now: Instant) {
        if self.gate_at().is_some_and(|at| at <= now) {
            self.service.gate_at = None;
        }
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
                self.note_ready();
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

    /// When the earliest parked key may go (a retry, the end of an interval, a probe), or the
    /// service's gate opens.
    pub fn next_parked_at(&self) -> Option<Instant> {
        let parked = self.waiting.first_key_value().map(|((at, _), _)| *at);
        let probe = self.probes.first().map(|(at, _)| *at);
        [parked, probe, self.gate_at()].into_iter().flatten().min()
    }

    /// The earliest time `key` may start a request, if it started one within `min_interval`.
    pub(super) fn earliest_start(&self, key: &str) -> Option<Instant> {
        self.starts
            .get(key)
            .map(|&at| at + self.limits.min_interval)
    }

    /// Remembers that a request of `key` starts now, and forgets starts older than the interval.
    pub(super) fn note_start(&mut self, key: &Arc<str>, now: Instant) {
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
}
