//! Create and remove (blocking and asynchronous), flush and shutdown deadlines, and the
//! runtime's life: init twice, calls after shutdown, restart; against the real server behind the
//! fault proxy (the testkit). A request that must be in flight at some moment is held at a gate.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use opencode_share::{ErrorKind, api};
use serde_json::json;

#[test]
fn create_returns_the_share_and_remembers_it() {
    let run = start(Protocol::V1, "");
    let sid = session(20);
    let json: serde_json::Value = serde_json::from_str(&api::create(&sid).unwrap()).unwrap();
    assert_eq!(
        json["url"],
        format!("{}/s/{}", run.service.url(), short_id(&sid))
    );
    let answered: serde_json::Value =
        serde_json::from_str(&run.service.requests_to("/share_create")[0].answer).unwrap();
    assert_eq!(json["secret"], answered["secret"], "the server's secret");
    assert_eq!(stats()["shares"], 1);
    assert_eq!(
        api::create("").unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        api::create("ses/1").unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
}

#[test]
fn create_retries_then_reports_the_last_failure() {
    let run = start(Protocol::V1, r#""max_retries":2"#);
    let rule = |times| Rule::path("/share_create").times(times);
    run.service.inject(rule(2).status(502));
    api::create(&session(21)).expect("two 502s are retried");
    run.service.inject(rule(3).status(503));
    let e = api::create(&session(22)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert!(e.message.contains("503"), "{}", e.message);
    // a 200 whose body is not the create's JSON
    run.service.inject(rule(1).status(200));
    assert_eq!(
        api::create(&session(23)).unwrap_err().kind,
        ErrorKind::BadResponse
    );
    assert_eq!(
        run.service.requests_to("/share_create").len(),
        2 + 1 + 3 + 1
    );
}

/// Restarts the library against a loopback port nobody listens on (`userinfo` goes before the
/// host); returns the port. The caller holds `_run` for its turn.
fn restart_against_nothing(userinfo: &str) -> u16 {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    api::shutdown(Duration::ZERO).unwrap();
    api::init(Some(&format!(
        r#"{{"url":"http://{userinfo}127.0.0.1:{port}","max_retries":1,"retry_initial_ms":1}}"#
    )))
    .unwrap();
    port
}

#[test]
fn create_against_nothing_is_a_network_error() {
    let _run = start(Protocol::V1, "");
    restart_against_nothing("");
    let e = api::create(&session(24)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
    assert!(e.message.contains("/share_create"), "{}", e.message);
}

#[test]
fn remove_deletes_with_the_secret_and_nothing_of_the_share_is_synced_after() {
    for protocol in Protocol::ALL {
        remove_sends_nothing_after_it_returns(protocol);
    }
}

/// Remove under `protocol` while the share's first sync is held at a gate, so the writes after
/// it are provably pending: they are dropped and counted, the delete carries the secret and
/// follows the held sync, nothing of the share is sent after remove returns, others go on.
fn remove_sends_nothing_after_it_returns(protocol: Protocol) {
    let run = start(protocol, r#""concurrency":4"#);
    let service = &run.service;
    let mut gone = Session::new(&session(60));
    let mut other = Session::new(&session(61));
    let secret = share(&gone.sid);
    share(&other.sid);
    let gate = service.hold_syncs(protocol, &gone.sid);
    gone.part("msg_1", "prt_0", "w0");
    assert!(
        gate.wait_arrived(1, LONG),
        "the first sync reached the gate"
    );
    for n in 1..40 {
        gone.part("msg_1", &format!("prt_{}", n % 10), &format!("w{n}"));
        other.part("msg_1", &format!("prt_{}", n % 3), &format!("w{n}"));
    }
    let pending = format!("session/part/{}/msg_1/prt_1", gone.sid);
    assert!(api::sync_pending(&pending).unwrap(), "{protocol:?}");
    let remover = {
        let (sid, secret) = (gone.sid.clone(), secret.clone());
        thread::spawn(move || api::remove(&sid, &secret))
    };
    // remove forgets the pending writes at once, then waits for the held syncs before its delete
    assert!(wait_for_stat("dropped", |d| d > 0) > 0, "{}", stats());
    assert!(gate.waiting() >= 1, "the delete waits for the held sync");
    assert!(service.deletes_of(protocol, &gone.sid).is_empty());
    gate.release();
    remover.join().unwrap().unwrap();
    let returned = service.now();
    let deletes = service.deletes_of(protocol, &gone.sid);
    assert_eq!(deletes.len(), 1, "{protocol:?}");
    let delete = &deletes[0];
    assert_eq!(delete.status, Some(200));
    assert_eq!(delete.json().unwrap()["secret"], secret.as_str());
    if protocol == Protocol::Next {
        assert_eq!(delete.path, format!("/api/share/{}", short_id(&gone.sid)));
        assert_eq!(delete.json(), Some(json!({"secret": secret})));
        assert_eq!(delete.header("content-type"), Some("application/json"));
    }
    let sid = gone.sid.clone();
    let syncs = || service.syncs_of(protocol, &sid);
    assert!(
        syncs().iter().all(|r| r.finished() <= delete.at),
        "no sync of the share overlaps its delete"
    );
    api::flush(LONG).unwrap();
    assert!(
        service.next_items(short_id(&gone.sid)).is_none(),
        "the share is gone"
    );
    let others = service.next_items(short_id(&other.sid)).unwrap();
    assert_exactly(&others, &other.expected);
    let s = stats();
    assert_eq!(s["shares"], 1);
    assert!(s["dropped"].as_u64().unwrap() > 0, "{s}");
    let events = events();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "dropped" && e["reason"] == "removed"),
        "{events:?}"
    );
    gone.part("msg_1", "prt_x", "after remove");
    api::flush(LONG).unwrap();
    assert!(
        syncs().iter().all(|r| r.at < returned),
        "no sync after remove"
    );
    assert!(service.overlaps().is_empty(), "{:?}", service.overlaps());
}

#[test]
fn remove_forgets_locally_even_when_the_delete_fails() {
    let run = start(Protocol::V1, r#""max_retries":0"#);
    let sid = session(27);
    let secret = share(&sid);
    run.service.inject(Rule::path("/share_delete").status(500));
    let e = api::remove(&sid, &secret).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert!(!e.message.contains(&secret));
    assert_eq!(stats()["shares"], 0);
    assert_eq!(
        api::remove(&sid, "").unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
}

#[test]
fn async_create_and_remove_complete_on_a_library_thread() {
    let run = start(Protocol::V1, "");
    let gate = run.service.hold("/share_create", 1);
    let (tx, rx) = mpsc::channel();
    let sid = session(28);
    let caller = thread::current().id();
    let done = tx.clone();
    let id = api::create_async(
        &sid,
        Box::new(move |id, status| done.send((id, status, thread::current().id())).unwrap()),
    )
    .unwrap();
    assert!(
        rx.try_recv().is_err(),
        "create_async returned before the service answered"
    );
    assert_eq!(
        api::op_take(id).unwrap_err().kind,
        ErrorKind::InvalidArgument,
        "not finished yet"
    );
    assert!(gate.wait_arrived(1, LONG));
    assert!(rx.try_recv().is_err(), "the create is held at the gate");
    gate.release();
    let (done_id, status, thread) = rx.recv_timeout(LONG).unwrap();
    assert_eq!((done_id, status), (id, Ok(())));
    assert_ne!(thread, caller);
    let json: serde_json::Value = serde_json::from_str(&api::op_take(id).unwrap()).unwrap();
    let secret = json["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        api::op_take(id).unwrap_err().kind,
        ErrorKind::InvalidArgument,
        "taken once"
    );
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    api::flush(LONG).unwrap();
    let done = tx.clone();
    let id = api::remove_async(
        &sid,
        &secret,
        Box::new(move |id, status| done.send((id, status, thread::current().id())).unwrap()),
    )
    .unwrap();
    assert_eq!(
        stats()["shares"],
        0,
        "the local part is done before remove_async returns"
    );
    let (done_id, status, _) = rx.recv_timeout(LONG).unwrap();
    assert_eq!((done_id, status), (id, Ok(())));
    assert_eq!(api::op_take(id).unwrap(), "{}");
    assert!(run.service.data(&sid).is_none());
    // a failure travels with the operation, not in a thread-local
    run.service.inject(Rule::path("/share_create").status(404));
    let done = tx.clone();
    let id = api::create_async(
        &session(29),
        Box::new(move |id, status| done.send((id, status, thread::current().id())).unwrap()),
    )
    .unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap().1, Err(ErrorKind::HttpStatus));
    assert!(api::op_take(id).unwrap_err().message.contains("404"));
}

#[test]
fn flush_reports_a_timeout_and_finishes_later() {
    let run = start(Protocol::V1, "");
    let sid = session(30);
    share(&sid);
    let gate = run.service.hold_syncs(Protocol::V1, &sid);
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    assert_eq!(
        api::flush(Duration::ZERO).unwrap_err().kind,
        ErrorKind::Timeout
    );
    assert_eq!(
        api::flush(Duration::from_millis(50)).unwrap_err().kind,
        ErrorKind::Timeout
    );
    gate.release();
    api::flush(LONG).unwrap();
    api::flush(Duration::ZERO).unwrap();
}

#[test]
fn shutdown_keeps_its_deadline_and_counts_what_it_dropped() {
    let run = start(Protocol::V1, r#""concurrency":1"#);
    let sid = session(31);
    share(&sid);
    let gate = run.service.hold_syncs(Protocol::V1, &sid);
    for p in 0..5 {
        api::sync(&part_key(&sid, p), &part(p)).unwrap();
    }
    let began = Instant::now();
    let e = api::shutdown(Duration::from_millis(200)).unwrap_err();
    let took = began.elapsed();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(
        took < Duration::from_millis(1200),
        "shutdown(200 ms) took {took:?}"
    );
    assert!(
        e.message.contains("5 contents were dropped"),
        "{}",
        e.message
    );
    let s = stats();
    assert_eq!(
        (s["running"].as_bool(), s["dropped"].as_u64()),
        (Some(false), Some(5))
    );
    // one event per key, naming it and its session
    let events = events();
    let mut named: Vec<String> = events
        .iter()
        .filter(|e| e["type"] == "dropped" && e["reason"] == "shutdown")
        .inspect(|e| {
            assert_eq!(
                (e["count"].as_u64(), e["session"].as_str()),
                (Some(1), Some(sid.as_str()))
            )
        })
        .map(|e| e["key"].as_str().unwrap().to_owned())
        .collect();
    named.sort();
    assert_eq!(named, (0..5).map(|p| part_key(&sid, p)).collect::<Vec<_>>());
    assert_eq!(
        api::sync(&part_key(&sid, 1), "{}").unwrap_err().kind,
        ErrorKind::NotInitialized
    );
    gate.release();
    drop(run);
}

#[test]
fn the_runtime_starts_stops_and_starts_again() {
    let run = start(Protocol::V1, "");
    let e = api::init(None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyInitialized);
    let config = format!(r#"{{"url":"{}"}}"#, run.service.url());
    for round in 0..5u32 {
        api::shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(
            api::shutdown(Duration::ZERO).unwrap_err().kind,
            ErrorKind::NotInitialized
        );
        assert_eq!(
            api::flush(Duration::ZERO).unwrap_err().kind,
            ErrorKind::NotInitialized
        );
        assert_eq!(
            api::create("ses_x").unwrap_err().kind,
            ErrorKind::NotInitialized
        );
        assert_eq!(
            api::sync("x", "{").unwrap_err().kind,
            ErrorKind::NotInitialized,
            "init is checked before the key"
        );
        api::init(Some(&config)).unwrap();
        let sid = session(40 + round);
        share(&sid);
        api::sync(&part_key(&sid, 0), &part(round)).unwrap();
        api::flush(LONG).unwrap();
        assert_eq!(stats()["sent"], 1, "each run counts afresh");
    }
    for bad in [
        r#"{"nope":1}"#,
        r#"{"concurrency":0}"#,
        "not json",
        r#"{"url":"http://example.com"}"#,
    ] {
        api::shutdown(Duration::from_secs(5)).ok();
        let e = api::init(Some(bad)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad}");
    }
}

/// The library's threads (and reqwest's, which owns the connections) still alive.
fn library_threads() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| {
            [
                "share-worker",
                "share-timer",
                "share-notifier",
                "share-init",
                "reqwest",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        })
        .collect()
}

#[test]
fn shutdown_stops_every_thread_and_closes_the_client() {
    let run = start(Protocol::V1, "");
    let sid = session(50);
    share(&sid);
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    assert!(!library_threads().is_empty());
    api::shutdown(LONG).unwrap();
    // threads left behind by an earlier test's deadline end with their requests: wait for them
    let deadline = Instant::now() + Duration::from_secs(10);
    while !library_threads().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(library_threads(), Vec::<String>::new());
    assert_eq!(stats()["sent"], 1, "the final figures outlive the runtime");
    drop(run);
}

#[test]
fn shutdown_lets_async_operations_finish_within_its_deadline() {
    let run = start(Protocol::V1, "");
    let (tx, rx) = mpsc::channel();
    let done = tx.clone();
    let id = api::create_async(
        &session(60),
        Box::new(move |id, status| done.send((id, status)).unwrap()),
    )
    .unwrap();
    api::shutdown(Duration::from_secs(5)).expect("the create finishes within the deadline");
    assert_eq!(rx.recv_timeout(LONG).unwrap(), (id, Ok(())));
    assert!(api::op_take(id).unwrap().contains("secret"));

    // one that cannot finish in time is abandoned, and shutdown says so
    api::init(Some(&format!(r#"{{"url":"{}"}}"#, run.service.url()))).unwrap();
    let gate = run.service.hold("/share_create", 1);
    let id = api::create_async(
        &session(61),
        Box::new(move |id, status| tx.send((id, status)).unwrap()),
    )
    .unwrap();
    let e = api::shutdown(Duration::from_millis(200)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(
        e.message
            .contains("1 asynchronous operations were abandoned"),
        "{}",
        e.message
    );
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        (id, Err(ErrorKind::Timeout))
    );
    gate.release();
    drop(run);
}

#[test]
fn a_flush_mark_is_not_moved_by_later_writes() {
    let run = start(Protocol::V1, r#""concurrency":1"#);
    let sid = session(70);
    share(&sid);
    // the writes after the mark are held at a gate until the mark is checked
    let later = Gate::new();
    for p in [2, 3] {
        let rule = Rule::path("/share_sync").containing(&part_key(&sid, p));
        run.service.inject(rule.hold(&later));
    }
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    let mark = api::flush_mark().unwrap();
    api::sync(&part_key(&sid, 2), &part(2)).unwrap();
    api::sync(&part_key(&sid, 3), &part(3)).unwrap();
    api::flush_until(mark, LONG).expect("the mark is reached");
    let held = run.service.data(&sid).unwrap();
    assert!(held.contains_key(&part_key(&sid, 1)));
    assert!(
        !held.contains_key(&part_key(&sid, 3)),
        "reached before the later writes went out"
    );
    assert_eq!(
        api::flush(Duration::ZERO).unwrap_err().kind,
        ErrorKind::Timeout
    );
    later.release();
    api::flush(LONG).unwrap();
}

#[test]
fn an_async_flush_completes_when_its_writes_settle_or_its_deadline_passes() {
    let run = start(Protocol::V1, r#""concurrency":1"#);
    let (tx, rx) = mpsc::channel();
    let done =
        move |tx: mpsc::Sender<(u32, Result<(), ErrorKind>)>| -> opencode_share::api::Completion {
            Box::new(move |id, status| tx.send((id, status)).unwrap())
        };
    // nothing pending: completes at once
    let id = api::flush_async(LONG, done(tx.clone())).unwrap();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), (id, Ok(())));
    assert_eq!(api::op_take(id).unwrap(), "{}");

    let sid = session(80);
    share(&sid);
    let (first, second) = (Gate::new(), Gate::new());
    let rule = |p| Rule::path("/share_sync").containing(&part_key(&sid, p));
    run.service.inject(rule(1).hold(&first));
    run.service.inject(rule(2).hold(&second));
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    let short = api::flush_async(Duration::from_millis(50), done(tx.clone())).unwrap();
    let long = api::flush_async(LONG, done(tx.clone())).unwrap();
    api::sync(&part_key(&sid, 2), &part(2)).unwrap(); // after both: neither waits for it
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        (short, Err(ErrorKind::Timeout))
    );
    assert!(
        api::op_take(short)
            .unwrap_err()
            .message
            .contains("deadline")
    );
    first.release();
    assert_eq!(rx.recv_timeout(LONG).unwrap(), (long, Ok(())));
    let held = run.service.data(&sid).unwrap();
    assert!(held.contains_key(&part_key(&sid, 1)) && !held.contains_key(&part_key(&sid, 2)));
    second.release();
    api::flush(LONG).unwrap();
}

#[test]
fn credentials_in_the_service_url_appear_in_no_stats_error_or_event() {
    let _run = start(Protocol::V1, "");
    let port = restart_against_nothing("opencode:hunter2@");
    let e = api::create(&session(25)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
    assert!(!e.message.contains("hunter2"), "{}", e.message);
    let sid = session(26);
    api::sync(&format!("session/share/{sid}"), r#"{"secret":"s"}"#).unwrap();
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    let _ = api::flush(Duration::from_secs(5));
    let events = api::events_take();
    assert!(events.contains("\"retry\""), "{events}");
    assert!(!events.contains("hunter2"), "{events}");
    let stats = api::stats().unwrap();
    assert!(!stats.contains("hunter2"), "{stats}");
    assert!(
        stats.contains(&format!("http://127.0.0.1:{port}")),
        "{stats}"
    );
}
