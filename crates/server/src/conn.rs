//! Timeouts of one connection, so no client holds a connection (and what it pins) forever:
//! the socket closes when no byte moved either way for the idle timeout, or when a write has
//! waited for the client to read for the write timeout (a slow reader is cut, never buffered
//! for); a request body must arrive whole before its deadline. Header timeouts are hyper's.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A socket with an idle timeout and a write timeout.
pub struct Guarded<IO> {
    io: IO,
    idle: Duration,
    write_timeout: Duration,
    /// When a byte last moved, either way.
    last_io: Instant,
    /// Since when a write has waited for the client.
    write_waiting: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<IO> Guarded<IO> {
    pub fn new(io: IO, idle: Duration, write_timeout: Duration) -> Guarded<IO> {
        let now = Instant::now();
        Guarded {
            io,
            idle,
            write_timeout,
            last_io: now,
            write_waiting: None,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// Called when the socket is not ready: an error once a deadline passed, else `Pending`
    /// with the timer armed for the nearest deadline.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let idle_at = self.last_io + self.idle;
        let deadline = match self.write_waiting {
            Some(since) => idle_at.min(since + self.write_timeout),
            None => idle_at,
        };
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client neither sent nor read anything in time",
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    fn wrote(
        &mut self,
        result: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                self.last_io = Instant::now();
                self.write_waiting = None;
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                self.write_waiting.get_or_insert_with(Instant::now);
                self.expired(cx).map(Err)
            }
            other => other,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.last_io = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => self.expired(cx).map(Err),
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx).map_ok(|()| 0);
        self.wrote(result, cx).map_ok(|_| ())
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The error a request body ends with when it did not arrive whole in time.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body that fails with `BodyTimedOut` once its deadline passes.
pub struct Deadline {
    body: Body,
    timer: Pin<Box<Sleep>>,
}

impl Deadline {
    pub fn wrap(body: Body, within: Duration) -> Body {
        Body::new(Deadline {
            body,
            timer: Box::pin(tokio::time::sleep(within)),
        })
    }
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                Poll::Pending => Poll::Pending,
            },
            other => other.map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
