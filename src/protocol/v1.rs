//! The legacy protocol ("v1", opencode's `Share` module): one key per request.

use serde::Deserialize;

use super::json::push_string as push_json_string;
use super::{Created, Method, Request};
use crate::error::{Error, ErrorKind, Result};
use crate::registry::Secret;

pub const CREATE: &str = "/share_create";
pub const SYNC: &str = "/share_sync";
pub const DELETE: &str = "/share_delete";

fn post(path: &str, body: String) -> Request {
    Request {
        method: Method::Post,
        path: path.to_owned(),
        body,
    }
}

/// `POST /share_sync` of one key.
pub fn sync(session: &str, secret: &Secret, key: &str, content: &str) -> Request {
    post(SYNC, sync_body(session, secret, key, content))
}

/// `POST /share_create`.
pub fn create(session: &str) -> Request {
    post(CREATE, create_body(session))
}

/// `POST /share_delete`.
pub fn delete(session: &str, secret: &Secret) -> Request {
    post(DELETE, delete_body(session, secret))
}

/// `{"sessionID","secret","key","content"}` with `content` embedded as the JSON text it is.
pub fn sync_body(session: &str, secret: &Secret, key: &str, content: &str) -> String {
    let mut body = String::with_capacity(content.len() + key.len() + session.len() + 96);
    body.push_str("{\"sessionID\":");
    push_json_string(&mut body, session);
    body.push_str(",\"secret\":");
    push_json_string(&mut body, secret.expose());
    body.push_str(",\"key\":");
    push_json_string(&mut body, key);
    body.push_str(",\"content\":");
    body.push_str(content);
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
