//! The testkit's own checks, with plain HTTP requests through the proxy: the hosted rules, the
//! org service, the fault vocabulary (a key in the body, a failure held at a gate, seeded
//! chances, down), the request log and the overlap detector.

use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::{Gate, Outcome, Rule, Service, next_flow, request, request_with};

const WAIT: Duration = Duration::from_secs(20);

fn post(service: &Service, path: &str, body: &Value) -> (u16, String) {
    request(service.proxy.addr(), "POST", path, &body.to_string())
}

fn secret_of(answer: &str) -> String {
    let json: Value = serde_json::from_str(answer).expect("a JSON answer");
    json["secret"].as_str().expect("a secret").to_owned()
}

#[test]
fn the_hosted_rules_play_opencodes_legacy_service() {
    let service = Service::start_hosted();
    let (a, b) = ("ses_hostedaaaa1234abcd", "ses_hostedbbbb1234abcd");
    let (status, first) = post(&service, "/share_create", &json!({ "sessionID": a }));
    assert_eq!(status, 200, "{first}");
    // idempotent per short id, whoever asks
    let (status, again) = post(&service, "/share_create", &json!({ "sessionID": b }));
    assert_eq!((status, secret_of(&again)), (200, secret_of(&first)));
    let secret = secret_of(&first);
    let sync = |sid: &str, secret: &str, key: String, content: Value| {
        let body = json!({ "sessionID": sid, "secret": secret, "key": key, "content": content });
        post(&service, "/share_sync", &body)
    };
    let key = format!("session/part/{a}/msg_1/prt_1");
    assert_eq!(sync(a, &secret, key.clone(), json!({"n": 1})).0, 200);
    // a wrong secret (the server's 403) is answered 500
    assert_eq!(
        sync(a, "wrong", key.clone(), json!({"n": 2})),
        (500, "Internal Server Error".into())
    );
    // a key of the other session: 200, not stored
    let other = format!("session/part/{b}/msg_1/prt_9");
    assert_eq!(sync(b, &secret, other.clone(), json!({"n": 3})).0, 200);
    // a value over 128 KiB: 500, not stored
    let big = json!({ "text": "x".repeat(testkit::hosted::MAX_VALUE) });
    assert_eq!(sync(a, &secret, key.clone(), big).0, 500);
    let data = service.data(a).expect("the share");
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[&key], json!({"n": 1}));
    // unknown routes: 200 "Not Found"
    let (status, body) = request(service.proxy.addr(), "GET", "/nope", "");
    assert_eq!((status, body.as_str()), (200, "Not Found"));
    // a deleted share: 500 for its syncs, and create makes it anew
    let delete = json!({ "sessionID": a, "secret": secret });
    assert_eq!(post(&service, "/share_delete", &delete).0, 200);
    assert_eq!(sync(a, &secret, key, json!({"n": 4})).0, 500);
    let (status, anew) = post(&service, "/share_create", &json!({ "sessionID": a }));
    assert_eq!(status, 200);
    assert_ne!(secret_of(&anew), secret);
}

#[test]
fn an_org_service_answers_its_token_and_org_only_and_a_taken_id_is_500() {
    let service = Service::start_org("tok", "org-1");
    let body = json!({ "sessionID": "ses_orgtest012345678" }).to_string();
    let addr = service.proxy.addr();
    assert_eq!(request(addr, "POST", "/api/share", &body).0, 404);
    assert_eq!(request(addr, "POST", "/api/shares", &body).0, 401);
    let wrong = ["authorization: Bearer other", "x-org-id: org-1"];
    assert_eq!(
        request_with(addr, "POST", "/api/shares", &wrong, &body).0,
        401
    );
    let right = ["authorization: Bearer tok", "x-org-id: org-1"];
    assert_eq!(
        request_with(addr, "POST", "/api/shares", &right, &body).0,
        200
    );
    // the id is taken now: ShareNext's hosted service throws, a 500
    assert_eq!(
        request_with(addr, "POST", "/api/shares", &right, &body).0,
        500
    );
    let log = service.requests();
    assert_eq!(log[3].header("x-org-id"), Some("org-1"));
    assert_eq!(
        log[3].json(),
        Some(json!({ "sessionID": "ses_orgtest012345678" }))
    );
}

#[test]
fn rules_match_a_key_in_the_body_hold_their_failure_and_draw_seeded_chances() {
    let service = Service::start();
    let (_, secret) = service.create_share("ses_rulestest0000001");
    let sync = |key: &str| {
        let body = json!({ "sessionID": "ses_rulestest0000001", "secret": secret,
            "key": format!("session/part/ses_rulestest0000001/msg_1/{key}"), "content": {} });
        post(&service, "/share_sync", &body).0
    };
    service.inject(
        Rule::path("/share_sync")
            .containing("prt_a")
            .times(2)
            .status(503),
    );
    assert_eq!(
        (sync("prt_b"), sync("prt_a"), sync("prt_a"), sync("prt_a")),
        (200, 503, 503, 200)
    );
    // a failure that waits at a gate until released
    let gate = Gate::new();
    service.inject(Rule::path("/share_sync").held_at(&gate).status(502));
    let held = thread::scope(|s| {
        let waiting = s.spawn(|| sync("prt_c"));
        assert!(gate.wait_arrived(1, WAIT));
        assert_eq!(gate.waiting(), 1);
        gate.release();
        waiting.join().unwrap()
    });
    assert_eq!(held, 502);
    // the same seed draws the same chances
    let draws = |seed| {
        let service = Service::start();
        service.inject(Rule::path("/").times(100).sometimes(30, seed).status(503));
        let statuses: Vec<u16> = (0..20)
            .map(|_| request(service.proxy.addr(), "GET", "/", "").0)
            .collect();
        statuses
    };
    let (one, two) = (draws(7), draws(7));
    assert_eq!(one, two);
    assert!(one.contains(&503) && one.contains(&200), "{one:?}");
    // down: every connection closed unanswered, logged as such
    service.go_down();
    assert_eq!(sync("prt_d"), 0);
    service.come_up();
    assert_eq!(sync("prt_d"), 200);
    let log = service.requests_to("/share_sync");
    let outcomes: Vec<Outcome> = log.iter().map(|p| p.outcome).collect();
    assert!(outcomes.contains(&Outcome::Closed) && outcomes.contains(&Outcome::Injected));
    // a huge answer announces its size, then ends
    service.inject(Rule::path("/").huge_body(1 << 30));
    let (status, body) = request(service.proxy.addr(), "GET", "/", "");
    assert_eq!(status, 200);
    assert!(body.len() < 64, "{body}");
}

#[test]
fn two_syncs_of_one_share_in_flight_at_once_are_an_overlap() {
    let service = Service::start();
    let (_, secret) = service.create_share("ses_overlap000000001");
    let id = testkit::short_id("ses_overlap000000001");
    let path = format!("/api/share/{id}/sync");
    let gate = service.hold(&path, 1);
    let body = json!({ "secret": secret, "data": [] });
    thread::scope(|s| {
        let first = s.spawn(|| post(&service, &path, &body).0);
        assert!(gate.wait_arrived(1, WAIT));
        assert_eq!(service.in_flight(&next_flow(id)), 1);
        // the second arrives while the first is held
        assert_eq!(post(&service, &path, &body).0, 200);
        gate.release();
        assert_eq!(first.join().unwrap(), 200);
    });
    let overlaps = service.overlaps();
    assert_eq!(overlaps.len(), 1, "{overlaps:?}");
    assert_eq!(overlaps[0].flow, Some(next_flow(id)));
    assert_eq!(service.max_concurrent(&path), 2);
    assert_eq!(service.in_flight(&next_flow(id)), 0);
}

#[test]
fn a_reply_rule_answers_for_the_server_and_an_unlogged_proxy_still_counts_overlaps() {
    let service = Service::start();
    let made = json!({ "id": "abcd1234", "secret": "s", "url": "u" });
    service.inject(
        Rule::path("/api/share")
            .method("POST")
            .reply(201, &made.to_string()),
    );
    let (status, body) = post(
        &service,
        "/api/share",
        &json!({ "sessionID": "ses_x1234567" }),
    );
    assert_eq!(status, 201);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), made);
    assert_eq!(service.requests()[0].outcome, Outcome::Injected);
    assert!(
        service.stored("x1234567").is_none(),
        "the server never saw it"
    );
    // with the log off, nothing is logged, yet two syncs of one share in flight are an overlap
    service.proxy.set_logging(false);
    let gate = service.hold("/api/share/abcd1234/sync", 1);
    let sync = || {
        let body = json!({ "secret": "s", "data": [] }).to_string();
        request(
            service.proxy.addr(),
            "POST",
            "/api/share/abcd1234/sync",
            &body,
        )
    };
    thread::scope(|s| {
        let held = s.spawn(sync);
        assert!(gate.wait_arrived(1, WAIT));
        assert_eq!(gate.arrived(), 1);
        sync();
        gate.release();
        held.join().unwrap();
    });
    assert_eq!(service.proxy.overlap_count(), 1);
    assert_eq!(
        service.requests().len(),
        1,
        "only the request before the log was off"
    );
}
