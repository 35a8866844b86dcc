//! Content handling: checking that a write is one JSON value, reading a share record, and
//! removing the share's secret from content before it is sent.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_json::Value;

use crate::error::{Error, Result};
use std::sync::Arc;

use crate::registry::{Secret, Share};

/// Checks that `text` is exactly one JSON value, without building a tree (the caller's thread
/// pays for this on every synced write, so it must stay cheap).
pub fn validate(key: &str, text: &str) -> Result<()> {
    serde_json::from_str::<IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| Error::invalid(format!("content of {key:?} is not one JSON value: {e}")))
}

/// Reads the share out of a `session/share/<id>` write (`{secret, url}`, and under "next"
/// maybe `id`); None when the content has no string `secret`. Errors when the content is not
/// JSON, or its `id` could not name a share in a path.
pub fn share_record(key: &str, text: &str) -> Result<Option<Share>> {
    Ok(share_record_with_url(key, text)?.map(|(share, _)| share))
}

/// The longest share URL the ledger keeps from a share record (a longer one is left out).
const MAX_URL_LEN: usize = 2048;

/// [`share_record`], with the record's `url` when it is a string of at most 2 KiB (for the
/// ledger).
pub fn share_record_with_url(key: &str, text: &str) -> Result<Option<(Share, Option<Arc<str>>)>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("content of {key:?} is not one JSON value: {e}")))?;
    let Some(secret) = value
        .get("secret")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let id = match value.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if crate::protocol::next::valid_id(id) => {
            Some(Arc::from(id.as_str()))
        }
        Some(_) => {
            return Err(Error::invalid(format!(
                "content of {key:?}: \"id\" must be 1 to 128 letters, digits, '_' or '-'"
            )));
        }
    };
    let url = value
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty() && u.len() <= MAX_URL_LEN)
        .map(Arc::from);
    let share = Share {
        secret: Secret::new(secret),
        id,
    };
    Ok(Some((share, url)))
}

/// What replaces the secret where it occurs inside a longer string, an array element, an object
/// key or the whole content.
pub const MASK: &str = "[secret removed]";

/// Deepest nesting [`redact`] reads; deeper content that could hold the secret is not sent.
const MAX_DEPTH: usize = 512;

/// The content as it goes on the wire, with the share's secret gone from it: every object
/// member whose value is the secret is removed, and every other occurrence (inside a longer
/// string, as an array element, in an object key, as the whole content) is replaced by
/// [`MASK`]. The host's text goes out unchanged when it cannot hold the secret (neither verbatim
/// nor behind an escape). The reader works on the JSON text itself, so numbers such as `1e400`,
/// lone surrogate escapes and deep nesting elsewhere in the content do not stop it. Fails, and
/// the content must not be sent, when the text cannot be read or the secret would still be in it
/// (say, as digits of a number).
pub fn redact<'a>(text: &'a str, secret: &Secret) -> Result<Cow<'a, str>> {
    let secret = Needle::new(secret.expose());
    let escapable = secret
        .text
        .chars()
        .any(|c| matches!(c, '"' | '\\' | '/') || c < ' ');
    if !(secret.is_in(text) || text.contains("\\u") || escapable && text.contains('\\')) {
        return Ok(Cow::Borrowed(text));
    }
    let unsafe_content = |why: &str| {
        Error::invalid(format!(
            "the content may hold the share's secret and cannot be made safe ({why}); not sent"
        ))
    };
    let mut r = Redactor {
        text,
        at: 0,
        secret,
        out: String::with_capacity(text.len()),
        changed: false,
    };
    r.value(0).map_err(|why| unsafe_content(&why))?;
    r.skip_ws();
    if r.at != text.len() {
        return Err(unsafe_content("text after the JSON value"));
    }
    let out = if r.changed {
        Cow::Owned(r.out)
    } else {
        Cow::Borrowed(text)
    };
    if secret.is_in(&out) {
        return Err(unsafe_content("the secret is outside any string"));
    }
    Ok(out)
}

/// The secret as redaction looks for it: a hex or UUID secret (hex digits and dashes) in any
/// letter case, since tool output may upper-case it; any other secret exactly.
#[derive(Clone, Copy)]
struct Needle<'a> {
    text: &'a str,
    any_case: bool,
}

impl<'a> Needle<'a> {
    fn new(text: &'a str) -> Needle<'a> {
        let any_case = !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        Needle { text, any_case }
    }

    /// Where the secret first occurs in `hay` at or after byte `from`.
    fn find(&self, hay: &str, from: usize) -> Option<usize> {
        if !self.any_case {
            return hay[from..].find(self.text).map(|i| i + from);
        }
        let n = self.text.len();
        let bytes = hay.as_bytes();
        (from..=bytes.len().checked_sub(n)?)
            .find(|&i| bytes[i..i + n].eq_ignore_ascii_case(self.text.as_bytes()))
    }

    fn is_in(&self, hay: &str) -> bool {
        self.find(hay, 0).is_some()
    }

    fn is(&self, s: &str) -> bool {
        if self.any_case {
            s.eq_ignore_ascii_case(self.text)
        } else {
            s == self.text
        }
    }

    /// `hay` with every occurrence replaced by [`MASK`] (a match is all ASCII, so its ends
    /// are character boundaries).
    fn replace_in(&self, hay: &str) -> String {
        let mut out = String::with_capacity(hay.len());
        let mut at = 0;
        while let Some(i) = self.find(hay, at) {
            out.push_str(&hay[at..i]);
            out.push_str(MASK);
            at = i + self.text.len();
        }
        out.push_str(&hay[at..]);
        out
    }
}

/// A single pass over JSON text that copies it to `out` with the secret removed.
struct Redactor<'a> {
    text: &'a str,
    at: usize,
    secret: Needle<'a>,
    out: String,
    changed: bool,
}

impl<'a> Redactor<'a> {
    fn peek(&self) -> std::result::Result<u8, String> {
        self.text
            .as_bytes()
            .get(self.at)
            .copied()
            .ok_or_else(|| "unexpected end".to_string())
    }

    fn skip_ws(&mut self) {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len() && matches!(bytes[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> std::result::Result<(), String> {
        self.skip_ws();
        if self.peek()? != byte {
            return Err(format!("expected '{}' at byte {}", byte as char, self.at));
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> std::result::Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => {
                let raw = self.string()?;
                self.push_string(raw)
            }
            _ => {
                let start = self.at;
                let bytes = self.text.as_bytes();
                while self.at < bytes.len()
                    && !matches!(
                        bytes[self.at],
                        b',' | b'}' | b']' | b':' | b' ' | b'\t' | b'\n' | b'\r'
                    )
                {
                    self.at += 1;
                }
                if start == self.at {
                    return Err(format!("unexpected byte at {start}"));
                }
                self.out.push_str(&self.text[start..self.at]);
                Ok(())
            }
        }
    }

    fn object(&mut self, depth: usize) -> std::result::Result<(), String> {
        self.at += 1;
        self.out.push('{');
        self.skip_ws();
        if self.peek()? == b'}' {
            self.at += 1;
            self.out.push('}');
            return Ok(());
        }
        let mut first = true;
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.expect(b':')?;
            self.skip_ws();
            let member_is_secret = self.peek()? == b'"' && {
                let mark = self.at;
                let raw = self.string()?;
                let is = self.secret.is(&decode(raw)?);
                self.at = mark;
                is
            };
            if member_is_secret {
                self.string()?;
                self.changed = true;
            } else {
                if !first {
                    self.out.push(',');
                }
                first = false;
                self.push_string(key)?;
                self.out.push(':');
                self.value(depth + 1)?;
            }
            self.skip_ws();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => break,
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.at)),
            }
        }
        self.at += 1;
        self.out.push('}');
        Ok(())
    }

    fn array(&mut self, depth: usize) -> std::result::Result<(), String> {
        self.at += 1;
        self.out.push('[');
        self.skip_ws();
        if self.peek()? == b']' {
            self.at += 1;
            self.out.push(']');
            return Ok(());
        }
        let mut first = true;
        loop {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.value(depth + 1)?;
            self.skip_ws();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => break,
                _ => return Err(format!("expected ',' or ']' at byte {}", self.at)),
            }
        }
        self.at += 1;
        self.out.push(']');
        Ok(())
    }

    /// Reads a string token; returns it with its quotes, as written.
    fn string(&mut self) -> std::result::Result<&'a str, String> {
        if self.peek()? != b'"' {
            return Err(format!("expected a string at byte {}", self.at));
        }
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None => return Err("unterminated string".into()),
                Some(b'"') => break,
                Some(b'\\') => i += 2,
                Some(_) => i += 1,
            }
        }
        self.at = i + 1;
        Ok(&self.text[start..self.at])
    }

    /// Copies a string token, masking the secret if it occurs in its decoded text.
    fn push_string(&mut self, raw: &'a str) -> std::result::Result<(), String> {
        let decoded = decode(raw)?;
        if self.secret.is_in(&decoded) {
            self.changed = true;
            let masked = self.secret.replace_in(&decoded);
            self.out
                .push_str(&serde_json::to_string(&masked).expect("string serialises"));
        } else {
            self.out.push_str(raw);
        }
        Ok(())
    }
}

/// The text of a string token (with its quotes); a lone surrogate escape becomes U+FFFD.
fn decode(raw: &str) -> std::result::Result<Cow<'_, str>, String> {
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    let hex = |chars: &mut std::str::Chars<'_>| -> std::result::Result<u32, String> {
        let digits: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&digits, 16).map_err(|_| format!("bad \\u escape {digits:?}"))
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('/') => out.push('/'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let unit = hex(&mut chars)?;
                if (0xD800..0xDC00).contains(&unit) {
                    let rest = chars.as_str();
                    if let Some(after) = rest.strip_prefix("\\u") {
                        let mut ahead = after.chars();
                        if let Ok(low) = hex(&mut ahead) {
                            if (0xDC00..0xE000).contains(&low) {
                                let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                                out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                                chars = ahead;
                                continue;
                            }
                        }
                    }
                    out.push('\u{FFFD}');
                } else {
                    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                }
            }
            other => return Err(format!("bad escape {other:?}")),
        }
    }
    Ok(Cow::Owned(out))
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
    fn share_records_give_their_secret_and_id() {
        let s = share_record("k", r#"{"secret":"abc","url":"u"}"#)
            .unwrap()
            .unwrap();
        assert_eq!((s.secret.expose(), s.id), ("abc", None));
        let s = share_record("k", r#"{"secret":"abc","url":"u","id":"x_1-Y"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(s.id.as_deref(), Some("x_1-Y"));
        assert!(share_record("k", r#"{"url":"u"}"#).unwrap().is_none());
        assert!(share_record("k", r#"{"secret":7}"#).unwrap().is_none());
        assert!(share_record("k", "[]").unwrap().is_none());
        assert!(share_record("k", "{").is_err());
        assert!(share_record("k", r#"{"secret":"a","id":"../x"}"#).is_err());
        assert!(share_record("k", r#"{"secret":"a","id":7}"#).is_err());
    }

    #[test]
    fn redact_catches_case_changed_copies_of_a_hex_or_uuid_secret() {
        let uuid = Secret::new("9f3c2a1e-7b4d-4e8f-a0c1-5d6e7f8a9b0c");
        let upper = "9F3C2A1E-7B4D-4E8F-A0C1-5D6E7F8A9B0C";
        let text = format!(
            r#"{{"a":"{upper}","t":"tool said {upper}. ok","m":"9f3C2a1E-7b4d-4e8f-a0c1-5d6e7f8a9b0c"}}"#
        );
        let out = redact(&text, &uuid).unwrap();
        assert_eq!(
            out,
            format!(r#"{{"t":"tool said {MASK}. ok"}}"#),
            "members equal to an upper- or mixed-case copy go; other copies are masked"
        );
        let hex = Secret::new("deadbeef01");
        let out = redact(r#"["é DEADBEEF01 é","x"]"#, &hex).unwrap();
        assert_eq!(out, format!(r#"["é {MASK} é","x"]"#));
        // a secret with other letters is matched exactly: its case is its own
        let word = Secret::new("Secret-Word");
        let text = r#"{"t":"secret-word"}"#;
        assert!(matches!(redact(text, &word), Ok(Cow::Borrowed(t)) if t == text));
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
        let text = r#"{ "only" : "0b5e-7f" , "b" : [ ] }"#;
        assert_eq!(redact(text, &secret).unwrap(), r#"{"b":[]}"#);
        assert_eq!(redact(r#"{"a":"0b5e-7f"}"#, &secret).unwrap(), "{}");
    }

    #[test]
    fn redact_keeps_other_secret_fields_and_the_text_as_it_came() {
        let secret = Secret::new("0b5e-7f");
        let text = r#"{ "tool": {"input": {"secret": "hunter2"}}, "z": 1, "a": 2 }"#;
        assert!(matches!(redact(text, &secret), Ok(Cow::Borrowed(t)) if t == text));
        let text = r#"{"a":"\u00e9\n","n":1e400}"#;
        assert!(matches!(redact(text, &secret), Ok(Cow::Borrowed(t)) if t == text));
    }

    #[test]
    fn every_other_occurrence_is_masked() {
        let secret = Secret::new("0b5e-7f");
        let cases = [
            (
                r#"{"note":"the secret 0b5e-7f was rotated"}"#,
                r#"{"note":"the secret [secret removed] was rotated"}"#,
            ),
            (r#"["x","0b5e-7f",3]"#, r#"["x","[secret removed]",3]"#),
            (r#""0b5e-7f""#, r#""[secret removed]""#),
            (r#"{"0b5e-7f":1}"#, r#"{"[secret removed]":1}"#),
            (
                r#"{"k 0b5e-7f":{"v":"a0b5e-7f"}}"#,
                r#"{"k [secret removed]":{"v":"a[secret removed]"}}"#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text, &secret).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn redact_sees_through_escapes() {
        let secret = Secret::new("ab");
        let out = redact(r#"{"s":"\u0061b","t":"x"}"#, &secret).unwrap();
        assert_eq!(out, r#"{"t":"x"}"#);
        let out = redact(r#"["x\u0061\u0062y"]"#, &secret).unwrap();
        assert_eq!(out, r#"["x[secret removed]y"]"#);
        let secret = Secret::new("a/b");
        assert_eq!(redact(r#"{"u":"a\/b"}"#, &secret).unwrap(), "{}");
    }

    #[test]
    fn parts_that_do_not_parse_as_a_tree_do_not_stop_the_removal() {
        let secret = Secret::new("0b5e-7f");
        for other in [r#""\ud800""#, "1e400", "-0.0e-999"] {
            let text = format!(r#"{{"a":{other},"share":{{"secret":"0b5e-7f"}},"t":"x 0b5e-7f"}}"#);
            validate("k", &text).unwrap();
            let out = redact(&text, &secret).unwrap();
            assert!(!out.contains("0b5e-7f"), "{out}");
            assert!(out.contains(other), "{out}");
            assert!(out.contains(r#""share":{}"#), "{out}");
        }
        // nested 200 deep (past serde_json's tree limit of 128): redact reads it all
        let deep = format!(
            r#"{{"s":"0b5e-7f","d":{}"0b5e-7f"{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let out = redact(&deep, &secret).unwrap();
        assert!(!out.contains("0b5e-7f"));
        // deeper than the reader goes (share_sync's validation accepts any depth): refused
        let deeper = format!("{}\"0b5e-7f\"{}", "[".repeat(600), "]".repeat(600));
        validate("k", &deeper).unwrap();
        assert!(redact(&deeper, &secret).is_err());
        assert!(out.contains("[[[[\"[secret removed]\"]]]]"), "{out}");
    }

    #[test]
    fn content_that_cannot_be_made_safe_is_refused_not_sent() {
        let secret = Secret::new("1234");
        let e = redact(r#"{"n":123456}"#, &secret).unwrap_err();
        assert!(e.message.contains("not sent"), "{}", e.message);
        assert!(!e.message.contains("1234"), "{}", e.message);
        let secret = Secret::new("0b5e-7f");
        for bad in [
            r#"{"a":"0b5e-7f""#,
            r#"["0b5e-7f" x]"#,
            r#"{"a":"\q0b5e-7f"}"#,
        ] {
            assert!(redact(bad, &secret).is_err(), "{bad}");
        }
    }
}
