//! The successor protocol ("next") as the real server speaks it (research/sharenext.md, section 2),
//! on loopback, for the `next-*` scenarios: `POST /api/share` (id = last 8 characters of the
//! session id, a second create of a taken id answers 500), `POST /api/share/<id>/sync` merged per
//! item key last-write-wins, `DELETE /api/share/<id>`; `content-type: application/json` required
//! (400 otherwise); 500 for an unknown share or a wrong secret. Beside it: latency and seeded random
//! faults (500s, resets) on syncs, a record per request (times, bytes, items), the first time each
//! item version was stored (for staleness), and an overlap detector (a sync of a share arriving
//! while another sync of that share is being handled: the real server then loses one of them).
//!
//! std-only plus `serde_json` and `socket2` (SO_LINGER 0 resets). One thread accepts, one thread
//! serves each connection; the lock is never held while sleeping or doing socket I/O.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const MAX_BODY: usize = 64 << 20;
const MAX_HEADERS: usize = 100;

/// One request the service read (status 0: reset, no answer).
#[derive(Clone, Debug)]
pub struct NextRecord {
    pub method: String,
    pub path: String,
    /// The share id of a sync, create or delete ("" when not known).
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

struct State {
    shares: HashMap<String, Share>,
    latency: Duration,
    /// (reset %, 500 %, xorshift state) on syncs
    faults: Option<(u32, u32, u64)>,
    /// syncs still to answer 500 before the random draws apply
    first_500s: u32,
    requests: Vec<NextRecord>,
    stored: Vec<Stored>,
    /// syncs being handled now, per share id; overlaps seen, per share id
    active: HashMap<String, usize>,
    overlaps: HashMap<String, usize>,
    rng: u64,
}

struct Inner {
    base: String,
    state: Mutex<State>,
    stopped: AtomicBool,
}

/// A running "next" service; dropping it stops it.
pub struct NextService {
    inner: Arc<Inner>,
}

impl Drop for NextService {
    fn drop(&mut self) {
        // open connections end when their driver exits (it has, by the time a run drops this)
        self.inner.stopped.store(true, Ordering::SeqCst);
        // wake the accept thread so it sees `stopped`
        let _ = TcpStream::connect(self.inner.base.trim_start_matches("http://"));
    }
}

impl NextService {
    pub fn start() -> NextService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
        let port = listener.local_addr().expect("listener address").port();
        let inner = Arc::new(Inner {
            base: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(State {
                shares: HashMap::new(),
                latency: Duration::ZERO,
                faults: None,
                first_500s: 0,
                requests: Vec::new(),
                stored: Vec::new(),
                active: HashMap::new(),
                overlaps: HashMap::new(),
                rng: 0x2545_F491_4F6C_DD1D ^ u64::from(port),
            }),
            stopped: AtomicBool::new(false),
        });
        let acc = inner.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if acc.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let inner = acc.clone();
                thread::spawn(move || serve(&inner, stream));
            }
        });
        NextService { inner }
    }

    pub fn url(&self) -> String {
        self.inner.base.clone()
    }

    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner.state).latency = latency;
    }

    /// Seeded random faults on syncs: `reset_pct`% resets, then `status_500_pct`% answers 500.
    pub fn set_random_faults(&self, reset_pct: u32, status_500_pct: u32, seed: u64) {
        let rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        lock(&self.inner.state).faults = Some((reset_pct, status_500_pct, rng));
    }

    /// The next `n` syncs answer 500, whatever the random draws say.
    pub fn fail_next_syncs(&self, n: u32) {
        lock(&self.inner.state).first_500s = n;
    }

    pub fn requests(&self) -> Vec<NextRecord> {
        lock(&self.inner.state).requests.clone()
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

fn serve(inner: &Inner, stream: TcpStream) {
    // as real servers do: an answer is not held back by Nagle waiting for a delayed ACK
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    while let Ok(Some(req)) = read_request(&mut reader) {
        let sync_share = sync_target(&req);
        if let Some(id) = &sync_share {
            let mut st = lock(&inner.state);
            let n = st.active.entry(id.clone()).or_insert(0);
            *n += 1;
            if *n > 1 {
                *st.overlaps.entry(id.clone()).or_insert(0) += 1;
            }
        }
        let (latency, fault) = {
            let mut st = lock(&inner.state);
            let fault = if sync_share.is_some() {
                draw_fault(&mut st)
            } else {
                None
            };
            (st.latency, fault)
        };
        if !latency.is_zero() {
            thread::sleep(latency);
        }
        let verdict = match fault {
            Some(v) => v,
            None => route(inner, &req),
        };
        let status = match &verdict {
            Verdict::Answer(s, _) => *s,
            Verdict::Reset => 0,
        };
        let write_ok = match &verdict {
            Verdict::Answer(s, body) => write_response(&mut out, *s, body).is_ok(),
            Verdict::Reset => {
                let _ = socket2::SockRef::from(&out).set_linger(Some(Duration::ZERO));
                false
            }
        };
        let finished = Instant::now();
        let mut st = lock(&inner.state);
        if let Some(id) = &sync_share
            && let Some(n) = st.active.get_mut(id)
        {
            *n = n.saturating_sub(1);
        }
        let items = serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|v| v.get("data").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0);
        st.requests.push(NextRecord {
            share: share_of(&req).unwrap_or_default(),
            method: req.method,
            path: req.path,
            status,
            wire_bytes: req.wire,
            body_bytes: req.body.len() as u64,
            items: if sync_share.is_some() { items } else { 0 },
            received: req.received,
            finished,
        });
        drop(st);
        if !write_ok {
            // a reset: both handles close now with SO_LINGER 0, so the client gets an RST
            return;
        }
    }
}

fn draw_fault(st: &mut State) -> Option<Verdict> {
    if st.first_500s > 0 {
        st.first_500s -= 1;
        return Some(Verdict::Answer(500, json!("Internal Server Error")));
    }
    let (reset, s500, rng) = st.faults.as_mut()?;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let roll = (*rng % 100) as u32;
    if roll < *reset {
        Some(Verdict::Reset)
    } else if roll < *reset + *s500 {
        Some(Verdict::Answer(500, json!("Internal Server Error")))
    } else {
        None
    }
}

/// `/api/share/<id>/sync` → the id.
fn sync_target(req: &Request) -> Option<String> {
    let rest = req.path.strip_prefix("/api/share/")?;
    let id = rest.strip_suffix("/sync")?;
    (req.method == "POST" && !id.contains('/')).then(|| id.to_string())
}

fn share_of(req: &Request) -> Option<String> {
    if let Some(id) = sync_target(req) {
        return Some(id);
    }
    if let Some(id) = req.path.strip_prefix("/api/share/") {
        return Some(id.to_string());
    }
    let json: Value = serde_json::from_slice(&req.body).ok()?;
    json.get("sessionID").and_then(Value::as_str).map(share_id)
}

fn bad(msg: &str) -> Verdict {
    Verdict::Answer(400, json!({"success": false, "error": [msg]}))
}

fn route(inner: &Inner, req: &Request) -> Verdict {
    let ct = header(&req.headers, "content-type").unwrap_or_default();
    if !ct.to_ascii_lowercase().starts_with("application/json") {
        return bad("content-type must be application/json");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return bad("the body is not JSON");
    };
    let server_error = Verdict::Answer(500, json!("Internal Server Error"));
    let mut st = lock(&inner.state);
    if req.method == "POST" && req.path == "/api/share" {
        let Some(sid) = body.get("sessionID").and_then(Value::as_str) else {
            return bad("sessionID is required");
        };
        let id = share_id(sid);
        if st.shares.contains_key(&id) {
            return server_error; // the real server: id taken
        }
        let secret = uuid_v4(&mut st.rng);
        st.shares.insert(
            id.clone(),
            Share {
                secret: secret.clone(),
                items: BTreeMap::new(),
            },
        );
        let url = format!("{}/share/{id}", inner.base);
        return Verdict::Answer(200, json!({"id": id, "secret": secret, "url": url}));
    }
    let secret = body.get("secret").and_then(Value::as_str);
    if let Some(id) = sync_target(req) {
        let (Some(secret), Some(data)) = (secret, body.get("data").and_then(Value::as_array))
        else {
            return bad("secret and data[] are required");
        };
        let mut keyed = Vec::with_capacity(data.len());
        for item in data {
            let Some(k) = item_key(item) else {
                return bad("an item of unknown type");
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
        return Verdict::Answer(200, json!({}));
    }
    if req.method == "DELETE"
        && let Some(id) = req.path.strip_prefix("/api/share/")
    {
        return match st.shares.get(id) {
            Some(s) if Some(s.secret.as_str()) == secret => {
                st.shares.remove(id);
                Verdict::Answer(200, json!({}))
            }
            _ => server_error,
        };
    }
    Verdict::Answer(404, json!({"error": "not found"}))
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
    let path = parts.next().unwrap_or_default().to_string();
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
            404 => "Not Found",
            _ => "Internal Server Error",
        },
        text.len()
    );
    // one write, as hyper does: head and body in the same segment
    let mut answer = head.into_bytes();
    answer.extend_from_slice(text.as_bytes());
    out.write_all(&answer)?;
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

fn uuid_v4(rng: &mut u64) -> String {
    let mut next = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}
