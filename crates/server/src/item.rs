//! The one data model both protocols write into: a share holds items keyed like ShareNext's
//! (`session`, `message/<mid>`, `part/<mid>/<pid>`, `session_diff`, `model`); legacy storage keys
//! map onto the same items, so either protocol's reader sees what either protocol's writer sent.

use serde_json::value::RawValue;

/// The item types of ShareNext (`Share.Data`'s discriminant).
pub const KINDS: [&str; 5] = ["session", "message", "part", "session_diff", "model"];

/// One item to upsert: its key in the share, its type, and its JSON exactly as the client sent it
/// (or, for an append, the grows the store applies to the stored text, `data` then empty).
#[derive(Debug, Clone)]
pub struct Item {
    pub key: String,
    pub kind: &'static str,
    pub data: String,
    pub append: Option<crate::append::Append>,
}

/// One stored item as readers get it, with the sequence number of the write that stored it.
#[derive(Debug, Clone)]
pub struct StoredItem {
    pub key: String,
    pub kind: String,
    pub seq: i64,
    pub data: String,
}

/// A share id or path segment: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The share id of a session: its last 8 characters (both of opencode's services do this).
pub fn share_id(session_id: &str) -> Result<String, String> {
    if session_id.len() < 8 || !valid_id(session_id) {
        return Err("sessionID must be 8 to 64 characters of [A-Za-z0-9_-]".into());
    }
    Ok(session_id[session_id.len() - 8..].to_owned())
}

/// What a legacy storage key means for a share of session `sid`.
#[derive(Debug, PartialEq)]
pub enum LegacyKey {
    /// Stored as this item key and type.
    Item(String, &'static str),
    /// A well-formed key of this session that the service does not keep (answered 200, as opencode's).
    Ignored,
}

/// Maps `session/<sub>/<sid>/...` onto an item key; a key of another session or malformed is an error.
pub fn legacy_key(key: &str, sid: &str) -> Result<LegacyKey, String> {
    let segments: Vec<&str> = key.split('/').collect();
    if segments.len() < 3 || segments[0] != "session" || segments.iter().any(|s| s.is_empty()) {
        return Err(format!("key must look like session/<sub>/{sid}[/...]"));
    }
    if segments[2] != sid {
        return Err("key is not of this share's session".into());
    }
    // the same id rules as ShareNext's (1 to 64 of [A-Za-z0-9_-]), so a legacy key can neither
    // smuggle markup nor store a long id past the share's byte limit
    // (keys the service ignores are not stored, so they keep the old leniency)
    let stored = matches!(segments[1], "info" | "message" | "part" | "diff" | "model");
    if let Some(bad) = segments[3..].iter().find(|s| stored && !valid_id(s)) {
        let shown: String = bad.chars().take(16).collect();
        return Err(format!(
            "ids in a key must be 1 to 64 characters of [A-Za-z0-9_-], not {shown:?}"
        ));
    }
    Ok(match (segments[1], &segments[3..]) {
        ("info", []) => LegacyKey::Item("session".into(), "session"),
        ("message", [mid]) => LegacyKey::Item(format!("message/{mid}"), "message"),
        ("part", [mid, pid]) => LegacyKey::Item(format!("part/{mid}/{pid}"), "part"),
        ("diff", []) => LegacyKey::Item("session_diff".into(), "session_diff"),
        ("model", []) => LegacyKey::Item("model".into(), "model"),
        ("info" | "message" | "part", _) => return Err(format!("malformed {} key", segments[1])),
        _ => LegacyKey::Ignored,
    })
}

/// The legacy storage key of a stored item (what `/share_poll` frames carry), for the three kinds
/// opencode's legacy viewer knows.
pub fn legacy_key_of(item_key: &str, sid: &str) -> Option<String> {
    let mut parts = item_key.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("session"), None, None) => Some(format!("session/info/{sid}")),
        (Some("message"), Some(mid), None) => Some(format!("session/message/{sid}/{mid}")),
        (Some("part"), Some(mid), Some(pid)) => Some(format!("session/part/{sid}/{mid}/{pid}")),
        _ => None,
    }
}

/// The item key of a ShareNext item, from its type and data (ShareNext's own `key(item)`).
pub fn next_key(kind: &str, data: &RawValue) -> Result<(String, &'static str), String> {
    let kind = KINDS
        .iter()
        .find(|k| **k == kind)
        .ok_or_else(|| format!("unknown item type {kind:?}"))?;
    let field = |name: &str| -> Result<String, String> {
        #[derive(serde::Deserialize)]
        struct Ids {
            id: Option<String>,
            #[serde(rename = "messageID")]
            message_id: Option<String>,
        }
        let ids: Ids = serde_json::from_str(data.get())
            .map_err(|_| format!("a {kind} item's data must be an object with string ids"))?;
        let value = if name == "id" { ids.id } else { ids.message_id };
        match value {
            Some(v) if valid_id(&v) => Ok(v),
            _ => Err(format!("a {kind} item needs data.{name} of [A-Za-z0-9_-]")),
        }
    };
    let key = match *kind {
        "message" => format!("message/{}", field("id")?),
        "part" => format!("part/{}/{}", field("messageID")?, field("id")?),
        other => other.to_owned(),
    };
    Ok((key, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_keys_map_onto_items_and_back() {
        let sid = "ses_abcdefgh12345678";
        assert_eq!(
            legacy_key(&format!("session/info/{sid}"), sid),
            Ok(LegacyKey::Item("session".into(), "session"))
        );
        assert_eq!(
            legacy_key(&format!("session/part/{sid}/msg_1/prt_2"), sid),
            Ok(LegacyKey::Item("part/msg_1/prt_2".into(), "part"))
        );
        assert_eq!(
            legacy_key(&format!("session/todo/{sid}"), sid),
            Ok(LegacyKey::Ignored)
        );
        assert!(legacy_key("session/info/ses_other", sid).is_err());
        assert!(legacy_key(&format!("session/part/{sid}/msg_1"), sid).is_err());
        assert!(legacy_key("session//x", sid).is_err());
        let long = format!("session/message/{sid}/{}", "m".repeat(65));
        assert!(legacy_key(&long, sid).is_err());
        for hostile in ["a<b", "a'b", "a\"b", "a;b", "a b", "a\u{202e}b"] {
            let key = format!("session/part/{sid}/msg_1/{hostile}");
            assert!(legacy_key(&key, sid).is_err(), "{hostile}");
        }
        assert_eq!(
            legacy_key_of("part/msg_1/prt_2", sid).unwrap(),
            format!("session/part/{sid}/msg_1/prt_2")
        );
        assert_eq!(legacy_key_of("model", sid), None);
        assert_eq!(share_id(sid).unwrap(), "12345678");
        assert!(share_id("short").is_err() && share_id("ses_../../etc/x").is_err());
    }

    #[test]
    fn next_items_are_keyed_like_sharenext() {
        let raw = |s: &str| RawValue::from_string(s.into()).unwrap();
        assert_eq!(
            next_key("part", &raw(r#"{"id":"p1","messageID":"m1"}"#))
                .unwrap()
                .0,
            "part/m1/p1"
        );
        assert_eq!(
            next_key("message", &raw(r#"{"id":"m1"}"#)).unwrap().0,
            "message/m1"
        );
        assert_eq!(
            next_key("session", &raw(r#"{"id":"s"}"#)).unwrap().0,
            "session"
        );
        assert_eq!(next_key("model", &raw("[]")).unwrap().0, "model");
        assert!(next_key("nope", &raw("{}")).is_err());
        assert!(next_key("part", &raw(r#"{"id":"p1"}"#)).is_err());
        assert!(next_key("message", &raw(r#"{"id":"a/b"}"#)).is_err());
    }
}
