//! The whole route table: each protocol's own router, the viewer's page, stream and assets, the
//! probes and metrics, and what every route shares (body size and deadline, live streams
//! counted, the access log). Built without a
//! socket, so tests can call it in-process.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;

use crate::conn::Deadline;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{admin, api_next, api_v1, encoding, observe, viewer, web};

/// The server's router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.shares.limits.max_body_bytes;
    let admin = match &state.admin_token {
        Some(token) => admin::api::routes(token.clone(), &state),
        None => Router::new(),
    };
    let app = Router::new()
        .route("/", get(|| async { "opencode-share-server\n" }))
        .merge(api_routes(&state))
        .merge(viewer_routes(&state))
        .merge(observe::routes())
        .merge(admin)
        .merge(web::robots(state.allow_indexing))
        .fallback(|| async { ApiError::NotFound })
        .layer(web::compression())
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), body_deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::access_log,
        ));
    let app = if state.allow_indexing {
        app
    } else {
        app.layer(middleware::from_fn(web::no_index))
    };
    let base_path = state.base_path.clone();
    let app = app.with_state(state);
    if base_path.is_empty() {
        app
    } else {
        // under the base path for a proxy that forwards it unchanged, and at the root for one
        // that strips it; the pages name everything under it, as the browser sees it
        Router::new()
            .nest(&base_path, app.clone())
            .fallback_service(app)
    }
}

/// Both protocols' routes, their gzip request bodies decoded first (`encoding`).
fn api_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let decode = middleware::from_fn_with_state(state.clone(), encoding::decode_request);
    api_v1::router().merge(api_next::router()).layer(decode)
}

/// The viewer's page, its live stream and its files (handlers in `viewer`).
fn viewer_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let events = get(viewer::events).route_layer(middleware::from_fn_with_state(
        state.clone(),
        counted_stream,
    ));
    Router::new()
        .route("/share/{id}", get(viewer::page))
        .route("/s/{id}", get(viewer::page))
        .route("/share/{id}/events", events)
        .route("/assets/viewer.js", get(viewer::script))
        .route("/assets/viewer.css", get(viewer::style))
}

/// Every request body must arrive whole within `--body-timeout-secs`.
async fn body_deadline(state: State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let within = state.shares.limits.body_timeout;
    next.run(request.map(|body| Deadline::wrap(body, within)))
        .await
}

/// A live stream takes a place among its share's and the server's open streams (503 when
/// there is none) and holds it until its body is dropped.
async fn counted_stream(state: State<Arc<AppState>>, request: Request, next: Next) -> Response {
    // the route is /share/{id}/events
    let id = request
        .uri()
        .path()
        .split('/')
        .nth(2)
        .unwrap_or("")
        .to_owned();
    let permit = match state.streams.open(&id) {
        Ok(permit) => permit,
        Err(refused) => return refused.into_response(),
    };
    next.run(request).await.map(|body| {
        Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _held = &permit;
            chunk
        }))
    })
}
