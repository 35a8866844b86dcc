//! The accept loop: each connection served by hyper's HTTP/1 (with upgrades, for the legacy
//! WebSocket) with a header-read timeout, over a socket with idle and write timeouts, its peer
//! address handed to the routes. On stop it accepts no more and lets open requests finish.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::Limits;
use crate::conn::Guarded;

/// Serves `router` on `listener` until `stopping` turns true; returns once every connection
/// has ended.
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) {
    // each connection holds a receiver; `closed()` resolves when the last one is dropped
    let (open_tx, open) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((socket, peer)) => {
                let (router, limits, stop, open) = (
                    router.clone(),
                    limits.clone(),
                    stopping.clone(),
                    open.clone(),
                );
                tokio::spawn(async move {
                    connection(socket, peer, router, &limits, stop).await;
                    drop(open);
                });
            }
            // out of file descriptors, or the like: wait a moment rather than spin
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop((listener, open));
    open_tx.closed().await;
}

/// One connection's life.
async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: &Limits,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let io = TokioIo::new(Guarded::new(
        socket,
        limits.idle_timeout,
        limits.write_timeout,
    ));
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopping.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}
