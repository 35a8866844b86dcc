//! Self-tests of the loopback "next" service (tests/support/next_service.rs), driven by a real
//! HTTP client (reqwest, blocking): the protocol and its errors, org mode, the request log, the
//! bounded faults and the overlap detector.

#[path = "support/next_service.rs"]
mod next_service;

use std::thread;
use std::time::{Duration, Instant};

use next_service::{Fault, FaultRule, NextService, share_id};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{Value, json};

const SID: &str = "ses_0123456789abcdefghijklmnop";

fn client() -> Client {
    // the library's reqwest has rustls without a provider; ring is installed as the library does
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends a request; (status, body as JSON or as a string).
fn send(req: RequestBuilder) -> (u16, Value) {
    let resp = req.send().expect("an answer");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn post(c: &Client, url: String, body: &Value) -> (u16, Value) {
    send(
        c.post(url)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
}

fn part(mid: &str, pid: &str, text: &str) -> Value {
    json!({"type": "part", "data": {"id": pid, "messageID": mid, "type": "text", "text": text}})
}

#[test]
fn create_sync_data_and_delete_as_the_real_server() {
    let svc = NextService::start();
    let c = client();
    let base = format!("{}/api/share", svc.url());
    let (status, created) = post(&c, base.clone(), &json!({"sessionID": SID}));
    assert_eq!(status, 200);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id, share_id(SID));
    assert_eq!(id, "ijklmnop");
    assert_eq!(created["url"], format!("{}/share/{id}", svc.url()));
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 36);
    assert_eq!(svc.secret(&id).as_deref(), Some(secret.as_str()));
    // a taken id answers 500
    assert_eq!(post(&c, base.clone(), &json!({"sessionID": SID})).0, 500);

    let session = json!({"type": "session", "data": {"id": SID, "title": "t"}});
    let message = json!({"type": "message", "data": {"id": "msg_1", "sessionID": SID}});
    let batch =
        json!({"secret": secret, "data": [session, message, part("msg_1", "prt_1", "old")]});
    assert_eq!(
        post(&c, format!("{base}/{id}/sync"), &batch),
        (200, json!({}))
    );
    // last write wins, per item key
    let again = json!({"secret": secret, "data": [part("msg_1", "prt_1", "new"), part("msg_1", "prt_2", "b")]});
    assert_eq!(post(&c, format!("{base}/{id}/sync"), &again).0, 200);
    let items = svc.items(&id).unwrap();
    let keys: Vec<&str> = items.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "message/msg_1",
            "part/msg_1/prt_1",
            "part/msg_1/prt_2",
            "session"
        ]
    );
    assert_eq!(items["part/msg_1/prt_1"], part("msg_1", "prt_1", "new"));
    // GET /data: every item, sorted by key, no content-type needed
    let (status, data) = send(c.get(format!("{base}/{id}/data")));
    assert_eq!(status, 200);
    assert_eq!(
        data,
        json!([
            message,
            part("msg_1", "prt_1", "new"),
            part("msg_1", "prt_2", "b"),
            session
        ])
    );
    assert_eq!(
        send(c.get(format!("{base}/nosuchid/data"))),
        (200, json!([]))
    );

    let delete = |secret: &str| {
        send(
            c.delete(format!("{base}/{id}"))
                .header("content-type", "application/json")
                .body(json!({"secret": secret}).to_string()),
        )
    };
    assert_eq!(delete("wrong").0, 500);
    assert!(svc.items(&id).is_some(), "a wrong secret deletes nothing");
    assert_eq!(delete(&secret), (200, json!({})));
    assert!(svc.items(&id).is_none());
    assert_eq!(delete(&secret).0, 500, "a second delete: unknown share");
    assert_eq!(post(&c, format!("{base}/{id}/sync"), &again).0, 500);
    assert_eq!(send(c.get(format!("{base}/{id}/data"))), (200, json!([])));
    // a share created directly takes its id as given
    let direct = svc.create_share("custom01");
    let body = json!({"secret": direct, "data": [part("m", "p", "x")]});
    assert_eq!(post(&c, format!("{base}/custom01/sync"), &body).0, 200);
    assert_eq!(svc.items("custom01").unwrap().len(), 1);
}

#[test]
fn bad_requests_get_the_real_servers_statuses() {
    let svc = NextService::start();
    let c = client();
    let base = format!("{}/api/share", svc.url());
    let secret = svc.create_share("ijklmnop");
    let sync = format!("{base}/ijklmnop/sync");
    let good = json!({"secret": secret, "data": [part("m", "p", "x")]}).to_string();
    // content-type: application/json is required (400), charset allowed
    assert_eq!(send(c.post(&sync).body(good.clone())).0, 400);
    assert_eq!(
        send(
            c.post(&sync)
                .header("content-type", "text/plain")
                .body(good.clone())
        )
        .0,
        400
    );
    let with_charset = c
        .post(&sync)
        .header("content-type", "application/json; charset=utf-8")
        .body(good.clone());
    assert_eq!(send(with_charset).0, 200);
    let raw = |body: &str| {
        send(
            c.post(&sync)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .0
    };
    assert_eq!(raw("{not json"), 400);
    assert_eq!(raw(&json!({"data": []}).to_string()), 400, "no secret");
    assert_eq!(
        raw(&json!({"secret": secret, "data": {}}).to_string()),
        400,
        "data not an array"
    );
    let odd = |item: Value| raw(&json!({"secret": secret, "data": [item]}).to_string());
    assert_eq!(
        odd(json!({"type": "todo", "data": {}})),
        400,
        "unknown type"
    );
    assert_eq!(
        odd(json!({"type": "part", "data": {"id": "p"}})),
        400,
        "a part without messageID"
    );
    assert_eq!(
        odd(json!({"type": "message", "data": {}})),
        400,
        "a message without id"
    );
    assert_eq!(
        raw(&json!({"secret": "wrong", "data": []}).to_string()),
        500,
        "wrong secret"
    );
    let unknown = json!({"secret": secret, "data": []});
    assert_eq!(
        post(&c, format!("{base}/nosuchid/sync"), &unknown).0,
        500,
        "unknown share"
    );
    assert_eq!(
        post(&c, base.clone(), &json!({})).0,
        400,
        "create without sessionID"
    );
    // routes that do not exist
    assert_eq!(send(c.get(&base)).0, 404);
    assert_eq!(post(&c, format!("{base}/x/other"), &unknown).0, 404);
    assert_eq!(
        post(
            &c,
            format!("{}/api/shares", svc.url()),
            &json!({"sessionID": SID})
        )
        .0,
        404
    );
    assert_eq!(
        svc.items("ijklmnop").unwrap().len(),
        1,
        "only the good sync was stored"
    );
}

#[test]
fn org_mode_serves_api_shares_to_the_right_token_and_org_only() {
    let svc = NextService::start_org("tok-123", "org-9");
    assert_eq!(svc.resource(), "/api/shares");
    let c = client();
    let base = format!("{}/api/shares", svc.url());
    let create = json!({"sessionID": SID}).to_string();
    let req = |token: Option<&str>, org: Option<&str>| {
        let mut r = c
            .post(&base)
            .header("content-type", "application/json")
            .body(create.clone());
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        if let Some(o) = org {
            r = r.header("x-org-id", o);
        }
        r
    };
    assert_eq!(send(req(None, None)).0, 401);
    assert_eq!(send(req(Some("tok-123"), None)).0, 401);
    assert_eq!(send(req(None, Some("org-9"))).0, 401);
    assert_eq!(send(req(Some("other"), Some("org-9"))).0, 401);
    assert_eq!(send(req(Some("tok-123"), Some("org-8"))).0, 401);
    assert!(
        svc.items(&share_id(SID)).is_none(),
        "nothing created without credentials"
    );
    let (status, created) = send(req(Some("tok-123"), Some("org-9")));
    assert_eq!(status, 200);
    assert_eq!(created["id"], share_id(SID));
    // the public resource does not exist in org mode
    let public = format!("{}/api/share", svc.url());
    let other = json!({"sessionID": "ses_other0000000000000000000"});
    assert_eq!(post(&c, public, &other).0, 404);
    let last = svc.requests().into_iter().rev().nth(1).unwrap();
    assert_eq!(last.header("Authorization"), Some("Bearer tok-123"));
    assert_eq!(last.header("x-org-id"), Some("org-9"));
    assert_eq!(last.share, share_id(SID));
}

#[test]
fn the_log_records_items_bytes_headers_and_times() {
    let svc = NextService::start();
    let c = client();
    let secret = svc.create_share("ijklmnop");
    let url = format!("{}/api/share/ijklmnop/sync", svc.url());
    let message = json!({"type": "message", "data": {"id": "msg_1", "v": 3}});
    let body = json!({"secret": secret, "data": [message, part("msg_1", "p", "x")]});
    let before = Instant::now();
    assert_eq!(post(&c, url.clone(), &body).0, 200);
    assert_eq!(post(&c, url, &json!({"secret": "no", "data": []})).0, 500);
    let log = svc.requests();
    assert_eq!(log.len(), 2);
    let r = &log[0];
    assert!(r.is_sync() && r.method == "POST" && r.path == "/api/share/ijklmnop/sync");
    assert_eq!((r.share.as_str(), r.status, r.items), ("ijklmnop", 200, 2));
    assert_eq!(r.item_keys(), ["message/msg_1", "part/msg_1/p"]);
    assert_eq!(r.body_bytes, body.to_string().len() as u64);
    assert_eq!(r.json.as_ref(), Some(&body));
    assert!(r.wire_bytes > r.body_bytes);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(before <= r.received && r.received <= r.finished);
    assert!(log[0].seq < log[1].seq);
    assert_eq!((log[1].status, log[1].items), (500, 0));
    assert_eq!(svc.syncs("ijklmnop").len(), 2);
    let stored = svc.stored();
    assert_eq!(stored.len(), 2, "the refused sync stored nothing");
    assert_eq!(
        (stored[0].item.as_str(), stored[0].v),
        ("message/msg_1", Some(3))
    );
}

#[test]
fn faults_are_bounded_in_count_and_latency_is_slept() {
    let svc = NextService::start();
    let c = client();
    let secret = svc.create_share("ijklmnop");
    let url = format!("{}/api/share/ijklmnop/sync", svc.url());
    let body = json!({"secret": secret, "data": [part("m", "p", "x")]});
    let sync = || {
        c.post(&url)
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let rule = |fault, times| FaultRule {
        prefix: "/api/share/ijklmnop/sync".into(),
        fault,
        times,
    };
    svc.push_fault(rule(Fault::Status(503), 2));
    svc.push_fault(rule(Fault::Reset, 1));
    assert_eq!(send(sync()).0, 503);
    assert_eq!(send(sync()).0, 503);
    assert!(sync().send().is_err(), "a reset gives no answer");
    assert_eq!(send(sync()).0, 200, "the rules are used up");
    svc.push_fault(rule(Fault::Delay(Duration::from_millis(150)), 1));
    let t = Instant::now();
    assert_eq!(send(sync()).0, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    svc.fail_next_syncs(1);
    assert_eq!(send(sync()), (500, json!("Internal Server Error")));
    // random faults on every sync (50% resets, 50% 500s), but at most 3 of them
    svc.set_random_faults_at_most(50, 50, 7, 3);
    let failed = (0..10)
        .filter(|_| sync().send().map_or(true, |r| r.status() != 200))
        .count();
    assert_eq!(failed, 3);
    let statuses: Vec<u16> = svc.syncs("ijklmnop").iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..6], [503, 503, 0, 200, 200, 500]);
    assert!(
        statuses[6..9].iter().all(|s| *s == 0 || *s == 500),
        "{statuses:?}"
    );
    assert!(statuses[9..].iter().all(|s| *s == 200), "{statuses:?}");
    svc.clear_faults();
    svc.set_latency(Duration::from_millis(100));
    let t = Instant::now();
    assert_eq!(
        send(c.get(format!("{}/api/share/ijklmnop/data", svc.url()))).0,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    // data reads and creates get no random faults
    svc.set_latency(Duration::ZERO);
    svc.set_random_faults(100, 0, 1);
    assert_eq!(
        send(c.get(format!("{}/api/share/ijklmnop/data", svc.url()))).0,
        200
    );
}

#[test]
fn the_detector_counts_syncs_of_one_share_that_overlap() {
    let svc = NextService::start();
    let (a, b) = (svc.create_share("aaaaaaaa"), svc.create_share("bbbbbbbb"));
    svc.set_latency(Duration::from_millis(200));
    let sync = |id: &'static str, secret: String| {
        let url = format!("{}/api/share/{id}/sync", svc.url());
        thread::spawn(move || {
            let body = json!({"secret": secret, "data": [part("m", "p", "x")]});
            post(&client(), url, &body).0
        })
    };
    // one share's syncs one after the other, and another share's at the same time: no overlap
    let other = sync("bbbbbbbb", b.clone());
    assert_eq!(sync("aaaaaaaa", a.clone()).join().unwrap(), 200);
    assert_eq!(sync("aaaaaaaa", a.clone()).join().unwrap(), 200);
    assert_eq!(other.join().unwrap(), 200);
    assert_eq!((svc.overlaps("aaaaaaaa"), svc.overlaps_total()), (0, 0));
    // two syncs of one share at once: one overlap
    let first = sync("aaaaaaaa", a.clone());
    assert!(svc.wait_for(Duration::from_secs(5), |s| s.in_flight("aaaaaaaa") == 1));
    let second = sync("aaaaaaaa", a);
    assert_eq!((first.join().unwrap(), second.join().unwrap()), (200, 200));
    assert_eq!((svc.overlaps("aaaaaaaa"), svc.overlaps("bbbbbbbb")), (1, 0));
    assert_eq!(
        (svc.arrived_syncs("aaaaaaaa"), svc.in_flight("aaaaaaaa")),
        (4, 0)
    );
}
