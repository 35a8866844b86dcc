//! The viewer: `/share/<id>` and `/s/<id>` (server-rendered page), `/share/<id>/events` (its live
//! stream, SSE), and the page's script and style, served as files so the Content-Security-Policy
//! allows no inline script at all.

mod markdown;
mod render;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;

use crate::error::ApiError;
use crate::item;
use crate::live::{self, Feed};
use crate::state::State;
use crate::store::StoreError;

/// Scripts and styles only from this origin, images only from it or inline data, no frames,
/// no plugins, no forms, no base changes.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    live::no_store(headers);
}

pub async fn page(state: State, Path(id): Path<String>) -> Response {
    let found = if item::valid_id(&id) {
        state.store.read(id.clone()).await
    } else {
        Err(StoreError::NotFound)
    };
    let mut response = match found {
        Ok(snapshot) => Html(render::page(&id, &snapshot)).into_response(),
        Err(StoreError::NotFound) => {
            (StatusCode::NOT_FOUND, Html(render::not_found(&id))).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    };
    secure(response.headers_mut());
    response
}

#[derive(Deserialize)]
pub struct After {
    after: Option<i64>,
}

/// The live stream: `item` events (`id:` = the write's sequence, data = `render::fragment`)
/// after what the page holds, then `deleted` if the share goes.
pub async fn events(
    state: State,
    Path(id): Path<String>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !item::valid_id(&id) {
        return Err(ApiError::NotFound);
    }
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let after = q.after.unwrap_or(0).max(resumed.unwrap_or(0)).max(0);
    let feed = live::follow(state.0.clone(), id, after);
    let events = stream::unfold((feed, false), |(mut feed, done)| async move {
        if done {
            return None;
        }
        match feed.recv().await {
            Some(Feed::Item(live)) => {
                let data = live.fragment.get_or_init(|| render::fragment(&live.item));
                let event = Event::default()
                    .event("item")
                    .id(live.item.seq.to_string())
                    .data(data.as_str());
                Some((Ok::<_, Infallible>(event), (feed, false)))
            }
            Some(Feed::Deleted) | None => Some((
                Ok(Event::default().event("deleted").data("{}")),
                (feed, true),
            )),
        }
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    secure(response.headers_mut());
    Ok(response)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/viewer.js"),
    )
}

pub async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/viewer.css"),
    )
}
