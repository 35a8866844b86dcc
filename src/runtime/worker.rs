//! The worker threads: they drain the one job queue, sending ready keys while they hold a sync
//! token and running asynchronous creates and removes; each answer is settled into the queue.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::shared::{Job, Shared, Tick};
use crate::content;
use crate::events::{Event, Reason, hub};
use crate::http::Answer;
use crate::protocol;
use crate::queue::{AfterFailure, Dispatch};
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
        let outcome = match &secret {
            Some(secret) => post(shared, &dispatch, secret),
            // a purge removes the session's pending keys with its share; kept for safety
            None => Err(Attempt::Answered {
                status: 403,
                retry_after: None,
            }),
        };
        settle(shared, &dispatch, secret.as_ref(), outcome);
    }
}

/// POSTs one content, its share's secret stripped out. A content that cannot be stripped is
/// not sent: it is dropped as rejected, with the reason in the `failed` event.
fn post(shared: &Shared, dispatch: &Dispatch, secret: &Secret) -> Result<Answer, Attempt> {
    let attempt = catch_unwind(AssertUnwindSafe(|| {
        let text = match content::redact(&dispatch.content, secret) {
            Ok(text) => text,
            Err(e) => return Err(Attempt::Refused(e.message)),
        };
        let body = protocol::sync_body(&dispatch.session, secret, &dispatch.key, &text);
        shared
            .http
            .post(protocol::SYNC, body, shared.config.timeout)
    }));
    attempt.unwrap_or_else(|_| {
        Err(Attempt::Network(
            "the library panicked while sending (a bug)".into(),
        ))
    })
}

/// Settles one request's outcome into the queue and tells the host.
fn settle(
    shared: &Shared,
    dispatch: &Dispatch,
    secret: Option<&Secret>,
    outcome: Result<Answer, Attempt>,
) {
    let attempt = match outcome {
        Ok(answer) => answer.attempt(),
        Err(attempt) => attempt,
    };
    let (status, error) = match &attempt {
        Attempt::Answered { status, .. } => (Some(*status), None),
        Attempt::Network(e) | Attempt::Refused(e) => (None, Some(e.clone())),
    };
    let key = &dispatch.key;
    let now = Instant::now();
    let mut events = Vec::with_capacity(2);
    let mut wake_timer = false;
    {
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
            session: None,
            count: 1,
        };
        match retry::classify(&attempt) {
            Verdict::Success => {
                wake_timer = state.queue.sent(key, now);
                events.push(Event::Synced {
                    key: key.clone(),
                    status: status.unwrap_or(200),
                });
            }
            Verdict::Retry { after } => {
                let policy = shared.policy;
                match state
                    .queue
                    .failed(key, now, true, |n| policy.jittered_delay(n, after))
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
                    AfterFailure::Dropped { exhausted } => {
                        events.push(failed);
                        events.push(dropped(if exhausted {
                            Reason::RetriesExhausted
                        } else {
                            Reason::Removed
                        }));
                    }
                }
            }
            Verdict::Unshared => {
                state.queue.failed(key, now, false, |_| Default::default());
                let mut count = 1;
                // forget the share only if it is still the one this request used
                if secret.is_some() && state.registry.get(&dispatch.session) == secret {
                    count += state.queue.purge_session(&dispatch.session);
                    state.registry.remove(&dispatch.session);
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
                });
            }
            Verdict::Reject => {
                state.queue.failed(key, now, false, |_| Default::default());
                events.push(failed);
                events.push(dropped(Reason::Rejected));
            }
        }
        // emitted before the lock is released, so a flush that returns has its events waiting
        hub().emit(events);
        shared.settled(&mut state);
    }
    if wake_timer {
        let _ = shared.timer.send(Tick::Wake);
    }
}
