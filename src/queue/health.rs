//! Share health: answers of 500 in a row, refusal (a refused share's keys held, one probe at a
//! time), and resumption when a request of the share succeeds.

use std::sync::Arc;
use std::time::Instant;

use super::{Health, Queue};

impl Queue {
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

    /// Puts the pending content of `key` (of a refused share, not ready nor parked nor
    /// outstanding) in its share's held set; schedules a probe if none is due.
    pub(super) fn hold(&mut self, key: &Arc<str>, now: impl FnOnce() -> Instant) {
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
    pub(super) fn refuse(&mut self, session: &Arc<str>, now: Instant) {
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
    pub(super) fn resume(&mut self, session: &Arc<str>, health: Health, now: Instant) {
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
    pub(super) fn schedule_probe(&mut self, session: &Arc<str>, at: Instant) {
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
    pub(super) fn make_probe(&mut self, session: &Arc<str>, now: Instant) {
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

    /// An answer of 500 for the share of `session`, to a request started when `started`
    /// 500s had been counted: one more in a row unless the request started before the share's
    /// previous counted 500 came back (the same burst). True if it made the share refused.
    pub(super) fn count_refusal(&mut self, session: &Arc<str>, started: u64, now: Instant) -> bool {
        let (successes, max) = (self.successes, self.limits.max_retries);
        let h = self.health.entry(session.clone()).or_default();
        if h.streak > 0 && started < h.counted_at {
            return false; // under way when the previous 500 came back: the same burst
        }
        if h.streak == 0 {
            h.streak_epoch = successes;
        }
        h.streak = h.streak.saturating_add(1);
        self.counted_500s += 1;
        h.counted_at = self.counted_500s;
        if h.refused || h.streak < max {
            return false;
        }
        self.refuse(session, now);
        true
    }

    /// The probe of `session`'s share failed: the next one is scheduled if it is still refused.
    pub(super) fn probe_failed(&mut self, session: &Arc<str>, now: Instant) {
        if let Some(h) = self.health.get_mut(session) {
            h.probe_mark = None;
            if h.refused {
                self.schedule_probe(session, now + self.limits.probe_interval);
            }
        }
    }
}
