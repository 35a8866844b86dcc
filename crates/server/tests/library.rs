//! This repository's library (v1 protocol) against the server, unchanged: share, sync, flush,
//! and the server holds the newest content of every key.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Server;

#[test]
fn the_library_shares_a_session_through_the_server() {
    let s = Server::start();
    let sid = "ses_librarytest0001";
    opencode_share::api::init(Some(&json!({ "url": s.running.url }).to_string())).unwrap();
    let created: Value = serde_json::from_str(&opencode_share::api::create(sid).unwrap()).unwrap();
    let short = &sid[sid.len() - 8..];
    assert_eq!(
        created["url"],
        json!(format!("{}/s/{short}", s.running.url))
    );
    opencode_share::api::sync(
        &format!("session/info/{sid}"),
        &json!({ "id": sid, "title": "lib" }).to_string(),
    )
    .unwrap();
    opencode_share::api::sync(
        &format!("session/message/{sid}/msg_1"),
        &json!({ "id": "msg_1", "role": "assistant" }).to_string(),
    )
    .unwrap();
    for n in 0..50 {
        let part = json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": format!("stream {n}") });
        opencode_share::api::sync(
            &format!("session/part/{sid}/msg_1/prt_1"),
            &part.to_string(),
        )
        .unwrap();
    }
    opencode_share::api::flush(Duration::from_secs(20)).unwrap();
    let (status, data) = s.get(&format!("/share_data?id={short}"));
    assert_eq!(status, 200);
    assert_eq!(data["info"]["title"], "lib");
    assert_eq!(data["messages"]["msg_1"]["parts"][0]["text"], "stream 49");
    opencode_share::api::remove(sid, created["secret"].as_str().unwrap()).unwrap();
    assert_eq!(s.get(&format!("/share_data?id={short}")).0, 404);
    opencode_share::api::shutdown(Duration::from_secs(5)).unwrap();
}
