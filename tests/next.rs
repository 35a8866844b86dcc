//! The library under `"protocol":"next"` (opencode's ShareNext protocol) against the real server
//! playing ShareNext's hosted service behind the fault proxy (the testkit), through
//! `opencode_share::api`: the exact final state, the order of items in a request, batching,
//! coalescing, faults and refusal, org accounts, what never leaks, create's answer, share records
//! with an id, ignored keys. Every test asserts what the service saw; where requests must be in
//! flight at some moment, they are held at a gate.

mod common;

use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

use common::*;
use opencode_share::{ErrorKind, api};
use serde_json::{Value, json};
use testkit::{Passed, Service, item_key, next_flow};

/// Creates `sid`'s share through the library; returns (share id, secret).
fn create(sid: &str) -> (String, String) {
    let created: Value = serde_json::from_str(&api::create(sid).expect("create")).unwrap();
    let id = created["id"].as_str().expect("an id").to_owned();
    (id, created["secret"].as_str().expect("a secret").to_owned())
}

/// The library under "next" against a fresh service, and session `n` shared through it (its
/// share id beside it).
fn start_shared(extra: &str, n: u32) -> (Running<Service>, Session, String) {
    let run = start_next(extra);
    let s = Session::new(&session(n));
    let (id, _) = create(&s.sid);
    (run, s, id)
}

/// Sessions `ns` shared through the library, each with its share id.
fn shared_sessions(ns: std::ops::Range<u32>) -> Vec<(String, Session)> {
    let share = |n| {
        let s = Session::new(&session(n));
        (create(&s.sid).0, s)
    };
    ns.map(share).collect()
}

fn share_id(sid: &str) -> String {
    short_id(sid).to_owned()
}

/// A rule for the next `times` syncs of share `id`.
fn sync_rule(id: &str, times: usize) -> Rule {
    Rule::path(&format!("/api/share/{id}/sync")).times(times)
}

/// A sync as the proxy logged it, read the ShareNext way.
trait NextSync {
    /// The item keys of its `data`, in the order sent ("?" for an item without one).
    fn item_keys(&self) -> Vec<String>;
    fn item_count(&self) -> usize;
}

impl NextSync for Passed {
    fn item_keys(&self) -> Vec<String> {
        let json = self.json().unwrap_or_default();
        let items = json["data"].as_array().cloned().unwrap_or_default();
        let key = |i: &Value| item_key(i).unwrap_or_else(|| "?".into());
        items.iter().map(key).collect()
    }
    fn item_count(&self) -> usize {
        self.json()
            .and_then(|j| j["data"].as_array().map(Vec::len))
            .unwrap_or(0)
    }
}

/// The service's log and state read the ShareNext way.
trait NextLog {
    fn is_sync(r: &Passed) -> bool {
        r.method == "POST" && r.path.starts_with("/api/share") && r.path.ends_with("/sync")
    }
    /// Every share's syncs, in the order answered.
    fn all_syncs(&self) -> Vec<Passed>;
    /// Share `id`'s syncs, in the order answered.
    fn syncs(&self, id: &str) -> Vec<Passed>;
    /// What the server holds for share `id`, by item key.
    fn items(&self, id: &str) -> Option<BTreeMap<String, Value>>;
    /// Syncs of share `id` that arrived while another of it was in flight.
    fn overlaps_of(&self, id: &str) -> usize;
}

impl NextLog for Service {
    fn all_syncs(&self) -> Vec<Passed> {
        let all = self.requests().into_iter();
        all.filter(<Service as NextLog>::is_sync).collect()
    }
    fn syncs(&self, id: &str) -> Vec<Passed> {
        let of = |r: &Passed| r.path.ends_with(&format!("/{id}/sync"));
        self.all_syncs().into_iter().filter(of).collect()
    }
    fn items(&self, id: &str) -> Option<BTreeMap<String, Value>> {
        self.next_items(id)
    }
    fn overlaps_of(&self, id: &str) -> usize {
        let flow = Some(next_flow(id));
        self.overlaps().iter().filter(|r| r.flow == flow).count()
    }
}

/// The versions `v` of `item` the service accepted, in the order answered.
fn stored_versions(service: &Service, share: &str, item: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for r in service.syncs(share) {
        if r.status != Some(200) {
            continue;
        }
        let json = r.json().unwrap_or_default();
        for i in json["data"].as_array().into_iter().flatten() {
            if item_key(i).as_deref() == Some(item) {
                out.extend(i["data"]["v"].as_u64());
            }
        }
    }
    out
}

/// Checks the order inside one sync: the session item first, a message before its parts.
fn assert_ordered(r: &Passed) {
    let keys = r.item_keys();
    if let Some(i) = keys.iter().position(|k| k == "session") {
        assert_eq!(i, 0, "the session item is not first: {keys:?}");
    }
    for (i, k) in keys.iter().enumerate() {
        let Some(mid) = k.strip_prefix("part/").and_then(|r| r.split('/').next()) else {
            continue;
        };
        if let Some(m) = keys.iter().position(|x| *x == format!("message/{mid}")) {
            assert!(m < i, "message/{mid} comes after its part {k}: {keys:?}");
        }
    }
}

#[test]
fn each_request_puts_the_session_first_and_a_message_before_its_parts() {
    let (run, mut s, id) = start_shared("", 10);
    // the first sync is held at a gate; everything written meanwhile goes in the next one
    let gate = Gate::new();
    run.service.inject(sync_rule(&id, 1).hold(&gate));
    s.part("msg_0", "prt_0", "warm-up");
    assert!(gate.wait_arrived(1, LONG), "the first sync never came");
    for p in 1..=3 {
        s.part(
            "msg_1",
            &format!("prt_1_{p}"),
            "a part written before its message",
        );
    }
    s.part("msg_2", "prt_2_1", "x");
    s.message("msg_2");
    s.message("msg_1");
    s.part("msg_1", "prt_1_4", "after");
    s.info("the session item, written last");
    gate.release();
    api::flush(LONG).unwrap();
    let syncs = run.service.syncs(&id);
    assert_eq!(
        syncs.len(),
        2,
        "{:?}",
        syncs.iter().map(NextSync::item_keys).collect::<Vec<_>>()
    );
    assert_eq!(syncs[0].item_keys(), ["part/msg_0/prt_0"]);
    assert_eq!(syncs[1].item_count(), 8, "{:?}", syncs[1].item_keys());
    for r in &syncs {
        assert_ordered(r);
    }
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
}

#[test]
fn two_hundred_new_parts_of_one_share_go_in_a_few_requests() {
    let (run, mut s, id) = start_shared("", 20);
    // the first sync is held while the burst is written
    let gate = Gate::new();
    run.service.inject(sync_rule(&id, 1).hold(&gate));
    s.info("burst");
    assert!(gate.wait_arrived(1, LONG));
    s.message("msg_1");
    for p in 0..200 {
        s.part("msg_1", &format!("prt_{p:03}"), &format!("part {p}"));
    }
    gate.release();
    api::flush(LONG).unwrap();
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
    let syncs = run.service.syncs(&id);
    let sizes: Vec<usize> = syncs.iter().map(NextSync::item_count).collect();
    assert!(
        syncs.len() <= 5,
        "202 new items took {} requests: {sizes:?}",
        syncs.len()
    );
    assert_eq!(
        sizes.iter().sum::<usize>(),
        202,
        "each item went once: {sizes:?}"
    );
    syncs.iter().for_each(assert_ordered);
    assert_eq!(stats()["requests"].as_u64(), Some(syncs.len() as u64));
    assert_eq!(run.service.overlaps_of(&id), 0);
}

#[test]
fn a_part_rewritten_many_times_ends_newest_in_fewer_requests_than_writes() {
    let (run, mut s, id) = start_shared("", 30);
    // the first sync is held while the rest of the 500 writes arrive: they coalesce
    let gate = Gate::new();
    run.service.inject(sync_rule(&id, 1).hold(&gate));
    let mut text = String::new();
    for n in 0..500 {
        text.push_str(&format!("t{n} "));
        s.part("msg_1", "prt_1", &text);
        if n == 0 {
            assert!(gate.wait_arrived(1, LONG));
        }
    }
    gate.release();
    api::flush(LONG).unwrap();
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
    let syncs = run.service.syncs(&id);
    assert!(
        syncs.len() < 500,
        "500 writes of one part took {} requests",
        syncs.len()
    );
    assert!(
        syncs.iter().all(|r| r.item_count() == 1),
        "one item per request"
    );
    let versions = stored_versions(&run.service, &id, "part/msg_1/prt_1");
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "stored out of write order: {versions:?}"
    );
    assert_eq!(versions.last(), Some(&500));
    let st = stats();
    assert_eq!(st["queued"], 500);
    assert_eq!(st["requests"].as_u64(), Some(syncs.len() as u64));
}

#[test]
fn resets_and_500s_on_a_fifth_of_the_syncs_lose_no_final_content() {
    let run = start_next(r#""concurrency":2,"max_retries":50,"min_interval_ms":0"#);
    run.service.set_latency(Duration::from_millis(2));
    // the first sync (its batch holds the session item) is reset, the next answers 500 (the
    // research's case); then 10% resets and 10% 500s, seeded, at most 80, so the loop ends
    let syncs = || Rule::path("/api/share/").method("POST");
    run.service.inject(syncs().reset());
    run.service.inject(syncs().status(500));
    run.service
        .inject(syncs().times(40).sometimes(10, 0x5eed).reset());
    run.service
        .inject(syncs().times(40).sometimes(11, 0x5eed2).status(500));
    let mut sessions = shared_sessions(40..43);
    for round in 0..20 {
        for (_, s) in sessions.iter_mut() {
            s.info(&format!("round {round}"));
            for m in 0..2 {
                let mid = format!("msg_{m}");
                s.message(&mid);
                for p in 0..10 {
                    s.part(&mid, &format!("prt_{m}_{p}"), &format!("r{round}"));
                }
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    api::flush(LONG).unwrap();
    for (id, s) in &sessions {
        assert_exactly(&run.service.items(id).unwrap(), &s.expected);
        for item in s.expected.keys() {
            let v = stored_versions(&run.service, id, item);
            assert!(
                v.windows(2).all(|w| w[0] <= w[1]),
                "{item} stored out of write order: {v:?}"
            );
        }
    }
    let syncs = run.service.all_syncs();
    let failed = syncs.iter().filter(|r| r.status != Some(200)).count();
    assert!(
        failed >= 2,
        "the faults were injected: {failed} of {} syncs",
        syncs.len()
    );
    assert!(
        run.service.overlaps().is_empty(),
        "a failed sync is never overlapped by its retry"
    );
    let s = stats();
    assert!(s["retried"].as_u64().unwrap() >= failed as u64, "{s}");
    assert_eq!(
        (s["dropped"].as_u64(), s["refused_shares"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["requests"].as_u64(), Some(syncs.len() as u64));
}

const TOKEN: &str = "tok-3f9a1c77e2b04d5e";
const ORG: &str = "org-42";

#[test]
fn org_accounts_use_api_shares_with_the_bearer_token_and_org_id() {
    let run = start_next_org(
        TOKEN,
        ORG,
        &format!(r#""token":"{TOKEN}","org_id":"{ORG}""#),
    );
    let mut s = Session::new(&session(70));
    let (id, secret) = create(&s.sid);
    s.info("org");
    s.message("msg_1");
    s.part("msg_1", "prt_1", "hello");
    api::flush(LONG).unwrap();
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
    api::remove(&s.sid, &secret).unwrap();
    assert!(
        run.service.items(&id).is_none(),
        "the delete reached the org resource"
    );
    let log = run.service.requests();
    let kinds: Vec<(&str, &str)> = log
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert!(kinds.contains(&("POST", "/api/shares")), "{kinds:?}");
    assert!(
        kinds.contains(&("POST", &*format!("/api/shares/{id}/sync"))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("DELETE", &*format!("/api/shares/{id}"))),
        "{kinds:?}"
    );
    for r in &log {
        assert!(r.path.starts_with("/api/shares"), "{} {}", r.method, r.path);
        assert_eq!(
            r.header("authorization"),
            Some(&*format!("Bearer {TOKEN}")),
            "{}",
            r.path
        );
        assert_eq!(r.header("x-org-id"), Some(ORG), "{}", r.path);
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{}",
            r.path
        );
        assert_eq!(r.status, Some(200), "{} {}", r.method, r.path);
        assert!(!r.body.contains(TOKEN), "the token goes in its header only");
    }
}

#[test]
fn without_the_org_token_an_org_service_refuses_and_nothing_is_sent_elsewhere() {
    let run = start_next_org(TOKEN, ORG, "");
    let e = api::create(&session(71)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus, "{}", e.message);
    let log = run.service.requests();
    assert!(!log.is_empty());
    assert!(
        log.iter()
            .all(|r| r.path == "/api/share" && r.status == Some(404)),
        "{log:?}"
    );
    assert!(log.iter().all(|r| r.header("authorization").is_none()));
}

#[test]
fn the_token_and_secrets_never_appear_in_events_stats_or_errors() {
    let config =
        format!(r#""token":"{TOKEN}","org_id":"{ORG}","max_retries":3,"retry_max_ms":100"#);
    let run = start_next_org(TOKEN, ORG, &config);
    let mut said: Vec<String> = Vec::new();
    let mut s = Session::new(&session(80));
    let (_, secret) = create(&s.sid);
    let syncs = || Rule::path("/api/shares/").method("POST");
    run.service
        .inject(syncs().times(5).sometimes(20, 9).reset());
    run.service
        .inject(syncs().times(5).sometimes(25, 10).status(500));
    for p in 0..20 {
        s.part("msg_1", &format!("prt_{p}"), "x");
    }
    // a share whose secret the service does not know: refused, and a failed remove
    let refused = session(81);
    run.service.create_share_id(&share_id(&refused));
    let stale = "00000000-0000-4000-8000-0000000000cc";
    api::sync(
        &format!("session/share/{refused}"),
        &json!({"secret": stale, "url": "u"}).to_string(),
    )
    .unwrap();
    api::sync(
        &format!("session/part/{refused}/msg_1/prt_1"),
        r#"{"id":"prt_1","messageID":"msg_1"}"#,
    )
    .unwrap();
    said.push(api::flush(LONG).unwrap_err().message);
    said.push(api::remove(&refused, stale).unwrap_err().message);
    // a create the service answers 500 (the id is taken), a remove with the wrong secret
    let taken = session(82);
    run.service.create_share_id(&share_id(&taken));
    said.push(api::create(&taken).unwrap_err().message);
    if let Err(e) = api::remove(&s.sid, "0000-wrong-secret") {
        said.push(e.message);
    }
    said.push(api::stats().unwrap());
    said.push(api::events_take());
    let (_, secret2) = create(&session(83));
    said.push(api::stats().unwrap());
    said.push(api::events_take());
    let said = said.join("\n");
    assert!(said.contains("refused"), "{said}");
    for hidden in [TOKEN, &secret, &secret2, stale, "0000-wrong-secret"] {
        assert!(!said.contains(hidden), "{hidden} appears in:\n{said}");
    }
    let log = run.service.requests();
    assert!(
        log.iter()
            .all(|r| r.header("authorization") == Some(&*format!("Bearer {TOKEN}")))
    );
}

#[test]
fn create_answers_id_url_and_secret() {
    let run = start_next("");
    let sid = session(90);
    let created: Value = serde_json::from_str(&api::create(&sid).unwrap()).unwrap();
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, ["id", "secret", "url"], "{created}");
    let id = share_id(&sid);
    assert_eq!(created["id"], id.as_str());
    assert_eq!(created["url"], format!("{}/share/{id}", run.service.url()));
    let creates = run.service.requests();
    assert_eq!(creates.len(), 1);
    let answered: Value = serde_json::from_str(&creates[0].answer).unwrap();
    assert_eq!(created["secret"], answered["secret"], "the server's secret");
    assert_eq!(
        (creates[0].method.as_str(), creates[0].path.as_str()),
        ("POST", "/api/share")
    );
    assert_eq!(creates[0].json(), Some(json!({"sessionID": sid})));
    assert_eq!(creates[0].header("content-type"), Some("application/json"));
    // the share created is the one the library syncs to
    let mut s = Session::new(&sid);
    s.part("msg_1", "prt_1", "x");
    api::flush(LONG).unwrap();
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
}

#[test]
fn a_share_record_with_an_id_syncs_to_that_id_and_one_without_to_the_last_8_characters() {
    let run = start_next("");
    let mut with_id = Session::new(&session(100));
    let secret = run.service.create_share_id("custom01");
    let record = json!({"id": "custom01", "secret": secret, "url": "https://x/share/custom01"});
    api::sync(
        &format!("session/share/{}", with_id.sid),
        &record.to_string(),
    )
    .unwrap();
    with_id.info("with an id");
    with_id.part("msg_1", "prt_1", "x");
    let mut plain = Session::new(&session(101));
    let plain_secret = run.service.create_share_id(&share_id(&plain.sid));
    let record = json!({"secret": plain_secret, "url": "u"});
    api::sync(&format!("session/share/{}", plain.sid), &record.to_string()).unwrap();
    plain.part("msg_1", "prt_1", "y");
    api::flush(LONG).unwrap();
    assert_exactly(&run.service.items("custom01").unwrap(), &with_id.expected);
    assert_exactly(
        &run.service.items(&share_id(&plain.sid)).unwrap(),
        &plain.expected,
    );
    let paths: Vec<String> = run.service.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !paths.contains(&format!("/api/share/{}/sync", share_id(&with_id.sid))),
        "{paths:?}"
    );
    assert_eq!(stats()["shares"], 2);
}

#[test]
fn unknown_session_keys_are_ignored_under_next() {
    let (run, mut s, id) = start_shared("", 110);
    let sid = s.sid.clone();
    let ignored = [
        format!("session/todo/{sid}"),
        format!("session/compaction/{sid}/cmp_1"),
        format!("session/snapshot/{sid}"),
        "project/prj_1".to_owned(),
    ];
    for key in &ignored {
        api::sync(key, r#"{"id":"x"}"#).unwrap();
    }
    s.info("kept");
    s.diff(&["x.rs"]);
    s.model(&["m"]);
    api::flush(LONG).unwrap();
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
    let types: BTreeMap<String, usize> = run
        .service
        .syncs(&id)
        .iter()
        .flat_map(|r| r.item_keys())
        .fold(BTreeMap::new(), |mut m, k| {
            *m.entry(k).or_insert(0) += 1;
            m
        });
    let sent: Vec<&String> = types.keys().collect();
    assert_eq!(
        sent,
        ["model", "session", "session_diff"],
        "only the known keys became items"
    );
    let st = stats();
    assert_eq!(st["ignored"], ignored.len());
    assert_eq!(st["queued"], 3);
}

#[test]
fn a_batch_holds_at_most_4_mib_of_items() {
    let (run, mut s, id) = start_shared("", 130);
    // 100 parts of 100 000 bytes: 10 MB pending, more than two batches' worth (the first sync
    // is held at a gate while they are written)
    let gate = Gate::new();
    run.service.inject(sync_rule(&id, 1).hold(&gate));
    let text = "x".repeat(100_000);
    for p in 0..100 {
        s.part("msg_1", &format!("prt_{p:03}"), &text);
        if p == 0 {
            assert!(gate.wait_arrived(1, LONG));
        }
    }
    gate.release();
    api::flush(LONG).unwrap();
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
    let syncs = run.service.syncs(&id);
    let sizes: Vec<(usize, usize)> = syncs
        .iter()
        .map(|r| (r.item_count(), r.body.len()))
        .collect();
    assert!(syncs.len() >= 3, "{sizes:?}");
    // 4 MiB of items, plus the body's own few bytes
    assert!(
        syncs.iter().all(|r| r.body.len() <= (4 << 20) + 256),
        "{sizes:?}"
    );
    assert!(
        syncs.iter().filter(|r| r.item_count() > 1).count() >= 2,
        "they were batched: {sizes:?}"
    );
}

#[test]
fn concurrency_counts_shares_in_flight() {
    let run = start_next(r#""concurrency":2"#);
    let mut sessions = shared_sessions(140..145);
    let gate = run.service.hold("/api/share/", usize::MAX);
    for round in 0..3 {
        for (_, s) in sessions.iter_mut() {
            s.part("msg_1", &format!("prt_{round}"), "x");
        }
    }
    // two shares' syncs reach the held gate together: both slots are used
    assert!(gate.wait_arrived(2, LONG));
    gate.release();
    api::flush(LONG).unwrap();
    for (id, s) in &sessions {
        assert_exactly(&run.service.items(id).unwrap(), &s.expected);
    }
    // the most syncs being handled at once, from the log's spans
    let most = run.service.max_concurrent("/api/share/");
    assert!(most <= 2, "{most} syncs at once with concurrency 2");
    assert!(run.service.overlaps().is_empty());
}

#[test]
fn shutdown_delivers_what_is_pending() {
    let (run, mut s, id) = start_shared("", 170);
    run.service.set_latency(Duration::from_millis(30));
    s.info("exit right after the writes");
    for p in 0..50 {
        s.part("msg_1", &format!("prt_{p}"), "x");
    }
    api::shutdown(LONG).unwrap();
    assert_exactly(&run.service.items(&id).unwrap(), &s.expected);
    let after: Value = serde_json::from_str(&api::stats().unwrap()).unwrap();
    assert_eq!(
        (after["dropped"].as_u64(), after["pending_keys"].as_u64()),
        (Some(0), Some(0))
    );
}
