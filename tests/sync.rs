//! share_sync against the real server (the testkit), under v1 and, where the test is the same,
//! under "next" too: final state, coalescing, per-key order, the concurrency limit, secret
//! stripping, key rules, and many threads at once. Where a test needs requests in flight, it
//! holds them at a gate.

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use opencode_share::{ErrorKind, api};
use serde_json::json;

#[test]
fn the_service_ends_with_exactly_the_newest_item_of_every_key_in_write_order() {
    for protocol in Protocol::ALL {
        newest_item_of_every_key_in_write_order(protocol);
    }
}

/// Three sessions written as opencode does (info, diff, model, messages, parts streamed in 10
/// revisions), each while its syncs are held at a gate: the server ends with exactly the newest
/// item of every key, each key's versions arrived in write order, the writes coalesced.
fn newest_item_of_every_key_in_write_order(protocol: Protocol) {
    let run = start(protocol, r#""concurrency":4"#);
    let mut shares = Vec::new();
    for n in 1..=3 {
        let mut s = Session::new(&session(n));
        share(&s.sid);
        let gate = run.service.hold_syncs(protocol, &s.sid);
        s.info("draft");
        s.diff(&["a.rs"]);
        for m in 0..3 {
            let mid = format!("msg_{m}");
            s.message(&mid);
            for p in 0..4 {
                let mut text = String::new();
                for w in 0..10 {
                    text.push_str(&format!("w{w} "));
                    s.part(&mid, &format!("prt_{m}_{p}"), &text);
                }
            }
        }
        s.info("final");
        s.diff(&["a.rs", "b.rs"]);
        s.model(&["gpt", "claude"]);
        assert!(gate.wait_arrived(1, LONG));
        gate.release();
        api::flush(LONG).unwrap();
        let id = short_id(&s.sid);
        assert_exactly(&run.service.next_items(id).unwrap(), &s.expected);
        assert_eq!(s.expected.len(), 3 + 3 + 12);
        shares.push(s.sid.clone());
    }
    let mut all = Vec::new();
    for sid in &shares {
        all.extend(run.service.syncs_of(protocol, sid));
    }
    assert!(all.iter().all(|r| r.status == Some(200)), "no sync failed");
    assert!(
        all.iter()
            .all(|r| r.header("content-type") == Some("application/json"))
    );
    let overlaps = run.service.overlaps();
    assert!(
        overlaps.is_empty(),
        "one request per flow at a time: {overlaps:?}"
    );
    // each key's versions arrived in write order
    let mut versions: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for r in &all {
        let json = r.json().unwrap();
        let items = match protocol {
            Protocol::V1 => vec![(json["key"].to_string(), json["content"]["v"].as_u64())],
            Protocol::Next => json["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    let key = format!("{} {}", r.path, testkit::item_key(i).unwrap());
                    (key, i["data"]["v"].as_u64())
                })
                .collect(),
        };
        for (key, v) in items {
            versions.entry(key).or_default().extend(v);
        }
    }
    for (key, vs) in &versions {
        assert!(
            vs.windows(2).all(|w| w[0] < w[1]),
            "{key} out of order: {vs:?}"
        );
    }
    let s = stats();
    let queued = 3 * (5 + 3 + 120);
    assert_eq!(s["queued"], queued);
    assert!(
        all.len() < queued / 4,
        "{} requests for {queued} writes",
        all.len()
    );
    assert_eq!(s["requests"].as_u64(), Some(all.len() as u64));
    if protocol == Protocol::Next {
        assert_eq!(s["protocol"], "next");
    }
    if protocol == Protocol::V1 {
        let (sent, coalesced) = (
            s["sent"].as_u64().unwrap(),
            s["coalesced"].as_u64().unwrap(),
        );
        assert_eq!(sent + coalesced, queued as u64);
        assert_eq!(sent as usize, all.len());
    }
    assert_eq!(
        (
            s["pending_keys"].as_u64(),
            s["in_flight"].as_u64(),
            s["dropped"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    // a synced event per key delivered
    let events = events();
    for sid in &shares {
        let key = format!("session/part/{sid}/msg_2/prt_2_3");
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "synced" && e["key"] == key.as_str()),
            "no synced event for {key}"
        );
    }
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
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad}");
        assert!(e.message.contains(bad), "{}", e.message);
    }
    let key = part_key(&sid, 1);
    for bad in ["", "{", "{} {}", "nope", "{\"a\":1,}"] {
        let e = api::sync(&key, bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad:?}");
    }
    let e = api::sync(&format!("session/share/{sid}"), "not json").unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
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
        api::sync_queued(&key, "{").unwrap_err().kind,
        ErrorKind::InvalidArgument
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
        api::sync_queued(&key, &part(2)).unwrap_err().kind,
        ErrorKind::NotInitialized
    );
    assert_eq!(
        api::sync_pending(&key).unwrap_err().kind,
        ErrorKind::NotInitialized
    );
}

#[test]
fn a_hot_key_waits_min_interval_between_sends_and_the_others_do_not() {
    for protocol in Protocol::ALL {
        hot_key_waits_min_interval(protocol);
    }
}

/// A key rewritten less than `min_interval_ms` after its last send waits out the interval (its
/// rewrites meanwhile coalesce into one send of the newest) while a new key goes at once. Pacing
/// is about time, so the test has a margin rather than a gate: the cold key must go before the
/// hot one's 2 s are up (400 ms failed once at a load of 13 on 2 cores).
fn hot_key_waits_min_interval(protocol: Protocol) {
    let run = start(protocol, r#""min_interval_ms":2000"#);
    let mut s = Session::new(&session(14));
    share(&s.sid);
    s.part("msg_1", "prt_hot", "v1");
    assert!(
        run.service
            .wait_for(LONG, |log| log.iter().any(|r| r.path.ends_with("sync")))
    );
    for n in 2..=50 {
        s.part("msg_1", "prt_hot", &format!("v{n}"));
    }
    s.part("msg_1", "prt_cold", "first");
    api::flush(LONG).unwrap();
    let id = short_id(&s.sid);
    assert_exactly(&run.service.next_items(id).unwrap(), &s.expected);
    let syncs = run.service.syncs_of(protocol, &s.sid);
    // the part ids each sync carried
    let carried: Vec<Vec<String>> = syncs
        .iter()
        .map(|r| {
            let json = r.json().unwrap();
            let keys = match protocol {
                Protocol::V1 => vec![json["key"].as_str().unwrap().to_owned()],
                Protocol::Next => json["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| testkit::item_key(i).unwrap())
                    .collect(),
            };
            let last = |k: &String| k.rsplit('/').next().unwrap().to_owned();
            keys.iter().map(last).collect()
        })
        .collect();
    assert_eq!(
        carried,
        [vec!["prt_hot"], vec!["prt_cold"], vec!["prt_hot"]],
        "{protocol:?}: the new key went at once, the rewritten one once, in a later request"
    );
    let waited = syncs[2].at - syncs[0].at;
    assert!(
        waited >= Duration::from_millis(2000),
        "{protocol:?}: re-sent after {waited:?}"
    );
}
