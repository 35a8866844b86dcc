//! The C boundary, and the only `unsafe` in the library: it turns pointers into strings,
//! results into status codes with a thread-local message, and panics into SHARE_ERR_PANIC.
//! Everything else is in [`crate::api`]. The doc comments here become the header's manual.
//!
//! Safety contract of every function (stated once in the header's preamble, not per function):
//! string arguments are NULL or NUL-terminated and valid for the call; out-pointers are NULL or
//! writable; strings passed to `share_string_free` came from an out_json and are freed once.
#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crate::api;
use crate::error::{Error, ErrorKind, Result};

/// What a `share_*` call reports. `SHARE_OK` (0) is success; every other value comes with a
/// message in `share_last_error()` on the calling thread.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum share_status {
    /// Success.
    SHARE_OK = 0,
    /// NULL where a value is needed, bad UTF-8, malformed key, invalid JSON, bad config.
    SHARE_ERR_INVALID_ARGUMENT = 1,
    /// Called before share_init, or after share_shutdown; share_init: the library could not
    /// start (no thread, no HTTP client); any call in a forked child of a process that
    /// started the library.
    SHARE_ERR_NOT_INITIALIZED = 2,
    /// share_init while running; nothing changed.
    SHARE_ERR_ALREADY_INITIALIZED = 3,
    /// Could not reach the service (connect, reset, timeout), retries spent.
    SHARE_ERR_NETWORK = 4,
    /// The service answered with a non-2xx status. From share_flush and share_shutdown: every
    /// content accepted before the call settled, but not all were delivered: some were given
    /// up (refused, too large, unsafe, share gone) or wait for a share the service refuses;
    /// the message says how many (each given-up content is reported by one flush).
    SHARE_ERR_HTTP_STATUS = 5,
    /// The service's answer is not what the protocol says (unreadable, over 64 KiB, or a
    /// share that another session of this runtime already holds).
    SHARE_ERR_BAD_RESPONSE = 6,
    /// share_flush/share_shutdown: the deadline came with work left.
    SHARE_ERR_TIMEOUT = 7,
    /// Pending content would pass max_pending_bytes; nothing was queued.
    SHARE_ERR_QUEUE_FULL = 8,
    /// A bug inside the library; it was caught, and the library still works.
    SHARE_ERR_PANIC = 9,
}

/// The one place an [`ErrorKind`] becomes a C status code.
impl From<ErrorKind> for share_status {
    fn from(kind: ErrorKind) -> share_status {
        match kind {
            ErrorKind::InvalidArgument => share_status::SHARE_ERR_INVALID_ARGUMENT,
            ErrorKind::NotInitialized => share_status::SHARE_ERR_NOT_INITIALIZED,
            ErrorKind::AlreadyInitialized => share_status::SHARE_ERR_ALREADY_INITIALIZED,
            ErrorKind::Network => share_status::SHARE_ERR_NETWORK,
            ErrorKind::HttpStatus => share_status::SHARE_ERR_HTTP_STATUS,
            ErrorKind::BadResponse => share_status::SHARE_ERR_BAD_RESPONSE,
            ErrorKind::Timeout => share_status::SHARE_ERR_TIMEOUT,
            ErrorKind::QueueFull => share_status::SHARE_ERR_QUEUE_FULL,
            ErrorKind::Panic => share_status::SHARE_ERR_PANIC,
        }
    }
}

/// An operation's outcome as the C status its completion callback gets.
fn status_of(outcome: std::result::Result<(), ErrorKind>) -> share_status {
    outcome.map_or_else(share_status::from, |()| share_status::SHARE_OK)
}

thread_local! {
    /// Thread-local: `share_last_error` answers for the calling thread's last failure.
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Runs `body`, turning its result into a status (recording the message) and a panic into
/// SHARE_ERR_PANIC. Every export returning a status goes through it (a test checks).
fn guard(body: impl FnOnce() -> Result<()>) -> share_status {
    guarded(panicked, || match body() {
        Ok(()) => share_status::SHARE_OK,
        Err(error) => fail(error),
    })
}

/// The one panic guard every export goes through: runs `body`, or `on_panic` if it panics
/// (no unwinding crosses into C).
fn guarded<T>(on_panic: impl FnOnce() -> T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| on_panic())
}

/// SHARE_ERR_PANIC, with its message.
fn panicked() -> share_status {
    fail(Error::new(
        ErrorKind::Panic,
        "the library panicked (a bug; please report it); the call was abandoned and the library still works",
    ))
}

fn fail(error: Error) -> share_status {
    let text = CString::new(error.message.replace('\0', "\\0")).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = Some(text));
    error.kind.into()
}

/// Reads a NUL-terminated UTF-8 argument; `name` is for the message.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn text<'a>(name: &str, ptr: *const c_char) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{name} is NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string valid for the call.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|e| Error::invalid(format!("{name} is not valid UTF-8 ({e})")))
}

/// Clears an out-pointer and returns it for writing.
///
/// # Safety
/// `out` is NULL or valid for writing one pointer.
unsafe fn out<'a>(out: *mut *mut c_char) -> Result<&'a mut *mut c_char> {
    if out.is_null() {
        return Err(Error::invalid("out_json is NULL"));
    }
    // SAFETY: the caller promises `out` is writable.
    let slot = unsafe { &mut *out };
    *slot = std::ptr::null_mut();
    Ok(slot)
}

/// Clears a bool out-pointer (false until the call succeeds) and returns it for writing.
///
/// # Safety
/// `out` is NULL or valid for writing one bool.
unsafe fn flag<'a>(name: &str, out: *mut bool) -> Result<&'a mut bool> {
    if out.is_null() {
        return Err(Error::invalid(format!("{name} is NULL")));
    }
    // SAFETY: the caller promises `out` is writable.
    let slot = unsafe { &mut *out };
    *slot = false;
    Ok(slot)
}

/// Hands a string to the caller; it frees it with `share_string_free`.
fn give(slot: &mut *mut c_char, text: String) {
    *slot = CString::new(text).unwrap_or_default().into_raw();
}

/// Called on a library thread when events are waiting; take them with `share_events_take`.
/// It must not block for long: other notifications wait behind it.
#[allow(non_camel_case_types)]
pub type share_event_notify = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// Called once on a library thread when an asynchronous operation ends, with its id and
/// status; take its result with `share_op_take`. Pass scalars only: some hosts run the
/// callback's body later, after this returns.
#[allow(non_camel_case_types)]
pub type share_op_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, op_id: u32, status: share_status)>;

/// The host's user_data pointer, carried to the notifier thread and handed back untouched.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: the library never dereferences it; the host chose to receive it on a library thread.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

/// Starts the library. `config_json` is a JSON object (see README: url, version, timeout_ms,
/// connect_timeout_ms, concurrency, max_retries, retry_initial_ms, retry_max_ms,
/// max_pending_bytes, max_content_bytes, min_interval_ms, user_agent, allow_insecure, protocol,
/// token, org_id, spool_dir, spool_interval_ms, spool_fsync_ms, redact, redact_patterns,
/// redact_allow); NULL or "" takes every default.
/// Unknown keys are an error. Redaction (docs/redaction.md) is on unless `redact` is false:
/// before upload, on a worker thread, credentials of well-known formats in any string of a
/// content (cloud keys of AWS, GCP, Azure; GitHub, GitLab, npm, PyPI tokens; OpenAI,
/// Anthropic, OpenRouter, Google keys; Slack, Stripe and other service tokens; private-key
/// blocks; JWTs; passwords in URLs; Authorization headers; `API_KEY=...`-style assignments)
/// become `[redacted: RULE-ID]`. Not redacted: paths, user names, e-mail addresses and other
/// personal data, and credentials of no known format or context. `redact_patterns` adds rules
/// (an object of id to regex, Rust `regex` syntax; group 1, if any, is what is replaced) and
/// `redact_allow` lists values never redacted (strings); a rule for every user goes in
/// src/redact/ours.toml. A content that redaction cannot read
/// is not sent (a `dropped` event, reason unsafe). With spool_dir the folder is also the ledger
/// of shares (share_list). `protocol` is
/// "v1" (the default: opencode's legacy Share service) or "next" (opencode's ShareNext service,
/// default url https://opncd.ai: one request carries many items of one share, at most one
/// request per share is in flight, and `concurrency` counts shares). `token` with `org_id`
/// ("next" only) sends to an org account; the token is a credential, never in a message,
/// event or the stats. With spool_dir, share_init first re-queues what the spool holds that the
/// service never acknowledged, and answers SHARE_ERR_INVALID_ARGUMENT if another process holds
/// the spool or the folder is not one only its owner may access. Returns SHARE_ERR_ALREADY_INITIALIZED,
/// changing nothing, while running, and SHARE_ERR_NOT_INITIALIZED when it cannot start (a
/// thread cannot be spawned, the HTTP client cannot be built). Fork: in a child forked from a
/// process that called share_init, this and every other call answers SHARE_ERR_NOT_INITIALIZED
/// at once (the parent's locks may be held in the child, its threads are gone); fork before
/// share_init, or exec, to use the library in a child.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_init(config_json: *const c_char) -> share_status {
    guard(|| {
        let config = if config_json.is_null() {
            None
        } else {
            // SAFETY: as documented, a NUL-terminated string.
            Some(unsafe { text("config_json", config_json) }?)
        };
        api::init(config)
    })
}

/// Takes one storage write: `key` as opencode names it, `content_json` one JSON value. Returns
/// at once (no I/O). Keys outside `session/` and sessions without a known share are ignored
/// (SHARE_OK); a `session/share/<id>` write with a string `secret` tells the library the
/// session's share. Fails with SHARE_ERR_INVALID_ARGUMENT (malformed key, invalid JSON),
/// SHARE_ERR_NOT_INITIALIZED or SHARE_ERR_QUEUE_FULL (nothing queued). A content larger than
/// max_content_bytes is accepted (SHARE_OK) and dropped at once, never uploaded: a `dropped`
/// event (reason too_large) names its key, the stats count it, and the next flush reports it.
/// Before sending, the share's secret is removed from the content: members whose value is the
/// secret are dropped, every other occurrence (in text, arrays, object keys, the whole content)
/// is replaced by "[secret removed]"; a content that cannot be made safe is dropped (reason
/// unsafe), never sent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_sync(
    key: *const c_char,
    content_json: *const c_char,
) -> share_status {
    guard(|| {
        // SAFETY: as documented, NUL-terminated strings.
        let (key, content) = unsafe { (text("key", key)?, text("content_json", content_json)?) };
        api::sync(key, content)
    })
}

/// share_sync that also tells what became of the write, for a host that tracks delivery (the
/// TypeScript binding holds a key's newer contents, unserialised, until this one settles).
/// `*out_queued` is set to true when the content was queued for the service: an event naming
/// its key (synced, retry, failed, dropped) or its session (dropped, unshared) will follow, if
/// an event callback is set. It is set to false when the write was ignored or the call failed.
/// Checks, statuses and cost are those of share_sync.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_sync_queued(
    key: *const c_char,
    content_json: *const c_char,
    out_queued: *mut bool,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let (queued, key, content) = unsafe {
            (
                flag("out_queued", out_queued)?,
                text("key", key)?,
                text("content_json", content_json)?,
            )
        };
        *queued = api::sync_queued(key, content)?;
        Ok(())
    })
}

/// Whether `key` has content in the library that has not settled: queued, waiting for a retry or
/// for its pace, or in flight. While `*out_pending` is true, an event naming the key (synced,
/// retry, failed, dropped) or its session (dropped, unshared) will follow, if an event callback
/// is set: a host holding newer content of the key can wait for it instead of serialising now.
/// `*out_pending` is false on failure. Cheap: one lookup under the library's lock.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_sync_pending(
    key: *const c_char,
    out_pending: *mut bool,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let (pending, key) = unsafe { (flag("out_pending", out_pending)?, text("key", key)?) };
        *pending = api::sync_pending(key)?;
        Ok(())
    })
}

/// Creates the share of `session_id` (POST /share_create, or POST /api/share under "next",
/// retried within timeout_ms) and remembers it. Blocking. On success `*out_json` receives
/// `{"url":..,"secret":..}` (under "next" `{"id":..,"url":..,"secret":..}`), which the
/// caller frees with share_string_free; on failure it is set to NULL. If the service answers a
/// secret that another session of this runtime already holds (opencode's hosted service
/// keys shares by the last 8 characters of the session id and hands out the existing one), the
/// share is not created: SHARE_ERR_BAD_RESPONSE, naming the other session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_create(
    session_id: *const c_char,
    out_json: *mut *mut c_char,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let (slot, session) = unsafe { (out(out_json)?, text("session_id", session_id)?) };
        give(slot, api::create(session)?);
        Ok(())
    })
}

/// Removes the share of `session_id`: drops its pending syncs and forgets its share at once,
/// waits (up to timeout_ms) for its requests in flight, then POSTs /share_delete (under "next":
/// DELETE /api/share/<id> with `{"secret"}`, the id from its create or share record; retried; an
/// answer of 500, which the hosted service gives a stale secret or deleted share, is retried
/// once at most, and not at all when the service was refusing the share).
/// No sync of the session reaches the service after this returns, even when the delete fails.
/// With spool_dir, the removal is written to the spool and fsynced before the delete goes out
/// (a later share_init never resends the session's contents); SHARE_ERR_TIMEOUT, delete not
/// sent, if the spool cannot be synced within timeout_ms.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_remove(
    session_id: *const c_char,
    secret: *const c_char,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let (session, secret) =
            unsafe { (text("session_id", session_id)?, text("secret", secret)?) };
        api::remove(session, secret)
    })
}

/// share_remove with the secret the library knows of `session_id`'s share (the ledger: see
/// share_list), for a host that no longer has the session, e.g. after a restart on the same
/// spool_dir; SHARE_ERR_INVALID_ARGUMENT if the ledger has no share of it. The ledger keeps a
/// share, being removed, until the service answers its delete (this call's or share_remove's)
/// with 2xx, 404 or 410; with spool_dir every later share_init on the folder sends a removal
/// the service never confirmed again.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_remove_known(session_id: *const c_char) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let session = unsafe { text("session_id", session_id)? };
        api::remove_known(session)
    })
}

/// `*out_json` receives the ledger: every share this library created or was told of (through a
/// `session/share/<id>` write) whose deletion the service has not confirmed, kept across runs
/// with spool_dir (the plugin and the bindings set one), as a JSON array by session id of
/// `{"session", "id", "url", "created", "synced", "state", "service", "protocol"}`: `id` the
/// share's id on the service (under v1 the last 8 characters of the session id), `url` its
/// page (null if never known), `created` when the library first knew it and `synced` when the
/// service last accepted a content of it (milliseconds since the Unix epoch, null if unknown),
/// `state` "shared" or "removing" (its removal was asked for and the service has not confirmed
/// it), `service` and `protocol` where it lives (null for a share a version 1 spool kept). The
/// secret is never in it (whoever reads a list has no use for it; share_remove_known removes a
/// listed share). Free it with share_string_free.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_list(out_json: *mut *mut c_char) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let slot = unsafe { out(out_json)? };
        give(slot, api::list_json()?);
        Ok(())
    })
}

/// Waits up to `timeout_ms` until every write accepted before the call has been sent or
/// dropped (retries included), or the deadline. SHARE_OK: all of them were delivered.
/// SHARE_ERR_HTTP_STATUS: all settled, but some were given up since the last flush that
/// reported them, or wait for shares the service refuses (it does not wait for those); the
/// message says how many, events name them. SHARE_ERR_TIMEOUT: the deadline came first.
/// 0 only reports. An outage never gives anything up: contents wait and retry while their
/// share is live. With spool_dir, it also waits until everything accepted is fsynced in the
/// spool: SHARE_ERR_TIMEOUT when the spool cannot be synced by the deadline.
#[unsafe(no_mangle)]
pub extern "C" fn share_flush(timeout_ms: u32) -> share_status {
    guard(|| api::flush(Duration::from_millis(timeout_ms.into())))
}

/// `*out_mark` receives the position of the newest write accepted so far (0 before any), for
/// share_flush_until. Hosts that must not block take a mark once and then poll
/// share_flush_until(mark, 0): writes made after the mark do not move the goal.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_flush_mark(out_mark: *mut u64) -> share_status {
    guard(|| {
        if out_mark.is_null() {
            return Err(Error::invalid("out_mark is NULL"));
        }
        let mark = api::flush_mark()?;
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { *out_mark = mark };
        Ok(())
    })
}

/// share_flush for the writes up to `mark` (from share_flush_mark): waits up to `timeout_ms`
/// until they have all been sent or dropped; answers as share_flush does. 0 only reports.
/// share_flush(t) is share_flush_until(the current mark, t).
#[unsafe(no_mangle)]
pub extern "C" fn share_flush_until(mark: u64, timeout_ms: u32) -> share_status {
    guard(|| api::flush_until(mark, Duration::from_millis(timeout_ms.into())))
}

/// Flushes up to `timeout_ms` (asynchronous creates and removes under way get the same
/// deadline), then stops the library's threads, returning within the timeout. Work left at the
/// deadline is dropped, counted in the stats and reported by one `dropped` event per key (reason
/// shutdown, naming the key and session); async operations left complete with
/// SHARE_ERR_TIMEOUT; the answer is then SHARE_ERR_TIMEOUT. Without a timeout it answers
/// SHARE_ERR_HTTP_STATUS when contents accepted before it were given up, or dropped here because
/// their share was refused (the message says how many), and SHARE_OK when all were delivered.
/// With spool_dir, work left at the deadline stays in the spool (its `dropped` events say so
/// in `error`) and the next share_init on the folder sends it.
/// The library is stopped either way and share_init may be called again.
#[unsafe(no_mangle)]
pub extern "C" fn share_shutdown(timeout_ms: u32) -> share_status {
    guard(|| api::shutdown(Duration::from_millis(timeout_ms.into())))
}

/// `*out_json` receives the stats as a JSON object (running, url, protocol, requests, queued, sent, coalesced, retried,
/// failed, dropped, rejected, ignored, refused_shares, refused_contents, too_large, unsafe, panics,
/// redacted (credentials replaced, at each upload of a content), pending_keys, pending_bytes, in_flight, shares, events_lost,
/// service {state "up" or "down", for_ms: how long in that state, null if up since share_init},
/// appends {sent, refused, acked_bytes} (docs/append-protocol.md); docs/c-api.md explains each); after
/// shutdown, the last run's final figures. Free it with share_string_free.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_stats(out_json: *mut *mut c_char) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let slot = unsafe { out(out_json)? };
        give(slot, api::stats()?);
        Ok(())
    })
}

/// This thread's last failure message, "" if none; never NULL. Valid until this thread's next
/// failing share_ call.
#[unsafe(no_mangle)]
pub extern "C" fn share_last_error() -> *const c_char {
    guarded(
        || c"".as_ptr(),
        || {
            let found =
                LAST_ERROR.try_with(|last| last.borrow().as_ref().map(|text| text.as_ptr()));
            found.ok().flatten().unwrap_or(c"".as_ptr())
        },
    )
}

/// The library's version, "MAJOR.MINOR.PATCH"; a static string.
#[unsafe(no_mangle)]
pub extern "C" fn share_version() -> *const c_char {
    guarded(
        || c"".as_ptr(),
        || concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast(),
    )
}

/// Frees a string the library handed out through an out_json. NULL is fine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_string_free(s: *mut c_char) {
    guarded(
        || (),
        || {
            if !s.is_null() {
                // SAFETY: `s` came from CString::into_raw in `give`, and is freed once by contract.
                drop(unsafe { CString::from_raw(s) });
            }
        },
    )
}

/// Sets the event sink: `notify(user_data)` is called on a library thread whenever events are
/// waiting and were not yet announced; the host then takes them with share_events_take.
/// Events are kept only while a sink is set (up to 65536; more are counted in events_lost).
/// A NULL `notify` removes the sink and discards waiting events. May be called at any time.
#[unsafe(no_mangle)]
pub extern "C" fn share_set_event_callback(
    notify: share_event_notify,
    user_data: *mut c_void,
) -> share_status {
    guard(|| {
        let user_data = UserData(user_data);
        api::set_event_sink(notify.map(|notify| {
            Arc::new(move || {
                let user_data = user_data;
                // SAFETY: the host gave this function and pointer for exactly this call.
                unsafe { notify(user_data.0) }
            }) as Arc<dyn Fn() + Send + Sync>
        }));
        Ok(())
    })
}

/// Keeps events for share_events_take with no callback, replacing any set before: for hosts
/// that poll, such as Bun, whose threadsafe callbacks are not safe to call from a library
/// thread. share_set_event_callback(NULL, NULL) stops keeping them.
#[unsafe(no_mangle)]
pub extern "C" fn share_set_event_polling() -> share_status {
    guard(|| {
        api::set_event_sink(Some(Arc::new(|| ())));
        Ok(())
    })
}

/// `*out_json` receives the waiting events, oldest first, as a JSON array (possibly `[]`),
/// each an object with a "type": `synced` {key, status}, `retry` {key, retry, delay_ms, status
/// or error}, `failed` {key, status or error}, `dropped` {reason, key and/or session, count,
/// bytes for too_large, error for unsafe and panic} with reason rejected, too_large, unsafe,
/// panic, unshared, removed, shutdown or queue_full; `redacted` {key, rules, count} (the
/// content was sent with count credentials replaced by markers; rules names the rules, never
/// the values); `unshared` {session, status} (401, 403, 404: the share is forgotten);
/// `refused` {session, count} (once, when the service answered count 500s for the share, each
/// to a request made after the previous one came back: its contents wait, flushes stop
/// waiting for them, one request per retry_max_ms probes it); `resumed` {session} (a probe
/// succeeded); `outage` {failures} (the service failed that many requests in a row: until one
/// succeeds, one request at a time probes it, at most a second apart, and writes only
/// coalesce); `recovered` {duration_ms, held_back} (a request succeeded after the outage:
/// everything waiting goes now; held_back counts the requests the outage did not make);
/// `spool` {skipped_bytes} (share_init cut that many damaged bytes off the spool's end) or
/// {error} (writing the spool failed; retried). Every drop names its key or session. Free it
/// with share_string_free.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_events_take(out_json: *mut *mut c_char) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let slot = unsafe { out(out_json)? };
        give(slot, api::events_take());
        Ok(())
    })
}

/// The operation's completion: the host's callback, or nothing when the host polls (NULL).
fn completion(callback: share_op_callback, user_data: *mut c_void) -> api::Completion {
    let Some(callback) = callback else {
        return Box::new(|_, _| ());
    };
    let user_data = UserData(user_data);
    Box::new(move |id, outcome| {
        let user_data = user_data;
        // SAFETY: the host gave this function and pointer for exactly this call.
        unsafe { callback(user_data.0, id, status_of(outcome)) }
    })
}

/// Starts an asynchronous operation with `start` and writes its id to `out_op_id`, which is
/// checked before anything starts.
///
/// # Safety
/// `out_op_id` is NULL or writable.
unsafe fn start_op(
    out_op_id: *mut u32,
    callback: share_op_callback,
    user_data: *mut c_void,
    start: impl FnOnce(api::Completion) -> Result<u32>,
) -> Result<()> {
    if out_op_id.is_null() {
        return Err(Error::invalid("out_op_id is NULL"));
    }
    let id = start(completion(callback, user_data))?;
    // SAFETY: checked non-NULL; the caller promises it is writable.
    unsafe { *out_op_id = id };
    Ok(())
}

/// share_create without blocking: returns at once with the operation's id in `*out_op_id`
/// (never 0); later `callback(user_data, op_id, status)` runs exactly once on a library thread,
/// and share_op_take hands over the result. If this call fails, the callback is never called.
/// A NULL `callback` is never called: the host polls share_op_pending instead.
/// This holds for share_create_async, share_remove_async and share_flush_async even while
/// another thread calls share_shutdown: a call that starts before shutdown abandons the
/// operations gets its callback (SHARE_ERR_TIMEOUT if shutdown overtook it); a later one fails
/// at once with SHARE_ERR_NOT_INITIALIZED.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_create_async(
    session_id: *const c_char,
    callback: share_op_callback,
    user_data: *mut c_void,
    out_op_id: *mut u32,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        unsafe {
            start_op(out_op_id, callback, user_data, |done| {
                api::create_async(text("session_id", session_id)?, done)
            })
        }
    })
}

/// share_remove without blocking: the local part (pending syncs dropped, share forgotten) is
/// done before it returns; the wait for requests in flight and the delete happen on a library
/// thread, ending with `callback(user_data, op_id, status)` as for share_create_async.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_remove_async(
    session_id: *const c_char,
    secret: *const c_char,
    callback: share_op_callback,
    user_data: *mut c_void,
    out_op_id: *mut u32,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        unsafe {
            start_op(out_op_id, callback, user_data, |done| {
                api::remove_async(
                    text("session_id", session_id)?,
                    text("secret", secret)?,
                    done,
                )
            })
        }
    })
}

/// share_remove_known without blocking, as share_remove_async.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_remove_known_async(
    session_id: *const c_char,
    callback: share_op_callback,
    user_data: *mut c_void,
    out_op_id: *mut u32,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        unsafe {
            start_op(out_op_id, callback, user_data, |done| {
                api::remove_known_async(text("session_id", session_id)?, done)
            })
        }
    })
}

/// share_flush without blocking: returns at once with the operation's id in `*out_op_id`;
/// `callback(user_data, op_id, status)` runs once on a library thread when everything accepted
/// before the call has been sent or dropped (SHARE_OK) or `timeout_ms` has passed
/// (SHARE_ERR_TIMEOUT); share_op_take then gives `{}` or the message. No thread waits meanwhile.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_flush_async(
    timeout_ms: u32,
    callback: share_op_callback,
    user_data: *mut c_void,
    out_op_id: *mut u32,
) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        unsafe {
            start_op(out_op_id, callback, user_data, |done| {
                api::flush_async(Duration::from_millis(timeout_ms.into()), done)
            })
        }
    })
}

/// Whether the asynchronous operation `op_id` is still running: `*out_pending` is true until it
/// ends, then false (take its result with share_op_take). For hosts that poll instead of
/// passing a callback (NULL), such as Bun, whose threadsafe callbacks are not safe to call
/// from a library thread. An unknown or already taken id gives SHARE_ERR_INVALID_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_op_pending(op_id: u32, out_pending: *mut bool) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let pending = unsafe { flag("out_pending", out_pending)? };
        *pending = api::op_pending(op_id)?;
        Ok(())
    })
}

/// Takes the result of a completed asynchronous operation, once. Returns the operation's
/// status; on SHARE_OK `*out_json` receives create's JSON (as share_create gives it) or `{}` (remove, flush), to free
/// with share_string_free; otherwise it is NULL and share_last_error() on this thread has the
/// operation's message. An unknown, unfinished or already taken id gives
/// SHARE_ERR_INVALID_ARGUMENT. A result not taken stays in memory until taken.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn share_op_take(op_id: u32, out_json: *mut *mut c_char) -> share_status {
    guard(|| {
        // SAFETY: as documented.
        let slot = unsafe { out(out_json)? };
        give(slot, api::op_take(op_id)?);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: share_last_error never returns NULL and the string lives until the next failure.
        unsafe { CStr::from_ptr(share_last_error()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, share_status::SHARE_ERR_PANIC);
        assert!(last_error().contains("panicked"), "{}", last_error());
        // the boundary still works afterwards
        assert_eq!(guard(|| Ok(())), share_status::SHARE_OK);
    }

    #[test]
    fn null_and_bad_utf8_are_invalid_arguments() {
        // SAFETY: NULL and a NUL-terminated byte string are both allowed inputs.
        unsafe {
            assert_eq!(
                share_sync(std::ptr::null(), c"{}".as_ptr()),
                share_status::SHARE_ERR_INVALID_ARGUMENT
            );
            assert_eq!(last_error(), "key is NULL");
            let bad = b"session/info/\xff\0";
            assert_eq!(
                share_sync(bad.as_ptr().cast(), c"{}".as_ptr()),
                share_status::SHARE_ERR_INVALID_ARGUMENT
            );
            assert!(
                last_error().starts_with("key is not valid UTF-8"),
                "{}",
                last_error()
            );
            let mut out_json = std::ptr::dangling_mut::<c_char>();
            assert_eq!(
                share_create(c"ses_1".as_ptr(), &mut out_json),
                share_status::SHARE_ERR_NOT_INITIALIZED
            );
            assert!(out_json.is_null(), "out_json is cleared on failure");
        }
    }

    #[test]
    fn every_export_goes_through_the_panic_guard() {
        let source = include_str!("ffi.rs");
        let source = &source[..source.find("#[cfg(test)]").unwrap()];
        let mut exports = 0;
        for item in source.split("#[unsafe(no_mangle)]").skip(1) {
            exports += 1;
            let body = item[item.find('{').unwrap() + 1..].trim_start();
            assert!(
                body.starts_with("guard(") || body.starts_with("guarded("),
                "an export skips the panic guard: {}",
                &item[..item.find('{').unwrap()]
            );
        }
        assert_eq!(exports, 25, "every export was seen");
    }

    #[test]
    fn version_matches_the_crate() {
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(share_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
