//! The queue's unit and property tests.
use super::*;

pub(super) fn queue(concurrency: usize) -> Queue {
    Queue::new(Limits {
        concurrency,
        max_retries: 3,
        max_pending_bytes: 1 << 20,
        min_interval: Duration::ZERO,
        probe_interval: Duration::from_secs(30),
        batch: None,
    })
}

fn offer(q: &mut Queue, key: &str, text: &str) -> Offer {
    offer_at(q, key, text, Instant::now())
}

fn offer_at(q: &mut Queue, key: &str, text: &str, now: Instant) -> Offer {
    let r = q.offer(key, "ses", Arc::from(text), || now).unwrap();
    q.check();
    r
}

fn next(q: &mut Queue, now: Instant) -> Option<(String, String)> {
    let d = q
        .next_dispatch(now)
        .map(|d| (d.items[0].key.to_string(), d.items[0].content.to_string()));
    q.check();
    d
}

#[test]
fn coalesces_to_the_newest_and_keeps_first_write_order() {
    let mut q = queue(8);
    let now = Instant::now();
    assert_eq!(offer(&mut q, "a", "1"), Offer::Queued);
    assert_eq!(offer(&mut q, "b", "1"), Offer::Queued);
    assert_eq!(offer(&mut q, "a", "2"), Offer::Coalesced);
    assert_eq!(next(&mut q, now), Some(("a".into(), "2".into())));
    assert_eq!(next(&mut q, now), Some(("b".into(), "1".into())));
    assert_eq!(next(&mut q, now), None);
    assert_eq!(q.counts().coalesced, 1);
}

#[test]
fn a_key_rewritten_in_flight_goes_again_afterwards_never_twice_at_once() {
    let mut q = queue(8);
    let now = Instant::now();
    offer(&mut q, "a", "1");
    assert_eq!(next(&mut q, now), Some(("a".into(), "1".into())));
    offer(&mut q, "a", "2");
    offer(&mut q, "b", "1");
    // a is in flight: only b may go
    assert_eq!(next(&mut q, now), Some(("b".into(), "1".into())));
    assert_eq!(next(&mut q, now), None);
    q.sent("a", Instant::now());
    q.check();
    assert_eq!(next(&mut q, now), Some(("a".into(), "2".into())));
}

#[test]
fn concurrency_one_keeps_the_original_strict_order() {
    let mut q = queue(1);
    let now = Instant::now();
    offer(&mut q, "k", "1");
    assert_eq!(next(&mut q, now).unwrap().0, "k");
    offer(&mut q, "k", "2"); // written while in flight, before j
    offer(&mut q, "j", "1");
    assert_eq!(next(&mut q, now), None);
    q.sent("k", Instant::now());
    assert_eq!(next(&mut q, now), Some(("k".into(), "2".into())));
    q.sent("k", Instant::now());
    assert_eq!(next(&mut q, now), Some(("j".into(), "1".into())));
}

fn queue_with_interval(ms: u64) -> Queue {
    Queue::new(Limits {
        min_interval: Duration::from_millis(ms),
        ..queue(8).limits
    })
}

#[test]
fn a_hot_key_starts_its_requests_at_least_the_interval_apart() {
    let mut q = queue_with_interval(25);
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    offer_at(&mut q, "a", "1", t0);
    assert_eq!(next(&mut q, t0), Some(("a".into(), "1".into())));
    offer_at(&mut q, "a", "2", ms(5)); // a is in flight
    offer_at(&mut q, "b", "1", ms(5));
    assert_eq!(next(&mut q, ms(5)), Some(("b".into(), "1".into())));
    // a's answer comes at 20 ms; its next request may start at 25 ms
    assert!(q.sent("a", ms(20)).wake_timer, "parked");
    q.check();
    assert_eq!(offer_at(&mut q, "a", "3", ms(21)), Offer::Coalesced);
    assert_eq!(next(&mut q, ms(24)), None);
    assert_eq!(q.next_parked_at(), Some(ms(25)));
    assert_eq!(next(&mut q, ms(25)), Some(("a".into(), "3".into())));
    assert_eq!(q.counts().coalesced, 1);
    // b was started at 5 ms: a rewrite sent at 40 ms goes at once
    assert!(!q.sent("b", ms(30)).wake_timer);
    assert_eq!(offer_at(&mut q, "b", "2", ms(40)), Offer::Queued);
    assert_eq!(next(&mut q, ms(40)), Some(("b".into(), "2".into())));
}

#[test]
fn a_key_written_again_soon_after_its_request_ended_is_parked_for_the_rest_of_the_interval() {
    let mut q = queue_with_interval(25);
    let t0 = Instant::now();
    let ms = |n| t0 + Duration::from_millis(n);
    offer_at(&mut q, "a", "1", t0);
    next(&mut q, t0).unwrap();
    assert!(
        !q.sent("a", ms(10)).wake_timer,
        "nothing newer: the key is forgotten"
    );
    assert_eq!(offer_at(&mut q, "a", "2", ms(12)), Offer::Parked);
    assert_eq!(next(&mut q, ms(12)), None);
    assert_eq!(next(&mut q, ms(25)), Some(("a".into(), "2".into())));
    // with the key answered and nothing newer for longer than the interval, it is forgotten
    q.sent("a", ms(30));
    assert_eq!(offer_at(&mut q, "a", "3", ms(60)), Offer::Queued);
}

#[test]
fn a_retry_waits_for_the_interval_too() {
    let mut q = queue_with_interval(25);
    let t0 = Instant::now();
    offer_at(&mut q, "a", "1", t0);
    next(&mut q, t0).unwrap();
    let now = t0 + Duration::from_millis(5);
    let r = q.failed("a", now, Failure::Outage, |_| Duration::from_millis(1));
    assert_eq!(
        r,
        AfterFailure::Retry {
            retry: 1,
            delay: Duration::from_millis(20)
        }
    );
    q.check();
    assert_eq!(q.next_parked_at(), Some(t0 + Duration::from_millis(25)));
}

#[test]
fn retry_parks_the_key_and_a_newer_content_replaces_the_failed_one() {
    let mut q = queue(8);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    next(&mut q, t0).unwrap();
    let r = q.failed("a", t0, Failure::Outage, |n| {
        Duration::from_millis(100 * n as u64)
    });
    assert_eq!(
        r,
        AfterFailure::Retry {
            retry: 1,
            delay: Duration::from_millis(100)
        }
    );
    q.check();
    assert_eq!(next(&mut q, t0), None, "parked until its time");
    assert_eq!(q.next_parked_at(), Some(t0 + Duration::from_millis(100)));
    offer(&mut q, "a", "2"); // keeps coalescing while it waits
    assert_eq!(next(&mut q, t0 + Duration::from_millis(99)), None);
    assert_eq!(
        next(&mut q, t0 + Duration::from_millis(100)),
        Some(("a".into(), "2".into()))
    );
    q.sent("a", Instant::now());
    q.check();
    assert_eq!(q.counts().coalesced, 1);
    assert_eq!(q.counts().sent, 1);
}

#[test]
fn a_retried_key_goes_before_later_keys() {
    let mut q = queue(1);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    next(&mut q, t0).unwrap();
    offer(&mut q, "b", "1");
    q.failed("a", t0, Failure::Outage, |_| Duration::ZERO);
    assert_eq!(next(&mut q, t0).unwrap().0, "a");
}

#[test]
fn an_outage_never_gives_up_and_one_success_ends_every_wait_it_caused() {
    let mut q = queue(8);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    for k in ["a", "b", "c"] {
        offer(&mut q, k, "1");
    }
    for k in ["a", "b", "c"] {
        assert_eq!(next(&mut q, t0).unwrap().0, k);
    }
    assert_eq!(q.service_down_since(), None);
    for k in ["a", "b", "c"] {
        q.failed(k, t0, Failure::Outage, |_| Duration::from_secs(30));
    }
    q.check();
    // OUTAGE_AFTER failures in a row: the service is down, the gate closed for the backoff
    assert_eq!(OUTAGE_AFTER, 3);
    assert_eq!(q.service_down_since(), Some(t0));
    assert_eq!(
        q.take_service_changes(),
        [ServiceChange::Outage { failures: 3 }]
    );
    let half = t0 + Duration::from_millis(500);
    offer_at(&mut q, "d", "1", half);
    assert_eq!(next(&mut q, half), None, "new writes never start a request");
    assert_eq!(q.startable(), 0);
    // the keys wait their 30 s; the gate opens after at most PROBE_SPACING_MAX (1 s)
    assert_eq!(PROBE_SPACING_MAX, Duration::from_secs(1));
    assert_eq!(q.next_parked_at(), Some(at(1)));
    // one probe at a time, the oldest waiting key (pulled from its 30 s wait), spaced by 1 s
    for round in 1..=20u64 {
        let now = at(round);
        q.wake_due(now); // the timer's turn
        assert_eq!(q.startable(), 1, "round {round}");
        assert_eq!(next(&mut q, now).unwrap().0, "a", "round {round}");
        assert_eq!(next(&mut q, now), None, "round {round}: one at a time");
        assert_eq!(q.startable(), 0);
        offer_at(&mut q, "d", &round.to_string(), now);
        q.failed("a", now, Failure::Outage, |_| Duration::from_secs(30));
        q.check();
        assert_eq!(
            next(&mut q, now),
            None,
            "round {round}: spaced by the backoff"
        );
        assert_eq!(q.next_parked_at(), Some(at(round + 1)));
    }
    assert_eq!(q.counts().dropped, 0);
    assert!(q.take_service_changes().is_empty());
    // the probe succeeds: the outage ends, every waiting key goes at once
    let now = at(21);
    let probe = next(&mut q, now).unwrap();
    assert_eq!(probe.0, "a");
    assert!(q.sent("a", now).wake_timer);
    q.check();
    assert_eq!(q.service_down_since(), None);
    let changes = q.take_service_changes();
    assert!(
        matches!(
            changes[..],
            [ServiceChange::Recovered { duration, held_back }]
                if duration == Duration::from_secs(21) && held_back > 0
        ),
        "{changes:?}"
    );
    let mut rest: Vec<String> = (0..3).map(|_| next(&mut q, now).unwrap().0).collect();
    rest.sort();
    assert_eq!(rest, ["b", "c", "d"]);
    assert_eq!(q.contents().len(), 3);
}

#[test]
fn a_failure_while_others_succeed_keeps_its_own_backoff() {
    let mut q = queue(8);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    offer(&mut q, "b", "1");
    next(&mut q, t0).unwrap();
    next(&mut q, t0).unwrap();
    q.sent("b", t0); // a success while a's request was under way
    q.failed("a", t0, Failure::Outage, |_| Duration::from_secs(9));
    offer(&mut q, "b", "2");
    next(&mut q, t0).unwrap();
    q.sent("b", t0);
    q.check();
    assert_eq!(next(&mut q, t0), None, "a keeps its own wait");
    // nor does a 500 end it early
    offer(&mut q, "c", "1");
    next(&mut q, t0).unwrap();
    q.failed("c", t0, Failure::Refusal, |_| Duration::from_secs(9));
    offer(&mut q, "b", "3");
    next(&mut q, t0).unwrap();
    q.sent("b", t0);
    assert_eq!(next(&mut q, t0), None);
}

#[test]
fn a_429_closes_the_gate_for_the_whole_service_for_its_wait() {
    let mut q = queue(8);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    next(&mut q, t0).unwrap();
    q.failed("a", t0, Failure::Busy, |_| Duration::from_secs(9));
    offer(&mut q, "b", "1");
    assert_eq!(
        next(&mut q, t0),
        None,
        "another key waits the service's wait too"
    );
    assert_eq!(q.startable(), 0);
    assert_eq!(q.service_down_since(), None, "one 429 is not an outage");
    let later = t0 + Duration::from_secs(9);
    assert_eq!(q.next_parked_at(), Some(later));
    assert_eq!(next(&mut q, later).unwrap().0, "a");
    assert_eq!(next(&mut q, later).unwrap().0, "b");
    q.check();
}

fn offer_to(q: &mut Queue, session: &str, key: &str, text: &str, now: Instant) -> Offer {
    let r = q.offer(key, session, Arc::from(text), || now).unwrap();
    q.check();
    r
}

#[test]
fn a_share_answered_500_max_retries_times_is_held_probed_and_resumed() {
    let mut q = queue(8); // max_retries 3, probe_interval 30 s
    let t0 = Instant::now();
    let s = |n| t0 + Duration::from_secs(n);
    for k in ["s1/a", "s1/b"] {
        offer_to(&mut q, "s1", k, "1", t0);
    }
    offer_to(&mut q, "s2", "s2/a", "1", t0);
    // s2 succeeds: the service is up
    assert_eq!(next(&mut q, t0).unwrap().0, "s1/a");
    assert_eq!(next(&mut q, t0).unwrap().0, "s1/b");
    assert_eq!(next(&mut q, t0).unwrap().0, "s2/a");
    q.sent("s2/a", t0);
    let mark = q.last_seq();
    let zero = |_| Duration::ZERO;
    assert!(matches!(
        q.failed("s1/a", t0, Failure::Refusal, zero),
        AfterFailure::Retry { .. }
    ));
    assert!(matches!(
        q.failed("s1/b", t0, Failure::Refusal, zero),
        AfterFailure::Retry { .. }
    ));
    // those two were one burst: one 500 counted; one more in a row, then the third refuses
    next(&mut q, t0).unwrap();
    assert!(matches!(
        q.failed("s1/a", t0, Failure::Refusal, zero),
        AfterFailure::Retry { .. }
    ));
    next(&mut q, t0).unwrap();
    assert_eq!(
        q.failed("s1/a", t0, Failure::Refusal, zero),
        AfterFailure::Held { newly: true }
    );
    q.check();
    assert!(q.is_refused("s1"));
    assert!(
        !q.holds_up_to(mark),
        "flushes do not wait for a refused share"
    );
    assert_eq!(q.held_up_to(mark), (2, 1));
    assert_eq!(q.counts().dropped, 0);
    // rewrites keep coalescing; nothing goes before the probe
    offer_to(&mut q, "s1", "s1/b", "2", s(1));
    offer_to(&mut q, "s1", "s1/c", "1", s(1));
    assert_eq!(next(&mut q, s(29)), None);
    assert_eq!(q.next_parked_at(), Some(s(30)));
    // one request per probe interval for the share, not per key
    let probe = next(&mut q, s(30)).unwrap();
    assert_eq!(next(&mut q, s(30)), None);
    assert_eq!(
        q.failed(&probe.0, s(30), Failure::Refusal, zero),
        AfterFailure::Held { newly: false }
    );
    q.check();
    assert_eq!(next(&mut q, s(59)), None);
    let probe = next(&mut q, s(60)).unwrap();
    assert_eq!(next(&mut q, s(60)), None);
    // the probe succeeds: the share resumes and all its keys go
    assert!(q.sent(&probe.0, s(60)).resumed);
    q.check();
    assert!(!q.is_refused("s1"));
    let mut rest = vec![
        next(&mut q, s(60)).unwrap().0,
        next(&mut q, s(60)).unwrap().0,
    ];
    rest.sort();
    let mut want = vec!["s1/a", "s1/b", "s1/c"];
    want.retain(|k| *k != probe.0);
    assert_eq!(rest, want);
}

#[test]
fn a_burst_of_concurrent_500s_counts_once_toward_refusal() {
    let mut q = queue(8); // max_retries 3
    let t0 = Instant::now();
    let zero = |_| Duration::ZERO;
    let keys: Vec<String> = (0..8).map(|n| format!("s1/{n}")).collect();
    for k in &keys {
        offer_to(&mut q, "s1", k, "1", t0);
    }
    for _ in &keys {
        next(&mut q, t0).unwrap();
    }
    // eight requests under way together, all answered 500: one burst, one count
    for k in &keys {
        assert!(matches!(
            q.failed(k, t0, Failure::Refusal, zero),
            AfterFailure::Retry { .. }
        ));
    }
    q.check();
    assert!(!q.is_refused("s1"), "a burst is one failed attempt");
    // a second burst, started after the first came back: the second count
    for _ in &keys {
        next(&mut q, t0).unwrap();
    }
    for k in &keys {
        q.failed(k, t0, Failure::Refusal, zero);
    }
    assert!(
        !q.is_refused("s1"),
        "two attempts spread over time, not three"
    );
    // one request started after that: the third in a row refuses the share
    next(&mut q, t0).unwrap();
    let first = q.failed("s1/0", t0, Failure::Refusal, zero);
    assert_eq!(first, AfterFailure::Held { newly: true });
    assert!(q.is_refused("s1"));
    q.check();
}

/// A queue whose share s1 (key s1/a) got max_retries (3) answers of 500 with no success.
fn refused_s1(t0: Instant) -> Queue {
    let mut q = queue(8);
    offer_to(&mut q, "s1", "s1/a", "1", t0);
    for _ in 0..3 {
        next(&mut q, t0).unwrap();
        q.failed("s1/a", t0, Failure::Refusal, |_| Duration::ZERO);
    }
    q
}

#[test]
fn a_refused_share_given_a_new_secret_is_probed_at_once() {
    let t0 = Instant::now();
    let mut q = refused_s1(t0);
    assert_eq!(next(&mut q, t0), None);
    assert!(!q.probe_now("s2", t0));
    assert!(q.probe_now("s1", t0));
    q.check();
    assert_eq!(next(&mut q, t0).unwrap().0, "s1/a");
}

#[test]
fn a_refusal_without_evidence_is_probed_at_the_next_success() {
    let t0 = Instant::now();
    let mut q = refused_s1(t0);
    assert!(q.is_refused("s1"));
    // outage failures in between neither count nor reset: another share succeeds later
    offer_to(&mut q, "s2", "s2/a", "1", t0);
    next(&mut q, t0).unwrap();
    q.sent("s2/a", t0);
    q.check();
    assert_eq!(next(&mut q, t0).unwrap().0, "s1/a", "probed at once");
    q.failed("s1/a", t0, Failure::Refusal, |_| Duration::ZERO);
    offer_to(&mut q, "s2", "s2/a", "2", t0);
    next(&mut q, t0).unwrap();
    q.sent("s2/a", t0);
    assert_eq!(
        next(&mut q, t0),
        None,
        "now confirmed: the next probe waits its interval"
    );
}

#[test]
fn given_up_contents_are_reported_once_by_the_flush_after_them() {
    let mut q = queue(8);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    next(&mut q, t0).unwrap();
    q.failed("a", t0, Failure::Final, |_| Duration::ZERO);
    q.give_up_unsent();
    let mark = q.last_seq();
    q.give_up_unsent();
    q.check();
    assert_eq!(q.take_given_up(mark), 2);
    assert_eq!(q.take_given_up(mark), 0);
    assert_eq!(q.take_given_up(u64::MAX), 1);
    // a removed session's contents are not given up, a revoked one's are
    offer_to(&mut q, "s", "k1", "1", t0);
    assert_eq!(q.purge_session("s", false), 1);
    offer_to(&mut q, "s", "k1", "1", t0);
    assert_eq!(q.purge_session("s", true), 1);
    assert_eq!(q.take_given_up(u64::MAX), 1);
    q.check();
}

#[test]
fn a_rejected_content_is_dropped_and_the_newer_one_still_goes() {
    let mut q = queue(8);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    next(&mut q, t0).unwrap();
    offer(&mut q, "a", "2");
    assert_eq!(
        q.failed("a", t0, Failure::Final, |_| unreachable!()),
        AfterFailure::Dropped { given_up: true }
    );
    assert_eq!(next(&mut q, t0), Some(("a".into(), "2".into())));
}

#[test]
fn purge_drops_pending_and_cancels_retries_of_flights() {
    let mut q = queue(8);
    let t0 = Instant::now();
    q.offer("s1/a", "s1", Arc::from("1"), Instant::now).unwrap();
    q.offer("s1/b", "s1", Arc::from("1"), Instant::now).unwrap();
    q.offer("s2/a", "s2", Arc::from("1"), Instant::now).unwrap();
    let d = q.next_dispatch(t0).unwrap();
    assert_eq!(&*d.items[0].key, "s1/a");
    q.offer("s1/a", "s1", Arc::from("2"), Instant::now).unwrap();
    assert_eq!(q.in_flight_of("s1"), 1);
    assert_eq!(q.purge_session("s1", false), 2);
    q.check();
    assert_eq!(
        q.failed("s1/a", t0, Failure::Outage, |_| Duration::ZERO),
        AfterFailure::Dropped { given_up: false }
    );
    q.check();
    assert_eq!(q.in_flight_of("s1"), 0);
    assert_eq!(next(&mut q, t0), Some(("s2/a".into(), "1".into())));
    assert_eq!(next(&mut q, t0), None);
}

#[test]
fn pending_bytes_are_bounded() {
    let mut q = Queue::new(Limits {
        concurrency: 1,
        max_retries: 0,
        max_pending_bytes: 10,
        min_interval: Duration::ZERO,
        probe_interval: Duration::from_secs(30),
        batch: None,
    });
    q.offer("a", "s", Arc::from("123456"), Instant::now)
        .unwrap();
    let full = q
        .offer("b", "s", Arc::from("123456"), Instant::now)
        .unwrap_err();
    assert_eq!(
        full,
        QueueFull {
            pending_bytes: 6,
            limit: 10
        }
    );
    // replacing a's content only counts the difference
    q.offer("a", "s", Arc::from("1234567890"), Instant::now)
        .unwrap();
    q.check();
    assert_eq!(q.counts().queued, 2);
    // in flight content is not pending
    q.next_dispatch(Instant::now()).unwrap();
    q.offer("b", "s", Arc::from("123456"), Instant::now)
        .unwrap();
    q.check();
}

#[test]
fn a_flush_mark_survives_coalescing_and_retries() {
    let mut q = queue(8);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    let mark = q.last_seq();
    offer(&mut q, "a", "2"); // rewritten after the flush began: still owed
    assert!(q.holds_up_to(mark));
    next(&mut q, t0).unwrap();
    offer(&mut q, "a", "3");
    q.failed("a", t0, Failure::Outage, |_| Duration::ZERO);
    q.check();
    assert!(
        q.holds_up_to(mark),
        "the retried content still covers the first write"
    );
    assert_eq!(next(&mut q, t0), Some(("a".into(), "3".into())));
    q.sent("a", Instant::now());
    assert!(!q.holds_up_to(mark));
}

#[test]
fn flush_marks_and_drain() {
    let mut q = queue(8);
    let t0 = Instant::now();
    offer(&mut q, "a", "1");
    let mark = q.last_seq();
    assert!(q.holds_up_to(mark));
    next(&mut q, t0).unwrap();
    offer(&mut q, "b", "1");
    assert!(q.holds_up_to(mark));
    q.sent("a", Instant::now());
    assert!(!q.holds_up_to(mark), "later writes do not hold a flush");
    assert!(q.holds_up_to(q.last_seq()));
    assert_eq!(q.drain(), (1, vec![(Arc::from("b"), Arc::from("ses"), 1)]));
    q.check();
    assert!(!q.holds_up_to(u64::MAX));
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// A v1 dispatch's one item.
    fn single(d: Dispatch) -> Item {
        assert_eq!(d.items.len(), 1, "v1 dispatches carry one key");
        d.items.into_iter().next().unwrap()
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(u8),
        Dispatch,
        /// Complete the i-th request under way: 0 success, 1 outage, 2 answer 500, 3 rejection.
        Complete(usize, u8),
        Tick(u16),
    }

    fn op(fatal: bool) -> impl Strategy<Value = Op> {
        let outcome = if fatal { 0u8..4 } else { 0u8..3 };
        prop_oneof![
            4 => (0u8..6).prop_map(Op::Write),
            3 => Just(Op::Dispatch),
            3 => (0usize..8, outcome).prop_map(|(i, o)| Op::Complete(i, o)),
            1 => (0u16..500).prop_map(Op::Tick),
        ]
    }

    struct Run {
        q: Queue,
        now: Instant,
        flying: Vec<Item>,
        /// When each key's latest request started.
        started: HashMap<String, Instant>,
        /// What the service received, per key, in order.
        service: HashMap<String, Vec<u64>>,
        written: HashMap<String, u64>,
        next_value: u64,
    }

    impl Run {
        fn new(concurrency: usize, max_retries: u32, min_interval_ms: u64) -> Run {
            Run {
                q: Queue::new(Limits {
                    concurrency,
                    max_retries,
                    max_pending_bytes: usize::MAX,
                    min_interval: Duration::from_millis(min_interval_ms),
                    probe_interval: Duration::from_millis(700),
                    batch: None,
                }),
                now: Instant::now(),
                started: HashMap::new(),
                flying: Vec::new(),
                service: HashMap::new(),
                written: HashMap::new(),
                next_value: 0,
            }
        }

        fn apply(&mut self, op: &Op) {
            match *op {
                Op::Write(k) => {
                    self.next_value += 1;
                    let key = format!("session/part/s{}/m/{k}", k % 2);
                    self.q
                        .offer(
                            &key,
                            &format!("s{}", k % 2),
                            Arc::from(self.next_value.to_string()),
                            || self.now,
                        )
                        .unwrap();
                    self.written.insert(key, self.next_value);
                }
                Op::Dispatch => {
                    if let Some(d) = self.q.next_dispatch(self.now).map(single) {
                        assert!(
                            !self.flying.iter().any(|f| f.key == d.key),
                            "two requests in flight for {}",
                            d.key
                        );
                        self.start(&d);
                        self.flying.push(d);
                    }
                    assert!(self.flying.len() <= self.q.limits.concurrency);
                }
                Op::Complete(i, outcome) => {
                    if self.flying.is_empty() {
                        return;
                    }
                    let d = self.flying.remove(i % self.flying.len());
                    match outcome {
                        0 => {
                            self.service
                                .entry(d.key.to_string())
                                .or_default()
                                .push(d.content.parse().unwrap());
                            self.q.sent(&d.key, self.now);
                        }
                        1 => {
                            self.q.failed(&d.key, self.now, Failure::Outage, |n| {
                                Duration::from_millis(10 * n as u64)
                            });
                        }
                        2 => {
                            self.q.failed(&d.key, self.now, Failure::Refusal, |n| {
                                Duration::from_millis(10 * n as u64)
                            });
                        }
                        _ => {
                            self.q
                                .failed(&d.key, self.now, Failure::Final, |_| Duration::ZERO);
                        }
                    }
                }
                Op::Tick(ms) => self.now += Duration::from_millis(ms as u64),
            }
            self.q.check();
            assert_eq!(self.q.in_flight(), self.flying.len());
        }

        /// Checks the interval since the key's last request, and notes this one's start.
        fn start(&mut self, d: &Item) {
            if let Some(&last) = self.started.get(&*d.key) {
                assert!(
                    self.now - last >= self.q.limits.min_interval,
                    "{} started again after {:?}",
                    d.key,
                    self.now - last
                );
            }
            self.started.insert(d.key.to_string(), self.now);
        }

        /// Lets the service answer everything until the queue is empty (bounded).
        fn settle(&mut self) {
            for _ in 0..10_000 {
                while let Some(d) = self.q.next_dispatch(self.now).map(single) {
                    self.start(&d);
                    self.flying.push(d);
                }
                if self.flying.is_empty() && self.q.next_parked_at().is_none() {
                    break;
                }
                for d in std::mem::take(&mut self.flying) {
                    self.service
                        .entry(d.key.to_string())
                        .or_default()
                        .push(d.content.parse().unwrap());
                    self.q.sent(&d.key, self.now);
                }
                self.now += Duration::from_secs(3600);
                self.q.check();
            }
            assert_eq!(self.q.pending_keys(), 0);
            assert!(!self.q.holds_up_to(u64::MAX));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        /// Retryable failures only (outages, and 500s that make shares refused): nothing is
        /// given up, the service ends with the newest content of every key, each key's
        /// contents arrive in write order, and a key never has two requests out.
        #[test]
        fn newest_content_wins_in_write_order(
            concurrency in 1usize..4,
            max_retries in 0u32..4,
            min_interval_ms in prop_oneof![Just(0u64), 1u64..300],
            ops in proptest::collection::vec(op(false), 1..200),
        ) {
            let mut run = Run::new(concurrency, max_retries, min_interval_ms);
            for op in &ops {
                run.apply(op);
            }
            run.settle();
            for (key, newest) in &run.written {
                let got = &run.service[key];
                prop_assert_eq!(got.last(), Some(newest), "key {}", key);
                prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order for {}: {:?}", key, got);
            }
            let c = run.q.counts();
            prop_assert_eq!(c.queued, c.sent + c.coalesced + c.dropped);
            prop_assert_eq!(c.dropped, 0);
        }

        /// With rejections and a small retry budget: the bookkeeping stays exact and every
        /// content ends sent, coalesced or dropped.
        #[test]
        fn every_content_is_accounted_for(
            concurrency in 1usize..4,
            max_retries in 0u32..3,
            min_interval_ms in prop_oneof![Just(0u64), 1u64..300],
            ops in proptest::collection::vec(op(true), 1..200),
        ) {
            let mut run = Run::new(concurrency, max_retries, min_interval_ms);
            for op in &ops {
                run.apply(op);
            }
            run.settle();
            let c = run.q.counts();
            prop_assert_eq!(c.queued, c.sent + c.coalesced + c.dropped);
            prop_assert_eq!(c.sent as usize, run.service.values().map(Vec::len).sum::<usize>());
            for got in run.service.values() {
                prop_assert!(got.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
