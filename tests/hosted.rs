//! The guarantees of issue 9 against the real server playing opencode's hosted service
//! (`testkit::Service::start_hosted`: 403/404 as 500, the 128 KiB value cap, short-id keying,
//! silent 200s): outages lose nothing, a refused share is not hammered,
//! oversized contents are never uploaded, the secret is never published, short-id collisions are
//! not reported as created. Every test asserts what the service saw.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use opencode_share::{ErrorKind, api};
use serde_json::Value;

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Syncs the service answered for `sid`'s keys.
fn syncs_of(run: &Running, sid: &str) -> Vec<testkit::Passed> {
    run.service.syncs_of(Protocol::V1, sid)
}

#[test]
fn an_outage_far_longer_than_the_retry_budget_loses_nothing() {
    let run = start_hosted(r#""max_retries":2,"connect_timeout_ms":500"#);
    let sid = session(101);
    share(&sid);
    run.service.go_down();
    for p in 0..11 {
        api::sync(&part_key(&sid, p), &part(p)).unwrap();
    }
    // every key fails far more often than max_retries (2) while the service is down
    assert!(wait_for_stat("retried", |n| n >= 11 * 8) >= 11 * 8);
    assert_eq!(
        api::flush(Duration::ZERO).unwrap_err().kind,
        ErrorKind::Timeout
    );
    run.service.come_up();
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    assert_eq!(data.len(), 11, "every key arrived");
    for p in 0..11 {
        assert_eq!(data[&part_key(&sid, p)]["n"], p);
    }
    let s = stats();
    assert_eq!(
        (s["dropped"].as_u64(), s["sent"].as_u64()),
        (Some(0), Some(11))
    );
}

#[test]
fn the_first_answer_after_an_outage_ends_every_keys_wait() {
    // the service is down: the library's gate lets out one probe at a time (the oldest key),
    // spaced by the backoff; a fresh key written after it is back starts nothing by itself
    // min_interval 0: the oldest key may probe however recently it was tried
    let config = r#""retry_initial_ms":100,"retry_max_ms":400,"connect_timeout_ms":500"#;
    let run = start_hosted(&format!(r#"{config},"min_interval_ms":0"#));
    let sid = session(102);
    share(&sid);
    run.service.go_down();
    for p in 0..10 {
        api::sync(&part_key(&sid, p), &part(p)).unwrap();
    }
    assert!(wait_for_stat("retried", |n| n >= 10) >= 10);
    assert!(wait_for_outage(), "{}", stats());
    let gate = Gate::new();
    run.service
        .inject(Rule::path("/share_sync").times(usize::MAX).hold(&gate));
    run.service.come_up();
    api::sync(&part_key(&sid, 10), &part(10)).unwrap();
    assert!(
        gate.wait_arrived(1, Duration::from_secs(5)),
        "the probe comes: {} {:?}",
        stats(),
        events().iter().rev().take(5).collect::<Vec<_>>()
    );
    gate.release();
    api::flush(LONG).unwrap();
    assert_eq!(run.service.data(&sid).unwrap().len(), 11);
    // the probe's success ended every wait: each key went once after the service was back
    let after: Vec<_> = run
        .service
        .requests_to("/share_sync")
        .into_iter()
        .filter(|r| r.status == Some(200))
        .collect();
    assert_eq!(
        after.len(),
        11,
        "one request per key once the service is back"
    );
    assert_eq!(
        after[0].json().unwrap()["key"],
        part_key(&sid, 0).as_str(),
        "the probe carried the oldest content"
    );
    assert_eq!(stats()["dropped"], 0);
}

#[test]
fn a_refused_share_is_probed_once_per_retry_max_and_resumes_when_it_is_accepted() {
    for protocol in Protocol::ALL {
        refused_share_is_probed_then_resumes(protocol);
    }
}

fn refused_share_is_probed_then_resumes(protocol: Protocol) {
    let config = r#""max_retries":3,"retry_max_ms":300"#;
    let run = match protocol {
        Protocol::V1 => start_hosted(config),
        Protocol::Next => start_next(config),
    };
    let (mut refused, mut fine) = (Session::new(&session(103)), Session::new(&session(104)));
    share(&fine.sid);
    let (_, real) = run.service.create_share(&refused.sid);
    // the host knows a stale secret: the hosted service answers every sync with 500
    let stale = "00000000-0000-4000-8000-0000000000aa";
    api::sync(
        &format!("session/share/{}", refused.sid),
        &format!(r#"{{"secret":"{stale}"}}"#),
    )
    .unwrap();
    for round in 0..5 {
        for p in 0..10 {
            refused.part("msg_1", &format!("prt_{p}"), &format!("round {round}"));
        }
        fine.part("msg_1", &format!("prt_{round}"), "goes");
    }
    // the flush stops waiting for the refused share and says so
    let e = api::flush(LONG).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus, "{}", e.message);
    assert!(
        e.message
            .contains("10 contents wait for 1 shares the service refuses"),
        "{protocol:?}: {}",
        e.message
    );
    assert!(!e.message.contains(stale));
    let fine_held = run.service.next_items(short_id(&fine.sid)).unwrap();
    assert_exactly(&fine_held, &fine.expected); // the other share went on
    let seen = events();
    let refusals = of_type(&seen, "refused");
    assert_eq!(refusals.len(), 1, "one event says so");
    assert_eq!(refusals[0]["session"], refused.sid.as_str());
    assert!(!serde_json::to_string(&seen).unwrap().contains(stale));
    let s = stats();
    assert_eq!(
        (
            s["refused_shares"].as_u64(),
            s["refused_contents"].as_u64(),
            s["dropped"].as_u64()
        ),
        (Some(1), Some(10), Some(0)),
        "{protocol:?}"
    );
    // from now on: at most one request per retry_max (300 ms) for the share, whatever its keys
    let syncs_of = || run.service.syncs_of(protocol, &refused.sid);
    let before = syncs_of().len();
    let most = match protocol {
        // max_retries 500s counted by time: each counted one may come with the rest of its
        // burst (up to concurrency 8 under way), and the last burst's answers after it
        Protocol::V1 => (3 + 1) * 8,
        Protocol::Next => 4, // one batch counts once (a probe may have started since)
    };
    assert!(
        (3..=most).contains(&before),
        "the refusal came after max_retries 500s: {before} requests"
    );
    let window = Instant::now();
    thread::sleep(Duration::from_millis(1500));
    let probes = syncs_of().len() - before;
    let allowed = (window.elapsed().as_millis() / 300) as usize + 1;
    assert!(
        probes <= allowed,
        "{probes} requests in {:?}",
        window.elapsed()
    );
    let statuses: Vec<_> = syncs_of().iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|&s| s == Some(500)), "{statuses:?}");
    // the host learns the right secret: the next probe succeeds and everything goes
    api::sync(
        &format!("session/share/{}", refused.sid),
        &format!(r#"{{"secret":"{real}"}}"#),
    )
    .unwrap();
    assert_eq!(wait_for_stat("refused_shares", |n| n == 0), 0);
    api::flush(LONG).unwrap();
    let held = run.service.next_items(short_id(&refused.sid)).unwrap();
    assert_exactly(&held, &refused.expected); // the newest content of each key
    assert_eq!(of_type(&events(), "resumed").len(), 1);
}

#[test]
fn removing_a_refused_share_sends_one_delete_and_returns() {
    let run = start_hosted(r#""max_retries":2,"retry_max_ms":30000"#);
    let sid = session(105);
    run.service.create_share(&sid);
    let stale = "00000000-0000-4000-8000-0000000000bb";
    api::sync(
        &format!("session/share/{sid}"),
        &format!(r#"{{"secret":"{stale}"}}"#),
    )
    .unwrap();
    api::sync(&part_key(&sid, 1), &part(1)).unwrap();
    assert_eq!(wait_for_stat("refused_shares", |n| n == 1), 1);
    let e = api::remove(&sid, stale).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert_eq!(
        run.service.requests_to("/share_delete").len(),
        1,
        "a refused delete is not retried"
    );
    assert_eq!(stats()["refused_shares"], 0);
}

#[test]
fn a_content_over_max_content_bytes_is_never_uploaded_and_a_smaller_one_goes() {
    let run = start_hosted("");
    let sid = session(106);
    share(&sid);
    let key = part_key(&sid, 1);
    let big = format!(r#"{{"text":"{}","n":1}}"#, "x".repeat(207_000));
    api::sync(&key, &big).unwrap();
    flush_reports_given_up(1);
    assert!(syncs_of(&run, &sid).is_empty(), "never uploaded");
    let events = events();
    let dropped = of_type(&events, "dropped");
    assert_eq!(dropped.len(), 1);
    assert_eq!(
        (dropped[0]["reason"].as_str(), dropped[0]["key"].as_str()),
        (Some("too_large"), Some(key.as_str()))
    );
    assert_eq!(dropped[0]["bytes"], big.len());
    let s = stats();
    assert_eq!(
        (s["too_large"].as_u64(), s["dropped"].as_u64()),
        (Some(1), Some(1))
    );
    // just under the limit goes out, and the service stores it
    let fits = format!(r#"{{"text":"{}","n":2}}"#, "y".repeat(131_000));
    api::sync(&key, &fits).unwrap();
    api::flush(LONG).unwrap();
    assert_eq!(run.service.data(&sid).unwrap()[&key]["n"], 2);
    assert_eq!(syncs_of(&run, &sid).len(), 1);
}

/// Every string in `v` (keys too).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_secret_is_never_published_in_any_part_of_a_content() {
    let run = start_hosted(r#""max_retries":100"#);
    let sid = session(107);
    let secret = share(&sid);
    let escaped: String = secret
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let deep = format!("{}\"{secret}\"{}", "[".repeat(200), "]".repeat(200));
    let contents = [
        format!(r#"{{"share":{{"url":"u","secret":"{secret}"}},"n":1}}"#),
        format!(r#"{{"text":"pasted: {secret} (oops)","n":2}}"#),
        format!(r#"{{"list":["a","{secret}"],"n":3}}"#),
        format!(r#""{secret}""#),
        format!(r#"{{"{secret}":true,"n":5}}"#),
        format!(r#"{{"text":"{escaped}","n":6}}"#),
        format!(r#"{{"bad":"\ud800","text":"x {secret}","n":7}}"#),
        format!(r#"{{"big":1e400,"text":"x {secret}","n":8}}"#),
        format!(r#"{{"deep":{deep},"n":9}}"#),
    ];
    for (i, content) in contents.iter().enumerate() {
        api::sync(&part_key(&sid, i as u32), content).unwrap_or_else(|e| panic!("{content}: {e}"));
    }
    // a content the server cannot store is answered 500 (retried): wait for the others
    let deadline = Instant::now() + LONG;
    while run.service.requests_to("/share_sync").len() < contents.len() && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(10));
    }
    let seen = run.service.requests_to("/share_sync");
    assert!(seen.len() >= contents.len(), "every content was sent");
    for r in &seen {
        // the body's own `secret` field is the one occurrence allowed
        assert_eq!(r.body.matches(&secret).count(), 1, "{}", r.body);
        assert!(
            !r.body
                .to_lowercase()
                .contains(&escaped[..12].to_lowercase()),
            "{}",
            r.body
        );
        if let Some(json) = &r.json() {
            let mut all = Vec::new();
            strings(&json["content"], &mut all);
            assert!(all.iter().all(|s| !s.contains(&secret)), "{}", r.body);
        }
    }
    let data = run.service.data(&sid).unwrap();
    assert_eq!(
        data[&part_key(&sid, 0)],
        serde_json::json!({"share": {"url": "u"}, "n": 1})
    );
    assert_eq!(
        data[&part_key(&sid, 1)]["text"],
        "pasted: [secret removed] (oops)"
    );
    assert_eq!(data[&part_key(&sid, 3)], "[secret removed]");
    let events = api::events_take();
    assert!(!events.contains(&secret));
}

#[test]
fn a_content_that_cannot_be_made_safe_is_dropped_with_an_event_never_sent() {
    let run = start_hosted("");
    let sid = session(108);
    // a secret the host chose, made of digits: inside a number it cannot be removed
    let (_, real) = run.service.create_share(&sid);
    let _ = real;
    api::sync(&format!("session/share/{sid}"), r#"{"secret":"31415926"}"#).unwrap();
    api::sync(&part_key(&sid, 1), r#"{"pi":314159265}"#).unwrap();
    let e = api::flush(LONG).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus);
    assert!(syncs_of(&run, &sid).is_empty(), "never sent");
    let events = api::events_take();
    assert!(!events.contains("31415926"), "{events}");
    let events: Vec<Value> = serde_json::from_str(&events).unwrap();
    assert_eq!(of_type(&events, "dropped")[0]["reason"], "unsafe");
    assert_eq!(stats()["unsafe"], 1);
}

#[test]
fn a_share_whose_short_id_another_session_holds_is_not_reported_as_created() {
    let run = start_hosted("");
    let (first, second) = (session(109), session(100_000_109));
    assert_eq!(first[first.len() - 8..], second[second.len() - 8..]);
    share(&first);
    let e = api::create(&second).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadResponse);
    assert!(
        e.message.contains(&first) && e.message.contains("last 8 characters"),
        "{}",
        e.message
    );
    assert_eq!(run.service.requests_to("/share_create").len(), 2);
    // the second session is not shared: its writes are ignored, nothing is sent for it
    api::sync(&part_key(&second, 1), &part(1)).unwrap();
    api::flush(LONG).unwrap();
    assert!(syncs_of(&run, &second).is_empty());
    assert_eq!(stats()["shares"], 1);
}
