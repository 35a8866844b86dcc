//! Reads what the server stored straight from its SQLite file (committed before any answer), item
//! keys included: no endpoint serves a v1 item's key.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::short_id;

/// What the server stored for share `id` in `database`: item key → its data; None if there is no
/// such share; an error if the file cannot be read.
pub fn items(database: &Path, id: &str) -> Result<Option<BTreeMap<String, Value>>, String> {
    use rusqlite::{Connection, OpenFlags};
    let failed = |e: rusqlite::Error| format!("reading {}: {e}", database.display());
    let db =
        Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(failed)?;
    let exists = db
        .query_row("SELECT count(*) FROM shares WHERE id = ?1", [id], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(failed)?;
    if exists == 0 {
        return Ok(None);
    }
    let mut items = db
        .prepare("SELECT key, data FROM items WHERE share_id = ?1")
        .map_err(failed)?;
    let rows = items
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(failed)?;
    // appends the server keeps beside an item's stored text are part of it
    let mut pending: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut grows = db
        .prepare("SELECT key, grows FROM item_appends WHERE share_id = ?1 ORDER BY key, seq")
        .map_err(failed)?;
    for row in grows
        .query_map([id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(failed)?
    {
        let (key, grows) = row.map_err(failed)?;
        pending.entry(key).or_default().push(grows);
    }
    let mut found = BTreeMap::new();
    for row in rows {
        let (key, data) = row.map_err(failed)?;
        let data = match pending.get(&key) {
            Some(rows) => opencode_share_server::store::pending::fold(&key, &data, rows)
                .map_err(|e| format!("{e:?}"))?,
            None => data,
        };
        found.insert(key, serde_json::from_str(&data).unwrap_or(Value::Null));
    }
    Ok(Some(found))
}

/// What `database` holds for `session`'s share, by the legacy storage key each item came from
/// (`session/info/<sid>`, `session/part/<sid>/<mid>/<pid>`...) → its content; None if there is
/// no such share; an error if the file cannot be read.
pub fn legacy_data(
    database: &Path,
    session: &str,
) -> Result<Option<BTreeMap<String, Value>>, String> {
    let Some(items) = items(database, short_id(session))? else {
        return Ok(None);
    };
    let legacy = |key: &str| match key.split_once('/') {
        None if key == "session" => format!("session/info/{session}"),
        None if key == "session_diff" => format!("session/diff/{session}"),
        None => format!("session/{key}/{session}"),
        Some((kind, rest)) => format!("session/{kind}/{session}/{rest}"),
    };
    let entries = items.into_iter();
    Ok(Some(entries.map(|(k, data)| (legacy(&k), data)).collect()))
}
