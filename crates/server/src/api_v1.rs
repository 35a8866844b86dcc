//! The legacy protocol, as opencode's `Share` module and its legacy viewer used it: POST
//! `/share_create`, `/share_sync`, `/share_delete` (JSON bodies, whatever the content-type, since
//! the original client sent none), GET `/share_data?id=` and the `/share_poll?id=` WebSocket.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Query;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::append;
use crate::client::ClientIp;
use crate::error::ApiError;
use crate::http::{bearer, json_body, no_store, ok_json};
use crate::hub::PAGE;
use crate::item::{self, Item, LegacyKey};
use crate::live::{self, Feed};
use crate::state::{AppState, State};
use crate::store::{Head, Snapshot};

/// The legacy routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/share_create", post(create))
        .route("/share_sync", post(sync))
        .route("/share_delete", post(delete))
        .route("/share_data", get(data))
        .route("/share_poll", get(poll))
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(rename = "sessionID")]
    session_id: String,
}

pub async fn create(
    state: State,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CreateBody = json_body(&body, "{sessionID}")?;
    let (id, secret) = state
        .shares
        .create(bearer(&headers), &req.session_id, client)
        .await?;
    Ok(append::advertised(
        state.extensions,
        json!({ "url": format!("{}/s/{id}", state.public_url), "secret": secret }).to_string(),
    ))
}

#[derive(Deserialize)]
struct SyncBody<'a> {
    /// Left out by an append: its key names the session.
    #[serde(rename = "sessionID")]
    session_id: Option<String>,
    secret: String,
    key: String,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    /// The append extension: the grows that take the place of `content`.
    #[serde(borrow)]
    append: Option<&'a RawValue>,
}

pub async fn sync(
    state: State,
    ClientIp(client): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: SyncBody = json_body(&body, "{sessionID, secret, key, content}")?;
    let session_id = match (&req.session_id, &req.append) {
        (Some(sid), _) => sid.clone(),
        (None, Some(_)) => req.key.split('/').nth(2).unwrap_or_default().to_owned(),
        (None, None) => return Err(ApiError::BadRequest("body must hold a sessionID".into())),
    };
    let id = item::share_id(&session_id).map_err(ApiError::BadRequest)?;
    let (data, append) = match (req.content, req.append) {
        (Some(content), None) => (content.get().to_owned(), None),
        (None, Some(grows)) => (
            String::new(),
            Some(append::parse(grows).map_err(ApiError::BadRequest)?),
        ),
        _ => {
            return Err(ApiError::BadRequest(
                "body must hold one of content and append".into(),
            ));
        }
    };
    let items = match item::legacy_key(&req.key, &session_id).map_err(ApiError::BadRequest)? {
        LegacyKey::Item(key, kind) => vec![Item {
            key,
            kind,
            data,
            append,
        }],
        LegacyKey::Ignored => vec![],
    };
    // an ignored key still needs the right secret: a wrong one is told, as for any other key
    state.shares.write(&id, req.secret, items, client).await?;
    Ok(append::advertised(state.extensions, "{}".into()))
}

#[derive(Deserialize)]
struct DeleteBody {
    #[serde(rename = "sessionID")]
    session_id: String,
    secret: String,
}

pub async fn delete(
    state: State,
    ClientIp(client): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: DeleteBody = json_body(&body, "{sessionID, secret}")?;
    let id = item::share_id(&req.session_id).map_err(ApiError::BadRequest)?;
    state.shares.delete(&id, req.secret, client).await?;
    Ok(ok_json("{}".into()))
}

#[derive(Deserialize)]
pub struct IdQuery {
    id: Option<String>,
}

fn query_id(q: &IdQuery) -> Result<String, ApiError> {
    match &q.id {
        Some(id) if item::valid_id(id) => Ok(id.clone()),
        Some(_) => Err(ApiError::BadRequest("id must be [A-Za-z0-9_-]".into())),
        None => Err(ApiError::BadRequest("Share ID is required".into())),
    }
}

/// `{info, messages: {<mid>: {...message, parts: [...]}}}`, as the legacy service's `getData`.
/// Built as text from the stored items (valid JSON, checked on write) without parsing parts or
/// info, so an item of any depth is served as it is stored (a parser's recursion limit once made
/// deep items vanish here while `/data` served them).
pub fn legacy_data(snapshot: &Snapshot) -> String {
    let mut info: Option<&str> = None;
    let mut messages: Vec<(&str, &str)> = Vec::new();
    let mut parts: HashMap<&str, Vec<&str>> = HashMap::new();
    for stored in &snapshot.items {
        let mut segments = stored.key.split('/');
        match (segments.next(), segments.next()) {
            (Some("session"), None) => info = Some(stored.data.trim()),
            (Some("message"), Some(mid)) => messages.push((mid, stored.data.trim())),
            (Some("part"), Some(mid)) => parts.entry(mid).or_default().push(stored.data.trim()),
            _ => {}
        }
    }
    let mut out = String::from("{");
    if let Some(info) = info.filter(|i| *i != "null") {
        out.push_str("\"info\":");
        out.push_str(info);
        out.push(',');
    }
    out.push_str("\"messages\":{");
    for (n, (mid, message)) in messages.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str(&Value::String((*mid).to_owned()).to_string());
        out.push(':');
        let list = format!(
            "[{}]",
            parts.get(mid).map_or(String::new(), |p| p.join(","))
        );
        out.push_str(&with_parts(message, &list));
    }
    out.push_str("}}");
    out
}

/// A stored message with its `parts` member set to `list` (JSON text): a message that parses
/// gets the member replaced; one too deep to parse gets it appended (JSON readers take the last
/// of a repeated member); a message that is not an object is kept under `value`.
fn with_parts(message: &str, list: &str) -> String {
    match serde_json::from_str::<Map<String, Value>>(message) {
        Ok(mut m) => {
            m.remove("parts");
            let body = Value::Object(m).to_string();
            let sep = if body == "{}" { "" } else { "," };
            format!("{}{sep}\"parts\":{list}}}", &body[..body.len() - 1])
        }
        Err(_) if message.starts_with('{') && message.ends_with('}') => {
            let inner = message[1..message.len() - 1].trim();
            let sep = if inner.is_empty() { "" } else { "," };
            format!("{{{inner}{sep}\"parts\":{list}}}")
        }
        Err(_) => format!("{{\"value\":{message},\"parts\":{list}}}"),
    }
}

pub async fn data(state: State, Query(q): Query<IdQuery>) -> Result<Response, ApiError> {
    let id = query_id(&q)?;
    let snapshot = state.store.read(id).await?;
    let mut response = ok_json(legacy_data(&snapshot));
    no_store(response.headers_mut());
    Ok(response)
}

fn frame(key: &str, content: &str) -> Message {
    Message::Text(
        format!(
            "{{\"key\":{},\"content\":{content}}}",
            Value::String(key.to_owned())
        )
        .into(),
    )
}

/// The legacy viewer's live channel: every stored key once (info, messages, parts), then each
/// write as it commits; closed when the share is deleted. Client frames are ignored.
pub async fn poll(
    state: State,
    Query(q): Query<IdQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let id = query_id(&q)?;
    let Ok(upgrade) = upgrade else {
        return Ok((
            StatusCode::UPGRADE_REQUIRED,
            "Error: Upgrade header is required",
        )
            .into_response());
    };
    let head = state.store.head(id.clone()).await?;
    let permit = state.streams.open(&id)?;
    let state: Arc<AppState> = state.0.clone();
    let limit = state.shares.limits.max_ws_message_bytes;
    let upgrade = upgrade.max_message_size(limit).max_frame_size(limit);
    Ok(upgrade.on_upgrade(move |socket| async move {
        let _held = permit;
        stream_frames(state, id, head, socket).await
    }))
}

/// Keeps a quiet WebSocket from the idle timeout (and finds a vanished client).
const PING_EVERY: Duration = Duration::from_secs(30);

/// The legacy order: the session's info, then its messages, then their parts, each a page of
/// the store at a time (so a client that stops reading pins one page).
const FIRST_FRAMES: [(&str, &str); 3] = [
    ("sessio", "session"),
    ("message/", "message/"),
    ("part/", "part/"),
];

async fn stream_frames(state: Arc<AppState>, id: String, head: Head, mut socket: WebSocket) {
    let sid = head.session_id.clone();
    for (after, prefix) in FIRST_FRAMES {
        if !send_stored(&state, &id, &sid, after, prefix, &mut socket).await {
            return;
        }
    }
    // everything past the head the frames started from (a key sent twice is harmless)
    let mut feed = live::follow(state, id, head.seq);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let sent = tokio::select! {
            update = feed.recv() => match update {
                Some(Feed::Item(live)) => match item::legacy_key_of(&live.item.key, &sid) {
                    Some(key) => socket.send(frame(&key, &live.item.data)).await,
                    None => Ok(()),
                },
                Some(Feed::Deleted) | None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => Ok(()), // client frames are ignored, as the legacy service did
            },
            _ = ping.tick() => socket.send(Message::Ping(Default::default())).await,
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Sends the stored items whose keys start with `prefix` (all after `after`); false when the
/// socket or the share is gone.
async fn send_stored(
    state: &AppState,
    id: &str,
    sid: &str,
    after: &str,
    prefix: &str,
    socket: &mut WebSocket,
) -> bool {
    let mut cursor = after.to_owned();
    loop {
        let Ok(page) = state.store.page(id.to_owned(), cursor, PAGE).await else {
            return false;
        };
        let full = page.len() == PAGE;
        for stored in page.iter().take_while(|i| i.key.starts_with(prefix)) {
            if let Some(key) = item::legacy_key_of(&stored.key, sid) {
                if socket.send(frame(&key, &stored.data)).await.is_err() {
                    return false;
                }
            }
        }
        match page.last() {
            Some(last) if full && last.key.starts_with(prefix) => cursor = last.key.clone(),
            _ => return true,
        }
    }
}
