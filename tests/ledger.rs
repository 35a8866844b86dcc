//! The ledger of shares (issue 19) through the runtime, against the real server: with
//! `spool_dir` every share made or told of is kept (id, URL, secret, times, state) until the
//! service confirmed its deletion; `share_list` lists it without the secret; a host that forgot
//! the session removes its share from the ledger; a removal the service never confirmed is sent
//! again by the next `share_init` on the folder.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use opencode_share::{ErrorKind, api};
use serde_json::Value;

/// The environment variable that makes a test of this binary act as the crashing host.
const ROLE: &str = "OPENCODE_SHARE_LEDGER_ROLE";

fn spool_config(dir: &Path) -> String {
    format!(r#""spool_dir":"{}","max_retries":1"#, dir.display())
}

/// Stops the library and starts it again on the same service and spool: a host that kept
/// nothing of the last run.
fn restart(run: &Running, dir: &Path) {
    let _ = api::shutdown(Duration::from_millis(500));
    let config = format!(
        r#"{{"url":"{}","retry_initial_ms":5,"retry_max_ms":50,{}}}"#,
        run.service.url(),
        spool_config(dir)
    );
    api::init(Some(&config)).unwrap_or_else(|e| panic!("init {config}: {e}"));
}

fn list() -> Vec<Value> {
    let json = api::list_json().unwrap();
    serde_json::from_str::<Value>(&json)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Waits (bounded by [`LONG`]) until the ledger has `n` entries; the list then.
fn wait_for_entries(n: usize) -> Vec<Value> {
    let deadline = Instant::now() + LONG;
    loop {
        let entries = list();
        if entries.len() == n || Instant::now() >= deadline {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_share_is_listed_with_its_url_and_times_but_never_its_secret() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let (made, told) = (session(1), session(2));
    let secret = share(&made);
    // a share the host tells the library of, the way opencode stores it
    let (told_url, told_secret) = run.service.create_share(&told);
    let record = serde_json::json!({ "secret": told_secret, "url": told_url }).to_string();
    api::sync(&format!("session/share/{told}"), &record).unwrap();
    api::sync(&part_key(&made, 0), &part(1)).unwrap();
    api::flush(LONG).unwrap();

    let entries = list();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["session"], made.as_str());
    assert_eq!(e["id"], short_id(&made));
    assert!(e["url"].as_str().unwrap().ends_with(short_id(&made)), "{e}");
    assert_eq!(e["state"], "shared");
    assert_eq!(e["protocol"], "v1");
    let created = e["created"].as_u64().unwrap();
    assert!(e["synced"].as_u64().unwrap() >= created, "{e}");
    assert_eq!(entries[1]["url"], told_url.as_str());
    assert_eq!(entries[1]["synced"], Value::Null, "never synced");

    // nowhere but in the spool file
    let shown = format!("{entries:?} {} {:?}", api::stats().unwrap(), events());
    for s in [&secret, &told_secret] {
        assert!(!shown.contains(s.as_str()), "{shown}");
    }
    api::shutdown(LONG).unwrap();
    let log = fs::read(dir.join("spool.log")).unwrap();
    assert!(log.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert_eq!(
        fs::metadata(dir.join("spool.log"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn a_host_that_forgot_the_session_removes_its_share_from_the_ledger() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let sid = session(3);
    share(&sid);
    api::sync(&part_key(&sid, 0), &part(1)).unwrap();
    api::flush(LONG).unwrap();
    assert!(run.service.v1_data(&sid).is_some());

    restart(&run, &dir);
    // the host kept nothing: no secret to give
    assert_eq!(list().len(), 1);
    api::remove_known(&sid).unwrap();
    assert!(run.service.v1_data(&sid).is_none(), "still on the service");
    assert_eq!(list().len(), 0);
    // and it stays gone from the ledger after another restart
    restart(&run, &dir);
    assert_eq!(list().len(), 0);
    let e = api::remove_known(&sid).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("ledger has no share"), "{}", e.message);
}

#[test]
fn a_removal_the_service_never_confirmed_is_sent_again_by_the_next_init() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let sid = session(4);
    let secret = share(&sid);
    // every delete fails: the removal is in the ledger, the share still on the service
    run.service
        .inject(Rule::path("/share_delete").times(1000).status(503));
    let e = api::remove(&sid, &secret).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus, "{}", e.message);
    assert!(run.service.v1_data(&sid).is_some());
    assert_eq!(list()[0]["state"], "removing");

    // still failing at the next run: kept, and sent again
    restart(&run, &dir);
    let tried = run.service.deletes_of(Protocol::V1, &sid).len();
    let deletes = |passed: &[testkit::Passed]| {
        let of = |p: &&testkit::Passed| {
            p.path == "/share_delete" && p.json().is_some_and(|j| j["sessionID"] == sid)
        };
        passed.iter().filter(of).count()
    };
    assert!(
        run.service.wait_for(LONG, |passed| deletes(passed) > tried),
        "the removal was not sent again"
    );
    api::flush(LONG).unwrap();
    assert_eq!(list()[0]["state"], "removing");

    // the service answers again: the next run's resend deletes it and the ledger forgets it
    run.service.clear_faults();
    restart(&run, &dir);
    assert_eq!(wait_for_entries(0), Vec::<Value>::new());
    assert!(run.service.v1_data(&sid).is_none(), "still on the service");
    restart(&run, &dir);
    assert!(list().is_empty());
}

#[test]
fn a_share_the_service_no_longer_has_leaves_the_ledger_at_its_removal() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let sid = session(5);
    let secret = share(&sid);
    // deleted behind the library's back: the delete answers 404, which confirms it
    let body = serde_json::json!({ "sessionID": sid, "secret": secret }).to_string();
    assert_eq!(run.service.post("/share_delete", &body).0, 200);
    let e = api::remove(&sid, &secret).unwrap_err();
    assert_eq!(e.kind, ErrorKind::HttpStatus, "{}", e.message);
    assert!(e.message.contains("404"), "{}", e.message);
    assert!(list().is_empty());
}

/// The crashing host's body (this test binary run again with [`ROLE`] set): shares a session on
/// the spool, says so, then removes it and never returns (the parent kills it meanwhile).
fn crashing_host() -> ! {
    let config = format!(
        r#"{{"url":"{}","spool_dir":"{}","retry_initial_ms":5,"retry_max_ms":50}}"#,
        std::env::var("LEDGER_URL").unwrap(),
        std::env::var("LEDGER_DIR").unwrap()
    );
    api::init(Some(&config)).unwrap();
    let sid = std::env::var("LEDGER_SESSION").unwrap();
    let json = api::create(&sid).unwrap();
    let secret: Value = serde_json::from_str(&json).unwrap();
    println!("ledger-host: removing");
    let _ = api::remove(&sid, secret["secret"].as_str().unwrap());
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(3)
}

#[test]
fn a_host_killed_while_its_delete_was_on_the_way_has_it_sent_by_the_next_init() {
    if std::env::var(ROLE).is_ok() {
        crashing_host();
    }
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, "");
    api::shutdown(LONG).unwrap(); // the service only: the host is another process
    let sid = session(6);
    // the delete reaches the proxy (so the removal is in the spool: it is fsynced before the
    // delete goes out) and waits there; the host dies before any answer
    let gate = Gate::new();
    run.service.inject(
        Rule::path("/share_delete")
            .times(1)
            .status(503)
            .held_at(&gate),
    );
    let mut host = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_host_killed_while_its_delete_was_on_the_way_has_it_sent_by_the_next_init",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "host")
        .env("LEDGER_URL", run.service.url())
        .env("LEDGER_DIR", &dir)
        .env("LEDGER_SESSION", &sid)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(host.stdout.take().unwrap());
    let said_removing = out
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("ledger-host: removing"));
    assert!(said_removing, "the host never came to its removal");
    assert!(
        gate.wait_arrived(1, LONG),
        "the delete never reached the proxy"
    );
    host.kill().unwrap();
    host.wait().unwrap();
    gate.release();
    assert!(
        run.service.v1_data(&sid).is_some(),
        "deleted before the crash"
    );

    // a fresh process on the spool: the removal goes out again, and the ledger forgets it
    restart(&run, &dir);
    assert_eq!(wait_for_entries(0), Vec::<Value>::new());
    assert!(run.service.v1_data(&sid).is_none(), "still on the service");
    // the held delete's answer found its host dead; the resend was answered 200
    let deletes = run.service.deletes_of(Protocol::V1, &sid);
    assert_eq!(deletes.last().map(|p| p.status), Some(Some(200)));
}
