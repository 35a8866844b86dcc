//! The append extension (docs/append-protocol.md): a write that carries only the suffixes of the
//! string members that grew. Here the grows are read from a request and applied to the stored
//! JSON text by inserting each suffix before its string's closing quote, so the text stays as a
//! whole write of the new content would have stored it (spelling and member order kept).
//! Refusals quote the client's paths (`{:?}`), so the access log elides them as it does any
//! quoted input.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::item::Item;

/// The header every 2xx create and sync answer carries: what this server accepts.
pub const EXTENSIONS_HEADER: &str = "x-share-extensions";
/// Its value: appends, and gzip-encoded request bodies.
pub const EXTENSIONS: &str = "append, gzip";
/// Its value under `--redact`, which takes whole contents only.
pub const EXTENSIONS_WITHOUT_APPEND: &str = "gzip";

/// A 200 JSON answer of a create or a sync, with `extensions` advertised.
pub fn advertised(extensions: &'static str, body: String) -> axum::response::Response {
    let mut response = crate::http::ok_json(body);
    response.headers_mut().insert(
        EXTENSIONS_HEADER,
        axum::http::HeaderValue::from_static(extensions),
    );
    response
}

/// One string that grew: its JSON Pointer, its length (UTF-8 bytes) before, and the suffix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Grow {
    pub path: String,
    pub at: u64,
    pub text: String,
}

/// What an append item carries to the store: its grows, and the largest the item may become.
#[derive(Debug, Clone)]
pub struct Append {
    pub grows: Vec<Grow>,
    pub max_item_bytes: usize,
}

/// Reads an `append` member (one grow at least); the service sets the item limit.
pub fn parse(raw: &RawValue) -> Result<Append, String> {
    let grows: Vec<Grow> = serde_json::from_str(raw.get())
        .map_err(|e| format!("append must be a list of {{path, at, text}}: {e}"))?;
    if grows.is_empty() {
        return Err("append must hold one grow at least".into());
    }
    Ok(Append {
        grows,
        max_item_bytes: usize::MAX,
    })
}

/// An item of a write made whole, and its grows when it extends the key's stored text (the
/// store may then keep the grows beside the stored base instead of rewriting it).
#[derive(Debug)]
pub struct Resolved {
    pub item: Item,
    pub grows: Option<Vec<Grow>>,
}

/// A key's text as a store holds it: its base and the grows waiting beside it, merged (one per
/// string, its suffixes joined in order).
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub base: String,
    pub pending: Vec<Grow>,
}

/// Turns every append item of a write into a whole item, in order: an append applies to the
/// item written earlier in the same write, else to `stored` (the key's stored text, its pending
/// grows and the new ones applied in one pass), and keeps its grows when it extends `stored`.
/// An `Err` is the 409's reason: nothing of the write may be applied.
pub fn resolve(
    items: Vec<Item>,
    stored: &HashMap<String, Stored>,
) -> Result<Vec<Resolved>, String> {
    let mut latest: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(items.len());
    for mut item in items {
        let mut grows = None;
        if let Some(append) = item.append.take() {
            let grown = match (latest.get(&item.key), stored.get(&item.key)) {
                (Some(text), _) => apply(text, &append.grows),
                (None, Some(s)) => {
                    let mut merged = s.pending.clone();
                    merge(&mut merged, &append.grows).and_then(|_| apply(&s.base, &merged))
                }
                (None, None) => return Err(format!("{} holds no content to append to", item.key)),
            };
            item.data = grown.map_err(|e| format!("{}: {e}", item.key))?;
            if item.data.len() > append.max_item_bytes {
                return Err(format!(
                    "{} would be {} bytes, more than the item limit of {}",
                    item.key,
                    item.data.len(),
                    append.max_item_bytes
                ));
            }
            if !latest.contains_key(&item.key) {
                grows = Some(append.grows);
            }
        }
        latest.insert(item.key.clone(), item.data.clone());
        out.push(Resolved { item, grows });
    }
    Ok(out)
}

/// Adds `grows` (one append's) to `merged`: a string already there gets the suffix joined to
/// its own, if it extends exactly its length so far; a new one is added, checked by [`apply`].
pub fn merge(merged: &mut Vec<Grow>, grows: &[Grow]) -> Result<(), String> {
    for (n, grow) in grows.iter().enumerate() {
        if grows[..n].iter().any(|g| g.path == grow.path) {
            return Err(format!("{:?} is appended to twice", grow.path));
        }
        match merged.iter_mut().find(|m| m.path == grow.path) {
            Some(m) if m.at + m.text.len() as u64 == grow.at => m.text.push_str(&grow.text),
            Some(m) => {
                return Err(format!(
                    "{:?} is {} bytes long here, the append extends {}",
                    grow.path,
                    m.at + m.text.len() as u64,
                    grow.at
                ));
            }
            None => merged.push(grow.clone()),
        }
    }
    Ok(())
}

/// The keys of `items` that are appended to before a whole write of theirs in the same write:
/// the stored texts a store must read for [`resolve`].
pub fn bases_needed(items: &[Item]) -> Vec<String> {
    let mut whole = std::collections::HashSet::new();
    let mut needed = Vec::new();
    for item in items {
        if item.append.is_none() {
            whole.insert(item.key.as_str());
        } else if !whole.contains(item.key.as_str()) && !needed.contains(&item.key) {
            needed.push(item.key.clone());
        }
    }
    needed
}

/// `text` with every grow applied; an error says why one does not apply.
pub fn apply(text: &str, grows: &[Grow]) -> Result<String, String> {
    let mut inserts: Vec<(usize, String)> = Vec::with_capacity(grows.len());
    for grow in grows {
        let (open, close) = string_at(text, &grow.path)?;
        let current: String = serde_json::from_str(&text[open..=close])
            .map_err(|e| format!("{:?} is not a string ({e})", grow.path))?;
        if current.len() as u64 != grow.at {
            return Err(format!(
                "{:?} is {} bytes long here, the append extends {}",
                grow.path,
                current.len(),
                grow.at
            ));
        }
        if inserts.iter().any(|(at, _)| *at == close) {
            return Err(format!("{:?} is appended to twice", grow.path));
        }
        let quoted = serde_json::to_string(&grow.text).expect("a string serialises");
        inserts.push((close, quoted[1..quoted.len() - 1].to_owned()));
    }
    inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let mut out = text.to_owned();
    for (at, suffix) in inserts {
        out.insert_str(at, &suffix);
    }
    Ok(out)
}

/// The byte offsets of the opening and closing quotes of the string at JSON Pointer `path` in
/// `text`.
fn string_at(text: &str, path: &str) -> Result<(usize, usize), String> {
    if !path.is_empty() && !path.starts_with('/') {
        return Err(format!("{path:?} is not a JSON Pointer"));
    }
    let mut at: &str = text;
    for raw in path.split('/').skip(1) {
        let name = raw.replace("~1", "/").replace("~0", "~");
        let value: &RawValue = serde_json::from_str(at).map_err(|e| e.to_string())?;
        let inner = value.get();
        let child: Option<&RawValue> = if inner.starts_with('{') {
            let members: HashMap<String, &RawValue> =
                serde_json::from_str(inner).map_err(|e| e.to_string())?;
            members.get(&name).copied()
        } else if inner.starts_with('[') {
            let list: Vec<&RawValue> = serde_json::from_str(inner).map_err(|e| e.to_string())?;
            name.parse::<usize>()
                .ok()
                .and_then(|n| list.get(n).copied())
        } else {
            None
        };
        at = child
            .ok_or_else(|| format!("{path:?} names nothing in the stored content"))?
            .get();
    }
    if !at.starts_with('"') || !at.ends_with('"') || at.len() < 2 {
        return Err(format!("{path:?} is not a string in the stored content"));
    }
    // `at` borrows from `text`: its place is an offset in `text`
    let offset = at.as_ptr() as usize - text.as_ptr() as usize;
    Ok((offset, offset + at.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn grow(path: &str, at: u64, text: &str) -> Grow {
        Grow {
            path: path.into(),
            at,
            text: text.into(),
        }
    }

    #[test]
    fn a_grow_inserts_its_suffix_and_keeps_the_stored_spelling() {
        let stored = r#"{"id":"p", "text": "h\u00e9\"llo",  "state": {"output": ["a", "b\\"]}}"#;
        let grown = apply(
            stored,
            &[
                grow("/text", 7, " w\"orld\n"),
                grow("/state/output/1", 2, "é"),
            ],
        )
        .unwrap();
        assert_eq!(
            grown,
            r#"{"id":"p", "text": "h\u00e9\"llo w\"orld\n",  "state": {"output": ["a", "b\\é"]}}"#
        );
        let v: Value = serde_json::from_str(&grown).unwrap();
        assert_eq!(v["text"], json!("hé\"llo w\"orld\n"));
    }

    #[test]
    fn a_gap_a_missing_path_or_a_non_string_is_refused() {
        let stored = r#"{"text":"abc","n":1,"a/b":{"~x":"q"}}"#;
        assert!(
            apply(stored, &[grow("/text", 2, "d")])
                .unwrap_err()
                .contains("3 bytes")
        );
        assert!(apply(stored, &[grow("/nope", 0, "d")]).is_err());
        assert!(apply(stored, &[grow("/n", 1, "d")]).is_err());
        assert!(apply(stored, &[grow("text", 3, "d")]).is_err());
        assert!(apply(stored, &[grow("/text", 3, "d"), grow("/text", 3, "e")]).is_err());
        assert_eq!(
            apply(stored, &[grow("/a~1b/~0x", 1, "r")]).unwrap(),
            r#"{"text":"abc","n":1,"a/b":{"~x":"qr"}}"#
        );
    }

    #[test]
    fn appends_resolve_against_the_batch_first_then_the_store() {
        let item = |key: &str, data: &str, grows: Option<Vec<Grow>>| Item {
            key: key.into(),
            kind: "part",
            data: data.into(),
            append: grows.map(|grows| Append {
                grows,
                max_item_bytes: 100,
            }),
        };
        let base = |text: &str| Stored {
            base: text.into(),
            pending: vec![],
        };
        let stored = HashMap::from([("k".to_owned(), base(r#"{"text":"a"}"#))]);
        let items = vec![
            item("k", "", Some(vec![grow("/text", 1, "b")])),
            item("j", r#"{"text":"x"}"#, None),
            item("j", "", Some(vec![grow("/text", 1, "y")])),
        ];
        assert_eq!(bases_needed(&items), vec!["k".to_owned()]);
        let out = resolve(items, &stored).unwrap();
        assert_eq!(out[0].item.data, r#"{"text":"ab"}"#);
        assert_eq!(out[2].item.data, r#"{"text":"xy"}"#);
        assert_eq!(out[0].grows, Some(vec![grow("/text", 1, "b")]));
        assert_eq!(out[2].grows, None, "j's append extends the write's own j");
        let missing = vec![item("z", "", Some(vec![grow("/text", 0, "b")]))];
        assert!(
            resolve(missing, &stored)
                .unwrap_err()
                .contains("no content")
        );
        let big = vec![item(
            "k",
            "",
            Some(vec![grow("/text", 1, &"b".repeat(100))]),
        )];
        assert!(resolve(big, &stored).unwrap_err().contains("item limit"));
    }

    #[test]
    fn an_append_extends_the_pending_grows_and_a_gap_after_them_is_refused() {
        let item = |grows: Vec<Grow>| Item {
            key: "k".into(),
            kind: "part",
            data: String::new(),
            append: Some(Append {
                grows,
                max_item_bytes: 100,
            }),
        };
        let stored = HashMap::from([(
            "k".to_owned(),
            Stored {
                base: r#"{"text":"a","id":"p"}"#.into(),
                pending: vec![grow("/text", 1, "bc")],
            },
        )]);
        let grown = resolve(
            vec![item(vec![grow("/text", 3, "d"), grow("/id", 1, "q")])],
            &stored,
        )
        .unwrap();
        assert_eq!(grown[0].item.data, r#"{"text":"abcd","id":"pq"}"#);
        let gap = resolve(vec![item(vec![grow("/text", 1, "d")])], &stored).unwrap_err();
        assert!(gap.contains("\"/text\" is 3 bytes long here"), "{gap}");
        let twice = vec![item(vec![grow("/text", 3, "d"), grow("/text", 4, "e")])];
        assert!(resolve(twice, &stored).unwrap_err().contains("twice"));
    }
}
