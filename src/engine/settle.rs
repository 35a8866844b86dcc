//! Dispatch and settling: a worker takes the next request here, and brings back how it ended;
//! the one answer is settled for every item the request carried, per verdict:
//! - 2xx: sent (`synced` events; an `Ack` of the newest write delivered is journaled); keys
//!   parked by an outage wake, a refused share resumes (`resumed`).
//! - network error, 408, 429, 5xx: the keys are parked with one jittered backoff (`retry`
//!   events) while new writes keep coalescing into them; the `max_retries`-th 500 in a row of a
//!   share makes it refused (`refused`: its keys held, one probe per `retry_max_ms`).
//! - 401/403/404: the contents are given up and, if the share is still the one the request
//!   used, it is forgotten with the session's work (`unshared`; a `Remove` journaled).
//! - other 4xx, or not sent (unsafe, too large, a panic): the content is dropped (`dropped`; a
//!   `Dropped` journaled).
//!
//! A key re-written meanwhile goes out next, in write order, once `min_interval` has passed
//! since its previous request started. Then waiters are told to look again and asynchronous
//! flushes whose marks are passed complete (flushes.rs).
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Effects, Engine, Outcome};
use crate::events::{Event, Reason};
use crate::queue::{AfterFailure, Dispatch, Failure, Item};
use crate::registry::Share;
use crate::retry::{self, Attempt, Verdict};
use crate::spool::Record;

/// A request for a worker: its items, its share as it is now, and per item the base of an
/// append (the content the service last acknowledged), if one is kept.
pub struct Next {
    pub dispatch: Dispatch,
    pub share: Option<Share>,
    pub bases: Vec<Option<Arc<str>>>,
}

/// What kind of failure an answer is, for the queue's per-key and per-share bookkeeping.
fn failure_kind(attempt: &Attempt, after: Option<Duration>) -> Failure {
    if retry::refusal_evidence(attempt) {
        Failure::Refusal
    } else if after.is_some() || matches!(attempt, Attempt::Answered { status: 429, .. }) {
        Failure::Busy
    } else {
        Failure::Outage
    }
}

/// One answer as the events tell it: the status, or the error's words.
struct Told<'a> {
    session: &'a Arc<str>,
    status: Option<u16>,
    error: Option<String>,
}

impl Told<'_> {
    fn failed(&self, key: &str) -> Event {
        Event::Failed {
            key: key.into(),
            status: self.status,
            error: self.error.clone(),
        }
    }

    fn dropped(&self, key: &str, reason: Reason) -> Event {
        Event::Dropped {
            reason,
            key: Some(key.into()),
            session: Some(self.session.clone()),
            count: 1,
            bytes: None,
            error: None,
        }
    }
}

impl Engine {
    /// The next request for a worker holding a sync token, with its share as it is now and,
    /// per item, the content the service last acknowledged (taken out: see `acked.rs`); None
    /// (and the token given back) if no request can start.
    pub fn next_dispatch(&mut self, now: Instant) -> Option<Next> {
        let Some(dispatch) = self.queue.next_dispatch(now) else {
            self.sync_workers = self.sync_workers.saturating_sub(1);
            return None;
        };
        let share = self.registry.get(&dispatch.session).cloned();
        let bases = dispatch
            .items
            .iter()
            .map(|i| self.acked.take(&i.key))
            .collect();
        Some(Next {
            dispatch,
            share,
            bases,
        })
    }

    /// Settles one request's outcome; `share` is the one the request was made with.
    pub fn settle(
        &mut self,
        dispatch: &Dispatch,
        share: Option<&Share>,
        outcome: Outcome,
        now: Instant,
        fx: &mut Effects,
    ) {
        if self.closed {
            return; // shutdown drained and counted this request already
        }
        for (n, rules, count) in outcome.redacted {
            self.counters.redacted += count as u64;
            let key = dispatch.items[n].key.clone();
            let count = count as u64;
            fx.emit([Event::Redacted { key, rules, count }]);
        }
        for (n, reason, why) in outcome.not_sent {
            self.drop_unsent(dispatch, n, reason, why, now, fx);
        }
        self.counters.appends += outcome.appended as u64;
        if outcome.append_refused {
            self.counters.append_refusals += 1;
            self.counters.requests += 1; // the refused one; the whole one is counted below
        }
        if let Some(attempt) = outcome.answer {
            self.counters.requests += 1;
            let unchanged = share.is_some() && self.registry.get(&dispatch.session) == share;
            if unchanged && retry::classify(&attempt) == Verdict::Success {
                for (n, text) in outcome.texts {
                    self.acked.record(dispatch.items[n].key.clone(), text);
                }
            }
            let keys: Vec<&str> = outcome
                .sent
                .iter()
                .map(|&n| &*dispatch.items[n].key)
                .collect();
            self.settle_answer(dispatch, share, &keys, attempt, now, fx);
        }
        self.settled(now, fx);
        fx.tokens = self.claim_workers();
    }

    /// An item dropped without a request (unsafe, too large, a panic): counted and named.
    fn drop_unsent(
        &mut self,
        dispatch: &Dispatch,
        n: usize,
        reason: Reason,
        why: String,
        now: Instant,
        fx: &mut Effects,
    ) {
        match reason {
            Reason::TooLarge => self.counters.too_large += 1,
            Reason::Panic => self.counters.panics += 1,
            _ => self.counters.unsafe_contents += 1,
        }
        let item = &dispatch.items[n];
        self.journal_items(std::iter::once(item), false);
        self.queue
            .failed(&item.key, now, Failure::Final, |_| Default::default());
        fx.emit([Event::Dropped {
            reason,
            key: Some(item.key.clone()),
            session: Some(dispatch.session.clone()),
            count: 1,
            bytes: None,
            error: Some(why),
        }]);
    }

    /// One answer, settled for every key the request carried.
    fn settle_answer(
        &mut self,
        dispatch: &Dispatch,
        share: Option<&Share>,
        keys: &[&str],
        attempt: Attempt,
        now: Instant,
        fx: &mut Effects,
    ) {
        let (status, error) = match &attempt {
            Attempt::Answered { status, .. } => (Some(*status), None),
            Attempt::Network(e)
            | Attempt::Refused(e)
            | Attempt::BadAnswer(e)
            | Attempt::Panicked(e) => (None, Some(e.clone())),
        };
        let told = Told {
            session: &dispatch.session,
            status,
            error,
        };
        match retry::classify(&attempt) {
            Verdict::Success => self.delivered_keys(dispatch, keys, &told, now, fx),
            Verdict::Retry { after } => {
                let kind = failure_kind(&attempt, after);
                self.retry_keys(keys, kind, after, &told, now, fx);
            }
            Verdict::Unshared => self.unshared(dispatch, share, keys, &told, now, fx),
            Verdict::Reject | Verdict::Bug => {
                self.journal_items(items(dispatch, keys), false);
                self.queue
                    .failed_batch(keys, now, Failure::Final, |_| Default::default());
                for key in keys {
                    fx.emit([told.failed(key), told.dropped(key, Reason::Rejected)]);
                }
            }
        }
    }

    /// 2xx: every key is delivered (acknowledged in the journal first); a refused share resumes.
    fn delivered_keys(
        &mut self,
        dispatch: &Dispatch,
        keys: &[&str],
        told: &Told<'_>,
        now: Instant,
        fx: &mut Effects,
    ) {
        self.journal_items(items(dispatch, keys), true);
        if let Some(record) = self.ledger.synced(told.session, now) {
            self.journal.push(record);
        }
        let mut resumed = false;
        for key in keys {
            let after = self.queue.sent(key, now);
            fx.wake_timer |= after.wake_timer;
            resumed |= after.resumed;
            fx.emit([Event::Synced {
                key: (*key).into(),
                status: told.status.unwrap_or(200),
            }]);
        }
        if resumed {
            fx.emit([Event::Resumed {
                session: told.session.clone(),
            }]);
        }
    }

    /// A retryable failure: the keys are parked with one backoff, or held once their share is
    /// refused.
    fn retry_keys(
        &mut self,
        keys: &[&str],
        kind: Failure,
        after: Option<Duration>,
        told: &Told<'_>,
        now: Instant,
        fx: &mut Effects,
    ) {
        let policy = self.policy;
        let results = self
            .queue
            .failed_batch(keys, now, kind, |n| policy.jittered_delay(n, after));
        for (key, result) in keys.iter().zip(results) {
            match result {
                AfterFailure::Retry { retry, delay } => {
                    fx.wake_timer = true;
                    fx.emit([Event::Retry {
                        key: (*key).into(),
                        retry,
                        delay_ms: delay.as_millis() as u64,
                        status: told.status,
                        error: told.error.clone(),
                    }]);
                }
                AfterFailure::Held { newly } => {
                    fx.wake_timer = true;
                    if newly {
                        fx.emit([Event::Refused {
                            session: told.session.clone(),
                            count: policy.max_retries,
                        }]);
                    }
                }
                AfterFailure::Dropped { .. } => {
                    fx.emit([told.failed(key), told.dropped(key, Reason::Removed)]);
                }
            }
        }
    }

    /// 401/403/404: the share is gone; the session's work is dropped and, if the share is
    /// still the one the request used, forgotten (and journaled as removed).
    fn unshared(
        &mut self,
        dispatch: &Dispatch,
        share: Option<&Share>,
        keys: &[&str],
        told: &Told<'_>,
        now: Instant,
        fx: &mut Effects,
    ) {
        let session = told.session;
        // given up: journaled even when the share is not forgotten (it changed meanwhile)
        self.journal_items(items(dispatch, keys), false);
        self.queue
            .failed_batch(keys, now, Failure::Final, |_| Default::default());
        let mut count = keys.len() as u64;
        self.acked.forget_session(session);
        if let Some(share) = share.filter(|s| self.registry.get(session) == Some(*s)) {
            count += self.queue.purge_session(session, true);
            self.registry.remove(session);
            // the ledger keeps it as being removed (sent again after a restart: a 401 or 403
            // may be a service's passing fault) unless the service says it is not there
            for record in self.ledger.removing(session, &share.secret, now) {
                self.journal.push(record);
            }
            if matches!(told.status, Some(404 | 410)) {
                self.deleted(session);
            }
            fx.emit([Event::Unshared {
                session: session.clone(),
                status: told.status.unwrap_or(403),
            }]);
        }
        fx.emit(keys.iter().map(|key| told.failed(key)));
        fx.emit([Event::Dropped {
            reason: Reason::Unshared,
            key: None,
            session: Some(session.clone()),
            count,
            bytes: None,
            error: None,
        }]);
    }

    /// Journals the items' fate: delivered (`Ack`) or given up (`Dropped`), by their newest
    /// write's number.
    fn journal_items<'a>(&mut self, items: impl Iterator<Item = &'a Item>, acked: bool) {
        if !self.journal.is_on() {
            return;
        }
        for item in items {
            let (key, seq) = (item.key.clone(), self.journal.seq(item.seq));
            self.journal.push(if acked {
                Record::Ack { key, seq }
            } else {
                Record::Dropped { key, seq }
            });
        }
    }
}

/// The items of `dispatch` that `keys` name (a subsequence of its items, in their order).
fn items<'a>(dispatch: &'a Dispatch, keys: &'a [&str]) -> impl Iterator<Item = &'a Item> {
    let mut items = dispatch.items.iter();
    keys.iter()
        .filter_map(move |key| items.by_ref().find(|i| &*i.key == *key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted_into_outage_busy_and_refusal() {
        let answered = |status| Attempt::Answered {
            status,
            retry_after: None,
        };
        assert_eq!(failure_kind(&answered(500), None), Failure::Refusal);
        assert_eq!(failure_kind(&answered(503), None), Failure::Outage);
        assert_eq!(failure_kind(&answered(502), None), Failure::Outage);
        assert_eq!(failure_kind(&answered(429), None), Failure::Busy);
        let wait = Some(Duration::from_secs(1));
        assert_eq!(failure_kind(&answered(503), wait), Failure::Busy);
        assert_eq!(
            failure_kind(&Attempt::Network("reset".into()), None),
            Failure::Outage
        );
    }
}
