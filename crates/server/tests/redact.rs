//! `--redact`: credentials a client writes (either protocol) are replaced by the library's
//! markers before they are stored, so neither `/data`, the page nor a live viewer ever has them;
//! counted in `/metrics`. Without the flag the server stores what it is given.

mod support;

use serde_json::json;
use support::{Events, Server, part, session_id};

/// Synthetic credentials of two well-known formats (never real ones).
fn github_token() -> String {
    format!("ghp_{}", "aB3dE5fG7hJ9kLmN2pQ4rS6tU8vWxYz1234a")
}
fn aws_key() -> String {
    format!("AKIA{}", "QZ7RT2WX5BCD3FGH")
}

fn text_with_credentials() -> String {
    format!(
        "export GITHUB_TOKEN={} and the key {} in the output",
        github_token(),
        aws_key()
    )
}

#[test]
fn credentials_written_by_either_protocol_are_stored_redacted() {
    let server = Server::with(|c| c.redact = true);
    // ShareNext, with a live viewer open
    let (id, secret) = server.create_next(&session_id());
    let mut viewer = Events::open(&server.http, &server.running.url, &id, 0);
    assert_eq!(
        server.sync_next(
            &id,
            &secret,
            json!([part("msg_1", "prt_1", &text_with_credentials())])
        ),
        200
    );
    let (kind, live) = viewer.next();
    assert_eq!(kind, "item");
    let data = server.get(&format!("/api/share/{id}/data")).1.to_string();
    let page = server
        .http
        .get(server.url(&format!("/share/{id}")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    for seen in [&data, &live.to_string(), &page] {
        assert!(
            !seen.contains(&github_token()) && !seen.contains(&aws_key()),
            "{seen}"
        );
        assert!(
            seen.contains("[redacted: github-pat]") && seen.contains("[redacted: aws-access-key]"),
            "{seen}"
        );
    }
    assert!(
        data.contains("export GITHUB_TOKEN="),
        "the rest of the text is kept: {data}"
    );

    // the legacy protocol
    let sid = session_id();
    let (_, created) = server.post_raw("/share_create", json!({ "sessionID": sid }).to_string());
    let legacy_id = &sid[sid.len() - 8..];
    let (status, _) = server.post_raw(
        "/share_sync",
        json!({
            "sessionID": sid, "secret": created["secret"], "key": format!("session/part/{sid}/msg_1/prt_1"),
            "content": { "id": "prt_1", "messageID": "msg_1", "sessionID": sid, "type": "text", "text": text_with_credentials() },
        })
        .to_string(),
    );
    assert_eq!(status, 200);
    let data = server
        .get(&format!("/api/share/{legacy_id}/data"))
        .1
        .to_string();
    assert!(
        !data.contains(&github_token()) && data.contains("[redacted: github-pat]"),
        "{data}"
    );

    // a write large enough to be redacted off the async workers
    let big = format!(
        "{}{}",
        "plain words ".repeat(10_000),
        text_with_credentials()
    );
    assert_eq!(
        server.sync_next(&id, &secret, json!([part("msg_1", "prt_2", &big)])),
        200
    );
    let data = server.get(&format!("/api/share/{id}/data")).1.to_string();
    assert!(
        data.len() > 100_000 && !data.contains(&aws_key()),
        "{}",
        data.len()
    );

    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("opencode_share_credentials_redacted_total 6"),
        "{metrics}"
    );
    assert!(!metrics.contains(&github_token()));
}

#[test]
fn without_redact_the_server_stores_what_it_is_given() {
    let server = Server::start();
    let (id, secret) = server.create_next(&session_id());
    assert_eq!(
        server.sync_next(
            &id,
            &secret,
            json!([part("msg_1", "prt_1", &text_with_credentials())])
        ),
        200
    );
    let data = server.get(&format!("/api/share/{id}/data")).1.to_string();
    assert!(
        data.contains(&github_token()) && !data.contains("redacted"),
        "{data}"
    );
}
