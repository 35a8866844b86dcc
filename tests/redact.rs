//! Credential redaction end to end: the library against the real share server (through the
//! fault proxy), under "v1" and under "next". A content holding a synthetic GitHub token and
//! an AWS access key id arrives on the server with markers in their place; the stats count
//! them and one `redacted` event names the rules, never the values. With `"redact": false`
//! the same content arrives as written (what the feature changes). The credentials are built
//! at run time from their formats (never real); no assertion prints them.

mod common;

use std::time::Duration;

use common::{Protocol, Running, short_id, start};
use opencode_share::api;
use serde_json::{Value, json};

type Rig = Running;

/// Creates the share of `session` through the library.
fn share(session: &str) {
    api::create(session).expect("create");
}

/// The library under v1 against the real server with `extra` config members.
fn start_with(extra: &str) -> Rig {
    start(Protocol::V1, extra)
}

const FLUSH: Duration = Duration::from_secs(30);

/// A GitHub token and an AWS access key id of the right formats, made up.
fn credentials() -> (String, String) {
    let alnum = "aB3dE5fG7hJ9kLmN2pQ4rS6tU8vWxYz";
    let b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let pick = |set: &str, n: usize| -> String {
        (0..n)
            .map(|i| set.as_bytes()[(i * 11 + 5) % set.len()] as char)
            .collect()
    };
    (
        format!("ghp_{}", pick(alnum, 36)),
        format!("AKIA{}", pick(b32, 16)),
    )
}

/// A tool part whose output shows both credentials (an env file read by the agent).
fn tool_part(pid: &str, github: &str, aws: &str) -> Value {
    json!({
        "id": pid, "messageID": "msg_1", "type": "tool", "tool": "read",
        "state": {"status": "completed", "input": {"filePath": ".env"},
                  "output": format!("GITHUB_TOKEN={github}\nAWS_ACCESS_KEY_ID={aws}\nREGION=eu-west-1\n")},
    })
}

/// Writes the message the parts of `sid` belong to (the v1 service serves parts under it).
fn message(sid: &str) {
    let m = json!({"id": "msg_1", "role": "assistant", "sessionID": sid});
    api::sync(&format!("session/message/{sid}/msg_1"), &m.to_string()).unwrap();
}

/// The one `redacted` event of `key` among the events taken now.
fn redacted_events(key: &str) -> Vec<Value> {
    let events: Value = serde_json::from_str(&api::events_take()).unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "redacted" && e["key"] == key)
        .cloned()
        .collect()
}

/// Writes the part of `sid`, flushes, and returns what the server serves of the share (as
/// text) with the `redacted` events of the part's key.
fn write_and_read(rig: &Rig, sid: &str, next: bool) -> (String, Vec<Value>) {
    let (github, aws) = credentials();
    let key = format!("session/part/{sid}/msg_1/prt_1");
    let path = if next {
        let created: Value = serde_json::from_str(&api::create(sid).unwrap()).unwrap();
        format!("/api/share/{}/data", created["id"].as_str().unwrap())
    } else {
        share(sid);
        format!("/share_data?id={}", short_id(sid))
    };
    message(sid);
    api::sync(&key, &tool_part("prt_1", &github, &aws).to_string()).unwrap();
    api::flush(FLUSH).unwrap();
    let (status, served) = rig.get(&path);
    assert_eq!(status, 200);
    (served, redacted_events(&key))
}

fn check_redacted(rig: &Rig, sid: &str, next: bool) {
    let (github, aws) = credentials();
    let (served, events) = write_and_read(rig, sid, next);
    assert!(
        !served.contains(&github),
        "the GitHub token reached the server"
    );
    assert!(!served.contains(&aws), "the AWS key reached the server");
    assert!(
        served.contains("GITHUB_TOKEN=[redacted: github-pat]"),
        "no marker"
    );
    assert!(
        served.contains("AWS_ACCESS_KEY_ID=[redacted: aws-access-key]"),
        "no marker"
    );
    assert!(
        served.contains("REGION=eu-west-1"),
        "the rest of the content is kept"
    );
    assert_eq!(events.len(), 1, "one redacted event per content");
    assert_eq!(events[0]["rules"], json!(["aws-access-key", "github-pat"]));
    assert_eq!(events[0]["count"], 2);
    let text = events[0].to_string();
    assert!(
        !text.contains(&github[4..]) && !text.contains(&aws[4..]),
        "a value in the event"
    );
    let stats: Value = serde_json::from_str(&api::stats().unwrap()).unwrap();
    assert_eq!(stats["redacted"], 2);
    assert!(!stats.to_string().contains(&github[4..]));
}

#[test]
fn contents_arrive_with_markers_in_place_of_credentials() {
    for protocol in Protocol::ALL {
        let rig = start(protocol, "");
        check_redacted(&rig, "ses_redact_all_0001", protocol == Protocol::Next);
    }
}

#[test]
fn with_redact_off_the_content_arrives_as_written() {
    let rig = start_with(r#""redact":false"#);
    let (github, aws) = credentials();
    let (served, events) = write_and_read(&rig, "ses_redact_off_0001", false);
    assert!(
        served.contains(&github) && served.contains(&aws),
        "redacted though off"
    );
    assert!(events.is_empty());
    let stats: Value = serde_json::from_str(&api::stats().unwrap()).unwrap();
    assert_eq!(stats["redacted"], 0);
}

#[test]
fn extra_patterns_and_allowed_values_come_from_the_config() {
    let (_, aws) = credentials();
    let config =
        json!({"redact_patterns": {"acme-key": "acme_[0-9a-f]{12}"}, "redact_allow": [aws]});
    let body = config.to_string();
    let rig = start_with(&body[1..body.len() - 1]);
    let sid = "ses_redact_cfg_0001";
    share(sid);
    let key = format!("session/part/{sid}/msg_1/prt_1");
    let text = format!("key acme_0123456789ab and {aws}");
    let part = json!({"id": "prt_1", "messageID": "msg_1", "type": "text", "text": text});
    message(sid);
    api::sync(&key, &part.to_string()).unwrap();
    api::flush(FLUSH).unwrap();
    let (_, served) = rig.get(&format!("/share_data?id={}", short_id(sid)));
    assert!(served.contains(&format!("key [redacted: acme-key] and {aws}")));
    assert_eq!(redacted_events(&key)[0]["rules"], json!(["acme-key"]));
    // a pattern that does not compile is refused at init, with its id
    api::shutdown(Duration::from_secs(5)).unwrap();
    let e = api::init(Some(r#"{"redact_patterns":{"bad":"("}}"#)).unwrap_err();
    assert!(
        e.message.contains("redact_patterns \"bad\""),
        "{}",
        e.message
    );
}
