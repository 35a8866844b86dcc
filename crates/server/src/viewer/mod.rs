//! The viewer: `/share/<id>` and `/s/<id>` (server-rendered page), `/share/<id>/events` (its live
//! stream, SSE), and the page's script and style, served as files so the Content-Security-Policy
//! allows no inline script at all.

mod code;
mod json;
mod markdown;
mod model;
mod parts;
mod render;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::hub::LiveItem;
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

/// Renders run on the blocking pool, at most this many pages and this many live fragments at
/// once: a page of a long share is CPU work that must never hold an async worker (every other
/// request waits on those), and live fragments never wait behind pages.
static PAGES: Semaphore = Semaphore::const_new(3);
static FRAGMENTS: Semaphore = Semaphore::const_new(3);

/// Runs `render` off the async workers (on the blocking pool, with a permit of `pool`).
async fn off_workers<T: Send + 'static>(
    pool: &'static Semaphore,
    render: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = pool
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("the render pool is closed".into()))?;
    tokio::task::spawn_blocking(render)
        .await
        .map_err(|e| ApiError::Internal(format!("a page render failed: {e}")))
}

#[derive(Deserialize)]
pub struct PageQuery {
    /// Every message (for readers without JavaScript); by default the first ones.
    all: Option<String>,
    /// The next messages from this message id on, as JSON for the page's script.
    from: Option<String>,
}

pub async fn page(state: State, Path(id): Path<String>, Query(q): Query<PageQuery>) -> Response {
    let found = if item::valid_id(&id) {
        state.store.read(id.clone()).await
    } else {
        Err(StoreError::NotFound)
    };
    let public_url = state.public_url.clone();
    let indexable = state.allow_indexing;
    let base = state.base_path.clone();
    let mut response = match found {
        Ok(snapshot) => {
            let rendered = off_workers(&PAGES, move || {
                let share = model::Share::from_snapshot(&snapshot);
                match q.from {
                    Some(from) => (true, render::more(&share, &from)),
                    None => (
                        false,
                        render::page(&id, &share, &public_url, &base, q.all.is_some(), indexable),
                    ),
                }
            })
            .await;
            match rendered {
                Ok((true, json)) => {
                    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
                }
                Ok((false, page)) => Html(page).into_response(),
                Err(e) => e.into_response(),
            }
        }
        Err(StoreError::NotFound) => (
            StatusCode::NOT_FOUND,
            Html(render::not_found(&id, &state.base_path)),
        )
            .into_response(),
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
    // the version of each part this stream sent last: an append of exactly that one goes as
    // its new text (an `append` event), anything else whole
    let sent: HashMap<String, i64> = HashMap::new();
    let events = stream::unfold(
        (feed, sent, false),
        |(mut feed, mut sent, done)| async move {
            if done {
                return None;
            }
            match feed.recv().await {
                Some(Feed::Item(live)) => {
                    let event = live_event(&live, &mut sent).await;
                    Some((Ok::<_, Infallible>(event), (feed, sent, false)))
                }
                Some(Feed::Deleted) | None => Some((
                    Ok(Event::default().event("deleted").data("{}")),
                    (feed, sent, true),
                )),
            }
        },
    );
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    secure(response.headers_mut());
    Ok(response)
}

/// A live item as this stream's event: `append` `{kind, mid, pid, seq, text}` when it grew
/// the text of the version of its part this stream sent last, else `item` with its fragment.
async fn live_event(live: &Arc<LiveItem>, sent: &mut HashMap<String, i64>) -> Event {
    let item = &live.item;
    let before = (item.kind == "part")
        .then(|| sent.insert(item.key.clone(), item.seq))
        .flatten();
    let event = Event::default().id(item.seq.to_string());
    if let Some(appended) = live.appended.as_ref().filter(|a| before == Some(a.after)) {
        let mut ids = item.key.splitn(3, '/').skip(1);
        let data = serde_json::json!({
            "kind": "append", "mid": ids.next(), "pid": ids.next(),
            "seq": item.seq, "text": appended.text,
        });
        return event.event("append").data(data.to_string());
    }
    let data = fragment(live.clone()).await;
    event.event("item").data(data.as_str())
}

/// An item's live fragment, rendered once for all viewers (the others wait for it), off the
/// async workers.
async fn fragment(live: Arc<LiveItem>) -> String {
    let item = live.clone();
    live.fragment
        .get_or_init(|| async move {
            off_workers(&FRAGMENTS, move || render::fragment(&item.item))
                .await
                .unwrap_or_else(|_| String::from("{}"))
        })
        .await
        .clone()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A render held at a gate leaves the only async worker free for other requests.
    #[tokio::test(flavor = "current_thread")]
    async fn a_render_never_holds_the_async_worker() {
        let (open_gate, gate) = std::sync::mpsc::channel::<()>();
        let render = tokio::spawn(off_workers(&PAGES, move || {
            gate.recv_timeout(Duration::from_secs(10)).is_ok()
        }));
        // another request's work on the same (single) worker runs while the render waits
        let other = tokio::spawn(async { "served" });
        assert_eq!(other.await.unwrap(), "served");
        open_gate
            .send(())
            .expect("the render is still waiting at the gate");
        assert!(
            render.await.unwrap().unwrap(),
            "the render went through the gate"
        );
    }
}
