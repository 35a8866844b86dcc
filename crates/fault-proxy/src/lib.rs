//! A fault-injecting HTTP/1.1 proxy for tests: it listens on loopback in front of a real server,
//! forwards each request (buffered, on a fresh upstream connection) and, where a rule says so,
//! delays it, answers it with a status instead, resets or closes its connection, or holds it until
//! the test releases it. Every request is logged (method, path, what happened, status, timing).
//! Responses are buffered whole, so streams (SSE, WebSocket) do not belong behind it.
//!
//! ```no_run
//! let proxy = fault_proxy::FaultProxy::start("127.0.0.1:8080".parse().unwrap()).unwrap();
//! proxy.inject(fault_proxy::Rule::path("/share_sync").times(2).status(503));
//! // point the client at proxy.url() ...
//! ```

mod rule;

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
use tokio::sync::{Notify, oneshot};

pub use rule::{Action, Gate, Rule};

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
    pub outcome: Outcome,
    /// The status the client got (None after a reset or close).
    pub status: Option<u16>,
    /// When the request arrived, relative to the proxy's start.
    pub at: Duration,
    /// From arrival to the answer (or the reset/close).
    pub took: Duration,
}

/// Rules and log, shared by the test thread and the proxy's runtime. Lock order: `rules` and
/// `log` are leaf locks, never held across an await or each other.
struct Shared {
    upstream: SocketAddr,
    started: Instant,
    latency: Mutex<Duration>,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Passed>>,
    logged: Notify,
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
    /// Listens on 127.0.0.1 (a free port) in front of `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = StdListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            started: Instant::now(),
            latency: Mutex::new(Duration::ZERO),
            rules: Mutex::default(),
            log: Mutex::default(),
            logged: Notify::new(),
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

    /// Adds `latency` before every request is handled (zero: none).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
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

/// How a handler asks its connection to end without an answer.
#[derive(Clone, Copy)]
enum Abort {
    Reset,
    Close,
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
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (shared, abort) = (shared.clone(), abort_tx.clone());
        async move { Ok::<_, Infallible>(handle(req, shared, abort).await) }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        abort = abort_rx.recv() => {
            if let Some(Abort::Reset) = abort {
                let _ = socket2::SockRef::from(&control).set_linger(Some(Duration::ZERO));
            }
            // dropping the connection future and `control` closes the socket (RST with linger 0)
        }
    }
}

type Body = Full<Bytes>;

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    abort: tokio::sync::mpsc::UnboundedSender<Abort>,
) -> Response<Body> {
    let arrived = Instant::now();
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.to_string());
    let action = {
        let mut rules = lock(&shared.rules);
        rules.iter_mut().find_map(|r| r.take(&method, &path))
    };
    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let record = |outcome: Outcome, status: Option<u16>| {
        lock(&shared.log).push(Passed {
            method: method.clone(),
            path: path.clone(),
            outcome,
            status,
            at: arrived - shared.started,
            took: arrived.elapsed(),
        });
        shared.logged.notify_waiters();
    };
    match action {
        Some(Action::Status {
            status,
            retry_after,
        }) => {
            let mut r = text(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "injected by fault-proxy\n",
            );
            if let Some(s) = retry_after {
                r.headers_mut().insert(hyper::header::RETRY_AFTER, s.into());
            }
            record(Outcome::Injected, Some(status));
            return r;
        }
        Some(Action::Reset) | Some(Action::Close) => {
            let (kind, outcome) = if matches!(action, Some(Action::Reset)) {
                (Abort::Reset, Outcome::Reset)
            } else {
                (Abort::Close, Outcome::Closed)
            };
            record(outcome, None);
            let _ = abort.send(kind);
            // the connection task drops this future with the connection
            std::future::pending::<()>().await;
            unreachable!("the connection ended")
        }
        Some(Action::Delay(d)) => tokio::time::sleep(d).await,
        Some(Action::Hold(gate)) => gate.pass().await,
        None => {}
    }
    match forward(req, shared.upstream).await {
        Ok(response) => {
            record(Outcome::Forwarded, Some(response.status().as_u16()));
            response
        }
        Err(message) => {
            record(Outcome::UpstreamFailed, Some(502));
            text(
                StatusCode::BAD_GATEWAY,
                &format!("fault-proxy: {message}\n"),
            )
        }
    }
}

/// Sends the request, buffered, over a new connection to `upstream`; returns the answer, buffered.
async fn forward(req: Request<Incoming>, upstream: SocketAddr) -> Result<Response<Body>, String> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("reading the request: {e}"))?
        .to_bytes();
    let mut out = Request::from_parts(parts, Full::new(body));
    out.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
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
    Ok(Response::from_parts(parts, Full::new(body)))
}
