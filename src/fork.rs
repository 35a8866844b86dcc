//! Fork detection. A child forked while another thread of the parent was inside the library
//! inherits its locks held and none of its threads, so the library refuses to run in a forked
//! child of a process that started it: every call there answers SHARE_ERR_NOT_INITIALIZED at
//! once, touching no lock. A `pthread_atfork` child handler (registered at the first
//! `share_init`) sets one flag, so the check costs one atomic load, not a `getpid` call.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Static: the `pthread_atfork` child handler is a plain C function that can reach nothing else.
static FORKED: AtomicBool = AtomicBool::new(false);
/// Static: the handler is registered once per process (`pthread_atfork` cannot unregister).
static WATCH: Once = Once::new();

extern "C" fn in_child() {
    // async-signal-safe: one atomic store
    FORKED.store(true, Ordering::Relaxed);
}

/// Starts watching for forks (at `share_init`; forks before it are not affected).
pub fn watch() {
    WATCH.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic.
        unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        }
    });
}

/// Fails in a child forked after the library was started.
pub fn check() -> Result<()> {
    if FORKED.load(Ordering::Relaxed) {
        return Err(forked());
    }
    Ok(())
}

/// The refusal a forked child gets.
pub fn forked() -> Error {
    Error::not_initialized_because(
        "this process is a fork of one that started the library; the library does not run in a \
         forked child (its threads stayed in the parent and its locks may be held): use it in the \
         parent, or start it in a process that did not inherit it (fork before share_init, or exec)",
    )
}
