//! fork(): a child forked while a parent thread is inside share_sync (holding the library's
//! lock) must not hang; the library refuses to run in it, at once, with a clear status.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use opencode_share::{ErrorKind, api};

/// What the child checks; its exit code is the number of the first failed check (0: all held).
fn in_child(key: &str) -> i32 {
    let refused = |r: Result<(), opencode_share::Error>| matches!(r, Err(e) if e.kind == ErrorKind::NotInitialized && e.message.contains("fork"));
    if !refused(api::sync(key, "{}")) {
        return 1;
    }
    if !refused(api::flush(Duration::from_millis(100))) {
        return 2;
    }
    if !refused(api::stats().map(|_| ())) {
        return 3;
    }
    if !refused(api::init(None)) {
        return 4;
    }
    if !refused(api::shutdown(Duration::from_millis(100))) {
        return 5;
    }
    0
}

#[test]
fn a_child_forked_while_the_parent_syncs_is_refused_at_once_and_never_hangs() {
    let run = start(Protocol::V1, "");
    let sid = session(60);
    share(&sid);
    let key = part_key(&sid, 1);
    let stop = Arc::new(AtomicBool::new(false));
    let hammer = {
        let (stop, key) = (stop.clone(), key.clone());
        thread::spawn(move || {
            for n in 0..2_000_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let _ = api::sync(&key, &part(n));
            }
        })
    };
    for round in 0..20 {
        // SAFETY: the child only calls the library's refusing paths and then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = in_child(&key);
            // SAFETY: leaves the child at once, running no destructor of the parent's state.
            unsafe { libc::_exit(code) };
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        let exited = loop {
            // SAFETY: waits for our own child without blocking.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break true;
            }
            if Instant::now() >= deadline {
                // SAFETY: our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                unsafe { libc::waitpid(pid, &mut status, 0) };
                break false;
            }
            thread::sleep(Duration::from_millis(5));
        };
        assert!(exited, "round {round}: the child hung");
        assert!(
            libc::WIFEXITED(status),
            "round {round}: the child died: {status}"
        );
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "round {round}: check failed in the child"
        );
    }
    stop.store(true, Ordering::Relaxed);
    hammer.join().unwrap();
    // the parent goes on as before
    api::flush(LONG).unwrap();
    assert!(run.service.data(&sid).unwrap().contains_key(&key));
}
