//! How the proxy may play another service over the one behind it: answer a request itself,
//! rewrite the server's answer, and name each request's flow for the overlap count.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

/// One request as it arrived, body buffered.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// The body as JSON (None if it is not).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// An answer the proxy gives instead of the server's.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
}

impl Reply {
    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            content_type: "text/plain;charset=UTF-8",
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            content_type: "application/json",
        }
    }

    /// A JSON answer from text already JSON.
    pub fn json_text(status: u16, body: String) -> Reply {
        Reply {
            status,
            body,
            content_type: "application/json",
        }
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from(self.body)));
        *r.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(self.content_type),
        );
        r
    }
}

/// What the proxy plays over the server; every method's default leaves the request alone.
/// Called after the fault rules: an injected fault wins over the semantics.
pub trait Semantics: Send + Sync + 'static {
    /// The flow `req` belongs to (at most one request of a flow should be in flight).
    fn flow(&self, _req: &Request) -> Option<String> {
        None
    }
    /// An answer instead of forwarding `req`.
    fn answer(&self, _req: &Request) -> Option<Reply> {
        None
    }
    /// An answer instead of the server's `status` and `body` for `req`.
    fn rewrite(&self, _req: &Request, _status: u16, _body: &[u8]) -> Option<Reply> {
        None
    }
}

/// Forwards everything as it is, with no flows.
pub struct Transparent;

impl Semantics for Transparent {}
