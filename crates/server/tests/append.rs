//! The append extension (docs/append-protocol.md) over loopback HTTP, under both protocols, on
//! SQLite and (with OPENCODE_SHARE_TEST_POSTGRES) PostgreSQL: the server advertises it, an append
//! grows the stored text in place, a gap or a missing key is refused with 409 and nothing of the
//! request is applied, a malformed append is 400, and a gzip body is decoded within the limits.

mod support;
#[path = "../../testkit/src/wal.rs"]
mod wal;

use std::io::Write;

use opencode_share_server::Config;
use serde_json::{Value, json};
use support::{Events, Server, pg_query, session_id};

fn servers() -> Vec<Server> {
    let mut servers = vec![Server::start()];
    if let Ok(url) = std::env::var("OPENCODE_SHARE_TEST_POSTGRES") {
        servers.push(Server::with(|c: &mut Config| c.database = url.clone()));
    } else {
        eprintln!("PostgreSQL skipped: OPENCODE_SHARE_TEST_POSTGRES is not set");
    }
    servers
}

/// POSTs `body` as JSON; (status, extensions header, body).
fn post(s: &Server, path: &str, body: &Value) -> (u16, Option<String>, Value) {
    let r = s
        .http
        .post(s.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let ext = r
        .headers()
        .get("x-share-extensions")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, ext, r.json().unwrap_or(Value::Null))
}

/// A v1 `share_sync` of `body` to the key of session and secret `[session, secret, key]`.
fn v1_sync(s: &Server, [sid, secret, key]: [&str; 3], body: Value) -> (u16, Option<String>, Value) {
    let mut body = body;
    body["sessionID"] = json!(sid);
    body["secret"] = json!(secret);
    body["key"] = json!(key);
    post(s, "/share_sync", &body)
}

fn grow(path: &str, at: usize, text: &str) -> Value {
    json!({ "path": path, "at": at, "text": text })
}

#[test]
fn v1_appends_grow_the_stored_part_and_gaps_are_refused() {
    for s in servers() {
        let sid = session_id();
        let short = &sid[sid.len() - 8..];
        let (status, ext, created) = post(&s, "/share_create", &json!({ "sessionID": sid }));
        assert_eq!((status, ext.as_deref()), (200, Some("append, gzip")));
        let secret = created["secret"].as_str().unwrap().to_owned();
        let key = format!("session/part/{sid}/msg_1/prt_1");
        let sync = |body: Value| v1_sync(&s, [&sid, &secret, &key], body);
        // appending to a key the share does not hold: refused, the client sends it whole
        let (status, _, answer) = sync(json!({ "append": [grow("/text", 0, "x")] }));
        assert_eq!(status, 409, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains("append refused"));
        let part = json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": "héllo" });
        let (status, ext, _) = sync(json!({ "content": part }));
        assert_eq!((status, ext.as_deref()), (200, Some("append, gzip")));
        let (status, _, _) = sync(json!({ "append": [grow("/text", 6, ", wörld")] }));
        assert_eq!(status, 200);
        // the key names the session: an append may leave sessionID out, not a whole write
        let bare = |body: Value| {
            let mut body = body;
            body["secret"] = json!(secret);
            body["key"] = json!(key);
            post(&s, "/share_sync", &body).0
        };
        assert_eq!(bare(json!({ "append": [grow("/text", 14, "")] })), 200);
        assert_eq!(bare(json!({ "content": part })), 400);
        assert_eq!(s.items(short)[0]["data"]["text"], "héllo, wörld");
        // a gap (the length is not the stored one) changes nothing
        let (status, _, answer) = sync(json!({ "append": [grow("/text", 6, "!")] }));
        assert_eq!(status, 409);
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("\"/text\" is 14 bytes"),
            "{answer}"
        );
        let (status, _, _) = sync(json!({ "append": [grow("/id", 5, "!")] }));
        assert_eq!(status, 200, "any string member may grow");
        let data = &s.items(short)[0]["data"];
        assert_eq!(
            (data["text"].as_str(), data["id"].as_str()),
            (Some("héllo, wörld"), Some("prt_1!"))
        );
        // malformed: both content and append, no grow, a grow without its length
        for bad in [
            json!({ "content": {}, "append": [grow("/text", 1, "a")] }),
            json!({ "append": [] }),
            json!({ "append": [{ "path": "/text", "text": "a" }] }),
            json!({}),
        ] {
            assert_eq!(sync(bad.clone()).0, 400, "{bad}");
        }
    }
}

#[test]
fn next_appends_apply_in_order_and_a_refused_one_applies_nothing_of_its_request() {
    for s in servers() {
        let sid = session_id();
        let (status, ext, created) = post(&s, "/api/share", &json!({ "sessionID": sid }));
        assert_eq!((status, ext.as_deref()), (200, Some("append, gzip")));
        let (id, secret) = (
            created["id"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        );
        let sync = |items: Value| {
            post(
                &s,
                &format!("/api/share/{id}/sync"),
                &json!({ "secret": secret, "data": items }),
            )
        };
        let names = json!({ "id": "prt_1", "messageID": "msg_1" });
        let part = json!({ "id": "prt_1", "messageID": "msg_1", "type": "tool",
                           "state": { "output": "line 1\n", "status": "running" }, "text": "" });
        // a whole item and appends to it in one request: applied in order
        let (status, ext, answer) = sync(json!([
            { "type": "part", "data": part },
            { "type": "part", "key": names, "append": [grow("/state/output", 7, "line 2\n"), grow("/text", 0, "t")] },
        ]));
        assert_eq!(
            (status, ext.as_deref()),
            (200, Some("append, gzip")),
            "{answer}"
        );
        let data = s.items(&id)[0]["data"].clone();
        assert_eq!(data["state"]["output"], "line 1\nline 2\n");
        assert_eq!(data["text"], "t");
        // one gap refuses the whole request: the message in it is not stored either
        let (status, _, _) = sync(json!([
            { "type": "message", "data": { "id": "msg_1", "role": "assistant" } },
            { "type": "part", "key": names, "append": [grow("/text", 0, "x")] },
        ]));
        assert_eq!(status, 409);
        assert_eq!(
            s.items(&id).len(),
            1,
            "nothing of a refused request is applied"
        );
        // an item with both data and append, or append without key: 400
        for bad in [
            json!([{ "type": "part", "data": part, "key": names, "append": [grow("/text", 1, "a")] }]),
            json!([{ "type": "part", "append": [grow("/text", 1, "a")] }]),
            json!([{ "type": "part", "key": { "id": "prt_1" }, "append": [grow("/text", 1, "a")] }]),
        ] {
            assert_eq!(sync(bad.clone()).0, 400, "{bad}");
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_bodies_are_decoded_within_the_body_limit() {
    let s = Server::with(|c: &mut Config| c.limits.max_body_bytes = 1 << 20);
    let (id, secret) = s.create_next(&session_id());
    let send = |encoding: &str, body: Vec<u8>| {
        let r = s
            .http
            .post(s.url(&format!("/api/share/{id}/sync")))
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };
    let text = "a streamed answer, ".repeat(2000);
    let part = json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": text });
    let body = json!({ "secret": secret, "data": [{ "type": "part", "data": part }] }).to_string();
    let (status, answer) = send("gzip", gzip(body.as_bytes()));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(s.items(&id)[0]["data"]["text"], text.as_str());
    // 64 MiB of spaces in a few KB: refused once the decoded body passes the limit
    let bomb = gzip(&vec![b' '; 64 << 20]);
    assert!(bomb.len() < 128 << 10);
    let (status, answer) = send("gzip", bomb);
    assert_eq!(status, 413, "{answer}");
    let (status, answer) = send("br", body.clone().into_bytes());
    assert_eq!(status, 400, "{answer}");
    assert_eq!(send("gzip", body.into_bytes()).0, 400, "not gzip at all");
}

#[test]
fn live_viewers_get_a_streamed_parts_new_text_only() {
    let s = Server::start();
    let (id, secret) = s.create_next(&session_id());
    let names = json!({ "id": "prt_1", "messageID": "msg_1" });
    let part =
        |text: &str| json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": text });
    let sync = |items: Value| assert_eq!(s.sync_next(&id, &secret, items), 200);
    sync(json!([{ "type": "part", "data": part("hello") }]));
    let mut a = Events::open(&s.http, &s.running.url, &id, 0);
    let (kind, first) = a.next();
    assert_eq!(
        (kind.as_str(), first["pid"].as_str()),
        ("item", Some("prt_1"))
    );
    // the share's pump had not seen the part before: whole
    sync(json!([{ "type": "part", "key": names, "append": [grow("/text", 5, " world")] }]));
    let (kind, second) = a.next();
    assert_eq!(kind, "item");
    assert!(second["html"].as_str().unwrap().contains("hello world"));
    // now only the new text, whether the writer sent an append or the whole part
    sync(json!([{ "type": "part", "key": names, "append": [grow("/text", 11, " <b>&")] }]));
    sync(json!([{ "type": "part", "data": part("hello world <b>&!") }]));
    // (the pump may have read both writes at once: the new text comes in one or two appends)
    let mut added = String::new();
    while added.len() < " <b>&!".len() {
        let (kind, event) = a.next();
        assert_eq!(kind, "append", "{event}");
        assert_eq!(
            (event["mid"].as_str(), event["pid"].as_str()),
            (Some("msg_1"), Some("prt_1"))
        );
        added.push_str(event["text"].as_str().unwrap());
    }
    assert_eq!(added, " <b>&!");
    // a viewer that came later got the part whole first, then its appends too
    let mut b = Events::open(&s.http, &s.running.url, &id, 0);
    assert_eq!(b.next().0, "item");
    sync(json!([{ "type": "part", "data": part("hello world <b>&!?") }]));
    for events in [&mut a, &mut b] {
        let (kind, event) = events.next();
        assert_eq!(
            (kind.as_str(), event["text"].as_str()),
            ("append", Some("?"))
        );
    }
    // anything else than a grown text is whole again
    let mut done = part("hello world <b>&!?");
    done["time"] = json!({ "end": 1 });
    sync(json!([{ "type": "part", "data": done }]));
    for events in [&mut a, &mut b] {
        assert_eq!(events.next().0, "item");
    }
}

#[test]
fn of_racing_appends_to_one_length_exactly_one_lands_each_round() {
    for s in servers() {
        racing_appends(std::sync::Arc::new(s));
    }
}

fn racing_appends(s: std::sync::Arc<Server>) {
    let (id, secret) = s.create_next(&session_id());
    // past a database page, so the winners wait beside it as pending appends (store/pending.rs)
    let mut text = format!("start {}", hex_text(5000));
    let part = json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": text });
    assert_eq!(
        s.sync_next(&id, &secret, json!([{ "type": "part", "data": part }])),
        200
    );
    for round in 0..10 {
        let threads: Vec<_> = (0..8)
            .map(|w| {
                let (s, id, secret, at) = (s.clone(), id.clone(), secret.clone(), text.len());
                std::thread::spawn(move || {
                    let key = json!({ "id": "prt_1", "messageID": "msg_1" });
                    let suffix = format!(" r{round}w{w}");
                    let item = json!({ "type": "part", "key": key, "append": [grow("/text", at, &suffix)] });
                    (s.sync_next(&id, &secret, json!([item])), suffix)
                })
            })
            .collect();
        let answers: Vec<(u16, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let won: Vec<&String> = answers
            .iter()
            .filter(|a| a.0 == 200)
            .map(|a| &a.1)
            .collect();
        assert_eq!(won.len(), 1, "round {round}: {answers:?}");
        assert!(
            answers.iter().all(|a| a.0 == 200 || a.0 == 409),
            "{answers:?}"
        );
        text.push_str(won[0]);
        assert_eq!(
            s.items(&id)[0]["data"]["text"],
            text.as_str(),
            "round {round}"
        );
    }
}

#[test]
fn with_redact_appends_are_not_advertised_and_refused_so_clients_send_whole_contents() {
    // a suffix alone cannot be redacted: a credential may begin in the stored text
    let s = Server::with(|c: &mut Config| c.redact = true);
    let sid = session_id();
    let (status, ext, created) = post(&s, "/share_create", &json!({ "sessionID": sid }));
    assert_eq!((status, ext.as_deref()), (200, Some("gzip")));
    let secret = created["secret"].as_str().unwrap().to_owned();
    let key = format!("session/part/{sid}/msg_1/prt_1");
    let part = json!({ "id": "prt_1", "messageID": "msg_1", "sessionID": sid, "type": "text", "text": "token ghp_" });
    let whole = json!({ "sessionID": sid, "secret": secret, "key": key, "content": part });
    let (status, ext, _) = post(&s, "/share_sync", &whole);
    assert_eq!((status, ext.as_deref()), (200, Some("gzip")));
    let suffix = format!("{}{}", "aB3dE5fG7hJ9kLmN2pQ4", "rS6tU8vWxYz1234a");
    let append = json!({ "sessionID": sid, "secret": secret, "key": key, "append": [grow("/text", 10, &suffix)] });
    let (status, _, answer) = post(&s, "/share_sync", &append);
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("append refused"));
    let short = &sid[sid.len() - 8..];
    let data = s.get(&format!("/api/share/{short}/data")).1.to_string();
    assert!(
        !data.contains(&suffix),
        "nothing of the refused append stored: {data}"
    );
}

/// Bytes of `n` pseudo-random hex digits: text that neither SQLite nor PostgreSQL's TOAST
/// compression shrinks, so a rewrite costs its whole length.
fn hex_text(n: usize) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect()
}

#[test]
fn a_streamed_part_costs_the_database_its_suffixes_not_rewrites_of_it() {
    const BASE: usize = 256 << 10;
    const APPENDS: usize = 40;
    for s in servers() {
        let sid = session_id();
        let short = sid[sid.len() - 8..].to_owned();
        let (_, _, created) = post(&s, "/share_create", &json!({ "sessionID": sid }));
        let secret = created["secret"].as_str().unwrap().to_owned();
        let key = format!("session/part/{sid}/msg_1/prt_1");
        let sync = |body: Value| {
            let (status, _, answer) = v1_sync(&s, [&sid, &secret, &key], body);
            assert_eq!(status, 200, "{answer}");
        };
        let mut text = hex_text(BASE);
        let part = |text: &str| json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": text });
        sync(json!({ "content": part(&text) }));
        // the server's database: its SQLite file, or (if it has none) the test's PostgreSQL
        let sqlite = s.dir.path().join("share.db");
        let pg = std::env::var("OPENCODE_SHARE_TEST_POSTGRES")
            .ok()
            .filter(|_| !sqlite.exists());
        let number = |sql: &str| -> i64 {
            match &pg {
                Some(url) => pg_query(url, &sql.replace("?1", &format!("'{short}'")))
                    .parse()
                    .unwrap(),
                None => rusqlite::Connection::open(&sqlite)
                    .unwrap()
                    .query_row(sql, [&short], |r| r.get(0))
                    .unwrap(),
            }
        };
        let base_len = number("SELECT length(data) FROM items WHERE share_id = ?1");
        // what the database writes while the part grows by APPENDS suffixes: SQLite's log
        // frames (a read transaction held open keeps the log from restarting), or PostgreSQL's
        // WAL (its whole cluster's: other tests' small writes count too)
        let hold = pg.is_none().then(|| wal::Hold::begin(&sqlite).unwrap());
        let written = || match &pg {
            Some(url) => pg_query(url, "SELECT pg_current_wal_lsn()::TEXT"),
            None => hold.as_ref().map_or(0, wal::Hold::written).to_string(),
        };
        let before = written();
        for n in 0..APPENDS {
            let suffix = format!("chunk {n:03} é \"q\"!");
            sync(json!({ "append": [grow("/text", text.len(), &suffix)] }));
            text.push_str(&suffix);
        }
        let after = written();
        let bytes: f64 = match &pg {
            Some(url) => pg_query(
                url,
                &format!("SELECT pg_wal_lsn_diff('{after}', '{before}')::BIGINT"),
            )
            .parse()
            .unwrap(),
            None => (after.parse::<u64>().unwrap() - before.parse::<u64>().unwrap()) as f64,
        };
        drop(hold);
        // a rewrite per append would write APPENDS × BASE at least
        assert!(
            bytes < (APPENDS * BASE / 8) as f64,
            "{bytes} bytes written for {APPENDS} appends to a part of {BASE}"
        );
        // the stored base is the text first written; the suffixes wait beside it
        assert_eq!(
            number("SELECT length(data) FROM items WHERE share_id = ?1"),
            base_len
        );
        assert_eq!(
            number("SELECT count(*) FROM item_appends WHERE share_id = ?1"),
            APPENDS as i64
        );
        // readers see the whole text, as a whole write would have stored it
        let items = s.items(&short);
        assert_eq!(items[0]["data"], part(&text));
        // a whole write of the key replaces its pending appends
        text.push('.');
        sync(json!({ "content": part(&text) }));
        assert_eq!(
            number("SELECT count(*) FROM item_appends WHERE share_id = ?1"),
            0
        );
        assert_eq!(s.items(&short)[0]["data"], part(&text));
    }
}
