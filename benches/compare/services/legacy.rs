//! A loopback HTTP/1.1 stand-in for opencode's legacy share service, for the side-by-side
//! benchmark and the micro-benchmarks (the tests use the real server: crates/testkit). Its own
//! cost per request is a tenth of the real server's behind the proxy (docs/benchmarks.md), so
//! the clients' figures are not the service's. A wrong secret answers 500, as the hosted service.
//!
//! std-only apart from `serde_json` and `socket2` (for SO_LINGER 0 resets). One thread accepts, one
//! thread serves each connection; shared state sits behind short-lived locks, never held while
//! sleeping or doing socket I/O.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Largest request body the service reads.
const MAX_BODY: usize = 16 << 20;
/// Largest number of header lines in one request.
const MAX_HEADERS: usize = 100;

/// What an injected fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and a small JSON error body.
    Status(u16),
    /// Abort the connection with SO_LINGER 0, so the client sees a reset.
    Reset,
}

/// Injects `fault` into the next `times` requests matching `path` (and the sync `key`, if given).
#[derive(Clone, Debug)]
pub struct FaultRule {
    pub path: Option<String>,
    pub key: Option<String>,
    pub fault: Fault,
    pub times: u32,
}

/// One request the service read, with the status it answered (0 when no answer was sent).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub seq: u64,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Option<Value>,
    pub status: u16,
    pub conn: u64,
    pub received: Instant,
    pub finished: Instant,
}

impl Recorded {}

/// A running share service; clones share it, and dropping the last clone stops it.
#[derive(Clone)]
pub struct ShareService {
    inner: Arc<Inner>,
    _guard: Arc<StopOnDrop>,
}

/// Stops the service when the last user-held clone goes away.
struct StopOnDrop(Arc<Inner>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// One session's share: its secret and its stored keys.
struct Share {
    secret: String,
    data: BTreeMap<String, Value>,
}

/// Random faults on `/share_sync`, drawn from a seeded xorshift generator.
struct RandomFaults {
    reset_pct: u32,
    status_500_pct: u32,
    rng: u64,
}

/// Everything behind the main lock.
struct State {
    shares: HashMap<String, Share>,
    faults: Vec<FaultRule>,
    random: Option<RandomFaults>,
    latency: Duration,
    requests: Vec<Recorded>,
    rng: u64,
}

/// State shared by the handle, the accept thread and the connection threads.
struct Inner {
    port: u16,
    base: String,
    state: Mutex<State>,
    in_flight: Mutex<HashMap<(String, String), usize>>,
    conns: Mutex<HashMap<u64, TcpStream>>,
    accept: Mutex<Option<JoinHandle<()>>>,
    seq: AtomicU64,
    conn_seq: AtomicU64,
    active_syncs: AtomicUsize,
    max_syncs: AtomicUsize,
    overlaps: AtomicUsize,
    stopped: AtomicBool,
}

/// One parsed request.
struct Request {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Set when the body could not be read (chunked: 411, bad length: 400); the connection closes.
    reject: Option<u16>,
    received: Instant,
}

/// The answer to write.
struct Answer {
    status: u16,
    body: Value,
}

/// What the connection does after a request.
enum Next {
    KeepAlive,
    Close,
    Reset,
}

impl ShareService {
    /// Starts the service on 127.0.0.1 with an ephemeral port.
    pub fn start() -> ShareService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback listener");
        let port = listener.local_addr().expect("listener address").port();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let inner = Arc::new(Inner {
            port,
            base: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(State {
                shares: HashMap::new(),
                faults: Vec::new(),
                random: None,
                latency: Duration::ZERO,
                requests: Vec::new(),
                rng: (seed ^ (u64::from(port) << 40)) | 1,
            }),
            in_flight: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            accept: Mutex::new(None),
            seq: AtomicU64::new(0),
            conn_seq: AtomicU64::new(0),
            active_syncs: AtomicUsize::new(0),
            max_syncs: AtomicUsize::new(0),
            overlaps: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        });
        *lock(&inner.accept) = Some(spawn_accept(inner.clone(), listener));
        ShareService {
            _guard: Arc::new(StopOnDrop(inner.clone())),
            inner,
        }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.base.clone()
    }

    /// Delays every answer by `latency` (slept per request, without holding any lock).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner.state).latency = latency;
    }

    /// Random resets / 500s on `/share_sync` (percentages of requests; seeded, deterministic draws).
    pub fn set_random_faults(&self, reset_pct: u32, status_500_pct: u32, seed: u64) {
        let rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        lock(&self.inner.state).random = Some(RandomFaults {
            reset_pct,
            status_500_pct,
            rng,
        });
    }

    /// All recorded requests, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        let mut all = lock(&self.inner.state).requests.clone();
        all.sort_by_key(|r| r.seq);
        all
    }

    /// The stored keys and contents of `sid`'s share, or None when it has no share.
    pub fn data(&self, sid: &str) -> Option<BTreeMap<String, Value>> {
        let state = lock(&self.inner.state);
        state.shares.get(sid).map(|s| s.data.clone())
    }
}

impl Inner {
    /// Stops accepting and shuts open connections down; idempotent.
    fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut slot = lock(&self.accept);
        self.halt_accept(&mut slot);
        for (_, conn) in lock(&self.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Wakes the accept thread (which has seen `down`/`stopped`) and waits, bounded, for it to exit.
    fn halt_accept(&self, slot: &mut Option<JoinHandle<()>>) {
        let Some(handle) = slot.take() else { return };
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        for _ in 0..100 {
            if handle.is_finished() {
                break;
            }
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(100));
            thread::sleep(Duration::from_millis(2));
        }
        if handle.is_finished() {
            let _ = handle.join();
        }
    }

    /// Creates or re-creates a share (stored data is kept); returns (url, secret).
    fn create_share(&self, sid: &str) -> (String, String) {
        let mut state = lock(&self.state);
        let url = format!("{}/s/{}", self.base, short_id(sid));
        let id = sid.to_string();
        let secret = uuid_v4(&mut state.rng);
        match state.shares.get_mut(&id) {
            Some(share) => share.secret = secret.clone(),
            None => {
                let share = Share {
                    secret: secret.clone(),
                    data: BTreeMap::new(),
                };
                state.shares.insert(id, share);
            }
        }
        (url, secret)
    }

    /// Handles one request on connection `conn` and says what the connection does next.
    fn handle(&self, req: Request, conn: u64, stream: &mut TcpStream) -> Next {
        let json: Option<Value> = serde_json::from_slice(&req.body).ok();
        let rec = Recorded {
            seq: self.seq.fetch_add(1, Ordering::SeqCst) + 1,
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            json,
            status: 0,
            conn,
            received: req.received,
            finished: req.received,
        };
        if self.is_down() {
            self.record(rec, 0);
            return Next::Close;
        }
        let close = req.reject.is_some() || wants_close(&req);
        if let Some(status) = req.reject {
            let answer = Answer {
                status,
                body: json!({"error": "unsupported body"}),
            };
            self.record_then_write(rec, None, stream, &answer, true);
            return Next::Close;
        }
        let obj = rec.json.as_ref().and_then(Value::as_object);
        let field = |name: &str| {
            obj.and_then(|o| o.get(name))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let key = field("key");
        let sync = rec.path == "/share_sync";
        let guard = sync.then(|| SyncGuard::enter(self, field("sessionID").zip(key.clone())));
        let (fault, latency) = self.take_fault(&rec.path, key.as_deref(), sync);
        thread::sleep(latency);
        if self.is_down() {
            drop(guard);
            self.record(rec, 0);
            return Next::Close;
        }
        let answer = match fault {
            Some(Fault::Reset) => {
                drop(guard);
                self.record(rec, 0);
                return Next::Reset;
            }
            Some(Fault::Status(status)) => Answer {
                status,
                body: json!({"error": "injected fault"}),
            },
            None => self.route(&req.method, &rec.path, rec.json.as_ref()),
        };
        let sent = self.record_then_write(rec, guard, stream, &answer, close);
        if !sent || close {
            Next::Close
        } else {
            Next::KeepAlive
        }
    }

    /// Records the answer and ends the sync's "being handled" span before writing it, so a client that
    /// saw the answer finds it recorded and never sees a false overlap; a failed write records 0.
    fn record_then_write(
        &self,
        rec: Recorded,
        guard: Option<SyncGuard<'_>>,
        stream: &mut TcpStream,
        answer: &Answer,
        close: bool,
    ) -> bool {
        let seq = rec.seq;
        self.record(rec, answer.status);
        drop(guard);
        let sent = write_response(stream, answer, close).is_ok();
        if !sent {
            let mut state = lock(&self.state);
            if let Some(r) = state.requests.iter_mut().find(|r| r.seq == seq) {
                r.status = 0;
            }
        }
        sent
    }

    /// Whether the service is stopped.
    fn is_down(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Stores `rec` with its final status and finish time (taken just before the answer is written).
    fn record(&self, mut rec: Recorded, status: u16) {
        rec.status = status;
        rec.finished = Instant::now();
        lock(&self.state).requests.push(rec);
    }

    /// Consumes the first matching fault rule (or draws a random sync fault); also reads the latency.
    fn take_fault(&self, path: &str, key: Option<&str>, sync: bool) -> (Option<Fault>, Duration) {
        let mut state = lock(&self.state);
        let latency = state.latency;
        let hit = state.faults.iter().position(|rule| {
            rule.path.as_deref().is_none_or(|p| normalize(p) == path)
                && rule.key.as_deref().is_none_or(|k| Some(k) == key)
        });
        if let Some(i) = hit {
            let rule = &mut state.faults[i];
            let fault = rule.fault.clone();
            rule.times -= 1;
            if rule.times == 0 {
                state.faults.remove(i);
            }
            return (Some(fault), latency);
        }
        let fault = match state.random.as_mut() {
            Some(random) if sync => {
                let roll = (xorshift(&mut random.rng) % 100) as u32;
                if roll < random.reset_pct {
                    Some(Fault::Reset)
                } else if roll < random.reset_pct.saturating_add(random.status_500_pct) {
                    Some(Fault::Status(500))
                } else {
                    None
                }
            }
            _ => None,
        };
        (fault, latency)
    }

    /// The normal protocol: share_create, share_sync, share_delete.
    fn route(&self, method: &str, path: &str, json: Option<&Value>) -> Answer {
        let answer = |status: u16, body: Value| Answer { status, body };
        if !matches!(path, "/share_create" | "/share_sync" | "/share_delete") {
            return answer(404, json!({"error": "not found"}));
        }
        if method != "POST" {
            return answer(405, json!({"error": "method not allowed"}));
        }
        let Some(obj) = json.and_then(Value::as_object) else {
            return answer(400, json!({"error": "body is not a JSON object"}));
        };
        let field = |name: &str| obj.get(name).and_then(Value::as_str);
        let Some(sid) = field("sessionID") else {
            return answer(400, json!({"error": "missing sessionID"}));
        };
        if path == "/share_create" {
            let (url, secret) = self.create_share(sid);
            return answer(200, json!({"url": url, "secret": secret}));
        }
        let Some(secret) = field("secret") else {
            return answer(400, json!({"error": "missing secret"}));
        };
        let sync = if path == "/share_sync" {
            match (field("key"), obj.get("content")) {
                (Some(key), Some(content)) => Some((key, content)),
                _ => return answer(400, json!({"error": "missing key or content"})),
            }
        } else {
            None
        };
        let mut state = lock(&self.state);
        if state.shares.get(sid).is_none_or(|s| s.secret != secret) {
            return answer(500, json!({"error": "invalid secret"})); // as the hosted service
        }
        match sync {
            Some((key, content)) => {
                let share = state.shares.get_mut(sid).expect("share checked above");
                share.data.insert(key.to_string(), content.clone());
            }
            None => {
                state.shares.remove(sid);
            }
        }
        answer(200, json!({}))
    }
}

/// Counts a `/share_sync` as being handled (and its key as in flight) until dropped.
struct SyncGuard<'a> {
    inner: &'a Inner,
    key: Option<(String, String)>,
}

impl<'a> SyncGuard<'a> {
    /// Marks a sync for `key` (session, key) as being handled.
    fn enter(inner: &'a Inner, key: Option<(String, String)>) -> Self {
        let active = inner.active_syncs.fetch_add(1, Ordering::SeqCst) + 1;
        inner.max_syncs.fetch_max(active, Ordering::SeqCst);
        if let Some(k) = &key {
            let mut in_flight = lock(&inner.in_flight);
            let count = in_flight.entry(k.clone()).or_insert(0);
            if *count > 0 {
                inner.overlaps.fetch_add(1, Ordering::SeqCst);
            }
            *count += 1;
        }
        SyncGuard { inner, key }
    }
}

impl Drop for SyncGuard<'_> {
    fn drop(&mut self) {
        self.inner.active_syncs.fetch_sub(1, Ordering::SeqCst);
        if let Some(k) = &self.key {
            let mut in_flight = lock(&self.inner.in_flight);
            if let Some(count) = in_flight.get_mut(k) {
                *count -= 1;
                if *count == 0 {
                    in_flight.remove(k);
                }
            }
        }
    }
}

/// Spawns the accept loop for `listener`; it exits once the service is down or stopped.
fn spawn_accept(inner: Arc<Inner>, listener: TcpListener) -> JoinHandle<()> {
    let name = format!("share-service-accept-{}", inner.port);
    thread::Builder::new()
        .name(name)
        .spawn(move || {
            for conn in listener.incoming() {
                if inner.is_down() {
                    break;
                }
                let Ok(stream) = conn else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let id = inner.conn_seq.fetch_add(1, Ordering::SeqCst) + 1;
                if let Ok(clone) = stream.try_clone() {
                    lock(&inner.conns).insert(id, clone);
                }
                let conn_inner = inner.clone();
                let spawned = thread::Builder::new()
                    .name(format!("share-service-conn-{id}"))
                    .spawn(move || serve_conn(conn_inner, stream, id));
                if spawned.is_err() {
                    lock(&inner.conns).remove(&id);
                }
            }
        })
        .expect("spawn accept thread")
}

/// Serves requests on one connection until it closes.
fn serve_conn(inner: Arc<Inner>, stream: TcpStream, id: u64) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream);
    let next = loop {
        let req = match read_request(&mut reader) {
            Ok(Some(req)) => req,
            Ok(None) | Err(_) => break Next::Close,
        };
        match inner.handle(req, id, reader.get_mut()) {
            Next::KeepAlive => continue,
            other => break other,
        }
    };
    // The registry's clone must go first: the socket closes (or resets) only with its last handle.
    lock(&inner.conns).remove(&id);
    let stream = reader.into_inner();
    match next {
        Next::Reset => {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
        _ => {
            // Send FIN, then drain briefly so unread client bytes do not turn the close into a reset.
            let _ = stream.shutdown(Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            let mut sink = [0u8; 4096];
            let mut left = 1usize << 20;
            while let Ok(n @ 1..) = (&stream).read(&mut sink) {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
        }
    }
}

/// Reads one request; Ok(None) at a clean end of stream between requests.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("bad request line"));
    };
    let mut headers = Vec::new();
    loop {
        let mut raw = String::new();
        if reader.read_line(&mut raw)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let raw = raw.trim_end_matches(['\r', '\n']);
        if raw.is_empty() {
            break;
        }
        let (name, value) = raw
            .split_once(':')
            .ok_or_else(|| invalid("bad header line"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        if headers.len() > MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
    }
    let chunked = header(&headers, "transfer-encoding").is_some_and(|v| has_token(v, "chunked"));
    let length = header(&headers, "content-length").map(|v| v.parse::<usize>());
    let (mut body, mut reject) = (Vec::new(), None);
    match length {
        _ if chunked => reject = Some(411),
        Some(Ok(len)) if len <= MAX_BODY => {
            if header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            body.resize(len, 0);
            reader.read_exact(&mut body)?;
        }
        Some(_) => reject = Some(400),
        None => {}
    }
    Ok(Some(Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or(target).to_string(),
        version: version.to_string(),
        headers,
        body,
        reject,
        received: Instant::now(),
    }))
}

/// Whether the connection closes after this request (`Connection: close`, or HTTP/1.0 by default).
fn wants_close(req: &Request) -> bool {
    let connection = header(&req.headers, "connection").unwrap_or("");
    has_token(connection, "close")
        || (req.version.eq_ignore_ascii_case("HTTP/1.0") && !has_token(connection, "keep-alive"))
}

/// Writes a JSON (or plain-text) answer with a Content-Length.
fn write_response(stream: &mut TcpStream, answer: &Answer, close: bool) -> io::Result<()> {
    let body = answer.body.to_string();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        answer.status,
        reason(answer.status),
        body.len()
    );
    if close {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

/// The reason phrase for the statuses this service is likely to send.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The first value of header `name` (names are stored lowercase).
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether a comma-separated header value contains `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The last 8 characters of a session id: the hosted service's share id.
pub fn short_id(sid: &str) -> String {
    let chars: Vec<char> = sid.chars().collect();
    chars[chars.len().saturating_sub(8)..].iter().collect()
}

/// `path` with a leading slash.
fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// An InvalidData error.
fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Locks a mutex, ignoring poisoning (a panicking test must not wedge the service).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One xorshift64 step.
fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// A random version-4-shaped UUID string.
fn uuid_v4(rng: &mut u64) -> String {
    let (hi, lo) = (xorshift(rng), xorshift(rng));
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}
