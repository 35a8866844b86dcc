//! Failures on the service side, injected by the fault proxy in front of the real server: 5xx,
//! 429 with Retry-After, resets, closed connections, being down, rejected content, revoked shares,
//! answers past the cap, and the pending-bytes bound. Nothing wedges.

mod common;

use std::time::Duration;

use common::*;
use opencode_share::{ErrorKind, api};

/// A rule for the next `times` syncs of `key`.
fn key_rule(key: &str, times: usize) -> Rule {
    Rule::path("/share_sync").containing(key).times(times)
}

fn of_type<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

#[test]
fn retryable_failures_are_retried_until_the_content_arrives() {
    let run = start(Protocol::V1, r#""max_retries":10"#);
    let sid = session(10);
    share(&sid);
    let keys: Vec<String> = (0..4).map(|p| part_key(&sid, p)).collect();
    run.service.inject(key_rule(&keys[0], 3).status(503));
    run.service.inject(key_rule(&keys[1], 2).reset());
    run.service.inject(key_rule(&keys[2], 2).close());
    run.service.inject(key_rule(&keys[3], 1).status(408));
    for (n, key) in keys.iter().enumerate() {
        api::sync(key, &part(n as u32)).unwrap();
    }
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    assert_eq!(data.len(), 4, "every key arrived despite the faults");
    let s = stats();
    assert_eq!(s["retried"], 8);
    assert_eq!(s["failed"], 8);
    assert_eq!(
        (s["sent"].as_u64(), s["dropped"].as_u64()),
        (Some(4), Some(0))
    );
    let events = events();
    assert_eq!(of_type(&events, "retry").len(), 8);
    assert_eq!(of_type(&events, "synced").len(), 4);
}

#[test]
fn a_key_waiting_for_its_retry_keeps_coalescing() {
    let run = start(Protocol::V1, "");
    let sid = session(11);
    share(&sid);
    let key = part_key(&sid, 1);
    // the first sync is held, then answered 500: the later writes are provably pending meanwhile
    let gate = Gate::new();
    run.service
        .inject(key_rule(&key, 1).held_at(&gate).status(500));
    api::sync(&key, &part(1)).unwrap();
    assert!(gate.wait_arrived(1, LONG));
    for n in 2..=20 {
        api::sync(&key, &part(n)).unwrap();
    }
    gate.release();
    api::flush(LONG).unwrap();
    assert_eq!(
        accepted_ns(&run.service, &key),
        vec![20],
        "the retry carries only the newest content"
    );
    assert_eq!(run.service.requests_to("/share_sync").len(), 2);
}

#[test]
fn retry_after_is_honoured() {
    let run = start(Protocol::V1, r#""retry_initial_ms":1,"retry_max_ms":5000"#);
    let sid = session(12);
    share(&sid);
    let key = part_key(&sid, 1);
    run.service
        .inject(key_rule(&key, 1).status_retry_after(429, 1));
    api::sync(&key, &part(1)).unwrap();
    api::flush(LONG).unwrap();
    let r = run.service.requests_to("/share_sync");
    assert_eq!(
        r.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![Some(429), Some(200)]
    );
    let waited = r[1].at - r[0].finished();
    assert!(
        waited >= Duration::from_millis(950),
        "asked to wait 1 s, waited {waited:?}"
    );
}

#[test]
fn a_service_down_for_a_while_gets_everything_when_it_comes_back() {
    let run = start(Protocol::V1, r#""max_retries":30,"connect_timeout_ms":500"#);
    let sid = session(13);
    share(&sid);
    run.service.go_down();
    for n in 0..20 {
        api::sync(&part_key(&sid, n % 4), &part(n)).unwrap();
    }
    assert!(
        wait_for_stat("retried", |n| n >= 1) >= 1,
        "it tried while the service was down"
    );
    run.service.come_up();
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    assert_eq!(data.len(), 4);
    assert_eq!(data[&part_key(&sid, 3)]["n"], 19);
    assert_eq!(stats()["dropped"], 0);
}

#[test]
fn a_refused_content_is_dropped_at_once() {
    let run = start(Protocol::V1, "");
    let sid = session(15);
    share(&sid);
    let key = part_key(&sid, 1);
    run.service.inject(key_rule(&key, 1).status(400));
    api::sync(&key, &part(1)).unwrap();
    flush_reports_given_up(1);
    assert_eq!(api::flush(LONG), Ok(()), "each drop is reported once");
    assert_eq!(
        run.service.requests_to("/share_sync").len(),
        1,
        "a 400 is not retried"
    );
    let events = events();
    assert_eq!(of_type(&events, "dropped")[0]["reason"], "rejected");
    assert_eq!(stats()["dropped"], 1);
}

#[test]
fn a_revoked_share_is_forgotten() {
    for protocol in Protocol::ALL {
        for status in [401, 403, 404] {
            revoked_share_is_forgotten(protocol, status);
        }
    }
}

/// The share's secret is wrong: the server answers 403 itself; 401 and 404 are injected. The
/// first sync waits at a gate until all five writes were made, so they are all pending then.
fn revoked_share_is_forgotten(protocol: Protocol, status: u16) {
    let run = start(protocol, r#""concurrency":1"#);
    let sid = session(16);
    let gate = Gate::new();
    let first = Rule::path(&protocol.sync_path(short_id(&sid)))
        .containing(&sid)
        .held_at(&gate);
    run.service.inject(if status == 403 {
        first.hold(&gate)
    } else {
        first.status(status)
    });
    run.service.create_share(&sid);
    let secret = "00000000-0000-4000-8000-00000000dead";
    api::sync(
        &format!("session/share/{sid}"),
        &format!(r#"{{"secret":"{secret}"}}"#),
    )
    .unwrap();
    // parts as opencode writes them (ShareNext checks their ids before the secret)
    let mut host = Session::new(&sid);
    for p in 0..5 {
        host.part("msg_1", &format!("prt_{p}"), "x");
    }
    assert!(gate.wait_arrived(1, LONG));
    gate.release();
    flush_reports_given_up(5);
    assert_eq!(
        run.service.syncs_of(protocol, &sid).len(),
        1,
        "{protocol:?} {status}: the rest was dropped with the share"
    );
    let s = stats();
    assert_eq!(
        (s["shares"].as_u64(), s["dropped"].as_u64()),
        (Some(0), Some(5)),
        "{protocol:?} {status}"
    );
    let events_json = api::events_take();
    assert!(!events_json.contains(secret));
    let events: Vec<serde_json::Value> = serde_json::from_str(&events_json).unwrap();
    assert_eq!(of_type(&events, "unshared")[0]["status"], status);
    let dropped: u64 = of_type(&events, "dropped")
        .iter()
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    assert_eq!(dropped, 5);
    host.part("msg_1", "prt_1", "after");
    assert_eq!(
        stats()["ignored"],
        1,
        "later writes of the session are ignored"
    );
}

#[test]
fn pending_bytes_are_bounded() {
    let run = start(Protocol::V1, r#""max_pending_bytes":1000,"concurrency":1"#);
    let sid = session(17);
    share(&sid);
    let gate = run.service.hold_syncs(Protocol::V1, &sid);
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(400));
    api::sync(&part_key(&sid, 0), &big).unwrap(); // goes in flight, held there
    assert!(gate.wait_arrived(1, LONG));
    api::sync(&part_key(&sid, 1), &big).unwrap();
    api::sync(&part_key(&sid, 2), &big).unwrap();
    let e = api::sync(&part_key(&sid, 3), &big).unwrap_err();
    assert_eq!(e.kind, ErrorKind::QueueFull);
    assert!(e.message.contains("max_pending_bytes"), "{}", e.message);
    // replacing a waiting content counts only the difference
    api::sync(&part_key(&sid, 2), &part(2)).unwrap();
    let s = stats();
    assert_eq!(s["rejected"], 1);
    assert_eq!(of_type(&events(), "dropped")[0]["reason"], "queue_full");
    gate.release();
    api::flush(LONG).unwrap();
    assert_eq!(run.service.data(&sid).unwrap().len(), 3);
}

#[test]
fn answers_past_the_cap_fail_the_attempt_without_being_read() {
    let run = start(Protocol::V1, r#""max_retries":2"#);
    // create: a 1 GiB answer, then an endless one, then another: each attempt fails unread
    run.service
        .inject(Rule::path("/share_create").huge_body(1 << 30));
    run.service
        .inject(Rule::path("/share_create").times(2).endless_body());
    let e = api::create(&session(40)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse, "{}", e.message);
    assert!(e.message.contains("over 65536 bytes"), "{}", e.message);
    assert_eq!(run.service.requests_to("/share_create").len(), 3);
    // the library stopped reading each endless body soon after the cap
    let sent = run.service.endless_bytes_sent();
    assert!(
        sent < 64 << 20,
        "{sent} bytes of endless bodies were written"
    );
    // a sync answered endlessly is retried, and goes out once the answers are sane
    let sid = session(41);
    share(&sid);
    let key = part_key(&sid, 1);
    run.service.inject(key_rule(&key, 1).endless_body());
    run.service.inject(key_rule(&key, 1).huge_body(256 << 20));
    api::sync(&key, &part(1)).unwrap();
    api::flush(LONG).unwrap();
    assert_eq!(run.service.data(&sid).unwrap()[&key]["n"], 1);
    assert_eq!(run.service.requests_to("/share_sync").len(), 3);
    assert_eq!(stats()["retried"], 2);
}
