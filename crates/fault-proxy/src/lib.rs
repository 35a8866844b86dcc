//! A fault-injecting HTTP/1.1 proxy for tests: it listens on loopback in front of a real server,
//! forwards each request (buffered, on a fresh upstream connection) and, where a rule says so,
//! delays it, answers it with a status instead, resets or closes its connection, or holds it until
//! the test releases it. Every request is logged (method, path, headers, body, what happened,
//! status, answer, timing). A [`Semantics`] may answer or rewrite requests the way another
//! service would and names each request's flow; two requests of one flow in flight at once are
//! counted as an overlap. Responses are buffered whole, so streams (SSE, WebSocket) do not belong
//! behind it.
//!
//! ```no_run
//! let proxy = fault_proxy::FaultProxy::start("127.0.0.1:8080".parse().unwrap()).unwrap();
//! proxy.inject(fault_proxy::Rule::path("/share_sync").times(2).status(503));
//! // point the client at proxy.url() ...
//! ```

mod rule;
mod semantics;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub use rule::{Action, Gate, Rule};
pub use semantics::{Reply, Request as Seen, Semantics, Transparent};

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded; `status` is the server's answer.
    Forwarded,
    /// Answered by the proxy with an injected status.
    Injected,
    /// The connection was reset (RST) instead of an answer.
    Reset,
    /// The connection was closed (FIN) instead of an answer.
    Closed,
    /// The server could not be reached or did not answer; the client got a 502.
    UpstreamFailed,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Passed {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names lowercase, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The request body (lossy UTF-8).
    pub body: String,
    pub outcome: Outcome,
    /// The status the client got (None after a reset or close).
    pub status: Option<u16>,
    /// The answer's body the client got (lossy UTF-8; empty after a reset or close).
    pub answer: String,
    /// The request's flow as the [`Semantics`] named it (a share, a share's key).
    pub flow: Option<String>,
    /// Another request of the same flow was in flight when this one arrived.
    pub overlapped: bool,
    /// When the request arrived, relative to the proxy's start.
    pub at: Duration,
    /// From arrival to the answer (or the reset/close).
    pub took: Duration,
}

impl Passed {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (None if it is not).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// When the answer (or the reset/close) went out, relative to the proxy's start.
    pub fn finished(&self) -> Duration {
        self.at + self.took
    }
}

/// Rules and log, shared by the test thread and the proxy's runtime. Lock order: `rules`, `log`
/// and `flows` are leaf locks, never held across an await or each other.
struct Shared {
    upstream: Mutex<SocketAddr>,
    started: Instant,
    semantics: Arc<dyn Semantics>,
    latency: Mutex<Duration>,
    /// every connection closed unanswered while set
    down: std::sync::atomic::AtomicBool,
    /// requests are logged while set (a long run's log would grow without bound)
    logging: std::sync::atomic::AtomicBool,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Passed>>,
    /// requests in flight per flow
    flows: Mutex<HashMap<String, usize>>,
    /// body bytes written by endless answers
    endless_sent: std::sync::atomic::AtomicU64,
    /// requests that arrived while another of their flow was in flight
    overlapped: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running proxy on its own thread; stops (dropping open connections) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on 127.0.0.1 (a free port) in front of `upstream`, forwarding as it is.
    pub fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        FaultProxy::start_with(upstream, Arc::new(Transparent))
    }

    /// [`FaultProxy::start`] with `semantics` answering, rewriting and naming the flows.
    pub fn start_with(
        upstream: SocketAddr,
        semantics: Arc<dyn Semantics>,
    ) -> std::io::Result<FaultProxy> {
        let listener = StdListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            started: Instant::now(),
            semantics,
            latency: Mutex::new(Duration::ZERO),
            down: Default::default(),
            logging: std::sync::atomic::AtomicBool::new(true),
            rules: Mutex::default(),
            log: Mutex::default(),
            flows: Mutex::default(),
            endless_sent: Default::default(),
            overlapped: Default::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let inner = shared.clone();
        let thread = thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = accept_loop(listener, inner) => {}
                        _ = stop_rx => {}
                    }
                });
            })?;
        Ok(FaultProxy {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for the client's configuration.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Forwards to `upstream` from now on (a server started after the proxy, to know its URL).
    pub fn set_upstream(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Adds `latency` before every request is handled (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }

    /// While `down`, every request is answered by closing its connection (logged as
    /// [`Outcome::Closed`]): a service that is not there. Rules are not used up meanwhile.
    pub fn set_down(&self, down: bool) {
        self.shared
            .down
            .store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether requests are logged from now on (on by default; the overlap count goes on either
    /// way through [`FaultProxy::overlap_count`]).
    pub fn set_logging(&self, on: bool) {
        self.shared
            .logging
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Requests that arrived while another of their flow was in flight, logged or not.
    pub fn overlap_count(&self) -> u64 {
        self.shared
            .overlapped
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Adds a rule; rules are tried in the order added, the first that matches and has uses left
    /// applies (one use per request).
    pub fn inject(&self, rule: Rule) {
        lock(&self.shared.rules).push(rule);
    }

    /// Holds the next `n` requests whose path starts with `prefix` until the gate is released.
    pub fn hold(&self, prefix: &str, n: usize) -> Gate {
        let gate = Gate::new();
        self.inject(Rule::path(prefix).times(n).hold(&gate));
        gate
    }

    /// Drops every rule not yet used up (held requests stay held until their gate is released).
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Every request so far, in the order they were answered.
    pub fn passed(&self) -> Vec<Passed> {
        lock(&self.shared.log).clone()
    }

    /// Time since the proxy started, on the clock of [`Passed::at`].
    pub fn now(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// Body bytes the endless answers wrote before their clients went.
    pub fn endless_bytes_sent(&self) -> u64 {
        self.shared
            .endless_sent
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Requests of `flow` in flight now (arrived, not yet answered).
    pub fn in_flight(&self, flow: &str) -> usize {
        lock(&self.shared.flows).get(flow).copied().unwrap_or(0)
    }

    /// The requests that arrived while another of their flow was in flight.
    pub fn overlaps(&self) -> Vec<Passed> {
        self.passed().into_iter().filter(|p| p.overlapped).collect()
    }

    /// Waits until `done(log)` holds, at most `timeout`; returns whether it did.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Passed]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(&lock(&self.shared.log)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(connection(stream, shared.clone()));
    }
}

/// How a handler asks its connection to end without a well-formed answer.
#[derive(Clone, Copy)]
enum Abort {
    Reset,
    Close,
    /// 200 announcing this many bytes of body, a few of them, then a close.
    Huge(u64),
    /// 200 with a chunked body that never ends (until the client goes, or [`ENDLESS_MAX`]).
    Endless,
}

/// Most bytes an endless answer writes before it gives up on the client.
const ENDLESS_MAX: u64 = 256 << 20;

/// Writes what `abort` says on the client's socket (blocking; its connection task is over).
fn finish_aborted(stream: std::net::TcpStream, abort: Abort, shared: &Shared) {
    use std::io::Write;
    let mut stream = stream;
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    match abort {
        Abort::Reset => {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
        Abort::Close => {}
        Abort::Huge(n) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {n}\r\n\r\n{{\"url\":\""
            );
            let _ = stream.write_all(head.as_bytes());
        }
        Abort::Endless => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
            let mut sent = 0u64;
            while sent < ENDLESS_MAX && stream.write_all(chunk.as_bytes()).is_ok() {
                sent += 0x10000;
                shared
                    .endless_sent
                    .fetch_add(0x10000, std::sync::atomic::Ordering::SeqCst);
            }
        }
    }
    // dropping the stream closes the socket (RST with linger 0)
}

/// Serves one client connection; a handler that picks a reset or close ends it from here, where
/// the socket is (a duplicate descriptor keeps it reachable while hyper owns the stream).
async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let Ok(control) = std_stream.try_clone() else {
        return;
    };
    let Ok(stream) = TcpStream::from_std(std_stream) else {
        return;
    };
    let (abort_tx, mut abort_rx) = tokio::sync::mpsc::unbounded_channel::<Abort>();
    let shared_for_abort = shared.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (shared, abort) = (shared.clone(), abort_tx.clone());
        async move { Ok::<_, Infallible>(handle(req, shared, abort).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    let abort = tokio::select! {
        _ = conn => None,
        abort = abort_rx.recv() => abort,
    };
    // the connection future is dropped here; `control` alone keeps the socket open
    if let Some(abort) = abort {
        let _ =
            tokio::task::spawn_blocking(move || finish_aborted(control, abort, &shared_for_abort))
                .await;
    }
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r
}

/// Counts a request of a flow in flight until dropped (answered, or its connection aborted).
struct InFlight {
    shared: Arc<Shared>,
    flow: Option<String>,
}

impl InFlight {
    /// Enters `flow`; says whether another request of it was in flight already.
    fn enter(shared: &Arc<Shared>, flow: Option<String>) -> (InFlight, bool) {
        let mut overlapped = false;
        if let Some(f) = &flow {
            let mut flows = lock(&shared.flows);
            let n = flows.entry(f.clone()).or_insert(0);
            overlapped = *n > 0;
            *n += 1;
        }
        let guard = InFlight {
            shared: shared.clone(),
            flow,
        };
        (guard, overlapped)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(f) = &self.flow {
            let mut flows = lock(&self.shared.flows);
            if let Some(n) = flows.get_mut(f) {
                *n -= 1;
                if *n == 0 {
                    flows.remove(f);
                }
            }
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    abort: tokio::sync::mpsc::UnboundedSender<Abort>,
) -> Response<Body> {
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_ascii_lowercase(), v)
            })
            .collect(),
        // a gzip body (the append extension's) is seen decoded; it is forwarded as it came
        body: gunzipped(&parts.headers, &body).unwrap_or_else(|| body.clone()),
    };
    let flow = shared.semantics.flow(&seen);
    let (_in_flight, overlapped) = InFlight::enter(&shared, flow.clone());
    let (first, action) = if shared.down.load(std::sync::atomic::Ordering::SeqCst) {
        (None, Some(Action::Close))
    } else {
        let mut rules = lock(&shared.rules);
        let taken = rules
            .iter_mut()
            .find_map(|r| r.take(&seen.method, &seen.path, &seen.body));
        taken.map_or((None, None), |(first, action)| (first, Some(action)))
    };
    if let Some(gate) = first {
        gate.pass().await;
    }
    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if overlapped {
        shared
            .overlapped
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    let record = |outcome: Outcome, status: Option<u16>, answer: &[u8]| {
        if !shared.logging.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        lock(&shared.log).push(Passed {
            method: seen.method.clone(),
            path: seen.path.clone(),
            headers: seen.headers.clone(),
            body: String::from_utf8_lossy(&seen.body).into_owned(),
            outcome,
            status,
            answer: String::from_utf8_lossy(answer).into_owned(),
            flow: flow.clone(),
            overlapped,
            at: arrived - shared.started,
            took: arrived.elapsed(),
        });
    };
    match action {
        Some(Action::Status {
            status,
            retry_after,
        }) => {
            let body = "injected by fault-proxy\n";
            let mut r = text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            );
            if let Some(s) = retry_after {
                r.headers_mut().insert(hyper::header::RETRY_AFTER, s.into());
            }
            record(Outcome::Injected, Some(status), body.as_bytes());
            return r;
        }
        Some(Action::Reply { status, body }) => {
            record(Outcome::Injected, Some(status), body.as_bytes());
            return Reply::json_text(status, body).into_response();
        }
        Some(Action::Reset | Action::Close | Action::HugeBody(_) | Action::EndlessBody) => {
            let (kind, outcome, status) = match action {
                Some(Action::Reset) => (Abort::Reset, Outcome::Reset, None),
                Some(Action::HugeBody(n)) => (Abort::Huge(n), Outcome::Injected, Some(200)),
                Some(Action::EndlessBody) => (Abort::Endless, Outcome::Injected, Some(200)),
                _ => (Abort::Close, Outcome::Closed, None),
            };
            record(outcome, status, b"");
            let _ = abort.send(kind);
            // the connection task drops this future with the connection
            std::future::pending::<()>().await;
            unreachable!("the connection ended")
        }
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        Some(Action::Hold(gate)) => gate.pass().await,
        None => {}
    }
    if let Some(reply) = shared.semantics.answer(&seen) {
        record(Outcome::Injected, Some(reply.status), reply.body.as_bytes());
        return reply.into_response();
    }
    let out = Request::from_parts(parts, Full::new(body));
    let upstream = *lock(&shared.upstream);
    match forward(out, upstream).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let (parts, answer) = response.into_parts();
            // the semantics and the log read a compressed answer decoded; a rewritten answer
            // goes out plain, an untouched one as the server sent it
            let plain = gunzipped(&parts.headers, &answer).unwrap_or_else(|| answer.clone());
            if let Some(reply) = shared.semantics.rewrite(&seen, status, &plain) {
                record(
                    Outcome::Forwarded,
                    Some(reply.status),
                    reply.body.as_bytes(),
                );
                return reply.into_response();
            }
            record(Outcome::Forwarded, Some(status), &plain);
            Response::from_parts(parts, Full::new(answer))
        }
        Err(message) => {
            let body = format!("fault-proxy: {message}\n");
            record(Outcome::UpstreamFailed, Some(502), body.as_bytes());
            text(StatusCode::BAD_GATEWAY, &body)
        }
    }
}

/// Sends the buffered request over a new connection to `upstream`; returns the answer, buffered.
async fn forward(req: Request<Body>, upstream: SocketAddr) -> Result<Response<Bytes>, String> {
    let mut out = req;
    out.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    // answers this proxy can read: gzip (decoded for the log and the semantics) or none
    let gzip = out
        .headers()
        .get_all(hyper::header::ACCEPT_ENCODING)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("gzip")));
    out.headers_mut().remove(hyper::header::ACCEPT_ENCODING);
    if gzip {
        out.headers_mut().insert(
            hyper::header::ACCEPT_ENCODING,
            hyper::header::HeaderValue::from_static("gzip"),
        );
    }
    let stream = TcpStream::connect(upstream)
        .await
        .map_err(|e| format!("connecting to {upstream}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let answer = sender
        .send_request(out)
        .await
        .map_err(|e| format!("the server did not answer: {e}"))?;
    let (mut parts, body) = answer.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    parts.headers.remove(hyper::header::CONNECTION);
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    Ok(Response::from_parts(parts, body))
}

/// A `content-encoding: gzip` body decoded (at most 256 MiB), for the log, the rules and the
/// semantics.
fn gunzipped(headers: &hyper::HeaderMap, body: &Bytes) -> Option<Bytes> {
    use std::io::Read;
    if headers.get(hyper::header::CONTENT_ENCODING)?.as_bytes() != b"gzip" {
        return None;
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&body[..])
        .take(256 << 20)
        .read_to_end(&mut out)
        .ok()?;
    Some(Bytes::from(out))
}
