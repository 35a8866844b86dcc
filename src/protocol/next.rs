//! opencode's successor protocol ("next", `ShareNext`): `POST /api/share` creates, one
//! `POST /api/share/<id>/sync` carries many items of one share, `DELETE /api/share/<id>`
//! deletes; org accounts use `/api/shares/...` (their headers are the HTTP client's).

use serde::Deserialize;

use super::json::push_string;
use super::{Created, Item, Method, Request, append};
use crate::error::{Error, ErrorKind, Result};
use crate::registry::{Secret, Share};

/// Longest share id taken from a service or a share record.
const MAX_ID_LEN: usize = 128;

/// The item type a key becomes, or None for a key this protocol does not carry.
pub fn item_type(key: &str) -> Option<&'static str> {
    let mut parts = key.split('/');
    if parts.next() != Some("session") {
        return None;
    }
    let sub = parts.next()?;
    let rest = parts.count(); // segments after `session/<sub>`, the session id included
    match (sub, rest) {
        ("info", 1) => Some("session"),
        ("message", 2) => Some("message"),
        ("part", 3) => Some("part"),
        ("diff", 1) => Some("session_diff"),
        ("model", 1) => Some("model"),
        _ => None,
    }
}

/// Where an item goes in its request: the session first, messages before parts (a viewer
/// merging in order never sees a part whose message it lacks).
pub fn rank(key: &str) -> u8 {
    match item_type(key) {
        Some("session") => 0,
        Some("message") => 1,
        _ => 2,
    }
}

/// A share id is safe in a path: 1 to 128 of `[A-Za-z0-9_-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The share's id: the one its record or create gave, else the last 8 characters of the
/// session id (how the service names shares).
pub fn share_id(session: &str, share: &Share) -> String {
    if let Some(id) = &share.id {
        return id.to_string();
    }
    let start = session.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
    session[start..].to_owned()
}

fn resource(org: bool) -> &'static str {
    if org { "/api/shares" } else { "/api/share" }
}

/// `POST /api/share` `{"sessionID"}`.
pub fn create(org: bool, session: &str) -> Request {
    Request {
        method: Method::Post,
        path: resource(org).to_owned(),
        body: serde_json::json!({ "sessionID": session }).to_string(),
        learns: true,
    }
}

/// `POST /api/share/<id>/sync` `{"secret","data":[{"type","data"}...]}`, each content embedded
/// as the JSON text it is; an item sent as its grows is `{"type","key","append"}`.
pub fn sync(org: bool, id: &str, secret: &Secret, items: &[Item<'_>]) -> Request {
    let size: usize = items.iter().map(|i| i.content.len() + 32).sum();
    let mut body = String::with_capacity(size + 64);
    body.push_str("{\"secret\":");
    push_string(&mut body, secret.expose());
    body.push_str(",\"data\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str("{\"type\":\"");
        body.push_str(item_type(item.key).unwrap_or("part"));
        match item.grown {
            None => {
                body.push_str("\",\"data\":");
                body.push_str(item.content);
            }
            Some(grown) => {
                body.push_str("\",\"key\":");
                body.push_str(&grown.names);
                body.push_str(",\"append\":");
                append::push_grows(&mut body, &grown.grows);
            }
        }
        body.push('}');
    }
    body.push_str("]}");
    Request {
        method: Method::Post,
        path: format!("{}/{id}/sync", resource(org)),
        body,
        learns: true,
    }
}

/// `DELETE /api/share/<id>` `{"secret"}`.
pub fn delete(org: bool, id: &str, secret: &Secret) -> Request {
    Request {
        method: Method::Delete,
        path: format!("{}/{id}", resource(org)),
        body: serde_json::json!({ "secret": secret.expose() }).to_string(),
        learns: false,
    }
}

/// Reads a create answer: `{"id","secret","url"}`, all non-empty strings, the id path-safe.
pub fn parse_created(body: &[u8]) -> Result<Created> {
    #[derive(Deserialize)]
    struct Answer {
        id: String,
        url: String,
        secret: String,
    }
    let bad = |why: String| {
        Error::new(
            ErrorKind::BadResponse,
            format!("POST /api/share answered {why}"),
        )
    };
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "a body that is not {{\"id\",\"secret\",\"url\"}} ({e})"
        ))
    })?;
    if answer.secret.is_empty() || answer.url.is_empty() {
        return Err(bad("an empty url or secret".into()));
    }
    if !valid_id(&answer.id) {
        return Err(bad(
            "an id that is not 1 to 128 letters, digits, '_' or '-'".into(),
        ));
    }
    Ok(Created {
        id: Some(answer.id),
        url: answer.url,
        secret: Secret::new(&answer.secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::Arc;

    #[test]
    fn keys_become_items() {
        assert_eq!(item_type("session/info/ses_1"), Some("session"));
        assert_eq!(item_type("session/message/ses_1/msg_1"), Some("message"));
        assert_eq!(item_type("session/part/ses_1/msg_1/prt_1"), Some("part"));
        assert_eq!(item_type("session/diff/ses_1"), Some("session_diff"));
        assert_eq!(item_type("session/model/ses_1"), Some("model"));
        for other in [
            "session/share/ses_1",
            "session/info/ses_1/x",
            "session/part/ses_1/msg_1",
            "session/todo/ses_1",
            "project/x/y",
        ] {
            assert_eq!(item_type(other), None, "{other}");
        }
        assert!(rank("session/info/s") < rank("session/message/s/m"));
        assert!(rank("session/message/s/m") < rank("session/part/s/m/p"));
    }

    #[test]
    fn the_share_id_is_the_records_or_the_last_eight_characters() {
        let secret = Secret::new("s");
        let plain = Share {
            secret: secret.clone(),
            id: None,
        };
        assert_eq!(share_id("ses_0123456789abcdefgh", &plain), "abcdefgh");
        assert_eq!(share_id("abc", &plain), "abc");
        let named = Share {
            secret,
            id: Some(Arc::from("xyz")),
        };
        assert_eq!(share_id("ses_0123456789abcdefgh", &named), "xyz");
    }

    #[test]
    fn sync_embeds_items_in_order() {
        let items = [
            Item {
                key: "session/info/ses_1",
                content: r#"{"id":"ses_1"}"#,
                grown: None,
            },
            Item {
                key: "session/part/ses_1/m/p",
                content: r#"{"id":"p", "n": [1, 2]}"#,
                grown: None,
            },
        ];
        let r = sync(false, "abc", &Secret::new("s\"1"), &items);
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.path, "/api/share/abc/sync");
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            v,
            json!({"secret": "s\"1", "data": [
                {"type": "session", "data": {"id": "ses_1"}},
                {"type": "part", "data": {"id": "p", "n": [1, 2]}},
            ]})
        );
        assert!(
            r.body.contains(r#"{"id":"p", "n": [1, 2]}"#),
            "kept as it came"
        );
        assert_eq!(
            sync(true, "abc", &Secret::new("s"), &items).path,
            "/api/shares/abc/sync"
        );
    }

    #[test]
    fn an_item_sent_as_its_grows_is_named_by_its_key() {
        let grown = append::Grown {
            grows: vec![append::Grow {
                path: "/text".into(),
                at: 3,
                text: "d\"".into(),
            }],
            names: r#"{"id":"p","messageID":"m"}"#.into(),
        };
        let items = [Item {
            key: "session/part/ses_1/m/p",
            content: r#"{"id":"p","messageID":"m","text":"abcd\""}"#,
            grown: Some(&grown),
        }];
        let v: Value =
            serde_json::from_str(&sync(false, "abc", &Secret::new("s"), &items).body).unwrap();
        assert_eq!(
            v,
            json!({"secret": "s", "data": [{"type": "part", "key": {"id": "p", "messageID": "m"},
                   "append": [{"path": "/text", "at": 3, "text": "d\""}]}]})
        );
    }

    #[test]
    fn create_and_delete() {
        let c = create(false, "ses_1");
        assert_eq!((c.method, c.path.as_str()), (Method::Post, "/api/share"));
        assert_eq!(
            serde_json::from_str::<Value>(&c.body).unwrap(),
            json!({"sessionID": "ses_1"})
        );
        let d = delete(true, "abc", &Secret::new("x"));
        assert_eq!(
            (d.method, d.path.as_str()),
            (Method::Delete, "/api/shares/abc")
        );
        assert_eq!(
            serde_json::from_str::<Value>(&d.body).unwrap(),
            json!({"secret": "x"})
        );
    }

    #[test]
    fn created_answers_are_checked() {
        let c =
            parse_created(br#"{"id":"abcdefgh","secret":"u-u","url":"https://x/share/abcdefgh"}"#)
                .unwrap();
        assert_eq!(c.id.as_deref(), Some("abcdefgh"));
        let v: Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"id": "abcdefgh", "secret": "u-u", "url": "https://x/share/abcdefgh"})
        );
        for bad in [
            &br#"{"id":"../x","secret":"s","url":"u"}"#[..],
            br#"{"id":"","secret":"s","url":"u"}"#,
            br#"{"secret":"s","url":"u"}"#,
            br#"{"id":"a","secret":"","url":"u"}"#,
            b"[]",
        ] {
            assert_eq!(parse_created(bad).unwrap_err().kind, ErrorKind::BadResponse);
        }
    }
}
