//! The worker threads: they drain the one job queue, sending ready requests while they hold a
//! sync token and running asynchronous creates and removes; each answer is settled into the
//! queue, one verdict for every item the request carried.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::messages::Job;
use super::shared::Shared;
use super::spooler; // spool:
use super::state::{Effects, State};
use crate::content;
use crate::events::{Event, Reason};
use crate::http::Answer;
use crate::protocol::Item;
use crate::queue::{AfterFailure, Dispatch, Failure};
use crate::registry::Share;
use crate::retry::{self, Attempt, Verdict};

/// A worker thread's body; `done` is told when it leaves.
pub fn run(shared: Arc<Shared>, jobs: Receiver<Job>, done: Sender<()>) {
    for job in jobs.iter() {
        match job {
            Job::Sync => send_ready(&shared),
            Job::Op(op) => op(), // catches its own panics
            Job::Stop => break,
        }
    }
    let _ = done.send(());
}

/// Sends ready requests, one at a time, until none is ready or `concurrency` are under way;
/// then gives the sync token back.
fn send_ready(shared: &Shared) {
    loop {
        let (dispatch, share) = {
            let mut state = shared.lock();
            let Some(dispatch) = state.queue.next_dispatch(Instant::now()) else {
                state.sync_workers = state.sync_workers.saturating_sub(1);
                return;
            };
            let share = state.registry.get(&dispatch.session).cloned();
            (dispatch, share)
        };
        // spool: its records are in the log first; a shutdown may have come meanwhile, and a
        // request of a stopped runtime must not start (it could land after the next run's)
        if spooler::before_send(shared, &dispatch) && shared.lock().closed {
            continue;
        }
        let outcome = match &share {
            Some(share) => post(shared, &dispatch, share),
            // a purge removes the session's pending keys with its share; kept for safety
            None => Outcome {
                sent: (0..dispatch.items.len()).collect(),
                answer: Some(Err(Attempt::Answered {
                    status: 403,
                    retry_after: None,
                })),
                ..Default::default()
            },
        };
        settle(shared, &dispatch, share.as_ref(), outcome);
    }
}

/// How one dispatched request ended on this worker.
#[derive(Default)]
struct Outcome {
    /// The items (indexes into the dispatch) the request carried.
    sent: Vec<usize>,
    /// The request's answer, if one was made.
    answer: Option<Result<Answer, Attempt>>,
    /// Items not sent: why, as a drop reason and words without the secret.
    not_sent: Vec<(usize, Reason, String)>,
    /// Items sent with credentials redacted: the rules that matched and how many.
    redacted: Vec<(usize, Vec<Arc<str>>, usize)>,
}

/// Makes one request of the dispatch's items, each with its share's secret removed and its
/// credentials redacted (under `redact`). An item
/// that cannot be made safe, or that is over `max_content_bytes` once made safe, is not sent. A
/// panic in here is a bug: the items are dropped with a `panic` event, never retried.
fn post(shared: &Shared, dispatch: &Dispatch, share: &Share) -> Outcome {
    guarded(dispatch.items.len(), || {
        let mut safe = Vec::with_capacity(dispatch.items.len());
        let (mut not_sent, mut redacted) = (Vec::new(), Vec::new());
        for (n, item) in dispatch.items.iter().enumerate() {
            let policy = shared.config.redact.as_deref();
            let text = content::redact(&item.content, &share.secret)
                .and_then(|text| crate::redact::apply(policy, text))
                .map(|(text, rules, count)| {
                    if count > 0 {
                        redacted.push((n, rules, count));
                    }
                    text
                });
            match text {
                Err(e) => not_sent.push((n, Reason::Unsafe, e.message)),
                Ok(text) if text.len() > shared.config.max_content_bytes => not_sent.push((
                    n,
                    Reason::TooLarge,
                    format!(
                        "{} bytes once the secret was removed; max_content_bytes is {}",
                        text.len(),
                        shared.config.max_content_bytes
                    ),
                )),
                Ok(text) => safe.push((n, text)),
            }
        }
        if safe.is_empty() {
            return Outcome {
                sent: Vec::new(),
                answer: None,
                not_sent,
                redacted: Vec::new(),
            };
        }
        let items: Vec<Item<'_>> = safe
            .iter()
            .map(|(n, text)| Item {
                key: &dispatch.items[*n].key,
                content: text,
            })
            .collect();
        let request = shared.protocol.sync(&dispatch.session, share, &items);
        let answer = shared.http.send(request, shared.config.timeout);
        Outcome {
            sent: safe.into_iter().map(|(n, _)| n).collect(),
            answer: Some(answer),
            not_sent,
            redacted,
        }
    })
}

/// Runs `send`, turning a panic into a `panic` drop of all `items`.
fn guarded(items: usize, send: impl FnOnce() -> Outcome) -> Outcome {
    catch_unwind(AssertUnwindSafe(send)).unwrap_or_else(|_| panicked(items))
}

/// Every item dropped as a bug.
fn panicked(items: usize) -> Outcome {
    Outcome {
        sent: Vec::new(),
        answer: None,
        not_sent: (0..items)
            .map(|n| {
                (
                    n,
                    Reason::Panic,
                    "the library panicked while sending (a bug; please report it)".into(),
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// What kind of failure an answer is, for the queue's per-key and per-share bookkeeping.
fn failure_kind(attempt: &Attempt, after: Option<std::time::Duration>) -> Failure {
    if retry::refusal_evidence(attempt) {
        Failure::Refusal
    } else if after.is_some() || matches!(attempt, Attempt::Answered { status: 429, .. }) {
        Failure::Busy
    } else {
        Failure::Outage
    }
}

/// Settles one request's outcome into the queue, then tells the host and wakes who must go on.
fn settle(shared: &Shared, dispatch: &Dispatch, share: Option<&Share>, outcome: Outcome) {
    let mut fx = Effects::default();
    {
        let mut state = shared.lock();
        if state.closed {
            return; // shutdown drained and counted this request already
        }
        for (n, rules, count) in outcome.redacted {
            state.redacted += count as u64;
            let key = dispatch.items[n].key.clone();
            let count = count as u64;
            fx.emit([Event::Redacted { key, rules, count }]);
        }
        for (n, reason, why) in outcome.not_sent {
            drop_unsent(&mut state, &mut fx, dispatch, n, reason, why);
        }
        if let Some(answer) = outcome.answer {
            state.requests += 1;
            let keys: Vec<&str> = outcome
                .sent
                .iter()
                .map(|&n| &*dispatch.items[n].key)
                .collect();
            settle_answer(shared, &mut state, &mut fx, dispatch, share, &keys, answer);
        }
        shared.settled(&mut state, &mut fx);
        fx.tokens = state.claim_workers(shared.config.concurrency);
    }
    shared.apply(fx);
}

/// An item dropped without a request (unsafe, too large, a panic): counted and named.
fn drop_unsent(
    state: &mut State,
    fx: &mut Effects,
    dispatch: &Dispatch,
    n: usize,
    reason: Reason,
    why: String,
) {
    match reason {
        Reason::TooLarge => state.too_large += 1,
        Reason::Panic => state.panics += 1,
        _ => state.unsafe_contents += 1,
    }
    let key = &dispatch.items[n].key;
    spooler::unsent(state, &dispatch.items[n]); // spool: dropped
    state
        .queue
        .failed(key, Instant::now(), Failure::Final, |_| Default::default());
    fx.emit([Event::Dropped {
        reason,
        key: Some(key.clone()),
        session: Some(dispatch.session.clone()),
        count: 1,
        bytes: None,
        error: Some(why),
    }]);
}

/// One answer, settled for every key the request carried.
fn settle_answer(
    shared: &Shared,
    state: &mut State,
    fx: &mut Effects,
    dispatch: &Dispatch,
    share: Option<&Share>,
    keys: &[&str],
    answer: Result<Answer, Attempt>,
) {
    let attempt = match answer {
        Ok(answer) => answer.attempt(),
        Err(attempt) => attempt,
    };
    let (status, error) = match &attempt {
        Attempt::Answered { status, .. } => (Some(*status), None),
        Attempt::Network(e)
        | Attempt::Refused(e)
        | Attempt::BadAnswer(e)
        | Attempt::Panicked(e) => (None, Some(e.clone())),
    };
    let now = Instant::now();
    let session = &dispatch.session;
    let failed = |key: &str| Event::Failed {
        key: key.into(),
        status,
        error: error.clone(),
    };
    let dropped = |key: &str, reason| Event::Dropped {
        reason,
        key: Some(key.into()),
        session: Some(session.clone()),
        count: 1,
        bytes: None,
        error: None,
    };
    match retry::classify(&attempt) {
        Verdict::Success => {
            spooler::delivered(state, dispatch, keys); // spool: acks
            let mut resumed = false;
            for key in keys {
                let after = state.queue.sent(key, now);
                fx.wake_timer |= after.wake_timer;
                resumed |= after.resumed;
                fx.emit([Event::Synced {
                    key: (*key).into(),
                    status: status.unwrap_or(200),
                }]);
            }
            if resumed {
                fx.emit([Event::Resumed {
                    session: session.clone(),
                }]);
            }
        }
        Verdict::Retry { after } => {
            let policy = shared.policy;
            let kind = failure_kind(&attempt, after);
            let results = state
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
                            status,
                            error: error.clone(),
                        }]);
                    }
                    AfterFailure::Held { newly } => {
                        fx.wake_timer = true;
                        if newly {
                            fx.emit([Event::Refused {
                                session: session.clone(),
                                count: policy.max_retries,
                            }]);
                        }
                    }
                    AfterFailure::Dropped { .. } => {
                        fx.emit([failed(key), dropped(key, Reason::Removed)]);
                    }
                }
            }
        }
        Verdict::Unshared => {
            state
                .queue
                .failed_batch(keys, now, Failure::Final, |_| Default::default());
            let mut count = keys.len() as u64;
            // forget the share only if it is still the one this request used
            if share.is_some() && state.registry.get(session) == share {
                count += state.queue.purge_session(session, true);
                state.registry.remove(session);
                spooler::unshared(state, session); // spool: forget the share
                fx.emit([Event::Unshared {
                    session: session.clone(),
                    status: status.unwrap_or(403),
                }]);
            }
            fx.emit(keys.iter().map(|key| failed(key)));
            fx.emit([Event::Dropped {
                reason: Reason::Unshared,
                key: None,
                session: Some(session.clone()),
                count,
                bytes: None,
                error: None,
            }]);
        }
        Verdict::Reject | Verdict::Bug => {
            spooler::given_up(state, dispatch, keys); // spool: dropped
            state
                .queue
                .failed_batch(keys, now, Failure::Final, |_| Default::default());
            for key in keys {
                fx.emit([failed(key), dropped(key, Reason::Rejected)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_sending_is_a_dropped_bug_not_a_retried_network_error() {
        let outcome = guarded(3, || panic!("boom"));
        assert!(outcome.answer.is_none() && outcome.sent.is_empty());
        assert_eq!(outcome.not_sent.len(), 3);
        assert!(
            outcome
                .not_sent
                .iter()
                .all(|(_, r, why)| *r == Reason::Panic && why.contains("panicked")),
            "a panic became something else"
        );
    }

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
        let wait = Some(std::time::Duration::from_secs(1));
        assert_eq!(failure_kind(&answered(503), wait), Failure::Busy);
        assert_eq!(
            failure_kind(&Attempt::Network("reset".into()), None),
            Failure::Outage
        );
    }
}
