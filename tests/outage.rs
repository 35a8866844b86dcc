//! A service that is down gets one request at a time (issue 25): after a few failed requests in
//! a row the library sees an outage, lets out one probe at a time and nothing else while new
//! writes only coalesce; the first success ends it and everything lands. Under both protocols,
//! against the real server behind the fault proxy.

mod common;

use std::time::{Duration, Instant};

use common::*;
use opencode_share::api;

/// Waits (bounded) until `stats.service.state` is `state`.
fn wait_for_service(state: &str) -> bool {
    let deadline = Instant::now() + LONG;
    while Instant::now() < deadline {
        if stats()["service"]["state"] == state {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn outage_then_recovery(protocol: Protocol) {
    let run = start(
        protocol,
        r#""concurrency":4,"retry_initial_ms":10,"retry_max_ms":60"#,
    );
    let mut sessions: Vec<Session> = (0..4).map(|n| Session::new(&session(60 + n))).collect();
    for s in &sessions {
        share(&s.sid);
    }
    let mut write = |round: u32| {
        for s in sessions.iter_mut() {
            for p in 0..6 {
                s.part("msg_1", &format!("prt_{p}"), &format!("r{round}"));
            }
        }
    };
    // the service resets every request: after a few failures in a row it is down
    run.service.go_down();
    write(1);
    assert!(wait_for_outage(), "{}", stats());
    // the gated window: every request is held at the gate, then reset
    let gate = Gate::new();
    run.service
        .inject(Rule::path("/").times(usize::MAX).held_at(&gate).reset());
    run.service.come_up();
    assert!(gate.wait_arrived(1, LONG), "the probe comes");
    // new writes and rewrites of every key while the probe is held: they only coalesce
    write(2);
    write(3);
    // ten times the longest backoff: without the gate, 4 requests would wait here at once
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(gate.waiting(), 1, "one request at a time while down");
    assert_eq!(stats()["service"]["state"], "down");
    // the probe and the ones after it fail (still one at a time), then the service is back
    gate.release();
    let arrived = run.service.requests().len();
    run.service.wait_for(LONG, |log| log.len() >= arrived + 3);
    assert!(run.service.overlaps().is_empty());
    run.service.clear_faults();
    let flushed = api::flush(LONG);
    assert!(flushed.is_ok(), "{flushed:?}: {:?}", events());
    assert!(wait_for_service("up"), "{}", stats());
    for s in &sessions {
        let data = run.service.data(&s.sid).unwrap();
        for p in 0..6 {
            let key = format!("session/part/{}/msg_1/prt_{p}", s.sid);
            assert_eq!(data[&key]["text"], "r3", "{key}: the newest content landed");
        }
    }
    let s = stats();
    assert_eq!(s["dropped"], 0, "{s}");
    let settled = ["sent", "coalesced", "dropped", "pending_keys", "in_flight"]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(s["queued"].as_u64().unwrap(), settled, "stats balance: {s}");
    let events = events();
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|t| *t == "outage" || *t == "recovered")
        .collect();
    assert_eq!(kinds, ["outage", "recovered"], "{events:?}");
    let recovered = events.iter().find(|e| e["type"] == "recovered").unwrap();
    assert!(recovered["held_back"].as_u64().unwrap() > 0, "{recovered}");
}

#[test]
fn an_outage_gets_one_probe_at_a_time_and_everything_lands_after() {
    for protocol in Protocol::ALL {
        outage_then_recovery(protocol);
    }
}
