//! Create and remove: the requests themselves (with retries inside one deadline), the local part
//! of remove, and the slots through which asynchronous calls hand their results to the host.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Instant;

use super::shared::Shared;
use super::spooler; // spool:
use crate::error::{Error, Result, Status};
use crate::events::{Event, Reason, hub};
use crate::http::Answer;
use crate::locks::{lock, wait_until};
use crate::protocol;
use crate::registry::Secret;
use crate::retry::{self, Attempt, Verdict};

/// `share_create`: POST /share_create, retried within the configured timeout; the new share is
/// remembered so later syncs of the session go out. Returns `{"url","secret"}`.
pub fn create(shared: &Shared, session: &str) -> Result<String> {
    let deadline = Instant::now() + shared.config.timeout;
    let answer = request(
        shared,
        protocol::CREATE,
        &protocol::create_body(session),
        deadline,
        shared.policy.max_retries,
    )?;
    let created = protocol::parse_created(&answer.body)?;
    let spooled = spooler::share(shared, session, &created.secret); // spool:
    let mut state = shared.lock();
    if let Some(other) = state.registry.holder(session, &created.secret) {
        // the hosted service keys shares by the last 8 characters of the session id and hands
        // the existing share of that short id to anyone: this session's syncs would vanish
        return Err(Error::new(
            Status::SHARE_ERR_BAD_RESPONSE,
            format!(
                "{} answered for {session:?} the share that session {other:?} already holds (the \
                 service keys shares by the last 8 characters of the session id): not created",
                protocol::CREATE
            ),
        ));
    }
    let mut probe = false;
    if !state.closed {
        state.registry.insert(session, created.secret.clone());
        spooler::push(&mut state, spooled); // spool:
        probe = state.queue.probe_now(session, Instant::now());
    }
    drop(state);
    if probe {
        let _ = shared.timer.send(super::shared::Tick::Wake);
    }
    Ok(created.to_json())
}

/// The local part of `share_remove`, done at once on the caller's thread: drops the session's
/// pending work and forgets its share. Returns whether the service was refusing the share.
pub fn forget(shared: &Shared, session: &str) -> bool {
    let spooled = spooler::removal(shared, session); // spool:
    let (dropped, refused) = {
        let mut state = shared.lock();
        spooler::push(&mut state, spooled); // spool: Remove (waited for in delete)
        let refused = state.queue.is_refused(session);
        let dropped = state.queue.purge_session(session, false);
        state.registry.remove(session);
        shared.settled(&mut state);
        (dropped, refused)
    };
    if dropped > 0 {
        hub().emit([Event::Dropped {
            reason: Reason::Removed,
            key: None,
            session: Some(session.into()),
            count: dropped,
            bytes: None,
            error: None,
        }]);
    }
    refused
}

/// The rest of `share_remove`: waits (within the configured timeout) until none of the
/// session's requests is in flight, then POSTs /share_delete with retries. A 500 is retried
/// once at most, and not at all for a share the service was refusing: opencode's hosted service
/// answers a stale secret and a deleted share with 500, and the local part holds anyway.
pub fn delete(shared: &Shared, session: &str, secret: &Secret, refused: bool) -> Result<()> {
    let deadline = Instant::now() + shared.config.timeout;
    // spool: the removal is on disk before the delete goes out (and before remove answers)
    if !spooler::wait_durable(shared, deadline) {
        return Err(spooler::not_durable(&format!("remove {session:?}")));
    }
    {
        let mut state = shared.lock();
        state.waiters += 1;
        let (mut state, idle) = wait_until(&shared.changed, state, deadline, |s| {
            s.queue.in_flight_of(session) == 0
        });
        state.waiters -= 1;
        if !idle {
            return Err(Error::new(
                Status::SHARE_ERR_TIMEOUT,
                format!(
                    "remove {session:?}: its sync requests were still in flight at the deadline; delete not sent"
                ),
            ));
        }
    }
    request(
        shared,
        protocol::DELETE,
        &protocol::delete_body(session, secret),
        deadline,
        if refused { 0 } else { 1 },
    )
    .map(|_| ())
}

/// POSTs `body` to `path` until it succeeds, fails for good, or retrying would pass `deadline`;
/// answers of 500 are retried at most `max_500_retries` times.
fn request(
    shared: &Shared,
    path: &str,
    body: &str,
    deadline: Instant,
    max_500_retries: u32,
) -> Result<Answer> {
    let mut retries = 0;
    let mut retries_500 = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::new(
                Status::SHARE_ERR_TIMEOUT,
                format!("POST {path}: no time left for an attempt"),
            ));
        }
        let outcome = shared.http.post(path, body.to_owned(), left);
        let attempt = match outcome {
            Ok(answer) if retry::classify(&answer.attempt()) == Verdict::Success => {
                return Ok(answer);
            }
            Ok(answer) => answer.attempt(),
            Err(attempt) => attempt,
        };
        let verdict = retry::classify(&attempt);
        let failure = failure(path, &attempt);
        let Verdict::Retry { after } = verdict else {
            return Err(failure);
        };
        if retries >= shared.policy.max_retries {
            return Err(failure);
        }
        if retry::refusal_evidence(&attempt) {
            if retries_500 >= max_500_retries {
                return Err(failure);
            }
            retries_500 += 1;
        }
        retries += 1;
        let delay = shared.policy.jittered_delay(retries, after);
        if Instant::now() + delay >= deadline || shared.lock().closed {
            return Err(failure); // no time left, or shutdown abandoned the operation
        }
        thread::sleep(delay);
    }
}

fn failure(path: &str, attempt: &Attempt) -> Error {
    match attempt {
        Attempt::Network(e) => Error::new(Status::SHARE_ERR_NETWORK, e.clone()),
        Attempt::Refused(e) => Error::invalid(e.clone()),
        Attempt::BadAnswer(e) => Error::new(Status::SHARE_ERR_BAD_RESPONSE, e.clone()),
        Attempt::Panicked(e) => Error::new(Status::SHARE_ERR_PANIC, e.clone()),
        Attempt::Answered { status, .. } => Error::new(
            Status::SHARE_ERR_HTTP_STATUS,
            format!("POST {path} answered HTTP {status}"),
        ),
    }
}

/// Called once with an asynchronous operation's id and status, on the notifier thread.
pub type Completion = Box<dyn FnOnce(u32, Status) + Send>;

enum Slot {
    /// Running for the runtime of this generation; the completion is still to be called.
    Pending {
        generation: u64,
        completion: Completion,
    },
    /// Finished: what `share_op_take` hands over.
    Done(Result<String>),
}

static SLOTS: Mutex<Option<HashMap<u32, Slot>>> = Mutex::new(None);
/// Notified when an operation's slot leaves Pending (shutdown waits on it).
static SETTLED: Condvar = Condvar::new();
static NEXT_ID: AtomicU32 = AtomicU32::new(1);
/// The newest runtime generation whose shutdown has abandoned its operations: no operation of
/// it or an older one may start after that. Read and written under the `SLOTS` lock only, so
/// that an operation either registers before shutdown's [`abandon`] (which then completes it,
/// if nothing else has) or fails to start at once.
static CLOSED_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Starts an asynchronous operation: `work` runs on a worker; its result is kept for
/// [`take`] and `completion` is called on the notifier thread. Returns the operation id.
pub fn start(
    shared: &std::sync::Arc<Shared>,
    completion: Completion,
    work: impl FnOnce(&Shared) -> Result<String> + Send + 'static,
) -> Result<u32> {
    let id = register(shared, completion)?;
    let runner = shared.clone();
    let job = move || {
        let result = if runner.lock().closed {
            Err(stopped())
        } else {
            catch_unwind(AssertUnwindSafe(|| work(&runner))).unwrap_or_else(|_| {
                Err(Error::new(
                    Status::SHARE_ERR_PANIC,
                    "the library panicked during the operation (a bug)",
                ))
            })
        };
        finish(&runner, id, result);
    };
    if runner_send(shared, Box::new(job)).is_err() {
        // the workers are gone: complete it now (a no-op if shutdown's abandon() already did)
        finish(shared, id, Err(stopped()));
    }
    Ok(id)
}

/// Opens a slot for an operation that something else will [`finish`]; returns its id. Fails
/// (and the completion is never called) once shutdown has abandoned this runtime's operations.
pub fn register(shared: &Shared, completion: Completion) -> Result<u32> {
    let mut slots = lock(&SLOTS);
    if shared.generation <= CLOSED_GENERATION.load(Ordering::Relaxed) {
        return Err(Error::not_initialized());
    }
    let slots = slots.get_or_insert_with(HashMap::new);
    let id = loop {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if id != 0 && !slots.contains_key(&id) {
            break id;
        }
    };
    slots.insert(
        id,
        Slot::Pending {
            generation: shared.generation,
            completion,
        },
    );
    Ok(id)
}

fn runner_send(shared: &Shared, job: Box<dyn FnOnce() + Send>) -> std::result::Result<(), ()> {
    shared
        .jobs
        .send(super::shared::Job::Op(job))
        .map_err(|_| ())
}

/// Records an operation's result and has its completion called (unless shutdown already
/// completed it).
pub fn finish(shared: &Shared, id: u32, result: Result<String>) {
    let status = result
        .as_ref()
        .map_or_else(|e| e.status, |_| Status::SHARE_OK);
    let mut slots = lock(&SLOTS);
    let slots = slots.get_or_insert_with(HashMap::new);
    if !matches!(slots.get(&id), Some(Slot::Pending { .. })) {
        return; // shutdown completed it already
    }
    let Some(Slot::Pending { completion, .. }) = slots.insert(id, Slot::Done(result)) else {
        return;
    };
    SETTLED.notify_all();
    // sent under the lock: shutdown's abandon() and its Stop notice cannot come in between
    let _ = shared
        .notices
        .send(super::shared::Notice::Call(Box::new(move || {
            completion(id, status)
        })));
}

/// Waits until no operation of runtime `generation` is running, or `deadline`; true if none is.
pub fn wait_for_pending(generation: u64, deadline: Instant) -> bool {
    let (slots, none) = wait_until(&SETTLED, lock(&SLOTS), deadline, |slots| {
        !slots.as_ref().is_some_and(|slots| {
            slots
                .values()
                .any(|s| matches!(s, Slot::Pending { generation: g, .. } if *g == generation))
        })
    });
    drop(slots);
    none
}

/// Completes every operation still running for runtime `generation` with SHARE_ERR_TIMEOUT
/// (shutdown's deadline); returns the completions to call.
pub fn abandon(generation: u64) -> Vec<Box<dyn FnOnce() + Send>> {
    let mut slots = lock(&SLOTS);
    CLOSED_GENERATION.fetch_max(generation, Ordering::Relaxed);
    let slots = slots.get_or_insert_with(HashMap::new);
    let ids: Vec<u32> = slots
        .iter()
        .filter(|(_, s)| matches!(s, Slot::Pending { generation: g, .. } if *g == generation))
        .map(|(id, _)| *id)
        .collect();
    let mut calls: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    for id in ids {
        if let Some(Slot::Pending { completion, .. }) = slots.remove(&id) {
            slots.insert(id, Slot::Done(Err(stopped())));
            calls.push(Box::new(move || completion(id, Status::SHARE_ERR_TIMEOUT)));
        }
    }
    calls
}

/// The result of an operation that shutdown overtook.
fn stopped() -> Error {
    Error::new(
        Status::SHARE_ERR_TIMEOUT,
        "share_shutdown stopped the library before the operation finished",
    )
}

/// Takes a finished operation's result (once).
pub fn take(id: u32) -> Result<String> {
    let mut slots = lock(&SLOTS);
    let slots = slots.get_or_insert_with(HashMap::new);
    match slots.remove(&id) {
        Some(Slot::Done(result)) => result,
        Some(pending) => {
            slots.insert(id, pending);
            Err(Error::invalid(format!(
                "operation {id} has not completed yet"
            )))
        }
        None => Err(Error::invalid(format!(
            "no operation {id} to take (unknown, or already taken)"
        ))),
    }
}
