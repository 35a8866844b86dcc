//! The library's API in safe Rust: what each `share_*` function does once the C boundary has
//! turned its pointers into strings. Tests and Rust hosts call it directly.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::events::{self, hub};
use crate::fork;
use crate::key;
use crate::registry::Secret;
use crate::runtime::{self, ops};

pub use crate::runtime::completions::Completion;

/// Starts the runtime with `config` (a JSON object; None or "" for the defaults).
pub fn init(config: Option<&str>) -> Result<()> {
    fork::check()?;
    runtime::init(config)
}

/// Takes one storage write; never blocks on I/O.
pub fn sync(key: &str, content: &str) -> Result<()> {
    fork::check()?;
    sync_queued(key, content).map(|_| ())
}

/// [`sync`], telling whether the content was queued (an event naming its key or session will
/// follow) or ignored.
pub fn sync_queued(key: &str, content: &str) -> Result<bool> {
    fork::check()?;
    runtime::with_current(|instance| instance.sync(key, content))
}

/// True while `key` has content queued, parked or in flight: an event naming the key (or its
/// session) will follow when that ends.
pub fn sync_pending(key: &str) -> Result<bool> {
    fork::check()?;
    runtime::with_current(|instance| instance.key_pending(key))
}

/// Creates the share of `session`; returns `{"url","secret"}`.
pub fn create(session: &str) -> Result<String> {
    fork::check()?;
    let instance = runtime::current()?;
    key::check_session_id(session)?;
    ops::create(&instance, session)
}

/// Removes the share of `session`: local state at once, then the delete request.
pub fn remove(session: &str, secret: &str) -> Result<()> {
    fork::check()?;
    let instance = runtime::current()?;
    let secret = check_remove(session, secret)?;
    let forgotten = ops::forget(&instance, session, Some(secret))?;
    ops::delete(&instance, session, forgotten)
}

/// [`remove`] with the secret the library knows (its registry, or the ledger a spool kept): for
/// a host that no longer has the session, e.g. after a restart. Fails (`INVALID_ARGUMENT`) when
/// the ledger has no share of that session.
pub fn remove_known(session: &str) -> Result<()> {
    fork::check()?;
    let instance = runtime::current()?;
    key::check_session_id(session)?;
    let forgotten = ops::forget(&instance, session, None)?;
    ops::delete(&instance, session, forgotten)
}

/// The ledger: every share the library created or was told of whose deletion the service has
/// not confirmed (kept across runs with `spool_dir`), by session id. Entries hold the secret:
/// for Rust hosts and the `opencode-share` command; [`list_json`] leaves it out.
pub fn list() -> Result<Vec<crate::spool::Entry>> {
    fork::check()?;
    runtime::with_current(|instance| Ok(instance.lock().ledger().entries()))
}

/// [`list`] as `share_list` hands it over: a JSON array of `{"session","id","url","created",
/// "synced","state","service","protocol"}`, without the secret.
pub fn list_json() -> Result<String> {
    Ok(crate::engine::ledger::to_json(&list()?))
}

/// [`create`] on a worker; `completion` gets the operation id and status on the notifier
/// thread, and [`op_take`] then hands over the result. Returns the operation id.
pub fn create_async(session: &str, completion: Completion) -> Result<u32> {
    fork::check()?;
    let instance = runtime::current()?;
    key::check_session_id(session)?;
    let session = session.to_owned();
    ops::start(&instance, completion, move |instance| {
        ops::create(instance, &session)
    })
}

/// [`remove`] on a worker: the local part is done before this returns.
pub fn remove_async(session: &str, secret: &str, completion: Completion) -> Result<u32> {
    fork::check()?;
    let instance = runtime::current()?;
    let secret = check_remove(session, secret)?;
    start_remove(&instance, session, Some(secret), completion)
}

/// [`remove_known`] on a worker, as [`remove_async`].
pub fn remove_known_async(session: &str, completion: Completion) -> Result<u32> {
    fork::check()?;
    let instance = runtime::current()?;
    key::check_session_id(session)?;
    start_remove(&instance, session, None, completion)
}

fn start_remove(
    instance: &Arc<runtime::Instance>,
    session: &str,
    secret: Option<Secret>,
    completion: Completion,
) -> Result<u32> {
    let forgotten = ops::forget(instance, session, secret)?;
    let session = session.to_owned();
    ops::start(instance, completion, move |instance| {
        ops::delete(instance, &session, forgotten).map(|()| "{}".into())
    })
}

fn check_remove(session: &str, secret: &str) -> Result<Secret> {
    key::check_session_id(session)?;
    if secret.is_empty() {
        return Err(Error::invalid("secret is empty"));
    }
    Ok(Secret::new(secret))
}

/// The result of a completed asynchronous operation, once: its JSON, or its error.
pub fn op_take(id: u32) -> Result<String> {
    fork::check()?;
    runtime::take_op(id)
}

/// Whether an asynchronous operation is still running (for hosts that poll instead of a callback).
pub fn op_pending(id: u32) -> Result<bool> {
    fork::check()?;
    runtime::op_pending(id)
}

/// Waits up to `timeout` until everything accepted before the call has been sent or dropped.
pub fn flush(timeout: Duration) -> Result<()> {
    fork::check()?;
    runtime::current()?.flush(timeout)
}

/// [`flush`] without blocking: `completion` gets the operation id and status (SHARE_OK or
/// SHARE_ERR_TIMEOUT) on the notifier thread; no thread waits meanwhile.
pub fn flush_async(timeout: Duration, completion: Completion) -> Result<u32> {
    fork::check()?;
    runtime::current()?.flush_async(timeout, completion)
}

/// The position of the newest write accepted so far, for [`flush_until`].
pub fn flush_mark() -> Result<u64> {
    fork::check()?;
    runtime::with_current(|instance| Ok(instance.flush_mark()))
}

/// Waits up to `timeout` until every write up to `mark` has been sent or dropped.
pub fn flush_until(mark: u64, timeout: Duration) -> Result<()> {
    fork::check()?;
    runtime::current()?.flush_until(mark, timeout)
}

/// Flushes up to `timeout`, then stops the runtime.
pub fn shutdown(timeout: Duration) -> Result<()> {
    fork::check()?;
    runtime::shutdown(timeout)
}

/// The stats as a JSON object.
pub fn stats() -> Result<String> {
    fork::check()?;
    runtime::stats()
}

/// Sets (or with None clears) the host's event sink: called on the notifier thread when events
/// are waiting to be taken.
pub fn set_event_sink(sink: Option<Arc<dyn Fn() + Send + Sync>>) {
    if fork::check().is_err() {
        return;
    }
    hub().set_sink(sink);
}

/// Takes the waiting events as a JSON array.
pub fn events_take() -> String {
    if fork::check().is_err() {
        return "[]".into();
    }
    events::to_json(&hub().take())
}
