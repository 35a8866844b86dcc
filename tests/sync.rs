//! share_sync under v1 against the real server (the testkit): final state, coalescing, per-key
//! order, the concurrency limit, secret stripping, key rules, and many threads at once. Where a
//! test needs requests in flight, it holds them at a gate.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use opencode_share::{Status, api};
use serde_json::json;

#[test]
fn the_service_ends_with_the_newest_content_of_every_key_in_write_order() {
    let run = start(Protocol::V1, r#""concurrency":4"#);
    let sid = session(1);
    share(&sid);
    // the syncs wait at a gate while all 200 writes arrive: each key then has at most one
    // request held and one newest content pending
    let gate = run.service.hold_syncs(Protocol::V1, &sid);
    let keys: Vec<String> = (0..5).map(|p| part_key(&sid, p)).collect();
    for n in 0..200 {
        api::sync(&keys[n as usize % 5], &part(n)).unwrap();
    }
    assert!(gate.wait_arrived(1, LONG));
    gate.release();
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    for (p, key) in keys.iter().enumerate() {
        let last = 195 + p as u64;
        assert_eq!(data[key]["n"], last, "{key} ends with its newest content");
        let ns = accepted_ns(&run.service, key);
        assert!(
            ns.windows(2).all(|w| w[0] < w[1]),
            "{key} arrived out of write order: {ns:?}"
        );
        assert_eq!(ns.last(), Some(&last));
    }
    let syncs = run.service.requests_to("/share_sync").len();
    assert!(
        syncs <= 2 * 5,
        "200 writes to 5 keys while the syncs are held coalesce, got {syncs} requests"
    );
    let overlaps = run.service.overlaps();
    assert!(
        overlaps.is_empty(),
        "a key never has two requests at once: {overlaps:?}"
    );
    let s = stats();
    assert_eq!(s["queued"], 200);
    assert_eq!(
        s["sent"].as_u64().unwrap() + s["coalesced"].as_u64().unwrap(),
        200
    );
    assert_eq!(s["sent"].as_u64().unwrap() as usize, syncs);
    assert_eq!(
        (s["pending_keys"].as_u64(), s["in_flight"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn requests_in_flight_never_pass_concurrency_and_do_overlap() {
    let run = start(Protocol::V1, r#""concurrency":3"#);
    let sid = session(2);
    share(&sid);
    let gate = run.service.hold_syncs(Protocol::V1, &sid);
    for p in 0..30 {
        api::sync(&part_key(&sid, p), &part(p)).unwrap();
    }
    // three requests reach the held gate together: they overlap
    assert!(gate.wait_arrived(3, LONG), "3 syncs in flight at once");
    gate.release();
    api::flush(LONG).unwrap();
    assert_eq!(run.service.data(&sid).unwrap().len(), 30);
    let max = run.service.max_concurrent("/share_sync");
    assert!(max <= 3, "at most 3 syncs at once, saw {max}");
}

#[test]
fn concurrency_one_keeps_the_original_strict_order() {
    let run = start(Protocol::V1, r#""concurrency":1"#);
    let sid = session(3);
    share(&sid);
    let writes: Vec<String> = (0..40).map(|p| part_key(&sid, p)).collect();
    for (n, key) in writes.iter().enumerate() {
        api::sync(key, &part(n as u32)).unwrap();
    }
    api::flush(LONG).unwrap();
    let order: Vec<String> = run
        .service
        .requests_to("/share_sync")
        .iter()
        .map(|r| r.json().unwrap()["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, writes);
    assert_eq!(run.service.max_concurrent("/share_sync"), 1);
}

#[test]
fn the_share_secret_is_stripped_from_content_and_absent_from_events_and_stats() {
    for protocol in Protocol::ALL {
        share_secret_is_stripped(protocol);
    }
}

/// The secret as a member of the session info (`share.secret`) and pasted into a part's text:
/// gone from what the server stores, from events and stats; each request carries it once, as
/// the protocol's own `secret` field.
fn share_secret_is_stripped(protocol: Protocol) {
    let run = start(protocol, "");
    let sid = session(4);
    let secret = share(&sid);
    let info = format!(
        r#"{{"id":"{sid}","title":"t","share":{{"url":"https://x/s/1","secret":"{secret}"}},"tool":{{"secret":"not-the-share"}}}}"#
    );
    api::sync(&format!("session/info/{sid}"), &info).unwrap();
    let pasted = json!({"id": "prt_1", "messageID": "msg_1", "type": "text", "text": format!("pasted {secret}")});
    api::sync(
        &format!("session/part/{sid}/msg_1/prt_1"),
        &pasted.to_string(),
    )
    .unwrap();
    api::flush(LONG).unwrap();
    let stored = run.service.stored(short_id(&sid)).unwrap();
    assert_eq!(stored["session"]["share"], json!({"url": "https://x/s/1"}));
    assert_eq!(
        stored["session"]["tool"]["secret"], "not-the-share",
        "other secrets are the host's business"
    );
    assert_eq!(
        stored["part/msg_1/prt_1"]["text"],
        "pasted [secret removed]"
    );
    let events = api::events_take();
    let stats = api::stats().unwrap();
    assert!(events.contains("synced"), "{events}");
    assert!(!events.contains(&secret) && !stats.contains(&secret));
    let syncs = run.service.syncs_of(protocol, &sid);
    assert!(!syncs.is_empty());
    for r in syncs {
        let body = r.body.replace(&secret, "<secret>");
        assert_eq!(r.body.matches(&secret).count(), 1, "{protocol:?}: {body}");
        assert_eq!(r.json().unwrap()["secret"], secret.as_str());
    }
}

#[test]
fn a_share_record_written_by_the_host_shares_the_session() {
    let run = start(Protocol::V1, "");
    let sid = session(5);
    let (_, secret) = run.service.create_share(&sid);
    let key = part_key(&sid, 1);
    api::sync(&key, &part(1)).unwrap(); // not shared yet: ignored
    api::sync(
        &format!("session/share/{sid}"),
        &format!(r#"{{"url":"u","secret":"{secret}"}}"#),
    )
    .unwrap();
    api::sync(&key, &part(2)).unwrap();
    api::flush(LONG).unwrap();
    assert_eq!(run.service.data(&sid).unwrap()[&key]["n"], 2);
    let s = stats();
    assert_eq!(
        (
            s["ignored"].as_u64(),
            s["sent"].as_u64(),
            s["shares"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert!(
        run.service
            .requests_to("/share_sync")
            .iter()
            .all(|r| !r.body.contains("session/share/"))
    );
}

#[test]
fn key_rules_and_bad_content() {
    let _run = start(Protocol::V1, "");
    let sid = session(6);
    share(&sid);
    for bad in [
        "session",
        "session/info",
        "session//x",
        "session/info/",
        "session/part/ses_1//p",
        "session/info/ses_1/",
    ] {
        let e = api::sync(bad, "{}").unwrap_err();
        assert_eq!(e.status, Status::SHARE_ERR_INVALID_ARGUMENT, "{bad}");
        assert!(e.message.contains(bad), "{}", e.message);
    }
    let key = part_key(&sid, 1);
    for bad in ["", "{", "{} {}", "nope", "{\"a\":1,}"] {
        let e = api::sync(&key, bad).unwrap_err();
        assert_eq!(e.status, Status::SHARE_ERR_INVALID_ARGUMENT, "{bad:?}");
    }
    let e = api::sync(&format!("session/share/{sid}"), "not json").unwrap_err();
    assert_eq!(e.status, Status::SHARE_ERR_INVALID_ARGUMENT);
    // not ours, or of a session without a share: ignored, and the content is not even parsed
    api::sync("storage/migration", "not json").unwrap();
    api::sync(&part_key(&session(99), 1), "not json").unwrap();
    assert_eq!(stats()["ignored"], 2);
    assert_eq!(stats()["queued"], 0);
}

#[test]
fn eight_threads_syncing_at_once_lose_nothing() {
    let run = start(Protocol::V1, "");
    let sid = session(7);
    share(&sid);
    let writers: Vec<_> = (0..8u32)
        .map(|t| {
            let sid = sid.clone();
            thread::spawn(move || {
                for n in 0..500u32 {
                    api::sync(&part_key(&sid, t * 1000 + n % 50), &part(n)).unwrap();
                }
            })
        })
        .collect();
    let flusher = thread::spawn(|| api::flush(LONG));
    for w in writers {
        w.join().unwrap();
    }
    flusher.join().unwrap().unwrap();
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    assert_eq!(data.len(), 8 * 50);
    assert!(
        data.values().all(|v| v["n"].as_u64().unwrap() >= 450),
        "every key ends with its last write"
    );
    let s = stats();
    assert_eq!(s["queued"], 4000);
    assert_eq!(
        s["sent"].as_u64().unwrap() + s["coalesced"].as_u64().unwrap(),
        4000
    );
    assert!(run.service.overlaps().is_empty());
}

#[test]
fn requests_say_what_they_are() {
    let run = start(Protocol::V1, r#""user_agent":"host/1.2""#);
    let sid = session(8);
    share(&sid);
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    api::flush(LONG).unwrap();
    let r = &run.service.requests_to("/share_sync")[0];
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("user-agent"), Some("host/1.2"));
    let body = r.json().unwrap();
    assert_eq!(body["sessionID"], sid.as_str());
    assert_eq!(
        body["content"],
        serde_json::json!({"type":"text","text":"write 1","n":1}),
        "content is JSON, not a string"
    );
}

#[test]
fn the_secret_is_removed_even_where_the_content_does_not_read_as_a_tree() {
    let run = start(Protocol::V1, "");
    let sid = session(9);
    let secret = share(&sid);
    let key = format!("session/info/{sid}");
    // valid JSON that serde_json cannot read into a tree: a lone surrogate escape
    api::sync(
        &key,
        &format!(r#"{{"title":"\ud800","share":{{"secret":"{secret}"}}}}"#),
    )
    .unwrap();
    // the server may refuse it (a 400 is a drop): what matters is the body
    let _ = api::flush(LONG);
    let sent = run.service.requests_to("/share_sync");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].body.matches(&secret).count(),
        1,
        "only the body's own secret field: {}",
        sent[0].body
    );
    assert!(
        sent[0]
            .body
            .contains(r#""content":{"title":"\ud800","share":{}}"#),
        "{}",
        sent[0].body
    );
    assert!(!api::events_take().contains(&secret));
}

#[test]
fn sync_queued_and_sync_pending_say_which_keys_an_event_will_name() {
    let run = start(Protocol::V1, "");
    let sid = session(12);
    let unshared = session(13);
    let key = part_key(&sid, 1);
    assert!(
        !api::sync_queued("storage/migration", "{}").unwrap(),
        "a foreign key is ignored"
    );
    assert!(
        !api::sync_queued(&part_key(&unshared, 1), "{}").unwrap(),
        "a session without a share"
    );
    let (_, secret) = run.service.create_share(&sid);
    let record = format!(r#"{{"url":"u","secret":"{secret}"}}"#);
    assert!(
        !api::sync_queued(&format!("session/share/{sid}"), &record).unwrap(),
        "a share record is never sent"
    );
    let gate = run.service.hold_syncs(Protocol::V1, &sid);
    assert!(api::sync_queued(&key, &part(1)).unwrap());
    assert!(
        api::sync_pending(&key).unwrap(),
        "queued or in flight until it settles"
    );
    assert!(gate.wait_arrived(1, LONG));
    assert!(api::sync_pending(&key).unwrap(), "in flight");
    assert!(!api::sync_pending(&part_key(&sid, 2)).unwrap());
    assert!(!api::sync_pending("not even a key").unwrap());
    assert_eq!(
        api::sync_queued(&key, "{").unwrap_err().status,
        Status::SHARE_ERR_INVALID_ARGUMENT
    );
    gate.release();
    api::flush(LONG).unwrap();
    assert!(!api::sync_pending(&key).unwrap());
    let named: Vec<_> = events()
        .into_iter()
        .filter(|e| e["key"] == key.as_str())
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0]["type"], "synced");
    api::shutdown(LONG).unwrap();
    assert_eq!(
        api::sync_queued(&key, &part(2)).unwrap_err().status,
        Status::SHARE_ERR_NOT_INITIALIZED
    );
    assert_eq!(
        api::sync_pending(&key).unwrap_err().status,
        Status::SHARE_ERR_NOT_INITIALIZED
    );
}

#[test]
fn a_hot_key_is_sent_at_most_once_per_min_interval_and_ends_with_its_newest_content() {
    let run = start(Protocol::V1, r#""min_interval_ms":40"#);
    let sid = session(14);
    share(&sid);
    let key = part_key(&sid, 1);
    let other = part_key(&sid, 2);
    let started = std::time::Instant::now();
    for n in 0..150 {
        api::sync(&key, &part(n)).unwrap();
        if n == 75 {
            api::sync(&other, &part(n)).unwrap(); // another key is not held back by the hot one
        }
        thread::sleep(Duration::from_millis(2));
    }
    let writing = started.elapsed();
    api::flush(LONG).unwrap();
    let requests: Vec<_> = run
        .service
        .requests_to("/share_sync")
        .into_iter()
        .filter(|r| r.json().is_some_and(|j| j["key"] == key.as_str()))
        .collect();
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // started 40 ms apart; their arrival may jitter on a loaded machine, never by half
        assert!(
            gap >= Duration::from_millis(20),
            "two requests of one key {gap:?} apart"
        );
    }
    let most = (writing.as_millis() / 40 + 2) as usize;
    assert!(
        requests.len() <= most,
        "{} requests in {writing:?}",
        requests.len()
    );
    assert_eq!(accepted_ns(&run.service, &key).last(), Some(&149));
    assert_eq!(run.service.data(&sid).unwrap()[&other]["n"], 75);
}
