//! Settling a request's answer into the queue (success, failure per kind), and dropping a
//! session's or everything's work (remove, unshare, shutdown).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{AfterFailure, AfterSuccess, Cancel, Dropped, Failure, Flight, Queue};

impl Queue {
    /// The request for `key` succeeded: its share is healthy (resumed if it was refused), and
    /// every key parked by an outage may go now.
    pub fn sent(&mut self, key: &str, now: Instant) -> AfterSuccess {
        let Some(flight) = self.land(key) else {
            return AfterSuccess::default();
        };
        self.counts.sent += 1;
        self.successes += 1;
        let recovered = self.service_up(now);
        if !flight.probe {
            self.outstanding.remove(&flight.mark);
        }
        let entry = self
            .entries
            .get_mut(key)
            .expect("landed keys have an entry");
        entry.attempts = 0;
        let session = entry.session.clone();
        let mut after = AfterSuccess {
            wake_timer: recovered,
            ..AfterSuccess::default()
        };
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
        let mut service_probe = false;
        for (n, key) in keys.iter().enumerate() {
            let Some(flight) = self.land(key) else {
                continue; // drained meanwhile
            };
            service_probe |= flight.service_probe;
            self.counts.failed += 1;
            let entry = &self.entries[*key];
            session.get_or_insert_with(|| entry.session.clone());
            if failure == Failure::Final || entry.cancelled.is_some() {
                results[n] = self.drop_failed(key, &flight, now);
            } else {
                retried.push((n, self.keep_failed(key, &flight), flight));
            }
        }
        let Some(session) = session.filter(|_| !retried.is_empty()) else {
            if service_probe {
                self.probe_ended();
            }
            return results;
        };
        let started = retried
            .iter()
            .map(|(_, _, f)| f.refusal_epoch)
            .max()
            .unwrap_or(0);
        let mut newly = failure == Failure::Refusal && self.count_refusal(&session, started, now);
        if retried.iter().any(|(_, _, f)| f.probe) {
            self.probe_failed(&session, now);
        }
        let attempts = retried
            .iter()
            .map(|(_, k, _)| self.entries[k].attempts)
            .max()
            .unwrap_or(1);
        let attempts = if self.service.down_since.is_some() {
            // while the service fails, its probes back off together
            attempts.max(self.service.failures.saturating_add(1))
        } else {
            attempts
        };
        let wait = delay(attempts);
        self.service_failed(service_probe, failure, wait, now);
        let refused = self.is_refused(&session);
        for (n, key, flight) in retried {
            results[n] = if refused {
                if !flight.probe {
                    self.outstanding.remove(&flight.mark);
                }
                self.hold(&key, || now);
                AfterFailure::Held {
                    newly: std::mem::take(&mut newly),
                }
            } else {
                self.park_retry(key, &flight, failure, now + wait, now)
            };
        }
        results
    }

    /// A failed request's key that will not be retried (final, or its session purged): the
    /// content is dropped, and the key's newer content goes on.
    fn drop_failed(&mut self, key: &str, flight: &Flight, now: Instant) -> AfterFailure {
        let entry = self
            .entries
            .get_mut(key)
            .expect("landed keys have an entry");
        entry.attempts = 0;
        let given_up = entry.cancelled != Some(Cancel::Removed);
        let session = entry.session.clone();
        self.counts.dropped += 1;
        if given_up {
            self.note_given_up(flight.mark);
        }
        self.land_mark(&session, flight, now);
        self.requeue_or_forget(key, now);
        AfterFailure::Dropped { given_up }
    }

    /// A failed request's key that will be retried: it keeps its newest content (the failed
    /// one, unless a newer one arrived meanwhile), at the failed request's position.
    fn keep_failed(&mut self, key: &str, flight: &Flight) -> Arc<str> {
        let entry = self
            .entries
            .get_mut(key)
            .expect("landed keys have an entry");
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
        entry.key.clone()
    }

    /// Parks a retried key of a share that is not refused until `at` (or its interval's end).
    fn park_retry(
        &mut self,
        key: Arc<str>,
        flight: &Flight,
        failure: Failure,
        at: Instant,
        now: Instant,
    ) -> AfterFailure {
        if flight.probe {
            // a probe whose share resumed meanwhile: flushes wait for it again
            self.outstanding.insert(flight.mark);
        }
        let retry = self.entries[&key].attempts;
        let at = at.max(self.earliest_start(&key).unwrap_or(now));
        self.park(key, flight.mark, at);
        if failure == Failure::Outage && flight.epoch == self.successes {
            self.wakeable.insert((at, flight.mark));
        }
        AfterFailure::Retry {
            retry,
            delay: at - now,
        }
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
    pub fn drain(&mut self) -> (u64, Vec<Dropped>) {
        let left = (self.pending_keys + self.in_flight) as u64;
        let mut keys: Vec<Dropped> = self
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

    /// Ends the request of `key`: returns it, or None if there was none (the queue
    /// was drained meanwhile).
    pub(super) fn land(&mut self, key: &str) -> Option<Flight> {
        let entry = self.entries.get_mut(key)?;
        let flight = entry.in_flight.take()?;
        self.in_flight -= 1;
        self.ready.land(&entry.session);
        Some(flight)
    }

    /// After a request ended for good: queue the key's newer content, or forget the key. True
    /// if the newer content is parked until the key's interval has passed.
    pub(super) fn requeue_or_forget(&mut self, key: &str, now: Instant) -> bool {
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
}
