//! Live readers: the legacy `/share_poll` WebSocket and the viewer's SSE stream see each write
//! and the delete.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use support::{Events, Server, part, session_id};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn the_legacy_websocket_sends_stored_keys_then_writes_then_closes_on_delete() {
    let s = Server::start();
    let sid = session_id();
    let short = sid[sid.len() - 8..].to_owned();
    let secret = s
        .post_raw("/share_create", json!({ "sessionID": sid }).to_string())
        .1["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let sync = |key: String, content: Value| {
        assert_eq!(
            s.post_raw(
                "/share_sync",
                json!({ "sessionID": sid, "secret": secret, "key": key, "content": content })
                    .to_string()
            )
            .0,
            200
        )
    };
    sync(
        format!("session/part/{sid}/msg_1/prt_1"),
        json!({ "id": "prt_1", "messageID": "msg_1", "text": "a" }),
    );
    sync(
        format!("session/message/{sid}/msg_1"),
        json!({ "id": "msg_1" }),
    );
    sync(format!("session/info/{sid}"), json!({ "id": sid }));
    assert_eq!(
        s.get(&format!("/share_poll?id={short}")).0,
        426,
        "not an upgrade"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = s.running.addr;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/share_poll?id={short}"), tcp).await.unwrap();
        let mut next = async || -> Option<Value> {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s") {
                Some(Ok(Message::Text(t))) => Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(_))) | None => None,
                other => panic!("unexpected {other:?}"),
            }
        };
        let keys: Vec<String> = [next().await, next().await, next().await].into_iter().map(|f| f.unwrap()["key"].as_str().unwrap().to_owned()).collect();
        assert_eq!(keys, [format!("session/info/{sid}"), format!("session/message/{sid}/msg_1"), format!("session/part/{sid}/msg_1/prt_1")]);
        let (sid2, secret2) = (sid.clone(), secret.clone());
        let url = s.url("/share_sync");
        let delete_url = s.url("/share_delete");
        let write = tokio::task::spawn_blocking(move || {
            let http = support::http_client(std::time::Duration::from_secs(20));
            let body = json!({ "sessionID": sid2, "secret": secret2, "key": format!("session/part/{sid2}/msg_1/prt_1"), "content": { "id": "prt_1", "messageID": "msg_1", "text": "ab" } });
            assert_eq!(http.post(url).body(body.to_string()).send().unwrap().status().as_u16(), 200);
        });
        let frame = next().await.unwrap();
        assert_eq!(frame["content"]["text"], "ab");
        write.await.unwrap();
        let (sid3, secret3) = (sid.clone(), secret.clone());
        tokio::task::spawn_blocking(move || {
            let body = json!({ "sessionID": sid3, "secret": secret3 });
            assert_eq!(support::http_client(std::time::Duration::from_secs(20)).post(delete_url).body(body.to_string()).send().unwrap().status().as_u16(), 200);
        }).await.unwrap();
        assert!(next().await.is_none(), "the socket closes when the share is deleted");
        let _ = ws.close(None).await;
    });
}

#[test]
fn the_viewer_stream_catches_up_follows_writes_and_ends_on_delete() {
    let s = Server::start();
    let (id, secret) = s.create_next(&session_id());
    assert_eq!(
        s.sync_next(&id, &secret, json!([part("msg_1", "prt_1", "first")])),
        200
    );
    let response = s
        .http
        .get(s.url(&format!("/share/{id}/events?after=0")))
        .send()
        .unwrap();
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    drop(response);
    let mut events = Events::open(&s.http, &s.running.url, &id, 0);
    let mut next_event = || events.next();
    let (kind, first) = next_event();
    assert_eq!(
        (kind.as_str(), first["pid"].as_str()),
        ("item", Some("prt_1"))
    );
    assert!(first["html"].as_str().unwrap().contains("first"));
    assert_eq!(
        s.sync_next(
            &id,
            &secret,
            json!([part("msg_1", "prt_1", "<script>x()</script> second")])
        ),
        200
    );
    let (_, second) = next_event();
    let html = second["html"].as_str().unwrap();
    assert!(
        html.contains("second") && html.contains("&lt;script&gt;") && !html.contains("<script"),
        "{html}"
    );
    assert!(second["seq"].as_i64() > first["seq"].as_i64());
    assert_eq!(
        s.delete(&format!("/api/share/{id}"), json!({ "secret": secret }))
            .0,
        200
    );
    assert_eq!(next_event().0, "deleted");
}

/// The share's pump starts from the store's head, never from what the first viewer claims to
/// have: a first viewer with a huge `after` (or a stale Last-Event-ID) freezes nobody else.
#[test]
fn a_first_viewer_with_a_huge_after_does_not_freeze_the_others() {
    let s = Server::start();
    let (id, secret) = s.create_next(&session_id());
    let _hostile = Events::open(&s.http, &s.running.url, &id, 1_000_000_000);
    let mut honest = Events::open(&s.http, &s.running.url, &id, 0);
    for n in 0..10 {
        let text = format!("write {n}");
        let pid = format!("prt_{n}");
        assert_eq!(
            s.sync_next(&id, &secret, json!([part("msg_1", &pid, &text)])),
            200
        );
    }
    for n in 0..10 {
        let (kind, event) = honest.next();
        assert_eq!(kind, "item");
        assert_eq!(event["pid"].as_str(), Some(format!("prt_{n}").as_str()));
    }
}
