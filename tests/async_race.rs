//! Asynchronous operations complete exactly once, even racing share_shutdown from another
//! thread: every create_async, remove_async and flush_async either fails at once or gets one
//! callback. Bounded: ROUNDS rounds, each of at most CALLS calls per thread, and LONG overall.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use opencode_share::{ErrorKind, api};

const ROUNDS: u32 = 60;
const CALLS: u32 = 400;

#[test]
fn every_async_call_fails_at_once_or_completes_exactly_once_while_shutdown_races_it() {
    let run = start(Protocol::V1, "");
    let url = run.service.url();
    let callbacks: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
    let started: Arc<Mutex<Vec<u32>>> = Arc::default();
    let began = Instant::now();
    let next_session = Arc::new(AtomicU32::new(1000));
    for round in 0..ROUNDS {
        if began.elapsed() > LONG {
            break;
        }
        if round > 0 {
            let config = format!(r#"{{"url":"{url}","retry_initial_ms":1,"retry_max_ms":5}}"#);
            api::init(Some(&config)).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..3)
            .map(|kind| {
                let (callbacks, started, stop) = (callbacks.clone(), started.clone(), stop.clone());
                let next_session = next_session.clone();
                thread::spawn(move || {
                    for _ in 0..CALLS {
                        let callbacks = callbacks.clone();
                        let done: api::Completion = Box::new(move |id, _status| {
                            *callbacks.lock().unwrap().entry(id).or_insert(0) += 1;
                        });
                        let sid = session(next_session.fetch_add(1, Ordering::Relaxed));
                        let result = match kind {
                            0 => api::create_async(&sid, done),
                            1 => api::remove_async(
                                &sid,
                                "00000000-0000-4000-8000-000000000001",
                                done,
                            ),
                            _ => api::flush_async(Duration::from_millis(50), done),
                        };
                        match result {
                            Ok(id) => started.lock().unwrap().push(id),
                            Err(e) => {
                                assert_eq!(e.kind, ErrorKind::NotInitialized, "{}", e.message);
                                if stop.load(Ordering::SeqCst) {
                                    break;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(u64::from(round % 7)));
        stop.store(true, Ordering::SeqCst);
        let _ = api::shutdown(Duration::from_millis(u64::from(round % 3) * 20));
        for t in threads {
            t.join().unwrap();
        }
    }
    // the notifier delivers what is left; wait for it, bounded
    let started = started.lock().unwrap().clone();
    assert!(
        started.len() > 1000,
        "only {} operations started",
        started.len()
    );
    let deadline = Instant::now() + LONG;
    while callbacks.lock().unwrap().len() < started.len() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let callbacks = callbacks.lock().unwrap();
    let missing = started
        .iter()
        .filter(|id| !callbacks.contains_key(id))
        .count();
    let twice = callbacks.values().filter(|&&n| n != 1).count();
    assert_eq!((missing, twice), (0, 0), "of {} operations", started.len());
    assert_eq!(
        callbacks.len(),
        started.len(),
        "callbacks only for operations that started"
    );
    drop(run);
}
