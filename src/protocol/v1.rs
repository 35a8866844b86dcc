//! The legacy protocol ("v1", opencode's `Share` module): one key per request.

use serde::Deserialize;

use super::json::push_string as push_json_string;
use super::{Created, Item, Method, Request, append};
use crate::error::{Error, ErrorKind, Result};
use crate::registry::Secret;

pub const CREATE: &str = "/share_create";
pub const SYNC: &str = "/share_sync";
pub const DELETE: &str = "/share_delete";

fn post(path: &str, body: String, learns: bool) -> Request {
    Request {
        method: Method::Post,
        path: path.to_owned(),
        body,
        learns,
    }
}

/// `POST /share_sync` of one key, whole or as its grows.
pub fn sync(session: &str, secret: &Secret, item: &Item<'_>) -> Request {
    let body = match item.grown {
        None => sync_body(session, secret, item.key, item.content),
        Some(grown) => append_body(secret, item.key, &grown.grows),
    };
    post(SYNC, body, true)
}

/// `POST /share_create`.
pub fn create(session: &str) -> Request {
    post(CREATE, create_body(session), true)
}

/// `POST /share_delete`.
pub fn delete(session: &str, secret: &Secret) -> Request {
    post(DELETE, delete_body(session, secret), false)
}

/// `"secret":…,"key":…`.
fn push_secret_and_key(body: &mut String, secret: &Secret, key: &str) {
    body.push_str("\"secret\":");
    push_json_string(body, secret.expose());
    body.push_str(",\"key\":");
    push_json_string(body, key);
}

/// `{"sessionID","secret","key","content"}` with `content` embedded as the JSON text it is.
pub fn sync_body(session: &str, secret: &Secret, key: &str, content: &str) -> String {
    let mut body = String::with_capacity(content.len() + key.len() + session.len() + 96);
    body.push_str("{\"sessionID\":");
    push_json_string(&mut body, session);
    body.push(',');
    push_secret_and_key(&mut body, secret, key);
    body.push_str(",\"content\":");
    body.push_str(content);
    body.push('}');
    body
}

/// `{"secret","key","append":[grows]}` (docs/append-protocol.md: the key names the session,
/// so an append leaves `sessionID` out).
pub fn append_body(secret: &Secret, key: &str, grows: &[append::Grow]) -> String {
    let mut body = String::with_capacity(key.len() + 160);
    body.push('{');
    push_secret_and_key(&mut body, secret, key);
    body.push_str(",\"append\":");
    append::push_grows(&mut body, grows);
    body.push('}');
    body
}

/// `{"sessionID"}`.
pub fn create_body(session: &str) -> String {
    serde_json::json!({ "sessionID": session }).to_string()
}

/// `{"sessionID","secret"}`.
pub fn delete_body(session: &str, secret: &Secret) -> String {
    serde_json::json!({ "sessionID": session, "secret": secret.expose() }).to_string()
}

/// Reads a `/share_create` answer: a JSON object with string `url` and `secret`.
pub fn parse_created(body: &[u8]) -> Result<Created> {
    #[derive(Deserialize)]
    struct Answer {
        url: String,
        secret: String,
    }
    let bad = |why: String| Error::new(ErrorKind::BadResponse, format!("{CREATE} answered {why}"));
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|e| bad(format!("a body that is not {{\"url\",\"secret\"}} ({e})")))?;
    if answer.secret.is_empty() || answer.url.is_empty() {
        return Err(bad("an empty url or secret".into()));
    }
    Ok(Created {
        id: None,
        url: answer.url,
        secret: Secret::new(&answer.secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn sync_body_embeds_content_as_json() {
        let body = sync_body(
            "ses_\"1",
            &Secret::new("s3"),
            "session/info/ses_\"1",
            r#"{"a": [1, 2]}"#,
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({"sessionID": "ses_\"1", "secret": "s3", "key": "session/info/ses_\"1", "content": {"a": [1, 2]}})
        );
        assert!(
            body.ends_with(r#""content":{"a": [1, 2]}}"#),
            "content kept as it came: {body}"
        );
    }

    #[test]
    fn an_append_takes_the_place_of_content() {
        let grows = [super::append::Grow {
            path: "/text".into(),
            at: 2,
            text: "é".into(),
        }];
        let body = append_body(&Secret::new("s3"), "session/part/ses_1/m/p", &grows);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({"secret": "s3", "key": "session/part/ses_1/m/p",
                   "append": [{"path": "/text", "at": 2, "text": "é"}]})
        );
    }

    #[test]
    fn create_and_delete_bodies() {
        let v: Value = serde_json::from_str(&create_body("ses_1")).unwrap();
        assert_eq!(v, json!({"sessionID": "ses_1"}));
        let v: Value = serde_json::from_str(&delete_body("ses_1", &Secret::new("x"))).unwrap();
        assert_eq!(v, json!({"sessionID": "ses_1", "secret": "x"}));
    }

    #[test]
    fn created_answers() {
        let c = parse_created(br#"{"url":"https://opencode.ai/s/abcdefgh","secret":"u-u-i-d"}"#)
            .unwrap();
        assert_eq!(c.url, "https://opencode.ai/s/abcdefgh");
        assert_eq!(c.secret.expose(), "u-u-i-d");
        let v: Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"url": "https://opencode.ai/s/abcdefgh", "secret": "u-u-i-d"})
        );
        for bad in [
            &b"<html>"[..],
            b"{}",
            br#"{"url":1,"secret":"x"}"#,
            br#"{"url":"","secret":"x"}"#,
            b"",
        ] {
            let e = parse_created(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadResponse);
        }
    }
}
