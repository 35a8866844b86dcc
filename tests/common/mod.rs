//! Shared by the integration tests: the runtime is global, so tests of one binary take turns
//! (the testkit's turn); each gets the real server behind the fault proxy (crates/testkit) and a
//! running library against it, shut down after the test.
#![allow(dead_code, unused_imports)]

pub mod session;

use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use opencode_share::api;
pub use session::{Session, assert_exactly};
pub use testkit::{Gate, Protocol, Rule, Service, short_id};

/// A running library against its own service; shuts the library down when dropped. Derefs to
/// the service.
pub struct Running<S = Service> {
    pub service: S,
    _turn: MutexGuard<'static, ()>,
}

impl<S> std::ops::Deref for Running<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.service
    }
}

impl<S> Drop for Running<S> {
    fn drop(&mut self) {
        let _ = api::shutdown(Duration::from_secs(5));
        api::set_event_sink(None);
    }
}

/// The library under `protocol` against the real server behind the fault proxy; `extra` is more
/// config JSON members (e.g. `"concurrency":2`), with short retry waits unless it sets its own.
pub fn start(protocol: Protocol, extra: &str) -> Running {
    let sep = if extra.is_empty() || protocol.config().is_empty() {
        ""
    } else {
        ","
    };
    let extra = format!("{}{sep}{extra}", protocol.config());
    start_with(Service::start, Service::url, &extra)
}

/// The library under v1 against the real server playing opencode's hosted legacy service
/// ([`testkit::hosted`]).
pub fn start_hosted(extra: &str) -> Running {
    start_with(Service::start_hosted, Service::url, extra)
}

/// The library under `"protocol":"next"` against the real server playing ShareNext's hosted
/// service (a wrong secret, an unknown share and a taken id answer 500).
pub fn start_next(extra: &str) -> Running {
    start_with(Service::start_hosted, Service::url, &next_config(extra))
}

/// [`start_next`] against an org account's service that requires `token` and `org_id`;
/// `extra` says what the library is given (its `token` and `org_id` included, or not).
pub fn start_next_org(token: &str, org_id: &str, extra: &str) -> Running {
    let org = || Service::start_org(token, org_id);
    start_with(org, Service::url, &next_config(extra))
}

fn next_config(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { "," };
    format!(r#""protocol":"next"{sep}{extra}"#)
}

fn start_with<S>(service: impl FnOnce() -> S, url: fn(&S) -> String, extra: &str) -> Running<S> {
    let turn = testkit::turn();
    let _ = api::shutdown(Duration::ZERO); // a failed test before may have left it running
    let service = service();
    let mut config = format!(r#"{{"url":"{}""#, url(&service));
    if !extra.contains("retry_initial_ms") {
        config.push_str(r#","retry_initial_ms":5"#);
    }
    if !extra.contains("retry_max_ms") {
        config.push_str(r#","retry_max_ms":50"#);
    }
    if !extra.is_empty() {
        config.push(',');
        config.push_str(extra);
    }
    config.push('}');
    api::init(Some(&config)).unwrap_or_else(|e| panic!("init {config}: {e}"));
    api::set_event_sink(Some(Arc::new(|| {})));
    api::events_take();
    Running {
        service,
        _turn: turn,
    }
}

/// Creates a share through the library; returns its secret.
pub fn share(session: &str) -> String {
    let json = api::create(session).expect("create");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value["secret"].as_str().unwrap().to_owned()
}

/// The stats as JSON.
pub fn stats() -> serde_json::Value {
    serde_json::from_str(&api::stats().expect("stats")).unwrap()
}

/// The events taken since the last call, as JSON values.
pub fn events() -> Vec<serde_json::Value> {
    serde_json::from_str(&api::events_take()).unwrap()
}

/// A session id as opencode makes them (`ses_` + 26 characters).
pub fn session(n: u32) -> String {
    format!("ses_{n:026}")
}

pub fn part_key(session: &str, part: u32) -> String {
    format!("session/part/{session}/msg_{:026}/prt_{part:026}", 1)
}

/// A part's content whose text carries the write number `n`.
pub fn part(n: u32) -> String {
    format!(r#"{{"type":"text","text":"write {n}","n":{n}}}"#)
}

/// The write numbers the server accepted for v1 `key`, in the order answered.
pub fn accepted_ns(service: &Service, key: &str) -> Vec<u64> {
    service
        .requests_to("/share_sync")
        .iter()
        .filter(|r| r.status == Some(200))
        .filter_map(|r| r.json())
        .filter(|j| j["key"] == key)
        .map(|j| j["content"]["n"].as_u64().unwrap())
        .collect()
}

/// Flushes and checks the answer reports `n` contents given up (SHARE_ERR_HTTP_STATUS).
pub fn flush_reports_given_up(n: u64) {
    let e = api::flush(LONG).unwrap_err();
    assert_eq!(
        e.kind,
        opencode_share::ErrorKind::HttpStatus,
        "{}",
        e.message
    );
    let want = format!("{n} contents were given up");
    assert!(e.message.contains(&want), "{}", e.message);
}

/// Waits (bounded by [`LONG`]) until the stat `name` passes `done`; returns its last value.
pub fn wait_for_stat(name: &str, done: impl Fn(u64) -> bool) -> u64 {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let value = stats()[name].as_u64().unwrap_or(0);
        if done(value) || std::time::Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded by [`LONG`]) until the library sees the service as down and has no request
/// under way: a request started before the outage can no longer arrive after it. True if so.
pub fn wait_for_outage() -> bool {
    let deadline = std::time::Instant::now() + LONG;
    while std::time::Instant::now() < deadline {
        let s = stats();
        if s["service"]["state"] == "down" && s["in_flight"] == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

pub const LONG: Duration = Duration::from_secs(20);

/// A private temporary folder (0700) with a spool folder's path inside it.
pub fn spool_folder() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = t.path().join("spool");
    (t, dir)
}
