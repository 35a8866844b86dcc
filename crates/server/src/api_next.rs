//! ShareNext's protocol (opencode since December 2025): POST `/api/share`, POST
//! `/api/share/<id>/sync` with a batch of items, GET `/api/share/<id>/data` (what viewers and
//! `opencode import` read), DELETE `/api/share/<id>`; the same under `/api/shares` for org accounts.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete as delete_route, get, post};
use futures_util::stream;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::append;
use crate::client::ClientIp;
use crate::error::ApiError;
use crate::http::{bearer, json_body, no_store, ok_json};
use crate::item::{self, Item, StoredItem};
use crate::state::{AppState, State};

/// ShareNext's routes, under `/api/share` and `/api/shares` alike.
pub fn router() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for base in ["/api/share", "/api/shares"] {
        router = router
            .route(base, post(create))
            .route(&format!("{base}/{{id}}/sync"), post(sync))
            .route(&format!("{base}/{{id}}/data"), get(data))
            .route(&format!("{base}/{{id}}"), delete_route(delete));
    }
    router
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(rename = "sessionID")]
    session_id: String,
}

fn path_id(id: &str) -> Result<(), ApiError> {
    if item::valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
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
    let url = format!("{}/share/{id}", state.public_url);
    Ok(append::advertised(
        state.extensions,
        json!({ "id": id, "secret": secret, "url": url }).to_string(),
    ))
}

#[derive(Deserialize)]
struct SyncItem<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    /// The append extension: the members naming the item, and its grows (instead of `data`).
    #[serde(borrow)]
    key: Option<&'a RawValue>,
    #[serde(borrow)]
    append: Option<&'a RawValue>,
}

impl SyncItem<'_> {
    /// The item to write: whole, or its grows.
    fn item(&self) -> Result<Item, String> {
        match (self.data, self.key, self.append) {
            (Some(data), None, None) => {
                let (key, kind) = item::next_key(&self.kind, data)?;
                let data = data.get().to_owned();
                Ok(Item {
                    key,
                    kind,
                    data,
                    append: None,
                })
            }
            (None, Some(names), Some(grows)) => {
                let (key, kind) = item::next_key(&self.kind, names)?;
                let append = Some(append::parse(grows)?);
                Ok(Item {
                    key,
                    kind,
                    data: String::new(),
                    append,
                })
            }
            _ => Err("an item holds either data, or key and append".into()),
        }
    }
}

#[derive(Deserialize)]
struct SyncBody<'a> {
    secret: String,
    #[serde(borrow)]
    data: Vec<SyncItem<'a>>,
}

pub async fn sync(
    state: State,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    path_id(&id)?;
    let req: SyncBody = json_body(&body, "{secret, data: [{type, data}...]}")?;
    let items = req
        .data
        .iter()
        .map(|i| i.item().map_err(ApiError::BadRequest))
        .collect::<Result<Vec<_>, ApiError>>()?;
    state.shares.write(&id, req.secret, items, client).await?;
    Ok(append::advertised(state.extensions, "{}".into()))
}

/// Items one page of `/data` holds: the answer is streamed a page at a time, each read only
/// when the client has taken the one before, so a client that stops reading pins one page.
const DATA_PAGE: usize = 64;

/// `{"type","data"}` entries of `items`, each preceded by a comma unless it is the very first,
/// built from the stored JSON without re-encoding it.
fn entries(items: &[StoredItem], first: bool) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.data.len() + 32).sum());
    for (n, stored) in items.iter().enumerate() {
        if n > 0 || !first {
            out.push(',');
        }
        out.push_str("{\"type\":");
        out.push_str(&Value::String(stored.kind.clone()).to_string());
        out.push_str(",\"data\":");
        out.push_str(&stored.data);
        out.push('}');
    }
    out
}

/// Where the streamed `/data` answer stands.
enum Pages {
    /// The next page to send, its key cursor, and whether it is the first.
    Page(Vec<StoredItem>, bool),
    Done,
}

/// `[{"type","data"}...]` sorted by item key, streamed a page at a time (the first page is read
/// before the answer starts, so a missing share is a 404).
pub async fn data(state: State, Path(id): Path<String>) -> Result<Response, ApiError> {
    path_id(&id)?;
    let first = state
        .store
        .page(id.clone(), String::new(), DATA_PAGE)
        .await?;
    let store = state.store.clone();
    let chunks = stream::unfold(Pages::Page(first, true), move |at| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            let Pages::Page(items, first) = at else {
                return None;
            };
            let mut chunk = if first { "[".to_owned() } else { String::new() };
            chunk.push_str(&entries(&items, first));
            let next = match items.last() {
                Some(last) if items.len() == DATA_PAGE => {
                    match store.page(id, last.key.clone(), DATA_PAGE).await {
                        Ok(page) => Pages::Page(page, false),
                        // cut the answer short: the client sees an unfinished JSON, not a wrong one
                        Err(e) => {
                            return Some((
                                Err(std::io::Error::other(format!("{e:?}"))),
                                Pages::Done,
                            ));
                        }
                    }
                }
                _ => {
                    chunk.push(']');
                    Pages::Done
                }
            };
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        // fused: the compression layer may poll a body again after its end
        Body::from_stream(futures_util::StreamExt::fuse(chunks)),
    )
        .into_response();
    no_store(response.headers_mut());
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct DeleteBody {
    secret: String,
}

pub async fn delete(
    state: State,
    ClientIp(client): ClientIp,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    path_id(&id)?;
    let req: DeleteBody = json_body(&body, "{secret}")?;
    state.shares.delete(&id, req.secret, client).await?;
    Ok(ok_json("{}".into()))
}
