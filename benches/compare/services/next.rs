//! The successor protocol ("next") as the real server speaks it (research/sharenext.md, section 2),
//! on loopback, for the `next-*` benchmark scenarios (the tests use the real server, crates/testkit):
//! `POST /api/share` (id = last 8 characters of the session id, a taken id answers 500),
//! `POST /api/share/<id>/sync` merged per item key last-write-wins, `GET /api/share/<id>/data`
//! (the items sorted by key; `[]` for an unknown id), `DELETE /api/share/<id>`. POST and DELETE
//! need `content-type: application/json` (400 otherwise); an unknown share or a wrong secret
//! answers 500.
//! Unlike the real server, a DELETE removes the share's data too (its /data leak is not modelled).
//!
//! Beside it: latency, fault rules bounded in count (500s or any status, resets), seeded
//! random faults on syncs, a record per request (items, bytes, times), the first
//! time each item version was stored (for staleness), and an overlap detector: a sync of a share
//! arriving while another sync of that share is being handled (the real server then loses one).
//!
//! std-only plus `serde_json` and `socket2` (SO_LINGER 0 resets). One thread accepts, one thread
//! serves each connection; the lock is never held while sleeping or doing socket I/O.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const MAX_BODY: usize = 64 << 20;
const MAX_HEADERS: usize = 100;

/// What an injected fault does to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (500: the real server's `Internal Server Error` text).
    Status(u16),
    /// Reset the connection (SO_LINGER 0) instead of answering.
    Reset,
}

/// Injects `fault` into the next `times` requests whose path starts with `prefix`.
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub prefix: String,
    pub fault: Fault,
    pub times: u32,
}

/// One request the service read (status 0: reset, no answer).
#[derive(Clone, Debug)]
pub struct NextRecord {
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// The share id of a sync, create, data read or delete ("" when not known).
    pub share: String,
    pub status: u16,
    /// Request line, headers and body as received.
    pub wire_bytes: u64,
    pub body_bytes: u64,
    /// Items in a sync's `data` (0 for other requests).
    pub items: usize,
    pub received: Instant,
    pub finished: Instant,
}

impl NextRecord {
    pub fn is_sync(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/sync")
    }
}

/// An item version the service stored: share id, item key, the content's `v` (if any), when.
#[derive(Clone, Debug)]
pub struct Stored {
    pub share: String,
    pub item: String,
    pub v: Option<u64>,
    pub at: Instant,
}

struct Share {
    secret: String,
    items: BTreeMap<String, Value>,
}

/// Seeded random faults on syncs; `left` bounds how many are drawn in all.
struct RandomFaults {
    reset_pct: u32,
    status_500_pct: u32,
    rng: u64,
    left: u64,
}

struct State {
    shares: HashMap<String, Share>,
    latency: Duration,
    rules: Vec<FaultRule>,
    random: Option<RandomFaults>,
    /// syncs still to answer 500 before the random draws apply
    first_500s: u32,
    requests: Vec<NextRecord>,
    stored: Vec<Stored>,
    /// per share id: syncs being handled now, syncs arrived, overlaps seen
    active: HashMap<String, usize>,
    arrived: HashMap<String, usize>,
    overlaps: HashMap<String, usize>,
    rng: u64,
}

struct Inner {
    base: String,
    /// `/api/share`
    resource: &'static str,
    state: Mutex<State>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    conn_seq: AtomicU64,
    seq: AtomicU64,
    stopped: AtomicBool,
}

/// A running "next" service; dropping it stops it (open connections are shut down).
pub struct NextService {
    inner: Arc<Inner>,
}

impl Drop for NextService {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        // wake the accept thread so it sees `stopped`
        let _ = TcpStream::connect(self.inner.base.trim_start_matches("http://"));
        for (_, conn) in lock(&self.inner.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

impl NextService {
    /// The public protocol under `/api/share`.
    pub fn start() -> NextService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
        let port = listener.local_addr().expect("listener address").port();
        let inner = Arc::new(Inner {
            base: format!("http://127.0.0.1:{port}"),
            resource: "/api/share",
            state: Mutex::new(State {
                shares: HashMap::new(),
                latency: Duration::ZERO,
                rules: Vec::new(),
                random: None,
                first_500s: 0,
                requests: Vec::new(),
                stored: Vec::new(),
                active: HashMap::new(),
                arrived: HashMap::new(),
                overlaps: HashMap::new(),
                rng: 0x2545_F491_4F6C_DD1D ^ u64::from(port),
            }),
            conns: Mutex::new(HashMap::new()),
            conn_seq: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let acc = inner.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if acc.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let id = acc.conn_seq.fetch_add(1, Ordering::SeqCst);
                if let Ok(clone) = stream.try_clone() {
                    lock(&acc.conns).insert(id, clone);
                }
                let inner = acc.clone();
                thread::spawn(move || {
                    serve(&inner, stream);
                    lock(&inner.conns).remove(&id);
                });
            }
        });
        NextService { inner }
    }

    pub fn url(&self) -> String {
        self.inner.base.clone()
    }

    /// Delays every answer by `latency` (slept without holding any lock).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner.state).latency = latency;
    }

    /// Seeded random faults on syncs: `reset_pct`% resets, then `status_500_pct`% answers 500.
    pub fn set_random_faults(&self, reset_pct: u32, status_500_pct: u32, seed: u64) {
        self.set_random_faults_at_most(reset_pct, status_500_pct, seed, u64::MAX);
    }

    /// [`Self::set_random_faults`], ending after `max` faults drawn (a test's loop stays bounded).
    pub fn set_random_faults_at_most(
        &self,
        reset_pct: u32,
        status_500_pct: u32,
        seed: u64,
        max: u64,
    ) {
        let rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        lock(&self.inner.state).random = Some(RandomFaults {
            reset_pct,
            status_500_pct,
            rng,
            left: max,
        });
    }

    /// The next `n` syncs answer 500, whatever the random draws say.
    pub fn fail_next_syncs(&self, n: u32) {
        lock(&self.inner.state).first_500s = n;
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<NextRecord> {
        let mut all = lock(&self.inner.state).requests.clone();
        all.sort_by_key(|r| r.seq);
        all
    }

    pub fn stored(&self) -> Vec<Stored> {
        lock(&self.inner.state).stored.clone()
    }

    /// The items a share holds, by item key (None: no such share).
    pub fn items(&self, share: &str) -> Option<BTreeMap<String, Value>> {
        lock(&self.inner.state)
            .shares
            .get(share)
            .map(|s| s.items.clone())
    }

    /// Syncs of `share` that arrived while another sync of it was being handled.
    pub fn overlaps(&self, share: &str) -> usize {
        lock(&self.inner.state)
            .overlaps
            .get(share)
            .copied()
            .unwrap_or(0)
    }
}

/// The item key the real server merges by (share-next.ts `key(item)`); None for a bad item.
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

/// The share id of a session: its last 8 characters.
pub fn share_id(session_id: &str) -> String {
    let chars: Vec<char> = session_id.chars().collect();
    chars[chars.len().saturating_sub(8)..].iter().collect()
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    wire: u64,
    received: Instant,
}

enum Verdict {
    Answer(u16, Value),
    Reset,
}

/// What a path under the resource names.
enum Target {
    Create,
    Sync(String),
    Data(String),
    Share(String),
}

fn target(inner: &Inner, path: &str) -> Option<Target> {
    let rest = path.strip_prefix(inner.resource)?;
    if rest.is_empty() {
        return Some(Target::Create);
    }
    let rest = rest.strip_prefix('/')?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if id.is_empty() {
        return None;
    }
    match tail {
        "" => Some(Target::Share(id.into())),
        "sync" => Some(Target::Sync(id.into())),
        "data" => Some(Target::Data(id.into())),
        _ => None,
    }
}

fn serve(inner: &Inner, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    while let Ok(Some(req)) = read_request(&mut reader) {
        let json: Option<Value> = serde_json::from_slice(&req.body).ok();
        let tgt = target(inner, &req.path);
        let sync_share = match &tgt {
            Some(Target::Sync(id)) if req.method == "POST" => Some(id.clone()),
            _ => None,
        };
        let share = match &tgt {
            Some(Target::Sync(id) | Target::Data(id) | Target::Share(id)) => id.clone(),
            Some(Target::Create) => json
                .as_ref()
                .and_then(|j| j.get("sessionID"))
                .and_then(Value::as_str)
                .map(share_id)
                .unwrap_or_default(),
            None => String::new(),
        };
        let (latency, fault) = {
            let mut st = lock(&inner.state);
            if let Some(id) = &sync_share {
                *st.arrived.entry(id.clone()).or_insert(0) += 1;
                let n = st.active.entry(id.clone()).or_insert(0);
                *n += 1;
                if *n > 1 {
                    *st.overlaps.entry(id.clone()).or_insert(0) += 1;
                }
            }
            let fault = take_fault(&mut st, &req.path, sync_share.is_some());
            (st.latency, fault)
        };
        if !latency.is_zero() {
            thread::sleep(latency);
        }
        let verdict = match fault {
            Some(Fault::Status(s)) => Verdict::Answer(s, fault_body(s)),
            Some(Fault::Reset) => Verdict::Reset,
            None => route(inner, &req, tgt, json.as_ref()),
        };
        let status = match &verdict {
            Verdict::Answer(s, _) => *s,
            Verdict::Reset => 0,
        };
        // recorded, and the sync's span ended, before the answer is written: a client that saw
        // the answer finds it recorded, and its next sync is never taken for an overlap
        let seq = inner.seq.fetch_add(1, Ordering::SeqCst);
        {
            let mut st = lock(&inner.state);
            if let Some(id) = &sync_share
                && let Some(n) = st.active.get_mut(id)
            {
                *n = n.saturating_sub(1);
            }
            let items = json
                .as_ref()
                .and_then(|v| v.get("data"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            st.requests.push(NextRecord {
                seq,
                share,
                status,
                wire_bytes: req.wire,
                body_bytes: req.body.len() as u64,
                items: if sync_share.is_some() { items } else { 0 },
                received: req.received,
                finished: Instant::now(),
                method: req.method,
                path: req.path,
            });
        }
        let written = match &verdict {
            Verdict::Answer(s, body) => write_response(&mut out, *s, body).is_ok(),
            Verdict::Reset => false,
        };
        if !written {
            let mut st = lock(&inner.state);
            if let Some(r) = st.requests.iter_mut().rev().find(|r| r.seq == seq) {
                r.status = 0;
            }
            drop(st);
            // both handles close now with SO_LINGER 0, so the client gets an RST
            let _ = socket2::SockRef::from(&out).set_linger(Some(Duration::ZERO));
            return;
        }
    }
}

/// The first matching rule (used up after `times`), else a pending 500 or a random draw on syncs.
fn take_fault(st: &mut State, path: &str, sync: bool) -> Option<Fault> {
    if let Some(i) = st.rules.iter().position(|r| path.starts_with(&r.prefix)) {
        let rule = &mut st.rules[i];
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            st.rules.remove(i);
        }
        return Some(fault);
    }
    if !sync {
        return None;
    }
    if st.first_500s > 0 {
        st.first_500s -= 1;
        return Some(Fault::Status(500));
    }
    let r = st.random.as_mut().filter(|r| r.left > 0)?;
    let roll = (xorshift(&mut r.rng) % 100) as u32;
    let fault = if roll < r.reset_pct {
        Fault::Reset
    } else if roll < r.reset_pct + r.status_500_pct {
        Fault::Status(500)
    } else {
        return None;
    };
    r.left -= 1;
    Some(fault)
}

fn fault_body(status: u16) -> Value {
    match status {
        500 => json!("Internal Server Error"),
        _ => json!({"error": "injected fault"}),
    }
}

fn bad(msg: &str) -> Verdict {
    Verdict::Answer(400, json!({"success": false, "error": [msg]}))
}

fn route(inner: &Inner, req: &Request, tgt: Option<Target>, body: Option<&Value>) -> Verdict {
    let Some(tgt) = tgt else {
        return Verdict::Answer(404, json!({"error": "not found"}));
    };
    let server_error = Verdict::Answer(500, json!("Internal Server Error"));
    if let (Target::Data(id), "GET") = (&tgt, req.method.as_str()) {
        let st = lock(&inner.state);
        let items = st
            .shares
            .get(id)
            .map(|s| s.items.values().cloned().collect());
        return Verdict::Answer(200, Value::Array(items.unwrap_or_default()));
    }
    let known = matches!(
        (&tgt, req.method.as_str()),
        (Target::Create | Target::Sync(_), "POST") | (Target::Share(_), "DELETE")
    );
    if !known {
        return Verdict::Answer(404, json!({"error": "not found"}));
    }
    let ct = header(&req.headers, "content-type").unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return bad("content-type must be application/json");
    }
    let Some(body) = body else {
        return bad("the body is not JSON");
    };
    let secret = body.get("secret").and_then(Value::as_str);
    let mut st = lock(&inner.state);
    match (tgt, req.method.as_str()) {
        (Target::Create, "POST") => {
            let Some(sid) = body.get("sessionID").and_then(Value::as_str) else {
                return bad("sessionID is required");
            };
            let id = share_id(sid);
            if st.shares.contains_key(&id) {
                return server_error; // the real server: id taken
            }
            let secret = uuid_v4(&mut st.rng);
            let share = Share {
                secret: secret.clone(),
                items: BTreeMap::new(),
            };
            st.shares.insert(id.clone(), share);
            let url = format!("{}/share/{id}", inner.base);
            Verdict::Answer(200, json!({"id": id, "secret": secret, "url": url}))
        }
        (Target::Sync(id), "POST") => {
            let (Some(secret), Some(data)) = (secret, body.get("data").and_then(Value::as_array))
            else {
                return bad("secret and data[] are required");
            };
            let mut keyed = Vec::with_capacity(data.len());
            for item in data {
                let Some(k) = item_key(item) else {
                    return bad("an item of unknown type, or without its ids");
                };
                keyed.push((k, item.clone()));
            }
            let now = Instant::now();
            let State { shares, stored, .. } = &mut *st;
            let Some(share) = shares.get_mut(&id).filter(|s| s.secret == secret) else {
                return server_error;
            };
            for (k, item) in keyed {
                let v = item.pointer("/data/v").and_then(Value::as_u64);
                stored.push(Stored {
                    share: id.clone(),
                    item: k.clone(),
                    v,
                    at: now,
                });
                share.items.insert(k, item);
            }
            Verdict::Answer(200, json!({}))
        }
        (Target::Share(id), "DELETE") => match st.shares.get(&id) {
            Some(s) if Some(s.secret.as_str()) == secret => {
                st.shares.remove(&id);
                Verdict::Answer(200, json!({}))
            }
            _ => server_error,
        },
        _ => Verdict::Answer(404, json!({"error": "not found"})),
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let received = Instant::now();
    let mut wire = line.len() as u64;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        wire += h.len() as u64;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(io::Error::other("too many headers"));
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(io::Error::other("body too large"));
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    wire += len as u64;
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
        wire,
        received,
    }))
}

fn write_response(out: &mut TcpStream, status: u16, body: &Value) -> io::Result<()> {
    let (ctype, text) = match body {
        Value::String(s) => ("text/plain", s.clone()),
        v => ("application/json", v.to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n",
        match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Status",
        },
        text.len()
    );
    // one write: a head and a body written apart would wait on Nagle for the client's delayed ACK
    out.write_all(format!("{head}{text}").as_bytes())?;
    out.flush()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn xorshift(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

fn uuid_v4(rng: &mut u64) -> String {
    let (a, b) = (xorshift(rng), xorshift(rng));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}
