//! The worker threads: they drain the one job queue, sending ready keys while they hold a sync
//! token and running asynchronous creates and removes; each answer is settled into the queue.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::shared::{Job, Shared, Tick};
use super::spooler; // spool:
use crate::content;
use crate::events::{Event, Reason, hub};
use crate::http::Answer;
use crate::protocol;
use crate::queue::{AfterFailure, Dispatch, Failure};
use crate::registry::Secret;
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

/// Sends ready keys, one request at a time, until none is ready or `concurrency` are under way;
/// then gives the sync token back.
fn send_ready(shared: &Shared) {
    loop {
        let (dispatch, secret) = {
            let mut state = shared.lock();
            let Some(dispatch) = state.queue.next_dispatch(Instant::now()) else {
                state.sync_workers = state.sync_workers.saturating_sub(1);
                return;
            };
            let secret = state.registry.get(&dispatch.session).cloned();
            (dispatch, secret)
        };
        spooler::before_send(shared, &dispatch); // spool: its record is in the log first
        let outcome = match &secret {
            Some(secret) => post(shared, &dispatch, secret),
            // a purge removes the session's pending keys with its share; kept for safety
            None => Outcome::Sent(Err(Attempt::Answered {
                status: 403,
                retry_after: None,
            })),
        };
        settle(shared, &dispatch, secret.as_ref(), outcome);
    }
}

/// How one dispatched content ended on this worker.
enum Outcome {
    /// A request was made (or failed to be).
    Sent(Result<Answer, Attempt>),
    /// The content was not sent: why, as a drop reason and words without the secret.
    NotSent(Reason, String),
}

/// POSTs one content, its share's secret removed. A content that cannot be made safe, or that
/// is over `max_content_bytes` once made safe, is not sent. A panic in here is a bug: the
/// content is dropped with a `panic` event, never retried.
fn post(shared: &Shared, dispatch: &Dispatch, secret: &Secret) -> Outcome {
    guarded(|| {
        let text = match content::redact(&dispatch.content, secret) {
            Ok(text) => text,
            Err(e) => return Outcome::NotSent(Reason::Unsafe, e.message),
        };
        if text.len() > shared.config.max_content_bytes {
            return Outcome::NotSent(
                Reason::TooLarge,
                format!(
                    "{} bytes once the secret was removed; max_content_bytes is {}",
                    text.len(),
                    shared.config.max_content_bytes
                ),
            );
        }
        let body = protocol::sync_body(&dispatch.session, secret, &dispatch.key, &text);
        Outcome::Sent(
            shared
                .http
                .post(protocol::SYNC, body, shared.config.timeout),
        )
    })
}

/// Runs `send`, turning a panic into a `panic` drop.
fn guarded(send: impl FnOnce() -> Outcome) -> Outcome {
    catch_unwind(AssertUnwindSafe(send)).unwrap_or_else(|_| {
        Outcome::NotSent(
            Reason::Panic,
            "the library panicked while sending (a bug; please report it)".into(),
        )
    })
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

/// Settles one request's outcome into the queue and tells the host.
fn settle(shared: &Shared, dispatch: &Dispatch, secret: Option<&Secret>, outcome: Outcome) {
    let attempt = match outcome {
        Outcome::Sent(Ok(answer)) => answer.attempt(),
        Outcome::Sent(Err(attempt)) => attempt,
        Outcome::NotSent(reason, why) => return settle_not_sent(shared, dispatch, reason, why),
    };
    let (status, error) = match &attempt {
        Attempt::Answered { status, .. } => (Some(*status), None),
        Attempt::Network(e)
        | Attempt::Refused(e)
        | Attempt::BadAnswer(e)
        | Attempt::Panicked(e) => (None, Some(e.clone())),
    };
    let key = &dispatch.key;
    let now = Instant::now();
    let mut events = Vec::with_capacity(2);
    let mut wake_timer = false;
    let tokens = {
        let mut state = shared.lock();
        if state.closed {
            return; // shutdown drained and counted this request already
        }
        let failed = Event::Failed {
            key: key.clone(),
            status,
            error: error.clone(),
        };
        let dropped = |reason| Event::Dropped {
            reason,
            key: Some(key.clone()),
            session: Some(dispatch.session.clone()),
            count: 1,
            bytes: None,
            error: None,
        };
        match retry::classify(&attempt) {
            Verdict::Success => {
                spooler::delivered(&mut state, dispatch); // spool: ack
                let after = state.queue.sent(key, now);
                wake_timer = after.wake_timer;
                events.push(Event::Synced {
                    key: key.clone(),
                    status: status.unwrap_or(200),
                });
                if after.resumed {
                    events.push(Event::Resumed {
                        session: dispatch.session.clone(),
                    });
                }
            }
            Verdict::Retry { after } => {
                let policy = shared.policy;
                let kind = failure_kind(&attempt, after);
                match state
                    .queue
                    .failed(key, now, kind, |n| policy.jittered_delay(n, after))
                {
                    AfterFailure::Retry { retry, delay } => {
                        wake_timer = true;
                        let delay_ms = delay.as_millis() as u64;
                        events.push(Event::Retry {
                            key: key.clone(),
                            retry,
                            delay_ms,
                            status,
                            error,
                        });
                    }
                    AfterFailure::Held { newly } => {
                        wake_timer = true;
                        if newly {
                            events.push(Event::Refused {
                                session: dispatch.session.clone(),
                                count: shared.policy.max_retries,
                            });
                        }
                    }
                    AfterFailure::Dropped { .. } => {
                        events.push(failed);
                        events.push(dropped(Reason::Removed));
                    }
                }
            }
            Verdict::Unshared => {
                state
                    .queue
                    .failed(key, now, Failure::Final, |_| Default::default());
                let mut count = 1;
                // forget the share only if it is still the one this request used
                if secret.is_some() && state.registry.get(&dispatch.session) == secret {
                    count += state.queue.purge_session(&dispatch.session, true);
                    state.registry.remove(&dispatch.session);
                    spooler::unshared(&mut state, &dispatch.session); // spool: forget the share
                    events.push(Event::Unshared {
                        session: dispatch.session.clone(),
                        status: status.unwrap_or(403),
                    });
                }
                events.push(failed);
                events.push(Event::Dropped {
                    reason: Reason::Unshared,
                    key: None,
                    session: Some(dispatch.session.clone()),
                    count,
                    bytes: None,
                    error: None,
                });
            }
            Verdict::Reject | Verdict::Bug => {
                spooler::given_up(&mut state, dispatch); // spool: dropped
                state
                    .queue
                    .failed(key, now, Failure::Final, |_| Default::default());
                events.push(failed);
                events.push(dropped(Reason::Rejected));
            }
        }
        // emitted before the lock is released, so a flush that returns has its events waiting
        hub().emit(events);
        shared.settled(&mut state);
        state.claim_workers(shared.config.concurrency)
    };
    shared.wake_workers(tokens);
    if wake_timer {
        let _ = shared.timer.send(Tick::Wake);
    }
}

/// A content dropped without a request (unsafe, too large, a panic): counted and named.
fn settle_not_sent(shared: &Shared, dispatch: &Dispatch, reason: Reason, why: String) {
    let now = Instant::now();
    let tokens = {
        let mut state = shared.lock();
        if state.closed {
            return;
        }
        match reason {
            Reason::TooLarge => state.too_large += 1,
            Reason::Panic => state.panics += 1,
            _ => state.unsafe_contents += 1,
        }
        spooler::given_up(&mut state, dispatch); // spool: dropped
        state
            .queue
            .failed(&dispatch.key, now, Failure::Final, |_| Default::default());
        hub().emit([Event::Dropped {
            reason,
            key: Some(dispatch.key.clone()),
            session: Some(dispatch.session.clone()),
            count: 1,
            bytes: None,
            error: Some(why),
        }]);
        shared.settled(&mut state);
        state.claim_workers(shared.config.concurrency)
    };
    shared.wake_workers(tokens);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_sending_is_a_dropped_bug_not_a_retried_network_error() {
        let outcome = guarded(|| panic!("boom"));
        assert!(
            matches!(&outcome, Outcome::NotSent(Reason::Panic, why) if why.contains("panicked")),
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
