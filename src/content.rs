//! Content handling: checking that a write is one JSON value, reading a share record, and
//! removing the share's secret from content before it is sent.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::registry::Secret;

/// Checks that `text` is exactly one JSON value, without building a tree (the caller's thread
/// pays for this on every synced write, so it must stay cheap).
pub fn validate(key: &str, text: &str) -> Result<()> {
    serde_json::from_str::<IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| Error::invalid(format!("content of {key:?} is not one JSON value: {e}")))
}

/// Reads the secret out of a `session/share/<id>` write (`{secret, url}`); None when the content
/// has no string `secret`. Errors when the content is not JSON.
pub fn share_secret(key: &str, text: &str) -> Result<Option<Secret>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("content of {key:?} is not one JSON value: {e}")))?;
    Ok(value
        .get("secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(Secret::new))
}

/// The content as it goes on the wire: the host's own text, unless some object member's value
/// equals the secret, in which case those members are removed (at any depth) and the rest is
/// re-encoded. The text is only parsed when it could hold the secret: verbatim, or written
/// with `\u` escapes. Fails when the text holds the secret verbatim but cannot be read into a
/// tree (valid JSON with a lone surrogate escape such as `"\ud800"`): it must not go out.
pub fn redact<'a>(text: &'a str, secret: &Secret) -> Result<Cow<'a, str>> {
    let secret = secret.expose();
    if !text.contains(secret) && !text.contains("\\u") {
        return Ok(Cow::Borrowed(text));
    }
    let mut value = match serde_json::from_str::<Value>(text) {
        Ok(value) => value,
        Err(_) if !text.contains(secret) => return Ok(Cow::Borrowed(text)),
        Err(e) => {
            return Err(Error::invalid(format!(
                "the content holds the share's secret and cannot be re-read to remove it ({e}); not sent"
            )));
        }
    };
    Ok(if strip_secret(&mut value, secret) {
        Cow::Owned(value.to_string())
    } else {
        Cow::Borrowed(text)
    })
}

/// Removes every object member whose value is the string `secret`; true if any was removed.
pub fn strip_secret(value: &mut Value, secret: &str) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|_, v| v.as_str() != Some(secret));
            let mut changed = map.len() != before;
            for v in map.values_mut() {
                changed |= strip_secret(v, secret);
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, v| strip_secret(v, secret) | acc),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_accepts_one_value_only() {
        for ok in [
            "{}",
            "[]",
            "1",
            "\"s\"",
            "null",
            " {\"a\":[1,2,{\"b\":null}]} ",
            "true",
        ] {
            assert!(validate("k", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "{",
            "{} {}",
            "{\"a\":}",
            "nul",
            "'x'",
            "{\"a\":1,}",
            "\"\u{1}\"",
        ] {
            let e = validate("session/info/s", bad).unwrap_err();
            assert!(
                e.message.contains("not one JSON value"),
                "{bad}: {}",
                e.message
            );
        }
        // nesting far beyond serde_json's limit is an error, not a stack overflow
        let deep = "[".repeat(100_000);
        assert!(validate("k", &deep).is_err());
    }

    #[test]
    fn share_records_give_their_secret() {
        let s = share_secret("k", r#"{"secret":"abc","url":"u"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(s.expose(), "abc");
        assert!(share_secret("k", r#"{"url":"u"}"#).unwrap().is_none());
        assert!(share_secret("k", r#"{"secret":7}"#).unwrap().is_none());
        assert!(share_secret("k", "[]").unwrap().is_none());
        assert!(share_secret("k", "{").is_err());
    }

    #[test]
    fn redact_removes_members_equal_to_the_secret_at_any_depth() {
        let secret = Secret::new("0b5e-7f");
        let text = r#"{"id":"ses_1","share":{"url":"https://x/s/1","secret":"0b5e-7f"},"list":[{"k":"0b5e-7f","n":1}]}"#;
        let out = redact(text, &secret).unwrap();
        assert_eq!(
            out,
            r#"{"id":"ses_1","share":{"url":"https://x/s/1"},"list":[{"n":1}]}"#
        );
        assert!(!out.contains("0b5e-7f"));
    }

    #[test]
    fn redact_keeps_other_secret_fields_and_the_text_as_it_came() {
        let secret = Secret::new("0b5e-7f");
        let text = r#"{ "tool": {"input": {"secret": "hunter2"}}, "z": 1, "a": 2 }"#;
        assert!(matches!(redact(text, &secret), Ok(Cow::Borrowed(t)) if t == text));
        // the secret inside a longer string is not a member equal to it
        let text = r#"{"note":"the secret 0b5e-7f was rotated"}"#;
        assert_eq!(redact(text, &secret).unwrap(), text);
    }

    #[test]
    fn redact_sees_through_unicode_escapes() {
        let secret = Secret::new("ab");
        let out = redact(r#"{"s":"\u0061b","t":"x"}"#, &secret).unwrap();
        assert_eq!(out, r#"{"t":"x"}"#);
    }

    #[test]
    fn content_that_cannot_be_stripped_is_refused_not_sent() {
        // valid JSON (validate accepts it), but a lone surrogate cannot be read into a tree
        let secret = Secret::new("0b5e-7f");
        let text = r#"{"a":"\ud800","share":{"secret":"0b5e-7f"}}"#;
        validate("k", text).unwrap();
        let e = redact(text, &secret).unwrap_err();
        assert!(!e.message.contains("0b5e-7f"), "{}", e.message);
        // without the secret in it, the same kind of text goes out as it came
        let text = r#"{"a":"\ud800"}"#;
        assert_eq!(redact(text, &secret).unwrap(), text);
    }
}
