//! For tests/server_*.rs: the real share server (in-process, SQLite in a temporary folder) behind
//! a fault-injection proxy, the library started against the proxy, and plain reads of what the
//! server serves. The library's runtime is global, so the tests of one binary take turns.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use fault_proxy::{FaultProxy, Outcome, Passed, Rule};
use opencode_share::api;
use serde_json::Value;

static TURN: Mutex<()> = Mutex::new(());

/// The server, the proxy in front of it, and the library configured with the proxy's URL; the
/// library is shut down when this drops, then the proxy and the server stop.
pub struct Rig {
    pub proxy: FaultProxy,
    pub server: opencode_share_server::Running,
    _dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = api::shutdown(Duration::from_secs(5));
        api::set_event_sink(None);
    }
}

/// Starts a fresh server and proxy and the library against the proxy, with short retry waits.
pub fn start() -> Rig {
    start_with("")
}

/// [`start`] with more config members for the library (e.g. `"protocol":"next"`).
pub fn start_with(extra: &str) -> Rig {
    let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let _ = api::shutdown(Duration::ZERO); // a failed test before may have left it running
    let dir = tempfile::tempdir().unwrap();
    let server = opencode_share_server::spawn(opencode_share_server::Config {
        listen: "127.0.0.1:0".into(),
        database: format!("sqlite://{}", dir.path().join("share.db").display()),
        ..Default::default()
    })
    .expect("the server starts");
    let proxy = FaultProxy::start(server.addr).expect("the proxy starts");
    let sep = if extra.is_empty() { "" } else { "," };
    let config = format!(
        r#"{{"url":"{}","retry_initial_ms":5,"retry_max_ms":50{sep}{extra}}}"#,
        proxy.url()
    );
    api::init(Some(&config)).unwrap_or_else(|e| panic!("init {config}: {e}"));
    api::set_event_sink(Some(Arc::new(|| {})));
    api::events_take();
    Rig {
        proxy,
        server,
        _dir: dir,
        _turn: turn,
    }
}

impl Rig {
    /// GET `path` from the server itself (not through the proxy): status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        request(self.server.addr, "GET", path, "")
    }

    /// POST `body` to the server itself.
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        request(self.server.addr, "POST", path, body)
    }

    /// GET `path` and parse its body as JSON (status, value; Null if not JSON).
    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path);
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    /// The requests of `path` (prefix) the proxy has seen so far.
    pub fn passed(&self, prefix: &str) -> Vec<Passed> {
        self.proxy
            .passed()
            .into_iter()
            .filter(|p| p.path.starts_with(prefix))
            .collect()
    }
}

/// One HTTP/1.1 request on a fresh connection (`connection: close`, so the body ends at EOF).
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        },
    )
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Creates the share of `session` through the library; returns (url, secret).
pub fn share(session: &str) -> (String, String) {
    let created: Value = serde_json::from_str(&api::create(session).expect("create")).unwrap();
    (
        created["url"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// The legacy share id of a session: its last 8 characters.
pub fn short_id(session: &str) -> &str {
    &session[session.len() - 8..]
}
