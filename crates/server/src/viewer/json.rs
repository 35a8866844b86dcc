//! Reading a stored item's JSON for the page at any depth: serde_json stops at 128 levels, so an
//! item deeper than that is first flattened by an iterative scan that turns every subtree below
//! `MAX_DEPTH` into a string of its own JSON text. The page then shows it (as text) instead of
//! dropping the item, and every later walk of the value is bounded by `MAX_DEPTH`.

use serde_json::Value;

/// Levels kept as structure; anything deeper is shown as its JSON text.
pub const MAX_DEPTH: usize = 64;

/// The item's value; `Null` only for text that is not JSON at all (the store holds none).
pub fn parse(data: &str) -> Value {
    match serde_json::from_str(data) {
        Ok(v) => v,
        Err(_) => serde_json::from_str(&flatten_below(data, MAX_DEPTH)).unwrap_or(Value::Null),
    }
}

/// `data` with each array or object that opens at depth `max + 1` replaced by a JSON string of
/// its text. One pass, no recursion; text that is not JSON comes out as garbage that will not parse.
pub fn flatten_below(data: &str, max: usize) -> String {
    let bytes = data.as_bytes();
    let mut out = String::with_capacity(data.len() + 16);
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut copied = 0; // bytes of `data` already in `out`
    let mut deep_start = None; // where the current flattened subtree began
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == max + 1 {
                    out.push_str(&data[copied..i]);
                    deep_start = Some(i);
                }
            }
            b']' | b'}' => {
                if depth == max + 1 {
                    if let Some(start) = deep_start.take() {
                        let text = &data[start..=i];
                        out.push_str(&serde_json::to_string(text).unwrap_or_default());
                        copied = i + 1;
                    }
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    if let Some(start) = deep_start {
        // unbalanced: keep the rest as text, the parse will fail on it
        copied = start;
    }
    out.push_str(&data[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_depth_parses_with_the_deep_part_as_text() {
        let deep = format!(
            r#"{{"type":"text","text":"still here","x":{}1{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(
            serde_json::from_str::<Value>(&deep).is_err(),
            "serde_json's limit"
        );
        let v = parse(&deep);
        assert_eq!(v["text"], "still here");
        let mut at = &v["x"];
        let mut levels = 0;
        while let Some(inner) = at.get(0) {
            at = inner;
            levels += 1;
        }
        assert_eq!(levels, MAX_DEPTH - 1, "structure down to the limit");
        assert!(
            at.as_str().unwrap().starts_with("[[[["),
            "the rest as its text"
        );
        // strings holding brackets and escaped quotes do not count
        let tricky = format!(
            r#"{{"a":"[[\"{{","b":{}0{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(parse(&tricky)["a"], "[[\"{");
        assert_eq!(flatten_below("[1,[2]]", 8), "[1,[2]]");
        assert_eq!(parse("not json"), Value::Null);
    }
}
