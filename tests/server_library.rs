//! The library (its safe Rust API) against the real share server through the fault proxy, each
//! test under both protocols (v1 and "next"): what the server holds and serves at the end is
//! exactly the newest content of every key, whatever failed on the way; no two requests of a flow
//! reach the server at once; remove deletes the share on the server; the secret never appears in
//! anything the server serves publicly.

mod common;

use std::time::Duration;

use common::{Protocol, Running, Session, short_id, start};
use opencode_share::api;
use serde_json::{Value, json};
use testkit::{Outcome, Passed, Rule, Service};

type Rig = Running<Service>;

/// Creates the share of `session` through the library; returns (url, secret).
fn share(session: &str) -> (String, String) {
    let created: Value = serde_json::from_str(&api::create(session).expect("create")).unwrap();
    let field = |n: &str| created[n].as_str().unwrap().to_owned();
    (field("url"), field("secret"))
}

const FLUSH: Duration = Duration::from_secs(30);

fn info_key(sid: &str) -> String {
    format!("session/info/{sid}")
}
fn message_key(sid: &str, mid: &str) -> String {
    format!("session/message/{sid}/{mid}")
}
fn part_key(sid: &str, mid: &str, pid: &str) -> String {
    format!("session/part/{sid}/{mid}/{pid}")
}
fn part(mid: &str, pid: &str, text: &str) -> Value {
    json!({ "id": pid, "messageID": mid, "type": "text", "text": text })
}

/// The next syncs at `path` meet, in turn: two 500s, a 503, a 429 with Retry-After, a reset, a
/// close; then they pass.
fn inject_each_fault(rig: &Rig, path: &str) {
    rig.proxy.inject(Rule::path(path).times(2).status(500));
    rig.proxy.inject(Rule::path(path).status(503));
    rig.proxy
        .inject(Rule::path(path).status_retry_after(429, 1));
    rig.proxy.inject(Rule::path(path).reset());
    rig.proxy.inject(Rule::path(path).close());
}

/// The syncs met each fault of [`inject_each_fault`], and the last one landed.
fn assert_met_each_fault(syncs: &[Passed]) {
    let count = |o: Outcome, s: Option<u16>| {
        syncs
            .iter()
            .filter(|p| p.outcome == o && p.status == s)
            .count()
    };
    assert_eq!(count(Outcome::Injected, Some(500)), 2, "{syncs:?}");
    assert_eq!(count(Outcome::Injected, Some(503)), 1, "{syncs:?}");
    assert_eq!(count(Outcome::Injected, Some(429)), 1, "{syncs:?}");
    assert_eq!(count(Outcome::Reset, None), 1, "{syncs:?}");
    assert_eq!(count(Outcome::Closed, None), 1, "{syncs:?}");
    // the last request is the one that landed the newest content
    let last = syncs.last().unwrap();
    assert_eq!(
        (last.outcome, last.status),
        (Outcome::Forwarded, Some(200)),
        "{syncs:?}"
    );
}

#[test]
fn a_refused_create_or_remove_names_the_servers_reason_without_the_secret() {
    let _rig = start(Protocol::V1, "");
    let sid = "ses_srvlib_reason01";
    let (_, secret) = share(sid);
    let again = api::create(sid).expect_err("a second create of one id is refused");
    assert_eq!(again.kind, opencode_share::ErrorKind::HttpStatus);
    assert_eq!(
        again.message,
        "POST /share_create answered HTTP 409: a share with this id exists already"
    );
    // a secret the server does not know: its 403 says why, and the message holds no secret
    let wrong = format!("{secret}-stale");
    let refused = api::remove(sid, &wrong).expect_err("a wrong secret is refused");
    assert_eq!(refused.kind, opencode_share::ErrorKind::HttpStatus);
    assert_eq!(
        refused.message,
        "POST /share_delete answered HTTP 403: wrong secret for this share"
    );
}

#[test]
fn the_secret_never_appears_in_what_the_server_serves() {
    let rig = start(Protocol::V1, "");
    let sid = "ses_srvlib_secret01";
    let (url, secret) = share(sid);
    let short = short_id(sid);
    assert!(!url.contains(&secret));
    api::sync(
        &info_key(sid),
        &json!({ "id": sid, "title": "public" }).to_string(),
    )
    .unwrap();
    api::sync(
        &message_key(sid, "msg_1"),
        &json!({ "id": "msg_1", "role": "user" }).to_string(),
    )
    .unwrap();
    api::sync(
        &part_key(sid, "msg_1", "prt_1"),
        &part("msg_1", "prt_1", "hello").to_string(),
    )
    .unwrap();
    api::flush(FLUSH).unwrap();
    for path in [
        format!("/share_data?id={short}"),
        format!("/api/share/{short}/data"),
        format!("/share/{short}"),
        format!("/s/{short}"),
    ] {
        let (status, body) = rig.get(&path);
        assert_eq!(status, 200, "{path}");
        assert!(
            body.contains("hello"),
            "{path} does not show the session: {body}"
        );
        assert!(!body.contains(&secret), "{path} shows the secret");
    }
    // a second create of the same session is refused, without the secret
    let (status, body) = rig.post("/share_create", &json!({ "sessionID": sid }).to_string());
    assert_eq!(status, 409);
    assert!(!body.contains(&secret));
    // a sync with a wrong secret is refused and tells nothing
    let wrong =
        json!({ "sessionID": sid, "secret": "0".repeat(64), "key": info_key(sid), "content": {} })
            .to_string();
    let (status, body) = rig.post("/share_sync", &wrong);
    assert_eq!(status, 403);
    assert!(!body.contains(&secret));
}

/// What the server serves at `/api/share/<id>/data` must be exactly the newest item of every key
/// (the server sorts items by item key, as the session's map is).
fn assert_serves_exactly(rig: &Rig, id: &str, s: &Session) {
    let (status, data) = rig.get_json(&format!("/api/share/{id}/data"));
    assert_eq!(status, 200);
    let expected = Value::Array(s.expected.values().cloned().collect());
    if data != expected {
        let held: Vec<&Value> = data
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let wrong: Vec<&String> = s
            .expected
            .iter()
            .filter(|(_, item)| !held.contains(item))
            .map(|(k, _)| k)
            .collect();
        panic!(
            "the server's items differ at {wrong:?} (of {} expected, {} held)",
            s.expected.len(),
            held.len()
        );
    }
}

/// The syncs of share `id` at the proxy, and a check that no two of them overlapped in time.
fn syncs_without_overlap(rig: &Rig, id: &str) -> Vec<Passed> {
    let mut syncs = rig.requests_to(&format!("/api/share/{id}/sync"));
    syncs.sort_by_key(|p| p.at);
    for w in syncs.windows(2) {
        assert!(
            w[1].at >= w[0].at + w[0].took,
            "two syncs of {id} overlapped: {w:?}"
        );
    }
    syncs
}

// ---- both protocols, one test each ----

#[test]
fn streamed_sessions_land_exactly_on_the_server() {
    for protocol in Protocol::ALL {
        streamed_sessions_land_exactly(protocol);
    }
}

fn streamed_sessions_land_exactly(protocol: Protocol) {
    let rig = start(protocol, r#""concurrency":4"#);
    let mut sessions: Vec<Session> = ["ses_srvlib_stream01", "ses_srvlib_stream02"]
        .iter()
        .map(|sid| Session::new(sid))
        .collect();
    for s in &mut sessions {
        share(&s.sid);
        s.info("draft");
        s.diff(&["src/a.rs"]);
        s.model(&["claude"]);
    }
    for m in 0..3 {
        let mid = format!("msg_{m}");
        for s in &mut sessions {
            s.message(&mid);
        }
        for p in 0..3 {
            // a part streamed: 30 revisions, each longer than the one before (appends where
            // the server advertises them)
            let mut text = String::new();
            for n in 0..30 {
                text.push_str(&format!("w{n} "));
                for s in &mut sessions {
                    s.stream(&mid, &format!("prt_{m}_{p}"), &text);
                }
            }
        }
    }
    for s in &mut sessions {
        s.info("final");
        s.diff(&["src/a.rs", "src/b.rs"]);
    }
    api::flush(FLUSH).unwrap();
    for s in &sessions {
        let id = short_id(&s.sid);
        assert_serves_exactly(&rig, id, s);
        // nothing failed on the way, and every sync the server answered, it accepted
        let syncs = rig.syncs_of(protocol, &s.sid);
        assert!(!syncs.is_empty());
        assert!(
            syncs
                .iter()
                .all(|p| p.outcome == Outcome::Forwarded && p.status == Some(200)),
            "{syncs:?}"
        );
        if protocol == Protocol::V1 {
            assert_legacy_data(&rig, s);
        }
    }
    assert!(rig.overlaps().is_empty(), "{:?}", rig.overlaps());
    let stats: Value = serde_json::from_str(&api::stats().unwrap()).unwrap();
    if protocol == Protocol::Next {
        assert_eq!(stats["protocol"], "next");
        let syncs = rig
            .requests_to("/api/share/")
            .into_iter()
            .filter(|p| p.path.ends_with("/sync"))
            .count();
        assert_eq!(stats["requests"].as_u64(), Some(syncs as u64));
    }
}

/// What `/share_data` (the legacy viewer's read) serves for `s`: its info, and each message with
/// its parts in order.
fn assert_legacy_data(rig: &Rig, s: &Session) {
    let (status, data) = rig.get_json(&format!("/share_data?id={}", short_id(&s.sid)));
    assert_eq!(status, 200);
    assert_eq!(data["info"], s.expected["session"]["data"]);
    let messages = data["messages"].as_object().expect("messages");
    assert_eq!(messages.len(), 3);
    for (mid, message) in messages {
        let parts: Vec<&Value> = s
            .expected
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("part/{mid}/")))
            .map(|(_, item)| &item["data"])
            .collect();
        let served: Vec<&Value> = message["parts"].as_array().unwrap().iter().collect();
        assert_eq!(served, parts, "{mid}");
        assert_eq!(message["id"], mid.as_str());
    }
}

#[test]
fn injected_failures_are_retried_until_every_newest_item_lands() {
    for protocol in Protocol::ALL {
        injected_failures_are_retried(protocol);
    }
}

fn injected_failures_are_retried(protocol: Protocol) {
    let rig = start(protocol, r#""max_retries":10"#);
    let mut s = Session::new("ses_srvlib_faults01");
    share(&s.sid);
    let id = short_id(&s.sid).to_owned();
    s.info("faults");
    s.message("msg_1");
    api::flush(FLUSH).unwrap();
    let sync = protocol.sync_path(&id);
    inject_each_fault(&rig, &sync);
    rig.inject(Rule::path(&sync).delay(Duration::from_millis(100)));
    let mut text = String::new();
    for n in 0..30 {
        text.push_str(&format!("t{n} "));
        s.stream("msg_1", "prt_1", &text);
        s.part("msg_1", &format!("prt_new_{n}"), "new");
        if n % 3 == 2 {
            api::flush(FLUSH).unwrap(); // so the streamed part's revisions meet the faults as appends
        }
    }
    s.info("faults, final");
    api::flush(FLUSH).unwrap();
    assert_serves_exactly(&rig, &id, &s);
    assert_met_each_fault(&rig.syncs_of(protocol, &s.sid));
    assert!(rig.overlaps().is_empty(), "{:?}", rig.overlaps());
    let stats: Value = serde_json::from_str(&api::stats().unwrap()).unwrap();
    // after each flush the streamed part's next revision went as an append
    assert!(stats["appends"]["sent"].as_u64() >= Some(9), "{stats}");
    assert_eq!(
        (stats["dropped"].as_u64(), stats["refused_shares"].as_u64()),
        (Some(0), Some(0)),
        "{stats}"
    );
}

#[test]
fn a_write_made_while_an_older_one_is_held_wins() {
    for protocol in Protocol::ALL {
        write_made_while_an_older_one_is_held_wins(protocol);
    }
}

fn write_made_while_an_older_one_is_held_wins(protocol: Protocol) {
    // min_interval_ms 0: the rewritten part may go in the next batch however soon it comes
    let rig = start(protocol, r#""min_interval_ms":0"#);
    let mut s = Session::new("ses_srvlib_holds001");
    share(&s.sid);
    let id = &short_id(&s.sid).to_owned();
    let gate = rig.hold(&protocol.sync_path(id), 1);
    s.part("msg_1", "prt_1", "old");
    assert!(
        gate.wait_arrived(1, Duration::from_secs(20)),
        "the first sync never reached the proxy"
    );
    // the old content is in flight (held); newer writes are made meanwhile
    s.part("msg_1", "prt_1", "new");
    s.message("msg_1");
    s.info("held");
    gate.release();
    api::flush(FLUSH).unwrap();
    assert_serves_exactly(&rig, id, &s);
    if protocol == Protocol::Next {
        assert_eq!(
            syncs_without_overlap(&rig, id).len(),
            2,
            "the writes made meanwhile went in one batch"
        );
    }
    assert!(rig.overlaps().is_empty(), "{:?}", rig.overlaps());
}

#[test]
fn remove_deletes_the_share_on_the_server() {
    for protocol in Protocol::ALL {
        remove_deletes_the_share(protocol);
    }
}

fn remove_deletes_the_share(protocol: Protocol) {
    let rig = start(protocol, "");
    let mut s = Session::new("ses_srvlib_remove01");
    let (_, secret) = share(&s.sid);
    let id = short_id(&s.sid).to_owned();
    s.info("to be removed");
    s.part("msg_1", "prt_1", "x");
    api::flush(FLUSH).unwrap();
    assert_serves_exactly(&rig, &id, &s);
    // the first delete meets a 503 and is retried
    let delete = match protocol {
        Protocol::V1 => Rule::path("/share_delete"),
        Protocol::Next => Rule::path(&format!("/api/share/{id}")).method("DELETE"),
    };
    rig.inject(delete.status(503));
    api::remove(&s.sid, &secret).unwrap();
    let deletes = rig.deletes_of(protocol, &s.sid);
    assert_eq!(
        deletes.iter().map(|p| p.status).collect::<Vec<_>>(),
        [Some(503), Some(200)],
        "{deletes:?}"
    );
    for path in [
        format!("/share_data?id={id}"),
        format!("/api/share/{id}/data"),
        format!("/share/{id}"),
    ] {
        assert_eq!(rig.get(&path).0, 404, "{path}");
    }
    // nothing of the share is synced after
    s.part("msg_1", "prt_2", "after remove");
    api::flush(FLUSH).unwrap();
    let last_delete = deletes.last().unwrap().at;
    let syncs = rig.syncs_of(protocol, &s.sid);
    assert!(syncs.iter().all(|p| p.at < last_delete), "{syncs:?}");
    // a second delete finds nothing
    let again = match protocol {
        Protocol::V1 => {
            let body = json!({ "sessionID": s.sid, "secret": secret }).to_string();
            rig.post("/share_delete", &body)
        }
        Protocol::Next => {
            let body = json!({ "secret": secret }).to_string();
            testkit::request(rig.addr(), "DELETE", &format!("/api/share/{id}"), &body)
        }
    };
    assert_eq!(again.0, 404);
}
