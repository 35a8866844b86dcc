//! The tests' share service: the real `opencode-share-server` in-process (SQLite in a temporary
//! folder) behind the fault proxy. Faults come in one vocabulary, the proxy's [`Rule`]s (status,
//! `Retry-After`, delay, reset, close, a request held at a [`Gate`]); every request is logged
//! ([`Passed`]: headers, body, answer, timing) and two requests of one flow in flight at once
//! (a share's syncs under "next", a key's syncs under v1) are counted as overlaps.
//! [`Service::start_hosted`] plays opencode's hosted legacy service over the real server
//! ([`hosted`]). Tests in one binary that drive the library's global runtime take [`turn`]s.

pub mod hosted;
pub mod stored;
pub mod wal;
mod wire;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fault_proxy::{FaultProxy, Seen};
pub use fault_proxy::{Gate, Outcome, Passed, Rule, Semantics};
use serde_json::Value;
pub use wire::{request, request_with};

/// Which of opencode's share protocols a test speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The legacy `/share_*` protocol.
    V1,
    /// ShareNext's `/api/share...` protocol.
    Next,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::V1, Protocol::Next];

    /// The library's config members that select this protocol ("" for v1, the default).
    pub fn config(self) -> &'static str {
        match self {
            Protocol::V1 => "",
            Protocol::Next => r#""protocol":"next""#,
        }
    }

    /// The path prefix of this protocol's syncs of share `id` (v1 syncs name no share in the path).
    pub fn sync_path(self, id: &str) -> String {
        match self {
            Protocol::V1 => "/share_sync".into(),
            Protocol::Next => format!("/api/share/{id}/sync"),
        }
    }
}

static TURN: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary that share the library's global runtime.
pub fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// The legacy share id of a session: its last 8 characters.
pub fn short_id(session: &str) -> &str {
    &session[session.len().saturating_sub(8)..]
}

/// The flows the overlap detector watches: a "next" share's syncs, a v1 session's key.
pub struct Flows;

impl Semantics for Flows {
    fn flow(&self, req: &Seen) -> Option<String> {
        flow(req)
    }
}

pub(crate) fn flow(req: &Seen) -> Option<String> {
    if req.method != "POST" {
        return None;
    }
    if req.path == "/share_sync" {
        let json = req.json()?;
        let key = json["key"].as_str()?;
        return Some(format!("v1 {} {key}", v1_session(&json)?));
    }
    let rest = req
        .path
        .strip_prefix("/api/share/")
        .or_else(|| req.path.strip_prefix("/api/shares/"))?;
    let id = rest.strip_suffix("/sync")?;
    Some(next_flow(id))
}

/// The session of a v1 sync body: its `sessionID`, or (an append leaves it out) its key's.
pub fn v1_session(json: &Value) -> Option<&str> {
    json["sessionID"]
        .as_str()
        .or_else(|| json["key"].as_str()?.split('/').nth(2))
}

/// The flow of share `id`'s syncs under "next".
pub fn next_flow(id: &str) -> String {
    format!("next {id}")
}

/// The flow of `key`'s syncs of `session` under v1.
pub fn v1_flow(session: &str, key: &str) -> String {
    format!("v1 {session} {key}")
}

/// The server and the proxy in front of it; both stop when this drops.
pub struct Service {
    pub proxy: FaultProxy,
    pub server: opencode_share_server::Running,
    /// the server's SQLite file
    database: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// The real server behind the proxy, flows watched, nothing rewritten.
    pub fn start() -> Service {
        Service::start_with(Arc::new(Flows), |_| {})
    }

    /// [`Service::start`] playing opencode's hosted legacy service ([`hosted::Hosted`]).
    pub fn start_hosted() -> Service {
        Service::start_with(Arc::new(hosted::Hosted::default()), |_| {})
    }

    /// [`Service::start_hosted`] for an org account's ShareNext service ([`hosted::Hosted::org`]).
    pub fn start_org(token: &str, org_id: &str) -> Service {
        Service::start_with(Arc::new(hosted::Hosted::org(token, org_id)), |_| {})
    }

    /// The server configured by `configure` behind a proxy with `semantics`.
    pub fn start_with(
        semantics: Arc<dyn Semantics>,
        configure: impl FnOnce(&mut opencode_share_server::Config),
    ) -> Service {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let database = dir.path().join("share.db");
        let mut config = opencode_share_server::Config {
            listen: "127.0.0.1:0".into(),
            // no fsync at each commit: the tests do not test the server's durability, and its
            // fsyncs would compete with the library's spool for the disk
            database: format!("sqlite://{}?synchronous=normal", database.display()),
            ..Default::default()
        };
        // the proxy first: the server's share URLs start with the proxy's, as behind a real one
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 9));
        let proxy = FaultProxy::start_with(nowhere, semantics).expect("the proxy starts");
        config.public_url = Some(proxy.url());
        configure(&mut config);
        let server = opencode_share_server::spawn(config).expect("the server starts");
        proxy.set_upstream(server.addr);
        Service {
            proxy,
            server,
            database,
            _dir: dir,
        }
    }

    /// The proxy's URL: what the library is configured with.
    pub fn url(&self) -> String {
        self.proxy.url()
    }

    /// Adds a fault rule (see [`Rule`]).
    pub fn inject(&self, rule: Rule) {
        self.proxy.inject(rule);
    }

    /// Holds the next `n` requests whose path starts with `prefix` until the gate is released.
    pub fn hold(&self, prefix: &str, n: usize) -> Gate {
        self.proxy.hold(prefix, n)
    }

    /// Holds every sync of `session` under `protocol` at the returned gate until it is released.
    pub fn hold_syncs(&self, protocol: Protocol, session: &str) -> Gate {
        let gate = Gate::new();
        let rule = match protocol {
            Protocol::V1 => Rule::path("/share_sync").containing(session),
            Protocol::Next => Rule::path(&protocol.sync_path(short_id(session))),
        };
        self.inject(rule.times(usize::MAX).hold(&gate));
        gate
    }

    /// The syncs of `session` under `protocol`, in the order answered.
    pub fn syncs_of(&self, protocol: Protocol, session: &str) -> Vec<Passed> {
        let syncs = self.requests_to(&protocol.sync_path(short_id(session)));
        let of_session = |p: &Passed| match protocol {
            Protocol::V1 => p.json().is_some_and(|j| v1_session(&j) == Some(session)),
            Protocol::Next => true,
        };
        syncs.into_iter().filter(of_session).collect()
    }

    /// The deletes of `session`'s share under `protocol`.
    pub fn deletes_of(&self, protocol: Protocol, session: &str) -> Vec<Passed> {
        let all = self.requests().into_iter();
        all.filter(|p| match protocol {
            Protocol::V1 => {
                p.path == "/share_delete" && p.json().is_some_and(|j| j["sessionID"] == session)
            }
            Protocol::Next => p.method == "DELETE" && p.path.ends_with(short_id(session)),
        })
        .collect()
    }

    /// Every request so far, in the order answered.
    pub fn requests(&self) -> Vec<Passed> {
        self.proxy.passed()
    }

    /// The requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Passed> {
        let all = self.proxy.passed().into_iter();
        all.filter(|p| p.path.starts_with(prefix)).collect()
    }

    /// Requests that arrived while another of their flow was in flight (the library's bound of
    /// one request per share or key was broken); empty when all is well.
    pub fn overlaps(&self) -> Vec<Passed> {
        self.proxy.overlaps()
    }

    /// Requests of `flow` in flight now.
    pub fn in_flight(&self, flow: &str) -> usize {
        self.proxy.in_flight(flow)
    }

    /// Waits until `done(log)` holds, at most `timeout`.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Passed]) -> bool) -> bool {
        self.proxy.wait_for(timeout, done)
    }

    /// Adds `latency` before every request is handled (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        self.proxy.set_latency(latency);
    }

    /// While down, every request's connection is closed unanswered; [`Service::come_up`] ends it.
    pub fn go_down(&self) {
        self.proxy.set_down(true);
    }

    pub fn come_up(&self) {
        self.proxy.set_down(false);
    }

    /// Body bytes the proxy's endless answers wrote before their clients went.
    pub fn endless_bytes_sent(&self) -> u64 {
        self.proxy.endless_bytes_sent()
    }

    /// Drops every fault rule not yet used up.
    pub fn clear_faults(&self) {
        self.proxy.clear();
    }

    /// The most requests whose path starts with `prefix` that were in flight at once.
    pub fn max_concurrent(&self, prefix: &str) -> usize {
        let mut edges: Vec<(Duration, i32)> = Vec::new();
        for p in self.requests_to(prefix) {
            edges.push((p.at, 1));
            edges.push((p.finished(), -1));
        }
        // an answer and an arrival at the same instant do not overlap
        edges.sort();
        let (mut now, mut most) = (0i32, 0i32);
        for (_, step) in edges {
            now += step;
            most = most.max(now);
        }
        most as usize
    }

    /// Creates the share of `session` on the server directly (legacy create, not through the
    /// proxy or the library); returns (url, secret).
    pub fn create_share(&self, session: &str) -> (String, String) {
        let body = serde_json::json!({ "sessionID": session }).to_string();
        let (status, answer) = request(self.server.addr, "POST", "/share_create", &body);
        assert_eq!(status, 200, "create {session}: {answer}");
        let answer: Value = serde_json::from_str(&answer).expect("a JSON answer");
        let field = |n: &str| answer[n].as_str().unwrap_or_default().to_owned();
        (field("url"), field("secret"))
    }

    /// What the server holds for `session`'s share, by the legacy storage key each item came
    /// from (`session/info/<sid>`, `session/part/<sid>/<mid>/<pid>`...) → its content; None if
    /// there is no such share.
    pub fn data(&self, session: &str) -> Option<BTreeMap<String, Value>> {
        stored::legacy_data(&self.database, session).expect("the server's database reads")
    }

    /// What the server stored for share `id`: item key → its data, read from the server's
    /// SQLite file (committed before any answer); None if there is no such share.
    pub fn stored(&self, id: &str) -> Option<BTreeMap<String, Value>> {
        stored::items(&self.database, id).expect("the server's database reads")
    }

    /// The server's own address (reads here bypass the proxy and its log).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// GET `path` from the server itself: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        request(self.server.addr, "GET", path, "")
    }

    /// POST `body` to the server itself: status and body.
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        request(self.server.addr, "POST", path, body)
    }

    /// GET `path` from the server itself and parse its body (Null if not JSON).
    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// Creates share `id` on the server directly (as the share of a session ending in `id`);
    /// returns its secret.
    pub fn create_share_id(&self, id: &str) -> String {
        self.create_share(&format!("ses_{id}")).1
    }

    /// What the server holds for "next" share `id`, by item key (its `/data` items), or None if
    /// it has no such share.
    pub fn next_items(&self, id: &str) -> Option<BTreeMap<String, Value>> {
        match self.get_json(&format!("/api/share/{id}/data")) {
            (200, Value::Array(items)) => Some(
                items
                    .into_iter()
                    .map(|i| (item_key(&i).unwrap_or_else(|| "?".into()), i))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Time since the proxy started, on the clock of [`Passed::at`].
    pub fn now(&self) -> Duration {
        self.proxy.now()
    }

    /// What the server holds for the v1 share of `session` (`{info, messages}`), or None.
    pub fn v1_data(&self, session: &str) -> Option<Value> {
        match self.get_json(&format!("/share_data?id={}", short_id(session))) {
            (200, data) => Some(data),
            _ => None,
        }
    }
}

/// The item key a "next" item is merged by (ShareNext's `key(item)`); None for a bad item.
pub fn item_key(item: &Value) -> Option<String> {
    let data = item.get("data")?;
    let id = |f: &str| data.get(f).and_then(Value::as_str).map(str::to_string);
    match item.get("type")?.as_str()? {
        "session" => Some("session".into()),
        "message" => Some(format!("message/{}", id("id")?)),
        "part" => Some(format!("part/{}/{}", id("messageID")?, id("id")?)),
        "session_diff" => Some("session_diff".into()),
        "model" => Some("model".into()),
        _ => None,
    }
}
