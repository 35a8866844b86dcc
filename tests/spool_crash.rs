//! Crash tests of the durable spool, under both protocols: a host process streaming into
//! several shares (this test binary, re-run as the host) is killed with SIGKILL at random
//! moments, exits without shutdown, or is killed during share_remove; after each, a fresh process share_inits on the
//! same spool and flushes. The service must then hold the newest content of every key written
//! at least spool_interval_ms before the end (100%), have received each key's contents in
//! order (never an older after a newer), and have received nothing of a share removed before
//! the end from the fresh process.
//!
//! The host prints a line per write (`spool-host: w <n> <key> <unix µs>`) to a pipe, so the
//! lines written before a kill survive it; the moment of the end is taken just before the kill.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::next_service::{self, NextService, share_id};
use common::{Fault, FaultRule, ShareService, part_key, session};
use opencode_share::api;

/// The environment variable that makes a test of this binary act as the host.
const ROLE: &str = "OPENCODE_SHARE_SPOOL_ROLE";
const INTERVAL_MS: u64 = 20;
const KEYS_PER_SHARE: u32 = 4;
/// The crash tests take turns: they time writes against kills, so they do not share the CPU.
static TURN: Mutex<()> = Mutex::new(());

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn say(line: &str) {
    println!("spool-host: {line}");
}

/// What a host run is told, through the environment.
struct Plan {
    url: String,
    spool: String,
    /// Sessions streamed into (created by the host).
    sessions: Vec<String>,
    /// A session removed after `remove_at` writes (0: none).
    removed: Option<String>,
    remove_at: u64,
    /// Exit(0) without shutdown after this many writes (0: stream until killed).
    exit_at: u64,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The host's body, when ROLE is `host` or `finish`; never returns.
fn act(role: &str) -> ! {
    let plan = Plan {
        url: env("SPOOL_URL"),
        spool: env("SPOOL_DIR"),
        sessions: env("SPOOL_SESSIONS")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        removed: Some(env("SPOOL_REMOVED")).filter(|s| !s.is_empty()),
        remove_at: env("SPOOL_REMOVE_AT").parse().unwrap_or(0),
        exit_at: env("SPOOL_EXIT_AT").parse().unwrap_or(0),
    };
    let config = format!(
        r#"{{"url":"{}","protocol":"{}","spool_dir":"{}","spool_interval_ms":{INTERVAL_MS},"retry_initial_ms":5,"retry_max_ms":50,"min_interval_ms":5}}"#,
        plan.url,
        env("SPOOL_PROTOCOL"),
        plan.spool
    );
    api::init(Some(&config)).unwrap_or_else(|e| panic!("init: {e}"));
    if role == "finish" {
        let flushed = api::flush(Duration::from_secs(30));
        say(&format!("stats {}", api::stats().unwrap()));
        say(&format!("flushed {}", flushed.is_ok()));
        let _ = api::shutdown(Duration::from_secs(5));
        std::process::exit(0);
    }
    let mut secrets = BTreeMap::new();
    for sid in plan.sessions.iter().chain(plan.removed.iter()) {
        let json = api::create(sid).unwrap_or_else(|e| panic!("create: {e}"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        secrets.insert(sid.clone(), v["secret"].as_str().unwrap().to_owned());
    }
    say("ready");
    let mut streamed: Vec<&String> = plan.sessions.iter().collect();
    streamed.extend(plan.removed.iter());
    let mut n: u64 = 0;
    loop {
        n += 1;
        if plan.removed.is_some() && n == plan.remove_at {
            let sid = streamed.pop().unwrap();
            say("removing");
            api::remove(sid, &secrets[sid]).unwrap_or_else(|e| panic!("remove: {e}"));
            say(&format!("removed {}", now_us()));
        }
        let sid = streamed[(n as usize) % streamed.len()];
        let key = part_key(sid, (n as u32 / streamed.len() as u32) % KEYS_PER_SHARE);
        // a part as opencode stores it: "next" items are keyed by its ids
        let ids: Vec<&str> = key.split('/').collect();
        let content = serde_json::json!({
            "id": ids[4], "messageID": ids[3], "sessionID": sid, "type": "text",
            "text": format!("write {n}"), "n": n,
        })
        .to_string();
        api::sync(&key, &content).unwrap_or_else(|e| panic!("sync: {e}"));
        say(&format!("w {n} {key} {}", now_us()));
        if plan.exit_at > 0 && n == plan.exit_at {
            say(&format!("exit {}", now_us()));
            std::process::exit(0);
        }
        thread::sleep(Duration::from_micros(300));
    }
}

/// Runs `test` of this binary as a host process with `vars`; its stdout lines come on the
/// returned channel (until it ends).
fn spawn(test: &str, role: &str, vars: &[(&str, String)]) -> (Child, mpsc::Receiver<String>) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the host");
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            // libtest's "test NAME ... " may start the first line
            if let Some(at) = line.find("spool-host: ") {
                if tx.send(line[at + 12..].to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    (child, rx)
}

/// Waits (bounded) for a line starting with `prefix`; the lines before it are kept in `seen`.
fn wait_line(rx: &mpsc::Receiver<String>, prefix: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no {prefix:?} line from the host ({} lines before, the last {:?})",
                seen.len(),
                seen.last()
            )
        });
        if line.starts_with(prefix) {
            return line;
        }
        seen.push(line);
    }
}

/// One run's outcome, from the host's lines.
#[derive(Default)]
struct Written {
    /// key -> (n, µs) of each write, in order.
    writes: BTreeMap<String, Vec<(u64, u64)>>,
    /// When share_remove of the removed session returned, if it did.
    removed_at: Option<u64>,
}

fn parse(lines: &[String]) -> Written {
    let mut w = Written::default();
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["w", n, key, t] => w
                .writes
                .entry(key.to_owned())
                .or_default()
                .push((n.parse().unwrap(), t.parse().unwrap())),
            ["removed", t] => w.removed_at = Some(t.parse().unwrap()),
            _ => {}
        }
    }
    w
}

/// Runs the finishing process on the spool; returns its stats.
fn finish(test: &str, service: &Service, spool: &Path) -> serde_json::Value {
    let (mut child, rx) = spawn(
        test,
        "finish",
        &[
            ("SPOOL_URL", service.url()),
            ("SPOOL_PROTOCOL", service.protocol().into()),
            ("SPOOL_DIR", spool.display().to_string()),
        ],
    );
    let mut seen = Vec::new();
    let stats = wait_line(&rx, "stats ", &mut seen);
    let flushed = wait_line(&rx, "flushed ", &mut seen);
    assert_eq!(flushed, "flushed true", "the fresh process's flush");
    assert!(child.wait().unwrap().success());
    serde_json::from_str(stats.trim_start_matches("stats ")).unwrap()
}

/// The loopback service of the protocol under test, seen the same way: contents by
/// (share, part) key, each carrying its write number `n`.
enum Service {
    V1(ShareService),
    Next(NextService),
}

/// A part's storage key as "<share id>/part/<message id>/<part id>", both protocols' way.
fn norm(storage_key: &str) -> String {
    let ids: Vec<&str> = storage_key.split('/').collect();
    format!("{}/part/{}/{}", share_id(ids[2]), ids[3], ids[4])
}

impl Service {
    fn url(&self) -> String {
        match self {
            Service::V1(s) => s.url(),
            Service::Next(s) => s.url(),
        }
    }

    fn protocol(&self) -> &'static str {
        match self {
            Service::V1(_) => "v1",
            Service::Next(_) => "next",
        }
    }

    /// (request seq, share id, key or "", n) of every content that reached the service, in
    /// arrival order; `delivered`: only those it accepted (2xx).
    fn contents(&self, delivered: bool) -> Vec<(u64, String, String, u64)> {
        match self {
            Service::V1(s) => s
                .requests_to("/share_sync")
                .iter()
                .filter(|r| !delivered || r.status == 200)
                .filter_map(|r| r.json.as_ref().map(|j| (r.seq, j)))
                .filter_map(|(seq, j)| {
                    let key = j["key"].as_str()?;
                    let sid = j["sessionID"].as_str()?;
                    Some((seq, share_id(sid), norm(key), j["content"]["n"].as_u64()?))
                })
                .collect(),
            Service::Next(s) => s
                .requests()
                .iter()
                .filter(|r| r.is_sync() && (!delivered || r.status == 200))
                .filter_map(|r| Some((r.seq, &r.share, r.json.as_ref()?["data"].as_array()?)))
                .flat_map(|(seq, share, data)| {
                    data.iter().filter_map(move |item| {
                        let key = format!("{share}/{}", next_service::item_key(item)?);
                        Some((seq, share.clone(), key, item["data"]["n"].as_u64()?))
                    })
                })
                .collect(),
        }
    }

    fn last_seq(&self) -> u64 {
        match self {
            Service::V1(s) => s.requests().last().map_or(0, |r| r.seq),
            Service::Next(s) => s.requests().last().map_or(0, |r| r.seq),
        }
    }

    /// Every request to remove `sid`'s share goes unanswered (closed, or reset).
    fn stall_deletes(&self, sid: &str) {
        match self {
            Service::V1(s) => s.push_fault(FaultRule {
                path: Some("/share_delete".into()),
                key: None,
                fault: Fault::Close,
                times: 1_000_000,
            }),
            // the prefix also matches the share's syncs: they do not matter once it is removed
            Service::Next(s) => s.push_fault(next_service::FaultRule {
                prefix: format!("/api/share/{}", share_id(sid)),
                fault: next_service::Fault::Reset,
                times: 1_000_000,
            }),
        }
    }

    /// Whether a request to remove `sid`'s share has arrived.
    fn delete_seen(&self, sid: &str) -> bool {
        match self {
            Service::V1(s) => s
                .requests_to("/share_delete")
                .iter()
                .any(|r| r.json.as_ref().is_some_and(|j| j["sessionID"] == sid)),
            Service::Next(s) => s
                .requests()
                .iter()
                .any(|r| r.method == "DELETE" && r.share == share_id(sid)),
        }
    }

    fn clear_faults(&self) {
        match self {
            Service::V1(s) => s.clear_faults(),
            Service::Next(s) => s.clear_faults(),
        }
    }
}

/// Checks one run: every key's final content is at least its newest write made `INTERVAL_MS`
/// before `end_us`, and no older than anything it received before; the fresh process (requests
/// after `fresh_from`) sent nothing of `removed`. Returns how many keys had a write due.
fn check(
    service: &Service,
    written: &Written,
    end_us: u64,
    fresh_from: u64,
    removed: Option<&str>,
) -> usize {
    let mut due = 0;
    let delivered = service.contents(true);
    for (key, writes) in &written.writes {
        if removed.is_some_and(|sid| key.contains(sid)) {
            continue; // removed: what it had does not matter, only that nothing is resent
        }
        let key = &norm(key);
        let ns: Vec<u64> = delivered
            .iter()
            .filter(|(_, _, k, _)| k == key)
            .map(|&(_, _, _, n)| n)
            .collect();
        assert!(
            ns.windows(2).all(|w| w[0] <= w[1]),
            "{key} received an older content after a newer: {ns:?}"
        );
        let required = writes
            .iter()
            .filter(|&&(_, t)| t + INTERVAL_MS * 1000 <= end_us)
            .map(|&(n, _)| n)
            .max();
        // (a write made just before a kill may be delivered without its line printed)
        let newest = writes.last().unwrap().0;
        let last = ns.last().copied();
        if let Some(required) = required {
            due += 1;
            assert!(
                last.is_some_and(|l| l >= required),
                "{key}: the service ends with {last:?}; written {INTERVAL_MS} ms before the end: \
                 {required}, newest printed {newest}"
            );
        }
    }
    if let Some(sid) = removed {
        let resent: Vec<u64> = service
            .contents(false)
            .into_iter()
            .filter(|(seq, share, _, _)| *seq > fresh_from && *share == share_id(sid))
            .map(|(_, _, _, n)| n)
            .collect();
        assert!(
            resent.is_empty(),
            "the fresh process sent contents of the removed share {sid}: {resent:?}"
        );
    }
    due
}

/// A small xorshift generator: the moments are random, and the seed is printed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = now_us() | 1;
        eprintln!("spool crash test seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn private_dir() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    t
}

enum End {
    /// SIGKILL after this many ms of streaming.
    Kill(u64),
    /// exit(0) after this many writes.
    Exit(u64),
    /// SIGKILL while share_remove waits for the service's delete (which is never answered).
    KillInRemove,
}

/// One host run then one fresh process on the same spool, checked. `round` picks the sessions.
/// Returns (keys with a write due, contents the fresh process recovered).
fn round(
    test: &str,
    service: &Service,
    spool: &Path,
    round: u32,
    end: End,
    rng: &mut Rng,
) -> (usize, u64) {
    let sessions: Vec<String> = (0..3).map(|s| session(round * 10 + s)).collect();
    let removed = session(round * 10 + 9);
    let remove_at = match end {
        End::KillInRemove => 20 + rng.below(200),
        _ => 1 + rng.below(150),
    };
    let mut vars = vec![
        ("SPOOL_URL", service.url()),
        ("SPOOL_PROTOCOL", service.protocol().into()),
        ("SPOOL_DIR", spool.display().to_string()),
        ("SPOOL_SESSIONS", sessions.join(",")),
        ("SPOOL_REMOVED", removed.clone()),
        ("SPOOL_REMOVE_AT", remove_at.to_string()),
    ];
    if let End::Exit(n) = end {
        vars.push(("SPOOL_EXIT_AT", n.to_string()));
    }
    service.clear_faults();
    if let End::KillInRemove = end {
        service.stall_deletes(&removed);
    }
    let (mut child, rx) = spawn(test, "host", &vars);
    let mut lines = Vec::new();
    wait_line(&rx, "ready", &mut lines);
    let end_us = match end {
        End::Kill(ms) => {
            thread::sleep(Duration::from_millis(ms));
            let t = now_us();
            child.kill().unwrap();
            t
        }
        End::KillInRemove => {
            wait_line(&rx, "removing", &mut lines);
            let deadline = Instant::now() + Duration::from_secs(30);
            while !service.delete_seen(&removed) {
                assert!(Instant::now() < deadline, "no delete request from the host");
                thread::sleep(Duration::from_millis(1));
            }
            let t = now_us();
            child.kill().unwrap();
            t
        }
        End::Exit(_) => {
            let line = wait_line(&rx, "exit ", &mut lines);
            line.trim_start_matches("exit ").parse().unwrap()
        }
    };
    child.wait().unwrap();
    lines.extend(rx.iter()); // the rest of what it printed before it died
    service.clear_faults();
    let written = parse(&lines);
    let fresh_from = service.last_seq();
    let stats = finish(test, service, spool);
    let removed_before_end = match end {
        End::KillInRemove => Some(removed.as_str()), // its removal is durable before the delete
        _ => written.removed_at.map(|_| removed.as_str()),
    };
    let due = check(service, &written, end_us, fresh_from, removed_before_end);
    let recovered = stats["spool"]["recovered_contents"].as_u64().unwrap();
    (due, recovered)
}

/// Runs `rounds` rounds of test `name` (or acts as its host, in a child), each ended by
/// `end`, against one service and one spool; returns (keys with a write due, contents the fresh
/// processes recovered), summed.
fn rounds(name: &str, protocol: &str, rounds: u32, end: impl Fn(&mut Rng) -> End) -> (usize, u64) {
    if let Ok(role) = std::env::var(ROLE) {
        act(&role);
    }
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let service = match protocol {
        "next" => Service::Next(NextService::start()),
        _ => Service::V1(ShareService::start()),
    };
    let t = private_dir();
    let spool = t.path().join("spool");
    let mut rng = Rng::new();
    let (mut due, mut recovered) = (0, 0);
    for r in 0..rounds {
        let end = end(&mut rng);
        let (d, c) = round(name, &service, &spool, r, end, &mut rng);
        due += d;
        recovered += c;
    }
    eprintln!(
        "{name} ({protocol}): {rounds} rounds, {due} keys with a write due, all landed; {recovered} contents recovered"
    );
    (due, recovered)
}

/// 20 rounds, each host killed at a random moment (20-420 ms into its stream).
fn killed_at_20_random_moments(name: &str, protocol: &str) {
    let (due, recovered) = rounds(name, protocol, 20, |rng| End::Kill(20 + rng.below(400)));
    assert!(
        due > 0 && recovered > 0,
        "the kills must leave work for the spool"
    );
}

/// 5 rounds, each host ending with exit(0) after 50-450 writes.
fn exit_without_shutdown(name: &str, protocol: &str) {
    let (due, recovered) = rounds(name, protocol, 5, |rng| End::Exit(50 + rng.below(400)));
    assert!(
        due > 0 && recovered > 0,
        "the exits must leave work for the spool"
    );
}

/// 5 rounds, each host killed while share_remove waits for its delete.
fn killed_during_remove(name: &str, protocol: &str) {
    let (due, _) = rounds(name, protocol, 5, |_| End::KillInRemove);
    assert!(due > 0, "the other shares had writes due");
}

#[test]
fn killed_at_20_random_moments_a_fresh_process_finishes_the_upload() {
    killed_at_20_random_moments(
        "killed_at_20_random_moments_a_fresh_process_finishes_the_upload",
        "v1",
    );
}

#[test]
fn exit_without_shutdown_loses_nothing_that_reached_the_spool() {
    exit_without_shutdown(
        "exit_without_shutdown_loses_nothing_that_reached_the_spool",
        "v1",
    );
}

#[test]
fn killed_during_share_remove_the_removed_share_is_not_sent_again() {
    killed_during_remove(
        "killed_during_share_remove_the_removed_share_is_not_sent_again",
        "v1",
    );
}

#[test]
fn under_next_killed_at_20_random_moments_a_fresh_process_finishes_the_upload() {
    killed_at_20_random_moments(
        "under_next_killed_at_20_random_moments_a_fresh_process_finishes_the_upload",
        "next",
    );
}

#[test]
fn under_next_exit_without_shutdown_or_a_kill_during_remove_loses_nothing() {
    let name = "under_next_exit_without_shutdown_or_a_kill_during_remove_loses_nothing";
    exit_without_shutdown(name, "next");
    killed_during_remove(name, "next");
}
