//! Create and remove: the requests themselves (with retries inside one deadline), the local part
//! of remove, and running the asynchronous forms on a worker.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use super::completions::{self, Completion};
use super::instance::Instance;
use super::messages::{Job, Tick};
use super::spool_writer;
use crate::engine::Forgotten;
use crate::error::{Error, ErrorKind, Result};
use crate::http::Answer;
use crate::locks::wait_until;
use crate::protocol::Request;
use crate::registry::{Secret, Share};
use crate::retry::{self, Attempt, Verdict};

/// `share_create`: the protocol's create, retried within the configured timeout; the new share
/// is remembered so later syncs of the session go out. Returns `{"url","secret"}` (v1) or
/// `{"id","url","secret"}` ("next").
pub fn create(instance: &Instance, session: &str) -> Result<String> {
    let deadline = Instant::now() + instance.config.timeout;
    let create = instance.protocol.create(session);
    let path = create.path.clone();
    let answer = request(
        instance,
        create,
        deadline,
        instance.policy.max_retries,
        None,
    )
    .map_err(|(e, _)| e)?;
    let created = instance.protocol.parse_created(&answer.body)?;
    let now = Instant::now();
    let url: Arc<str> = Arc::from(created.url.as_str());
    let probe = instance
        .decide(|engine, _| engine.created(session, created.share(), url, now))
        .map_err(|other| {
            // the hosted service keys shares by the last 8 characters of the session id and
            // hands the existing share of that short id to anyone: this session's syncs would
            // vanish
            Error::new(
                ErrorKind::BadResponse,
                format!(
                    "{path} answered for {session:?} the share that session {other:?} already holds (the \
                     service keys shares by the last 8 characters of the session id): not created"
                ),
            )
        })?;
    if probe {
        let _ = instance.timer.send(Tick::Wake);
    }
    Ok(created.to_json())
}

/// The local part of `share_remove`, done at once on the caller's thread: drops the session's
/// pending work and forgets its share; the ledger keeps it as being removed. Without `secret`
/// (a host that forgot the session), the one the registry or the ledger holds.
pub fn forget(instance: &Instance, session: &str, secret: Option<Secret>) -> Result<Forgotten> {
    instance.decide(|engine, fx| {
        let secret = secret.or_else(|| engine.known_secret(session)).ok_or_else(|| {
            Error::invalid(format!(
                "remove {session:?}: no secret given, and the ledger has no share of that session"
            ))
        })?;
        Ok(engine.forget(session, secret, Instant::now(), fx))
    })
}

/// The rest of `share_remove`: waits (within the configured timeout) until none of the
/// session's requests is in flight, then sends the protocol's delete with retries. A 500 is retried
/// once at most, and not at all for a share the service was refusing: opencode's hosted service
/// answers a stale secret and a deleted share with 500, and the local part holds anyway. An
/// answer of 2xx, 404 or 410 takes the share out of the ledger; after any other end it stays
/// there, being removed, and the next `share_init` on the spool sends the delete again.
pub fn delete(instance: &Instance, session: &str, forgotten: Forgotten) -> Result<()> {
    let sent = send_delete(instance, session, &forgotten);
    let confirmed = match &sent {
        Ok(()) => true,
        Err((_, status)) => matches!(status, Some(404 | 410)),
    };
    if confirmed {
        instance.decide(|engine, _| engine.deleted(session));
    }
    sent.map_err(|(e, _)| e)
}

/// [`delete`]'s wait and request; a failure carries the service's last status, if it answered.
fn send_delete(
    instance: &Instance,
    session: &str,
    forgotten: &Forgotten,
) -> std::result::Result<(), (Error, Option<u16>)> {
    let secret = &forgotten.secret;
    let deadline = Instant::now() + instance.config.timeout;
    // the removal is on disk before the delete goes out (and before remove answers)
    if !instance.wait_durable(deadline) {
        return Err((
            spool_writer::not_durable(&format!("remove {session:?}")),
            None,
        ));
    }
    {
        let mut engine = instance.lock();
        engine.waiters += 1;
        let (mut engine, idle) = wait_until(&instance.changed, engine, deadline, |e| {
            e.queue().in_flight_of(session) == 0
        });
        engine.waiters -= 1;
        if !idle {
            return Err((
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "remove {session:?}: its sync requests were still in flight at the deadline; delete not sent"
                    ),
                ),
                None,
            ));
        }
    }
    let share = Share {
        secret: secret.clone(),
        id: forgotten.id.clone(),
    };
    let delete = instance.protocol.delete(session, &share);
    request(
        instance,
        delete,
        deadline,
        if forgotten.refused { 0 } else { 1 },
        Some(secret),
    )
    .map(|_| ())
}

/// At `share_init` with a spool: the removals the ledger holds for this service that the service
/// never confirmed (a crash or a restart came first, or the delete failed) are sent again, each
/// on a worker, retried like any delete; the ledger forgets each one the service confirms.
pub fn resend_removals(instance: &Arc<Instance>) {
    let removals = instance.lock().pending_removals();
    for (session, share) in removals {
        let forgotten = Forgotten {
            secret: share.secret,
            refused: false,
            id: share.id,
        };
        let runner = instance.clone();
        let job = move || {
            // a failure (or a caught panic) leaves the share in the ledger, being removed, for
            // the next run
            let _ = catch_unwind(AssertUnwindSafe(|| delete(&runner, &session, forgotten)));
        };
        if instance.jobs.send(Job::Op(Box::new(job))).is_err() {
            return;
        }
    }
}

/// Sends `request` until it succeeds, fails for good, or retrying would pass `deadline`;
/// answers of 500 are retried at most `max_500_retries` times. A failure names the service's
/// reason, with `secret` and the org token masked, and the service's last status if it answered.
fn request(
    instance: &Instance,
    request: Request,
    deadline: Instant,
    max_500_retries: u32,
    secret: Option<&Secret>,
) -> std::result::Result<Answer, (Error, Option<u16>)> {
    let what = format!("{} {}", request.method.as_str(), request.path);
    let org = instance.config.org.as_ref().map(|org| org.token.as_str());
    let hidden: Vec<&str> = secret.map(Secret::expose).into_iter().chain(org).collect();
    let mut retries = 0;
    let mut retries_500 = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err((
                Error::new(
                    ErrorKind::Timeout,
                    format!("{what}: no time left for an attempt"),
                ),
                None,
            ));
        }
        let outcome = instance.http.send(request.clone(), left);
        let (attempt, said) = match outcome {
            Ok(answer) if retry::classify(&answer.attempt()) == Verdict::Success => {
                return Ok(answer);
            }
            Ok(answer) => (answer.attempt(), answer.reason(&hidden)),
            Err(attempt) => (attempt, None),
        };
        let verdict = retry::classify(&attempt);
        let status = match attempt {
            Attempt::Answered { status, .. } => Some(status),
            _ => None,
        };
        let failure = (failure(&what, &attempt, said), status);
        let Verdict::Retry { after } = verdict else {
            return Err(failure);
        };
        if retries >= instance.policy.max_retries {
            return Err(failure);
        }
        if retry::refusal_evidence(&attempt) {
            if retries_500 >= max_500_retries {
                return Err(failure);
            }
            retries_500 += 1;
        }
        retries += 1;
        let delay = instance.policy.jittered_delay(retries, after);
        if Instant::now() + delay >= deadline || instance.lock().is_closed() {
            return Err(failure); // no time left, or shutdown abandoned the operation
        }
        thread::sleep(delay);
    }
}

fn failure(what: &str, attempt: &Attempt, said: Option<String>) -> Error {
    match attempt {
        Attempt::Network(e) => Error::new(ErrorKind::Network, e.clone()),
        Attempt::Refused(e) => Error::invalid(e.clone()),
        Attempt::BadAnswer(e) => Error::new(ErrorKind::BadResponse, e.clone()),
        Attempt::Panicked(e) => Error::new(ErrorKind::Panic, e.clone()),
        Attempt::Answered { status, .. } => Error::new(
            ErrorKind::HttpStatus,
            match said {
                Some(said) => format!("{what} answered HTTP {status}: {said}"),
                None => format!("{what} answered HTTP {status}"),
            },
        ),
    }
}

/// Starts an asynchronous operation: `work` runs on a worker; its result is kept for
/// `share_op_take` and `completion` is called on the notifier thread. Returns the operation id.
pub fn start(
    instance: &Arc<Instance>,
    completion: Completion,
    work: impl FnOnce(&Instance) -> Result<String> + Send + 'static,
) -> Result<u32> {
    let id = instance.ops.register(instance.generation, completion)?;
    let runner = instance.clone();
    let job = move || {
        let result = if runner.lock().is_closed() {
            Err(completions::stopped())
        } else {
            catch_unwind(AssertUnwindSafe(|| work(&runner))).unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Panic,
                    "the library panicked during the operation (a bug)",
                ))
            })
        };
        runner.ops.finish(&runner.notices, id, result);
    };
    if instance.jobs.send(Job::Op(Box::new(job))).is_err() {
        // the workers are gone: complete it now (a no-op if shutdown's abandon() already did)
        instance
            .ops
            .finish(&instance.notices, id, Err(completions::stopped()));
    }
    Ok(id)
}
