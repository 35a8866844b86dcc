//! The library (its safe Rust API, legacy "v1" protocol) against the real share server, through
//! the fault-injection proxy: what the server holds at the end is exactly the newest content of
//! every key, whatever failed on the way; remove deletes the share on the server; the secret
//! never appears in anything the server serves publicly.

mod server_common;

use std::time::Duration;

use opencode_share::api;
use serde_json::{Value, json};
use server_common::{Outcome, Rule, share, short_id, start};

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

#[test]
fn a_streamed_session_lands_exactly_on_the_server() {
    let rig = start();
    let sid = "ses_srvlib_stream01";
    share(sid);
    let info = json!({ "id": sid, "title": "streamed", "version": "1" });
    api::sync(
        &info_key(sid),
        &json!({ "id": sid, "title": "draft" }).to_string(),
    )
    .unwrap();
    api::sync(&info_key(sid), &info.to_string()).unwrap();
    let mut expected = serde_json::Map::new();
    for m in 0..3 {
        let mid = format!("msg_{m}");
        let message = json!({ "id": mid, "role": if m % 2 == 0 { "user" } else { "assistant" }, "sessionID": sid });
        api::sync(&message_key(sid, &mid), &message.to_string()).unwrap();
        let mut parts = Vec::new();
        for p in 0..3 {
            let pid = format!("prt_{m}_{p}");
            // a part streamed: 40 revisions, each longer than the one before
            let mut text = String::new();
            for n in 0..40 {
                text.push_str(&format!("w{n} "));
                api::sync(
                    &part_key(sid, &mid, &pid),
                    &part(&mid, &pid, &text).to_string(),
                )
                .unwrap();
            }
            parts.push(part(&mid, &pid, &text));
        }
        let mut full = message.as_object().unwrap().clone();
        full.insert("parts".into(), Value::Array(parts));
        expected.insert(mid, Value::Object(full));
    }
    api::flush(FLUSH).unwrap();
    let (status, data) = rig.get_json(&format!("/share_data?id={}", short_id(sid)));
    assert_eq!(status, 200);
    assert_eq!(data, json!({ "info": info, "messages": expected }));
    // nothing failed on the way, and every sync the server answered, it accepted
    let syncs = rig.passed("/share_sync");
    assert!(!syncs.is_empty());
    assert!(
        syncs
            .iter()
            .all(|p| p.outcome == Outcome::Forwarded && p.status == Some(200)),
        "{syncs:?}"
    );
}

#[test]
fn injected_failures_are_retried_until_the_newest_content_lands() {
    let rig = start();
    let sid = "ses_srvlib_faults01";
    share(sid);
    let (mid, pid) = ("msg_1", "prt_1");
    api::sync(
        &message_key(sid, mid),
        &json!({ "id": mid, "role": "assistant" }).to_string(),
    )
    .unwrap();
    api::flush(FLUSH).unwrap();
    // the next syncs meet, in turn: 500, 503, 429 with Retry-After, a reset, a close, then pass
    rig.proxy
        .inject(Rule::path("/share_sync").times(2).status(500));
    rig.proxy.inject(Rule::path("/share_sync").status(503));
    rig.proxy
        .inject(Rule::path("/share_sync").status_retry_after(429, 1));
    rig.proxy.inject(Rule::path("/share_sync").reset());
    rig.proxy.inject(Rule::path("/share_sync").close());
    let mut text = String::new();
    for n in 0..30 {
        text.push_str(&format!("t{n} "));
        api::sync(&part_key(sid, mid, pid), &part(mid, pid, &text).to_string()).unwrap();
    }
    api::flush(FLUSH).unwrap();
    let (status, data) = rig.get_json(&format!("/share_data?id={}", short_id(sid)));
    assert_eq!(status, 200);
    assert_eq!(
        data["messages"][mid]["parts"],
        json!([part(mid, pid, &text)])
    );
    let syncs = rig.passed("/share_sync");
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
fn a_write_made_while_an_older_one_is_held_wins() {
    let rig = start();
    let sid = "ses_srvlib_holds001";
    share(sid);
    let (mid, pid) = ("msg_1", "prt_1");
    let gate = rig.proxy.hold("/share_sync", 1);
    api::sync(&part_key(sid, mid, pid), &part(mid, pid, "old").to_string()).unwrap();
    assert!(
        gate.wait_arrived(1, Duration::from_secs(20)),
        "the first sync never reached the proxy"
    );
    // the old content is in flight (held); the newer one is written meanwhile
    api::sync(&part_key(sid, mid, pid), &part(mid, pid, "new").to_string()).unwrap();
    api::sync(
        &message_key(sid, mid),
        &json!({ "id": mid, "role": "assistant" }).to_string(),
    )
    .unwrap();
    gate.release();
    api::flush(FLUSH).unwrap();
    let (status, data) = rig.get_json(&format!("/share_data?id={}", short_id(sid)));
    assert_eq!(status, 200);
    assert_eq!(
        data["messages"][mid]["parts"],
        json!([part(mid, pid, "new")])
    );
}

#[test]
fn remove_deletes_the_share_on_the_server() {
    let rig = start();
    let sid = "ses_srvlib_remove01";
    let (_, secret) = share(sid);
    let short = short_id(sid);
    api::sync(
        &info_key(sid),
        &json!({ "id": sid, "title": "to be removed" }).to_string(),
    )
    .unwrap();
    api::flush(FLUSH).unwrap();
    assert_eq!(rig.get(&format!("/share_data?id={short}")).0, 200);
    // the first delete meets a 503 and is retried
    rig.proxy.inject(Rule::path("/share_delete").status(503));
    api::remove(sid, &secret).unwrap();
    assert!(
        rig.proxy.wait_for(Duration::from_secs(20), |log| log
            .iter()
            .any(|p| p.path == "/share_delete"
                && p.outcome == Outcome::Forwarded
                && p.status == Some(200))),
        "no delete reached the server: {:?}",
        rig.passed("/share_delete")
    );
    assert_eq!(rig.get(&format!("/share_data?id={short}")).0, 404);
    assert_eq!(rig.get(&format!("/share/{short}")).0, 404);
    assert_eq!(rig.get(&format!("/api/share/{short}/data")).0, 404);
    let again = json!({ "sessionID": sid, "secret": secret }).to_string();
    assert_eq!(rig.post("/share_delete", &again).0, 404);
}

#[test]
fn the_secret_never_appears_in_what_the_server_serves() {
    let rig = start();
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
