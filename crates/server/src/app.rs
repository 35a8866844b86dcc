//! The whole route table: each protocol's own router, the viewer's page, stream and assets, and
//! the limits every route shares. Built without a socket, so tests can call it in-process.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{api_next, api_v1, viewer};

/// The server's router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.shares.limits.max_body_bytes;
    Router::new()
        .route("/", get(|| async { "opencode-share-server\n" }))
        .merge(api_v1::router())
        .merge(api_next::router())
        .merge(viewer_routes())
        .fallback(|| async { ApiError::NotFound })
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// The viewer's page, its live stream and its files (handlers in `viewer`).
fn viewer_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/share/{id}", get(viewer::page))
        .route("/s/{id}", get(viewer::page))
        .route("/share/{id}/events", get(viewer::events))
        .route("/assets/viewer.js", get(viewer::script))
        .route("/assets/viewer.css", get(viewer::style))
}
