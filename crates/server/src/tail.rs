//! A streamed text part reaches live viewers as its new text only: the share's pump keeps the
//! last version of each text or reasoning part it broadcast, and marks an item whose only
//! change is its `text` grown at the end with that suffix and the sequence number of the version
//! it extends. A viewer that was sent exactly that version gets an `append` event (the page adds
//! the text in place); any other viewer gets the whole item, as before. Bounded: past
//! [`MAX_TAIL_BYTES`] of kept parts per share the pump starts over (whole items until it has
//! seen each part again).

use std::collections::HashMap;

use serde_json::Value;

use crate::item::StoredItem;

/// The most bytes of part data one share's pump keeps.
pub const MAX_TAIL_BYTES: usize = 8 << 20;

/// An item that is the version of sequence `after` with `text` appended to its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub after: i64,
    pub text: String,
}

/// The last version of each text part a pump broadcast.
#[derive(Debug, Default)]
pub struct Tails {
    last: HashMap<String, (i64, Value, usize)>,
    bytes: usize,
}

impl Tails {
    /// Takes `item` as its key's newest version; Some if it only grew the text of the last.
    pub fn next(&mut self, item: &StoredItem) -> Option<Appended> {
        if item.kind != "part" {
            return None;
        }
        let data: Value = serde_json::from_str(&item.data).ok()?;
        if !matches!(data["type"].as_str(), Some("text" | "reasoning")) {
            return None;
        }
        if self.bytes + item.data.len() > MAX_TAIL_BYTES {
            self.last.clear();
            self.bytes = 0;
        }
        self.bytes += item.data.len();
        let (after, old, size) = self
            .last
            .insert(item.key.clone(), (item.seq, data.clone(), item.data.len()))?;
        self.bytes -= size;
        let text = grown_text(&old, &data)?;
        Some(Appended { after, text })
    }
}

/// The suffix `new`'s `text` adds to `old`'s when nothing else differs.
fn grown_text(old: &Value, new: &Value) -> Option<String> {
    let (Value::Object(a), Value::Object(b)) = (old, new) else {
        return None;
    };
    if a.len() != b.len() {
        return None;
    }
    let mut suffix = None;
    for (name, x) in a {
        let y = b.get(name)?;
        if name == "text" {
            suffix = Some(y.as_str()?.strip_prefix(x.as_str()?)?.to_owned());
        } else if x != y {
            return None;
        }
    }
    suffix.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(seq: i64, data: Value) -> StoredItem {
        StoredItem {
            key: "part/m/p".into(),
            kind: "part".into(),
            seq,
            data: data.to_string(),
        }
    }

    #[test]
    fn only_a_text_grown_at_its_end_is_an_append_of_the_version_before() {
        let mut tails = Tails::default();
        let part = |text: &str| json!({ "id": "p", "type": "text", "text": text });
        assert_eq!(tails.next(&stored(3, part("ab"))), None, "nothing before");
        assert_eq!(
            tails.next(&stored(5, part("abc"))),
            Some(Appended {
                after: 3,
                text: "c".into()
            })
        );
        assert_eq!(tails.next(&stored(6, part("xbcd"))), None, "changed inside");
        let mut done = part("xbcde");
        done["time"] = json!({ "end": 1 });
        assert_eq!(tails.next(&stored(7, done)), None, "another member changed");
        let tool = json!({ "id": "p", "type": "tool", "text": "a" });
        assert_eq!(tails.next(&stored(8, tool)), None);
        assert!(tails.bytes <= MAX_TAIL_BYTES);
    }
}
