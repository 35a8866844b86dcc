//! What an administrator does to shares, whoever asks: the command line on the database
//! (`cli`), the HTTP API of a running server (`api`), and the retention sweep (`retention`).
//! A takedown deletes the share without its secret and closes its live viewers.

pub mod api;
pub mod cli;
pub mod retention;

use serde_json::{Value, json};

use crate::hub::Hub;
use crate::store::{ShareInfo, Store, StoreResult};

/// A share's row as JSON (never its secret or items).
pub fn info_json(info: &ShareInfo) -> Value {
    json!({
        "id": info.id,
        "sessionID": info.session_id,
        "seq": info.seq,
        "items": info.items,
        "bytes": info.bytes,
        "created": info.created_at,
        "updated": info.updated_at,
    })
}

/// Deletes share `id` and closes its viewers in this process (other processes on PostgreSQL
/// close theirs on the store's notification).
pub async fn take_down(store: &dyn Store, hub: &Hub, id: &str) -> StoreResult<()> {
    store.remove(id.to_owned()).await?;
    hub.close(id);
    tracing::info!(share = id, "share taken down by the administrator");
    Ok(())
}

/// A whole share as JSON: its row and every item (`type` and `data`, as ShareNext's `/data` has them).
pub async fn export(store: &dyn Store, id: &str) -> StoreResult<Value> {
    let info = store.info(id.to_owned()).await?;
    let snapshot = store.read(id.to_owned()).await?;
    let items: Vec<Value> = snapshot
        .items
        .iter()
        .map(|i| {
            let data = serde_json::from_str::<Value>(&i.data).unwrap_or(Value::Null);
            json!({ "key": i.key, "type": i.kind, "seq": i.seq, "data": data })
        })
        .collect();
    Ok(json!({ "share": info_json(&info), "items": items }))
}
