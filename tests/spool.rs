//! The durable spool through the runtime (in one process): what a run leaves unacknowledged is
//! re-queued by the next share_init on the folder; acknowledged and removed work is not; a
//! damaged spool is read up to its last whole record with an event and a stat; a folder in use
//! or of a bad mode is refused with a clear message; without spool_dir nothing touches the disk.
//! The crash tests (other processes, SIGKILL, exit without shutdown) are in tests/spool_crash.rs.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;
use opencode_share::spool::Spool;
use opencode_share::{ErrorKind, api};

fn spool_config(dir: &Path) -> String {
    format!(r#""spool_dir":"{}""#, dir.display())
}

/// Stops the running library and starts it again on the same service and spool.
fn restart(run: &Running, dir: &Path) {
    let _ = api::shutdown(Duration::from_millis(200));
    let config = format!(
        r#"{{"url":"{}","retry_initial_ms":5,"retry_max_ms":50,{}}}"#,
        run.service.url(),
        spool_config(dir)
    );
    api::init(Some(&config)).unwrap_or_else(|e| panic!("init {config}: {e}"));
}

fn spool_stat(name: &str) -> u64 {
    stats()["spool"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("stats.spool.{name}: {}", stats()))
}

#[test]
fn contents_left_at_shutdown_are_sent_by_the_next_init_on_the_spool() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let sid = session(1);
    share(&sid);
    let keys: Vec<String> = (0..3).map(|p| part_key(&sid, p)).collect();
    run.service.go_down();
    for n in 0..30 {
        api::sync(&keys[n as usize % 3], &part(n)).unwrap();
    }
    // the deadline comes first: the contents are dropped from this run, not from the spool,
    // and the answer and the events say so
    events();
    let e = api::shutdown(Duration::from_millis(100)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.message.contains("left in the spool"), "{}", e.message);
    let left: Vec<_> = events()
        .into_iter()
        .filter(|e| e["type"] == "dropped" && e["reason"] == "shutdown")
        .collect();
    assert!(!left.is_empty(), "no dropped event at shutdown");
    for e in &left {
        assert!(
            e["error"]
                .as_str()
                .is_some_and(|m| m.contains("kept in the spool")),
            "{e}"
        );
    }
    run.service.come_up();
    restart(&run, &dir);
    assert_eq!(spool_stat("recovered_shares"), 1);
    assert_eq!(spool_stat("recovered_contents"), 3);
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    for (p, key) in keys.iter().enumerate() {
        assert_eq!(data[key]["n"], 27 + p as u64, "{key}");
    }
    // delivered now: a third run has nothing to send
    restart(&run, &dir);
    assert_eq!(spool_stat("recovered_contents"), 0);
    assert_eq!(spool_stat("recovered_shares"), 1);
}

#[test]
fn a_removed_share_and_acknowledged_contents_are_not_sent_again() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let (kept, removed) = (session(1), session(2));
    let secret = share(&removed);
    share(&kept);
    api::sync(&part_key(&kept, 0), &part(1)).unwrap();
    api::flush(LONG).unwrap();
    // the proxy answers every sync of the removed share's key with a 503
    run.service.inject(
        Rule::path("/share_sync")
            .containing(&part_key(&removed, 0))
            .times(1000)
            .status(503),
    );
    api::sync(&part_key(&removed, 0), &part(2)).unwrap();
    api::remove(&removed, &secret).unwrap();
    restart(&run, &dir);
    assert_eq!(spool_stat("recovered_contents"), 0, "{}", stats());
    assert_eq!(spool_stat("recovered_shares"), 1);
    let before = run.service.requests_to("/share_sync").len();
    api::flush(LONG).unwrap();
    assert_eq!(run.service.requests_to("/share_sync").len(), before);
}

#[test]
fn a_damaged_spool_is_read_to_its_last_whole_record_with_an_event_and_a_stat() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let sid = session(1);
    share(&sid);
    run.service.go_down();
    api::sync(&part_key(&sid, 0), &part(1)).unwrap();
    api::sync(&part_key(&sid, 1), &part(2)).unwrap();
    // both requests met the service down before the shutdown: none is left in flight to land
    // later, so only the spool decides what the next run sends
    assert!(
        common::wait_for_stat("failed", |n| n >= 2) >= 2,
        "the syncs never failed: {}",
        stats()
    );
    let _ = api::shutdown(Duration::from_millis(100));
    let log = dir.join("spool.log");
    // a torn last record: cut 3 bytes off it, then garbage after the cut
    let len = fs::metadata(&log).unwrap().len();
    let file = OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);
    let mut file = OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"\x07garbage\xff").unwrap();
    drop(file);
    let torn = fs::metadata(&log).unwrap().len();
    run.service.come_up();
    restart(&run, &dir);
    // the damaged tail (the torn record and the garbage) is cut; the first content survives
    let skipped = spool_stat("skipped_bytes");
    assert!(skipped > 9 && skipped < torn, "{skipped} of {torn}");
    assert_eq!(spool_stat("recovered_contents"), 1);
    let spool_events: Vec<_> = events()
        .into_iter()
        .filter(|e| e["type"] == "spool")
        .collect();
    assert_eq!(spool_events.len(), 1, "{spool_events:?}");
    assert_eq!(spool_events[0]["skipped_bytes"], skipped);
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    assert_eq!(data[&part_key(&sid, 0)]["n"], 1);
    if data.contains_key(&part_key(&sid, 1)) {
        for p in run.service.requests_to("/share_sync") {
            eprintln!(
                "DBG {:?} {:?} at {:?} took {:?} key1={}",
                p.outcome,
                p.status,
                p.at,
                p.took,
                p.body.contains("prt_00000000000000000000000001")
            );
        }
    }
    assert!(!data.contains_key(&part_key(&sid, 1)));
    // garbage alone, after whole records
    let _ = api::shutdown(Duration::from_secs(5));
    let mut file = OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(&[0xAB; 100]).unwrap();
    drop(file);
    restart(&run, &dir);
    assert_eq!(spool_stat("skipped_bytes"), 100);
}

#[test]
fn a_spool_in_use_or_open_to_others_is_refused_with_a_clear_message() {
    let run = start(Protocol::V1, "");
    let _ = api::shutdown(Duration::from_secs(1));
    let (_t, dir) = spool_folder();
    let config = format!(
        r#"{{"url":"{}",{}}}"#,
        run.service.url(),
        spool_config(&dir)
    );
    let held = Spool::open(&dir).unwrap();
    let e = api::init(Some(&config)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(
        e.message.contains("spool_dir") && e.message.contains("in use"),
        "{}",
        e.message
    );
    drop(held);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let e = api::init(Some(&config)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("mode 755"), "{}", e.message);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    api::init(Some(&config)).unwrap();
    // files 0600
    for name in ["spool.log", "spool.lock"] {
        let mode = fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

#[test]
fn without_spool_dir_the_stats_have_no_spool_and_with_it_records_are_written_and_synced() {
    let _run = start(Protocol::V1, "");
    assert!(stats()["spool"].is_null(), "{}", stats());
    drop(_run);
    let (_t, dir) = spool_folder();
    let _run = start(Protocol::V1, &spool_config(&dir));
    let sid = session(1);
    share(&sid);
    for n in 0..10 {
        api::sync(&part_key(&sid, n % 2), &part(n)).unwrap();
    }
    api::flush(LONG).unwrap();
    // a share, a content of each key at least (a newer content replaces an older one still
    // waiting for the spool thread), the acks of what was delivered; a flush syncs
    assert!(spool_stat("records") >= 3, "{}", stats());
    assert!(spool_stat("syncs") >= 1, "{}", stats());
    assert!(spool_stat("log_bytes") > 12);
    assert_eq!(spool_stat("errors"), 0);
}

#[test]
fn an_init_right_after_a_shutdown_out_of_time_waits_for_the_spool_not_refuses_it() {
    let (_t, dir) = spool_folder();
    let run = start(Protocol::V1, &spool_config(&dir));
    let sid = session(1);
    share(&sid);
    let config = format!(
        r#"{{"url":"{}","retry_initial_ms":5,"retry_max_ms":50,{}}}"#,
        run.service.url(),
        spool_config(&dir)
    );
    run.service.go_down();
    for round in 0..10u32 {
        for n in 0..20 {
            api::sync(&part_key(&sid, n % 4), &part(round * 100 + n)).unwrap();
        }
        // no time at all: the spool thread is still writing when shutdown returns
        let _ = api::shutdown(Duration::ZERO);
        api::init(Some(&config)).unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    run.service.come_up();
    api::flush(LONG).unwrap();
    let data = run.service.data(&sid).unwrap();
    for p in 0..4 {
        assert_eq!(
            data[&part_key(&sid, p)]["n"],
            u64::from(900 + 16 + p),
            "part {p}"
        );
    }
}
