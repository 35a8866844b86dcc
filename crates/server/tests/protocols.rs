//! Both protocols over loopback HTTP against the real server, and SPEC's statuses.

mod support;

use serde_json::json;
use support::{Server, part, session_id};

#[test]
fn legacy_protocol_round_trip_without_content_type() {
    let s = Server::start();
    let sid = session_id();
    let (status, created) = s.post_raw("/share_create", json!({ "sessionID": sid }).to_string());
    assert_eq!(status, 200, "{created}");
    let short = &sid[sid.len() - 8..];
    assert_eq!(
        created["url"],
        json!(format!("{}/s/{short}", s.running.url))
    );
    let secret = created["secret"].as_str().unwrap().to_owned();
    let sync = |key: String, content: serde_json::Value| {
        s.post_raw(
            "/share_sync",
            json!({ "sessionID": sid, "secret": secret, "key": key, "content": content })
                .to_string(),
        )
    };
    assert_eq!(
        sync(
            format!("session/info/{sid}"),
            json!({ "id": sid, "title": "t" })
        )
        .0,
        200
    );
    assert_eq!(
        sync(
            format!("session/message/{sid}/msg_1"),
            json!({ "id": "msg_1", "role": "user" })
        )
        .0,
        200
    );
    assert_eq!(
        sync(
            format!("session/part/{sid}/msg_1/prt_1"),
            json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": "hi" })
        )
        .0,
        200
    );
    // a well-formed key the service does not keep is answered 200, like opencode's service
    assert_eq!(sync(format!("session/todo/{sid}"), json!([])).0, 200);
    // a key of another session, or malformed, is a bad body
    assert_eq!(sync("session/info/ses_other".into(), json!({})).0, 400);
    let (status, data) = s.get(&format!("/share_data?id={short}"));
    assert_eq!(status, 200);
    assert_eq!(data["info"]["title"], "t");
    assert_eq!(data["messages"]["msg_1"]["parts"][0]["text"], "hi");
    // ShareNext's reader sees what the legacy writer sent
    assert_eq!(s.items(short).len(), 3);

    let wrong = s.post_raw("/share_sync", json!({ "sessionID": sid, "secret": "nope", "key": format!("session/info/{sid}"), "content": {} }).to_string());
    assert_eq!(wrong.0, 403);
    assert!(!wrong.1.to_string().contains(&secret));
    assert_eq!(
        s.post_raw("/share_create", json!({ "sessionID": sid }).to_string())
            .0,
        409
    );
    assert_eq!(
        s.post_raw(
            "/share_delete",
            json!({ "sessionID": sid, "secret": "nope" }).to_string()
        )
        .0,
        403
    );
    assert_eq!(
        s.post_raw(
            "/share_delete",
            json!({ "sessionID": sid, "secret": secret }).to_string()
        )
        .0,
        200
    );
    assert_eq!(
        s.post_raw(
            "/share_delete",
            json!({ "sessionID": sid, "secret": secret }).to_string()
        )
        .0,
        404
    );
    assert_eq!(s.get(&format!("/share_data?id={short}")).0, 404);
    assert_eq!(s.get(&format!("/api/share/{short}/data")).0, 404);
    assert_eq!(sync(format!("session/info/{sid}"), json!({})).0, 404);
    assert_eq!(s.get("/share_data").0, 400);
    assert_eq!(s.post_raw("/share_sync", "not json".into()).0, 400);
    assert_eq!(
        s.post_raw("/share_create", json!({ "sessionID": "short" }).to_string())
            .0,
        400
    );
}

#[test]
fn next_protocol_round_trip_and_org_paths() {
    let s = Server::start();
    let sid = session_id();
    let (id, secret) = s.create_next(&sid);
    assert_eq!(id, &sid[sid.len() - 8..]);
    let items = json!([
        { "type": "session", "data": { "id": sid, "title": "t" } },
        { "type": "message", "data": { "id": "msg_1", "sessionID": sid, "role": "user" } },
        part("msg_1", "prt_1", "one"),
        { "type": "session_diff", "data": [] },
        { "type": "model", "data": [] },
    ]);
    assert_eq!(s.sync_next(&id, &secret, items), 200);
    assert_eq!(
        s.sync_next(&id, &secret, json!([part("msg_1", "prt_1", "two")])),
        200
    );
    let stored = s.items(&id);
    let keys: Vec<&str> = stored.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["message", "model", "part", "session", "session_diff"],
        "sorted by item key"
    );
    assert_eq!(
        stored[2]["data"]["text"], "two",
        "merged by item key, newest wins"
    );

    assert_eq!(s.sync_next(&id, "wrong", json!([])), 403);
    assert_eq!(s.sync_next("nosuchid", &secret, json!([])), 404);
    assert_eq!(
        s.sync_next(&id, &secret, json!([{ "type": "bogus", "data": {} }])),
        400
    );
    assert_eq!(
        s.sync_next(
            &id,
            &secret,
            json!([{ "type": "part", "data": { "id": "p" } }])
        ),
        400
    );
    assert_eq!(
        s.post(&format!("/api/share/{id}/sync"), json!({ "data": [] }))
            .0,
        400
    );
    assert_eq!(s.post("/api/share", json!({ "sessionID": sid })).0, 409);

    // org accounts use /api/shares with the same bodies
    let sid2 = session_id();
    let (status, created) = s.post("/api/shares", json!({ "sessionID": sid2 }));
    assert_eq!(status, 200);
    let (id2, secret2) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    assert_eq!(
        s.post(
            &format!("/api/shares/{id2}/sync"),
            json!({ "secret": secret2, "data": [part("m", "p", "x")] })
        )
        .0,
        200
    );
    assert_eq!(
        s.get(&format!("/api/shares/{id2}/data")).1[0]["data"]["text"],
        "x"
    );
    assert_eq!(
        s.delete(&format!("/api/shares/{id2}"), json!({ "secret": secret2 }))
            .0,
        200
    );

    assert_eq!(
        s.delete(&format!("/api/share/{id}"), json!({ "secret": "wrong" }))
            .0,
        403
    );
    assert_eq!(
        s.delete(&format!("/api/share/{id}"), json!({ "secret": secret }))
            .0,
        200
    );
    assert_eq!(
        s.delete(&format!("/api/share/{id}"), json!({ "secret": secret }))
            .0,
        404
    );
    assert_eq!(s.get(&format!("/api/share/{id}/data")).0, 404);
    assert_eq!(s.get(&format!("/share/{id}")).0, 404);
    // a deleted id can be shared again, with a new secret; nothing of the old share comes back
    let (_, secret3) = s.create_next(&sid);
    assert_ne!(secret3, secret);
    assert!(s.items(&id).is_empty());
}

#[test]
fn limits_answer_413_429_and_401() {
    let s = Server::with(|c| {
        c.limits.max_body_bytes = 4096;
        c.limits.max_item_bytes = 1024;
        c.limits.max_share_bytes = 3000;
        c.limits.rate_per_share = 5;
        c.create_token = Some("create-token-123".into());
    });
    let sid = session_id();
    assert_eq!(s.post("/api/share", json!({ "sessionID": sid })).0, 401);
    assert_eq!(
        s.post_raw("/share_create", json!({ "sessionID": sid }).to_string())
            .0,
        401
    );
    let r = s
        .http
        .post(s.url("/api/share"))
        .header("authorization", "Bearer create-token-123")
        .header("content-type", "application/json")
        .body(json!({ "sessionID": sid }).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let created: serde_json::Value = r.json().unwrap();
    let (id, secret) = (
        created["id"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    assert_eq!(
        s.sync_next(id, secret, json!([part("m", "p", &"x".repeat(5000))])),
        413,
        "body"
    );
    assert_eq!(
        s.sync_next(id, secret, json!([part("m", "p", &"x".repeat(1500))])),
        413,
        "item"
    );
    assert_eq!(
        s.sync_next(
            id,
            secret,
            json!([
                part("m", "p1", &"x".repeat(900)),
                part("m", "p2", &"x".repeat(900))
            ])
        ),
        200
    );
    assert_eq!(
        s.sync_next(
            id,
            secret,
            json!([
                part("m", "p3", &"x".repeat(900)),
                part("m", "p4", &"x".repeat(900))
            ])
        ),
        413,
        "share"
    );
    assert_eq!(s.items(id).len(), 2, "a refused batch stores nothing");
    let mut limited = None;
    for _ in 0..20 {
        let r = s
            .http
            .post(s.url(&format!("/api/share/{id}/sync")))
            .body(json!({ "secret": secret, "data": [] }).to_string())
            .send()
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            break;
        }
    }
    let retry_after: u64 = limited.expect("a 429 within 20 requests").parse().unwrap();
    assert!(retry_after >= 1);
}
