//! Crash tests of the durable spool, under both protocols: a host process streaming into
//! several shares (this test binary, re-run as the host) is killed with SIGKILL at random
//! moments, exits without shutdown, or is killed during share_remove; after each, a fresh process
//! share_inits on the same spool and flushes. The real server (behind the fault proxy) must then
//! hold the newest content of every key whose write provably reached the spool's log (100%),
//! have received each key's contents in order (never an older after a newer), and have received
//! nothing of a share removed before the end from the fresh process.
//!
//! The host prints a line per write (`spool-host: w <n> <key> <unix µs> <records>`) to a pipe,
//! so the lines written before a kill survive it; `records` is the spool's count of records
//! appended to its log so far. A write provably reached the log once that count rose twice
//! after its line: the spool thread takes its batch, then appends it and counts, so the second
//! rise comes from a batch taken after the write. (Not "written spool_interval_ms before the
//! end": on a loaded machine the spool thread may run later than that; the interval is a
//! figure for benchmarks, not a test's bet.)
//!
//! Whether the removed session's removal counts is read from the spool's log itself once the host
//! is dead: a host killed inside share_remove (which journals the removal at once, then waits for
//! the session's sends in flight, and a slow first send keeps it there) may or may not have its
//! `Remove` record in the log, and the fresh process must act on what the log holds. A removal
//! whose delete went out, or whose share_remove returned, must be in the log.

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

use common::{Protocol, Rule, part_key, session, short_id};
use opencode_share::api;
use opencode_share::spool::Record;
use opencode_share::spool::record::{FRAME_LEN, HEADER_LEN, checksum};
use testkit::item_key;

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
        let stats: serde_json::Value = serde_json::from_str(&api::stats().unwrap()).unwrap();
        let records = stats["spool"]["records"].as_u64().unwrap_or(0);
        say(&format!("w {n} {key} {} {records}", now_us()));
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
    /// key -> (n, whether it provably reached the spool's log) of each write, in order.
    writes: BTreeMap<String, Vec<(u64, bool)>>,
    /// When share_remove of the removed session returned, if it did.
    removed_at: Option<u64>,
    /// share_remove of the removed session was called (it may not have returned).
    removing: bool,
}

fn parse(lines: &[String]) -> Written {
    let mut w = Written::default();
    let mut writes: Vec<(String, u64, u64)> = Vec::new();
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["w", n, key, _t, records] => {
                writes.push((key.to_owned(), n.parse().unwrap(), records.parse().unwrap()))
            }
            ["removed", t] => w.removed_at = Some(t.parse().unwrap()),
            ["removing"] => w.removing = true,
            _ => {}
        }
    }
    // the record counts seen, each once, rising (the count never falls)
    let mut seen: Vec<u64> = writes.iter().map(|&(_, _, r)| r).collect();
    seen.dedup();
    for (key, n, records) in writes {
        let rises_after = seen.iter().filter(|&&r| r > records).count();
        let entry = w.writes.entry(key).or_default();
        entry.push((n, rises_after >= 2));
    }
    w
}

/// Whether the spool's log in `spool` (read as it is, while no process holds it) ends with
/// `session`'s share removed (its last share or remove record is a remove) or kept; None if it
/// has neither (never written, or compacted away once removed). Reads the frames up to the first
/// damaged one, as the library does.
fn removal_in_log(spool: &Path, session: &str) -> Option<bool> {
    let log = std::fs::read(spool.join("spool.log")).unwrap_or_default();
    let u32_at = |at: usize| u32::from_le_bytes(log[at..at + 4].try_into().unwrap());
    let mut at = HEADER_LEN as usize;
    let mut removed = None;
    while at + FRAME_LEN <= log.len() {
        let len = u32_at(at) as usize;
        let Some(payload) = log.get(at + FRAME_LEN..at + FRAME_LEN + len) else {
            break; // a torn last frame
        };
        if checksum(&log[at..at + 4], payload) != u32_at(at + 4) {
            break;
        }
        let Ok(record) = Record::decode(payload) else {
            break;
        };
        match record {
            Record::Share(share) if &*share.session == session => removed = Some(false),
            Record::Remove { session: s } if &*s == session => removed = Some(true),
            _ => {}
        }
        at += FRAME_LEN + len;
    }
    removed
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
/// The real server behind the fault proxy, and the protocol the hosts speak to it.
struct Service {
    kit: testkit::Service,
    protocol: Protocol,
}

/// A part's storage key as "<share id>/part/<message id>/<part id>", both protocols' way.
fn norm(storage_key: &str) -> String {
    let ids: Vec<&str> = storage_key.split('/').collect();
    format!("{}/part/{}/{}", short_id(ids[2]), ids[3], ids[4])
}

impl Service {
    fn url(&self) -> String {
        self.kit.url()
    }

    fn protocol(&self) -> &'static str {
        match self.protocol {
            Protocol::V1 => "v1",
            Protocol::Next => "next",
        }
    }

    /// (arrival, share id, key, n) of every content that reached the service, in arrival
    /// order; `delivered`: only those it accepted (2xx).
    fn contents(&self, delivered: bool) -> Vec<(Duration, String, String, u64)> {
        let mut syncs: Vec<_> = self
            .kit
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("sync"))
            .filter(|r| !delivered || r.status == Some(200))
            .collect();
        syncs.sort_by_key(|r| r.at);
        let mut out = Vec::new();
        for r in &syncs {
            let Some(j) = r.json() else { continue };
            match self.protocol {
                Protocol::V1 => {
                    let (Some(key), Some(sid)) = (j["key"].as_str(), j["sessionID"].as_str())
                    else {
                        continue;
                    };
                    if let Some(n) = j["content"]["n"].as_u64() {
                        out.push((r.at, short_id(sid).to_owned(), norm(key), n));
                    }
                }
                Protocol::Next => {
                    let share = r.path.split('/').nth(3).unwrap_or_default().to_owned();
                    for item in j["data"].as_array().into_iter().flatten() {
                        let (Some(key), Some(n)) = (item_key(item), item["data"]["n"].as_u64())
                        else {
                            continue;
                        };
                        out.push((r.at, share.clone(), format!("{share}/{key}"), n));
                    }
                }
            }
        }
        out
    }

    /// Every request to remove `sid`'s share goes unanswered (its connection closed).
    fn stall_deletes(&self, sid: &str) {
        let rule = match self.protocol {
            Protocol::V1 => Rule::path("/share_delete").containing(sid),
            Protocol::Next => Rule::path(&format!("/api/share/{}", short_id(sid))).method("DELETE"),
        };
        self.kit.inject(rule.times(1_000_000).close());
    }

    /// Whether a request to remove `sid`'s share has arrived.
    fn delete_seen(&self, sid: &str) -> bool {
        !self.kit.deletes_of(self.protocol, sid).is_empty()
    }

    fn clear_faults(&self) {
        self.kit.clear_faults();
    }
}

/// Checks one run: every key's final content is at least its newest write that provably reached
/// the spool's log, and no older than anything it received before; the fresh process (requests
/// from `fresh_from` on) sent nothing of `removed`. Returns how many keys had a write due.
fn check(
    service: &Service,
    written: &Written,
    fresh_from: Duration,
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
            .filter(|&&(_, logged)| logged)
            .map(|&(n, _)| n)
            .max();
        // (a write made just before a kill may be delivered without its line printed)
        let newest = writes.last().unwrap().0;
        let last = ns.last().copied();
        if let Some(required) = required {
            due += 1;
            assert!(
                last.is_some_and(|l| l >= required),
                "{key}: the service ends with {last:?}; in the spool's log: {required}, newest \
                 printed {newest}"
            );
        }
    }
    if let Some(sid) = removed {
        let resent: Vec<u64> = service
            .contents(false)
            .into_iter()
            .filter(|(at, share, _, _)| *at >= fresh_from && share == short_id(sid))
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
    /// SIGKILL inside share_remove as soon as its removal is in the spool's log, while it waits
    /// for the session's syncs in flight (held at the proxy) or for its delete (never answered).
    KillOnceRemovalLogged,
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
        End::KillInRemove | End::KillOnceRemovalLogged => 20 + rng.below(200),
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
    if let End::KillInRemove | End::KillOnceRemovalLogged = end {
        service.stall_deletes(&removed);
    }
    let held = matches!(end, End::KillOnceRemovalLogged)
        .then(|| service.kit.hold_syncs(service.protocol, &removed));
    let (mut child, rx) = spawn(test, "host", &vars);
    let mut lines = Vec::new();
    wait_line(&rx, "ready", &mut lines);
    match end {
        End::Kill(ms) => {
            thread::sleep(Duration::from_millis(ms));
            child.kill().unwrap();
        }
        End::KillInRemove => {
            wait_line(&rx, "removing", &mut lines);
            let deadline = Instant::now() + Duration::from_secs(30);
            while !service.delete_seen(&removed) {
                assert!(Instant::now() < deadline, "no delete request from the host");
                thread::sleep(Duration::from_millis(1));
            }
            child.kill().unwrap();
        }
        End::KillOnceRemovalLogged => {
            wait_line(&rx, "removing", &mut lines);
            lines.push("removing".into());
            let deadline = Instant::now() + Duration::from_secs(30);
            while removal_in_log(spool, &removed) != Some(true) {
                assert!(
                    Instant::now() < deadline,
                    "the removal never reached the spool's log"
                );
                thread::sleep(Duration::from_millis(1));
            }
            child.kill().unwrap();
        }
        End::Exit(_) => {
            wait_line(&rx, "exit ", &mut lines);
        }
    }
    child.wait().unwrap();
    if let Some(gate) = held {
        gate.release(); // what it held arrived before the fresh process started
    }
    lines.extend(rx.iter()); // the rest of what it printed before it died
    service.clear_faults();
    let written = parse(&lines);
    // share_remove journals the removal at once, makes it durable before its delete goes out,
    // and returns after the delete; killed in between, the log may hold it or not
    let delete_sent = written.removed_at.is_some() || service.delete_seen(&removed);
    let removing = written.removing || delete_sent;
    let removed_in_log = removal_in_log(spool, &removed).unwrap_or(removing);
    if delete_sent {
        assert!(
            removed_in_log,
            "share_remove of {removed} sent its delete or returned before its removal was in the \
             spool's log"
        );
    }
    let removed_before_end = removed_in_log.then_some(removed.as_str());
    let fresh_from = service.kit.now();
    let stats = finish(test, service, spool);
    let due = check(service, &written, fresh_from, removed_before_end);
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
    let service = Service {
        kit: testkit::Service::start(),
        protocol: if protocol == "next" {
            Protocol::Next
        } else {
            Protocol::V1
        },
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

/// 5 rounds, each host killed while share_remove waits for its delete; then 3, each killed as
/// soon as share_remove's removal is in the log (while it waits for the session's sync).
fn killed_during_remove(name: &str, protocol: &str) {
    let (due, _) = rounds(name, protocol, 5, |_| End::KillInRemove);
    assert!(due > 0, "the other shares had writes due");
    let (due, _) = rounds(name, protocol, 3, |_| End::KillOnceRemovalLogged);
    assert!(due > 0, "the other shares had writes due");
}

#[test]
fn killed_at_20_random_moments_a_fresh_process_finishes_the_upload() {
    let name = "killed_at_20_random_moments_a_fresh_process_finishes_the_upload";
    for protocol in ["v1", "next"] {
        killed_at_20_random_moments(name, protocol);
    }
}

#[test]
fn exit_without_shutdown_loses_nothing_that_reached_the_spool() {
    let name = "exit_without_shutdown_loses_nothing_that_reached_the_spool";
    for protocol in ["v1", "next"] {
        exit_without_shutdown(name, protocol);
    }
}

#[test]
fn killed_during_share_remove_the_removed_share_is_not_sent_again() {
    let name = "killed_during_share_remove_the_removed_share_is_not_sent_again";
    for protocol in ["v1", "next"] {
        killed_during_remove(name, protocol);
    }
}
