//! Batching (the "next" protocol): one request per share carrying its ready keys.

use super::*;

fn rank(key: &str) -> u8 {
    match key.split('/').nth(1) {
        Some("info") => 0,
        Some("message") => 1,
        _ => 2,
    }
}

fn batching(concurrency: usize, max_bytes: usize) -> Queue {
    Queue::new(Limits {
        batch: Some(Batch {
            max_bytes,
            order: rank,
        }),
        ..super::tests::queue(concurrency).limits
    })
}

fn put(q: &mut Queue, session: &str, key: &str, text: &str, now: Instant) {
    q.offer(key, session, Arc::from(text), || now).unwrap();
    q.check();
}

fn keys(d: &Dispatch) -> Vec<&str> {
    d.items.iter().map(|i| &*i.key).collect()
}

fn texts(d: &Dispatch) -> Vec<&str> {
    d.items.iter().map(|i| &*i.content).collect()
}

#[test]
fn a_share_sends_all_its_ready_keys_in_one_request_session_first_messages_before_parts() {
    let mut q = batching(4, 1 << 20);
    let t = Instant::now();
    put(&mut q, "s", "session/part/s/m/p1", "1", t);
    put(&mut q, "s", "session/message/s/m", "2", t);
    put(&mut q, "s", "session/part/s/m/p2", "3", t);
    put(&mut q, "s", "session/info/s", "4", t);
    let d = q.next_dispatch(t).unwrap();
    q.check();
    assert_eq!(
        keys(&d),
        [
            "session/info/s",
            "session/message/s/m",
            "session/part/s/m/p1",
            "session/part/s/m/p2"
        ]
    );
    assert_eq!(q.requests_in_flight(), 1);
    assert_eq!(q.in_flight(), 4);
    assert!(q.next_dispatch(t).is_none(), "nothing else is ready");
}

#[test]
fn a_share_never_has_two_requests_under_way_and_writes_meanwhile_go_next_together() {
    let mut q = batching(4, 1 << 20);
    let t = Instant::now();
    put(&mut q, "s", "session/part/s/m/p1", "a", t);
    let first = q.next_dispatch(t).unwrap();
    put(&mut q, "s", "session/part/s/m/p1", "b", t);
    put(&mut q, "s", "session/part/s/m/p1", "c", t); // coalesces with b
    put(&mut q, "s", "session/part/s/m/p2", "d", t);
    assert_eq!(q.startable(), 0, "the share is busy");
    assert!(
        q.next_dispatch(t).is_none(),
        "a second request of a busy share"
    );
    q.sent("session/part/s/m/p1", t);
    q.check();
    assert_eq!(q.startable(), 1);
    let second = q.next_dispatch(t).unwrap();
    assert_eq!(keys(&first), ["session/part/s/m/p1"]);
    assert_eq!(texts(&second), ["c", "d"]);
    assert_eq!(q.counts().coalesced, 1);
}

#[test]
fn concurrency_counts_shares_and_a_busy_share_does_not_block_others() {
    let mut q = batching(2, 1 << 20);
    let t = Instant::now();
    for s in ["a", "b", "c"] {
        for n in 0..3 {
            put(&mut q, s, &format!("session/part/{s}/m/{n}"), "x", t);
        }
    }
    assert_eq!(q.startable(), 3);
    let a = q.next_dispatch(t).unwrap();
    let b = q.next_dispatch(t).unwrap();
    assert_eq!((&*a.session, a.items.len()), ("a", 3));
    assert_eq!((&*b.session, b.items.len()), ("b", 3));
    assert!(
        q.next_dispatch(t).is_none(),
        "two shares in flight is the limit"
    );
    assert_eq!(q.requests_in_flight(), 2);
    q.failed_batch(&keys(&a), t, Failure::Final, |_| Duration::ZERO);
    q.check();
    let c = q.next_dispatch(t).unwrap();
    assert_eq!(&*c.session, "c");
}

#[test]
fn a_request_stops_at_the_size_bound_and_the_rest_goes_next() {
    let mut q = batching(4, 10);
    let t = Instant::now();
    for n in 0..5 {
        put(&mut q, "s", &format!("session/part/s/m/{n}"), "1234", t);
    }
    put(&mut q, "s", "session/part/s/m/big", &"x".repeat(50), t);
    let d = q.next_dispatch(t).unwrap();
    assert_eq!(d.items.len(), 2, "8 bytes fit in 10, 12 do not");
    let keys_sent = keys(&d).iter().map(|k| k.to_string()).collect::<Vec<_>>();
    for k in &keys_sent {
        q.sent(k, t);
    }
    let d = q.next_dispatch(t).unwrap();
    assert_eq!(d.items.len(), 2);
    for k in keys(&d).iter().map(|k| k.to_string()).collect::<Vec<_>>() {
        q.sent(&k, t);
    }
    let d = q.next_dispatch(t).unwrap();
    assert_eq!(d.items.len(), 1);
    q.sent(&d.items[0].key.clone(), t);
    let d = q.next_dispatch(t).unwrap();
    assert_eq!(
        keys(&d),
        ["session/part/s/m/big"],
        "a bigger content goes alone"
    );
    q.check();
}

#[test]
fn a_failed_request_counts_once_toward_refusal_and_its_keys_retry_together() {
    let mut q = batching(4, 1 << 20); // max_retries 3
    let t = Instant::now();
    for n in 0..10 {
        put(&mut q, "s", &format!("session/part/s/m/{n}"), "x", t);
    }
    let mut now = t;
    for round in 1..=2 {
        let d = q.next_dispatch(now).unwrap();
        assert_eq!(d.items.len(), 10, "round {round}: all keys again, together");
        let results = q.failed_batch(&keys(&d), now, Failure::Refusal, |_| {
            Duration::from_millis(100)
        });
        q.check();
        assert!(
            results
                .iter()
                .all(|r| matches!(r, AfterFailure::Retry { retry, .. } if *retry == round)),
            "{results:?}"
        );
        assert!(!q.is_refused("s"), "10 keys of one request are one answer");
        assert!(q.next_dispatch(now).is_none(), "parked");
        now += Duration::from_millis(100);
    }
    let d = q.next_dispatch(now).unwrap();
    let results = q.failed_batch(&keys(&d), now, Failure::Refusal, |_| Duration::ZERO);
    q.check();
    assert!(
        q.is_refused("s"),
        "the third 500 in a row refuses the share"
    );
    let newly = results
        .iter()
        .filter(|r| matches!(r, AfterFailure::Held { newly: true }))
        .count();
    assert_eq!(newly, 1, "one refused event per share: {results:?}");
    assert_eq!(q.held(), 10);
}

#[test]
fn a_hot_item_waits_its_interval_and_the_others_do_not_wait_for_it() {
    let mut q = Queue::new(Limits {
        min_interval: Duration::from_millis(50),
        ..batching(4, 1 << 20).limits
    });
    let t = Instant::now();
    put(&mut q, "s", "session/part/s/m/hot", "1", t);
    let d = q.next_dispatch(t).unwrap();
    q.sent(&d.items[0].key.clone(), t);
    let t1 = t + Duration::from_millis(10);
    put(&mut q, "s", "session/part/s/m/hot", "2", t1);
    put(&mut q, "s", "session/part/s/m/cold", "3", t1);
    let d = q.next_dispatch(t1).unwrap();
    assert_eq!(keys(&d), ["session/part/s/m/cold"], "the hot item waits");
    q.sent("session/part/s/m/cold", t1);
    assert!(q.next_dispatch(t1).is_none());
    let d = q.next_dispatch(t + Duration::from_millis(50)).unwrap();
    assert_eq!(texts(&d), ["2"]);
    q.check();
}

#[test]
fn removing_a_share_in_flight_drops_its_pending_keys_and_frees_the_share() {
    let mut q = batching(1, 1 << 20);
    let t = Instant::now();
    put(&mut q, "s", "session/part/s/m/1", "x", t);
    let d = q.next_dispatch(t).unwrap();
    put(&mut q, "s", "session/part/s/m/2", "y", t);
    put(&mut q, "o", "session/part/o/m/1", "z", t);
    assert_eq!(q.purge_session("s", false), 1);
    q.check();
    assert!(
        q.next_dispatch(t).is_none(),
        "concurrency 1: s is still in flight"
    );
    let r = q.failed_batch(&keys(&d), t, Failure::Outage, |_| Duration::ZERO);
    assert_eq!(r, [AfterFailure::Dropped { given_up: false }]);
    q.check();
    assert_eq!(&*q.next_dispatch(t).unwrap().session, "o");
}
