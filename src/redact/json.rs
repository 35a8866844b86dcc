//! The JSON side of redaction: every string token of a content (object keys and values alike),
//! decoded, handed to a rewriter, and re-encoded only when it changed. Everything between the
//! strings is copied as it came, so the rest of the content keeps its bytes.

use std::borrow::Cow;

/// Copies `text` (one JSON value, as `share_sync` validated it) with every string passed
/// through `rewrite` with its raw inside's place in `text`, which answers the new text of a
/// string or None to keep it. Fails on a string that cannot be read (unterminated, a bad
/// escape): the content must then not be sent.
pub fn map_strings<'a>(
    text: &'a str,
    mut rewrite: impl FnMut(std::ops::Range<usize>, &str) -> Option<String>,
) -> Result<Cow<'a, str>, String> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // text[..copied] is in `out` (or unchanged so far)
    let mut at = 0;
    while let Some(offset) = memchr::memchr(b'"', &bytes[at..]) {
        let start = at + offset;
        let end = string_end(bytes, start)?;
        let raw = &text[start + 1..end];
        let decoded = decode(raw)?;
        if let Some(new) = rewrite(start + 1..end, &decoded) {
            let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
            out.push_str(&text[copied..start]);
            out.push_str(&serde_json::to_string(&new).expect("a string serialises"));
            copied = end + 1;
        }
        at = end + 1;
    }
    Ok(match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    })
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> Result<usize, String> {
    let mut i = start + 1;
    loop {
        let Some(offset) = memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) else {
            return Err(format!("unterminated string at byte {start}"));
        };
        i += offset;
        if bytes[i] == b'"' {
            return Ok(i);
        }
        i += 2;
    }
}

/// The text of a string token's inside; a lone surrogate escape becomes U+FFFD.
pub fn decode(inner: &str) -> Result<Cow<'_, str>, String> {
    if !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut rest = inner;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let esc = rest.as_bytes().get(i + 1).copied();
        rest = &rest[(i + 2).min(rest.len())..];
        out.push(match esc {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = hex4(rest)?;
                rest = &rest[4..];
                let low = rest
                    .strip_prefix("\\u")
                    .and_then(|r| hex4(r).ok())
                    .filter(|low| {
                        (0xD800..0xDC00).contains(&unit) && (0xDC00..0xE000).contains(low)
                    });
                match low {
                    Some(low) => {
                        rest = &rest[6..];
                        char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                            .unwrap_or('\u{FFFD}')
                    }
                    None => char::from_u32(unit).unwrap_or('\u{FFFD}'),
                }
            }
            other => return Err(format!("bad escape {:?}", other.map(char::from))),
        });
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Four hex digits at the start of `s`.
fn hex4(s: &str) -> Result<u32, String> {
    s.get(..4)
        .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|d| u32::from_str_radix(d, 16).ok())
        .ok_or_else(|| "bad \\u escape".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(_: std::ops::Range<usize>, s: &str) -> Option<String> {
        s.contains('x').then(|| s.to_uppercase())
    }

    #[test]
    fn only_changed_strings_are_re_encoded() {
        let text = r#"{"ax": [1, "b", "x\"y"], "k\u0078": 1e400, "é": "\ud800"}"#;
        let out = map_strings(text, upper).unwrap();
        assert_eq!(
            out,
            r#"{"AX": [1, "b", "X\"Y"], "KX": 1e400, "é": "\ud800"}"#
        );
        assert!(matches!(
            map_strings("[1, \"b\"]", upper),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn escapes_decode_as_json_says() {
        assert_eq!(
            decode(r#"a\u0041\n\/\\\"\ud83d\ude00"#).unwrap(),
            "aA\n/\\\"😀"
        );
        assert_eq!(decode(r#"\ud800x"#).unwrap(), "\u{FFFD}x");
        for bad in [r#"\q"#, r#"\u12"#, r#"\u12zz"#, "\\"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        assert!(map_strings(r#"{"a":"b"#, upper).is_err());
    }
}
