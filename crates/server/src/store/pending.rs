//! Appends kept beside an item's stored base (the `item_appends` table): an append that extends
//! the stored text is stored as its grows, and the item's row gets only its new sequence number
//! and size, so a streamed text costs the database its suffix per write, not its whole length.
//! Every read folds a key's pending grows into its base (`append::fold`), so readers see exactly
//! the text a whole write would have stored. A whole write of the key replaces them; they are
//! folded into the base once they outnumber [`MAX`] or outgrow the base, which bounds both a
//! read's work and the rewrites of a growing text (about twice its final size in all).

use std::collections::HashMap;

use super::{StoreError, StoreResult};
use crate::append::{self, Grow, Resolved, Stored};
use crate::item::{Item, StoredItem};

/// Most appends a key keeps pending before they are folded into its base.
pub const MAX: i64 = 64;

/// The smallest base that keeps appends pending: a smaller item lives in one database page
/// (SQLite's 4 KB; PostgreSQL keeps a row under 2 KB inline, so an update rewrites it anyway),
/// and rewriting that page costs less than writing the pending table's pages beside it.
pub const MIN_BASE: i64 = 4096;

/// A key's pending appends as its write sees them: how many, their grows' stored bytes, and its
/// base's bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pending {
    pub count: i64,
    pub bytes: i64,
    pub base: i64,
}

impl Pending {
    /// Whether one more append of `bytes` is stored as pending (else the item is written whole,
    /// which folds the others).
    pub fn keeps(&self, bytes: usize) -> bool {
        self.base >= MIN_BASE && self.count < MAX && self.bytes + bytes as i64 <= self.base
    }
}

/// The texts a write's appends extend, gathered key by key from the store, and what each of
/// those keys has pending.
#[derive(Debug, Default)]
pub struct Bases {
    texts: HashMap<String, Stored>,
    pending: HashMap<String, Pending>,
}

impl Bases {
    /// Adds `key`'s stored `base` and its pending appends (`rows`, stored grows in order).
    pub fn add(&mut self, key: String, base: String, rows: &[String]) -> StoreResult<()> {
        self.pending.insert(
            key.clone(),
            Pending {
                count: rows.len() as i64,
                bytes: rows.iter().map(|r| r.len() as i64).sum(),
                base: base.len() as i64,
            },
        );
        let pending = merged(&key, rows)?;
        self.texts.insert(key, Stored { base, pending });
        Ok(())
    }

    /// The write's items made whole against these texts (`append::resolve`), and the keys'
    /// pending appends.
    pub fn resolve(
        self,
        items: Vec<Item>,
    ) -> StoreResult<(Vec<Resolved>, HashMap<String, Pending>)> {
        let resolved = append::resolve(items, &self.texts).map_err(StoreError::AppendRefused)?;
        Ok((resolved, self.pending))
    }
}

/// The grows of one append, as stored.
pub fn encode(grows: &[Grow]) -> String {
    serde_json::to_string(grows).expect("grows serialise")
}

/// A key's pending appends (`rows`, their stored grows in sequence order) merged: one grow per
/// string.
fn merged(key: &str, rows: &[String]) -> StoreResult<Vec<Grow>> {
    let mut merged = Vec::new();
    for row in rows {
        let grows: Vec<Grow> = serde_json::from_str(row).map_err(|e| {
            StoreError::Backend(format!("a pending append of {key} is unreadable: {e}"))
        })?;
        append::merge(&mut merged, &grows).map_err(|e| {
            StoreError::Backend(format!("the pending appends of {key} do not apply: {e}"))
        })?;
    }
    Ok(merged)
}

/// A key's text: its base with its pending appends (`rows`, their stored grows in sequence
/// order) applied in one pass, so a fold costs the text's length once, however many wait.
pub fn fold(key: &str, base: &str, rows: &[String]) -> StoreResult<String> {
    append::apply(base, &merged(key, rows)?)
        .map_err(|e| StoreError::Backend(format!("the pending appends of {key} do not apply: {e}")))
}

/// Folds each item's pending appends (`rows`: key → stored grows in sequence order) into it.
pub fn fold_into(items: &mut [StoredItem], rows: &HashMap<String, Vec<String>>) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    for item in items {
        if let Some(rows) = rows.get(&item.key) {
            item.data = fold(&item.key, &item.data, rows)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grows(list: &[(&str, u64, &str)]) -> String {
        let grows: Vec<Grow> = list
            .iter()
            .map(|(path, at, text)| Grow {
                path: (*path).into(),
                at: *at,
                text: (*text).into(),
            })
            .collect();
        encode(&grows)
    }

    #[test]
    fn pending_appends_fold_in_order_as_one_pass() {
        let base = r#"{"text":"a","state":{"output":"x"}}"#;
        let rows = vec![
            grows(&[("/text", 1, "b\"")]),
            grows(&[("/text", 3, "c"), ("/state/output", 1, "y")]),
            grows(&[("/state/output", 2, "z")]),
        ];
        assert_eq!(
            fold("k", base, &rows).unwrap(),
            r#"{"text":"ab\"c","state":{"output":"xyz"}}"#
        );
        let gap = vec![grows(&[("/text", 1, "b")]), grows(&[("/text", 5, "c")])];
        assert!(
            matches!(fold("k", base, &gap), Err(StoreError::Backend(e)) if e.contains("is 2 bytes long"))
        );
        let mut items = vec![StoredItem {
            key: "k".into(),
            kind: "part".into(),
            seq: 4,
            data: base.into(),
        }];
        fold_into(&mut items, &HashMap::from([("k".to_owned(), rows)])).unwrap();
        assert!(items[0].data.contains("xyz"));
    }

    #[test]
    fn appends_wait_beside_a_base_past_one_page_until_they_outnumber_the_bound_or_outgrow_it() {
        let p = Pending {
            count: 3,
            bytes: 100,
            base: 5000,
        };
        assert!(p.keeps(4900));
        assert!(!p.keeps(4901), "past the base's size: folded");
        assert!(
            !Pending { count: MAX, ..p }.keeps(1),
            "past the count: folded"
        );
        let small = Pending {
            count: 0,
            bytes: 0,
            base: MIN_BASE - 1,
        };
        assert!(!small.keeps(1), "a base within one page: rewritten");
    }
}
