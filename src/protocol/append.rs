//! The append extension's client half (docs/append-protocol.md): whether a key's new content is
//! the content the service acknowledged with string values grown at their end, and the grows
//! that say so. Anything else (a member added, a string changed inside, a number changed) is a
//! whole write.

use serde::Serialize;
use serde_json::Value;

use super::json::push_string;

/// One string that grew: its JSON Pointer, its length (UTF-8 bytes) before, and the suffix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grow {
    pub path: String,
    pub at: usize,
    pub text: String,
}

/// A content as an append: its grows, and the members naming its item under "next"
/// (`{"id","messageID"}` as far as the content has them, as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grown {
    pub grows: Vec<Grow>,
    pub names: String,
}

/// The grows that turn `old` into `new`, or None when `new` is not an append of `old` (or the
/// append would not be smaller than the content).
pub fn grown(old: &str, new: &str) -> Option<Grown> {
    if new.len() <= old.len() {
        return None;
    }
    let old: Value = serde_json::from_str(old).ok()?;
    let new_value: Value = serde_json::from_str(new).ok()?;
    let grows = grows(&old, &new_value)?;
    if grows.is_empty() {
        return None;
    }
    let mut names = serde_json::Map::new();
    for name in ["id", "messageID"] {
        if let Some(v @ Value::String(_)) = new_value.get(name) {
            names.insert(name.to_owned(), v.clone());
        }
    }
    let names = Value::Object(names).to_string();
    let cost: usize = grows.iter().map(|g| g.text.len() + g.path.len() + 40).sum();
    (cost + names.len() < new.len()).then_some(Grown { grows, names })
}

/// The grows that turn `old` into `new` (none when they are equal), or None when `new` is not
/// `old` with strings grown at their end.
pub fn grows(old: &Value, new: &Value) -> Option<Vec<Grow>> {
    let mut grows = Vec::new();
    walk(old, new, &mut String::new(), &mut grows)?;
    Some(grows)
}

/// Compares `old` and `new` at JSON Pointer `path`, pushing a grow for each string that grew;
/// None at the first other difference.
fn walk(old: &Value, new: &Value, path: &mut String, grows: &mut Vec<Grow>) -> Option<()> {
    match (old, new) {
        (Value::String(a), Value::String(b)) if a != b => {
            let text = b.strip_prefix(a.as_str())?;
            grows.push(Grow {
                path: path.clone(),
                at: a.len(),
                text: text.to_owned(),
            });
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return None;
            }
            for (n, (x, y)) in a.iter().zip(b).enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&n.to_string());
                walk(x, y, path, grows)?;
                path.truncate(len);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            if a.len() != b.len() {
                return None;
            }
            for (name, x) in a {
                let y = b.get(name)?;
                let len = path.len();
                path.push('/');
                path.push_str(&name.replace('~', "~0").replace('/', "~1"));
                walk(x, y, path, grows)?;
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        _ => return None,
    }
    Some(())
}

/// `[{"path","at","text"}...]`.
pub fn push_grows(out: &mut String, grows: &[Grow]) {
    out.push('[');
    for (n, grow) in grows.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"path\":");
        push_string(out, &grow.path);
        out.push_str(",\"at\":");
        out.push_str(&grow.at.to_string());
        out.push_str(",\"text\":");
        push_string(out, &grow.text);
        out.push('}');
    }
    out.push(']');
}

/// `old` with `grows` applied, as a service applies them; None if one does not apply.
pub fn apply(old: &str, grows: &[Grow]) -> Option<Value> {
    let mut value: Value = serde_json::from_str(old).ok()?;
    for grow in grows {
        match value.pointer_mut(&grow.path)? {
            Value::String(s) if s.len() == grow.at => s.push_str(&grow.text),
            _ => return None,
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn long(text: &str) -> Value {
        json!({ "id": "prt_1", "messageID": "msg_1", "type": "text", "text": text,
                "state": { "output": ["a", text] }, "n": 1 })
    }

    #[test]
    fn grown_strings_become_grows_and_other_changes_do_not() {
        let old = long(&"x".repeat(300)).to_string();
        let new = long(&format!("{}yé", "x".repeat(300))).to_string();
        let g = grown(&old, &new).expect("an append");
        assert_eq!(
            g.grows.iter().map(|g| g.path.as_str()).collect::<Vec<_>>(),
            ["/text", "/state/output/1"]
        );
        assert_eq!((g.grows[0].at, g.grows[0].text.as_str()), (300, "yé"));
        assert_eq!(g.names, r#"{"id":"prt_1","messageID":"msg_1"}"#);
        assert_eq!(apply(&old, &g.grows), serde_json::from_str(&new).ok());
        let mut body = String::new();
        push_grows(&mut body, &g.grows[..1]);
        assert_eq!(body, r#"[{"path":"/text","at":300,"text":"yé"}]"#);
        // not appends: changed inside, a member added, a number changed, shorter, the same
        let base = long(&"x".repeat(300));
        let mut changed = base.clone();
        changed["text"] = json!(format!("z{}", "x".repeat(305)));
        let mut added = base.clone();
        added["extra"] = json!("x".repeat(400));
        let mut number = long(&"x".repeat(400));
        number["n"] = json!(2);
        for new in [changed, added, number, long("x"), base.clone()] {
            assert_eq!(grown(&base.to_string(), &new.to_string()), None, "{new}");
        }
        // a small content whose append would not be smaller goes whole
        assert_eq!(grown(r#"{"t":"a"}"#, r#"{"t":"ab"}"#), None);
    }

    /// A JSON value whose strings are all kinds of text (escapes, non-ASCII, pointer characters).
    fn value() -> impl Strategy<Value = Value> {
        let text = "[a-z~/\"\\\\é\n ]{0,12}";
        let leaf = prop_oneof![
            text.prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
        ];
        leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((text, inner), 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// `v` with `suffixes` appended to its strings, in document order (cycling).
    fn grow_strings(v: &mut Value, suffixes: &[String], n: &mut usize) {
        match v {
            Value::String(s) if !suffixes.is_empty() => {
                s.push_str(&suffixes[*n % suffixes.len()]);
                *n += 1;
            }
            Value::Array(a) => a.iter_mut().for_each(|x| grow_strings(x, suffixes, n)),
            Value::Object(m) => m.values_mut().for_each(|x| grow_strings(x, suffixes, n)),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// append(acknowledged, suffixes) is the new content: whatever strings grew by whatever
        /// suffixes, the grows found apply to the old content and give exactly the new one.
        #[test]
        fn the_grows_of_an_append_give_back_the_new_content(
            old in value(),
            suffixes in prop::collection::vec("[a-z\"\\\\é\u{1F600}\n]{0,40}", 0..4),
            padding in "[a-z]{0,60}",
        ) {
            let old = json!({ "text": padding, "v": old });
            let mut new = old.clone();
            grow_strings(&mut new, &suffixes, &mut 0);
            let found = grows(&old, &new);
            prop_assert!(found.is_some(), "an append not found");
            let old_text = old.to_string();
            prop_assert_eq!(apply(&old_text, &found.unwrap()), Some(new.clone()));
            if let Some(g) = grown(&old_text, &new.to_string()) {
                prop_assert_eq!(apply(&old_text, &g.grows), Some(new));
            }
        }

        /// Whatever two contents are, an append found between them gives back the new one.
        #[test]
        fn an_append_is_never_found_where_it_would_be_wrong(a in value(), b in value()) {
            let (a, b) = (a.to_string(), b.to_string());
            if let Some(g) = grown(&a, &b) {
                prop_assert_eq!(apply(&a, &g.grows), serde_json::from_str::<Value>(&b).ok());
            }
        }
    }
}
