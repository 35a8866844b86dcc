//! ShareNext's protocol (opencode since December 2025): POST `/api/share`, POST
//! `/api/share/<id>/sync` with a batch of items, GET `/api/share/<id>/data` (what viewers and
//! `opencode import` read), DELETE `/api/share/<id>`; the same under `/api/shares` for org accounts.

use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::api_v1::{self, json_body};
use crate::error::ApiError;
use crate::item::{self, Item};
use crate::live;
use crate::server::State;
use crate::store::Snapshot;

fn ok_json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
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
    let (id, secret) = api_v1::create_share(&state, &headers, &body).await?;
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
    state.write(&id, req.secret, items).await?;
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
    live::no_store(response.headers_mut());
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
    state.delete(&id, req.secret).await?;
    Ok(ok_json("{}".into()))
}
