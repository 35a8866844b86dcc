//! ShareNext's protocol (opencode since December 2025): POST `/api/share`, POST
//! `/api/share/<id>/sync` with a batch of items, GET `/api/share/<id>/data` (what viewers and
//! `opencode import` read), DELETE `/api/share/<id>`; the same under `/api/shares` for org accounts.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{delete as delete_route, get, post};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::{bearer, json_body, no_store, ok_json};
use crate::item::{self, Item};
use crate::state::{AppState, State};
use crate::store::Snapshot;

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
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: CreateBody = json_body(&body, "{sessionID}")?;
    let (id, secret) = state
        .shares
        .create(bearer(&headers), &req.session_id)
        .await?;
    let url = format!("{}/share/{id}", state.public_url);
    Ok(ok_json(
        json!({ "id": id, "secret": secret, "url": url }).to_string(),
    ))
}

#[derive(Deserialize)]
struct SyncItem<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct SyncBody<'a> {
    secret: String,
    #[serde(borrow)]
    data: Vec<SyncItem<'a>>,
}

pub async fn sync(
    state: State,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    path_id(&id)?;
    let req: SyncBody = json_body(&body, "{secret, data: [{type, data}...]}")?;
    let items = req
        .data
        .iter()
        .map(|i| {
            let (key, kind) = item::next_key(&i.kind, i.data).map_err(ApiError::BadRequest)?;
            Ok(Item {
                key,
                kind,
                data: i.data.get().to_owned(),
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    state.shares.write(&id, req.secret, items).await?;
    Ok(ok_json("{}".into()))
}

/// `[{"type","data"}...]` sorted by item key, built from the stored JSON without re-encoding it.
pub fn items_json(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(
        snapshot
            .items
            .iter()
            .map(|i| i.data.len() + 32)
            .sum::<usize>()
            + 2,
    );
    out.push('[');
    for (n, stored) in snapshot.items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"type\":");
        out.push_str(&Value::String(stored.kind.clone()).to_string());
        out.push_str(",\"data\":");
        out.push_str(&stored.data);
        out.push('}');
    }
    out.push(']');
    out
}

pub async fn data(state: State, Path(id): Path<String>) -> Result<Response, ApiError> {
    path_id(&id)?;
    let snapshot = state.store.read(id).await?;
    let mut response = ok_json(items_json(&snapshot));
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
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    path_id(&id)?;
    let req: DeleteBody = json_body(&body, "{secret}")?;
    state.shares.delete(&id, req.secret).await?;
    Ok(ok_json("{}".into()))
}
