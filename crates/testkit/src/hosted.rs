//! opencode's hosted legacy service (its Cloudflare worker and Durable Object) played over the
//! real server, by the proxy: shares keyed by the last 8 characters of the session id;
//! `share_create` idempotent per short id, answering the existing secret to whoever asks; a wrong
//! secret, an unknown or deleted share (the server's 403 and 404) and a value over
//! [`MAX_VALUE`] answered 500 `Internal Server Error`; a key outside the creating session's
//! `info`, `message` and `part` prefixes answered 200 and not stored; an unknown route answered
//! 200 `Not Found`. Anything else reaches the server as it is.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use fault_proxy::{Reply, Seen, Semantics};
use serde_json::Value;

use crate::short_id;

/// The largest value the hosted service stores (its Durable Object storage cap, 128 KiB).
pub const MAX_VALUE: usize = 131_072;

const ROUTES: [&str; 3] = ["/share_create", "/share_sync", "/share_delete"];

/// One share the hosted service made: the session that created it and the create's answer.
struct Made {
    session: String,
    answer: String,
}

/// The hosted rules; see the module's doc.
#[derive(Default)]
pub struct Hosted {
    /// per short id; a leaf lock
    made: Mutex<HashMap<String, Made>>,
}

impl Hosted {
    fn made(&self) -> MutexGuard<'_, HashMap<String, Made>> {
        self.made.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn internal_error() -> Reply {
    Reply::text(500, "Internal Server Error")
}

fn field<'a>(json: &'a Value, name: &str) -> Option<&'a str> {
    json.get(name).and_then(Value::as_str)
}

/// Whether `key` is one the hosted service stores for a share `session` created.
fn stored_key(key: &str, session: &str) -> bool {
    key == format!("session/info/{session}")
        || key.starts_with(&format!("session/message/{session}/"))
        || key.starts_with(&format!("session/part/{session}/"))
}

impl Semantics for Hosted {
    fn flow(&self, req: &Seen) -> Option<String> {
        crate::flow(req)
    }

    fn answer(&self, req: &Seen) -> Option<Reply> {
        if req.method != "POST" || !ROUTES.contains(&req.path.as_str()) {
            return Some(Reply::text(200, "Not Found"));
        }
        let Some(json) = req.json() else {
            return Some(internal_error());
        };
        let Some(session) = field(&json, "sessionID") else {
            return Some(internal_error());
        };
        let id = short_id(session);
        match req.path.as_str() {
            "/share_create" => {
                let made = self.made();
                let answer = &made.get(id)?.answer;
                Some(Reply::json(200, &serde_json::from_str(answer).ok()?))
            }
            "/share_sync" => {
                let content = json.get("content")?;
                if content.to_string().len() > MAX_VALUE {
                    return Some(internal_error()); // the storage refuses the value
                }
                let key = field(&json, "key")?;
                let made = self.made();
                let creator = &made.get(id)?.session;
                // a refused key's 400 is discarded by the worker: the client sees 200
                (!stored_key(key, creator)).then(|| Reply::json(200, &serde_json::json!({})))
            }
            _ => None,
        }
    }

    fn rewrite(&self, req: &Seen, status: u16, body: &[u8]) -> Option<Reply> {
        let session = req
            .json()
            .and_then(|j| field(&j, "sessionID").map(str::to_owned));
        match (status, req.path.as_str()) {
            (403 | 404, _) => Some(internal_error()),
            (200, "/share_create") => {
                let session = session?;
                let made = Made {
                    answer: String::from_utf8_lossy(body).into_owned(),
                    session: session.clone(),
                };
                self.made().insert(short_id(&session).to_owned(), made);
                None
            }
            (200, "/share_delete") => {
                self.made().remove(short_id(&session?));
                None
            }
            (400, "/share_sync") => Some(internal_error()),
            _ => None,
        }
    }
}
