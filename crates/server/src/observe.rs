//! What an operator sees of a running server: one access-log line per request (method, path,
//! status, latency, and for a refusal its cause), the request metrics, and the probes `/healthz`
//! (the process answers), `/readyz` (the database answers) and `/metrics` (Prometheus).
//! Never logged: query strings (only a legacy `id` is kept), bodies, headers, secrets, tokens.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;
use crate::store::StoreError;

/// Why a request was refused, as its answer says it (set by `ApiError`'s response), for the log.
#[derive(Clone, Debug)]
pub struct Cause(pub String);

impl Cause {
    /// `message` with every double-quoted part elided: parser errors quote the client's input,
    /// which may hold a secret.
    pub fn of(message: &str) -> Cause {
        let mut out = String::with_capacity(message.len());
        for (i, part) in message.split('"').enumerate() {
            out.push_str(if i % 2 == 0 { part } else { "\"…\"" });
        }
        Cause(out)
    }
}

/// The probes and the metrics.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// 200 when the database answers a trivial read, else 503 with what failed.
async fn readyz(state: State<Arc<AppState>>) -> Response {
    match state.store.head("readyz-probe".into()).await {
        Ok(_) | Err(StoreError::NotFound) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(error = ?e, "not ready: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer\n",
            )
                .into_response()
        }
    }
}

async fn metrics(state: State<Arc<AppState>>) -> Response {
    let text = state.metrics.render(state.streams.total());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Logs and counts every request once its response head is ready.
pub async fn access_log(state: State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = bounded(request.method().as_str());
    let path = bounded(request.uri().path());
    let id = request.uri().query().and_then(legacy_id).map(bounded);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.request(method.as_str(), &route, status, took);
    let latency_ms = took.as_secs_f64() * 1000.0;
    let id = id.as_deref();
    let cause = response.extensions().get::<Cause>().map(|c| c.0.as_str());
    match status {
        500.. => {
            tracing::error!(target: "access", %method, %path, id, status, latency_ms, cause = cause.unwrap_or("-"), "request failed")
        }
        400.. => {
            tracing::warn!(target: "access", %method, %path, id, status, latency_ms, cause = cause.unwrap_or("-"), "request refused")
        }
        _ => tracing::info!(target: "access", %method, %path, id, status, latency_ms, "request"),
    }
    response
}

/// The `id` of a legacy `?id=` query (a share id, no secret); every other parameter is dropped.
fn legacy_id(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("id="))
}

/// At most 200 bytes of client-supplied text for a log line.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_input_is_elided_from_causes() {
        let cause =
            Cause::of(r#"body must be JSON: invalid type: string "s3cret", expected a map"#);
        assert_eq!(
            cause.0,
            r#"body must be JSON: invalid type: string "…", expected a map"#
        );
        assert_eq!(legacy_id("x=1&id=abc&secret=s"), Some("abc"));
        assert_eq!(legacy_id("secret=s"), None);
        assert_eq!(bounded(&"é".repeat(150)).len(), 200);
    }
}
